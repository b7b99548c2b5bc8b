//! The on-disk layout of PEL's RocksDB store: column families, keys and values.
//!
//! All integers are big-endian so keys sort numerically. Addresses are 20 bytes,
//! hashes and slots 32. "pre" values are what a key held *before* the block that
//! changed it: an account as [`encode_account`] or empty when it did not exist, a
//! slot as 32 bytes.
//!
//! | column family     | key                                   | value                              |
//! |-------------------|---------------------------------------|------------------------------------|
//! | `meta`            | name (see `META_*`)                   | per key, below                     |
//! | `accounts`        | address                               | nonce u64, balance, code hash (72) |
//! | `storage`         | address, slot                         | value (32)                         |
//! | `code`            | code hash                             | bytecode                           |
//! | `hashed_accounts` | keccak(address)                       | RLP trie account (the trie leaf)   |
//! | `hashed_storage`  | keccak(address), keccak(slot)         | RLP value (the trie leaf)          |
//! | `account_trie`    | nibble path, one byte per nibble      | branch node ([`crate::trie::encode_node`]) |
//! | `storage_trie`    | keccak(address), nibble path          | branch node                        |
//! | `headers`         | block number u64                      | RLP header                         |
//! | `bodies`          | block number                          | encoded body (opaque to this crate) |
//! | `receipts`        | block number                          | encoded receipts (opaque)          |
//! | `canonical`       | block number                          | block hash                         |
//! | `block_numbers`   | block hash                            | block number                       |
//! | `tx_lookup`       | transaction hash                      | block number u64, index u32        |
//! | `change_sets`     | number, 0, address / number, 1, address, slot | pre value                  |
//! | `account_history` | address, number                       | pre value of the account           |
//! | `storage_history` | address, slot, number                 | pre value of the slot              |
//!
//! `meta` holds `schema_version` (u32), `genesis_hash` (32), `chain_config`
//! (opaque bytes chosen by the node), `head` (number u64, hash, state root) and
//! `history_from` (u64: the oldest block whose state can still be read).
//!
//! Every block is one write batch: state, hashed state, trie nodes, history, block
//! data, indices and `head` together.

use crate::{AccountInfo, StateError};
use alloy_primitives::{Address, B256, U256};

/// Version of this layout; a data dir with another version is refused, except
/// [`UPGRADABLE_SCHEMA_VERSION`].
///
/// Version 2: a stored branch node may carry the hash of a single-leaf child
/// (a `hash_mask` bit outside `tree_mask`, see [`crate::trie`]). A version-1
/// build would take such a hash for a branch's and reuse it where the leaf
/// moves, so a store written by this build must be refused by it.
pub const SCHEMA_VERSION: u32 = 2;

/// A version this build opens and marks as [`SCHEMA_VERSION`]: version 1
/// nodes carry branch hashes only, which version 2 reads the same way.
pub const UPGRADABLE_SCHEMA_VERSION: u32 = 1;

/// Column family names, in creation order.
pub const COLUMN_FAMILIES: &[&str] = &[
    CF_META,
    CF_ACCOUNTS,
    CF_STORAGE,
    CF_CODE,
    CF_HASHED_ACCOUNTS,
    CF_HASHED_STORAGE,
    CF_ACCOUNT_TRIE,
    CF_STORAGE_TRIE,
    CF_HEADERS,
    CF_BODIES,
    CF_RECEIPTS,
    CF_CANONICAL,
    CF_BLOCK_NUMBERS,
    CF_TX_LOOKUP,
    CF_CHANGE_SETS,
    CF_ACCOUNT_HISTORY,
    CF_STORAGE_HISTORY,
];

pub(crate) const CF_META: &str = "meta";
pub(crate) const CF_ACCOUNTS: &str = "accounts";
pub(crate) const CF_STORAGE: &str = "storage";
pub(crate) const CF_CODE: &str = "code";
pub(crate) const CF_HASHED_ACCOUNTS: &str = "hashed_accounts";
pub(crate) const CF_HASHED_STORAGE: &str = "hashed_storage";
pub(crate) const CF_ACCOUNT_TRIE: &str = "account_trie";
pub(crate) const CF_STORAGE_TRIE: &str = "storage_trie";
pub(crate) const CF_HEADERS: &str = "headers";
pub(crate) const CF_BODIES: &str = "bodies";
pub(crate) const CF_RECEIPTS: &str = "receipts";
pub(crate) const CF_CANONICAL: &str = "canonical";
pub(crate) const CF_BLOCK_NUMBERS: &str = "block_numbers";
pub(crate) const CF_TX_LOOKUP: &str = "tx_lookup";
pub(crate) const CF_CHANGE_SETS: &str = "change_sets";
pub(crate) const CF_ACCOUNT_HISTORY: &str = "account_history";
pub(crate) const CF_STORAGE_HISTORY: &str = "storage_history";

pub(crate) const META_SCHEMA_VERSION: &[u8] = b"schema_version";
pub(crate) const META_GENESIS_HASH: &[u8] = b"genesis_hash";
pub(crate) const META_CHAIN_CONFIG: &[u8] = b"chain_config";
pub(crate) const META_HEAD: &[u8] = b"head";
pub(crate) const META_HISTORY_FROM: &[u8] = b"history_from";

fn corrupt(what: &str) -> StateError {
    StateError::Backend(format!("corrupt data dir: bad {what} record"))
}

