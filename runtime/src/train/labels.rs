//! Integer data checked against what reads it, before training starts:
//! class labels against the number of classes of the loss (`one_hot`) and
//! token ids against an embedding's table. A run used to fail mid-epoch
//! with "index 7 outside a table of 3 rows"; now it refuses at the start,
//! naming the file and column, the row, the value and the classes.

use std::collections::BTreeMap;

use nnc_compiler::ir::{Func, Id, Op};

use crate::exec::Tensor;

/// An integer input of a function and the bound an op puts on its values.
#[derive(Clone, Debug, PartialEq)]
pub struct IndexUse {
    /// The input (data array) the indices come from.
    pub input: String,
    /// Values must lie in `0..bound`.
    pub bound: usize,
    /// What reads them: "the loss's 3 classes", "layer `embed` (a table of 100 rows)".
    pub reader: String,
}

/// The index uses of `f`'s inputs: `one_hot` and gathers whose index operand
/// is an input, directly or through reshapes.
pub fn index_uses(f: &Func) -> Vec<IndexUse> {
    let source = |mut id: Id| -> Option<String> {
        loop {
            let n = &f.nodes[id as usize];
            match &n.op {
                Op::Input(name) => return Some(name.clone()),
                Op::Reshape => id = n.args[0],
                _ => return None,
            }
        }
    };
    let layer = |id: Id| f.nodes[id as usize].layer.and_then(|l| f.layers.get(l as usize)).cloned();
    let mut out: Vec<IndexUse> = Vec::new();
    for (i, n) in f.nodes.iter().enumerate() {
        let (idx, bound, reader) = match &n.op {
            Op::OneHot(depth) => {
                let reader = match layer(i as Id) {
                    Some(l) => format!("layer `{l}` (one_hot of {depth} classes)"),
                    None => format!("the loss's {depth} classes"),
                };
                (n.args[0], *depth, reader)
            }
            Op::Gather => {
                let rows = f.shape(n.args[0]).first().copied().unwrap_or(0);
                let reader = match layer(i as Id) {
                    Some(l) => format!("layer `{l}` (a table of {rows} rows)"),
                    None => format!("a table of {rows} rows"),
                };
                (n.args[1], rows, reader)
            }
            _ => continue,
        };
        if let Some(input) = source(idx) {
            // The tightest bound per input is the one that fails first.
            match out.iter_mut().find(|u| u.input == input) {
                Some(u) if u.bound <= bound => {}
                Some(u) => *u = IndexUse { input, bound, reader },
                None => out.push(IndexUse { input, bound, reader }),
            }
        }
    }
    out
}

/// An index value outside what reads it.
#[derive(Clone, Debug, PartialEq)]
pub struct BadIndex {
    /// The name of the input or array holding the index.
    pub input: String,
    /// Where the array comes from ("data/iris.csv: column 4").
    pub origin: String,
    /// The data row (0-based, in the order the source delivered rows).
    pub row: usize,
    /// The value found.
    pub value: i64,
    /// The exclusive upper bound (`value` must be in `0..bound`).
    pub bound: usize,
    /// What reads it, for the message (a layer or a loss).
    pub reader: String,
}

impl std::fmt::Display for BadIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let range = if self.bound == 0 { "no valid value".to_string() } else { format!("0..={}", self.bound - 1) };
        write!(
            f,
            "`{}` ({}) holds {} at data row {} (counting from 0), outside {} read by {}",
            self.input, self.origin, self.value, self.row, range, self.reader
        )?;
        if self.value == self.bound as i64 {
            write!(f, "; are the labels numbered from 1? they must start at 0")?;
        }
        Ok(())
    }
}

/// Checks every integer array of `arrays` that `uses` bound. `origins` name
/// the arrays' files and columns (missing ones fall back to the name).
pub fn check_indices(
    arrays: &BTreeMap<String, Tensor<f32>>,
    uses: &[IndexUse],
    origins: &BTreeMap<String, String>,
) -> Result<(), BadIndex> {
    for u in uses {
        let Some(t) = arrays.get(&u.input) else { continue };
        let per_row = match t {
            Tensor::I(a) => a.shape().iter().skip(1).product::<usize>().max(1),
            Tensor::F(a) => a.shape().iter().skip(1).product::<usize>().max(1),
        };
        let bad = match t {
            Tensor::I(a) => a.iter().copied().enumerate().find(|&(_, v)| v < 0 || v as u64 >= u.bound as u64),
            // Float arrays feeding an index are rounded on the way in.
            Tensor::F(a) => a
                .iter()
                .copied()
                .enumerate()
                .find(|&(_, v)| !(v.round() >= 0.0 && (v.round() as f64) < u.bound as f64))
                .map(|(k, v)| (k, v.round() as i64)),
        };
        if let Some((k, value)) = bad {
            return Err(BadIndex {
                input: u.input.clone(),
                origin: origins.get(&u.input).cloned().unwrap_or_else(|| u.input.clone()),
                row: k / per_row,
                value,
                bound: u.bound,
                reader: u.reader.clone(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use nnc_compiler::ir::DType;

    #[test]
    fn labels_outside_the_classes_name_the_row_and_the_classes() {
        let mut f = Func::default();
        let y = f.push(Op::Input("y".into()), vec![], vec![4], DType::I64, None);
        f.push(Op::OneHot(3), vec![y], vec![4, 3], DType::F32, None);
        let uses = index_uses(&f);
        assert_eq!(uses, [IndexUse { input: "y".into(), bound: 3, reader: "the loss's 3 classes".into() }]);
        let mut arrays = BTreeMap::new();
        arrays.insert("y".to_string(), Tensor::I(ndarray::arr1(&[0i64, 2, 3, 1]).into_dyn()));
        let origins = BTreeMap::from([("y".to_string(), "data/iris.csv: column 4".to_string())]);
        let e = check_indices(&arrays, &uses, &origins).unwrap_err().to_string();
        assert_eq!(
            e,
            "`y` (data/iris.csv: column 4) holds 3 at data row 2 (counting from 0), outside 0..=2 read by the loss's 3 \
             classes; are the labels numbered from 1? they must start at 0"
        );
        arrays.insert("y".to_string(), Tensor::I(ndarray::arr1(&[0i64, 2, 1, 1]).into_dyn()));
        assert!(check_indices(&arrays, &uses, &origins).is_ok());
        arrays.insert("y".to_string(), Tensor::I(ndarray::arr1(&[0i64, -1, 1, 1]).into_dyn()));
        assert!(check_indices(&arrays, &uses, &origins).unwrap_err().to_string().contains("holds -1 at data row 1"));
    }
}
