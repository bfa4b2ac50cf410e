//! The manual (`docs/`, an mdBook) is tested like doctests:
//!
//! - every ```` ```nn ```` block of every page checks clean with `nnc check`, or, annotated
//!   ```` ```nn,error=E0302 ````, fails with exactly that code; blocks annotated `train` also take one
//!   training step (`nnc run --epochs 1 --steps 1`). Blocks are written as files beside a link to the
//!   repository's `data/`, so the paths in them (`"data/digits.csv.gz"`) are the ones a reader who saves
//!   the file at the top of a clone uses;
//! - every page is listed in `SUMMARY.md` and every page `SUMMARY.md` lists exists;
//! - no link in the book or the README leaves the repository, and every relative link (and its `#anchor`)
//!   leads somewhere.
//!
//! The generated pages (`nnc doc …`) are compared with the committed ones in `tests/doc_pages.rs`.

#![forbid(unsafe_code)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

/// A fenced ```` ```nn ```` block: where it is, how it is annotated, its text.
struct Block {
    page: PathBuf,
    line: usize,
    info: String,
    text: String,
}

fn pages() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let mut entries: Vec<PathBuf> =
            std::fs::read_dir(dir).unwrap().filter_map(|e| e.ok().map(|e| e.path())).collect();
        entries.sort();
        for p in entries {
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "md") {
                out.push(p);
            }
        }
    }
    let mut out = Vec::new();
    walk(&root().join("docs/src"), &mut out);
    out
}

fn blocks(page: &Path) -> Vec<Block> {
    let text = std::fs::read_to_string(page).unwrap();
    let mut out = Vec::new();
    let mut open: Option<(usize, String, String)> = None;
    for (i, line) in text.lines().enumerate() {
        match &mut open {
            None => {
                if let Some(info) = line.strip_prefix("```nn")
                    && (info.is_empty() || info.starts_with(','))
                {
                    open = Some((i + 1, info.trim_start_matches(',').to_string(), String::new()));
                }
            }
            Some((start, info, body)) => {
                if line.starts_with("```") {
                    out.push(Block { page: page.to_path_buf(), line: *start, info: info.clone(), text: body.clone() });
                    open = None;
                } else {
                    body.push_str(line);
                    body.push('\n');
                }
            }
        }
    }
    assert!(open.is_none(), "{}: unclosed ```nn block", page.display());
    out
}

/// `error=E0302` → `Some("E0302")`; the other annotation is `train`.
fn expected_error(info: &str) -> Option<&str> {
    info.split(',').find_map(|a| a.strip_prefix("error="))
}

#[cfg(unix)]
fn link_data(dir: &Path) {
    std::os::unix::fs::symlink(root().join("data"), dir.join("data")).unwrap();
}

#[cfg(not(unix))]
fn link_data(_dir: &Path) {}

