//! Diagnostics as plain data, and the registry of stable codes.
//!
//! Every stage reports through [`Diagnostic`]; only the outermost layer (the
//! CLI, the language server) renders them as text, JSON or LSP messages.

use crate::{FileId, Span};

/// How a diagnostic affects the run: errors stop `check`/`run`, warnings are only reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// The program is rejected.
    Error,
    /// The program is accepted but probably not what was meant.
    Warning,
}

impl Severity {
    /// The lower-case word used in rendered output and JSON (`"error"`, `"warning"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

/// A labelled span. The primary label says what is wrong; secondary labels
/// say where the conflicting facts came from.
#[derive(Clone, Debug, PartialEq)]
pub struct Label {
    /// The file the span is in (a `use`d file may differ from the root).
    pub file: FileId,
    /// The byte range the label underlines.
    pub span: Span,
    /// The text shown at the label; empty for a bare underline.
    pub message: String,
}

/// One finding of any stage: a stable code, the spot it is about, related spots and notes.
/// Plain data; only the outermost layer renders it.
#[derive(Clone, Debug, PartialEq)]
pub struct Diagnostic {
    /// The stable code (`E0201`…), explained by `nnc explain`.
    pub code: Code,
    /// Error or warning; set from the code by [`Diagnostic::new`].
    pub severity: Severity,
    /// The headline: what is wrong, with the numbers involved.
    pub message: String,
    /// Where the problem is.
    pub primary: Label,
    /// Where the conflicting facts came from (a declaration, an earlier use), in the order they are shown.
    pub secondary: Vec<Label>,
    /// Notes: the rule applied with its numbers, and `help:` hints.
    pub notes: Vec<String>,
}

impl Diagnostic {
    /// A diagnostic with `code`'s severity at `span` of `file`, with no labels text, related spots or notes yet.
    pub fn new(code: Code, file: FileId, span: Span, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: code.severity(),
            code,
            message: message.into(),
            primary: Label { file, span, message: String::new() },
            secondary: Vec::new(),
            notes: Vec::new(),
        }
    }
    /// Sets the text of the primary label.
    pub fn with_label(mut self, message: impl Into<String>) -> Diagnostic {
        self.primary.message = message.into();
        self
    }
    /// Adds a related location with its explanation.
    pub fn with_secondary(mut self, file: FileId, span: Span, message: impl Into<String>) -> Diagnostic {
        self.secondary.push(Label { file, span, message: message.into() });
        self
    }
    /// Adds a note (the rule applied, with its numbers).
    pub fn with_note(mut self, note: impl Into<String>) -> Diagnostic {
        self.notes.push(note.into());
        self
    }
    /// Adds a note rendered as `help: …`: what to change.
    pub fn with_help(mut self, help: impl Into<String>) -> Diagnostic {
        self.notes.push(format!("help: {}", help.into()));
        self
    }
}

macro_rules! codes {
    ($( $variant:ident = $code:literal, $sev:ident, $title:literal, $explain:literal; )*) => {
        /// A stable diagnostic code. Codes are never reused or renumbered.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Code { $( #[doc = $title] $variant ),* }

        impl Code {
            /// Every code, in declaration order.
            pub const ALL: &'static [Code] = &[ $( Code::$variant ),* ];
            /// The code as written in output and accepted by `nnc explain`, e.g. `"E0201"`.
            pub fn as_str(self) -> &'static str {
                match self { $( Code::$variant => $code ),* }
            }
            /// Whether diagnostics with this code are errors or warnings.
            pub fn severity(self) -> Severity {
                match self { $( Code::$variant => Severity::$sev ),* }
            }
            /// One line: what the code means.
            pub fn title(self) -> &'static str {
                match self { $( Code::$variant => $title ),* }
            }
            /// The long explanation printed by `nnc explain`.
            pub fn explanation(self) -> &'static str {
                match self { $( Code::$variant => $explain ),* }
            }
            /// The code written as `s` (case and surrounding space ignored), if it exists.
            pub fn parse(s: &str) -> Option<Code> {
                let s = s.trim().to_ascii_uppercase();
                Code::ALL.iter().copied().find(|c| c.as_str() == s)
            }
        }
    };
}

