//! `text(…)` (character-level language modelling) and `sentences(…)`
//! (word-level classification): token ids as `I64` arrays plus the
//! vocabulary that maps them back.

use std::collections::BTreeMap;
use std::path::Path;

use ndarray::{ArrayD, IxDyn};

use super::csv::{Columns, detect_delimiter, number, read_text, split_line};
use super::source::{Loaded, Pad, SentencesSpec, TextSpec, Vocabulary};
use super::{Array, DataError};

/// At most this many token ids per source (2 GiB of i64): a file with one
/// huge line must not make the padded array explode.
const MAX_IDS: usize = 1 << 28;

pub(crate) const PAD: &str = "<pad>";
pub(crate) const OOV: &str = "<oov>";

/// Characters → ids. Windows do not overlap: sample `w` is characters
/// `w·seq .. (w+1)·seq` and its target the same shifted by one, so
/// `next[:, t] = tokens[:, t+1]` and the last target is the character
/// after the window.
pub(super) fn load_text(spec: &TextSpec, base: &Path) -> Result<Loaded, DataError> {
    let source = || format!("text(\"{}\")", spec.path.display());
    if spec.seq == 0 {
        return Err(DataError::Spec { source: source(), reason: "seq must be at least 1".into() });
    }
    if spec.vocab.is_some_and(|v| v < 2) {
        return Err(DataError::Spec {
            source: source(),
            reason: "vocab must be at least 2 (one id is kept for rare characters)".into(),
        });
    }
    if spec.x == spec.y {
        return Err(DataError::Spec { source: source(), reason: format!("x and y are both named `{}`", spec.x) });
    }
    let path = base.join(&spec.path);
    let mut s = read_text(&path)?;
    // The same book saved with Windows line ends must give the same data.
    if s.contains('\r') {
        s = s.replace("\r\n", "\n");
    }
    if spec.lower {
        s = s.to_lowercase();
    }
    let chars: Vec<char> = s.chars().collect();
    let mut counts: BTreeMap<char, usize> = BTreeMap::new();
    for &c in &chars {
        *counts.entry(c).or_default() += 1;
    }
    let vocab: Vocabulary = match spec.vocab {
        Some(v) if counts.len() > v => {
            // Keep the v − 1 most frequent characters (ties: lower code point first).
            let mut by_freq: Vec<(char, usize)> = counts.into_iter().collect();
            by_freq.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            let mut kept: Vec<char> = by_freq.into_iter().take(v - 1).map(|(c, _)| c).collect();
            kept.sort();
            let mut tokens = vec![OOV.to_string()];
            tokens.extend(kept.iter().map(char::to_string));
            Vocabulary { tokens, padding: None, oov: Some(0) }
        }
        _ => Vocabulary { tokens: counts.keys().map(char::to_string).collect(), padding: None, oov: None },
    };
    let index: BTreeMap<char, i64> = vocab
        .tokens
        .iter()
        .enumerate()
        .filter(|(i, _)| Some(*i) != vocab.oov)
        .filter_map(|(i, t)| Some((t.chars().next()?, i as i64)))
        .collect();
    let ids: Vec<i64> = chars.iter().map(|c| index.get(c).copied().unwrap_or(0)).collect();
    let windows = ids.len().saturating_sub(1) / spec.seq;
    if windows == 0 {
        return Err(DataError::TooShort {
            path,
            have: ids.len(),
            need: spec.seq + 1,
            what: format!("characters (seq = {})", spec.seq),
        });
    }
    let mut xs = Vec::with_capacity(windows * spec.seq);
    let mut ys = Vec::with_capacity(windows * spec.seq);
    for w in 0..windows {
        xs.extend_from_slice(&ids[w * spec.seq..(w + 1) * spec.seq]);
        ys.extend_from_slice(&ids[w * spec.seq + 1..(w + 1) * spec.seq + 1]);
    }
    let shape = IxDyn(&[windows, spec.seq]);
    let mut l = Loaded::default();
    l.dataset
        .arrays
        .insert(spec.x.clone(), Array::I64(ArrayD::from_shape_vec(shape.clone(), xs).expect("windows × seq")));
    l.dataset.arrays.insert(spec.y.clone(), Array::I64(ArrayD::from_shape_vec(shape, ys).expect("windows × seq")));
    l.origins.insert(spec.x.clone(), format!("{}: {windows} windows of {} characters", path.display(), spec.seq));
    l.origins.insert(spec.y.clone(), format!("{}: {windows} windows of {} next characters", path.display(), spec.seq));
    l.vocabulary = Some(vocab);
    Ok(l)
}

