//! The graph IR: a small set of primitive tensor operations with concrete
//! shapes, the target of lowering and the input of autodiff, the reference
//! executor and (later) the Cranelift JIT.
//!
//! A [`Func`] is a list of nodes in evaluation order; each node computes one
//! tensor from earlier nodes. Shapes are concrete: lowering binds the batch
//! dim `N`. `Display` prints a canonical text form (`nnc ir`), which
//! [`parse::parse`] reads back.

pub mod autodiff;
pub mod lower;
pub mod parse;

use std::fmt;

/// Index of a node in its [`Func`]'s `nodes`; arguments always have smaller ids.
pub type Id = u32;

/// The element type of a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DType {
    /// 32-bit float (every computed value).
    F32,
    /// Indices and labels.
    I64,
}

/// Elementwise operations of one operand.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Unary {
    /// `-x`
    Neg,
    /// `eˣ`
    Exp,
    /// Natural logarithm.
    Log,
    /// Square root.
    Sqrt,
    /// `|x|`
    Abs,
    /// `max(x, 0)`
    Relu,
    /// `1 / (1 + e⁻ˣ)`
    Sigmoid,
    /// Hyperbolic tangent.
    Tanh,
    /// tanh-free exact GELU: x·Φ(x).
    Gelu,
    /// Derivative of GELU, used by its gradient.
    GeluGrad,
    /// `ln(1 + eˣ)`
    Softplus,
    /// `x²`
    Square,
    /// `1 / x`
    Recip,
    /// 1 where x > 0 else 0 (masks for gradients).
    Positive,
    /// sign(x) (gradient of abs).
    Sign,
}

/// Elementwise operations of two operands, with NumPy broadcasting.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Binary {
    /// `a + b`
    Add,
    /// `a - b`
    Sub,
    /// `a · b`
    Mul,
    /// `a / b`
    Div,
    /// The larger of `a` and `b`.
    Max,
    /// The smaller of `a` and `b`.
    Min,
    /// 1 where a > b else 0.
    Greater,
    /// 1 where a == b else 0.
    Equal,
}

/// Reductions over axes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reduce {
    /// The sum.
    Sum,
    /// The arithmetic mean.
    Mean,
    /// The maximum (its gradient goes to the first maximal element).
    Max,
}

/// 2-D window geometry shared by convolution and pooling (NHWC).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Window {
    /// Window size `[kh, kw]`.
    pub kernel: [usize; 2],
    /// Step between windows `[sh, sw]`.
    pub stride: [usize; 2],
    /// Spacing of the window's taps `[dh, dw]` (1: contiguous).
    pub dilation: [usize; 2],
    /// Zero padding: top, left, bottom, right.
    pub pad: [usize; 4],
}

impl Window {
    /// Output size of a valid window over padded input.
    pub fn out(&self, h: usize, w: usize) -> [usize; 2] {
        let f = |n: usize, i: usize, lo: usize, hi: usize| {
            let span = self.dilation[i] * (self.kernel[i] - 1) + 1;
            (n + lo + hi).saturating_sub(span) / self.stride[i] + 1
        };
        [f(h, 0, self.pad[0], self.pad[2]), f(w, 1, self.pad[1], self.pad[3])]
    }
}

