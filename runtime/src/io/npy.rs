//! NumPy's `.npy` format (format versions 1.0, 2.0 and 3.0): a magic string,
//! a version, a little-endian header length, a Python dict literal giving
//! `descr`, `fortran_order` and `shape`, then the raw values.
//!
//! Reading accepts the element types people save (`f4 f8 i8 i4 u1`, plus
//! `f2 i1 i2 u2 u4 u8 b1` widened to one of those), either byte order, and
//! Fortran order. Writing produces C-order little-endian arrays with the
//! header padded to a multiple of 64 bytes, as NumPy itself does.

use std::path::Path;

use ndarray::{ArrayBase, ArrayD, Data, Dimension, IxDyn, ShapeBuilder};

use super::{IoError, f16_to_f32, read_file};

const MAGIC: &[u8] = b"\x93NUMPY";
const FORMAT: &str = ".npy";

/// A `.npy` array in the element type it is held in.
#[derive(Clone, Debug, PartialEq)]
pub enum NpyArray {
    /// `<f4` data.
    F32(ArrayD<f32>),
    /// `<f8` data.
    F64(ArrayD<f64>),
    /// `<i8` data.
    I64(ArrayD<i64>),
    /// `<i4` data.
    I32(ArrayD<i32>),
    /// `|u1` data.
    U8(ArrayD<u8>),
}

impl NpyArray {
    /// The array's shape.
    pub fn shape(&self) -> &[usize] {
        match self {
            NpyArray::F32(a) => a.shape(),
            NpyArray::F64(a) => a.shape(),
            NpyArray::I64(a) => a.shape(),
            NpyArray::I32(a) => a.shape(),
            NpyArray::U8(a) => a.shape(),
        }
    }

    /// NumPy's name of the element type.
    pub fn dtype(&self) -> &'static str {
        match self {
            NpyArray::F32(_) => "float32",
            NpyArray::F64(_) => "float64",
            NpyArray::I64(_) => "int64",
            NpyArray::I32(_) => "int32",
            NpyArray::U8(_) => "uint8",
        }
    }

    /// The values as f32 (f64 and i64 round to nearest).
    pub fn to_f32(&self) -> ArrayD<f32> {
        match self {
            NpyArray::F32(a) => a.clone(),
            NpyArray::F64(a) => a.mapv(|v| v as f32),
            NpyArray::I64(a) => a.mapv(|v| v as f32),
            NpyArray::I32(a) => a.mapv(|v| v as f32),
            NpyArray::U8(a) => a.mapv(f32::from),
        }
    }
}

impl NpyArray {
    /// The values as integers, exactly: integer arrays as they are, float
    /// arrays only when every value is an integer of magnitude at most 2^53
    /// (so the conversion loses nothing). Otherwise the first value that is
    /// not one, with its position in file (C) order.
    pub fn to_exact_i64(&self) -> Result<ArrayD<i64>, (usize, f64)> {
        const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53
        let floats = |vals: Vec<f64>, shape: &[usize]| -> Result<ArrayD<i64>, (usize, f64)> {
            let mut out = Vec::with_capacity(vals.len());
            for (i, v) in vals.into_iter().enumerate() {
                if !(v.is_finite() && v.fract() == 0.0 && v.abs() <= EXACT) {
                    return Err((i, v));
                }
                out.push(v as i64);
            }
            Ok(ArrayD::from_shape_vec(IxDyn(shape), out).expect("same length as the array"))
        };
        match self {
            NpyArray::I64(a) => Ok(a.clone()),
            NpyArray::I32(a) => Ok(a.mapv(i64::from)),
            NpyArray::U8(a) => Ok(a.mapv(i64::from)),
            NpyArray::F32(a) => floats(a.iter().map(|&v| f64::from(v)).collect(), a.shape()),
            NpyArray::F64(a) => floats(a.iter().copied().collect(), a.shape()),
        }
    }
}

