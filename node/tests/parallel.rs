//! The Block-STM executor against the sequential one on every captured mainnet
//! block, at several thread counts, plus a stress run of the most contended
//! blocks to catch races.

#![allow(clippy::unwrap_used)] // tests unwrap: a panic is the failure report

mod common;

use pel_executor::{
    execute_block, sequential::ExecOptions, BlockOutput, ChainConfig, CostModel, Grouping,
    ParallelExecutor, ParallelStats, PartitionPolicy,
};
use pel_node::load::{self, CapturedBlock};
use pel_node::replay::first_difference;

fn blocks() -> Vec<CapturedBlock> {
    let dir = common::testdata().join("mainnet");
    let chain = ChainConfig::mainnet();
    let hashes = load::load_block_hashes(&dir).unwrap();
    load::list_blocks(&dir)
        .unwrap()
        .into_iter()
        .map(|(_, path)| load::load_block(&path, &hashes, &chain).unwrap())
        .collect()
}

fn executor(threads: usize) -> ParallelExecutor {
    let mut executor = ParallelExecutor::new(threads).unwrap();
    executor.cost_model = CostModel::always();
    executor
}

/// `b` run sequentially and by `executor`.
fn both(
    executor: &ParallelExecutor,
    b: &CapturedBlock,
) -> (BlockOutput, BlockOutput, ParallelStats) {
    let chain = ChainConfig::mainnet();
    let seq = execute_block(&b.pre_state, &b.input, &chain, ExecOptions::default()).unwrap();
    let (par, stats) = executor
        .execute_block(&b.pre_state, &b.input, &chain, ExecOptions::default())
        .unwrap();
    (seq, par, stats)
}

#[test]
fn parallel_equals_sequential_on_every_mainnet_block_at_1_2_4_8_threads() {
    let blocks = blocks();
    for threads in [1, 2, 4, 8] {
        let executor = executor(threads);
        for b in &blocks {
            let (seq, par, stats) = both(&executor, b);
            assert!(stats.parallel);
            if let Some(d) = first_difference(&seq, &par) {
                panic!("block {} at {threads} threads: {d}", b.input.header.number);
            }
            assert_eq!(par.gas_used, b.input.header.gas_used);
        }
    }
}

/// The partitioned fast path tried on every block whatever its plan says,
/// grouped as usual and by sender alone: where the groups meet, the conflict
/// check must send the block to Block-STM; either way the result is the
/// sequential one.
#[test]
fn partitioned_path_equals_sequential_on_every_mainnet_block() {
    let blocks = blocks();
    let (mut partitioned, mut abandoned) = (0, 0);
    for (threads, grouping) in [
        (2, Grouping::Keys),
        (4, Grouping::Keys),
        (2, Grouping::SenderOnly),
    ] {
        let mut executor = executor(threads);
        executor.cost_model.partition = Some(PartitionPolicy::always(grouping));
        for b in &blocks {
            let (seq, par, stats) = both(&executor, b);
            partitioned += usize::from(stats.partitioned);
            abandoned += usize::from(stats.partition_abandoned);
            if let Some(d) = first_difference(&seq, &par) {
                panic!(
                    "block {} at {threads} threads, {grouping:?}, {}: {d}",
                    b.input.header.number,
                    stats.path()
                );
            }
        }
    }
    eprintln!("{partitioned} runs partitioned, {abandoned} abandoned");
    assert!(partitioned > 10, "{partitioned} runs partitioned");
    assert!(abandoned > 10, "{abandoned} runs abandoned");
}

#[test]
fn stress_contended_blocks() {
    let chain = ChainConfig::mainnet();
    // Blocks with the most re-executions (long same-sender chains, hot
    // contracts), and the swaps that meet on WETH's shifted balance.
    let hot = [
        2_462_997u64,
        4_330_482,
        5_891_667,
        10_760_440,
        12_244_000,
        12_459_406,
        12_520_364,
        13_217_637,
        14_396_881,
    ];
    let blocks: Vec<CapturedBlock> = blocks()
        .into_iter()
        .filter(|b| hot.contains(&b.input.header.number))
        .collect();
    assert_eq!(blocks.len(), hot.len());
    let iterations: usize = std::env::var("PEL_STRESS_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    // The third executor gives up at the first contention and executes the
    // rest of the block in order on its committed prefix, wherever that ends.
    // The fourth tries the partitioned path first, grouped by sender alone:
    // on these blocks it conflicts and hands the block to Block-STM, or
    // stops early when a transaction touches the beneficiary.
    let mut eager_fallback = executor(2);
    eager_fallback.cost_model.fallback = Some(pel_executor::FallBack::EAGER);
    let mut partition_first = executor(2);
    partition_first.cost_model.partition = Some(PartitionPolicy::always(Grouping::SenderOnly));
    let mut fell_back = 0;
    for executor in [executor(2), executor(4), eager_fallback, partition_first] {
        let threads = executor.threads();
        for b in &blocks {
            let seq =
                execute_block(&b.pre_state, &b.input, &chain, ExecOptions::default()).unwrap();
            for i in 0..iterations {
                let (par, stats) = executor
                    .execute_block(&b.pre_state, &b.input, &chain, ExecOptions::default())
                    .unwrap();
                fell_back += usize::from(stats.fell_back);
                if let Some(d) = first_difference(&seq, &par) {
                    panic!(
                        "block {} at {threads} threads ({:?}), run {i}: {d}",
                        b.input.header.number, executor.cost_model
                    );
                }
            }
        }
    }
    eprintln!("{fell_back} runs fell back to in-order execution");
}

#[test]
fn synthetic_workloads_run_and_match_sequential() {
    use pel_node::bench::{self, Workload};
    for workload in [
        Workload::Raw,
        Workload::Erc20,
        Workload::Amm,
        Workload::Chained,
    ] {
        // `run` fails if any transaction fails or a parallel result differs.
        let report = bench::run(workload, 300, &[1, 2, 4], 1, true).unwrap();
        assert_eq!(report.txs, 300);
        assert_eq!(report.results.len(), 3);
        assert!(report.gas >= 300 * 21_000, "{workload}: gas {}", report.gas);
        let json = serde_json::to_value(&report).unwrap();
        for key in ["workload", "txs", "gas", "sequential_ms", "results"] {
            assert!(!json[key].is_null(), "{key}");
        }
        for key in ["threads", "ms", "speedup", "reexecutions"] {
            assert!(!json["results"][0][key].is_null(), "{key}");
        }
    }
}
