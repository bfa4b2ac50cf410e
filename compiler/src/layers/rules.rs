//! The table of layers and tensor functions (LANGUAGE.md §6 and §10) with
//! their shape rules.

use nnc_syntax::ast::ElemType;

use super::args::{ArgVal, Padding};
use super::lowering;
use super::{Apply, ArgDef, ArgKind, Default, Family, FloatRange, LayerDef, LayerError, Operands, RuleResult, size};
use super::{Extra, Hint};
use crate::dims::{Dim, Equality};
use crate::types::{TensorTy, Value};

const fn opt(name: &'static str, kind: ArgKind, default: Default, doc: &'static str) -> ArgDef {
    ArgDef { name, kind, default, doc }
}

const INT1: ArgKind = ArgKind::Int { min: 1 };
const PAIR1: ArgKind = ArgKind::IntOrPair { min: 1 };
const RATE: ArgKind = ArgKind::Float { range: FloatRange::RATE };
const NON_NEG: ArgKind = ArgKind::Float { range: FloatRange::NON_NEGATIVE };
const POSITIVE: ArgKind = ArgKind::Float { range: FloatRange::POSITIVE };
const ANY_FLOAT: ArgKind = ArgKind::Float { range: FloatRange::ANY };

/// Builds an option list that ends with the options every layer with a
/// `kernel` takes (LANGUAGE.md §10: `bias`, `activation`, initialisers).
macro_rules! with_kernel_opts {
    ($($e:expr),* $(,)?) => {
        &[
            $($e,)*
            opt("bias", ArgKind::Bool, Default::Bool(true), "add a bias vector"),
            opt("activation", ArgKind::Activation, Default::Mode("none"), "activation applied to the output"),
            opt("init", ArgKind::Init, Default::Mode("glorot_uniform"), "kernel initialiser"),
            opt("bias_init", ArgKind::Init, Default::Mode("zeros"), "bias initialiser"),
        ]
    };
}

/// Options of the recurrent layers.
macro_rules! recurrent_opts {
    ($($e:expr),* $(,)?) => {
        &[
            opt("units", INT1, Default::Required, "size M of the hidden state"),
            opt("sequences", ArgKind::Bool, Default::Bool(false), "return the whole sequence [N, T, M] instead of the \
                last step [N, M]"),
            opt("state", ArgKind::Bool, Default::Bool(false), "also return the final states: (o, h) or, for LSTM, (o, \
                h, c)"),
            $($e,)*
            opt("initial_state", ArgKind::State, Default::Absent, "h0, or (h0, c0) for LSTM"),
            opt("activation", ArgKind::Activation, Default::Mode("none"), "cell activation (default tanh)"),
            opt("go_backwards", ArgKind::Bool, Default::Bool(false), "process the sequence backwards"),
            opt("bias", ArgKind::Bool, Default::Bool(true), "add bias vectors"),
            opt("init", ArgKind::Init, Default::Mode("glorot_uniform"), "kernel initialiser"),
            opt("recurrent_init", ArgKind::Init, Default::Mode("orthogonal"), "recurrent kernel initialiser"),
            opt("bias_init", ArgKind::Init, Default::Mode("zeros"), "bias initialiser"),
            opt("dropout", RATE, Default::Float(0.0), "dropout on the inputs"),
        ]
    };
}

const POOL_OPTS: &[ArgDef] = &[
    opt("size", PAIR1, Default::Int(2), "window size, an int or [h, w]"),
    opt("stride", PAIR1, Default::SameAs("size"), "step between windows (default: size)"),
    opt("padding", ArgKind::Padding, Default::Mode("valid"), "valid | same | P | [PH, PW]"),
];

const AXIS_OPT: &[ArgDef] = &[opt("axis", ArgKind::Axis, Default::Int(-1), "the axis to normalise over")];

/// One table entry; the rarer facts (`owns_params: true`, `hints: &[…]`) follow the lowering and default to
/// [`Extra::NONE`], so an entry names only what it has.
macro_rules! layer {
    (
        $name:literal, $sig:literal, $doc:literal, $family:ident, $ops:ident, $args:expr, $rule:expr, $lower:expr
        $(, $field:ident: $val:expr)* $(,)?
    ) => {
        LayerDef {
            name: $name,
            signature: $sig,
            doc: $doc,
            family: Family::$family,
            operands: Operands::$ops,
            args: $args,
            rule: $rule,
            lower: $lower,
            extra: Extra::NONE $(.$field($val))*,
        }
    };
}

const SEQUENCES: Hint =
    Hint::Rank { found: 2, help: "recurrent and 1-D layers take sequences [N, T, D]; add a time axis with `reshape`" };

