//! IR → ONNX graph: each primitive op of `nnc_compiler::ir` becomes one or a
//! few ONNX operators, so every layer exports without a per-layer table.
//!
//! The IR has concrete shapes; the batch stays symbolic through [`Size`]: the
//! caller lowers the model at two batch sizes and marks each axis that
//! changed as `Batch(k)` (k·N). Reshape targets then use -1 for that axis (or
//! a shape computed from the batch size taken from an input), filled
//! constants use `ConstantOfShape` of such a shape, broadcasts `Expand` with
//! 1 where the operand already has the batch axis.
//!
//! Layouts: the IR is channels-last (NHWC, kernels `[KH, KW, C/G, F]` as
//! Keras stores them); ONNX convolutions and pooling are channels-first, so
//! those ops are wrapped in transposes, and initialisers keep nnc's layout
//! and names.

use std::collections::BTreeMap;

use nnc_compiler::ir::{Binary, DType, Func, Id, Op, Reduce, Unary, Window};

use super::proto::{
    AttributeProto, DataType, Dimension, GraphProto, NodeProto, TensorProto, TensorShapeProto, TensorTypeProto,
    TypeProto, ValueInfoProto,
};

/// One axis of a value: a fixed size, or `k` times the batch dim.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Size {
    /// A size that does not depend on the batch.
    Fixed(usize),
    /// `k · N`.
    Batch(usize),
}

/// Why a function cannot be written as ONNX.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unsupported {
    /// The layer the op belongs to, when known.
    pub layer: Option<String>,
    /// What cannot be exported.
    pub what: String,
}

impl std::fmt::Display for Unsupported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.layer {
            Some(l) => write!(f, "layer `{l}`: {} has no ONNX export", self.what),
            None => write!(f, "{} has no ONNX export", self.what),
        }
    }
}

/// What the converter needs besides the function.
pub struct Source<'a> {
    /// The function, lowered in inference mode.
    pub func: &'a Func,
    /// For each node, its shape with batch axes marked.
    pub sizes: &'a [Vec<Size>],
    /// Parameter values by name (row-major, the IR's declared shapes).
    pub weights: &'a BTreeMap<String, Vec<f32>>,
    /// The name of the symbolic batch dim in the graph's inputs and outputs.
    pub batch_name: &'a str,
}

/// The element types ONNX values take here.
fn onnx_type(d: DType) -> DataType {
    match d {
        DType::F32 => DataType::Float,
        DType::I64 => DataType::Int64,
    }
}

struct Emitter<'a> {
    src: &'a Source<'a>,
    nodes: Vec<NodeProto>,
    inits: Vec<TensorProto>,
    inputs: Vec<ValueInfoProto>,
    /// The ONNX value of each IR node (empty until emitted).
    names: Vec<String>,
    /// A 1-D int64 tensor `[N]`, made on first need.
    batch: Option<String>,
    /// The IR node being converted (names helper values after it).
    at: Id,
    fresh: usize,
}

/// Converts `src.func` (its outputs in order) to an ONNX graph named `name`.
pub fn convert(src: &Source, name: &str) -> Result<GraphProto, Unsupported> {
    let f = src.func;
    let mut e = Emitter {
        src,
        nodes: Vec::new(),
        inits: Vec::new(),
        inputs: Vec::new(),
        names: vec![String::new(); f.nodes.len()],
        batch: None,
        at: 0,
        fresh: 0,
    };
    let live = live_nodes(f);
    for id in 0..f.nodes.len() as Id {
        if live[id as usize] {
            e.at = id;
            e.names[id as usize] = e.node(id)?;
        }
    }
    // Every parameter is an initialiser, also those no output reads (a normalisation's sample count):
    // the file then holds exactly a checkpoint's tensors.
    let emitted: std::collections::HashSet<String> = e.inits.iter().filter_map(|t| t.name.clone()).collect();
    for p in &f.params {
        if !emitted.contains(&p.name) {
            let v = src
                .weights
                .get(&p.name)
                .ok_or_else(|| Unsupported { layer: None, what: format!("missing weight `{}`", p.name) })?;
            e.inits.push(TensorProto::floats(&p.name, &p.shape, v));
        }
    }
    let mut outputs = Vec::new();
    let mut seen: Vec<String> = e.inputs.iter().filter_map(|i| i.name.clone()).collect();
    seen.extend(e.inits.iter().filter_map(|t| t.name.clone()));
    let mut taken: Vec<String> = Vec::new();
    for (out, id) in &f.outputs {
        if seen.contains(out) || taken.contains(out) {
            return Err(Unsupported { layer: None, what: format!("an output named `{out}` like an input or weight") });
        }
        taken.push(out.clone());
        // An output is always its own value, so a graph output never aliases an input or a weight.
        e.at = *id;
        let v = e.value(*id, DType::F32);
        e.nodes.push(NodeProto {
            input: vec![v],
            output: vec![out.clone()],
            name: Some(format!("output/{out}")),
            op_type: Some("Identity".into()),
            attribute: vec![],
        });
        outputs.push(value_info(out, DType::F32, &src.sizes[*id as usize], src.batch_name));
    }
    Ok(GraphProto {
        node: e.nodes,
        name: Some(name.into()),
        initializer: e.inits,
        doc_string: None,
        input: e.inputs,
        output: outputs,
    })
}

