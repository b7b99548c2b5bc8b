//! The parallel executor against PEL's sequential path, 2 worker threads,
//! parallel phase forced: the 46 captured mainnet blocks, and the synthetic
//! workloads of `pel bench` (2,000 transactions each), where `parallel` is
//! the executor as it runs (the partitioned fast path where the block
//! splits, Block-STM otherwise) and `block_stm` is Block-STM alone. Every
//! parallel result is checked against the sequential one before timing.

/// The same allocator as the `pel` binary.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use pel_benches::{mainnet_blocks, pel_sequential_block};
use pel_executor::{
    execute_block, sequential::ExecOptions, ChainConfig, CodeCache, CostModel, ParallelExecutor,
};
use pel_node::bench::{self, Workload};
use std::sync::Arc;

const THREADS: usize = 2;

fn executor(cost_model: CostModel) -> ParallelExecutor {
    let mut e = ParallelExecutor::new(THREADS).expect("worker threads");
    e.cost_model = cost_model;
    e
}

fn mainnet(c: &mut Criterion) {
    let blocks = mainnet_blocks();
    let chain = ChainConfig::mainnet();
    let code = Arc::new(CodeCache::new());
    let options = ExecOptions {
        code_cache: Some(code.clone()),
        ..Default::default()
    };
    let gas: u64 = blocks.iter().map(|b| b.input.header.gas_used).sum();
    let forced = executor(CostModel::forced());
    let modelled = executor(CostModel::default());
    for b in &blocks {
        let seq = execute_block(&b.pre_state, &b.input, &chain, options.clone()).expect("block");
        let (par, _) = forced
            .execute_block(&b.pre_state, &b.input, &chain, options.clone())
            .expect("block");
        assert_eq!(seq, par, "block {}", b.input.header.number);
    }
    let mut group = c.benchmark_group("mainnet_46_blocks_2_threads");
    group.throughput(Throughput::Elements(gas));
    group.sample_size(20);
    group.bench_function("sequential", |bench| {
        bench.iter(|| {
            blocks
                .iter()
                .map(|b| pel_sequential_block(b, &code))
                .sum::<u64>()
        })
    });
    for (name, executor) in [
        ("parallel_forced", &forced),
        ("parallel_cost_model", &modelled),
    ] {
        group.bench_function(name, |bench| {
            bench.iter(|| {
                blocks
                    .iter()
                    .map(|b| {
                        executor
                            .execute_block(&b.pre_state, &b.input, &chain, options.clone())
                            .expect("block")
                            .0
                            .gas_used
                    })
                    .sum::<u64>()
            })
        });
    }
    group.finish();
}

fn synthetic(c: &mut Criterion) {
    let chain = bench::chain();
    let forced = executor(CostModel::forced());
    let block_stm = executor(CostModel {
        partition: None,
        ..CostModel::forced()
    });
    for workload in [
        Workload::Raw,
        Workload::Erc20,
        Workload::Amm,
        Workload::Chained,
    ] {
        let (state, block) = bench::build(workload, 2_000);
        let options = ExecOptions {
            code_cache: Some(Arc::new(CodeCache::new())),
            ..Default::default()
        };
        let seq = execute_block(&state, &block, &chain, options.clone()).expect("block");
        assert!(
            seq.receipts.iter().all(|r| r.success),
            "{workload}: a transaction failed"
        );
        for executor in [&forced, &block_stm] {
            let (par, _) = executor
                .execute_block(&state, &block, &chain, options.clone())
                .expect("block");
            assert_eq!(seq, par, "{workload}");
        }
        let mut group = c.benchmark_group(format!("{workload}_2000_txs_2_threads"));
        group.throughput(Throughput::Elements(seq.gas_used));
        group.sample_size(20);
        group.bench_function("sequential", |bench| {
            bench.iter(|| execute_block(&state, &block, &chain, options.clone()).expect("block"))
        });
        for (name, executor) in [("parallel", &forced), ("block_stm", &block_stm)] {
            group.bench_function(name, |bench| {
                bench.iter(|| {
                    executor
                        .execute_block(&state, &block, &chain, options.clone())
                        .expect("block")
                })
            });
        }
        group.finish();
    }
}

criterion_group!(benches, mainnet, synthetic);
criterion_main!(benches);
