//! Checking `train` blocks (docs/src/reference/train.md and docs/src/decisions.md): fields, data sources and
//! how their arrays bind to the model's inputs, losses, metrics, optimizers.

use std::collections::HashMap;

use nnc_syntax::ast::{self, Call, ElemType, ExprKind, TrainDecl, TrainItem};
use nnc_syntax::{Code, Diagnostic, FileId};

use super::{BindingKind, Body, BodyKind, Checker};
use crate::dims::{Dim, Equality};
use crate::graph::{NodeKind, Operand, TRef};
use crate::layers::suggest;
use crate::schema::{
    FieldKind, FnKind, Labels, SourceDef, TRAIN_FIELDS, TRAIN_FUNCTIONS, TrainFn, Yields, field_names, lookup_field,
    lookup_fn, names_of,
};
use crate::types::CallValue;
use crate::types::{Origin, TensorTy, Value};

/// What the checker learned about a train block, for the training runtime.
#[derive(Clone, Debug, Default)]
pub struct TrainInfo {
    /// The train block's name.
    pub name: String,
    /// The file declaring it.
    pub file: FileId,
    /// The whole `train` declaration.
    pub span: nnc_syntax::Span,
    /// The model trained (the `model =` field); `None` in multi-model blocks, which use `steps`.
    pub model: Option<String>,
    /// The model's graph followed by the train block's own nodes.
    pub graph: crate::graph::Graph,
    /// The model's inputs as nodes of `graph`.
    pub model_inputs: Vec<(String, TRef)>,
    /// The model's outputs as nodes of `graph`.
    pub model_outputs: Vec<(String, TRef)>,
    /// For each model input, the value that feeds it (a data array or a `let`).
    pub feeds: Vec<(String, TRef)>,
    /// The `data =` source call with its evaluated arguments.
    pub data: Option<CallValue>,
    /// The `loss =` scalar node, for single-model blocks.
    pub loss: Option<TRef>,
    /// `metrics = {…}`: name and scalar node of each metric, in order.
    pub metrics: Vec<(String, TRef)>,
    /// Evaluated fields: optimizer, batch, epochs, steps, seed, validate, …
    pub fields: Vec<(String, Value)>,
    /// The `step`s of a multi-model block, in the order they run.
    pub steps: Vec<StepInfo>,
    /// Dims the data binds (a sequence length, a vocabulary size, a CSV
    /// selector's width), with their value when the call fixes it.
    pub data_dims: Vec<super::DataDim>,
}

impl TrainInfo {
    /// The evaluated field `name` (`epochs`, `batch`…), if given.
    pub fn field(&self, name: &str) -> Option<&Value> {
        self.fields.iter().find(|(k, _)| k == name).map(|(_, v)| v)
    }
}

/// `step name times k: minimize loss over M with optimizer`
#[derive(Clone, Debug)]
pub struct StepInfo {
    /// The step's name (printed in the log).
    pub name: String,
    /// How many times the step runs per batch (`times k`; 1 without it).
    pub times: i64,
    /// The scalar minimised, a node of the train block's graph.
    pub loss: Option<TRef>,
    /// The models whose parameters the step updates.
    pub over: Vec<String>,
    /// The optimizer, evaluated (a call value such as `adam(lr = 1e-3)`).
    pub optimizer: Value,
}

impl<'p> Checker<'p> {
    pub(crate) fn check_train(&mut self, t: &'p TrainDecl, file: FileId) -> TrainInfo {
        let mut body = Body::new(file, BodyKind::Train);
        let mut info = TrainInfo { name: t.name.name.clone(), file, span: t.span, ..TrainInfo::default() };
        let fields = self.train_fields(t, file);
        let steps: Vec<&ast::StepStmt> =
            t.items.iter().filter_map(|i| if let TrainItem::Step(s) = i { Some(s) } else { None }).collect();

        // The model, checked afresh; the train block's graph continues its graph.
        let saved_graph = std::mem::take(&mut self.graph);
        let (model_info, fed_by_keyword) = self.train_model(&mut body, &fields, &steps, t, &mut info);
        let model_inputs: Vec<(String, TensorTy)> = model_info.as_ref().map(|m| m.inputs.clone()).unwrap_or_default();

        // Data arrays, typed by the inputs they feed (or by the loaded data).
        let mut data_dims = std::collections::BTreeMap::new();
        let arrays = self.train_data(&mut body, &fields, &model_inputs, t, &mut info, &mut data_dims);

        // `let`s, in order, before the loss.
        for item in &t.items {
            if let TrainItem::Let(l) = item {
                self.check_let(&mut body, l);
            }
        }
        let fed = self.train_feeds(&mut body, &fed_by_keyword, &model_inputs, &mut info);
        if let (Some(arrays), Some(data), true) = (&arrays, fields.get("data"), model_info.is_some()) {
            self.unfed_inputs(&body, arrays, &fed, &model_inputs, data);
        }
        self.train_values(&mut body, &fields, steps.is_empty(), t, &mut info);
        self.train_steps(&mut body, &steps, &mut info);
        if model_info.is_some() || !info.steps.is_empty() {
            self.report_unbound_dims(t, file, info.data.as_ref(), &data_dims);
        }
        info.data_dims = data_dims.into_values().collect();
        info.graph = std::mem::replace(&mut self.graph, saved_graph);
        info
    }

