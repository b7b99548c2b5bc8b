//! The collaborative Block-STM scheduler (Gelashvili et al., "Block-STM", 2022),
//! written for PEL.
//!
//! Worker threads repeatedly ask [`Scheduler::next_task`] for work: executing a
//! transaction incarnation or validating one. Two shared indices hand out work
//! in transaction order: `execution_idx` (next transaction to try executing) and
//! `validation_idx` (next one to validate); validation is preferred whenever it
//! lags behind execution, so mistakes of low transactions are found early.
//!
//! State machine of one transaction (status, guarded by its own mutex):
//!
//! ```text
//!   ReadyToExecute(i) --try_incarnate--> Executing(i)
//!   Executing(i) --finish_execution--> Executed(i)
//!   Executing(i) --add_dependency (read an ESTIMATE)--> Aborting(i)
//!   Executed(i) --try_validation_abort (a read changed)--> Aborting(i)
//!   Aborting(i) --set_ready_status--> ReadyToExecute(i+1)
//!   Executed(i) --try_commit (every lower one committed, reads still valid)--> Committed(i)
//! ```
//!
//! Invariants:
//! - only the thread that moved a transaction to `Executing(i)` runs incarnation
//!   `i`, and only one validation of a given incarnation can abort it;
//! - a transaction suspended on a dependency is stored in its blocker's
//!   dependency list and re-queued (`ReadyToExecute(i+1)`, `execution_idx`
//!   lowered) when the blocker finishes executing: no thread spins on it;
//! - after an execution that wrote a location its previous incarnation did not,
//!   every higher transaction is validated again (`validation_idx` lowered);
//! - after an aborted validation of `tx`, every transaction above `tx` is
//!   validated again;
//! - `num_active_tasks` counts tasks handed out and not yet finished; the block
//!   is done when both indices are past the end, no task is active, and no index
//!   was lowered meanwhile (`decrease_cnt` unchanged). At that point every
//!   transaction's last incarnation is `Executed` and validated against the
//!   final writes of all lower ones: results are final (the commit point);
//! - transactions named to start early ([`Scheduler::start_early`]) are
//!   handed out for execution before `execution_idx` reaches them, at most a
//!   fixed number at a time; `execution_idx` then skips them (they are no
//!   longer `ReadyToExecute`). An early incarnation is validated like any
//!   other once `validation_idx` passes it, and again after every lower
//!   execution that writes a new location, so starting it early changes when
//!   it runs, never what is committed;
//! - `Committed` is terminal: a transaction is committed only in block order,
//!   after every lower one, with its reads validated under its lock against
//!   those final writes (or, for the incarnation, executed or validated
//!   after the last of those writes was recorded: see
//!   [`crate::mv_memory::MvMemory::checked_since`]), so no later validation
//!   can fail and nothing aborts it; it counts as executed for waiting
//!   transactions and is never handed out for validation again.

use crossbeam_utils::CachePadded;
use std::sync::{
    atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
    Mutex, MutexGuard,
};

/// Index of a transaction in the block.
pub type TxIdx = usize;
/// Incarnation number of a transaction (0 for the first execution).
pub type Incarnation = u32;

/// One incarnation of one transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Version {
    /// The transaction.
    pub tx: TxIdx,
    /// Its incarnation.
    pub incarnation: Incarnation,
}

/// Work for a worker thread.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Task {
    /// Execute this incarnation.
    Execute(Version),
    /// Validate the reads of this incarnation.
    Validate(Version),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Status {
    ReadyToExecute,
    Executing,
    Executed,
    Aborting,
    Committed,
}

#[derive(Debug)]
struct TxState {
    incarnation: Incarnation,
    status: Status,
}

