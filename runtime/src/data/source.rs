//! What to load: a [`SourceSpec`] per `data = …` form of a train block, and
//! [`load`], which reads one into a [`Dataset`].

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use super::{Array, DataError, Dataset};

/// A data source, with paths relative to the `.nn` file's directory.
#[derive(Clone, Debug, PartialEq)]
pub enum SourceSpec {
    /// `csv("file.csv", x = 0..64, y = "label", header = auto, delimiter = ",")`.
    Csv(CsvSpec),
    /// `jsonl("file.jsonl", x = ["a", "b"], y = "label")`: one JSON object per line, arrays by keys.
    Jsonl(JsonlSpec),
    /// `idx(images = "…-idx3-ubyte.gz", labels = "…")`: one IDX file per array.
    Idx {
        /// Array name and the IDX file holding it.
        arrays: Vec<(String, PathBuf)>,
    },
    /// `npy(x = "x.npy", y = "y.npy")`: one `.npy` file per array.
    Npy {
        /// Array name and the `.npy` file holding it.
        arrays: Vec<(String, PathBuf)>,
    },
    /// `npz("file.npz")`: the archive's arrays under their own names, or the
    /// listed `(array, entry)` pairs when `arrays` is not empty.
    Npz {
        /// The archive.
        path: PathBuf,
        /// `(array, entry)` pairs; empty: every entry under its own name.
        arrays: Vec<(String, String)>,
    },
    /// `text("file.txt", seq = 35)`: character-level next-token pairs.
    Text(TextSpec),
    /// `sentences("file.tsv", tokens = 2, label = column(1) > 0, vocab = V)`.
    Sentences(SentencesSpec),
    /// `synthetic(n = 1000)`: random arrays of given shapes.
    Synthetic(SyntheticSpec),
}

/// Whether the first row of a table names its columns.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Header {
    /// A header when some cell of the first row is not a number.
    #[default]
    Auto,
    /// The first row is a header.
    Present,
    /// Every row is data.
    Absent,
}

/// `csv(file, …)` / `tsv(file, …)`: arrays made of selected columns of a table.
#[derive(Clone, Debug, PartialEq)]
pub struct CsvSpec {
    /// The file read (plain or gzipped).
    pub path: PathBuf,
    /// Whether the first row is a header.
    pub header: Header,
    /// `None`: a tab for `.tsv`/`.tab` files, else sniffed from the first line.
    pub delimiter: Option<char>,
    /// Array name → the columns that make it.
    pub arrays: Vec<(String, Selector)>,
}

impl CsvSpec {
    /// A spec for `path` with an automatic header and delimiter and no arrays yet.
    pub fn new(path: impl Into<PathBuf>) -> CsvSpec {
        CsvSpec { path: path.into(), header: Header::Auto, delimiter: None, arrays: Vec::new() }
    }
    /// Adds the array `name`, made of the columns `selector` picks.
    pub fn array(mut self, name: &str, selector: Selector) -> CsvSpec {
        self.arrays.push((name.to_string(), selector));
        self
    }
}

/// `jsonl(…)`: array name → the keys that make it (a [`Selector`] without positions: names, globs over the
/// first record's keys, lists, label expressions of one key).
#[derive(Clone, Debug, PartialEq)]
pub struct JsonlSpec {
    /// The JSON Lines file read.
    pub path: PathBuf,
    /// Array name → the keys that make it.
    pub arrays: Vec<(String, Selector)>,
}

/// Columns of a table. Columns count from 0.
#[derive(Clone, Debug, PartialEq)]
pub enum Selector {
    /// One column by its header name: the array is `[rows]`.
    Name(String),
    /// One column by index: the array is `[rows]`.
    Index(usize),
    /// Columns `a..b`, `b` excluded: the array is `[rows, b − a]`.
    Range(usize, usize),
    /// Header names matching a pattern with `*` (any run) and `?` (one
    /// character), in file order: `[rows, matches]`.
    Glob(String),
    /// Several selectors concatenated: `[rows, total]`.
    List(Vec<Selector>),
    /// A value computed from one column: `[rows]`.
    Label(LabelExpr),
}

