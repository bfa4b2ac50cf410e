//! The Keras 3 form of every entry of the layer table, in one place: [`emit`] matches on the entry's name
//! and writes the layer (with every option mapped) as Python, or refuses with the option Keras lacks.
//! A new layer states its Keras form here once; `every_table_entry_has_a_keras_form` fails until it does.

use std::collections::BTreeSet;

use nnc_compiler::dims::Dim;
use nnc_compiler::layers::{self, ArgVal, Args, LayerDef, Padding, ParamSpec};
use nnc_compiler::types::{LayerValue, Origin, TensorTy};

use super::py;

/// Why a layer (or one of its options) has no Keras form.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Refusal {
    /// The option at fault, when one is (its span labels the diagnostic).
    pub option: Option<&'static str>,
    /// What Keras lacks, in words.
    pub why: String,
}

impl Refusal {
    fn option(option: &'static str, why: impl Into<String>) -> Refusal {
        Refusal { option: Some(option), why: why.into() }
    }
    fn layer(why: impl Into<String>) -> Refusal {
        Refusal { option: None, why: why.into() }
    }
}

/// The Python being written for one model: the body of its `build_…` function, the custom classes it
/// needs and, for every Keras layer with weights, the nnc parameters it holds in Keras's weight order.
#[derive(Default)]
pub(crate) struct Emitter {
    /// Lines of the build function's body (without indentation).
    pub lines: Vec<String>,
    /// Keras layer name → nnc parameter names, in the layer's weight order.
    pub weights: Vec<(String, Vec<String>)>,
    /// The custom classes of `model.py` this model uses (`NncOp`, …).
    pub classes: BTreeSet<&'static str>,
    /// In a GAN step's graph: the prefixes of the models the step updates. Their layers are called with
    /// `training=True`, the others' with `training=False` (nnc runs them in inference mode).
    pub step_over: Option<Vec<String>>,
    /// A tensor with the batch axis (the first input), for random tensors drawn per batch.
    pub batch_ref: Option<String>,
    /// Layer objects already made: (Keras name, constructor text, Python variable).
    objects: Vec<(String, String, String)>,
    tmp: usize,
}

impl Emitter {
    /// A fresh Python variable name.
    pub fn fresh(&mut self, stem: &str) -> String {
        self.tmp += 1;
        format!("{stem}{}", self.tmp)
    }

    /// The Python variable holding the layer object `name` built by `ctor` (a call without the `name=`
    /// argument). A name made again with the same constructor is the same object — a shared layer, as
    /// a model called twice shares its parameters; with another constructor it gets a suffix.
    pub fn object(&mut self, name: &str, ctor: &str, params: &[String]) -> String {
        if let Some((_, _, var)) = self.objects.iter().find(|(n, c, _)| n == name && c == ctor) {
            return var.clone();
        }
        let mut keras_name = name.to_string();
        let mut k = 1;
        while self.objects.iter().any(|(n, ..)| *n == keras_name) {
            k += 1;
            keras_name = format!("{name}__{k}");
        }
        let var = self.fresh("layer");
        let ctor_open = ctor.strip_suffix(')').unwrap_or(ctor);
        let sep = if ctor_open.ends_with('(') { "" } else { ", " };
        self.lines.push(format!("{var} = {ctor_open}{sep}name={})", py::string(&keras_name)));
        if !params.is_empty() {
            self.weights.push((keras_name.clone(), params.to_vec()));
        }
        self.objects.push((name.to_string(), ctor.to_string(), var.clone()));
        var
    }

    /// Applies the layer object `name` (made by `ctor`) to `args` and binds the result to a fresh variable.
    fn apply(&mut self, name: &str, ctor: &str, params: &[String], args: &str) -> String {
        let obj = self.object(name, ctor, params);
        let out = self.fresh("h");
        let training = match &self.step_over {
            Some(over) if over.iter().any(|p| name.starts_with(p.as_str())) => ", training=True",
            Some(_) => ", training=False",
            None => "",
        };
        self.lines.push(format!("{out} = {obj}({args}{training})"));
        out
    }

    /// `NncOp(op, {args})` applied to `input`: an operation Keras has no layer for, in keras.ops.
    pub fn op(&mut self, name: &str, op: &str, args: &[(&str, String)], input: &str) -> String {
        self.classes.insert("NncOp");
        let a: Vec<String> = args.iter().map(|(k, v)| format!("{}: {v}", py::string(k))).collect();
        let ctor = format!("NncOp({}, {{{}}})", py::string(op), a.join(", "));
        self.apply(name, &ctor, &[], input)
    }
}

