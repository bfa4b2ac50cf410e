//! The data layer of `train` blocks (docs/src/reference/train.md and docs/src/decisions.md "Data").
//!
//! A [`SourceSpec`] says what to read (`csv`, `jsonl`, `idx`, `npy`, `npz`, `text`,
//! `sentences`, `synthetic`); [`source::load`] reads it into a [`Dataset`]
//! of named arrays whose axis 0 indexes samples, with raw values (f32, or
//! i64 where the file holds integers f32 cannot represent or the source
//! yields token ids). The training runtime then
//! - shapes each array for the model input it feeds ([`fit_to_input`]:
//!   64 columns → `[8, 8, 1]`, floats → ints for `int[…]` inputs),
//! - splits off validation rows and batches ([`split`], [`batches`], [`take`]),
//! - z-scores with training statistics ([`zscore`]) that are saved with the
//!   checkpoint and re-applied by `predict` ([`apply_zscore`]).
//!
//! Nothing here panics on bad input: every problem with a file or a spec is
//! a [`DataError`] whose message names the file, the column or array, and
//! the numbers that disagree.
//!
//! [`from_call`] builds a `SourceSpec` from the checker's value of a
//! `data = …` field; everything else is independent of the compiler.

pub mod batch;
pub mod bind;
mod csv;
pub mod from_call;
mod idx;
mod jsonl;
pub mod norm;
pub mod shape;
pub mod source;
mod synthetic;
mod text;
pub mod transform;

use std::collections::BTreeMap;
use std::path::PathBuf;

use ndarray::{ArrayD, Axis};

use crate::io::IoError;

pub use batch::{batches, split, split_tail, take};
pub use norm::{ZScore, apply_zscore, zscore};
pub use shape::fit_to_input;
pub use source::{
    Cmp, Column, CsvSpec, Header, LabelExpr, Loaded, Pad, Selector, SentencesSpec, SourceSpec, SyntheticArray,
    SyntheticKind, SyntheticSpec, TextSpec, VocabRows, Vocabulary, load,
};
pub use text::words;

/// One named array; axis 0 indexes samples.
#[derive(Clone, Debug, PartialEq)]
pub enum Array {
    /// Float features.
    F32(ArrayD<f32>),
    /// Integer labels or token ids.
    I64(ArrayD<i64>),
}

impl Array {
    /// The shape, samples first.
    pub fn shape(&self) -> &[usize] {
        match self {
            Array::F32(a) => a.shape(),
            Array::I64(a) => a.shape(),
        }
    }

    /// Number of samples (the length of axis 0; a scalar counts as one).
    pub fn samples(&self) -> usize {
        self.shape().first().copied().unwrap_or(1)
    }

    /// Values per sample: the product of the axes after the first.
    pub fn per_sample(&self) -> usize {
        self.shape().iter().skip(1).product()
    }

    /// Whether it holds integers.
    pub fn is_int(&self) -> bool {
        matches!(self, Array::I64(_))
    }

    /// The values as f32 (integers converted).
    pub fn to_f32(&self) -> ArrayD<f32> {
        match self {
            Array::F32(a) => a.clone(),
            Array::I64(a) => a.mapv(|v| v as f32),
        }
    }

    /// The samples `idx`, in that order. Panics if an index is out of range
    /// (indices come from [`split`] and [`batches`], never from files).
    pub fn select(&self, idx: &[usize]) -> Array {
        match self {
            Array::F32(a) => Array::F32(a.select(Axis(0), idx)),
            Array::I64(a) => Array::I64(a.select(Axis(0), idx)),
        }
    }

    /// "float32 [1797, 64]"-style description for messages.
    pub fn describe(&self) -> String {
        format!("{} {:?}", if self.is_int() { "int" } else { "float" }, self.shape())
    }
}

/// Named arrays with a common number of samples.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Dataset {
    /// The arrays by name (model inputs and label arrays).
    pub arrays: BTreeMap<String, Array>,
}

impl Dataset {
    /// Number of samples (of the first array; sources make them agree).
    pub fn len(&self) -> usize {
        self.arrays.values().next().map_or(0, Array::samples)
    }

    /// Whether there are no samples.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The array named `name`, if any.
    pub fn get(&self, name: &str) -> Option<&Array> {
        self.arrays.get(name)
    }

    /// The samples `idx` of every array.
    pub fn take(&self, idx: &[usize]) -> Dataset {
        take(self, idx)
    }
}

