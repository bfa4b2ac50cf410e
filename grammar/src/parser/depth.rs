//! A bound on how deeply the tree nests, so no later pass runs out of stack.
//!
//! The checker, the summary, the formatter's tree comparison, the language
//! server's walks and even `Drop` recurse over expressions. Brackets are
//! bounded before pest runs (`MAX_NESTING`), but chains nest without
//! brackets: `a + b + … ` and `x |> f |> …` build left-nested trees,
//! `x[0][0]…` nests indices and `if … else if …` nests statements. After
//! building, every expression, type and statement list deeper than
//! [`MAX_DEPTH`] is replaced by an error node (one E0001 per declaration),
//! and the cut-off subtree is taken apart iteratively, not dropped
//! recursively.

use crate::ast::*;
use crate::diagnostic::{Code, Diagnostic};
use crate::{FileId, Span};

/// Deepest nesting of expressions, types and `if` bodies in one declaration.
/// Each level costs a few frames in each recursive pass; 256 keeps every pass
/// within a 2 MiB thread stack in a debug build (tests/hostile/arith.rs and
/// the parser's tests check inputs at the limit on such threads), and is
/// far beyond hand-written models (the deepest example nests 20 levels).
pub const MAX_DEPTH: usize = 256;

/// A part of the tree that can be nested arbitrarily deeply.
enum Node<'a> {
    Expr(&'a mut Expr),
    Type(&'a mut TypeExpr),
    Stmts(&'a mut Vec<Stmt>),
}

/// Cuts every node nested deeper than [`MAX_DEPTH`] out of `items`.
pub(super) fn limit_depth(items: &mut [Item], file: FileId, diags: &mut Vec<Diagnostic>) {
    for item in items {
        let mut roots = Vec::new();
        item_roots(item, &mut roots);
        if let Some(span) = limit(roots) {
            diags.push(
                Diagnostic::new(Code::SyntaxError, file, span, "expression nested too deeply")
                    .with_label(format!("more than {MAX_DEPTH} levels of nesting"))
                    .with_help("split it with `let` bindings (long `|>` or `+` chains nest one level per stage)"),
            );
        }
    }
}

fn item_roots<'a>(item: &'a mut Item, out: &mut Vec<Node<'a>>) {
    let params = |ps: &'a mut Vec<Param>, out: &mut Vec<Node<'a>>| {
        for p in ps {
            out.extend(p.ty.as_mut().map(Node::Type));
            out.extend(p.default.as_mut().map(Node::Expr));
        }
    };
    match item {
        Item::Use(_) => {}
        Item::Dim(d) => out.extend(d.dims.iter_mut().filter_map(|d| d.value.as_mut().map(Node::Expr))),
        Item::Model(m) => {
            params(&mut m.params, out);
            out.push(Node::Stmts(&mut m.body));
        }
        Item::Block(b) => {
            params(&mut b.params, out);
            out.extend(b.ret.as_mut().map(Node::Type));
            out.push(Node::Stmts(&mut b.body));
        }
        Item::Train(t) => {
            for ti in &mut t.items {
                match ti {
                    TrainItem::Field { value, .. } => out.push(Node::Expr(value)),
                    TrainItem::Let(l) => let_children(l, out),
                    TrainItem::Step(s) => {
                        out.extend(s.times.as_mut().map(Node::Expr));
                        out.push(Node::Expr(&mut s.loss));
                        out.push(Node::Expr(&mut s.optimizer));
                    }
                }
            }
        }
    }
}

fn let_children<'a>(l: &'a mut LetStmt, out: &mut Vec<Node<'a>>) {
    out.extend(l.ty.as_mut().map(Node::Type));
    out.push(Node::Expr(&mut l.value));
}

/// Walks from `roots` (depth 0) with an explicit stack; cuts what lies
/// deeper than the limit. Returns the span of the first cut.
fn limit(roots: Vec<Node<'_>>) -> Option<Span> {
    let mut first_cut = None;
    let mut stack: Vec<(Node<'_>, usize)> = roots.into_iter().map(|n| (n, 0)).collect();
    while let Some((node, depth)) = stack.pop() {
        if depth > MAX_DEPTH {
            let span = cut(node);
            first_cut = Some(first_cut.map_or(span, |s: Span| if span.start < s.start { span } else { s }));
            continue;
        }
        let mut kids = Vec::new();
        children(node, &mut kids);
        stack.extend(kids.into_iter().map(|k| (k, depth + 1)));
    }
    first_cut
}

/// The nodes directly inside `node`: sub-expressions, types, and the
/// statement lists of `if`s (a list's own statements are at its depth).
fn children<'a>(node: Node<'a>, out: &mut Vec<Node<'a>>) {
    match node {
        Node::Expr(e) => expr_children(e, out),
        Node::Type(t) => match t {
            TypeExpr::Tensor { dims, .. } => out.extend(dims.iter_mut().map(Node::Expr)),
            TypeExpr::Tuple(parts, _) => out.extend(parts.iter_mut().map(Node::Type)),
            TypeExpr::Scalar(..) => {}
        },
        Node::Stmts(stmts) => {
            for s in stmts {
                match s {
                    Stmt::Input { ty, .. } => out.push(Node::Type(ty)),
                    Stmt::Let(l) => let_children(l, out),
                    Stmt::Output { ty, value, .. } => {
                        out.extend(ty.as_mut().map(Node::Type));
                        out.extend(value.as_mut().map(Node::Expr));
                    }
                    Stmt::Return { value, .. } => out.push(Node::Expr(value)),
                    Stmt::If { cond, then_body, else_body, .. } => {
                        out.push(Node::Expr(cond));
                        out.push(Node::Stmts(then_body));
                        out.push(Node::Stmts(else_body));
                    }
                }
            }
        }
    }
}

