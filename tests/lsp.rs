//! End-to-end tests of `nnc lsp`: the real binary, spoken to over stdio
//! exactly as an editor would, on files from examples/ and tests/diagnostics/.

#![forbid(unsafe_code)]

#[path = "support/lsp_client.rs"]
mod lsp_client;

use std::path::{Path, PathBuf};

use lsp_client::{Client, position_of, uri};
use serde_json::{Value, json};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A fresh directory under the target's temporary directory.
fn scratch(name: &str) -> PathBuf {
    // Inside the workspace folder the server is given as its root (its files outside it are refused, E0501),
    // wherever CARGO_TARGET_DIR puts the build; `target/` is ignored by git.
    let dir = root().join("target").join("test-scratch").join("lsp").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}

fn start(name: &str) -> (Client, PathBuf) {
    let dir = scratch(name);
    let mut c = Client::start(Path::new(env!("CARGO_BIN_EXE_nnc")), &dir.join("cache"));
    let caps = c.initialize(&root());
    for cap in [
        "hoverProvider",
        "inlayHintProvider",
        "definitionProvider",
        "referencesProvider",
        "documentSymbolProvider",
        "completionProvider",
        "documentFormattingProvider",
    ] {
        assert!(!caps["capabilities"][cap].is_null(), "missing capability {cap}: {caps}");
    }
    assert_eq!(caps["capabilities"]["textDocumentSync"]["change"], 1, "full sync");
    (c, dir)
}

fn read(rel: &str) -> (String, String) {
    let path = root().join(rel);
    (uri(&path), std::fs::read_to_string(&path).expect("read example"))
}

fn at(doc: &str, pos: Value) -> Value {
    json!({"textDocument": {"uri": doc}, "position": pos})
}

fn hover_text(c: &mut Client, doc: &str, pos: Value) -> String {
    let h = c.request("textDocument/hover", at(doc, pos));
    h["contents"]["value"].as_str().unwrap_or_default().to_string()
}

fn labels(items: &Value) -> Vec<String> {
    items
        .as_array()
        .map(|a| a.iter().filter_map(|i| i["label"].as_str().map(str::to_string)).collect())
        .unwrap_or_default()
}

#[test]
fn shape_error_arrives_on_its_line_and_clears_after_a_fix() {
    let (mut c, _) = start("e0304");
    let (doc, text) = read("tests/diagnostics/E0304_conv_kernel_too_big.nn");
    c.open(&doc, &text);
    let diags = c.diagnostics(&doc, Some(1));
    assert_eq!(diags.len(), 1, "{diags:?}");
    let d = &diags[0];
    let line = text.lines().position(|l| l.contains("//~ ERROR E0304")).expect("marker");
    assert_eq!(d["code"], "E0304");
    assert_eq!(d["range"]["start"]["line"], line, "{d}");
    assert_eq!(d["severity"], 1);
    assert!(
        d["message"].as_str().is_some_and(|m| m.contains("(5 + 2·0 − 1·(7−1) − 1)/1 + 1 = -1")),
        "the note with the formula: {d}"
    );
    let href = d["codeDescription"]["href"].as_str().expect("code link");
    assert!(href.starts_with("file://") && href.ends_with("/explain/E0304.md"), "{href}");
    let explanation = href.trim_start_matches("file://");
    assert!(std::fs::read_to_string(explanation).is_ok_and(|t| t.contains("E0304")), "{explanation}");
    let related = d["relatedInformation"].as_array().expect("related information");
    assert!(related.iter().any(|r| r["message"].as_str().is_some_and(|m| m.contains("[N, 5, 5, 1]"))), "{related:?}");

    // Fix the kernel: the error goes away, and the binding has a shape.
    let fixed = text.replace("kernel = 7", "kernel = 3");
    c.change(&doc, 2, &fixed);
    assert_eq!(c.diagnostics(&doc, Some(2)), Vec::<Value>::new());
    let h = hover_text(&mut c, &doc, position_of(&fixed, "let h", 4));
    assert!(h.contains("let h: [N, 3, 3, 8]"), "{h}");
    assert_eq!(c.shutdown(), Some(0));
}

