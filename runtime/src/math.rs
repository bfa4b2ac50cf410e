//! Branch-free f32 `exp`, `sigmoid` and `tanh` over slices, written so the
//! compiler vectorises them with plain SSE2 (no libm calls, no `floor`).
//! Recurrent layers spend most of their elementwise time here; the libm
//! versions through f64 cost about 10 ns per element.
//!
//! Accuracy: `exp` is the Cephes `expf` scheme (Cody–Waite reduction by ln 2,
//! degree-5 polynomial), within 2 ulp on [−87, 88]; the tests check every
//! function against f64 libm on a dense grid. The f64 executor keeps libm.

/// 1.5·2²³: adding and subtracting it rounds an f32 of magnitude below 2²² to
/// the nearest integer, without SSE4.1's `roundps`.
const ROUND: f32 = 12_582_912.0;
const LOG2E: f32 = std::f32::consts::LOG2_E;
/// ln 2 split in two so that `n·LN2_HI` is exact for |n| < 2⁹.
const LN2_HI: f32 = 0.693_359_4;
const LN2_LO: f32 = -2.121_944_4e-4;
/// Beyond these, e^x over/underflows f32 (e^88.7 ≈ f32::MAX).
const EXP_HI: f32 = 88.72;
const EXP_LO: f32 = -87.336_55;

#[inline(always)]
fn exp1(x: f32) -> f32 {
    let x = x.clamp(EXP_LO, EXP_HI);
    let t = x * LOG2E + ROUND;
    let n = t - ROUND;
    let r = x - n * LN2_HI - n * LN2_LO;
    let p = 1.987_569_1e-4_f32;
    let p = p * r + 1.398_199_9e-3;
    let p = p * r + 8.333_452e-3;
    let p = p * r + 4.166_579_6e-2;
    let p = p * r + 1.666_666_5e-1;
    let p = p * r + 5e-1;
    let e = p * r * r + r + 1.0;
    // 2^n by building exponent bits. The integer n sits in the low mantissa
    // bits of t (that is what adding ROUND did), so no float→int conversion
    // is needed; it is in [−126, 128] after clamping, and two halves keep
    // n = 128 from overflowing the bits.
    let n = (t.to_bits() as i32).wrapping_sub(ROUND.to_bits() as i32);
    let h = n >> 1;
    let s1 = f32::from_bits(((h + 127) as u32) << 23);
    let s2 = f32::from_bits(((n - h + 127) as u32) << 23);
    e * s1 * s2
}

#[inline(always)]
fn sigmoid1(x: f32) -> f32 {
    1.0 / (1.0 + exp1(-x))
}

#[inline(always)]
fn tanh1(x: f32) -> f32 {
    // Near 0, 1 − 2/(e^2x + 1) loses digits to cancellation; the odd Taylor
    // series to x⁹ is exact to f32 precision for |x| < 0.1.
    let x2 = x * x;
    let series = x * (1.0 + x2 * (-1.0 / 3.0 + x2 * (2.0 / 15.0 + x2 * (-17.0 / 315.0 + x2 * (62.0 / 2835.0)))));
    let far = 1.0 - 2.0 / (exp1(2.0 * x) + 1.0);
    if x.abs() < 0.1 { series } else { far }
}

/// NaN in, NaN out: the clamps above would otherwise turn NaN into a number
/// and hide a diverging run from the non-finite check.
#[inline(always)]
fn keep_nan(x: f32, y: f32) -> f32 {
    if x.is_nan() { x } else { y }
}

/// `eˣ` of each element (vectorised polynomial, f32 accuracy).
pub fn exp(xs: &[f32]) -> Vec<f32> {
    xs.iter().map(|&x| keep_nan(x, exp1(x))).collect()
}

/// `xs[i] = e^xs[i]` in place; returns the sum of the results (eight f32
/// lanes, added in f64: the loops vectorise, and a softmax row of a few
/// hundred terms keeps f32's precision).
pub fn exp_in_place_sum(xs: &mut [f32]) -> f64 {
    for x in xs.iter_mut() {
        *x = keep_nan(*x, exp1(*x));
    }
    let mut lanes = [0f32; 8];
    let mut chunks = xs.chunks_exact(8);
    for c in &mut chunks {
        for (l, &v) in lanes.iter_mut().zip(c) {
            *l += v;
        }
    }
    let rest: f64 = chunks.remainder().iter().map(|&v| v as f64).sum();
    lanes.iter().map(|&v| v as f64).sum::<f64>() + rest
}

/// `1 / (1 + e⁻ˣ)` of each element.
pub fn sigmoid(xs: &[f32]) -> Vec<f32> {
    xs.iter().map(|&x| keep_nan(x, sigmoid1(x))).collect()
}

/// `tanh x` of each element.
pub fn tanh(xs: &[f32]) -> Vec<f32> {
    xs.iter().map(|&x| keep_nan(x, tanh1(x))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grid() -> Vec<f32> {
        let mut v: Vec<f32> = (-200_000..=200_000).map(|i| i as f32 * 1e-3).collect();
        v.extend([0.0, -0.0, 1e-30, -1e-30, 1e-8, 88.7, -88.7, 100.0, -100.0, f32::INFINITY, f32::NEG_INFINITY]);
        v
    }

    fn rel(a: f32, b: f64) -> f64 {
        if a as f64 == b {
            return 0.0;
        }
        ((a as f64 - b) / b.abs().max(f32::MIN_POSITIVE as f64)).abs()
    }

    #[test]
    fn exp_is_within_a_few_ulp_of_libm() {
        let xs = grid();
        for (&x, &y) in xs.iter().zip(&exp(&xs)) {
            let want = (x as f64).exp();
            if want > 3.3e38 {
                assert!(y >= 1e38, "exp({x}) = {y}");
            } else if want < 1e-37 {
                assert!(y < 1e-36, "exp({x}) = {y}");
            } else {
                assert!(rel(y, want) < 4e-7, "exp({x}) = {y}, libm {want}");
            }
        }
    }

    #[test]
    fn sigmoid_and_tanh_match_libm() {
        let xs = grid();
        for (&x, (&s, &t)) in xs.iter().zip(sigmoid(&xs).iter().zip(&tanh(&xs))) {
            let xd = x as f64;
            let (ws, wt) = (1.0 / (1.0 + (-xd).exp()), xd.tanh());
            assert!(rel(s, ws) < 1e-6 || (s as f64 - ws).abs() < 1e-38, "sigmoid({x}) = {s}, libm {ws}");
            assert!(rel(t, wt) < 1e-6, "tanh({x}) = {t}, libm {wt}");
        }
    }

    #[test]
    fn nan_propagates() {
        for f in [exp, sigmoid, tanh] {
            assert!(f(&[f32::NAN])[0].is_nan());
        }
    }
}
