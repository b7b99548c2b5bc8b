//! The account record stored in state and in the accounts trie.

use alloy_primitives::{B256, U256};
use alloy_trie::EMPTY_ROOT_HASH;
use serde::{Deserialize, Serialize};

/// keccak256 of empty code: the code hash of every account without code.
pub const KECCAK_EMPTY: B256 =
    alloy_primitives::b256!("c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470");

/// Balance, nonce and code hash of an account (its storage lives apart).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AccountInfo {
    /// Balance in wei.
    pub balance: U256,
    /// Transaction count (or creation count for contracts).
    pub nonce: u64,
    /// keccak256 of the account's code, [`KECCAK_EMPTY`] when it has none.
    pub code_hash: B256,
}

impl Default for AccountInfo {
    fn default() -> Self {
        Self {
            balance: U256::ZERO,
            nonce: 0,
            code_hash: KECCAK_EMPTY,
        }
    }
}

impl AccountInfo {
    /// An account with only a balance.
    pub fn with_balance(balance: U256) -> Self {
        Self {
            balance,
            ..Self::default()
        }
    }

    /// EIP-161 emptiness: no balance, no nonce, no code.
    pub fn is_empty(&self) -> bool {
        self.balance.is_zero() && self.nonce == 0 && self.has_no_code()
    }

    /// True when the account has no code.
    pub fn has_no_code(&self) -> bool {
        self.code_hash == KECCAK_EMPTY || self.code_hash == B256::ZERO
    }

    /// The trie leaf of this account given its storage root.
    // The struct update covers fields alloy-trie adds under optional features.
    #[allow(clippy::needless_update)]
    pub fn to_trie_account(&self, storage_root: B256) -> alloy_trie::TrieAccount {
        alloy_trie::TrieAccount {
            nonce: self.nonce,
            balance: self.balance,
            storage_root,
            code_hash: if self.code_hash == B256::ZERO {
                KECCAK_EMPTY
            } else {
                self.code_hash
            },
            ..Default::default()
        }
    }

    /// The trie leaf of an account without storage.
    pub fn to_trie_account_no_storage(&self) -> alloy_trie::TrieAccount {
        self.to_trie_account(EMPTY_ROOT_HASH)
    }
}
