//! Loading a program: the root file and everything it `use`s.
//!
//! The compiler does no IO itself: file contents come through a [`Loader`]
//! supplied by the caller (the CLI reads the disk, the language server its
//! open buffers). The standard library is embedded in the binary.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use nnc_syntax::ast::{self, Item, UseTarget};
use nnc_syntax::{Code, Diagnostic, FileId, LineIndex};

use crate::sandbox::{self, Access, Cap, FileError, Root};

/// Why a file could not be read.
#[derive(Clone, Debug, PartialEq)]
pub enum LoadError {
    /// The file does not exist.
    NotFound,
    /// The file is not UTF-8.
    InvalidUtf8,
    /// Another IO error, with the operating system's message.
    Io(String),
    /// Refused without reading: outside the project root, not a regular
    /// file, or over the size cap ([`crate::sandbox`]).
    Refused(FileError),
}

/// How `use`d files and data files are read: the file system (CLI), or open editor buffers first (language server).
pub trait Loader {
    /// The text of the file at `path`, resolved by the caller relative to the file that names it.
    fn load(&self, path: &Path) -> Result<String, LoadError>;
    /// Whether a data file (of a `train` data source) could be read: it
    /// exists, and the loader would let the run read it. Loaders that cannot
    /// tell say yes, so nothing is reported.
    fn data_file(&self, _path: &Path) -> Result<(), LoadError> {
        Ok(())
    }
}

/// Reads files from disk, under a project root and within the size caps.
pub struct FsLoader {
    access: Access,
}

impl FsLoader {
    /// Reads only under `root`.
    pub fn new(root: &Root) -> FsLoader {
        FsLoader { access: Access::root(root) }
    }

    /// Reads only under the default root of the program whose root file is
    /// `file` ([`Root::for_file`]).
    pub fn for_file(file: &Path) -> FsLoader {
        FsLoader::new(&Root::for_file(file))
    }
}

impl Loader for FsLoader {
    fn load(&self, path: &Path) -> Result<String, LoadError> {
        let bytes = sandbox::read(path, &self.access, Cap::Source).map_err(load_error)?;
        String::from_utf8(bytes).map_err(|_| LoadError::InvalidUtf8)
    }
    fn data_file(&self, path: &Path) -> Result<(), LoadError> {
        self.access.check(path).map_err(LoadError::Refused)?;
        match std::fs::metadata(path) {
            Ok(m) if m.is_file() => Ok(()),
            Ok(m) => Err(LoadError::Refused(FileError::NotRegular {
                path: path.to_path_buf(),
                kind: sandbox::kind_of(m.file_type()),
            })),
            Err(e) => {
                Err(load_error(FileError::Io { path: path.to_path_buf(), kind: e.kind(), message: e.to_string() }))
            }
        }
    }
}

fn load_error(e: FileError) -> LoadError {
    match e {
        FileError::Io { kind: std::io::ErrorKind::NotFound, .. } => LoadError::NotFound,
        FileError::Io { message, .. } => LoadError::Io(message),
        refused => LoadError::Refused(refused),
    }
}

/// The standard library modules, embedded (`use std.blocks`).
pub const STDLIB: &[(&str, &str)] = &[("blocks", include_str!("../../stdlib/blocks.nn"))];

/// One loaded source file.
pub struct SourceFile {
    /// Its id; `Program::files[id]` is this file.
    pub id: FileId,
    /// The name shown in diagnostics (the path as given, or `std/blocks.nn`).
    pub name: String,
    /// The resolved path; `None` for embedded standard library modules.
    pub path: Option<PathBuf>,
    /// Its text.
    pub text: String,
    /// Its syntax tree.
    pub ast: ast::File,
    /// Line starts of `text`, for positions in diagnostics and the language server.
    pub lines: LineIndex,
    /// Whether it is an embedded standard library module (`use std.…`).
    pub is_std: bool,
}

/// A root file and every file it `use`s (transitively), parsed.
pub struct Program {
    /// The files; the root is first, and `files[i].id == FileId(i)`.
    pub files: Vec<SourceFile>,
    /// Syntax and loading diagnostics.
    pub diagnostics: Vec<Diagnostic>,
}

impl Program {
    /// The file with id `id` (panics if it is not of this program).
    pub fn file(&self, id: FileId) -> &SourceFile {
        &self.files[id.0 as usize]
    }
    /// The root file (the one given to the loader first).
    pub fn root(&self) -> &SourceFile {
        &self.files[0]
    }
}

/// Parses `text` (the root file, named `name`, at `path` if on disk) and
/// loads its `use`s transitively. Never fails: problems are diagnostics.
pub fn load(name: &str, path: Option<&Path>, text: String, loader: &dyn Loader) -> Program {
    let mut program = Program { files: Vec::new(), diagnostics: Vec::new() };
    let mut by_key: HashMap<String, FileId> = HashMap::new();
    let root = add_file(&mut program, name.to_string(), path.map(Path::to_path_buf), text, false);
    by_key.insert(key_of(path, name), root);
    // Depth-first over `use`s, with the current chain kept for cycle reports.
    let mut chain = vec![root];
    visit(&mut program, root, loader, &mut by_key, &mut chain);
    program
}

