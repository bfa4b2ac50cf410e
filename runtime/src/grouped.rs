//! Grouped and depthwise convolutions of the compiled backend, as direct
//! loops over output pixels and kernel taps (NHWC, Keras's kernel layout
//! [KH, KW, C/G, F]).
//!
//! A depthwise layer (G = C) has one input channel per group, so an im2col
//! GEMM per group would multiply [pixels × KH·KW] by [KH·KW × M]: tiny
//! products dominated by packing. Channels-last makes the channel axis the
//! contiguous one instead: for each pixel and tap the work is one
//! elementwise multiply-add over all C·M channels, which the compiler
//! vectorises. General groups use the same walk with a short saxpy (or dot
//! product) per input channel of a group.
//!
//! Forward and input gradient split the batch in two halves (disjoint
//! outputs); the kernel gradient sums each half into its own buffer. The
//! reference executor computes the same ops independently (a block-diagonal
//! dense kernel), so the differential tests check these loops.

use nnc_compiler::ir::Window;

use crate::library::PARALLEL_ELEMENTS;

/// Geometry of a grouped convolution: input [n, h, w, c], kernel
/// [kh, kw, c/groups, f], output [n, oh, ow, f].
#[derive(Clone, Copy)]
pub(crate) struct Grouped<'a> {
    pub x: &'a [usize],
    pub out: &'a [usize],
    pub window: &'a Window,
    pub groups: usize,
}

/// How a tap combines one input pixel's channels with one output pixel's.
#[derive(Clone, Copy)]
enum Shape {
    /// Depthwise with multiplier 1: channel c to channel c.
    Diagonal,
    /// Depthwise with multiplier m: channel c to channels c·m .. c·m + m.
    Multiplier(usize),
    /// `cg` input channels to `fg` outputs per group.
    General { cg: usize, fg: usize },
}

impl Grouped<'_> {
    fn c(&self) -> usize {
        self.x[3]
    }
    fn f(&self) -> usize {
        self.out[3]
    }
    fn cg(&self) -> usize {
        self.c() / self.groups
    }
    fn shape(&self) -> Shape {
        let (cg, fg) = (self.cg(), self.f() / self.groups);
        match (cg, fg) {
            (1, 1) => Shape::Diagonal,
            (1, m) => Shape::Multiplier(m),
            _ => Shape::General { cg, fg },
        }
    }
    fn per_in(&self) -> usize {
        self.x[1] * self.x[2] * self.x[3]
    }
    fn per_out(&self) -> usize {
        self.out[1] * self.out[2] * self.out[3]
    }
    /// Whether the work is worth a second thread.
    fn split(&self) -> bool {
        // Saturating: only the decision depends on it, and a wrapped product would flip it.
        let taps = self.window.kernel[0].saturating_mul(self.window.kernel[1]).saturating_mul(self.cg());
        let work = self.out[0].saturating_mul(self.per_out()).saturating_mul(taps);
        self.out[0] >= 2 && work >= PARALLEL_ELEMENTS && crate::pair::parallel()
    }
    /// The in-bounds (tap, input pixel) pairs of output pixel `o` (pixel
    /// indices within one sample), into `buf`. A plain function rather than
    /// a visitor taking a closure: closures are not compiled with the
    /// caller's `target_feature` (see `wide!`).
    #[inline(always)]
    fn taps_of(&self, o: usize, buf: &mut Vec<(usize, usize)>) {
        let w = self.window;
        let (h, wd, ow) = (self.x[1], self.x[2], self.out[2]);
        let (i, j) = (o / ow, o % ow);
        let [kh, kw] = w.kernel;
        buf.clear();
        for p in 0..kh {
            // Above the top edge the subtraction wraps to a huge value: out of bounds.
            let y = (i * w.stride[0] + p * w.dilation[0]).wrapping_sub(w.pad[0]);
            if y >= h {
                continue;
            }
            for q in 0..kw {
                let x = (j * w.stride[1] + q * w.dilation[1]).wrapping_sub(w.pad[1]);
                if x < wd {
                    buf.push((p * kw + q, y * wd + x));
                }
            }
        }
    }
    /// The (tap, output pixel) pairs that read input pixel `i`, into `buf`:
    /// the transpose of [`Grouped::taps_of`], so a depthwise input gradient
    /// gathers each dx pixel once instead of scattering into it per tap.
    #[inline(always)]
    fn readers_of(&self, i: usize, buf: &mut Vec<(usize, usize)>) {
        let w = self.window;
        let (wd, oh, ow) = (self.x[2], self.out[1], self.out[2]);
        let (y, x) = (i / wd, i % wd);
        let [kh, kw] = w.kernel;
        // Output row r reads input row r·s + p·d − pad: r = (y + pad − p·d) / s when that divides.
        let source = |at: usize, k: usize, a: usize, n: usize| -> Option<usize> {
            let num = (at + w.pad[if a == 0 { 0 } else { 1 }]).checked_sub(k * w.dilation[a])?;
            (num % w.stride[a] == 0 && num / w.stride[a] < n).then_some(num / w.stride[a])
        };
        buf.clear();
        for p in 0..kh {
            let Some(r) = source(y, p, 0, oh) else { continue };
            for q in 0..kw {
                if let Some(col) = source(x, q, 1, ow) {
                    buf.push((p * kw + q, r * ow + col));
                }
            }
        }
    }
    fn pixels(&self) -> usize {
        self.out[1] * self.out[2]
    }
}

