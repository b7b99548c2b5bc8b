//! The `pel` binary's library: loading captured blocks, replaying them with
//! header checks, and running the official state tests. The CLI in `main.rs`
//! is a thin layer over these modules.

pub mod bench;
pub mod blocktest;
pub mod chain;
pub mod checks;
pub mod devnet;
pub mod genesis;
pub mod import;
pub mod load;
pub mod output;
pub mod profile;
pub mod replay;
pub mod statetest;
pub mod synth;
pub mod validate;
