//! The front of nnc's pipeline: source text → [`ast::File`] plus diagnostics.
//!
//! Parsing never fails: [`parse`] always returns a tree (possibly missing the
//! declarations that did not parse) and the syntax errors found, so editors
//! and the checker can work on partial files.
//!
//! This is the first stage of the pipeline source → AST → typed graph → IR → kernels → runtime: the
//! `nnc-compiler` crate resolves and shape-checks the [`ast`], and the language server uses
//! [`format`](mod@format) and the spans for editing features. [`diagnostic`] holds the stable error
//! codes every stage reports with.
//! See `ARCHITECTURE.md` at the repository root for the stages, and the manual (`docs/src/`, built with
//! `mdbook build docs`) for the language itself.

#![warn(missing_docs)]
#![forbid(unsafe_code)]

pub mod ast;
pub mod diagnostic;
pub mod format;
mod parser;
mod span;

pub use diagnostic::{Code, Diagnostic, Label, Severity};
pub use parser::{MAX_DEPTH, MAX_NESTING, parse};
pub use span::{FileId, LineIndex, Span};
