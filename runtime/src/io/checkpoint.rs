//! Checkpoints as safetensors files (docs/src/reference/checkpoints.md), readable by any
//! safetensors reader. Saving is atomic: the bytes go to a temporary file in
//! the target's directory, which is synced, renamed over the target, and the
//! directory synced. A crash (power loss, SIGKILL, a full disk) at any point
//! leaves either the previous checkpoint or the new one, never a torn file —
//! which matters because training writes a checkpoint every epoch over the
//! last one.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use ndarray::{ArrayD, IxDyn};
use safetensors::{Dtype, SafeTensors, View};

use super::{IoError, bf16_to_f32, f16_to_f32};

const FORMAT: &str = "safetensors";

/// An f32 array as a safetensors view; its bytes are produced on demand.
struct F32View<'a>(&'a ArrayD<f32>);

impl View for F32View<'_> {
    fn dtype(&self) -> Dtype {
        Dtype::F32
    }
    fn shape(&self) -> &[usize] {
        self.0.shape()
    }
    fn data(&self) -> Cow<'_, [u8]> {
        let mut out = Vec::with_capacity(self.0.len() * 4);
        // Logical (C) order whatever the array's memory layout.
        for v in self.0.iter() {
            out.extend_from_slice(&v.to_le_bytes());
        }
        Cow::Owned(out)
    }
    fn data_len(&self) -> usize {
        self.0.len() * 4
    }
}

/// Saves f32 `tensors` and string `metadata` to `path`, atomically.
pub fn save_checkpoint(
    path: &Path,
    tensors: &[(String, ArrayD<f32>)],
    metadata: &BTreeMap<String, String>,
) -> Result<(), IoError> {
    let mut seen = std::collections::BTreeSet::new();
    for (name, _) in tensors {
        if !seen.insert(name.as_str()) {
            return Err(IoError::format(path, FORMAT, format!("two tensors are named `{name}`")));
        }
    }
    let info =
        if metadata.is_empty() { None } else { Some(metadata.iter().map(|(k, v)| (k.clone(), v.clone())).collect()) };
    let bytes = safetensors::serialize(tensors.iter().map(|(n, a)| (n.as_str(), F32View(a))), info)
        .map_err(|e| IoError::format(path, FORMAT, e.to_string()))?;
    write_atomically(path, &bytes)
}

