//! Synthetic chains for the import benchmark and the crash tests: a genesis
//! funding many accounts, a few hundred of them with keys, and blocks of signed
//! transfers from the keyed accounts to accounts across the whole state. Fully
//! deterministic for a given spec.

use crate::{
    chain::{BlockAttrs, Chain, ImportError},
    genesis::{alloc_account, alloc_root, fill_fork_fields, GenesisSpec},
};
use alloy_consensus::{
    constants::EMPTY_OMMER_ROOT_HASH, Header, SignableTransaction, TxEip1559, TxEnvelope,
    EMPTY_ROOT_HASH,
};
use alloy_primitives::{keccak256, Address, Bytes, TxKind, B256, U256};
use alloy_signer::SignerSync;
use alloy_signer_local::PrivateKeySigner;
use pel_executor::{ChainConfig, Fork};
use pel_state::{StateDiff, StoreOptions};
use std::path::Path;

/// Shape of a synthetic chain.
#[derive(Clone, Copy, Debug)]
pub struct SynthSpec {
    /// Funded accounts in the genesis state (the state size).
    pub accounts: usize,
    /// Accounts with keys that send transactions.
    pub senders: usize,
    /// Blocks to build.
    pub blocks: usize,
    /// Transfers per block.
    pub txs_per_block: usize,
    /// Seed of the transfers (same genesis, different blocks).
    pub seed: u64,
}

/// Chain id of synthetic chains.
pub const CHAIN_ID: u64 = 1337;

/// A deterministic stream of numbers (splitmix64).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A stream from a seed.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next number.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number below `n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}

/// The `i`-th sender key.
pub fn sender_key(i: usize) -> PrivateKeySigner {
    let mut seed = keccak256(format!("pel-synth-sender-{i}"));
    // A keccak output is a valid secp256k1 scalar but for astronomically rare values.
    loop {
        if let Ok(key) = PrivateKeySigner::from_bytes(&seed) {
            return key;
        }
        seed = keccak256(seed);
    }
}

/// The `i`-th funded account without a key.
pub fn plain_account(i: usize) -> Address {
    Address::from_slice(&keccak256((i as u64).to_be_bytes())[12..])
}

/// The synthetic chain's genesis: Cancun rules from block 0.
pub fn genesis(spec: &SynthSpec, senders: &[PrivateKeySigner]) -> GenesisSpec {
    let chain = ChainConfig::single_fork(CHAIN_ID, Fork::Cancun);
    let mut alloc = StateDiff::default();
    let rich = U256::from(10u128.pow(24));
    for key in senders {
        alloc_account(&mut alloc, key.address(), rich, 0, None, []);
    }
    for i in 0..spec.accounts.saturating_sub(senders.len()) {
        alloc_account(&mut alloc, plain_account(i), U256::from(1), 0, None, []);
    }
    let mut header = Header {
        ommers_hash: EMPTY_OMMER_ROOT_HASH,
        state_root: alloc_root(&alloc),
        transactions_root: EMPTY_ROOT_HASH,
        receipts_root: EMPTY_ROOT_HASH,
        gas_limit: 1_000_000_000,
        timestamp: 1,
        ..Header::default()
    };
    fill_fork_fields(&mut header, Fork::Cancun, None, None, None);
    GenesisSpec {
        chain,
        header,
        alloc,
    }
}

/// A signed EIP-1559 transfer.
pub fn transfer(key: &PrivateKeySigner, nonce: u64, to: Address, value: U256) -> TxEnvelope {
    let tx = TxEip1559 {
        chain_id: CHAIN_ID,
        nonce,
        gas_limit: 21_000,
        max_fee_per_gas: 100_000_000_000,
        max_priority_fee_per_gas: 1_000_000_000,
        to: TxKind::Call(to),
        value,
        access_list: Default::default(),
        input: Bytes::new(),
    };
    // Signing a 32-byte hash with a valid key cannot fail.
    let signature = key
        .sign_hash_sync(&tx.signature_hash())
        .unwrap_or_else(|e| unreachable!("signing failed: {e}"));
    tx.into_signed(signature).into()
}

