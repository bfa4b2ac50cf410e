//! The table of layers and tensor functions (docs/src/layers.md and §10) with
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
/// `kernel` takes (docs/src/decisions.md: `bias`, `activation`, initialisers).
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

const RELU_OPTS: &[ArgDef] = &[
    opt("max_value", NON_NEG, Default::Absent, "upper bound of the output (none: unbounded)"),
    opt("negative_slope", NON_NEG, Default::Float(0.0), "slope below the threshold"),
    opt("threshold", ANY_FLOAT, Default::Float(0.0), "values at or below it are not passed through"),
];

/// Options of the global poolings.
const GLOBAL_POOL_OPTS: &[ArgDef] =
    &[opt("keepdims", ArgKind::Bool, Default::Bool(false), "keep the spatial axes with size 1: [N, 1, 1, C]")];

const SIDES_1D: ArgDef = opt("padding", ArgKind::Sides, Default::Int(1), "P (both ends) or [before, after]");
const SIDES_2D: ArgDef =
    opt("padding", ArgKind::Sides, Default::Int(1), "P, [PH, PW] (symmetric) or [[top, bottom], [left, right]]");
const CROP_1D: ArgDef = opt("cropping", ArgKind::Sides, Default::Int(1), "C (both ends) or [before, after]");
const CROP_2D: ArgDef =
    opt("cropping", ArgKind::Sides, Default::Int(1), "C, [CH, CW] (symmetric) or [[top, bottom], [left, right]]");

const GROUPS_DOC: &str = "channel groups: input channels and filters both split into `groups` parts, filter f \
    seeing only the channels of its part (kernel [.., C/groups, filters])";
const MULTIPLIER_DOC: &str = "filters per input channel (M)";

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

