//! IR filetests (docs/src/ir-filetests.md): each `tests/ir/filetests/*.ir` file
//! states an IR function in the text `nnc ir` prints, inputs, and expected
//! outputs or gradients as `;` comments. The driver runs every file through
//! the reference executor (in f64 and f32) and through the compiled program
//! (fusion + Cranelift kernels) and compares each with the expectation, so a
//! fused kernel can be tested from a ten-line file.

#![forbid(unsafe_code)]

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use ndarray::{ArrayD, IxDyn};
use nnc_compiler::ir::{self, DType, Func, Id, Op, autodiff};
use nnc_runtime::exec::{self, Tensor};
use nnc_runtime::program::Program;

/// A literal tensor: row-major values and the shape its nesting gives.
#[derive(Clone, Debug)]
struct Lit {
    shape: Vec<usize>,
    values: Vec<f64>,
}

/// One `; run:` line: named values in, named values expected out.
struct Run {
    line: usize,
    inputs: Vec<(String, Lit)>,
    expect: Vec<(String, Lit)>,
}

/// A parsed filetest.
struct FileTest {
    func: Func,
    /// `; test: grad NAME`: the scalar output to differentiate.
    grad_of: Option<String>,
    finite_difference: bool,
    tolerance: f64,
    /// `; kernels: K`: the compiled program has K fused kernels.
    kernels: Option<usize>,
    runs: Vec<Run>,
}

/// Runs one filetest; `Err` lists every mismatch as `path:line: message`.
fn run_file(path: &Path) -> Result<usize, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    run_text(&path.display().to_string(), &text)
}

/// Runs a filetest's text; returns how many comparisons it made.
fn run_text(name: &str, text: &str) -> Result<usize, String> {
    let mut t = parse_file(text).map_err(|e| format!("{name}:{e}"))?;
    if t.runs.is_empty() {
        return Err(format!("{name}: no `; run:` line (a filetest must check something)"));
    }
    let wrt = add_gradients(&mut t).map_err(|e| format!("{name}: {e}"))?;
    let mut failures = Vec::new();
    let mut compared = 0;
    for run in &t.runs {
        match check_run(&t, run, &wrt) {
            Ok(n) => compared += n,
            Err(es) => failures.extend(es.into_iter().map(|e| format!("{name}:{}: {e}", run.line))),
        }
    }
    if failures.is_empty() { Ok(compared) } else { Err(failures.join("\n")) }
}

/// For `; test: grad L`: appends the backward graph and an output
/// `grad NAME` for every parameter and f32 input. Returns (name, node).
fn add_gradients(t: &mut FileTest) -> Result<Vec<(String, Id)>, String> {
    let Some(loss_name) = &t.grad_of else { return Ok(vec![]) };
    let loss = t.func.output(loss_name).ok_or_else(|| format!("no output `{loss_name}` to differentiate"))?;
    if !t.func.shape(loss).is_empty() {
        return Err(format!("`{loss_name}` has shape {:?}; gradients are of a scalar", t.func.shape(loss)));
    }
    let mut wrt = Vec::new();
    for (i, n) in t.func.nodes.iter().enumerate() {
        match &n.op {
            Op::Param(p) => wrt.push((t.func.params[*p].name.clone(), i as Id)),
            Op::Input(name) if n.dtype == DType::F32 => wrt.push((name.clone(), i as Id)),
            _ => {}
        }
    }
    let ids: Vec<Id> = wrt.iter().map(|(_, id)| *id).collect();
    let grads = autodiff::grad(&mut t.func, loss, &ids);
    for ((name, _), g) in wrt.iter().zip(grads) {
        t.func.outputs.push((format!("grad {name}"), g));
    }
    Ok(wrt)
}

/// A run's inputs by name and its parameters in declaration order.
type Bound = (HashMap<String, Tensor<f64>>, Vec<ArrayD<f64>>);

/// A flat tensor: its shape and values.
type Flat = (Vec<usize>, Vec<f64>);

