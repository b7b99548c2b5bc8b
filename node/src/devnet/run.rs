//! Starting `pel node`: open or create the data dir, derive the dev accounts,
//! start the miner thread and the JSON-RPC server, print what anvil prints.

use super::{accounts, dev_genesis, DevNode, MiningMode};
use crate::chain::Chain;
use alloy_primitives::U256;
use alloy_signer_local::PrivateKeySigner;
use pel_executor::{Fork, ParallelExecutor};
use pel_state::StoreOptions;
use std::{net::SocketAddr, path::PathBuf, sync::Arc};

/// The options of `pel node`.
#[derive(Clone, Debug)]
pub struct NodeOptions {
    /// Listen address.
    pub host: String,
    /// Listen port (HTTP and WebSocket).
    pub port: u16,
    /// Data dir.
    pub datadir: PathBuf,
    /// Dev accounts.
    pub accounts: u32,
    /// Balance of each, ETH.
    pub balance_eth: u64,
    /// Mnemonic.
    pub mnemonic: String,
    /// Chain id (for a new dev chain).
    pub chain_id: u64,
    /// Block gas limit.
    pub gas_limit: u64,
    /// Interval mining.
    pub block_time: Option<u64>,
    /// Manual mining.
    pub no_mining: bool,
    /// Executor threads.
    pub threads: Option<usize>,
    /// Fork name.
    pub hardfork: String,
    /// Genesis file instead of dev accounts.
    pub genesis: Option<PathBuf>,
    /// What one client may ask of the RPC server.
    pub limits: pel_rpc::Limits,
    /// Most pooled transactions of one sender.
    pub pool_max_per_sender: usize,
    /// Most pooled transactions in total.
    pub pool_max_total: usize,
}

impl Default for NodeOptions {
    /// The defaults of `pel node` (anvil's where anvil has the flag).
    fn default() -> Self {
        let pool = super::pool::PoolConfig::new(31337, 30_000_000);
        Self {
            host: "127.0.0.1".into(),
            port: 8545,
            datadir: PathBuf::from("pel-data"),
            accounts: 10,
            balance_eth: 10_000,
            mnemonic: accounts::DEFAULT_MNEMONIC.into(),
            chain_id: 31337,
            gas_limit: 30_000_000,
            block_time: None,
            no_mining: false,
            threads: None,
            hardfork: "Osaka".into(),
            genesis: None,
            limits: pel_rpc::Limits::default(),
            pool_max_per_sender: pool.max_per_sender,
            pool_max_total: pool.max_total,
        }
    }
}

fn fork_named(name: &str) -> Result<Fork, String> {
    Fork::ALL
        .into_iter()
        .find(|f| f.name().eq_ignore_ascii_case(name))
        .or_else(|| Fork::from_name(name))
        .ok_or_else(|| {
            let names: Vec<&str> = Fork::ALL.iter().map(|f| f.name()).collect();
            format!("unknown hardfork {name}; one of {}", names.join(", "))
        })
}

/// A node opened on its data dir, before the miner and server start.
pub struct OpenedNode {
    /// The node.
    pub node: Arc<DevNode>,
    /// Dev account keys.
    pub signers: Vec<PrivateKeySigner>,
    /// Executor threads.
    pub threads: usize,
    /// Mining mode.
    pub mode: MiningMode,
    /// The fork named by `--hardfork`.
    pub fork: Fork,
    /// Head block when opened.
    pub head: u64,
    /// Chain id.
    pub chain_id: u64,
}

