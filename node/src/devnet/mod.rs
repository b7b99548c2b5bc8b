//! The devnet node (`pel node`): dev accounts from a mnemonic, a transaction
//! pool, a miner that builds blocks with the Block-STM executor and commits them
//! to RocksDB, and the JSON-RPC server.
//!
//! Mining modes: *auto* (default) mines as soon as transactions are pending,
//! one block with every pending transaction that fits, so bursts land in few
//! large blocks; *interval* (`--block-time`) mines every N seconds; *manual*
//! (`--no-mining`) mines on `evm_mine` only. One thread builds blocks at a time
//! (the chain's mutex); RPC reads go to the store and never wait for it.

pub mod accounts;
pub mod pool;
pub mod run;

use crate::{
    chain::{decode_receipts, stored_block, BlockAttrs, Chain, ImportStats, PreparedBlock},
    genesis::GenesisSpec,
};
use alloy_consensus::{SignableTransaction, TxEnvelope, TypedTransaction};
use alloy_primitives::{Address, Bytes, Signature, B256, U256};
use alloy_signer::SignerSync;
use alloy_signer_local::PrivateKeySigner;
use pel_executor::{BlockProfile, ChainConfig, PreparedTx, SpecId};
use pel_rpc::{Backend, ChainEvent, ExecutionStats, NodeError, PoolContent, StoredBlock};
use pel_state::{RocksStore, StateReader};
use pool::{AccountView, Pool, PoolConfig};
use std::{
    collections::{HashMap, VecDeque},
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Condvar, Mutex,
    },
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};
use tokio::sync::broadcast;

/// How blocks get mined.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MiningMode {
    /// As soon as transactions are pending.
    Auto,
    /// Every this many seconds, empty or not.
    Interval(u64),
    /// Only on `evm_mine`.
    Manual,
}

/// Recent blocks kept decoded for the RPC.
const BLOCK_CACHE: usize = 512;

/// Transactions offered to the block builder, each with its sender.
type Candidates = Vec<(TxEnvelope, Option<Address>)>;

/// Decoded blocks by number, with their insertion order for eviction.
type BlockCache = (HashMap<u64, Arc<StoredBlock>>, VecDeque<u64>);

/// The devnet node.
pub struct DevNode {
    store: Arc<RocksStore>,
    config: ChainConfig,
    chain: Mutex<Chain>,
    pool: Mutex<Pool>,
    /// The pool's admission rules, for the checks made outside its lock.
    pool_config: PoolConfig,
    signers: Vec<PrivateKeySigner>,
    events: broadcast::Sender<ChainEvent>,
    cache: Mutex<BlockCache>,
    time_offset: Mutex<u64>,
    next_timestamp: Mutex<Option<u64>>,
    gas_limit: u64,
    wake: (Mutex<bool>, Condvar),
    /// Base fee and rules of the next block, refreshed after every block.
    next_block: Mutex<(u64, SpecId)>,
    /// Snapshots (`evm_snapshot`): id → head block number.
    snapshots: Mutex<std::collections::BTreeMap<u64, u64>>,
    mode: MiningMode,
    /// Running totals for `pel_executionStats`.
    stats: Mutex<ExecutionStats>,
    /// The next tick's block, built ahead while the pool was quiet.
    prebuilt: Mutex<Option<Prebuilt>>,
    /// Blocks committed from a pre-built block.
    prebuilt_blocks: AtomicU64,
}

/// A block built ahead of its tick (interval mining), valid while the head,
/// the pool and the timestamp are those it was built with.
struct Prebuilt {
    pool_version: u64,
    timestamp: u64,
    block: PreparedBlock,
}

/// Interval mining: how often the miner looks at the pool while it waits
/// for the tick, and how long the pool must stay unchanged before the
/// tick's block is built ahead (so a stream of arrivals is not raced).
const PREBUILD_POLL: Duration = Duration::from_millis(10);
const PREBUILD_QUIET: Duration = Duration::from_millis(30);

impl std::fmt::Debug for DevNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevNode").field("mode", &self.mode).finish()
    }
}

