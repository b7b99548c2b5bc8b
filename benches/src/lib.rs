//! Shared helpers for PEL benchmarks: the captured mainnet blocks, and a bare
//! revm loop over them to compare PEL's sequential path against.

use pel_executor::{env, revm, sequential::ExecOptions, ChainConfig, CodeCache};
use pel_node::load::{self, CapturedBlock};
use pel_state::{account::KECCAK_EMPTY, StateReader};
use revm::{
    bytecode::Bytecode,
    database::{CacheDB, EmptyDB},
    handler::{ExecuteCommitEvm, MainBuilder, MainnetContext},
    state::AccountInfo,
};
use std::path::PathBuf;
use std::sync::Arc;

/// The repository's `testdata/mainnet`.
pub fn mainnet_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../testdata/mainnet")
}

/// Every captured block, loaded (senders recovered).
pub fn mainnet_blocks() -> Vec<CapturedBlock> {
    let dir = mainnet_dir();
    let chain = ChainConfig::mainnet();
    let hashes = load::load_block_hashes(&dir).expect("block_hashes.json");
    load::list_blocks(&dir)
        .expect("testdata/mainnet")
        .into_iter()
        .map(|(_, path)| load::load_block(&path, &hashes, &chain).expect("captured block"))
        .collect()
}

/// revm's own in-memory database, filled with a block's pre-state (code
/// analysed up front), as a bare revm user would set it up.
pub fn revm_cache_db(block: &CapturedBlock) -> CacheDB<EmptyDB> {
    let mut db = CacheDB::new(EmptyDB::default());
    for (address, account) in block.pre_state.accounts() {
        let code = if account.info.code_hash == KECCAK_EMPTY {
            None
        } else {
            let raw = block
                .pre_state
                .code(&account.info.code_hash)
                .ok()
                .flatten()
                .unwrap_or_default();
            Some(Bytecode::new_raw(raw))
        };
        let info = AccountInfo {
            balance: account.info.balance,
            nonce: account.info.nonce,
            code_hash: account.info.code_hash,
            code,
            ..Default::default()
        };
        db.insert_account_info(*address, info);
        for (slot, value) in &account.storage {
            let _ = db.insert_account_storage(*address, *slot, *value);
        }
    }
    let header = &block.input.header;
    for n in header.number.saturating_sub(256)..header.number {
        if let Ok(Some(hash)) = block.pre_state.block_hash(n) {
            db.cache
                .block_hashes
                .insert(revm::primitives::U256::from(n), hash);
        }
    }
    db
}

/// The bare revm loop: one EVM, `transact_commit` per transaction, nothing
/// else (no receipts, no state diff, no system calls). Returns gas used.
pub fn bare_revm_block(block: &CapturedBlock, db: CacheDB<EmptyDB>) -> u64 {
    let chain = ChainConfig::mainnet();
    let header = &block.input.header;
    let spec = chain.spec_at(header.number, header.timestamp);
    let mut ctx =
        MainnetContext::new(db, spec).with_cfg(env::cfg_env(&chain, spec, header.timestamp));
    ctx.block = env::block_env(header, spec, &chain);
    let mut evm = ctx.build_mainnet();
    let mut gas = 0;
    for tx in &block.input.transactions {
        let result = evm
            .transact_commit(tx.env.clone())
            .expect("valid transaction");
        gas += result.tx_gas_used();
    }
    gas
}

/// PEL's sequential path on one block, with a code cache shared across
/// blocks as a node keeps one. Returns gas used.
pub fn pel_sequential_block(block: &CapturedBlock, code_cache: &Arc<CodeCache>) -> u64 {
    let options = ExecOptions {
        code_cache: Some(code_cache.clone()),
        ..Default::default()
    };
    pel_executor::execute_block(
        &block.pre_state,
        &block.input,
        &ChainConfig::mainnet(),
        options,
    )
    .expect("captured block executes")
    .gas_used
}
