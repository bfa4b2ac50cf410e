//! Gradient checks: for every layer of docs/src/layers.md and every loss, the
//! gradients autodiff produces (run by the reference executor in f64) agree
//! with central finite differences.

#![forbid(unsafe_code)]

mod common;

use std::collections::HashMap;

use ndarray::{ArrayD, IxDyn};
use nnc_compiler::graph::TRef;
use nnc_compiler::ir::{self, DType, Func, Id, Op, autodiff, lower::LowerOptions};
use nnc_compiler::{CheckOptions, LoadError, Loader, analyse};
use nnc_runtime::exec::{self, Tensor};

struct NoFiles;
impl Loader for NoFiles {
    fn load(&self, _: &std::path::Path) -> Result<String, LoadError> {
        Err(LoadError::NotFound)
    }
}

struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> f64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((self.0 >> 11) as f64) / (1u64 << 53) as f64
    }
}

/// Lowers `src`'s first model (or train block's loss) and returns the
/// function with a scalar objective as its last output.
fn build(src: &str, n: i64, training: bool) -> Func {
    let a = analyse("grad.nn", None, src.to_string(), &NoFiles, &CheckOptions::default());
    let errors: Vec<_> = a.result.diagnostics.iter().filter(|d| d.severity == nnc_syntax::Severity::Error).collect();
    assert!(errors.is_empty(), "{src}\n{errors:#?}");
    let opts = LowerOptions { dims: vec![("N".into(), n)], training, ..LowerOptions::default() };
    if let Some(t) = a.result.trains.first() {
        let subst: HashMap<u32, TRef> = t
            .feeds
            .iter()
            .filter_map(|(name, r)| t.model_inputs.iter().find(|(m, _)| m == name).map(|(_, inp)| (inp.node, *r)))
            .collect();
        let loss = t.loss.expect("train block has a loss");
        return ir::lower::lower(&t.graph, &[("loss".into(), loss)], &subst, &opts).expect("lowers");
    }
    let m = &a.result.models[0];
    let roots: Vec<(String, TRef)> = m
        .outputs
        .iter()
        .flat_map(|(name, v)| match v {
            nnc_compiler::types::Value::Tensor(t) => vec![(name.clone(), t.node.expect("node"))],
            nnc_compiler::types::Value::Tuple(ts) => ts
                .iter()
                .enumerate()
                .map(|(i, p)| (format!("{name}.{i}"), p.as_tensor().unwrap().node.unwrap()))
                .collect(),
            _ => vec![],
        })
        .collect();
    let mut f = ir::lower::lower(&m.graph, &roots, &HashMap::new(), &opts).expect("lowers");
    // Objective: Σ_outputs Σ w ⊙ y with fixed pseudo-random weights.
    let mut rng = Lcg(7);
    let mut total = f.scalar(0.0);
    for (_, y) in f.outputs.clone() {
        let shape = f.shape(y).to_vec();
        let w: Vec<f32> = (0..ir::numel(&shape)).map(|_| (rng.next() * 2.0 - 1.0) as f32).collect();
        let wc = f.push(Op::Constant(w), vec![], shape.clone(), DType::F32, None);
        let p = f.mul(y, wc);
        let s = f.reduce(ir::Reduce::Sum, p, (0..shape.len()).collect(), false);
        total = f.add(total, s);
    }
    f.outputs = vec![("loss".into(), total)];
    f
}

fn random_inputs(f: &Func, rng: &mut Lcg, int_range: i64) -> HashMap<String, Tensor<f64>> {
    let mut m = HashMap::new();
    for n in &f.nodes {
        if let Op::Input(name) = &n.op {
            let count = ir::numel(&n.shape);
            let t = match n.dtype {
                DType::F32 => Tensor::F(
                    ArrayD::from_shape_vec(IxDyn(&n.shape), (0..count).map(|_| rng.next() * 2.0 - 1.0).collect())
                        .unwrap(),
                ),
                DType::I64 => Tensor::I(
                    ArrayD::from_shape_vec(
                        IxDyn(&n.shape),
                        (0..count).map(|_| (rng.next() * int_range as f64) as i64).collect(),
                    )
                    .unwrap(),
                ),
            };
            m.insert(name.clone(), t);
        }
    }
    m
}

