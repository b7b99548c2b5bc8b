//! `pel bench`: synthetic blocks whose dependencies are known by construction,
//! run sequentially and by the parallel executor at several thread counts.
//!
//! Workloads (every transaction has its own sender unless stated):
//! - `raw`: independent ETH transfers to fresh recipients;
//! - `erc20`: independent token transfers on one ERC-20 contract (distinct
//!   sender and recipient balances, so no two transactions share a slot);
//! - `amm`: one swap on each of `txs` independent constant-product pools;
//! - `chained`: every transaction increments the same counter slot, so each
//!   one reads what the previous one wrote;
//! - `deposits`: every transaction pays one existing address (an exchange's
//!   deposit address): independent only because a plain transfer credits
//!   its recipient without reading its balance;
//! - `hotspot:P`: P percent of the transactions (spread evenly through the
//!   block) increment one shared counter, the others each increment a counter
//!   of their own; every counter starts at 1 so that all transactions use the
//!   same gas, and the gas-weighted bound is exactly `N / max(hot, N / p)`.
//!
//! The contracts come from `benches/contracts` (Solidity compiled with solc;
//! see the README there).

use alloy_consensus::Header;
use alloy_primitives::{keccak256, Address, Bytes, TxKind, B256, U256};
use pel_executor::{
    execute_block, revm::context::TxEnv, sequential::ExecOptions, BlockInput, BlockOutput,
    BlockProfile, ChainConfig, CodeCache, CostModel, ExecError, Fork, ParallelExecutor, PreparedTx,
};
use pel_state::{AccountInfo, InMemoryState};
use serde::Serialize;
use std::{str::FromStr, sync::Arc, time::Instant};

/// ERC-20 runtime bytecode (benches/contracts/Token.runtime.hex).
const TOKEN_RUNTIME: &str = include_str!("../../benches/contracts/Token.runtime.hex");
/// AMM pair runtime bytecode (benches/contracts/Pair.runtime.hex).
const PAIR_RUNTIME: &str = include_str!("../../benches/contracts/Pair.runtime.hex");
/// Counter used by `chained`: SSTORE(0, SLOAD(0) + 1).
const COUNTER_RUNTIME: &str = "600054600101600055";

/// Storage slots of the compiled contracts (benches/contracts/storage-layout.json).
const TOKEN_BALANCES_SLOT: u64 = 0;
const PAIR_RESERVE0_SLOT: u64 = 0;
const PAIR_RESERVE1_SLOT: u64 = 1;
const PAIR_BALANCE0_SLOT: u64 = 2;
/// `transfer(address,uint256)`.
const TRANSFER_SELECTOR: [u8; 4] = [0xa9, 0x05, 0x9c, 0xbb];
/// `swap0For1(uint256)`.
const SWAP_SELECTOR: [u8; 4] = [0x32, 0x93, 0x8f, 0x20];

/// A synthetic workload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Workload {
    /// Independent ETH transfers.
    Raw,
    /// Independent ERC-20 transfers.
    Erc20,
    /// Swaps on independent AMM pools.
    Amm,
    /// A fully dependent chain.
    Chained,
    /// Transfers from independent senders to one address.
    Deposits,
    /// This percentage of transactions call one shared counter; the rest are
    /// independent.
    Hotspot(u8),
}

impl Workload {
    /// Whether transaction `i` is one of the shared-counter calls of
    /// `hotspot:P` (evenly spread: `floor(N * P / 100)` of them).
    pub fn is_hot(&self, i: usize) -> bool {
        match self {
            Workload::Hotspot(p) => {
                let p = *p as usize;
                (i + 1) * p / 100 > i * p / 100
            }
            Workload::Chained => true,
            _ => false,
        }
    }
}

