//! The declared schema of every callable a `train` block names — losses, metrics,
//! optimizers, schedules, initialisers, data sources and helpers — and of the train
//! block's fields: names, options with their kinds, defaults and value ranges, a doc
//! line, and the kind of thing each is. Layers have their own table (`layers/`).
//!
//! This is the one list: the checker validates calls and fields against it, the
//! runtime reads defaults from it ([`default_f64`]), completion and hover describe
//! it. Adding an optimizer, loss, metric or data source is an entry here plus its
//! implementation (the runtime's update rule, the IR lowering of the objective).

/// What kind of callable something is; a field names the kind it needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FnKind {
    /// A loss minimised by training (`cross_entropy`, `mse`…).
    Loss,
    /// A metric reported each epoch (`accuracy`…).
    Metric,
    /// An optimizer (`sgd`, `adam`…).
    Optimizer,
    /// A learning-rate schedule (`step_decay`…).
    Schedule,
    /// A parameter initialiser (`glorot_uniform`…).
    Initialiser,
    /// A data source (`csv`, `idx`, `text`…).
    DataSource,
    /// `split`, `early_stop`, `column`, `load`.
    Helper,
}

impl FnKind {
    /// "a loss", "an optimizer", … for messages.
    pub fn article(self) -> &'static str {
        match self {
            FnKind::Loss => "a loss",
            FnKind::Metric => "a metric",
            FnKind::Optimizer => "an optimizer",
            FnKind::Schedule => "a learning-rate schedule",
            FnKind::Initialiser => "an initialiser",
            FnKind::DataSource => "a data source",
            FnKind::Helper => "a helper",
        }
    }

    /// The bare noun ("loss", "data source"), for headings and lists.
    pub fn noun(self) -> &'static str {
        match self {
            FnKind::Loss => "loss",
            FnKind::Metric => "metric",
            FnKind::Optimizer => "optimizer",
            FnKind::Schedule => "schedule",
            FnKind::Initialiser => "initialiser",
            FnKind::DataSource => "data source",
            FnKind::Helper => "helper",
        }
    }
}

/// The numbers an option (or a field) accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Range {
    /// `> 0`.
    Positive,
    /// `≥ 0`.
    NonNegative,
    /// [0, 1): momenta and decay rates of running averages (1 would never forget).
    UnitHalfOpen,
    /// `[0, 1]`.
    Unit,
    /// `(0, 1)`.
    OpenUnit,
    /// A whole number `≥ 1`.
    PositiveInt,
    /// A whole number `≥ 0`.
    NonNegativeInt,
}

impl Range {
    /// The range as words for messages (`"in [0, 1)"`).
    pub fn describe(self) -> &'static str {
        match self {
            Range::Positive => "> 0",
            Range::NonNegative => "≥ 0",
            Range::UnitHalfOpen => "in [0, 1)",
            Range::Unit => "in [0, 1]",
            Range::OpenUnit => "in (0, 1)",
            Range::PositiveInt => "an integer ≥ 1",
            Range::NonNegativeInt => "an integer ≥ 0",
        }
    }

    /// Whether `x` is finite and in the range (whole, for the integer ranges).
    pub fn contains(self, x: f64) -> bool {
        let whole = x.fract() == 0.0;
        x.is_finite()
            && match self {
                Range::Positive => x > 0.0,
                Range::NonNegative => x >= 0.0,
                Range::UnitHalfOpen => (0.0..1.0).contains(&x),
                Range::Unit => (0.0..=1.0).contains(&x),
                Range::OpenUnit => x > 0.0 && x < 1.0,
                Range::PositiveInt => whole && x >= 1.0,
                Range::NonNegativeInt => whole && x >= 0.0,
            }
    }
}

/// What an option's value is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValueKind {
    /// Any number.
    Number,
    /// A whole number.
    Int,
    /// `true` or `false`.
    Bool,
    /// A string or bare word (`delimiter = ";"`, `pad = post`, `monitor = val_loss`).
    Word,
    /// A number or a learning-rate schedule (`lr = step_decay(…)`).
    Rate,
    /// Data-source specific (`normalize = …`, `vocab = V`).
    Any,
    /// One of these words (`mode = fan_avg`).
    Choice(&'static [&'static str]),
}