/// Creates a data dir at `dir` with the synthetic genesis and builds
/// `spec.blocks` blocks of transfers on it.
pub fn build_chain(dir: &Path, spec: &SynthSpec) -> Result<Chain, ImportError> {
    let senders: Vec<PrivateKeySigner> = (0..spec.senders.max(1)).map(sender_key).collect();
    let genesis = genesis(spec, &senders);
    let mut chain = Chain::init(dir, &genesis, StoreOptions::default())?;
    let mut nonces = vec![0u64; senders.len()];
    let mut rng = Rng::new(spec.seed);
    let plain = spec.accounts.saturating_sub(senders.len()).max(1);
    for b in 0..spec.blocks {
        let mut txs = Vec::with_capacity(spec.txs_per_block);
        for _ in 0..spec.txs_per_block {
            let s = rng.below(senders.len());
            let to = plain_account(rng.below(plain));
            let tx = transfer(&senders[s], nonces[s], to, U256::from(1 + rng.below(1000)));
            txs.push((tx, Some(senders[s].address())));
            nonces[s] += 1;
        }
        let attrs = BlockAttrs {
            timestamp: 2 + b as u64 * 12,
            beneficiary: Address::with_last_byte(0xfe),
            gas_limit: 1_000_000_000,
            prev_randao: B256::from(U256::from(b)),
            extra_data: Bytes::from_static(b"pel-synth"),
            state_edit: None,
        };
        let built = chain.build(txs, &attrs)?;
        if let Some((hash, reason)) = built.dropped.first() {
            return Err(ImportError::Transaction {
                number: built.block.header.number,
                index: 0,
                reason: format!("synthetic transaction {hash} dropped: {reason}"),
            });
        }
    }
    Ok(chain)
}

/// The result of [`import_bench`] (the `--json` shape of `pel import-bench`).
#[derive(Clone, Debug, serde::Serialize)]
pub struct ImportBench {
    /// Accounts in the state.
    pub accounts: usize,
    /// Blocks imported.
    pub blocks: usize,
    /// Transfers per block.
    pub txs_per_block: usize,
    /// Executor threads (1 = sequential path).
    pub threads: usize,
    /// Seconds to create the genesis data dir (state root of the whole state).
    pub genesis_s: f64,
    /// The import, end to end, with its split.
    pub import: crate::import::ImportSummary,
    /// State root plus commit time over execution time.
    pub root_commit_over_execute: f64,
}

/// Builds a synthetic chain under `scratch`, exports it, and times its import
/// into a fresh data dir with `executor` (sequential when `None`).
pub fn import_bench(
    spec: &SynthSpec,
    executor: Option<std::sync::Arc<pel_executor::ParallelExecutor>>,
    scratch: &Path,
) -> Result<ImportBench, ImportError> {
    let source = build_chain(&scratch.join("source"), spec)?;
    let file = scratch.join("chain.rlp");
    crate::chain::export(&source, &file)?;
    drop(source);
    let data = std::fs::read(&file).map_err(|e| ImportError::Decode(e.to_string()))?;
    let senders: Vec<PrivateKeySigner> = (0..spec.senders.max(1)).map(sender_key).collect();
    let genesis = genesis(spec, &senders);
    let start = std::time::Instant::now();
    let chain = Chain::init(&scratch.join("target"), &genesis, StoreOptions::default())?;
    let genesis_s = start.elapsed().as_secs_f64();
    let threads = executor.as_ref().map_or(1, |e| e.threads());
    let mut chain = chain.with_executor(executor);
    let mut summary = crate::import::ImportSummary::default();
    let bar = indicatif::ProgressBar::hidden();
    crate::import::import_bytes(&mut chain, &data, &mut summary, &bar)?;
    Ok(ImportBench {
        accounts: spec.accounts,
        blocks: spec.blocks,
        txs_per_block: spec.txs_per_block,
        threads,
        genesis_s,
        root_commit_over_execute: (summary.root_s + summary.commit_s) / summary.execute_s.max(1e-9),
        import: summary,
    })
}
