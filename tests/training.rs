//! Training end to end through `nnc run` on the shipped real data: stated
//! accuracies, the least-squares optimum, reproducibility, non-finite
//! detection, checkpoints that survive a kill.

#![forbid(unsafe_code)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

fn run(args: &[&str], out: &Path) -> (bool, String, String) {
    let o = Command::new(nnc_bin()).current_dir(root()).arg("run").args(args).arg("--out").arg(out).output().unwrap();
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("nnc-train-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// The last row of history.csv as (column, value) pairs.
fn last_epoch(dir: &Path) -> Vec<(String, f64)> {
    let text = std::fs::read_to_string(dir.join("history.csv")).expect("history.csv");
    let mut lines = text.lines();
    let header: Vec<String> = lines.next().unwrap().split(',').map(str::to_string).collect();
    let last = lines.last().expect("an epoch");
    header.into_iter().zip(last.split(',').map(|v| v.parse().unwrap_or(f64::NAN))).collect()
}

fn value(row: &[(String, f64)], name: &str) -> f64 {
    row.iter().find(|(k, _)| k == name).map(|(_, v)| *v).unwrap_or_else(|| panic!("no column {name} in {row:?}"))
}

#[test]
fn mlp_on_uci_digits_reaches_96_percent() {
    let out = tmp("digits");
    let (ok, stdout, stderr) = run(&["examples/digits_mlp.nn"], &out);
    assert!(ok, "{stdout}\n{stderr}");
    let acc = value(&last_epoch(&out), "val_accuracy");
    assert!(acc >= 0.96, "validation accuracy {acc}\n{stdout}");
    assert!(out.join("history.svg").exists());
}

#[test]
fn fish_regression_reaches_the_least_squares_loss() {
    // Closed form on the z-scored table: solve the normal equations.
    let text = std::fs::read_to_string(root().join("data/fish.csv")).unwrap();
    let rows: Vec<[f64; 3]> = text
        .lines()
        .skip(1)
        .map(|l| {
            let c: Vec<f64> = l.split(',').skip(1).map(|v| v.parse().unwrap()).collect();
            [c[4], c[5], c[0]] // Height, Width, Weight
        })
        .collect();
    let n = rows.len() as f64;
    let z = |j: usize| {
        let m = rows.iter().map(|r| r[j]).sum::<f64>() / n;
        let s = (rows.iter().map(|r| (r[j] - m).powi(2)).sum::<f64>() / n).sqrt();
        rows.iter().map(|r| (r[j] - m) / s).collect::<Vec<f64>>()
    };
    let (h, w, y) = (z(0), z(1), z(2));
    // Centered data: no intercept needed; 2×2 normal equations.
    let (shh, sww, shw) = (
        h.iter().map(|a| a * a).sum::<f64>(),
        w.iter().map(|a| a * a).sum::<f64>(),
        h.iter().zip(&w).map(|(a, b)| a * b).sum::<f64>(),
    );
    let (shy, swy) =
        (h.iter().zip(&y).map(|(a, b)| a * b).sum::<f64>(), w.iter().zip(&y).map(|(a, b)| a * b).sum::<f64>());
    let det = shh * sww - shw * shw;
    let (bh, bw) = ((shy * sww - swy * shw) / det, (swy * shh - shy * shw) / det);
    let optimum = h.iter().zip(&w).zip(&y).map(|((a, b), t)| (t - bh * a - bw * b).powi(2)).sum::<f64>() / n;

    let out = tmp("fish");
    let (ok, stdout, stderr) = run(&["tests/training/fish_ols.nn"], &out);
    assert!(ok, "{stdout}\n{stderr}");
    let loss = value(&last_epoch(&out), "loss");
    assert!((loss - optimum).abs() < 1e-3, "trained loss {loss}, least squares {optimum}");
}

/// The design test of the data-source schema: a JSON Lines copy of the fish table (Height and Width as one
/// list-valued key) trains to the loss the CSV reaches, through `jsonl`'s schema entry and reader only.
#[test]
fn jsonl_copy_of_the_fish_table_trains_like_the_csv() {
    let text = std::fs::read_to_string(root().join("data/fish.csv")).unwrap();
    let mut jsonl = String::new();
    for l in text.lines().skip(1) {
        let c: Vec<&str> = l.split(',').collect();
        jsonl.push_str(&format!("{{\"species\": \"{}\", \"hw\": [{}, {}], \"Weight\": {}}}\n", c[0], c[5], c[6], c[1]));
    }
    let dir = tmp("jsonl-fish");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("fish.jsonl"), jsonl).unwrap();
    let model = std::fs::read_to_string(root().join("tests/training/fish_ols.nn")).unwrap();
    let model = model.replace(
        "csv(\"../../data/fish.csv\", x = [\"Height\", \"Width\"], y = [\"Weight\"],",
        "jsonl(\"fish.jsonl\", x = \"hw\", y = \"Weight\",",
    );
    assert!(model.contains("jsonl("), "fish_ols.nn changed: update this test");
    std::fs::write(dir.join("fish.nn"), model).unwrap();
    let (out_csv, out_jsonl) = (tmp("jsonl-fish-csv-out"), dir.join("out"));
    let (ok, stdout, stderr) = run(&["tests/training/fish_ols.nn"], &out_csv);
    assert!(ok, "{stdout}\n{stderr}");
    let o = Command::new(nnc_bin()).current_dir(&dir).args(["run", "fish.nn", "--out", "out"]).output().unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert!(o.status.success(), "{stdout}\n{stderr}");
    let (a, b) = (value(&last_epoch(&out_csv), "loss"), value(&last_epoch(&out_jsonl), "loss"));
    assert!((a - b).abs() < 1e-5, "csv loss {a}, jsonl loss {b}");
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&out_csv);
}

