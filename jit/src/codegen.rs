//! Cranelift code generation for fused elementwise kernels.
//!
//! Every kernel has the signature `fn(ptrs: *const *mut f32, begin: i64, end: i64)`.
//! `ptrs` holds, in order, each input's data pointer (followed by its row
//! table for [`Access::Rows`]) and each output's data pointer. A flat kernel
//! computes elements `[begin, end)`; a row kernel computes rows
//! `[begin, end)` of `cols` elements each — so the runtime can split the
//! work across threads.
//!
//! Loops run over f32x4 vectors with a scalar tail (Cranelift 0.135 cannot
//! express wider vectors). Loads and stores use `notrap` but not `aligned`:
//! tensor data is only 4-byte aligned. Multiplications and additions are
//! never contracted into `fma`: without the host's FMA they would become
//! libm calls, and separate roundings keep results closest to the
//! reference executor.

use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::types::{F32, F32X4, I32, I32X4, I64};
use cranelift_codegen::ir::{
    AbiParam, BlockArg, Endianness, FuncRef, InstBuilder, MemFlagsData, Type, UserFuncName, Value,
};
use cranelift_codegen::settings::{self, Configurable};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use cranelift_jit::{JITBuilder, JITModule};
use cranelift_module::{FuncId, Linkage, Module, default_libcall_names};
use nnc_compiler::ir::{Binary, Unary};

use crate::fuse::{Access, Expr, Kernel};
use crate::scalar;

/// A compiled kernel (see the module docs for the calling convention).
pub type KernelFn = unsafe extern "C" fn(ptrs: *const *mut f32, begin: i64, end: i64);

/// Cranelift rejected a setting or a generated function; the text is Cranelift's message.
#[derive(Debug)]
pub struct CodegenError(pub String);

impl std::fmt::Display for CodegenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "kernel compilation failed: {}", self.0)
    }
}

/// Rust functions the generated code calls for the rarer transcendental ops
/// (the hot ones — exp, sigmoid, tanh — are inline polynomials).
const CALLEES: [(&str, *const u8, usize); 5] = [
    ("nnc_log", scalar::log as *const u8, 1),
    ("nnc_gelu", scalar::gelu as *const u8, 1),
    ("nnc_gelu_grad", scalar::gelu_grad as *const u8, 1),
    ("nnc_softplus", scalar::softplus as *const u8, 1),
    ("nnc_pow", scalar::pow as *const u8, 2),
];

/// One JIT module: compiles kernels and owns their code for as long as it lives.
pub struct Codegen {
    module: JITModule,
    callees: Vec<FuncId>,
    fctx: FunctionBuilderContext,
    count: u32,
    /// Whether the host has FMA (used inside polynomials only).
    fma: bool,
}

// SAFETY: the module is only used through `&mut self`; the code it owns is
// immutable once finalized and callable from any thread.
unsafe impl Send for Codegen {}

impl Codegen {
    /// A module for the host ISA (optimising for speed, using FMA when the host has it).
    pub fn new() -> Result<Codegen, CodegenError> {
        let err = |e: &dyn std::fmt::Display| CodegenError(e.to_string());
        let mut flags = settings::builder();
        flags.set("opt_level", "speed").map_err(|e| err(&e))?;
        flags.set("use_colocated_libcalls", "false").map_err(|e| err(&e))?;
        flags.set("is_pic", "false").map_err(|e| err(&e))?;
        // The verifier costs ~40 % of compile time; debug builds (tests) keep it.
        flags.set("enable_verifier", if cfg!(debug_assertions) { "true" } else { "false" }).map_err(|e| err(&e))?;
        let isa = cranelift_native::builder()
            .map_err(|e| err(&e))?
            .finish(settings::Flags::new(flags))
            .map_err(|e| err(&e))?;
        // Fused multiply-add only where the host has it: without it Cranelift
        // lowers `fma` to libm calls.
        let fma = isa.isa_flags().iter().any(|v| v.name == "has_fma" && v.as_bool() == Some(true));
        let mut jb = JITBuilder::with_isa(isa, default_libcall_names());
        for (name, ptr, _) in CALLEES {
            jb.symbol(name, ptr);
        }
        let mut module = JITModule::new(jb);
        let mut callees = Vec::new();
        for (name, _, arity) in CALLEES {
            let mut sig = module.make_signature();
            for _ in 0..arity {
                sig.params.push(AbiParam::new(F32));
            }
            sig.returns.push(AbiParam::new(F32));
            callees.push(module.declare_function(name, Linkage::Import, &sig).map_err(|e| err(&e))?);
        }
        Ok(Codegen { module, callees, fctx: FunctionBuilderContext::new(), count: 0, fma })
    }

