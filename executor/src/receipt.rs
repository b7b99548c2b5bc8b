//! Receipts: what each transaction left behind, and the roots over them.

use alloy_consensus::{Eip658Value, Receipt, ReceiptEnvelope, ReceiptWithBloom, TxType};
use alloy_primitives::{Address, Bloom, Log, B256};

/// The receipt of one transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxReceipt {
    /// EIP-2718 type of the transaction.
    pub tx_type: u8,
    /// Whether the transaction succeeded (EIP-658 status).
    pub success: bool,
    /// Gas used by the block up to and including this transaction.
    pub cumulative_gas_used: u64,
    /// Gas used by this transaction alone.
    pub gas_used: u64,
    /// Logs emitted.
    pub logs: Vec<Log>,
    /// Address of the contract created, for a successful creation.
    pub contract_address: Option<Address>,
    /// Pre-Byzantium receipts hold the state root after the transaction instead
    /// of a status. PEL computes it only where the full state is at hand (import);
    /// `None` elsewhere.
    pub post_state: Option<B256>,
}

impl TxReceipt {
    /// Bloom over `logs`.
    pub fn logs_bloom(&self) -> Bloom {
        logs_bloom(&self.logs)
    }

    /// The consensus (EIP-2718) receipt, as hashed into `receiptsRoot`.
    pub fn envelope(&self) -> ReceiptEnvelope {
        let status = match self.post_state {
            Some(root) => Eip658Value::PostState(root),
            None => Eip658Value::Eip658(self.success),
        };
        let receipt = ReceiptWithBloom::new(
            Receipt {
                status,
                cumulative_gas_used: self.cumulative_gas_used,
                logs: self.logs.clone(),
            },
            self.logs_bloom(),
        );
        match TxType::try_from(self.tx_type).unwrap_or(TxType::Legacy) {
            TxType::Legacy => ReceiptEnvelope::Legacy(receipt),
            TxType::Eip2930 => ReceiptEnvelope::Eip2930(receipt),
            TxType::Eip1559 => ReceiptEnvelope::Eip1559(receipt),
            TxType::Eip4844 => ReceiptEnvelope::Eip4844(receipt),
            TxType::Eip7702 => ReceiptEnvelope::Eip7702(receipt),
        }
    }
}

/// The bloom filter over a list of logs.
pub fn logs_bloom<'a>(logs: impl IntoIterator<Item = &'a Log>) -> Bloom {
    let mut bloom = Bloom::ZERO;
    for log in logs {
        bloom.accrue_log(log);
    }
    bloom
}

/// Blocks with at least this many receipts build their consensus receipts
/// on all cores (each one's bloom costs a few keccaks per log).
const PARALLEL_ENVELOPES_MIN: usize = 256;

/// The consensus receipts of a block, each bloom computed once: the header's
/// `logsBloom` ([`envelopes_bloom`]), its `receiptsRoot` ([`envelopes_root`])
/// and the stored receipts all come from them.
pub fn envelopes(receipts: &[TxReceipt]) -> Vec<ReceiptEnvelope> {
    use rayon::prelude::*;
    if receipts.len() >= PARALLEL_ENVELOPES_MIN {
        receipts.par_iter().map(TxReceipt::envelope).collect()
    } else {
        receipts.iter().map(TxReceipt::envelope).collect()
    }
}

/// The block's bloom: the union of its receipts' blooms.
pub fn envelopes_bloom(envelopes: &[ReceiptEnvelope]) -> Bloom {
    let mut bloom = Bloom::ZERO;
    for envelope in envelopes {
        bloom.accrue_bloom(envelope.logs_bloom());
    }
    bloom
}

/// The header's `receiptsRoot` over consensus receipts.
pub fn envelopes_root(envelopes: &[ReceiptEnvelope]) -> B256 {
    alloy_consensus::proofs::calculate_receipt_root(envelopes)
}