/// An option's default, when it has one the runtime reads.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Default {
    /// No default the runtime reads (the option is absent unless given, or its default depends on other options).
    None,
    /// A number.
    Num(f64),
    /// A flag.
    Bool(bool),
    /// A bare word.
    Word(&'static str),
}

/// One keyword option of a callable.
#[derive(Clone, Copy, Debug)]
pub struct Opt {
    /// The keyword.
    pub name: &'static str,
    /// What values it takes.
    pub value: ValueKind,
    /// Its default.
    pub default: Default,
    /// The numbers allowed, when it is numeric.
    pub range: Option<Range>,
    /// One line for hover, completion and the manual.
    pub doc: &'static str,
}

impl Opt {
    /// "`beta1` = 0.9, in [0, 1)": for hover and completion.
    pub fn describe(&self) -> String {
        let mut s = format!("`{}`", self.name);
        match self.default {
            Default::None => {}
            Default::Num(x) => s.push_str(&format!(" = {x}")),
            Default::Bool(b) => s.push_str(&format!(" = {b}")),
            Default::Word(w) => s.push_str(&format!(" = {w}")),
        }
        if let Some(r) = self.range {
            s.push_str(&format!(", {}", r.describe()));
        }
        if let ValueKind::Choice(words) = self.value {
            s.push_str(&format!(", one of {}", words.join(" | ")));
        }
        if !self.doc.is_empty() {
            s.push_str(&format!(" — {}", self.doc));
        }
        s
    }
}

const fn num(name: &'static str, default: f64, range: Range, doc: &'static str) -> Opt {
    Opt { name, value: ValueKind::Number, default: Default::Num(default), range: Some(range), doc }
}
const fn int(name: &'static str, default: f64, range: Range, doc: &'static str) -> Opt {
    Opt { name, value: ValueKind::Int, default: Default::Num(default), range: Some(range), doc }
}
const fn maybe(name: &'static str, range: Range, doc: &'static str) -> Opt {
    Opt { name, value: ValueKind::Number, default: Default::None, range: Some(range), doc }
}
const fn flag(name: &'static str, default: bool, doc: &'static str) -> Opt {
    Opt { name, value: ValueKind::Bool, default: Default::Bool(default), range: None, doc }
}
const fn word(name: &'static str, default: Default, doc: &'static str) -> Opt {
    Opt { name, value: ValueKind::Word, default, range: None, doc }
}
/// A number with no range but finiteness (`mean`, `minval`).
const fn real(name: &'static str, default: f64, doc: &'static str) -> Opt {
    Opt { name, value: ValueKind::Number, default: Default::Num(default), range: None, doc }
}
const fn choice(name: &'static str, default: &'static str, words: &'static [&'static str], doc: &'static str) -> Opt {
    Opt { name, value: ValueKind::Choice(words), default: Default::Word(default), range: None, doc }
}
const fn any(name: &'static str, doc: &'static str) -> Opt {
    Opt { name, value: ValueKind::Any, default: Default::None, range: None, doc }
}
const fn lr(default: f64) -> Opt {
    // `lr = 0` is a run that keeps the weights (evaluating a stateful model over epochs,
    // tests/training/stateful.nn); below 0 it climbs the loss.
    Opt {
        name: "lr",
        value: ValueKind::Rate,
        default: Default::Num(default),
        range: Some(Range::NonNegative),
        doc: "learning rate, or a schedule",
    }
}

use Range::*;