/// The layer table: one entry per layer, in catalogue order. Checking, lowering, hover, completion, `nnc explain` and
/// the manual's layer catalogue all read it.
pub static LAYERS: &[LayerDef] = &[
    layer!(
        "dense",
        "dense(x, units, bias = true, activation = none)",
        "Fully connected layer on the last axis: [..., D] → [..., units]. Parameters kernel [D, units], bias [units].",
        Layer,
        One,
        with_kernel_opts![opt("units", INT1, Default::Required, "number of output features")],
        dense,
        lowering::dense,
        keras: "Dense",
        torch: "nn.Linear",
        example: "[N, 16] => dense(x, 8, activation = relu)"
    ),
    layer!(
        "relu",
        "relu(x, max_value = none, negative_slope = 0, threshold = 0)",
        "max(0, x), elementwise. Keras's ReLU options: values above max_value are clipped to it, values at or below \
            threshold become negative_slope·(x − threshold) (0 by default).",
        Layer,
        One,
        RELU_OPTS,
        elementwise,
        lowering::relu,
        keras: "ReLU",
        torch: "nn.ReLU",
        example: "[N, 16] => relu(x, max_value = 6)"
    ),
    layer!(
        "sigmoid",
        "sigmoid(x)",
        "1 / (1 + e^-x), elementwise.",
        Layer,
        One,
        &[],
        elementwise,
        lowering::unary,
        keras: "Activation('sigmoid')",
        torch: "nn.Sigmoid",
        example: "[N, 16] => sigmoid(x)"
    ),
    layer!(
        "tanh",
        "tanh(x)",
        "Hyperbolic tangent, elementwise.",
        Layer,
        One,
        &[],
        elementwise,
        lowering::unary,
        keras: "Activation('tanh')",
        torch: "nn.Tanh",
        example: "[N, 16] => tanh(x)"
    ),
    layer!(
        "gelu",
        "gelu(x)",
        "Gaussian error linear unit, elementwise.",
        Layer,
        One,
        &[],
        elementwise,
        lowering::unary,
        keras: "Activation('gelu')",
        torch: "nn.GELU",
        example: "[N, 16] => gelu(x)"
    ),
    layer!(
        "elu",
        "elu(x, alpha = 1.0)",
        "x if x > 0 else alpha·(e^x − 1).",
        Layer,
        One,
        &[opt("alpha", ANY_FLOAT, Default::Float(1.0), "slope of the negative part")],
        elementwise,
        lowering::elu,
        keras: "ELU",
        torch: "nn.ELU",
        example: "[N, 16] => elu(x, alpha = 0.5)"
    ),
    layer!(
        "softplus",
        "softplus(x)",
        "log(1 + e^x), elementwise.",
        Layer,
        One,
        &[],
        elementwise,
        lowering::unary,
        keras: "Activation('softplus')",
        torch: "nn.Softplus",
        example: "[N, 16] => softplus(x)"
    ),
    layer!(
        "leaky_relu",
        "leaky_relu(x, alpha = 0.3)",
        "x if x > 0 else alpha·x (Keras's default alpha 0.3).",
        Layer,
        One,
        &[opt("alpha", NON_NEG, Default::Float(0.3), "slope of the negative part")],
        elementwise,
        lowering::leaky_relu,
        keras: "LeakyReLU",
        torch: "nn.LeakyReLU",
        example: "[N, 16] => leaky_relu(x, alpha = 0.2)"
    ),
    layer!(
        "softmax",
        "softmax(x, axis = -1)",
        "Softmax along an axis.",
        Layer,
        One,
        AXIS_OPT,
        along_axis,
        lowering::softmax,
        keras: "Softmax",
        torch: "nn.Softmax",
        example: "[N, 16] => softmax(x)"
    ),
    layer!(
        "log_softmax",
        "log_softmax(x, axis = -1)",
        "Log of the softmax along an axis.",
        Layer,
        One,
        AXIS_OPT,
        along_axis,
        lowering::softmax,
        keras: "",
        torch: "nn.LogSoftmax",
        example: "[N, 16] => log_softmax(x)"
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
        owns_params: true,
        keras: "PReLU",
        torch: "nn.PReLU",
        example: "[N, 8, 8, 3] => prelu(x)"
    ),
    layer!(
        "conv1d",
        "conv1d(x, filters, kernel, stride = 1, padding = valid, dilation = 1, groups = 1)",
        "1-D convolution: [N, T, C] → [N, T', filters], T' = (T + 2P − Dl·(K−1) − 1)/S + 1. Parameters kernel [K, \
            C/groups, filters], bias [filters].",
        Layer,
        One,
        with_kernel_opts![
            opt("filters", INT1, Default::Required, "number of output channels"),
            opt("kernel", INT1, Default::Required, "kernel size"),
            opt("stride", INT1, Default::Int(1), "stride"),
            opt("padding", ArgKind::Padding, Default::Mode("valid"), "valid | same | P"),
            opt("dilation", INT1, Default::Int(1), "dilation"),
            opt("groups", INT1, Default::Int(1), GROUPS_DOC),
        ],
        |a| conv(a, 1, ConvKind::Plain),
        lowering::conv,
        hints: &[SEQUENCES],
        keras: "Conv1D",
        torch: "nn.Conv1d",
        example: "[N, 10, 4] => conv1d(x, 8, kernel = 3, padding = same)"
    ),
    layer!(
        "conv2d",
        "conv2d(x, filters, kernel, stride = 1, padding = valid, dilation = 1, groups = 1)",
        "2-D convolution, channels last: [N, H, W, C] → [N, H', W', filters], H' = (H + 2P − Dl·(K−1) − 1)/S + 1; \
            with `same`, H' = ceil(H/S). Parameters kernel [KH, KW, C/groups, filters], bias [filters].",
        Layer,
        One,
        with_kernel_opts![
            opt("filters", INT1, Default::Required, "number of output channels"),
            opt("kernel", PAIR1, Default::Required, "kernel size, an int or [kh, kw]"),
            opt("stride", PAIR1, Default::Int(1), "stride, an int or [sh, sw]"),
            opt("padding", ArgKind::Padding, Default::Mode("valid"), "valid | same | P | [PH, PW]"),
            opt("dilation", PAIR1, Default::Int(1), "dilation, an int or [dh, dw]"),
            opt("groups", INT1, Default::Int(1), GROUPS_DOC),
        ],
        |a| conv(a, 2, ConvKind::Plain),
        lowering::conv,
        hints: &[Hint::Rank {
            found: 3,
            help: "images need a channel axis: [N, H, W, 1] for grey-scale (`reshape(x, [N, H, W, 1])`)",
        }],
        keras: "Conv2D",
        torch: "nn.Conv2d",
        example: "[N, 8, 8, 3] => conv2d(x, 16, kernel = 3, stride = 2, padding = same)"
    ),
    layer!(
        "depthwise_conv1d",
        "depthwise_conv1d(x, kernel, depth_multiplier = 1, stride = 1, padding = valid, dilation = 1)",
        "Depthwise 1-D convolution (Keras DepthwiseConv1D): each of the C channels convolved with its own \
            depth_multiplier (M) filters: [N, T, C] → [N, T', C·M], output channel c·M + m. Parameters kernel [K, C, \
            M], bias [C·M].",
        Layer,
        One,
        with_kernel_opts![
            opt("kernel", INT1, Default::Required, "kernel size"),
            opt("depth_multiplier", INT1, Default::Int(1), MULTIPLIER_DOC),
            opt("stride", INT1, Default::Int(1), "stride"),
            opt("padding", ArgKind::Padding, Default::Mode("valid"), "valid | same | P"),
            opt("dilation", INT1, Default::Int(1), "dilation"),
        ],
        |a| conv(a, 1, ConvKind::Depthwise),
        lowering::conv,
        keras: "DepthwiseConv1D",
        torch: "nn.Conv1d(groups=C)",
        example: "[N, 10, 4] => depthwise_conv1d(x, 3, depth_multiplier = 2)"
    ),
    layer!(
        "depthwise_conv2d",
        "depthwise_conv2d(x, kernel, depth_multiplier = 1, stride = 1, padding = valid, dilation = 1)",
        "Depthwise 2-D convolution (Keras DepthwiseConv2D): each of the C channels convolved with its own \
            depth_multiplier (M) filters: [N, H, W, C] → [N, H', W', C·M], output channel c·M + m. Parameters \
            kernel [KH, KW, C, M], bias [C·M].",
        Layer,
        One,
        with_kernel_opts![
            opt("kernel", PAIR1, Default::Required, "kernel size, an int or [kh, kw]"),
            opt("depth_multiplier", INT1, Default::Int(1), MULTIPLIER_DOC),
            opt("stride", PAIR1, Default::Int(1), "stride, an int or [sh, sw]"),
            opt("padding", ArgKind::Padding, Default::Mode("valid"), "valid | same | P | [PH, PW]"),
            opt("dilation", PAIR1, Default::Int(1), "dilation, an int or [dh, dw]"),
        ],
        |a| conv(a, 2, ConvKind::Depthwise),
        lowering::conv,
        keras: "DepthwiseConv2D",
        torch: "nn.Conv2d(groups=C)",
        example: "[N, 8, 8, 3] => depthwise_conv2d(x, 3, padding = same)"
    ),
    layer!(
        "separable_conv1d",
        "separable_conv1d(x, filters, kernel, depth_multiplier = 1, stride = 1, padding = valid, dilation = 1)",
        "Depthwise then pointwise 1-D convolution (Keras SeparableConv1D): [N, T, C] → [N, T', filters]. \
            Parameters depthwise_kernel [K, C, M], pointwise_kernel [1, C·M, filters], bias [filters].",
        Layer,
        One,
        with_kernel_opts![
            opt("filters", INT1, Default::Required, "number of output channels"),
            opt("kernel", INT1, Default::Required, "kernel size of the depthwise step"),
            opt("depth_multiplier", INT1, Default::Int(1), MULTIPLIER_DOC),
            opt("stride", INT1, Default::Int(1), "stride"),
            opt("padding", ArgKind::Padding, Default::Mode("valid"), "valid | same | P"),
            opt("dilation", INT1, Default::Int(1), "dilation"),
        ],
        |a| conv(a, 1, ConvKind::Separable),
        lowering::conv,
        keras: "SeparableConv1D",
        torch: "",
        example: "[N, 10, 4] => separable_conv1d(x, 8, 3)"
    ),
    layer!(
        "separable_conv2d",
        "separable_conv2d(x, filters, kernel, depth_multiplier = 1, stride = 1, padding = valid, dilation = 1)",
        "Depthwise then pointwise 2-D convolution (Keras SeparableConv2D): [N, H, W, C] → [N, H', W', filters]. \
            Parameters depthwise_kernel [KH, KW, C, M], pointwise_kernel [1, 1, C·M, filters], bias [filters].",
        Layer,
        One,
        with_kernel_opts![
            opt("filters", INT1, Default::Required, "number of output channels"),
            opt("kernel", PAIR1, Default::Required, "kernel size of the depthwise step, an int or [kh, kw]"),
            opt("depth_multiplier", INT1, Default::Int(1), MULTIPLIER_DOC),
            opt("stride", PAIR1, Default::Int(1), "stride, an int or [sh, sw]"),
            opt("padding", ArgKind::Padding, Default::Mode("valid"), "valid | same | P | [PH, PW]"),
            opt("dilation", PAIR1, Default::Int(1), "dilation, an int or [dh, dw]"),
        ],
        |a| conv(a, 2, ConvKind::Separable),
        lowering::conv,
        keras: "SeparableConv2D",
        torch: "",
        example: "[N, 8, 8, 3] => separable_conv2d(x, 16, 3, padding = same)"
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
        |a| conv(a, 2, ConvKind::Transpose),
        lowering::conv_transpose,
        keras: "Conv2DTranspose",
        torch: "nn.ConvTranspose2d",
        example: "[N, 8, 8, 3] => conv2d_transpose(x, 4, kernel = 3, stride = 2, padding = same)"
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
        lowering::pool,
        keras: "MaxPooling2D / MaxPooling1D",
        torch: "nn.MaxPool2d / nn.MaxPool1d",
        example: "[N, 8, 8, 3] => max_pool(x, 2)"
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
        lowering::pool,
        keras: "AveragePooling2D / AveragePooling1D",
        torch: "nn.AvgPool2d / nn.AvgPool1d",
        example: "[N, 8, 8, 3] => avg_pool(x, 2)"
    ),
    layer!(
        "global_avg_pool",
        "global_avg_pool(x, keepdims = false)",
        "Mean over the spatial axes: [N, H, W, C] → [N, C] ([N, 1, 1, C] with keepdims); [N, T, D] → [N, D].",
        Layer,
        One,
        GLOBAL_POOL_OPTS,
        global_pool,
        lowering::global_pool,
        keras: "GlobalAveragePooling2D / 1D",
        torch: "nn.AdaptiveAvgPool2d(1)",
        example: "[N, 8, 8, 3] => global_avg_pool(x)"
    ),
    layer!(
        "global_max_pool",
        "global_max_pool(x, keepdims = false)",
        "Max over the spatial axes: [N, H, W, C] → [N, C] ([N, 1, 1, C] with keepdims); [N, T, D] → [N, D].",
        Layer,
        One,
        GLOBAL_POOL_OPTS,
        global_pool,
        lowering::global_pool,
        keras: "GlobalMaxPooling2D / 1D",
        torch: "nn.AdaptiveMaxPool2d(1)",
        example: "[N, 8, 8, 3] => global_max_pool(x, keepdims = true)"
    ),
    layer!(
        "upsample",
        "upsample(x, size = 2)",
        "Nearest-neighbour upsampling: [N, H, W, C] → [N, s·H, s·W, C] (and [N, T, C] → [N, s·T, C]).",
        Layer,
        One,
        &[opt("size", PAIR1, Default::Int(2), "factor, an int or [h, w]")],
        upsample,
        lowering::upsample,
        keras: "UpSampling2D / UpSampling1D",
        torch: "nn.Upsample(mode='nearest')",
        example: "[N, 8, 8, 3] => upsample(x, 2)"
    ),
    layer!(
        "flatten",
        "flatten(x)",
        "[N, a, b, …] → [N, a·b·…].",
        Layer,
        One,
        &[],
        flatten,
        lowering::reshape,
        keras: "Flatten",
        torch: "nn.Flatten",
        example: "[N, 8, 8, 3] => flatten(x)"
    ),
    layer!(
        "reshape",
        "reshape(x, [N, …])",
        "Reshape keeping the element count; at most one dim may be -1.",
        Layer,
        One,
        &[opt("shape", ArgKind::Shape, Default::Required, "the target shape, batch axis included")],
        reshape,
        lowering::reshape,
        keras: "Reshape",
        torch: "Tensor.view",
        example: "[N, 8, 8, 3] => reshape(x, [N, 64, 3])"
    ),
    layer!(
        "concat",
        "concat(a, b, …, axis = -1)",
        "Concatenation along an axis; all other axes must agree.",
        Layer,
        Variadic,
        &[opt("axis", ArgKind::Axis, Default::Int(-1), "the concatenation axis")],
        concat,
        lowering::concat,
        keras: "Concatenate",
        torch: "torch.cat",
        example: "[N, 8, 8, 3] => concat(x, x, axis = -1)"
    ),
    layer!(
        "batch_norm",
        "batch_norm(x, momentum = 0.99, epsilon = 1e-3, center = true, scale = true)",
        "Batch normalisation over all axes but the last. Parameters gamma [C] (without scale = false), beta [C] \
            (without center = false); non-trainable moving_mean [C], moving_var [C]. moving = momentum·moving + (1 − \
            momentum)·batch.",
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
            opt("center", ArgKind::Bool, Default::Bool(true), "learn an offset beta"),
            opt("scale", ArgKind::Bool, Default::Bool(true), "learn a factor gamma"),
        ],
        batch_norm,
        lowering::batch_norm,
        owns_params: true,
        keras: "BatchNormalization",
        torch: "nn.BatchNorm2d (momentum = 1 − PyTorch's)",
        example: "[N, 8, 8, 3] => batch_norm(x)"
    ),
    layer!(
        "layer_norm",
        "layer_norm(x, epsilon = 1e-3, axes = [-1], center = true, scale = true)",
        "Layer normalisation over `axes`; gamma (unless scale = false) and beta (unless center = false) have the \
            shape of the normalised axes.",
        Layer,
        One,
        &[
            opt("epsilon", POSITIVE, Default::Float(1e-3), "added to the variance"),
            opt("axes", ArgKind::Axes, Default::Int(-1), "the normalised axes"),
            opt("center", ArgKind::Bool, Default::Bool(true), "learn an offset beta"),
            opt("scale", ArgKind::Bool, Default::Bool(true), "learn a factor gamma"),
        ],
        layer_norm,
        lowering::layer_norm,
        owns_params: true,
        keras: "LayerNormalization",
        torch: "nn.LayerNorm",
        example: "[N, 10, 4] => layer_norm(x)"
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
        owns_params: true,
        keras: "GroupNormalization(groups=C)",
        torch: "nn.InstanceNorm2d(affine=True)",
        example: "[N, 8, 8, 3] => instance_norm(x)"
    ),
    layer!(
        "dropout",
        "dropout(x, rate, noise_shape = none)",
        "Zeroes a fraction `rate` of the inputs in training (and scales the rest by 1/(1 − rate)); identity in \
            evaluation. With noise_shape (e.g. [N, 1, 1, 1], stochastic depth) one draw is shared along the axes \
            given as 1.",
        Layer,
        One,
        &[
            opt("rate", RATE, Default::Required, "fraction of inputs dropped, in [0, 1)"),
            opt("noise_shape", ArgKind::Shape, Default::Absent, "shape of the mask: each axis 1 or the input's"),
        ],
        dropout,
        lowering::dropout,
        keras: "Dropout",
        torch: "nn.Dropout",
        example: "[N, 8, 8, 3] => dropout(x, 0.2, noise_shape = [N, 1, 1, 3])"
    ),
    layer!(
        "gaussian_noise",
        "gaussian_noise(x, stddev)",
        "Adds N(0, stddev²) noise in training; identity in evaluation.",
        Layer,
        One,
        &[opt("stddev", NON_NEG, Default::Required, "standard deviation of the noise")],
        elementwise,
        lowering::gaussian_noise,
        keras: "GaussianNoise",
        torch: "",
        example: "[N, 16] => gaussian_noise(x, 0.1)"
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
        hints: &[Hint::ElemType { note: "embedding looks up integer indices: declare the input as int[N, T]" }],
        keras: "Embedding",
        torch: "nn.Embedding",
        example: "int[N, 10] => embedding(x, 100, 8)"
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
        owns_params: true,
        keras: "keras_hub PositionEmbedding",
        torch: "nn.Embedding over positions",
        example: "[N, 10, 4] => positional_embedding(x, 32)"
    ),
    layer!(
        "positional_encoding",
        "positional_encoding(x)",
        "Adds the fixed sinusoidal position encoding: [N, T, D] → [N, T, D]. No parameters.",
        Layer,
        One,
        &[],
        positional_encoding,
        lowering::positional_encoding,
        keras: "keras_hub SinePositionEncoding",
        torch: "",
        example: "[N, 10, 4] => positional_encoding(x)"
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
        hints: &[SEQUENCES],
        keras: "SimpleRNN",
        torch: "nn.RNN(batch_first=True)",
        example: "[N, 10, 4] => simple_rnn(x, 8)"
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
        hints: &[SEQUENCES],
        keras: "LSTM",
        torch: "nn.LSTM(batch_first=True)",
        example: "[N, 10, 4] => lstm(x, 8, sequences = true)"
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
        hints: &[SEQUENCES],
        keras: "GRU",
        torch: "nn.GRU(batch_first=True)",
        example: "[N, 10, 4] => gru(x, 8)"
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
        owns_params: true,
        keras: "Bidirectional",
        torch: "nn.LSTM(bidirectional=True)",
        example: "[N, 10, 4] => bidirectional(x, lstm(8, sequences = true))"
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
        owns_params: true,
        keras: "MultiHeadAttention",
        torch: "nn.MultiheadAttention",
        example: "[N, 10, 4] => multi_head_attention(x, heads = 2, key_dim = 4)"
    ),
    layer!(
        "repeat",
        "repeat(x, n, layer_value)",
        "Applies n copies of a layer, or of a block (`repeat(3, bottleneck(64))`, `repeat(2, unit)`), \
         chained: each copy takes the previous one's output and has its own parameters.",
        Layer,
        One,
        &[
            opt("n", ArgKind::Int { min: 0 }, Default::Required, "number of copies"),
            opt("layer", ArgKind::Layer, Default::Required, "the layer value or block call to repeat"),
        ],
        repeat,
        lowering::repeat,
        owns_params: true,
        keras: "",
        torch: "nn.Sequential of copies",
        example: "[N, 16] => repeat(x, 3, dense(16, activation = relu))"
    ),
    // ---- activations, padding, scaling and normalisation of the model zoo (issue 11)
    layer!(
        "relu6",
        "relu6(x)",
        "min(max(0, x), 6), elementwise (MobileNet).",
        Layer,
        One,
        &[],
        elementwise,
        lowering::activation,
        keras: "ReLU(max_value=6)",
        torch: "nn.ReLU6",
        example: "[N, 16] => relu6(x)"
    ),
    layer!(
        "swish",
        "swish(x)",
        "x·sigmoid(x), elementwise (also called silu; EfficientNet).",
        Layer,
        One,
        &[],
        elementwise,
        lowering::activation,
        keras: "Activation('swish')",
        torch: "nn.SiLU",
        example: "[N, 16] => swish(x)"
    ),
    layer!(
        "silu",
        "silu(x)",
        "x·sigmoid(x), elementwise (= swish).",
        Layer,
        One,
        &[],
        elementwise,
        lowering::activation,
        keras: "Activation('silu')",
        torch: "nn.SiLU",
        example: "[N, 16] => silu(x)"
    ),
    layer!(
        "hard_sigmoid",
        "hard_sigmoid(x)",
        "relu6(x + 3)/6, elementwise (Keras 3's definition).",
        Layer,
        One,
        &[],
        elementwise,
        lowering::activation,
        keras: "Activation('hard_sigmoid')",
        torch: "nn.Hardsigmoid",
        example: "[N, 16] => hard_sigmoid(x)"
    ),
    layer!(
        "hard_swish",
        "hard_swish(x)",
        "x·relu6(x + 3)/6, elementwise (also called hard_silu; MobileNetV3).",
        Layer,
        One,
        &[],
        elementwise,
        lowering::activation,
        keras: "Activation('hard_swish')",
        torch: "nn.Hardswish",
        example: "[N, 16] => hard_swish(x)"
    ),
    layer!(
        "hard_silu",
        "hard_silu(x)",
        "x·relu6(x + 3)/6, elementwise (= hard_swish).",
        Layer,
        One,
        &[],
        elementwise,
        lowering::activation,
        keras: "Activation('hard_silu')",
        torch: "nn.Hardswish",
        example: "[N, 16] => hard_silu(x)"
    ),
    layer!(
        "mish",
        "mish(x)",
        "x·tanh(softplus(x)), elementwise.",
        Layer,
        One,
        &[],
        elementwise,
        lowering::activation,
        keras: "Activation('mish')",
        torch: "nn.Mish",
        example: "[N, 16] => mish(x)"
    ),
    layer!(
        "zero_padding1d",
        "zero_padding1d(x, padding = 1)",
        "Zeros added at both ends of the time axis: [N, T, C] → [N, T + before + after, C].",
        Layer,
        One,
        &[SIDES_1D],
        |a| sides(a, 1, false),
        lowering::sides,
        keras: "ZeroPadding1D",
        torch: "nn.ConstantPad1d(p, 0)",
        example: "[N, 10, 4] => zero_padding1d(x, 2)"
    ),
    layer!(
        "zero_padding2d",
        "zero_padding2d(x, padding = 1)",
        "Zeros around the image: [N, H, W, C] → [N, H + top + bottom, W + left + right, C]; padding P, [PH, PW] or \
            [[top, bottom], [left, right]] (Keras's ((0, 1), (0, 1))).",
        Layer,
        One,
        &[SIDES_2D],
        |a| sides(a, 2, false),
        lowering::sides,
        keras: "ZeroPadding2D",
        torch: "nn.ZeroPad2d",
        example: "[N, 8, 8, 3] => zero_padding2d(x, [[0, 1], [0, 1]])"
    ),
    layer!(
        "cropping1d",
        "cropping1d(x, cropping = 1)",
        "Removes steps at both ends of the time axis: [N, T, C] → [N, T − before − after, C].",
        Layer,
        One,
        &[CROP_1D],
        |a| sides(a, 1, true),
        lowering::sides,
        keras: "Cropping1D",
        torch: "",
        example: "[N, 10, 4] => cropping1d(x, 2)"
    ),
    layer!(
        "cropping2d",
        "cropping2d(x, cropping = 1)",
        "Removes rows and columns at the borders: [N, H, W, C] → [N, H − top − bottom, W − left − right, C]; \
            cropping C, [CH, CW] or [[top, bottom], [left, right]].",
        Layer,
        One,
        &[CROP_2D],
        |a| sides(a, 2, true),
        lowering::sides,
        keras: "Cropping2D",
        torch: "",
        example: "[N, 8, 8, 3] => cropping2d(x, [1, 2])"
    ),
    layer!(
        "rescaling",
        "rescaling(x, scale, offset = 0)",
        "x·scale + offset, elementwise (Keras's Rescaling: `rescaling(x, 1/255)`). No parameters.",
        Layer,
        One,
        &[
            opt("scale", ANY_FLOAT, Default::Required, "the factor"),
            opt("offset", ANY_FLOAT, Default::Float(0.0), "added after scaling"),
        ],
        elementwise,
        lowering::rescaling,
        keras: "Rescaling",
        torch: "",
        example: "[N, 8, 8, 3] => rescaling(x, 1 / 255)"
    ),
    layer!(
        "layer_scale",
        "layer_scale(x, init_values = 1e-6)",
        "A learned factor per channel of the last axis (ConvNeXt's LayerScale): x·gamma. Parameter gamma [C], \
            initialised to init_values.",
        Layer,
        One,
        &[opt("init_values", ANY_FLOAT, Default::Float(1e-6), "initial value of every gamma")],
        layer_scale,
        lowering::layer_scale,
        owns_params: true,
        keras: "ConvNeXt's LayerScale",
        torch: "",
        example: "[N, 8, 8, 3] => layer_scale(x)"
    ),
    layer!(
        "normalization",
        "normalization(x, axis = -1, mean = 0, variance = 1)",
        "Keras's Normalization with given statistics: (x − mean)/max(sqrt(variance), 1e-7), statistics per index of \
            `axis`. Non-trainable mean [C], variance [C] and count [] (Keras's adapted layer), initialised from the \
            options (a number, or one per channel) and otherwise read from a checkpoint; training never changes them.",
        Layer,
        One,
        &[
            opt("axis", ArgKind::Axis, Default::Int(-1), "the axis whose entries have their own statistics"),
            opt("mean", ArgKind::Floats, Default::Float(0.0), "the mean: a number or one per channel"),
            opt("variance", ArgKind::Floats, Default::Float(1.0), "the variance: a number or one per channel"),
        ],
        normalization,
        lowering::normalization,
        owns_params: true,
        keras: "Normalization",
        torch: "torchvision Normalize",
        example: "[N, 8, 8, 3] => normalization(x)"
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
        lowering::one_hot,
        keras: "ops.one_hot",
        torch: "F.one_hot",
        example: "int[N, 10] => one_hot(x, 5)"
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
        lowering::clip,
        keras: "ops.clip",
        torch: "torch.clamp",
        example: "[N, 16] => clip(x, 0, 1)"
    ),
    layer!(
        "exp",
        "exp(x)",
        "e^x, elementwise.",
        Function,
        One,
        &[],
        elementwise,
        lowering::unary,
        keras: "ops.exp",
        torch: "torch.exp",
        example: "[N, 16] => exp(x)"
    ),
    layer!(
        "log",
        "log(x)",
        "Natural logarithm, elementwise.",
        Function,
        One,
        &[],
        elementwise,
        lowering::unary,
        keras: "ops.log",
        torch: "torch.log",
        example: "[N, 16] => log(x)"
    ),
    layer!(
        "sqrt",
        "sqrt(x)",
        "Square root, elementwise.",
        Function,
        One,
        &[],
        elementwise,
        lowering::unary,
        keras: "ops.sqrt",
        torch: "torch.sqrt",
        example: "[N, 16] => sqrt(x)"
    ),
    layer!(
        "abs",
        "abs(x)",
        "Absolute value, elementwise.",
        Function,
        One,
        &[],
        elementwise_any,
        lowering::unary,
        keras: "ops.abs",
        torch: "torch.abs",
        example: "[N, 16] => abs(x)"
    ),
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
        lowering::reduce,
        keras: "ops.mean",
        torch: "torch.mean",
        example: "[N, 10, 4] => mean(x, 1)"
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
        lowering::reduce,
        keras: "ops.sum",
        torch: "torch.sum",
        example: "[N, 10, 4] => sum(x, 1)"
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
        lowering::random,
        keras: "random.normal",
        torch: "torch.randn",
        example: "[N, 16] => x + normal([N, 16], std = 0.1)"
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
        lowering::random,
        keras: "random.uniform",
        torch: "torch.rand",
        example: "[N, 16] => x * uniform([N, 16])"
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
        a.param_from("bias", shape, "bias_init");
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
    a.param_from("kernel", vec![d, units.clone()], "init");
    bias(a, vec![units.clone()]);
    let out = a.input().with_last(units, a.origin);
    finish(a, out)
}

