//! Block-level state transitions outside transactions: the pre-block system
//! calls (EIP-4788 beacon roots, EIP-2935 block-hash history), the post-block
//! request system calls (EIP-7002, EIP-7251), withdrawals (EIP-4895) and the
//! optional pre-Merge block and ommer rewards.

use crate::changes::TxChanges;
use crate::journal::PelJournal;
use crate::{block_state::BlockState, env, ChainConfig, ExecError, Ommer};
use alloy_consensus::Header;
use alloy_eips::{eip2935, eip4788, eip4895::Withdrawal, eip7002, eip7251};
use alloy_primitives::{Address, Bytes, U256};
use pel_state::StateReader;
use revm::context::{BlockEnv, CfgEnv, Context, TxEnv};
use revm::handler::{MainBuilder, MainnetEvm, SystemCallEvm};
use revm::primitives::hardfork::SpecId;

/// The revm context the executors run a block in.
pub type BlockContext<S> =
    Context<BlockEnv, TxEnv, CfgEnv, BlockState<S>, PelJournal<BlockState<S>>, ()>;
/// The revm instance the executors run a block on.
pub type BlockEvm<S> = MainnetEvm<BlockContext<S>>;

/// A revm instance for `header`'s block over `state`.
pub fn new_evm<S: StateReader>(
    state: BlockState<S>,
    chain: &ChainConfig,
    header: &Header,
    spec: SpecId,
) -> BlockEvm<S> {
    evm_with_env(
        state,
        env::cfg_env(chain, spec, header.timestamp),
        env::block_env(header, spec, chain),
    )
}

/// A revm instance over `state` with explicit environments (the state tests
/// build their block environment from the fixture, not from a header).
pub fn evm_with_env<S: StateReader>(
    state: BlockState<S>,
    cfg: CfgEnv,
    block: BlockEnv,
) -> BlockEvm<S> {
    let spec = cfg.spec;
    let mut ctx = BlockContext::<S>::new(state, spec).with_cfg(cfg);
    ctx.block = block;
    ctx.build_mainnet()
}

fn state_err(block: u64, e: crate::error::DbError) -> ExecError {
    ExecError::State {
        block,
        source: pel_state::StateError::Backend(e.to_string()),
    }
}

/// Runs one system call and commits its state; returns its output. `checked`
/// calls must find code at the target and succeed (EIP-7002/7251); unchecked
/// ones (EIP-4788/2935) may fail silently.
fn system_call<S: StateReader>(
    evm: &mut BlockEvm<S>,
    block: u64,
    target: Address,
    data: Bytes,
    checked: bool,
) -> Result<Bytes, ExecError> {
    let has_code = evm
        .ctx
        .journaled_state
        .inner
        .database
        .account(target)
        .map_err(|e| state_err(block, e))?
        .is_some_and(|a| !a.has_no_code());
    if !has_code {
        // Nothing to run. Captured blocks lack system contracts; a real chain has them.
        return Ok(Bytes::new());
    }
    let outcome = evm.system_call_with_caller(eip4788::SYSTEM_ADDRESS, target, data);
    match outcome {
        Ok(out) => {
            if checked && !out.result.is_success() {
                return Err(ExecError::SystemCall {
                    block,
                    target,
                    reason: format!("{:?}", out.result),
                });
            }
            let output = out.result.output().cloned().unwrap_or_default();
            evm.ctx
                .journaled_state
                .inner
                .database
                .commit_changes(TxChanges::from_state(out.state))
                .map_err(|e| state_err(block, e))?;
            Ok(output)
        }
        Err(e) if checked => Err(ExecError::SystemCall {
            block,
            target,
            reason: e.to_string(),
        }),
        Err(_) => Ok(Bytes::new()),
    }
}

/// EIP-4788 and EIP-2935 calls made before the first transaction.
pub fn pre_block_calls<S: StateReader>(
    evm: &mut BlockEvm<S>,
    header: &Header,
    spec: SpecId,
) -> Result<(), ExecError> {
    if header.number == 0 {
        return Ok(());
    }
    if spec >= SpecId::CANCUN {
        if let Some(root) = header.parent_beacon_block_root {
            system_call(
                evm,
                header.number,
                eip4788::BEACON_ROOTS_ADDRESS,
                root.0.into(),
                false,
            )?;
        }
    }
    if spec >= SpecId::PRAGUE {
        system_call(
            evm,
            header.number,
            eip2935::HISTORY_STORAGE_ADDRESS,
            header.parent_hash.0.into(),
            false,
        )?;
    }
    Ok(())
}

