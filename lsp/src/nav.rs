//! Names and what they refer to, for go to definition, find references,
//! document symbols and hover.
//!
//! The index resolves names the way the checker does (docs/src/reference/declarations.md and docs/src/decisions.md):
//! in a model, its parameters, inputs and `let`s, then file dims; in a block,
//! its parameters and `let`s, then the pattern dims of its signature; in a
//! train block, its `let`s, then the data arrays, then the model's outputs
//! and inputs. Calls name blocks and models; keywords of a block or model
//! call name its parameters or inputs. Built from syntax alone, so it works
//! on files with shape errors, and in one pass over the program.

use std::collections::HashMap;

use nnc_compiler::Program;
use nnc_compiler::schema::lookup_fn;
use nnc_syntax::ast::*;
use nnc_syntax::{FileId, Span};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DefKind {
    Model,
    Block,
    Train,
    Dim,
    /// A dim name bound by a block's signature (`x: [N, H, W, C]`).
    PatternDim,
    Param,
    Input,
    Let,
    Output,
    /// A named array of a train block's data source (`csv(…, x = …)`).
    DataArray,
    Step,
}

impl DefKind {
    pub fn describe(self) -> &'static str {
        match self {
            DefKind::Model => "model",
            DefKind::Block => "block",
            DefKind::Train => "train",
            DefKind::Dim => "dim",
            DefKind::PatternDim => "pattern dim",
            DefKind::Param => "parameter",
            DefKind::Input => "input",
            DefKind::Let => "let",
            DefKind::Output => "output",
            DefKind::DataArray => "data array",
            DefKind::Step => "step",
        }
    }
}

#[derive(Clone, Debug)]
pub struct Def {
    pub name: String,
    pub kind: DefKind,
    pub file: FileId,
    /// The name where it is defined.
    pub span: Span,
    /// The whole declaration or statement.
    pub decl: Span,
    /// The model, block or train block it belongs to.
    pub owner: Option<usize>,
}

/// A name in the source and the definition it refers to (definitions are
/// occurrences of themselves).
#[derive(Clone, Copy, Debug)]
pub struct Occurrence {
    pub file: FileId,
    pub span: Span,
    pub def: usize,
}

/// A `use` declaration and the file it loaded.
#[derive(Clone, Copy, Debug)]
pub struct UseLink {
    pub file: FileId,
    pub span: Span,
    pub target: FileId,
}

#[derive(Default)]
pub struct Index {
    pub defs: Vec<Def>,
    pub occurrences: Vec<Occurrence>,
    pub uses: Vec<UseLink>,
    /// Occurrences of each file, sorted by start (for lookups by position).
    by_file: HashMap<FileId, Vec<usize>>,
}

impl Index {
    pub fn build(program: &Program) -> Index {
        let mut b = Builder {
            program,
            index: Index::default(),
            globals: HashMap::new(),
            dims: HashMap::new(),
            def_at: HashMap::new(),
            members: HashMap::new(),
        };
        b.run();
        let mut index = b.index;
        for (i, o) in index.occurrences.iter().enumerate() {
            index.by_file.entry(o.file).or_default().push(i);
        }
        for v in index.by_file.values_mut() {
            let occ = &index.occurrences;
            v.sort_by_key(|&i| (occ[i].span.start, occ[i].span.end));
        }
        index
    }

    /// The innermost occurrence at a byte offset (the end of a name counts,
    /// so a cursor right after it still finds it).
    pub fn at(&self, file: FileId, offset: usize) -> Option<&Occurrence> {
        let ids = self.by_file.get(&file)?;
        // Names do not nest; the candidates start at or before `offset`.
        let end = ids.partition_point(|&i| self.occurrences[i].span.start as usize <= offset);
        ids[..end]
            .iter()
            .rev()
            .take(8)
            .map(|&i| &self.occurrences[i])
            .filter(|o| o.span.contains(offset))
            .min_by_key(|o| o.span.len())
    }

    pub fn use_at(&self, file: FileId, offset: usize) -> Option<&UseLink> {
        self.uses.iter().find(|u| u.file == file && u.span.contains(offset))
    }

    pub fn references(&self, def: usize) -> impl Iterator<Item = &Occurrence> {
        self.occurrences.iter().filter(move |o| o.def == def)
    }

    pub fn children(&self, owner: usize) -> impl Iterator<Item = (usize, &Def)> {
        self.defs.iter().enumerate().filter(move |(_, d)| d.owner == Some(owner))
    }
}

