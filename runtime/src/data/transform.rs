//! The data transforms a model needs at inference, saved with its
//! checkpoint so that `nnc predict` can take raw input: the vocabulary of a
//! `sentences` or `text` source (a line of text → token ids, padded as in
//! training), the column selector of a `csv` source (rows of a table → the
//! input's values), and the values of dims the data bound (`T`, `V`).
//! z-score statistics are saved beside them (`zscore.<array>`, [`super::ZScore`]).
//!
//! The metadata entry [`KEY`] holds one JSON object with a `version`.
//! Checkpoints are files users exchange, so loading validates everything
//! (sizes bounded, ids unique, dims positive) and reports a clear error
//! rather than trusting the file.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use ndarray::{ArrayD, IxDyn};
use serde_json::{Value as Json, json};

use super::source::{Cmp, Column, CsvSpec, Header, LabelExpr, Pad, Selector, SourceSpec};
use super::{Array, DataError};

/// The safetensors `__metadata__` key.
pub const KEY: &str = "nnc.data";
/// The format written; loading accepts this version only.
pub const VERSION: u64 = 1;
/// Bounds on what a checkpoint may claim (a hostile file must not make
/// `predict` allocate without limit).
const MAX_VOCAB: usize = 10_000_000;
const MAX_LEN: usize = 1 << 20;
const MAX_TOKEN_BYTES: usize = 1024;
const MAX_DIM: i64 = 1 << 40;
const MAX_SELECTOR_DEPTH: usize = 8;

/// How raw input becomes one model input.
#[derive(Clone, Debug, PartialEq)]
pub enum InputTransform {
    /// `sentences`: lower-cased words (runs of letters), ids by `vocab`
    /// (0 padding, 1 unknown), padded or truncated to `len`.
    Words {
        /// The vocabulary: id `i` is `vocab[i]` (ids 0 and 1 are padding and unknown).
        vocab: Vec<String>,
        /// Tokens per sample.
        len: usize,
        /// Which end short samples are padded at.
        pad: Pad,
        /// Which end long samples are cut at.
        truncate: Pad,
    },
    /// `text`: characters (lower-cased when `lower`), ids by `vocab`; rare
    /// characters are `oov` when the vocabulary was capped. A line gives its
    /// last `len` characters.
    Chars {
        /// The vocabulary: id `i` is `vocab[i]`.
        vocab: Vec<String>,
        /// The id of characters outside the vocabulary, when it was capped.
        oov: Option<usize>,
        /// Whether text is lower-cased first.
        lower: bool,
        /// Characters per sample.
        len: usize,
    },
    /// `csv`: the same columns of a table laid out like the training file.
    Csv {
        /// The columns that feed the input.
        selector: Selector,
        /// Whether the file has a header row.
        header: Header,
        /// The cell delimiter; `None` detects it from the file name and first line.
        delimiter: Option<char>,
    },
}

/// Everything saved for `predict`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Transforms {
    /// Dims the data bound (`T` = 57, `V` = 41).
    pub dims: BTreeMap<String, i64>,
    /// Per model input.
    pub inputs: BTreeMap<String, InputTransform>,
}

impl Transforms {
    /// What `spec` (with its loaded `vocabulary`) did to the arrays named in
    /// `inputs`; `lens` gives each token input's length after padding.
    pub fn of_source(
        spec: &SourceSpec,
        vocabulary: Option<&super::Vocabulary>,
        inputs: &[String],
        lens: &BTreeMap<String, usize>,
    ) -> Transforms {
        let mut t = Transforms::default();
        for name in inputs {
            let len = lens.get(name).copied();
            let one = match (spec, vocabulary, len) {
                (SourceSpec::Sentences(s), Some(v), Some(len)) if *name == s.tokens_name => {
                    Some(InputTransform::Words { vocab: v.tokens.clone(), len, pad: s.pad, truncate: s.truncate })
                }
                (SourceSpec::Text(s), Some(v), Some(len)) if *name == s.x => {
                    Some(InputTransform::Chars { vocab: v.tokens.clone(), oov: v.oov, lower: s.lower, len })
                }
                (SourceSpec::Csv(c), _, _) => c.arrays.iter().find(|(n, _)| n == name).map(|(_, sel)| {
                    InputTransform::Csv { selector: sel.clone(), header: c.header, delimiter: c.delimiter }
                }),
                _ => None,
            };
            if let Some(one) = one {
                t.inputs.insert(name.clone(), one);
            }
        }
        t
    }

