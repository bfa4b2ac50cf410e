//! The `nnc` command line: a thin shell over the compiler crates.

// Unsafe code: one libc call that restores SIGPIPE's default action, commented where it is.

mod doc;
mod export;
mod fmt;
mod import;
mod picture;
mod predict_inputs;
mod render;
mod run;
mod show;

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use nnc_compiler::sandbox::{self, Access, Cap, Root};
use nnc_compiler::{Analysis, CheckOptions, FsLoader, SetValue, analyse};
use nnc_syntax::{Code, Diagnostic, FileId, Severity, Span};

#[derive(Parser)]
#[command(name = "nnc", version, about = "A language and compiler for neural-network definitions")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
pub(crate) enum Format {
    Human,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Parse and shape-check files: exit 0 when clean, 1 on errors, 2 on usage or I/O failure.
    Check {
        /// The `.nn` files to check (their `use`s are checked with them).
        files: Vec<PathBuf>,
        /// Human-readable diagnostics, or JSON with LSP-style ranges.
        #[arg(long, value_enum, default_value = "human")]
        format: Format,
        /// Override a model parameter: --set hidden=256
        #[arg(long = "set", value_name = "NAME=VALUE")]
        set: Vec<String>,
        /// The project root: files the .nn file reads (`use`, data, `init = load`) must lie under it
        /// (default: the nearest directory upwards holding an `nnc.toml`, else the file's directory).
        #[arg(long, value_name = "DIR")]
        root: Option<PathBuf>,
    },
    /// Print each model's layers, output shapes and parameter counts.
    Summary {
        /// The `.nn` file whose models to summarise.
        file: PathBuf,
        /// Only this model.
        #[arg(long)]
        model: Option<String>,
        /// The table, or JSON (`{"version": 1, "models": [...]}`).
        #[arg(long, value_enum, default_value = "human")]
        format: Format,
        /// Override a model parameter: --set hidden=256
        #[arg(long = "set", value_name = "NAME=VALUE")]
        set: Vec<String>,
        /// The project root: files the .nn file reads (`use`, data, `init = load`) must lie under it
        /// (default: the nearest directory upwards holding an `nnc.toml`, else the file's directory).
        #[arg(long, value_name = "DIR")]
        root: Option<PathBuf>,
    },
    /// Explain a diagnostic code (e.g. `nnc explain E0304`); without a code, list them all.
    Explain {
        /// A code such as E0302 or W0001.
        code: Option<String>,
    },
    /// Print a page of the manual generated from nnc's own tables, as Markdown: layers, stdlib,
    /// callables, diagnostics or cli (the book under docs/ commits them; a test keeps them current).
    Doc {
        /// layers | stdlib | callables | diagnostics | cli
        page: String,
    },
    /// Language server on stdio (LSP), for editors.
    Lsp,
    /// Format files in place in the canonical layout; `--check` only lists files that would change.
    Fmt {
        /// The `.nn` files to format in place.
        files: Vec<PathBuf>,
        /// Change nothing: list the files that would change and exit 1 if there are any.
        #[arg(long)]
        check: bool,
    },
    /// Train: run a `train` block of FILE with a progress bar and per-epoch metrics.
    Run {
        /// The `.nn` file holding the train block.
        file: PathBuf,
        /// The train block to run (default: the first).
        #[arg(long)]
        train: Option<String>,
        /// Train for this many epochs instead of the train block's `epochs` (at least 1, as there).
        #[arg(long, value_parser = epochs_arg)]
        epochs: Option<usize>,
        /// At most K batches per epoch (a quick end-to-end run).
        #[arg(long, value_name = "K", value_parser = clap::value_parser!(u64).range(1..))]
        steps: Option<u64>,
        /// Override a model parameter: --set hidden=256
        #[arg(long = "set", value_name = "NAME=VALUE")]
        set: Vec<String>,
        /// Start from the weights of a safetensors checkpoint.
        #[arg(long, value_name = "W")]
        init: Option<PathBuf>,
        /// Save the weights (atomically) after every epoch.
        #[arg(long, value_name = "W")]
        save: Option<PathBuf>,
        /// Continue the run saved in checkpoint W (weights, optimizer state, epoch) up to the
        /// train block's epochs; saves back to W unless --save says otherwise.
        #[arg(long, value_name = "W", conflicts_with = "init")]
        resume: Option<PathBuf>,
        /// The seed of initialisation, splits, shuffles and dropout (default: the train block's `seed`, else 0).
        #[arg(long)]
        seed: Option<u64>,
        // `help` rather than a doc comment: rustdoc would read `<train>` as an HTML tag.
        #[arg(long, help = "Exactly this directory for the run's outputs (default: a new runs/<train>/<N>/)")]
        out: Option<PathBuf>,
        /// Instead of training: run K steps on the first K batches in file
        /// order and write the weights, batches, losses and gradients to
        /// `--dump DIR` (for comparisons with other frameworks).
        #[arg(long, value_name = "K", requires = "dump")]
        dump_steps: Option<usize>,
        /// The directory `--dump-steps` writes to.
        #[arg(long, value_name = "DIR")]
        dump: Option<PathBuf>,
        /// The executor: fused Cranelift kernels (jit), or the op-by-op reference executor that is its oracle.
        #[arg(long, value_enum, default_value_t = BackendArg::from_env())]
        backend: BackendArg,
        #[command(flatten)]
        memory: MemoryArgs,
        /// The project root: files the .nn file reads (`use`, data, `init = load`) must lie under it
        /// (default: the nearest directory upwards holding an `nnc.toml`, else the file's directory).
        #[arg(long, value_name = "DIR")]
        root: Option<PathBuf>,
    },
    /// Inference: run a model's first output on inputs from .npy, .csv/.tsv or .txt files.
    Predict {
        /// The `.nn` file holding the model.
        file: PathBuf,
        /// The model to run (default: the file's first).
        #[arg(long)]
        model: Option<String>,
        /// The safetensors checkpoint holding exactly the model's parameters.
        #[arg(long, value_name = "W")]
        weights: PathBuf,
        /// NAME=FILE, once per input: a .npy of values; a .txt with one sample per line (token ids by the
        /// vocabulary saved with the checkpoint); a .csv/.tsv with one sample per row (the training columns).
        #[arg(long = "input", value_name = "NAME=FILE")]
        inputs: Vec<String>,
        /// Where to write the first output, as a .npy of float32 with one row per sample.
        #[arg(long, value_name = "OUT.npy")]
        output: PathBuf,
        /// Override a model parameter: --set hidden=256
        #[arg(long = "set", value_name = "NAME=VALUE")]
        set: Vec<String>,
        /// The executor: fused Cranelift kernels (jit), or the op-by-op reference executor.
        #[arg(long, value_enum, default_value_t = BackendArg::from_env())]
        backend: BackendArg,
        #[command(flatten)]
        memory: MemoryArgs,
        /// The project root: files the .nn file reads (`use`, data, `init = load`) must lie under it
        /// (default: the nearest directory upwards holding an `nnc.toml`, else the file's directory).
        #[arg(long, value_name = "DIR")]
        root: Option<PathBuf>,
    },
    /// Pictures: a model's architecture diagram, a conv layer's filters, one input's feature maps, or a data
    /// source's samples, as SVG or PNG by the output's extension.
    Show {
        #[command(subcommand)]
        what: show::What,
    },
    /// Write a model for another framework: `--to keras DIR` writes a Keras 3 functional model (model.py), its
    /// weights, train.py (data-parallel on every device) and a README; `--to onnx OUT.onnx` writes the
    /// inference graph (opset 18, batch dim `N` symbolic) for ONNX Runtime and other servers.
    Export(export::ExportArgs),
    /// Print the graph IR (canonical text) of a train step or a model.
    Ir {
        /// The `.nn` file.
        file: PathBuf,
        /// The train block whose step to print (default: the first; a file without one prints its model).
        #[arg(long)]
        train: Option<String>,
        /// Batch size to bind N to.
        #[arg(long, default_value = "2")]
        batch: usize,
        /// Include the backward pass (gradients).
        #[arg(long)]
        backward: bool,
        /// Print the compiled program instead: fused kernels and library ops, in run order.
        #[arg(long)]
        fused: bool,
        /// The project root: files the .nn file reads (`use`, data, `init = load`) must lie under it
        /// (default: the nearest directory upwards holding an `nnc.toml`, else the file's directory).
        #[arg(long, value_name = "DIR")]
        root: Option<PathBuf>,
    },
    /// Translate a Keras 3 model (a `.keras` file or a `model.to_json()` config) to a `.nn` file, or list
    /// the layers and options that have no nnc counterpart (then nothing is written, exit 1).
    Import {
        /// The `.keras` archive or Keras JSON config.
        file: PathBuf,
        /// Where to write the `.nn` file (default: standard output).
        #[arg(short = 'o', long = "output", value_name = "OUT.nn")]
        output: Option<PathBuf>,
    },
}

