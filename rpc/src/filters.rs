//! Polling filters: `eth_newFilter`, `eth_newBlockFilter`,
//! `eth_newPendingTransactionFilter`, `eth_getFilterChanges`,
//! `eth_getFilterLogs`, `eth_uninstallFilter`. Block and log filters keep the
//! last block they reported; pending-transaction filters are fed by the chain
//! events. Filters not polled for five minutes are dropped, and at most
//! `Limits::max_filters` exist at once.

use crate::{
    error::{invalid_params, limit, not_found, server, RpcResult},
    eth, Ctx,
};
use alloy_eips::BlockNumberOrTag;
use alloy_primitives::{B256, U256};
use alloy_rpc_types_eth::{Filter, FilterBlockOption};
use jsonrpsee::RpcModule;
use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

const IDLE: Duration = Duration::from_secs(300);

#[derive(Debug)]
enum Kind {
    Logs(Box<Filter>),
    Blocks,
    Pending(Vec<B256>),
}

#[derive(Debug)]
struct Installed {
    kind: Kind,
    /// Last block reported.
    cursor: u64,
    polled: Instant,
}

/// The installed filters of a server.
#[derive(Debug, Default)]
pub struct Filters {
    next: Mutex<u64>,
    map: Mutex<HashMap<u64, Installed>>,
}

impl Filters {
    fn install(&self, kind: Kind, head: u64, max: usize) -> RpcResult<U256> {
        let mut map = self
            .map
            .lock()
            .map_err(|_| server("filter table poisoned"))?;
        map.retain(|_, f| f.polled.elapsed() < IDLE);
        if map.len() >= max {
            return Err(limit(format!("too many filters (limit {max})")));
        }
        let mut next = self
            .next
            .lock()
            .map_err(|_| server("filter table poisoned"))?;
        *next += 1;
        map.insert(
            *next,
            Installed {
                kind,
                cursor: head,
                polled: Instant::now(),
            },
        );
        Ok(U256::from(*next))
    }

    /// Records a new pool transaction for every pending-transaction filter.
    pub fn pending(&self, hash: B256) {
        if let Ok(mut map) = self.map.lock() {
            for f in map.values_mut() {
                if let Kind::Pending(list) = &mut f.kind {
                    if list.len() < 10_000 {
                        list.push(hash);
                    }
                }
            }
        }
    }
}

fn id_of(params: &jsonrpsee::types::Params<'_>) -> RpcResult<u64> {
    let (id,): (U256,) = crate::eth::parse(params)?;
    u64::try_from(id).map_err(|_| not_found("filter not found"))
}

/// Registers the filter methods.
pub fn register(module: &mut RpcModule<Ctx>) -> Result<(), jsonrpsee::core::RegisterMethodError> {
    module.register_method("eth_newFilter", |params, ctx, _| -> RpcResult<U256> {
        let (filter,): (Filter,) = crate::eth::parse(&params)?;
        let head = ctx.backend.store().head().map_err(server)?.number;
        let start = match &filter.block_option {
            FilterBlockOption::Range {
                from_block: Some(BlockNumberOrTag::Number(n)),
                ..
            } => n.saturating_sub(1).min(head),
            _ => head,
        };
        ctx.filters
            .install(Kind::Logs(Box::new(filter)), start, ctx.limits.max_filters)
    })?;
    module.register_method("eth_newBlockFilter", |_, ctx, _| -> RpcResult<U256> {
        let head = ctx.backend.store().head().map_err(server)?.number;
        ctx.filters
            .install(Kind::Blocks, head, ctx.limits.max_filters)
    })?;
    module.register_method(
        "eth_newPendingTransactionFilter",
        |_, ctx, _| -> RpcResult<U256> {
            let head = ctx.backend.store().head().map_err(server)?.number;
            ctx.filters
                .install(Kind::Pending(Vec::new()), head, ctx.limits.max_filters)
        },
    )?;
    module.register_method("eth_uninstallFilter", |params, ctx, _| -> RpcResult<bool> {
        let id = id_of(&params)?;
        let mut map = ctx
            .filters
            .map
            .lock()
            .map_err(|_| server("filter table poisoned"))?;
        Ok(map.remove(&id).is_some())
    })?;
    module.register_blocking_method(
        "eth_getFilterChanges",
        |params, ctx, _| -> RpcResult<serde_json::Value> {
            let id = id_of(&params)?;
            let head = ctx.backend.store().head().map_err(server)?.number;
            let (kind, from) = {
                let mut map = ctx
                    .filters
                    .map
                    .lock()
                    .map_err(|_| server("filter table poisoned"))?;
                let f = map
                    .get_mut(&id)
                    .ok_or_else(|| not_found("filter not found"))?;
                f.polled = Instant::now();
                let from = f.cursor + 1;
                f.cursor = head.max(f.cursor);
                let kind = match &mut f.kind {
                    Kind::Logs(filter) => Kind::Logs(filter.clone()),
                    Kind::Blocks => Kind::Blocks,
                    Kind::Pending(list) => Kind::Pending(std::mem::take(list)),
                };
                (kind, from)
            };
            match kind {
                Kind::Pending(list) => Ok(serde_json::json!(list)),
                Kind::Blocks => {
                    let mut hashes = Vec::new();
                    for n in from..=head {
                        if let Some(h) = pel_state::StateReader::block_hash(ctx.backend.store(), n)
                            .map_err(server)?
                        {
                            hashes.push(h);
                        }
                    }
                    Ok(serde_json::json!(hashes))
                }
                Kind::Logs(filter) => {
                    if from > head {
                        return Ok(serde_json::json!([]));
                    }
                    let mut ranged = (*filter).clone();
                    let to = match &filter.block_option {
                        FilterBlockOption::Range {
                            to_block: Some(BlockNumberOrTag::Number(n)),
                            ..
                        } => (*n).min(head),
                        _ => head,
                    };
                    if from > to {
                        return Ok(serde_json::json!([]));
                    }
                    ranged.block_option = FilterBlockOption::Range {
                        from_block: Some(BlockNumberOrTag::Number(from)),
                        to_block: Some(BlockNumberOrTag::Number(to)),
                    };
                    Ok(serde_json::json!(eth::logs(&ctx, &ranged)?))
                }
            }
        },
    )?;
    module.register_blocking_method(
        "eth_getFilterLogs",
        |params, ctx, _| -> RpcResult<serde_json::Value> {
            let id = id_of(&params)?;
            let filter = {
                let mut map = ctx
                    .filters
                    .map
                    .lock()
                    .map_err(|_| server("filter table poisoned"))?;
                let f = map
                    .get_mut(&id)
                    .ok_or_else(|| not_found("filter not found"))?;
                f.polled = Instant::now();
                match &f.kind {
                    Kind::Logs(filter) => filter.clone(),
                    _ => return Err(invalid_params("not a log filter")),
                }
            };
            Ok(serde_json::json!(eth::logs(&ctx, &filter)?))
        },
    )?;
    Ok(())
}
