//! The crash suite: `pel node` is SIGKILLed at random moments while it mines
//! under load from concurrent clients. After every kill the data dir must
//! reopen at a whole block (body, receipts and indices of every block; the
//! head's state root equal to the root recomputed from plain state; nothing
//! beyond the head), and every transaction whose receipt a client had
//! received must still be there, in the same block.
//!
//! `PEL_MINING_CRASH_ITERATIONS` sets the number of kills (default 24; the
//! long mode in the README uses 300).
#![allow(clippy::unwrap_used)]

mod common;

use common::{free_port, rpc, start_node, try_rpc};
use pel_node::{chain::Chain, synth::Rng};
use pel_state::StoreOptions;
use serde_json::{json, Value};
use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

/// A receipt a client saw: transaction hash, block hash, block number.
type Ack = (Value, Value, Value);

/// Sends transfers from `from` until `stop`, recording every receipt seen.
fn load(port: u16, from: String, to: String, stop: Arc<AtomicBool>, acks: Arc<Mutex<Vec<Ack>>>) {
    while !stop.load(Ordering::Relaxed) {
        let Some(sent) = try_rpc(
            port,
            "eth_sendTransaction",
            json!([{"from": from, "to": to, "value": "0x1"}]),
        ) else {
            return;
        };
        let Some(hash) = sent.get("result").cloned() else {
            continue;
        };
        let Some(receipt) = try_rpc(port, "eth_getTransactionReceipt", json!([hash])) else {
            return;
        };
        let r = &receipt["result"];
        if r.is_object() {
            assert_eq!(r["status"], "0x1", "{receipt}");
            acks.lock()
                .unwrap()
                .push((hash, r["blockHash"].clone(), r["blockNumber"].clone()));
        }
    }
}

/// Every acknowledged transaction is still in its block.
fn check_acks(port: u16, acks: &[Ack]) {
    for (hash, block_hash, number) in acks {
        let receipt = rpc(port, "eth_getTransactionReceipt", json!([hash]));
        assert_eq!(
            &receipt["result"]["blockHash"], block_hash,
            "{hash}: {receipt}"
        );
        assert_eq!(&receipt["result"]["blockNumber"], number, "{hash}");
        let tx = rpc(port, "eth_getTransactionByHash", json!([hash]));
        assert_eq!(&tx["result"]["blockHash"], block_hash, "{hash}: {tx}");
    }
}

#[test]
fn sigkill_while_mining_under_load_loses_no_acknowledged_transaction() {
    let iterations: usize = std::env::var("PEL_MINING_CRASH_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(24);
    let dir = common::temp_dir("mining-crash");
    let datadir = dir.join("data");
    let mut rng = Rng::new(17);
    let mut acks: Vec<Ack> = Vec::new();
    let mut last_round = 0;
    let mut heads = Vec::new();
    for _ in 0..iterations {
        let port = free_port();
        let mut node = start_node(&datadir, port, &["--threads", "2"]);
        // The receipts seen just before the last kill are the ones at risk;
        // all of them are checked again at the end.
        check_acks(port, &acks[last_round..]);
        last_round = acks.len();
        let accounts = rpc(port, "eth_accounts", json!([]))["result"].clone();
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let clients: Vec<_> = (0..4)
            .map(|i| {
                let from = accounts[i].as_str().unwrap().to_string();
                let to = accounts[i + 4].as_str().unwrap().to_string();
                let (stop, seen) = (stop.clone(), seen.clone());
                std::thread::spawn(move || load(port, from, to, stop, seen))
            })
            .collect();
        std::thread::sleep(Duration::from_millis(50 + rng.below(500) as u64));
        node.kill(); // SIGKILL, mid-load
        stop.store(true, Ordering::Relaxed);
        for c in clients {
            c.join().unwrap();
        }
        acks.extend(seen.lock().unwrap().drain(..));
        // Reopen the data dir directly: a whole block, nothing half-written.
        let chain = Chain::open(&datadir, StoreOptions::default()).unwrap();
        common::check_whole(chain.store());
        heads.push(chain.head().number);
    }
    // One last start: the node serves every acknowledged transaction.
    let port = free_port();
    let _node = start_node(&datadir, port, &[]);
    check_acks(port, &acks);
    eprintln!(
        "{iterations} kills while mining; {} acknowledged transactions all present; heads {heads:?}",
        acks.len()
    );
    assert!(
        acks.len() >= iterations,
        "too little load reached the node: {} receipts",
        acks.len()
    );
    assert!(heads.windows(2).all(|w| w[0] <= w[1]), "{heads:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