fn prelu(a: &mut Apply) -> RuleResult {
    need_float(a, 0)?;
    let c = a.input().dims.last().cloned().unwrap_or(Dim::Known(1));
    a.param_from("alpha", vec![c], "init");
    Ok(Value::Tensor(a.input().clone()))
}

/// Which convolution a `conv` rule checks.
#[derive(Clone, Copy, PartialEq)]
enum ConvKind {
    /// `conv1d`/`conv2d`, with `groups`.
    Plain,
    Transpose,
    Depthwise,
    Separable,
}

// long: one rule for every convolution (1-D/2-D, plain, grouped, depthwise, separable, transposed): the output
// size formula and the kernel layouts are shared and differ per kind in a line or two.
fn conv(a: &mut Apply, nd: usize, kind: ConvKind) -> RuleResult {
    let transpose = kind == ConvKind::Transpose;
    let layer = match (kind, nd) {
        (ConvKind::Depthwise, 1) => "depthwise_conv1d",
        (ConvKind::Depthwise, _) => "depthwise_conv2d",
        (ConvKind::Separable, 1) => "separable_conv1d",
        (ConvKind::Separable, _) => "separable_conv2d",
        (_, 1) => "conv1d",
        (ConvKind::Transpose, _) => "conv2d_transpose",
        _ => "conv2d",
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
    let c = x.dims[nd + 1].clone();
    let mut kshape: Vec<Dim> = (0..nd).map(|i| pick(&kernel, i)).collect();
    let filters = match kind {
        ConvKind::Plain => {
            let groups = a.args.int("groups").unwrap_or(Dim::Known(1));
            let per_group = conv_groups(&c, &filters, &groups)?;
            kshape.extend([per_group, filters.clone()]);
            a.param_from("kernel", kshape, "init");
            filters
        }
        ConvKind::Transpose => {
            kshape.extend([filters.clone(), c]);
            a.param_from("kernel", kshape, "init");
            filters
        }
        ConvKind::Depthwise | ConvKind::Separable => {
            // Keras's depthwise kernel [.., C, M]; output channel c·M + m.
            let m = a.args.int("depth_multiplier").unwrap_or(Dim::Known(1));
            let mid = size("the channel count C·depth_multiplier", || c.mul(&m))?;
            kshape.extend([c, m]);
            if kind == ConvKind::Depthwise {
                a.param_from("kernel", kshape, "init");
                mid
            } else {
                a.param_from("depthwise_kernel", kshape, "init");
                let mut pshape = vec![Dim::Known(1); nd];
                pshape.extend([mid, filters.clone()]);
                a.param_from("pointwise_kernel", pshape, "init");
                filters
            }
        }
    };
    dims.push(filters.clone());
    bias(a, vec![filters]);
    let out = TensorTy::float(dims, a.origin);
    finish(a, out)
}

/// Input channels per group of a grouped convolution (`C / groups`): both
/// the input's channels and the filters must split evenly.
fn conv_groups(c: &Dim, filters: &Dim, groups: &Dim) -> Result<Dim, LayerError> {
    if let Some(g) = groups.as_known().filter(|&g| g > 0) {
        for (what, n) in [("input channels", c), ("filters", filters)] {
            if let Some(n) = n.as_known().filter(|n| n % g != 0) {
                return Err(LayerError::Option {
                    option: "groups",
                    message: format!("{n} {what} do not split into {g} groups ({n} is not a multiple of {g})"),
                });
            }
        }
    }
    checked_div(c, groups)
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
    let mut dims = vec![x.dims[0].clone()];
    if a.args.bool("keepdims") {
        dims.extend(std::iter::repeat_n(Dim::Known(1), x.rank() - 2));
    }
    dims.push(x.dims[x.rank() - 1].clone());
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
    // Keras's order: gamma, beta, moving_mean, moving_variance; the absent ones are skipped.
    if !matches!(a.args.get("scale"), ArgVal::Bool(false)) {
        a.param("gamma", vec![c.clone()], "ones");
    }
    if !matches!(a.args.get("center"), ArgVal::Bool(false)) {
        a.param("beta", vec![c.clone()], "zeros");
    }
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
    if !matches!(a.args.get("scale"), ArgVal::Bool(false)) {
        a.param("gamma", shape.clone(), "ones");
    }
    if !matches!(a.args.get("center"), ArgVal::Bool(false)) {
        a.param("beta", shape, "zeros");
    }
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
    a.param_from("embeddings", vec![vocab, dim.clone()], "init");
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
    a.param_from("kernel", vec![x.dims[2].clone(), gm.clone()], "init");
    a.param_from("recurrent_kernel", vec![m.clone(), gm.clone()], "recurrent_init");
    if !matches!(a.args.get("bias"), ArgVal::Bool(false)) {
        let shape = if cell == Cell::Gru && a.args.bool("reset_after") { vec![Dim::Known(2), gm] } else { vec![gm] };
        a.param_from("bias", shape, "bias_init");
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

fn dropout(a: &mut Apply) -> RuleResult {
    need_float(a, 0)?;
    let x = a.input().clone();
    if let ArgVal::Shape(ns) = a.args.get("noise_shape").clone() {
        if ns.len() != x.rank() {
            let message = format!("{} axes for an input of rank {} ({x})", ns.len(), x.rank());
            return Err(LayerError::Option { option: "noise_shape", message });
        }
        for (i, (d, xd)) in ns.iter().zip(&x.dims).enumerate() {
            if d.as_known() == Some(1) {
                continue;
            }
            let eq = d.compare(xd);
            if eq != Equality::Equal {
                let how = if eq == Equality::Different { "is not" } else { "cannot be shown to be" };
                let message = format!("axis {i} is {d}, which {how} 1 or the input's {xd} ({x})");
                return Err(LayerError::Option { option: "noise_shape", message });
            }
        }
    }
    Ok(Value::Tensor(x))
}

/// The (before, after) sizes of `zero_padding*`/`cropping*` per spatial axis, from Keras's forms:
/// `P`; for 1-D `[before, after]`; for 2-D `[PH, PW]` (symmetric) or `[[top, bottom], [left, right]]`.
pub(crate) fn sides_of(args: &super::Args, option: &'static str, nd: usize) -> Result<Vec<(i64, i64)>, LayerError> {
    let ArgVal::Sides(rows) = args.get(option) else { return Ok(vec![(0, 0); nd]) };
    let bad = |what: &str| LayerError::Option { option, message: format!("{what} for a {nd}-D layer") };
    Ok(match (nd, rows.as_slice()) {
        (_, [one]) if one.len() == 1 => vec![(one[0], one[0]); nd],
        (1, [a, b]) if a.len() == 1 && b.len() == 1 => vec![(a[0], b[0])],
        (1, [ab]) if ab.len() == 2 => vec![(ab[0], ab[1])],
        (2, [h, w]) if h.len() == 1 && w.len() == 1 => vec![(h[0], h[0]), (w[0], w[0])],
        (2, [h, w]) if h.len() == 2 && w.len() == 2 => vec![(h[0], h[1]), (w[0], w[1])],
        (1, _) => return Err(bad("expected P or [before, after]")),
        _ => return Err(bad("expected P, [PH, PW] or [[top, bottom], [left, right]]")),
    })
}

fn sides(a: &mut Apply, nd: usize, crop: bool) -> RuleResult {
    let (layer, option) = match (nd, crop) {
        (1, false) => ("zero_padding1d", "padding"),
        (1, true) => ("cropping1d", "cropping"),
        (_, false) => ("zero_padding2d", "padding"),
        (_, true) => ("cropping2d", "cropping"),
    };
    need_rank(a, 0, &[nd + 2], if nd == 1 { "[N, T, C]" } else { "[N, H, W, C]" })?;
    nchw_hint(a);
    let x = a.input().clone();
    let pads = sides_of(a.args, option, nd)?;
    let mut dims = x.dims.clone();
    for (i, &(lo, hi)) in pads.iter().enumerate() {
        let name = axis_names(nd)[i];
        let h = &x.dims[1 + i];
        let total = Dim::Known(lo).add(&Dim::Known(hi)).map_err(|e| LayerError::from_dim(e, "the border"))?;
        let (out, sign) = if crop {
            (size(&format!("the output {name}"), || h.sub(&total))?, "−")
        } else {
            (size(&format!("the output {name}"), || h.add(&total))?, "+")
        };
        let note = format!("{layer} {name}: {} {sign} {lo} {sign} {hi} = {out}", show(h));
        dims[1 + i] = positive(out, name, note, a)?;
    }
    Ok(Value::Tensor(TensorTy::new(x.elem, dims, a.origin)))
}

fn layer_scale(a: &mut Apply) -> RuleResult {
    need_float(a, 0)?;
    // The scale is per channel, never per sample: the last axis must not be the batch axis.
    if a.input().rank() < 2 {
        return Err(LayerError::Rank { operand: 0, expected: "[N, …, C]", found: a.input().clone() });
    }
    let c = a.input().dims.last().cloned().expect("rank >= 2");
    let v = a.args.float("init_values").unwrap_or(1e-6);
    a.param_init("gamma", vec![c], true, format!("constant({v:?})"));
    Ok(Value::Tensor(a.input().clone()))
}

/// `values(a, b, …)` for per-channel statistics, `constant(v)` for one value.
fn stat_init(vals: &[f64], c: &Dim, option: &'static str) -> Result<String, LayerError> {
    match vals {
        [v] => Ok(format!("constant({v:?})")),
        _ => {
            if c.as_known().is_some_and(|k| k != vals.len() as i64) || c.as_known().is_none() {
                let message = format!("{} values for an axis of size {c}", vals.len());
                return Err(LayerError::Option { option, message });
            }
            let list: Vec<String> = vals.iter().map(|v| format!("{v:?}")).collect();
            Ok(format!("values({})", list.join(", ")))
        }
    }
}

fn normalization(a: &mut Apply) -> RuleResult {
    need_float(a, 0)?;
    let x = a.input().clone();
    let axis = axes_of(a, "axis", x.rank())?[0];
    if axis == 0 {
        let message = "axis 0 is the batch axis: statistics are per feature, not per sample".to_string();
        return Err(LayerError::Option { option: "axis", message });
    }
    let c = x.dims[axis].clone();
    let floats = |name| match a.args.get(name) {
        ArgVal::Floats(v) => v.clone(),
        ArgVal::Float(f) => vec![*f],
        _ => vec![if name == "mean" { 0.0 } else { 1.0 }],
    };
    let (mean, var) = (floats("mean"), floats("variance"));
    if let Some(v) = var.iter().find(|v| **v < 0.0 || !v.is_finite()) {
        let message = format!("a variance must be a finite number ≥ 0, found {v}");
        return Err(LayerError::Option { option: "variance", message });
    }
    if let Some(v) = mean.iter().find(|v| !v.is_finite()) {
        return Err(LayerError::Option { option: "mean", message: format!("{v} is not a finite number") });
    }
    let mi = stat_init(&mean, &c, "mean")?;
    let vi = stat_init(&var, &c, "variance")?;
    a.param_init("mean", vec![c.clone()], false, mi);
    a.param_init("variance", vec![c], false, vi);
    a.param_init("count", vec![], false, "zeros".into());
    Ok(Value::Tensor(x))
}
