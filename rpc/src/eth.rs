//! The `eth_` namespace (reads, calls, transactions, logs, filters) and the
//! small `net_` and `web3_` namespaces.

use crate::{
    backend::{Backend, StoredBlock},
    convert,
    error::{invalid_params, limit, not_found, reverted, server, RpcResult},
    Ctx,
};
use alloy_consensus::TxEnvelope;
use alloy_eips::{eip2718::Decodable2718, BlockId, BlockNumberOrTag};
use alloy_primitives::{keccak256, Address, Bytes, TxKind, B256, U256, U64};
use alloy_rpc_types_eth::{
    state::StateOverride, BlockOverrides, Filter, FilterBlockOption, Log, TransactionRequest,
};
use jsonrpsee::{types::Params, RpcModule};
use pel_executor::{
    call::{precompiles, simulate_touching, CallOptions, Touched},
    revm::context::{result::ExecutionResult, TxEnv},
};
use pel_state::{AccountInfo, StateReader};
use std::sync::Arc;

/// Resolves a block tag or hash to a committed block number.
pub fn resolve(backend: &dyn Backend, id: Option<BlockId>) -> RpcResult<u64> {
    let head = backend.store().head().map_err(server)?.number;
    match id.unwrap_or(BlockId::Number(BlockNumberOrTag::Latest)) {
        BlockId::Number(tag) => match tag {
            BlockNumberOrTag::Earliest => Ok(0),
            BlockNumberOrTag::Number(n) if n <= head => Ok(n),
            BlockNumberOrTag::Number(n) => Err(server(format!(
                "header not found: block {n} is beyond the head {head}"
            ))),
            _ => Ok(head),
        },
        BlockId::Hash(h) => backend
            .store()
            .block_number(&h.block_hash)
            .map_err(server)?
            .ok_or_else(|| server(format!("header not found: block {}", h.block_hash))),
    }
}

fn block_at(backend: &dyn Backend, number: u64) -> RpcResult<Arc<StoredBlock>> {
    backend
        .block(number)?
        .ok_or_else(|| server(format!("header not found: block {number}")))
}

fn optional_block(backend: &dyn Backend, id: BlockId) -> RpcResult<Option<Arc<StoredBlock>>> {
    match id {
        BlockId::Hash(h) => match backend
            .store()
            .block_number(&h.block_hash)
            .map_err(server)?
        {
            Some(n) => Ok(backend.block(n)?),
            None => Ok(None),
        },
        BlockId::Number(BlockNumberOrTag::Number(n)) => Ok(backend.block(n)?),
        other => {
            let n = resolve(backend, Some(other))?;
            Ok(backend.block(n)?)
        }
    }
}

/// Transaction `index` of a block, if both exist.
fn transaction_at(
    ctx: &Ctx,
    id: BlockId,
    index: U64,
) -> RpcResult<Option<alloy_rpc_types_eth::Transaction>> {
    let block = optional_block(ctx.backend.as_ref(), id)?;
    let i = index.saturating_to::<usize>();
    Ok(block
        .filter(|b| i < b.block.body.transactions.len())
        .map(|b| convert::transaction(&b, i)))
}

/// A state reader with `eth_call` state overrides applied on top.
struct Overridden<S> {
    inner: S,
    overrides: StateOverride,
    codes: std::collections::HashMap<B256, Bytes>,
}

impl<S: StateReader> StateReader for Overridden<S> {
    fn account(&self, address: &Address) -> Result<Option<AccountInfo>, pel_state::StateError> {
        let base = self.inner.account(address)?;
        let Some(o) = self.overrides.get(address) else {
            return Ok(base);
        };
        let mut info = base.unwrap_or_default();
        if let Some(b) = o.balance {
            info.balance = b;
        }
        if let Some(n) = o.nonce {
            info.nonce = n;
        }
        if let Some(code) = &o.code {
            info.code_hash = keccak256(code);
        }
        Ok(Some(info))
    }
    fn code(&self, code_hash: &B256) -> Result<Option<Bytes>, pel_state::StateError> {
        match self.codes.get(code_hash) {
            Some(c) => Ok(Some(c.clone())),
            None => self.inner.code(code_hash),
        }
    }
    fn storage(&self, address: &Address, slot: &U256) -> Result<U256, pel_state::StateError> {
        if let Some(o) = self.overrides.get(address) {
            let key = B256::from(*slot);
            if let Some(state) = &o.state {
                return Ok(state
                    .get(&key)
                    .map_or(U256::ZERO, |v| U256::from_be_bytes(v.0)));
            }
            if let Some(diff) = &o.state_diff {
                if let Some(v) = diff.get(&key) {
                    return Ok(U256::from_be_bytes(v.0));
                }
            }
        }
        self.inner.storage(address, slot)
    }
    fn block_hash(&self, number: u64) -> Result<Option<B256>, pel_state::StateError> {
        self.inner.block_hash(number)
    }
    fn has_storage(&self, address: &Address) -> Result<bool, pel_state::StateError> {
        if let Some(state) = self.overrides.get(address).and_then(|o| o.state.as_ref()) {
            return Ok(state.values().any(|v| !v.is_zero()));
        }
        self.inner.has_storage(address)
    }
}

