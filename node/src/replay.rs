//! `pel replay`: executes every captured block of a folder, checks it against
//! its real header, and reports time, throughput and checks per block.

use crate::profile::ProfileSummary;
use crate::{
    checks::{check_block, Checks},
    load::{self, LoadError},
};
use pel_executor::{
    execute_block, sequential::ExecOptions, BlockOutput, BlockProfile, ChainConfig, CodeCache,
    ParallelExecutor,
};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::{path::Path, time::Instant};

/// How to replay.
#[derive(Clone, Debug)]
pub struct ReplayOptions {
    /// Chain the blocks belong to (fork schedule, chain id).
    pub chain: ChainConfig,
    /// The parallel executor (`None`: sequential only).
    pub parallel: Option<Arc<ParallelExecutor>>,
    /// Timed runs per block and executor; the fastest counts.
    pub runs: usize,
    /// Analysed code shared by every block of the replay.
    pub code_cache: Arc<CodeCache>,
    /// Profile every block's conflicts with this executor (the parallel one
    /// when it is set: its timed run records the profile; blocks it ran
    /// sequentially get an extra, untimed, forced parallel run).
    pub profiler: Option<Arc<ParallelExecutor>>,
}

impl ReplayOptions {
    /// Sequential replay of mainnet blocks.
    pub fn mainnet() -> Self {
        Self {
            chain: ChainConfig::mainnet(),
            parallel: None,
            runs: 1,
            code_cache: Arc::default(),
            profiler: None,
        }
    }
}

/// The report of one block (the `--json` shape).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BlockReport {
    /// Block number.
    pub number: u64,
    /// Fork the block executed under.
    pub fork: String,
    /// Transactions.
    pub txs: usize,
    /// Gas used by the executed block (the header's when execution failed).
    pub gas_used: u64,
    /// Executed and every possible check passed.
    pub valid: bool,
    /// Each header check: true, false, or null where it cannot be made.
    pub checks: Checks,
    /// Sequential execution time in milliseconds.
    pub sequential_ms: Option<f64>,
    /// Parallel execution time (null until the Block-STM executor lands).
    pub parallel_ms: Option<f64>,
    /// Sequential time over parallel time.
    pub speedup: Option<f64>,
    /// Aborted incarnations in the parallel run.
    pub reexecutions: Option<usize>,
    /// Validations that failed in the parallel run.
    pub validation_failures: Option<usize>,
    /// The parallel executor's path (`partitioned`, `block-stm`,
    /// `fell-back`, or `sequential` where its cost model chose that).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// The block's conflict profile (`--profile`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<BlockProfile>,
    /// What went wrong, one line each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
}

/// Totals over all blocks.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Summary {
    /// Blocks replayed.
    pub blocks: usize,
    /// Blocks valid.
    pub valid: usize,
    /// Transactions.
    pub txs: usize,
    /// Gas executed.
    pub gas_used: u64,
    /// Total sequential time.
    pub sequential_ms: f64,
    /// Total parallel time.
    pub parallel_ms: Option<f64>,
    /// Total sequential over total parallel time.
    pub speedup: Option<f64>,
    /// Sequential throughput in Mgas/s.
    pub sequential_mgas_per_s: f64,
    /// Bounds and hot contracts across the profiled blocks (`--profile`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<ProfileSummary>,
}

/// The whole report.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Report {
    /// One entry per block, by number.
    pub blocks: Vec<BlockReport>,
    /// Totals.
    pub summary: Summary,
}

