//! The compiled backend: runs a function as the steps of a fusion plan —
//! Cranelift kernels and library routines — on a static memory plan.
//!
//! The memory plan gives every stored value a *slot*, assigned once when the
//! program is built by walking the steps in order: a value takes a free slot
//! of about its size (or a new one) and gives it back after its last reader;
//! an elementwise kernel may write an output into the slot of a full-size
//! operand that dies at that kernel. Slots are allocated once, so a step
//! allocates only inside the library routines that still build temporaries
//! (convolutions' patch matrices). Parameters are read in place; `fill` and
//! constant nodes live in their own never-reused buffers; `reshape` is a view.
//!
//! All values are f32: integer inputs (labels, token ids) are converted on
//! the way in, which is exact below 2²⁴ — larger values are refused.

use std::collections::HashMap;

use ndarray::{ArrayD, ArrayViewD, IxDyn};
use nnc_compiler::ir::{DType, Func, Id, Op, Reduce, numel};
use nnc_jit::{Access, Jit, Kernel, KernelFn, Plan, Step};

use crate::exec::{self, ExecError, Tensor};
use crate::{grouped, library};

/// Elements × (ops / 4) above which a kernel splits over two threads: the
/// spinning helper of `crate::pair` takes a job in about a microsecond.
const KERNEL_SPLIT_WORK: usize = 1 << 14;

/// Integers above this lose precision in f32.
const EXACT_INT: f64 = 16_777_216.0;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Storage {
    /// Not computed (dead, or only inside a kernel).
    None,
    Slot(usize),
    Param(usize),
    Const(usize),
}

/// A step with what it needs at run time.
enum Exec {
    Kernel { kernel: Kernel, code: KernelFn },
    Library { node: Id, aux: Aux },
}

/// Precomputed index tables of library ops.
enum Aux {
    None,
    /// Reductions: output offset of each input row, whether the last axis
    /// is kept, the number of reduced elements per output.
    Reduce {
        table: Vec<u32>,
        inner: bool,
        count: usize,
        op: Reduce,
    },
    /// Transpose: input offset of each output row and the input stride
    /// along the output's last axis.
    Transpose {
        table: Vec<u32>,
        stride: usize,
    },
    /// Convolutions: patch buffers kept across runs.
    Conv(library::ConvScratch),
    /// Grouped convolutions' kernel gradients: the second thread's partial sum.
    Grouped(Vec<f32>),
}

/// A function compiled for the JIT backend: its steps (kernels and library ops) and a memory plan of slots.
pub struct Program {
    /// The function after rewrites; `map` takes the caller's node ids to it.
    f: Func,
    map: Vec<Id>,
    steps: Vec<Exec>,
    storage: Vec<Storage>,
    slots: Vec<Vec<f32>>,
    consts: Vec<Vec<f32>>,
    /// Scratch for reductions (f64 accumulators) and kernel pointers.
    acc: Vec<f64>,
    ptrs: Vec<*mut f32>,
    /// Bytes of all slots: the arena's peak.
    pub arena_bytes: usize,
    /// Distinct kernels and library ops, for reports.
    pub kernels: usize,
    /// Library steps (GEMM, convolutions, reductions…), for reports.
    pub library_ops: usize,
}

// SAFETY: the raw pointers in `ptrs` are scratch, rewritten before every
// kernel call from buffers the program owns or borrows for that call.
unsafe impl Send for Program {}

/// Why a function could not be compiled into a [`Program`].
#[derive(Debug)]
pub enum BuildError {
    /// Cranelift failed (its message).
    Codegen(String),
    /// A value whose size overflows, or that the compiled backend's 32-bit
    /// row tables cannot address.
    TooLarge(crate::memory::TooLarge),
    /// The memory plan needs more than the run's memory check left for it.
    Arena {
        /// Bytes the plan needs.
        bytes: u64,
        /// Bytes it may have.
        cap: u64,
    },
}

impl std::fmt::Display for BuildError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BuildError::Codegen(e) => write!(f, "{e}"),
            BuildError::TooLarge(t) => write!(f, "{t}"),
            BuildError::Arena { bytes, cap } => write!(
                f,
                "the compiled program's memory plan needs {} for its values, more than the {} the memory check left \
                 (set the limit with --max-memory SIZE)",
                crate::memory::human(*bytes),
                crate::memory::human(*cap)
            ),
        }
    }
}

/// Elements the compiled backend addresses in one value: kernels' row tables
/// and transposes' index tables hold `u32` offsets, and an offset that
/// wrapped would read or write the wrong place.
const MAX_ELEMENTS: usize = u32::MAX as usize;