/// The revm environment of a call request.
fn call_env(request: &TransactionRequest, chain_id: u64, gas: u64, base_fee: u128) -> TxEnv {
    let price = request
        .max_fee_per_gas
        .or(request.gas_price)
        .unwrap_or_default();
    let tip = request.max_priority_fee_per_gas;
    let kind = request.to.unwrap_or(TxKind::Create);
    let data = request.input.input().cloned().unwrap_or_default();
    let tx_type = if request.authorization_list.is_some() {
        4
    } else if request.blob_versioned_hashes.is_some() {
        3
    } else if request.max_fee_per_gas.is_some() || request.max_priority_fee_per_gas.is_some() {
        2
    } else if request.access_list.is_some() {
        1
    } else {
        0
    };
    let _ = base_fee;
    TxEnv {
        tx_type,
        caller: request.from.unwrap_or_default(),
        gas_limit: gas,
        gas_price: price,
        kind,
        value: request.value.unwrap_or_default(),
        data,
        nonce: request.nonce.unwrap_or_default(),
        chain_id: Some(chain_id),
        access_list: request.access_list.clone().unwrap_or_default(),
        gas_priority_fee: if tx_type >= 2 { tip.or(Some(0)) } else { None },
        blob_hashes: request.blob_versioned_hashes.clone().unwrap_or_default(),
        max_fee_per_blob_gas: request.max_fee_per_blob_gas.unwrap_or_default(),
        authorization_list: request
            .authorization_list
            .clone()
            .unwrap_or_default()
            .into_iter()
            .map(pel_executor::revm::context::either::Either::Left)
            .collect(),
    }
}

/// Runs a call request at a block; `Ok(Err(output))` is a revert or halt.
fn run_call(
    ctx: &Ctx,
    request: &TransactionRequest,
    at: Option<BlockId>,
    overrides: Option<StateOverride>,
    block_overrides: Option<BlockOverrides>,
    gas: Option<u64>,
) -> RpcResult<ExecutionResult> {
    run_call_touching(ctx, request, at, overrides, block_overrides, gas).map(|(r, _)| r)
}

/// Rounds of `eth_createAccessList` before it settles on the last list.
const ACCESS_LIST_ROUNDS: usize = 8;

/// `eth_createAccessList`: the accounts and slots the call touches (without
/// the sender, the recipient unless it has slots, precompiles and the block
/// beneficiary), re-run with the list applied until it stops changing, as geth
/// does; gas used is the last run's.
fn create_access_list(
    ctx: &Ctx,
    mut request: TransactionRequest,
    at: Option<BlockId>,
) -> RpcResult<serde_json::Value> {
    use alloy_eips::eip2930::{AccessList, AccessListItem};
    let backend = ctx.backend.as_ref();
    let number = resolve(backend, at)?;
    let header = block_at(backend, number)?.block.header.clone();
    let spec = backend.chain().spec_at(header.number, header.timestamp);
    let mut excluded = precompiles(spec);
    excluded.push(request.from.unwrap_or_default());
    excluded.push(header.beneficiary);
    if let Some(TxKind::Call(to)) = request.to {
        excluded.push(to);
    }
    let at = Some(BlockId::number(number));
    let mut list = request.access_list.clone().unwrap_or_default();
    let mut result = None;
    for _ in 0..ACCESS_LIST_ROUNDS {
        request.access_list = Some(list.clone());
        let (r, touched): (ExecutionResult, Touched) =
            run_call_touching(ctx, &request, at, None, None, None)?;
        result = Some(r);
        let next = AccessList(
            touched
                .into_iter()
                .filter(|(address, slots)| !slots.is_empty() || !excluded.contains(address))
                .map(|(address, storage_keys)| AccessListItem {
                    address,
                    storage_keys,
                })
                .collect(),
        );
        if next == list {
            break;
        }
        list = next;
    }
    let result = result.ok_or_else(|| server("no access list round ran"))?;
    let mut out = serde_json::json!({
        "accessList": list,
        "gasUsed": U64::from(result.tx_gas_used()),
    });
    match &result {
        ExecutionResult::Success { .. } => {}
        ExecutionResult::Revert { .. } => out["error"] = "execution reverted".into(),
        ExecutionResult::Halt { reason, .. } => out["error"] = format!("{reason:?}").into(),
    }
    Ok(out)
}

