//! One member of a zip archive (a `.keras` file's `config.json`), read with
//! bounded memory: the end-of-central-directory record, the central
//! directory (capped), then only the wanted member, inflated through
//! `sandbox::read_limited` so a zip bomb stops at the cap.

use std::io::{Read, Seek, SeekFrom};

/// The largest central directory read (a `.keras` file has three or four members).
const MAX_DIRECTORY: u64 = 1 << 20;

fn u16_at(b: &[u8], i: usize) -> Option<u64> {
    Some(u64::from(u16::from_le_bytes(b.get(i..i + 2)?.try_into().ok()?)))
}

fn u32_at(b: &[u8], i: usize) -> Option<u64> {
    Some(u64::from(u32::from_le_bytes(b.get(i..i + 4)?.try_into().ok()?)))
}

/// The member `name` of the archive `file` (`len` bytes), inflated to at most `cap` bytes.
pub fn read_member(mut file: impl Read + Seek, len: u64, name: &str, cap: u64) -> Result<Vec<u8>, String> {
    let bad = |what: &str| format!("not a readable zip archive: {what}");
    // The end record is 22 bytes plus a comment of up to 64 KiB, at the end.
    let tail_len = len.min(22 + 0xFFFF);
    let mut tail = vec![0; tail_len as usize];
    file.seek(SeekFrom::Start(len - tail_len)).map_err(|e| e.to_string())?;
    file.read_exact(&mut tail).map_err(|e| e.to_string())?;
    let end = (0..tail.len().saturating_sub(21))
        .rev()
        .find(|&i| tail[i..i + 4] == [0x50, 0x4b, 0x05, 0x06])
        .ok_or_else(|| bad("no end-of-central-directory record"))?;
    let entries = u16_at(&tail, end + 10).ok_or_else(|| bad("truncated end record"))?;
    let (dir_size, dir_offset) = (u32_at(&tail, end + 12).unwrap_or(0), u32_at(&tail, end + 16).unwrap_or(0));
    if dir_size > MAX_DIRECTORY || dir_offset.checked_add(dir_size).is_none_or(|e| e > len) {
        return Err(bad("the central directory is larger than the archive allows"));
    }
    let mut dir = vec![0; dir_size as usize];
    file.seek(SeekFrom::Start(dir_offset)).map_err(|e| e.to_string())?;
    file.read_exact(&mut dir).map_err(|e| e.to_string())?;
    let mut at = 0usize;
    for _ in 0..entries {
        if dir.get(at..at + 4) != Some(&[0x50, 0x4b, 0x01, 0x02][..]) {
            return Err(bad("a malformed central directory entry"));
        }
        let field = |i: usize, wide: bool| if wide { u32_at(&dir, at + i) } else { u16_at(&dir, at + i) };
        let get = |i, wide| field(i, wide).ok_or_else(|| bad("a truncated central directory entry"));
        let (method, packed, size) = (get(10, false)?, get(20, true)?, get(24, true)?);
        let (name_len, extra, comment) = (get(28, false)?, get(30, false)?, get(32, false)?);
        let local = get(42, true)?;
        let entry_name = dir.get(at + 46..at + 46 + name_len as usize).ok_or_else(|| bad("a truncated name"))?;
        if entry_name == name.as_bytes() {
            return read_entry(&mut file, len, local, method, packed, size, cap);
        }
        at += 46 + (name_len + extra + comment) as usize;
    }
    Err(format!("the archive has no `{name}`"))
}