/// Lower-cased words: maximal runs of letters (any script).
pub fn words(s: &str) -> impl Iterator<Item = String> + '_ {
    s.split(|c: char| !c.is_alphabetic()).filter(|w| !w.is_empty()).map(str::to_lowercase)
}

/// Sentences → padded word ids and labels. Ids: 0 padding, 1
/// out-of-vocabulary, 2..V−1 the most frequent words of the vocabulary
/// rows (ties alphabetical).
pub(super) fn load_sentences(spec: &SentencesSpec, base: &Path) -> Result<Loaded, DataError> {
    let source = || format!("sentences(\"{}\")", spec.path.display());
    if let Some(v) = spec.vocab.filter(|&v| v < 3) {
        return Err(DataError::Spec {
            source: source(),
            reason: format!("vocab = {v} leaves no room for words (0 is padding, 1 unknown words)"),
        });
    }
    if spec.len == Some(0) {
        return Err(DataError::Spec { source: source(), reason: "the token length T must be at least 1".into() });
    }
    let path = base.join(&spec.path);
    let text = read_text(&path)?;
    let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l)).filter(|(_, l)| !l.trim().is_empty()).peekable();
    let Some(&(_, first)) = lines.peek() else {
        return Err(DataError::Empty { path, what: "the file is empty".into() });
    };
    let delim = detect_delimiter(&path, first);
    let mut cells = Vec::new();
    split_line(first, delim, &mut cells).map_err(|reason| DataError::Syntax { path: path.clone(), line: 1, reason })?;
    let names = spec.header.then(|| cells.iter().map(|c| c.trim().to_string()).collect::<Vec<_>>());
    if spec.header {
        lines.next();
    }
    // Column names resolve against the header; indices need no header.
    let cols = Columns { path: &path, names, count: usize::MAX };
    let tok_col = cols.resolve_column(&spec.tokens)?;
    let label = match &spec.label {
        Some((name, expr)) => Some((name, expr, cols.resolve_column(&expr.column)?)),
        None => None,
    };
    let need = tok_col.max(label.as_ref().map_or(0, |l| l.2)) + 1;
    let mut sentences: Vec<Vec<String>> = Vec::new();
    let mut labels: Vec<f32> = Vec::new();
    for (no, line) in lines {
        split_line(line, delim, &mut cells).map_err(|reason| DataError::Syntax {
            path: path.clone(),
            line: no,
            reason,
        })?;
        if cells.len() < need {
            return Err(DataError::Ragged {
                path: path.clone(),
                line: no,
                found: cells.len(),
                expected: need,
                at_least: true,
            });
        }
        sentences.push(words(&cells[tok_col]).collect());
        if let Some((_, expr, c)) = &label {
            let x = number::<f64>(&cells[*c], &path, no, || format!("column {c}"))?;
            labels.push(expr.eval(x));
        }
    }
    let n = sentences.len();
    if n == 0 {
        return Err(DataError::Empty { path, what: "no sentences".into() });
    }
    let vocab_rows = spec.vocab_rows.split(n).0;
    let (tokens, index) = vocabulary(&sentences, &vocab_rows, spec.vocab);
    // Without a length, the longest sentence of the vocabulary rows sets it
    // (longer validation rows are truncated like any other).
    let t = match spec.len {
        Some(t) => t,
        None => vocab_rows.iter().map(|&r| sentences[r].len()).max().unwrap_or(0).max(1),
    };
    if n.checked_mul(t).is_none_or(|ids| ids > MAX_IDS) {
        return Err(DataError::Spec {
            source: source(),
            reason: format!(
                "{n} sentences of {t} words are more than {MAX_IDS} token ids; give the length: `seq = 100` (or \
                    declare the input `int[N, 100]`)"
            ),
        });
    }
    let ids = padded_ids(&sentences, &index, t, spec);
    let mut l = Loaded::default();
    l.dataset
        .arrays
        .insert(spec.tokens_name.clone(), Array::I64(ArrayD::from_shape_vec(IxDyn(&[n, t]), ids).expect("n × T")));
    l.origins.insert(spec.tokens_name.clone(), format!("{}: column {tok_col} as {t} word ids", path.display()));
    if let Some((name, expr, _)) = label {
        l.dataset.arrays.insert(name.clone(), Array::F32(ArrayD::from_shape_vec(IxDyn(&[n]), labels).expect("n")));
        l.origins.insert(name.clone(), format!("{}: {expr}", path.display()));
    }
    l.vocabulary = Some(Vocabulary { tokens, padding: Some(0), oov: Some(1) });
    Ok(l)
}

