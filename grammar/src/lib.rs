//! The front of nnc's pipeline: source text → [`ast::File`] plus diagnostics.
//!
//! Parsing never fails: [`parse`] always returns a tree (possibly missing the
//! declarations that did not parse) and the syntax errors found, so editors
//! and the checker can work on partial files.

#![forbid(unsafe_code)]

pub mod ast;
pub mod diagnostic;
pub mod format;
mod parser;
mod span;

pub use diagnostic::{Code, Diagnostic, Label, Severity};
pub use parser::{MAX_DEPTH, MAX_NESTING, parse};
pub use span::{FileId, LineIndex, Span};
