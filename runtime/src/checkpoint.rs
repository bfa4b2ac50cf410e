//! Checkpoints keyed by parameter name: the training runtime's view of the
//! safetensors files written (atomically) by [`crate::io`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ndarray::ArrayD;

pub use crate::io::IoError as CheckpointError;

/// Saves named tensors and string metadata atomically.
pub fn save(
    path: &Path,
    tensors: &BTreeMap<String, ArrayD<f32>>,
    metadata: &BTreeMap<String, String>,
) -> Result<(), CheckpointError> {
    let list: Vec<(String, ArrayD<f32>)> = tensors.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    crate::io::save_checkpoint(path, &list, metadata)
}

/// A loaded checkpoint: tensors by name, and the metadata strings.
pub type Loaded = (BTreeMap<String, ArrayD<f32>>, BTreeMap<String, String>);

/// Optimizer slots are stored as `@optimizer/<slot>/<parameter>`. No
/// parameter name starts with `@`, so they never collide with weights, and
/// [`load`] (predict, `--init`, `init = load(…)`) skips them.
const OPTIMIZER: &str = "@optimizer/";

/// Loads a checkpoint's weights as a map from parameter name to tensor.
pub fn load(path: &Path) -> Result<Loaded, CheckpointError> {
    let (list, meta) = crate::io::load_checkpoint(path)?;
    Ok((list.into_iter().filter(|(k, _)| !k.starts_with('@')).collect(), meta))
}

/// Optimizer slot tensors: (slot index, parameter name, value).
pub type OptimizerSlots = Vec<(usize, String, ArrayD<f32>)>;

/// Saves weights together with the optimizer's state, in one atomic file
/// (a checkpoint `nnc run --resume` continues from).
pub fn save_training(
    path: &Path,
    weights: &BTreeMap<String, ArrayD<f32>>,
    slots: &OptimizerSlots,
    metadata: &BTreeMap<String, String>,
) -> Result<(), CheckpointError> {
    let mut list: Vec<(String, ArrayD<f32>)> = weights.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    list.extend(slots.iter().map(|(k, name, v)| (format!("{OPTIMIZER}{k}/{name}"), v.clone())));
    crate::io::save_checkpoint(path, &list, metadata)
}

/// Loads weights, optimizer slots and metadata.
pub fn load_training(path: &Path) -> Result<Resumed, CheckpointError> {
    let (list, meta) = crate::io::load_checkpoint(path)?;
    let (mut weights, mut slots) = (BTreeMap::new(), Vec::new());
    for (name, v) in list {
        match name.strip_prefix(OPTIMIZER).and_then(|rest| rest.split_once('/')) {
            Some((k, param)) => match k.parse::<usize>() {
                Ok(k) => slots.push((k, param.to_string(), v)),
                Err(_) => {
                    return Err(CheckpointError::format(
                        path,
                        "safetensors",
                        format!("`{name}` is not an optimizer slot"),
                    ));
                }
            },
            None => {
                weights.insert(name, v);
            }
        }
    }
    Ok((weights, slots, meta))
}

/// A checkpoint's tensor as the checks see it: shape and stored element type.
#[derive(Clone, Debug, PartialEq)]
pub struct Found {
    /// The stored shape.
    pub shape: Vec<usize>,
    /// safetensors' element type name (`F32`, `I64`, …).
    pub dtype: String,
}

impl Found {
    /// What the checks need of a stored tensor.
    pub fn of(t: &crate::io::checkpoint::StoredTensor) -> Found {
        Found { shape: t.value.shape().to_vec(), dtype: t.dtype.clone() }
    }
}

