//! From a checked `train` block to the data layer: the checker records a
//! data call as a [`CallValue`] (`csv("f.csv", x = 0..64, …)`); [`spec_of`]
//! turns it into a [`SourceSpec`], and [`load_call`] loads it and shapes
//! each array for the model input of the same name.

use std::path::{Path, PathBuf};

use nnc_compiler::sandbox::Access;
use nnc_compiler::types::{CallValue, Value};

use super::DataError;
use super::source::{
    Cmp, Column, CsvSpec, Header, JsonlSpec, LabelExpr, Pad, Selector, SentencesSpec, SourceSpec, SyntheticArray,
    SyntheticKind, SyntheticSpec, TextSpec, VocabRows,
};

/// What a model input expects of the array that feeds it.
#[derive(Clone, Debug, PartialEq)]
pub struct InputShape {
    /// The input's name.
    pub name: String,
    /// Per-sample shape (the batch axis removed).
    pub shape: Vec<usize>,
    /// Whether it is an `int[…]` input.
    pub int: bool,
}

/// A loaded data call.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CallData {
    /// Arrays that feed inputs are already shaped for them.
    pub loaded: super::source::Loaded,
    /// Values of dims the source decides (`V` for `text` and `sentences`).
    pub dims: Vec<(String, i64)>,
    /// Arrays to z-score (from `normalize = {x: zscore}`).
    pub normalize: Vec<String>,
    /// What was read: `predict` repeats its transforms (vocabularies, CSV
    /// selectors) on raw input.
    pub spec: Option<SourceSpec>,
}

/// Loads the data call `call` (paths relative to `base`) and shapes its
/// arrays for `inputs`; `seed` seeds `synthetic`. `rows` says how the run
/// will split the rows (`validate = split(f)`): what a source learns from
/// its rows (the `sentences` vocabulary) is learnt from the training rows
/// only, so validation words the model never trained on stay out of
/// vocabulary.
///
/// The files must lie where `access` allows (a `.nn` file's data: under the
/// project root); nothing is opened otherwise.
pub fn load_call(
    call: &CallValue,
    base: &Path,
    access: &Access,
    inputs: &[InputShape],
    seed: u64,
    rows: &VocabRows,
) -> Result<CallData, DataError> {
    let mut spec = spec_of(call, inputs, seed)?;
    if let SourceSpec::Sentences(s) = &mut spec {
        s.vocab_rows = rows.clone();
    }
    super::source::check_paths(&spec, base, access)?;
    let mut loaded = super::source::load(&spec, base)?;
    let source = describe(call);
    for input in inputs {
        if loaded.dataset.arrays.contains_key(&input.name) {
            let origin = loaded.origin(&input.name, &source);
            super::fit_to_input(&mut loaded.dataset, &input.name, &input.shape, input.int, &origin)?;
        }
    }
    let dims = match (&spec, &loaded.vocabulary) {
        (SourceSpec::Text(_), Some(v)) => vec![(vocab_dim(call).unwrap_or_else(|| "V".into()), v.len() as i64)],
        // The embedding is sized by the declared vocabulary, which may
        // exceed the words the file has; `vocab = V` sizes it by the words.
        (SourceSpec::Sentences(s), Some(v)) => {
            vec![(vocab_dim(call).unwrap_or_else(|| "V".into()), s.vocab.unwrap_or(v.len()) as i64)]
        }
        _ => Vec::new(),
    };
    let normalize = match call.arg("normalize") {
        Some(Value::Map(entries)) => entries.iter().filter_map(|(k, _)| name_of(k)).collect(),
        _ => Vec::new(),
    };
    Ok(CallData { loaded, dims, normalize, spec: Some(spec) })
}

/// A source's declared default for an integer option (the schema is the one place it is written).
fn schema_default(source: &str, option: &str) -> i64 {
    nnc_compiler::schema::default_f64(source, option).map_or(1, |x| x as i64)
}

/// `csv("data/x.csv")`-style description for messages.
fn describe(call: &CallValue) -> String {
    match call.positional(0) {
        Some(Value::Str(s)) => format!("{}(\"{s}\")", call.name),
        _ => format!("{}(…)", call.name),
    }
}

fn name_of(v: &Value) -> Option<String> {
    match v {
        Value::Str(s) | Value::Mode(s) => Some(s.clone()),
        _ => None,
    }
}

fn int_of(v: &Value) -> Option<i64> {
    match v {
        Value::Int(d) => d.as_known(),
        Value::Float(f) if f.fract() == 0.0 && f.is_finite() => Some(*f as i64),
        _ => None,
    }
}

