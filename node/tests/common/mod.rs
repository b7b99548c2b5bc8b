//! Helpers shared by the integration tests.
#![allow(dead_code, clippy::unwrap_used)]

use pel_state::StateReader as _;
use serde_json::{json, Value};
use std::{
    io::{BufRead, BufReader, Read, Write},
    net::{TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

/// The repository's testdata folder.
pub fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata")
}

/// A temporary folder, removed with everything in it when dropped (also
/// when the test fails and unwinds).
#[derive(Debug)]
pub struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl std::ops::Deref for TempDir {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<Path> for TempDir {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<std::ffi::OsStr> for TempDir {
    fn as_ref(&self) -> &std::ffi::OsStr {
        self.0.as_os_str()
    }
}

/// A fresh, empty temporary folder unique to this test, removed when the
/// returned guard drops.
pub fn temp_dir(tag: &str) -> TempDir {
    let dir = std::env::temp_dir().join(format!("pel-test-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    TempDir(dir)
}

/// Copies captured blocks `numbers` (and block_hashes.json) into a new folder
/// of the same layout.
pub fn copy_blocks(tag: &str, numbers: &[u64]) -> TempDir {
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

/// Every block up to the head is whole (header, body, receipts, indices), nothing
/// lies beyond it, and the head's root equals the plain-state recomputation.
pub fn check_whole(store: &pel_state::RocksStore) {
    let head = store.head().unwrap();
    assert_eq!(store.plain_state_root().unwrap(), head.state_root);
    for n in 0..=head.number {
        let block = pel_node::chain::stored_block(store, n).unwrap();
        let hash = block.header.hash_slow();
        assert_eq!(store.block_hash(n).unwrap(), Some(hash));
        assert_eq!(store.block_number(&hash).unwrap(), Some(n));
        let receipts =
            pel_node::chain::decode_receipts(&store.receipts(n).unwrap().unwrap()).unwrap();
        assert_eq!(receipts.len(), block.body.transactions.len());
        for (i, tx) in block.body.transactions.iter().enumerate() {
            assert_eq!(
                store.transaction_location(tx.tx_hash()).unwrap(),
                Some((n, i as u32))
            );
        }
    }
    assert!(store.header(head.number + 1).unwrap().is_none());
    assert!(store.block_hash(head.number + 1).unwrap().is_none());
}

impl NodeProcess {
    /// The node's process id.
    pub fn pid(&self) -> u32 {
        self.0.id()
    }

    /// SIGKILLs the node and reaps it.
    pub fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }

    /// Resident memory of the node in KiB (Linux), if readable.
    pub fn rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
    }
}

/// One JSON-RPC call over HTTP; `None` when the connection fails or the
/// answer is not JSON (the node died mid-request).
pub fn try_rpc(port: u16, method: &str, params: Value) -> Option<Value> {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).to_string();
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(60))).ok()?;
    let head = format!(
        "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).ok()?;
    s.write_all(body.as_bytes()).ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    serde_json::from_str(out.split("\r\n\r\n").nth(1)?).ok()
}

/// A batch of JSON-RPC calls in one request; the answers in call order.
pub fn rpc_batch(port: u16, calls: &[(&str, Value)]) -> Vec<Value> {
    let batch: Vec<Value> = calls
        .iter()
        .enumerate()
        .map(|(i, (method, params))| json!({"jsonrpc": "2.0", "id": i, "method": method, "params": params}))
        .collect();
    let body = Value::Array(batch).to_string();
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
    let head = format!(
        "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body.as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let text = out.split("\r\n\r\n").nth(1).unwrap_or_default();
    let mut answers: Vec<Value> =
        serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"));
    answers.sort_by_key(|a| a["id"].as_u64().unwrap_or(u64::MAX));
    assert_eq!(answers.len(), calls.len(), "{text}");
    answers
}

/// One JSON-RPC call that must get an answer.
pub fn rpc(port: u16, method: &str, params: Value) -> Value {
    try_rpc(port, method, params.clone())
        .unwrap_or_else(|| panic!("no answer to {method} {params}"))
}

/// The default mnemonic's dev accounts, in order.
pub const DEV_ACCOUNTS: [&str; 10] = [
    "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266",
    "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
    "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC",
    "0x90F79bf6EB2c8f870ec7BB17498f91e33db1d8cD",
    "0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65",
    "0x9965507D1a55bcC2695C58ba16FB37d819B0A4dc",
    "0x976EA74026E726554dB657fA54763abd0C3a0aa9",
    "0x14dC79964da2C08b23698B3D3cc7Ca32193d9955",
    "0x23618e81E3f5cdF7f54C3d65f7FBc0aBaE36dC16",
    "0xa0Ee7A142d267C1f36714E4a8F75612F20a79720",
];

/// A hex quantity as u128.
pub fn quantity(v: &Value) -> u128 {
    let s = v.as_str().unwrap_or_else(|| panic!("not a quantity: {v}"));
    u128::from_str_radix(s.trim_start_matches("0x"), 16).unwrap()
}
