//! `nnc import`: Keras 3 model configs written by Keras itself (tests/import/make_fixtures.py; the JSON is
//! committed, so no Python is needed here) become `.nn` files that `nnc check` passes clean, that are in
//! `nnc fmt`'s layout, and whose parameter count is Keras's `count_params()`. What nnc lacks is listed and
//! nothing is written; hostile inputs (zip bombs, malformed or deeply nested JSON, oversized files) are
//! clear errors.

#![forbid(unsafe_code)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::*;

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("nnc-import-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn nnc(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(nnc_bin()).args(args).output().unwrap()
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// Imports `source` to `out`; panics unless it succeeds. (The round trip with `nnc export --to keras`
/// calls this on the exported model's config.)
pub fn import(source: &Path, out: &Path) {
    let o = nnc(&["import".as_ref(), source.as_os_str(), "-o".as_ref(), out.as_os_str()]);
    assert!(o.status.success(), "nnc import {}: {}", source.display(), text(&o));
}

/// `nnc summary --format json`'s total parameter count of the file's one model.
fn total_params(file: &Path) -> u64 {
    let o = nnc(&["summary".as_ref(), file.as_os_str(), "--format".as_ref(), "json".as_ref()]);
    assert!(o.status.success(), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    v["models"][0]["total"].as_u64().unwrap()
}

fn counts() -> serde_json::Value {
    let c = std::fs::read_to_string(root().join("tests/import/counts.json")).unwrap();
    serde_json::from_str::<serde_json::Value>(&c).unwrap()["count_params"].clone()
}

#[test]
fn keras_models_import_with_keras_parameter_counts() {
    let dir = tmp("models");
    let counts = counts();
    let mut sources: Vec<(String, PathBuf)> = counts
        .as_object()
        .unwrap()
        .keys()
        .filter(|k| *k != "unsupported" && *k != "shared")
        .map(|k| (k.clone(), root().join(format!("tests/import/{k}.json"))))
        .collect();
    // The same model saved whole by Keras: the config is read out of the zip.
    sources.push(("mlp".into(), root().join("tests/import/mlp.keras")));
    assert!(sources.len() >= 7);
    for (name, source) in sources {
        let out = dir.join(format!("{name}.nn"));
        import(&source, &out);
        let check = nnc(&["check".as_ref(), out.as_os_str()]);
        assert!(check.status.success() && check.stderr.is_empty(), "{name}: not clean:\n{}", text(&check));
        let fmt = nnc(&["fmt".as_ref(), "--check".as_ref(), out.as_os_str()]);
        assert!(fmt.status.success(), "{name}: not formatted:\n{}", text(&fmt));
        assert_eq!(total_params(&out), counts[&name].as_u64().unwrap(), "{name}: parameters differ from Keras's");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn layer_names_become_parameter_names() {
    let dir = tmp("names");
    let out = dir.join("residual.nn");
    import(&root().join("tests/import/residual.json"), &out);
    let nn = std::fs::read_to_string(&out).unwrap();
    assert!(nn.contains("input image: [N, 32, 32, 3]"), "{nn}");
    assert!(nn.contains("let add = stem + branch_a"), "{nn}");
    assert!(nn.contains(r#"depthwise_conv2d(add, 3, padding = same, name = "dw")"#), "{nn}");
    let o = nnc(&["summary".as_ref(), out.as_os_str(), "--format".as_ref(), "json".as_ref()]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let names: Vec<&str> =
        v["models"][0]["layers"].as_array().unwrap().iter().filter_map(|l| l["name"].as_str()).collect();
    for keras in ["stem", "branch_a", "dw", "norm", "logits"] {
        assert!(names.contains(&keras), "{keras} missing from {names:?}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn untranslatable_parts_are_listed_and_nothing_is_written() {
    let dir = tmp("unsupported");
    let out = dir.join("u.nn");
    let o = nnc(&[
        "import".as_ref(),
        root().join("tests/import/unsupported.json").as_os_str(),
        "-o".as_ref(),
        out.as_os_str(),
    ]);
    let msg = text(&o);
    assert_eq!(o.status.code(), Some(1), "{msg}");
    assert!(msg.contains("2 parts of the Keras model cannot be translated"), "{msg}");
    assert!(msg.contains("Dense `dense_11`: option `kernel_regularizer`"), "{msg}");
    assert!(msg.contains("ActivityRegularization `activity_regularization`: no nnc layer"), "{msg}");
    assert!(!out.exists());
    // A layer called twice shares its weights between the calls; an nnc layer is applied once.
    let o = nnc(&["import".as_ref(), root().join("tests/import/shared.json").as_os_str()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("Dense `shared`: called 2 times"), "{}", text(&o));
    let _ = std::fs::remove_dir_all(&dir);
}

/// A one-member zip archive holding `data` deflated (the shape of a `.keras` file).
fn zip_with(name: &str, data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(data).unwrap();
    let body = e.finish().unwrap();
    let sizes = |v: &mut Vec<u8>| {
        v.extend(8u16.to_le_bytes());
        v.extend([0u8; 8]);
        v.extend((body.len() as u32).to_le_bytes());
        v.extend((data.len() as u32).to_le_bytes());
        v.extend((name.len() as u16).to_le_bytes());
        v.extend([0u8; 2]);
    };
    let mut z = vec![0x50, 0x4b, 0x03, 0x04, 20, 0, 0, 0];
    sizes(&mut z);
    z.extend(name.as_bytes());
    z.extend(&body);
    let dir = z.len();
    z.extend([0x50, 0x4b, 0x01, 0x02, 20, 0, 20, 0, 0, 0]);
    sizes(&mut z);
    z.extend([0u8; 14]); // comment length, disk, attributes, local header offset 0
    z.extend(name.as_bytes());
    let size = z.len() - dir;
    z.extend([0x50, 0x4b, 0x05, 0x06, 0, 0, 0, 0, 1, 0, 1, 0]);
    z.extend((size as u32).to_le_bytes());
    z.extend((dir as u32).to_le_bytes());
    z.extend([0u8; 2]);
    z
}

#[test]
fn hostile_inputs_are_clear_errors() {
    let dir = tmp("hostile");
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        // 64 MiB of spaces in a 64 KiB archive: inflation stops at the 16 MiB source cap.
        ("bomb.keras", zip_with("config.json", &vec![b' '; 64 << 20]), "inflates to more than 16 MiB"),
        ("no_config.keras", zip_with("model.weights.h5", b"x"), "the archive has no `config.json`"),
        ("truncated.keras", zip_with("config.json", b"{}")[..40].to_vec(), "not a readable zip archive"),
        ("malformed.json", b"{\"class_name\": \"Sequential\", \"config\": {".to_vec(), "not JSON"),
        ("deep.json", format!("{}{}", "[".repeat(100_000), "]".repeat(100_000)).into_bytes(), "recursion limit"),
        ("array.json", b"[1, 2, 3]".to_vec(), "not a Keras model config"),
        (
            "layer.json",
            br#"{"class_name": "Dense", "config": {"layers": []}}"#.to_vec(),
            "not a Sequential or Functional",
        ),
        ("binary.json", vec![0xff, 0xfe, 0x00], "not UTF-8"),
    ];
    for (name, bytes, want) in cases {
        let path = dir.join(name);
        std::fs::write(&path, &bytes).unwrap();
        let o = nnc(&["import".as_ref(), path.as_os_str()]);
        let msg = text(&o);
        assert_eq!(o.status.code(), Some(1), "{name}: {msg}");
        assert!(msg.contains(want), "{name}: expected `{want}` in\n{msg}");
    }
    // A config larger than the cap is refused before it is read.
    let big = dir.join("big.json");
    std::fs::write(&big, vec![b' '; 2 << 20]).unwrap();
    let o = Command::new(nnc_bin())
        .env("NNC_MAX_SOURCE_BYTES", "1M")
        .args(["import".as_ref(), big.as_os_str()])
        .output()
        .unwrap();
    assert!(text(&o).contains("larger than 1 MiB"), "{}", text(&o));
    let o = nnc(&["import".as_ref(), dir.as_os_str()]);
    assert_eq!(o.status.code(), Some(1), "a directory: {}", text(&o));
    let _ = std::fs::remove_dir_all(&dir);
}