/// Checks every size `f` implies before anything is planned or allocated:
/// each node and parameter allocatable, and addressable by 32-bit tables.
fn check_sizes(f: &Func) -> Result<(), BuildError> {
    crate::memory::check_func(f).map_err(BuildError::TooLarge)?;
    for (i, n) in f.nodes.iter().enumerate() {
        if crate::memory::numel(&n.shape).is_some_and(|e| e > MAX_ELEMENTS) {
            return Err(BuildError::TooLarge(crate::memory::TooLarge {
                what: format!(
                    "node %{i} (the compiled backend holds at most 2^32 elements per value; --backend reference does \
                        not)"
                ),
                shape: n.shape.clone(),
            }));
        }
    }
    Ok(())
}

/// Follows reshapes to the node that owns the storage.
fn root(f: &Func, mut id: Id) -> Id {
    while matches!(f.nodes[id as usize].op, Op::Reshape) {
        id = f.nodes[id as usize].args[0];
    }
    id
}

/// Rows `start..end` of axis `axis` of `x` (shape `xs`).
fn slice(x: &[f32], xs: &[usize], axis: usize, start: usize, end: usize, out: &mut [f32]) {
    let inner: usize = xs[axis + 1..].iter().product();
    let (len, full) = ((end - start) * inner, xs[axis] * inner);
    for (o, chunk) in out.chunks_exact_mut(len.max(1)).enumerate() {
        chunk.copy_from_slice(&x[o * full + start * inner..o * full + start * inner + len]);
    }
}

/// `x` (shape `xs`) placed at `before` along `axis` of zeros of shape `shape`.
fn pad(x: &[f32], xs: &[usize], shape: &[usize], axis: usize, before: usize, out: &mut [f32]) {
    let inner: usize = xs[axis + 1..].iter().product();
    let (len, full) = (xs[axis] * inner, shape[axis] * inner);
    out.fill(0.0);
    for (o, chunk) in x.chunks_exact(len.max(1)).enumerate() {
        out[o * full + before * inner..o * full + before * inner + len].copy_from_slice(chunk);
    }
}

/// Rows of `table` (shape `[rows, d]`) by index; an index outside is `Err((index, rows))`.
fn gather(table: &[f32], shape: &[usize], idx: &[f32], out: &mut [f32]) -> Result<(), (i64, usize)> {
    let (rows, d) = (shape[0], shape[1]);
    for (k, &ix) in idx.iter().enumerate() {
        let i = ix as i64;
        if i < 0 || i as usize >= rows {
            return Err((i, rows));
        }
        out[k * d..(k + 1) * d].copy_from_slice(&table[i as usize * d..(i as usize + 1) * d]);
    }
    Ok(())
}

/// The gradient of a gather: rows of `g` summed into a `[v, d]` table by index (clamped, as the forward
/// gather refused the ones outside).
fn scatter_add(g: &[f32], idx: &[f32], shape: &[usize], out: &mut [f32]) {
    let (v, d) = (shape[0], shape[1]);
    out.fill(0.0);
    for (k, &ix) in idx.iter().enumerate() {
        let i = (ix as i64).clamp(0, v as i64 - 1) as usize;
        for (o, &x) in out[i * d..(i + 1) * d].iter_mut().zip(&g[k * d..(k + 1) * d]) {
            *o += x;
        }
    }
}

/// One-hot rows of `depth`; an index outside is `Err((index, depth))`.
fn one_hot(idx: &[f32], depth: usize, out: &mut [f32]) -> Result<(), (i64, usize)> {
    out.fill(0.0);
    for (k, &ix) in idx.iter().enumerate() {
        let i = ix as i64;
        if i < 0 || i as usize >= depth {
            return Err((i, depth));
        }
        out[k * depth + i as usize] = 1.0;
    }
    Ok(())
}

/// Uniform [0, 1) or standard normal (Box–Muller) values from `uniform`.
fn random(normal: bool, uniform: &mut dyn FnMut() -> f64, out: &mut [f32]) {
    for o in out.iter_mut() {
        *o = if normal {
            let u1 = uniform().max(1e-300);
            let u2 = uniform();
            ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
        } else {
            uniform() as f32
        };
    }
}

