//! `pel`: the parallel EVM execution layer's command line.

use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use pel_executor::{CostModel, ParallelExecutor};
use pel_node::{
    bench::{self, Workload},
    output::Table,
    profile::{self, profile_text},
    replay::{self, mgas_per_s, ReplayOptions, Shard},
    statetest,
};
use pel_state::StoreOptions;
use std::{path::PathBuf, process::ExitCode, sync::Arc};

/// mimalloc: the executor allocates from several threads at once, where
/// glibc's allocator spends its time growing and trimming per-thread arenas.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "pel", version, about = "PEL: a parallel EVM execution layer")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Limits of `pel node` (defaults in brackets); see the README.
#[derive(clap::Args)]
struct LimitArgs {
    /// Largest JSON-RPC request body in bytes [5 MiB].
    #[arg(long)]
    max_request_bytes: Option<u32>,
    /// Largest response body in bytes [50 MiB].
    #[arg(long)]
    max_response_bytes: Option<u32>,
    /// Most calls in one batch [100].
    #[arg(long)]
    max_batch: Option<u32>,
    /// Most open connections [1000].
    #[arg(long)]
    max_connections: Option<u32>,
    /// Most subscriptions per WebSocket connection [256].
    #[arg(long)]
    max_subscriptions: Option<u32>,
    /// Most installed filters [1024].
    #[arg(long)]
    max_filters: Option<usize>,
    /// Widest `eth_getLogs` block range [10000].
    #[arg(long)]
    logs_max_range: Option<u64>,
    /// Most logs one `eth_getLogs` returns [20000].
    #[arg(long)]
    logs_max_results: Option<usize>,
    /// Gas cap of `eth_call`/`eth_estimateGas` [50000000].
    #[arg(long)]
    call_gas_cap: Option<u64>,
    /// Timeout of `eth_call`/`eth_estimateGas`, in milliseconds [5000].
    #[arg(long)]
    call_timeout_ms: Option<u64>,
    /// Most blocks one `evm_mine`/`anvil_mine` may mine [10000].
    #[arg(long)]
    max_mine_blocks: Option<u64>,
    /// Largest raw transaction in bytes [131072].
    #[arg(long)]
    max_tx_bytes: Option<usize>,
    /// Most pooled transactions per sender [4096].
    #[arg(long)]
    pool_max_per_sender: Option<usize>,
    /// Most pooled transactions in total [100000].
    #[arg(long)]
    pool_max_total: Option<usize>,
}

impl LimitArgs {
    /// The RPC limits and the pool's per-sender and total bounds.
    fn resolve(&self) -> (pel_rpc::Limits, usize, usize) {
        let d = pel_rpc::Limits::default();
        let node = pel_node::devnet::run::NodeOptions::default();
        let limits = pel_rpc::Limits {
            max_request_bytes: self.max_request_bytes.unwrap_or(d.max_request_bytes),
            max_response_bytes: self.max_response_bytes.unwrap_or(d.max_response_bytes),
            max_batch: self.max_batch.unwrap_or(d.max_batch),
            max_connections: self.max_connections.unwrap_or(d.max_connections),
            max_subscriptions: self.max_subscriptions.unwrap_or(d.max_subscriptions),
            max_filters: self.max_filters.unwrap_or(d.max_filters),
            max_log_range: self.logs_max_range.unwrap_or(d.max_log_range),
            max_logs: self.logs_max_results.unwrap_or(d.max_logs),
            call_gas_cap: self.call_gas_cap.unwrap_or(d.call_gas_cap),
            call_timeout: self
                .call_timeout_ms
                .map_or(d.call_timeout, std::time::Duration::from_millis),
            max_mine_blocks: self.max_mine_blocks.unwrap_or(d.max_mine_blocks),
            max_tx_bytes: self.max_tx_bytes.unwrap_or(d.max_tx_bytes),
        };
        (
            limits,
            self.pool_max_per_sender.unwrap_or(node.pool_max_per_sender),
            self.pool_max_total.unwrap_or(node.pool_max_total),
        )
    }
}