const EPSILON: Opt = num("epsilon", 1e-7, Positive, "added to denominators");
const WEIGHT_DECAY: Opt = num("weight_decay", 0.0, NonNegative, "L2 decay of kernels and embeddings");
const CLIP_NORM: Opt = maybe("clip_norm", Positive, "rescale gradients to this global norm");
const CLIP_VALUE: Opt = maybe("clip_value", Positive, "clamp each gradient to ±this");
const BETA1: Opt = num("beta1", 0.9, UnitHalfOpen, "decay of the first moment");
const BETA2: Opt = num("beta2", 0.999, UnitHalfOpen, "decay of the second moment");
const WEIGHT: Opt = any("weight", "per-sample weights");
const FROM_LOGITS: Opt = flag("from_logits", true, "the prediction is logits, not probabilities");
const THRESHOLD: Opt = num("threshold", 0.5, Unit, "a probability above it counts as positive");
const CLASS: Opt = int("class", 1.0, NonNegativeInt, "the positive class");
const SHUFFLE: Opt = flag("shuffle", true, "shuffle the samples every epoch");
const NORMALIZE: Opt = any("normalize", "scale arrays (`normalize = [x]`, `true`)");
const HEADER: Opt = any("header", "whether the first line names the columns (default: detected)");
const SCHEDULE_LR: Opt = Opt {
    name: "lr",
    value: ValueKind::Number,
    // The optimizer's own default learning rate.
    default: Default::None,
    range: Some(NonNegative),
    doc: "initial learning rate (default: the optimizer's)",
};
const STDDEV: Opt = num("stddev", 0.05, Positive, "standard deviation");
const MEAN: Opt = real("mean", 0.0, "mean");
const MONITOR: Opt = word("monitor", Default::Word("val_loss"), "the history column watched");

/// What a data source yields and how its call reads: the checker (`check_data`, `data_dims`) and the
/// runtime (`data/from_call.rs`) decide from this, never from a source's name.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SourceDef {
    /// The first positional argument is the file read (`csv("data/x.csv", …)`).
    pub path_first: bool,
    /// What it yields, which decides how its keywords and dims are read.
    pub yields: Yields,
    /// How the source binds a vocabulary dim (`vocab = V`, else `V`).
    pub vocab: Vocab,
    /// How to bind a dim from this source, for E0410's help (`{dim}` stands for the dim); empty: the generic help.
    pub bind_help: &'static str,
}

/// The arrays a data source yields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Yields {
    /// Keywords that are not options name arrays, each by a column selector (a name, an index, a range, a
    /// glob, a list, a label expression); a named column is one value per sample (`csv`).
    Columns,
    /// Keywords that are not options name arrays, each by keys of the record (a key, a glob, a list, a label
    /// expression); a key may hold a list, so widths are known only when the file is read (`jsonl`).
    Keys,
    /// Keywords that are not options name arrays, each a file of its own (`idx`, `npy`).
    Files,
    /// An array for every model input, read from the file under the input's name (`npz`).
    EveryInput,
    /// An array for every model input, made in its declared shape (`synthetic`): binds no dim.
    Declared,
    /// Fixed arrays (`text`: tokens and next; `sentences`: tokens and label).
    Fixed(&'static [FixedArray]),
}

/// One array of a [`Yields::Fixed`] source.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FixedArray {
    /// The option that renames it (`text(x = chars)`), if any.
    pub option: Option<&'static str>,
    /// The array's name when the option does not rename it (`x`, `y`, `tokens`…).
    pub default: &'static str,
    /// Its per-sample length.
    pub length: Length,
}

/// The per-sample length of a fixed array.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Length {
    /// `seq = k` values, else the declared input's length (the source pads or cuts to it).
    Seq,
    /// `seq = k` values, else the longest sample's (read from the file).
    SeqOrLongest,
    /// One value.
    One,
}

/// How a source's vocabulary decides a dim.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Vocab {
    /// The source binds no vocabulary dim.
    None,
    /// The dim is the number of distinct tokens read; a number `vocab = k` only caps it (`text`).
    Counted,
    /// A number `vocab = k` (else the option's default) is the dim's value: it sizes the tables (`sentences`).
    Sized,
}

impl SourceDef {
    /// Whether keywords that are not options name arrays (and so any keyword is accepted).
    pub fn names_arrays(&self) -> bool {
        matches!(self.yields, Yields::Columns | Yields::Keys | Yields::Files)
    }

    /// Whether the source pads or cuts its arrays to the input's declared length.
    pub fn fits_length(&self) -> bool {
        matches!(self.yields, Yields::Fixed(a) if a.iter().any(|a| a.length != Length::One))
    }
}

/// A callable usable in `train` blocks.
pub struct TrainFn {
    /// The name used in `train` blocks.
    pub name: &'static str,
    /// Which kind of callable it is (the field it fits).
    pub kind: FnKind,
    /// Keyword options it takes (positional arguments are checked by count).
    pub options: &'static [Opt],
    /// How many positional arguments it takes at most.
    pub positional: usize,
    /// One line for hover, completion and the manual.
    pub doc: &'static str,
    /// For data sources: what they yield.
    pub source: Option<&'static SourceDef>,
    /// For losses and metrics: what target they compare the prediction with.
    pub labels: Labels,
}

