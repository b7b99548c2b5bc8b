//! The Merkle-Patricia state root of a full state: an accounts trie keyed by
//! keccak256(address) whose leaves hold each account's storage-trie root, built
//! with `alloy-trie`'s hash builder. Zero-valued slots are not part of a trie.

use crate::AccountInfo;
use alloy_primitives::{keccak256, Address, B256, U256};

/// Root of one account's storage trie from its (slot, value) pairs, in any order.
pub fn storage_root(storage: impl IntoIterator<Item = (U256, U256)>) -> B256 {
    alloy_trie::root::storage_root_unhashed(
        storage
            .into_iter()
            .filter(|(_, v)| !v.is_zero())
            .map(|(k, v)| (B256::from(k), v)),
    )
}

/// Root of a whole state given every account with its storage, in any order.
pub fn state_root<S>(accounts: impl IntoIterator<Item = (Address, AccountInfo, S)>) -> B256
where
    S: IntoIterator<Item = (U256, U256)>,
{
    alloy_trie::root::state_root_unsorted(accounts.into_iter().map(|(address, info, storage)| {
        (
            keccak256(address),
            info.to_trie_account(storage_root(storage)),
        )
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_primitives::hex;
    use alloy_trie::EMPTY_ROOT_HASH;

    #[test]
    fn empty_state_has_empty_root() {
        type Entry = (Address, AccountInfo, Vec<(U256, U256)>);
        assert_eq!(state_root(Vec::<Entry>::new()), EMPTY_ROOT_HASH);
        assert_eq!(storage_root([(U256::from(1), U256::ZERO)]), EMPTY_ROOT_HASH);
    }

    /// A one-account trie is a single leaf node: its root is keccak256 of that node.
    #[test]
    fn single_account_root_is_hash_of_its_leaf() {
        let address = Address::from(hex!("a94f5374fce5edbc8e2a8697c15331677e6ebf0b"));
        let info = AccountInfo::with_balance(U256::from(1_000_000_000_000_000_000u128));
        let root = state_root([(address, info, Vec::<(U256, U256)>::new())]);
        // keccak(rlp([hex-prefix(path), rlp(account)])), built by hand.
        let leaf_account = alloy_rlp::encode(info.to_trie_account_no_storage());
        let key = keccak256(address);
        let mut path = vec![0x20];
        path.extend_from_slice(key.as_slice());
        let mut payload = Vec::new();
        alloy_rlp::Encodable::encode(&path.as_slice(), &mut payload);
        alloy_rlp::Encodable::encode(&leaf_account.as_slice(), &mut payload);
        let mut node = Vec::new();
        alloy_rlp::Header {
            list: true,
            payload_length: payload.len(),
        }
        .encode(&mut node);
        node.extend_from_slice(&payload);
        assert_eq!(root, keccak256(&node));
    }

    #[test]
    fn storage_root_ignores_order() {
        let a = storage_root([
            (U256::from(1), U256::from(2)),
            (U256::from(3), U256::from(4)),
        ]);
        let b = storage_root([
            (U256::from(3), U256::from(4)),
            (U256::from(1), U256::from(2)),
        ]);
        assert_eq!(a, b);
        assert_ne!(a, EMPTY_ROOT_HASH);
    }
}
