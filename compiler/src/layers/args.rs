//! Binding call arguments to a layer's declared options.

use super::{ArgDef, ArgKind, Default, LayerDef, suggest};
use crate::dims::Dim;
use crate::types::{LayerValue, Origin, TensorTy, Value};

/// A bound option value.
#[derive(Clone, Debug)]
pub enum ArgVal {
    /// An integer or a symbolic dim.
    Int(Dim),
    /// `[h, w]` (or one value given for both).
    Pair(Dim, Dim),
    /// A number.
    Float(f64),
    /// A flag.
    Bool(bool),
    /// A bare word from the option's list.
    Mode(String),
    /// `valid`, `same` or explicit sizes.
    Padding(Padding),
    /// A layer value (`lstm(64)`).
    Layer(LayerValue),
    /// `activation = none`
    NoLayer,
    /// Axes as written (negative counts from the end).
    Axes(Vec<i64>),
    /// A tensor operand given as an option.
    Tensor(TensorTy),
    /// Initial states of a recurrent layer.
    State(Vec<TensorTy>),
    /// A target shape (`reshape`).
    Shape(Vec<Dim>),
    /// An initialiser name (`glorot_uniform`).
    Init(String),
    /// `zero_padding`/`cropping` sizes as written: `P` is `[[P]]`, `[A, B]` is `[[A], [B]]`,
    /// `[[a, b], [c, d]]` stays; the layer's rule reads them for its rank.
    Sides(Vec<Vec<i64>>),
    /// A number (one element) or a list of numbers.
    Floats(Vec<f64>),
    /// The argument's value was unknown (an earlier error); rules give up quietly.
    Unknown,
    /// An optional argument that was not given.
    Absent,
}

/// The `padding` option of convolutions and pooling.
#[derive(Clone, Debug, PartialEq)]
pub enum Padding {
    /// No padding: the output shrinks by the window.
    Valid,
    /// Padded so that the output size is `⌈input / stride⌉`.
    Same,
    /// Symmetric zero padding `(ph, pw)` on each side.
    Explicit(Dim, Dim),
}

