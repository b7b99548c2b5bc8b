//! The Block-STM parallel executor: a fixed pool of worker threads executes a
//! block's transactions optimistically against the multi-version memory,
//! validates every read, re-executes what conflicted, and then commits the
//! final incarnations in block order through the same [`BlockState`] commit as
//! the sequential executor, so both produce the same [`BlockOutput`].
//!
//! Phases of one block:
//! 1. pre-block system calls, sequentially, on a [`BlockState`];
//! 2. the parallel phase over that state (a [`DiffOverlay`] of the base):
//!    workers take tasks from the [`Scheduler`] until it reports done;
//! 3. commit: in order, each transaction's block-limit checks, its state
//!    changes, its deferred beneficiary fee and its receipt; then the
//!    post-block steps shared with the sequential executor.
//!
//! A cost model sends blocks where parallelism cannot pay to the sequential
//! executor.

use crate::{
    block::{BlockInput, BlockOutput},
    block_state::BlockState,
    error::ExecError,
    mv_memory::{Location, MvMemory, Value},
    profile::{self, BlockProfile, TxTrace},
    scheduler::{lock, Scheduler, Task, TxIdx},
    sequential::{self, check_block_limits, finish_block, make_receipt, tx_error, ExecOptions},
    system,
    vm::{self, Incarnated, ReadRecord, Shared, TxOutcome},
    ChainConfig,
};
use pel_state::{DiffOverlay, StateReader};
use revm::context::result::EVMError;
use std::{sync::Mutex, time::Instant};

/// Counters of one parallel run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ParallelStats {
    /// The block ran through the parallel phase (false: the cost model chose
    /// the sequential executor).
    pub parallel: bool,
    /// Aborted incarnations (each is re-executed).
    pub reexecutions: usize,
    /// Validations that found a changed read.
    pub validation_failures: usize,
    /// The parallel phase gave up (most incarnations were aborting) and the
    /// block was executed sequentially.
    pub fell_back: bool,
    /// Sum of the final incarnations' execution times, in nanoseconds: the
    /// serial work the parallel phase spread over its threads (0 when the
    /// block did not run in parallel).
    pub work_ns: u64,
}

/// Whether a run records the block's conflict profile.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Profiling {
    /// No profile.
    Off,
    /// A profile when the cost model runs the parallel phase to its end.
    IfParallel,
    /// Always run the parallel phase to its end, and profile it.
    Forced,
}

/// When to run a block in parallel. The thresholds were fitted on the
/// captured mainnet blocks at 2 threads (see `benches/RESULTS.md`): below them
/// the parallel bookkeeping costs more than the second core gives.
#[derive(Clone, Copy, Debug)]
pub struct CostModel {
    /// Fewer transactions than this run sequentially.
    pub min_txs: usize,
    /// Blocks using less gas than this (the header's gas used, or the sum of
    /// gas limits when unknown) run sequentially.
    pub min_gas: u64,
    /// Blocks averaging less gas per transaction than this (mostly plain
    /// transfers, a microsecond each) run sequentially.
    pub min_gas_per_tx: u64,
    /// Give up the parallel phase and execute in order once this many
    /// incarnations were aborted and they are at least half of all executions
    /// (a dependent block); `None` never gives up.
    pub fallback_min_aborts: Option<usize>,
}

impl Default for CostModel {
    fn default() -> Self {
        Self {
            min_txs: 16,
            min_gas: 4_000_000,
            min_gas_per_tx: 33_000,
            fallback_min_aborts: Some(64),
        }
    }
}

impl CostModel {
    /// Always run the parallel phase to its end and use its result (tests
    /// and benchmarks).
    pub fn always() -> Self {
        Self {
            min_txs: 0,
            min_gas: 0,
            min_gas_per_tx: 0,
            fallback_min_aborts: None,
        }
    }

    /// Run the parallel phase on every block, but still fall back to in-order
    /// execution on a dependent block (benchmarks, `--force-parallel`).
    pub fn forced() -> Self {
        Self {
            fallback_min_aborts: CostModel::default().fallback_min_aborts,
            ..Self::always()
        }
    }