impl Selector {
    /// Whether the selector yields one value per row (`[rows]`, not `[rows, k]`).
    pub fn is_single(&self) -> bool {
        matches!(self, Selector::Name(_) | Selector::Index(_) | Selector::Label(_))
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Selector::Name(n) => write!(f, "column `{n}`"),
            Selector::Index(i) => write!(f, "column {i}"),
            Selector::Range(a, b) => write!(f, "columns {a}..{b}"),
            Selector::Glob(g) => write!(f, "columns \"{g}\""),
            Selector::List(items) => {
                let parts: Vec<String> = items
                    .iter()
                    .map(|s| match s {
                        Selector::Name(n) => format!("`{n}`"),
                        Selector::Index(i) => i.to_string(),
                        Selector::Range(a, b) => format!("{a}..{b}"),
                        Selector::Glob(g) => format!("\"{g}\""),
                        other => other.to_string(),
                    })
                    .collect();
                write!(f, "columns [{}]", parts.join(", "))
            }
            Selector::Label(l) => write!(f, "{l}"),
        }
    }
}

/// A column by index or by header name.
#[derive(Clone, Debug, PartialEq)]
pub enum Column {
    /// The 0-based column index.
    Index(usize),
    /// The column with this header name.
    Name(String),
}

impl fmt::Display for Column {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Column::Index(i) => write!(f, "{i}"),
            Column::Name(n) => write!(f, "\"{n}\""),
        }
    }
}

/// A comparison in a label expression (`column(1) > 0`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cmp {
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `==`
    Eq,
    /// `!=`
    Ne,
}

impl Cmp {
    /// The comparison written as an operator (`>`), as the checker spells it.
    pub fn from_op(op: &str) -> Option<Cmp> {
        Some(match op {
            ">" => Cmp::Gt,
            ">=" => Cmp::Ge,
            "<" => Cmp::Lt,
            "<=" => Cmp::Le,
            "==" => Cmp::Eq,
            "!=" => Cmp::Ne,
            _ => return None,
        })
    }
    /// The operator as written (`>`).
    pub fn op(self) -> &'static str {
        match self {
            Cmp::Gt => ">",
            Cmp::Ge => ">=",
            Cmp::Lt => "<",
            Cmp::Le => "<=",
            Cmp::Eq => "==",
            Cmp::Ne => "!=",
        }
    }
    /// `a op b`.
    pub fn test(self, a: f64, b: f64) -> bool {
        match self {
            Cmp::Gt => a > b,
            Cmp::Ge => a >= b,
            Cmp::Lt => a < b,
            Cmp::Le => a <= b,
            Cmp::Eq => a == b,
            Cmp::Ne => a != b,
        }
    }
}

/// `column(k)` (the cell's number) or `column(k) > v` (1 when true, else 0).
#[derive(Clone, Debug, PartialEq)]
pub struct LabelExpr {
    /// The column read.
    pub column: Column,
    /// The comparison applied to the cell, if any; the label is then 1 when it holds, else 0.
    pub compare: Option<(Cmp, f64)>,
}

impl LabelExpr {
    /// The cell's number as the label.
    pub fn column(column: Column) -> LabelExpr {
        LabelExpr { column, compare: None }
    }
    /// 1 where `column cmp value` holds, else 0.
    pub fn compare(column: Column, cmp: Cmp, value: f64) -> LabelExpr {
        LabelExpr { column, compare: Some((cmp, value)) }
    }
    /// The label of a cell's number.
    pub fn eval(&self, x: f64) -> f32 {
        match self.compare {
            Some((cmp, v)) => f32::from(u8::from(cmp.test(x, v))),
            None => x as f32,
        }
    }
}

impl fmt::Display for LabelExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "column({})", self.column)?;
        if let Some((cmp, v)) = self.compare {
            write!(f, " {} {v}", cmp.op())?;
        }
        Ok(())
    }
}

