//! Loading captured blocks (the `blocks/<N>/{block.json,pre_state.json,bytecodes.json}`
//! layout) into executor inputs. Senders are recovered from signatures and
//! checked against the block's `from` fields; every failure names the block and
//! the transaction.

use alloy_consensus::TxEnvelope;
use alloy_primitives::B256;
use pel_executor::{tx::TxError, BlockInput, ChainConfig, PreparedTx, SpecId};
use pel_state::{mainnet, InMemoryState, StateError};
use rayon::prelude::*;
use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

/// A captured block that could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The folder does not have the expected layout.
    #[error("{path}: {reason}")]
    Layout {
        /// The offending path.
        path: PathBuf,
        /// What is missing or wrong.
        reason: String,
    },
    /// A file of the block is missing or malformed.
    #[error("block {block}: {source}")]
    State {
        /// Block folder name.
        block: String,
        /// The underlying error.
        #[source]
        source: StateError,
    },
    /// A transaction's signature is bad or does not match `from`.
    #[error("block {block}: transaction {index} ({hash}): {source}")]
    Tx {
        /// Block number.
        block: u64,
        /// Index in the block.
        index: usize,
        /// Transaction hash.
        hash: B256,
        /// What is wrong.
        #[source]
        source: TxError,
    },
    /// block.json holds something other than full transaction objects.
    #[error("block {block}: {reason}")]
    Block {
        /// Block folder name.
        block: String,
        /// What is wrong.
        reason: String,
    },
}

/// One captured block, ready to execute and check.
#[derive(Debug)]
pub struct CapturedBlock {
    /// The RPC header as captured (with its claimed hash).
    pub header: alloy_rpc_types_eth::Header,
    /// The signed transactions, in order (for the transactions root).
    pub envelopes: Vec<TxEnvelope>,
    /// What the executor runs.
    pub input: BlockInput,
    /// The state before the block (touched accounts only).
    pub pre_state: InMemoryState,
}

/// The folders of a captured-block directory, sorted by block number.
pub fn list_blocks(dir: &Path) -> Result<Vec<(u64, PathBuf)>, LoadError> {
    let blocks_dir = dir.join("blocks");
    let entries = std::fs::read_dir(&blocks_dir).map_err(|e| LoadError::Layout {
        path: blocks_dir.clone(),
        reason: format!("cannot list block folders ({e}); expected DIR/blocks/<N>/block.json"),
    })?;
    let mut blocks = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| LoadError::Layout {
            path: blocks_dir.clone(),
            reason: e.to_string(),
        })?;
        let path = entry.path();
        if !path.is_dir() {
            continue;
        }
        let name = entry.file_name().to_string_lossy().into_owned();
        let number = name.parse::<u64>().map_err(|_| LoadError::Layout {
            path: path.clone(),
            reason: "block folder name is not a decimal block number".into(),
        })?;
        blocks.push((number, path));
    }
    blocks.sort();
    Ok(blocks)
}

/// `block_hashes.json` of a captured-block directory (empty if absent).
pub fn load_block_hashes(dir: &Path) -> Result<BTreeMap<u64, B256>, LoadError> {
    mainnet::load_block_hashes(&dir.join("block_hashes.json")).map_err(|source| LoadError::State {
        block: "block_hashes.json".into(),
        source,
    })
}

/// Loads one block folder.
pub fn load_block(
    block_dir: &Path,
    block_hashes: &BTreeMap<u64, B256>,
    chain: &ChainConfig,
) -> Result<CapturedBlock, LoadError> {
    let name = block_dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let block: alloy_rpc_types_eth::Block = mainnet::read_json(&block_dir.join("block.json"))
        .map_err(|source| LoadError::State {
            block: name.clone(),
            source,
        })?;
    let number = block.header.inner.number;
    let spec = chain.spec_at(number, block.header.inner.timestamp);
    let Some(txs) = block.transactions.as_transactions() else {
        return Err(LoadError::Block {
            block: name,
            reason: "block.json must hold full transaction objects (eth_getBlockByNumber(N, true))"
                .into(),
        });
    };
    let prepared: Vec<PreparedTx> = txs
        .par_iter()
        .enumerate()
        .map(|(index, tx)| {
            let envelope = tx.inner.inner();
            PreparedTx::recover(envelope, Some(tx.inner.signer()), spec < SpecId::HOMESTEAD)
                .map_err(|source| LoadError::Tx {
                    block: number,
                    index,
                    hash: *envelope.tx_hash(),
                    source,
                })
        })
        .collect::<Result<_, _>>()?;
    let envelopes = txs.iter().map(|tx| tx.inner.inner().clone()).collect();
    let pre_state =
        mainnet::load_pre_state(block_dir, block_hashes).map_err(|source| LoadError::State {
            block: name,
            source,
        })?;
    let input = BlockInput {
        header: block.header.inner.clone(),
        transactions: prepared,
        withdrawals: block.withdrawals.map(|w| w.0),
        ommers: Vec::new(),
    };
    Ok(CapturedBlock {
        header: block.header,
        envelopes,
        input,
        pre_state,
    })
}
