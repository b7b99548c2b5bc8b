//! The Block-STM parallel executor: a fixed pool of worker threads executes a
//! block's transactions optimistically against the multi-version memory,
//! validates every read, re-executes what conflicted, and then commits the
//! final incarnations in block order through the same [`BlockState`] commit as
//! the sequential executor, so both produce the same [`BlockOutput`].
//!
//! Phases of one block:
//! 1. pre-block system calls, sequentially, on a [`BlockState`];
//! 2. the parallel phase over that state (a [`DiffOverlay`] of the base):
//!    workers take tasks from the [`Scheduler`] until it reports done, and
//!    between tasks commit the final prefix of the block through a
//!    [`Committer`] (in order: each transaction's block-limit checks, its
//!    state changes, its deferred beneficiary fee and its receipt), so the
//!    serial commit overlaps with execution;
//! 3. whatever the workers left uncommitted is committed in order, the
//!    committed state is absorbed into the pre-block state, and the
//!    post-block steps shared with the sequential executor run.
//!
//! A cost model sends blocks where parallelism cannot pay to the sequential
//! executor. When the parallel phase finds most incarnations aborting (a
//! dependent block), it stops, and the transactions not committed yet are
//! executed in order on top of the committed prefix, so the speculation
//! wasted is only what ran past that prefix.

use crate::{
    block::{BlockInput, BlockOutput},
    block_state::BlockState,
    commit::{CommittedBlock, Committer},
    error::ExecError,
    hints,
    janitor::Janitor,
    mv_memory::{Location, MvMemory, Value},
    partition::{self, Grouping, Plan, Target},
    profile::{self, BlockProfile, TxTrace},
    scheduler::{lock, FallBack, Scheduler, Task, TxIdx},
    sequential::{self, finish_block, tx_error, ExecOptions},
    system,
    vm::{self, Incarnated, ReadRecord, Shared, TxOutcome},
    ChainConfig,
};
use alloy_primitives::{map::B256Map, Address, B256};
use pel_state::{DiffOverlay, StateReader};
use revm::{context::result::EVMError, primitives::hardfork::SpecId};
use std::{
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex,
    },
    time::Instant,
};

/// Counters of one parallel run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ParallelStats {
    /// The block ran through the parallel phase (false: the cost model chose
    /// the sequential executor).
    pub parallel: bool,
    /// The block ran on the partitioned fast path (see [`crate::partition`]).
    pub partitioned: bool,
    /// The partitioned fast path was tried and given up (a conflict, a
    /// failed transaction or a block limit), so the block ran through
    /// Block-STM.
    pub partition_abandoned: bool,
    /// Aborted incarnations (each is re-executed).
    pub reexecutions: usize,
    /// Validations that found a changed read.
    pub validation_failures: usize,
    /// The parallel phase gave up (most incarnations were aborting) and the
    /// transactions it had not committed were executed in order.
    pub fell_back: bool,
    /// Sum of the final incarnations' execution times, in nanoseconds: the
    /// serial work the parallel phase spread over its threads (0 when the
    /// block did not run in parallel).
    pub work_ns: u64,
}

impl ParallelStats {
    /// The path the block took: `sequential` (the cost model's choice),
    /// `partitioned`, `block-stm`, or `fell-back` (Block-STM gave up on a
    /// dependent block and executed the rest in order).
    pub fn path(&self) -> &'static str {
        if self.partitioned {
            "partitioned"
        } else if !self.parallel {
            "sequential"
        } else if self.fell_back {
            "fell-back"
        } else {
            "block-stm"
        }
    }
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

/// Transactions per piece of the parallel classification of call targets.
const CLASSIFY_CHUNK: usize = 256;

/// Questions of the partition plan about call targets answered one by one
/// before the rest of the block is classified at once.
const CLASSIFY_ONE_BY_ONE: usize = 64;

