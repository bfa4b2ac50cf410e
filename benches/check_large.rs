//! Benchmark: parse and check a generated model of 5,000 layers in 10,000
//! lines — an editor re-checks on every keystroke, so the target is 100 ms.
//!
//! `cargo bench --bench check_large` prints the median and best of several
//! runs and the ratio to the target. Not a test: timings never fail CI.

#![forbid(unsafe_code)]

use std::time::{Duration, Instant};

use nnc_compiler::{CheckOptions, LoadError, Loader, analyse};

struct NoFiles;

impl Loader for NoFiles {
    fn load(&self, _: &std::path::Path) -> Result<String, LoadError> {
        Err(LoadError::NotFound)
    }
}

/// 2,500 stages of `dense |> relu` (5,000 layers) in four lines each,
/// alternating widths so every shape is really computed.
fn generate() -> String {
    let mut s = String::from(
        "dim N\n\n/// A generated deep MLP.\nmodel Deep(width = 64) {\n    input x: [N, 32]\n    let h0 = x\n",
    );
    for i in 1..=2500 {
        let units = if i % 2 == 0 { "width" } else { "48" };
        s.push_str(&format!(
            "    // stage {i}: dense then relu\n    let h{i} = h{}\n        |> dense({units})\n        |> relu\n",
            i - 1
        ));
    }
    s.push_str("    output y: [N, 64] = h2500\n}\n");
    s
}

fn main() {
    let src = generate();
    let lines = src.lines().count();
    let mut times = Vec::new();
    let mut layers = 0;
    for _ in 0..15 {
        let t0 = Instant::now();
        let a = analyse("deep.nn", None, src.clone(), &NoFiles, &CheckOptions::default());
        times.push(t0.elapsed());
        assert!(a.result.diagnostics.is_empty(), "{:?}", a.result.diagnostics.first());
        layers = a.result.models[0].layers.len();
    }
    times.sort();
    let median = times[times.len() / 2];
    let best = times[0];
    let parse_time = {
        let mut v: Vec<Duration> = (0..15)
            .map(|_| {
                let t0 = Instant::now();
                let _ = nnc_syntax::parse(&src, nnc_syntax::FileId(0));
                t0.elapsed()
            })
            .collect();
        v.sort();
        v[v.len() / 2]
    };
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!("check_large: {layers} layers, {lines} lines");
    println!("  parse only:      median {:7.2} ms", ms(parse_time));
    println!("  parse + check:   median {:7.2} ms, best {:7.2} ms", ms(median), ms(best));
    println!("  target 100 ms:   median is {:.2}× the target", ms(median) / 100.0);
}