/// Blocks are filled by the gas their transactions use, as geth and anvil
/// fill them: the builder executes candidates in order and ends the block
/// before the first that no longer fits (the rest stay pending). Gas limits
/// usually exceed use (an ERC-20 transfer signed with 80,000 uses about
/// 35,000-52,000), so candidates are taken up to this many times the block's
/// gas limit in gas limits.
const CANDIDATE_GAS_FACTOR: u64 = 2;

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The devnet's genesis: every fork up to `fork` from block 0, the dev accounts
/// funded with `balance` wei.
pub fn dev_genesis(
    chain_id: u64,
    fork: pel_executor::Fork,
    gas_limit: u64,
    accounts: &[Address],
    balance: U256,
) -> GenesisSpec {
    let chain = ChainConfig::single_fork(chain_id, fork);
    let mut alloc = pel_state::StateDiff::default();
    for a in accounts {
        crate::genesis::alloc_account(&mut alloc, *a, balance, 0, None, []);
    }
    let mut header = alloy_consensus::Header {
        ommers_hash: alloy_consensus::constants::EMPTY_OMMER_ROOT_HASH,
        state_root: crate::genesis::alloc_root(&alloc),
        transactions_root: alloy_consensus::EMPTY_ROOT_HASH,
        receipts_root: alloy_consensus::EMPTY_ROOT_HASH,
        gas_limit,
        timestamp: now(),
        ..alloy_consensus::Header::default()
    };
    crate::genesis::fill_fork_fields(&mut header, fork, None, None, None);
    GenesisSpec {
        chain,
        header,
        alloc,
    }
}

/// Base fee and rules of the block after `head`.
fn next_block_of(config: &ChainConfig, head: &alloy_consensus::Header) -> (u64, SpecId) {
    let base_fee = head
        .next_block_base_fee(alloy_eips::eip1559::BaseFeeParams::ethereum())
        .unwrap_or_default();
    (
        base_fee,
        config.spec_at(head.number + 1, head.timestamp + 1),
    )
}

impl DevNode {
    /// A node over an opened chain.
    pub fn new(
        chain: Chain,
        signers: Vec<PrivateKeySigner>,
        pool: PoolConfig,
        mode: MiningMode,
    ) -> Arc<Self> {
        let gas_limit = pool.block_gas_limit;
        let store = chain.shared_store();
        let config = chain.config().clone();
        let next_block = next_block_of(&config, chain.head());
        let stats = ExecutionStats {
            threads: chain.threads(),
            ..ExecutionStats::default()
        };
        let pool_config = pool;
        let pool = Pool::new(pool);
        let (events, _) = broadcast::channel(4096);
        Arc::new(Self {
            store,
            config,
            chain: Mutex::new(chain),
            pool: Mutex::new(pool),
            pool_config,
            signers,
            events,
            cache: Mutex::new((HashMap::new(), VecDeque::new())),
            time_offset: Mutex::new(0),
            next_timestamp: Mutex::new(None),
            gas_limit,
            wake: (Mutex::new(false), Condvar::new()),
            snapshots: Mutex::new(std::collections::BTreeMap::new()),
            next_block: Mutex::new(next_block),
            mode,
            stats: Mutex::new(stats),
            prebuilt: Mutex::new(None),
            prebuilt_blocks: AtomicU64::new(0),
        })
    }

    fn account_view(&self, address: &Address) -> Result<AccountView, NodeError> {
        let info = self.store.account(address)?.unwrap_or_default();
        Ok(AccountView {
            nonce: info.nonce,
            balance: info.balance,
        })
    }

    fn account_nonce(&self, address: &Address) -> u64 {
        self.store
            .account(address)
            .ok()
            .flatten()
            .map_or(0, |a| a.nonce)
    }

