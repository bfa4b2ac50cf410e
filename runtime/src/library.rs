//! Library routines of the compiled backend: each writes one op's result
//! into a slice of the memory plan. Matrix products go to the `gemm` crate;
//! convolutions are im2col + GEMM on patch buffers kept across steps;
//! pooling, reductions and softmax are direct loops. Work splits in two over
//! two threads (`crate::pair`) where a step is large enough to pay for the hand-off.

use ndarray::{ArrayView2, ArrayViewMut2};
use nnc_compiler::ir::{Reduce, Window};

use crate::gemm::matmul_serial;

/// Elements below which a routine stays on one thread.
pub(crate) const PARALLEL_ELEMENTS: usize = 1 << 16;

fn two_threads() -> bool {
    crate::pair::parallel()
}

/// Matrix product on the last two axes with the reference's batching:
/// an operand without batch axes is shared by every batch entry.
pub(crate) fn matmul(
    a: &[f32],
    ash: &[usize],
    b: &[f32],
    bsh: &[usize],
    ta: bool,
    tb: bool,
    out_shape: &[usize],
    out: &mut [f32],
) {
    let r = out_shape.len();
    let (m, n) = (out_shape[r - 2], out_shape[r - 1]);
    let batch: usize = out_shape[..r - 2].iter().product::<usize>().max(1);
    let (ar, ac) = (ash[ash.len() - 2], ash[ash.len() - 1]);
    let (br, bc) = (bsh[bsh.len() - 2], bsh[bsh.len() - 1]);
    let (a_batched, b_batched) = (ash.len() > 2, bsh.len() > 2);
    // Many small products (attention heads): half the batch per thread.
    if batch >= 2 && batch * m * n * ar * ac.min(br) >= 1 << 20 && crate::pair::parallel() {
        let h = batch / 2;
        let (o0, o1) = out.split_at_mut(h * m * n);
        fn part(x: &[f32], batched: bool, size: usize, lo: usize, hi: usize) -> &[f32] {
            if batched { &x[lo * size..hi * size] } else { x }
        }
        // Each half as a rank-3 product of its own batch.
        let sh = |s: &[usize], b: usize| -> Vec<usize> {
            if s.len() > 2 { vec![b, s[s.len() - 2], s[s.len() - 1]] } else { s.to_vec() }
        };
        let (a0, a1) = (part(a, a_batched, ar * ac, 0, h), part(a, a_batched, ar * ac, h, batch));
        let (b0, b1) = (part(b, b_batched, br * bc, 0, h), part(b, b_batched, br * bc, h, batch));
        let (as0, as1, bs0, bs1) = (sh(ash, h), sh(ash, batch - h), sh(bsh, h), sh(bsh, batch - h));
        let (os0, os1) = (vec![h, m, n], vec![batch - h, m, n]);
        crate::pair::join(
            || matmul(a0, &as0, b0, &bs0, ta, tb, &os0, o0),
            || matmul(a1, &as1, b1, &bs1, ta, tb, &os1, o1),
        );
        return;
    }
    for i in 0..batch {
        let ai = if a_batched { &a[i * ar * ac..(i + 1) * ar * ac] } else { a };
        let bi = if b_batched { &b[i * br * bc..(i + 1) * br * bc] } else { b };
        let av = ArrayView2::from_shape((ar, ac), ai).expect("matmul a");
        let bv = ArrayView2::from_shape((br, bc), bi).expect("matmul b");
        let av = if ta { av.reversed_axes() } else { av };
        let bv = if tb { bv.reversed_axes() } else { bv };
        let cv = ArrayViewMut2::from_shape((m, n), &mut out[i * m * n..(i + 1) * m * n]).expect("matmul out");
        crate::gemm::matmul_into(av, bv, cv);
    }
}

