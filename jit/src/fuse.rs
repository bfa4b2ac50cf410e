//! Fusion: partitions the live nodes of an IR [`Func`] into the steps a
//! compiled program runs, in order: fused elementwise [`Kernel`]s and
//! library ops (matrix products, convolutions, reductions, data movement).
//!
//! Rules (ARCHITECTURE.md, "Fusion"):
//! - Elementwise ops (unary, binary, the constant-parameter activations and
//!   `broadcast_to`) over one iteration shape form a kernel. A node joins the
//!   kernel of one of its operands when that kernel computes the same shape
//!   and is still *open*; other operands become kernel inputs, read with
//!   their broadcast pattern ([`Access`]).
//! - A kernel closes as soon as any node outside it reads one of its values:
//!   it runs where its last member stands, so nothing may read it earlier.
//!   This keeps the steps in a valid order without reordering the graph.
//! - `fill` constants are folded into the kernels that read them; `reshape`
//!   is a view of its operand's storage and never a step.
//! - A member's value is stored only when something outside the kernel reads
//!   it (or the caller keeps it); the rest live in registers.

use std::fmt;

use nnc_compiler::ir::{Binary, Func, Id, Op, Unary, numel};

/// Most operations in one kernel: beyond this the vector registers spill
/// and compile time grows for nothing.
const MAX_BODY: usize = 48;
/// Most distinct inputs of one kernel.
const MAX_INPUTS: usize = 12;

/// How a kernel reads one input over its iteration space `[rows, cols]`.
#[derive(Clone, Debug, PartialEq)]
pub enum Access {
    /// The input has the iteration shape: element `r·cols + c`.
    Full,
    /// One value for every element.
    Scalar,
    /// Row `r` starts at element `table[r]` of the input; along a row the
    /// input is contiguous (`inner`) or one repeated value.
    Rows {
        /// Start element of each row in the input, one entry per row of the iteration space.
        table: Vec<u32>,
        /// True: the row is read element by element; false: its first element is broadcast along it.
        inner: bool,
    },
}

impl Access {
    fn tag(&self) -> &'static str {
        match self {
            Access::Full => "full",
            Access::Scalar => "scalar",
            Access::Rows { inner: true, .. } => "rows",
            Access::Rows { inner: false, .. } => "row-scalar",
        }
    }
}

/// One operation of a kernel body, over earlier body values.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Expr {
    /// The kernel's input number `k`.
    Load(u32),
    /// A literal constant.
    Const(f32),
    /// An IR unary op applied to body value `.1`.
    Unary(Unary, u32),
    /// An IR binary op of body values `.1` and `.2` (in that operand order).
    Binary(Binary, u32, u32),
    /// Body value `.1` raised to the constant power `.0`.
    Pow(f32, u32),
    /// ELU with slope `alpha = .0` of body value `.1`.
    Elu(f32, u32),
    /// Leaky ReLU with negative slope `.0` of body value `.1`.
    LeakyRelu(f32, u32),
}

/// A fused elementwise kernel over the iteration space `[rows, cols]`
/// (`cols` is the last axis of the shape; `rows` the product of the rest).
#[derive(Clone, Debug, PartialEq)]
pub struct Kernel {
    /// Number of rows: the product of every axis but the last (1 when flat).
    pub rows: usize,
    /// Length of the last axis; rows are `cols` elements apart in every `Full` input and output.
    pub cols: usize,
    /// External operands and how they are read.
    pub inputs: Vec<(Id, Access)>,
    /// The computation, in SSA order: each `Expr` refers only to earlier indices.
    pub body: Vec<Expr>,
    /// Values stored for readers outside the kernel: (node, body index).
    pub outputs: Vec<(Id, u32)>,
    /// Per output: `None` stores row `r` at `r·cols` of the node's own
    /// buffer; `Some(table)` stores it at `table[r]` — a part of a
    /// concatenation written straight into the concatenation's buffer.
    pub stores: Vec<Option<Vec<u32>>>,
    /// The IR nodes computed by this kernel, in order.
    pub members: Vec<Id>,
}

impl Kernel {
    /// Elements computed per output: `rows · cols`.
    pub fn len(&self) -> usize {
        self.rows * self.cols
    }

