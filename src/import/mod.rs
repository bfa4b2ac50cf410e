//! `nnc import model.keras | config.json [-o OUT.nn]`: a Keras 3 model as an
//! `.nn` file ([`keras::translate`]), formatted in the canonical layout.
//!
//! Reading is bounded: the config is at most the source cap (16 MiB,
//! `NNC_MAX_SOURCE_BYTES`) whether read directly or inflated from the
//! `.keras` zip (whose other members, the weights, are never read), and
//! JSON nesting is limited by serde_json's recursion limit.

pub mod keras;
pub mod zip;

use std::path::Path;

use nnc_compiler::sandbox::{self, Access, Cap};

/// The Keras config JSON of `path`: a `.keras` archive's `config.json`, or the file itself.
pub fn read_config(path: &Path) -> Result<String, String> {
    let (mut file, len) = sandbox::open(path, &Access::User).map_err(|e| e.to_string())?;
    let cap = Cap::Source.bytes();
    let mut magic = [0u8; 4];
    let is_zip = len >= 4 && {
        use std::io::{Read, Seek};
        file.read_exact(&mut magic).map_err(|e| e.to_string())?;
        file.rewind().map_err(|e| e.to_string())?;
        magic == [0x50, 0x4b, 0x03, 0x04]
    };
    let bytes = if is_zip {
        zip::read_member(&mut file, len, "config.json", cap).map_err(|e| format!("{}: {e}", path.display()))?
    } else {
        if len > cap {
            return Err(format!(
                "{} is larger than {} (raise {} to read it)",
                path.display(),
                sandbox::human_size(cap),
                Cap::Source.env()
            ));
        }
        sandbox::read_limited(file, cap, len)
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("{} grew past {} while being read", path.display(), sandbox::human_size(cap)))?
    };
    String::from_utf8(bytes).map_err(|_| format!("{}: the Keras config is not UTF-8 text", path.display()))
}

/// The `.nn` text of the Keras model config `json`, formatted (`origin` names it in the header comment).
pub fn to_nn(json: &str, origin: &str) -> Result<String, String> {
    let text = keras::translate(json, origin).map_err(|e| e.to_string())?;
    nnc_syntax::format::format_source(&text)
        .map_err(|e| format!("internal error: the translation does not parse ({e:?}):\n{text}"))
}

/// `nnc import`: reads `path`, writes the `.nn` file to `out` (atomically) or returns it for stdout.
pub fn run(path: &Path, out: Option<&Path>) -> Result<Option<String>, String> {
    let json = read_config(path)?;
    let origin = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let text = to_nn(&json, &origin)?;
    match out {
        Some(o) => {
            nnc_runtime::io::checkpoint::write_atomically(o, text.as_bytes()).map_err(|e| e.to_string())?;
            Ok(None)
        }
        None => Ok(Some(text)),
    }
}
