//! The model zoo (`examples/zoo/`): keras.applications families written in nnc from Keras's own
//! definitions. Every file checks clean, carries Keras's total/trainable/non-trainable counts as
//! `//! expect model` lines (computed by `tests/zoo/keras_counts.py` with Keras 3) and reproduces
//! them; every train block takes one training step on synthetic data; summaries are snapshotted
//! (one row per layer, a block's layers under its call's name). Files are discovered by listing
//! the directory, so a new family is covered without touching this file.

#![forbid(unsafe_code)]

mod common;

use common::*;
use nnc_compiler::summary;

#[test]
fn zoo_models_check_clean_with_keras_counts() {
    let files = nn_files("examples/zoo");
    assert!(files.len() >= 4, "only {} zoo files", files.len());
    let mut failures = Vec::new();
    for path in &files {
        let a = analyse_path(path);
        let shown = path.strip_prefix(root()).unwrap_or(path).display().to_string();
        if !a.result.diagnostics.is_empty() {
            failures.push(format!("{shown}: expected no diagnostics, got {:#?}", a.result.diagnostics));
            continue;
        }
        let text = std::fs::read_to_string(path).unwrap();
        if !parse_expectations(&text).iter().any(|e| matches!(e, Expect::Model { .. })) {
            failures.push(format!("{shown}: no `//! expect model` line with Keras's counts"));
        }
        check_expectations(path, &a, &mut failures);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn zoo_summaries_match_snapshots() {
    let mut failures = Vec::new();
    for path in nn_files("examples/zoo") {
        let a = analyse_path(&path);
        let text: Vec<String> = a.result.models.iter().filter(|m| m.file.0 == 0).map(summary::render).collect();
        let stem = path.file_stem().unwrap().to_string_lossy().to_string();
        let snap = root().join("tests/snapshots/summary/zoo").join(format!("{stem}.txt"));
        if let Some(diff) = snapshot(&snap, &text.join("\n")) {
            failures.push(diff);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_zoo_model_takes_one_training_step() {
    let out_root = std::env::temp_dir().join(format!("nnc-zoo-run-{}", std::process::id()));
    let mut failures = Vec::new();
    for file in nn_files("examples/zoo") {
        let analysis = analyse_path(&file);
        let shown = file.strip_prefix(root()).unwrap_or(&file).display().to_string();
        let trains: Vec<String> = analysis.result.trains.iter().map(|t| t.name.clone()).collect();
        if trains.is_empty() {
            failures.push(format!("{shown}: no train block, so `nnc run` cannot run it"));
        }
        for train in trains {
            let out = out_root.join(format!("{}-{train}", file.file_stem().unwrap().to_string_lossy()));
            let started = std::time::Instant::now();
            let result = run_one_step(&file, &train, &out);
            eprintln!("{shown} {train}: {:.1} s", started.elapsed().as_secs_f64());
            if let Err(e) = result {
                failures.push(format!("{shown} --train {train}: {e}"));
            }
        }
    }
    let _ = std::fs::remove_dir_all(&out_root);
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// `stdlib/blocks.nn` split into its blocks: (name, whether a `///` comment precedes it, its text).
fn stdlib_blocks() -> Vec<(String, bool, String)> {
    let text = std::fs::read_to_string(root().join("stdlib/blocks.nn")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let starts: Vec<usize> = (0..lines.len()).filter(|&i| lines[i].starts_with("block ")).collect();
    let mut blocks = Vec::new();
    for (k, &i) in starts.iter().enumerate() {
        let name: String =
            lines[i]["block ".len()..].chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
        let documented = i > 0 && lines[i - 1].starts_with("///");
        let end = starts.get(k + 1).copied().unwrap_or(lines.len());
        blocks.push((name, documented, code_of(&lines[i + 1..end].join("\n"))));
    }
    blocks
}

/// `text` without its `//` comments, so a block named only in prose does not count as used.
fn code_of(text: &str) -> String {
    text.lines().map(|l| l.split("//").next().unwrap_or("")).collect::<Vec<_>>().join("\n")
}

/// Whether `word` occurs in `text` as a whole identifier.
fn mentions(text: &str, word: &str) -> bool {
    let ident = |c: char| c.is_alphanumeric() || c == '_';
    text.match_indices(word).any(|(at, _)| {
        let before = text[..at].chars().next_back().is_none_or(|c| !ident(c));
        let after = text[at + word.len()..].chars().next().is_none_or(|c| !ident(c));
        before && after
    })
}

/// Every block of the standard library is documented with a `///` comment and used by an example,
/// directly or through another block an example uses (issue 11: "each documented and each used by
/// an example").
#[test]
fn every_stdlib_block_is_documented_and_used_by_an_example() {
    let mut examples = String::new();
    for dir in ["examples", "examples/zoo"] {
        for path in nn_files(dir) {
            examples.push_str(&code_of(&std::fs::read_to_string(path).unwrap()));
        }
    }
    let blocks = stdlib_blocks();
    assert!(blocks.len() >= 20, "only {} blocks in stdlib/blocks.nn", blocks.len());
    let mut used: Vec<bool> = blocks.iter().map(|(name, _, _)| mentions(&examples, name)).collect();
    // Blocks called from the body of a used block are used too: grow to the fixpoint.
    loop {
        let grown: Vec<bool> = blocks
            .iter()
            .enumerate()
            .map(|(i, (name, _, _))| {
                used[i] || blocks.iter().zip(&used).any(|((_, _, body), &u)| u && mentions(body, name))
            })
            .collect();
        if grown == used {
            break;
        }
        used = grown;
    }
    let mut failures = Vec::new();
    for ((name, documented, _), used) in blocks.iter().zip(&used) {
        if !documented {
            failures.push(format!("block `{name}` has no `///` comment"));
        }
        if !used {
            failures.push(format!("block `{name}` is used by no example"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
