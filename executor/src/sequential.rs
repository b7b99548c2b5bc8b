//! The sequential reference executor: one revm instance runs the block's
//! transactions in order over a [`BlockState`]. Every other executor is checked
//! against this one.

use crate::changes::TxChanges;
use crate::{
    block::{BlockInput, BlockOutput},
    block_state::BlockState,
    error::{DbError, ExecError},
    receipt::TxReceipt,
    requests, system, ChainConfig, CodeCache,
};
use alloy_eips::eip7685::Requests;
use pel_state::StateReader;
use revm::context::result::{EVMError, ExecutionResult, Output};
use revm::handler::ExecuteEvm;
use revm::primitives::hardfork::SpecId;
use std::sync::Arc;

/// Options of a block execution.
#[derive(Clone, Debug, Default)]
pub struct ExecOptions {
    /// Apply pre-Merge block and ommer rewards after the transactions (block
    /// import and the official tests need them; receipts never depend on them).
    pub rewards: bool,
    /// Analysed code shared across blocks (a fresh cache per block when `None`).
    pub code_cache: Option<Arc<CodeCache>>,
    /// Block building: stop before the first transaction that no longer fits
    /// in the gas (or blob gas) the block has left, instead of failing the
    /// block. The output then covers that prefix of the transactions (one
    /// receipt each). Blocks are filled by the gas transactions use, as
    /// geth and anvil fill them, not by their gas limits.
    pub fill: bool,
}

/// Maps a revm error of transaction `index` to an [`ExecError`].
pub fn tx_error(block: &BlockInput, index: usize, error: EVMError<DbError>) -> ExecError {
    let number = block.header.number;
    match error {
        EVMError::Database(e) => ExecError::State {
            block: number,
            source: pel_state::StateError::Backend(e.to_string()),
        },
        other => ExecError::InvalidTx {
            block: number,
            index,
            hash: block.transactions[index].hash,
            reason: other.to_string(),
        },
    }
}

/// Checks that a transaction fits in what remains of the block's gas and blob gas.
pub fn check_block_limits(
    block: &BlockInput,
    index: usize,
    cumulative_gas: u64,
    blob_gas: u64,
    max_blob_gas: Option<u64>,
) -> Result<(), ExecError> {
    let tx = &block.transactions[index];
    let misfit = |reason| {
        Err(ExecError::InvalidTx {
            block: block.header.number,
            index,
            hash: tx.hash,
            reason,
        })
    };
    let available = block.header.gas_limit.saturating_sub(cumulative_gas);
    if tx.env.gas_limit > available {
        return misfit(format!(
            "gas limit {} exceeds the {available} gas left in the block",
            tx.env.gas_limit
        ));
    }
    if let Some(max) = max_blob_gas {
        let tx_blob_gas = tx.env.blob_hashes.len() as u64 * alloy_eips::eip4844::DATA_GAS_PER_BLOB;
        if blob_gas + tx_blob_gas > max {
            return misfit(format!(
                "blob gas {} exceeds the block's {max}",
                blob_gas + tx_blob_gas
            ));
        }
    }
    Ok(())
}

/// Builds the receipt of a transaction from its execution result.
pub fn make_receipt(tx_type: u8, result: ExecutionResult, cumulative_gas_used: u64) -> TxReceipt {
    let gas_used = result.tx_gas_used();
    let success = result.is_success();
    let contract_address = match &result {
        ExecutionResult::Success {
            output: Output::Create(_, address),
            ..
        } => *address,
        _ => None,
    };
    let logs = result.into_logs();
    TxReceipt {
        tx_type,
        success,
        cumulative_gas_used,
        gas_used,
        logs,
        contract_address,
        post_state: None,
    }
}

/// Executes `block` on top of `state`, in order, and returns what it produced.
pub fn execute_block<S: StateReader>(
    state: S,
    block: &BlockInput,
    chain: &ChainConfig,
    options: ExecOptions,
) -> Result<BlockOutput, ExecError> {
    let header = &block.header;
    let spec = chain.spec_at(header.number, header.timestamp);
    let code_cache = options.code_cache.clone().unwrap_or_default();
    let mut state = BlockState::with_code_cache(state, code_cache);
    state.reserve_for_block(block.transactions.len());
    let mut evm = system::new_evm(state, chain, header, spec);
    let max_blob_gas = max_blob_gas(chain, spec, header.timestamp);

    system::pre_block_calls(&mut evm, header, spec)?;

    let mut progress = InOrder {
        receipts: Vec::with_capacity(block.transactions.len()),
        cumulative_gas: 0,
        blob_gas: 0,
    };
    execute_in_order(&mut evm, block, max_blob_gas, options.fill, &mut progress)?;

    let (state, requests) = finish_block(evm, block, chain, spec, &options, &progress.receipts)?;
    Ok(BlockOutput {
        gas_used: progress.cumulative_gas,
        blob_gas_used: progress.blob_gas,
        receipts: progress.receipts,
        diff: state.into_diff(),
        requests,
    })
}