fn check(src: &str) {
    check_with(src, 3, false, 4);
}

fn check_with(src: &str, n: i64, training: bool, int_range: i64) {
    check_func(build(src, n, training), src, int_range);
}

/// Finite differences against autodiff for every parameter and float input
/// of `f`, whose last output is the objective (`what` names it in failures).
fn check_func(mut f: Func, what: &str, int_range: i64) {
    let loss = f.outputs.last().unwrap().1;
    let wrt: Vec<Id> = f
        .nodes
        .iter()
        .enumerate()
        .filter(|(_, n)| matches!(n.op, Op::Param(_)) || (matches!(n.op, Op::Input(_)) && n.dtype == DType::F32))
        .map(|(i, _)| i as Id)
        .collect();
    let grads = autodiff::grad(&mut f, loss, &wrt);
    let mut rng = Lcg(42);
    let inputs = random_inputs(&f, &mut rng, int_range);
    let params: Vec<ArrayD<f64>> = f
        .params
        .iter()
        .map(|p| {
            let c = ir::numel(&p.shape);
            // Moving variances must stay positive.
            let v: Vec<f64> = (0..c)
                .map(|_| {
                    if p.name.ends_with("moving_var") || p.name.ends_with(".variance") {
                        0.5 + rng.next()
                    } else {
                        rng.next() - 0.5
                    }
                })
                .collect();
            ArrayD::from_shape_vec(IxDyn(&p.shape), v).unwrap()
        })
        .collect();
    let no_random = &mut || 0.5;
    let eval = |inputs: &HashMap<String, Tensor<f64>>, params: &[ArrayD<f64>]| -> f64 {
        let v = exec::run(&f, inputs, params, &mut || 0.5, false).expect("runs");
        v[loss as usize].float().iter().sum()
    };
    let vals = exec::run(&f, &inputs, &params, no_random, false).expect("runs");
    let mut worst = 0.0f64;
    let mut report = String::new();
    for (k, &w) in wrt.iter().enumerate() {
        let g = vals[grads[k] as usize].float();
        let node = &f.nodes[w as usize];
        let count = ir::numel(&node.shape);
        let picks: Vec<usize> =
            if count <= 12 { (0..count).collect() } else { (0..12).map(|i| (i * 7919 + 13) % count).collect() };
        for idx in picks {
            let h = 1e-6;
            let (plus, minus) = match &node.op {
                Op::Param(p) => {
                    let mut pp = params.clone();
                    pp[*p].as_slice_mut().unwrap()[idx] += h;
                    let a = eval(&inputs, &pp);
                    pp[*p].as_slice_mut().unwrap()[idx] -= 2.0 * h;
                    (a, eval(&inputs, &pp))
                }
                Op::Input(name) => {
                    let mut ii = inputs.clone();
                    let Tensor::F(arr) = ii.get_mut(name).unwrap() else { unreachable!() };
                    arr.as_slice_mut().unwrap()[idx] += h;
                    let a = eval(&ii, &params);
                    let Tensor::F(arr) = ii.get_mut(name).unwrap() else { unreachable!() };
                    arr.as_slice_mut().unwrap()[idx] -= 2.0 * h;
                    (a, eval(&ii, &params))
                }
                _ => unreachable!(),
            };
            let numeric = (plus - minus) / (2.0 * h);
            let analytic = g.as_slice().map(|s| s[idx]).unwrap_or_else(|| g.iter().nth(idx).copied().unwrap());
            let err = (numeric - analytic).abs() / (1.0 + numeric.abs().max(analytic.abs()));
            if err > worst {
                worst = err;
                report = format!(
                    "{} [{idx}]: numeric {numeric}, autodiff {analytic}",
                    match &node.op {
                        Op::Param(p) => f.params[*p].name.clone(),
                        Op::Input(n) => n.clone(),
                        _ => String::new(),
                    }
                );
            }
        }
    }
    assert!(worst < 1e-6, "gradient mismatch (relative error {worst:e}) at {report}\n{what}");
}

fn model(input: &str, body: &str) -> String {
    format!("dim N\nmodel M {{\n    input x: {input}\n    output y = {body}\n}}\n")
}