/// One transaction's scheduling state, on its own cache line: neighbouring
/// transactions are usually in the hands of different workers.
#[derive(Debug)]
struct TxCell {
    state: Mutex<TxState>,
    /// Transactions suspended until this one finishes executing.
    dependencies: Mutex<Vec<TxIdx>>,
    /// An early start of this transaction is in flight (see
    /// [`Scheduler::start_early`]).
    early: AtomicBool,
}

/// Transactions started before `execution_idx` reaches them.
#[derive(Debug, Default)]
struct Early {
    txs: Vec<TxIdx>,
    /// The next entry of `txs` to hand out.
    next: AtomicUsize,
    /// Early executions in flight.
    busy: AtomicUsize,
    /// The most early executions in flight at once.
    max_busy: usize,
}

/// Counters only read for statistics and the fall-back decision, kept off the
/// cache line of the shared indices.
#[derive(Debug, Default)]
struct Counters {
    aborts: AtomicUsize,
    validation_failures: AtomicUsize,
    /// Finished executions (high 32 bits) and aborts (low 32 bits) at the
    /// start of the current window (see [`FallBack`]).
    window: AtomicU64,
    /// Windows in a row, up to the current one, with one abort or more for
    /// every four executions.
    aborting_windows: AtomicUsize,
}

/// When speculation counts as mostly wasted (see
/// [`Scheduler::mostly_aborting`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FallBack {
    /// Aborted incarnations before anything is decided.
    pub min_aborts: usize,
    /// Finished executions per window.
    pub window: usize,
    /// Windows in a row that must each abort one execution in four; the
    /// block so far counts once it has run that many windows' executions.
    pub windows: usize,
}

impl FallBack {
    /// The executor's default: 16 aborts, two windows of 64 executions.
    pub const DEFAULT: Self = Self {
        min_aborts: 16,
        window: 64,
        windows: 2,
    };

    /// Gives up at the first window of one execution that saw an abort
    /// (tests: the fall-back then runs from every point of a contended
    /// block).
    pub const EAGER: Self = Self {
        min_aborts: 1,
        window: 1,
        windows: 1,
    };
}

fn pack_window(executions: usize, aborts: usize) -> u64 {
    ((executions as u64) << 32) | (aborts as u64 & 0xffff_ffff)
}

/// Shared scheduling state of one block; see the module docs.
#[derive(Debug)]
pub struct Scheduler {
    block_size: usize,
    execution_idx: AtomicUsize,
    validation_idx: AtomicUsize,
    decrease_cnt: AtomicUsize,
    num_active_tasks: AtomicUsize,
    done: AtomicBool,
    halted: AtomicBool,
    txs: Vec<CachePadded<TxCell>>,
    early: CachePadded<Early>,
    counters: CachePadded<Counters>,
    /// Finished executions: written once per transaction, so alone on its line.
    executions: CachePadded<AtomicUsize>,
}

