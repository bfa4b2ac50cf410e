//! The training loop: lowers a checked train block for each batch size,
//! differentiates it, and runs epochs of optimizer steps with validation,
//! metrics, early stopping and a non-finite check that names the layer.

pub mod init;
pub mod labels;
pub mod optim;

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use ndarray::{ArrayD, Axis, IxDyn};
use nnc_compiler::check::train::TrainInfo;
use nnc_compiler::graph::TRef;
use nnc_compiler::ir::{self, Func, Id, Op, ParamDecl, autodiff, lower::LowerOptions};
use nnc_compiler::layers::lowering::LowerError;
use nnc_compiler::types::Value;

use crate::exec::{self, ExecError, Tensor};
use crate::memory;
use crate::program::Program;
use crate::rng::Rng;
use nnc_jit::Jit;

/// Streams of the run's seed (see [`Rng::derive`]) for the trainer's random
/// choices; the data layer owns the split and shuffle streams. Separate
/// streams keep, say, the initial weights the same whether or not dropout
/// is added to a model.
const INIT_STREAM: u64 = 0x1A17_0000_0000;
/// Dropout masks and random draws (`normal([N, 100])`), per epoch.
const DRAW_STREAM: u64 = 0xD4A3_0000_0000;
/// Random draws during evaluation. Dropout and noise layers are off there,
/// so only a train block's own draws remain (the noisy inputs of a
/// denoising autoencoder): they are data, drawn the same for every
/// evaluation so that validation losses of different epochs compare.
const EVAL_STREAM: u64 = 0xE7A1_0000_0000;
/// Random draws of the watched tensors of alternating steps (a GAN's latent noise): the same at every pass, so
/// the generated samples of successive epochs compare.
const SAMPLE_STREAM: u64 = 0x5A3D_0000_0000;

/// Named arrays whose first axis indexes samples.
#[derive(Clone, Debug, Default)]
pub struct Dataset {
    /// The arrays by name (model inputs and targets).
    pub arrays: BTreeMap<String, Tensor<f32>>,
}

impl Dataset {
    /// Number of samples (of the first array; all agree).
    pub fn len(&self) -> usize {
        self.arrays.values().next().map_or(0, |t| match t {
            Tensor::F(a) => a.shape()[0],
            Tensor::I(a) => a.shape()[0],
        })
    }
    /// Whether there are no samples.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The rows `idx` of every array.
    pub fn take(&self, idx: &[usize]) -> Dataset {
        let arrays = self
            .arrays
            .iter()
            .map(|(k, t)| {
                let t = match t {
                    Tensor::F(a) => Tensor::F(a.select(Axis(0), idx)),
                    Tensor::I(a) => Tensor::I(a.select(Axis(0), idx)),
                };
                (k.clone(), t)
            })
            .collect();
        Dataset { arrays }
    }
}

/// Training settings, from the train block and the command line.
#[derive(Clone, Debug)]
pub struct Config {
    /// Samples per step.
    pub batch: usize,
    /// Passes over the training data.
    pub epochs: usize,
    /// Seed of initialisation, shuffling and dropout.
    pub seed: u64,
    /// Whether samples are shuffled every epoch.
    pub shuffle: bool,
    /// The optimizer with its learning rate, schedule and clipping.
    pub optimizer: optim::Spec,
    /// Per-class loss weights (`class_weight`), indexed by class.
    pub class_weights: Option<Vec<f64>>,
    /// (patience, monitor name: `val_loss`, `loss`, `val_accuracy`, …)
    pub early_stop: Option<(usize, String)>,
    /// At most this many batches per epoch (`nnc run --steps K`: a quick
    /// end-to-end run of a model whose data would take long).
    pub max_steps: Option<usize>,
}

/// Parameters by name, created on first use from the IR's declarations.
#[derive(Clone, Debug, Default)]
pub struct Params {
    /// Each parameter's current value, by full name.
    pub values: BTreeMap<String, ArrayD<f32>>,
    /// Whether each parameter is updated by training (false for moving statistics).
    pub trainable: BTreeMap<String, bool>,
}

impl Params {
    /// Initialises every parameter of `decls` that is not present yet, each
    /// from its own stream of `seed` (named after the parameter).
    pub fn ensure(&mut self, decls: &[ParamDecl], seed: u64) -> Result<(), TrainError> {
        for p in decls {
            self.trainable.insert(p.name.clone(), p.trainable);
            if let Some(existing) = self.values.get(&p.name) {
                if existing.shape() != p.shape.as_slice() {
                    return Err(TrainError::ParamShape {
                        name: p.name.clone(),
                        expected: p.shape.clone(),
                        found: existing.shape().to_vec(),
                    });
                }
                continue;
            }
            // A size that overflows is an error here, not a capacity-overflow panic.
            memory::checked_len(&p.shape, || format!("parameter `{}`", p.name)).map_err(memory_error)?;
            let mut rng = Rng::derive_named(seed, INIT_STREAM, &p.name);
            let v = init::init(&p.init, &p.shape, &mut rng).map_err(|e| TrainError::Initialiser(e.0))?;
            self.values.insert(p.name.clone(), v);
        }
        Ok(())
    }
    fn list(&self, f: &Func) -> Vec<ArrayD<f32>> {
        f.params.iter().map(|p| self.values[&p.name].clone()).collect()
    }
}

/// Why training stopped with an error.
#[derive(Clone, Debug, PartialEq)]
pub enum TrainError {
    /// A layer could not be lowered to IR.
    Lower(LowerError),
    /// Evaluation failed (a bad index, a shape that does not fit).
    Exec(ExecError),
    /// The loss (or a layer) went NaN/∞ at this step.
    NonFinite {
        /// The epoch it happened in (0-based; the message prints it 1-based).
        epoch: usize,
        /// The step within the epoch (0-based).
        step: usize,
        /// The first layer whose value went non-finite, if known.
        layer: Option<String>,
    },
    /// An unknown initialiser name.
    Initialiser(String),
    /// A parameter (given or loaded) whose shape differs from the declared one.
    ParamShape {
        /// The parameter's name.
        name: String,
        /// The declared shape.
        expected: Vec<usize>,
        /// The shape found.
        found: Vec<usize>,
    },
    /// The train block has no loss to minimise.
    NoLoss,
    /// The data has no samples.
    EmptyData,
    /// A form `nnc run` does not train yet.
    Unsupported(String),
    /// The run would not fit in memory, or a size overflows (see [`memory`]).
    Memory(String),
}

impl std::fmt::Display for TrainError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TrainError::Lower(e) => write!(f, "{e}"),
            TrainError::Exec(e) => write!(f, "{e}"),
            TrainError::NonFinite { epoch, step, layer } => {
                write!(f, "the loss became non-finite at epoch {}, step {}", epoch + 1, step + 1)?;
                match layer {
                    Some(l) => write!(f, ": layer `{l}` is the first to produce NaN or ∞"),
                    None => write!(f, " (no layer output is non-finite: the loss itself overflowed)"),
                }
            }
            TrainError::Initialiser(n) => write!(f, "unknown initialiser `{n}`"),
            TrainError::ParamShape { name, expected, found } => {
                write!(f, "parameter `{name}` has shape {found:?} in the checkpoint, the model needs {expected:?}")
            }
            TrainError::NoLoss => write!(f, "the train block has no loss"),
            TrainError::EmptyData => write!(f, "the training data is empty"),
            TrainError::Unsupported(s) | TrainError::Memory(s) => write!(f, "{s}"),
        }
    }
}

impl From<LowerError> for TrainError {
    fn from(e: LowerError) -> Self {
        TrainError::Lower(e)
    }
}