/// One layer application of the typed graph, with its operands already in Python.
pub(crate) struct Application<'a> {
    /// The table entry.
    pub def: &'static LayerDef,
    /// Its bound options.
    pub args: &'a Args,
    /// nnc's name for it: the Keras layer's name and the prefix of its parameters.
    pub name: &'a str,
    /// The Python expressions of its tensor operands.
    pub inputs: Vec<String>,
    /// Their types.
    pub input_types: Vec<&'a TensorTy>,
    /// The types of its outputs.
    pub output_types: &'a [TensorTy],
    /// Its parameters with full names.
    pub params: &'a [ParamSpec],
    /// Inside `frozen`: not trainable.
    pub frozen: bool,
    /// The Python expression of a tensor given as an option (`kv = enc`, `initial_state`).
    pub tensor: &'a dyn Fn(&TensorTy) -> Option<String>,
}

impl Application<'_> {
    fn param_names(&self) -> Vec<String> {
        self.params.iter().map(|p| p.name.clone()).collect()
    }
    fn x(&self) -> &str {
        self.inputs.first().map_or("None", String::as_str)
    }
    fn rank(&self) -> usize {
        self.input_types.first().map_or(0, |t| t.dims.len())
    }
}

/// The activations Keras names with a string that compute exactly what nnc's entry does with default
/// options (`leaky_relu` is missing: Keras's string means slope 0.2, nnc's default is 0.3).
const ACTIVATION_WORDS: &[(&str, &str)] = &[
    ("relu", "relu"),
    ("sigmoid", "sigmoid"),
    ("tanh", "tanh"),
    ("gelu", "gelu"),
    ("softplus", "softplus"),
    ("elu", "elu"),
    ("softmax", "softmax"),
    ("log_softmax", "log_softmax"),
    ("relu6", "relu6"),
    ("swish", "swish"),
    ("silu", "silu"),
    ("hard_sigmoid", "hard_sigmoid"),
    ("hard_swish", "hard_swish"),
    ("hard_silu", "hard_silu"),
    ("mish", "mish"),
    ("exp", "exponential"),
];

/// The Keras activation string of a layer value written without options (`activation = relu`).
fn activation_word(lv: &LayerValue) -> Option<&'static str> {
    if !lv.args.is_empty() {
        return None;
    }
    ACTIVATION_WORDS.iter().find(|(n, _)| *n == lv.layer.name).map(|(_, k)| *k)
}

/// `activation = …` of a layer with a kernel: a Keras `activation=` argument (`""` for none), and the
/// layer value to apply as its own layer after it when Keras has no string for it.
fn activation_arg(app: &Application) -> (String, Option<LayerValue>) {
    match app.args.get("activation") {
        ArgVal::Layer(lv) => match activation_word(lv) {
            Some(w) => (format!(", activation={}", py::string(w)), None),
            None => (String::new(), Some(lv.clone())),
        },
        _ => (String::new(), None),
    }
}

fn int(args: &Args, name: &'static str) -> Result<i64, Refusal> {
    match args.get(name) {
        ArgVal::Int(d) => known(d, name),
        _ => Err(Refusal::option(name, "the option has no value")),
    }
}

fn known(d: &Dim, option: &'static str) -> Result<i64, Refusal> {
    d.as_known().ok_or_else(|| Refusal::option(option, format!("`{d}` has no value when the model is exported")))
}

/// An int-or-pair option as Keras's tuple for `rank` spatial axes.
fn tuple(args: &Args, name: &'static str, rank: usize) -> Result<String, Refusal> {
    let (a, b) = match args.get(name) {
        ArgVal::Int(d) => (known(d, name)?, known(d, name)?),
        ArgVal::Pair(a, b) => (known(a, name)?, known(b, name)?),
        _ => return Err(Refusal::option(name, "the option has no value")),
    };
    Ok(if rank == 1 { format!("{b}") } else { format!("({a}, {b})") })
}

fn float(args: &Args, name: &str, default: f64) -> f64 {
    match args.get(name) {
        ArgVal::Float(f) => *f,
        ArgVal::Int(d) => d.as_known().map_or(default, |v| v as f64),
        _ => default,
    }
}

fn flag(args: &Args, name: &str) -> &'static str {
    if matches!(args.get(name), ArgVal::Bool(true)) { "True" } else { "False" }
}

/// The spatial rank of a convolution or pooling input (1 for [N, T, C], 2 for [N, H, W, C]).
fn spatial(app: &Application) -> Result<usize, Refusal> {
    match app.rank() {
        3 => Ok(1),
        4 => Ok(2),
        r => Err(Refusal::layer(format!("an input of rank {r}"))),
    }
}

/// nnc's explicit padding `P` / `[PH, PW]` as the per-side sizes Keras's `ZeroPadding{1,2}D` takes.
fn explicit_pad(ph: &Dim, pw: &Dim, rank: usize) -> Result<String, Refusal> {
    let (ph, pw) = (known(ph, "padding")?, known(pw, "padding")?);
    Ok(if rank == 1 { format!("{pw}") } else { format!("({ph}, {pw})") })
}

