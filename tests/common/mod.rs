//! Helpers shared by the end-to-end tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use nnc_compiler::{Analysis, CheckOptions, FsLoader, analyse, summary};

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn analyse_path(path: &Path) -> Analysis {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let name = path.strip_prefix(root()).unwrap_or(path).display().to_string();
    analyse(&name, Some(path), text, &FsLoader::for_file(path), &CheckOptions::default())
}

/// `.nn` files of a directory, sorted.
pub fn nn_files(dir: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(root().join(dir))
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "nn"))
        .collect();
    v.sort();
    v
}

/// Compares `actual` with the snapshot at `path`; `UPDATE_SNAPSHOTS=1` rewrites it.
/// Returns a description of the difference, if any.
pub fn snapshot(path: &Path, actual: &str) -> Option<String> {
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).expect("create snapshot dir");
        }
        std::fs::write(path, actual).expect("write snapshot");
        return None;
    }
    match std::fs::read_to_string(path) {
        Ok(expected) if expected == actual => None,
        Ok(expected) => Some(format!(
            "snapshot {} differs (run with UPDATE_SNAPSHOTS=1 to accept):\n--- expected\n{expected}\n--- actual\n\
                {actual}",
            path.display()
        )),
        Err(_) => Some(format!("snapshot {} is missing (run with UPDATE_SNAPSHOTS=1)", path.display())),
    }
}

pub fn nnc_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_nnc"))
}

/// An `//! expect` line of an example: a number the source (a seed, Keras) states.
#[derive(Debug)]
pub enum Expect {
    Model { model: String, total: i64, trainable: i64, non_trainable: i64 },
    Shape { model: String, binding: String, shape: String },
    Params { model: String, layer: String, count: i64 },
}

pub fn parse_expectations(text: &str) -> Vec<Expect> {
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

/// Checks the `//! expect` lines of the example at `path` against its analysis, pushing a line
/// per mismatch onto `failures`; returns how many expectations there were.
pub fn check_expectations(path: &Path, a: &Analysis, failures: &mut Vec<String>) -> usize {
    let text = std::fs::read_to_string(path).unwrap();
    let name = path.file_name().unwrap().to_string_lossy().to_string();
    let mut checked = 0;
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
                        "{name}: {model_name} has total={} trainable={} non_trainable={}, the expect line says \
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
    checked
}

/// `nnc run FILE --train T --epochs 1 --steps 1 --out OUT`: one step of training on the compiled
/// backend. An error describes a failed run, an op on the one-node reference fallback, or a
/// `history.csv` without a finite loss.
pub fn run_one_step(file: &Path, train: &str, out: &Path) -> Result<(), String> {
    let o = std::process::Command::new(nnc_bin())
        .current_dir(root())
        .arg("run")
        .arg(file)
        .args(["--train", train, "--epochs", "1", "--steps", "1", "--out"])
        .arg(out)
        .output()
        .map_err(|e| format!("cannot start nnc: {e}"))?;
    if !o.status.success() {
        return Err(format!("exit {:?}\n{}", o.status.code(), String::from_utf8_lossy(&o.stderr)));
    }
    // Every op ran compiled: fused or a library routine of the
    // compiled backend, none on the one-node reference fallback.
    let stdout = String::from_utf8_lossy(&o.stdout);
    if let Some(line) = stdout.lines().find(|l| l.contains("reference fallback")) {
        return Err(line.to_string());
    }
    let history = std::fs::read_to_string(out.join("history.csv")).unwrap_or_default();
    let mut lines = history.lines();
    let header: Vec<&str> = lines.next().unwrap_or("").split(',').collect();
    let row: Vec<&str> = lines.next().unwrap_or("").split(',').collect();
    let loss = header.iter().position(|h| *h == "loss").and_then(|i| row.get(i)?.parse::<f64>().ok());
    if !loss.is_some_and(f64::is_finite) {
        return Err(format!("no finite loss in history.csv:\n{history}"));
    }
    Ok(())
}