    /// Whether nothing needs saving (no dims and no input transforms).
    pub fn is_empty(&self) -> bool {
        self.dims.is_empty() && self.inputs.is_empty()
    }

    /// The JSON saved in a checkpoint's metadata (read back by `from_json`).
    pub fn to_json(&self) -> String {
        let inputs: serde_json::Map<String, Json> = self
            .inputs
            .iter()
            .map(|(k, t)| {
                let v = match t {
                    InputTransform::Words { vocab, len, pad, truncate } => {
                        json!({
                            "kind": "words",
                            "vocab": vocab,
                            "len": len,
                            "pad": pad_name(*pad),
                            "truncate": pad_name(*truncate),
                        })
                    }
                    InputTransform::Chars { vocab, oov, lower, len } => {
                        json!({"kind": "chars", "vocab": vocab, "oov": oov, "lower": lower, "len": len})
                    }
                    InputTransform::Csv { selector, header, delimiter } => json!({
                        "kind": "csv",
                        "selector": selector_json(selector),
                        "header": match header {
                            Header::Auto => "auto",
                            Header::Present => "true",
                            Header::Absent => "false",
                        },
                        "delimiter": delimiter.map(|c| c.to_string()),
                    }),
                };
                (k.clone(), v)
            })
            .collect();
        json!({"version": VERSION, "dims": self.dims, "inputs": inputs}).to_string()
    }

    /// Parses and validates [`KEY`]'s value.
    pub fn from_json(text: &str) -> Result<Transforms, DataError> {
        let bad = |r: String| DataError::Transforms { reason: r };
        let v: Json = serde_json::from_str(text).map_err(|e| bad(format!("`{KEY}` is not valid JSON ({e})")))?;
        match v.get("version").and_then(Json::as_u64) {
            Some(VERSION) => {}
            Some(other) => {
                return Err(bad(format!("version {other}; this nnc reads version {VERSION} (saved by a newer nnc?)")));
            }
            None => return Err(bad("no `version`".into())),
        }
        let mut t = Transforms::default();
        if let Some(dims) = v.get("dims") {
            let dims = dims.as_object().ok_or_else(|| bad("`dims` is not an object".into()))?;
            for (k, d) in dims {
                let d = d
                    .as_i64()
                    .filter(|d| (1..=MAX_DIM).contains(d))
                    .ok_or_else(|| bad(format!("dim `{k}` is not an integer in 1..={MAX_DIM}")))?;
                if !valid_name(k) {
                    return Err(bad(format!("`{}` is not a dim name", k.escape_debug())));
                }
                t.dims.insert(k.clone(), d);
            }
        }
        if let Some(inputs) = v.get("inputs") {
            let inputs = inputs.as_object().ok_or_else(|| bad("`inputs` is not an object".into()))?;
            for (name, x) in inputs {
                let one = input_from_json(x).map_err(|r| bad(format!("input `{}`: {r}", name.escape_debug())))?;
                t.inputs.insert(name.clone(), one);
            }
        }
        Ok(t)
    }

    /// The transforms saved in checkpoint metadata, if any.
    pub fn from_metadata(meta: &BTreeMap<String, String>) -> Result<Option<Transforms>, DataError> {
        meta.get(KEY).map(|t| Transforms::from_json(t)).transpose()
    }
}

fn valid_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= 256 && s.chars().all(|c| c.is_alphanumeric() || c == '_')
}

fn pad_name(p: Pad) -> &'static str {
    match p {
        Pad::Pre => "pre",
        Pad::Post => "post",
    }
}

fn selector_json(s: &Selector) -> Json {
    let column = |c: &Column| match c {
        Column::Index(i) => json!(i),
        Column::Name(n) => json!(n),
    };
    match s {
        Selector::Name(n) => json!({"name": n}),
        Selector::Index(i) => json!({"index": i}),
        Selector::Range(a, b) => json!({"range": [a, b]}),
        Selector::Glob(g) => json!({"glob": g}),
        Selector::List(items) => json!({"list": items.iter().map(selector_json).collect::<Vec<_>>()}),
        Selector::Label(l) => {
            json!({"label": {"column": column(&l.column), "compare": l.compare.map(|(c, v)| json!([c.op(), v]))}})
        }
    }
}

