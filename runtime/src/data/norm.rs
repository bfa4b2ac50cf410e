//! `normalize = {x: zscore}`: per-feature standardisation with statistics
//! from the training rows only (docs/src/decisions.md), so validation rows do not
//! leak into training. The statistics are saved in the checkpoint's
//! metadata and re-applied by `nnc predict`.

use std::collections::BTreeMap;

use ndarray::{ArrayD, Ix2};

use super::{Array, DataError, Dataset};

/// Per-feature mean and population standard deviation of one array; a
/// feature is one position within a sample (a pixel, a column).
#[derive(Clone, Debug, PartialEq)]
pub struct ZScore {
    /// Mean of each feature.
    pub mean: Vec<f32>,
    /// Zero deviations are stored as 1, so constant features map to 0
    /// instead of dividing by zero.
    pub std: Vec<f32>,
}

impl ZScore {
    /// `{"mean": […], "std": […]}`, the checkpoint metadata format.
    pub fn to_json(&self) -> String {
        serde_json::json!({"mean": self.mean, "std": self.std}).to_string()
    }

    /// Reads the JSON `to_json` writes; errors name `array`.
    pub fn from_json(array: &str, text: &str) -> Result<ZScore, DataError> {
        let bad = |r: &str| DataError::Stats { array: array.to_string(), reason: r.to_string() };
        let v: serde_json::Value = serde_json::from_str(text).map_err(|e| bad(&format!("not JSON: {e}")))?;
        let list = |k: &str| -> Result<Vec<f32>, DataError> {
            v.get(k)
                .and_then(|x| x.as_array())
                .ok_or_else(|| bad(&format!("no `{k}` list")))?
                .iter()
                .map(|x| x.as_f64().map(|f| f as f32).ok_or_else(|| bad(&format!("`{k}` holds a non-number"))))
                .collect()
        };
        let z = ZScore { mean: list("mean")?, std: list("std")? };
        if z.mean.len() != z.std.len() {
            return Err(bad(&format!("{} means but {} deviations", z.mean.len(), z.std.len())));
        }
        if z.std.iter().any(|&s| s == 0.0 || !s.is_finite()) {
            return Err(bad("a deviation is zero or not finite"));
        }
        Ok(z)
    }

    /// Statistics of the rows `rows` of `a` (f64 accumulation, two passes).
    pub fn fit(array: &str, a: &Array, rows: &[usize]) -> Result<ZScore, DataError> {
        let Array::F32(a) = a else {
            return Err(DataError::NotFloat { array: array.to_string() });
        };
        let flat = as_rows(a);
        let per = flat.ncols();
        let n = rows.len();
        let mut mean = vec![0f64; per];
        for &r in rows {
            for (m, &v) in mean.iter_mut().zip(flat.row(r)) {
                *m += v as f64;
            }
        }
        mean.iter_mut().for_each(|m| *m /= n.max(1) as f64);
        let mut var = vec![0f64; per];
        for &r in rows {
            for ((s, &v), m) in var.iter_mut().zip(flat.row(r)).zip(&mean) {
                *s += (v as f64 - m).powi(2);
            }
        }
        let std = var
            .iter()
            .map(|s| (s / n.max(1) as f64).sqrt() as f32)
            .map(|s| if s > 0.0 && s.is_finite() { s } else { 1.0 })
            .collect();
        Ok(ZScore { mean: mean.into_iter().map(|m| m as f32).collect(), std })
    }

    /// `(x − mean) / std` per feature.
    pub fn apply(&self, array: &str, a: &Array) -> Result<Array, DataError> {
        let Array::F32(a) = a else {
            return Err(DataError::NotFloat { array: array.to_string() });
        };
        let per = if a.ndim() == 0 { 1 } else { a.len() / a.shape()[0].max(1) };
        if per != self.mean.len() && !a.is_empty() {
            return Err(DataError::Stats {
                array: array.to_string(),
                reason: format!("{} features saved, the array has {per} per sample", self.mean.len()),
            });
        }
        let mut out = a.as_standard_layout().into_owned();
        if let Some(s) = out.as_slice_mut() {
            for row in s.chunks_mut(per.max(1)) {
                for ((v, m), sd) in row.iter_mut().zip(&self.mean).zip(&self.std) {
                    *v = (*v - m) / sd;
                }
            }
        }
        Ok(Array::F32(out))
    }
}

/// A `[samples, features]` view of a float array.
fn as_rows(a: &ArrayD<f32>) -> ndarray::Array2<f32> {
    let rows = if a.ndim() == 0 { 1 } else { a.shape()[0] };
    let per = a.len().checked_div(rows).unwrap_or_else(|| a.shape().iter().skip(1).product());
    let std = a.as_standard_layout();
    std.to_owned()
        .into_shape_with_order((rows, per))
        .expect("rows × features")
        .into_dimensionality::<Ix2>()
        .expect("2-D")
}

/// Standardises the arrays `names` of `ds` in place (all rows), with
/// statistics from `train_rows`; returns the statistics per array.
pub fn zscore(ds: &mut Dataset, names: &[String], train_rows: &[usize]) -> Result<BTreeMap<String, ZScore>, DataError> {
    let mut stats = BTreeMap::new();
    for name in names {
        let a = ds.arrays.get(name).ok_or_else(|| {
            let available: Vec<String> = ds.arrays.keys().cloned().collect();
            DataError::MissingArray {
                origin: "normalize".into(),
                array: name.clone(),
                suggestion: super::suggest(name, available.iter().map(String::as_str)),
                available,
            }
        })?;
        let z = ZScore::fit(name, a, train_rows)?;
        let out = z.apply(name, a)?;
        ds.arrays.insert(name.clone(), out);
        stats.insert(name.clone(), z);
    }
    Ok(stats)
}

