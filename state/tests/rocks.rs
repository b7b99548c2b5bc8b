//! The RocksDB store against the in-memory backend: random blocks of account and
//! storage changes (creations, updates, wipes, destructions) are committed to
//! both; after every block the incrementally maintained root equals the in-memory
//! full recomputation and the plain-state recomputation, every earlier state reads
//! back exactly through the history, and a reopened store lands on the same head.
#![allow(clippy::unwrap_used)]

use alloy_primitives::{Address, Bytes, B256, U256};
use pel_state::{
    AccountDiff, AccountInfo, BlockRecord, InMemoryState, RocksStore, StateDiff, StateReader,
    StoreOptions,
};
use proptest::prelude::*;
use std::collections::BTreeMap;

fn record(number: u64) -> BlockRecord {
    BlockRecord {
        number,
        hash: B256::with_last_byte(number as u8 + 1),
        header: vec![number as u8],
        body: vec![],
        receipts: vec![],
        tx_hashes: vec![B256::repeat_byte(number as u8 + 100)],
    }
}

/// Optional (nonce, balance), wipe flag, (slot, value) writes.
type Body = (Option<(u64, u64)>, bool, Vec<(u8, u8)>);
/// Account index and what happens to it.
type Change = (u16, Option<(u64, u64)>, bool, Vec<(u8, u8)>);

/// Accounts of the small blocks.
const FEW: u16 = 12;
/// Accounts of the big blocks, which the store stages on several threads.
const MANY: u16 = 1000;

fn address(a: u16) -> Address {
    let mut bytes = [0u8; 20];
    bytes[18..].copy_from_slice(&a.to_be_bytes());
    Address::from(bytes)
}

/// What happens to one account: optional (nonce, balance), wipe, slot writes.
fn arb_body() -> impl Strategy<Value = Body> {
    (
        prop::option::weighted(0.85, (0u64..5, 0u64..1000)),
        prop::bool::weighted(0.1),
        prop::collection::vec((0u8..20, 0u8..4), 0..6),
    )
}

/// A random change to one of a few accounts with a few slots each.
fn arb_change() -> impl Strategy<Value = Change> {
    (0u16..FEW, arb_body()).prop_map(|(a, (info, wipe, slots))| (a, info, wipe, slots))
}

/// A block changing 256-320 distinct accounts out of [`MANY`].
fn arb_big_block() -> impl Strategy<Value = Vec<Change>> {
    prop::collection::btree_map(0u16..MANY, arb_body(), 256..320).prop_map(|m| {
        m.into_iter()
            .map(|(a, (info, wipe, slots))| (a, info, wipe, slots))
            .collect()
    })
}

/// A block changing 256-320 distinct accounts out of [`MANY`], deleting none
/// (big updates without deletions walk the account trie's root children
/// apart).
fn arb_big_block_without_deletions() -> impl Strategy<Value = Vec<Change>> {
    let body = (
        (0u64..5, 0u64..1000),
        prop::bool::weighted(0.1),
        prop::collection::vec((0u8..20, 0u8..4), 0..6),
    );
    prop::collection::btree_map(0u16..MANY, body, 256..320).prop_map(|m| {
        m.into_iter()
            .map(|(a, (info, wipe, slots))| (a, Some(info), wipe, slots))
            .collect()
    })
}

fn build_diff(changes: Vec<Change>) -> StateDiff {
    let mut diff = StateDiff::default();
    for (a, info, wipe, slots) in changes {
        let address = address(a);
        let entry = diff
            .accounts
            .entry(address)
            .or_insert_with(AccountDiff::default);
        entry.info = info.map(|(nonce, balance)| AccountInfo {
            nonce,
            balance: U256::from(balance),
            ..AccountInfo::default()
        });
        entry.storage_cleared |= wipe;
        if entry.info.is_some() {
            for (slot, value) in slots {
                entry.storage.insert(U256::from(slot), U256::from(value));
            }
        } else {
            entry.storage.clear();
            entry.storage_cleared = false;
        }
    }
    diff
}

type Snapshot = BTreeMap<Address, (Option<AccountInfo>, Vec<U256>)>;

fn snapshot(state: &impl StateReader, accounts: u16) -> Snapshot {
    (0..accounts)
        .map(|a| {
            let address = address(a);
            let slots = (0u8..20)
                .map(|s| state.storage(&address, &U256::from(s)).unwrap())
                .collect();
            (address, (state.account(&address).unwrap(), slots))
        })
        .collect()
}

