//! The reference executor: runs an IR [`Func`] on ndarray tensors, in f32
//! or f64. Plain and obviously correct — the oracle the JIT is checked
//! against — with matrix products through ndarray's GEMM and convolutions as
//! im2col + GEMM so that real models train in reasonable time.

use std::collections::HashMap;

use ndarray::{ArrayD, ArrayView2, ArrayViewD, Axis, IxDyn};
use nnc_compiler::ir::{Binary, DType, Func, Id, Op, Reduce, Unary, Window, numel};

/// The float types the executor runs in.
pub trait Real:
    ndarray::LinalgScalar + PartialOrd + Send + Sync + std::fmt::Debug + std::fmt::Display + 'static
{
    /// The value `v` rounded to this type.
    fn of(v: f64) -> Self;
    /// The value widened to f64.
    fn f64(self) -> f64;
    /// Whether the value is neither NaN nor infinite.
    fn is_finite_(self) -> bool;
    /// Whether the value is NaN.
    fn is_nan_(self) -> bool;
    /// A faster exact-enough kernel for `u`, where this type has one (f32's
    /// `crate::math`); `None` falls back to f64 libm.
    fn fast_unary(_u: Unary, _xs: &[Self]) -> Option<Vec<Self>> {
        None
    }
}

impl Real for f32 {
    fn of(v: f64) -> Self {
        v as f32
    }
    fn f64(self) -> f64 {
        self as f64
    }
    fn is_finite_(self) -> bool {
        self.is_finite()
    }
    fn is_nan_(self) -> bool {
        self.is_nan()
    }
    fn fast_unary(u: Unary, xs: &[f32]) -> Option<Vec<f32>> {
        match u {
            Unary::Exp => Some(crate::math::exp(xs)),
            Unary::Sigmoid => Some(crate::math::sigmoid(xs)),
            Unary::Tanh => Some(crate::math::tanh(xs)),
            _ => None,
        }
    }
}

impl Real for f64 {
    fn of(v: f64) -> Self {
        v
    }
    fn f64(self) -> f64 {
        self
    }
    fn is_finite_(self) -> bool {
        self.is_finite()
    }
    fn is_nan_(self) -> bool {
        self.is_nan()
    }
}

/// A runtime value: floats or integer indices.
#[derive(Clone, Debug)]
pub enum Tensor<T> {
    /// A float tensor.
    F(ArrayD<T>),
    /// An integer tensor (labels, token ids).
    I(ArrayD<i64>),
}

impl<T: Real> Tensor<T> {
    /// The values as floats (integers converted), copied.
    pub fn float(&self) -> ArrayD<T> {
        match self {
            Tensor::F(a) => a.clone(),
            Tensor::I(a) => a.mapv(|v| T::of(v as f64)),
        }
    }
    /// A float view without copying (integers are converted).
    fn fv(&self) -> std::borrow::Cow<'_, ArrayD<T>> {
        match self {
            Tensor::F(a) => std::borrow::Cow::Borrowed(a),
            Tensor::I(a) => std::borrow::Cow::Owned(a.mapv(|v| T::of(v as f64))),
        }
    }
    fn f(&self) -> &ArrayD<T> {
        match self {
            Tensor::F(a) => a,
            Tensor::I(_) => panic!("executor: expected a float tensor"),
        }
    }
    fn ints(&self) -> Vec<i64> {
        match self {
            Tensor::I(a) => a.iter().copied().collect(),
            Tensor::F(a) => a.iter().map(|v| v.f64().round() as i64).collect(),
        }
    }
}

/// Why the reference executor could not evaluate a function.
#[derive(Clone, Debug, PartialEq)]
pub enum ExecError {
    /// A function input was not fed (its name).
    MissingInput(String),
    /// An input whose shape differs from the one the function was lowered for.
    InputShape {
        /// The input's name.
        name: String,
        /// The shape the function was lowered for.
        expected: Vec<usize>,
        /// The shape fed.
        found: Vec<usize>,
    },
    /// An index outside a table (embedding, one-hot).
    IndexOutOfRange {
        /// The layer reading the table, if known.
        layer: Option<String>,
        /// The index found.
        index: i64,
        /// The table's size (valid indices are `0..size`).
        size: usize,
    },
    /// A value went NaN or infinite (only reported when checking is on).
    NonFinite {
        /// The first node whose value is not finite.
        node: Id,
        /// Its layer, if known.
        layer: Option<String>,
    },
    /// A parameter's array differs from the shape the function declares (or
    /// is missing): checked before anything runs, since compiled code reads
    /// parameters in place.
    ParamShape {
        /// The parameter's name.
        name: String,
        /// The shape the function declares.
        expected: Vec<usize>,
        /// The shape given; `None` when it is missing.
        found: Option<Vec<usize>>,
    },
    /// A value's size overflows the address space.
    TooLarge(crate::memory::TooLarge),
}

impl std::fmt::Display for ExecError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExecError::MissingInput(n) => write!(f, "no data for input `{n}`"),
            ExecError::InputShape { name, expected, found } => {
                write!(f, "input `{name}` has shape {found:?}, the model needs {expected:?}")
            }
            ExecError::IndexOutOfRange { layer, index, size } => {
                write!(f, "index {index} outside a table of {size} rows")?;
                if let Some(l) = layer {
                    write!(f, " in layer `{l}`")?;
                }
                Ok(())
            }
            ExecError::NonFinite { layer, .. } => match layer {
                Some(l) => write!(f, "layer `{l}` produced a non-finite value"),
                None => write!(f, "a non-finite value appeared"),
            },
            ExecError::ParamShape { name, expected, found: Some(found) } => {
                write!(f, "parameter `{name}` has shape {found:?}, the model needs {expected:?}")
            }
            ExecError::ParamShape { name, expected, found: None } => {
                write!(f, "parameter `{name}` {expected:?} has no value")
            }
            ExecError::TooLarge(t) => write!(f, "{t}"),
        }
    }
}

/// Checks that `params` are `f`'s parameters: one array per declaration,
/// each of the declared shape.
pub fn check_params<A: std::borrow::Borrow<ArrayD<T>>, T>(f: &Func, params: &[A]) -> Result<(), ExecError> {
    // Allocates nothing unless it fails: compiled steps run it every step.
    for (i, decl) in f.params.iter().enumerate() {
        let found = params.get(i).map(|p| p.borrow().shape());
        if found != Some(decl.shape.as_slice()) {
            let found = found.map(<[usize]>::to_vec);
            return Err(ExecError::ParamShape { name: decl.name.clone(), expected: decl.shape.clone(), found });
        }
    }
    Ok(())
}

/// Runs `f`. `inputs` by name, `params` in `f.params` order, `uniform`
/// draws from [0, 1) for random nodes. With `check_finite`, stops at the
/// first node tagged with a layer whose output is not finite.
pub fn run<T: Real>(
    f: &Func,
    inputs: &HashMap<String, Tensor<T>>,
    params: &[ArrayD<T>],
    uniform: &mut dyn FnMut() -> f64,
    check_finite: bool,
) -> Result<Vec<Tensor<T>>, ExecError> {
    let all: Vec<Id> = (0..f.nodes.len() as Id).collect();
    run_keeping(f, inputs, params, uniform, check_finite, &all)
}

