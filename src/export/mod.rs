//! `nnc export FILE --to FORMAT DIR`: a checked model (and its train block) written for another
//! framework. The generators work on the typed graph (`nnc_compiler::graph`) and the layer table; this
//! module is the command-line edge: it picks the models, initialises or loads the weights, loads the
//! data as `nnc run` would, and writes the files atomically.

pub(crate) mod keras;
pub mod onnx;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::ValueEnum;
use nnc_compiler::graph::TRef;
use nnc_compiler::{Analysis, ModelInfo};
use nnc_runtime::exec::Tensor;
use nnc_runtime::train::{Params, Trainer};
use nnc_syntax::{Code, Diagnostic, FileId};

use crate::run::{self, Failure};

/// What `nnc export` writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum Target {
    /// A directory with model.py (a Keras 3 functional model), weights.safetensors, train.py and a README.
    Keras,
    /// An ONNX model file: the inference graph, opset 18, batch dim `N` symbolic.
    Onnx,
}

/// The options of `nnc export`.
#[derive(clap::Args)]
pub(crate) struct ExportArgs {
    /// The `.nn` file holding the model.
    pub file: PathBuf,
    /// The format to write.
    #[arg(long, value_enum)]
    pub to: Target,
    /// Where to write: for keras the directory (created when missing; files of the same names are
    /// replaced), for onnx the `.onnx` file (written atomically).
    #[arg(value_name = "OUT")]
    pub out: PathBuf,
    /// The train block to export with its model (default: the file's first, when it has one).
    #[arg(long)]
    pub train: Option<String>,
    /// Export only this model (and no train block unless --train names one).
    #[arg(long)]
    pub model: Option<String>,
    /// The weights: a safetensors checkpoint (`nnc run --save`); default: the seeded initial weights
    /// `nnc run` starts from.
    #[arg(long, value_name = "W")]
    pub weights: Option<PathBuf>,
    /// Also write the arrays the train block trains on, after nnc's preprocessing (splits,
    /// z-scoring), as DIR/data/{train,validation,test}.npz.
    #[arg(long)]
    pub data: bool,
    /// The seed of the initial weights (default: the train block's `seed`, else 0).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Override a model parameter: --set hidden=256
    #[arg(long = "set", value_name = "NAME=VALUE")]
    pub set: Vec<String>,
    /// The project root: files the .nn file reads (`use`, data, `init = load`) must lie under it
    /// (default: the nearest directory upwards holding an `nnc.toml`, else the file's directory).
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// How a refusal (E0601: what the target cannot express) is reported: human-readable, or JSON as
    /// `nnc check --format json` prints diagnostics.
    #[arg(long, value_enum, default_value = "human")]
    pub format: crate::Format,
}

/// `nnc export`: exit 0 when written, 1 on errors in the file or what it cannot express, 2 on usage.
pub(crate) fn run(args: &ExportArgs, color: bool) -> ExitCode {
    let Some(root) = crate::root_or_exit(&args.file, args.root.as_deref()) else { return ExitCode::from(2) };
    let Some(a) = crate::checked(&args.file, &args.set, &root, color) else { return ExitCode::from(1) };
    let result = match args.to {
        Target::Keras => export_keras(args, &a, root),
        Target::Onnx => export_onnx(args, &a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Error::Diagnostic(d)) => {
            match args.format {
                crate::Format::Human => eprint!("{}", crate::render::human(&a.program, &[*d], color)),
                crate::Format::Json => {
                    let doc = serde_json::json!({
                        "version": 1,
                        "diagnostics": [crate::render::diagnostic_json(&a.program, &d)],
                    });
                    println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
                }
            }
            ExitCode::from(1)
        }
        Err(Error::Failure(f)) => crate::finish(Err(f)),
    }
}

/// Why an export failed: a diagnostic in the source (what Keras cannot express), or a message.
pub(crate) enum Error {
    Diagnostic(Box<Diagnostic>),
    Failure(Failure),
}

impl From<Failure> for Error {
    fn from(f: Failure) -> Error {
        Error::Failure(f)
    }
}

fn fail(message: impl Into<String>) -> Error {
    Error::Failure(Failure { message: message.into(), usage: false })
}

fn usage(message: impl Into<String>) -> Error {
    Error::Failure(Failure { message: message.into(), usage: true })
}

/// What the command exports: a model alone, or a train block with the models it trains.
enum Selection<'a> {
    Model(&'a ModelInfo),
    Train(Option<String>),
}

fn select<'a>(args: &ExportArgs, a: &'a Analysis) -> Result<Selection<'a>, Error> {
    let own: Vec<&ModelInfo> = a.result.models.iter().filter(|m| m.file == FileId(0)).collect();
    if let Some(name) = &args.model {
        let m = a.result.models.iter().find(|m| &m.name == name).ok_or_else(|| {
            let names: Vec<&str> = own.iter().map(|m| m.name.as_str()).collect();
            usage(format!("no model `{name}` in {} (models: {})", args.file.display(), names.join(", ")))
        })?;
        return Ok(match &args.train {
            Some(t) => Selection::Train(Some(t.clone())),
            None => Selection::Model(m),
        });
    }
    if args.train.is_some() || a.result.trains.iter().any(|t| t.file == FileId(0)) {
        return Ok(Selection::Train(args.train.clone()));
    }
    own.first().map(|m| Selection::Model(m)).ok_or_else(|| usage("the file has no model"))
}

