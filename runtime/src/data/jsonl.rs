//! `jsonl(…)`: JSON Lines, one object per line. Arrays select values by key, as `csv` selects columns by header
//! name: `x = ["a", "b"]`, `y = "label"`, `x = "pixel*"`, `y = column("score") > 0.5`. A key may hold a number,
//! a boolean (0/1) or a list of them (nested lists are flattened), so one key can fill a whole input; every
//! record must give a key the same number of values as the first record did.
//!
//! JSON objects are unordered, so a glob picks the first record's matching keys in natural order (`p2` before
//! `p10`), the same whatever order a line writes them in. Every error names the file and the line.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::path::Path;

use ndarray::{ArrayD, IxDyn};
use serde_json::{Map, Value as Json};

use super::csv::{glob_match, read_text};
use super::source::{Column, JsonlSpec, LabelExpr, Loaded, Selector};
use super::{Array, DataError};

/// What one array reads from each record: keys whose values are concatenated, or a label of one key.
enum Plan {
    Keys(Vec<String>),
    Label(String, LabelExpr),
}

pub(super) fn load(spec: &JsonlSpec, base: &Path) -> Result<Loaded, DataError> {
    let path = base.join(&spec.path);
    if spec.arrays.is_empty() {
        return Err(DataError::Spec {
            source: format!("jsonl(\"{}\")", spec.path.display()),
            reason: "names no arrays (write x = [\"a\", \"b\"], y = \"label\")".into(),
        });
    }
    let text = read_text(&path)?;
    let syntax = |line: usize, reason: String| DataError::Syntax { path: path.clone(), line, reason };
    let mut records = text.lines().enumerate().map(|(i, l)| (i + 1, l)).filter(|(_, l)| !l.trim().is_empty());
    let Some((first_no, first_line)) = records.next() else {
        return Err(DataError::Empty { path, what: "the file has no records".into() });
    };
    // The first record decides the keys a glob picks and each key's number of values.
    let first = record(first_line).map_err(|r| syntax(first_no, r))?;
    let mut plans = Vec::with_capacity(spec.arrays.len());
    for (_, sel) in &spec.arrays {
        plans.push(match sel {
            Selector::Label(l) => Plan::Label(key_of(&l.column, &path)?, l.clone()),
            s => Plan::Keys(resolve(s, &first, &path)?),
        });
    }
    let mut widths: HashMap<String, usize> = HashMap::new();
    let mut bufs: Vec<Vec<f32>> = plans.iter().map(|_| Vec::new()).collect();
    let mut rows = 0usize;
    for (no, line) in std::iter::once((first_no, first_line)).chain(records) {
        let rec = &record(line).map_err(|r| syntax(no, r))?;
        for (plan, buf) in plans.iter().zip(bufs.iter_mut()) {
            match plan {
                Plan::Keys(keys) => {
                    for k in keys {
                        let v = field(rec, k).map_err(|r| syntax(no, r))?;
                        let before = buf.len();
                        flatten(v, buf).map_err(|r| syntax(no, format!("`{k}` {r}")))?;
                        let n = buf.len() - before;
                        match widths.get(k) {
                            Some(&w) if w != n => {
                                return Err(syntax(
                                    no,
                                    format!(
                                        "`{k}` has {n} values; line {first_no} gave it {w} (every record the same)"
                                    ),
                                ));
                            }
                            Some(_) => {}
                            None => {
                                widths.insert(k.clone(), n);
                            }
                        }
                    }
                }
                Plan::Label(k, expr) => {
                    let x = scalar(field(rec, k).map_err(|r| syntax(no, r))?)
                        .map_err(|r| syntax(no, format!("`{k}` {r}")))?;
                    buf.push(expr.eval(x));
                }
            }
        }
        rows += 1;
    }
    let mut loaded = Loaded::default();
    for ((name, sel), buf) in spec.arrays.iter().zip(bufs) {
        let width = buf.len() / rows;
        let shape = if sel.is_single() && width == 1 { vec![rows] } else { vec![rows, width] };
        let a = ArrayD::from_shape_vec(IxDyn(&shape), buf).expect("every record gives an array the same count");
        loaded.origins.insert(name.clone(), format!("{}: {}", path.display(), describe(sel)));
        loaded.dataset.arrays.insert(name.clone(), Array::F32(a));
    }
    Ok(loaded)
}

/// One line as a JSON object.
fn record(line: &str) -> Result<Map<String, Json>, String> {
    match serde_json::from_str::<Json>(line) {
        Ok(Json::Object(m)) => Ok(m),
        Ok(other) => Err(format!("a record must be a JSON object {{…}}, found {}", kind(&other))),
        Err(e) => Err(format!("not valid JSON: {e}")),
    }
}