impl From<ExecError> for TrainError {
    fn from(e: ExecError) -> Self {
        TrainError::Exec(e)
    }
}

/// Recurrent states carried from one batch to the next (`stateful = true`),
/// by the name of the input that takes them (see `Func::states`). Empty at
/// the start of every epoch and of every evaluation: states start at zero.
#[derive(Default)]
struct States(HashMap<String, ArrayD<f32>>);

impl States {
    /// Keeps the final states `f` computed in `vals` for the next batch.
    fn update(&mut self, f: &Func, vals: &[Tensor<f32>]) {
        for (name, id) in &f.states {
            self.0.insert(name.clone(), vals[*id as usize].float());
        }
    }
}

/// A compiled step for one batch size.
struct Compiled {
    f: Func,
    loss: Id,
    metrics: Vec<Id>,
    /// (parameter index in `f.params`, gradient node) for trainable parameters.
    grads: Vec<(usize, Id)>,
    /// The nodes of [`Trainer::watch`]'s tensors, in evaluation programs.
    watched: Vec<Id>,
    backend: Backend,
    /// The compiled program, built on the first run for the values it keeps.
    engine: Option<Engine>,
    /// Bytes its memory plan may take (what the run's memory check left).
    arena_cap: u64,
}

/// Which executor runs the steps.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Backend {
    /// Fused Cranelift kernels and library routines on a memory plan.
    #[default]
    Jit,
    /// The reference executor, op by op (the oracle).
    Reference,
}

impl Backend {
    /// `jit` or `reference` (the `--backend` values).
    pub fn parse(s: &str) -> Option<Backend> {
        match s {
            "jit" => Some(Backend::Jit),
            "reference" => Some(Backend::Reference),
            _ => None,
        }
    }

    /// `NNC_BACKEND=reference|jit`, for tools that run `nnc` without flags
    /// (benchmark harnesses); jit otherwise.
    pub fn from_env() -> Backend {
        std::env::var("NNC_BACKEND").ok().and_then(|v| Backend::parse(&v)).unwrap_or_default()
    }
}

struct Engine {
    // Declared before `jit`: the program's kernels live in the JIT's module.
    program: Program,
    jit: Jit,
    keep: Vec<Id>,
    /// Rewrites, fusion, memory plan and code generation.
    build_seconds: f64,
}

/// Compile statistics of the programs built so far.
#[derive(Clone, Debug, Default)]
pub struct CompileStats {
    /// Seconds spent building (rewrites, fusion, memory plan, code generation).
    pub seconds: f64,
    /// Kernel steps, and how many distinct functions they share.
    pub kernels: usize,
    /// Distinct compiled kernel functions.
    pub distinct_kernels: usize,
    /// Library steps (GEMM, convolutions…).
    pub library_ops: usize,
    /// Bytes of the largest memory arena.
    pub arena_bytes: usize,
    /// Ops that run through the one-node reference fallback (their IR text).
    pub fallbacks: Vec<String>,
}

impl Compiled {
    /// Runs the function for `keep`: the values of `keep` in a vector indexed
    /// by node (other entries empty), as the reference executor returns them.
    fn run(
        &mut self,
        inputs: &HashMap<String, Tensor<f32>>,
        params: &Params,
        uniform: &mut dyn FnMut() -> f64,
        keep: &[Id],
    ) -> Result<Vec<Tensor<f32>>, TrainError> {
        // Every parameter present with its declared shape before any executor
        // sees it (the compiled one reads them in place).
        let mut plist: Vec<&ArrayD<f32>> = Vec::with_capacity(self.f.params.len());
        for p in &self.f.params {
            let v = params.values.get(&p.name).ok_or_else(|| ExecError::ParamShape {
                name: p.name.clone(),
                expected: p.shape.clone(),
                found: None,
            })?;
            plist.push(v);
        }
        exec::check_params(&self.f, &plist)?;
        if self.backend == Backend::Reference {
            let owned: Vec<ArrayD<f32>> = plist.iter().map(|p| (*p).clone()).collect();
            return Ok(exec::run_keeping(&self.f, inputs, &owned, uniform, false, keep)?);
        }
        if self.engine.as_ref().is_none_or(|e| e.keep != keep) {
            let mut jit = Jit::new().map_err(|e| TrainError::Unsupported(e.to_string()))?;
            let t = Instant::now();
            let program = Program::build_within(&self.f, keep, &mut jit, self.arena_cap)
                .map_err(|e| TrainError::Unsupported(e.to_string()))?;
            let build_seconds = t.elapsed().as_secs_f64();
            self.engine = Some(Engine { program, jit, keep: keep.to_vec(), build_seconds });
        }
        let engine = self.engine.as_mut().expect("built above");
        engine.program.run(inputs, &plist, uniform)?;
        let t0 = Instant::now();
        let mut vals: Vec<Tensor<f32>> =
            (0..self.f.nodes.len()).map(|_| Tensor::F(ArrayD::zeros(IxDyn(&[0])))).collect();
        for &k in keep {
            vals[k as usize] = engine.program.tensor(k, &plist);
        }
        profile("outputs", t0);
        Ok(vals)
    }

    fn stats(&self) -> CompileStats {
        match &self.engine {
            Some(e) => CompileStats {
                seconds: e.build_seconds,
                kernels: e.program.kernels,
                distinct_kernels: e.jit.compiled(),
                library_ops: e.program.library_ops,
                arena_bytes: e.program.arena_bytes,
                fallbacks: e.program.fallbacks(),
            },
            None => CompileStats::default(),
        }
    }
}

/// Progress reports for the user interface.
pub enum Event<'a> {
    /// A training step ended.
    Step {
        /// The epoch (0-based).
        epoch: usize,
        /// The step within the epoch (0-based).
        step: usize,
        /// Steps in the epoch.
        steps: usize,
        /// The step's loss.
        loss: f64,
        /// Throughput so far in the epoch.
        samples_per_sec: f64,
        /// Which `step` of an alternating block ran (its index in `TrainInfo::steps`); 0 otherwise.
        part: usize,
    },
    /// What the watched tensors ([`Trainer::watch`]) showed at the end of an epoch: after the validation pass,
    /// or (alternating steps) from the first training rows with fixed random draws. Comes before the epoch's
    /// [`Event::Epoch`].
    Seen(&'a [Seen]),
    /// An epoch ended.
    Epoch(&'a EpochRecord),
}

/// One epoch's results, as printed and kept in the history.
#[derive(Clone, Debug, Default)]
pub struct EpochRecord {
    /// The epoch number.
    pub epoch: usize,
    /// Mean training loss over the epoch.
    pub loss: f64,
    /// Training metrics, in the declared order.
    pub metrics: Vec<(String, f64)>,
    /// Validation loss, when there is validation data.
    pub val_loss: Option<f64>,
    /// Validation metrics, in the declared order.
    pub val_metrics: Vec<(String, f64)>,
    /// Wall-clock seconds of the epoch.
    pub seconds: f64,
}

impl EpochRecord {
    /// The value of a history column (`loss`, `val_loss`, `accuracy`, `val_accuracy`…).
    pub fn value(&self, name: &str) -> Option<f64> {
        match name {
            "loss" => Some(self.loss),
            "val_loss" => self.val_loss,
            n if n.starts_with("val_") => self.val_metrics.iter().find(|(k, _)| k == &n[4..]).map(|(_, v)| *v),
            n => self.metrics.iter().find(|(k, _)| k == n).map(|(_, v)| *v),
        }
    }
}

/// A tensor of the block's graph the evaluation pass computes beside the loss and metrics, so a report gets the
/// validation predictions without a second forward pass ([`Trainer::watch`]).
#[derive(Clone, Debug)]
pub struct Watch {
    /// A name for messages and for the caller.
    pub name: String,
    /// The tensor, `[N, …]`.
    pub tensor: TRef,
    /// What is kept of it.
    pub keep: Keep,
}

/// What an evaluation keeps of a watched tensor: bounded whatever the number of rows.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Keep {
    /// Per row, the index of the largest value of the row (`[N, K]` scores: the predicted class); the first of
    /// equal maxima, NaN never wins.
    Argmax,
    /// Per row, 1 when its (first) value is above this threshold, else 0: a binary classifier's predicted
    /// class from its `[N]` or `[N, 1]` probabilities (0.5) or logits (0).
    Above(f32),
    /// This many rows spread evenly over the data ([`spread`]), whole (reconstructions to draw beside their
    /// inputs; a sample of the data rather than its first rows, which a sorted file makes all alike).
    Rows(usize),
}

