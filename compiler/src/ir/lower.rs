//! Typed graph → IR with concrete shapes: binds the batch dim (and any other
//! symbolic dim), creates parameter declarations, and lowers each layer
//! through its table entry and each loss/metric through [`objective`].

use std::collections::HashMap;

use nnc_syntax::ast::{BinOp, ElemType};

use super::{Binary, DType, Func, Id, Op, ParamDecl, Reduce, Unary};
use crate::dims::Dim;
use crate::graph::{Graph, IndexSpec, NodeKind, Operand, TRef};
use crate::layers::lowering::{LowerCtx, LowerError};
use crate::types::{TensorTy, Value};

/// How to lower.
#[derive(Clone, Debug, Default)]
pub struct LowerOptions {
    /// Values of symbolic dims: at least `N`, the batch size.
    pub dims: Vec<(String, i64)>,
    /// Training mode: dropout and noise active, batch norm on batch statistics.
    pub training: bool,
    /// Loss weight of each class (`class_weight`), indexed by label.
    pub class_weights: Option<Vec<f64>>,
    /// Layers whose names start with one of these run in inference mode
    /// (models outside a step's `over`).
    pub inference_prefixes: Vec<String>,
    /// `stateful = true`: recurrent layers without an `initial_state` take
    /// it from an input and report their final state (see `Func::states`).
    pub stateful: bool,
}