pub static LAYERS: &[LayerDef] = &[
    layer!(
        "dense",
        "dense(x, units, bias = true, activation = none)",
        "Fully connected layer on the last axis: [..., D] → [..., units]. Parameters kernel [D, units], bias [units].",
        Layer,
        One,
        with_kernel_opts![opt("units", INT1, Default::Required, "number of output features")],
        dense,
        lowering::dense
    ),
    layer!("relu", "relu(x)", "max(0, x), elementwise.", Layer, One, &[], elementwise, lowering::unary),
    layer!("sigmoid", "sigmoid(x)", "1 / (1 + e^-x), elementwise.", Layer, One, &[], elementwise, lowering::unary),
    layer!("tanh", "tanh(x)", "Hyperbolic tangent, elementwise.", Layer, One, &[], elementwise, lowering::unary),
    layer!(
        "gelu",
        "gelu(x)",
        "Gaussian error linear unit, elementwise.",
        Layer,
        One,
        &[],
        elementwise,
        lowering::unary
    ),
    layer!(
        "elu",
        "elu(x, alpha = 1.0)",
        "x if x > 0 else alpha·(e^x − 1).",
        Layer,
        One,
        &[opt("alpha", ANY_FLOAT, Default::Float(1.0), "slope of the negative part")],
        elementwise,
        lowering::elu
    ),
    layer!("softplus", "softplus(x)", "log(1 + e^x), elementwise.", Layer, One, &[], elementwise, lowering::unary),
    layer!(
        "leaky_relu",
        "leaky_relu(x, alpha = 0.3)",
        "x if x > 0 else alpha·x (Keras's default alpha 0.3).",
        Layer,
        One,
        &[opt("alpha", NON_NEG, Default::Float(0.3), "slope of the negative part")],
        elementwise,
        lowering::leaky_relu
    ),
    layer!(
        "softmax",
        "softmax(x, axis = -1)",
        "Softmax along an axis.",
        Layer,
        One,
        AXIS_OPT,
        along_axis,
        lowering::softmax
    ),
    layer!(
        "log_softmax",
        "log_softmax(x, axis = -1)",
        "Log of the softmax along an axis.",
        Layer,
        One,
        AXIS_OPT,
        along_axis,
        lowering::softmax
    ),
    layer!(
        "prelu",
        "prelu(x)",
        "Leaky ReLU with a learned slope per channel: alpha [C].",
        Layer,
        One,
        &[opt("init", ArgKind::Init, Default::Mode("zeros"), "alpha initialiser")],
        prelu,
        lowering::prelu,
        owns_params: true
    ),
    layer!(
        "conv1d",
        "conv1d(x, filters, kernel, stride = 1, padding = valid, dilation = 1)",
        "1-D convolution: [N, T, C] → [N, T', filters], T' = (T + 2P − Dl·(K−1) − 1)/S + 1. Parameters kernel [K, C, \
            filters], bias [filters].",
        Layer,
        One,
        with_kernel_opts![
            opt("filters", INT1, Default::Required, "number of output channels"),
            opt("kernel", INT1, Default::Required, "kernel size"),
            opt("stride", INT1, Default::Int(1), "stride"),
            opt("padding", ArgKind::Padding, Default::Mode("valid"), "valid | same | P"),
            opt("dilation", INT1, Default::Int(1), "dilation"),
        ],
        |a| conv(a, 1, false),
        lowering::conv,
        hints: &[SEQUENCES]
    ),
    layer!(
        "conv2d",
        "conv2d(x, filters, kernel, stride = 1, padding = valid, dilation = 1)",
        "2-D convolution, channels last: [N, H, W, C] → [N, H', W', filters], H' = (H + 2P − Dl·(K−1) − 1)/S + 1; \
            with `same`, H' = ceil(H/S). Parameters kernel [KH, KW, C, filters], bias [filters].",
        Layer,
        One,
        with_kernel_opts![
            opt("filters", INT1, Default::Required, "number of output channels"),
            opt("kernel", PAIR1, Default::Required, "kernel size, an int or [kh, kw]"),
            opt("stride", PAIR1, Default::Int(1), "stride, an int or [sh, sw]"),
            opt("padding", ArgKind::Padding, Default::Mode("valid"), "valid | same | P | [PH, PW]"),
            opt("dilation", PAIR1, Default::Int(1), "dilation, an int or [dh, dw]"),
        ],
        |a| conv(a, 2, false),
        lowering::conv,
        hints: &[Hint::Rank {
            found: 3,
            help: "images need a channel axis: [N, H, W, 1] for grey-scale (`reshape(x, [N, H, W, 1])`)",
        }]
    ),
    layer!(
        "conv2d_transpose",
        "conv2d_transpose(x, filters, kernel, stride = 1, padding = valid, output_padding = 0)",
        "Transposed 2-D convolution: H' = (H−1)·S − 2P + Dl·(K−1) + output_padding + 1; with `same`, H' = H·S. \
            Parameters kernel [KH, KW, filters, C], bias [filters].",
        Layer,
        One,
        with_kernel_opts![
            opt("filters", INT1, Default::Required, "number of output channels"),
            opt("kernel", PAIR1, Default::Required, "kernel size, an int or [kh, kw]"),
            opt("stride", PAIR1, Default::Int(1), "stride, an int or [sh, sw]"),
            opt("padding", ArgKind::Padding, Default::Mode("valid"), "valid | same | P | [PH, PW]"),
            opt(
                "output_padding",
                ArgKind::IntOrPair { min: 0 },
                Default::Int(0),
                "extra size added to one side of the output"
            ),
            opt("dilation", PAIR1, Default::Int(1), "dilation, an int or [dh, dw]"),
        ],
        |a| conv(a, 2, true),
        lowering::conv_transpose
    ),
    layer!(
        "max_pool",
        "max_pool(x, size = 2, stride = size, padding = valid)",
        "Max pooling over H, W of [N, H, W, C] (or T of [N, T, C]); valid: H' = (H − size)/S + 1, same: H' = \
            ceil(H/S).",
        Layer,
        One,
        POOL_OPTS,
        pool,
        lowering::pool
    ),
    layer!(
        "avg_pool",
        "avg_pool(x, size = 2, stride = size, padding = valid)",
        "Average pooling over H, W of [N, H, W, C] (or T of [N, T, C]); integer padding is counted (PyTorch's \
            default), `same` padding is not (Keras's).",
        Layer,
        One,
        POOL_OPTS,
        pool,
        lowering::pool
    ),
    layer!(
        "global_avg_pool",
        "global_avg_pool(x)",
        "Mean over the spatial axes: [N, H, W, C] → [N, C]; [N, T, D] → [N, D].",
        Layer,
        One,
        &[],
        global_pool,
        lowering::global_pool
    ),
    layer!(
        "global_max_pool",
        "global_max_pool(x)",
        "Max over the spatial axes: [N, H, W, C] → [N, C]; [N, T, D] → [N, D].",
        Layer,
        One,
        &[],
        global_pool,
        lowering::global_pool
    ),
    layer!(
        "upsample",
        "upsample(x, size = 2)",
        "Nearest-neighbour upsampling: [N, H, W, C] → [N, s·H, s·W, C] (and [N, T, C] → [N, s·T, C]).",
        Layer,
        One,
        &[opt("size", PAIR1, Default::Int(2), "factor, an int or [h, w]")],
        upsample,
        lowering::upsample
    ),
    layer!("flatten", "flatten(x)", "[N, a, b, …] → [N, a·b·…].", Layer, One, &[], flatten, lowering::reshape),
    layer!(
        "reshape",
        "reshape(x, [N, …])",
        "Reshape keeping the element count; at most one dim may be -1.",
        Layer,
        One,
        &[opt("shape", ArgKind::Shape, Default::Required, "the target shape, batch axis included")],
        reshape,
        lowering::reshape
    ),
    layer!(
        "concat",
        "concat(a, b, …, axis = -1)",
        "Concatenation along an axis; all other axes must agree.",
        Layer,
        Variadic,
        &[opt("axis", ArgKind::Axis, Default::Int(-1), "the concatenation axis")],
        concat,
        lowering::concat
    ),
    layer!(
        "batch_norm",
        "batch_norm(x, momentum = 0.99, epsilon = 1e-3)",
        "Batch normalisation over all axes but the last. Parameters gamma [C], beta [C]; non-trainable moving_mean \
            [C], moving_var [C]. moving = momentum·moving + (1 − momentum)·batch.",
        Layer,
        One,
        &[
            opt(
                "momentum",
                ArgKind::Float { range: FloatRange::UNIT },
                Default::Float(0.99),
                "moving-average momentum (Keras convention)"
            ),
            opt("epsilon", POSITIVE, Default::Float(1e-3), "added to the variance"),
        ],
        batch_norm,
        lowering::batch_norm,
        owns_params: true
    ),
    layer!(
        "layer_norm",
        "layer_norm(x, epsilon = 1e-3, axes = [-1])",
        "Layer normalisation over `axes`; gamma and beta have the shape of the normalised axes.",
        Layer,
        One,
        &[
            opt("epsilon", POSITIVE, Default::Float(1e-3), "added to the variance"),
            opt("axes", ArgKind::Axes, Default::Int(-1), "the normalised axes"),
        ],
        layer_norm,
        lowering::layer_norm,
        owns_params: true
    ),
    layer!(
        "instance_norm",
        "instance_norm(x, affine = true, epsilon = 1e-3)",
        "Instance normalisation: statistics over the spatial axes per sample and channel; gamma, beta [C] when affine.",
        Layer,
        One,
        &[
            opt("affine", ArgKind::Bool, Default::Bool(true), "learn gamma and beta"),
            opt("epsilon", POSITIVE, Default::Float(1e-3), "added to the variance"),
        ],
        instance_norm,
        lowering::instance_norm,
        owns_params: true
    ),
    layer!(
        "dropout",
        "dropout(x, rate)",
        "Zeroes a fraction `rate` of the inputs in training; identity in evaluation.",
        Layer,
        One,
        &[opt("rate", RATE, Default::Required, "fraction of inputs dropped, in [0, 1)")],
        elementwise,
        lowering::dropout
    ),
    layer!(
        "gaussian_noise",
        "gaussian_noise(x, stddev)",
        "Adds N(0, stddev²) noise in training; identity in evaluation.",
        Layer,
        One,
        &[opt("stddev", NON_NEG, Default::Required, "standard deviation of the noise")],
        elementwise,
        lowering::gaussian_noise
    ),
    layer!(
        "embedding",
        "embedding(x, vocab, dim)",
        "Lookup table: int[N, T] → [N, T, dim]. Parameter embeddings [vocab, dim].",
        Layer,
        One,
        &[
            opt("vocab", INT1, Default::Required, "number of distinct indices"),
            opt("dim", INT1, Default::Required, "size of each vector"),
            opt("init", ArgKind::Init, Default::Mode("uniform"), "embeddings initialiser"),
        ],
        embedding,
        lowering::embedding,
        owns_params: true,
        hints: &[Hint::ElemType { note: "embedding looks up integer indices: declare the input as int[N, T]" }]
    ),
    layer!(
        "positional_embedding",
        "positional_embedding(x, max_len)",
        "Adds learned positions: [N, T, D] → [N, T, D], T ≤ max_len. Parameter embeddings [max_len, D].",
        Layer,
        One,
        &[opt("max_len", INT1, Default::Required, "the longest sequence")],
        positional_embedding,
        lowering::positional_embedding,
        owns_params: true
    ),
    layer!(
        "positional_encoding",
        "positional_encoding(x)",
        "Adds the fixed sinusoidal position encoding: [N, T, D] → [N, T, D]. No parameters.",
        Layer,
        One,
        &[],
        positional_encoding,
        lowering::positional_encoding
    ),
    layer!(
        "simple_rnn",
        "simple_rnn(x, units, sequences = false, state = false)",
        "Fully connected recurrent layer: [N, T, D] → [N, M] (or [N, T, M] with sequences). Parameters kernel [D, M], \
            recurrent_kernel [M, M], bias [M].",
        Layer,
        One,
        recurrent_opts![],
        |a| recurrent(a, Cell::Simple),
        lowering::recurrent,
        hints: &[SEQUENCES]
    ),
    layer!(
        "lstm",
        "lstm(x, units, sequences = false, state = false)",
        "Long short-term memory, gate order i, f, c, o: [N, T, D] → [N, M] (or [N, T, M]); state = true gives (o, h, \
            c). Parameters kernel [D, 4M], recurrent_kernel [M, 4M], bias [4M].",
        Layer,
        One,
        recurrent_opts![],
        |a| recurrent(a, Cell::Lstm),
        lowering::recurrent,
        hints: &[SEQUENCES]
    ),
    layer!(
        "gru",
        "gru(x, units, sequences = false, state = false, reset_after = true)",
        "Gated recurrent unit, gate order z, r, h: [N, T, D] → [N, M] (or [N, T, M]); state = true gives (o, h). \
            Parameters kernel [D, 3M], recurrent_kernel [M, 3M], bias [2, 3M] ([3M] when reset_after = false).",
        Layer,
        One,
        recurrent_opts![opt(
            "reset_after",
            ArgKind::Bool,
            Default::Bool(true),
            "apply the reset gate after the recurrent matmul (Keras/cuDNN convention)"
        )],
        |a| recurrent(a, Cell::Gru),
        lowering::recurrent,
        hints: &[SEQUENCES]
    ),
    layer!(
        "bidirectional",
        "bidirectional(x, rnn_layer, merge = concat)",
        "Runs a recurrent layer forwards and backwards: [N, T, 2M] with merge = concat. Parameters forward.*, \
            backward.*.",
        Layer,
        One,
        &[
            opt("layer", ArgKind::Layer, Default::Required, "a recurrent layer value, e.g. lstm(64, sequences = true)"),
            opt(
                "merge",
                ArgKind::Mode(&["concat", "sum", "mul", "ave"]),
                Default::Mode("concat"),
                "how the two directions are combined"
            ),
        ],
        bidirectional,
        lowering::bidirectional,
        owns_params: true
    ),
    layer!(
        "multi_head_attention",
        "multi_head_attention(q, heads, key_dim, kv = q, value_dim = key_dim, dropout = 0, causal = false)",
        "Multi-head attention: [N, T, D] → [N, T, D]. Parameters query/key/value.kernel [D, heads, key_dim] with \
            biases [heads, key_dim], output.kernel [heads, value_dim, D], output.bias [D].",
        Layer,
        One,
        &[
            opt("heads", INT1, Default::Required, "number of attention heads"),
            opt("key_dim", INT1, Default::Required, "size of each head for queries and keys"),
            opt("kv", ArgKind::Tensor, Default::Absent, "the key/value sequence [N, S, Dkv] (default: the query)"),
            opt("value_dim", INT1, Default::SameAs("key_dim"), "size of each head for values"),
            opt("dropout", RATE, Default::Float(0.0), "dropout on the attention weights"),
            opt("causal", ArgKind::Bool, Default::Bool(false), "mask future positions"),
        ],
        attention,
        lowering::multi_head_attention,
        owns_params: true
    ),
    layer!(
        "repeat",
        "repeat(x, n, layer_value)",
        "Applies n copies of a layer, each with its own parameters.",
        Layer,
        One,
        &[
            opt("n", ArgKind::Int { min: 0 }, Default::Required, "number of copies"),
            opt("layer", ArgKind::Layer, Default::Required, "the layer value to repeat"),
        ],
        repeat,
        lowering::repeat,
        owns_params: true
    ),
    // ---- tensor functions (no parameters, not listed in summaries)
    layer!(
        "one_hot",
        "one_hot(x, depth)",
        "int[…] → […, depth] of zeros and ones.",
        Function,
        One,
        &[opt("depth", INT1, Default::Required, "number of classes")],
        one_hot,
        lowering::one_hot
    ),
    layer!(
        "clip",
        "clip(x, lo, hi)",
        "Clamps every element to [lo, hi].",
        Function,
        One,
        &[
            opt("lo", ANY_FLOAT, Default::Required, "lower bound"),
            opt("hi", ANY_FLOAT, Default::Required, "upper bound")
        ],
        elementwise,
        lowering::clip
    ),
    layer!("exp", "exp(x)", "e^x, elementwise.", Function, One, &[], elementwise, lowering::unary),
    layer!("log", "log(x)", "Natural logarithm, elementwise.", Function, One, &[], elementwise, lowering::unary),
    layer!("sqrt", "sqrt(x)", "Square root, elementwise.", Function, One, &[], elementwise, lowering::unary),
    layer!("abs", "abs(x)", "Absolute value, elementwise.", Function, One, &[], elementwise_any, lowering::unary),
    layer!(
        "mean",
        "mean(x, axis)",
        "Mean over an axis (or all axes).",
        Function,
        One,
        &[
            opt("axis", ArgKind::Axes, Default::Absent, "axis or axes to reduce (default: all)"),
            opt("keepdims", ArgKind::Bool, Default::Bool(false), "keep reduced axes with size 1"),
        ],
        reduce,
        lowering::reduce
    ),
    layer!(
        "sum",
        "sum(x, axis)",
        "Sum over an axis (or all axes).",
        Function,
        One,
        &[
            opt("axis", ArgKind::Axes, Default::Absent, "axis or axes to reduce (default: all)"),
            opt("keepdims", ArgKind::Bool, Default::Bool(false), "keep reduced axes with size 1"),
        ],
        reduce,
        lowering::reduce
    ),
    layer!(
        "normal",
        "normal(shape, std = 1)",
        "A fresh N(0, std²) tensor of the given shape, drawn at every step.",
        Function,
        None,
        &[
            opt("shape", ArgKind::Shape, Default::Required, "the shape, e.g. [N, 100]"),
            opt("std", NON_NEG, Default::Float(1.0), "standard deviation"),
            opt("mean", ANY_FLOAT, Default::Float(0.0), "mean"),
        ],
        random,
        lowering::random
    ),
    layer!(
        "uniform",
        "uniform(shape, lo = 0, hi = 1)",
        "A fresh U(lo, hi) tensor of the given shape, drawn at every step.",
        Function,
        None,
        &[
            opt("shape", ArgKind::Shape, Default::Required, "the shape, e.g. [N, 100]"),
            opt("lo", ANY_FLOAT, Default::Float(0.0), "lower bound"),
            opt("hi", ANY_FLOAT, Default::Float(1.0), "upper bound"),
        ],
        random,
        lowering::random
    ),
];