    fn lock<T>(m: &Mutex<T>) -> Result<std::sync::MutexGuard<'_, T>, NodeError> {
        m.lock()
            .map_err(|_| NodeError::server("node lock poisoned"))
    }

    /// Mines one block now with the best pending transactions.
    pub fn mine_one(&self, timestamp: Option<u64>) -> Result<Arc<StoredBlock>, NodeError> {
        self.mine_with(timestamp, None)
    }

    /// The block the head would get now at `timestamp`: the best pending
    /// transactions, with the pool version they were taken at.
    fn block_plan(
        &self,
        head: &alloy_consensus::Header,
        timestamp: u64,
    ) -> Result<(u64, Candidates, BlockAttrs), NodeError> {
        let base_fee = head
            .next_block_base_fee(alloy_eips::eip1559::BaseFeeParams::ethereum())
            .unwrap_or(alloy_eips::eip1559::INITIAL_BASE_FEE);
        let (version, txs) = {
            let pool = Self::lock(&self.pool)?;
            let txs = pool
                .best(
                    |a| self.account_nonce(a),
                    base_fee,
                    self.gas_limit.saturating_mul(CANDIDATE_GAS_FACTOR),
                )
                .into_iter()
                .map(|(tx, sender)| (tx, Some(sender)))
                .collect();
            (pool.version(), txs)
        };
        Ok((version, txs, self.attrs(head, timestamp, None)))
    }

    fn attrs(
        &self,
        head: &alloy_consensus::Header,
        timestamp: u64,
        edit: Option<pel_state::StateDiff>,
    ) -> BlockAttrs {
        BlockAttrs {
            timestamp,
            beneficiary: Address::ZERO,
            gas_limit: self.gas_limit,
            prev_randao: alloy_primitives::keccak256(head.hash_slow()),
            extra_data: Bytes::from_static(b"pel"),
            state_edit: edit,
        }
    }

    /// The pre-built block, if it is exactly what mining on `head` at
    /// `timestamp` would build now (same head, timestamp and pool).
    fn take_prebuilt(
        &self,
        head: &alloy_consensus::Header,
        timestamp: u64,
    ) -> Result<Option<PreparedBlock>, NodeError> {
        let Some(prebuilt) = Self::lock(&self.prebuilt)?.take() else {
            return Ok(None);
        };
        let version = Self::lock(&self.pool)?.version();
        Ok((prebuilt.pool_version == version
            && prebuilt.timestamp == timestamp
            && prebuilt.block.parent_hash == head.hash_slow())
        .then_some(prebuilt.block))
    }

    /// Builds the block the next tick would mine at `timestamp` and keeps it
    /// for that tick, which then only commits it if nothing changed in
    /// between. Returns false when there was nothing to build.
    pub fn prebuild(&self, timestamp: u64) -> Result<bool, NodeError> {
        let chain = Self::lock(&self.chain)?;
        let head = chain.head().clone();
        let timestamp = timestamp.max(head.timestamp + 1);
        let (pool_version, txs, attrs) = self.block_plan(&head, timestamp)?;
        if txs.is_empty() {
            return Ok(false);
        }
        let block = chain
            .prepare_block(txs, &attrs)
            .map_err(|e| NodeError::server(format!("block building failed: {e}")))?;
        *Self::lock(&self.prebuilt)? = Some(Prebuilt {
            pool_version,
            timestamp,
            block,
        });
        Ok(true)
    }

    /// Blocks committed from a pre-built block (interval mining).
    pub fn prebuilt_blocks(&self) -> u64 {
        self.prebuilt_blocks.load(Ordering::Relaxed)
    }

    /// The version of the pooled set (see [`Pool::version`]).
    fn pool_version(&self) -> Option<u64> {
        self.pool.lock().ok().map(|p| p.version())
    }

    /// Mines one block; with `edit`, an empty block that commits the edit.
    fn mine_with(
        &self,
        timestamp: Option<u64>,
        edit: Option<pel_state::StateDiff>,
    ) -> Result<Arc<StoredBlock>, NodeError> {
        let mut chain = Self::lock(&self.chain)?;
        let head = chain.head().clone();
        let next_ts = timestamp
            .or_else(|| self.next_timestamp.lock().ok().and_then(|mut t| t.take()))
            .unwrap_or_else(|| now() + self.time_offset.lock().map(|o| *o).unwrap_or(0));
        let timestamp = next_ts.max(head.timestamp + 1);
        let prebuilt = match &edit {
            Some(_) => None,
            None => self.take_prebuilt(&head, timestamp)?,
        };
        let prepared = match prebuilt {
            Some(block) => {
                self.prebuilt_blocks.fetch_add(1, Ordering::Relaxed);
                block
            }
            None => {
                let (txs, attrs) = if edit.is_some() {
                    (Vec::new(), self.attrs(&head, timestamp, edit))
                } else {
                    let (_, txs, attrs) = self.block_plan(&head, timestamp)?;
                    (txs, attrs)
                };
                chain
                    .prepare_block(txs, &attrs)
                    .map_err(|e| NodeError::server(format!("block building failed: {e}")))?
            }
        };
        let built = chain
            .commit_block(prepared)
            .map_err(|e| NodeError::server(format!("block building failed: {e}")))?;
        *Self::lock(&self.next_block)? = next_block_of(&self.config, chain.head());
        drop(chain);
        if let Ok(mut stats) = self.stats.lock() {
            record(&mut stats, &built.stats);
        }
        let senders = built.senders;
        let stored = Arc::new(StoredBlock {
            hash: built.block.header.hash_slow(),
            block: built.block,
            senders,
            receipts: built.receipts,
        });
        {
            let mut pool = Self::lock(&self.pool)?;
            pool.remove(stored.block.body.transactions.iter().map(|t| *t.tx_hash()));
            pool.remove(built.dropped.iter().map(|(h, _)| *h));
            pool.prune_stale(|a| self.account_nonce(a));
        }
        for (hash, reason) in &built.dropped {
            eprintln!("dropped transaction {hash}: {reason}");
        }
        self.cache_block(stored.clone());
        let _ = self.events.send(ChainEvent::Block(stored.clone()));
        Ok(stored)
    }

    fn cache_block(&self, block: Arc<StoredBlock>) {
        if let Ok(mut cache) = self.cache.lock() {
            let number = block.block.header.number;
            if cache.0.insert(number, block).is_none() {
                cache.1.push_back(number);
            }
            while cache.1.len() > BLOCK_CACHE {
                if let Some(old) = cache.1.pop_front() {
                    cache.0.remove(&old);
                }
            }
        }
    }

    /// True when the pool has something executable.
    fn has_pending(&self) -> bool {
        self.pool
            .lock()
            .map(|p| {
                !p.best(|a| self.account_nonce(a), 0, self.gas_limit)
                    .is_empty()
            })
            .unwrap_or(false)
    }

    fn notify(&self) {
        let (flag, cv) = &self.wake;
        if let Ok(mut f) = flag.lock() {
            *f = true;
            cv.notify_one();
        }
    }

    /// Runs the miner of the node's mode on this thread, forever.
    pub fn run_miner(self: &Arc<Self>) {
        match self.mode {
            MiningMode::Manual => loop {
                std::thread::park();
            },
            MiningMode::Interval(secs) => {
                // A block every `secs` seconds at a fixed rate, as anvil does:
                // the time spent mining a block does not push the next one
                // back. A block that overruns its period is followed at once.
                let period = Duration::from_secs(secs.max(1));
                let mut next = Instant::now() + period;
                loop {
                    self.wait_for_tick(next);
                    if let Err(e) = self.mine_one(None) {
                        eprintln!("mining failed: {e}");
                    }
                    next = (next + period).max(Instant::now());
                }
            }
            MiningMode::Auto => loop {
                {
                    let (flag, cv) = &self.wake;
                    let Ok(mut f) = flag.lock() else { return };
                    while !*f {
                        match cv.wait(f) {
                            Ok(g) => f = g,
                            Err(_) => return,
                        }
                    }
                    *f = false;
                }
                // Transactions arriving while a block is built wait for the
                // next one, so a burst lands in a few large blocks.
                while self.has_pending() {
                    if let Err(e) = self.mine_one(None) {
                        eprintln!("mining failed: {e}");
                        break;
                    }
                }
            },
        }
    }

    /// Interval mining: waits until `tick`. Once the pool has stayed
    /// unchanged for [`PREBUILD_QUIET`], builds the tick's block ahead (see
    /// [`Self::prebuild`]), so that when a burst of transactions has ended
    /// the tick only commits the block. A block is built ahead at most once
    /// per pool version, and never while a timestamp is pinned.
    fn wait_for_tick(&self, tick: Instant) {
        let mut seen = (self.pool_version(), Instant::now());
        let mut tried = None;
        while let Some(wait) = tick.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait.min(PREBUILD_POLL));
            let version = self.pool_version();
            if version != seen.0 {
                seen = (version, Instant::now());
                continue;
            }
            let pinned = self.next_timestamp.lock().map_or(true, |t| t.is_some());
            if tried == version || pinned || seen.1.elapsed() < PREBUILD_QUIET {
                continue;
            }
            tried = version;
            let Some(left) = tick.checked_duration_since(Instant::now()) else {
                break;
            };
            let at_tick = SystemTime::now() + left;
            let timestamp = at_tick
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0)
                + self.time_offset.lock().map(|o| *o).unwrap_or(0);
            if let Err(e) = self.prebuild(timestamp) {
                eprintln!("building ahead failed: {e}");
            }
        }
    }

    fn signer(&self, from: &Address) -> Result<&PrivateKeySigner, NodeError> {
        self.signers
            .iter()
            .find(|s| s.address() == *from)
            .ok_or_else(|| NodeError::server(format!("unknown account {from}")))
    }
}

