//! Matrix products through the `gemm` crate (AVX-512 kernels with its
//! `x86-v4` feature, chosen at run time), on strided ndarray views so that
//! transposed operands cost nothing.
//!
//! Why not ndarray's `general_mat_mul`: matrixmultiply reaches 1.2–2× less
//! on the shapes nnc produces and packs B on every call, which dominates the
//! small per-time-step products of recurrent layers
//! (`../shared/notes/backend-measurements.md` §5).

use ndarray::{ArrayView2, ArrayViewMut2, Axis};

use crate::exec::Real;

/// Below this many multiply-adds a call stays on one thread: splitting
/// costs more than it gains.
const SPLIT_WORK: usize = 1 << 20;

/// `c = a · b` (c is overwritten).
pub fn matmul_into<T: Real>(a: ArrayView2<T>, b: ArrayView2<T>, mut c: ArrayViewMut2<T>) {
    let (m, k) = a.dim();
    let n = b.dim().1;
    debug_assert_eq!(b.dim().0, k);
    debug_assert_eq!(c.dim(), (m, n));
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        c.fill(T::zero());
        return;
    }
    // gemm with `Parallelism::Rayon` does not scale for short-wide shapes
    // with the AVX-512 kernels; two halves on one thread each do.
    if m * n * k >= SPLIT_WORK && rayon::current_num_threads() > 1 {
        if m >= n && m >= 2 {
            let (a0, a1) = a.split_at(Axis(0), m / 2);
            let (c0, c1) = c.split_at(Axis(0), m / 2);
            rayon::join(|| matmul_into(a0, b, c0), || matmul_into(a1, b, c1));
            return;
        }
        if n >= 2 {
            let (b0, b1) = b.split_at(Axis(1), n / 2);
            let (c0, c1) = c.split_at(Axis(1), n / 2);
            rayon::join(|| matmul_into(a, b0, c0), || matmul_into(a, b1, c1));
            return;
        }
    }
    if k >= LONG_K && k >= 4 * m.max(n) {
        long_reduction(a, b, c);
        return;
    }
    call(a, b, c, false);
}

/// Reductions at least this long (and 4× longer than the output is wide)
/// are "long": the dW = Xᵀ·dY of a layer applied over N·T rows.
const LONG_K: usize = 1024;

/// gemm 0.19 runs at a third of matrixmultiply's speed on long reductions
/// with a small output (measured 22 against 61–70 GFLOP/s for
/// 100×7500·7500×400 on this machine: it does not pack the long operand).
/// matrixmultiply on two halves of k, one per thread, summed.
fn long_reduction<T: Real>(a: ArrayView2<T>, b: ArrayView2<T>, mut c: ArrayViewMut2<T>) {
    let k = a.dim().1;
    if rayon::current_num_threads() < 2 {
        ndarray::linalg::general_mat_mul(T::one(), &a, &b, T::zero(), &mut c);
        return;
    }
    let h = k / 2;
    let (a0, a1) = a.split_at(Axis(1), h);
    let (b0, b1) = b.split_at(Axis(0), h);
    let mut other = ndarray::Array2::<T>::zeros(c.raw_dim());
    rayon::join(
        || ndarray::linalg::general_mat_mul(T::one(), &a0, &b0, T::zero(), &mut c),
        || ndarray::linalg::general_mat_mul(T::one(), &a1, &b1, T::zero(), &mut other),
    );
    c.zip_mut_with(&other, |x, &y| *x = *x + y);
}

/// One `gemm::gemm` call: `c = a·b`, or `c += a·b` with `accumulate`.
fn call<T: Real>(a: ArrayView2<T>, b: ArrayView2<T>, mut c: ArrayViewMut2<T>, accumulate: bool) {
    let (m, k) = a.dim();
    let n = b.dim().1;
    let (sa, sb) = (a.strides(), b.strides());
    let sc = [c.strides()[0], c.strides()[1]];
    // SAFETY: the pointers come from live views of the stated dimensions and
    // strides (ndarray guarantees every index within them is in bounds); `c`
    // is borrowed mutably and cannot alias `a` or `b`. With `read_dst =
    // false`, `c`'s contents are not read and `alpha` is ignored.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            sc[1],
            sc[0],
            accumulate,
            a.as_ptr(),
            sa[1],
            sa[0],
            b.as_ptr(),
            sb[1],
            sb[0],
            T::one(),
            T::one(),
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    fn naive(a: &ArrayView2<f64>, b: &ArrayView2<f64>) -> Array2<f64> {
        let (m, k) = a.dim();
        let n = b.dim().1;
        Array2::from_shape_fn((m, n), |(i, j)| (0..k).map(|p| a[[i, p]] * b[[p, j]]).sum())
    }

    fn check(m: usize, k: usize, n: usize, ta: bool, tb: bool) {
        let val = |i: usize| ((i * 7919) % 23) as f64 - 11.0;
        let a_store = Array2::from_shape_fn(if ta { (k, m) } else { (m, k) }, |(i, j)| val(i * 31 + j));
        let b_store = Array2::from_shape_fn(if tb { (n, k) } else { (k, n) }, |(i, j)| val(i * 17 + j * 3 + 5));
        let a = if ta { a_store.t() } else { a_store.view() };
        let b = if tb { b_store.t() } else { b_store.view() };
        let mut c = Array2::from_elem((m, n), f64::NAN);
        matmul_into(a, b, c.view_mut());
        assert_eq!(c, naive(&a, &b), "{m}×{k}·{k}×{n} ta={ta} tb={tb}");
    }

    #[test]
    fn agrees_with_the_definition_for_every_transpose_and_split() {
        for (m, k, n) in [(1, 1, 1), (3, 5, 2), (17, 9, 33), (150, 100, 400), (400, 100, 150), (2, 0, 3), (7, 2000, 5), (40, 3000, 30)] {
            for ta in [false, true] {
                for tb in [false, true] {
                    check(m, k, n, ta, tb);
                }
            }
        }
    }

    #[test]
    fn f32_products_are_exact_on_small_integers() {
        let a = Array2::<f32>::from_shape_fn((64, 300), |(i, j)| ((i + j) % 5) as f32);
        let b = Array2::<f32>::from_shape_fn((300, 70), |(i, j)| ((i * j) % 3) as f32);
        let mut c = Array2::<f32>::zeros((64, 70));
        matmul_into(a.view(), b.view(), c.view_mut());
        let want = a.dot(&b);
        assert_eq!(c, want);
    }
}
