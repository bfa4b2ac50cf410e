//! File formats the runtime reads and writes: `.npy` arrays (data sources
//! and `nnc predict`'s inputs and outputs), `.npz` archives, and safetensors
//! checkpoints. Each format is a pure function of bytes plus thin file
//! wrappers, so the parsers are tested on bytes built in memory.

pub mod checkpoint;
pub mod npy;
pub mod npz;

use std::path::{Path, PathBuf};

use nnc_compiler::sandbox::{self, Access, Cap, FileError};

pub use checkpoint::{load_checkpoint, load_checkpoint_typed, save_checkpoint};
pub use npy::{NpyArray, NpyElement, parse_npy, read_npy, to_npy_bytes, write_npy};
pub use npz::{parse_npz, read_npz, to_npz_bytes};

/// Why a file could not be read or written.
#[derive(Clone, Debug, PartialEq)]
pub enum IoError {
    /// The operating system refused: a missing file, permissions, a full disk.
    Os {
        /// The file.
        path: PathBuf,
        /// What was being done (`read`, `create`, `rename`…).
        op: &'static str,
        /// The operating system's error kind.
        kind: std::io::ErrorKind,
        /// The operating system's message.
        message: String,
    },
    /// The bytes are not what the format requires.
    Format {
        /// The file.
        path: PathBuf,
        /// The format expected (`npy`, `safetensors`…).
        format: &'static str,
        /// What is wrong with the bytes.
        reason: String,
    },
    /// Refused without reading (not a regular file, outside the project
    /// root) or stopped at a size cap: see [`nnc_compiler::sandbox`].
    Refused(FileError),
}

impl IoError {
    pub(crate) fn os(path: &Path, op: &'static str, e: &std::io::Error) -> IoError {
        IoError::Os { path: path.to_path_buf(), op, kind: e.kind(), message: e.to_string() }
    }

    pub(crate) fn format(path: &Path, format: &'static str, reason: impl Into<String>) -> IoError {
        IoError::Format { path: path.to_path_buf(), format, reason: reason.into() }
    }

    /// The path of the file concerned.
    pub fn path(&self) -> &Path {
        match self {
            IoError::Os { path, .. } | IoError::Format { path, .. } => path,
            IoError::Refused(e) => e.path(),
        }
    }
}

