//! Dims bound by data (docs/src/decisions.md): an input declared `int[N, T]` fed
//! by sentences padded to 57 words makes `T = 57`; a vocabulary of 41
//! characters makes `V = 41`. The checker decides *which* dims the data
//! binds (and rejects what stays unbound); this module finds their values
//! in the loaded arrays, and refuses a dim bound twice to different values.

use std::collections::BTreeMap;

use nnc_compiler::dims::Dim;

use super::{DataError, Dataset};

/// Values of dims, each with what bound it (for messages).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Bindings {
    values: BTreeMap<String, (i64, String)>,
}

impl Bindings {
    /// Binds `dim` to `value`; binding it again to another value is an
    /// error naming both sources.
    pub fn bind(&mut self, dim: &str, value: i64, source: &str) -> Result<(), DataError> {
        if value < 1 {
            return Err(DataError::Dim {
                dim: dim.into(),
                reason: format!("{source} makes it {value}; dims are at least 1"),
            });
        }
        match self.values.get(dim) {
            Some((v, _)) if *v == value => Ok(()),
            Some((v, first)) => Err(DataError::Dim {
                dim: dim.into(),
                reason: format!("bound twice: {v} by {first}, {value} by {source}"),
            }),
            None => {
                self.values.insert(dim.to_string(), (value, source.to_string()));
                Ok(())
            }
        }
    }

    /// The value bound to `dim`, if any.
    pub fn get(&self, dim: &str) -> Option<i64> {
        self.values.get(dim).map(|(v, _)| *v)
    }

    /// `(dim, value)` pairs, sorted by name, as the lowering takes them.
    pub fn to_vec(&self) -> Vec<(String, i64)> {
        self.values.iter().map(|(k, (v, _))| (k.clone(), *v)).collect()
    }

    /// Whether no dim is bound.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// `dim` with the bound values substituted. A substitution that overflows
    /// leaves the dim symbolic: it then counts as not fixed by the data, and
    /// the checker has already refused such sizes (E0314).
    pub fn resolve(&self, d: &Dim) -> Dim {
        d.substitute(&|s| self.get(s).map(Dim::Known)).unwrap_or_else(|_| d.clone())
    }
}

/// The dim itself when `d` is one plain name (`T`, not `2*T`).
fn plain(d: &Dim) -> Option<String> {
    match d.symbols().as_slice() {
        [s] if *d == Dim::sym(s) => Some(s.to_string()),
        _ => None,
    }
}

/// Binds the symbolic dims of `declared` (an input's per-sample dims) from
/// `found` (the per-sample shape of the array that feeds it). With equal
/// ranks the axes pair up; otherwise one open dim is solved from the number
/// of values (64 columns for `[8, 8, C]` make `C = 1`). `bindable` limits
/// which dims the data may bind (those the checker found unbound).
pub fn bind_shape(
    b: &mut Bindings,
    input: &str,
    declared: &[Dim],
    found: &[usize],
    origin: &str,
    bindable: &dyn Fn(&str) -> bool,
) -> Result<(), DataError> {
    let source = format!("{origin} (input `{input}`)");
    // Dims bound already (by another source, or the checkpoint) are bound
    // again from this array: the same value passes, another names both.
    let plain_axes: Vec<(usize, String)> =
        declared.iter().enumerate().filter_map(|(i, d)| plain(d).filter(|s| bindable(s)).map(|s| (i, s))).collect();
    if found.len() == declared.len() {
        for (i, s) in &plain_axes {
            if b.get(s).is_some() {
                b.bind(s, found[*i] as i64, &source)?;
            }
        }
    } else if let [(i, s)] = plain_axes.as_slice() {
        let rest = declared
            .iter()
            .enumerate()
            .filter(|(k, _)| k != i)
            .try_fold(1i64, |a, (_, d)| a.checked_mul(b.resolve(d).as_known()?));
        let values = found.iter().try_fold(1i64, |a, &f| a.checked_mul(f as i64));
        if let (Some(_), Some(rest), Some(values)) = (b.get(s), rest.filter(|&r| r > 0), values)
            && values % rest == 0
        {
            b.bind(s, values / rest, &source)?;
        }
    }
    let open: Vec<usize> = (0..declared.len()).filter(|&i| b.resolve(&declared[i]).as_known().is_none()).collect();
    if open.is_empty() {
        return Ok(());
    }
    let unsolvable = |why: String| DataError::Dim {
        dim: open.iter().map(|&i| declared[i].to_string()).collect::<Vec<_>>().join(", "),
        reason: format!(
            "{origin}: input `{input}` [{}] is fed {found:?} per sample: {why}",
            declared.iter().map(Dim::to_string).collect::<Vec<_>>().join(", ")
        ),
    };
    if found.len() == declared.len() {
        for &i in &open {
            if let Some(s) = plain(&declared[i]).filter(|s| bindable(s)) {
                b.bind(&s, found[i] as i64, &source)?;
            }
        }
    } else {
        let names: Vec<String> = open.iter().filter_map(|&i| plain(&declared[i])).filter(|s| bindable(s)).collect();
        let [name] = names.as_slice() else {
            return Err(unsolvable("the ranks differ and more than one dim is open".into()));
        };
        let values = found.iter().try_fold(1i64, |a, &f| a.checked_mul(i64::try_from(f).ok()?)).unwrap_or(-1);
        let rest = declared
            .iter()
            .filter_map(|d| b.resolve(d).as_known())
            .try_fold(1i64, |a, k| a.checked_mul(k))
            .unwrap_or(-1);
        let count = declared.iter().filter(|d| plain(d).as_deref() == Some(name.as_str())).count();
        if rest <= 0 || values < 0 || count != 1 || values % rest != 0 {
            return Err(unsolvable(format!("{values} values are not a multiple of {rest}")));
        }
        b.bind(name, values / rest, &source)?;
    }
    // Expressions such as `2*T` must now hold.
    for (i, d) in declared.iter().enumerate() {
        if let (Some(v), Some(&f)) = (b.resolve(d).as_known(), found.get(i))
            && found.len() == declared.len()
            && v != f as i64
        {
            return Err(unsolvable(format!("axis {} is {f}, `{d}` = {v}", i + 1)));
        }
    }
    if declared.iter().any(|d| b.resolve(d).as_known().is_none()) {
        return Err(unsolvable("the data does not decide every dim".into()));
    }
    Ok(())
}

