//! Lowering of each layer to IR primitives. The layer table (`rules.rs`)
//! points every layer at one of these functions; gradients come from
//! `ir::autodiff`, so a layer's backward pass is never written by hand.

use super::args::{ArgVal, Args, Padding};
use super::{Apply, bind_args};
use crate::dims::Dim;
use crate::ir::{Binary, DType, Func, Id, Op, Reduce, Unary, Window};
use crate::types::{LayerValue, Origin, TensorTy, Value};

/// Why a layer could not be lowered to IR; the runtime reports it (the checker accepted the program).
#[derive(Clone, Debug, PartialEq)]
pub enum LowerError {
    /// A construct the IR cannot express yet.
    Unsupported(String),
    /// A tensor (described) has more elements than memory can address.
    TooLarge(String),
}

impl std::fmt::Display for LowerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LowerError::Unsupported(s) => write!(f, "not supported by the runtime yet: {s}"),
            LowerError::TooLarge(s) => write!(f, "{s} is too large: more elements than memory can address"),
        }
    }
}

pub(crate) type LowerFn = fn(&mut LowerCtx) -> Result<Vec<Id>, LowerError>;

/// Everything a layer's lowering needs.
pub(crate) struct LowerCtx<'a> {
    pub f: &'a mut Func,
    /// The layer's table name (`relu`, `lstm`, …).
    pub layer: &'static str,
    pub inputs: Vec<Id>,
    pub args: &'a Args,
    /// Parameter nodes by name relative to the layer (`kernel`, `forward.bias`).
    pub params: Vec<(String, Id)>,
    pub training: bool,
    /// Inside `frozen`: batch norm uses its moving statistics.
    pub frozen: bool,
    /// Recurrent layers carry their state between batches (`LowerOptions::stateful`).
    pub stateful: bool,
    /// Concrete shape of each output.
    pub out_shapes: Vec<Vec<usize>>,
    /// The IR node of a tensor given as an option (`kv = enc`, `initial_state`).
    pub tensor_of: &'a dyn Fn(&TensorTy) -> Option<Id>,
}