#[test]
fn hover_inlay_hints_completion_and_navigation_on_the_workshop_convnet() {
    let (mut c, _) = start("convnet");
    let (doc, text) = read("examples/workshop_convnet.nn");
    c.open(&doc, &text);
    assert_eq!(c.diagnostics(&doc, Some(1)), Vec::<Value>::new());

    // Hover on a `let`: its inferred shape.
    let h = hover_text(&mut c, &doc, position_of(&text, "let features", 6));
    assert!(h.contains("let features: [N, 1568]"), "{h}");
    // Hover on a layer: signature, docs, output and parameters.
    let h = hover_text(&mut c, &doc, position_of(&text, "conv2d(16", 2));
    assert!(h.contains("conv2d(x, filters, kernel"), "{h}");
    assert!(h.contains("→ `[N, 28, 28, 16]`"), "{h}");
    assert!(h.contains("`conv1.kernel` `[5, 5, 1, 16]` — 400"), "{h}");
    assert!(h.contains("416 parameters"), "{h}");
    // Hover on a model name: its doc comment and totals.
    let h = hover_text(&mut c, &doc, position_of(&text, "model ConvNet(", 7));
    assert!(h.contains("Two stages of 5×5 conv"), "{h}");
    assert!(h.contains("29,130 parameters"), "{h}");

    // Inlay hints after every `let` and `|>` stage.
    let hints = c.request(
        "textDocument/inlayHint",
        json!({
            "textDocument": {"uri": doc},
            "range": {"start": {"line": 0, "character": 0}, "end": {"line": 10000, "character": 0}},
        }),
    );
    let hint_labels: Vec<String> =
        hints.as_array().expect("hints").iter().map(|h| h["label"].as_str().unwrap_or("").to_string()).collect();
    for want in [": [N, 1568]", ": [N, 28, 28, 16]", ": [N, 14, 14, 16]", ": [N, 7, 7, 32]"] {
        assert!(hint_labels.iter().any(|l| l == want), "missing {want} in {hint_labels:?}");
    }
    let max_pool = position_of(&text, "|> max_pool(2, stride = 2)", "|> max_pool(2, stride = 2)".len());
    assert!(
        hints.as_array().expect("hints").iter().any(|h| h["position"] == max_pool && h["label"] == ": [N, 14, 14, 16]"),
        "hint at the end of the first max_pool stage: {hints}"
    );

    // Completion: options inside a layer call, mode words for an option, layers after `|>`.
    let items = c.request("textDocument/completion", at(&doc, position_of(&text, "conv2d(16, ", 11)));
    let got = labels(&items);
    for want in ["kernel", "padding", "stride", "dilation", "activation"] {
        assert!(got.iter().any(|l| l == want), "missing option {want}: {got:?}");
    }
    let items = c.request("textDocument/completion", at(&doc, position_of(&text, "padding = 2", 10)));
    let got = labels(&items);
    assert!(got.contains(&"same".to_string()) && got.contains(&"valid".to_string()), "{got:?}");
    let items = c.request("textDocument/completion", at(&doc, position_of(&text, "|> relu", 3)));
    let got = labels(&items);
    assert!(got.contains(&"conv2d".to_string()) && got.contains(&"batch_norm".to_string()), "{got:?}");
    let conv = items.as_array().expect("items").iter().find(|i| i["label"] == "conv2d").expect("conv2d item");
    assert!(conv["detail"].as_str().is_some_and(|d| d.starts_with("conv2d(x, filters")), "{conv}");

    // Go to definition and find references of a binding.
    let use_site = position_of(&text, "dense(features", 7);
    let def = c.request("textDocument/definition", at(&doc, use_site.clone()));
    assert_eq!(def["uri"], doc.as_str());
    assert_eq!(def["range"]["start"], position_of(&text, "features = images", 0));
    let mut refs_params = at(&doc, use_site);
    refs_params["context"] = json!({"includeDeclaration": true});
    let refs = c.request("textDocument/references", refs_params);
    assert_eq!(refs.as_array().map(Vec::len), Some(2), "{refs}");
    // A model named in a train block.
    let def = c.request("textDocument/definition", at(&doc, position_of(&text, "ConvNet()", 2)));
    assert_eq!(def["range"]["start"], position_of(&text, "ConvNet(classes", 0));
    // A dim in a type.
    let def = c.request("textDocument/definition", at(&doc, position_of(&text, "[N, 28, 28, 1]", 1)));
    assert_eq!(def["range"]["start"], position_of(&text, "N\n\n///", 0));
    // Names in a train block: the model's outputs, the data arrays.
    let def = c.request("textDocument/definition", at(&doc, position_of(&text, "cross_entropy(logits", 15)));
    assert_eq!(def["range"]["start"], position_of(&text, "logits = dense", 0));

    // Document symbols: models, trains, dims and the lets inside bodies.
    let symbols = c.request("textDocument/documentSymbol", json!({"textDocument": {"uri": doc}}));
    let names = labels(&json!(
        symbols.as_array().expect("symbols").iter().map(|s| json!({"label": s["name"]})).collect::<Vec<_>>()
    ));
    assert_eq!(names, ["N", "ConvNet", "mnist"], "{symbols}");
    let convnet = &symbols[1];
    let children: Vec<&str> =
        convnet["children"].as_array().expect("children").iter().filter_map(|s| s["name"].as_str()).collect();
    assert_eq!(children, ["classes", "images", "labels", "features", "logits"]);
    assert_eq!(convnet["children"][3]["detail"], "[N, 1568]");

    // A file that is already formatted needs no edits.
    let edits = c.request(
        "textDocument/formatting",
        json!({"textDocument": {"uri": doc}, "options": {"tabSize": 4, "insertSpaces": true}}),
    );
    assert_eq!(edits, json!([]));
    assert_eq!(c.shutdown(), Some(0));
}