/// Nodes the outputs depend on (lowering may leave dead ones, e.g. an unused state).
fn live_nodes(f: &Func) -> Vec<bool> {
    let mut live = vec![false; f.nodes.len()];
    let mut stack: Vec<Id> = f.outputs.iter().map(|(_, id)| *id).collect();
    while let Some(id) = stack.pop() {
        if !std::mem::replace(&mut live[id as usize], true) {
            stack.extend(&f.nodes[id as usize].args);
        }
    }
    live
}

/// A graph input or output: element type and shape, batch axes by name.
fn value_info(name: &str, d: DType, sizes: &[Size], batch: &str) -> ValueInfoProto {
    let dim = sizes
        .iter()
        .map(|s| match s {
            Size::Fixed(n) => Dimension { dim_value: Some(*n as i64), dim_param: None },
            Size::Batch(1) => Dimension { dim_value: None, dim_param: Some(batch.into()) },
            Size::Batch(k) => Dimension { dim_value: None, dim_param: Some(format!("{k}*{batch}")) },
        })
        .collect();
    let tensor_type = TensorTypeProto { elem_type: Some(onnx_type(d) as i32), shape: Some(TensorShapeProto { dim }) };
    ValueInfoProto { name: Some(name.into()), r#type: Some(TypeProto { tensor_type: Some(tensor_type) }) }
}

fn window_attrs(w: &Window) -> Vec<AttributeProto> {
    let i = |v: &[usize]| v.iter().map(|&x| x as i64).collect::<Vec<i64>>();
    vec![
        AttributeProto::ints("kernel_shape", i(&w.kernel)),
        AttributeProto::ints("strides", i(&w.stride)),
        // The IR's [top, left, bottom, right] is ONNX's [x1_begin, x2_begin, x1_end, x2_end].
        AttributeProto::ints("pads", i(&w.pad)),
    ]
}

impl Emitter<'_> {
    fn layer(&self) -> Option<String> {
        let l = self.src.func.nodes[self.at as usize].layer?;
        self.src.func.layers.get(l as usize).cloned()
    }

    fn unsupported(&self, what: impl Into<String>) -> Unsupported {
        Unsupported { layer: self.layer(), what: what.into() }
    }

    /// A new value name for a piece of the current node.
    fn fresh(&mut self, what: &str) -> String {
        self.fresh += 1;
        let prefix = self.layer().unwrap_or_default();
        format!("{prefix}/{what}_{}_{}", self.at, self.fresh)
    }

    /// Appends `op(inputs) -> one fresh value`, returns the value.
    fn op(&mut self, op: &str, inputs: Vec<String>, attribute: Vec<AttributeProto>) -> String {
        let out = self.fresh(&op.to_lowercase());
        self.nodes.push(NodeProto {
            input: inputs,
            output: vec![out.clone()],
            name: Some(out.clone()),
            op_type: Some(op.into()),
            attribute,
        });
        out
    }

    fn sizes(&self, id: Id) -> &[Size] {
        &self.src.sizes[id as usize]
    }

    /// The value of IR node `id` as `want` (a cast when the IR holds the other type).
    fn value(&mut self, id: Id, want: DType) -> String {
        let v = self.names[id as usize].clone();
        if self.src.func.nodes[id as usize].dtype == want {
            return v;
        }
        self.op("Cast", vec![v], vec![AttributeProto::int("to", onnx_type(want) as i64)])
    }

    fn float(&mut self, id: Id) -> String {
        self.value(id, DType::F32)
    }

    fn const_i64(&mut self, what: &str, values: &[i64]) -> String {
        let name = self.fresh(what);
        self.inits.push(TensorProto::int64s(&name, &[values.len()], values));
        name
    }

    fn const_f32(&mut self, what: &str, v: f32) -> String {
        let name = self.fresh(what);
        self.inits.push(TensorProto::floats(&name, &[], &[v]));
        name
    }

    /// The batch size as a 1-D int64 tensor `[N]`, read from a graph input with an `N` axis.
    fn batch(&mut self) -> Result<String, Unsupported> {
        if let Some(b) = &self.batch {
            return Ok(b.clone());
        }
        // An input already emitted: a batch-sized value comes after the input it derives from.
        let f = self.src.func;
        let found = f.nodes.iter().enumerate().find_map(|(i, n)| {
            let axis = self.src.sizes[i].iter().position(|s| *s == Size::Batch(1))?;
            (matches!(n.op, Op::Input(_)) && !self.names[i].is_empty()).then_some((i, axis))
        });
        let (i, axis) =
            found.ok_or_else(|| self.unsupported("a batch-sized value in a model without a batch input"))?;
        let input = self.names[i].clone();
        let attrs = vec![AttributeProto::int("start", axis as i64), AttributeProto::int("end", axis as i64 + 1)];
        let b = self.op("Shape", vec![input], attrs);
        self.batch = Some(b.clone());
        Ok(b)
    }

    /// A 1-D int64 shape tensor for `sizes`: a constant when no axis is the batch, else built from it.
    fn shape_tensor(&mut self, sizes: &[Size]) -> Result<String, Unsupported> {
        let mut parts: Vec<String> = Vec::new();
        let mut fixed: Vec<i64> = Vec::new();
        for s in sizes {
            match *s {
                Size::Fixed(n) => fixed.push(n as i64),
                Size::Batch(k) => {
                    if !fixed.is_empty() {
                        let c = self.const_i64("dims", &std::mem::take(&mut fixed));
                        parts.push(c);
                    }
                    let b = self.batch()?;
                    parts.push(if k == 1 {
                        b
                    } else {
                        let c = self.const_i64("times", &[k as i64]);
                        self.op("Mul", vec![b, c], vec![])
                    });
                }
            }
        }
        if parts.is_empty() || !fixed.is_empty() {
            let c = self.const_i64("dims", &fixed);
            parts.push(c);
        }
        Ok(if parts.len() == 1 {
            parts.pop().unwrap_or_default()
        } else {
            self.op("Concat", parts, vec![AttributeProto::int("axis", 0)])
        })
    }

    /// `Reshape(x)` to `sizes`: -1 for a single batch axis, else a computed shape.
    fn reshape(&mut self, x: String, sizes: &[Size]) -> Result<String, Unsupported> {
        let batch_axes = sizes.iter().filter(|s| matches!(s, Size::Batch(_))).count();
        let shape = if batch_axes == 1 {
            let v: Vec<i64> = sizes.iter().map(|s| if let Size::Fixed(n) = s { *n as i64 } else { -1 }).collect();
            self.const_i64("shape", &v)
        } else {
            self.shape_tensor(sizes)?
        };
        Ok(self.op("Reshape", vec![x, shape], vec![]))
    }

    fn transpose(&mut self, x: String, perm: &[usize]) -> String {
        let perm = perm.iter().map(|&p| p as i64).collect();
        self.op("Transpose", vec![x], vec![AttributeProto::ints("perm", perm)])
    }

    /// The ONNX value computing IR node `id`.
    // long: one arm per IR op, the whole mapping in one place.
    fn node(&mut self, id: Id) -> Result<String, Unsupported> {
        let f = self.src.func;
        let n = &f.nodes[id as usize];
        let a = |i: usize| n.args[i];
        Ok(match &n.op {
            Op::Input(name) => {
                self.inputs.push(value_info(name, n.dtype, self.sizes(id), self.src.batch_name));
                name.clone()
            }
            Op::Param(i) => {
                let p = &f.params[*i];
                let values = self
                    .src
                    .weights
                    .get(&p.name)
                    .ok_or_else(|| self.unsupported(format!("missing weight `{}`", p.name)))?;
                if values.len() != nnc_compiler::ir::numel(&p.shape) {
                    return Err(self.unsupported(format!("weight `{}` of the wrong size", p.name)));
                }
                self.inits.push(TensorProto::floats(&p.name, &p.shape, values));
                p.name.clone()
            }
            Op::Fill(v) => self.fill(id, *v)?,
            Op::Constant(values) => {
                let name = self.fresh("constant");
                self.inits.push(TensorProto::floats(&name, &n.shape, values));
                name
            }
            Op::Unary(u) => {
                let x = self.float(a(0));
                self.unary(*u, x)?
            }
            Op::Binary(b) => {
                let (x, y) = (self.float(a(0)), self.float(a(1)));
                self.binary(*b, x, y)
            }
            Op::PowConst(p) => {
                let x = self.float(a(0));
                let c = self.const_f32("exponent", *p as f32);
                self.op("Pow", vec![x, c], vec![])
            }
            Op::Elu(alpha) => {
                let x = self.float(a(0));
                self.op("Elu", vec![x], vec![AttributeProto::float("alpha", *alpha as f32)])
            }
            Op::LeakyRelu(alpha) => {
                let x = self.float(a(0));
                self.op("LeakyRelu", vec![x], vec![AttributeProto::float("alpha", *alpha as f32)])
            }
            Op::MatMul { ta, tb } => {
                let (x, y) = (self.float(a(0)), self.float(a(1)));
                let x = if *ta { self.swap_last(x, f.shape(a(0)).len()) } else { x };
                let y = if *tb { self.swap_last(y, f.shape(a(1)).len()) } else { y };
                self.op("MatMul", vec![x, y], vec![])
            }
            Op::Reduce { op, axes, keep } => {
                let x = self.float(a(0));
                self.reduce(*op, x, axes, *keep)
            }
            Op::SumTo => self.sum_to(a(0), id)?,
            Op::BroadcastTo => self.broadcast_to(a(0), id)?,
            Op::Reshape => {
                let x = self.names[a(0) as usize].clone();
                let sizes = self.sizes(id).to_vec();
                self.reshape(x, &sizes)?
            }
            Op::Transpose(perm) => {
                let x = self.float(a(0));
                self.transpose(x, perm)
            }
            Op::Slice { axis, start, end } => {
                let x = self.names[a(0) as usize].clone();
                let s = self.const_i64("starts", &[*start as i64]);
                let e = self.const_i64("ends", &[*end as i64]);
                let ax = self.const_i64("axes", &[*axis as i64]);
                self.op("Slice", vec![x, s, e, ax], vec![])
            }
            Op::Pad { axis, before, after } => {
                let x = self.float(a(0));
                let r = f.shape(a(0)).len();
                let mut pads = vec![0i64; 2 * r];
                pads[*axis] = *before as i64;
                pads[r + axis] = *after as i64;
                let p = self.const_i64("pads", &pads);
                self.op("Pad", vec![x, p], vec![])
            }
            Op::Concat(axis) => {
                let xs = n.args.iter().map(|&x| self.float(x)).collect();
                self.op("Concat", xs, vec![AttributeProto::int("axis", *axis as i64)])
            }
            Op::Gather => {
                let (table, idx) = (self.float(a(0)), self.value(a(1), DType::I64));
                self.op("Gather", vec![table, idx], vec![AttributeProto::int("axis", 0)])
            }
            Op::OneHot(depth) => {
                let idx = self.value(a(0), DType::I64);
                let d = self.const_i64("depth", &[*depth as i64]);
                let name = self.fresh("off_on");
                self.inits.push(TensorProto::floats(&name, &[2], &[0.0, 1.0]));
                self.op("OneHot", vec![idx, d, name], vec![AttributeProto::int("axis", -1)])
            }
            Op::Softmax(axis) => {
                let x = self.float(a(0));
                self.op("Softmax", vec![x], vec![AttributeProto::int("axis", *axis as i64)])
            }
            Op::LogSoftmax(axis) => {
                let x = self.float(a(0));
                self.op("LogSoftmax", vec![x], vec![AttributeProto::int("axis", *axis as i64)])
            }
            Op::Conv2d { window, groups } => {
                let (x, k) = (self.float(a(0)), self.float(a(1)));
                let x = self.transpose(x, &[0, 3, 1, 2]);
                let k = self.transpose(k, &[3, 2, 0, 1]);
                let mut attrs = window_attrs(window);
                attrs.push(AttributeProto::ints("dilations", window.dilation.iter().map(|&d| d as i64).collect()));
                attrs.push(AttributeProto::int("group", *groups as i64));
                let y = self.op("Conv", vec![x, k], attrs);
                self.transpose(y, &[0, 2, 3, 1])
            }
            Op::MaxPool(window) => {
                let x = self.float(a(0));
                let x = self.transpose(x, &[0, 3, 1, 2]);
                let mut attrs = window_attrs(window);
                attrs.push(AttributeProto::ints("dilations", window.dilation.iter().map(|&d| d as i64).collect()));
                let y = self.op("MaxPool", vec![x], attrs);
                self.transpose(y, &[0, 2, 3, 1])
            }
            Op::AvgPool { window, count_pad } => {
                if window.dilation != [1, 1] {
                    return Err(self.unsupported("dilated average pooling"));
                }
                let x = self.float(a(0));
                let x = self.transpose(x, &[0, 3, 1, 2]);
                let mut attrs = window_attrs(window);
                attrs.push(AttributeProto::int("count_include_pad", i64::from(*count_pad)));
                let y = self.op("AveragePool", vec![x], attrs);
                self.transpose(y, &[0, 2, 3, 1])
            }
            Op::Upsample(s) => self.upsample(a(0), *s)?,
            Op::Random { .. } => return Err(self.unsupported("random noise (a training-only op)")),
            // A transposed convolution (`conv2d_transpose`) is lowered as the input gradient of a convolution.
            Op::Conv2dInputGrad { window, groups } => self.conv_transpose(id, window, *groups)?,
            op @ (Op::ScatterAdd
            | Op::Conv2dKernelGrad { .. }
            | Op::MaxPoolGrad(_)
            | Op::AvgPoolGrad { .. }
            | Op::UpsampleGrad(_)) => return Err(self.unsupported(format!("the gradient op `{op}`"))),
        })
    }

    /// `ConvTranspose` of `dy` with the forward kernel `[KH, KW, C/G, F]`, whose ONNX layout
    /// `[F, C/G, KH, KW]` is the convolution's; `output_padding` restores the rows a strided forward
    /// convolution dropped, so the result has node `id`'s shape.
    fn conv_transpose(&mut self, id: Id, window: &Window, groups: usize) -> Result<String, Unsupported> {
        let n = &self.src.func.nodes[id as usize];
        let (dy, k) = (n.args[0], n.args[1]);
        let (full, out) = (n.shape.clone(), self.src.func.shape(dy).to_vec());
        let mut extra = Vec::new();
        for i in 0..2 {
            let span = window.dilation[i] * (window.kernel[i] - 1) + 1;
            let made = (window.stride[i] * (out[i + 1] - 1) + span).checked_sub(window.pad[i] + window.pad[i + 2]);
            match made.and_then(|m| full[i + 1].checked_sub(m)) {
                Some(e) if e < window.stride[i].max(window.dilation[i]) => extra.push(e as i64),
                _ => return Err(self.unsupported("a transposed convolution of this geometry")),
            }
        }
        let (x, k) = (self.float(dy), self.float(k));
        let x = self.transpose(x, &[0, 3, 1, 2]);
        let k = self.transpose(k, &[3, 2, 0, 1]);
        let mut attrs = window_attrs(window);
        attrs.push(AttributeProto::ints("dilations", window.dilation.iter().map(|&d| d as i64).collect()));
        attrs.push(AttributeProto::int("group", groups as i64));
        attrs.push(AttributeProto::ints("output_padding", extra));
        let y = self.op("ConvTranspose", vec![x, k], attrs);
        Ok(self.transpose(y, &[0, 2, 3, 1]))
    }

    fn swap_last(&mut self, x: String, rank: usize) -> String {
        let mut perm: Vec<usize> = (0..rank).collect();
        perm.swap(rank - 2, rank - 1);
        self.transpose(x, &perm)
    }

    fn unary(&mut self, u: Unary, x: String) -> Result<String, Unsupported> {
        let simple = match u {
            Unary::Neg => "Neg",
            Unary::Exp => "Exp",
            Unary::Log => "Log",
            Unary::Sqrt => "Sqrt",
            Unary::Abs => "Abs",
            Unary::Relu => "Relu",
            Unary::Sigmoid => "Sigmoid",
            Unary::Tanh => "Tanh",
            Unary::Softplus => "Softplus",
            Unary::Recip => "Reciprocal",
            Unary::Sign => "Sign",
            Unary::Square => return Ok(self.op("Mul", vec![x.clone(), x], vec![])),
            Unary::Positive => {
                let zero = self.const_f32("zero", 0.0);
                return Ok(self.binary(Binary::Greater, x, zero));
            }
            // x·Φ(x) = x · ½(1 + erf(x/√2)), as the reference executor computes it (`Gelu` is opset 20).
            Unary::Gelu => {
                let c = self.const_f32("inv_sqrt2", std::f32::consts::FRAC_1_SQRT_2);
                let scaled = self.op("Mul", vec![x.clone(), c], vec![]);
                let erf = self.op("Erf", vec![scaled], vec![]);
                let one = self.const_f32("one", 1.0);
                let phi2 = self.op("Add", vec![erf, one], vec![]);
                let half = self.const_f32("half", 0.5);
                let phi = self.op("Mul", vec![phi2, half], vec![]);
                return Ok(self.op("Mul", vec![x, phi], vec![]));
            }
            Unary::GeluGrad => return Err(self.unsupported("the gradient op `gelugrad`")),
        };
        Ok(self.op(simple, vec![x], vec![]))
    }

    fn binary(&mut self, b: Binary, x: String, y: String) -> String {
        let (op, compare) = match b {
            Binary::Add => ("Add", false),
            Binary::Sub => ("Sub", false),
            Binary::Mul => ("Mul", false),
            Binary::Div => ("Div", false),
            Binary::Max => ("Max", false),
            Binary::Min => ("Min", false),
            Binary::Greater => ("Greater", true),
            Binary::Equal => ("Equal", true),
        };
        let v = self.op(op, vec![x, y], vec![]);
        if compare {
            // Comparisons give booleans; the IR's masks are 1.0/0.0 floats.
            self.op("Cast", vec![v], vec![AttributeProto::int("to", DataType::Float as i64)])
        } else {
            v
        }
    }

    fn reduce(&mut self, op: Reduce, x: String, axes: &[usize], keep: bool) -> String {
        if axes.is_empty() {
            return self.op("Identity", vec![x], vec![]);
        }
        let name = match op {
            Reduce::Sum => "ReduceSum",
            Reduce::Mean => "ReduceMean",
            Reduce::Max => "ReduceMax",
        };
        let ax: Vec<i64> = axes.iter().map(|&a| a as i64).collect();
        let ax = self.const_i64("axes", &ax);
        self.op(name, vec![x, ax], vec![AttributeProto::int("keepdims", i64::from(keep))])
    }

    /// A constant of node `id`'s shape: a scalar initialiser, or `ConstantOfShape`.
    fn fill(&mut self, id: Id, v: f64) -> Result<String, Unsupported> {
        let sizes = self.sizes(id).to_vec();
        if sizes.is_empty() {
            return Ok(self.const_f32("fill", v as f32));
        }
        let shape = self.shape_tensor(&sizes)?;
        let value = TensorProto::floats("value", &[1], &[v as f32]);
        Ok(self.op("ConstantOfShape", vec![shape], vec![AttributeProto::tensor("value", value)]))
    }

    /// Sums the broadcast axes of `x` down to node `id`'s shape.
    fn sum_to(&mut self, x: Id, id: Id) -> Result<String, Unsupported> {
        let (from, to) = (self.sizes(x).to_vec(), self.sizes(id).to_vec());
        let lead = from.len() - to.len();
        let axes: Vec<usize> = (0..from.len()).filter(|&i| i < lead || (to[i - lead] != from[i])).collect();
        let v = self.float(x);
        let summed = self.reduce(Reduce::Sum, v, &axes, true);
        self.reshape(summed, &to)
    }

    /// `Expand` to node `id`'s shape; a batch axis the operand has is left to broadcasting (1).
    fn broadcast_to(&mut self, x: Id, id: Id) -> Result<String, Unsupported> {
        let (from, to) = (self.sizes(x).to_vec(), self.sizes(id).to_vec());
        let lead = to.len() - from.len();
        let mut target = Vec::new();
        let mut dynamic = false;
        for (i, s) in to.iter().enumerate() {
            target.push(match s {
                Size::Fixed(n) => Size::Fixed(*n),
                Size::Batch(_) if i >= lead && from[i - lead] == *s => Size::Fixed(1),
                Size::Batch(_) => {
                    dynamic = true;
                    *s
                }
            });
        }
        let shape = self.shape_tensor(if dynamic { &to } else { &target })?;
        let v = self.float(x);
        Ok(self.op("Expand", vec![v, shape], vec![]))
    }

    /// Nearest-neighbour upsampling of NHWC `x`: each pixel repeated as an `[sh, sw]` block.
    fn upsample(&mut self, x: Id, s: [usize; 2]) -> Result<String, Unsupported> {
        let sz = self.sizes(x).to_vec();
        let [n, h, w, c] = sz[..] else { return Err(self.unsupported("upsampling of a tensor not of rank 4")) };
        let v = self.float(x);
        let spread = self.reshape(v, &[n, h, Size::Fixed(1), w, Size::Fixed(1), c])?;
        let reps = self.const_i64("blocks", &[1, 1, s[0] as i64, 1, s[1] as i64, 1]);
        let blocks = self.op("Expand", vec![spread, reps], vec![]);
        let mul = |a: Size, k: usize| match a {
            Size::Fixed(m) => Size::Fixed(m * k),
            Size::Batch(m) => Size::Batch(m * k),
        };
        let out = [n, mul(h, s[0]), mul(w, s[1]), c];
        self.reshape(blocks, &out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::onnx::{PROBES, batch_sizes};
    use nnc_compiler::ir::ParamDecl;

    /// `build` at both probe batch sizes, converted; the op types in order.
    fn convert_at(build: impl Fn(usize) -> Func) -> Result<(GraphProto, Vec<String>), Unsupported> {
        let (f, g) = (build(PROBES[0]), build(PROBES[1]));
        let sizes = batch_sizes(&f, &g).map_err(|what| Unsupported { layer: None, what })?;
        let weights: BTreeMap<String, Vec<f32>> =
            f.params.iter().map(|p| (p.name.clone(), vec![0.5; nnc_compiler::ir::numel(&p.shape)])).collect();
        let src = Source { func: &f, sizes: &sizes, weights: &weights, batch_name: "N" };
        let g = convert(&src, "m")?;
        let ops = g.node.iter().map(|n| n.op_type.clone().unwrap_or_default()).collect();
        Ok((g, ops))
    }

    fn param(f: &mut Func, name: &str, shape: Vec<usize>) -> Id {
        f.params.push(ParamDecl { name: name.into(), shape: shape.clone(), trainable: true, init: "zeros".into() });
        f.push(Op::Param(f.params.len() - 1), vec![], shape, DType::F32, None)
    }

    fn attr<'a>(n: &'a NodeProto, name: &str) -> &'a AttributeProto {
        n.attribute.iter().find(|a| a.name.as_deref() == Some(name)).unwrap()
    }

    #[test]
    fn convolution_is_channels_first_between_transposes() {
        let (g, ops) = convert_at(|n| {
            let mut f = Func::default();
            f.layers.push("features.conv2d".into());
            let x = f.input("x", vec![n, 8, 8, 3], DType::F32);
            let k = param(&mut f, "features.conv2d.kernel", vec![3, 3, 3, 4]);
            f.current_layer = Some(0);
            let w = Window { kernel: [3, 3], stride: [2, 2], dilation: [1, 1], pad: [0, 1, 1, 0] };
            let y = f.push(Op::Conv2d { window: w, groups: 1 }, vec![x, k], vec![n, 4, 4, 4], DType::F32, Some(0));
            f.outputs.push(("y".into(), y));
            f
        })
        .unwrap();
        assert_eq!(ops, ["Transpose", "Transpose", "Conv", "Transpose", "Identity"]);
        let conv = &g.node[2];
        assert_eq!(attr(conv, "pads").ints, [0, 1, 1, 0]);
        assert_eq!(attr(conv, "strides").ints, [2, 2]);
        assert_eq!(attr(&g.node[1], "perm").ints, [3, 2, 0, 1], "[KH,KW,C,F] → [F,C,KH,KW]");
        assert_eq!(g.initializer[0].name.as_deref(), Some("features.conv2d.kernel"));
        assert!(conv.name.as_deref().unwrap().starts_with("features.conv2d/"), "named after the layer");
        let batch = &g.input[0].r#type.as_ref().unwrap().tensor_type.as_ref().unwrap().shape.as_ref().unwrap().dim[0];
        assert_eq!(batch.dim_param.as_deref(), Some("N"));
    }

    #[test]
    fn batch_sized_reshapes_and_fills_stay_symbolic() {
        let (g, ops) = convert_at(|n| {
            let mut f = Func::default();
            let x = f.input("x", vec![n, 6], DType::F32);
            let r = f.reshape(x, vec![n * 2, 3]);
            let zeros = f.fill(0.0, vec![n * 2, 3]);
            let y = f.add(r, zeros);
            f.outputs.push(("y".into(), y));
            f
        })
        .unwrap();
        assert_eq!(ops, ["Reshape", "Shape", "Mul", "Concat", "ConstantOfShape", "Add", "Identity"]);
        let shape = g.initializer.iter().find(|t| t.name == Some(g.node[0].input[1].clone())).unwrap();
        assert_eq!(shape.raw_data.as_ref().unwrap()[..8], (-1i64).to_le_bytes(), "the batch axis is -1");
        let out = &g.output[0].r#type.as_ref().unwrap().tensor_type.as_ref().unwrap().shape.as_ref().unwrap().dim;
        assert_eq!(out[0].dim_param.as_deref(), Some("2*N"));
    }

    #[test]
    fn a_shape_not_a_multiple_of_the_batch_is_refused() {
        let e = convert_at(|n| {
            let mut f = Func::default();
            let x = f.input("x", vec![n, 2], DType::F32);
            let pad = Op::Pad { axis: 0, before: 1, after: 0 };
            let p = f.push(pad, vec![x], vec![n + 1, 2], DType::F32, None);
            f.outputs.push(("y".into(), p));
            f
        })
        .unwrap_err();
        assert!(e.what.contains("depends on N"), "{}", e.what);
    }

    #[test]
    fn training_and_gradient_ops_name_their_layer() {
        let e = convert_at(|n| {
            let mut f = Func::default();
            f.layers.push("noise".into());
            let x = f.input("x", vec![n, 2], DType::F32);
            let r = f.push(Op::Random { normal: true }, vec![], vec![n, 2], DType::F32, Some(0));
            let y = f.add(x, r);
            f.outputs.push(("y".into(), y));
            f
        })
        .unwrap_err();
        assert_eq!(e.layer.as_deref(), Some("noise"));
        assert_eq!(e.to_string(), "layer `noise`: random noise (a training-only op) has no ONNX export");
    }

    #[test]
    fn integer_inputs_are_cast_where_floats_are_needed() {
        let (_, ops) = convert_at(|n| {
            let mut f = Func::default();
            let t = f.input("tokens", vec![n, 4], DType::I64);
            let table = param(&mut f, "embedding.embeddings", vec![10, 3]);
            let e = f.push(Op::Gather, vec![table, t], vec![n, 4, 3], DType::F32, None);
            let z = f.scalar(0.0);
            let c = f.binary(Binary::Add, t, z);
            let c = f.reshape(c, vec![n, 4, 1]);
            let y = f.mul(e, c);
            f.outputs.push(("y".into(), y));
            f
        })
        .unwrap();
        assert_eq!(ops, ["Gather", "Cast", "Add", "Reshape", "Mul", "Identity"]);
    }
}
