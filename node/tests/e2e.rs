//! End-to-end tests of `pel node` with real clients: ethers.js (npm) deploys
//! and uses contracts compiled with solc-js through the node's JSON-RPC; the
//! node is then SIGKILLed and restarted on the same data dir, and the chain,
//! balances and receipts must still be there. Needs Node.js and the packages
//! of `node/tests/e2e` (`npm install --ignore-scripts` there; `scripts/test`
//! does it).
#![allow(clippy::unwrap_used)]

mod common;

use std::{
    io::{BufRead, BufReader},
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

fn e2e_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running node, killed when dropped (also when a test fails).
struct NodeProcess(Child);

impl Drop for NodeProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `pel node` and waits until it listens.
fn start_node(datadir: &Path, port: u16) -> NodeProcess {
    let mut child = Command::new(env!("CARGO_BIN_EXE_pel"))
        .args(["node", "--port", &port.to_string(), "--datadir"])
        .arg(datadir)
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

fn run_phase(phase: &str, port: u16, state: &Path) {
    let status = Command::new("node")
        .arg(e2e_dir().join("e2e.mjs"))
        .arg(phase)
        .env("PEL_URL", format!("http://127.0.0.1:{port}"))
        .env("PEL_WS", format!("ws://127.0.0.1:{port}"))
        .env("STATE_FILE", state)
        .env(
            "CONTRACTS",
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../benches/contracts"),
        )
        .current_dir(e2e_dir())
        .status()
        .expect("Node.js is required for the client tests");
    assert!(status.success(), "e2e phase {phase} failed");
}

#[test]
fn ethers_deploys_transfers_reads_events_and_survives_a_restart() {
    assert!(
        e2e_dir().join("node_modules/ethers").exists(),
        "run `npm install --ignore-scripts` in node/tests/e2e (scripts/test does)"
    );
    let dir = common::temp_dir("e2e");
    let datadir = dir.join("data");
    let state = dir.join("state.json");
    let port = free_port();
    let node = start_node(&datadir, port);
    run_phase("deploy", port, &state);
    // SIGKILL (what dropping does), not a clean shutdown: the data dir must
    // still be whole.
    drop(node);
    std::thread::sleep(Duration::from_millis(200));
    let port = free_port();
    let node = start_node(&datadir, port);
    run_phase("restart", port, &state);
    drop(node);
    let _ = std::fs::remove_dir_all(&dir);
}