    /// Whether the iteration space is empty (some axis has length 0).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether every input is read element by element or as one value, so the
    /// kernel can treat its iteration space as one flat run.
    pub fn is_flat(&self) -> bool {
        self.inputs.iter().all(|(_, a)| matches!(a, Access::Full | Access::Scalar))
            && self.stores.iter().all(Option::is_none)
    }

    /// What the generated code depends on (not the row tables, which are
    /// passed at run time): equal signatures share one compiled function.
    pub fn signature(&self) -> String {
        use std::fmt::Write;
        let mut s = String::new();
        if self.is_flat() {
            let _ = write!(s, "flat");
        } else {
            let _ = write!(s, "cols={}", self.cols);
        }
        for (_, a) in &self.inputs {
            let _ = write!(s, " {}", a.tag());
        }
        let _ = write!(s, " |");
        for e in &self.body {
            let _ = write!(s, " {e:?}");
        }
        let _ = write!(s, " ->");
        for ((_, b), t) in self.outputs.iter().zip(&self.stores) {
            let _ = write!(s, " {b}{}", if t.is_some() { "@rows" } else { "" });
        }
        s
    }
}

/// A step of a compiled program.
#[derive(Clone, Debug, PartialEq)]
pub enum Step {
    /// A fused elementwise kernel, compiled by the JIT.
    Kernel(Kernel),
    /// One IR node computed by a runtime library routine.
    Library(Id),
}

/// The partition of a function's live nodes into steps.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Plan {
    /// The steps in execution order: each reads only nodes computed by earlier steps or inputs.
    pub steps: Vec<Step>,
    /// Nodes that `keep` depends on.
    pub live: Vec<bool>,
}

/// Whether `op` is computed inside kernels.
fn is_elementwise(op: &Op) -> bool {
    matches!(op, Op::Unary(_) | Op::Binary(_) | Op::PowConst(_) | Op::Elu(_) | Op::LeakyRelu(_) | Op::BroadcastTo)
}

/// Nodes whose values `keep` depends on.
pub fn live_nodes(f: &Func, keep: &[Id]) -> Vec<bool> {
    let mut live = vec![false; f.nodes.len()];
    for &k in keep {
        live[k as usize] = true;
    }
    for i in (0..f.nodes.len()).rev() {
        if live[i] {
            for &a in &f.nodes[i].args {
                live[a as usize] = true;
            }
        }
    }
    live
}

/// The element offset, `base + Σ index·stride`, of the start of each row
/// (every index of all axes but the last) of `shape`, for a buffer with
/// these `strides` per axis: the row tables of broadcasts, slices,
/// transposes and reductions.
pub fn row_offsets(shape: &[usize], strides: &[usize], base: usize) -> Vec<u32> {
    let rank = shape.len();
    if rank == 0 {
        return vec![base as u32];
    }
    let rows: usize = shape[..rank - 1].iter().product();
    let mut table = Vec::with_capacity(rows);
    let mut idx = vec![0usize; rank - 1];
    let mut off = base;
    for _ in 0..rows {
        table.push(off as u32);
        for ax in (0..rank - 1).rev() {
            idx[ax] += 1;
            off += strides[ax];
            if idx[ax] < shape[ax] {
                break;
            }
            off -= strides[ax] * idx[ax];
            idx[ax] = 0;
        }
    }
    table
}

/// How many live nodes read each node, plus one for each time `keep` names it.
pub fn reader_counts(f: &Func, live: &[bool], keep: &[Id]) -> Vec<usize> {
    let mut uses = vec![0usize; f.nodes.len()];
    for (node, _) in f.nodes.iter().zip(live).filter(|(_, l)| **l) {
        for &a in &node.args {
            uses[a as usize] += 1;
        }
    }
    for &k in keep {
        uses[k as usize] += 1;
    }
    uses
}

