//! Golden tests of `nnc check`: each `tests/diagnostics/*.nn` marks its
//! expected diagnostics rustc-style (`//~ ERROR E0304` on the line, `//~^`
//! for the line above). The rendered human and JSON outputs are snapshots
//! next to the file (`.stderr`, `.json`); `UPDATE_SNAPSHOTS=1` rewrites them.

#![forbid(unsafe_code)]

mod common;

use std::process::Command;

use common::*;

/// `(line (1-based), code)` pairs written in the file.
fn expected(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let mut rest = line;
        while let Some(pos) = rest.find("//~") {
            let marker = &rest[pos + 3..];
            let ups = marker.chars().take_while(|c| *c == '^').count();
            let mut words = marker[ups..].split_whitespace();
            let _severity = words.next();
            if let Some(code) = words.next() {
                out.push((i + 1 - ups, code.to_string()));
            }
            rest = &marker[ups..];
        }
    }
    out.sort();
    out
}

#[test]
fn diagnostics_match_annotations_and_snapshots() {
    let files = nn_files("tests/diagnostics");
    assert!(files.len() >= 40, "only {} golden files", files.len());
    let mut failures = Vec::new();
    for path in &files {
        let rel = path.strip_prefix(root()).unwrap();
        let text = std::fs::read_to_string(path).unwrap();
        let want = expected(&text);
        if want.is_empty() {
            failures.push(format!("{}: no `//~` annotations", rel.display()));
        }
        let json_out =
            Command::new(nnc_bin()).current_dir(root()).args(["check", "--format", "json"]).arg(rel).output().unwrap();
        let human_out = Command::new(nnc_bin()).current_dir(root()).arg("check").arg(rel).output().unwrap();
        let json_text = String::from_utf8_lossy(&json_out.stdout).to_string();
        let doc: serde_json::Value = match serde_json::from_str(&json_text) {
            Ok(d) => d,
            Err(e) => {
                failures.push(format!("{}: invalid JSON ({e}): {json_text}", rel.display()));
                continue;
            }
        };
        let mut got: Vec<(usize, String)> = doc["diagnostics"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["file"].as_str() == Some(&rel.display().to_string()))
            .map(|d| {
                (d["range"]["start"]["line"].as_u64().unwrap() as usize + 1, d["code"].as_str().unwrap().to_string())
            })
            .collect();
        got.sort();
        if got != want {
            failures.push(format!(
                "{}: expected {want:?}, got {got:?}\n{}",
                rel.display(),
                String::from_utf8_lossy(&human_out.stderr)
            ));
        }
        let has_error = want.iter().any(|(_, c)| c.starts_with('E'));
        let expected_exit = if has_error { 1 } else { 0 };
        if json_out.status.code() != Some(expected_exit) || human_out.status.code() != Some(expected_exit) {
            failures.push(format!(
                "{}: exit code {:?}, expected {expected_exit}",
                rel.display(),
                human_out.status.code()
            ));
        }
        for (ext, content) in [("stderr", String::from_utf8_lossy(&human_out.stderr).to_string()), ("json", json_text)]
        {
            if let Some(diff) = snapshot(&path.with_extension(ext), &content) {
                failures.push(diff);
            }
        }
    }
    assert!(failures.is_empty(), "{} failures:\n{}", failures.len(), failures.join("\n\n"));
}

#[test]
fn valid_models_check_clean_with_the_stated_types() {
    let files = nn_files("tests/check_ok");
    assert!(files.len() >= 10, "only {} valid models", files.len());
    let mut failures = Vec::new();
    for path in &files {
        let a = analyse_path(path);
        let rel = path.strip_prefix(root()).unwrap().display().to_string();
        if !a.result.diagnostics.is_empty() {
            let text = a
                .result
                .diagnostics
                .iter()
                .map(|d| format!("{} {} at {:?}", d.code.as_str(), d.message, d.primary.span))
                .collect::<Vec<_>>();
            failures.push(format!("{rel}: {}", text.join("; ")));
            continue;
        }
        let root_file = a.program.root();
        for (i, line) in root_file.text.lines().enumerate() {
            let Some(pos) = line.find("// : ") else { continue };
            let want = line[pos + 5..].trim();
            let on_line: Vec<String> = a
                .result
                .hints
                .iter()
                .filter(|h| h.origin.file.0 == 0 && root_file.lines.line_of(h.origin.span.start as usize) == i)
                .map(|h| h.value.to_string())
                .collect();
            let squash = |s: &str| s.replace(' ', "");
            if !on_line.iter().any(|v| squash(v) == squash(want)) {
                failures.push(format!("{rel}:{}: expected a binding of type {want}, found {on_line:?}", i + 1));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn explain_knows_every_code() {
    for code in nnc_syntax::Code::ALL {
        let out = Command::new(nnc_bin()).args(["explain", code.as_str()]).output().unwrap();
        assert!(out.status.success());
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains(code.as_str()) && text.contains(code.title()), "{text}");
    }
    let out = Command::new(nnc_bin()).args(["explain", "E9999"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}
