//! `nnc show model|filters|activations|samples`: pictures of a model and what it learned, as SVG or PNG by the
//! output's extension. The model diagram is laid out in `show/diagram.rs`; the image grids (`show/maps.rs`)
//! draw through `crate::picture`, as report.html does.

mod diagram;
mod maps;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand, ValueEnum};
use nnc_compiler::check::train::TrainInfo;
use nnc_compiler::graph::TRef;
use nnc_compiler::sandbox::Root;
use nnc_compiler::{Analysis, ModelInfo};
use nnc_runtime::train::Trainer;
use nnc_syntax::FileId;

use crate::run::Failure;

/// What `nnc show` draws.
#[derive(Subcommand)]
pub enum What {
    /// The architecture as an SVG diagram: inputs, layers, arithmetic and outputs as boxes, each edge labelled
    /// with the checker's symbolic shape (`[N, 28, 28, 16]`), block calls as titled rectangles.
    Model {
        /// The `.nn` file.
        file: PathBuf,
        /// Only this model (default: every model of the file, side by side).
        #[arg(long)]
        model: Option<String>,
        /// Draw block calls nested deeper than D as one box each (0: every top-level call is one box).
        #[arg(long, value_name = "D")]
        depth: Option<usize>,
        #[command(flatten)]
        common: Common,
    },
    /// A convolution's kernels from a checkpoint as a grid: one tile per output filter and input channel,
    /// or one RGB tile per filter when the layer has 3 input channels; each kernel standardised as the MNIST
    /// workshop does (`clip((k − mean) / std + 0.5, 0, 1)`).
    Filters {
        /// The `.nn` file.
        file: PathBuf,
        /// The safetensors checkpoint of the model (`nnc run --save W`).
        #[arg(long, value_name = "W")]
        weights: PathBuf,
        /// The conv layer (its name in `nnc summary`); optional when the model has one.
        #[arg(long)]
        layer: Option<String>,
        /// The model (default: the file's first that has the layer).
        #[arg(long)]
        model: Option<String>,
        /// One grey tile per input channel even when the layer has 3 input channels.
        #[arg(long)]
        per_channel: bool,
        #[command(flatten)]
        look: Look,
        #[command(flatten)]
        common: Common,
    },
    /// One input's feature maps after a layer (or after every layer with image-shaped output): one tile per
    /// channel, each scaled from its own minimum to its maximum.
    Activations {
        /// The `.nn` file.
        file: PathBuf,
        /// The safetensors checkpoint.
        #[arg(long, value_name = "W")]
        weights: PathBuf,
        /// The layer whose output to draw (default: every layer with a [N, H, W, C] output).
        #[arg(long)]
        layer: Option<String>,
        /// Which row: of the train block's data source (file order), or of the `--input` file.
        #[arg(long, default_value_t = 0)]
        index: usize,
        /// NAME=FILE: read the model's input NAME from a .npy (or .csv/.txt, as `nnc predict` does)
        /// instead of the train block's data.
        #[arg(long = "input", value_name = "NAME=FILE")]
        inputs: Vec<String>,
        /// The train block whose data to read (default: the first that trains the model).
        #[arg(long)]
        train: Option<String>,
        /// The model (default: the file's first that has the layer).
        #[arg(long)]
        model: Option<String>,
        #[command(flatten)]
        look: Look,
        #[command(flatten)]
        common: Common,
    },
    /// A train block's data source: its first items as an image grid, each labelled with its class label.
    Samples {
        /// The `.nn` file.
        file: PathBuf,
        /// The train block (default: the first).
        #[arg(long)]
        train: Option<String>,
        /// Rows evenly spaced over the source instead of the first ones (a file sorted by class then shows
        /// every class).
        #[arg(long)]
        spread: bool,
        /// How many items (at most the source's rows).
        #[arg(long, value_name = "K", default_value_t = 32, value_parser = clap::value_parser!(u64).range(1..))]
        count: u64,
        #[command(flatten)]
        look: Look,
        #[command(flatten)]
        common: Common,
    },
}

/// Options every `nnc show` takes.
#[derive(Args)]
pub struct Common {
    /// Where to write the picture: .svg or .png (default: the file's stem with `.model.svg`, `.filters.svg`…
    /// in the current directory).
    #[arg(long, value_name = "PATH")]
    out: Option<PathBuf>,
    /// Override a model parameter: --set hidden=256
    #[arg(long = "set", value_name = "NAME=VALUE")]
    set: Vec<String>,
    /// The project root: files the .nn file reads (`use`, data, `init = load`) must lie under it
    /// (default: the nearest directory upwards holding an `nnc.toml`, else the file's directory).
    #[arg(long, value_name = "DIR")]
    root: Option<PathBuf>,
}