/// The broadcast pattern of an operand of shape `arg` in the iteration
/// shape `out` (NumPy alignment of trailing axes).
pub fn access(arg: &[usize], out: &[usize]) -> Access {
    let n = numel(arg);
    if arg == out {
        return Access::Full;
    }
    if n == 1 {
        return Access::Scalar;
    }
    let rank = out.len();
    // The operand's strides in the output's axes (0 where broadcast).
    let own = {
        let mut s = vec![0usize; arg.len()];
        let mut acc = 1;
        for i in (0..arg.len()).rev() {
            s[i] = if arg[i] == 1 { 0 } else { acc };
            acc *= arg[i];
        }
        s
    };
    let stride = |axis: usize| -> usize {
        let off = rank - arg.len();
        if axis < off { 0 } else { own[axis - off] }
    };
    let inner = rank > 0 && stride(rank - 1) != 0;
    let strides: Vec<usize> = (0..rank).map(stride).collect();
    let table = row_offsets(out, &strides, 0);
    Access::Rows { table, inner }
}

struct Open {
    step: usize,
    /// Node → body index, for members.
    shape: Vec<usize>,
    closed: bool,
}

/// Partitions the nodes `keep` depends on into steps.
// long: the fusion walk keeps its open kernels, closers and readers in one loop; kept whole while other work
// edits this file.
pub fn plan(f: &Func, keep: &[Id]) -> Plan {
    let live = live_nodes(f, keep);
    let n = f.nodes.len();
    // Which kernel (index into `open`) computes each node.
    let mut kernel_of: Vec<Option<usize>> = vec![None; n];
    let mut body_of: Vec<u32> = vec![0; n];
    let mut open: Vec<Open> = Vec::new();
    let mut steps: Vec<Step> = Vec::new();
    // Where each step runs: its (last) member's position in the graph.
    let mut at: Vec<usize> = Vec::new();
    // The most recent kernel of each iteration shape.
    let mut latest: std::collections::HashMap<Vec<usize>, usize> = std::collections::HashMap::new();
    let is_fill = |id: Id| matches!(f.nodes[id as usize].op, Op::Fill(_));
    for i in 0..n {
        if !live[i] {
            continue;
        }
        let node = &f.nodes[i];
        let id = i as Id;
        if matches!(node.op, Op::Reshape) || matches!(node.op, Op::Fill(_)) {
            // Views and constants are not steps (a fill read by a library op
            // is materialised by the runtime from the node itself). A view's
            // readers come later, so it closes the kernel it views.
            close_readers(&node.args, &kernel_of, &mut open, None);
            continue;
        }
        if !is_elementwise(&node.op) || node.dtype != nnc_compiler::ir::DType::F32 {
            close_readers(&node.args, &kernel_of, &mut open, None);
            steps.push(Step::Library(id));
            at.push(i);
            continue;
        }
        // Join the open kernel of an operand that computes this shape, and
        // merge the other operands' open kernels of that shape into it: open
        // kernels have no readers yet, so running them together where the
        // later one stands is always legal. With no such operand, join the
        // latest open kernel of the shape (a horizontal fusion: independent
        // chains of one recurrent step become one loop).
        let room = |kern: &Kernel, extra_body: usize, extra_inputs: usize| {
            kern.body.len() + extra_body + 1 + node.args.len() <= MAX_BODY
                && kern.inputs.len() + extra_inputs + node.args.len() <= MAX_INPUTS
        };
        let usable = |k: usize, open: &[Open], steps: &[Step]| {
            let o = &open[k];
            matches!(&steps[o.step], Step::Kernel(kern) if !o.closed && o.shape == node.shape && room(kern, 0, 0))
        };
        let mut join = node.args.iter().filter_map(|&a| kernel_of[a as usize]).find(|&k| usable(k, &open, &steps));
        if let Some(k) = join {
            for &a in &node.args {
                let Some(other) = kernel_of[a as usize] else { continue };
                if other == k || !usable(other, &open, &steps) {
                    continue;
                }
                let (Step::Kernel(dst), Step::Kernel(src)) = (&steps[open[k].step], &steps[open[other].step]) else {
                    continue;
                };
                if room(dst, src.body.len(), src.inputs.len()) {
                    merge(&mut steps, &mut open, &mut at, &mut kernel_of, &mut body_of, other, k);
                }
            }
        } else if let Some(&k) = latest.get(&node.shape)
            && usable(k, &open, &steps)
        {
            join = Some(k);
        }
        close_readers(&node.args, &kernel_of, &mut open, join);
        let k = match join {
            Some(k) => k,
            None => {
                let cols = node.shape.last().copied().unwrap_or(1);
                let kern = Kernel {
                    rows: numel(&node.shape) / cols.max(1),
                    cols,
                    inputs: vec![],
                    body: vec![],
                    outputs: vec![],
                    stores: vec![],
                    members: vec![],
                };
                // Zero-size shapes have nothing to compute; cols ≥ 1 keeps the
                // row arithmetic simple.
                let kern = if kern.cols == 0 { Kernel { rows: 0, cols: 1, ..kern } } else { kern };
                steps.push(Step::Kernel(kern));
                at.push(i);
                open.push(Open { step: steps.len() - 1, shape: node.shape.clone(), closed: false });
                latest.insert(node.shape.clone(), open.len() - 1);
                open.len() - 1
            }
        };
        let Step::Kernel(kern) = &mut steps[open[k].step] else { unreachable!("kernel step") };
        // Operands: members of this kernel, folded constants, or inputs.
        let operand = |a: Id, kern: &mut Kernel| -> u32 {
            if kernel_of[a as usize] == Some(k) {
                return body_of[a as usize];
            }
            if is_fill(a) {
                let Op::Fill(v) = f.nodes[a as usize].op else { unreachable!() };
                kern.body.push(Expr::Const(v as f32));
                return (kern.body.len() - 1) as u32;
            }
            let input = sliced(f, a, &node.shape).unwrap_or_else(|| (a, access(f.shape(a), &node.shape)));
            let pos = match kern.inputs.iter().position(|x| *x == input) {
                Some(p) => p,
                None => {
                    kern.inputs.push(input);
                    kern.inputs.len() - 1
                }
            };
            // One load per input: reuse it if the body already has it.
            if let Some(b) = kern.body.iter().position(|e| *e == Expr::Load(pos as u32)) {
                return b as u32;
            }
            kern.body.push(Expr::Load(pos as u32));
            (kern.body.len() - 1) as u32
        };
        let a0 = operand(node.args[0], kern);
        let expr = match &node.op {
            Op::Unary(u) => Expr::Unary(*u, a0),
            Op::Binary(b) => {
                let a1 = operand(node.args[1], kern);
                Expr::Binary(*b, a0, a1)
            }
            Op::PowConst(p) => Expr::Pow(*p as f32, a0),
            Op::Elu(a) => Expr::Elu(*a as f32, a0),
            Op::LeakyRelu(a) => Expr::LeakyRelu(*a as f32, a0),
            // A copy: the operand's access pattern does the broadcasting.
            Op::BroadcastTo => {
                kernel_of[i] = Some(k);
                body_of[i] = a0;
                kern.members.push(id);
                at[open[k].step] = i;
                continue;
            }
            _ => unreachable!("elementwise op"),
        };
        kern.body.push(expr);
        at[open[k].step] = i;
        kernel_of[i] = Some(k);
        body_of[i] = (kern.body.len() - 1) as u32;
        kern.members.push(id);
    }
    // Outputs: members read outside their kernel or kept.
    let mut read_outside = vec![false; n];
    for &k in keep {
        read_outside[k as usize] = true;
    }
    for (i, node) in f.nodes.iter().enumerate() {
        if !live[i] {
            continue;
        }
        for &a in &node.args {
            if kernel_of[a as usize].is_some() && kernel_of[a as usize] != kernel_of[i] {
                read_outside[a as usize] = true;
            }
        }
    }
    for step in &mut steps {
        if let Step::Kernel(kern) = step {
            for &m in &kern.members {
                if read_outside[m as usize] {
                    kern.outputs.push((m, body_of[m as usize]));
                    kern.stores.push(None);
                }
            }
        }
    }
    // A kernel runs where its last member stands: its operands are ready
    // there, and its readers (which closed it) all come later.
    let mut order: Vec<usize> = (0..steps.len()).collect();
    order.sort_by_key(|&s| at[s]);
    let mut steps: Vec<Step> = order.into_iter().map(|s| std::mem::replace(&mut steps[s], Step::Library(0))).collect();
    // Kernels with no stored value (every reader gone) are dropped, and so
    // are slices that every reader folded into its access.
    steps.retain(|s| !matches!(s, Step::Kernel(k) if k.outputs.is_empty()));
    fold_concats(f, keep, &live, &mut steps);
    let mut read = vec![false; n];
    for &k in keep {
        read[k as usize] = true;
    }
    for step in &steps {
        let args: Vec<Id> = match step {
            Step::Kernel(k) => k.inputs.iter().map(|(id, _)| *id).collect(),
            Step::Library(id) => f.nodes[*id as usize].args.clone(),
        };
        for mut a in args {
            read[a as usize] = true;
            while matches!(f.nodes[a as usize].op, Op::Reshape) {
                a = f.nodes[a as usize].args[0];
                read[a as usize] = true;
            }
        }
    }
    steps.retain(|s| match s {
        // A slice nothing reads is dropped.
        Step::Library(id) => !matches!(f.nodes[*id as usize].op, Op::Slice { .. }) || read[*id as usize],
        _ => true,
    });
    Plan { steps, live }
}

