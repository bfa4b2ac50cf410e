//! Where a `.nn` file may make nnc read and write, and how much it may read.
//!
//! A shared `.nn` file must be safe to check and to run, so every path it
//! names is confined:
//! - files it makes nnc **read** (`use`, data sources, `init = load(…)`) lie
//!   under the **project root**: `--root DIR`, else the nearest ancestor of
//!   the root file's directory holding a [`MARKER`] file (`nnc.toml`), else
//!   the root file's directory ([`Root::for_file`]);
//! - files it makes `nnc run` **write** (`checkpoint = …`) lie under the
//!   output directory ([`confine_output`]).
//!
//! Paths are compared after resolving symlinks, so a link that leads out
//! counts as outside. Paths the user types on the command line (`--save`,
//! `--input`, …) are the user's own pointing and are not confined
//! ([`Access::User`]), but every read — confined or not — takes only regular
//! files (a FIFO would block, `/dev/zero` never ends) and stops at a size
//! cap ([`Cap`]). Errors name the file, never its content.

use std::fs::File;
use std::io::Read;
use std::path::{Component, Path, PathBuf};

use nnc_syntax::Code;

/// The file whose directory is a project root (it may be empty).
pub const MARKER: &str = "nnc.toml";

/// A directory paths must stay under: canonical (symlinks resolved).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Root {
    dir: PathBuf,
    /// What it is, for messages: "project root", "output directory".
    what: &'static str,
}

impl Root {
    /// An explicit root (`--root DIR`); the directory must exist.
    pub fn new(dir: &Path) -> Result<Root, FileError> {
        let dir = std::fs::canonicalize(dir).map_err(|e| FileError::io(dir, &e))?;
        Ok(Root { dir, what: "project root" })
    }

    /// The output directory of a run, as a root for what the `.nn` file
    /// makes it read back (`init = load(…)` of an earlier run's checkpoint).
    pub fn output(dir: &Path) -> Result<Root, FileError> {
        let dir = std::fs::canonicalize(dir).map_err(|e| FileError::io(dir, &e))?;
        Ok(Root { dir, what: "output directory" })
    }

    /// The default root of the program whose root file is `file`: the nearest
    /// ancestor of its directory holding [`MARKER`], else its directory.
    pub fn for_file(file: &Path) -> Root {
        let parent = match file.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let dir = std::fs::canonicalize(&parent).unwrap_or_else(|_| absolute(&parent));
        let marked = dir.ancestors().find(|a| a.join(MARKER).is_file()).map(Path::to_path_buf);
        Root { dir: marked.unwrap_or(dir), what: "project root" }
    }

    /// A root for a directory the caller already trusts as it is (the
    /// language server's workspace folder).
    pub fn workspace(dir: &Path) -> Root {
        Root { dir: std::fs::canonicalize(dir).unwrap_or_else(|_| absolute(dir)), what: "workspace folder" }
    }

    /// The root directory (canonical when it exists).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Whether `real` (a canonical path, see [`real_path`]) lies under the root.
    pub fn contains(&self, real: &Path) -> bool {
        real.starts_with(&self.dir)
    }
}

/// Who named a path, and so where it may lie.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Access {
    /// The user, on the command line: anywhere.
    User,
    /// A `.nn` file: under one of these roots.
    Within(Vec<Root>),
}

impl Access {
    /// Access restricted to `root`.
    pub fn root(root: &Root) -> Access {
        Access::Within(vec![root.clone()])
    }

    /// Checks that `path` lies under an allowed root (after resolving
    /// symlinks); returns its real path. Nothing is opened.
    pub fn check(&self, path: &Path) -> Result<PathBuf, FileError> {
        let real = real_path(path);
        match self {
            Access::User => Ok(real),
            Access::Within(roots) if roots.iter().any(|r| r.contains(&real)) => Ok(real),
            Access::Within(roots) => Err(FileError::Outside {
                path: path.to_path_buf(),
                roots: roots.iter().map(|r| (r.what, r.dir.clone())).collect(),
            }),
        }
    }
}

/// The size caps. Each can be raised with its environment variable (bytes,
/// or with a `K`, `M` or `G` suffix for KiB, MiB, GiB).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cap {
    /// `.nn` files (the root file and `use`d ones): 16 MiB.
    Source,
    /// A data file or checkpoint, and separately what a compressed one
    /// inflates to: 1 GiB.
    Data,
}

