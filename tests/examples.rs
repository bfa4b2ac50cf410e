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

/// A model called twice (a Siamese pair) applies one set of weights twice, as a Keras model called twice
/// does: the summary lists both applications but counts the parameters once, like `nnc run`, and the JSON
/// rows still sum to the total.
#[test]
fn a_model_called_twice_counts_its_parameters_once() {
    let dir = std::env::temp_dir().join(format!("nnc-shared-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("pair.nn");
    std::fs::write(
        &file,
        "dim N\n\nmodel Encoder {\n    input x: [N, 32]\n    output z = dense(x, 8)\n}\n\nmodel Pair {\n    \
         input a: [N, 32]\n    input b: [N, 32]\n    output d = Encoder(a) - Encoder(b)\n}\n\ntrain t {\n    \
         model     = Pair()\n    data      = synthetic(n = 4)\n    loss      = mse(d, 0)\n    batch     = 2\n    \
         epochs    = 1\n}\n",
    )
    .unwrap();
    let nnc = |args: &[&str]| {
        let o = std::process::Command::new(nnc_bin()).args(args).arg(&file).output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8(o.stdout).unwrap()
    };
    let table = nnc(&["summary", "--model", "Pair"]);
    assert!(table.contains("Total params: 264") && table.contains("shared"), "{table}");
    let json: serde_json::Value =
        serde_json::from_str(&nnc(&["summary", "--format", "json", "--model", "Pair"])).unwrap();
    let model = &json["models"][0];
    let rows: i64 = model["layers"].as_array().unwrap().iter().map(|l| l["params"].as_i64().unwrap()).sum();
    assert_eq!((model["total"].as_i64(), rows), (Some(264), 264));
    let out = dir.join("out");
    let run = nnc(&["run", "--out", out.to_str().unwrap()]);
    assert!(run.contains("264 parameters"), "{run}");
    let _ = std::fs::remove_dir_all(&dir);
}