impl Code {
    /// The page of the manual (under `docs/src/`) that states the rule this code enforces; `nnc explain`
    /// and the diagnostics catalogue point there. Decided by the code's family (its hundreds), with the
    /// few codes whose rule lives elsewhere named, so a new code lands on a sensible page by default.
    pub fn manual_page(self) -> &'static str {
        let number: u32 = self.as_str()[1..].parse().unwrap_or(0);
        let warning = self.severity() == Severity::Warning;
        match (warning, number) {
            (true, 2) => "reference/objectives.md",
            (true, 4) => "reference/data.md",
            (true, _) => "reference/declarations.md",
            (false, 0..=99) => "reference/lexical.md",
            (false, 103) => "layers.md",
            (false, 105 | 106) => "reference/declarations.md",
            (false, 107) => "reference/models-calling-models.md",
            (false, 108) => "reference/train.md",
            (false, 100..=199) => "reference/declarations.md",
            (false, 200..=299) => "layers.md",
            (false, 308) => "reference/blocks.md",
            (false, 300..=399) => "reference/dims.md",
            (false, 404 | 409 | 410) => "reference/data.md",
            (false, 405 | 406 | 411) => "reference/objectives.md",
            (false, 408 | 412) => "reference/blocks.md",
            (false, 401) => "reference/declarations.md",
            (false, 400..=499) => "reference/train.md",
            (false, 600..=699) => "export-keras.md",
            (false, _) => "reference/files.md",
        }
    }
}

