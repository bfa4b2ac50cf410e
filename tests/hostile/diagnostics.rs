//! Hostile and newcomer inputs: diagnostics. Each case is a file a newcomer from Keras or PyTorch
//! writes, checked with `nnc check`; the exit code and the key words of the message are asserted,
//! and nothing may panic.

use std::path::PathBuf;
use std::process::Output;

use crate::common;

/// A temporary directory for one test, removed at the end.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("nnc-hostile-diag-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temporary directory");
        Scratch(dir)
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, text).expect("write fixture");
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn nnc(args: &[&str]) -> Output {
    std::process::Command::new(common::nnc_bin()).args(args).output().expect("run nnc")
}

/// `nnc check` on `text`: (exit code, stderr); asserts no panic.
fn check(dir: &Scratch, name: &str, text: &str) -> (i32, String) {
    let path = dir.write(&format!("{name}.nn"), text);
    let out = nnc(&["check", &path.display().to_string()]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!stderr.contains("panicked"), "{name}: panic\n{stderr}");
    let code = out.status.code().unwrap_or_else(|| panic!("{name}: killed by a signal\n{stderr}"));
    assert_ne!(code, 101, "{name}: panic exit\n{stderr}");
    (code, stderr)
}

/// Runs each `(name, source, exit code, words that must appear)` case.
fn table(test: &str, cases: &[(&str, String, i32, &[&str])]) {
    let dir = Scratch::new(test);
    let mut failures = Vec::new();
    for (name, text, want_code, words) in cases {
        let (code, stderr) = check(&dir, name, text);
        if code != *want_code {
            failures.push(format!("{name}: exit {code}, expected {want_code}\n{stderr}"));
        }
        for w in *words {
            if !stderr.contains(w) {
                failures.push(format!("{name}: `{w}` not in\n{stderr}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// A model `M` with input `x: [N, 16]` and int labels `y`, its body `body`, and a train block
/// whose loss is `loss` (`optimizer` and other fields in `train`).
fn classifier(body: &str, loss: &str, train: &str) -> String {
    format!(
        "dim N\n\nmodel M {{\n    input x: [N, 16]\n    input y: int[N]\n{body}\n}}\n\n\
         train t {{\n    model = M()\n    data = synthetic(n = 8)\n    loss = {loss}\n    batch = 4\n{train}\n}}\n"
    )
}

const ADAM: &str = "    optimizer = adam(lr = 1e-3)";

#[test]
fn diag_w0002_any_softmax_before_a_loss_that_applies_softmax() {
    let warn = ["warning[W0002]", "applies softmax itself"];
    let block = "block head(h: [N, D], c: int) -> [N, c] {\n    return h |> dense(c, activation = softmax)\n}\n\n";
    let cases: Vec<(&str, String, i32, &[&str])> =
        vec![
        ("pipe", classifier("    output p = x |> dense(4) |> softmax", "cross_entropy(p, y)", ADAM), 0, &warn),
        ("call", classifier("    output p = softmax(dense(x, 4))", "cross_entropy(p, y)", ADAM), 0, &warn),
        ("dense_activation", classifier("    output p = x |> dense(4, activation = \
            softmax)", "cross_entropy(p, y)", ADAM), 0, &[
            "warning[W0002]",
            "the softmax is applied here",
        ]),
        (
            "conv1d_activation",
            "dim N\nmodel M {\n    input x: [N, 8, 3]\n    input y: int[N, 6]\n    output p = x |> conv1d(4, kernel = \
                3, activation = softmax)\n}\n\
             train t {\n    model = M()\n    data = synthetic(n = 8)\n    loss = cross_entropy(p, y)\n    optimizer = \
                 sgd(0.1)\n    batch = 4\n}\n"
                .to_string(),
            0,
            &warn,
        ),
        (
            "block_output",
            block.to_string() + &classifier("    output p = x |> dense(8) |> head(4)", "cross_entropy(p, y)", ADAM),
            0,
            &warn,
        ),
        ("through_dropout", classifier("    output p = x |> dense(4) |> softmax |> \
            dropout(0.2)", "cross_entropy(p, y)", ADAM), 0, &warn),
        ("let_in_model", classifier("    let s = x |> dense(4, activation = softmax)\n    output p = \
            s", "cross_entropy(p, y)", ADAM), 0, &warn),
        ("perplexity_metric", classifier("    output p = x |> dense(4) |> \
            softmax", "cross_entropy(p, y, from_logits = \
                false)", "    optimizer = adam(lr = 1e-3)\n    metrics = [perplexity(p, y)]"), 0, &[
            "`perplexity` applies softmax itself",
        ]),
    ];
    table("w0002", &cases);

    // No warning where the softmax is not redundant.
    let dir = Scratch::new("w0002-quiet");
    for (name, body, loss) in [
        (
            "from_logits_false",
            "    output p = x |> dense(4, activation = softmax)",
            "cross_entropy(p, y, from_logits = false)",
        ),
        ("logits", "    output p = x |> dense(4)", "cross_entropy(p, y)"),
        ("other_axis", "    output p = x |> dense(4) |> softmax(axis = 0)", "cross_entropy(p, y)"),
        ("log_softmax", "    output p = x |> dense(4) |> log_softmax", "cross_entropy(p, y)"),
        ("relu_activation", "    output p = x |> dense(4, activation = relu)", "cross_entropy(p, y)"),
    ] {
        let (code, stderr) = check(&dir, name, &classifier(body, loss, ADAM));
        assert_eq!(code, 0, "{name}: {stderr}");
        assert!(!stderr.contains("W0002"), "{name}: {stderr}");
    }
}

/// A model applying `stage` to an image `x: [N, 28, 28, 1]`.
fn image_model(stage: &str) -> String {
    format!("dim N\nmodel M {{\n    input x: [N, 28, 28, 1]\n    output y = x |> {stage}\n}}\n")
}

/// A model applying `stage` to a sequence `x: [N, 10, 8]`.
fn sequence_model(stage: &str) -> String {
    format!("dim N\nmodel M {{\n    input x: [N, 10, 8]\n    output y = x |> {stage}\n}}\n")
}

#[test]
fn diag_keras_and_pytorch_names_suggest_nnc_names() {
    let cases: Vec<(&str, String, i32, &[&str])> = vec![
        (
            "kernel_size",
            image_model("conv2d(8, kernel_size = 3)"),
            1,
            &["no option `kernel_size`", "did you mean `kernel`?"],
        ),
        ("return_sequences", sequence_model("lstm(4, return_sequences = true)"), 1, &["did you mean `sequences`?"]),
        ("return_state", sequence_model("gru(4, return_state = true)"), 1, &["did you mean `state`?"]),
        ("strides", image_model("conv2d(8, kernel = 3, strides = 2)"), 1, &["did you mean `stride`?"]),
        ("use_bias", image_model("conv2d(8, kernel = 3, use_bias = false)"), 1, &["did you mean `bias`?"]),
        ("dilation_rate", image_model("conv2d(8, kernel = 3, dilation_rate = 2)"), 1, &["did you mean `dilation`?"]),
        ("pool_size", image_model("max_pool(pool_size = 2)"), 1, &["did you mean `size`?"]),
        ("pool_kernel_size", image_model("max_pool(kernel_size = 2)"), 1, &["did you mean `size`?"]),
        ("out_channels", image_model("conv2d(out_channels = 8, kernel = 3)"), 1, &["did you mean `filters`?"]),
        ("out_features", sequence_model("dense(out_features = 4)"), 1, &["did you mean `units`?"]),
        ("hidden_size", sequence_model("lstm(hidden_size = 4)"), 1, &["did you mean `units`?"]),
        ("keras_rate", sequence_model("lstm(4, rate = 0.2)"), 1, &["did you mean `dropout`?"]),
        ("torch_p", sequence_model("dropout(p = 0.2)"), 1, &["did you mean `rate`?"]),
        ("eps", image_model("batch_norm(eps = 1e-5)"), 1, &["did you mean `epsilon`?"]),
        (
            "num_heads",
            sequence_model("multi_head_attention(num_heads = 2, key_dim = 4)"),
            1,
            &["did you mean `heads`?"],
        ),
        ("in_features", sequence_model("dense(4, in_features = 8)"), 1, &["infers input sizes"]),
        ("batch_first", sequence_model("lstm(4, batch_first = true)"), 1, &["always batch-first"]),
        ("Dense", sequence_model("Dense(4)"), 1, &["unknown layer or function `Dense`", "did you mean `dense`?"]),
        ("Conv2D", image_model("Conv2D(8, 3)"), 1, &["did you mean `conv2d`?"]),
        ("LSTM", sequence_model("LSTM(4)"), 1, &["did you mean `lstm`?"]),
        ("BatchNormalization", image_model("BatchNormalization"), 1, &["did you mean `batch_norm`?"]),
        ("MaxPooling2D", image_model("MaxPooling2D(2)"), 1, &["did you mean `max_pool`?"]),
        ("Linear", sequence_model("Linear(4)"), 1, &["did you mean `dense`?"]),
        ("nn.Linear", sequence_model("nn.Linear(4)"), 1, &["no module prefix", "`Linear` without `nn.`"]),
        (
            "learning_rate",
            classifier(
                "    output p = x |> dense(4)",
                "cross_entropy(p, y)",
                "    optimizer = adam(learning_rate = 0.01)",
            ),
            1,
            &["`adam` has no option `learning_rate`", "did you mean `lr`?"],
        ),
        (
            "beta_1",
            classifier("    output p = x |> dense(4)", "cross_entropy(p, y)", "    optimizer = adam(beta_1 = 0.5)"),
            1,
            &["did you mean `beta1`?"],
        ),
        (
            "betas",
            classifier("    output p = x |> dense(4)", "cross_entropy(p, y)", "    optimizer = adam(betas = 0.5)"),
            1,
            &["beta1 = …, beta2 = …"],
        ),
        (
            "batch_size",
            classifier(
                "    output p = x |> dense(4)",
                "cross_entropy(p, y)",
                "    optimizer = sgd(0.1)\n    batch_size = 4",
            ),
            1,
            &["unknown train field `batch_size`", "did you mean `batch`?"],
        ),
        (
            "CrossEntropyLoss",
            classifier("    output p = x |> dense(4)", "CrossEntropyLoss(p, y)", ADAM),
            1,
            &["did you mean `cross_entropy`?"],
        ),
        ("typo_still_by_edit_distance", image_model("conv2d(8, kernal = 3)"), 1, &["did you mean `kernel`?"]),
    ];
    table("names", &cases);
}

#[test]
fn diag_recognised_alias_counts_as_the_argument() {
    // `kernel_size` stands for the required `kernel`: one error, not also "missing `kernel`".
    let dir = Scratch::new("alias-missing");
    for (name, text) in [
        ("conv2d", image_model("conv2d(8, kernel_size = 3)")),
        ("dense", sequence_model("dense(out_features = 4)")),
        ("attention", sequence_model("multi_head_attention(num_heads = 2, key_dim = 4)")),
    ] {
        let (code, stderr) = check(&dir, name, &text);
        assert_eq!(code, 1, "{name}: {stderr}");
        assert_eq!(stderr.matches("error[").count(), 1, "{name}: one error expected\n{stderr}");
        assert!(!stderr.contains("is missing"), "{name}: {stderr}");
    }
}

#[test]
fn diag_binding_without_let_suggests_let() {
    let cases: Vec<(&str, String, i32, &[&str])> = vec![
        (
            "model",
            "dim N\nmodel M {\n    input x: [N, 4]\n    h = x |> dense(5)\n    output y = h |> dense(2)\n}\n".into(),
            1,
            &["expected `}`, found `h`", "write `let h = …`"],
        ),
        (
            "block",
            "dim N\nblock b(x: [N, D]) -> [N, 2] {\n    hidden = x |> dense(2)\n    return hidden\n}\n".into(),
            1,
            &["write `let hidden = …`"],
        ),
    ];
    table("let", &cases);
    // A comparison typo is not a binding.
    let dir = Scratch::new("let-quiet");
    let (code, stderr) =
        check(&dir, "compare", "dim N\nmodel M {\n    input x: [N, 4]\n    output y = x |> dense(2) x\n}\n");
    assert_eq!(code, 1, "{stderr}");
    assert!(!stderr.contains("let "), "{stderr}");
}

#[test]
fn diag_error_in_block_return_type_names_the_call() {
    let text = "dim N\n\nblock project(x: [N, D], units: int) -> [N, D] {\n    return dense(x, units)\n}\n\n\
                model M {\n    input x: [N, 300]\n    output ok = project(x, 300)\n    output bad = project(x, 64)\n\
                    }\n";
    let cases: Vec<(&str, String, i32, &[&str])> = vec![(
        "return_type",
        text.into(),
        1,
        &["expected 300, found 64", "the block's return type says 300", "project(x, 64)", "in this call of `project`"],
    )];
    table("block-call", &cases);
    // Nested: the inner block's return type fails for dims the outer call decides; both calls are named.
    let nested = "dim N\n\nblock inner(x: [N, D], units: int) -> [N, D] {\n    return dense(x, units)\n}\n\n\
                  block outer(x: [N, D]) -> [N, D] {\n    return inner(x, 3)\n}\n\n\
                  model M {\n    input x: [N, 5]\n    output y = outer(x)\n}\n";
    let dir = Scratch::new("block-call-nested");
    let (code, stderr) = check(&dir, "nested", nested);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("in this call of `inner`") && stderr.contains("in this call of `outer`"), "{stderr}");
}

#[test]
fn diag_train_hyperparameters_are_range_checked() {
    let bad: Vec<(&str, &str, &str)> = vec![
        ("lr_negative", "    optimizer = sgd(lr = -1)", "`lr` of `sgd` must be ≥ 0, found -1"),
        ("lr_tiny_negative", "    optimizer = adam(lr = -1e-9)", "`lr` of `adam` must be ≥ 0"),
        ("lr_positional", "    optimizer = sgd(-0.5)", "`lr` of `sgd` must be ≥ 0"),
        ("momentum_one", "    optimizer = sgd(0.1, momentum = 1)", "`momentum` of `sgd` must be in [0, 1)"),
        ("beta1", "    optimizer = adam(beta1 = 1.5)", "`beta1` of `adam` must be in [0, 1)"),
        ("beta2_negative", "    optimizer = adamax(beta2 = -0.1)", "`beta2` of `adamax` must be in [0, 1)"),
        ("rho", "    optimizer = rmsprop(rho = 1)", "`rho` of `rmsprop` must be in [0, 1)"),
        ("epsilon", "    optimizer = adam(epsilon = 0)", "`epsilon` of `adam` must be > 0"),
        ("weight_decay", "    optimizer = adam(weight_decay = -0.01)", "`weight_decay` of `adam` must be ≥ 0"),
        ("clip_norm", "    optimizer = sgd(0.1, clip_norm = 0)", "`clip_norm` of `sgd` must be > 0"),
        ("clip_value", "    optimizer = sgd(0.1, clip_value = -1)", "`clip_value` of `sgd` must be > 0"),
        (
            "schedule_every",
            "    optimizer = sgd(0.1)\n    lr_schedule = step_decay(every = 0)",
            "`every` of `step_decay` must be an integer ≥ 1",
        ),
        (
            "plateau_factor",
            "    optimizer = sgd(0.1)\n    lr_schedule = reduce_on_plateau(factor = 1.5)",
            "`factor` of `reduce_on_plateau` must be in (0, 1)",
        ),
        (
            "patience",
            "    optimizer = sgd(0.1)\n    early_stop = early_stop(patience = -1)",
            "`patience` of `early_stop` must be an integer ≥ 0",
        ),
        ("epochs_zero", "    optimizer = sgd(0.1)\n    epochs = 0", "`epochs` must be an integer ≥ 1, found 0"),
        ("steps_zero", "    optimizer = sgd(0.1)\n    steps = 0", "`steps` must be an integer ≥ 1"),
    ];
    let body = "    output p = x |> dense(4)";
    let cases: Vec<(&str, String, i32, &[&str])> = bad
        .iter()
        .map(|(name, train, words)| {
            (*name, classifier(body, "cross_entropy(p, y)", train), 1, std::slice::from_ref(words))
        })
        .collect();
    table("ranges", &cases);

    // Every value at the edge of its range is accepted.
    let dir = Scratch::new("ranges-ok");
    let good = "    optimizer = sgd(lr = 0, momentum = 0, weight_decay = 0, clip_norm = 1)\n\
                \x20   lr_schedule = reduce_on_plateau(factor = 0.5, patience = 0)\n\
                \x20   early_stop = early_stop(patience = 0, min_delta = 0)\n    epochs = 1";
    let (code, stderr) = check(&dir, "good", &classifier(body, "cross_entropy(p, y)", good));
    assert_eq!(code, 0, "{stderr}");
    let (code, stderr) = check(
        &dir,
        "adam",
        &classifier(
            body,
            "cross_entropy(p, y)",
            "    optimizer = adam(lr = 0.1, beta1 = 0, beta2 = 0.999, epsilon = 1e-8)",
        ),
    );
    assert_eq!(code, 0, "{stderr}");
}

#[test]
fn diag_cli_epochs_zero_is_an_error_like_the_file() {
    let dir = Scratch::new("cli-epochs");
    let text =
        classifier("    output p = x |> dense(4)", "cross_entropy(p, y)", "    optimizer = sgd(0.1)\n    epochs = 1");
    let path = dir.write("m.nn", &text);
    let path = path.display().to_string();
    let out_dir = dir.0.join("runs").display().to_string();
    for epochs in ["0", "00", "x"] {
        let out = nnc(&["run", &path, "--epochs", epochs, "--out", &out_dir]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "--epochs {epochs}: {stderr}");
        assert!(stderr.contains("`epochs` must be an integer ≥ 1"), "--epochs {epochs}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    // The file's own `epochs = 0` says the same words.
    let (code, stderr) = check(&dir, "zero", &text.replace("epochs = 1", "epochs = 0"));
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("`epochs` must be an integer ≥ 1, found 0"), "{stderr}");
}