/// `nnc import`: prints the `.nn` text or writes it to `output`.
fn import_cmd(file: &Path, output: Option<&Path>) -> ExitCode {
    match import::run(file, output) {
        Ok(Some(text)) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Ok(None) => {
            println!("wrote {}", output.map(|o| o.display().to_string()).unwrap_or_default());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}

/// The memory check of `run` and `predict`: before allocating, the
/// parameters, optimizer state, gradients and one step's activations are
/// estimated and compared with the machine's available memory.
#[derive(clap::Args)]
struct MemoryArgs {
    /// Refuse runs estimated above SIZE (e.g. 800M, 8G, 1.5GB, 2GiB) instead
    /// of the machine's available memory.
    #[arg(long, value_name = "SIZE", value_parser = parse_memory_size)]
    max_memory: Option<u64>,
    /// Skip the memory estimate (a run may then fail when allocation does).
    #[arg(long, conflicts_with = "max_memory")]
    no_memory_check: bool,
}

impl MemoryArgs {
    fn limit(&self) -> nnc_runtime::memory::Limit {
        use nnc_runtime::memory::Limit;
        match (self.no_memory_check, self.max_memory) {
            (true, _) => Limit::Off,
            (false, Some(b)) => Limit::Bytes(b),
            (false, None) => Limit::Machine,
        }
    }
}

fn parse_memory_size(s: &str) -> Result<u64, String> {
    nnc_runtime::memory::parse_size(s)
}

/// `--backend`: jit (default, or `NNC_BACKEND`) or reference.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum BackendArg {
    Jit,
    Reference,
}

impl BackendArg {
    fn from_env() -> BackendArg {
        match nnc_runtime::train::Backend::from_env() {
            nnc_runtime::train::Backend::Jit => BackendArg::Jit,
            nnc_runtime::train::Backend::Reference => BackendArg::Reference,
        }
    }
}

impl From<BackendArg> for nnc_runtime::train::Backend {
    fn from(b: BackendArg) -> Self {
        match b {
            BackendArg::Jit => nnc_runtime::train::Backend::Jit,
            BackendArg::Reference => nnc_runtime::train::Backend::Reference,
        }
    }
}

fn main() -> ExitCode {
    // `nnc run … | head`: when the reader goes away, stop quietly as other
    // command-line tools do, instead of panicking on the failed write. Rust
    // ignores SIGPIPE by default; restore the default action.
    #[cfg(unix)]
    // SAFETY: called before any other thread exists; SIG_DFL is a valid handler.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    // Deeply nested or very long generated models recurse deeply; give the
    // work a large stack instead of risking an overflow.
    let worker = std::thread::Builder::new().stack_size(512 << 20).spawn(|| run(Cli::parse()));
    match worker.map(|h| h.join()) {
        Ok(Ok(code)) => code,
        _ => {
            eprintln!("error: internal failure (please report this with the input file)");
            ExitCode::from(2)
        }
    }
}

fn parse_sets(sets: &[String]) -> Result<Vec<(String, SetValue)>, String> {
    sets.iter()
        .map(|s| {
            let (k, v) = s.split_once('=').ok_or_else(|| format!("--set expects NAME=VALUE, found `{s}`"))?;
            let (k, v) = (k.trim(), v.trim());
            if let Ok(i) = v.parse::<i64>() {
                return Ok((k.to_string(), SetValue::Int(i)));
            }
            let digits = v.strip_prefix(['-', '+']).unwrap_or(v);
            if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(format!("--set {k}: `{v}` does not fit in a 64-bit integer"));
            }
            match v.parse::<f64>() {
                Ok(f) if f.is_finite() => Ok((k.to_string(), SetValue::Float(f))),
                _ => Err(format!("--set {k}: `{v}` is not a finite number")),
            }
        })
        .collect()
}

