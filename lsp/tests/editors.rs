//! The editor packages stay in step with the compiler: the VS Code grammar
//! highlights every layer and train function of the tables, and the
//! manifests point at files that exist.

#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};

use nnc_compiler::layers::LAYERS;
use nnc_compiler::schema::TRAIN_FUNCTIONS;
use serde_json::Value;

fn editors() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../editors")
}

fn json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The words of the `\b(a|b|c)\b` alternation of the pattern named `scope`.
fn words_of(grammar: &Value, scope: &str) -> Vec<String> {
    let patterns = grammar["repository"]["calls"]["patterns"].as_array().expect("calls patterns");
    let p = patterns.iter().find(|p| p["name"] == scope).unwrap_or_else(|| panic!("no pattern {scope}"));
    let m = p["match"].as_str().expect("match");
    let inner =
        m.split_once("\\b(").and_then(|(_, rest)| rest.split_once(")\\b")).map(|(w, _)| w).expect("alternation");
    inner.split('|').map(str::to_string).collect()
}

#[test]
fn the_grammar_knows_every_layer_and_train_function() {
    let grammar = json(&editors().join("vscode/syntaxes/nn.tmLanguage.json"));
    assert_eq!(grammar["scopeName"], "source.nn");
    let layers = words_of(&grammar, "support.function.layer.nn");
    for l in LAYERS {
        assert!(layers.iter().any(|w| w == l.name), "layer `{}` is not highlighted", l.name);
    }
    let train = words_of(&grammar, "support.function.train.nn");
    for f in TRAIN_FUNCTIONS {
        assert!(train.iter().any(|w| w == f.name), "train function `{}` is not highlighted", f.name);
    }
}

#[test]
fn the_vscode_manifest_points_at_real_files() {
    let dir = editors().join("vscode");
    let pkg = json(&dir.join("package.json"));
    assert_eq!(pkg["contributes"]["languages"][0]["id"], "nn");
    assert_eq!(pkg["contributes"]["languages"][0]["extensions"][0], ".nn");
    for rel in
        [&pkg["main"], &pkg["contributes"]["languages"][0]["configuration"], &pkg["contributes"]["grammars"][0]["path"]]
    {
        let rel = rel.as_str().expect("path");
        assert!(dir.join(rel).is_file(), "{rel} does not exist");
    }
    assert!(pkg["dependencies"]["vscode-languageclient"].is_string());
    json(&dir.join("language-configuration.json"));
    let client = std::fs::read_to_string(dir.join("extension.js")).expect("extension.js");
    assert!(client.contains("args: ['lsp']") && client.contains("vscode-languageclient/node"));
}

#[test]
fn the_neovim_plugin_starts_nnc_lsp() {
    let lua = std::fs::read_to_string(editors().join("nvim/nnc.lua")).expect("nnc.lua");
    assert!(lua.contains("vim.lsp.start") && lua.contains("'lsp'") && lua.contains("pattern = 'nn'"));
}