#[test]
fn dense_and_activations() {
    check(&model("[N, 4]", "dense(x, 3)"));
    check(&model("[N, 2, 4]", "dense(x, 3, activation = tanh)"));
    check(&model("[N, 4]", "dense(x, 3, bias = false)"));
    for act in [
        "relu",
        "sigmoid",
        "tanh",
        "gelu",
        "elu",
        "softplus",
        "leaky_relu",
        "softmax",
        "log_softmax",
        "prelu",
        "exp",
        "abs",
    ] {
        check(&model("[N, 5]", &format!("x |> dense(5) |> {act}")));
    }
    check(&model("[N, 3, 5]", "softmax(x, axis = 1)"));
    check(&model("[N, 5]", "x |> dense(4) |> elu(alpha = 0.5)"));
    check(&model("[N, 5]", "sqrt(exp(x)) + log(exp(x) + 1)"));
    check(&model("[N, 5]", "clip(x, -0.5, 0.5)"));
}

#[test]
fn convolutions() {
    check(&model("[N, 6, 6, 2]", "conv2d(x, 3, 3)"));
    check(&model("[N, 7, 7, 2]", "conv2d(x, 3, 3, stride = 2, padding = same)"));
    check(&model("[N, 7, 6, 2]", "conv2d(x, 2, [3, 2], dilation = 2, padding = 1)"));
    check(&model("[N, 8, 3]", "conv1d(x, 4, 3, stride = 2)"));
    check(&model("[N, 8, 3]", "conv1d(x, 2, 3, padding = same)"));
    check(&model("[N, 3, 3, 2]", "conv2d_transpose(x, 3, 3)"));
    check(&model("[N, 3, 3, 2]", "conv2d_transpose(x, 2, 3, stride = 2, padding = same)"));
    check(&model("[N, 3, 3, 2]", "conv2d_transpose(x, 2, 3, stride = 2, output_padding = 1)"));
}

#[test]
fn grouped_convolutions() {
    // groups ∈ {1, 2, C}: the kernel [KH, KW, C/groups, F].
    check(&model("[N, 5, 5, 4]", "conv2d(x, 6, 3, groups = 1, padding = same)"));
    check(&model("[N, 5, 5, 4]", "conv2d(x, 6, 3, groups = 2)"));
    check(&model("[N, 6, 5, 4]", "conv2d(x, 8, [3, 2], groups = 4, stride = 2, padding = same)"));
    check(&model("[N, 7, 7, 4]", "conv2d(x, 4, 3, groups = 2, dilation = 2)"));
    check(&model("[N, 8, 4]", "conv1d(x, 6, 3, groups = 2, stride = 2)"));
    // Depthwise: multiplier 1 and 2, stride, dilation, same/valid.
    check(&model("[N, 5, 5, 3]", "depthwise_conv2d(x, 3)"));
    check(&model("[N, 6, 6, 3]", "depthwise_conv2d(x, 3, depth_multiplier = 2, stride = 2, padding = same)"));
    check(&model("[N, 7, 6, 2]", "depthwise_conv2d(x, [3, 2], dilation = 2, padding = same, bias = false)"));
    check(&model("[N, 8, 3]", "depthwise_conv1d(x, 3, depth_multiplier = 2)"));
    check(&model("[N, 9, 2]", "depthwise_conv1d(x, 3, stride = 2, dilation = 2, padding = same)"));
    // Separable: depthwise then pointwise.
    check(&model("[N, 5, 5, 3]", "separable_conv2d(x, 4, 3)"));
    check(&model("[N, 6, 6, 2]", "separable_conv2d(x, 3, 3, depth_multiplier = 2, stride = 2, padding = same)"));
    check(&model("[N, 8, 3]", "separable_conv1d(x, 2, 3, depth_multiplier = 2, dilation = 2)"));
}