/// Names visible in a body, innermost last.
#[derive(Clone, Default)]
struct Scope {
    names: Vec<(String, usize)>,
    /// Train blocks: data arrays, then the model's outputs and inputs.
    fallback: Vec<(String, usize)>,
    /// Blocks: the pattern dims of the signature (file dims are not visible).
    pattern: Option<Vec<(String, usize)>>,
}

struct Builder<'p> {
    program: &'p Program,
    index: Index,
    /// Models and blocks by name (the first definition wins, as in the checker).
    globals: HashMap<String, usize>,
    dims: HashMap<String, usize>,
    /// Definitions by `(file, start of name)`, made before bodies are walked.
    def_at: HashMap<(FileId, u32), usize>,
    /// Parameters, inputs and outputs of each model; parameters of each block.
    members: HashMap<usize, Vec<(String, usize)>>,
}

impl<'p> Builder<'p> {
    fn def(&mut self, name: &Ident, kind: DefKind, file: FileId, decl: Span, owner: Option<usize>) -> Option<usize> {
        if name.name.is_empty() {
            return None; // a name that failed to parse
        }
        let id = self.index.defs.len();
        self.index.defs.push(Def { name: name.name.clone(), kind, file, span: name.span, decl, owner });
        self.index.occurrences.push(Occurrence { file, span: name.span, def: id });
        self.def_at.insert((file, name.span.start), id);
        Some(id)
    }

    fn occurrence(&mut self, file: FileId, span: Span, def: usize) {
        self.index.occurrences.push(Occurrence { file, span, def });
    }

