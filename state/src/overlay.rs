//! [`DiffOverlay`]: a state reader that sees a base state with a diff applied,
//! without copying either.

use crate::{AccountInfo, StateDiff, StateError, StateReader};
use alloy_primitives::{Address, Bytes, B256, U256};

/// `base` as it is after `diff`.
#[derive(Debug, Clone, Copy)]
pub struct DiffOverlay<'a, S> {
    base: &'a S,
    diff: &'a StateDiff,
}

impl<'a, S: StateReader> DiffOverlay<'a, S> {
    /// The view of `base` after `diff`.
    pub fn new(base: &'a S, diff: &'a StateDiff) -> Self {
        Self { base, diff }
    }
}

impl<S: StateReader> StateReader for DiffOverlay<'_, S> {
    fn account(&self, address: &Address) -> Result<Option<AccountInfo>, StateError> {
        match self.diff.accounts.get(address) {
            Some(change) => Ok(change.info),
            None => self.base.account(address),
        }
    }

    fn code(&self, code_hash: &B256) -> Result<Option<Bytes>, StateError> {
        match self.diff.codes.get(code_hash) {
            Some(code) => Ok(Some(code.clone())),
            None => self.base.code(code_hash),
        }
    }

    fn storage(&self, address: &Address, slot: &U256) -> Result<U256, StateError> {
        match self.diff.accounts.get(address) {
            Some(change) => match change.storage.get(slot) {
                Some(value) => Ok(*value),
                None if change.storage_cleared || change.info.is_none() => Ok(U256::ZERO),
                None => self.base.storage(address, slot),
            },
            None => self.base.storage(address, slot),
        }
    }

    fn block_hash(&self, number: u64) -> Result<Option<B256>, StateError> {
        self.base.block_hash(number)
    }

    fn has_storage(&self, address: &Address) -> Result<bool, StateError> {
        match self.diff.accounts.get(address) {
            Some(change) => {
                if change.storage.values().any(|v| !v.is_zero()) {
                    return Ok(true);
                }
                if change.storage_cleared || change.info.is_none() {
                    return Ok(false);
                }
                // Written slots all zero: base slots outside the diff decide.
                if !self.base.has_storage(address)? {
                    return Ok(false);
                }
                // Conservative: the base has slots and the diff did not wipe them.
                Ok(true)
            }
            None => self.base.has_storage(address),
        }
    }
}
