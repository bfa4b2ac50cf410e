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
        let work = self.out[0] * self.per_out() * self.window.kernel[0] * self.window.kernel[1] * self.cg();
        self.out[0] >= 2 && work >= PARALLEL_ELEMENTS && crate::pair::parallel()
    }
    /// Calls `f(output pixel, tap, input pixel)` (pixel indices within
    /// one sample) for every in-bounds tap of every output pixel, in
    /// output-pixel order.
    fn taps(&self, mut f: impl FnMut(usize, usize, usize)) {
        let w = self.window;
        let (h, wd, oh, ow) = (self.x[1], self.x[2], self.out[1], self.out[2]);
        let [kh, kw] = w.kernel;
        for i in 0..oh {
            for j in 0..ow {
                let o = i * ow + j;
                for p in 0..kh {
                    let y = (i * w.stride[0] + p * w.dilation[0]).wrapping_sub(w.pad[0]);
                    if y >= h {
                        continue;
                    }
                    for q in 0..kw {
                        let x = (j * w.stride[1] + q * w.dilation[1]).wrapping_sub(w.pad[1]);
                        if x < wd {
                            f(o, p * kw + q, y * wd + x);
                        }
                    }
                }
            }
        }
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
fn forward_samples(g: Grouped, x: &[f32], k: &[f32], b0: usize, y: &mut [f32]) {
    let (c, f, shape) = (g.c(), g.f(), g.shape());
    let kt = g.cg() * f;
    for (s, ys) in y.chunks_exact_mut(g.per_out().max(1)).enumerate() {
        let xs = &x[(b0 + s) * g.per_in()..][..g.per_in()];
        ys.fill(0.0);
        g.taps(|o, t, i| {
            let (acc, xp, kp) = (&mut ys[o * f..][..f], &xs[i * c..][..c], &k[t * kt..][..kt]);
            match shape {
                Shape::Diagonal => {
                    for ((a, &xv), &kv) in acc.iter_mut().zip(xp).zip(kp) {
                        *a += xv * kv;
                    }
                }
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
        });
    }
}

/// dx = the input gradient for the samples whose gradients are `dx`.
fn input_grad_samples(g: Grouped, dy: &[f32], k: &[f32], b0: usize, dx: &mut [f32]) {
    let (c, f, shape) = (g.c(), g.f(), g.shape());
    let kt = g.cg() * f;
    for (s, dxs) in dx.chunks_exact_mut(g.per_in().max(1)).enumerate() {
        let dys = &dy[(b0 + s) * g.per_out()..][..g.per_out()];
        dxs.fill(0.0);
        g.taps(|o, t, i| {
            let (d, gy, kp) = (&mut dxs[i * c..][..c], &dys[o * f..][..f], &k[t * kt..][..kt]);
            match shape {
                Shape::Diagonal => {
                    for ((d, &gv), &kv) in d.iter_mut().zip(gy).zip(kp) {
                        *d += gv * kv;
                    }
                }
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
        });
    }
}

/// dk = Σ over samples `lo..hi` of the kernel gradient, into `dk`.
fn kernel_grad_samples(g: Grouped, x: &[f32], dy: &[f32], lo: usize, hi: usize, dk: &mut [f32]) {
    let (c, f, shape) = (g.c(), g.f(), g.shape());
    let kt = g.cg() * f;
    dk.fill(0.0);
    for b in lo..hi {
        let xs = &x[b * g.per_in()..][..g.per_in()];
        let dys = &dy[b * g.per_out()..][..g.per_out()];
        g.taps(|o, t, i| {
            let (d, xp, gy) = (&mut dk[t * kt..][..kt], &xs[i * c..][..c], &dys[o * f..][..f]);
            match shape {
                Shape::Diagonal => {
                    for ((d, &xv), &gv) in d.iter_mut().zip(xp).zip(gy) {
                        *d += xv * gv;
                    }
                }
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
        });
    }
}

/// y = conv(x, k) in `g.groups` groups.
pub(crate) fn conv2d(x: &[f32], k: &[f32], g: Grouped, out: &mut [f32]) {
    if g.split() {
        let h = g.out[0] / 2;
        let (y0, y1) = out.split_at_mut(h * g.per_out());
        crate::pair::join(|| forward_samples(g, x, k, 0, y0), || forward_samples(g, x, k, h, y1));
    } else {
        forward_samples(g, x, k, 0, out);
    }
}

/// dx of a grouped convolution; `g.x` is dx's shape.
pub(crate) fn conv2d_input_grad(dy: &[f32], k: &[f32], g: Grouped, out: &mut [f32]) {
    if g.split() {
        let h = g.out[0] / 2;
        let (d0, d1) = out.split_at_mut(h * g.per_in());
        crate::pair::join(|| input_grad_samples(g, dy, k, 0, d0), || input_grad_samples(g, dy, k, h, d1));
    } else {
        input_grad_samples(g, dy, k, 0, out);
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
        crate::pair::join(|| kernel_grad_samples(g, x, dy, 0, h, out), || kernel_grad_samples(g, x, dy, h, n, p));
        for (o, &v) in out.iter_mut().zip(part.iter()) {
            *o += v;
        }
    } else {
        kernel_grad_samples(g, x, dy, 0, n, out);
    }
}
