//! The `pel_` namespace: what the parallel executor saw. `pel_blockProfile`
//! re-executes a committed block on its parent's state and returns its
//! conflict profile (the same shape as `pel replay --profile --json`);
//! `pel_executionStats` returns the node's running totals.

use crate::{
    error::{server, RpcResult},
    Ctx,
};
use alloy_eips::BlockId;
use jsonrpsee::RpcModule;
use serde_json::Value;

/// Registers the `pel_` methods.
pub fn register(module: &mut RpcModule<Ctx>) -> Result<(), jsonrpsee::core::RegisterMethodError> {
    module.register_blocking_method("pel_blockProfile", |params, ctx, _| -> RpcResult<Value> {
        let (id,): (Option<BlockId>,) = crate::eth::parse(&params)?;
        let number = crate::eth::resolve(ctx.backend.as_ref(), id)?;
        let profile = ctx.backend.block_profile(number)?;
        serde_json::to_value(profile).map_err(server)
    })?;
    module.register_method("pel_executionStats", |_, ctx, _| -> RpcResult<Value> {
        serde_json::to_value(ctx.backend.execution_stats()).map_err(server)
    })?;
    Ok(())
}
