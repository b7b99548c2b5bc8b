//! Hostile clients at scale against a running `pel node`: thousands of
//! connections opened and dropped (some mid-request), slow clients that never
//! finish their request, WebSocket subscriptions left open by clients that
//! never read while blocks are mined, and a stream of random and mangled
//! requests. Every answered request must be well-formed JSON-RPC with a
//! standard code, normal clients must keep being served meanwhile, the node's
//! memory must stay bounded, and afterwards a valid transaction still goes
//! through. (`rpc.rs` checks each malformed-input class for its exact code.)
#![allow(clippy::unwrap_used)]

mod common;

use common::{free_port, rpc, start_node, try_rpc};
use serde_json::{json, Value};
use std::{
    io::{Read, Write},
    net::TcpStream,
    time::{Duration, Instant},
};

/// Opens a WebSocket on `port` and sends one text frame; returns the socket,
/// which the caller then never reads.
fn websocket_subscribe(port: u16, message: &str) -> Option<TcpStream> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    let handshake = format!(
        "GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    s.write_all(handshake.as_bytes()).ok()?;
    let mut buf = [0u8; 1024];
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let n = s.read(&mut buf).ok()?;
    if !String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 101") {
        return None;
    }
    let payload = message.as_bytes();
    assert!(payload.len() < 126);
    let mask = [0x12u8, 0x34, 0x56, 0x78];
    let mut frame = vec![0x81, 0x80 | payload.len() as u8];
    frame.extend_from_slice(&mask);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    s.write_all(&frame).ok()?;
    Some(s)
}

/// A request body from a small deterministic generator: valid, mangled,
/// truncated, wrongly typed or random.
fn mangled(k: u64) -> Vec<u8> {
    let methods = [
        "eth_getBalance",
        "eth_call",
        "eth_getBlockByNumber",
        "eth_getLogs",
        "eth_sendRawTransaction",
        "eth_estimateGas",
        "evm_mine",
        "eth_feeHistory",
        "pel_blockProfile",
        "eth_nope",
    ];
    let params = [
        json!([]),
        json!(["latest"]),
        json!([{"to": "0x00000000000000000000000000000000000000aa", "data": "0x00"}]),
        json!(["0x", "0xzz"]),
        json!([format!("0x{}", "f".repeat(80))]),
        json!([{"fromBlock": "earliest", "toBlock": "latest"}]),
        json!({"a": [1, 2, {"b": null}]}),
        json!([true, false, null, -1, 1e308]),
        json!(["pending", "0x7fffffffffffffff"]),
    ];
    let m = methods[(k % methods.len() as u64) as usize];
    let p = &params[(k / 7 % params.len() as u64) as usize];
    let text = json!({"jsonrpc": "2.0", "id": k, "method": m, "params": p}).to_string();
    let mut bytes = text.into_bytes();
    match k % 5 {
        0 => bytes.truncate((k as usize * 31) % bytes.len().max(1)),
        1 => {
            let i = (k as usize * 17) % bytes.len();
            bytes[i] = (k % 251) as u8;
        }
        _ => {}
    }
    bytes
}

/// POSTs raw bytes; the answer's body, if any.
fn post_raw(port: u16, body: &[u8]) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
    let head = format!(
        "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).ok()?;
    s.write_all(body).ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    out.split("\r\n\r\n").nth(1).map(str::to_owned)
}

fn check_answer(text: &str) {
    let v: Value = serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"));
    let items = match &v {
        Value::Array(items) => items.clone(),
        _ => vec![v.clone()],
    };
    for item in items {
        if let Some(code) = item["error"]["code"].as_i64() {
            assert!(
                [-32700, -32600, -32601, -32602, -32603, -32000, -32001, -32003, -32005, 3]
                    .contains(&code),
                "{item}"
            );
        } else {
            assert!(item.get("result").is_some(), "{item}");
        }
    }
}