#[test]
fn one_seed_reproduces_a_run_bit_for_bit() {
    let (a, b) = (tmp("seed-a"), tmp("seed-b"));
    assert!(run(&["examples/digits_mlp.nn", "--epochs", "3", "--seed", "7"], &a).0);
    assert!(run(&["examples/digits_mlp.nn", "--epochs", "3", "--seed", "7"], &b).0);
    let strip = |p: &Path| -> Vec<String> {
        // Every column but the wall-clock time.
        std::fs::read_to_string(p.join("history.csv"))
            .unwrap()
            .lines()
            .map(|l| l.rsplit_once(',').unwrap().0.to_string())
            .collect()
    };
    assert_eq!(strip(&a), strip(&b));
    let c = tmp("seed-c");
    assert!(run(&["examples/digits_mlp.nn", "--epochs", "3", "--seed", "8"], &c).0);
    assert_ne!(strip(&a), strip(&c), "a different seed gives a different run");
}

#[test]
fn divergence_names_the_step_and_the_cause() {
    let out = tmp("nan");
    let ckpt = out.join("w.safetensors");
    let (ok, stdout, stderr) = run(&["tests/training/diverges.nn", "--save", ckpt.to_str().unwrap()], &out);
    assert!(!ok, "training should fail\n{stdout}");
    // Whether the squared error overflows before the layer's output does
    // depends on the batches the seed draws; either way the cause is named.
    let cause = stderr.contains("layer `") || stderr.contains("the loss itself overflowed");
    assert!(stderr.contains("the loss became non-finite at epoch") && stderr.contains("step") && cause, "{stderr}");
}

#[test]
fn a_non_finite_layer_is_named() {
    let out = tmp("nan-layer");
    let (ok, stdout, stderr) = run(&["tests/training/non_finite_layer.nn"], &out);
    assert!(!ok, "training should fail\n{stdout}");
    assert!(
        stderr.contains("the loss became non-finite at epoch 1, step 1: layer `log` is the first to produce NaN or ∞"),
        "{stderr}"
    );
}

#[test]
fn checkpoints_round_trip_through_predict() {
    let out = tmp("predict");
    let ckpt = out.join("digits.safetensors");
    let (ok, stdout, stderr) =
        run(&["examples/digits_mlp.nn", "--epochs", "2", "--save", ckpt.to_str().unwrap()], &out);
    assert!(ok, "{stdout}{stderr}");
    // Eight rows of pixels (raw 0–16 values scaled like the train block).
    let text = {
        use std::io::Read;
        let raw = std::fs::read(root().join("data/digits.csv.gz")).unwrap();
        let mut s = String::new();
        flate2::read::GzDecoder::new(&raw[..]).read_to_string(&mut s).unwrap();
        s
    };
    let mut pixels = Vec::new();
    for line in text.lines().take(8) {
        pixels.extend(line.split(',').take(64).map(|v| v.parse::<f32>().unwrap() / 16.0));
    }
    let a = ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(&[8, 64]), pixels).unwrap();
    let input = out.join("x.npy");
    nnc_runtime::io::write_npy(&input, &a).unwrap();
    let pred = out.join("y.npy");
    let o = Command::new(nnc_bin())
        .current_dir(root())
        .args(["predict", "examples/digits_mlp.nn", "--weights"])
        .arg(&ckpt)
        .arg("--input")
        .arg(format!("pixels={}", input.display()))
        .arg("--output")
        .arg(&pred)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let y = nnc_runtime::io::read_npy(&pred).unwrap().to_f32();
    assert_eq!(y.shape(), &[8, 10]);
}