/// The rows [`Keep::Rows`]`(k)` keeps of `n`: every row when `k ≥ n`, else rows `⌊j·n/k⌋` for `j < k`.
pub fn spread(k: usize, n: usize) -> Vec<usize> {
    if k >= n { (0..n).collect() } else { (0..k).map(|j| j * n / k).collect() }
}

/// What the last evaluation kept of a [`Watch`].
#[derive(Clone, Debug, PartialEq)]
pub enum Seen {
    /// [`Keep::Argmax`] or [`Keep::Above`]: one class per row of the evaluated data, in row order.
    Argmax(Vec<usize>),
    /// [`Keep::Rows`]: the rows [`spread`] names, in that order, `[min(k, n), …]`.
    Rows(ArrayD<f32>),
}

/// The index of the largest value; the first of equal maxima, NaN never wins (0 for an all-NaN row).
pub fn argmax(row: &[f32]) -> usize {
    let better = |v: f32, b: f32| v > b || (b.is_nan() && !v.is_nan());
    row.iter().enumerate().fold(0, |best, (i, &v)| if better(v, row[best]) { i } else { best })
}

/// Collects what an evaluation keeps of one watch, batch by batch.
enum Gather {
    /// Classes per row; with a threshold, the class is whether the row's value is above it.
    Argmax(Vec<usize>, Option<f32>),
    /// The rows `wanted` (ascending), flat, with the shape of one row once a batch has shown it.
    Rows { wanted: Vec<usize>, data: Vec<f32>, row: Option<Vec<usize>> },
}

impl Gather {
    fn new(keep: Keep, n: usize) -> Gather {
        match keep {
            Keep::Argmax => Gather::Argmax(vec![0; n], None),
            Keep::Above(t) => Gather::Argmax(vec![0; n], Some(t)),
            Keep::Rows(k) => Gather::Rows { wanted: spread(k, n), data: Vec::new(), row: None },
        }
    }

    /// The batch of rows `idx` of the watched tensor's values `t` (`[idx.len(), …]`).
    fn add(&mut self, idx: &[usize], t: &Tensor<f32>) {
        let t = t.float();
        let per = if idx.is_empty() { 0 } else { t.len() / idx.len() };
        let t = t.as_standard_layout();
        let Some(flat) = t.as_slice() else { return };
        match self {
            Gather::Argmax(out, threshold) => {
                for (&r, row) in idx.iter().zip(flat.chunks_exact(per.max(1))) {
                    if let Some(o) = out.get_mut(r) {
                        *o = match threshold {
                            Some(t) => usize::from(row[0] > *t),
                            None => argmax(row),
                        };
                    }
                }
            }
            Gather::Rows { wanted, data, row } => {
                if row.is_none() {
                    *row = Some(t.shape()[1..].to_vec());
                    *data = vec![0.0; wanted.len() * per];
                }
                for (&r, values) in idx.iter().zip(flat.chunks_exact(per.max(1))) {
                    if let Ok(slot) = wanted.binary_search(&r)
                        && let Some(place) = data.get_mut(slot * per..(slot + 1) * per)
                    {
                        place.copy_from_slice(values);
                    }
                }
            }
        }
    }

    fn finish(self) -> Seen {
        match self {
            Gather::Argmax(v, _) => Seen::Argmax(v),
            Gather::Rows { wanted, data, row } => {
                let shape: Vec<usize> = std::iter::once(wanted.len()).chain(row.unwrap_or_default()).collect();
                // No batch seen (no rows): an empty array.
                Seen::Rows(ArrayD::from_shape_vec(IxDyn(&shape), data).unwrap_or_else(|_| ArrayD::zeros(IxDyn(&[0]))))
            }
        }
    }
}

/// A checked train block made runnable.
pub struct Trainer<'a> {
    /// The checked train block it runs.
    pub info: &'a TrainInfo,
    subst: HashMap<u32, TRef>,
    roots: Vec<(String, TRef)>,
    train_cache: HashMap<usize, Compiled>,
    eval_cache: HashMap<usize, Compiled>,
    class_weights: Option<Vec<f64>>,
    dims: Vec<(String, i64)>,
    /// Kept across `fit` calls so moments survive epoch-by-epoch training.
    opt: Option<optim::Optimizer>,
    /// `stateful = true`: recurrent layers carry their final states into
    /// the next batch, and batches follow [`stream_batches`].
    stateful: bool,
    /// The executor of compiled steps (jit unless `NNC_BACKEND` or the
    /// caller says otherwise).
    pub backend: Backend,
    /// Bytes a compiled program's memory plan may take ([`Trainer::check_memory`]).
    arena_cap: u64,
    /// Tensors evaluation computes and keeps ([`Trainer::watch`]).
    watches: Vec<Watch>,
    /// What the last evaluation kept of them, in the order of `watches`.
    seen: Vec<Seen>,
    /// [`Trainer::sample`]'s program, for its number of rows.
    sample_cache: Option<(usize, Compiled)>,
    /// Why watching stopped during alternating steps, if it did.
    watch_error: Option<String>,
}