/// Like [`run`], but computes only what `keep` depends on and frees each
/// intermediate value after its last use; only the nodes in `keep` hold
/// their values in the result (the others are empty), which keeps memory
/// flat for long unrolled graphs.
pub fn run_keeping<T: Real>(
    f: &Func,
    inputs: &HashMap<String, Tensor<T>>,
    params: &[ArrayD<T>],
    uniform: &mut dyn FnMut() -> f64,
    check_finite: bool,
    keep: &[Id],
) -> Result<Vec<Tensor<T>>, ExecError> {
    check_params(f, params)?;
    crate::memory::check_func(f).map_err(ExecError::TooLarge)?;
    // Only nodes that `keep` depends on run: autodiff's rules also build
    // gradients nobody asked for (a first layer's input gradient, say).
    let live = nnc_jit::fuse::live_nodes(f, keep);
    let (last_use, dying) = lifetimes(f, &live, keep);
    let mut vals: Vec<Tensor<T>> = Vec::with_capacity(f.nodes.len());
    let profile = profile_mode() != Profile::Off;
    // `NNC_PROFILE=shapes` also splits each op kind by argument shapes.
    let by_shape = profile_mode() == Profile::Shapes;
    for (i, node) in f.nodes.iter().enumerate() {
        if !live[i] {
            vals.push(Tensor::F(ArrayD::zeros(IxDyn(&[0]))));
            continue;
        }
        let t0 = profile.then(std::time::Instant::now);
        // A reshape of a value used for the last time takes its buffer instead of copying it.
        let take = |vals: &mut Vec<Tensor<T>>, a: Id| {
            std::mem::replace(&mut vals[a as usize], Tensor::F(ArrayD::zeros(IxDyn(&[0]))))
        };
        let moved = match node.op {
            Op::Reshape if last_use[node.args[0] as usize] == i => Some(take(&mut vals, node.args[0])),
            _ => None,
        };
        // A binary op whose full-size float operand dies here writes into that
        // operand's buffer (no allocation, one pass over memory fewer).
        let in_place = reusable_operand(f, i, &last_use, &vals).map(|k| (k, take(&mut vals, node.args[k])));
        let layer = || node.layer.map(|l| f.layers[l as usize].clone());
        let arg = |k: usize| &vals[node.args[k] as usize];
        let shape = IxDyn(&node.shape);
        let v: Tensor<T> = match &node.op {
            Op::Input(name) => input_value(inputs, name, node)?,
            Op::Param(p) => Tensor::F(params[*p].clone()),
            Op::Fill(v) => Tensor::F(ArrayD::from_elem(shape, T::of(*v))),
            Op::Constant(data) => Tensor::F(
                ArrayD::from_shape_vec(shape, data.iter().map(|&x| T::of(x as f64)).collect()).expect("constant size"),
            ),
            Op::Unary(u) => Tensor::F(unary_map(*u, &arg(0).fv())),
            Op::Elu(a) => {
                Tensor::F(arg(0).float().mapv(|x| if x > T::zero() { x } else { T::of(*a * (x.f64().exp() - 1.0)) }))
            }
            Op::LeakyRelu(a) => Tensor::F(arg(0).float().mapv(|x| if x > T::zero() { x } else { T::of(*a) * x })),
            Op::PowConst(p) => Tensor::F(arg(0).float().mapv(|x| T::of(x.f64().powf(*p)))),
            Op::Binary(b) => match in_place {
                Some((k, Tensor::F(own))) => Tensor::F(binary_owning(*b, own, k, &arg(1 - k).fv(), &node.shape)),
                _ => Tensor::F(binary(*b, &arg(0).fv(), &arg(1).fv(), &node.shape)),
            },
            Op::MatMul { ta, tb } => Tensor::F(matmul(arg(0).f(), arg(1).f(), *ta, *tb, &node.shape)),
            Op::Reduce { op, axes, .. } => Tensor::F(reduce(*op, arg(0).f(), axes, &node.shape)),
            Op::SumTo => Tensor::F(sum_to(arg(0).f(), &node.shape)),
            Op::BroadcastTo => Tensor::F(broadcast_to(arg(0).f(), &node.shape)),
            Op::Reshape => match moved.unwrap_or_else(|| arg(0).clone()) {
                Tensor::F(a) => Tensor::F(standard(a).into_shape_with_order(shape).expect("reshape count")),
                Tensor::I(a) => Tensor::I(standard(a).into_shape_with_order(shape).expect("reshape count")),
            },
            Op::Transpose(perm) => {
                Tensor::F(arg(0).f().clone().permuted_axes(IxDyn(perm)).as_standard_layout().into_owned())
            }
            Op::Slice { axis, start, end } => match arg(0) {
                Tensor::F(a) => Tensor::F(slice_axis(a, *axis, *start, *end)),
                Tensor::I(a) => Tensor::I(slice_axis(a, *axis, *start, *end)),
            },
            Op::Pad { axis, before, .. } => Tensor::F(pad(arg(0).f(), *axis, *before, shape)),
            Op::Concat(axis) => {
                let parts: Vec<ArrayD<T>> = node.args.iter().map(|&a| vals[a as usize].float()).collect();
                let views: Vec<_> = parts.iter().map(|p| p.view()).collect();
                Tensor::F(ndarray::concatenate(Axis(*axis), &views).expect("concat shapes"))
            }
            Op::Gather => gather(arg(0).f(), &arg(1).ints(), shape)
                .map_err(|(index, size)| ExecError::IndexOutOfRange { layer: layer(), index, size })?,
            Op::ScatterAdd => scatter_add(arg(0).f(), &arg(1).ints(), &node.shape),
            Op::OneHot(depth) => one_hot(&arg(0).ints(), *depth, shape)
                .map_err(|(index, size)| ExecError::IndexOutOfRange { layer: layer(), index, size })?,
            Op::Softmax(_)
            | Op::LogSoftmax(_)
            | Op::Conv2d { .. }
            | Op::Conv2dInputGrad { .. }
            | Op::Conv2dKernelGrad { .. }
            | Op::MaxPool(_)
            | Op::AvgPool { .. }
            | Op::MaxPoolGrad(_)
            | Op::AvgPoolGrad { .. }
            | Op::Upsample(_)
            | Op::UpsampleGrad(_) => {
                let views: Vec<ArrayViewD<T>> = node.args.iter().map(|&a| vals[a as usize].f().view()).collect();
                Tensor::F(library_op(node, &views).expect("window op"))
            }
            Op::Random { normal } => random(*normal, shape, uniform),
        };
        if check_finite
            && node.layer.is_some()
            && let Tensor::F(a) = &v
            && a.iter().any(|x| !x.is_finite_())
        {
            return Err(ExecError::NonFinite { node: i as Id, layer: layer() });
        }
        if let Some(t0) = t0 {
            record_profile(f, node, by_shape, t0);
        }
        vals.push(v);
        for &d in &dying[i] {
            vals[d as usize] = Tensor::F(ArrayD::zeros(IxDyn(&[0])));
        }
    }
    Ok(vals)
}

