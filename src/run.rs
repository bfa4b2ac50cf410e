//! `nnc run`, `nnc predict` and `nnc ir`: the edge between the checked
//! program, the data on disk and the training runtime.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use nnc_compiler::check::train::TrainInfo;
use nnc_compiler::graph::{NodeKind, TRef};
use nnc_compiler::sandbox::{self, Access, Root};
use nnc_compiler::types::{CallValue, Value};
use nnc_compiler::{Analysis, CheckOptions};
use nnc_runtime::data::{self, VocabRows, from_call::InputShape as InputSpec};
use nnc_runtime::exec::Tensor;
use nnc_runtime::train::optim::Spec;
use nnc_runtime::train::{Backend, Config, Dataset, EpochRecord, Event, Params, Trainer};

mod dirs;
mod plot;
mod report;
mod tensorboard;

/// A failure reported to the user as one message (exit code 1 unless usage).
pub struct Failure {
    pub message: String,
    pub usage: bool,
}

impl Failure {
    pub(crate) fn new(message: impl Into<String>) -> Failure {
        Failure { message: message.into(), usage: false }
    }
    pub(crate) fn usage(message: impl Into<String>) -> Failure {
        Failure { message: message.into(), usage: true }
    }
}

pub struct RunArgs {
    pub train: Option<String>,
    pub epochs: Option<usize>,
    /// At most this many batches per epoch.
    pub steps: Option<usize>,
    pub seed: Option<u64>,
    pub init: Option<PathBuf>,
    pub save: Option<PathBuf>,
    /// Continue from this checkpoint (and save back to it unless `save`).
    pub resume: Option<PathBuf>,
    pub out: Option<PathBuf>,
    /// (directory, steps): dump single steps instead of training.
    pub dump: Option<(PathBuf, usize)>,
    pub backend: Backend,
    /// The project root: the data and `init = load(…)` files the `.nn` file
    /// names must lie under it.
    pub root: Root,
    /// What the memory estimate is compared with (`--max-memory`, `--no-memory-check`).
    pub memory: nnc_runtime::memory::Limit,
}

pub(crate) fn pick_train<'a>(a: &'a Analysis, name: Option<&str>) -> Result<&'a TrainInfo, Failure> {
    let trains = &a.result.trains;
    match name {
        Some(n) => trains.iter().find(|t| t.name == n).ok_or_else(|| {
            let names: Vec<&str> = trains.iter().map(|t| t.name.as_str()).collect();
            Failure::usage(format!("no train block `{n}` (train blocks: {})", names.join(", ")))
        }),
        None => trains.first().ok_or_else(|| Failure::usage("the file has no train block")),
    }
}

fn int_field(info: &TrainInfo, name: &str) -> Option<i64> {
    match info.field(name) {
        Some(Value::Int(d)) => d.as_known(),
        _ => None,
    }
}

fn num(c: &CallValue, name: &str, default: f64) -> f64 {
    c.arg(name).and_then(Value::as_f64).unwrap_or(default)
}

/// Per-sample shapes of the data arrays the train block's graph reads.
fn input_specs(info: &TrainInfo) -> Result<Vec<InputSpec>, Failure> {
    let mut specs = Vec::new();
    for node in &info.graph.nodes {
        if let NodeKind::Data { name } = &node.kind {
            let t = &node.outputs[0];
            let mut shape = Vec::new();
            for d in t.dims.iter().skip(1) {
                match d.as_known() {
                    Some(v) if v >= 0 => shape.push(v as usize),
                    // A dim the data decides (a vocabulary): not constrained here.
                    _ => shape.push(0),
                }
            }
            specs.push(InputSpec { name: name.clone(), shape, int: t.elem == nnc_syntax::ast::ElemType::Int });
        }
    }
    // Specs with data-decided dims are only used for naming, not reshaping.
    specs.retain(|s| !s.shape.contains(&0));
    Ok(specs)
}

/// Data arrays the train block's graph reads whose declared shape uses
/// dims the data binds (`int[N, T]` fed by sentences): bound and shaped
/// after loading ([`data::bind`]).
fn declared_inputs(info: &TrainInfo) -> Vec<data::bind::Declared> {
    let mut out = Vec::new();
    for node in &info.graph.nodes {
        if let NodeKind::Data { name } = &node.kind {
            let t = &node.outputs[0];
            let per: Vec<_> = t.dims.iter().skip(1).cloned().collect();
            if per.iter().any(|d| d.as_known().is_none()) {
                out.push(data::bind::Declared {
                    name: name.clone(),
                    dims: per,
                    int: t.elem == nnc_syntax::ast::ElemType::Int,
                });
            }
        }
    }
    out
}

/// A loaded data source in the training runtime's types.
struct Loaded {
    data: Dataset,
    normalize: Vec<String>,
    /// Where each array comes from ("data/x.csv: column 4"), for messages.
    origins: BTreeMap<String, String>,
    /// What `predict` needs to repeat the source's transforms.
    transforms: data::transform::Transforms,
}

fn to_tensor(a: data::Array) -> Tensor<f32> {
    match a {
        data::Array::F32(a) => Tensor::F(a),
        data::Array::I64(a) => Tensor::I(a),
    }
}

fn to_array(t: &Tensor<f32>) -> data::Array {
    match t {
        Tensor::F(a) => data::Array::F32(a.clone()),
        Tensor::I(a) => data::Array::I64(a.clone()),
    }
}

/// How the block's data is split into training and validation rows: by
/// `validate = split(f)`, seeded random rows, or with `stateful = true` the
/// last rows, so that the training rows stay one stream for the states.
/// The loader (vocabularies) and [`prepare`] both split by this value.
fn split_rows(info: &TrainInfo, seed: u64) -> Result<VocabRows, Failure> {
    let stateful = nnc_runtime::train::stateful(info).map_err(|e| Failure::new(e.to_string()))?;
    Ok(match info.field("validate") {
        Some(Value::Call(c)) if c.name == "split" => {
            let validate = c.positional(0).and_then(Value::as_f64).unwrap_or(0.1);
            if stateful { VocabRows::Leading { validate } } else { VocabRows::Train { validate, seed } }
        }
        _ => VocabRows::All,
    })
}

/// Loads a data call; `rows`: see [`data::from_call::load_call`]. The dims
/// the data decides (the checker's `data_dims`: a vocabulary size, the
/// length of `int[N, T]` sentences) are bound in `bindings`, consistently
/// across the block's sources.
fn load_call(
    call: &CallValue,
    file: &Path,
    root: &Root,
    specs: &[InputSpec],
    info: &TrainInfo,
    bindings: &mut data::bind::Bindings,
    seed: u64,
    rows: &VocabRows,
) -> Result<Loaded, Failure> {
    let fail = |e: data::DataError| Failure::new(e.to_string());
    let declared = declared_inputs(info);
    // Sources that pad or cut to the input's length (`sentences`, `text`) are
    // shaped like an earlier source of the block: padded to the `T` it bound.
    // Others are checked against it by binding it again (below), which names both files.
    let mut shaped = specs.to_vec();
    if nnc_compiler::schema::lookup_source(&call.name).is_some_and(|s| s.fits_length()) {
        for d in &declared {
            if let Some(shape) = data::bind::concrete(&d.dims, bindings) {
                shaped.push(InputSpec { name: d.name.clone(), shape, int: d.int });
            }
        }
    }
    let access = Access::root(root);
    let mut c = data::from_call::load_call(call, &base_dir(file), &access, &shaped, seed, rows).map_err(fail)?;
    let bindable = |d: &str| info.data_dims.iter().any(|b| b.dim == d);
    let source = match call.positional(0) {
        Some(Value::Str(s)) => format!("{}(\"{s}\")", call.name),
        _ => format!("{}(…)", call.name),
    };
    for (dim, v) in &c.dims {
        if bindable(dim) {
            bindings.bind(dim, *v, &format!("{source}'s vocabulary")).map_err(fail)?;
        }
    }
    let origins = c.loaded.origins.clone();
    let origin = |n: &str| origins.get(n).cloned().unwrap_or_else(|| source.clone());
    data::bind::bind_inputs(&mut c.loaded.dataset, &declared, bindings, &origin, &bindable).map_err(fail)?;
    // What predict must repeat, for the arrays that feed the model.
    let fed: Vec<String> =
        specs.iter().map(|s| s.name.clone()).chain(declared.iter().map(|d| d.name.clone())).collect();
    let lens = c
        .loaded
        .dataset
        .arrays
        .iter()
        .filter(|(_, a)| a.shape().len() == 2)
        .map(|(k, a)| (k.clone(), a.shape()[1]))
        .collect();
    let transforms = match &c.spec {
        Some(spec) => data::transform::Transforms::of_source(spec, c.loaded.vocabulary.as_ref(), &fed, &lens),
        None => Default::default(),
    };
    let arrays = c.loaded.dataset.arrays.into_iter().map(|(k, v)| (k, to_tensor(v))).collect();
    Ok(Loaded { data: Dataset { arrays }, normalize: c.normalize, origins, transforms })
}

