//! `nnc export --to onnx` end to end, without Python: every model of every example (the zoo at a small
//! size) exports; the file decodes as an ONNX model of opset ≥ 17 whose batch axes are the symbolic `N`,
//! whose initialisers are exactly the model's parameters (checkpoint names and shapes), and whose
//! outputs are the model's. Numerical equality with `nnc predict` is tests/export/onnx_equal.py's job
//! (onnxruntime, run from .ci/run).

#![forbid(unsafe_code)]

mod common;

use std::path::Path;
use std::process::Command;

use common::*;
use prost::Message;

// The parts of onnx.proto this test reads (field numbers as there).
#[derive(Clone, PartialEq, Message)]
struct Model {
    #[prost(message, repeated, tag = "8")]
    opset_import: Vec<Opset>,
    #[prost(message, optional, tag = "7")]
    graph: Option<Graph>,
}
#[derive(Clone, PartialEq, Message)]
struct Opset {
    #[prost(string, optional, tag = "1")]
    domain: Option<String>,
    #[prost(int64, optional, tag = "2")]
    version: Option<i64>,
}
#[derive(Clone, PartialEq, Message)]
struct Graph {
    #[prost(message, repeated, tag = "1")]
    node: Vec<Node>,
    #[prost(message, repeated, tag = "5")]
    initializer: Vec<Tensor>,
    #[prost(message, repeated, tag = "11")]
    input: Vec<ValueInfo>,
    #[prost(message, repeated, tag = "12")]
    output: Vec<ValueInfo>,
}
#[derive(Clone, PartialEq, Message)]
struct Node {
    #[prost(string, optional, tag = "4")]
    op_type: Option<String>,
}
#[derive(Clone, PartialEq, Message)]
struct Tensor {
    #[prost(int64, repeated, packed = "false", tag = "1")]
    dims: Vec<i64>,
    #[prost(string, optional, tag = "8")]
    name: Option<String>,
}
#[derive(Clone, PartialEq, Message)]
struct ValueInfo {
    #[prost(string, optional, tag = "1")]
    name: Option<String>,
    #[prost(message, optional, tag = "2")]
    r#type: Option<Type>,
}
#[derive(Clone, PartialEq, Message)]
struct Type {
    #[prost(message, optional, tag = "1")]
    tensor_type: Option<TensorType>,
}
#[derive(Clone, PartialEq, Message)]
struct TensorType {
    #[prost(message, optional, tag = "2")]
    shape: Option<Shape>,
}
#[derive(Clone, PartialEq, Message)]
struct Shape {
    #[prost(message, repeated, tag = "1")]
    dim: Vec<Dim>,
}
#[derive(Clone, PartialEq, Message)]
struct Dim {
    #[prost(int64, optional, tag = "1")]
    dim_value: Option<i64>,
    #[prost(string, optional, tag = "2")]
    dim_param: Option<String>,
}

fn analyse_with(path: &Path, options: &nnc_compiler::CheckOptions) -> nnc_compiler::Analysis {
    let text = std::fs::read_to_string(path).unwrap();
    let loader = nnc_compiler::FsLoader::for_file(path);
    nnc_compiler::analyse(&path.display().to_string(), Some(path), text, &loader, options)
}

fn export(file: &Path, model: &str, sets: &[&str], out: &Path) -> Result<Model, String> {
    let mut cmd = Command::new(nnc_bin());
    cmd.arg("export").arg(file).args(["--to", "onnx", "--model", model]).arg(out);
    for s in sets {
        cmd.args(["--set", s]);
    }
    let o = cmd.output().map_err(|e| e.to_string())?;
    if !o.status.success() {
        return Err(String::from_utf8_lossy(&o.stderr).into_owned());
    }
    let bytes = std::fs::read(out).map_err(|e| e.to_string())?;
    Model::decode(bytes.as_slice()).map_err(|e| e.to_string())
}

fn dims(v: &ValueInfo) -> Vec<String> {
    let shape = v.r#type.as_ref().and_then(|t| t.tensor_type.as_ref()).and_then(|t| t.shape.as_ref());
    shape
        .map(|s| {
            s.dim.iter().map(|d| d.dim_param.clone().unwrap_or_else(|| d.dim_value.unwrap_or(-1).to_string())).collect()
        })
        .unwrap_or_default()
}

/// What the checker says of `model`: its parameters (name, shape) and output names.
fn expected(a: &nnc_compiler::Analysis, model: &str) -> (Vec<(String, Vec<i64>)>, Vec<String>) {
    let m = a.result.models.iter().find(|m| m.name == model).unwrap();
    let mut params = Vec::new();
    for l in &m.layers {
        for p in &l.params {
            let shape = p.shape.iter().map(|d| d.as_known().unwrap_or(-1)).collect();
            params.push((format!("{}.{}", l.name, p.name), shape));
        }
    }
    (params, m.outputs.iter().map(|(n, _)| n.clone()).collect())
}