/// Re-applies saved statistics (validation data, `predict` inputs). Arrays
/// without statistics are left alone; statistics without an array are
/// ignored (a predict run may not load the targets).
pub fn apply_zscore(ds: &mut Dataset, stats: &BTreeMap<String, ZScore>) -> Result<(), DataError> {
    for (name, z) in stats {
        if let Some(a) = ds.arrays.get(name) {
            let out = z.apply(name, a)?;
            ds.arrays.insert(name.clone(), out);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::source::{CsvSpec, Selector, SourceSpec, load};
    use super::super::testutil::root;
    use super::*;

    #[test]
    fn fish_statistics_from_training_rows() {
        let spec = CsvSpec::new("data/fish.csv")
            .array("x", Selector::List(vec![Selector::Name("Height".into()), Selector::Name("Width".into())]))
            .array("y", Selector::Name("Weight".into()));
        let mut ds = load(&SourceSpec::Csv(spec), &root()).unwrap().dataset;
        let raw = ds.clone();
        let (train, val) = super::super::split(ds.len(), 0.3, 42);
        let stats = zscore(&mut ds, &["x".into(), "y".into()], &train).unwrap();
        // Training rows now have mean 0 and population std 1 per feature.
        let x = ds.get("x").unwrap().to_f32();
        for j in 0..2 {
            let col: Vec<f64> = train.iter().map(|&r| x[[r, j]] as f64).collect();
            let m = col.iter().sum::<f64>() / col.len() as f64;
            let s = (col.iter().map(|v| (v - m).powi(2)).sum::<f64>() / col.len() as f64).sqrt();
            assert!(m.abs() < 1e-5 && (s - 1.0).abs() < 1e-5, "feature {j}: {m} {s}");
        }
        // Validation rows use the training statistics (not their own).
        let raw_x = raw.get("x").unwrap().to_f32();
        let r = val[0];
        assert!((x[[r, 1]] - (raw_x[[r, 1]] - stats["x"].mean[1]) / stats["x"].std[1]).abs() < 1e-6);
        // Hand-computed mean of Height over the training rows.
        let m: f64 = train.iter().map(|&r| raw_x[[r, 0]] as f64).sum::<f64>() / train.len() as f64;
        assert!((stats["x"].mean[0] as f64 - m).abs() < 1e-4);
        // Saved and re-applied: same result.
        let back = ZScore::from_json("x", &stats["x"].to_json()).unwrap();
        assert_eq!(back, stats["x"]);
        let mut again = raw.clone();
        apply_zscore(&mut again, &stats).unwrap();
        assert_eq!(again, ds);
    }

    #[test]
    fn constant_features_and_images() {
        let mut ds = Dataset::default();
        let a =
            ndarray::Array3::from_shape_fn(
                (4, 2, 2),
                |(i, j, k)| if j == 0 && k == 0 { 7.0 } else { (i * 4 + j * 2 + k) as f32 },
            );
        ds.arrays.insert("img".into(), Array::F32(a.into_dyn()));
        let s = zscore(&mut ds, &["img".into()], &[0, 1, 2, 3]).unwrap();
        assert_eq!(s["img"].mean.len(), 4);
        assert_eq!((s["img"].mean[0], s["img"].std[0]), (7.0, 1.0));
        let out = ds.get("img").unwrap().to_f32();
        assert_eq!(out.shape(), &[4, 2, 2]);
        assert!(out.iter().step_by(4).all(|&v| v == 0.0));
    }

    #[test]
    fn errors() {
        let mut ds = Dataset::default();
        ds.arrays.insert("labels".into(), Array::I64(ndarray::arr1(&[1i64, 2]).into_dyn()));
        ds.arrays.insert("x".into(), Array::F32(ndarray::arr2(&[[1.0f32, 2.0], [3.0, 4.0]]).into_dyn()));
        assert_eq!(
            zscore(&mut ds, &["labels".into()], &[0]).unwrap_err(),
            DataError::NotFloat { array: "labels".into() }
        );
        assert!(zscore(&mut ds, &["X".into()], &[0]).unwrap_err().to_string().contains("did you mean `x`"));
        let wrong = BTreeMap::from([("x".to_string(), ZScore { mean: vec![0.0; 3], std: vec![1.0; 3] })]);
        let e = apply_zscore(&mut ds, &wrong).unwrap_err();
        assert!(e.to_string().contains("3 features saved, the array has 2 per sample"), "{e}");
        for bad in [
            "{",
            "{\"mean\": [1]}",
            "{\"mean\": [1], \"std\": [1, 2]}",
            "{\"mean\": [1], \"std\": [0]}",
            "{\"mean\": [\"a\"], \"std\": [1]}",
        ] {
            assert!(ZScore::from_json("x", bad).is_err(), "{bad}");
        }
        // No training rows: identity statistics.
        let s = zscore(&mut ds, &["x".into()], &[]).unwrap();
        assert_eq!(s["x"], ZScore { mean: vec![0.0, 0.0], std: vec![1.0, 1.0] });
    }
}