#[test]
fn pooling_and_reshaping() {
    check(&model("[N, 6, 6, 2]", "max_pool(x, 2)"));
    check(&model("[N, 7, 7, 2]", "max_pool(x, 3, stride = 2, padding = same)"));
    check(&model("[N, 8, 3]", "max_pool(x, 2)"));
    check(&model("[N, 6, 6, 2]", "avg_pool(x, 2)"));
    check(&model("[N, 5, 5, 2]", "avg_pool(x, 2, padding = same)"));
    check(&model("[N, 5, 5, 2]", "avg_pool(x, 3, stride = 2, padding = 1)"));
    check(&model("[N, 4, 4, 2]", "global_avg_pool(x) + global_max_pool(x)"));
    check(&model("[N, 5, 3]", "global_avg_pool(x)"));
    check(&model("[N, 3, 3, 2]", "upsample(x, 2)"));
    check(&model("[N, 4, 3]", "upsample(x, 2)"));
    check(&model("[N, 3, 4, 2]", "flatten(x) |> dense(2)"));
    check(&model("[N, 3, 4]", "reshape(x, [N, 2, 6])"));
    check(&model("[N, 3, 4]", "concat(x, x * 2, axis = 1)"));
    check(&model("[N, 3, 4]", "x[:, -1] + x[:, 0]"));
    check(&model("[N, 3, 4]", "mean(x, 1) + sum(x, axis = 2)[:, 0:1]"));
}

#[test]
fn normalisation() {
    check_with(&model("[N, 3, 3, 2]", "batch_norm(x)"), 4, true, 4);
    check_with(&model("[N, 3, 3, 2]", "batch_norm(x)"), 4, false, 4);
    check(&model("[N, 3, 4]", "layer_norm(x)"));
    check(&model("[N, 3, 4]", "layer_norm(x, axes = [1, 2])"));
    check(&model("[N, 3, 3, 2]", "instance_norm(x)"));
    check(&model("[N, 5]", "dropout(x, 0.5) |> gaussian_noise(0.1)"));
}

#[test]
fn embeddings_and_positions() {
    let src = "dim N\nmodel M {\n    input t: int[N, 4]\n    output y = embedding(t, 6, 3) |> positional_embedding(8) \
        |> positional_encoding\n}\n";
    check_with(src, 3, false, 6);
    check_with("dim N\nmodel M {\n    input t: int[N, 4]\n    output y = one_hot(t, 5) |> dense(2)\n}\n", 3, false, 5);
}

#[test]
fn recurrent_layers() {
    check(&model("[N, 4, 3]", "simple_rnn(x, 2)"));
    check(&model("[N, 4, 3]", "lstm(x, 2, sequences = true)"));
    check(&model("[N, 4, 3]", "lstm(x, 2, state = true)"));
    check(&model("[N, 4, 3]", "gru(x, 2, sequences = true)"));
    check(&model("[N, 4, 3]", "gru(x, 2, reset_after = false)"));
    check(&model("[N, 4, 3]", "gru(x, 2, go_backwards = true)"));
    check(&model("[N, 4, 3]", "bidirectional(x, lstm(2, sequences = true))"));
    check(&model("[N, 4, 3]", "bidirectional(x, gru(2), merge = sum)"));
    check(
        "dim N\nmodel M {\n    input x: [N, 4, 3]\n    input h0: [N, 2]\n    output y = simple_rnn(x, 2, \
            initial_state = h0)\n}\n",
    );
}

#[test]
fn attention_and_repeat() {
    check(&model("[N, 4, 6]", "multi_head_attention(x, 2, 3)"));
    check(&model("[N, 4, 6]", "multi_head_attention(x, heads = 2, key_dim = 2, value_dim = 3, causal = true)"));
    check(
        "dim N\nmodel M {\n    input x: [N, 4, 6]\n    input e: [N, 5, 3]\n    output y = multi_head_attention(x, 2, \
            3, kv = e)\n}\n",
    );
    check(&model("[N, 4]", "repeat(x, 3, dense(4, activation = relu))"));
}

fn train_src(model_body: &str, loss: &str) -> String {
    format!(
        "dim N\nmodel M {{\n    input x: [N, 4]\n    input labels: int[N]\n    input target: [N, 3]\n{model_body}\n\
            }}\ntrain t {{\n    model = M()\n    data = synthetic(n = 10)\n    loss = {loss}\n}}\n"
    )
}

#[test]
fn losses() {
    let body = "    output logits = dense(x, 3)\n    output p = sigmoid(logits)\n    output lp = log_softmax(logits)";
    for loss in [
        "cross_entropy(logits, labels)",
        "cross_entropy(logits, target)",
        "mse(logits, target)",
        "l1(logits, target)",
        "binary_cross_entropy(p, target)",
        "bce_with_logits(logits, target)",
        "nll(lp, labels)",
        "huber(logits, target)",
        "huber(logits, target, delta = 0.3)",
        "mse(logits, target) + 0.01 * l2(params)",
    ] {
        check_with(&train_src(body, loss), 4, true, 3);
    }
}