/// Options bound by name, in the layer's declared order.
#[derive(Clone, Debug, Default)]
pub struct Args {
    vals: Vec<(&'static str, ArgVal, Option<Origin>)>,
}

/// Why an argument could not be bound.
#[derive(Clone, Debug)]
pub(crate) enum ArgIssue {
    Unknown { name: String, origin: Origin, suggestion: Option<&'static str> },
    Missing { name: &'static str },
    TooMany { origin: Origin, accepted: usize },
    Duplicate { name: &'static str, origin: Origin },
    WrongKind { name: &'static str, expected: String, found: &'static str, origin: Origin },
    OutOfRange { name: &'static str, value: String, allowed: String, origin: Origin },
    BadMode { name: &'static str, found: String, allowed: &'static [&'static str], origin: Origin },
}

impl Args {
    /// Overrides one option (lowering a layer value with `go_backwards`, …).
    pub(crate) fn set(&mut self, name: &str, v: ArgVal) {
        if let Some(slot) = self.vals.iter_mut().find(|(n, ..)| *n == name) {
            slot.1 = v;
        }
    }
    /// The value of option `name` (its default when not written; `Absent` for an optional one not given).
    pub fn get(&self, name: &str) -> &ArgVal {
        self.vals.iter().find(|(n, ..)| *n == name).map_or(&ArgVal::Absent, |(_, v, _)| v)
    }
    /// Where option `name` was written, if it was.
    pub fn origin(&self, name: &str) -> Option<Origin> {
        self.vals.iter().find(|(n, ..)| *n == name).and_then(|(_, _, o)| *o)
    }
    /// Every argument's value, in the layer's declared order.
    pub fn values(&self) -> impl Iterator<Item = &ArgVal> {
        self.vals.iter().map(|(_, v, _)| v)
    }
    /// The arguments with dims replaced by their run-time values (`one_hot(x, V)`
    /// with `V` bound by the data); `None` when a symbolic dim stays unbound.
    pub(crate) fn substitute_dims(&self, value: &dyn Fn(&str) -> Option<Dim>) -> Result<Args, String> {
        let concrete = |d: &Dim| -> Result<Dim, String> {
            // An overflowing substitution is as unusable as an unbound dim.
            match d.substitute(value) {
                Ok(v) if v.as_known().is_some() => Ok(v),
                _ => Err(d.to_string()),
            }
        };
        let mut out = self.clone();
        for (_, v, _) in &mut out.vals {
            match v {
                ArgVal::Int(d) if d.as_known().is_none() => *d = concrete(d)?,
                ArgVal::Pair(a, b) if a.as_known().is_none() || b.as_known().is_none() => {
                    *a = concrete(a)?;
                    *b = concrete(b)?;
                }
                ArgVal::Padding(Padding::Explicit(a, b)) if a.as_known().is_none() || b.as_known().is_none() => {
                    *a = concrete(a)?;
                    *b = concrete(b)?;
                }
                ArgVal::Shape(ds) => {
                    // `-1` and `N` stay as written: reshape resolves them itself.
                    for d in ds.iter_mut() {
                        if let Ok(v) = d.substitute(value)
                            && v.as_known().is_some()
                        {
                            *d = v;
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(out)
    }
    /// True when some argument is unknown because of an earlier error.
    pub(crate) fn any_unknown(&self) -> bool {
        self.vals.iter().any(|(_, v, _)| matches!(v, ArgVal::Unknown))
    }
    pub(crate) fn int(&self, name: &str) -> Option<Dim> {
        match self.get(name) {
            ArgVal::Int(d) => Some(d.clone()),
            _ => None,
        }
    }
    pub(crate) fn pair(&self, name: &str) -> Option<(Dim, Dim)> {
        match self.get(name) {
            ArgVal::Int(d) => Some((d.clone(), d.clone())),
            ArgVal::Pair(a, b) => Some((a.clone(), b.clone())),
            _ => None,
        }
    }
    pub(crate) fn float(&self, name: &str) -> Option<f64> {
        match self.get(name) {
            ArgVal::Float(f) => Some(*f),
            _ => None,
        }
    }
    pub(crate) fn bool(&self, name: &str) -> bool {
        matches!(self.get(name), ArgVal::Bool(true))
    }
    pub(crate) fn mode(&self, name: &str) -> &str {
        match self.get(name) {
            ArgVal::Mode(m) => m,
            _ => "",
        }
    }
    pub(crate) fn padding(&self, name: &str) -> Padding {
        match self.get(name) {
            ArgVal::Padding(p) => p.clone(),
            _ => Padding::Valid,
        }
    }
    pub(crate) fn layer(&self, name: &str) -> Option<&LayerValue> {
        match self.get(name) {
            ArgVal::Layer(l) => Some(l),
            _ => None,
        }
    }
}

fn kind_expected(kind: ArgKind) -> String {
    match kind {
        ArgKind::Int { .. } => "an integer".into(),
        ArgKind::IntOrPair { .. } => "an integer or `[h, w]`".into(),
        ArgKind::Float { .. } => "a number".into(),
        ArgKind::Bool => "`true` or `false`".into(),
        ArgKind::Mode(words) => {
            format!("one of {}", words.iter().map(|w| format!("`{w}`")).collect::<Vec<_>>().join(", "))
        }
        ArgKind::Padding => "`valid`, `same`, an integer or `[ph, pw]`".into(),
        ArgKind::Layer => "a layer value such as `lstm(64)`".into(),
        ArgKind::Activation => "`none` or a layer such as `relu`".into(),
        ArgKind::Axis => "an axis (integer)".into(),
        ArgKind::Axes => "an axis or a list of axes".into(),
        ArgKind::Tensor => "a tensor".into(),
        ArgKind::State => "a tensor or a tuple of tensors".into(),
        ArgKind::Shape => "a shape such as `[N, 784]`".into(),
        ArgKind::Init => "an initialiser".into(),
        ArgKind::Sides => "an integer, `[a, b]` or `[[top, bottom], [left, right]]`".into(),
        ArgKind::Floats => "a number or a list of numbers".into(),
    }
}

/// Binds `raw` (positional then keyword arguments, tensor operands already
/// removed) to the options of `def`, filling defaults.
pub(crate) fn bind_args(def: &LayerDef, raw: &[(Option<String>, Value, Origin)]) -> Result<Args, Vec<ArgIssue>> {
    let mut issues = Vec::new();
    let mut given: Vec<Option<(Value, Origin)>> = vec![None; def.args.len()];
    let mut next_positional = 0;
    for (name, value, origin) in raw {
        let index = match name {
            None => {
                // Positional arguments fill required options, then the rest, in order.
                if next_positional >= def.args.len() {
                    issues.push(ArgIssue::TooMany { origin: *origin, accepted: def.args.len() });
                    continue;
                }
                next_positional += 1;
                next_positional - 1
            }
            Some(n) => match def.args.iter().position(|a| a.name == n) {
                Some(i) => i,
                None => {
                    let suggestion = suggest(n, def.args.iter().map(|a| a.name));
                    issues.push(ArgIssue::Unknown { name: n.clone(), origin: *origin, suggestion });
                    continue;
                }
            },
        };
        if given[index].is_some() {
            issues.push(ArgIssue::Duplicate { name: def.args[index].name, origin: *origin });
            continue;
        }
        given[index] = Some((value.clone(), *origin));
    }

    let mut vals: Vec<(&'static str, ArgVal, Option<Origin>)> = Vec::with_capacity(def.args.len());
    for (i, ad) in def.args.iter().enumerate() {
        let val = match given[i].take() {
            Some((v, origin)) => match convert(ad, &v, origin) {
                Ok(val) => (val, Some(origin)),
                Err(issue) => {
                    issues.push(issue);
                    (ArgVal::Unknown, Some(origin))
                }
            },
            None => match ad.default {
                Default::Required => {
                    issues.push(ArgIssue::Missing { name: ad.name });
                    (ArgVal::Unknown, None)
                }
                Default::Absent => (ArgVal::Absent, None),
                Default::Int(v) if matches!(ad.kind, ArgKind::Axis | ArgKind::Axes) => (ArgVal::Axes(vec![v]), None),
                Default::Int(v) if ad.kind == ArgKind::Sides => (ArgVal::Sides(vec![vec![v]]), None),
                Default::Int(v) => (ArgVal::Int(Dim::Known(v)), None),
                Default::Float(v) => (ArgVal::Float(v), None),
                Default::Bool(v) => (ArgVal::Bool(v), None),
                Default::Mode(m) => (
                    match ad.kind {
                        ArgKind::Padding if m == "same" => ArgVal::Padding(Padding::Same),
                        ArgKind::Padding => ArgVal::Padding(Padding::Valid),
                        ArgKind::Activation => ArgVal::NoLayer,
                        ArgKind::Init => ArgVal::Init(m.to_string()),
                        _ => ArgVal::Mode(m.to_string()),
                    },
                    None,
                ),
                Default::SameAs(other) => {
                    let v = vals.iter().find(|(n, ..)| *n == other).map_or(ArgVal::Unknown, |(_, v, _)| v.clone());
                    (v, None)
                }
            },
        };
        vals.push((ad.name, val.0, val.1));
    }
    // A misspelt option (`kernal`) also leaves its real one missing: report the typo only.
    let suggested: Vec<&'static str> = issues
        .iter()
        .filter_map(|i| if let ArgIssue::Unknown { suggestion: Some(s), .. } = i { Some(*s) } else { None })
        .collect();
    issues.retain(|i| !matches!(i, ArgIssue::Missing { name } if suggested.contains(name)));
    if issues.is_empty() { Ok(Args { vals }) } else { Err(issues) }
}

fn int_of(v: &Value) -> Option<Dim> {
    match v {
        Value::Int(d) => Some(d.clone()),
        _ => None,
    }
}

// long: one match arm per option kind (`ArgKind`); kept whole while other work edits this file.
fn convert(ad: &ArgDef, v: &Value, origin: Origin) -> Result<ArgVal, ArgIssue> {
    if v.is_unknown() {
        return Ok(ArgVal::Unknown);
    }
    let wrong =
        || ArgIssue::WrongKind { name: ad.name, expected: kind_expected(ad.kind), found: v.kind_name(), origin };
    let check_min = |d: &Dim, min: i64| -> Result<(), ArgIssue> {
        match d.as_known() {
            Some(k) if k < min => Err(ArgIssue::OutOfRange {
                name: ad.name,
                value: k.to_string(),
                allowed: format!("at least {min}"),
                origin,
            }),
            _ => Ok(()),
        }
    };
    Ok(match ad.kind {
        ArgKind::Int { min } => {
            let d = int_of(v).ok_or_else(wrong)?;
            check_min(&d, min)?;
            ArgVal::Int(d)
        }
        ArgKind::IntOrPair { min } => match v {
            Value::Int(d) => {
                check_min(d, min)?;
                ArgVal::Int(d.clone())
            }
            Value::List(xs) if xs.len() == 2 => {
                let (a, b) = (int_of(&xs[0]).ok_or_else(wrong)?, int_of(&xs[1]).ok_or_else(wrong)?);
                check_min(&a, min)?;
                check_min(&b, min)?;
                ArgVal::Pair(a, b)
            }
            _ => return Err(wrong()),
        },
        // `max_value = none`: an optional number written as absent.
        ArgKind::Float { .. } if ad.default == Default::Absent && matches!(v, Value::Mode(m) if m == "none") => {
            ArgVal::Absent
        }
        ArgKind::Float { range } => {
            let f = v.as_f64().ok_or_else(|| match v {
                // A symbolic integer is fine where a number is expected.
                Value::Int(_) => ArgIssue::WrongKind {
                    name: ad.name,
                    expected: "a known number".into(),
                    found: "a symbolic dim",
                    origin,
                },
                _ => wrong(),
            })?;
            if !range.contains(f) {
                return Err(ArgIssue::OutOfRange {
                    name: ad.name,
                    value: format!("{f}"),
                    allowed: range.describe(),
                    origin,
                });
            }
            ArgVal::Float(f)
        }
        ArgKind::Bool => match v {
            Value::Bool(b) => ArgVal::Bool(*b),
            _ => return Err(wrong()),
        },
        ArgKind::Mode(words) => {
            let word = match v {
                Value::Mode(m) => m.clone(),
                Value::Layer(l) if l.args.is_empty() => l.layer.name.to_string(),
                Value::Str(s) => s.clone(),
                _ => return Err(wrong()),
            };
            if !words.contains(&word.as_str()) {
                return Err(ArgIssue::BadMode { name: ad.name, found: word, allowed: words, origin });
            }
            ArgVal::Mode(word)
        }
        ArgKind::Padding => match v {
            Value::Mode(m) if m == "valid" => ArgVal::Padding(Padding::Valid),
            Value::Mode(m) if m == "same" => ArgVal::Padding(Padding::Same),
            Value::Mode(m) => {
                return Err(ArgIssue::BadMode { name: ad.name, found: m.clone(), allowed: &["valid", "same"], origin });
            }
            Value::Int(d) => {
                check_min(d, 0)?;
                ArgVal::Padding(Padding::Explicit(d.clone(), d.clone()))
            }
            Value::List(xs) if xs.len() == 2 => {
                let (a, b) = (int_of(&xs[0]).ok_or_else(wrong)?, int_of(&xs[1]).ok_or_else(wrong)?);
                check_min(&a, 0)?;
                check_min(&b, 0)?;
                ArgVal::Padding(Padding::Explicit(a, b))
            }
            _ => return Err(wrong()),
        },
        ArgKind::Layer => match v {
            Value::Layer(l) => ArgVal::Layer(l.clone()),
            _ => return Err(wrong()),
        },
        ArgKind::Activation => match v {
            Value::Mode(m) if m == "none" => ArgVal::NoLayer,
            Value::Layer(l) => ArgVal::Layer(l.clone()),
            Value::Mode(m) => {
                return Err(ArgIssue::BadMode {
                    name: ad.name,
                    found: m.clone(),
                    allowed: super::activation_words(),
                    origin,
                });
            }
            _ => return Err(wrong()),
        },
        ArgKind::Axis => ArgVal::Axes(vec![int_of(v).and_then(|d| d.as_known()).ok_or_else(wrong)?]),
        ArgKind::Axes => match v {
            Value::Int(d) => ArgVal::Axes(vec![d.as_known().ok_or_else(wrong)?]),
            Value::List(xs) => ArgVal::Axes(
                xs.iter().map(|x| int_of(x).and_then(|d| d.as_known()).ok_or_else(wrong)).collect::<Result<_, _>>()?,
            ),
            _ => return Err(wrong()),
        },
        ArgKind::Tensor => match v {
            Value::Tensor(t) => ArgVal::Tensor(t.clone()),
            _ => return Err(wrong()),
        },
        ArgKind::State => match v {
            Value::Tensor(t) => ArgVal::State(vec![t.clone()]),
            Value::Tuple(xs) => {
                if xs.iter().any(Value::is_unknown) {
                    return Ok(ArgVal::Unknown);
                }
                ArgVal::State(xs.iter().map(|x| x.as_tensor().cloned().ok_or_else(wrong)).collect::<Result<_, _>>()?)
            }
            _ => return Err(wrong()),
        },
        ArgKind::Shape => match v {
            Value::List(xs) => {
                if xs.iter().any(Value::is_unknown) {
                    return Ok(ArgVal::Unknown);
                }
                ArgVal::Shape(xs.iter().map(|x| int_of(x).ok_or_else(wrong)).collect::<Result<_, _>>()?)
            }
            _ => return Err(wrong()),
        },
        ArgKind::Init => match v {
            Value::Str(s) | Value::Mode(s) => ArgVal::Init(s.clone()),
            _ => return Err(wrong()),
        },
        ArgKind::Sides => {
            // Known, non-negative integers: the sizes decide output shapes.
            let side = |x: &Value| -> Result<i64, ArgIssue> {
                let d = int_of(x).ok_or_else(wrong)?;
                let k = d.as_known().ok_or_else(|| ArgIssue::WrongKind {
                    name: ad.name,
                    expected: "a known integer".into(),
                    found: "a symbolic dim",
                    origin,
                })?;
                check_min(&d, 0)?;
                Ok(k)
            };
            match v {
                Value::Int(_) => ArgVal::Sides(vec![vec![side(v)?]]),
                Value::List(xs) if xs.len() == 2 && xs.iter().all(|x| matches!(x, Value::Int(_))) => {
                    ArgVal::Sides(vec![vec![side(&xs[0])?], vec![side(&xs[1])?]])
                }
                Value::List(xs) if xs.len() == 2 => {
                    let mut rows = Vec::new();
                    for x in xs {
                        match x {
                            Value::List(p) if p.len() == 2 => rows.push(vec![side(&p[0])?, side(&p[1])?]),
                            _ => return Err(wrong()),
                        }
                    }
                    ArgVal::Sides(rows)
                }
                Value::List(xs) if xs.len() == 1 => ArgVal::Sides(vec![match &xs[0] {
                    Value::List(p) if p.len() == 2 => vec![side(&p[0])?, side(&p[1])?],
                    _ => return Err(wrong()),
                }]),
                _ => return Err(wrong()),
            }
        }
        ArgKind::Floats => match v {
            Value::List(xs) if !xs.is_empty() => {
                ArgVal::Floats(xs.iter().map(|x| x.as_f64().ok_or_else(wrong)).collect::<Result<_, _>>()?)
            }
            _ => ArgVal::Floats(vec![v.as_f64().ok_or_else(wrong)?]),
        },
    })
}