    /// The block's fields by name, after reporting unknown and repeated ones.
    fn train_fields(&mut self, t: &'p TrainDecl, file: FileId) -> HashMap<&'p str, &'p ast::Expr> {
        let mut fields: HashMap<&str, &'p ast::Expr> = HashMap::new();
        let mut field_spans: HashMap<&str, nnc_syntax::Span> = HashMap::new();
        for item in &t.items {
            let TrainItem::Field { key, value } = item else { continue };
            if lookup_field(&key.name).is_none() {
                let names: Vec<&str> = field_names().collect();
                let mut d = Diagnostic::new(
                    Code::UnknownTrainField,
                    file,
                    key.span,
                    format!("unknown train field `{}`", key.name),
                )
                .with_label("not a train block field")
                .with_note(format!("fields: {}", names.join(", ")));
                if let Some(help) = crate::aliases::help(&key.name, field_names()) {
                    d = d.with_help(help);
                }
                self.report(d);
                continue;
            }
            if let Some(prev) = field_spans.insert(key.name.as_str(), key.span) {
                self.report(
                    Diagnostic::new(
                        Code::DuplicateDefinition,
                        file,
                        key.span,
                        format!("field `{}` is set twice", key.name),
                    )
                    .with_label("set again here")
                    .with_secondary(file, prev, "first set here"),
                );
                continue;
            }
            self.check_field_kind(&key.name, value, file);
            fields.insert(key.name.as_str(), value);
        }
        fields
    }

    /// E0411: a field that needs a callable of one kind names one of another
    /// (`optimizer = mse(1, 2)`), at the call's name, with the right kind's names.
    fn check_field_kind(&mut self, field: &str, value: &ast::Expr, file: FileId) {
        let want = match lookup_field(field).map(|f| f.kind) {
            Some(FieldKind::Call(k)) => Some(k),
            // A loss is an expression of losses; a metric list holds metrics.
            Some(FieldKind::Expr) => None,
            _ => return,
        };
        let items: Vec<&ast::Expr> = match (&value.kind, field) {
            (ExprKind::List(xs), "metrics") => xs.iter().collect(),
            _ => vec![value],
        };
        for e in items {
            let ExprKind::Call(c) = &e.kind else { continue };
            let Some(got) = lookup_fn(&c.callee.name) else { continue };
            // A metric may be minimised (`loss = mae(…)`) and a loss reported, as in Keras.
            let fits = match want {
                Some(k) => got.kind == k,
                None => matches!(got.kind, FnKind::Metric | FnKind::Loss),
            };
            if !fits {
                let need = want.unwrap_or(if field == "loss" { FnKind::Loss } else { FnKind::Metric });
                self.wrong_kind(got, need, field, c.callee.span, file);
            }
        }
    }

    pub(crate) fn wrong_kind(
        &mut self,
        got: &TrainFn,
        need: FnKind,
        field: &str,
        span: nnc_syntax::Span,
        file: FileId,
    ) {
        let names: Vec<&str> = names_of(need).collect();
        let mut d = Diagnostic::new(
            Code::WrongCallableKind,
            file,
            span,
            format!(
                "`{}` is {}, `{field}` needs {}: {}",
                got.name,
                got.kind.article(),
                need.article(),
                names.join(", ")
            ),
        )
        .with_label(format!("{} here", got.kind.noun()));
        if let Some(s) = suggest(got.name, names.iter().copied()) {
            d = d.with_help(format!("did you mean `{s}`?"));
        }
        self.report(d);
    }