/// A node's operation; its operands are the node's `args`, its result shape the node's `shape`.
#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    /// A fed tensor (model input or data array).
    Input(String),
    /// Parameter number `i` of the function's parameter list.
    Param(usize),
    /// A constant filled with one value.
    Fill(f64),
    /// A constant tensor (e.g. the sinusoidal position table), row-major.
    Constant(Vec<f32>),
    /// An elementwise unary operation.
    Unary(Unary),
    /// `x` with a constant: LeakyRelu/ELU etc. are lowered through these.
    Binary(Binary),
    /// `a^p` for a constant `p` (gradient of sqrt, …).
    PowConst(f64),
    /// ELU with alpha: x if x > 0 else alpha·(e^x − 1).
    Elu(f64),
    /// Leaky ReLU: x if x > 0 else alpha·x.
    LeakyRelu(f64),
    /// Matrix product on the last two axes; leading axes are batch axes.
    MatMul {
        /// Transpose the first operand's last two axes.
        ta: bool,
        /// Transpose the second operand's last two axes.
        tb: bool,
    },
    /// Reduces `axes` of the operand.
    Reduce {
        /// The reduction.
        op: Reduce,
        /// The axes reduced, ascending.
        axes: Vec<usize>,
        /// Whether reduced axes stay as size 1.
        keep: bool,
    },
    /// Sums a broadcast result back to the shape of this node (gradient of broadcasting).
    SumTo,
    /// Broadcasts to the shape of this node.
    BroadcastTo,
    /// Same elements, this node's shape (row-major order kept).
    Reshape,
    /// Permutes axes: output axis `i` is input axis `perm[i]`.
    Transpose(Vec<usize>),
    /// `[start, end)` along one axis.
    Slice {
        /// The axis sliced.
        axis: usize,
        /// First index kept.
        start: usize,
        /// One past the last index kept.
        end: usize,
    },
    /// Zero padding along one axis (gradient of slice).
    Pad {
        /// The axis padded.
        axis: usize,
        /// Zeros before.
        before: usize,
        /// Zeros after.
        after: usize,
    },
    /// Joins the operands along the given axis.
    Concat(usize),
    /// Rows of a table (args: table `[V, D]`, indices int[…]) → […, D].
    Gather,
    /// Gradient of gather: (dy […, D], indices) → `[V, D]`.
    ScatterAdd,
    /// One-hot encoding of int indices with the given depth, as float.
    OneHot(usize),
    /// Softmax along the given axis.
    Softmax(usize),
    /// Log-softmax along the given axis (stable: `x - max - log Σ e^(x - max)`).
    LogSoftmax(usize),
    /// (x `[N,H,W,C]`, k `[KH,KW,C/G,F]`) → `[N,H',W',F]`, `G = groups` (Keras's
    /// layout): output channel f reads the input channels of group
    /// f / (F/G). Depthwise convolutions are `G = C` (their kernel
    /// `[KH,KW,C,M]` has the memory order of `[KH,KW,1,C·M]`).
    Conv2d {
        /// The window geometry.
        window: Window,
        /// Number of channel groups (1: an ordinary convolution).
        groups: usize,
    },
    /// (dy `[N,H',W',F]`, k `[KH,KW,C/G,F]`) → dx `[N,H,W,C]` (shape of this node).
    Conv2dInputGrad {
        /// The forward convolution's window.
        window: Window,
        /// The forward convolution's groups.
        groups: usize,
    },
    /// (x `[N,H,W,C]`, dy `[N,H',W',F]`) → dk `[KH,KW,C/G,F]`.
    Conv2dKernelGrad {
        /// The forward convolution's window.
        window: Window,
        /// The forward convolution's groups.
        groups: usize,
    },
    /// Max pooling over the window, NHWC.
    MaxPool(Window),
    /// (x, dy) → dx.
    MaxPoolGrad(Window),
    /// `count_pad`: divide by the full window (PyTorch) or by the valid cells (Keras `same`).
    AvgPool {
        /// The window geometry.
        window: Window,
        /// Whether padded cells count in the divisor.
        count_pad: bool,
    },
    /// Gradient of average pooling: (dy) → dx of this node's shape.
    AvgPoolGrad {
        /// The forward pooling's window.
        window: Window,
        /// The forward pooling's `count_pad`.
        count_pad: bool,
    },
    /// Nearest-neighbour upsampling by `[sh, sw]` on NHWC.
    Upsample([usize; 2]),
    /// Gradient of upsampling: sums each block.
    UpsampleGrad([usize; 2]),
    /// Random tensor, drawn at every run: uniform in [0, 1) or N(0, 1).
    Random {
        /// Normal (true) or uniform (false).
        normal: bool,
    },
}