/// The `padding=` word for Keras and, for explicit sizes, the padding layer to put before.
fn padding(app: &Application, rank: usize) -> Result<(&'static str, Option<String>), Refusal> {
    Ok(match app.args.get("padding") {
        ArgVal::Padding(Padding::Same) => ("same", None),
        ArgVal::Padding(Padding::Explicit(ph, pw)) => ("valid", Some(explicit_pad(ph, pw, rank)?)),
        _ => ("valid", None),
    })
}

/// Writes `app` as Keras layers; returns the Python expression of its output (a list for several).
// long: the one mapping from the layer table to Keras, an arm per entry (what Keras calls each option).
pub(crate) fn emit(e: &mut Emitter, app: &Application) -> Result<String, Refusal> {
    if !known_entry(app.def.name) {
        return Err(Refusal::layer(format!("`{}` has no Keras form in nnc's exporter yet", app.def.name)));
    }
    let a = app.args;
    let name = app.name;
    let params = app.param_names();
    let x = app.x().to_string();
    let out = match app.def.name {
        "dense" => {
            let (act, after) = activation_arg(app);
            let ctor = format!("layers.Dense({}, use_bias={}{act})", int(a, "units")?, flag(a, "bias"));
            let y = e.apply(name, &trainable(&ctor, app.frozen), &params, &x);
            then_activation(e, name, after, y)?
        }
        "relu" => {
            let max = match a.get("max_value") {
                ArgVal::Float(m) => py::float(*m),
                ArgVal::Int(d) => format!("{}.0", known(d, "max_value")?),
                _ => "None".into(),
            };
            let ctor = format!(
                "layers.ReLU(max_value={max}, negative_slope={}, threshold={})",
                py::float(float(a, "negative_slope", 0.0)),
                py::float(float(a, "threshold", 0.0))
            );
            e.apply(name, &ctor, &[], &x)
        }
        "sigmoid" | "tanh" | "gelu" | "softplus" | "relu6" | "swish" | "silu" | "hard_sigmoid" | "hard_swish"
        | "hard_silu" | "mish" => {
            let word = ACTIVATION_WORDS.iter().find(|(n, _)| *n == app.def.name).map_or("linear", |(_, w)| *w);
            e.apply(name, &format!("layers.Activation({})", py::string(word)), &[], &x)
        }
        "elu" => e.apply(name, &format!("layers.ELU(alpha={})", py::float(float(a, "alpha", 1.0))), &[], &x),
        "leaky_relu" => {
            let ctor = format!("layers.LeakyReLU(negative_slope={})", py::float(float(a, "alpha", 0.3)));
            e.apply(name, &ctor, &[], &x)
        }
        "softmax" => e.apply(name, &format!("layers.Softmax(axis={})", axis(a, "axis")), &[], &x),
        "log_softmax" => e.op(name, "log_softmax", &[("axis", axis(a, "axis"))], &x),
        "prelu" => {
            // Keras's alpha has the input's shape unless axes are shared: shared over all but the channels,
            // it is [1, …, 1, C], nnc's alpha [C] reshaped (load_weights reshapes across unit axes).
            let shared: Vec<String> = (1..app.rank().saturating_sub(1)).map(|i| i.to_string()).collect();
            let ctor = format!("layers.PReLU(shared_axes=[{}])", shared.join(", "));
            e.apply(name, &trainable(&ctor, app.frozen), &params, &x)
        }
        "conv1d" | "conv2d" => conv(e, app, "Conv", &params, &x, true)?,
        "depthwise_conv1d" | "depthwise_conv2d" => conv(e, app, "DepthwiseConv", &params, &x, false)?,
        "separable_conv1d" | "separable_conv2d" => conv(e, app, "SeparableConv", &params, &x, true)?,
        "conv2d_transpose" => conv_transpose(e, app, &params, &x)?,
        "max_pool" | "avg_pool" => pool(e, app, &x)?,
        "global_avg_pool" | "global_max_pool" => {
            let kind = if app.def.name == "global_avg_pool" { "Average" } else { "Max" };
            let ctor = format!("layers.Global{kind}Pooling{}D(keepdims={})", spatial(app)?, flag(a, "keepdims"));
            e.apply(name, &ctor, &[], &x)
        }
        "upsample" => {
            let r = spatial(app)?;
            e.apply(name, &format!("layers.UpSampling{r}D(size={})", tuple(a, "size", r)?), &[], &x)
        }
        "flatten" => e.apply(name, "layers.Flatten()", &[], &x),
        "reshape" => {
            let out = app.output_types.first().map_or(&[][..], |t| &t.dims[..]);
            let input = app.input_types.first().map_or(&[][..], |t| &t.dims[..]);
            if out.first() == input.first() {
                e.apply(name, &format!("layers.Reshape({})", per_sample_shape(out)), &[], &x)
            } else {
                // The batch axis changes (a fixed-size model viewing its rows differently): the whole shape.
                let dims: Vec<String> =
                    out.iter().map(|d| known(d, "shape").map(|v| v.to_string())).collect::<Result<_, _>>()?;
                e.op(name, "reshape", &[("shape", format!("[{}]", dims.join(", ")))], &x)
            }
        }
        "concat" => {
            let ctor = format!("layers.Concatenate(axis={})", axis(a, "axis"));
            e.apply(name, &ctor, &[], &format!("[{}]", app.inputs.join(", ")))
        }
        "batch_norm" => {
            let ctor = format!(
                "layers.BatchNormalization(momentum={}, epsilon={}, center={}, scale={})",
                py::float(float(a, "momentum", 0.99)),
                py::float(float(a, "epsilon", 1e-3)),
                flag(a, "center"),
                flag(a, "scale")
            );
            e.apply(name, &trainable(&ctor, app.frozen), &params, &x)
        }
        "layer_norm" => {
            let axes = match a.get("axes") {
                ArgVal::Axes(v) => v.iter().map(i64::to_string).collect::<Vec<_>>().join(", "),
                _ => "-1".into(),
            };
            let ctor = format!(
                "layers.LayerNormalization(axis=[{axes}], epsilon={}, center={}, scale={})",
                py::float(float(a, "epsilon", 1e-3)),
                flag(a, "center"),
                flag(a, "scale")
            );
            e.apply(name, &trainable(&ctor, app.frozen), &params, &x)
        }
        "instance_norm" => {
            // Statistics per sample and channel over the spatial axes: a group per channel.
            let c = app.input_types.first().and_then(|t| t.dims.last()).map(|d| known(d, "affine")).transpose()?;
            let ctor = format!(
                "layers.GroupNormalization(groups={}, epsilon={}, center={aff}, scale={aff})",
                c.unwrap_or(1),
                py::float(float(a, "epsilon", 1e-3)),
                aff = flag(a, "affine")
            );
            e.apply(name, &trainable(&ctor, app.frozen), &params, &x)
        }
        "dropout" => {
            let noise = match a.get("noise_shape") {
                ArgVal::Shape(ds) => {
                    let dims: Vec<String> = ds
                        .iter()
                        .enumerate()
                        .map(|(i, d)| match d.as_known() {
                            Some(v) if i > 0 || v == 1 => v.to_string(),
                            _ => "None".into(),
                        })
                        .collect();
                    format!(", noise_shape=({},)", dims.join(", "))
                }
                _ => String::new(),
            };
            e.apply(name, &format!("layers.Dropout({}{noise})", py::float(float(a, "rate", 0.0))), &[], &x)
        }
        "gaussian_noise" => {
            e.apply(name, &format!("layers.GaussianNoise({})", py::float(float(a, "stddev", 0.0))), &[], &x)
        }
        "embedding" => {
            let ctor = format!("layers.Embedding({}, {})", int(a, "vocab")?, int(a, "dim")?);
            e.apply(name, &trainable(&ctor, app.frozen), &params, &x)
        }
        "positional_embedding" => {
            e.classes.insert("NncPositionEmbedding");
            let ctor = format!("NncPositionEmbedding({})", int(a, "max_len")?);
            e.apply(name, &trainable(&ctor, app.frozen), &params, &x)
        }
        "positional_encoding" => e.op(name, "sine_position", &[], &x),
        "simple_rnn" | "lstm" | "gru" => recurrent(e, app, &params, &x)?,
        "bidirectional" => bidirectional(e, app, &params, &x)?,
        "multi_head_attention" => {
            let kv = match a.get("kv") {
                ArgVal::Tensor(t) => (app.tensor)(t).ok_or_else(|| Refusal::option("kv", "the tensor is unknown"))?,
                _ => x.clone(),
            };
            let ctor = format!(
                "layers.MultiHeadAttention(num_heads={}, key_dim={}, value_dim={}, dropout={})",
                int(a, "heads")?,
                int(a, "key_dim")?,
                value_dim(a)?,
                py::float(float(a, "dropout", 0.0))
            );
            let args = format!("{x}, {kv}, use_causal_mask={}", flag(a, "causal"));
            e.apply(name, &trainable(&ctor, app.frozen), &params, &args)
        }
        "repeat" => {
            let lv = layer_opt(a).ok_or_else(|| Refusal::option("layer", "no layer value"))?.clone();
            let mut y = x.clone();
            for i in 0..int(a, "n")? {
                let prefix = format!("{name}.{i}");
                y = layer_value(e, &lv, &prefix, app, &y)?;
            }
            y
        }
        "zero_padding1d" | "zero_padding2d" | "cropping1d" | "cropping2d" => {
            let (option, class) = match app.def.name {
                "zero_padding1d" => ("padding", "ZeroPadding1D"),
                "zero_padding2d" => ("padding", "ZeroPadding2D"),
                "cropping1d" => ("cropping", "Cropping1D"),
                _ => ("cropping", "Cropping2D"),
            };
            let sides = match a.get(option) {
                ArgVal::Sides(s) => sides(s),
                ArgVal::Int(d) => known(d, option)?.to_string(),
                _ => "1".into(),
            };
            e.apply(name, &format!("layers.{class}({sides})"), &[], &x)
        }
        "rescaling" => {
            let ctor = format!(
                "layers.Rescaling({}, offset={})",
                py::float(float(a, "scale", 1.0)),
                py::float(float(a, "offset", 0.0))
            );
            e.apply(name, &ctor, &[], &x)
        }
        "layer_scale" => {
            e.classes.insert("NncLayerScale");
            let ctor = format!("NncLayerScale({})", py::float(float(a, "init_values", 1e-6)));
            e.apply(name, &trainable(&ctor, app.frozen), &params, &x)
        }
        "normalization" => {
            // Keras's adapted form: mean, variance and count are weights, read from nnc's parameters.
            e.apply(name, &format!("layers.Normalization(axis={})", axis(a, "axis")), &params, &x)
        }
        "one_hot" => e.op(name, "one_hot", &[("depth", int(a, "depth")?.to_string())], &x),
        "clip" => {
            let (lo, hi) = (py::float(float(a, "lo", 0.0)), py::float(float(a, "hi", 0.0)));
            e.op(name, "clip", &[("lo", lo), ("hi", hi)], &x)
        }
        "exp" | "log" | "sqrt" | "abs" => e.op(name, app.def.name, &[], &x),
        "mean" | "sum" => {
            let axes = match a.get("axis") {
                ArgVal::Axes(v) => v.clone(),
                _ => (0..app.rank() as i64).collect(),
            };
            let rank = app.rank() as i64;
            if axes.iter().any(|&v| v == 0 || v == -rank) {
                return Err(Refusal::option("axis", "it reduces over the batch axis, which a Keras model keeps"));
            }
            let list = axes.iter().map(i64::to_string).collect::<Vec<_>>().join(", ");
            e.op(name, app.def.name, &[("axis", format!("[{list}]")), ("keepdims", flag(a, "keepdims").into())], &x)
        }
        "normal" | "uniform" => {
            // Drawn per batch: the batch size comes from a tensor of the graph (its first input).
            let Some(reference) = e.batch_ref.clone() else {
                return Err(Refusal::layer("a random tensor needs a batch size, and the graph has no input"));
            };
            let dims = match a.get("shape") {
                ArgVal::Shape(ds) => ds
                    .iter()
                    .enumerate()
                    .map(|(i, d)| match d.as_known() {
                        Some(v) if i > 0 => Ok(v.to_string()),
                        _ if i == 0 => Ok("None".to_string()),
                        _ => Err(Refusal::option("shape", format!("`{d}` has no value"))),
                    })
                    .collect::<Result<Vec<_>, _>>()?,
                _ => return Err(Refusal::option("shape", "the option has no value")),
            };
            let (p, q) = if app.def.name == "normal" {
                (py::float(float(a, "mean", 0.0)), py::float(float(a, "std", 1.0)))
            } else {
                (py::float(float(a, "lo", 0.0)), py::float(float(a, "hi", 1.0)))
            };
            e.classes.insert("NncRandom");
            let ctor = format!("NncRandom({}, [{}], {p}, {q})", py::string(app.def.name), dims.join(", "));
            e.apply(name, &ctor, &[], &reference)
        }
        other => return Err(Refusal::layer(format!("`{other}` has no Keras form in nnc's exporter yet"))),
    };
    Ok(out)
}