/// When to run a block in parallel. The thresholds were fitted on the
/// captured mainnet blocks at 2 threads (see `benches/RESULTS.md`): below them
/// the parallel bookkeeping costs more than the second core gives.
#[derive(Clone, Copy, Debug)]
pub struct CostModel {
    /// Fewer transactions than this run sequentially.
    pub min_txs: usize,
    /// Blocks using less gas than this (the header's gas used, or the sum of
    /// gas limits when unknown) run sequentially. The captured blocks below 7
    /// Mgas take under a millisecond before Berlin, where the parallel start
    /// (waking the workers, 20-80 µs on a VM each hand-over) leaves too little
    /// to gain: 4330482 (6.7 Mgas, 0.6 ms) read 0.62-0.82x on Block-STM and
    /// 4369999 (6.6 Mgas) 0.82-1.70x around 1.0x.
    pub min_gas: u64,
    /// [`Self::min_gas`] from Berlin on. EIP-2929 priced state access by its
    /// cost there, and a unit of gas takes longer: the captured blocks below
    /// 4 Mgas ran at 10-22 Ggas/s before Berlin (cheap transfers and failed
    /// calls), 1-4 Ggas/s after it (signature checks, cold storage), so the
    /// same work that pays for the parallel start shows as less gas.
    pub min_gas_from_berlin: u64,
    /// Blocks averaging less gas per transaction than this (mostly plain
    /// transfers, a microsecond each) run sequentially.
    pub min_gas_per_tx: u64,
    /// When to give up the parallel phase and execute the rest of the block
    /// in order: enough aborted incarnations, a quarter of the executions or
    /// more, over the block so far or the latest windows (a dependent block;
    /// see [`crate::scheduler::Scheduler::mostly_aborting`]); `None` never
    /// gives up.
    pub fallback: Option<FallBack>,
    /// When to try the partitioned fast path ([`crate::partition`]) before
    /// Block-STM; `None` never tries it.
    pub partition: Option<PartitionPolicy>,
}

/// Where the partition policy sends a block.
#[derive(Clone, Debug, PartialEq)]
pub enum Route {
    /// Through the partitioned fast path, by this plan.
    Partition(Plan),
    /// Through the sequential executor.
    Sequential,
}

/// When the partitioned fast path is tried.
#[derive(Clone, Copy, Debug)]
pub struct PartitionPolicy {
    /// Blocks with fewer transactions skip it.
    pub min_txs: usize,
    /// Blocks using less gas than this (the header's gas used, or the sum of
    /// gas limits when unknown) skip it. The captured blocks it splits below
    /// 10 Mgas are a millisecond or less of plain transfers, where waking the
    /// workers and the bins' own bookkeeping leave nothing reliable to gain
    /// (5891667, 380 payouts in 0.4-0.6 ms: 0.81-1.13x, median 0.85x;
    /// 4330482: 0.74-1.00x); from 12 Mgas on they gain (11814555,
    /// 14396881: 1.1-1.35x).
    pub min_gas: u64,
    /// The least speedup the plan must allow (total gas limit over the
    /// heaviest bin's).
    pub min_predicted: f64,
    /// The largest share of the block's gas limit the group of calls into
    /// contracts that call others may hold. On the captured mainnet blocks
    /// that group took 75-90% of the execution time where its gas limits
    /// said 40-60% (its bins came out unbalanced), and it is where plans
    /// conflicted; Block-STM, which balances by itself, ran those blocks
    /// faster.
    pub max_reaching: f64,
    /// [`Self::max_reaching`] for a block the cost model would not run on
    /// Block-STM (many small transactions): the partitioned path then only
    /// competes with the sequential one.
    pub max_reaching_alone: f64,
    /// How many plain transfers an account without code must receive to be
    /// a sink ([`partition::Plan::sinks`]): fewer join few groups, and each
    /// sink costs every bin a look-up per account load.
    pub min_sink_credits: u32,
    /// The least share of the block's gas limits that the plain payments
    /// from or to one hot account must hold for the plan to split them
    /// across bins: the beneficiary's payouts
    /// ([`partition::Plan::split_payouts`]), the deposits to a sink
    /// ([`partition::Plan::sinks`]). Below it, their group cannot cap the
    /// plan, and splitting costs more than it gives.
    pub min_split_share: f64,
    /// How transactions are grouped.
    pub grouping: Grouping,
    /// Run a block sequentially when its transactions all fall into one
    /// group and none calls a contract that reaches others: they share a
    /// sender, a called contract or a paid address all along (a chain of one
    /// sender's transactions, increments of one counter, payments to one
    /// address), so Block-STM would find them dependent, or gain less than
    /// its own bookkeeping costs.
    pub one_group_sequential: bool,
}

