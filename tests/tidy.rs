//! Tidy gates that rustfmt and clippy do not enforce: no line of Rust over 120 columns (rustfmt cannot break
//! long string literals or macro arguments, and leaves them), and every crate root either forbids `unsafe` or
//! says why it needs it (`// Unsafe code: …`, with a `// SAFETY:` comment at each block, which clippy checks).

#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};

const MAX_COLUMNS: usize = 120;
const FORBID: &str = "#![forbid(unsafe_code)]";
const REASON: &str = "// Unsafe code:";

/// Every `.rs` file under `dir`, skipping build output and hidden directories.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let path = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        if path.is_dir() {
            if !name.starts_with('.') && name != "target" {
                rust_files(&path, out);
            }
        } else if name.ends_with(".rs") {
            out.push(path);
        }
    }
}

/// Lines (1-based) longer than the limit, counted in characters as rustfmt counts width.
fn long_lines(text: &str) -> Vec<(usize, usize)> {
    text.lines().enumerate().map(|(i, l)| (i + 1, l.chars().count())).filter(|&(_, n)| n > MAX_COLUMNS).collect()
}

/// Whether `rel` (relative to the workspace, `/`-separated) is the root of a crate target: a library or binary,
/// an integration test, a bench or an example.
fn is_crate_root(rel: &str) -> bool {
    let parts: Vec<&str> = rel.split('/').collect();
    let (dir, file) = match parts.as_slice() {
        [.., dir, file] => (*dir, *file),
        _ => return false,
    };
    match parts.len() {
        // src/main.rs, tests/x.rs, benches/x.rs, examples/x.rs
        2 => (dir == "src" && file == "main.rs") || matches!(dir, "tests" | "benches" | "examples"),
        // member/src/lib.rs, member/tests/x.rs, …, and tests/group/main.rs (a multi-file test)
        3 => {
            (dir == "src" && matches!(file, "lib.rs" | "main.rs"))
                || (matches!(dir, "tests" | "benches" | "examples") && parts[0] != "tests")
                || (parts[0] == "tests" && file == "main.rs")
        }
        _ => false,
    }
}

fn declares_unsafe_policy(text: &str) -> bool {
    text.lines().any(|l| l.trim() == FORBID || l.trim_start().starts_with(REASON))
}

#[test]
fn rust_lines_fit_in_120_columns_and_crate_roots_declare_their_unsafe_policy() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(root, &mut files);
    files.sort();
    assert!(files.len() > 50, "found only {} .rs files under {}", files.len(), root.display());
    let mut problems = Vec::new();
    let mut roots = 0;
    for path in &files {
        let rel = path.strip_prefix(root).unwrap_or(path).to_string_lossy().replace('\\', "/");
        let Ok(text) = std::fs::read_to_string(path) else { continue };
        for (line, n) in long_lines(&text) {
            problems.push(format!("{rel}:{line}: {n} columns (at most {MAX_COLUMNS})"));
        }
        if is_crate_root(&rel) {
            roots += 1;
            if !declares_unsafe_policy(&text) {
                problems.push(format!("{rel}: a crate root without `{FORBID}` or a `{REASON} why` comment"));
            }
        }
    }
    assert!(roots >= 10, "found only {roots} crate roots: is `is_crate_root` still right?");
    assert!(problems.is_empty(), "{} tidy problems:\n{}", problems.len(), problems.join("\n"));
}

#[test]
fn the_checks_catch_what_they_are_for() {
    assert_eq!(long_lines(&format!("ok\n{}\n", "x".repeat(121))), [(2, 121)]);
    // Width is characters, not bytes.
    assert!(long_lines(&"→".repeat(120)).is_empty());
    for root in ["src/main.rs", "grammar/src/lib.rs", "tests/fmt.rs", "tests/hostile/main.rs", "jit/examples/k.rs"] {
        assert!(is_crate_root(root), "{root}");
    }
    for module in ["src/run.rs", "compiler/src/check/mod.rs", "tests/hostile/files.rs", "tests/common/mod.rs"] {
        assert!(!is_crate_root(module), "{module}");
    }
    assert!(!declares_unsafe_policy("//! Docs.\n\nuse std::fs;\n"));
    assert!(declares_unsafe_policy("//! Docs.\n\n#![forbid(unsafe_code)]\n"));
    assert!(declares_unsafe_policy("// Unsafe code: calls generated code.\n"));
}