// ------------------------------------------------------------------ helpers

fn need_float(a: &Apply, i: usize) -> Result<(), LayerError> {
    let t = &a.inputs[i];
    if t.elem != ElemType::Float {
        return Err(LayerError::ElemType { operand: i, expected: ElemType::Float, found: t.clone() });
    }
    Ok(())
}

fn need_rank(a: &Apply, i: usize, ranks: &[usize], expected: &'static str) -> Result<(), LayerError> {
    let t = &a.inputs[i];
    if !ranks.contains(&t.rank()) {
        return Err(LayerError::Rank { operand: i, expected, found: t.clone() });
    }
    Ok(())
}

fn norm_axis(axis: i64, rank: usize) -> Result<usize, LayerError> {
    let r = rank as i64;
    let a = if axis < 0 { axis + r } else { axis };
    if a < 0 || a >= r {
        return Err(LayerError::AxisOutOfRange { axis, rank });
    }
    Ok(a as usize)
}

fn axes_of(a: &Apply, name: &str, rank: usize) -> Result<Vec<usize>, LayerError> {
    match a.args.get(name) {
        ArgVal::Axes(xs) => xs.iter().map(|&x| norm_axis(x, rank)).collect(),
        _ => Ok(vec![norm_axis(-1, rank)?]),
    }
}