codes! {
    // ---- syntax
    SyntaxError = "E0001", Error, "syntax error",
"The file does not follow the grammar of the `.nn` language at this point.
The message says what was expected, for example:

    let h = x |> dense(64          // expected `)` to close the call

Check for a missing operator, comma or keyword.";
    Unclosed = "E0002", Error, "unclosed or mismatched delimiter",
"A `(`, `[` or `{` was opened but never closed, or closed with the wrong
delimiter. The secondary label shows where the construct was opened.

    output y = dense(x, 10]        // `]` closes nothing; `(` still open";
    InvalidLiteral = "E0003", Error, "invalid literal",
"A number is out of range (integers must fit in 64 bits) or a string is not
terminated on its line.";
    InvalidSource = "E0004", Error, "source file is not valid UTF-8",
"`.nn` files are UTF-8 text. The file contains bytes that are not valid UTF-8.";

    // ---- names
    UndefinedName = "E0101", Error, "undefined name",
"A name is used that is not an input, a `let` binding, a parameter or a
declared dim in scope. A close match is suggested when there is one.

    input x: [N, 10]
    output y = dense(xx, 5)        // `xx` is not defined; did you mean `x`?";
    UndeclaredDim = "E0102", Error, "undeclared dim",
"Tensor types may only use dims declared with `dim` at the top of the file,
pattern dims of a block signature, or integer parameters of the model.

    dim N
    model M { input x: [N, T] }    // `T` is not declared: add `dim T`";
    UnknownLayer = "E0103", Error, "unknown layer, block or function",
"The called name is not a layer of the standard library (the manual's layer catalogue),
a block or model in scope, or a built-in tensor function.";
    DuplicateDefinition = "E0104", Error, "defined twice",
"Two declarations or bindings in the same scope have the same name.
Model, block and dim names must be unique across a file and what it `use`s;
within a body every input, `let` and output name must be unique.";
    UseNotFound = "E0105", Error, "`use` target not found",
"A `use \"file.nn\"` names a file that does not exist (paths are relative to
the file that says `use`), or `use std.x` names a standard library module
that does not exist.";
    UseCycle = "E0106", Error, "`use` cycle",
"Files `use` each other in a cycle. Move the shared declarations into a third
file that both use.";
    NotAModel = "E0107", Error, "not a model",
"A `train` block names something as its model (in `model = …` or `over …`)
that is not a model declared in the file or its `use`s.";
    UndefinedNameInTrain = "E0108", Error, "unknown name in a train block",
"Names in a `train` block resolve to its own `let`s, then to the arrays of
its data source, then to the model's outputs and inputs. This name is none
of those.";

    // ---- arguments and options
    UnknownOption = "E0201", Error, "unknown option",
"A keyword argument names an option the layer or function does not have.
The message lists the options it does have and suggests a close match.

    conv2d(x, 16, kernal = 3)      // did you mean `kernel`?";
    OptionOutOfRange = "E0202", Error, "option value out of range",
"An option has a value outside its allowed range, for example a dropout rate
outside [0, 1), a non-positive number of units, or a kernel size of 0.";
    WrongArgumentType = "E0203", Error, "argument of the wrong kind",
"An argument has the wrong kind of value: a tensor where a number is
expected, a float where an integer is expected, an unknown mode word
(`padding = sam`), or a layer value where a tensor is expected.";
    MissingArgument = "E0204", Error, "missing argument",
"A required argument of a layer, block, model or function is not given.

    dense(x)                       // missing `units`";
    TooManyArguments = "E0205", Error, "too many positional arguments",
"A call passes more positional arguments than the callee accepts.";
    DuplicateArgument = "E0206", Error, "argument given twice",
"The same argument is given twice, positionally and by keyword or twice by
keyword.";
    NotCompileTime = "E0207", Error, "value not known at compile time",
"Layer sizes, block parameters and `if` conditions must be known when the
model is checked: integers, dims with values, or parameters.";

    // ---- shapes
    RankMismatch = "E0301", Error, "tensor has the wrong rank",
"A layer expects a tensor of a certain rank (number of axes) and got another.
`conv2d` takes [N, H, W, C]; `conv1d`, `lstm` and the other recurrent layers
take [N, T, D]; `embedding` takes int[N, T].

A frequent cause is a missing `flatten` before `dense`, or a missing
channel axis on images ([N, 28, 28] instead of [N, 28, 28, 1]).";
    AnnotationMismatch = "E0302", Error, "shape does not match its annotation",
"A `let`, `output` or block return type annotation states a shape that is
not the inferred one. The message names the first differing axis. Dims are
compared after normalisation: `2*M` equals `M + M`.";
    BroadcastMismatch = "E0303", Error, "shapes cannot be broadcast",
"Elementwise arithmetic between tensors follows NumPy broadcasting: axes are
aligned from the right and each pair must be equal or one of them 1.";
    NonPositiveDim = "E0304", Error, "layer output would have a non-positive size",
"A convolution or pooling produces an axis of size zero or less: the kernel
(with dilation) is larger than the padded input. The note shows the formula
with the numbers that were used. Use `padding = same`, a smaller kernel or
stride, or fewer pooling layers.";
    ElementCountMismatch = "E0305", Error, "reshape changes the number of elements",
"`reshape` must keep the number of elements per batch element. The product
of the target dims must equal the product of the input dims (at most one
dim may be `-1`, inferred).";
    AxisMismatch = "E0306", Error, "operands disagree on an axis",
"Two tensors that must agree on an axis do not: `concat` needs equal sizes
on every axis but the concatenation axis, attention needs equal feature
sizes of query and key/value, and a recurrent `initial_state` must be
[N, units].";
    ElementTypeMismatch = "E0307", Error, "int versus float tensor",
"A layer or loss needs float values and got an `int[…]` tensor, or needs
indices (`int[…]`) and got floats. `embedding` and the labels of
`cross_entropy` take int tensors; everything else takes floats.";
    BlockUnification = "E0308", Error, "block call does not match the block's signature",
"The dims in a block's signature are pattern variables bound at each call.
The argument's shape could not be matched against the parameter type: a
rank differs, a concrete dim differs, or one pattern dim would be bound to
two different sizes. The secondary label points into the block.";
    AxisOutOfRange = "E0309", Error, "axis out of range",
"An `axis` argument or an index names an axis the tensor does not have.";
    DimMismatch = "E0310", Error, "dims differ",
"Two dims that must be equal are provably different, or cannot be shown
equal (for example `N` against `M` when nothing relates them). The message
states which.";
    TupleArity = "E0311", Error, "wrong number of names in a tuple pattern",
"`let (a, b, c) = …` must list exactly as many names as the value has parts.
`lstm(…, state = true)` gives (output, h, c); `gru` and `simple_rnn` give
(output, h); `bidirectional` of an LSTM gives (o, h_fwd, c_fwd, h_bwd, c_bwd).";
    NotATensor = "E0312", Error, "expected a tensor",
"A tensor was expected here and a number, a tuple or a layer value was found.
Destructure tuples with `let (a, b) = …`.";
    DivisionByZero = "E0313", Error, "division by zero in a dim expression",
"A dim expression divides by zero.";
    SizeOverflow = "E0314", Error, "size does not fit in 64 bits",
"A dim expression, a layer's output size, an element count or a parameter
count is larger than 2^63 − 1. Sizes are never wrapped around: the label
points at the expression or the layer whose size overflows.

    input x: [N, 9223372036854775807 * 2]     // overflows
    let f = flatten(y)      // y: [N, 3000000000, 3000000000, 3] overflows";
    NonPositiveSize = "E0315", Error, "size is zero or negative",
"The size of a tensor axis (in a type, a `reshape` or a random tensor's
shape) or a value used as a size must be at least 1.

    input x: [N, -4]                          // axis sizes are positive";

    // ---- models, blocks, train
    MissingOutput = "E0401", Error, "model has no output",
