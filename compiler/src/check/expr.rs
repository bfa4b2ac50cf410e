//! Evaluating expressions to values: names, arithmetic with broadcasting,
//! layer applications, block and model calls.

use std::collections::HashMap;
use std::rc::Rc;

use nnc_syntax::ast::{self, BinOp, Call, CmpOp, ElemType, Expr, ExprKind, IndexItem, TypeExpr};
use nnc_syntax::{Code, Diagnostic, Span};

use super::{Binding, BindingKind, BlockCall, Body, BodyKind, Checker, LayerRecord, empty_info};
use crate::dims::{Dim, DimError, DimResult, Equality};
use crate::graph::{IndexSpec, NodeKind, Operand, TRef};
use crate::layers::{self, Apply, Family, LayerDef, Operands, bind_args};
use crate::types::{LayerValue, Origin, TensorTy, Value};

const MAX_REPEAT_DEPTH: usize = 64;

/// Call arguments after evaluation: keyword (if any), value, where it was written.
type GivenArgs = Vec<(Option<String>, Value, Origin)>;

impl<'p> Checker<'p> {
    pub(crate) fn eval(&mut self, body: &mut Body, e: &'p Expr) -> Value {
        self.eval_in(body, e, false)
    }

    /// `option`: the expression is an option value, where an unknown bare
    /// word is a mode (`padding = same`) rather than an undefined name.
    pub(crate) fn eval_in(&mut self, body: &mut Body, e: &'p Expr, option: bool) -> Value {
        let origin = body.origin(e.span);
        match &e.kind {
            ExprKind::Int(v) => Value::Int(Dim::Known(*v)),
            ExprKind::Float(v) => Value::Float(*v),
            ExprKind::Str(s) => Value::Str(s.clone()),
            ExprKind::Bool(b) => Value::Bool(*b),
            ExprKind::Name(n) => self.eval_name(body, &n.name, origin, option),
            ExprKind::Call(c) => self.eval_call(body, c, None),
            ExprKind::Pipe { input, stage } => {
                let v = self.eval(body, input);
                let at = body.origin(input.span);
                let out = self.eval_call(body, stage, Some((v, at)));
                self.hint(body.origin(stage.span), &out, None);
                out
            }
            ExprKind::Binary { op, lhs, rhs } => {
                let l = self.eval(body, lhs);
                let r = self.eval(body, rhs);
                let (lo, ro) = (operand(&l), operand(&r));
                let out = self.binary(body, *op, l, body.origin(lhs.span), r, body.origin(rhs.span), origin);
                match (out, lo, ro) {
                    (v @ Value::Tensor(_), Some(lhs), Some(rhs)) => {
                        self.graph.add(NodeKind::Binary { op: *op, lhs, rhs }, v, origin)
                    }
                    (v, ..) => v,
                }
            }
            ExprKind::Compare { op, lhs, rhs } => {
                let l = self.eval(body, lhs);
                let r = self.eval(body, rhs);
                compare(*op, &l, &r)
            }
            ExprKind::Neg(x) => match self.eval(body, x) {
                Value::Int(d) => self.dim_result(d.neg(), origin).map_or(Value::Unknown, Value::Int),
                Value::Float(f) => Value::Float(-f),
                Value::Tensor(t) => match t.node {
                    Some(r) => {
                        let kind =
                            NodeKind::Binary { op: BinOp::Mul, lhs: Operand::Tensor(r), rhs: Operand::Scalar(-1.0) };
                        self.graph.add(kind, Value::Tensor(t), origin)
                    }
                    None => Value::Tensor(t),
                },
                _ => Value::Unknown,
            },
            ExprKind::Range { start, end } => match (self.eval(body, start), self.eval(body, end)) {
                (Value::Int(a), Value::Int(b)) => Value::Range(a, b),
                _ => Value::Unknown,
            },
            ExprKind::List(xs) => Value::List(xs.iter().map(|x| self.eval_in(body, x, option)).collect()),
            // Bare-word keys are labels (`{x: zscore}`), never looked up.
            ExprKind::Map(entries) => Value::Map(
                entries
                    .iter()
                    .map(|(k, v)| {
                        let key = match &k.kind {
                            ExprKind::Name(n) => Value::Mode(n.name.clone()),
                            _ => self.eval_in(body, k, true),
                        };
                        (key, self.eval_in(body, v, true))
                    })
                    .collect(),
            ),
            ExprKind::Tuple(xs) => Value::Tuple(xs.iter().map(|x| self.eval(body, x)).collect()),
            ExprKind::Index { base, indices } => {
                let b = self.eval(body, base);
                self.index(body, b, indices, origin)
            }
            ExprKind::Frozen(x) => {
                let was = body.frozen;
                body.frozen = true;
                let v = self.eval(body, x);
                body.frozen = was;
                v
            }
            ExprKind::TensorType(ty) => self.eval_type(body, ty),
            ExprKind::Error => Value::Unknown,
        }
    }

    fn eval_name(&mut self, body: &mut Body, name: &str, origin: Origin, option: bool) -> Value {
        if let Some(b) = body.scope.get(name) {
            b.used.set(true);
            return b.value.clone();
        }
        if let Some(d) = body.pattern_dims.get(name) {
            return Value::Int(d.clone());
        }
        if body.file_dims_visible
            && let Some(d) = self.dims.get(name)
        {
            return Value::Int(d.value.clone().unwrap_or_else(|| Dim::sym(name)));
        }
        if let Some(def) = layers::lookup(name) {
            return Value::Layer(LayerValue { layer: def, args: Rc::new(Vec::new()), origin });
        }
        if option {
            return Value::Mode(name.to_string());
        }
        self.undefined(body, name, origin);
        Value::Unknown
    }

    /// Evaluates a dim expression in a type or shape; `None` after an error.
    pub(crate) fn eval_dim(&mut self, body: &mut Body, e: &'p Expr) -> Option<Dim> {
        let origin = body.origin(e.span);
        match &e.kind {
            ExprKind::Int(v) => Some(Dim::Known(*v)),
            ExprKind::Name(n) => {
                if let Some(b) = body.scope.get(&n.name) {
                    b.used.set(true);
                    return match &b.value {
                        Value::Int(d) => Some(d.clone()),
                        Value::Unknown => None,
                        other => {
                            let msg = format!("`{}` is {}, not a dim", n.name, other.kind_name());
                            self.report(
                                Diagnostic::new(Code::WrongArgumentType, origin.file, origin.span, msg)
                                    .with_label("used as a dim here"),
                            );
                            None
                        }
                    };
                }
                if let Some(d) = body.pattern_dims.get(&n.name) {
                    return Some(d.clone());
                }
                if body.file_dims_visible
                    && let Some(d) = self.dims.get(&n.name)
                {
                    return Some(d.value.clone().unwrap_or_else(|| Dim::sym(&n.name)));
                }
                let mut candidates: Vec<&str> = body.pattern_dims.keys().map(String::as_str).collect();
                if body.file_dims_visible {
                    candidates.extend(self.dims.keys().map(String::as_str));
                }
                let suggestion = layers::suggest(&n.name, candidates);
                let mut d = Diagnostic::new(
                    Code::UndeclaredDim,
                    origin.file,
                    origin.span,
                    format!("undeclared dim `{}`", n.name),
                )
                .with_label("not declared");
                d = match suggestion {
                    Some(s) => d.with_help(format!("did you mean `{s}`?")),
                    None => d.with_help(format!("declare it at the top of the file: `dim {}`", n.name)),
                };
                self.report(d);
                None
            }
            ExprKind::Binary { op, lhs, rhs } => {
                let (a, b) = (self.eval_dim(body, lhs)?, self.eval_dim(body, rhs)?);
                self.dim_arith(*op, &a, &b, origin)
            }
            ExprKind::Neg(x) => {
                let d = self.eval_dim(body, x)?.neg();
                self.dim_result(d, origin)
            }
            ExprKind::Call(c) if c.callee.name == "ceil" && c.args.len() == 1 => {
                if let ExprKind::Binary { op: BinOp::Div, lhs, rhs } = &c.args[0].value.kind {
                    let (a, b) = (self.eval_dim(body, lhs)?, self.eval_dim(body, rhs)?);
                    return self.dim_result(a.ceil_div(&b), origin);
                }
                self.eval_dim(body, &c.args[0].value)
            }
            _ => match self.eval(body, e) {
                Value::Int(d) => Some(d),
                Value::Unknown => None,
                other => {
                    let msg = format!("expected a dim, found {}", other.kind_name());
                    self.report(
                        Diagnostic::new(Code::WrongArgumentType, origin.file, origin.span, msg).with_label("not a dim"),
                    );
                    None
                }
            },
        }
    }