impl std::fmt::Display for IoError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IoError::Os { path, op, message, .. } => write!(f, "{}: cannot {op}: {message}", path.display()),
            IoError::Format { path, format, reason } => {
                write!(f, "{}: not a valid {format} file: {reason}", path.display())
            }
            IoError::Refused(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for IoError {}

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Reads a whole file, decompressing it when it is gzip. The magic bytes
/// decide, not the name: a `.gz` a browser already unpacked still loads, and
/// a compressed file without the extension is recognised. Only regular files
/// are read, and both the file and its decompression stop at the data cap
/// ([`Cap::Data`]).
pub fn read_file(path: &Path) -> Result<Vec<u8>, IoError> {
    gunzip_if_compressed(read_raw(path)?, path)
}

/// A whole regular file as it is, up to the data cap. Where a path may lie
/// is decided before (data sources: [`crate::data::source::check_paths`]).
pub fn read_raw(path: &Path) -> Result<Vec<u8>, IoError> {
    sandbox::read(path, &Access::User, Cap::Data).map_err(|e| match e {
        FileError::Io { path, kind, message } => IoError::Os { path, op: "read", kind, message },
        refused => IoError::Refused(refused),
    })
}

/// `raw` itself, or its decompression when it starts with the gzip magic
/// (at most the data cap: a small file of zeros can inflate to gigabytes).
pub fn gunzip_if_compressed(raw: Vec<u8>, path: &Path) -> Result<Vec<u8>, IoError> {
    if !raw.starts_with(&GZIP_MAGIC) {
        return Ok(raw);
    }
    let limit = Cap::Data.bytes();
    // Multi-member: `cat a.gz b.gz` is a valid gzip stream of both.
    let decoder = flate2::read::MultiGzDecoder::new(&raw[..]);
    match sandbox::read_limited(decoder, limit, (raw.len() as u64).saturating_mul(4)) {
        Ok(Some(out)) => Ok(out),
        Ok(None) => Err(IoError::Refused(FileError::TooLarge {
            path: path.to_path_buf(),
            cap: Cap::Data,
            limit,
            inflated: true,
        })),
        Err(e) => Err(IoError::format(path, "gzip", e.to_string())),
    }
}

/// IEEE half precision to f32 (exact: every f16 is an f32).
pub(crate) fn f16_to_f32(h: u16) -> f32 {
    let sign = ((h >> 15) as u32) << 31;
    let exp = ((h >> 10) & 0x1f) as u32;
    let frac = (h & 0x3ff) as u32;
    let bits = match (exp, frac) {
        (0, 0) => sign,
        // Subnormal: value = frac · 2^-24.
        (0, _) => {
            let v = frac as f32 * (1.0 / 16_777_216.0);
            return if sign != 0 { -v } else { v };
        }
        (0x1f, 0) => sign | 0x7f80_0000,
        (0x1f, _) => sign | 0x7fc0_0000 | (frac << 13),
        _ => sign | ((exp + 127 - 15) << 23) | (frac << 13),
    };
    f32::from_bits(bits)
}

/// bfloat16 to f32: the top half of an f32.
pub(crate) fn bf16_to_f32(h: u16) -> f32 {
    f32::from_bits((h as u32) << 16)
}

#[cfg(test)]
pub(crate) mod testutil {
    use std::path::PathBuf;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A fresh, empty directory under the system temp dir, removed on drop.
    pub struct TempDir(pub PathBuf);

    impl TempDir {
        pub fn new(tag: &str) -> TempDir {
            static COUNTER: AtomicUsize = AtomicUsize::new(0);
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let p = std::env::temp_dir().join(format!("nnc-rt-{tag}-{}-{n}", std::process::id()));
            let _ = std::fs::remove_dir_all(&p);
            std::fs::create_dir_all(&p).expect("temp dir");
            TempDir(p)
        }
        pub fn path(&self) -> &std::path::Path {
            &self.0
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    pub fn gzip(bytes: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(bytes).unwrap();
        e.finish().unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::testutil::{TempDir, gzip};
    use super::*;

    #[test]
    fn gzip_is_recognised_by_its_magic_bytes() {
        let dir = TempDir::new("gz");
        let plain = dir.path().join("a.txt");
        let packed = dir.path().join("a.bin");
        std::fs::write(&plain, b"hello").unwrap();
        std::fs::write(&packed, gzip(b"hello")).unwrap();
        assert_eq!(read_file(&plain).unwrap(), b"hello");
        assert_eq!(read_file(&packed).unwrap(), b"hello");
        // Two concatenated members are one stream.
        let mut two = gzip(b"ab");
        two.extend(gzip(b"cd"));
        assert_eq!(gunzip_if_compressed(two, &plain).unwrap(), b"abcd");
    }

    #[test]
    fn half_floats() {
        assert_eq!(f16_to_f32(0x3c00), 1.0);
        assert_eq!(f16_to_f32(0xc000), -2.0);
        assert_eq!(f16_to_f32(0x7bff), 65504.0);
        assert_eq!(f16_to_f32(0x0001), 2f32.powi(-24));
        assert_eq!(f16_to_f32(0x8001), -(2f32.powi(-24)));
        assert_eq!(f16_to_f32(0x7c00), f32::INFINITY);
        assert!(f16_to_f32(0x7e00).is_nan());
        assert_eq!(f16_to_f32(0x8000).to_bits(), (-0.0f32).to_bits());
        assert_eq!(bf16_to_f32(0x3f80), 1.0);
        assert_eq!(bf16_to_f32(0xc040), -3.0);
    }

    #[test]
    fn broken_gzip_and_missing_files_are_errors() {
        let dir = TempDir::new("gzbad");
        let p = dir.path().join("x.gz");
        let mut bytes = gzip(&[7u8; 1000]);
        bytes.truncate(bytes.len() / 2);
        std::fs::write(&p, bytes).unwrap();
        let e = read_file(&p).unwrap_err();
        assert!(matches!(e, IoError::Format { format: "gzip", .. }), "{e}");
        assert!(e.to_string().contains("x.gz"), "{e}");
        let e = read_file(&dir.path().join("nope.csv")).unwrap_err();
        assert!(matches!(e, IoError::Os { kind: std::io::ErrorKind::NotFound, .. }));
        assert!(e.to_string().contains("nope.csv") && e.to_string().contains("cannot read"), "{e}");
    }
}
