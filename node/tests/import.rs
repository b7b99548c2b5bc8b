//! Import of synthetic chains into RocksDB: a built chain exported and imported
//! elsewhere reproduces it exactly; bad blocks are rejected with the chain left
//! at the parent; bad data dirs give errors and are left untouched; and a crash
//! test SIGKILLs importing processes at random points and checks that every
//! reopen lands on a whole, consistent block.
#![allow(clippy::unwrap_used)]

mod common;

use alloy_consensus::Block;
use pel_node::{
    chain::{self, Chain},
    synth::{self, SynthSpec},
};
use pel_state::{StateReader, StoreOptions};
use std::{path::Path, process::Command, time::Duration};

const SPEC: SynthSpec = SynthSpec {
    accounts: 3000,
    senders: 64,
    blocks: 100,
    txs_per_block: 150,
    seed: 42,
};

fn fresh_copy(dir: &Path, spec: &SynthSpec) -> Chain {
    let senders: Vec<_> = (0..spec.senders).map(synth::sender_key).collect();
    let genesis = synth::genesis(spec, &senders);
    Chain::init(dir, &genesis, StoreOptions::default()).unwrap()
}

#[test]
fn export_then_import_reproduces_the_chain_and_rejects_bad_blocks() {
    let dir = common::temp_dir("import-roundtrip");
    let spec = SynthSpec { blocks: 8, ..SPEC };
    let source = synth::build_chain(&dir.join("a"), &spec).unwrap();
    let file = dir.join("chain.rlp");
    assert_eq!(chain::export(&source, &file).unwrap(), 8);
    let mut copy = fresh_copy(&dir.join("b"), &spec);
    let data = std::fs::read(&file).unwrap();
    let blocks = pel_node::import::split_blocks(&data).unwrap();
    // A block whose state root is wrong is rejected and nothing moves.
    let mut bad: Block<_> = pel_node::validate::decode_block(blocks[0]).unwrap();
    bad.header.state_root = alloy_primitives::B256::repeat_byte(1);
    let err = copy.import(bad).unwrap_err();
    assert!(err.to_string().contains("state root"), "{err}");
    assert_eq!(copy.store().head().unwrap().number, 0);
    // A block with a tampered transaction list fails the transactions root.
    let mut bad: Block<_> = pel_node::validate::decode_block(blocks[1]).unwrap();
    bad.header.parent_hash = copy.head().hash_slow();
    bad.body.transactions.pop();
    assert!(copy.import(bad).is_err());
    // Out of order: unknown parent.
    let err = copy.import_rlp(blocks[2]).unwrap_err();
    assert!(err.to_string().contains("unknown parent"), "{err}");
    // Garbage bytes.
    assert!(copy.import_rlp(&[0xc3, 0x01, 0x02]).is_err());
    common::check_whole(copy.store());
    for raw in &blocks {
        copy.import_rlp(raw).unwrap();
    }
    assert_eq!(copy.store().head().unwrap(), source.store().head().unwrap());
    common::check_whole(copy.store());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_fork_from_an_earlier_block_reorganises_and_a_bad_one_changes_nothing() {
    let dir = common::temp_dir("import-reorg");
    let a_spec = SynthSpec { blocks: 6, ..SPEC };
    let b_spec = SynthSpec {
        blocks: 8,
        seed: 7,
        ..SPEC
    };
    let a = synth::build_chain(&dir.join("a"), &a_spec).unwrap();
    let b = synth::build_chain(&dir.join("b"), &b_spec).unwrap();
    chain::export(&a, &dir.join("a.rlp")).unwrap();
    chain::export(&b, &dir.join("b.rlp")).unwrap();
    let b_head = b.store().head().unwrap();
    let mut c = fresh_copy(&dir.join("c"), &SPEC);
    let a_data = std::fs::read(dir.join("a.rlp")).unwrap();
    let b_data = std::fs::read(dir.join("b.rlp")).unwrap();
    for raw in pel_node::import::split_blocks(&a_data).unwrap() {
        c.import_rlp(raw).unwrap();
    }
    assert_eq!(c.store().head().unwrap(), a.store().head().unwrap());
    // B's first block forks from genesis: A's six blocks are unwound.
    let b_blocks = pel_node::import::split_blocks(&b_data).unwrap();
    // A bad fork block first: rejected, and A is back in place.
    let mut bad = pel_node::validate::decode_block(b_blocks[0]).unwrap();
    bad.header.state_root = alloy_primitives::B256::repeat_byte(3);
    assert!(c.import(bad).is_err());
    assert_eq!(c.store().head().unwrap(), a.store().head().unwrap());
    common::check_whole(c.store());
    for raw in &b_blocks {
        c.import_rlp(raw).unwrap();
    }
    assert_eq!(c.store().head().unwrap(), b_head);
    common::check_whole(c.store());
    // State matches B's for every account the blocks touched.
    for i in 0..200 {
        let address = synth::plain_account(i);
        assert_eq!(
            c.store().account(&address).unwrap(),
            b.store().account(&address).unwrap()
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_data_dirs_are_refused_and_untouched() {
    let dir = common::temp_dir("import-baddir");
    let pel = env!("CARGO_BIN_EXE_pel");
    // Opening a folder that is not a data dir.
    std::fs::create_dir_all(dir.join("empty")).unwrap();
    let out = Command::new(pel)
        .args(["import", "--datadir"])
        .arg(dir.join("empty"))
        .arg(dir.join("nothing.rlp"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a PEL data dir"));
    // Init refuses to overwrite an existing chain.
    let genesis = dir.join("genesis.json");
    std::fs::write(
        &genesis,
        r#"{"config":{"chainId":7,"homesteadBlock":0,"eip150Block":0,"eip155Block":0,"eip158Block":0,
        "byzantiumBlock":0,"constantinopleBlock":0,"petersburgBlock":0,"istanbulBlock":0,"berlinBlock":0,
        "londonBlock":0,"mergeNetsplitBlock":0,"terminalTotalDifficulty":0,"shanghaiTime":0,"cancunTime":0},
        "gasLimit":"0x1c9c380","difficulty":"0x0","timestamp":"0x0","extraData":"0x",
        "alloc":{"0x00000000000000000000000000000000000000aa":{"balance":"0x10"}}}"#,
    )
    .unwrap();
    let init = |d: &Path| {
        Command::new(pel)
            .args(["init", "--genesis"])
            .arg(&genesis)
            .arg("--datadir")
            .arg(d)
            .output()
            .unwrap()
    };
    assert!(init(&dir.join("c")).status.success());
    let again = init(&dir.join("c"));
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("refusing"));
    // Blocks of another chain: unknown parent, nothing written.
    let other = synth::build_chain(&dir.join("other"), &SynthSpec { blocks: 2, ..SPEC }).unwrap();
    chain::export(&other, &dir.join("other.rlp")).unwrap();
    drop(other);
    let out = Command::new(pel)
        .args(["import", "--datadir"])
        .arg(dir.join("c"))
        .arg(dir.join("other.rlp"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown parent"));
    let chain = Chain::open(&dir.join("c"), StoreOptions::default()).unwrap();
    assert_eq!(chain.head().number, 0);
    drop(chain);
    // Malformed genesis: a clear error.
    std::fs::write(dir.join("bad.json"), "{").unwrap();
    let out = Command::new(pel)
        .args(["init", "--genesis"])
        .arg(dir.join("bad.json"))
        .arg("--datadir")
        .arg(dir.join("d"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("malformed genesis"));
    assert!(!dir.join("d").exists());
    // Sets the stored schema version (0: leaves it) and returns it.
    let version = |v: u32| {
        let mut opts = rocksdb::Options::default();
        opts.create_if_missing(false);
        let cfs = rocksdb::DB::list_cf(&opts, dir.join("c")).unwrap();
        let db = rocksdb::DB::open_cf(&opts, dir.join("c"), cfs).unwrap();
        let meta = db.cf_handle("meta").unwrap();
        if v > 0 {
            db.put_cf(meta, b"schema_version", v.to_be_bytes()).unwrap();
        }
        let stored = db.get_cf(meta, b"schema_version").unwrap().unwrap();
        u32::from_be_bytes(stored.as_slice().try_into().unwrap())
    };
    // A wrong schema version is refused.
    version(99);
    let err = Chain::open(&dir.join("c"), StoreOptions::default()).unwrap_err();
    assert!(err.to_string().contains("schema version 99"), "{err}");
    // A version-1 store (branch hashes only) opens and is marked version 2.
    version(1);
    drop(Chain::open(&dir.join("c"), StoreOptions::default()).unwrap());
    assert_eq!(version(0), 2);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn sigkill_during_import_always_reopens_at_a_whole_block() {
    let iterations: usize = std::env::var("PEL_CRASH_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(15);
    let dir = common::temp_dir("import-crash");
    let source = synth::build_chain(&dir.join("a"), &SPEC).unwrap();
    let file = dir.join("chain.rlp");
    chain::export(&source, &file).unwrap();
    let target_head = source.store().head().unwrap();
    drop(source);
    drop(fresh_copy(&dir.join("b"), &SPEC));
    let mut rng = synth::Rng::new(7);
    let mut heads = Vec::new();
    for _ in 0..iterations {
        let mut child = Command::new(env!("CARGO_BIN_EXE_pel"))
            .args(["import", "--threads", "2", "--datadir"])
            .arg(dir.join("b"))
            .arg(&file)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(5 + rng.below(300) as u64));
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        let chain = Chain::open(&dir.join("b"), StoreOptions::default()).unwrap();
        common::check_whole(chain.store());
        heads.push(chain.head().number);
        if chain.head().number == target_head.number {
            // Start over so later kills land mid-import again.
            drop(chain);
            std::fs::remove_dir_all(dir.join("b")).unwrap();
            drop(fresh_copy(&dir.join("b"), &SPEC));
        }
    }
    let mid_import = heads
        .iter()
        .filter(|h| **h > 0 && **h < target_head.number)
        .count();
    assert!(
        mid_import >= iterations / 3,
        "too few kills landed mid-import: {heads:?}"
    );
    // Finish the import: it resumes from wherever the kills left it.
    let status = Command::new(env!("CARGO_BIN_EXE_pel"))
        .args(["import", "--datadir"])
        .arg(dir.join("b"))
        .arg(&file)
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let chain = Chain::open(&dir.join("b"), StoreOptions::default()).unwrap();
    assert_eq!(chain.store().head().unwrap(), target_head);
    common::check_whole(chain.store());
    eprintln!("heads after each kill: {heads:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
