//! Every example and stdlib file checks clean; every number a seed states
//! (written as `//! expect` lines in the example) is reproduced; summaries
//! are snapshotted.

#![forbid(unsafe_code)]

mod common;

use common::*;
use nnc_compiler::summary;

#[derive(Debug)]
enum Expect {
    Model { model: String, total: i64, trainable: i64, non_trainable: i64 },
    Shape { model: String, binding: String, shape: String },
    Params { model: String, layer: String, count: i64 },
}

fn parse_expectations(text: &str) -> Vec<Expect> {
    let mut out = Vec::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("//! expect ") else { continue };
        let num =
            |s: &str| s.replace([',', '_'], "").parse::<i64>().unwrap_or_else(|_| panic!("bad number in `{line}`"));
        if let Some(r) = rest.strip_prefix("model ") {
            let mut parts = r.split_whitespace();
            let model = parts.next().expect("model name").to_string();
            let mut kv = std::collections::HashMap::new();
            for p in parts {
                let (k, v) = p.split_once('=').expect("key=value");
                kv.insert(k.to_string(), num(v));
            }
            out.push(Expect::Model {
                model,
                total: kv["total"],
                trainable: kv["trainable"],
                non_trainable: kv["non_trainable"],
            });
        } else if let Some(r) = rest.strip_prefix("shape ") {
            let (lhs, shape) = r.split_once('=').expect("shape line has =");
            let (model, binding) = lhs.trim().split_once('.').expect("Model.binding");
            out.push(Expect::Shape { model: model.into(), binding: binding.into(), shape: shape.trim().into() });
        } else if let Some(r) = rest.strip_prefix("params ") {
            let (lhs, count) = r.split_once('=').expect("params line has =");
            let (model, layer) = lhs.trim().split_once('.').expect("Model.layer");
            out.push(Expect::Params { model: model.into(), layer: layer.into(), count: num(count.trim()) });
        } else {
            panic!("unknown expectation `{line}`");
        }
    }
    out
}

#[test]
fn examples_check_clean_and_reproduce_the_seeds() {
    let mut failures = Vec::new();
    let mut checked = 0;
    for path in nn_files("examples") {
        let a = analyse_path(&path);
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if !a.result.diagnostics.is_empty() {
            failures.push(format!("{name}: expected no diagnostics, got {:#?}", a.result.diagnostics));
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        for e in parse_expectations(&text) {
            checked += 1;
            let model_name = match &e {
                Expect::Model { model, .. } | Expect::Shape { model, .. } | Expect::Params { model, .. } => model,
            };
            let Some(m) = a.result.models.iter().find(|m| &m.name == model_name) else {
                failures.push(format!("{name}: no model {model_name}"));
                continue;
            };
            match &e {
                Expect::Model { total, trainable, non_trainable, .. } => {
                    let t = summary::totals(m);
                    if (t.total(), t.trainable, t.non_trainable) != (*total, *trainable, *non_trainable) || t.symbolic {
                        failures.push(format!(
                            "{name}: {model_name} has total={} trainable={} non_trainable={}, the seed says \
                                {total}/{trainable}/{non_trainable}",
                            t.total(),
                            t.trainable,
                            t.non_trainable
                        ));
                    }
                }
                Expect::Shape { binding, shape, .. } => match m.bindings.iter().find(|(n, _)| n == binding) {
                    Some((_, v)) if v.to_string() == *shape => {}
                    Some((_, v)) => failures.push(format!("{name}: {model_name}.{binding} is {v}, expected {shape}")),
                    None => failures.push(format!("{name}: {model_name} has no binding {binding}")),
                },
                Expect::Params { layer, count, .. } => match m.layers.iter().find(|l| &l.name == layer) {
                    Some(l) if summary::layer_params(l) == Ok(*count) => {}
                    Some(l) => failures.push(format!(
                        "{name}: {model_name}.{layer} has {:?} params, expected {count}",
                        summary::layer_params(l)
                    )),
                    None => failures.push(format!(
                        "{name}: {model_name} has no layer {layer} (layers: {})",
                        m.layers.iter().map(|l| l.name.as_str()).collect::<Vec<_>>().join(", ")
                    )),
                },
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(checked >= 60, "only {checked} expectations found");
}

#[test]
fn example_summaries_match_snapshots() {
    let mut failures = Vec::new();
    for path in nn_files("examples") {
        let a = analyse_path(&path);
        let text: Vec<String> = a.result.models.iter().filter(|m| m.file.0 == 0).map(summary::render).collect();
        let stem = path.file_stem().unwrap().to_string_lossy().to_string();
        if let Some(diff) =
            snapshot(&root().join("tests/snapshots/summary").join(format!("{stem}.txt")), &text.join("\n"))
        {
            failures.push(diff);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn parameter_names_are_unique_in_every_model() {
    for path in nn_files("examples") {
        let a = analyse_path(&path);
        for m in &a.result.models {
            let mut seen = std::collections::HashSet::new();
            for l in &m.layers {
                for p in &l.params {
                    let full = format!("{}.{}", l.name, p.name);
                    assert!(seen.insert(full.clone()), "{}: {} names `{full}` twice", path.display(), m.name);
                }
            }
        }
    }
}

#[test]
fn stdlib_checks_clean() {
    for path in nn_files("stdlib") {
        let a = analyse_path(&path);
        assert!(a.result.diagnostics.is_empty(), "{}: {:#?}", path.display(), a.result.diagnostics);
    }
}
