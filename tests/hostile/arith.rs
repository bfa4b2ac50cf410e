//! Hostile inputs: arithmetic that lies (sizes that overflow or are not
//! positive), `--set` values that were ignored or saturated, and nesting deep
//! enough to overflow a recursive pass. Each case runs the release binary on
//! a generated file and checks the exit code, the diagnostic code and the
//! key words, and that nothing panicked or died of a signal.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use super::common::nnc_bin;

use super::lsp_client;

/// A scratch directory unique to one test, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(test: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("nnc-hostile-arith-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
    fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn nnc(dir: &Path, args: &[&str]) -> Output {
    Command::new(nnc_bin()).current_dir(dir).args(args).output().expect("run nnc")
}

/// Asserts a clean exit with `code` whose stderr holds every word of `words`.
fn expect(case: &str, out: &Output, code: i32, words: &[&str]) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked") && !stderr.contains("overflowed its stack"), "{case}: {stderr}");
    assert_eq!(out.status.code(), Some(code), "{case}: exit {:?}\n{stderr}", out.status);
    for w in words {
        assert!(stderr.contains(w), "{case}: `{w}` missing from\n{stderr}");
    }
}

/// A model with one input of type `[N, input]` and output `y = output`.
fn model(input: &str, output: &str) -> String {
    format!("dim N\nmodel M {{\n    input x: [N, {input}]\n    output y = {output}\n}}\n")
}

const MAX: &str = "9223372036854775807"; // 2^63 - 1
const P62: &str = "4611686018427387904"; // 2^62

/// Sizes that used to wrap around (or be accepted while not positive) are
/// errors at the expression or the layer that computes them.
#[test]
fn sizes_that_overflow_or_are_not_positive_are_check_errors() {
    let s = Scratch::new("sizes");
    let cases: Vec<(&str, String, &[&str])> = vec![
        // The cases: (2^63-1)² wrapped to 1, 2^63-1 + 1 to a negative size.
        ("product wraps to 1", model(&format!("{MAX} * {MAX}"), "dense(x, 2)"), &["E0314", "overflows", "3:"]),
        ("sum wraps negative", model(&format!("{MAX} + 1"), "dense(x, 2)"), &["E0314", "overflows"]),
        ("negative axis", model("-4", "dense(x, 2)"), &["E0315", "-4", "not positive"]),
        ("zero axis", model("0", "dense(x, 2)"), &["E0315", "not positive"]),
        ("difference below 1", model("4 - 8", "dense(x, 2)"), &["E0315", "-4"]),
        ("negated minimum", model(&format!("-(-{MAX} - 1)"), "dense(x, 2)"), &["E0314"]),
        (
            "declared dim plus one",
            format!("dim N, D = {MAX}\nmodel M {{\n    input x: [N, D + 1]\n    output y = x\n}}\n"),
            &["E0314"],
        ),
        ("flatten of 3e9 x 3e9 x 3", model("3000000000, 3000000000, 3", "flatten(x)"), &["E0314", "element count"]),
        ("element count of a type", model(&format!("{P62}, 4"), "x"), &["E0314", "element count"]),
        ("upsample by 2^62", model("4, 4, 1", &format!("upsample(x, {P62})")), &["E0314", "upsample", "height"]),
        ("upsample then flatten", model("4, 4, 1", "upsample(x, 3000000000) |> flatten"), &["E0314", "upsample"]),
        ("huge dilation", model("8, 1", &format!("conv1d(x, 2, 3, dilation = {P62})")), &["E0314", "conv1d", "length"]),
        ("huge padding", model("8, 1", &format!("conv1d(x, 2, 3, padding = {P62})")), &["E0314", "conv1d"]),
        (
            "huge padding and stride",
            model("8, 8, 1", "max_pool(x, 2, stride = 4611686018427387903, padding = 4611686018427387903)"),
            &["E0314", "pool"],
        ),
        ("transposed conv stride", model("8, 8, 1", &format!("conv2d_transpose(x, 2, 3, stride = {P62})")), &["E0314"]),
        ("dense kernel count", model("4000000000", "dense(x, 4000000000)"), &["E0314", "parameter `kernel`"]),
        ("lstm units", model("10, 8", &format!("lstm(x, {P62})")), &["E0314", "lstm"]),
        ("lstm kernels", model("10, 8", "lstm(x, 1000000000000)"), &["E0314", "recurrent_kernel"]),
        (
            "attention heads",
            model("10, 8", &format!("multi_head_attention(x, heads = {P62}, key_dim = 1)")),
            &["E0314", "query.kernel"],
        ),
        (
            "embedding table",
            "dim N\nmodel M {\n    input x: int[N, 4]\n    output y = embedding(x, 4000000000, 4000000000)\n}\n".into(),
            &["E0314", "embeddings"],
        ),
        ("concat", model(P62, "concat(x, x)"), &["E0314", "concat"]),
        ("reshape target", model("4", &format!("reshape(x, [N, {MAX}, 2])")), &["E0314", "reshape"]),
        (
            "model total",
            model("2000000000", "x |> dense(2000000000) |> dense(2000000000) |> dense(2000000000)"),
            &["E0314", "parameters"],
        ),
        ("repeat beyond its cap", model("8", "repeat(x, 10001, dense(8))"), &["E0202", "10001", "at most 10000"]),
        ("nested repeats", model("8", "repeat(x, 1000, repeat(1000, dense(8)))"), &["E0202", "parameter tensors"]),
    ];
    for (case, text, words) in cases {
        let f = s.write("m.nn", &text);
        let f = f.to_str().unwrap();
        expect(case, &nnc(&s.0, &["check", f]), 1, words);
        expect(&format!("{case} (summary)"), &nnc(&s.0, &["summary", f]), 1, words);
    }
    // Repeat at its cap is fine, and exact (no silent cap at a lower count).
    let f = s.write("ok.nn", &model("8", "repeat(x, 10000, relu)"));
    expect("repeat at the cap", &nnc(&s.0, &["check", f.to_str().unwrap()]), 0, &[]);
}