/// `text(file, seq, x = tokens, y = next, vocab = V, lower = true)`.
#[derive(Clone, Debug, PartialEq)]
pub struct TextSpec {
    /// The text file read.
    pub path: PathBuf,
    /// Characters per sample.
    pub seq: usize,
    /// Name of the input array (default `tokens`).
    pub x: String,
    /// Name of the target array, `x` shifted by one (default `next`).
    pub y: String,
    /// At most this many symbols: when the text has more distinct
    /// characters, index 0 stands for the rare ones and the `vocab − 1`
    /// most frequent characters follow, sorted. `None`: every character.
    pub vocab: Option<usize>,
    /// Lower-case the text first.
    pub lower: bool,
}

impl TextSpec {
    /// A spec with the defaults of `text(file, seq)`: arrays `tokens` and `next`, every character, lower-cased.
    pub fn new(path: impl Into<PathBuf>, seq: usize) -> TextSpec {
        TextSpec { path: path.into(), seq, x: "tokens".into(), y: "next".into(), vocab: None, lower: true }
    }
}

/// Which end of a sequence is padded or cut.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Pad {
    /// Padding (or dropped words) at the start: Keras's `pad_sequences` default.
    #[default]
    Pre,
    /// At the end.
    Post,
}

/// Which rows build a word vocabulary.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum VocabRows {
    /// Every row (no validation split, or a separate validation source).
    #[default]
    All,
    /// The training rows of `split(rows, validate, seed)`: words seen only
    /// in validation rows stay out of the vocabulary, as they would for a
    /// model trained on the training rows alone.
    Train {
        /// The validation fraction.
        validate: f64,
        /// The seed of the split's shuffle.
        seed: u64,
    },
    /// The training rows of `split_tail(rows, validate)`: the leading ones.
    Leading {
        /// The validation fraction (taken from the end).
        validate: f64,
    },
}

impl VocabRows {
    /// The (training, validation) rows of `n` this describes. `nnc run`
    /// splits its data with the same value, so both agree on which rows
    /// are training rows.
    pub fn split(&self, n: usize) -> (Vec<usize>, Vec<usize>) {
        match *self {
            VocabRows::All => ((0..n).collect(), Vec::new()),
            VocabRows::Train { validate, seed } => super::split(n, validate, seed),
            VocabRows::Leading { validate } => super::split_tail(n, validate),
        }
    }
}

/// `sentences(file, tokens = 2, label = column(1) > 0, vocab = V, pad = pre)`.
#[derive(Clone, Debug, PartialEq)]
pub struct SentencesSpec {
    /// The file read (CSV/TSV).
    pub path: PathBuf,
    /// Skip the first line.
    pub header: bool,
    /// The column holding the text.
    pub tokens: Column,
    /// Name of the token array (default `tokens`).
    pub tokens_name: String,
    /// Name and expression of the label array (default `label`).
    pub label: Option<(String, LabelExpr)>,
    /// Vocabulary size V: 0 is padding, 1 out-of-vocabulary, 2..V−1 words.
    /// `None` (`vocab = V` with `V` a dim to bind): every word of the
    /// vocabulary rows, and V is their number + 2.
    pub vocab: Option<usize>,
    /// Tokens per sample T; `None`: the longest sentence of the vocabulary
    /// rows (Keras's `pad_sequences` without `maxlen`).
    pub len: Option<usize>,
    /// Which end short sentences are padded at.
    pub pad: Pad,
    /// Which end loses words when a sentence is longer than `len`.
    pub truncate: Pad,
    /// Which rows build the vocabulary.
    pub vocab_rows: VocabRows,
}

impl SentencesSpec {
    /// A spec with no header, no label array, `vocab` and `len` fixed, padding and cutting at the start.
    pub fn new(path: impl Into<PathBuf>, tokens: Column, vocab: usize, len: usize) -> SentencesSpec {
        SentencesSpec {
            path: path.into(),
            header: false,
            tokens,
            tokens_name: "tokens".into(),
            label: None,
            vocab: Some(vocab),
            len: Some(len),
            pad: Pad::Pre,
            truncate: Pad::Pre,
            vocab_rows: VocabRows::All,
        }
    }
}