    /// Compiles `kernel` into callable code.
    pub fn compile(&mut self, kernel: &Kernel) -> Result<KernelFn, CodegenError> {
        let err = |e: &dyn std::fmt::Display| CodegenError(e.to_string());
        let ptr = self.module.target_config().pointer_type();
        let mut sig = self.module.make_signature();
        sig.params.extend([AbiParam::new(ptr), AbiParam::new(I64), AbiParam::new(I64)]);
        self.count += 1;
        let name = format!("kernel{}", self.count);
        let id = self.module.declare_function(&name, Linkage::Export, &sig).map_err(|e| err(&e))?;
        let mut ctx = self.module.make_context();
        ctx.func.signature = sig;
        ctx.func.name = UserFuncName::user(0, id.as_u32());
        {
            let mut b = FunctionBuilder::new(&mut ctx.func, &mut self.fctx);
            let refs: Vec<FuncRef> =
                self.callees.iter().map(|&c| self.module.declare_func_in_func(c, b.func)).collect();
            Emitter { b: &mut b, refs, kernel, fma: self.fma }.function();
            b.seal_all_blocks();
            b.finalize(self.module.target_config());
        }
        // `NNC_JIT_DISASM=1` prints each kernel's machine code (for tuning).
        let disasm = std::env::var_os("NNC_JIT_DISASM").is_some();
        ctx.set_disasm(disasm);
        self.module.define_function(id, &mut ctx).map_err(|e| err(&e))?;
        if disasm && let Some(code) = ctx.compiled_code().and_then(|c| c.vcode.clone()) {
            eprintln!("{}\n{code}", kernel.signature());
        }
        self.module.clear_context(&mut ctx);
        self.module.finalize_definitions().map_err(|e| err(&e))?;
        let code = self.module.get_finalized_function(id);
        // SAFETY: `code` was compiled above with exactly this signature, and
        // the module that owns it lives as long as `self` (never freed early).
        Ok(unsafe { std::mem::transmute::<*const u8, KernelFn>(code) })
    }
}

fn mem() -> MemFlagsData {
    MemFlagsData::new().with_notrap()
}

struct Emitter<'a, 'b> {
    b: &'a mut FunctionBuilder<'b>,
    refs: Vec<FuncRef>,
    kernel: &'a Kernel,
    fma: bool,
}

/// Input sources and output addresses at an element index.
type Sources<'s> = &'s dyn Fn(&mut FunctionBuilder, Value) -> (Vec<Src>, Vec<Value>);

/// Where an input is read from inside the current row or run.
#[derive(Clone, Copy)]
enum Src {
    /// Contiguous: element `c` at `base + 4c`.
    Base(Value),
    /// One scalar for the row (or the whole kernel).
    Value(Value),
}

impl Emitter<'_, '_> {
    fn function(&mut self) {
        let k = self.kernel;
        let entry = self.b.create_block();
        self.b.append_block_params_for_function_params(entry);
        self.b.switch_to_block(entry);
        let [ptrs, begin, end] = self.b.block_params(entry).try_into().expect("three params");
        // Unpack the pointer array.
        let mut slot: i32 = 0;
        let mut load_ptr = |b: &mut FunctionBuilder| {
            let p = b.ins().load(I64, mem(), ptrs, slot * 8);
            slot += 1;
            p
        };
        let mut inputs = Vec::new();
        for (_, a) in &k.inputs {
            let data = load_ptr(self.b);
            let table = matches!(a, Access::Rows { .. }).then(|| load_ptr(self.b));
            inputs.push((data, table));
        }
        let outputs: Vec<(Value, Option<Value>)> = k
            .stores
            .iter()
            .map(|t| {
                let data = load_ptr(self.b);
                (data, t.as_ref().map(|_| load_ptr(self.b)))
            })
            .collect();
        // Kernel-wide scalars are read once.
        let scalars: Vec<Option<Value>> = k
            .inputs
            .iter()
            .zip(&inputs)
            .map(|((_, a), (data, _))| matches!(a, Access::Scalar).then(|| self.b.ins().load(F32, mem(), *data, 0)))
            .collect();
        let exit = self.b.create_block();
        if k.is_flat() {
            // One run over elements [begin, end): Full inputs at base + 4i.
            let srcs = |b: &mut FunctionBuilder, i: Value| -> (Vec<Src>, Vec<Value>) {
                let off = b.ins().ishl_imm_u(i, 2);
                let ins = inputs
                    .iter()
                    .zip(&scalars)
                    .map(|((data, _), s)| match s {
                        Some(v) => Src::Value(*v),
                        None => Src::Base(b.ins().iadd(*data, off)),
                    })
                    .collect();
                let outs = outputs.iter().map(|(o, _)| b.ins().iadd(*o, off)).collect();
                (ins, outs)
            };
            self.run(begin, end, exit, &srcs, None);
        } else {
            // Rows [begin, end), each of `cols` elements.
            let cols = k.cols as i64;
            let row = self.b.create_block();
            self.b.append_block_param(row, I64);
            let nonempty = self.b.ins().icmp(IntCC::SignedLessThan, begin, end);
            self.b.ins().brif(nonempty, row, &[BlockArg::Value(begin)], exit, &[]);
            self.b.switch_to_block(row);
            let r = self.b.block_params(row)[0];
            let full_off = self.b.ins().imul_imm_s(r, cols * 4);
            let mut row_srcs = Vec::new();
            for (((_, a), (data, table)), s) in k.inputs.iter().zip(&inputs).zip(&scalars) {
                row_srcs.push(match (a, table) {
                    (Access::Scalar, _) => Src::Value(s.expect("scalar input")),
                    (Access::Full, _) => Src::Base(self.b.ins().iadd(*data, full_off)),
                    (Access::Rows { inner, .. }, Some(t)) => {
                        let at = self.b.ins().ishl_imm_u(r, 2);
                        let at = self.b.ins().iadd(*t, at);
                        let off = self.b.ins().uload32(mem(), at, 0);
                        let off = self.b.ins().ishl_imm_u(off, 2);
                        let base = self.b.ins().iadd(*data, off);
                        if *inner { Src::Base(base) } else { Src::Value(self.b.ins().load(F32, mem(), base, 0)) }
                    }
                    (Access::Rows { .. }, None) => unreachable!("row access without a table"),
                });
            }
            let mut row_outs: Vec<Value> = Vec::new();
            for (data, table) in &outputs {
                row_outs.push(match table {
                    None => self.b.ins().iadd(*data, full_off),
                    Some(t) => {
                        let at = self.b.ins().ishl_imm_u(r, 2);
                        let at = self.b.ins().iadd(*t, at);
                        let off = self.b.ins().uload32(mem(), at, 0);
                        let off = self.b.ins().ishl_imm_u(off, 2);
                        self.b.ins().iadd(*data, off)
                    }
                });
            }
            let next_row = self.b.create_block();
            let zero = self.b.ins().iconst(I64, 0);
            let ncols = self.b.ins().iconst(I64, cols);
            let srcs = |b: &mut FunctionBuilder, c: Value| -> (Vec<Src>, Vec<Value>) {
                let off = b.ins().ishl_imm_u(c, 2);
                let ins = row_srcs
                    .iter()
                    .map(|s| match s {
                        Src::Base(p) => Src::Base(b.ins().iadd(*p, off)),
                        v => *v,
                    })
                    .collect();
                let outs = row_outs.iter().map(|o| b.ins().iadd(*o, off)).collect();
                (ins, outs)
            };
            self.run(zero, ncols, next_row, &srcs, Some(k.cols));
            self.b.switch_to_block(next_row);
            let r1 = self.b.ins().iadd_imm_s(r, 1);
            let more = self.b.ins().icmp(IntCC::SignedLessThan, r1, end);
            self.b.ins().brif(more, row, &[BlockArg::Value(r1)], exit, &[]);
        }
        self.b.switch_to_block(exit);
        self.b.ins().return_(&[]);
    }