/// The target a loss or metric takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Labels {
    /// A tensor of the prediction's shape (trailing 1-axes aside).
    Same,
    /// Integer class labels (the prediction has one more axis, the classes), or the prediction's shape.
    Classes,
    /// As [`Labels::Classes`]; a float target with one axis fewer is an error (the labels must be int, or
    /// one-hot of the prediction's shape).
    ClassesOrOneHot,
    /// As [`Labels::Classes`]; a one-unit prediction `[…, 1]` with int labels `[…]` is a binary decision.
    ClassesOrBinary,
}

impl TrainFn {
    /// The keyword option `name`, if the callable takes it.
    pub fn option(&self, name: &str) -> Option<&'static Opt> {
        self.options.iter().find(|o| o.name == name)
    }

    /// The names of its keyword options, in declaration order.
    pub fn option_names(&self) -> impl Iterator<Item = &'static str> + Clone + use<'_> {
        self.options.iter().map(|o| o.name)
    }

    /// Data sources that name arrays by keyword accept any other keyword.
    pub fn names_arrays(&self) -> bool {
        self.source.is_some_and(SourceDef::names_arrays)
    }

    /// This loss or metric's target (default [`Labels::Same`]).
    const fn labels(self, labels: Labels) -> TrainFn {
        TrainFn { labels, ..self }
    }
}

const fn f(name: &'static str, kind: FnKind, positional: usize, options: &'static [Opt], doc: &'static str) -> TrainFn {
    TrainFn { name, kind, options, positional, doc, source: None, labels: Labels::Same }
}

const fn source(name: &'static str, def: &'static SourceDef, options: &'static [Opt], doc: &'static str) -> TrainFn {
    let positional = if def.path_first { 1 } else { 0 };
    TrainFn { name, kind: FnKind::DataSource, options, positional, doc, source: Some(def), labels: Labels::Same }
}

const fn def(path_first: bool, yields: Yields) -> SourceDef {
    SourceDef { path_first, yields, vocab: Vocab::None, bind_help: "" }
}

const fn array(option: Option<&'static str>, default: &'static str, length: Length) -> FixedArray {
    FixedArray { option, default, length }
}

// Consts, not `&def(…)` in the table: a reference to a const item is promoted to `'static`, a call's result is not.
const CSV: SourceDef = def(true, Yields::Columns);
const JSONL: SourceDef = def(true, Yields::Keys);
const FILES: SourceDef = def(false, Yields::Files);
const NPZ: SourceDef = def(true, Yields::EveryInput);
const SYNTHETIC: SourceDef = def(false, Yields::Declared);
const TEXT_ARRAYS: &[FixedArray] = &[array(Some("x"), "tokens", Length::Seq), array(Some("y"), "next", Length::Seq)];
const TEXT: SourceDef = SourceDef {
    path_first: true,
    yields: Yields::Fixed(TEXT_ARRAYS),
    vocab: Vocab::Counted,
    bind_help: "bind it from data with `seq = 40` (a window length) or `vocab = {dim}` (the vocabulary size)",
};
const SENTENCES_ARRAYS: &[FixedArray] =
    &[array(None, "tokens", Length::SeqOrLongest), array(None, "label", Length::One)];
const SENTENCES: SourceDef = SourceDef {
    path_first: true,
    yields: Yields::Fixed(SENTENCES_ARRAYS),
    vocab: Vocab::Sized,
    bind_help: "bind it from data: an input axis `[N, {dim}]` for the tokens, or `vocab = {dim}`",
};

use FnKind::*;