impl Serialize for Workload {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl FromStr for Workload {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "raw" => Ok(Workload::Raw),
            "erc20" => Ok(Workload::Erc20),
            "amm" => Ok(Workload::Amm),
            "chained" => Ok(Workload::Chained),
            "deposits" => Ok(Workload::Deposits),
            other => match other.strip_prefix("hotspot:") {
                Some(p) => match p.parse::<u8>() {
                    Ok(p) if p <= 100 => Ok(Workload::Hotspot(p)),
                    _ => Err(format!(
                        "hotspot percentage {p:?} is not a whole number from 0 to 100"
                    )),
                },
                None => Err(format!(
                    "unknown workload {other:?}: expected raw, erc20, amm, chained, deposits or hotspot:P"
                )),
            },
        }
    }
}

impl std::fmt::Display for Workload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Workload::Raw => f.write_str("raw"),
            Workload::Erc20 => f.write_str("erc20"),
            Workload::Amm => f.write_str("amm"),
            Workload::Chained => f.write_str("chained"),
            Workload::Deposits => f.write_str("deposits"),
            Workload::Hotspot(p) => write!(f, "hotspot:{p}"),
        }
    }
}

fn contract(code_hash: B256) -> AccountInfo {
    AccountInfo {
        balance: U256::ZERO,
        nonce: 1,
        code_hash,
    }
}

fn hex_code(hex: &str) -> Bytes {
    alloy_primitives::hex::decode(hex.trim())
        .unwrap_or_default()
        .into()
}

fn numbered(prefix: u8, i: usize) -> Address {
    let mut bytes = [0u8; 20];
    bytes[0] = prefix;
    bytes[12..].copy_from_slice(&(i as u64).to_be_bytes());
    Address::from(bytes)
}

/// Slot of `mapping[key]` for a mapping at `slot` (Solidity layout).
pub fn mapping_slot(key: Address, slot: u64) -> U256 {
    let mut buf = [0u8; 64];
    buf[12..32].copy_from_slice(key.as_slice());
    buf[32..].copy_from_slice(&U256::from(slot).to_be_bytes::<32>());
    U256::from_be_bytes(keccak256(buf).0)
}

fn call_data(selector: [u8; 4], words: &[U256]) -> Bytes {
    let mut data = selector.to_vec();
    for w in words {
        data.extend_from_slice(&w.to_be_bytes::<32>());
    }
    data.into()
}

/// The chain every synthetic block runs on.
pub fn chain() -> ChainConfig {
    ChainConfig::single_fork(1, Fork::Cancun)
}

/// The header of a synthetic Cancun block: number 1, base fee 7.
pub fn header(beneficiary: Address, gas_limit: u64) -> Header {
    Header {
        number: 1,
        timestamp: 1_800_000_000,
        beneficiary,
        gas_limit,
        base_fee_per_gas: Some(7),
        excess_blob_gas: Some(0),
        parent_beacon_block_root: Some(B256::ZERO),
        ..Header::default()
    }
}

/// A synthetic EIP-1559 transaction on chain 1 (max fee 20, tip 2), sender
/// already recovered.
pub fn transaction(
    hash: B256,
    sender: Address,
    kind: TxKind,
    value: U256,
    data: Bytes,
    nonce: u64,
    gas_limit: u64,
) -> PreparedTx {
    let env = TxEnv {
        tx_type: 2,
        caller: sender,
        gas_limit,
        gas_price: 20,
        gas_priority_fee: Some(2),
        kind,
        value,
        data,
        nonce,
        chain_id: Some(1),
        ..TxEnv::default()
    };
    PreparedTx {
        hash,
        tx_type: 2,
        sender,
        env,
    }
}