impl LowerCtx<'_> {
    fn param(&self, name: &str) -> Result<Id, LowerError> {
        self.params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, id)| *id)
            .ok_or_else(|| LowerError::Unsupported(format!("missing parameter `{name}` of `{}`", self.layer)))
    }
    fn has_param(&self, name: &str) -> bool {
        self.params.iter().any(|(n, _)| n == name)
    }
    /// The first tensor operand. A graph that reaches lowering without one
    /// (a layer applied to a value lowering does not produce) is an error,
    /// not an out-of-bounds panic.
    fn x(&self) -> Result<Id, LowerError> {
        self.inputs
            .first()
            .copied()
            .ok_or_else(|| LowerError::Unsupported(format!("`{}` without an input", self.layer)))
    }
    fn shape(&self, id: Id) -> Vec<usize> {
        self.f.shape(id).to_vec()
    }

    /// Lowers a layer value applied to `input` with parameters under `prefix`.
    fn sub(
        &mut self,
        lv: &LayerValue,
        input: Id,
        prefix: &str,
        overrides: &[(&str, ArgVal)],
    ) -> Result<Vec<Id>, LowerError> {
        let mut args =
            bind_args(lv.layer, &lv.args).map_err(|_| LowerError::Unsupported("invalid layer value".into()))?;
        for (k, v) in overrides {
            args.set(k, v.clone());
        }
        // Output shapes from the layer's own shape rule on the concrete input.
        let in_ty =
            TensorTy::float(self.shape(input).iter().map(|&d| Dim::Known(d as i64)).collect(), Origin::default());
        let mut apply =
            Apply { inputs: vec![in_ty], args: &args, origin: lv.origin, params: Vec::new(), notes: Vec::new() };
        let out = (lv.layer.rule)(&mut apply).map_err(|e| LowerError::Unsupported(format!("{e:?}")))?;
        let out_shapes = concrete_outputs(&out);
        let params = apply
            .params
            .iter()
            .map(|p| {
                let full = if prefix.is_empty() { p.name.clone() } else { format!("{prefix}.{}", p.name) };
                self.param(&full).map(|id| (p.name.clone(), id))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut ctx = LowerCtx {
            f: self.f,
            layer: lv.layer.name,
            inputs: vec![input],
            args: &args,
            params,
            training: self.training,
            frozen: self.frozen,
            stateful: self.stateful,
            out_shapes,
            tensor_of: self.tensor_of,
        };
        (lv.layer.lower)(&mut ctx)
    }

    fn finish(&mut self, y: Id) -> Result<Vec<Id>, LowerError> {
        match self.args.get("activation").clone() {
            ArgVal::Layer(lv) => self.sub(&lv, y, "", &[]),
            _ => Ok(vec![y]),
        }
    }
}

fn concrete_outputs(v: &Value) -> Vec<Vec<usize>> {
    let one = |t: &TensorTy| t.dims.iter().map(|d| d.as_known().unwrap_or(1).max(0) as usize).collect();
    match v {
        Value::Tensor(t) => vec![one(t)],
        Value::Tuple(parts) => parts.iter().filter_map(Value::as_tensor).map(one).collect(),
        _ => vec![],
    }
}

fn known(d: &Dim) -> usize {
    d.as_known().unwrap_or(1).max(0) as usize
}

fn pair(a: &Args, name: &str, default: usize) -> [usize; 2] {
    a.pair(name).map_or([default, default], |(x, y)| [known(&x), known(&y)])
}

/// TensorFlow's `same` padding: (before, after) for one axis.
fn same_pads(input: usize, k: usize, s: usize, d: usize) -> (usize, usize) {
    let out = input.div_ceil(s.max(1));
    let span = d * (k - 1) + 1;
    let total = ((out.saturating_sub(1)) * s + span).saturating_sub(input);
    (total / 2, total - total / 2)
}

fn window(padding: &Padding, hw: [usize; 2], kernel: [usize; 2], stride: [usize; 2], dilation: [usize; 2]) -> Window {
    let pad = match padding {
        Padding::Valid => [0; 4],
        Padding::Explicit(ph, pw) => {
            let (ph, pw) = (known(ph), known(pw));
            [ph, pw, ph, pw]
        }
        Padding::Same => {
            let (t, b) = same_pads(hw[0], kernel[0], stride[0], dilation[0]);
            let (l, r) = same_pads(hw[1], kernel[1], stride[1], dilation[1]);
            [t, l, b, r]
        }
    };
    Window { kernel, stride, dilation, pad }
}

fn bias_add(c: &mut LowerCtx, y: Id) -> Result<Id, LowerError> {
    if c.has_param("bias") {
        let b = c.param("bias")?;
        Ok(c.f.add(y, b))
    } else {
        Ok(y)
    }
}

// ------------------------------------------------------------------ layers

pub(crate) fn dense(c: &mut LowerCtx) -> Result<Vec<Id>, LowerError> {
    let x = c.x()?;
    let xs = c.shape(x);
    let d = *xs.last().unwrap_or(&1);
    let rows = xs[..xs.len().saturating_sub(1)].iter().product::<usize>();
    let k = c.param("kernel")?;
    let units = c.shape(k)[1];
    let x2 = c.f.reshape(x, vec![rows, d]);
    let y = c.f.matmul(x2, k, false, false);
    let y = bias_add(c, y)?;
    let mut out_shape = xs.clone();
    if let Some(l) = out_shape.last_mut() {
        *l = units;
    }
    let y = c.f.reshape(y, out_shape);
    c.finish(y)
}

pub(crate) fn unary(c: &mut LowerCtx) -> Result<Vec<Id>, LowerError> {
    let u = match c.layer {
        "relu" => Unary::Relu,
        "sigmoid" => Unary::Sigmoid,
        "tanh" => Unary::Tanh,
        "gelu" => Unary::Gelu,
        "softplus" => Unary::Softplus,
        "exp" => Unary::Exp,
        "log" => Unary::Log,
        "sqrt" => Unary::Sqrt,
        "abs" => Unary::Abs,
        other => return Err(LowerError::Unsupported(other.into())),
    };
    Ok(vec![c.f.unary(u, c.x()?)])
}

pub(crate) fn elu(c: &mut LowerCtx) -> Result<Vec<Id>, LowerError> {
    let a = c.args.float("alpha").unwrap_or(1.0);
    Ok(vec![c.f.op1(Op::Elu(a), c.x()?)])
}

pub(crate) fn leaky_relu(c: &mut LowerCtx) -> Result<Vec<Id>, LowerError> {
    let a = c.args.float("alpha").unwrap_or(0.3);
    Ok(vec![c.f.op1(Op::LeakyRelu(a), c.x()?)])
}

fn axis_of(c: &LowerCtx, name: &str, rank: usize) -> usize {
    match c.args.get(name) {
        ArgVal::Axes(a) if !a.is_empty() => {
            let v = a[0];
            if v < 0 { (v + rank as i64) as usize } else { v as usize }
        }
        _ => rank - 1,
    }
}

pub(crate) fn softmax(c: &mut LowerCtx) -> Result<Vec<Id>, LowerError> {
    let rank = c.shape(c.x()?).len();
    let axis = axis_of(c, "axis", rank);
    let op = if c.layer == "softmax" { Op::Softmax(axis) } else { Op::LogSoftmax(axis) };
    Ok(vec![c.f.op1(op, c.x()?)])
}

pub(crate) fn prelu(c: &mut LowerCtx) -> Result<Vec<Id>, LowerError> {
    // max(x, 0) + alpha·min(x, 0)
    let x = c.x()?;
    let alpha = c.param("alpha")?;
    let zero = c.f.scalar(0.0);
    let pos = c.f.binary(Binary::Max, x, zero);
    let neg = c.f.binary(Binary::Min, x, zero);
    let scaled = c.f.mul(neg, alpha);
    Ok(vec![c.f.add(pos, scaled)])
}

/// `conv1d`/`conv2d` (with `groups`), `depthwise_conv1d/2d` and
/// `separable_conv1d/2d`: each is one grouped `Conv2d` (a depthwise one has
/// a group per input channel), a separable one then a 1×1 pointwise one.
pub(crate) fn conv(c: &mut LowerCtx) -> Result<Vec<Id>, LowerError> {
    let x = c.x()?;
    let xs = c.shape(x);
    let separable = c.layer.starts_with("separable");
    let depthwise = separable || c.layer.starts_with("depthwise");
    let k = c.param(if separable { "depthwise_kernel" } else { "kernel" })?;
    let ks = c.shape(k);
    let one_d = xs.len() == 3;
    let (kh, kw) = if one_d { (1, ks[0]) } else { (ks[0], ks[1]) };
    // Keras's kernels: [KH, KW, C/G, F]; depthwise [KH, KW, C, M], which has
    // the memory order of the grouped [KH, KW, 1, C·M] with G = C.
    let (kin, kout) = (ks[ks.len() - 2], ks[ks.len() - 1]);
    let channels = xs[xs.len() - 1];
    let (groups, k4s) =
        if depthwise { (channels, [kh, kw, 1, kin * kout]) } else { (channels / kin.max(1), [kh, kw, kin, kout]) };
    if kin == 0 || groups == 0 || !channels.is_multiple_of(groups) || !k4s[3].is_multiple_of(groups) {
        return Err(LowerError::Unsupported(format!("{channels} channels in groups of kernel {ks:?}")));
    }
    // 1-D convolutions run as 2-D ones with height 1.
    let x4 = if one_d { c.f.reshape(x, vec![xs[0], 1, xs[1], xs[2]]) } else { x };
    let k4 = c.f.reshape(k, k4s.to_vec());
    let (hw, kernel, stride, dilation) = if one_d {
        ([1, xs[1]], [1, kw], [1, pair(c.args, "stride", 1)[0]], [1, pair(c.args, "dilation", 1)[0]])
    } else {
        ([xs[1], xs[2]], [kh, kw], pair(c.args, "stride", 1), pair(c.args, "dilation", 1))
    };
    let mut padding = c.args.padding("padding");
    if one_d && let Padding::Explicit(_, p) = &padding {
        padding = Padding::Explicit(Dim::Known(0), p.clone());
    }
    let window = window(&padding, hw, kernel, stride, dilation);
    let out = c.out_shapes[0].clone();
    let filters = *out.last().unwrap_or(&1);
    let [oh, ow] = window.out(hw[0], hw[1]);
    let t = c.f.current_layer;
    let mut y = c.f.push(Op::Conv2d { window, groups }, vec![x4, k4], vec![xs[0], oh, ow, k4s[3]], DType::F32, t);
    if separable {
        let pk = c.param("pointwise_kernel")?;
        let pk = c.f.reshape(pk, vec![1, 1, k4s[3], filters]);
        let one = Window { kernel: [1, 1], stride: [1, 1], dilation: [1, 1], pad: [0; 4] };
        let o4 = vec![xs[0], oh, ow, filters];
        y = c.f.push(Op::Conv2d { window: one, groups: 1 }, vec![y, pk], o4, DType::F32, t);
    }
    let y = bias_add(c, y)?;
    let y = c.f.reshape(y, out);
    c.finish(y)
}

pub(crate) fn conv_transpose(c: &mut LowerCtx) -> Result<Vec<Id>, LowerError> {
    let x = c.x()?;
    let xs = c.shape(x);
    let k = c.param("kernel")?; // [KH, KW, filters, C]
    let ks = c.shape(k);
    let out = c.out_shapes[0].clone();
    let kernel = [ks[0], ks[1]];
    let stride = pair(c.args, "stride", 1);
    let dilation = pair(c.args, "dilation", 1);
    // The forward convolution this is the input-gradient of maps `out` to `x`.
    let w = match c.args.padding("padding") {
        Padding::Same => window(&Padding::Same, [out[1], out[2]], kernel, stride, dilation),
        Padding::Explicit(ph, pw) => {
            let (ph, pw) = (known(&ph), known(&pw));
            // Extra rows from output_padding go to the bottom/right.
            let extra = [
                out[1] + 2 * ph - ((xs[1] - 1) * stride[0] + dilation[0] * (kernel[0] - 1) + 1),
                out[2] + 2 * pw - ((xs[2] - 1) * stride[1] + dilation[1] * (kernel[1] - 1) + 1),
            ];
            Window { kernel, stride, dilation, pad: [ph, pw, ph + extra[0], pw + extra[1]] }
        }
        Padding::Valid => {
            let extra = [
                out[1] - ((xs[1] - 1) * stride[0] + dilation[0] * (kernel[0] - 1) + 1),
                out[2] - ((xs[2] - 1) * stride[1] + dilation[1] * (kernel[1] - 1) + 1),
            ];
            Window { kernel, stride, dilation, pad: [0, 0, extra[0], extra[1]] }
        }
    };
    let t = c.f.current_layer;
    let y = c.f.push(Op::Conv2dInputGrad { window: w, groups: 1 }, vec![x, k], out, DType::F32, t);
    let y = bias_add(c, y)?;
    c.finish(y)
}

pub(crate) fn pool(c: &mut LowerCtx) -> Result<Vec<Id>, LowerError> {
    let x = c.x()?;
    let xs = c.shape(x);
    let one_d = xs.len() == 3;
    let size = pair(c.args, "size", 2);
    let stride = match c.args.get("stride") {
        ArgVal::Int(_) | ArgVal::Pair(..) => pair(c.args, "stride", 1),
        _ => size,
    };
    let (x4, hw, kernel, stride) = if one_d {
        (c.f.reshape(x, vec![xs[0], 1, xs[1], xs[2]]), [1, xs[1]], [1, size[0]], [1, stride[0]])
    } else {
        (x, [xs[1], xs[2]], size, stride)
    };
    let mut padding = c.args.padding("padding");
    if one_d && let Padding::Explicit(_, p) = &padding {
        padding = Padding::Explicit(Dim::Known(0), p.clone());
    }
    let w = window(&padding, hw, kernel, stride, [1, 1]);
    let out = c.out_shapes[0].clone();
    let o4 = if one_d { vec![out[0], 1, out[1], out[2]] } else { out.clone() };
    let op = if c.layer == "max_pool" {
        Op::MaxPool(w)
    } else {
        // Integer padding is counted (PyTorch); `same` padding is not (Keras).
        Op::AvgPool { window: w, count_pad: matches!(padding, Padding::Explicit(..)) }
    };
    let t = c.f.current_layer;
    let y = c.f.push(op, vec![x4], o4, DType::F32, t);
    Ok(vec![c.f.reshape(y, out)])
}

pub(crate) fn global_pool(c: &mut LowerCtx) -> Result<Vec<Id>, LowerError> {
    let rank = c.shape(c.x()?).len();
    let axes: Vec<usize> = (1..rank - 1).collect();
    let op = if c.layer == "global_max_pool" { Reduce::Max } else { Reduce::Mean };
    Ok(vec![c.f.reduce(op, c.x()?, axes, c.args.bool("keepdims"))])
}

pub(crate) fn upsample(c: &mut LowerCtx) -> Result<Vec<Id>, LowerError> {
    let x = c.x()?;
    let xs = c.shape(x);
    let size = pair(c.args, "size", 2);
    let out = c.out_shapes[0].clone();
    let t = c.f.current_layer;
    if xs.len() == 3 {
        let x4 = c.f.reshape(x, vec![xs[0], 1, xs[1], xs[2]]);
        let y = c.f.push(Op::Upsample([1, size[0]]), vec![x4], vec![out[0], 1, out[1], out[2]], DType::F32, t);
        return Ok(vec![c.f.reshape(y, out)]);
    }
    Ok(vec![c.f.push(Op::Upsample(size), vec![x], out, DType::F32, t)])
}

pub(crate) fn reshape(c: &mut LowerCtx) -> Result<Vec<Id>, LowerError> {
    let out = c.out_shapes[0].clone();
    Ok(vec![c.f.reshape(c.x()?, out)])
}

pub(crate) fn concat(c: &mut LowerCtx) -> Result<Vec<Id>, LowerError> {
    let rank = c.shape(c.x()?).len();
    let axis = axis_of(c, "axis", rank);
    Ok(vec![c.f.concat(c.inputs.clone(), axis)])
}

/// Normalises `x` over `axes` with the given statistics.
fn normalise(c: &mut LowerCtx, x: Id, mean: Id, var: Id, eps: f64) -> Id {
    let centered = c.f.sub(x, mean);
    let v = c.f.add_scalar(var, eps);
    let sd = c.f.unary(Unary::Sqrt, v);
    c.f.div(centered, sd)
}

fn moments(c: &mut LowerCtx, x: Id, axes: Vec<usize>, keep: bool) -> (Id, Id) {
    let mean = c.f.reduce(Reduce::Mean, x, axes.clone(), keep);
    let mk = if keep {
        mean
    } else {
        let mut s = c.shape(x);
        for &a in &axes {
            s[a] = 1;
        }
        c.f.reshape(mean, s)
    };
    let d = c.f.sub(x, mk);
    let sq = c.f.unary(Unary::Square, d);
    let var = c.f.reduce(Reduce::Mean, sq, axes, keep);
    (mean, var)
}

fn param_index(f: &Func, id: Id) -> Option<usize> {
    match f.nodes[id as usize].op {
        Op::Param(i) => Some(i),
        _ => None,
    }
}

pub(crate) fn batch_norm(c: &mut LowerCtx) -> Result<Vec<Id>, LowerError> {
    let x = c.x()?;
    let rank = c.shape(x).len();
    let eps = c.args.float("epsilon").unwrap_or(1e-3);
    let momentum = c.args.float("momentum").unwrap_or(0.99);
    let (mm, mv) = (c.param("moving_mean")?, c.param("moving_var")?);
    let y = if c.training && !c.frozen {
        let axes: Vec<usize> = (0..rank - 1).collect();
        let (mean, var) = moments(c, x, axes, false);
        if let (Some(im), Some(iv)) = (param_index(c.f, mm), param_index(c.f, mv)) {
            c.f.moving_updates.push((im, mean, momentum));
            c.f.moving_updates.push((iv, var, momentum));
        }
        normalise(c, x, mean, var, eps)
    } else {
        normalise(c, x, mm, mv, eps)
    };
    scale_shift(c, y, None)
}

/// `y·gamma + beta` with whichever of the two the layer has (`scale = false`, `center = false`),
/// reshaped to `aligned` for broadcasting when given.
fn scale_shift(c: &mut LowerCtx, mut y: Id, aligned: Option<Vec<usize>>) -> Result<Vec<Id>, LowerError> {
    for (name, mul) in [("gamma", true), ("beta", false)] {
        if c.has_param(name) {
            let mut p = c.param(name)?;
            if let Some(shape) = &aligned {
                p = c.f.reshape(p, shape.clone());
            }
            y = if mul { c.f.mul(y, p) } else { c.f.add(y, p) };
        }
    }
    Ok(vec![y])
}

pub(crate) fn layer_norm(c: &mut LowerCtx) -> Result<Vec<Id>, LowerError> {
    let x = c.x()?;
    let xs = c.shape(x);
    let rank = xs.len();
    let eps = c.args.float("epsilon").unwrap_or(1e-3);
    let mut axes: Vec<usize> = match c.args.get("axes") {
        ArgVal::Axes(a) => a.iter().map(|&v| if v < 0 { (v + rank as i64) as usize } else { v as usize }).collect(),
        _ => vec![rank - 1],
    };
    axes.sort();
    axes.dedup();
    let (mean, var) = moments(c, x, axes.clone(), true);
    let y = normalise(c, x, mean, var, eps);
    // gamma/beta have the normalised axes' shape; align them for broadcasting.
    let aligned: Vec<usize> = (0..rank).map(|i| if axes.contains(&i) { xs[i] } else { 1 }).collect();
    scale_shift(c, y, Some(aligned))
}

pub(crate) fn instance_norm(c: &mut LowerCtx) -> Result<Vec<Id>, LowerError> {
    let x = c.x()?;
    let rank = c.shape(x).len();
    let eps = c.args.float("epsilon").unwrap_or(1e-3);
    let (mean, var) = moments(c, x, (1..rank - 1).collect(), true);
    let mut y = normalise(c, x, mean, var, eps);
    if c.has_param("gamma") {
        let g = c.param("gamma")?;
        let b = c.param("beta")?;
        y = c.f.mul(y, g);
        y = c.f.add(y, b);
    }
    Ok(vec![y])
}

pub(crate) fn dropout(c: &mut LowerCtx) -> Result<Vec<Id>, LowerError> {
    let x = c.x()?;
    let rate = c.args.float("rate").unwrap_or(0.0);
    if !c.training || rate == 0.0 {
        return Ok(vec![x]);
    }
    let t = c.f.current_layer;
    // With a noise shape, one draw per position of its non-1 axes, broadcast along the others.
    let xs = c.shape(x);
    let mask_shape = match c.args.get("noise_shape") {
        ArgVal::Shape(ns) => xs.iter().zip(ns).map(|(&d, n)| if n.as_known() == Some(1) { 1 } else { d }).collect(),
        _ => xs,
    };
    let u = c.f.push(Op::Random { normal: false }, vec![], mask_shape, DType::F32, t);
    let r = c.f.scalar(rate);
    let keep = c.f.binary(Binary::Greater, u, r);
    let kept = c.f.mul(x, keep);
    Ok(vec![c.f.mul_scalar(kept, 1.0 / (1.0 - rate))])
}

pub(crate) fn gaussian_noise(c: &mut LowerCtx) -> Result<Vec<Id>, LowerError> {
    let x = c.x()?;
    let sd = c.args.float("stddev").unwrap_or(0.0);
    if !c.training || sd == 0.0 {
        return Ok(vec![x]);
    }
    let t = c.f.current_layer;
    let n = c.f.push(Op::Random { normal: true }, vec![], c.shape(x), DType::F32, t);
    let noise = c.f.mul_scalar(n, sd);
    Ok(vec![c.f.add(x, noise)])
}

pub(crate) fn embedding(c: &mut LowerCtx) -> Result<Vec<Id>, LowerError> {
    let table = c.param("embeddings")?;
    let out = c.out_shapes[0].clone();
    let t = c.f.current_layer;
    Ok(vec![c.f.push(Op::Gather, vec![table, c.x()?], out, DType::F32, t)])
}

pub(crate) fn positional_embedding(c: &mut LowerCtx) -> Result<Vec<Id>, LowerError> {
    let x = c.x()?;
    let t_len = c.shape(x)[1];
    let table = c.param("embeddings")?;
    let pos = c.f.slice(table, 0, 0, t_len);
    Ok(vec![c.f.add(x, pos)])
}

pub(crate) fn positional_encoding(c: &mut LowerCtx) -> Result<Vec<Id>, LowerError> {
    let x = c.x()?;
    let xs = c.shape(x);
    let (t_len, d) = (xs[1], xs[2]);
    // Vaswani et al.: sin on even features, cos on odd, wavelengths 10000^(2i/d).
    let mut table = Vec::with_capacity(t_len * d);
    for p in 0..t_len {
        for i in 0..d {
            let angle = p as f64 / 10000f64.powf((2 * (i / 2)) as f64 / d as f64);
            table.push(if i % 2 == 0 { angle.sin() } else { angle.cos() } as f32);
        }
    }
    let t = c.f.current_layer;
    let pe = c.f.push(Op::Constant(table), vec![], vec![t_len, d], DType::F32, t);
    Ok(vec![c.f.add(x, pe)])
}

/// A recurrent layer, unrolled over time.
pub(crate) fn recurrent(c: &mut LowerCtx) -> Result<Vec<Id>, LowerError> {
    let x = c.x()?;
    let xs = c.shape(x);
    let (n, t_len, d) = (xs[0], xs[1], xs[2]);
    let k = c.param("kernel")?;
    let rk = c.param("recurrent_kernel")?;
    let m = c.shape(rk)[0];
    let gates = c.shape(k)[1] / m.max(1);
    let lstm = c.layer == "lstm";
    let gru = c.layer == "gru";
    let reset_after = gru && c.args.bool("reset_after");
    let backwards = c.args.bool("go_backwards");
    // Input projections for all steps at once: [N·T, D] × [D, gM].
    let x2 = c.f.reshape(x, vec![n * t_len, d]);
    let mut xw = c.f.matmul(x2, k, false, false);
    let (mut in_bias, mut rec_bias) = (None, None);
    if c.has_param("bias") {
        let b = c.param("bias")?;
        if reset_after {
            let bi = c.f.slice(b, 0, 0, 1);
            let br = c.f.slice(b, 0, 1, 2);
            in_bias = Some(c.f.reshape(bi, vec![gates * m]));
            rec_bias = Some(c.f.reshape(br, vec![gates * m]));
        } else {
            in_bias = Some(b);
        }
    }
    if let Some(b) = in_bias {
        xw = c.f.add(xw, b);
    }
    let xw = c.f.reshape(xw, vec![n, t_len, gates * m]);
    // Stateful: the states enter as inputs named after the cell's parameters
    // (unique, and the same for every batch size) and leave in `f.states`.
    let carried = match c.args.get("initial_state") {
        ArgVal::State(_) => None,
        _ if c.stateful => Some(state_name(c, k)?),
        _ => None,
    };
    let zeros_or_carried = |c: &mut LowerCtx, which: &str| match &carried {
        Some(base) => c.f.input(&format!("{base}.{which}"), vec![n, m], DType::F32),
        None => c.f.fill(0.0, vec![n, m]),
    };
    let (mut h, mut cell) = match c.args.get("initial_state").clone() {
        ArgVal::State(states) => {
            let h = (c.tensor_of)(&states[0]).ok_or_else(|| LowerError::Unsupported("initial_state".into()))?;
            let cs = if lstm { states.get(1).and_then(|s| (c.tensor_of)(s)) } else { None };
            (h, cs)
        }
        _ => (zeros_or_carried(c, "state_h"), None),
    };
    if lstm && cell.is_none() {
        cell = Some(zeros_or_carried(c, "state_c"));
    }
    let mut seq = Vec::with_capacity(t_len);
    for step in 0..t_len {
        let t = if backwards { t_len - 1 - step } else { step };
        let xt = c.f.slice(xw, 1, t, t + 1);
        let xt = c.f.reshape(xt, vec![n, gates * m]);
        if gru && !reset_after {
            h = gru_reset_before(c, xt, rk, h, m)?;
        } else {
            let mut hr = c.f.matmul(h, rk, false, false);
            if let Some(b) = rec_bias {
                hr = c.f.add(hr, b);
            }
            if lstm {
                let prev = cell.expect("lstm has a cell state");
                let (h2, cs) = lstm_cell(c, xt, hr, prev, m)?;
                (h, cell) = (h2, Some(cs));
            } else if gru {
                h = gru_reset_after(c, xt, hr, h, m)?;
            } else {
                let pre = c.f.add(xt, hr);
                h = cell_activation(c, pre)?;
            }
        }
        seq.push(h);
    }
    let o = if c.args.bool("sequences") {
        let parts: Vec<Id> = seq.iter().map(|&s| c.f.reshape(s, vec![n, 1, m])).collect();
        c.f.concat(parts, 1)
    } else {
        h
    };
    if let Some(base) = carried {
        c.f.states.push((format!("{base}.state_h"), h));
        if let Some(cs) = cell {
            c.f.states.push((format!("{base}.state_c"), cs));
        }
    }
    let mut outs = vec![o];
    if c.args.bool("state") {
        outs.push(h);
        if let Some(cs) = cell {
            outs.push(cs);
        }
    }
    Ok(outs)
}

/// The cell's `activation` (tanh by default) applied to `v`.
fn cell_activation(c: &mut LowerCtx, v: Id) -> Result<Id, LowerError> {
    match c.args.get("activation").clone() {
        ArgVal::Layer(lv) => Ok(c.sub(&lv, v, "", &[])?[0]),
        _ => Ok(c.f.unary(Unary::Tanh, v)),
    }
}

/// One LSTM step from the input projection `xt` and recurrent projection `hr` (gates i, f, c, o):
/// the new (h, c).
fn lstm_cell(c: &mut LowerCtx, xt: Id, hr: Id, prev: Id, m: usize) -> Result<(Id, Id), LowerError> {
    let z = c.f.add(xt, hr);
    let zi = c.f.slice(z, 1, 0, m);
    let zf = c.f.slice(z, 1, m, 2 * m);
    let zc = c.f.slice(z, 1, 2 * m, 3 * m);
    let zo = c.f.slice(z, 1, 3 * m, 4 * m);
    let i = c.f.unary(Unary::Sigmoid, zi);
    let fg = c.f.unary(Unary::Sigmoid, zf);
    let g = cell_activation(c, zc)?;
    let o = c.f.unary(Unary::Sigmoid, zo);
    let kept = c.f.mul(fg, prev);
    let new = c.f.mul(i, g);
    let cs = c.f.add(kept, new);
    let tc = cell_activation(c, cs)?;
    Ok((c.f.mul(o, tc), cs))
}

/// One GRU step with the reset gate applied after the recurrent product (Keras's default, `reset_after`).
fn gru_reset_after(c: &mut LowerCtx, xt: Id, hr: Id, h: Id, m: usize) -> Result<Id, LowerError> {
    let xz = c.f.slice(xt, 1, 0, m);
    let xr = c.f.slice(xt, 1, m, 2 * m);
    let xh = c.f.slice(xt, 1, 2 * m, 3 * m);
    let rz = c.f.slice(hr, 1, 0, m);
    let rr = c.f.slice(hr, 1, m, 2 * m);
    let rh = c.f.slice(hr, 1, 2 * m, 3 * m);
    let zp = c.f.add(xz, rz);
    let z = c.f.unary(Unary::Sigmoid, zp);
    let rp = c.f.add(xr, rr);
    let r = c.f.unary(Unary::Sigmoid, rp);
    let rrh = c.f.mul(r, rh);
    let cand_pre = c.f.add(xh, rrh);
    let cand = cell_activation(c, cand_pre)?;
    Ok(gru_mix(c, z, h, cand))
}

/// One GRU step with the reset gate applied before the recurrent product of the candidate.
fn gru_reset_before(c: &mut LowerCtx, xt: Id, rk: Id, h: Id, m: usize) -> Result<Id, LowerError> {
    let rk_zr = c.f.slice(rk, 1, 0, 2 * m);
    let rk_h = c.f.slice(rk, 1, 2 * m, 3 * m);
    let hz = c.f.matmul(h, rk_zr, false, false);
    let xzr = c.f.slice(xt, 1, 0, 2 * m);
    let zr_pre = c.f.add(xzr, hz);
    let zr = c.f.unary(Unary::Sigmoid, zr_pre);
    let z = c.f.slice(zr, 1, 0, m);
    let r = c.f.slice(zr, 1, m, 2 * m);
    let rh = c.f.mul(r, h);
    let rec = c.f.matmul(rh, rk_h, false, false);
    let xh = c.f.slice(xt, 1, 2 * m, 3 * m);
    let cand_pre = c.f.add(xh, rec);
    let cand = cell_activation(c, cand_pre)?;
    Ok(gru_mix(c, z, h, cand))
}

/// The name under which a stateful recurrent cell's states are carried: its
/// kernel's parameter name without `.kernel` (`h.lstm`, `h.bidirectional.forward`).
fn state_name(c: &LowerCtx, kernel: Id) -> Result<String, LowerError> {
    let Op::Param(p) = c.f.nodes[kernel as usize].op else {
        return Err(LowerError::Unsupported("a recurrent kernel that is not a parameter".into()));
    };
    let name = &c.f.params[p].name;
    let base = name.strip_suffix(".kernel").unwrap_or(name).to_string();
    if c.f.states.iter().any(|(s, _)| s.starts_with(&format!("{base}.state_"))) {
        // One state per cell: a layer applied twice would need two.
        return Err(LowerError::Unsupported(format!(
            "`stateful = true` with the recurrent layer `{base}` applied more than once"
        )));
    }
    Ok(base)
}

/// h = z·h_prev + (1 − z)·candidate
fn gru_mix(c: &mut LowerCtx, z: Id, h: Id, cand: Id) -> Id {
    let zh = c.f.mul(z, h);
    let one = c.f.scalar(1.0);
    let nz = c.f.sub(one, z);
    let nc = c.f.mul(nz, cand);
    c.f.add(zh, nc)
}

pub(crate) fn bidirectional(c: &mut LowerCtx) -> Result<Vec<Id>, LowerError> {
    let ArgVal::Layer(lv) = c.args.get("layer").clone() else {
        return Err(LowerError::Unsupported("bidirectional without a layer".into()));
    };
    let x = c.x()?;
    let fwd = c.sub(&lv, x, "forward", &[])?;
    let bwd = c.sub(&lv, x, "backward", &[("go_backwards", ArgVal::Bool(true))])?;
    let inner_args =
        bind_args(lv.layer, &lv.args).map_err(|_| LowerError::Unsupported("invalid layer value".into()))?;
    let mut b0 = bwd[0];
    if inner_args.bool("sequences") {
        // The backward half is re-aligned to forward time.
        let bs = c.shape(b0);
        let steps: Vec<Id> = (0..bs[1]).rev().map(|t| c.f.slice(b0, 1, t, t + 1)).collect();
        b0 = c.f.concat(steps, 1);
    }
    let merged = match c.args.mode("merge") {
        "sum" => c.f.add(fwd[0], b0),
        "mul" => c.f.mul(fwd[0], b0),
        "ave" => {
            let s = c.f.add(fwd[0], b0);
            c.f.mul_scalar(s, 0.5)
        }
        _ => {
            let rank = c.shape(fwd[0]).len();
            c.f.concat(vec![fwd[0], b0], rank - 1)
        }
    };
    let mut outs = vec![merged];
    outs.extend(fwd[1..].iter().copied());
    outs.extend(bwd[1..].iter().copied());
    Ok(outs)
}

pub(crate) fn multi_head_attention(c: &mut LowerCtx) -> Result<Vec<Id>, LowerError> {
    let q_in = c.x()?;
    let qs = c.shape(q_in);
    let kv_in = match c.args.get("kv").clone() {
        ArgVal::Tensor(t) => (c.tensor_of)(&t).ok_or_else(|| LowerError::Unsupported("kv".into()))?,
        _ => q_in,
    };
    let ks = c.shape(kv_in);
    let (n, t_len, d) = (qs[0], qs[1], qs[2]);
    let (s_len, dk) = (ks[1], ks[2]);
    let wq = c.param("query.kernel")?;
    let heads = c.shape(wq)[1];
    let key_dim = c.shape(wq)[2];
    let value_dim = c.shape(c.param("value.kernel")?)[2];
    let project = |c: &mut LowerCtx,
                   x: Id,
                   rows: usize,
                   len: usize,
                   din: usize,
                   name: &str,
                   hd: usize|
     -> Result<Id, LowerError> {
        let w = c.param(&format!("{name}.kernel"))?;
        let b = c.param(&format!("{name}.bias"))?;
        let x2 = c.f.reshape(x, vec![rows * len, din]);
        let w2 = c.f.reshape(w, vec![din, heads * hd]);
        let y = c.f.matmul(x2, w2, false, false);
        let b2 = c.f.reshape(b, vec![heads * hd]);
        let y = c.f.add(y, b2);
        let y = c.f.reshape(y, vec![rows, len, heads, hd]);
        let y = c.f.transpose(y, vec![0, 2, 1, 3]);
        Ok(c.f.reshape(y, vec![rows * heads, len, hd]))
    };
    let q = project(c, q_in, n, t_len, d, "query", key_dim)?;
    let k = project(c, kv_in, n, s_len, dk, "key", key_dim)?;
    let v = project(c, kv_in, n, s_len, dk, "value", value_dim)?;
    let scores = c.f.matmul(q, k, false, true);
    let mut scores = c.f.mul_scalar(scores, 1.0 / (key_dim as f64).sqrt());
    if c.args.bool("causal") {
        let cells = t_len.checked_mul(s_len).filter(|&n| n <= crate::ir::MAX_ELEMENTS);
        let cells = cells.ok_or_else(|| LowerError::TooLarge(format!("the causal mask [{t_len}, {s_len}]")))?;
        let mut mask = vec![0f32; cells];
        for i in 0..t_len {
            for j in (i + 1)..s_len {
                mask[i * s_len + j] = -1e9;
            }
        }
        let t = c.f.current_layer;
        let m = c.f.push(Op::Constant(mask), vec![], vec![t_len, s_len], DType::F32, t);
        scores = c.f.add(scores, m);
    }
    let mut p = c.f.op1(Op::Softmax(2), scores);
    let rate = c.args.float("dropout").unwrap_or(0.0);
    if c.training && rate > 0.0 {
        let t = c.f.current_layer;
        let u = c.f.push(Op::Random { normal: false }, vec![], c.shape(p), DType::F32, t);
        let r = c.f.scalar(rate);
        let keep = c.f.binary(Binary::Greater, u, r);
        let kept = c.f.mul(p, keep);
        p = c.f.mul_scalar(kept, 1.0 / (1.0 - rate));
    }
    let o = c.f.matmul(p, v, false, false); // [N·h, T, v]
    let o = c.f.reshape(o, vec![n, heads, t_len, value_dim]);
    let o = c.f.transpose(o, vec![0, 2, 1, 3]);
    let o = c.f.reshape(o, vec![n * t_len, heads * value_dim]);
    let wo = c.param("output.kernel")?;
    let wo = c.f.reshape(wo, vec![heads * value_dim, d]);
    let y = c.f.matmul(o, wo, false, false);
    let bo = c.param("output.bias")?;
    let y = c.f.add(y, bo);
    Ok(vec![c.f.reshape(y, vec![n, t_len, d])])
}

pub(crate) fn repeat(c: &mut LowerCtx) -> Result<Vec<Id>, LowerError> {
    let ArgVal::Layer(lv) = c.args.get("layer").clone() else {
        return Err(LowerError::Unsupported("repeat without a layer".into()));
    };
    let n = c.args.int("n").and_then(|d| d.as_known()).unwrap_or(0);
    let mut x = c.x()?;
    for i in 0..n {
        x = c.sub(&lv, x, &i.to_string(), &[])?[0];
    }
    Ok(vec![x])
}

pub(crate) fn one_hot(c: &mut LowerCtx) -> Result<Vec<Id>, LowerError> {
    let depth = c.args.int("depth").map_or(1, |d| known(&d));
    let out = c.out_shapes[0].clone();
    let t = c.f.current_layer;
    Ok(vec![c.f.push(Op::OneHot(depth), vec![c.x()?], out, DType::F32, t)])
}

pub(crate) fn clip(c: &mut LowerCtx) -> Result<Vec<Id>, LowerError> {
    let lo = c.f.scalar(c.args.float("lo").unwrap_or(f64::NEG_INFINITY));
    let hi = c.f.scalar(c.args.float("hi").unwrap_or(f64::INFINITY));
    let a = c.f.binary(Binary::Max, c.x()?, lo);
    Ok(vec![c.f.binary(Binary::Min, a, hi)])
}

pub(crate) fn reduce(c: &mut LowerCtx) -> Result<Vec<Id>, LowerError> {
    let x = c.x()?;
    let rank = c.shape(x).len();
    let axes: Vec<usize> = match c.args.get("axis") {
        ArgVal::Axes(a) => a.iter().map(|&v| if v < 0 { (v + rank as i64) as usize } else { v as usize }).collect(),
        _ => (0..rank).collect(),
    };
    let op = if c.layer == "mean" { Reduce::Mean } else { Reduce::Sum };
    Ok(vec![c.f.reduce(op, x, axes, c.args.bool("keepdims"))])
}

pub(crate) fn random(c: &mut LowerCtx) -> Result<Vec<Id>, LowerError> {
    let out = c.out_shapes[0].clone();
    let t = c.f.current_layer;
    let normal = c.layer == "normal";
    let r = c.f.push(Op::Random { normal }, vec![], out, DType::F32, t);
    Ok(vec![if normal {
        let sd = c.args.float("std").unwrap_or(1.0);
        let mean = c.args.float("mean").unwrap_or(0.0);
        let s = c.f.mul_scalar(r, sd);
        c.f.add_scalar(s, mean)
    } else {
        let lo = c.args.float("lo").unwrap_or(0.0);
        let hi = c.args.float("hi").unwrap_or(1.0);
        let s = c.f.mul_scalar(r, hi - lo);
        c.f.add_scalar(s, lo)
    }])
}

// ------------------------------------------------------------------ issue 11: activations, borders, scaling

/// min(max(x, 0), 6)
fn relu6_of(c: &mut LowerCtx, x: Id) -> Id {
    let zero = c.f.scalar(0.0);
    let six = c.f.scalar(6.0);
    let pos = c.f.binary(Binary::Max, x, zero);
    c.f.binary(Binary::Min, pos, six)
}

/// Keras's `ReLU(max_value, negative_slope, threshold)`, composed as Keras composes it
/// (`keras.src.activations.ReLU.static_call`), so values and gradients agree at every point.
pub(crate) fn relu(c: &mut LowerCtx) -> Result<Vec<Id>, LowerError> {
    let x = c.x()?;
    let max_value = c.args.float("max_value");
    let slope = c.args.float("negative_slope").unwrap_or(0.0);
    let threshold = c.args.float("threshold").unwrap_or(0.0);
    if slope == 0.0 && max_value.is_none() && threshold == 0.0 {
        return Ok(vec![c.f.unary(Unary::Relu, x)]);
    }
    if slope != 0.0 && max_value.is_none() && threshold == 0.0 {
        return Ok(vec![c.f.op1(Op::LeakyRelu(slope), x)]);
    }
    let negative = if slope != 0.0 {
        // relu(threshold − x)
        let th = c.f.scalar(threshold);
        let d = c.f.sub(th, x);
        Some(c.f.unary(Unary::Relu, d))
    } else {
        None
    };
    let mut clip = max_value;
    let mut y = if threshold != 0.0 {
        // x where x > threshold, else 0
        let th = c.f.scalar(threshold);
        let above = c.f.binary(Binary::Greater, x, th);
        c.f.mul(x, above)
    } else if max_value == Some(6.0) {
        clip = None;
        relu6_of(c, x)
    } else {
        c.f.unary(Unary::Relu, x)
    };
    if let Some(m) = clip {
        let zero = c.f.scalar(0.0);
        let hi = c.f.scalar(m);
        let lo = c.f.binary(Binary::Max, y, zero);
        y = c.f.binary(Binary::Min, lo, hi);
    }
    if let Some(neg) = negative {
        let scaled = c.f.mul_scalar(neg, slope);
        y = c.f.sub(y, scaled);
    }
    Ok(vec![y])
}

/// The activations without options (`relu6`, `swish`, `hard_sigmoid`, …), from existing primitives.
pub(crate) fn activation(c: &mut LowerCtx) -> Result<Vec<Id>, LowerError> {
    let x = c.x()?;
    let hard_sigmoid = |c: &mut LowerCtx| {
        let shifted = c.f.add_scalar(x, 3.0);
        let r = relu6_of(c, shifted);
        c.f.mul_scalar(r, 1.0 / 6.0)
    };
    let y = match c.layer {
        "relu6" => relu6_of(c, x),
        "swish" | "silu" => {
            let s = c.f.unary(Unary::Sigmoid, x);
            c.f.mul(x, s)
        }
        "hard_sigmoid" => hard_sigmoid(c),
        "hard_swish" | "hard_silu" => {
            let h = hard_sigmoid(c);
            c.f.mul(x, h)
        }
        "mish" => {
            let sp = c.f.unary(Unary::Softplus, x);
            let t = c.f.unary(Unary::Tanh, sp);
            c.f.mul(x, t)
        }
        other => return Err(LowerError::Unsupported(other.into())),
    };
    Ok(vec![y])
}

/// `zero_padding1d/2d` (zeros added per side) and `cropping1d/2d` (a slice per axis).
pub(crate) fn sides(c: &mut LowerCtx) -> Result<Vec<Id>, LowerError> {
    let mut y = c.x()?;
    let nd = c.shape(y).len().saturating_sub(2);
    let crop = c.layer.starts_with("cropping");
    let option = if crop { "cropping" } else { "padding" };
    let sides = super::rules::sides_of(c.args, option, nd).map_err(|e| LowerError::Unsupported(format!("{e:?}")))?;
    for (i, &(lo, hi)) in sides.iter().enumerate() {
        let (lo, hi) = (lo.max(0) as usize, hi.max(0) as usize);
        if lo == 0 && hi == 0 {
            continue;
        }
        let axis = 1 + i;
        let mut shape = c.shape(y);
        if crop {
            let end = shape[axis].checked_sub(hi).filter(|&e| e > lo);
            let end = end.ok_or_else(|| LowerError::Unsupported(format!("{} crops the whole axis", c.layer)))?;
            y = c.f.slice(y, axis, lo, end);
        } else {
            shape[axis] += lo + hi;
            let t = c.f.current_layer;
            y = c.f.push(Op::Pad { axis, before: lo, after: hi }, vec![y], shape, DType::F32, t);
        }
    }
    Ok(vec![y])
}

pub(crate) fn rescaling(c: &mut LowerCtx) -> Result<Vec<Id>, LowerError> {
    let scale = c.args.float("scale").unwrap_or(1.0);
    let offset = c.args.float("offset").unwrap_or(0.0);
    let y = c.f.mul_scalar(c.x()?, scale);
    Ok(vec![if offset != 0.0 { c.f.add_scalar(y, offset) } else { y }])
}

pub(crate) fn layer_scale(c: &mut LowerCtx) -> Result<Vec<Id>, LowerError> {
    let gamma = c.param("gamma")?;
    Ok(vec![c.f.mul(c.x()?, gamma)])
}

/// Keras's `Normalization`: (x − mean)/max(sqrt(variance), 1e-7), the statistics along `axis`.
pub(crate) fn normalization(c: &mut LowerCtx) -> Result<Vec<Id>, LowerError> {
    let x = c.x()?;
    let xs = c.shape(x);
    let axis = axis_of(c, "axis", xs.len());
    let aligned: Vec<usize> = (0..xs.len()).map(|i| if i == axis { xs[i] } else { 1 }).collect();
    let mean = c.param("mean")?;
    let var = c.param("variance")?;
    let mean = c.f.reshape(mean, aligned.clone());
    let var = c.f.reshape(var, aligned);
    let sd = c.f.unary(Unary::Sqrt, var);
    let eps = c.f.scalar(1e-7);
    let sd = c.f.binary(Binary::Max, sd, eps);
    let centered = c.f.sub(x, mean);
    Ok(vec![c.f.div(centered, sd)])
}
