//! `nnc export FILE --to onnx OUT.onnx`: a model's inference graph as an ONNX
//! model (opset 18), its batch dim symbolic, weights from a checkpoint or the
//! seeded initial ones, names from nnc (initialisers are the parameters'
//! checkpoint names).
//!
//! The model is lowered to the IR in inference mode (dropout off, batch
//! norm on moving statistics) twice, at two batch sizes no other dim has; the
//! two functions must be the same but for their batch-sized axes, which are
//! thereby known exactly (`graph::Size`). [`graph::convert`] then maps each IR
//! op to ONNX operators.

pub mod graph;
pub mod proto;

use std::collections::BTreeMap;
use std::path::Path;

use nnc_compiler::graph::TRef;
use nnc_compiler::ir::lower::{LowerOptions, lower};
use nnc_compiler::ir::{Func, Id, Op};
use nnc_compiler::{Analysis, ModelInfo};
use prost::Message;

use graph::Size;

/// The operator set written (ReduceMean/ReduceMax take their axes as an input from 18 on).
pub const OPSET: i64 = 18;
/// The ONNX IR version of opset 18.
const IR_VERSION: i64 = 8;
/// The batch sizes the model is lowered at: distinct primes, so an axis that differs is exactly a multiple of N.
pub(crate) const PROBES: [usize; 2] = [1009, 1013];

/// What `nnc export --to onnx` needs.
pub struct Request<'a> {
    /// The model to export (default: the file's first).
    pub model: Option<&'a str>,
    /// A safetensors checkpoint of the model (default: the initial weights, seed 0).
    pub weights: Option<&'a Path>,
}

/// The ONNX file of a checked model, as bytes.
pub fn export(a: &Analysis, req: &Request) -> Result<Vec<u8>, String> {
    let m = pick_model(a, req.model)?;
    let roots: Vec<(String, TRef)> =
        m.outputs.iter().filter_map(|(n, v)| Some((n.clone(), v.as_tensor()?.node?))).collect();
    if roots.is_empty() {
        return Err(format!("model `{}` has no tensor output", m.name));
    }
    // Dims the training data bound (`V`, `T`) are saved in the checkpoint, as `nnc predict` reads them.
    let (checkpoint, dims) = match req.weights {
        Some(w) => {
            let typed = nnc_runtime::io::load_checkpoint_typed(w).map_err(|e| e.to_string())?;
            let t = nnc_runtime::data::transform::Transforms::from_metadata(&typed.1).map_err(|e| e.to_string())?;
            let dims: Vec<(String, i64)> = t.map(|t| t.dims.into_iter().collect()).unwrap_or_default();
            (Some((w, typed)), dims)
        }
        None => (None, Vec::new()),
    };
    let lowered = |n: usize| {
        let mut all = vec![("N".to_string(), n as i64)];
        all.extend(dims.iter().cloned());
        let opts = LowerOptions { dims: all, training: false, ..LowerOptions::default() };
        lower(&m.graph, &roots, &Default::default(), &opts).map_err(|e| match e {
            // The graph is written for concrete sizes (recurrences are unrolled): only N stays symbolic.
            nnc_compiler::layers::lowering::LowerError::Unsupported(what)
                if what.ends_with("has no value at run time") =>
            {
                format!(
                    "cannot export model `{}` to ONNX: {}; give it a value in the file (`dim T = 50`) or a \
                     checkpoint whose training data bound it (`--weights`)",
                    m.name,
                    what.trim_end_matches(" at run time")
                )
            }
            e => format!("cannot export model `{}` to ONNX: {e}", m.name),
        })
    };
    let (f, g) = (lowered(PROBES[0])?, lowered(PROBES[1])?);
    let sizes = batch_sizes(&f, &g)?;
    let weights = match checkpoint {
        Some((path, typed)) => {
            let expected: Vec<(String, Vec<usize>)> =
                f.params.iter().map(|p| (p.name.clone(), p.shape.clone())).collect();
            let (tensors, _) =
                nnc_runtime::checkpoint::fit_model(path, typed, &m.name, &expected).map_err(|e| e.to_string())?;
            tensors
        }
        None => {
            let mut p = nnc_runtime::train::Params::default();
            p.ensure(&f.params, 0).map_err(|e| e.to_string())?;
            p.values
        }
    };
    let weights: BTreeMap<String, Vec<f32>> =
        weights.into_iter().map(|(k, v)| (k, v.as_standard_layout().iter().copied().collect())).collect();
    let src = graph::Source { func: &f, sizes: &sizes, weights: &weights, batch_name: "N" };
    let g = graph::convert(&src, &m.name).map_err(|e| format!("cannot export model `{}` to ONNX: {e}", m.name))?;
    // The initialisers hold their own copy: free the weights before encoding (peak: two copies, not three).
    drop(weights);
    Ok(model_proto(g, m, &index_bounds(&f)).encode_to_vec())
}