    /// Whether `block` should run in parallel on `threads` threads.
    pub fn parallel(&self, block: &BlockInput, threads: usize) -> bool {
        let txs = block.transactions.len();
        if threads < 2 && self.min_txs > 0 {
            return false;
        }
        let gas = if block.header.gas_used > 0 {
            block.header.gas_used
        } else {
            block.transactions.iter().map(|t| t.env.gas_limit).sum()
        };
        txs >= self.min_txs
            && gas >= self.min_gas
            && gas >= self.min_gas_per_tx.saturating_mul(txs as u64)
    }
}

/// Blocks with at least this many transactions free their bookkeeping on a
/// background thread.
const BACKGROUND_DROP_MIN_TXS: usize = 256;

/// Stack size of a worker thread: deep call stacks (1024 frames) need more
/// than the default.
const WORKER_STACK_BYTES: usize = 64 << 20;

/// A Block-STM executor with its own fixed pool of worker threads.
#[derive(Debug)]
pub struct ParallelExecutor {
    pool: rayon::ThreadPool,
    threads: usize,
    /// When to fall back to the sequential executor.
    pub cost_model: CostModel,
}

/// The executor could not start its threads.
#[derive(Debug, thiserror::Error)]
#[error("cannot start {threads} worker threads: {reason}")]
pub struct PoolError {
    threads: usize,
    reason: String,
}

#[derive(Debug, Default)]
struct TxSlot {
    reads: Vec<ReadRecord>,
    outcome: Option<TxOutcome>,
    /// Execution time of the latest incarnation.
    time_ns: u64,
    /// The latest incarnation's writes, kept only when profiling.
    writes: Vec<(Location, Value)>,
    incarnations: u32,
}