    /// Emits the loops over `[from, to)`: two f32x4 vectors per step, then
    /// one vector, then a scalar tail; jumps to `done` at the end.
    /// `srcs(i)` gives the input sources and output addresses at element `i`.
    /// With a known length the loops that cannot run are left out.
    ///
    /// Two interleaved vectors per step: a cell's chain of polynomials
    /// (sigmoid → tanh) is latency-bound, and the out-of-order window holds
    /// about one iteration; two independent chains run side by side.
    fn run(&mut self, from: Value, to: Value, done: cranelift_codegen::ir::Block, srcs: Sources, len: Option<usize>) {
        let n = self.b.ins().isub(to, from);
        let n8 = self.b.ins().band_imm_s(n, !7);
        let pair_end = self.b.ins().iadd(from, n8);
        let n4 = self.b.ins().band_imm_s(n, !3);
        let vec_end = self.b.ins().iadd(from, n4);
        let (has_pairs, has_single, has_tail) = match len {
            Some(n) => (n >= 8, n % 8 >= 4, n % 4 != 0),
            None => (true, true, true),
        };
        // Pairs of vectors.
        let single_head = self.b.create_block();
        self.b.append_block_param(single_head, I64);
        if has_pairs {
            let body = self.b.create_block();
            self.b.append_block_param(body, I64);
            let go = self.b.ins().icmp(IntCC::SignedLessThan, from, pair_end);
            self.b.ins().brif(go, body, &[BlockArg::Value(from)], single_head, &[BlockArg::Value(from)]);
            self.b.switch_to_block(body);
            let i = self.b.block_params(body)[0];
            let i4 = self.b.ins().iadd_imm_s(i, 4);
            let copies = [srcs(self.b, i), srcs(self.b, i4)];
            self.element(F32X4, &copies);
            let i8 = self.b.ins().iadd_imm_s(i, 8);
            let more = self.b.ins().icmp(IntCC::SignedLessThan, i8, pair_end);
            self.b.ins().brif(more, body, &[BlockArg::Value(i8)], single_head, &[BlockArg::Value(i8)]);
        } else {
            self.b.ins().jump(single_head, &[BlockArg::Value(from)]);
        }
        // At most one more vector.
        self.b.switch_to_block(single_head);
        let s = self.b.block_params(single_head)[0];
        let tail_head = self.b.create_block();
        self.b.append_block_param(tail_head, I64);
        if has_single {
            let body = self.b.create_block();
            let go = self.b.ins().icmp(IntCC::SignedLessThan, s, vec_end);
            self.b.ins().brif(go, body, &[], tail_head, &[BlockArg::Value(s)]);
            self.b.switch_to_block(body);
            let copies = [srcs(self.b, s)];
            self.element(F32X4, &copies);
            let s4 = self.b.ins().iadd_imm_s(s, 4);
            self.b.ins().jump(tail_head, &[BlockArg::Value(s4)]);
        } else {
            self.b.ins().jump(tail_head, &[BlockArg::Value(s)]);
        }
        self.b.switch_to_block(tail_head);
        let t = self.b.block_params(tail_head)[0];
        if has_tail {
            let tail = self.b.create_block();
            self.b.append_block_param(tail, I64);
            let go = self.b.ins().icmp(IntCC::SignedLessThan, t, to);
            self.b.ins().brif(go, tail, &[BlockArg::Value(t)], done, &[]);
            self.b.switch_to_block(tail);
            let i = self.b.block_params(tail)[0];
            let copies = [srcs(self.b, i)];
            self.element(F32, &copies);
            let i1 = self.b.ins().iadd_imm_s(i, 1);
            let more = self.b.ins().icmp(IntCC::SignedLessThan, i1, to);
            self.b.ins().brif(more, tail, &[BlockArg::Value(i1)], done, &[]);
        } else {
            self.b.ins().jump(done, &[]);
        }
    }