/// Arguments of `pel replay`.
#[derive(clap::Args)]
struct ReplayArgs {
    /// Folder in the captured-block layout (blocks/<N>/{block,pre_state,bytecodes}.json).
    #[arg(default_value = "testdata/mainnet")]
    dir: PathBuf,
    /// Run the sequential executor only.
    #[arg(long)]
    sequential: bool,
    /// Worker threads of the parallel executor (default: available cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Timed runs per block and executor (the fastest counts), after one warm-up.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Run the parallel phase on every block, whatever the cost model says.
    #[arg(long)]
    force_parallel: bool,
    /// Never try the partitioned fast path: Block-STM (or the sequential
    /// path, where the cost model says) only.
    #[arg(long)]
    no_partition: bool,
    /// Replay only every N-th block starting at position I (`I/N`, 0 <= I < N),
    /// to split an archive across machines.
    #[arg(long)]
    shard: Option<Shard>,
    /// Combine these `--json` reports of shards into one report (no replay).
    #[arg(long, num_args = 1.., conflicts_with = "shard")]
    merge: Vec<PathBuf>,
    /// Profile every block's conflicts: dependency graph, critical path,
    /// speedup bounds, hot locations.
    #[arg(long)]
    profile: bool,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Execute captured mainnet blocks and check each against its real header.
    Replay(ReplayArgs),
    /// Run a synthetic block sequentially and in parallel; compare and time.
    Bench {
        /// raw, erc20, amm, chained, deposits (transfers to one address) or
        /// hotspot:P (P percent of the transactions call one shared contract).
        #[arg(long)]
        workload: Workload,
        /// Transactions in the block.
        #[arg(long, default_value_t = 10_000)]
        txs: usize,
        /// Thread counts to run the parallel executor at (e.g. `1,2`).
        #[arg(long, value_delimiter = ',', default_value = "2")]
        threads: Vec<usize>,
        /// Timed runs per configuration (the fastest counts), after one warm-up.
        #[arg(long, default_value_t = 5)]
        runs: usize,
        /// Never try the partitioned fast path: Block-STM only.
        #[arg(long)]
        no_partition: bool,
        /// Print one JSON object instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Run a local devnet node (like anvil): dev accounts, blocks mined by the
    /// parallel executor, state in RocksDB, JSON-RPC over HTTP and WebSocket.
    Node {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1")]
        host: String,
        /// Port for HTTP and WebSocket.
        #[arg(long, default_value_t = 8545)]
        port: u16,
        /// Data dir (created on first start, resumed after).
        #[arg(long, default_value = "pel-data")]
        datadir: PathBuf,
        /// Number of dev accounts.
        #[arg(long, default_value_t = 10)]
        accounts: u32,
        /// Balance of each dev account, in ETH.
        #[arg(long, default_value_t = 10_000)]
        balance: u64,
        /// Mnemonic of the dev accounts (path m/44'/60'/0'/0/i).
        #[arg(long, default_value = pel_node::devnet::accounts::DEFAULT_MNEMONIC)]
        mnemonic: String,
        /// Chain id.
        #[arg(long, default_value_t = 31337)]
        chain_id: u64,
        /// Block gas limit.
        #[arg(long, default_value_t = 30_000_000)]
        gas_limit: u64,
        /// Mine a block every SECS seconds instead of when transactions arrive.
        #[arg(long)]
        block_time: Option<u64>,
        /// Mine only on `evm_mine`.
        #[arg(long, conflicts_with = "block_time")]
        no_mining: bool,
        /// Worker threads of the parallel executor (default: available cores).
        #[arg(long)]
        threads: Option<usize>,
        /// Fork rules of the chain (Frontier .. Osaka).
        #[arg(long, default_value = "Osaka")]
        hardfork: String,
        /// Start from a geth-style genesis file instead of dev accounts.
        #[arg(long)]
        genesis: Option<PathBuf>,
        #[command(flatten)]
        limits: Box<LimitArgs>,
    },
    /// Create a data dir from a geth-style genesis file.
    Init {
        /// Genesis file (config with fork blocks and times, alloc, header fields).
        #[arg(long)]
        genesis: PathBuf,
        /// Data dir to create (must not exist or be empty).
        #[arg(long, default_value = "pel-data")]
        datadir: PathBuf,
    },
    /// Import files of concatenated RLP blocks into a data dir.
    Import {
        /// Data dir created by `pel init`.
        #[arg(long, default_value = "pel-data")]
        datadir: PathBuf,
        /// Block files, imported in order.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Worker threads of the parallel executor (default: available cores; 1 runs sequentially).
        #[arg(long)]
        threads: Option<usize>,
        /// Keep state history for only the last K blocks.
        #[arg(long)]
        history: Option<u64>,
        /// Print one JSON object instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Write the chain's blocks 1..=head as concatenated RLP (what `pel import` reads).
    Export {
        /// Data dir.
        #[arg(long, default_value = "pel-data")]
        datadir: PathBuf,
        /// Output file.
        file: PathBuf,
    },
    /// Time the import of a synthetic chain of transfers into a fresh data dir,
    /// split into validation, execution, state root and commit.
    ImportBench {
        /// Accounts in the state (the trie size).
        #[arg(long, default_value_t = 10_000)]
        accounts: usize,
        /// Blocks to import.
        #[arg(long, default_value_t = 50)]
        blocks: usize,
        /// Transfers per block.
        #[arg(long, default_value_t = 500)]
        txs: usize,
        /// Worker threads of the parallel executor (default: available cores; 1 runs sequentially).
        #[arg(long)]
        threads: Option<usize>,
        /// Print one JSON object instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Run BlockchainTests fixtures (files or folders, recursively) through the import path.
    Blocktest {
        /// Fixture files or folders.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Worker threads of the parallel executor (default: available cores; 1 runs sequentially).
        #[arg(long)]
        threads: Option<usize>,
        /// Run the parallel phase on every block, whatever the cost model says.
        #[arg(long)]
        force_parallel: bool,
        /// Print one JSON object instead of lines.
        #[arg(long)]
        json: bool,
    },
    /// Run GeneralStateTests fixtures (files or folders, recursively).
    Statetest {
        /// Fixture files or folders.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Also run each case as a block through the parallel executor at these
        /// thread counts (e.g. `1,2,4,8`) and require the sequential result.
        #[arg(long, value_delimiter = ',')]
        threads: Vec<usize>,
        /// Print one JSON object instead of lines.
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Replay(args) => {
            if args.merge.is_empty() {
                run_replay(&args)
            } else {
                run_merge(&args.merge, args.json)
            }
        }
        Command::Statetest {
            paths,
            threads,
            json,
        } => run_statetest(paths, threads, json),
        Command::Bench {
            workload,
            txs,
            threads,
            runs,
            no_partition,
            json,
        } => run_bench(workload, txs, threads, runs, !no_partition, json),
        Command::Init { genesis, datadir } => run_init(&genesis, &datadir),
        Command::Node {
            host,
            port,
            datadir,
            accounts,
            balance,
            mnemonic,
            chain_id,
            gas_limit,
            block_time,
            no_mining,
            threads,
            hardfork,
            genesis,
            limits,
        } => {
            disable_transparent_huge_pages();
            let (limits, pool_max_per_sender, pool_max_total) = limits.resolve();
            let options = pel_node::devnet::run::NodeOptions {
                host,
                port,
                datadir,
                accounts,
                balance_eth: balance,
                mnemonic,
                chain_id,
                gas_limit,
                block_time,
                no_mining,
                threads,
                hardfork,
                genesis,
                limits,
                pool_max_per_sender,
                pool_max_total,
            };
            match pel_node::devnet::run::run(options) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => fail(e),
            }
        }
        Command::Import {
            datadir,
            files,
            threads,
            history,
            json,
        } => run_import(&datadir, &files, threads, history, json),
        Command::Export { datadir, file } => run_export(&datadir, &file),
        Command::ImportBench {
            accounts,
            blocks,
            txs,
            threads,
            json,
        } => run_import_bench(accounts, blocks, txs, threads, json),
        Command::Blocktest {
            paths,
            threads,
            force_parallel,
            json,
        } => run_blocktest(paths, threads, force_parallel, json),
    }
}

/// Turns transparent huge pages off for this process (Linux; elsewhere a
/// no-op). mimalloc asks for huge pages on its arenas, and a long-running
/// node that frees and reuses memory across blocks then faults whole 2 MiB
/// pages back in, each zeroed by the kernel: during a 30,000-transfer burst
/// that zeroing was about a fifth of the node's CPU. The executor benchmarks
/// keep huge pages, where fewer TLB misses pay for them.
fn disable_transparent_huge_pages() {
    #[cfg(target_os = "linux")]
    // SAFETY: PR_SET_THP_DISABLE takes plain integer arguments and only sets
    // a flag on this process; no memory is passed to the kernel.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}

/// Reports an error and the failing exit code.
fn fail(e: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {e}");
    ExitCode::FAILURE
}

/// Prints one pretty JSON object.
fn print_json(value: &impl serde::Serialize) -> Result<(), ExitCode> {
    serde_json::to_string_pretty(value)
        .map(|text| println!("{text}"))
        .map_err(fail)
}

fn run_replay(args: &ReplayArgs) -> ExitCode {
    let ReplayArgs {
        dir,
        sequential,
        threads,
        runs,
        force_parallel,
        no_partition,
        shard,
        profile,
        json,
        ..
    } = args;
    let shard = shard.unwrap_or(Shard::ALL);
    let mut options = ReplayOptions::mainnet();
    options.runs = *runs;
    if !*sequential {
        let threads = threads.unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        });
        match ParallelExecutor::new(threads) {
            Ok(mut executor) => {
                if *force_parallel {
                    executor.cost_model = CostModel::forced();
                }
                if *no_partition {
                    executor.cost_model.partition = None;
                }
                options.parallel = Some(Arc::new(executor));
            }
            Err(e) => return fail(e),
        }
    }
    if *profile {
        options.profiler = match &options.parallel {
            Some(executor) => Some(executor.clone()),
            None => match ParallelExecutor::new(1) {
                Ok(executor) => Some(Arc::new(executor)),
                Err(e) => return fail(e),
            },
        };
    }
    let total = pel_node::load::list_blocks(dir)
        .map(|b| b.len().saturating_sub(shard.index).div_ceil(shard.count))
        .unwrap_or(0);
    let bar = ProgressBar::new(total as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} blocks  {msg}  eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut gas = 0u64;
    let mut ms = 0f64;
    let report = replay::replay_shard(dir, &options, shard, |r| {
        gas += r.gas_used;
        ms += r.sequential_ms.unwrap_or_default();
        bar.set_message(format!(
            "block {}  {:.0} Mgas/s",
            r.number,
            mgas_per_s(gas, ms)
        ));
        bar.inc(1);
    });
    bar.finish_and_clear();
    let report = match report {
        Ok(report) => report,
        Err(e) => return fail(e),
    };
    let threads = options.parallel.as_ref().map_or(1, |e| e.threads());
    print_replay(&report, threads, *json)
}

/// `pel replay --merge`: one report from the `--json` reports of shards.
fn run_merge(files: &[PathBuf], json: bool) -> ExitCode {
    let mut reports = Vec::new();
    for f in files {
        match pel_state::mainnet::read_json::<replay::Report>(f) {
            Ok(r) => reports.push(r),
            Err(e) => return fail(e),
        }
    }
    print_replay(&replay::Report::merge(reports), 0, json)
}

/// Prints a replay report as a table or JSON; the exit code says whether every
/// block was valid.
fn print_replay(report: &replay::Report, threads: usize, json: bool) -> ExitCode {
    if json {
        if let Err(code) = print_json(&report) {
            return code;
        }
    } else {
        let mut table = Table::new(
            &[
                "block", "fork", "txs", "gas", "seq ms", "Mgas/s", "par ms", "speedup", "reexec",
                "path", "checks", "result",
            ],
            2,
        );
        for b in &report.blocks {
            let (passed, made) = b.checks.counts();
            let not_made: Vec<&str> = b
                .checks
                .iter()
                .filter(|(_, c)| c.is_none())
                .map(|(n, _)| n)
                .collect();
            let mut checks = format!("{passed}/{made}");
            if !not_made.is_empty() && b.errors.is_empty() {
                checks.push_str(&format!(" (n/a: {})", not_made.join(", ")));
            }
            table.row(vec![
                b.number.to_string(),
                b.fork.clone(),
                b.txs.to_string(),
                b.gas_used.to_string(),
                b.sequential_ms.map_or("-".into(), |m| format!("{m:.2}")),
                b.sequential_ms
                    .map_or("-".into(), |m| format!("{:.0}", mgas_per_s(b.gas_used, m))),
                b.parallel_ms.map_or("-".into(), |m| format!("{m:.2}")),
                b.speedup.map_or("-".into(), |s| format!("{s:.2}x")),
                b.reexecutions.map_or("-".into(), |r| r.to_string()),
                b.path.clone().unwrap_or_else(|| "-".into()),
                checks,
                if b.valid {
                    "valid".into()
                } else {
                    "INVALID".into()
                },
            ]);
        }
        print!("{}", table.render());
        let profiles: Vec<(u64, &pel_executor::BlockProfile)> = report
            .blocks
            .iter()
            .filter_map(|b| b.profile.as_ref().map(|p| (b.number, p)))
            .collect();
        if !profiles.is_empty() {
            println!("\nconflict profile per block (bounds weighted by gas):");
            print!("{}", profile::block_table(profiles));
        }
        for b in report.blocks.iter().filter(|b| !b.errors.is_empty()) {
            for e in &b.errors {
                println!("block {}: {e}", b.number);
            }
        }
        let s = &report.summary;
        println!(
            "\n{} blocks, {} valid, {} txs, {:.1} Mgas in {:.1} ms sequential ({:.0} Mgas/s)",
            s.blocks,
            s.valid,
            s.txs,
            s.gas_used as f64 / 1e6,
            s.sequential_ms,
            s.sequential_mgas_per_s
        );
        if let (Some(p), Some(x)) = (s.parallel_ms, s.speedup) {
            let threads = if threads > 0 {
                format!(" ({threads} threads)")
            } else {
                String::new()
            };
            println!(
                "parallel{threads}: {p:.1} ms ({:.0} Mgas/s), speedup {x:.2}x over sequential",
                mgas_per_s(s.gas_used, p)
            );
        }
        if let Some(summary) = &s.profile {
            print!("{}", summary.text());
        }
        println!(
            "receiptsRoot is n/a before Byzantium: receipts then hold intermediate state roots, \
             which a touched-accounts pre-state cannot reproduce."
        );
    }
    if report.summary.valid == report.summary.blocks && report.summary.blocks > 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn run_bench(
    workload: Workload,
    txs: usize,
    threads: Vec<usize>,
    runs: usize,
    partition: bool,
    json: bool,
) -> ExitCode {
    let report = match bench::run(workload, txs, &threads, runs, partition) {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    if json {
        if let Err(code) = print_json(&report) {
            return code;
        }
        return ExitCode::SUCCESS;
    }
    println!(
        "workload {}: {} txs, {:.1} Mgas; every parallel run equals the sequential one",
        report.workload,
        report.txs,
        report.gas as f64 / 1e6
    );
    let mut table = Table::new(
        &[
            "executor", "threads", "ms", "Mgas/s", "speedup", "bound", "reexec", "path",
        ],
        1,
    );
    table.row(vec![
        "sequential".into(),
        "1".into(),
        format!("{:.2}", report.sequential_ms),
        format!("{:.0}", mgas_per_s(report.gas, report.sequential_ms)),
        "1.00x".into(),
        "1.00x".into(),
        "-".into(),
        "-".into(),
    ]);
    for r in &report.results {
        table.row(vec![
            "parallel".into(),
            r.threads.to_string(),
            format!("{:.2}", r.ms),
            format!("{:.0}", mgas_per_s(report.gas, r.ms)),
            format!("{:.2}x", r.speedup),
            format!("{:.2}x", r.bound),
            r.reexecutions.to_string(),
            r.path.into(),
        ]);
    }
    print!("{}", table.render());
    print!("{}", profile_text(&report.profile));
    ExitCode::SUCCESS
}

/// The parallel executor for `threads` (default: available cores); `None` for
/// one thread, which runs the sequential path.
fn executor_for(
    threads: Option<usize>,
    force_parallel: bool,
) -> Result<Option<Arc<ParallelExecutor>>, ExitCode> {
    let threads = threads.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    });
    if threads <= 1 && !force_parallel {
        return Ok(None);
    }
    let mut executor = ParallelExecutor::new(threads).map_err(fail)?;
    if force_parallel {
        executor.cost_model = CostModel::forced();
    }
    Ok(Some(Arc::new(executor)))
}

fn run_init(genesis: &std::path::Path, datadir: &std::path::Path) -> ExitCode {
    let spec = match pel_node::genesis::from_file(genesis) {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    match pel_node::chain::Chain::init(datadir, &spec, StoreOptions::default()) {
        Ok(chain) => {
            println!(
                "initialised {} : chain id {}, genesis {} (state root {})",
                datadir.display(),
                chain.config().chain_id,
                spec.hash(),
                spec.header.state_root
            );
            ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    }
}

fn run_import(
    datadir: &std::path::Path,
    files: &[PathBuf],
    threads: Option<usize>,
    history: Option<u64>,
    json: bool,
) -> ExitCode {
    let executor = match executor_for(threads, false) {
        Ok(e) => e,
        Err(code) => return code,
    };
    let options = StoreOptions {
        history_limit: history,
    };
    let mut chain = match pel_node::chain::Chain::open(datadir, options) {
        Ok(c) => c.with_executor(executor),
        Err(e) => return fail(e),
    };
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} blocks  {msg}  eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut summary = pel_node::import::ImportSummary::default();
    let mut result = Ok(());
    for file in files {
        let data = match std::fs::read(file) {
            Ok(d) => d,
            Err(e) => {
                bar.finish_and_clear();
                return fail(format!("cannot read {}: {e}", file.display()));
            }
        };
        result = pel_node::import::import_bytes(&mut chain, &data, &mut summary, &bar);
        if result.is_err() {
            break;
        }
    }
    bar.finish_and_clear();
    summary.head = chain.head().number;
    if json {
        if let Err(code) = print_json(&summary) {
            return code;
        }
    } else {
        let mut table = Table::new(
            &[
                "blocks",
                "skipped",
                "txs",
                "Mgas",
                "seconds",
                "Mgas/s",
                "validate s",
                "execute s",
                "root s",
                "commit s",
                "head",
            ],
            0,
        );
        table.row(vec![
            summary.blocks.to_string(),
            summary.skipped.to_string(),
            summary.txs.to_string(),
            format!("{:.1}", summary.gas as f64 / 1e6),
            format!("{:.2}", summary.seconds),
            format!("{:.1}", summary.mgas_per_s),
            format!("{:.3}", summary.validate_s),
            format!("{:.3}", summary.execute_s),
            format!("{:.3}", summary.root_s),
            format!("{:.3}", summary.commit_s),
            summary.head.to_string(),
        ]);
        print!("{}", table.render());
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(format!(
            "import stopped, chain stays at block {}: {e}",
            chain.head().number
        )),
    }
}

fn run_export(datadir: &std::path::Path, file: &std::path::Path) -> ExitCode {
    let chain = match pel_node::chain::Chain::open(datadir, StoreOptions::default()) {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    match pel_node::chain::export(&chain, file) {
        Ok(n) => {
            println!("exported {n} blocks to {}", file.display());
            ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    }
}

fn run_import_bench(
    accounts: usize,
    blocks: usize,
    txs: usize,
    threads: Option<usize>,
    json: bool,
) -> ExitCode {
    let executor = match executor_for(threads, false) {
        Ok(e) => e,
        Err(code) => return code,
    };
    let spec = pel_node::synth::SynthSpec {
        accounts,
        senders: 256.min(accounts.max(1)),
        blocks,
        txs_per_block: txs,
        seed: 42,
    };
    let scratch = std::env::temp_dir().join(format!("pel-import-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    let result = pel_node::synth::import_bench(&spec, executor, &scratch);
    let _ = std::fs::remove_dir_all(&scratch);
    let r = match result {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    if json {
        if let Err(code) = print_json(&r) {
            return code;
        }
        return ExitCode::SUCCESS;
    }
    let i = &r.import;
    let mut table = Table::new(
        &[
            "accounts",
            "blocks",
            "txs",
            "threads",
            "Mgas/s",
            "execute s",
            "root s",
            "commit s",
            "validate s",
            "(root+commit)/exec",
        ],
        0,
    );
    table.row(vec![
        r.accounts.to_string(),
        i.blocks.to_string(),
        i.txs.to_string(),
        r.threads.to_string(),
        format!("{:.1}", i.mgas_per_s),
        format!("{:.3}", i.execute_s),
        format!("{:.3}", i.root_s),
        format!("{:.3}", i.commit_s),
        format!("{:.3}", i.validate_s),
        format!("{:.2}", r.root_commit_over_execute),
    ]);
    print!("{}", table.render());
    ExitCode::SUCCESS
}

fn run_blocktest(
    paths: Vec<PathBuf>,
    threads: Option<usize>,
    force_parallel: bool,
    json: bool,
) -> ExitCode {
    let executor = match executor_for(threads, force_parallel) {
        Ok(e) => e,
        Err(code) => return code,
    };
    let scratch = std::env::temp_dir().join(format!("pel-blocktest-{}", std::process::id()));
    let outcome = pel_node::blocktest::run(&paths, executor, &scratch);
    let _ = std::fs::remove_dir_all(&scratch);
    let outcome = match outcome {
        Ok(o) => o,
        Err(e) => return fail(e),
    };
    print_outcome(&outcome, json)
}

/// Prints a test outcome (failures, skips, the closing count line) or its JSON.
fn print_outcome(outcome: &statetest::Outcome, json: bool) -> ExitCode {
    if json {
        if let Err(code) = print_json(outcome) {
            return code;
        }
    } else {
        for f in &outcome.failures {
            println!("FAIL {}: {}", f.id, f.reason);
        }
        for s in &outcome.skips {
            println!("SKIP {}: {}", s.id, s.reason);
        }
        let mut line = format!("{} passed, {} failed", outcome.passed, outcome.failed);
        if outcome.skipped > 0 {
            line.push_str(&format!(", {} skipped", outcome.skipped));
        }
        println!("{line}");
    }
    if outcome.failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn run_statetest(paths: Vec<PathBuf>, threads: Vec<usize>, json: bool) -> ExitCode {
    let mut executors = Vec::new();
    for t in threads {
        match ParallelExecutor::new(t) {
            Ok(mut e) => {
                e.cost_model = CostModel::always();
                executors.push(e);
            }
            Err(e) => return fail(e),
        }
    }
    let outcome = match statetest::run_with(&paths, &executors) {
        Ok(o) => o,
        Err(e) => return fail(e),
    };
    print_outcome(&outcome, json)
}
