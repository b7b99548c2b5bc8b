//! The official GeneralStateTests through `pel statetest`'s runner.

#![allow(clippy::unwrap_used)] // tests unwrap: a panic is the failure report

mod common;

use pel_executor::{CostModel, ParallelExecutor};
use pel_node::statetest::{self, UNSUPPORTED_FORKS};

#[test]
fn general_state_tests_all_pass() {
    let root = common::testdata().join("ethereum-tests/GeneralStateTests");
    // Every case also runs through the parallel executor at 1, 2, 4 and 8
    // threads and must match the sequential result.
    let executors: Vec<ParallelExecutor> = [1, 2, 4, 8]
        .into_iter()
        .map(|t| {
            let mut e = ParallelExecutor::new(t).unwrap();
            e.cost_model = CostModel::always();
            e
        })
        .collect();
    let outcome = statetest::run_with(&[root], &executors).unwrap();
    for f in outcome.failures.iter().take(20) {
        eprintln!("FAIL {}: {}", f.id, f.reason);
    }
    assert_eq!(outcome.failed, 0, "{} failures", outcome.failed);
    assert!(outcome.passed >= 21_400, "only {} passed", outcome.passed);
    // Every skip is a fork PEL knowingly does not run, never a Cancun case.
    assert_eq!(outcome.skipped, outcome.skips.len());
    for s in &outcome.skips {
        assert!(!s.id.contains("::Cancun["), "Cancun case skipped: {}", s.id);
        assert!(
            UNSUPPORTED_FORKS
                .iter()
                .any(|f| s.id.contains(&format!("::{f}["))),
            "{}",
            s.id
        );
        assert!(!s.reason.is_empty());
    }
    assert_eq!(outcome.passed + outcome.failed + outcome.skipped, 21_442);
}

#[test]
fn bad_fixture_files_fail_cleanly() {
    let dir = common::temp_dir("statetest-bad");
    std::fs::write(dir.join("broken.json"), "{ not json").unwrap();
    // A well-formed fixture naming a fork nobody knows.
    let good = common::testdata().join("ethereum-tests/GeneralStateTests/stExample/add11.json");
    let text = std::fs::read_to_string(good)
        .unwrap()
        .replace("\"Cancun\"", "\"Atlantis\"");
    std::fs::write(dir.join("unknown_fork.json"), text).unwrap();
    let outcome = statetest::run(&[dir.to_path_buf()]).unwrap();
    assert_eq!(outcome.passed, 0);
    assert_eq!(outcome.failed, 2, "{:?}", outcome.failures);
    assert!(outcome
        .failures
        .iter()
        .any(|f| f.reason.contains("malformed")));
    assert!(outcome
        .failures
        .iter()
        .any(|f| f.reason.contains("unknown fork \"Atlantis\"")));
    assert!(statetest::run(&[dir.join("missing")]).is_err());
}

#[test]
fn tampered_expectation_is_caught() {
    let dir = common::temp_dir("statetest-tampered");
    let good = common::testdata().join("ethereum-tests/GeneralStateTests/stExample/add11.json");
    let mut fixture: serde_json::Value =
        serde_json::from_slice(&std::fs::read(good).unwrap()).unwrap();
    let (_, test) = fixture.as_object_mut().unwrap().iter_mut().next().unwrap();
    test["post"]["Cancun"][0]["hash"] =
        "0x1111111111111111111111111111111111111111111111111111111111111111".into();
    std::fs::write(
        dir.join("tampered.json"),
        serde_json::to_vec(&fixture).unwrap(),
    )
    .unwrap();
    let outcome = statetest::run(&[dir.to_path_buf()]).unwrap();
    assert_eq!(outcome.failed, 1);
    assert!(outcome.failures[0].reason.contains("state root"));
}
