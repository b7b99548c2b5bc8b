//! PEL's fuzz targets as plain functions over bytes. `fuzz/libfuzzer` wraps
//! each in a libFuzzer target; `fuzz/tests/corpus.rs` replays the committed
//! corpora and regression inputs through them in the normal test suite.
//!
//! Every function must return normally on any input: a panic is a finding.
//! Where a target has an oracle (a round trip, parallel == sequential, a
//! well-formed JSON-RPC response) it asserts it.

pub mod differential;
pub mod json;
pub mod rlp;
pub mod rpc;

/// A fuzz target: any input must return normally.
pub type Target = fn(&[u8]);

/// The fuzz targets by name, as the corpus folders and libFuzzer binaries
/// are named.
pub const TARGETS: [(&str, Target); 4] = [
    ("rlp", rlp::run),
    ("json", json::run),
    ("rpc", rpc::run),
    ("differential", differential::run),
];
