//! nnc's middle: name resolution, symbolic dims, the layer table, the shape
//! checker and model summaries.
//!
//! Pure: no IO besides what the caller's [`program::Loader`] provides.
//!
//! In the pipeline source → AST → typed graph → IR → kernels → runtime this crate takes the AST of
//! `nnc-syntax` to the typed [`graph`] (every value with its symbolic shape) and lowers it to the
//! [`ir`] that `nnc-jit` compiles and `nnc-runtime` executes. The layer table ([`layers`]) is the single
//! description of every layer: checking, lowering, hover text and the manual's catalogue all read it.
//! See `ARCHITECTURE.md` at the repository root for the stages, and the manual (`docs/src/`) for the language.

#![warn(missing_docs)]
#![forbid(unsafe_code)]

pub mod aliases;
pub mod check;
pub mod dims;
pub mod graph;
pub mod ir;
pub mod layers;
pub mod lint;
pub mod program;
pub mod sandbox;
pub mod schema;
pub mod summary;
pub mod types;

pub use check::{BlockCall, CheckOptions, CheckResult, LayerRecord, ModelInfo, SetValue, TypeHint, check};
pub use program::{FsLoader, LoadError, Loader, Program};

/// A loaded and checked program.
pub struct Analysis {
    /// The loaded files (root first) with their ASTs and loading diagnostics.
    pub program: Program,
    /// What the checker found: diagnostics (lints included), models, train blocks and editor hints.
    pub result: CheckResult,
}

/// Loads `text` (and its `use`s through `loader`) and checks it.
pub fn analyse(
    name: &str,
    path: Option<&std::path::Path>,
    text: String,
    loader: &dyn Loader,
    options: &CheckOptions,
) -> Analysis {
    let program = program::load(name, path, text, loader);
    let result = check::check(&program, loader, options);
    Analysis { program, result }
}