/// The vocabulary of the `rows` sentences: padding, unknown, then the words by frequency (ties alphabetical),
/// at most `cap` in all; and each word's id.
fn vocabulary<'a>(
    sentences: &'a [Vec<String>],
    rows: &[usize],
    cap: Option<usize>,
) -> (Vec<String>, BTreeMap<&'a str, i64>) {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for &r in rows {
        for w in &sentences[r] {
            *counts.entry(w.as_str()).or_default() += 1;
        }
    }
    let mut by_freq: Vec<(&str, usize)> = counts.into_iter().collect();
    // BTreeMap order is alphabetical and the sort is stable: ties stay alphabetical.
    by_freq.sort_by_key(|&(_, count)| std::cmp::Reverse(count));
    if let Some(v) = cap {
        by_freq.truncate(v - 2);
    }
    let mut tokens = vec![PAD.to_string(), OOV.to_string()];
    tokens.extend(by_freq.iter().map(|(w, _)| w.to_string()));
    let index = by_freq.iter().enumerate().map(|(i, (w, _))| (*w, i as i64 + 2)).collect();
    (tokens, index)
}

/// Every sentence as `t` word ids (1 for unknown words), cut and padded where `spec` says.
fn padded_ids(sentences: &[Vec<String>], index: &BTreeMap<&str, i64>, t: usize, spec: &SentencesSpec) -> Vec<i64> {
    let mut ids = Vec::with_capacity(sentences.len() * t);
    for s in sentences {
        let mut row: Vec<i64> = s.iter().map(|w| index.get(w.as_str()).copied().unwrap_or(1)).collect();
        if row.len() > t {
            row = match spec.truncate {
                Pad::Pre => row[row.len() - t..].to_vec(),
                Pad::Post => row[..t].to_vec(),
            };
        }
        let pad = t - row.len();
        match spec.pad {
            Pad::Pre => {
                ids.extend(std::iter::repeat_n(0, pad));
                ids.extend(row);
            }
            Pad::Post => {
                ids.extend(row);
                ids.extend(std::iter::repeat_n(0, pad));
            }
        }
    }
    ids
}

#[cfg(test)]
mod tests {
    use super::super::source::VocabRows;
    use super::super::source::{Cmp, Column, LabelExpr, SourceSpec, load};
    use super::super::testutil::root;
    use super::*;
    use crate::io::testutil::{TempDir, gzip};