/// Lowers the nodes needed for `roots` (named results). `substitute` maps a
/// model `Input` node to the node that feeds it (a data array or a `let` of
/// the train block).
// long: binds N, declares parameters and walks the graph in one order the IR depends on; kept whole while
// other work edits this file.
pub fn lower(
    graph: &Graph,
    roots: &[(String, TRef)],
    substitute: &HashMap<u32, TRef>,
    opts: &LowerOptions,
) -> Result<Func, LowerError> {
    let concrete = |d: &Dim| -> Result<usize, LowerError> {
        let v = d.substitute(&|s| opts.dims.iter().find(|(n, _)| n == s).map(|(_, v)| Dim::Known(*v)));
        let v = v.map_err(|_| LowerError::TooLarge(format!("the dim `{d}` at this batch size")))?;
        match v.as_known() {
            Some(k) if k >= 0 => usize::try_from(k).map_err(|_| LowerError::TooLarge(format!("the dim `{d}`"))),
            _ => Err(LowerError::Unsupported(format!("the dim `{d}` has no value at run time"))),
        }
    };
    let shape_of = |t: &TensorTy| -> Result<Vec<usize>, LowerError> {
        let shape: Vec<usize> = t.dims.iter().map(concrete).collect::<Result<_, _>>()?;
        check_size(&shape)?;
        Ok(shape)
    };

    // Evaluation order: operands first. Substituted inputs depend on their
    // feeds, which come later in the graph (train-block nodes follow the
    // model's), so order by an iterative depth-first post-order.
    let mut order = Vec::new();
    let mut state = vec![0u8; graph.nodes.len()]; // 0 new, 1 open, 2 done
    for (_, r) in roots {
        let mut stack = vec![(r.node, false)];
        while let Some((id, expanded)) = stack.pop() {
            let i = id as usize;
            if expanded {
                state[i] = 2;
                order.push(i);
                continue;
            }
            if state[i] != 0 {
                continue;
            }
            state[i] = 1;
            stack.push((id, true));
            let mut next = deps(&graph.nodes[i].kind);
            if let Some(s) = substitute.get(&id) {
                next.push(s.node);
            }
            for d in next.into_iter().rev() {
                if state[d as usize] == 0 {
                    stack.push((d, false));
                }
            }
        }
    }

    let mut f = Func::default();
    let mut ids: HashMap<TRef, Id> = HashMap::new();
    let mut params: HashMap<String, Id> = HashMap::new();
    for i in order {
        let node = &graph.nodes[i];
        let here = |o: u16| TRef { node: i as u32, output: o };
        f.current_layer = None;
        match &node.kind {
            NodeKind::Input { name } | NodeKind::Data { name } => {
                if let (NodeKind::Input { .. }, Some(s)) = (&node.kind, substitute.get(&(i as u32))) {
                    let src = *ids.get(s).ok_or_else(|| LowerError::Unsupported(format!("feed of `{name}`")))?;
                    ids.insert(here(0), src);
                    continue;
                }
                let t = &node.outputs[0];
                let dtype = if t.elem == ElemType::Int { DType::I64 } else { DType::F32 };
                let id = f.input(name, shape_of(t)?, dtype);
                ids.insert(here(0), id);
            }
            NodeKind::Layer { def, args, inputs, params: specs, name, frozen } => {
                f.layers.push(name.clone());
                f.current_layer = Some((f.layers.len() - 1) as u32);
                let mut pids = Vec::new();
                for p in specs {
                    let id = match params.get(&p.name) {
                        // The same name is the same parameter (a model called twice);
                        // a different shape under one name is a naming clash.
                        Some(&id)
                            if f.shape(id)
                                != p.shape.iter().map(concrete).collect::<Result<Vec<_>, _>>()?.as_slice() =>
                        {
                            return Err(LowerError::Unsupported(format!(
                                "two parameters are named `{}` with different shapes; give one of the layers a `name`",
                                p.name
                            )));
                        }
                        Some(&id) => id,
                        None => {
                            let shape: Vec<usize> = p.shape.iter().map(concrete).collect::<Result<_, _>>()?;
                            f.params.push(ParamDecl {
                                name: p.name.clone(),
                                shape: shape.clone(),
                                trainable: p.trainable,
                                init: p.init.to_string(),
                            });
                            let id = f.push(Op::Param(f.params.len() - 1), vec![], shape, DType::F32, None);
                            params.insert(p.name.clone(), id);
                            id
                        }
                    };
                    let rel = p.name.strip_prefix(&format!("{name}.")).unwrap_or(&p.name).to_string();
                    pids.push((rel, id));
                }
                let in_ids = inputs
                    .iter()
                    .map(|r| ids.get(r).copied().ok_or_else(|| LowerError::Unsupported("operand".into())))
                    .collect::<Result<Vec<_>, _>>()?;
                let out_shapes = node.outputs.iter().map(shape_of).collect::<Result<Vec<_>, _>>()?;
                let tensor_of = |t: &TensorTy| t.node.and_then(|r| ids.get(&r).copied());
                // Options may use dims the data binds (`one_hot(x, V)`).
                let value = |s: &str| opts.dims.iter().find(|(n, _)| n == s).map(|(_, v)| Dim::Known(*v));
                let args = args
                    .substitute_dims(&value)
                    .map_err(|d| LowerError::Unsupported(format!("the dim `{d}` has no value at run time")))?;
                let mut ctx = LowerCtx {
                    f: &mut f,
                    layer: def.name,
                    inputs: in_ids,
                    args: &args,
                    params: pids,
                    training: opts.training && !opts.inference_prefixes.iter().any(|p| name.starts_with(p.as_str())),
                    frozen: *frozen,
                    stateful: opts.stateful,
                    out_shapes,
                    tensor_of: &tensor_of,
                };
                let outs = (def.lower)(&mut ctx)?;
                for (o, id) in outs.into_iter().enumerate() {
                    ids.insert(here(o as u16), id);
                }
            }
            NodeKind::Binary { op, lhs, rhs } => {
                let a = operand(&mut f, &ids, lhs)?;
                let b = operand(&mut f, &ids, rhs)?;
                let bin = match op {
                    BinOp::Add => Binary::Add,
                    BinOp::Sub => Binary::Sub,
                    BinOp::Mul => Binary::Mul,
                    BinOp::Div => Binary::Div,
                };
                let a = as_float(&mut f, a);
                let b = as_float(&mut f, b);
                ids.insert(here(0), f.binary(bin, a, b));
            }
            NodeKind::Index { base, items } => {
                let mut x = *ids.get(base).ok_or_else(|| LowerError::Unsupported("index base".into()))?;
                let mut dropped = Vec::new();
                for (axis, item) in items.iter().enumerate() {
                    match item {
                        IndexSpec::Full => {}
                        IndexSpec::At(i) => {
                            let i = (*i).max(0) as usize;
                            x = f.slice(x, axis, i, i + 1);
                            dropped.push(axis);
                        }
                        IndexSpec::Slice(s, e) => x = f.slice(x, axis, (*s).max(0) as usize, (*e).max(0) as usize),
                    }
                }
                let shape: Vec<usize> =
                    f.shape(x).iter().enumerate().filter(|(a, _)| !dropped.contains(a)).map(|(_, &d)| d).collect();
                ids.insert(here(0), f.reshape(x, shape));
            }
            NodeKind::Objective { function, pred, target, options } => {
                let p = *ids.get(pred).ok_or_else(|| LowerError::Unsupported("prediction".into()))?;
                let t = operand(&mut f, &ids, target)?;
                let id = objective(&mut f, function, p, t, options, opts.class_weights.as_deref())?;
                ids.insert(here(0), id);
            }
            NodeKind::L2 => {
                let mut total = f.scalar(0.0);
                let kernels: Vec<Id> = f
                    .params
                    .iter()
                    .enumerate()
                    .filter(|(_, p)| p.trainable && (p.name.ends_with("kernel") || p.name.ends_with("embeddings")))
                    .filter_map(|(i, _)| params.values().copied().find(|&id| f.nodes[id as usize].op == Op::Param(i)))
                    .collect();
                for k in kernels {
                    let sq = f.unary(Unary::Square, k);
                    let s = f.reduce(Reduce::Sum, sq, (0..f.shape(k).len()).collect(), false);
                    total = f.add(total, s);
                }
                ids.insert(here(0), total);
            }
        }
    }
    for (name, r) in roots {
        let id = *ids.get(r).ok_or_else(|| LowerError::Unsupported(format!("result `{name}`")))?;
        f.outputs.push((name.clone(), id));
    }
    f.current_layer = None;
    // Shapes the lowerings derived (attention scores [N·heads, T, S], …) are
    // checked here once, before anything is allocated for them.
    for n in &f.nodes {
        check_size(&n.shape)?;
    }
    Ok(f)
}

