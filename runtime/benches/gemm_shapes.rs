//! Benchmark: `nnc_runtime::gemm::matmul_into` against ndarray's
//! `general_mat_mul` (matrixmultiply) on the matrix shapes of real training
//! steps, with transposed operands as autodiff produces them.
//!
//! `cargo bench -p nnc-runtime --bench gemm_shapes` prints µs per call and
//! GFLOP/s for both, and the ratio. Not a test: timings never fail CI.

#![forbid(unsafe_code)]

use std::time::Instant;

use ndarray::Array2;

/// (what, m, k, n, A transposed, B transposed).
const SHAPES: &[(&str, usize, usize, usize, bool, bool)] = &[
    ("LSTM step h·U, batch 150", 150, 100, 400, false, false),
    ("LSTM step dh = g·Uᵀ", 150, 400, 100, false, true),
    ("LSTM step dU = hᵀ·g", 100, 150, 400, true, false),
    ("LSTM input projection, N·T = 7500", 7500, 100, 400, false, false),
    ("LSTM input dW = Xᵀ·dY (long reduction)", 100, 7500, 400, true, false),
    ("conv1 kernel grad (im2col, k = N·H·W)", 25, 78400, 16, true, false),
    ("conv2 forward (im2col)", 19600, 400, 32, false, false),
    ("dense 784→500, batch 100", 100, 784, 500, false, false),
    ("square 2048³ (the machine's practical peak)", 2048, 2048, 2048, false, false),
];

fn main() {
    println!("{:<42} {:>10} {:>8} {:>10} {:>8} {:>7}", "shape", "nnc µs", "GFLOP/s", "ndarray µs", "GFLOP/s", "ratio");
    for &(what, m, k, n, ta, tb) in SHAPES {
        let a =
            Array2::<f32>::from_shape_fn(if ta { (k, m) } else { (m, k) }, |(i, j)| ((i * 7 + j) % 13) as f32 * 0.1);
        let b =
            Array2::<f32>::from_shape_fn(if tb { (n, k) } else { (k, n) }, |(i, j)| ((i + j * 3) % 11) as f32 * 0.1);
        let av = if ta { a.t() } else { a.view() };
        let bv = if tb { b.t() } else { b.view() };
        let mut c = Array2::<f32>::zeros((m, n));
        let flop = 2.0 * (m * n * k) as f64;
        let reps = ((2e9 / flop) as usize).clamp(3, 2000);
        let time = |f: &mut dyn FnMut()| {
            f();
            let mut best = f64::INFINITY;
            for _ in 0..3 {
                let t0 = Instant::now();
                for _ in 0..reps {
                    f();
                }
                best = best.min(t0.elapsed().as_secs_f64() / reps as f64);
            }
            best
        };
        let ours = time(&mut || nnc_runtime::gemm::matmul_into(av, bv, c.view_mut()));
        let theirs = time(&mut || ndarray::linalg::general_mat_mul(1.0, &av, &bv, 0.0, &mut c));
        println!(
            "{what:<42} {:>10.1} {:>8.1} {:>10.1} {:>8.1} {:>7.2}",
            ours * 1e6,
            flop / ours / 1e9,
            theirs * 1e6,
            flop / theirs / 1e9,
            ours / theirs
        );
    }
}