/// The pre-state and block of a workload of `txs` transactions.
pub fn build(workload: Workload, txs: usize) -> (InMemoryState, BlockInput) {
    let mut state = InMemoryState::new();
    let ether = U256::from(10u64).pow(U256::from(18));
    let token = numbered(0xee, 0);
    let counter = numbered(0xcc, 0);
    match workload {
        Workload::Erc20 => {
            let hash = state.insert_code(hex_code(TOKEN_RUNTIME));
            let balances =
                (0..txs).map(|i| (mapping_slot(numbered(0x5e, i), TOKEN_BALANCES_SLOT), ether));
            state.insert_account(token, contract(hash), balances);
        }
        Workload::Amm => {
            let hash = state.insert_code(hex_code(PAIR_RUNTIME));
            for i in 0..txs {
                let sender = numbered(0x5e, i);
                let storage = [
                    (U256::from(PAIR_RESERVE0_SLOT), ether * U256::from(1000)),
                    (U256::from(PAIR_RESERVE1_SLOT), ether * U256::from(2000)),
                    (mapping_slot(sender, PAIR_BALANCE0_SLOT), ether),
                ];
                state.insert_account(numbered(0xaa, i), contract(hash), storage);
            }
        }
        Workload::Chained => {
            let hash = state.insert_code(hex_code(COUNTER_RUNTIME));
            state.insert_account(counter, contract(hash), []);
        }
        Workload::Hotspot(_) => {
            let hash = state.insert_code(hex_code(COUNTER_RUNTIME));
            let one = [(U256::ZERO, U256::from(1))];
            state.insert_account(counter, contract(hash), one);
            for i in (0..txs).filter(|&i| !workload.is_hot(i)) {
                state.insert_account(numbered(0xcc, i + 1), contract(hash), one);
            }
        }
        Workload::Deposits => {
            state.insert_account(numbered(0xde, 0), AccountInfo::with_balance(ether), []);
        }
        Workload::Raw => {}
    }
    let transactions = (0..txs)
        .map(|i| {
            let sender = numbered(0x5e, i);
            state.insert_account(sender, AccountInfo::with_balance(ether), []);
            let (to, value, data, gas_limit) = match workload {
                Workload::Raw => (
                    numbered(0x4e, i),
                    U256::from(1000 + i),
                    Bytes::new(),
                    21_000,
                ),
                Workload::Erc20 => (
                    token,
                    U256::ZERO,
                    call_data(
                        TRANSFER_SELECTOR,
                        &[
                            U256::from_be_slice(numbered(0x4e, i).as_slice()),
                            U256::from(1000 + i),
                        ],
                    ),
                    100_000,
                ),
                Workload::Amm => (
                    numbered(0xaa, i),
                    U256::ZERO,
                    call_data(SWAP_SELECTOR, &[ether / U256::from(100)]),
                    150_000,
                ),
                Workload::Chained => (counter, U256::ZERO, Bytes::new(), 60_000),
                Workload::Deposits => (
                    numbered(0xde, 0),
                    U256::from(1000 + i),
                    Bytes::new(),
                    21_000,
                ),
                Workload::Hotspot(_) if workload.is_hot(i) => {
                    (counter, U256::ZERO, Bytes::new(), 60_000)
                }
                Workload::Hotspot(_) => (numbered(0xcc, i + 1), U256::ZERO, Bytes::new(), 60_000),
            };
            let hash = keccak256((i as u64).to_be_bytes());
            transaction(hash, sender, TxKind::Call(to), value, data, 0, gas_limit)
        })
        .collect();
    let header = header(numbered(0xcb, 0), u64::MAX / 2);
    (
        state,
        BlockInput {
            header,
            transactions,
            withdrawals: Some(Vec::new()),
            ommers: Vec::new(),
        },
    )
}

/// One thread count's result (the `--json` shape).
#[derive(Clone, Debug, Serialize)]
pub struct ThreadResult {
    /// Worker threads.
    pub threads: usize,
    /// Fastest parallel run, in milliseconds.
    pub ms: f64,
    /// Sequential time over parallel time.
    pub speedup: f64,
    /// Aborted incarnations in the fastest run.
    pub reexecutions: usize,
    /// The executor's path in the fastest run (see
    /// [`pel_executor::ParallelStats::path`]).
    pub path: &'static str,
    /// The speedup the block's dependencies allow on this many threads (the
    /// gas-weighted critical-path bound of its profile).
    pub bound: f64,
}