/// Replays one block folder.
pub fn replay_block(
    number: u64,
    block_dir: &Path,
    block_hashes: &std::collections::BTreeMap<u64, alloy_primitives::B256>,
    options: &ReplayOptions,
) -> BlockReport {
    let mut report = BlockReport {
        number,
        fork: String::from("?"),
        txs: 0,
        gas_used: 0,
        valid: false,
        checks: Checks::default(),
        sequential_ms: None,
        parallel_ms: None,
        speedup: None,
        reexecutions: None,
        path: None,
        validation_failures: None,
        profile: None,
        errors: Vec::new(),
    };
    let block = match load::load_block(block_dir, block_hashes, &options.chain) {
        Ok(block) => block,
        Err(e) => {
            report.errors.push(e.to_string());
            return report;
        }
    };
    let header = &block.input.header;
    report.number = header.number;
    report.txs = block.input.transactions.len();
    report.gas_used = header.gas_used;
    let fork = options.chain.fork_at(header.number, header.timestamp);
    report.fork = fork.name().to_string();

    // One untimed run each warms caches and one-time set-up (e.g. the KZG
    // trusted setup behind the point-evaluation precompile); then `runs`
    // rounds time both executors, alternating which goes first so that
    // neither gains from the other's warm caches, and the fastest run of
    // each counts.
    let exec = ExecOptions {
        code_cache: Some(options.code_cache.clone()),
        ..Default::default()
    };
    let sequential = || execute_block(&block.pre_state, &block.input, &options.chain, exec.clone());
    let output = match sequential() {
        Ok(output) => output,
        Err(e) => {
            report.checks = crate::checks::static_checks(&block);
            report.errors.push(e.to_string());
            return report;
        }
    };
    report.gas_used = output.gas_used;
    report.checks = check_block(&block, fork.spec(), &output, &mut report.errors);
    report.valid = report.checks.all_pass();

    let profiling = options.profiler.is_some();
    let (block, exec) = (&block, &exec);
    let parallel = options.parallel.as_ref().map(|executor| {
        move || {
            if profiling {
                executor.execute_block_profiled(
                    &block.pre_state,
                    &block.input,
                    &options.chain,
                    exec.clone(),
                )
            } else {
                executor
                    .execute_block(&block.pre_state, &block.input, &options.chain, exec.clone())
                    .map(|(output, stats)| (output, stats, None))
            }
        }
    });
    let mut par_result = parallel.as_ref().map(|run| run());
    let timed_parallel = parallel
        .as_ref()
        .filter(|_| par_result.as_ref().is_some_and(|r| r.is_ok()));
    let (mut seq_ms, mut par_ms) = (f64::INFINITY, f64::INFINITY);
    for round in 0..options.runs.max(1) {
        let parallel_first = round % 2 == 1;
        let mut time_parallel = || {
            if let Some(run) = timed_parallel {
                par_result = Some(timed(&mut par_ms, run));
            }
        };
        if parallel_first {
            time_parallel();
        }
        let seq = timed(&mut seq_ms, sequential);
        if !parallel_first {
            time_parallel();
        }
        if let Err(e) = seq {
            report.valid = false;
            report
                .errors
                .push(format!("a timed sequential run failed: {e}"));
        }
    }
    report.sequential_ms = Some(seq_ms);
    match par_result {
        Some(Ok((par, stats, profile))) => {
            report.profile = profile;
            report.parallel_ms = Some(par_ms);
            report.speedup = Some(seq_ms / par_ms.max(1e-9));
            report.reexecutions = Some(stats.reexecutions);
            report.validation_failures = Some(stats.validation_failures);
            report.path = Some(stats.path().to_string());
            if let Some(difference) = first_difference(&output, &par) {
                report.valid = false;
                report.errors.push(format!(
                    "parallel result differs from sequential: {difference}"
                ));
            }
        }
        Some(Err(e)) => {
            report.valid = false;
            report
                .errors
                .push(format!("parallel execution failed: {e}"));
        }
        None => {}
    }
    if let (Some(profiler), None) = (&options.profiler, &report.profile) {
        match profiler.profile_block(&block.pre_state, &block.input, &options.chain, exec.clone()) {
            Ok((par, _, profile)) => {
                report.profile = Some(profile);
                if let Some(difference) = first_difference(&output, &par) {
                    report.valid = false;
                    report.errors.push(format!(
                        "profiling run differs from sequential: {difference}"
                    ));
                }
            }
            Err(e) => {
                report.valid = false;
                report.errors.push(format!("profiling run failed: {e}"));
            }
        }
    }
    report
}

/// Runs `f`, keeping in `best` the fastest time so far in milliseconds.
fn timed<T>(best: &mut f64, f: impl FnOnce() -> T) -> T {
    let start = Instant::now();
    let result = f();
    *best = best.min(start.elapsed().as_secs_f64() * 1e3);
    result
}

/// Where two block outputs differ, if they do.
pub fn first_difference(a: &BlockOutput, b: &BlockOutput) -> Option<String> {
    if a == b {
        return None;
    }
    if a.gas_used != b.gas_used {
        return Some(format!("gas used {} vs {}", a.gas_used, b.gas_used));
    }
    for (i, (ra, rb)) in a.receipts.iter().zip(&b.receipts).enumerate() {
        if ra != rb {
            return Some(format!("receipt {i}: {ra:?} vs {rb:?}"));
        }
    }
    for (address, da) in &a.diff.accounts {
        match b.diff.accounts.get(address) {
            Some(db) if db == da => {}
            other => return Some(format!("account {address}: {da:?} vs {other:?}")),
        }
    }
    for address in b.diff.accounts.keys() {
        if !a.diff.accounts.contains_key(address) {
            return Some(format!("account {address} only in the parallel diff"));
        }
    }
    Some("codes or blob gas differ".into())
}

