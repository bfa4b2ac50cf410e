//! `nnc fmt`: rewrites files in the canonical layout, `--check` only reports,
//! files with syntax errors are left alone.

#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::Command;

fn nnc(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_nnc")).args(args).output().expect("run nnc");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

#[test]
fn fmt_rewrites_check_reports_and_broken_files_stay() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("fmt");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    let messy = dir.join("messy.nn");
    std::fs::write(
        &messy,
        "dim N\nmodel M(k=3){\ninput x:[N,8]\n  let h=x|>dense(k)   |>relu // hidden\noutput y=h\n}\n",
    )
    .expect("write");
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
    assert_eq!(
        formatted,
        "dim N\nmodel M(k = 3) {\n    input x: [N, 8]\n    let h = x |> dense(k) |> relu // hidden\n    output y = h\n\
            }\n"
    );
    assert_eq!(nnc(&["fmt", "--check", &messy_s]).0, 0);
    // The formatted file still checks.
    assert_eq!(nnc(&["check", &messy_s]).0, 0);

    let (code, out) = nnc(&["fmt", &broken_s]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("syntax error"), "{out}");
    assert_eq!(std::fs::read_to_string(&broken).expect("read"), broken_text);

    assert_eq!(nnc(&["fmt", "--check", &dir.join("missing.nn").display().to_string()]).0, 2);
}

/// `.nn` files of a directory of the repository, sorted.
fn nn_files(dir: &str) -> Vec<PathBuf> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(dir);
    let mut v: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "nn"))
        .collect();
    v.sort();
    v
}

/// Every shipped `.nn` file is in the canonical layout (`nnc fmt --check` passes on it), and
/// formatting is idempotent on every file that parses, the golden test files included.
#[test]
fn shipped_files_are_canonical_and_formatting_is_idempotent() {
    use nnc_syntax::format::format_source;
    let mut failures = Vec::new();
    for dir in ["examples", "examples/zoo", "stdlib", "tests/check_ok", "tests/diagnostics"] {
        let files = nn_files(dir);
        assert!(!files.is_empty(), "no .nn files in {dir}");
        for path in files {
            // A golden file may be invalid UTF-8 on purpose (E0004); it has nothing to format.
            let Ok(text) = String::from_utf8(std::fs::read(&path).expect("read")) else {
                if matches!(dir, "examples" | "examples/zoo" | "stdlib") {
                    failures.push(format!("{}: not UTF-8", path.display()));
                }
                continue;
            };
            let Ok(once) = format_source(&text) else {
                if matches!(dir, "examples" | "examples/zoo" | "stdlib") {
                    failures.push(format!("{}: does not format", path.display()));
                }
                continue;
            };
            if matches!(dir, "examples" | "examples/zoo" | "stdlib") && once != text {
                failures.push(format!("{}: not in the canonical layout (run `nnc fmt` on it)", path.display()));
            }
            match format_source(&once) {
                Ok(twice) if twice == once => {}
                _ => failures.push(format!("{}: formatting twice differs from once", path.display())),
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    let shipped: Vec<String> = ["examples", "examples/zoo", "stdlib"]
        .iter()
        .flat_map(|d| nn_files(d))
        .map(|p| p.display().to_string())
        .collect();
    let mut args = vec!["fmt", "--check"];
    args.extend(shipped.iter().map(String::as_str));
    let (code, out) = nnc(&args);
    assert_eq!(code, 0, "nnc fmt --check on the shipped files: {out}");
}

/// Train fields align their `=`; `let` and `output` lines never do, in a train block or
/// elsewhere (docs/src/decisions.md), and hand-aligned `=` in them is undone.
#[test]
fn alignment_is_for_train_fields_only() {
    use nnc_syntax::format::format_source;
    let src = "dim N\nmodel M {\n    input x: [N, 4]\n    let h      = dense(x, 3)\n    output y   = h\n    output \
        yy  = h\n}\n\
               train t {\n    model = M()\n    data = synthetic(n = 4)\n    let hh    = 1\n    optimizer = \
                   sgd(0.1)\n    loss = mse(y, 0)\n}\n";
    let want = "dim N\nmodel M {\n    input x: [N, 4]\n    let h = dense(x, 3)\n    output y = h\n    output yy = h\n\
        }\n\
                train t {\n    model     = M()\n    data      = synthetic(n = 4)\n    let hh = 1\n    optimizer = \
                    sgd(0.1)\n    loss      = mse(y, 0)\n}\n";
    let got = format_source(src).expect("formats");
    assert_eq!(got, want);
    assert_eq!(format_source(&got).expect("formats"), got, "idempotent");
}
