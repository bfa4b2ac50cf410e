//! Data sources of `train` blocks (LANGUAGE.md §7, §10): `csv`, `idx`,
//! `npy`, `text`, `sentences`, `synthetic`; every source reads `.gz`.
//! Arrays are reshaped to the per-sample shape of the model input they feed.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use ndarray::{ArrayD, IxDyn};
use nnc_compiler::dims::Dim;
use nnc_compiler::types::{CallValue, Value};

use crate::exec::Tensor;
use crate::train::Dataset;
use crate::train::init::SplitMix;

#[derive(Clone, Debug, PartialEq)]
pub enum DataError {
    Read { path: PathBuf, reason: String },
    /// A cell that is not a number.
    NotANumber { path: PathBuf, row: usize, column: usize, text: String },
    NoColumn { path: PathBuf, name: String, suggestion: Option<String> },
    Ragged { path: PathBuf, row: usize, expected: usize, found: usize },
    /// Selected values do not fit the input's declared shape.
    Shape { source: String, array: String, values: usize, input_shape: Vec<usize> },
    Format { path: PathBuf, reason: String },
    Option { source: String, reason: String },
    /// A label or index array holds a non-integer.
    NotInteger { source: String, array: String, value: f64 },
}

impl std::fmt::Display for DataError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DataError::Read { path, reason } => write!(f, "{}: {reason}", path.display()),
            DataError::NotANumber { path, row, column, text } => {
                write!(f, "{}: row {row}, column {column}: `{text}` is not a number", path.display())
            }
            DataError::NoColumn { path, name, suggestion } => {
                write!(f, "{}: no column `{name}`", path.display())?;
                if let Some(s) = suggestion {
                    write!(f, " (did you mean `{s}`?)")?;
                }
                Ok(())
            }
            DataError::Ragged { path, row, expected, found } => {
                write!(f, "{}: row {row} has {found} columns, the first row has {expected}", path.display())
            }
            DataError::Shape { source, array, values, input_shape } => write!(
                f,
                "{source}: array `{array}` gives {values} values per sample, the input needs {input_shape:?} = {} values",
                input_shape.iter().product::<usize>()
            ),
            DataError::Format { path, reason } => write!(f, "{}: {reason}", path.display()),
            DataError::Option { source, reason } => write!(f, "{source}: {reason}"),
            DataError::NotInteger { source, array, value } => write!(f, "{source}: array `{array}` must hold integers, found {value}"),
        }
    }
}

/// What a model input expects of the array that feeds it.
#[derive(Clone, Debug)]
pub struct InputSpec {
    pub name: String,
    /// Per-sample shape (the batch axis removed).
    pub shape: Vec<usize>,
    pub int: bool,
}

/// A loaded source.
#[derive(Debug, Default)]
pub struct Loaded {
    pub data: Dataset,
    /// Values of dims the source decides (`V` for `text`).
    pub dims: Vec<(String, i64)>,
    /// Arrays to z-score (from `normalize = {x: zscore}`).
    pub normalize: Vec<String>,
}

fn read_bytes(path: &Path) -> Result<Vec<u8>, DataError> {
    let raw = std::fs::read(path).map_err(|e| DataError::Read { path: path.to_path_buf(), reason: e.to_string() })?;
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .map_err(|e| DataError::Read { path: path.to_path_buf(), reason: format!("gzip: {e}") })?;
        return Ok(out);
    }
    Ok(raw)
}

fn read_text(path: &Path) -> Result<String, DataError> {
    let b = read_bytes(path)?;
    String::from_utf8(b).map_err(|_| DataError::Read { path: path.to_path_buf(), reason: "not valid UTF-8 text".into() })
}

fn str_arg(call: &CallValue, i: usize) -> Option<String> {
    match call.positional(i) {
        Some(Value::Str(s)) => Some(s.clone()),
        _ => None,
    }
}

fn int_of(v: &Value) -> Option<i64> {
    match v {
        Value::Int(d) => d.as_known(),
        Value::Float(f) if f.fract() == 0.0 => Some(*f as i64),
        _ => None,
    }
}