/// Element types `write_npy` can store.
pub trait NpyElement: Copy + sealed::Sealed {
    /// The little-endian `descr` string.
    const DESCR: &'static str;
    /// Appends the value's little-endian bytes.
    fn put_le(self, out: &mut Vec<u8>);
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for f64 {}
    impl Sealed for i64 {}
    impl Sealed for i32 {}
    impl Sealed for u8 {}
}

macro_rules! element {
    ($t:ty, $descr:literal) => {
        impl NpyElement for $t {
            const DESCR: &'static str = $descr;
            fn put_le(self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }
        }
    };
}
element!(f32, "<f4");
element!(f64, "<f8");
element!(i64, "<i8");
element!(i32, "<i4");
element!(u8, "|u1");

/// The bytes of a `.npy` file holding `a` (C order, little-endian).
pub fn to_npy_bytes<T: NpyElement, S: Data<Elem = T>, D: Dimension>(a: &ArrayBase<S, D>) -> Vec<u8> {
    let dims: Vec<String> = a.shape().iter().map(usize::to_string).collect();
    // Python's tuple syntax: `()`, `(3,)`, `(2, 3)`.
    let shape = match dims.len() {
        1 => format!("({},)", dims[0]),
        _ => format!("({})", dims.join(", ")),
    };
    let mut header = format!("{{'descr': '{}', 'fortran_order': False, 'shape': {shape}, }}", T::DESCR);
    // Version 1.0 stores the header length in 2 bytes; longer headers (only
    // with absurdly many axes) need version 2.0's 4 bytes.
    let v1 = header.len() + 1 + 10 <= u16::MAX as usize;
    let prefix = if v1 { 10 } else { 12 };
    // Pad with spaces and end with a newline so the data starts 64-byte aligned.
    let total = (prefix + header.len() + 1).div_ceil(64) * 64;
    header.extend(std::iter::repeat_n(' ', total - prefix - header.len() - 1));
    header.push('\n');
    let mut out = Vec::with_capacity(total + a.len() * std::mem::size_of::<T>());
    out.extend_from_slice(MAGIC);
    if v1 {
        out.extend_from_slice(&[1, 0]);
        out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    } else {
        out.extend_from_slice(&[2, 0]);
        out.extend_from_slice(&(header.len() as u32).to_le_bytes());
    }
    out.extend_from_slice(header.as_bytes());
    // `iter` walks in logical (C) order whatever the memory layout.
    for &v in a.iter() {
        v.put_le(&mut out);
    }
    out
}

/// Writes `a` to `path` as `.npy`.
pub fn write_npy<T: NpyElement, S: Data<Elem = T>, D: Dimension>(
    path: &Path,
    a: &ArrayBase<S, D>,
) -> Result<(), IoError> {
    std::fs::write(path, to_npy_bytes(a)).map_err(|e| IoError::os(path, "write", &e))
}

/// Reads a `.npy` file (or a gzip-compressed one).
pub fn read_npy(path: &Path) -> Result<NpyArray, IoError> {
    parse_npy(&read_file(path)?, path)
}

/// The value of one key of the header dict.
#[derive(Debug, PartialEq)]
enum Lit {
    Str(String),
    Bool(bool),
    Tuple(Vec<usize>),
    Other,
}