/// How far an in-order execution of a block's transactions got: one receipt
/// per executed transaction, and the running gas totals.
#[derive(Debug, Default)]
pub(crate) struct InOrder {
    pub receipts: Vec<TxReceipt>,
    pub cumulative_gas: u64,
    pub blob_gas: u64,
}

/// Executes `block`'s transactions from `progress.receipts.len()` to the end,
/// in order, on `evm`'s state (which must already hold every transaction
/// before that one). With `fill`, it stops before the first transaction that
/// does not fit in the block (see [`ExecOptions::fill`]).
pub(crate) fn execute_in_order<S: StateReader>(
    evm: &mut system::BlockEvm<S>,
    block: &BlockInput,
    max_blob_gas: Option<u64>,
    fill: bool,
    progress: &mut InOrder,
) -> Result<(), ExecError> {
    for index in progress.receipts.len()..block.transactions.len() {
        let tx = &block.transactions[index];
        if let Err(e) = check_block_limits(
            block,
            index,
            progress.cumulative_gas,
            progress.blob_gas,
            max_blob_gas,
        ) {
            if fill {
                break;
            }
            return Err(e);
        }
        let result = evm.transact(tx.env.clone());
        if let Some(e) = evm.ctx.journaled_state.inner.database.take_error() {
            return Err(tx_error(block, index, EVMError::Database(e)));
        }
        let out = result.map_err(|e| tx_error(block, index, e))?;
        evm.ctx
            .journaled_state
            .inner
            .database
            .commit_changes(TxChanges::from_state(out.state))
            .map_err(|e| tx_error(block, index, EVMError::Database(e)))?;
        progress.cumulative_gas += out.result.tx_gas_used();
        progress.blob_gas +=
            tx.env.blob_hashes.len() as u64 * alloy_eips::eip4844::DATA_GAS_PER_BLOB;
        progress.receipts.push(make_receipt(
            tx.tx_type,
            out.result,
            progress.cumulative_gas,
        ));
    }
    Ok(())
}

/// The steps after the last transaction: post-block system calls, withdrawals,
/// optional rewards, and the block's EIP-7685 requests (Prague on). Shared by
/// every executor so their outputs agree.
pub fn finish_block<S: StateReader>(
    mut evm: system::BlockEvm<S>,
    block: &BlockInput,
    chain: &ChainConfig,
    spec: SpecId,
    options: &ExecOptions,
    receipts: &[TxReceipt],
) -> Result<(BlockState<S>, Option<Requests>), ExecError> {
    let header = &block.header;
    let system_requests = system::post_block_calls(&mut evm, header, spec)?;
    let requests = if spec >= SpecId::PRAGUE {
        Some(
            requests::collect(chain.deposit_contract, receipts, system_requests).map_err(
                |reason| ExecError::Requests {
                    block: header.number,
                    reason,
                },
            )?,
        )
    } else {
        None
    };
    let mut state = evm.ctx.journaled_state.inner.database;
    if spec >= SpecId::SHANGHAI {
        if let Some(withdrawals) = &block.withdrawals {
            system::apply_withdrawals(&mut state, header.number, withdrawals, spec)?;
        }
    }
    if options.rewards {
        system::apply_rewards(&mut state, header, &block.ommers, spec)?;
    }
    Ok((state, requests))
}

/// The most blob gas a block of `spec` may use, from Cancun on.
pub fn max_blob_gas(chain: &ChainConfig, spec: SpecId, timestamp: u64) -> Option<u64> {
    (spec >= SpecId::CANCUN).then(|| {
        chain
            .blob_params_at(timestamp)
            .map_or(6, |p| p.max_blobs_per_block)
            * alloy_eips::eip4844::DATA_GAS_PER_BLOB
    })
}