/// Loads the source `call` (paths relative to `base`) and shapes its arrays
/// for `inputs`.
pub fn load(call: &CallValue, base: &Path, inputs: &[InputSpec], seed: u64) -> Result<Loaded, DataError> {
    let source = format!("{}(…)", call.name);
    let mut loaded = match call.name.as_str() {
        "csv" => csv(call, base)?,
        "idx" | "npy" => files(call, base)?,
        "text" => text(call, base, inputs)?,
        "sentences" => sentences(call, base, inputs)?,
        "synthetic" => synthetic(call, inputs, seed)?,
        other => return Err(DataError::Option { source, reason: format!("`{other}` data sources are not supported by `nnc run` yet") }),
    };
    if let Some(Value::Map(entries)) = call.arg("normalize") {
        for (k, _) in entries {
            if let Value::Mode(name) | Value::Str(name) = k {
                loaded.normalize.push(name.clone());
            }
        }
    }
    // Reshape arrays that feed inputs to the declared per-sample shape.
    let mut arrays = BTreeMap::new();
    for (name, t) in std::mem::take(&mut loaded.data.arrays) {
        let t = match inputs.iter().find(|i| i.name == name) {
            Some(spec) => fit(&source, &name, t, spec)?,
            None => t,
        };
        arrays.insert(name, t);
    }
    loaded.data.arrays = arrays;
    Ok(loaded)
}

fn fit(source: &str, name: &str, t: Tensor<f32>, spec: &InputSpec) -> Result<Tensor<f32>, DataError> {
    let (rows, per) = match &t {
        Tensor::F(a) => (a.shape()[0], a.len() / a.shape()[0].max(1)),
        Tensor::I(a) => (a.shape()[0], a.len() / a.shape()[0].max(1)),
    };
    let want: usize = spec.shape.iter().product();
    if per != want {
        return Err(DataError::Shape { source: source.into(), array: name.into(), values: per, input_shape: spec.shape.clone() });
    }
    let mut shape = vec![rows];
    shape.extend(&spec.shape);
    Ok(match (t, spec.int) {
        (Tensor::F(a), true) => {
            let mut out = Vec::with_capacity(a.len());
            for &v in a.iter() {
                if v.fract() != 0.0 || !v.is_finite() {
                    return Err(DataError::NotInteger { source: source.into(), array: name.into(), value: v as f64 });
                }
                out.push(v as i64);
            }
            Tensor::I(ArrayD::from_shape_vec(IxDyn(&shape), out).expect("count checked"))
        }
        (Tensor::F(a), false) => Tensor::F(a.into_shape_with_order(IxDyn(&shape)).expect("count checked")),
        (Tensor::I(a), true) => Tensor::I(a.into_shape_with_order(IxDyn(&shape)).expect("count checked")),
        (Tensor::I(a), false) => Tensor::F(a.mapv(|v| v as f32).into_shape_with_order(IxDyn(&shape)).expect("count checked")),
    })
}

