//! Helpers shared by the integration tests.
#![allow(dead_code, clippy::unwrap_used)]

use std::path::{Path, PathBuf};

/// The repository's testdata folder.
pub fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata")
}

/// A fresh, empty temporary folder unique to this test.
pub fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("pel-test-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Copies captured blocks `numbers` (and block_hashes.json) into a new folder
/// of the same layout.
pub fn copy_blocks(tag: &str, numbers: &[u64]) -> PathBuf {
    let src = testdata().join("mainnet");
    let dst = temp_dir(tag);
    std::fs::copy(src.join("block_hashes.json"), dst.join("block_hashes.json")).unwrap();
    for n in numbers {
        let from = src.join("blocks").join(n.to_string());
        let to = dst.join("blocks").join(n.to_string());
        std::fs::create_dir_all(&to).unwrap();
        for f in ["block.json", "pre_state.json", "bytecodes.json"] {
            std::fs::copy(from.join(f), to.join(f)).unwrap();
        }
    }
    dst
}
