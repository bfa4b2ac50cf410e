//! The layer library: every layer described once.
//!
//! A [`LayerDef`] holds a layer's name, documentation, operands, options
//! (with kinds, defaults and ranges) and its shape rule, which also declares
//! the parameters. The checker, `nnc summary`, `nnc explain`, completion and
//! hover all read this table; later stages (lowering, autodiff) add their
//! part of the description here, not elsewhere.

mod args;
pub mod lowering;
mod rules;

pub(crate) use args::{ArgIssue, bind_args};
pub use args::{ArgVal, Args, Padding};
pub use rules::{LAYERS, MAX_REPEAT};

use nnc_syntax::ast::ElemType;

use crate::dims::{Dim, DimError, DimResult};
use crate::types::{LayerValue, Origin, TensorTy, Value};

/// How a layer is used; the summary lists only `Layer`s.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    /// A network layer (shown in summaries, named, may own parameters).
    Layer,
    /// A tensor function such as `exp` or `one_hot` (no parameters).
    Function,
}

/// How many tensor operands come before the options.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operands {
    /// No tensor operand (`normal([N, 100])`).
    None,
    /// A single tensor operand, written first or piped in (`x |> dense(10)`).
    One,
    /// `concat(a, b, …)`
    Variadic,
}

/// What kind of value an option takes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ArgKind {
    /// An integer (or symbolic dim) at least `min`.
    Int {
        /// The smallest value allowed.
        min: i64,
    },
    /// An integer or `[h, w]`, each at least `min`.
    IntOrPair {
        /// The smallest value allowed (for each of the pair).
        min: i64,
    },
    /// A number within `range`.
    Float {
        /// The values allowed.
        range: FloatRange,
    },
    /// `true` or `false`.
    Bool,
    /// One of the given bare words.
    Mode(&'static [&'static str]),
    /// `valid | same | P | [PH, PW]`
    Padding,
    /// A layer value (`lstm(64, sequences = true)`).
    Layer,
    /// `none` or a layer value such as `relu`.
    Activation,
    /// An axis index, negative counting from the end.
    Axis,
    /// An axis or a list of axes.
    Axes,
    /// A tensor (`kv = enc`).
    Tensor,
    /// A tensor or a tuple of tensors (`initial_state = (h0, c0)`).
    State,
    /// A list of dims (`reshape(x, [N, -1])`, `normal([N, 100])`).
    Shape,
    /// An initialiser (`glorot_uniform`, `normal(0.05)`); checked by name.
    Init,
    /// Per-side sizes of `zero_padding*`/`cropping*`: `P`, `[A, B]` or `[[top, bottom], [left, right]]`
    /// (Keras's forms; what `[A, B]` means depends on the layer's rank).
    Sides,
    /// A number or a list of numbers (`normalization`'s `mean = [0.5, 0.4, 0.4]`).
    Floats,
}

impl ArgKind {
    /// The kind in words, for hover, completion and the manual: `an integer ≥ 1`.
    pub fn describe(&self) -> String {
        match self {
            ArgKind::Int { min } => format!("an integer ≥ {min}"),
            ArgKind::IntOrPair { min } => format!("an integer ≥ {min} or [h, w]"),
            ArgKind::Float { range } => format!("a number in {}", range.describe()),
            ArgKind::Bool => "true or false".into(),
            ArgKind::Mode(words) => words.join(" | "),
            ArgKind::Padding => "valid | same | P | [PH, PW]".into(),
            ArgKind::Layer => "a layer value".into(),
            ArgKind::Activation => "none or a layer value such as relu".into(),
            ArgKind::Axis => "an axis".into(),
            ArgKind::Axes => "an axis or a list of axes".into(),
            ArgKind::Tensor => "a tensor".into(),
            ArgKind::State => "a tensor or a tuple of tensors".into(),
            ArgKind::Shape => "a list of dims".into(),
            ArgKind::Init => "an initialiser".into(),
            ArgKind::Sides => "P | [A, B] | [[top, bottom], [left, right]]".into(),
            ArgKind::Floats => "a number or a list of numbers".into(),
        }
    }
}