/// A CSV/TSV table of numbers (header auto-detected).
fn csv(call: &CallValue, base: &Path) -> Result<Loaded, DataError> {
    let rel = str_arg(call, 0).ok_or_else(|| DataError::Option { source: "csv(…)".into(), reason: "needs a file name".into() })?;
    let path = base.join(&rel);
    let text = read_text(&path)?;
    let delim = match call.arg("delimiter") {
        Some(Value::Str(s)) if !s.is_empty() => s.chars().next().unwrap_or(','),
        _ => {
            let first = text.lines().next().unwrap_or("");
            if rel.contains(".tsv") || (first.contains('\t') && !first.contains(',')) { '\t' } else { ',' }
        }
    };
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let first: Vec<&str> = lines.clone().next().unwrap_or("").split(delim).map(str::trim).collect();
    let header = match call.arg("header") {
        Some(Value::Bool(b)) => *b,
        Some(Value::Mode(m)) if m == "true" => true,
        Some(Value::Mode(m)) if m == "false" => false,
        // auto: a header when some first-row cell is not a number.
        _ => first.iter().any(|c| c.parse::<f64>().is_err()),
    };
    let names: Vec<String> = if header {
        lines.next();
        first.iter().map(|s| s.trim_matches('"').to_string()).collect()
    } else {
        (0..first.len()).map(|i| i.to_string()).collect()
    };
    let ncols = names.len();
    // Parse lazily per column: keep cells as text, convert the selected ones.
    let mut rows: Vec<Vec<&str>> = Vec::new();
    for (r, line) in lines.enumerate() {
        let cells: Vec<&str> = line.split(delim).map(str::trim).collect();
        if cells.len() != ncols {
            return Err(DataError::Ragged { path: path.clone(), row: r + 1 + usize::from(header), expected: ncols, found: cells.len() });
        }
        rows.push(cells);
    }
    let mut data = Dataset::default();
    for (key, v) in &call.args {
        let Some(name) = key else { continue };
        if matches!(name.as_str(), "header" | "delimiter" | "normalize" | "shuffle") {
            continue;
        }
        let cols = select(v, &names, &path)?;
        let mut out = Vec::with_capacity(rows.len() * cols.len());
        for (r, row) in rows.iter().enumerate() {
            for &c in &cols {
                let cell = row[c].trim_matches('"');
                let x: f32 = cell.parse().map_err(|_| DataError::NotANumber {
                    path: path.clone(),
                    row: r + 1 + usize::from(header),
                    column: c,
                    text: cell.to_string(),
                })?;
                out.push(x);
            }
        }
        let shape = if cols.len() == 1 && matches!(v, Value::Int(_) | Value::Str(_)) { vec![rows.len()] } else { vec![rows.len(), cols.len()] };
        data.arrays.insert(name.clone(), Tensor::F(ArrayD::from_shape_vec(IxDyn(&shape), out).expect("count")));
    }
    Ok(Loaded { data, ..Loaded::default() })
}

/// Column selector → column indices: name, list of names, `a..b`, integer, glob.
fn select(v: &Value, names: &[String], path: &Path) -> Result<Vec<usize>, DataError> {
    let by_name = |n: &str| -> Result<Vec<usize>, DataError> {
        if n.contains('*') {
            let (pre, post) = n.split_once('*').unwrap_or((n, ""));
            let v: Vec<usize> = names.iter().enumerate().filter(|(_, c)| c.starts_with(pre) && c.ends_with(post)).map(|(i, _)| i).collect();
            if v.is_empty() {
                return Err(DataError::NoColumn { path: path.to_path_buf(), name: n.into(), suggestion: None });
            }
            return Ok(v);
        }
        names.iter().position(|c| c == n).map(|i| vec![i]).ok_or_else(|| DataError::NoColumn {
            path: path.to_path_buf(),
            name: n.into(),
            suggestion: nnc_compiler::layers::suggest(n, names.iter().map(String::as_str)).map(str::to_string),
        })
    };
    let check = |i: i64| -> Result<usize, DataError> {
        if i < 0 || i as usize >= names.len() {
            return Err(DataError::NoColumn { path: path.to_path_buf(), name: i.to_string(), suggestion: None });
        }
        Ok(i as usize)
    };
    match v {
        Value::Str(s) => by_name(s),
        Value::Int(d) => Ok(vec![check(d.as_known().unwrap_or(-1))?]),
        Value::Range(a, b) => {
            let (a, b) = (a.as_known().unwrap_or(0), b.as_known().unwrap_or(0));
            (a..b).map(check).collect()
        }
        Value::List(items) => {
            let mut out = Vec::new();
            for it in items {
                out.extend(select(it, names, path)?);
            }
            Ok(out)
        }
        other => Err(DataError::Option { source: path.display().to_string(), reason: format!("{} is not a column selector", other.kind_name()) }),
    }
}

/// `idx(images = "…", labels = "…")` and `npy(x = "…")`: one file per array.
fn files(call: &CallValue, base: &Path) -> Result<Loaded, DataError> {
    let mut data = Dataset::default();
    for (key, v) in &call.args {
        let (Some(name), Value::Str(rel)) = (key, v) else { continue };
        let path = base.join(rel);
        let bytes = read_bytes(&path)?;
        let t = if call.name == "idx" { parse_idx(&bytes, &path)? } else { parse_npy(&bytes, &path)? };
        data.arrays.insert(name.clone(), t);
    }
    Ok(Loaded { data, ..Loaded::default() })
}