/// A model's graph as the generator reads it (outputs that are tensors, inputs by their nodes).
fn model_source<'a>(m: &'a ModelInfo, prefix: String) -> keras::ModelSource<'a> {
    let inputs = m.inputs.iter().filter_map(|(n, t)| Some((n.clone(), t.node?))).collect();
    let outputs = m.outputs.iter().filter_map(|(n, v)| Some((n.clone(), v.as_tensor()?.node?))).collect();
    keras::ModelSource::plain(m.name.clone(), m.doc.clone(), &m.graph, inputs, outputs, prefix)
}

/// `--to onnx`: the model's inference graph; the train-block options have no meaning there.
fn export_onnx(args: &ExportArgs, a: &Analysis) -> Result<(), Error> {
    let keras_only = [("--train", args.train.is_some()), ("--data", args.data), ("--seed", args.seed.is_some())];
    if let Some((flag, _)) = keras_only.iter().find(|(_, given)| *given) {
        return Err(usage(format!("{flag} is for --to keras; an ONNX file holds the inference graph only")));
    }
    let request = onnx::Request { model: args.model.as_deref(), weights: args.weights.as_deref() };
    let bytes = onnx::write(a, &request, &args.out).map_err(fail)?;
    println!("wrote {} ({bytes} bytes)", args.out.display());
    Ok(())
}

fn export_keras(args: &ExportArgs, a: &Analysis, root: nnc_compiler::sandbox::Root) -> Result<(), Error> {
    let source = args.file.file_name().map_or_else(|| args.file.display().to_string(), |n| n.display().to_string());
    match select(args, a)? {
        Selection::Model(m) => {
            let py = keras::model_py(&source, &[model_source(m, String::new())], None).map_err(|u| diagnostic(a, u))?;
            let weights = model_weights(args, m)?;
            write_dir(&args.out, &py, &weights, None)?;
            println!("exported model `{}` to {} (model.py, weights.safetensors)", m.name, args.out.display());
            Ok(())
        }
        Selection::Train(name) => export_train(args, a, root, name, &source),
    }
}

/// A model alone: `--weights` fitted to its parameters, or its seeded initial weights.
fn model_weights(args: &ExportArgs, m: &ModelInfo) -> Result<Params, Error> {
    let info = nnc_compiler::check::train::TrainInfo { graph: m.graph.clone(), ..Default::default() };
    let outputs: Vec<(String, TRef)> =
        m.outputs.iter().filter_map(|(n, v)| Some((n.clone(), v.as_tensor()?.node?))).collect();
    let decls = Trainer::forward_params(&info, &outputs, 1, &[]).map_err(|e| fail(e.to_string()))?;
    if let Some(w) = &args.weights {
        let expected: Vec<(String, Vec<usize>)> = decls.into_iter().map(|p| (p.name, p.shape)).collect();
        let (values, _) =
            nnc_runtime::checkpoint::load_for_model(w, &m.name, &expected).map_err(|e| fail(e.to_string()))?;
        return Ok(Params { values, trainable: BTreeMap::new() });
    }
    let mut params = Params::default();
    params.ensure(&decls, args.seed.unwrap_or(0)).map_err(|e| fail(e.to_string()))?;
    Ok(params)
}