#[test]
fn a_killed_save_leaves_the_previous_checkpoint_readable() {
    let out = tmp("kill");
    std::fs::create_dir_all(&out).unwrap();
    let ckpt = out.join("w.safetensors");
    // A first good checkpoint.
    assert!(run(&["examples/digits_mlp.nn", "--epochs", "1", "--save", ckpt.to_str().unwrap()], &out).0);
    let before = nnc_runtime::checkpoint::load(&ckpt).expect("first checkpoint loads").0;
    // Kill a longer run at several points, mostly while it is saving.
    for delay_ms in [5u64, 20, 40, 80, 150] {
        let mut child = Command::new(nnc_bin())
            .current_dir(root())
            .args(["run", "examples/digits_mlp.nn", "--epochs", "50", "--save"])
            .arg(&ckpt)
            .arg("--out")
            .arg(&out)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let (after, _) = nnc_runtime::checkpoint::load(&ckpt).expect("checkpoint still readable after SIGKILL");
        assert_eq!(after.keys().collect::<Vec<_>>(), before.keys().collect::<Vec<_>>());
    }
}

#[test]
fn workshop_convnet_on_real_mnist_reaches_95_percent() {
    // The README's main command: five epochs on 4,000 training digits.
    let out = tmp("convnet");
    let (ok, stdout, stderr) = run(&["examples/workshop_convnet.nn"], &out);
    assert!(ok, "{stdout}\n{stderr}");
    let acc = value(&last_epoch(&out), "val_accuracy");
    assert!(acc >= 0.95, "validation accuracy {acc}\n{stdout}");
}

/// Unigram entropy (nats) of the lower-cased characters of the shipped text.
fn alice_unigram_entropy() -> f64 {
    let text = std::fs::read_to_string(root().join("data/alice.txt")).unwrap().to_lowercase();
    let mut counts = std::collections::HashMap::new();
    for ch in text.chars() {
        *counts.entry(ch).or_insert(0usize) += 1;
    }
    let n = text.chars().count() as f64;
    -counts.values().map(|&c| c as f64 / n * (c as f64 / n).ln()).sum::<f64>()
}

#[test]
fn char_gru_and_lstm_beat_the_unigram_entropy_of_alice() {
    let entropy = alice_unigram_entropy();
    for cell in ["gru", "lstm"] {
        let out = tmp(&format!("alice-{cell}"));
        let (ok, stdout, stderr) = run(&[&format!("tests/training/alice_{cell}.nn")], &out);
        assert!(ok, "{stdout}\n{stderr}");
        let val = value(&last_epoch(&out), "val_loss");
        assert!(val < entropy, "{cell}: validation loss {val} is not below the unigram entropy {entropy}\n{stdout}");
    }
}

/// Seed 002's stacked LSTM and Bi-LSTM on the movie-review sentences (the
/// label is the sign of the score): one epoch beats 70% validation accuracy.
/// The epoch's seconds are printed, not asserted (speed lives in
/// `cargo bench --bench train_step`).
#[test]
fn stacked_lstm_and_bilstm_beat_70_percent_on_movie_reviews() {
    for model in ["lstm", "bilstm"] {
        let out = tmp(&format!("reviews-{model}"));
        let (ok, stdout, stderr) = run(&[&format!("tests/training/reviews_{model}.nn")], &out);
        assert!(ok, "{stdout}\n{stderr}");
        let row = last_epoch(&out);
        let acc = value(&row, "val_accuracy");
        eprintln!("reviews {model}: val_accuracy {acc:.4} after one epoch of {:.1} s", value(&row, "seconds"));
        assert!(acc > 0.70, "{model}: validation accuracy {acc}\n{stdout}");
    }
}