/// Parses the header: a Python dict literal with string keys whose values
/// are strings, booleans or tuples of integers. Anything else (a structured
/// dtype's list) parses as `Other` and is rejected by the caller.
fn parse_header(h: &str) -> Result<Vec<(String, Lit)>, String> {
    let b = h.trim().as_bytes();
    let mut i = 0;
    let skip_ws = |i: &mut usize| {
        while *i < b.len() && b[*i].is_ascii_whitespace() {
            *i += 1;
        }
    };
    let string = |i: &mut usize| -> Result<String, String> {
        let q = b[*i];
        let start = *i + 1;
        let end = b[start..].iter().position(|&c| c == q).ok_or("unterminated string in the header")? + start;
        *i = end + 1;
        Ok(String::from_utf8_lossy(&b[start..end]).into_owned())
    };
    if b.first() != Some(&b'{') {
        return Err("the header is not a dict".into());
    }
    i += 1;
    let mut out = Vec::new();
    loop {
        skip_ws(&mut i);
        match b.get(i) {
            Some(b'}') => return Ok(out),
            Some(b'\'' | b'"') => {}
            _ => return Err("expected a quoted key in the header".into()),
        }
        let key = string(&mut i)?;
        skip_ws(&mut i);
        if b.get(i) != Some(&b':') {
            return Err(format!("expected `:` after '{key}' in the header"));
        }
        i += 1;
        skip_ws(&mut i);
        let value = match b.get(i) {
            Some(b'\'' | b'"') => Lit::Str(string(&mut i)?),
            Some(b'(') => {
                let end = b[i..].iter().position(|&c| c == b')').ok_or("unterminated tuple in the header")? + i;
                let inner = std::str::from_utf8(&b[i + 1..end]).map_err(|_| "header is not UTF-8")?;
                i = end + 1;
                let mut dims = Vec::new();
                for part in inner.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                    // Python 2 wrote long integers as `3L`.
                    let digits = part.trim_end_matches('L');
                    dims.push(digits.parse::<usize>().map_err(|_| format!("`{part}` is not a dimension"))?);
                }
                Lit::Tuple(dims)
            }
            _ if b[i..].starts_with(b"True") => {
                i += 4;
                Lit::Bool(true)
            }
            _ if b[i..].starts_with(b"False") => {
                i += 5;
                Lit::Bool(false)
            }
            _ => {
                // Skip a value we do not understand up to the next top-level comma.
                let mut depth = 0i32;
                while i < b.len() {
                    match b[i] {
                        b'[' | b'(' | b'{' => depth += 1,
                        b']' | b')' => depth -= 1,
                        b'}' if depth == 0 => break,
                        b'}' => depth -= 1,
                        b',' if depth == 0 => break,
                        _ => {}
                    }
                    i += 1;
                }
                Lit::Other
            }
        };
        out.push((key, value));
        skip_ws(&mut i);
        match b.get(i) {
            Some(b',') => i += 1,
            Some(b'}') => {}
            _ => return Err("expected `,` or `}` in the header".into()),
        }
    }
}