pub(crate) fn reduce(
    x: &[f32],
    cols: usize,
    table: &[u32],
    inner: bool,
    count: usize,
    op: Reduce,
    acc: &mut Vec<f64>,
    out: &mut [f32],
) {
    let init = if op == Reduce::Max { f64::NEG_INFINITY } else { 0.0 };
    let cols = cols.max(1);
    let rows = x.len() / cols;
    acc.clear();
    acc.resize(2 * out.len(), init);
    let (a0, a1) = acc.split_at_mut(out.len());
    // Large inputs: two halves of the rows, each into its own accumulators.
    if x.len() >= 4 * PARALLEL_ELEMENTS && rows >= 2 && two_threads() {
        let h = rows / 2;
        let (x0, x1) = x.split_at(h * cols);
        crate::pair::join(
            || accumulate(x0, cols, &table[..h], inner, op, a0),
            || accumulate(x1, cols, &table[h..], inner, op, a1),
        );
        for (a, &b) in a0.iter_mut().zip(a1.iter()) {
            *a = if op == Reduce::Max { max_nan(*a, b) } else { *a + b };
        }
    } else {
        accumulate(x, cols, table, inner, op, a0);
    }
    let scale = if op == Reduce::Mean { 1.0 / count as f64 } else { 1.0 };
    for (o, a) in out.iter_mut().zip(a0.iter()) {
        *o = (a * scale) as f32;
    }
}

/// Adds (or maxes) each row of `x` into `acc` at its table offset.
fn accumulate(x: &[f32], cols: usize, table: &[u32], inner: bool, op: Reduce, acc: &mut [f64]) {
    for (r, row) in x.chunks_exact(cols).enumerate() {
        let o = table[r] as usize;
        match (op, inner) {
            (Reduce::Max, true) => {
                for (a, &v) in acc[o..o + cols].iter_mut().zip(row) {
                    *a = max_nan(*a, v as f64);
                }
            }
            (Reduce::Max, false) => acc[o] = row.iter().fold(acc[o], |m, &v| max_nan(m, v as f64)),
            (_, true) => {
                for (a, &v) in acc[o..o + cols].iter_mut().zip(row) {
                    *a += v as f64;
                }
            }
            (_, false) => acc[o] += sum(row),
        }
    }
}

/// The sum of `xs`: eight f32 lanes over blocks of 1024 (the loop
/// vectorises), the blocks added in f64 (precision of long rows).
pub(crate) fn sum(xs: &[f32]) -> f64 {
    let mut total = 0f64;
    for block in xs.chunks(1024) {
        let mut lanes = [0f32; 8];
        let mut chunks = block.chunks_exact(8);
        for c in &mut chunks {
            for (l, &v) in lanes.iter_mut().zip(c) {
                *l += v;
            }
        }
        total +=
            lanes.iter().map(|&v| v as f64).sum::<f64>() + chunks.remainder().iter().map(|&v| v as f64).sum::<f64>();
    }
    total
}

/// The largest value of a row, NaN if any (eight lanes: the loop vectorises).
fn row_max(xs: &[f32]) -> f32 {
    let mut lanes = [f32::NEG_INFINITY; 8];
    let mut nan = false;
    let mut chunks = xs.chunks_exact(8);
    for c in &mut chunks {
        for (l, &v) in lanes.iter_mut().zip(c) {
            nan |= v.is_nan();
            *l = if v > *l { v } else { *l };
        }
    }
    let mut m = lanes.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    for &v in chunks.remainder() {
        nan |= v.is_nan();
        m = if v > m { v } else { m };
    }
    if nan { f32::NAN } else { m }
}

fn max_nan(a: f64, v: f64) -> f64 {
    if v.is_nan() || a.is_nan() { f64::NAN } else { a.max(v) }
}

/// Softmax (or log-softmax) over rows of `d`, split over two threads for
/// big inputs (attention weights).
pub(crate) fn softmax_rows(x: &[f32], d: usize, log: bool, out: &mut [f32]) {
    if x.len() >= PARALLEL_ELEMENTS && crate::pair::parallel() {
        let half = (x.len() / d / 2) * d;
        let (x0, x1) = x.split_at(half);
        let (o0, o1) = out.split_at_mut(half);
        crate::pair::join(|| softmax_rows_serial(x0, d, log, o0), || softmax_rows_serial(x1, d, log, o1));
    } else {
        softmax_rows_serial(x, d, log, out);
    }
}

fn softmax_rows_serial(x: &[f32], d: usize, log: bool, out: &mut [f32]) {
    for (row, o) in x.chunks_exact(d).zip(out.chunks_exact_mut(d)) {
        let m = row_max(row);
        for (oi, &v) in o.iter_mut().zip(row) {
            *oi = v - m;
        }
        let total = crate::math::exp_in_place_sum(o);
        if log {
            // log softmax = (x − m) − ln Σ e^(x − m).
            let ls = total.ln() as f32;
            for (oi, &v) in o.iter_mut().zip(row) {
                *oi = (v - m) - ls;
            }
        } else {
            let inv = (1.0 / total) as f32;
            for oi in o.iter_mut() {
                *oi *= inv;
            }
        }
    }
}

