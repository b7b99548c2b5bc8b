//! The official BlockchainTests, run through the same import path as `pel import`:
//! genesis from `pre` and `genesisRLP`, each `blocks[].rlp` imported into a fresh
//! RocksDB data dir; blocks marked `expectException` must be rejected for a
//! reason of the expected class (RLP, block or transaction rule) and leave the
//! chain at its parent; at the end the head must be `lastblockhash` and the state
//! must equal `postState` (or hash to `postStateHash`).

use crate::{
    chain::{Chain, RejectClass},
    genesis::{alloc_account, alloc_root, GenesisSpec},
    statetest::{collect_files, fixture_pool, Outcome},
    validate::decode_block,
};
use alloy_primitives::{Address, Bytes, B256, U256};
use pel_executor::{ChainConfig, Fork, ParallelExecutor};
use pel_state::{StateDiff, StateError, StateReader, StoreOptions};
use rayon::prelude::*;
use serde::Deserialize;
use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    sync::Arc,
};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Fixture {
    network: String,
    #[serde(rename = "genesisRLP")]
    genesis_rlp: Bytes,
    pre: BTreeMap<Address, Account>,
    blocks: Vec<FixtureBlock>,
    #[serde(default)]
    post_state: Option<BTreeMap<Address, Account>>,
    #[serde(default)]
    post_state_hash: Option<B256>,
    lastblockhash: B256,
}