impl<'a> Trainer<'a> {
    /// `dims`: values of symbolic dims other than N (e.g. a text vocabulary `V`).
    pub fn new(
        info: &'a TrainInfo,
        class_weights: Option<Vec<f64>>,
        dims: Vec<(String, i64)>,
    ) -> Result<Trainer<'a>, TrainError> {
        let loss = match (info.loss, info.steps.first()) {
            (Some(l), _) => l,
            // Alternating steps: the first step's loss stands for the block in `ir`.
            (None, Some(s)) => s.loss.ok_or(TrainError::NoLoss)?,
            (None, None) => return Err(TrainError::NoLoss),
        };
        let subst = info
            .feeds
            .iter()
            .filter_map(|(name, r)| info.model_inputs.iter().find(|(m, _)| m == name).map(|(_, inp)| (inp.node, *r)))
            .collect();
        let mut roots = vec![("loss".to_string(), loss)];
        roots.extend(info.metrics.iter().cloned());
        let stateful = stateful(info)?;
        Ok(Trainer {
            info,
            subst,
            roots,
            train_cache: HashMap::new(),
            eval_cache: HashMap::new(),
            class_weights,
            dims,
            opt: None,
            stateful,
            backend: Backend::from_env(),
            arena_cap: u64::MAX,
            watches: Vec::new(),
            seen: Vec::new(),
            sample_cache: None,
            watch_error: None,
        })
    }

    /// From now on every evaluation (the validation pass after each epoch) also computes `watches` and keeps
    /// what each asks for; [`Trainer::take_seen`] hands it over. Evaluation programs are rebuilt.
    pub fn watch(&mut self, watches: Vec<Watch>) {
        self.watches = watches;
        self.eval_cache.clear();
        self.sample_cache = None;
        self.seen.clear();
    }

    /// What the last evaluation kept of the watched tensors, in the order given to [`Trainer::watch`] (empty
    /// before the first evaluation, and after this call).
    pub fn take_seen(&mut self) -> Vec<Seen> {
        std::mem::take(&mut self.seen)
    }

    /// Why the watched tensors stopped being sampled during [`Trainer::fit_steps`], if they did.
    pub fn watch_error(&self) -> Option<&str> {
        self.watch_error.as_deref()
    }

    /// The watched tensors over the first rows of `data` (as many as the largest [`Keep::Rows`], at least
    /// one), in evaluation mode, with random draws from a stream fixed by `seed`: the same noise at every call,
    /// so what a generator makes of it can be compared from epoch to epoch. The program is compiled once.
    pub fn sample(&mut self, params: &Params, data: &Dataset, seed: u64) -> Result<Vec<Seen>, TrainError> {
        let want = self.watches.iter().map(|w| if let Keep::Rows(k) = w.keep { k } else { 1 }).max().unwrap_or(0);
        let n = want.min(data.len()).max(1);
        if self.sample_cache.as_ref().is_none_or(|(rows, _)| *rows != n) {
            let roots: Vec<(String, TRef)> =
                self.watches.iter().map(|w| (format!("watch {}", w.name), w.tensor)).collect();
            let mut c = self.compile_roots(&roots, n, false, Vec::new(), &|_| true)?;
            c.watched = std::iter::once(c.loss).chain(c.metrics.drain(..)).collect();
            self.sample_cache = Some((n, c));
        }
        let (_, c) = self.sample_cache.as_mut().expect("compiled above");
        c.arena_cap = self.arena_cap;
        let rows: Vec<usize> = (0..n.min(data.len())).collect();
        let part = data.take(&rows);
        let inputs = Self::feed(&c.f, &part, &States::default())?;
        let mut rng = Rng::derive(seed, SAMPLE_STREAM);
        let mut uniform = || rng.uniform_f64();
        let keep = c.watched.clone();
        let vals = c.run(&inputs, params, &mut uniform, &keep)?;
        let mut gathers: Vec<Gather> = self.watches.iter().map(|w| Gather::new(w.keep, n)).collect();
        let idx: Vec<usize> = (0..n).collect();
        for (g, &id) in gathers.iter_mut().zip(&keep) {
            g.add(&idx, &vals[id as usize]);
        }
        Ok(gathers.into_iter().map(Gather::finish).collect())
    }

    /// The names of the reported metrics (per step for multi-model blocks), in order.
    pub fn metric_names(&self) -> Vec<String> {
        if !self.info.steps.is_empty() {
            return self.info.steps.iter().map(|s| format!("{}_loss", s.name)).collect();
        }
        self.info.metrics.iter().map(|(n, _)| n.clone()).collect()
    }

    fn compile(&self, n: usize, training: bool) -> Result<Compiled, TrainError> {
        if training || self.watches.is_empty() {
            return self.compile_roots(&self.roots, n, training, Vec::new(), &|_| true);
        }
        // Evaluation also computes the watched tensors: one forward pass gives the means and the predictions.
        let mut roots = self.roots.clone();
        roots.extend(self.watches.iter().map(|w| (format!("watch {}", w.name), w.tensor)));
        let mut c = self.compile_roots(&roots, n, training, Vec::new(), &|_| true)?;
        c.watched = c.metrics.split_off(self.roots.len() - 1);
        Ok(c)
    }

    /// Lowers `roots` (the loss first, then metrics) for batch size `n` and,
    /// when training, appends the gradients of the trainable parameters
    /// `learns` accepts. Layers under `inference` prefixes run in inference mode.
    fn compile_roots(
        &self,
        roots: &[(String, TRef)],
        n: usize,
        training: bool,
        inference: Vec<String>,
        learns: &dyn Fn(&str) -> bool,
    ) -> Result<Compiled, TrainError> {
        let mut dims = vec![("N".to_string(), n as i64)];
        dims.extend(self.dims.iter().cloned());
        let opts = LowerOptions {
            dims,
            training,
            class_weights: self.class_weights.clone(),
            inference_prefixes: inference,
            stateful: self.stateful,
        };
        let mut f = ir::lower::lower(&self.info.graph, roots, &self.subst, &opts)?;
        let loss = f.outputs[0].1;
        let metrics = f.outputs[1..].iter().map(|(_, id)| *id).collect();
        let watched = Vec::new();
        let mut grads = Vec::new();
        if training {
            let wrt: Vec<(usize, Id)> = f
                .nodes
                .iter()
                .enumerate()
                .filter_map(|(i, node)| match node.op {
                    Op::Param(p) if f.params[p].trainable && learns(&f.params[p].name) => Some((p, i as Id)),
                    _ => None,
                })
                .collect();
            let ids: Vec<Id> = wrt.iter().map(|(_, id)| *id).collect();
            let g = autodiff::grad(&mut f, loss, &ids);
            grads = wrt.iter().map(|(p, _)| *p).zip(g).collect();
        }
        Ok(Compiled {
            f,
            loss,
            metrics,
            grads,
            watched,
            backend: self.backend,
            engine: None,
            arena_cap: self.arena_cap,
        })
    }

    /// The IR of one training step (for `nnc ir`).
    pub fn ir(&self, n: usize, training: bool) -> Result<Func, TrainError> {
        let c = self.compile(n, training)?;
        let mut f = c.f;
        for (p, g) in c.grads {
            let name = format!("grad {}", f.params[p].name);
            f.outputs.push((name, g));
        }
        Ok(f)
    }

    /// Every parameter the block declares: those of its loss, metrics and
    /// (for alternating steps) every step's loss, lowered for `batch` rows.
    pub fn declared_params(&self, batch: usize) -> Result<Vec<ParamDecl>, TrainError> {
        let mut roots = self.roots.clone();
        roots.extend(self.info.steps.iter().filter_map(|s| Some((s.name.clone(), s.loss?))));
        Ok(self.compile_roots(&roots, batch, false, Vec::new(), &|_| true)?.f.params)
    }

    /// Creates any missing parameters (seeded).
    pub fn init_params(&self, params: &mut Params, batch: usize, seed: u64) -> Result<(), TrainError> {
        params.ensure(&self.declared_params(batch)?, seed)
    }

    fn compiled(&mut self, n: usize, training: bool) -> Result<&mut Compiled, TrainError> {
        let cache = if training { &self.train_cache } else { &self.eval_cache };
        if !cache.contains_key(&n) {
            let c = self.compile(n, training)?;
            let cache = if training { &mut self.train_cache } else { &mut self.eval_cache };
            cache.insert(n, c);
        }
        let cap = self.arena_cap;
        let cache = if training { &mut self.train_cache } else { &mut self.eval_cache };
        let c = cache.get_mut(&n).expect("inserted above");
        c.arena_cap = cap;
        Ok(c)
    }

    /// Integer inputs (labels, token ids) and the bounds the ops reading them
    /// put on their values, from the forward program for `batch` rows.
    pub fn index_uses(&mut self, batch: usize) -> Result<Vec<labels::IndexUse>, TrainError> {
        Ok(labels::index_uses(&self.compiled(batch, false)?.f))
    }

    /// Batch norm's moving statistics in the training step: (layer, momentum), one per layer.
    pub fn moving_momenta(&mut self, batch: usize) -> Result<Vec<(String, f64)>, TrainError> {
        let f = &self.compiled(batch, true)?.f;
        let mut out: Vec<(String, f64)> = Vec::new();
        for (p, _, m) in &f.moving_updates {
            let name = &f.params[*p].name;
            let layer = name.rsplit_once('.').map_or(name.as_str(), |(l, _)| l).to_string();
            if !out.iter().any(|(l, _)| *l == layer) {
                out.push((layer, *m));
            }
        }
        Ok(out)
    }

    /// Estimates what training with batches of `batch` rows holds at its
    /// peak (parameters, `spec`'s optimizer slots, gradients, the step's
    /// activations; see [`memory::peak_activations`]) and compares it with
    /// `limit` before any parameter is allocated. What the limit leaves caps
    /// the compiled programs' memory plans.
    pub fn check_memory(
        &mut self,
        batch: usize,
        spec: &optim::Spec,
        limit: memory::Limit,
    ) -> Result<memory::Estimate, TrainError> {
        let (decls, activations) = if self.info.steps.is_empty() {
            let c = self.compiled(batch, true)?;
            let mut keep: Vec<Id> = vec![c.loss];
            keep.extend(&c.metrics);
            keep.extend(c.grads.iter().map(|(_, g)| *g));
            keep.extend(c.f.moving_updates.iter().map(|(_, id, _)| *id));
            keep.extend(c.f.states.iter().map(|(_, id)| *id));
            (c.f.params.clone(), memory::peak_activations(&c.f, &keep).map_err(memory_error)?)
        } else {
            // Alternating steps: each step's program on its own; the
            // forward pass of every loss bounds them from below, and the
            // parameters (all models) dominate GANs' memory.
            let mut roots = self.roots.clone();
            roots.extend(self.info.steps.iter().filter_map(|s| Some((s.name.clone(), s.loss?))));
            let c = self.compile_roots(&roots, batch, true, Vec::new(), &|_| true)?;
            let keep: Vec<Id> = c.f.outputs.iter().map(|(_, id)| *id).chain(c.grads.iter().map(|(_, g)| *g)).collect();
            (c.f.params.clone(), memory::peak_activations(&c.f, &keep).map_err(memory_error)?)
        };
        let params =
            memory::param_bytes(decls.iter().map(|p| (p.name.as_str(), p.shape.as_slice()))).map_err(memory_error)?;
        let trainable =
            memory::param_bytes(decls.iter().filter(|p| p.trainable).map(|p| (p.name.as_str(), p.shape.as_slice())))
                .map_err(memory_error)?;
        let reference_copies = if self.backend == Backend::Reference { params } else { 0 };
        let estimate = memory::Estimate {
            params,
            optimizer: trainable.saturating_mul(spec.slots() as u64),
            gradients: trainable,
            activations: activations.saturating_add(reference_copies),
            batch,
        };
        self.arena_cap = memory::check(&estimate, limit).map_err(|e| TrainError::Memory(e.to_string()))?;
        Ok(estimate)
    }

    /// What compiling the training programs built so far cost and holds.
    pub fn compile_stats(&self) -> CompileStats {
        let mut total = CompileStats::default();
        for c in self.train_cache.values().chain(self.eval_cache.values()) {
            let s = c.stats();
            total.seconds += s.seconds;
            total.kernels += s.kernels;
            total.distinct_kernels += s.distinct_kernels;
            total.library_ops += s.library_ops;
            total.arena_bytes = total.arena_bytes.max(s.arena_bytes);
            total.fallbacks.extend(s.fallbacks);
        }
        total
    }

    /// The inputs of `f`: data arrays from `batch`, recurrent states from
    /// `states` (zeros when there is none yet, or when the batch size changed).
    fn feed(f: &Func, batch: &Dataset, states: &States) -> Result<HashMap<String, Tensor<f32>>, TrainError> {
        let mut m = HashMap::new();
        for node in &f.nodes {
            if let Op::Input(name) = &node.op {
                let t = match batch.arrays.get(name) {
                    Some(t) => t.clone(),
                    None if f.states.iter().any(|(s, _)| s == name) => match states.0.get(name) {
                        Some(v) if v.shape() == node.shape.as_slice() => Tensor::F(v.clone()),
                        _ => Tensor::F(ArrayD::zeros(node.shape.clone())),
                    },
                    None => return Err(TrainError::Exec(ExecError::MissingInput(name.clone()))),
                };
                m.insert(name.clone(), t);
            }
        }
        Ok(m)
    }

    /// The batches of one pass over `n` rows: a stateful block's streams,
    /// else [`crate::data::batches`] (shuffled with the epoch's stream when
    /// `shuffle`).
    fn batches(&self, n: usize, batch: usize, shuffle: bool, seed: u64, epoch: usize) -> Vec<Vec<usize>> {
        if self.stateful {
            return stream_batches(n, batch);
        }
        let all: Vec<usize> = (0..n).collect();
        crate::data::batches(&all, batch, shuffle, seed, epoch)
    }

    /// The optimizer `fit` continues with (created from `spec` on first
    /// use): its moments carry over from one `fit` call to the next, and a
    /// resumed run restores them from its checkpoint.
    pub fn optimizer(&mut self, spec: &optim::Spec) -> &mut optim::Optimizer {
        self.opt.get_or_insert_with(|| optim::Optimizer::new(spec.clone()))
    }

    /// Mean loss and metrics over a data set, in evaluation mode.
    pub fn evaluate(&mut self, params: &Params, data: &Dataset, batch: usize) -> Result<(f64, Vec<f64>), TrainError> {
        let n = data.len();
        if n == 0 {
            return Err(TrainError::EmptyData);
        }
        let mut totals = vec![0.0; 1 + self.info.metrics.len()];
        // (numerator, denominator) sums of ratio metrics (precision, recall).
        let mut parts = vec![(0.0, 0.0); self.info.metrics.len()];
        let mut rng = Rng::derive(0, EVAL_STREAM);
        let mut uniform = || rng.uniform_f64();
        let mut states = States::default();
        let batches = self.batches(n, batch, false, 0, 0);
        let used: usize = batches.iter().map(Vec::len).sum();
        let mut gathers: Vec<Gather> = self.watches.iter().map(|w| Gather::new(w.keep, n)).collect();
        self.seen.clear();
        for idx in &batches {
            let part = data.take(idx);
            let c = self.compiled(idx.len(), false)?;
            let inputs = Self::feed(&c.f, &part, &states)?;
            let mut keep = vec![c.loss];
            keep.extend(&c.metrics);
            keep.extend(c.f.ratios.iter().flat_map(|&(_, num, den)| [num, den]));
            keep.extend(c.f.states.iter().map(|(_, id)| *id));
            keep.extend(&c.watched);
            let vals = c.run(&inputs, params, &mut uniform, &keep)?;
            states.update(&c.f, &vals);
            for (g, &id) in gathers.iter_mut().zip(&c.watched) {
                g.add(idx, &vals[id as usize]);
            }
            let w = idx.len() as f64 / used as f64;
            totals[0] += scalar(&vals[c.loss as usize]) * w;
            for (k, &m) in c.metrics.iter().enumerate() {
                match c.f.ratios.iter().find(|r| r.0 == m) {
                    Some(&(_, num, den)) => {
                        parts[k].0 += scalar(&vals[num as usize]);
                        parts[k].1 += scalar(&vals[den as usize]);
                    }
                    None => totals[k + 1] += scalar(&vals[m as usize]) * w,
                }
            }
        }
        for (k, (num, den)) in parts.iter().enumerate() {
            if *den > 0.0 || *num > 0.0 {
                totals[k + 1] = num / den.max(1e-7);
            }
        }
        self.seen = gathers.into_iter().map(Gather::finish).collect();
        Ok((totals[0], totals[1..].to_vec()))
    }

    /// Runs `cfg.epochs` epochs numbered from `first_epoch` (schedules and
    /// shuffling depend on the global epoch). `params` must be initialised.
    /// Returns one record per epoch.
    pub fn fit(
        &mut self,
        params: &mut Params,
        train: &Dataset,
        validation: Option<&Dataset>,
        cfg: &Config,
        first_epoch: usize,
        on_event: &mut dyn FnMut(Event),
    ) -> Result<Vec<EpochRecord>, TrainError> {
        if train.is_empty() {
            return Err(TrainError::EmptyData);
        }
        let mut opt = self.opt.take().unwrap_or_else(|| optim::Optimizer::new(cfg.optimizer.clone()));
        let result = self.epochs(params, train, validation, cfg, first_epoch, &mut opt, on_event);
        self.opt = Some(opt);
        result
    }

    fn epochs(
        &mut self,
        params: &mut Params,
        train: &Dataset,
        validation: Option<&Dataset>,
        cfg: &Config,
        first_epoch: usize,
        opt: &mut optim::Optimizer,
        on_event: &mut dyn FnMut(Event),
    ) -> Result<Vec<EpochRecord>, TrainError> {
        let n = train.len();
        let names: Vec<String> = self.metric_names();
        let mut history = Vec::new();
        for epoch in first_epoch..first_epoch + cfg.epochs {
            let started = Instant::now();
            // Per-epoch streams: epoch k shuffles and drops out the same way
            // whether or not epochs before it ran in this process.
            let mut batches = self.batches(n, cfg.batch, cfg.shuffle, cfg.seed, epoch);
            batches.truncate(cfg.max_steps.unwrap_or(usize::MAX));
            let steps_per_epoch = batches.len();
            let mut rng = Rng::derive(cfg.seed, DRAW_STREAM + epoch as u64);
            let mut states = States::default();
            let mut sums = vec![0.0; 1 + names.len()];
            for (step, chunk) in batches.iter().enumerate() {
                let t0 = Instant::now();
                let part = train.take(chunk);
                let c = self.compiled(chunk.len(), true)?;
                let mut uniform = || rng.uniform_f64();
                let out =
                    apply_step(c, params, &part, opt, epoch, &mut uniform, &mut states, false).map_err(
                        |e| match e {
                            TrainError::NonFinite { layer, .. } => TrainError::NonFinite { epoch, step, layer },
                            other => other,
                        },
                    )?;
                let loss = out.loss;
                sums[0] += loss;
                for (k, m) in out.metrics.iter().enumerate() {
                    sums[k + 1] += m;
                }
                let secs = t0.elapsed().as_secs_f64().max(1e-9);
                on_event(Event::Step {
                    epoch,
                    step,
                    steps: steps_per_epoch,
                    loss,
                    samples_per_sec: chunk.len() as f64 / secs,
                    part: 0,
                });
            }
            let steps = steps_per_epoch as f64;
            let mut rec = EpochRecord {
                epoch,
                loss: sums[0] / steps,
                metrics: names.iter().cloned().zip(sums[1..].iter().map(|s| s / steps)).collect(),
                ..EpochRecord::default()
            };
            if let Some(v) = validation.filter(|v| !v.is_empty()) {
                let (vl, vm) = self.evaluate(params, v, cfg.batch)?;
                rec.val_loss = Some(vl);
                rec.val_metrics = names.iter().cloned().zip(vm).collect();
                if !self.seen.is_empty() {
                    on_event(Event::Seen(&self.seen));
                }
            }
            rec.seconds = started.elapsed().as_secs_f64();
            on_event(Event::Epoch(&rec));
            opt.end_epoch(rec.val_loss.unwrap_or(rec.loss));
            history.push(rec);
            let stop =
                cfg.early_stop.as_ref().is_some_and(|(patience, monitor)| should_stop(&history, *patience, monitor));
            if stop {
                break;
            }
        }
        Ok(history)
    }

    /// Alternating steps (`step d: minimize … over D with …`, GANs): each
    /// iteration runs every step `times` times on a fresh batch; a step
    /// updates only the parameters of the models it is `over`, the other
    /// models run in inference mode. One record per pass over the data (or
    /// at the end).
    pub fn fit_steps(
        &mut self,
        params: &mut Params,
        train: &Dataset,
        cfg: &Config,
        iterations: usize,
        on_event: &mut dyn FnMut(Event),
    ) -> Result<Vec<EpochRecord>, TrainError> {
        let n = train.len();
        if n == 0 {
            return Err(TrainError::EmptyData);
        }
        let models: Vec<String> = self.info.steps.iter().flat_map(|s| s.over.iter().cloned()).collect();
        let mut compiled: Vec<HashMap<usize, Compiled>> = self.info.steps.iter().map(|_| HashMap::new()).collect();
        let mut opts: Vec<optim::Optimizer> = Vec::new();
        for s in &self.info.steps {
            let spec = optim::Spec::from_value(Some(&s.optimizer)).map_err(TrainError::Unsupported)?;
            opts.push(optim::Optimizer::new(spec));
        }
        let mut rng = Rng::derive(cfg.seed, DRAW_STREAM);
        let batch = cfg.batch.max(1).min(n);
        let per_pass = n.div_ceil(batch).max(1).min(cfg.max_steps.unwrap_or(usize::MAX));
        let all: Vec<usize> = (0..n).collect();
        // Full batches of the current pass over the data, next one last; a
        // pass's partial batch is skipped (every step sees `batch` rows).
        let mut queue: Vec<Vec<usize>> = Vec::new();
        let mut pass = 0;
        let mut history = Vec::new();
        let mut sums = vec![0.0; self.info.steps.len()];
        let mut counts = vec![0usize; self.info.steps.len()];
        let mut started = Instant::now();
        for it in 0..iterations {
            for (k, step) in self.info.steps.iter().enumerate() {
                for _ in 0..step.times.max(1) {
                    let rows = match queue.pop() {
                        Some(rows) => rows,
                        None => {
                            queue = crate::data::batches(&all, batch, cfg.shuffle, cfg.seed, pass);
                            queue.retain(|b| b.len() == batch);
                            queue.reverse();
                            pass += 1;
                            queue.pop().expect("batch ≤ n gives a full batch")
                        }
                    };
                    let part = train.take(&rows);
                    if let std::collections::hash_map::Entry::Vacant(e) = compiled[k].entry(batch) {
                        let loss = step.loss.ok_or(TrainError::NoLoss)?;
                        let others: Vec<String> =
                            models.iter().filter(|m| !step.over.contains(m)).map(|m| format!("{m}.")).collect();
                        let over: Vec<String> = step.over.iter().map(|m| format!("{m}.")).collect();
                        let learns = |name: &str| over.iter().any(|o| name.starts_with(o.as_str()));
                        let c = self.compile_roots(&[("loss".into(), loss)], batch, true, others, &learns)?;
                        e.insert(c);
                    }
                    let c = compiled[k].get_mut(&batch).expect("inserted above");
                    params.ensure(&c.f.params, cfg.seed)?;
                    let mut uniform = || rng.uniform_f64();
                    let out = apply_step(
                        c,
                        params,
                        &part,
                        &mut opts[k],
                        it / per_pass,
                        &mut uniform,
                        &mut States::default(),
                        false,
                    )
                    .map_err(|e| match e {
                        TrainError::NonFinite { layer, .. } => {
                            TrainError::NonFinite { epoch: it / per_pass, step: it, layer }
                        }
                        other => other,
                    })?;
                    let loss = out.loss;
                    sums[k] += loss;
                    counts[k] += 1;
                    on_event(Event::Step {
                        epoch: it / per_pass,
                        step: it % per_pass,
                        steps: per_pass,
                        loss,
                        samples_per_sec: 0.0,
                        part: k,
                    });
                }
            }
            if (it + 1) % per_pass == 0 || it + 1 == iterations {
                let names: Vec<String> = self.info.steps.iter().map(|s| format!("{}_loss", s.name)).collect();
                let metrics: Vec<(String, f64)> =
                    names.into_iter().zip(sums.iter().zip(&counts).map(|(s, &c)| s / c.max(1) as f64)).collect();
                let rec = EpochRecord {
                    epoch: it / per_pass,
                    loss: metrics.first().map_or(0.0, |m| m.1),
                    metrics,
                    seconds: started.elapsed().as_secs_f64(),
                    ..EpochRecord::default()
                };
                if !self.watches.is_empty() {
                    // Samples are a view of the run: when they cannot be drawn (memory), training goes on
                    // without them and the caller learns why from `watch_error`.
                    match self.sample(params, train, cfg.seed) {
                        Ok(seen) => {
                            self.seen = seen;
                            on_event(Event::Seen(&self.seen));
                        }
                        Err(e) => {
                            self.watch_error = Some(e.to_string());
                            self.watch(Vec::new());
                        }
                    }
                }
                on_event(Event::Epoch(&rec));
                history.push(rec);
                sums.iter_mut().for_each(|s| *s = 0.0);
                counts.iter_mut().for_each(|c| *c = 0);
                started = Instant::now();
            }
        }
        Ok(history)
    }

    /// One training step on `batch` with `opt` (for oracle comparisons):
    /// returns the loss and the gradients; `params` are updated.
    pub fn step(
        &mut self,
        params: &mut Params,
        batch: &Dataset,
        opt: &mut optim::Optimizer,
    ) -> Result<StepOutput, TrainError> {
        let c = self.compiled(batch.len(), true)?;
        let mut never = || 0.5;
        apply_step(c, params, batch, opt, 0, &mut never, &mut States::default(), true)
    }

    /// Runs the model forward in evaluation mode for `outputs`.
    pub fn predict(
        info: &TrainInfo,
        params: &Params,
        inputs: &Dataset,
        outputs: &[(String, TRef)],
        dims: &[(String, i64)],
        backend: Backend,
    ) -> Result<Vec<ArrayD<f32>>, TrainError> {
        Self::predict_within(info, params, inputs, outputs, dims, backend, memory::Limit::Off)
    }

    /// The parameters (name, shape) a forward pass of `outputs` reads, for
    /// `n` rows: what a checkpoint for `nnc predict` must hold.
    pub fn forward_params(
        info: &TrainInfo,
        outputs: &[(String, TRef)],
        n: usize,
        dims: &[(String, i64)],
    ) -> Result<Vec<ParamDecl>, TrainError> {
        Ok(Self::lower_forward(info, outputs, n, dims, &HashMap::new())?.params)
    }

    /// The forward pass of `outputs` for `n` rows, lowered in evaluation mode
    /// with `N = n` and the dims the data bound.
    fn lower_forward(
        info: &TrainInfo,
        outputs: &[(String, TRef)],
        n: usize,
        dims: &[(String, i64)],
        subst: &HashMap<u32, TRef>,
    ) -> Result<Func, TrainError> {
        let mut all_dims = vec![("N".to_string(), n as i64)];
        all_dims.extend(dims.iter().cloned());
        let opts = LowerOptions { dims: all_dims, ..LowerOptions::default() };
        Ok(ir::lower::lower(&info.graph, outputs, subst, &opts)?)
    }

    /// [`Trainer::predict_within`] of tensors of this block's graph, its model inputs fed as in training (by
    /// the data arrays or the block's `let`s, `let pixels = pixels / 16`), with the dims the data bound: the
    /// scores a validation report compares with the labels.
    pub fn predict_block(
        &self,
        params: &Params,
        inputs: &Dataset,
        outputs: &[(String, TRef)],
        backend: Backend,
        limit: memory::Limit,
    ) -> Result<Vec<ArrayD<f32>>, TrainError> {
        Self::predict_with(self.info, &self.subst, params, inputs, outputs, &self.dims, backend, limit)
    }

    /// [`Trainer::predict`], after comparing an estimate of its memory
    /// (parameters and the forward pass over all rows) with `limit`.
    pub fn predict_within(
        info: &TrainInfo,
        params: &Params,
        inputs: &Dataset,
        outputs: &[(String, TRef)],
        dims: &[(String, i64)],
        backend: Backend,
        limit: memory::Limit,
    ) -> Result<Vec<ArrayD<f32>>, TrainError> {
        Self::predict_with(info, &HashMap::new(), params, inputs, outputs, dims, backend, limit)
    }

    fn predict_with(
        info: &TrainInfo,
        subst: &HashMap<u32, TRef>,
        params: &Params,
        inputs: &Dataset,
        outputs: &[(String, TRef)],
        dims: &[(String, i64)],
        backend: Backend,
        limit: memory::Limit,
    ) -> Result<Vec<ArrayD<f32>>, TrainError> {
        let n = inputs.len();
        let f = Self::lower_forward(info, outputs, n, dims, subst)?;
        let keep: Vec<Id> = f.outputs.iter().map(|(_, id)| *id).collect();
        let estimate = memory::Estimate {
            params: memory::param_bytes(f.params.iter().map(|p| (p.name.as_str(), p.shape.as_slice())))
                .map_err(memory_error)?,
            activations: memory::peak_activations(&f, &keep).map_err(memory_error)?,
            batch: n,
            ..memory::Estimate::default()
        };
        let arena_cap = memory::check(&estimate, limit).map_err(|e| TrainError::Memory(e.to_string()))?;
        let feeds = Self::feed(&f, inputs, &States::default())?;
        let mut never = || 0.5;
        let mut c =
            Compiled { f, loss: 0, metrics: vec![], grads: vec![], watched: vec![], backend, engine: None, arena_cap };
        let vals = c.run(&feeds, params, &mut never, &keep)?;
        Ok(keep.iter().map(|id| vals[*id as usize].float()).collect())
    }
}