/// `out`'s rows of `cols` from `x`: row `r` starts at `table[r]` and steps
/// by `stride` (a transpose); contiguous rows are copied whole. Large
/// copies split in two (`crate::pair`).
pub(crate) fn gather_rows(x: &[f32], table: &[u32], stride: usize, cols: usize, out: &mut [f32]) {
    let cols = cols.max(1);
    let run = |rows: &[u32], out: &mut [f32]| {
        for (&base, row) in rows.iter().zip(out.chunks_exact_mut(cols)) {
            let base = base as usize;
            if stride == 1 {
                row.copy_from_slice(&x[base..base + cols]);
            } else {
                for (c, o) in row.iter_mut().enumerate() {
                    *o = x[base + c * stride];
                }
            }
        }
    };
    let rows = out.len() / cols;
    if out.len() >= 4 * PARALLEL_ELEMENTS && rows >= 2 && two_threads() {
        let h = rows / 2;
        let (o0, o1) = out.split_at_mut(h * cols);
        crate::pair::join(|| run(&table[..h], o0), || run(&table[h..rows], o1));
    } else {
        run(&table[..rows], out);
    }
}

/// Concatenation: each output row of `full` elements is the parts' rows
/// (`len` elements each) side by side. Rows split in two (`crate::pair`) when large.
pub(crate) fn concat(parts: &[(&[f32], usize)], full: usize, out: &mut [f32]) {
    let full = full.max(1);
    let run = |first: usize, out: &mut [f32]| {
        for (o, row) in out.chunks_exact_mut(full).enumerate() {
            let o = first + o;
            let mut at = 0;
            for &(x, len) in parts {
                row[at..at + len].copy_from_slice(&x[o * len..(o + 1) * len]);
                at += len;
            }
        }
    };
    let rows = out.len() / full;
    if out.len() >= 4 * PARALLEL_ELEMENTS && rows >= 2 && two_threads() {
        let h = rows / 2;
        let (o0, o1) = out.split_at_mut(h * full);
        crate::pair::join(|| run(0, o0), || run(h, o1));
    } else {
        run(0, out);
    }
}

/// Splits samples `[0, n)` in two halves (`crate::pair`) when the work is large,
/// calling `f(first, last)` for each range.
fn by_samples(n: usize, elements: usize, f: impl Fn(usize, usize) + Sync) {
    if n >= 2 && elements >= PARALLEL_ELEMENTS && two_threads() {
        let h = n / 2;
        crate::pair::join(|| f(0, h), || f(h, n));
    } else {
        f(0, n);
    }
}

/// A slice shared by threads that write disjoint ranges of it.
#[derive(Clone, Copy)]
struct Shared(*mut f32, usize);
// SAFETY: only used through `Shared::range`, whose callers write disjoint ranges.
unsafe impl Send for Shared {}
// SAFETY: as for `Send`: threads holding a `&Shared` reach the slice only through `range`.
unsafe impl Sync for Shared {}

impl Shared {
    fn new(s: &mut [f32]) -> Shared {
        Shared(s.as_mut_ptr(), s.len())
    }
    /// # Safety
    /// Callers on different threads must ask for disjoint ranges, and the
    /// slice `new` was given must outlive every use.
    unsafe fn range<'a>(self, lo: usize, hi: usize) -> &'a mut [f32] {
        assert!(lo <= hi && hi <= self.1, "range inside the shared slice");
        // SAFETY: `lo..hi` lies inside the slice (asserted above); disjointness
        // and lifetime are this function's contract with its callers.
        unsafe { std::slice::from_raw_parts_mut(self.0.add(lo), hi - lo) }
    }
}

