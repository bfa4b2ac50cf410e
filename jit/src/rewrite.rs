//! Algebraic rewrites of the IR before fusion. The reference executor runs
//! the function as lowered, so `tests/backends.rs` checks every rewrite.
//!
//! - **Sums of products become one product.** The gradient of a weight
//!   shared across the time steps of an unrolled recurrence is a sum of T
//!   products `Σ_t h_tᵀ · g_t`, each with a short reduction (the batch).
//!   `[h_1; …; h_T]ᵀ · [g_1; …; g_T]` is the same sum as one product with a
//!   T-times longer reduction, which GEMM runs near peak, and no additions.

use nnc_compiler::ir::{Binary, DType, Func, Id, Node, Op};

/// A rewritten function and where each original node went.
pub struct Rewritten {
    /// The rewritten function; nodes not needed by `keep` may remain but are dead.
    pub func: Func,
    /// `map[old]` is the node that computes old node `old` in `func`.
    pub map: Vec<Id>,
}

/// Fewest products worth concatenating.
const MIN_TERMS: usize = 3;

/// Applies the rewrites above to the nodes `keep` depends on; the result computes the same values for `keep`.
pub fn rewrite(f: &Func, keep: &[Id]) -> Rewritten {
    let n = f.nodes.len();
    let live = crate::fuse::live_nodes(f, keep);
    let uses = crate::fuse::reader_counts(f, &live, keep);
    // Roots of add trees of products: their (A, B) operand pairs, in order.
    let mut merged: Vec<Option<Vec<(Id, Id)>>> = vec![None; n];
    for i in 0..n {
        if !live[i] || !matches!(f.nodes[i].op, Op::Binary(Binary::Add)) {
            continue;
        }
        // Only the outermost add of a tree: its reader is not a tree add.
        let mut terms = Vec::new();
        if collect(f, i as Id, &uses, true, &mut terms) && terms.len() >= MIN_TERMS {
            merged[i] = Some(terms);
        }
    }
    // An inner add of a merged tree is not a root of its own.
    for i in 0..n {
        if let Some(terms) = merged[i].clone() {
            let mut inner = Vec::new();
            inner_adds(f, i as Id, &uses, true, &mut inner);
            for a in inner {
                if a != i as Id {
                    merged[a as usize] = None;
                }
            }
            merged[i] = Some(terms);
        }
    }
    let mut out = Func { nodes: Vec::with_capacity(n), ..f.clone() };
    let mut map: Vec<Id> = Vec::with_capacity(n);
    for (i, node) in f.nodes.iter().enumerate() {
        let args: Vec<Id> = node.args.iter().map(|&a| map[a as usize]).collect();
        let Some(terms) = &merged[i] else {
            out.nodes.push(Node { args, ..node.clone() });
            map.push((out.nodes.len() - 1) as Id);
            continue;
        };
        let concat = |out: &mut Func, ids: Vec<Id>| -> Id {
            let rows: usize = ids.iter().map(|&x| out.nodes[x as usize].shape[0]).sum();
            let cols = out.nodes[ids[0] as usize].shape[1];
            out.push(Op::Concat(0), ids, vec![rows, cols], DType::F32, node.layer)
        };
        let a = concat(&mut out, terms.iter().map(|t| map[t.0 as usize]).collect());
        let b = concat(&mut out, terms.iter().map(|t| map[t.1 as usize]).collect());
        out.nodes.push(Node { op: Op::MatMul { ta: true, tb: false }, args: vec![a, b], ..node.clone() });
        map.push((out.nodes.len() - 1) as Id);
    }
    let m = |id: Id| map[id as usize];
    out.outputs = f.outputs.iter().map(|(s, id)| (s.clone(), m(*id))).collect();
    out.moving_updates = f.moving_updates.iter().map(|&(p, id, mo)| (p, m(id), mo)).collect();
    out.states = f.states.iter().map(|(s, id)| (s.clone(), m(*id))).collect();
    out.ratios = f.ratios.iter().map(|&(a, b, c)| (m(a), m(b), m(c))).collect();
    Rewritten { func: out, map }
}

/// Whether `id` is a product `Aᵀ·B` of rank-2 operands read only here.
fn product(f: &Func, id: Id, uses: &[usize]) -> Option<(Id, Id)> {
    let node = &f.nodes[id as usize];
    let is = matches!(node.op, Op::MatMul { ta: true, tb: false }) && uses[id as usize] == 1;
    let rank2 = node.args.iter().all(|&a| f.shape(a).len() == 2);
    (is && rank2).then(|| (node.args[0], node.args[1]))
}

/// Collects the product terms of the add tree at `id`; false if any leaf is
/// not a product of the root's shape.
fn collect(f: &Func, id: Id, uses: &[usize], root: bool, terms: &mut Vec<(Id, Id)>) -> bool {
    let node = &f.nodes[id as usize];
    if matches!(node.op, Op::Binary(Binary::Add)) && (root || uses[id as usize] == 1) {
        let same = node.args.iter().all(|&a| f.shape(a) == node.shape.as_slice());
        return same && node.args[0] != node.args[1] && node.args.iter().all(|&a| collect(f, a, uses, false, terms));
    }
    match product(f, id, uses) {
        Some(t) => {
            terms.push(t);
            true
        }
        None => false,
    }
}

fn inner_adds(f: &Func, id: Id, uses: &[usize], root: bool, acc: &mut Vec<Id>) {
    let node = &f.nodes[id as usize];
    if matches!(node.op, Op::Binary(Binary::Add)) && (root || uses[id as usize] == 1) {
        acc.push(id);
        for &a in &node.args {
            inner_adds(f, a, uses, false, acc);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sum_of_three_products_becomes_one() {
        let mut f = Func::default();
        let mut terms = Vec::new();
        for t in 0..3 {
            let h = f.push(Op::Input(format!("h{t}")), vec![], vec![2, 5], DType::F32, None);
            let g = f.push(Op::Input(format!("g{t}")), vec![], vec![2, 4], DType::F32, None);
            terms.push(f.push(Op::MatMul { ta: true, tb: false }, vec![h, g], vec![5, 4], DType::F32, None));
        }
        let s1 = f.push(Op::Binary(Binary::Add), vec![terms[0], terms[1]], vec![5, 4], DType::F32, None);
        let s2 = f.push(Op::Binary(Binary::Add), vec![s1, terms[2]], vec![5, 4], DType::F32, None);
        let r = rewrite(&f, &[s2]);
        let root = &r.func.nodes[r.map[s2 as usize] as usize];
        assert_eq!(root.op, Op::MatMul { ta: true, tb: false });
        assert_eq!(r.func.shape(root.args[0]), &[6, 5]);
        assert_eq!(r.func.shape(root.args[1]), &[6, 4]);
    }

    #[test]
    fn a_product_read_twice_is_left_alone() {
        let mut f = Func::default();
        let mut terms = Vec::new();
        for t in 0..3 {
            let h = f.push(Op::Input(format!("h{t}")), vec![], vec![2, 5], DType::F32, None);
            terms.push(f.push(Op::MatMul { ta: true, tb: false }, vec![h, h], vec![5, 5], DType::F32, None));
        }
        let s1 = f.push(Op::Binary(Binary::Add), vec![terms[0], terms[1]], vec![5, 5], DType::F32, None);
        let s2 = f.push(Op::Binary(Binary::Add), vec![s1, terms[2]], vec![5, 5], DType::F32, None);
        let r = rewrite(&f, &[s2, terms[0]]);
        assert_eq!(r.func.nodes[r.map[s2 as usize] as usize].op, Op::Binary(Binary::Add));
    }
}
