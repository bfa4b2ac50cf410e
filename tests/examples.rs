//! Every example and stdlib file checks clean; every number a seed states
//! (written as `//! expect` lines in the example) is reproduced; summaries
//! are snapshotted.

#![forbid(unsafe_code)]

mod common;

use common::*;
use nnc_compiler::summary;

#[test]
fn examples_check_clean_and_reproduce_the_seeds() {
    let mut failures = Vec::new();
    let mut checked = 0;
    for path in nn_files("examples") {
        let a = analyse_path(&path);
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if !a.result.diagnostics.is_empty() {
            failures.push(format!("{name}: expected no diagnostics, got {:#?}", a.result.diagnostics));
            continue;
        }
        checked += check_expectations(&path, &a, &mut failures);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(checked >= 60, "only {checked} expectations found");
}

#[test]
fn example_summaries_match_snapshots() {
    let mut failures = Vec::new();
    for path in nn_files("examples") {
        let a = analyse_path(&path);
        let text: Vec<String> = a.result.models.iter().filter(|m| m.file.0 == 0).map(summary::render).collect();
        let stem = path.file_stem().unwrap().to_string_lossy().to_string();
        if let Some(diff) =
            snapshot(&root().join("tests/snapshots/summary").join(format!("{stem}.txt")), &text.join("\n"))
        {
            failures.push(diff);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn parameter_names_are_unique_in_every_model() {
    for path in nn_files("examples") {
        let a = analyse_path(&path);
        for m in &a.result.models {
            let mut seen = std::collections::HashSet::new();
            for l in &m.layers {
                for p in &l.params {
                    let full = format!("{}.{}", l.name, p.name);
                    assert!(seen.insert(full.clone()), "{}: {} names `{full}` twice", path.display(), m.name);
                }
            }
        }
    }
}

#[test]
fn stdlib_checks_clean() {
    for path in nn_files("stdlib") {
        let a = analyse_path(&path);
        assert!(a.result.diagnostics.is_empty(), "{}: {:#?}", path.display(), a.result.diagnostics);
    }
}