/// Which operand of binary node `i` (a full-size float dying at `i`) can
/// hold the result, if any.
fn reusable_operand<T>(f: &Func, i: usize, last_use: &[usize], vals: &[Tensor<T>]) -> Option<usize> {
    let node = &f.nodes[i];
    match node.op {
        Op::Binary(_) if node.args[0] != node.args[1] => (0..2).find(|&k| {
            let a = node.args[k];
            last_use[a as usize] == i
                && f.nodes[a as usize].shape == node.shape
                && matches!(vals[a as usize], Tensor::F(_))
        }),
        _ => None,
    }
}

/// `b` with operand `k` owned (`own`): written in place when the shapes
/// allow, else a fresh result.
fn binary_owning<T: Real>(b: Binary, mut own: ArrayD<T>, k: usize, other: &ArrayD<T>, out: &[usize]) -> ArrayD<T> {
    if binary_into(b, &mut own, other, k == 0) {
        return own;
    }
    let (x, y) = if k == 0 { (&own, other) } else { (other, &own) };
    binary(b, x, y, out)
}

/// `x` broadcast to `out`; a contiguous `x` on the trailing axes is tiled.
fn broadcast_to<T: Real>(x: &ArrayD<T>, out: &[usize]) -> ArrayD<T> {
    match x.as_slice() {
        Some(xs) if trailing(x.shape(), out) && !xs.is_empty() => {
            ArrayD::from_shape_vec(IxDyn(out), xs.iter().copied().cycle().take(numel(out)).collect())
                .expect("broadcast size")
        }
        _ => x.broadcast(IxDyn(out)).expect("broadcastable").to_owned(),
    }
}

/// `a[start..end]` along `axis`, contiguous.
fn slice_axis<E: Clone>(a: &ArrayD<E>, axis: usize, start: usize, end: usize) -> ArrayD<E> {
    a.slice_axis(Axis(axis), (start..end).into()).as_standard_layout().into_owned()
}

/// `a` placed at `before` along `axis` of zeros shaped `shape`.
fn pad<T: Real>(a: &ArrayD<T>, axis: usize, before: usize, shape: IxDyn) -> ArrayD<T> {
    let mut out = ArrayD::zeros(shape);
    let len = a.shape()[axis];
    out.slice_axis_mut(Axis(axis), (before..before + len).into()).assign(a);
    out
}

/// For each node, the index of the last live node that reads it
/// (`usize::MAX` for the nodes in `keep`, which outlive the run), and for
/// each node the values that die once it has run.
fn lifetimes(f: &Func, live: &[bool], keep: &[Id]) -> (Vec<usize>, Vec<Vec<Id>>) {
    let mut last_use: Vec<usize> = (0..f.nodes.len()).collect();
    for (i, n) in f.nodes.iter().enumerate().filter(|(i, _)| live[*i]) {
        for &a in &n.args {
            last_use[a as usize] = i;
        }
    }
    for &k in keep {
        last_use[k as usize] = usize::MAX;
    }
    let mut dying: Vec<Vec<Id>> = vec![Vec::new(); f.nodes.len()];
    for (i, &l) in last_use.iter().enumerate() {
        if l != usize::MAX {
            dying[l].push(i as Id);
        }
    }
    (last_use, dying)
}

/// The value fed for input `name`, checked against the node's shape; float
/// data for an integer input is converted.
fn input_value<T: Real>(
    inputs: &HashMap<String, Tensor<T>>,
    name: &str,
    node: &nnc_compiler::ir::Node,
) -> Result<Tensor<T>, ExecError> {
    let t = inputs.get(name).ok_or_else(|| ExecError::MissingInput(name.to_string()))?;
    let found = match t {
        Tensor::F(a) => a.shape().to_vec(),
        Tensor::I(a) => a.shape().to_vec(),
    };
    if found != node.shape {
        return Err(ExecError::InputShape { name: name.to_string(), expected: node.shape.clone(), found });
    }
    Ok(match (t, node.dtype) {
        (Tensor::F(_), DType::I64) => Tensor::I(
            t.ints()
                .into_iter()
                .collect::<ndarray::Array1<i64>>()
                .into_shape_with_order(IxDyn(&node.shape))
                .expect("same count"),
        ),
        _ => t.clone(),
    })
}

/// Rows of `table` by index; an index outside the table is `Err((index, rows))`.
fn gather<T: Real>(table: &ArrayD<T>, idx: &[i64], shape: IxDyn) -> Result<Tensor<T>, (i64, usize)> {
    let (rows, d) = (table.shape()[0], table.shape()[1]);
    let t = table.as_standard_layout();
    let ts = t.as_slice().expect("standard layout");
    let mut out = Vec::with_capacity(idx.len() * d);
    for &ix in idx {
        if ix < 0 || ix as usize >= rows {
            return Err((ix, rows));
        }
        out.extend_from_slice(&ts[ix as usize * d..(ix as usize + 1) * d]);
    }
    Ok(Tensor::F(ArrayD::from_shape_vec(shape, out).expect("gather size")))
}

/// The adjoint of [`gather`]: rows of `g` summed into the rows they were
/// read from (indices were checked by the forward gather).
fn scatter_add<T: Real>(g: &ArrayD<T>, idx: &[i64], out_shape: &[usize]) -> Tensor<T> {
    let g = g.as_standard_layout();
    let d = out_shape[1];
    let mut out = vec![T::zero(); numel(out_shape)];
    let gs = g.as_slice().expect("standard layout");
    for (k, &ix) in idx.iter().enumerate() {
        let ix = ix.clamp(0, out_shape[0] as i64 - 1) as usize;
        for j in 0..d {
            out[ix * d + j] = out[ix * d + j] + gs[k * d + j];
        }
    }
    Tensor::F(ArrayD::from_shape_vec(IxDyn(out_shape), out).expect("scatter size"))
}

/// One-hot rows of length `depth`; an index outside it is `Err((index, depth))`.
fn one_hot<T: Real>(idx: &[i64], depth: usize, shape: IxDyn) -> Result<Tensor<T>, (i64, usize)> {
    let mut out = vec![T::zero(); idx.len() * depth];
    for (k, &ix) in idx.iter().enumerate() {
        if ix < 0 || ix as usize >= depth {
            return Err((ix, depth));
        }
        out[k * depth + ix as usize] = T::one();
    }
    Ok(Tensor::F(ArrayD::from_shape_vec(shape, out).expect("one-hot size")))
}

