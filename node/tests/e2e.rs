//! End-to-end tests of `pel node` with real clients: ethers.js (npm) deploys
//! and uses contracts compiled with solc-js through the node's JSON-RPC; the
//! node is then SIGKILLed and restarted on the same data dir, and the chain,
//! balances and receipts must still be there. Needs Node.js and the packages
//! of `node/tests/e2e` (`npm install --ignore-scripts` there; `scripts/test`
//! does it).
#![allow(clippy::unwrap_used)]

mod common;

use common::{free_port, start_node};
use std::{
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

fn e2e_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e")
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
    let node = start_node(&datadir, port, &[]);
    run_phase("deploy", port, &state);
    // SIGKILL (what dropping does), not a clean shutdown: the data dir must
    // still be whole.
    drop(node);
    std::thread::sleep(Duration::from_millis(200));
    let port = free_port();
    let node = start_node(&datadir, port, &[]);
    run_phase("restart", port, &state);
    drop(node);
    let _ = std::fs::remove_dir_all(&dir);
}