fn parse_idx(b: &[u8], path: &Path) -> Result<Tensor<f32>, DataError> {
    let bad = |r: &str| DataError::Format { path: path.to_path_buf(), reason: format!("IDX: {r}") };
    if b.len() < 4 || b[0] != 0 || b[1] != 0 {
        return Err(bad("bad magic number"));
    }
    let (code, rank) = (b[2], b[3] as usize);
    let mut shape = Vec::with_capacity(rank);
    for i in 0..rank {
        let o = 4 + 4 * i;
        let d = b.get(o..o + 4).ok_or_else(|| bad("truncated header"))?;
        shape.push(u32::from_be_bytes(d.try_into().expect("4")) as usize);
    }
    let body = &b[4 + 4 * rank..];
    let n: usize = shape.iter().product();
    let size = match code {
        0x08 | 0x09 => 1,
        0x0B => 2,
        0x0C | 0x0D => 4,
        0x0E => 8,
        _ => return Err(bad("unknown element type")),
    };
    if body.len() < n * size {
        return Err(bad(&format!("{} bytes of data for {n} values", body.len())));
    }
    let vals: Vec<f32> = (0..n)
        .map(|i| {
            let c = &body[i * size..(i + 1) * size];
            match code {
                0x08 => c[0] as f32,
                0x09 => c[0] as i8 as f32,
                0x0B => i16::from_be_bytes([c[0], c[1]]) as f32,
                0x0C => i32::from_be_bytes(c.try_into().expect("4")) as f32,
                0x0D => f32::from_be_bytes(c.try_into().expect("4")),
                _ => f64::from_be_bytes(c.try_into().expect("8")) as f32,
            }
        })
        .collect();
    Ok(Tensor::F(ArrayD::from_shape_vec(IxDyn(&shape), vals).expect("count")))
}

/// Reads a `.npy` array (little-endian f4/f8/i8/i4/u1, C order).
pub fn parse_npy(b: &[u8], path: &Path) -> Result<Tensor<f32>, DataError> {
    let bad = |r: &str| DataError::Format { path: path.to_path_buf(), reason: format!("npy: {r}") };
    if b.len() < 10 || &b[..6] != b"\x93NUMPY" {
        return Err(bad("missing magic"));
    }
    let (hlen, start) = if b[6] == 1 {
        (u16::from_le_bytes([b[8], b[9]]) as usize, 10)
    } else {
        (u32::from_le_bytes(b.get(8..12).ok_or_else(|| bad("truncated"))?.try_into().expect("4")) as usize, 12)
    };
    let header = std::str::from_utf8(b.get(start..start + hlen).ok_or_else(|| bad("truncated header"))?).map_err(|_| bad("header"))?;
    let field = |k: &str| header.split(&format!("'{k}':")).nth(1).map(str::trim).unwrap_or("");
    let descr = field("descr").trim_start_matches('\'').split('\'').next().unwrap_or("");
    if field("fortran_order").starts_with("True") {
        return Err(bad("Fortran order is not supported"));
    }
    let shape_txt = field("shape");
    let inner = shape_txt.trim_start_matches('(').split(')').next().unwrap_or("");
    let shape: Vec<usize> = inner.split(',').filter(|s| !s.trim().is_empty()).map(|s| s.trim().parse().unwrap_or(0)).collect();
    let body = &b[start + hlen..];
    let n: usize = shape.iter().product();
    let (size, int): (usize, bool) = match descr {
        "<f4" => (4, false),
        "<f8" => (8, false),
        "<i8" => (8, true),
        "<i4" => (4, true),
        "|u1" | "<u1" => (1, true),
        other => return Err(bad(&format!("dtype {other} is not supported"))),
    };
    if body.len() < n * size {
        return Err(bad("truncated data"));
    }
    let f: Vec<f64> = (0..n)
        .map(|i| {
            let c = &body[i * size..(i + 1) * size];
            match descr {
                "<f4" => f32::from_le_bytes(c.try_into().expect("4")) as f64,
                "<f8" => f64::from_le_bytes(c.try_into().expect("8")),
                "<i8" => i64::from_le_bytes(c.try_into().expect("8")) as f64,
                "<i4" => i32::from_le_bytes(c.try_into().expect("4")) as f64,
                _ => c[0] as f64,
            }
        })
        .collect();
    Ok(if int {
        Tensor::I(ArrayD::from_shape_vec(IxDyn(&shape), f.into_iter().map(|v| v as i64).collect()).expect("count"))
    } else {
        Tensor::F(ArrayD::from_shape_vec(IxDyn(&shape), f.into_iter().map(|v| v as f32).collect()).expect("count"))
    })
}