/// Applies the optional `activation` option to a layer's output.
fn finish(a: &mut Apply, out: TensorTy) -> RuleResult {
    match a.args.get("activation").clone() {
        ArgVal::Layer(lv) => a.sub_layer(&lv, out, ""),
        _ => Ok(Value::Tensor(out)),
    }
}

fn bias(a: &mut Apply, shape: Vec<Dim>) {
    if !matches!(a.args.get("bias"), ArgVal::Bool(false)) {
        a.param("bias", shape, "zeros");
    }
}

fn show(d: &Dim) -> String {
    let s = d.to_string();
    if s.contains(' ') { format!("({s})") } else { s }
}

fn nchw_hint(a: &mut Apply) {
    let t = &a.inputs[0];
    if t.rank() == 4
        && let (Some(c), Some(h), Some(w)) = (t.dims[1].as_known(), t.dims[2].as_known(), t.dims[3].as_known())
        && (c == 1 || c == 3)
        && h == w
        && h > 4
    {
        a.notes.push(format!(
            "help: the input {t} looks channels-first (NCHW); nnc is channels-last: use [{}, {h}, {w}, {c}]",
            t.dims[0]
        ));
    }
}

const AXIS_NAMES_2D: [&str; 2] = ["height", "width"];
const AXIS_NAMES_1D: [&str; 1] = ["length"];

