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
