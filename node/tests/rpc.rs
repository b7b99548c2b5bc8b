//! Hostile and malformed JSON-RPC input against a running `pel node`: every
//! request gets the standard error code and a clear message, and the node keeps
//! serving (a valid transaction still goes through afterwards).
#![allow(clippy::unwrap_used)]

mod common;

use common::{free_port, start_node};
use serde_json::{json, Value};
use std::{
    io::{Read, Write},
    net::TcpStream,
    time::Duration,
};

/// POSTs `body` and returns (HTTP status, body).
fn post(port: u16, body: &[u8]) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let head = format!(
        "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    let _ = s.write_all(body);
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    let status = out
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = out.split("\r\n\r\n").nth(1).unwrap_or_default().to_string();
    (status, body)
}

fn call(port: u16, method: &str, params: Value) -> Value {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
    let (_, text) = post(port, body.to_string().as_bytes());
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{method}: {e}: {text:?}"))
}

fn code(v: &Value) -> i64 {
    v["error"]["code"]
        .as_i64()
        .unwrap_or_else(|| panic!("no error in {v}"))
}

const DEV0: &str = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266";

#[test]
fn bad_requests_get_standard_errors_and_the_node_keeps_serving() {
    let dir = common::temp_dir("rpc-hostile");
    let port = free_port();
    let _node = start_node(&dir.join("data"), port, &[]);

    // Malformed and truncated JSON: -32700.
    for bad in [
        &b"{"[..],
        b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"eth_chainId\"",
        b"\x00\xff",
    ] {
        let (_, text) = post(port, bad);
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(code(&v), -32700, "{text}");
    }
    // Not a valid request object: -32600.
    for bad in [
        &br#"{"jsonrpc":"2.0","id":1}"#[..],
        br#"{"jsonrpc":"2.0","method":1,"params":"bar","id":1}"#,
        b"[]",
    ] {
        let (_, text) = post(port, bad);
        assert_eq!(
            code(&serde_json::from_str(&text).unwrap()),
            -32600,
            "{text}"
        );
    }
    // Unknown method: -32601.
    assert_eq!(code(&call(port, "eth_doesNotExist", json!([]))), -32601);
    // Wrong types, counts, bad hex, odd-length hex: -32602 with a reason.
    for (method, params) in [
        ("eth_getBalance", json!([])),
        ("eth_getBalance", json!([42])),
        ("eth_getBalance", json!(["0x1234"])),
        ("eth_getBalance", json!([DEV0, "latest", "extra", "more"])),
        ("eth_getStorageAt", json!([DEV0, "0xzz", "latest"])),
        ("eth_getBlockByNumber", json!(["banana", false])),
        ("eth_sendRawTransaction", json!(["0x123"])),
        ("eth_sendRawTransaction", json!(["0x1234"])),
        ("eth_call", json!([{"to": 5}])),
        (
            "eth_getLogs",
            json!([{"fromBlock": "0x5", "toBlock": "0x1"}]),
        ),
    ] {
        let v = call(port, method, params.clone());
        assert_eq!(code(&v), -32602, "{method} {params}: {v}");
        assert!(!v["error"]["message"].as_str().unwrap().is_empty());
    }
    // Huge numbers and strings.
    let v = call(
        port,
        "eth_getBlockByNumber",
        json!([format!("0x{}", "f".repeat(100)), false]),
    );
    assert!(v.get("error").is_some(), "{v}");
    let v = call(
        port,
        "web3_sha3",
        json!([format!("0x{}", "ab".repeat(100_000))]),
    );
    assert!(v["result"].is_string(), "{v}");
    // Deep nesting.
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let (_, text) = post(
        port,
        format!(r#"{{"jsonrpc":"2.0","id":1,"method":"eth_getBalance","params":{deep}}}"#)
            .as_bytes(),
    );
    assert!(text.contains("error"), "{text}");
    // Oversized body: refused (HTTP 413), nothing read.
    let big = vec![b' '; 6 << 20];
    let (status, _) = post(port, &big);
    assert_eq!(status, 413);
    // Oversized batch: an error for the batch.
    let batch: Vec<Value> = (0..101)
        .map(|i| json!({"jsonrpc": "2.0", "id": i, "method": "eth_chainId"}))
        .collect();
    let (_, text) = post(port, Value::Array(batch).to_string().as_bytes());
    assert!(
        text.contains("-32600") || text.contains("-32005") || text.contains("batch"),
        "{text}"
    );
    // A batch within the limit works, one answer per call.
    let (_, text) = post(port, br#"[{"jsonrpc":"2.0","id":1,"method":"eth_chainId"},{"jsonrpc":"2.0","id":2,"method":"nope"}]"#);
    let answers: Vec<Value> = serde_json::from_str(&text).unwrap();
    assert_eq!(answers.len(), 2);
    // Logs over too wide a range: -32005.
    let v = call(
        port,
        "eth_getLogs",
        json!([{"fromBlock": "0x0", "toBlock": "0x100000"}]),
    );
    assert!(v.get("result").is_some() || code(&v) == -32005, "{v}");
    // Invalid transactions: -32000 with geth's wording.
    let v = call(
        port,
        "eth_sendTransaction",
        json!([{"from": DEV0, "to": DEV0, "value": "0x1", "nonce": "0x0", "gas": "0x1"}]),
    );
    assert!(v.get("error").is_some(), "{v}");
    let v = call(
        port,
        "eth_sendTransaction",
        json!([{"from": DEV0, "to": DEV0, "value": "0x1", "gas": "0x5208", "maxFeePerGas": "0x1", "maxPriorityFeePerGas": "0x1"}]),
    );
    assert_eq!(code(&v), -32000, "{v}");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("base fee"),
        "{v}"
    );
    let v = call(
        port,
        "eth_sendTransaction",
        json!([{"from": DEV0, "to": DEV0, "value": "0xffffffffffffffffffffffffffffffffff", "gas": "0x5208"}]),
    );
    assert_eq!(code(&v), -32000, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("insufficient funds"),
        "{v}"
    );
    // Unknown account for eth_sendTransaction.
    let v = call(
        port,
        "eth_sendTransaction",
        json!([{"from": "0x0000000000000000000000000000000000000001", "to": DEV0, "gas": "0x5208"}]),
    );
    assert_eq!(code(&v), -32000, "{v}");
    // Many connections opened and dropped.
    let conns: Vec<TcpStream> = (0..300)
        .filter_map(|_| TcpStream::connect(("127.0.0.1", port)).ok())
        .collect();
    drop(conns);
    // Still serving: a valid transfer goes through and is mined.
    let v = call(
        port,
        "eth_sendTransaction",
        json!([{"from": DEV0, "to": "0x70997970C51812dc3A010C7d01b50e0d17dc79C8", "value": "0x1"}]),
    );
    let hash = v["result"]
        .as_str()
        .unwrap_or_else(|| panic!("{v}"))
        .to_string();
    let receipt = call(port, "eth_getTransactionReceipt", json!([hash]));
    assert_eq!(receipt["result"]["status"], "0x1", "{receipt}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn snapshot_and_revert_unwind_the_chain() {
    let dir = common::temp_dir("rpc-snapshot");
    let port = free_port();
    let _node = start_node(&dir.join("data"), port, &[]);
    let to = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";
    let balance = |p| call(p, "eth_getBalance", json!([to, "latest"]))["result"].clone();
    let before = balance(port);
    let id = call(port, "evm_snapshot", json!([]))["result"].clone();
    let head = call(port, "eth_blockNumber", json!([]))["result"].clone();
    for _ in 0..3 {
        let v = call(
            port,
            "eth_sendTransaction",
            json!([{"from": DEV0, "to": to, "value": "0x100"}]),
        );
        assert!(v["result"].is_string(), "{v}");
    }
    assert_ne!(balance(port), before);
    let v = call(port, "evm_revert", json!([id]));
    assert_eq!(v["result"], json!(true), "{v}");
    assert_eq!(call(port, "eth_blockNumber", json!([]))["result"], head);
    assert_eq!(balance(port), before);
    // The snapshot is used up; the chain goes on from the reverted head.
    assert_eq!(
        call(port, "evm_revert", json!([id]))["result"],
        json!(false)
    );
    let v = call(
        port,
        "eth_sendTransaction",
        json!([{"from": DEV0, "to": to, "value": "0x1"}]),
    );
    let receipt = call(port, "eth_getTransactionReceipt", json!([v["result"]]));
    assert_eq!(receipt["result"]["status"], "0x1", "{receipt}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Blocks are filled by the gas transactions use, not by their gas limits:
/// five transfers signed with 30,000 gas each (21,000 used) against a
/// 100,000 block: four fit (84,000 used; their limits sum to 120,000), the
/// fifth waits for the next block.
#[test]
fn blocks_fill_by_gas_used() {
    let dir = common::temp_dir("rpc-fill");
    let port = free_port();
    let _node = start_node(
        &dir.join("data"),
        port,
        &["--no-mining", "--gas-limit", "100000"],
    );
    let to = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";
    let mut hashes = Vec::new();
    for _ in 0..5 {
        let v = call(
            port,
            "eth_sendTransaction",
            json!([{"from": DEV0, "to": to, "value": "0x1", "gas": "0x7530"}]),
        );
        hashes.push(
            v["result"]
                .as_str()
                .unwrap_or_else(|| panic!("{v}"))
                .to_string(),
        );
    }
    let head = |p| common::quantity(&call(p, "eth_blockNumber", json!([]))["result"]) as u64;
    let first = head(port) + 1;
    assert!(call(port, "evm_mine", json!([]))["result"].is_string());
    let block = call(
        port,
        "eth_getBlockByNumber",
        json!([format!("{first:#x}"), false]),
    );
    assert_eq!(
        block["result"]["transactions"],
        json!(hashes[..4]),
        "{block}"
    );
    assert_eq!(block["result"]["gasUsed"], "0x14820", "{block}");
    let pending = call(port, "eth_getTransactionReceipt", json!([hashes[4]]));
    assert!(pending["result"].is_null(), "{pending}");
    assert!(call(port, "evm_mine", json!([]))["result"].is_string());
    let receipt = call(port, "eth_getTransactionReceipt", json!([hashes[4]]));
    assert_eq!(
        common::quantity(&receipt["result"]["blockNumber"]) as u64,
        first + 1,
        "{receipt}"
    );
    assert_eq!(receipt["result"]["status"], "0x1", "{receipt}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn anvil_state_edits_take_effect() {
    let dir = common::temp_dir("rpc-edits");
    let port = free_port();
    let _node = start_node(&dir.join("data"), port, &[]);
    let who = "0x00000000000000000000000000000000000000aa";
    let v = call(port, "anvil_setBalance", json!([who, "0x1234"]));
    assert!(v.get("error").is_none(), "{v}");
    assert_eq!(
        call(port, "eth_getBalance", json!([who, "latest"]))["result"],
        "0x1234"
    );
    call(port, "hardhat_setNonce", json!([who, "0x7"]));
    assert_eq!(
        call(port, "eth_getTransactionCount", json!([who, "latest"]))["result"],
        "0x7"
    );
    // Code that returns slot 0: PUSH0 SLOAD PUSH0 MSTORE PUSH1 32 PUSH0 RETURN.
    call(port, "anvil_setCode", json!([who, "0x5f545f5260205ff3"]));
    assert_eq!(
        call(port, "eth_getCode", json!([who, "latest"]))["result"],
        "0x5f545f5260205ff3"
    );
    let slot_value = format!("0x{:064x}", 42);
    let v = call(port, "anvil_setStorageAt", json!([who, "0x0", slot_value]));
    assert_eq!(v["result"], json!(true), "{v}");
    let out = call(port, "eth_call", json!([{"to": who}, "latest"]));
    assert_eq!(out["result"], json!(slot_value), "{out}");
    // Earlier fields survive later edits.
    assert_eq!(
        call(port, "eth_getBalance", json!([who, "latest"]))["result"],
        "0x1234"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn block_profile_and_execution_stats() {
    let dir = common::temp_dir("rpc-profile");
    let port = free_port();
    let _node = start_node(&dir.join("data"), port, &["--no-mining"]);
    let dev1 = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";
    let dev2 = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC";
    let fresh = |i: u8| format!("0x{}", hex_byte_address(0xa0 + i));
    // Two independent transfers, and two from one sender (a nonce chain), all
    // to fresh recipients.
    for (i, from) in [DEV0, dev1, dev2, dev2].into_iter().enumerate() {
        let to = fresh(i as u8);
        let v = call(
            port,
            "eth_sendTransaction",
            json!([{"from": from, "to": to, "value": "0x1"}]),
        );
        assert!(v["result"].is_string(), "{v}");
    }
    assert!(call(port, "evm_mine", json!([]))["result"].is_string());
    let block = call(port, "eth_getBlockByNumber", json!(["latest", false]));
    let hashes = block["result"]["transactions"].as_array().unwrap().clone();
    assert_eq!(hashes.len(), 4, "{block}");
    let senders: Vec<String> = hashes
        .iter()
        .map(|h| {
            let tx = call(port, "eth_getTransactionByHash", json!([h]));
            tx["result"]["from"].as_str().unwrap().to_lowercase()
        })
        .collect();

    let v = call(port, "pel_blockProfile", json!(["latest"]));
    let p = &v["result"];
    assert_eq!(p["txs"], 4, "{v}");
    assert_eq!(p["gas"], 4 * 21_000);
    // Exactly one edge: dev2's second transaction on its first.
    assert_eq!(p["edges"], 1, "{v}");
    let deps: Vec<Vec<u64>> = serde_json::from_value(p["depends_on"].clone()).unwrap();
    let (j, d) = deps
        .iter()
        .enumerate()
        .find(|(_, d)| !d.is_empty())
        .unwrap();
    let i = d[0] as usize;
    assert_eq!(d.len(), 1);
    assert_eq!(senders[i], dev2.to_lowercase());
    assert_eq!(senders[j], dev2.to_lowercase());
    assert_eq!(p["hot"][0]["kind"], "nonce", "{v}");
    assert_eq!(
        p["hot"][0]["address"].as_str().unwrap().to_lowercase(),
        dev2.to_lowercase()
    );
    // Bounds: 4 equal transactions, critical path 2 of them.
    let unlimited = p["bounds"].as_array().unwrap().last().unwrap();
    assert_eq!(unlimited["threads"], Value::Null);
    assert_eq!(unlimited["by_gas"], 2.0);
    // By number and by hash give the same graph.
    let number = block["result"]["number"].clone();
    let hash = block["result"]["hash"].clone();
    for id in [number, hash] {
        let again = call(port, "pel_blockProfile", json!([id]));
        assert_eq!(again["result"]["depends_on"], p["depends_on"], "{again}");
    }

    // The genesis block and blocks beyond the head are errors, bad params -32602.
    assert_eq!(
        code(&call(port, "pel_blockProfile", json!(["earliest"]))),
        -32000
    );
    assert_eq!(
        code(&call(port, "pel_blockProfile", json!(["0x999"]))),
        -32000
    );
    assert_eq!(
        code(&call(port, "pel_blockProfile", json!(["nope"]))),
        -32602
    );

    let stats = call(port, "pel_executionStats", json!([]));
    let s = &stats["result"];
    assert!(s["blocks"].as_u64().unwrap() >= 1, "{stats}");
    assert!(s["txs"].as_u64().unwrap() >= 4, "{stats}");
    assert!(s["gas"].as_u64().unwrap() >= 4 * 21_000, "{stats}");
    assert!(s["execution_ms"].as_f64().unwrap() > 0.0, "{stats}");
    assert!(s["speedup"].as_f64().unwrap() > 0.0, "{stats}");
    assert!(s["threads"].as_u64().unwrap() >= 1, "{stats}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// An address of twenty `byte`s, as hex without the prefix.
fn hex_byte_address(byte: u8) -> String {
    format!("{byte:02x}").repeat(20)
}

#[test]
fn create_access_list_lists_what_the_call_touches() {
    let dir = common::temp_dir("rpc-access-list");
    let port = free_port();
    let _node = start_node(&dir.join("data"), port, &[]);
    let contract = "0x00000000000000000000000000000000000c0de1";
    let other = format!("0x{}", "ab".repeat(20));
    // SLOAD(5); BALANCE(other); STOP
    let code = format!("0x6005545073{}315000", "ab".repeat(20));
    let v = call(port, "anvil_setCode", json!([contract, code]));
    assert!(v.get("error").is_none(), "{v}");
    let v = call(
        port,
        "eth_createAccessList",
        json!([{"from": DEV0, "to": contract}, "latest"]),
    );
    let list = v["result"]["accessList"]
        .as_array()
        .unwrap_or_else(|| panic!("{v}"));
    let find = |a: &str| {
        list.iter()
            .find(|i| i["address"].as_str().unwrap().eq_ignore_ascii_case(a))
            .cloned()
    };
    let slot5 = format!("0x{:064x}", 5);
    assert_eq!(
        find(contract).unwrap()["storageKeys"],
        json!([slot5]),
        "{v}"
    );
    assert_eq!(find(&other).unwrap()["storageKeys"], json!([]), "{v}");
    assert!(find(DEV0).is_none(), "the sender is left out: {v}");
    assert_eq!(list.len(), 2, "{v}");
    assert!(v["result"]["gasUsed"].is_string());
    assert!(v["result"].get("error").is_none(), "{v}");
    // With the list applied the call needs what it says (estimates stop
    // within a small tolerance above the exact figure).
    let with_list = call(
        port,
        "eth_estimateGas",
        json!([{"from": DEV0, "to": contract, "accessList": list}]),
    );
    let hex =
        |v: &Value| u64::from_str_radix(v.as_str().unwrap().trim_start_matches("0x"), 16).unwrap();
    let (estimate, used) = (hex(&with_list["result"]), hex(&v["result"]["gasUsed"]));
    assert!(
        estimate >= used && estimate <= used + used / 50,
        "{estimate} vs {used}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn configured_limits_apply() {
    let dir = common::temp_dir("rpc-limits");
    let port = free_port();
    let _node = start_node(
        &dir.join("data"),
        port,
        &[
            "--max-batch",
            "2",
            "--call-timeout-ms",
            "1",
            "--max-mine-blocks",
            "3",
        ],
    );
    // A batch over the configured size is refused as a whole.
    let (_, text) = post(port, br#"[{"jsonrpc":"2.0","id":1,"method":"eth_chainId"},{"jsonrpc":"2.0","id":2,"method":"eth_chainId"},{"jsonrpc":"2.0","id":3,"method":"eth_chainId"}]"#);
    assert!(!text.contains("0x7a69"), "{text}");
    let (_, text) = post(port, br#"[{"jsonrpc":"2.0","id":1,"method":"eth_chainId"},{"jsonrpc":"2.0","id":2,"method":"eth_chainId"}]"#);
    assert_eq!(text.matches("0x7a69").count(), 2, "{text}");
    // Mining more blocks than allowed in one call: -32005, nothing mined.
    let head = call(port, "eth_blockNumber", json!([]))["result"].clone();
    assert_eq!(code(&call(port, "anvil_mine", json!(["0x4"]))), -32005);
    assert_eq!(
        code(&call(port, "evm_mine", json!([{"blocks": 4}]))),
        -32005
    );
    assert_eq!(call(port, "eth_blockNumber", json!([]))["result"], head);
    assert!(call(port, "anvil_mine", json!(["0x3"]))["result"].is_null());
    // A call that loops until its gas runs out outlives a 1 ms timeout.
    let looper = "0x00000000000000000000000000000000000100f1";
    call(port, "anvil_setCode", json!([looper, "0x5b600056"]));
    let v = call(port, "eth_call", json!([{"to": looper}, "latest"]));
    assert_eq!(code(&v), -32000, "{v}");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("timeout"),
        "{v}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
