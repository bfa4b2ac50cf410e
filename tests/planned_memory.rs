//! The compiled backend's memory plan: once a program has run, running it
//! again allocates nothing of its own — every value lives in a slot planned
//! at build time, library routines write into their slot, and convolutions
//! reuse their patch buffers. The one exception is inside the `gemm` crate,
//! which allocates packing buffers per product (its API takes no caller
//! buffer); those are not counted. Counted with a global allocator that
//! tallies allocations on this thread, over whole training steps (forward,
//! loss, backward) of real example models.

// Unsafe code: a counting global allocator that forwards to the system one.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::collections::HashMap;

use common::*;
use nnc_compiler::ir::{DType, Id, Op};
use nnc_runtime::exec::Tensor;
use nnc_runtime::program::Program;
use nnc_runtime::train::{Params, Trainer};

struct Counting;

thread_local! {
    static COUNT: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: forwards to the system allocator; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if !nnc_runtime::gemm::inside_gemm() {
            let _ = COUNT.try_with(|c| c.set(c.get() + 1));
        }
        // SAFETY: the caller's contract for `alloc`, passed on unchanged.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System` (every allocation here does), with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new: usize) -> *mut u8 {
        if !nnc_runtime::gemm::inside_gemm() {
            let _ = COUNT.try_with(|c| c.set(c.get() + 1));
        }
        // SAFETY: `ptr` came from `System` with `layout`; the caller's contract for `realloc`.
        unsafe { System.realloc(ptr, layout, new) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn allocations(f: impl FnOnce()) -> usize {
    let before = COUNT.with(Cell::get);
    f();
    COUNT.with(Cell::get) - before
}

#[test]
fn a_steady_state_training_step_allocates_nothing_outside_gemm() {
    // One thread: the count is per thread, and a split would run half the
    // work where it is not counted.
    // SAFETY: set before the runtime reads it, while this test binary's only
    // test runs and no other thread reads the environment.
    unsafe { std::env::set_var("NNC_THREADS", "1") };
    for (file, batch) in
        [("examples/workshop_mlp.nn", 32), ("examples/workshop_convnet.nn", 8), ("examples/dense_autoencoder.nn", 16)]
    {
        let a = analyse_path(&root().join(file));
        let info = &a.result.trains[0];
        let trainer = Trainer::new(info, None, vec![]).unwrap();
        let f = trainer.ir(batch, true).unwrap();
        let keep: Vec<Id> = f.outputs.iter().map(|(_, id)| *id).collect();
        let mut params = Params::default();
        params.ensure(&f.params, 1).unwrap();
        let plist: Vec<&ndarray::ArrayD<f32>> = f.params.iter().map(|p| &params.values[&p.name]).collect();
        let mut inputs = HashMap::new();
        for node in &f.nodes {
            if let Op::Input(name) = &node.op {
                let t = match node.dtype {
                    DType::F32 => Tensor::F(ndarray::ArrayD::from_elem(node.shape.clone(), 0.25f32)),
                    DType::I64 => Tensor::I(ndarray::ArrayD::from_elem(node.shape.clone(), 1i64)),
                };
                inputs.insert(name.clone(), t);
            }
        }
        let mut jit = nnc_jit::Jit::new().unwrap();
        let mut program = Program::build(&f, &keep, &mut jit).unwrap();
        let mut uniform = || 0.5;
        {
            program.run(&inputs, &plist, &mut uniform).unwrap();
            let calls = || nnc_runtime::gemm::CALLS.load(std::sync::atomic::Ordering::Relaxed);
            let before = calls();
            let n = allocations(|| program.run(&inputs, &plist, &mut uniform).unwrap());
            assert!(calls() > before, "{file}: no matrix products ran");
            assert_eq!(n, 0, "{file}: a second run allocated {n} times outside gemm");
        }
    }
}
