//! Property test: no input makes the front end panic.
//!
//! Feeds the parser and checker random bytes and random mutations of every
//! `.nn` file in the repository. A short run is part of `cargo test`; a long
//! one is `NNC_FUZZ_SECONDS=600 cargo test --release --test fuzz -- --nocapture`.
//! A crashing input is written to `target/fuzz-crash-*.nn`; once fixed, it
//! goes to `tests/fuzz_regressions/`, which every run replays.

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
    "(", ")", "[", "]", "{", "}", ",", "=", "|>", ":", "->", "..", "let ", "dim ", "model ", "block ", "train ",
    "input ", "output ", "return ", "if ", "else ", "frozen ", "step ", "0", "-1", "1e-3", "99999999999999999999",
    "N", "x", "relu", "dense(", "conv2d(", "lstm(", "reshape(", "concat(", "\"", "//", "///", "\n", " ", "*", "/",
    "+", "-", "int[", "same", "valid", "true", "ceil(", "use std.blocks\n", "use \"x.nn\"\n", "\u{0}", "é", "×",
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