fn memory_error(t: memory::TooLarge) -> TrainError {
    TrainError::Memory(t.to_string())
}

/// The block's `stateful = true | false` (default false).
pub fn stateful(info: &TrainInfo) -> Result<bool, TrainError> {
    let on = match info.field("stateful") {
        None | Some(Value::Bool(false)) => false,
        Some(Value::Bool(true)) => true,
        Some(other) => return Err(TrainError::Unsupported(format!("`stateful` must be true or false, found {other}"))),
    };
    if on && !info.steps.is_empty() {
        return Err(TrainError::Unsupported("`stateful = true` is not supported with alternating steps".into()));
    }
    Ok(on)
}

/// The monitored value of each epoch, negated for monitors that improve
/// upwards (accuracy, precision, recall), so smaller is always better.
fn monitored(history: &[EpochRecord], monitor: &str) -> Vec<f64> {
    let up = monitor.contains("acc") || monitor.contains("precision") || monitor.contains("recall");
    history.iter().map(|r| r.value(monitor).unwrap_or(r.loss)).map(|v| if up { -v } else { v }).collect()
}

/// Whether the last epoch is the best so far (`keep_best`).
pub fn is_best(history: &[EpochRecord], monitor: &str) -> bool {
    match monitored(history, monitor).split_last() {
        Some((last, rest)) => rest.iter().all(|v| last < v),
        None => false,
    }
}