/// One way a checkpoint does not fit the model it is loaded into.
#[derive(Clone, Debug, PartialEq)]
pub enum Mismatch {
    /// The model's parameter has no tensor.
    Missing {
        /// The parameter's full name.
        param: String,
        /// Its shape.
        expected: Vec<usize>,
    },
    /// `tensor` (for `param`, when the names differ) has another shape.
    Shape {
        /// The tensor's name in the file.
        tensor: String,
        /// The parameter it was matched to.
        param: String,
        /// The parameter's shape.
        expected: Vec<usize>,
        /// The tensor's shape.
        found: Vec<usize>,
    },
    /// `tensor` is stored as integers or booleans; parameters are floats.
    Dtype {
        /// The tensor's name in the file.
        tensor: String,
        /// The parameter it was matched to.
        param: String,
        /// The stored element type (`I64`, `BOOL`…).
        found: String,
    },
    /// A tensor no parameter takes.
    Unexpected {
        /// The tensor's name in the file.
        tensor: String,
        /// Its shape.
        shape: Vec<usize>,
    },
}

impl std::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = |tensor: &str, param: &str| {
            if tensor == param {
                format!("tensor `{tensor}`")
            } else {
                format!("tensor `{tensor}` (for parameter `{param}`)")
            }
        };
        match self {
            Mismatch::Missing { param, expected } => {
                write!(f, "parameter `{param}` {expected:?}: no tensor in the file")
            }
            Mismatch::Shape { tensor, param, expected, found } => {
                write!(f, "{}: expected shape {expected:?}, found {found:?}", name(tensor, param))
            }
            Mismatch::Dtype { tensor, param, found } => {
                write!(
                    f,
                    "{}: expected a float element type (F32, F16, BF16 or F64), found {found}",
                    name(tensor, param)
                )
            }
            Mismatch::Unexpected { tensor, shape } => {
                write!(f, "tensor `{tensor}` {shape:?}: the model has no such parameter")
            }
        }
    }
}

/// The one check of a tensor against the parameter it is loaded into
/// (`nnc predict`, `--init`, `init = load(…)` and `--resume` all use it):
/// the exact shape, and a floating-point element type.
pub fn check_tensor(tensor: &str, param: &str, expected: &[usize], found: &Found) -> Option<Mismatch> {
    if found.shape != expected {
        return Some(Mismatch::Shape {
            tensor: tensor.to_string(),
            param: param.to_string(),
            expected: expected.to_vec(),
            found: found.shape.clone(),
        });
    }
    if !matches!(found.dtype.as_str(), "F32" | "F64" | "F16" | "BF16") {
        return Some(Mismatch::Dtype {
            tensor: tensor.to_string(),
            param: param.to_string(),
            found: found.dtype.clone(),
        });
    }
    None
}

/// Checks that `found` holds exactly the parameters `expected` (name,
/// shape): each present with its shape and a float type, and nothing else.
/// Returns every mismatch, in parameter order, then the unexpected tensors.
pub fn check_exact(expected: &[(String, Vec<usize>)], found: &BTreeMap<String, Found>) -> Vec<Mismatch> {
    let mut out = Vec::new();
    for (name, shape) in expected {
        match found.get(name) {
            None => out.push(Mismatch::Missing { param: name.clone(), expected: shape.clone() }),
            Some(t) => out.extend(check_tensor(name, name, shape, t)),
        }
    }
    for (name, t) in found {
        if !expected.iter().any(|(n, _)| n == name) {
            out.push(Mismatch::Unexpected { tensor: name.clone(), shape: t.shape.clone() });
        }
    }
    out
}

/// A checkpoint that does not fit: every mismatch, named.
#[derive(Clone, Debug, PartialEq)]
pub struct MismatchError {
    /// The checkpoint file.
    pub path: PathBuf,
    /// What it was loaded into: "model `M`", "train block `t`".
    pub into: String,
    /// Every mismatch, parameters in the model's order.
    pub mismatches: Vec<Mismatch>,
}

/// At most this many mismatches are listed; the rest are counted.
const LISTED: usize = 12;