impl Cap {
    /// The environment variable that raises this cap.
    pub fn env(self) -> &'static str {
        match self {
            Cap::Source => "NNC_MAX_SOURCE_BYTES",
            Cap::Data => "NNC_MAX_DATA_BYTES",
        }
    }

    /// The cap when its environment variable is unset or invalid, in bytes.
    pub fn default_bytes(self) -> u64 {
        match self {
            Cap::Source => 16 << 20,
            Cap::Data => 1 << 30,
        }
    }

    /// The cap in force: the environment variable, when it parses, else the default.
    pub fn bytes(self) -> u64 {
        std::env::var(self.env()).ok().and_then(|v| parse_size(&v)).unwrap_or_else(|| self.default_bytes())
    }

    fn what(self) -> &'static str {
        match self {
            Cap::Source => "source files",
            Cap::Data => "data files",
        }
    }
}

/// `123`, `64K`, `16M`, `2G` (binary units) → bytes.
fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let (digits, shift) = match s.char_indices().last()? {
        (i, 'k' | 'K') => (&s[..i], 10),
        (i, 'm' | 'M') => (&s[..i], 20),
        (i, 'g' | 'G') => (&s[..i], 30),
        _ => (s, 0),
    };
    digits.trim().parse::<u64>().ok()?.checked_mul(1u64 << shift)
}

/// `n` bytes for messages: "16 MiB", "2 GiB", "1000 bytes".
pub fn human_size(n: u64) -> String {
    for (shift, unit) in [(30, "GiB"), (20, "MiB"), (10, "KiB")] {
        if n >= 1 << shift && n.is_multiple_of(1 << shift) {
            return format!("{} {unit}", n >> shift);
        }
    }
    format!("{n} bytes")
}

/// Why a file may not be, or could not be, read or written. Messages name
/// the path as written and never quote the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FileError {
    /// A path a `.nn` file names that resolves outside every allowed root.
    Outside {
        /// The path as written.
        path: PathBuf,
        /// The allowed roots: what each is (`project root`…) and its directory.
        roots: Vec<(&'static str, PathBuf)>,
    },
    /// An output path that is absolute or climbs out of the output directory.
    Escapes {
        /// The path as written.
        path: PathBuf,
        /// The output directory it must stay in.
        out: PathBuf,
    },
    /// A directory, FIFO, device or socket.
    NotRegular {
        /// The path as written.
        path: PathBuf,
        /// What it is instead (`a directory`, `a FIFO`…).
        kind: &'static str,
    },
    /// Larger than its cap (`inflated`: what a compressed file inflates to).
    TooLarge {
        /// The path as written.
        path: PathBuf,
        /// Which cap it exceeds.
        cap: Cap,
        /// The cap in force, in bytes.
        limit: u64,
        /// Whether the limit applies to the inflated size of a compressed file.
        inflated: bool,
    },
    /// The operating system refused (missing file, permissions).
    Io {
        /// The path as written.
        path: PathBuf,
        /// The operating system's error kind.
        kind: std::io::ErrorKind,
        /// The operating system's message.
        message: String,
    },
}

impl FileError {
    fn io(path: &Path, e: &std::io::Error) -> FileError {
        FileError::Io { path: path.to_path_buf(), kind: e.kind(), message: e.to_string() }
    }

    /// The stable code of a refusal (`None` for the operating system's errors).
    pub fn code(&self) -> Option<Code> {
        match self {
            FileError::Outside { .. } => Some(Code::FileOutsideRoot),
            FileError::NotRegular { .. } => Some(Code::NotARegularFile),
            FileError::TooLarge { .. } => Some(Code::FileTooLarge),
            FileError::Escapes { .. } => Some(Code::OutputOutsideOutDir),
            FileError::Io { .. } => None,
        }
    }

    /// The path as the user wrote it (for messages).
    pub fn path(&self) -> &Path {
        match self {
            FileError::Outside { path, .. }
            | FileError::Escapes { path, .. }
            | FileError::NotRegular { path, .. }
            | FileError::TooLarge { path, .. }
            | FileError::Io { path, .. } => path,
        }
    }

