//! The typed syntax tree. Every node carries the byte [`Span`] it came from.
//!
//! The tree is purely syntactic: names are not resolved and nothing is typed
//! yet. Later stages (`nnc-compiler`) read it and never modify it.

use crate::Span;

/// An identifier with its span.
#[derive(Clone, Debug, PartialEq)]
pub struct Ident {
    /// The identifier as written.
    pub name: String,
    /// Where it was written.
    pub span: Span,
}

/// A parsed `.nn` file. Items that failed to parse are absent; their
/// errors are reported alongside.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct File {
    /// The declarations that parsed, in source order.
    pub items: Vec<Item>,
}

/// A top-level declaration.
#[derive(Clone, Debug, PartialEq)]
pub enum Item {
    /// `use std.blocks` or `use "file.nn"`.
    Use(UseDecl),
    /// `dim N, H = 128`.
    Dim(DimDecl),
    /// `model Name(params) { … }`.
    Model(ModelDecl),
    /// `block Name(params) -> type { … }`.
    Block(BlockDecl),
    /// `train Name { … }`.
    Train(TrainDecl),
}

impl Item {
    /// The span of the whole declaration.
    pub fn span(&self) -> Span {
        match self {
            Item::Use(u) => u.span,
            Item::Dim(d) => d.span,
            Item::Model(m) => m.span,
            Item::Block(b) => b.span,
            Item::Train(t) => t.span,
        }
    }
}

/// `use …`: brings another file's models, blocks and dims into scope.
#[derive(Clone, Debug, PartialEq)]
pub struct UseDecl {
    /// What is imported.
    pub target: UseTarget,
    /// The whole declaration.
    pub span: Span,
}

/// What a `use` names.
#[derive(Clone, Debug, PartialEq)]
pub enum UseTarget {
    /// `use std.blocks`: a dotted module path.
    Module(Vec<Ident>),
    /// `use "layers/common.nn"`: a file relative to the current one.
    File {
        /// The path as written (unescaped), relative to the file with the `use`.
        path: String,
        /// The string literal.
        span: Span,
    },
}

/// `dim N, H = 128, …`: declares symbolic dims, optionally bound to a value.
#[derive(Clone, Debug, PartialEq)]
pub struct DimDecl {
    /// The dims declared, in order.
    pub dims: Vec<DimDef>,
    /// The whole declaration.
    pub span: Span,
}

/// One dim of a `dim` declaration.
#[derive(Clone, Debug, PartialEq)]
pub struct DimDef {
    /// The dim's name.
    pub name: Ident,
    /// Its value (`H = 128`); `None` leaves it symbolic, to be inferred from inputs.
    pub value: Option<Expr>,
}

/// A model or block parameter: `hidden = 500`, `x: [N, H, W, C]`, `k: int = 3`.
#[derive(Clone, Debug, PartialEq)]
pub struct Param {
    /// The parameter's name.
    pub name: Ident,
    /// Its declared type (`: [N, H]`, `: int`), if any.
    pub ty: Option<TypeExpr>,
    /// Its default value (`= 500`), if any; a parameter without one must be passed.
    pub default: Option<Expr>,
    /// The whole parameter.
    pub span: Span,
}

/// `model Name(params) { body }`: a network with inputs, outputs and trainable layers.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelDecl {
    /// The model's name.
    pub name: Ident,
    /// Hyper-parameters (`hidden = 500`), in order.
    pub params: Vec<Param>,
    /// The statements of the body, in order.
    pub body: Vec<Stmt>,
    /// The `///` doc comment lines before the declaration, joined, if any (shown on hover and in summaries).
    pub doc: Option<String>,
    /// The whole declaration.
    pub span: Span,
}

impl ModelDecl {
    /// Names of the model's `input`s, in order.
    pub fn input_names(&self) -> Vec<&str> {
        self.body
            .iter()
            .filter_map(|s| match s {
                Stmt::Input { name, .. } => Some(name.name.as_str()),
                _ => None,
            })
            .collect()
    }
}

/// `block Name(params) -> type { body }`: a reusable sub-network, called like a layer, generic over its shapes.
#[derive(Clone, Debug, PartialEq)]
pub struct BlockDecl {
    /// The block's name.
    pub name: Ident,
    /// Parameters: tensor arguments (`x: [N, D]`) and options (`k: int = 3`), in order.
    pub params: Vec<Param>,
    /// The declared return type (`-> [N, D]`), if any; checked against what `return` gives.
    pub ret: Option<TypeExpr>,
    /// The statements of the body, in order.
    pub body: Vec<Stmt>,
    /// The `///` doc comment lines before the declaration, joined, if any.
    pub doc: Option<String>,
    /// The whole declaration.
    pub span: Span,
}

/// `train Name { … }`: how to train models: data, loss, optimizer, steps.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainDecl {
    /// The train block's name.
    pub name: Ident,
    /// Fields, `let`s and `step`s, in source order.
    pub items: Vec<TrainItem>,
    /// The `///` doc comment lines before the declaration, joined, if any.
    pub doc: Option<String>,
    /// The whole declaration.
    pub span: Span,
}