#[test]
fn formatting_returns_the_canonical_layout() {
    let (mut c, dir) = start("format");
    let doc = uri(&dir).to_string() + "/messy.nn";
    let messy = "dim N\nmodel M(k=3){\ninput x:[N,8]\n  let h=x|>dense(k)   |>relu\noutput y=h\n}\n";
    c.open(&doc, messy);
    c.diagnostics(&doc, Some(1));
    let edits = c.request(
        "textDocument/formatting",
        json!({"textDocument": {"uri": doc}, "options": {"tabSize": 4, "insertSpaces": true}}),
    );
    let edits = edits.as_array().expect("edits");
    assert_eq!(edits.len(), 1);
    let want = nnc_syntax::format::format(messy);
    assert_eq!(edits[0]["newText"], want.as_str());
    assert!(want.contains("    let h = x |> dense(k) |> relu\n"), "{want}");
    assert_eq!(edits[0]["range"]["start"], json!({"line": 0, "character": 0}));
    assert_eq!(edits[0]["range"]["end"], json!({"line": 6, "character": 0}));
    // A file with syntax errors is left alone.
    c.change(&doc, 2, "model M {\n  let = \n}\n");
    c.diagnostics(&doc, Some(2));
    let edits = c.request(
        "textDocument/formatting",
        json!({"textDocument": {"uri": doc}, "options": {"tabSize": 4, "insertSpaces": true}}),
    );
    assert!(edits.is_null() || edits == json!([]), "{edits}");
    assert_eq!(c.shutdown(), Some(0));
}