/// Replays every block under `dir`, calling `progress` after each.
pub fn replay(
    dir: &Path,
    options: &ReplayOptions,
    progress: impl FnMut(&BlockReport),
) -> Result<Report, LoadError> {
    replay_shard(dir, options, Shard::ALL, progress)
}

/// A slice of a replay: every `count`-th block (in block-number order),
/// starting at position `index`, so many machines can split one archive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    /// Position of the first block, `0 <= index < count`.
    pub index: usize,
    /// Number of shards.
    pub count: usize,
}

impl Shard {
    /// Every block.
    pub const ALL: Shard = Shard { index: 0, count: 1 };
}

impl std::str::FromStr for Shard {
    type Err = String;
    /// Parses `I/N`.
    fn from_str(s: &str) -> Result<Self, String> {
        let (i, n) = s
            .split_once('/')
            .ok_or_else(|| format!("shard {s:?} is not I/N"))?;
        let index: usize = i
            .trim()
            .parse()
            .map_err(|_| format!("shard index {i:?} is not a number"))?;
        let count: usize = n
            .trim()
            .parse()
            .map_err(|_| format!("shard count {n:?} is not a number"))?;
        if count == 0 || index >= count {
            return Err(format!("shard {s:?}: need 0 <= I < N"));
        }
        Ok(Shard { index, count })
    }
}

/// Replays the blocks of one shard of `dir`, calling `progress` after each.
pub fn replay_shard(
    dir: &Path,
    options: &ReplayOptions,
    shard: Shard,
    mut progress: impl FnMut(&BlockReport),
) -> Result<Report, LoadError> {
    let blocks = load::list_blocks(dir)?;
    let hashes = load::load_block_hashes(dir)?;
    let mut reports = Vec::with_capacity(blocks.len() / shard.count + 1);
    for (number, path) in blocks.into_iter().skip(shard.index).step_by(shard.count) {
        let report = replay_block(number, &path, &hashes, options);
        progress(&report);
        reports.push(report);
    }
    Ok(Report::from_blocks(reports))
}

impl Report {
    /// A report over these block reports, with its summary computed.
    pub fn from_blocks(mut blocks: Vec<BlockReport>) -> Self {
        blocks.sort_by_key(|b| b.number);
        // Folded from +0.0: a float sum of nothing is -0.0, which the table
        // would print as "-0.0 ms" when no block ran.
        let total = |ms: fn(&BlockReport) -> Option<f64>| {
            blocks.iter().filter_map(ms).fold(0.0, |sum, ms| sum + ms)
        };
        let sequential_ms = total(|r| r.sequential_ms);
        let parallel_ms = blocks
            .iter()
            .any(|r| r.parallel_ms.is_some())
            .then(|| total(|r| r.parallel_ms));
        let gas_used: u64 = blocks.iter().map(|r| r.gas_used).sum();
        let summary = Summary {
            blocks: blocks.len(),
            valid: blocks.iter().filter(|r| r.valid).count(),
            txs: blocks.iter().map(|r| r.txs).sum(),
            gas_used,
            sequential_ms,
            parallel_ms,
            speedup: parallel_ms.map(|p| sequential_ms / p.max(1e-9)),
            sequential_mgas_per_s: mgas_per_s(gas_used, sequential_ms),
            profile: ProfileSummary::from_profiles(
                blocks.iter().filter_map(|b| b.profile.as_ref()),
            ),
        };
        Report { blocks, summary }
    }

    /// Combines the `--json` reports of several shards into one.
    pub fn merge(reports: impl IntoIterator<Item = Report>) -> Self {
        Self::from_blocks(reports.into_iter().flat_map(|r| r.blocks).collect())
    }
}

/// Throughput in Mgas/s.
pub fn mgas_per_s(gas: u64, ms: f64) -> f64 {
    if ms > 0.0 {
        gas as f64 / 1e6 / (ms / 1e3)
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_summary_of_no_timed_block_is_plus_zero() {
        let summary = Report::from_blocks(Vec::new()).summary;
        assert!(summary.sequential_ms.is_sign_positive());
        assert_eq!(format!("{:.1}", summary.sequential_ms), "0.0");
    }
}