impl Default for PartitionPolicy {
    fn default() -> Self {
        Self {
            min_txs: 16,
            min_gas: 10_000_000,
            min_predicted: 1.6,
            max_reaching: 0.1,
            max_reaching_alone: 0.5,
            min_sink_credits: 16,
            min_split_share: 0.5,
            grouping: Grouping::Keys,
            one_group_sequential: true,
        }
    }
}

impl PartitionPolicy {
    /// Try every block, whatever its plan allows: tests.
    pub fn always(grouping: Grouping) -> Self {
        Self {
            min_txs: 0,
            min_gas: 0,
            min_predicted: 0.0,
            max_reaching: 1.0,
            max_reaching_alone: 1.0,
            min_sink_credits: 2,
            min_split_share: 0.0,
            grouping,
            one_group_sequential: false,
        }
    }
}

impl Default for CostModel {
    fn default() -> Self {
        Self {
            min_txs: 16,
            min_gas: 7_000_000,
            min_gas_from_berlin: 2_500_000,
            min_gas_per_tx: 25_000,
            fallback: Some(FallBack::DEFAULT),
            partition: Some(PartitionPolicy::default()),
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
            min_gas_from_berlin: 0,
            min_gas_per_tx: 0,
            fallback: None,
            partition: None,
        }
    }

    /// Run the parallel phase on every block, but still fall back to in-order
    /// execution on a dependent block (benchmarks, `--force-parallel`).
    pub fn forced() -> Self {
        Self {
            fallback: CostModel::default().fallback,
            partition: CostModel::default().partition,
            ..Self::always()
        }
    }

    /// How the partition policy routes `block` on `threads` threads; `None`
    /// when it has no say (no policy, one thread, a small block, or a plan
    /// ruled out), and the cost model decides between Block-STM and the
    /// sequential executor.
    ///
    /// When building a block (`fill`) whose candidates' gas limits add up to
    /// more than the block's, the block may end before its last candidate:
    /// the partitioned path would have run past that point, so it is not
    /// tried.
    pub fn route(
        &self,
        block: &BlockInput,
        spec: SpecId,
        threads: usize,
        fill: bool,
        target: impl FnMut(TxIdx, Address) -> Target,
    ) -> Option<Route> {
        let policy = self.partition?;
        if threads < 2
            || block.transactions.len() < policy.min_txs
            || block_gas(block) < policy.min_gas
        {
            return None;
        }
        if fill && block.gas_limits() > block.header.gas_limit {
            return None;
        }
        let max_reaching = if self.parallel(block, spec, threads) {
            policy.max_reaching
        } else {
            policy.max_reaching_alone
        };
        let limits = partition::Limits {
            grouping: policy.grouping,
            max_reaching,
            min_sink_credits: policy.min_sink_credits,
            min_split_share: policy.min_split_share,
            min_predicted: policy.min_predicted,
        };
        let plan = partition::plan(block, threads, &limits, target)?;
        if policy.one_group_sequential && plan.groups == 1 && plan.reaching == 0.0 {
            Some(Route::Sequential)
        } else if plan.predicted >= policy.min_predicted && plan.reaching <= max_reaching {
            Some(Route::Partition(plan))
        } else {
            None
        }
    }

    /// Whether `block`, of fork `spec`, should run in parallel on `threads`
    /// threads.
    pub fn parallel(&self, block: &BlockInput, spec: SpecId, threads: usize) -> bool {
        let txs = block.transactions.len();
        if threads < 2 && self.min_txs > 0 {
            return false;
        }
        let gas = block_gas(block);
        let min_gas = if spec.is_enabled_in(SpecId::BERLIN) {
            self.min_gas_from_berlin
        } else {
            self.min_gas
        };
        txs >= self.min_txs
            && gas >= min_gas
            && gas >= self.min_gas_per_tx.saturating_mul(txs as u64)
    }
}