/// An allowed float range.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FloatRange {
    /// Lower bound.
    pub min: f64,
    /// Upper bound.
    pub max: f64,
    /// Whether `min` itself is allowed.
    pub min_inclusive: bool,
    /// Whether `max` itself is allowed.
    pub max_inclusive: bool,
}

impl FloatRange {
    /// Every float.
    pub const ANY: FloatRange =
        FloatRange { min: f64::NEG_INFINITY, max: f64::INFINITY, min_inclusive: true, max_inclusive: true };
    /// `[0, ∞)`: rates, epsilons that may be zero.
    pub const NON_NEGATIVE: FloatRange =
        FloatRange { min: 0.0, max: f64::INFINITY, min_inclusive: true, max_inclusive: true };
    /// `(0, ∞)`: sizes and epsilons that must be positive.
    pub const POSITIVE: FloatRange =
        FloatRange { min: 0.0, max: f64::INFINITY, min_inclusive: false, max_inclusive: true };
    /// `[0, 1)`: dropout rates.
    pub const RATE: FloatRange = FloatRange { min: 0.0, max: 1.0, min_inclusive: true, max_inclusive: false };
    /// `[0, 1]`: momentum-like factors.
    pub const UNIT: FloatRange = FloatRange { min: 0.0, max: 1.0, min_inclusive: true, max_inclusive: true };

    /// Whether `v` lies in the range (NaN never does).
    pub fn contains(&self, v: f64) -> bool {
        let lo = if self.min_inclusive { v >= self.min } else { v > self.min };
        let hi = if self.max_inclusive { v <= self.max } else { v < self.max };
        lo && hi
    }

    /// The range in interval notation (`[0, 1)`), for error messages and the manual.
    pub fn describe(&self) -> String {
        let lo = if self.min_inclusive { "[" } else { "(" };
        let hi = if self.max_inclusive { "]" } else { ")" };
        let fmt = |v: f64| {
            if v.is_infinite() {
                if v > 0.0 { "∞".to_string() } else { "−∞".to_string() }
            } else {
                format!("{v}")
            }
        };
        format!("{lo}{}, {}{hi}", fmt(self.min), fmt(self.max))
    }
}