    fn ints(l: &Loaded, name: &str) -> ArrayD<i64> {
        match l.dataset.get(name) {
            Some(Array::I64(a)) => a.clone(),
            other => panic!("{name}: {other:?}"),
        }
    }

    #[test]
    fn alice_character_windows() {
        let l = load(&SourceSpec::Text(TextSpec::new("data/alice.txt", 35)), &root()).unwrap();
        let raw = std::fs::read_to_string(root().join("data/alice.txt")).unwrap().to_lowercase();
        let n = raw.chars().count();
        let (x, y) = (ints(&l, "tokens"), ints(&l, "next"));
        assert_eq!(x.shape(), &[(n - 1) / 35, 35]);
        assert_eq!(y.shape(), x.shape());
        // next[:, t] = tokens[:, t+1], and windows follow each other.
        for w in 0..x.shape()[0] {
            for t in 0..34 {
                assert_eq!(y[[w, t]], x[[w, t + 1]]);
            }
            if w + 1 < x.shape()[0] {
                assert_eq!(y[[w, 34]], x[[w + 1, 0]]);
            }
        }
        let v = l.vocabulary.clone().unwrap();
        let mut sorted = v.tokens.clone();
        sorted.sort();
        assert_eq!(v.tokens, sorted, "sorted characters");
        assert!(!v.tokens.iter().any(|t| t.chars().any(char::is_uppercase)));
        // Decoding the first window gives the book's first 35 characters.
        let decoded: String =
            x.index_axis(ndarray::Axis(0), 0).iter().map(|&i| v.tokens[i as usize].as_str()).collect();
        assert_eq!(decoded, raw.chars().take(35).collect::<String>());
        assert_eq!(decoded, "[alice's adventures in wonderland b");
    }

    #[test]
    fn capped_vocabulary_and_options() {
        let mut spec = TextSpec::new("data/alice.txt", 100);
        spec.vocab = Some(28);
        spec.x = "x".into();
        spec.y = "y".into();
        let l = load(&SourceSpec::Text(spec), &root()).unwrap();
        let v = l.vocabulary.clone().unwrap();
        assert_eq!(v.len(), 28);
        assert_eq!((v.oov, v.tokens[0].as_str()), (Some(0), "<oov>"));
        assert!(v.tokens.contains(&" ".to_string()) && v.tokens.contains(&"e".to_string()));
        let x = ints(&l, "x");
        assert!(x.iter().all(|&i| (0..28).contains(&i)));
        assert!(x.iter().any(|&i| i == 0), "rare characters map to 0");
        // Case kept when lower = false: more symbols.
        let mut keep = TextSpec::new("data/alice.txt", 35);
        keep.lower = false;
        let upper = load(&SourceSpec::Text(keep), &root()).unwrap().vocabulary.unwrap();
        assert!(upper.tokens.contains(&"A".to_string()));
    }

    #[test]
    fn text_edge_cases() {
        let dir = TempDir::new("text");
        std::fs::write(dir.path().join("t.txt.gz"), gzip(b"ab\r\nab\r\n")).unwrap();
        let l = load(&SourceSpec::Text(TextSpec::new("t.txt.gz", 2)), dir.path()).unwrap();
        // "ab\nab\n" → vocabulary ["\n", "a", "b"], 2 windows of 2.
        assert_eq!(l.vocabulary.clone().unwrap().tokens, ["\n", "a", "b"]);
        assert_eq!(ints(&l, "tokens").into_raw_vec_and_offset().0, vec![1, 2, 0, 1]);
        assert_eq!(ints(&l, "next").into_raw_vec_and_offset().0, vec![2, 0, 1, 2]);
        let e = load(&SourceSpec::Text(TextSpec::new("t.txt.gz", 6)), dir.path()).unwrap_err();
        assert!(e.to_string().contains("6 characters (seq = 6), at least 7 needed"), "{e}");
        assert!(matches!(
            load(&SourceSpec::Text(TextSpec::new("t.txt.gz", 0)), dir.path()),
            Err(DataError::Spec { .. })
        ));
        let mut same = TextSpec::new("t.txt.gz", 2);
        same.y = "tokens".into();
        assert!(matches!(load(&SourceSpec::Text(same), dir.path()), Err(DataError::Spec { .. })));
        assert!(
            load(&SourceSpec::Text(TextSpec::new("none.txt", 2)), dir.path())
                .unwrap_err()
                .to_string()
                .contains("cannot read")
        );
    }

