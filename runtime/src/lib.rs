//! nnc's execution runtime (graph IR execution and training) lives here.
//! See ARCHITECTURE.md for the planned pipeline stages.

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