/// Every callable usable in `train` blocks, grouped by kind.
pub static TRAIN_FUNCTIONS: &[TrainFn] = &[
    // ---- losses: `name(prediction, target)`, lowered in `ir/lower.rs::objective`.
    f("mse", Loss, 2, &[WEIGHT], "Mean squared error."),
    f("l1", Loss, 2, &[WEIGHT], "Mean absolute error."),
    f("cross_entropy", Loss, 2, &[FROM_LOGITS, WEIGHT], "Softmax cross-entropy; labels int[…] or one-hot [… , C].")
        .labels(Labels::ClassesOrOneHot),
    f("binary_cross_entropy", Loss, 2, &[FROM_LOGITS, WEIGHT], "Binary cross-entropy of probabilities."),
    f("bce_with_logits", Loss, 2, &[WEIGHT], "Binary cross-entropy of logits."),
    f("nll", Loss, 2, &[WEIGHT], "Negative log-likelihood of log-probabilities.").labels(Labels::Classes),
    f(
        "huber",
        Loss,
        2,
        &[num("delta", 1.0, Positive, "where the loss turns from quadratic to linear"), WEIGHT],
        "Huber loss: ½d² for |d| ≤ delta, else delta·(|d| − ½delta); mean over all elements.",
    ),
    f("l2", Loss, 1, &[], "Sum of squares of the parameters: l2(params)."),
    // ---- metrics
    f("mae", Metric, 2, &[], "Mean absolute error."),
    f("accuracy", Metric, 2, &[THRESHOLD], "Fraction of correct predictions.").labels(Labels::ClassesOrBinary),
    f("precision", Metric, 2, &[CLASS, THRESHOLD], "Precision of one class.").labels(Labels::ClassesOrBinary),
    f("recall", Metric, 2, &[CLASS, THRESHOLD], "Recall of one class.").labels(Labels::ClassesOrBinary),
    f("perplexity", Metric, 2, &[], "exp of the cross-entropy.").labels(Labels::Classes),
    f(
        "top_k_accuracy",
        Metric,
        2,
        &[int("k", 5.0, PositiveInt, "how many of the highest logits may hold the label")],
        "Fraction of samples whose label is among the k highest logits (int labels).",
    )
    .labels(Labels::Classes),
    // ---- optimizers: update rules in `runtime/src/train/optim.rs`.
    f(
        "sgd",
        Optimizer,
        1,
        &[
            lr(0.01),
            num("momentum", 0.0, UnitHalfOpen, "velocity decay"),
            flag("nesterov", false, "Nesterov momentum"),
            WEIGHT_DECAY,
            CLIP_NORM,
            CLIP_VALUE,
        ],
        "Stochastic gradient descent.",
    ),
    f("adam", Optimizer, 1, &[lr(1e-3), BETA1, BETA2, EPSILON, WEIGHT_DECAY, CLIP_NORM, CLIP_VALUE], "Adam."),
    f("adamax", Optimizer, 1, &[lr(1e-3), BETA1, BETA2, EPSILON, WEIGHT_DECAY, CLIP_NORM, CLIP_VALUE], "Adamax."),
    f(
        "rmsprop",
        Optimizer,
        1,
        &[
            lr(1e-3),
            num("rho", 0.9, UnitHalfOpen, "decay of the squared-gradient average"),
            num("momentum", 0.0, UnitHalfOpen, "velocity decay"),
            EPSILON,
            WEIGHT_DECAY,
            CLIP_NORM,
            CLIP_VALUE,
        ],
        "RMSprop.",
    ),
    f(
        "adagrad",
        Optimizer,
        1,
        &[
            lr(1e-3),
            num("initial_accumulator", 0.1, NonNegative, "starting value of the squared-gradient sum"),
            EPSILON,
            WEIGHT_DECAY,
            CLIP_NORM,
            CLIP_VALUE,
        ],
        "Adagrad.",
    ),
    f(
        "adadelta",
        Optimizer,
        1,
        &[
            lr(1e-3),
            num("rho", 0.95, UnitHalfOpen, "decay of the running averages"),
            EPSILON,
            WEIGHT_DECAY,
            CLIP_NORM,
            CLIP_VALUE,
        ],
        "Adadelta.",
    ),
    f(
        "lion",
        Optimizer,
        1,
        &[
            lr(1e-3),
            num("beta1", 0.9, UnitHalfOpen, "mix of momentum and gradient in the update's sign"),
            num("beta2", 0.99, UnitHalfOpen, "decay of the momentum"),
            WEIGHT_DECAY,
            CLIP_NORM,
            CLIP_VALUE,
        ],
        "Lion (Keras 3): w −= lr·(sign(β1·m + (1−β1)·g) + wd·w); m ← β2·m + (1−β2)·g.",
    ),
    // ---- learning-rate schedules (an optimizer's `lr`)
    f(
        "step_decay",
        Schedule,
        1,
        &[SCHEDULE_LR, int("every", 10.0, PositiveInt, "epochs per step"), num("factor", 0.5, Positive, "")],
        "lr · factor^(epoch / every).",
    ),
    f(
        "exponential_decay",
        Schedule,
        1,
        &[SCHEDULE_LR, num("rate", 0.96, Positive, ""), int("every", 1000.0, PositiveInt, "steps per decay")],
        "lr · rate^(step / every).",
    ),
    f(
        "reduce_on_plateau",
        Schedule,
        1,
        &[
            SCHEDULE_LR,
            num("factor", 0.1, OpenUnit, "multiplier on a plateau"),
            int("patience", 10.0, NonNegativeInt, "epochs without improvement"),
            MONITOR,
        ],
        "Reduce lr when a metric stops improving.",
    ),
    // ---- data sources: read in `runtime/src/data/` (`from_call.rs` turns a call into the reader's spec).
    source(
        "csv",
        &CSV,
        &[HEADER, word("delimiter", Default::None, "column separator (default: detected)"), NORMALIZE, SHUFFLE],
        "CSV/TSV table; other keywords name arrays by column selectors.",
    ),
    source(
        "jsonl",
        &JSONL,
        &[NORMALIZE, SHUFFLE],
        "JSON Lines, one object per line; other keywords name arrays by keys (a key, a glob, a list).",
    ),
    source("idx", &FILES, &[NORMALIZE, SHUFFLE], "MNIST IDX files; keywords name arrays."),
    source("npy", &FILES, &[NORMALIZE, SHUFFLE], ".npy files; keywords name arrays."),
    source("npz", &NPZ, &[NORMALIZE, SHUFFLE], "A .npz archive; its arrays are named inside."),
    source(
        "text",
        &TEXT,
        &[
            any("seq", "window length"),
            word("x", Default::Word("tokens"), "name of the input array"),
            word("y", Default::Word("next"), "name of the target array"),
            any("vocab", "vocabulary size (a number or a dim)"),
            flag("lower", true, "lower-case the text"),
            SHUFFLE,
        ],
        "Character-level next-token pairs.",
    ),
    source(
        "sentences",
        &SENTENCES,
        &[
            any("tokens", "column of the text"),
            any("label", "column of the label"),
            Opt {
                name: "vocab",
                value: ValueKind::Any,
                default: Default::Num(10_000.0),
                range: None,
                doc: "vocabulary size (a number or a dim)",
            },
            any("seq", "padded length (default: the longest sentence)"),
            word("pad", Default::Word("post"), "where padding goes: pre or post"),
            HEADER,
            SHUFFLE,
        ],
        "Word-level sentences with labels.",
    ),
    source(
        "synthetic",
        &SYNTHETIC,
        &[int("n", 1000.0, PositiveInt, "samples"), int("classes", 2.0, PositiveInt, "classes of int inputs"), SHUFFLE],
        "Random data of the declared shapes.",
    ),
    // ---- helpers
    f("split", Helper, 1, &[], "Hold out a fraction of the training data for validation."),
    f(
        "early_stop",
        Helper,
        0,
        &[
            int("patience", 3.0, NonNegativeInt, "epochs without improvement"),
            MONITOR,
            num("min_delta", 0.0, NonNegative, "smallest change that counts as improvement"),
        ],
        "Stop when the monitored value stops improving.",
    ),
    f("column", Helper, 1, &[], "A column of the data table (label expressions)."),
    f(
        "load",
        Helper,
        1,
        &[word("prefix", Default::None, "prefix of the stored names")],
        "Initialise parameters from a safetensors file.",
    ),
];

