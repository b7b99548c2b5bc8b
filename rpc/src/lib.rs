//! PEL's Ethereum JSON-RPC server on `jsonrpsee`: HTTP and WebSocket on one
//! port, the `eth_`, `net_`, `web3_`, `txpool_` and dev (`evm_`, `anvil_`,
//! `hardhat_`) namespaces, filters and subscriptions.
//!
//! The server reads state through the store and submits transactions to the
//! node's pool through [`Backend`]; it never writes state. Every limit is
//! configuration with a safe default ([`Limits`]): request and response sizes,
//! batch length, connections, subscriptions per connection, `eth_getLogs`
//! range and result count, the gas cap of `eth_call`/`eth_estimateGas`.
//! Errors use the standard codes: -32700 parse error, -32600 invalid request,
//! -32601 unknown method, -32602 invalid params, -32000 rejected or failed,
//! -32001 not found, -32005 limit exceeded, 3 execution reverted.

pub mod backend;
pub mod convert;
pub mod dev;
pub mod error;
pub mod eth;
pub mod filters;
pub mod pel;
pub mod pubsub;

pub use backend::{
    AccountEdit, Backend, ChainEvent, ExecutionStats, NodeError, PoolContent, StoredBlock,
};
use jsonrpsee::server::{BatchRequestConfig, RpcModule, Server, ServerConfig, ServerHandle};
use std::{net::SocketAddr, sync::Arc};

/// Bounds on what one client can ask of the server.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Largest request body, bytes.
    pub max_request_bytes: u32,
    /// Largest response body, bytes.
    pub max_response_bytes: u32,
    /// Most calls in one batch.
    pub max_batch: u32,
    /// Most open connections.
    pub max_connections: u32,
    /// Most subscriptions per WebSocket connection.
    pub max_subscriptions: u32,
    /// Widest `eth_getLogs` block range.
    pub max_log_range: u64,
    /// Most logs one `eth_getLogs` returns.
    pub max_logs: usize,
    /// Gas cap of `eth_call` and `eth_estimateGas`.
    pub call_gas_cap: u64,
    /// Most installed filters.
    pub max_filters: usize,
    /// Largest raw transaction, bytes.
    pub max_tx_bytes: usize,
    /// Longest `eth_call`, `eth_estimateGas` or `eth_createAccessList`
    /// before the client gets a timeout error (the execution itself stays
    /// bounded by the gas cap).
    pub call_timeout: std::time::Duration,
    /// Most blocks one `evm_mine`/`anvil_mine` may ask for.
    pub max_mine_blocks: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_request_bytes: 5 << 20,
            max_response_bytes: 50 << 20,
            max_batch: 100,
            max_connections: 1000,
            max_subscriptions: 256,
            max_log_range: 10_000,
            max_logs: 20_000,
            call_gas_cap: 50_000_000,
            max_filters: 1024,
            max_tx_bytes: 128 * 1024,
            call_timeout: std::time::Duration::from_secs(5),
            max_mine_blocks: 10_000,
        }
    }
}

/// Shared state of the RPC methods.
pub struct Ctx {
    /// The node.
    pub backend: Arc<dyn Backend>,
    /// Limits in force.
    pub limits: Limits,
    /// Installed polling filters.
    pub filters: Arc<filters::Filters>,
}

/// Subscription ids as Ethereum clients expect them: 0x-prefixed hex quantities.
#[derive(Debug, Default)]
struct HexIdProvider(std::sync::atomic::AtomicU64);

impl jsonrpsee::core::traits::IdProvider for HexIdProvider {
    fn next_id(&self) -> jsonrpsee::types::SubscriptionId<'static> {
        let n = self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let salt = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        let id = alloy_primitives::keccak256([n.to_be_bytes(), salt.to_be_bytes()].concat());
        jsonrpsee::types::SubscriptionId::Str(
            format!("0x{}", alloy_primitives::hex::encode(&id[..16])).into(),
        )
    }
}

/// Every method, registered on one module (also used by tests without a socket).
pub fn module(backend: Arc<dyn Backend>, limits: Limits) -> Result<RpcModule<Ctx>, String> {
    module_with(backend, limits, Arc::default())
}

fn module_with(
    backend: Arc<dyn Backend>,
    limits: Limits,
    filters: Arc<filters::Filters>,
) -> Result<RpcModule<Ctx>, String> {
    let ctx = Ctx {
        backend,
        limits,
        filters,
    };
    let mut module = RpcModule::new(ctx);
    eth::register(&mut module).map_err(|e| e.to_string())?;
    dev::register(&mut module).map_err(|e| e.to_string())?;
    pubsub::register(&mut module).map_err(|e| e.to_string())?;
    pel::register(&mut module).map_err(|e| e.to_string())?;
    Ok(module)
}

/// Starts the server on `addr` (HTTP and WebSocket), with permissive CORS.
pub async fn start(
    backend: Arc<dyn Backend>,
    addr: SocketAddr,
    limits: Limits,
) -> Result<(ServerHandle, SocketAddr), String> {
    let filters = Arc::new(filters::Filters::default());
    let module = module_with(backend.clone(), limits, filters.clone())?;
    // Feed pending-transaction filters from the chain events.
    let mut events = backend.subscribe();
    tokio::spawn(async move {
        loop {
            match events.recv().await {
                Ok(ChainEvent::PendingTx(h)) => filters.pending(h),
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(_) => return,
            }
        }
    });
    let config = ServerConfig::builder()
        .max_request_body_size(limits.max_request_bytes)
        .max_response_body_size(limits.max_response_bytes)
        .max_connections(limits.max_connections)
        .max_subscriptions_per_connection(limits.max_subscriptions)
        .set_batch_request_config(BatchRequestConfig::Limit(limits.max_batch))
        .set_id_provider(HexIdProvider::default())
        .build();
    let cors = tower_http::cors::CorsLayer::permissive();
    let server = Server::builder()
        .set_config(config)
        .set_http_middleware(tower::ServiceBuilder::new().layer(cors))
        .build(addr)
        .await
        .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    let bound = server.local_addr().map_err(|e| e.to_string())?;
    Ok((server.start(module), bound))
}