impl Backend for DevNode {
    fn chain(&self) -> &ChainConfig {
        &self.config
    }

    fn store(&self) -> &RocksStore {
        &self.store
    }

    fn block(&self, number: u64) -> Result<Option<Arc<StoredBlock>>, NodeError> {
        if let Ok(cache) = self.cache.lock() {
            if let Some(b) = cache.0.get(&number) {
                return Ok(Some(b.clone()));
            }
        }
        if self.store.header(number)?.is_none() {
            return Ok(None);
        }
        let block = stored_block(&self.store, number)?;
        let receipts = decode_receipts(
            &self
                .store
                .receipts(number)?
                .ok_or_else(|| NodeError::server(format!("block {number} has no receipts")))?,
        )?;
        let allow_high_s = self.config.spec_at(number, block.header.timestamp) < SpecId::HOMESTEAD;
        let senders = block
            .body
            .transactions
            .iter()
            .map(|t| {
                PreparedTx::recover(t, None, allow_high_s)
                    .map(|p| p.sender)
                    .unwrap_or_default()
            })
            .collect();
        let stored = Arc::new(StoredBlock {
            hash: block.header.hash_slow(),
            block,
            senders,
            receipts,
        });
        self.cache_block(stored.clone());
        Ok(Some(stored))
    }