/// Names given with `--set` must be parameters of some model of the files
/// checked (their `use`s included); a misspelt name is an error, not ignored.
fn unknown_set_names<'a>(sets: &'a [(String, SetValue)], analyses: &[&Analysis]) -> Result<(), String> {
    let mut params: Vec<&str> = Vec::new();
    for a in analyses {
        for f in a.program.files.iter().filter(|f| !f.is_std) {
            for item in &f.ast.items {
                if let nnc_syntax::ast::Item::Model(m) = item {
                    params.extend(m.params.iter().map(|p| p.name.name.as_str()));
                }
            }
        }
    }
    params.sort_unstable();
    params.dedup();
    let unknown: Vec<&'a str> = sets.iter().map(|(k, _)| k.as_str()).filter(|k| !params.contains(k)).collect();
    let Some(first) = unknown.first() else { return Ok(()) };
    let mut msg = format!("--set {first}: no model has a parameter `{first}`");
    match nnc_compiler::layers::suggest(first, params.iter().copied()) {
        Some(s) => msg.push_str(&format!("; did you mean `{s}`?")),
        None if params.is_empty() => msg.push_str(" (the models take no parameters)"),
        None => msg.push_str(&format!(" (parameters: {})", params.join(", "))),
    }
    Err(msg)
}

