//! Helpers shared by the integration tests.
#![allow(dead_code, clippy::unwrap_used)]

use std::{
    io::{BufRead, BufReader},
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
};

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

/// A free local TCP port.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running node, killed when dropped (also when a test fails).
pub struct NodeProcess(Child);

impl Drop for NodeProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `pel node` and waits until it listens.
pub fn start_node(datadir: &Path, port: u16, extra: &[&str]) -> NodeProcess {
    let mut child = Command::new(env!("CARGO_BIN_EXE_pel"))
        .args(["node", "--port", &port.to_string(), "--datadir"])
        .arg(datadir)
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    loop {
        match lines.next() {
            Some(Ok(line)) if line.starts_with("Listening on") => break,
            Some(Ok(_)) => continue,
            _ => {
                let _ = child.kill();
                panic!("pel node exited before listening")
            }
        }
    }
    // Keep draining stdout so the node never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    NodeProcess(child)
}
