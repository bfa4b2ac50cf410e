//! Constants of the inline `exp` and the scalar functions generated code
//! calls for the rarer ops. The callees compute in f64, as the reference
//! executor does, so both backends agree to f32 rounding.

/// 1.5·2²³: adding and subtracting it rounds an f32 of magnitude below 2²²
/// to the nearest integer (no SSE4.1 `roundps` needed).
pub(crate) const ROUND: f32 = 12_582_912.0;
/// ln 2 split in two so that `n·LN2_HI` is exact for |n| < 2⁹.
pub(crate) const LN2_HI: f32 = 0.693_359_4;
/// The low part of ln 2: `LN2_HI + LN2_LO` is ln 2 to f32 precision.
pub(crate) const LN2_LO: f32 = -2.121_944_4e-4;
/// Beyond these, e^x over/underflows f32.
pub(crate) const EXP_HI: f32 = 88.72;
pub(crate) const EXP_LO: f32 = -87.336_55;
/// Cephes `expf` polynomial, highest degree first.
pub(crate) const EXP_POLY: [f32; 6] =
    [1.987_569_1e-4, 1.398_199_9e-3, 8.333_452e-3, 4.166_579_6e-2, 1.666_666_5e-1, 5.0e-1];

/// Natural logarithm, computed in f64 (`nnc_log` in generated code).
pub(crate) extern "C" fn log(x: f32) -> f32 {
    (x as f64).ln() as f32
}

/// `ln(1 + eˣ)`, computed in f64; returns `x` itself above 30 where `eˣ` dominates.
pub(crate) extern "C" fn softplus(x: f32) -> f32 {
    let v = x as f64;
    (if v > 30.0 { v } else { v.exp().ln_1p() }) as f32
}

/// `xᵖ`, computed in f64 (`nnc_pow`; negative `x` with a fractional `p` gives NaN).
pub(crate) extern "C" fn pow(x: f32, p: f32) -> f32 {
    (x as f64).powf(p as f64) as f32
}

/// Exact (erf-based) GELU, computed in f64.
pub(crate) extern "C" fn gelu(x: f32) -> f32 {
    let v = x as f64;
    (0.5 * v * (1.0 + erf(v / std::f64::consts::SQRT_2))) as f32
}

/// Derivative of the exact GELU: `Φ(x) + x·φ(x)`.
pub(crate) extern "C" fn gelu_grad(x: f32) -> f32 {
    let v = x as f64;
    let cdf = 0.5 * (1.0 + erf(v / std::f64::consts::SQRT_2));
    let pdf = (-0.5 * v * v).exp() / (2.0 * std::f64::consts::PI).sqrt();
    (cdf + v * pdf) as f32
}

/// The error function (the reference executor's: Taylor series near 0,
/// continued fraction for erfc beyond 2.5; better than 1e-12 relative).
pub fn erf(x: f64) -> f64 {
    let a = x.abs();
    let r = if a < 2.5 {
        let mut term = a;
        let mut sum = a;
        let x2 = a * a;
        for n in 1..60 {
            term *= -x2 / n as f64;
            let add = term / (2 * n + 1) as f64;
            sum += add;
            if add.abs() < 1e-17 * sum.abs() {
                break;
            }
        }
        sum * 2.0 / std::f64::consts::PI.sqrt()
    } else {
        let mut f = 0.0;
        for k in (1..60).rev() {
            f = (k as f64 / 2.0) / (a + f);
        }
        1.0 - (-a * a).exp() / (std::f64::consts::PI.sqrt() * (a + f))
    };
    if x < 0.0 { -r } else { r }
}