/// The dim named by `vocab = V` when it is a symbol rather than a number.
fn vocab_dim(call: &CallValue) -> Option<String> {
    call.arg("vocab").and_then(vocab_dim_of)
}

/// The dim a value names when it is a symbol rather than a number.
fn vocab_dim_of(v: &Value) -> Option<String> {
    match v {
        Value::Int(d) if d.as_known().is_none() => Some(d.to_string()),
        Value::Mode(m) => Some(m.clone()),
        _ => None,
    }
}

/// Translates a checked data call into a [`SourceSpec`]. `inputs` supply
/// what the call leaves to the model (the length T of `sentences`, the
/// arrays of `synthetic`). Each source's reading of its call is one function
/// below; which keywords are options and which name arrays is the schema's.
pub fn spec_of(call: &CallValue, inputs: &[InputShape], seed: u64) -> Result<SourceSpec, DataError> {
    let a = Args { call, source: describe(call), schema: nnc_compiler::schema::lookup_fn(&call.name) };
    match call.name.as_str() {
        "csv" => csv_spec(&a),
        "jsonl" => jsonl_spec(&a),
        "idx" => Ok(SourceSpec::Idx { arrays: a.files()? }),
        "npy" => Ok(SourceSpec::Npy { arrays: a.files()? }),
        "npz" => Ok(SourceSpec::Npz { path: a.path()?, arrays: Vec::new() }),
        "text" => text_spec(&a, inputs),
        "sentences" => sentences_spec(&a, inputs),
        "synthetic" => synthetic_spec(&a, inputs, seed),
        other => Err(a.err(format!("`{other}` is not a data source"))),
    }
}

/// A data call with its description for messages and its schema entry.
struct Args<'a> {
    call: &'a CallValue,
    source: String,
    schema: Option<&'static nnc_compiler::schema::TrainFn>,
}

impl<'a> Args<'a> {
    fn err(&self, reason: String) -> DataError {
        DataError::Spec { source: self.source.clone(), reason }
    }

    fn arg(&self, k: &str) -> Option<&'a Value> {
        self.call.arg(k)
    }

    /// The file a source reads first (`csv("data/x.csv", …)`).
    fn path(&self) -> Result<PathBuf, DataError> {
        match self.call.positional(0) {
            Some(Value::Str(s)) => Ok(PathBuf::from(s)),
            _ => Err(self.err("needs a file name first".into())),
        }
    }

    /// An integer option ≥ `min`, `default` when absent.
    fn count(&self, k: &str, default: i64, min: i64) -> Result<i64, DataError> {
        match self.arg(k) {
            None => Ok(default),
            Some(v) => match int_of(v) {
                Some(n) if n >= min => Ok(n),
                _ => Err(self.err(format!("`{k}` must be an integer ≥ {min}, found {v}"))),
            },
        }
    }

    /// Keywords that are not options (declared in the schema): array names with their values.
    fn named(&self) -> impl Iterator<Item = (&'a str, &'a Value)> + use<'a> {
        let schema = self.schema;
        let is_option = move |k: &str| schema.is_some_and(|f| f.option(k).is_some());
        self.call.args.iter().filter_map(move |(k, v)| k.as_deref().filter(|k| !is_option(k)).map(|k| (k, v)))
    }

    /// Arrays named by selectors (`x = 0..64`, `y = "label"`).
    fn selected(&self) -> Result<Vec<(String, Selector)>, DataError> {
        self.named()
            .map(|(k, v)| Ok((k.to_string(), selector(v).map_err(|r| self.err(format!("`{k}`: {r}")))?)))
            .collect()
    }

    /// Arrays read from a file each (`idx(images = "…", labels = "…")`).
    fn files(&self) -> Result<Vec<(String, PathBuf)>, DataError> {
        self.named()
            .map(|(k, v)| match v {
                Value::Str(s) => Ok((k.to_string(), PathBuf::from(s))),
                other => Err(self.err(format!("`{k}` must be a file name, found {other}"))),
            })
            .collect()
    }
}

