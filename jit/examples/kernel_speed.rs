//! Times one LSTM-cell-like kernel: `cargo run --release -p nnc-jit --example kernel_speed`.

// Unsafe code: calls the compiled kernel it times.

use nnc_compiler::ir::{Binary as B, Unary as U};
use nnc_jit::codegen::Codegen;
use nnc_jit::fuse::{Access, Expr, Kernel};

fn main() {
    let (rows, cols) = (150usize, 100usize);
    let table = |g: u32| (0..rows as u32).map(|r| r * 400 + g * 100).collect::<Vec<u32>>();
    let inputs = (0..4).map(|g| (0, Access::Rows { table: table(g), inner: true })).collect();
    use Expr::{Binary, Const, Load, Unary};
    let body = vec![
        Load(0),
        Unary(U::Sigmoid, 0),
        Load(1),
        Unary(U::Sigmoid, 2),
        Load(2),
        Unary(U::Tanh, 4),
        Load(3),
        Unary(U::Sigmoid, 6),
        Const(0.0),
        Binary(B::Mul, 3, 8),
        Binary(B::Mul, 1, 5),
        Binary(B::Add, 9, 10),
        Unary(U::Tanh, 11),
        Binary(B::Mul, 7, 12),
    ];
    let outputs = [1, 3, 5, 7, 11, 12, 13].iter().map(|&b| (0, b)).collect();
    let stores = vec![None; 7];
    let k = Kernel { rows, cols, inputs, body, outputs, stores, members: vec![] };
    let mut cg = Codegen::new().unwrap();
    let f = cg.compile(&k).unwrap();
    let mut x: Vec<f32> = (0..rows * 400).map(|i| ((i * 7919) % 1000) as f32 / 100.0 - 5.0).collect();
    let mut outs: Vec<Vec<f32>> = (0..7).map(|_| vec![0f32; rows * cols]).collect();
    let mut ptrs: Vec<*mut f32> = Vec::new();
    for (_, a) in &k.inputs {
        ptrs.push(x.as_mut_ptr());
        if let Access::Rows { table, .. } = a {
            ptrs.push(table.as_ptr() as *mut f32);
        }
    }
    for o in &mut outs {
        ptrs.push(o.as_mut_ptr());
    }
    for _ in 0..3 {
        let t = std::time::Instant::now();
        for _ in 0..1000 {
            // SAFETY: `ptrs` holds one buffer per kernel operand in the order the kernel's signature
            // lists them, each sized for `rows` rows of this kernel (built above from the same shapes).
            unsafe { f(ptrs.as_ptr(), 0, rows as i64) };
        }
        let ns = t.elapsed().as_nanos() as f64 / 1000.0 / (rows * cols) as f64;
        println!("{ns:.2} ns/element");
    }
}