fn base_dir(path: &Path) -> PathBuf {
    path.parent().map(Path::to_path_buf).unwrap_or_default()
}

/// The training rows, the validation rows and the normalisation metadata.
type Prepared = (Dataset, Option<Dataset>, BTreeMap<String, String>);

/// Splits off validation rows ([`split_rows`]), and applies z-scoring with
/// training statistics. Returns (train, validation, normalisation metadata).
fn prepare(info: &TrainInfo, loaded: Loaded, val_loaded: Option<Loaded>, seed: u64) -> Result<Prepared, Failure> {
    let all = loaded.data;
    let n = all.len();
    let (train_rows, val_rows) = split_rows(info, seed)?.split(n);
    let mut meta = BTreeMap::new();
    let mut train = all.take(&train_rows);
    let mut val = if !val_rows.is_empty() { Some(all.take(&val_rows)) } else { val_loaded.map(|l| l.data) };
    for name in &loaded.normalize {
        let Some(t) = all.arrays.get(name) else { continue };
        let z = data::ZScore::fit(name, &to_array(t), &train_rows).map_err(|e| Failure::new(e.to_string()))?;
        let apply = |ds: &mut Dataset| -> Result<(), Failure> {
            if let Some(t) = ds.arrays.get(name) {
                let a = z.apply(name, &to_array(t)).map_err(|e| Failure::new(e.to_string()))?;
                ds.arrays.insert(name.clone(), to_tensor(a));
            }
            Ok(())
        };
        apply(&mut train)?;
        if let Some(v) = val.as_mut() {
            apply(v)?;
        }
        meta.insert(format!("zscore.{name}"), z.to_json());
    }
    Ok((train, val, meta))
}

/// Class indices above this are not classes (a table of weights that long
/// would be the mistake, not the model).
const MAX_CLASSES: f64 = 16_777_216.0;

fn class_weights(info: &TrainInfo, train: &Dataset) -> Result<Option<Vec<f64>>, Failure> {
    let Some(field) = info.field("class_weight") else { return Ok(None) };
    match field {
        Value::Map(entries) => {
            let mut pairs: Vec<(usize, f64)> = Vec::new();
            for (k, v) in entries {
                let (Some(k), Some(v)) = (k.as_f64(), v.as_f64()) else { continue };
                if !(k >= 0.0 && k.fract() == 0.0 && k < MAX_CLASSES) {
                    return Err(Failure::new(format!("`class_weight`: {k} is not a class index (0, 1, 2, …)")));
                }
                pairs.push((k as usize, v));
            }
            let Some(len) = pairs.iter().map(|(k, _)| k + 1).max() else { return Ok(None) };
            let mut w = vec![1.0; len];
            for (k, v) in pairs {
                w[k] = v;
            }
            Ok(Some(w))
        }
        Value::Mode(m) if m == "balanced" => {
            // n / (k · countₖ) over the integer label array.
            let labels = train.arrays.values().find_map(|t| {
                if let Tensor::I(a) = t { if a.ndim() == 1 { Some(a.clone()) } else { None } } else { None }
            });
            let Some(labels) = labels else { return Ok(None) };
            let Some(max) = labels.iter().copied().max() else { return Ok(None) };
            if labels.iter().any(|&l| l < 0) || max as f64 >= MAX_CLASSES {
                return Err(Failure::new(
                    "`class_weight = balanced` needs labels 0, 1, 2, … (the labels hold a negative or huge value)",
                ));
            }
            let k = max as usize + 1;
            let mut counts = vec![0usize; k];
            for &l in labels.iter() {
                counts[l as usize] += 1;
            }
            let n = labels.len() as f64;
            Ok(Some(counts.iter().map(|&c| if c == 0 { 1.0 } else { n / (k as f64 * c as f64) }).collect()))
        }
        _ => Ok(None),
    }
}

/// Checks integer data (labels, token ids) against what reads it, in every
/// loaded source, before any split or training: a value outside the loss's
/// classes or an embedding's table is named with its file, column and row.
fn check_labels(
    info: &TrainInfo,
    dims: &[(String, i64)],
    sources: &[Option<&Loaded>],
    batch: Option<i64>,
) -> Result<(), Failure> {
    let Ok(mut probe) = Trainer::new(info, None, dims.to_vec()) else { return Ok(()) };
    // One row is enough to see which ops read which inputs; a lowering
    // failure is reported by the run itself.
    let n = batch.unwrap_or(1).clamp(1, 1 << 20) as usize;
    let Ok(uses) = probe.index_uses(n) else { return Ok(()) };
    if uses.is_empty() {
        return Ok(());
    }
    for l in sources.iter().flatten() {
        nnc_runtime::train::labels::check_indices(&l.data.arrays, &uses, &l.origins)
            .map_err(|e| Failure::new(e.to_string()))?;
    }
    Ok(())
}

/// Warns (once, at the start) when the run has too few steps for batch
/// norm's moving statistics to forget their initial values (mean 0,
/// variance 1): after `s` steps a fraction `momentum^s` of them remains, and
/// validation, test and `nnc predict` use those statistics. Above 5 % the
/// warning says which momentum would settle: `0.05^(1/s)`.
fn warn_unsettled_statistics(momenta: &[(String, f64)], steps: usize) {
    const SETTLED: f64 = 0.05;
    if steps == 0 {
        return;
    }
    let mut by_momentum: Vec<(f64, Vec<&str>)> = Vec::new();
    for (layer, m) in momenta {
        if m.powf(steps as f64) <= SETTLED {
            continue;
        }
        match by_momentum.iter_mut().find(|(k, _)| k == m) {
            Some((_, layers)) => layers.push(layer),
            None => by_momentum.push((*m, vec![layer])),
        }
    }
    for (m, layers) in by_momentum {
        let names: Vec<String> = layers.iter().take(4).map(|l| format!("`{l}`")).collect();
        let more = if layers.len() > 4 { format!(" and {} more", layers.len() - 4) } else { String::new() };
        // Rounded down to 3 decimals, so that the suggested value does settle.
        let settle = (SETTLED.powf(1.0 / steps as f64) * 1000.0).floor() / 1000.0;
        eprintln!(
            "warning: batch_norm {}{more} has momentum {m}, and the run has {}: {m}^{steps} = {:.3} of the moving \
             mean and variance (used by validation, test and predict) will still be their initial values. \
             momentum = {settle} or lower settles them (momentum^steps ≤ {SETTLED}); or train longer.",
            names.join(", "),
            plural(steps, "step"),
            m.powf(steps as f64),
        );
    }
}

