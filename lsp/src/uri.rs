//! `file://` URIs ↔ paths. LSP names documents by URI; the compiler's
//! loader works with paths.

use std::path::{Component, Path, PathBuf};
use std::str::FromStr;

use lsp_types::Uri;

/// The path of a `file:` URI (`None` for other schemes, e.g. `untitled:`).
pub fn to_path(uri: &Uri) -> Option<PathBuf> {
    let s = uri.as_str();
    let scheme_end = s.find(':')?;
    if !s[..scheme_end].eq_ignore_ascii_case("file") {
        return None;
    }
    let rest = s[scheme_end + 1..].strip_prefix("//")?;
    // `file://host/path`: only the local host makes sense here.
    let slash = rest.find('/')?;
    let host = &rest[..slash];
    if !(host.is_empty() || host.eq_ignore_ascii_case("localhost")) {
        return None;
    }
    let path = &rest[slash..];
    let path = path.split(['?', '#']).next().unwrap_or(path);
    let bytes = percent_decode(path)?;
    from_bytes(bytes)
}

#[cfg(unix)]
fn from_bytes(bytes: Vec<u8>) -> Option<PathBuf> {
    use std::os::unix::ffi::OsStringExt;
    Some(PathBuf::from(std::ffi::OsString::from_vec(bytes)))
}

#[cfg(not(unix))]
fn from_bytes(bytes: Vec<u8>) -> Option<PathBuf> {
    let s = String::from_utf8(bytes).ok()?;
    // `/C:/dir/file.nn` names `C:/dir/file.nn`.
    let s = match s.as_bytes() {
        [b'/', d, b':', ..] if d.is_ascii_alphabetic() => s[1..].to_string(),
        _ => s,
    };
    Some(PathBuf::from(s))
}

fn percent_decode(s: &str) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Some(out)
}

/// The `file://` URI of an absolute path.
pub fn from_path(path: &Path) -> Option<Uri> {
    let bytes = path_bytes(path)?;
    let mut s = String::from("file://");
    if bytes.first() != Some(&b'/') {
        s.push('/'); // Windows: `file:///C:/…`
    }
    for byte in bytes {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'/' => s.push(byte as char),
            b':' if cfg!(windows) => s.push(':'),
            _ => s.push_str(&format!("%{byte:02X}")),
        }
    }
    Uri::from_str(&s).ok()
}

/// The bytes of an absolute path; non-UTF-8 bytes are percent-encoded like any other.
#[cfg(unix)]
fn path_bytes(path: &Path) -> Option<Vec<u8>> {
    use std::os::unix::ffi::OsStrExt;
    path.is_absolute().then(|| path.as_os_str().as_bytes().to_vec())
}

#[cfg(not(unix))]
fn path_bytes(path: &Path) -> Option<Vec<u8>> {
    path.is_absolute().then(|| path.to_string_lossy().replace('\\', "/").into_bytes())
}

/// A path with `.` and `..` removed lexically (without touching the disk),
/// so `dir/../a.nn` and `a.nn` are recognised as one file even when it
/// exists only in the editor.
pub fn normalise(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// The names a path may be known by: lexically normalised, and canonical
/// when it exists on disk (symlinks resolved).
pub fn keys(path: &Path) -> Vec<PathBuf> {
    let mut v = vec![normalise(path)];
    if let Ok(c) = std::fs::canonicalize(path)
        && !v.contains(&c)
    {
        v.push(c);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_paths_with_spaces_and_unicode() {
        let p = Path::new("/tmp/my models/ü×.nn");
        let uri = from_path(p).expect("uri");
        assert_eq!(uri.as_str(), "file:///tmp/my%20models/%C3%BC%C3%97.nn");
        assert_eq!(to_path(&uri).as_deref(), Some(p));
    }

    #[test]
    fn other_schemes_and_hosts_have_no_path() {
        let u = Uri::from_str("untitled:Untitled-1").expect("uri");
        assert_eq!(to_path(&u), None);
        let u = Uri::from_str("file://server/share/a.nn").expect("uri");
        assert_eq!(to_path(&u), None);
        let u = Uri::from_str("file://localhost/a/b.nn").expect("uri");
        assert_eq!(to_path(&u).as_deref(), Some(Path::new("/a/b.nn")));
    }

    #[test]
    fn normalises_dot_components() {
        assert_eq!(normalise(Path::new("/a/b/../c/./d.nn")), PathBuf::from("/a/c/d.nn"));
    }
}