/// Whether [`emit`] has an arm for the table entry `name` (`every_table_entry_has_a_keras_form`).
pub(crate) fn known_entry(name: &str) -> bool {
    KNOWN.contains(&name)
}

/// Every entry [`emit`] has an arm for (kept in step by `every_table_entry_has_a_keras_form`).
const KNOWN: &[&str] = &[
    "dense",
    "relu",
    "sigmoid",
    "tanh",
    "gelu",
    "softplus",
    "relu6",
    "swish",
    "silu",
    "hard_sigmoid",
    "hard_swish",
    "hard_silu",
    "mish",
    "elu",
    "leaky_relu",
    "softmax",
    "log_softmax",
    "prelu",
    "conv1d",
    "conv2d",
    "depthwise_conv1d",
    "depthwise_conv2d",
    "separable_conv1d",
    "separable_conv2d",
    "conv2d_transpose",
    "max_pool",
    "avg_pool",
    "global_avg_pool",
    "global_max_pool",
    "upsample",
    "flatten",
    "reshape",
    "concat",
    "batch_norm",
    "layer_norm",
    "instance_norm",
    "dropout",
    "gaussian_noise",
    "embedding",
    "positional_embedding",
    "positional_encoding",
    "simple_rnn",
    "lstm",
    "gru",
    "bidirectional",
    "multi_head_attention",
    "repeat",
    "zero_padding1d",
    "zero_padding2d",
    "cropping1d",
    "cropping2d",
    "rescaling",
    "layer_scale",
    "normalization",
    "one_hot",
    "clip",
    "exp",
    "log",
    "sqrt",
    "abs",
    "mean",
    "sum",
    "normal",
    "uniform",
];

