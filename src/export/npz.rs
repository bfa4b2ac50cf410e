//! `.npz` archives as `np.load` reads them: a zip of `.npy` entries, stored (not deflated), so the
//! writer needs no compressor. Sizes past the classic zip's 4 GiB fields are refused, not wrapped.

use nnc_runtime::exec::Tensor;
use nnc_runtime::train::Dataset;

/// The archive of every array of `ds` (`name.npy` each).
pub(crate) fn archive(ds: &Dataset) -> Result<Vec<u8>, String> {
    let entries: Vec<(String, Vec<u8>)> = ds
        .arrays
        .iter()
        .map(|(name, t)| {
            let bytes = match t {
                Tensor::F(a) => nnc_runtime::io::to_npy_bytes(a),
                Tensor::I(a) => nnc_runtime::io::to_npy_bytes(a),
            };
            (format!("{name}.npy"), bytes)
        })
        .collect();
    zip_stored(&entries)
}

fn u32_of(n: usize, what: &str) -> Result<u32, String> {
    u32::try_from(n).map_err(|_| format!("{what} is larger than a .npz without zip64 holds (4 GiB)"))
}

/// A zip archive of `entries` (name, bytes), each stored uncompressed.
pub(crate) fn zip_stored(entries: &[(String, Vec<u8>)]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for (name, data) in entries {
        let offset = u32_of(out.len(), "the archive")?;
        let size = u32_of(data.len(), name)?;
        let crc = crc32(data);
        let name_len = u16::try_from(name.len()).map_err(|_| format!("entry name `{name}` is too long"))?;
        // Version 2.0, no flags, stored, 1980-01-01 00:00.
        let common = |v: &mut Vec<u8>| {
            v.extend_from_slice(&20u16.to_le_bytes());
            v.extend_from_slice(&0u16.to_le_bytes());
            v.extend_from_slice(&0u16.to_le_bytes());
            v.extend_from_slice(&0u16.to_le_bytes());
            v.extend_from_slice(&0x21u16.to_le_bytes());
            v.extend_from_slice(&crc.to_le_bytes());
            v.extend_from_slice(&size.to_le_bytes());
            v.extend_from_slice(&size.to_le_bytes());
            v.extend_from_slice(&name_len.to_le_bytes());
            v.extend_from_slice(&0u16.to_le_bytes());
        };
        out.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
        common(&mut out);
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(data);
        central.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
        central.extend_from_slice(&20u16.to_le_bytes());
        common(&mut central);
        // Comment length, disk, internal and external attributes, the local header's offset.
        central.extend_from_slice(&[0u8; 10]);
        central.extend_from_slice(&offset.to_le_bytes());
        central.extend_from_slice(name.as_bytes());
    }
    let count = u16::try_from(entries.len()).map_err(|_| "too many arrays for one .npz".to_string())?;
    let cd_offset = u32_of(out.len(), "the archive")?;
    let cd_size = u32_of(central.len(), "the archive's directory")?;
    out.extend_from_slice(&central);
    out.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    out.extend_from_slice(&[0u8; 4]);
    out.extend_from_slice(&count.to_le_bytes());
    out.extend_from_slice(&count.to_le_bytes());
    out.extend_from_slice(&cd_size.to_le_bytes());
    out.extend_from_slice(&cd_offset.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    Ok(out)
}

/// CRC-32 (IEEE, reflected), as zip stores it.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_of_the_check_string() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn the_runtime_reads_what_is_written() {
        // A float32 [2, 3] array in .npy form, round-tripped through the runtime's own writer.
        let mut header = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }".to_string();
        while !(10 + header.len() + 1).is_multiple_of(64) {
            header.push(' ');
        }
        header.push('\n');
        let mut npy = b"\x93NUMPY\x01\x00".to_vec();
        npy.extend_from_slice(&(header.len() as u16).to_le_bytes());
        npy.extend_from_slice(header.as_bytes());
        for v in 0..6 {
            npy.extend_from_slice(&(v as f32).to_le_bytes());
        }
        let parsed = nnc_runtime::io::parse_npy(&npy, std::path::Path::new("a.npy")).unwrap().to_f32();
        let zip = zip_stored(&[("a.npy".into(), nnc_runtime::io::to_npy_bytes(&parsed))]).unwrap();
        let arrays = nnc_runtime::io::parse_npz(&zip, std::path::Path::new("t.npz")).unwrap();
        assert_eq!(arrays.len(), 1);
        assert_eq!(arrays[0].0, "a");
        assert_eq!(arrays[0].1.shape(), &[2, 3]);
        assert_eq!(arrays[0].1.to_f32().iter().copied().collect::<Vec<f32>>(), vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0]);
    }
}
