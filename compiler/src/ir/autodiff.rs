//! Reverse-mode automatic differentiation over the IR: appends the backward
//! graph to the same [`Func`], one gradient rule per primitive.

use std::collections::HashMap;

use super::{Binary, DType, Func, Id, Op, Reduce, Unary, Window};

/// Appends nodes computing d`loss`/d`x` for each `x` in `wrt` (`loss` must
/// be a scalar). Returns one gradient node per `wrt` entry (a zero fill
/// where the loss does not depend on it).
pub fn grad(f: &mut Func, loss: Id, wrt: &[Id]) -> Vec<Id> {
    let n = loss as usize + 1;
    // Which nodes lie on a path from a `wrt` node to the loss.
    let mut depends = vec![false; n];
    for &w in wrt {
        if (w as usize) < n {
            depends[w as usize] = true;
        }
    }
    for i in 0..n {
        if !depends[i] && f.nodes[i].args.iter().any(|&a| depends[a as usize]) {
            depends[i] = true;
        }
    }
    let mut pending: HashMap<Id, Pending> = HashMap::new();
    let mut grads: HashMap<Id, Id> = HashMap::new();
    f.current_layer = None;
    let one = f.fill(1.0, f.shape(loss).to_vec());
    grads.insert(loss, one);
    for i in (0..n).rev() {
        let id = i as Id;
        // Every consumer of `id` comes later, so its contributions are complete.
        if let Some(p) = pending.remove(&id) {
            f.current_layer = f.nodes[i].layer;
            let g = p.materialize(f, id);
            grads.insert(id, g);
        }
        let Some(&g) = grads.get(&id) else { continue };
        if !depends[i] {
            continue;
        }
        f.current_layer = f.nodes[i].layer;
        let node = f.nodes[i].clone();
        if let Op::Slice { axis, start, end } = node.op {
            // Kept as a piece: the pieces of one tensor (time steps, gates)
            // are joined by one concat instead of padding each to full size.
            let x = node.args[0];
            if depends[x as usize] && f.nodes[x as usize].dtype == DType::F32 {
                pending.entry(x).or_default().pieces.push(Piece { axis, start, end, grad: g });
            }
            continue;
        }
        let contributions = rule(f, id, &node, g);
        for (arg, dg) in contributions {
            if !depends[arg as usize] || f.nodes[arg as usize].dtype != DType::F32 {
                continue;
            }
            let dg = f.sum_to(dg, f.shape(arg).to_vec());
            pending.entry(arg).or_default().full.push(dg);
        }
    }
    f.current_layer = None;
    wrt.iter()
        .map(|w| match grads.get(w) {
            Some(&g) => g,
            None => {
                let s = f.shape(*w).to_vec();
                f.fill(0.0, s)
            }
        })
        .collect()
}

/// The gradient of a slice `[start, end)` along `axis` of a node.
struct Piece {
    axis: usize,
    start: usize,
    end: usize,
    grad: Id,
}

/// Gradient contributions to one node, summed once all are known.
#[derive(Default)]
struct Pending {
    /// Contributions of the node's full shape.
    full: Vec<Id>,
    /// Contributions to slices of it.
    pieces: Vec<Piece>,
}

impl Pending {
    fn materialize(mut self, f: &mut Func, x: Id) -> Id {
        let shape = f.shape(x).to_vec();
        let mut terms = std::mem::take(&mut self.full);
        let mut axes: Vec<usize> = self.pieces.iter().map(|p| p.axis).collect();
        axes.sort_unstable();
        axes.dedup();
        for axis in axes {
            let mut pieces: Vec<&Piece> = self.pieces.iter().filter(|p| p.axis == axis).collect();
            pieces.sort_by_key(|p| (p.start, p.end));
            let disjoint = pieces.windows(2).all(|w| w[0].end <= w[1].start);
            if !disjoint {
                for p in pieces {
                    let d = f.push(
                        Op::Pad { axis, before: p.start, after: shape[axis] - p.end },
                        vec![p.grad],
                        shape.clone(),
                        DType::F32,
                        f.current_layer,
                    );
                    terms.push(d);
                }
                continue;
            }
            let mut parts = Vec::new();
            let mut at = 0;
            let zeros = |f: &mut Func, len: usize| {
                let mut s = shape.clone();
                s[axis] = len;
                f.fill(0.0, s)
            };
            for p in pieces {
                if p.start > at {
                    parts.push(zeros(f, p.start - at));
                }
                parts.push(p.grad);
                at = p.end;
            }
            if at < shape[axis] {
                parts.push(zeros(f, shape[axis] - at));
            }
            terms.push(if parts.len() == 1 { parts[0] } else { f.concat(parts, axis) });
        }
        let mut acc = terms[0];
        for &t in &terms[1..] {
            acc = f.add(acc, t);
        }
        acc
    }
}

