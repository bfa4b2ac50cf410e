//! `synthetic(n = 1000)`: seeded random arrays of declared shapes, for
//! trying a model before real data exists.

use ndarray::{ArrayD, IxDyn};

use super::source::{Loaded, SyntheticKind, SyntheticSpec};
use super::{Array, DataError};
use crate::rng::Rng;

/// Floats are standard normal, ints uniform in [0, classes). Each array
/// draws from its own stream (derived from the seed and its position), so
/// adding an array does not change the others' values.
pub(super) fn load(spec: &SyntheticSpec) -> Result<Loaded, DataError> {
    let source = || format!("synthetic(n = {})", spec.n);
    if spec.n == 0 {
        return Err(DataError::Spec { source: source(), reason: "n must be at least 1".into() });
    }
    if spec.arrays.is_empty() {
        return Err(DataError::Spec { source: source(), reason: "no arrays to generate".into() });
    }
    let mut l = Loaded::default();
    for (k, a) in spec.arrays.iter().enumerate() {
        let mut shape = vec![spec.n];
        shape.extend(&a.shape);
        let count =
            shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d)).filter(|&c| c <= 1 << 32).ok_or_else(|| {
                DataError::Spec { source: source(), reason: format!("`{}` of shape {shape:?} is too large", a.name) }
            })?;
        let mut rng = Rng::derive(spec.seed, 0x5EED_0000 + k as u64);
        let array = match a.kind {
            SyntheticKind::Float => Array::F32(
                ArrayD::from_shape_vec(IxDyn(&shape), (0..count).map(|_| rng.normal_f32()).collect()).expect("count"),
            ),
            SyntheticKind::Int { classes } => {
                if classes == 0 {
                    return Err(DataError::Spec {
                        source: source(),
                        reason: format!("`{}`: classes must be at least 1", a.name),
                    });
                }
                Array::I64(
                    ArrayD::from_shape_vec(IxDyn(&shape), (0..count).map(|_| rng.below(classes) as i64).collect())
                        .expect("count"),
                )
            }
        };
        l.origins.insert(a.name.clone(), format!("{}: `{}`", source(), a.name));
        l.dataset.arrays.insert(a.name.clone(), array);
    }
    Ok(l)
}

#[cfg(test)]
mod tests {
    use super::super::source::{SourceSpec, SyntheticArray, load as load_source};
    use super::*;

    fn spec(seed: u64) -> SyntheticSpec {
        SyntheticSpec {
            n: 2000,
            arrays: vec![
                SyntheticArray { name: "x".into(), shape: vec![4, 3], kind: SyntheticKind::Float },
                SyntheticArray { name: "y".into(), shape: vec![], kind: SyntheticKind::Int { classes: 5 } },
            ],
            seed,
        }
    }

    #[test]
    fn shapes_distributions_and_seeds() {
        let a = load_source(&SourceSpec::Synthetic(spec(1)), std::path::Path::new(".")).unwrap();
        assert_eq!(a.dataset.len(), 2000);
        let Some(Array::F32(x)) = a.dataset.get("x") else { panic!() };
        assert_eq!(x.shape(), &[2000, 4, 3]);
        let m = x.iter().map(|&v| v as f64).sum::<f64>() / x.len() as f64;
        let var = x.iter().map(|&v| (v as f64 - m).powi(2)).sum::<f64>() / x.len() as f64;
        assert!(m.abs() < 0.05 && (var - 1.0).abs() < 0.05, "{m} {var}");
        let Some(Array::I64(y)) = a.dataset.get("y") else { panic!() };
        assert_eq!(y.shape(), &[2000]);
        assert!((0..5).all(|c| y.iter().filter(|&&v| v == c).count() > 300));
        assert!(y.iter().all(|&v| (0..5).contains(&v)));
        assert_eq!(a, load(&spec(1)).unwrap(), "same seed, same data");
        assert_ne!(a.dataset.get("x"), load(&spec(2)).unwrap().dataset.get("x"));
        // Removing an array leaves the other's values unchanged.
        let mut only_x = spec(1);
        only_x.arrays.truncate(1);
        assert_eq!(load(&only_x).unwrap().dataset.get("x"), a.dataset.get("x"));
    }

    #[test]
    fn bad_specs() {
        let mut s = spec(0);
        s.n = 0;
        assert!(matches!(load(&s), Err(DataError::Spec { .. })));
        let mut s = spec(0);
        s.arrays[1].kind = SyntheticKind::Int { classes: 0 };
        assert!(load(&s).unwrap_err().to_string().contains("classes must be at least 1"));
        let mut s = spec(0);
        s.arrays[0].shape = vec![1 << 20, 1 << 20];
        assert!(load(&s).unwrap_err().to_string().contains("too large"));
        let mut s = spec(0);
        s.arrays.clear();
        assert!(load(&s).is_err());
    }
}
