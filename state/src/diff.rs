//! What a block changed: the unit every backend commits.
//!
//! Invariants:
//! - `accounts` holds only accounts whose final state differs from the state the
//!   block started from (executors normalise against the base before returning);
//! - `info == None` means the account does not exist after the block (destroyed by
//!   SELFDESTRUCT or removed as an empty touched account under EIP-161);
//! - `storage_cleared` means every slot the account had before the block is gone
//!   (self-destruct or re-creation); the entries of `storage` apply after that wipe;
//! - a storage value of zero deletes the slot.
//!
//! Maps are ordered so two diffs compare equal field for field, whatever executor
//! (sequential or parallel) produced them.

use crate::AccountInfo;
use alloy_primitives::{Address, Bytes, B256, U256};
use std::collections::BTreeMap;

/// The changes of one account.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AccountDiff {
    /// Final balance, nonce and code hash; `None` when the account no longer exists.
    pub info: Option<AccountInfo>,
    /// The account's pre-block storage was wiped before `storage` applies.
    pub storage_cleared: bool,
    /// Final value of each slot the block changed (zero deletes).
    pub storage: BTreeMap<U256, U256>,
}

impl AccountDiff {
    /// The account existed (or may have) before and does not exist after the block.
    pub fn is_destroyed(&self) -> bool {
        self.info.is_none()
    }
}

/// Everything a block changed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StateDiff {
    /// Changed accounts, by address.
    pub accounts: BTreeMap<Address, AccountDiff>,
    /// Code deployed by the block, by hash.
    pub codes: BTreeMap<B256, Bytes>,
}

impl StateDiff {
    /// True when the block changed nothing.
    pub fn is_empty(&self) -> bool {
        self.accounts.is_empty() && self.codes.is_empty()
    }

    /// Number of storage slots the diff writes.
    pub fn storage_writes(&self) -> usize {
        self.accounts.values().map(|a| a.storage.len()).sum()
    }
}
