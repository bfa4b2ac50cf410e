//! `nnc fmt`: rewrites files in the canonical layout, `--check` only reports,
//! files with syntax errors are left alone.

use std::path::PathBuf;
use std::process::Command;

fn nnc(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_nnc")).args(args).output().expect("run nnc");
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr))
}

#[test]
fn fmt_rewrites_check_reports_and_broken_files_stay() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("fmt");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    let messy = dir.join("messy.nn");
    std::fs::write(&messy, "dim N\nmodel M(k=3){\ninput x:[N,8]\n  let h=x|>dense(k)   |>relu // hidden\noutput y=h\n}\n").expect("write");
    let broken = dir.join("broken.nn");
    let broken_text = "model M {\n  let = \n}\n";
    std::fs::write(&broken, broken_text).expect("write");
    let (messy_s, broken_s) = (messy.display().to_string(), broken.display().to_string());

    let (code, out) = nnc(&["fmt", "--check", &messy_s]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("messy.nn would be reformatted"), "{out}");

    let (code, out) = nnc(&["fmt", &messy_s]);
    assert_eq!(code, 0, "{out}");
    let formatted = std::fs::read_to_string(&messy).expect("read");
    assert_eq!(formatted, "dim N\nmodel M(k = 3) {\n    input x: [N, 8]\n    let h = x |> dense(k) |> relu // hidden\n    output y = h\n}\n");
    assert_eq!(nnc(&["fmt", "--check", &messy_s]).0, 0);
    // The formatted file still checks.
    assert_eq!(nnc(&["check", &messy_s]).0, 0);

    let (code, out) = nnc(&["fmt", &broken_s]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("syntax error"), "{out}");
    assert_eq!(std::fs::read_to_string(&broken).expect("read"), broken_text);

    assert_eq!(nnc(&["fmt", "--check", &dir.join("missing.nn").display().to_string()]).0, 2);
}
