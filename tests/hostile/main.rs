//! Hostile and newcomer inputs (issue 9): each case is a malformed, malicious or surprising input with the
//! clear error it must give. None may panic, abort, hang, read or write outside where the user pointed, or
//! allocate past its cap. Fixtures are generated in the test (temporary directories), never shipped.
//!
//! One module per area, each table-driven where the cases share a shape.

// Unsafe code: `libc::mkfifo` to make a FIFO for the file-reading cases (files.rs).

#[path = "../common/mod.rs"]
mod common;
// One copy for every module that drives the server (a module loaded twice is compiled twice).
#[path = "../support/lsp_client.rs"]
mod lsp_client;

mod arith;
mod data;
mod diagnostics;
mod files;
mod lsp;
mod runtime;
