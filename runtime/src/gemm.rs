//! Matrix products through the `gemm` crate (AVX-512 kernels with its
//! `x86-v4` feature, chosen at run time), on strided ndarray views so that
//! transposed operands cost nothing.
//!
//! Why not ndarray's `general_mat_mul`: matrixmultiply reaches 1.2–2× less
//! on most shapes nnc produces (`../shared/notes/backend-measurements.md`
//! §5; on an AVX2-only machine the two are closer) and has no AVX-512 path
//! without a feature ndarray turns off.

use ndarray::{ArrayView2, ArrayViewMut2, Axis};

use crate::exec::Real;

/// Below this many multiply-adds a call stays on one thread: splitting
/// costs more than it gains.
const SPLIT_WORK: usize = 1 << 20;

/// `c = a · b` (c is overwritten).
pub fn matmul_into<T: Real>(a: ArrayView2<T>, b: ArrayView2<T>, mut c: ArrayViewMut2<T>) {
    let (m, k) = a.dim();
    let n = b.dim().1;
    // Real checks, not debug ones: the product below writes through raw
    // pointers, so a shape mismatch would corrupt memory.
    assert_eq!(b.dim().0, k, "matrix product: inner dimensions differ");
    assert_eq!(c.dim(), (m, n), "matrix product: output shape");
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        c.fill(T::zero());
        return;
    }
    // gemm's own `Parallelism::Rayon` does not scale on the short-wide
    // shapes of a training step; two halves, one per core, do. One split
    // only: the machines nnc targets have few cores, and each further split
    // repacks the shared operand.
    if m * n * k < SPLIT_WORK || !crate::pair::parallel() {
        call(a, b, c, false);
    } else if k >= 4 * m.max(n) {
        // A long reduction into a small output (dW = Xᵀ·dY over N·T rows,
        // a convolution's kernel gradient): split k and add the halves.
        let h = k / 2;
        let (a0, a1) = a.split_at(Axis(1), h);
        let (b0, b1) = b.split_at(Axis(0), h);
        let mut other = ndarray::Array2::<T>::zeros((m, n));
        crate::pair::join(|| call(a0, b0, c.view_mut(), false), || call(a1, b1, other.view_mut(), false));
        c.zip_mut_with(&other, |x, &y| *x = *x + y);
    } else if m >= n {
        let (a0, a1) = a.split_at(Axis(0), m / 2);
        let (c0, c1) = c.split_at(Axis(0), m / 2);
        crate::pair::join(|| call(a0, b, c0, false), || call(a1, b, c1, false));
    } else {
        let (b0, b1) = b.split_at(Axis(1), n / 2);
        let (c0, c1) = c.split_at(Axis(1), n / 2);
        crate::pair::join(|| call(a, b0, c0, false), || call(a, b1, c1, false));
    }
}

/// `c = a·b`, or `c += a·b` with `accumulate`, on the calling thread only
/// (for callers that split the work across threads themselves).
pub fn matmul_serial<T: Real>(a: ArrayView2<T>, b: ArrayView2<T>, mut c: ArrayViewMut2<T>, accumulate: bool) {
    assert_eq!(b.dim().0, a.dim().1, "matrix product: inner dimensions differ");
    assert_eq!(c.dim(), (a.dim().0, b.dim().1), "matrix product: output shape");
    if c.is_empty() {
        return;
    }
    if a.dim().1 == 0 {
        if !accumulate {
            c.fill(T::zero());
        }
        return;
    }
    call(a, b, c, accumulate);
}

/// `gemm::gemm` calls made so far.
pub static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

thread_local! {
    static IN_GEMM: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Whether this thread is inside a `gemm` crate call. The crate allocates
/// its packing buffers per call (its API takes no caller buffer): the only
/// allocations of a compiled steady-state step (`tests/planned_memory.rs`).
pub fn inside_gemm() -> bool {
    IN_GEMM.try_with(std::cell::Cell::get).unwrap_or(false)
}

/// One single-threaded `gemm::gemm` call: `c = a·b` (`c += a·b` with `accumulate`).
fn call<T: Real>(a: ArrayView2<T>, b: ArrayView2<T>, mut c: ArrayViewMut2<T>, accumulate: bool) {
    let (m, k) = a.dim();
    let n = b.dim().1;
    CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    IN_GEMM.with(|f| f.set(true));
    let (sa, sb) = (a.strides(), b.strides());
    let sc = [c.strides()[0], c.strides()[1]];
    // SAFETY: the pointers come from live views of the stated dimensions and
    // strides (ndarray guarantees every index within them is in bounds); `c`
    // is borrowed mutably and cannot alias `a` or `b`. With `read_dst =
    // false`, `c`'s contents are not read and `alpha` is ignored; with it,
    // `c = 1·c + 1·a·b`.
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
    IN_GEMM.with(|f| f.set(false));
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
        for (m, k, n) in [
            (1, 1, 1),
            (3, 5, 2),
            (17, 9, 33),
            (150, 100, 400),
            (400, 100, 150),
            (2, 0, 3),
            (7, 2000, 5),
            (40, 3000, 30),
        ] {
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