fn selector_from_json(v: &Json, depth: usize) -> Result<Selector, String> {
    if depth > MAX_SELECTOR_DEPTH {
        return Err("the column selector is nested too deeply".into());
    }
    let o = v.as_object().filter(|o| o.len() == 1).ok_or("a column selector is an object with one key")?;
    let (k, x) = o.iter().next().expect("one key");
    let index = |x: &Json| {
        x.as_u64().and_then(|i| usize::try_from(i).ok()).ok_or_else(|| format!("`{k}` needs a column index"))
    };
    Ok(match k.as_str() {
        "name" => Selector::Name(x.as_str().ok_or("`name` needs a string")?.to_string()),
        "glob" => Selector::Glob(x.as_str().ok_or("`glob` needs a string")?.to_string()),
        "index" => Selector::Index(index(x)?),
        "range" => match x.as_array().map(Vec::as_slice) {
            Some([a, b]) => {
                let (a, b) = (index(a)?, index(b)?);
                if a > b {
                    return Err(format!("the range {a}..{b} is reversed"));
                }
                Selector::Range(a, b)
            }
            _ => return Err("`range` needs [first, end]".into()),
        },
        "list" => {
            let items = x.as_array().ok_or("`list` needs a list")?;
            Selector::List(items.iter().map(|i| selector_from_json(i, depth + 1)).collect::<Result<_, _>>()?)
        }
        "label" => {
            let column = match x.get("column") {
                Some(Json::String(n)) => Column::Name(n.clone()),
                Some(c) => Column::Index(index(c)?),
                None => return Err("`label` needs a column".into()),
            };
            let compare = match x.get("compare") {
                None | Some(Json::Null) => None,
                Some(c) => match c.as_array().map(Vec::as_slice) {
                    Some([op, v]) => Some((
                        op.as_str().and_then(Cmp::from_op).ok_or("unknown comparison")?,
                        v.as_f64().ok_or("a comparison needs a number")?,
                    )),
                    _ => return Err("`compare` needs [operator, number]".into()),
                },
            };
            Selector::Label(LabelExpr { column, compare })
        }
        other => return Err(format!("unknown column selector `{}`", other.escape_debug())),
    })
}