/// An option's default.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Default {
    /// The option must be given.
    Required,
    /// Absent unless given.
    Absent,
    /// An integer default.
    Int(i64),
    /// A float default.
    Float(f64),
    /// A boolean default.
    Bool(bool),
    /// A mode-word default (`padding = valid`).
    Mode(&'static str),
    /// Defaults to another option's value (`stride = size`).
    SameAs(&'static str),
}

/// One option of a layer: its name, kind, default and one-line doc (for errors, hover and the manual).
#[derive(Clone, Copy, Debug)]
pub struct ArgDef {
    /// The keyword (`units`, `padding`…).
    pub name: &'static str,
    /// What values it takes.
    pub kind: ArgKind,
    /// Its default, or `Required`.
    pub default: Default,
    /// One line for hover, completion and the manual.
    pub doc: &'static str,
}

impl ArgDef {
    /// ` = 3` after the option's name, ` (optional)`, or nothing for a required option.
    pub fn default_text(&self) -> String {
        match self.default {
            Default::Required => String::new(),
            Default::Absent => " (optional)".to_string(),
            Default::Int(v) => format!(" = {v}"),
            Default::Float(v) => format!(" = {v}"),
            Default::Bool(v) => format!(" = {v}"),
            Default::Mode(m) => format!(" = {m}"),
            Default::SameAs(o) => format!(" = {o}"),
        }
    }
}

/// A parameter tensor declared by a layer. `name` is relative to the layer
/// (`kernel`, `forward.bias`); the checker prefixes the layer's own name.
#[derive(Clone, Debug)]
pub struct ParamSpec {
    /// The name relative to the layer (`kernel`), or the full name in a [`crate::LayerRecord`].
    pub name: String,
    /// The shape, Keras layout (a dense kernel is `[in, out]`, a conv kernel `[kh, kw, in, out]`).
    pub shape: Vec<Dim>,
    /// Whether training updates it (false for moving statistics).
    pub trainable: bool,
    /// Default initialiser (docs/src/layers.md), or `constant(v)` / `values(a, b, …)` for a layer whose
    /// option gives the initial value (`layer_scale(init_values = 1e-6)`, `normalization(mean = …)`).
    pub init: std::borrow::Cow<'static, str>,
}

impl ParamSpec {
    /// Number of scalars, when every dim is known. The checker rejects
    /// parameters whose count overflows (`run_rule`), so `None` here means
    /// a symbolic shape.
    pub fn count(&self) -> Option<i64> {
        self.shape.iter().try_fold(1i64, |acc, d| d.as_known().and_then(|v| acc.checked_mul(v)))
    }
}

/// A shape error found by a layer's rule. The checker turns it into a
/// diagnostic with the call's span.
#[derive(Clone, Debug)]
pub(crate) enum LayerError {
    /// Operand `operand` should have one of the ranks in `expected`.
    Rank {
        operand: usize,
        expected: &'static str,
        found: TensorTy,
    },
    ElemType {
        operand: usize,
        expected: ElemType,
        found: TensorTy,
    },
    /// An output axis would be ≤ 0; `note` is the rule with numbers.
    NonPositive {
        axis_name: &'static str,
        value: Dim,
        note: String,
    },
    /// Two operands disagree on an axis.
    Axis {
        what: String,
        left: (Dim, Origin),
        right: (Dim, Origin),
        provably_different: bool,
    },
    ElementCount {
        from: Dim,
        to: Dim,
    },
    AxisOutOfRange {
        axis: i64,
        rank: usize,
    },
    /// An option's value is invalid given the operands (e.g. `T > max_len`).
    Option {
        option: &'static str,
        message: String,
    },
    /// The operand should be a layer value of another kind.
    WrongLayer {
        option: &'static str,
        expected: &'static str,
        found: &'static str,
    },
    /// A size the rule computes (`what`: "output height", "parameter
    /// `kernel`") does not fit in 64 bits.
    Overflow {
        what: String,
    },
}

impl LayerError {
    /// Dim arithmetic of a shape rule: overflow names `what` overflowed; a
    /// zero divisor can only be a stride.
    pub fn from_dim(e: DimError, what: impl Into<String>) -> LayerError {
        match e {
            DimError::Overflow => LayerError::Overflow { what: what.into() },
            DimError::DivisionByZero => LayerError::Option { option: "stride", message: "division by zero".into() },
        }
    }
}

/// Evaluates `f` (a chain of dim arithmetic) as the size `what`.
pub(crate) fn size(what: &str, f: impl FnOnce() -> DimResult) -> Result<Dim, LayerError> {
    f().map_err(|e| LayerError::from_dim(e, what))
}

/// Runs a layer's shape rule, then checks what every rule must guarantee:
/// each parameter's element count, the layer's total and each output
/// tensor's element count per batch fit in 64 bits. Rules compute sizes
/// with checked arithmetic; this catches products nobody spelled out
/// (`[D, heads, key_dim]`), so no later stage can overflow on them.
pub(crate) fn run_rule(def: &LayerDef, a: &mut Apply) -> RuleResult {
    let out = (def.rule)(a)?;
    let mut total = Dim::Known(0);
    for p in &a.params {
        let what = || format!("the size of parameter `{}` [{}]", p.name, join_dims(&p.shape));
        let count = Dim::product(&p.shape).map_err(|e| LayerError::from_dim(e, what()))?;
        total = total.add(&count).map_err(|e| LayerError::from_dim(e, "the layer's parameter count"))?;
    }
    check_tensor_sizes(&out)?;
    Ok(out)
}

fn check_tensor_sizes(v: &Value) -> Result<(), LayerError> {
    match v {
        Value::Tensor(t) => match Dim::product(&t.dims) {
            Ok(_) => Ok(()),
            Err(e) => Err(LayerError::from_dim(e, format!("the element count of the output [{}]", join_dims(&t.dims)))),
        },
        Value::Tuple(parts) => parts.iter().try_for_each(check_tensor_sizes),
        _ => Ok(()),
    }
}

fn join_dims(dims: &[Dim]) -> String {
    dims.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", ")
}

/// What a rule returns.
pub(crate) type RuleResult = Result<Value, LayerError>;

