//! The executor's input and output for one block.

use crate::{PreparedTx, TxReceipt};
use alloy_consensus::Header;
use alloy_eips::{eip4895::Withdrawal, eip7685::Requests};
use alloy_primitives::Address;
use pel_state::StateDiff;

/// An ommer (uncle) as the block reward needs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ommer {
    /// The ommer's block number.
    pub number: u64,
    /// The ommer's beneficiary.
    pub beneficiary: Address,
}

/// Everything needed to execute one block.
#[derive(Clone, Debug)]
pub struct BlockInput {
    /// The block header (its number, timestamp, beneficiary, gas limit, fees...).
    pub header: Header,
    /// Transactions in block order, senders recovered.
    pub transactions: Vec<PreparedTx>,
    /// Withdrawals (Shanghai on).
    pub withdrawals: Option<Vec<Withdrawal>>,
    /// Ommers, for the optional pre-Merge reward step.
    pub ommers: Vec<Ommer>,
}

impl BlockInput {
    /// The sum of the transactions' gas limits (saturating).
    pub fn gas_limits(&self) -> u64 {
        self.transactions
            .iter()
            .fold(0, |sum, tx| sum.saturating_add(tx.env.gas_limit))
    }
}

impl BlockOutput {
    /// The header's `requestsHash` this block must carry (Prague on).
    pub fn requests_hash(&self) -> Option<alloy_primitives::B256> {
        self.requests.as_ref().map(Requests::requests_hash)
    }
}

/// What executing a block produced. Two executors agree when their outputs
/// compare equal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockOutput {
    /// One receipt per transaction.
    pub receipts: Vec<TxReceipt>,
    /// Total gas used (the header's `gasUsed`).
    pub gas_used: u64,
    /// Blob gas used by the block's blob transactions.
    pub blob_gas_used: u64,
    /// What the block changed.
    pub diff: StateDiff,
    /// The block's EIP-7685 requests (Prague on; `None` before).
    pub requests: Option<Requests>,
}
