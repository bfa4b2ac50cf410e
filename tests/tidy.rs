//! Tidy gates that rustfmt and clippy do not enforce: no line of Rust over 120 columns (rustfmt cannot break
//! long string literals or macro arguments, and leaves them), every crate root either forbids `unsafe` or
//! says why it needs it (`// Unsafe code: …`, with a `// SAFETY:` comment at each block, which clippy checks),
//! and no function runs over 120 lines without saying why in a `// long: <why>` line among the comments and
//! attributes right above it.

#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};

const MAX_COLUMNS: usize = 120;
const FORBID: &str = "#![forbid(unsafe_code)]";
const REASON: &str = "// Unsafe code:";
const MAX_FN_LINES: usize = 120;
const LONG: &str = "// long:";

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

/// The code of `text` with comments, string and character literals blanked to spaces (line breaks kept), so
/// braces and `fn` are found only where they are code.
fn code_only(text: &str) -> String {
    let c: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let blank = |out: &mut String, ch: char| out.push(if ch == '\n' { '\n' } else { ' ' });
    let mut i = 0;
    while i < c.len() {
        let start = i;
        if peek(&c, i) == '/' && peek(&c, i + 1) == '/' {
            while i < c.len() && c[i] != '\n' {
                i += 1;
            }
        } else if peek(&c, i) == '/' && peek(&c, i + 1) == '*' {
            // Block comments nest in Rust.
            let mut depth = 0;
            while i < c.len() {
                if peek(&c, i) == '/' && peek(&c, i + 1) == '*' {
                    depth += 1;
                    i += 2;
                } else if peek(&c, i) == '*' && peek(&c, i + 1) == '/' {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else if peek(&c, i) == 'r'
            && (peek(&c, i + 1) == '"' || (peek(&c, i + 1) == '#' && matches!(peek(&c, i + 2), '"' | '#')))
            && (i == 0 || !(c[i - 1].is_alphanumeric() || c[i - 1] == '_'))
        {
            // Raw string: r"…", r#"…"#, …
            let mut hashes = 0;
            i += 1;
            while peek(&c, i) == '#' {
                hashes += 1;
                i += 1;
            }
            i += 1;
            while i < c.len() && !(c[i] == '"' && (1..=hashes).all(|k| peek(&c, i + k) == '#')) {
                i += 1;
            }
            i = (i + 1 + hashes).min(c.len());
        } else if peek(&c, i) == '"' {
            i += 1;
            while i < c.len() && c[i] != '"' {
                i += if c[i] == '\\' { 2 } else { 1 };
            }
            i = (i + 1).min(c.len());
        } else if peek(&c, i) == '\'' && (peek(&c, i + 2) == '\'' || peek(&c, i + 1) == '\\') {
            // A character literal ('x', '\n', '\u{..}'), not a lifetime ('a).
            i += 1;
            while i < c.len() && c[i] != '\'' {
                i += if c[i] == '\\' { 2 } else { 1 };
            }
            i = (i + 1).min(c.len());
        } else {
            out.push(c[i]);
            i += 1;
            continue;
        }
        for &ch in &c[start..i.min(c.len())] {
            blank(&mut out, ch);
        }
    }
    out
}

fn peek(c: &[char], i: usize) -> char {
    c.get(i).copied().unwrap_or('\0')
}

/// Functions longer than the limit without a `// long:` reason: (line of `fn`, name, lines).
fn long_functions(text: &str) -> Vec<(usize, String, usize)> {
    let code = code_only(text);
    let lines: Vec<&str> = text.lines().collect();
    let code_lines: Vec<&str> = code.lines().collect();
    let mut found = Vec::new();
    for (i, l) in code_lines.iter().enumerate() {
        let Some(at) = find_fn(l) else { continue };
        let name: String = l[at + 3..].trim_start().chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
        if name.is_empty() {
            continue;
        }
        // The body: from the first `{` after the signature (a `;` first means no body) to its match.
        let mut depth = 0usize;
        let mut end = None;
        'scan: for (j, cl) in code_lines.iter().enumerate().skip(i) {
            let from = if j == i { at } else { 0 };
            for ch in cl[from..].chars() {
                match ch {
                    ';' if depth == 0 => break 'scan,
                    '{' => depth += 1,
                    '}' => {
                        depth = depth.saturating_sub(1);
                        if depth == 0 {
                            end = Some(j);
                            break 'scan;
                        }
                    }
                    _ => {}
                }
            }
        }
        let Some(end) = end else { continue };
        let n = end - i + 1;
        if n <= MAX_FN_LINES {
            continue;
        }
        // The comments and attributes right above the `fn`.
        let reasoned = lines[..i]
            .iter()
            .rev()
            .map(|l| l.trim())
            .take_while(|l| l.starts_with("//") || l.starts_with("#[") || l.starts_with("#!["))
            .any(|l| l.starts_with(LONG) && l.len() > LONG.len() + 3);
        if !reasoned {
            found.push((i + 1, name, n));
        }
    }
    found
}

/// The byte offset of a `fn` keyword in a line of code.
fn find_fn(l: &str) -> Option<usize> {
    let b = l.as_bytes();
    let mut from = 0;
    while let Some(k) = l[from..].find("fn ") {
        let at = from + k;
        if at == 0 || !(b[at - 1].is_ascii_alphanumeric() || b[at - 1] == b'_') {
            return Some(at);
        }
        from = at + 3;
    }
    None
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
        for (line, name, n) in long_functions(&text) {
            problems.push(format!(
                "{rel}:{line}: fn {name} is {n} lines (at most {MAX_FN_LINES} without a `{LONG} <why>` line above it)"
            ));
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

#[test]
fn the_long_function_scan_counts_code_not_comments_or_strings() {
    let body = |n: usize| "    let x = 1;\n".repeat(n);
    let long = format!("fn f() {{\n{}}}\n", body(MAX_FN_LINES));
    assert_eq!(long_functions(&long), [(1, "f".to_string(), MAX_FN_LINES + 2)]);
    assert!(long_functions(&format!("fn f() {{\n{}}}\n", body(MAX_FN_LINES - 2))).is_empty());
    // A reason among the comments and attributes above it.
    assert!(long_functions(&format!("// long: one table of rules\n#[allow(x)]\n{long}")).is_empty());
    assert_eq!(long_functions(&format!("// long:\n{long}")).len(), 1, "an empty reason is no reason");
    assert_eq!(long_functions(&format!("// long: why\n\n{long}")).len(), 1, "a blank line ends the block");
    // Braces in strings, characters, comments and raw strings do not end the body; lifetimes are not chars.
    let tricky = format!(
        "pub(crate) fn g<'a>(x: &'a str) -> char {{\n    let s = \"}}\"; let c = '}}'; // }}\n    \
         /* }} /* }} */ */\n    let r = r#\"}}\"#;\n{}    '{{'\n}}\nfn h() {{}}\n",
        body(MAX_FN_LINES)
    );
    assert_eq!(long_functions(&tricky), [(1, "g".to_string(), MAX_FN_LINES + 6)]);
    // Declarations without a body.
    assert!(long_functions(&format!("trait T {{ fn f(); }}\n{}", body(200))).is_empty());
}