/// The context a shape rule runs in.
pub(crate) struct Apply<'a> {
    pub inputs: Vec<TensorTy>,
    pub args: &'a Args,
    pub origin: Origin,
    pub params: Vec<ParamSpec>,
    /// Notes explaining how output dims were computed (for hover and errors).
    pub notes: Vec<String>,
}

impl Apply<'_> {
    pub fn param(&mut self, name: &str, shape: Vec<Dim>, init: &'static str) {
        self.params.push(ParamSpec { name: name.to_string(), shape, trainable: true, init: init.into() });
    }
    pub fn moving(&mut self, name: &str, shape: Vec<Dim>, init: &'static str) {
        self.params.push(ParamSpec { name: name.to_string(), shape, trainable: false, init: init.into() });
    }
    /// A parameter initialised as the layer's option `option` (of kind [`ArgKind::Init`]) says: what the
    /// user wrote, else the option's declared default. The option is the one place the default is stated.
    pub fn param_from(&mut self, name: &str, shape: Vec<Dim>, option: &'static str) {
        let init = match self.args.get(option) {
            ArgVal::Init(s) => s.clone(),
            // The option's value was an error, already reported: nothing is lowered.
            _ => String::from("zeros"),
        };
        self.params.push(ParamSpec { name: name.to_string(), shape, trainable: true, init: init.into() });
    }
    /// A parameter whose initial value an option gives (`constant(1e-06)`, `values(0.5, 0.4)`).
    pub fn param_init(&mut self, name: &str, shape: Vec<Dim>, trainable: bool, init: String) {
        self.params.push(ParamSpec { name: name.to_string(), shape, trainable, init: init.into() });
    }
    pub fn input(&self) -> &TensorTy {
        &self.inputs[0]
    }
    /// Applies a layer value to a tensor, collecting its parameters under `prefix`.
    pub fn sub_layer(&mut self, lv: &LayerValue, input: TensorTy, prefix: &str) -> RuleResult {
        let args = match bind_args(lv.layer, &lv.args) {
            Ok(a) => a,
            // Issues were reported when the layer value was written.
            Err(_) => return Ok(Value::Unknown),
        };
        let mut sub =
            Apply { inputs: vec![input], args: &args, origin: lv.origin, params: Vec::new(), notes: Vec::new() };
        let out = run_rule(lv.layer, &mut sub)?;
        for mut p in sub.params {
            p.name = if prefix.is_empty() { p.name } else { format!("{prefix}.{}", p.name) };
            self.params.push(p);
        }
        self.notes.extend(sub.notes);
        Ok(out)
    }
}

/// One entry of the layer table ([`LAYERS`]): everything about a layer, read by checking, lowering, editors and docs.
pub struct LayerDef {
    /// The name used in `.nn` source (`conv2d`).
    pub name: &'static str,
    /// One-line signature for completion and hover.
    pub signature: &'static str,
    /// A paragraph for hover and the manual.
    pub doc: &'static str,
    /// Layer or tensor function.
    pub family: Family,
    /// How many tensor operands it takes.
    pub operands: Operands,
    /// Its options, in positional order.
    pub args: &'static [ArgDef],
    pub(crate) rule: fn(&mut Apply) -> RuleResult,
    /// Lowering to IR primitives (`lowering.rs`); backward comes from autodiff.
    pub(crate) lower: lowering::LowerFn,
    /// What most entries leave at its default ([`Extra::NONE`]).
    pub extra: Extra,
}

/// The rarer facts of a layer, defaulted so that an entry states only what it has
/// (`layer!(…, lowering::lstm, owns_params: true, hints: &[…])`).
#[derive(Clone, Copy, Debug)]
pub struct Extra {
    /// It owns parameters without a `bias` or `init` option (`batch_norm`, `embedding`, `repeat`'s layer).
    pub owns_params: bool,
    /// Advice attached to the checker's errors for this layer (E0301 rank, E0303 element type).
    pub hints: &'static [Hint],
    /// The Keras 3 layer or op it equals (`Conv2D`), for the manual; empty when there is none.
    pub keras: &'static str,
    /// The PyTorch module or function it equals (`nn.Conv2d`); empty when there is none.
    pub torch: &'static str,
    /// `TYPE => EXPR`: an input type for `x` and an expression using it, checked when the manual's
    /// layer page is generated (`nnc doc layers`) and shown there with its output shape and parameters.
    pub example: &'static str,
}