/// Uniform `[0, 1)` or standard normal (Box–Muller) values from `uniform`.
fn random<T: Real>(normal: bool, shape: IxDyn, uniform: &mut dyn FnMut() -> f64) -> Tensor<T> {
    let n = ndarray::Dimension::size(&shape);
    let data: Vec<T> = (0..n)
        .map(|_| {
            if normal {
                let u1 = uniform().max(1e-300);
                let u2 = uniform();
                T::of((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos())
            } else {
                T::of(uniform())
            }
        })
        .collect();
    Tensor::F(ArrayD::from_shape_vec(shape, data).expect("random size"))
}

/// Adds the time since `t0` to the node's op kind (`NNC_PROFILE`), split by
/// argument shapes when `by_shape`.
fn record_profile(f: &Func, node: &nnc_compiler::ir::Node, by_shape: bool, t0: std::time::Instant) {
    let name = format!("{}", node.op);
    let mut key = name.split_whitespace().next().unwrap_or("").to_string();
    if by_shape {
        for &a in &node.args {
            key.push_str(&format!(" {:?}", f.nodes[a as usize].shape));
        }
    }
    PROFILE.with(|p| *p.borrow_mut().entry(key).or_insert(0.0) += t0.elapsed().as_secs_f64());
}

/// The ops computed by a library routine on operand views: softmax and
/// the window ops (convolutions, pooling, upsampling). The compiled
/// backend calls the same routines; `None` for any other op.
pub fn library_op<T: Real>(node: &nnc_compiler::ir::Node, args: &[ArrayViewD<T>]) -> Option<ArrayD<T>> {
    let out = &node.shape;
    Some(match &node.op {
        Op::Softmax(axis) => softmax(&args[0], *axis, false),
        Op::LogSoftmax(axis) => softmax(&args[0], *axis, true),
        Op::Conv2d { window, groups: 1 } => conv2d(&args[0], &args[1], window, out),
        Op::Conv2dInputGrad { window, groups: 1 } => conv2d_input_grad(&args[0], &args[1], window, out),
        Op::Conv2dKernelGrad { window, groups: 1 } => conv2d_kernel_grad(&args[0], &args[1], window, out),
        Op::Conv2d { window, groups } => {
            let dense = block_diagonal(&args[1], args[0].shape()[3], *groups);
            conv2d(&args[0], &dense.view(), window, out)
        }
        Op::Conv2dInputGrad { window, groups } => {
            let dense = block_diagonal(&args[1], out[3], *groups);
            conv2d_input_grad(&args[0], &dense.view(), window, out)
        }
        Op::Conv2dKernelGrad { window, groups } => {
            let (c, f) = (args[0].shape()[3], args[1].shape()[3]);
            let dense = conv2d_kernel_grad(&args[0], &args[1], window, &[out[0], out[1], c, f]);
            in_groups(&dense.view(), *groups, out)
        }
        Op::MaxPool(w) => pool(&args[0], w, out, PoolKind::Max),
        Op::AvgPool { window, count_pad } => pool(&args[0], window, out, PoolKind::Avg(*count_pad)),
        Op::MaxPoolGrad(w) => max_pool_grad(&args[0], &args[1], w),
        Op::AvgPoolGrad { window, count_pad } => avg_pool_grad(&args[0], window, *count_pad, out),
        Op::Upsample(s) => upsample(&args[0], *s, out),
        Op::UpsampleGrad(s) => upsample_grad(&args[0], *s, out),
        _ => return None,
    })
}

/// What `NNC_PROFILE` asks for: nothing, seconds per op kind (`1`), or per
/// op and shapes (`shapes`). Read once per process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Profile {
    /// No profiling.
    Off,
    /// Seconds per op kind.
    Ops,
    /// Seconds per op kind and shape.
    Shapes,
}

/// The profiling mode `NNC_PROFILE` selects (read once).
pub fn profile_mode() -> Profile {
    static MODE: std::sync::OnceLock<Profile> = std::sync::OnceLock::new();
    *MODE.get_or_init(|| match std::env::var_os("NNC_PROFILE") {
        None => Profile::Off,
        Some(v) if v == "shapes" => Profile::Shapes,
        Some(_) => Profile::Ops,
    })
}

/// Adds `seconds` to the profile entry `key` (with `NNC_PROFILE` set).
pub fn profile_add(key: &str, seconds: f64) {
    PROFILE.with(|p| *p.borrow_mut().entry(key.to_string()).or_insert(0.0) += seconds);
}

thread_local! {
    /// Seconds per op kind, when `NNC_PROFILE` is set (see `profile_report`).
    static PROFILE: std::cell::RefCell<std::collections::BTreeMap<String, f64>> = Default::default();
}

/// Time spent per op kind so far (with `NNC_PROFILE` set), slowest first.
pub fn profile_report() -> Vec<(String, f64)> {
    let mut v: Vec<(String, f64)> = PROFILE.with(|p| p.borrow().iter().map(|(k, v)| (k.clone(), *v)).collect());
    v.sort_by(|a, b| b.1.total_cmp(&a.1));
    v
}

/// The scalar function of a unary op, chosen once per node (not per element).
fn unary_fn(u: Unary) -> fn(f64) -> f64 {
    match u {
        Unary::Neg => |v| -v,
        Unary::Exp => f64::exp,
        Unary::Log => f64::ln,
        Unary::Sqrt => f64::sqrt,
        Unary::Abs => f64::abs,
        // NaN must propagate (training stops on it), so no f64::max here.
        Unary::Relu => |v| if v < 0.0 { 0.0 } else { v },
        Unary::Sigmoid => |v| 1.0 / (1.0 + (-v).exp()),
        Unary::Tanh => f64::tanh,
        Unary::Gelu => |v| 0.5 * v * (1.0 + erf(v / std::f64::consts::SQRT_2)),
        Unary::GeluGrad => |v| {
            let cdf = 0.5 * (1.0 + erf(v / std::f64::consts::SQRT_2));
            let pdf = (-0.5 * v * v).exp() / (2.0 * std::f64::consts::PI).sqrt();
            cdf + v * pdf
        },
        Unary::Softplus => |v| if v > 30.0 { v } else { v.exp().ln_1p() },
        Unary::Square => |v| v * v,
        Unary::Recip => |v| 1.0 / v,
        Unary::Positive => |v| f64::from(v > 0.0),
        Unary::Sign => |v| {
            if v > 0.0 {
                1.0
            } else if v < 0.0 {
                -1.0
            } else {
                0.0
            }
        },
    }
}

/// The error function (shared with the compiled backend's scalar callees).
fn erf(x: f64) -> f64 {
    nnc_jit::scalar::erf(x)
}

fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * shape[i + 1];
    }
    s
}

/// Strides of `shape` broadcast to `out` (0 on broadcast axes).
fn broadcast_strides(shape: &[usize], out: &[usize]) -> Vec<usize> {
    let own = strides(shape);
    let off = out.len() - shape.len();
    (0..out.len()).map(|i| if i < off || shape[i - off] == 1 { 0 } else { own[i - off] }).collect()
}

/// `own = own ∘ other` (or `other ∘ own` when `!own_left`) in place, for
/// `other` of the same shape, a single value, or a trailing broadcast.
/// Returns false (leaving `own` untouched) for any other broadcast.
fn binary_into<T: Real>(b: Binary, own: &mut ArrayD<T>, other: &ArrayD<T>, own_left: bool) -> bool {
    match b {
        Binary::Add => update(own, other, own_left, |a, c| a + c),
        Binary::Sub => update(own, other, own_left, |a, c| a - c),
        Binary::Mul => update(own, other, own_left, |a, c| a * c),
        Binary::Div => update(own, other, own_left, |a, c| a / c),
        // The others are rare in hot loops; `binary` handles them.
        _ => false,
    }
}

fn update<T: Real>(own: &mut ArrayD<T>, other: &ArrayD<T>, own_left: bool, op: impl Fn(T, T) -> T) -> bool {
    let os = other.as_standard_layout();
    let (Some(od), true) = (os.as_slice(), own.is_standard_layout()) else { return false };
    let m = od.len();
    if own.is_empty() || m == 0 {
        return own.shape() == other.shape();
    }
    if !(own.shape() == other.shape() || m == 1 || trailing(other.shape(), own.shape())) {
        return false;
    }
    let data = own.as_slice_mut().expect("standard layout");
    for row in data.chunks_exact_mut(m) {
        for (a, &c) in row.iter_mut().zip(od) {
            *a = if own_left { op(*a, c) } else { op(c, *a) };
        }
    }
    true
}