/// The gradient contributions of one node to its arguments.
fn rule(f: &mut Func, y: Id, node: &super::Node, g: Id) -> Vec<(Id, Id)> {
    let a = |i: usize| node.args[i];
    match &node.op {
        Op::Input(_) | Op::Param(_) | Op::Fill(_) | Op::Constant(_) | Op::Random { .. } | Op::OneHot(_) => vec![],
        Op::Unary(u) => unary_rule(f, *u, a(0), y, g),
        Op::Binary(b) => binary_rule(f, *b, a(0), a(1), y, g),
        Op::PowConst(p) => {
            let x = a(0);
            let q = f.op1(Op::PowConst(p - 1.0), x);
            let d = f.mul_scalar(q, *p);
            vec![(x, f.mul(g, d))]
        }
        Op::Elu(alpha) => {
            // x > 0: 1; else y + alpha.
            let x = a(0);
            let pos = f.unary(Unary::Positive, x);
            let one = f.scalar(1.0);
            let neg = f.sub(one, pos);
            let ya = f.add_scalar(y, *alpha);
            let t = f.mul(neg, ya);
            let d = f.add(pos, t);
            vec![(x, f.mul(g, d))]
        }
        Op::LeakyRelu(alpha) => {
            let x = a(0);
            let pos = f.unary(Unary::Positive, x);
            // pos + alpha·(1 − pos) = alpha + (1 − alpha)·pos
            let s = f.mul_scalar(pos, 1.0 - alpha);
            let d = f.add_scalar(s, *alpha);
            vec![(x, f.mul(g, d))]
        }
        Op::MatMul { ta, tb } => matmul_rule(f, *ta, *tb, a(0), a(1), g),
        Op::Reduce { op, axes, keep } => reduce_rule(f, *op, axes, *keep, a(0), y, g),
        Op::SumTo => {
            let x = a(0);
            let s = f.shape(x).to_vec();
            vec![(x, f.broadcast_to(g, s))]
        }
        Op::BroadcastTo => {
            let x = a(0);
            let s = f.shape(x).to_vec();
            vec![(x, f.sum_to(g, s))]
        }
        Op::Reshape => {
            let x = a(0);
            let s = f.shape(x).to_vec();
            vec![(x, f.reshape(g, s))]
        }
        Op::Transpose(perm) => {
            let mut inv = vec![0; perm.len()];
            for (i, &p) in perm.iter().enumerate() {
                inv[p] = i;
            }
            vec![(a(0), f.transpose(g, inv))]
        }
        // `grad` accumulates slice gradients itself (see `Piece`).
        Op::Slice { .. } => vec![],
        Op::Pad { axis, before, .. } => {
            let x = a(0);
            let len = f.shape(x)[*axis];
            vec![(x, f.slice(g, *axis, *before, before + len))]
        }
        Op::Concat(axis) => concat_rule(f, *axis, &node.args, g),
        Op::Gather => {
            let (table, idx) = (a(0), a(1));
            let s = f.shape(table).to_vec();
            let t = f.current_layer;
            let d = f.push(Op::ScatterAdd, vec![g, idx], s, DType::F32, t);
            vec![(table, d)]
        }
        Op::Softmax(axis) => {
            // dx = y·(g − Σ g·y)
            let gy = f.mul(g, y);
            let s = f.reduce(Reduce::Sum, gy, vec![*axis], true);
            let c = f.sub(g, s);
            vec![(a(0), f.mul(y, c))]
        }
        Op::LogSoftmax(axis) => {
            // dx = g − softmax(x)·Σ g
            let p = f.unary(Unary::Exp, y);
            let s = f.reduce(Reduce::Sum, g, vec![*axis], true);
            let t = f.mul(p, s);
            vec![(a(0), f.sub(g, t))]
        }
        Op::Conv2d { window, groups } => conv_rule(f, *window, *groups, a(0), a(1), g),
        Op::Conv2dInputGrad { window, groups } => conv_input_grad_rule(f, *window, *groups, a(0), a(1), g),
        Op::MaxPool(w) => {
            let x = a(0);
            let t = f.current_layer;
            let s = f.shape(x).to_vec();
            vec![(x, f.push(Op::MaxPoolGrad(*w), vec![x, g], s, DType::F32, t))]
        }
        Op::AvgPool { window, count_pad } => {
            let x = a(0);
            let t = f.current_layer;
            let s = f.shape(x).to_vec();
            vec![(x, f.push(Op::AvgPoolGrad { window: *window, count_pad: *count_pad }, vec![g], s, DType::F32, t))]
        }
        Op::Upsample(s) => {
            let x = a(0);
            let t = f.current_layer;
            let xs = f.shape(x).to_vec();
            vec![(x, f.push(Op::UpsampleGrad(*s), vec![g], xs, DType::F32, t))]
        }
        // Only first derivatives are needed for training; these appear only in
        // backward graphs.
        Op::ScatterAdd
        | Op::Conv2dKernelGrad { .. }
        | Op::MaxPoolGrad(_)
        | Op::AvgPoolGrad { .. }
        | Op::UpsampleGrad(_) => vec![],
    }
}

