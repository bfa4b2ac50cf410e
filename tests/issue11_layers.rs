//! The layers and options of issue 11 (the model zoo): Keras's parameter counts (trainable and
//! not), output shapes, check-time errors for bad options, and the two executors' agreement on
//! `tests/issue11/layers.nn` (tests/backends.rs's comparison: one step's loss and gradients, then
//! three steps' losses). Finite differences are in tests/gradients.rs; Keras 3/JAX in tests/oracle.

#![forbid(unsafe_code)]

mod common;

use std::path::Path;
use std::process::Command;

use common::*;
use nnc_compiler::{CheckOptions, LoadError, Loader, analyse, summary};
use nnc_syntax::Severity;

struct NoFiles;
impl Loader for NoFiles {
    fn load(&self, _: &Path) -> Result<String, LoadError> {
        Err(LoadError::NotFound)
    }
}

fn check(src: &str) -> nnc_compiler::Analysis {
    analyse("zoo.nn", None, src.to_string(), &NoFiles, &CheckOptions::default())
}

fn errors(src: &str) -> Vec<String> {
    check(src)
        .result
        .diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .map(|d| format!("{}: {}", d.code.as_str(), d.message))
        .collect()
}

fn model(input: &str, body: &str) -> String {
    format!("use std.blocks\ndim N\nmodel M {{\n    input x: {input}\n    output y = {body}\n}}\n")
}

/// (trainable, non-trainable) and the output's type.
fn counts(src: &str) -> (i64, i64, String) {
    let a = check(src);
    let errs: Vec<_> = a.result.diagnostics.iter().filter(|d| d.severity == Severity::Error).collect();
    assert!(errs.is_empty(), "{src}\n{errs:#?}");
    let m = &a.result.models[0];
    let t = summary::totals(m);
    (t.trainable, t.non_trainable, m.outputs[0].1.to_string())
}

#[test]
fn a_stem_of_the_new_layers_counts_as_keras_does() {
    // Keras 3: Rescaling, Normalization, ZeroPadding2D(((0,1),(0,1))), Conv2D(32, 3, strides=2,
    // use_bias=False), BatchNormalization(scale=False), ReLU(6.), Cropping2D(((1,0),(0,2))), an SE block
    // (GlobalAveragePooling2D(keepdims=True), Conv2D(8, 1, swish), Conv2D(32, 1, sigmoid), multiply),
    // LayerNormalization(center=False), LayerScale(1e-6, 32), Dropout(0.2, noise_shape=(None,1,1,1)),
    // GlobalMaxPooling2D, Dense(10) on 32×32×3: 1,913 parameters, 1,842 trainable, 71 not.
    let src = r#"use std.blocks
dim N
model Stem {
    input image: [N, 32, 32, 3]
    let x = image |> rescaling(1 / 255) |> normalization |> zero_padding2d([[0, 1], [0, 1]])
        |> conv2d(32, kernel = 3, stride = 2, bias = false) |> batch_norm(scale = false) |> relu(max_value = 6)
        |> cropping2d([[1, 0], [0, 2]])
    let y = squeeze_excite(x, 8, use_swish = true) |> layer_norm(center = false)
        |> layer_scale |> dropout(0.2, noise_shape = [N, 1, 1, 1])
    output logits = y |> global_max_pool |> dense(10)
}
"#;
    assert_eq!(counts(src), (1842, 71, "[N, 10]".into()));
    let a = check(src);
    let m = &a.result.models[0];
    let x = m.bindings.iter().find(|(n, _)| n == "x").map(|(_, v)| v.to_string());
    assert_eq!(x.as_deref(), Some("[N, 15, 14, 32]"));
    // The summary shows the split and Keras's weights by name.
    let text = summary::render(m);
    assert!(text.contains("1,842") && text.contains("71"), "{text}");
    for (layer, params) in [
        ("normalization", vec!["mean", "variance", "count"]),
        ("batch_norm", vec!["beta", "moving_mean", "moving_var"]),
        ("layer_norm", vec!["gamma"]),
        ("layer_scale", vec!["gamma"]),
    ] {
        let rec = m.layers.iter().find(|l| l.layer == layer).unwrap_or_else(|| panic!("{layer}"));
        let names: Vec<&str> = rec.params.iter().map(|p| p.name.rsplit('.').next().unwrap_or("")).collect();
        assert_eq!(names, params, "{layer}");
    }
    let norm = m.layers.iter().find(|l| l.layer == "normalization").unwrap();
    assert!(norm.params.iter().all(|p| !p.trainable), "Normalization's statistics are not trainable");
}

