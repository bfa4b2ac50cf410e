//! Checkpoints as safetensors files (LANGUAGE.md §9): an 8-byte little-endian
//! header length, a JSON header mapping names to dtype/shape/offsets, then
//! the raw little-endian data. Written atomically: a temporary file in the
//! same directory is filled, synced and renamed over the target, so a crash
//! never leaves a half-written checkpoint where a good one was.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use ndarray::{ArrayD, IxDyn};

#[derive(Debug)]
pub enum CheckpointError {
    Io { path: PathBuf, error: std::io::Error },
    Format { path: PathBuf, reason: String },
}

impl std::fmt::Display for CheckpointError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CheckpointError::Io { path, error } => write!(f, "{}: {error}", path.display()),
            CheckpointError::Format { path, reason } => write!(f, "{}: not a valid safetensors file: {reason}", path.display()),
        }
    }
}

/// Saves `tensors` (f32) and string `metadata` to `path` atomically.
pub fn save(path: &Path, tensors: &BTreeMap<String, ArrayD<f32>>, metadata: &BTreeMap<String, String>) -> Result<(), CheckpointError> {
    let io = |error| CheckpointError::Io { path: path.to_path_buf(), error };
    let mut header = serde_json::Map::new();
    if !metadata.is_empty() {
        header.insert("__metadata__".into(), serde_json::to_value(metadata).expect("string map"));
    }
    let mut offset = 0usize;
    for (name, t) in tensors {
        let bytes = t.len() * 4;
        header.insert(
            name.clone(),
            serde_json::json!({"dtype": "F32", "shape": t.shape(), "data_offsets": [offset, offset + bytes]}),
        );
        offset += bytes;
    }
    let mut head = serde_json::to_vec(&serde_json::Value::Object(header)).expect("json");
    // The format pads the header with spaces to a multiple of 8 bytes.
    while head.len() % 8 != 0 {
        head.push(b' ');
    }
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io)?;
    let tmp = dir.join(format!(".{}.tmp{}", path.file_name().and_then(|n| n.to_str()).unwrap_or("checkpoint"), std::process::id()));
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&tmp).map_err(io)?);
        f.write_all(&(head.len() as u64).to_le_bytes()).map_err(io)?;
        f.write_all(&head).map_err(io)?;
        for t in tensors.values() {
            for v in t.as_standard_layout().iter() {
                f.write_all(&v.to_le_bytes()).map_err(io)?;
            }
        }
        let file = f.into_inner().map_err(|e| io(e.into_error()))?;
        file.sync_all().map_err(io)?;
    }
    std::fs::rename(&tmp, path).map_err(io)?;
    // Make the rename itself durable.
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

pub type Loaded = (BTreeMap<String, ArrayD<f32>>, BTreeMap<String, String>);

/// Loads a safetensors file (F32, F64, I64, I32 tensors are read as f32).
pub fn load(path: &Path) -> Result<Loaded, CheckpointError> {
    let bytes = std::fs::read(path).map_err(|error| CheckpointError::Io { path: path.to_path_buf(), error })?;
    let bad = |reason: &str| CheckpointError::Format { path: path.to_path_buf(), reason: reason.to_string() };
    if bytes.len() < 8 {
        return Err(bad("shorter than its header length"));
    }
    let n = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes")) as usize;
    let head = bytes.get(8..8usize.saturating_add(n)).ok_or_else(|| bad("header runs past the end"))?;
    let header: serde_json::Value = serde_json::from_slice(head).map_err(|e| bad(&e.to_string()))?;
    let data = &bytes[8 + n..];
    let mut tensors = BTreeMap::new();
    let mut metadata = BTreeMap::new();
    let obj = header.as_object().ok_or_else(|| bad("header is not an object"))?;
    for (name, v) in obj {
        if name == "__metadata__" {
            if let Some(m) = v.as_object() {
                for (k, val) in m {
                    metadata.insert(k.clone(), val.as_str().unwrap_or_default().to_string());
                }
            }
            continue;
        }
        let dtype = v["dtype"].as_str().ok_or_else(|| bad("tensor without dtype"))?;
        let shape: Vec<usize> = v["shape"].as_array().ok_or_else(|| bad("tensor without shape"))?.iter().map(|d| d.as_u64().unwrap_or(0) as usize).collect();
        let offs = v["data_offsets"].as_array().ok_or_else(|| bad("tensor without offsets"))?;
        let (s, e) = (offs.first().and_then(|x| x.as_u64()).unwrap_or(0) as usize, offs.get(1).and_then(|x| x.as_u64()).unwrap_or(0) as usize);
        let raw = data.get(s..e).ok_or_else(|| bad(&format!("data of `{name}` is out of range")))?;
        let count: usize = shape.iter().product();
        let values: Vec<f32> = match dtype {
            "F32" => raw.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().expect("4"))).collect(),
            "F64" => raw.chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().expect("8")) as f32).collect(),
            "I64" => raw.chunks_exact(8).map(|c| i64::from_le_bytes(c.try_into().expect("8")) as f32).collect(),
            "I32" => raw.chunks_exact(4).map(|c| i32::from_le_bytes(c.try_into().expect("4")) as f32).collect(),
            other => return Err(bad(&format!("dtype {other} of `{name}` is not supported"))),
        };
        if values.len() != count {
            return Err(bad(&format!("`{name}` has {} values for shape {shape:?}", values.len())));
        }
        tensors.insert(name.clone(), ArrayD::from_shape_vec(IxDyn(&shape), values).expect("checked count"));
    }
    Ok((tensors, metadata))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_with_metadata() {
        let dir = std::env::temp_dir().join(format!("nnc-ckpt-{}", std::process::id()));
        let path = dir.join("w.safetensors");
        let mut t = BTreeMap::new();
        t.insert("dense.kernel".to_string(), ArrayD::from_shape_vec(IxDyn(&[2, 3]), vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]).unwrap());
        t.insert("dense.bias".to_string(), ArrayD::from_shape_vec(IxDyn(&[3]), vec![0.5, -0.5, 0.0]).unwrap());
        let mut m = BTreeMap::new();
        m.insert("epoch".to_string(), "3".to_string());
        save(&path, &t, &m).unwrap();
        let (back, meta) = load(&path).unwrap();
        assert_eq!(back, t);
        assert_eq!(meta, m);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn truncated_files_are_errors() {
        let dir = std::env::temp_dir().join(format!("nnc-ckpt-bad-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("bad.safetensors");
        std::fs::write(&path, [200u8, 0, 0, 0, 0, 0, 0, 0, b'{']).unwrap();
        assert!(matches!(load(&path), Err(CheckpointError::Format { .. })));
        let _ = std::fs::remove_dir_all(dir);
    }
}