fn csv_spec(a: &Args) -> Result<SourceSpec, DataError> {
    let header = match a.arg("header") {
        None => Header::Auto,
        Some(Value::Bool(true)) => Header::Present,
        Some(Value::Bool(false)) => Header::Absent,
        Some(v) => match name_of(v).as_deref() {
            Some("auto") => Header::Auto,
            Some("true") => Header::Present,
            Some("false") => Header::Absent,
            _ => return Err(a.err(format!("header must be auto, true or false, found {v}"))),
        },
    };
    let delimiter = match a.arg("delimiter") {
        None => None,
        Some(Value::Str(s)) if s == "\\t" || s == "tab" => Some('\t'),
        Some(Value::Str(s)) if s.chars().count() == 1 => s.chars().next(),
        Some(v) => return Err(a.err(format!("delimiter must be one character such as \",\" or \"\\t\", found {v}"))),
    };
    Ok(SourceSpec::Csv(CsvSpec { path: a.path()?, header, delimiter, arrays: a.selected()? }))
}

/// `jsonl("f.jsonl", x = ["a", "b"], y = "label")`: keys select like CSV header names; positions do not
/// exist in a record, so indices and ranges are refused here, before the file is read.
fn jsonl_spec(a: &Args) -> Result<SourceSpec, DataError> {
    let arrays = a.selected()?;
    for (k, sel) in &arrays {
        if let Some(bad) = positional_selector(sel) {
            return Err(a.err(format!("`{k}`: {bad} selects by position; a JSON Lines record selects by key")));
        }
    }
    Ok(SourceSpec::Jsonl(JsonlSpec { path: a.path()?, arrays }))
}

/// The first selector in `s` that picks by position (an index or a range).
fn positional_selector(s: &Selector) -> Option<String> {
    match s {
        Selector::Index(_) | Selector::Range(..) => Some(s.to_string()),
        Selector::Label(l) if matches!(l.column, Column::Index(_)) => Some(l.to_string()),
        Selector::List(items) => items.iter().find_map(positional_selector),
        _ => None,
    }
}

fn text_spec(a: &Args, inputs: &[InputShape]) -> Result<SourceSpec, DataError> {
    let x = a.arg("x").and_then(name_of).unwrap_or_else(|| "tokens".into());
    let y = a.arg("y").and_then(name_of).unwrap_or_else(|| "next".into());
    let from_input = inputs.iter().find(|i| i.name == x).and_then(|i| i.shape.first()).map(|&d| d as i64);
    let seq = a.count("seq", from_input.unwrap_or(35), 1)? as usize;
    let vocab = match a.arg("vocab") {
        Some(v) => match int_of(v) {
            Some(n) if n >= 2 => Some(n as usize),
            Some(n) => return Err(a.err(format!("vocab = {n} is too small"))),
            None => None, // a dim to bind, not a cap
        },
        None => None,
    };
    let lower = !matches!(a.arg("lower"), Some(Value::Bool(false)));
    Ok(SourceSpec::Text(TextSpec { path: a.path()?, seq, x, y, vocab, lower }))
}

fn sentences_spec(a: &Args, inputs: &[InputShape]) -> Result<SourceSpec, DataError> {
    let tokens = match a.arg("tokens") {
        None => Column::Index(0),
        Some(v) => column(v).map_err(|r| a.err(format!("`tokens`: {r}")))?,
    };
    let label = match a.arg("label") {
        None => LabelExpr::column(Column::Index(1)),
        Some(v) => label(v).map_err(|r| a.err(format!("`label`: {r}")))?,
    };
    // The length: `seq = 40`, else the input's declared length, else
    // (an unbound `T`) the longest sentence.
    let declared = inputs.iter().find(|i| i.name == "tokens").and_then(|i| i.shape.first().copied());
    let len = match a.arg("seq") {
        Some(v) if vocab_dim_of(v).is_none() => Some(a.count("seq", 0, 1)? as usize),
        _ => declared,
    };
    // `vocab = V` with `V` a dim to bind: no cap, V counts the words.
    let vocab = match a.arg("vocab") {
        Some(v) if vocab_dim_of(v).is_some() => None,
        _ => Some(a.count("vocab", schema_default("sentences", "vocab"), 3)? as usize),
    };
    let mut spec = SentencesSpec::new(a.path()?, tokens, 3, 1);
    spec.vocab = vocab;
    spec.len = len;
    spec.label = Some(("label".into(), label));
    spec.header = matches!(a.arg("header"), Some(Value::Bool(true)));
    spec.pad = match a.arg("pad").and_then(name_of).as_deref() {
        None | Some("pre") => Pad::Pre,
        Some("post") => Pad::Post,
        Some(other) => return Err(a.err(format!("pad must be pre or post, found `{other}`"))),
    };
    Ok(SourceSpec::Sentences(spec))
}

