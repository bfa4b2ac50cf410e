//! Open documents, the loader that prefers them over the disk, and the
//! analyses of open documents (computed lazily, dropped when a document they
//! read changes).

use std::cell::OnceCell;
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use lsp_types::Uri;
use nnc_compiler::sandbox::{Access, Root};
use nnc_compiler::{Analysis, CheckOptions, FsLoader, LoadError, Loader, analyse};
use nnc_syntax::{FileId, LineIndex};

use crate::nav::Index;
use crate::support::SupportFiles;
use crate::uri;

/// A document the editor has open: its text is the truth, not the disk.
pub struct Doc {
    pub uri: Uri,
    pub version: i32,
    pub text: String,
    pub lines: LineIndex,
    /// Its path, for `file:` URIs.
    pub path: Option<PathBuf>,
}

/// An analysis of one open document as the root of a program.
pub struct Cached {
    pub analysis: Analysis,
    /// Every user file it read (normalised and canonical names), to know
    /// when an edit elsewhere makes it stale.
    pub deps: Vec<PathBuf>,
    pub index: OnceCell<Index>,
}

impl Cached {
    pub fn index(&self) -> &Index {
        self.index.get_or_init(|| Index::build(&self.analysis.program))
    }
}

#[derive(Default)]
pub struct State {
    pub docs: HashMap<Uri, Doc>,
    /// Open documents by every name of their path.
    by_path: HashMap<PathBuf, Uri>,
    cache: HashMap<Uri, Cached>,
    /// Open documents whose diagnostics must be published again.
    pub stale: BTreeSet<Uri>,
    pub support: Option<SupportFiles>,
    /// The workspace folder (`initialize`'s first workspace folder, else its
    /// `rootUri`): the project root of every document. Without one, each
    /// document's default root ([`Root::for_file`]).
    pub workspace: Option<Root>,
}

/// Reads open documents from the editor's buffers and everything else
/// from disk, so a `use`d file being edited is checked as the user sees it.
/// Either way only under the project root: a file outside it is a
/// diagnostic, and is not read.
pub struct OverlayLoader<'a> {
    state: &'a State,
    access: Access,
    disk: FsLoader,
}

impl Loader for OverlayLoader<'_> {
    fn load(&self, path: &Path) -> Result<String, LoadError> {
        self.access.check(path).map_err(LoadError::Refused)?;
        match self.state.open_at(path) {
            Some(doc) => Ok(doc.text.clone()),
            None => self.disk.load(path),
        }
    }
    fn data_file(&self, path: &Path) -> Result<(), LoadError> {
        self.access.check(path).map_err(LoadError::Refused)?;
        if self.state.open_at(path).is_some() { Ok(()) } else { self.disk.data_file(path) }
    }
}

impl State {
    pub fn open_at(&self, path: &Path) -> Option<&Doc> {
        uri::keys(path).iter().find_map(|k| self.by_path.get(k)).and_then(|u| self.docs.get(u))
    }

    pub fn open(&mut self, uri: Uri, version: i32, text: String) {
        let path = uri::to_path(&uri);
        if let Some(p) = &path {
            for k in uri::keys(p) {
                self.by_path.insert(k, uri.clone());
            }
        }
        let lines = LineIndex::new(&text);
        self.docs.insert(uri.clone(), Doc { uri: uri.clone(), version, text, lines, path });
        // A new buffer may be the missing target of some `use`: recheck all.
        self.invalidate_all();
    }

    pub fn change(&mut self, uri: &Uri, version: i32, text: String) {
        let Some(doc) = self.docs.get_mut(uri) else { return };
        doc.version = version;
        doc.lines = LineIndex::new(&text);
        doc.text = text;
        let keys = doc.path.as_deref().map(uri::keys).unwrap_or_default();
        self.invalidate(uri, &keys);
    }

    pub fn close(&mut self, uri: &Uri) {
        if let Some(doc) = self.docs.remove(uri) {
            let keys = doc.path.as_deref().map(uri::keys).unwrap_or_default();
            self.by_path.retain(|_, u| u != uri);
            self.invalidate(uri, &keys);
        }
        self.cache.remove(uri);
        self.stale.remove(uri);
    }

    /// The disk may have changed under every analysis (a save, a checkout).
    pub fn invalidate_all(&mut self) {
        self.cache.clear();
        self.stale.extend(self.docs.keys().cloned());
    }

    /// `uri` changed: drop its analysis and every analysis that read it.
    fn invalidate(&mut self, uri: &Uri, keys: &[PathBuf]) {
        self.cache.remove(uri);
        let dependents: Vec<Uri> = self
            .cache
            .iter()
            .filter(|(_, c)| c.deps.iter().any(|d| keys.contains(d)))
            .map(|(u, _)| u.clone())
            .collect();
        for u in dependents {
            self.cache.remove(&u);
            self.stale.insert(u);
        }
        if self.docs.contains_key(uri) {
            self.stale.insert(uri.clone());
        }
    }

    /// Computes the analysis of an open document if needed; false when it is not open.
    pub fn ensure(&mut self, uri: &Uri) -> bool {
        if self.cache.contains_key(uri) {
            return true;
        }
        let Some(doc) = self.docs.get(uri) else { return false };
        let name = match &doc.path {
            Some(p) => p.display().to_string(),
            None => doc.uri.as_str().to_string(),
        };
        let root = match (&self.workspace, &doc.path) {
            (Some(w), _) => w.clone(),
            (None, Some(p)) => Root::for_file(p),
            // An unsaved buffer (`untitled:`) has no directory to read from.
            (None, None) => Root::workspace(&std::env::temp_dir().join("nnc-lsp-untitled")),
        };
        let loader = OverlayLoader { state: self, access: Access::root(&root), disk: FsLoader::new(&root) };
        let analysis = analyse(&name, doc.path.as_deref(), doc.text.clone(), &loader, &CheckOptions::default());
        let deps = analysis
            .program
            .files
            .iter()
            .filter(|f| !f.is_std && f.id != FileId(0))
            .filter_map(|f| f.path.as_deref())
            .flat_map(uri::keys)
            .collect();
        self.cache.insert(uri.clone(), Cached { analysis, deps, index: OnceCell::new() });
        true
    }

    /// The analysis of an open document, if computed ([`State::ensure`]).
    pub fn get(&self, uri: &Uri) -> Option<&Cached> {
        self.cache.get(uri)
    }

    /// Analyses already computed (for other documents' references).
    pub fn cached(&self) -> impl Iterator<Item = (&Uri, &Cached)> {
        self.cache.iter()
    }

    /// The URI to show for a file of a program: the open document's own URI
    /// (the root's, or a `use`d file's), the materialised standard library,
    /// or the file's path.
    pub fn uri_of_file(&self, root: &Uri, analysis: &Analysis, file: FileId) -> Option<Uri> {
        if file == FileId(0) {
            return Some(root.clone());
        }
        let f = analysis.program.files.get(file.0 as usize)?;
        if f.is_std {
            let module = f.name.strip_prefix("std/")?.strip_suffix(".nn")?;
            return uri::from_path(&self.support.as_ref()?.std_module(module));
        }
        let path = f.path.as_deref()?;
        if let Some(doc) = self.open_at(path) {
            return Some(doc.uri.clone());
        }
        let abs = if path.is_absolute() { path.to_path_buf() } else { std::env::current_dir().ok()?.join(path) };
        uri::from_path(&uri::normalise(&abs))
    }
}