fn early_stop(info: &TrainInfo) -> Option<(usize, String)> {
    match info.field("early_stop")? {
        Value::Call(c) => {
            let monitor = match c.arg("monitor") {
                Some(Value::Mode(m) | Value::Str(m)) => m.clone(),
                _ => "val_loss".into(),
            };
            let patience = nnc_compiler::schema::default_f64("early_stop", "patience").unwrap_or(0.0);
            Some((num(c, "patience", patience) as usize, monitor))
        }
        _ => None,
    }
}

/// The checkpoint a run starts from: `--init W` (names as they are), else
/// the block's `init = load("file", prefix = "p")`. Checkpoints are what
/// runs produce, so like `checkpoint = "…"` that writes it the file is
/// relative to the output directory `out`; it must lie under it or under the
/// project root. Returns the path, its name as written, and the prefix.
fn init_source(info: &TrainInfo, args: &RunArgs, out: &Path) -> Result<Option<(PathBuf, String, String)>, Failure> {
    if let Some(w) = &args.init {
        return Ok(Some((w.clone(), w.display().to_string(), String::new())));
    }
    let usage = |found: &dyn std::fmt::Display| {
        Failure::new(format!("`init` must be load(\"file.safetensors\", prefix = \"…\"), found {found}"))
    };
    match info.field("init") {
        None => Ok(None),
        Some(Value::Call(c)) if c.name == "load" => {
            let written = match c.positional(0) {
                Some(Value::Str(s)) => s.clone(),
                Some(other) => return Err(usage(&format!("the file name {other}"))),
                None => return Err(usage(&"no file name")),
            };
            let prefix = match c.arg("prefix") {
                None => String::new(),
                Some(Value::Str(p)) => p.clone(),
                Some(other) => return Err(usage(&format!("the prefix {other}"))),
            };
            let path = out.join(&written);
            let mut roots = vec![args.root.clone()];
            roots.extend(Root::output(out).ok());
            Access::Within(roots).check(&path).map_err(|e| Failure::new(e.to_string()))?;
            Ok(Some((path, written, prefix)))
        }
        Some(other) => Err(usage(other)),
    }
}

/// Loads the tensors of `path` that match the block's parameters (see
/// [`nnc_runtime::checkpoint::plan_init`]) into `params` and says what it did.
fn load_init(
    trainer: &Trainer,
    params: &mut Params,
    batch: usize,
    path: &Path,
    name: &str,
    prefix: &str,
) -> Result<(), Failure> {
    let decls = trainer.declared_params(batch).map_err(|e| Failure::new(e.to_string()))?;
    let shapes: Vec<(String, Vec<usize>)> = decls.into_iter().map(|p| (p.name, p.shape)).collect();
    let (values, plan) =
        nnc_runtime::checkpoint::load_init(path, &shapes, prefix).map_err(|e| Failure::new(e.to_string()))?;
    params.values.extend(values);
    let mut line = format!("init: loaded {} from {name}", plural(plan.pairs.len(), "tensor"));
    if let Some((t, p)) = plan.pairs.first().filter(|(t, p)| t != p) {
        line.push_str(&format!(" (prefix \"{prefix}\": `{t}` → `{p}`, …)"));
    }
    if !plan.fresh.is_empty() {
        line.push_str(&format!("; {} initialised as declared", plural(plan.fresh.len(), "parameter")));
    }
    if !plan.unused.is_empty() {
        line.push_str(&format!("; {} of the file unused", plural(plan.unused.len(), "tensor")));
    }
    println!("{line}");
    Ok(())
}

/// `--resume W`: the weights and optimizer state of a checkpoint `nnc run`
/// saved for this train block. Returns the number of epochs already done.
/// Every parameter must be in the file with its shape: resuming another
/// model's run is an error, not a partial initialisation (that is `--init`).
fn resume(
    trainer: &mut Trainer,
    params: &mut Params,
    cfg: &Config,
    info: &TrainInfo,
    batch: usize,
    path: &Path,
) -> Result<usize, Failure> {
    let fail = |why: String| Failure::new(format!("cannot resume from {}: {why}", path.display()));
    if !info.steps.is_empty() {
        return Err(fail("`--resume` continues epochs; this train block alternates steps (use --init)".into()));
    }
    let decls = trainer.declared_params(batch).map_err(|e| Failure::new(e.to_string()))?;
    let expected: Vec<(String, Vec<usize>)> = decls.iter().map(|p| (p.name.clone(), p.shape.clone())).collect();
    let trainable: Vec<String> = decls.iter().filter(|p| p.trainable).map(|p| p.name.clone()).collect();
    // Weights and optimizer slots checked in one pass, every mismatch named
    // (a slot of another shape used to reach ndarray's assertion).
    let saved_by = |meta: &BTreeMap<String, String>| match meta.get("train") {
        Some(t) if *t == info.name => Ok(()),
        Some(t) => Err(format!("it was saved by train block `{t}`, not `{}`", info.name)),
        None => Err("it has no `train` metadata (it was not saved by `nnc run`)".into()),
    };
    let (weights, slots, meta) =
        nnc_runtime::checkpoint::load_for_resume(path, &info.name, &expected, &trainable, saved_by)
            .map_err(|e| fail(e.to_string()))?;
    let epoch =
        meta.get("epoch").and_then(|e| e.parse::<usize>().ok()).ok_or_else(|| fail("it has no epoch count".into()))?;
    params.values.extend(weights);
    trainer.optimizer(&cfg.optimizer).restore(slots, &meta).map_err(fail)?;
    println!("resume: {} after epoch {epoch}", path.display());
    Ok(epoch)
}

fn load_source(
    v: &Value,
    file: &Path,
    root: &Root,
    specs: &[InputSpec],
    info: &TrainInfo,
    bindings: &mut data::bind::Bindings,
    seed: u64,
) -> Result<Loaded, Failure> {
    match v {
        // A separate validation or test source: nothing of it is held out.
        Value::Call(c) => load_call(c, file, root, specs, info, bindings, seed, &VocabRows::All),
        other => Err(Failure::new(format!("not a data source: {other}"))),
    }
}

/// A train block's data, loaded and prepared as training sees it, with its configuration: what
/// `nnc run` trains on and what `nnc export --data` writes.
pub(crate) struct BlockData {
    /// The train block, checked again with the data's shapes when the data typed new arrays.
    pub info: TrainInfo,
    /// The training rows (after the split and z-scoring).
    pub train: Dataset,
    /// The validation rows: a split of the data or a separate source.
    pub val: Option<Dataset>,
    /// The `test =` source's rows.
    pub test: Option<Dataset>,
    /// Batch, epochs, seed, optimizer, class weights, early stopping.
    pub cfg: Config,
    /// Metadata saved with checkpoints (z-score statistics, transforms).
    pub meta: BTreeMap<String, String>,
    /// The dims the data bound (a vocabulary size).
    pub dims: Vec<(String, i64)>,
}