/// The initialisers of a layer's `init = …` (docs/src/layers.md), with Keras 3's names, options and defaults,
/// drawn in `runtime/src/train/init.rs`. Kept apart from [`TRAIN_FUNCTIONS`]: they are values of layer options,
/// not train-block calls. Positional arguments bind the options in the order declared here (`normal(0.02)` is
/// the standard deviation, `uniform(0.1)` the limit, `constant(0.5)` the value).
pub static INITIALISERS: &[TrainFn] = &[
    f("zeros", Initialiser, 0, &[], "All zeros."),
    f("ones", Initialiser, 0, &[], "All ones."),
    f("constant", Initialiser, 1, &[real("value", 0.0, "every element")], "Every element `value`."),
    f("normal", Initialiser, 2, &[STDDEV, MEAN], "Normal: mean + stddev · N(0, 1)."),
    f("truncated_normal", Initialiser, 2, &[STDDEV, MEAN], "Normal redrawn beyond 2 stddev of the mean."),
    f(
        "uniform",
        Initialiser,
        1,
        &[
            maybe("limit", Positive, "shorthand for minval = −limit, maxval = limit"),
            real("minval", -0.05, "lower bound"),
            real("maxval", 0.05, "upper bound (> minval)"),
        ],
        "Uniform in [minval, maxval).",
    ),
    f(
        "variance_scaling",
        Initialiser,
        0,
        &[
            num("scale", 1.0, Positive, "variance scale"),
            choice("mode", "fan_in", &["fan_in", "fan_out", "fan_avg"], "the fan the scale is divided by"),
            choice(
                "distribution",
                "truncated_normal",
                &["truncated_normal", "untruncated_normal", "uniform", "normal"],
                "truncated normal (σ corrected for the 2σ cut), untruncated normal or uniform; `normal` is Keras's \
                 alias of truncated_normal",
            ),
        ],
        "Variance scale / fan: σ = √(scale / fan), or uniform in ±√(3 · scale / fan).",
    ),
    f("glorot_uniform", Initialiser, 0, &[], "Uniform in ±√(6 / (fan_in + fan_out))."),
    f("glorot_normal", Initialiser, 0, &[], "Truncated normal, σ = √(2 / (fan_in + fan_out))."),
    f("he_normal", Initialiser, 0, &[], "Truncated normal, σ = √(2 / fan_in)."),
    f("he_uniform", Initialiser, 0, &[], "Uniform in ±√(6 / fan_in)."),
    f("lecun_normal", Initialiser, 0, &[], "Truncated normal, σ = √(1 / fan_in)."),
    f("lecun_uniform", Initialiser, 0, &[], "Uniform in ±√(3 / fan_in)."),
    f(
        "orthogonal",
        Initialiser,
        1,
        &[num("gain", 1.0, Positive, "multiplies the matrix")],
        "An orthogonal matrix (rows: the product of the leading axes), times gain.",
    ),
];

