//! nnc's kernels: the stage between the graph IR and the runtime.
//!
//! [`rewrite::rewrite`] simplifies the IR algebraically, [`fuse::plan`] partitions a function's nodes into steps —
//! fused elementwise kernels and library ops — and [`Jit`] compiles the kernels
//! with Cranelift, once per distinct signature. The runtime
//! (`nnc-runtime`'s `program` module) plans memory and runs the steps.
//!
//! In the pipeline source → AST → typed graph → IR → kernels → runtime this crate is the kernel stage.
//! See `ARCHITECTURE.md` at the repository root for the stages, and the manual (`docs/src/`) for the language.

#![warn(missing_docs)]

// Unsafe code: calling generated machine code (codegen.rs: a kernel's pointer table is built from
// the same shapes the kernel was compiled for), and `Send` for the JIT module that owns that code.

pub mod codegen;
pub mod fuse;
pub mod rewrite;
pub mod scalar;

use std::collections::HashMap;

pub use codegen::{CodegenError, KernelFn};
pub use fuse::{Access, Expr, Kernel, Plan, Step};

/// Compiles kernels, sharing one function among kernels with equal
/// signatures (the time steps of an unrolled recurrence, the same layer in
/// forward and evaluation programs).
pub struct Jit {
    codegen: codegen::Codegen,
    cache: HashMap<String, KernelFn>,
}

impl Jit {
    /// Creates a JIT for the host's ISA (detecting FMA); fails if Cranelift does not support the host.
    pub fn new() -> Result<Jit, CodegenError> {
        Ok(Jit { codegen: codegen::Codegen::new()?, cache: HashMap::new() })
    }

    /// The compiled function for `k`, compiling it only if no kernel with the same
    /// [`Kernel::signature`] was compiled before.
    pub fn kernel(&mut self, k: &Kernel) -> Result<KernelFn, CodegenError> {
        let sig = k.signature();
        if let Some(f) = self.cache.get(&sig) {
            return Ok(*f);
        }
        let f = self.codegen.compile(k)?;
        self.cache.insert(sig, f);
        Ok(f)
    }

    /// Distinct kernels compiled so far.
    pub fn compiled(&self) -> usize {
        self.cache.len()
    }
}