#[test]
fn batch_and_layer_norm_center_and_scale() {
    // Keras: BatchNormalization on 16 channels: 32 trainable + 32 moving; scale=False drops gamma
    // (InceptionV3), center=False drops beta; both False keep only the moving statistics.
    assert_eq!(counts(&model("[N, 4, 4, 16]", "batch_norm(x)")).0, 32);
    assert_eq!(counts(&model("[N, 4, 4, 16]", "batch_norm(x, scale = false)")), (16, 32, "[N, 4, 4, 16]".into()));
    assert_eq!(counts(&model("[N, 4, 4, 16]", "batch_norm(x, center = false)")).0, 16);
    assert_eq!(counts(&model("[N, 4, 4, 16]", "batch_norm(x, center = false, scale = false)")).0, 0);
    assert_eq!(counts(&model("[N, 5, 8]", "layer_norm(x, center = false)")).0, 8);
    assert_eq!(counts(&model("[N, 5, 8]", "layer_norm(x, scale = false, axes = [1, 2])")).0, 40);
    assert_eq!(counts(&model("[N, 5, 8]", "layer_norm(x, scale = false, center = false)")).0, 0);
}

#[test]
fn shapes_of_borders_pooling_and_activations() {
    for (input, body, out) in [
        ("[N, 7, 7, 3]", "zero_padding2d(x)", "[N, 9, 9, 3]"),
        ("[N, 7, 7, 3]", "zero_padding2d(x, [1, 2])", "[N, 9, 11, 3]"),
        ("[N, 7, 7, 3]", "zero_padding2d(x, padding = [[0, 1], [0, 1]])", "[N, 8, 8, 3]"),
        ("[N, 7, 3]", "zero_padding1d(x, 2)", "[N, 11, 3]"),
        ("[N, 7, 3]", "zero_padding1d(x, [0, 3])", "[N, 10, 3]"),
        ("[N, 7, 7, 3]", "cropping2d(x, [[1, 2], [0, 3]])", "[N, 4, 4, 3]"),
        ("[N, 7, 7, 3]", "cropping2d(x, [1, 2])", "[N, 5, 3, 3]"),
        ("[N, 7, 3]", "cropping1d(x, [2, 1])", "[N, 4, 3]"),
        ("[N, 7, 7, 3]", "global_avg_pool(x, keepdims = true)", "[N, 1, 1, 3]"),
        ("[N, 7, 3]", "global_max_pool(x, keepdims = true)", "[N, 1, 3]"),
        ("[N, 7, 7, 3]", "global_max_pool(x)", "[N, 3]"),
        ("[N, 6, 6, 4]", "squeeze_excite(x, 2)", "[N, 6, 6, 4]"),
        ("[N, 5]", "x |> relu6 |> swish |> silu |> hard_sigmoid |> hard_swish |> hard_silu |> mish", "[N, 5]"),
        ("[N, 5]", "relu(x, max_value = 6, negative_slope = 0.1, threshold = 0.5)", "[N, 5]"),
        ("[N, 5]", "relu(x, max_value = none)", "[N, 5]"),
        ("[N, 5]", "rescaling(x, 1 / 255, offset = -1)", "[N, 5]"),
        ("[N, 4, 5]", "dropout(x, 0.3, noise_shape = [N, 1, 5])", "[N, 4, 5]"),
    ] {
        assert_eq!(counts(&model(input, body)).2, out, "{body}");
    }
    // Activations as options of dense (and conv) layers resolve to the same layers.
    for act in ["relu6", "swish", "silu", "hard_sigmoid", "hard_swish", "hard_silu", "mish"] {
        assert_eq!(counts(&model("[N, 5]", &format!("dense(x, 3, activation = {act})"))).0, 18, "{act}");
        assert_eq!(counts(&model("[N, 4, 4, 2]", &format!("conv2d(x, 3, 1, activation = {act})"))).0, 9, "{act}");
    }
    assert_eq!(counts(&model("[N, 5]", "dense(x, 3, activation = relu(max_value = 1))")).0, 18);
    // SE block: 2·C·squeeze + squeeze + C (Keras's EfficientNet se_ conv pair).
    assert_eq!(counts(&model("[N, 6, 6, 16]", "squeeze_excite(x, 4)")).0, 2 * 16 * 4 + 4 + 16);
    // LayerScale: one gamma [C]; Normalization: mean, variance [C] and count (EfficientNet: 7 for RGB).
    assert_eq!(counts(&model("[N, 6, 6, 16]", "layer_scale(x, init_values = 1e-6)")), (16, 0, "[N, 6, 6, 16]".into()));
    assert_eq!(counts(&model("[N, 6, 6, 3]", "normalization(x)")), (0, 7, "[N, 6, 6, 3]".into()));
    assert_eq!(counts(&model("[N, 6, 6, 3]", "normalization(x, axis = 1)")).1, 13);
    assert_eq!(counts(&model("[N, 3]", "normalization(x, mean = [1, 2, 3], variance = [1, 4, 9])")).1, 7);
    assert_eq!(counts(&model("[N, 3]", "rescaling(x, 2)")).0, 0);
}