/// One node of a [`Func`]: an operation on earlier nodes, with its concrete result shape.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    /// The operation.
    pub op: Op,
    /// The operands, as ids of earlier nodes.
    pub args: Vec<Id>,
    /// The result's shape (row-major, concrete).
    pub shape: Vec<usize>,
    /// The result's element type.
    pub dtype: DType,
    /// The layer that produced this node (index into `Func::layers`), to
    /// name it when a value goes non-finite.
    pub layer: Option<u32>,
}

/// A parameter of a [`Func`] (`Op::Param(i)` reads `params[i]`).
#[derive(Clone, Debug, PartialEq)]
pub struct ParamDecl {
    /// Full name (`features.conv2d.kernel`), as in checkpoints.
    pub name: String,
    /// Shape, Keras layout.
    pub shape: Vec<usize>,
    /// Whether the optimizer updates it (false for moving statistics).
    pub trainable: bool,
    /// Initialiser (`glorot_uniform`, `zeros`, `constant(v)`…), applied by the runtime.
    pub init: String,
}

/// A function of the IR: inputs and parameters in, named results out.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Func {
    /// The nodes in evaluation order.
    pub nodes: Vec<Node>,
    /// The parameters the function reads.
    pub params: Vec<ParamDecl>,
    /// Named results (`logits`, `loss`…) and the nodes that compute them.
    pub outputs: Vec<(String, Id)>,
    /// Names of the layers nodes belong to.
    pub layers: Vec<String>,
    /// Batch-norm moving statistics to update after a training step:
    /// (parameter index, batch statistic node, momentum).
    pub moving_updates: Vec<(usize, Id, f64)>,
    /// Recurrent states carried into the next batch (`stateful = true`):
    /// (name of the `Input` that takes the initial state, final state node).
    pub states: Vec<(String, Id)>,
    /// Metrics that are ratios of counts (precision, recall): (value node,
    /// numerator, denominator). Over a whole data set the exact value is the
    /// ratio of the summed parts, not the mean of per-batch ratios.
    pub ratios: Vec<(Id, Id, Id)>,
    /// The layer new nodes are attributed to (see `current_layer` users).
    pub current_layer: Option<u32>,
}

impl Func {
    /// The shape of node `id`.
    pub fn shape(&self, id: Id) -> &[usize] {
        &self.nodes[id as usize].shape
    }

    /// Appends a node (no shape inference: `shape` must be right) and returns its id.
    pub fn push(&mut self, op: Op, args: Vec<Id>, shape: Vec<usize>, dtype: DType, layer: Option<u32>) -> Id {
        self.nodes.push(Node { op, args, shape, dtype, layer });
        (self.nodes.len() - 1) as Id
    }

    /// The node of the output named `name`, if any.
    pub fn output(&self, name: &str) -> Option<Id> {
        self.outputs.iter().find(|(n, _)| n == name).map(|(_, id)| *id)
    }
}

/// The most elements one tensor may have: its buffer (f64 in the reference
/// executor) must fit in `isize::MAX` bytes. `lower` rejects bigger ones.
pub const MAX_ELEMENTS: usize = isize::MAX as usize / 8;

/// Element count of a shape. Saturates instead of overflowing: `lower`
/// refuses any node above [`MAX_ELEMENTS`], so a saturated count never
/// reaches an allocation, and building the graph up to that check must not
/// panic.
pub fn numel(shape: &[usize]) -> usize {
    checked_numel(shape).unwrap_or(usize::MAX)
}

/// Element count of a shape, `None` if it does not fit in a `usize`.
pub fn checked_numel(shape: &[usize]) -> Option<usize> {
    shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d))
}

/// NumPy broadcasting of two concrete shapes; `None` if incompatible.
pub fn broadcast_shapes(a: &[usize], b: &[usize]) -> Option<Vec<usize>> {
    let rank = a.len().max(b.len());
    let mut out = vec![0; rank];
    for i in 0..rank {
        let x = if i + a.len() >= rank { a[i + a.len() - rank] } else { 1 };
        let y = if i + b.len() >= rank { b[i + b.len() - rank] } else { 1 };
        out[i] = match (x, y) {
            _ if x == y => x,
            (1, _) => y,
            (_, 1) => x,
            _ => return None,
        };
    }
    Some(out)
}