/// Early stopping: more than `patience` epochs since the best one.
pub fn should_stop(history: &[EpochRecord], patience: usize, monitor: &str) -> bool {
    let vals = monitored(history, monitor);
    match vals.iter().enumerate().min_by(|a, b| a.1.total_cmp(b.1)) {
        Some((best_at, _)) => vals.len() - 1 - best_at > patience,
        None => false,
    }
}

/// What one optimizer step saw.
pub struct StepOutput {
    /// The step's loss.
    pub loss: f64,
    /// The step's metric values, in the order of `metric_names`.
    pub metrics: Vec<f64>,
    /// Gradients by parameter name (before decay and clipping), for
    /// [`Trainer::step`] only: training loops leave it empty.
    pub grads: Vec<(String, ArrayD<f32>)>,
}

/// Runs one compiled training step on `batch`: forward, backward, the
/// optimizer update, batch norm's moving statistics and the recurrent
/// states carried to the next batch. A non-finite loss re-runs with
/// checking to name the first non-finite layer.
fn apply_step(
    c: &mut Compiled,
    params: &mut Params,
    batch: &Dataset,
    opt: &mut optim::Optimizer,
    epoch: usize,
    uniform: &mut dyn FnMut() -> f64,
    states: &mut States,
    keep_grads: bool,
) -> Result<StepOutput, TrainError> {
    let t0 = Instant::now();
    let inputs = Trainer::feed(&c.f, batch, states)?;
    profile("feed", t0);
    let mut keep: Vec<Id> = vec![c.loss];
    keep.extend(&c.metrics);
    keep.extend(c.grads.iter().map(|(_, g)| *g));
    keep.extend(c.f.moving_updates.iter().map(|(_, id, _)| *id));
    keep.extend(c.f.states.iter().map(|(_, id)| *id));
    let vals = c.run(&inputs, params, uniform, &keep)?;
    // Inputs carry no gradient, so the states pass on without one.
    states.update(&c.f, &vals);
    let loss = scalar(&vals[c.loss as usize]);
    if !loss.is_finite() {
        let mut again = || 0.5;
        let plist = params.list(&c.f);
        let layer = match exec::run(&c.f, &inputs, &plist, &mut again, true) {
            Err(ExecError::NonFinite { layer, .. }) => layer,
            _ => None,
        };
        return Err(TrainError::NonFinite { epoch, step: 0, layer });
    }
    let metrics = c.metrics.iter().map(|&m| scalar(&vals[m as usize])).collect();
    let pnames: Vec<String> = c.grads.iter().map(|&(p, _)| c.f.params[p].name.clone()).collect();
    let mut vals = vals;
    let mut take = |id: Id| match std::mem::replace(&mut vals[id as usize], Tensor::F(ArrayD::zeros(IxDyn(&[0])))) {
        Tensor::F(a) => a,
        t => t.float(),
    };
    let mut grads: Vec<ArrayD<f32>> = c.grads.iter().map(|&(_, g)| take(g)).collect();
    // Copies for callers that look at the gradients (oracle comparisons).
    let raw: Vec<(String, ArrayD<f32>)> =
        if keep_grads { pnames.iter().cloned().zip(grads.iter().cloned()).collect() } else { Vec::new() };
    // Weight decay applies to kernels and embeddings only (docs/src/decisions.md).
    let decay: Vec<bool> = pnames.iter().map(|t| t.ends_with("kernel") || t.ends_with("embeddings")).collect();
    let moving: Vec<(String, ArrayD<f32>, f64)> =
        c.f.moving_updates.iter().map(|(p, id, m)| (c.f.params[*p].name.clone(), take(*id), *m)).collect();
    drop(vals);
    let mut taken: Vec<ArrayD<f32>> =
        pnames.iter().map(|n| params.values.remove(n).expect("initialised parameter")).collect();
    {
        let mut refs: Vec<&mut ArrayD<f32>> = taken.iter_mut().collect();
        let t0 = Instant::now();
        opt.step(&pnames, &mut refs, &mut grads, &decay, epoch);
        profile("optimizer", t0);
    }
    for (name, v) in pnames.iter().zip(taken) {
        params.values.insert(name.clone(), v);
    }
    for (name, stat, m) in moving {
        if let Some(mv) = params.values.get_mut(&name) {
            let m = m as f32;
            ndarray::Zip::from(mv).and(&stat).for_each(|v, &b| *v = m * *v + (1.0 - m) * b);
        }
    }
    Ok(StepOutput { loss, metrics, grads: raw })
}