fn key_of(path: Option<&Path>, name: &str) -> String {
    match path {
        Some(p) => std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf()).display().to_string(),
        None => name.to_string(),
    }
}

fn add_file(program: &mut Program, name: String, path: Option<PathBuf>, text: String, is_std: bool) -> FileId {
    let id = FileId(program.files.len() as u32);
    let (ast, diags) = nnc_syntax::parse(&text, id);
    program.diagnostics.extend(diags);
    let lines = LineIndex::new(&text);
    program.files.push(SourceFile { id, name, path, text, ast, lines, is_std });
    id
}

fn visit(
    program: &mut Program,
    file: FileId,
    loader: &dyn Loader,
    by_key: &mut HashMap<String, FileId>,
    chain: &mut Vec<FileId>,
) {
    let uses: Vec<ast::UseDecl> = program.files[file.0 as usize]
        .ast
        .items
        .iter()
        .filter_map(|i| match i {
            Item::Use(u) => Some(u.clone()),
            _ => None,
        })
        .collect();
    for u in uses {
        let (key, name, path, text, is_std, span) = match &u.target {
            UseTarget::Module(parts) => {
                let dotted: Vec<&str> = parts.iter().map(|p| p.name.as_str()).collect();
                let module = match dotted.as_slice() {
                    ["std", m] => STDLIB.iter().find(|(n, _)| n == m),
                    _ => None,
                };
                let Some((m, src)) = module else {
                    let known: Vec<String> = STDLIB.iter().map(|(n, _)| format!("std.{n}")).collect();
                    program.diagnostics.push(
                        Diagnostic::new(Code::UseNotFound, file, u.span, format!("no module `{}`", dotted.join(".")))
                            .with_label("not a standard library module")
                            .with_note(format!("the standard library has: {}", known.join(", "))),
                    );
                    continue;
                };
                (format!("std:{m}"), format!("std/{m}.nn"), None, Ok(src.to_string()), true, u.span)
            }
            UseTarget::File { path: rel, span } => {
                let base = program.files[file.0 as usize].path.as_ref().and_then(|p| p.parent().map(Path::to_path_buf));
                let full = base.map_or_else(|| PathBuf::from(rel), |b| b.join(rel));
                let key = key_of(Some(&full), rel);
                let text = if by_key.contains_key(&key) { Ok(String::new()) } else { loader.load(&full) };
                (key, full.display().to_string(), Some(full), text, false, *span)
            }
        };
        if let Some(&existing) = by_key.get(&key) {
            if chain.contains(&existing) {
                let cycle: Vec<String> = chain
                    .iter()
                    .skip_while(|f| **f != existing)
                    .map(|f| program.files[f.0 as usize].name.clone())
                    .chain(std::iter::once(name.clone()))
                    .collect();
                program.diagnostics.push(
                    Diagnostic::new(Code::UseCycle, file, span, "`use` cycle")
                        .with_label(format!("`{name}` is already being loaded"))
                        .with_note(format!("cycle: {}", cycle.join(" → "))),
                );
            }
            continue;
        }
        match text {
            Ok(text) => {
                let id = add_file(program, name, path, text, is_std);
                by_key.insert(key, id);
                chain.push(id);
                visit(program, id, loader, by_key, chain);
                chain.pop();
            }
            Err(e) => {
                program.diagnostics.push(use_error(e, &name, file, span));
            }
        }
    }
}

/// The diagnostic for a `use` that could not be loaded. A refused file is
/// named, never quoted: it was not read.
fn use_error(e: LoadError, name: &str, file: FileId, span: nnc_syntax::Span) -> Diagnostic {
    let (code, msg, label) = match e {
        LoadError::NotFound => {
            let label = "no such file (paths are relative to this file)".to_string();
            (Code::UseNotFound, format!("cannot find `{name}`"), label)
        }
        LoadError::InvalidUtf8 => {
            (Code::UseNotFound, format!("`{name}` is not valid UTF-8"), "this file cannot be read as text".to_string())
        }
        LoadError::Io(err) => (Code::UseNotFound, format!("cannot read `{name}`"), err),
        LoadError::Refused(refused) => {
            let code = refused.code().unwrap_or(Code::UseNotFound);
            let mut d =
                Diagnostic::new(code, file, span, format!("`{name}` is {}", refused.reason())).with_label("not read");
            if let Some(help) = refused.help() {
                d = d.with_help(help);
            }
            return d;
        }
    };
    Diagnostic::new(code, file, span, msg).with_label(label)
}