/// Parameters and inputs of `f` from a run line's values.
fn bind(f: &Func, run: &Run) -> Result<Bound, String> {
    let given = |name: &str| run.inputs.iter().find(|(n, _)| n == name).map(|(_, l)| l);
    let array = |name: &str, shape: &[usize]| -> Result<ArrayD<f64>, String> {
        let l = given(name).ok_or_else(|| format!("no value for `{name}`"))?;
        if l.shape != shape {
            return Err(format!("`{name}` is declared {shape:?}, the run gives {:?}", l.shape));
        }
        Ok(ArrayD::from_shape_vec(IxDyn(shape), l.values.clone()).expect("literal size"))
    };
    let params = f.params.iter().map(|p| array(&p.name, &p.shape)).collect::<Result<Vec<_>, _>>()?;
    let mut inputs = HashMap::new();
    for n in &f.nodes {
        if let Op::Input(name) = &n.op {
            let a = array(name, &n.shape)?;
            let t = match n.dtype {
                DType::F32 => Tensor::F(a),
                DType::I64 => Tensor::I(a.mapv(|v| v as i64)),
            };
            inputs.insert(name.clone(), t);
        }
    }
    for (name, _) in &run.inputs {
        let known = f.params.iter().any(|p| p.name == *name) || inputs.contains_key(name);
        if !known {
            return Err(format!("`{name}` is neither an input nor a parameter of the function"));
        }
    }
    Ok((inputs, params))
}

fn to_f32(t: &Tensor<f64>) -> Tensor<f32> {
    match t {
        Tensor::F(a) => Tensor::F(a.mapv(|v| v as f32)),
        Tensor::I(a) => Tensor::I(a.clone()),
    }
}

/// Runs one line's inputs on every backend and compares the expectations.
fn check_run(t: &FileTest, run: &Run, wrt: &[(String, Id)]) -> Result<usize, Vec<String>> {
    let f = &t.func;
    let (inputs, params) = bind(f, run).map_err(|e| vec![e])?;
    let mut outputs: Vec<(&str, Vec<Flat>)> = Vec::new();
    let keep: Vec<Id> = f.outputs.iter().map(|(_, id)| *id).collect();
    let uniform = &mut || 0.5;
    let ref64 = exec::run_keeping(f, &inputs, &params, uniform, false, &keep).map_err(|e| vec![format!("{e}")])?;
    let inputs32: HashMap<String, Tensor<f32>> = inputs.iter().map(|(k, v)| (k.clone(), to_f32(v))).collect();
    let params32: Vec<ArrayD<f32>> = params.iter().map(|p| p.mapv(|v| v as f32)).collect();
    let ref32 = exec::run_keeping(f, &inputs32, &params32, uniform, false, &keep).map_err(|e| vec![format!("{e}")])?;
    let mut jit = nnc_jit::Jit::new().map_err(|e| vec![format!("{e:?}")])?;
    let mut prog = Program::build(f, &keep, &mut jit).map_err(|e| vec![format!("{e}")])?;
    let param_refs: Vec<&ArrayD<f32>> = params32.iter().collect();
    prog.run(&inputs32, &param_refs, uniform).map_err(|e| vec![format!("{e}")])?;
    let value = |t: Tensor<f64>| {
        let a = t.float();
        (a.shape().to_vec(), a.iter().copied().collect::<Vec<f64>>())
    };
    let value32 = |t: Tensor<f32>| value(to_f32_back(&t));
    for backend in ["reference f64", "reference f32", "compiled"] {
        let vals = f
            .outputs
            .iter()
            .map(|(_, id)| match backend {
                "reference f64" => value(ref64[*id as usize].clone()),
                "reference f32" => value32(ref32[*id as usize].clone()),
                _ => value32(prog.tensor(*id, &param_refs)),
            })
            .collect();
        outputs.push((backend, vals));
    }
    let mut errors = Vec::new();
    let mut compared = 0;
    for (name, lit) in &run.expect {
        let Some(k) = f.outputs.iter().position(|(n, _)| n == name) else {
            let names: Vec<&str> = f.outputs.iter().map(|(n, _)| n.as_str()).collect();
            errors.push(format!("no output `{name}` (outputs: {})", names.join(", ")));
            continue;
        };
        for (backend, vals) in &outputs {
            compared += 1;
            if let Some(e) = compare(&vals[k], lit, t.tolerance) {
                errors.push(format!("{backend}: `{name}` {e}"));
            }
        }
    }
    if let Some(kernels) = t.kernels
        && prog.kernels != kernels
    {
        errors.push(format!("compiled: {} fused kernels, expected {kernels}", prog.kernels));
    }
    if t.finite_difference {
        errors.extend(finite_differences(t, &inputs, &params, &ref64, wrt));
        compared += wrt.len();
    }
    if errors.is_empty() { Ok(compared) } else { Err(errors) }
}