fn binary<T: Real>(b: Binary, x: &ArrayD<T>, y: &ArrayD<T>, out: &[usize]) -> ArrayD<T> {
    // Dispatch once, so each loop body is a single monomorphic operation.
    match b {
        Binary::Add => zip_with(x, y, out, |a, c| a + c),
        Binary::Sub => zip_with(x, y, out, |a, c| a - c),
        Binary::Mul => zip_with(x, y, out, |a, c| a * c),
        Binary::Div => zip_with(x, y, out, |a, c| a / c),
        // NaN propagates from either side (comparisons with NaN are false).
        Binary::Max => zip_with(x, y, out, |a, c| {
            if a.is_nan_() || c.is_nan_() {
                a + c
            } else if a >= c {
                a
            } else {
                c
            }
        }),
        Binary::Min => zip_with(x, y, out, |a, c| {
            if a.is_nan_() || c.is_nan_() {
                a + c
            } else if a <= c {
                a
            } else {
                c
            }
        }),
        Binary::Greater => zip_with(x, y, out, |a, c| if a > c { T::one() } else { T::zero() }),
        Binary::Equal => zip_with(x, y, out, |a, c| if a == c { T::one() } else { T::zero() }),
    }
}

/// Whether `small` broadcasts to `out` by repeating it whole: its shape,
/// without leading 1-axes, is a suffix of `out` (biases, per-channel scales).
fn trailing(small: &[usize], out: &[usize]) -> bool {
    let lead = small.iter().take_while(|&&d| d == 1).count();
    let s = &small[lead..];
    s.len() <= out.len() && s == &out[out.len() - s.len()..]
}

/// Whether `small` is `out` with its last axis 1 (and that axis is not
/// empty in `out`): one value per row of `out`.
fn row_scalars(small: &[usize], out: &[usize]) -> bool {
    let r = out.len();
    r > 0 && small.len() == r && small[r - 1] == 1 && out[r - 1] > 0 && small[..r - 1] == out[..r - 1]
}

fn zip_with<T: Real>(x: &ArrayD<T>, y: &ArrayD<T>, out: &[usize], op: impl Fn(T, T) -> T) -> ArrayD<T> {
    let xs = x.as_standard_layout();
    let ys = y.as_standard_layout();
    let (xd, yd) = (xs.as_slice().expect("standard"), ys.as_slice().expect("standard"));
    let n = numel(out);
    let data: Vec<T> = if x.shape() == out && y.shape() == out {
        xd.iter().zip(yd).map(|(&a, &c)| op(a, c)).collect()
    } else if y.len() == 1 && x.shape() == out {
        let c = yd[0];
        xd.iter().map(|&a| op(a, c)).collect()
    } else if x.len() == 1 && y.shape() == out {
        let a = xd[0];
        yd.iter().map(|&c| op(a, c)).collect()
    } else if x.shape() == out && !y.is_empty() && trailing(y.shape(), out) {
        // A trailing-aligned operand (bias, per-channel scale): repeat it.
        let m = y.len();
        let mut v = Vec::with_capacity(n);
        for row in xd.chunks_exact(m) {
            v.extend(row.iter().zip(yd).map(|(&a, &c)| op(a, c)));
        }
        v
    } else if x.shape() == out && row_scalars(y.shape(), out) {
        // One value per row (layer norm, softmax statistics): [.., 1] against [.., D].
        let d = out[out.len() - 1];
        let mut v = Vec::with_capacity(n);
        for (row, &c) in xd.chunks_exact(d).zip(yd) {
            v.extend(row.iter().map(|&a| op(a, c)));
        }
        v
    } else if y.shape() == out && row_scalars(x.shape(), out) {
        let d = out[out.len() - 1];
        let mut v = Vec::with_capacity(n);
        for (row, &a) in yd.chunks_exact(d).zip(xd) {
            v.extend(row.iter().map(|&c| op(a, c)));
        }
        v
    } else if y.shape() == out && !x.is_empty() && trailing(x.shape(), out) {
        let m = x.len();
        let mut v = Vec::with_capacity(n);
        for row in yd.chunks_exact(m) {
            v.extend(xd.iter().zip(row).map(|(&a, &c)| op(a, c)));
        }
        v
    } else {
        let (sx, sy) = (broadcast_strides(x.shape(), out), broadcast_strides(y.shape(), out));
        let mut idx = vec![0usize; out.len()];
        let mut v = Vec::with_capacity(n);
        let (mut ox, mut oy) = (0usize, 0usize);
        for _ in 0..n {
            v.push(op(xd[ox], yd[oy]));
            // Odometer increment, keeping the two offsets in step.
            for ax in (0..out.len()).rev() {
                idx[ax] += 1;
                ox += sx[ax];
                oy += sy[ax];
                if idx[ax] < out[ax] {
                    break;
                }
                ox -= sx[ax] * idx[ax];
                oy -= sy[ax] * idx[ax];
                idx[ax] = 0;
            }
        }
        v
    };
    ArrayD::from_shape_vec(IxDyn(out), data).expect("binary size")
}

/// `a` in row-major order, copied only if it is not already.
fn standard<E: Clone>(a: ArrayD<E>) -> ArrayD<E> {
    if a.is_standard_layout() { a } else { a.as_standard_layout().into_owned() }
}

fn unary_map<T: Real>(u: Unary, x: &ArrayD<T>) -> ArrayD<T> {
    match u {
        Unary::Neg => x.mapv(|v| T::zero() - v),
        Unary::Square => x.mapv(|v| v * v),
        // NaN must propagate (training stops on it), so no `max` here.
        Unary::Relu => x.mapv(|v| if v < T::zero() { T::zero() } else { v }),
        Unary::Positive => x.mapv(|v| if v > T::zero() { T::one() } else { T::zero() }),
        _ => {
            if let Some(data) = x.as_slice().and_then(|xs| T::fast_unary(u, xs)) {
                return ArrayD::from_shape_vec(x.raw_dim(), data).expect("same size");
            }
            let f = unary_fn(u);
            x.mapv(|v| T::of(f(v.f64())))
        }
    }
}

fn matmul<T: Real>(a: &ArrayD<T>, b: &ArrayD<T>, ta: bool, tb: bool, out: &[usize]) -> ArrayD<T> {
    let (ra, rb) = (a.ndim(), b.ndim());
    let batch: usize = out[..out.len() - 2].iter().product();
    let (m, n) = (out[out.len() - 2], out[out.len() - 1]);
    // Operands without batch axes are shared by every batch entry.
    let lead = |r: usize| if r > 2 { batch } else { 1 };
    let (a, b) = (a.as_standard_layout(), b.as_standard_layout());
    let a3 = a.view().into_shape_with_order((lead(ra), a.shape()[ra - 2], a.shape()[ra - 1])).expect("matmul a");
    let b3 = b.view().into_shape_with_order((lead(rb), b.shape()[rb - 2], b.shape()[rb - 1])).expect("matmul b");
    let mut c = ndarray::Array3::<T>::zeros((batch.max(1), m, n));
    for i in 0..batch.max(1) {
        let ai = a3.index_axis(Axis(0), if a3.shape()[0] == 1 { 0 } else { i });
        let bi = b3.index_axis(Axis(0), if b3.shape()[0] == 1 { 0 } else { i });
        let av: ArrayView2<T> = if ta { ai.reversed_axes() } else { ai };
        let bv: ArrayView2<T> = if tb { bi.reversed_axes() } else { bi };
        crate::gemm::matmul_into(av, bv, c.index_axis_mut(Axis(0), i));
    }
    c.into_shape_with_order(IxDyn(out)).expect("matmul out")
}

