//! Hostile and newcomer inputs: data (issue 9, "run-time surprises a newcomer hit").
//!
//! - Data binds every dim it determines (a sentence length, a vocabulary size, a CSV selector's width, a
//!   `.npy` shape); what stays unbound is a check-time error (E0410) with the fix in the message.
//! - Static widths that cannot fill their input are check-time errors (E0404), as is a dim bound twice.
//! - Checkpoints carry the data transforms (vocabulary, selectors, bound dims), validated on load, so
//!   `nnc predict` takes raw text and CSV rows and gives what it gives on the equivalent `.npy`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::common::nnc_bin;

/// A scratch directory removed at the end of the test.
struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Dir {
        let p = std::env::temp_dir().join(format!("nnc-hostile-data-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        Dir(p)
    }
    fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }
    fn nnc(&self, args: &[&str]) -> Output {
        let out = Command::new(nnc_bin()).current_dir(&self.0).args(args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "nnc {args:?} panicked:\n{stderr}");
        assert!(out.status.code().is_some_and(|c| c != 101), "nnc {args:?} died: {:?}\n{stderr}", out.status);
        out
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn ok(o: &Output, what: &str) {
    assert_eq!(o.status.code(), Some(0), "{what} failed:\n{}", text(o));
}

fn fails(o: &Output, what: &str, words: &[&str]) {
    let t = text(o);
    assert_eq!(o.status.code(), Some(1), "{what} should fail with exit 1:\n{t}");
    for w in words {
        assert!(t.contains(w), "{what}: expected `{w}` in:\n{t}");
    }
}

/// Labelled sentences, tab-separated: `label \t text`, of varied lengths.
fn reviews(d: &Dir) {
    let good = ["a wonderful film", "truly great acting and a moving story", "great fun", "i loved every minute of it"];
    let bad =
        ["boring", "a dull and tedious mess of a movie", "bad acting bad story", "the worst film of the year by far"];
    let mut s = String::new();
    for i in 0..24 {
        s.push_str(&format!("1\t{}\n0\t{}\n", good[i % 4], bad[i % 4]));
    }
    d.write("reviews.tsv", &s);
}

fn book(d: &Dir) {
    d.write("book.txt", &"Alice was beginning to get very tired of sitting by her sister on the bank. ".repeat(20));
}

/// `.npy` (version 1.0) of little-endian values with dtype `descr`.
fn npy(path: &Path, descr: &str, shape: &[usize], bytes: &[u8]) {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape = if dims.len() == 1 { format!("({},)", dims[0]) } else { format!("({})", dims.join(", ")) };
    let mut header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend((header.len() as u16).to_le_bytes());
    out.extend(header.as_bytes());
    out.extend(bytes);
    std::fs::write(path, out).unwrap();
}

fn npy_i64(path: &Path, shape: &[usize], vals: &[i64]) {
    npy(path, "<i8", shape, &vals.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<_>>());
}

fn npy_f32(path: &Path, shape: &[usize], vals: &[f32]) {
    npy(path, "<f4", shape, &vals.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<_>>());
}

/// The data of a `.npy` file written by `nnc predict` (header skipped).
fn npy_data(path: &Path) -> Vec<u8> {
    let b = std::fs::read(path).unwrap();
    let len = u16::from_le_bytes([b[8], b[9]]) as usize;
    b[10 + len..].to_vec()
}

/// A safetensors file's header (JSON) and the bytes after it.
fn safetensors_parts(path: &Path) -> (serde_json::Value, Vec<u8>) {
    let b = std::fs::read(path).unwrap();
    let n = u64::from_le_bytes(b[..8].try_into().unwrap()) as usize;
    (serde_json::from_slice(&b[8..8 + n]).unwrap(), b[8 + n..].to_vec())
}

fn write_safetensors(path: &Path, header: &serde_json::Value, data: &[u8]) {
    let mut h = header.to_string().into_bytes();
    while !h.len().is_multiple_of(8) {
        h.push(b' ');
    }
    let mut out = (h.len() as u64).to_le_bytes().to_vec();
    out.extend(h);
    out.extend(data);
    std::fs::write(path, out).unwrap();
}

/// The saved data transforms of a checkpoint.
fn saved_transforms(path: &Path) -> serde_json::Value {
    let (h, _) = safetensors_parts(path);
    serde_json::from_str(h["__metadata__"]["nnc.data"].as_str().expect("nnc.data metadata")).unwrap()
}

const SENTIMENT: &str = "dim N, T
model M {
    input tokens: int[N, T]
    let h = tokens |> embedding(64, 8) |> lstm(8)
    output p = dense(h, 1, activation = sigmoid)
}
train t {
    model     = M()
    data      = sentences(\"reviews.tsv\", tokens = 1, label = column(0), vocab = 64)
    loss      = binary_cross_entropy(p, label)
    optimizer = adam()
    batch     = 8
    epochs    = 1
}
";

/// The issue's case: `dim N, T` and `sentences(…)` checked clean, then failed at run time.
#[test]
fn sentences_bind_an_unbound_sequence_dim() {
    let d = Dir::new("sentences-t");
    reviews(&d);
    d.write("m.nn", SENTIMENT);
    ok(&d.nnc(&["check", "m.nn"]), "check");
    let o = d.nnc(&["run", "m.nn", "--steps", "2", "--save", "w.safetensors"]);
    ok(&o, "run");
    // T is the longest sentence (8 words), saved for predict.
    assert_eq!(saved_transforms(&d.0.join("w.safetensors"))["dims"]["T"], 8, "{}", text(&o));
    // A separate validation source is padded to the training `T`, not to its own longest sentence.
    d.write("val.tsv", "1\ta very very very very very very very very very very long and wonderful film\n0\tbad\n");
    d.write(
        "v.nn",
        &SENTIMENT.replace(
            "    loss ",
            "    validate  = sentences(\"val.tsv\", tokens = 1, label = column(0), vocab = 64)\n    loss ",
        ),
    );
    ok(&d.nnc(&["run", "v.nn", "--steps", "1"]), "run with a validation source");
    // `seq = 5` fixes it instead.
    d.write("s.nn", &SENTIMENT.replace("vocab = 64)", "vocab = 64, seq = 5)"));
    ok(&d.nnc(&["run", "s.nn", "--steps", "1", "--save", "s.safetensors"]), "run with seq");
    assert_eq!(saved_transforms(&d.0.join("s.safetensors"))["dims"]["T"], 5);
    // `vocab = W` with `W` unbound sizes the embedding by the words of the file (+ padding and unknown).
    let w = SENTIMENT
        .replace("dim N, T", "dim N, T, W")
        .replace("embedding(64, 8)", "embedding(W, 8)")
        .replace("vocab = 64", "vocab = W");
    d.write("w.nn", &w);
    ok(&d.nnc(&["run", "w.nn", "--steps", "1", "--save", "v.safetensors"]), "run with vocab = W");
    let t = saved_transforms(&d.0.join("v.safetensors"));
    assert_eq!(t["dims"]["W"].as_u64().unwrap() as usize, t["inputs"]["tokens"]["vocab"].as_array().unwrap().len());
}

/// `text(…)` binds an unbound `V` used as a layer option (`one_hot(tokens, V)`, `dense(h, V)`): the
/// one-hot depth was lowered as 1 ("index 21 outside a table of 1 rows").
#[test]
fn text_binds_an_unbound_vocabulary_dim() {
    let d = Dir::new("text-v");
    book(&d);
    let model = "dim N, V
model C {
    input tokens: int[N, 20]
    let x = one_hot(tokens, V)
    let h = simple_rnn(x, 8, sequences = true)
    output logits = dense(h, V)
}
train t {
    model     = C()
    data      = text(\"book.txt\", seq = 20)
    loss      = cross_entropy(logits, next)
    optimizer = adam()
    batch     = 8
}
";
    d.write("c.nn", model);
    ok(&d.nnc(&["check", "c.nn"]), "check");
    ok(&d.nnc(&["run", "c.nn", "--steps", "2", "--save", "w.safetensors"]), "run");
    let t = saved_transforms(&d.0.join("w.safetensors"));
    let symbols = t["inputs"]["tokens"]["vocab"].as_array().unwrap().len();
    assert_eq!(t["dims"]["V"].as_u64().unwrap() as usize, symbols);
    // `vocab = K` names the dim instead of `V`.
    d.write(
        "k.nn",
        &model.replace("dim N, V", "dim N, K").replace(", V)", ", K)").replace("seq = 20)", "seq = 20, vocab = K)"),
    );
    ok(&d.nnc(&["run", "k.nn", "--steps", "1"]), "run with vocab = K");
}

/// What no source binds is an error of `nnc check`, with the fix in the message.
#[test]
fn dims_the_data_cannot_bind_are_check_time_errors() {
    let cases: &[(&str, &str, &str, &str, &[&str])] = &[
        (
            "text without seq",
            "dim N, T",
            "input tokens: int[N, T]\n    output logits = tokens |> embedding(40, 4) |> dense(40)",
            "data = text(\"book.txt\")\n    loss = cross_entropy(logits, next)",
            &["E0410", "dim `T` has no value", "`dim T = 40`", "seq = "],
        ),
        (
            "synthetic",
            "dim N, F",
            "input x: [N, F]\n    input y: [N, 1]\n    output p = dense(x, 1)",
            "data = synthetic(n = 10)\n    loss = mse(p, y)",
            &["E0410", "dim `F` has no value", "`dim F = 40`", "binds no dim"],
        ),
        (
            "batch axis not named N",
            "dim N, B",
            "input x: [B, 3]\n    input y: [B, 1]\n    output p = dense(x, 1)",
            "data = synthetic(n = 10)\n    loss = mse(p, y)",
            &["E0410", "dim `B` has no value"],
        ),
        (
            "an axis the data cannot solve",
            "dim N, H",
            "input x: [N, 2*H]\n    input y: [N, 1]\n    output p = dense(x, 1)",
            "data = csv(\"t.csv\", x = \"f*\", y = \"y\")\n    loss = mse(p, y)",
            &["E0410", "dim `H` has no value", "`dim H = 40`", "an axis `H`"],
        ),
    ];
    let d = Dir::new("unbound");
    book(&d);
    d.write("t.csv", "1,2,3,4,5\n");
    for (what, dims, body, train, words) in cases {
        let src = format!(
            "{dims}\nmodel M {{\n    {body}\n}}\ntrain t {{\n    model = M()\n    {train}\n    optimizer = adam()\n}}\n"
        );
        d.write("m.nn", &src);
        fails(&d.nnc(&["check", "m.nn"]), what, words);
        // `run` stops at the same error, before reading any data.
        fails(&d.nnc(&["run", "m.nn", "--steps", "1"]), what, &["E0410"]);
    }
}

/// Widths a data call fixes statically are compared with the input they feed when the file is checked.
#[test]
fn static_selector_widths_must_fill_the_input() {
    let cases: &[(&str, &str, &str, &[&str])] = &[
        (
            "the issue's 0..780 for 28×28×1",
            "input images: [N, 28, 28, 1]\n    input label: int[N]\n    output logits = images |> flatten |> dense(10)",
            "data = csv(\"t.csv\", images = 0..780, label = 784)\n    loss = cross_entropy(logits, label)",
            &["E0404", "780 values per sample", "needs 784"],
        ),
        (
            "a list of names for three features",
            "input x: [N, 3]\n    input y: [N, 1]\n    output p = dense(x, 1)",
            "data = csv(\"t.csv\", x = [\"a\", \"b\"], y = \"c\")\n    loss = mse(p, y)",
            &["E0404", "2 values per sample", "needs 3"],
        ),
        (
            "one label column for two outputs",
            "input x: [N, 2]\n    input y: [N, 2]\n    output p = dense(x, 2)",
            "data = csv(\"t.csv\", x = 0..2, y = 2)\n    loss = mse(p, y)",
            &["E0404", "1 value per sample", "needs 2"],
        ),
        (
            "text windows of another length",
            "input tokens: int[N, 35]\n    output logits = tokens |> embedding(40, 4) |> dense(40)",
            "data = text(\"book.txt\", seq = 20)\n    loss = cross_entropy(logits, next)",
            &["E0404", "20 values per sample", "needs 35"],
        ),
        (
            "sentences of another length",
            "input tokens: int[N, 12]\n    input label: [N]\n    output p = tokens |> embedding(40, 4) |> flatten |> \
                dense(1)",
            "data = sentences(\"reviews.tsv\", tokens = 1, label = column(0), seq = 10)\n    loss = mse(p, label)",
            &["E0404", "10 values per sample", "needs 12"],
        ),
        (
            "a width no multiple of the known axes",
            "dim C\n    input x: [N, 8, 8, C]\n    input y: [N, 1]\n    output p = x |> flatten |> dense(1)",
            "data = csv(\"t.csv\", x = 0..100, y = 100)\n    loss = mse(p, y)",
            &["E0404", "100 values per sample", "not a multiple of 64"],
        ),
    ];
    let d = Dir::new("widths");
    book(&d);
    reviews(&d);
    d.write("t.csv", "a,b,c\n1,2,3\n");
    for (what, body, train, words) in cases {
        let (dims, body) = match body.strip_prefix("dim C\n    ") {
            Some(rest) => ("dim N, C", rest),
            None => ("dim N", *body),
        };
        let src = format!(
            "{dims}\nmodel M {{\n    {body}\n}}\ntrain t {{\n    model = M()\n    {train}\n    optimizer = adam()\n}}\n"
        );
        d.write("m.nn", &src);
        fails(&d.nnc(&["check", "m.nn"]), what, words);
    }
}

/// A dim bound twice to different values is an error naming both sources: statically when the calls fix
/// the values, at run time when the files do.
#[test]
fn a_dim_bound_twice_names_both_sources() {
    let d = Dir::new("twice");
    book(&d);
    d.write(
        "m.nn",
        "dim N, T
model M {
    input tokens: int[N, T]
    output logits = tokens |> embedding(40, 4) |> dense(40)
}
train t {
    model     = M()
    data      = text(\"book.txt\", seq = 20, vocab = 40)
    validate  = text(\"book.txt\", seq = 30, vocab = 40)
    loss      = cross_entropy(logits, next)
    optimizer = adam()
}
",
    );
    fails(
        &d.nnc(&["check", "m.nn"]),
        "static",
        &["E0404", "`T` is bound twice", "20 by `data = text", "30 by `validate = text"],
    );
    npy_f32(&d.0.join("x.npy"), &[4, 3], &[0.5; 12]);
    npy_f32(&d.0.join("y.npy"), &[4, 1], &[1.0; 4]);
    npy_f32(&d.0.join("vx.npy"), &[4, 5], &[0.5; 20]);
    d.write(
        "f.nn",
        "dim N, F
model M {
    input x: [N, F]
    input y: [N, 1]
    output p = dense(x, 1)
}
train t {
    model     = M()
    data      = npy(x = \"x.npy\", y = \"y.npy\")
    validate  = npy(x = \"vx.npy\", y = \"y.npy\")
    loss      = mse(p, y)
    optimizer = adam()
}
",
    );
    ok(&d.nnc(&["check", "f.nn"]), "check (the files decide F)");
    fails(
        &d.nnc(&["run", "f.nn", "--steps", "1"]),
        "run",
        &["dim `F`", "bound twice", "3 by", "x.npy", "5 by", "vx.npy"],
    );
}

/// Feature counts come from the data: a CSV glob and a `.npy` shape bind `F`, a range binds it statically.
#[test]
fn csv_and_npy_widths_bind_feature_dims() {
    let d = Dir::new("features");
    let mut csv = String::from("f1,f2,f3,y\n");
    for i in 0..16 {
        csv.push_str(&format!("{},{},{},{}\n", i, i * 2, i % 3, i % 2));
    }
    d.write("t.csv", &csv);
    npy_f32(&d.0.join("x.npy"), &[6, 5], &[0.25; 30]);
    npy_f32(&d.0.join("y.npy"), &[6, 1], &[1.0; 6]);
    let model = |data: &str| {
        format!(
            "dim N, F\nmodel M {{\n    input x: [N, F]\n    input y: [N, 1]\n    output p = dense(x, 1)\n}}\ntrain t \
                {{\n    model = M()\n    data = {data}\n    loss = mse(p, y)\n    optimizer = adam()\n    batch = 4\n\
                    }}\n"
        )
    };
    for (what, data, params) in [
        ("glob", "csv(\"t.csv\", x = \"f*\", y = \"y\")", "4 parameters"),
        ("range", "csv(\"t.csv\", x = 0..2, y = 3)", "3 parameters"),
        ("npy", "npy(x = \"x.npy\", y = \"y.npy\")", "6 parameters"),
    ] {
        d.write("m.nn", &model(data));
        ok(&d.nnc(&["check", "m.nn"]), what);
        let o = d.nnc(&["run", "m.nn", "--steps", "1"]);
        ok(&o, what);
        assert!(text(&o).contains(params), "{what}: {}", text(&o));
    }
}

/// The issue's third item, end to end: train a text model, then `predict` on raw text gives exactly what
/// it gives on the equivalent token ids — for words (`sentences`) and characters (`text`).
#[test]
fn predict_on_raw_text_matches_predict_on_token_ids() {
    let d = Dir::new("predict-text");
    reviews(&d);
    d.write("m.nn", SENTIMENT);
    ok(&d.nnc(&["run", "m.nn", "--steps", "3", "--save", "w.safetensors"]), "run");
    let t = saved_transforms(&d.0.join("w.safetensors"));
    let tok = &t["inputs"]["tokens"];
    assert_eq!(
        (tok["kind"].as_str(), tok["pad"].as_str(), t["version"].as_u64()),
        (Some("words"), Some("pre"), Some(1))
    );
    // The ids by hand: lower-cased words, 0 padding (before), 1 unknown, truncated to T keeping the end.
    let lines = [
        "A wonderful, WONDERFUL film!",
        "zebras and unicorns",
        "",
        "the worst film of the year by far and truly boring",
    ];
    d.write("in.txt", &lines.join("\n"));
    let vocab: Vec<&str> = tok["vocab"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    let len = tok["len"].as_u64().unwrap() as usize;
    let mut ids = Vec::new();
    for line in lines.iter().filter(|l| !l.is_empty()) {
        let lower = line.to_lowercase();
        let words: Vec<&str> = lower.split(|c: char| !c.is_alphabetic()).filter(|w| !w.is_empty()).collect();
        let mut row: Vec<i64> =
            words.iter().map(|w| vocab.iter().position(|v| v == w).map_or(1, |i| i as i64)).collect();
        if row.len() > len {
            row = row.split_off(row.len() - len);
        }
        ids.extend(std::iter::repeat_n(0, len - row.len()));
        ids.extend(row);
    }
    assert!(ids.contains(&1) && ids.contains(&0), "the case has unknown words and padding: {ids:?}");
    npy_i64(&d.0.join("in.npy"), &[3, len], &ids);
    ok(
        &d.nnc(&["predict", "m.nn", "--weights", "w.safetensors", "--input", "tokens=in.txt", "--output", "a.npy"]),
        "predict text",
    );
    ok(
        &d.nnc(&["predict", "m.nn", "--weights", "w.safetensors", "--input", "tokens=in.npy", "--output", "b.npy"]),
        "predict npy",
    );
    assert_eq!(npy_data(&d.0.join("a.npy")), npy_data(&d.0.join("b.npy")));
    assert_eq!(npy_data(&d.0.join("a.npy")).len(), 3 * 4);

    // Characters: the last `seq` characters of each line.
    book(&d);
    d.write(
        "c.nn",
        "dim N, V
model C {
    input tokens: int[N, 12]
    let h = one_hot(tokens, V) |> simple_rnn(8, sequences = true)
    output logits = dense(h, V)
}
train t {
    model     = C()
    data      = text(\"book.txt\", seq = 12)
    loss      = cross_entropy(logits, next)
    optimizer = adam()
    batch     = 8
}
",
    );
    ok(&d.nnc(&["run", "c.nn", "--steps", "2", "--save", "c.safetensors"]), "run chars");
    let t = saved_transforms(&d.0.join("c.safetensors"));
    let tok = &t["inputs"]["tokens"];
    assert_eq!((tok["kind"].as_str(), tok["len"].as_u64()), (Some("chars"), Some(12)));
    let vocab: Vec<char> =
        tok["vocab"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().chars().next().unwrap()).collect();
    let lines = ["So she was considering", "ALICE WAS BEGINNING TO"];
    d.write("c.txt", &lines.join("\r\n"));
    let ids: Vec<i64> = lines
        .iter()
        .flat_map(|l| {
            let l: Vec<char> = l.to_lowercase().chars().collect();
            l[l.len() - 12..].iter().map(|c| vocab.iter().position(|v| v == c).unwrap() as i64).collect::<Vec<_>>()
        })
        .collect();
    npy_i64(&d.0.join("c.npy"), &[2, 12], &ids);
    ok(
        &d.nnc(&["predict", "c.nn", "--weights", "c.safetensors", "--input", "tokens=c.txt", "--output", "a.npy"]),
        "predict chars",
    );
    ok(
        &d.nnc(&["predict", "c.nn", "--weights", "c.safetensors", "--input", "tokens=c.npy", "--output", "b.npy"]),
        "predict ids",
    );
    assert_eq!(npy_data(&d.0.join("a.npy")), npy_data(&d.0.join("b.npy")));
    // A character the book never had cannot be encoded: a clear error naming the line.
    d.write("bad.txt", "this line is long enough ∑\n");
    fails(
        &d.nnc(&["predict", "c.nn", "--weights", "c.safetensors", "--input", "tokens=bad.txt", "--output", "x.npy"]),
        "unknown character",
        &["bad.txt", "line 1", "not in the training text's vocabulary"],
    );
    d.write("short.txt", "too short\n");
    fails(
        &d.nnc(&["predict", "c.nn", "--weights", "c.safetensors", "--input", "tokens=short.txt", "--output", "x.npy"]),
        "short line",
        &["9 characters", "last 12"],
    );
}

/// CSV rows go through the training source's selector and z-score statistics.
#[test]
fn predict_reads_csv_rows_through_the_training_selector() {
    let d = Dir::new("predict-csv");
    let mut csv = String::from("id,Height,Width,Weight\n");
    for i in 0..20 {
        csv.push_str(&format!("{i},{},{},{}\n", 3 + i % 5, 1 + i % 3, 100 + 7 * i));
    }
    d.write("fish.csv", &csv);
    d.write(
        "f.nn",
        "dim N
model R {
    input x: [N, 2]
    input y: [N, 1]
    output p = dense(x, 1)
}
train t {
    model     = R()
    data      = csv(\"fish.csv\", x = [\"Height\", \"Width\"], y = [\"Weight\"], normalize = {x: zscore})
    loss      = mse(p, y)
    optimizer = adam()
    batch     = 4
}
",
    );
    ok(&d.nnc(&["run", "f.nn", "--steps", "2", "--save", "w.safetensors"]), "run");
    // New rows, columns in another order and without the target: picked by name.
    d.write("new.csv", "Width,id,Height\n2,0,4\n1,0,7\n");
    npy_f32(&d.0.join("new.npy"), &[2, 2], &[4.0, 2.0, 7.0, 1.0]);
    ok(
        &d.nnc(&["predict", "f.nn", "--weights", "w.safetensors", "--input", "x=new.csv", "--output", "a.npy"]),
        "predict csv",
    );
    ok(
        &d.nnc(&["predict", "f.nn", "--weights", "w.safetensors", "--input", "x=new.npy", "--output", "b.npy"]),
        "predict npy",
    );
    assert_eq!(npy_data(&d.0.join("a.npy")), npy_data(&d.0.join("b.npy")));
    d.write("wrong.csv", "Height,Length\n1,2\n");
    fails(
        &d.nnc(&["predict", "f.nn", "--weights", "w.safetensors", "--input", "x=wrong.csv", "--output", "a.npy"]),
        "missing column",
        &["wrong.csv", "no column `Width`"],
    );
    // Text for an input that never came from text.
    d.write("t.txt", "hello\n");
    fails(
        &d.nnc(&["predict", "f.nn", "--weights", "w.safetensors", "--input", "x=t.txt", "--output", "a.npy"]),
        "text for numbers",
        &["no vocabulary for `x`", ".npy"],
    );
}

/// Saved transforms are validated on load: a malformed or hostile `nnc.data` entry is a clear error.
#[test]
fn hostile_checkpoint_transforms_are_clear_errors() {
    let d = Dir::new("hostile-meta");
    reviews(&d);
    d.write("m.nn", SENTIMENT);
    ok(&d.nnc(&["run", "m.nn", "--steps", "1", "--save", "w.safetensors"]), "run");
    d.write("in.txt", "a wonderful film\n");
    let (header, data) = safetensors_parts(&d.0.join("w.safetensors"));
    let good = header["__metadata__"]["nnc.data"].as_str().unwrap().to_string();
    let long_vocab = format!(
        concat!(
            r#"{{"version": 1, "inputs": {{"tokens": {{"kind": "words", "vocab": ["<pad>", "<oov>", "{}"],"#,
            r#" "len": 3, "pad": "pre", "truncate": "pre"}}}}}}"#,
        ),
        "w".repeat(5000)
    );
    let cases: Vec<(&str, String, &str)> = vec![
        ("not JSON", "{\"version\": 1,".into(), "not valid JSON"),
        ("a newer version", good.replace("\"version\":1", "\"version\":7"), "version 7"),
        ("a huge length", good.replace("\"len\":8", "\"len\":1000000000000"), "`len`"),
        ("a zero dim", good.replace("\"T\":8", "\"T\":0"), "dim `T`"),
        ("a negative dim", good.replace("\"T\":8", "\"T\":-3"), "dim `T`"),
        ("a duplicated word", good.replacen("\"<oov>\",", "\"<oov>\",\"<oov>\",", 1), "twice"),
        ("an overlong word", long_vocab, "longer than"),
        ("an unknown kind", good.replace("\"words\"", "\"pixels\""), "unknown transform kind"),
        ("a vocabulary of numbers", good.replace("\"<pad>\"", "17"), "non-string"),
    ];
    for (what, value, want) in cases {
        let mut h = header.clone();
        h["__metadata__"]["nnc.data"] = serde_json::Value::String(value);
        write_safetensors(&d.0.join("bad.safetensors"), &h, &data);
        let o = d.nnc(&[
            "predict",
            "m.nn",
            "--weights",
            "bad.safetensors",
            "--input",
            "tokens=in.txt",
            "--output",
            "o.npy",
        ]);
        fails(&o, what, &["the checkpoint's data transforms", want]);
    }
    // A checkpoint without transforms still predicts from token ids; text needs the vocabulary.
    let mut h = header.clone();
    h["__metadata__"].as_object_mut().unwrap().remove("nnc.data");
    write_safetensors(&d.0.join("plain.safetensors"), &h, &data);
    npy_i64(&d.0.join("in.npy"), &[1, 8], &[0, 0, 0, 0, 0, 2, 3, 4]);
    ok(
        &d.nnc(&["predict", "m.nn", "--weights", "plain.safetensors", "--input", "tokens=in.npy", "--output", "o.npy"]),
        "ids without transforms",
    );
    fails(
        &d.nnc(&["predict", "m.nn", "--weights", "plain.safetensors", "--input", "tokens=in.txt", "--output", "o.npy"]),
        "text without transforms",
        &["no vocabulary for `tokens`"],
    );
}

/// `predict` feeds an `int[…]` input only integers (a float `.npy` was truncated silently), binds open
/// dims from its inputs, and refuses inputs whose shapes cannot fill the declared ones.
#[test]
fn predict_checks_its_inputs_against_the_declared_types() {
    let d = Dir::new("predict-types");
    reviews(&d);
    d.write("m.nn", SENTIMENT);
    ok(&d.nnc(&["run", "m.nn", "--steps", "1", "--save", "w.safetensors"]), "run");
    npy_f32(&d.0.join("f.npy"), &[1, 8], &[0.0, 0.0, 0.0, 0.0, 0.0, 2.5, 3.0, 4.0]);
    fails(
        &d.nnc(&["predict", "m.nn", "--weights", "w.safetensors", "--input", "tokens=f.npy", "--output", "o.npy"]),
        "float for int",
        &["input `tokens` is int", "2.5"],
    );
    // Another length than the checkpoint's T (bound by the training data) is refused.
    npy_i64(&d.0.join("long.npy"), &[1, 9], &[2; 9]);
    fails(
        &d.nnc(&["predict", "m.nn", "--weights", "w.safetensors", "--input", "tokens=long.npy", "--output", "o.npy"]),
        "other T",
        &["`T`", "bound twice", "8 by the checkpoint", "9 by"],
    );
    npy_f32(&d.0.join("scalar.npy"), &[], &[1.0]);
    fails(
        &d.nnc(&["predict", "m.nn", "--weights", "w.safetensors", "--input", "tokens=scalar.npy", "--output", "o.npy"]),
        "0-d",
        &["single number"],
    );
    fails(
        &d.nnc(&["predict", "m.nn", "--weights", "w.safetensors", "--input", "words=f.npy", "--output", "o.npy"]),
        "unknown input",
        &["no input `words`", "`tokens`"],
    );
}

/// `jsonl(…)` on hostile files: every malformed record is a clear error naming the file, the line and the key;
/// nothing panics, and a line nested past serde_json's depth limit is an error, not a stack overflow.
#[test]
fn hostile_jsonl_records_are_errors_with_line_numbers() {
    let d = Dir::new("jsonl");
    let model = |data: &str| {
        format!(
            "dim N\nmodel M {{\n    input x: [N, 2]\n    input y: [N, 1]\n    output p = dense(x, 1)\n}}\n\
             train t {{\n    model = M()\n    data = {data}\n    loss = mse(p, y)\n    batch = 2\n    epochs = 1\n}}\n"
        )
    };
    let good = "{\"x\": [1, 2], \"y\": 0}\n{\"x\": [3, 4], \"y\": 1}\n";
    let cases: &[(&str, String, &[&str])] = &[
        ("malformed", format!("{good}{{\"x\": [1, 2], \"y\": }}\n"), &["line 3", "not valid JSON"]),
        ("not-object", format!("{good}\n[1, 2]\n"), &["line 4", "must be a JSON object"]),
        ("string", format!("{good}{{\"x\": [1, \"two\"], \"y\": 0}}\n"), &["line 3", "`x` holds a string (\"two\")"]),
        ("null", format!("{{\"x\": [1, 2], \"y\": null}}\n{good}"), &["line 1", "`y` holds null"]),
        ("width", format!("{good}{{\"x\": [1, 2, 3], \"y\": 0}}\n"), &["line 3", "`x` has 3 values; line 1 gave it 2"]),
        ("missing", format!("{good}{{\"X\": [1, 2], \"y\": 0}}\n"), &["line 3", "no key `x`"]),
        ("overflow", format!("{{\"x\": [1, 1e300], \"y\": 0}}\n{good}"), &["line 1", "not a finite 32-bit number"]),
        (
            "huge-line",
            format!("{good}{{\"x\": [1, 2], \"y\": 0, \"pad\": \"{}\"}}\n{{\"x\": [1, 2]}}\n", "z".repeat(4 << 20)),
            &["line 4", "no key `y`"],
        ),
        (
            "deep",
            format!("{good}{{\"x\": {}1{}}}\n", "[".repeat(50_000), "]".repeat(50_000)),
            &["line 3", "not valid JSON"],
        ),
        ("empty", "\n\n".to_string(), &["no records"]),
    ];
    for (name, content, words) in cases {
        let file = format!("{name}.jsonl");
        d.write(&file, content);
        d.write("m.nn", &model(&format!("jsonl(\"{file}\", x = \"x\", y = \"y\")")));
        let o = d.nnc(&["run", "m.nn", "--out", "out"]);
        fails(&o, name, words);
        assert!(text(&o).contains(&file), "{name}: the message names the file:\n{}", text(&o));
        assert!(text(&o).len() < 4000, "{name}: the message quotes the file:\n{}", text(&o));
    }
    // Positions do not exist in a record: refused before the file is read.
    d.write("ok.jsonl", good);
    d.write("m.nn", &model("jsonl(\"ok.jsonl\", x = 0..2, y = \"y\")"));
    fails(&d.nnc(&["run", "m.nn", "--out", "out"]), "a range selector", &["0..2", "selects by position"]);
    // And the good file trains.
    d.write("m.nn", &model("jsonl(\"ok.jsonl\", x = \"x\", y = \"y\")"));
    ok(&d.nnc(&["run", "m.nn", "--out", "out"]), "a good jsonl file");
}