/// The layer value of option `layer` (`repeat`, `bidirectional`).
fn layer_opt(a: &Args) -> Option<&LayerValue> {
    match a.get("layer") {
        ArgVal::Layer(lv) => Some(lv),
        _ => None,
    }
}

fn trainable(ctor: &str, frozen: bool) -> String {
    if !frozen {
        return ctor.to_string();
    }
    match ctor.strip_suffix(')') {
        Some(open) if open.ends_with('(') => format!("{open}trainable=False)"),
        Some(open) => format!("{open}, trainable=False)"),
        None => ctor.to_string(),
    }
}

fn axis(a: &Args, name: &str) -> String {
    match a.get(name) {
        ArgVal::Axes(v) if v.len() == 1 => v[0].to_string(),
        ArgVal::Int(d) => d.as_known().unwrap_or(-1).to_string(),
        _ => "-1".into(),
    }
}

fn value_dim(a: &Args) -> Result<i64, Refusal> {
    match a.get("value_dim") {
        ArgVal::Int(d) => known(d, "value_dim"),
        _ => int(a, "key_dim"),
    }
}

/// A per-sample shape for `Reshape`: the dims after the batch axis (one unknown becomes -1).
fn per_sample_shape(dims: &[Dim]) -> String {
    let rest: Vec<String> =
        dims.iter().skip(1).map(|d| d.as_known().map_or("-1".to_string(), |v| v.to_string())).collect();
    format!("({},)", rest.join(", "))
}

