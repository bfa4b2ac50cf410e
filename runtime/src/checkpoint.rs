//! Checkpoints keyed by parameter name: the training runtime's view of the
//! safetensors files written (atomically) by [`crate::io`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ndarray::ArrayD;

pub use crate::io::IoError as CheckpointError;

/// Saves named tensors and string metadata atomically.
pub fn save(path: &Path, tensors: &BTreeMap<String, ArrayD<f32>>, metadata: &BTreeMap<String, String>) -> Result<(), CheckpointError> {
    let list: Vec<(String, ArrayD<f32>)> = tensors.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    crate::io::save_checkpoint(path, &list, metadata)
}

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
pub fn load_training(path: &Path) -> Result<(BTreeMap<String, ArrayD<f32>>, OptimizerSlots, BTreeMap<String, String>), CheckpointError> {
    let (list, meta) = crate::io::load_checkpoint(path)?;
    let (mut weights, mut slots) = (BTreeMap::new(), Vec::new());
    for (name, v) in list {
        match name.strip_prefix(OPTIMIZER).and_then(|rest| rest.split_once('/')) {
            Some((k, param)) => match k.parse::<usize>() {
                Ok(k) => slots.push((k, param.to_string(), v)),
                Err(_) => return Err(CheckpointError::format(path, "safetensors", format!("`{name}` is not an optimizer slot"))),
            },
            None => {
                weights.insert(name, v);
            }
        }
    }
    Ok((weights, slots, meta))
}

/// Why `init = load(…)` (or `--init`) could not initialise a run.
#[derive(Debug)]
pub enum InitError {
    Io(CheckpointError),
    /// A tensor and the parameter it matches disagree in shape.
    Shape { tensor: String, param: String, found: Vec<usize>, expected: Vec<usize> },
    /// No tensor matches any parameter: a wrong prefix or another model's file.
    NoMatch { path: PathBuf, prefix: String, tensors: Vec<String>, params: Vec<String> },
}