#[test]
fn hostile_clients_at_scale_leave_the_node_serving_with_bounded_memory() {
    let dir = common::temp_dir("hostile");
    let port = free_port();
    let node = start_node(&dir.join("data"), port, &["--block-time", "1"]);
    let rss_start = node.rss_kib().unwrap_or(0);
    let started = Instant::now();

    // Subscriptions left open by clients that never read, while blocks are mined.
    let subscribers: Vec<TcpStream> = (0..200)
        .filter_map(|i| {
            let topic = if i % 2 == 0 {
                "newHeads"
            } else {
                "newPendingTransactions"
            };
            websocket_subscribe(
                port,
                &format!(
                    r#"{{"jsonrpc":"2.0","id":1,"method":"eth_subscribe","params":["{topic}"]}}"#
                ),
            )
        })
        .collect();
    assert!(
        subscribers.len() >= 150,
        "only {} websockets opened",
        subscribers.len()
    );

    // Slow clients: headers announced, body never finished.
    let slow: Vec<TcpStream> = (0..50)
        .filter_map(|_| {
            let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
            s.write_all(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"jsonrpc\":")
                .ok()?;
            Some(s)
        })
        .collect();

    // Thousands of connections opened and dropped, some mid-request, from 8 threads.
    let churn: Vec<_> = (0..8)
        .map(|t| {
            std::thread::spawn(move || {
                let mut opened = 0;
                for i in 0..400 {
                    if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
                        opened += 1;
                        if (i + t) % 3 == 0 {
                            let _ = s
                                .write_all(b"POST / HTTP/1.1\r\nContent-Length: 50\r\n\r\n{\"id\"");
                        }
                    }
                }
                opened
            })
        })
        .collect();

    // Meanwhile, mangled requests from 4 threads, and a normal client.
    let requests: Vec<_> = (0..4u64)
        .map(|t| {
            std::thread::spawn(move || {
                let mut answered = 0;
                for k in (t * 1000)..(t * 1000 + 500) {
                    let request = mangled(k);
                    if let Some(text) = post_raw(port, &request) {
                        if text.trim() == "null" || text.is_empty() {
                            // Only a notification (no id) goes unanswered.
                            let r: Value = serde_json::from_slice(&request).unwrap_or_else(|_| {
                                panic!("{:?} -> {text:?}", String::from_utf8_lossy(&request))
                            });
                            assert!(r.get("id").is_none(), "{r} -> {text:?}");
                        } else {
                            check_answer(&text);
                        }
                        answered += 1;
                    }
                }
                answered
            })
        })
        .collect();
    let mut normal_worst = Duration::ZERO;
    for _ in 0..20 {
        let t = Instant::now();
        let v = rpc(port, "eth_blockNumber", json!([]));
        assert!(v["result"].is_string(), "{v}");
        normal_worst = normal_worst.max(t.elapsed());
        std::thread::sleep(Duration::from_millis(50));
    }
    let opened: usize = churn.into_iter().map(|h| h.join().unwrap()).sum();
    let answered: usize = requests.into_iter().map(|h| h.join().unwrap()).sum();
    assert!(opened >= 3000, "{opened}");
    assert_eq!(answered, 2000, "every mangled request gets an answer");
    assert!(
        normal_worst < Duration::from_secs(5),
        "a normal call took {normal_worst:?}"
    );

    // Blocks keep coming with the silent subscribers attached.
    let before = rpc(port, "eth_blockNumber", json!([]))["result"].clone();
    std::thread::sleep(Duration::from_millis(2500));
    let after = rpc(port, "eth_blockNumber", json!([]))["result"].clone();
    assert_ne!(before, after, "mining stalled");

    // Still serving: a valid transfer goes through (interval mining).
    let accounts = rpc(port, "eth_accounts", json!([]))["result"].clone();
    let sent = rpc(
        port,
        "eth_sendTransaction",
        json!([{"from": accounts[0], "to": accounts[1], "value": "0x1"}]),
    );
    let hash = sent["result"].clone();
    assert!(hash.is_string(), "{sent}");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = try_rpc(port, "eth_getTransactionReceipt", json!([hash])).unwrap();
        if r["result"].is_object() {
            assert_eq!(r["result"]["status"], "0x1");
            break;
        }
        assert!(Instant::now() < deadline, "transfer never mined");
        std::thread::sleep(Duration::from_millis(100));
    }
    let rss_end = node.rss_kib().unwrap_or(0);
    eprintln!(
        "hostile: {} silent subscribers, {} slow clients, {opened} connections churned, \
         2000 mangled requests answered, worst normal call {normal_worst:?}, RSS {rss_start} -> {rss_end} KiB in {:?}",
        subscribers.len(),
        slow.len(),
        started.elapsed()
    );
    assert!(
        rss_end < rss_start + 256 * 1024,
        "memory grew from {rss_start} to {rss_end} KiB"
    );
    drop(subscribers);
    drop(slow);
    let _ = std::fs::remove_dir_all(&dir);
}
