//! `csv(…)`: tables of numbers, comma-, semicolon- or tab-separated.
//!
//! One pass over the lines: each line is split, the row's width checked
//! against the first row, and only the selected cells parsed, straight into
//! each array's buffer (a 5,000 × 785 MNIST table never exists as strings).

use std::borrow::Cow;
use std::path::Path;

use ndarray::{ArrayD, IxDyn};

use super::source::{Column, CsvSpec, Header, LabelExpr, Loaded, Selector};
use super::{Array, DataError};

/// Reads a text file (gzip allowed), reporting the first non-UTF-8 line.
pub(crate) fn read_text(path: &Path) -> Result<String, DataError> {
    let bytes = crate::io::read_file(path)?;
    match String::from_utf8(bytes) {
        Ok(mut s) => {
            // A byte-order mark is not part of the first cell.
            if s.starts_with('\u{feff}') {
                s.drain(..3);
            }
            Ok(s)
        }
        Err(e) => {
            let at = e.utf8_error().valid_up_to();
            let line = e.as_bytes()[..at].iter().filter(|&&b| b == b'\n').count() + 1;
            Err(DataError::NotUtf8 { path: path.to_path_buf(), line })
        }
    }
}

/// The delimiter: tab for `.tsv`/`.tab` (also gzipped), else whichever of
/// tab, comma, semicolon the first line has most of (comma when none).
pub(super) fn detect_delimiter(path: &Path, first_line: &str) -> char {
    let name = path.file_name().map(|n| n.to_string_lossy().to_lowercase()).unwrap_or_default();
    let name = name.strip_suffix(".gz").unwrap_or(&name);
    if name.ends_with(".tsv") || name.ends_with(".tab") {
        return '\t';
    }
    let count = |c: char| first_line.matches(c).count();
    let (tabs, commas, semis) = (count('\t'), count(','), count(';'));
    if tabs > commas && tabs >= semis {
        '\t'
    } else if semis > commas {
        ';'
    } else {
        ','
    }
}

/// Splits one line into cells. With a comma or semicolon, RFC 4180 quoting
/// applies (`"a, b"`, `""` for a quote); tab-separated files have no
/// quoting convention, so a quote there is an ordinary character (review
/// sentences are full of them).
pub(super) fn split_line<'a>(line: &'a str, delim: char, out: &mut Vec<Cow<'a, str>>) -> Result<(), String> {
    out.clear();
    if delim == '\t' || !line.contains('"') {
        out.extend(line.split(delim).map(Cow::Borrowed));
        return Ok(());
    }
    let mut rest = line;
    loop {
        let trimmed = rest.trim_start_matches(' ');
        if let Some(q) = trimmed.strip_prefix('"') {
            let mut cell = String::new();
            let mut chars = q.char_indices();
            let after = loop {
                match chars.next() {
                    Some((i, '"')) => {
                        if q[i + 1..].starts_with('"') {
                            cell.push('"');
                            chars.next();
                        } else {
                            break &q[i + 1..];
                        }
                    }
                    Some((_, c)) => cell.push(c),
                    None => return Err("unterminated quoted cell (cells spanning lines are not supported)".into()),
                }
            };
            out.push(Cow::Owned(cell));
            let after = after.trim_start_matches(' ');
            match after.chars().next() {
                None => return Ok(()),
                Some(c) if c == delim => rest = &after[c.len_utf8()..],
                Some(_) => return Err("text after a closing quote".into()),
            }
        } else {
            match rest.find(delim) {
                Some(i) => {
                    out.push(Cow::Borrowed(&rest[..i]));
                    rest = &rest[i + delim.len_utf8()..];
                }
                None => {
                    out.push(Cow::Borrowed(rest));
                    return Ok(());
                }
            }
        }
    }
}

/// `*` matches any run of characters, `?` one.
pub(super) fn glob_match(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    // Iterative matcher with backtracking to the last `*`.
    let (mut i, mut j, mut star, mut mark) = (0, 0, None, 0);
    while j < n.len() {
        if i < p.len() && (p[i] == '?' || p[i] == n[j]) {
            i += 1;
            j += 1;
        } else if i < p.len() && p[i] == '*' {
            star = Some(i);
            mark = j;
            i += 1;
        } else if let Some(s) = star {
            i = s + 1;
            mark += 1;
            j = mark;
        } else {
            return false;
        }
    }
    p[i..].iter().all(|&c| c == '*')
}

