//! Building the execution-apis response shapes (alloy's RPC types) from stored
//! blocks: headers, blocks, transactions with their block position and
//! effective gas price, receipts with per-transaction gas and indexed logs.

use crate::backend::StoredBlock;
use alloy_consensus::{Transaction as _, TxEnvelope};
use alloy_eips::eip2718::Encodable2718;
use alloy_primitives::{Address, U256};
use alloy_rpc_types_eth::{Block, BlockTransactions, Header, Log, Transaction, TransactionReceipt};

/// The RPC header of a stored block.
pub fn header(stored: &StoredBlock) -> Header {
    let size = alloy_rlp::Encodable::length(&stored.block);
    Header {
        hash: stored.hash,
        inner: stored.block.header.clone(),
        total_difficulty: Some(stored.block.header.difficulty),
        size: Some(U256::from(size)),
    }
}

/// The RPC block, with full transactions or their hashes.
pub fn block(stored: &StoredBlock, full: bool) -> Block {
    let transactions = if full {
        BlockTransactions::Full(
            (0..stored.block.body.transactions.len())
                .map(|i| transaction(stored, i))
                .collect(),
        )
    } else {
        BlockTransactions::Hashes(
            stored
                .block
                .body
                .transactions
                .iter()
                .map(|t| *t.tx_hash())
                .collect(),
        )
    };
    Block {
        header: header(stored),
        uncles: vec![],
        transactions,
        withdrawals: stored.block.body.withdrawals.clone(),
    }
}

/// Transaction `index` of a stored block.
pub fn transaction(stored: &StoredBlock, index: usize) -> Transaction {
    let tx = stored.block.body.transactions[index].clone();
    let base_fee = stored.block.header.base_fee_per_gas;
    let effective = tx.effective_gas_price(base_fee);
    Transaction {
        inner: alloy_consensus::transaction::Recovered::new_unchecked(tx, stored.senders[index]),
        block_hash: Some(stored.hash),
        block_number: Some(stored.block.header.number),
        transaction_index: Some(index as u64),
        effective_gas_price: Some(effective),
        block_timestamp: Some(stored.block.header.timestamp),
    }
}

/// A transaction still in the pool (no block fields).
pub fn pending_transaction(tx: TxEnvelope, sender: Address) -> Transaction {
    let price = tx.max_fee_per_gas();
    Transaction {
        inner: alloy_consensus::transaction::Recovered::new_unchecked(tx, sender),
        block_hash: None,
        block_number: None,
        transaction_index: None,
        effective_gas_price: Some(price),
        block_timestamp: None,
    }
}

/// Logs of every receipt of a block, with block, transaction and log indices.
pub fn block_logs(stored: &StoredBlock) -> Vec<Log> {
    let mut out = Vec::new();
    let mut log_index = 0u64;
    for (i, receipt) in stored.receipts.iter().enumerate() {
        for log in receipt.logs() {
            out.push(Log {
                inner: log.clone(),
                block_hash: Some(stored.hash),
                block_number: Some(stored.block.header.number),
                block_timestamp: Some(stored.block.header.timestamp),
                transaction_hash: Some(*stored.block.body.transactions[i].tx_hash()),
                transaction_index: Some(i as u64),
                log_index: Some(log_index),
                removed: false,
            });
            log_index += 1;
        }
    }
    out
}

/// Receipt of transaction `index` of a stored block.
pub fn receipt(stored: &StoredBlock, index: usize) -> TransactionReceipt {
    let tx = &stored.block.body.transactions[index];
    let header = &stored.block.header;
    let envelope = stored.receipts[index].clone();
    let cumulative = envelope.cumulative_gas_used();
    let previous = index
        .checked_sub(1)
        .map_or(0, |p| stored.receipts[p].cumulative_gas_used());
    let first_log: usize = stored.receipts[..index]
        .iter()
        .map(|r| r.logs().len())
        .sum();
    let mut log_index = first_log as u64;
    let inner = envelope.map_logs(|log| {
        let l = Log {
            inner: log,
            block_hash: Some(stored.hash),
            block_number: Some(header.number),
            block_timestamp: Some(header.timestamp),
            transaction_hash: Some(*tx.tx_hash()),
            transaction_index: Some(index as u64),
            log_index: Some(log_index),
            removed: false,
        };
        log_index += 1;
        l
    });
    let from = stored.senders[index];
    let contract_address = tx.kind().is_create().then(|| from.create(tx.nonce()));
    let blob_gas_used = tx
        .blob_versioned_hashes()
        .map(|h| h.len() as u64 * alloy_eips::eip4844::DATA_GAS_PER_BLOB);
    let blob_gas_price = blob_gas_used
        .and(header.excess_blob_gas)
        .map(|excess| alloy_eips::eip7840::BlobParams::cancun().calc_blob_fee(excess));
    TransactionReceipt {
        inner,
        transaction_hash: *tx.tx_hash(),
        transaction_index: Some(index as u64),
        block_hash: Some(stored.hash),
        block_number: Some(header.number),
        gas_used: cumulative - previous,
        effective_gas_price: tx.effective_gas_price(header.base_fee_per_gas),
        blob_gas_used,
        blob_gas_price,
        from,
        to: tx.to(),
        contract_address,
    }
}

/// The raw EIP-2718 bytes of a transaction.
pub fn raw(tx: &TxEnvelope) -> alloy_primitives::Bytes {
    tx.encoded_2718().into()
}