/// The memory plan: gives every value a step writes (params and constants aside) a slot by liveness, in
/// `storage`, and returns the slots' capacities in f32s. A value takes a free slot of about its size, or the
/// slot of a full-size kernel operand dying at that step, and returns it after its last reader.
fn assign_slots(f: &Func, plan: &Plan, keep: &[Id], storage: &mut [Storage]) -> Vec<usize> {
    let n = f.nodes.len();
    // Reads and writes of each step, on storage roots.
    let reads: Vec<Vec<Id>> = plan
        .steps
        .iter()
        .map(|s| match s {
            Step::Kernel(k) => k.inputs.iter().map(|(id, _)| root(f, *id)).collect(),
            Step::Library(id) => f.nodes[*id as usize].args.iter().map(|&a| root(f, a)).collect(),
        })
        .collect();
    let writes: Vec<Vec<Id>> = plan
        .steps
        .iter()
        .map(|s| match s {
            Step::Kernel(k) => k.outputs.iter().map(|(id, _)| *id).collect(),
            Step::Library(id) => vec![*id],
        })
        .collect();
    // The last step that reads each root (None: never read).
    let mut last: Vec<Option<usize>> = vec![None; n];
    for (s, r) in reads.iter().enumerate() {
        for &id in r {
            last[id as usize] = Some(s);
        }
    }
    for &k in keep {
        last[root(f, k) as usize] = Some(usize::MAX);
    }
    // Slots by liveness: (capacity, slot) of free slots.
    let mut caps: Vec<usize> = Vec::new();
    let mut free: Vec<usize> = Vec::new();
    for (s, step) in plan.steps.iter().enumerate() {
        let mut reused_inputs: Vec<Id> = Vec::new();
        for &w in &writes[s] {
            if storage[w as usize] != Storage::None {
                continue; // params and constants keep their own storage
            }
            let need = numel(&f.nodes[w as usize].shape).max(1);
            // In place: a full-size kernel operand that dies here (not for
            // rows stored into a concatenation, which is larger).
            let into_concat = matches!(step, Step::Kernel(k)
                if k.outputs.iter().zip(&k.stores).any(|((o, _), t)| *o == w && t.is_some()));
            let in_place = match step {
                Step::Kernel(_) if into_concat => None,
                Step::Kernel(k) => k.inputs.iter().find_map(|(id, a)| {
                    let r = root(f, *id);
                    let only = reads[s].iter().filter(|&&x| x == r).count() == 1;
                    let Storage::Slot(slot) = storage[r as usize] else {
                        return None;
                    };
                    (*a == Access::Full
                        && only
                        && last[r as usize] == Some(s)
                        && !reused_inputs.contains(&r)
                        && caps[slot] >= need)
                        .then_some((r, slot))
                }),
                Step::Library(_) => None,
            };
            let slot = match in_place {
                Some((r, slot)) => {
                    reused_inputs.push(r);
                    slot
                }
                None => {
                    let fits = |sl: usize| caps[sl] >= need && caps[sl] <= 2 * need + 1024;
                    let fit = (0..free.len()).filter(|&j| fits(free[j])).min_by_key(|&j| caps[free[j]]);
                    match fit {
                        Some(j) => free.swap_remove(j),
                        None => {
                            caps.push(need);
                            caps.len() - 1
                        }
                    }
                }
            };
            storage[w as usize] = Storage::Slot(slot);
        }
        // Values whose last reader is this step give their slots back
        // (unless an output took them in place); so do outputs nobody reads.
        let mut dying: Vec<Id> =
            reads[s].iter().copied().filter(|&r| last[r as usize] == Some(s) && !reused_inputs.contains(&r)).collect();
        dying.extend(writes[s].iter().copied().filter(|&w| last[w as usize].is_none()));
        dying.sort_unstable();
        dying.dedup();
        for d in dying {
            if let Storage::Slot(slot) = storage[d as usize]
                && !free.contains(&slot)
            {
                free.push(slot);
            }
        }
    }
    caps
}

impl Program {
    /// Plans, compiles and lays out `f` for computing `keep`.
    pub fn build(f: &Func, keep: &[Id], jit: &mut Jit) -> Result<Program, BuildError> {
        Self::build_within(f, keep, jit, u64::MAX)
    }

    /// [`Program::build`], refusing a memory plan (slots and constants) of
    /// more than `cap` bytes before allocating it.
    pub fn build_within(f: &Func, keep: &[Id], jit: &mut Jit, cap: u64) -> Result<Program, BuildError> {
        check_sizes(f)?;
        let rewritten = nnc_jit::rewrite::rewrite(f, keep);
        // Rewrites join operands (concatenations): their sizes are checked too.
        check_sizes(&rewritten.func)?;
        let keep: Vec<Id> = keep.iter().map(|&k| rewritten.map[k as usize]).collect();
        let plan = nnc_jit::fuse::plan(&rewritten.func, &keep);
        Self::from_plan(&rewritten.func, rewritten.map, plan, &keep, jit, cap)
    }

