//! nnc's execution runtime (graph IR execution and training) lives here.
//! See ARCHITECTURE.md for the planned pipeline stages.

pub mod checkpoint;
pub mod data;
pub mod exec;
pub mod gemm;
pub mod io;
pub mod library;
pub mod math;
pub mod memory;
pub mod pair;
pub mod program;
pub mod rng;
pub mod train;