/// Channels per register block of the depthwise loops: 32 floats are 8 SSE
/// or 4 AVX registers, so a block's sums stay in registers across all taps
/// instead of going through memory once per tap.
const BLOCK: usize = 32;

/// One output pixel of a depthwise (multiplier 1) convolution: y[c] =
/// Σ_taps x[tap pixel][c]·k[tap][c], channel block by channel block.
#[inline(always)]
fn diagonal_forward(c: usize, taps: &[(usize, usize)], xs: &[f32], k: &[f32], y: &mut [f32]) {
    let mut c0 = 0;
    while c0 < c {
        let w = BLOCK.min(c - c0);
        let mut acc = [0f32; BLOCK];
        for &(t, i) in taps {
            let (xp, kp) = (&xs[i * c + c0..][..w], &k[t * c + c0..][..w]);
            if let (Ok(xp), Ok(kp)) = (<&[f32; BLOCK]>::try_from(xp), <&[f32; BLOCK]>::try_from(kp)) {
                for l in 0..BLOCK {
                    acc[l] += xp[l] * kp[l];
                }
            } else {
                for ((a, &xv), &kv) in acc.iter_mut().zip(xp).zip(kp) {
                    *a += xv * kv;
                }
            }
        }
        y[c0..c0 + w].copy_from_slice(&acc[..w]);
        c0 += w;
    }
}

/// dk[t][c] += x[tap pixel][c]·gy[c] for one output pixel's gradient `gy`
/// (depthwise, multiplier 1), with `gy`'s channel block in registers. (A
/// banded variant summing each dk block in registers over 8 output rows
/// measured slower: it reads each input row from L2 once per tap and block.)
#[inline(always)]
fn diagonal_kernel_grad(c: usize, taps: &[(usize, usize)], gy: &[f32], xs: &[f32], dk: &mut [f32]) {
    let mut c0 = 0;
    while c0 < c {
        let w = BLOCK.min(c - c0);
        let mut g = [0f32; BLOCK];
        g[..w].copy_from_slice(&gy[c0..c0 + w]);
        for &(t, i) in taps {
            let (d, xp) = (&mut dk[t * c + c0..][..w], &xs[i * c + c0..][..w]);
            if w == BLOCK {
                let d: &mut [f32; BLOCK] = d.try_into().expect("a full block");
                let xp: &[f32; BLOCK] = xp.try_into().expect("a full block");
                for l in 0..BLOCK {
                    d[l] += g[l] * xp[l];
                }
            } else {
                for ((d, &gv), &xv) in d.iter_mut().zip(&g).zip(xp) {
                    *d += gv * xv;
                }
            }
        }
        c0 += w;
    }
}