fn check_size(shape: &[usize]) -> Result<(), LowerError> {
    match super::checked_numel(shape) {
        Some(n) if n <= super::MAX_ELEMENTS => Ok(()),
        _ => Err(LowerError::TooLarge(format!("a tensor of shape {shape:?}"))),
    }
}

fn deps(kind: &NodeKind) -> Vec<u32> {
    let tensor_args = |args: &crate::layers::Args| -> Vec<u32> {
        let mut v = Vec::new();
        for name in ["kv", "initial_state"] {
            match args.get(name) {
                crate::layers::ArgVal::Tensor(t) => v.extend(t.node.map(|r| r.node)),
                crate::layers::ArgVal::State(ts) => v.extend(ts.iter().filter_map(|t| t.node.map(|r| r.node))),
                _ => {}
            }
        }
        v
    };
    let op = |o: &Operand| match o {
        Operand::Tensor(r) => Some(r.node),
        _ => None,
    };
    match kind {
        NodeKind::Input { .. } | NodeKind::Data { .. } | NodeKind::L2 => vec![],
        NodeKind::Layer { inputs, args, .. } => inputs.iter().map(|r| r.node).chain(tensor_args(args)).collect(),
        NodeKind::Binary { lhs, rhs, .. } => op(lhs).into_iter().chain(op(rhs)).collect(),
        NodeKind::Index { base, .. } => vec![base.node],
        NodeKind::Objective { pred, target, .. } => std::iter::once(pred.node).chain(op(target)).collect(),
    }
}

