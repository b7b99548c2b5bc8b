//! PEL state: the narrow read interface every executor runs against, an in-memory
//! backend, the [`StateDiff`] a block produces, and the Merkle-Patricia state root.
//!
//! Data flows one way: executors read through [`StateReader`] and hand back a
//! [`StateDiff`]; backends apply diffs. Nothing here knows about the EVM.

pub mod account;
pub mod diff;
pub mod error;
pub mod mainnet;
pub mod memory;
pub mod overlay;
pub mod rocks;
pub mod root;
pub mod trie;

pub use account::AccountInfo;
pub use diff::{AccountDiff, StateDiff};
pub use error::StateError;
pub use memory::InMemoryState;
pub use overlay::DiffOverlay;
pub use rocks::{BlockRecord, Head, HistoricalState, PendingState, RocksStore, StoreOptions};
pub use root::{state_root, storage_root};

use alloy_primitives::{Address, Bytes, B256, U256};

/// Read access to one consistent snapshot of world state.
///
/// Implementations must be cheap to call concurrently (`Sync`): the parallel
/// executor reads the base state from many threads at once.
pub trait StateReader: Send + Sync {
    /// Balance, nonce and code hash of `address`, or `None` if the account does not exist.
    fn account(&self, address: &Address) -> Result<Option<AccountInfo>, StateError>;
    /// Contract code by its keccak256 hash, or `None` if unknown.
    fn code(&self, code_hash: &B256) -> Result<Option<Bytes>, StateError>;
    /// Value of a storage slot (zero when unset or when the account does not exist).
    fn storage(&self, address: &Address, slot: &U256) -> Result<U256, StateError>;
    /// Hash of an earlier block by number, or `None` if not known to this state.
    fn block_hash(&self, number: u64) -> Result<Option<B256>, StateError>;
    /// True when the account has at least one non-zero storage slot (EIP-7610's
    /// creation-collision rule needs it).
    fn has_storage(&self, address: &Address) -> Result<bool, StateError>;
}

impl<T: StateReader + ?Sized> StateReader for &T {
    fn account(&self, address: &Address) -> Result<Option<AccountInfo>, StateError> {
        (**self).account(address)
    }
    fn code(&self, code_hash: &B256) -> Result<Option<Bytes>, StateError> {
        (**self).code(code_hash)
    }
    fn storage(&self, address: &Address, slot: &U256) -> Result<U256, StateError> {
        (**self).storage(address, slot)
    }
    fn block_hash(&self, number: u64) -> Result<Option<B256>, StateError> {
        (**self).block_hash(number)
    }
    fn has_storage(&self, address: &Address) -> Result<bool, StateError> {
        (**self).has_storage(address)
    }
}
