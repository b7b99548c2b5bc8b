//! The soak test: many concurrent senders against one node for a bounded time
//! (loopback only). Every accepted transaction must be mined exactly once,
//! each sender's nonces must have no gaps, balances must add up to the wei,
//! and the node's resident memory must stay flat once warm.
//!
//! `PEL_SOAK_SECS` sets the duration (default 15; the long mode in the README
//! uses 600).
#![allow(clippy::unwrap_used)]

mod common;

use common::{free_port, quantity, rpc, start_node};
use serde_json::{json, Value};
use std::{
    collections::{HashMap, HashSet},
    time::{Duration, Instant},
};

const SENDERS: usize = 8;
const RECIPIENTS: usize = 4;

fn recipient(i: usize) -> String {
    format!("0x{}", format!("{:02x}", 0xa0 + i).repeat(20))
}

/// What one sender got accepted: (hash, recipient index, value).
type Sent = Vec<(Value, usize, u128)>;

#[test]
fn concurrent_senders_for_minutes_lose_nothing() {
    let secs: u64 = std::env::var("PEL_SOAK_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(15);
    let dir = common::temp_dir("soak");
    let port = free_port();
    let node = start_node(&dir.join("data"), port, &["--threads", "2"]);
    let accounts: Vec<String> =
        serde_json::from_value(rpc(port, "eth_accounts", json!([]))["result"].clone()).unwrap();
    let balance = |a: &str| quantity(&rpc(port, "eth_getBalance", json!([a, "latest"]))["result"]);
    let senders: Vec<String> = accounts[..SENDERS].to_vec();
    let sender_start: Vec<u128> = senders.iter().map(|a| balance(a)).collect();
    let recipient_start: Vec<u128> = (0..RECIPIENTS).map(|i| balance(&recipient(i))).collect();

    let deadline = Instant::now() + Duration::from_secs(secs);
    let threads: Vec<std::thread::JoinHandle<Sent>> = senders
        .iter()
        .enumerate()
        .map(|(s, from)| {
            let from = from.clone();
            std::thread::spawn(move || {
                let mut sent = Vec::new();
                let mut k = s as u64;
                while Instant::now() < deadline {
                    k = k.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    let to = (k >> 33) as usize % RECIPIENTS;
                    let value = 1 + (k >> 40) as u128 % 1000;
                    let v = rpc(
                        port,
                        "eth_sendTransaction",
                        json!([{"from": from, "to": recipient(to), "value": format!("{value:#x}")}]),
                    );
                    let hash = v.get("result").cloned();
                    assert!(hash.is_some(), "rejected: {v}");
                    sent.push((hash.unwrap(), to, value));
                }
                sent
            })
        })
        .collect();
    // Resident memory, sampled while the load runs.
    let mut rss = Vec::new();
    while Instant::now() < deadline {
        if let Some(kib) = node.rss_kib() {
            rss.push(kib);
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    let sent: Vec<Sent> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    let total: usize = sent.iter().map(Vec::len).sum();

    // Every block's transactions (batched reads): each accepted hash exactly once.
    let head = quantity(&rpc(port, "eth_blockNumber", json!([]))["result"]) as u64;
    let mut mined: HashMap<String, Value> = HashMap::new();
    let mut receipts: HashMap<String, Value> = HashMap::new();
    let numbers: Vec<u64> = (1..=head).collect();
    for chunk in numbers.chunks(50) {
        let calls: Vec<(&str, Value)> = chunk
            .iter()
            .flat_map(|n| {
                [
                    ("eth_getBlockByNumber", json!([format!("{n:#x}"), true])),
                    ("eth_getBlockReceipts", json!([format!("{n:#x}")])),
                ]
            })
            .collect();
        let answers = common::rpc_batch(port, &calls);
        for pair in answers.chunks(2) {
            for tx in pair[0]["result"]["transactions"].as_array().unwrap() {
                let hash = tx["hash"].as_str().unwrap().to_string();
                let previous = mined.insert(hash.clone(), tx.clone());
                assert!(previous.is_none(), "{hash} mined twice");
            }
            for r in pair[1]["result"].as_array().unwrap() {
                receipts.insert(
                    r["transactionHash"].as_str().unwrap().to_string(),
                    r.clone(),
                );
            }
        }
    }
    let mut recipient_got = [0u128; RECIPIENTS];
    for (s, list) in sent.iter().enumerate() {
        let mut nonces = HashSet::new();
        let mut spent = 0u128;
        for (hash, to, value) in list {
            let hash = hash.as_str().unwrap();
            let tx = mined
                .get(hash)
                .unwrap_or_else(|| panic!("{hash} accepted, never mined"));
            let receipt = &receipts[hash];
            assert_eq!(receipt["status"], "0x1", "{receipt}");
            let fee = quantity(&receipt["gasUsed"]) * quantity(&receipt["effectiveGasPrice"]);
            spent += value + fee;
            recipient_got[*to] += value;
            assert!(nonces.insert(quantity(&tx["nonce"])), "nonce reused: {tx}");
        }
        let n = list.len() as u128;
        assert_eq!(
            nonces,
            (0..n).collect::<HashSet<u128>>(),
            "sender {s}: nonce gap"
        );
        assert_eq!(
            quantity(
                &rpc(
                    port,
                    "eth_getTransactionCount",
                    json!([senders[s], "latest"])
                )["result"]
            ),
            n
        );
        assert_eq!(balance(&senders[s]), sender_start[s] - spent, "sender {s}");
    }
    for i in 0..RECIPIENTS {
        assert_eq!(
            balance(&recipient(i)),
            recipient_start[i] + recipient_got[i],
            "recipient {i}"
        );
    }

    // Memory: after warming up (first third), resident memory stays flat.
    let third = rss.len() / 3;
    let warm = rss[third..2 * third].iter().copied().max().unwrap_or(0);
    let last = rss[2 * third..].iter().copied().max().unwrap_or(0);
    eprintln!(
        "soak: {secs} s, {SENDERS} senders, {total} transactions accepted and mined once, {head} blocks; \
         RSS KiB min {} warm {warm} end {last}",
        rss.iter().min().unwrap_or(&0)
    );
    assert!(total > SENDERS * 10, "too little load: {total}");
    // The store's caches are bounded (256 MiB blocks, 128 MiB memtables).
    let peak = rss.iter().copied().max().unwrap_or(0);
    assert!(peak < 1 << 20, "resident memory reached {peak} KiB");
    assert!(
        last <= warm + warm / 2 + 64 * 1024,
        "resident memory grew from {warm} KiB to {last} KiB"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