fn operand(f: &mut Func, ids: &HashMap<TRef, Id>, o: &Operand) -> Result<Id, LowerError> {
    Ok(match o {
        Operand::Tensor(r) => *ids.get(r).ok_or_else(|| LowerError::Unsupported("operand".into()))?,
        Operand::Scalar(v) => f.scalar(*v),
        Operand::Vector(v) => {
            let data = v.iter().map(|&x| x as f32).collect();
            f.push(Op::Constant(data), vec![], vec![v.len()], DType::F32, None)
        }
    })
}

/// Integer tensors entering arithmetic become floats (`images / 255`).
fn as_float(f: &mut Func, x: Id) -> Id {
    if f.nodes[x as usize].dtype == DType::F32 {
        return x;
    }
    // Adding a float zero converts: the executor casts int operands.
    let zero = f.scalar(0.0);
    f.binary(Binary::Add, x, zero)
}

fn option_f64(options: &[(String, Value)], name: &str) -> Option<f64> {
    options.iter().find(|(k, _)| k == name).and_then(|(_, v)| v.as_f64())
}

/// An objective's numeric option as written, else its schema default.
fn option_or_default(function: &str, options: &[(String, Value)], name: &str) -> f64 {
    option_f64(options, name).or_else(|| crate::schema::default_f64(function, name)).unwrap_or(0.0)
}

fn option_bool(options: &[(String, Value)], name: &str) -> Option<bool> {
    options.iter().find(|(k, _)| k == name).and_then(|(_, v)| if let Value::Bool(b) = v { Some(*b) } else { None })
}

fn mean_all(f: &mut Func, x: Id) -> Id {
    let r = f.shape(x).len();
    f.reduce(Reduce::Mean, x, (0..r).collect(), false)
}

/// The target with trailing 1-axes matched to the prediction's shape.
fn align(f: &mut Func, t: Id, like: Id) -> Id {
    let (ts, ps) = (f.shape(t).to_vec(), f.shape(like).to_vec());
    if ts.is_empty() || ts == ps {
        return t;
    }
    let strip = |s: &[usize]| {
        let mut v = s.to_vec();
        while v.last() == Some(&1) {
            v.pop();
        }
        v
    };
    if strip(&ts) == strip(&ps) { f.reshape(t, ps) } else { t }
}