fn input_from_json(x: &Json) -> Result<InputTransform, String> {
    let len = || -> Result<usize, String> {
        x.get("len")
            .and_then(Json::as_u64)
            .and_then(|l| usize::try_from(l).ok())
            .filter(|l| (1..=MAX_LEN).contains(l))
            .ok_or_else(|| format!("`len` must be an integer in 1..={MAX_LEN}"))
    };
    let vocab = |min: usize| -> Result<Vec<String>, String> {
        let list = x.get("vocab").and_then(Json::as_array).ok_or("no `vocab` list")?;
        if list.len() < min || list.len() > MAX_VOCAB {
            return Err(format!("the vocabulary has {} entries, expected {min}..={MAX_VOCAB}", list.len()));
        }
        let mut seen = BTreeSet::new();
        let mut out = Vec::with_capacity(list.len());
        for t in list {
            let t = t.as_str().ok_or("the vocabulary holds a non-string")?;
            if t.len() > MAX_TOKEN_BYTES {
                return Err(format!("a vocabulary entry is longer than {MAX_TOKEN_BYTES} bytes"));
            }
            if !seen.insert(t) {
                return Err(format!("`{}` is in the vocabulary twice", t.escape_debug()));
            }
            out.push(t.to_string());
        }
        Ok(out)
    };
    let pad = |k: &str| match x.get(k).and_then(Json::as_str) {
        Some("pre") => Ok(Pad::Pre),
        Some("post") => Ok(Pad::Post),
        _ => Err(format!("`{k}` must be \"pre\" or \"post\"")),
    };
    match x.get("kind").and_then(Json::as_str) {
        Some("words") => {
            let vocab = vocab(2)?;
            if vocab[0] != super::text::PAD || vocab[1] != super::text::OOV {
                return Err(format!("a word vocabulary starts with {} and {}", super::text::PAD, super::text::OOV));
            }
            Ok(InputTransform::Words { vocab, len: len()?, pad: pad("pad")?, truncate: pad("truncate")? })
        }
        Some("chars") => {
            let vocab = vocab(1)?;
            let oov = match x.get("oov") {
                None | Some(Json::Null) => None,
                Some(o) => Some(
                    o.as_u64()
                        .and_then(|o| usize::try_from(o).ok())
                        .filter(|&o| o < vocab.len())
                        .ok_or("`oov` is not an id of the vocabulary")?,
                ),
            };
            if vocab.iter().enumerate().any(|(i, t)| Some(i) != oov && t.chars().count() != 1) {
                return Err("a character vocabulary holds an entry that is not one character".into());
            }
            let lower = x.get("lower").and_then(Json::as_bool).ok_or("`lower` must be true or false")?;
            Ok(InputTransform::Chars { vocab, oov, lower, len: len()? })
        }
        Some("csv") => {
            let selector = selector_from_json(x.get("selector").ok_or("no `selector`")?, 0)?;
            let header = match x.get("header").and_then(Json::as_str) {
                Some("auto") => Header::Auto,
                Some("true") => Header::Present,
                Some("false") => Header::Absent,
                _ => return Err("`header` must be \"auto\", \"true\" or \"false\"".into()),
            };
            let delimiter = match x.get("delimiter") {
                None | Some(Json::Null) => None,
                Some(d) => {
                    let s = d.as_str().ok_or("`delimiter` must be a string")?;
                    let mut cs = s.chars();
                    match (cs.next(), cs.next()) {
                        (Some(c), None) => Some(c),
                        _ => return Err("`delimiter` must be one character".into()),
                    }
                }
            };
            Ok(InputTransform::Csv { selector, header, delimiter })
        }
        Some(other) => Err(format!("unknown transform kind `{}`", other.escape_debug())),
        None => Err("no `kind`".into()),
    }
}

/// Reads a raw input file for `input` through its saved transform: text
/// lines (`Words`, `Chars`: one sample per non-empty line) or CSV rows.
pub fn read_raw(path: &Path, input: &str, t: &InputTransform) -> Result<Array, DataError> {
    match t {
        InputTransform::Csv { selector, header, delimiter } => {
            let spec = CsvSpec {
                path: path.to_path_buf(),
                header: *header,
                delimiter: *delimiter,
                arrays: vec![(input.to_string(), selector.clone())],
            };
            let mut l = super::csv::load(&spec, Path::new(""))?;
            l.dataset
                .arrays
                .remove(input)
                .ok_or_else(|| DataError::Empty { path: path.to_path_buf(), what: "no rows".into() })
        }
        InputTransform::Words { .. } | InputTransform::Chars { .. } => {
            let text = super::csv::read_text(path)?;
            let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
            if lines.is_empty() {
                return Err(DataError::Empty {
                    path: path.to_path_buf(),
                    what: "no lines of text (one sample per line)".into(),
                });
            }
            encode_lines(&lines, t).map_err(|(line, reason)| DataError::Syntax {
                path: path.to_path_buf(),
                line,
                reason,
            })
        }
    }
}

/// Every column of a table as one array (a model not trained on a table).
pub fn read_table(path: &Path, input: &str) -> Result<Array, DataError> {
    let text = super::csv::read_text(path)?;
    let first = text
        .lines()
        .find(|l| !l.trim().is_empty())
        .ok_or_else(|| DataError::Empty { path: path.to_path_buf(), what: "the table is empty".into() })?;
    let delim = super::csv::detect_delimiter(path, first);
    let mut cells = Vec::new();
    super::csv::split_line(first, delim, &mut cells).map_err(|reason| DataError::Syntax {
        path: path.to_path_buf(),
        line: 1,
        reason,
    })?;
    let all =
        InputTransform::Csv { selector: Selector::Range(0, cells.len()), header: Header::Auto, delimiter: Some(delim) };
    read_raw(path, input, &all)
}

