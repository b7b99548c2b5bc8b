//! Replays the committed fuzz corpora and every regression input (a finding
//! of the fuzzer, kept after its fix) through the targets, in the normal test
//! suite. A panic here is a regression.

#![allow(clippy::unwrap_used)] // tests unwrap: a panic is the failure report

use alloy_primitives::U256;
use pel_executor::{execute_block, sequential::ExecOptions, ChainConfig, Fork};
use pel_state::StateReader;
use std::path::{Path, PathBuf};

fn inputs(kind: &str, target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(kind)
        .join(target);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

#[test]
fn every_corpus_and_regression_input_passes_its_target() {
    for (name, target) in pel_fuzz::TARGETS {
        let corpus = inputs("corpus", name);
        assert!(!corpus.is_empty(), "no seed corpus for {name}");
        for path in corpus.iter().chain(&inputs("regressions", name)) {
            let data = std::fs::read(path).unwrap();
            target(&data);
        }
    }
}

#[test]
fn the_differential_blocks_mostly_execute() {
    // The oracle is only worth something if most blocks are valid.
    let state = pel_fuzz::differential::pre_state();
    let chain = ChainConfig::single_fork(1, Fork::Cancun);
    let corpus = inputs("corpus", "differential");
    let valid = corpus
        .iter()
        .filter(|p| {
            let block = pel_fuzz::differential::block(&std::fs::read(p).unwrap());
            let result = execute_block(&state, &block, &chain, ExecOptions::default());
            if let Err(e) = &result {
                eprintln!("{}: {e}", p.display());
            }
            !block.transactions.is_empty() && result.is_ok()
        })
        .count();
    assert!(
        valid * 2 >= corpus.len(),
        "{valid} of {} seeds are valid blocks",
        corpus.len()
    );
}

#[test]
fn the_kitchen_sink_contract_does_what_its_docs_say() {
    // One call on C: s[1] = s[0] + 1 (s[0] starts at 1), s[17] = BALANCE(eoa 2).
    let mut data = vec![0u8];
    data.extend_from_slice(&[0, 1, 2, 0, 0, 1, 0, 2]);
    let block = pel_fuzz::differential::block(&data);
    let state = pel_fuzz::differential::pre_state();
    let chain = ChainConfig::single_fork(1, Fork::Cancun);
    let out = execute_block(&state, &block, &chain, ExecOptions::default()).unwrap();
    assert!(out.receipts[0].success);
    let c = alloy_primitives::Address::new([0xc0; 20]);
    let diff = &out.diff.accounts[&c];
    let slot = |s: u64| diff.storage.get(&U256::from(s)).copied();
    assert_eq!(slot(1), Some(U256::from(2)));
    let balance = state
        .account(&alloy_primitives::Address::with_last_byte(0x12))
        .unwrap()
        .unwrap()
        .balance;
    assert_eq!(slot(17), Some(balance));
    // With the revert flag set, nothing changes but the sender's nonce and fee.
    let mut data = vec![0u8];
    data.extend_from_slice(&[0, 1, 2, 0, 0, 1, 1, 2]);
    let block = pel_fuzz::differential::block(&data);
    let out = execute_block(&state, &block, &chain, ExecOptions::default()).unwrap();
    assert!(!out.receipts[0].success);
    assert!(!out.diff.accounts.contains_key(&c));
}