/// Losses and metrics as scalar nodes. Losses average over the batch
/// (weighted as Keras does when class weights are given: Σ wᵢ·lᵢ / N).
pub fn objective(
    f: &mut Func,
    function: &str,
    pred: Id,
    target: Id,
    options: &[(String, Value)],
    class_weights: Option<&[f64]>,
) -> Result<Id, LowerError> {
    let ps = f.shape(pred).to_vec();
    let last = ps.len().saturating_sub(1);
    let classes = *ps.last().unwrap_or(&1);
    let int_target = f.nodes[target as usize].dtype == DType::I64;
    let onehot = |f: &mut Func, t: Id| one_hot(f, t, classes);
    // Per-sample weights from class_weight, for integer labels.
    let weights = |f: &mut Func, t: Id| -> Option<Id> {
        let w = class_weights?;
        if !int_target {
            return None;
        }
        let oh = onehot(f, t);
        let table =
            f.push(Op::Constant(w.iter().map(|&x| x as f32).collect()), vec![], vec![w.len()], DType::F32, None);
        let wt = f.mul(oh, table);
        Some(f.reduce(Reduce::Sum, wt, vec![f.shape(wt).len() - 1], false))
    };
    let weighted_mean = |f: &mut Func, per_sample: Id, w: Option<Id>| -> Id {
        match w {
            Some(w) => {
                let ws = f.mul(per_sample, w);
                mean_all(f, ws)
            }
            None => mean_all(f, per_sample),
        }
    };
    Ok(match function {
        "cross_entropy" | "nll" | "perplexity" => {
            let from_logits = option_bool(options, "from_logits")
                .or_else(|| crate::schema::default_bool(function, "from_logits"))
                .unwrap_or(true);
            let logp = if function == "nll" {
                pred
            } else if from_logits {
                f.op1(Op::LogSoftmax(last), pred)
            } else {
                let eps = f.scalar(1e-7);
                let c = f.binary(Binary::Max, pred, eps);
                f.unary(Unary::Log, c)
            };
            let t = if int_target { onehot(f, target) } else { target };
            let picked = f.mul(logp, t);
            let per = f.reduce(Reduce::Sum, picked, vec![last], false);
            let nll = f.unary(Unary::Neg, per);
            let w = weights(f, target);
            let m = weighted_mean(f, nll, w);
            if function == "perplexity" { f.unary(Unary::Exp, m) } else { m }
        }
        "mse" => mean_error(f, pred, target, Unary::Square),
        "l1" | "mae" => mean_error(f, pred, target, Unary::Abs),
        "huber" => huber(f, pred, target, option_or_default(function, options, "delta")),
        "top_k_accuracy" => {
            let t = if int_target { one_hot(f, target, classes) } else { as_float(f, target) };
            top_k(f, pred, t, option_or_default(function, options, "k"))
        }
        "binary_cross_entropy" => binary_cross_entropy(f, pred, target),
        "bce_with_logits" => bce_with_logits(f, pred, target),
        "accuracy" | "precision" | "recall" => {
            let threshold = option_or_default(function, options, "threshold");
            // Correct predictions, as 0/1 per sample.
            let (pred_pos, true_pos) = if int_target && classes > 1 {
                // The logit of the true class is the maximum (ties count as correct).
                let oh = onehot(f, target);
                let picked = f.mul(pred, oh);
                let true_logit = f.reduce(Reduce::Sum, picked, vec![last], false);
                let best = f.reduce(Reduce::Max, pred, vec![last], false);
                let correct = f.binary(Binary::Equal, true_logit, best);
                if function == "accuracy" {
                    return Ok(mean_all(f, correct));
                }
                let class = option_or_default(function, options, "class");
                let cls = f.scalar(class);
                let tf = as_float(f, target);
                let is_c = f.binary(Binary::Equal, tf, cls);
                // Predicted class c: the logit of class c is the maximum.
                let c_idx = class.max(0.0) as usize;
                let pc = f.slice(pred, last, c_idx.min(classes - 1), c_idx.min(classes - 1) + 1);
                let pc = f.reshape(pc, f.shape(best).to_vec());
                let pred_c = f.binary(Binary::Equal, pc, best);
                (pred_c, is_c)
            } else {
                let t = align(f, target, pred);
                let t = as_float(f, t);
                let th = f.scalar(threshold);
                let p = f.binary(Binary::Greater, pred, th);
                let tt = f.binary(Binary::Greater, t, th);
                if function == "accuracy" {
                    let same = f.binary(Binary::Equal, p, tt);
                    return Ok(mean_all(f, same));
                }
                if option_f64(options, "class") == Some(0.0) {
                    // Class 0 of a single probability: positives are those at or below the threshold.
                    let one = f.scalar(1.0);
                    (f.sub(one, p), f.sub(one, tt))
                } else {
                    (p, tt)
                }
            };
            ratio(f, pred_pos, true_pos, function == "precision")
        }
        other => return Err(LowerError::Unsupported(format!("objective `{other}`"))),
    })
}

/// The mean of `error(pred − target)` over every element.
fn mean_error(f: &mut Func, pred: Id, target: Id, error: Unary) -> Id {
    let t = align(f, target, pred);
    let d = f.sub(pred, t);
    let e = f.unary(error, d);
    mean_all(f, e)
}