    fn from_plan(
        f: &Func,
        map: Vec<Id>,
        plan: Plan,
        keep: &[Id],
        jit: &mut Jit,
        cap: u64,
    ) -> Result<Program, BuildError> {
        let n = f.nodes.len();
        let mut storage = vec![Storage::None; n];
        let mut consts = Vec::new();
        // Constants are allocated first: their bytes are checked before (sizes
        // are bounded by `check_sizes`, so the u64 sum cannot overflow).
        let const_bytes: u64 = (0..n)
            .filter(|&i| plan.live[i] && matches!(f.nodes[i].op, Op::Fill(_) | Op::Constant(_)))
            .map(|i| numel(&f.nodes[i].shape) as u64 * 4)
            .sum();
        // Convolutions keep their patch buffers for the program's life.
        let const_bytes = const_bytes.saturating_add(crate::memory::conv_scratch(f).map_err(BuildError::TooLarge)?);
        if const_bytes > cap {
            return Err(BuildError::Arena { bytes: const_bytes, cap });
        }
        for (i, node) in f.nodes.iter().enumerate() {
            if !plan.live[i] {
                continue;
            }
            match &node.op {
                Op::Param(p) => storage[i] = Storage::Param(*p),
                Op::Fill(v) => {
                    consts.push(vec![*v as f32; numel(&node.shape)]);
                    storage[i] = Storage::Const(consts.len() - 1);
                }
                Op::Constant(data) => {
                    consts.push(data.clone());
                    storage[i] = Storage::Const(consts.len() - 1);
                }
                _ => {}
            }
        }
        let caps = assign_slots(f, &plan, keep, &mut storage);
        // Views share their root's storage.
        for i in 0..n {
            if plan.live[i] && matches!(f.nodes[i].op, Op::Reshape) {
                storage[i] = storage[root(f, i as Id) as usize];
            }
        }
        let arena = caps.iter().map(|&c| c as u64 * 4).sum::<u64>();
        if arena.saturating_add(const_bytes) > cap {
            return Err(BuildError::Arena { bytes: arena.saturating_add(const_bytes), cap });
        }
        let arena_bytes = usize::try_from(arena).map_err(|_| BuildError::Arena { bytes: arena, cap })?;
        let slots: Vec<Vec<f32>> = caps.iter().map(|&c| vec![0.0; c]).collect();
        let mut steps = Vec::new();
        let (mut kernels, mut library_ops) = (0, 0);
        for step in plan.steps {
            steps.push(match step {
                Step::Kernel(kernel) => {
                    kernels += 1;
                    let code = jit.kernel(&kernel).map_err(|e| BuildError::Codegen(e.to_string()))?;
                    Exec::Kernel { kernel, code }
                }
                Step::Library(id) => {
                    library_ops += 1;
                    Exec::Library { node: id, aux: aux(f, id) }
                }
            });
        }
        Ok(Program {
            f: f.clone(),
            map,
            steps,
            storage,
            slots,
            consts,
            acc: Vec::new(),
            ptrs: Vec::new(),
            arena_bytes,
            kernels,
            library_ops,
        })
    }

    /// The library steps that would run through the one-node reference
    /// fallback (ops no routine of the compiled backend covers yet): their
    /// IR text. Empty for every example (`tests/compiled_coverage.rs`).
    pub fn fallbacks(&self) -> Vec<String> {
        self.steps
            .iter()
            .filter_map(|s| match s {
                Exec::Library { node, .. } if !has_routine(&self.f.nodes[*node as usize].op) => {
                    Some(format!("{}", self.f.nodes[*node as usize].op))
                }
                _ => None,
            })
            .collect()
    }

