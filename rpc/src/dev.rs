//! Dev-chain methods (`evm_`, with `anvil_` and `hardhat_` aliases) and the
//! `txpool_` namespace.

use crate::backend::AccountEdit;
use crate::{
    convert,
    error::{invalid_params, RpcResult},
    Ctx,
};
use alloy_consensus::Transaction as _;
use alloy_primitives::{Address, Bytes, B256, U256, U64};
use jsonrpsee::RpcModule;
use serde_json::{json, Map, Value};

/// Refuses to mine more blocks in one call than the limit allows.
fn check_mine_blocks(ctx: &Ctx, blocks: u64) -> RpcResult<()> {
    if blocks > ctx.limits.max_mine_blocks {
        return Err(crate::error::limit(format!(
            "cannot mine {blocks} blocks in one call; the limit is {}",
            ctx.limits.max_mine_blocks
        )));
    }
    Ok(())
}

/// Registers the dev and txpool methods.
pub fn register(module: &mut RpcModule<Ctx>) -> Result<(), jsonrpsee::core::RegisterMethodError> {
    module.register_blocking_method("evm_mine", |params, ctx, _| -> RpcResult<String> {
        // `evm_mine` takes an optional timestamp (number) or `{ "timestamp", "blocks" }`.
        let (arg,): (Option<Value>,) = crate::eth::parse(&params)?;
        let (blocks, timestamp) = match &arg {
            None | Some(Value::Null) => (1, None),
            Some(Value::Object(o)) => (
                o.get("blocks").and_then(value_u64).unwrap_or(1),
                o.get("timestamp").and_then(value_u64),
            ),
            Some(v) => (
                1,
                Some(value_u64(v).ok_or_else(|| invalid_params("bad timestamp"))?),
            ),
        };
        check_mine_blocks(&ctx, blocks)?;
        ctx.backend.mine(blocks.max(1), timestamp)?;
        Ok("0x0".into())
    })?;
    module.register_alias("anvil_mine_detailed", "evm_mine")?;
    module.register_blocking_method("anvil_mine", |params, ctx, _| -> RpcResult<Value> {
        let (blocks, interval): (Option<U256>, Option<U256>) = crate::eth::parse(&params)?;
        let blocks = blocks.map_or(1, |b| b.saturating_to::<u64>()).max(1);
        check_mine_blocks(&ctx, blocks)?;
        if let Some(interval) = interval {
            ctx.backend.increase_time(interval.saturating_to());
        }
        ctx.backend.mine(blocks, None)?;
        Ok(Value::Null)
    })?;
    module.register_alias("hardhat_mine", "anvil_mine")?;
    module.register_method("evm_increaseTime", |params, ctx, _| -> RpcResult<U64> {
        let (seconds,): (Value,) = crate::eth::parse(&params)?;
        let seconds = value_u64(&seconds).ok_or_else(|| invalid_params("bad seconds"))?;
        Ok(U64::from(ctx.backend.increase_time(seconds)))
    })?;
    module.register_alias("anvil_increaseTime", "evm_increaseTime")?;
    module.register_method(
        "evm_setNextBlockTimestamp",
        |params, ctx, _| -> RpcResult<Value> {
            let (ts,): (Value,) = crate::eth::parse(&params)?;
            let ts = value_u64(&ts).ok_or_else(|| invalid_params("bad timestamp"))?;
            ctx.backend.set_next_timestamp(ts)?;
            Ok(Value::Null)
        },
    )?;
    module.register_alias("anvil_setNextBlockTimestamp", "evm_setNextBlockTimestamp")?;
    module.register_blocking_method("evm_snapshot", |_, ctx, _| -> RpcResult<U64> {
        Ok(U64::from(ctx.backend.snapshot()?))
    })?;
    module.register_alias("anvil_snapshot", "evm_snapshot")?;
    module.register_blocking_method("evm_revert", |params, ctx, _| -> RpcResult<bool> {
        let (id,): (Value,) = crate::eth::parse(&params)?;
        let id = value_u64(&id).ok_or_else(|| invalid_params("bad snapshot id"))?;
        Ok(ctx.backend.revert(id)?)
    })?;
    module.register_alias("anvil_revert", "evm_revert")?;
    module.register_blocking_method("anvil_setBalance", |params, ctx, _| -> RpcResult<Value> {
        let (address, balance): (Address, U256) = crate::eth::parse(&params)?;
        let edit = AccountEdit {
            balance: Some(balance),
            ..Default::default()
        };
        ctx.backend.set_account(address, edit)?;
        Ok(Value::Null)
    })?;
    module.register_alias("hardhat_setBalance", "anvil_setBalance")?;
    module.register_blocking_method("anvil_setNonce", |params, ctx, _| -> RpcResult<Value> {
        let (address, nonce): (Address, U256) = crate::eth::parse(&params)?;
        let nonce = u64::try_from(nonce).map_err(|_| invalid_params("nonce overflows u64"))?;
        let edit = AccountEdit {
            nonce: Some(nonce),
            ..Default::default()
        };
        ctx.backend.set_account(address, edit)?;
        Ok(Value::Null)
    })?;
    module.register_alias("hardhat_setNonce", "anvil_setNonce")?;
    module.register_blocking_method("anvil_setCode", |params, ctx, _| -> RpcResult<Value> {
        let (address, code): (Address, Bytes) = crate::eth::parse(&params)?;
        let edit = AccountEdit {
            code: Some(code),
            ..Default::default()
        };
        ctx.backend.set_account(address, edit)?;
        Ok(Value::Null)
    })?;
    module.register_alias("hardhat_setCode", "anvil_setCode")?;
    module.register_blocking_method("anvil_setStorageAt", |params, ctx, _| -> RpcResult<bool> {
        let (address, slot, value): (Address, U256, B256) = crate::eth::parse(&params)?;
        let edit = AccountEdit {
            storage: Some((slot, U256::from_be_bytes(value.0))),
            ..Default::default()
        };
        ctx.backend.set_account(address, edit)?;
        Ok(true)
    })?;
    module.register_alias("hardhat_setStorageAt", "anvil_setStorageAt")?;
    module.register_method("txpool_status", |_, ctx, _| -> RpcResult<Value> {
        let content = ctx.backend.pool_content();
        let count = |v: &Vec<(alloy_primitives::Address, Vec<_>)>| {
            v.iter().map(|(_, t)| t.len()).sum::<usize>()
        };
        Ok(json!({
            "pending": U64::from(count(&content.pending)),
            "queued": U64::from(count(&content.queued)),
        }))
    })?;
    module.register_method("txpool_content", |_, ctx, _| -> RpcResult<Value> {
        let content = ctx.backend.pool_content();
        let section =
            |list: &Vec<(alloy_primitives::Address, Vec<alloy_consensus::TxEnvelope>)>| {
                let mut by_sender = Map::new();
                for (sender, txs) in list {
                    let mut by_nonce = Map::new();
                    for tx in txs {
                        by_nonce.insert(
                            tx.nonce().to_string(),
                            json!(convert::pending_transaction(tx.clone(), *sender)),
                        );
                    }
                    by_sender.insert(sender.to_checksum(None), Value::Object(by_nonce));
                }
                Value::Object(by_sender)
            };
        Ok(json!({ "pending": section(&content.pending), "queued": section(&content.queued) }))
    })?;
    Ok(())
}

/// A number given as JSON number or (hex or decimal) string.
fn value_u64(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => match s.strip_prefix("0x") {
            Some(hex) => u64::from_str_radix(hex, 16).ok(),
            None => s.parse().ok(),
        },
        _ => None,
    }
}