/// The project root for the program whose root file is `file`: `--root`,
/// else [`Root::for_file`].
pub(crate) fn project_root(file: &Path, root: Option<&Path>) -> Result<Root, String> {
    match root {
        Some(dir) => Root::new(dir).map_err(|e| format!("--root: {e}")),
        None => Ok(Root::for_file(file)),
    }
}

/// Reads and checks one file; what it `use`s is read only under `root`.
/// I/O problems are returned as messages.
pub(crate) fn analyse_file(path: &Path, options: &CheckOptions, root: &Root) -> Result<Analysis, String> {
    // The root file is the user's own pointing: not confined, but bounded.
    let bytes = sandbox::read(path, &Access::User, Cap::Source).map_err(|e| match e {
        sandbox::FileError::Io { message, .. } => format!("cannot read `{}`: {message}", path.display()),
        refused => refused.to_string(),
    })?;
    let name = path.display().to_string();
    let loader = FsLoader::new(root);
    match String::from_utf8(bytes) {
        Ok(text) => Ok(analyse(&name, Some(path), text, &loader, options)),
        Err(e) => {
            // Report invalid UTF-8 as a diagnostic on the lossy text.
            let valid_up_to = e.utf8_error().valid_up_to();
            let text = String::from_utf8_lossy(e.as_bytes()).into_owned();
            let mut a = analyse(&name, Some(path), String::new(), &loader, options);
            a.program.files[0].text = text;
            a.program.files[0].lines = nnc_syntax::LineIndex::new(&a.program.files[0].text);
            let at = a.program.files[0]
                .text
                .char_indices()
                .nth(text_char_index(&a.program.files[0].text, valid_up_to))
                .map_or(0, |(i, _)| i);
            let end = a.program.files[0].text[at..].chars().next().map_or(at, |c| at + c.len_utf8());
            a.result.diagnostics = vec![
                Diagnostic::new(Code::InvalidSource, FileId(0), Span::new(at, end), "file is not valid UTF-8")
                    .with_label(format!("invalid byte at offset {valid_up_to}")),
            ];
            Ok(a)
        }
    }
}

/// Checks a file for `run`/`predict`/`ir`: diagnostics are printed; `None`
/// when there are errors (or the file cannot be read).
fn checked(file: &Path, set: &[String], root: &Root, color: bool) -> Option<Analysis> {
    let options = match parse_sets(set) {
        Ok(o) => run::options(o),
        Err(e) => {
            eprintln!("error: {e}");
            return None;
        }
    };
    let a = match analyse_file(file, &options, root) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: {e}");
            return None;
        }
    };
    if let Err(e) = unknown_set_names(&options.overrides, &[&a]) {
        eprintln!("error: {e}");
        return None;
    }
    let diags = &a.result.diagnostics;
    if !diags.is_empty() {
        eprint!("{}", render::human(&a.program, diags, color));
    }
    if diags.iter().any(|d| d.severity == Severity::Error) {
        return None;
    }
    Some(a)
}