/// A concatenation whose every part is a kernel output read by nothing else
/// is assembled in place: each part's kernel stores its rows straight into
/// the concatenation's buffer (through a row table), and the copy step goes.
/// The recurrent layers' backward joins its gate gradients this way.
fn fold_concats(f: &Func, keep: &[Id], live: &[bool], steps: &mut Vec<Step>) {
    let uses = reader_counts(f, live, keep);
    // Where each stored kernel output is: (step, output index).
    let mut stored: std::collections::HashMap<Id, (usize, usize)> = std::collections::HashMap::new();
    for (s, step) in steps.iter().enumerate() {
        if let Step::Kernel(k) = step {
            for (o, (id, _)) in k.outputs.iter().enumerate() {
                stored.insert(*id, (s, o));
            }
        }
    }
    let mut folded = vec![false; steps.len()];
    for (s, step) in steps.iter().enumerate() {
        let Step::Library(c) = step else { continue };
        let node = &f.nodes[*c as usize];
        if !matches!(node.op, Op::Concat(_)) {
            continue;
        }
        let parts_ok = node.args.iter().all(|&p| {
            uses[p as usize] == 1
                && f.nodes[p as usize].dtype == nnc_compiler::ir::DType::F32
                && stored.contains_key(&p)
        });
        if !parts_ok || node.shape.is_empty() {
            continue;
        }
        folded[s] = true;
    }
    for s in 0..steps.len() {
        if !folded[s] {
            continue;
        }
        let Step::Library(c) = steps[s] else { continue };
        let node = &f.nodes[c as usize];
        let Op::Concat(axis) = node.op else { continue };
        let shape = &node.shape;
        let mut strides = vec![1usize; shape.len()];
        for i in (0..shape.len() - 1).rev() {
            strides[i] = strides[i + 1] * shape[i + 1];
        }
        let mut at = 0;
        for &p in &node.args {
            let (ks, o) = stored[&p];
            let part = f.shape(p);
            let table = row_offsets(part, &strides, at * strides[axis]);
            at += part[axis];
            if let Step::Kernel(k) = &mut steps[ks] {
                k.outputs[o].0 = c;
                k.stores[o] = Some(table);
            }
        }
    }
    let mut s = 0;
    steps.retain(|_| {
        s += 1;
        !folded[s - 1]
    });
}