impl std::fmt::Display for InitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InitError::Io(e) => write!(f, "cannot initialise from a checkpoint: {e}"),
            InitError::Shape { tensor, param, found, expected } => {
                let what = if tensor == param { format!("tensor `{tensor}`") } else { format!("tensor `{tensor}` (for parameter `{param}`)") };
                write!(f, "checkpoint {what} has shape {found:?}, the model's parameter has {expected:?}")
            }
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
/// Every match must agree in shape; it is an error when nothing matches.
pub fn plan_init(path: &Path, tensors: &BTreeMap<String, Vec<usize>>, params: &[(String, Vec<usize>)], prefix: &str) -> Result<InitPlan, InitError> {
    // Whether a side carries the prefix, and a name's key on that side
    // (`None`: the name does not take part).
    fn carries<'a>(prefix: &str, mut names: impl Iterator<Item = &'a String>) -> bool {
        !prefix.is_empty() && names.any(|n| n.starts_with(prefix))
    }
    let key = |carried: bool, name: &str| if carried { name.strip_prefix(prefix) } else { Some(name) }.map(str::to_string);
    let file_carries = carries(prefix, tensors.keys());
    let model_carries = carries(prefix, params.iter().map(|(n, _)| n));
    let by_key: BTreeMap<String, &String> = tensors.keys().filter_map(|t| Some((key(file_carries, t)?, t))).collect();
    let mut plan = InitPlan::default();
    for (param, expected) in params {
        let Some(tensor) = key(model_carries, param).and_then(|k| by_key.get(&k).copied()) else {
            plan.fresh.push(param.clone());
            continue;
        };
        let found = &tensors[tensor];
        if found != expected {
            return Err(InitError::Shape { tensor: tensor.clone(), param: param.clone(), found: found.clone(), expected: expected.clone() });
        }
        plan.pairs.push((tensor.clone(), param.clone()));
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
pub fn load_init(path: &Path, params: &[(String, Vec<usize>)], prefix: &str) -> Result<(BTreeMap<String, ArrayD<f32>>, InitPlan), InitError> {
    let (mut tensors, _) = load(path).map_err(InitError::Io)?;
    let shapes: BTreeMap<String, Vec<usize>> = tensors.iter().map(|(k, v)| (k.clone(), v.shape().to_vec())).collect();
    let plan = plan_init(path, &shapes, params, prefix)?;
    let values = plan.pairs.iter().map(|(t, p)| (p.clone(), tensors.remove(t).expect("planned tensors exist"))).collect();
    Ok((values, plan))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shapes(names: &[(&str, &[usize])]) -> Vec<(String, Vec<usize>)> {
        names.iter().map(|(n, s)| (n.to_string(), s.to_vec())).collect()
    }

    fn plan(file: &[(&str, &[usize])], model: &[(&str, &[usize])], prefix: &str) -> Result<InitPlan, InitError> {
        plan_init(Path::new("w.safetensors"), &shapes(file).into_iter().collect(), &shapes(model), prefix)
    }

    fn pairs(p: &InitPlan) -> Vec<(&str, &str)> {
        p.pairs.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect()
    }

    #[test]
    fn without_a_prefix_names_match_as_they_are() {
        let p = plan(&[("h.dense.kernel", &[4, 2]), ("g.dense.kernel", &[2, 4])], &[("h.dense.kernel", &[4, 2]), ("head.dense.kernel", &[2, 1])], "").unwrap();
        assert_eq!(pairs(&p), [("h.dense.kernel", "h.dense.kernel")]);
        assert_eq!(p.fresh, ["head.dense.kernel"]);
        assert_eq!(p.unused, ["g.dense.kernel"]);
    }

    #[test]
    fn the_prefix_is_stripped_on_the_side_that_carries_it() {
        // A model of its own into a bigger model whose names carry the prefix.
        let p = plan(&[("h.dense.kernel", &[4, 2]), ("h.dense.bias", &[2])], &[("enc.h.dense.kernel", &[4, 2]), ("enc.h.dense.bias", &[2]), ("out.kernel", &[2, 1])], "enc.").unwrap();
        assert_eq!(pairs(&p), [("h.dense.kernel", "enc.h.dense.kernel"), ("h.dense.bias", "enc.h.dense.bias")]);
        assert_eq!(p.fresh, ["out.kernel"]);
        // One model out of a run of several.
        let p = plan(&[("G.dense.kernel", &[3, 3]), ("D.dense.kernel", &[3, 1])], &[("dense.kernel", &[3, 3])], "G.").unwrap();
        assert_eq!(pairs(&p), [("G.dense.kernel", "dense.kernel")]);
        assert_eq!(p.unused, ["D.dense.kernel"]);
        // Both sides carry it: it selects part of the file.
        let p = plan(&[("f.a", &[1]), ("g.a", &[1])], &[("f.a", &[1]), ("g.a", &[1])], "f.").unwrap();
        assert_eq!(pairs(&p), [("f.a", "f.a")]);
        assert_eq!(p.fresh, ["g.a"]);
    }

    #[test]
    fn shape_mismatches_and_no_match_are_clear_errors() {
        let e = plan(&[("h.dense.kernel", &[4, 3])], &[("enc.h.dense.kernel", &[4, 2])], "enc.").unwrap_err().to_string();
        assert_eq!(e, "checkpoint tensor `h.dense.kernel` (for parameter `enc.h.dense.kernel`) has shape [4, 3], the model's parameter has [4, 2]");
        let e = plan(&[("a", &[1])], &[("b", &[1])], "x.").unwrap_err().to_string();
        assert_eq!(e, "no tensor of w.safetensors matches a parameter with prefix \"x.\" (the file has `a`; the model has `b`)");
        let e = load_init(Path::new("/nonexistent/w.safetensors"), &shapes(&[("b", &[1])]), "").unwrap_err().to_string();
        assert!(e.starts_with("cannot initialise from a checkpoint: /nonexistent/w.safetensors: cannot read"), "{e}");
    }
}