/// How synthetic values are drawn.
#[derive(Clone, Debug, PartialEq)]
pub enum SyntheticKind {
    /// Standard normal floats.
    Float,
    /// Integers uniform in [0, classes).
    Int {
        /// The exclusive upper bound.
        classes: u64,
    },
}

/// One synthetic array.
#[derive(Clone, Debug, PartialEq)]
pub struct SyntheticArray {
    /// The array's name (a model input).
    pub name: String,
    /// Per-sample shape.
    pub shape: Vec<usize>,
    /// How its values are drawn.
    pub kind: SyntheticKind,
}

/// `synthetic(n = 1000)`: `n` samples of each array.
#[derive(Clone, Debug, PartialEq)]
pub struct SyntheticSpec {
    /// Samples per array.
    pub n: usize,
    /// The arrays made.
    pub arrays: Vec<SyntheticArray>,
    /// Seed of the generator (each array has its own stream).
    pub seed: u64,
}

/// The symbols behind token ids (`text`, `sentences`), so that `dim V` can
/// be bound and predictions decoded.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Vocabulary {
    /// `tokens[i]` is the symbol of id `i`; special ids hold `<pad>`/`<oov>`.
    pub tokens: Vec<String>,
    /// The id used for padding, if any.
    pub padding: Option<usize>,
    /// The id of out-of-vocabulary symbols, if any.
    pub oov: Option<usize>,
}

impl Vocabulary {
    /// Number of ids (special ids included).
    pub fn len(&self) -> usize {
        self.tokens.len()
    }
    /// Whether there are no ids.
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }
}

/// A loaded source.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Loaded {
    /// The arrays.
    pub dataset: Dataset,
    /// For `text` and `sentences`.
    pub vocabulary: Option<Vocabulary>,
    /// Where each array came from ("data/digits.csv.gz: columns 0..64"),
    /// for [`super::fit_to_input`]'s messages.
    pub origins: BTreeMap<String, String>,
}

impl Loaded {
    /// The description of `array` for messages, or `fallback`.
    pub fn origin(&self, array: &str, fallback: &str) -> String {
        self.origins.get(array).cloned().unwrap_or_else(|| fallback.to_string())
    }
}

/// The files `spec` reads, relative to the `.nn` file's directory.
pub fn paths(spec: &SourceSpec) -> Vec<&Path> {
    match spec {
        SourceSpec::Csv(c) => vec![&c.path],
        SourceSpec::Jsonl(j) => vec![&j.path],
        SourceSpec::Idx { arrays } | SourceSpec::Npy { arrays } => arrays.iter().map(|(_, p)| p.as_path()).collect(),
        SourceSpec::Npz { path, .. } => vec![path],
        SourceSpec::Text(t) => vec![&t.path],
        SourceSpec::Sentences(s) => vec![&s.path],
        SourceSpec::Synthetic(_) => vec![],
    }
}

/// Checks that every file of `spec` (relative to `base_dir`) lies where
/// `access` allows — under the project root for a `.nn` file's data — before
/// [`load`] opens any of them.
pub fn check_paths(
    spec: &SourceSpec,
    base_dir: &Path,
    access: &nnc_compiler::sandbox::Access,
) -> Result<(), DataError> {
    for p in paths(spec) {
        access.check(&base_dir.join(p)).map_err(|e| DataError::File(crate::io::IoError::Refused(e)))?;
    }
    Ok(())
}

/// Reads `spec`; relative paths resolve against `base_dir`. Where the files
/// may lie is [`check_paths`]'s business; every read takes only regular
/// files and stops at the data cap.
pub fn load(spec: &SourceSpec, base_dir: &Path) -> Result<Loaded, DataError> {
    let loaded = match spec {
        SourceSpec::Csv(c) => super::csv::load(c, base_dir)?,
        SourceSpec::Jsonl(j) => super::jsonl::load(j, base_dir)?,
        SourceSpec::Idx { arrays } => per_file(arrays, base_dir, "idx", super::idx::read_idx)?,
        SourceSpec::Npy { arrays } => per_file(arrays, base_dir, "npy", |p| Ok(npy_array(crate::io::read_npy(p)?)))?,
        SourceSpec::Npz { path, arrays } => npz(&base_dir.join(path), arrays)?,
        SourceSpec::Text(t) => super::text::load_text(t, base_dir)?,
        SourceSpec::Sentences(s) => super::text::load_sentences(s, base_dir)?,
        SourceSpec::Synthetic(s) => super::synthetic::load(s)?,
    };
    check_lengths(&loaded)?;
    Ok(loaded)
}