fn axis_names(nd: usize) -> &'static [&'static str] {
    if nd == 1 { &AXIS_NAMES_1D } else { &AXIS_NAMES_2D }
}

fn pick(p: &(Dim, Dim), i: usize) -> Dim {
    if i == 0 { p.0.clone() } else { p.1.clone() }
}

fn checked_div(n: &Dim, d: &Dim) -> Result<Dim, LayerError> {
    size("a quotient", || n.floor_div(d))
}

fn positive(out: Dim, axis_name: &'static str, note: String, a: &mut Apply) -> Result<Dim, LayerError> {
    if out.as_known().is_some_and(|v| v <= 0) {
        return Err(LayerError::NonPositive { axis_name, value: out, note });
    }
    a.notes.push(note);
    Ok(out)
}

// ------------------------------------------------------------------ rules

fn elementwise(a: &mut Apply) -> RuleResult {
    need_float(a, 0)?;
    Ok(Value::Tensor(a.input().clone()))
}

fn elementwise_any(a: &mut Apply) -> RuleResult {
    Ok(Value::Tensor(a.input().clone()))
}

fn along_axis(a: &mut Apply) -> RuleResult {
    need_float(a, 0)?;
    axes_of(a, "axis", a.input().rank())?;
    Ok(Value::Tensor(a.input().clone()))
}

fn dense(a: &mut Apply) -> RuleResult {
    need_float(a, 0)?;
    if a.input().rank() == 0 {
        return Err(LayerError::Rank { operand: 0, expected: "[…, D]", found: a.input().clone() });
    }
    let units = a.args.int("units").unwrap_or(Dim::Known(1));
    let d = a.input().dims.last().cloned().expect("rank >= 1");
    a.param("kernel", vec![d, units.clone()], "glorot_uniform");
    bias(a, vec![units.clone()]);
    let out = a.input().with_last(units, a.origin);
    finish(a, out)
}

fn prelu(a: &mut Apply) -> RuleResult {
    need_float(a, 0)?;
    let c = a.input().dims.last().cloned().unwrap_or(Dim::Known(1));
    a.param("alpha", vec![c], "zeros");
    Ok(Value::Tensor(a.input().clone()))
}

fn conv(a: &mut Apply, nd: usize, transpose: bool) -> RuleResult {
    let layer = if nd == 1 {
        "conv1d"
    } else if transpose {
        "conv2d_transpose"
    } else {
        "conv2d"
    };
    let expected = if nd == 1 { "[N, T, C]" } else { "[N, H, W, C]" };
    need_rank(a, 0, &[nd + 2], expected)?;
    need_float(a, 0)?;
    nchw_hint(a);
    let x = a.input().clone();
    let filters = a.args.int("filters").unwrap_or(Dim::Known(1));
    let kernel = a.args.pair("kernel").unwrap_or((Dim::Known(1), Dim::Known(1)));
    let stride = a.args.pair("stride").unwrap_or((Dim::Known(1), Dim::Known(1)));
    let dilation = a.args.pair("dilation").unwrap_or((Dim::Known(1), Dim::Known(1)));
    let out_pad = a.args.pair("output_padding").unwrap_or((Dim::Known(0), Dim::Known(0)));
    let padding = a.args.padding("padding");
    let mut dims = vec![x.dims[0].clone()];
    for i in 0..nd {
        let h = &x.dims[1 + i];
        let (k, s, dl) = (pick(&kernel, i), pick(&stride, i), pick(&dilation, i));
        let name = axis_names(nd)[i];
        let what = format!("the output {name}");
        let (one, two) = (Dim::Known(1), Dim::Known(2));
        let (out, note) = match (&padding, transpose) {
            (Padding::Same, false) => {
                let out = size(&what, || h.ceil_div(&s))?;
                (out.clone(), format!("{layer} {name} (same): ceil({} / {}) = {out}", show(h), show(&s)))
            }
            (Padding::Same, true) => {
                let out = size(&what, || h.mul(&s))?;
                (out.clone(), format!("{layer} {name} (same): {}·{} = {out}", show(h), show(&s)))
            }
            (pad, false) => {
                let p = match pad {
                    Padding::Explicit(ph, pw) => {
                        if i == 0 {
                            ph.clone()
                        } else {
                            pw.clone()
                        }
                    }
                    _ => Dim::Known(0),
                };
                // (H + 2P − Dl·(K−1) − 1)/S + 1
                let out = size(&what, || {
                    let span = dl.mul(&k.sub(&one)?)?;
                    h.add(&two.mul(&p)?)?.sub(&span)?.sub(&one)?.floor_div(&s)?.add(&one)
                })?;
                let note = format!(
                    "{layer} {name}: ({} + 2·{} − {}·({}−1) − 1)/{} + 1 = {out}",
                    show(h),
                    show(&p),
                    show(&dl),
                    show(&k),
                    show(&s)
                );
                (out, note)
            }
            (pad, true) => {
                let p = match pad {
                    Padding::Explicit(ph, pw) => {
                        if i == 0 {
                            ph.clone()
                        } else {
                            pw.clone()
                        }
                    }
                    _ => Dim::Known(0),
                };
                let op = pick(&out_pad, i);
                // (H−1)·S − 2P + Dl·(K−1) + output_padding + 1
                let out = size(&what, || {
                    h.sub(&one)?.mul(&s)?.sub(&two.mul(&p)?)?.add(&dl.mul(&k.sub(&one)?)?)?.add(&op)?.add(&one)
                })?;
                let note = format!(
                    "{layer} {name}: ({}−1)·{} − 2·{} + {}·({}−1) + {} + 1 = {out}",
                    show(h),
                    show(&s),
                    show(&p),
                    show(&dl),
                    show(&k),
                    show(&op)
                );
                (out, note)
            }
        };
        dims.push(positive(out, name, note, a)?);
    }
    dims.push(filters.clone());
    let c = x.dims[nd + 1].clone();
    let mut kshape: Vec<Dim> = (0..nd).map(|i| pick(&kernel, i)).collect();
    if transpose {
        kshape.extend([filters.clone(), c]);
    } else {
        kshape.extend([c, filters.clone()]);
    }
    a.param("kernel", kshape, "glorot_uniform");
    bias(a, vec![filters]);
    let out = TensorTy::float(dims, a.origin);
    finish(a, out)
}