/// Loads and prepares the data of the train block `args.train` (see [`BlockData`]). `options` are the
/// check options the analysis `a` used; when the data yields arrays the model does not type (targets
/// that are no model input, GAN images), the file is checked again knowing their shapes.
pub(crate) fn load(file: &Path, a: &Analysis, options: &CheckOptions, args: &RunArgs) -> Result<BlockData, Failure> {
    let first = pick_train(a, args.train.as_deref())?;
    let seed = args.seed.or_else(|| int_field(first, "seed").map(|s| s as u64)).unwrap_or(0);
    let specs = input_specs(first)?;
    let data_call = first.data.clone().ok_or_else(|| Failure::new("the train block has no data source"))?;
    let mut bindings = data::bind::Bindings::default();
    let loaded =
        load_call(&data_call, file, &args.root, &specs, first, &mut bindings, seed, &split_rows(first, seed)?)?;
    let typed: Vec<String> =
        specs.iter().map(|s| s.name.clone()).chain(declared_inputs(first).into_iter().map(|d| d.name)).collect();
    let untyped = untyped_arrays(&loaded.data, &typed);
    let rechecked;
    let info = if untyped.is_empty() {
        first
    } else {
        let mut opts = options.clone();
        opts.data_types = untyped;
        rechecked = crate::analyse_file(file, &opts, &args.root).map_err(Failure::new)?;
        if let Some(d) = rechecked.result.diagnostics.iter().find(|d| d.severity == nnc_syntax::Severity::Error) {
            return Err(Failure::new(format!("with the data's shapes: {}", d.message)));
        }
        pick_train(&rechecked, args.train.as_deref())?
    };
    let val_loaded = match info.field("validate") {
        Some(v @ Value::Call(c)) if c.name != "split" => {
            Some(load_source(v, file, &args.root, &specs, first, &mut bindings, seed)?)
        }
        _ => None,
    };
    let test_loaded = match info.field("test") {
        Some(v @ Value::Call(_)) => Some(load_source(v, file, &args.root, &specs, first, &mut bindings, seed)?),
        _ => None,
    };
    let dims = bindings.to_vec();
    let mut transforms = loaded.transforms.clone();
    transforms.dims = dims.iter().cloned().collect();
    check_labels(info, &dims, &[Some(&loaded), val_loaded.as_ref(), test_loaded.as_ref()], int_field(info, "batch"))?;
    let (train, val, mut meta) = prepare(info, loaded, val_loaded, seed)?;
    if !transforms.is_empty() {
        // Saved with every checkpoint, so `predict` can read raw text and tables.
        meta.insert(data::transform::KEY.into(), transforms.to_json());
    }
    let cfg = Config {
        batch: int_field(info, "batch").unwrap_or(32).max(1) as usize,
        epochs: args.epochs.or_else(|| int_field(info, "epochs").map(|e| e as usize)).unwrap_or(1),
        seed,
        shuffle: !matches!(info.field("shuffle"), Some(Value::Bool(false))),
        optimizer: Spec::from_value(info.field("optimizer")).map_err(Failure::new)?,
        class_weights: class_weights(info, &train)?,
        early_stop: early_stop(info),
        max_steps: args.steps,
    };
    Ok(BlockData { info: info.clone(), train, val, test: test_loaded.map(|t| t.data), cfg, meta, dims })
}

/// `nnc run`.
pub fn run(file: &Path, a: &Analysis, options: &CheckOptions, args: &RunArgs) -> Result<(), Failure> {
    let BlockData { info, train, val, test, cfg, meta, dims } = load(file, a, options, args)?;
    let info = &info;
    let mut trainer = Trainer::new(info, cfg.class_weights.clone(), dims).map_err(|e| Failure::new(e.to_string()))?;
    trainer.backend = args.backend;
    let mut params = Params::default();
    let first_batch = cfg.batch.min(train.len().max(1));
    // Before any parameter exists: the estimate of the whole step's memory.
    trainer.check_memory(first_batch, &cfg.optimizer, args.memory).map_err(|e| Failure::new(e.to_string()))?;
    if info.steps.is_empty() && args.dump.is_none() {
        let per_epoch = train.len().div_ceil(cfg.batch.max(1)).min(cfg.max_steps.unwrap_or(usize::MAX));
        let momenta = trainer.moving_momenta(first_batch).map_err(|e| Failure::new(e.to_string()))?;
        warn_unsettled_statistics(&momenta, per_epoch.saturating_mul(cfg.epochs));
    }
    let run_dir = dirs::output_dir(args.out.as_deref(), args.resume.as_deref(), &info.name, args.dump.is_none())?;
    let out_dir = run_dir.path;
    if args.dump.is_none() {
        println!("run directory: {}", out_dir.display());
    }
    if let Some((path, name, prefix)) = init_source(info, args, &out_dir)? {
        load_init(&trainer, &mut params, first_batch, &path, &name, &prefix)?;
    }
    let start_epoch = match &args.resume {
        Some(path) => resume(&mut trainer, &mut params, &cfg, info, first_batch, path)?,
        None => 0,
    };
    trainer.init_params(&mut params, first_batch, cfg.seed).map_err(|e| Failure::new(e.to_string()))?;
    if let Some((dir, steps)) = &args.dump {
        return dump_steps(&mut trainer, &mut params, &train, &cfg, dir, *steps);
    }
    let report = report::Report {
        train: info.name.clone(),
        model: info.model.clone(),
        epochs: cfg.epochs,
        metrics: trainer.metric_names(),
        summary: info
            .model
            .as_ref()
            .and_then(|m| a.result.models.iter().find(|x| &x.name == m))
            .map(nnc_compiler::summary::render),
        alternating: !info.steps.is_empty(),
    };
    if !info.steps.is_empty() {
        return run_steps(info, &mut trainer, &mut params, &train, &cfg, args, &meta, &out_dir, report);
    }
    fit_epochs(Session { info, report, args, trainer, params, train, val, test, cfg, meta, out_dir, start_epoch })
}

/// A `nnc run` after set-up: the trainer with its parameters initialised (or
/// resumed), the data, and where the outputs go.
struct Session<'a> {
    info: &'a TrainInfo,
    report: report::Report,
    args: &'a RunArgs,
    trainer: Trainer<'a>,
    params: Params,
    train: Dataset,
    val: Option<Dataset>,
    test: Option<Dataset>,
    cfg: Config,
    meta: BTreeMap<String, String>,
    out_dir: PathBuf,
    start_epoch: usize,
}

