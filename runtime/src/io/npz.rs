//! NumPy's `.npz` archives: a zip file of `.npy` entries (`np.savez` stores
//! them, `np.savez_compressed` deflates them). We read the zip's central
//! directory ourselves (including the zip64 records NumPy always writes:
//! `np.savez` opens every entry with `force_zip64=True`) and inflate with
//! flate2's raw deflate decoder, checking each entry's CRC-32.

use std::io::Read;
use std::path::Path;

use super::npy::{NpyArray, parse_npy};
use nnc_compiler::sandbox::{Cap, FileError};

use super::{IoError, read_file};

const FORMAT: &str = ".npz (zip)";

const EOCD: u32 = 0x0605_4b50;
const ZIP64_LOCATOR: u32 = 0x0706_4b50;
const ZIP64_EOCD: u32 = 0x0606_4b50;
const CENTRAL: u32 = 0x0201_4b50;
const LOCAL: u32 = 0x0403_4b50;

/// Reads every `.npy` entry of an `.npz` file, in archive order, named
/// without the `.npy` suffix (`np.savez(f, x=…)` stores `x.npy`).
pub fn read_npz(path: &Path) -> Result<Vec<(String, NpyArray)>, IoError> {
    parse_npz(&read_file(path)?, path)
}

/// Little-endian reads that fail instead of panicking past the end.
struct Cursor<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn new(b: &'a [u8], at: usize) -> Cursor<'a> {
        Cursor { b, at }
    }
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.b.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(s)
    }
    fn u16(&mut self) -> Option<u16> {
        Some(u16::from_le_bytes(self.take(2)?.try_into().ok()?))
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
}

struct Entry {
    name: String,
    method: u16,
    flags: u16,
    crc: u32,
    compressed: u64,
    size: u64,
    local_offset: u64,
}

/// Parses the bytes of an `.npz` file; `path` names it in errors.
pub fn parse_npz(b: &[u8], path: &Path) -> Result<Vec<(String, NpyArray)>, IoError> {
    let entries = central_directory(b, path)?;
    let bad = |r: String| IoError::format(path, FORMAT, r);
    let mut out = Vec::new();
    // What the entries inflate to, together, is capped like a gzip file's
    // inflation: a few megabytes of zeros can declare gigabytes.
    let limit = Cap::Data.bytes();
    let mut inflated = 0u64;
    for e in entries {
        if e.name.ends_with('/') {
            continue; // a directory
        }
        inflated = inflated.saturating_add(e.size);
        if inflated > limit {
            return Err(IoError::Refused(FileError::TooLarge {
                path: path.to_path_buf(),
                cap: Cap::Data,
                limit,
                inflated: true,
            }));
        }
        let Some(array_name) = e.name.strip_suffix(".npy") else {
            return Err(bad(format!("entry `{}` is not a .npy array", e.name)));
        };
        let ebad = |r: String| bad(format!("entry `{}`: {r}", e.name));
        if e.flags & 1 != 0 {
            return Err(ebad("encrypted entries are not supported".into()));
        }
        let bytes = read_entry(b, &e, path)?;
        let array = parse_npy(&bytes, &path.join(&e.name))?;
        out.push((array_name.to_string(), array));
    }
    Ok(out)
}