/// The gas a block uses: its header's, or the sum of its gas limits when the
/// header does not say (a block being built).
fn block_gas(block: &BlockInput) -> u64 {
    if block.header.gas_used > 0 {
        block.header.gas_used
    } else {
        block.gas_limits()
    }
}

/// Blocks with at least this many transactions leave their clean-up to the
/// janitor; smaller ones clean up at once (on two cores, background work
/// competes with the next block's workers, and theirs is cheap).
const BACKGROUND_DROP_MIN_TXS: usize = 256;

/// Stack size of a worker thread: deep call stacks (1024 frames) need more
/// than the default.
const WORKER_STACK_BYTES: usize = 64 << 20;

/// A Block-STM executor with its own fixed pool of worker threads.
#[derive(Debug)]
pub struct ParallelExecutor {
    pool: rayon::ThreadPool,
    threads: usize,
    /// The multi-version memory of the previous block, cleared off the
    /// critical path, for the next block to reuse.
    spare_mv: Arc<Mutex<Option<MvMemory>>>,
    /// Frees each block's bookkeeping and clears its multi-version memory
    /// in the background.
    janitor: Janitor,
    /// When to fall back to the sequential executor.
    pub cost_model: CostModel,
    /// What each code (by hash) may reach, as the partitioned plan asks.
    targets: Mutex<B256Map<Target>>,
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
    /// Gas used by the latest incarnation (0 when it failed).
    gas: u64,
    /// The latest incarnation owes the beneficiary a fee.
    paid_fee: bool,
    /// Execution time of the latest incarnation.
    time_ns: u64,
    /// The latest incarnation's writes, kept only when profiling.
    writes: Vec<(Location, Value)>,
    incarnations: u32,
}