    fn division_by_zero(&mut self, origin: Origin) {
        self.report(
            Diagnostic::new(Code::DivisionByZero, origin.file, origin.span, "division by zero in a dim expression")
                .with_label("the divisor is 0"),
        );
    }

    fn dim_arith(&mut self, op: BinOp, a: &Dim, b: &Dim, origin: Origin) -> Option<Dim> {
        let r = match op {
            BinOp::Add => a.add(b),
            BinOp::Sub => a.sub(b),
            BinOp::Mul => a.mul(b),
            BinOp::Div => a.floor_div(b),
        };
        self.dim_result(r, origin)
    }

    /// The value of dim arithmetic at `origin`, or its error reported there.
    pub(crate) fn dim_result(&mut self, r: DimResult, origin: Origin) -> Option<Dim> {
        match r {
            Ok(d) => Some(d),
            Err(DimError::DivisionByZero) => {
                self.division_by_zero(origin);
                None
            }
            Err(DimError::Overflow) => {
                self.report(
                    Diagnostic::new(Code::SizeOverflow, origin.file, origin.span, "dim arithmetic overflows 64 bits")
                        .with_label("the result does not fit in 64 bits")
                        .with_note("sizes are exact integers; they are never wrapped around"),
                );
                None
            }
        }
    }

    fn binary(&mut self, body: &Body, op: BinOp, l: Value, lo: Origin, r: Value, ro: Origin, origin: Origin) -> Value {
        match (l, r) {
            (Value::Unknown, _) | (_, Value::Unknown) => Value::Unknown,
            (Value::Int(a), Value::Int(b)) => self.dim_arith(op, &a, &b, origin).map_or(Value::Unknown, Value::Int),
            (a @ (Value::Int(_) | Value::Float(_)), b @ (Value::Int(_) | Value::Float(_))) => {
                match (a.as_f64(), b.as_f64()) {
                    (Some(x), Some(y)) => Value::Float(match op {
                        BinOp::Add => x + y,
                        BinOp::Sub => x - y,
                        BinOp::Mul => x * y,
                        BinOp::Div => x / y,
                    }),
                    _ => Value::Unknown,
                }
            }
            (Value::Tensor(t), Value::Int(_) | Value::Float(_))
            | (Value::Int(_) | Value::Float(_), Value::Tensor(t)) => {
                let mut t = t;
                if op == BinOp::Div {
                    t.elem = ElemType::Float;
                }
                Value::Tensor(t)
            }
            (Value::Tensor(a), Value::Tensor(b)) => self.broadcast(body, op, &a, lo, &b, ro, origin),
            // A vector literal broadcasts over the last axis (docs/src/decisions.md).
            (Value::Tensor(t), Value::List(xs)) | (Value::List(xs), Value::Tensor(t)) => {
                let v = TensorTy::float(vec![Dim::Known(xs.len() as i64)], origin);
                self.broadcast(body, op, &t, lo, &v, ro, origin)
            }
            (a, b) => {
                self.report(
                    Diagnostic::new(
                        Code::WrongArgumentType,
                        origin.file,
                        origin.span,
                        format!("cannot apply `{}` to {} and {}", op.symbol(), a.kind_name(), b.kind_name()),
                    )
                    .with_label("unsupported operands"),
                );
                Value::Unknown
            }
        }
    }

    fn broadcast(
        &mut self,
        body: &Body,
        op: BinOp,
        a: &TensorTy,
        lo: Origin,
        b: &TensorTy,
        ro: Origin,
        origin: Origin,
    ) -> Value {
        let rank = a.rank().max(b.rank());
        let mut dims = Vec::with_capacity(rank);
        let mut origins = Vec::with_capacity(rank);
        for i in 0..rank {
            let ai = (i + a.rank()).checked_sub(rank);
            let bi = (i + b.rank()).checked_sub(rank);
            let (da, db) = (ai.map(|k| &a.dims[k]), bi.map(|k| &b.dims[k]));
            let pick = match (da, db) {
                (Some(x), None) => (x.clone(), a.origin_of(ai.unwrap_or(0))),
                (None, Some(y)) => (y.clone(), b.origin_of(bi.unwrap_or(0))),
                (Some(x), Some(y)) => {
                    let eq = x.compare(y);
                    if eq == Equality::Equal || y.as_known() == Some(1) {
                        (x.clone(), a.origin_of(ai.unwrap_or(0)))
                    } else if x.as_known() == Some(1) || (eq == Equality::Unknown && body.generic) {
                        (y.clone(), b.origin_of(bi.unwrap_or(0)))
                    } else {
                        let how = if eq == Equality::Different { "differ" } else { "cannot be shown equal" };
                        let (ao, bo) = (a.origin_of(ai.unwrap_or(0)), b.origin_of(bi.unwrap_or(0)));
                        let code = if eq == Equality::Different { Code::BroadcastMismatch } else { Code::DimMismatch };
                        let mut d = Diagnostic::new(
                            code,
                            origin.file,
                            origin.span,
                            format!("cannot broadcast {a} {} {b}: axis {i} sizes {x} and {y} {how}", op.symbol()),
                        )
                        .with_label(format!("{a} {} {b}", op.symbol()))
                        .with_secondary(lo.file, lo.span, format!("this is {a}"))
                        .with_secondary(ro.file, ro.span, format!("this is {b}"));
                        if ao != lo && ao.span != origin.span {
                            d = d.with_secondary(ao.file, ao.span, format!("{x} comes from here"));
                        }
                        if bo != ro && bo.span != origin.span {
                            d = d.with_secondary(bo.file, bo.span, format!("{y} comes from here"));
                        }
                        d = d.with_note("NumPy broadcasting: axes align from the right; each pair must be equal or 1");
                        self.report(d);
                        return Value::Unknown;
                    }
                }
                (None, None) => unreachable!("i < rank"),
            };
            dims.push(pick.0);
            origins.push(pick.1);
        }
        let elem = if a.elem == ElemType::Int && b.elem == ElemType::Int && op != BinOp::Div {
            ElemType::Int
        } else {
            ElemType::Float
        };
        Value::Tensor(TensorTy { elem, dims, origins, node: None })
    }