    fn run(&mut self) {
        let program = self.program;
        // 1. Declarations every file can see.
        for f in &program.files {
            for item in &f.ast.items {
                match item {
                    Item::Model(m) => {
                        if let Some(id) = self.def(&m.name, DefKind::Model, f.id, m.span, None) {
                            self.globals.entry(m.name.name.clone()).or_insert(id);
                        }
                    }
                    Item::Block(b) => {
                        if let Some(id) = self.def(&b.name, DefKind::Block, f.id, b.span, None) {
                            self.globals.entry(b.name.name.clone()).or_insert(id);
                        }
                    }
                    Item::Train(t) => {
                        self.def(&t.name, DefKind::Train, f.id, t.span, None);
                    }
                    Item::Dim(d) => {
                        for def in &d.dims {
                            // `dim N` repeated (allowed when identical) names the first one.
                            match self.dims.get(&def.name.name) {
                                Some(&first) => self.occurrence(f.id, def.name.span, first),
                                None => {
                                    if let Some(id) = self.def(&def.name, DefKind::Dim, f.id, d.span, None) {
                                        self.dims.insert(def.name.name.clone(), id);
                                    }
                                }
                            }
                        }
                    }
                    Item::Use(u) => self.use_link(f.id, u),
                }
            }
        }
        // 2. Signatures and body definitions, so calls and train blocks can
        // name parameters, inputs and outputs declared anywhere.
        for f in &program.files {
            for item in &f.ast.items {
                match item {
                    Item::Model(m) => self.model_defs(f.id, m),
                    Item::Block(b) => self.block_defs(f.id, b),
                    _ => {}
                }
            }
        }
        // 3. Bodies: models and blocks, then dim values, then train blocks
        // (which read the models' members).
        for f in &program.files {
            for item in &f.ast.items {
                match item {
                    Item::Model(m) => self.model_body(f.id, m),
                    Item::Block(b) => self.block_body(f.id, b),
                    Item::Dim(d) => {
                        for def in &d.dims {
                            if let Some(v) = &def.value {
                                self.expr(f.id, v, &Scope::default());
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
        for f in &program.files {
            for item in &f.ast.items {
                if let Item::Train(t) = item {
                    self.train(f.id, t);
                }
            }
        }
    }

    fn use_link(&mut self, file: FileId, u: &UseDecl) {
        let program = self.program;
        let (span, target) = match &u.target {
            UseTarget::Module(parts) => {
                let dotted: Vec<&str> = parts.iter().map(|p| p.name.as_str()).collect();
                let name = format!("std/{}.nn", dotted.get(1).copied().unwrap_or(""));
                let span = match (parts.first(), parts.last()) {
                    (Some(a), Some(b)) => a.span.to(b.span),
                    _ => u.span,
                };
                (
                    span,
                    program
                        .files
                        .iter()
                        .find(|f| f.is_std && f.name == name && dotted.len() == 2 && dotted[0] == "std"),
                )
            }
            UseTarget::File { path, span } => {
                let base = program.file(file).path.as_ref().and_then(|p| p.parent().map(|p| p.join(path)));
                let full = base.unwrap_or_else(|| std::path::PathBuf::from(path));
                let key = crate::uri::normalise(&full);
                (
                    *span,
                    program
                        .files
                        .iter()
                        .find(|f| !f.is_std && f.path.as_deref().is_some_and(|p| crate::uri::normalise(p) == key)),
                )
            }
        };
        if let Some(t) = target {
            self.index.uses.push(UseLink { file, span, target: t.id });
        }
    }

    fn params(&mut self, file: FileId, params: &[Param], owner: Option<usize>) -> Vec<(String, usize)> {
        params
            .iter()
            .filter_map(|p| self.def(&p.name, DefKind::Param, file, p.span, owner).map(|id| (p.name.name.clone(), id)))
            .collect()
    }

    fn stmt_defs(&mut self, file: FileId, stmts: &[Stmt], owner: Option<usize>, members: &mut Vec<(String, usize)>) {
        for s in stmts {
            match s {
                Stmt::Input { name, span, .. } => {
                    if let Some(id) = self.def(name, DefKind::Input, file, *span, owner) {
                        members.push((name.name.clone(), id));
                    }
                }
                Stmt::Let(l) => {
                    for n in l.pattern.names() {
                        self.def(n, DefKind::Let, file, l.span, owner);
                    }
                }
                Stmt::Output { name, value: Some(_), span, .. } => {
                    if let Some(id) = self.def(name, DefKind::Output, file, *span, owner) {
                        members.push((name.name.clone(), id));
                    }
                }
                Stmt::Output { value: None, .. } | Stmt::Return { .. } => {}
                Stmt::If { then_body, else_body, .. } => {
                    self.stmt_defs(file, then_body, owner, members);
                    self.stmt_defs(file, else_body, owner, members);
                }
            }
        }
    }

    fn model_defs(&mut self, file: FileId, m: &ModelDecl) {
        let Some(&owner) = self.def_at.get(&(file, m.name.span.start)) else { return };
        let mut members = self.params(file, &m.params, Some(owner));
        self.stmt_defs(file, &m.body, Some(owner), &mut members);
        self.members.insert(owner, members);
    }

    fn block_defs(&mut self, file: FileId, b: &BlockDecl) {
        let Some(&owner) = self.def_at.get(&(file, b.name.span.start)) else { return };
        let members = self.params(file, &b.params, Some(owner));
        let mut unused = Vec::new();
        self.stmt_defs(file, &b.body, Some(owner), &mut unused);
        self.members.insert(owner, members);
    }

    fn model_body(&mut self, file: FileId, m: &ModelDecl) {
        let Some(&owner) = self.def_at.get(&(file, m.name.span.start)) else { return };
        let mut scope = Scope::default();
        for p in &m.params {
            if let Some(d) = &p.default {
                self.expr(file, d, &scope);
            }
            if let Some(&id) = self.def_at.get(&(file, p.name.span.start)) {
                scope.names.push((p.name.name.clone(), id));
            }
        }
        let mut outputs = Vec::new();
        self.stmts(file, &m.body, &mut scope, &mut outputs);
        // `output logits` without a value exports an existing binding.
        if let Some(list) = self.members.get_mut(&owner) {
            list.extend(outputs);
        }
    }

    fn block_body(&mut self, file: FileId, b: &BlockDecl) {
        let mut scope = Scope { pattern: Some(Vec::new()), ..Scope::default() };
        // Scalar parameters first: types may mention them (`[N, filters]`).
        for p in &b.params {
            if let Some(&id) = self.def_at.get(&(file, p.name.span.start)) {
                scope.names.push((p.name.name.clone(), id));
            }
        }
        let owner = self.def_at.get(&(file, b.name.span.start)).copied();
        for p in &b.params {
            if let Some(t) = &p.ty {
                self.signature_type(file, t, &mut scope, owner);
            }
            if let Some(d) = &p.default {
                self.expr(file, d, &scope);
            }
        }
        if let Some(t) = &b.ret {
            self.signature_type(file, t, &mut scope, owner);
        }
        let mut outputs = Vec::new();
        self.stmts(file, &b.body, &mut scope, &mut outputs);
    }

    /// A type in a block signature: the first occurrence of an unknown dim
    /// name defines a pattern dim.
    fn signature_type(&mut self, file: FileId, t: &TypeExpr, scope: &mut Scope, owner: Option<usize>) {
        match t {
            TypeExpr::Tensor { dims, .. } => {
                for d in dims {
                    if let ExprKind::Name(n) = &d.kind
                        && self.lookup(scope, &n.name).is_none()
                    {
                        if let Some(id) = self.def(n, DefKind::PatternDim, file, n.span, owner) {
                            scope.pattern.get_or_insert_with(Vec::new).push((n.name.clone(), id));
                        }
                        continue;
                    }
                    self.expr(file, d, scope);
                }
            }
            TypeExpr::Scalar(..) => {}
            TypeExpr::Tuple(ts, _) => {
                for t in ts {
                    self.signature_type(file, t, scope, owner);
                }
            }
        }
    }

    fn stmts(&mut self, file: FileId, stmts: &[Stmt], scope: &mut Scope, outputs: &mut Vec<(String, usize)>) {
        for s in stmts {
            match s {
                Stmt::Input { name, ty, .. } => {
                    self.type_expr(file, ty, scope);
                    self.bind(file, name, scope);
                }
                Stmt::Let(l) => self.let_stmt(file, l, scope),
                Stmt::Output { name, ty, value, .. } => {
                    if let Some(t) = ty {
                        self.type_expr(file, t, scope);
                    }
                    match value {
                        Some(v) => {
                            self.expr(file, v, scope);
                            self.bind(file, name, scope);
                        }
                        None => {
                            if let Some(id) = self.lookup(scope, &name.name) {
                                self.occurrence(file, name.span, id);
                                outputs.push((name.name.clone(), id));
                            }
                        }
                    }
                }
                Stmt::Return { value, .. } => self.expr(file, value, scope),
                Stmt::If { cond, then_body, else_body, .. } => {
                    self.expr(file, cond, scope);
                    self.stmts(file, then_body, scope, outputs);
                    self.stmts(file, else_body, scope, outputs);
                }
            }
        }
    }

    fn let_stmt(&mut self, file: FileId, l: &LetStmt, scope: &mut Scope) {
        if let Some(t) = &l.ty {
            self.type_expr(file, t, scope);
        }
        // The value is resolved before the names are bound:
        // `let images = images / 255` reads the data array.
        self.expr(file, &l.value, scope);
        for n in l.pattern.names() {
            self.bind(file, n, scope);
        }
    }

    fn bind(&mut self, file: FileId, name: &Ident, scope: &mut Scope) {
        if let Some(&id) = self.def_at.get(&(file, name.span.start)) {
            scope.names.push((name.name.clone(), id));
        }
    }

    fn lookup(&self, scope: &Scope, name: &str) -> Option<usize> {
        let find = |v: &[(String, usize)]| v.iter().rev().find(|(n, _)| n == name).map(|(_, id)| *id);
        find(&scope.names).or_else(|| find(&scope.fallback)).or_else(|| match &scope.pattern {
            Some(p) => find(p),
            None => self.dims.get(name).copied(),
        })
    }

    fn type_expr(&mut self, file: FileId, t: &TypeExpr, scope: &Scope) {
        match t {
            TypeExpr::Tensor { dims, .. } => {
                for d in dims {
                    self.expr(file, d, scope);
                }
            }
            TypeExpr::Scalar(..) => {}
            TypeExpr::Tuple(ts, _) => {
                for t in ts {
                    self.type_expr(file, t, scope);
                }
            }
        }
    }

    fn call(&mut self, file: FileId, c: &Call, scope: &Scope) {
        let target = self.globals.get(&c.callee.name).copied();
        if let Some(id) = target {
            self.occurrence(file, c.callee.span, id);
        }
        for a in &c.args {
            if let (Some(name), Some(t)) = (&a.name, target) {
                let member =
                    self.members.get(&t).and_then(|m| m.iter().find(|(n, _)| *n == name.name).map(|(_, id)| *id));
                if let Some(id) = member {
                    self.occurrence(file, name.span, id);
                }
            }
            self.expr(file, &a.value, scope);
        }
    }

    fn expr(&mut self, file: FileId, e: &Expr, scope: &Scope) {
        match &e.kind {
            ExprKind::Int(_) | ExprKind::Float(_) | ExprKind::Str(_) | ExprKind::Bool(_) | ExprKind::Error => {}
            ExprKind::Name(n) => {
                if let Some(id) = self.lookup(scope, &n.name) {
                    self.occurrence(file, n.span, id);
                } else if let Some(&id) = self.globals.get(&n.name) {
                    // A block used as a layer value: `repeat(x, 3, my_block)`.
                    self.occurrence(file, n.span, id);
                }
            }
            ExprKind::Call(c) => self.call(file, c, scope),
            ExprKind::Pipe { input, stage } => {
                self.expr(file, input, scope);
                self.call(file, stage, scope);
            }
            ExprKind::Binary { lhs, rhs, .. } | ExprKind::Compare { lhs, rhs, .. } => {
                self.expr(file, lhs, scope);
                self.expr(file, rhs, scope);
            }
            ExprKind::Range { start, end } => {
                self.expr(file, start, scope);
                self.expr(file, end, scope);
            }
            ExprKind::Neg(x) | ExprKind::Frozen(x) => self.expr(file, x, scope),
            ExprKind::List(xs) | ExprKind::Tuple(xs) => {
                for x in xs {
                    self.expr(file, x, scope);
                }
            }
            ExprKind::Map(entries) => {
                for (k, v) in entries {
                    self.expr(file, k, scope);
                    self.expr(file, v, scope);
                }
            }
            ExprKind::Index { base, indices } => {
                self.expr(file, base, scope);
                for ix in indices {
                    match ix {
                        IndexItem::At(x) => self.expr(file, x, scope),
                        IndexItem::Slice { start, end, .. } => {
                            for x in [start, end].into_iter().flatten() {
                                self.expr(file, x, scope);
                            }
                        }
                    }
                }
            }
            ExprKind::TensorType(t) => self.type_expr(file, t, scope),
        }
    }

    fn train(&mut self, file: FileId, t: &TrainDecl) {
        let owner = self.def_at.get(&(file, t.name.span.start)).copied();
        let mut scope = Scope::default();
        // Data arrays: keywords of the `data` source that are not its options.
        for item in &t.items {
            if let TrainItem::Field { key, value } = item
                && key.name == "data"
                && let ExprKind::Call(c) = &value.kind
            {
                let f = lookup_fn(&c.callee.name);
                for a in &c.args {
                    if let Some(n) = a.name.as_ref().filter(|n| f.and_then(|f| f.option(&n.name)).is_none())
                        && let Some(id) = self.def(n, DefKind::DataArray, file, a.span(), owner)
                    {
                        scope.fallback.push((n.name.clone(), id));
                    }
                }
            }
        }
        // Then the model's outputs and inputs (`model = M()`, or the models of `over`).
        let mut models: Vec<usize> = Vec::new();
        for item in &t.items {
            match item {
                TrainItem::Field { key, value } if key.name == "model" => {
                    if let ExprKind::Call(c) | ExprKind::Pipe { stage: c, .. } = &value.kind {
                        models.extend(self.globals.get(&c.callee.name).copied());
                    }
                }
                TrainItem::Step(s) => models.extend(s.over.iter().filter_map(|o| self.globals.get(&o.name).copied())),
                _ => {}
            }
        }
        for m in models {
            let members: Vec<(String, usize)> = self
                .members
                .get(&m)
                .map(|v| v.iter().filter(|(_, id)| self.index.defs[*id].kind != DefKind::Param).cloned().collect())
                .unwrap_or_default();
            scope.fallback.extend(members);
        }
        // Data arrays come first: the fallback list is searched from the end.
        scope.fallback.reverse();
        for item in &t.items {
            match item {
                TrainItem::Field { key, value } => {
                    if key.name == "data" {
                        // Its keywords are the data arrays just defined; only values are names.
                        if let ExprKind::Call(c) = &value.kind {
                            for a in &c.args {
                                self.expr(file, &a.value, &scope);
                            }
                            continue;
                        }
                    }
                    self.expr(file, value, &scope);
                }
                TrainItem::Let(l) => {
                    for n in l.pattern.names() {
                        self.def(n, DefKind::Let, file, l.span, owner);
                    }
                    self.let_stmt(file, l, &mut scope);
                }
                TrainItem::Step(s) => {
                    self.def(&s.name, DefKind::Step, file, s.span, owner);
                    if let Some(x) = &s.times {
                        self.expr(file, x, &scope);
                    }
                    self.expr(file, &s.loss, &scope);
                    for o in &s.over {
                        if let Some(&id) = self.globals.get(&o.name) {
                            self.occurrence(file, o.span, id);
                        }
                    }
                    self.expr(file, &s.optimizer, &scope);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nnc_compiler::{CheckOptions, LoadError, Loader, analyse};

    struct NoFiles;
    impl Loader for NoFiles {
        fn load(&self, _: &std::path::Path) -> Result<String, LoadError> {
            Err(LoadError::NotFound)
        }
    }

    /// The definition the name at the `n`-th occurrence of `needle` refers to, as `kind name@line`.
    fn resolve(src: &str, needle: &str, n: usize) -> String {
        let a = analyse("t.nn", None, src.to_string(), &NoFiles, &CheckOptions::default());
        let index = Index::build(&a.program);
        let at = src.match_indices(needle).nth(n).unwrap_or_else(|| panic!("no {needle} #{n}")).0;
        let Some(o) = index.at(FileId(0), at) else { return "nothing".into() };
        let d = &index.defs[o.def];
        let line = src[..d.span.start as usize].matches('\n').count();
        format!("{} {}@{line}", d.kind.describe(), d.name)
    }

    const SRC: &str = "dim N, D = 4
block proj(x: [N, C], k: int) -> [N, k] {
    let y = dense(x, k)
    return y
}
model Gen(latent = 8) {
    input noise: [N, latent]
    let h = proj(noise, D)
    output image = h
}
model Disc {
    input image: [N, D]
    output p = dense(image, 1)
}
train gan {
    data = csv(\"f.csv\", pixels = 0..4, header = false)
    let real = pixels / 255
    let pixels = real
    let fake = Gen(noise = normal([N, 8]))
    step d: minimize mse(Disc(real), 1) over Disc with adam(lr = 1e-3)
}
";

    #[test]
    fn resolves_like_the_checker() {
        // Pattern dims of a block are its own; the file's `N` is not visible there.
        assert_eq!(resolve(SRC, "N", 1), "pattern dim N@1");
        assert_eq!(resolve(SRC, "C]", 0), "pattern dim C@1");
        assert_eq!(resolve(SRC, "k]", 0), "parameter k@1");
        assert_eq!(resolve(SRC, "y\n", 0), "let y@2");
        // Models see file dims and their parameters in types.
        assert_eq!(resolve(SRC, "N, latent", 0), "dim N@0");
        assert_eq!(resolve(SRC, "latent]", 0), "parameter latent@5");
        assert_eq!(resolve(SRC, "proj(noise", 0), "block proj@1");
        assert_eq!(resolve(SRC, "D)", 0), "dim D@0");
        // `output image = h` and the model's own `image`.
        assert_eq!(resolve(SRC, "h\n}", 0), "let h@7");
        assert_eq!(resolve(SRC, "image, 1", 0), "input image@11");
        // Train blocks: data arrays, then lets in order, model inputs by keyword, models by name.
        assert_eq!(resolve(SRC, "pixels / 255", 0), "data array pixels@15");
        assert_eq!(resolve(SRC, "real\n", 0), "let real@16");
        assert_eq!(resolve(SRC, "noise = normal", 0), "input noise@6");
        assert_eq!(resolve(SRC, "Disc(real)", 0), "model Disc@10");
        assert_eq!(resolve(SRC, "Disc with", 0), "model Disc@10");
        // Layers and options are not user definitions.
        assert_eq!(resolve(SRC, "dense(x", 0), "nothing");
        assert_eq!(resolve(SRC, "header", 0), "nothing");
    }

    #[test]
    fn blocks_repeated_by_repeat_resolve() {
        let src = "dim N
block grow(x: [N, C], growth: int) -> [N, C + growth] {
    return concat(x, dense(x, growth))
}
block unit(x: [N, C]) -> [N, C] {
    return relu(x)
}
model M(k = 3) {
    input x: [N, 4]
    let y = x |> repeat(k, grow(growth = 8)) |> repeat(2, unit)
    output z = y
}
";
        assert_eq!(resolve(src, "grow(growth", 0), "block grow@1");
        assert_eq!(resolve(src, "growth = 8", 0), "parameter growth@1");
        assert_eq!(resolve(src, "k, grow", 0), "parameter k@7");
        assert_eq!(resolve(src, "unit)", 0), "block unit@4");
    }
}