/// BCE of always answering the mean image of data/mnist_5k.csv.gz (pixels
/// / 255): what an autoencoder that learned nothing per digit scores.
const MEAN_IMAGE_BCE: f64 = 0.2636;

/// Seed 002's convolutional and denoising autoencoders on the MNIST digits:
/// two epochs bring the validation reconstruction loss below the mean image's.
#[test]
fn convolutional_and_denoising_autoencoders_train_on_the_digits() {
    for train in ["conv_ae", "denoising_ae"] {
        let out = tmp(train);
        let (ok, stdout, stderr) = run(&["tests/training/autoencoders.nn", "--train", train], &out);
        assert!(ok, "{stdout}\n{stderr}");
        let val = value(&last_epoch(&out), "val_loss");
        assert!(
            val < MEAN_IMAGE_BCE,
            "{train}: validation loss {val} is not below the mean image's {MEAN_IMAGE_BCE}\n{stdout}"
        );
    }
}

#[test]
fn gan_runs_its_alternating_steps() {
    let out = tmp("gan");
    let ckpt = out.join("gan.safetensors");
    let (ok, stdout, stderr) = run(&["tests/training/gan_small.nn", "--save", ckpt.to_str().unwrap()], &out);
    assert!(ok, "{stdout}\n{stderr}");
    let row = last_epoch(&out);
    let (d, g) = (value(&row, "discriminator_loss"), value(&row, "generator_loss"));
    assert!(d.is_finite() && g.is_finite() && d > 0.0 && g > 0.0, "{row:?}");
    // One checkpoint holds both models, prefixed by model name, shared by both calls.
    let (w, _) = nnc_runtime::checkpoint::load(&ckpt).unwrap();
    assert!(
        w.keys().any(|k| k.starts_with("Generator.")) && w.keys().any(|k| k.starts_with("Discriminator.")),
        "{:?}",
        w.keys()
    );
    assert_eq!(
        w.keys().filter(|k| k.starts_with("Discriminator.") && k.ends_with("kernel")).count(),
        2,
        "{:?}",
        w.keys()
    );
}