/// Removes temporary files of saves of `file_name` in `dir` that a killed
/// process left (`.{file_name}.tmp.{pid}.{counter}`, the naming of
/// [`write_atomically`]). Only files whose process is gone are removed: a
/// live process (another run saving to the same file) may still rename its
/// own. Where liveness cannot be told (no `/proc`), a temporary file older
/// than an hour counts as stale. Failures are ignored: this is tidying.
fn remove_stale_temporaries(dir: &Path, file_name: &str) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let prefix = format!(".{file_name}.tmp.");
    let me = std::process::id();
    let proc_fs = Path::new("/proc/self").exists();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(&prefix)) else { continue };
        let Some((pid, counter)) = rest.split_once('.') else { continue };
        let (Ok(pid), Ok(_)) = (pid.parse::<u32>(), counter.parse::<u64>()) else { continue };
        let stale = if pid == me {
            false // a concurrent save of this process
        } else if proc_fs {
            !Path::new(&format!("/proc/{pid}")).exists()
        } else {
            let age = entry.metadata().and_then(|m| m.modified()).ok().and_then(|t| t.elapsed().ok());
            age.is_some_and(|a| a.as_secs() > 3600)
        };
        // Only regular files: never follow a name of ours to something else.
        if stale && entry.file_type().is_ok_and(|t| t.is_file()) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Replaces `path` by `bytes` so that readers (and the file system after a
/// crash) see the old contents or the new, never a mix.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), IoError> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir).map_err(|e| IoError::os(&dir, "create the directory", &e))?;
    let file_name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "checkpoint".into());
    // The temporary file must be in the same directory: rename is only
    // atomic within one file system. Process id and counter keep concurrent
    // savers (two runs, two threads) from sharing a temporary file.
    remove_stale_temporaries(&dir, &file_name);
    let tmp = dir.join(format!(".{file_name}.tmp.{}.{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed)));
    let result = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(|e| IoError::os(&tmp, "create", &e))?;
        f.write_all(bytes).map_err(|e| IoError::os(&tmp, "write", &e))?;
        // Data must be on disk before the rename makes it the checkpoint;
        // otherwise a power loss can leave the new name with no data.
        f.sync_all().map_err(|e| IoError::os(&tmp, "sync", &e))?;
        drop(f);
        std::fs::rename(&tmp, path).map_err(|e| IoError::os(path, "rename the temporary file over", &e))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
        return result;
    }
    // Make the rename itself durable (a directory entry is data of the
    // directory). Not every platform can open a directory; that is not an
    // error of the save.
    if let Ok(d) = std::fs::File::open(&dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// The tensors of a checkpoint (sorted by name) and its metadata.
pub type Checkpoint = (Vec<(String, ArrayD<f32>)>, BTreeMap<String, String>);

/// Loads a safetensors file. Float and integer tensors of any width are
/// converted to f32, so checkpoints saved by PyTorch in f16/bf16 load too.
pub fn load_checkpoint(path: &Path) -> Result<Checkpoint, IoError> {
    // Regular files only, up to the data cap.
    let bytes = super::read_raw(path)?;
    parse_checkpoint(&bytes, path)
}

/// Parses the bytes of a safetensors file; `path` names it in errors.
pub fn parse_checkpoint(bytes: &[u8], path: &Path) -> Result<Checkpoint, IoError> {
    let (tensors, metadata) = parse_checkpoint_typed(bytes, path)?;
    Ok((tensors.into_iter().map(|t| (t.name, t.value)).collect(), metadata))
}

/// A tensor of a checkpoint with the element type the file stores it in
/// (its value is converted to f32 all the same).
#[derive(Clone, Debug, PartialEq)]
pub struct StoredTensor {
    /// The tensor's name (a parameter's full name, or `slot/…` for optimizer state).
    pub name: String,
    /// safetensors' name of the element type: `F32`, `F16`, `I64`, …
    pub dtype: String,
    /// The values, converted to f32.
    pub value: ArrayD<f32>,
}

impl StoredTensor {
    /// Whether the stored type is a floating-point one (a parameter's kind of value).
    pub fn is_float(&self) -> bool {
        matches!(self.dtype.as_str(), "F32" | "F64" | "F16" | "BF16")
    }
}

/// The tensors of a checkpoint with their stored element types, sorted by name, and its metadata.
pub type TypedCheckpoint = (Vec<StoredTensor>, BTreeMap<String, String>);

/// Like [`load_checkpoint`], keeping each tensor's stored element type (for
/// the checks of `nnc predict`, `--init` and `--resume`).
pub fn load_checkpoint_typed(path: &Path) -> Result<TypedCheckpoint, IoError> {
    // Regular files only, up to the data cap.
    let bytes = super::read_raw(path)?;
    parse_checkpoint_typed(&bytes, path)
}

/// Parses the bytes of a safetensors file keeping element types. The
/// safetensors crate validates the header (size, JSON, offsets that tile the
/// data exactly, shapes × element sizes with checked arithmetic) before any
/// tensor is read; the conversion below only reads those validated views.
pub fn parse_checkpoint_typed(bytes: &[u8], path: &Path) -> Result<TypedCheckpoint, IoError> {
    let bad = |r: String| IoError::format(path, FORMAT, r);
    let (_, meta) = SafeTensors::read_metadata(bytes).map_err(|e| bad(e.to_string()))?;
    let st = SafeTensors::deserialize(bytes).map_err(|e| bad(e.to_string()))?;
    let mut tensors = Vec::with_capacity(st.len());
    for (name, view) in st.tensors() {
        let d = view.data();
        let vals: Vec<f32> = match view.dtype() {
            Dtype::F32 => d.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect(),
            Dtype::F64 => d.chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().expect("8")) as f32).collect(),
            Dtype::F16 => d.chunks_exact(2).map(|c| f16_to_f32(u16::from_le_bytes([c[0], c[1]]))).collect(),
            Dtype::BF16 => d.chunks_exact(2).map(|c| bf16_to_f32(u16::from_le_bytes([c[0], c[1]]))).collect(),
            Dtype::I64 => d.chunks_exact(8).map(|c| i64::from_le_bytes(c.try_into().expect("8")) as f32).collect(),
            Dtype::I32 => d.chunks_exact(4).map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f32).collect(),
            Dtype::I16 => d.chunks_exact(2).map(|c| i16::from_le_bytes([c[0], c[1]]) as f32).collect(),
            Dtype::I8 => d.iter().map(|&v| v as i8 as f32).collect(),
            Dtype::U8 | Dtype::BOOL => d.iter().map(|&v| v as f32).collect(),
            other => return Err(bad(format!("tensor `{name}` has element type {other:?}, which nnc cannot read"))),
        };
        let dtype = format!("{:?}", view.dtype());
        let value =
            ArrayD::from_shape_vec(IxDyn(view.shape()), vals).map_err(|e| bad(format!("tensor `{name}`: {e}")))?;
        tensors.push(StoredTensor { name, dtype, value });
    }
    tensors.sort_by(|a, b| a.name.cmp(&b.name));
    let metadata =
        meta.metadata().as_ref().map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()).unwrap_or_default();
    Ok((tensors, metadata))
}