/// The header names (when there is a header) and the number of columns.
pub(super) struct Columns<'a> {
    pub path: &'a Path,
    pub names: Option<Vec<String>>,
    pub count: usize,
}

impl Columns<'_> {
    /// "column 3 (`Weight`)" for messages.
    pub fn label(&self, i: usize) -> String {
        match self.names.as_ref().and_then(|n| n.get(i)) {
            Some(name) => format!("column {i} (`{name}`)"),
            None => format!("column {i}"),
        }
    }

    pub fn resolve_column(&self, c: &Column) -> Result<usize, DataError> {
        match c {
            Column::Index(i) if *i < self.count => Ok(*i),
            Column::Index(i) => {
                Err(DataError::ColumnOutOfRange { path: self.path.to_path_buf(), index: *i, columns: self.count })
            }
            Column::Name(n) => self.by_name(n),
        }
    }

    fn by_name(&self, n: &str) -> Result<usize, DataError> {
        let Some(names) = &self.names else {
            return Err(DataError::NoHeader {
                path: self.path.to_path_buf(),
                column: n.to_string(),
                columns: self.count,
            });
        };
        names.iter().position(|c| c == n).ok_or_else(|| DataError::NoColumn {
            path: self.path.to_path_buf(),
            column: n.to_string(),
            suggestion: super::suggest(n, names.iter().map(String::as_str)),
        })
    }

    /// The column indices a selector picks.
    pub fn resolve(&self, s: &Selector) -> Result<Vec<usize>, DataError> {
        let empty = || DataError::EmptySelection { path: self.path.to_path_buf(), selector: s.to_string() };
        match s {
            Selector::Name(n) => Ok(vec![self.by_name(n)?]),
            Selector::Index(i) => Ok(vec![self.resolve_column(&Column::Index(*i))?]),
            Selector::Range(a, b) => {
                if a >= b {
                    return Err(empty());
                }
                if *b > self.count {
                    return Err(DataError::ColumnOutOfRange {
                        path: self.path.to_path_buf(),
                        index: b - 1,
                        columns: self.count,
                    });
                }
                Ok((*a..*b).collect())
            }
            Selector::Glob(g) => {
                let Some(names) = &self.names else {
                    return Err(DataError::NoHeader {
                        path: self.path.to_path_buf(),
                        column: g.clone(),
                        columns: self.count,
                    });
                };
                let v: Vec<usize> =
                    names.iter().enumerate().filter(|(_, n)| glob_match(g, n)).map(|(i, _)| i).collect();
                if v.is_empty() { Err(empty()) } else { Ok(v) }
            }
            Selector::List(items) => {
                let mut out = Vec::new();
                for it in items {
                    out.extend(self.resolve(it)?);
                }
                if out.is_empty() { Err(empty()) } else { Ok(out) }
            }
            Selector::Label(l) => Ok(vec![self.resolve_column(&l.column)?]),
        }
    }
}

/// Parses a cell as a finite number.
pub(super) fn number<T: std::str::FromStr + Into<f64> + Copy>(
    cell: &str,
    path: &Path,
    line: usize,
    column: impl FnOnce() -> String,
) -> Result<T, DataError> {
    match cell.trim().parse::<T>() {
        Ok(v) if v.into().is_finite() => Ok(v),
        _ => Err(DataError::NotANumber { path: path.to_path_buf(), line, column: column(), text: cell.to_string() }),
    }
}

enum Plan {
    Cols(Vec<usize>),
    Label(usize, LabelExpr),
}