/// Commits `blocks` to the store and to memory; see the module docs.
fn check_blocks(blocks: Vec<Vec<Change>>, accounts: u16) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let mut memory = InMemoryState::new();
    let genesis = build_diff(vec![(1, Some((0, 5)), false, vec![(1, 1)])]);
    memory.apply(&genesis);
    let store = RocksStore::create(
        &path,
        b"cfg",
        &genesis,
        &record(0),
        None,
        StoreOptions::default(),
    )
    .unwrap();
    prop_assert_eq!(store.head().unwrap().state_root, memory.state_root());
    let mut snapshots = vec![snapshot(&memory, accounts)];
    let mut roots = vec![memory.state_root()];
    for (i, changes) in blocks.into_iter().enumerate() {
        let number = i as u64 + 1;
        let diff = build_diff(changes);
        memory.apply(&diff);
        let pending = store.prepare(&diff, number).unwrap();
        prop_assert_eq!(pending.root(), memory.state_root());
        store.commit(pending, &record(number)).unwrap();
        prop_assert_eq!(store.plain_state_root().unwrap(), memory.state_root());
        prop_assert_eq!(store.hashed_state_root().unwrap(), memory.state_root());
        snapshots.push(snapshot(&memory, accounts));
        roots.push(memory.state_root());
        for (n, expected) in snapshots.iter().enumerate() {
            let view = store.at_block(n as u64).unwrap();
            prop_assert_eq!(&snapshot(&view, accounts), expected, "state at block {}", n);
        }
    }
    let head = store.head().unwrap();
    drop(store);
    let reopened = RocksStore::open(&path, StoreOptions::default()).unwrap();
    prop_assert_eq!(reopened.head().unwrap(), head);
    prop_assert_eq!(
        snapshot(&reopened, accounts),
        snapshots.last().unwrap().clone()
    );
    // Unwinding block by block restores every earlier state, root and index.
    for n in (1..snapshots.len()).rev() {
        let head = reopened
            .unwind(&record(n as u64).tx_hashes, roots[n - 1])
            .unwrap();
        prop_assert_eq!(head.number, n as u64 - 1);
        prop_assert_eq!(&snapshot(&reopened, accounts), &snapshots[n - 1]);
        prop_assert_eq!(reopened.plain_state_root().unwrap(), roots[n - 1]);
        prop_assert_eq!(reopened.hashed_state_root().unwrap(), roots[n - 1]);
        prop_assert!(reopened.header(n as u64).unwrap().is_none());
        prop_assert!(reopened
            .transaction_location(&record(n as u64).tx_hashes[0])
            .unwrap()
            .is_none());
    }
    prop_assert!(reopened.unwind(&[], roots[0]).is_err());
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    #[test]
    fn store_matches_memory_and_history_reads_back(
        blocks in prop::collection::vec(prop::collection::vec(arb_change(), 1..8), 1..10)
    ) {
        check_blocks(blocks, FEW)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4))]
    /// Blocks big enough that the store stages their accounts in parallel.
    #[test]
    fn big_blocks_match_memory_and_history_reads_back(
        blocks in prop::collection::vec(arb_big_block(), 1..4)
    ) {
        check_blocks(blocks, MANY)?;
    }

    /// Big blocks without deletions: from the second on, the account trie's
    /// root children are walked on all cores.
    #[test]
    fn big_blocks_without_deletions_match_memory(
        blocks in prop::collection::vec(arb_big_block_without_deletions(), 2..4)
    ) {
        check_blocks(blocks, MANY)?;
    }
}

#[test]
fn block_data_and_indices_are_stored() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let store = RocksStore::create(
        &path,
        b"cfg",
        &StateDiff::default(),
        &record(0),
        None,
        StoreOptions::default(),
    )
    .unwrap();
    let mut diff = StateDiff::default();
    diff.codes
        .insert(B256::repeat_byte(7), Bytes::from_static(&[0x60, 0x00]));
    let pending = store.prepare(&diff, 1).unwrap();
    store.commit(pending, &record(1)).unwrap();
    assert_eq!(store.header(1).unwrap(), Some(vec![1]));
    assert_eq!(store.block_number(&record(1).hash).unwrap(), Some(1));
    assert_eq!(store.block_hash(1).unwrap(), Some(record(1).hash));
    assert_eq!(
        store.transaction_location(&B256::repeat_byte(101)).unwrap(),
        Some((1, 0))
    );
    assert_eq!(
        store.code(&B256::repeat_byte(7)).unwrap(),
        Some(Bytes::from_static(&[0x60, 0x00]))
    );
    assert_eq!(store.chain_config().unwrap(), b"cfg".to_vec());
    // A block that does not follow the head is refused.
    let pending = store.prepare(&StateDiff::default(), 5).unwrap();
    assert!(store.commit(pending, &record(5)).is_err());
    assert_eq!(store.head().unwrap().number, 1);
}

#[test]
fn pruning_keeps_only_recent_history() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let options = StoreOptions {
        history_limit: Some(2),
    };
    let a = Address::with_last_byte(1);
    let diff_at = |n: u64| build_diff(vec![(1, Some((n, n * 10)), false, vec![(3, n as u8)])]);
    let store = RocksStore::create(&path, b"cfg", &diff_at(0), &record(0), None, options).unwrap();
    for n in 1..=6 {
        let pending = store.prepare(&diff_at(n), n).unwrap();
        store.commit(pending, &record(n)).unwrap();
    }
    for n in 3..=6u64 {
        let view = store.at_block(n).unwrap();
        assert_eq!(view.account(&a).unwrap().unwrap().nonce, n);
        assert_eq!(view.storage(&a, &U256::from(3)).unwrap(), U256::from(n));
    }
    let err = store.at_block(1).unwrap_err().to_string();
    assert!(err.contains("pruned"), "{err}");
}

#[test]
fn refuses_bad_data_dirs() {
    let dir = tempfile::tempdir().unwrap();
    // Not a data dir at all.
    let err = RocksStore::open(dir.path(), StoreOptions::default()).unwrap_err();
    assert!(err.to_string().contains("not a PEL data dir"), "{err}");
    // An existing store is not overwritten by create.
    let path = dir.path().join("db");
    let store = RocksStore::create(
        &path,
        b"cfg",
        &StateDiff::default(),
        &record(0),
        None,
        StoreOptions::default(),
    )
    .unwrap();
    drop(store);
    let err = RocksStore::create(
        &path,
        b"other",
        &StateDiff::default(),
        &record(0),
        None,
        StoreOptions::default(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("refusing"), "{err}");
    let reopened = RocksStore::open(&path, StoreOptions::default()).unwrap();
    assert_eq!(reopened.chain_config().unwrap(), b"cfg".to_vec());
    drop(reopened);
    // Truncated table files: a clear error, not a panic.
    for entry in std::fs::read_dir(&path).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().to_string();
        if name.starts_with("MANIFEST") {
            std::fs::write(entry.path(), b"garbage").unwrap();
        }
    }
    assert!(RocksStore::open(&path, StoreOptions::default()).is_err());
}