/// Trains epoch by epoch from `start_epoch`, writing checkpoints and the
/// history as it goes, then evaluates on the test data.
fn fit_epochs(s: Session) -> Result<(), Failure> {
    let Session { info, report, args, mut trainer, mut params, train, val, test, cfg, meta, out_dir, start_epoch } = s;
    print_banner(info, &params, &train, val.as_ref(), &cfg);
    let mut on_event = progress(cfg.epochs);
    let mut step_log = plot::StepLog::default();
    // Epochs run one at a time so the weights are saved after each (a later
    // failure keeps the last good checkpoint) and early stopping sees history.
    // A resumed run continues the history of the run it resumes (when that
    // run wrote to the same directory), so the CSV, the plot, early stopping
    // and `keep_best` see every epoch.
    let mut history: Vec<EpochRecord> =
        if start_epoch > 0 { read_history(&out_dir, start_epoch, &trainer.metric_names()) } else { Vec::new() };
    // `checkpoint = "{train}/epoch_{epoch}.safetensors"`: relative to the
    // output directory and inside it, refused before the first epoch.
    let checkpoint_path = |pattern: &str, epoch: usize| {
        let rel = pattern.replace("{train}", &info.name).replace("{epoch}", &epoch.to_string());
        sandbox::confine_output(&out_dir, Path::new(&rel)).map_err(|e| Failure::new(e.to_string()))
    };
    let pattern = match info.field("checkpoint") {
        Some(Value::Str(p)) => Some(p.clone()),
        _ => None,
    };
    if let Some(p) = &pattern {
        checkpoint_path(p, start_epoch + 1)?;
    }
    let keep_best = match info.field("keep_best") {
        Some(Value::Mode(m) | Value::Str(m)) => Some(m.clone()),
        _ => None,
    };
    let mut cfg_one = cfg.clone();
    cfg_one.epochs = 1;
    let validating = val.as_ref().is_some_and(|v| !v.is_empty());
    let mut history_file = HistoryFile::create(&out_dir, &trainer.metric_names(), validating, &history)?;
    let mut board = tensorboard::Writer::open(&out_dir, validating);
    // What the report shows of the validation predictions comes from the validation pass itself.
    let views = report::Plan::of(info, if validating { val.as_ref() } else { None });
    trainer.watch(views.watches());
    let mut seen = report::Views::default();
    let mut result = Ok(());
    let save = args.save.as_ref().or(args.resume.as_ref());
    if start_epoch >= cfg.epochs {
        println!("the checkpoint has trained {start_epoch} of {} already: nothing to do", plural(cfg.epochs, "epoch"));
    }
    for epoch in start_epoch..cfg.epochs {
        let mut events = |e: Event| match e {
            Event::Epoch(r) => {
                let mut r = r.clone();
                r.epoch = epoch;
                on_event(Event::Epoch(&r));
            }
            Event::Seen(_) => {}
            Event::Step { step, steps, loss, samples_per_sec, .. } => {
                step_log.push(epoch, step, steps, loss);
                board.step(epoch * steps + step, loss);
                on_event(Event::Step { epoch, step, steps, loss, samples_per_sec, part: 0 })
            }
        };
        match trainer.fit(&mut params, &train, val.as_ref(), &cfg_one, epoch, &mut events) {
            Ok(mut recs) => {
                for r in &mut recs {
                    r.epoch = epoch;
                    history_file.append(r)?;
                    board.epoch(r);
                }
                history.extend(recs);
            }
            Err(e) => {
                result = Err(Failure::new(e.to_string()));
                break;
            }
        }
        // `keep_best = val_loss`: checkpoints are written only when the monitored value improves.
        let improved = match &keep_best {
            Some(monitor) => nnc_runtime::train::is_best(&history, monitor),
            None => true,
        };
        if improved {
            let mut paths: Vec<PathBuf> = save.cloned().into_iter().collect();
            paths.extend(pattern.as_ref().map(|p| checkpoint_path(p, epoch + 1)).transpose()?);
            save_epoch(&mut trainer, &params, &cfg, &meta, &info.name, epoch, &paths)?;
        }
        // After the checkpoint, so a report that cannot be written never costs the epoch's weights.
        if let Some(v) = &val {
            seen = views.observe(trainer.take_seen(), v);
            seen.to_board(&mut board, epoch);
        }
        let progress =
            report::Progress { history: &history, steps: &step_log, views: &seen, test: None, finished: false };
        report.write(&out_dir, &progress)?;
        if cfg.early_stop.as_ref().is_some_and(|(p, m)| nnc_runtime::train::should_stop(&history, *p, m)) {
            let (patience, monitor) = cfg.early_stop.as_ref().map_or((0, ""), |e| (e.0, e.1.as_str()));
            println!("early stop: `{monitor}` has not improved for {}", plural(patience, "epoch"));
            break;
        }
    }
    if trainer.backend == Backend::Jit {
        print_compile_stats(&trainer);
    }
    if !history.is_empty() {
        write_history(&out_dir, &history, &step_log, &trainer.metric_names())?;
        println!("history: {}, plot: {}", out_dir.join("history.csv").display(), out_dir.join("history.svg").display());
    }
    if result.is_err() {
        println!("run directory: {}", out_dir.display());
    }
    result?;
    let progress = report::Progress { history: &history, steps: &step_log, views: &seen, test: None, finished: true };
    finish(&mut trainer, &params, test.as_ref(), cfg.batch, (&report, progress), &out_dir)?;
    if let Some(path) = save {
        println!("saved {}", path.display());
    }
    println!("run directory: {}", out_dir.display());
    print_profile();
    Ok(())
}

/// The checkpoint after `epoch` to each of `paths`, with the optimizer's state, so that `--resume` continues
/// exactly.
fn save_epoch(
    trainer: &mut Trainer,
    params: &Params,
    cfg: &Config,
    meta: &BTreeMap<String, String>,
    train: &str,
    epoch: usize,
    paths: &[PathBuf],
) -> Result<(), Failure> {
    let mut m = meta.clone();
    m.insert("train".into(), train.to_string());
    m.insert("epoch".into(), (epoch + 1).to_string());
    let (slots, opt_meta) = trainer.optimizer(&cfg.optimizer).state();
    m.extend(opt_meta);
    for path in paths {
        nnc_runtime::checkpoint::save_training(path, &params.values, &slots, &m)
            .map_err(|e| Failure::new(e.to_string()))?;
    }
    Ok(())
}

/// The line that starts training: what is trained on what.
fn print_banner(info: &TrainInfo, params: &Params, train: &Dataset, val: Option<&Dataset>, cfg: &Config) {
    let total: usize = params.values.values().map(|v| v.len()).sum();
    println!(
        "training `{}`{}: {} ({} validation), {}, batch {}, {}, {} lr {}",
        info.name,
        info.model.as_ref().map(|m| format!(" of model {m}")).unwrap_or_default(),
        plural(train.len(), "sample"),
        val.map_or(0, Dataset::len),
        plural(total, "parameter"),
        cfg.batch,
        plural(cfg.epochs, "epoch"),
        cfg.optimizer.name(),
        cfg.optimizer.lr
    );
}

/// After the last epoch: the evaluation on the test data, then the finished report with it.
fn finish(
    trainer: &mut Trainer,
    params: &Params,
    test: Option<&Dataset>,
    batch: usize,
    (report, mut progress): (&report::Report, report::Progress),
    out_dir: &Path,
) -> Result<(), Failure> {
    let mut tested = None;
    if let Some(t) = test {
        let (tl, tm) = trainer.evaluate(params, t, batch).map_err(|e| Failure::new(e.to_string()))?;
        let ms: Vec<String> = trainer.metric_names().iter().zip(&tm).map(|(n, v)| format!("test_{n} {v:.4}")).collect();
        println!("test: loss {tl:.4} {}", ms.join(" "));
        tested = Some((tl, trainer.metric_names().into_iter().zip(tm).collect::<Vec<_>>()));
    }
    progress.test = tested.as_ref().map(|(l, ms)| (*l, ms.as_slice()));
    report.write(out_dir, &progress)?;
    println!("report: {}", out_dir.join("report.html").display());
    Ok(())
}

/// The progress display: a bar on stderr when it is a terminal (redrawn at
/// most every 100 ms), one line per epoch on stdout.
fn progress(epochs: usize) -> impl FnMut(Event) {
    let tty = std::io::stderr().is_terminal();
    let started = Instant::now();
    let mut last_draw = Instant::now();
    move |e: Event| match e {
        Event::Step { epoch, step, steps, loss, samples_per_sec, .. } => {
            if tty && (last_draw.elapsed().as_millis() > 100 || step + 1 == steps) {
                last_draw = Instant::now();
                let done = (epoch * steps + step + 1) as f64;
                let all = (epochs * steps) as f64;
                let eta = started.elapsed().as_secs_f64() / done * (all - done);
                let width = 24;
                let filled = ((step + 1) * width) / steps.max(1);
                eprint!(
                    "\r\x1b[2Kepoch {}/{} [{}{}] {}/{} loss {:.4} {:.0} samples/s ETA {:.0}s",
                    epoch + 1,
                    epochs,
                    "=".repeat(filled),
                    " ".repeat(width - filled),
                    step + 1,
                    steps,
                    loss,
                    samples_per_sec,
                    eta
                );
            }
        }
        Event::Seen(_) => {}
        Event::Epoch(rec) => {
            if tty {
                eprint!("\r\x1b[2K");
            }
            println!("{}", epoch_line(rec, epochs));
            let _ = std::io::stdout().flush();
        }
    }
}

/// `NNC_PROFILE`: time per op kind of the reference executor, slowest first.
fn print_profile() {
    if std::env::var_os("NNC_PROFILE").is_some() {
        for (op, secs) in nnc_runtime::exec::profile_report()
            .iter()
            .take(if std::env::var_os("NNC_PROFILE").is_some_and(|v| v == "shapes") { 40 } else { 15 })
        {
            eprintln!("{op:>20} {secs:8.3} s");
        }
    }
}

