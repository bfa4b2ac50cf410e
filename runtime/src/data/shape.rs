//! Shaping a loaded array for the model input it feeds (docs/src/reference/train.md:
//! "the selected columns are reshaped to the input's declared shape").

use ndarray::{ArrayD, IxDyn};

use super::{Array, DataError, Dataset};

/// Reshapes array `name` to `[samples] + shape` (`shape` is per sample, the
/// batch axis excluded): 64 columns → `[8, 8, 1]`. For `int` inputs the
/// values become i64 and must be integers; for float inputs integers
/// become f32. `origin` describes where the array came from
/// ("data/digits.csv.gz: columns 0..63") for the error messages.
pub fn fit_to_input(ds: &mut Dataset, name: &str, shape: &[usize], int: bool, origin: &str) -> Result<(), DataError> {
    let Some(array) = ds.arrays.get(name) else {
        let available: Vec<String> = ds.arrays.keys().cloned().collect();
        return Err(DataError::MissingArray {
            origin: origin.to_string(),
            array: name.to_string(),
            suggestion: super::suggest(name, available.iter().map(String::as_str)),
            available,
        });
    };
    // Check everything before taking the array out, so that an error leaves
    // the dataset as it was.
    let want: Option<usize> = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
    let have = if array.shape().is_empty() { 1 } else { array.per_sample() };
    if want != Some(have) {
        return Err(DataError::Shape {
            origin: origin.to_string(),
            array: name.to_string(),
            values: have,
            shape: shape.to_vec(),
        });
    }
    if let (Array::F32(a), true) = (array, int) {
        // i64 holds every integral f32 below 2⁶³.
        if let Some((i, &v)) = a.iter().enumerate().find(|(_, v)| !(v.fract() == 0.0 && v.abs() < 9.2e18)) {
            return Err(DataError::NotInteger {
                origin: origin.to_string(),
                array: name.to_string(),
                sample: i / have.max(1),
                value: v as f64,
            });
        }
    }
    let array = ds.arrays.remove(name).expect("looked up above");
    let mut full = vec![array.samples()];
    full.extend_from_slice(shape);
    let full = IxDyn(&full);
    // `into_shape_with_order` reads in logical (C) order, which is the order
    // of the selected columns and of `.npy`/IDX files.
    let fitted = match (array, int) {
        (Array::I64(a), true) => Array::I64(reshape(a, full)),
        (Array::I64(a), false) => Array::F32(reshape(a.mapv(|v| v as f32), full)),
        (Array::F32(a), false) => Array::F32(reshape(a, full)),
        (Array::F32(a), true) => Array::I64(reshape(a.mapv(|v| v as i64), full)),
    };
    ds.arrays.insert(name.to_string(), fitted);
    Ok(())
}

fn reshape<T: Clone>(a: ArrayD<T>, shape: IxDyn) -> ArrayD<T> {
    let a = if a.is_standard_layout() { a } else { a.as_standard_layout().into_owned() };
    a.into_shape_with_order(shape).expect("element count checked")
}

#[cfg(test)]
mod tests {
    use super::super::source::{CsvSpec, Selector, SourceSpec, load};
    use super::super::testutil::root;
    use super::*;

    fn digits(selector: Selector) -> (Dataset, String) {
        let l = load(
            &SourceSpec::Csv(
                CsvSpec::new("data/digits.csv.gz").array("pixels", selector).array("label", Selector::Index(64)),
            ),
            &root(),
        )
        .unwrap();
        let origin = l.origin("pixels", "pixels");
        (l.dataset, origin)
    }