impl std::fmt::Display for MismatchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.mismatches.len();
        let missing = self.mismatches.iter().filter(|m| matches!(m, Mismatch::Missing { .. })).count();
        write!(f, "checkpoint {} does not fit {}", self.path.display(), self.into)?;
        write!(f, " ({n} mismatch{}", if n == 1 { "" } else { "es" })?;
        if missing > 0 && missing == n {
            write!(f, "; is it another model's checkpoint?")?;
        }
        write!(f, "):")?;
        for m in self.mismatches.iter().take(LISTED) {
            write!(f, "\n  {m}")?;
        }
        if n > LISTED {
            write!(f, "\n  … and {} more", n - LISTED)?;
        }
        Ok(())
    }
}

impl std::error::Error for MismatchError {}

/// Why a checkpoint could not be used for `nnc predict` or `--resume`.
#[derive(Debug)]
pub enum FitError {
    /// The file could not be read.
    Io(CheckpointError),
    /// The metadata says the file is not for this use (another run's).
    Meta(String),
    /// Its tensors do not fit the model.
    Mismatch(MismatchError),
}

impl std::fmt::Display for FitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FitError::Io(e) => write!(f, "{e}"),
            FitError::Meta(e) => write!(f, "{e}"),
            FitError::Mismatch(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for FitError {}

/// Loads the weights of `path` for a model whose parameters are `expected`
/// (`nnc predict`): every parameter must be there with its exact shape and a
/// float type, and nothing else may be (optimizer slots aside). A file saved
/// by a run of several models (`G.dense.kernel`, `D.dense.kernel`) loads into
/// model `G` when all of `G`'s parameters are there under the prefix `G.`;
/// the other models' tensors are then left alone.
pub fn load_for_model(path: &Path, model: &str, expected: &[(String, Vec<usize>)]) -> Result<Loaded, FitError> {
    let loaded = crate::io::checkpoint::load_checkpoint_typed(path).map_err(FitError::Io)?;
    fit_model(path, loaded, model, expected)
}

/// [`load_for_model`] on a checkpoint already read (`nnc predict` reads its
/// metadata, the data transforms, before it knows the parameters' shapes).
pub fn fit_model(
    path: &Path,
    (list, meta): crate::io::checkpoint::TypedCheckpoint,
    model: &str,
    expected: &[(String, Vec<usize>)],
) -> Result<Loaded, FitError> {
    let list: Vec<_> = list.into_iter().filter(|t| !t.name.starts_with('@')).collect();
    let prefix = format!("{model}.");
    let direct = expected.iter().filter(|(n, _)| list.iter().any(|t| &t.name == n)).count();
    let prefixed = expected.iter().filter(|(n, _)| list.iter().any(|t| t.name == format!("{prefix}{n}"))).count();
    let use_prefix = prefixed > direct;
    let mut found = BTreeMap::new();
    let mut values = BTreeMap::new();
    for t in list {
        let name = if use_prefix {
            match t.name.strip_prefix(&prefix) {
                Some(rest) => rest.to_string(),
                None => continue, // another model's tensor
            }
        } else {
            t.name.clone()
        };
        found.insert(name.clone(), Found::of(&t));
        values.insert(name, t.value);
    }
    let mismatches = check_exact(expected, &found);
    if !mismatches.is_empty() {
        return Err(FitError::Mismatch(MismatchError {
            path: path.to_path_buf(),
            into: format!("model `{model}`"),
            mismatches,
        }));
    }
    Ok((values, meta))
}

/// What `--resume` continues from: weights, optimizer slots, metadata.
pub type Resumed = (BTreeMap<String, ArrayD<f32>>, OptimizerSlots, BTreeMap<String, String>);

/// Loads a checkpoint `nnc run` saved for a train block to continue it
/// (`--resume`): `check_meta` first judges its metadata (which run saved
/// it), then the weights must be exactly `expected` (as for predict), and
/// every optimizer slot must belong to a parameter of `trainable` with that
/// parameter's shape.
pub fn load_for_resume(
    path: &Path,
    train: &str,
    expected: &[(String, Vec<usize>)],
    trainable: &[String],
    check_meta: impl FnOnce(&BTreeMap<String, String>) -> Result<(), String>,
) -> Result<Resumed, FitError> {
    let (list, meta) = crate::io::checkpoint::load_checkpoint_typed(path).map_err(FitError::Io)?;
    check_meta(&meta).map_err(FitError::Meta)?;
    let mut found = BTreeMap::new();
    let mut weights = BTreeMap::new();
    let mut slots = Vec::new();
    let mut mismatches = Vec::new();
    for t in list {
        match t.name.strip_prefix(OPTIMIZER).map(|rest| rest.split_once('/')) {
            Some(Some((k, param))) if k.parse::<usize>().is_ok() => {
                let shape = expected.iter().find(|(n, _)| n == param).map(|(_, s)| s);
                match shape {
                    Some(s) if trainable.iter().any(|n| n == param) => {
                        mismatches.extend(check_tensor(&t.name, param, s, &Found::of(&t)));
                    }
                    _ => mismatches
                        .push(Mismatch::Unexpected { tensor: t.name.clone(), shape: t.value.shape().to_vec() }),
                }
                slots.push((k.parse().expect("checked"), param.to_string(), t.value));
            }
            Some(_) => {
                mismatches.push(Mismatch::Unexpected { tensor: t.name.clone(), shape: t.value.shape().to_vec() })
            }
            None => {
                found.insert(t.name.clone(), Found::of(&t));
                weights.insert(t.name, t.value);
            }
        }
    }
    let mut all = check_exact(expected, &found);
    all.extend(mismatches);
    if !all.is_empty() {
        return Err(FitError::Mismatch(MismatchError {
            path: path.to_path_buf(),
            into: format!("train block `{train}`"),
            mismatches: all,
        }));
    }
    Ok((weights, slots, meta))
}

/// Why `init = load(…)` (or `--init`) could not initialise a run.
#[derive(Debug)]
pub enum InitError {
    /// The file could not be read.
    Io(CheckpointError),
    /// Tensors and the parameters they match disagree in shape or type.
    Mismatch(MismatchError),
    /// No tensor matches any parameter: a wrong prefix or another model's file.
    NoMatch {
        /// The checkpoint file.
        path: PathBuf,
        /// The prefix asked for (`load(…, prefix = …)`), possibly empty.
        prefix: String,
        /// The tensor names of the file (the message shows the first few).
        tensors: Vec<String>,
        /// The parameter names of the model (the message shows the first few).
        params: Vec<String>,
    },
}

impl std::fmt::Display for InitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InitError::Io(e) => write!(f, "cannot initialise from a checkpoint: {e}"),
            InitError::Mismatch(e) => write!(f, "cannot initialise from a checkpoint: {e}"),
            InitError::NoMatch { path, prefix, tensors, params } => {
                let some = |names: &[String]| {
                    let mut s: Vec<String> = names.iter().take(3).map(|n| format!("`{n}`")).collect();
                    if names.len() > 3 {
                        s.push("…".into());
                    }
                    if s.is_empty() { "none".to_string() } else { s.join(", ") }
                };
                write!(f, "no tensor of {} matches a parameter", path.display())?;
                if !prefix.is_empty() {
                    write!(f, " with prefix \"{prefix}\"")?;
                }
                write!(f, " (the file has {}; the model has {})", some(tensors), some(params))
            }
        }
    }
}