#[test]
fn bad_options_are_check_errors() {
    for (input, body, expect) in [
        ("[N, 4, 4, 3]", "cropping2d(x, [[2, 2], [0, 0]])", "height"),
        ("[N, 4, 4, 3]", "cropping2d(x, 3)", "height"),
        ("[N, 4, 3]", "cropping1d(x, [4, 1])", "length"),
        ("[N, 4, 4, 3]", "zero_padding2d(x, -1)", "at least 0"),
        ("[N, 4, 4, 3]", "zero_padding2d(x, [1, 2, 3])", "padding"),
        ("[N, 4, 4, 3]", "zero_padding2d(x, [[1, 2], 3])", "padding"),
        ("[N, 4, 3]", "zero_padding1d(x, [[1, 2], [3, 4]])", "[before, after]"),
        ("[N, 4, 3]", "zero_padding2d(x, 1)", "[N, H, W, C]"),
        ("[N, 4, 4, 3]", "zero_padding2d(x, N)", "known integer"),
        ("[N, 4, 4, 3]", "dropout(x, 0.2, noise_shape = [N, 1, 1])", "rank 4"),
        ("[N, 4, 4, 3]", "dropout(x, 0.2, noise_shape = [N, 2, 1, 1])", "axis 1"),
        ("[N, 5]", "relu(x, max_value = -1)", "max_value"),
        ("[N, 5]", "relu(x, negative_slope = -0.1)", "negative_slope"),
        ("[N, 3]", "normalization(x, mean = [1, 2])", "2 values for an axis of size 3"),
        ("[N, 3]", "normalization(x, variance = -1)", "variance"),
        ("[N, 3]", "normalization(x, axis = 2)", "axis"),
        ("[N, 3]", "normalization(x, axis = 0)", "batch axis"),
        ("[N]", "layer_scale(x)", "[N, …, C]"),
        ("[N, 3]", "rescaling(x)", "scale"),
        ("[N, 3]", "layer_scale(x, init_values = true)", "init_values"),
    ] {
        let errs = errors(&model(input, body));
        assert!(errs.iter().any(|e| e.contains(expect)), "{body}: expected an error mentioning `{expect}`: {errs:?}");
    }
    // Keras and PyTorch spellings point at nnc's names.
    for (foreign, ours) in [("ZeroPadding2D", "zero_padding2d"), ("Cropping2D", "cropping2d"), ("ReLU6", "relu6")] {
        let a = check(&model("[N, 4, 4, 3]", &format!("{foreign}(x)")));
        let help = format!("did you mean `{ours}`?");
        assert!(a.result.diagnostics.iter().any(|d| format!("{d:?}").contains(&help)), "{foreign}");
    }
}