fn pool(a: &mut Apply) -> RuleResult {
    need_rank(a, 0, &[3, 4], "[N, H, W, C] or [N, T, C]")?;
    nchw_hint(a);
    let x = a.input().clone();
    let nd = x.rank() - 2;
    let layer = "pool";
    let window = a.args.pair("size").unwrap_or((Dim::Known(2), Dim::Known(2)));
    let stride = a.args.pair("stride").unwrap_or_else(|| window.clone());
    let padding = a.args.padding("padding");
    let mut dims = vec![x.dims[0].clone()];
    for i in 0..nd {
        let h = &x.dims[1 + i];
        let (k, s) = (pick(&window, i), pick(&stride, i));
        let name = axis_names(nd)[i];
        let what = format!("the output {name}");
        let (out, note) = match &padding {
            Padding::Same => {
                let out = size(&what, || h.ceil_div(&s))?;
                (out.clone(), format!("{layer} {name} (same): ceil({} / {}) = {out}", show(h), show(&s)))
            }
            pad => {
                let p = match pad {
                    Padding::Explicit(ph, pw) => {
                        if i == 0 {
                            ph.clone()
                        } else {
                            pw.clone()
                        }
                    }
                    _ => Dim::Known(0),
                };
                // (H + 2P − size)/S + 1
                let out = size(&what, || h.add(&Dim::Known(2).mul(&p)?)?.sub(&k)?.floor_div(&s)?.add(&Dim::Known(1)))?;
                let note =
                    format!("{layer} {name}: ({} + 2·{} − {})/{} + 1 = {out}", show(h), show(&p), show(&k), show(&s));
                (out, note)
            }
        };
        dims.push(positive(out, name, note, a)?);
    }
    dims.push(x.dims[nd + 1].clone());
    Ok(Value::Tensor(TensorTy::new(x.elem, dims, a.origin)))
}

fn global_pool(a: &mut Apply) -> RuleResult {
    need_rank(a, 0, &[3, 4], "[N, H, W, C] or [N, T, D]")?;
    let x = a.input();
    let dims = vec![x.dims[0].clone(), x.dims[x.rank() - 1].clone()];
    Ok(Value::Tensor(TensorTy::new(x.elem, dims, a.origin)))
}

fn upsample(a: &mut Apply) -> RuleResult {
    need_rank(a, 0, &[3, 4], "[N, H, W, C] or [N, T, C]")?;
    let x = a.input().clone();
    let factor = a.args.pair("size").unwrap_or((Dim::Known(2), Dim::Known(2)));
    let mut dims = x.dims.clone();
    let names = axis_names(x.rank() - 2);
    for i in 0..x.rank() - 2 {
        let factor = pick(&factor, i);
        let out = size(&format!("the output {}", names[i]), || x.dims[1 + i].mul(&factor))?;
        let note = format!("upsample {}: {}·{} = {out}", names[i], show(&x.dims[1 + i]), show(&factor));
        dims[1 + i] = positive(out, names[i], note, a)?;
    }
    Ok(Value::Tensor(TensorTy::new(x.elem, dims, a.origin)))
}

fn product(ds: &[Dim], what: &str) -> Result<Dim, LayerError> {
    size(what, || Dim::product(ds))
}

fn flatten(a: &mut Apply) -> RuleResult {
    need_rank(a, 0, &[2, 3, 4, 5, 6, 7, 8], "[N, …] with at least 2 axes")?;
    let x = a.input();
    let dims = vec![x.dims[0].clone(), product(&x.dims[1..], "the flattened size")?];
    Ok(Value::Tensor(TensorTy::new(x.elem, dims, a.origin)))
}

fn reshape(a: &mut Apply) -> RuleResult {
    let x = a.input().clone();
    let ArgVal::Shape(target) = a.args.get("shape").clone() else { return Ok(Value::Unknown) };
    let from = product(&x.dims, "the input's element count")?;
    let wild: Vec<usize> =
        target.iter().enumerate().filter(|(_, d)| d.as_known() == Some(-1)).map(|(i, _)| i).collect();
    if wild.len() > 1 {
        return Err(LayerError::Option { option: "shape", message: "at most one dim may be -1".into() });
    }
    if let Some(bad) = target.iter().find(|d| d.as_known().is_some_and(|v| v == 0 || v < -1)) {
        return Err(LayerError::Option { option: "shape", message: format!("dim {bad} is not a size") });
    }
    let mut dims = target.clone();
    if let Some(&w) = wild.first() {
        let known: Vec<Dim> = target.iter().enumerate().filter(|(i, _)| *i != w).map(|(_, d)| d.clone()).collect();
        let rest = product(&known, "the target's element count")?;
        let inferred = checked_div(&from, &rest)?;
        let back = size("the target's element count", || inferred.mul(&rest))?;
        if back.compare(&from) == Equality::Different || inferred.as_known().is_some_and(|v| v <= 0) {
            return Err(LayerError::ElementCount { from, to: rest });
        }
        dims[w] = inferred;
    } else {
        let to = product(&target, "the target's element count")?;
        if from.compare(&to) != Equality::Equal {
            return Err(LayerError::ElementCount { from, to });
        }
    }
    Ok(Value::Tensor(TensorTy::new(x.elem, dims, a.origin)))
}

fn concat(a: &mut Apply) -> RuleResult {
    let first = a.inputs[0].clone();
    let rank = first.rank();
    let axis = axes_of(a, "axis", rank)?[0];
    let mut total = first.dims[axis].clone();
    for (i, t) in a.inputs.iter().enumerate().skip(1) {
        if t.rank() != rank {
            return Err(LayerError::Rank {
                operand: i,
                expected: "the same rank as the first operand",
                found: t.clone(),
            });
        }
        if t.elem != first.elem {
            return Err(LayerError::ElemType { operand: i, expected: first.elem, found: t.clone() });
        }
        for ax in 0..rank {
            if ax == axis {
                continue;
            }
            let eq = first.dims[ax].compare(&t.dims[ax]);
            if eq != Equality::Equal {
                return Err(LayerError::Axis {
                    what: format!("concat operands {} and {} on axis {ax}", 1, i + 1),
                    left: (first.dims[ax].clone(), first.origin_of(ax)),
                    right: (t.dims[ax].clone(), t.origin_of(ax)),
                    provably_different: eq == Equality::Different,
                });
            }
        }
        total = size("the concatenated size", || total.add(&t.dims[axis]))?;
    }
    let mut out = first.at(a.origin);
    out.dims[axis] = total;
    Ok(Value::Tensor(out))
}