/// Max pooling (NHWC), as the reference: NaN wins in the forward pass; the
/// gradient goes to the first cell holding the largest value. `dy` selects
/// the gradient (`out` is then dx, shaped like `x`).
pub(crate) fn max_pool(x: &[f32], xs: &[usize], w: &Window, os: &[usize], dy: Option<&[f32]>, out: &mut [f32]) {
    if let Some(g) = dy
        && tiles(w)
    {
        return max_pool_grad_tiled(x, xs, w, os, g, out);
    }
    let c = xs[3];
    let (per_in, per_out) = (xs[1] * xs[2] * c, os[1] * os[2] * c);
    let shared = Shared::new(out);
    by_samples(os[0], x.len(), |b0, b1| {
        for b in b0..b1 {
            // SAFETY: sample `b`'s rows of the output, disjoint across threads.
            let o = unsafe {
                if dy.is_some() {
                    shared.range(b * per_in, (b + 1) * per_in)
                } else {
                    shared.range(b * per_out, (b + 1) * per_out)
                }
            };
            if dy.is_some() {
                o.fill(0.0);
            }
            for i in 0..os[1] {
                for j in 0..os[2] {
                    let base = ((b * os[1] + i) * os[2] + j) * c;
                    // Channels in blocks held on the stack (no allocation).
                    for c0 in (0..c).step_by(CHANNEL_BLOCK) {
                        let cb = (c - c0).min(CHANNEL_BLOCK);
                        let mut best = [0f32; CHANNEL_BLOCK];
                        let mut at = [0usize; CHANNEL_BLOCK];
                        let (best, at) = (&mut best[..cb], &mut at[..cb]);
                        let mut first = true;
                        crate::exec::window_cells(xs, w, b, i, j, |off| {
                            let off = off + c0;
                            let cell = &x[off..off + cb];
                            if first {
                                best.copy_from_slice(cell);
                                at.iter_mut().enumerate().for_each(|(k, a)| *a = off + k);
                                first = false;
                            } else if dy.is_none() {
                                for (m, &v) in best.iter_mut().zip(cell) {
                                    *m = if v > *m || v.is_nan() { v } else { *m };
                                }
                            } else {
                                for k in 0..cb {
                                    if cell[k] > best[k] {
                                        best[k] = cell[k];
                                        at[k] = off + k;
                                    }
                                }
                            }
                        });
                        let ob = base - b * per_out + c0;
                        match dy {
                            None if first => o[ob..ob + cb].fill(f32::NEG_INFINITY),
                            None => o[ob..ob + cb].copy_from_slice(best),
                            Some(g) if !first => {
                                for k in 0..cb {
                                    o[at[k] - b * per_in] += g[base + c0 + k];
                                }
                            }
                            Some(_) => {}
                        }
                    }
                }
            }
        }
    });
}

/// Channels handled at once by pooling (stack buffers of this size).
const CHANNEL_BLOCK: usize = 64;

/// Whether windows tile the input: stride = kernel, no padding or dilation
/// (`max_pool(2)`): each input cell is in at most one window.
fn tiles(w: &Window) -> bool {
    w.stride == w.kernel && w.dilation == [1, 1] && w.pad == [0, 0, 0, 0]
}

/// The gradient of max pooling over tiling windows, branch-free over the
/// channels: the winning cell's index per channel (first strictly largest,
/// as the reference), then each cell takes `dy` where it won and 0 elsewhere.
fn max_pool_grad_tiled(x: &[f32], xs: &[usize], w: &Window, os: &[usize], g: &[f32], out: &mut [f32]) {
    let (h, wd, c) = (xs[1], xs[2], xs[3]);
    let (kh, kw) = (w.kernel[0], w.kernel[1]);
    let per_in = h * wd * c;
    let shared = Shared::new(out);
    by_samples(os[0], x.len(), |b0, b1| {
        for b in b0..b1 {
            // SAFETY: sample `b` of dx, disjoint across threads.
            let dx = unsafe { shared.range(b * per_in, (b + 1) * per_in) };
            // Cells past the last whole window get no gradient.
            if h % kh != 0 || wd % kw != 0 {
                dx.fill(0.0);
            }
            let xb = &x[b * per_in..(b + 1) * per_in];
            let cell = |i: usize, j: usize, q: usize| ((i * kh + q / kw) * wd + j * kw + q % kw) * c;
            for i in 0..os[1] {
                for j in 0..os[2] {
                    let gb = ((b * os[1] + i) * os[2] + j) * c;
                    for c0 in (0..c).step_by(CHANNEL_BLOCK) {
                        let cb = (c - c0).min(CHANNEL_BLOCK);
                        let mut best = [0f32; CHANNEL_BLOCK];
                        let mut taken = [0f32; CHANNEL_BLOCK];
                        let (best, taken) = (&mut best[..cb], &mut taken[..cb]);
                        let at0 = cell(i, j, 0) + c0;
                        best.copy_from_slice(&xb[at0..at0 + cb]);
                        // Two branch-free passes that vectorise: the window's
                        // largest value, then the first cell holding it takes
                        // the gradient (as the reference's first strictly
                        // larger cell does).
                        for q in 1..kh * kw {
                            let at = cell(i, j, q) + c0;
                            for (m, &v) in best.iter_mut().zip(&xb[at..at + cb]) {
                                *m = if v > *m { v } else { *m };
                            }
                        }
                        let gr = &g[gb + c0..gb + c0 + cb];
                        for q in 0..kh * kw {
                            let at = cell(i, j, q) + c0;
                            let (xq, dq) = (&xb[at..at + cb], &mut dx[at..at + cb]);
                            for k in 0..cb {
                                let first = f32::from(xq[k] == best[k]) * (1.0 - taken[k]);
                                dq[k] = gr[k] * first;
                                taken[k] += first;
                            }
                        }
                    }
                }
            }
        }
    });
}

