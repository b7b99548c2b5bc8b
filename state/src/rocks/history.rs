//! Reading the state after an earlier block through the per-block history.
//!
//! The value of a key after block `M` is the pre-value recorded by the first
//! block after `M` that changed it, or the current value when no later block did.
//! One seek in the history index answers it.

use super::{db_err, schema::*, RocksStore};
use crate::{AccountInfo, StateError, StateReader};
use alloy_primitives::{Address, Bytes, B256, U256};
use std::collections::BTreeSet;

/// The state after block `number`, read from a [`RocksStore`].
#[derive(Debug)]
pub struct HistoricalState<'a> {
    store: &'a RocksStore,
    number: u64,
    at_head: bool,
}

impl<'a> HistoricalState<'a> {
    pub(crate) fn new(store: &'a RocksStore, number: u64) -> Result<Self, StateError> {
        let head = store.head()?;
        if number > head.number {
            return Err(StateError::Backend(format!(
                "block {number} is beyond the head ({})",
                head.number
            )));
        }
        let from = store.history_from()?;
        if number + 1 < from {
            return Err(StateError::Backend(format!(
                "state at block {number} is pruned (history starts after block {})",
                from.saturating_sub(1)
            )));
        }
        Ok(Self {
            store,
            number,
            at_head: number == head.number,
        })
    }

    /// The block this view is at.
    pub fn number(&self) -> u64 {
        self.number
    }

    /// The value recorded by the first change after `self.number` under `prefix`
    /// (an address, or an address and slot), if any.
    fn first_change_after(&self, cf: &str, prefix: &[u8]) -> Result<Option<Vec<u8>>, StateError> {
        let mut key = prefix.to_vec();
        key.extend_from_slice(&(self.number + 1).to_be_bytes());
        let mut it = self.store.db().raw_iterator_cf(self.store.cf(cf)?);
        it.seek(&key);
        let found = match it.item() {
            Some((k, v)) if k.len() == prefix.len() + 8 && k.starts_with(prefix) => {
                Some(v.to_vec())
            }
            _ => None,
        };
        it.status().map_err(db_err)?;
        Ok(found)
    }
}

impl StateReader for HistoricalState<'_> {
    fn account(&self, address: &Address) -> Result<Option<AccountInfo>, StateError> {
        if !self.at_head {
            if let Some(pre) = self.first_change_after(CF_ACCOUNT_HISTORY, address.as_slice())? {
                return decode_pre_account(&pre);
            }
        }
        self.store.account(address)
    }

    fn code(&self, code_hash: &B256) -> Result<Option<Bytes>, StateError> {
        self.store.code(code_hash)
    }

    fn storage(&self, address: &Address, slot: &U256) -> Result<U256, StateError> {
        if !self.at_head {
            let prefix = storage_key(address, slot);
            if let Some(pre) = self.first_change_after(CF_STORAGE_HISTORY, &prefix)? {
                return decode_word(&pre);
            }
        }
        self.store.storage(address, slot)
    }

    fn block_hash(&self, number: u64) -> Result<Option<B256>, StateError> {
        if number > self.number {
            return Ok(None);
        }
        self.store.block_hash(number)
    }

    /// Exact but linear in the account's current and historical slots.
    fn has_storage(&self, address: &Address) -> Result<bool, StateError> {
        if self.at_head {
            return self.store.has_storage(address);
        }
        let mut slots: BTreeSet<U256> = self.store.storage_of(address)?.into_keys().collect();
        let mut it = self
            .store
            .db()
            .raw_iterator_cf(self.store.cf(CF_STORAGE_HISTORY)?);
        it.seek(address.as_slice());
        while let Some(key) = it.key() {
            if key.len() != 60 || !key.starts_with(address.as_slice()) {
                break;
            }
            slots.insert(U256::from_be_slice(&key[20..52]));
            it.next();
        }
        it.status().map_err(db_err)?;
        for slot in slots {
            if !self.storage(address, &slot)?.is_zero() {
                return Ok(true);
            }
        }
        Ok(false)
    }
}
