//! Conflict profiles: on synthetic blocks whose dependencies are known by
//! construction the graph and the bounds are exactly the expected ones, and on
//! every captured mainnet block a profile with its bounds is reported.

#![allow(clippy::unwrap_used)] // tests unwrap: a panic is the failure report

mod common;

use pel_executor::{
    profile::{BlockProfile, LocationKind},
    sequential::ExecOptions,
    ParallelExecutor,
};
use pel_node::{
    bench::{self, Workload},
    replay::{first_difference, replay, ReplayOptions},
};
use std::sync::Arc;

const TXS: usize = 200;

/// Profiles the workload at 1, 2 and 4 threads; the graph and gas bounds must
/// not depend on the thread count, and every run must equal sequential.
fn profile(workload: Workload) -> BlockProfile {
    let (state, block) = bench::build(workload, TXS);
    let chain = bench::chain();
    let expected =
        pel_executor::execute_block(&state, &block, &chain, ExecOptions::default()).unwrap();
    assert!(expected.receipts.iter().all(|r| r.success));
    let mut first: Option<BlockProfile> = None;
    for threads in [1, 2, 4] {
        let executor = ParallelExecutor::new(threads).unwrap();
        let (output, _, p) = executor
            .profile_block(&state, &block, &chain, ExecOptions::default())
            .unwrap();
        assert_eq!(first_difference(&expected, &output), None);
        assert_eq!(p.gas, expected.gas_used);
        assert_eq!(p.txs, TXS);
        if let Some(f) = &first {
            assert_eq!(f.depends_on, p.depends_on, "{threads} threads");
            assert_eq!(f.critical_path.txs, p.critical_path.txs);
            for (a, b) in f.bounds.iter().zip(&p.bounds) {
                assert_eq!(a.by_gas, b.by_gas);
            }
            assert_eq!(f.hot, p.hot);
        } else {
            first = Some(p);
        }
    }
    first.unwrap()
}

fn gas_bound(p: &BlockProfile, threads: Option<usize>) -> f64 {
    p.bound(threads).unwrap().by_gas
}

#[test]
fn independent_transfers_have_no_edges_and_bound_by_thread_count() {
    let p = profile(Workload::Raw);
    assert!(p.depends_on.iter().all(Vec::is_empty));
    assert_eq!((p.edges, p.independent), (0, TXS));
    assert_eq!(p.critical_path.gas, 21_000);
    for t in [2, 4, 8, 16, 32] {
        assert_eq!(gas_bound(&p, Some(t)), t as f64);
    }
    assert_eq!(gas_bound(&p, None), TXS as f64);
    assert!(p.hot.is_empty());
}

#[test]
fn payments_to_one_address_are_independent() {
    // A plain transfer credits its recipient without reading its balance.
    let p = profile(Workload::Deposits);
    assert_eq!((p.edges, p.independent), (0, TXS));
    assert_eq!(gas_bound(&p, Some(2)), 2.0);
    assert_eq!(gas_bound(&p, None), TXS as f64);
}

#[test]
fn a_fully_chained_block_is_one_path_with_bound_one() {
    let p = profile(Workload::Chained);
    let expected: Vec<Vec<usize>> = (0..TXS)
        .map(|j| if j == 0 { vec![] } else { vec![j - 1] })
        .collect();
    assert_eq!(p.depends_on, expected);
    assert_eq!(p.critical_path.txs, (0..TXS).collect::<Vec<_>>());
    assert_eq!(p.critical_path.gas, p.gas);
    assert!(p.bounds.iter().all(|b| b.by_gas == 1.0));
    assert_eq!(p.hot.len(), 1);
    assert_eq!(p.hot[0].kind, LocationKind::Storage);
    assert_eq!(p.hot[0].dependencies, TXS - 1);
}

#[test]
fn hotspot_50_chains_exactly_the_shared_calls() {
    let workload = Workload::Hotspot(50);
    let p = profile(workload);
    let hot: Vec<usize> = (0..TXS).filter(|&i| workload.is_hot(i)).collect();
    assert_eq!(hot.len(), TXS / 2);
    let mut expected = vec![Vec::new(); TXS];
    for pair in hot.windows(2) {
        expected[pair[1]] = vec![pair[0]];
    }
    assert_eq!(p.depends_on, expected);
    assert_eq!(p.critical_path.txs, hot);
    // Every transaction uses the same gas: the hot half is the critical path.
    assert_eq!(p.critical_path.gas * 2, p.gas);
    assert_eq!(gas_bound(&p, Some(2)), 2.0);
    assert_eq!(gas_bound(&p, Some(16)), 2.0);
    assert_eq!(gas_bound(&p, None), 2.0);
    assert_eq!(p.hot.len(), 1);
    assert_eq!(p.hot[0].slot, Some(alloy_primitives::U256::ZERO));
    assert_eq!(p.hot[0].dependencies, TXS / 2 - 1);
}

#[test]
fn hotspot_25_bound_grows_to_four() {
    let p = profile(Workload::Hotspot(25));
    assert_eq!(p.critical_path.txs.len(), TXS / 4);
    assert_eq!(p.critical_path.gas * 4, p.gas);
    assert_eq!(gas_bound(&p, Some(2)), 2.0);
    assert_eq!(gas_bound(&p, Some(4)), 4.0);
    assert_eq!(gas_bound(&p, Some(8)), 4.0);
    assert_eq!(gas_bound(&p, None), 4.0);
}

#[test]
fn every_mainnet_block_reports_a_profile() {
    let mut options = ReplayOptions::mainnet();
    let executor = Arc::new(ParallelExecutor::new(2).unwrap());
    options.parallel = Some(executor.clone());
    options.profiler = Some(executor);
    let report = replay(&common::testdata().join("mainnet"), &options, |_| {}).unwrap();
    assert_eq!(report.summary.blocks, 46);
    for b in &report.blocks {
        assert!(b.valid, "block {}: {:?}", b.number, b.errors);
        let p = b
            .profile
            .as_ref()
            .unwrap_or_else(|| panic!("block {} has no profile", b.number));
        assert_eq!(p.txs, b.txs, "block {}", b.number);
        assert_eq!(p.gas, b.gas_used, "block {}", b.number);
        assert_eq!(p.bounds.len(), 6);
        let unlimited = gas_bound(p, None);
        assert!(unlimited >= 1.0 && unlimited <= p.txs.max(1) as f64);
        for t in [2, 4, 8, 16, 32] {
            let bound = gas_bound(p, Some(t));
            assert!(bound >= 1.0 && bound <= t as f64 && bound <= unlimited + 1e-9);
        }
        assert_eq!(p.edges, p.depends_on.iter().map(Vec::len).sum::<usize>());
        for (j, deps) in p.depends_on.iter().enumerate() {
            assert!(deps.iter().all(|&i| i < j), "block {} tx {j}", b.number);
        }
    }
    let summary = report.summary.profile.as_ref().unwrap();
    assert_eq!(summary.blocks, 46);
    assert_eq!(
        summary.histogram.iter().map(|b| b.blocks).sum::<usize>(),
        46
    );
    assert!(!summary.hot_contracts.is_empty());
}