/// Arrays of the data that no input types (targets that are no model input,
/// GAN images), with their element type and the shape of one row.
fn untyped_arrays(data: &Dataset, typed: &[String]) -> Vec<(String, nnc_syntax::ast::ElemType, Vec<i64>)> {
    data.arrays
        .iter()
        .filter(|(n, _)| !typed.contains(n))
        .map(|(n, t)| {
            let (elem, shape) = match t {
                Tensor::F(a) => (nnc_syntax::ast::ElemType::Float, a.shape()[1..].to_vec()),
                Tensor::I(a) => (nnc_syntax::ast::ElemType::Int, a.shape()[1..].to_vec()),
            };
            (n.clone(), elem, shape.into_iter().map(|d| d as i64).collect())
        })
        .collect()
}

/// `--dump-steps K --dump DIR`: K optimizer steps on the first K batches
/// of the training rows (file order), writing `init.safetensors` (the
/// weights the first step starts from, after `init = load(…)`),
/// and per step `batch_i`, `grads_i`, `after_i` (safetensors) and
/// `step_i.json` with the loss.
fn dump_steps(
    trainer: &mut Trainer,
    params: &mut Params,
    all: &Dataset,
    cfg: &Config,
    dir: &Path,
    steps: usize,
) -> Result<(), Failure> {
    let io = |e: nnc_runtime::checkpoint::CheckpointError| Failure::new(e.to_string());
    let none = BTreeMap::new();
    nnc_runtime::checkpoint::save(&dir.join("init.safetensors"), &params.values, &none).map_err(io)?;
    if !trainer.info.steps.is_empty() {
        return dump_iterations(trainer, params, all, cfg, dir, steps);
    }
    let mut opt = nnc_runtime::train::optim::Optimizer::new(cfg.optimizer.clone());
    for i in 0..steps {
        let rows: Vec<usize> = (i * cfg.batch..((i + 1) * cfg.batch).min(all.len())).collect();
        if rows.is_empty() {
            break;
        }
        let batch = all.take(&rows);
        let arrays: BTreeMap<String, _> = batch.arrays.iter().map(|(k, t)| (k.clone(), t.float())).collect();
        nnc_runtime::checkpoint::save(&dir.join(format!("batch_{i}.safetensors")), &arrays, &none).map_err(io)?;
        let out = trainer.step(params, &batch, &mut opt).map_err(|e| Failure::new(e.to_string()))?;
        let grads: BTreeMap<String, _> = out.grads.into_iter().collect();
        nnc_runtime::checkpoint::save(&dir.join(format!("grads_{i}.safetensors")), &grads, &none).map_err(io)?;
        nnc_runtime::checkpoint::save(&dir.join(format!("after_{i}.safetensors")), &params.values, &none)
            .map_err(io)?;
        std::fs::write(dir.join(format!("step_{i}.json")), serde_json::json!({"loss": out.loss}).to_string())
            .map_err(|e| Failure::new(format!("{}: {e}", dir.display())))?;
    }
    println!("dumped {} to {}", plural(steps, "step"), dir.display());
    Ok(())
}

/// `--dump-steps K` of a block of alternating steps (a GAN): K iterations, each running every step in
/// order (`times` each) on the next full batch in file order, as `nnc run` does without shuffling. Writes
/// `batch_j` for the j-th step application, then `after_{K-1}` and `step_{K-1}.json` with the loss of each
/// step application (`losses`; `loss` is the first).
fn dump_iterations(
    trainer: &mut Trainer,
    params: &mut Params,
    all: &Dataset,
    cfg: &Config,
    dir: &Path,
    iterations: usize,
) -> Result<(), Failure> {
    let io = |e: nnc_runtime::checkpoint::CheckpointError| Failure::new(e.to_string());
    let none = BTreeMap::new();
    let in_order = Config { shuffle: false, ..cfg.clone() };
    let batch = cfg.batch.max(1).min(all.len().max(1));
    let per_iteration: usize = trainer.info.steps.iter().map(|s| s.times.max(1) as usize).sum();
    let full = all.len() / batch;
    for j in 0..(per_iteration * iterations).min(full) {
        let rows: Vec<usize> = (j * batch..(j + 1) * batch).collect();
        let arrays: BTreeMap<String, _> = all.take(&rows).arrays.iter().map(|(k, t)| (k.clone(), t.float())).collect();
        nnc_runtime::checkpoint::save(&dir.join(format!("batch_{j}.safetensors")), &arrays, &none).map_err(io)?;
    }
    let mut losses = Vec::new();
    let mut on_event = |e: Event| {
        if let Event::Step { loss, .. } = e {
            losses.push(loss);
        }
    };
    trainer.fit_steps(params, all, &in_order, iterations, &mut on_event).map_err(|e| Failure::new(e.to_string()))?;
    let last = iterations.saturating_sub(1);
    nnc_runtime::checkpoint::save(&dir.join(format!("after_{last}.safetensors")), &params.values, &none).map_err(io)?;
    let json = serde_json::json!({"loss": losses.first().copied().unwrap_or(f64::NAN), "losses": losses});
    std::fs::write(dir.join(format!("step_{last}.json")), json.to_string())
        .map_err(|e| Failure::new(format!("{}: {e}", dir.display())))?;
    println!("dumped {} to {}", plural(iterations, "iteration"), dir.display());
    Ok(())
}

/// Alternating steps (GANs): `steps = n` iterations, or `--epochs` passes
/// (of at most `--steps` iterations each).
fn run_steps(
    info: &TrainInfo,
    trainer: &mut Trainer,
    params: &mut Params,
    train: &Dataset,
    cfg: &Config,
    args: &RunArgs,
    meta: &BTreeMap<String, String>,
    out_dir: &Path,
    mut report: report::Report,
) -> Result<(), Failure> {
    // `--steps K` caps a pass (an "epoch" of the history) at K iterations.
    let per_pass = train.len().div_ceil(cfg.batch.max(1)).max(1).min(args.steps.unwrap_or(usize::MAX));
    let iterations = match (args.epochs, int_field(info, "steps")) {
        (Some(e), _) => e * per_pass,
        (None, Some(s)) => s.max(1) as usize,
        (None, None) => cfg.epochs * per_pass,
    };
    let steps: Vec<String> =
        info.steps.iter().map(|s| format!("{} (×{}, over {})", s.name, s.times, s.over.join(", "))).collect();
    println!(
        "training `{}` with alternating steps {}: {}, batch {}, {}",
        info.name,
        steps.join(", "),
        plural(train.len(), "sample"),
        cfg.batch,
        plural(iterations, "iteration")
    );
    let passes = iterations.div_ceil(per_pass);
    let mut history_file = HistoryFile::create(out_dir, &trainer.metric_names(), false, &[])?;
    let mut write_error = None;
    let mut step_log = plot::StepLog::default();
    let mut board = tensorboard::Writer::open(out_dir, false);
    // The generated samples after each pass, from the same noise every time.
    let plan = report::Plan::of(info, None);
    trainer.watch(plan.watches());
    let step_names = trainer.metric_names();
    let mut views = report::Views::default();
    report.epochs = passes;
    let mut so_far = Vec::new();
    let mut on_event = |e: Event| match e {
        Event::Seen(seen) => plan.observe_generated(seen, so_far.len(), &mut views),
        Event::Epoch(rec) => {
            println!("{}", epoch_line(rec, passes));
            board.epoch(rec);
            views.to_board(&mut board, rec.epoch);
            so_far.push(rec.clone());
            let progress =
                report::Progress { history: &so_far, steps: &step_log, views: &views, test: None, finished: false };
            if let Err(e) = history_file.append(rec).and_then(|()| report.write(out_dir, &progress)) {
                write_error.get_or_insert(e);
            }
        }
        Event::Step { epoch, step, steps, loss, part, .. } => {
            // The per-step curve of the loss panel is the first step's (the block's `loss`): the steps' losses
            // interleaved would draw a zigzag between two unrelated quantities. TensorBoard gets each.
            if part == 0 {
                step_log.push(epoch, step, steps, loss);
            }
            if let Some(name) = step_names.get(part) {
                board.scalar(epoch * steps + step, &format!("batch_{name}"), loss);
            }
        }
    };
    let history =
        trainer.fit_steps(params, train, cfg, iterations, &mut on_event).map_err(|e| Failure::new(e.to_string()))?;
    if let Some(e) = trainer.watch_error() {
        eprintln!("warning: report.html: no generated samples: {e}");
    }
    if let Some(e) = write_error {
        return Err(e);
    }
    write_history(out_dir, &history, &step_log, &trainer.metric_names())?;
    let progress = report::Progress { history: &history, steps: &step_log, views: &views, test: None, finished: true };
    report.write(out_dir, &progress)?;
    println!("report: {}", out_dir.join("report.html").display());
    if let Some(path) = &args.save {
        let mut m = meta.clone();
        m.insert("train".into(), info.name.clone());
        nnc_runtime::checkpoint::save(path, &params.values, &m).map_err(|e| Failure::new(e.to_string()))?;
        println!("saved {}", path.display());
    }
    println!("run directory: {}", out_dir.display());
    Ok(())
}