    #[test]
    fn digits_columns_become_images_and_labels_ints() {
        let (mut ds, origin) = digits(Selector::Range(0, 64));
        fit_to_input(&mut ds, "pixels", &[8, 8, 1], false, &origin).unwrap();
        let Some(Array::F32(p)) = ds.get("pixels") else { panic!() };
        assert_eq!(p.shape(), &[1797, 8, 8, 1]);
        // Row-major: pixel (r, c) is column 8r + c. First row: 0,0,5,13,…
        assert_eq!(p[[0, 0, 2, 0]], 5.0);
        assert_eq!(p[[0, 0, 3, 0]], 13.0);
        fit_to_input(&mut ds, "label", &[], true, "label").unwrap();
        let Some(Array::I64(y)) = ds.get("label") else { panic!() };
        assert_eq!(y.shape(), &[1797]);
        assert_eq!(y[0], 0);
        // Ints back to floats, and `[N]` to `[N, 1]`.
        fit_to_input(&mut ds, "label", &[1], false, "label").unwrap();
        assert_eq!(ds.get("label").unwrap().shape(), &[1797, 1]);
        assert!(!ds.get("label").unwrap().is_int());
    }

    #[test]
    fn wrong_counts_name_both_numbers() {
        let (mut ds, origin) = digits(Selector::Range(0, 63));
        let e = fit_to_input(&mut ds, "pixels", &[8, 8, 1], false, &origin).unwrap_err();
        let path = root().join("data/digits.csv.gz");
        assert_eq!(
            e.to_string(),
            format!("{}: columns 0..63: 63 values per sample, input `pixels` [8, 8, 1] needs 64", path.display())
        );
        // The dataset is unchanged after an error.
        assert_eq!(ds.get("pixels").unwrap().shape(), &[1797, 63]);
        let e = fit_to_input(&mut ds, "label", &[2], true, "data/digits.csv.gz: column 64").unwrap_err();
        assert_eq!(e.to_string(), "data/digits.csv.gz: column 64: 1 value per sample, input `label` [2] needs 2");
    }

    #[test]
    fn non_integers_and_missing_arrays() {
        let mut ds = Dataset::default();
        ds.arrays.insert("y".into(), Array::F32(ndarray::arr1(&[1.0f32, 2.0, 2.5]).into_dyn()));
        let e = fit_to_input(&mut ds, "y", &[], true, "data/fish.csv: column `Weight`").unwrap_err();
        assert_eq!(e.to_string(), "data/fish.csv: column `Weight`: input `y` is int but sample 2 holds 2.5");
        ds.arrays.insert("z".into(), Array::F32(ndarray::arr1(&[f32::NAN]).into_dyn()));
        assert!(matches!(fit_to_input(&mut ds, "z", &[], true, "z"), Err(DataError::NotInteger { .. })));
        let e = fit_to_input(&mut ds, "lables", &[], true, "csv(\"data/x.csv\")").unwrap_err();
        assert_eq!(e.to_string(), "csv(\"data/x.csv\"): yields no array `lables` (it yields `y`, `z`)");
        ds.arrays.insert("labels".into(), Array::I64(ndarray::arr1(&[1i64]).into_dyn()));
        let e = fit_to_input(&mut ds, "lables", &[], true, "src").unwrap_err();
        assert!(e.to_string().ends_with("did you mean `labels`?"), "{e}");
        // Overflowing declared shapes are a mismatch, not a panic.
        assert!(fit_to_input(&mut ds, "labels", &[usize::MAX, 2], false, "src").is_err());
    }

    #[test]
    fn non_standard_layouts_reshape_in_logical_order() {
        let mut ds = Dataset::default();
        // [[0, 1, 2], [3, 4, 5]] stored transposed.
        let t = ndarray::arr2(&[[0.0f32, 3.0], [1.0, 4.0], [2.0, 5.0]]).reversed_axes().into_dyn();
        ds.arrays.insert("x".into(), Array::F32(t));
        fit_to_input(&mut ds, "x", &[3, 1], false, "x").unwrap();
        assert_eq!(
            ds.get("x").unwrap().to_f32().iter().copied().collect::<Vec<_>>(),
            vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
        );
    }
}
