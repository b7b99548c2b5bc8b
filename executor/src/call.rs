//! Simulating one transaction on a state without committing it: what
//! `eth_call` and `eth_estimateGas` run. Nonce, balance and base-fee checks are
//! relaxed the way clients expect of a call (a call from an account without
//! funds, at gas price zero, still runs); everything else is the block path's
//! revm setup, so a call sees exactly what a transaction would.

use crate::{error::DbError, system, BlockState, ChainConfig};
use alloy_consensus::Header;
use alloy_primitives::{Address, B256};
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
    simulate_touching(state, chain, header, tx, options).map(|(result, _)| result)
}

/// Every account a simulation loaded, with the storage slots it loaded there
/// (sorted), as an access list is built from.
pub type Touched = Vec<(Address, Vec<B256>)>;

/// Like [`simulate`], and also returns what the simulation touched.
pub fn simulate_touching<S: StateReader>(
    state: S,
    chain: &ChainConfig,
    header: &Header,
    tx: TxEnv,
    options: CallOptions,
) -> Result<(ExecutionResult, Touched), EVMError<DbError>> {
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
    result.map(|r| {
        let mut touched: Touched = r
            .state
            .into_iter()
            .map(|(address, account)| {
                let mut slots: Vec<B256> = account.storage.keys().map(|k| B256::from(*k)).collect();
                slots.sort_unstable();
                (address, slots)
            })
            .collect();
        touched.sort_unstable_by_key(|(a, _)| *a);
        (r.result, touched)
    })
}

/// Precompile addresses active at `spec` (left out of access lists).
pub fn precompiles(spec: revm::primitives::hardfork::SpecId) -> Vec<Address> {
    revm::precompile::Precompiles::new(revm::precompile::PrecompileSpecId::from_spec_id(spec))
        .addresses()
        .copied()
        .collect()
}
