//! `pel replay` on the captured mainnet blocks: every block must execute exactly
//! as mainnet did, and bad input must give clear errors, never panics.

#![allow(clippy::unwrap_used)] // tests unwrap: a panic is the failure report

mod common;

use pel_executor::{ChainConfig, SpecId};
use pel_node::replay::{replay, ReplayOptions};
use std::process::Command;

fn options() -> ReplayOptions {
    ReplayOptions::mainnet()
}

#[test]
fn every_captured_mainnet_block_matches_its_header() {
    let report = replay(&common::testdata().join("mainnet"), &options(), |_| {}).unwrap();
    assert_eq!(report.summary.blocks, 46);
    let chain = ChainConfig::mainnet();
    for b in &report.blocks {
        assert!(
            b.valid,
            "block {} invalid: {:?} {:?}",
            b.number, b.checks, b.errors
        );
        assert_eq!(b.checks.gas_used, Some(true), "block {}", b.number);
        assert_eq!(b.checks.logs_bloom, Some(true), "block {}", b.number);
        assert_eq!(b.checks.transactions_root, Some(true), "block {}", b.number);
        assert_eq!(b.checks.block_hash, Some(true), "block {}", b.number);
        // receiptsRoot is checked from Byzantium on, and only there.
        let byzantium =
            chain.fork_at(b.number, u64::MAX).spec() >= SpecId::BYZANTIUM && b.number >= 4_370_000;
        if byzantium {
            assert_eq!(b.checks.receipts_root, Some(true), "block {}", b.number);
        } else {
            assert_eq!(b.checks.receipts_root, None, "block {}", b.number);
        }
    }
    assert_eq!(report.summary.valid, 46);
    assert_eq!(report.summary.txs, 10_337);
}

#[test]
fn any_folder_in_the_layout_replays() {
    let dir = common::copy_blocks("subset", &[116_525, 4_864_590, 19_426_587, 19_910_734]);
    let report = replay(&dir, &options(), |_| {}).unwrap();
    assert_eq!(report.summary.blocks, 4);
    assert_eq!(report.summary.valid, 4, "{:?}", report.blocks);
}

#[test]
fn missing_folder_is_a_clear_error() {
    let err = replay(&common::temp_dir("empty").join("nope"), &options(), |_| {}).unwrap_err();
    assert!(
        err.to_string().contains("cannot list block folders"),
        "{err}"
    );
}

#[test]
fn malformed_and_missing_files_name_the_block() {
    let dir = common::copy_blocks("bad-files", &[1_150_000, 2_675_000]);
    std::fs::write(dir.join("blocks/1150000/block.json"), "{\"number\": ").unwrap();
    std::fs::remove_file(dir.join("blocks/2675000/pre_state.json")).unwrap();
    let report = replay(&dir, &options(), |_| {}).unwrap();
    assert_eq!(report.summary.valid, 0);
    let errors: Vec<String> = report
        .blocks
        .iter()
        .flat_map(|b| b.errors.clone())
        .collect();
    assert!(
        errors[0].contains("block 1150000") && errors[0].contains("malformed"),
        "{errors:?}"
    );
    assert!(
        errors[1].contains("block 2675000") && errors[1].contains("pre_state.json"),
        "{errors:?}"
    );
}

#[test]
fn a_transaction_not_signed_by_from_names_block_and_transaction() {
    let dir = common::copy_blocks("bad-from", &[1_150_000]);
    let path = dir.join("blocks/1150000/block.json");
    let mut block: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    block["transactions"][2]["from"] = "0x00000000000000000000000000000000000000aa".into();
    std::fs::write(&path, serde_json::to_vec(&block).unwrap()).unwrap();
    let report = replay(&dir, &options(), |_| {}).unwrap();
    let b = &report.blocks[0];
    assert!(!b.valid);
    let e = &b.errors[0];
    assert!(
        e.contains("block 1150000") && e.contains("transaction 2"),
        "{e}"
    );
    assert!(e.contains("not to the claimed sender"), "{e}");
}

