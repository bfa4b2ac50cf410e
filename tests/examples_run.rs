//! Every train block of every example runs end to end through `nnc run`:
//! data loading (real sets or synthetic), one step of training, validation,
//! history and plot. `--epochs 1 --steps 1` keeps the heavy ones (VGG16 on
//! 224×224 images, the 40M-parameter dense classifier) to seconds; the
//! accuracy of real training runs is the business of `tests/training.rs`.
//! Examples are discovered by listing `examples/`, so a new one is covered
//! without touching this file. Runs use the default (compiled) backend,
//! and no op may run on its one-node reference fallback.

#![forbid(unsafe_code)]

mod common;

use common::*;

#[test]
fn every_train_block_of_every_example_runs() {
    let out_root = std::env::temp_dir().join(format!("nnc-examples-run-{}", std::process::id()));
    let mut failures = Vec::new();
    let mut ran = 0;
    for file in nn_files("examples") {
        let analysis = analyse_path(&file);
        let trains: Vec<String> = analysis.result.trains.iter().map(|t| t.name.clone()).collect();
        let shown = file.strip_prefix(root()).unwrap_or(&file).display().to_string();
        if trains.is_empty() {
            failures.push(format!("{shown}: no train block, so `nnc run` cannot run it"));
        }
        for train in trains {
            let out = out_root.join(format!("{}-{train}", file.file_stem().unwrap().to_string_lossy()));
            let started = std::time::Instant::now();
            ran += 1;
            let result = run_one_step(&file, &train, &out);
            eprintln!("{shown} {train}: {:.1} s", started.elapsed().as_secs_f64());
            if let Err(e) = result {
                failures.push(format!("{shown} --train {train}: {e}"));
            }
        }
    }
    let _ = std::fs::remove_dir_all(&out_root);
    assert!(ran > 20, "only {ran} train blocks found");
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