    /// The body at one or more positions (`copies`: input sources and output
    /// addresses of each), as `ty` (F32 or F32X4). Copies are emitted op by op
    /// and stored output by output, so their chains interleave.
    fn element(&mut self, ty: Type, copies: &[(Vec<Src>, Vec<Value>)]) {
        let mut vals: Vec<Vec<Value>> = vec![Vec::with_capacity(self.kernel.body.len()); copies.len()];
        for e in &self.kernel.body {
            for (vals, (ins, _)) in vals.iter_mut().zip(copies) {
                let v = self.expr(ty, *e, ins, vals);
                vals.push(v);
            }
        }
        for (o, (_, b)) in self.kernel.outputs.iter().enumerate() {
            for (vals, (_, outs)) in vals.iter().zip(copies) {
                self.b.ins().store(mem(), vals[*b as usize], outs[o], 0);
            }
        }
    }

    fn expr(&mut self, ty: Type, e: Expr, ins: &[Src], vals: &[Value]) -> Value {
        match e {
            Expr::Load(k) => match ins[k as usize] {
                Src::Base(p) => self.b.ins().load(ty, mem(), p, 0),
                Src::Value(v) => self.splat(ty, v),
            },
            Expr::Const(c) => self.cst(ty, c),
            Expr::Unary(u, a) => self.unary(ty, u, vals[a as usize]),
            Expr::Binary(op, x, y) => self.binary(ty, op, vals[x as usize], vals[y as usize]),
            Expr::Pow(p, a) => {
                let pv = self.cst(ty, p);
                self.call(ty, 4, &[vals[a as usize], pv])
            }
            Expr::Elu(alpha, a) => {
                let x = vals[a as usize];
                let e = self.exp(ty, x);
                let one = self.cst(ty, 1.0);
                let em1 = self.b.ins().fsub(e, one);
                let al = self.cst(ty, alpha);
                let neg = self.b.ins().fmul(al, em1);
                let zero = self.cst(ty, 0.0);
                let pos = self.b.ins().fcmp(FloatCC::GreaterThan, x, zero);
                self.select(ty, pos, x, neg)
            }
            Expr::LeakyRelu(alpha, a) => {
                let x = vals[a as usize];
                let al = self.cst(ty, alpha);
                let neg = self.b.ins().fmul(al, x);
                let zero = self.cst(ty, 0.0);
                let pos = self.b.ins().fcmp(FloatCC::GreaterThan, x, zero);
                self.select(ty, pos, x, neg)
            }
        }
    }

    fn splat(&mut self, ty: Type, v: Value) -> Value {
        if ty.is_vector() { self.b.ins().splat(ty, v) } else { v }
    }

    fn cst(&mut self, ty: Type, c: f32) -> Value {
        let v = self.b.ins().f32const(c);
        self.splat(ty, v)
    }

    fn icst(&mut self, ty: Type, c: i32) -> Value {
        let v = self.b.ins().iconst(I32, c as i64);
        if ty.is_vector() { self.b.ins().splat(I32X4, v) } else { v }
    }

    fn int_ty(ty: Type) -> Type {
        if ty.is_vector() { I32X4 } else { I32 }
    }

    fn bits_of(&mut self, ty: Type, v: Value) -> Value {
        let flags = MemFlagsData::new().with_endianness(Endianness::Little);
        self.b.ins().bitcast(Self::int_ty(ty), flags, v)
    }

    fn float_of(&mut self, ty: Type, v: Value) -> Value {
        let flags = MemFlagsData::new().with_endianness(Endianness::Little);
        self.b.ins().bitcast(ty, flags, v)
    }

    /// `cond ? a : b` for a comparison result of `ty`'s shape.
    fn select(&mut self, ty: Type, cond: Value, a: Value, b: Value) -> Value {
        if ty.is_vector() {
            let mask = self.float_of(ty, cond);
            self.b.ins().bitselect(mask, a, b)
        } else {
            self.b.ins().select(cond, a, b)
        }
    }

    /// 1.0 where `cond` holds, else 0.0.
    fn indicator(&mut self, ty: Type, cond: Value) -> Value {
        let one = self.cst(ty, 1.0);
        let zero = self.cst(ty, 0.0);
        self.select(ty, cond, one, zero)
    }

