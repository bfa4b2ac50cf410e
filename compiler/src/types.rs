//! The values the checker computes for expressions.

use std::fmt;
use std::rc::Rc;

use nnc_syntax::ast::ElemType;
use nnc_syntax::{FileId, Span};

use crate::dims::Dim;

/// Where something came from: a span in some file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Origin {
    pub file: FileId,
    pub span: Span,
}

/// A tensor type: element type and one dim per axis. Each axis remembers
/// where its size was decided, so a mismatch can point at both sources.
#[derive(Clone, Debug)]
pub struct TensorTy {
    pub elem: ElemType,
    pub dims: Vec<Dim>,
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
    pub fn new(elem: ElemType, dims: Vec<Dim>, origin: Origin) -> TensorTy {
        let origins = vec![origin; dims.len()];
        TensorTy { elem, dims, origins, node: None }
    }
    pub fn float(dims: Vec<Dim>, origin: Origin) -> TensorTy {
        TensorTy::new(ElemType::Float, dims, origin)
    }
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
    pub layer: &'static crate::layers::LayerDef,
    pub args: Rc<Vec<(Option<String>, Value, Origin)>>,
    pub origin: Origin,
}

/// A checked value.
/// A value of a `train` block: optimizer, schedule, data source, … calls
/// with their evaluated arguments, read by the training runtime.
#[derive(Clone, Debug)]
pub struct CallValue {
    pub name: String,
    pub args: Vec<(Option<String>, Value)>,
}

impl CallValue {
    pub fn arg(&self, name: &str) -> Option<&Value> {
        self.args.iter().find(|(k, _)| k.as_deref() == Some(name)).map(|(_, v)| v)
    }
    pub fn positional(&self, i: usize) -> Option<&Value> {
        self.args.iter().filter(|(k, _)| k.is_none()).nth(i).map(|(_, v)| v)
    }
}

#[derive(Clone, Debug)]
pub enum Value {
    Tensor(TensorTy),
    /// An integer or a symbolic dim.
    Int(Dim),
    Float(f64),
    Bool(bool),
    Str(String),
    /// A bare word such as `same` in `padding = same`.
    Mode(String),
    Layer(LayerValue),
    Tuple(Vec<Value>),
    List(Vec<Value>),
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
    pub fn as_tensor(&self) -> Option<&TensorTy> {
        match self {
            Value::Tensor(t) => Some(t),
            _ => None,
        }
    }
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