/// `zero_padding`/`cropping` sizes as written (`P`, `[A, B]`, `[[a, b], [c, d]]`) in Keras's form.
fn sides(s: &[Vec<i64>]) -> String {
    let inner = |v: &[i64]| match v {
        [p] => p.to_string(),
        _ => format!("({})", v.iter().map(i64::to_string).collect::<Vec<_>>().join(", ")),
    };
    match s {
        [one] => inner(one),
        more => format!("({})", more.iter().map(|v| inner(v)).collect::<Vec<_>>().join(", ")),
    }
}

/// The layer value `activation = …` applied as its own layer after `y` (named `NAME__activation`).
fn then_activation(e: &mut Emitter, name: &str, after: Option<LayerValue>, y: String) -> Result<String, Refusal> {
    match after {
        None => Ok(y),
        Some(lv) => {
            let args = layers::bind_value(&lv).ok_or_else(|| Refusal::option("activation", "it does not bind"))?;
            let ty = TensorTy::float(Vec::new(), Origin::default());
            let app = Application {
                def: lv.layer,
                args: &args,
                name: &format!("{name}__activation"),
                inputs: vec![y],
                input_types: vec![&ty],
                output_types: &[],
                params: &[],
                frozen: false,
                tensor: &|_| None,
            };
            emit(e, &app).map_err(|r| Refusal::option("activation", r.why))
        }
    }
}

/// A layer value (`repeat`'s copies) applied as its own layer named `prefix`, with the parameters of
/// `outer` under that prefix.
fn layer_value(
    e: &mut Emitter,
    lv: &LayerValue,
    prefix: &str,
    outer: &Application,
    x: &str,
) -> Result<String, Refusal> {
    let args = layers::bind_value(lv).ok_or_else(|| Refusal::option("layer", "it does not bind"))?;
    let dot = format!("{prefix}.");
    let params: Vec<ParamSpec> = outer.params.iter().filter(|p| p.name.starts_with(&dot)).cloned().collect();
    let app = Application {
        def: lv.layer,
        args: &args,
        name: prefix,
        inputs: vec![x.to_string()],
        input_types: outer.input_types.clone(),
        output_types: outer.output_types,
        params: &params,
        frozen: outer.frozen,
        tensor: outer.tensor,
    };
    emit(e, &app)
}

