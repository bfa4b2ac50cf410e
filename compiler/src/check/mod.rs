//! The static shape checker.
//!
//! Models are checked by abstract interpretation over [`Value`]s: every
//! expression evaluates to a shape (or a number, a layer value, …). Blocks are
//! instantiated at each call site with their pattern dims unified against the
//! arguments; blocks nobody calls are checked once generically. A value that
//! caused an error becomes [`Value::Unknown`], which never reports again, so
//! one run finds every independent error.

mod data_dims;
mod expr;
pub(crate) mod facts;
mod init;
mod report;
pub mod train;

pub use data_dims::DataDim;

use std::cell::Cell;
use std::collections::{HashMap, HashSet};

use nnc_syntax::ast::{self, BlockDecl, ElemType, Item, ModelDecl, Stmt, TypeExpr};
use nnc_syntax::{Code, Diagnostic, FileId, Span};

use crate::dims::{Dim, Equality};
use crate::graph::{Graph, NodeKind};
use crate::layers::ParamSpec;
use crate::program::{Loader, Program};
use crate::types::{Origin, TensorTy, Value};

/// Options of a check run.
#[derive(Clone, Debug, Default)]
pub struct CheckOptions {
    /// `--set name=value` overrides of model parameters.
    pub overrides: Vec<(String, SetValue)>,
    /// Types of data arrays known from loaded data (name, element type,
    /// per-sample dims): arrays that feed no model input get these.
    pub data_types: Vec<(String, ElemType, Vec<i64>)>,
}

/// A `--set` value as written: integers stay exact (`2^53 + 1` is not
/// rounded), anything else is a float.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum SetValue {
    /// An integer, kept exact.
    Int(i64),
    /// Anything with a fraction or exponent.
    Float(f64),
}

/// One layer application, for summaries and hovers.
#[derive(Clone, Debug)]
pub struct LayerRecord {
    /// Deterministic name (`features.conv2d_1`); parameters are `name.param`.
    pub name: String,
    /// The layer's name in the layer table (`dense`, `conv2d`…).
    pub layer: &'static str,
    /// The layer's result (a tensor, or a tuple for stateful layers).
    pub output: Value,
    /// Its parameters, with full names, shapes and initialisers.
    pub params: Vec<ParamSpec>,
    /// Where the layer was applied in the source.
    pub origin: Origin,
    /// The block calls this layer was made in, outermost first. `nnc summary` groups the rows
    /// of one call under it.
    pub blocks: Vec<BlockCall>,
}

/// One block instantiation, as the layers made in it record it.
#[derive(Clone, Debug)]
pub struct BlockCall {
    /// The name prefix of the call's layers (`conv3.bottleneck_2`), which includes the
    /// enclosing calls' prefixes: it tells calls apart.
    pub prefix: String,
    /// The name of the block called.
    pub block: String,
    /// What the call returned.
    pub output: Value,
}

/// What the checker learned about one model.
#[derive(Clone, Debug)]
pub struct ModelInfo {
    /// The model's name.
    pub name: String,
    /// The file declaring it.
    pub file: FileId,
    /// The whole `model` declaration.
    pub span: Span,
    /// Its `///` doc comment, if any.
    pub doc: Option<String>,
    /// Its `input`s with their types, in declaration order.
    pub inputs: Vec<(String, TensorTy)>,
    /// Its `output`s with their values, in declaration order.
    pub outputs: Vec<(String, Value)>,
    /// Every layer application, in evaluation order (blocks expanded).
    pub layers: Vec<LayerRecord>,
    /// Every input, `let` and output of the model body, in source order.
    pub bindings: Vec<(String, Value)>,
    /// The dataflow of the model (tensors in `inputs`/`outputs` refer to it).
    pub graph: Graph,
}

/// The inferred value of a binding or a pipe stage, for editors.
#[derive(Clone, Debug)]
pub struct TypeHint {
    /// The source span the hint belongs to (a binding's name, a pipe stage).
    pub origin: Origin,
    /// The inferred value (shape and element type, or a scalar).
    pub value: Value,
    /// `let`/`output`/`input` name, or `None` for a pipe stage.
    pub binding: Option<String>,
}

/// Everything `check` found about a program.
#[derive(Default)]
pub struct CheckResult {
    /// Errors and warnings (lints included), in the order found.
    pub diagnostics: Vec<Diagnostic>,
    /// One entry per model that checked (a model with errors may be missing).
    pub models: Vec<ModelInfo>,
    /// Inferred types for editor inlay hints and hovers.
    pub hints: Vec<TypeHint>,
    /// One entry per `train` block, for the training runtime.
    pub trains: Vec<train::TrainInfo>,
    /// What the lints need from the checker (see [`facts`]); the warnings are in `diagnostics`.
    pub(crate) facts: Vec<facts::Fact>,
}

/// Checks every declaration of a loaded program.
pub fn check(program: &Program, loader: &dyn Loader, options: &CheckOptions) -> CheckResult {
    let mut c = Checker::new(program, options);
    c.loader = Some(loader);
    c.collect_items();
    c.check_all();
    let mut diagnostics = program.diagnostics.clone();
    diagnostics.append(&mut c.diags);
    let mut result = CheckResult { diagnostics, models: c.models, hints: c.hints, trains: c.trains, facts: c.facts };
    // Warnings come from the lint pass, over the checked result (ARCHITECTURE.md, "Lints").
    let mut warnings = crate::lint::run(program, &result);
    result.diagnostics.append(&mut warnings);
    result.diagnostics.sort_by_key(|d| (d.primary.file, d.primary.span.start, d.code));
    result
}