/// A train block around `output` on `[N, input]`, with synthetic data.
fn trainable(input: &str, output: &str) -> String {
    format!("{}{TRAIN}", model(input, output))
}

const TRAIN: &str = "train t {
    model = M()
    data = synthetic(n = 8)
    loss = mse(y, 0)
    optimizer = sgd()
    batch = 4
}
";

/// `nnc run` on sizes that used to panic (capacity overflow, "shape too
/// large") fails with a clear error at check time or before allocating.
#[test]
fn run_with_absurd_sizes_fails_cleanly() {
    let s = Scratch::new("run");
    let cases: Vec<(&str, String, &[&str])> = vec![
        ("dense 10^18", trainable("4", "dense(x, 1000000000000000000)"), &["too large"]),
        ("lstm 2^62", trainable("10, 4", &format!("lstm(x, {P62})")), &["E0314"]),
        (
            "attention 2^62 heads",
            trainable("10, 4", &format!("multi_head_attention(x, heads = {P62}, key_dim = 1)")),
            &["E0314"],
        ),
        ("flatten 3e9 x 3e9", trainable("3000000000, 3000000000", "flatten(x) |> dense(1)"), &["too large"]),
    ];
    for (case, text, words) in cases {
        let f = s.write("r.nn", &text);
        let out = s.0.join("out");
        let out = nnc(&s.0, &["run", f.to_str().unwrap(), "--steps", "1", "--out", out.to_str().unwrap()]);
        expect(case, &out, 1, words);
    }
}

/// `--set` names a model parameter and gives it a value of its kind.
#[test]
fn set_rejects_unknown_names_and_non_integers() {
    let s = Scratch::new("set");
    let text = "dim N\nmodel M(hidden = 8, rate = 0.1) {\n    input x: [N, 4]\n    output y = dense(x, hidden) |> \
        dropout(rate)\n}\n";
    let f = s.write("s.nn", text);
    let f = f.to_str().unwrap();
    let cases: &[(&str, i32, &[&str])] = &[
        ("hiden=128", 2, &["no model has a parameter `hiden`", "did you mean `hidden`"]),
        ("hidden=2.5", 1, &["E0203", "`hidden` takes an integer"]),
        ("hidden=1e30", 1, &["E0203", "takes an integer"]),
        ("hidden=99999999999999999999", 2, &["does not fit in a 64-bit integer"]),
        ("hidden=inf", 2, &["not a finite number"]),
        ("hidden=-3", 1, &["E0202"]),
        ("hidden=16", 0, &[]),
        ("hidden=16.0", 0, &[]),
        ("rate=0.5", 0, &[]),
    ];
    for (set, code, words) in cases {
        expect(set, &nnc(&s.0, &["check", f, "--set", set]), *code, words);
        expect(&format!("{set} (summary)"), &nnc(&s.0, &["summary", f, "--set", set]), *code, words);
    }
    // run and predict check the file (and the names) before anything else.
    let t = s.write("t.nn", &format!("{text}{TRAIN}"));
    let t = t.to_str().unwrap();
    let out = s.0.join("out");
    let run = nnc(&s.0, &["run", t, "--steps", "1", "--out", out.to_str().unwrap(), "--set", "hiden=128"]);
    expect("run --set hiden", &run, 1, &["did you mean `hidden`"]);
    let run = nnc(&s.0, &["run", t, "--steps", "1", "--out", out.to_str().unwrap(), "--set", "hidden=2.5"]);
    expect("run --set hidden=2.5", &run, 1, &["E0203"]);
    let w = s.0.join("w.safetensors");
    let y = s.0.join("y.npy");
    let args = ["predict", t, "--weights", w.to_str().unwrap(), "--input", "x=x.npy", "--output", y.to_str().unwrap()];
    let predict = nnc(&s.0, &[&args[..], &["--set", "hiden=128"]].concat());
    expect("predict --set hiden", &predict, 1, &["did you mean `hidden`"]);
}