/// Writes a `.npy` file of f32 values.
pub fn write_npy(path: &Path, a: &ArrayD<f32>) -> std::io::Result<()> {
    let shape: Vec<String> = a.shape().iter().map(|d| d.to_string()).collect();
    let shape_txt = if shape.len() == 1 { format!("({},)", shape[0]) } else { format!("({})", shape.join(", ")) };
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape_txt}, }}");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend((header.len() as u16).to_le_bytes());
    out.extend(header.as_bytes());
    for v in a.as_standard_layout().iter() {
        out.extend(v.to_le_bytes());
    }
    std::fs::write(path, out)
}

/// Character-level next-token pairs: `tokens, next: int[N, seq]`.
fn text(call: &CallValue, base: &Path, inputs: &[InputSpec]) -> Result<Loaded, DataError> {
    let rel = str_arg(call, 0).ok_or_else(|| DataError::Option { source: "text(…)".into(), reason: "needs a file name".into() })?;
    let mut s = read_text(&base.join(&rel))?;
    if !matches!(call.arg("lower"), Some(Value::Bool(false))) {
        s = s.to_lowercase();
    }
    let name_of = |k: &str, d: &str| match call.arg(k) {
        Some(Value::Mode(m) | Value::Str(m)) => m.clone(),
        _ => d.to_string(),
    };
    let (x, y) = (name_of("x", "tokens"), name_of("y", "next"));
    let seq = call.arg("seq").and_then(int_of).or_else(|| inputs.iter().find(|i| i.name == x).and_then(|i| i.shape.first().map(|&d| d as i64))).unwrap_or(35).max(1) as usize;
    let mut chars: Vec<char> = s.chars().collect::<std::collections::BTreeSet<_>>().into_iter().collect();
    if let Some(v) = call.arg("vocab").and_then(int_of) {
        // Keep the most frequent characters; the rest map to index 0.
        let mut counts: BTreeMap<char, usize> = BTreeMap::new();
        for c in s.chars() {
            *counts.entry(c).or_default() += 1;
        }
        let mut by_freq: Vec<(char, usize)> = counts.into_iter().collect();
        by_freq.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        chars = by_freq.into_iter().take((v as usize).saturating_sub(1)).map(|(c, _)| c).collect();
        chars.sort();
        chars.insert(0, '\u{0}');
    }
    let index: BTreeMap<char, i64> = chars.iter().enumerate().map(|(i, &c)| (c, i as i64)).collect();
    let ids: Vec<i64> = s.chars().map(|c| *index.get(&c).unwrap_or(&0)).collect();
    let windows = ids.len().saturating_sub(1) / seq;
    let mut xs = Vec::with_capacity(windows * seq);
    let mut ys = Vec::with_capacity(windows * seq);
    for w in 0..windows {
        xs.extend_from_slice(&ids[w * seq..(w + 1) * seq]);
        ys.extend_from_slice(&ids[w * seq + 1..(w + 1) * seq + 1]);
    }
    let mut data = Dataset::default();
    data.arrays.insert(x, Tensor::I(ArrayD::from_shape_vec(IxDyn(&[windows, seq]), xs).expect("count")));
    data.arrays.insert(y, Tensor::I(ArrayD::from_shape_vec(IxDyn(&[windows, seq]), ys).expect("count")));
    Ok(Loaded { data, dims: vec![("V".into(), chars.len() as i64)], normalize: Vec::new() })
}