/// The initialiser `name`.
pub fn lookup_initialiser(name: &str) -> Option<&'static TrainFn> {
    INITIALISERS.iter().find(|f| f.name == name)
}

/// Every name `init = …` accepts, for messages and completion.
pub fn initialiser_names() -> impl Iterator<Item = &'static str> + Clone {
    INITIALISERS.iter().map(|f| f.name)
}

/// What a train block field holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldKind {
    /// A call of a callable of this kind.
    Call(FnKind),
    /// An expression (a loss may be a sum of losses; metrics a list).
    Expr,
    /// A number in a range.
    Count(Range),
    /// Anything else the runtime reads (paths, flags, lists).
    Value,
}

/// One field of a `train` block.
pub struct Field {
    /// The field's name (`epochs`, `optimizer`…).
    pub name: &'static str,
    /// What value it takes.
    pub kind: FieldKind,
    /// One line for hover, completion and the manual.
    pub doc: &'static str,
}

const fn field(name: &'static str, kind: FieldKind, doc: &'static str) -> Field {
    Field { name, kind, doc }
}

/// Every field a `train` block accepts.
pub static TRAIN_FIELDS: &[Field] = &[
    field("model", FieldKind::Value, "the model trained: `Model(param = …)`"),
    field("data", FieldKind::Call(DataSource), "the training data"),
    field("loss", FieldKind::Expr, "the loss minimised"),
    field("optimizer", FieldKind::Call(Optimizer), "the optimizer (default sgd)"),
    field("batch", FieldKind::Count(PositiveInt), "samples per step"),
    field("epochs", FieldKind::Count(PositiveInt), "passes over the data"),
    field("steps", FieldKind::Count(PositiveInt), "updates in all (instead of epochs)"),
    field("validate", FieldKind::Value, "validation data: `split(0.1)` or a data source"),
    field("test", FieldKind::Value, "test data: `split(0.1)` or a data source"),
    field("metrics", FieldKind::Expr, "metrics reported each epoch"),
    field("seed", FieldKind::Count(NonNegativeInt), "seed of initialisation and shuffling"),
    field("early_stop", FieldKind::Call(Helper), "`early_stop(patience = …)`"),
    field("class_weight", FieldKind::Value, "per-class loss weights"),
    field("checkpoint", FieldKind::Value, "where to save the weights"),
    field("keep_best", FieldKind::Value, "keep the weights of the best epoch"),
    field("shuffle", FieldKind::Value, "shuffle the samples every epoch"),
    field("init", FieldKind::Call(Helper), "`load(\"weights.safetensors\")`"),
    field("stateful", FieldKind::Value, "carry recurrent state across batches"),
    field("lr_schedule", FieldKind::Call(Schedule), "a learning-rate schedule"),
];