"A model needs at least one `output`; a block needs a `return`.";
    MissingTrainField = "E0402", Error, "train block is missing a required field",
"A `train` block needs `data`, `loss` (or `step`s) and a model (`model = …` or
`over` in its steps).";
    UnknownTrainField = "E0403", Error, "unknown train block field",
"Fields of a `train` block are model, data, loss, optimizer, batch, epochs,
steps, validate, test, metrics, seed, early_stop, class_weight, checkpoint,
keep_best, shuffle, init and stateful.";
    DataInputMismatch = "E0404", Error, "data does not match the model's inputs",
"Every input of the model must be fed by an array of the data source (or a
`let` of the train block) with the same name; the message names the missing
input or the array whose shape does not fit.";
    LossArgumentMismatch = "E0405", Error, "loss or metric arguments disagree",
"The two arguments of a loss or metric must have equal shapes after trailing
1-axes are dropped ([N, 1] against [N] is fine). `cross_entropy(logits, labels)`
takes logits [N, C] and int labels [N] (or one-hot [N, C]).";
    UnknownFunction = "E0406", Error, "unknown loss, metric, optimizer or data source",
"A `train` block field names something that is not a known loss, metric,
optimizer, schedule or data source.";
    ReturnOutsideBlock = "E0407", Error, "statement not allowed here",
"`return` is only allowed in blocks, `input` and `output` only in models.";

    RecursiveCall = "E0408", Error, "recursive block or model",
"A block (or model) calls itself, directly or through others. Networks are
finite graphs: use `repeat(x, n, layer)` or write the layers out.";
    InvalidDataSource = "E0409", Error, "invalid data source",
"A data source is missing its file, names an option it does not have, or gives
a column selector of the wrong kind.";
    UnboundDim = "E0410", Error, "dim has no value when the train block runs",
"A dim declared without a value (`dim T`) is used by the train block's model,
but nothing gives it a value when the block runs. Give it one (`dim T = 40`),
or let the data bind it: an input axis fed by a data array takes the array's
size (`text(…, seq = 35)` windows, `sentences(…)` padded to the longest
sentence or `seq`, a CSV selector's width, a `.npy` file's shape), and
`vocab = T` of `text`/`sentences` binds the vocabulary size. `N` is always the
batch size.";

    WrongCallableKind = "E0411", Error, "callable of the wrong kind",
"A train block field (or a `step`'s loss or optimizer) names a callable of
another kind than it needs: `optimizer = mse(1, 2)` names a loss where an
optimizer belongs. Every loss, metric, optimizer, schedule and data source is
declared with its kind; the message lists those of the kind the field needs.";
    NetworkTooLarge = "E0412", Error, "network too large to check",
"Checking unrolls every block call and every `repeat` of a block, so the work
grows with the network the file describes. A file that would make the checker
apply more than 1,000,000 layers (over all its models and blocks) is refused at
the call that crossed the bound. This takes blocks calling blocks twice, 40
levels deep (2^40 calls), or `repeat(x, 10000, b(…))` of a block that itself
repeats. Real networks have a few thousand layers at most.";

    // ---- files and resources
    FileOutsideRoot = "E0501", Error, "file outside the project root",
