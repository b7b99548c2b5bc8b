//! In-memory state backend: a hash map of accounts with their storage, codes by
//! hash and known block hashes. Used for replaying captured blocks, for the state
//! tests, and as the base of benchmarks.

use crate::{root, AccountInfo, StateDiff, StateError, StateReader};
use alloy_primitives::{
    map::{AddressMap, HashMap, U256Map},
    Address, Bytes, B256, U256,
};

/// One account held in memory.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MemAccount {
    /// Balance, nonce, code hash.
    pub info: AccountInfo,
    /// Non-zero storage slots.
    pub storage: U256Map<U256>,
}

/// A complete (or partial, for captured blocks) world state held in memory.
#[derive(Clone, Debug, Default)]
pub struct InMemoryState {
    accounts: AddressMap<MemAccount>,
    codes: HashMap<B256, Bytes>,
    block_hashes: HashMap<u64, B256>,
}

impl InMemoryState {
    /// An empty state.
    pub fn new() -> Self {
        Self::default()
    }

    /// Inserts or replaces an account, with its storage (zero values are dropped).
    pub fn insert_account(
        &mut self,
        address: Address,
        info: AccountInfo,
        storage: impl IntoIterator<Item = (U256, U256)>,
    ) {
        let storage = storage.into_iter().filter(|(_, v)| !v.is_zero()).collect();
        self.accounts.insert(address, MemAccount { info, storage });
    }

    /// Inserts contract code; returns its hash.
    pub fn insert_code(&mut self, code: Bytes) -> B256 {
        let hash = alloy_primitives::keccak256(&code);
        self.codes.insert(hash, code);
        hash
    }

    /// Inserts code under a hash the caller vouches for.
    pub fn insert_code_with_hash(&mut self, hash: B256, code: Bytes) {
        self.codes.insert(hash, code);
    }

    /// Records the hash of block `number` (for BLOCKHASH).
    pub fn insert_block_hash(&mut self, number: u64, hash: B256) {
        self.block_hashes.insert(number, hash);
    }

    /// All accounts.
    pub fn accounts(&self) -> impl Iterator<Item = (&Address, &MemAccount)> {
        self.accounts.iter()
    }

    /// One account with its storage.
    pub fn get(&self, address: &Address) -> Option<&MemAccount> {
        self.accounts.get(address)
    }

    /// Number of accounts.
    pub fn len(&self) -> usize {
        self.accounts.len()
    }

    /// True when no account exists.
    pub fn is_empty(&self) -> bool {
        self.accounts.is_empty()
    }

    /// Applies a block's diff.
    pub fn apply(&mut self, diff: &StateDiff) {
        for (hash, code) in &diff.codes {
            self.codes.insert(*hash, code.clone());
        }
        for (address, change) in &diff.accounts {
            match change.info {
                None => {
                    self.accounts.remove(address);
                }
                Some(info) => {
                    let account = self.accounts.entry(*address).or_default();
                    account.info = info;
                    if change.storage_cleared {
                        account.storage.clear();
                    }
                    for (slot, value) in &change.storage {
                        if value.is_zero() {
                            account.storage.remove(slot);
                        } else {
                            account.storage.insert(*slot, *value);
                        }
                    }
                }
            }
        }
    }

    /// The Merkle-Patricia root of the whole state held here.
    pub fn state_root(&self) -> B256 {
        root::state_root(self.accounts.iter().map(|(address, account)| {
            (
                *address,
                account.info,
                account.storage.iter().map(|(k, v)| (*k, *v)),
            )
        }))
    }
}

impl StateReader for InMemoryState {
    fn account(&self, address: &Address) -> Result<Option<AccountInfo>, StateError> {
        Ok(self.accounts.get(address).map(|a| a.info))
    }

    fn code(&self, code_hash: &B256) -> Result<Option<Bytes>, StateError> {
        Ok(self.codes.get(code_hash).cloned())
    }

    fn storage(&self, address: &Address, slot: &U256) -> Result<U256, StateError> {
        Ok(self
            .accounts
            .get(address)
            .and_then(|a| a.storage.get(slot).copied())
            .unwrap_or_default())
    }

    fn block_hash(&self, number: u64) -> Result<Option<B256>, StateError> {
        Ok(self.block_hashes.get(&number).copied())
    }

    fn has_storage(&self, address: &Address) -> Result<bool, StateError> {
        Ok(self
            .accounts
            .get(address)
            .is_some_and(|a| !a.storage.is_empty()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::AccountDiff;

    #[test]
    fn apply_diff_updates_destroys_and_wipes() {
        let a = Address::with_last_byte(1);
        let b = Address::with_last_byte(2);
        let mut state = InMemoryState::new();
        state.insert_account(
            a,
            AccountInfo::with_balance(U256::from(10)),
            [
                (U256::from(1), U256::from(5)),
                (U256::from(2), U256::from(6)),
            ],
        );
        state.insert_account(b, AccountInfo::with_balance(U256::from(3)), []);
        let mut diff = StateDiff::default();
        diff.accounts.insert(
            a,
            AccountDiff {
                info: Some(AccountInfo::with_balance(U256::from(7))),
                storage_cleared: true,
                storage: [(U256::from(3), U256::from(9))].into(),
            },
        );
        diff.accounts.insert(b, AccountDiff::default());
        state.apply(&diff);
        assert_eq!(state.account(&a).unwrap().unwrap().balance, U256::from(7));
        assert_eq!(state.storage(&a, &U256::from(1)).unwrap(), U256::ZERO);
        assert_eq!(state.storage(&a, &U256::from(3)).unwrap(), U256::from(9));
        assert!(state.account(&b).unwrap().is_none());
    }
}