#[test]
fn every_nn_block_in_the_book_checks_or_fails_as_annotated() {
    let dir = std::env::temp_dir().join(format!("nnc-docs-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    link_data(&dir);
    let mut failures = Vec::new();
    let mut count = 0;
    for page in pages() {
        for (k, b) in blocks(&page).into_iter().enumerate() {
            count += 1;
            let at = format!("{}:{}", b.page.strip_prefix(root()).unwrap_or(&b.page).display(), b.line);
            for a in b.info.split(',').filter(|a| !a.is_empty()) {
                if a != "train" && !a.starts_with("error=E") && !a.starts_with("error=W") {
                    failures.push(format!("{at}: unknown annotation `{a}` (use `train` or `error=CODE`)"));
                }
            }
            let file = dir.join(format!("{}_{k}.nn", page.file_stem().unwrap().to_string_lossy()));
            std::fs::write(&file, &b.text).unwrap();
            // The root is the repository: the data link resolves into it.
            let root_arg = root();
            let check = Command::new(nnc_bin()).arg("check").arg(&file).arg("--root").arg(&root_arg).output().unwrap();
            let stderr = String::from_utf8_lossy(&check.stderr);
            match expected_error(&b.info) {
                Some(code) if !stderr.contains(&format!("[{code}]")) => {
                    failures.push(format!("{at}: expected {code}, got:\n{stderr}"));
                }
                Some(_) => {}
                None if !check.status.success() => failures.push(format!("{at}: does not check clean:\n{stderr}")),
                None if b.info.split(',').any(|a| a == "train") => {
                    let run = Command::new(nnc_bin())
                        .arg("run")
                        .arg(&file)
                        .args(["--epochs", "1", "--steps", "1", "--root"])
                        .arg(&root_arg)
                        .arg("--out")
                        .arg(dir.join(format!("out_{k}")))
                        .output()
                        .unwrap();
                    if !run.status.success() {
                        failures.push(format!(
                            "{at}: one step of training fails:\n{}",
                            String::from_utf8_lossy(&run.stderr)
                        ));
                    }
                }
                None => {}
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert!(count >= 20, "only {count} nn blocks found under docs/src");
    assert!(failures.is_empty(), "{} of {count} blocks fail:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn a_wrong_annotation_is_caught() {
    // The harness itself can fail: a block that checks clean does not contain the code it claims.
    let dir = std::env::temp_dir().join(format!("nnc-docs-neg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("ok.nn");
    std::fs::write(&file, "dim N\nmodel M {\n    input x: [N, 2]\n    output y = dense(x, 3)\n}\n").unwrap();
    let check = Command::new(nnc_bin()).arg("check").arg(&file).output().unwrap();
    assert!(check.status.success());
    assert!(!String::from_utf8_lossy(&check.stderr).contains("[E0302]"));
    let _ = std::fs::remove_dir_all(&dir);
    let parsed = blocks_of("```nn,error=E0302\nx\n```\n```nn,train\ny\n```\n```text\nz\n```\n");
    assert_eq!(parsed.len(), 2);
    assert_eq!(expected_error(&parsed[0].info), Some("E0302"));
    assert_eq!(parsed[1].info, "train");
}

fn blocks_of(text: &str) -> Vec<Block> {
    let path = std::env::temp_dir().join(format!("nnc-docs-page-{}.md", std::process::id()));
    std::fs::write(&path, text).unwrap();
    let b = blocks(&path);
    let _ = std::fs::remove_file(&path);
    b
}

/// `[text](target)` links of a Markdown page, outside code.
fn links(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut in_fence = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            in_fence = !in_fence;
            continue;
        }
        if in_fence {
            continue;
        }
        let mut rest = line;
        while let Some(i) = rest.find("](") {
            let after = &rest[i + 2..];
            let Some(end) = after.find(')') else { break };
            out.push(after[..end].to_string());
            rest = &after[end..];
        }
    }
    out
}

/// GitHub/mdBook anchors of a page's headings.
fn anchors(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| l.starts_with('#'))
        .map(|l| {
            let title = l.trim_start_matches('#').trim().to_lowercase();
            title
                .chars()
                .filter_map(|c| match c {
                    'a'..='z' | '0'..='9' | '_' | '-' => Some(c),
                    ' ' => Some('-'),
                    c if c.is_alphanumeric() => Some(c),
                    _ => None,
                })
                .collect()
        })
        .collect()
}

#[test]
fn links_stay_inside_the_repository_and_resolve() {
    let mut files = pages();
    files.push(root().join("README.md"));
    let mut failures = Vec::new();
    for page in &files {
        let text = std::fs::read_to_string(page).unwrap();
        let shown = page.strip_prefix(root()).unwrap_or(page).display().to_string();
        for link in links(&text) {
            if link.contains("://") || link.starts_with("mailto:") || link.starts_with("//") {
                failures.push(format!("{shown}: `{link}` leaves the repository"));
                continue;
            }
            let (path, anchor) = link.split_once('#').unwrap_or((&link, ""));
            let target = if path.is_empty() { page.clone() } else { page.parent().unwrap().join(path) };
            if !target.exists() {
                failures.push(format!("{shown}: `{link}` leads nowhere"));
                continue;
            }
            let is_md = target.extension().is_some_and(|x| x == "md");
            if !anchor.is_empty() && is_md {
                let t = std::fs::read_to_string(&target).unwrap();
                if !anchors(&t).iter().any(|a| a == anchor) {
                    failures.push(format!("{shown}: `{link}`: no heading `#{anchor}` there"));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn summary_lists_every_page() {
    let src = root().join("docs/src");
    let summary = std::fs::read_to_string(src.join("SUMMARY.md")).unwrap();
    let listed: Vec<PathBuf> = links(&summary).iter().map(|l| src.join(l)).collect();
    let mut failures = Vec::new();
    for l in &listed {
        if !l.exists() {
            failures.push(format!("SUMMARY.md lists {} which does not exist", l.display()));
        }
    }
    for page in pages() {
        if page.file_name().is_some_and(|n| n == "SUMMARY.md") {
            continue;
        }
        if !listed.contains(&page) {
            failures.push(format!("{} is not in SUMMARY.md (mdBook would not build it)", page.display()));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