/// Parses the bytes of a `.npy` file; `path` names it in errors.
pub fn parse_npy(b: &[u8], path: &Path) -> Result<NpyArray, IoError> {
    let bad = |r: String| IoError::format(path, FORMAT, r);
    if !b.starts_with(MAGIC) {
        return Err(bad("it does not start with \\x93NUMPY".into()));
    }
    let major = *b.get(6).ok_or_else(|| bad("truncated before the version".into()))?;
    let (hlen, start) = match major {
        1 => (
            u16::from_le_bytes(b.get(8..10).ok_or_else(|| bad("truncated header".into()))?.try_into().expect("2 bytes"))
                as usize,
            10,
        ),
        2 | 3 => (
            u32::from_le_bytes(b.get(8..12).ok_or_else(|| bad("truncated header".into()))?.try_into().expect("4 bytes"))
                as usize,
            12,
        ),
        v => return Err(bad(format!("format version {v} is not supported (1, 2 and 3 are)"))),
    };
    let header = b
        .get(start..start + hlen)
        .ok_or_else(|| bad(format!("the header claims {hlen} bytes, the file ends before")))?;
    // Version 1 and 2 headers are latin-1, 3 is UTF-8; the keys we need are ASCII either way.
    let header = String::from_utf8_lossy(header);
    let fields = parse_header(&header).map_err(bad)?;
    let field = |k: &str| fields.iter().find(|(key, _)| key == k).map(|(_, v)| v);
    let descr = match field("descr") {
        Some(Lit::Str(s)) => s.clone(),
        Some(_) => return Err(bad("structured (record) dtypes are not supported".into())),
        None => return Err(bad("the header has no 'descr'".into())),
    };
    let fortran = match field("fortran_order") {
        Some(Lit::Bool(f)) => *f,
        None => false,
        Some(_) => return Err(bad("'fortran_order' is not True or False".into())),
    };
    let shape = match field("shape") {
        Some(Lit::Tuple(s)) => s.clone(),
        _ => return Err(bad("the header has no 'shape' tuple".into())),
    };
    let body = &b[start + hlen..];
    let (order, code) = match descr.as_bytes() {
        [o @ (b'<' | b'>' | b'|' | b'='), rest @ ..] => (*o, std::str::from_utf8(rest).unwrap_or("")),
        _ => (b'|', descr.as_str()),
    };
    let big = order == b'>';
    let size = match code {
        "f2" | "i2" | "u2" => 2,
        "f4" | "i4" | "u4" => 4,
        "f8" | "i8" | "u8" => 8,
        "u1" | "i1" | "b1" => 1,
        _ => {
            return Err(bad(format!(
                "element type '{descr}' is not supported (float16/32/64, int8–64, uint8–64, bool are)"
            )));
        }
    };
    let count = shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| bad(format!("shape {shape:?} overflows")))?;
    let need = count.checked_mul(size).ok_or_else(|| bad(format!("shape {shape:?} overflows")))?;
    if body.len() != need {
        return Err(bad(format!(
            "shape {shape:?} of '{descr}' needs {need} bytes of data, the file has {}",
            body.len()
        )));
    }
    // Each chunk as a fixed-size array in little-endian order.
    fn words<const N: usize>(body: &[u8], big: bool) -> impl Iterator<Item = [u8; N]> + '_ {
        body.chunks_exact(N).map(move |c| {
            let mut w: [u8; N] = c.try_into().expect("chunk size");
            if big {
                w.reverse();
            }
            w
        })
    }
    macro_rules! arr {
        ($v:expr) => {
            build($v, &shape, fortran).map_err(bad)?
        };
    }
    Ok(match code {
        "f4" => NpyArray::F32(arr!(words::<4>(body, big).map(f32::from_le_bytes).collect())),
        "f8" => NpyArray::F64(arr!(words::<8>(body, big).map(f64::from_le_bytes).collect())),
        "f2" => NpyArray::F32(arr!(words::<2>(body, big).map(|w| f16_to_f32(u16::from_le_bytes(w))).collect())),
        "i8" => NpyArray::I64(arr!(words::<8>(body, big).map(i64::from_le_bytes).collect())),
        "i4" => NpyArray::I32(arr!(words::<4>(body, big).map(i32::from_le_bytes).collect())),
        "i2" => NpyArray::I32(arr!(words::<2>(body, big).map(|w| i16::from_le_bytes(w) as i32).collect())),
        "u2" => NpyArray::I32(arr!(words::<2>(body, big).map(|w| u16::from_le_bytes(w) as i32).collect())),
        "u4" => NpyArray::I64(arr!(words::<4>(body, big).map(|w| u32::from_le_bytes(w) as i64).collect())),
        "u8" => {
            let vals: Result<Vec<i64>, _> =
                words::<8>(body, big).map(|w| i64::try_from(u64::from_le_bytes(w))).collect();
            NpyArray::I64(arr!(vals.map_err(|_| bad("a uint64 value does not fit int64".into()))?))
        }
        "i1" => NpyArray::I32(arr!(body.iter().map(|&v| v as i8 as i32).collect())),
        "b1" => NpyArray::U8(arr!(body.iter().map(|&v| u8::from(v != 0)).collect())),
        _ => NpyArray::U8(arr!(body.to_vec())),
    })
}

