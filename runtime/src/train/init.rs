//! Parameter initialisers with Keras's fan rules (docs/src/layers.md), drawing
//! from the runtime's one generator, [`Rng`].

use ndarray::{Array2, ArrayD, IxDyn};

use crate::rng::Rng;

/// Keras's fans: the last two axes are (in, out); leading axes form the
/// receptive field (convolution kernels, attention's [D, heads, key_dim]).
pub fn fans(shape: &[usize]) -> (f64, f64) {
    match shape.len() {
        0 => (1.0, 1.0),
        1 => (shape[0] as f64, shape[0] as f64),
        2 => (shape[0] as f64, shape[1] as f64),
        r => {
            let rf: usize = shape[..r - 2].iter().product();
            ((shape[r - 2] * rf) as f64, (shape[r - 1] * rf) as f64)
        }
    }
}

/// An initialiser name the runtime does not know (the name).
#[derive(Clone, Debug, PartialEq)]
pub struct UnknownInitialiser(pub String);

/// Keras's correction of a truncated normal's standard deviation: the σ of N(0, 1) cut at ±2
/// (`variance_scaling` divides by it so the drawn values have the σ asked for).
const TRUNCATION_SD: f64 = 0.879_625_661_034_239_8;

/// An initialiser as the checker writes it (`he_normal`, `normal(stddev=0.02)`, `constant(1e-06)`), its options
/// bound by name (positional ones in the schema's order); absent options take the schema's defaults.
struct Spec<'a> {
    name: &'a str,
    args: Vec<(&'static str, &'a str)>,
}

impl<'a> Spec<'a> {
    fn parse(text: &'a str) -> Option<Spec<'a>> {
        let (name, rest) = match text.split_once('(') {
            Some((n, r)) => (n.trim(), r.strip_suffix(')')?),
            None => (text.trim(), ""),
        };
        let schema = nnc_compiler::schema::lookup_initialiser(name)?;
        let mut args = Vec::new();
        for (i, part) in rest.split(',').map(str::trim).filter(|p| !p.is_empty()).enumerate() {
            let (key, value) = match part.split_once('=') {
                Some((k, v)) => (schema.option(k.trim())?.name, v.trim()),
                None if i < schema.positional => (schema.options.get(i)?.name, part),
                None => return None,
            };
            args.push((key, value));
        }
        Some(Spec { name, args })
    }

    fn given(&self, option: &str) -> Option<&'a str> {
        self.args.iter().find(|(k, _)| *k == option).map(|(_, v)| *v)
    }

    fn num(&self, option: &str) -> Option<f64> {
        match self.given(option) {
            Some(v) => v.parse().ok().filter(|x: &f64| x.is_finite()),
            None => nnc_compiler::schema::default_f64(self.name, option),
        }
    }

    fn word(&self, option: &str) -> Option<&'a str> {
        self.given(option).or_else(|| nnc_compiler::schema::default_word(self.name, option))
    }
}

/// Initialises a parameter from its initialiser (`glorot_uniform`, `normal(stddev=0.02)`, …), as Keras 3 draws
/// it (`keras/src/initializers/random_initializers.py`), from `rng`.
pub fn init(spec: &str, shape: &[usize], rng: &mut Rng) -> Result<ArrayD<f32>, UnknownInitialiser> {
    let n: usize = shape.iter().product();
    let unknown = || UnknownInitialiser(spec.to_string());
    let data = match Spec::parse(spec) {
        Some(s) => draw(&s, shape, n, rng).ok_or_else(unknown)?,
        // Values a layer's option gives (`normalization(mean = …)`).
        None => given_values(spec, n).ok_or_else(unknown)?,
    };
    Ok(ArrayD::from_shape_vec(IxDyn(shape), data.into_iter().map(|v| v as f32).collect()).expect("init size"))
}

