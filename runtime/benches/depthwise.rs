//! Benchmark: a depthwise 3×3 convolution layer (MobileNet's, at batch 32 on 56×56×128, `same`)
//! forward, input gradient and kernel gradient on the compiled backend (`runtime/src/grouped.rs`), next to two
//! dense convolutions of the same FLOPs (the im2col + GEMM path): 3×3 from 16 to 8 channels and
//! 1×1 from 128 to 9 channels, each 1,152 multiply-adds per output pixel.
//!
//! `cargo bench -p nnc-runtime --bench depthwise` prints ms per pass and GFLOP/s, and their total
//! (forward + backward). Not a test:
//! timings never fail CI. `NNC_THREADS=1` for one thread.

#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::time::Instant;

use nnc_compiler::ir::{Id, parse};
use nnc_runtime::program::Program;

/// (what, x, kernel, op attributes, dy = output shape).
type Case = (&'static str, [usize; 4], [usize; 4], &'static str, [usize; 4]);

const CASES: &[Case] = &[
    (
        "depthwise 3×3, C = 128",
        [32, 56, 56, 128],
        [3, 3, 1, 128],
        "groups=128 k=[3, 3] s=[1, 1] d=[1, 1] p=[1, 1, 1, 1]",
        [32, 56, 56, 128],
    ),
    (
        "dense 3×3, 16 → 8",
        [32, 56, 56, 16],
        [3, 3, 16, 8],
        "k=[3, 3] s=[1, 1] d=[1, 1] p=[1, 1, 1, 1]",
        [32, 56, 56, 8],
    ),
    (
        "dense 1×1, 128 → 9",
        [32, 56, 56, 128],
        [1, 1, 128, 9],
        "k=[1, 1] s=[1, 1] d=[1, 1] p=[0, 0, 0, 0]",
        [32, 56, 56, 9],
    ),
];

fn shape(s: &[usize]) -> String {
    format!("{s:?}")
}

fn main() {
    nnc_runtime::program::flush_denormals();
    println!(
        "{:<24} {:>8} {:>6} {:>8} {:>6} {:>8} {:>6} {:>10} {:>6}",
        "layer", "fwd ms", "GF/s", "dx ms", "GF/s", "dk ms", "GF/s", "total ms", "GF/s"
    );
    for &(what, x, k, attrs, y) in CASES {
        // Operands are parameters, which programs read in place (inputs would be copied in
        // at every run, 100 MB here, and time the copy).
        let head = format!(
            "param 0 \"x\" {}\nparam 1 \"k\" {}\nparam 2 \"dy\" {}\n\
             %0: f32{} = param 0\n%1: f32{} = param 1\n%2: f32{} = param 2\n",
            shape(&x),
            shape(&k),
            shape(&y),
            shape(&x),
            shape(&k),
            shape(&y)
        );
        let fwd = format!("{head}%3: f32{} = conv2d {attrs} %0, %1\noutput \"y\" = %3\n", shape(&y));
        let dx = format!("{head}%3: f32{} = conv2d_input_grad {attrs} %2, %1\noutput \"dx\" = %3\n", shape(&x));
        let dk = format!("{head}%3: f32{} = conv2d_kernel_grad {attrs} %0, %2\noutput \"dk\" = %3\n", shape(&k));
        let fill = |s: &[usize], m: usize| {
            let v: Vec<f32> = (0..s.iter().product::<usize>()).map(|i| (i % m) as f32 * 0.1 - 0.3).collect();
            ndarray::ArrayD::from_shape_vec(s.to_vec(), v).unwrap()
        };
        let operands = [fill(&x, 7), fill(&k, 5), fill(&y, 3)];
        let params: Vec<&ndarray::ArrayD<f32>> = operands.iter().collect();
        let inputs = HashMap::new();
        let macs = (y.iter().product::<usize>() * k[0] * k[1] * k[2]) as f64;
        let time = |text: &str, passes: f64| {
            let f = parse::parse(text).unwrap_or_else(|e| panic!("{e}"));
            let keep: Vec<Id> = f.outputs.iter().map(|(_, id)| *id).collect();
            let mut jit = nnc_jit::Jit::new().unwrap();
            let mut p = Program::build(&f, &keep, &mut jit).unwrap();
            let mut uniform = || 0.5;
            p.run(&inputs, &params, &mut uniform).unwrap();
            let reps = 5;
            let t = Instant::now();
            for _ in 0..reps {
                p.run(&inputs, &params, &mut uniform).unwrap();
            }
            let ms = t.elapsed().as_secs_f64() * 1e3 / reps as f64;
            (ms, 2.0 * macs * passes / (ms * 1e6))
        };
        let (f_ms, f_gf) = time(&fwd, 1.0);
        let (x_ms, x_gf) = time(&dx, 1.0);
        let (k_ms, k_gf) = time(&dk, 1.0);
        let total = f_ms + x_ms + k_ms;
        println!(
            "{what:<24} {f_ms:>8.2} {f_gf:>6.2} {x_ms:>8.2} {x_gf:>6.2} {k_ms:>8.2} {k_gf:>6.2} {total:>10.2} {:>6.2}",
            f_gf * 3.0 * f_ms / total
        );
    }
}