fn batch_norm(a: &mut Apply) -> RuleResult {
    need_float(a, 0)?;
    need_rank(a, 0, &[2, 3, 4, 5], "[N, …, C]")?;
    let c = a.input().dims.last().cloned().expect("rank >= 2");
    a.param("gamma", vec![c.clone()], "ones");
    a.param("beta", vec![c.clone()], "zeros");
    a.moving("moving_mean", vec![c.clone()], "zeros");
    a.moving("moving_var", vec![c], "ones");
    Ok(Value::Tensor(a.input().clone()))
}

fn layer_norm(a: &mut Apply) -> RuleResult {
    need_float(a, 0)?;
    let x = a.input().clone();
    let mut axes = axes_of(a, "axes", x.rank())?;
    axes.sort();
    axes.dedup();
    let shape: Vec<Dim> = axes.iter().map(|&i| x.dims[i].clone()).collect();
    a.param("gamma", shape.clone(), "ones");
    a.param("beta", shape, "zeros");
    Ok(Value::Tensor(x))
}

fn instance_norm(a: &mut Apply) -> RuleResult {
    need_float(a, 0)?;
    need_rank(a, 0, &[3, 4], "[N, H, W, C] or [N, T, C]")?;
    if a.args.bool("affine") {
        let c = a.input().dims.last().cloned().expect("rank >= 3");
        a.param("gamma", vec![c.clone()], "ones");
        a.param("beta", vec![c], "zeros");
    }
    Ok(Value::Tensor(a.input().clone()))
}

fn embedding(a: &mut Apply) -> RuleResult {
    if a.input().elem != ElemType::Int {
        return Err(LayerError::ElemType { operand: 0, expected: ElemType::Int, found: a.input().clone() });
    }
    let vocab = a.args.int("vocab").unwrap_or(Dim::Known(1));
    let dim = a.args.int("dim").unwrap_or(Dim::Known(1));
    a.param("embeddings", vec![vocab, dim.clone()], "uniform");
    let mut out = a.input().clone().at(a.origin);
    out.dims.push(dim);
    out.origins.push(a.origin);
    out.elem = ElemType::Float;
    Ok(Value::Tensor(out))
}

fn positional_embedding(a: &mut Apply) -> RuleResult {
    need_rank(a, 0, &[3], "[N, T, D]")?;
    need_float(a, 0)?;
    let max_len = a.args.int("max_len").unwrap_or(Dim::Known(1));
    let (t, d) = (a.input().dims[1].clone(), a.input().dims[2].clone());
    if let (Some(t), Some(m)) = (t.as_known(), max_len.as_known())
        && t > m
    {
        return Err(LayerError::Option {
            option: "max_len",
            message: format!("the sequence has T = {t} positions, more than max_len = {m}"),
        });
    }
    a.param("embeddings", vec![max_len, d], "uniform");
    Ok(Value::Tensor(a.input().clone()))
}

