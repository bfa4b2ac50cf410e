//! Files the editor can open for things that live inside the binary: the
//! embedded standard library (so "go to definition" on `residual` lands in
//! `std/blocks.nn`) and the `nnc explain` texts (a diagnostic's code links
//! to `explain/E0304.md`, since LSP wants a URI there and nnc has no web
//! site).
//!
//! They are written once per version under `$XDG_CACHE_HOME/nnc/<version>/`
//! (or `~/.cache/nnc/…`, or the temporary directory), and rewritten only when
//! their content differs. When none of that is writable the server works
//! without them: no links into the standard library, no code links.

use std::path::{Path, PathBuf};

use nnc_syntax::Code;

#[derive(Clone, Debug)]
pub struct SupportFiles {
    pub dir: PathBuf,
}

impl SupportFiles {
    /// Writes the files; `None` when no directory could be written.
    pub fn materialise() -> Option<SupportFiles> {
        let base = std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
            .unwrap_or_else(std::env::temp_dir);
        let dir = base.join("nnc").join(env!("CARGO_PKG_VERSION"));
        match write_all(&dir) {
            Ok(()) => Some(SupportFiles { dir }),
            Err(e) => {
                eprintln!("nnc lsp: cannot write support files to {}: {e}", dir.display());
                None
            }
        }
    }

    /// Where the embedded module `std.<name>` is shown.
    pub fn std_module(&self, name: &str) -> PathBuf {
        self.dir.join("std").join(format!("{name}.nn"))
    }

    pub fn explanation(&self, code: Code) -> PathBuf {
        self.dir.join("explain").join(format!("{}.md", code.as_str()))
    }
}

fn write_all(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir.join("std"))?;
    std::fs::create_dir_all(dir.join("explain"))?;
    for (name, text) in nnc_compiler::program::STDLIB {
        let header = format!(
            "// Read-only copy of `use std.{name}`, embedded in nnc {}: editing it changes nothing.\n",
            env!("CARGO_PKG_VERSION")
        );
        // The header would shift every line: keep the text exactly as embedded
        // so positions from the checker match, and put the note at the end.
        let content = format!("{text}{}{header}", if text.ends_with('\n') { "" } else { "\n" });
        write_if_changed(&dir.join("std").join(format!("{name}.nn")), &content)?;
    }
    for &code in Code::ALL {
        let content = format!(
            "# {} ({}): {}\n\n{}\n\nThe rule is stated in the manual: `docs/src/{}` of the nnc repository.\n\n\
                (`nnc explain {}` prints this text.)\n",
            code.as_str(),
            code.severity().as_str(),
            code.title(),
            code.explanation(),
            code.manual_page(),
            code.as_str()
        );
        write_if_changed(&dir.join("explain").join(format!("{}.md", code.as_str())), &content)?;
    }
    Ok(())
}

fn write_if_changed(path: &Path, content: &str) -> std::io::Result<()> {
    if std::fs::read_to_string(path).is_ok_and(|old| old == content) {
        return Ok(());
    }
    // Write then rename, so a concurrent server never reads half a file.
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, content)?;
    std::fs::rename(&tmp, path)
}