impl ParallelExecutor {
    /// An executor with `threads` workers (at least one). When the process
    /// may run on at least that many cores, worker `i` is pinned to the
    /// `i`-th of them: unpinned, the kernel often woke the second worker on
    /// the first one's busy core (wake-affine placement) and left it queued
    /// there for a scheduler tick (about 4 ms), so the first worker ran a
    /// dependent block alone at the parallel path's single-thread cost.
    pub fn new(threads: usize) -> Result<Self, PoolError> {
        let threads = threads.max(1);
        let cores = core_affinity::get_core_ids()
            .filter(|cores| threads > 1 && cores.len() >= threads)
            .unwrap_or_default();
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("pel-worker-{i}"))
            // Deep call stacks (1024 frames) need more than the default stack.
            .stack_size(WORKER_STACK_BYTES)
            .start_handler(move |i| {
                if let Some(core) = cores.get(i) {
                    // Best effort: an unpinned worker is only slower to wake.
                    core_affinity::set_for_current(*core);
                }
            })
            .build()
            .map_err(|e| PoolError {
                threads,
                reason: e.to_string(),
            })?;
        Ok(Self {
            pool,
            threads,
            spare_mv: Arc::default(),
            janitor: Janitor::new(),
            cost_model: CostModel::default(),
            targets: Mutex::default(),
        })
    }

    /// Number of worker threads.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// What the target of a call may reach, by its code (see
    /// [`partition::classify`]); a state error counts as reaching anything.
    fn classify<S: StateReader>(
        &self,
        state: &S,
        code: &crate::CodeCache,
        to: Address,
        seen: &mut B256Map<Target>,
    ) -> Target {
        let Ok(account) = state.account(&to) else {
            return Target::Reaching;
        };
        let Some(hash) = account.filter(|a| !a.has_no_code()).map(|a| a.code_hash) else {
            return Target::Account;
        };
        if let Some(target) = seen.get(&hash) {
            return *target;
        }
        let target = self.classify_code(state, code, hash);
        seen.insert(hash, target);
        target
    }

    /// What code `hash` may reach, through the executor's map of classified
    /// code.
    fn classify_code<S: StateReader>(
        &self,
        state: &S,
        code: &crate::CodeCache,
        hash: B256,
    ) -> Target {
        if let Some(target) = lock(&self.targets).get(&hash) {
            return *target;
        }
        let target = match code.get(&hash) {
            Some(analysed) => partition::classify(&analysed.original_bytes()),
            None => match state.code(&hash) {
                Ok(Some(raw)) => partition::classify(&raw),
                _ => Target::Reaching,
            },
        };
        lock(&self.targets).insert(hash, target);
        target
    }

    /// The targets of the calls of `block` from transaction `from` on that
    /// the plan will ask about ([`partition::asks_target`]), classified on
    /// all workers: the account reads are a cache miss each, and a block of
    /// swaps on distinct pools asks about every transaction.
    fn classify_ahead<S: StateReader>(
        &self,
        state: &S,
        code: &crate::CodeCache,
        block: &BlockInput,
        from: TxIdx,
    ) -> Vec<Option<Target>> {
        use rayon::prelude::*;
        let beneficiary = block.header.beneficiary;
        let rest = block.transactions.get(from..).unwrap_or_default();
        self.pool.install(|| {
            rest.par_iter()
                .with_min_len(CLASSIFY_CHUNK)
                .map_init(B256Map::default, |seen, tx| {
                    partition::asks_target(tx, beneficiary)
                        .map(|to| self.classify(state, code, to, seen))
                })
                .collect()
        })
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
        let code = options.code_cache.clone().unwrap_or_default();
        let spec = chain.spec_at(block.header.number, block.header.timestamp);
        let route = match profiling {
            Profiling::Forced => None,
            _ => self
                .cost_model
                .route(block, spec, self.threads, options.fill, {
                    // The first questions are answered one by one: most plans of
                    // mainnet blocks are given up within them (too much gas in
                    // calls that reach other contracts), and a pass over the
                    // whole block would cost more than they do. A plan still
                    // asking after them has the rest of a big block classified
                    // at once, on all workers.
                    let mut ahead: Option<(TxIdx, Vec<Option<Target>>)> = None;
                    let mut asked = 0usize;
                    let mut seen = B256Map::default();
                    let (state, code) = (&state, &code);
                    move |i, to| {
                        // Classified ahead are the calls with data alone: the
                        // targets of plain transfers (payouts, sinks) are asked
                        // one by one.
                        if block
                            .transactions
                            .get(i)
                            .is_some_and(|t| t.env.data.is_empty())
                        {
                            return self.classify(state, code, to, &mut seen);
                        }
                        if ahead.is_none() {
                            asked += 1;
                            if asked > CLASSIFY_ONE_BY_ONE
                                && block.transactions.len().saturating_sub(i) >= 2 * CLASSIFY_CHUNK
                            {
                                ahead = Some((i, self.classify_ahead(state, code, block, i)));
                            }
                        }
                        let known = ahead.as_ref().and_then(|(from, targets)| {
                            targets.get(i.checked_sub(*from)?).copied()
                        });
                        match known {
                            Some(Some(target)) => target,
                            _ => self.classify(state, code, to, &mut seen),
                        }
                    }
                }),
        };
        let plan = match route {
            Some(Route::Partition(plan)) => Some(plan),
            Some(Route::Sequential) => {
                let output = sequential::execute_block(state, block, chain, options)?;
                return Ok((output, ParallelStats::default(), None));
            }
            None => None,
        };
        if plan.is_none()
            && profiling != Profiling::Forced
            && !self.cost_model.parallel(block, spec, self.threads)
        {
            let output = sequential::execute_block(state, block, chain, options)?;
            return Ok((output, ParallelStats::default(), None));
        }
        let fallback = match profiling {
            Profiling::Forced => None,
            _ => self.cost_model.fallback,
        };
        let keep_writes = profiling != Profiling::Off;
        let header = &block.header;

        // 1. Pre-block system calls.
        let mut evm = system::new_evm(
            BlockState::with_code_cache(state, code.clone()),
            chain,
            header,
            spec,
        );
        system::pre_block_calls(&mut evm, header, spec)?;

        // 2a. The partitioned fast path, when the plan says the block splits.
        let mut partition_abandoned = false;
        if let Some(plan) = plan {
            let job = partition::Job {
                pool: &self.pool,
                block,
                chain,
                spec,
                options: &options,
                code: &code,
                plan: &plan,
            };
            match partition::run(&job, evm)? {
                partition::Outcome::Done(output, work_ns) => {
                    let stats = ParallelStats {
                        parallel: true,
                        partitioned: true,
                        work_ns,
                        ..ParallelStats::default()
                    };
                    return Ok((output, stats, None));
                }
                partition::Outcome::Abandoned(_, back) => {
                    evm = *back;
                    partition_abandoned = true;
                }
            }
            if !self.cost_model.parallel(block, spec, self.threads) {
                let state = evm.ctx.journaled_state.inner.database.base();
                let output = sequential::execute_block(state, block, chain, options)?;
                let stats = ParallelStats {
                    partition_abandoned,
                    ..ParallelStats::default()
                };
                return Ok((output, stats, None));
            }
        }
        let max_blob_gas = sequential::max_blob_gas(chain, spec, header.timestamp);

        // 2. The parallel phase, committing final results as they come.
        let pre_block = evm.ctx.journaled_state.inner.database.diff();
        let n = block.transactions.len();
        let mut slots: Vec<Mutex<TxSlot>> = (0..n).map(|_| Mutex::default()).collect();
        let mv = match lock(&self.spare_mv).take() {
            Some(mut mv) => {
                mv.set_block_size(n);
                mv
            }
            None => MvMemory::new(n),
        };
        let hints = hints::wait_hints(block);
        // More workers than transactions would only wait.
        let workers = self.threads.min(n).max(1);
        let mut scheduler = Scheduler::new(n);
        // One worker at least keeps executing in order (one worker alone
        // starts nothing early).
        scheduler.start_early(
            hints::early_starts(block, &hints, block_gas(block), workers),
            workers - 1,
        );
        let base = DiffOverlay::new(evm.ctx.journaled_state.inner.database.base(), &pre_block);
        let mut commit_state = BlockState::with_code_cache(&base, code.clone());
        commit_state.reserve_for_block(n);
        let committed_epoch = AtomicU64::new(0);
        let committer = Mutex::new(Committer::new(
            block,
            spec,
            max_blob_gas,
            options.fill,
            commit_state,
        ));
        {
            let shared = Shared {
                base: &base,
                mv: &mv,
                code: &code,
                beneficiary: header.beneficiary,
                spec,
                precompiles: revm::precompile::Precompiles::new(
                    revm::precompile::PrecompileSpecId::from_spec_id(spec),
                ),
            };
            let cfg = evm.ctx.cfg.clone();
            let block_env = evm.ctx.block.clone();
            self.pool.scope(|scope| {
                for _ in 0..workers {
                    scope.spawn(|_| {
                        let mut vm = vm::new_vm(&shared, cfg.clone(), block_env.clone());
                        worker(
                            &Block {
                                scheduler: &scheduler,
                                shared: &shared,
                                slots: &slots,
                                committer: &committer,
                                block,
                                hints: &hints,
                                committed_epoch: &committed_epoch,
                            },
                            &mut vm,
                            WorkerPolicy {
                                fallback,
                                keep_writes,
                            },
                        );
                    });
                }
            });
        }
        let mut stats = ParallelStats {
            parallel: true,
            partitioned: false,
            partition_abandoned,
            reexecutions: scheduler.aborts(),
            validation_failures: scheduler.validation_failures(),
            fell_back: false,
            work_ns: 0,
        };
        let mut committer = committer.into_inner().unwrap_or_else(|e| e.into_inner());
        let committed = if scheduler.halted() && committer.open() {
            // Speculation was wasted on a dependent block: execute what is not
            // committed yet in order, on top of the committed prefix.
            stats.fell_back = true;
            committer.finish_in_order(chain)?
        } else {
            // 3. Commit what the workers left, in order: every result is final now.
            while committer.open() {
                let mut slot = lock(&slots[committer.next()]);
                let outcome = slot.outcome.take();
                committer.commit(outcome, &slot.reads);
            }
            committer.finish()?
        };

        // The parallel phase's bookkeeping is large for big blocks: the
        // janitor frees it, and clears the multi-version memory for the next
        // block, off the critical path (see [`BACKGROUND_DROP_MIN_TXS`]).
        if !stats.fell_back {
            stats.work_ns = slots
                .iter_mut()
                .map(|slot| slot.get_mut().unwrap_or_else(|e| e.into_inner()).time_ns)
                .sum();
        }
        let (profile, garbage) = if keep_writes {
            let traces: Vec<TxTrace> = slots
                .into_iter()
                .map(|slot| {
                    let slot = slot.into_inner().unwrap_or_else(|e| e.into_inner());
                    TxTrace {
                        reads: slot.reads,
                        writes: slot.writes,
                        paid_fee: slot.paid_fee,
                        gas: slot.gas,
                        time_ns: slot.time_ns,
                        incarnations: slot.incarnations,
                    }
                })
                .collect();
            let profile = (!stats.fell_back)
                .then(|| profile::profile(&traces, header.beneficiary, stats.reexecutions));
            (profile, Box::new(traces) as Box<dyn Send>)
        } else {
            (None, Box::new(slots) as Box<dyn Send>)
        };
        let spare = Arc::clone(&self.spare_mv);
        let clean_up = move || {
            drop((scheduler, garbage));
            let mut mv = mv;
            mv.clear();
            *lock(&spare) = Some(mv);
        };
        if n >= BACKGROUND_DROP_MIN_TXS {
            self.janitor.run(clean_up);
        } else {
            clean_up();
        }

        // The committed transactions go on top of the pre-block calls, then
        // the post-block steps shared with the sequential executor.
        let CommittedBlock {
            state: committed_state,
            receipts,
            gas_used,
            blob_gas_used,
        } = committed;
        let committed_state = committed_state.into_cached();
        evm.ctx
            .journaled_state
            .inner
            .database
            .absorb(committed_state);
        let (state, requests) = finish_block(evm, block, chain, spec, &options, &receipts)?;
        let diff = state.diff_on(&self.pool);
        Ok((
            BlockOutput {
                gas_used,
                blob_gas_used,
                receipts,
                diff,
                requests,
            },
            stats,
            profile,
        ))
    }
}