#[test]
fn checkpoint_patterns_write_one_file_per_epoch() {
    let out = tmp("pattern");
    std::fs::create_dir_all(&out).unwrap();
    let o = Command::new(nnc_bin())
        .current_dir(&out)
        .arg("run")
        .arg(root().join("tests/training/checkpoints.nn"))
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for epoch in 1..=3 {
        let p = out.join(format!("digits_epoch_{epoch}.safetensors"));
        let (w, meta) = nnc_runtime::checkpoint::load(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        assert!(!w.is_empty());
        assert_eq!(meta.get("epoch").map(String::as_str), Some(epoch.to_string().as_str()));
    }
}

/// `nnc run` with `dir` as the working directory (where checkpoints go).
fn run_in(dir: &Path, args: &[&str]) -> (bool, String, String) {
    std::fs::create_dir_all(dir).unwrap();
    let o = Command::new(nnc_bin()).current_dir(dir).arg("run").args(args).arg("--out").arg(dir).output().unwrap();
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn init_load_starts_a_bigger_model_from_a_pretrained_encoder() {
    let dir = tmp("init-load");
    let file = root().join("tests/training/init_load.nn");
    let file = file.to_str().unwrap();
    let (ok, stdout, stderr) = run_in(&dir, &[file, "--train", "pretrain"]);
    assert!(ok, "{stdout}\n{stderr}");
    let (pretrained, _) = nnc_runtime::checkpoint::load(&dir.join("pretrained.safetensors")).unwrap();
    // The first step of `finetune` starts from the encoder's trained weights.
    let (ok, stdout, stderr) = run_in(&dir, &[file, "--train", "finetune", "--dump-steps", "1", "--dump", "dump"]);
    assert!(ok, "{stdout}\n{stderr}");
    assert!(
        stdout.contains(
            "init: loaded 2 tensors from pretrained.safetensors; 4 parameters initialised as \
        declared; 2 tensors of the file unused"
        ),
        "{stdout}"
    );
    let (start, _) = nnc_runtime::checkpoint::load(&dir.join("dump/init.safetensors")).unwrap();
    for name in ["enc.dense.kernel", "enc.dense.bias"] {
        assert_eq!(start[name], pretrained[name], "{name} is loaded bit for bit");
    }
    // The new head keeps its own initialisers.
    assert_eq!(start["logits.dense.kernel"].shape(), &[32, 64]);
    assert!(start["logits.dense.bias"].iter().all(|&v| v == 0.0));
    // Errors name what is wrong, and never panic.
    let (ok, _, stderr) = run_in(&dir, &[file, "--train", "finetune_everything"]);
    assert!(
        !ok && stderr.contains("tensor `logits.dense.kernel`: expected shape [32, 64], found [32, 10]"),
        "{stderr}"
    );
    let (ok, _, stderr) = run_in(&dir, &[file, "--train", "from_missing"]);
    assert!(!ok && stderr.contains("missing.safetensors: cannot read"), "{stderr}");
    assert!(!stderr.contains("internal failure"), "{stderr}");
}

/// The train block `name` of `tests/training/stateful.nn`.
fn stateful_block(name: &str) -> nnc_compiler::check::train::TrainInfo {
    let a = analyse_path(&root().join("tests/training/stateful.nn"));
    assert!(
        a.result.diagnostics.iter().all(|d| d.severity != nnc_syntax::Severity::Error),
        "{:?}",
        a.result.diagnostics
    );
    a.result.trains.into_iter().find(|b| b.name == name).unwrap()
}

#[test]
fn stateful_batches_carry_the_lstm_state_into_the_next_batch() {
    use nnc_runtime::exec::Tensor;
    use nnc_runtime::train::{Config, Dataset, Params, Trainer, optim::Spec};
    let dataset = |x: Vec<f32>, y: Vec<f32>, t: usize| {
        let n = y.len();
        let mut d = Dataset::default();
        d.arrays.insert("x".into(), Tensor::F(ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(&[n, t, 1]), x).unwrap()));
        d.arrays.insert("y".into(), Tensor::F(ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(&[n, 1]), y).unwrap()));
        d
    };
    // Four rows of T = 4 steps; with batch 2 the streams are rows 0 → 1 and 2 → 3.
    let rows: Vec<Vec<f32>> = (0..4).map(|r| (0..4).map(|t| ((r * 4 + t) as f32 * 0.7).sin()).collect()).collect();
    let y = vec![0.5, -0.25, 1.0, 0.75];
    let data = dataset(rows.concat(), y.clone(), 4);
    let (carry, fresh, joined) = (stateful_block("carry"), stateful_block("fresh"), stateful_block("joined"));
    let mut trainer = Trainer::new(&carry, None, vec![]).unwrap();
    let mut params = Params::default();
    trainer.init_params(&mut params, 2, 1).unwrap();
    let (carried, _) = trainer.evaluate(&params, &data, 2).unwrap();
    // The same by hand: batch 1 from zero states, batch 2 as windows of 2T.
    let first = dataset([rows[0].clone(), rows[2].clone()].concat(), vec![y[0], y[2]], 4);
    let streams = dataset(rows.concat(), vec![y[1], y[3]], 8);
    let (l1, _) = Trainer::new(&fresh, None, vec![]).unwrap().evaluate(&params, &first, 2).unwrap();
    let (l2, _) = Trainer::new(&joined, None, vec![]).unwrap().evaluate(&params, &streams, 2).unwrap();
    assert!((carried - (l1 + l2) / 2.0).abs() < 1e-6, "stateful {carried}, by hand {}", (l1 + l2) / 2.0);
    let second = dataset([rows[1].clone(), rows[3].clone()].concat(), vec![y[1], y[3]], 4);
    let (restarted, _) = Trainer::new(&fresh, None, vec![]).unwrap().evaluate(&params, &second, 2).unwrap();
    assert!((restarted - l2).abs() > 1e-4, "the carried state must matter: {restarted} vs {l2}");
    // Training (lr = 0 keeps the weights): every epoch starts from zero states.
    let cfg = Config {
        batch: 2,
        epochs: 2,
        seed: 1,
        shuffle: true,
        optimizer: Spec::from_value(carry.field("optimizer")).unwrap(),
        class_weights: None,
        early_stop: None,
        max_steps: None,
    };
    let history = trainer.fit(&mut params, &data, None, &cfg, 0, &mut |_| {}).unwrap();
    for epoch in &history {
        assert!((epoch.loss - carried).abs() < 1e-6, "epoch loss {} against {carried}", epoch.loss);
    }
}