/// Stateful batches: with `S = n / b` steps, row `i` of batch `s` is row
/// `i·S + s`, so batch `s + 1` continues each row of batch `s` when
/// consecutive rows continue each other (the windows of `text(…)`). Every
/// batch has `b = min(batch, n)` rows; the last `n − S·b` rows are left out.
fn stream_batches(n: usize, batch: usize) -> Vec<Vec<usize>> {
    let b = batch.clamp(1, n.max(1));
    let steps = n / b;
    (0..steps).map(|s| (0..b).map(|i| i * steps + s).collect()).collect()
}

/// Adds the time since `t0` to the `NNC_PROFILE` report under `key`.
fn profile(key: &str, t0: Instant) {
    if exec::profile_mode() != exec::Profile::Off {
        exec::profile_add(key, t0.elapsed().as_secs_f64());
    }
}

fn scalar(t: &Tensor<f32>) -> f64 {
    match t {
        Tensor::F(a) => a.iter().next().map_or(f64::NAN, |v| *v as f64),
        Tensor::I(a) => a.iter().next().map_or(f64::NAN, |v| *v as f64),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_batches_continue_each_row() {
        // 10 rows, batch 3: 3 steps, row 9 left out.
        assert_eq!(stream_batches(10, 3), vec![vec![0, 3, 6], vec![1, 4, 7], vec![2, 5, 8]]);
        assert_eq!(stream_batches(4, 8), vec![vec![0, 1, 2, 3]]);
        assert_eq!(stream_batches(6, 1), (0..6).map(|i| vec![i]).collect::<Vec<_>>());
        assert!(stream_batches(0, 4).is_empty());
    }

    fn batch(rows: usize, per: usize, values: &[f32]) -> Tensor<f32> {
        Tensor::F(ArrayD::from_shape_vec(IxDyn(&[rows, per]), values.to_vec()).unwrap())
    }

    #[test]
    fn watched_rows_land_where_their_indices_say() {
        // Batches in stream order (rows 0, 2 then 1, 3), as a stateful evaluation runs them.
        let mut g = Gather::new(Keep::Argmax, 4);
        g.add(&[0, 2], &batch(2, 3, &[0.1, 0.9, 0.0, f32::NAN, 0.2, 0.3]));
        g.add(&[1, 3], &batch(2, 3, &[5.0, 5.0, 1.0, 0.0, 0.0, 7.0]));
        assert_eq!(g.finish(), Seen::Argmax(vec![1, 0, 2, 2]), "first of equal maxima; NaN never wins");
        let mut g = Gather::new(Keep::Above(0.5), 3);
        g.add(&[0, 1, 2], &batch(3, 1, &[0.7, 0.5, 0.2]));
        assert_eq!(g.finish(), Seen::Argmax(vec![1, 0, 0]));
        // 2 of 4 rows, spread: rows 0 and 2, whole; the others are not kept.
        assert_eq!(spread(2, 4), [0, 2]);
        assert_eq!(spread(3, 10), [0, 3, 6]);
        assert_eq!(spread(8, 3), [0, 1, 2]);
        let mut g = Gather::new(Keep::Rows(2), 4);
        g.add(&[3, 2], &batch(2, 2, &[30.0, 31.0, 20.0, 21.0]));
        g.add(&[0, 1], &batch(2, 2, &[0.0, 1.0, 10.0, 11.0]));
        let Seen::Rows(r) = g.finish() else { panic!() };
        assert_eq!(r.shape(), [2, 2]);
        assert_eq!(r.iter().copied().collect::<Vec<_>>(), [0.0, 1.0, 20.0, 21.0]);
        // No rows at all: an empty array, not a panic.
        let Seen::Rows(r) = Gather::new(Keep::Rows(8), 0).finish() else { panic!() };
        assert_eq!(r.len(), 0);
    }
}