/// Why data could not be loaded or shaped.
#[derive(Clone, Debug, PartialEq)]
pub enum DataError {
    /// The file is missing, unreadable, or not valid in its format
    /// (gzip, `.npy`, `.npz`, IDX).
    File(IoError),
    /// A text file (CSV, TSV, text) that is not UTF-8.
    NotUtf8 {
        /// The file.
        path: PathBuf,
        /// 1-based line number in the file.
        line: usize,
    },
    /// A table or text with no data.
    Empty {
        /// The file.
        path: PathBuf,
        /// What is missing or short (for the message).
        what: String,
    },
    /// A column name that is not in the header.
    NoColumn {
        /// The file.
        path: PathBuf,
        /// The column as selected (name or index).
        column: String,
        /// The closest existing name, if one is close.
        suggestion: Option<String>,
    },
    /// Columns selected by name in a file without a header row.
    NoHeader {
        /// The file.
        path: PathBuf,
        /// The column as selected (name or index).
        column: String,
        /// Number of columns the file has.
        columns: usize,
    },
    /// A column index past the last column.
    ColumnOutOfRange {
        /// The file.
        path: PathBuf,
        /// The 0-based column index asked for.
        index: usize,
        /// Number of columns the file has.
        columns: usize,
    },
    /// A selector that picks no column (a glob matching nothing, `5..5`).
    EmptySelection {
        /// The file.
        path: PathBuf,
        /// The selector as written.
        selector: String,
    },
    /// A row with a different number of cells than the first row (or fewer
    /// than the source needs).
    Ragged {
        /// The file.
        path: PathBuf,
        /// 1-based line number in the file.
        line: usize,
        /// Cells found on that line.
        found: usize,
        /// Cells expected.
        expected: usize,
        /// Whether `expected` is a minimum rather than exact.
        at_least: bool,
    },
    /// A line the CSV reader cannot split (an unterminated quote).
    Syntax {
        /// The file.
        path: PathBuf,
        /// 1-based line number in the file.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// A cell that should hold a number.
    NotANumber {
        /// The file.
        path: PathBuf,
        /// 1-based line number in the file.
        line: usize,
        /// The column as selected (name or index).
        column: String,
        /// The cell's text.
        text: String,
    },
    /// Selected values do not fit the declared per-sample shape.
    Shape {
        /// Where the array comes from (file and selector).
        origin: String,
        /// The array's name.
        array: String,
        /// Values selected per sample.
        values: usize,
        /// The declared per-sample shape.
        shape: Vec<usize>,
    },
    /// An `int[…]` input fed non-integral values.
    NotInteger {
        /// Where the array comes from (file and selector).
        origin: String,
        /// The array's name.
        array: String,
        /// The 0-based sample.
        sample: usize,
        /// The value found.
        value: f64,
    },
    /// A model input that the data source does not yield.
    MissingArray {
        /// Where the array comes from (file and selector).
        origin: String,
        /// The array's name.
        array: String,
        /// The arrays the source yields.
        available: Vec<String>,
        /// The closest existing name, if one is close.
        suggestion: Option<String>,
    },
    /// Arrays of one source that disagree on the number of samples.
    Lengths {
        /// Where the array comes from (file and selector).
        origin: String,
        /// The first array's name and sample count.
        first: (String, usize),
        /// An array with a different sample count.
        other: (String, usize),
    },
    /// A text too short for one window.
    TooShort {
        /// The file.
        path: PathBuf,
        /// What the text has.
        have: usize,
        /// What one window needs.
        need: usize,
        /// What is missing or short (for the message).
        what: String,
    },
    /// An option with an invalid value (`seq = 0`, `vocab = 2`, …).
    Spec {
        /// The data source (`text`, `csv`…).
        source: String,
        /// What is wrong.
        reason: String,
    },
    /// z-scoring asked of an integer array.
    NotFloat {
        /// The array's name.
        array: String,
    },
    /// Saved statistics that do not fit the array they are applied to.
    Stats {
        /// The array's name.
        array: String,
        /// What is wrong.
        reason: String,
    },
    /// A dim the data binds that it cannot bind, or binds twice to different values.
    Dim {
        /// The dim's name.
        dim: String,
        /// What is wrong.
        reason: String,
    },
    /// Data transforms saved with a checkpoint that cannot be used.
    Transforms {
        /// What is wrong.
        reason: String,
    },
}

impl From<IoError> for DataError {
    fn from(e: IoError) -> DataError {
        DataError::File(e)
    }
}

impl std::fmt::Display for DataError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DataError::File(e) => write!(f, "{e}"),
            DataError::NotUtf8 { path, line } => write!(f, "{}: line {line} is not valid UTF-8 text", path.display()),
            DataError::Empty { path, what } => write!(f, "{}: {what}", path.display()),
            DataError::NoColumn { path, column, suggestion } => {
                write!(f, "{}: no column `{column}`", path.display())?;
                match suggestion {
                    Some(s) => write!(f, " (did you mean `{s}`?)"),
                    None => Ok(()),
                }
            }
            DataError::NoHeader { path, column, columns } => write!(
                f,
                "{}: column `{column}` selected by name, but the file has no header row; select by index \
                    (0..{columns}) or pass header = true",
                path.display()
            ),
            DataError::ColumnOutOfRange { path, index, columns } => {
                write!(
                    f,
                    "{}: column {index} does not exist: the file has {columns} columns (0..{columns})",
                    path.display()
                )
            }
            DataError::EmptySelection { path, selector } => {
                write!(f, "{}: {selector} selects no column", path.display())
            }
            DataError::Ragged { path, line, found, expected, at_least } => {
                let need = if *at_least { "at least " } else { "" };
                write!(f, "{}: line {line} has {found} columns, expected {need}{expected}", path.display())
            }
            DataError::Syntax { path, line, reason } => write!(f, "{}: line {line}: {reason}", path.display()),
            DataError::NotANumber { path, line, column, text } => {
                if text.trim().is_empty() {
                    write!(f, "{}: line {line}, {column}: empty cell where a number is needed", path.display())
                } else {
                    write!(f, "{}: line {line}, {column}: `{text}` is not a finite number", path.display())
                }
            }
            DataError::Shape { origin, array, values, shape } => {
                let need: usize = shape.iter().product();
                let s = if *values == 1 { "" } else { "s" };
                write!(f, "{origin}: {values} value{s} per sample, input `{array}` {shape:?} needs {need}")
            }
            DataError::NotInteger { origin, array, sample, value } => {
                write!(f, "{origin}: input `{array}` is int but sample {sample} holds {value}")
            }
            DataError::MissingArray { origin, array, available, suggestion } => {
                write!(f, "{origin}: yields no array `{array}` (it yields {})", list(available))?;
                match suggestion {
                    Some(s) => write!(f, "; did you mean `{s}`?"),
                    None => Ok(()),
                }
            }
            DataError::Lengths { origin, first, other } => write!(
                f,
                "{origin}: arrays disagree on the number of samples: `{}` has {}, `{}` has {}",
                first.0, first.1, other.0, other.1
            ),
            DataError::TooShort { path, have, need, what } => {
                write!(f, "{}: {have} {what}, at least {need} needed", path.display())
            }
            DataError::Spec { source, reason } => write!(f, "{source}: {reason}"),
            DataError::NotFloat { array } => write!(f, "cannot z-score `{array}`: it holds integers"),
            DataError::Stats { array, reason } => write!(f, "z-score statistics of `{array}`: {reason}"),
            DataError::Dim { dim, reason } => write!(f, "dim `{dim}`: {reason}"),
            DataError::Transforms { reason } => write!(f, "the checkpoint's data transforms: {reason}"),
        }
    }
}