/// [`project_root`], printing the error (a usage error: exit 2) on failure.
fn root_or_exit(file: &Path, root: Option<&Path>) -> Option<Root> {
    project_root(file, root).map_err(|e| eprintln!("error: {e}")).ok()
}

fn finish(r: Result<(), run::Failure>) -> ExitCode {
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("error: {}", f.message);
            ExitCode::from(if f.usage { 2 } else { 1 })
        }
    }
}

fn text_char_index(text: &str, byte: usize) -> usize {
    text.char_indices().take_while(|(i, _)| *i < byte).count()
}

/// `nnc check FILE…`: diagnostics of every file; exit 1 on an error, 2 when a file cannot be read.
fn check(files: &[PathBuf], format: Format, set: &[String], root: Option<&Path>, color: bool) -> ExitCode {
    if files.is_empty() {
        eprintln!("error: nnc check needs at least one FILE");
        return ExitCode::from(2);
    }
    let options = match parse_sets(set) {
        Ok(o) => CheckOptions { overrides: o, ..CheckOptions::default() },
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let mut any_error = false;
    let mut io_error = false;
    let mut json_diags = Vec::new();
    let mut analyses = Vec::new();
    for path in files {
        match project_root(path, root).and_then(|r| analyse_file(path, &options, &r)) {
            Ok(a) => analyses.push(a),
            Err(e) => {
                eprintln!("error: {e}");
                io_error = true;
            }
        }
    }
    let all: Vec<&Analysis> = analyses.iter().collect();
    if let (false, Err(e)) = (all.is_empty(), unknown_set_names(&options.overrides, &all)) {
        eprintln!("error: {e}");
        return ExitCode::from(2);
    }
    for a in &analyses {
        let diags = &a.result.diagnostics;
        any_error |= diags.iter().any(|d| d.severity == Severity::Error);
        match format {
            Format::Human => {
                eprint!("{}", render::human(&a.program, diags, color));
            }
            Format::Json => json_diags.extend(diags.iter().map(|d| render::diagnostic_json(&a.program, d))),
        }
    }
    if format == Format::Json {
        let doc = serde_json::json!({"version": 1, "diagnostics": json_diags});
        let _ = writeln!(std::io::stdout(), "{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
    }
    if io_error {
        ExitCode::from(2)
    } else if any_error {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// `nnc summary FILE [--model M]`: the layers, shapes and parameter counts of the file's models.
fn summary(
    file: &Path,
    model: Option<&str>,
    format: Format,
    set: &[String],
    root: Option<&Path>,
    color: bool,
) -> ExitCode {
    let options = match parse_sets(set) {
        Ok(o) => CheckOptions { overrides: o, ..CheckOptions::default() },
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let a = match project_root(file, root).and_then(|r| analyse_file(file, &options, &r)) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = unknown_set_names(&options.overrides, &[&a]) {
        eprintln!("error: {e}");
        return ExitCode::from(2);
    }
    let diags = &a.result.diagnostics;
    let has_errors = diags.iter().any(|d| d.severity == Severity::Error);
    if !diags.is_empty() {
        eprint!("{}", render::human(&a.program, diags, color));
    }
    let models: Vec<&nnc_compiler::ModelInfo> =
        a.result.models.iter().filter(|m| m.file == FileId(0) && model.as_ref().is_none_or(|n| *n == m.name)).collect();
    if let Some(n) = &model
        && models.is_empty()
    {
        let names: Vec<&str> = a.result.models.iter().map(|m| m.name.as_str()).collect();
        eprintln!("error: no model `{n}` in {} (models: {})", file.display(), names.join(", "));
        return ExitCode::from(2);
    }
    match format {
        Format::Human => {
            let text: Vec<String> = models.iter().map(|m| nnc_compiler::summary::render(m)).collect();
            print!("{}", text.join("\n"));
        }
        Format::Json => {
            println!("{}", serde_json::to_string_pretty(&render::summary_json(&models)).unwrap_or_default());
        }
    }
    if has_errors { ExitCode::from(1) } else { ExitCode::SUCCESS }
}

fn run(cli: Cli) -> ExitCode {
    let color = std::io::stderr().is_terminal();
    match cli.command {
        Command::Check { files, format, set, root } => check(&files, format, &set, root.as_deref(), color),
        Command::Summary { file, model, format, set, root } => {
            summary(&file, model.as_deref(), format, &set, root.as_deref(), color)
        }
        Command::Run {
            file,
            train,
            epochs,
            steps,
            set,
            init,
            save,
            resume,
            seed,
            out,
            dump_steps,
            dump,
            backend,
            memory,
            root,
        } => {
            let Some(root) = root_or_exit(&file, root.as_deref()) else { return ExitCode::from(2) };
            let Some(a) = checked(&file, &set, &root, color) else { return ExitCode::from(1) };
            let options = run::options(parse_sets(&set).unwrap_or_default());
            let steps = steps.map(|k| k as usize);
            let dump = dump.zip(dump_steps);
            let memory = memory.limit();
            let backend = backend.into();
            let args =
                run::RunArgs { train, epochs, steps, seed, init, save, resume, out, dump, backend, memory, root };
            finish(run::run(&file, &a, &options, &args))
        }
        Command::Predict { file, model, weights, inputs, output, set, backend, memory, root } => {
            let Some(root) = root_or_exit(&file, root.as_deref()) else { return ExitCode::from(2) };
            let Some(a) = checked(&file, &set, &root, color) else { return ExitCode::from(1) };
            let mut pairs = Vec::new();
            for i in &inputs {
                match i.split_once('=') {
                    Some((k, v)) => pairs.push((k.to_string(), PathBuf::from(v))),
                    None => {
                        eprintln!("error: --input expects NAME=FILE (.npy, .txt or .csv), found `{i}`");
                        return ExitCode::from(2);
                    }
                }
            }
            finish(run::predict(&a, model.as_deref(), &weights, &pairs, &output, backend.into(), memory.limit()))
        }
        Command::Export(args) => export::run(&args, color),
        Command::Ir { file, train, batch, backward, fused, root } => {
            let Some(root) = root_or_exit(&file, root.as_deref()) else { return ExitCode::from(2) };
            let Some(a) = checked(&file, &[], &root, color) else { return ExitCode::from(1) };
            match run::ir(&a, train.as_deref(), batch.max(1), backward, fused) {
                Ok(text) => {
                    print!("{text}");
                    ExitCode::SUCCESS
                }
                Err(f) => finish(Err(f)),
            }
        }
        Command::Show { what } => finish(show::run(what, color)),
        Command::Import { file, output } => import_cmd(&file, output.as_deref()),
        Command::Lsp => match nnc_lsp::run_stdio() {
            Ok(nnc_lsp::Exit::Clean) => ExitCode::SUCCESS,
            Ok(nnc_lsp::Exit::Abrupt) => ExitCode::from(1),
            Err(e) => {
                eprintln!("error: nnc lsp: {e}");
                ExitCode::from(1)
            }
        },
        Command::Fmt { files, check } => fmt::run(&files, check),
        Command::Doc { page } => match doc::page(&page, &<Cli as clap::CommandFactory>::command()) {
            Ok(markdown) => {
                print!("{markdown}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: nnc doc: {e}");
                ExitCode::from(2)
            }
        },
        Command::Explain { code } => match code {
            None => {
                for c in Code::ALL {
                    println!("{}  {}", c.as_str(), c.title());
                }
                ExitCode::SUCCESS
            }
            Some(code) => match Code::parse(&code) {
                Some(c) => {
                    println!("{} ({}): {}\n", c.as_str(), c.severity().as_str(), c.title());
                    println!("{}", c.explanation());
                    println!("\nManual: docs/src/{} (`mdbook build docs` renders the book)", c.manual_page());
                    ExitCode::SUCCESS
                }
                None => {
                    eprintln!("error: unknown code `{code}`; `nnc explain` lists them");
                    ExitCode::from(2)
                }
            },
        },
    }
}

/// `--epochs N`: an integer ≥ 1, with the words of the checker's E0202 for `epochs = 0` in a
/// train block (clap prints it and exits with 2, as for any invalid argument).
fn epochs_arg(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!("`epochs` must be an integer ≥ 1, found {s}")),
    }
}