impl ParallelExecutor {
    /// An executor with `threads` workers (at least one).
    pub fn new(threads: usize) -> Result<Self, PoolError> {
        let threads = threads.max(1);
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("pel-worker-{i}"))
            // Deep call stacks (1024 frames) need more than the default stack.
            .stack_size(WORKER_STACK_BYTES)
            .build()
            .map_err(|e| PoolError {
                threads,
                reason: e.to_string(),
            })?;
        Ok(Self {
            pool,
            threads,
            cost_model: CostModel::default(),
        })
    }

    /// Number of worker threads.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Executes `block` on `state`; the output equals the sequential executor's.
    pub fn execute_block<S: StateReader>(
        &self,
        state: S,
        block: &BlockInput,
        chain: &ChainConfig,
        options: ExecOptions,
    ) -> Result<(BlockOutput, ParallelStats), ExecError> {
        self.run(state, block, chain, options, Profiling::Off)
            .map(|(output, stats, _)| (output, stats))
    }

    /// Like [`Self::execute_block`], and also the block's conflict profile
    /// when the parallel phase ran to its end (not when the cost model chose
    /// the sequential executor or the phase fell back).
    pub fn execute_block_profiled<S: StateReader>(
        &self,
        state: S,
        block: &BlockInput,
        chain: &ChainConfig,
        options: ExecOptions,
    ) -> Result<(BlockOutput, ParallelStats, Option<BlockProfile>), ExecError> {
        self.run(state, block, chain, options, Profiling::IfParallel)
    }

    /// Runs the parallel phase to its end whatever the cost model says, and
    /// returns the block's conflict profile with the output.
    pub fn profile_block<S: StateReader>(
        &self,
        state: S,
        block: &BlockInput,
        chain: &ChainConfig,
        options: ExecOptions,
    ) -> Result<(BlockOutput, ParallelStats, BlockProfile), ExecError> {
        let (output, stats, profile) = self.run(state, block, chain, options, Profiling::Forced)?;
        let profile = profile.ok_or_else(|| {
            tx_error(
                block,
                0,
                EVMError::Custom("the parallel phase produced no profile".into()),
            )
        })?;
        Ok((output, stats, profile))
    }

    fn run<S: StateReader>(
        &self,
        state: S,
        block: &BlockInput,
        chain: &ChainConfig,
        options: ExecOptions,
        profiling: Profiling,
    ) -> Result<(BlockOutput, ParallelStats, Option<BlockProfile>), ExecError> {
        if profiling != Profiling::Forced && !self.cost_model.parallel(block, self.threads) {
            let output = sequential::execute_block(state, block, chain, options)?;
            return Ok((output, ParallelStats::default(), None));
        }
        let fallback_min_aborts = match profiling {
            Profiling::Forced => None,
            _ => self.cost_model.fallback_min_aborts,
        };
        let keep_writes = profiling != Profiling::Off;
        let header = &block.header;
        let spec = chain.spec_at(header.number, header.timestamp);
        let code = options.code_cache.clone().unwrap_or_default();

        // 1. Pre-block system calls.
        let mut evm = system::new_evm(
            BlockState::with_code_cache(state, code.clone()),
            chain,
            header,
            spec,
        );
        system::pre_block_calls(&mut evm, header, spec)?;
        let pre_block = evm.ctx.journaled_state.inner.database.diff();

        // 2. The parallel phase.
        let n = block.transactions.len();
        let slots: Vec<Mutex<TxSlot>> = (0..n).map(|_| Mutex::default()).collect();
        let mv = MvMemory::new(n);
        let same_sender = previous_by_sender(block);
        let scheduler = Scheduler::new(n);
        {
            let base = DiffOverlay::new(evm.ctx.journaled_state.inner.database.base(), &pre_block);
            let shared = Shared {
                base: &base,
                mv: &mv,
                code: &code,
                beneficiary: header.beneficiary,
                spec,
            };
            let cfg = evm.ctx.cfg.clone();
            let block_env = evm.ctx.block.clone();
            // More workers than transactions would only wait.
            let workers = self.threads.min(n).max(1);
            self.pool.scope(|scope| {
                for _ in 0..workers {
                    scope.spawn(|_| {
                        let mut vm = vm::new_vm(&shared, cfg.clone(), block_env.clone());
                        worker(
                            &scheduler,
                            &shared,
                            &mut vm,
                            &slots,
                            block,
                            &same_sender,
                            WorkerPolicy {
                                fallback_min_aborts,
                                keep_writes,
                            },
                        );
                    });
                }
            });
        }
        let mut garbage = Vec::new();
        let mut stats = ParallelStats {
            parallel: true,
            reexecutions: scheduler.aborts(),
            validation_failures: scheduler.validation_failures(),
            fell_back: false,
            work_ns: 0,
        };
        if scheduler.halted() {
            // Speculation was wasted on a dependent block: run it in order.
            let base = evm.ctx.journaled_state.inner.database.base();
            let output = sequential::execute_block(base, block, chain, options)?;
            stats.fell_back = true;
            return Ok((output, stats, None));
        }

        // The parallel phase's bookkeeping is large for big blocks; free it off
        // the critical path.
        let mut traces = Vec::with_capacity(if keep_writes { n } else { 0 });
        let outcomes: Vec<Option<TxOutcome>> = slots
            .into_iter()
            .map(|slot| {
                let slot = slot.into_inner().unwrap_or_else(|e| e.into_inner());
                stats.work_ns += slot.time_ns;
                if keep_writes {
                    let (gas, paid_fee) = match &slot.outcome {
                        Some(Ok((result, _, fee))) => (result.tx_gas_used(), !fee.is_zero()),
                        _ => (0, false),
                    };
                    traces.push(TxTrace {
                        reads: slot.reads,
                        writes: slot.writes,
                        paid_fee,
                        gas,
                        time_ns: slot.time_ns,
                        incarnations: slot.incarnations,
                    });
                } else if n >= BACKGROUND_DROP_MIN_TXS {
                    garbage.push(slot.reads);
                }
                slot.outcome
            })
            .collect();
        let profile =
            keep_writes.then(|| profile::profile(&traces, header.beneficiary, stats.reexecutions));
        if n >= BACKGROUND_DROP_MIN_TXS {
            garbage.extend(traces.into_iter().map(|t| t.reads));
        }
        if n >= BACKGROUND_DROP_MIN_TXS {
            let garbage = (mv, scheduler, garbage);
            std::thread::spawn(move || drop(garbage));
        }

        // 3. Commit in order.
        let max_blob_gas = sequential::max_blob_gas(chain, spec, header.timestamp);
        let mut receipts = Vec::with_capacity(n);
        let mut cumulative_gas = 0u64;
        let mut blob_gas = 0u64;
        for (index, outcome) in outcomes.into_iter().enumerate() {
            check_block_limits(block, index, cumulative_gas, blob_gas, max_blob_gas)?;
            let (result, changes, fee) = match outcome {
                Some(Ok(done)) => done,
                Some(Err(e)) => return Err(tx_error(block, index, e)),
                None => {
                    return Err(tx_error(
                        block,
                        index,
                        EVMError::Custom(
                            "parallel phase ended without executing the transaction".into(),
                        ),
                    ))
                }
            };
            let db = &mut evm.ctx.journaled_state.inner.database;
            db.commit_changes(changes)
                .and_then(|()| db.increment_balance(header.beneficiary, fee, spec))
                .map_err(|e| tx_error(block, index, EVMError::Database(e)))?;
            cumulative_gas += result.tx_gas_used();
            let tx = &block.transactions[index];
            blob_gas += tx.env.blob_hashes.len() as u64 * alloy_eips::eip4844::DATA_GAS_PER_BLOB;
            receipts.push(make_receipt(tx.tx_type, result, cumulative_gas));
        }
        let (state, requests) = finish_block(evm, block, chain, spec, &options, &receipts)?;
        Ok((
            BlockOutput {
                gas_used: cumulative_gas,
                blob_gas_used: blob_gas,
                receipts,
                diff: state.into_diff(),
                requests,
            },
            stats,
            profile,
        ))
    }
}