/// [`run_call`], also returning what the call touched.
fn run_call_touching(
    ctx: &Ctx,
    request: &TransactionRequest,
    at: Option<BlockId>,
    overrides: Option<StateOverride>,
    block_overrides: Option<BlockOverrides>,
    gas: Option<u64>,
) -> RpcResult<(ExecutionResult, Touched)> {
    let backend = ctx.backend.as_ref();
    let number = resolve(backend, at)?;
    let stored = block_at(backend, number)?;
    let mut header = stored.block.header.clone();
    if let Some(b) = block_overrides {
        if let Some(n) = b.number {
            header.number = n.saturating_to();
        }
        if let Some(t) = b.time {
            header.timestamp = t;
        }
        if let Some(g) = b.gas_limit {
            header.gas_limit = g;
        }
        if let Some(c) = b.coinbase {
            header.beneficiary = c;
        }
        if let Some(f) = b.base_fee {
            header.base_fee_per_gas = Some(f.saturating_to());
        }
        if let Some(r) = b.random {
            header.mix_hash = r;
        }
    }
    let limit = gas_cap(ctx, number)?;
    let gas = gas
        .or(request.gas)
        .unwrap_or(limit)
        .min(ctx.limits.call_gas_cap);
    let state = backend.store().at_block(number).map_err(server)?;
    let overrides = overrides.unwrap_or_default();
    let codes = overrides
        .values()
        .filter_map(|o| o.code.clone())
        .map(|c| (keccak256(&c), c))
        .collect();
    let state = Overridden {
        inner: state,
        overrides,
        codes,
    };
    let env = call_env(
        request,
        backend.chain().chain_id,
        gas,
        header.base_fee_per_gas.unwrap_or_default() as u128,
    );
    let options = CallOptions {
        disable_balance_check: env.gas_price == 0,
    };
    simulate_touching(state, backend.chain(), &header, env, options)
        .map_err(|e| server(e.to_string()))
}

/// Runs a simulation on a blocking thread; the client gets geth's timeout
/// error once `call_timeout` passes (the simulation itself is bounded by the
/// gas cap and finishes in the background).
async fn with_timeout<T: Send + 'static>(
    ctx: Arc<Ctx>,
    f: impl FnOnce(&Ctx) -> RpcResult<T> + Send + 'static,
) -> RpcResult<T> {
    let timeout = ctx.limits.call_timeout;
    let task = tokio::task::spawn_blocking(move || f(&ctx));
    match tokio::time::timeout(timeout, task).await {
        Ok(Ok(result)) => result,
        Ok(Err(e)) => Err(server(format!("execution failed: {e}"))),
        Err(_) => Err(server(format!(
            "execution aborted (timeout = {}ms)",
            timeout.as_millis()
        ))),
    }
}

fn call_output(result: ExecutionResult) -> RpcResult<Bytes> {
    match result {
        ExecutionResult::Success { output, .. } => Ok(output.into_data()),
        ExecutionResult::Revert { output, .. } => Err(reverted(&output)),
        ExecutionResult::Halt { reason, .. } => {
            Err(server(format!("execution halted: {reason:?}")))
        }
    }
}

/// The most gas a call at block `number` may use: the configured cap, the
/// block's gas limit, and from Osaka on the per-transaction cap (EIP-7825).
fn gas_cap(ctx: &Ctx, number: u64) -> RpcResult<u64> {
    let backend = ctx.backend.as_ref();
    let header = &block_at(backend, number)?.block.header;
    let mut cap = ctx.limits.call_gas_cap.min(header.gas_limit);
    if backend.chain().spec_at(header.number, header.timestamp) >= pel_executor::SpecId::OSAKA {
        cap = cap.min(1 << 24);
    }
    Ok(cap)
}

