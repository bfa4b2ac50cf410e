//! `nnc ir` snapshots: the canonical IR text of small models, forward and
//! backward (`UPDATE_SNAPSHOTS=1` rewrites them), like Cranelift's filetests.

#![forbid(unsafe_code)]

mod common;

use std::process::Command;

use common::*;

#[test]
fn ir_text_matches_snapshots() {
    let mut failures = Vec::new();
    for path in nn_files("tests/ir") {
        let rel = path.strip_prefix(root()).unwrap();
        let backward = rel.to_string_lossy().contains("step");
        let mut cmd = Command::new(nnc_bin());
        cmd.current_dir(root()).args(["ir", "--batch", "2"]).arg(rel);
        if backward {
            cmd.arg("--backward");
        }
        let o = cmd.output().unwrap();
        assert!(o.status.success(), "{}: {}", rel.display(), String::from_utf8_lossy(&o.stderr));
        let text = String::from_utf8_lossy(&o.stdout).to_string();
        assert!(text.contains("output"), "{text}");
        if let Some(d) = snapshot(&path.with_extension("ir"), &text) {
            failures.push(d);
        }
        // The compiled program of the same function (`nnc ir --fused`).
        let o = cmd.arg("--fused").output().unwrap();
        assert!(o.status.success(), "{}: {}", rel.display(), String::from_utf8_lossy(&o.stderr));
        let text = String::from_utf8_lossy(&o.stdout).to_string();
        assert!(text.contains("kernel"), "{text}");
        if let Some(d) = snapshot(&path.with_extension("fused"), &text) {
            failures.push(d);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The text parses back: for every example, the forward and backward IR of
/// each train block (and each model's forward pass) prints identically after
/// `parse` (large constant tables are elided in the text: `parse_lossy`).
#[test]
fn ir_text_parses_back() {
    use nnc_compiler::graph::TRef;
    use nnc_compiler::ir::parse::parse_lossy;
    let mut checked = 0;
    let mut round_trip = |what: &str, f: nnc_compiler::ir::Func| {
        let text = f.to_string();
        let back =
            parse_lossy(&text).unwrap_or_else(|e| panic!("{what}: {e}\n{}", text.lines().nth(e.line - 1).unwrap()));
        assert!(back.to_string() == text, "{what}: the text changed after a round trip");
        checked += 1;
    };
    for path in nn_files("examples") {
        let a = analyse_path(&path);
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        for info in &a.result.trains {
            // Alternating (GAN) blocks have no single step (`nnc ir` on one panics in
            // lowering today): their models are checked below.
            if !info.steps.is_empty() {
                continue;
            }
            let Ok(t) = nnc_runtime::train::Trainer::new(info, None, vec![]) else { continue };
            for backward in [false, true] {
                // Blocks whose loss comes from data the file names lower only with that data.
                if let Ok(f) = t.ir(2, backward) {
                    round_trip(&format!("{name} {} backward={backward}", info.name), f);
                }
            }
        }
        for m in &a.result.models {
            let roots: Vec<(String, TRef)> = m
                .outputs
                .iter()
                .filter_map(|(n, v)| v.as_tensor().and_then(|t| t.node).map(|r| (n.clone(), r)))
                .collect();
            let opts = nnc_compiler::ir::lower::LowerOptions { dims: vec![("N".into(), 2)], ..Default::default() };
            // Models with free dims other than `N` do not lower; their train blocks did.
            if let Ok(f) = nnc_compiler::ir::lower::lower(&m.graph, &roots, &Default::default(), &opts) {
                round_trip(&format!("{name} model {}", m.name), f);
            }
        }
    }
    eprintln!("{checked} functions round-tripped");
    assert!(checked >= 40, "only {checked} functions checked");
}