#[test]
fn stateful_char_lstm_holds_out_the_end_of_the_book_and_learns() {
    let out = tmp("alice-stateful");
    let (ok, stdout, stderr) = run(&["tests/training/alice_stateful.nn", "--epochs", "2"], &out);
    assert!(ok, "{stdout}\n{stderr}");
    // 4,125 windows of 35 characters: the last 413 are the validation rows.
    assert!(stdout.contains("3712 samples (413 validation)"), "{stdout}");
    let val = value(&last_epoch(&out), "val_loss");
    let entropy = alice_unigram_entropy();
    assert!(val < entropy, "validation loss {val} is not below the unigram entropy {entropy}\n{stdout}");
}

/// `nnc run … | head -1`: the reader goes away after one line; nnc stops
/// like other command-line tools (SIGPIPE), without an internal failure.
#[cfg(unix)]
#[test]
fn a_closed_stdout_stops_the_run_quietly() {
    use std::io::{BufRead, BufReader};
    use std::os::unix::process::ExitStatusExt;
    use std::process::Stdio;
    let out = tmp("pipe");
    let mut child = Command::new(nnc_bin())
        .current_dir(root())
        .args(["run", "examples/digits_mlp.nn", "--out"])
        .arg(&out)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut first).unwrap();
    assert!(first.starts_with("run directory: "), "{first}");
    let o = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(!stderr.contains("internal failure") && !stderr.contains("panicked"), "{stderr}");
    assert!(o.status.success() || o.status.signal() == Some(13), "{:?}\n{stderr}", o.status);
}

/// `--resume`: two epochs, then two more from the checkpoint, end with the
/// same weights and optimizer state, bit for bit, as four epochs in one run
/// (shuffles and draws are per-epoch streams; Adam's moments travel in the
/// checkpoint). Resuming another train block's checkpoint is an error.
#[test]
fn a_resumed_run_continues_exactly() {
    let dir = tmp("resume");
    std::fs::create_dir_all(&dir).unwrap();
    let (whole, half) = (dir.join("whole.safetensors"), dir.join("half.safetensors"));
    let s = |p: &Path| p.display().to_string();
    let (ok, out, err) = run(&["examples/digits_mlp.nn", "--epochs", "4", "--save", &s(&whole)], &dir.join("a"));
    assert!(ok, "{out}\n{err}");
    let (ok, out, err) = run(&["examples/digits_mlp.nn", "--epochs", "2", "--save", &s(&half)], &dir.join("b"));
    assert!(ok, "{out}\n{err}");
    let (ok, out, err) = run(&["examples/digits_mlp.nn", "--epochs", "4", "--resume", &s(&half)], &dir.join("b"));
    assert!(ok, "{out}\n{err}");
    assert!(out.contains("resume:") && out.contains("epoch 3/4") && !out.contains("epoch 1/4"), "{out}");
    // The history of the resumed run continues the first run's.
    let epochs: Vec<String> = std::fs::read_to_string(dir.join("b/history.csv"))
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap().to_string())
        .collect();
    assert_eq!(epochs, ["1", "2", "3", "4"]);
    let a = nnc_runtime::checkpoint::load_training(&whole).unwrap();
    let b = nnc_runtime::checkpoint::load_training(&half).unwrap();
    assert!(!a.1.is_empty(), "the checkpoint carries Adam's moments");
    assert_eq!(a.0, b.0, "weights");
    assert_eq!(a.1, b.1, "optimizer slots");
    assert_eq!(a.2, b.2, "metadata");
    let (ok, _, err) = run(&["examples/fish_regression.nn", "--resume", &s(&half)], &dir.join("d"));
    assert!(!ok && err.contains("saved by train block `digits`, not `fish`"), "{err}");
}