/// How image grids look.
#[derive(Args)]
pub struct Look {
    /// Tiles per row (default: 12 for filters, as the workshop; 8 otherwise).
    #[arg(long, value_name = "C", value_parser = clap::value_parser!(u64).range(1..=1000))]
    columns: Option<u64>,
    /// Enlarge every tile Z times (default: about 64 pixels a tile).
    #[arg(long, value_name = "Z", value_parser = clap::value_parser!(u64).range(1..=64))]
    zoom: Option<u64>,
    /// Colours of one-channel tiles: viridis (matplotlib's default, the workshop's figures; the default for
    /// filters and activations) or gray (the default for samples).
    #[arg(long, value_enum)]
    colormap: Option<Colormap>,
}

/// Colours of one-channel tiles.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Colormap {
    Viridis,
    Gray,
}

/// The picture format, by the output path's extension.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Format {
    Svg,
    Png,
}

fn format_of(path: &Path) -> Result<Format, Failure> {
    match path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
        Some("svg") => Ok(Format::Svg),
        Some("png") => Ok(Format::Png),
        _ => Err(Failure::usage(format!("--out `{}`: the picture is written as .svg or .png", path.display()))),
    }
}

/// `nnc show …`.
pub fn run(what: What, color: bool) -> Result<(), Failure> {
    match what {
        What::Model { file, model, depth, common } => {
            let (a, out) = prepare(&file, &common, "model", color)?;
            if format_of(&out)? == Format::Png {
                return Err(Failure::usage(
                    "the model diagram is drawn as SVG only (its text needs a font, and nnc embeds none): \
                     use --out PATH.svg",
                ));
            }
            let models: Vec<&ModelInfo> = match &model {
                Some(n) => vec![find_model(&a, n)?],
                None => a.result.models.iter().filter(|m| m.file == FileId(0)).collect(),
            };
            if models.is_empty() {
                return Err(Failure::usage(format!("{} declares no model", file.display())));
            }
            write_output(&out, diagram::svg(&models, depth).as_bytes())
        }
        What::Filters { file, weights, layer, model, per_channel, look, common } => {
            let (a, out) = prepare(&file, &common, "filters", color)?;
            let format = format_of(&out)?;
            let m = model_with(&a, model.as_deref(), layer.as_deref())?;
            let (name, param) = maps::pick_conv(m, layer.as_deref())?;
            let kernel = load_weights(m, &weights)?.0.remove(&param);
            let kernel = kernel.ok_or_else(|| Failure::new(format!("the checkpoint has no `{param}`")))?;
            let grid = maps::filters(&name, &kernel, per_channel, &look)?;
            write_output(&out, &encode(&grid, format)?)
        }
        What::Activations { file, weights, layer, index, inputs, train, model, look, common } => {
            let (a, out) = prepare(&file, &common, "activations", color)?;
            let format = format_of(&out)?;
            let root = crate::project_root(&file, common.root.as_deref()).map_err(Failure::usage)?;
            let m = model_with(&a, model.as_deref(), layer.as_deref())?;
            let req =
                maps::ActivationRequest { layer: layer.as_deref(), index, inputs: &inputs, train: train.as_deref() };
            let grids = activations(&file, &a, m, &weights, &req, &root, &look)?;
            write_output(&out, &encode_many(&grids, format)?)
        }
        What::Samples { file, train, spread, count, look, common } => {
            let (a, out) = prepare(&file, &common, "samples", color)?;
            let format = format_of(&out)?;
            let root = crate::project_root(&file, common.root.as_deref()).map_err(Failure::usage)?;
            let info = crate::run::show_train(&a, train.as_deref(), None)?;
            let data = crate::run::block_data(&file, info, &root)?;
            let count = usize::try_from(count).unwrap_or(usize::MAX);
            let grid = maps::samples(info, &data.raw, count, spread, &look)?;
            write_output(&out, &encode(&grid, format)?)
        }
    }
}