pub(super) fn load(spec: &CsvSpec, base: &Path) -> Result<Loaded, DataError> {
    let path = base.join(&spec.path);
    let text = read_text(&path)?;
    let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l)).filter(|(_, l)| !l.trim().is_empty());
    let Some((first_no, first_line)) = lines.next() else {
        return Err(DataError::Empty { path, what: "the file is empty".into() });
    };
    let delim = spec.delimiter.unwrap_or_else(|| detect_delimiter(&path, first_line));
    let mut cells = Vec::new();
    split_line(first_line, delim, &mut cells).map_err(|reason| DataError::Syntax {
        path: path.clone(),
        line: first_no,
        reason,
    })?;
    let header = match spec.header {
        Header::Present => true,
        Header::Absent => false,
        Header::Auto => cells.iter().any(|c| !c.trim().is_empty() && c.trim().parse::<f64>().is_err()),
    };
    let cols = Columns {
        path: &path,
        names: header.then(|| cells.iter().map(|c| c.trim().to_string()).collect()),
        count: cells.len(),
    };
    if spec.arrays.is_empty() {
        return Err(DataError::Spec {
            source: format!("csv(\"{}\")", spec.path.display()),
            reason: "names no arrays (write x = 0..4, y = \"label\")".into(),
        });
    }
    let mut plans = Vec::with_capacity(spec.arrays.len());
    for (_, sel) in &spec.arrays {
        plans.push(match sel {
            Selector::Label(l) => Plan::Label(cols.resolve_column(&l.column)?, l.clone()),
            s => Plan::Cols(cols.resolve(s)?),
        });
    }
    let rows_hint = text.len() / first_line.len().max(1);
    let mut bufs: Vec<Vec<f32>> =
        plans.iter().map(|p| Vec::with_capacity(rows_hint * if let Plan::Cols(c) = p { c.len() } else { 1 })).collect();
    let mut rows = 0usize;
    let data_lines = if header { None } else { Some((first_no, first_line)) }.into_iter().chain(lines);
    for (no, line) in data_lines {
        split_line(line, delim, &mut cells).map_err(|reason| DataError::Syntax {
            path: path.clone(),
            line: no,
            reason,
        })?;
        if cells.len() != cols.count {
            return Err(DataError::Ragged {
                path: path.clone(),
                line: no,
                found: cells.len(),
                expected: cols.count,
                at_least: false,
            });
        }
        for (plan, buf) in plans.iter().zip(bufs.iter_mut()) {
            match plan {
                Plan::Cols(c) => {
                    for &i in c {
                        buf.push(number::<f32>(&cells[i], &path, no, || cols.label(i))?);
                    }
                }
                Plan::Label(i, expr) => buf.push(expr.eval(number::<f64>(&cells[*i], &path, no, || cols.label(*i))?)),
            }
        }
        rows += 1;
    }
    if rows == 0 {
        return Err(DataError::Empty { path, what: "the table has a header but no data rows".into() });
    }
    let mut loaded = Loaded::default();
    for (((name, sel), plan), buf) in spec.arrays.iter().zip(&plans).zip(bufs) {
        let shape = match plan {
            Plan::Cols(c) if !sel.is_single() => vec![rows, c.len()],
            _ => vec![rows],
        };
        let a = ArrayD::from_shape_vec(IxDyn(&shape), buf).expect("one value per selected cell");
        loaded.origins.insert(name.clone(), format!("{}: {sel}", path.display()));
        loaded.dataset.arrays.insert(name.clone(), Array::F32(a));
    }
    Ok(loaded)
}

#[cfg(test)]
mod tests {
    use super::super::source::{Cmp, SourceSpec, load as load_source};
    use super::super::testutil::root;
    use super::*;
    use crate::io::testutil::TempDir;

    fn csv(path: &str) -> CsvSpec {
        CsvSpec::new(path)
    }

    fn load_ok(spec: CsvSpec, base: &Path) -> Loaded {
        load_source(&SourceSpec::Csv(spec), base).unwrap_or_else(|e| panic!("{e}"))
    }

    fn load_err(spec: CsvSpec, base: &Path) -> DataError {
        load_source(&SourceSpec::Csv(spec), base).unwrap_err()
    }