fn to_f32_back(t: &Tensor<f32>) -> Tensor<f64> {
    match t {
        Tensor::F(a) => Tensor::F(a.mapv(f64::from)),
        Tensor::I(a) => Tensor::I(a.clone()),
    }
}

/// `None` when `got` matches `want`: same shape, each value within
/// `tol · max(1, |want|)`, NaN where NaN is expected, infinities equal.
fn compare(got: &(Vec<usize>, Vec<f64>), want: &Lit, tol: f64) -> Option<String> {
    if got.0 != want.shape {
        return Some(format!("has shape {:?}, expected {:?}", got.0, want.shape));
    }
    for (i, (&g, &w)) in got.1.iter().zip(&want.values).enumerate() {
        let ok = if w.is_nan() {
            g.is_nan()
        } else if w.is_infinite() {
            g == w
        } else {
            (g - w).abs() <= tol * w.abs().max(1.0)
        };
        if !ok {
            return Some(format!("element {i} is {g}, expected {w} (tolerance {tol}); got {:?}", got.1));
        }
    }
    None
}

/// Central differences of the loss (reference executor, f64) against the
/// gradients autodiff built, for every element of every parameter and input.
fn finite_differences(
    t: &FileTest,
    inputs: &HashMap<String, Tensor<f64>>,
    params: &[ArrayD<f64>],
    ref64: &[Tensor<f64>],
    wrt: &[(String, Id)],
) -> Vec<String> {
    let f = &t.func;
    let loss = f.output(t.grad_of.as_deref().unwrap_or_default()).expect("checked in add_gradients");
    let eval = |inputs: &HashMap<String, Tensor<f64>>, params: &[ArrayD<f64>]| -> f64 {
        let v = exec::run_keeping(f, inputs, params, &mut || 0.5, false, &[loss]).expect("ran once already");
        v[loss as usize].float().iter().copied().next().unwrap_or(f64::NAN)
    };
    let h = 1e-6;
    let mut errors = Vec::new();
    for (name, id) in wrt {
        let g = ref64[f.output(&format!("grad {name}")).expect("added") as usize].float();
        let param = match &f.nodes[*id as usize].op {
            Op::Param(p) => Some(*p),
            _ => None,
        };
        for (i, &gi) in g.iter().enumerate() {
            let at = |d: f64| {
                let (mut inputs, mut params) = (inputs.clone(), params.to_vec());
                let a = match param {
                    Some(p) => &mut params[p],
                    None => match inputs.get_mut(name) {
                        Some(Tensor::F(a)) => a,
                        _ => unreachable!("f32 inputs are float tensors"),
                    },
                };
                if let Some(x) = a.iter_mut().nth(i) {
                    *x += d;
                }
                eval(&inputs, &params)
            };
            let fd = (at(h) - at(-h)) / (2.0 * h);
            if (fd - gi).abs() > t.tolerance.max(1e-6) * fd.abs().max(1.0) {
                errors.push(format!("grad `{name}` element {i}: autodiff {gi}, finite differences {fd}"));
            }
        }
    }
    errors
}

// ----- the filetest text -----