/// `groups=G ` before a convolution's window; nothing for an ordinary
/// (one-group) convolution, so its text is what it always was.
fn groups_text(groups: usize) -> String {
    if groups == 1 { String::new() } else { format!("groups={groups} ") }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let w = |f: &mut fmt::Formatter<'_>, w: &Window| {
            write!(f, "k={:?} s={:?} d={:?} p={:?}", w.kernel, w.stride, w.dilation, w.pad)
        };
        match self {
            Op::Input(n) => write!(f, "input {n:?}"),
            Op::Param(i) => write!(f, "param {i}"),
            Op::Fill(v) => write!(f, "fill {v}"),
            // Small constants print their values (so the text parses back
            // to the same function); large tables only their size.
            Op::Constant(v) if v.len() <= parse::SHOWN_CONSTANT => {
                let vs: Vec<String> = v.iter().map(|x| x.to_string()).collect();
                write!(f, "constant [{}]", vs.join(", "))
            }
            Op::Constant(v) => write!(f, "constant [{} values]", v.len()),
            Op::Unary(u) => write!(f, "{}", format!("{u:?}").to_lowercase()),
            Op::Binary(b) => write!(f, "{}", format!("{b:?}").to_lowercase()),
            Op::PowConst(p) => write!(f, "pow {p}"),
            Op::Elu(a) => write!(f, "elu {a}"),
            Op::LeakyRelu(a) => write!(f, "leaky_relu {a}"),
            Op::MatMul { ta, tb } => {
                write!(f, "matmul{}{}", if *ta { " ta" } else { "" }, if *tb { " tb" } else { "" })
            }
            Op::Reduce { op, axes, keep } => {
                write!(f, "{} {axes:?}{}", format!("{op:?}").to_lowercase(), if *keep { " keep" } else { "" })
            }
            Op::SumTo => write!(f, "sum_to"),
            Op::BroadcastTo => write!(f, "broadcast_to"),
            Op::Reshape => write!(f, "reshape"),
            Op::Transpose(p) => write!(f, "transpose {p:?}"),
            Op::Slice { axis, start, end } => write!(f, "slice axis={axis} {start}..{end}"),
            Op::Pad { axis, before, after } => write!(f, "pad axis={axis} {before}+{after}"),
            Op::Concat(a) => write!(f, "concat axis={a}"),
            Op::Gather => write!(f, "gather"),
            Op::ScatterAdd => write!(f, "scatter_add"),
            Op::OneHot(d) => write!(f, "one_hot {d}"),
            Op::Softmax(a) => write!(f, "softmax axis={a}"),
            Op::LogSoftmax(a) => write!(f, "log_softmax axis={a}"),
            Op::Conv2d { window, groups } => {
                write!(f, "conv2d {}", groups_text(*groups))?;
                w(f, window)
            }
            Op::Conv2dInputGrad { window, groups } => {
                write!(f, "conv2d_input_grad {}", groups_text(*groups))?;
                w(f, window)
            }
            Op::Conv2dKernelGrad { window, groups } => {
                write!(f, "conv2d_kernel_grad {}", groups_text(*groups))?;
                w(f, window)
            }
            Op::MaxPool(win) => {
                write!(f, "max_pool ")?;
                w(f, win)
            }
            Op::MaxPoolGrad(win) => {
                write!(f, "max_pool_grad ")?;
                w(f, win)
            }
            Op::AvgPool { window, count_pad } => {
                write!(f, "avg_pool{} ", if *count_pad { " count_pad" } else { "" })?;
                w(f, window)
            }
            Op::AvgPoolGrad { window, count_pad } => {
                write!(f, "avg_pool_grad{} ", if *count_pad { " count_pad" } else { "" })?;
                w(f, window)
            }
            Op::Upsample(s) => write!(f, "upsample {s:?}"),
            Op::UpsampleGrad(s) => write!(f, "upsample_grad {s:?}"),
            Op::Random { normal } => write!(f, "random {}", if *normal { "normal" } else { "uniform" }),
        }
    }
}