/// The value of a train block's loss for given inputs (the model's output is its input `y = x`).
fn loss_value(x: &[f64], xs: Vec<usize>, target: (&str, Tensor<f64>), loss: &str) -> f64 {
    let n = xs[0] as i64;
    let ty = match &target.1 {
        Tensor::F(a) => format!("[N, {}]", a.shape()[1]),
        Tensor::I(_) => "int[N]".to_string(),
    };
    let src = format!(
        "dim N\nmodel M {{\n    input x: [N, {}]\n    input {}: {ty}\n    output y = x\n}}\n\
         train t {{\n    model = M()\n    data = synthetic(n = 10)\n    loss = {loss}\n}}\n",
        xs[1], target.0
    );
    let f = build(&src, n, true);
    let mut inputs = HashMap::new();
    inputs.insert("x".to_string(), Tensor::F(ArrayD::from_shape_vec(IxDyn(&xs), x.to_vec()).unwrap()));
    inputs.insert(target.0.to_string(), target.1);
    let v = exec::run(&f, &inputs, &[], &mut || 0.5, false).expect("runs");
    v[f.outputs.last().unwrap().1 as usize].float().iter().sum()
}

/// `huber` and `top_k_accuracy` against values Keras 3.15 gives for the same inputs
/// (keras.losses.Huber, keras.metrics.SparseTopKCategoricalAccuracy).
#[test]
fn huber_and_top_k_accuracy_match_keras() {
    let x = [0.0, 2.0, -0.5, 1.0, 1.0, 1.0];
    let zeros = || Tensor::F(ArrayD::zeros(IxDyn(&[2, 3])));
    // ½·0.25 + (2 − ½) + 3·½ over 6 elements.
    let h = loss_value(&x, vec![2, 3], ("target", zeros()), "huber(y, target)");
    assert!((h - 0.520_833_333).abs() < 1e-9, "{h}");
    let h = loss_value(&x, vec![2, 3], ("target", zeros()), "huber(y, target, delta = 0.3)");
    assert!((h - 0.2375).abs() < 1e-9, "{h}");
    let logits = [0.1, 0.5, 0.3, 0.2, 0.9, 0.1, 0.0, 0.05, 0.2, 0.2, 0.2, 0.2];
    let labels = || Tensor::I(ArrayD::from_shape_vec(IxDyn(&[3]), vec![2i64, 2, 3]).unwrap());
    for (k, want) in [(1, 1.0 / 3.0), (2, 2.0 / 3.0), (4, 1.0)] {
        let loss = format!("top_k_accuracy(y, labels, k = {k})");
        let got = loss_value(&logits, vec![3, 4], ("labels", labels()), &loss);
        assert!((got - want).abs() < 1e-9, "k = {k}: {got}");
    }
}

/// Autodiff joins the gradients of slices of one tensor (time steps, gates)
/// with a concat; overlapping slices, gaps, slices along two axes and a
/// use of the whole tensor must still sum correctly.
#[test]
fn slices_with_gaps_overlaps_and_two_axes() {
    let mut f = Func::default();
    let x = f.input("x", vec![4, 7], DType::F32);
    let parts = [(1, 0, 2), (1, 1, 3), (1, 5, 7), (0, 2, 3), (1, 3, 4)];
    let mut total = f.scalar(0.0);
    for (k, &(axis, start, end)) in parts.iter().enumerate() {
        let s = f.slice(x, axis, start, end);
        let sq = f.unary(ir::Unary::Square, s);
        let w = f.mul_scalar(sq, 1.0 + k as f64);
        let r = f.reduce(ir::Reduce::Sum, w, vec![0, 1], false);
        total = f.add(total, r);
    }
    let whole = f.unary(ir::Unary::Tanh, x);
    let r = f.reduce(ir::Reduce::Sum, whole, vec![0, 1], false);
    total = f.add(total, r);
    f.outputs = vec![("loss".into(), total)];
    check_func(f, "slices of x [4, 7]", 1);
}