/// Word-level sentences: lower-cased, split on non-letters; 0 padding,
/// 1 out-of-vocabulary, the V − 2 most frequent words from 2.
fn sentences(call: &CallValue, base: &Path, inputs: &[InputSpec]) -> Result<Loaded, DataError> {
    let rel = str_arg(call, 0).ok_or_else(|| DataError::Option { source: "sentences(…)".into(), reason: "needs a file name".into() })?;
    let path = base.join(&rel);
    let text = read_text(&path)?;
    let tokens_col = call.arg("tokens").and_then(int_of).unwrap_or(0).max(0) as usize;
    let vocab = call.arg("vocab").and_then(int_of).unwrap_or(10_000).max(3) as usize;
    let t_len = inputs.iter().find(|i| i.name == "tokens").and_then(|i| i.shape.first().copied()).unwrap_or(50);
    let pad_post = matches!(call.arg("pad"), Some(Value::Mode(m)) if m == "post");
    let mut rows: Vec<(Vec<String>, f32)> = Vec::new();
    for (r, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let cells: Vec<&str> = line.split('\t').collect();
        let words: Vec<String> = cells
            .get(tokens_col)
            .ok_or(DataError::Ragged { path: path.clone(), row: r + 1, expected: tokens_col + 1, found: cells.len() })?
            .to_lowercase()
            .split(|c: char| !c.is_alphabetic())
            .filter(|w| !w.is_empty())
            .map(str::to_string)
            .collect();
        let label = label_value(call.arg("label"), &cells, &path, r + 1)?;
        rows.push((words, label));
    }
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for (ws, _) in &rows {
        for w in ws {
            *counts.entry(w.as_str()).or_default() += 1;
        }
    }
    let mut by_freq: Vec<(&str, usize)> = counts.into_iter().collect();
    by_freq.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let index: BTreeMap<&str, i64> = by_freq.iter().take(vocab - 2).enumerate().map(|(i, (w, _))| (*w, i as i64 + 2)).collect();
    let mut toks = Vec::with_capacity(rows.len() * t_len);
    let mut labels = Vec::with_capacity(rows.len());
    for (ws, l) in &rows {
        let ids: Vec<i64> = ws.iter().map(|w| *index.get(w.as_str()).unwrap_or(&1)).collect();
        let ids: Vec<i64> = if ids.len() > t_len { ids[ids.len() - t_len..].to_vec() } else { ids };
        let pad = vec![0i64; t_len - ids.len()];
        if pad_post {
            toks.extend(&ids);
            toks.extend(&pad);
        } else {
            toks.extend(&pad);
            toks.extend(&ids);
        }
        labels.push(*l);
    }
    let mut data = Dataset::default();
    data.arrays.insert("tokens".into(), Tensor::I(ArrayD::from_shape_vec(IxDyn(&[rows.len(), t_len]), toks).expect("count")));
    data.arrays.insert("label".into(), Tensor::F(ArrayD::from_shape_vec(IxDyn(&[rows.len()]), labels).expect("count")));
    Ok(Loaded { data, dims: vec![("V".into(), vocab as i64)], normalize: Vec::new() })
}

/// `label = column(1) > 0` or `label = column(1)`.
fn label_value(v: Option<&Value>, cells: &[&str], path: &Path, row: usize) -> Result<f32, DataError> {
    let num = |call: &CallValue| -> Result<f64, DataError> {
        let c = call.positional(0).and_then(int_of).unwrap_or(1).max(0) as usize;
        let cell = cells.get(c).ok_or(DataError::Ragged { path: path.to_path_buf(), row, expected: c + 1, found: cells.len() })?;
        cell.trim().parse().map_err(|_| DataError::NotANumber { path: path.to_path_buf(), row, column: c, text: cell.to_string() })
    };
    Ok(match v {
        Some(Value::Call(c)) if c.name == "column" => num(c)? as f32,
        Some(Value::Call(c)) => {
            let (Some(Value::Call(col)), Some(rhs)) = (c.positional(0), c.positional(1).and_then(Value::as_f64)) else {
                return Err(DataError::Option { source: "sentences(…)".into(), reason: "label must be `column(k)` or `column(k) > v`".into() });
            };
            let x = num(col)?;
            f32::from(match c.name.as_str() {
                ">" => x > rhs,
                ">=" => x >= rhs,
                "<" => x < rhs,
                "<=" => x <= rhs,
                "==" => x == rhs,
                _ => x != rhs,
            })
        }
        Some(Value::Int(d)) => {
            let c = d.as_known().unwrap_or(1).max(0) as usize;
            let cell = cells.get(c).copied().unwrap_or("0");
            cell.trim().parse().map_err(|_| DataError::NotANumber { path: path.to_path_buf(), row, column: c, text: cell.to_string() })?
        }
        _ => num(&CallValue { name: "column".into(), args: vec![(None, Value::Int(Dim::Known(1)))] })? as f32,
    })
}