/// "1 epoch", "3 epochs": every count the CLI prints goes through here.
pub(crate) fn plural(n: usize, word: &str) -> String {
    if n == 1 { format!("1 {word}") } else { format!("{n} {word}s") }
}

fn epoch_line(rec: &EpochRecord, epochs: usize) -> String {
    let mut s = format!("epoch {}/{}: loss {:.4}", rec.epoch + 1, epochs, rec.loss);
    for (n, v) in &rec.metrics {
        s.push_str(&format!(" {n} {v:.4}"));
    }
    if let Some(vl) = rec.val_loss {
        s.push_str(&format!(" - val_loss {vl:.4}"));
        for (n, v) in &rec.val_metrics {
            s.push_str(&format!(" val_{n} {v:.4}"));
        }
    }
    s.push_str(&format!(" ({:.1} s)", rec.seconds));
    s
}

/// history.csv and an SVG plot of every series.
/// The first `epochs` rows of `dir/history.csv` as written by
/// [`write_history`]; empty when there is no such file or it does not hold
/// those epochs with these metrics.
fn read_history(dir: &Path, epochs: usize, metrics: &[String]) -> Vec<EpochRecord> {
    let Ok(bytes) = sandbox::read(&dir.join("history.csv"), &Access::User, sandbox::Cap::Data) else {
        return Vec::new();
    };
    let Ok(text) = String::from_utf8(bytes) else { return Vec::new() };
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap_or("").split(',').collect();
    let col =
        |row: &[&str], name: &str| header.iter().position(|h| *h == name).and_then(|i| row.get(i)?.parse::<f64>().ok());
    let mut out = Vec::new();
    for line in lines.take(epochs) {
        let row: Vec<&str> = line.split(',').collect();
        let (Some(epoch), Some(loss)) =
            (col(&row, "epoch").and_then(|e| (e as usize).checked_sub(1)), col(&row, "loss"))
        else {
            return Vec::new();
        };
        let Some(values) = metrics.iter().map(|m| col(&row, m).map(|v| (m.clone(), v))).collect::<Option<Vec<_>>>()
        else {
            return Vec::new();
        };
        let val_loss = col(&row, "val_loss");
        let val_metrics = if val_loss.is_some() {
            metrics.iter().filter_map(|m| Some((m.clone(), col(&row, &format!("val_{m}"))?))).collect()
        } else {
            Vec::new()
        };
        out.push(EpochRecord {
            epoch,
            loss,
            metrics: values,
            val_loss,
            val_metrics,
            seconds: col(&row, "seconds").unwrap_or(0.0),
        });
    }
    if out.len() == epochs && out.iter().enumerate().all(|(i, r)| r.epoch == i) { out } else { Vec::new() }
}

/// The value columns of history.csv (between `epoch` and `seconds`).
fn history_columns(metrics: &[String], validation: bool) -> Vec<String> {
    let mut columns: Vec<String> = vec!["loss".into()];
    columns.extend(metrics.iter().cloned());
    if validation {
        columns.push("val_loss".into());
        columns.extend(metrics.iter().map(|m| format!("val_{m}")));
    }
    columns
}

fn history_header(columns: &[String]) -> String {
    format!("epoch,{},seconds\n", columns.join(","))
}

fn history_line(r: &EpochRecord, columns: &[String]) -> String {
    let vals: Vec<String> = columns.iter().map(|c| r.value(c).map_or(String::new(), |v| format!("{v}"))).collect();
    format!("{},{},{:.3}\n", r.epoch + 1, vals.join(","), r.seconds)
}

/// history.csv as the run goes: created at the start (replacing the file of
/// an earlier run) with its header and any epochs a resumed run continues,
/// then one line per epoch, flushed, so a killed run keeps every epoch it
/// finished. [`write_history`] rewrites it with the plot at the end.
struct HistoryFile {
    file: std::fs::File,
    columns: Vec<String>,
    path: PathBuf,
}

impl HistoryFile {
    fn create(
        dir: &Path,
        metrics: &[String],
        validation: bool,
        previous: &[EpochRecord],
    ) -> Result<HistoryFile, Failure> {
        std::fs::create_dir_all(dir).map_err(|e| Failure::new(format!("{}: {e}", dir.display())))?;
        let path = dir.join("history.csv");
        let columns = history_columns(metrics, validation);
        let file = std::fs::File::create(&path).map_err(|e| Failure::new(format!("{}: {e}", path.display())))?;
        let mut h = HistoryFile { file, columns, path };
        let mut text = history_header(&h.columns);
        text.extend(previous.iter().map(|r| history_line(r, &h.columns)));
        h.write(&text)?;
        Ok(h)
    }

    fn append(&mut self, r: &EpochRecord) -> Result<(), Failure> {
        let line = history_line(r, &self.columns);
        self.write(&line)
    }

    fn write(&mut self, text: &str) -> Result<(), Failure> {
        let fail = |e: std::io::Error| Failure::new(format!("{}: {e}", self.path.display()));
        self.file.write_all(text.as_bytes()).map_err(fail)?;
        self.file.flush().map_err(fail)
    }
}

fn write_history(
    dir: &Path,
    history: &[EpochRecord],
    steps: &plot::StepLog,
    metrics: &[String],
) -> Result<(), Failure> {
    std::fs::create_dir_all(dir).map_err(|e| Failure::new(format!("{}: {e}", dir.display())))?;
    let columns = history_columns(metrics, history.iter().any(|r| r.val_loss.is_some()));
    let mut csv = history_header(&columns);
    for r in history {
        csv.push_str(&history_line(r, &columns));
    }
    std::fs::write(dir.join("history.csv"), csv).map_err(|e| Failure::new(format!("{}: {e}", dir.display())))?;
    std::fs::write(dir.join("history.svg"), plot::svg(history, steps, metrics))
        .map_err(|e| Failure::new(format!("{}: {e}", dir.display())))?;
    Ok(())
}

