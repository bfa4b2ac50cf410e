//! Validation splits, mini-batches and row gathering. Every random choice
//! draws from [`Rng`] streams derived from the run's seed, so a seed
//! reproduces the same split and the same batch order everywhere.

use super::Dataset;
use crate::rng::Rng;

/// Stream numbers under the run's seed (see [`Rng::derive`]).
const SPLIT_STREAM: u64 = 0x5917;
const EPOCH_STREAM: u64 = 0xE90C_0000_0000;

/// How many of `len` rows `fraction` holds out: `len − floor(len · (1 −
/// fraction))` (Keras's count for `validation_split`); `fraction` is
/// clamped to [0, 1] and NaN counts as 0.
fn held_out(len: usize, fraction: f64) -> usize {
    let f = if fraction.is_nan() { 0.0 } else { fraction.clamp(0.0, 1.0) };
    let n_train = ((len as f64) * (1.0 - f)).floor() as usize;
    len - n_train.min(len)
}

/// Splits `0..len` into (training, validation) indices, each in file order.
/// The validation part is `held_out(len, fraction)` rows chosen by a seeded shuffle.
pub fn split(len: usize, fraction: f64, seed: u64) -> (Vec<usize>, Vec<usize>) {
    let n_val = held_out(len, fraction);
    let mut idx: Vec<usize> = (0..len).collect();
    Rng::derive(seed, SPLIT_STREAM).shuffle(&mut idx);
    let (val, train) = idx.split_at(n_val);
    let (mut train, mut val) = (train.to_vec(), val.to_vec());
    train.sort_unstable();
    val.sort_unstable();
    (train, val)
}

/// Splits `0..len` like [`split`] but holds out the last rows (as Keras's
/// `validation_split` does), so a stream of consecutive rows stays one
/// stream on each side (`stateful = true`).
pub fn split_tail(len: usize, fraction: f64) -> (Vec<usize>, Vec<usize>) {
    let n_train = len - held_out(len, fraction);
    ((0..n_train).collect(), (n_train..len).collect())
}

/// The batches of one epoch: `indices` (shuffled with a stream of `seed`
/// and `epoch` when `shuffle`) cut into runs of `batch`; the last, partial
/// batch is kept. `batch = 0` is treated as 1.
pub fn batches(indices: &[usize], batch: usize, shuffle: bool, seed: u64, epoch: usize) -> Vec<Vec<usize>> {
    let mut order = indices.to_vec();
    if shuffle {
        Rng::derive(seed, EPOCH_STREAM + epoch as u64).shuffle(&mut order);
    }
    order.chunks(batch.max(1)).map(<[usize]>::to_vec).collect()
}

/// The rows `idx` of every array of `ds`, in that order. Panics if an index
/// is out of range (indices come from [`split`] and [`batches`]).
pub fn take(ds: &Dataset, idx: &[usize]) -> Dataset {
    Dataset { arrays: ds.arrays.iter().map(|(k, a)| (k.clone(), a.select(idx))).collect() }
}

#[cfg(test)]
mod tests {
    use super::super::Array;
    use super::*;

    #[test]
    fn splits_are_seeded_disjoint_and_complete() {
        let (t, v) = split(1797, 0.1, 7);
        assert_eq!((t.len(), v.len()), (1617, 180));
        let mut all: Vec<usize> = t.iter().chain(&v).copied().collect();
        all.sort();
        assert_eq!(all, (0..1797).collect::<Vec<_>>());
        assert!(t.windows(2).all(|w| w[0] < w[1]) && v.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(split(1797, 0.1, 7), (t.clone(), v.clone()));
        assert_ne!(split(1797, 0.1, 8).1, v);
        // Keras's counts: 158 × 0.7 = 110.6 → 110 training rows.
        assert_eq!(split(158, 0.3, 0).1.len(), 48);
        assert_eq!(split(5, 0.05, 0).1.len(), 1);
        assert_eq!(split(10, 0.0, 0), ((0..10).collect(), vec![]));
        assert!(split(10, 1.0, 0).0.is_empty());
        assert!(split(10, f64::NAN, 0).1.is_empty());
        assert_eq!(split(10, 7.0, 0).1.len(), 10);
        assert_eq!(split(0, 0.5, 0), (vec![], vec![]));
        // Pinned: a change here changes every seeded run's validation rows.
        assert_eq!(split(10, 0.3, 1), (vec![0, 2, 4, 6, 7, 8, 9], vec![1, 3, 5]));
        assert_eq!(split_tail(10, 0.3), ((0..7).collect(), vec![7, 8, 9]));
        assert_eq!(split_tail(158, 0.3).1.len(), 48);
        assert_eq!(split_tail(3, f64::NAN), ((0..3).collect(), vec![]));
    }

    #[test]
    fn batches_per_epoch() {
        let idx: Vec<usize> = (100..110).collect();
        let b = batches(&idx, 4, false, 1, 0);
        assert_eq!(b, vec![vec![100, 101, 102, 103], vec![104, 105, 106, 107], vec![108, 109]]);
        let e0 = batches(&idx, 4, true, 1, 0);
        let e1 = batches(&idx, 4, true, 1, 1);
        assert_eq!(e0, batches(&idx, 4, true, 1, 0), "same seed and epoch, same batches");
        assert_ne!(e0, e1, "each epoch reshuffles");
        assert_eq!(e0.iter().map(Vec::len).collect::<Vec<_>>(), [4, 4, 2]);
        let mut flat: Vec<usize> = e1.concat();
        flat.sort();
        assert_eq!(flat, idx);
        assert_eq!(batches(&idx, 0, false, 0, 0).len(), 10);
        assert_eq!(batches(&[], 4, true, 0, 0), Vec::<Vec<usize>>::new());
        assert_eq!(batches(&idx, 100, false, 0, 0), vec![idx.clone()]);
        assert_eq!(batches(&(0..7).collect::<Vec<_>>(), 3, true, 1, 0), vec![vec![2, 0, 5], vec![4, 6, 1], vec![3]]);
    }

    #[test]
    fn take_gathers_rows() {
        let mut ds = Dataset::default();
        ds.arrays.insert(
            "x".into(),
            Array::F32(ndarray::Array3::from_shape_fn((5, 2, 1), |(i, j, _)| (i * 10 + j) as f32).into_dyn()),
        );
        ds.arrays.insert("y".into(), Array::I64(ndarray::arr1(&[0i64, 1, 2, 3, 4]).into_dyn()));
        let t = take(&ds, &[4, 4, 0]);
        assert_eq!(t.len(), 3);
        assert_eq!(t.get("x").unwrap().shape(), &[3, 2, 1]);
        assert_eq!(
            t.get("x").unwrap().to_f32().iter().copied().collect::<Vec<_>>(),
            vec![40.0, 41.0, 40.0, 41.0, 0.0, 1.0]
        );
        assert_eq!(t.get("y"), Some(&Array::I64(ndarray::arr1(&[4i64, 4, 0]).into_dyn())));
        assert_eq!(take(&ds, &[]).len(), 0);
    }
}