/// Locks `m`, ignoring poisoning: a worker that panicked discards the whole
/// block's result, so data behind a poisoned lock is never trusted anyway.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A poisoned lock means a worker panicked; the block's result is discarded
    // by the caller, so the data behind the lock is still fine to read.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Scheduler {
    /// A scheduler for a block of `block_size` transactions.
    pub fn new(block_size: usize) -> Self {
        Self {
            block_size,
            execution_idx: AtomicUsize::new(0),
            validation_idx: AtomicUsize::new(0),
            decrease_cnt: AtomicUsize::new(0),
            num_active_tasks: AtomicUsize::new(0),
            done: AtomicBool::new(block_size == 0),
            halted: AtomicBool::new(false),
            txs: (0..block_size)
                .map(|_| {
                    CachePadded::new(TxCell {
                        state: Mutex::new(TxState {
                            incarnation: 0,
                            status: Status::ReadyToExecute,
                        }),
                        dependencies: Mutex::new(Vec::new()),
                        early: AtomicBool::new(false),
                    })
                })
                .collect(),
            early: CachePadded::default(),
            counters: CachePadded::default(),
            executions: CachePadded::default(),
        }
    }

    /// Hands out `txs` (in this order, each below the block size) for
    /// execution before the in-order execution reaches them, at most
    /// `max_busy` at a time: transactions expected to run long, which would
    /// otherwise start late and leave the other workers idle at the end of
    /// the block. Called before any task is handed out.
    pub fn start_early(&mut self, txs: Vec<TxIdx>, max_busy: usize) {
        let txs = txs.into_iter().filter(|&tx| tx < self.block_size).collect();
        self.early = CachePadded::new(Early {
            txs,
            next: AtomicUsize::new(0),
            busy: AtomicUsize::new(0),
            max_busy,
        });
    }

    /// True once every transaction is executed and validated.
    pub fn done(&self) -> bool {
        self.done.load(Ordering::Acquire)
    }

    /// Stops the block: every worker's next `next_task` returns `None` and the
    /// caller must not use the results (it falls back to sequential execution).
    pub fn halt(&self) {
        self.halted.store(true, Ordering::Release);
        self.done.store(true, Ordering::Release);
    }

    /// True if [`Scheduler::halt`] was called.
    pub fn halted(&self) -> bool {
        self.halted.load(Ordering::Acquire)
    }

    /// True when speculation is mostly wasted by `policy`: at least
    /// `min_aborts` aborted incarnations, and at least one abort for every
    /// four finished executions, either over the whole block so far once it
    /// has run `windows` windows of `window` executions (by default two of
    /// 64), or over each of the last `windows` windows. A chain of dependent
    /// transactions on two workers hovers around one abort in three or four
    /// executions (the rolling commit and the dependency waits keep many from
    /// running twice), and at that rate each transaction costs two to three
    /// times its sequential execution; the windows catch a chain that the
    /// block's running total would only cross late. One window is not enough
    /// evidence: a burst of dependent transactions (a bundle, a run of swaps
    /// on one pool) in an otherwise parallel block aborts that often for a
    /// few dozen executions, and giving up there would run the rest of the
    /// block in order.
    pub fn mostly_aborting(&self, policy: &FallBack) -> bool {
        let aborts = self.counters.aborts.load(Ordering::Relaxed);
        let executions = self.executions.load(Ordering::Relaxed);
        self.close_window(executions, aborts, policy.window.max(1));
        aborts >= policy.min_aborts
            && ((aborts * 4 >= executions && executions >= policy.windows * policy.window)
                || self.counters.aborting_windows.load(Ordering::Relaxed) >= policy.windows)
    }

    /// Closes the current window once it holds `window` executions, counting
    /// it into the run of windows that aborted one execution in four (or
    /// ending that run). One thread closes a window; a thread that lost the
    /// race leaves it to the winner.
    fn close_window(&self, executions: usize, aborts: usize, window: usize) {
        let start = self.counters.window.load(Ordering::Relaxed);
        let (start_executions, start_aborts) =
            ((start >> 32) as usize, (start & 0xffff_ffff) as usize);
        if executions < start_executions + window {
            return;
        }
        if self
            .counters
            .window
            .compare_exchange(
                start,
                pack_window(executions, aborts),
                Ordering::Relaxed,
                Ordering::Relaxed,
            )
            .is_err()
        {
            return;
        }
        let windows = &self.counters.aborting_windows;
        if aborts.saturating_sub(start_aborts) * 4 >= executions - start_executions {
            windows.fetch_add(1, Ordering::Relaxed);
        } else {
            windows.store(0, Ordering::Relaxed);
        }
    }

    /// Aborted incarnations (by failed validation or by a dependency).
    pub fn aborts(&self) -> usize {
        self.counters.aborts.load(Ordering::Relaxed)
    }

    /// Validations that found a changed read.
    pub fn validation_failures(&self) -> usize {
        self.counters.validation_failures.load(Ordering::Relaxed)
    }

    fn decrease_execution_idx(&self, target: TxIdx) {
        self.execution_idx.fetch_min(target, Ordering::SeqCst);
        self.decrease_cnt.fetch_add(1, Ordering::SeqCst);
    }

    fn decrease_validation_idx(&self, target: TxIdx) {
        self.validation_idx.fetch_min(target, Ordering::SeqCst);
        self.decrease_cnt.fetch_add(1, Ordering::SeqCst);
    }

    fn check_done(&self) {
        let observed = self.decrease_cnt.load(Ordering::SeqCst);
        let exec = self.execution_idx.load(Ordering::SeqCst);
        let val = self.validation_idx.load(Ordering::SeqCst);
        if exec.min(val) >= self.block_size
            && self.num_active_tasks.load(Ordering::SeqCst) == 0
            && observed == self.decrease_cnt.load(Ordering::SeqCst)
        {
            self.done.store(true, Ordering::Release);
        }
    }

    /// Moves `tx` from ReadyToExecute to Executing; does not touch the task count.
    fn try_incarnate(&self, tx: TxIdx) -> Option<Version> {
        if tx >= self.block_size {
            return None;
        }
        let mut state = lock(&self.txs[tx].state);
        if state.status == Status::ReadyToExecute {
            state.status = Status::Executing;
            Some(Version {
                tx,
                incarnation: state.incarnation,
            })
        } else {
            None
        }
    }

    fn next_version_to_execute(&self) -> Option<Version> {
        if self.execution_idx.load(Ordering::SeqCst) >= self.block_size {
            self.check_done();
            return None;
        }
        self.num_active_tasks.fetch_add(1, Ordering::SeqCst);
        let idx = self.execution_idx.fetch_add(1, Ordering::SeqCst);
        let version = self.try_incarnate(idx);
        if version.is_none() {
            self.num_active_tasks.fetch_sub(1, Ordering::SeqCst);
        }
        version
    }

    /// The next early start, while fewer than the most allowed are in flight
    /// (a transaction already past `ReadyToExecute` is skipped).
    fn next_early_version(&self) -> Option<Version> {
        let early = &*self.early;
        while early.next.load(Ordering::Relaxed) < early.txs.len() {
            if early.busy.load(Ordering::Relaxed) >= early.max_busy {
                return None;
            }
            if early.busy.fetch_add(1, Ordering::SeqCst) >= early.max_busy {
                early.busy.fetch_sub(1, Ordering::SeqCst);
                return None;
            }
            let Some(&tx) = early.txs.get(early.next.fetch_add(1, Ordering::SeqCst)) else {
                early.busy.fetch_sub(1, Ordering::SeqCst);
                return None;
            };
            self.num_active_tasks.fetch_add(1, Ordering::SeqCst);
            if let Some(version) = self.try_incarnate(tx) {
                self.txs[tx].early.store(true, Ordering::SeqCst);
                return Some(version);
            }
            self.num_active_tasks.fetch_sub(1, Ordering::SeqCst);
            early.busy.fetch_sub(1, Ordering::SeqCst);
        }
        None
    }

    /// Ends `tx`'s early start, if one is in flight (it finished executing or
    /// was suspended).
    fn end_early(&self, tx: TxIdx) {
        if !self.early.txs.is_empty() && self.txs[tx].early.swap(false, Ordering::SeqCst) {
            self.early.busy.fetch_sub(1, Ordering::SeqCst);
        }
    }

    fn next_version_to_validate(&self) -> Option<Version> {
        if self.validation_idx.load(Ordering::SeqCst) >= self.block_size {
            self.check_done();
            return None;
        }
        self.num_active_tasks.fetch_add(1, Ordering::SeqCst);
        let idx = self.validation_idx.fetch_add(1, Ordering::SeqCst);
        if idx < self.block_size {
            let state = lock(&self.txs[idx].state);
            if state.status == Status::Executed {
                return Some(Version {
                    tx: idx,
                    incarnation: state.incarnation,
                });
            }
        }
        self.num_active_tasks.fetch_sub(1, Ordering::SeqCst);
        None
    }

    /// The next task, or `None` when the block is done.
    pub fn next_task(&self) -> Option<Task> {
        let mut idle = 0u32;
        loop {
            if self.done() {
                return None;
            }
            if let Some(version) = self.next_early_version() {
                return Some(Task::Execute(version));
            }
            let val = self.validation_idx.load(Ordering::SeqCst);
            let exec = self.execution_idx.load(Ordering::SeqCst);
            let task = if val < exec {
                self.next_version_to_validate().map(Task::Validate)
            } else {
                self.next_version_to_execute().map(Task::Execute)
            };
            if task.is_some() {
                return task;
            }
            idle += 1;
            if idle > 64 {
                std::thread::yield_now();
            } else {
                std::hint::spin_loop();
            }
        }
    }

    /// Suspends `tx` (now executing) until `blocking` finishes executing.
    /// Returns false if `blocking` already finished: re-execute `tx` at once.
    pub fn add_dependency(&self, tx: TxIdx, blocking: TxIdx) -> bool {
        let suspended = self.suspend(tx, blocking);
        if suspended {
            self.counters.aborts.fetch_add(1, Ordering::Relaxed);
        }
        suspended
    }

    /// Like [`Scheduler::add_dependency`], for a dependency known before `tx`
    /// ran (a hint of [`crate::hints`]: the sender's previous transaction, a
    /// bundle's opening trade): nothing is aborted.
    pub fn wait_for(&self, tx: TxIdx, blocking: TxIdx) -> bool {
        self.suspend(tx, blocking)
    }

    /// True once `tx`'s current incarnation has finished executing.
    pub fn is_executed(&self, tx: TxIdx) -> bool {
        matches!(
            lock(&self.txs[tx].state).status,
            Status::Executed | Status::Committed
        )
    }

    /// Commits `tx` if its current incarnation has executed and `still_valid`
    /// (run under `tx`'s lock, so no abort interleaves, and given that
    /// incarnation) confirms its reads.
    /// The caller must have committed every lower transaction first: the
    /// reads are then checked against final writes, and the result is final.
    pub fn try_commit(&self, tx: TxIdx, still_valid: impl FnOnce(Incarnation) -> bool) -> bool {
        let mut state = lock(&self.txs[tx].state);
        if state.status != Status::Executed || !still_valid(state.incarnation) {
            return false;
        }
        state.status = Status::Committed;
        true
    }

    fn suspend(&self, tx: TxIdx, blocking: TxIdx) -> bool {
        let mut deps = lock(&self.txs[blocking].dependencies);
        if matches!(
            lock(&self.txs[blocking].state).status,
            Status::Executed | Status::Committed
        ) {
            return false;
        }
        {
            let mut state = lock(&self.txs[tx].state);
            debug_assert_eq!(state.status, Status::Executing);
            state.status = Status::Aborting;
        }
        deps.push(tx);
        drop(deps);
        self.end_early(tx);
        self.num_active_tasks.fetch_sub(1, Ordering::SeqCst);
        true
    }

    fn set_ready_status(&self, tx: TxIdx) {
        let mut state = lock(&self.txs[tx].state);
        state.incarnation += 1;
        state.status = Status::ReadyToExecute;
    }

    /// Records that `version` finished executing; returns its validation task
    /// when this thread should run it right away.
    pub fn finish_execution(&self, version: Version, wrote_new_location: bool) -> Option<Task> {
        self.executions.fetch_add(1, Ordering::Relaxed);
        let tx = version.tx;
        lock(&self.txs[tx].state).status = Status::Executed;
        self.end_early(tx);
        let deps = std::mem::take(&mut *lock(&self.txs[tx].dependencies));
        if let Some(min) = deps.iter().copied().min() {
            for dep in &deps {
                self.set_ready_status(*dep);
            }
            self.decrease_execution_idx(min);
        }
        if self.validation_idx.load(Ordering::SeqCst) > tx {
            if wrote_new_location {
                self.decrease_validation_idx(tx);
            } else {
                return Some(Task::Validate(version));
            }
        }
        self.num_active_tasks.fetch_sub(1, Ordering::SeqCst);
        None
    }

    /// Claims the right to abort `version` after a failed validation.
    pub fn try_validation_abort(&self, version: Version) -> bool {
        self.counters
            .validation_failures
            .fetch_add(1, Ordering::Relaxed);
        let mut state = lock(&self.txs[version.tx].state);
        if state.incarnation == version.incarnation && state.status == Status::Executed {
            state.status = Status::Aborting;
            self.counters.aborts.fetch_add(1, Ordering::Relaxed);
            true
        } else {
            false
        }
    }

    /// Records the end of a validation; after an abort, returns the
    /// re-execution task when this thread should run it right away.
    pub fn finish_validation(&self, tx: TxIdx, aborted: bool) -> Option<Task> {
        if aborted {
            self.set_ready_status(tx);
            self.decrease_validation_idx(tx + 1);
            if self.execution_idx.load(Ordering::SeqCst) > tx {
                if let Some(version) = self.try_incarnate(tx) {
                    return Some(Task::Execute(version));
                }
            }
        }
        self.num_active_tasks.fetch_sub(1, Ordering::SeqCst);
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Drives the scheduler with a trivial "VM" (every validation passes) and
    /// checks each transaction runs once and the block completes.
    #[test]
    fn independent_transactions_run_once_each() {
        let s = Scheduler::new(100);
        let mut executed = vec![0u32; 100];
        let mut task = None;
        loop {
            let t = match task.take() {
                Some(t) => t,
                None => match s.next_task() {
                    Some(t) => t,
                    None => break,
                },
            };
            task = match t {
                Task::Execute(v) => {
                    executed[v.tx] += 1;
                    s.finish_execution(v, true)
                }
                Task::Validate(v) => s.finish_validation(v.tx, false),
            };
        }
        assert!(s.done());
        assert!(executed.iter().all(|&n| n == 1));
        assert_eq!(s.aborts(), 0);
    }

    #[test]
    fn dependency_suspends_and_resumes() {
        let s = Scheduler::new(2);
        let Some(Task::Execute(v0)) = s.next_task() else {
            panic!("expected execution")
        };
        let Some(Task::Execute(v1)) = s.next_task() else {
            panic!("expected execution")
        };
        assert_eq!((v0.tx, v1.tx), (0, 1));
        // tx 1 reads an estimate of tx 0 while tx 0 is still executing.
        assert!(s.add_dependency(1, 0));
        assert!(s.finish_execution(v0, true).is_none());
        // tx 1 is ready again with incarnation 1.
        let mut seen = None;
        while let Some(t) = s.next_task() {
            match t {
                Task::Execute(v) => {
                    seen = Some(v);
                    if let Some(Task::Validate(v)) = s.finish_execution(v, true) {
                        s.finish_validation(v.tx, false);
                    }
                }
                Task::Validate(v) => {
                    s.finish_validation(v.tx, false);
                }
            }
        }
        assert_eq!(
            seen,
            Some(Version {
                tx: 1,
                incarnation: 1
            })
        );
        assert_eq!(s.aborts(), 1);
    }

    /// Feeds `s` finished executions, `aborts_per_window` of every window of
    /// `FallBack::DEFAULT.window` aborting, for `windows` windows; checks the
    /// fall-back decision once per execution, as workers do. Returns the
    /// execution at which it first said to give up.
    const ABORT_WINDOW: usize = FallBack::DEFAULT.window;

    fn feed(s: &Scheduler, windows: usize, aborts_per_window: usize) -> Option<usize> {
        for w in 0..windows {
            for e in 0..ABORT_WINDOW {
                s.executions.fetch_add(1, Ordering::Relaxed);
                if e < aborts_per_window {
                    s.counters.aborts.fetch_add(1, Ordering::Relaxed);
                }
                if s.mostly_aborting(&FallBack::DEFAULT) {
                    return Some(w * ABORT_WINDOW + e + 1);
                }
            }
        }
        None
    }

    #[test]
    fn a_burst_of_aborts_is_not_a_dependent_block() {
        // A bundle at the top of the block: a third of the first window
        // aborts, then the block runs clean.
        let s = Scheduler::new(1000);
        assert_eq!(feed(&s, 1, 24), None);
        assert_eq!(feed(&s, 10, 2), None);
        // One bad window in the middle, between clean ones, neither.
        assert_eq!(feed(&s, 1, 24), None);
        assert_eq!(feed(&s, 1, 4), None);
        assert_eq!(feed(&s, 1, 24), None);
    }

    #[test]
    fn a_dependent_block_falls_back_after_two_windows() {
        // A chain from the start: one abort in three executions.
        let s = Scheduler::new(1000);
        let at = feed(&s, 4, 22).expect("a chain falls back");
        assert!((ABORT_WINDOW + 1..=2 * ABORT_WINDOW).contains(&at), "{at}");
        // A chain that starts late: the block's running total would cross
        // one in four only much later; two windows in a row decide (the
        // first window to close may still hold some of the clean part).
        let s = Scheduler::new(1000);
        assert_eq!(feed(&s, 8, 1), None);
        let at = feed(&s, 4, 22).expect("a late chain falls back");
        assert!(at <= 3 * ABORT_WINDOW, "{at}");
        // Fewer aborts than the minimum never fall back.
        let s = Scheduler::new(1000);
        assert_eq!(feed(&s, 1, 15), None);
        assert!(!s.mostly_aborting(&FallBack::DEFAULT));
    }

    #[test]
    fn the_eager_policy_gives_up_at_the_first_abort_anywhere() {
        let s = Scheduler::new(1000);
        for _ in 0..500 {
            s.executions.fetch_add(1, Ordering::Relaxed);
            assert!(!s.mostly_aborting(&FallBack::EAGER));
        }
        s.executions.fetch_add(1, Ordering::Relaxed);
        s.counters.aborts.fetch_add(1, Ordering::Relaxed);
        assert!(s.mostly_aborting(&FallBack::EAGER));
    }

    #[test]
    fn early_starts_go_first_one_at_a_time_and_in_order_execution_skips_them() {
        let mut s = Scheduler::new(10);
        s.start_early(vec![8, 5, 42], 1);
        let exec = |t: Option<Task>| match t {
            Some(Task::Execute(v)) => v,
            other => panic!("expected an execution, got {other:?}"),
        };
        let early = exec(s.next_task());
        assert_eq!((early.tx, early.incarnation), (8, 0));
        // One early start in flight at most: the next task is in order.
        assert_eq!(exec(s.next_task()).tx, 0);
        // Transaction 8 finishing frees the slot for transaction 5.
        assert!(s.finish_execution(early, true).is_none());
        assert_eq!(exec(s.next_task()).tx, 5);
        // A suspended early start frees its slot too; the out-of-range entry
        // is dropped, and in order execution then skips 5 and 8.
        assert!(s.add_dependency(5, 0));
        assert_eq!(s.early.busy.load(Ordering::SeqCst), 0);
        let mut order = Vec::new();
        for _ in 0..100 {
            match s.next_task() {
                Some(Task::Execute(v)) => order.push(v.tx),
                Some(Task::Validate(v)) => assert!(s.finish_validation(v.tx, false).is_none()),
                None => break,
            }
            if order.len() == 7 {
                break;
            }
        }
        assert_eq!(order, vec![1, 2, 3, 4, 6, 7, 9]);
    }
}