fn run(file: &Path, train: &str, backend: &str, dir: &Path, dump: bool) -> String {
    let mut cmd = Command::new(nnc_bin());
    cmd.current_dir(root()).arg("run").arg(file).args(["--train", train, "--epochs", "1", "--steps", "3"]);
    cmd.args(["--backend", backend]);
    if dump {
        cmd.args(["--dump-steps", "1", "--dump"]).arg(dir);
    } else {
        cmd.arg("--out").arg(dir);
    }
    let o = cmd.output().unwrap();
    assert!(o.status.success(), "{train} {backend}: {}", String::from_utf8_lossy(&o.stderr));
    std::fs::read_to_string(dir.join(if dump { "step_0.json" } else { "history.csv" })).unwrap()
}

#[test]
fn jit_and_reference_agree_on_the_new_layers() {
    let file = root().join("tests/issue11/layers.nn");
    let out = std::env::temp_dir().join(format!("nnc-issue11-{}", std::process::id()));
    for train in ["zoo", "seq"] {
        let d = |s: &str| out.join(format!("{train}-{s}"));
        let (j, r) = (run(&file, train, "jit", &d("jit"), true), run(&file, train, "reference", &d("ref"), true));
        let loss = |s: &str| serde_json::from_str::<serde_json::Value>(s).unwrap()["loss"].as_f64().unwrap();
        let (lj, lr) = (loss(&j), loss(&r));
        assert!((lj - lr).abs() <= 1e-5 * lr.abs().max(1e-3), "{train}: loss jit {lj} reference {lr}");
        let grads = |s: &str| nnc_runtime::checkpoint::load(&d(s).join("grads_0.safetensors")).unwrap().0;
        let (gj, gr) = (grads("jit"), grads("ref"));
        assert_eq!(gj.keys().collect::<Vec<_>>(), gr.keys().collect::<Vec<_>>());
        let norm = |it: &mut dyn Iterator<Item = f64>| it.map(|v| v * v).sum::<f64>().sqrt();
        let floor = gr.values().map(|g| norm(&mut g.iter().map(|&v| v as f64))).fold(0f64, f64::max) * 0.1;
        for (name, y) in &gr {
            let x = &gj[name];
            let diff = norm(&mut x.iter().zip(y.iter()).map(|(&p, &q)| p as f64 - q as f64));
            let rel = diff / (norm(&mut y.iter().map(|&v| v as f64)) + floor + 1e-30);
            assert!(rel <= 1e-3, "{train}: gradient of {name} differs by {rel:.2e}");
        }
        // Three steps of training: the same losses.
        let losses = |s: &str| -> Vec<f64> {
            let h = run(&file, train, s, &d(&format!("{s}-3")), false);
            let mut lines = h.lines();
            let header: Vec<&str> = lines.next().unwrap().split(',').collect();
            let col = header.iter().position(|h| *h == "loss").unwrap();
            lines.map(|l| l.split(',').nth(col).unwrap().parse().unwrap()).collect()
        };
        let (hj, hr) = (losses("jit"), losses("reference"));
        assert!(!hj.is_empty() && hj.len() == hr.len(), "{hj:?} {hr:?}");
        for (a, b) in hj.iter().zip(&hr) {
            assert!((a - b).abs() <= 1e-3 * b.abs().max(1e-3), "{train}: losses jit {hj:?} reference {hr:?}");
        }
    }
    let _ = std::fs::remove_dir_all(&out);
}
