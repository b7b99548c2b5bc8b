//! Sequential execution of the 46 captured mainnet blocks: PEL's sequential
//! path against a bare revm loop over the same transactions and pre-state.
//! Throughput is reported in gas per second (criterion's "elem/s").

/// The same allocator as the `pel` binary.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use pel_benches::{bare_revm_block, mainnet_blocks, pel_sequential_block, revm_cache_db};

fn sequential(c: &mut Criterion) {
    let blocks = mainnet_blocks();
    let code_cache = std::sync::Arc::new(pel_executor::CodeCache::new());
    let gas: u64 = blocks.iter().map(|b| b.input.header.gas_used).sum();
    // Both paths must agree with the headers before they are timed.
    for b in &blocks {
        assert_eq!(
            pel_sequential_block(b, &code_cache),
            b.input.header.gas_used
        );
        assert_eq!(
            bare_revm_block(b, revm_cache_db(b)),
            b.input.header.gas_used
        );
    }
    let mut group = c.benchmark_group("mainnet_46_blocks");
    group.throughput(Throughput::Elements(gas));
    group.sample_size(30);
    group.bench_function("pel_sequential", |bench| {
        bench.iter(|| {
            blocks
                .iter()
                .map(|b| pel_sequential_block(b, &code_cache))
                .sum::<u64>()
        })
    });
    group.bench_function("bare_revm", |bench| {
        bench.iter_batched(
            || blocks.iter().map(revm_cache_db).collect::<Vec<_>>(),
            |dbs| {
                blocks
                    .iter()
                    .zip(dbs)
                    .map(|(b, db)| bare_revm_block(b, db))
                    .sum::<u64>()
            },
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

criterion_group!(benches, sequential);
criterion_main!(benches);