/// The callable named `name`, if any.
pub fn lookup_fn(name: &str) -> Option<&'static TrainFn> {
    TRAIN_FUNCTIONS.iter().find(|f| f.name == name)
}

/// The schema of the data source `name`.
pub fn lookup_source(name: &str) -> Option<&'static SourceDef> {
    lookup_fn(name).and_then(|f| f.source)
}

/// The train-block field named `name`, if any.
pub fn lookup_field(name: &str) -> Option<&'static Field> {
    TRAIN_FIELDS.iter().find(|f| f.name == name)
}

/// The names of every train-block field, in declaration order.
pub fn field_names() -> impl Iterator<Item = &'static str> + Clone {
    TRAIN_FIELDS.iter().map(|f| f.name)
}

/// The callables of one kind, in schema order (for messages and completion).
pub fn names_of(kind: FnKind) -> impl Iterator<Item = &'static str> + Clone {
    TRAIN_FUNCTIONS.iter().chain(INITIALISERS).filter(move |f| f.kind == kind).map(|f| f.name)
}

/// The declared numeric default of `callable`'s `option`: what the runtime uses when
/// the call leaves it out. `None` when the schema declares no such numeric default.
pub fn default_f64(callable: &str, option: &str) -> Option<f64> {
    match lookup_fn(callable).or_else(|| lookup_initialiser(callable))?.option(option)?.default {
        Default::Num(x) => Some(x),
        _ => None,
    }
}

/// The declared word default of `callable`'s `option` (`variance_scaling`'s `mode`).
pub fn default_word(callable: &str, option: &str) -> Option<&'static str> {
    match lookup_fn(callable).or_else(|| lookup_initialiser(callable))?.option(option)?.default {
        Default::Word(w) => Some(w),
        _ => None,
    }
}

/// The declared boolean default of `callable`'s `option`.
pub fn default_bool(callable: &str, option: &str) -> Option<bool> {
    match lookup_fn(callable)?.option(option)?.default {
        Default::Bool(b) => Some(b),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_defaults_in_range() {
        let all: Vec<&TrainFn> = TRAIN_FUNCTIONS.iter().chain(INITIALISERS).collect();
        for (i, a) in all.iter().enumerate() {
            assert!(all[i + 1..].iter().all(|b| b.name != a.name), "`{}` twice", a.name);
            assert!(a.positional <= a.options.len() || a.kind != Initialiser, "`{}`: positional > options", a.name);
            for (j, o) in a.options.iter().enumerate() {
                assert!(a.options[j + 1..].iter().all(|p| p.name != o.name), "`{}.{}` twice", a.name, o.name);
                if let (Default::Num(x), Some(r)) = (o.default, o.range) {
                    assert!(r.contains(x), "default of `{}.{}` is outside {}", a.name, o.name, r.describe());
                }
            }
        }
        for (i, a) in TRAIN_FIELDS.iter().enumerate() {
            assert!(TRAIN_FIELDS[i + 1..].iter().all(|b| b.name != a.name), "field `{}` twice", a.name);
        }
    }

    #[test]
    fn defaults_are_read_by_name() {
        assert_eq!(default_f64("adam", "beta2"), Some(0.999));
        assert_eq!(default_f64("sgd", "lr"), Some(0.01));
        assert_eq!(default_f64("lion", "beta2"), Some(0.99));
        assert_eq!(default_f64("adam", "nope"), None);
        assert_eq!(default_bool("cross_entropy", "from_logits"), Some(true));
    }
}