#[cfg(test)]
mod tests {
    use super::super::testutil::TempDir;
    use super::*;

    fn tensors(fill: f32) -> Vec<(String, ArrayD<f32>)> {
        vec![
            ("dense.kernel".to_string(), ArrayD::from_elem(IxDyn(&[64, 32]), fill)),
            ("dense.bias".to_string(), ArrayD::from_elem(IxDyn(&[32]), fill)),
            ("scalar".to_string(), ArrayD::from_elem(IxDyn(&[]), fill)),
        ]
    }

    fn meta(k: &str) -> BTreeMap<String, String> {
        BTreeMap::from([
            ("epoch".to_string(), k.to_string()),
            ("zscore.x".to_string(), "{\"mean\":[1],\"std\":[2]}".to_string()),
        ])
    }

    #[test]
    fn round_trip() {
        let dir = TempDir::new("ckpt");
        let path = dir.path().join("sub/dir/w.safetensors");
        let mut t = tensors(0.5);
        t[0].1[[3, 4]] = -7.25;
        // A non-standard layout is saved in logical order.
        t.push(("transposed".into(), ndarray::arr2(&[[1.0f32, 2.0], [3.0, 4.0]]).reversed_axes().into_dyn()));
        save_checkpoint(&path, &t, &meta("3")).unwrap();
        let (back, m) = load_checkpoint(&path).unwrap();
        assert_eq!(m, meta("3"));
        let names: Vec<&str> = back.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["dense.bias", "dense.kernel", "scalar", "transposed"]);
        assert_eq!(back[1].1[[3, 4]], -7.25);
        assert_eq!(back[1].1.shape(), &[64, 32]);
        assert_eq!(back[2].1.shape(), &[] as &[usize]);
        assert_eq!(back[3].1.iter().copied().collect::<Vec<_>>(), [1.0, 3.0, 2.0, 4.0]);
        // No temporary files are left behind.
        let left: Vec<_> = std::fs::read_dir(path.parent().unwrap()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(left.len(), 1, "{left:?}");
        // Empty metadata and an empty checkpoint.
        save_checkpoint(&path, &[], &BTreeMap::new()).unwrap();
        assert_eq!(load_checkpoint(&path).unwrap(), (vec![], BTreeMap::new()));
    }

    #[test]
    fn other_writers_dtypes_load_as_f32() {
        // A file as PyTorch would write it: f16, bf16, i64 tensors, header
        // padded with spaces.
        let header = concat!(
            r#"{"a":{"dtype":"F16","shape":[2],"data_offsets":[0,4]},"b":{"dtype":"BF16","shape":[1],"#,
            r#""data_offsets":[4,6]},"c":{"dtype":"I64","shape":[1],"data_offsets":[6,14]},"#,
            r#""__metadata__":{"format":"pt"}}"#,
        );
        let mut h = header.as_bytes().to_vec();
        while !h.len().is_multiple_of(8) {
            h.push(b' ');
        }
        let mut b = (h.len() as u64).to_le_bytes().to_vec();
        b.extend(&h);
        b.extend([0x00, 0x3c, 0x00, 0xc0, 0x80, 0x3f]);
        b.extend(5i64.to_le_bytes());
        let (t, m) = parse_checkpoint(&b, Path::new("pt.safetensors")).unwrap();
        assert_eq!(t[0].1.as_slice().unwrap(), &[1.0, -2.0]);
        assert_eq!(t[1].1.as_slice().unwrap(), &[1.0]);
        assert_eq!(t[2].1.as_slice().unwrap(), &[5.0]);
        assert_eq!(m["format"], "pt");
    }

    #[test]
    fn bad_files_are_errors() {
        let dir = TempDir::new("ckpt-bad");
        let path = dir.path().join("w.safetensors");
        save_checkpoint(&path, &tensors(1.0), &meta("1")).unwrap();
        let good = std::fs::read(&path).unwrap();
        for n in [0, 4, 8, 20, good.len() / 2, good.len() - 1] {
            let e = parse_checkpoint(&good[..n], &path).unwrap_err();
            assert!(e.to_string().contains("not a valid safetensors file"), "{e}");
        }
        assert!(matches!(load_checkpoint(&dir.path().join("none.safetensors")), Err(IoError::Os { .. })));
        let dup = vec![("a".to_string(), ArrayD::zeros(IxDyn(&[1]))), ("a".to_string(), ArrayD::zeros(IxDyn(&[1])))];
        assert!(
            save_checkpoint(&path, &dup, &BTreeMap::new())
                .unwrap_err()
                .to_string()
                .contains("two tensors are named `a`")
        );
        // A failed save leaves the previous checkpoint in place.
        assert_eq!(std::fs::read(&path).unwrap(), good);
        // A directory where the file should be: the rename fails, no temp file stays.
        let blocked = dir.path().join("blocked");
        std::fs::create_dir_all(blocked.join("inner")).unwrap();
        assert!(save_checkpoint(&blocked, &tensors(1.0), &meta("1")).is_err());
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(names.iter().all(|n| !n.contains(".tmp.")), "{names:?}");
    }