    #[test]
    fn splitting_and_quoting() {
        let mut v = Vec::new();
        split_line("1,2,,3", ',', &mut v).unwrap();
        assert_eq!(v, ["1", "2", "", "3"]);
        split_line(r#""a, b",2, "say ""hi""" ,x"#, ',', &mut v).unwrap();
        assert_eq!(v, ["a, b", "2", "say \"hi\"", "x"]);
        split_line("a\t\"b\tc", '\t', &mut v).unwrap();
        assert_eq!(v, ["a", "\"b", "c"]);
        assert!(split_line("\"open,1", ',', &mut v).is_err());
        assert!(split_line("\"a\"b,1", ',', &mut v).is_err());
        split_line("1;2", ';', &mut v).unwrap();
        assert_eq!(v, ["1", "2"]);
    }

    #[test]
    fn globs() {
        assert!(glob_match("pixel*", "pixel0"));
        assert!(glob_match("pixel*", "pixel"));
        assert!(!glob_match("pixel*", "label"));
        assert!(glob_match("*th*", "Length1"));
        assert!(glob_match("Length?", "Length3"));
        assert!(!glob_match("Length?", "Length"));
        assert!(glob_match("*", ""));
        assert!(glob_match("a*b*c", "aXXbYYc"));
        assert!(!glob_match("a*b*c", "aXXbYY"));
    }

    #[test]
    fn delimiters() {
        assert_eq!(detect_delimiter(Path::new("x.tsv.gz"), "a,b"), '\t');
        assert_eq!(detect_delimiter(Path::new("x.csv"), "a\tb\tc"), '\t');
        assert_eq!(detect_delimiter(Path::new("x.csv"), "a;b;c"), ';');
        assert_eq!(detect_delimiter(Path::new("x.csv"), "a,b;c"), ',');
        assert_eq!(detect_delimiter(Path::new("x.txt"), "abc"), ',');
    }

    #[test]
    fn digits_by_range_and_index() {
        let l = load_ok(
            csv("data/digits.csv.gz").array("pixels", Selector::Range(0, 64)).array("label", Selector::Index(64)),
            &root(),
        );
        assert_eq!(l.dataset.len(), 1797);
        let Some(Array::F32(p)) = l.dataset.get("pixels") else { panic!() };
        assert_eq!(p.shape(), &[1797, 64]);
        // The first row of the file: 0,0,5,13,9,1,0,0,…
        assert_eq!(&p.as_slice().unwrap()[..6], &[0.0, 0.0, 5.0, 13.0, 9.0, 1.0]);
        assert!(p.iter().all(|&v| (0.0..=16.0).contains(&v)));
        let Some(Array::F32(y)) = l.dataset.get("label") else { panic!() };
        assert_eq!(y.shape(), &[1797]);
        let mut counts = [0usize; 10];
        y.iter().for_each(|&v| counts[v as usize] += 1);
        assert_eq!(counts.iter().sum::<usize>(), 1797);
        assert!(counts.iter().all(|&c| (170..=190).contains(&c)), "{counts:?}");
        assert_eq!(l.origins["pixels"], format!("{}: columns 0..64", root().join("data/digits.csv.gz").display()));
    }

    #[test]
    fn mnist_5k() {
        let l = load_ok(
            csv("data/mnist_5k.csv.gz").array("images", Selector::Range(0, 784)).array("labels", Selector::Index(784)),
            &root(),
        );
        assert_eq!(l.dataset.len(), 5000);
        let Some(Array::F32(x)) = l.dataset.get("images") else { panic!() };
        assert_eq!(x.shape(), &[5000, 784]);
        assert_eq!(x.iter().fold(0f32, |m, &v| m.max(v)), 255.0);
        let Some(Array::F32(y)) = l.dataset.get("labels") else { panic!() };
        for k in 0..10 {
            assert_eq!(y.iter().filter(|&&v| v == k as f32).count(), 500, "class {k}");
        }
    }

    #[test]
    fn fish_by_names_glob_and_label() {
        let spec = csv("data/fish.csv")
            .array("x", Selector::List(vec![Selector::Name("Height".into()), Selector::Name("Width".into())]))
            .array("y", Selector::Name("Weight".into()))
            .array("lengths", Selector::Glob("Length*".into()))
            .array("heavy", Selector::Label(LabelExpr::compare(Column::Name("Weight".into()), Cmp::Gt, 500.0)));
        let l = load_ok(spec, &root());
        assert_eq!(l.dataset.len(), 158);
        let Some(Array::F32(x)) = l.dataset.get("x") else { panic!() };
        assert_eq!(x.shape(), &[158, 2]);
        // First data row: Bream,242.0,23.2,25.4,30.0,11.52,4.02
        assert_eq!(x.index_axis(ndarray::Axis(0), 0).iter().copied().collect::<Vec<_>>(), vec![11.52, 4.02]);
        assert_eq!(l.dataset.get("y").unwrap().shape(), &[158]);
        assert_eq!(l.dataset.get("lengths").unwrap().shape(), &[158, 3]);
        let Some(Array::F32(h)) = l.dataset.get("heavy") else { panic!() };
        let Some(Array::F32(w)) = l.dataset.get("y") else { panic!() };
        assert!(h.iter().zip(w.iter()).all(|(&h, &w)| h == f32::from(u8::from(w > 500.0))));
        assert!(h.iter().any(|&v| v == 1.0) && h.iter().any(|&v| v == 0.0));
        // Numeric columns of a table with a text column load fine; the text one is an error naming the cell.
        let e = load_err(csv("data/fish.csv").array("s", Selector::Name("Species".into())), &root());
        assert!(matches!(e, DataError::NotANumber { line: 2, .. }), "{e}");
        assert!(
            e.to_string().ends_with("fish.csv: line 2, column 0 (`Species`): `Bream` is not a finite number"),
            "{e}"
        );
    }

    #[test]
    fn selector_errors() {
        let r = root();
        let e = load_err(csv("data/fish.csv").array("y", Selector::Name("Wieght".into())), &r);
        assert!(e.to_string().contains("no column `Wieght` (did you mean `Weight`?)"), "{e}");
        let e = load_err(csv("data/fish.csv").array("y", Selector::Name("height".into())), &r);
        assert!(e.to_string().contains("did you mean `Height`"), "{e}");
        let e = load_err(csv("data/fish.csv").array("y", Selector::Index(7)), &r);
        assert!(e.to_string().contains("column 7 does not exist: the file has 7 columns (0..7)"), "{e}");
        let e = load_err(csv("data/digits.csv.gz").array("x", Selector::Range(60, 70)), &r);
        assert!(e.to_string().contains("column 69 does not exist: the file has 65 columns"), "{e}");
        let e = load_err(csv("data/digits.csv.gz").array("x", Selector::Range(5, 5)), &r);
        assert!(e.to_string().contains("columns 5..5 selects no column"), "{e}");
        let e = load_err(csv("data/fish.csv").array("x", Selector::Glob("pixel*".into())), &r);
        assert!(e.to_string().contains("columns \"pixel*\" selects no column"), "{e}");
        let e = load_err(csv("data/digits.csv.gz").array("x", Selector::Name("label".into())), &r);
        assert!(matches!(e, DataError::NoHeader { columns: 65, .. }), "{e}");
        assert!(e.to_string().contains("no header row"), "{e}");
        let e = load_err(csv("data/nope.csv").array("x", Selector::Index(0)), &r);
        assert!(e.to_string().contains("nope.csv: cannot read"), "{e}");
        let e = load_err(csv("data/fish.csv"), &r);
        assert!(matches!(e, DataError::Spec { .. }), "{e}");
    }

    #[test]
    fn bad_tables() {
        let dir = TempDir::new("csv");
        let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
        write("ragged.csv", "a,b,c\n1,2,3\n4,5\n");
        let e = load_err(csv("ragged.csv").array("x", Selector::Index(0)), dir.path());
        assert!(matches!(e, DataError::Ragged { line: 3, found: 2, expected: 3, .. }), "{e}");
        assert!(e.to_string().ends_with("ragged.csv: line 3 has 2 columns, expected 3"), "{e}");
        write("nan.csv", "1,2\n3,\n");
        let e = load_err(csv("nan.csv").array("x", Selector::Range(0, 2)), dir.path());
        assert!(e.to_string().ends_with("nan.csv: line 2, column 1: empty cell where a number is needed"), "{e}");
        write("inf.csv", "1,2\n3,inf\n");
        assert!(
            load_err(csv("inf.csv").array("x", Selector::Index(1)), dir.path())
                .to_string()
                .contains("`inf` is not a finite number")
        );
        write("empty.csv", "\n\n");
        assert!(matches!(
            load_err(csv("empty.csv").array("x", Selector::Index(0)), dir.path()),
            DataError::Empty { .. }
        ));
        write("header_only.csv", "a,b\n");
        assert!(
            load_err(csv("header_only.csv").array("x", Selector::Index(0)), dir.path())
                .to_string()
                .contains("no data rows")
        );
        write("quote.csv", "a,b\n\"1,2\n");
        assert!(matches!(
            load_err(csv("quote.csv").array("x", Selector::Index(0)), dir.path()),
            DataError::Syntax { line: 2, .. }
        ));
        std::fs::write(dir.path().join("latin1.csv"), b"a,b\n1,2\n\xe9,3\n").unwrap();
        let e = load_err(csv("latin1.csv").array("x", Selector::Index(0)), dir.path());
        assert!(matches!(e, DataError::NotUtf8 { line: 3, .. }), "{e}");
    }

    #[test]
    fn mutated_tables_never_panic() {
        let dir = TempDir::new("csv-fuzz");
        let good = std::fs::read(root().join("data/fish.csv")).unwrap();
        let mut rng = crate::rng::Rng::new(17);
        let bytes = [b',', b'"', b'\n', b'\t', b'x', b'1', b'.', b' ', 0xff, b'-'];
        for round in 0..150 {
            let mut b = good[..400 + rng.below(600) as usize].to_vec();
            for _ in 0..1 + rng.below(6) {
                let i = rng.below(b.len() as u64) as usize;
                b[i] = bytes[rng.below(bytes.len() as u64) as usize];
            }
            let name = format!("f{round}.csv");
            std::fs::write(dir.path().join(&name), &b).unwrap();
            let spec = csv(&name)
                .array("x", Selector::List(vec![Selector::Name("Height".into()), Selector::Index(6)]))
                .array("g", Selector::Glob("Len*".into()))
                .array("l", Selector::Label(LabelExpr::compare(Column::Index(1), Cmp::Ge, 100.0)));
            let _ = load_source(&SourceSpec::Csv(spec), dir.path());
        }
    }

    #[test]
    fn headers_delimiters_and_line_ends() {
        let dir = TempDir::new("csv2");
        let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
        // CRLF, a BOM, blank lines, quoted names, spaces around numbers.
        write("w.csv", "\u{feff}\"x 1\",y\r\n 1.5 , 2\r\n\r\n3,4e-1\r\n");
        let l =
            load_ok(csv("w.csv").array("a", Selector::Name("x 1".into())).array("b", Selector::Index(1)), dir.path());
        assert_eq!(l.dataset.get("a"), Some(&Array::F32(ndarray::arr1(&[1.5f32, 3.0]).into_dyn())));
        assert_eq!(l.dataset.get("b"), Some(&Array::F32(ndarray::arr1(&[2.0f32, 0.4]).into_dyn())));
        // A numeric first row is data under `auto`, a header when forced.
        write("n.tsv", "1\t2\n3\t4\n");
        let l = load_ok(csv("n.tsv").array("a", Selector::Range(0, 2)), dir.path());
        assert_eq!(l.dataset.len(), 2);
        let mut s = csv("n.tsv").array("a", Selector::Name("2".into()));
        s.header = Header::Present;
        let l = load_ok(s, dir.path());
        assert_eq!(l.dataset.get("a"), Some(&Array::F32(ndarray::arr1(&[4.0f32]).into_dyn())));
        // A forced header-less read of a file with a header fails on the first line.
        let mut s = csv("w.csv").array("a", Selector::Index(1));
        s.header = Header::Absent;
        assert!(matches!(load_err(s, dir.path()), DataError::NotANumber { line: 1, .. }));
        // Explicit semicolon delimiter.
        write("semi.txt", "a;b\n1;2\n");
        let mut s = csv("semi.txt").array("b", Selector::Name("b".into()));
        s.delimiter = Some(';');
        assert_eq!(load_ok(s, dir.path()).dataset.len(), 1);
    }
}