/// `synthetic(n = 1000)`: random data of every input's declared shape;
/// ints uniform in [0, classes) (default 2).
fn synthetic(call: &CallValue, inputs: &[InputSpec], seed: u64) -> Result<Loaded, DataError> {
    let n = call.arg("n").and_then(int_of).unwrap_or(1000).max(1) as usize;
    let classes = call.arg("classes").and_then(int_of).unwrap_or(2).max(1);
    let mut rng = SplitMix(seed ^ 0xDA7A);
    let mut data = Dataset::default();
    for spec in inputs {
        let mut shape = vec![n];
        shape.extend(&spec.shape);
        let count: usize = shape.iter().product();
        let t = if spec.int {
            Tensor::I(ArrayD::from_shape_vec(IxDyn(&shape), (0..count).map(|_| (rng.next_u64() % classes as u64) as i64).collect()).expect("count"))
        } else {
            Tensor::F(ArrayD::from_shape_vec(IxDyn(&shape), (0..count).map(|_| rng.normal() as f32).collect()).expect("count"))
        };
        data.arrays.insert(spec.name.clone(), t);
    }
    Ok(Loaded { data, ..Loaded::default() })
}

/// Per-array z-score statistics (population std; zero std → 1), computed on
/// the given rows.
pub fn zscore_stats(t: &Tensor<f32>, rows: &[usize]) -> (Vec<f32>, Vec<f32>) {
    let a = t.float();
    let per = a.len() / a.shape()[0].max(1);
    let flat = a.as_standard_layout().into_owned().into_shape_with_order((a.shape()[0], per)).expect("2-D view");
    let mut mean = vec![0f64; per];
    let mut var = vec![0f64; per];
    for &r in rows {
        for j in 0..per {
            mean[j] += flat[[r, j]] as f64;
        }
    }
    let n = rows.len().max(1) as f64;
    mean.iter_mut().for_each(|m| *m /= n);
    for &r in rows {
        for j in 0..per {
            let d = flat[[r, j]] as f64 - mean[j];
            var[j] += d * d;
        }
    }
    let std: Vec<f32> = var.iter().map(|v| (v / n).sqrt()).map(|s| if s > 0.0 { s as f32 } else { 1.0 }).collect();
    (mean.into_iter().map(|m| m as f32).collect(), std)
}