    /// Checks `model = M(…)`; the model's inputs and outputs become the body's names.
    fn train_model(
        &mut self,
        body: &mut Body,
        fields: &HashMap<&'p str, &'p ast::Expr>,
        steps: &[&ast::StepStmt],
        t: &'p TrainDecl,
        info: &mut TrainInfo,
    ) -> (Option<super::ModelInfo>, Vec<(String, &'p ast::Expr)>) {
        let file = body.file;
        let mut model_info = None;
        let mut fed_by_keyword: Vec<(String, &'p ast::Expr)> = Vec::new();
        if let Some(e) = fields.get("model") {
            match &e.kind {
                ExprKind::Call(c) if self.model_decls.contains_key(&c.callee.name) => {
                    let (m, mfile) = self.model_decls[&c.callee.name];
                    let overrides = self.model_overrides(body, c, m, &mut fed_by_keyword);
                    let was = self.record_hints;
                    self.record_hints = false;
                    model_info = self.check_model(m, mfile, &overrides, None);
                    self.record_hints = was;
                    info.model = Some(m.name.name.clone());
                }
                ExprKind::Call(c) | ExprKind::Pipe { stage: c, .. } => self.not_a_model(&c.callee, file),
                // `model = M` for a model `M`: models are instantiated like calls (`M()`, with any parameters).
                ExprKind::Name(n) if self.model_decls.contains_key(&n.name) => self.report(
                    Diagnostic::new(Code::NotAModel, file, n.span, format!("`{}` must be instantiated", n.name))
                        .with_label("a model, not an instance of it")
                        .with_help(format!("write `{}()` (its parameters go in the parentheses)", n.name)),
                ),
                ExprKind::Name(n) => self.not_a_model(n, file),
                _ => self.report(
                    Diagnostic::new(Code::NotAModel, file, e.span, "`model` must name a model")
                        .with_label("expected `ModelName()`"),
                ),
            }
        } else if steps.is_empty() {
            self.report(
                Diagnostic::new(
                    Code::MissingTrainField,
                    file,
                    t.name.span,
                    format!("train block `{}` has no `model`", t.name.name),
                )
                .with_label("add `model = YourModel()`"),
            );
        }
        if fields.contains_key("model") && model_info.is_none() {
            body.incomplete_scope = true;
        }
        if let Some(m) = &model_info {
            self.graph = m.graph.clone();
            info.model_inputs = m.inputs.iter().filter_map(|(n, t)| t.node.map(|r| (n.clone(), r))).collect();
            info.model_outputs = m
                .outputs
                .iter()
                .filter_map(|(n, v)| v.as_tensor().and_then(|t| t.node).map(|r| (n.clone(), r)))
                .collect();
            for (name, ty) in &m.inputs {
                body.bind(name, Value::Tensor(ty.clone()), Origin { file: m.file, span: m.span }, BindingKind::Param);
            }
            for (name, v) in &m.outputs {
                body.bind(name, v.clone(), Origin { file: m.file, span: m.span }, BindingKind::Param);
            }
        }
        (model_info, fed_by_keyword)
    }

    /// The parameter overrides of `model = M(p = …)`; inputs given by keyword are
    /// collected in `fed_by_keyword` (bound after the train block's `let`s).
    fn model_overrides(
        &mut self,
        body: &mut Body,
        c: &'p Call,
        m: &'p ast::ModelDecl,
        fed_by_keyword: &mut Vec<(String, &'p ast::Expr)>,
    ) -> Vec<(String, Value)> {
        let file = body.file;
        let mut overrides = Vec::new();
        let input_names: Vec<&str> = m.input_names();
        for a in &c.args {
            if let Some(n) = a.name.as_ref().filter(|n| input_names.contains(&n.name.as_str())) {
                fed_by_keyword.push((n.name.clone(), &a.value));
                continue;
            }
            let v = self.eval_in(body, &a.value, true);
            match &a.name {
                Some(n) if m.params.iter().any(|p| p.name.name == n.name) => overrides.push((n.name.clone(), v)),
                Some(n) => {
                    let mut d = Diagnostic::new(
                        Code::UnknownOption,
                        file,
                        n.span,
                        format!("model `{}` has no parameter `{}`", m.name.name, n.name),
                    )
                    .with_label("unknown parameter");
                    if let Some(s) = suggest(&n.name, m.params.iter().map(|p| p.name.name.as_str())) {
                        d = d.with_help(format!("did you mean `{s}`?"));
                    }
                    self.report(d);
                }
                None => self.report(
                    Diagnostic::new(Code::TooManyArguments, file, a.value.span, "model parameters are set by name")
                        .with_label("write `name = value`"),
                ),
            }
        }
        overrides
    }

    /// `data`, `validate` and `test`: binds the main source's arrays and the dims
    /// every source fixes. Returns the main source's array names (see `check_data`).
    fn train_data(
        &mut self,
        body: &mut Body,
        fields: &HashMap<&'p str, &'p ast::Expr>,
        model_inputs: &[(String, TensorTy)],
        t: &'p TrainDecl,
        info: &mut TrainInfo,
        data_dims: &mut std::collections::BTreeMap<String, super::DataDim>,
    ) -> Option<Vec<String>> {
        let file = body.file;
        let mut arrays = None;
        match fields.get("data") {
            Some(e) => {
                arrays = self.check_data(body, e, model_inputs, true);
                info.data = self.eval_source(body, e);
                if let Some(call) = &info.data {
                    self.bind_data_dims(call, "data", e, file, model_inputs, data_dims);
                }
            }
            None => self.report(
                Diagnostic::new(
                    Code::MissingTrainField,
                    file,
                    t.name.span,
                    format!("train block `{}` has no `data`", t.name.name),
                )
                .with_label("add `data = csv(…)`, `idx(…)`, …"),
            ),
        }
        for key in ["validate", "test"] {
            let Some(e) = fields.get(key) else { continue };
            let v = match &e.kind {
                ExprKind::Call(c) if c.callee.name == "split" => {
                    let v = c.args.first().map(|a| self.eval(body, &a.value));
                    if !v.as_ref().and_then(Value::as_f64).is_some_and(|f| f > 0.0 && f < 1.0) {
                        self.report(
                            Diagnostic::new(Code::OptionOutOfRange, file, e.span, "`split` takes a fraction in (0, 1)")
                                .with_label("e.g. split(0.1)"),
                        );
                    }
                    self.eval(body, e)
                }
                _ => {
                    let mut scratch = Body::new(file, BodyKind::Train);
                    scratch.scope = body.scope.clone();
                    self.check_data(&mut scratch, e, model_inputs, false);
                    match self.eval_source(&mut scratch, e) {
                        Some(c) => {
                            // Its widths must fit the inputs, and agree with the main source's.
                            self.bind_data_dims(&c, key, e, file, model_inputs, data_dims);
                            Value::Call(std::rc::Rc::new(c))
                        }
                        None => Value::Unknown,
                    }
                }
            };
            info.fields.push((key.to_string(), v));
        }
        arrays
    }

    /// Every model input is fed: by a data array, a `let`, or a keyword of the model
    /// call. Records the feeds; returns the inputs fed by keyword.
    fn train_feeds(
        &mut self,
        body: &mut Body,
        fed_by_keyword: &[(String, &'p ast::Expr)],
        model_inputs: &[(String, TensorTy)],
        info: &mut TrainInfo,
    ) -> Vec<String> {
        let mut fed: Vec<String> = Vec::new();
        for (name, e) in fed_by_keyword {
            let v = self.eval(body, e);
            let at = body.origin(e.span);
            if let (Value::Tensor(got), Some((_, want))) = (&v, model_inputs.iter().find(|(n, _)| n == name)) {
                if let Some(mut d) = self.tensor_mismatch(body, got, at, want, at, &format!("input `{name}`")) {
                    d.code = Code::DataInputMismatch;
                    self.report(d);
                }
                if let Some(r) = got.node {
                    info.feeds.push((name.clone(), r));
                }
            }
            fed.push(name.clone());
        }
        for (name, _) in model_inputs {
            if fed.contains(name) {
                continue;
            }
            if let Some(r) = body.scope.get(name).and_then(|b| b.value.as_tensor()).and_then(|t| t.node) {
                // A data array or a train `let` of the input's name.
                if !info.model_inputs.iter().any(|(_, m)| *m == r) {
                    info.feeds.push((name.clone(), r));
                }
            }
        }
        fed
    }

    /// E0404 for each model input that neither the data, a keyword nor a `let` feeds.
    fn unfed_inputs(
        &mut self,
        body: &Body,
        arrays: &[String],
        fed: &[String],
        model_inputs: &[(String, TensorTy)],
        data: &ast::Expr,
    ) {
        for (name, ty) in model_inputs {
            let is_let = body.scope.get(name).is_some_and(|b| b.kind == BindingKind::Let);
            if arrays.contains(name) || fed.contains(name) || is_let {
                continue;
            }
            let yields = if arrays.is_empty() {
                "no named arrays".to_string()
            } else {
                arrays.iter().map(|a| format!("`{a}`")).collect::<Vec<_>>().join(", ")
            };
            let mut d = Diagnostic::new(
                Code::DataInputMismatch,
                body.file,
                data.span,
                format!("model input `{name}` {ty} is not fed by the data source"),
            )
            .with_label(format!("yields {yields}"));
            if let Some(s) = suggest(name, arrays.iter().map(String::as_str)) {
                d = d.with_help(format!("rename the array `{s}` to `{name}`"));
            }
            self.report(d);
        }
    }

    /// The loss, metrics, optimizer and the other evaluated fields.
    fn train_values(
        &mut self,
        body: &mut Body,
        fields: &HashMap<&'p str, &'p ast::Expr>,
        no_steps: bool,
        t: &'p TrainDecl,
        info: &mut TrainInfo,
    ) {
        let file = body.file;
        if let Some(e) = fields.get("loss") {
            info.loss = self.eval(body, e).as_tensor().and_then(|t| t.node);
        } else if no_steps {
            self.report(
                Diagnostic::new(
                    Code::MissingTrainField,
                    file,
                    t.name.span,
                    format!("train block `{}` has no `loss`", t.name.name),
                )
                .with_label("add `loss = cross_entropy(logits, labels)` or `step`s"),
            );
        }
        for key in ["optimizer", "early_stop", "lr_schedule", "init"] {
            if let Some(e) = fields.get(key) {
                let v = self.eval(body, e);
                info.fields.push((key.to_string(), v));
            }
        }
        if let Some(e) = fields.get("metrics") {
            self.train_metrics(body, e, info);
        }
        for field in TRAIN_FIELDS {
            let (FieldKind::Count(range), Some(e)) = (field.kind, fields.get(field.name)) else { continue };
            let v = self.eval(body, e);
            let ok = match &v {
                Value::Int(Dim::Known(k)) => range.contains(*k as f64),
                Value::Unknown => true,
                _ => false,
            };
            if !ok {
                let allowed = range.describe();
                self.report(
                    Diagnostic::new(
                        Code::OptionOutOfRange,
                        file,
                        e.span,
                        format!("`{}` must be {allowed}, found {v}", field.name),
                    )
                    .with_label(format!("expected {allowed}")),
                );
            }
            info.fields.push((field.name.to_string(), v));
        }
        for key in ["class_weight", "checkpoint", "keep_best", "shuffle", "stateful"] {
            let Some(e) = fields.get(key) else { continue };
            let v = self.eval_in(body, e, true);
            if let (Value::Str(path), "checkpoint") = (&v, key) {
                // Checked again by `nnc run` against the real directory (symlinks).
                if crate::sandbox::relative_inside(std::path::Path::new(path)).is_none() {
                    self.report(
                        Diagnostic::new(
                            Code::OutputOutsideOutDir,
                            file,
                            e.span,
                            format!("`{path}` is not inside the output directory"),
                        )
                        .with_label("absolute, or climbs out with `..`")
                        .with_help(
                            "paths a train block writes are relative to the output directory (`--out`) \
                             and stay inside it",
                        ),
                    );
                }
            }
            info.fields.push((key.to_string(), v));
        }
    }

    /// `metrics = [accuracy(…), …]`: each evaluated, under a unique history name.
    fn train_metrics(&mut self, body: &mut Body, e: &'p ast::Expr, info: &mut TrainInfo) {
        let items: Vec<&'p ast::Expr> = match &e.kind {
            ExprKind::List(xs) => xs.iter().collect(),
            _ => vec![e],
        };
        for x in items {
            // Names must be unique (history columns): `recall(…, class = 0)` is `recall_0`.
            let mut label = match &x.kind {
                ExprKind::Call(c) => match c.keyword("class").map(|a| &a.value.kind) {
                    Some(ExprKind::Int(k)) => format!("{}_{k}", c.callee.name),
                    _ => c.callee.name.clone(),
                },
                _ => self.source(body.origin(x.span)).to_string(),
            };
            let base = label.clone();
            let mut k = 2;
            while info.metrics.iter().any(|(n, _)| *n == label) {
                label = format!("{base}_{k}");
                k += 1;
            }
            if let Some(r) = self.eval(body, x).as_tensor().and_then(|t| t.node) {
                info.metrics.push((label, r));
            }
        }
    }

    /// `step name times k: minimize loss over M with optimizer`.
    fn train_steps(&mut self, body: &mut Body, steps: &[&'p ast::StepStmt], info: &mut TrainInfo) {
        let file = body.file;
        for s in steps {
            for m in &s.over {
                if !self.model_decls.contains_key(&m.name) {
                    self.not_a_model(m, file);
                }
            }
            let mut times = 1;
            if let Some(e) = &s.times {
                match self.eval(body, e) {
                    Value::Int(Dim::Known(v)) if v >= 1 => times = v,
                    _ => self.report(
                        Diagnostic::new(Code::OptionOutOfRange, file, e.span, "`times` must be an integer ≥ 1")
                            .with_label("here"),
                    ),
                }
            }
            self.check_field_kind("loss", &s.loss, file);
            self.check_field_kind("optimizer", &s.optimizer, file);
            let loss = self.eval(body, &s.loss).as_tensor().and_then(|t| t.node);
            let optimizer = self.eval(body, &s.optimizer);
            info.steps.push(StepInfo {
                name: s.name.name.clone(),
                times,
                loss,
                over: s.over.iter().map(|i| i.name.clone()).collect(),
                optimizer,
            });
        }
    }

    /// Evaluates a data source call's arguments for the runtime.
    fn eval_source(&mut self, body: &mut Body, e: &'p ast::Expr) -> Option<CallValue> {
        let ExprKind::Call(c) = &e.kind else { return None };
        lookup_fn(&c.callee.name).filter(|f| f.kind == FnKind::DataSource)?;
        let was = body.incomplete_scope;
        body.incomplete_scope = true; // selectors such as `column(1) > 0` are not names
        let args = c
            .args
            .iter()
            .map(|a| (a.name.as_ref().map(|n| n.name.clone()), self.eval_in(body, &a.value, true)))
            .collect();
        body.incomplete_scope = was;
        Some(CallValue { name: c.callee.name.clone(), args })
    }

    /// The type of a data array as loaded by the runtime (`CheckOptions::data_types`).
    fn data_type(&self, name: &str, origin: Origin) -> Option<TensorTy> {
        let (_, elem, dims) = self.options.data_types.iter().find(|(n, ..)| n == name)?;
        let mut all = vec![Dim::sym("N")];
        all.extend(dims.iter().map(|&d| Dim::Known(d)));
        Some(TensorTy::new(*elem, all, origin))
    }

    fn not_a_model(&mut self, name: &ast::Ident, file: FileId) {
        let mut d = Diagnostic::new(Code::NotAModel, file, name.span, format!("`{}` is not a model", name.name))
            .with_label("expected a model declared in this file or a `use`d one");
        if let Some(s) = suggest(&name.name, self.model_decls.keys().map(String::as_str)) {
            d = d.with_help(format!("did you mean `{s}`?"));
        }
        self.report(d);
    }

    /// Binds the arrays of a data source and checks that they feed every model input.
    /// Returns the array names, or `None` when the source yields every input
    /// (`synthetic`, `npz`) or is invalid. What a source yields and how its call reads
    /// come from its schema entry (`schema::SourceDef`).
    fn check_data(
        &mut self,
        body: &mut Body,
        e: &'p ast::Expr,
        inputs: &[(String, TensorTy)],
        main: bool,
    ) -> Option<Vec<String>> {
        let file = body.file;
        let ExprKind::Call(c) = &e.kind else {
            self.report(
                Diagnostic::new(Code::InvalidDataSource, file, e.span, "`data` must be a data source such as `csv(…)`")
                    .with_label("not a data source"),
            );
            return None;
        };
        let (f, source) = self.data_source(c, file)?;
        self.check_data_options(f, c, file);
        self.check_data_files(source, c, file);
        if source.path_first
            && !matches!(c.args.first(), Some(a) if a.name.is_none() && matches!(a.value.kind, ExprKind::Str(_)))
        {
            self.report(
                Diagnostic::new(Code::InvalidDataSource, file, c.span, format!("`{}` needs a file name first", f.name))
                    .with_label(format!("e.g. {}(\"data/file\", …)", f.name)),
            );
        }
        let arrays = data_arrays(f, source, c, body, inputs);
        // Bind arrays: those named like an input take its type; others the
        // type of the loaded data when the runtime knows it.
        for (name, origin) in &arrays {
            let ty = inputs
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, t)| t.clone())
                .or_else(|| self.data_type(name, *origin));
            let v = match ty {
                Some(mut t) if main => {
                    t.node = None;
                    self.graph.add(NodeKind::Data { name: name.clone() }, Value::Tensor(t), *origin)
                }
                Some(t) => Value::Tensor(t),
                None => Value::Unknown,
            };
            body.bind(name, v, *origin, BindingKind::Input);
        }
        let every_input = matches!(source.yields, Yields::EveryInput | Yields::Declared);
        if every_input { None } else { Some(arrays.into_iter().map(|(n, _)| n).collect()) }
    }

    /// The schema entry of the data source `c` calls; reports an unknown one.
    fn data_source(&mut self, c: &Call, file: FileId) -> Option<(&'static TrainFn, &'static SourceDef)> {
        if let Some(f) = lookup_fn(&c.callee.name)
            && let Some(source) = f.source
        {
            return Some((f, source));
        }
        let sources: Vec<&str> =
            TRAIN_FUNCTIONS.iter().filter(|f| f.kind == FnKind::DataSource).map(|f| f.name).collect();
        let mut d = Diagnostic::new(
            Code::UnknownFunction,
            file,
            c.callee.span,
            format!("unknown data source `{}`", c.callee.name),
        )
        .with_label("not a data source")
        .with_note(format!("data sources: {}", sources.join(", ")));
        if let Some(s) = suggest(&c.callee.name, sources) {
            d = d.with_help(format!("did you mean `{s}`?"));
        }
        self.report(d);
        None
    }

    /// Unknown options; sources that name arrays by keyword take any other keyword.
    fn check_data_options(&mut self, f: &TrainFn, c: &Call, file: FileId) {
        for a in &c.args {
            if let Some(n) = &a.name
                && !f.names_arrays()
                && f.option(&n.name).is_none()
            {
                let mut d = Diagnostic::new(
                    Code::InvalidDataSource,
                    file,
                    n.span,
                    format!("`{}` has no option `{}`", f.name, n.name),
                )
                .with_label("unknown option")
                .with_note(format!(
                    "`{}` takes: {}",
                    f.name,
                    f.option_names().collect::<Vec<_>>().join(", ")
                ));
                if let Some(help) = crate::aliases::help(&n.name, f.option_names()) {
                    d = d.with_help(help);
                }
                self.report(d);
            }
        }
    }

    /// Files must exist, relative to the `.nn` file, and lie where a `.nn` file may read.
    fn check_data_files(&mut self, source: &SourceDef, c: &Call, file: FileId) {
        let files: Vec<(&String, nnc_syntax::Span)> = c
            .args
            .iter()
            .filter(|a| a.name.is_none() || source.yields == Yields::Files)
            .filter_map(|a| if let ExprKind::Str(s) = &a.value.kind { Some((s, a.value.span)) } else { None })
            .collect();
        let (Some(loader), Some(dir)) = (self.loader, self.program.file(file).path.as_ref().and_then(|p| p.parent()))
        else {
            return;
        };
        for (path, span) in files {
            let full = dir.join(path);
            match loader.data_file(&full) {
                Ok(()) => {}
                // Outside the project root, or not a regular file: named, not read.
                Err(crate::LoadError::Refused(e)) => {
                    let mut d = Diagnostic::new(
                        e.code().unwrap_or(Code::InvalidDataSource),
                        file,
                        span,
                        format!("data file `{path}` is {}", e.reason()),
                    )
                    .with_label("not read");
                    if let Some(help) = e.help() {
                        d = d.with_help(help);
                    }
                    self.report(d);
                }
                // W0004 is a lint (`lint::data_file_missing`); the checker records the fact.
                Err(_) => self.record(
                    Origin { file, span },
                    super::facts::FactKind::DataFileMissing { path: path.clone(), full },
                ),
            }
        }
    }

    /// Losses, metrics, optimizers, schedules and helpers inside `train`.
    pub(crate) fn train_function(
        &mut self,
        body: &mut Body,
        call: &'p Call,
        piped: Option<(Value, Origin)>,
    ) -> Option<Value> {
        let f = lookup_fn(&call.callee.name)?;
        let file = body.file;
        let mut positional: Vec<(Value, Origin, &'p ast::Expr)> = Vec::new();
        let mut keywords: Vec<(String, Value)> = Vec::new();
        if let Some((v, o)) = piped {
            positional.push((v, o, &call.args.first()?.value));
        }
        for a in &call.args {
            match &a.name {
                Some(n) => {
                    if f.option(&n.name).is_none() {
                        let mut d = Diagnostic::new(
                            Code::UnknownOption,
                            file,
                            n.span,
                            format!("`{}` has no option `{}`", f.name, n.name),
                        )
                        .with_label("unknown option");
                        if !f.options.is_empty() {
                            d = d.with_note(format!(
                                "`{}` takes: {}",
                                f.name,
                                f.option_names().collect::<Vec<_>>().join(", ")
                            ));
                        }
                        if let Some(help) = crate::aliases::help(&n.name, f.option_names()) {
                            d = d.with_help(help);
                        }
                        self.report(d);
                    } else {
                        let v = self.eval_in(body, &a.value, true);
                        self.check_option_range(f, &n.name, &v, body.origin(a.value.span));
                        keywords.push((n.name.clone(), v));
                    }
                }
                None => {
                    let v = match f.kind {
                        // `l2(params)`: `params` names every kernel, not a binding.
                        FnKind::DataSource => Value::Unknown,
                        FnKind::Loss if f.name == "l2" => Value::Unknown,
                        FnKind::Loss | FnKind::Metric => self.eval(body, &a.value),
                        _ => self.eval_in(body, &a.value, true),
                    };
                    // An optimizer's or schedule's one positional argument is its `lr`.
                    if matches!(f.kind, FnKind::Optimizer | FnKind::Schedule) && positional.is_empty() {
                        self.check_option_range(f, "lr", &v, body.origin(a.value.span));
                    }
                    positional.push((v, body.origin(a.value.span), &a.value));
                }
            }
        }
        if positional.len() > f.positional {
            let extra = &positional[f.positional];
            self.report(
                Diagnostic::new(
                    Code::TooManyArguments,
                    extra.1.file,
                    extra.1.span,
                    format!("`{}` takes {} positional argument(s)", f.name, f.positional),
                )
                .with_label("extra argument"),
            );
        }
        match f.kind {
            FnKind::Loss | FnKind::Metric if f.positional == 2 => {
                if positional.len() < 2 {
                    self.report(
                        Diagnostic::new(
                            Code::MissingArgument,
                            file,
                            call.span,
                            format!("`{}` takes a prediction and a target", f.name),
                        )
                        .with_label(format!("e.g. {}(logits, labels)", f.name)),
                    );
                    return Some(Value::Unknown);
                }
                self.record_softmax_loss_input(f, &keywords, &positional[0]);
                if !self.check_loss_args(body, f, call, &positional[0], &positional[1]) {
                    return Some(Value::Unknown);
                }
                let scalar = Value::Tensor(TensorTy::float(Vec::new(), body.origin(call.span)));
                let pred = positional[0].0.as_tensor().and_then(|t| t.node);
                let target = match &positional[1].0 {
                    Value::Tensor(t) => t.node.map(Operand::Tensor),
                    v => v.as_f64().map(Operand::Scalar),
                };
                match (pred, target) {
                    (Some(pred), Some(target)) => {
                        let kind = NodeKind::Objective { function: f.name, pred, target, options: keywords };
                        Some(self.graph.add(kind, scalar, body.origin(call.span)))
                    }
                    _ => Some(scalar),
                }
            }
            FnKind::Loss => Some(self.graph.add(
                NodeKind::L2,
                Value::Tensor(TensorTy::float(Vec::new(), body.origin(call.span))),
                body.origin(call.span),
            )),
            _ => {
                let mut args: Vec<(Option<String>, Value)> =
                    positional.into_iter().map(|(v, _, _)| (None, v)).collect();
                args.extend(keywords.into_iter().map(|(k, v)| (Some(k), v)));
                Some(Value::Call(std::rc::Rc::new(CallValue { name: f.name.to_string(), args })))
            }
        }
    }

    /// E0202: a number outside the range the schema declares for a train function's option
    /// (`lr = -1`, `beta1 = 7`): caught here, not as NaN losses (or silently clamped) epochs into a run.
    fn check_option_range(&mut self, f: &TrainFn, option: &str, v: &Value, at: Origin) {
        let Some(range) = f.option(option).and_then(|o| o.range) else { return };
        let Some(x) = v.as_f64() else { return }; // not a number: its own checks, or a symbolic dim
        if !range.contains(x) {
            let allowed = range.describe();
            self.report(
                Diagnostic::new(
                    Code::OptionOutOfRange,
                    at.file,
                    at.span,
                    format!("`{option}` of `{}` must be {allowed}, found {v}", f.name),
                )
                .with_label(format!("must be {allowed}")),
            );
        }
    }

    /// Records what the lint W0002 (`lint::softmax_before_loss`) needs: the tensor given to
    /// a loss that applies softmax itself (`from_logits` not `false`).
    fn record_softmax_loss_input(
        &mut self,
        f: &TrainFn,
        keywords: &[(String, Value)],
        pred: &(Value, Origin, &'p ast::Expr),
    ) {
        let from_logits =
            keywords.iter().find(|(k, _)| k == "from_logits").is_none_or(|(_, v)| !matches!(v, Value::Bool(false)));
        if !matches!(f.name, "cross_entropy" | "perplexity") || !from_logits {
            return;
        }
        let Some(r) = pred.0.as_tensor().and_then(|t| t.node) else { return };
        let has_from_logits = f.option("from_logits").is_some();
        let fact = super::facts::FactKind::SoftmaxLossInput {
            loss: f.name,
            pred: r,
            train: self.trains.len(),
            has_from_logits,
        };
        self.record(pred.1, fact);
    }

    /// Checks that a loss's prediction and target agree; false after an error.
    fn check_loss_args(
        &mut self,
        body: &Body,
        f: &TrainFn,
        call: &Call,
        pred: &(Value, Origin, &'p ast::Expr),
        target: &(Value, Origin, &'p ast::Expr),
    ) -> bool {
        let origin = body.origin(call.span);
        let (Value::Tensor(p), tv) = (&pred.0, &target.0) else { return false };
        if p.elem != ElemType::Float {
            self.report(
                Diagnostic::new(
                    Code::ElementTypeMismatch,
                    pred.1.file,
                    pred.1.span,
                    format!("`{}` needs float predictions, found {p}", f.name),
                )
                .with_label(format!("this is {p}")),
            );
            return false;
        }
        let t = match tv {
            Value::Tensor(t) => t,
            Value::Int(_) | Value::Float(_) => return true, // a number broadcasts
            _ => return false,
        };
        if f.labels != Labels::Same && t.elem == ElemType::Int {
            // Integer labels: the prediction has one more axis (classes).
            let want = &p.dims[..p.rank().saturating_sub(1)];
            let want_dims: Vec<Dim> =
                if f.labels == Labels::ClassesOrBinary && p.dims.last().and_then(Dim::as_known) == Some(1) {
                    drop_trailing_ones(&p.dims)
                } else {
                    want.to_vec()
                };
            if !same_dims(&want_dims, &drop_trailing_ones(&t.dims)) {
                self.report(
                    Diagnostic::new(
                        Code::LossArgumentMismatch,
                        origin.file,
                        origin.span,
                        format!(
                            "`{}` with logits {p} needs int labels {}, found {t}",
                            f.name,
                            show_dims(&want_dims, ElemType::Int)
                        ),
                    )
                    .with_label("labels do not match the predictions")
                    .with_secondary(pred.1.file, pred.1.span, format!("predictions {p}"))
                    .with_secondary(target.1.file, target.1.span, format!("labels {t}"))
                    .with_note("classes are on the last axis of the predictions; labels have the other axes"),
                );
                return false;
            }
            return true;
        }
        if f.labels == Labels::ClassesOrOneHot
            && t.elem == ElemType::Float
            && same_dims(&p.dims[..p.rank().saturating_sub(1)], &t.dims)
        {
            self.report(
                Diagnostic::new(
                    Code::ElementTypeMismatch,
                    target.1.file,
                    target.1.span,
                    format!("`{}` needs int labels, found float {t}", f.name),
                )
                .with_label("declare the labels as int[…]")
                .with_secondary(pred.1.file, pred.1.span, format!("logits {p}")),
            );
            return false;
        }
        if !same_dims(&drop_trailing_ones(&p.dims), &drop_trailing_ones(&t.dims)) {
            self.report(
                Diagnostic::new(
                    Code::LossArgumentMismatch,
                    origin.file,
                    origin.span,
                    format!("`{}` compares {p} with {t}", f.name),
                )
                .with_label("the arguments' shapes differ")
                .with_secondary(pred.1.file, pred.1.span, format!("this is {p}"))
                .with_secondary(target.1.file, target.1.span, format!("this is {t}"))
                .with_note("shapes must be equal after trailing 1-axes are dropped ([N, 1] against [N] is fine)"),
            );
            return false;
        }
        true
    }
}

/// The arrays a data call yields, with where each is named.
fn data_arrays(
    f: &TrainFn,
    source: &SourceDef,
    c: &Call,
    body: &Body,
    inputs: &[(String, TensorTy)],
) -> Vec<(String, Origin)> {
    match source.yields {
        Yields::EveryInput | Yields::Declared => inputs.iter().map(|(n, _)| (n.clone(), body.origin(c.span))).collect(),
        Yields::Fixed(fixed) => fixed
            .iter()
            .map(|a| {
                let name = match a.option.and_then(|o| c.keyword(o)).map(|a| &a.value.kind) {
                    Some(ExprKind::Name(n)) => n.name.clone(),
                    Some(ExprKind::Str(s)) => s.clone(),
                    _ => a.default.to_string(),
                };
                (name, body.origin(c.span))
            })
            .collect(),
        Yields::Columns | Yields::Keys | Yields::Files => c
            .args
            .iter()
            .filter_map(|a| a.name.as_ref())
            .filter(|n| f.option(&n.name).is_none())
            .map(|n| (n.name.clone(), body.origin(n.span)))
            .collect(),
    }
}

fn drop_trailing_ones(ds: &[Dim]) -> Vec<Dim> {
    let mut v = ds.to_vec();
    while v.last().and_then(Dim::as_known) == Some(1) {
        v.pop();
    }
    v
}

fn same_dims(a: &[Dim], b: &[Dim]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.compare(y) == Equality::Equal)
}

fn show_dims(ds: &[Dim], elem: ElemType) -> String {
    TensorTy::new(elem, ds.to_vec(), Origin::default()).to_string()
}