/// `nnc predict`: runs a model's outputs on `.npy` inputs with saved weights.
///
/// Before anything runs: the checkpoint must hold exactly the model's
/// parameters with their shapes ([`nnc_runtime::checkpoint::load_for_model`]),
/// each input must be an array with a row axis, all inputs the same number of
/// rows, and the memory estimate must fit `limit`.
pub fn predict(
    a: &Analysis,
    model: Option<&str>,
    weights: &Path,
    inputs: &[(String, PathBuf)],
    output: &Path,
    backend: Backend,
    limit: nnc_runtime::memory::Limit,
) -> Result<(), Failure> {
    let m = match model {
        Some(n) => {
            a.result.models.iter().find(|m| m.name == n).ok_or_else(|| Failure::usage(format!("no model `{n}`")))?
        }
        None => a.result.models.first().ok_or_else(|| Failure::usage("the file has no model"))?,
    };
    let typed_checkpoint = nnc_runtime::io::load_checkpoint_typed(weights).map_err(|e| Failure::new(e.to_string()))?;
    // `.npy`, raw text and tables, through the transforms saved with the checkpoint.
    let (ds, dims) = crate::predict_inputs::read(m, &typed_checkpoint.1, inputs).map_err(Failure::new)?;
    let ds = crate::predict_inputs::to_dataset(ds);
    let (out_name, out) = m.outputs.first().ok_or_else(|| Failure::new("the model has no output"))?;
    let root: TRef = out
        .as_tensor()
        .and_then(|t| t.node)
        .ok_or_else(|| Failure::new(format!("output `{out_name}` is not a tensor")))?;
    let info = TrainInfo { graph: m.graph.clone(), ..TrainInfo::default() };
    // Every output's parameters: a checkpoint of the model holds them all,
    // even those the first output does not read.
    let all_outputs: Vec<(String, TRef)> =
        m.outputs.iter().filter_map(|(n, v)| Some((n.clone(), v.as_tensor()?.node?))).collect();
    let decls = Trainer::forward_params(&info, &all_outputs, 1, &dims).map_err(|e| Failure::new(e.to_string()))?;
    let expected: Vec<(String, Vec<usize>)> = decls.into_iter().map(|p| (p.name, p.shape)).collect();
    let (tensors, _) = nnc_runtime::checkpoint::fit_model(weights, typed_checkpoint, &m.name, &expected)
        .map_err(|e| Failure::new(e.to_string()))?;
    let params = Params { values: tensors, trainable: BTreeMap::new() };
    let outs = Trainer::predict_within(&info, &params, &ds, &[(out_name.clone(), root)], &dims, backend, limit)
        .map_err(|e| Failure::new(e.to_string()))?;
    nnc_runtime::io::write_npy(output, &outs[0]).map_err(|e| Failure::new(e.to_string()))?;
    println!("wrote `{out_name}` {:?} to {}", outs[0].shape(), output.display());
    Ok(())
}

/// The compiled backend's statistics line (and a warning naming any op that
/// ran through the one-node reference fallback; `tests/examples_run.rs`
/// requires there be none).
fn print_compile_stats(trainer: &Trainer) {
    let s = trainer.compile_stats();
    println!(
        "compiled: {} ({} distinct) and {} in {:.0} ms, arena {:.1} MB",
        plural(s.kernels, "fused kernel"),
        s.distinct_kernels,
        plural(s.library_ops, "library op"),
        s.seconds * 1e3,
        s.arena_bytes as f64 / 1e6
    );
    if !s.fallbacks.is_empty() {
        println!(
            "warning: {} ran on the reference fallback: {}",
            plural(s.fallbacks.len(), "op"),
            s.fallbacks.join(", ")
        );
    }
}

/// `nnc ir`: the canonical IR text of a train block's step (forward and,
/// with `backward`, the gradients) or of a model's forward pass.
pub fn ir(a: &Analysis, train: Option<&str>, batch: usize, backward: bool, fused: bool) -> Result<String, Failure> {
    let text = |f: nnc_compiler::ir::Func| {
        if !fused {
            return f.to_string();
        }
        // As the compiled backend builds it: rewrites, then fusion.
        let keep: Vec<nnc_compiler::ir::Id> = f.outputs.iter().map(|(_, id)| *id).collect();
        let f = nnc_jit::rewrite::rewrite(&f, &keep).func;
        let keep: Vec<nnc_compiler::ir::Id> = f.outputs.iter().map(|(_, id)| *id).collect();
        let plan = nnc_jit::fuse::plan(&f, &keep);
        let mut s = nnc_jit::fuse::display(&f, &plan);
        for (name, id) in &f.outputs {
            s.push_str(&format!("output {name:?} = %{id}\n"));
        }
        s
    };
    if let Ok(info) = pick_train(a, train) {
        let t = Trainer::new(info, None, vec![]).map_err(|e| Failure::new(e.to_string()))?;
        let f = t.ir(batch, backward).map_err(|e| Failure::new(e.to_string()))?;
        return Ok(text(f));
    }
    let m = a.result.models.first().ok_or_else(|| Failure::usage("the file has no model or train block"))?;
    let roots: Vec<(String, TRef)> =
        m.outputs.iter().filter_map(|(n, v)| v.as_tensor().and_then(|t| t.node).map(|r| (n.clone(), r))).collect();
    let opts = nnc_compiler::ir::lower::LowerOptions { dims: vec![("N".into(), batch as i64)], ..Default::default() };
    let f = nnc_compiler::ir::lower::lower(&m.graph, &roots, &Default::default(), &opts)
        .map_err(|e| Failure::new(e.to_string()))?;
    Ok(text(f))
}

/// Check options with `--set` overrides.
pub fn options(overrides: Vec<(String, nnc_compiler::SetValue)>) -> CheckOptions {
    CheckOptions { overrides, ..CheckOptions::default() }
}

/// What `nnc show` reads of a train block's data: every row of its `data =` source in file order, the
/// arrays as loaded (`raw`, for sample pictures) and as the model sees them (`fed`: z-scored with the
/// training rows' statistics, as `nnc run` does), and the dims the data bound.
pub(crate) struct RowsInFileOrder {
    pub raw: Dataset,
    pub fed: Dataset,
    pub dims: Vec<(String, i64)>,
}

/// Loads the data of train block `info` of `file` for `nnc show` ([`RowsInFileOrder`]).
pub(crate) fn block_data(file: &Path, info: &TrainInfo, root: &Root) -> Result<RowsInFileOrder, Failure> {
    let seed = int_field(info, "seed").map_or(0, |s| s as u64);
    let specs = input_specs(info)?;
    let call =
        info.data.clone().ok_or_else(|| Failure::new(format!("train block `{}` has no data source", info.name)))?;
    let mut bindings = data::bind::Bindings::default();
    let rows = split_rows(info, seed)?;
    let loaded = load_call(&call, file, root, &specs, info, &mut bindings, seed, &rows)?;
    let raw = loaded.data.clone();
    let mut fed = loaded.data;
    let (train_rows, _) = rows.split(raw.len());
    for name in &loaded.normalize {
        let Some(t) = raw.arrays.get(name) else { continue };
        let z = data::ZScore::fit(name, &to_array(t), &train_rows).map_err(|e| Failure::new(e.to_string()))?;
        let a = z.apply(name, &to_array(t)).map_err(|e| Failure::new(e.to_string()))?;
        fed.arrays.insert(name.clone(), to_tensor(a));
    }
    Ok(RowsInFileOrder { raw, fed, dims: bindings.to_vec() })
}

/// The train block to show data of: `name`, else the first that trains `model` (`None`: the first block).
pub(crate) fn show_train<'a>(
    a: &'a Analysis,
    name: Option<&str>,
    model: Option<&str>,
) -> Result<&'a TrainInfo, Failure> {
    match (name, model) {
        (Some(_), _) | (None, None) => pick_train(a, name),
        (None, Some(m)) => a.result.trains.iter().find(|t| t.model.as_deref() == Some(m)).ok_or_else(|| {
            Failure::usage(format!(
                "no train block trains model `{m}`, so there is no data to take an input from; \
                 give one with --input NAME=FILE"
            ))
        }),
    }
}