/// One line of a `train` block.
#[derive(Clone, Debug, PartialEq)]
pub enum TrainItem {
    /// `optimizer = adam(lr = 1e-3)`
    Field {
        /// The setting's name (`optimizer`, `data`, `epochs`…; may be a keyword such as `model`).
        key: Ident,
        /// Its value.
        value: Expr,
    },
    /// `let` binding a value usable in later fields and steps.
    Let(LetStmt),
    /// `step …: minimize … over … with …` (multi-model training).
    Step(StepStmt),
}

/// `step name times k: minimize loss over M, … with optimizer`
#[derive(Clone, Debug, PartialEq)]
pub struct StepStmt {
    /// The step's name.
    pub name: Ident,
    /// How many times the step runs per batch (`times k`); `None` means once.
    pub times: Option<Expr>,
    /// The scalar to minimize.
    pub loss: Expr,
    /// The models whose parameters this step updates.
    pub over: Vec<Ident>,
    /// The optimizer expression (`adam(lr = 1e-3)` or a name bound by `let`).
    pub optimizer: Expr,
    /// The whole statement.
    pub span: Span,
}

/// A statement of a model or block body.
#[derive(Clone, Debug, PartialEq)]
pub enum Stmt {
    /// `input name: type`: a model input.
    Input {
        /// The input's name.
        name: Ident,
        /// Its type (shape and element type).
        ty: TypeExpr,
        /// The whole statement.
        span: Span,
    },
    /// `let pattern (: type)? = expr`.
    Let(LetStmt),
    /// `output name (: type)? (= expr)?`
    Output {
        /// The output's name.
        name: Ident,
        /// Its declared type, if any; checked against the value.
        ty: Option<TypeExpr>,
        /// Its value; `None` outputs the local of the same name.
        value: Option<Expr>,
        /// The whole statement.
        span: Span,
    },
    /// `return expr`: a block's result.
    Return {
        /// The returned value.
        value: Expr,
        /// The whole statement.
        span: Span,
    },
    /// `if cond { … } else { … }`: chosen when checking, on dims, options and the mode.
    If {
        /// The condition; it must be decidable at check time.
        cond: Expr,
        /// The statements when the condition holds.
        then_body: Vec<Stmt>,
        /// The statements otherwise (empty without `else`).
        else_body: Vec<Stmt>,
        /// The whole statement.
        span: Span,
    },
}

impl Stmt {
    /// The span of the whole statement.
    pub fn span(&self) -> Span {
        match self {
            Stmt::Input { span, .. }
            | Stmt::Output { span, .. }
            | Stmt::Return { span, .. }
            | Stmt::If { span, .. } => *span,
            Stmt::Let(l) => l.span,
        }
    }
}

/// `let pattern (: type)? = value`.
#[derive(Clone, Debug, PartialEq)]
pub struct LetStmt {
    /// The name(s) bound.
    pub pattern: Pattern,
    /// The declared type, if any; checked against the value.
    pub ty: Option<TypeExpr>,
    /// The value bound.
    pub value: Expr,
    /// The whole statement.
    pub span: Span,
}

/// What a `let` binds.
#[derive(Clone, Debug, PartialEq)]
pub enum Pattern {
    /// One name.
    Name(Ident),
    /// `(o, h, c)`
    Tuple(Vec<Ident>, Span),
}

impl Pattern {
    /// The names bound, in order.
    pub fn names(&self) -> &[Ident] {
        match self {
            Pattern::Name(n) => std::slice::from_ref(n),
            Pattern::Tuple(ns, _) => ns,
        }
    }
    /// The span of the pattern.
    pub fn span(&self) -> Span {
        match self {
            Pattern::Name(n) => n.span,
            Pattern::Tuple(_, s) => *s,
        }
    }
}

/// The element type of a tensor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ElemType {
    /// 32-bit float (the default: `[N, D]`).
    Float,
    /// Integer (`int[N]`: labels, token ids).
    Int,
}

/// A non-tensor type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScalarType {
    /// `int`: an integer option (sizes, counts).
    Int,
    /// `float`: a real option (rates, epsilons).
    Float,
    /// `bool`: a flag.
    Bool,
    /// `mode`: `train` or `eval`, for layers that behave differently when training (dropout, batch norm).
    Mode,
}

/// A type as written.
#[derive(Clone, Debug, PartialEq)]
pub enum TypeExpr {
    /// `[N, 28, 28, 1]` or `int[N]`; each dim is an expression.
    Tensor {
        /// Float or int elements.
        elem: ElemType,
        /// One expression per axis (a dim name, a number, or dim arithmetic).
        dims: Vec<Expr>,
        /// The whole type.
        span: Span,
    },
    /// `int`, `float`, `bool` or `mode`.
    Scalar(ScalarType, Span),
    /// `(T1, T2, …)`: the type of a multi-value result.
    Tuple(Vec<TypeExpr>, Span),
}