impl fmt::Display for Func {
    /// The canonical text form: one line per node, `%id: dtype[shape] = op args`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.params.iter().enumerate() {
            writeln!(f, "param {i} {:?} {:?}{}", p.name, p.shape, if p.trainable { "" } else { " frozen" })?;
        }
        for (i, n) in self.nodes.iter().enumerate() {
            let args: Vec<String> = n.args.iter().map(|a| format!("%{a}")).collect();
            let dt = if n.dtype == DType::I64 { "i64" } else { "f32" };
            write!(f, "%{i}: {dt}{:?} = {}", n.shape, n.op)?;
            if !args.is_empty() {
                write!(f, " {}", args.join(", "))?;
            }
            if let Some(l) = n.layer {
                write!(f, "  ; {}", self.layers[l as usize])?;
            }
            writeln!(f)?;
        }
        for (name, id) in &self.outputs {
            writeln!(f, "output {name:?} = %{id}")?;
        }
        for (name, id) in &self.states {
            writeln!(f, "state {name:?} = %{id}")?;
        }
        Ok(())
    }
}

/// Shape-inferring constructors used by lowering and autodiff. Every node
/// gets `self.current_layer` as its layer tag.
impl Func {
    fn tag(&self) -> Option<u32> {
        self.current_layer
    }
    /// A fed input `name` of the given shape and type (no layer tag).
    pub fn input(&mut self, name: &str, shape: Vec<usize>, dtype: DType) -> Id {
        self.push(Op::Input(name.into()), vec![], shape, dtype, None)
    }
    /// A constant tensor of `shape` filled with `v`.
    pub fn fill(&mut self, v: f64, shape: Vec<usize>) -> Id {
        let t = self.tag();
        self.push(Op::Fill(v), vec![], shape, DType::F32, t)
    }
    /// A scalar (shape `[]`) constant.
    pub fn scalar(&mut self, v: f64) -> Id {
        self.fill(v, vec![])
    }
    /// `u(x)` elementwise.
    pub fn unary(&mut self, u: Unary, x: Id) -> Id {
        let (s, t) = (self.shape(x).to_vec(), self.tag());
        self.push(Op::Unary(u), vec![x], s, DType::F32, t)
    }
    /// A float op of one operand whose result has the operand's shape.
    pub fn op1(&mut self, op: Op, x: Id) -> Id {
        let (s, t) = (self.shape(x).to_vec(), self.tag());
        self.push(op, vec![x], s, DType::F32, t)
    }
    /// Elementwise with broadcasting. Panics on incompatible shapes: lowering
    /// only builds what the checker proved.
    pub fn binary(&mut self, b: Binary, x: Id, y: Id) -> Id {
        let s = broadcast_shapes(self.shape(x), self.shape(y))
            .unwrap_or_else(|| panic!("IR broadcast of {:?} and {:?}", self.shape(x), self.shape(y)));
        let t = self.tag();
        self.push(Op::Binary(b), vec![x, y], s, DType::F32, t)
    }
    /// `x + y`, broadcast.
    pub fn add(&mut self, x: Id, y: Id) -> Id {
        self.binary(Binary::Add, x, y)
    }
    /// `x - y`, broadcast.
    pub fn sub(&mut self, x: Id, y: Id) -> Id {
        self.binary(Binary::Sub, x, y)
    }
    /// `x · y`, broadcast.
    pub fn mul(&mut self, x: Id, y: Id) -> Id {
        self.binary(Binary::Mul, x, y)
    }
    /// `x / y`, broadcast.
    pub fn div(&mut self, x: Id, y: Id) -> Id {
        self.binary(Binary::Div, x, y)
    }
    /// `x · v` for a constant `v`.
    pub fn mul_scalar(&mut self, x: Id, v: f64) -> Id {
        let c = self.scalar(v);
        self.mul(x, c)
    }
    /// `x + v` for a constant `v`.
    pub fn add_scalar(&mut self, x: Id, v: f64) -> Id {
        let c = self.scalar(v);
        self.add(x, c)
    }
    /// Matrix product on the last two axes (`ta`/`tb` transpose an operand first); leading axes are `a`'s.
    pub fn matmul(&mut self, a: Id, b: Id, ta: bool, tb: bool) -> Id {
        let (sa, sb) = (self.shape(a).to_vec(), self.shape(b).to_vec());
        let r = sa.len();
        let (m, k) = if ta { (sa[r - 1], sa[r - 2]) } else { (sa[r - 2], sa[r - 1]) };
        let rb = sb.len();
        let (k2, n) = if tb { (sb[rb - 1], sb[rb - 2]) } else { (sb[rb - 2], sb[rb - 1]) };
        assert_eq!(k, k2, "IR matmul inner dims {sa:?} x {sb:?} (ta={ta}, tb={tb})");
        let mut s = sa[..r - 2].to_vec();
        s.extend([m, n]);
        let t = self.tag();
        self.push(Op::MatMul { ta, tb }, vec![a, b], s, DType::F32, t)
    }
    /// Reduces `axes` (ascending) of `x`; `keep` keeps them as size 1.
    pub fn reduce(&mut self, op: Reduce, x: Id, axes: Vec<usize>, keep: bool) -> Id {
        let s: Vec<usize> = self
            .shape(x)
            .iter()
            .enumerate()
            .filter_map(|(i, &d)| if axes.contains(&i) { keep.then_some(1) } else { Some(d) })
            .collect();
        let t = self.tag();
        self.push(Op::Reduce { op, axes, keep }, vec![x], s, DType::F32, t)
    }
    /// Sums `x` down to `shape` (the gradient of broadcasting to `x`'s shape).
    pub fn sum_to(&mut self, x: Id, shape: Vec<usize>) -> Id {
        if self.shape(x) == shape.as_slice() {
            return x;
        }
        let t = self.tag();
        self.push(Op::SumTo, vec![x], shape, DType::F32, t)
    }
    /// Broadcasts `x` to `shape`.
    pub fn broadcast_to(&mut self, x: Id, shape: Vec<usize>) -> Id {
        if self.shape(x) == shape.as_slice() {
            return x;
        }
        let t = self.tag();
        self.push(Op::BroadcastTo, vec![x], shape, DType::F32, t)
    }
    /// `x` with a new shape of the same element count.
    pub fn reshape(&mut self, x: Id, shape: Vec<usize>) -> Id {
        if self.shape(x) == shape.as_slice() {
            return x;
        }
        assert_eq!(numel(self.shape(x)), numel(&shape), "IR reshape {:?} → {shape:?}", self.shape(x));
        let (t, dt) = (self.tag(), self.nodes[x as usize].dtype);
        self.push(Op::Reshape, vec![x], shape, dt, t)
    }
    /// Permutes the axes of `x`: output axis `i` is input axis `perm[i]`.
    pub fn transpose(&mut self, x: Id, perm: Vec<usize>) -> Id {
        let s: Vec<usize> = perm.iter().map(|&p| self.shape(x)[p]).collect();
        let t = self.tag();
        self.push(Op::Transpose(perm), vec![x], s, DType::F32, t)
    }
    /// `x[.., start..end, ..]` on `axis`.
    pub fn slice(&mut self, x: Id, axis: usize, start: usize, end: usize) -> Id {
        let mut s = self.shape(x).to_vec();
        if start == 0 && end == s[axis] {
            return x;
        }
        s[axis] = end - start;
        let (t, dt) = (self.tag(), self.nodes[x as usize].dtype);
        self.push(Op::Slice { axis, start, end }, vec![x], s, dt, t)
    }
    /// Concatenation of `xs` along `axis` (other axes equal).
    pub fn concat(&mut self, xs: Vec<Id>, axis: usize) -> Id {
        if xs.len() == 1 {
            return xs[0];
        }
        let mut s = self.shape(xs[0]).to_vec();
        s[axis] = xs.iter().map(|&x| self.shape(x)[axis]).sum();
        let t = self.tag();
        self.push(Op::Concat(axis), xs, s, DType::F32, t)
    }
}