struct DimDef {
    value: Option<Dim>,
    origin: Origin,
}

pub(crate) struct Checker<'p> {
    program: &'p Program,
    options: &'p CheckOptions,
    diags: Vec<Diagnostic>,
    /// Facts for the lint pass (the checker itself emits no warnings).
    pub(crate) facts: Vec<facts::Fact>,
    /// Facts already recorded: a block called many times records its facts once (the first
    /// call's, as `report` keeps the first of equal diagnostics), so they stay bounded.
    recorded: HashSet<(Origin, facts::FactKind)>,
    reported: HashSet<(Code, FileId, Span, String)>,
    dims: HashMap<String, DimDef>,
    models: Vec<ModelInfo>,
    model_decls: HashMap<String, (&'p ModelDecl, FileId)>,
    block_decls: HashMap<String, (&'p BlockDecl, FileId)>,
    called_blocks: HashSet<String>,
    /// Blocks and models being instantiated (recursion guard).
    active: Vec<String>,
    hints: Vec<TypeHint>,
    /// Hints are recorded only while checking top-level declarations of
    /// user files, not for each block instantiation.
    record_hints: bool,
    loader: Option<&'p dyn Loader>,
    /// `help:` notes of layers that succeeded but looked suspicious (NCHW
    /// input), keyed by the layer call: shown if a later error involves
    /// a dim that call produced.
    pub(crate) deferred_help: HashMap<Origin, Vec<String>>,
    /// The typed graph of the model or train block being checked.
    pub(crate) graph: Graph,
    /// Unbound dims a data source decides at run time (`text` binds `V`).
    pub(crate) data_bound_dims: HashSet<String>,
    trains: Vec<train::TrainInfo>,
    /// Layer applications and block instantiations so far, over the whole check
    /// (`Checker::spend`): block calls unroll, so a file can describe an exponential network.
    work: usize,
}

/// Most layer applications plus block instantiations one check may make (E0412).
pub(crate) const MAX_CHECK_WORK: usize = 1_000_000;

/// A name bound in a body.
#[derive(Clone, Debug)]
pub(crate) struct Binding {
    pub value: Value,
    pub origin: Origin,
    pub used: Cell<bool>,
    pub kind: BindingKind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BindingKind {
    Input,
    Let,
    Param,
    Output,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BodyKind {
    Model,
    Block,
    Train,
}

/// The state of one body being checked (a model, a block instantiation or a
/// train block).
pub(crate) struct Body {
    pub file: FileId,
    pub kind: BodyKind,
    pub scope: HashMap<String, Binding>,
    /// Dim names visible in types: file dims (models) or pattern dims (blocks).
    pub pattern_dims: HashMap<String, Dim>,
    /// Whether file-level dims are visible (not in blocks).
    pub file_dims_visible: bool,
    /// Name prefix for layers (`r.` inside a block called as `let r = …`).
    pub prefix: String,
    /// The binding being defined, for automatic layer names.
    pub binding: String,
    pub counters: HashMap<String, usize>,
    pub layers: Vec<LayerRecord>,
    /// Inside `frozen`: parameters created are not trainable.
    pub frozen: bool,
    /// A block checked without a call: dims that cannot be shown equal are accepted.
    pub generic: bool,
    pub returned: Option<(Value, Origin)>,
    /// Bindings whose value depends on an input (for W0003).
    pub from_inputs: HashSet<String>,
    /// Unknown names are silently unknown: the scope is incomplete because
    /// of an error already reported (a train block whose model is invalid).
    pub incomplete_scope: bool,
}

impl Body {
    pub fn new(file: FileId, kind: BodyKind) -> Body {
        Body {
            file,
            kind,
            scope: HashMap::new(),
            pattern_dims: HashMap::new(),
            file_dims_visible: kind != BodyKind::Block,
            prefix: String::new(),
            binding: String::new(),
            counters: HashMap::new(),
            layers: Vec::new(),
            frozen: false,
            generic: false,
            returned: None,
            from_inputs: HashSet::new(),
            incomplete_scope: false,
        }
    }
    /// Records that `names` depend on an input if `e` mentions one that does.
    fn track_inputs(&mut self, names: &[&str], e: &ast::Expr) {
        let mut refs = Vec::new();
        referenced_names(e, &mut refs);
        if refs.iter().any(|r| self.from_inputs.contains(r)) {
            self.from_inputs.extend(names.iter().map(|n| n.to_string()));
        }
    }
    pub fn origin(&self, span: Span) -> Origin {
        Origin { file: self.file, span }
    }
    pub fn bind(&mut self, name: &str, value: Value, origin: Origin, kind: BindingKind) {
        self.scope.insert(name.to_string(), Binding { value, origin, used: Cell::new(false), kind });
    }
}

impl<'p> Checker<'p> {
    fn new(program: &'p Program, options: &'p CheckOptions) -> Checker<'p> {
        Checker {
            program,
            options,
            diags: Vec::new(),
            reported: HashSet::new(),
            facts: Vec::new(),
            recorded: HashSet::new(),
            dims: HashMap::new(),
            models: Vec::new(),
            model_decls: HashMap::new(),
            block_decls: HashMap::new(),
            called_blocks: HashSet::new(),
            active: Vec::new(),
            hints: Vec::new(),
            record_hints: false,
            loader: None,
            deferred_help: HashMap::new(),
            graph: Graph::default(),
            trains: Vec::new(),
            data_bound_dims: HashSet::new(),
            work: 0,
        }
    }

    /// Counts one unit of checking work (a layer application, a block instantiation);
    /// `false`, after reporting E0412 once at `at`, when the check's bound is spent.
    pub(crate) fn spend(&mut self, at: Origin) -> bool {
        self.work = self.work.saturating_add(1);
        if self.work <= MAX_CHECK_WORK {
            return true;
        }
        if self.work == MAX_CHECK_WORK + 1 {
            self.report(
                Diagnostic::new(
                    Code::NetworkTooLarge,
                    at.file,
                    at.span,
                    format!("this call makes the network larger than {MAX_CHECK_WORK} layers"),
                )
                .with_label("checking stops here")
                .with_note("every block call and every `repeat` of a block is checked as a copy of its layers"),
            );
        }
        false
    }

    pub(crate) fn report(&mut self, d: Diagnostic) {
        let key = (d.code, d.primary.file, d.primary.span, d.message.clone());
        if self.reported.insert(key) {
            self.diags.push(d);
        }
    }

    /// Records a fact for the lint pass.
    pub(crate) fn record(&mut self, at: Origin, kind: facts::FactKind) {
        if self.recorded.insert((at, kind.clone())) {
            self.facts.push(facts::Fact { at, kind, calls: Vec::new() });
        }
    }

    pub(crate) fn source(&self, o: Origin) -> &'p str {
        let f = self.program.file(o.file);
        f.text.get(o.span.range()).unwrap_or("")
    }

    /// Registers dims, models and blocks of every file, reporting duplicates.
    fn collect_items(&mut self) {
        let mut seen: HashMap<String, Origin> = HashMap::new();
        let program = self.program;
        for f in &program.files {
            for item in &f.ast.items {
                match item {
                    Item::Dim(d) => {
                        for def in &d.dims {
                            let origin = Origin { file: f.id, span: def.name.span };
                            let value = def.value.as_ref().map(|e| self.const_dim(e, f.id));
                            if let Some(prev) = self.dims.get(&def.name.name) {
                                // Repeating an identical `dim` is allowed (docs/src/decisions.md).
                                let same = match (&prev.value, &value) {
                                    (None, None) => true,
                                    (Some(a), Some(b)) => a == b,
                                    _ => false,
                                };
                                if !same {
                                    let prev_origin = prev.origin;
                                    self.duplicate(&def.name.name, origin, prev_origin, "dim");
                                }
                                continue;
                            }
                            if let Some(&prev) = seen.get(&def.name.name) {
                                self.duplicate(&def.name.name, origin, prev, "dim");
                                continue;
                            }
                            self.dims.insert(def.name.name.clone(), DimDef { value, origin });
                        }
                    }
                    Item::Model(m) => {
                        let origin = Origin { file: f.id, span: m.name.span };
                        if let Some(prev) = seen.insert(m.name.name.clone(), origin) {
                            self.duplicate(&m.name.name, origin, prev, "model");
                        } else {
                            self.model_decls.insert(m.name.name.clone(), (m, f.id));
                        }
                    }
                    Item::Block(b) => {
                        let origin = Origin { file: f.id, span: b.name.span };
                        if let Some(prev) = seen.insert(b.name.name.clone(), origin) {
                            self.duplicate(&b.name.name, origin, prev, "block");
                        } else {
                            self.block_decls.insert(b.name.name.clone(), (b, f.id));
                        }
                    }
                    Item::Train(t) => {
                        // Sources with a vocabulary (`text`, `sentences`) bind an unbound dim to its size:
                        // the one `vocab = W` names, else `V`. Layers may take it as an option
                        // (`one_hot(tokens, V)`), so it is known before models are checked.
                        for i in &t.items {
                            let ast::TrainItem::Field { key, value } = i else { continue };
                            let ast::ExprKind::Call(c) = &value.kind else { continue };
                            if !matches!(key.name.as_str(), "data" | "validate" | "test")
                                || crate::schema::lookup_source(&c.callee.name)
                                    .is_none_or(|s| s.vocab == crate::schema::Vocab::None)
                            {
                                continue;
                            }
                            let dim = match c.keyword("vocab").map(|a| &a.value.kind) {
                                Some(ast::ExprKind::Name(n)) => n.name.clone(),
                                _ => "V".to_string(),
                            };
                            self.data_bound_dims.insert(dim);
                        }
                    }
                    Item::Use(_) => {}
                }
            }
        }
        self.data_bound_dims.retain(|d| self.dims.get(d).is_some_and(|def| def.value.is_none()));
    }

    fn duplicate(&mut self, name: &str, origin: Origin, prev: Origin, what: &str) {
        self.report(
            Diagnostic::new(Code::DuplicateDefinition, origin.file, origin.span, format!("`{name}` is defined twice"))
                .with_label(format!("second {what} named `{name}`"))
                .with_secondary(prev.file, prev.span, "first defined here"),
        );
    }

    /// A top-level `dim T = 35` value: an integer expression of literals and earlier dims.
    fn const_dim(&mut self, e: &'p ast::Expr, file: FileId) -> Dim {
        let mut body = Body::new(file, BodyKind::Model);
        match self.eval_dim(&mut body, e) {
            Some(d) => d,
            None => Dim::Known(1),
        }
    }

    fn check_all(&mut self) {
        let program = self.program;
        // Models and trains of user files; blocks are checked when called.
        for f in &program.files {
            self.record_hints = !f.is_std;
            for item in &f.ast.items {
                match item {
                    Item::Model(m) if self.model_decls.get(&m.name.name).is_some_and(|(d, _)| std::ptr::eq(*d, m)) => {
                        if let Some(info) = self.check_model(m, f.id, &[], None)
                            && !f.is_std
                        {
                            self.models.push(info);
                        }
                    }
                    Item::Train(t) if f.id == FileId(0) => {
                        let info = self.check_train(t, f.id);
                        self.trains.push(info);
                    }
                    _ => {}
                }
            }
        }
        // Blocks of user files that nothing called: check them generically.
        for f in &program.files {
            if f.is_std {
                continue;
            }
            self.record_hints = true;
            for item in &f.ast.items {
                if let Item::Block(b) = item
                    && !self.called_blocks.contains(&b.name.name)
                    && self.block_decls.get(&b.name.name).is_some_and(|(d, _)| std::ptr::eq(*d, b))
                {
                    self.check_block_generic(b, f.id);
                }
            }
        }
        self.record_hints = false;
    }

    pub(crate) fn hint(&mut self, origin: Origin, value: &Value, binding: Option<&str>) {
        if self.record_hints {
            self.hints.push(TypeHint { origin, value: value.clone(), binding: binding.map(str::to_string) });
        }
    }

    /// Checks a model with parameter overrides and (for model calls) given
    /// inputs. Returns what was learned, or `None` on recursion.
    pub(crate) fn check_model(
        &mut self,
        m: &'p ModelDecl,
        file: FileId,
        overrides: &[(String, Value)],
        inputs: Option<&HashMap<String, (Value, Origin)>>,
    ) -> Option<ModelInfo> {
        if self.active.contains(&m.name.name) {
            return None;
        }
        self.active.push(m.name.name.clone());
        let mut body = Body::new(file, BodyKind::Model);
        for p in &m.params {
            let origin = body.origin(p.name.span);
            let cli = self.options.overrides.iter().find(|(k, _)| *k == p.name.name).map(|(_, v)| *v);
            let cli = cli.map(|v| self.set_value(&mut body, p, v));
            let given = overrides.iter().find(|(k, _)| *k == p.name.name).map(|(_, v)| v.clone());
            let value = match (given, cli, &p.default) {
                (Some(v), _, _) | (None, Some(v), _) => v,
                (None, None, Some(e)) => self.eval(&mut body, e),
                (None, None, None) => {
                    self.report(
                        Diagnostic::new(
                            Code::MissingArgument,
                            file,
                            p.span,
                            format!("model parameter `{}` has no default", p.name.name),
                        )
                        .with_label("give it a default: `name = value`"),
                    );
                    Value::Unknown
                }
            };
            body.bind(&p.name.name, value, origin, BindingKind::Param);
        }
        let was_recording = self.record_hints;
        if inputs.is_some() {
            self.record_hints = false;
        }
        let saved_inputs = inputs.cloned();
        let mut info = ModelInfo {
            name: m.name.name.clone(),
            file,
            span: m.span,
            doc: m.doc.clone(),
            inputs: Vec::new(),
            outputs: Vec::new(),
            layers: Vec::new(),
            bindings: Vec::new(),
            graph: Graph::default(),
        };
        // A top-level instantiation gets a graph of its own; a model called
        // from a train block adds its nodes to the caller's graph.
        let outer_graph = inputs.is_none().then(|| std::mem::take(&mut self.graph));
        self.check_stmts(&mut body, &m.body, &mut info, saved_inputs.as_ref());
        if let Some(outer) = outer_graph {
            info.graph = std::mem::replace(&mut self.graph, outer);
        }
        let mut bindings: Vec<(&String, &Binding)> =
            body.scope.iter().filter(|(_, b)| b.kind != BindingKind::Param).collect();
        bindings.sort_by_key(|(_, b)| b.origin.span.start);
        info.bindings = bindings.into_iter().map(|(n, b)| (n.clone(), b.value.clone())).collect();
        if info.outputs.is_empty() {
            self.report(
                Diagnostic::new(
                    Code::MissingOutput,
                    file,
                    m.name.span,
                    format!("model `{}` has no output", m.name.name),
                )
                .with_label("declare at least one `output`"),
            );
        }
        self.record_unused(&body);
        self.record_hints = was_recording;
        info.layers = std::mem::take(&mut body.layers);
        // Each layer's count fits (`layers::run_rule`); their sum must too.
        let mut counts = info.layers.iter().flat_map(|l| &l.params).filter_map(ParamSpec::count);
        if counts.try_fold(0i64, i64::checked_add).is_none() {
            let msg = format!("model `{}` has more than 2^63 − 1 parameters", m.name.name);
            self.report(
                Diagnostic::new(Code::SizeOverflow, file, m.name.span, msg)
                    .with_label("its parameter count does not fit in 64 bits"),
            );
        }
        self.active.pop();
        Some(info)
    }

    /// The value of `--set name=v` for parameter `p`. An integer parameter
    /// (its default is an integer, or it is declared `int`) takes only
    /// integers: `2.5` or `1e30` is an error at the parameter, not a value
    /// rounded or saturated into range. `128.0` is 128.
    fn set_value(&mut self, body: &mut Body, p: &'p ast::Param, v: SetValue) -> Value {
        let f = match v {
            SetValue::Int(i) => return Value::Int(Dim::Known(i)),
            SetValue::Float(f) => f,
        };
        let declared_int = matches!(p.ty, Some(TypeExpr::Scalar(ast::ScalarType::Int, _)));
        let is_int = declared_int || p.default.as_ref().is_some_and(|e| matches!(self.eval(body, e), Value::Int(_)));
        if !is_int {
            return Value::Float(f);
        }
        // Integers up to 2^53 are exact in an f64.
        if f.fract() == 0.0 && f.abs() <= 9_007_199_254_740_992.0 {
            return Value::Int(Dim::Known(f as i64));
        }
        let origin = body.origin(p.name.span);
        let name = &p.name.name;
        let msg = format!("`--set {name}={f:?}`: `{name}` takes an integer");
        self.report(
            Diagnostic::new(Code::WrongArgumentType, origin.file, origin.span, msg)
                .with_label(format!("`{name}` is an integer parameter"))
                .with_help("give a whole number that fits in 64 bits"),
        );
        Value::Unknown
    }

    /// Records the unused `let`s of a concrete body for the lint W0001 (`lint::unused_binding`).
    fn record_unused(&mut self, body: &Body) {
        if body.generic {
            return;
        }
        let mut unused: Vec<(&String, &Binding)> = body
            .scope
            .iter()
            .filter(|(n, b)| b.kind == BindingKind::Let && !b.used.get() && !n.starts_with('_'))
            .collect();
        unused.sort_by_key(|(_, b)| b.origin.span.start);
        for (name, b) in unused {
            self.record(b.origin, facts::FactKind::UnusedBinding { name: name.clone() });
        }
    }

    /// Checks statements of a model or block body. `info` collects inputs
    /// and outputs; `given` feeds inputs on a model call.
    // long: one match arm per statement kind, sharing the body's bindings; kept whole while other work edits
    // this file.
    pub(crate) fn check_stmts(
        &mut self,
        body: &mut Body,
        stmts: &'p [Stmt],
        info: &mut ModelInfo,
        given: Option<&HashMap<String, (Value, Origin)>>,
    ) {
        for stmt in stmts {
            match stmt {
                Stmt::Input { name, ty, span } => {
                    if body.kind != BodyKind::Model {
                        self.report(
                            Diagnostic::new(
                                Code::ReturnOutsideBlock,
                                body.file,
                                *span,
                                "`input` is only allowed in models",
                            )
                            .with_label("blocks take their tensors as parameters"),
                        );
                        continue;
                    }
                    let origin = body.origin(name.span);
                    let declared = self.eval_type(body, ty);
                    let value = match (given.and_then(|g| g.get(&name.name)), &declared) {
                        (Some((v, at)), Value::Tensor(want)) => {
                            self.unify_given(body, v, *at, want, ty, &name.name);
                            // The caller's tensor flows in (with its graph node).
                            match v {
                                Value::Tensor(_) => v.clone(),
                                _ => declared.clone(),
                            }
                        }
                        (_, Value::Tensor(_)) => self.graph.add(
                            NodeKind::Input { name: name.name.clone() },
                            declared.clone(),
                            body.origin(name.span),
                        ),
                        _ => declared.clone(),
                    };
                    if self.is_duplicate(body, &name.name, origin) {
                        continue;
                    }
                    if let Value::Tensor(t) = &value {
                        info.inputs.push((name.name.clone(), t.clone()));
                    }
                    self.hint(origin, &value, Some(&name.name));
                    body.from_inputs.insert(name.name.clone());
                    body.bind(&name.name, value, origin, BindingKind::Input);
                }
                Stmt::Let(l) => self.check_let(body, l),
                Stmt::Output { name, ty, value, span } => {
                    if body.kind != BodyKind::Model {
                        self.report(
                            Diagnostic::new(
                                Code::ReturnOutsideBlock,
                                body.file,
                                *span,
                                "`output` is only allowed in models",
                            )
                            .with_label("a block ends with `return`"),
                        );
                        continue;
                    }
                    let origin = body.origin(name.span);
                    let v = match value {
                        Some(e) => {
                            body.binding = name.name.clone();
                            let v = self.eval(body, e);
                            if self.is_duplicate(body, &name.name, origin) {
                                continue;
                            }
                            body.bind(&name.name, v.clone(), origin, BindingKind::Output);
                            v
                        }
                        None => match body.scope.get(&name.name) {
                            Some(b) => {
                                b.used.set(true);
                                b.value.clone()
                            }
                            None => {
                                self.undefined(body, &name.name, origin);
                                Value::Unknown
                            }
                        },
                    };
                    if let Some(ty) = ty {
                        let at = value.as_ref().map_or(origin, |e| body.origin(e.span));
                        self.check_annotation(body, &v, at, ty);
                    }
                    if let Some(e) = value {
                        body.track_inputs(&[&name.name], e)
                    }
                    if !body.from_inputs.contains(&name.name)
                        && !info.inputs.is_empty()
                        && given.is_none()
                        && !v.is_unknown()
                    {
                        let inputs = info.inputs.iter().map(|(n, _)| n.clone()).collect();
                        let fact = facts::FactKind::OutputWithoutInputs { name: name.name.clone(), inputs };
                        self.record(Origin { file: body.file, span: name.span }, fact);
                    }
                    self.hint(origin, &v, Some(&name.name));
                    info.outputs.push((name.name.clone(), v));
                }
                Stmt::Return { value, span } => {
                    if body.kind != BodyKind::Block {
                        self.report(
                            Diagnostic::new(
                                Code::ReturnOutsideBlock,
                                body.file,
                                *span,
                                "`return` is only allowed in blocks",
                            )
                            .with_label("a model declares `output`s"),
                        );
                        continue;
                    }
                    body.binding = String::new();
                    let v = self.eval(body, value);
                    body.returned = Some((v, body.origin(value.span)));
                }
                Stmt::If { cond, then_body, else_body, .. } => {
                    let c = self.eval(body, cond);
                    match c {
                        Value::Bool(true) => self.check_stmts(body, then_body, info, given),
                        Value::Bool(false) => self.check_stmts(body, else_body, info, given),
                        Value::Unknown if body.generic => {
                            // Unknown in a generic check: both branches must make sense. Each
                            // starts from the scope before the `if` (a call takes one of them, so
                            // `let e` in both is no duplicate); after it, either one's names.
                            let before = body.scope.clone();
                            self.check_stmts(body, then_body, info, given);
                            let after_then = std::mem::replace(&mut body.scope, before);
                            let returned = body.returned.take();
                            self.check_stmts(body, else_body, info, given);
                            for (name, binding) in after_then {
                                body.scope.entry(name).or_insert(binding);
                            }
                            if body.returned.is_none() {
                                body.returned = returned;
                            }
                        }
                        Value::Unknown => {}
                        other => {
                            self.report(
                                Diagnostic::new(
                                    Code::NotCompileTime,
                                    body.file,
                                    cond.span,
                                    "`if` needs a compile-time boolean",
                                )
                                .with_label(format!("this is {}", other.kind_name())),
                            );
                        }
                    }
                }
            }
        }
    }

    fn is_duplicate(&mut self, body: &Body, name: &str, origin: Origin) -> bool {
        if let Some(prev) = body.scope.get(name)
            && (prev.kind != BindingKind::Param || body.kind != BodyKind::Train)
        {
            let prev = prev.origin;
            self.duplicate(name, origin, prev, "binding");
            return true;
        }
        false
    }

    pub(crate) fn check_let(&mut self, body: &mut Body, l: &'p ast::LetStmt) {
        let names = l.pattern.names();
        body.binding = names.first().map(|n| n.name.clone()).unwrap_or_default();
        let v = self.eval(body, &l.value);
        let value_origin = body.origin(l.value.span);
        let bound: Vec<&str> = names.iter().map(|n| n.name.as_str()).collect();
        body.track_inputs(&bound, &l.value);
        if let Some(ty) = &l.ty {
            self.check_annotation(body, &v, value_origin, ty);
        }
        match &l.pattern {
            ast::Pattern::Name(n) => {
                let origin = body.origin(n.span);
                // A train block may rebind a data array (`let images = images / 255`).
                let rebinding_data = body.kind == BodyKind::Train;
                if !rebinding_data && self.is_duplicate(body, &n.name, origin) {
                    return;
                }
                self.hint(origin, &v, Some(&n.name));
                body.bind(&n.name, v, origin, BindingKind::Let);
            }
            ast::Pattern::Tuple(ns, span) => {
                let joined: Vec<&str> = ns.iter().map(|n| n.name.as_str()).collect();
                self.hint(body.origin(*span), &v, Some(&joined.join(", ")));
                let parts = match v {
                    Value::Tuple(parts) if parts.len() == ns.len() => parts,
                    Value::Unknown => vec![Value::Unknown; ns.len()],
                    other => {
                        let found = match &other {
                            Value::Tuple(p) => format!("a tuple of {}", p.len()),
                            o => o.kind_name().to_string(),
                        };
                        self.report(
                            Diagnostic::new(
                                Code::TupleArity,
                                body.file,
                                *span,
                                format!(
                                    "expected {} names for {found}",
                                    match &other {
                                        Value::Tuple(p) => p.len(),
                                        _ => 1,
                                    }
                                ),
                            )
                            .with_label(format!("{} names here", ns.len()))
                            .with_secondary(body.file, l.value.span, format!("this is {found}: {other}"))
                            .with_note("lstm(…, state = true) gives (o, h, c); gru and simple_rnn give (o, h)"),
                        );
                        vec![Value::Unknown; ns.len()]
                    }
                };
                for (n, part) in ns.iter().zip(parts) {
                    let origin = body.origin(n.span);
                    if self.is_duplicate(body, &n.name, origin) {
                        continue;
                    }
                    self.hint(origin, &part, Some(&n.name));
                    body.bind(&n.name, part, origin, BindingKind::Let);
                }
            }
        }
    }

    pub(crate) fn undefined(&mut self, body: &Body, name: &str, origin: Origin) {
        if body.incomplete_scope {
            return;
        }
        let mut candidates: Vec<&str> = body.scope.keys().map(String::as_str).collect();
        if body.file_dims_visible {
            candidates.extend(self.dims.keys().map(String::as_str));
        }
        let suggestion = crate::layers::suggest(name, candidates);
        let (code, label) = if body.kind == BodyKind::Train {
            (Code::UndefinedNameInTrain, "not a `let` of this train block, a data array, or a model output or input")
        } else {
            (Code::UndefinedName, "not defined")
        };
        let mut d = Diagnostic::new(code, origin.file, origin.span, format!("cannot find `{name}` in this scope"))
            .with_label(label);
        if let Some(s) = suggestion {
            d = d.with_help(format!("did you mean `{s}`?"));
        }
        self.report(d);
    }

    /// Evaluates a type annotation to a tensor type (or tuple of them).
    pub(crate) fn eval_type(&mut self, body: &mut Body, ty: &'p TypeExpr) -> Value {
        match ty {
            TypeExpr::Tensor { elem, dims, span } => {
                let mut out = Vec::new();
                let mut origins = Vec::new();
                for d in dims {
                    let at = body.origin(d.span);
                    match self.eval_dim(body, d) {
                        Some(v) if !self.positive_size(&v, at) => return Value::Unknown,
                        Some(v) => out.push(v),
                        None => return Value::Unknown,
                    }
                    origins.push(at);
                }
                if Dim::product(&out).is_err() {
                    let at = body.origin(*span);
                    let msg = "the element count of this type does not fit in 64 bits";
                    self.report(
                        Diagnostic::new(Code::SizeOverflow, at.file, at.span, msg)
                            .with_label("the product of these sizes is larger than 2^63 − 1"),
                    );
                    return Value::Unknown;
                }
                Value::Tensor(TensorTy { elem: *elem, dims: out, origins, node: None })
            }
            TypeExpr::Tuple(parts, _) => Value::Tuple(parts.iter().map(|p| self.eval_type(body, p)).collect()),
            TypeExpr::Scalar(..) => Value::Unknown,
        }
    }

    /// Reports a known axis size below 1 (`[N, -4]`); symbolic sizes pass.
    fn positive_size(&mut self, d: &Dim, at: Origin) -> bool {
        match d.as_known() {
            Some(v) if v < 1 => {
                self.report(
                    Diagnostic::new(Code::NonPositiveSize, at.file, at.span, format!("axis size {v} is not positive"))
                        .with_label("tensor axes have at least 1 element"),
                );
                false
            }
            _ => true,
        }
    }

    /// Proves an inferred value equals its annotation.
    pub(crate) fn check_annotation(&mut self, body: &mut Body, v: &Value, at: Origin, ty: &'p TypeExpr) {
        let want = self.eval_type(body, ty);
        self.compare_to_type(body, v, at, &want, ty.span(), "annotation");
    }

    fn compare_to_type(&mut self, body: &Body, v: &Value, at: Origin, want: &Value, ty_span: Span, what: &str) {
        match (v, want) {
            (Value::Unknown, _) | (_, Value::Unknown) => {}
            (Value::Tensor(got), Value::Tensor(want)) => {
                if let Some(d) = self.tensor_mismatch(body, got, at, want, body.origin(ty_span), what) {
                    self.report(d);
                }
            }
            (Value::Tuple(gs), Value::Tuple(ws)) if gs.len() == ws.len() => {
                for (g, w) in gs.iter().zip(ws) {
                    self.compare_to_type(body, g, at, w, ty_span, what);
                }
            }
            (got, want) => {
                self.report(
                    Diagnostic::new(
                        Code::AnnotationMismatch,
                        at.file,
                        at.span,
                        format!("expected {want}, found {}", got.kind_name()),
                    )
                    .with_label(format!("this is {got}"))
                    .with_secondary(body.file, ty_span, format!("the {what} says {want}")),
                );
            }
        }
    }

    /// Compares an inferred tensor with an expected one; a diagnostic for the first difference.
    pub(crate) fn tensor_mismatch(
        &self,
        body: &Body,
        got: &TensorTy,
        at: Origin,
        want: &TensorTy,
        want_origin: Origin,
        what: &str,
    ) -> Option<Diagnostic> {
        if got.rank() != want.rank() {
            let mut d = Diagnostic::new(
                Code::AnnotationMismatch,
                at.file,
                at.span,
                format!("expected a tensor of rank {} {want}, found rank {} {got}", want.rank(), got.rank()),
            )
            .with_label(format!("this is {got}"))
            .with_secondary(want_origin.file, want_origin.span, format!("the {what} says {want}"));
            if got.rank() > want.rank() && want.rank() == 2 {
                d = d.with_help(
                    "`dense` applies to the last axis only: add `|> flatten` before it to get [N, features]",
                );
            }
            return Some(d);
        }
        if got.elem != want.elem {
            return Some(
                Diagnostic::new(Code::ElementTypeMismatch, at.file, at.span, format!("expected {want}, found {got}"))
                    .with_label(format!("this is {got}"))
                    .with_secondary(want_origin.file, want_origin.span, format!("the {what} says {want}")),
            );
        }
        for (axis, (g, w)) in got.dims.iter().zip(&want.dims).enumerate() {
            let eq = g.compare(w);
            if eq == Equality::Equal || (eq == Equality::Unknown && body.generic) {
                continue;
            }
            let how = if eq == Equality::Different { "differs" } else { "cannot be shown equal" };
            let mut d = Diagnostic::new(
                Code::AnnotationMismatch,
                at.file,
                at.span,
                format!("shape mismatch on axis {axis}: expected {w}, found {g} ({how})"),
            )
            .with_label(format!("this is {got}"))
            .with_secondary(
                want.origin_of(axis).file,
                want.origin_of(axis).span,
                format!("the {what} says {w}"),
            );
            let mut helps: Vec<&String> =
                got.origins.iter().filter_map(|o| self.deferred_help.get(o)).flatten().collect();
            helps.dedup();
            for h in helps {
                d.notes.push(h.clone());
            }
            let src = got.origin_of(axis);
            if src != at && src.span != want.origin_of(axis).span && !src.span.is_empty() {
                d = d.with_secondary(src.file, src.span, format!("{g} comes from here"));
            }
            let _ = self;
            return Some(d);
        }
        None
    }

    /// On a model call, checks a given input tensor against the declared input type.
    fn unify_given(&mut self, body: &Body, v: &Value, at: Origin, want: &TensorTy, ty: &TypeExpr, name: &str) {
        if let Value::Tensor(got) = v
            && let Some(mut d) =
                self.tensor_mismatch(body, got, at, want, body.origin(ty.span()), &format!("input `{name}`"))
        {
            d.code = if d.code == Code::AnnotationMismatch { Code::DataInputMismatch } else { d.code };
            self.report(d);
        }
    }

    /// Generic check of a block nobody calls: pattern dims stay symbolic.
    fn check_block_generic(&mut self, b: &'p BlockDecl, file: FileId) {
        let mut body = Body::new(file, BodyKind::Block);
        body.generic = true;
        for p in &b.params {
            let origin = body.origin(p.name.span);
            let v = match &p.ty {
                Some(ty @ TypeExpr::Tensor { .. }) => {
                    self.bind_pattern_names(&mut body, ty);
                    self.eval_type(&mut body, ty)
                }
                Some(TypeExpr::Scalar(ast::ScalarType::Int, _)) => {
                    let d = Dim::sym(&p.name.name);
                    body.pattern_dims.insert(p.name.name.clone(), d.clone());
                    Value::Int(d)
                }
                // The default as a call would bind it (`pad: mode = same` is a mode).
                _ => match &p.default {
                    Some(e) => self.param_default(file, e),
                    None => Value::Unknown,
                },
            };
            body.bind(&p.name.name, v, origin, BindingKind::Param);
        }
        self.active.push(b.name.name.clone());
        let mut info = empty_info(b.name.name.clone(), file, b.span);
        self.check_stmts(&mut body, &b.body, &mut info, None);
        self.active.pop();
        self.finish_block(&mut body, b);
    }

    /// Makes every name in a block parameter type a pattern dim.
    pub(crate) fn bind_pattern_names(&mut self, body: &mut Body, ty: &'p TypeExpr) {
        if let TypeExpr::Tensor { dims, .. } = ty {
            for d in dims {
                let mut names = Vec::new();
                collect_names(d, &mut names);
                for n in names {
                    if !body.pattern_dims.contains_key(&n) && !body.scope.contains_key(&n) {
                        body.pattern_dims.insert(n.clone(), Dim::sym(&n));
                    }
                }
            }
        }
    }

    /// Checks a block's `return` against its declared return type.
    pub(crate) fn finish_block(&mut self, body: &mut Body, b: &'p BlockDecl) -> Value {
        let Some((v, at)) = body.returned.take() else {
            self.report(
                Diagnostic::new(
                    Code::MissingOutput,
                    body.file,
                    b.name.span,
                    format!("block `{}` has no `return`", b.name.name),
                )
                .with_label("end the block with `return <expr>`"),
            );
            return Value::Unknown;
        };
        if let Some(ret) = &b.ret {
            let want = self.eval_type(body, ret);
            self.compare_to_type(body, &v, at, &want, ret.span(), "block's return type");
        }
        self.record_unused(body);
        v
    }
}

pub(crate) fn empty_info(name: String, file: FileId, span: Span) -> ModelInfo {
    ModelInfo {
        name,
        file,
        span,
        doc: None,
        inputs: Vec::new(),
        outputs: Vec::new(),
        layers: Vec::new(),
        bindings: Vec::new(),
        graph: Graph::default(),
    }
}

/// Names used in a dim expression (for pattern dims).
pub(crate) fn collect_names(e: &ast::Expr, out: &mut Vec<String>) {
    use ast::ExprKind as K;
    match &e.kind {
        K::Name(n) => out.push(n.name.clone()),
        K::Binary { lhs, rhs, .. } => {
            collect_names(lhs, out);
            collect_names(rhs, out);
        }
        K::Neg(x) => collect_names(x, out),
        K::Call(c) => {
            for a in &c.args {
                collect_names(&a.value, out);
            }
        }
        _ => {}
    }
}

/// Every plain name an expression mentions (not callees).
pub(crate) fn referenced_names(e: &ast::Expr, out: &mut Vec<String>) {
    use ast::ExprKind as K;
    match &e.kind {
        K::Name(n) => out.push(n.name.clone()),
        K::Call(c) => c.args.iter().for_each(|a| referenced_names(&a.value, out)),
        K::Pipe { input, stage } => {
            referenced_names(input, out);
            stage.args.iter().for_each(|a| referenced_names(&a.value, out));
        }
        K::Binary { lhs, rhs, .. } | K::Compare { lhs, rhs, .. } => {
            referenced_names(lhs, out);
            referenced_names(rhs, out);
        }
        K::Range { start, end } => {
            referenced_names(start, out);
            referenced_names(end, out);
        }
        K::Neg(x) | K::Frozen(x) => referenced_names(x, out),
        K::List(xs) | K::Tuple(xs) => xs.iter().for_each(|x| referenced_names(x, out)),
        K::Map(kv) => kv.iter().for_each(|(_, v)| referenced_names(v, out)),
        K::Index { base, .. } => referenced_names(base, out),
        K::Int(_) | K::Float(_) | K::Str(_) | K::Bool(_) | K::TensorType(_) | K::Error => {}
    }
}

/// Element type names for messages.
pub(crate) fn elem_name(e: ElemType) -> &'static str {
    match e {
        ElemType::Float => "float",
        ElemType::Int => "int",
    }
}