/// `a += x·b`, elementwise.
#[inline(always)]
fn axpy(a: &mut [f32], x: f32, b: &[f32]) {
    for (a, &b) in a.iter_mut().zip(b) {
        *a += x * b;
    }
}

#[inline(always)]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(a, b)| a * b).sum()
}

/// y = grouped conv(x, k) for the samples whose outputs are `y`, from
/// sample `b0` on.
#[inline(always)]
fn forward_samples(g: Grouped, x: &[f32], k: &[f32], b0: usize, y: &mut [f32]) {
    let (c, f, shape) = (g.c(), g.f(), g.shape());
    let kt = g.cg() * f;
    let mut buf = Vec::new();
    for (s, ys) in y.chunks_exact_mut(g.per_out().max(1)).enumerate() {
        let xs = &x[(b0 + s) * g.per_in()..][..g.per_in()];
        for o in 0..g.pixels() {
            g.taps_of(o, &mut buf);
            let taps = &buf[..];
            let acc = &mut ys[o * f..][..f];
            if let Shape::Diagonal = shape {
                diagonal_forward(c, taps, xs, k, acc);
                continue;
            }
            acc.fill(0.0);
            for &(t, i) in taps {
                let (xp, kp) = (&xs[i * c..][..c], &k[t * kt..][..kt]);
                match shape {
                    Shape::Diagonal => {}
                    Shape::Multiplier(m) => {
                        for ((a, &xv), kv) in acc.chunks_exact_mut(m).zip(xp).zip(kp.chunks_exact(m)) {
                            axpy(a, xv, kv);
                        }
                    }
                    Shape::General { cg, fg } => {
                        for gi in 0..g.groups {
                            let a = &mut acc[gi * fg..][..fg];
                            for ci in 0..cg {
                                axpy(a, xp[gi * cg + ci], &kp[ci * f + gi * fg..][..fg]);
                            }
                        }
                    }
                }
            }
        }
    }
}

/// dx = the input gradient for the samples whose gradients are `dx`.
#[inline(always)]
fn input_grad_samples(g: Grouped, dy: &[f32], k: &[f32], b0: usize, dx: &mut [f32]) {
    let (c, f, shape) = (g.c(), g.f(), g.shape());
    let kt = g.cg() * f;
    let mut buf = Vec::new();
    for (s, dxs) in dx.chunks_exact_mut(g.per_in().max(1)).enumerate() {
        let dys = &dy[(b0 + s) * g.per_out()..][..g.per_out()];
        if let Shape::Diagonal = shape {
            // dx[i][c] = Σ over the outputs that read pixel i of dy[o][c]·k[t][c]:
            // the forward loop with the roles of x and dy exchanged.
            for i in 0..g.x[1] * g.x[2] {
                g.readers_of(i, &mut buf);
                diagonal_forward(c, &buf, dys, k, &mut dxs[i * c..][..c]);
            }
            continue;
        }
        dxs.fill(0.0);
        for o in 0..g.pixels() {
            g.taps_of(o, &mut buf);
            let taps = &buf[..];
            let gy = &dys[o * f..][..f];
            for &(t, i) in taps {
                let (d, kp) = (&mut dxs[i * c..][..c], &k[t * kt..][..kt]);
                match shape {
                    Shape::Diagonal => {}
                    Shape::Multiplier(m) => {
                        for ((d, gv), kv) in d.iter_mut().zip(gy.chunks_exact(m)).zip(kp.chunks_exact(m)) {
                            *d += dot(gv, kv);
                        }
                    }
                    Shape::General { cg, fg } => {
                        for gi in 0..g.groups {
                            let gv = &gy[gi * fg..][..fg];
                            for ci in 0..cg {
                                d[gi * cg + ci] += dot(gv, &kp[ci * f + gi * fg..][..fg]);
                            }
                        }
                    }
                }
            }
        }
    }
}