/// A whole bench report (the `--json` shape).
#[derive(Clone, Debug, Serialize)]
pub struct BenchReport {
    /// The workload.
    pub workload: Workload,
    /// Transactions in the block.
    pub txs: usize,
    /// Gas the block used.
    pub gas: u64,
    /// Fastest sequential run, in milliseconds.
    pub sequential_ms: f64,
    /// One entry per thread count.
    pub results: Vec<ThreadResult>,
    /// The block's conflict profile.
    pub profile: BlockProfile,
}

/// Why a bench could not complete.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// Execution failed.
    #[error(transparent)]
    Exec(#[from] ExecError),
    /// The executor could not start.
    #[error(transparent)]
    Pool(#[from] pel_executor::parallel::PoolError),
    /// The parallel result differs from the sequential one.
    #[error("{threads} threads: parallel result differs from sequential: {difference}")]
    Mismatch {
        /// Thread count.
        threads: usize,
        /// Where.
        difference: String,
    },
    /// A transaction failed where the workload expects success.
    #[error("transaction {0} of the workload did not succeed")]
    TxFailed(usize),
}

/// Builds the workload, checks the sequential run succeeds for every
/// transaction, then times it and each thread count (best of `runs`). The
/// runs are interleaved (one sequential run, then one run per thread count,
/// round after round, after an untimed round), so that a machine whose
/// speed drifts during the bench skews every ratio alike. Without
/// `partition`, the parallel executor never tries its partitioned fast path.
pub fn run(
    workload: Workload,
    txs: usize,
    threads: &[usize],
    runs: usize,
    partition: bool,
) -> Result<BenchReport, BenchError> {
    let (state, block) = build(workload, txs);
    let chain = chain();
    let code = Arc::new(CodeCache::new());
    let options = ExecOptions {
        code_cache: Some(code),
        ..Default::default()
    };
    let sequential = || execute_block(&state, &block, &chain, options.clone());
    let expected: BlockOutput = sequential()?;
    if let Some(i) = expected.receipts.iter().position(|r| !r.success) {
        return Err(BenchError::TxFailed(i));
    }
    let profiler = ParallelExecutor::new(threads.iter().copied().max().unwrap_or(1))?;
    let (profiled, _, profile) = profiler.profile_block(&state, &block, &chain, options.clone())?;
    if let Some(difference) = crate::replay::first_difference(&expected, &profiled) {
        return Err(BenchError::Mismatch {
            threads: profiler.threads(),
            difference,
        });
    }
    drop(profiler);
    let executors = threads
        .iter()
        .map(|&t| {
            let mut executor = ParallelExecutor::new(t)?;
            executor.cost_model = CostModel::forced();
            if !partition {
                executor.cost_model.partition = None;
            }
            Ok(executor)
        })
        .collect::<Result<Vec<_>, BenchError>>()?;
    let mut sequential_ms = f64::INFINITY;
    let mut best = vec![(f64::INFINITY, 0, ""); executors.len()];
    for round in 0..=runs.max(1) {
        let timed = round > 0;
        let start = Instant::now();
        sequential()?;
        if timed {
            sequential_ms = sequential_ms.min(start.elapsed().as_secs_f64() * 1e3);
        }
        for (executor, best) in executors.iter().zip(&mut best) {
            let start = Instant::now();
            let (output, stats) =
                executor.execute_block(&state, &block, &chain, options.clone())?;
            let ms = start.elapsed().as_secs_f64() * 1e3;
            if let Some(difference) = crate::replay::first_difference(&expected, &output) {
                return Err(BenchError::Mismatch {
                    threads: executor.threads(),
                    difference,
                });
            }
            if timed && ms < best.0 {
                *best = (ms, stats.reexecutions, stats.path());
            }
        }
    }
    let results = executors
        .iter()
        .zip(best)
        .map(|(executor, (ms, reexecutions, path))| ThreadResult {
            threads: executor.threads(),
            ms,
            speedup: sequential_ms / ms.max(1e-9),
            reexecutions,
            path,
            bound: profile.bound_by_gas(executor.threads()),
        })
        .collect();
    Ok(BenchReport {
        workload,
        txs,
        gas: expected.gas_used,
        sequential_ms,
        results,
        profile,
    })
}