impl std::error::Error for DataError {}

fn list(names: &[String]) -> String {
    if names.is_empty() {
        return "nothing".into();
    }
    names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")
}

/// The closest name to `name` among `candidates`, for "did you mean".
pub(crate) fn suggest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<String> {
    // Case differences alone ("weight" for "Weight") are the commonest slip.
    let candidates: Vec<&str> = candidates.into_iter().collect();
    if let Some(c) = candidates.iter().find(|c| c.eq_ignore_ascii_case(name)) {
        return Some(c.to_string());
    }
    nnc_compiler::layers::suggest(name, candidates).map(str::to_string)
}

#[cfg(test)]
pub(crate) mod testutil {
    use std::path::PathBuf;

    /// The repository root: the shipped data sets live in `data/`.
    pub fn root() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::IxDyn;

    #[test]
    fn dataset_basics() {
        let mut ds = Dataset::default();
        assert_eq!(ds.len(), 0);
        assert!(ds.is_empty());
        ds.arrays.insert(
            "x".into(),
            Array::F32(ArrayD::from_shape_vec(IxDyn(&[3, 2]), vec![0., 1., 2., 3., 4., 5.]).unwrap()),
        );
        ds.arrays.insert("y".into(), Array::I64(ArrayD::from_shape_vec(IxDyn(&[3]), vec![7, 8, 9]).unwrap()));
        assert_eq!(ds.len(), 3);
        let t = ds.take(&[2, 0]);
        assert_eq!(t.get("x").unwrap().to_f32().into_raw_vec_and_offset().0, vec![4., 5., 0., 1.]);
        assert_eq!(t.get("y"), Some(&Array::I64(ArrayD::from_shape_vec(IxDyn(&[2]), vec![9, 7]).unwrap())));
        assert_eq!(ds.get("x").unwrap().per_sample(), 2);
        assert_eq!(ds.get("y").unwrap().describe(), "int [3]");
    }

    #[test]
    fn messages_name_files_columns_and_numbers() {
        let e = DataError::Shape {
            origin: "data/digits.csv.gz: columns 0..63".into(),
            array: "pixels".into(),
            values: 63,
            shape: vec![8, 8, 1],
        };
        assert_eq!(
            e.to_string(),
            "data/digits.csv.gz: columns 0..63: 63 values per sample, input `pixels` [8, 8, 1] needs 64"
        );
        let e = DataError::NoColumn {
            path: "data/fish.csv".into(),
            column: "Wieght".into(),
            suggestion: Some("Weight".into()),
        };
        assert_eq!(e.to_string(), "data/fish.csv: no column `Wieght` (did you mean `Weight`?)");
        assert_eq!(suggest("weight", ["Species", "Weight"]), Some("Weight".into()));
        assert_eq!(suggest("Hieght", ["Height", "Width"]), Some("Height".into()));
        assert_eq!(suggest("zzz", ["Height", "Width"]), None);
    }
}