"A `.nn` file names a file outside the project root: a `use`, a data source
or `init = load(…)` whose path (after following symlinks) leads out of it
(`init = load(…)` may also read from the output directory of `nnc run`).
Files a `.nn` file makes nnc read must lie under the project root, so that
checking or running a file someone sent you cannot read your other files.

The project root is the nearest directory, from the root `.nn` file's own
directory upwards, that holds a file named `nnc.toml`; without one, the root
file's directory. `--root DIR` (check, summary, run, predict, ir) sets it
explicitly; the language server uses the workspace folder.

    use \"../../../etc/passwd\"         // refused, and never read
    data = csv(\"../data/x.csv\", …)    // fine when `..` is inside the root

Paths given on the command line (`--input`, `--init`, `--save`, …) are yours
and are not confined.";
    NotARegularFile = "E0502", Error, "not a regular file",
"nnc reads only regular files: a directory, a FIFO (which would block until
someone writes to it), a device (`/dev/zero` never ends) or a socket is
refused before it is opened.";
    FileTooLarge = "E0503", Error, "file larger than its cap",
"Reads are bounded: `.nn` files at 16 MiB (environment variable
`NNC_MAX_SOURCE_BYTES`), data files and checkpoints at 1 GiB, and what a
gzip or `.npz` file decompresses to at 1 GiB too (`NNC_MAX_DATA_BYTES`), so
a small compressed \"bomb\" cannot fill the memory. Values take a `K`, `M`
or `G` suffix: `NNC_MAX_DATA_BYTES=8G nnc run big.nn`.";
    OutputOutsideOutDir = "E0504", Error, "output path outside the output directory",
"A train block names a file to write (`checkpoint = \"…\"`) that is absolute
or climbs out of the output directory with `..`. Such paths are relative to
the output directory of `nnc run` (`--out DIR`, default a new `runs/<train>/<N>/`) and
must stay inside it, so running a file someone sent you cannot overwrite
your other files.

    checkpoint = \"{train}/epoch_{epoch}.safetensors\"   // fine
    checkpoint = \"/home/me/.bashrc\"                    // refused

To write elsewhere, say so on the command line: `--out DIR` or `--save W`.";

    // ---- export
    NotExportable = "E0601", Error, "layer or option has no form in the export target",
"`nnc export` writes the model in another framework's terms (Keras 3 for
`--to keras`), layer by layer from the checked graph. A layer, option or
operation that the target cannot express exactly is refused, naming it,
rather than approximated: the exported model must compute what nnc computes.

    output y = mean(x)          // reduces over the batch axis: a Keras model keeps it
    output y = mean(x, 1)       // exports (keras.ops.mean over axis 1)

Rewrite the part the message names (reduce over the feature axes, draw random
tensors in the train block, …), or keep that model in nnc.";

    // ---- warnings
    UnusedBinding = "W0001", Warning, "unused binding",
"A `let` binding or an input is never used. Prefix it with `_` to silence this.";
    SoftmaxBeforeCrossEntropy = "W0002", Warning, "cross_entropy on a softmax output",
"`cross_entropy(x, labels)` applies softmax itself (`from_logits = true`).
Applying `softmax` first squashes the gradients; pass the logits, or say
`from_logits = false`.";
    UnusedOutput = "W0003", Warning, "model output not reachable from its inputs",
"An output does not depend on any input of the model.";
    DataFileMissing = "W0004", Warning, "data file not found",
"A data source names a file that does not exist (paths are relative to the
`.nn` file). `nnc check` only warns, since the data may be fetched later;
`nnc run` cannot start without it.";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_parse_back() {
        let mut seen = std::collections::HashSet::new();
        for &c in Code::ALL {
            assert!(seen.insert(c.as_str()), "duplicate code {}", c.as_str());
            assert_eq!(Code::parse(c.as_str()), Some(c));
            assert_eq!(c.as_str().starts_with('W'), c.severity() == Severity::Warning);
        }
        assert_eq!(Code::parse("e0301"), Some(Code::RankMismatch));
        assert_eq!(Code::parse("E9999"), None);
    }
}
