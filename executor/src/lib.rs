//! PEL execution. Today: the sequential reference executor on `revm`, which every
//! other executor (the Block-STM one lands here next) must match field for field.
//!
//! Data flow: a [`BlockInput`] (header, transactions with their recovered senders,
//! withdrawals) runs against any [`pel_state::StateReader`] and yields a
//! [`BlockOutput`]: receipts, gas used, logs bloom and the [`pel_state::StateDiff`].

pub mod block;
pub mod block_state;
pub mod call;
pub mod chain;
pub mod changes;
pub mod code_cache;
pub mod commit;
pub mod env;
pub mod error;
pub mod hints;
pub mod janitor;
pub mod journal;
pub mod mv_memory;
pub mod parallel;
pub mod partition;
pub mod profile;
pub mod receipt;
pub mod requests;
pub mod scheduler;
pub mod sequential;
pub mod system;
pub mod tx;
pub mod vm;

pub use block::{BlockInput, BlockOutput, Ommer};
pub use block_state::BlockState;
pub use chain::{ChainConfig, Fork};
pub use code_cache::CodeCache;
pub use error::ExecError;
pub use parallel::{CostModel, ParallelExecutor, ParallelStats, PartitionPolicy, Route};
pub use partition::Grouping;
pub use profile::BlockProfile;
pub use receipt::TxReceipt;
pub use scheduler::FallBack;
pub use sequential::execute_block;
pub use tx::PreparedTx;

/// Re-exported so callers name the same revm the executor uses.
pub use revm;
pub use revm::primitives::hardfork::SpecId;
