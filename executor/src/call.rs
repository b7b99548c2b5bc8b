//! Simulating one transaction on a state without committing it: what
//! `eth_call` and `eth_estimateGas` run. Nonce, balance and base-fee checks are
//! relaxed the way clients expect of a call (a call from an account without
//! funds, at gas price zero, still runs); everything else is the block path's
//! revm setup, so a call sees exactly what a transaction would.

use crate::{error::DbError, system, BlockState, ChainConfig};
use alloy_consensus::Header;
use pel_state::StateReader;
use revm::{
    context::{result::ExecutionResult, TxEnv},
    context_interface::result::EVMError,
    ExecuteEvm,
};

/// How a simulation may differ from a transaction in a block.
#[derive(Clone, Copy, Debug)]
pub struct CallOptions {
    /// Skip the sender-balance check (eth_call with no gas price).
    pub disable_balance_check: bool,
}

/// Runs `tx` on `state` in the block `header` describes and returns its result
/// (the state changes are dropped).
pub fn simulate<S: StateReader>(
    state: S,
    chain: &ChainConfig,
    header: &Header,
    tx: TxEnv,
    options: CallOptions,
) -> Result<ExecutionResult, EVMError<DbError>> {
    let spec = chain.spec_at(header.number, header.timestamp);
    let mut cfg = crate::env::cfg_env(chain, spec, header.timestamp);
    cfg.disable_nonce_check = true;
    cfg.disable_base_fee = tx.gas_price == 0;
    cfg.disable_balance_check = options.disable_balance_check;
    cfg.disable_block_gas_limit = true;
    cfg.disable_eip3607 = true;
    let block = crate::env::block_env(header, spec, chain);
    let mut evm = system::evm_with_env(BlockState::new(state), cfg, block);
    let result = evm.transact(tx);
    if let Some(e) = evm.ctx.journaled_state.inner.database.take_error() {
        return Err(EVMError::Database(e));
    }
    result.map(|r| r.result)
}