/// EIP-7002 and EIP-7251 calls made after the last transaction (Prague on);
/// returns each call's request type and output (its requests).
pub fn post_block_calls<S: StateReader>(
    evm: &mut BlockEvm<S>,
    header: &Header,
    spec: SpecId,
) -> Result<Vec<(u8, Bytes)>, ExecError> {
    let mut outputs = Vec::new();
    if spec >= SpecId::PRAGUE {
        for (kind, target) in [
            (
                eip7002::WITHDRAWAL_REQUEST_TYPE,
                eip7002::WITHDRAWAL_REQUEST_PREDEPLOY_ADDRESS,
            ),
            (
                eip7251::CONSOLIDATION_REQUEST_TYPE,
                eip7251::CONSOLIDATION_REQUEST_PREDEPLOY_ADDRESS,
            ),
        ] {
            outputs.push((
                kind,
                system_call(evm, header.number, target, Bytes::new(), true)?,
            ));
        }
    }
    Ok(outputs)
}

/// The accounts the post-block steps touch on a chain with the standard
/// system contracts: the request predeploys and the system caller, the
/// withdrawals' recipients, and with `rewards` the beneficiary and ommers'.
pub fn post_block_accounts(block: &crate::BlockInput, rewards: bool) -> Vec<Address> {
    let mut accounts = vec![
        eip4788::SYSTEM_ADDRESS,
        eip7002::WITHDRAWAL_REQUEST_PREDEPLOY_ADDRESS,
        eip7251::CONSOLIDATION_REQUEST_PREDEPLOY_ADDRESS,
    ];
    if let Some(withdrawals) = &block.withdrawals {
        accounts.extend(withdrawals.iter().map(|w| w.address));
    }
    if rewards {
        accounts.push(block.header.beneficiary);
        accounts.extend(block.ommers.iter().map(|o| o.beneficiary));
    }
    accounts
}

/// Credits withdrawals (amounts are in gwei).
pub fn apply_withdrawals<S: StateReader>(
    state: &mut BlockState<S>,
    block: u64,
    withdrawals: &[Withdrawal],
    spec: SpecId,
) -> Result<(), ExecError> {
    for w in withdrawals {
        let wei = U256::from(w.amount) * U256::from(1_000_000_000u64);
        state
            .increment_balance(w.address, wei, spec)
            .map_err(|e| state_err(block, e))?;
    }
    Ok(())
}

/// Base block reward of a pre-Merge fork, in wei.
pub fn base_block_reward(spec: SpecId) -> Option<U256> {
    const ETH: u128 = 1_000_000_000_000_000_000;
    if spec >= SpecId::MERGE {
        None
    } else if spec >= SpecId::PETERSBURG {
        Some(U256::from(2 * ETH))
    } else if spec >= SpecId::BYZANTIUM {
        Some(U256::from(3 * ETH))
    } else {
        Some(U256::from(5 * ETH))
    }
}

/// Pre-Merge block and ommer rewards: the miner gets the base reward plus 1/32
/// of it per ommer; each ommer's miner gets (8 + ommer - block) / 8 of it.
pub fn apply_rewards<S: StateReader>(
    state: &mut BlockState<S>,
    header: &Header,
    ommers: &[Ommer],
    spec: SpecId,
) -> Result<(), ExecError> {
    let Some(reward) = base_block_reward(spec) else {
        return Ok(());
    };
    let block = header.number;
    let mut miner = reward;
    for ommer in ommers {
        miner += reward >> 5;
        let share = (U256::from(ommer.number + 8).saturating_sub(U256::from(block))) * reward
            / U256::from(8);
        state
            .increment_balance(ommer.beneficiary, share, spec)
            .map_err(|e| state_err(block, e))?;
    }
    state
        .increment_balance(header.beneficiary, miner, spec)
        .map_err(|e| state_err(block, e))
}