impl std::error::Error for InitError {}

/// Which checkpoint tensor initialises which parameter.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct InitPlan {
    /// (tensor name in the file, parameter name), in parameter order.
    pub pairs: Vec<(String, String)>,
    /// Tensors of the file that initialise nothing.
    pub unused: Vec<String>,
    /// Parameters no tensor initialises: their initialisers run as usual.
    pub fresh: Vec<String>,
}

/// Matches checkpoint tensors to parameters for `load(file, prefix = p)`.
///
/// The prefix is the part by which the names of the two sides differ. On
/// each side, when some names start with `p`, only those take part, with
/// `p` removed; the two sides then match by the names that remain. So with
/// `p = "enc."`, a file saved by a model of its own (`h.dense.kernel`) loads
/// into `enc.h.dense.kernel` of a bigger model, a file saved by a run of
/// several models (`enc.h.dense.kernel`) loads into a model of its own
/// (`h.dense.kernel`), and when both sides carry the prefix it selects the
/// part of the file to load. Without a prefix, names match as they are.
/// Every match must agree in shape and be a float tensor ([`check_tensor`],
/// all mismatches listed); it is an error when nothing matches.
pub fn plan_init(
    path: &Path,
    tensors: &BTreeMap<String, Found>,
    params: &[(String, Vec<usize>)],
    prefix: &str,
) -> Result<InitPlan, InitError> {
    // Whether a side carries the prefix, and a name's key on that side
    // (`None`: the name does not take part).
    fn carries<'a>(prefix: &str, mut names: impl Iterator<Item = &'a String>) -> bool {
        !prefix.is_empty() && names.any(|n| n.starts_with(prefix))
    }
    let key =
        |carried: bool, name: &str| if carried { name.strip_prefix(prefix) } else { Some(name) }.map(str::to_string);
    let file_carries = carries(prefix, tensors.keys());
    let model_carries = carries(prefix, params.iter().map(|(n, _)| n));
    let by_key: BTreeMap<String, &String> = tensors.keys().filter_map(|t| Some((key(file_carries, t)?, t))).collect();
    let mut plan = InitPlan::default();
    let mut mismatches = Vec::new();
    for (param, expected) in params {
        let Some(tensor) = key(model_carries, param).and_then(|k| by_key.get(&k).copied()) else {
            plan.fresh.push(param.clone());
            continue;
        };
        match tensors.get(tensor).and_then(|found| check_tensor(tensor, param, expected, found)) {
            Some(m) => mismatches.push(m),
            None => plan.pairs.push((tensor.clone(), param.clone())),
        }
    }
    if !mismatches.is_empty() {
        let into =
            if prefix.is_empty() { "the model".to_string() } else { format!("the model with prefix \"{prefix}\"") };
        return Err(InitError::Mismatch(MismatchError { path: path.to_path_buf(), into, mismatches }));
    }
    if plan.pairs.is_empty() {
        return Err(InitError::NoMatch {
            path: path.to_path_buf(),
            prefix: prefix.to_string(),
            tensors: tensors.keys().cloned().collect(),
            params: params.iter().map(|(n, _)| n.clone()).collect(),
        });
    }
    plan.unused = tensors.keys().filter(|t| !plan.pairs.iter().any(|(u, _)| u == *t)).cloned().collect();
    Ok(plan)
}

