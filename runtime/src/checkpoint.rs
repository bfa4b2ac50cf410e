//! Checkpoints keyed by parameter name: the training runtime's view of the
//! safetensors files written (atomically) by [`crate::io`].

use std::collections::BTreeMap;
use std::path::Path;

use ndarray::ArrayD;

pub use crate::io::IoError as CheckpointError;

/// Saves named tensors and string metadata atomically.
pub fn save(path: &Path, tensors: &BTreeMap<String, ArrayD<f32>>, metadata: &BTreeMap<String, String>) -> Result<(), CheckpointError> {
    let list: Vec<(String, ArrayD<f32>)> = tensors.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    crate::io::save_checkpoint(path, &list, metadata)
}

pub type Loaded = (BTreeMap<String, ArrayD<f32>>, BTreeMap<String, String>);

/// Loads a checkpoint as a map from parameter name to tensor.
pub fn load(path: &Path) -> Result<Loaded, CheckpointError> {
    let (list, meta) = crate::io::load_checkpoint(path)?;
    Ok((list.into_iter().collect(), meta))
}
