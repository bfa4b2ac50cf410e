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

/// Initialises a parameter by initialiser name (`glorot_uniform`, `zeros`, …).
pub fn init(name: &str, shape: &[usize], rng: &mut Rng) -> Result<ArrayD<f32>, UnknownInitialiser> {
    let n: usize = shape.iter().product();
    let (fan_in, fan_out) = fans(shape);
    let data: Vec<f64> = match name {
        "zeros" => vec![0.0; n],
        "ones" => vec![1.0; n],
        "glorot_uniform" => {
            let limit = (6.0 / (fan_in + fan_out)).sqrt();
            (0..n).map(|_| (rng.uniform_f64() * 2.0 - 1.0) * limit).collect()
        }
        "he_uniform" => {
            let limit = (6.0 / fan_in).sqrt();
            (0..n).map(|_| (rng.uniform_f64() * 2.0 - 1.0) * limit).collect()
        }
        // Keras's variance-scaling normals are truncated at 2σ, corrected by 0.8796.
        "glorot_normal" => {
            let sd = (2.0 / (fan_in + fan_out)).sqrt() / 0.879_625_661_034_239_8;
            (0..n).map(|_| rng.truncated_normal_f64() * sd).collect()
        }
        "he_normal" => {
            let sd = (2.0 / fan_in).sqrt() / 0.879_625_661_034_239_8;
            (0..n).map(|_| rng.truncated_normal_f64() * sd).collect()
        }
        "normal" => (0..n).map(|_| rng.normal_f64() * 0.05).collect(),
        "uniform" => (0..n).map(|_| (rng.uniform_f64() * 2.0 - 1.0) * 0.05).collect(),
        "orthogonal" => orthogonal(shape, rng),
        // Values a layer's option gives (`layer_scale(init_values = 1e-6)`, `normalization(mean = …)`).
        other => match given_values(other, n) {
            Some(v) => v,
            None => return Err(UnknownInitialiser(other.to_string())),
        },
    };
    Ok(ArrayD::from_shape_vec(IxDyn(shape), data.into_iter().map(|v| v as f32).collect()).expect("init size"))
}

/// `constant(v)` (every element v) or `values(a, b, …)` (exactly `n` elements).
fn given_values(spec: &str, n: usize) -> Option<Vec<f64>> {
    if let Some(v) = spec.strip_prefix("constant(").and_then(|r| r.strip_suffix(')')) {
        return v.trim().parse::<f64>().ok().map(|v| vec![v; n]);
    }
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