/// Plain, depthwise and separable convolutions (`class` is Keras's stem; `filters` whether it takes them).
fn conv(
    e: &mut Emitter,
    app: &Application,
    class: &str,
    params: &[String],
    x: &str,
    filters: bool,
) -> Result<String, Refusal> {
    let a = app.args;
    let r = spatial(app)?;
    let (pad, explicit) = padding(app, r)?;
    let mut x = x.to_string();
    if let Some(p) = explicit {
        x = e.apply(&format!("{}__pad", app.name), &format!("layers.ZeroPadding{r}D({p})"), &[], &x);
    }
    let (act, after) = activation_arg(app);
    let mut opts = Vec::new();
    if filters {
        opts.push(int(a, "filters")?.to_string());
    }
    opts.push(format!("kernel_size={}", tuple(a, "kernel", r)?));
    opts.push(format!("strides={}", tuple(a, "stride", r)?));
    opts.push(format!("padding={}", py::string(pad)));
    opts.push(format!("dilation_rate={}", tuple(a, "dilation", r)?));
    if matches!(a.get("depth_multiplier"), ArgVal::Int(_)) {
        opts.push(format!("depth_multiplier={}", int(a, "depth_multiplier")?));
    }
    if class == "Conv" {
        opts.push(format!("groups={}", int(a, "groups")?));
    }
    opts.push(format!("use_bias={}{act}", flag(a, "bias")));
    let ctor = format!("layers.{class}{r}D({})", opts.join(", "));
    let y = e.apply(app.name, &trainable(&ctor, app.frozen), params, &x);
    then_activation(e, app.name, after, y)
}

/// `conv2d_transpose`: explicit padding `P` is Keras's `valid` output cropped by `P` on every side.
fn conv_transpose(e: &mut Emitter, app: &Application, params: &[String], x: &str) -> Result<String, Refusal> {
    let a = app.args;
    let (pad, crop) = padding(app, 2)?;
    let output_padding = tuple(a, "output_padding", 2)?;
    let op = if pad == "same" {
        if output_padding != "(0, 0)" {
            return Err(Refusal::option(
                "output_padding",
                "with `padding = same` nnc's output is H·S; Keras adds output_padding to another size",
            ));
        }
        "None".to_string()
    } else {
        output_padding
    };
    let (act, after) = activation_arg(app);
    let ctor = format!(
        "layers.Conv2DTranspose({}, kernel_size={}, strides={}, padding={}, output_padding={op}, dilation_rate={}, \
         use_bias={}{act})",
        int(a, "filters")?,
        tuple(a, "kernel", 2)?,
        tuple(a, "stride", 2)?,
        py::string(pad),
        tuple(a, "dilation", 2)?,
        flag(a, "bias")
    );
    let mut y = e.apply(app.name, &trainable(&ctor, app.frozen), params, x);
    if let Some(c) = crop {
        y = e.apply(&format!("{}__crop", app.name), &format!("layers.Cropping2D({c})"), &[], &y);
    }
    then_activation(e, app.name, after, y)
}

/// Max and average pooling. Explicit padding: zeros counted in the average (nnc's PyTorch convention,
/// a `ZeroPadding` layer before Keras's `valid` pooling), ignored by the maximum (padded with −∞).
fn pool(e: &mut Emitter, app: &Application, x: &str) -> Result<String, Refusal> {
    let a = app.args;
    let r = spatial(app)?;
    let (pad, explicit) = padding(app, r)?;
    let max = app.def.name == "max_pool";
    let mut x = x.to_string();
    if let Some(p) = explicit {
        let pad_name = format!("{}__pad", app.name);
        x = if max {
            e.op(&pad_name, "pad", &[("sides", p), ("value", "float('-inf')".into())], &x)
        } else {
            e.apply(&pad_name, &format!("layers.ZeroPadding{r}D({p})"), &[], &x)
        };
    }
    let stride = match a.get("stride") {
        ArgVal::Int(_) | ArgVal::Pair(..) => tuple(a, "stride", r)?,
        _ => tuple(a, "size", r)?,
    };
    let kind = if max { "Max" } else { "Average" };
    let ctor = format!(
        "layers.{kind}Pooling{r}D(pool_size={}, strides={stride}, padding={})",
        tuple(a, "size", r)?,
        py::string(pad)
    );
    Ok(e.apply(app.name, &ctor, &[], &x))
}

/// The constructor of a recurrent layer value (also the inner layer of `bidirectional`).
fn recurrent_ctor(def: &LayerDef, a: &Args) -> Result<String, Refusal> {
    let class = match def.name {
        "simple_rnn" => "SimpleRNN",
        "lstm" => "LSTM",
        "gru" => "GRU",
        other => return Err(Refusal::option("layer", format!("`{other}` is not a recurrent layer"))),
    };
    let activation = match a.get("activation") {
        ArgVal::Layer(lv) => match activation_word(lv) {
            Some(w) => format!(", activation={}", py::string(w)),
            None => {
                return Err(Refusal::option(
                    "activation",
                    format!(
                        "Keras's recurrent cells take an activation by name; `{}` with options has none",
                        lv.layer.name
                    ),
                ));
            }
        },
        _ => String::new(),
    };
    let reset = if def.name == "gru" { format!(", reset_after={}", flag(a, "reset_after")) } else { String::new() };
    Ok(format!(
        "layers.{class}({}, return_sequences={}, return_state={}, go_backwards={}, use_bias={}, dropout={}{activation}\
         {reset})",
        int(a, "units")?,
        flag(a, "sequences"),
        flag(a, "state"),
        flag(a, "go_backwards"),
        flag(a, "bias"),
        py::float(float(a, "dropout", 0.0))
    ))
}