/// Plain account value: nonce (8), balance (32), code hash (32).
pub fn encode_account(info: &AccountInfo) -> [u8; 72] {
    let mut out = [0u8; 72];
    out[..8].copy_from_slice(&info.nonce.to_be_bytes());
    out[8..40].copy_from_slice(&info.balance.to_be_bytes::<32>());
    out[40..].copy_from_slice(info.code_hash.as_slice());
    out
}

/// Decodes [`encode_account`].
pub fn decode_account(bytes: &[u8]) -> Result<AccountInfo, StateError> {
    if bytes.len() != 72 {
        return Err(corrupt("account"));
    }
    let mut nonce = [0u8; 8];
    nonce.copy_from_slice(&bytes[..8]);
    Ok(AccountInfo {
        nonce: u64::from_be_bytes(nonce),
        balance: U256::from_be_slice(&bytes[8..40]),
        code_hash: B256::from_slice(&bytes[40..]),
    })
}

/// A pre-value of an account: empty when it did not exist.
pub fn encode_pre_account(info: Option<&AccountInfo>) -> Vec<u8> {
    info.map(|i| encode_account(i).to_vec()).unwrap_or_default()
}

/// Decodes [`encode_pre_account`].
pub fn decode_pre_account(bytes: &[u8]) -> Result<Option<AccountInfo>, StateError> {
    if bytes.is_empty() {
        Ok(None)
    } else {
        decode_account(bytes).map(Some)
    }
}

/// A 32-byte slot value.
pub fn decode_word(bytes: &[u8]) -> Result<U256, StateError> {
    if bytes.len() != 32 {
        return Err(corrupt("storage value"));
    }
    Ok(U256::from_be_slice(bytes))
}

/// Decodes a big-endian u64.
pub fn decode_u64(bytes: &[u8]) -> Result<u64, StateError> {
    let arr: [u8; 8] = bytes.try_into().map_err(|_| corrupt("number"))?;
    Ok(u64::from_be_bytes(arr))
}

/// Key of a plain storage slot.
pub fn storage_key(address: &Address, slot: &U256) -> [u8; 52] {
    let mut out = [0u8; 52];
    out[..20].copy_from_slice(address.as_slice());
    out[20..].copy_from_slice(&slot.to_be_bytes::<32>());
    out
}

/// Key of a block's change to an account.
pub fn account_change_key(number: u64, address: &Address) -> Vec<u8> {
    let mut out = Vec::with_capacity(29);
    out.extend_from_slice(&number.to_be_bytes());
    out.push(0);
    out.extend_from_slice(address.as_slice());
    out
}

/// Key of a block's change to a slot.
pub fn storage_change_key(number: u64, address: &Address, slot: &U256) -> Vec<u8> {
    let mut out = Vec::with_capacity(61);
    out.extend_from_slice(&number.to_be_bytes());
    out.push(1);
    out.extend_from_slice(&storage_key(address, slot));
    out
}

/// Key of an account's history entry for block `number`.
pub fn account_history_key(address: &Address, number: u64) -> [u8; 28] {
    let mut out = [0u8; 28];
    out[..20].copy_from_slice(address.as_slice());
    out[20..].copy_from_slice(&number.to_be_bytes());
    out
}

/// Key of a slot's history entry for block `number`.
pub fn storage_history_key(address: &Address, slot: &U256, number: u64) -> [u8; 60] {
    let mut out = [0u8; 60];
    out[..52].copy_from_slice(&storage_key(address, slot));
    out[52..].copy_from_slice(&number.to_be_bytes());
    out
}

/// Key of a stored trie node: an optional 32-byte owner (the hashed address of a
/// storage trie) followed by one byte per nibble.
pub fn node_key(owner: Option<&B256>, path: &alloy_trie::Nibbles) -> Vec<u8> {
    let mut out = Vec::with_capacity(32 + path.len());
    if let Some(owner) = owner {
        out.extend_from_slice(owner.as_slice());
    }
    out.extend(path.iter());
    out
}

/// The head record: number, hash, state root.
pub fn encode_head(number: u64, hash: &B256, root: &B256) -> [u8; 72] {
    let mut out = [0u8; 72];
    out[..8].copy_from_slice(&number.to_be_bytes());
    out[8..40].copy_from_slice(hash.as_slice());
    out[40..].copy_from_slice(root.as_slice());
    out
}

/// Decodes [`encode_head`].
pub fn decode_head(bytes: &[u8]) -> Result<(u64, B256, B256), StateError> {
    if bytes.len() != 72 {
        return Err(corrupt("head"));
    }
    Ok((
        decode_u64(&bytes[..8])?,
        B256::from_slice(&bytes[8..40]),
        B256::from_slice(&bytes[40..]),
    ))
}

/// The smallest key greater than every key starting with `prefix` (for range
/// deletes and bounded scans); `None` when `prefix` is all 0xff.
pub fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_round_trips_and_bad_lengths_are_errors() {
        let info = AccountInfo {
            balance: U256::from(12345),
            nonce: 7,
            code_hash: B256::repeat_byte(9),
        };
        assert_eq!(decode_account(&encode_account(&info)).unwrap(), info);
        assert!(decode_account(&[1, 2, 3]).is_err());
        assert_eq!(decode_pre_account(&[]).unwrap(), None);
        assert!(decode_head(&[0; 5]).is_err());
    }

    #[test]
    fn prefix_end_carries() {
        assert_eq!(prefix_end(&[1, 2]), Some(vec![1, 3]));
        assert_eq!(prefix_end(&[1, 0xff]), Some(vec![2]));
        assert_eq!(prefix_end(&[0xff]), None);
    }
}
