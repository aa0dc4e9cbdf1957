//! The scheduler's layers, checked mechanically: the HTTP layer may use `core` and
//! `model`, never the store (SQL) or the agent client; SQL lives in the store only.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out
}

fn src(sub: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src").join(sub)
}

#[test]
fn the_http_layer_reaches_neither_the_store_nor_the_agent_client() {
    let forbidden = [
        "crate::store",
        "crate::agents",
        "rusqlite",
        "super::store",
        "super::agents",
        "yunji_common::client",
    ];
    let files = rust_files(&src("http"));
    assert!(files.len() >= 3, "the http layer moved?");
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for word in forbidden {
            assert!(
                !text.contains(word),
                "{} uses {word}: http must go through core",
                file.display()
            );
        }
    }
}

#[test]
fn sql_lives_in_the_store_only() {
    for file in rust_files(&src("")) {
        if file.starts_with(src("store")) {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        for word in [
            "rusqlite",
            "SELECT ",
            "INSERT INTO",
            "DELETE FROM",
            "UPDATE ",
        ] {
            assert!(
                !text.contains(word),
                "{} contains {word:?}: SQL belongs in src/store",
                file.display()
            );
        }
    }
}