/// Opens the data dir (or creates the chain) and the node on it, without
/// starting the miner thread or the server.
pub fn open_node(options: &NodeOptions) -> Result<OpenedNode, String> {
    let fork = fork_named(&options.hardfork)?;
    let signers = accounts::derive(&options.mnemonic, options.accounts)?;
    let addresses: Vec<_> = signers.iter().map(|s| s.address()).collect();
    let balance = U256::from(options.balance_eth) * U256::from(10u64).pow(U256::from(18));
    let spec = match &options.genesis {
        Some(path) => crate::genesis::from_file(path).map_err(|e| e.to_string())?,
        None => dev_genesis(
            options.chain_id,
            fork,
            options.gas_limit,
            &addresses,
            balance,
        ),
    };
    let has_data = options.datadir.join("CURRENT").exists();
    let chain = if has_data {
        let chain =
            Chain::open(&options.datadir, StoreOptions::default()).map_err(|e| e.to_string())?;
        if options.genesis.is_some() {
            let stored = chain.store().genesis_hash().map_err(|e| e.to_string())?;
            if stored != spec.hash() {
                return Err(format!(
                    "{} holds another chain (genesis {stored}, the genesis file gives {}); refusing to start",
                    options.datadir.display(),
                    spec.hash()
                ));
            }
        } else if chain.config().chain_id != options.chain_id {
            return Err(format!(
                "{} holds chain id {}, not {}; use another --datadir",
                options.datadir.display(),
                chain.config().chain_id,
                options.chain_id
            ));
        }
        chain
    } else {
        Chain::init(&options.datadir, &spec, StoreOptions::default()).map_err(|e| e.to_string())?
    };
    let threads = options.threads.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    });
    let executor = if threads > 1 {
        Some(Arc::new(
            ParallelExecutor::new(threads).map_err(|e| e.to_string())?,
        ))
    } else {
        None
    };
    let gas_limit = chain.head().gas_limit;
    let chain = chain.with_executor(executor);
    let head = chain.head().number;
    let chain_id = chain.config().chain_id;
    let mode = match (options.no_mining, options.block_time) {
        (true, _) => MiningMode::Manual,
        (false, Some(secs)) => MiningMode::Interval(secs),
        (false, None) => MiningMode::Auto,
    };
    let mut pool = super::pool::PoolConfig::new(chain.config().chain_id, gas_limit);
    pool.max_per_sender = options.pool_max_per_sender;
    pool.max_total = options.pool_max_total;
    pool.max_tx_bytes = options.limits.max_tx_bytes;
    let node = DevNode::new(chain, signers.clone(), pool, mode);
    Ok(OpenedNode {
        node,
        signers,
        threads,
        mode,
        fork,
        head,
        chain_id,
    })
}

/// Opens the data dir or creates the chain, then serves until interrupted.
pub fn run(options: NodeOptions) -> Result<(), String> {
    let OpenedNode {
        node,
        signers,
        threads,
        mode,
        fork,
        head,
        chain_id,
    } = open_node(&options)?;
    let addr: SocketAddr = format!("{}:{}", options.host, options.port)
        .parse()
        .map_err(|e| format!("bad listen address {}:{}: {e}", options.host, options.port))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .worker_threads(2)
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    runtime.block_on(async move {
        let backend: Arc<dyn pel_rpc::Backend> = node.clone();
        let (handle, bound) = pel_rpc::start(backend, addr, options.limits).await?;
        let miner = node.clone();
        std::thread::Builder::new()
            .name("pel-miner".into())
            .spawn(move || miner.run_miner())
            .map_err(|e| format!("cannot start the miner: {e}"))?;
        println!("PEL devnet node");
        println!();
        println!("Available accounts");
        println!("==================");
        for (i, s) in signers.iter().enumerate() {
            println!("({i}) {} ({} ETH)", s.address(), options.balance_eth);
        }
        println!();
        println!("Private keys");
        println!("==================");
        for (i, s) in signers.iter().enumerate() {
            println!("({i}) 0x{}", alloy_primitives::hex::encode(s.to_bytes()));
        }
        println!();
        println!("Mnemonic:        {}", options.mnemonic);
        println!("Derivation path: m/44'/60'/0'/0/");
        println!("Chain id:        {chain_id}");
        println!("Hardfork:        {}", fork.name());
        println!(
            "Data dir:        {} (head block {head})",
            options.datadir.display()
        );
        println!("Mining:          {mode:?}, {threads} executor threads");
        println!();
        println!("Listening on {bound}");
        use std::io::Write;
        let _ = std::io::stdout().flush();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = handle.clone().stopped() => {}
        }
        let _ = handle.stop();
        Ok::<(), String>(())
    })
}