pub fn apply_zscore(t: &Tensor<f32>, mean: &[f32], std: &[f32]) -> Tensor<f32> {
    let a = t.float();
    let shape = a.shape().to_vec();
    let per = mean.len().max(1);
    let mut v: Vec<f32> = a.as_standard_layout().iter().copied().collect();
    for (i, x) in v.iter_mut().enumerate() {
        let j = i % per;
        *x = (*x - mean[j]) / std[j];
    }
    Tensor::F(ArrayD::from_shape_vec(IxDyn(&shape), v).expect("count"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::rc::Rc;

    fn root() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
    }

    fn call(name: &str, args: Vec<(Option<&str>, Value)>) -> CallValue {
        CallValue { name: name.into(), args: args.into_iter().map(|(k, v)| (k.map(str::to_string), v)).collect() }
    }

    fn int(v: i64) -> Value {
        Value::Int(Dim::Known(v))
    }

    #[test]
    fn digits_csv_reshapes_to_the_input() {
        let c = call("csv", vec![(None, Value::Str("data/digits.csv.gz".into())), (Some("pixels"), Value::Range(Dim::Known(0), Dim::Known(64))), (Some("label"), int(64))]);
        let inputs = vec![
            InputSpec { name: "pixels".into(), shape: vec![8, 8, 1], int: false },
            InputSpec { name: "label".into(), shape: vec![], int: true },
        ];
        let l = load(&c, &root(), &inputs, 0).unwrap();
        assert_eq!(l.data.len(), 1797);
        let Tensor::F(p) = &l.data.arrays["pixels"] else { panic!() };
        assert_eq!(p.shape(), &[1797, 8, 8, 1]);
        let Tensor::I(y) = &l.data.arrays["label"] else { panic!() };
        assert!(y.iter().all(|&v| (0..10).contains(&v)));
    }

    #[test]
    fn wrong_column_counts_name_both_numbers() {
        let c = call("csv", vec![(None, Value::Str("data/digits.csv.gz".into())), (Some("pixels"), Value::Range(Dim::Known(0), Dim::Known(63)))]);
        let inputs = vec![InputSpec { name: "pixels".into(), shape: vec![8, 8, 1], int: false }];
        let e = load(&c, &root(), &inputs, 0).unwrap_err();
        assert!(e.to_string().contains("63") && e.to_string().contains("64"), "{e}");
    }

    #[test]
    fn fish_columns_by_name_with_suggestion() {
        let c = call("csv", vec![(None, Value::Str("data/fish.csv".into())), (Some("x"), Value::List(vec![Value::Str("Height".into()), Value::Str("Width".into())]))]);
        let l = load(&c, &root(), &[], 0).unwrap();
        assert_eq!(l.data.len(), 158);
        let c = call("csv", vec![(None, Value::Str("data/fish.csv".into())), (Some("y"), Value::Str("Wieght".into()))]);
        let e = load(&c, &root(), &[], 0).unwrap_err();
        assert!(e.to_string().contains("Weight"), "{e}");
    }

    #[test]
    fn text_and_sentences() {
        let c = call("text", vec![(None, Value::Str("data/alice.txt".into())), (Some("seq"), int(35))]);
        let l = load(&c, &root(), &[], 0).unwrap();
        let Tensor::I(x) = &l.data.arrays["tokens"] else { panic!() };
        let Tensor::I(y) = &l.data.arrays["next"] else { panic!() };
        assert_eq!(x.shape()[1], 35);
        assert_eq!(x[[0, 1]], y[[0, 0]]);
        let label = Value::Call(Rc::new(CallValue {
            name: ">".into(),
            args: vec![(None, Value::Call(Rc::new(CallValue { name: "column".into(), args: vec![(None, int(1))] }))), (None, int(0))],
        }));
        let c = call("sentences", vec![(None, Value::Str("data/movie_reviews.tsv.gz".into())), (Some("tokens"), int(2)), (Some("label"), label), (Some("vocab"), int(5000))]);
        let inputs = vec![InputSpec { name: "tokens".into(), shape: vec![40], int: true }];
        let l = load(&c, &root(), &inputs, 0).unwrap();
        assert_eq!(l.data.len(), 10_605);
        let Tensor::F(lab) = &l.data.arrays["label"] else { panic!() };
        let pos = lab.iter().filter(|&&v| v == 1.0).count();
        assert_eq!(pos, 5242);
    }

    #[test]
    fn npy_round_trip_and_missing_files() {
        let dir = std::env::temp_dir().join(format!("nnc-npy-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let a = ArrayD::from_shape_vec(IxDyn(&[2, 3]), vec![1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0]).unwrap();
        write_npy(&dir.join("a.npy"), &a).unwrap();
        let back = parse_npy(&std::fs::read(dir.join("a.npy")).unwrap(), &dir).unwrap();
        assert_eq!(back.float(), a);
        let c = call("npy", vec![(Some("x"), Value::Str("missing.npy".into()))]);
        assert!(matches!(load(&c, &dir, &[], 0), Err(DataError::Read { .. })));
        let _ = std::fs::remove_dir_all(dir);
    }
}