    /// The value of a node computed by the last [`Program::run`] (kept nodes
    /// only; others may have been overwritten).
    pub fn value<'a>(&'a self, id: Id, params: &'a [&'a ArrayD<f32>]) -> &'a [f32] {
        self.own_value(self.map[id as usize], params)
    }

    /// A value by this program's own (rewritten) node id.
    fn own_value<'a>(&'a self, id: Id, params: &'a [&'a ArrayD<f32>]) -> &'a [f32] {
        let n = numel(&self.f.nodes[id as usize].shape);
        match self.storage[id as usize] {
            Storage::Slot(s) => &self.slots[s][..n],
            Storage::Param(p) => params[p].as_slice().expect("standard layout parameter"),
            Storage::Const(c) => &self.consts[c][..n],
            Storage::None => &[],
        }
    }

    /// The kept values of the last run as tensors (the reference executor's form).
    pub fn tensor(&self, id: Id, params: &[&ArrayD<f32>]) -> Tensor<f32> {
        let shape = IxDyn(&self.f.nodes[self.map[id as usize] as usize].shape);
        Tensor::F(ArrayD::from_shape_vec(shape, self.value(id, params).to_vec()).expect("kept value size"))
    }

    /// Runs every step. `params` in `f.params` order (standard layout).
    pub fn run(
        &mut self,
        inputs: &HashMap<String, Tensor<f32>>,
        params: &[&ArrayD<f32>],
        uniform: &mut dyn FnMut() -> f64,
    ) -> Result<(), ExecError> {
        // Kernels and library routines read parameters in place through raw
        // pointers sized by the plan: a parameter of another shape (a
        // checkpoint of another model) must stop here, before any of them runs.
        exec::check_params(&self.f, params)?;
        if let Some(i) = params.iter().position(|p| !p.is_standard_layout()) {
            return Err(ExecError::ParamShape {
                name: format!("{} (not in standard layout)", self.f.params[i].name),
                expected: self.f.params[i].shape.clone(),
                found: Some(params[i].shape().to_vec()),
            });
        }
        flush_denormals();
        let profile = exec::profile_mode() != exec::Profile::Off;
        // `NNC_PROFILE=shapes` splits kernels by iteration space and size.
        let by_shape = exec::profile_mode() == exec::Profile::Shapes;
        for s in 0..self.steps.len() {
            let t0 = profile.then(std::time::Instant::now);
            match &self.steps[s] {
                Exec::Kernel { code, .. } => {
                    let code = *code;
                    self.run_kernel_step(s, code, params);
                }
                Exec::Library { node, .. } => {
                    let node = *node;
                    self.run_library(s, node, inputs, params, uniform)?;
                }
            }
            if let Some(t0) = t0 {
                let key = match &self.steps[s] {
                    Exec::Kernel { kernel, .. } if by_shape => {
                        format!(
                            "kernel [{}, {}] {} ops {} in {} out",
                            kernel.rows,
                            kernel.cols,
                            kernel.body.len(),
                            kernel.inputs.len(),
                            kernel.outputs.len()
                        )
                    }
                    Exec::Kernel { .. } => "kernel (fused)".to_string(),
                    Exec::Library { node, .. } => {
                        let op = format!("{}", self.f.nodes[*node as usize].op);
                        op.split_whitespace().next().unwrap_or("").to_string()
                    }
                };
                exec::profile_add(&key, t0.elapsed().as_secs_f64());
            }
        }
        Ok(())
    }

    fn run_kernel_step(&mut self, s: usize, code: KernelFn, params: &[&ArrayD<f32>]) {
        let Exec::Kernel { kernel, .. } = &self.steps[s] else { unreachable!() };
        let mut ptrs = std::mem::take(&mut self.ptrs);
        ptrs.clear();
        let (flat, rows, len) = (kernel.is_flat(), kernel.rows, kernel.len());
        for (id, a) in &kernel.inputs {
            ptrs.push(ptr(&self.storage, &mut self.slots, &mut self.consts, *id, params));
            if let Access::Rows { table, .. } = a {
                ptrs.push(table.as_ptr() as *mut f32);
            }
        }
        for ((id, _), table) in kernel.outputs.iter().zip(&kernel.stores) {
            ptrs.push(ptr(&self.storage, &mut self.slots, &mut self.consts, *id, params));
            if let Some(t) = table {
                ptrs.push(t.as_ptr() as *mut f32);
            }
        }
        let total = if flat { len } else { rows };
        // SAFETY: every pointer addresses a buffer of at least the kernel's
        // iteration size for its access (slots were sized by the memory plan
        // from the same shapes; row tables hold `rows` entries whose offsets
        // stay inside their operand, by `fuse::access`). Outputs are
        // distinct slots, or an operand that only this kernel reads at the
        // same index. The buffers outlive the call.
        let shared = SendPtr(ptrs.as_ptr());
        let call = move |b: usize, e: usize| {
            let p = shared;
            // SAFETY: see above; `b..e` is a sub-range of `0..total`.
            unsafe { code(p.0, b as i64, e as i64) }
        };
        // Split by work, not size: a recurrent cell's kernel (exp, divisions,
        // a dozen outputs) pays for the hand-off at a quarter of the elements
        // a plain bias add needs.
        let work = len * kernel.body.len().max(4) / 4;
        if work >= KERNEL_SPLIT_WORK && total >= 2 && crate::pair::parallel() {
            let mid = if flat { (total / 2) & !3 } else { total / 2 };
            // The halves write disjoint ranges; the helper thread set its
            // flush-to-zero mode when it started.
            crate::pair::join(|| call(0, mid), || call(mid, total));
        } else {
            call(0, total);
        }
        self.ptrs = ptrs;
    }

    // long: one match arm per library op, a dispatch table whose longer bodies are the functions below it.
    fn run_library(
        &mut self,
        s: usize,
        node: Id,
        inputs: &HashMap<String, Tensor<f32>>,
        params: &[&ArrayD<f32>],
        uniform: &mut dyn FnMut() -> f64,
    ) -> Result<(), ExecError> {
        let f = &self.f;
        let nd = &f.nodes[node as usize];
        let Storage::Slot(out_slot) = self.storage[node as usize] else {
            return Ok(()); // params and constants
        };
        let mut out = std::mem::take(&mut self.slots[out_slot]);
        let mut acc = std::mem::take(&mut self.acc);
        let Exec::Library { aux, .. } = &mut self.steps[s] else { unreachable!("library step") };
        let mut aux = std::mem::replace(aux, Aux::None);
        let result = {
            let this = &*self;
            let arg = |k: usize| this.own_value(nd.args[k], params);
            let out = &mut out[..numel(&nd.shape)];
            let layer = || nd.layer.map(|l| f.layers[l as usize].clone());
            match (&nd.op, &mut aux) {
                (Op::Input(name), _) => feed(name, nd, inputs, out),
                (Op::MatMul { ta, tb }, _) => {
                    library::matmul(arg(0), f.shape(nd.args[0]), arg(1), f.shape(nd.args[1]), *ta, *tb, &nd.shape, out);
                    Ok(())
                }
                (Op::Reduce { .. } | Op::SumTo, Aux::Reduce { table, inner, count, op }) => {
                    library::reduce(
                        arg(0),
                        *f.shape(nd.args[0]).last().unwrap_or(&1),
                        table,
                        *inner,
                        *count,
                        *op,
                        &mut acc,
                        out,
                    );
                    Ok(())
                }
                (Op::Transpose(_), Aux::Transpose { table, stride }) => {
                    library::gather_rows(arg(0), table, *stride, *nd.shape.last().unwrap_or(&1), out);
                    Ok(())
                }
                (Op::Slice { axis, start, end }, _) => {
                    slice(arg(0), f.shape(nd.args[0]), *axis, *start, *end, out);
                    Ok(())
                }
                (Op::Pad { axis, before, .. }, _) => {
                    pad(arg(0), f.shape(nd.args[0]), &nd.shape, *axis, *before, out);
                    Ok(())
                }
                (Op::Concat(axis), _) => {
                    let inner: usize = nd.shape[axis + 1..].iter().product();
                    let parts: Vec<(&[f32], usize)> =
                        nd.args.iter().map(|&a| (this.own_value(a, params), f.shape(a)[*axis] * inner)).collect();
                    library::concat(&parts, nd.shape[*axis] * inner, out);
                    Ok(())
                }
                (Op::Gather, _) => gather(arg(0), f.shape(nd.args[0]), arg(1), out)
                    .map_err(|(index, size)| ExecError::IndexOutOfRange { layer: layer(), index, size }),
                (Op::ScatterAdd, _) => {
                    scatter_add(arg(0), arg(1), &nd.shape, out);
                    Ok(())
                }
                (Op::OneHot(depth), _) => one_hot(arg(0), *depth, out)
                    .map_err(|(index, size)| ExecError::IndexOutOfRange { layer: layer(), index, size }),
                (Op::Softmax(axis) | Op::LogSoftmax(axis), _) if axis + 1 == nd.shape.len() && nd.shape[*axis] > 0 => {
                    library::softmax_rows(arg(0), nd.shape[*axis], matches!(nd.op, Op::LogSoftmax(_)), out);
                    Ok(())
                }
                (Op::Conv2d { window: w, groups: 1 }, Aux::Conv(scratch)) => {
                    let g = library::ConvShape { x: f.shape(nd.args[0]), out: &nd.shape, window: w };
                    library::conv2d(arg(0), arg(1), g, scratch, out);
                    Ok(())
                }
                (Op::Conv2dInputGrad { window: w, groups: 1 }, Aux::Conv(scratch)) => {
                    let g = library::ConvShape { x: &nd.shape, out: f.shape(nd.args[0]), window: w };
                    library::conv2d_input_grad(arg(0), arg(1), g, scratch, out);
                    Ok(())
                }
                (Op::Conv2dKernelGrad { window: w, groups: 1 }, Aux::Conv(scratch)) => {
                    let g = library::ConvShape { x: f.shape(nd.args[0]), out: f.shape(nd.args[1]), window: w };
                    library::conv2d_kernel_grad(arg(0), arg(1), g, scratch, out);
                    Ok(())
                }
                // Grouped and depthwise convolutions: direct loops, no patch buffers.
                (Op::Conv2d { window, groups }, _) => {
                    let g = grouped::Grouped { x: f.shape(nd.args[0]), out: &nd.shape, window, groups: *groups };
                    grouped::conv2d(arg(0), arg(1), g, out);
                    Ok(())
                }
                (Op::Conv2dInputGrad { window, groups }, _) => {
                    let g = grouped::Grouped { x: &nd.shape, out: f.shape(nd.args[0]), window, groups: *groups };
                    grouped::conv2d_input_grad(arg(0), arg(1), g, out);
                    Ok(())
                }
                (Op::Conv2dKernelGrad { window, groups }, Aux::Grouped(part)) => {
                    let (x, out_shape) = (f.shape(nd.args[0]), f.shape(nd.args[1]));
                    let g = grouped::Grouped { x, out: out_shape, window, groups: *groups };
                    grouped::conv2d_kernel_grad(arg(0), arg(1), g, part, out);
                    Ok(())
                }
                (Op::MaxPool(w), _) => {
                    library::max_pool(arg(0), f.shape(nd.args[0]), w, &nd.shape, None, out);
                    Ok(())
                }
                (Op::MaxPoolGrad(w), _) => {
                    library::max_pool(arg(0), f.shape(nd.args[0]), w, f.shape(nd.args[1]), Some(arg(1)), out);
                    Ok(())
                }
                (Op::Random { normal }, _) => {
                    random(*normal, uniform, out);
                    Ok(())
                }
                _ => {
                    // Window ops and rare forms: the reference routine on views.
                    let views: Vec<ArrayViewD<f32>> = nd
                        .args
                        .iter()
                        .map(|&a| {
                            ArrayViewD::from_shape(IxDyn(f.shape(a)), this.own_value(a, params)).expect("operand size")
                        })
                        .collect();
                    match exec::library_op(nd, &views) {
                        Some(v) => {
                            for (o, x) in out.iter_mut().zip(v.iter()) {
                                *o = *x;
                            }
                            Ok(())
                        }
                        None => single_node(f, node, &views, uniform, out),
                    }
                }
            }
        };
        self.slots[out_slot] = out;
        self.acc = acc;
        if let Exec::Library { aux: slot, .. } = &mut self.steps[s] {
            *slot = aux;
        }
        result
    }
}

