//! Where `nnc run` writes: `--out DIR` exactly, else a new numbered run directory `runs/<train>/<N>/`
//! (1, 2, 3, …: short, sorted by `ls -v`, predictable in scripts; the start time is in the run's
//! history), with `runs/<train>/latest` pointing at the newest. A run never reuses another run's directory:
//! the number is taken by creating the directory, so two runs started at once get two numbers.

use std::path::{Path, PathBuf};

use super::Failure;

/// How many taken numbers a new run skips before giving up (a directory full of unrelated entries).
const MAX_TRIES: usize = 10_000;

/// The directory of one run.
pub struct RunDir {
    pub path: PathBuf,
}

/// The output directory of a run of train block `train`:
/// - `--out DIR`: DIR, as always (created if missing; a later run with the same DIR writes there again);
/// - `--resume W` where W lies inside a run directory of this block (`…/<train>/<N>/…`): that run's
///   directory, so the resumed run continues its history, plot and report;
/// - otherwise a new `runs/<train>/<N>/`.
///
/// `create = false` (`--dump`, which writes only to `--dump DIR`) names the directory without making one.
pub fn output_dir(out: Option<&Path>, resume: Option<&Path>, train: &str, create: bool) -> Result<RunDir, Failure> {
    if let Some(dir) = out {
        return Ok(RunDir { path: dir.to_path_buf() });
    }
    if let Some(dir) = resume.and_then(|w| run_of_checkpoint(w, train)) {
        return Ok(RunDir { path: dir });
    }
    let base = PathBuf::from("runs").join(train);
    if !create {
        return Ok(RunDir { path: base });
    }
    let path = new_version(&base)?;
    point_latest(&base, &path);
    Ok(RunDir { path })
}

/// The run directory (`…/<train>/<digits>`) holding checkpoint `w`, if any.
fn run_of_checkpoint(w: &Path, train: &str) -> Option<PathBuf> {
    w.parent()?.ancestors().take(16).find_map(|d| {
        let name = d.file_name()?.to_str()?;
        let parent = d.parent()?.file_name()?.to_str()?;
        (!name.is_empty() && name.bytes().all(|b| b.is_ascii_digit()) && parent == train).then(|| d.to_path_buf())
    })
}

/// Creates `base/<N>` for the first N above every numbered entry of `base`.
pub fn new_version(base: &Path) -> Result<PathBuf, Failure> {
    let fail = |p: &Path, e: std::io::Error| Failure::new(format!("{}: {e}", p.display()));
    std::fs::create_dir_all(base).map_err(|e| fail(base, e))?;
    let taken = std::fs::read_dir(base)
        .map_err(|e| fail(base, e))?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u64>().ok())
        .max()
        .unwrap_or(0);
    let mut n = taken.saturating_add(1);
    for _ in 0..MAX_TRIES {
        let path = base.join(n.to_string());
        match std::fs::create_dir(&path) {
            Ok(()) => return Ok(path),
            // Another run took it between the scan and now.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => n = n.saturating_add(1),
            Err(e) => return Err(fail(&path, e)),
        }
    }
    Err(Failure::new(format!("{}: no free run number after {MAX_TRIES} tries", base.display())))
}

/// Points `base/latest` at `run`: a relative symbolic link where the system allows one, else a text file
/// holding the run's name. Replaced by a rename, so a reader sees the old or the new pointer, never none.
/// A pointer that cannot be written is a warning: the run itself is unharmed.
pub fn point_latest(base: &Path, run: &Path) {
    let Some(name) = run.file_name() else { return };
    let latest = base.join("latest");
    let tmp = base.join(format!(".latest.{}.tmp", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let linked = link(Path::new(name), &tmp).and_then(|()| std::fs::rename(&tmp, &latest));
    if linked.is_ok() {
        return;
    }
    let _ = std::fs::remove_file(&tmp);
    let written =
        std::fs::write(&tmp, format!("{}\n", name.to_string_lossy())).and_then(|()| std::fs::rename(&tmp, &latest));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        eprintln!("warning: {}: {e} (the run goes on)", latest.display());
    }
}

#[cfg(unix)]
fn link(target: &Path, at: &Path) -> std::io::Result<()> {
    std::os::unix::fs::symlink(target, at)
}

#[cfg(windows)]
fn link(target: &Path, at: &Path) -> std::io::Result<()> {
    // Needs developer mode or the privilege; without it the text file is written instead.
    std::os::windows::fs::symlink_dir(target, at)
}

#[cfg(not(any(unix, windows)))]
fn link(_: &Path, _: &Path) -> std::io::Result<()> {
    Err(std::io::ErrorKind::Unsupported.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checkpoint_inside_a_run_directory_names_it() {
        let w = Path::new("runs/digits/3/ckpt/epoch_2.safetensors");
        assert_eq!(run_of_checkpoint(w, "digits"), Some(PathBuf::from("runs/digits/3")));
        assert_eq!(run_of_checkpoint(w, "other"), None);
        assert_eq!(run_of_checkpoint(Path::new("w.safetensors"), "digits"), None);
        assert_eq!(run_of_checkpoint(Path::new("digits/x/w.safetensors"), "digits"), None);
    }
}
