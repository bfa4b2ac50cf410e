//! Walking the syntax tree of a file: every expression, with the calls and
//! pipe stages that contain a position.

use nnc_syntax::Span;
use nnc_syntax::ast::*;

/// Visits every expression of `file`, outermost first. `descend` decides
/// whether the children of an expression with that span are visited (a
/// position lookup skips subtrees that do not contain it).
pub fn exprs<'a>(file: &'a File, descend: &dyn Fn(Span) -> bool, visit: &mut dyn FnMut(&'a Expr)) {
    let mut w = Walker { descend, visit };
    for item in &file.items {
        if !descend(item.span()) {
            continue;
        }
        match item {
            Item::Use(_) => {}
            Item::Dim(d) => d.dims.iter().filter_map(|d| d.value.as_ref()).for_each(|e| w.expr(e)),
            Item::Model(m) => {
                w.params(&m.params);
                w.stmts(&m.body);
            }
            Item::Block(b) => {
                w.params(&b.params);
                if let Some(t) = &b.ret {
                    w.ty(t);
                }
                w.stmts(&b.body);
            }
            Item::Train(t) => {
                for it in &t.items {
                    match it {
                        TrainItem::Field { value, .. } => w.expr(value),
                        TrainItem::Let(l) => w.let_stmt(l),
                        TrainItem::Step(s) => {
                            if let Some(x) = &s.times {
                                w.expr(x);
                            }
                            w.expr(&s.loss);
                            w.expr(&s.optimizer);
                        }
                    }
                }
            }
        }
    }
}

struct Walker<'v, 'a> {
    descend: &'v dyn Fn(Span) -> bool,
    visit: &'v mut dyn FnMut(&'a Expr),
}

impl<'a> Walker<'_, 'a> {
    fn params(&mut self, params: &'a [Param]) {
        for p in params {
            if let Some(t) = &p.ty {
                self.ty(t);
            }
            if let Some(d) = &p.default {
                self.expr(d);
            }
        }
    }

    fn stmts(&mut self, stmts: &'a [Stmt]) {
        for s in stmts {
            if !(self.descend)(s.span()) {
                continue;
            }
            match s {
                Stmt::Input { ty, .. } => self.ty(ty),
                Stmt::Let(l) => self.let_stmt(l),
                Stmt::Output { ty, value, .. } => {
                    if let Some(t) = ty {
                        self.ty(t);
                    }
                    if let Some(v) = value {
                        self.expr(v);
                    }
                }
                Stmt::Return { value, .. } => self.expr(value),
                Stmt::If { cond, then_body, else_body, .. } => {
                    self.expr(cond);
                    self.stmts(then_body);
                    self.stmts(else_body);
                }
            }
        }
    }

    fn let_stmt(&mut self, l: &'a LetStmt) {
        if let Some(t) = &l.ty {
            self.ty(t);
        }
        self.expr(&l.value);
    }

    fn ty(&mut self, t: &'a TypeExpr) {
        match t {
            TypeExpr::Tensor { dims, .. } => dims.iter().for_each(|d| self.expr(d)),
            TypeExpr::Scalar(..) => {}
            TypeExpr::Tuple(ts, _) => ts.iter().for_each(|t| self.ty(t)),
        }
    }

    fn call(&mut self, c: &'a Call) {
        for a in &c.args {
            self.expr(&a.value);
        }
    }

    fn expr(&mut self, e: &'a Expr) {
        (self.visit)(e);
        if !(self.descend)(e.span) {
            return;
        }
        match &e.kind {
            ExprKind::Int(_)
            | ExprKind::Float(_)
            | ExprKind::Str(_)
            | ExprKind::Bool(_)
            | ExprKind::Error
            | ExprKind::Name(_) => {}
            ExprKind::Call(c) => self.call(c),
            ExprKind::Pipe { input, stage } => {
                self.expr(input);
                self.call(stage);
            }
            ExprKind::Binary { lhs, rhs, .. } | ExprKind::Compare { lhs, rhs, .. } => {
                self.expr(lhs);
                self.expr(rhs);
            }
            ExprKind::Range { start, end } => {
                self.expr(start);
                self.expr(end);
            }
            ExprKind::Neg(x) | ExprKind::Frozen(x) => self.expr(x),
            ExprKind::List(xs) | ExprKind::Tuple(xs) => xs.iter().for_each(|x| self.expr(x)),
            ExprKind::Map(entries) => {
                for (k, v) in entries {
                    self.expr(k);
                    self.expr(v);
                }
            }
            ExprKind::Index { base, indices } => {
                self.expr(base);
                for ix in indices {
                    match ix {
                        IndexItem::At(x) => self.expr(x),
                        IndexItem::Slice { start, end, .. } => {
                            if let Some(x) = start {
                                self.expr(x);
                            }
                            if let Some(x) = end {
                                self.expr(x);
                            }
                        }
                    }
                }
            }
            ExprKind::TensorType(t) => self.ty(t),
        }
    }
}

/// A call in the source: a plain call or a pipe stage (`x |> f(…)`).
#[derive(Clone, Copy)]
pub struct CallSite<'a> {
    pub call: &'a Call,
    pub piped: bool,
}

/// Calls and pipe stages whose span contains `offset`, innermost last.
pub fn calls_at(file: &File, offset: usize) -> Vec<CallSite<'_>> {
    let mut out: Vec<CallSite<'_>> = Vec::new();
    exprs(file, &|s: Span| s.contains(offset), &mut |e| match &e.kind {
        ExprKind::Call(c) if c.span.contains(offset) => out.push(CallSite { call: c, piped: false }),
        ExprKind::Pipe { stage, .. } if stage.span.contains(offset) => out.push(CallSite { call: stage, piped: true }),
        _ => {}
    });
    out.sort_by_key(|c| std::cmp::Reverse(c.call.span.len()));
    out
}

/// Every pipe stage of the file.
pub fn pipe_stages(file: &File, within: Span) -> Vec<&Call> {
    let mut out = Vec::new();
    exprs(file, &|s: Span| s.start <= within.end && within.start <= s.end, &mut |e| {
        if let ExprKind::Pipe { stage, .. } = &e.kind {
            out.push(stage);
        }
    });
    out
}