/// Whether the compiled backend computes `op` with a routine of its own
/// (`run_library`'s arms or the shared window routines of `exec::library_op`).
fn has_routine(op: &Op) -> bool {
    matches!(
        op,
        Op::Input(_)
            | Op::Param(_)
            | Op::Fill(_)
            | Op::Constant(_)
            | Op::MatMul { .. }
            | Op::Reduce { .. }
            | Op::SumTo
            | Op::Transpose(_)
            | Op::Slice { .. }
            | Op::Pad { .. }
            | Op::Concat(_)
            | Op::Gather
            | Op::ScatterAdd
            | Op::OneHot(_)
            | Op::Softmax(_)
            | Op::LogSoftmax(_)
            | Op::Random { .. }
            | Op::Conv2d { .. }
            | Op::Conv2dInputGrad { .. }
            | Op::Conv2dKernelGrad { .. }
            | Op::MaxPool(_)
            | Op::MaxPoolGrad(_)
            | Op::AvgPool { .. }
            | Op::AvgPoolGrad { .. }
            | Op::Upsample(_)
            | Op::UpsampleGrad(_)
    )
}

/// The data pointer of a node's storage.
fn ptr(
    storage: &[Storage],
    slots: &mut [Vec<f32>],
    consts: &mut [Vec<f32>],
    id: Id,
    params: &[&ArrayD<f32>],
) -> *mut f32 {
    match storage[id as usize] {
        Storage::Slot(s) => slots[s].as_mut_ptr(),
        // Read-only: generated code never stores through input pointers.
        Storage::Param(p) => params[p].as_slice().expect("standard layout parameter").as_ptr() as *mut f32,
        Storage::Const(c) => consts[c].as_mut_ptr(),
        Storage::None => std::ptr::null_mut(),
    }
}