/// The values of `s` for a tensor of `shape` (`n` elements); `None` for an option value the checker would
/// have refused.
fn draw(s: &Spec, shape: &[usize], n: usize, rng: &mut Rng) -> Option<Vec<f64>> {
    let normal = |rng: &mut Rng, mean: f64, sd: f64| (0..n).map(|_| mean + sd * rng.normal_f64()).collect();
    let truncated =
        |rng: &mut Rng, mean: f64, sd: f64| (0..n).map(|_| mean + sd * rng.truncated_normal_f64()).collect();
    let uniform = |rng: &mut Rng, lo: f64, hi: f64| {
        (0..n)
            .map(|_| match rng.uniform_f64() {
                // Symmetric bounds as ±limit, as nnc always drew `uniform`: the same values as before options.
                u if lo == -hi => (u * 2.0 - 1.0) * hi,
                u => lo + (hi - lo) * u,
            })
            .collect()
    };
    Some(match s.name {
        "zeros" => vec![0.0; n],
        "ones" => vec![1.0; n],
        "constant" => vec![s.num("value")?; n],
        "normal" => normal(rng, s.num("mean")?, s.num("stddev")?),
        "truncated_normal" => truncated(rng, s.num("mean")?, s.num("stddev")?),
        "uniform" => match s.given("limit") {
            Some(_) => uniform(rng, -s.num("limit")?, s.num("limit")?),
            None => uniform(rng, s.num("minval")?, s.num("maxval")?),
        },
        "variance_scaling" => {
            let (scale, mode, distribution) = (s.num("scale")?, s.word("mode")?, s.word("distribution")?);
            variance_scaling(scale, mode, distribution, shape, rng)?
        }
        "glorot_uniform" => variance_scaling(1.0, "fan_avg", "uniform", shape, rng)?,
        "glorot_normal" => variance_scaling(1.0, "fan_avg", "truncated_normal", shape, rng)?,
        "he_uniform" => variance_scaling(2.0, "fan_in", "uniform", shape, rng)?,
        "he_normal" => variance_scaling(2.0, "fan_in", "truncated_normal", shape, rng)?,
        "lecun_uniform" => variance_scaling(1.0, "fan_in", "uniform", shape, rng)?,
        "lecun_normal" => variance_scaling(1.0, "fan_in", "truncated_normal", shape, rng)?,
        "orthogonal" => {
            let gain = s.num("gain")?;
            orthogonal(shape, rng).into_iter().map(|v| v * gain).collect()
        }
        _ => return None,
    })
}

/// Keras's `VarianceScaling`: the scale divided by the fan `mode` names (at least 1), then a truncated normal
/// with σ = √scale / 0.8796…, a normal with σ = √scale, or a uniform in ±√(3 · scale).
fn variance_scaling(scale: f64, mode: &str, distribution: &str, shape: &[usize], rng: &mut Rng) -> Option<Vec<f64>> {
    let n: usize = shape.iter().product();
    let (fan_in, fan_out) = fans(shape);
    let fan = match mode {
        "fan_in" => fan_in,
        "fan_out" => fan_out,
        "fan_avg" => (fan_in + fan_out) / 2.0,
        _ => return None,
    };
    // One division each, `3·scale / fan` rather than `3 · (scale / fan)`: glorot's and he's draws stay the
    // same f64 values as their closed forms (`√(6 / (fan_in + fan_out))`).
    let fan = fan.max(1.0);
    Some(match distribution {
        // Keras reads `normal` as `truncated_normal`.
        "truncated_normal" | "normal" => {
            let sd = (scale / fan).sqrt() / TRUNCATION_SD;
            (0..n).map(|_| sd * rng.truncated_normal_f64()).collect()
        }
        "untruncated_normal" => (0..n).map(|_| (scale / fan).sqrt() * rng.normal_f64()).collect(),
        "uniform" => {
            let limit = (3.0 * scale / fan).sqrt();
            (0..n).map(|_| (rng.uniform_f64() * 2.0 - 1.0) * limit).collect()
        }
        _ => return None,
    })
}

/// `values(a, b, …)`: exactly `n` elements, which a layer's option gives (`normalization(mean = [..])`).
fn given_values(spec: &str, n: usize) -> Option<Vec<f64>> {
    let list = spec.strip_prefix("values(")?.strip_suffix(')')?;
    let vals: Vec<f64> = list.split(',').map(|v| v.trim().parse::<f64>()).collect::<Result<_, _>>().ok()?;
    (vals.len() == n).then_some(vals)
}

