//! `nnc predict --input NAME=FILE`: reads each input the way training read
//! it. A `.npy` holds the input's values; a `.txt` holds one sample per
//! line, turned into token ids by the vocabulary saved with the checkpoint
//! (`sentences`, `text`); a `.csv`/`.tsv` holds one sample per row, its
//! columns picked by the training source's selector (or every column when
//! the model was not trained on a table). Saved z-score statistics are
//! applied, then dims the model leaves open (`T`) are bound from the
//! arrays, consistently with those the training data bound (`V`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use nnc_compiler::ModelInfo;
use nnc_runtime::data::bind::{Bindings, Declared};
use nnc_runtime::data::transform::{InputTransform, Transforms};
use nnc_runtime::data::{self, Array, Dataset};

/// The kind of a file, by extension (`.gz` looked through).
fn kind(path: &Path) -> &'static str {
    let name = path.file_name().map(|n| n.to_string_lossy().to_lowercase()).unwrap_or_default();
    let name = name.strip_suffix(".gz").unwrap_or(&name);
    match name.rsplit_once('.').map(|(_, e)| e) {
        Some("txt" | "text") => "text",
        Some("csv" | "tsv" | "tab") => "table",
        _ => "npy",
    }
}

/// The model's inputs read from `inputs` (name, file), and the values of
/// every dim besides `N` the model needs.
pub fn read(
    m: &ModelInfo,
    meta: &BTreeMap<String, String>,
    inputs: &[(String, PathBuf)],
) -> Result<(Dataset, Vec<(String, i64)>), String> {
    let transforms = Transforms::from_metadata(meta).map_err(|e| e.to_string())?.unwrap_or_default();
    let mut bindings = Bindings::default();
    for (dim, v) in &transforms.dims {
        bindings.bind(dim, *v, "the checkpoint (the training data)").map_err(|e| e.to_string())?;
    }
    let mut ds = Dataset::default();
    let mut declared = Vec::new();
    let mut origins = BTreeMap::new();
    for (name, path) in inputs {
        let (_, ty) = m.inputs.iter().find(|(n, _)| n == name).ok_or_else(|| {
            let names: Vec<String> = m.inputs.iter().map(|(n, _)| format!("`{n}`")).collect();
            format!("model `{}` has no input `{name}` (its inputs: {})", m.name, names.join(", "))
        })?;
        if ds.arrays.contains_key(name) {
            return Err(format!("input `{name}` is given twice"));
        }
        let saved = transforms.inputs.get(name);
        let mut a = match (kind(path), saved) {
            ("text", Some(t @ (InputTransform::Words { .. } | InputTransform::Chars { .. }))) => {
                data::transform::read_raw(path, name, t)
            }
            ("text", _) => {
                return Err(format!(
                    "input `{name}`: {} is text, but the checkpoint has no vocabulary for `{name}` (it is saved by \
                        `nnc run` when `{name}` comes from `sentences` or `text`); give a .npy of token ids",
                    path.display()
                ));
            }
            ("table", Some(t @ InputTransform::Csv { .. })) => data::transform::read_raw(path, name, t),
            ("table", _) => data::transform::read_table(path, name),
            _ => data::source::read_npy_array(path),
        }
        .map_err(|e| format!("input `{name}`: {e}"))?;
        if let Some(stats) = meta.get(&format!("zscore.{name}")) {
            let z = data::ZScore::from_json(name, stats).map_err(|e| e.to_string())?;
            a = z.apply(name, &a).map_err(|e| e.to_string())?;
        }
        if a.shape().is_empty() {
            return Err(format!(
                "input `{name}`: {} holds a single number; the first axis must count samples",
                path.display()
            ));
        }
        origins.insert(name.clone(), format!("{} ({})", path.display(), a.describe()));
        ds.arrays.insert(name.clone(), a);
        let per = ty.dims.get(1..).unwrap_or(&[]).to_vec();
        declared.push(Declared { name: name.clone(), dims: per, int: ty.elem == nnc_syntax::ast::ElemType::Int });
    }
    let origin = |n: &str| origins.get(n).cloned().unwrap_or_else(|| n.to_string());
    data::bind::bind_inputs(&mut ds, &declared, &mut bindings, &origin, &|d| d != "N").map_err(|e| e.to_string())?;
    if let Some((n, _)) = ds.arrays.iter().find(|(_, a)| a.samples() == 0) {
        return Err(format!("input `{n}` has no samples"));
    }
    let lens: Vec<(String, usize)> = ds.arrays.iter().map(|(k, a)| (k.clone(), a.samples())).collect();
    if let Some(w) = lens.windows(2).find(|w| w[0].1 != w[1].1) {
        return Err(format!(
            "inputs disagree on the number of samples: `{}` has {}, `{}` has {}",
            w[0].0, w[0].1, w[1].0, w[1].1
        ));
    }
    Ok((ds, bindings.to_vec()))
}

/// The arrays of `ds` as the trainer's tensors.
pub fn to_dataset(ds: Dataset) -> nnc_runtime::train::Dataset {
    let arrays = ds
        .arrays
        .into_iter()
        .map(|(k, a)| {
            let t = match a {
                Array::F32(a) => nnc_runtime::exec::Tensor::F(a),
                Array::I64(a) => nnc_runtime::exec::Tensor::I(a),
            };
            (k, t)
        })
        .collect();
    nnc_runtime::train::Dataset { arrays }
}