/// dk = Σ over samples `lo..hi` of the kernel gradient, into `dk`.
#[inline(always)]
fn kernel_grad_samples(g: Grouped, x: &[f32], dy: &[f32], lo: usize, hi: usize, dk: &mut [f32]) {
    let (c, f, shape) = (g.c(), g.f(), g.shape());
    let kt = g.cg() * f;
    let mut buf = Vec::new();
    dk.fill(0.0);
    for b in lo..hi {
        let xs = &x[b * g.per_in()..][..g.per_in()];
        let dys = &dy[b * g.per_out()..][..g.per_out()];
        for o in 0..g.pixels() {
            g.taps_of(o, &mut buf);
            let taps = &buf[..];
            let gy = &dys[o * f..][..f];
            if let Shape::Diagonal = shape {
                diagonal_kernel_grad(c, taps, gy, xs, dk);
                continue;
            }
            for &(t, i) in taps {
                let (d, xp) = (&mut dk[t * kt..][..kt], &xs[i * c..][..c]);
                match shape {
                    Shape::Diagonal => {}
                    Shape::Multiplier(m) => {
                        for ((d, &xv), gv) in d.chunks_exact_mut(m).zip(xp).zip(gy.chunks_exact(m)) {
                            axpy(d, xv, gv);
                        }
                    }
                    Shape::General { cg, fg } => {
                        for gi in 0..g.groups {
                            let gv = &gy[gi * fg..][..fg];
                            for ci in 0..cg {
                                axpy(&mut d[ci * f + gi * fg..][..fg], xp[gi * cg + ci], gv);
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Defines `$name` to run `$body` compiled for AVX2 when the CPU has it
/// (8 floats per instruction instead of SSE's 4; the crate is built for
/// baseline x86-64), else for the baseline.
macro_rules! wide {
    ($name:ident, $inner:ident, ($($arg:ident: $ty:ty),*)) => {
        fn $name($($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            if std::arch::is_x86_feature_detected!("avx2") {
                #[target_feature(enable = "avx2")]
                fn avx2($($arg: $ty),*) {
                    $inner($($arg),*)
                }
                // SAFETY: the CPU supports AVX2, checked just above.
                return unsafe { avx2($($arg),*) };
            }
            $inner($($arg),*)
        }
    };
}

wide!(forward, forward_samples, (g: Grouped, x: &[f32], k: &[f32], b0: usize, y: &mut [f32]));
wide!(input_grad, input_grad_samples, (g: Grouped, dy: &[f32], k: &[f32], b0: usize, dx: &mut [f32]));
wide!(kernel_grad, kernel_grad_samples, (g: Grouped, x: &[f32], dy: &[f32], lo: usize, hi: usize, dk: &mut [f32]));

/// y = conv(x, k) in `g.groups` groups.
pub(crate) fn conv2d(x: &[f32], k: &[f32], g: Grouped, out: &mut [f32]) {
    if g.split() {
        let h = g.out[0] / 2;
        let (y0, y1) = out.split_at_mut(h * g.per_out());
        crate::pair::join(|| forward(g, x, k, 0, y0), || forward(g, x, k, h, y1));
    } else {
        forward(g, x, k, 0, out);
    }
}

/// dx of a grouped convolution; `g.x` is dx's shape.
pub(crate) fn conv2d_input_grad(dy: &[f32], k: &[f32], g: Grouped, out: &mut [f32]) {
    if g.split() {
        let h = g.out[0] / 2;
        let (d0, d1) = out.split_at_mut(h * g.per_in());
        crate::pair::join(|| input_grad(g, dy, k, 0, d0), || input_grad(g, dy, k, h, d1));
    } else {
        input_grad(g, dy, k, 0, out);
    }
}

/// dk of a grouped convolution; the second half of the batch sums into
/// `part` (kept across runs), added at the end.
pub(crate) fn conv2d_kernel_grad(x: &[f32], dy: &[f32], g: Grouped, part: &mut Vec<f32>, out: &mut [f32]) {
    let n = g.out[0];
    if g.split() {
        let h = n / 2;
        if part.len() != out.len() {
            part.resize(out.len(), 0.0);
        }
        let p = &mut part[..];
        crate::pair::join(|| kernel_grad(g, x, dy, 0, h, out), || kernel_grad(g, x, dy, h, n, p));
        for (o, &v) in out.iter_mut().zip(part.iter()) {
            *o += v;
        }
    } else {
        kernel_grad(g, x, dy, 0, n, out);
    }
}