#[test]
fn used_files_get_diagnostics_and_open_buffers_override_the_disk() {
    let (mut c, dir) = start("uses");
    let lib = dir.join("lib.nn");
    std::fs::write(
        &lib,
        "dim N\n\n/// Projects to k features.\nblock proj(x: [N, D], k: int) -> [N, k] {\n    return \
        dense(x, k)\n}\n\nmodel Broken {\n    input x: [N, 4]\n    output y = conv2d(x, 3, kernel = 3)\n}\n",
    )
    .expect("write lib");
    let main = dir.join("main.nn");
    let main_text = "use \"lib.nn\"\n\nmodel Uses {\n    input x: [N, 16]\n    output y: [N, 8] = proj(x, 8)\n}\n";
    std::fs::write(&main, main_text).expect("write main");
    let (main_uri, lib_uri) = (uri(&main), uri(&lib));

    c.open(&main_uri, main_text);
    assert_eq!(c.diagnostics(&main_uri, Some(1)), Vec::<Value>::new());
    // The error in the used file is published for the used file's URI.
    let lib_diags = c.diagnostics(&lib_uri, None);
    assert_eq!(lib_diags.len(), 1, "{lib_diags:?}");
    assert_eq!(lib_diags[0]["code"], "E0301");
    assert_eq!(lib_diags[0]["range"]["start"]["line"], 9);

    // Go to definition across files: the block, and the `use`d file itself.
    let def = c.request("textDocument/definition", at(&main_uri, position_of(main_text, "proj(x", 1)));
    assert_eq!(def["uri"], lib_uri.as_str());
    assert_eq!(def["range"]["start"], json!({"line": 3, "character": 6}));
    let def = c.request("textDocument/definition", at(&main_uri, position_of(main_text, "lib.nn", 1)));
    assert_eq!(def["uri"], lib_uri.as_str());
    let h = hover_text(&mut c, &main_uri, position_of(main_text, "proj(x", 1));
    assert!(h.contains("block proj(x: [N, D], k: int) -> [N, k]") && h.contains("Projects to k features."), "{h}");

    // Edit lib.nn in the editor without saving: main.nn is checked against the buffer.
    let edited = "dim N\n\nblock proj(x: [N, D], k: int) {\n    return dense(x, k + 1)\n}\n";
    c.open(&lib_uri, edited);
    let main_diags = c.diagnostics(&main_uri, Some(1));
    assert_eq!(main_diags.len(), 1, "{main_diags:?}");
    assert_eq!(main_diags[0]["code"], "E0302");
    assert_eq!(main_diags[0]["range"]["start"]["line"], 4);
    assert_eq!(c.diagnostics(&lib_uri, Some(1)), Vec::<Value>::new());
    // References of the block span both documents.
    let mut p = at(&lib_uri, position_of(edited, "proj", 0));
    p["context"] = json!({"includeDeclaration": true});
    let refs = c.request("textDocument/references", p);
    let uris: Vec<&str> = refs.as_array().expect("refs").iter().filter_map(|r| r["uri"].as_str()).collect();
    assert!(uris.contains(&main_uri.as_str()) && uris.contains(&lib_uri.as_str()), "{refs}");
    assert_eq!(c.shutdown(), Some(0));
}

#[test]
fn standard_library_definitions_open_a_copy_of_the_embedded_module() {
    let (mut c, _) = start("stdlib");
    let (doc, text) = read("examples/resnet_inception.nn");
    c.open(&doc, &text);
    c.diagnostics(&doc, Some(1));
    let def = c.request("textDocument/definition", at(&doc, position_of(&text, "residual(32)", 1)));
    let target = def["uri"].as_str().expect("uri");
    assert!(target.ends_with("/std/blocks.nn"), "{def}");
    let copy = std::fs::read_to_string(target.trim_start_matches("file://")).expect("materialised stdlib");
    let line = def["range"]["start"]["line"].as_u64().expect("line") as usize;
    assert!(copy.lines().nth(line).is_some_and(|l| l.starts_with("block residual(")), "{def}");
    // Hover on a block call: the block's signature and docs, the value, the parameters it creates.
    let h = hover_text(&mut c, &doc, position_of(&text, "residual(mixed", 1));
    assert!(h.contains("block residual(x: [N, H, W, C], filters: int"), "{h}");
    assert!(h.contains("ResNet basic block"), "{h}");
    assert!(h.contains("→ `[N, 4, 4, 64]`"), "{h}");
    assert!(h.contains("**`reduced.*`**: 7 layers, 78,528 parameters"), "{h}");
    assert_eq!(c.shutdown(), Some(0));
}

