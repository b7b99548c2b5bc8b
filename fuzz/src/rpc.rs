//! JSON-RPC requests end to end through the server's method router, against
//! a real node (a RocksDB data dir in the temp folder, manual mining).
//!
//! An input is either a raw request text, or (first byte `0x01`) a method
//! picked from the known ones by the second byte with the rest as its
//! params, which reaches deeper than random method names. Oracle: every
//! response is a JSON-RPC 2.0 object with a `result` or an `error` whose code
//! is one of the standard or documented ones.

use jsonrpsee::RpcModule;
use pel_node::devnet::run::{open_node, NodeOptions};
use pel_rpc::{Ctx, Limits};
use serde_json::Value;
use std::sync::OnceLock;

/// Methods the structured inputs call.
pub const METHODS: &[&str] = &[
    "eth_chainId",
    "eth_blockNumber",
    "eth_gasPrice",
    "eth_maxPriorityFeePerGas",
    "eth_feeHistory",
    "eth_getBalance",
    "eth_getTransactionCount",
    "eth_getCode",
    "eth_getStorageAt",
    "eth_call",
    "eth_estimateGas",
    "eth_createAccessList",
    "eth_sendRawTransaction",
    "eth_sendTransaction",
    "eth_sign",
    "eth_signTypedData_v4",
    "eth_accounts",
    "eth_getTransactionByHash",
    "eth_getTransactionReceipt",
    "eth_getBlockByNumber",
    "eth_getBlockByHash",
    "eth_getBlockReceipts",
    "eth_getBlockTransactionCountByNumber",
    "eth_getTransactionByBlockNumberAndIndex",
    "eth_getLogs",
    "eth_newFilter",
    "eth_newBlockFilter",
    "eth_getFilterChanges",
    "eth_getFilterLogs",
    "eth_uninstallFilter",
    "eth_subscribe",
    "eth_syncing",
    "net_version",
    "web3_clientVersion",
    "web3_sha3",
    "evm_mine",
    "evm_increaseTime",
    "evm_setNextBlockTimestamp",
    "evm_snapshot",
    "evm_revert",
    "anvil_mine",
    "anvil_setBalance",
    "anvil_setNonce",
    "anvil_setCode",
    "anvil_setStorageAt",
    "txpool_status",
    "txpool_content",
    "pel_blockProfile",
    "pel_executionStats",
];

/// Error codes a response may carry.
const CODES: &[i64] = &[
    -32700, -32600, -32601, -32602, -32603, -32000, -32001, -32003, -32005, 3,
];

/// Name of a harness's data dir in the temporary dir, before its process id.
const DATADIR_PREFIX: &str = "pel-fuzz-rpc-";

/// Removes the data dirs of harnesses whose process has exited. The harness
/// lives as long as its process (a static is never dropped), so each run
/// clears what earlier runs left behind.
fn remove_stale_datadirs() {
    // Whether a process is alive is read from /proc: elsewhere, keep all.
    if !std::path::Path::new("/proc/self").exists() {
        return;
    }
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(DATADIR_PREFIX))
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        let alive = std::path::Path::new("/proc").join(pid.to_string()).exists();
        if pid != std::process::id() && !alive {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

struct Harness {
    runtime: tokio::runtime::Runtime,
    module: RpcModule<Ctx>,
}

fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(|| {
        remove_stale_datadirs();
        let datadir = std::env::temp_dir().join(format!("{DATADIR_PREFIX}{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&datadir);
        let options = NodeOptions {
            datadir,
            accounts: 3,
            threads: Some(1),
            no_mining: true,
            ..NodeOptions::default()
        };
        let opened = open_node(&options).unwrap_or_else(|e| panic!("fuzz node: {e}"));
        let limits = Limits {
            max_mine_blocks: 8,
            ..Limits::default()
        };
        let module =
            pel_rpc::module(opened.node, limits).unwrap_or_else(|e| panic!("fuzz module: {e}"));
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap_or_else(|e| panic!("fuzz runtime: {e}"));
        Harness { runtime, module }
    })
}

/// The request text an input stands for.
pub fn request_text(data: &[u8]) -> Option<String> {
    match data {
        [1, method, params @ ..] => {
            let method = METHODS[*method as usize % METHODS.len()];
            let params = std::str::from_utf8(params).ok()?;
            let params: Value =
                serde_json::from_str(params).unwrap_or(Value::String(params.into()));
            Some(
                serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
                    .to_string(),
            )
        }
        _ => std::str::from_utf8(data).ok().map(str::to_owned),
    }
}

/// Sends the input through the router and checks the response's shape.
pub fn run(data: &[u8]) {
    let Some(text) = request_text(data) else {
        return;
    };
    let h = harness();
    let response = h
        .runtime
        .block_on(async { h.module.raw_json_request(&text, 16).await });
    let Ok((response, _subscription)) = response else {
        // The router refused to parse the request at all.
        return;
    };
    let value: Value = serde_json::from_str(response.get())
        .unwrap_or_else(|e| panic!("response is not JSON ({e}): {}", response.get()));
    check_response(&value);
}

fn check_response(value: &Value) {
    match value {
        Value::Array(items) => items.iter().for_each(check_response),
        Value::Object(o) => {
            assert_eq!(o.get("jsonrpc"), Some(&Value::from("2.0")), "{value}");
            match (o.get("result"), o.get("error")) {
                (Some(_), None) => {}
                (None, Some(error)) => {
                    let code = error["code"].as_i64().unwrap_or_default();
                    assert!(CODES.contains(&code), "unexpected error code: {value}");
                    assert!(error["message"].is_string(), "{value}");
                }
                _ => panic!("neither result nor error: {value}"),
            }
        }
        other => panic!("response is not an object: {other}"),
    }
}
