//! The values the checker computes for expressions.

use std::fmt;
use std::rc::Rc;

use nnc_syntax::ast::ElemType;
use nnc_syntax::{FileId, Span};

use crate::dims::Dim;

/// Where something came from: a span in some file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Origin {
    /// The file.
    pub file: FileId,
    /// The byte range in it.
    pub span: Span,
}

/// A tensor type: element type and one dim per axis. Each axis remembers
/// where its size was decided, so a mismatch can point at both sources.
#[derive(Clone, Debug)]
pub struct TensorTy {
    /// Float or int elements.
    pub elem: ElemType,
    /// One size per axis, outermost first (batch first, channels last).
    pub dims: Vec<Dim>,
    /// Where each axis's size was decided (same length as `dims`).
    pub origins: Vec<Origin>,
    /// The typed-graph node that computes this tensor (none for types
    /// written in annotations).
    pub node: Option<crate::graph::TRef>,
}

impl PartialEq for TensorTy {
    fn eq(&self, o: &TensorTy) -> bool {
        self.elem == o.elem && self.dims == o.dims
    }
}

impl TensorTy {
    /// A tensor type whose axes all come from `origin`.
    pub fn new(elem: ElemType, dims: Vec<Dim>, origin: Origin) -> TensorTy {
        let origins = vec![origin; dims.len()];
        TensorTy { elem, dims, origins, node: None }
    }
    /// A float tensor type whose axes all come from `origin`.
    pub fn float(dims: Vec<Dim>, origin: Origin) -> TensorTy {
        TensorTy::new(ElemType::Float, dims, origin)
    }
    /// The number of axes.
    pub fn rank(&self) -> usize {
        self.dims.len()
    }
    /// The same type with every axis re-attributed to `origin`.
    pub fn at(mut self, origin: Origin) -> TensorTy {
        self.origins = vec![origin; self.dims.len()];
        self
    }
    /// Replaces the last axis (dense-like layers).
    pub fn with_last(&self, d: Dim, origin: Origin) -> TensorTy {
        let mut t = self.clone();
        if let Some(last) = t.dims.last_mut() {
            *last = d;
            *t.origins.last_mut().expect("same length") = origin;
        }
        t.elem = ElemType::Float;
        t
    }
    /// Where axis `axis` got its size (the default origin for an axis out of range).
    pub fn origin_of(&self, axis: usize) -> Origin {
        self.origins.get(axis).copied().unwrap_or_default()
    }
}

impl fmt::Display for TensorTy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.elem == ElemType::Int {
            write!(f, "int")?;
        }
        write!(f, "[")?;
        for (i, d) in self.dims.iter().enumerate() {
            if i > 0 {
                write!(f, ", ")?;
            }
            write!(f, "{d}")?;
        }
        write!(f, "]")
    }
}

/// A layer call written without its tensor argument: `lstm(3, sequences = true)`.
#[derive(Clone, Debug)]
pub struct LayerValue {
    /// The layer's entry in the layer table.
    pub layer: &'static crate::layers::LayerDef,
    /// The arguments given so far: keyword (or `None`), value, and where each was written.
    pub args: Rc<Vec<(Option<String>, Value, Origin)>>,
    /// Where the layer value was written.
    pub origin: Origin,
}

/// A value of a `train` block: optimizer, schedule, data source, … calls
/// with their evaluated arguments, read by the training runtime.
#[derive(Clone, Debug)]
pub struct CallValue {
    /// The function's name (`adam`, `csv`, `split`…).
    pub name: String,
    /// The arguments: keyword (or `None` for positional) and value, in source order.
    pub args: Vec<(Option<String>, Value)>,
}

impl CallValue {
    /// The keyword argument `name`, if given.
    pub fn arg(&self, name: &str) -> Option<&Value> {
        self.args.iter().find(|(k, _)| k.as_deref() == Some(name)).map(|(_, v)| v)
    }
    /// The `i`-th positional argument (0-based), if given.
    pub fn positional(&self, i: usize) -> Option<&Value> {
        self.args.iter().filter(|(k, _)| k.is_none()).nth(i).map(|(_, v)| v)
    }
}

/// A checked value: what an expression evaluates to at check time.
#[derive(Clone, Debug)]
pub enum Value {
    /// A tensor, with its symbolic shape.
    Tensor(TensorTy),
    /// An integer or a symbolic dim.
    Int(Dim),
    /// A float number.
    Float(f64),
    /// `true` or `false`.
    Bool(bool),
    /// A string literal.
    Str(String),
    /// A bare word such as `same` in `padding = same`.
    Mode(String),
    /// A layer applied to no tensor yet (a pipe stage, an argument of `residual`).
    Layer(LayerValue),
    /// `(a, b)`: the results of a multi-output layer or block.
    Tuple(Vec<Value>),
    /// `[a, b]`.
    List(Vec<Value>),
    /// `{k: v}`.
    Map(Vec<(Value, Value)>),
    /// `a..b`
    Range(Dim, Dim),
    /// A train-block function call (`adam(lr = 1e-3)`, `split(0.1)`, `column(1) > 0` as `>`).
    Call(std::rc::Rc<CallValue>),
    /// The value of an expression that already produced an error, or whose
    /// type cannot be known statically. Using it never reports again.
    Unknown,
}

impl Value {
    /// How the value is named in type-mismatch messages (`a tensor`, `an integer`…).
    pub fn kind_name(&self) -> &'static str {
        match self {
            Value::Tensor(_) => "a tensor",
            Value::Int(_) => "an integer",
            Value::Float(_) => "a float",
            Value::Bool(_) => "a boolean",
            Value::Str(_) => "a string",
            Value::Mode(_) => "a mode word",
            Value::Layer(_) => "a layer value",
            Value::Tuple(_) => "a tuple",
            Value::List(_) => "a list",
            Value::Map(_) => "a map",
            Value::Range(..) => "a range",
            Value::Call(_) => "a call",
            Value::Unknown => "an unknown value",
        }
    }
    /// The tensor type, if this is a tensor.
    pub fn as_tensor(&self) -> Option<&TensorTy> {
        match self {
            Value::Tensor(t) => Some(t),
            _ => None,
        }
    }
    /// Whether this is [`Value::Unknown`] (an error was already reported for it).
    pub fn is_unknown(&self) -> bool {
        matches!(self, Value::Unknown)
    }
    /// A float view of a numeric value.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Float(f) => Some(*f),
            Value::Int(d) => d.as_known().map(|v| v as f64),
            _ => None,
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Tensor(t) => write!(f, "{t}"),
            Value::Int(d) => write!(f, "{d}"),
            Value::Float(x) => write!(f, "{x}"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Str(s) => write!(f, "{s:?}"),
            Value::Mode(m) => write!(f, "{m}"),
            Value::Layer(l) => write!(f, "{}(…)", l.layer.name),
            Value::Tuple(vs) => {
                write!(f, "(")?;
                for (i, v) in vs.iter().enumerate() {
                    if i > 0 {
                        write!(f, ", ")?;
                    }
                    write!(f, "{v}")?;
                }
                write!(f, ")")
            }
            Value::List(vs) => {
                write!(f, "[")?;
                for (i, v) in vs.iter().enumerate() {
                    if i > 0 {
                        write!(f, ", ")?;
                    }
                    write!(f, "{v}")?;
                }
                write!(f, "]")
            }
            Value::Map(_) => write!(f, "{{…}}"),
            Value::Range(a, b) => write!(f, "{a}..{b}"),
            Value::Call(c) => write!(f, "{}(…)", c.name),
            Value::Unknown => write!(f, "?"),
        }
    }
}