#[derive(Debug, Deserialize)]
struct Account {
    balance: U256,
    nonce: U256,
    code: Bytes,
    storage: BTreeMap<U256, U256>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct FixtureBlock {
    rlp: String,
    #[serde(default)]
    expect_exception: Option<String>,
}

/// The classes an `expectException` string accepts (alternatives split by `|`).
pub fn expected_classes(expect: &str) -> Vec<RejectClass> {
    expect
        .split('|')
        .filter_map(|e| {
            let e = e.trim();
            if e.starts_with("BlockException.RLP_") {
                Some(RejectClass::Rlp)
            } else if e.starts_with("BlockException.") {
                Some(RejectClass::Block)
            } else if e.starts_with("TransactionException.") {
                Some(RejectClass::Transaction)
            } else {
                None
            }
        })
        .collect()
}

fn to_alloc(accounts: &BTreeMap<Address, Account>) -> Result<StateDiff, String> {
    let mut alloc = StateDiff::default();
    for (address, a) in accounts {
        let nonce = u64::try_from(a.nonce).map_err(|_| format!("nonce of {address} overflows"))?;
        alloc_account(
            &mut alloc,
            *address,
            a.balance,
            nonce,
            Some(a.code.clone()),
            a.storage.iter().map(|(k, v)| (*k, *v)),
        );
    }
    Ok(alloc)
}

/// Runs every test of every fixture file under `paths` with `executor` (the
/// sequential path when `None`); each test gets a data dir under `scratch`.
pub fn run(
    paths: &[PathBuf],
    executor: Option<Arc<ParallelExecutor>>,
    scratch: &Path,
) -> Result<Outcome, StateError> {
    let files = collect_files(paths)?;
    let pool = fixture_pool("blocktest")?;
    Ok(pool.install(|| {
        files
            .par_iter()
            .enumerate()
            .map(|(i, f)| run_file(f, executor.clone(), &scratch.join(i.to_string())))
            .reduce(Outcome::default, Outcome::merge)
    }))
}

/// Parses a fixture file's text and decodes everything a test would import,
/// without a data dir: genesis block, pre and post allocations, every block's
/// RLP. Returns the number of blocks (the fuzz target's entry point).
pub fn decode_fixture_bytes(text: &[u8]) -> Result<usize, String> {
    let fixtures: BTreeMap<String, Fixture> =
        serde_json::from_slice(text).map_err(|e| e.to_string())?;
    let mut blocks = 0;
    for fixture in fixtures.values() {
        let _ = Fork::from_name(&fixture.network);
        decode_block(&fixture.genesis_rlp).map_err(|e| format!("bad genesisRLP: {e}"))?;
        let _ = alloc_root(&to_alloc(&fixture.pre)?);
        if let Some(post) = &fixture.post_state {
            to_alloc(post)?;
        }
        for block in &fixture.blocks {
            blocks += 1;
            if let Ok(bytes) = alloy_primitives::hex::decode(block.rlp.trim_start_matches("0x")) {
                let _ = decode_block(&bytes);
            }
            if let Some(expect) = &block.expect_exception {
                let _ = expected_classes(expect);
            }
        }
    }
    Ok(blocks)
}

/// Runs the tests of one file; a malformed file counts as one failure.
pub fn run_file(path: &Path, executor: Option<Arc<ParallelExecutor>>, scratch: &Path) -> Outcome {
    let mut outcome = Outcome::default();
    let fixtures: BTreeMap<String, Fixture> = match pel_state::mainnet::read_json(path) {
        Ok(f) => f,
        Err(e) => {
            outcome.fail(path.display().to_string(), e.to_string());
            return outcome;
        }
    };
    for (i, (name, fixture)) in fixtures.iter().enumerate() {
        let dir = scratch.join(i.to_string());
        let result = run_test(fixture, executor.clone(), &dir);
        let _ = std::fs::remove_dir_all(&dir);
        match result {
            Ok(()) => outcome.passed += 1,
            Err(reason) => outcome.fail(format!("{}::{name}", path.display()), reason),
        }
    }
    outcome
}

fn run_test(
    fixture: &Fixture,
    executor: Option<Arc<ParallelExecutor>>,
    dir: &Path,
) -> Result<(), String> {
    let fork = Fork::from_name(&fixture.network)
        .ok_or_else(|| format!("unknown network {}", fixture.network))?;
    let genesis_block =
        decode_block(&fixture.genesis_rlp).map_err(|e| format!("bad genesisRLP: {e}"))?;
    let alloc = to_alloc(&fixture.pre)?;
    let spec = GenesisSpec {
        chain: ChainConfig::single_fork(1, fork),
        header: genesis_block.header,
        alloc,
    };
    let mut chain = Chain::init(dir, &spec, StoreOptions::default())
        .map_err(|e| format!("genesis: {e}"))?
        .with_executor(executor);
    for (i, block) in fixture.blocks.iter().enumerate() {
        let bytes = alloy_primitives::hex::decode(block.rlp.trim_start_matches("0x"));
        let head_before = chain.store().head().map_err(|e| e.to_string())?;
        let result = match bytes {
            Ok(bytes) => chain.import_rlp(&bytes),
            Err(e) => Err(crate::chain::ImportError::Decode(e.to_string())),
        };
        match (&block.expect_exception, result) {
            (None, Ok(_)) => {}
            (None, Err(e)) => return Err(format!("block {i} rejected: {e}")),
            (Some(expect), Ok(_)) => {
                return Err(format!(
                    "block {i} imported but must be rejected ({expect})"
                ))
            }
            (Some(expect), Err(e)) => {
                let classes = expected_classes(expect);
                match e.class() {
                    Some(class) if classes.contains(&class) => {}
                    _ => {
                        return Err(format!(
                            "block {i} rejected for the wrong reason: expected {expect}, got {e}"
                        ))
                    }
                }
                let head_after = chain.store().head().map_err(|e| e.to_string())?;
                if head_after != head_before {
                    return Err(format!("block {i} was rejected but the head moved"));
                }
            }
        }
    }
    let head = chain.store().head().map_err(|e| e.to_string())?;
    if head.hash != fixture.lastblockhash {
        return Err(format!(
            "head is {} (block {}), expected {}",
            head.hash, head.number, fixture.lastblockhash
        ));
    }
    if let Some(hash) = fixture.post_state_hash {
        if head.state_root != hash {
            return Err(format!(
                "state root {} != postStateHash {hash}",
                head.state_root
            ));
        }
    }
    if let Some(post) = &fixture.post_state {
        check_post_state(chain.store(), post)?;
        let expected = alloc_root(&to_alloc(post)?);
        if head.state_root != expected {
            return Err(format!(
                "state root {} differs from postState's {expected} (extra or missing accounts)",
                head.state_root
            ));
        }
    }
    let recomputed = chain
        .store()
        .plain_state_root()
        .map_err(|e| e.to_string())?;
    if recomputed != head.state_root {
        return Err(format!(
            "stored root {} differs from the plain-state recomputation {recomputed}",
            head.state_root
        ));
    }
    Ok(())
}

fn check_post_state(
    state: &impl StateReader,
    post: &BTreeMap<Address, Account>,
) -> Result<(), String> {
    for (address, expected) in post {
        let info = state
            .account(address)
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("{address} missing from the state"))?;
        if info.balance != expected.balance {
            return Err(format!(
                "{address}: balance {} != expected {}",
                info.balance, expected.balance
            ));
        }
        if U256::from(info.nonce) != expected.nonce {
            return Err(format!(
                "{address}: nonce {} != expected {}",
                info.nonce, expected.nonce
            ));
        }
        let code_hash = alloy_primitives::keccak256(&expected.code);
        let actual_code_hash = if info.has_no_code() {
            pel_state::account::KECCAK_EMPTY
        } else {
            info.code_hash
        };
        if actual_code_hash != code_hash {
            return Err(format!("{address}: code differs"));
        }
        for (slot, value) in &expected.storage {
            let got = state.storage(address, slot).map_err(|e| e.to_string())?;
            if got != *value {
                return Err(format!("{address}: slot {slot} is {got}, expected {value}"));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exception_classes() {
        assert_eq!(
            expected_classes("TransactionException.INSUFFICIENT_ACCOUNT_FUNDS|TransactionException.INTRINSIC_GAS_TOO_LOW"),
            vec![RejectClass::Transaction, RejectClass::Transaction]
        );
        assert_eq!(
            expected_classes("BlockException.RLP_STRUCTURES_ENCODING"),
            vec![RejectClass::Rlp]
        );
        assert_eq!(
            expected_classes("BlockException.INVALID_GASLIMIT"),
            vec![RejectClass::Block]
        );
        assert!(expected_classes("Something").is_empty());
    }
}