#[derive(Clone, Copy)]
struct SendPtr(*const *mut f32);
// SAFETY: the pointer array is only read, while the caller keeps it alive.
unsafe impl Send for SendPtr {}
// SAFETY: as for `Send`: shared references only read the array.
unsafe impl Sync for SendPtr {}

/// Sets flush-to-zero and denormals-are-zero on this thread: denormal
/// operands (sigmoid of very negative inputs) slow SSE arithmetic ~20×.
pub fn flush_denormals() {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: reading and writing MXCSR only changes how this thread rounds
    // denormals; every x86-64 CPU has SSE.
    unsafe {
        let mut csr: u32 = 0;
        std::arch::asm!("stmxcsr [{}]", in(reg) &mut csr, options(nostack));
        if csr & 0x8040 != 0x8040 {
            csr |= 0x8040;
            std::arch::asm!("ldmxcsr [{}]", in(reg) &csr, options(nostack));
        }
    }
}

fn feed(
    name: &str,
    nd: &nnc_compiler::ir::Node,
    inputs: &HashMap<String, Tensor<f32>>,
    out: &mut [f32],
) -> Result<(), ExecError> {
    let t = inputs.get(name).ok_or_else(|| ExecError::MissingInput(name.to_string()))?;
    let found = match t {
        Tensor::F(a) => a.shape(),
        Tensor::I(a) => a.shape(),
    };
    if found != nd.shape.as_slice() {
        return Err(ExecError::InputShape {
            name: name.to_string(),
            expected: nd.shape.clone(),
            found: found.to_vec(),
        });
    }
    match t {
        Tensor::F(a) if nd.dtype == DType::F32 && a.as_slice().is_some() => {
            out.copy_from_slice(a.as_slice().expect("checked"));
        }
        Tensor::F(a) => {
            let ints = nd.dtype == DType::I64;
            for (o, &v) in out.iter_mut().zip(a.iter()) {
                *o = if ints { v.round() } else { v };
            }
        }
        Tensor::I(a) => {
            for (o, &v) in out.iter_mut().zip(a.iter()) {
                if (v as f64).abs() >= EXACT_INT {
                    return Err(ExecError::IndexOutOfRange {
                        layer: Some(format!("input `{name}` (the compiled backend holds integers below 2^24)")),
                        index: v,
                        size: EXACT_INT as usize,
                    });
                }
                *o = v as f32;
            }
        }
    }
    Ok(())
}