    fn submit(&self, tx: TxEnvelope) -> Result<B256, NodeError> {
        // The head's fee and rules, without waiting for a block being built.
        let (base_fee, spec) = *Self::lock(&self.next_block)?;
        // Recovery and the account read run outside the pool's lock, so
        // admission threads do not queue behind each other's secp256k1 work.
        let checked = self.pool_config.check(tx, base_fee, spec)?;
        let view = self.account_view(&checked.sender())?;
        let hash = Self::lock(&self.pool)?.insert(checked, view)?;
        let _ = self.events.send(ChainEvent::PendingTx(hash));
        if self.mode == MiningMode::Auto {
            self.notify();
        }
        Ok(hash)
    }

    fn pending_nonce(&self, address: Address) -> Result<u64, NodeError> {
        let nonce = self.account_view(&address)?.nonce;
        Ok(Self::lock(&self.pool)?.next_nonce(&address, nonce))
    }

    fn pool_transaction(&self, hash: &B256) -> Option<(TxEnvelope, Address)> {
        let pool = self.pool.lock().ok()?;
        pool.get(hash).map(|t| (t.tx.clone(), t.sender))
    }

    fn pool_content(&self) -> PoolContent {
        self.pool
            .lock()
            .map(|p| p.content(|a| self.account_nonce(a)))
            .unwrap_or_default()
    }

    fn accounts(&self) -> Vec<Address> {
        self.signers.iter().map(|s| s.address()).collect()
    }

    fn sign_transaction(
        &self,
        from: Address,
        tx: TypedTransaction,
    ) -> Result<TxEnvelope, NodeError> {
        let signer = self.signer(&from)?;
        let hash = tx.signature_hash();
        let sig = signer
            .sign_hash_sync(&hash)
            .map_err(|e| NodeError::server(format!("signing failed: {e}")))?;
        Ok(tx.into_signed(sig).into())
    }

    fn sign_hash(&self, from: Address, hash: B256) -> Result<Signature, NodeError> {
        self.signer(&from)?
            .sign_hash_sync(&hash)
            .map_err(|e| NodeError::server(format!("signing failed: {e}")))
    }

