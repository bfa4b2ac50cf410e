//! Facts the checker records for the lint pass (`crate::lint`).
//!
//! The checker reports errors and records what it learned; it emits no warnings. Some
//! warnings need facts only the checker sees while it walks a body (which `let`s were
//! read, which outputs depend on an input, which data files exist, which tensor a loss
//! was given). It records them here, in [`super::CheckResult::facts`], and the lints
//! turn them into diagnostics over the finished result.

use std::path::PathBuf;

use nnc_syntax::Label;

use crate::graph::TRef;
use crate::types::Origin;

/// One fact, at a place in the source.
#[derive(Clone, Debug)]
pub struct Fact {
    pub at: Origin,
    pub kind: FactKind,
    /// The block calls that led to `at`, innermost first, for a fact recorded while
    /// checking one call of a block: a diagnostic about it also names the call (the
    /// checker adds the same labels to its errors).
    pub calls: Vec<Label>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum FactKind {
    /// A `let` of a concrete (not generic) model or block body that was never read and
    /// whose name does not start with `_`.
    UnusedBinding { name: String },
    /// A model output computed from none of the model's `inputs` (listed, non-empty).
    OutputWithoutInputs { name: String, inputs: Vec<String> },
    /// A data source's file that the loader could not find; `full` is the path tried.
    DataFileMissing { path: String, full: PathBuf },
    /// A loss that applies softmax itself (`from_logits` not `false`) was given the tensor
    /// `pred`, a node of the graph of train block `train` (an index into `trains`).
    SoftmaxLossInput { loss: &'static str, pred: TRef, train: usize, has_from_logits: bool },
}