fn parse_file(text: &str) -> Result<FileTest, String> {
    let func = ir::parse::parse(text).map_err(|e| e.to_string())?;
    let mut t =
        FileTest { func, grad_of: None, finite_difference: false, tolerance: 1e-5, kernels: None, runs: vec![] };
    let mut kind = None;
    for (ln, line) in text.lines().enumerate() {
        let Some(body) = line.trim_start().strip_prefix(';') else { continue };
        let Some((key, rest)) = body.split_once(':') else { continue };
        let rest = rest.trim();
        let err = |m: String| format!("{}: {m}", ln + 1);
        match key.trim() {
            "test" => {
                kind = Some(match rest.split_whitespace().collect::<Vec<_>>()[..] {
                    ["run"] => None,
                    ["grad", loss] => Some(loss.trim_matches('"').to_string()),
                    _ => return Err(err(format!("expected `; test: run` or `; test: grad OUTPUT`, found `{rest}`"))),
                });
            }
            "tolerance" => {
                t.tolerance = rest
                    .parse()
                    .ok()
                    .filter(|v: &f64| *v >= 0.0)
                    .ok_or_else(|| err(format!("bad tolerance `{rest}`")))?
            }
            "kernels" => {
                let k = rest.parse().map_err(|_| err(format!("expected `; kernels: N`, found `{rest}`")))?;
                t.kernels = Some(k);
            }
            "grad" if rest == "finite-difference" => t.finite_difference = true,
            "grad" => return Err(err(format!("expected `; grad: finite-difference`, found `{rest}`"))),
            "run" => {
                let (ins, outs) = rest.split_once("==").ok_or_else(|| err("expected `inputs == outputs`".into()))?;
                let inputs = bindings(ins).map_err(|e| err(format!("inputs: {e}")))?;
                let expect = bindings(outs).map_err(|e| err(format!("outputs: {e}")))?;
                if expect.is_empty() {
                    return Err(err("a run line must expect at least one output".into()));
                }
                t.runs.push(Run { line: ln + 1, inputs, expect });
            }
            _ => {}
        }
    }
    match kind {
        None => Err("1: the file must start with `; test: run` or `; test: grad OUTPUT`".into()),
        Some(g) => {
            if t.finite_difference && g.is_none() {
                return Err("`; grad: finite-difference` needs `; test: grad OUTPUT`".into());
            }
            t.grad_of = g;
            Ok(t)
        }
    }
}

/// `name = value, "grad w" = value, …`.
fn bindings(s: &str) -> Result<Vec<(String, Lit)>, String> {
    let mut c = Lex { s: s.trim(), pos: 0 };
    let mut out = Vec::new();
    while !c.done() {
        let name = c.name()?;
        c.expect('=')?;
        out.push((name, c.literal()?));
        if !c.done() {
            c.expect(',')?;
        }
    }
    Ok(out)
}

struct Lex<'a> {
    s: &'a str,
    pos: usize,
}

impl Lex<'_> {
    fn ws(&mut self) {
        self.pos = self.s.len() - self.s[self.pos..].trim_start().len();
    }
    fn done(&mut self) -> bool {
        self.ws();
        self.pos == self.s.len()
    }
    fn peek(&mut self) -> Option<char> {
        self.ws();
        self.s[self.pos..].chars().next()
    }
    fn expect(&mut self, ch: char) -> Result<(), String> {
        if self.peek() == Some(ch) {
            self.pos += 1;
            Ok(())
        } else {
            Err(format!("expected `{ch}` at `{}`", &self.s[self.pos..]))
        }
    }
    fn name(&mut self) -> Result<String, String> {
        if self.peek() == Some('"') {
            let rest = &self.s[self.pos + 1..];
            let end = rest.find('"').ok_or("unclosed `\"`")?;
            self.pos += end + 2;
            return Ok(rest[..end].to_string());
        }
        let rest = &self.s[self.pos..];
        let n = rest.len() - rest.trim_start_matches(|c: char| c.is_alphanumeric() || "_.".contains(c)).len();
        if n == 0 {
            return Err(format!("expected a name at `{rest}`"));
        }
        self.pos += n;
        Ok(rest[..n].to_string())
    }
    /// A number or a nested list of numbers (all rows the same length).
    fn literal(&mut self) -> Result<Lit, String> {
        if self.peek() != Some('[') {
            let rest = &self.s[self.pos..];
            let n = rest.len() - rest.trim_start_matches(|c: char| c.is_alphanumeric() || "+-.".contains(c)).len();
            let v: f64 = rest[..n].parse().map_err(|_| format!("expected a number or `[` at `{rest}`"))?;
            self.pos += n;
            return Ok(Lit { shape: vec![], values: vec![v] });
        }
        self.pos += 1;
        let mut items: Vec<Lit> = Vec::new();
        while self.peek() != Some(']') {
            items.push(self.literal()?);
            if self.peek() != Some(']') {
                self.expect(',')?;
            }
        }
        self.pos += 1;
        let inner = items.first().map(|l| l.shape.clone()).unwrap_or_default();
        if items.iter().any(|l| l.shape != inner) {
            return Err("rows of a tensor literal differ in shape".into());
        }
        let mut shape = vec![items.len()];
        shape.extend(inner);
        Ok(Lit { shape, values: items.into_iter().flat_map(|l| l.values).collect() })
    }
}