    fn reviews(vocab: usize, len: usize) -> SentencesSpec {
        let mut s = SentencesSpec::new("data/movie_reviews.tsv.gz", Column::Index(2), vocab, len);
        s.label = Some(("label".into(), LabelExpr::compare(Column::Index(1), Cmp::Gt, 0.0)));
        s
    }

    #[test]
    fn movie_review_sentences() {
        let l = load(&SourceSpec::Sentences(reviews(5000, 40)), &root()).unwrap();
        assert_eq!(l.dataset.len(), 10_605);
        let tokens = ints(&l, "tokens");
        assert_eq!(tokens.shape(), &[10_605, 40]);
        assert!(tokens.iter().all(|&i| (0..5000).contains(&i)));
        let Some(Array::F32(label)) = l.dataset.get("label") else { panic!() };
        assert_eq!(label.iter().filter(|&&v| v == 1.0).count(), 5242);
        assert_eq!(label.iter().filter(|&&v| v == 0.0).count(), 5326 + 37);
        let v = l.vocabulary.clone().unwrap();
        assert_eq!(v.len(), 5000);
        assert_eq!(&v.tokens[..3], &["<pad>", "<oov>", "the"]);
        // Row 0: "The Rock is destined to be the 21st Century's new ''Conan'' …"
        // (33 words: "21st" gives "st", "Century's" gives "century" and "s"), padded at the front.
        let row: Vec<i64> = tokens.index_axis(ndarray::Axis(0), 0).iter().copied().collect::<Vec<_>>();
        let words: Vec<&str> = row.iter().filter(|&&i| i != 0).map(|&i| v.tokens[i as usize].as_str()).collect();
        assert_eq!(&words[..6], &["the", "rock", "is", "destined", "to", "be"]);
        assert_eq!(row[0], 0, "pre-padding");
        assert_eq!(words.len(), 33);
        assert!(!v.tokens.iter().any(|t| t.chars().any(|c| !c.is_alphabetic() && t != "<pad>" && t != "<oov>")));
    }

    #[test]
    fn vocabulary_comes_from_training_rows_only() {
        let dir = TempDir::new("sent");
        // Rows: "common" everywhere, and a word unique to each row.
        let text: String = (0..20)
            .map(|i| {
                format!(
                    "{i}\t1\tcommon word{}\n",
                    [
                        "a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l", "m", "n", "o", "p", "q", "r", "s",
                        "t"
                    ][i]
                )
            })
            .collect();
        std::fs::write(dir.path().join("s.tsv"), &text).unwrap();
        let mut spec = SentencesSpec::new("s.tsv", Column::Index(2), 100, 3);
        spec.vocab_rows = VocabRows::Train { validate: 0.25, seed: 3 };
        let l = load(&SourceSpec::Sentences(spec), dir.path()).unwrap();
        let (train, val) = super::super::split(20, 0.25, 3);
        assert_eq!(val.len(), 5);
        let v = l.vocabulary.clone().unwrap();
        let tokens = ints(&l, "tokens");
        for &r in &val {
            assert_eq!(tokens[[r, 2]], 1, "validation-only words are out of vocabulary");
        }
        for &r in &train {
            assert!(tokens[[r, 2]] >= 2);
        }
        assert_eq!(v.len(), 2 + 1 + train.len());
        assert_eq!(v.tokens[2], "common");
        assert_eq!(tokens[[0, 0]], 0);
    }

