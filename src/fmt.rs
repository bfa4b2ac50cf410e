//! `nnc fmt FILE…`: rewrite files in the canonical layout
//! (`nnc_syntax::format`), or with `--check` only say which would change.

use std::path::PathBuf;
use std::process::ExitCode;

use nnc_compiler::sandbox::{self, Access, Cap, FileError};
use nnc_syntax::format::{FormatError, format_source};

/// Exit 0 when every file is (or now is) formatted, 1 when `--check` found
/// files to format or a file could not be formatted, 2 on I/O failure.
pub fn run(files: &[PathBuf], check: bool) -> ExitCode {
    if files.is_empty() {
        eprintln!("error: nnc fmt needs at least one FILE");
        return ExitCode::from(2);
    }
    let mut unformatted = false;
    let mut io_error = false;
    for path in files {
        // A regular file within the source cap (a FIFO or `/dev/zero` would not end).
        let read = sandbox::read(path, &Access::User, Cap::Source).map_err(|e| match e {
            FileError::Io { message, .. } => message,
            refused => refused.to_string(),
        });
        let text = match read.and_then(|b| String::from_utf8(b).map_err(|_| "not valid UTF-8".to_string())) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("error: cannot read `{}`: {e}", path.display());
                io_error = true;
                continue;
            }
        };
        let formatted = match format_source(&text) {
            Ok(f) => f,
            Err(e @ (FormatError::SyntaxErrors(_) | FormatError::Unstable)) => {
                eprintln!("error: `{}` not formatted: {e}", path.display());
                unformatted = true;
                continue;
            }
        };
        if formatted == text {
            continue;
        }
        if check {
            println!("{} would be reformatted", path.display());
            unformatted = true;
        } else if let Err(e) = std::fs::write(path, formatted) {
            eprintln!("error: cannot write `{}`: {e}", path.display());
            io_error = true;
        }
    }
    if io_error {
        ExitCode::from(2)
    } else if unformatted {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