fn export_train(
    args: &ExportArgs,
    a: &Analysis,
    root: nnc_compiler::sandbox::Root,
    train: Option<String>,
    source: &str,
) -> Result<(), Error> {
    let options = run::options(crate::parse_sets(&args.set).map_err(usage)?);
    let run_args = run::RunArgs {
        train,
        epochs: None,
        steps: None,
        seed: args.seed,
        init: None,
        save: None,
        resume: None,
        out: None,
        dump: None,
        backend: nnc_runtime::train::Backend::Jit,
        memory: nnc_runtime::memory::Limit::Off,
        root,
    };
    let data = run::load(&args.file, a, &options, &run_args)?;
    let info = &data.info;
    let mut models: Vec<keras::ModelSource> = if info.steps.is_empty() {
        let name = info.model.clone().unwrap_or_else(|| "Model".into());
        let doc = a.result.models.iter().find(|m| m.name == name).and_then(|m| m.doc.clone());
        let (inputs, outputs) = (info.model_inputs.clone(), info.model_outputs.clone());
        vec![keras::ModelSource::plain(name, doc, &info.graph, inputs, outputs, String::new())]
    } else {
        let mut names: Vec<&str> = Vec::new();
        for s in &info.steps {
            for m in &s.over {
                if !names.contains(&m.as_str()) {
                    names.push(m);
                }
            }
        }
        let mut out = Vec::new();
        for n in names {
            let m = a.result.models.iter().find(|m| m.name == n).ok_or_else(|| fail(format!("no model `{n}`")))?;
            out.push(model_source(m, format!("{n}.")));
        }
        out
    };
    let graph = keras::train::graph_name(&info.name);
    if info.steps.is_empty() {
        models.extend(keras::train::training_source(info, &data));
    } else {
        models.extend(keras::train::step_sources(info, &data));
    }
    let py = keras::model_py(source, &models, Some(&graph)).map_err(|u| diagnostic(a, u))?;
    let trainer =
        Trainer::new(info, data.cfg.class_weights.clone(), data.dims.clone()).map_err(|e| fail(e.to_string()))?;
    let batch = data.cfg.batch.min(data.train.len().max(1));
    let decls = trainer.declared_params(batch).map_err(|e| fail(e.to_string()))?;
    let weights = match &args.weights {
        Some(w) => {
            let expected: Vec<(String, Vec<usize>)> = decls.iter().map(|p| (p.name.clone(), p.shape.clone())).collect();
            let values =
                nnc_runtime::checkpoint::load_for_model(w, &info.name, &expected).map_err(|e| fail(e.to_string()))?.0;
            Params { values, trainable: BTreeMap::new() }
        }
        None => {
            let mut params = Params::default();
            trainer.init_params(&mut params, batch, data.cfg.seed).map_err(|e| fail(e.to_string()))?;
            params
        }
    };
    let train_py = keras::train::train_py(info, &models, &data, source).map_err(|u| diagnostic(a, u))?;
    write_dir(&args.out, &py, &weights, Some(&train_py))?;
    if args.data {
        write_data(&args.out.join("data"), &data)?;
    }
    let names: Vec<&str> = models.iter().filter(|m| !m.trainer).map(|m| m.name.as_str()).collect();
    println!(
        "exported train block `{}` ({}) to {} (model.py, weights.safetensors, train.py, README.md{})",
        info.name,
        names.join(", "),
        args.out.display(),
        if args.data { ", data/" } else { "" }
    );
    Ok(())
}

/// The diagnostic of a node Keras cannot express: at the node, the option's span labelled when written.
fn diagnostic(a: &Analysis, u: keras::Unexportable) -> Error {
    let _ = a;
    let at = u.option_origin.unwrap_or(u.origin);
    let label = match (u.refusal.option, u.option_origin) {
        (Some(o), Some(_)) => format!("`{o}` has no Keras form here"),
        (Some(o), None) => format!("`{o}` (not written: its default) has no Keras form here"),
        (None, _) => "no Keras form".to_string(),
    };
    let d = Diagnostic::new(Code::NotExportable, at.file, at.span, format!("cannot export {} to Keras", u.what))
        .with_label(label)
        .with_note(u.refusal.why);
    Error::Diagnostic(Box::new(d))
}

/// Writes the export directory: every file through a temporary file and a rename.
fn write_dir(
    dir: &Path,
    model_py: &str,
    weights: &Params,
    train_py: Option<&keras::train::TrainFiles>,
) -> Result<(), Error> {
    std::fs::create_dir_all(dir).map_err(|e| fail(format!("cannot create {}: {e}", dir.display())))?;
    let write = |name: &str, text: &str| {
        nnc_runtime::io::checkpoint::write_atomically(&dir.join(name), text.as_bytes()).map_err(|e| fail(e.to_string()))
    };
    write("model.py", model_py)?;
    nnc_runtime::checkpoint::save(&dir.join("weights.safetensors"), &weights.values, &BTreeMap::new())
        .map_err(|e| fail(e.to_string()))?;
    if let Some(t) = train_py {
        write("train.py", &t.train_py)?;
        write("README.md", &t.readme)?;
    }
    Ok(())
}

/// `--data`: the arrays of each split as one `.npz` per split (integer arrays stay int64).
fn write_data(dir: &Path, data: &run::BlockData) -> Result<(), Error> {
    std::fs::create_dir_all(dir).map_err(|e| fail(format!("cannot create {}: {e}", dir.display())))?;
    let splits = [("train", Some(&data.train)), ("validation", data.val.as_ref()), ("test", data.test.as_ref())];
    for (name, ds) in splits {
        let Some(ds) = ds else { continue };
        let arrays: Vec<(String, Vec<u8>)> = ds
            .arrays
            .iter()
            .map(|(array, t)| {
                let npy = match t {
                    Tensor::F(a) => nnc_runtime::io::to_npy_bytes(a),
                    Tensor::I(a) => nnc_runtime::io::to_npy_bytes(a),
                };
                (array.clone(), npy)
            })
            .collect();
        let path = dir.join(format!("{name}.npz"));
        let bytes = nnc_runtime::io::to_npz_bytes(&arrays, &path).map_err(|e| fail(e.to_string()))?;
        nnc_runtime::io::checkpoint::write_atomically(&path, &bytes).map_err(|e| fail(e.to_string()))?;
    }
    Ok(())
}