/// All arrays of one source must have the same number of samples.
fn check_lengths(l: &Loaded) -> Result<(), DataError> {
    let mut it = l.dataset.arrays.iter();
    if let Some((first, a)) = it.next() {
        for (name, b) in it {
            if a.samples() != b.samples() {
                return Err(DataError::Lengths {
                    origin: l.origin(name, name),
                    first: (first.clone(), a.samples()),
                    other: (name.clone(), b.samples()),
                });
            }
        }
    }
    Ok(())
}

fn per_file(
    arrays: &[(String, PathBuf)],
    base: &Path,
    kind: &str,
    read: impl Fn(&Path) -> Result<Array, DataError>,
) -> Result<Loaded, DataError> {
    if arrays.is_empty() {
        return Err(DataError::Spec {
            source: format!("{kind}(…)"),
            reason: "names no arrays (write name = \"file\")".into(),
        });
    }
    let mut l = Loaded::default();
    for (name, rel) in arrays {
        let path = base.join(rel);
        let a = read(&path)?;
        l.origins.insert(name.clone(), format!("{} ({})", path.display(), a.describe()));
        l.dataset.arrays.insert(name.clone(), a);
    }
    Ok(l)
}

/// A `.npy` file (gzip allowed) as a data array.
pub fn read_npy_array(path: &Path) -> Result<Array, DataError> {
    Ok(npy_array(crate::io::read_npy(path)?))
}

/// `.npy` element types to the data layer's two: floats and small
/// integers (exact in f32) become F32, wider integers I64.
pub(crate) fn npy_array(a: crate::io::NpyArray) -> Array {
    use crate::io::NpyArray as N;
    match a {
        N::F32(a) => Array::F32(a),
        N::F64(a) => Array::F32(a.mapv(|v| v as f32)),
        N::U8(a) => Array::F32(a.mapv(f32::from)),
        N::I32(a) => Array::I64(a.mapv(i64::from)),
        N::I64(a) => Array::I64(a),
    }
}