    // long: one pass over the index items (integers, ranges, `...`, new axes) building the result's axes; kept
    // whole while other work edits this file.
    fn index(&mut self, body: &mut Body, base: Value, indices: &'p [IndexItem], origin: Origin) -> Value {
        let t = match base {
            Value::Tensor(t) => t,
            Value::Unknown => return Value::Unknown,
            Value::Tuple(parts) | Value::List(parts) => {
                if let [IndexItem::At(e)] = indices
                    && let Value::Int(Dim::Known(i)) = self.eval(body, e)
                {
                    let n = parts.len() as i64;
                    let i = if i < 0 { i + n } else { i };
                    if (0..n).contains(&i) {
                        return parts[i as usize].clone();
                    }
                }
                self.report(
                    Diagnostic::new(Code::AxisOutOfRange, origin.file, origin.span, "index out of range")
                        .with_label("no such element"),
                );
                return Value::Unknown;
            }
            other => {
                self.report(
                    Diagnostic::new(
                        Code::NotATensor,
                        origin.file,
                        origin.span,
                        format!("cannot index {}", other.kind_name()),
                    )
                    .with_label("not a tensor"),
                );
                return Value::Unknown;
            }
        };
        if indices.len() > t.rank() {
            self.report(
                Diagnostic::new(
                    Code::AxisOutOfRange,
                    origin.file,
                    origin.span,
                    format!("{} indices for a tensor of rank {} {t}", indices.len(), t.rank()),
                )
                .with_label("too many indices"),
            );
            return Value::Unknown;
        }
        let mut dims = Vec::new();
        let mut origins = Vec::new();
        let mut specs = Vec::new();
        for (axis, d) in t.dims.iter().enumerate() {
            match indices.get(axis) {
                None => {
                    dims.push(d.clone());
                    origins.push(t.origin_of(axis));
                    specs.push(IndexSpec::Full);
                }
                Some(IndexItem::At(e)) => {
                    let at = self.eval(body, e);
                    if let Value::Int(Dim::Known(i)) = at {
                        let n = d.as_known();
                        specs.push(IndexSpec::At(if i < 0 { n.map_or(i, |n| n + i) } else { i }));
                        if let Some(n) = d.as_known()
                            && (i >= n || i < -n)
                        {
                            self.report(
                                Diagnostic::new(
                                    Code::AxisOutOfRange,
                                    origin.file,
                                    body.origin(e.span).span,
                                    format!("index {i} out of range for axis {axis} of size {n}"),
                                )
                                .with_label("out of range"),
                            );
                            return Value::Unknown;
                        }
                    } else if !at.is_unknown() {
                        self.report(
                            Diagnostic::new(
                                Code::NotCompileTime,
                                origin.file,
                                body.origin(e.span).span,
                                "an index must be a known integer",
                            )
                            .with_label(format!("this is {}", at.kind_name())),
                        );
                        return Value::Unknown;
                    } else {
                        return Value::Unknown;
                    }
                }
                Some(IndexItem::Slice { start, end, .. }) => {
                    let norm = |c: &mut Self, b: &mut Body, x: &'p Option<Expr>, default: Dim| -> Option<Dim> {
                        match x {
                            None => Some(default),
                            Some(e) => match c.eval(b, e) {
                                Value::Int(v) if v.as_known().is_some_and(|k| k < 0) => c.dim_result(d.add(&v), origin),
                                Value::Int(v) => Some(v),
                                _ => None,
                            },
                        }
                    };
                    let s = norm(self, body, start, Dim::Known(0));
                    let e = norm(self, body, end, d.clone());
                    match (s, e) {
                        (Some(s), Some(e)) => {
                            specs.push(match (s.as_known(), e.as_known()) {
                                (Some(a), Some(b)) => IndexSpec::Slice(a, b),
                                _ => IndexSpec::Full,
                            });
                            match self.dim_result(e.sub(&s), origin) {
                                Some(d) => dims.push(d),
                                None => return Value::Unknown,
                            }
                        }
                        _ => return Value::Unknown,
                    }
                    origins.push(origin);
                }
            }
        }
        let out = Value::Tensor(TensorTy { elem: t.elem, dims, origins, node: None });
        match t.node {
            Some(base) => self.graph.add(NodeKind::Index { base, items: specs }, out, origin),
            None => out,
        }
    }

    /// A call: layer, block, model or tensor function. `piped` is the
    /// left-hand side of `|>`, passed as the first argument.
    pub(crate) fn eval_call(&mut self, body: &mut Body, call: &'p Call, piped: Option<(Value, Origin)>) -> Value {
        let name = call.callee.name.as_str();
        let origin = body.origin(call.span);
        let callable = self.block_decls.contains_key(name)
            || self.model_decls.contains_key(name)
            || layers::lookup(name).is_some()
            || (body.kind == BodyKind::Train && crate::schema::lookup_fn(name).is_some());
        // A binding shadows a layer only for plain names: `dropout(rate)` still
        // calls the layer inside a block whose parameter is called `dropout`.
        if let Some(b) = body.scope.get(name).filter(|_| !callable) {
            b.used.set(true);
            let kind = b.value.kind_name();
            self.report(
                Diagnostic::new(
                    Code::UnknownLayer,
                    origin.file,
                    call.callee.span,
                    format!("`{name}` is {kind}, not a layer"),
                )
                .with_label("cannot be called"),
            );
            return Value::Unknown;
        }
        if let Some(&(block, file)) = self.block_decls.get(name) {
            return self.call_block(body, block, file, call, piped);
        }
        if let Some(&(model, file)) = self.model_decls.get(name) {
            return self.call_model(body, model, file, call, piped);
        }
        if name == "repeat"
            && let Some(repeated) = self.repeated_block(body, call)
        {
            return self.repeat_block(body, call, piped, repeated);
        }
        if let Some(def) = layers::lookup(name) {
            return self.apply_layer(body, def, call, piped);
        }
        if body.kind == BodyKind::Train
            && let Some(v) = self.train_function(body, call, piped.clone())
        {
            return v;
        }
        let mut candidates: Vec<&str> = layers::LAYERS.iter().map(|l| l.name).collect();
        candidates.extend(self.block_decls.keys().map(String::as_str));
        candidates.extend(self.model_decls.keys().map(String::as_str));
        if body.kind == BodyKind::Train {
            candidates.extend(crate::schema::TRAIN_FUNCTIONS.iter().map(|f| f.name));
        }
        let code = if body.kind == BodyKind::Train { Code::UnknownFunction } else { Code::UnknownLayer };
        let mut d = Diagnostic::new(code, origin.file, call.callee.span, format!("unknown layer or function `{name}`"))
            .with_label("not a layer, block, model or function");
        if let Some(help) = crate::aliases::help(name, candidates) {
            d = d.with_help(help);
        }
        self.report(d);
        // Evaluate the arguments anyway: errors inside them are independent.
        for a in &call.args {
            self.eval_in(body, &a.value, a.name.is_some());
        }
        Value::Unknown
    }

    /// Evaluates call arguments: `(name, value, origin)` in order.
    /// `layer`: the layer called, whose initialiser options (kind `Init`) are read as initialisers.
    fn eval_args(
        &mut self,
        body: &mut Body,
        call: &'p Call,
        layer: Option<&LayerDef>,
    ) -> Vec<(Option<String>, Value, Origin, &'p Expr)> {
        call.args
            .iter()
            .map(|a| {
                let key = a.name.as_ref().map(|n| n.name.clone());
                let is_init = |k: &str| layer.and_then(|l| l.arg(k)).is_some_and(|d| d.kind == layers::ArgKind::Init);
                let v = match key.as_deref() {
                    Some(k) if is_init(k) => self.eval_init(body, k, &a.value),
                    Some(_) => self.eval_in(body, &a.value, true),
                    None => self.eval(body, &a.value),
                };
                (key, v, body.origin(a.span()), &a.value)
            })
            .collect()
    }

    // long: binding, rule, error reporting and graph recording of one layer application in order; kept whole
    // while other work edits this file.
    pub(crate) fn apply_layer(
        &mut self,
        body: &mut Body,
        def: &'static LayerDef,
        call: &'p Call,
        piped: Option<(Value, Origin)>,
    ) -> Value {
        let origin = body.origin(call.span);
        let mut args = self.eval_args(body, call, Some(def));
        // `name = "conv1"` names the parameters; it is not a layer option.
        let mut explicit_name = None;
        if let Some(i) = args.iter().position(|(k, ..)| k.as_deref() == Some("name")) {
            let (_, v, o, _) = args.remove(i);
            match v {
                Value::Str(s) => explicit_name = Some(s),
                other => self.report(
                    Diagnostic::new(
                        Code::WrongArgumentType,
                        o.file,
                        o.span,
                        format!("`name` must be a string, found {}", other.kind_name()),
                    )
                    .with_label("expected a string such as \"conv1\""),
                ),
            }
        }
        // Split off tensor operands.
        let mut operands: Vec<(Value, Origin)> = Vec::new();
        let has_pipe = piped.is_some();
        if let Some(p) = piped {
            operands.push(p);
        }
        // A tuple in tensor position is an operand (reported as "expected a tensor").
        let is_tensorish = |v: &Value| matches!(v, Value::Tensor(_) | Value::Unknown | Value::Tuple(_));
        match def.operands {
            Operands::None => {}
            Operands::One => {
                if operands.is_empty() {
                    match args.iter().position(|(k, ..)| k.is_none()) {
                        Some(i) if is_tensorish(&args[i].1) => {
                            let (_, v, o, _) = args.remove(i);
                            operands.push((v, o));
                        }
                        _ => return self.layer_value(body, def, args, origin),
                    }
                }
            }
            Operands::Variadic => {
                while let Some(i) = args.iter().position(|(k, ..)| k.is_none()) {
                    if !is_tensorish(&args[i].1) {
                        break;
                    }
                    let (_, v, o, _) = args.remove(i);
                    operands.push((v, o));
                }
                if operands.is_empty() {
                    return self.layer_value(body, def, args, origin);
                }
            }
        }
        let _ = has_pipe;
        let raw: Vec<(Option<String>, Value, Origin)> =
            args.iter().map(|(k, v, o, _)| (k.clone(), v.clone(), *o)).collect();
        let bound = match bind_args(def, &raw) {
            Ok(b) => b,
            Err(issues) => {
                for issue in issues {
                    let d = self.arg_issue(def, issue, origin);
                    self.report(d);
                }
                return Value::Unknown;
            }
        };
        let mut tensors = Vec::new();
        for (i, (v, o)) in operands.iter().enumerate() {
            match v {
                Value::Tensor(t) => tensors.push(t.clone()),
                Value::Unknown => {
                    // `reshape` to a fully known shape has that shape whatever it was given.
                    if let (true, layers::ArgVal::Shape(dims)) = (def.name == "reshape", bound.get("shape"))
                        && dims.iter().all(|d| d.as_known() != Some(-1))
                    {
                        return Value::Tensor(TensorTy::float(dims.clone(), origin));
                    }
                    return Value::Unknown;
                }
                other => {
                    self.report(
                        Diagnostic::new(
                            Code::NotATensor,
                            o.file,
                            o.span,
                            format!(
                                "`{}` expects a tensor as operand {}, found {}",
                                def.name,
                                i + 1,
                                other.kind_name()
                            ),
                        )
                        .with_label(format!("this is {other}"))
                        .with_note(if matches!(other, Value::Tuple(_)) {
                            "destructure tuples first: `let (o, h) = …`"
                        } else {
                            "layers take tensors; numbers go in options"
                        }),
                    );
                    return Value::Unknown;
                }
            }
        }
        if bound.any_unknown() {
            return Value::Unknown;
        }
        if !body.generic {
            for ad in def.args {
                if !matches!(ad.kind, layers::ArgKind::Int { .. } | layers::ArgKind::IntOrPair { .. }) {
                    continue;
                }
                let data_bound = |d: &Dim| d.symbols().iter().all(|s| self.data_bound_dims.contains(&**s));
                let symbolic = match bound.get(ad.name) {
                    layers::ArgVal::Int(d) if data_bound(d) => None,
                    layers::ArgVal::Int(d) => d.as_known().is_none().then(|| d.to_string()),
                    layers::ArgVal::Pair(a, b) => {
                        (a.as_known().is_none() || b.as_known().is_none()).then(|| format!("[{a}, {b}]"))
                    }
                    _ => None,
                };
                if let Some(v) = symbolic {
                    let at = bound.origin(ad.name).unwrap_or(origin);
                    self.report(
                        Diagnostic::new(
                            Code::NotCompileTime,
                            at.file,
                            at.span,
                            format!(
                                "`{}` of `{}` must be known when the model is checked, found {v}",
                                ad.name, def.name
                            ),
                        )
                        .with_label("symbolic size")
                        .with_help("give the dim a value (`dim M = 64`) or use a model parameter"),
                    );
                    return Value::Unknown;
                }
            }
        }
        if !self.spend(origin) {
            return Value::Unknown;
        }
        let mut apply = Apply { inputs: tensors, args: &bound, origin, params: Vec::new(), notes: Vec::new() };
        let result = layers::run_rule(def, &mut apply);
        let out = match result {
            Ok(v) => v,
            Err(e) => {
                let d = self.layer_error(def, e, &apply, &operands, origin);
                self.report(d);
                return Value::Unknown;
            }
        };
        let helps: Vec<String> = apply.notes.iter().filter(|n| n.starts_with("help: ")).cloned().collect();
        if !helps.is_empty() {
            self.deferred_help.insert(origin, helps);
        }
        let frozen = body.frozen;
        let name = if def.family == Family::Layer {
            explicit_name.unwrap_or_else(|| self.auto_name(body, def.name))
        } else {
            def.name.to_string()
        };
        let params: Vec<layers::ParamSpec> = apply
            .params
            .into_iter()
            .map(|mut p| {
                p.trainable &= !frozen;
                p.name = format!("{name}.{}", p.name);
                p
            })
            .collect();
        let inputs: Vec<TRef> = operands.iter().filter_map(|(v, _)| v.as_tensor().and_then(|t| t.node)).collect();
        let kind = NodeKind::Layer {
            def,
            args: Rc::new(bound.clone()),
            inputs,
            params: params.clone(),
            name: name.clone(),
            frozen,
        };
        let out = self.graph.add(kind, out, origin);
        if def.family == Family::Layer {
            let params = params
                .into_iter()
                .map(|mut p| {
                    p.name = p.name[name.len() + 1..].to_string();
                    p
                })
                .collect();
            body.layers.push(LayerRecord {
                name,
                layer: def.name,
                output: out.clone(),
                params,
                origin,
                blocks: Vec::new(),
            });
        }
        out
    }

    /// Keras-style automatic names: `dense`, `dense_1`, … per binding.
    fn auto_name(&self, body: &mut Body, layer: &str) -> String {
        let base = if body.kind == BodyKind::Block { body.prefix.clone() } else { join(&body.prefix, &body.binding) };
        let key = format!("{base}\u{0}{layer}");
        let n = body.counters.entry(key).or_insert(0);
        let local = if *n == 0 { layer.to_string() } else { format!("{layer}_{n}") };
        *n += 1;
        join(&base, &local)
    }

    fn layer_value(
        &mut self,
        body: &mut Body,
        def: &'static LayerDef,
        args: Vec<(Option<String>, Value, Origin, &'p Expr)>,
        origin: Origin,
    ) -> Value {
        let raw: Vec<(Option<String>, Value, Origin)> = args.into_iter().map(|(k, v, o, _)| (k, v, o)).collect();
        if let Err(issues) = bind_args(def, &raw) {
            for issue in issues {
                let d = self.arg_issue(def, issue, origin);
                self.report(d);
            }
            return Value::Unknown;
        }
        let _ = body;
        Value::Layer(LayerValue { layer: def, args: Rc::new(raw), origin })
    }

    /// Binds a block's parameters at a call site and checks its body.
    fn call_block(
        &mut self,
        body: &mut Body,
        b: &'p ast::BlockDecl,
        file: nnc_syntax::FileId,
        call: &'p Call,
        piped: Option<(Value, Origin)>,
    ) -> Value {
        let origin = body.origin(call.span);
        self.called_blocks.insert(b.name.name.clone());
        if self.recursive(b, file, origin, call.callee.span) {
            return Value::Unknown;
        }
        let (args, prefix_name) = self.block_args(body, call);
        let mut given: Vec<(Option<String>, Value, Origin)> = Vec::new();
        if let Some((v, o)) = piped {
            given.push((None, v, o));
        }
        given.extend(args);
        self.instantiate_block(body, b, file, &given, origin, prefix_name)
    }

    /// Reports a call of `b` made while `b` is being checked (or too deep a nesting).
    fn recursive(&mut self, b: &'p ast::BlockDecl, file: nnc_syntax::FileId, at: Origin, callee: Span) -> bool {
        if !self.active.contains(&b.name.name) && self.active.len() <= MAX_REPEAT_DEPTH {
            return false;
        }
        self.report(
            Diagnostic::new(Code::RecursiveCall, at.file, callee, format!("block `{}` calls itself", b.name.name))
                .with_label("recursive call")
                .with_secondary(file, b.name.span, "block defined here"),
        );
        true
    }

    /// A block call's arguments, evaluated, without `name = "…"`, which is returned apart.
    fn block_args(&mut self, body: &mut Body, call: &'p Call) -> (GivenArgs, Option<String>) {
        let mut args = self.eval_args(body, call, None);
        let mut prefix_name = None;
        if let Some(i) = args.iter().position(|(k, ..)| k.as_deref() == Some("name"))
            && let (_, Value::Str(s), ..) = args.remove(i)
        {
            prefix_name = Some(s);
        }
        (args.into_iter().map(|(k, v, o, _)| (k, v, o)).collect(), prefix_name)
    }

    /// The argument of a `repeat(…)` call that names a block (`bottleneck(64)` or a bare
    /// `identity_block`), with the block: such a repeat is unrolled by the checker
    /// (`repeat_block`), since a block is not a layer value the layer table could apply.
    fn repeated_block(&self, body: &Body, call: &'p Call) -> Option<(usize, &'p ast::BlockDecl, nnc_syntax::FileId)> {
        call.args.iter().enumerate().find_map(|(i, a)| {
            let name = match &a.value.kind {
                ExprKind::Call(c) => &c.callee.name,
                ExprKind::Name(n) if !body.scope.contains_key(&n.name) => &n.name,
                _ => return None,
            };
            self.block_decls.get(name).map(|&(b, file)| (i, b, file))
        })
    }

    /// `repeat(x, n, b(args))` of a block `b`: n calls of `b` in a chain, each on the
    /// previous one's output, each with its own parameters, as if written out. The block's
    /// arguments are evaluated once; its pattern dims are bound afresh at every copy, so a
    /// block whose output width differs from its input's (a dense block's concatenation)
    /// repeats too. Copies are numbered like consecutive calls (`h.b`, `h.b_1`, …), or
    /// `p.0`, `p.1`, … under `name = "p"` (on the repeat or on the block call).
    // long: argument checks, the unrolled chain and the naming share the call's state; split when it grows.
    fn repeat_block(
        &mut self,
        body: &mut Body,
        call: &'p Call,
        piped: Option<(Value, Origin)>,
        (at, b, file): (usize, &'p ast::BlockDecl, nnc_syntax::FileId),
    ) -> Value {
        let origin = body.origin(call.span);
        let def = layers::lookup("repeat").expect("`repeat` is in the layer table");
        self.called_blocks.insert(b.name.name.clone());
        let block_expr = &call.args[at].value;
        let callee = match &block_expr.kind {
            ExprKind::Call(c) => c.callee.span,
            _ => block_expr.span,
        };
        if self.recursive(b, file, origin, callee) {
            return Value::Unknown;
        }
        let (block_args, inner_name) = match &block_expr.kind {
            ExprKind::Call(c) => self.block_args(body, c),
            _ => (Vec::new(), None),
        };
        // `repeat`'s own arguments bind through the layer table (its checks and messages),
        // with a placeholder layer value standing for the block.
        let placeholder = Value::Layer(LayerValue {
            layer: layers::lookup("relu").expect("`relu` is in the layer table"),
            args: Rc::new(Vec::new()),
            origin: body.origin(block_expr.span),
        });
        let mut raw: Vec<(Option<String>, Value, Origin)> = Vec::new();
        for (i, a) in call.args.iter().enumerate() {
            let key = a.name.as_ref().map(|n| n.name.clone());
            let v = if i == at {
                placeholder.clone()
            } else if key.is_some() {
                self.eval_in(body, &a.value, true)
            } else {
                self.eval(body, &a.value)
            };
            raw.push((key, v, body.origin(a.span())));
        }
        let mut name = None;
        if let Some(i) = raw.iter().position(|(k, ..)| k.as_deref() == Some("name")) {
            match raw.remove(i) {
                (_, Value::Str(s), _) => name = Some(s),
                (_, other, o) => self.report(
                    Diagnostic::new(
                        Code::WrongArgumentType,
                        o.file,
                        o.span,
                        format!("`name` must be a string, found {}", other.kind_name()),
                    )
                    .with_label("expected a string such as \"stage1\""),
                ),
            }
        }
        let name = name.or(inner_name);
        let input = match piped {
            Some(p) => Some(p),
            None => raw.iter().position(|(k, ..)| k.is_none()).map(|i| {
                let (_, v, o) = raw.remove(i);
                (v, o)
            }),
        };
        let bound = match bind_args(def, &raw) {
            Ok(bound) => bound,
            Err(issues) => {
                for issue in issues {
                    let d = self.arg_issue(def, issue, origin);
                    self.report(d);
                }
                return Value::Unknown;
            }
        };
        let Some((mut cur, input_at)) = input else {
            let msg = "`repeat` of a block needs the tensor to start from: `x |> repeat(n, block(…))`";
            self.report(
                Diagnostic::new(Code::MissingArgument, origin.file, origin.span, msg).with_label("no input tensor"),
            );
            return Value::Unknown;
        };
        let n_at = bound.origin("n").unwrap_or(origin);
        let n = match bound.int("n") {
            Some(Dim::Known(n)) => n,
            Some(d) if body.generic => {
                // A generic check cannot unroll a symbolic count: check one copy.
                let _ = d;
                let mut given = vec![(None, cur, input_at)];
                given.extend(block_args);
                let _ = self.instantiate_block(body, b, file, &given, origin, name);
                return Value::Unknown;
            }
            Some(d) => {
                self.report(
                    Diagnostic::new(
                        Code::NotCompileTime,
                        n_at.file,
                        n_at.span,
                        format!("`n` of `repeat` must be known when the model is checked, found {d}"),
                    )
                    .with_label("symbolic count")
                    .with_help("give the dim a value (`dim M = 64`) or use a model parameter"),
                );
                return Value::Unknown;
            }
            None => return Value::Unknown,
        };
        if n > layers::MAX_REPEAT {
            let message = format!("{n} copies; at most {} are supported", layers::MAX_REPEAT);
            let d =
                Diagnostic::new(Code::OptionOutOfRange, n_at.file, n_at.span, format!("`n` of `repeat`: {message}"))
                    .with_label("too many copies");
            self.report(d);
            return Value::Unknown;
        }
        for i in 0..n {
            if !matches!(cur, Value::Tensor(_)) {
                break;
            }
            let mut given = vec![(None, cur, input_at)];
            given.extend(block_args.iter().cloned());
            let prefix = name.as_ref().map(|p| format!("{p}.{i}"));
            cur = self.instantiate_block(body, b, file, &given, origin, prefix);
            if !matches!(cur, Value::Tensor(_) | Value::Unknown) {
                self.report(
                    Diagnostic::new(
                        Code::NotATensor,
                        origin.file,
                        block_expr.span,
                        format!(
                            "`repeat` chains one tensor through `{}`, which returns {}",
                            b.name.name,
                            cur.kind_name()
                        ),
                    )
                    .with_label("the block's output feeds its next copy")
                    .with_secondary(file, b.name.span, "block defined here"),
                );
                return Value::Unknown;
            }
        }
        match cur {
            Value::Tensor(t) => Value::Tensor(t.at(origin)),
            _ => Value::Unknown,
        }
    }

    /// Checks one instantiation of `b` with `given` arguments (the piped tensor first),
    /// its layers named under `prefix_name` or numbered within the caller's binding.
    fn instantiate_block(
        &mut self,
        body: &mut Body,
        b: &'p ast::BlockDecl,
        file: nnc_syntax::FileId,
        given: &[(Option<String>, Value, Origin)],
        origin: Origin,
        prefix_name: Option<String>,
    ) -> Value {
        if !self.spend(origin) {
            return Value::Unknown;
        }
        let Some(bound) = self.bind_params(&b.params, file, given, origin, &format!("block `{}`", b.name.name)) else {
            return Value::Unknown;
        };

        let mut inner = Body::new(file, BodyKind::Block);
        inner.frozen = body.frozen;
        // A call from a generic check (a block nobody calls) passes on symbolic
        // sizes: the callee is as generic as its caller, or its `kernel = k`
        // would be a false E0207.
        inner.generic = body.generic;
        // `name = "…"` sets the prefix; otherwise the block is numbered like a
        // layer within the binding (`y.residual`, `y.residual_1`), so two
        // calls never share parameter names.
        inner.prefix = match prefix_name {
            Some(p) => p,
            None => self.auto_name(body, &b.name.name),
        };
        // Scalars first, so types may mention integer parameters (`[N, filters]`).
        for (p, (v, _)) in b.params.iter().zip(&bound) {
            if matches!(p.ty, Some(TypeExpr::Tensor { .. })) {
                continue;
            }
            if let Value::Int(d) = v {
                inner.pattern_dims.insert(p.name.name.clone(), d.clone());
            }
            inner.bind(&p.name.name, v.clone(), inner.origin(p.name.span), BindingKind::Param);
        }
        // Then unify tensor parameters, binding pattern dims.
        let mut ok = true;
        for (p, (v, at)) in b.params.iter().zip(&bound) {
            let Some(ty @ TypeExpr::Tensor { .. }) = &p.ty else { continue };
            match v {
                Value::Tensor(t) => {
                    if !self.unify(&mut inner, ty, t, *at, &b.name.name, &p.name.name) {
                        ok = false;
                    }
                }
                Value::Unknown => ok = false,
                other => {
                    self.report(
                        Diagnostic::new(
                            Code::NotATensor,
                            at.file,
                            at.span,
                            format!(
                                "parameter `{}` of `{}` is a tensor, found {}",
                                p.name.name,
                                b.name.name,
                                other.kind_name()
                            ),
                        )
                        .with_label(format!("this is {other}"))
                        .with_secondary(file, p.span, "declared here"),
                    );
                    ok = false;
                }
            }
            inner.bind(&p.name.name, v.clone(), inner.origin(p.name.span), BindingKind::Param);
        }
        if !ok {
            return Value::Unknown;
        }
        self.active.push(b.name.name.clone());
        let was = self.record_hints;
        self.record_hints = false;
        let mut info = empty_info(b.name.name.clone(), file, b.span);
        let reported_before = (self.diags.len(), self.facts.len());
        self.check_stmts(&mut inner, &b.body, &mut info, None);
        let v = self.finish_block(&mut inner, b);
        self.name_call_site(reported_before, origin, &b.name.name);
        self.record_hints = was;
        self.active.pop();
        let frozen = body.frozen;
        for mut l in inner.layers {
            let output = match &v {
                Value::Tensor(t) => Value::Tensor(t.clone().at(origin)),
                other => other.clone(),
            };
            l.blocks.insert(0, BlockCall { prefix: inner.prefix.clone(), block: b.name.name.clone(), output });
            if frozen {
                for p in &mut l.params {
                    p.trainable = false;
                }
            }
            body.layers.push(l);
        }
        match v {
            Value::Tensor(t) => Value::Tensor(t.at(origin)),
            other => other,
        }
    }

    /// Diagnostics from `first` on arose checking one call of a block (its body or its
    /// declared return type with this call's dims): they point into the block, so each also
    /// names the call — the line the user has to look at. Nested calls add one label each.
    /// Facts for the lints from `first.1` on get the same labels, for their warnings.
    fn name_call_site(&mut self, first: (usize, usize), call: Origin, block: &str) {
        let label =
            || nnc_syntax::Label { file: call.file, span: call.span, message: format!("in this call of `{block}`") };
        let inside_call =
            |at: Origin| at.file == call.file && call.span.start <= at.span.start && at.span.end <= call.span.end;
        for d in self.diags.iter_mut().skip(first.0) {
            if !inside_call(Origin { file: d.primary.file, span: d.primary.span }) {
                d.secondary.push(label());
            }
        }
        for f in self.facts.iter_mut().skip(first.1) {
            if !inside_call(f.at) {
                f.calls.push(label());
            }
        }
    }

    /// Matches an argument tensor against a block parameter type, binding
    /// pattern dims. Reports E0308 and returns false on failure.
    // long: dims, element type and rank are unified against one pattern with one set of bindings; kept whole
    // while other work edits this file.
    fn unify(
        &mut self,
        inner: &mut Body,
        ty: &'p TypeExpr,
        got: &TensorTy,
        at: Origin,
        block: &str,
        param: &str,
    ) -> bool {
        let TypeExpr::Tensor { elem, dims, span } = ty else { return true };
        let ty_origin = inner.origin(*span);
        let fail = |c: &mut Self, msg: String, note: Option<String>| {
            let mut d = Diagnostic::new(Code::BlockUnification, at.file, at.span, msg)
                .with_label(format!("this is {got}"))
                .with_secondary(
                    ty_origin.file,
                    ty_origin.span,
                    format!("parameter `{param}` of `{block}` is declared here"),
                );
            if let Some(n) = note {
                d = d.with_note(n);
            }
            c.report(d);
            false
        };
        if dims.len() != got.rank() {
            let want: Vec<String> = dims.iter().map(|d| self.source(inner.origin(d.span)).to_string()).collect();
            return fail(
                self,
                format!(
                    "`{block}` expects `{param}` of rank {} [{}], found rank {} {got}",
                    dims.len(),
                    want.join(", "),
                    got.rank()
                ),
                None,
            );
        }
        if *elem != got.elem {
            return fail(
                self,
                format!("`{block}` expects `{param}` as {} tensor, found {got}", super::elem_name(*elem)),
                None,
            );
        }
        // Two passes: first bind lone names, then solve/compare expressions.
        let mut bound_by: HashMap<String, (Dim, usize)> = HashMap::new();
        for pass in 0..2 {
            for (axis, de) in dims.iter().enumerate() {
                let actual = &got.dims[axis];
                if let ExprKind::Name(n) = &de.kind {
                    let fixed = inner.scope.get(&n.name).map(|b: &Binding| b.value.clone());
                    if let Some(Value::Int(d)) = fixed {
                        if pass == 1 && !self.dims_agree(inner, &d, actual) {
                            return fail(
                                self,
                                format!(
                                    "`{block}` expects `{param}` axis {axis} to be {} = {d}, found {actual}",
                                    n.name
                                ),
                                None,
                            );
                        }
                        continue;
                    }
                    if pass == 0 {
                        match bound_by.get(&n.name) {
                            Some((prev, prev_axis)) => {
                                if !self.dims_agree(inner, prev, actual) {
                                    return fail(
                                        self,
                                        format!(
                                            "`{block}` needs `{}` to be both {prev} (axis {prev_axis}) and {actual} \
                                                (axis {axis})",
                                            n.name
                                        ),
                                        Some(format!(
                                            "`{}` is one pattern dim: every axis it names must have the same size",
                                            n.name
                                        )),
                                    );
                                }
                            }
                            None => {
                                // Pattern dims from earlier parameters must agree too.
                                if let Some(prev) = inner.pattern_dims.get(&n.name).cloned() {
                                    if !self.dims_agree(inner, &prev, actual) {
                                        return fail(
                                            self,
                                            format!(
                                                "`{block}` needs `{}` = {prev} (from an earlier argument), found \
                                                    {actual} on axis {axis} of `{param}`",
                                                n.name
                                            ),
                                            Some(format!(
                                                "`{}` is one pattern dim shared by the block's parameters",
                                                n.name
                                            )),
                                        );
                                    }
                                } else {
                                    inner.pattern_dims.insert(n.name.clone(), actual.clone());
                                }
                                bound_by.insert(n.name.clone(), (actual.clone(), axis));
                            }
                        }
                    }
                    continue;
                }
                if pass == 0 {
                    continue;
                }
                // An expression such as `2*M` or `H / 2`: solve if linear in one unbound name.
                let mut names = Vec::new();
                super::collect_names(de, &mut names);
                let unbound: Vec<String> = names
                    .into_iter()
                    .filter(|n| !inner.pattern_dims.contains_key(n) && !inner.scope.contains_key(n))
                    .collect();
                for n in &unbound {
                    inner.pattern_dims.insert(n.clone(), Dim::sym(&format!("\u{1}{n}")));
                }
                let Some(pattern) = self.eval_dim(inner, de) else { return false };
                if let [n] = unbound.as_slice() {
                    let var = format!("\u{1}{n}");
                    if let Some((_, c, rest)) = pattern.linear_in(&|s| s == var) {
                        // An overflowing solution is no solution: the call does not match.
                        let diff = actual.sub(&rest).unwrap_or(Dim::Known(0));
                        match diff.floor_div(&Dim::Known(c)) {
                            Ok(sol) if sol.mul(&Dim::Known(c)).is_ok_and(|p| p.compare(&diff) == Equality::Equal) => {
                                inner.pattern_dims.insert(n.clone(), sol);
                                continue;
                            }
                            _ => {
                                return fail(
                                    self,
                                    format!(
                                        "`{block}` expects `{param}` axis {axis} to be {}, found {actual}",
                                        self.source(inner.origin(de.span))
                                    ),
                                    None,
                                );
                            }
                        }
                    }
                }
                for n in &unbound {
                    inner.pattern_dims.remove(n);
                }
                if !unbound.is_empty() {
                    return fail(
                        self,
                        format!("cannot solve `{}` for axis {axis} of `{param}`", self.source(inner.origin(de.span))),
                        Some("pattern dims must appear alone or linearly (`2*M + 1`) in block signatures".into()),
                    );
                }
                if !self.dims_agree(inner, &pattern, actual) {
                    return fail(
                        self,
                        format!("`{block}` expects `{param}` axis {axis} to be {pattern}, found {actual}"),
                        None,
                    );
                }
            }
        }
        true
    }

    fn dims_agree(&self, body: &Body, a: &Dim, b: &Dim) -> bool {
        match a.compare(b) {
            Equality::Equal => true,
            Equality::Unknown => body.generic,
            Equality::Different => false,
        }
    }

    /// Binds call arguments (positional, then keyword) to declared
    /// parameters, with defaults. Reports problems; `None` on failure.
    pub(crate) fn bind_params(
        &mut self,
        params: &'p [ast::Param],
        file: nnc_syntax::FileId,
        given: &[(Option<String>, Value, Origin)],
        origin: Origin,
        what: &str,
    ) -> Option<Vec<(Value, Origin)>> {
        let mut slots: Vec<Option<(Value, Origin)>> = vec![None; params.len()];
        let mut next = 0;
        let mut ok = true;
        for (k, v, o) in given {
            let i = match k {
                None => {
                    while next < params.len() && slots[next].is_some() {
                        next += 1;
                    }
                    if next >= params.len() {
                        self.report(
                            Diagnostic::new(
                                Code::TooManyArguments,
                                o.file,
                                o.span,
                                format!("{what} takes {} arguments", params.len()),
                            )
                            .with_label("extra argument"),
                        );
                        ok = false;
                        continue;
                    }
                    next
                }
                Some(k) => match params.iter().position(|p| p.name.name == *k) {
                    Some(i) => i,
                    None => {
                        let mut d = Diagnostic::new(
                            Code::UnknownOption,
                            o.file,
                            o.span,
                            format!("{what} has no parameter `{k}`"),
                        )
                        .with_label("unknown parameter")
                        .with_note(format!(
                            "parameters: {}",
                            params.iter().map(|p| p.name.name.as_str()).collect::<Vec<_>>().join(", ")
                        ));
                        if let Some(s) = layers::suggest(k, params.iter().map(|p| p.name.name.as_str())) {
                            d = d.with_help(format!("did you mean `{s}`?"));
                        }
                        self.report(d);
                        ok = false;
                        continue;
                    }
                },
            };
            if slots[i].is_some() {
                self.report(
                    Diagnostic::new(
                        Code::DuplicateArgument,
                        o.file,
                        o.span,
                        format!("`{}` is given twice", params[i].name.name),
                    )
                    .with_label("given again here"),
                );
                ok = false;
                continue;
            }
            slots[i] = Some((v.clone(), *o));
        }
        let mut out = Vec::new();
        for (p, slot) in params.iter().zip(slots) {
            match slot {
                Some(s) => out.push(s),
                None => match &p.default {
                    Some(e) => {
                        let v = self.param_default(file, e);
                        out.push((v, Origin { file, span: p.span }));
                    }
                    None => {
                        self.report(
                            Diagnostic::new(
                                Code::MissingArgument,
                                origin.file,
                                origin.span,
                                format!("{what} is missing `{}`", p.name.name),
                            )
                            .with_label(format!("`{}` not given", p.name.name))
                            .with_secondary(file, p.span, "declared here"),
                        );
                        ok = false;
                    }
                },
            }
        }
        ok.then_some(out)
    }

    /// A parameter's default value, the same for a call and for the generic check of a
    /// block nobody calls: evaluated on its own (no other parameter is visible) as an
    /// option value, where a bare word is a mode (`pad: mode = same`).
    pub(crate) fn param_default(&mut self, file: nnc_syntax::FileId, e: &'p Expr) -> Value {
        let mut b = Body::new(file, BodyKind::Block);
        self.eval_in(&mut b, e, true)
    }

    /// A model used as a function (GAN steps): keywords naming inputs bind
    /// tensors, keywords naming parameters set them.
    fn call_model(
        &mut self,
        body: &mut Body,
        m: &'p ast::ModelDecl,
        file: nnc_syntax::FileId,
        call: &'p Call,
        piped: Option<(Value, Origin)>,
    ) -> Value {
        let origin = body.origin(call.span);
        let input_names: Vec<&str> = m.input_names();
        let args = self.eval_args(body, call, None);
        let mut inputs: HashMap<String, (Value, Origin)> = HashMap::new();
        let mut overrides = Vec::new();
        let mut positional = piped.into_iter().collect::<Vec<_>>();
        for (k, v, o, _) in args {
            match k {
                None => positional.push((v, o)),
                Some(k) if input_names.contains(&k.as_str()) => {
                    inputs.insert(k, (v, o));
                }
                Some(k) if m.params.iter().any(|p| p.name.name == k) => overrides.push((k, v)),
                Some(k) => {
                    let mut cands: Vec<&str> = input_names.clone();
                    cands.extend(m.params.iter().map(|p| p.name.name.as_str()));
                    let mut d = Diagnostic::new(
                        Code::UnknownOption,
                        o.file,
                        o.span,
                        format!("model `{}` has no input or parameter `{k}`", m.name.name),
                    )
                    .with_label("unknown name");
                    if let Some(s) = layers::suggest(&k, cands) {
                        d = d.with_help(format!("did you mean `{s}`?"));
                    }
                    self.report(d);
                }
            }
        }
        let free: Vec<&str> = input_names.iter().copied().filter(|n| !inputs.contains_key(*n)).collect();
        for (n, p) in free.iter().zip(positional) {
            inputs.insert(n.to_string(), p);
        }
        let first_node = self.graph.nodes.len();
        let Some(info) = self.check_model(m, file, &overrides, Some(&inputs)) else {
            self.report(
                Diagnostic::new(
                    Code::RecursiveCall,
                    origin.file,
                    call.callee.span,
                    format!("model `{}` calls itself", m.name.name),
                )
                .with_label("recursive call"),
            );
            return Value::Unknown;
        };
        // Parameters of a called model live under its name, shared by every
        // call (`Discriminator(real)` and `Discriminator(fake)` are one network).
        for node in &mut self.graph.nodes[first_node..] {
            if let NodeKind::Layer { params, name, .. } = &mut node.kind {
                *name = format!("{}.{name}", m.name.name);
                for p in params.iter_mut() {
                    p.name = format!("{}.{}", m.name.name, p.name);
                }
            }
        }
        let frozen = body.frozen;
        for mut l in info.layers {
            l.name = format!("{}.{}", m.name.name, l.name);
            if frozen {
                for p in &mut l.params {
                    p.trainable = false;
                }
            }
            body.layers.push(l);
        }
        match info.outputs.len() {
            1 => info.outputs.into_iter().next().map(|(_, v)| v).unwrap_or(Value::Unknown),
            0 => Value::Unknown,
            _ => Value::Tuple(info.outputs.into_iter().map(|(_, v)| v).collect()),
        }
    }
}

/// A value as an arithmetic operand of the typed graph.
fn operand(v: &Value) -> Option<Operand> {
    match v {
        Value::Tensor(t) => t.node.map(Operand::Tensor),
        Value::Int(d) => d.as_known().map(|k| Operand::Scalar(k as f64)),
        Value::Float(f) => Some(Operand::Scalar(*f)),
        Value::List(xs) => xs.iter().map(Value::as_f64).collect::<Option<Vec<f64>>>().map(Operand::Vector),
        _ => None,
    }
}

fn join(a: &str, b: &str) -> String {
    match (a.is_empty(), b.is_empty()) {
        (true, _) => b.to_string(),
        (_, true) => a.to_string(),
        _ => format!("{a}.{b}"),
    }
}

fn compare(op: CmpOp, l: &Value, r: &Value) -> Value {
    match (l, r) {
        (Value::Int(a), Value::Int(b)) => {
            let eq = a.compare(b);
            match (op, eq, a.order(b)) {
                (CmpOp::Eq, Equality::Equal, _) | (CmpOp::Ne, Equality::Different, _) => Value::Bool(true),
                (CmpOp::Eq, Equality::Different, _) | (CmpOp::Ne, Equality::Equal, _) => Value::Bool(false),
                (_, _, Some(ord)) => Value::Bool(match op {
                    CmpOp::Lt => ord.is_lt(),
                    CmpOp::Le => ord.is_le(),
                    CmpOp::Gt => ord.is_gt(),
                    CmpOp::Ge => ord.is_ge(),
                    CmpOp::Eq => ord.is_eq(),
                    CmpOp::Ne => ord.is_ne(),
                }),
                _ => Value::Unknown,
            }
        }
        (Value::Bool(a), Value::Bool(b)) => match op {
            CmpOp::Eq => Value::Bool(a == b),
            CmpOp::Ne => Value::Bool(a != b),
            _ => Value::Unknown,
        },
        (Value::Mode(a), Value::Mode(b)) => match op {
            CmpOp::Eq => Value::Bool(a == b),
            CmpOp::Ne => Value::Bool(a != b),
            _ => Value::Unknown,
        },
        (a, b) if a.as_f64().is_some() && b.as_f64().is_some() => {
            let (x, y) = (a.as_f64().unwrap_or(0.0), b.as_f64().unwrap_or(0.0));
            Value::Bool(match op {
                CmpOp::Lt => x < y,
                CmpOp::Le => x <= y,
                CmpOp::Gt => x > y,
                CmpOp::Ge => x >= y,
                CmpOp::Eq => x == y,
                CmpOp::Ne => x != y,
            })
        }
        (Value::Tensor(t), _) | (_, Value::Tensor(t)) => {
            Value::Tensor(TensorTy { elem: ElemType::Int, node: None, ..t.clone() })
        }
        // A data selector such as `column(1) > 0`, kept for the runtime.
        (Value::Call(_), _) => {
            let name = match op {
                CmpOp::Eq => "==",
                CmpOp::Ne => "!=",
                CmpOp::Lt => "<",
                CmpOp::Le => "<=",
                CmpOp::Gt => ">",
                CmpOp::Ge => ">=",
            };
            Value::Call(Rc::new(crate::types::CallValue {
                name: name.into(),
                args: vec![(None, l.clone()), (None, r.clone())],
            }))
        }
        _ => Value::Unknown,
    }
}