/// Patch buffers of one convolution step, kept across runs. Only in-bounds
/// taps are ever written into a patch matrix, so its padding cells stay
/// zero from allocation: the same step always has the same geometry.
#[derive(Default)]
pub(crate) struct ConvScratch {
    cols: [Vec<f32>; 2],
    /// The second thread's partial kernel gradient.
    part: Vec<f32>,
}

/// Floats per patch-matrix chunk: about 2 MB, near L2, so the product that
/// reads a chunk finds it in cache.
const CHUNK_FLOATS: usize = 1 << 19;

/// Geometry of a convolution: input [n, h, w, c], kernel [kh, kw, c, f],
/// output [n, oh, ow, f].
#[derive(Clone, Copy)]
pub(crate) struct ConvShape<'a> {
    pub x: &'a [usize],
    pub out: &'a [usize],
    pub window: &'a Window,
}

impl ConvShape<'_> {
    fn taps(&self) -> usize {
        self.window.kernel[0] * self.window.kernel[1] * self.x[3]
    }
    fn pixels(&self) -> usize {
        self.out[1] * self.out[2]
    }
    fn chunk(&self) -> usize {
        (CHUNK_FLOATS / (self.pixels() * self.taps()).max(1)).max(1)
    }
    fn per_in(&self) -> usize {
        self.x[1] * self.x[2] * self.x[3]
    }
    /// Fills the patch rows of samples `[b0, b1)` into `cols`.
    fn im2col(&self, x: &[f32], b0: usize, b1: usize, cols: &mut [f32]) {
        let sub = [b1 - b0, self.x[1], self.x[2], self.x[3]];
        let xs = &x[b0 * self.per_in()..b1 * self.per_in()];
        crate::exec::for_each_tap(&sub, self.window, self.out[1], self.out[2], |col, src, len| {
            cols[col..col + len].copy_from_slice(&xs[src..src + len]);
        });
    }
}

fn grown(buf: &mut Vec<f32>, len: usize) -> &mut [f32] {
    if buf.len() < len {
        buf.resize(len, 0.0);
    }
    &mut buf[..len]
}

/// Runs `f(b0, b1, buffer)` over chunks of samples, the samples split in
/// two halves across threads when there is enough work, each half with its
/// own patch buffer.
fn conv_chunks(g: ConvShape, bufs: &mut [Vec<f32>; 2], f: impl Fn(usize, usize, &mut Vec<f32>) + Sync) {
    let n = g.x[0];
    let chunk = g.chunk();
    let run = |lo: usize, hi: usize, buf: &mut Vec<f32>| {
        let mut b = lo;
        while b < hi {
            let e = (b + chunk).min(hi);
            f(b, e, buf);
            b = e;
        }
    };
    let [b0, b1] = bufs;
    if n >= 2 && n * g.pixels() * g.taps() >= PARALLEL_ELEMENTS && two_threads() {
        let h = n / 2;
        crate::pair::join(|| run(0, h, b0), || run(h, n, b1));
    } else {
        run(0, n, b0);
    }
}