    fn mine(&self, blocks: u64, timestamp: Option<u64>) -> Result<u64, NodeError> {
        let mut head = 0;
        for i in 0..blocks.min(10_000) {
            head = self
                .mine_one(if i == 0 { timestamp } else { None })?
                .block
                .header
                .number;
        }
        Ok(head)
    }

    fn increase_time(&self, seconds: u64) -> u64 {
        match self.time_offset.lock() {
            Ok(mut o) => {
                *o = o.saturating_add(seconds);
                *o
            }
            Err(_) => 0,
        }
    }

    fn set_next_timestamp(&self, timestamp: u64) -> Result<(), NodeError> {
        let head = Self::lock(&self.chain)?.head().timestamp;
        if timestamp <= head {
            return Err(NodeError::server(format!(
                "timestamp {timestamp} is not after the head's {head}"
            )));
        }
        *Self::lock(&self.next_timestamp)? = Some(timestamp);
        Ok(())
    }

    fn set_account(&self, address: Address, edit: pel_rpc::AccountEdit) -> Result<(), NodeError> {
        let mut info = self.store.account(&address)?.unwrap_or_default();
        let mut diff = pel_state::StateDiff::default();
        if let Some(balance) = edit.balance {
            info.balance = balance;
        }
        if let Some(nonce) = edit.nonce {
            info.nonce = nonce;
        }
        if let Some(code) = edit.code {
            if code.is_empty() {
                info.code_hash = pel_state::account::KECCAK_EMPTY;
            } else {
                info.code_hash = alloy_primitives::keccak256(&code);
                diff.codes.insert(info.code_hash, code);
            }
        }
        let mut account = pel_state::AccountDiff {
            info: Some(info),
            ..Default::default()
        };
        if let Some((slot, value)) = edit.storage {
            account.storage.insert(slot, value);
        }
        diff.accounts.insert(address, account);
        self.mine_with(None, Some(diff)).map(|_| ())
    }

    fn snapshot(&self) -> Result<u64, NodeError> {
        let head = Self::lock(&self.chain)?.head().number;
        let mut snapshots = Self::lock(&self.snapshots)?;
        let id = snapshots.keys().next_back().map_or(1, |k| k + 1);
        snapshots.insert(id, head);
        Ok(id)
    }

    fn revert(&self, id: u64) -> Result<bool, NodeError> {
        let mut snapshots = Self::lock(&self.snapshots)?;
        let Some(number) = snapshots.get(&id).copied() else {
            return Ok(false);
        };
        let mut chain = Self::lock(&self.chain)?;
        chain
            .unwind_to(number)
            .map_err(|e| NodeError::server(format!("revert failed: {e}")))?;
        *Self::lock(&self.next_block)? = next_block_of(&self.config, chain.head());
        drop(chain);
        snapshots.retain(|k, _| *k < id);
        if let Ok(mut cache) = self.cache.lock() {
            cache.0.retain(|n, _| *n <= number);
            cache.1.retain(|n| *n <= number);
        }
        Self::lock(&self.pool)?.prune_stale(|a| self.account_nonce(a));
        Ok(true)
    }

    fn automine(&self) -> bool {
        self.mode == MiningMode::Auto
    }

    fn subscribe(&self) -> broadcast::Receiver<ChainEvent> {
        self.events.subscribe()
    }

    fn block_profile(&self, number: u64) -> Result<BlockProfile, NodeError> {
        Self::lock(&self.chain)?
            .profile(number)
            .map_err(|e| NodeError::server(format!("cannot profile block {number}: {e}")))
    }

    fn execution_stats(&self) -> ExecutionStats {
        self.stats.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

/// Adds one executed block to the running totals.
fn record(stats: &mut ExecutionStats, block: &ImportStats) {
    stats.blocks += 1;
    stats.parallel_blocks += u64::from(block.parallel);
    stats.txs += block.txs as u64;
    stats.gas += block.gas_used;
    stats.execution_ms += block.execute_s * 1e3;
    stats.work_ms += block.work_s * 1e3;
    stats.aborts += block.reexecutions as u64;
    stats.validation_failures += block.validation_failures as u64;
    stats.mgas_per_s = crate::replay::mgas_per_s(stats.gas, stats.execution_ms);
    stats.speedup = if stats.execution_ms > 0.0 {
        stats.work_ms / stats.execution_ms
    } else {
        1.0
    };
}