/// How a worker runs: when to give up, and what to keep for the profile.
#[derive(Clone, Copy, Debug)]
struct WorkerPolicy {
    fallback: Option<FallBack>,
    keep_writes: bool,
}

/// What the workers of one block share.
struct Block<'b, 'a, 'c, S> {
    scheduler: &'b Scheduler,
    shared: &'a Shared<'a, S>,
    slots: &'b [Mutex<TxSlot>],
    committer: &'b Mutex<Committer<'c, &'c S>>,
    block: &'b BlockInput,
    /// What each transaction waits for before it runs ([`hints`]).
    hints: &'b [hints::Hints],
    /// The latest epoch at which a committed transaction's last record
    /// ended (see [`MvMemory::checked_since`]); changed under the
    /// committer's lock.
    committed_epoch: &'b AtomicU64,
}

/// Commits as many final transactions as are ready, in order, unless another
/// worker is committing already.
fn commit_ready<S: StateReader>(b: &Block<'_, '_, '_, S>) {
    let Ok(mut committer) = b.committer.try_lock() else {
        return;
    };
    let mv = b.shared.mv;
    while committer.open() {
        let tx = committer.next();
        // Every transaction below is committed: its last record is final.
        // An incarnation whose reads were found to hold after all of those
        // records needs no second look.
        let prefix = b.committed_epoch.load(Ordering::Relaxed);
        let committed = b.scheduler.try_commit(tx, |incarnation| {
            mv.checked_since(tx, incarnation, prefix)
                || vm::validate(b.shared, tx, &lock(&b.slots[tx]).reads)
        });
        if !committed {
            return;
        }
        b.committed_epoch
            .fetch_max(mv.recorded_at(tx), Ordering::Relaxed);
        // Committed: the scheduler never runs `tx` again, so its slot is final.
        let mut slot = lock(&b.slots[tx]);
        let outcome = slot.outcome.take();
        if !committer.commit(outcome, &slot.reads) {
            // The block ends here (it failed, or is full): nothing above
            // this transaction will be committed, so stop the workers.
            b.scheduler.halt();
            return;
        }
    }
}