/// y = conv(x, k): per chunk, im2col then [rows × taps]·[taps × f].
pub(crate) fn conv2d(x: &[f32], k: &[f32], g: ConvShape, scratch: &mut ConvScratch, out: &mut [f32]) {
    let (taps, f, pix) = (g.taps(), g.out[3], g.pixels());
    let kv = ArrayView2::from_shape((taps, f), k).expect("kernel size");
    let shared = Shared::new(out);
    conv_chunks(g, &mut scratch.cols, |b0, b1, buf| {
        let rows = (b1 - b0) * pix;
        let cols = grown(buf, rows * taps);
        g.im2col(x, b0, b1, cols);
        // SAFETY: this chunk's output rows; chunks are disjoint.
        let o = unsafe { shared.range(b0 * pix * f, b1 * pix * f) };
        let cv = ArrayView2::from_shape((rows, taps), &*cols).expect("patch rows");
        matmul_serial(cv, kv, ArrayViewMut2::from_shape((rows, f), o).expect("output rows"), false);
    });
}

/// dx = col2im(dy · kᵀ), chunk by chunk.
pub(crate) fn conv2d_input_grad(dy: &[f32], k: &[f32], g: ConvShape, scratch: &mut ConvScratch, out: &mut [f32]) {
    let (taps, f, pix, per_in) = (g.taps(), g.out[3], g.pixels(), g.per_in());
    let kt = ArrayView2::from_shape((taps, f), k).expect("kernel size").reversed_axes();
    let shared = Shared::new(out);
    conv_chunks(g, &mut scratch.cols, |b0, b1, buf| {
        let rows = (b1 - b0) * pix;
        let dcols = grown(buf, rows * taps);
        let dv = ArrayView2::from_shape((rows, f), &dy[b0 * pix * f..b1 * pix * f]).expect("dy rows");
        matmul_serial(dv, kt, ArrayViewMut2::from_shape((rows, taps), &mut *dcols).expect("patch rows"), false);
        // SAFETY: this chunk's samples of dx; chunks are disjoint.
        let dx = unsafe { shared.range(b0 * per_in, b1 * per_in) };
        dx.fill(0.0);
        let sub = [b1 - b0, g.x[1], g.x[2], g.x[3]];
        crate::exec::for_each_tap(&sub, g.window, g.out[1], g.out[2], |col, dst, len| {
            for (o, &v) in dx[dst..dst + len].iter_mut().zip(&dcols[col..col + len]) {
                *o += v;
            }
        });
    });
}

/// dk = Σ over chunks of patchesᵀ · dy; the second thread sums into its own
/// buffer, added at the end.
pub(crate) fn conv2d_kernel_grad(x: &[f32], dy: &[f32], g: ConvShape, scratch: &mut ConvScratch, out: &mut [f32]) {
    let (taps, f, pix) = (g.taps(), g.out[3], g.pixels());
    let n = g.x[0];
    let split = n >= 2 && n * pix * taps >= PARALLEL_ELEMENTS && two_threads();
    let h = if split { n / 2 } else { n };
    let ConvScratch { cols: [c0, c1], part } = scratch;
    let part = grown(part, taps * f);
    let half = |lo: usize, hi: usize, buf: &mut Vec<f32>, acc: &mut [f32]| {
        let chunk = g.chunk();
        let mut b = lo;
        let mut first = true;
        acc.fill(0.0);
        while b < hi {
            let e = (b + chunk).min(hi);
            let rows = (e - b) * pix;
            let cols = grown(buf, rows * taps);
            g.im2col(x, b, e, cols);
            let cv = ArrayView2::from_shape((rows, taps), &*cols).expect("patch rows").reversed_axes();
            let dv = ArrayView2::from_shape((rows, f), &dy[b * pix * f..e * pix * f]).expect("dy rows");
            matmul_serial(cv, dv, ArrayViewMut2::from_shape((taps, f), &mut *acc).expect("kernel size"), !first);
            first = false;
            b = e;
        }
    };
    if split {
        crate::pair::join(|| half(0, h, c0, out), || half(h, n, c1, part));
        for (o, &p) in out.iter_mut().zip(part.iter()) {
            *o += p;
        }
    } else {
        half(0, n, c0, out);
    }
}
