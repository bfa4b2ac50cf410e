//! `nnc fmt FILE…`: rewrite files in the canonical layout
//! (`nnc_syntax::format`), or with `--check` only say which would change.

use std::path::PathBuf;
use std::process::ExitCode;

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
        let text = match std::fs::read_to_string(path) {
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
