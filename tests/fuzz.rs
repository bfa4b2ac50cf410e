//! Property test: no input makes the front end panic.
//!
//! Feeds the parser and checker random bytes and random mutations of every
//! `.nn` file in the repository. A short run is part of `cargo test`; a long
//! one is `NNC_FUZZ_SECONDS=600 cargo test --release --test fuzz -- --nocapture`.
//! A crashing input is written to `target/fuzz-crash-*.nn`; once fixed, it
//! goes to `tests/fuzz_regressions/`, which every run replays.

#![forbid(unsafe_code)]

mod common;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use nnc_compiler::{CheckOptions, LoadError, Loader, analyse};

/// Serves nothing: `use`d files are "not found", data files "missing".
struct NoFiles;

impl Loader for NoFiles {
    fn load(&self, _: &Path) -> Result<String, LoadError> {
        Err(LoadError::NotFound)
    }
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*: deterministic for a given seed.
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const FRAGMENTS: &[&str] = &[
    "(",
    ")",
    "[",
    "]",
    "{",
    "}",
    ",",
    "=",
    "|>",
    ":",
    "->",
    "..",
    "let ",
    "dim ",
    "model ",
    "block ",
    "train ",
    "input ",
    "output ",
    "return ",
    "if ",
    "else ",
    "frozen ",
    "step ",
    "0",
    "-1",
    "1e-3",
    "99999999999999999999",
    "N",
    "x",
    "relu",
    "dense(",
    "conv2d(",
    "lstm(",
    "reshape(",
    "concat(",
    "\"",
    "//",
    "///",
    "\n",
    " ",
    "*",
    "/",
    "+",
    "-",
    "int[",
    "same",
    "valid",
    "true",
    "ceil(",
    "use std.blocks\n",
    "use \"x.nn\"\n",
    "\u{0}",
    "é",
    "×",
];

fn mutate(rng: &mut Rng, src: &[u8], corpus: &[Vec<u8>]) -> Vec<u8> {
    let mut out = src.to_vec();
    for _ in 0..=rng.below(8) {
        let at = rng.below(out.len() + 1);
        match rng.below(7) {
            0 => {
                let end = (at + rng.below(16)).min(out.len());
                out.drain(at..end);
            }
            1 => {
                let f = FRAGMENTS[rng.below(FRAGMENTS.len())].as_bytes();
                out.splice(at..at, f.iter().copied());
            }
            2 if at < out.len() => out[at] = rng.next() as u8,
            3 => {
                // Splice a random slice of another file.
                let other = &corpus[rng.below(corpus.len())];
                let s = rng.below(other.len() + 1);
                let e = (s + rng.below(200)).min(other.len());
                out.splice(at..at, other[s..e].iter().copied());
            }
            4 => {
                let end = (at + rng.below(64)).min(out.len());
                let dup: Vec<u8> = out[at..end].to_vec();
                out.splice(at..at, dup);
            }
            5 => out.truncate(at),
            _ => {
                let n = rng.below(4) + 1;
                let bytes: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
                out.splice(at..at, bytes);
            }
        }
    }
    out
}

fn run_one(bytes: &[u8], n: usize) {
    let text = String::from_utf8_lossy(bytes).into_owned();
    let result = catch_unwind(AssertUnwindSafe(|| {
        let a = analyse("fuzz.nn", None, text.clone(), &NoFiles, &CheckOptions::default());
        // Rendering positions must work for every diagnostic too.
        for d in &a.result.diagnostics {
            let f = a.program.file(d.primary.file);
            let _ = f.lines.position(&f.text, d.primary.span.end as usize);
        }
        for m in &a.result.models {
            let _ = nnc_compiler::summary::render(m);
        }
    }));
    if result.is_err() {
        let path = root().join(format!("target/fuzz-crash-{n}.nn"));
        let _ = std::fs::write(&path, bytes);
        panic!("the front end panicked; input saved to {}", path.display());
    }
}

#[test]
fn front_end_never_panics() {
    // The checker recurses over expressions; give it the stack the CLI gives it.
    let worker = std::thread::Builder::new().stack_size(256 << 20).spawn(|| {
        let mut corpus: Vec<Vec<u8>> = Vec::new();
        for dir in ["examples", "stdlib", "tests/diagnostics", "tests/check_ok"] {
            for p in nn_files(dir) {
                corpus.push(std::fs::read(p).expect("read corpus file"));
            }
        }
        assert!(corpus.len() > 50);
        // Inputs that once crashed the front end are always replayed first.
        for (i, p) in nn_files("tests/fuzz_regressions").iter().enumerate() {
            run_one(&std::fs::read(p).expect("read regression"), usize::MAX - i);
        }
        let budget = std::env::var("NNC_FUZZ_SECONDS").ok().and_then(|s| s.parse::<u64>().ok());
        let deadline = budget.map(|s| Instant::now() + Duration::from_secs(s));
        let seed = std::env::var("NNC_FUZZ_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0x9E37_79B9_7F4A_7C15);
        let mut rng = Rng(seed);
        let mut n = 0usize;
        loop {
            let input = if rng.below(10) == 0 {
                let len = rng.below(400);
                (0..len).map(|_| rng.next() as u8).collect()
            } else {
                let base = corpus[rng.below(corpus.len())].clone();
                mutate(&mut rng, &base, &corpus)
            };
            run_one(&input, n);
            n += 1;
            let done = match deadline {
                Some(d) => Instant::now() >= d,
                None => n >= 1500,
            };
            if done {
                break;
            }
        }
        println!("fuzz: {n} inputs without a panic");
    });
    worker.expect("spawn").join().expect("fuzz worker panicked");
}

/// The model the checkpoint fuzzer loads into: a dense layer, an embedding
/// (integer input) and batch norm, so shapes, dtypes and int inputs all matter.
const PREDICT_MODEL: &str = "dim N\n\nmodel P {\n    input x: [N, 4]\n    input ids: int[N, 3]\n    \
    let e = ids |> embedding(6, 2) |> flatten\n    output o = concat(x |> dense(5) |> batch_norm, e, axis = 1) |> \
        dense(2)\n}\n";

/// A structure-aware mutation of a safetensors file: its header is parsed
/// as JSON-ish text and one field is changed (shapes, dtypes, offsets, the
/// length prefix, names), or bytes are flipped, cut or added.
fn mutate_safetensors(rng: &mut Rng, good: &[u8]) -> Vec<u8> {
    let hlen = u64::from_le_bytes(good[..8].try_into().expect("8 bytes")) as usize;
    let header = String::from_utf8_lossy(&good[8..8 + hlen]).into_owned();
    let data = &good[8 + hlen..];
    let numbers = [
        "0",
        "1",
        "2",
        "3",
        "4",
        "5",
        "8",
        "65536",
        "4294967296",
        "9223372036854775807",
        "18446744073709551615",
        "-1",
        "1.5",
    ];
    let dtypes = ["F32", "F16", "BF16", "F64", "I64", "I32", "I8", "U8", "BOOL", "F4", "F8_E4M3", "C64", "X"];
    let rebuild = |h: &str, d: &[u8]| {
        let mut b = (h.len() as u64).to_le_bytes().to_vec();
        b.extend(h.as_bytes());
        b.extend(d);
        b
    };
    match rng.below(9) {
        // A number in the header (a dim or an offset) replaced.
        0..=2 => {
            let spots: Vec<usize> = header.char_indices().filter(|(_, c)| c.is_ascii_digit()).map(|(i, _)| i).collect();
            let at = spots[rng.below(spots.len())];
            let end = header[at..].find(|c: char| !c.is_ascii_digit()).map_or(header.len(), |e| at + e);
            let h = format!("{}{}{}", &header[..at], numbers[rng.below(numbers.len())], &header[end..]);
            rebuild(&h, data)
        }
        // A dtype replaced.
        3 => {
            let h = header.replacen("\"F32\"", &format!("\"{}\"", dtypes[rng.below(dtypes.len())]), 1 + rng.below(3));
            rebuild(&h, data)
        }
        // The length prefix lies.
        4 => {
            let mut b = good.to_vec();
            let n = [0u64, 1, hlen as u64 - 1, hlen as u64 + 1, good.len() as u64, u64::MAX, 100_000_001][rng.below(7)];
            b[..8].copy_from_slice(&n.to_le_bytes());
            b
        }
        // A name changed (another model's, or no prefix), or a tensor dropped.
        5 => {
            let h = header.replacen("dense", ["fc", "dense_1", "", "P.dense"][rng.below(4)], 1);
            rebuild(&h, data)
        }
        // Non-UTF-8 or control bytes inside the header.
        6 => {
            let mut b = good.to_vec();
            let at = 8 + rng.below(hlen);
            b[at] = [0xff, 0xc3, 0x00, b'"', b'}'][rng.below(5)];
            b
        }
        // Data cut short or extended.
        7 => {
            let mut b = good.to_vec();
            if rng.below(2) == 0 {
                b.truncate(8 + hlen + rng.below(data.len() + 1))
            } else {
                b.extend((0..rng.below(64)).map(|_| rng.next() as u8))
            }
            b
        }
        _ => {
            let mut b = good.to_vec();
            for _ in 0..=rng.below(8) {
                let at = rng.below(b.len());
                b[at] = rng.next() as u8;
            }
            b
        }
    }
}

/// A `.npy` file for `(rows, cols)` whose header may lie about dtype, shape or order.
fn hostile_npy(rng: &mut Rng, rows: usize, cols: usize, int: bool) -> Vec<u8> {
    // Half the files are honest, so that whole predictions run often.
    let honest = rng.below(2) == 0;
    let mut rng_honest = Rng(rng.next() | 1);
    let rng = if honest { &mut rng_honest } else { rng };
    let lie = |rng: &mut Rng, n: usize| !honest && rng.below(n) == 0;
    let descrs = ["<f4", "<f8", "<i8", "<i4", "|u1", ">f4", "<f2", "|b1", "<c8", "O", "<U3"];
    let descr = if lie(rng, 3) {
        descrs[rng.below(descrs.len())]
    } else if int {
        "<i8"
    } else {
        "<f4"
    };
    let dims = ["0", "1", "2", "3", "4", "-1", "4294967296", "18446744073709551615", "2L"];
    let shape = match if honest { 5 } else { rng.below(6) } {
        0 => "()".to_string(),
        1 => format!("({},)", dims[rng.below(dims.len())]),
        2 => format!("({}, {}, 1)", rows, cols),
        3 => format!("({}, {})", dims[rng.below(dims.len())], dims[rng.below(dims.len())]),
        _ => format!("({rows}, {cols})"),
    };
    let fortran = if lie(rng, 4) { "True" } else { "False" };
    let mut h = format!("{{'descr': '{descr}', 'fortran_order': {fortran}, 'shape': {shape}, }}");
    while (10 + h.len() + 1) % 64 != 0 {
        h.push(' ');
    }
    h.push('\n');
    let mut b = b"\x93NUMPY\x01\x00".to_vec();
    b.extend((h.len() as u16).to_le_bytes());
    b.extend(h.as_bytes());
    let n = rows * cols + if lie(rng, 4) { rng.below(5) } else { 0 };
    for _ in 0..n {
        // Small values mostly, so that ids are often valid table rows.
        let v = if lie(rng, 4) { rng.next() as i64 } else { rng.below(3) as i64 };
        match descr {
            "<f8" => b.extend((v as f64).to_le_bytes()),
            "<i8" => b.extend(v.to_le_bytes()),
            "<i4" => b.extend((v as i32).to_le_bytes()),
            ">f4" => b.extend((v as f32).to_be_bytes()),
            "|u1" | "|b1" => b.push(v as u8),
            "<f2" => b.extend([[0x00, 0x00], [0x00, 0x3c], [0x00, 0x40]][(v.rem_euclid(3)) as usize]),
            _ => b.extend((v as f32).to_le_bytes()),
        }
    }
    if lie(rng, 8) {
        let at = rng.below(b.len());
        b[at] = rng.next() as u8;
    }
    b
}

/// Property test: no checkpoint or `.npy` bytes make checkpoint loading, the
/// model check (`load_for_model`) or prediction panic, and whatever loads
/// predicts an output of the model's shape. Structure-aware: mutations of a
/// valid checkpoint of the model (wrong shapes, dtypes, offsets, names,
/// length prefixes, non-UTF-8 headers) and `.npy` files with lying headers.
/// `NNC_FUZZ_SECONDS` runs it longer, as for the front end.
#[test]
fn checkpoints_and_npy_inputs_never_panic() {
    use nnc_runtime::train::{Backend, Dataset, Params, Trainer};
    let a = analyse("p.nn", None, PREDICT_MODEL.to_string(), &NoFiles, &CheckOptions::default());
    assert!(
        a.result.diagnostics.iter().all(|d| d.severity != nnc_syntax::Severity::Error),
        "{:?}",
        a.result.diagnostics
    );
    let m = &a.result.models[0];
    let info = nnc_compiler::check::train::TrainInfo { graph: m.graph.clone(), ..Default::default() };
    let outputs: Vec<(String, nnc_compiler::graph::TRef)> = m
        .outputs
        .iter()
        .map(|(n, v)| (n.clone(), v.as_tensor().and_then(|t| t.node).expect("tensor output")))
        .collect();
    let decls = Trainer::forward_params(&info, &outputs, 1, &[]).expect("lower");
    let expected: Vec<(String, Vec<usize>)> = decls.iter().map(|p| (p.name.clone(), p.shape.clone())).collect();
    let dir = std::env::temp_dir().join(format!("nnc-fuzz-ckpt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let (ckpt, xpath, idspath) = (dir.join("w.safetensors"), dir.join("x.npy"), dir.join("ids.npy"));
    let weights: std::collections::BTreeMap<String, ndarray::ArrayD<f32>> =
        expected.iter().map(|(n, s)| (n.clone(), ndarray::ArrayD::from_elem(ndarray::IxDyn(s), 0.25))).collect();
    nnc_runtime::checkpoint::save(&ckpt, &weights, &Default::default()).expect("save");
    let good = std::fs::read(&ckpt).expect("read back");
    let budget = std::env::var("NNC_FUZZ_SECONDS").ok().and_then(|s| s.parse::<u64>().ok());
    let deadline = budget.map(|s| Instant::now() + Duration::from_secs(s));
    let seed = std::env::var("NNC_FUZZ_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0x5EED_C0DE_F00D_0001);
    let mut rng = Rng(seed);
    let (mut n, mut predicted) = (0usize, 0usize);
    loop {
        let bytes = if rng.below(2) == 0 { good.clone() } else { mutate_safetensors(&mut rng, &good) };
        let rows = 1 + rng.below(4);
        let (xb, ib) = (hostile_npy(&mut rng, rows, 4, false), hostile_npy(&mut rng, rows, 3, true));
        std::fs::write(&ckpt, &bytes).expect("write");
        std::fs::write(&xpath, &xb).expect("write");
        std::fs::write(&idspath, &ib).expect("write");
        let result = catch_unwind(AssertUnwindSafe(|| -> bool {
            let Ok((values, _)) = nnc_runtime::checkpoint::load_for_model(&ckpt, "P", &expected) else { return false };
            let (Ok(x), Ok(ids)) = (nnc_runtime::io::read_npy(&xpath), nnc_runtime::io::read_npy(&idspath)) else {
                return false;
            };
            if x.shape().is_empty() || ids.shape().is_empty() {
                return false; // `nnc predict` refuses 0-d inputs before this point
            }
            let Ok(ids) = ids.to_exact_i64() else { return false };
            let mut ds = Dataset::default();
            ds.arrays.insert("x".into(), nnc_runtime::exec::Tensor::F(x.to_f32()));
            ds.arrays.insert("ids".into(), nnc_runtime::exec::Tensor::I(ids));
            let params = Params { values, trainable: Default::default() };
            let backend = if rng.below(2) == 0 { Backend::Reference } else { Backend::Jit };
            match Trainer::predict(&info, &params, &ds, &outputs, &[], backend) {
                Ok(outs) => {
                    assert_eq!(outs[0].shape(), &[ds.len(), 2], "a prediction has the output's shape");
                    true
                }
                Err(_) => false,
            }
        }));
        match result {
            Ok(ok) => predicted += usize::from(ok),
            Err(_) => {
                let keep = root().join(format!("target/fuzz-crash-{n}"));
                let _ = std::fs::create_dir_all(&keep);
                for p in [&ckpt, &xpath, &idspath] {
                    let _ = std::fs::copy(p, keep.join(p.file_name().expect("name")));
                }
                let _ = std::fs::remove_dir_all(&dir);
                panic!("checkpoint loading or predict panicked; inputs saved to {}", keep.display());
            }
        }
        n += 1;
        let done = match deadline {
            Some(d) => Instant::now() >= d,
            None => n >= 400,
        };
        if done {
            break;
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    println!("fuzz: {n} checkpoints and inputs without a panic, {predicted} predicted");
    assert!(predicted > 0, "some inputs are valid and predict");
}
