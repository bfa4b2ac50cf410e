//! `nnc lsp`: a language server for `.nn` files over stdio, built on the
//! `lsp-server` and `lsp-types` crates.
//!
//! Diagnostics (with related locations and a link to the code's
//! explanation), hover (inferred shapes, layer docs and parameters, doc
//! comments), inlay hints (shapes after `let`s and `|>` stages), go to
//! definition, find references, document symbols, completion (layers, their
//! options and mode words) and formatting. Documents are synchronised in full.
//!
//! It runs the front of the pipeline (source → AST → typed graph, via `nnc-syntax` and `nnc-compiler`) on every
//! edit and never executes models. See `ARCHITECTURE.md` at the repository root for the stages, and the
//! manual (`docs/src/`) for the editor setup.

#![warn(missing_docs)]
#![forbid(unsafe_code)]

mod completion;
mod convert;
mod hover;
mod inlay;
mod nav;
mod server;
mod state;
mod support;
mod transport;
mod uri;
mod walk;

use server::Server;
pub use server::{Exit, ServeError};

/// Serves LSP on stdin/stdout until `exit` or the end of input.
pub fn run_stdio() -> Result<Exit, ServeError> {
    let rx = transport::spawn_reader(std::io::BufReader::new(std::io::stdin()));
    let stdout = std::io::stdout();
    Server::new(stdout.lock()).serve(rx)
}