fn reduce<T: Real>(op: Reduce, x: &ArrayD<T>, axes: &[usize], out: &[usize]) -> ArrayD<T> {
    let xs = x.as_standard_layout();
    let data = xs.as_slice().expect("standard");
    let shape = x.shape();
    // Output strides over the kept axes (reduced axes contribute 0).
    let kept: Vec<usize> = (0..shape.len()).filter(|a| !axes.contains(a)).collect();
    let kept_shape: Vec<usize> = kept.iter().map(|&a| shape[a]).collect();
    let ks = strides(&kept_shape);
    let mut ostride = vec![0usize; shape.len()];
    for (j, &a) in kept.iter().enumerate() {
        ostride[a] = ks[j];
    }
    let n_out = numel(&kept_shape).max(1);
    if op != Reduce::Max && axes.iter().enumerate().all(|(i, &a)| a == i) {
        // Over leading axes (bias gradients, batch statistics): whole rows at a time.
        let mut acc = vec![0f64; n_out];
        for row in data.chunks_exact(n_out) {
            for (a, &v) in acc.iter_mut().zip(row) {
                *a += v.f64();
            }
        }
        let count = (data.len() / n_out).max(1) as f64;
        return ArrayD::from_shape_vec(
            IxDyn(out),
            acc.into_iter().map(|v| T::of(if op == Reduce::Mean { v / count } else { v })).collect(),
        )
        .expect("reduce size");
    }
    let init = match op {
        Reduce::Max => f64::NEG_INFINITY,
        _ => 0.0,
    };
    let mut acc = vec![init; n_out];
    let mut idx = vec![0usize; shape.len()];
    let mut o = 0usize;
    for &v in data {
        let v = v.f64();
        acc[o] = match op {
            Reduce::Max => {
                if v.is_nan() || acc[o].is_nan() {
                    f64::NAN
                } else {
                    acc[o].max(v)
                }
            }
            _ => acc[o] + v,
        };
        for ax in (0..shape.len()).rev() {
            idx[ax] += 1;
            o += ostride[ax];
            if idx[ax] < shape[ax] {
                break;
            }
            o -= ostride[ax] * idx[ax];
            idx[ax] = 0;
        }
    }
    let count: usize = axes.iter().map(|&a| shape[a]).product::<usize>().max(1);
    let vals: Vec<T> = acc.into_iter().map(|v| T::of(if op == Reduce::Mean { v / count as f64 } else { v })).collect();
    ArrayD::from_shape_vec(IxDyn(out), vals).expect("reduce size")
}

/// Sums `x` down to `out` (the inverse of broadcasting).
fn sum_to<T: Real>(x: &ArrayD<T>, out: &[usize]) -> ArrayD<T> {
    let shape = x.shape();
    let off = shape.len() - out.len();
    let axes: Vec<usize> = (0..shape.len()).filter(|&i| i < off || (out[i - off] == 1 && shape[i] != 1)).collect();
    let r = reduce(Reduce::Sum, x, &axes, &[numel(out)]);
    r.into_shape_with_order(IxDyn(out)).expect("sum_to")
}

fn softmax<T: Real>(x: &ArrayViewD<T>, axis: usize, log: bool) -> ArrayD<T> {
    let mut out = x.as_standard_layout().into_owned();
    if axis + 1 == x.ndim() && x.shape()[axis] > 0 {
        // The usual case, classes on the last axis: contiguous rows, and the
        // exponentials through the type's fast kernel when it has one.
        let d = x.shape()[axis];
        let data = out.as_slice_mut().expect("standard layout");
        let mut shifted = vec![T::zero(); d];
        for row in data.chunks_exact_mut(d) {
            let m = row.iter().fold(T::of(f64::NEG_INFINITY), |m, &v| if v > m || v.is_nan_() { v } else { m });
            for (s, &v) in shifted.iter_mut().zip(row.iter()) {
                *s = v - m;
            }
            let e = T::fast_unary(Unary::Exp, &shifted)
                .unwrap_or_else(|| shifted.iter().map(|v| T::of(v.f64().exp())).collect());
            let sum: f64 = e.iter().map(|v| v.f64()).sum();
            if log {
                let ls = T::of(sum.ln());
                for (o, &s) in row.iter_mut().zip(&shifted) {
                    *o = s - ls;
                }
            } else {
                let inv = 1.0 / sum;
                for (o, &v) in row.iter_mut().zip(&e) {
                    *o = T::of(v.f64() * inv);
                }
            }
        }
        return out;
    }
    for mut lane in out.lanes_mut(Axis(axis)) {
        let m = lane.iter().fold(f64::NEG_INFINITY, |m, v| if v.f64() > m || v.f64().is_nan() { v.f64() } else { m });
        let sum: f64 = lane.iter().map(|v| (v.f64() - m).exp()).sum();
        let lse = m + sum.ln();
        for v in lane.iter_mut() {
            *v = T::of(if log { v.f64() - lse } else { (v.f64() - lse).exp() });
        }
    }
    out
}

/// Visits the (patch row, input pixel) runs of a convolution: `f(col, src,
/// len)` where `col` indexes the im2col matrix [N·H'·W', KH·KW·C] and `src`
/// the NHWC input, and `len` values are contiguous in both (the in-bounds
/// taps of one kernel row when the dilation is 1: their pixels are
/// neighbours; otherwise one tap's `c` channels). Padding cells are skipped.
pub(crate) fn for_each_tap(xs: &[usize], w: &Window, oh: usize, ow: usize, mut f: impl FnMut(usize, usize, usize)) {
    let (n, h, wd, c) = (xs[0], xs[1], xs[2], xs[3]);
    let (kh, kw) = (w.kernel[0], w.kernel[1]);
    let cols = kh * kw * c;
    let dense = w.dilation[1] == 1;
    for b in 0..n {
        for i in 0..oh {
            for j in 0..ow {
                let row = ((b * oh + i) * ow + j) * cols;
                let x_of = |q: usize| (j * w.stride[1] + q * w.dilation[1]) as isize - w.pad[1] as isize;
                for p in 0..kh {
                    let y = (i * w.stride[0] + p * w.dilation[0]) as isize - w.pad[0] as isize;
                    if y < 0 || y >= h as isize {
                        continue;
                    }
                    let pixel = |x: isize| ((b * h + y as usize) * wd + x as usize) * c;
                    if dense {
                        // x grows with q: the in-bounds taps are one range.
                        let q0 = (0..kw).find(|&q| x_of(q) >= 0).unwrap_or(kw);
                        let q1 = (q0..kw).find(|&q| x_of(q) >= wd as isize).unwrap_or(kw);
                        if q0 < q1 {
                            f(row + (p * kw + q0) * c, pixel(x_of(q0)), (q1 - q0) * c);
                        }
                        continue;
                    }
                    for q in 0..kw {
                        let x = x_of(q);
                        if x >= 0 && x < wd as isize {
                            f(row + (p * kw + q) * c, pixel(x), c);
                        }
                    }
                }
            }
        }
    }
}