fn synthetic_spec(a: &Args, inputs: &[InputShape], seed: u64) -> Result<SourceSpec, DataError> {
    let n = a.count("n", schema_default("synthetic", "n"), 1)? as usize;
    let classes = a.count("classes", schema_default("synthetic", "classes"), 1)? as u64;
    let arrays = inputs
        .iter()
        .map(|i| SyntheticArray {
            name: i.name.clone(),
            shape: i.shape.clone(),
            kind: if i.int { SyntheticKind::Int { classes } } else { SyntheticKind::Float },
        })
        .collect();
    Ok(SourceSpec::Synthetic(SyntheticSpec { n, arrays, seed }))
}

/// A column selector value: `"Weight"`, `"pixel*"`, `3`, `0..64`, a list
/// of those, or a label expression.
fn selector(v: &Value) -> Result<Selector, String> {
    Ok(match v {
        Value::Str(s) if s.contains(['*', '?']) => Selector::Glob(s.clone()),
        Value::Str(s) => Selector::Name(s.clone()),
        Value::Int(_) | Value::Float(_) => Selector::Index(index(v)?),
        Value::Range(a, b) => match (a.as_known(), b.as_known()) {
            (Some(a), Some(b)) if a >= 0 && b >= 0 => Selector::Range(a as usize, b as usize),
            _ => return Err(format!("the range {a}..{b} must have non-negative integer bounds")),
        },
        Value::List(items) => Selector::List(items.iter().map(selector).collect::<Result<_, _>>()?),
        Value::Call(_) => Selector::Label(label(v)?),
        other => {
            return Err(format!(
                "{} is not a column selector (a name, an index, a range a..b, a glob or a list)",
                other.kind_name()
            ));
        }
    })
}

fn index(v: &Value) -> Result<usize, String> {
    match int_of(v) {
        Some(i) if i >= 0 => Ok(i as usize),
        _ => Err(format!("column index {v} must be a non-negative integer")),
    }
}

fn column(v: &Value) -> Result<Column, String> {
    match v {
        Value::Str(s) => Ok(Column::Name(s.clone())),
        _ => Ok(Column::Index(index(v)?)),
    }
}