fn read_entry(
    file: &mut (impl Read + Seek),
    len: u64,
    local: u64,
    method: u64,
    packed: u64,
    size: u64,
    cap: u64,
) -> Result<Vec<u8>, String> {
    let bad = |what: &str| format!("not a readable zip archive: {what}");
    if packed == 0xFFFF_FFFF || size == 0xFFFF_FFFF {
        return Err(bad("zip64 members are not read"));
    }
    let mut header = [0u8; 30];
    file.seek(SeekFrom::Start(local)).map_err(|e| e.to_string())?;
    file.read_exact(&mut header).map_err(|_| bad("a truncated local header"))?;
    if header[..4] != [0x50, 0x4b, 0x03, 0x04] {
        return Err(bad("a malformed local header"));
    }
    let skip = u16_at(&header, 26).unwrap_or(0) + u16_at(&header, 28).unwrap_or(0);
    let start = local + 30 + skip;
    if start.checked_add(packed).is_none_or(|e| e > len) {
        return Err(bad("a member runs past the end of the archive"));
    }
    file.seek(SeekFrom::Start(start)).map_err(|e| e.to_string())?;
    let raw = file.take(packed);
    let too_big = || format!("the member inflates to more than {} (the cap)", nnc_compiler::sandbox::human_size(cap));
    let out = match method {
        0 => nnc_compiler::sandbox::read_limited(raw, cap, size),
        8 => nnc_compiler::sandbox::read_limited(flate2::read::DeflateDecoder::new(raw), cap, size),
        m => return Err(bad(&format!("compression method {m} is not read (stored and deflate are)"))),
    };
    out.map_err(|e| bad(&e.to_string()))?.ok_or_else(too_big)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Cursor, Write};

    /// A one-member archive, stored (0) or deflated (8).
    fn archive(name: &str, data: &[u8], method: u16) -> Vec<u8> {
        let body = if method == 8 {
            let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(data).unwrap();
            e.finish().unwrap()
        } else {
            data.to_vec()
        };
        let mut out = Vec::new();
        let common = |out: &mut Vec<u8>| {
            out.extend(method.to_le_bytes());
            out.extend([0u8; 8]); // time, date, crc (not checked)
            out.extend((body.len() as u32).to_le_bytes());
            out.extend((data.len() as u32).to_le_bytes());
            out.extend((name.len() as u16).to_le_bytes());
            out.extend([0u8; 2]);
        };
        out.extend([0x50, 0x4b, 0x03, 0x04, 20, 0, 0, 0]);
        common(&mut out);
        out.extend(name.as_bytes());
        out.extend(&body);
        let dir = out.len();
        out.extend([0x50, 0x4b, 0x01, 0x02, 20, 0, 20, 0, 0, 0]);
        common(&mut out);
        out.extend([0u8; 10]); // comment length, disk, attributes
        out.extend(0u32.to_le_bytes()); // local header offset
        out.extend(name.as_bytes());
        let size = out.len() - dir;
        out.extend([0x50, 0x4b, 0x05, 0x06, 0, 0, 0, 0, 1, 0, 1, 0]);
        out.extend((size as u32).to_le_bytes());
        out.extend((dir as u32).to_le_bytes());
        out.extend([0u8; 2]);
        out
    }

    #[test]
    fn reads_stored_and_deflated_members() {
        for method in [0, 8] {
            let z = archive("config.json", b"{\"a\": 1}", method);
            let got = read_member(Cursor::new(&z), z.len() as u64, "config.json", 1 << 20).unwrap();
            assert_eq!(got, b"{\"a\": 1}");
            let e = read_member(Cursor::new(&z), z.len() as u64, "other.json", 1 << 20).unwrap_err();
            assert!(e.contains("no `other.json`"), "{e}");
        }
    }

    #[test]
    fn a_zip_bomb_stops_at_the_cap() {
        let z = archive("config.json", &vec![b' '; 10 << 20], 8);
        assert!(z.len() < 100_000);
        let e = read_member(Cursor::new(&z), z.len() as u64, "config.json", 1 << 20).unwrap_err();
        assert!(e.contains("inflates to more than 1 MiB"), "{e}");
    }

    #[test]
    fn truncated_and_garbage_archives_are_errors() {
        let z = archive("config.json", b"{}", 8);
        // Cut before the end record: no directory to read (a cut inside the record is still readable).
        for cut in [0, 4, 10, 22, z.len() / 2, z.len() - 20] {
            let part = &z[..cut];
            let mut bytes = part.to_vec();
            bytes.extend(b"garbage");
            assert!(read_member(Cursor::new(&bytes), bytes.len() as u64, "config.json", 1 << 20).is_err());
        }
    }
}