/// Smallest gas limit at which the request succeeds (binary search).
fn estimate(
    ctx: &Ctx,
    request: &TransactionRequest,
    at: Option<BlockId>,
    overrides: Option<StateOverride>,
) -> RpcResult<U64> {
    let limit = gas_cap(ctx, resolve(ctx.backend.as_ref(), at)?)?;
    let cap = request.gas.unwrap_or(limit).min(limit);
    let run = |gas: u64| run_call(ctx, request, at, overrides.clone(), None, Some(gas));
    let first = run(cap)?;
    let used = match &first {
        ExecutionResult::Success { gas, .. } => gas.tx_gas_used(),
        ExecutionResult::Revert { output, .. } => return Err(reverted(output)),
        ExecutionResult::Halt { reason, .. } => {
            return Err(server(format!(
                "gas required exceeds allowance ({cap}): {reason:?}"
            )))
        }
    };
    let mut low = used.saturating_sub(1).max(20_999);
    let mut high = cap;
    // Most calls succeed at what they used plus refunds; try that first.
    let guess = (used * 64 / 63).max(used + 2300).min(cap);
    if matches!(run(guess)?, ExecutionResult::Success { .. }) {
        high = guess;
    } else {
        low = guess;
    }
    while high - low > 1 && (high - low) * 1000 > high {
        let mid = low + (high - low) / 2;
        if matches!(run(mid)?, ExecutionResult::Success { .. }) {
            high = mid;
        } else {
            low = mid;
        }
    }
    Ok(U64::from(high))
}

fn logs_for(ctx: &Ctx, filter: &Filter) -> RpcResult<Vec<Log>> {
    let backend = ctx.backend.as_ref();
    let blocks: Vec<Arc<StoredBlock>> = match &filter.block_option {
        FilterBlockOption::AtBlockHash(hash) => {
            let n = backend
                .store()
                .block_number(hash)
                .map_err(server)?
                .ok_or_else(|| not_found(format!("block {hash} not found")))?;
            vec![block_at(backend, n)?]
        }
        FilterBlockOption::Range {
            from_block,
            to_block,
        } => {
            let head = backend.store().head().map_err(server)?.number;
            let num = |b: &Option<BlockNumberOrTag>| match b {
                Some(BlockNumberOrTag::Number(n)) => *n,
                Some(BlockNumberOrTag::Earliest) => 0,
                _ => head,
            };
            let (from, to) = (num(from_block), num(to_block));
            if from > to {
                return Err(invalid_params(format!(
                    "invalid block range: fromBlock {from} is after toBlock {to}"
                )));
            }
            if from > head {
                return Ok(Vec::new());
            }
            let to = to.min(head);
            if to - from >= ctx.limits.max_log_range {
                return Err(limit(format!(
                    "block range {}..={} exceeds the limit of {} blocks",
                    from, to, ctx.limits.max_log_range
                )));
            }
            (from..=to)
                .map(|n| block_at(backend, n))
                .collect::<RpcResult<_>>()?
        }
    };
    let mut out = Vec::new();
    for stored in blocks {
        if !filter.matches_bloom(stored.block.header.logs_bloom) {
            continue;
        }
        for log in convert::block_logs(&stored) {
            if filter.matches(&log.inner) {
                out.push(log);
                if out.len() > ctx.limits.max_logs {
                    return Err(limit(format!(
                        "query returns more than {} logs; narrow the range",
                        ctx.limits.max_logs
                    )));
                }
            }
        }
    }
    Ok(out)
}

/// Fills what a dev account's transaction request leaves out and signs it.
fn fill_and_sign(ctx: &Ctx, mut request: TransactionRequest) -> RpcResult<TxEnvelope> {
    let backend = ctx.backend.as_ref();
    let from = request.from.ok_or_else(|| invalid_params("missing from"))?;
    if request.nonce.is_none() {
        request.nonce = Some(backend.pending_nonce(from)?);
    }
    request.chain_id = Some(backend.chain().chain_id);
    let head = block_at(backend, resolve(backend, None)?)?;
    let base_fee = head.block.header.base_fee_per_gas.unwrap_or_default() as u128;
    if request.gas_price.is_none() && request.max_fee_per_gas.is_none() {
        let tip = request.max_priority_fee_per_gas.unwrap_or(1_000_000_000);
        request.max_priority_fee_per_gas = Some(tip);
        request.max_fee_per_gas = Some(base_fee * 2 + tip);
    }
    if request.max_fee_per_gas.is_some() && request.max_priority_fee_per_gas.is_none() {
        request.max_priority_fee_per_gas = Some(0);
    }
    if request.gas.is_none() {
        request.gas = Some(estimate(ctx, &request, None, None)?.to());
    }
    let typed = request
        .build_typed_tx()
        .map_err(|_| invalid_params("incomplete transaction request"))?;
    Ok(backend.sign_transaction(from, typed)?)
}

