//! Hostile inputs: runtime — checkpoints that do not fit the model, inputs
//! that do not fit `predict`, runs too large for the machine, and the
//! surprises of a training run (temporary files, history, counts, labels,
//! batch-norm statistics).
//!
//! Every fixture lives in one temporary directory per test: the `.nn` file,
//! its data, `--out` and the checkpoints (inside `--out`), so the cases do
//! not depend on where files may be read or written.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Command, Output};

use ndarray::{ArrayD, IxDyn};

use crate::common::nnc_bin;

/// A fresh directory, removed on drop.
struct Dir(PathBuf);

impl Dir {
    fn new(tag: &str) -> Dir {
        let p = std::env::temp_dir().join(format!("nnc-hostile-rt-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(p.join("out")).unwrap();
        Dir(p)
    }
    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
    fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, text).unwrap();
        p
    }
    fn nnc(&self, args: &[&str]) -> Output {
        Command::new(nnc_bin()).current_dir(&self.0).args(args).output().unwrap()
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn text(o: &Output) -> (String, String) {
    (String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned())
}

/// The run failed with exit code `code` (not a signal, not a panic) and
/// stderr holds every one of `words`.
#[track_caller]
fn fails_with(o: &Output, code: i32, words: &[&str]) {
    let (out, err) = text(o);
    assert_eq!(o.status.code(), Some(code), "exit status {:?}\nstdout:\n{out}\nstderr:\n{err}", o.status);
    assert!(!err.contains("panicked") && !err.contains("internal failure"), "a panic:\n{err}");
    for w in words {
        assert!(err.contains(w), "stderr lacks {w:?}:\n{err}");
    }
}

#[track_caller]
fn succeeds(o: &Output) -> (String, String) {
    let (out, err) = text(o);
    assert!(o.status.success(), "exit status {:?}\nstdout:\n{out}\nstderr:\n{err}", o.status);
    assert!(!err.contains("panicked"), "{err}");
    (out, err)
}

/// A model with a size parameter and a train block on synthetic data.
const MLP: &str = r#"dim N

model M(hidden: int = 8) {
    input x: [N, 4]
    let h = x |> dense(hidden) |> relu
    output o = dense(h, 3)
}

/// Another model with other names.
model Other {
    input x: [N, 4]
    output y = x |> dense(5, name = "fc") |> dense(3, name = "head")
}

train t {
    model     = M()
    data      = synthetic(n = 64)
    loss      = mse(o, 0)
    optimizer = adam()
    batch     = 16
    epochs    = 1
}

train other {
    model     = Other()
    data      = synthetic(n = 64)
    loss      = mse(y, 0)
    optimizer = adam()
    batch     = 16
    epochs    = 1
}
"#;

fn npy(dir: &Dir, name: &str, a: &ArrayD<f32>) -> String {
    nnc_runtime::io::write_npy(&dir.path(name), a).unwrap();
    name.to_string()
}

fn ones(shape: &[usize]) -> ArrayD<f32> {
    ArrayD::from_elem(IxDyn(shape), 1.0)
}

/// Trains `train` (with `--set` overrides) and saves its checkpoint as `out/<name>`.
fn trained(dir: &Dir, train: &str, set: &[&str], name: &str) -> String {
    let ckpt = format!("out/{name}");
    let mut args = vec!["run", "m.nn", "--train", train, "--out", "out", "--save", &ckpt];
    for s in set {
        args.extend(["--set", s]);
    }
    succeeds(&dir.nnc(&args));
    ckpt
}

fn predict(dir: &Dir, weights: &str, inputs: &[&str], extra: &[&str]) -> Output {
    let mut args = vec!["predict", "m.nn", "--weights", weights, "--output", "out/y.npy"];
    for i in inputs {
        args.extend(["--input", i]);
    }
    args.extend(extra);
    dir.nnc(&args)
}

#[test]
fn predict_refuses_a_checkpoint_whose_shapes_differ_from_the_model() {
    // Trained with hidden = 16, predicted with the default 8: used to print a
    // result and then abort in glibc ("double free or corruption"); 1000 rows segfaulted.
    let dir = Dir::new("shapes");
    dir.write("m.nn", MLP);
    let w16 = trained(&dir, "t", &["hidden=16"], "w16.safetensors");
    for rows in [2, 1000] {
        let x = npy(&dir, "x.npy", &ones(&[rows, 4]));
        let o = predict(&dir, &w16, &[&format!("x={x}")], &[]);
        fails_with(
            &o,
            1,
            &[
                "does not fit model `M`",
                "3 mismatches",
                "tensor `h.dense.kernel`: expected shape [4, 8], found [4, 16]",
                "tensor `h.dense.bias`: expected shape [8], found [16]",
                "tensor `o.dense.kernel`: expected shape [8, 3], found [16, 3]",
            ],
        );
        assert!(!dir.path("out/y.npy").exists(), "no output is written");
    }
    // The same checkpoint with the matching override predicts.
    let x = npy(&dir, "x.npy", &ones(&[5, 4]));
    let (out, _) = succeeds(&predict(&dir, &w16, &[&format!("x={x}")], &["--set", "hidden=16"]));
    assert!(out.contains("wrote `o` [5, 3]"), "{out}");
}

#[test]
fn predict_refuses_a_transposed_kernel_of_equal_size() {
    // [4, 8] stored as [8, 4]: the same number of values, so nothing crashed
    // and the prediction was silently wrong.
    let dir = Dir::new("transposed");
    dir.write("m.nn", MLP);
    let w = trained(&dir, "t", &[], "w.safetensors");
    let (mut tensors, meta) = nnc_runtime::checkpoint::load(&dir.path(&w)).unwrap();
    let k = tensors.remove("h.dense.kernel").unwrap();
    tensors.insert("h.dense.kernel".into(), k.reversed_axes().as_standard_layout().into_owned());
    nnc_runtime::checkpoint::save(&dir.path("out/t.safetensors"), &tensors, &meta).unwrap();
    let x = npy(&dir, "x.npy", &ones(&[3, 4]));
    fails_with(
        &predict(&dir, "out/t.safetensors", &[&format!("x={x}")], &[]),
        1,
        &["1 mismatch", "tensor `h.dense.kernel`: expected shape [4, 8], found [8, 4]"],
    );
}

#[test]
fn predict_with_another_models_checkpoint_names_what_is_missing() {
    // Used to panic with "no entry found for key".
    let dir = Dir::new("other");
    dir.write("m.nn", MLP);
    let w = trained(&dir, "other", &[], "other.safetensors");
    let x = npy(&dir, "x.npy", &ones(&[3, 4]));
    fails_with(
        &predict(&dir, &w, &[&format!("x={x}")], &[]),
        1,
        &[
            "does not fit model `M`",
            "parameter `h.dense.kernel` [4, 8]: no tensor in the file",
            "tensor `fc.kernel` [4, 5]: the model has no such parameter",
        ],
    );
}

/// A safetensors file written by hand: (name, dtype, shape, raw bytes).
fn safetensors(tensors: &[(&str, &str, &[usize], Vec<u8>)]) -> Vec<u8> {
    let mut header = String::from("{");
    let mut data: Vec<u8> = Vec::new();
    for (i, (name, dtype, shape, bytes)) in tensors.iter().enumerate() {
        let dims: Vec<String> = shape.iter().map(usize::to_string).collect();
        if i > 0 {
            header.push(',');
        }
        header.push_str(&format!(
            "\"{name}\":{{\"dtype\":\"{dtype}\",\"shape\":[{}],\"data_offsets\":[{},{}]}}",
            dims.join(","),
            data.len(),
            data.len() + bytes.len()
        ));
        data.extend(bytes);
    }
    header.push('}');
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend(header.as_bytes());
    out.extend(data);
    out
}

#[test]
fn predict_refuses_integer_tensors_for_float_parameters() {
    let dir = Dir::new("dtype");
    dir.write("m.nn", MLP);
    let i64s = |n: usize| (0..n).flat_map(|_| 1i64.to_le_bytes()).collect::<Vec<u8>>();
    let f32s = |n: usize| (0..n).flat_map(|_| 0.5f32.to_le_bytes()).collect::<Vec<u8>>();
    let bytes = safetensors(&[
        ("h.dense.bias", "F32", &[8], f32s(8)),
        ("h.dense.kernel", "I64", &[4, 8], i64s(32)),
        ("o.dense.bias", "F16", &[3], vec![0; 6]),
        ("o.dense.kernel", "F32", &[8, 3], f32s(24)),
    ]);
    std::fs::write(dir.path("out/int.safetensors"), bytes).unwrap();
    let x = npy(&dir, "x.npy", &ones(&[2, 4]));
    fails_with(
        &predict(&dir, "out/int.safetensors", &[&format!("x={x}")], &[]),
        1,
        &["1 mismatch", "tensor `h.dense.kernel`: expected a float element type (F32, F16, BF16 or F64), found I64"],
    );
}

#[test]
fn resume_refuses_an_optimizer_slot_of_the_wrong_shape() {
    // Used to reach ndarray's shape assertion inside the optimizer.
    let dir = Dir::new("slots");
    dir.write("m.nn", MLP);
    let w = trained(&dir, "t", &[], "w.safetensors");
    let path = dir.path(&w);
    let (list, meta) = nnc_runtime::io::load_checkpoint(&path).unwrap();
    let mut weights = BTreeMap::new();
    let mut slots = Vec::new();
    for (name, v) in list {
        match name.strip_prefix("@optimizer/") {
            Some(rest) => {
                let (k, p) = rest.split_once('/').unwrap();
                let v = if p == "o.dense.kernel" && k == "1" { ArrayD::zeros(IxDyn(&[3, 8])) } else { v };
                slots.push((k.parse().unwrap(), p.to_string(), v));
            }
            None => {
                weights.insert(name, v);
            }
        }
    }
    nnc_runtime::checkpoint::save_training(&path, &weights, &slots, &meta).unwrap();
    let o = dir.nnc(&["run", "m.nn", "--train", "t", "--out", "out", "--epochs", "2", "--resume", &w]);
    fails_with(
        &o,
        1,
        &[
            "cannot resume from",
            "tensor `@optimizer/1/o.dense.kernel` (for parameter `o.dense.kernel`): expected shape [8, 3], found [3, \
                8]",
        ],
    );
    // A slot for a parameter the model does not have.
    slots.retain(|(_, p, _)| p != "o.dense.kernel");
    slots.push((0, "ghost.kernel".into(), ArrayD::zeros(IxDyn(&[2]))));
    nnc_runtime::checkpoint::save_training(&path, &weights, &slots, &meta).unwrap();
    let o = dir.nnc(&["run", "m.nn", "--train", "t", "--out", "out", "--epochs", "2", "--resume", &w]);
    fails_with(&o, 1, &["tensor `@optimizer/0/ghost.kernel` [2]: the model has no such parameter"]);
}

#[test]
fn predict_refuses_a_0d_input() {
    // Used to panic with "index out of bounds".
    let dir = Dir::new("zero-d");
    dir.write("m.nn", MLP);
    let w = trained(&dir, "t", &[], "w.safetensors");
    let x = npy(&dir, "x.npy", &ArrayD::from_elem(IxDyn(&[]), 3.0));
    fails_with(
        &predict(&dir, &w, &[&format!("x={x}")], &[]),
        1,
        &["input `x`", "holds a single number", "the first axis must count samples"],
    );
}

const TOKENS: &str = r#"dim N

model Tok {
    input ids: int[N, 5]
    output o = ids |> embedding(10, 4) |> flatten |> dense(2)
}

train t {
    model     = Tok()
    data      = synthetic(n = 32)
    loss      = mse(o, 0)
    optimizer = adam()
    batch     = 8
    epochs    = 1
}
"#;

#[test]
fn predict_converts_float_token_ids_only_when_they_are_exact_integers() {
    // A float `.npy` for an `int[N, T]` input: converted when every value is
    // an integer (NumPy often writes ids as floats), an error otherwise —
    // it used to be truncated silently.
    let dir = Dir::new("int-input");
    dir.write("m.nn", TOKENS);
    succeeds(&dir.nnc(&["run", "m.nn", "--out", "out", "--save", "out/w.safetensors"]));
    let ids =
        ArrayD::from_shape_vec(IxDyn(&[2, 5]), vec![0.0f32, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]).unwrap();
    let x = npy(&dir, "ids.npy", &ids);
    let (out, _) = succeeds(&predict(&dir, "out/w.safetensors", &[&format!("ids={x}")], &[]));
    assert!(out.contains("wrote `o` [2, 2]"), "{out}");
    for (bad, shown) in [(2.5f32, "2.5"), (f32::NAN, "NaN"), (1e30, "1000000015047466200000000000000")] {
        let mut a = ids.clone();
        a[[1, 3]] = bad;
        let x = npy(&dir, "bad.npy", &a);
        fails_with(
            &predict(&dir, "out/w.safetensors", &[&format!("ids={x}")], &[]),
            1,
            &["input `ids` is int", &format!("sample 1 holds {shown}")],
        );
    }
    // An integer file with an id outside the table is an error, not a crash.
    nnc_runtime::io::write_npy(&dir.path("big.npy"), &ndarray::arr2(&[[0i64, 1, 2, 3, 10]])).unwrap();
    let o = predict(&dir, "out/w.safetensors", &["ids=big.npy"], &[]);
    fails_with(&o, 1, &["10"]);
}

/// A model of `params` size as a `.nn` file (`dense(units)` on `features`).
fn wide(features: &str, units: &str) -> String {
    format!(
        "dim N\n\nmodel W {{\n    input x: [N, {features}]\n    output o = x |> dense({units})\n}}\n\n\
         train t {{\n    model = W()\n    data = synthetic(n = 4)\n    loss = mse(o, 0)\n    optimizer = adam()\n    \
             batch = 4\n    epochs = 1\n}}\n"
    )
}

#[test]
fn runs_too_large_for_memory_are_refused_before_allocating() {
    let dir = Dir::new("memory");
    // dense(100000) on 100,000 features: 10¹⁰ parameters (40 GB, 80 GB of Adam's
    // moments): refused with the estimate against the machine, and against --max-memory.
    dir.write("m.nn", &wide("100000", "100000"));
    let started = std::time::Instant::now();
    let o = dir.nnc(&["run", "m.nn", "--out", "out"]);
    fails_with(
        &o,
        1,
        &[
            "this needs about",
            "parameters 40.0 GB",
            "optimizer state 80.0 GB",
            "available on this machine",
            "--max-memory",
            "--no-memory-check",
        ],
    );
    let o = dir.nnc(&["run", "m.nn", "--out", "out", "--max-memory", "1G"]);
    fails_with(&o, 1, &["more than 1.0 GB (the limit set by --max-memory)"]);
    // 4·10⁹ weights (5·10⁹ parameters with the bias): used to grow to 11 GB over 45 s before dying.
    dir.write("m.nn", &wide("4", "1000000000"));
    let o = dir.nnc(&["run", "m.nn", "--out", "out"]);
    fails_with(&o, 1, &["this needs about", "parameters 20.0 GB"]);
    assert!(started.elapsed().as_secs() < 60, "refusing must not take long: {:?}", started.elapsed());
    // A small run passes under a limit that fits it, and with the check off.
    dir.write("m.nn", &wide("4", "3"));
    succeeds(&dir.nnc(&["run", "m.nn", "--out", "out", "--max-memory", "100M"]));
    succeeds(&dir.nnc(&["run", "m.nn", "--out", "out", "--no-memory-check"]));
    // Bad sizes are usage errors.
    for bad in ["lots", "-1G", "0"] {
        let o = dir.nnc(&["run", "m.nn", "--out", "out", "--max-memory", bad]);
        assert_eq!(o.status.code(), Some(2), "{bad}: {}", text(&o).1);
    }
}

#[test]
fn sizes_that_overflow_are_errors_not_capacity_overflow_panics() {
    // `dense(x, 10^18)` and `lstm(x, 2^62)`: the size overflows. Whether the
    // checker (arithmetic limits) or the runtime (checked sizes) refuses it,
    // it is a clear error with exit code 1 and never a panic.
    let dir = Dir::new("overflow");
    let lstm = "dim N\n\nmodel L {\n    input x: [N, 3, 2]\n    output o = x |> lstm(4611686018427387904)\n}\n\n\
        train t {\n    model = L()\n    data = synthetic(n = 4)\n    loss = mse(o, 0)\n    optimizer = adam()\n    \
            batch = 2\n    epochs = 1\n}\n";
    for (name, src) in [
        ("dense", wide("4", "1000000000000000000")),
        ("dense-2^62", wide("4", "4611686018427387904")),
        ("lstm", lstm.to_string()),
    ] {
        dir.write("m.nn", &src);
        for extra in [&[][..], &["--no-memory-check"][..]] {
            let mut args = vec!["run", "m.nn", "--out", "out"];
            args.extend(extra);
            let o = dir.nnc(&args);
            let (_, err) = text(&o);
            assert_eq!(o.status.code(), Some(1), "{name} {extra:?}: {err}");
            assert!(
                !err.contains("panicked") && !err.contains("capacity overflow") && !err.contains("internal failure"),
                "{name}: {err}"
            );
            assert!(
                ["too large", "overflow", "needs about", "does not fit"].iter().any(|w| err.contains(w)),
                "{name}: {err}"
            );
        }
    }
}

#[test]
fn the_next_save_removes_a_killed_saves_temporary_file() {
    let dir = Dir::new("tmp");
    dir.write("m.nn", MLP);
    // What a save killed between write and rename leaves: our naming, a dead pid.
    let stale = dir.path("out/.w.safetensors.tmp.4194999.7");
    std::fs::write(&stale, b"half a checkpoint").unwrap();
    trained(&dir, "t", &[], "w.safetensors");
    assert!(!stale.exists(), "the stale temporary file is removed");
    let left: Vec<String> = std::fs::read_dir(dir.path("out"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(left.iter().all(|n| !n.contains(".tmp.")), "{left:?}");
    // A failing save (its target is a directory) leaves no temporary file either.
    std::fs::create_dir_all(dir.path("out/blocked.safetensors/inner")).unwrap();
    let o = dir.nnc(&["run", "m.nn", "--train", "t", "--out", "out", "--save", "out/blocked.safetensors"]);
    fails_with(&o, 1, &["blocked.safetensors"]);
    let left: Vec<String> = std::fs::read_dir(dir.path("out"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(left.iter().all(|n| !n.contains(".tmp.")), "{left:?}");
}

#[test]
fn history_csv_grows_by_one_line_per_epoch_and_survives_a_kill() {
    let dir = Dir::new("history");
    dir.write("m.nn", MLP);
    // An earlier run's history is replaced, not continued.
    std::fs::write(dir.path("out/history.csv"), "epoch,loss,seconds\n1,9,0\n2,9,0\n3,9,0\n4,9,0\n").unwrap();
    let mut child = Command::new(nnc_bin())
        .current_dir(&dir.0)
        .args(["run", "m.nn", "--train", "t", "--out", "out", "--epochs", "100000"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let out = std::io::BufReader::new(child.stdout.take().unwrap());
    // Epoch k's line is appended before epoch k + 1 starts.
    let seen = std::io::BufRead::lines(out).map_while(Result::ok).any(|l| l.starts_with("epoch 4/"));
    child.kill().unwrap(); // SIGKILL: nothing runs at exit
    child.wait().unwrap();
    assert!(seen, "the run printed epochs");
    let csv = std::fs::read_to_string(dir.path("out/history.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "epoch,loss,seconds", "{csv}");
    assert!(lines.len() >= 4, "at least three epochs were written before the kill:\n{csv}");
    for (i, l) in lines[1..].iter().enumerate() {
        assert!(l.starts_with(&format!("{},", i + 1)), "line {i}: {l}\n{csv}");
        assert!(!l.contains(",9,"), "the old file's rows are gone:\n{csv}");
    }
}

#[test]
fn counts_are_singular_for_one() {
    let dir = Dir::new("plural");
    dir.write("m.nn", MLP);
    let (out, _) = succeeds(&dir.nnc(&["run", "m.nn", "--train", "t", "--out", "out", "--epochs", "1"]));
    assert!(out.contains(", 1 epoch, "), "{out}");
    for wrong in ["1 epochs", " 1 samples", " 1 parameters", " 1 fused kernels", " 1 library ops"] {
        assert!(!out.contains(wrong), "{wrong}: {out}");
    }
    let (out, _) = succeeds(&dir.nnc(&["run", "m.nn", "--train", "t", "--out", "out", "--epochs", "2"]));
    assert!(out.contains(", 2 epochs, "), "{out}");
}

#[test]
fn out_of_range_labels_name_the_file_column_row_and_classes() {
    // Used to fail mid-epoch with "index 7 outside a table of 3 rows".
    let dir = Dir::new("labels");
    dir.write(
        "m.nn",
        r#"dim N

model C {
    input x: [N, 2]
    input y: int[N]
    output logits = x |> dense(3)
}

train t {
    model     = C()
    data      = csv("cls.csv", x = 0..2, y = 2)
    loss      = cross_entropy(logits, y)
    optimizer = adam()
    batch     = 4
    epochs    = 1
}
"#,
    );
    dir.write("cls.csv", "a,b,label\n0.1,0.2,0\n0.3,0.1,2\n0.5,0.5,1\n0.9,0.1,7\n0.2,0.2,1\n");
    let o = dir.nnc(&["run", "m.nn", "--out", "out"]);
    fails_with(&o, 1, &["`y`", "cls.csv", "column 2", "holds 7 at data row 3", "0..=2", "3 classes"]);
    // Labels counted from 1: the hint says so.
    dir.write("cls.csv", "a,b,label\n0.1,0.2,1\n0.3,0.1,2\n0.5,0.5,3\n");
    let o = dir.nnc(&["run", "m.nn", "--out", "out"]);
    fails_with(&o, 1, &["holds 3 at data row 2", "numbered from 1"]);
    dir.write("cls.csv", "a,b,label\n0.1,0.2,0\n0.3,0.1,-1\n");
    fails_with(&dir.nnc(&["run", "m.nn", "--out", "out"]), 1, &["holds -1 at data row 1"]);
    // In range: trains.
    dir.write("cls.csv", "a,b,label\n0.1,0.2,0\n0.3,0.1,2\n0.5,0.5,1\n");
    succeeds(&dir.nnc(&["run", "m.nn", "--out", "out"]));
}

#[test]
fn batch_norm_statistics_that_cannot_settle_are_warned_about_once() {
    let dir = Dir::new("bn");
    dir.write(
        "m.nn",
        r#"dim N

model B {
    input x: [N, 4]
    output o = x |> dense(8) |> batch_norm |> relu |> dense(8) |> batch_norm |> dense(1)
}

train t {
    model     = B()
    data      = synthetic(n = 64)
    loss      = mse(o, 0)
    optimizer = adam()
    batch     = 16
    epochs    = 2
}
"#,
    );
    // 2 epochs × 4 batches = 8 steps: 0.99^8 = 0.923 of the statistics are still the initial ones.
    let (_, err) = succeeds(&dir.nnc(&["run", "m.nn", "--out", "out"]));
    assert_eq!(err.matches("warning: batch_norm").count(), 1, "one warning for both layers (same momentum):\n{err}");
    assert!(err.contains("momentum 0.99") && err.contains("8 steps") && err.contains("0.99^8 = 0.923"), "{err}");
    // 0.05^(1/8) = 0.6877…: the suggestion, rounded down, does settle.
    assert!(err.contains("momentum = 0.687 or lower"), "{err}");
    // Enough steps: no warning (0.99^400 = 0.018).
    let (_, err) = succeeds(&dir.nnc(&["run", "m.nn", "--out", "out", "--epochs", "100"]));
    assert!(!err.contains("warning: batch_norm"), "{err}");
}

/// Binary-level cases of hostile checkpoint and `.npy` bytes given to
/// `predict` (the library-level fuzzing is `tests/fuzz.rs`).
#[test]
fn hostile_checkpoint_and_npy_bytes_are_clear_errors() {
    let dir = Dir::new("bytes");
    dir.write("m.nn", MLP);
    let w = trained(&dir, "t", &[], "w.safetensors");
    let good = std::fs::read(dir.path(&w)).unwrap();
    let x = npy(&dir, "x.npy", &ones(&[2, 4]));
    let header_len = u64::from_le_bytes(good[..8].try_into().unwrap()) as usize;
    let header = String::from_utf8(good[8..8 + header_len].to_vec()).unwrap();
    let with_header = |h: &str| {
        let mut b = (h.len() as u64).to_le_bytes().to_vec();
        b.extend(h.as_bytes());
        b.extend(&good[8 + header_len..]);
        b
    };
    let f32s = |n: usize| vec![0u8; n * 4];
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", vec![]),
        ("huge header length", {
            let mut b = u64::MAX.to_le_bytes().to_vec();
            b.extend(&good[8..]);
            b
        }),
        ("header longer than the file", {
            let mut b = ((good.len() as u64) * 2).to_le_bytes().to_vec();
            b.extend(&good[8..]);
            b
        }),
        ("non-UTF-8 header", {
            let mut b = good.clone();
            b[10] = 0xff;
            b[11] = 0xfe;
            b
        }),
        (
            "offsets out of bounds",
            with_header(&header.replacen("\"data_offsets\":[0,", "\"data_offsets\":[99999999,", 1)),
        ),
        ("shape lies about the data", with_header(&header.replacen("\"shape\":[8]", "\"shape\":[800000000000]", 1))),
        (
            "overlapping offsets",
            raw(
                concat!(
                    r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"#,
                    r#""data_offsets":[4,12]}}"#,
                ),
                &f32s(3),
            ),
        ),
        (
            "offsets past the data",
            raw(r#"{"h.dense.bias":{"dtype":"F32","shape":[8],"data_offsets":[0,18446744073709551615]}}"#, &f32s(8)),
        ),
        (
            "duplicate names",
            raw(
                concat!(
                    r#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"#,
                    r#""data_offsets":[4,8]}}"#,
                ),
                &f32s(2),
            ),
        ),
        ("header not JSON", raw("{\"a\": [1, 2", &f32s(1))),
        ("unknown dtype", safetensors(&[("h.dense.bias", "Q9", &[8], f32s(8))])),
        ("sub-byte dtype", safetensors(&[("h.dense.bias", "F4", &[8], vec![0; 4])])),
        ("truncated", good[..good.len() - 7].to_vec()),
    ];
    for (what, bytes) in &cases {
        std::fs::write(dir.path("out/bad.safetensors"), bytes).unwrap();
        let o = predict(&dir, "out/bad.safetensors", &[&format!("x={x}")], &[]);
        let (_, err) = text(&o);
        assert_eq!(o.status.code(), Some(1), "{what}: {err}");
        assert!(!err.contains("panicked") && !err.contains("internal failure"), "{what}: {err}");
        assert!(err.contains("bad.safetensors"), "{what}: the file is named: {err}");
    }
    hostile_npy_inputs(&dir, &w);
}

/// `.npy` files whose header lies, given to `predict` with the checkpoint `w`.
fn hostile_npy_inputs(dir: &Dir, w: &str) {
    let npy_bytes = |header: &str, body: &[u8]| {
        let mut h = header.to_string();
        while !(10 + h.len() + 1).is_multiple_of(64) {
            h.push(' ');
        }
        h.push('\n');
        let mut b = b"\x93NUMPY\x01\x00".to_vec();
        b.extend((h.len() as u16).to_le_bytes());
        b.extend(h.as_bytes());
        b.extend(body);
        b
    };
    let body = vec![0u8; 32];
    let npys: Vec<(&str, Vec<u8>)> = vec![
        (
            "shape larger than the data",
            npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (2000000000, 4), }", &body),
        ),
        (
            "shape that overflows",
            npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (18446744073709551615, 4), }", &body),
        ),
        ("negative dim", npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (-2, 4), }", &body)),
        ("structured dtype", npy_bytes("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2, 4), }", &body)),
        ("unknown dtype", npy_bytes("{'descr': '<c8', 'fortran_order': False, 'shape': (2, 2), }", &body)),
        ("header length past the end", {
            let mut b = npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 4), }", &body);
            b[8] = 0xff;
            b[9] = 0xff;
            b
        }),
        ("non-UTF-8 header", {
            let mut b = npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 4), }", &body);
            b[12] = 0xff;
            b
        }),
        ("rows of another shape", npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2, 2), }", &body)),
        ("no rows", npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (0, 4), }", &[])),
    ];
    for (what, bytes) in &npys {
        std::fs::write(dir.path("bad.npy"), bytes).unwrap();
        let o = predict(dir, w, &["x=bad.npy"], &[]);
        let (_, err) = text(&o);
        assert!(!err.contains("panicked") && !err.contains("internal failure"), "{what}: {err}");
        // `.npy` values are reshaped to the input's declared shape (like a table's columns in training), so
        // rows of 2×2 fill an input of 4 features.
        let reshaped = matches!(*what, "no rows" | "rows of another shape");
        assert!(o.status.code() == Some(1) || (o.status.success() && reshaped), "{what}: {err}");
    }
}

/// A safetensors file from a header text and data bytes.
fn raw(header: &str, data: &[u8]) -> Vec<u8> {
    let mut b = (header.len() as u64).to_le_bytes().to_vec();
    b.extend(header.as_bytes());
    b.extend(data);
    b
}

#[test]
fn predict_checks_every_input_before_running() {
    let dir = Dir::new("inputs");
    dir.write("m.nn", MLP);
    let w = trained(&dir, "t", &[], "w.safetensors");
    let x = npy(&dir, "x.npy", &ones(&[2, 4]));
    fails_with(&predict(&dir, &w, &["nope=x.npy"], &[]), 1, &["model `M` has no input `nope` (its inputs: `x`)"]);
    fails_with(&predict(&dir, &w, &[], &[]), 1, &["no data for input `x`"]);
    let x3 = npy(&dir, "x3.npy", &ones(&[2, 3]));
    fails_with(
        &predict(&dir, &w, &[&format!("x={x3}")], &[]),
        1,
        &["x3.npy", "3 values per sample, input `x` [4] needs 4"],
    );
    succeeds(&predict(&dir, &w, &[&format!("x={x}")], &[]));
    // predict has the memory check too.
    fails_with(
        &predict(&dir, &w, &[&format!("x={x}")], &["--max-memory", "100"]),
        1,
        &["this needs about", "--max-memory"],
    );
}
