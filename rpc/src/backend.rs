//! What the RPC server needs from the node: the store for reads, decoded blocks,
//! the transaction pool, the dev accounts, mining controls and chain events.
//! The node implements [`Backend`]; the server never writes state itself.

use alloy_consensus::{Block, ReceiptEnvelope, TxEnvelope, TypedTransaction};
use alloy_primitives::{Address, Signature, B256};
use pel_executor::{BlockProfile, ChainConfig};
use pel_state::{RocksStore, StateError};
use serde::Serialize;
use std::sync::Arc;
use tokio::sync::broadcast;

/// A committed block with what the RPC derives from it.
#[derive(Debug, Clone)]
pub struct StoredBlock {
    /// Header and body.
    pub block: Block<TxEnvelope>,
    /// Block hash.
    pub hash: B256,
    /// Sender of each transaction.
    pub senders: Vec<Address>,
    /// Receipt of each transaction.
    pub receipts: Vec<ReceiptEnvelope>,
}

/// Something that happened on the chain, for subscriptions and filters.
#[derive(Debug, Clone)]
pub enum ChainEvent {
    /// A block was committed.
    Block(Arc<StoredBlock>),
    /// A transaction entered the pool.
    PendingTx(B256),
}

/// A rejected request to the node, with the JSON-RPC error code clients expect.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct NodeError {
    /// JSON-RPC error code (-32000 for rejected transactions, as geth).
    pub code: i32,
    /// Human-readable reason, in geth's wording where one exists.
    pub message: String,
}

impl NodeError {
    /// A -32000 error.
    pub fn server(message: impl Into<String>) -> Self {
        Self {
            code: -32000,
            message: message.into(),
        }
    }
}

impl From<StateError> for NodeError {
    fn from(e: StateError) -> Self {
        Self::server(e.to_string())
    }
}

/// A dev-chain edit of one account (`anvil_set*`); `None` leaves a field alone.
#[derive(Debug, Default, Clone)]
pub struct AccountEdit {
    /// New balance.
    pub balance: Option<alloy_primitives::U256>,
    /// New nonce.
    pub nonce: Option<u64>,
    /// New code (empty removes it).
    pub code: Option<alloy_primitives::Bytes>,
    /// One slot and its new value.
    pub storage: Option<(alloy_primitives::U256, alloy_primitives::U256)>,
}

/// Pending and queued transactions by sender, for `txpool_*`.
#[derive(Debug, Default, Clone)]
pub struct PoolContent {
    /// Executable now (nonces contiguous from the account's).
    pub pending: Vec<(Address, Vec<TxEnvelope>)>,
    /// Waiting for a nonce gap to close.
    pub queued: Vec<(Address, Vec<TxEnvelope>)>,
}

/// Running totals of the blocks a node executed (`pel_executionStats`).
#[derive(Debug, Default, Clone, PartialEq, Serialize)]
pub struct ExecutionStats {
    /// Worker threads of the parallel executor (1: sequential).
    pub threads: usize,
    /// Blocks executed since the node started.
    pub blocks: u64,
    /// Of those, blocks that ran through the parallel phase.
    pub parallel_blocks: u64,
    /// Transactions executed.
    pub txs: u64,
    /// Gas used.
    pub gas: u64,
    /// Wall time spent executing, in milliseconds.
    pub execution_ms: f64,
    /// Gas per second of execution time, in millions.
    pub mgas_per_s: f64,
    /// Serial work of the transactions, in milliseconds (summed final
    /// incarnation times of parallel blocks; execution time of the others).
    pub work_ms: f64,
    /// Estimated speedup over sequential: serial work over execution time.
    pub speedup: f64,
    /// Aborted incarnations.
    pub aborts: u64,
    /// Validations that found a changed read.
    pub validation_failures: u64,
}

/// The node as the RPC server sees it.
pub trait Backend: Send + Sync + 'static {
    /// Chain configuration.
    fn chain(&self) -> &ChainConfig;
    /// The store (reads only).
    fn store(&self) -> &RocksStore;
    /// Block `number` with senders and receipts, if committed.
    fn block(&self, number: u64) -> Result<Option<Arc<StoredBlock>>, NodeError>;
    /// Validates a signed transaction and adds it to the pool.
    fn submit(&self, tx: TxEnvelope) -> Result<B256, NodeError>;
    /// The next nonce of `address` counting its pool transactions.
    fn pending_nonce(&self, address: Address) -> Result<u64, NodeError>;
    /// A transaction still in the pool.
    fn pool_transaction(&self, hash: &B256) -> Option<(TxEnvelope, Address)>;
    /// Pool contents.
    fn pool_content(&self) -> PoolContent;
    /// Addresses whose keys the node holds.
    fn accounts(&self) -> Vec<Address>;
    /// Signs a transaction with a dev account's key.
    fn sign_transaction(
        &self,
        from: Address,
        tx: TypedTransaction,
    ) -> Result<TxEnvelope, NodeError>;
    /// Signs a 32-byte hash with a dev account's key.
    fn sign_hash(&self, from: Address, hash: B256) -> Result<Signature, NodeError>;
    /// Mines `blocks` blocks now (the first at `timestamp` when given); returns the new head.
    fn mine(&self, blocks: u64, timestamp: Option<u64>) -> Result<u64, NodeError>;
    /// Moves the clock forward; returns the total offset in seconds.
    fn increase_time(&self, seconds: u64) -> u64;
    /// Fixes the next block's timestamp.
    fn set_next_timestamp(&self, timestamp: u64) -> Result<(), NodeError>;
    /// Applies a dev-chain edit to an account, committed as an empty block.
    fn set_account(&self, address: Address, edit: AccountEdit) -> Result<(), NodeError>;
    /// Records the current head; returns the snapshot's id.
    fn snapshot(&self) -> Result<u64, NodeError>;
    /// Unwinds the chain to a snapshot's head (dropping it and later
    /// snapshots); false when the id is unknown.
    fn revert(&self, id: u64) -> Result<bool, NodeError>;
    /// True when blocks are mined as transactions arrive: sending then waits
    /// for the transaction's block, as anvil's automine does.
    fn automine(&self) -> bool;
    /// Chain events.
    fn subscribe(&self) -> broadcast::Receiver<ChainEvent>;
    /// The conflict profile of committed block `number`, re-executed on its
    /// parent's state.
    fn block_profile(&self, number: u64) -> Result<BlockProfile, NodeError>;
    /// Running totals of the blocks this node executed.
    fn execution_stats(&self) -> ExecutionStats;
}