/// Parses positional params into a tuple; trailing optional params may be
/// left out (they are filled with `null`), extra ones are an error.
pub(crate) fn parse<T: serde::de::DeserializeOwned>(params: &Params<'_>) -> RpcResult<T> {
    let value: serde_json::Value = match params.as_str() {
        None => serde_json::Value::Array(vec![]),
        Some(_) => params
            .parse()
            .map_err(|e| invalid_params(format!("invalid params: {}", e.message())))?,
    };
    let mut items = match value {
        serde_json::Value::Array(items) => items,
        serde_json::Value::Null => vec![],
        _ => return Err(invalid_params("params must be an array")),
    };
    let first = match serde_json::from_value::<T>(serde_json::Value::Array(items.clone())) {
        Ok(t) => return Ok(t),
        Err(e) => e,
    };
    for _ in 0..4 {
        items.push(serde_json::Value::Null);
        if let Ok(t) = serde_json::from_value::<T>(serde_json::Value::Array(items.clone())) {
            return Ok(t);
        }
    }
    Err(invalid_params(format!("invalid params: {first}")))
}

/// Waits (at most five seconds) until `hash` is in a committed block or has
/// left the pool; `events` was subscribed before the transaction was sent, so
/// its block cannot be missed.
async fn wait_included(
    ctx: &Ctx,
    mut events: tokio::sync::broadcast::Receiver<crate::ChainEvent>,
    hash: B256,
) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Err(_) => return,
            Ok(Ok(crate::ChainEvent::Block(block))) => {
                if block
                    .block
                    .body
                    .transactions
                    .iter()
                    .any(|t| *t.tx_hash() == hash)
                    || ctx.backend.pool_transaction(&hash).is_none()
                {
                    return;
                }
            }
            Ok(Ok(_)) => {}
            Ok(Err(tokio::sync::broadcast::error::RecvError::Lagged(_))) => {
                if ctx.backend.pool_transaction(&hash).is_none() {
                    return;
                }
            }
            Ok(Err(_)) => return,
        }
    }
}