/// Checks the file (diagnostics printed; errors stop) and decides the output path.
fn prepare(file: &Path, common: &Common, what: &str, color: bool) -> Result<(Analysis, PathBuf), Failure> {
    let out = match &common.out {
        Some(p) => p.clone(),
        None => {
            let stem = file.file_stem().map_or_else(|| "model".into(), |s| s.to_string_lossy().into_owned());
            PathBuf::from(format!("{stem}.{what}.svg"))
        }
    };
    format_of(&out)?;
    check_parent(&out)?;
    let root = crate::project_root(file, common.root.as_deref()).map_err(Failure::usage)?;
    let options = crate::run::options(crate::parse_sets(&common.set).map_err(Failure::usage)?);
    let a = crate::analyse_file(file, &options, &root).map_err(Failure::usage)?;
    crate::unknown_set_names(&options.overrides, &[&a]).map_err(Failure::usage)?;
    let diags = &a.result.diagnostics;
    if !diags.is_empty() {
        eprint!("{}", crate::render::human(&a.program, diags, color));
    }
    if diags.iter().any(|d| d.severity == nnc_syntax::Severity::Error) {
        return Err(Failure::new(format!("{} has errors; nothing drawn", file.display())));
    }
    Ok((a, out))
}

/// The output's directory must exist (checked before any work, so a typo costs no forward pass).
fn check_parent(out: &Path) -> Result<(), Failure> {
    let parent = out.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    if !parent.is_dir() {
        return Err(Failure::usage(format!(
            "--out `{}`: the directory `{}` does not exist",
            out.display(),
            parent.display()
        )));
    }
    Ok(())
}

/// Writes `bytes` to `out` through a temporary file in the same directory and a rename, so a viewer that
/// reloads the picture never reads half of it.
fn write_output(out: &Path, bytes: &[u8]) -> Result<(), Failure> {
    check_parent(out)?;
    let name = out.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = out.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    let fail = |e: std::io::Error| Failure::new(format!("cannot write `{}`: {e}", out.display()));
    std::fs::write(&tmp, bytes).map_err(fail)?;
    if let Err(e) = std::fs::rename(&tmp, out) {
        let _ = std::fs::remove_file(&tmp);
        return Err(fail(e));
    }
    println!("wrote {}", out.display());
    Ok(())
}

fn encode(grid: &crate::picture::Grid, format: Format) -> Result<Vec<u8>, Failure> {
    let fail = |e: crate::picture::PictureError| Failure::new(e.to_string());
    match format {
        Format::Svg => grid.to_svg().map(String::into_bytes).map_err(fail),
        Format::Png => grid.to_png().map_err(fail),
    }
}

/// Several grids in one picture, one under the other: SVGs nested in one SVG; PNGs decoded and stacked.
fn encode_many(grids: &[crate::picture::Grid], format: Format) -> Result<Vec<u8>, Failure> {
    if let [one] = grids {
        return encode(one, format);
    }
    let parts: Vec<Vec<u8>> = grids.iter().map(|g| encode(g, format)).collect::<Result<_, _>>()?;
    match format {
        Format::Svg => Ok(maps::stack_svgs(&parts).into_bytes()),
        Format::Png => maps::stack_pngs(&parts).map_err(Failure::new),
    }
}

fn find_model<'a>(a: &'a Analysis, name: &str) -> Result<&'a ModelInfo, Failure> {
    a.result.models.iter().find(|m| m.name == name).ok_or_else(|| {
        let names: Vec<&str> = a.result.models.iter().map(|m| m.name.as_str()).collect();
        Failure::usage(format!("no model `{name}` (models: {})", names.join(", ")))
    })
}

/// `--model`, else the root file's first model with a layer named `layer`, else its first model.
fn model_with<'a>(a: &'a Analysis, model: Option<&str>, layer: Option<&str>) -> Result<&'a ModelInfo, Failure> {
    if let Some(n) = model {
        return find_model(a, n);
    }
    let own: Vec<&ModelInfo> = a.result.models.iter().filter(|m| m.file == FileId(0)).collect();
    let has = |m: &&&ModelInfo| layer.is_some_and(|l| m.layers.iter().any(|r| r.name == l));
    own.iter().find(has).or(own.first()).copied().ok_or_else(|| Failure::usage("the file declares no model"))
}

/// A checkpoint's tensors by parameter name.
type Weights = BTreeMap<String, ndarray::ArrayD<f32>>;

