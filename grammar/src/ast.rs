//! The typed syntax tree. Every node carries the byte [`Span`] it came from.
//!
//! The tree is purely syntactic: names are not resolved and nothing is typed
//! yet. Later stages (`nnc-compiler`) read it and never modify it.

use crate::Span;

/// An identifier with its span.
#[derive(Clone, Debug, PartialEq)]
pub struct Ident {
    pub name: String,
    pub span: Span,
}

/// A parsed `.nn` file. Items that failed to parse are absent; their
/// errors are reported alongside.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct File {
    pub items: Vec<Item>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Item {
    Use(UseDecl),
    Dim(DimDecl),
    Model(ModelDecl),
    Block(BlockDecl),
    Train(TrainDecl),
}

impl Item {
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

#[derive(Clone, Debug, PartialEq)]
pub struct UseDecl {
    pub target: UseTarget,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum UseTarget {
    /// `use std.blocks`: a dotted module path.
    Module(Vec<Ident>),
    /// `use "layers/common.nn"`: a file relative to the current one.
    File { path: String, span: Span },
}

#[derive(Clone, Debug, PartialEq)]
pub struct DimDecl {
    pub dims: Vec<DimDef>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct DimDef {
    pub name: Ident,
    pub value: Option<Expr>,
}

/// A model or block parameter: `hidden = 500`, `x: [N, H, W, C]`, `k: int = 3`.
#[derive(Clone, Debug, PartialEq)]
pub struct Param {
    pub name: Ident,
    pub ty: Option<TypeExpr>,
    pub default: Option<Expr>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ModelDecl {
    pub name: Ident,
    pub params: Vec<Param>,
    pub body: Vec<Stmt>,
    pub doc: Option<String>,
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

#[derive(Clone, Debug, PartialEq)]
pub struct BlockDecl {
    pub name: Ident,
    pub params: Vec<Param>,
    pub ret: Option<TypeExpr>,
    pub body: Vec<Stmt>,
    pub doc: Option<String>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct TrainDecl {
    pub name: Ident,
    pub items: Vec<TrainItem>,
    pub doc: Option<String>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum TrainItem {
    /// `optimizer = adam(lr = 1e-3)`
    Field {
        key: Ident,
        value: Expr,
    },
    Let(LetStmt),
    Step(StepStmt),
}

/// `step name times k: minimize loss over M, … with optimizer`
#[derive(Clone, Debug, PartialEq)]
pub struct StepStmt {
    pub name: Ident,
    pub times: Option<Expr>,
    pub loss: Expr,
    pub over: Vec<Ident>,
    pub optimizer: Expr,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Stmt {
    Input {
        name: Ident,
        ty: TypeExpr,
        span: Span,
    },
    Let(LetStmt),
    /// `output name (: type)? (= expr)?`
    Output {
        name: Ident,
        ty: Option<TypeExpr>,
        value: Option<Expr>,
        span: Span,
    },
    Return {
        value: Expr,
        span: Span,
    },
    If {
        cond: Expr,
        then_body: Vec<Stmt>,
        else_body: Vec<Stmt>,
        span: Span,
    },
}

impl Stmt {
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

#[derive(Clone, Debug, PartialEq)]
pub struct LetStmt {
    pub pattern: Pattern,
    pub ty: Option<TypeExpr>,
    pub value: Expr,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Pattern {
    Name(Ident),
    /// `(o, h, c)`
    Tuple(Vec<Ident>, Span),
}

impl Pattern {
    pub fn names(&self) -> &[Ident] {
        match self {
            Pattern::Name(n) => std::slice::from_ref(n),
            Pattern::Tuple(ns, _) => ns,
        }
    }
    pub fn span(&self) -> Span {
        match self {
            Pattern::Name(n) => n.span,
            Pattern::Tuple(_, s) => *s,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ElemType {
    Float,
    Int,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScalarType {
    Int,
    Float,
    Bool,
    Mode,
}

#[derive(Clone, Debug, PartialEq)]
pub enum TypeExpr {
    /// `[N, 28, 28, 1]` or `int[N]`; each dim is an expression.
    Tensor {
        elem: ElemType,
        dims: Vec<Expr>,
        span: Span,
    },
    Scalar(ScalarType, Span),
    Tuple(Vec<TypeExpr>, Span),
}

impl TypeExpr {
    pub fn span(&self) -> Span {
        match self {
            TypeExpr::Tensor { span, .. } | TypeExpr::Scalar(_, span) | TypeExpr::Tuple(_, span) => *span,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Expr {
    pub kind: ExprKind,
    pub span: Span,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
}

impl BinOp {
    pub fn symbol(self) -> &'static str {
        match self {
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ExprKind {
    Int(i64),
    Float(f64),
    Str(String),
    Bool(bool),
    Name(Ident),
    Call(Call),
    /// `input |> stage`: the stage receives `input` as its first argument.
    Pipe {
        input: Box<Expr>,
        stage: Call,
    },
    Binary {
        op: BinOp,
        lhs: Box<Expr>,
        rhs: Box<Expr>,
    },
    Compare {
        op: CmpOp,
        lhs: Box<Expr>,
        rhs: Box<Expr>,
    },
    Neg(Box<Expr>),
    /// `a..b` (CSV column ranges; `b` excluded).
    Range {
        start: Box<Expr>,
        end: Box<Expr>,
    },
    List(Vec<Expr>),
    Map(Vec<(Expr, Expr)>),
    /// `(a, b)`; a one-element tuple needs a trailing comma.
    Tuple(Vec<Expr>),
    Index {
        base: Box<Expr>,
        indices: Vec<IndexItem>,
    },
    /// `frozen expr`
    Frozen(Box<Expr>),
    /// `int[N, T]` in value position.
    TensorType(TypeExpr),
    /// A node that failed to build (an invalid literal); already reported.
    Error,
}

#[derive(Clone, Debug, PartialEq)]
pub enum IndexItem {
    At(Expr),
    Slice { start: Option<Expr>, end: Option<Expr>, span: Span },
}

/// `callee(args…)`. A pipe stage written without parentheses (`|> relu`)
/// is a call with no arguments and `parens == false`.
#[derive(Clone, Debug, PartialEq)]
pub struct Call {
    pub callee: Ident,
    pub args: Vec<Arg>,
    pub parens: bool,
    pub span: Span,
}

impl Call {
    pub fn positional(&self) -> impl Iterator<Item = &Expr> {
        self.args.iter().filter(|a| a.name.is_none()).map(|a| &a.value)
    }
    pub fn keyword(&self, name: &str) -> Option<&Arg> {
        self.args.iter().find(|a| a.name.as_ref().is_some_and(|n| n.name == name))
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Arg {
    pub name: Option<Ident>,
    pub value: Expr,
}

impl Arg {
    pub fn span(&self) -> Span {
        match &self.name {
            Some(n) => n.span.to(self.value.span),
            None => self.value.span,
        }
    }
}