/// The bytes of an `.npz` archive as `np.load` reads it: each `(name, npy bytes)` stored (not deflated) as
/// `name.npy`. `path`, where the archive will go, names it in errors: sizes beyond the classic zip's 32-bit fields
/// are refused, not wrapped (no zip64 writer, as nothing nnc writes comes near 4 GiB).
pub fn to_npz_bytes(arrays: &[(String, Vec<u8>)], path: &Path) -> Result<Vec<u8>, IoError> {
    let too_big =
        |what: &str| IoError::format(path, FORMAT, format!("{what} is larger than a zip without zip64 holds"));
    let u32_of = |n: usize, what: &str| u32::try_from(n).map_err(|_| too_big(what));
    let mut out = Vec::new();
    let mut central = Vec::new();
    for (array, data) in arrays {
        let name = format!("{array}.npy");
        let offset = u32_of(out.len(), "the archive")?;
        let size = u32_of(data.len(), &name)?;
        let mut crc = flate2::Crc::new();
        crc.update(data);
        let name_len = u16::try_from(name.len()).map_err(|_| too_big("an entry's name"))?;
        // Version 2.0, no flags, stored, 1980-01-01 00:00, CRC, sizes, name length, no extra field.
        let common = |v: &mut Vec<u8>| {
            for field in [20u16, 0, 0, 0, 0x21] {
                v.extend_from_slice(&field.to_le_bytes());
            }
            for field in [crc.sum(), size, size] {
                v.extend_from_slice(&field.to_le_bytes());
            }
            v.extend_from_slice(&name_len.to_le_bytes());
            v.extend_from_slice(&0u16.to_le_bytes());
        };
        out.extend_from_slice(&LOCAL.to_le_bytes());
        common(&mut out);
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(data);
        central.extend_from_slice(&CENTRAL.to_le_bytes());
        central.extend_from_slice(&20u16.to_le_bytes());
        common(&mut central);
        // Comment length, disk, internal and external attributes, then the local header's offset.
        central.extend_from_slice(&[0u8; 10]);
        central.extend_from_slice(&offset.to_le_bytes());
        central.extend_from_slice(name.as_bytes());
    }
    let count = u16::try_from(arrays.len()).map_err(|_| too_big("the number of arrays"))?;
    let cd_offset = u32_of(out.len(), "the archive")?;
    let cd_size = u32_of(central.len(), "the archive's directory")?;
    out.extend_from_slice(&central);
    out.extend_from_slice(&EOCD.to_le_bytes());
    out.extend_from_slice(&[0u8; 4]);
    out.extend_from_slice(&count.to_le_bytes());
    out.extend_from_slice(&count.to_le_bytes());
    out.extend_from_slice(&cd_size.to_le_bytes());
    out.extend_from_slice(&cd_offset.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    Ok(out)
}

/// The entries the zip's central directory lists (zip64 sizes and offsets resolved).
fn central_directory(b: &[u8], path: &Path) -> Result<Vec<Entry>, IoError> {
    let bad = |r: String| IoError::format(path, FORMAT, r);

    let truncated = || bad("truncated".into());
    // The end-of-central-directory record is the last 22 bytes plus a
    // comment of up to 65,535 bytes: search backwards for its signature.
    let lowest = b.len().saturating_sub(22 + 0xffff);
    let eocd = (lowest..=b.len().saturating_sub(22))
        .rev()
        .find(|&i| b.len() >= 22 && b[i..i + 4] == EOCD.to_le_bytes())
        .ok_or_else(|| bad("no end-of-central-directory record (is it a zip file?)".into()))?;
    let mut c = Cursor::new(b, eocd + 10);
    let mut count = c.u16().ok_or_else(truncated)? as u64;
    let mut cd_size = c.u32().ok_or_else(truncated)? as u64;
    let mut cd_offset = c.u32().ok_or_else(truncated)? as u64;
    if count == 0xffff || cd_size == 0xffff_ffff || cd_offset == 0xffff_ffff {
        // Zip64: a locator just before the record points at the real one.
        let loc = eocd.checked_sub(20).ok_or_else(|| bad("zip64 locator missing".into()))?;
        let mut l = Cursor::new(b, loc);
        if l.u32() != Some(ZIP64_LOCATOR) {
            return Err(bad("zip64 locator missing".into()));
        }
        l.u32().ok_or_else(truncated)?;
        let at = usize::try_from(l.u64().ok_or_else(truncated)?).map_err(|_| truncated())?;
        let mut z = Cursor::new(b, at);
        if z.u32() != Some(ZIP64_EOCD) {
            return Err(bad("zip64 end-of-central-directory record missing".into()));
        }
        z.take(28).ok_or_else(truncated)?;
        count = z.u64().ok_or_else(truncated)?;
        cd_size = z.u64().ok_or_else(truncated)?;
        cd_offset = z.u64().ok_or_else(truncated)?;
    }
    let start = usize::try_from(cd_offset).map_err(|_| truncated())?;
    if start.checked_add(usize::try_from(cd_size).map_err(|_| truncated())?).is_none_or(|end| end > b.len()) {
        return Err(bad(format!("the central directory ({cd_size} bytes at {cd_offset}) lies outside the file")));
    }
    let mut entries = Vec::new();
    let mut c = Cursor::new(b, start);
    for _ in 0..count {
        if c.u32() != Some(CENTRAL) {
            return Err(bad("corrupt central directory".into()));
        }
        c.take(4).ok_or_else(truncated)?; // versions
        let flags = c.u16().ok_or_else(truncated)?;
        let method = c.u16().ok_or_else(truncated)?;
        c.take(4).ok_or_else(truncated)?; // time, date
        let crc = c.u32().ok_or_else(truncated)?;
        let mut compressed = c.u32().ok_or_else(truncated)? as u64;
        let mut size = c.u32().ok_or_else(truncated)? as u64;
        let name_len = c.u16().ok_or_else(truncated)? as usize;
        let extra_len = c.u16().ok_or_else(truncated)? as usize;
        let comment_len = c.u16().ok_or_else(truncated)? as usize;
        c.take(8).ok_or_else(truncated)?; // disk, attributes
        let mut local_offset = c.u32().ok_or_else(truncated)? as u64;
        let name = String::from_utf8_lossy(c.take(name_len).ok_or_else(truncated)?).into_owned();
        let extra = c.take(extra_len).ok_or_else(truncated)?;
        c.take(comment_len).ok_or_else(truncated)?;
        // The zip64 extra field holds, in this order, whichever of size,
        // compressed size and offset are saturated in the fixed fields.
        let mut x = Cursor::new(extra, 0);
        while let (Some(id), Some(len)) = (x.u16(), x.u16()) {
            let data = x.take(len as usize).ok_or_else(truncated)?;
            if id == 0x0001 {
                let mut z = Cursor::new(data, 0);
                if size == 0xffff_ffff {
                    size = z.u64().ok_or_else(truncated)?;
                }
                if compressed == 0xffff_ffff {
                    compressed = z.u64().ok_or_else(truncated)?;
                }
                if local_offset == 0xffff_ffff {
                    local_offset = z.u64().ok_or_else(truncated)?;
                }
            }
        }
        entries.push(Entry { name, method, flags, crc, compressed, size, local_offset });
    }
    Ok(entries)
}

/// The inflated bytes of entry `e`, checked against its declared size and CRC-32.
fn read_entry(b: &[u8], e: &Entry, path: &Path) -> Result<Vec<u8>, IoError> {
    let bad = |r: String| IoError::format(path, FORMAT, r);
    let truncated = || bad("truncated".into());
    let ebad = |r: String| bad(format!("entry `{}`: {r}", e.name));
    // The local header repeats the name and has its own extra field;
    // its sizes may be placeholders, so the central directory's count.
    let at = usize::try_from(e.local_offset).map_err(|_| truncated())?;
    let mut l = Cursor::new(b, at);
    if l.u32() != Some(LOCAL) {
        return Err(ebad("bad local header".into()));
    }
    l.take(22).ok_or_else(truncated)?;
    let n = l.u16().ok_or_else(truncated)? as usize;
    let m = l.u16().ok_or_else(truncated)? as usize;
    l.take(n + m).ok_or_else(truncated)?;
    let data = l
        .take(usize::try_from(e.compressed).map_err(|_| truncated())?)
        .ok_or_else(|| ebad("data runs past the end of the file".into()))?;
    let bytes = match e.method {
        0 => data.to_vec(),
        8 => {
            let mut v = Vec::new();
            // `take` bounds the output by the declared size, so a corrupt
            // or hostile entry cannot inflate without limit.
            flate2::read::DeflateDecoder::new(data)
                .take(e.size.saturating_add(1))
                .read_to_end(&mut v)
                .map_err(|err| ebad(format!("deflate: {err}")))?;
            v
        }
        m => return Err(ebad(format!("compression method {m} is not supported (stored and deflate are)"))),
    };
    if bytes.len() as u64 != e.size {
        return Err(ebad(format!("inflates to {} bytes, the directory says {}", bytes.len(), e.size)));
    }
    let mut crc = flate2::Crc::new();
    crc.update(&bytes);
    if crc.sum() != e.crc {
        return Err(ebad("CRC-32 mismatch: the archive is corrupt".into()));
    }
    Ok(bytes)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::super::npy::to_npy_bytes;
    use super::super::testutil::TempDir;
    use super::*;
    use std::io::Write;

    #[test]
    fn what_to_npz_bytes_writes_reads_back() {
        let a = ndarray::ArrayD::from_shape_vec(vec![2, 3], (0..6).map(|v| v as f32).collect()).unwrap();
        let ids = ndarray::ArrayD::from_shape_vec(vec![3], vec![7i64, -1, 2]).unwrap();
        let entries = [("x".to_string(), to_npy_bytes(&a)), ("labels".to_string(), to_npy_bytes(&ids))];
        let zip = to_npz_bytes(&entries, Path::new("t.npz")).unwrap();
        let arrays = parse_npz(&zip, Path::new("t.npz")).unwrap();
        let names: Vec<&str> = arrays.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["x", "labels"]);
        assert_eq!(arrays[0].1.shape(), &[2, 3]);
        assert_eq!(arrays[0].1.to_f32().iter().copied().collect::<Vec<f32>>(), [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]);
        assert_eq!(arrays[1].1.to_f32().iter().copied().collect::<Vec<f32>>(), [7.0, -1.0, 2.0]);
    }

    /// A minimal zip writer for tests: `deflate` picks the method; `zip64`
    /// mimics NumPy's `force_zip64` entries (saturated local sizes with a
    /// zip64 extra field) and adds zip64 end records.
    pub(crate) fn zip(entries: &[(&str, Vec<u8>)], deflate: bool, zip64: bool) -> Vec<u8> {
        let mut out = Vec::new();
        let mut central = Vec::new();
        for (name, data) in entries {
            let mut crc = flate2::Crc::new();
            crc.update(data);
            let stored = if deflate {
                let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
                e.write_all(data).unwrap();
                e.finish().unwrap()
            } else {
                data.clone()
            };
            let offset = out.len() as u32;
            let method: u16 = if deflate { 8 } else { 0 };
            let mut extra = Vec::new();
            if zip64 {
                extra.extend(1u16.to_le_bytes());
                extra.extend(16u16.to_le_bytes());
                extra.extend((data.len() as u64).to_le_bytes());
                extra.extend((stored.len() as u64).to_le_bytes());
            }
            out.extend(LOCAL.to_le_bytes());
            out.extend([45, 0, 0, 0]);
            out.extend(method.to_le_bytes());
            out.extend([0, 0, 0x21, 0]);
            out.extend(crc.sum().to_le_bytes());
            let (cs, us) = if zip64 { (u32::MAX, u32::MAX) } else { (stored.len() as u32, data.len() as u32) };
            out.extend(cs.to_le_bytes());
            out.extend(us.to_le_bytes());
            out.extend((name.len() as u16).to_le_bytes());
            out.extend((extra.len() as u16).to_le_bytes());
            out.extend(name.as_bytes());
            out.extend(&extra);
            out.extend(&stored);
            central.extend(CENTRAL.to_le_bytes());
            central.extend([45, 3, 45, 0, 0, 0]);
            central.extend(method.to_le_bytes());
            central.extend([0, 0, 0x21, 0]);
            central.extend(crc.sum().to_le_bytes());
            central.extend((stored.len() as u32).to_le_bytes());
            central.extend((data.len() as u32).to_le_bytes());
            central.extend((name.len() as u16).to_le_bytes());
            // extra and comment lengths, disk, internal and external attributes
            central.extend([0u8; 12]);
            central.extend(offset.to_le_bytes());
            central.extend(name.as_bytes());
        }
        let cd_offset = out.len();
        out.extend(&central);
        if zip64 {
            let z = out.len();
            out.extend(ZIP64_EOCD.to_le_bytes());
            out.extend(44u64.to_le_bytes());
            out.extend([45, 3, 45, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
            out.extend((entries.len() as u64).to_le_bytes());
            out.extend((entries.len() as u64).to_le_bytes());
            out.extend((central.len() as u64).to_le_bytes());
            out.extend((cd_offset as u64).to_le_bytes());
            out.extend(ZIP64_LOCATOR.to_le_bytes());
            out.extend(0u32.to_le_bytes());
            out.extend((z as u64).to_le_bytes());
            out.extend(1u32.to_le_bytes());
        }
        out.extend(EOCD.to_le_bytes());
        out.extend([0, 0, 0, 0]);
        let n = if zip64 { 0xffff } else { entries.len() as u16 };
        out.extend(n.to_le_bytes());
        out.extend(n.to_le_bytes());
        out.extend((central.len() as u32).to_le_bytes());
        out.extend(if zip64 { u32::MAX } else { cd_offset as u32 }.to_le_bytes());
        out.extend(0u16.to_le_bytes());
        out
    }

    fn sample() -> Vec<(&'static str, Vec<u8>)> {
        vec![
            ("x.npy", to_npy_bytes(&ndarray::arr2(&[[1.0f32, 2.0], [3.0, 4.0], [5.0, 6.0]]))),
            ("y.npy", to_npy_bytes(&ndarray::arr1(&[0i64, 1, 0]))),
        ]
    }

    #[test]
    fn stored_deflated_and_zip64_archives() {
        let p = Path::new("a.npz");
        for (deflate, zip64) in [(false, false), (true, false), (false, true), (true, true)] {
            let arrays =
                parse_npz(&zip(&sample(), deflate, zip64), p).unwrap_or_else(|e| panic!("{deflate} {zip64}: {e}"));
            assert_eq!(arrays.len(), 2);
            assert_eq!(arrays[0].0, "x");
            assert_eq!(arrays[0].1.shape(), &[3, 2]);
            assert_eq!(arrays[1], ("y".to_string(), NpyArray::I64(ndarray::arr1(&[0, 1, 0]).into_dyn())));
        }
    }

    #[test]
    fn numpy_written_archives() {
        // `np.savez` (stored, zip64 entries) and `np.savez_compressed` (deflate).
        let x = ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(&[2, 3, 4]), (0..24).map(|v| v as f32 / 8.0).collect())
            .unwrap();
        for file in ["stored.npz", "deflated.npz"] {
            let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata").join(file);
            let arrays = read_npz(&path).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(
                arrays,
                vec![
                    ("x".to_string(), NpyArray::F32(x.clone())),
                    ("labels".to_string(), NpyArray::I64(ndarray::arr1(&[3, -1, 7]).into_dyn()))
                ],
                "{file}"
            );
        }
    }

    #[test]
    fn the_zip_tool_agrees() {
        // An archive written by Info-ZIP's `zip` (deflate), when it is installed.
        let dir = TempDir::new("npz-zip");
        for (name, bytes) in sample() {
            std::fs::write(dir.path().join(name), bytes).unwrap();
        }
        let Ok(status) = std::process::Command::new("zip")
            .current_dir(dir.path())
            .args(["-q", "-9", "a.npz", "x.npy", "y.npy"])
            .status()
        else {
            return;
        };
        assert!(status.success());
        let arrays = read_npz(&dir.path().join("a.npz")).unwrap();
        assert_eq!(arrays.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(), ["x", "y"]);
    }

    #[test]
    fn corrupt_archives_are_errors() {
        let p = Path::new("bad.npz");
        let good = zip(&sample(), true, true);
        for n in (0..good.len()).step_by(7) {
            assert!(parse_npz(&good[..n], p).is_err(), "truncated at {n}");
        }
        // Flip a byte inside the first entry's compressed data.
        let mut flipped = good.clone();
        flipped[30 + 5 + 20 + 10] ^= 0x55;
        let e = parse_npz(&flipped, p).unwrap_err().to_string();
        assert!(e.contains("x.npy"), "{e}");
        let e = parse_npz(b"PK\x03\x04 not really", p).unwrap_err().to_string();
        assert!(e.contains("end-of-central-directory"), "{e}");
        let e = parse_npz(&zip(&[("readme.txt", b"hi".to_vec())], false, false), p).unwrap_err().to_string();
        assert!(e.contains("`readme.txt` is not a .npy array"), "{e}");
        let mut rng = crate::rng::Rng::new(9);
        for _ in 0..300 {
            let mut b = good.clone();
            for _ in 0..3 {
                let i = rng.below(b.len() as u64) as usize;
                b[i] = rng.below(256) as u8;
            }
            let _ = parse_npz(&b, p);
        }
    }
}
