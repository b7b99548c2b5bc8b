//! The official BlockchainTests through PEL's import path into RocksDB:
//! every ValidBlocks test reaches its expected head and post-state, every
//! InvalidBlocks block is rejected for the expected class of reason; with the
//! sequential path and with the Block-STM executor forced on every block.
#![allow(clippy::unwrap_used)]

mod common;

use pel_executor::{CostModel, ParallelExecutor};
use pel_node::blocktest;
use std::sync::Arc;

fn fixtures() -> std::path::PathBuf {
    common::testdata().join("ethereum-tests/BlockchainTests")
}

#[test]
fn all_blockchain_tests_pass_sequential_and_parallel() {
    let mut executors = vec![None];
    for threads in [2, 4] {
        let mut e = ParallelExecutor::new(threads).unwrap();
        e.cost_model = CostModel::always();
        executors.push(Some(Arc::new(e)));
    }
    for executor in executors {
        let label = executor.as_ref().map_or(1, |e| e.threads());
        let scratch = common::temp_dir(&format!("blocktest-{label}"));
        let outcome = blocktest::run(&[fixtures()], executor, &scratch).unwrap();
        let _ = std::fs::remove_dir_all(&scratch);
        for f in &outcome.failures {
            eprintln!("FAIL {}: {}", f.id, f.reason);
        }
        assert_eq!(outcome.failed, 0, "{label} threads: failures above");
        assert_eq!(outcome.passed, 573, "{label} threads: every test must run");
    }
}

#[test]
fn tampered_and_malformed_fixtures_fail() {
    let dir = common::temp_dir("blocktest-bad");
    // A valid test whose expected head is wrong must fail.
    let src = fixtures().join("ValidBlocks/bcExample");
    let file = std::fs::read_dir(&src)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let mut json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    for (_, test) in json.as_object_mut().unwrap() {
        test["lastblockhash"] = serde_json::json!(format!("0x{}", "11".repeat(32)));
    }
    let tampered = dir.join("tampered.json");
    std::fs::write(&tampered, serde_json::to_string(&json).unwrap()).unwrap();
    let outcome = blocktest::run(&[tampered], None, &dir.join("scratch")).unwrap();
    assert_eq!(outcome.passed, 0);
    assert!(outcome.failed > 0);
    assert!(
        outcome.failures[0].reason.contains("head is"),
        "{}",
        outcome.failures[0].reason
    );
    // A block that must be rejected but is valid fails the test.
    let mut json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    for (_, test) in json.as_object_mut().unwrap() {
        test["blocks"][0]["expectException"] = serde_json::json!("BlockException.INVALID_GASLIMIT");
    }
    let wrongly_valid = dir.join("wrongly_valid.json");
    std::fs::write(&wrongly_valid, serde_json::to_string(&json).unwrap()).unwrap();
    let outcome = blocktest::run(&[wrongly_valid], None, &dir.join("scratch")).unwrap();
    assert_eq!(outcome.passed, 0);
    assert!(outcome.failures[0].reason.contains("must be rejected"));
    // Garbage JSON is one failure, not a panic.
    let garbage = dir.join("garbage.json");
    std::fs::write(&garbage, "{ nope").unwrap();
    let outcome = blocktest::run(&[garbage], None, &dir.join("scratch")).unwrap();
    assert_eq!(outcome.failed, 1);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn cli_prints_the_closing_line() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pel"))
        .args(["blocktest", "--threads", "2"])
        .arg(fixtures().join("ValidBlocks/bcExample"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.trim_end().ends_with("4 passed, 0 failed") || stdout.contains(" passed, 0 failed"),
        "{stdout}"
    );
}