/// The model's parameters from checkpoint `path`, which must hold exactly them (as for `nnc predict`), and
/// the dims the training data bound (saved with the checkpoint).
fn load_weights(m: &ModelInfo, path: &Path) -> Result<(Weights, Vec<(String, i64)>), Failure> {
    let outputs: Vec<(String, TRef)> =
        m.outputs.iter().filter_map(|(n, v)| Some((n.clone(), v.as_tensor()?.node?))).collect();
    let info = TrainInfo { graph: m.graph.clone(), ..TrainInfo::default() };
    load_weights_of(&info, &outputs, &m.name, path)
}

/// [`load_weights`] for the model as graph `info` instantiates it (a train block may pass the model other
/// parameters than its defaults), reading what `outputs` need.
fn load_weights_of(
    info: &TrainInfo,
    outputs: &[(String, TRef)],
    model: &str,
    path: &Path,
) -> Result<(Weights, Vec<(String, i64)>), Failure> {
    let typed = nnc_runtime::io::load_checkpoint_typed(path).map_err(|e| Failure::new(e.to_string()))?;
    let transforms = nnc_runtime::data::transform::Transforms::from_metadata(&typed.1)
        .map_err(|e| Failure::new(e.to_string()))?
        .unwrap_or_default();
    let dims: Vec<(String, i64)> = transforms.dims.iter().map(|(k, v)| (k.clone(), *v)).collect();
    let decls = Trainer::forward_params(info, outputs, 1, &dims).map_err(|e| Failure::new(e.to_string()))?;
    let expected: Vec<(String, Vec<usize>)> = decls.into_iter().map(|p| (p.name, p.shape)).collect();
    let (values, _) =
        nnc_runtime::checkpoint::fit_model(path, typed, model, &expected).map_err(|e| Failure::new(e.to_string()))?;
    Ok((values, dims))
}

/// The feature maps of `req`: the layers' outputs for one row, through the runtime's forward pass (any
/// tensor of the typed graph can be an output of `Trainer::predict`, so no extra runtime API is needed).
fn activations(
    file: &Path,
    a: &Analysis,
    m: &ModelInfo,
    weights: &Path,
    req: &maps::ActivationRequest,
    root: &Root,
    look: &Look,
) -> Result<Vec<crate::picture::Grid>, Failure> {
    let backend = nnc_runtime::train::Backend::Reference;
    let limit = nnc_runtime::memory::Limit::Machine;
    let fail = |e: nnc_runtime::train::TrainError| Failure::new(e.to_string());
    if req.inputs.is_empty() {
        // The train block's data, its `let`s feeding the model as in training; the block and the layer are
        // decided before the checkpoint and the data are read.
        let info = crate::run::show_train(a, req.train, Some(&m.name))?;
        let layers = maps::pick_layers(&info.graph, req.layer, &m.name)?;
        let values = load_weights_of(info, &info.model_outputs, &m.name, weights)?.0;
        let params = nnc_runtime::train::Params { values, trainable: BTreeMap::new() };
        let data = crate::run::block_data(file, info, root)?;
        let one = maps::row(&data.fed, req.index)?;
        let trainer = Trainer::new(info, None, data.dims).map_err(fail)?;
        let outs = trainer.predict_block(&params, &one, &layers, backend, limit).map_err(fail)?;
        return maps::feature_grids(&layers, &outs, req.index, look);
    }
    let layers = maps::pick_layers(&m.graph, req.layer, &m.name)?;
    let (values, ckpt_dims) = load_weights(m, weights)?;
    let params = nnc_runtime::train::Params { values, trainable: BTreeMap::new() };
    let typed = nnc_runtime::io::load_checkpoint_typed(weights).map_err(|e| Failure::new(e.to_string()))?;
    let pairs = req
        .inputs
        .iter()
        .map(|i| match i.split_once('=') {
            Some((k, v)) => Ok((k.to_string(), PathBuf::from(v))),
            None => Err(Failure::usage(format!("--input expects NAME=FILE, found `{i}`"))),
        })
        .collect::<Result<Vec<_>, _>>()?;
    let (ds, mut dims) = crate::predict_inputs::read(m, &typed.1, &pairs).map_err(Failure::new)?;
    dims.extend(ckpt_dims.into_iter().filter(|(k, _)| !dims.iter().any(|(d, _)| d == k)).collect::<Vec<_>>());
    let ds = crate::predict_inputs::to_dataset(ds);
    let one = maps::row(&ds, req.index)?;
    let info = TrainInfo { graph: m.graph.clone(), ..TrainInfo::default() };
    let outs = Trainer::predict_within(&info, &params, &one, &layers, &dims, backend, limit).map_err(fail)?;
    maps::feature_grids(&layers, &outs, req.index, look)
}