/// An array of `shape` from values in file order, converted to C order when
/// the file is in Fortran order.
fn build<T: Clone>(vals: Vec<T>, shape: &[usize], fortran: bool) -> Result<ArrayD<T>, String> {
    let a = if fortran {
        ArrayD::from_shape_vec(IxDyn(shape).f(), vals)
    } else {
        ArrayD::from_shape_vec(IxDyn(shape), vals)
    }
    .map_err(|e| e.to_string())?;
    Ok(if fortran { a.as_standard_layout().into_owned() } else { a })
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{TempDir, gzip};
    use super::*;
    use ndarray::{Array2, ArrayD, IxDyn};

    fn p() -> &'static Path {
        Path::new("t.npy")
    }

    /// A hand-made file: `descr`, header text and raw body.
    fn npy_v(version: u8, header: &str, body: &[u8]) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        out.extend([version, 0]);
        if version == 1 {
            out.extend((header.len() as u16).to_le_bytes());
        } else {
            out.extend((header.len() as u32).to_le_bytes());
        }
        out.extend(header.as_bytes());
        out.extend(body);
        out
    }

    #[test]
    fn round_trips_every_written_type() {
        let f = ArrayD::from_shape_vec(IxDyn(&[2, 3]), vec![1.5f32, -2.0, 3.25, 0.0, f32::MAX, -1e-7]).unwrap();
        assert_eq!(parse_npy(&to_npy_bytes(&f), p()).unwrap(), NpyArray::F32(f.clone()));
        let d = f.mapv(|v| v as f64 * 1.000_000_1);
        assert_eq!(parse_npy(&to_npy_bytes(&d), p()).unwrap(), NpyArray::F64(d));
        let i = ArrayD::from_shape_vec(IxDyn(&[4]), vec![i64::MIN, -1, 0, i64::MAX]).unwrap();
        assert_eq!(parse_npy(&to_npy_bytes(&i), p()).unwrap(), NpyArray::I64(i));
        let j = ArrayD::from_shape_vec(IxDyn(&[1, 2, 2]), vec![i32::MIN, 7, -7, i32::MAX]).unwrap();
        assert_eq!(parse_npy(&to_npy_bytes(&j), p()).unwrap(), NpyArray::I32(j));
        let u = ArrayD::from_shape_vec(IxDyn(&[3, 1]), vec![0u8, 128, 255]).unwrap();
        assert_eq!(parse_npy(&to_npy_bytes(&u), p()).unwrap(), NpyArray::U8(u));
        // Scalars and empty arrays.
        let s = ArrayD::from_shape_vec(IxDyn(&[]), vec![4.0f32]).unwrap();
        assert_eq!(parse_npy(&to_npy_bytes(&s), p()).unwrap(), NpyArray::F32(s));
        let e = ArrayD::<f32>::zeros(IxDyn(&[0, 5]));
        assert_eq!(parse_npy(&to_npy_bytes(&e), p()).unwrap(), NpyArray::F32(e));
    }

    #[test]
    fn the_written_header_is_numpys() {
        let a = Array2::<f32>::zeros((2, 3));
        let b = to_npy_bytes(&a);
        assert_eq!(&b[..8], b"\x93NUMPY\x01\x00");
        let hlen = u16::from_le_bytes([b[8], b[9]]) as usize;
        assert_eq!((10 + hlen) % 64, 0, "data is 64-byte aligned");
        let header = std::str::from_utf8(&b[10..10 + hlen]).unwrap();
        assert!(header.starts_with("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }"), "{header}");
        assert!(header.ends_with('\n'));
        let one = to_npy_bytes(&ndarray::arr1(&[1u8, 2]));
        assert!(std::str::from_utf8(&one[10..]).unwrap().contains("'shape': (2,)"));
        // A transposed view is written in logical order.
        let t = ndarray::arr2(&[[1i32, 2], [3, 4]]).reversed_axes();
        let NpyArray::I32(back) = parse_npy(&to_npy_bytes(&t), p()).unwrap() else { panic!() };
        assert_eq!(back.iter().copied().collect::<Vec<_>>(), vec![1, 3, 2, 4]);
    }

    #[test]
    fn version_2_headers_for_huge_headers() {
        // 22,000 axes of length 1 make a header longer than version 1.0's
        // 65,535-byte limit.
        let a = ArrayD::from_elem(IxDyn(&vec![1; 22_000]), 3.5f32);
        let b = to_npy_bytes(&a);
        assert_eq!(&b[6..8], &[2, 0]);
        let hlen = u32::from_le_bytes(b[8..12].try_into().unwrap()) as usize;
        assert!(hlen > 65_535 && (12 + hlen).is_multiple_of(64));
        assert_eq!(parse_npy(&b, p()).unwrap(), NpyArray::F32(a));
    }

    #[test]
    fn reads_numpy_files_byte_for_byte() {
        // `np.save(f, np.arange(6, dtype='<f8').reshape(2, 3))` with NumPy's
        // exact header (version 1.0, padded to 128 bytes).
        let mut header = "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }".to_string();
        while !(10 + header.len() + 1).is_multiple_of(64) {
            header.push(' ');
        }
        header.push('\n');
        let body: Vec<u8> = (0..6).flat_map(|v| (v as f64).to_le_bytes()).collect();
        let NpyArray::F64(a) = parse_npy(&npy_v(1, &header, &body), p()).unwrap() else { panic!() };
        assert_eq!(a, ndarray::arr2(&[[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]).into_dyn());
        // Version 2.0 and 3.0 headers, double quotes, no trailing comma.
        for v in [2, 3] {
            let NpyArray::I64(a) = parse_npy(
                &npy_v(
                    v,
                    "{\"descr\": \"<i8\", \"shape\": (2,), \"fortran_order\": False}\n",
                    &[1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0],
                ),
                p(),
            )
            .unwrap() else {
                panic!()
            };
            assert_eq!(a.as_slice().unwrap(), &[1, 2]);
        }
    }

    #[test]
    fn big_endian_fortran_order_and_narrow_types() {
        // '>i4' Fortran-ordered [[1, 2, 3], [4, 5, 6]] is stored column by column.
        let body: Vec<u8> = [1i32, 4, 2, 5, 3, 6].iter().flat_map(|v| v.to_be_bytes()).collect();
        let NpyArray::I32(a) =
            parse_npy(&npy_v(1, "{'descr': '>i4', 'fortran_order': True, 'shape': (2, 3), }\n", &body), p()).unwrap()
        else {
            panic!()
        };
        assert_eq!(a, ndarray::arr2(&[[1, 2, 3], [4, 5, 6]]).into_dyn());
        let NpyArray::F32(h) = parse_npy(
            &npy_v(1, "{'descr': '<f2', 'fortran_order': False, 'shape': (2,), }\n", &[0x00, 0x3c, 0x00, 0xc0]),
            p(),
        )
        .unwrap() else {
            panic!()
        };
        assert_eq!(h.as_slice().unwrap(), &[1.0, -2.0]);
        let NpyArray::U8(b) =
            parse_npy(&npy_v(1, "{'descr': '|b1', 'fortran_order': False, 'shape': (3,), }\n", &[0, 1, 2]), p())
                .unwrap()
        else {
            panic!()
        };
        assert_eq!(b.as_slice().unwrap(), &[0, 1, 1]);
        let NpyArray::I32(s) =
            parse_npy(&npy_v(1, "{'descr': '|i1', 'fortran_order': False, 'shape': (2L,), }\n", &[0xff, 5]), p())
                .unwrap()
        else {
            panic!()
        };
        assert_eq!(s.as_slice().unwrap(), &[-1, 5]);
        let e = parse_npy(
            &npy_v(1, "{'descr': '<u8', 'fortran_order': False, 'shape': (1,), }\n", &u64::MAX.to_le_bytes()),
            p(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("does not fit"), "{e}");
    }

    #[test]
    fn bad_files_are_errors_not_panics() {
        let good = to_npy_bytes(&ndarray::arr1(&[1.0f32, 2.0, 3.0]));
        // Every truncation of a good file is an error.
        for n in 0..good.len() {
            let e = parse_npy(&good[..n], p()).unwrap_err();
            assert!(e.to_string().starts_with("t.npy: not a valid .npy file"), "{e}");
        }
        let mut long = good.clone();
        long.push(0);
        assert!(parse_npy(&long, p()).unwrap_err().to_string().contains("needs 12 bytes of data, the file has 13"));
        let cases: [(&str, &str); 6] = [
            ("{'descr': '<c8', 'fortran_order': False, 'shape': (1,), }", "not supported"),
            ("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }", "structured"),
            ("{'descr': '<f4', 'fortran_order': False, }", "no 'shape'"),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': (x,), }", "not a dimension"),
            ("{'descr': '<f4', 'shape': (99999999999, 99999999999, 99999999999), }", "overflows"),
            ("['descr']", "not a dict"),
        ];
        for (h, msg) in cases {
            let e = parse_npy(&npy_v(1, h, &[0; 4]), p()).unwrap_err();
            assert!(e.to_string().contains(msg), "{h}: {e}");
        }
        assert!(parse_npy(&npy_v(9, "{}", &[]), p()).unwrap_err().to_string().contains("version 9"));
        // Random garbage after a valid magic.
        let mut rng = crate::rng::Rng::new(3);
        for _ in 0..200 {
            let n = rng.below(80) as usize;
            let mut b = MAGIC.to_vec();
            b.extend((0..n).map(|_| rng.below(256) as u8));
            let _ = parse_npy(&b, p());
        }
    }

    fn testdata(name: &str) -> std::path::PathBuf {
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata").join(name)
    }

    #[test]
    fn numpy_written_files() {
        let x = ArrayD::from_shape_vec(IxDyn(&[2, 3, 4]), (0..24).map(|v| v as f32 / 8.0).collect()).unwrap();
        assert_eq!(read_npy(&testdata("f4_c.npy")).unwrap(), NpyArray::F32(x.clone()));
        // Our writer produces NumPy's bytes exactly.
        assert_eq!(to_npy_bytes(&x), std::fs::read(testdata("f4_c.npy")).unwrap());
        let f = ndarray::arr2(&[[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]).into_dyn();
        assert_eq!(read_npy(&testdata("f8_fortran.npy")).unwrap(), NpyArray::F64(f));
        assert_eq!(
            read_npy(&testdata("i4_be.npy")).unwrap(),
            NpyArray::I32(ndarray::arr2(&[[1, -2], [300_000, 4]]).into_dyn())
        );
        assert_eq!(read_npy(&testdata("u1.npy")).unwrap(), NpyArray::U8(ndarray::arr1(&[0, 7, 255]).into_dyn()));
        assert_eq!(read_npy(&testdata("b1.npy")).unwrap(), NpyArray::U8(ndarray::arr1(&[1, 0, 1]).into_dyn()));
        assert_eq!(
            read_npy(&testdata("f2.npy")).unwrap(),
            NpyArray::F32(ndarray::arr1(&[1.5, -0.25, 65504.0]).into_dyn())
        );
        assert_eq!(read_npy(&testdata("scalar.npy")).unwrap(), NpyArray::F32(ArrayD::from_elem(IxDyn(&[]), 2.5)));
    }

    #[test]
    fn files_and_gzip() {
        let dir = TempDir::new("npy");
        let a = ndarray::arr2(&[[1.0f32, 2.0], [3.0, 4.0]]);
        let path = dir.path().join("a.npy");
        write_npy(&path, &a).unwrap();
        assert_eq!(read_npy(&path).unwrap().to_f32(), a.clone().into_dyn());
        let gz = dir.path().join("a.npy.gz");
        std::fs::write(&gz, gzip(&std::fs::read(&path).unwrap())).unwrap();
        assert_eq!(read_npy(&gz).unwrap(), NpyArray::F32(a.into_dyn()));
        assert!(matches!(read_npy(&dir.path().join("missing.npy")), Err(IoError::Os { .. })));
        assert!(write_npy(&dir.path().join("no/such/dir.npy"), &ndarray::arr1(&[1u8])).is_err());
    }
}