fn recurrent(e: &mut Emitter, app: &Application, params: &[String], x: &str) -> Result<String, Refusal> {
    let ctor = recurrent_ctor(app.def, app.args)?;
    let mut args = x.to_string();
    match app.args.get("initial_state") {
        ArgVal::State(ts) => {
            let mut states = Vec::new();
            for t in ts {
                states.push((app.tensor)(t).ok_or_else(|| Refusal::option("initial_state", "the tensor is unknown"))?);
            }
            args.push_str(&format!(", initial_state=[{}]", states.join(", ")));
        }
        ArgVal::Tensor(t) => {
            let s = (app.tensor)(t).ok_or_else(|| Refusal::option("initial_state", "the tensor is unknown"))?;
            args.push_str(&format!(", initial_state=[{s}]"));
        }
        _ => {}
    }
    Ok(e.apply(app.name, &trainable(&ctor, app.frozen), params, &args))
}

fn bidirectional(e: &mut Emitter, app: &Application, params: &[String], x: &str) -> Result<String, Refusal> {
    let lv = layer_opt(app.args).ok_or_else(|| Refusal::option("layer", "no layer value"))?;
    let inner = layers::bind_value(lv).ok_or_else(|| Refusal::option("layer", "it does not bind"))?;
    if !matches!(inner.get("initial_state"), ArgVal::Absent) {
        return Err(Refusal::option("layer", "Keras's Bidirectional takes initial states at the call, not the layer"));
    }
    let ctor = format!(
        "layers.Bidirectional({}, merge_mode={})",
        recurrent_ctor(lv.layer, &inner)?,
        py::string(match app.args.get("merge") {
            ArgVal::Mode(m) => m,
            _ => "concat",
        })
    );
    Ok(e.apply(app.name, &trainable(&ctor, app.frozen), params, x))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dense_app<'a>(args: &'a Args, params: &'a [ParamSpec]) -> Application<'a> {
        Application {
            def: layers::lookup("dense").unwrap(),
            args,
            name: "fc1",
            inputs: vec!["x".into()],
            input_types: vec![],
            output_types: &[],
            params,
            frozen: false,
            tensor: &|_| None,
        }
    }

    #[test]
    fn every_table_entry_has_a_keras_form() {
        let missing: Vec<&str> = layers::LAYERS.iter().map(|l| l.name).filter(|n| !known_entry(n)).collect();
        assert!(missing.is_empty(), "layers without a Keras form in src/export/keras/layers.rs: {missing:?}");
    }

    #[test]
    fn sides_keep_keras_forms() {
        assert_eq!(sides(&[vec![2]]), "2");
        assert_eq!(sides(&[vec![1], vec![2]]), "(1, 2)");
        assert_eq!(sides(&[vec![0, 1], vec![0, 1]]), "((0, 1), (0, 1))");
    }

    #[test]
    fn frozen_layers_are_not_trainable() {
        assert_eq!(trainable("layers.Flatten()", true), "layers.Flatten(trainable=False)");
        assert_eq!(trainable("layers.Dense(3)", true), "layers.Dense(3, trainable=False)");
        assert_eq!(trainable("layers.Dense(3)", false), "layers.Dense(3)");
    }

    #[test]
    fn a_shared_name_is_one_layer_object() {
        let mut e = Emitter::default();
        let a = e.object("fc", "layers.Dense(3)", &["fc.kernel".into()]);
        let b = e.object("fc", "layers.Dense(3)", &["fc.kernel".into()]);
        let c = e.object("fc", "layers.Dense(4)", &[]);
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(e.lines[0], "layer1 = layers.Dense(3, name=\"fc\")");
        assert_eq!(e.lines[1], "layer2 = layers.Dense(4, name=\"fc__2\")");
        assert_eq!(e.weights, vec![("fc".to_string(), vec!["fc.kernel".to_string()])]);
    }

    #[test]
    fn an_empty_args_constructor_takes_the_name_alone() {
        let mut e = Emitter::default();
        e.object("f", "layers.Flatten()", &[]);
        assert_eq!(e.lines[0], "layer1 = layers.Flatten(name=\"f\")");
        let _ = dense_app;
    }
}