/// Precision (true positives over predicted positives) or recall (over true positives), recorded in
/// `f.ratios` so that the trainer sums numerator and denominator over the whole set.
fn ratio(f: &mut Func, pred_pos: Id, true_pos: Id, precision: bool) -> Id {
    let both = f.mul(pred_pos, true_pos);
    let r = f.shape(both).len();
    let tp = f.reduce(Reduce::Sum, both, (0..r).collect(), false);
    let denom_src = if precision { pred_pos } else { true_pos };
    let denom = f.reduce(Reduce::Sum, denom_src, (0..r).collect(), false);
    let eps = f.scalar(1e-7);
    let d = f.binary(Binary::Max, denom, eps);
    let ratio = f.div(tp, d);
    f.ratios.push((ratio, tp, denom));
    ratio
}

/// Integer labels as one-hot rows of `classes`.
fn one_hot(f: &mut Func, t: Id, classes: usize) -> Id {
    let mut s = f.shape(t).to_vec();
    s.push(classes);
    f.push(Op::OneHot(classes), vec![t], s, DType::F32, None)
}

fn huber(f: &mut Func, pred: Id, target: Id, delta: f64) -> Id {
    // Keras: ½d² where |d| ≤ δ, else δ·(|d| − ½δ), the mean over the last axis, then over
    // the batch — the mean of every element. As q = min(|d|, δ): ½q² + δ·(|d| − q).
    let t = align(f, target, pred);
    let t = as_float(f, t);
    let d = f.sub(pred, t);
    let a = f.unary(Unary::Abs, d);
    let dl = f.scalar(delta);
    let q = f.binary(Binary::Min, a, dl);
    let q2 = f.unary(Unary::Square, q);
    let half = f.scalar(0.5);
    let quad = f.mul(half, q2);
    let excess = f.sub(a, q);
    let lin = f.mul(dl, excess);
    let l = f.add(quad, lin);
    mean_all(f, l)
}

/// The fraction of samples whose target logit (`t` one-hot) is among the `k` highest.
fn top_k(f: &mut Func, pred: Id, t: Id, k: f64) -> Id {
    let last = f.shape(pred).len().saturating_sub(1);
    // In the top k when fewer than k logits are strictly greater than the label's
    // (ties at the boundary count as in, as Keras's in_top_k).
    let picked = f.mul(pred, t);
    let true_logit = f.reduce(Reduce::Sum, picked, vec![last], true);
    let above = f.binary(Binary::Greater, pred, true_logit);
    let count = f.reduce(Reduce::Sum, above, vec![last], false);
    let limit = f.scalar(k - 0.5);
    let inside = f.binary(Binary::Greater, limit, count);
    mean_all(f, inside)
}

fn binary_cross_entropy(f: &mut Func, pred: Id, target: Id) -> Id {
    // Keras clips probabilities to [ε, 1 − ε].
    let t = align(f, target, pred);
    let t = as_float(f, t);
    let eps = 1e-7;
    let lo = f.scalar(eps);
    let hi = f.scalar(1.0 - eps);
    let p = f.binary(Binary::Max, pred, lo);
    let p = f.binary(Binary::Min, p, hi);
    let lp = f.unary(Unary::Log, p);
    let one = f.scalar(1.0);
    let q = f.sub(one, p);
    let lq = f.unary(Unary::Log, q);
    let a = f.mul(t, lp);
    let nt = f.sub(one, t);
    let b = f.mul(nt, lq);
    let s = f.add(a, b);
    let n = f.unary(Unary::Neg, s);
    mean_all(f, n)
}

fn bce_with_logits(f: &mut Func, pred: Id, target: Id) -> Id {
    // max(x, 0) − x·y + log(1 + e^−|x|)
    let t = align(f, target, pred);
    let t = as_float(f, t);
    let r = f.unary(Unary::Relu, pred);
    let xy = f.mul(pred, t);
    let a = f.unary(Unary::Abs, pred);
    let na = f.unary(Unary::Neg, a);
    let sp = f.unary(Unary::Softplus, na);
    let d = f.sub(r, xy);
    let l = f.add(d, sp);
    mean_all(f, l)
}