/// im2col: the patches of the padded input as rows.
fn im2col<T: Real>(x: &[T], xs: &[usize], w: &Window, oh: usize, ow: usize) -> Vec<T> {
    let c = xs[3];
    let mut out = vec![T::zero(); xs[0] * oh * ow * w.kernel[0] * w.kernel[1] * c];
    for_each_tap(xs, w, oh, ow, |col, src, len| out[col..col + len].copy_from_slice(&x[src..src + len]));
    out
}

/// col2im: the adjoint of im2col (overlapping taps accumulate).
fn col2im<T: Real>(cols: &[T], xs: &[usize], w: &Window, oh: usize, ow: usize) -> Vec<T> {
    let mut out = vec![T::zero(); numel(xs)];
    for_each_tap(xs, w, oh, ow, |col, dst, len| {
        for (o, &v) in out[dst..dst + len].iter_mut().zip(&cols[col..col + len]) {
            *o = *o + v;
        }
    });
    out
}

/// `a`'s elements in row-major order, borrowed when `a` already is.
fn std_vec<'a, T: Real>(a: &ArrayViewD<'a, T>) -> std::borrow::Cow<'a, [T]> {
    match a.to_slice() {
        Some(s) => std::borrow::Cow::Borrowed(s),
        None => std::borrow::Cow::Owned(a.as_standard_layout().iter().copied().collect()),
    }
}

fn gemm<T: Real>(a: &[T], b: &[T], m: usize, k: usize, n: usize, ta: bool, tb: bool) -> Vec<T> {
    let av = if ta {
        ArrayView2::from_shape((k, m), a).expect("gemm a").reversed_axes()
    } else {
        ArrayView2::from_shape((m, k), a).expect("gemm a")
    };
    let bv = if tb {
        ArrayView2::from_shape((n, k), b).expect("gemm b").reversed_axes()
    } else {
        ArrayView2::from_shape((k, n), b).expect("gemm b")
    };
    let mut c = ndarray::Array2::<T>::zeros((m, n));
    crate::gemm::matmul_into(av, bv, c.view_mut());
    c.into_raw_vec_and_offset().0
}

/// Samples per im2col chunk: the patch matrix of a chunk stays near 8 MB
/// however large the batch or image (VGG's first layers at batch 256 would
/// otherwise need tens of GB), and small chunks keep it in cache for the
/// product that reads it (measured: 64 MB chunks made the ConvNet's epoch
/// 10–20 % slower).
fn chunk_samples(per_sample_cols: usize) -> usize {
    ((2 << 20) / per_sample_cols.max(1)).max(1)
}

fn conv2d<T: Real>(x: &ArrayViewD<T>, k: &ArrayViewD<T>, w: &Window, out: &[usize]) -> ArrayD<T> {
    let (n, oh, ow, f) = (out[0], out[1], out[2], out[3]);
    let xs = x.shape().to_vec();
    let per_in: usize = xs[1..].iter().product();
    let kk = k.shape()[0] * k.shape()[1] * k.shape()[2];
    let (xd, kd) = (std_vec(x), std_vec(k));
    let mut y = Vec::with_capacity(numel(out));
    let step = chunk_samples(oh * ow * kk);
    for b0 in (0..n).step_by(step) {
        let b1 = (b0 + step).min(n);
        let sub = [b1 - b0, xs[1], xs[2], xs[3]];
        let cols = im2col(&xd[b0 * per_in..b1 * per_in], &sub, w, oh, ow);
        y.extend(gemm(&cols, &kd, (b1 - b0) * oh * ow, kk, f, false, false));
    }
    ArrayD::from_shape_vec(IxDyn(out), y).expect("conv out")
}

fn conv2d_input_grad<T: Real>(dy: &ArrayViewD<T>, k: &ArrayViewD<T>, w: &Window, out: &[usize]) -> ArrayD<T> {
    let (n, oh, ow, f) = (dy.shape()[0], dy.shape()[1], dy.shape()[2], dy.shape()[3]);
    let kk = k.shape()[0] * k.shape()[1] * k.shape()[2];
    let (dd, kd) = (std_vec(dy), std_vec(k));
    let per_out = oh * ow * f;
    let mut dx = Vec::with_capacity(numel(out));
    let step = chunk_samples(oh * ow * kk);
    for b0 in (0..n).step_by(step) {
        let b1 = (b0 + step).min(n);
        let dcols = gemm(&dd[b0 * per_out..b1 * per_out], &kd, (b1 - b0) * oh * ow, f, kk, false, true);
        dx.extend(col2im(&dcols, &[b1 - b0, out[1], out[2], out[3]], w, oh, ow));
    }
    ArrayD::from_shape_vec(IxDyn(out), dx).expect("conv input grad")
}

fn conv2d_kernel_grad<T: Real>(x: &ArrayViewD<T>, dy: &ArrayViewD<T>, w: &Window, out: &[usize]) -> ArrayD<T> {
    let (n, oh, ow, f) = (dy.shape()[0], dy.shape()[1], dy.shape()[2], dy.shape()[3]);
    let xs = x.shape().to_vec();
    let per_in: usize = xs[1..].iter().product();
    let kk = out[0] * out[1] * out[2];
    let (xd, dd) = (std_vec(x), std_vec(dy));
    let mut dk = vec![T::zero(); kk * f];
    let step = chunk_samples(oh * ow * kk);
    for b0 in (0..n).step_by(step) {
        let b1 = (b0 + step).min(n);
        let cols = im2col(&xd[b0 * per_in..b1 * per_in], &[b1 - b0, xs[1], xs[2], xs[3]], w, oh, ow);
        let part = gemm(&cols, &dd[b0 * oh * ow * f..b1 * oh * ow * f], kk, (b1 - b0) * oh * ow, f, true, false);
        for (a, b) in dk.iter_mut().zip(part) {
            *a = *a + b;
        }
    }
    ArrayD::from_shape_vec(IxDyn(out), dk).expect("conv kernel grad")
}

/// A grouped kernel [KH, KW, C/G, F] as the dense [KH, KW, C, F] one that
/// is zero outside each filter's group. The reference executor runs grouped
/// convolutions through this (G times the work of the compiled backend's
/// direct loops, and independent of them, so each checks the other).
fn block_diagonal<T: Real>(k: &ArrayViewD<T>, c: usize, groups: usize) -> ArrayD<T> {
    let ks = k.shape();
    let (cg, f) = (ks[2], ks[3]);
    let fg = f / groups;
    let kd = std_vec(k);
    let mut dense = ArrayD::zeros(IxDyn(&[ks[0], ks[1], c, f]));
    let d = dense.as_slice_mut().expect("fresh array");
    for t in 0..ks[0] * ks[1] {
        for ci in 0..cg {
            for o in 0..f {
                d[(t * c + (o / fg) * cg + ci) * f + o] = kd[(t * cg + ci) * f + o];
            }
        }
    }
    dense
}