fn expr_children<'a>(e: &'a mut Expr, out: &mut Vec<Node<'a>>) {
    let call =
        |c: &'a mut Call, out: &mut Vec<Node<'a>>| out.extend(c.args.iter_mut().map(|a| Node::Expr(&mut a.value)));
    match &mut e.kind {
        ExprKind::Int(_) | ExprKind::Float(_) | ExprKind::Str(_) | ExprKind::Bool(_) | ExprKind::Name(_) => {}
        ExprKind::Error => {}
        ExprKind::Call(c) => call(c, out),
        ExprKind::Pipe { input, stage } => {
            out.push(Node::Expr(input));
            call(stage, out);
        }
        ExprKind::Binary { lhs, rhs, .. } | ExprKind::Compare { lhs, rhs, .. } => {
            out.push(Node::Expr(lhs));
            out.push(Node::Expr(rhs));
        }
        ExprKind::Range { start, end } => {
            out.push(Node::Expr(start));
            out.push(Node::Expr(end));
        }
        ExprKind::Neg(x) | ExprKind::Frozen(x) => out.push(Node::Expr(x)),
        ExprKind::List(xs) | ExprKind::Tuple(xs) => out.extend(xs.iter_mut().map(Node::Expr)),
        ExprKind::Map(entries) => {
            for (k, v) in entries {
                out.push(Node::Expr(k));
                out.push(Node::Expr(v));
            }
        }
        ExprKind::Index { base, indices } => {
            out.push(Node::Expr(base));
            for i in indices {
                match i {
                    IndexItem::At(x) => out.push(Node::Expr(x)),
                    IndexItem::Slice { start, end, .. } => {
                        out.extend(start.as_mut().map(Node::Expr));
                        out.extend(end.as_mut().map(Node::Expr));
                    }
                }
            }
        }
        ExprKind::TensorType(t) => out.push(Node::Type(t)),
    }
}

/// Replaces `node` by a leaf and takes the old subtree apart without
/// recursion. Returns the span of what was cut.
fn cut(node: Node<'_>) -> Span {
    let (span, mut garbage) = match node {
        Node::Expr(e) => {
            let span = e.span;
            (span, vec![Owned::Expr(std::mem::replace(e, Expr { kind: ExprKind::Error, span }))])
        }
        Node::Type(t) => {
            let span = t.span();
            (span, vec![Owned::Type(std::mem::replace(t, TypeExpr::Tuple(Vec::new(), span)))])
        }
        Node::Stmts(stmts) => {
            let span = match (stmts.first(), stmts.last()) {
                (Some(a), Some(b)) => a.span().to(b.span()),
                _ => Span::new(0, 0),
            };
            (span, vec![Owned::Stmts(std::mem::take(stmts))])
        }
    };
    // Empty every node's children into the work list before it drops, so
    // each drop is shallow.
    while let Some(mut owned) = garbage.pop() {
        let mut kids = Vec::new();
        match &mut owned {
            Owned::Expr(e) => expr_children(e, &mut kids),
            Owned::Type(t) => children(Node::Type(t), &mut kids),
            Owned::Stmts(s) => children(Node::Stmts(s), &mut kids),
        }
        for k in kids {
            garbage.push(match k {
                Node::Expr(e) => {
                    let span = e.span;
                    Owned::Expr(std::mem::replace(e, Expr { kind: ExprKind::Error, span }))
                }
                Node::Type(t) => {
                    let span = t.span();
                    Owned::Type(std::mem::replace(t, TypeExpr::Tuple(Vec::new(), span)))
                }
                Node::Stmts(s) => Owned::Stmts(std::mem::take(s)),
            });
        }
    }
    span
}

enum Owned {
    Expr(Expr),
    Type(TypeExpr),
    Stmts(Vec<Stmt>),
}