    /// A per-lane call of callee `k`.
    fn call(&mut self, ty: Type, k: usize, args: &[Value]) -> Value {
        let f = self.refs[k];
        if !ty.is_vector() {
            let c = self.b.ins().call(f, args);
            return self.b.inst_results(c)[0];
        }
        let mut out = self.cst(ty, 0.0);
        for lane in 0..4u8 {
            let lane_args: Vec<Value> = args.iter().map(|&a| self.b.ins().extractlane(a, lane)).collect();
            let c = self.b.ins().call(f, &lane_args);
            let r = self.b.inst_results(c)[0];
            out = self.b.ins().insertlane(out, r, lane);
        }
        out
    }

    /// `a·b + c`: one `fma` where the host has it (inside polynomials, whose
    /// error bound allows either rounding), else a multiply and an add.
    fn mul_add(&mut self, a: Value, b: Value, c: Value) -> Value {
        if self.fma {
            self.b.ins().fma(a, b, c)
        } else {
            let m = self.b.ins().fmul(a, b);
            self.b.ins().fadd(m, c)
        }
    }

    /// `max(lo, x)` as one `maxps`: NaN in `x` propagates.
    fn max_with(&mut self, ty: Type, x: Value, lo: Value) -> Value {
        let c = self.b.ins().fcmp(FloatCC::LessThan, x, lo);
        self.select(ty, c, lo, x)
    }

    fn min_with(&mut self, ty: Type, x: Value, hi: Value) -> Value {
        let c = self.b.ins().fcmp(FloatCC::LessThan, hi, x);
        self.select(ty, c, hi, x)
    }

    /// The pieces of e^x (Cephes `expf`, the scheme of `runtime/src/math.rs`):
    /// `e^x = (1 + q)·2ⁿ` with `q = e^r − 1` for the reduced argument; `2ⁿ`
    /// as one factor (`halves = false`: n = 128 gives +∞, which sigmoid and
    /// tanh absorb) or two (`s₁·s₂`, exact up to n = 128). `x` is clamped to
    /// [−87.3, 88.7]; NaN propagates through the clamps.
    fn exp_parts(&mut self, ty: Type, x: Value, halves: bool) -> (Value, Value, Option<Value>) {
        let (lo, hi) = (self.cst(ty, scalar::EXP_LO), self.cst(ty, scalar::EXP_HI));
        let x = self.max_with(ty, x, lo);
        let x = self.min_with(ty, x, hi);
        let (log2e, round) = (self.cst(ty, std::f32::consts::LOG2_E), self.cst(ty, scalar::ROUND));
        let t = self.mul_add(x, log2e, round);
        let n = self.b.ins().fsub(t, round);
        let (hi_c, lo_c) = (self.cst(ty, -scalar::LN2_HI), self.cst(ty, -scalar::LN2_LO));
        let r = self.mul_add(n, hi_c, x);
        let r = self.mul_add(n, lo_c, r);
        let mut p = self.cst(ty, scalar::EXP_POLY[0]);
        for &c in &scalar::EXP_POLY[1..] {
            let cv = self.cst(ty, c);
            p = self.mul_add(p, r, cv);
        }
        let rr = self.b.ins().fmul(r, r);
        let q = self.mul_add(p, rr, r);
        let tb = self.bits_of(ty, t);
        let rb = self.icst(ty, scalar::ROUND.to_bits() as i32);
        let n = self.b.ins().isub(tb, rb);
        let bias = self.icst(ty, 127);
        if !halves {
            let nb = self.b.ins().iadd(n, bias);
            let s = self.b.ins().ishl_imm_u(nb, 23);
            let s = self.float_of(ty, s);
            return (q, s, None);
        }
        let h = self.b.ins().sshr_imm_u(n, 1);
        let hb = self.b.ins().iadd(h, bias);
        let s1 = self.b.ins().ishl_imm_u(hb, 23);
        let s1 = self.float_of(ty, s1);
        let nh = self.b.ins().isub(n, h);
        let nhb = self.b.ins().iadd(nh, bias);
        let s2 = self.b.ins().ishl_imm_u(nhb, 23);
        let s2 = self.float_of(ty, s2);
        (q, s1, Some(s2))
    }

    /// e^x within 2 ulp on [−87, 88] (the error bound `math.rs` tests).
    fn exp(&mut self, ty: Type, x: Value) -> Value {
        let (q, s1, s2) = self.exp_parts(ty, x, true);
        let one = self.cst(ty, 1.0);
        let e = self.b.ins().fadd(q, one);
        let e = self.b.ins().fmul(e, s1);
        match s2 {
            Some(s2) => self.b.ins().fmul(e, s2),
            None => e,
        }
    }

    /// tanh x = E/(E + 2) with E = e^2x − 1 = q·2ⁿ + (2ⁿ − 1): no cancellation
    /// near 0 (there n = 0 and E = q), so no series is needed. 2x is clamped
    /// to ±40, where tanh is ±1 in f32 and 2ⁿ stays finite.
    fn tanh(&mut self, ty: Type, x: Value) -> Value {
        let x2 = self.b.ins().fadd(x, x);
        let (lo, hi) = (self.cst(ty, -40.0), self.cst(ty, 40.0));
        let x2 = self.max_with(ty, x2, lo);
        let x2 = self.min_with(ty, x2, hi);
        let (q, scale, _) = self.exp_parts(ty, x2, false);
        let one = self.cst(ty, 1.0);
        let sm1 = self.b.ins().fsub(scale, one);
        let e = self.mul_add(q, scale, sm1);
        let two = self.cst(ty, 2.0);
        let d = self.b.ins().fadd(e, two);
        self.b.ins().fdiv(e, d)
    }