/// The concrete per-sample shape of `declared` once its dims are bound.
pub fn concrete(declared: &[Dim], b: &Bindings) -> Option<Vec<usize>> {
    declared.iter().map(|d| b.resolve(d).as_known().filter(|&v| v >= 0).map(|v| v as usize)).collect()
}

/// An input's declared per-sample dims (batch axis removed) and element type.
#[derive(Clone, Debug, PartialEq)]
pub struct Declared {
    /// The input's name.
    pub name: String,
    /// Its per-sample dims, possibly symbolic.
    pub dims: Vec<Dim>,
    /// Whether it is an `int[…]` input.
    pub int: bool,
}

/// Binds the dims of every `inputs` entry that `ds` feeds, then shapes
/// those arrays for their inputs ([`super::fit_to_input`]). `origin` names
/// an array's source for messages.
pub fn bind_inputs(
    ds: &mut Dataset,
    inputs: &[Declared],
    b: &mut Bindings,
    origin: &dyn Fn(&str) -> String,
    bindable: &dyn Fn(&str) -> bool,
) -> Result<(), DataError> {
    for input in inputs {
        let Some(a) = ds.get(&input.name) else { continue };
        let found: Vec<usize> = a.shape().iter().skip(1).copied().collect();
        bind_shape(b, &input.name, &input.dims, &found, &origin(&input.name), bindable)?;
    }
    for input in inputs {
        if !ds.arrays.contains_key(&input.name) {
            continue;
        }
        if let Some(shape) = concrete(&input.dims, b) {
            super::fit_to_input(ds, &input.name, &shape, input.int, &origin(&input.name))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::Array;
    use super::*;
    use ndarray::{ArrayD, IxDyn};

    fn any(_: &str) -> bool {
        true
    }

    #[test]
    fn axes_pair_up_and_twice_bound_dims_are_errors() {
        let mut b = Bindings::default();
        bind_shape(&mut b, "tokens", &[Dim::sym("T")], &[57], "s.tsv", &any).unwrap();
        assert_eq!(b.get("T"), Some(57));
        // The same value again is fine; another is an error naming both sources.
        bind_shape(&mut b, "tokens", &[Dim::sym("T")], &[57], "val.tsv", &any).unwrap();
        let e = bind_shape(&mut b, "tokens", &[Dim::sym("T")], &[40], "val.tsv", &any).unwrap_err().to_string();
        assert!(e.contains("`T`") && e.contains("57 by s.tsv") && e.contains("40 by val.tsv"), "{e}");
        assert_eq!(b.to_vec(), [("T".to_string(), 57)]);
    }

    #[test]
    fn one_open_dim_is_solved_from_the_count() {
        let mut b = Bindings::default();
        let hw = [Dim::Known(8), Dim::Known(8), Dim::sym("C")];
        bind_shape(&mut b, "x", &hw, &[128], "f.csv: columns 0..128", &any).unwrap();
        assert_eq!(b.get("C"), Some(2));
        let mut b = Bindings::default();
        let e = bind_shape(&mut b, "x", &hw, &[100], "f.csv", &any).unwrap_err().to_string();
        assert!(e.contains("not a multiple of 64"), "{e}");
        let e =
            bind_shape(&mut b, "x", &[Dim::sym("H"), Dim::sym("W")], &[100], "f.csv", &any).unwrap_err().to_string();
        assert!(e.contains("more than one dim"), "{e}");
        // An expression of a bound dim must hold.
        let mut b = Bindings::default();
        let two_t = Dim::sym("T").mul(&Dim::Known(2)).unwrap();
        let e = bind_shape(&mut b, "x", &[Dim::sym("T"), two_t], &[3, 5], "x.npy", &any).unwrap_err().to_string();
        assert!(e.contains("axis 2 is 5"), "{e}");
        // Zero-sized axes bind nothing.
        assert!(bind_shape(&mut b, "x", &[Dim::sym("Z")], &[0], "x.npy", &any).is_err());
    }

    #[test]
    fn inputs_are_bound_then_shaped() {
        let mut ds = Dataset::default();
        ds.arrays.insert("x".into(), Array::F32(ArrayD::zeros(IxDyn(&[5, 12]))));
        let inputs = [Declared { name: "x".into(), dims: vec![Dim::sym("F"), Dim::Known(3)], int: false }];
        let mut b = Bindings::default();
        bind_inputs(&mut ds, &inputs, &mut b, &|n| format!("array `{n}`"), &any).unwrap();
        assert_eq!(b.get("F"), Some(4));
        assert_eq!(ds.get("x").unwrap().shape(), &[5, 4, 3]);
    }
}