/// Unary elementwise ops: `g` times the derivative, from `x` or the result `y`.
fn unary_rule(f: &mut Func, u: Unary, x: Id, y: Id, g: Id) -> Vec<(Id, Id)> {
    let d = match u {
        Unary::Neg => f.unary(Unary::Neg, g),
        Unary::Exp => f.mul(g, y),
        Unary::Log => f.div(g, x),
        Unary::Sqrt => {
            let r = f.unary(Unary::Recip, y);
            let h = f.mul_scalar(r, 0.5);
            f.mul(g, h)
        }
        Unary::Abs => {
            let s = f.unary(Unary::Sign, x);
            f.mul(g, s)
        }
        Unary::Relu => {
            let m = f.unary(Unary::Positive, x);
            f.mul(g, m)
        }
        Unary::Sigmoid => {
            let one = f.scalar(1.0);
            let c = f.sub(one, y);
            let d = f.mul(y, c);
            f.mul(g, d)
        }
        Unary::Tanh => {
            let sq = f.unary(Unary::Square, y);
            let one = f.scalar(1.0);
            let d = f.sub(one, sq);
            f.mul(g, d)
        }
        Unary::Gelu => {
            let d = f.unary(Unary::GeluGrad, x);
            f.mul(g, d)
        }
        Unary::Softplus => {
            let s = f.unary(Unary::Sigmoid, x);
            f.mul(g, s)
        }
        Unary::Square => {
            let d = f.mul_scalar(x, 2.0);
            f.mul(g, d)
        }
        Unary::Recip => {
            let sq = f.unary(Unary::Square, y);
            let d = f.mul(g, sq);
            f.unary(Unary::Neg, d)
        }
        Unary::GeluGrad | Unary::Positive | Unary::Sign => return vec![],
    };
    vec![(x, d)]
}