/// Reads `path` and returns the tensors [`plan_init`] assigns, keyed by
/// parameter name, with the plan (for the report).
pub fn load_init(
    path: &Path,
    params: &[(String, Vec<usize>)],
    prefix: &str,
) -> Result<(BTreeMap<String, ArrayD<f32>>, InitPlan), InitError> {
    let (list, _) = crate::io::checkpoint::load_checkpoint_typed(path).map_err(InitError::Io)?;
    let list: Vec<_> = list.into_iter().filter(|t| !t.name.starts_with('@')).collect();
    let found: BTreeMap<String, Found> = list.iter().map(|t| (t.name.clone(), Found::of(t))).collect();
    let plan = plan_init(path, &found, params, prefix)?;
    let mut tensors: BTreeMap<String, ArrayD<f32>> = list.into_iter().map(|t| (t.name, t.value)).collect();
    let mut values = BTreeMap::new();
    for (t, p) in &plan.pairs {
        // Every planned tensor came from this file's list.
        if let Some(v) = tensors.remove(t) {
            values.insert(p.clone(), v);
        }
    }
    Ok((values, plan))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shapes(names: &[(&str, &[usize])]) -> Vec<(String, Vec<usize>)> {
        names.iter().map(|(n, s)| (n.to_string(), s.to_vec())).collect()
    }

    fn plan(file: &[(&str, &[usize])], model: &[(&str, &[usize])], prefix: &str) -> Result<InitPlan, InitError> {
        let found = shapes(file).into_iter().map(|(n, shape)| (n, Found { shape, dtype: "F32".into() })).collect();
        plan_init(Path::new("w.safetensors"), &found, &shapes(model), prefix)
    }

    fn pairs(p: &InitPlan) -> Vec<(&str, &str)> {
        p.pairs.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect()
    }

    #[test]
    fn without_a_prefix_names_match_as_they_are() {
        let p = plan(
            &[("h.dense.kernel", &[4, 2]), ("g.dense.kernel", &[2, 4])],
            &[("h.dense.kernel", &[4, 2]), ("head.dense.kernel", &[2, 1])],
            "",
        )
        .unwrap();
        assert_eq!(pairs(&p), [("h.dense.kernel", "h.dense.kernel")]);
        assert_eq!(p.fresh, ["head.dense.kernel"]);
        assert_eq!(p.unused, ["g.dense.kernel"]);
    }

    #[test]
    fn the_prefix_is_stripped_on_the_side_that_carries_it() {
        // A model of its own into a bigger model whose names carry the prefix.
        let p = plan(
            &[("h.dense.kernel", &[4, 2]), ("h.dense.bias", &[2])],
            &[("enc.h.dense.kernel", &[4, 2]), ("enc.h.dense.bias", &[2]), ("out.kernel", &[2, 1])],
            "enc.",
        )
        .unwrap();
        assert_eq!(pairs(&p), [("h.dense.kernel", "enc.h.dense.kernel"), ("h.dense.bias", "enc.h.dense.bias")]);
        assert_eq!(p.fresh, ["out.kernel"]);
        // One model out of a run of several.
        let p = plan(&[("G.dense.kernel", &[3, 3]), ("D.dense.kernel", &[3, 1])], &[("dense.kernel", &[3, 3])], "G.")
            .unwrap();
        assert_eq!(pairs(&p), [("G.dense.kernel", "dense.kernel")]);
        assert_eq!(p.unused, ["D.dense.kernel"]);
        // Both sides carry it: it selects part of the file.
        let p = plan(&[("f.a", &[1]), ("g.a", &[1])], &[("f.a", &[1]), ("g.a", &[1])], "f.").unwrap();
        assert_eq!(pairs(&p), [("f.a", "f.a")]);
        assert_eq!(p.fresh, ["g.a"]);
    }

    #[test]
    fn shape_mismatches_and_no_match_are_clear_errors() {
        let e =
            plan(&[("h.dense.kernel", &[4, 3])], &[("enc.h.dense.kernel", &[4, 2])], "enc.").unwrap_err().to_string();
        assert_eq!(
            e,
            "cannot initialise from a checkpoint: checkpoint w.safetensors does not fit the model with prefix \"enc.\" \
             (1 mismatch):\n  tensor `h.dense.kernel` (for parameter `enc.h.dense.kernel`): expected shape [4, 2], \
                 found [4, 3]"
        );
        let e = plan(&[("a", &[1])], &[("b", &[1])], "x.").unwrap_err().to_string();
        assert_eq!(
            e,
            "no tensor of w.safetensors matches a parameter with prefix \"x.\" (the file has `a`; the model has `b`)"
        );
        let e =
            load_init(Path::new("/nonexistent/w.safetensors"), &shapes(&[("b", &[1])]), "").unwrap_err().to_string();
        assert!(e.starts_with("cannot initialise from a checkpoint: /nonexistent/w.safetensors: cannot read"), "{e}");
    }
}