fn pick_model<'a>(a: &'a Analysis, name: Option<&str>) -> Result<&'a ModelInfo, String> {
    match name {
        Some(n) => a.result.models.iter().find(|m| m.name == n).ok_or_else(|| {
            let names: Vec<&str> = a.result.models.iter().map(|m| m.name.as_str()).collect();
            format!("no model `{n}` (models: {})", names.join(", "))
        }),
        None => a.result.models.first().ok_or_else(|| "the file has no model".to_string()),
    }
}

/// The file around the graph: versions, producer, the model's doc and the index bounds of integer inputs.
fn model_proto(g: proto::GraphProto, m: &ModelInfo, bounds: &[(String, usize)]) -> proto::ModelProto {
    let meta = bounds
        .iter()
        .map(|(input, n)| proto::StringStringEntryProto {
            key: Some(format!("nnc.index_bound.{input}")),
            value: Some(n.to_string()),
        })
        .collect();
    proto::ModelProto {
        ir_version: Some(IR_VERSION),
        opset_import: vec![proto::OperatorSetIdProto { domain: Some(String::new()), version: Some(OPSET) }],
        producer_name: Some("nnc".into()),
        producer_version: Some(env!("CARGO_PKG_VERSION").into()),
        doc_string: m.doc.clone(),
        graph: Some(g),
        metadata_props: meta,
    }
}

/// Each axis of each node of `f` (lowered at `PROBES[0]`) as fixed or batch-sized, from `g` (at `PROBES[1]`).
pub fn batch_sizes(f: &Func, g: &Func) -> Result<Vec<Vec<Size>>, String> {
    let differs = |what: &str, id: usize| {
        let layer = f.nodes[id].layer.and_then(|l| f.layers.get(l as usize));
        let at = layer.map(|l| format!(" (layer `{l}`)")).unwrap_or_default();
        format!("cannot export to ONNX with a symbolic batch dim: {what} of `{}`{at} depends on N", f.nodes[id].op)
    };
    if f.nodes.len() != g.nodes.len() || f.params != g.params {
        return Err("cannot export to ONNX with a symbolic batch dim: the graph's structure depends on N".into());
    }
    let (b1, b2) = (PROBES[0], PROBES[1]);
    let mut out = Vec::with_capacity(f.nodes.len());
    for (id, (x, y)) in f.nodes.iter().zip(&g.nodes).enumerate() {
        if x.op != y.op || x.args != y.args || x.dtype != y.dtype || x.shape.len() != y.shape.len() {
            return Err(differs("the operation", id));
        }
        let mut sizes = Vec::with_capacity(x.shape.len());
        for (&s1, &s2) in x.shape.iter().zip(&y.shape) {
            sizes.push(if s1 == s2 {
                Size::Fixed(s1)
            } else if s1 % b1 == 0 && s2 % b2 == 0 && s1 / b1 == s2 / b2 {
                Size::Batch(s1 / b1)
            } else {
                return Err(differs("the shape", id));
            });
        }
        out.push(sizes);
    }
    Ok(out)
}

/// Integer inputs and the number of rows of the tables they index (or the depth of their one-hot
/// encoding), for users and tests that feed them: `nnc.index_bound.<input>` in the file's metadata.
fn index_bounds(f: &Func) -> Vec<(String, usize)> {
    let source = |mut id: Id| loop {
        let n = &f.nodes[id as usize];
        match &n.op {
            Op::Input(name) => return Some(name.clone()),
            Op::Reshape | Op::Slice { .. } => id = n.args[0],
            _ => return None,
        }
    };
    let mut bounds: BTreeMap<String, usize> = BTreeMap::new();
    for n in &f.nodes {
        let found = match n.op {
            Op::Gather => source(n.args[1]).map(|i| (i, f.shape(n.args[0])[0])),
            Op::OneHot(depth) => source(n.args[0]).map(|i| (i, depth)),
            _ => None,
        };
        if let Some((input, bound)) = found {
            let b = bounds.entry(input).or_insert(bound);
            *b = (*b).min(bound);
        }
    }
    bounds.into_iter().collect()
}

/// `nnc export … --to onnx OUT`: writes the file atomically.
pub fn write(a: &Analysis, req: &Request, out: &Path) -> Result<usize, String> {
    let bytes = export(a, req)?;
    // Protocol Buffers caps a message at 2 GiB; bigger models need ONNX's external data, not written here.
    if bytes.len() > i32::MAX as usize {
        return Err(format!("the ONNX model would be {} bytes, over protobuf's 2 GiB limit", bytes.len()));
    }
    nnc_runtime::io::checkpoint::write_atomically(out, &bytes).map_err(|e| e.to_string())?;
    Ok(bytes.len())
}