    /// The message without the code or the path's name (for diagnostics
    /// that point at the path in the source).
    pub fn reason(&self) -> String {
        match self {
            FileError::Outside { roots, .. } => {
                let places: Vec<String> = roots.iter().map(|(w, d)| format!("the {w} `{}`", d.display())).collect();
                format!("outside {}", places.join(" and "))
            }
            FileError::Escapes { out, .. } => format!("not inside the output directory `{}`", out.display()),
            FileError::NotRegular { kind, .. } => format!("not a regular file (it is {kind})"),
            // Callers write "`path` is {reason}": the reason must not say "is" again.
            FileError::TooLarge { cap, limit, inflated, .. } => format!(
                "{} {}, the cap on {} (set {} to raise it)",
                if *inflated { "a compressed file that decompresses to more than" } else { "larger than" },
                human_size(*limit),
                cap.what(),
                cap.env()
            ),
            FileError::Io { message, .. } => format!("cannot read: {message}"),
        }
    }

    /// How to fix a refusal, for notes.
    pub fn help(&self) -> Option<&'static str> {
        match self {
            FileError::Outside { .. } => Some(
                "files a .nn file reads must lie under the project root: the nearest directory upwards holding an \
                 `nnc.toml`, else the root file's own directory; `--root DIR` sets it",
            ),
            FileError::Escapes { .. } => {
                Some("paths a train block writes are relative to the output directory (`--out`) and stay inside it")
            }
            _ => None,
        }
    }
}

impl std::fmt::Display for FileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let path = self.path().display();
        match self.code() {
            Some(code) => write!(f, "{}: `{path}` is {}", code.as_str(), self.reason())?,
            None => write!(f, "{path}: {}", self.reason())?,
        }
        if let Some(help) = self.help() {
            write!(f, "\n  help: {help}")?;
        }
        Ok(())
    }
}

impl std::error::Error for FileError {}

/// `path` made absolute against the working directory, `.` and `..` removed
/// lexically.
fn absolute(path: &Path) -> PathBuf {
    let joined = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir().map(|d| d.join(path)).unwrap_or_else(|_| path.to_path_buf())
    };
    let mut out = PathBuf::new();
    for c in joined.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// Where `path` really is: canonical when it exists; otherwise its longest
/// existing prefix canonical (symlinks resolved) with the rest appended
/// lexically — a component that does not exist cannot be a link.
pub fn real_path(path: &Path) -> PathBuf {
    if let Ok(c) = std::fs::canonicalize(path) {
        return c;
    }
    let abs = absolute(path);
    let mut rest = Vec::new();
    let mut prefix = abs.as_path();
    loop {
        if let Ok(c) = std::fs::canonicalize(prefix) {
            let mut out = c;
            for part in rest.iter().rev() {
                out.push(part);
            }
            return out;
        }
        match (prefix.parent(), prefix.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_os_string());
                prefix = parent;
            }
            _ => return abs,
        }
    }
}

/// What a file that is not regular is, for messages.
pub fn kind_of(ft: std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if ft.is_fifo() {
            return "a FIFO";
        }
        if ft.is_char_device() || ft.is_block_device() {
            return "a device";
        }
        if ft.is_socket() {
            return "a socket";
        }
    }
    if ft.is_dir() { "a directory" } else { "not a regular file" }
}

/// Opens `path` for reading when `access` allows it and it is a regular
/// file; returns the file and its length. The type is checked before
/// opening (so nothing else is opened at all) and again on the opened file;
/// the open does not block (a FIFO swapped in between returns at once, and
/// is then refused), and a confined path is checked again through the
/// opened descriptor where the system says what it is, so a link swapped in
/// after the check cannot lead out.
pub fn open(path: &Path, access: &Access) -> Result<(File, u64), FileError> {
    access.check(path)?;
    let meta = std::fs::metadata(path).map_err(|e| FileError::io(path, &e))?;
    if !meta.is_file() {
        return Err(FileError::NotRegular { path: path.to_path_buf(), kind: kind_of(meta.file_type()) });
    }
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NONBLOCK);
    }
    let file = options.open(path).map_err(|e| FileError::io(path, &e))?;
    let meta = file.metadata().map_err(|e| FileError::io(path, &e))?;
    if !meta.is_file() {
        return Err(FileError::NotRegular { path: path.to_path_buf(), kind: kind_of(meta.file_type()) });
    }
    #[cfg(target_os = "linux")]
    if let Access::Within(roots) = access {
        use std::os::fd::AsRawFd;
        if let Ok(real) = std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd()))
            && !roots.iter().any(|r| r.contains(&real))
        {
            return Err(FileError::Outside {
                path: path.to_path_buf(),
                roots: roots.iter().map(|r| (r.what, r.dir.clone())).collect(),
            });
        }
    }
    Ok((file, meta.len()))
}