/// The adjoint of [`block_diagonal`]: the in-group entries of a dense kernel
/// gradient [KH, KW, C, F] as the grouped one `out` = [KH, KW, C/G, F].
fn in_groups<T: Real>(dense: &ArrayViewD<T>, groups: usize, out: &[usize]) -> ArrayD<T> {
    let (c, f) = (dense.shape()[2], dense.shape()[3]);
    let (cg, fg) = (out[2], f / groups);
    let dd = std_vec(dense);
    let mut k = vec![T::zero(); numel(out)];
    for t in 0..out[0] * out[1] {
        for ci in 0..cg {
            for o in 0..f {
                k[(t * cg + ci) * f + o] = dd[(t * c + (o / fg) * cg + ci) * f + o];
            }
        }
    }
    ArrayD::from_shape_vec(IxDyn(out), k).expect("grouped kernel")
}

#[derive(Clone, Copy)]
enum PoolKind {
    Max,
    Avg(bool),
}

/// Visits the valid input cells of window (i, j): f(input offset).
/// Visits the valid input cells of window (i, j) of sample `b` (NHWC, with
/// stride, dilation and padding): `f(offset of the cell's first channel)`.
/// Returns how many there were. The compiled backend's pooling walks the
/// same cells.
pub(crate) fn window_cells(xs: &[usize], w: &Window, b: usize, i: usize, j: usize, mut f: impl FnMut(usize)) -> usize {
    let (h, wd, c) = (xs[1], xs[2], xs[3]);
    let mut count = 0;
    for p in 0..w.kernel[0] {
        let y = (i * w.stride[0] + p * w.dilation[0]) as isize - w.pad[0] as isize;
        if y < 0 || y >= h as isize {
            continue;
        }
        for q in 0..w.kernel[1] {
            let x = (j * w.stride[1] + q * w.dilation[1]) as isize - w.pad[1] as isize;
            if x < 0 || x >= wd as isize {
                continue;
            }
            count += 1;
            f(((b * h + y as usize) * wd + x as usize) * c);
        }
    }
    count
}

fn pool<T: Real>(x: &ArrayViewD<T>, w: &Window, out: &[usize], kind: PoolKind) -> ArrayD<T> {
    let xl = x.as_standard_layout();
    let xd = xl.as_slice().expect("standard layout");
    let xs = x.shape();
    let c = xs[3];
    let mut o = vec![T::zero(); numel(out)];
    let start = match kind {
        PoolKind::Max => f64::NEG_INFINITY,
        PoolKind::Avg(_) => 0.0,
    };
    let mut acc = vec![start; c];
    for b in 0..out[0] {
        for i in 0..out[1] {
            for j in 0..out[2] {
                let base = ((b * out[1] + i) * out[2] + j) * c;
                acc.fill(start);
                let n = window_cells(xs, w, b, i, j, |off| {
                    for k in 0..c {
                        let v = xd[off + k].f64();
                        acc[k] = match kind {
                            PoolKind::Max => {
                                if v.is_nan() || v > acc[k] {
                                    v
                                } else {
                                    acc[k]
                                }
                            }
                            PoolKind::Avg(_) => acc[k] + v,
                        };
                    }
                });
                let div = match kind {
                    PoolKind::Avg(true) => (w.kernel[0] * w.kernel[1]) as f64,
                    PoolKind::Avg(false) => n.max(1) as f64,
                    PoolKind::Max => 1.0,
                };
                for k in 0..c {
                    o[base + k] = T::of(acc[k] / div);
                }
            }
        }
    }
    ArrayD::from_shape_vec(IxDyn(out), o).expect("pool out")
}

fn max_pool_grad<T: Real>(x: &ArrayViewD<T>, dy: &ArrayViewD<T>, w: &Window) -> ArrayD<T> {
    let (xl, gl) = (x.as_standard_layout(), dy.as_standard_layout());
    let (xd, gd) = (xl.as_slice().expect("standard layout"), gl.as_slice().expect("standard layout"));
    let xs = x.shape();
    let os = dy.shape();
    let c = xs[3];
    let mut dx = vec![T::zero(); xd.len()];
    let mut best: Vec<Option<(usize, f64)>> = vec![None; c];
    for b in 0..os[0] {
        for i in 0..os[1] {
            for j in 0..os[2] {
                let base = ((b * os[1] + i) * os[2] + j) * c;
                best.fill(None);
                window_cells(xs, w, b, i, j, |off| {
                    for k in 0..c {
                        let v = xd[off + k].f64();
                        if best[k].is_none_or(|(_, bv)| v > bv) {
                            best[k] = Some((off + k, v));
                        }
                    }
                });
                for k in 0..c {
                    if let Some((at, _)) = best[k] {
                        dx[at] = dx[at] + gd[base + k];
                    }
                }
            }
        }
    }
    ArrayD::from_shape_vec(IxDyn(xs), dx).expect("max pool grad")
}

fn avg_pool_grad<T: Real>(dy: &ArrayViewD<T>, w: &Window, count_pad: bool, xshape: &[usize]) -> ArrayD<T> {
    let gd = std_vec(dy);
    let os = dy.shape();
    let c = xshape[3];
    let mut dx = vec![T::zero(); numel(xshape)];
    for b in 0..os[0] {
        for i in 0..os[1] {
            for j in 0..os[2] {
                let base = ((b * os[1] + i) * os[2] + j) * c;
                let mut cells = Vec::new();
                let n = window_cells(xshape, w, b, i, j, |off| cells.push(off));
                let div = if count_pad { (w.kernel[0] * w.kernel[1]) as f64 } else { n.max(1) as f64 };
                for off in cells {
                    for k in 0..c {
                        dx[off + k] = dx[off + k] + T::of(gd[base + k].f64() / div);
                    }
                }
            }
        }
    }
    ArrayD::from_shape_vec(IxDyn(xshape), dx).expect("avg pool grad")
}

/// Visits every pixel of an upsampled NHWC image `big` with the pixel of
/// `small` it copies (nearest neighbour): `f(big offset, small offset)`.
fn for_each_upsampled(big: &[usize], small: &[usize], s: [usize; 2], mut f: impl FnMut(usize, usize)) {
    let c = big[3];
    for b in 0..big[0] {
        for i in 0..big[1] {
            for j in 0..big[2] {
                f(((b * big[1] + i) * big[2] + j) * c, ((b * small[1] + i / s[0]) * small[2] + j / s[1]) * c);
            }
        }
    }
}

fn upsample<T: Real>(x: &ArrayViewD<T>, s: [usize; 2], out: &[usize]) -> ArrayD<T> {
    let xd = std_vec(x);
    let c = out[3];
    let mut o = vec![T::zero(); numel(out)];
    for_each_upsampled(out, x.shape(), s, |dst, src| o[dst..dst + c].copy_from_slice(&xd[src..src + c]));
    ArrayD::from_shape_vec(IxDyn(out), o).expect("upsample")
}

/// The adjoint of upsampling: each small pixel sums the pixels copied from it.
fn upsample_grad<T: Real>(g: &ArrayViewD<T>, s: [usize; 2], out: &[usize]) -> ArrayD<T> {
    let gd = std_vec(g);
    let c = out[3];
    let mut o = vec![T::zero(); numel(out)];
    for_each_upsampled(g.shape(), out, s, |src, dst| {
        for k in 0..c {
            o[dst + k] = o[dst + k] + gd[src + k];
        }
    });
    ArrayD::from_shape_vec(IxDyn(out), o).expect("upsample grad")
}