fn npz(path: &Path, wanted: &[(String, String)]) -> Result<Loaded, DataError> {
    let entries = crate::io::read_npz(path)?;
    let mut l = Loaded::default();
    let names: Vec<&str> = entries.iter().map(|(n, _)| n.as_str()).collect();
    if wanted.is_empty() {
        for (name, a) in entries {
            let a = npy_array(a);
            l.origins.insert(name.clone(), format!("{}: `{name}` ({})", path.display(), a.describe()));
            l.dataset.arrays.insert(name, a);
        }
        if l.dataset.arrays.is_empty() {
            return Err(DataError::Empty { path: path.to_path_buf(), what: "the archive holds no arrays".into() });
        }
        return Ok(l);
    }
    for (name, entry) in wanted {
        let entry = entry.strip_suffix(".npy").unwrap_or(entry);
        let Some((_, a)) = entries.iter().find(|(n, _)| n == entry) else {
            return Err(DataError::MissingArray {
                origin: path.display().to_string(),
                array: entry.to_string(),
                available: names.iter().map(|s| s.to_string()).collect(),
                suggestion: super::suggest(entry, names.iter().copied()),
            });
        };
        let a = npy_array(a.clone());
        l.origins.insert(name.clone(), format!("{}: `{entry}` ({})", path.display(), a.describe()));
        l.dataset.arrays.insert(name.clone(), a);
    }
    Ok(l)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::testutil::{TempDir, gzip};
    use crate::io::to_npy_bytes;
    use ndarray::{ArrayD, IxDyn};

    #[test]
    fn selectors_and_labels_print_as_written() {
        assert_eq!(Selector::Range(0, 64).to_string(), "columns 0..64");
        assert_eq!(Selector::Name("Weight".into()).to_string(), "column `Weight`");
        assert_eq!(
            Selector::List(vec![Selector::Name("Height".into()), Selector::Index(3), Selector::Glob("p*".into())])
                .to_string(),
            "columns [`Height`, 3, \"p*\"]"
        );
        let l = LabelExpr::compare(Column::Index(1), Cmp::Gt, 0.0);
        assert_eq!(l.to_string(), "column(1) > 0");
        assert_eq!((l.eval(0.5), l.eval(0.0), l.eval(-1.0)), (1.0, 0.0, 0.0));
        assert_eq!(LabelExpr::column(Column::Name("y".into())).eval(2.5), 2.5);
        for op in [">", ">=", "<", "<=", "==", "!="] {
            assert_eq!(Cmp::from_op(op).unwrap().op(), op);
        }
        assert_eq!(Cmp::from_op("+"), None);
    }

    #[test]
    fn npy_and_npz_sources() {
        let dir = TempDir::new("src-npy");
        let x = ArrayD::from_shape_vec(IxDyn(&[4, 3]), (0..12).map(|v| v as f64).collect()).unwrap();
        let y = ArrayD::from_shape_vec(IxDyn(&[4]), vec![0i32, 1, 2, 1]).unwrap();
        std::fs::write(dir.path().join("x.npy"), to_npy_bytes(&x)).unwrap();
        // Compressed `.npy` loads too.
        std::fs::write(dir.path().join("y.npy.gz"), gzip(&to_npy_bytes(&y))).unwrap();
        let spec = SourceSpec::Npy { arrays: vec![("x".into(), "x.npy".into()), ("y".into(), "y.npy.gz".into())] };
        let l = load(&spec, dir.path()).unwrap();
        assert_eq!(l.dataset.len(), 4);
        assert_eq!(l.dataset.get("x"), Some(&Array::F32(x.mapv(|v| v as f32))));
        assert_eq!(l.dataset.get("y"), Some(&Array::I64(y.mapv(i64::from))));
        assert!(l.origins["x"].contains("x.npy (float [4, 3])"), "{:?}", l.origins);
        // Disagreeing lengths.
        std::fs::write(dir.path().join("short.npy"), to_npy_bytes(&ndarray::arr1(&[1u8, 2]))).unwrap();
        let spec = SourceSpec::Npy { arrays: vec![("x".into(), "x.npy".into()), ("z".into(), "short.npy".into())] };
        let e = load(&spec, dir.path()).unwrap_err();
        assert!(matches!(e, DataError::Lengths { .. }), "{e}");
        assert!(e.to_string().contains("`x` has 4, `z` has 2"), "{e}");
        // Missing file.
        let spec = SourceSpec::Npy { arrays: vec![("x".into(), "nope.npy".into())] };
        let e = load(&spec, dir.path()).unwrap_err();
        assert!(e.to_string().contains("nope.npy") && e.to_string().contains("cannot read"), "{e}");
        assert!(load(&SourceSpec::Npy { arrays: vec![] }, dir.path()).is_err());

        let archive =
            crate::io::npz::tests::zip(&[("x.npy", to_npy_bytes(&x)), ("labels.npy", to_npy_bytes(&y))], true, true);
        std::fs::write(dir.path().join("d.npz"), archive).unwrap();
        let all = load(&SourceSpec::Npz { path: "d.npz".into(), arrays: vec![] }, dir.path()).unwrap();
        assert_eq!(all.dataset.arrays.keys().collect::<Vec<_>>(), ["labels", "x"]);
        let some =
            load(&SourceSpec::Npz { path: "d.npz".into(), arrays: vec![("y".into(), "labels".into())] }, dir.path())
                .unwrap();
        assert_eq!(some.dataset.arrays.keys().collect::<Vec<_>>(), ["y"]);
        let e = load(&SourceSpec::Npz { path: "d.npz".into(), arrays: vec![("y".into(), "label".into())] }, dir.path())
            .unwrap_err();
        assert!(e.to_string().contains("did you mean `labels`"), "{e}");
    }
}