    #[test]
    fn padding_truncation_ties_and_options() {
        let dir = TempDir::new("sent2");
        std::fs::write(dir.path().join("s.csv"), "text,score\n\"b a, c!\",2\n\"a b c d e\",-1\nd-e,0\n").unwrap();
        let mut spec = SentencesSpec::new("s.csv", Column::Name("text".into()), 4, 3);
        spec.header = true;
        spec.label = Some(("y".into(), LabelExpr::column(Column::Name("score".into()))));
        spec.pad = Pad::Post;
        let l = load(&SourceSpec::Sentences(spec.clone()), dir.path()).unwrap();
        // Counts: a 2, b 2, c 2, d 2, e 2: ties alphabetical → a, b kept.
        assert_eq!(l.vocabulary.as_ref().unwrap().tokens, ["<pad>", "<oov>", "a", "b"]);
        let t = ints(&l, "tokens");
        assert_eq!(t.index_axis(ndarray::Axis(0), 0).iter().copied().collect::<Vec<_>>(), vec![3, 2, 1]);
        // Five words truncated to the last three (Keras's default), "d-e" is two words.
        assert_eq!(t.index_axis(ndarray::Axis(0), 1).iter().copied().collect::<Vec<_>>(), vec![1, 1, 1]);
        assert_eq!(t.index_axis(ndarray::Axis(0), 2).iter().copied().collect::<Vec<_>>(), vec![1, 1, 0]);
        assert_eq!(l.dataset.get("y").unwrap().to_f32().as_slice().unwrap(), &[2.0, -1.0, 0.0]);
        spec.truncate = Pad::Post;
        spec.pad = Pad::Pre;
        let t = ints(&load(&SourceSpec::Sentences(spec.clone()), dir.path()).unwrap(), "tokens");
        assert_eq!(t.index_axis(ndarray::Axis(0), 1).iter().copied().collect::<Vec<_>>(), vec![2, 3, 1]);
        assert_eq!(t.index_axis(ndarray::Axis(0), 2).iter().copied().collect::<Vec<_>>(), vec![0, 1, 1]);
        // No length: the longest sentence; no cap: every word (`vocab = V` to bind).
        let mut open = spec.clone();
        open.len = None;
        open.vocab = None;
        let l = load(&SourceSpec::Sentences(open), dir.path()).unwrap();
        assert_eq!(ints(&l, "tokens").shape(), &[3, 5]);
        assert_eq!(l.vocabulary.as_ref().unwrap().len(), 2 + 5);
        // Errors: bad vocab, missing column name, ragged rows, non-numeric label.
        let mut bad = spec.clone();
        bad.vocab = Some(2);
        assert!(matches!(load(&SourceSpec::Sentences(bad), dir.path()), Err(DataError::Spec { .. })));
        let mut bad = spec.clone();
        bad.tokens = Column::Name("txt".into());
        assert!(load(&SourceSpec::Sentences(bad), dir.path()).unwrap_err().to_string().contains("did you mean `text`"));
        std::fs::write(dir.path().join("r.tsv"), "1\t0.5\tgood\n2\tbad\n").unwrap();
        let mut r = SentencesSpec::new("r.tsv", Column::Index(2), 10, 4);
        let e = load(&SourceSpec::Sentences(r.clone()), dir.path()).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("{}: line 2 has 2 columns, expected at least 3", dir.path().join("r.tsv").display())
        );
        std::fs::write(dir.path().join("r.tsv"), "1\t0.5\tgood\n2\tn/a\tbad\n").unwrap();
        r.label = Some(("label".into(), LabelExpr::compare(Column::Index(1), Cmp::Gt, 0.0)));
        let e = load(&SourceSpec::Sentences(r), dir.path()).unwrap_err();
        assert!(e.to_string().ends_with("line 2, column 1: `n/a` is not a finite number"), "{e}");
    }
}