/// An orthogonal matrix (rows × cols flattened from the shape), by
/// Gram–Schmidt on a Gaussian matrix.
fn orthogonal(shape: &[usize], rng: &mut Rng) -> Vec<f64> {
    let cols = *shape.last().unwrap_or(&1);
    let rows: usize = shape.iter().product::<usize>() / cols.max(1);
    // Orthonormalise along the longer side.
    let (r, c) = if rows < cols { (cols, rows) } else { (rows, cols) };
    let mut a = Array2::<f64>::from_shape_fn((r, c), |_| rng.normal_f64());
    for j in 0..c {
        for k in 0..j {
            let dot: f64 = (0..r).map(|i| a[[i, j]] * a[[i, k]]).sum();
            for i in 0..r {
                a[[i, j]] -= dot * a[[i, k]];
            }
        }
        let norm: f64 = (0..r).map(|i| a[[i, j]] * a[[i, j]]).sum::<f64>().sqrt().max(1e-12);
        for i in 0..r {
            a[[i, j]] /= norm;
        }
    }
    let a = if rows < cols { a.reversed_axes().as_standard_layout().into_owned() } else { a };
    a.into_raw_vec_and_offset().0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glorot_uniform_respects_the_limit() {
        let mut rng = Rng::new(1);
        let w = init("glorot_uniform", &[100, 50], &mut rng).unwrap();
        let limit = (6.0f32 / 150.0).sqrt();
        assert!(w.iter().all(|v| v.abs() <= limit));
        assert!(w.iter().any(|v| v.abs() > limit * 0.9));
    }

    #[test]
    fn orthogonal_columns_are_orthonormal() {
        let mut rng = Rng::new(3);
        let w = init("orthogonal", &[6, 6], &mut rng).unwrap();
        let m = w.into_shape_with_order((6, 6)).unwrap();
        let g = m.t().dot(&m);
        for i in 0..6 {
            for j in 0..6 {
                let want = if i == j { 1.0 } else { 0.0 };
                assert!((g[[i, j]] - want).abs() < 1e-5, "{g}");
            }
        }
    }

    #[test]
    fn fans_follow_keras() {
        assert_eq!(fans(&[3, 3, 16, 32]), (144.0, 288.0));
        assert_eq!(fans(&[784, 500]), (784.0, 500.0));
    }

    #[test]
    fn unknown_initialisers_are_errors() {
        assert!(init("glorot", &[2, 2], &mut Rng::new(0)).is_err());
    }

    /// Mean, standard deviation, min and max of a draw.
    fn stats(spec: &str, shape: &[usize]) -> (f64, f64, f64, f64) {
        let w = init(spec, shape, &mut Rng::new(7)).unwrap_or_else(|e| panic!("{e:?}"));
        let n = w.len() as f64;
        let mean = w.iter().map(|&v| v as f64).sum::<f64>() / n;
        let sd = (w.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n).sqrt();
        let min = w.iter().fold(f64::INFINITY, |m, &v| m.min(v as f64));
        let max = w.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(v as f64));
        (mean, sd, min, max)
    }

    fn close(what: &str, got: f64, want: f64, rel: f64) {
        assert!((got - want).abs() <= rel * want.abs().max(1e-3), "{what}: {got}, want {want}");
    }

    /// Every initialiser of the schema, on a big conv kernel [3, 3, 64, 128] (fan_in 576, fan_out 1152): the
    /// standard deviation and bounds Keras 3's definitions give, within sampling error (n = 73 728).
    #[test]
    fn draws_have_keras_statistics() {
        let shape = [3, 3, 64, 128];
        let (fi, fo, fa) = (576.0f64, 1152.0f64, 864.0f64);
        let u = 1.0 / 3f64.sqrt(); // σ of a uniform in ±limit is limit/√3
        let cases: &[(&str, f64, f64, Option<f64>)] = &[
            // (spec, mean, σ, bound)
            ("glorot_uniform", 0.0, (3.0 / fa).sqrt() * u, Some((3.0 / fa).sqrt())),
            ("glorot_normal", 0.0, (1.0 / fa).sqrt(), Some(2.0 * (1.0 / fa).sqrt() / TRUNCATION_SD)),
            ("he_uniform", 0.0, (6.0 / fi).sqrt() * u, Some((6.0 / fi).sqrt())),
            ("he_normal", 0.0, (2.0 / fi).sqrt(), Some(2.0 * (2.0 / fi).sqrt() / TRUNCATION_SD)),
            ("lecun_uniform", 0.0, (3.0 / fi).sqrt() * u, Some((3.0 / fi).sqrt())),
            ("lecun_normal", 0.0, (1.0 / fi).sqrt(), Some(2.0 * (1.0 / fi).sqrt() / TRUNCATION_SD)),
            ("normal", 0.0, 0.05, None),
            ("normal(0.02)", 0.0, 0.02, None),
            ("normal(stddev=0.5, mean=3.0)", 3.0, 0.5, None),
            ("truncated_normal(stddev=1.0, mean=-1.0)", -1.0, TRUNCATION_SD, Some(1.0)),
            ("uniform", 0.0, 0.05 * u, Some(0.05)),
            ("uniform(0.3)", 0.0, 0.3 * u, Some(0.3)),
            ("uniform(minval=1.0, maxval=3.0)", 2.0, u, Some(3.0)),
            ("constant(value=0.25)", 0.25, 0.0, Some(0.25)),
            ("variance_scaling", 0.0, (1.0 / fi).sqrt(), Some(2.0 * (1.0 / fi).sqrt() / TRUNCATION_SD)),
            (
                "variance_scaling(scale=3.0, mode=fan_out, distribution=untruncated_normal)",
                0.0,
                (3.0 / fo).sqrt(),
                None,
            ),
            // Keras's alias: `normal` is the truncated normal (bounded at 2σ / 0.8796).
            (
                "variance_scaling(distribution=normal)",
                0.0,
                (1.0 / fi).sqrt(),
                Some(2.0 * (1.0 / fi).sqrt() / TRUNCATION_SD),
            ),
            (
                "variance_scaling(mode=fan_avg, distribution=uniform)",
                0.0,
                (3.0 / fa).sqrt() * u,
                Some((3.0 / fa).sqrt()),
            ),
        ];
        for &(spec, mean, sd, bound) in cases {
            let (m, s, lo, hi) = stats(spec, &shape);
            assert!((m - mean).abs() <= 0.02 * sd.max(1e-3) + 1e-6, "{spec}: mean {m}, want {mean}");
            close(&format!("{spec} σ"), s, sd, 0.02);
            if let Some(b) = bound {
                let (blo, bhi) = if spec.starts_with("uniform(minval") { (1.0, 3.0) } else { (2.0 * mean - b, b) };
                assert!(lo >= blo - 1e-6 && hi <= bhi + 1e-6, "{spec}: [{lo}, {hi}] outside [{blo}, {bhi}]");
                // The draw reaches near its bounds (a wrong limit shows here, not only in σ).
                assert!(hi > bhi - 0.05 * (bhi - blo).max(1e-9) || sd == 0.0, "{spec}: max {hi}, bound {bhi}");
            }
        }
    }

    #[test]
    fn orthogonal_takes_a_gain_and_keras_rows() {
        // Keras flattens the leading axes into rows: [3, 3, 4, 8] is a 36 × 8 matrix with orthonormal columns.
        let w = init("orthogonal(gain=2.0)", &[3, 3, 4, 8], &mut Rng::new(5)).unwrap();
        let m = w.into_shape_with_order((36, 8)).unwrap();
        let g = m.t().dot(&m);
        for i in 0..8 {
            for j in 0..8 {
                let want = if i == j { 4.0 } else { 0.0 };
                assert!((g[[i, j]] - want).abs() < 1e-4, "{g}");
            }
        }
    }

    /// Options the checker refuses never reach here; if one did, it is an error, not a panic or a NaN.
    #[test]
    fn malformed_specs_are_errors() {
        for bad in ["normal(stddev=x)", "normal(sd=1.0)", "uniform(1.0, 2.0)", "variance_scaling(mode=fan_max)", "adam"]
        {
            assert!(init(bad, &[3], &mut Rng::new(0)).is_err(), "{bad}");
        }
    }

    /// Values a layer's option gives (`layer_scale`, `normalization`); a list must fit the shape.
    #[test]
    fn given_values_fill_or_must_fit() {
        let mut rng = Rng::new(0);
        assert_eq!(init("constant(1e-6)", &[3], &mut rng).unwrap().as_slice().unwrap(), &[1e-6f32; 3]);
        assert_eq!(init("constant(0.5)", &[], &mut rng).unwrap().as_slice().unwrap(), &[0.5f32]);
        assert_eq!(init("values(0.1, 0.2)", &[2], &mut rng).unwrap().as_slice().unwrap(), &[0.1f32, 0.2]);
        for bad in ["values(0.1, 0.2)", "constant(x)", "constant(1", "values()"] {
            assert!(init(bad, &[3], &mut rng).is_err(), "{bad}");
        }
    }
}