/// Validation precision and recall count over the whole set: with the
/// positives split unevenly between batches, the mean of per-batch ratios
/// would differ (recall here: batch means (1/1 + 1/3)/2 = 2/3, exact 2/4).
#[test]
fn ratio_metrics_count_over_the_whole_set() {
    use nnc_runtime::exec::Tensor;
    use nnc_runtime::train::{Dataset, Params, Trainer};
    let a = analyse_path(&root().join("tests/training/ratio_metrics.nn"));
    let info = a.result.trains.into_iter().find(|b| b.name == "ratios").unwrap();
    // Batch 1: one positive, found. Batch 2: three positives, one found; one false positive.
    let p = [0.9f32, 0.1, 0.2, 0.1, 0.9, 0.2, 0.3, 0.8];
    let label = [1i64, 0, 0, 0, 1, 1, 1, 0];
    let mut d = Dataset::default();
    d.arrays
        .insert("p".into(), Tensor::F(ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(&[8, 1]), p.to_vec()).unwrap()));
    d.arrays.insert(
        "label".into(),
        Tensor::I(ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(&[8]), label.to_vec()).unwrap()),
    );
    let mut trainer = Trainer::new(&info, None, vec![]).unwrap();
    let params = Params::default();
    let (_, m) = trainer.evaluate(&params, &d, 4).unwrap();
    // recall = TP / positives = 2/4; precision = TP / predicted positives = 2/3; accuracy = 5/8.
    assert!((m[0] - 0.5).abs() < 1e-9, "recall {}", m[0]);
    assert!((m[1] - 2.0 / 3.0).abs() < 1e-6, "precision {}", m[1]);
    assert!((m[2] - 5.0 / 8.0).abs() < 1e-9, "accuracy {}", m[2]);
}

/// Mean and standard deviation of a tensor's values.
fn moments(a: &ndarray::ArrayD<f32>) -> (f64, f64) {
    let n = a.len() as f64;
    let mean = a.iter().map(|&v| v as f64).sum::<f64>() / n;
    let var = a.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n;
    (mean, var.sqrt())
}

/// `init = …`, `bias_init = …` and `recurrent_init = …` reach the parameters (they were parsed, checked and
/// then ignored: every layer drew its rule's default).
#[test]
fn layer_init_options_reach_the_parameters() {
    let dir = tmp("layer-init");
    let file = root().join("tests/training/layer_init.nn");
    let (ok, stdout, stderr) = run_in(&dir, &[file.to_str().unwrap(), "--dump-steps", "1", "--dump", "dump"]);
    assert!(ok, "{stdout}\n{stderr}");
    let (w, _) = nnc_runtime::checkpoint::load(&dir.join("dump/init.safetensors")).unwrap();
    let all = |name: &str, v: f32| {
        let t = w.get(name).unwrap_or_else(|| panic!("no `{name}` in {:?}", w.keys().collect::<Vec<_>>()));
        assert!(t.iter().all(|&x| x == v), "`{name}` should be all {v}: {t}");
    };
    for (name, v) in [
        ("c.conv2d.kernel", 1.0),
        ("c.conv2d.bias", 1.0),
        ("r.lstm.kernel", 0.0),
        ("r.lstm.recurrent_kernel", 1.0),
        ("r.lstm.bias", 1.0),
        ("e.embedding.embeddings", 1.0),
        ("p.prelu.alpha", 1.0),
        ("y.dense.kernel", 0.0),
        ("y.dense.bias", 1.0),
    ] {
        all(name, v);
    }
    // Kernel [192, 400]: he_normal σ = √(2/192) ≈ 0.102, glorot_uniform σ = √(2/(192+400)) ≈ 0.058.
    let (m, sd) = moments(&w["he.kernel"]);
    assert!(m.abs() < 0.003 && (sd - (2.0f64 / 192.0).sqrt()).abs() < 0.003, "he_normal: mean {m}, sd {sd}");
    let (m, sd) = moments(&w["glorot.kernel"]);
    assert!(m.abs() < 0.003 && (sd - (2.0f64 / 592.0).sqrt()).abs() < 0.002, "glorot_uniform: mean {m}, sd {sd}");
    // Options reach the draw: variance_scaling(3, fan_out, untruncated_normal) σ = √(3/400); normal(0.5, mean = 3).
    let (m, sd) = moments(&w["vs.kernel"]);
    assert!(m.abs() < 0.003 && (sd - (3.0f64 / 400.0).sqrt()).abs() < 0.003, "variance_scaling: mean {m}, sd {sd}");
    all("vs.bias", 0.25);
    let (m, sd) = moments(&w["nm.kernel"]);
    assert!((m - 3.0).abs() < 0.01 && (sd - 0.5).abs() < 0.01, "normal(0.5, mean = 3): mean {m}, sd {sd}");
    assert!(w["nm.bias"].iter().all(|v| v.abs() <= 0.1) && w["nm.bias"].iter().any(|v| v.abs() > 0.05));
}