impl Extra {
    /// No extra facts (the default of every entry).
    pub const NONE: Extra = Extra { owns_params: false, hints: &[], keras: "", torch: "", example: "" };

    /// With `owns_params` set.
    pub const fn owns_params(self, owns_params: bool) -> Extra {
        Extra { owns_params, ..self }
    }

    /// With `hints` set.
    pub const fn hints(self, hints: &'static [Hint]) -> Extra {
        Extra { hints, ..self }
    }

    /// With the Keras equivalent set.
    pub const fn keras(self, keras: &'static str) -> Extra {
        Extra { keras, ..self }
    }

    /// With the PyTorch equivalent set.
    pub const fn torch(self, torch: &'static str) -> Extra {
        Extra { torch, ..self }
    }

    /// With the manual's checked example set.
    pub const fn example(self, example: &'static str) -> Extra {
        Extra { example, ..self }
    }
}

/// Layer-specific advice on an error, declared with the layer (read by `check/report.rs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hint {
    /// A help line when an operand of this rank is refused.
    Rank {
        /// The refused rank this help applies to.
        found: usize,
        /// The help line.
        help: &'static str,
    },
    /// A note when an operand's element type is refused.
    ElemType {
        /// The note.
        note: &'static str,
    },
}

impl std::fmt::Debug for LayerDef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LayerDef({})", self.name)
    }
}

impl LayerDef {
    /// The option `name`, if the layer has one.
    pub fn arg(&self, name: &str) -> Option<&ArgDef> {
        self.args.iter().find(|a| a.name == name)
    }
    /// Whether the layer creates parameters (a `bias` or `init` option, or `owns_params`).
    pub fn has_params(&self) -> bool {
        self.args.iter().any(|a| a.name == "bias" || a.name == "init") || self.extra.owns_params
    }
}

/// The words `activation = …` takes: `none`, then every layer usable as an activation (one tensor in, no
/// parameters, no required option), read from the table so a new activation layer needs no second entry.
pub fn activation_words() -> &'static [&'static str] {
    static WORDS: std::sync::LazyLock<Vec<&'static str>> = std::sync::LazyLock::new(|| {
        let usable = |l: &&LayerDef| {
            l.family == Family::Layer
                && l.operands == Operands::One
                && !l.has_params()
                && l.args.iter().all(|a| a.default != Default::Required)
        };
        std::iter::once("none").chain(LAYERS.iter().filter(usable).map(|l| l.name)).collect()
    });
    &WORDS
}

/// The options of a layer value (`lstm(64, sequences = true)`) bound as a call would bind them; `None`
/// when they do not bind (an error the checker already reported).
pub fn bind_value(lv: &LayerValue) -> Option<Args> {
    bind_args(lv.layer, &lv.args).ok()
}

/// Looks a layer or tensor function up by name.
pub fn lookup(name: &str) -> Option<&'static LayerDef> {
    LAYERS.iter().find(|l| l.name == name)
}

/// The known name a Keras or PyTorch spelling stands for (`kernel_size` → `kernel`,
/// `crate::aliases`), else the closest within a small edit distance, for "did you mean".
pub fn suggest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let candidates: Vec<&'a str> = candidates.into_iter().collect();
    if let Some(c) = crate::aliases::rename(name, &candidates) {
        return Some(c);
    }
    let mut best: Option<(&str, usize)> = None;
    for c in candidates {
        let d = edit_distance(name, c);
        let limit = (name.len().max(c.len()) / 3).max(1);
        // Ties go to the alphabetically first name, so output is deterministic.
        if d <= limit && best.is_none_or(|(bc, bd)| d < bd || (d == bd && c < bc)) {
            best = Some((c, d));
        }
    }
    best.map(|(c, _)| c)
}

/// Levenshtein distance between `a` and `b` in characters (for "did you mean").
pub fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for i in 1..=a.len() {
        let mut cur = vec![i; b.len() + 1];
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            cur[j] = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests;