/// Issue 11's layers and options: activations (as layers and as `activation = …`), Keras's ReLU
/// options, borders, batch/layer norm without center or scale, global pooling with keepdims,
/// rescaling, layer scale, Normalization, dropout with a noise shape and the SE block.
#[test]
fn model_zoo_layers() {
    for act in ["relu6", "swish", "silu", "hard_sigmoid", "hard_swish", "hard_silu", "mish"] {
        check(&model("[N, 5]", &format!("x |> dense(5) |> {act}")));
        check(&model("[N, 5]", &format!("dense(x * 4, 3, activation = {act})")));
    }
    for opts in [
        "max_value = 0.5",
        "max_value = 6",
        "negative_slope = 0.2",
        "threshold = 0.3",
        "threshold = -0.4",
        "max_value = 0.6, negative_slope = 0.1, threshold = 0.2",
        "max_value = 6, negative_slope = 0.3",
    ] {
        check(&model("[N, 7]", &format!("relu(x * 2, {opts})")));
    }
    check(&model("[N, 3, 3, 2]", "zero_padding2d(x, [[0, 1], [2, 0]]) |> conv2d(2, 2)"));
    check(&model("[N, 3, 3, 2]", "zero_padding2d(x) + zero_padding2d(x, [1, 1])"));
    check(&model("[N, 5, 2]", "zero_padding1d(x, [1, 2]) |> conv1d(2, 3)"));
    check(&model("[N, 5, 4, 2]", "cropping2d(x, [[1, 2], [0, 1]]) |> conv2d(2, 2)"));
    check(&model("[N, 5, 2]", "cropping1d(x, [2, 1]) |> dense(3)"));
    check_with(&model("[N, 3, 3, 2]", "batch_norm(x, scale = false) + batch_norm(x, center = false)"), 4, true, 4);
    check_with(&model("[N, 3, 3, 2]", "batch_norm(x, scale = false, center = false)"), 4, false, 4);
    check(&model("[N, 3, 4]", "layer_norm(x, center = false) + layer_norm(x, scale = false, axes = [1, 2])"));
    check(&model("[N, 4, 4, 2]", "global_avg_pool(x, keepdims = true) * x + global_max_pool(x, keepdims = true)"));
    check(&model("[N, 5, 3]", "global_max_pool(x, keepdims = true) |> dense(2)"));
    check(&model("[N, 5]", "rescaling(x, 0.5, offset = 0.25) |> dense(2)"));
    check(&model("[N, 3, 4]", "layer_scale(x, init_values = 0.5) |> dense(2)"));
    check(&model("[N, 3, 4]", "normalization(x, mean = [0.1, 0.2, 0.3, 0.4], variance = 2) |> dense(2)"));
    check(&model("[N, 3, 4]", "normalization(x, axis = 1) |> dense(2)"));
    check_with(&model("[N, 3, 2, 2]", "dropout(x, 0.2, noise_shape = [N, 1, 1, 1]) |> dense(2)"), 3, true, 4);
    let se = "use std.blocks\ndim N\nmodel M {\n    input x: [N, 3, 3, 4]\n    output y = squeeze_excite(x, 2) + \
        squeeze_excite(x, 3, use_swish = true)\n}\n";
    check(se);
}

/// `noise_shape` draws one value per position of its non-1 axes: the mask is [N, 1, 1, 1] for
/// stochastic depth, [N, 1, C] for a channel dropout; without it the mask has the input's shape.
#[test]
fn dropout_noise_shape_draws_the_mask_it_names() {
    for (body, mask) in [
        ("dropout(x, 0.2, noise_shape = [N, 1, 1, 1])", vec![3, 1, 1, 1]),
        ("dropout(x, 0.2, noise_shape = [N, 1, 1, 2])", vec![3, 1, 1, 2]),
        ("dropout(x, 0.2)", vec![3, 4, 5, 2]),
    ] {
        let f = build(&model("[N, 4, 5, 2]", body), 3, true);
        let shapes: Vec<&[usize]> =
            f.nodes.iter().filter(|n| matches!(n.op, Op::Random { .. })).map(|n| n.shape.as_slice()).collect();
        assert_eq!(shapes, vec![mask.as_slice()], "{body}");
    }
}
