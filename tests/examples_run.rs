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

use std::process::Command;

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
            let o = Command::new(nnc_bin())
                .current_dir(root())
                .arg("run")
                .arg(&file)
                .args(["--train", &train, "--epochs", "1", "--steps", "1", "--out"])
                .arg(&out)
                .output()
                .unwrap();
            ran += 1;
            eprintln!("{shown} {train}: {:.1} s", started.elapsed().as_secs_f64());
            if !o.status.success() {
                failures.push(format!(
                    "{shown} --train {train}: exit {:?}\n{}",
                    o.status.code(),
                    String::from_utf8_lossy(&o.stderr)
                ));
                continue;
            }
            // Every op ran compiled: fused or a library routine of the
            // compiled backend, none on the one-node reference fallback.
            let stdout = String::from_utf8_lossy(&o.stdout);
            if let Some(line) = stdout.lines().find(|l| l.contains("reference fallback")) {
                failures.push(format!("{shown} --train {train}: {line}"));
            }
            let history = std::fs::read_to_string(out.join("history.csv")).unwrap_or_default();
            let mut lines = history.lines();
            let header: Vec<&str> = lines.next().unwrap_or("").split(',').collect();
            let row: Vec<&str> = lines.next().unwrap_or("").split(',').collect();
            let loss = header.iter().position(|h| *h == "loss").and_then(|i| row.get(i)?.parse::<f64>().ok());
            if !loss.is_some_and(f64::is_finite) {
                failures.push(format!("{shown} --train {train}: no finite loss in history.csv:\n{history}"));
            }
        }
    }
    let _ = std::fs::remove_dir_all(&out_root);
    assert!(ran > 20, "only {ran} train blocks found");
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