#[test]
fn bad_input_gets_an_error_answer_and_the_server_keeps_serving() {
    let (mut c, dir) = start("robust");
    let (doc, text) = read("examples/small_mlp.nn");
    c.open(&doc, &text);
    c.diagnostics(&doc, Some(1));

    // A header without a length: answered, then everything up to the next
    // `Content-Length` is skipped (the server resynchronises there).
    c.send_raw(b"X-Nothing: 1\r\n\r\n");
    c.wait_for("the header error", |m| m.get("id") == Some(&Value::Null));
    // Malformed JSON: a parse error with a null id.
    c.send_raw(b"Content-Length: 9\r\n\r\n{\"jsonrp\"");
    let e = c.wait_for("the parse error", |m| m.get("id") == Some(&Value::Null));
    assert_eq!(e["error"]["code"], -32700, "{e}");
    // Unknown method.
    let r = c.request_raw("textDocument/frobnicate", json!({}));
    assert_eq!(r["error"]["code"], -32601, "{r}");
    // Invalid parameters.
    let r = c.request_raw("textDocument/hover", json!({"textDocument": 42}));
    assert_eq!(r["error"]["code"], -32602, "{r}");
    // Positions past the end of the document: no answer, no crash.
    for pos in [
        json!({"line": 9999, "character": 0}),
        json!({"line": 0, "character": 9999}),
        json!({"line": 4294967295u32, "character": 4294967295u32}),
    ] {
        let r = c.request_raw("textDocument/hover", at(&doc, pos.clone()));
        assert!(r.get("error").is_none(), "{r}");
        let r = c.request_raw("textDocument/completion", at(&doc, pos.clone()));
        assert!(r.get("error").is_none(), "{r}");
        let r = c.request_raw("textDocument/definition", at(&doc, pos));
        assert!(r.get("error").is_none(), "{r}");
    }
    // A document that was never opened.
    let r = c.request_raw("textDocument/hover", at("file:///nowhere/x.nn", json!({"line": 0, "character": 0})));
    assert_eq!(r["result"], Value::Null);

    // A `use`d file that is not UTF-8.
    let bad = dir.join("bad.nn");
    std::fs::write(&bad, b"dim N\n\xff\xfe model\n").expect("write bad");
    let user = dir.join("user.nn");
    let user_text = "use \"bad.nn\"\ndim N\nmodel M {\n    input x: [N, 2]\n    output y = x |> dense(3)\n}\n";
    let user_uri = uri(&user);
    c.open(&user_uri, user_text);
    let diags = c.diagnostics(&user_uri, Some(1));
    assert_eq!(diags.len(), 1, "{diags:?}");
    assert_eq!(diags[0]["code"], "E0105");
    assert!(diags[0]["message"].as_str().is_some_and(|m| m.contains("not valid UTF-8")), "{diags:?}");

    // A 50,000-line file.
    let mut big = String::from("dim N\n\nmodel Big {\n    input x: [N, 16]\n    let h0 = x\n");
    let stages = 12_500;
    for i in 1..=stages {
        big.push_str(&format!("    // stage {i}\n    let h{i} = h{}\n        |> dense(16)\n        |> relu\n", i - 1));
    }
    big.push_str(&format!("    output y = h{stages}\n}}\n"));
    assert!(big.lines().count() >= 50_000);
    let big_uri = uri(&dir).to_string() + "/big.nn";
    c.open(&big_uri, &big);
    assert_eq!(c.diagnostics(&big_uri, Some(1)), Vec::<Value>::new());
    let h = hover_text(&mut c, &big_uri, position_of(&big, "let h12345 ", 4));
    assert!(h.contains("[N, 16]"), "{h}");

    // Still serving the first document.
    let h = hover_text(&mut c, &doc, position_of(&text, "model SmallMlp {", 6));
    assert!(!h.is_empty());
    assert!(c.is_running());
    assert_eq!(c.shutdown(), Some(0));
}

#[test]
fn exit_without_shutdown_is_an_error_exit() {
    let (mut c, _) = start("exit");
    c.notify("exit", Value::Null);
    assert_eq!(c.wait_exit(), Some(1));
}