    /// Simulated crash, the honest way: a child process (this test binary,
    /// re-run with an environment variable) saves large checkpoints in a
    /// loop and is killed with SIGKILL at an arbitrary moment. Whatever the
    /// moment, the checkpoint must load and be one consistent save: every
    /// value equal to the `epoch` its metadata names.
    #[test]
    fn a_killed_save_leaves_a_loadable_checkpoint() {
        if let Ok(target) = std::env::var(CHILD_ENV) {
            child_saves_forever(Path::new(&target));
        }
        let dir = TempDir::new("ckpt-kill");
        let path = dir.path().join("w.safetensors");
        let big = |k: f32| vec![("w".to_string(), ArrayD::from_elem(IxDyn(&[1 << 20]), k))];
        save_checkpoint(&path, &big(0.0), &meta("0")).unwrap();
        let exe = std::env::current_exe().unwrap();
        let mut rng = crate::rng::Rng::new(11);
        for round in 0..4 {
            let mut child = std::process::Command::new(&exe)
                .args([
                    "--exact",
                    "io::checkpoint::tests::a_killed_save_leaves_a_loadable_checkpoint",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env(CHILD_ENV, &path)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap();
            // Wait until the child has completed at least one save, then kill
            // it somewhere inside a later one.
            // (The test harness prints its own text around the marker.)
            let out = std::io::BufReader::new(child.stdout.take().unwrap());
            let saved = std::io::BufRead::lines(out).map_while(Result::ok).any(|l| l.contains(SAVED_MARKER));
            assert!(saved, "the child process never saved");
            std::thread::sleep(std::time::Duration::from_millis(rng.below(40) + 1));
            child.kill().unwrap(); // SIGKILL on Unix: no destructor, no cleanup runs.
            child.wait().unwrap();
            let (t, m) = load_checkpoint(&path)
                .unwrap_or_else(|e| panic!("round {round}: checkpoint unreadable after SIGKILL: {e}"));
            let epoch: f32 = m["epoch"].parse().unwrap();
            assert!(epoch >= 1.0, "the child saved at least once");
            assert!(t[0].1.iter().all(|&v| v == epoch), "round {round}: a torn checkpoint");
        }
    }

    #[cfg(unix)]
    #[test]
    fn a_killed_saves_temporary_file_is_removed_by_the_next_save() {
        let dir = TempDir::new("ckpt-stale");
        let path = dir.path().join("w.safetensors");
        // A pid that cannot be alive (above Linux's pid_max limit of 2^22),
        // one of a live process (this one's parent), and other names.
        let stale = dir.path().join(".w.safetensors.tmp.4194999.0");
        let live = dir.path().join(format!(".w.safetensors.tmp.{}.3", std::os::unix::process::parent_id()));
        let other = dir.path().join(".x.safetensors.tmp.4194999.0");
        let odd = dir.path().join(".w.safetensors.tmp.notapid.0");
        for p in [&stale, &live, &other, &odd] {
            std::fs::write(p, b"partial").unwrap();
        }
        save_checkpoint(&path, &tensors(1.0), &meta("1")).unwrap();
        if Path::new("/proc/self").exists() {
            assert!(!stale.exists(), "the dead process's temporary file is removed");
        }
        assert!(live.exists() && other.exists() && odd.exists(), "only our own naming of dead processes is removed");
    }

    const CHILD_ENV: &str = "NNC_TEST_CHECKPOINT_CHILD";
    const SAVED_MARKER: &str = "nnc-checkpoint-child-saved";

    fn child_saves_forever(path: &Path) -> ! {
        let mut out = std::io::stdout();
        for k in 1u32.. {
            let t = vec![("w".to_string(), ArrayD::from_elem(IxDyn(&[1 << 20]), k as f32))];
            save_checkpoint(path, &t, &meta(&k.to_string())).unwrap();
            if k == 1 {
                writeln!(out, "{SAVED_MARKER}").unwrap();
                out.flush().unwrap();
            }
        }
        unreachable!()
    }
}