#[test]
fn a_wrong_header_field_fails_its_check() {
    let dir = common::copy_blocks("bad-header", &[4_864_590]);
    let path = dir.join("blocks/4864590/block.json");
    let mut block: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    block["gasUsed"] = "0x1".into();
    std::fs::write(&path, serde_json::to_vec(&block).unwrap()).unwrap();
    let report = replay(&dir, &options(), |_| {}).unwrap();
    let b = &report.blocks[0];
    assert!(!b.valid);
    assert_eq!(b.checks.gas_used, Some(false));
    // The header no longer hashes to the block hash either.
    assert_eq!(b.checks.block_hash, Some(false));
    assert_eq!(b.checks.receipts_root, Some(true));
}

#[test]
fn cli_json_shape_and_exit_codes() {
    let dir = common::copy_blocks("cli", &[46_147, 19_426_587]);
    let out = Command::new(env!("CARGO_BIN_EXE_pel"))
        .args(["replay", dir.to_str().unwrap(), "--sequential", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let blocks = json["blocks"].as_array().unwrap();
    assert_eq!(blocks.len(), 2);
    for b in blocks {
        for key in [
            "number",
            "txs",
            "gas_used",
            "valid",
            "checks",
            "sequential_ms",
        ] {
            assert!(!b[key].is_null(), "missing {key} in {b}");
        }
        assert!(b["parallel_ms"].is_null() && b["speedup"].is_null());
        assert_eq!(b["valid"], true);
    }
    assert_eq!(blocks[0]["number"], 46_147);
    assert_eq!(
        blocks[0]["checks"]["receipts_root"],
        serde_json::Value::Null
    );
    assert_eq!(blocks[1]["checks"]["receipts_root"], true);
    let summary = &json["summary"];
    assert_eq!(summary["blocks"], 2);
    assert_eq!(summary["valid"], 2);
    assert!(summary["sequential_ms"].as_f64().unwrap() > 0.0);
    assert!(summary["parallel_ms"].is_null() && summary["speedup"].is_null());

    // A failing block makes the exit code non-zero; the table names it.
    std::fs::write(dir.join("blocks/46147/bytecodes.json"), "[").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_pel"))
        .args(["replay", dir.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("INVALID") && text.contains("block 46147"),
        "{text}"
    );
}

#[test]
fn shards_cover_every_block_once_and_merge_back() {
    use pel_node::replay::{replay_shard, Report, Shard};
    let dir = common::copy_blocks(
        "shards",
        &[46_147, 1_150_000, 4_864_590, 19_426_587, 19_910_734],
    );
    let shards: Vec<Report> = (0..2)
        .map(|index| replay_shard(&dir, &options(), Shard { index, count: 2 }, |_| {}).unwrap())
        .collect();
    assert_eq!(shards[0].summary.blocks, 3);
    assert_eq!(shards[1].summary.blocks, 2);
    // Through JSON, as separate machines would hand them over.
    let reports: Vec<Report> = shards
        .iter()
        .map(|r| serde_json::from_str(&serde_json::to_string(r).unwrap()).unwrap())
        .collect();
    let merged = Report::merge(reports);
    let whole = replay(&dir, &options(), |_| {}).unwrap();
    assert_eq!(merged.summary.blocks, whole.summary.blocks);
    assert_eq!(merged.summary.valid, 5);
    assert_eq!(merged.summary.gas_used, whole.summary.gas_used);
    let numbers: Vec<u64> = merged.blocks.iter().map(|b| b.number).collect();
    assert_eq!(
        numbers,
        [46_147, 1_150_000, 4_864_590, 19_426_587, 19_910_734]
    );
    assert!("3/3".parse::<Shard>().is_err() && "1/0".parse::<Shard>().is_err());
    assert_eq!("1/4".parse::<Shard>(), Ok(Shard { index: 1, count: 4 }));
}