/// A slice read whole by an elementwise node becomes a row access into the
/// sliced tensor (the gates of a recurrent cell are slices of one product):
/// no copy is made.
fn sliced(f: &Func, a: Id, out: &[usize]) -> Option<(Id, Access)> {
    let node = &f.nodes[a as usize];
    let Op::Slice { axis, start, .. } = node.op else { return None };
    if node.shape != out || out.is_empty() {
        return None;
    }
    let src = node.args[0];
    let xs = f.shape(src);
    let mut strides = vec![1usize; xs.len()];
    for i in (0..xs.len() - 1).rev() {
        strides[i] = strides[i + 1] * xs[i + 1];
    }
    let table = row_offsets(out, &strides, start * strides[axis]);
    Some((src, Access::Rows { table, inner: true }))
}

/// Moves open kernel `src` into open kernel `dst` (same iteration shape).
fn merge(
    steps: &mut [Step],
    open: &mut [Open],
    at: &mut [usize],
    kernel_of: &mut [Option<usize>],
    body_of: &mut [u32],
    src: usize,
    dst: usize,
) {
    let empty =
        Kernel { rows: 0, cols: 1, inputs: vec![], body: vec![], outputs: vec![], stores: vec![], members: vec![] };
    let Step::Kernel(from) = std::mem::replace(&mut steps[open[src].step], Step::Kernel(empty)) else { return };
    let Step::Kernel(into) = &mut steps[open[dst].step] else { return };
    let offset = into.body.len() as u32;
    let inputs: Vec<u32> = from
        .inputs
        .into_iter()
        .map(|input| match into.inputs.iter().position(|x| *x == input) {
            Some(p) => p as u32,
            None => {
                into.inputs.push(input);
                (into.inputs.len() - 1) as u32
            }
        })
        .collect();
    for e in from.body {
        into.body.push(match e {
            Expr::Load(j) => Expr::Load(inputs[j as usize]),
            Expr::Const(c) => Expr::Const(c),
            Expr::Unary(u, a) => Expr::Unary(u, a + offset),
            Expr::Binary(b, x, y) => Expr::Binary(b, x + offset, y + offset),
            Expr::Pow(p, a) => Expr::Pow(p, a + offset),
            Expr::Elu(p, a) => Expr::Elu(p, a + offset),
            Expr::LeakyRelu(p, a) => Expr::LeakyRelu(p, a + offset),
        });
    }
    for m in from.members {
        kernel_of[m as usize] = Some(dst);
        body_of[m as usize] += offset;
        into.members.push(m);
    }
    at[open[dst].step] = at[open[dst].step].max(at[open[src].step]);
    // The emptied kernel stores nothing and is dropped at the end.
    open[src].closed = true;
}