    fn unary(&mut self, ty: Type, u: Unary, x: Value) -> Value {
        match u {
            Unary::Neg => self.b.ins().fneg(x),
            Unary::Abs => self.b.ins().fabs(x),
            Unary::Sqrt => self.b.ins().sqrt(x),
            Unary::Square => self.b.ins().fmul(x, x),
            Unary::Recip => {
                let one = self.cst(ty, 1.0);
                self.b.ins().fdiv(one, x)
            }
            Unary::Exp => self.exp(ty, x),
            Unary::Relu => {
                let zero = self.cst(ty, 0.0);
                self.max_with(ty, x, zero)
            }
            Unary::Sigmoid => {
                // 1/(1 + e^−x); e^−x = +∞ (one-factor 2ⁿ at n = 128) gives 0.
                let zero = self.cst(ty, 0.0);
                let nx = self.b.ins().fsub(zero, x);
                let (q, scale, _) = self.exp_parts(ty, nx, false);
                let one = self.cst(ty, 1.0);
                let e = self.mul_add(q, scale, scale);
                let d = self.b.ins().fadd(one, e);
                self.b.ins().fdiv(one, d)
            }
            Unary::Tanh => self.tanh(ty, x),
            Unary::Positive => {
                let zero = self.cst(ty, 0.0);
                let c = self.b.ins().fcmp(FloatCC::GreaterThan, x, zero);
                self.indicator(ty, c)
            }
            Unary::Sign => {
                let zero = self.cst(ty, 0.0);
                let gt = self.b.ins().fcmp(FloatCC::GreaterThan, x, zero);
                let lt = self.b.ins().fcmp(FloatCC::LessThan, x, zero);
                let p = self.indicator(ty, gt);
                let n = self.indicator(ty, lt);
                self.b.ins().fsub(p, n)
            }
            Unary::Log => self.call(ty, 0, &[x]),
            Unary::Gelu => self.call(ty, 1, &[x]),
            Unary::GeluGrad => self.call(ty, 2, &[x]),
            Unary::Softplus => self.call(ty, 3, &[x]),
        }
    }