/// Reads a whole file through [`open`], refusing one larger than `cap`
/// (checked before reading, and while reading in case it grows).
pub fn read(path: &Path, access: &Access, cap: Cap) -> Result<Vec<u8>, FileError> {
    let (file, len) = open(path, access)?;
    let limit = cap.bytes();
    let too_large = || FileError::TooLarge { path: path.to_path_buf(), cap, limit, inflated: false };
    if len > limit {
        return Err(too_large());
    }
    match read_limited(file, limit, len) {
        Ok(Some(bytes)) => Ok(bytes),
        Ok(None) => Err(too_large()),
        Err(e) => Err(FileError::io(path, &e)),
    }
}

/// All of `reader` when it holds at most `limit` bytes, `None` when it holds
/// more (at most `limit + 1` bytes are read). `hint` presizes the buffer.
pub fn read_limited(reader: impl Read, limit: u64, hint: u64) -> std::io::Result<Option<Vec<u8>>> {
    let mut out = Vec::with_capacity(usize::try_from(hint.min(limit)).unwrap_or(0));
    reader.take(limit.saturating_add(1)).read_to_end(&mut out)?;
    Ok(if out.len() as u64 > limit { None } else { Some(out) })
}

/// Where `nnc run` writes a file the `.nn` file names (`checkpoint = …`):
/// `rel` joined to the output directory `out`. Absolute paths and paths that
/// climb out of `out` (lexically, or through a symlink inside it) are
/// refused; `out` itself is the user's (`--out`) and may be anywhere.
pub fn confine_output(out: &Path, rel: &Path) -> Result<PathBuf, FileError> {
    let escapes = || FileError::Escapes { path: rel.to_path_buf(), out: out.to_path_buf() };
    let inside = relative_inside(rel).ok_or_else(escapes)?;
    let target = out.join(inside);
    // A directory on the way may be a symlink (made by anyone who can write
    // to `out`): follow it and compare, as for reads.
    let base = real_path(out);
    if !real_path(target.parent().unwrap_or(out)).starts_with(&base) {
        return Err(escapes());
    }
    Ok(target)
}

/// `rel` with `.` and `..` resolved lexically, when it names a file inside
/// the directory it is relative to: not absolute, not climbing above it,
/// not the directory itself.
pub fn relative_inside(rel: &Path) -> Option<PathBuf> {
    let mut parts: Vec<&std::ffi::OsStr> = Vec::new();
    for c in rel.components() {
        match c {
            Component::Normal(p) => parts.push(p),
            Component::CurDir => {}
            Component::ParentDir => {
                parts.pop()?;
            }
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    (!parts.is_empty()).then(|| parts.iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_binary_suffixes() {
        assert_eq!(parse_size("123"), Some(123));
        assert_eq!(parse_size("64K"), Some(64 << 10));
        assert_eq!(parse_size(" 16m "), Some(16 << 20));
        assert_eq!(parse_size("2G"), Some(2 << 30));
        assert_eq!(parse_size("x"), None);
        assert_eq!(parse_size("99999999999999G"), None);
        assert_eq!(human_size(16 << 20), "16 MiB");
        assert_eq!(human_size(1000), "1000 bytes");
    }

    #[test]
    fn output_paths_stay_inside_the_output_directory() {
        let out = Path::new("/nonexistent-nnc-out");
        assert_eq!(confine_output(out, Path::new("a/b.st")).unwrap(), out.join("a/b.st"));
        assert_eq!(confine_output(out, Path::new("a/../b.st")).unwrap(), out.join("b.st"));
        for bad in ["/etc/x", "../x", "a/../../x", "", "."] {
            assert!(matches!(confine_output(out, Path::new(bad)), Err(FileError::Escapes { .. })), "{bad}");
        }
    }

    #[test]
    fn limited_reads_stop_one_byte_past_the_limit() {
        assert_eq!(read_limited(&b"abc"[..], 3, 0).unwrap(), Some(b"abc".to_vec()));
        assert_eq!(read_limited(&b"abcd"[..], 3, 0).unwrap(), None);
        assert_eq!(read_limited(std::io::repeat(0), 1000, 10).unwrap(), None);
    }
}