fn field<'a>(rec: &'a Map<String, Json>, k: &str) -> Result<&'a Json, String> {
    rec.get(k).ok_or_else(|| match super::suggest(k, rec.keys().map(String::as_str)) {
        Some(s) => format!("the record has no key `{k}` (did you mean `{s}`?)"),
        None => format!("the record has no key `{k}`"),
    })
}

/// Appends a value's numbers: a number, a boolean (0 or 1), or a list of them, nested lists flattened.
fn flatten(v: &Json, out: &mut Vec<f32>) -> Result<(), String> {
    match v {
        Json::Array(items) => items.iter().try_for_each(|i| flatten(i, out)),
        _ => {
            out.push(scalar(v)? as f32);
            Ok(())
        }
    }
}

/// A number (finite in f32, as the data layer stores it) or a boolean.
fn scalar(v: &Json) -> Result<f64, String> {
    match v {
        Json::Bool(b) => Ok(f64::from(u8::from(*b))),
        Json::Number(n) => match n.as_f64() {
            Some(x) if (x as f32).is_finite() => Ok(x),
            _ => Err(format!("holds {n}, which is not a finite 32-bit number")),
        },
        other => Err(format!("holds {}, where a number, a boolean or a list of numbers is needed", kind(other))),
    }
}

/// "a string (\"abc…\")" for messages; long text is cut, never quoted whole.
fn kind(v: &Json) -> String {
    match v {
        Json::Null => "null".into(),
        Json::Bool(_) => "a boolean".into(),
        Json::Number(_) => "a number".into(),
        Json::String(s) => {
            let short: String = s.chars().take(24).collect();
            let more = if s.chars().count() > 24 { "…" } else { "" };
            format!("a string (\"{short}{more}\")")
        }
        Json::Array(_) => "a list".into(),
        Json::Object(_) => "an object".into(),
    }
}

/// The key a label expression reads; records have no positions.
fn key_of(c: &Column, path: &Path) -> Result<String, DataError> {
    match c {
        Column::Name(n) => Ok(n.clone()),
        Column::Index(i) => Err(by_position(path, format!("column({i})"))),
    }
}

/// The keys a selector picks, checked against the first record.
fn resolve(s: &Selector, first: &Map<String, Json>, path: &Path) -> Result<Vec<String>, DataError> {
    let empty = || DataError::EmptySelection { path: path.to_path_buf(), selector: describe(s) };
    match s {
        Selector::Name(n) if first.contains_key(n) => Ok(vec![n.clone()]),
        Selector::Name(n) => Err(DataError::NoColumn {
            path: path.to_path_buf(),
            column: n.clone(),
            suggestion: super::suggest(n, first.keys().map(String::as_str)),
        }),
        Selector::Glob(g) => {
            let mut keys: Vec<String> = first.keys().filter(|k| glob_match(g, k)).cloned().collect();
            keys.sort_by(|a, b| natural(a, b));
            if keys.is_empty() { Err(empty()) } else { Ok(keys) }
        }
        Selector::List(items) => {
            let mut out = Vec::new();
            for it in items {
                out.extend(resolve(it, first, path)?);
            }
            if out.is_empty() { Err(empty()) } else { Ok(out) }
        }
        Selector::Label(l) => Ok(vec![key_of(&l.column, path)?]),
        // `spec_of` refuses positions before the file is read; a spec built by hand gets the same words.
        Selector::Index(_) | Selector::Range(..) => Err(by_position(path, s.to_string())),
    }
}

fn by_position(path: &Path, what: String) -> DataError {
    DataError::Spec {
        source: format!("jsonl(\"{}\")", path.display()),
        reason: format!("{what} selects by position; a JSON Lines record selects by key"),
    }
}

/// "keys [`a`, `b`]" for messages and origins (a CSV selector says "columns").
fn describe(s: &Selector) -> String {
    s.to_string().replacen("columns", "keys", 1).replacen("column", "key", 1)
}