/// For each transaction, the previous transaction of the same sender.
fn previous_by_sender(block: &BlockInput) -> Vec<Option<TxIdx>> {
    let mut last: alloy_primitives::map::HashMap<alloy_primitives::Address, TxIdx> =
        Default::default();
    block
        .transactions
        .iter()
        .enumerate()
        .map(|(i, tx)| last.insert(tx.sender, i))
        .collect()
}

/// How a worker runs: when to give up, and what to keep for the profile.
#[derive(Clone, Copy, Debug)]
struct WorkerPolicy {
    fallback_min_aborts: Option<usize>,
    keep_writes: bool,
}

/// One worker's loop: take tasks until the scheduler reports the block done.
fn worker<'a, S: StateReader>(
    scheduler: &Scheduler,
    shared: &'a Shared<'a, S>,
    vm: &mut vm::VmEvm<'a, S>,
    slots: &[Mutex<TxSlot>],
    block: &BlockInput,
    same_sender: &[Option<TxIdx>],
    policy: WorkerPolicy,
) {
    let mut task = None;
    loop {
        if policy
            .fallback_min_aborts
            .is_some_and(|min| scheduler.mostly_aborting(min))
        {
            scheduler.halt();
            return;
        }
        let current = match task.take() {
            Some(t) => t,
            None => match scheduler.next_task() {
                Some(t) => t,
                None => return,
            },
        };
        task = match current {
            Task::Execute(version) => {
                let env = &block.transactions[version.tx].env;
                // A sender's transactions are a chain (nonce, balance): wait for
                // the previous one instead of executing on a stale view.
                if let Some(previous) = same_sender[version.tx] {
                    if !scheduler.is_executed(previous) && scheduler.wait_for(version.tx, previous)
                    {
                        continue;
                    }
                }
                loop {
                    let start = Instant::now();
                    match vm::execute(vm, shared, version.tx, env) {
                        Incarnated::Blocked(blocker) => {
                            if scheduler.add_dependency(version.tx, blocker) {
                                break None;
                            }
                            // The blocker finished meanwhile: run again at once.
                        }
                        Incarnated::Done {
                            reads,
                            writes,
                            fee,
                            outcome,
                        } => {
                            let time_ns = start.elapsed().as_nanos() as u64;
                            let wrote_new = shared.mv.record(version.tx, &writes, fee);
                            let kept = if policy.keep_writes {
                                writes
                            } else {
                                Vec::new()
                            };
                            {
                                let mut slot = lock(&slots[version.tx]);
                                slot.reads = reads;
                                slot.outcome = Some(outcome);
                                slot.time_ns = time_ns;
                                slot.writes = kept;
                                slot.incarnations = version.incarnation + 1;
                            }
                            break scheduler.finish_execution(version, wrote_new);
                        }
                    }
                }
            }
            Task::Validate(version) => {
                let valid = {
                    let slot = lock(&slots[version.tx]);
                    vm::validate(shared, version.tx, &slot.reads)
                };
                let aborted = !valid && scheduler.try_validation_abort(version);
                if aborted {
                    shared.mv.convert_writes_to_estimates(version.tx);
                }
                scheduler.finish_validation(version.tx, aborted)
            }
        };
    }
}