/// Token ids of text lines, one sample per line; an error is (the line's
/// number among `lines`, 1-based, and why).
pub fn encode_lines(lines: &[&str], t: &InputTransform) -> Result<Array, (usize, String)> {
    let mut ids: Vec<i64> = Vec::new();
    let len = match t {
        InputTransform::Words { vocab, len, pad, truncate } => {
            let index: BTreeMap<&str, i64> =
                vocab.iter().enumerate().skip(2).map(|(i, w)| (w.as_str(), i as i64)).collect();
            for line in lines {
                let mut row: Vec<i64> =
                    super::words(line).map(|w| index.get(w.as_str()).copied().unwrap_or(1)).collect();
                if row.len() > *len {
                    row = match truncate {
                        Pad::Pre => row.split_off(row.len() - len),
                        Pad::Post => row[..*len].to_vec(),
                    };
                }
                let fill = std::iter::repeat_n(0, len - row.len());
                match pad {
                    Pad::Pre => ids.extend(fill.chain(row)),
                    Pad::Post => ids.extend(row.into_iter().chain(fill)),
                }
            }
            *len
        }
        InputTransform::Chars { vocab, oov, lower, len } => {
            let index: BTreeMap<char, i64> = vocab
                .iter()
                .enumerate()
                .filter(|(i, _)| Some(*i) != *oov)
                .filter_map(|(i, c)| Some((c.chars().next()?, i as i64)))
                .collect();
            for (no, line) in lines.iter().enumerate() {
                let line = if *lower { line.to_lowercase() } else { line.to_string() };
                let chars: Vec<char> = line.chars().collect();
                if chars.len() < *len {
                    return Err((
                        no + 1,
                        format!("{} characters; the model reads the last {len} of a line", chars.len()),
                    ));
                }
                for c in &chars[chars.len() - len..] {
                    match (index.get(c), oov) {
                        (Some(&i), _) => ids.push(i),
                        (None, Some(o)) => ids.push(*o as i64),
                        (None, None) => {
                            return Err((
                                no + 1,
                                format!("the character {c:?} is not in the training text's vocabulary"),
                            ));
                        }
                    }
                }
            }
            *len
        }
        InputTransform::Csv { .. } => return Err((0, "a CSV input is read as a table, not as text".into())),
    };
    let a = ArrayD::from_shape_vec(IxDyn(&[lines.len(), len]), ids).map_err(|e| (0, e.to_string()))?;
    Ok(Array::I64(a))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words() -> InputTransform {
        let vocab = ["<pad>", "<oov>", "good", "bad", "movie"].map(String::from).to_vec();
        InputTransform::Words { vocab, len: 4, pad: Pad::Pre, truncate: Pad::Pre }
    }

    #[test]
    fn round_trip() {
        let mut t = Transforms::default();
        t.dims.insert("T".into(), 4);
        t.inputs.insert("tokens".into(), words());
        t.inputs.insert(
            "chars".into(),
            InputTransform::Chars {
                vocab: ["<oov>", "a", "b"].map(String::from).to_vec(),
                oov: Some(0),
                lower: true,
                len: 3,
            },
        );
        let sel = Selector::List(vec![
            Selector::Range(0, 3),
            Selector::Name("Weight".into()),
            Selector::Glob("p*".into()),
            Selector::Index(7),
            Selector::Label(LabelExpr::compare(Column::Index(1), Cmp::Gt, 0.5)),
        ]);
        t.inputs
            .insert("x".into(), InputTransform::Csv { selector: sel, header: Header::Present, delimiter: Some(';') });
        let back = Transforms::from_json(&t.to_json()).unwrap();
        assert_eq!(back, t);
        let mut meta = BTreeMap::new();
        assert_eq!(Transforms::from_metadata(&meta).unwrap(), None);
        meta.insert(KEY.to_string(), t.to_json());
        assert_eq!(Transforms::from_metadata(&meta).unwrap(), Some(t));
    }

    #[test]
    fn hostile_metadata_is_a_clear_error() {
        let cases = [
            ("{", "not valid JSON"),
            ("[]", "no `version`"),
            (r#"{"version": 2}"#, "version 2"),
            (r#"{"version": 1, "dims": {"T": 0}}"#, "dim `T`"),
            (r#"{"version": 1, "dims": {"T": 1e300}}"#, "dim `T`"),
            (r#"{"version": 1, "dims": {"a b": 3}}"#, "not a dim name"),
            (
                concat!(
                    r#"{"version": 1, "inputs": {"x": {"kind": "words", "vocab": ["<pad>", "<oov>"], "len": 0,"#,
                    r#" "pad": "pre", "truncate": "pre"}}}"#,
                ),
                "`len`",
            ),
            (
                concat!(
                    r#"{"version": 1, "inputs": {"x": {"kind": "words", "vocab": ["<pad>", "<oov>"],"#,
                    r#" "len": 99999999999, "pad": "pre", "truncate": "pre"}}}"#,
                ),
                "`len`",
            ),
            (
                concat!(
                    r#"{"version": 1, "inputs": {"x": {"kind": "words", "vocab": ["<pad>", "<oov>", "a", "a"],"#,
                    r#" "len": 3, "pad": "pre", "truncate": "pre"}}}"#,
                ),
                "twice",
            ),
            (
                concat!(
                    r#"{"version": 1, "inputs": {"x": {"kind": "words", "vocab": ["a", "b"], "len": 3, "pad": "pre","#,
                    r#" "truncate": "pre"}}}"#,
                ),
                "starts with",
            ),
            (
                concat!(
                    r#"{"version": 1, "inputs": {"x": {"kind": "words", "vocab": ["<pad>", "<oov>"], "len": 3,"#,
                    r#" "pad": "middle", "truncate": "pre"}}}"#,
                ),
                "`pad`",
            ),
            (
                r#"{"version": 1, "inputs": {"x": {"kind": "chars", "vocab": ["ab"], "len": 3, "lower": true}}}"#,
                "not one character",
            ),
            (
                concat!(
                    r#"{"version": 1, "inputs": {"x": {"kind": "chars", "vocab": ["a"], "oov": 5, "len": 3,"#,
                    r#" "lower": true}}}"#,
                ),
                "`oov`",
            ),
            (
                r#"{"version": 1, "inputs": {"x": {"kind": "csv", "selector": {"range": [5, 2]}, "header": "auto"}}}"#,
                "reversed",
            ),
            (
                concat!(
                    r#"{"version": 1, "inputs": {"x": {"kind": "csv","#,
                    r#" "selector": {"list": [{"list": [{"list": [{"list": [{"list": [{"list": [{"list": "#,
                    r#"[{"list": [{"list": [{"list": []}]}]}]}]}]}]}]}]}]},"#,
                    r#" "header": "auto"}}}"#,
                ),
                "too deeply",
            ),
            (
                r#"{"version": 1, "inputs": {"x": {"kind": "csv", "selector": {"what": 1}, "header": "auto"}}}"#,
                "unknown column selector",
            ),
            (r#"{"version": 1, "inputs": {"x": {"kind": "pixels"}}}"#, "unknown transform kind"),
        ];
        for (text, want) in cases {
            let e = Transforms::from_json(text).unwrap_err().to_string();
            assert!(e.contains(want) && e.starts_with("the checkpoint's data transforms"), "{text}: {e}");
        }
    }

    #[test]
    fn lines_become_the_training_ids() {
        let Array::I64(a) = encode_lines(&["Good movie!", "a bad, bad, BAD good movie"], &words()).unwrap() else {
            panic!()
        };
        assert_eq!(a.shape(), &[2, 4]);
        assert_eq!(a.into_raw_vec_and_offset().0, [0, 0, 2, 4, 3, 3, 2, 4]);
        let chars = InputTransform::Chars {
            vocab: ["<oov>", "a", "b"].map(String::from).to_vec(),
            oov: Some(0),
            lower: true,
            len: 3,
        };
        let Array::I64(a) = encode_lines(&["xxABz"], &chars).unwrap() else { panic!() };
        assert_eq!(a.into_raw_vec_and_offset().0, [1, 2, 0]);
        assert_eq!(encode_lines(&["abc", "ab"], &chars).unwrap_err().0, 2);
        let exact =
            InputTransform::Chars { vocab: ["a", "b"].map(String::from).to_vec(), oov: None, lower: false, len: 1 };
        assert!(encode_lines(&["z"], &exact).unwrap_err().1.contains("not in the training text's vocabulary"));
    }
}