#[test]
fn every_example_model_exports() {
    let dir = std::env::temp_dir().join(format!("nnc-export-onnx-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut files = nn_files("examples");
    files.extend(nn_files("examples/zoo"));
    let mut failures = Vec::new();
    let mut count = 0;
    for file in files {
        let zoo = file.parent().is_some_and(|p| p.ends_with("zoo"));
        let sets: &[&str] = match file.file_stem().and_then(|s| s.to_str()) {
            Some("inception_v3") => &["size=75", "classes=10"],
            Some("xception") => &["size=71", "classes=10"],
            _ if zoo => &["size=32", "classes=10"],
            _ => &[],
        };
        let options = nnc_compiler::CheckOptions {
            overrides: sets
                .iter()
                .map(|s| {
                    let (k, v) = s.split_once('=').unwrap();
                    (k.to_string(), nnc_compiler::SetValue::Int(v.parse().unwrap()))
                })
                .collect(),
            ..Default::default()
        };
        let a = analyse_with(&file, &options);
        let names: Vec<String> =
            a.result.models.iter().filter(|m| m.file == nnc_syntax::FileId(0)).map(|m| m.name.clone()).collect();
        for name in names {
            count += 1;
            let out = dir.join(format!("{name}.onnx"));
            let label = format!("{}:{name}", file.display());
            let m = match export(&file, &name, sets, &out) {
                Ok(m) => m,
                Err(e) => {
                    failures.push(format!("{label}: {e}"));
                    continue;
                }
            };
            let _ = std::fs::remove_file(&out);
            let opset = m.opset_import.iter().find(|o| o.domain.as_deref().unwrap_or("").is_empty());
            assert!(opset.and_then(|o| o.version).is_some_and(|v| v >= 17), "{label}: opset {opset:?}");
            let g = m.graph.unwrap();
            assert!(!g.node.is_empty(), "{label}: no nodes");
            let (params, outputs) = expected(&a, &name);
            let mut inits: Vec<(String, Vec<i64>)> = g
                .initializer
                .iter()
                .filter(|t| !t.name.as_deref().unwrap_or("").contains('/'))
                .map(|t| (t.name.clone().unwrap_or_default(), t.dims.clone()))
                .collect();
            let mut params = params;
            params.sort();
            params.dedup();
            inits.sort();
            assert_eq!(inits, params, "{label}: initialisers are not the model's parameters");
            let outs: Vec<String> = g.output.iter().map(|o| o.name.clone().unwrap_or_default()).collect();
            assert_eq!(outs, outputs, "{label}: outputs");
            let batched = a
                .result
                .models
                .iter()
                .find(|m| m.name == name)
                .unwrap()
                .inputs
                .iter()
                .any(|(_, t)| t.dims.first().is_some_and(|d| d.to_string() == "N"));
            if batched {
                for v in g.input.iter().chain(&g.output) {
                    assert_eq!(dims(v).first().map(String::as_str), Some("N"), "{label}: {:?} {:?}", v.name, dims(v));
                }
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert!(failures.is_empty(), "{} of {count} models did not export:\n{}", failures.len(), failures.join("\n"));
    assert!(count >= 40, "only {count} models");
}

#[test]
fn a_checkpoint_of_another_model_is_refused() {
    let dir = std::env::temp_dir().join(format!("nnc-export-onnx-ckpt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bogus = dir.join("w.safetensors");
    // A valid safetensors file holding one tensor the model does not have.
    let header = br#"{"other.kernel":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#;
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header);
    bytes.extend_from_slice(&1f32.to_le_bytes());
    std::fs::write(&bogus, bytes).unwrap();
    let out = dir.join("m.onnx");
    let o = Command::new(nnc_bin())
        .arg("export")
        .arg(root().join("examples/small_mlp.nn"))
        .args(["--to", "onnx"])
        .arg(&out)
        .arg("--weights")
        .arg(&bogus)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("does not fit model `SmallMlp`"), "{stderr}");
    assert!(!out.exists(), "nothing is written on an error");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `nnc export` of `source` (written to a scratch file): the decoded model, or the error text.
fn export_text(name: &str, source: &str) -> Result<Model, String> {
    let dir = std::env::temp_dir().join(format!("nnc-export-onnx-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("m.nn");
    std::fs::write(&file, source).unwrap();
    let r = export(&file, "M", &[], &dir.join("m.onnx"));
    let _ = std::fs::remove_dir_all(&dir);
    r
}

#[test]
fn dropout_and_noise_are_the_identity() {
    let m = export_text(
        "noise",
        "dim N\n\nmodel M {\n    input x: [N, 4]\n    output y = gaussian_noise(dropout(x, 0.5), 0.1)\n}\n",
    )
    .unwrap();
    let ops: Vec<String> = m.graph.unwrap().node.iter().map(|n| n.op_type.clone().unwrap_or_default()).collect();
    assert_eq!(ops, ["Identity"]);
}

#[test]
fn a_dim_without_a_value_is_a_clear_error() {
    let e = export_text("dim", "dim N, T\n\nmodel M {\n    input x: [N, T, 4]\n    output y = lstm(x, 3)\n}\n")
        .unwrap_err();
    assert!(e.contains("cannot export model `M` to ONNX: the dim `T` has no value; give it a value"), "{e}");
}
