//! Rendering diagnostics and summaries for the terminal and as JSON.
//! This is the edge: only here do diagnostics become text.

use codespan_reporting::diagnostic::{
    Diagnostic as CsDiagnostic, Label as CsLabel, LabelStyle, Severity as CsSeverity,
};
use codespan_reporting::files::SimpleFiles;
use codespan_reporting::term::{self, Config};
use nnc_compiler::Program;
use nnc_compiler::summary;
use nnc_compiler::types::Value;
use nnc_syntax::{Diagnostic, Label, Severity};
use serde_json::{Value as Json, json};

/// Renders diagnostics as codespan-reporting text (`color`: ANSI colours).
pub fn human(program: &Program, diags: &[Diagnostic], color: bool) -> String {
    let mut files = SimpleFiles::new();
    for f in &program.files {
        files.add(f.name.clone(), f.text.clone());
    }
    let config = Config::default();
    let mut out = if color { term::termcolor::Buffer::ansi() } else { term::termcolor::Buffer::no_color() };
    for d in diags {
        let _ = term::emit_to_write_style(&mut out, &config, &files, &to_codespan(d));
    }
    String::from_utf8_lossy(out.as_slice()).into_owned()
}

fn to_codespan(d: &Diagnostic) -> CsDiagnostic<usize> {
    let severity = match d.severity {
        Severity::Error => CsSeverity::Error,
        Severity::Warning => CsSeverity::Warning,
    };
    let mut labels = vec![label(LabelStyle::Primary, &d.primary)];
    labels.extend(d.secondary.iter().map(|l| label(LabelStyle::Secondary, l)));
    CsDiagnostic::new(severity)
        .with_code(d.code.as_str())
        .with_message(&d.message)
        .with_labels(labels)
        .with_notes(d.notes.clone())
}

fn label(style: LabelStyle, l: &Label) -> CsLabel<usize> {
    CsLabel::new(style, l.file.0 as usize, l.span.range()).with_message(&l.message)
}

fn range_json(program: &Program, l: &Label) -> (Json, Json) {
    let f = program.file(l.file);
    let (sl, sc) = f.lines.position(&f.text, l.span.start as usize);
    let (el, ec) = f.lines.position(&f.text, l.span.end as usize);
    (
        json!({"start": {"line": sl, "character": sc}, "end": {"line": el, "character": ec}}),
        json!({"start": l.span.start, "end": l.span.end}),
    )
}

/// One diagnostic as the JSON object of docs/src/data-formats.md ("Machine-readable output").
pub fn diagnostic_json(program: &Program, d: &Diagnostic) -> Json {
    let (range, byte_range) = range_json(program, &d.primary);
    let labels: Vec<Json> = std::iter::once((&d.primary, true))
        .chain(d.secondary.iter().map(|l| (l, false)))
        .map(|(l, primary)| {
            let (range, byte_range) = range_json(program, l);
            json!({
                "file": program.file(l.file).name,
                "primary": primary,
                "range": range,
                "byte_range": byte_range,
                "message": l.message,
            })
        })
        .collect();
    json!({
        "file": program.file(d.primary.file).name,
        "severity": d.severity.as_str(),
        "code": d.code.as_str(),
        "message": d.message,
        "range": range,
        "byte_range": byte_range,
        "labels": labels,
        "notes": d.notes,
    })
}

fn shape_json(v: &Value) -> Json {
    match v {
        Value::Tensor(t) => Json::Array(
            t.dims.iter().map(|d| d.as_known().map_or_else(|| Json::String(d.to_string()), |k| json!(k))).collect(),
        ),
        Value::Tuple(parts) => Json::Array(parts.iter().map(shape_json).collect()),
        other => Json::String(other.to_string()),
    }
}

/// The summary JSON of docs/src/data-formats.md ("Machine-readable output") for some models.
pub fn summary_json(models: &[&nnc_compiler::ModelInfo]) -> Json {
    let models: Vec<Json> = models
        .iter()
        .map(|m| {
            let mut layers: Vec<Json> = m
                .inputs
                .iter()
                .map(|(n, t)| {
                    let shape = shape_json(&Value::Tensor(t.clone()));
                    json!({"name": n, "layer": "input", "output_shape": shape, "params": 0})
                })
                .collect();
            let shared = summary::shared_rows(m);
            layers.extend(m.layers.iter().zip(shared).map(|(l, shared)| {
                // A second application of shared weights counts 0: the rows' params sum to the total.
                let params = match summary::layer_params(l) {
                    _ if shared => json!(0),
                    Ok(n) => json!(n),
                    Err(sym) => json!(sym),
                };
                let names: Vec<Json> = l
                    .params
                    .iter()
                    .map(|p| {
                        json!({
                            "name": format!("{}.{}", l.name, p.name),
                            "shape": shape_json(&Value::Tensor(nnc_compiler::types::TensorTy::float(
                                p.shape.clone(),
                                Default::default(),
                            ))),
                            "trainable": p.trainable,
                        })
                    })
                    .collect();
                json!({
                    "name": l.name,
                    "layer": l.layer,
                    "output_shape": shape_json(&l.output),
                    "params": params,
                    "shared": shared,
                    "weights": names,
                })
            }));
            let t = summary::totals(m);
            json!({
                "name": m.name,
                "layers": layers,
                "outputs": m.outputs
                    .iter()
                    .map(|(n, v)| json!({"name": n, "shape": shape_json(v)}))
                    .collect::<Vec<_>>(),
                "total": t.total(),
                "trainable": t.trainable,
                "non_trainable": t.non_trainable,
            })
        })
        .collect();
    json!({"version": 1, "models": models})
}
