//! The IDX format of the MNIST files (LeCun): two zero bytes, a type code,
//! the number of axes, each axis as a big-endian u32, then big-endian
//! values. `.gz` files (as MNIST is distributed) are decompressed.

use std::path::Path;

use ndarray::{ArrayD, IxDyn};

use super::{Array, DataError};
use crate::io::IoError;

const FORMAT: &str = "IDX";

pub(super) fn read_idx(path: &Path) -> Result<Array, DataError> {
    parse_idx(&crate::io::read_file(path)?, path)
}

/// Element types: unsigned byte 0x08, signed byte 0x09, i16 0x0B, i32
/// 0x0C, f32 0x0D, f64 0x0E. Types f32 holds exactly (bytes, i16) load as
/// F32; i32 loads as I64 (f32 would round labels above 2²⁴); floats as F32.
pub(super) fn parse_idx(b: &[u8], path: &Path) -> Result<Array, DataError> {
    let bad = |r: String| DataError::File(IoError::format(path, FORMAT, r));
    if b.len() < 4 {
        return Err(bad(format!("{} bytes, shorter than the 4-byte magic number", b.len())));
    }
    if b[0] != 0 || b[1] != 0 {
        return Err(bad(format!(
            "magic number {:02x} {:02x} {:02x} {:02x} does not start with two zero bytes",
            b[0], b[1], b[2], b[3]
        )));
    }
    let (code, rank) = (b[2], b[3] as usize);
    let (size, type_name) = match code {
        0x08 => (1, "unsigned byte"),
        0x09 => (1, "signed byte"),
        0x0B => (2, "i16"),
        0x0C => (4, "i32"),
        0x0D => (4, "f32"),
        0x0E => (8, "f64"),
        c => return Err(bad(format!("unknown element type 0x{c:02x} (0x08, 0x09, 0x0B–0x0E are defined)"))),
    };
    if rank == 0 {
        return Err(bad("zero axes: no samples".into()));
    }
    let head = 4 + 4 * rank;
    let dims = b
        .get(4..head)
        .ok_or_else(|| bad(format!("truncated header: {rank} axes need {head} bytes, the file has {}", b.len())))?;
    let shape: Vec<usize> =
        dims.chunks_exact(4).map(|c| u32::from_be_bytes(c.try_into().expect("4 bytes")) as usize).collect();
    let count = shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(|| bad(format!("shape {shape:?} overflows")))?;
    let need = count.checked_mul(size).ok_or_else(|| bad(format!("shape {shape:?} overflows")))?;
    let body = &b[head..];
    if body.len() != need {
        let dims = shape.iter().map(usize::to_string).collect::<Vec<_>>().join(" × ");
        let what = if body.len() < need { "truncated" } else { "trailing bytes" };
        return Err(bad(format!(
            "{what}: the header says {dims} values of {type_name} = {need} bytes, the file has {}",
            body.len()
        )));
    }
    let f32s = |v: Vec<f32>| Array::F32(ArrayD::from_shape_vec(IxDyn(&shape), v).expect("size checked"));
    Ok(match code {
        0x08 => f32s(body.iter().map(|&v| f32::from(v)).collect()),
        0x09 => f32s(body.iter().map(|&v| f32::from(v as i8)).collect()),
        0x0B => f32s(body.chunks_exact(2).map(|c| f32::from(i16::from_be_bytes([c[0], c[1]]))).collect()),
        0x0C => Array::I64(
            ArrayD::from_shape_vec(
                IxDyn(&shape),
                body.chunks_exact(4).map(|c| i64::from(i32::from_be_bytes(c.try_into().expect("4")))).collect(),
            )
            .expect("size checked"),
        ),
        0x0D => f32s(body.chunks_exact(4).map(|c| f32::from_be_bytes(c.try_into().expect("4"))).collect()),
        _ => f32s(body.chunks_exact(8).map(|c| f64::from_be_bytes(c.try_into().expect("8")) as f32).collect()),
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::super::source::{SourceSpec, load};
    use super::*;
    use crate::io::testutil::{TempDir, gzip};

    /// An IDX file of `shape` with type `code` and already-encoded values.
    pub(crate) fn idx(code: u8, shape: &[u32], body: &[u8]) -> Vec<u8> {
        let mut b = vec![0, 0, code, shape.len() as u8];
        for d in shape {
            b.extend(d.to_be_bytes());
        }
        b.extend(body);
        b
    }

    #[test]
    fn every_type_code() {
        let p = Path::new("t.idx");
        let a = parse_idx(&idx(0x08, &[2, 2], &[0, 1, 128, 255]), p).unwrap();
        assert_eq!(a, Array::F32(ndarray::arr2(&[[0.0, 1.0], [128.0, 255.0]]).into_dyn()));
        assert_eq!(parse_idx(&idx(0x09, &[2], &[0xff, 3]), p).unwrap().to_f32().as_slice().unwrap(), &[-1.0, 3.0]);
        let body: Vec<u8> = [-300i16, 7].iter().flat_map(|v| v.to_be_bytes()).collect();
        assert_eq!(parse_idx(&idx(0x0B, &[2], &body), p).unwrap().to_f32().as_slice().unwrap(), &[-300.0, 7.0]);
        let body: Vec<u8> = [16_777_217i32, -5].iter().flat_map(|v| v.to_be_bytes()).collect();
        assert_eq!(
            parse_idx(&idx(0x0C, &[2], &body), p).unwrap(),
            Array::I64(ndarray::arr1(&[16_777_217i64, -5]).into_dyn())
        );
        let body: Vec<u8> = [0.5f32, -2.25].iter().flat_map(|v| v.to_be_bytes()).collect();
        assert_eq!(parse_idx(&idx(0x0D, &[1, 2], &body), p).unwrap().to_f32().as_slice().unwrap(), &[0.5, -2.25]);
        let body: Vec<u8> = [1.5f64].iter().flat_map(|v| v.to_be_bytes()).collect();
        assert_eq!(parse_idx(&idx(0x0E, &[1], &body), p).unwrap().to_f32().as_slice().unwrap(), &[1.5]);
    }

    #[test]
    fn bad_files() {
        let p = Path::new("images.idx");
        let good = idx(0x08, &[3, 2, 2], &[7; 12]);
        for n in 0..good.len() {
            let e = parse_idx(&good[..n], p).unwrap_err();
            assert!(e.to_string().starts_with("images.idx: not a valid IDX file"), "{e}");
        }
        let e = parse_idx(&good[..good.len() - 2], p).unwrap_err().to_string();
        assert!(
            e.contains("truncated: the header says 3 × 2 × 2 values of unsigned byte = 12 bytes, the file has 10"),
            "{e}"
        );
        let mut long = good.clone();
        long.push(0);
        assert!(parse_idx(&long, p).unwrap_err().to_string().contains("trailing bytes"));
        assert!(parse_idx(&idx(0x0A, &[1], &[0]), p).unwrap_err().to_string().contains("unknown element type 0x0a"));
        assert!(parse_idx(b"\x1f\x8b\x08\x00", p).unwrap_err().to_string().contains("two zero bytes"));
        assert!(parse_idx(&idx(0x08, &[], &[]), p).unwrap_err().to_string().contains("zero axes"));
        assert!(
            parse_idx(&idx(0x0E, &[u32::MAX, u32::MAX, u32::MAX], &[]), p)
                .unwrap_err()
                .to_string()
                .contains("overflows")
        );
    }

    #[test]
    fn mnist_style_source() {
        let dir = TempDir::new("idx");
        let images: Vec<u8> = (0..3 * 28 * 28).map(|i| (i % 256) as u8).collect();
        std::fs::write(dir.path().join("train-images-idx3-ubyte.gz"), gzip(&idx(0x08, &[3, 28, 28], &images))).unwrap();
        std::fs::write(dir.path().join("train-labels-idx1-ubyte"), idx(0x08, &[3], &[5, 0, 4])).unwrap();
        std::fs::write(dir.path().join("t10k-labels-idx1-ubyte"), idx(0x08, &[2], &[1, 2])).unwrap();
        let spec = SourceSpec::Idx {
            arrays: vec![
                ("images".into(), "train-images-idx3-ubyte.gz".into()),
                ("labels".into(), "train-labels-idx1-ubyte".into()),
            ],
        };
        let l = load(&spec, dir.path()).unwrap();
        assert_eq!(l.dataset.len(), 3);
        assert_eq!(l.dataset.get("images").unwrap().shape(), &[3, 28, 28]);
        assert_eq!(l.dataset.get("labels").unwrap().to_f32().as_slice().unwrap(), &[5.0, 0.0, 4.0]);
        let spec = SourceSpec::Idx {
            arrays: vec![
                ("images".into(), "train-images-idx3-ubyte.gz".into()),
                ("labels".into(), "t10k-labels-idx1-ubyte".into()),
            ],
        };
        let e = load(&spec, dir.path()).unwrap_err().to_string();
        assert!(e.contains("`images` has 3, `labels` has 2"), "{e}");
        // A truncated compressed file is a gzip error naming the file.
        let gz = gzip(&idx(0x08, &[3, 28, 28], &images));
        std::fs::write(dir.path().join("cut.gz"), &gz[..gz.len() / 2]).unwrap();
        let e = load(&SourceSpec::Idx { arrays: vec![("images".into(), "cut.gz".into())] }, dir.path())
            .unwrap_err()
            .to_string();
        assert!(e.contains("cut.gz: not a valid gzip file"), "{e}");
    }
}
