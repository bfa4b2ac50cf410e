//! nnc's execution runtime: runs the graph IR, trains models and reads their data.
//!
//! In the pipeline source → AST → typed graph → IR → kernels → runtime this crate is the last stage:
//! it plans memory for the IR's programs and runs them (JIT kernels from `nnc-jit` plus library routines
//! such as GEMM and convolutions), reads data sources, trains with the declared optimizers and
//! writes checkpoints. See `ARCHITECTURE.md` at the repository root for the stages, and the manual
//! (`docs/src/`) for the data formats and training blocks.

#![warn(missing_docs)]

// Unsafe code: running JIT kernels on planned buffers (program.rs), threads writing disjoint
// ranges of one output (library.rs, pair.rs), the gemm crate's raw-pointer API (gemm.rs) and the
// x86 denormal flags; each block says why it is sound.

pub mod checkpoint;
pub mod data;
pub mod exec;
pub mod gemm;
mod grouped;
pub mod io;
pub mod library;
pub mod math;
pub mod memory;
pub mod pair;
pub mod program;
pub mod rng;
pub mod train;
