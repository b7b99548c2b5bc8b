//! Typed execution errors. Every error names the block and, where there is one,
//! the transaction (index and hash) it came from.

use alloy_primitives::B256;
use pel_state::StateError;

/// A block could not be executed.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// A transaction is invalid against the state it runs on (nonce, balance, gas...).
    #[error("block {block}: transaction {index} ({hash}) is invalid: {reason}")]
    InvalidTx {
        /// Block number.
        block: u64,
        /// Index of the transaction in the block.
        index: usize,
        /// Transaction hash.
        hash: B256,
        /// Why revm rejected it.
        reason: String,
    },
    /// The block as a whole breaks a rule (gas limit exceeded, blob gas...).
    #[error("block {block}: {reason}")]
    InvalidBlock {
        /// Block number.
        block: u64,
        /// What is wrong.
        reason: String,
    },
    /// A system call (EIP-4788, EIP-2935, EIP-7002, EIP-7251) failed.
    #[error("block {block}: system call to {target} failed: {reason}")]
    SystemCall {
        /// Block number.
        block: u64,
        /// The system contract.
        target: alloy_primitives::Address,
        /// What went wrong.
        reason: String,
    },
    /// The block's EIP-7685 requests could not be collected (a malformed
    /// deposit log makes the block invalid).
    #[error("block {block}: invalid requests: {reason}")]
    Requests {
        /// Block number.
        block: u64,
        /// What went wrong.
        reason: String,
    },
    /// Reading state failed.
    #[error("block {block}: state read failed: {source}")]
    State {
        /// Block number.
        block: u64,
        /// The backend error.
        #[source]
        source: StateError,
    },
}

/// The error the revm database adapter reports: a state-backend failure or a
/// missing piece of data (unknown code hash, unknown block hash).
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The backend failed.
    #[error(transparent)]
    State(#[from] StateError),
    /// Code referenced by an account's code hash is not in the state.
    #[error("code {0} is missing from the state")]
    MissingCode(B256),
    /// BLOCKHASH asked for a block the state does not know.
    #[error("hash of block {0} is not known to the state")]
    MissingBlockHash(u64),
    /// The read hit an ESTIMATE of this lower transaction (parallel executor
    /// only): the incarnation must wait for it.
    #[error("read depends on transaction {0}, which is being re-executed")]
    Blocked(usize),
    /// The multi-version memory holds a value of the wrong kind for a
    /// location (an executor bug, reported rather than panicking).
    #[error("multi-version memory is inconsistent: {0}")]
    Inconsistent(&'static str),
    /// Code bytes that revm cannot load.
    #[error("code {0} is malformed: {1}")]
    BadCode(B256, String),
}

impl revm::database_interface::DBErrorMarker for DbError {}
