//! The manual's generated pages (`nnc doc layers|callables|diagnostics|cli`) are committed under
//! `docs/src/`; this test fails when one is stale, so a new layer, option, code or flag reaches the book in
//! the same commit. `UPDATE_SNAPSHOTS=1 cargo test --release --test doc_pages` rewrites them.

#![forbid(unsafe_code)]

mod common;

use std::process::Command;

use common::*;

#[test]
fn generated_pages_are_up_to_date() {
    let mut stale = Vec::new();
    for (page, file) in
        [("layers", "layers.md"), ("callables", "callables.md"), ("diagnostics", "diagnostics.md"), ("cli", "cli.md")]
    {
        let out = Command::new(nnc_bin()).args(["doc", page]).output().unwrap();
        assert!(out.status.success(), "nnc doc {page} failed:\n{}", String::from_utf8_lossy(&out.stderr));
        let text = String::from_utf8(out.stdout).unwrap();
        if let Some(diff) = snapshot(&root().join("docs/src").join(file), &text) {
            stale.push(diff);
        }
    }
    assert!(stale.is_empty(), "{}", stale.join("\n"));
}

#[test]
fn an_unknown_page_is_a_usage_error() {
    let out = Command::new(nnc_bin()).args(["doc", "nonsense"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("layers"));
}