/// Deep nesting of every kind: past the limits a syntax error (E0001), never
/// a stack overflow, in `check`, `summary` and `fmt`.
#[test]
fn deep_nesting_is_a_syntax_error_in_every_command() {
    let s = Scratch::new("deep");
    let deep: Vec<(&str, String)> = vec![
        ("30,000 parentheses", model("4", &format!("{}x{}", "(".repeat(30_000), ")".repeat(30_000)))),
        ("30,000 calls", model("4", &format!("{}x{}", "relu(".repeat(30_000), ")".repeat(30_000)))),
        ("30,000 lists", model("4", &format!("x + {}1{}", "[".repeat(30_000), "]".repeat(30_000)))),
        ("100,000 pipe stages", model("4", &format!("x{}", " |> relu".repeat(100_000)))),
        ("100,000 sum terms", model("4", &vec!["x"; 100_000].join(" + "))),
        ("100,000 product factors", model("4", &vec!["x"; 100_000].join(" * "))),
        ("50,000 indices", model("4", &format!("x{}", "[0:4]".repeat(50_000)))),
        ("100,000 dim terms", model(&vec!["1"; 100_000].join(" + "), "x")),
        (
            "50,000 else-ifs",
            format!(
                "dim N\nmodel M(k = 1) {{\n    input x: [N, 4]\n    if k == 0 {{ output y = x }}{}\n}}\n",
                " else if k == 0 { output y = x }".repeat(50_000)
            ),
        ),
    ];
    for (case, text) in &deep {
        let f = s.write("d.nn", text);
        let f = f.to_str().unwrap();
        expect(case, &nnc(&s.0, &["check", f]), 1, &["E0001", "nested too deeply"]);
        expect(&format!("{case} (summary)"), &nnc(&s.0, &["summary", f]), 1, &["E0001", "nested too deeply"]);
        expect(&format!("{case} (fmt)"), &nnc(&s.0, &["fmt", "--check", f]), 1, &["syntax error"]);
    }
    // Chains that fold (unary minus) build no depth at all; just inside the
    // limit everything passes.
    let ok: Vec<(&str, String)> = vec![
        ("100,000 minus signs", model("4", &format!("{}x", "- ".repeat(100_000)))),
        ("250 pipe stages", model("4", &format!("x{}", " |> relu".repeat(250)))),
        ("95 nested calls", model("4", &format!("{}x{}", "relu(".repeat(95), ")".repeat(95)))),
    ];
    for (case, text) in &ok {
        let f = s.write("ok.nn", text);
        let f = f.to_str().unwrap();
        expect(case, &nnc(&s.0, &["check", f]), 0, &[]);
        expect(&format!("{case} (summary)"), &nnc(&s.0, &["summary", f]), 0, &[]);
    }
}

/// The language server answers after a deeply nested document (it used to
/// die of a stack overflow, taking the editor's session with it).
#[test]
fn language_server_survives_deep_nesting() {
    use serde_json::json;
    let s = Scratch::new("lsp");
    let mut c = lsp_client::Client::start(&nnc_bin(), &s.0.join("cache"));
    c.initialize(&s.0);
    let docs = [
        model("4", &format!("{}x{}", "(".repeat(30_000), ")".repeat(30_000))),
        model("4", &format!("x{}", " |> relu".repeat(100_000))),
        model("4", &vec!["x"; 100_000].join(" + ")),
    ];
    for (i, text) in docs.iter().enumerate() {
        let uri = lsp_client::uri(&s.0.join(format!("deep{i}.nn")));
        c.open(&uri, text);
        let diags = c.diagnostics(&uri, None);
        assert!(diags.iter().any(|d| d["code"] == "E0001"), "{diags:?}");
        // It still answers requests on the document.
        let hover = json!({"textDocument": {"uri": uri}, "position": {"line": 2, "character": 11}});
        let r = c.request_raw("textDocument/hover", hover);
        assert!(r.get("error").is_none(), "{r}");
        let r = c.request_raw(
            "textDocument/formatting",
            json!({"textDocument": {"uri": uri}, "options": {"tabSize": 4, "insertSpaces": true}}),
        );
        assert!(r.get("id").is_some(), "{r}");
    }
    assert_eq!(c.shutdown(), Some(0));
}