fn positional_encoding(a: &mut Apply) -> RuleResult {
    need_rank(a, 0, &[3], "[N, T, D]")?;
    need_float(a, 0)?;
    Ok(Value::Tensor(a.input().clone()))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Cell {
    Simple,
    Lstm,
    Gru,
}

fn recurrent(a: &mut Apply, cell: Cell) -> RuleResult {
    need_rank(a, 0, &[3], "[N, T, D]")?;
    need_float(a, 0)?;
    let x = a.input().clone();
    let m = a.args.int("units").unwrap_or(Dim::Known(1));
    let gates = Dim::Known(match cell {
        Cell::Simple => 1,
        Cell::Lstm => 4,
        Cell::Gru => 3,
    });
    let gm = size("the gates' size (units × gates)", || gates.mul(&m))?;
    a.param("kernel", vec![x.dims[2].clone(), gm.clone()], "glorot_uniform");
    a.param("recurrent_kernel", vec![m.clone(), gm.clone()], "orthogonal");
    if !matches!(a.args.get("bias"), ArgVal::Bool(false)) {
        let shape = if cell == Cell::Gru && a.args.bool("reset_after") { vec![Dim::Known(2), gm] } else { vec![gm] };
        a.param("bias", shape, "zeros");
    }
    let n = x.dims[0].clone();
    let state_ty = TensorTy::float(vec![n.clone(), m.clone()], a.origin);
    let n_states = if cell == Cell::Lstm { 2 } else { 1 };
    if let ArgVal::State(states) = a.args.get("initial_state").clone() {
        if states.len() != n_states {
            return Err(LayerError::Option {
                option: "initial_state",
                message: format!("expected {n_states} state tensor(s) [N, {m}], found {}", states.len()),
            });
        }
        for s in &states {
            let origin = a.args.origin("initial_state").unwrap_or(a.origin);
            if s.rank() != 2 {
                return Err(LayerError::Option {
                    option: "initial_state",
                    message: format!("a state must be [N, {m}], found {s}"),
                });
            }
            for (ax, want) in [(0, &n), (1, &m)] {
                let eq = s.dims[ax].compare(want);
                if eq != Equality::Equal {
                    return Err(LayerError::Axis {
                        what: format!("initial_state axis {ax} against the layer's [N, units]"),
                        left: (s.dims[ax].clone(), origin),
                        right: (want.clone(), if ax == 0 { x.origin_of(0) } else { a.origin }),
                        provably_different: eq == Equality::Different,
                    });
                }
            }
        }
    }
    let o = if a.args.bool("sequences") {
        TensorTy::float(vec![n.clone(), x.dims[1].clone(), m.clone()], a.origin)
    } else {
        state_ty.clone()
    };
    if a.args.bool("state") {
        let mut parts = vec![Value::Tensor(o), Value::Tensor(state_ty.clone())];
        if cell == Cell::Lstm {
            parts.push(Value::Tensor(state_ty));
        }
        Ok(Value::Tuple(parts))
    } else {
        Ok(Value::Tensor(o))
    }
}

fn bidirectional(a: &mut Apply) -> RuleResult {
    let Some(lv) = a.args.layer("layer").cloned() else { return Ok(Value::Unknown) };
    if !matches!(lv.layer.name, "lstm" | "gru" | "simple_rnn") {
        return Err(LayerError::WrongLayer {
            option: "layer",
            expected: "a recurrent layer (lstm, gru or simple_rnn)",
            found: lv.layer.name,
        });
    }
    let x = a.input().clone();
    let fwd = a.sub_layer(&lv, x.clone(), "forward")?;
    let bwd = a.sub_layer(&lv, x, "backward")?;
    let merge = a.args.mode("merge").to_string();
    let merge_out = |f: &Value, b: &Value, origin| -> RuleResult {
        Ok(match (f, b) {
            (Value::Tensor(f), Value::Tensor(b)) if merge == "concat" => {
                let zero = Dim::Known(0);
                let (fl, bl) = (f.dims.last().unwrap_or(&zero), b.dims.last().unwrap_or(&zero));
                let last = size("the concatenated size", || fl.add(bl))?;
                Value::Tensor(f.with_last(last, origin))
            }
            (Value::Tensor(f), _) => Value::Tensor(f.clone().at(origin)),
            _ => Value::Unknown,
        })
    };
    Ok(match (&fwd, &bwd) {
        (Value::Tuple(fs), Value::Tuple(bs)) => {
            let mut parts = vec![merge_out(&fs[0], &bs[0], a.origin)?];
            parts.extend(fs[1..].iter().cloned());
            parts.extend(bs[1..].iter().cloned());
            Value::Tuple(parts)
        }
        _ => merge_out(&fwd, &bwd, a.origin)?,
    })
}

fn attention(a: &mut Apply) -> RuleResult {
    need_rank(a, 0, &[3], "[N, T, D]")?;
    need_float(a, 0)?;
    let q = a.input().clone();
    let kv = match a.args.get("kv") {
        ArgVal::Tensor(t) => t.clone(),
        _ => q.clone(),
    };
    if kv.rank() != 3 {
        return Err(LayerError::Option {
            option: "kv",
            message: format!("the key/value sequence must be [N, S, D], found {kv}"),
        });
    }
    let eq = q.dims[0].compare(&kv.dims[0]);
    if eq != Equality::Equal {
        return Err(LayerError::Axis {
            what: "query and key/value batch sizes".into(),
            left: (q.dims[0].clone(), q.origin_of(0)),
            right: (kv.dims[0].clone(), kv.origin_of(0)),
            provably_different: eq == Equality::Different,
        });
    }
    let heads = a.args.int("heads").unwrap_or(Dim::Known(1));
    let key_dim = a.args.int("key_dim").unwrap_or(Dim::Known(1));
    let value_dim = a.args.int("value_dim").unwrap_or_else(|| key_dim.clone());
    let (d, dkv) = (q.dims[2].clone(), kv.dims[2].clone());
    for (name, input_dim, head_dim) in [("query", &d, &key_dim), ("key", &dkv, &key_dim), ("value", &dkv, &value_dim)] {
        a.param(&format!("{name}.kernel"), vec![input_dim.clone(), heads.clone(), head_dim.clone()], "glorot_uniform");
        a.param(&format!("{name}.bias"), vec![heads.clone(), head_dim.clone()], "zeros");
    }
    a.param("output.kernel", vec![heads, value_dim, d.clone()], "glorot_uniform");
    a.param("output.bias", vec![d], "zeros");
    Ok(Value::Tensor(q.at(a.origin)))
}

/// Most copies one `repeat` may make, and most parameter tensors it may
/// create counting nested repeats (`repeat(x, 1000, repeat(1000, dense(8)))`):
/// checking costs one rule evaluation per copy, and the network is unrolled.
pub const MAX_REPEAT: i64 = 10_000;
pub const MAX_REPEAT_PARAMS: usize = 100_000;

fn repeat(a: &mut Apply) -> RuleResult {
    let Some(lv) = a.args.layer("layer").cloned() else { return Ok(Value::Unknown) };
    let Some(n) = a.args.int("n").and_then(|n| n.as_known()) else { return Ok(Value::Unknown) };
    if n > MAX_REPEAT {
        let message = format!("{n} copies; at most {MAX_REPEAT} are supported");
        return Err(LayerError::Option { option: "n", message });
    }
    let mut cur = Value::Tensor(a.input().clone());
    for i in 0..n {
        let Value::Tensor(t) = cur else { return Ok(Value::Unknown) };
        cur = a.sub_layer(&lv, t, &i.to_string())?;
        if a.params.len() > MAX_REPEAT_PARAMS {
            let message = format!("more than {MAX_REPEAT_PARAMS} parameter tensors after {} of {n} copies", i + 1);
            return Err(LayerError::Option { option: "n", message });
        }
    }
    Ok(cur)
}

fn one_hot(a: &mut Apply) -> RuleResult {
    if a.input().elem != ElemType::Int {
        return Err(LayerError::ElemType { operand: 0, expected: ElemType::Int, found: a.input().clone() });
    }
    let depth = a.args.int("depth").unwrap_or(Dim::Known(1));
    let mut out = a.input().clone().at(a.origin);
    out.dims.push(depth);
    out.origins.push(a.origin);
    out.elem = ElemType::Float;
    Ok(Value::Tensor(out))
}

fn reduce(a: &mut Apply) -> RuleResult {
    let x = a.input().clone();
    let keep = a.args.bool("keepdims");
    let axes: Vec<usize> = match a.args.get("axis") {
        ArgVal::Axes(xs) => xs.iter().map(|&ax| norm_axis(ax, x.rank())).collect::<Result<_, _>>()?,
        _ => (0..x.rank()).collect(),
    };
    let mut out = x.clone().at(a.origin);
    out.dims.clear();
    out.origins.clear();
    for (i, d) in x.dims.iter().enumerate() {
        if !axes.contains(&i) {
            out.dims.push(d.clone());
            out.origins.push(x.origin_of(i));
        } else if keep {
            out.dims.push(Dim::Known(1));
            out.origins.push(a.origin);
        }
    }
    out.elem = ElemType::Float;
    Ok(Value::Tensor(out))
}

fn random(a: &mut Apply) -> RuleResult {
    let ArgVal::Shape(dims) = a.args.get("shape").clone() else { return Ok(Value::Unknown) };
    if let Some(bad) = dims.iter().find(|d| d.as_known().is_some_and(|v| v <= 0)) {
        return Err(LayerError::Option { option: "shape", message: format!("dim {bad} is not a positive size") });
    }
    Ok(Value::Tensor(TensorTy::float(dims, a.origin)))
}