/// One worker's loop: take tasks until the scheduler reports the block done.
fn worker<'a, S: StateReader>(
    b: &Block<'_, 'a, '_, S>,
    vm: &mut vm::VmEvm<'a, S>,
    policy: WorkerPolicy,
) {
    let scheduler = b.scheduler;
    let shared = b.shared;
    let slots = b.slots;
    let mut task = None;
    loop {
        if policy
            .fallback
            .is_some_and(|fallback| scheduler.mostly_aborting(&fallback))
        {
            scheduler.halt();
            return;
        }
        let current = match task.take() {
            Some(t) => t,
            None => {
                commit_ready(b);
                match scheduler.next_task() {
                    Some(t) => t,
                    None => return,
                }
            }
        };
        task = match current {
            Task::Execute(version) => {
                let env = &b.block.transactions[version.tx].env;
                // A sender's previous transaction, a bundle's opening trade:
                // wait for them instead of executing on a stale view.
                if b.hints[version.tx]
                    .iter()
                    .flatten()
                    .any(|&h| !scheduler.is_executed(h) && scheduler.wait_for(version.tx, h))
                {
                    continue;
                }
                loop {
                    let start = Instant::now();
                    let epoch = shared.mv.epoch();
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
                            shared
                                .mv
                                .note_checked(version.tx, version.incarnation, epoch);
                            let (gas, paid_fee) = match &outcome {
                                Ok(done) => (done.result.tx_gas_used(), !done.fee.is_zero()),
                                Err(_) => (0, false),
                            };
                            {
                                let mut slot = lock(&slots[version.tx]);
                                slot.reads = reads;
                                slot.outcome = Some(outcome);
                                slot.gas = gas;
                                slot.paid_fee = paid_fee;
                                slot.time_ns = time_ns;
                                if policy.keep_writes {
                                    slot.writes = writes;
                                }
                                slot.incarnations = version.incarnation + 1;
                            }
                            break scheduler.finish_execution(version, wrote_new);
                        }
                    }
                }
            }
            Task::Validate(version) => {
                let epoch = shared.mv.epoch();
                let valid = {
                    let slot = lock(&slots[version.tx]);
                    vm::validate(shared, version.tx, &slot.reads)
                };
                if valid {
                    shared
                        .mv
                        .note_checked(version.tx, version.incarnation, epoch);
                }
                let aborted = !valid && scheduler.try_validation_abort(version);
                if aborted {
                    shared.mv.convert_writes_to_estimates(version.tx);
                }
                scheduler.finish_validation(version.tx, aborted)
            }
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::PreparedTx;
    use revm::context::TxEnv;

    /// A block of `txs` transactions using `gas` in all.
    fn block(txs: usize, gas: u64) -> BlockInput {
        BlockInput {
            header: alloy_consensus::Header {
                gas_used: gas,
                ..Default::default()
            },
            transactions: (0..txs)
                .map(|i| PreparedTx {
                    hash: B256::ZERO,
                    tx_type: 2,
                    sender: Address::with_last_byte(i as u8),
                    env: TxEnv::default(),
                })
                .collect(),
            withdrawals: None,
            ommers: Vec::new(),
        }
    }

    /// From Berlin on, less gas is enough to go parallel; the other rules
    /// hold in every fork.
    #[test]
    fn the_gas_threshold_depends_on_the_fork() {
        let model = CostModel::default();
        let mid = block(40, 3_000_000);
        assert!(!model.parallel(&mid, SpecId::ISTANBUL, 2));
        assert!(model.parallel(&mid, SpecId::BERLIN, 2));
        assert!(model.parallel(&mid, SpecId::CANCUN, 2));
        assert!(!model.parallel(&block(40, 2_000_000), SpecId::CANCUN, 2));
        // Before Berlin, under 7 Mgas is under a millisecond of work.
        assert!(!model.parallel(&block(40, 5_000_000), SpecId::ISTANBUL, 2));
        assert!(model.parallel(&block(40, 8_000_000), SpecId::ISTANBUL, 2));
        // Too few transactions, too little gas each, one thread.
        assert!(!model.parallel(&block(10, 3_000_000), SpecId::CANCUN, 2));
        assert!(!model.parallel(&block(150, 3_000_000), SpecId::CANCUN, 2));
        assert!(!model.parallel(&mid, SpecId::CANCUN, 1));
    }
}