fn filetests() -> Vec<PathBuf> {
    let dir = common::root().join("tests/ir/filetests");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "ir"))
        .collect();
    v.sort();
    v
}

#[test]
fn ir_filetests_pass() {
    let files = filetests();
    assert!(files.len() >= 8, "only {} filetests", files.len());
    let mut failures = Vec::new();
    for path in &files {
        match run_file(path) {
            Ok(n) => assert!(n > 0, "{}: compared nothing", path.display()),
            Err(e) => failures.push(e),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The driver cannot pass vacuously: a wrong expectation fails on every
/// backend, and so do a wrong gradient, a missing output and a file without
/// run lines.
#[test]
fn driver_rejects_wrong_expectations() {
    let path = common::root().join("tests/ir/filetests/fail/wrong_expectation.ir");
    let e = run_file(&path).expect_err("a wrong expectation must fail");
    for backend in ["reference f64", "reference f32", "compiled"] {
        assert!(e.contains(&format!("{backend}: `y` element 1")), "{e}");
    }
    let grad = "; test: grad loss\n%0: f32[2] = input \"x\"\n%1: f32[2] = square %0\n%2: f32[] = sum [0] %1\n\
                output \"loss\" = %2\n; run: x = [1, 2] == loss = 5, \"grad x\" = [2, 5]\n";
    let e = run_text("grad", grad).expect_err("a wrong gradient must fail");
    assert!(e.contains("`grad x` element 1 is 4, expected 5"), "{e}");
    assert!(run_text("ok", &grad.replace("[2, 5]", "[2, 4]")).is_ok());
    let e = run_text("missing", &grad.replace("\"grad x\"", "\"grad y\"")).expect_err("unknown output");
    assert!(e.contains("no output `grad y`"), "{e}");
    let e = run_text("empty", "; test: run\n%0: f32[] = fill 1\noutput \"y\" = %0\n").expect_err("no run line");
    assert!(e.contains("no `; run:` line"), "{e}");
    let e = run_text("shape", "; test: run\n%0: f32[2] = input \"x\"\noutput \"y\" = %0\n; run: x = [1] == y = [1]\n")
        .expect_err("wrong input shape");
    assert!(e.contains("declared [2]"), "{e}");
    let two = "; test: run\n; kernels: 2\n%0: f32[2] = input \"x\"\n%1: f32[2] = exp %0\n%2: f32[2] = tanh %1\n\
               output \"y\" = %2\n; run: x = [0, 0] == y = [0.7615942, 0.7615942]\n";
    let e = run_text("kernels", two).expect_err("exp → tanh is one kernel");
    assert!(e.contains("1 fused kernels, expected 2"), "{e}");
}

/// Finite differences pass for autodiff's gradients and catch a wrong one
/// (the gradient output pointed at another node of the same shape).
#[test]
fn finite_differences_check_gradients() {
    let text = "; test: grad loss\n; grad: finite-difference\n%0: f32[3] = input \"x\"\n%1: f32[3] = tanh %0\n\
                %2: f32[] = sum [0] %1\noutput \"loss\" = %2\n; run: x = [0.1, -0.5, 2] == loss = 0.601578\n";
    run_text("fd", text).unwrap_or_else(|e| panic!("{e}"));
    let mut t = parse_file(text).unwrap();
    let wrt = add_gradients(&mut t).unwrap();
    let g = t.func.outputs.iter_mut().find(|(n, _)| n == "grad x").unwrap();
    g.1 = 1; // tanh x instead of 1 - tanh² x
    let e = check_run(&t, &t.runs[0], &wrt).expect_err("a wrong gradient must fail").join("\n");
    assert!(e.contains("grad `x` element 0: autodiff"), "{e}");
}