impl TypeExpr {
    /// The span of the whole type.
    pub fn span(&self) -> Span {
        match self {
            TypeExpr::Tensor { span, .. } | TypeExpr::Scalar(_, span) | TypeExpr::Tuple(_, span) => *span,
        }
    }
}

/// An expression with its span.
#[derive(Clone, Debug, PartialEq)]
pub struct Expr {
    /// What the expression is.
    pub kind: ExprKind,
    /// The whole expression.
    pub span: Span,
}

/// An arithmetic operator (on dims, numbers and tensors).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinOp {
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/` (on dims: exact division, checked).
    Div,
}

impl BinOp {
    /// The operator as written in source.
    pub fn symbol(self) -> &'static str {
        match self {
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
        }
    }
}

/// A comparison operator (in `if` conditions).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CmpOp {
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

/// The kinds of expression.
#[derive(Clone, Debug, PartialEq)]
pub enum ExprKind {
    /// An integer literal.
    Int(i64),
    /// A float literal.
    Float(f64),
    /// A string literal, unescaped.
    Str(String),
    /// `true` or `false`.
    Bool(bool),
    /// A name: a local, parameter, dim, model or mode word.
    Name(Ident),
    /// A call of a layer, block, model or builtin.
    Call(Call),
    /// `input |> stage`: the stage receives `input` as its first argument.
    Pipe {
        /// The value piped in.
        input: Box<Expr>,
        /// The stage it goes through.
        stage: Call,
    },
    /// `lhs op rhs` arithmetic.
    Binary {
        /// The operator.
        op: BinOp,
        /// The left operand.
        lhs: Box<Expr>,
        /// The right operand.
        rhs: Box<Expr>,
    },
    /// `lhs op rhs` comparison.
    Compare {
        /// The operator.
        op: CmpOp,
        /// The left operand.
        lhs: Box<Expr>,
        /// The right operand.
        rhs: Box<Expr>,
    },
    /// `-e`.
    Neg(Box<Expr>),
    /// `a..b` (CSV column ranges; `b` excluded).
    Range {
        /// The first element.
        start: Box<Expr>,
        /// One past the last element.
        end: Box<Expr>,
    },
    /// `[a, b, …]`.
    List(Vec<Expr>),
    /// `{key: value, …}`: e.g. a named-input mapping of a data source.
    Map(Vec<(Expr, Expr)>),
    /// `(a, b)`; a one-element tuple needs a trailing comma.
    Tuple(Vec<Expr>),
    /// `base[i, a:b, …]`: indexing or slicing (data selectors, tensor slices).
    Index {
        /// The indexed expression.
        base: Box<Expr>,
        /// One item per indexed axis.
        indices: Vec<IndexItem>,
    },
    /// `frozen expr`
    Frozen(Box<Expr>),
    /// `int[N, T]` in value position.
    TensorType(TypeExpr),
    /// A node that failed to build (an invalid literal); already reported.
    Error,
}

/// One item of an index expression.
#[derive(Clone, Debug, PartialEq)]
pub enum IndexItem {
    /// A single position.
    At(Expr),
    /// `a:b`, `a:` or `:b`: a range of positions (`end` excluded).
    Slice {
        /// First position; `None` starts at 0.
        start: Option<Expr>,
        /// One past the last position; `None` runs to the end.
        end: Option<Expr>,
        /// The whole slice.
        span: Span,
    },
}

/// `callee(args…)`. A pipe stage written without parentheses (`|> relu`)
/// is a call with no arguments and `parens == false`.
#[derive(Clone, Debug, PartialEq)]
pub struct Call {
    /// The name called.
    pub callee: Ident,
    /// The arguments, in order (positional and keyword mixed as written).
    pub args: Vec<Arg>,
    /// Whether the call was written with parentheses.
    pub parens: bool,
    /// The whole call.
    pub span: Span,
}

impl Call {
    /// The positional arguments, in order.
    pub fn positional(&self) -> impl Iterator<Item = &Expr> {
        self.args.iter().filter(|a| a.name.is_none()).map(|a| &a.value)
    }
    /// The keyword argument `name = …`, if given.
    pub fn keyword(&self, name: &str) -> Option<&Arg> {
        self.args.iter().find(|a| a.name.as_ref().is_some_and(|n| n.name == name))
    }
}

/// One argument of a call.
#[derive(Clone, Debug, PartialEq)]
pub struct Arg {
    /// The keyword (`units = 10`); `None` for a positional argument.
    pub name: Option<Ident>,
    /// The value.
    pub value: Expr,
}

impl Arg {
    /// The span of the whole argument, keyword included.
    pub fn span(&self) -> Span {
        match &self.name {
            Some(n) => n.span.to(self.value.span),
            None => self.value.span,
        }
    }
}