/// The index table of a reduction or transpose.
fn aux(f: &Func, id: Id) -> Aux {
    let nd = &f.nodes[id as usize];
    match &nd.op {
        Op::Reduce { op, axes, .. } => reduce_aux(f.shape(nd.args[0]), axes, *op),
        Op::SumTo => {
            let shape = f.shape(nd.args[0]);
            let out = &nd.shape;
            let off = shape.len() - out.len();
            let axes: Vec<usize> =
                (0..shape.len()).filter(|&i| i < off || (out[i - off] == 1 && shape[i] != 1)).collect();
            reduce_aux(shape, &axes, Reduce::Sum)
        }
        Op::Transpose(perm) => {
            let xs = f.shape(nd.args[0]);
            let mut xstr = vec![1usize; xs.len()];
            for i in (0..xs.len().saturating_sub(1)).rev() {
                xstr[i] = xstr[i + 1] * xs[i + 1];
            }
            let out_strides: Vec<usize> = perm.iter().map(|&p| xstr[p]).collect();
            let (table, _) = row_table(&nd.shape, &out_strides);
            Aux::Transpose { table, stride: *out_strides.last().unwrap_or(&1) }
        }
        Op::Conv2d { groups: 1, .. }
        | Op::Conv2dInputGrad { groups: 1, .. }
        | Op::Conv2dKernelGrad { groups: 1, .. } => Aux::Conv(library::ConvScratch::default()),
        // The second thread's partial kernel gradient.
        Op::Conv2dKernelGrad { .. } => Aux::Grouped(Vec::new()),
        _ => Aux::None,
    }
}

/// For an iteration shape and the strides (in some buffer) of its axes:
/// the offset of each row (all axes but the last) and the last axis's stride.
fn row_table(shape: &[usize], strides: &[usize]) -> (Vec<u32>, usize) {
    (nnc_jit::fuse::row_offsets(shape, strides, 0), strides.last().copied().unwrap_or(0))
}

fn reduce_aux(shape: &[usize], axes: &[usize], op: Reduce) -> Aux {
    let kept: Vec<usize> = (0..shape.len()).filter(|a| !axes.contains(a)).collect();
    let mut ostride = vec![0usize; shape.len()];
    let mut acc = 1;
    for &a in kept.iter().rev() {
        ostride[a] = acc;
        acc *= shape[a];
    }
    let count = axes.iter().map(|&a| shape[a]).product::<usize>().max(1);
    let shape = if shape.is_empty() { vec![1] } else { shape.to_vec() };
    if ostride.is_empty() {
        ostride.push(0);
    }
    let (table, inner) = row_table(&shape, &ostride);
    Aux::Reduce { table, inner: inner != 0, count, op }
}

/// Any other op: the reference executor on a one-node function.
fn single_node(
    f: &Func,
    id: Id,
    views: &[ArrayViewD<f32>],
    uniform: &mut dyn FnMut() -> f64,
    out: &mut [f32],
) -> Result<(), ExecError> {
    let nd = &f.nodes[id as usize];
    let mut g = Func { layers: f.layers.clone(), ..Func::default() };
    let mut feeds = HashMap::new();
    let mut args = Vec::new();
    for (k, (v, &a)) in views.iter().zip(&nd.args).enumerate() {
        let name = format!("arg{k}");
        args.push(g.push(Op::Input(name.clone()), vec![], f.shape(a).to_vec(), f.nodes[a as usize].dtype, None));
        let t = match f.nodes[a as usize].dtype {
            DType::F32 => Tensor::F(v.to_owned()),
            DType::I64 => Tensor::I(v.mapv(|x| x as i64)),
        };
        feeds.insert(name, t);
    }
    let r = g.push(nd.op.clone(), args, nd.shape.clone(), nd.dtype, nd.layer);
    let vals = exec::run_keeping(&g, &feeds, &[], uniform, false, &[r])?;
    for (o, x) in out.iter_mut().zip(vals[r as usize].float().iter()) {
        *o = *x;
    }
    Ok(())
}