/// Registers the `eth_`, `net_` and `web3_` methods.
pub fn register(module: &mut RpcModule<Ctx>) -> Result<(), jsonrpsee::core::RegisterMethodError> {
    module.register_method("eth_chainId", |_, ctx, _| -> RpcResult<U64> {
        Ok(U64::from(ctx.backend.chain().chain_id))
    })?;
    module.register_method("net_version", |_, ctx, _| -> RpcResult<String> {
        Ok(ctx.backend.chain().chain_id.to_string())
    })?;
    module.register_method("net_listening", |_, _, _| -> RpcResult<bool> { Ok(true) })?;
    module.register_method("net_peerCount", |_, _, _| -> RpcResult<U64> {
        Ok(U64::ZERO)
    })?;
    module.register_method("web3_clientVersion", |_, _, _| -> RpcResult<String> {
        Ok(format!("pel/v{}", env!("CARGO_PKG_VERSION")))
    })?;
    module.register_method("web3_sha3", |params, _, _| -> RpcResult<B256> {
        let (data,): (Bytes,) = parse(&params)?;
        Ok(keccak256(&data))
    })?;
    module.register_method("eth_syncing", |_, _, _| -> RpcResult<bool> { Ok(false) })?;
    module.register_method("eth_mining", |_, _, _| -> RpcResult<bool> { Ok(true) })?;
    module.register_method("eth_accounts", |_, ctx, _| -> RpcResult<Vec<Address>> {
        Ok(ctx.backend.accounts())
    })?;
    module.register_method("eth_blockNumber", |_, ctx, _| -> RpcResult<U64> {
        Ok(U64::from(
            ctx.backend.store().head().map_err(server)?.number,
        ))
    })?;
    module.register_method("eth_gasPrice", |_, ctx, _| -> RpcResult<U256> {
        let head = block_at(ctx.backend.as_ref(), resolve(ctx.backend.as_ref(), None)?)?;
        let base = head.block.header.base_fee_per_gas.unwrap_or_default();
        Ok(U256::from(base as u128 + 1_000_000_000))
    })?;
    module.register_method("eth_maxPriorityFeePerGas", |_, _, _| -> RpcResult<U256> {
        Ok(U256::from(1_000_000_000u64))
    })?;
    module.register_method(
        "eth_feeHistory",
        |params, ctx, _| -> RpcResult<serde_json::Value> {
            let (count, newest, percentiles): (U64, BlockNumberOrTag, Option<Vec<f64>>) =
                parse(&params)?;
            let backend = ctx.backend.as_ref();
            let newest = resolve(backend, Some(BlockId::Number(newest)))?;
            let count = count.to::<u64>().clamp(1, 1024).min(newest + 1);
            let oldest = newest + 1 - count;
            let mut base_fees = Vec::new();
            let mut ratios = Vec::new();
            let mut rewards = Vec::new();
            let mut last = None;
            for n in oldest..=newest {
                let b = block_at(backend, n)?;
                let h = &b.block.header;
                base_fees.push(U256::from(h.base_fee_per_gas.unwrap_or_default()));
                ratios.push(h.gas_used as f64 / h.gas_limit.max(1) as f64);
                if let Some(p) = &percentiles {
                    rewards.push(vec![U256::from(1_000_000_000u64); p.len()]);
                }
                last = Some(h.clone());
            }
            let next = last
                .and_then(|h| h.next_block_base_fee(alloy_eips::eip1559::BaseFeeParams::ethereum()))
                .unwrap_or_default();
            base_fees.push(U256::from(next));
            let mut out = serde_json::json!({
                "oldestBlock": U64::from(oldest),
                "baseFeePerGas": base_fees,
                "gasUsedRatio": ratios,
            });
            if percentiles.is_some() {
                out["reward"] = serde_json::json!(rewards);
            }
            Ok(out)
        },
    )?;
    module.register_method("eth_getBalance", |params, ctx, _| -> RpcResult<U256> {
        let (address, at): (Address, Option<BlockId>) = parse(&params)?;
        let n = resolve(ctx.backend.as_ref(), at)?;
        let state = ctx.backend.store().at_block(n).map_err(server)?;
        Ok(state
            .account(&address)
            .map_err(server)?
            .map(|a| a.balance)
            .unwrap_or_default())
    })?;
    module.register_method(
        "eth_getTransactionCount",
        |params, ctx, _| -> RpcResult<U64> {
            let (address, at): (Address, Option<BlockId>) = parse(&params)?;
            if matches!(at, Some(BlockId::Number(BlockNumberOrTag::Pending))) {
                return Ok(U64::from(ctx.backend.pending_nonce(address)?));
            }
            let n = resolve(ctx.backend.as_ref(), at)?;
            let state = ctx.backend.store().at_block(n).map_err(server)?;
            Ok(U64::from(
                state
                    .account(&address)
                    .map_err(server)?
                    .map(|a| a.nonce)
                    .unwrap_or_default(),
            ))
        },
    )?;
    module.register_method("eth_getCode", |params, ctx, _| -> RpcResult<Bytes> {
        let (address, at): (Address, Option<BlockId>) = parse(&params)?;
        let n = resolve(ctx.backend.as_ref(), at)?;
        let state = ctx.backend.store().at_block(n).map_err(server)?;
        match state.account(&address).map_err(server)? {
            Some(a) if !a.has_no_code() => Ok(state
                .code(&a.code_hash)
                .map_err(server)?
                .unwrap_or_default()),
            _ => Ok(Bytes::new()),
        }
    })?;
    module.register_method("eth_getStorageAt", |params, ctx, _| -> RpcResult<B256> {
        let (address, slot, at): (Address, U256, Option<BlockId>) = parse(&params)?;
        let n = resolve(ctx.backend.as_ref(), at)?;
        let state = ctx.backend.store().at_block(n).map_err(server)?;
        Ok(B256::from(state.storage(&address, &slot).map_err(server)?))
    })?;
    module.register_async_method("eth_call", |params, ctx, _| async move {
        let (request, at, overrides, block_overrides): (
            TransactionRequest,
            Option<BlockId>,
            Option<StateOverride>,
            Option<BlockOverrides>,
        ) = parse(&params)?;
        with_timeout(ctx, move |ctx| {
            call_output(run_call(
                ctx,
                &request,
                at,
                overrides,
                block_overrides,
                None,
            )?)
        })
        .await
    })?;
    module.register_async_method("eth_estimateGas", |params, ctx, _| async move {
        let (request, at, overrides): (TransactionRequest, Option<BlockId>, Option<StateOverride>) =
            parse(&params)?;
        with_timeout(ctx, move |ctx| estimate(ctx, &request, at, overrides)).await
    })?;
    module.register_async_method("eth_createAccessList", |params, ctx, _| async move {
        let (request, at): (TransactionRequest, Option<BlockId>) = parse(&params)?;
        with_timeout(ctx, move |ctx| create_access_list(ctx, request, at)).await
    })?;
    module.register_async_method("eth_sendRawTransaction", |params, ctx, _| async move {
        let (raw,): (Bytes,) = parse(&params)?;
        if raw.len() > ctx.limits.max_tx_bytes {
            return Err(server(format!(
                "oversized data: {} bytes, limit {}",
                raw.len(),
                ctx.limits.max_tx_bytes
            )));
        }
        let tx = TxEnvelope::decode_2718(&mut raw.as_ref())
            .map_err(|e| invalid_params(format!("invalid transaction encoding: {e}")))?;
        let events = ctx.backend.subscribe();
        let hash = ctx.backend.submit(tx)?;
        if ctx.backend.automine() {
            wait_included(&ctx, events, hash).await;
        }
        RpcResult::Ok(hash)
    })?;
    module.register_blocking_method(
        "eth_sendTransaction",
        |params, ctx, _| -> RpcResult<B256> {
            let (request,): (TransactionRequest,) = parse(&params)?;
            let tx = fill_and_sign(&ctx, request)?;
            let events = ctx.backend.subscribe();
            let hash = ctx.backend.submit(tx)?;
            if ctx.backend.automine() {
                // A blocking-pool thread, not a runtime worker: blocking here is fine.
                tokio::runtime::Handle::current().block_on(wait_included(&ctx, events, hash));
            }
            Ok(hash)
        },
    )?;
    module.register_blocking_method(
        "eth_signTransaction",
        |params, ctx, _| -> RpcResult<Bytes> {
            let (request,): (TransactionRequest,) = parse(&params)?;
            Ok(convert::raw(&fill_and_sign(&ctx, request)?))
        },
    )?;
    module.register_method("eth_sign", |params, ctx, _| -> RpcResult<Bytes> {
        let (address, message): (Address, Bytes) = parse(&params)?;
        let hash = alloy_primitives::eip191_hash_message(&message);
        let sig = ctx.backend.sign_hash(address, hash)?;
        Ok(sig.as_bytes().to_vec().into())
    })?;
    module.register_method(
        "eth_signTypedData_v4",
        |params, ctx, _| -> RpcResult<Bytes> {
            // The typed data comes as a JSON string (MetaMask, ethers) or an object.
            let (address, data): (Address, serde_json::Value) = parse(&params)?;
            let data = match data {
                serde_json::Value::String(text) => serde_json::from_str(&text)
                    .map_err(|e| invalid_params(format!("invalid typed data: {e}")))?,
                other => other,
            };
            let typed: alloy_dyn_abi::TypedData = serde_json::from_value(data)
                .map_err(|e| invalid_params(format!("invalid typed data: {e}")))?;
            let hash = typed
                .eip712_signing_hash()
                .map_err(|e| invalid_params(format!("invalid typed data: {e}")))?;
            let sig = ctx.backend.sign_hash(address, hash)?;
            Ok(sig.as_bytes().to_vec().into())
        },
    )?;
    module.register_method("personal_sign", |params, ctx, _| -> RpcResult<Bytes> {
        let (message, address): (Bytes, Address) = parse(&params)?;
        let hash = alloy_primitives::eip191_hash_message(&message);
        let sig = ctx.backend.sign_hash(address, hash)?;
        Ok(sig.as_bytes().to_vec().into())
    })?;
    module.register_method(
        "eth_getTransactionByHash",
        |params, ctx, _| -> RpcResult<Option<alloy_rpc_types_eth::Transaction>> {
            let (hash,): (B256,) = parse(&params)?;
            if let Some((n, i)) = ctx
                .backend
                .store()
                .transaction_location(&hash)
                .map_err(server)?
            {
                let stored = block_at(ctx.backend.as_ref(), n)?;
                return Ok(Some(convert::transaction(&stored, i as usize)));
            }
            Ok(ctx
                .backend
                .pool_transaction(&hash)
                .map(|(tx, sender)| convert::pending_transaction(tx, sender)))
        },
    )?;
    module.register_method(
        "eth_getTransactionReceipt",
        |params, ctx, _| -> RpcResult<Option<alloy_rpc_types_eth::TransactionReceipt>> {
            let (hash,): (B256,) = parse(&params)?;
            match ctx
                .backend
                .store()
                .transaction_location(&hash)
                .map_err(server)?
            {
                Some((n, i)) => {
                    let stored = block_at(ctx.backend.as_ref(), n)?;
                    Ok(Some(convert::receipt(&stored, i as usize)))
                }
                None => Ok(None),
            }
        },
    )?;
    module.register_method(
        "eth_getBlockByNumber",
        |params, ctx, _| -> RpcResult<Option<alloy_rpc_types_eth::Block>> {
            let (tag, full): (BlockNumberOrTag, Option<bool>) = parse(&params)?;
            let block = optional_block(ctx.backend.as_ref(), BlockId::Number(tag))?;
            Ok(block.map(|b| convert::block(&b, full.unwrap_or(false))))
        },
    )?;
    module.register_method(
        "eth_getBlockByHash",
        |params, ctx, _| -> RpcResult<Option<alloy_rpc_types_eth::Block>> {
            let (hash, full): (B256, Option<bool>) = parse(&params)?;
            let block = optional_block(ctx.backend.as_ref(), BlockId::from(hash))?;
            Ok(block.map(|b| convert::block(&b, full.unwrap_or(false))))
        },
    )?;
    module.register_method(
        "eth_getBlockReceipts",
        |params, ctx, _| -> RpcResult<Option<Vec<alloy_rpc_types_eth::TransactionReceipt>>> {
            let (id,): (BlockId,) = parse(&params)?;
            let block = optional_block(ctx.backend.as_ref(), id)?;
            Ok(block.map(|b| {
                (0..b.receipts.len())
                    .map(|i| convert::receipt(&b, i))
                    .collect()
            }))
        },
    )?;
    module.register_method(
        "eth_getBlockTransactionCountByNumber",
        |params, ctx, _| -> RpcResult<Option<U64>> {
            let (tag,): (BlockNumberOrTag,) = parse(&params)?;
            let block = optional_block(ctx.backend.as_ref(), BlockId::Number(tag))?;
            Ok(block.map(|b| U64::from(b.block.body.transactions.len())))
        },
    )?;
    module.register_method(
        "eth_getBlockTransactionCountByHash",
        |params, ctx, _| -> RpcResult<Option<U64>> {
            let (hash,): (B256,) = parse(&params)?;
            let block = optional_block(ctx.backend.as_ref(), BlockId::from(hash))?;
            Ok(block.map(|b| U64::from(b.block.body.transactions.len())))
        },
    )?;
    module.register_method(
        "eth_getTransactionByBlockNumberAndIndex",
        |params, ctx, _| -> RpcResult<Option<alloy_rpc_types_eth::Transaction>> {
            let (tag, index): (BlockNumberOrTag, U64) = parse(&params)?;
            transaction_at(ctx, BlockId::Number(tag), index)
        },
    )?;
    module.register_method(
        "eth_getTransactionByBlockHashAndIndex",
        |params, ctx, _| -> RpcResult<Option<alloy_rpc_types_eth::Transaction>> {
            let (hash, index): (B256, U64) = parse(&params)?;
            transaction_at(ctx, BlockId::from(hash), index)
        },
    )?;
    module.register_method(
        "eth_getUncleCountByBlockNumber",
        |_, _, _| -> RpcResult<U64> { Ok(U64::ZERO) },
    )?;
    module.register_method(
        "eth_getUncleCountByBlockHash",
        |_, _, _| -> RpcResult<U64> { Ok(U64::ZERO) },
    )?;
    module.register_blocking_method("eth_getLogs", |params, ctx, _| -> RpcResult<Vec<Log>> {
        let (filter,): (Filter,) = parse(&params)?;
        logs_for(&ctx, &filter)
    })?;
    crate::filters::register(module)?;
    Ok(())
}

/// Logs matching `filter` (shared with the filter methods).
pub fn logs(ctx: &Ctx, filter: &Filter) -> RpcResult<Vec<Log>> {
    logs_for(ctx, filter)
}

/// A log matches a filter's addresses and topics.
pub fn log_matches(filter: &Filter, log: &Log) -> bool {
    filter.matches(&log.inner)
}