/// Natural order: runs of digits compare as numbers (`p2` < `p10`), the rest by characters.
fn natural(a: &str, b: &str) -> Ordering {
    let (mut x, mut y) = (a, b);
    loop {
        match (x.chars().next(), y.chars().next()) {
            (None, None) => return a.cmp(b),
            (None, _) => return Ordering::Less,
            (_, None) => return Ordering::Greater,
            (Some(c), Some(d)) if c.is_ascii_digit() && d.is_ascii_digit() => {
                let dx = x.find(|c: char| !c.is_ascii_digit()).unwrap_or(x.len());
                let dy = y.find(|c: char| !c.is_ascii_digit()).unwrap_or(y.len());
                let (nx, ny) = (x[..dx].trim_start_matches('0'), y[..dy].trim_start_matches('0'));
                let by_value = nx.len().cmp(&ny.len()).then_with(|| nx.cmp(ny));
                if by_value != Ordering::Equal {
                    return by_value;
                }
                (x, y) = (&x[dx..], &y[dy..]);
            }
            (Some(c), Some(d)) if c != d => return c.cmp(&d),
            (Some(c), Some(_)) => {
                (x, y) = (&x[c.len_utf8()..], &y[c.len_utf8()..]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::source::{Cmp, SourceSpec, load as load_source};
    use super::*;
    use crate::io::testutil::TempDir;

    fn load_text(text: &str, arrays: Vec<(&str, Selector)>) -> Result<Loaded, DataError> {
        let dir = TempDir::new("jsonl");
        std::fs::write(dir.path().join("d.jsonl"), text).unwrap();
        let arrays = arrays.into_iter().map(|(n, s)| (n.to_string(), s)).collect();
        load_source(&SourceSpec::Jsonl(JsonlSpec { path: "d.jsonl".into(), arrays }), dir.path())
    }

    fn name(k: &str) -> Selector {
        Selector::Name(k.into())
    }

    fn err(text: &str, arrays: Vec<(&str, Selector)>) -> String {
        load_text(text, arrays).unwrap_err().to_string()
    }

    #[test]
    fn keys_lists_globs_and_labels() {
        let text = "{\"p10\": 3, \"p2\": 2, \"v\": [1, [2, 3]], \"y\": true, \"s\": 0.7}\n\n\
                    {\"y\": false, \"v\": [4, [5, 6]], \"p2\": 8, \"p10\": 9, \"s\": 0.2}\n";
        let l = load_text(
            text,
            vec![
                ("v", name("v")),
                ("g", Selector::Glob("p*".into())),
                ("both", Selector::List(vec![name("y"), name("p2")])),
                ("hi", Selector::Label(LabelExpr::compare(Column::Name("s".into()), Cmp::Gt, 0.5))),
            ],
        )
        .unwrap();
        let a = |n: &str| match &l.dataset.arrays[n] {
            Array::F32(a) => (a.shape().to_vec(), a.iter().copied().collect::<Vec<f32>>()),
            other => panic!("{other:?}"),
        };
        assert_eq!(a("v"), (vec![2, 3], vec![1., 2., 3., 4., 5., 6.]));
        // Natural order: p2 before p10, whatever the line's order.
        assert_eq!(a("g"), (vec![2, 2], vec![2., 3., 8., 9.]));
        assert_eq!(a("both"), (vec![2, 2], vec![1., 2., 0., 8.]));
        assert_eq!(a("hi"), (vec![2], vec![1., 0.]));
    }

    #[test]
    fn errors_name_the_line_and_the_key() {
        let e = err("{\"x\": 1}\n{\"x\": 2,}\n", vec![("x", name("x"))]);
        assert!(e.contains("line 2") && e.contains("not valid JSON"), "{e}");
        let e = err("{\"x\": 1}\n[1, 2]\n", vec![("x", name("x"))]);
        assert!(e.contains("line 2") && e.contains("must be a JSON object"), "{e}");
        let e = err("{\"x\": 1}\n{\"x\": \"seven\"}\n", vec![("x", name("x"))]);
        assert!(e.contains("line 2") && e.contains("`x` holds a string (\"seven\")"), "{e}");
        let e = err("{\"x\": [1, 2]}\n{\"x\": [1]}\n", vec![("x", name("x"))]);
        assert!(e.contains("line 2") && e.contains("`x` has 1 values; line 1 gave it 2"), "{e}");
        let e = err("{\"x\": 1}\n{\"xx\": 1}\n", vec![("x", name("x"))]);
        assert!(e.contains("line 2") && e.contains("no key `x`"), "{e}");
        let e = err("{\"x\": 1e39}\n", vec![("x", name("x"))]);
        assert!(e.contains("line 1") && e.contains("not a finite 32-bit number"), "{e}");
        let e = err("{\"xs\": 1}\n", vec![("x", name("x"))]);
        assert!(e.contains("`x`") && e.contains("xs"), "{e}");
        assert!(err("\n\n", vec![("x", name("x"))]).contains("no records"));
        assert!(err("{\"x\": 1}\n", vec![("x", Selector::Range(0, 2))]).contains("selects by position"));
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        let deep = format!("{{\"x\": {}1{}}}\n", "[".repeat(100_000), "]".repeat(100_000));
        let e = err(&deep, vec![("x", name("x"))]);
        assert!(e.contains("line 1") && e.contains("not valid JSON"), "{e}");
    }

    #[test]
    fn natural_order() {
        let mut v = vec!["p10", "p2", "p1", "q", "p02x", "p"];
        v.sort_by(|a, b| natural(a, b));
        assert_eq!(v, ["p", "p1", "p2", "p02x", "p10", "q"]);
    }
}