    fn binary(&mut self, ty: Type, op: Binary, x: Value, y: Value) -> Value {
        match op {
            Binary::Add => self.b.ins().fadd(x, y),
            Binary::Sub => self.b.ins().fsub(x, y),
            Binary::Mul => self.b.ins().fmul(x, y),
            Binary::Div => self.b.ins().fdiv(x, y),
            Binary::Max | Binary::Min => {
                // NaN on either side propagates (the reference adds the two).
                let m = if op == Binary::Max { self.max_with(ty, x, y) } else { self.min_with(ty, x, y) };
                let uno = self.b.ins().fcmp(FloatCC::Unordered, x, y);
                let sum = self.b.ins().fadd(x, y);
                self.select(ty, uno, sum, m)
            }
            Binary::Greater => {
                let c = self.b.ins().fcmp(FloatCC::GreaterThan, x, y);
                self.indicator(ty, c)
            }
            Binary::Equal => {
                let c = self.b.ins().fcmp(FloatCC::Equal, x, y);
                self.indicator(ty, c)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    //! Generated kernels against a scalar evaluation of the same body:
    //! random chains over random broadcasts, with NaN, ±∞ and zeros among
    //! the inputs, on row shapes with and without a scalar tail.
    use super::*;
    use crate::fuse::{Access, Expr, Kernel};

    /// A small deterministic generator (xorshift), so failures reproduce.
    struct Gen(u64);
    impl Gen {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
        fn value(&mut self) -> f32 {
            match self.below(20) {
                0 => f32::NAN,
                1 => f32::INFINITY,
                2 => f32::NEG_INFINITY,
                3 => 0.0,
                _ => (self.below(2001) as f32 - 1000.0) / 100.0,
            }
        }
    }

    const UNARY: [Unary; 15] = [
        Unary::Neg,
        Unary::Exp,
        Unary::Log,
        Unary::Sqrt,
        Unary::Abs,
        Unary::Relu,
        Unary::Sigmoid,
        Unary::Tanh,
        Unary::Gelu,
        Unary::GeluGrad,
        Unary::Softplus,
        Unary::Square,
        Unary::Recip,
        Unary::Positive,
        Unary::Sign,
    ];
    const BINARY: [Binary; 8] =
        [Binary::Add, Binary::Sub, Binary::Mul, Binary::Div, Binary::Max, Binary::Min, Binary::Greater, Binary::Equal];

    /// The reference executor's scalar semantics, in f64.
    fn unary(u: Unary, v: f64) -> f64 {
        match u {
            Unary::Neg => -v,
            // Clamped like the reference's f32 exp: e^88.72 stays finite.
            Unary::Exp => {
                if v.is_nan() {
                    v
                } else {
                    v.clamp(scalar::EXP_LO as f64, scalar::EXP_HI as f64).exp()
                }
            }
            Unary::Log => v.ln(),
            Unary::Sqrt => v.sqrt(),
            Unary::Abs => v.abs(),
            Unary::Relu => {
                if v < 0.0 {
                    0.0
                } else {
                    v
                }
            }
            Unary::Sigmoid => 1.0 / (1.0 + (-v).exp()),
            Unary::Tanh => v.tanh(),
            Unary::Gelu => scalar::gelu(v as f32) as f64,
            Unary::GeluGrad => scalar::gelu_grad(v as f32) as f64,
            Unary::Softplus => scalar::softplus(v as f32) as f64,
            Unary::Square => v * v,
            Unary::Recip => 1.0 / v,
            Unary::Positive => f64::from(v > 0.0),
            Unary::Sign => {
                if v > 0.0 {
                    1.0
                } else if v < 0.0 {
                    -1.0
                } else {
                    0.0
                }
            }
        }
    }

    fn binary(b: Binary, a: f64, c: f64) -> f64 {
        match b {
            Binary::Add => a + c,
            Binary::Sub => a - c,
            Binary::Mul => a * c,
            Binary::Div => a / c,
            Binary::Max => {
                if a.is_nan() || c.is_nan() {
                    a + c
                } else {
                    a.max(c)
                }
            }
            Binary::Min => {
                if a.is_nan() || c.is_nan() {
                    a + c
                } else {
                    a.min(c)
                }
            }
            Binary::Greater => f64::from(a > c),
            Binary::Equal => f64::from(a == c),
        }
    }

    /// Whether `got` (f32 kernel) matches `want` (f64 of the f32-rounded
    /// inputs of the last op): NaN where NaN, infinities equal, otherwise
    /// close relative to the magnitude.
    fn close(got: f32, want: f64) -> bool {
        if want.is_nan() {
            return got.is_nan();
        }
        if want.is_infinite() || want.abs() > 3.0e38 {
            return got.is_infinite() && got.signum() as f64 == want.signum()
                || (got as f64 - want).abs() <= 1e-5 * want.abs();
        }
        (got as f64 - want).abs() <= 2e-6 * want.abs().max(1e-30) + 1e-37
    }

    /// Runs a one-op flat kernel over `xs`.
    fn apply(cg: &mut Codegen, u: Unary, xs: &[f32]) -> Vec<f32> {
        let body = vec![Expr::Load(0), Expr::Unary(u, 0)];
        let k = Kernel {
            rows: 1,
            cols: xs.len(),
            inputs: vec![(0, Access::Full)],
            body,
            outputs: vec![(1, 1)],
            stores: vec![None],
            members: vec![],
        };
        let code = cg.compile(&k).expect("compiles");
        let mut x = xs.to_vec();
        let mut out = vec![0f32; xs.len()];
        let ptrs = [x.as_mut_ptr(), out.as_mut_ptr()];
        // SAFETY: both buffers hold `xs.len()` elements, the kernel's length.
        unsafe { code(ptrs.as_ptr(), 0, xs.len() as i64) };
        out
    }

    /// The stated error bounds of the inline polynomials, against f64 libm
    /// on a dense grid over [−100, 100] plus the special values: exp within
    /// 4e-7 relative (2 ulp) on [−87, 88]; sigmoid within 1e-6 relative
    /// where it is above 1e-30; tanh within 1e-6 relative everywhere
    /// (including near 0, where 1 − 2/(e^2x + 1) would cancel).
    #[test]
    fn inline_polynomials_meet_their_error_bounds() {
        let mut cg = Codegen::new().expect("host ISA");
        let mut xs: Vec<f32> = (-100_000..=100_000).map(|i| i as f32 * 1e-3).collect();
        xs.extend([0.0, -0.0, 1e-30, -1e-30, 1e-8, -1e-6, 88.7, -88.7, f32::INFINITY, f32::NEG_INFINITY]);
        let rel = |a: f32, b: f64| if a as f64 == b { 0.0 } else { ((a as f64 - b) / b.abs()).abs() };
        let e = apply(&mut cg, Unary::Exp, &xs);
        let s = apply(&mut cg, Unary::Sigmoid, &xs);
        let t = apply(&mut cg, Unary::Tanh, &xs);
        for (i, &x) in xs.iter().enumerate() {
            let xd = x as f64;
            if (-87.0..=88.0).contains(&xd) {
                assert!(rel(e[i], xd.exp()) < 4e-7, "exp({x}) = {}", e[i]);
            }
            let ws = 1.0 / (1.0 + (-xd).exp());
            if ws > 1e-30 {
                assert!(rel(s[i], ws) < 1e-6, "sigmoid({x}) = {}, libm {ws}", s[i]);
            }
            assert!(
                rel(t[i], xd.tanh()) < 1e-6 || xd == 0.0 && t[i] == 0.0,
                "tanh({x}) = {}, libm {}",
                t[i],
                xd.tanh()
            );
        }
        let nan = apply(&mut cg, Unary::Exp, &[f32::NAN; 5]);
        assert!(nan.iter().all(|v| v.is_nan()));
        assert!(apply(&mut cg, Unary::Sigmoid, &[f32::NAN; 5]).iter().all(|v| v.is_nan()));
        assert!(apply(&mut cg, Unary::Tanh, &[f32::NAN; 5]).iter().all(|v| v.is_nan()));
    }

    #[test]
    fn random_chains_match_scalar_evaluation() {
        let mut g = Gen(0x9e37_79b9_7f4a_7c15);
        let mut cg = Codegen::new().expect("host ISA");
        for case in 0..300 {
            let (rows, cols) = ([1, 3, 5][g.below(3)], [1, 3, 4, 7, 9][g.below(5)]);
            let n = rows * cols;
            // Inputs: full, scalar, row-broadcast ([rows, 1]) or column-broadcast ([cols]).
            let mut inputs = Vec::new();
            let mut data: Vec<Vec<f32>> = Vec::new();
            for _ in 0..1 + g.below(3) {
                let (access, len) = match g.below(4) {
                    0 => (Access::Scalar, 1),
                    1 => (Access::Rows { table: (0..rows as u32).collect(), inner: false }, rows),
                    2 => (Access::Rows { table: vec![0; rows], inner: true }, cols),
                    _ => (Access::Full, n),
                };
                data.push((0..len).map(|_| g.value()).collect());
                inputs.push((inputs.len() as u32, access));
            }
            let mut body: Vec<Expr> = (0..inputs.len() as u32).map(Expr::Load).collect();
            for _ in 0..1 + g.below(6) {
                let a = g.below(body.len()) as u32;
                let e = match g.below(5) {
                    0 | 1 => Expr::Unary(UNARY[g.below(UNARY.len())], a),
                    2 | 3 => Expr::Binary(BINARY[g.below(BINARY.len())], a, g.below(body.len()) as u32),
                    _ => match g.below(3) {
                        0 => Expr::Const(g.value()),
                        1 => Expr::LeakyRelu(0.2, a),
                        _ => Expr::Elu(1.0, a),
                    },
                };
                body.push(e);
            }
            let last = (body.len() - 1) as u32;
            let kernel = Kernel {
                rows,
                cols,
                inputs,
                body: body.clone(),
                outputs: vec![(0, last)],
                stores: vec![None],
                members: vec![],
            };
            let code = cg.compile(&kernel).expect("compiles");
            let mut out = vec![0f32; n];
            let mut ptrs: Vec<*mut f32> = Vec::new();
            for ((_, a), d) in kernel.inputs.iter().zip(&mut data) {
                ptrs.push(d.as_mut_ptr());
                if let Access::Rows { table, .. } = a {
                    ptrs.push(table.as_ptr() as *mut f32);
                }
            }
            ptrs.push(out.as_mut_ptr());
            let total = if kernel.is_flat() { n } else { rows };
            // SAFETY: every buffer has the length its access reads.
            unsafe { code(ptrs.as_ptr(), 0, total as i64) };
            for r in 0..rows {
                for c in 0..cols {
                    // Evaluate in f32 steps (each op rounded), the last op in f64.
                    let mut vals: Vec<f32> = Vec::new();
                    let mut want = 0f64;
                    for (j, e) in body.iter().enumerate() {
                        let v = match *e {
                            Expr::Load(k) => {
                                let d = &data[k as usize];
                                (match &kernel.inputs[k as usize].1 {
                                    Access::Full => d[r * cols + c],
                                    Access::Scalar => d[0],
                                    Access::Rows { inner: false, .. } => d[r],
                                    Access::Rows { inner: true, .. } => d[c],
                                }) as f64
                            }
                            Expr::Const(v) => v as f64,
                            Expr::Unary(u, a) => unary(u, vals[a as usize] as f64),
                            Expr::Binary(b, x, y) => binary(b, vals[x as usize] as f64, vals[y as usize] as f64),
                            Expr::LeakyRelu(al, a) => {
                                let x = vals[a as usize] as f64;
                                if x > 0.0 { x } else { al as f64 * x }
                            }
                            Expr::Elu(al, a) => {
                                let x = vals[a as usize] as f64;
                                if x > 0.0 { x } else { al as f64 * (x.exp() - 1.0) }
                            }
                            Expr::Pow(p, a) => (vals[a as usize] as f64).powf(p as f64),
                        };
                        if j + 1 == body.len() {
                            want = v;
                        }
                        vals.push(v as f32);
                    }
                    let got = out[r * cols + c];
                    // Earlier ops' roundings can differ by an ulp, and an ulp in
                    // the input of exp/div near overflow or of a comparison
                    // flips results: compare the last op on the kernel's own
                    // f32 intermediate chain only when the chain is short.
                    if body.len() - kernel.inputs.len() == 1 {
                        assert!(
                            close(got, want),
                            "case {case}: {body:?} at ({r}, {c}): kernel {got}, scalar {want}, inputs {data:?}"
                        );
                    } else if want.is_nan() != got.is_nan() && !vals.iter().any(|v| v.abs() > 1e30 || *v == 0.0) {
                        panic!("case {case}: {body:?} at ({r}, {c}): kernel {got}, scalar {want}");
                    }
                }
            }
        }
    }
}
