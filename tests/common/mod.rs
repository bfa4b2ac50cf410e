//! Helpers shared by the end-to-end tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use nnc_compiler::{Analysis, CheckOptions, FsLoader, analyse};

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
