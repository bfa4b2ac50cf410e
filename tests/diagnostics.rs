//! Golden tests of `nnc check`: each `tests/diagnostics/*.nn` marks its
//! expected diagnostics rustc-style (`//~ ERROR E0304` on the line, `//~^`
//! for the line above). The rendered human and JSON outputs are snapshots
//! next to the file (`.stderr`, `.json`); `UPDATE_SNAPSHOTS=1` rewrites them.
//! A line `//@ env NAME=VALUE` sets an environment variable for that file's run (a size cap), a line
//! `//@ export` runs `nnc export --to keras` instead of `nnc check` (the E06xx codes),
//! and the repository's absolute path is written `<root>` in the snapshots, so they do not
//! depend on the machine. Every code has a fixture (`every_code_has_a_fixture`).

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

/// `//@ env NAME=VALUE` lines of a fixture.
fn env_directives(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("//@ env "))
        .filter_map(|kv| kv.trim().split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The output with the repository's absolute path (the project root, in E0501's message)
/// written `<root>`.
fn machine_independent(out: &str) -> String {
    out.replace(&root().display().to_string(), "<root>")
}

#[test]
fn diagnostics_match_annotations_and_snapshots() {
    let files = nn_files("tests/diagnostics");
    assert!(files.len() >= 40, "only {} golden files", files.len());
    let mut failures = Vec::new();
    for path in &files {
        let rel = path.strip_prefix(root()).unwrap();
        // Lossy: a fixture may hold invalid UTF-8 on purpose (E0004).
        let text = String::from_utf8_lossy(&std::fs::read(path).unwrap()).into_owned();
        let want = expected(&text);
        let env = env_directives(&text);
        if want.is_empty() {
            failures.push(format!("{}: no `//~` annotations", rel.display()));
        }
        let nnc = || {
            let mut c = Command::new(nnc_bin());
            c.current_dir(root()).envs(env.iter().map(|(k, v)| (k, v)));
            c
        };
        // `//@ export`: the diagnostics of `nnc export --to keras` (what Keras cannot express), into a
        // scratch directory, instead of `nnc check`'s.
        let scratch = std::env::temp_dir().join(format!("nnc-diag-export-{}", std::process::id()));
        let (command, after): (&str, Vec<String>) = if text.lines().any(|l| l.trim() == "//@ export") {
            ("export", vec!["--to".into(), "keras".into(), scratch.display().to_string()])
        } else {
            ("check", vec![])
        };
        let json_out = nnc().args([command, "--format", "json"]).arg(rel).args(&after).output().unwrap();
        let human_out = nnc().arg(command).arg(rel).args(&after).output().unwrap();
        let _ = std::fs::remove_dir_all(&scratch);
        let json_text = machine_independent(&String::from_utf8_lossy(&json_out.stdout));
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
        for (ext, content) in
            [("stderr", machine_independent(&String::from_utf8_lossy(&human_out.stderr))), ("json", json_text)]
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

/// Codes no golden fixture can show, each mapped to the test that exercises it instead
/// (`file::test_name`). Argue each entry: a code belongs here only if it arises from I/O,
/// the command line or the runtime in a way `nnc check FILE` cannot reproduce. Empty today:
/// even E0503 (a size cap) has a fixture, with `//@ env NNC_MAX_DATA_BYTES=…`.
const COVERED_ELSEWHERE: &[(&str, &str)] = &[];

/// Every code in the table (`nnc_syntax::Code::ALL`, E and W alike, the lints' too) has a
/// fixture in tests/diagnostics/ annotated with it, or an entry in [`COVERED_ELSEWHERE`]
/// naming an existing test. A new code without either fails here.
#[test]
fn every_code_has_a_fixture() {
    let mut annotated = std::collections::HashSet::new();
    for path in nn_files("tests/diagnostics") {
        let text = String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned();
        annotated.extend(expected(&text).into_iter().map(|(_, code)| code));
    }
    let codes: Vec<&str> = nnc_syntax::Code::ALL.iter().map(|c| c.as_str()).collect();
    let failures = coverage_failures(&codes, &annotated, COVERED_ELSEWHERE, &test_sources());
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The exemption list is checked, not trusted: a named test that does not exist, or an
/// exempted code that has a fixture after all (or is no code), is a failure.
#[test]
fn coverage_check_rejects_bad_exemptions() {
    let annotated: std::collections::HashSet<String> = ["E0001".to_string()].into();
    let sources = vec![("hostile/files.rs".to_string(), "fn oversized_sources_are_refused() {}".to_string())];
    let ok = coverage_failures(
        &["E0001", "E0503"],
        &annotated,
        &[("E0503", "files::oversized_sources_are_refused")],
        &sources,
    );
    assert!(ok.is_empty(), "{ok:?}");
    let missing = coverage_failures(&["E0001", "E0503"], &annotated, &[], &sources);
    assert!(missing.len() == 1 && missing[0].contains("E0503"), "{missing:?}");
    let no_test = coverage_failures(&["E0503"], &annotated, &[("E0503", "files::no_such_test")], &sources);
    assert!(no_test.len() == 1 && no_test[0].contains("no_such_test"), "{no_test:?}");
    let stale =
        coverage_failures(&["E0001"], &annotated, &[("E0001", "files::oversized_sources_are_refused")], &sources);
    assert!(stale.len() == 1 && stale[0].contains("has a fixture"), "{stale:?}");
}

/// The Rust sources of the integration tests, as (path under tests/, text).
fn test_sources() -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut dirs = vec![root().join("tests")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().filter_map(Result::ok) {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let rel = path.strip_prefix(root().join("tests")).unwrap().display().to_string();
                out.push((rel, std::fs::read_to_string(&path).unwrap()));
            }
        }
    }
    out
}

fn coverage_failures(
    codes: &[&str],
    annotated: &std::collections::HashSet<String>,
    exempt: &[(&str, &str)],
    sources: &[(String, String)],
) -> Vec<String> {
    let mut failures = Vec::new();
    for code in codes {
        let exemption = exempt.iter().find(|(c, _)| c == code);
        match (annotated.contains(*code), exemption) {
            (true, None) => {}
            (false, None) => {
                let severity = if code.starts_with('W') { "WARNING" } else { "ERROR" };
                failures.push(format!(
                    "{code} has no fixture: add tests/diagnostics/{code}_<what>.nn with `//~ {severity} {code}`, \
                     or argue an entry in COVERED_ELSEWHERE"
                ))
            }
            (true, Some(_)) => failures.push(format!("{code} has a fixture: drop it from COVERED_ELSEWHERE")),
            (false, Some((_, test))) => {
                // `file::name`: a `fn name(` in tests/file.rs or tests/*/file.rs.
                let (file, name) = test.split_once("::").unwrap_or(("", test));
                let found = sources.iter().any(|(path, text)| {
                    let stem = path.rsplit('/').next().unwrap_or(path).trim_end_matches(".rs");
                    stem == file && text.contains(&format!("fn {name}("))
                });
                if !found {
                    failures.push(format!("{code}: COVERED_ELSEWHERE names `{test}`, which is no test in tests/"));
                }
            }
        }
    }
    for (code, _) in exempt {
        if !codes.contains(code) {
            failures.push(format!("COVERED_ELSEWHERE lists {code}, which is no code"));
        }
    }
    failures
}