/// `column(k)`, `column(k) > v` (or `v < column(k)`), or a bare column.
fn label(v: &Value) -> Result<LabelExpr, String> {
    let col =
        |c: &CallValue| -> Result<Column, String> { column(c.positional(0).ok_or("column(…) needs a column")?) };
    match v {
        Value::Call(c) if c.name == "column" => Ok(LabelExpr::column(col(c)?)),
        Value::Call(c) => {
            let cmp = Cmp::from_op(&c.name)
                .ok_or_else(|| format!("`{}` is not a comparison (>, >=, <, <=, ==, !=)", c.name))?;
            match (c.positional(0), c.positional(1)) {
                (Some(Value::Call(k)), Some(n)) if k.name == "column" => {
                    Ok(LabelExpr::compare(col(k)?, cmp, n.as_f64().ok_or("compare a column with a number")?))
                }
                (Some(n), Some(Value::Call(k))) if k.name == "column" => {
                    // `0 < column(1)` is `column(1) > 0`.
                    let flipped = match cmp {
                        Cmp::Gt => Cmp::Lt,
                        Cmp::Ge => Cmp::Le,
                        Cmp::Lt => Cmp::Gt,
                        Cmp::Le => Cmp::Ge,
                        same => same,
                    };
                    Ok(LabelExpr::compare(col(k)?, flipped, n.as_f64().ok_or("compare a column with a number")?))
                }
                _ => Err("write column(k) > value".into()),
            }
        }
        _ => Ok(LabelExpr::column(column(v)?)),
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::root;
    use super::super::{Array, Dataset};
    use super::*;
    use nnc_compiler::dims::Dim;
    use std::rc::Rc;

    fn call(name: &str, args: Vec<(Option<&str>, Value)>) -> CallValue {
        CallValue { name: name.into(), args: args.into_iter().map(|(k, v)| (k.map(str::to_string), v)).collect() }
    }

    fn int(v: i64) -> Value {
        Value::Int(Dim::Known(v))
    }

    fn s(v: &str) -> Value {
        Value::Str(v.into())
    }

    fn input(name: &str, shape: &[usize], int: bool) -> InputShape {
        InputShape { name: name.into(), shape: shape.to_vec(), int }
    }

    fn data(c: &CallValue, inputs: &[InputShape]) -> Dataset {
        load_call(c, &root(), &Access::User, inputs, 0, &VocabRows::All)
            .unwrap_or_else(|e| panic!("{e}"))
            .loaded
            .dataset
    }

    fn column_gt(k: i64, v: i64) -> Value {
        Value::Call(Rc::new(CallValue {
            name: ">".into(),
            args: vec![(None, Value::Call(Rc::new(call("column", vec![(None, int(k))])))), (None, int(v))],
        }))
    }

    #[test]
    fn digits_csv_reshapes_to_the_inputs() {
        let c = call(
            "csv",
            vec![
                (None, s("data/digits.csv.gz")),
                (Some("pixels"), Value::Range(Dim::Known(0), Dim::Known(64))),
                (Some("label"), int(64)),
                (Some("header"), Value::Bool(false)),
            ],
        );
        let inputs = vec![input("pixels", &[8, 8, 1], false), input("label", &[], true)];
        let ds = data(&c, &inputs);
        assert_eq!(ds.len(), 1797);
        assert_eq!(ds.get("pixels").unwrap().shape(), &[1797, 8, 8, 1]);
        let Some(Array::I64(y)) = ds.get("label") else { panic!() };
        assert!(y.iter().all(|&v| (0..10).contains(&v)));
        let c = call(
            "csv",
            vec![(None, s("data/digits.csv.gz")), (Some("pixels"), Value::Range(Dim::Known(0), Dim::Known(63)))],
        );
        let e = load_call(&c, &root(), &Access::User, &inputs[..1], 0, &VocabRows::All).unwrap_err().to_string();
        assert!(
            e.ends_with("digits.csv.gz: columns 0..63: 63 values per sample, input `pixels` [8, 8, 1] needs 64"),
            "{e}"
        );
    }

    #[test]
    fn fish_with_normalize_and_a_typo() {
        let norm = Value::Map(vec![(Value::Mode("x".into()), Value::Mode("zscore".into()))]);
        let c = call(
            "csv",
            vec![
                (None, s("data/fish.csv")),
                (Some("x"), Value::List(vec![s("Height"), s("Width")])),
                (Some("y"), Value::List(vec![s("Weight")])),
                (Some("normalize"), norm),
            ],
        );
        let l = load_call(&c, &root(), &Access::User, &[], 0, &VocabRows::All).unwrap();
        assert_eq!(l.loaded.dataset.len(), 158);
        assert_eq!(l.normalize, ["x"]);
        assert_eq!(l.loaded.dataset.get("y").unwrap().shape(), &[158, 1]);
        let c = call("csv", vec![(None, s("data/fish.csv")), (Some("y"), s("Wieght"))]);
        assert!(
            load_call(&c, &root(), &Access::User, &[], 0, &VocabRows::All)
                .unwrap_err()
                .to_string()
                .contains("did you mean `Weight`")
        );
        let c = call("csv", vec![(None, s("data/fish.csv")), (Some("y"), s("Len*")), (Some("delimiter"), s(","))]);
        let mut want = CsvSpec::new("data/fish.csv").array("y", Selector::Glob("Len*".into()));
        want.delimiter = Some(',');
        assert_eq!(spec_of(&c, &[], 0).unwrap(), SourceSpec::Csv(want));
        let c = call("csv", vec![(None, s("data/fish.csv")), (Some("y"), int(-1))]);
        assert!(spec_of(&c, &[], 0).unwrap_err().to_string().contains("non-negative"));
    }

    #[test]
    fn text_sentences_and_synthetic() {
        let c = call("text", vec![(None, s("data/alice.txt")), (Some("seq"), int(35)), (Some("vocab"), int(28))]);
        let l = load_call(&c, &root(), &Access::User, &[], 0, &VocabRows::All).unwrap();
        assert_eq!(l.dims, [("V".to_string(), 28)]);
        assert_eq!(l.loaded.dataset.get("tokens").unwrap().shape()[1], 35);
        // The sequence length can come from the input's declared shape.
        let c = call("text", vec![(None, s("data/alice.txt"))]);
        assert_eq!(data(&c, &[input("tokens", &[50], true)]).get("tokens").unwrap().shape()[1], 50);
        let c = call(
            "sentences",
            vec![
                (None, s("data/movie_reviews.tsv.gz")),
                (Some("tokens"), int(2)),
                (Some("label"), column_gt(1, 0)),
                (Some("vocab"), int(5000)),
            ],
        );
        let l = load_call(
            &c,
            &root(),
            &Access::User,
            &[input("tokens", &[40], true), input("label", &[], true)],
            0,
            &VocabRows::All,
        )
        .unwrap();
        assert_eq!(l.loaded.dataset.len(), 10_605);
        assert_eq!(l.dims, [("V".to_string(), 5000)]);
        let Some(Array::I64(lab)) = l.loaded.dataset.get("label") else { panic!() };
        assert_eq!(lab.iter().filter(|&&v| v == 1).count(), 5242);
        let c = call("synthetic", vec![(Some("n"), int(16)), (Some("classes"), int(3))]);
        let ds = data(&c, &[input("x", &[4], false), input("y", &[], true)]);
        assert_eq!(ds.len(), 16);
        let Some(Array::I64(y)) = ds.get("y") else { panic!() };
        assert!(y.iter().all(|&v| (0..3).contains(&v)));
    }

    #[test]
    fn a_held_out_split_keeps_validation_words_out_of_the_vocabulary() {
        let dir = crate::io::testutil::TempDir::new("held-out");
        // Row r has the word "shared" and a word of its own, "w<r>" spelt in letters.
        let own = |r: usize| format!("w{}", char::from(b'a' + r as u8));
        let text: String = (0..10).map(|r| format!("{}\tshared {}\n", r % 2, own(r))).collect();
        std::fs::write(dir.0.join("s.tsv"), text).unwrap();
        let c = call(
            "sentences",
            vec![(None, s("s.tsv")), (Some("tokens"), int(1)), (Some("label"), int(0)), (Some("vocab"), int(50))],
        );
        let inputs = [input("tokens", &[2], true), input("label", &[], true)];
        let (train, val) = super::super::split(10, 0.3, 5);
        assert_eq!(val.len(), 3);
        let ids = |rows: VocabRows| {
            let l = load_call(&c, &dir.0, &Access::User, &inputs, 5, &rows).unwrap();
            let Some(Array::I64(t)) = l.loaded.dataset.get("tokens").cloned() else { panic!() };
            t
        };
        // Column 1 of each row is the row's own word.
        let t = ids(VocabRows::Train { validate: 0.3, seed: 5 });
        for &r in &val {
            assert_eq!(t[[r, 1]], 1, "row {r}: a word seen only in validation rows is out of vocabulary");
        }
        for &r in &train {
            assert!(t[[r, 1]] >= 2, "row {r}: training words are in the vocabulary");
            assert_eq!(t[[r, 0]], 2, "`shared` is the most frequent word");
        }
        // Without a split every row's words are known.
        assert!(ids(VocabRows::All).iter().all(|&i| i >= 2));
        // Holding out the last rows leaves their words out.
        let t = ids(VocabRows::Leading { validate: 0.3 });
        assert!((0..7).all(|r| t[[r, 1]] >= 2) && (7..10).all(|r| t[[r, 1]] == 1), "{t}");
    }

    #[test]
    fn labels_and_bad_calls() {
        let flipped = Value::Call(Rc::new(CallValue {
            name: "<".into(),
            args: vec![(None, int(0)), (None, Value::Call(Rc::new(call("column", vec![(None, int(1))]))))],
        }));
        assert_eq!(label(&flipped).unwrap(), LabelExpr::compare(Column::Index(1), Cmp::Gt, 0.0));
        assert_eq!(label(&column_gt(2, 3)).unwrap().to_string(), "column(2) > 3");
        assert_eq!(label(&int(4)).unwrap(), LabelExpr::column(Column::Index(4)));
        assert!(spec_of(&call("csv", vec![]), &[], 0).unwrap_err().to_string().contains("needs a file name"));
        assert!(spec_of(&call("parquet", vec![(None, s("x"))]), &[], 0).is_err());
        assert!(
            spec_of(&call("synthetic", vec![(Some("n"), int(0))]), &[], 0)
                .unwrap_err()
                .to_string()
                .contains("`n` must be an integer ≥ 1")
        );
        assert!(spec_of(&call("idx", vec![(Some("x"), int(1))]), &[], 0).is_err());
        assert!(
            spec_of(&call("sentences", vec![(None, s("f.tsv")), (Some("pad"), Value::Mode("middle".into()))]), &[], 0)
                .is_err()
        );
        let c = call("npy", vec![(Some("x"), s("missing.npy"))]);
        assert!(matches!(load_call(&c, &root(), &Access::User, &[], 0, &VocabRows::All), Err(DataError::File(_))));
    }
}