/// Binary elementwise ops on (already broadcast) operands `x` and `z`.
fn binary_rule(f: &mut Func, b: Binary, x: Id, z: Id, y: Id, g: Id) -> Vec<(Id, Id)> {
    match b {
        Binary::Add => vec![(x, g), (z, g)],
        Binary::Sub => {
            let n = f.unary(Unary::Neg, g);
            vec![(x, g), (z, n)]
        }
        Binary::Mul => {
            let dx = f.mul(g, z);
            let dz = f.mul(g, x);
            vec![(x, dx), (z, dz)]
        }
        Binary::Div => {
            let dx = f.div(g, z);
            let q = f.div(y, z);
            let t = f.mul(g, q);
            let dz = f.unary(Unary::Neg, t);
            vec![(x, dx), (z, dz)]
        }
        Binary::Max | Binary::Min => {
            // The gradient goes to the selected operand (to `x` on ties).
            let lost = if b == Binary::Max { f.binary(Binary::Greater, z, x) } else { f.binary(Binary::Greater, x, z) };
            let one = f.scalar(1.0);
            let won = f.sub(one, lost);
            let dx = f.mul(g, won);
            let dz = f.mul(g, lost);
            vec![(x, dx), (z, dz)]
        }
        Binary::Greater | Binary::Equal => vec![],
    }
}

/// Matrix products, with either operand transposed.
fn matmul_rule(f: &mut Func, ta: bool, tb: bool, x: Id, z: Id, g: Id) -> Vec<(Id, Id)> {
    let (dx, dz) = match (ta, tb) {
        (false, false) => (f.matmul(g, z, false, true), f.matmul(x, g, true, false)),
        (false, true) => (f.matmul(g, z, false, false), f.matmul(g, x, true, false)),
        (true, false) => (f.matmul(z, g, false, true), f.matmul(x, g, false, false)),
        (true, true) => (f.matmul(z, g, true, true), f.matmul(g, x, true, true)),
    };
    vec![(x, dx), (z, dz)]
}

/// Reductions over `axes`: the gradient is broadcast back (and masked, for max).
fn reduce_rule(f: &mut Func, op: Reduce, axes: &[usize], keep: bool, x: Id, y: Id, g: Id) -> Vec<(Id, Id)> {
    let xs = f.shape(x).to_vec();
    let kept: Vec<usize> = xs.iter().enumerate().map(|(i, &d)| if axes.contains(&i) { 1 } else { d }).collect();
    let gk = if keep { g } else { f.reshape(g, kept.clone()) };
    let gb = f.broadcast_to(gk, xs.clone());
    let d = match op {
        Reduce::Sum => gb,
        Reduce::Mean => {
            let count: usize = axes.iter().map(|&i| xs[i]).product();
            f.mul_scalar(gb, 1.0 / count.max(1) as f64)
        }
        Reduce::Max => {
            let yk = if keep { y } else { f.reshape(y, kept) };
            let mask = f.binary(Binary::Equal, x, yk);
            f.mul(gb, mask)
        }
    };
    vec![(x, d)]
}

/// A 2-D convolution of `x` by kernel `k`.
fn conv_rule(f: &mut Func, window: Window, groups: usize, x: Id, k: Id, g: Id) -> Vec<(Id, Id)> {
    let t = f.current_layer;
    let (xs, ks) = (f.shape(x).to_vec(), f.shape(k).to_vec());
    let dx = f.push(Op::Conv2dInputGrad { window, groups }, vec![g, k], xs, DType::F32, t);
    let dk = f.push(Op::Conv2dKernelGrad { window, groups }, vec![x, g], ks, DType::F32, t);
    vec![(x, dx), (k, dk)]
}

/// `y = conv_input_grad(dy, k)` is linear in both: its adjoints are a
/// forward convolution and a kernel gradient.
fn conv_input_grad_rule(f: &mut Func, window: Window, groups: usize, dy: Id, k: Id, g: Id) -> Vec<(Id, Id)> {
    let t = f.current_layer;
    let (ds, ks) = (f.shape(dy).to_vec(), f.shape(k).to_vec());
    let d_dy = f.push(Op::Conv2d { window, groups }, vec![g, k], ds, DType::F32, t);
    let d_k = f.push(Op::Conv2dKernelGrad { window, groups }, vec![g, dy], ks, DType::F32, t);
    vec![(dy, d_dy), (k, d_k)]
}

/// Concatenation along `axis`: each argument gets its slice of `g`.
fn concat_rule(f: &mut Func, axis: usize, args: &[Id], g: Id) -> Vec<(Id, Id)> {
    let mut start = 0;
    let mut out = Vec::new();
    for &x in args {
        let len = f.shape(x)[axis];
        out.push((x, f.slice(g, axis, start, start + len)));
        start += len;
    }
    out
}
