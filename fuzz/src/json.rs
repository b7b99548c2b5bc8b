//! JSON the node parses from files: geth-style genesis files, GeneralStateTests
//! and BlockchainTests fixtures, and captured mainnet blocks.

use pel_node::{blocktest, genesis, statetest};
use std::path::Path;

/// Parses `data` as every JSON file format PEL reads.
pub fn run(data: &[u8]) {
    if let Ok(spec) = genesis::from_json(data, Path::new("fuzz.json")) {
        let _ = spec.hash();
    }
    let _ = statetest::prepare_fixture_bytes(data);
    let _ = blocktest::decode_fixture_bytes(data);
    let _ = serde_json::from_slice::<alloy_rpc_types_eth::Block>(data);
}