/// Closes the open kernels that computed any of `args`, except `keep`.
fn close_readers(args: &[Id], kernel_of: &[Option<usize>], open: &mut [Open], keep: Option<usize>) {
    for &a in args {
        if let Some(k) = kernel_of[a as usize]
            && Some(k) != keep
        {
            open[k].closed = true;
        }
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lower = |x: &dyn fmt::Debug| format!("{x:?}").to_lowercase();
        match self {
            Expr::Load(k) => write!(f, "load in{k}"),
            Expr::Const(v) => write!(f, "const {v}"),
            Expr::Unary(u, a) => write!(f, "{} v{a}", lower(u)),
            Expr::Binary(b, x, y) => write!(f, "{} v{x}, v{y}", lower(b)),
            Expr::Pow(p, a) => write!(f, "pow {p} v{a}"),
            Expr::Elu(p, a) => write!(f, "elu {p} v{a}"),
            Expr::LeakyRelu(p, a) => write!(f, "leaky_relu {p} v{a}"),
        }
    }
}

/// The canonical text of a plan (`nnc ir --fused`): each kernel with its
/// iteration space, inputs, body and stored outputs; each library op as
/// its IR node.
pub fn display(f: &Func, plan: &Plan) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    for (k, step) in plan.steps.iter().enumerate() {
        match step {
            Step::Library(id) => {
                let node = &f.nodes[*id as usize];
                let args: Vec<String> = node.args.iter().map(|a| format!("%{a}")).collect();
                let args = if args.is_empty() { String::new() } else { format!(" {}", args.join(", ")) };
                let _ = writeln!(s, "step {k}: %{id}: {:?} = lib {}{args}", node.shape, node.op);
            }
            Step::Kernel(kern) => {
                let space = if kern.is_flat() {
                    format!("[{}] flat", kern.len())
                } else {
                    format!("[{}, {}]", kern.rows, kern.cols)
                };
                let _ = writeln!(s, "step {k}: kernel {space}");
                for (j, (id, a)) in kern.inputs.iter().enumerate() {
                    let _ = writeln!(s, "    in{j} = %{id} {}", a.tag());
                }
                for (j, e) in kern.body.iter().enumerate() {
                    let _ = writeln!(s, "    v{j} = {e}");
                }
                for ((id, b), t) in kern.outputs.iter().zip(&kern.stores) {
                    let into = if t.is_some() { " (rows of the concatenation)" } else { "" };
                    let _ = writeln!(s, "    %{id} = v{b}{into}");
                }
            }
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use nnc_compiler::ir::DType;

    fn func() -> Func {
        let mut f = Func::default();
        let x = f.push(Op::Input("x".into()), vec![], vec![4, 3], DType::F32, None);
        let b = f.push(Op::Input("b".into()), vec![], vec![3], DType::F32, None);
        let s = f.push(Op::Binary(Binary::Add), vec![x, b], vec![4, 3], DType::F32, None);
        let r = f.push(Op::Unary(Unary::Relu), vec![s], vec![4, 3], DType::F32, None);
        let m = f.push(
            Op::Reduce { op: nnc_compiler::ir::Reduce::Sum, axes: vec![0], keep: false },
            vec![r],
            vec![3],
            DType::F32,
            None,
        );
        let g = f.push(Op::Unary(Unary::Positive), vec![s], vec![4, 3], DType::F32, None);
        let _ = (m, g);
        f
    }

    #[test]
    fn bias_and_activation_fuse_and_a_late_reader_closes_the_kernel() {
        let f = func();
        let p = plan(&f, &[4, 5]);
        // Two inputs, the fused bias + relu, the reduction, the late reader.
        assert_eq!(p.steps.len(), 5, "{}", display(&f, &p));
        let Step::Kernel(k) = &p.steps[2] else { panic!() };
        assert_eq!(k.members, vec![2, 3]);
        // %2 is read by the later kernel, %3 by the reduction.
        assert_eq!(k.outputs.iter().map(|o| o.0).collect::<Vec<_>>(), vec![2, 3]);
        assert_eq!(k.inputs[1].1, Access::Rows { table: vec![0, 0, 0, 0], inner: true });
        assert!(matches!(p.steps[3], Step::Library(4)));
        assert!(matches!(&p.steps[4], Step::Kernel(k) if k.members == vec![5]));
    }

    #[test]
    fn a_concatenation_of_kernel_outputs_is_assembled_in_place() {
        let mut f = Func::default();
        let x = f.push(Op::Input("x".into()), vec![], vec![2, 3], DType::F32, None);
        let a = f.push(Op::Unary(Unary::Exp), vec![x], vec![2, 3], DType::F32, None);
        let m = f.push(Op::MatMul { ta: false, tb: true }, vec![x, x], vec![2, 2], DType::F32, None);
        let b = f.push(Op::Unary(Unary::Neg), vec![m], vec![2, 2], DType::F32, None);
        let c = f.push(Op::Concat(1), vec![a, b], vec![2, 5], DType::F32, None);
        let p = plan(&f, &[c]);
        assert!(p.steps.iter().all(|s| !matches!(s, Step::Library(id) if *id == c)), "{}", display(&f, &p));
        let stores: Vec<(Id, Option<Vec<u32>>)> = p
            .steps
            .iter()
            .filter_map(|s| match s {
                Step::Kernel(k) => Some(k.outputs.iter().map(|o| o.0).zip(k.stores.iter().cloned())),
                _ => None,
            })
            .flatten()
            .collect();
        // Rows of `a` at 0 and 5, rows of `b` after them at 3 and 8.
        assert!(stores.contains(&(c, Some(vec![0, 5]))), "{stores:?}");
        assert!(stores.contains(&(c, Some(vec![3, 8]))), "{stores:?}");
    }

    #[test]
    fn access_patterns() {
        assert_eq!(access(&[2, 3], &[2, 3]), Access::Full);
        assert_eq!(access(&[1], &[2, 3]), Access::Scalar);
        assert_eq!(access(&[2, 1], &[2, 3]), Access::Rows { table: vec![0, 1], inner: false });
        assert_eq!(access(&[2, 1, 3], &[2, 2, 3]), Access::Rows { table: vec![0, 0, 3, 3], inner: true });
        assert_eq!(access(&[2, 1], &[2, 2, 3]), Access::Rows { table: vec![0, 1, 0, 1], inner: false });
    }

    #[test]
    fn dead_nodes_are_not_computed() {
        let f = func();
        let p = plan(&f, &[4]);
        assert!(p.steps.iter().all(|s| !matches!(s, Step::Kernel(k) if k.members.contains(&5))));
    }
}
