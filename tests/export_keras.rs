//! `nnc export --to keras` end to end: every example exports (every model alone, and its train blocks
//! with their data), the files are written, and Python's compiler accepts model.py and train.py
//! (`python3 -m py_compile`; skipped with a message when python3 is missing). Keras itself is exercised by
//! tests/export/keras_equal.py, run from `.ci/run`.

#![forbid(unsafe_code)]

mod common;

use std::path::Path;
use std::process::Command;

use common::*;

fn python() -> Option<&'static str> {
    let ok = Command::new("python3").arg("--version").output().is_ok_and(|o| o.status.success());
    if ok { Some("python3") } else { None }
}

fn py_compile(files: &[&Path]) -> Result<(), String> {
    let Some(py) = python() else { return Ok(()) };
    let out = Command::new(py).args(["-m", "py_compile"]).args(files).output().map_err(|e| e.to_string())?;
    if out.status.success() { Ok(()) } else { Err(String::from_utf8_lossy(&out.stderr).into_owned()) }
}

fn export(args: &[String], dir: &Path) -> Result<(), String> {
    let out = Command::new(nnc_bin()).arg("export").args(args).args(["--to", "keras"]).arg(dir).output().unwrap();
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
    }
}

fn names(file: &Path, key: &str) -> Vec<String> {
    let text = std::fs::read_to_string(file).unwrap();
    text.lines()
        .filter_map(|l| l.strip_prefix(key))
        .filter_map(|rest| rest.split(|c: char| !c.is_alphanumeric() && c != '_').next())
        .filter(|n| !n.is_empty())
        .map(str::to_string)
        .collect()
}

/// Model parameters that shrink the big examples without changing their layers (weights are written).
fn sets(file: &Path) -> Vec<&'static str> {
    let name = file.file_stem().unwrap().to_string_lossy().to_string();
    if file.parent().is_some_and(|p| p.ends_with("zoo")) {
        let size = if name == "inception_v3" {
            "size=75"
        } else if name == "xception" {
            "size=71"
        } else {
            "size=32"
        };
        return vec!["--set", size, "--set", "classes=10"];
    }
    if name == "vgg16" { vec!["--set", "classes=10"] } else { vec![] }
}

#[test]
fn every_example_exports_and_compiles() {
    if python().is_none() {
        println!("skipping py_compile: python3 not found (the exports are still checked)");
    }
    let tmp = std::env::temp_dir().join(format!("nnc-export-keras-{}", std::process::id()));
    let mut files = nn_files("examples");
    files.retain(|f| !f.parent().is_some_and(|p| p.ends_with("zoo")));
    let mut failures = Vec::new();
    let mut count = 0;
    for file in &files {
        let f = file.to_str().unwrap();
        let set = sets(file);
        let mut jobs: Vec<(String, Vec<String>)> = Vec::new();
        for m in names(file, "model ") {
            jobs.push((format!("model {m}"), vec!["--model".into(), m]));
        }
        for t in names(file, "train ") {
            jobs.push((format!("train {t}"), vec!["--train".into(), t, "--data".into()]));
        }
        for (what, args) in jobs {
            let dir = tmp.join(format!("{}-{}", file.file_stem().unwrap().to_string_lossy(), what.replace(' ', "-")));
            let mut all = vec![f.to_string()];
            all.extend(args);
            all.extend(set.iter().map(|s| s.to_string()));
            count += 1;
            if let Err(e) = export(&all, &dir) {
                failures.push(format!("{f} ({what}): {e}"));
                continue;
            }
            let mut py = vec![dir.join("model.py")];
            if what.starts_with("train") {
                py.push(dir.join("train.py"));
                if !dir.join("README.md").exists() || !dir.join("data").join("train.npz").exists() {
                    failures.push(format!("{f} ({what}): README.md or data/train.npz missing"));
                }
            }
            if !dir.join("weights.safetensors").exists() {
                failures.push(format!("{f} ({what}): weights.safetensors missing"));
            }
            let refs: Vec<&Path> = py.iter().map(|p| p.as_path()).collect();
            if let Err(e) = py_compile(&refs) {
                failures.push(format!("{f} ({what}): {e}"));
            }
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
    let _ = std::fs::remove_dir_all(&tmp);
    assert!(count >= 40, "only {count} exports");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn a_refusal_is_e0601_naming_the_layer() {
    let tmp = std::env::temp_dir().join(format!("nnc-export-refusal-{}", std::process::id()));
    let out = Command::new(nnc_bin())
        .args(["export", "tests/diagnostics/E0601_mean_over_the_batch.nn", "--to", "keras"])
        .arg(&tmp)
        .current_dir(root())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("E0601") && err.contains("`mean`"), "{err}");
    assert!(!tmp.join("model.py").exists(), "nothing is written when the export is refused");
}

#[test]
fn an_unknown_model_is_a_usage_error() {
    let out = Command::new(nnc_bin())
        .args(["export", "examples/small_mlp.nn", "--to", "keras", "/nonexistent/x", "--model", "Nope"])
        .current_dir(root())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no model `Nope`"));
}

#[test]
fn a_stateful_train_block_is_refused() {
    let tmp = std::env::temp_dir().join(format!("nnc-export-stateful-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let file = tmp.join("s.nn");
    let source = [
        "dim N",
        "model R {",
        "    input x: [N, 4, 2]",
        "    output o = lstm(x, 3)",
        "}",
        "train t {",
        "    model = R()",
        "    data = synthetic(n = 8)",
        "    loss = mse(o, 0)",
        "    batch = 4",
        "    stateful = true",
        "}",
    ]
    .join("\n");
    std::fs::write(&file, source).unwrap();
    let out = Command::new(nnc_bin()).arg("export").arg(&file).args(["--to", "keras"]).arg(tmp.join("out")).output();
    let out = out.unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("E0601") && err.contains("stateful"), "{err}");
    let _ = std::fs::remove_dir_all(&tmp);
}
