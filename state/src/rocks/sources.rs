//! The trie's [`NodeSource`] and [`LeafSource`] over RocksDB column families, for
//! the account trie (no owner) or one account's storage trie (owner = hashed
//! address, prefixing every key).

use super::{db_err, RocksStore};
use crate::{
    trie::{decode_node, LeafSource, NodeSource},
    StateError,
};
use alloy_primitives::B256;
use alloy_trie::{BranchNodeCompact, Nibbles};
use rocksdb::{ColumnFamily, DBRawIterator};
use std::cell::RefCell;

/// Stored branch nodes of one trie.
/// One column family of one trie (an owner prefixes every key of a storage
/// trie), read through a single iterator: a trie walk visits keys in
/// ascending order, and reusing the iterator saves creating one per lookup.
struct TrieColumn<'a> {
    store: &'a RocksStore,
    cf: &'a ColumnFamily,
    owner: Option<B256>,
    iter: RefCell<Option<DBRawIterator<'a>>>,
}

impl<'a> TrieColumn<'a> {
    fn new(store: &'a RocksStore, cf: &str, owner: Option<B256>) -> Result<Self, StateError> {
        Ok(Self {
            store,
            cf: store.cf(cf)?,
            owner,
            iter: RefCell::new(None),
        })
    }

    fn owner_len(&self) -> usize {
        if self.owner.is_some() {
            32
        } else {
            0
        }
    }
}

/// Stored branch nodes of one trie.
pub(crate) struct DbNodes<'a>(TrieColumn<'a>);

impl<'a> DbNodes<'a> {
    pub(crate) fn new(
        store: &'a RocksStore,
        cf: &str,
        owner: Option<B256>,
    ) -> Result<Self, StateError> {
        TrieColumn::new(store, cf, owner).map(Self)
    }
}

impl NodeSource for DbNodes<'_> {
    fn node(&self, path: &Nibbles) -> Result<Option<BranchNodeCompact>, StateError> {
        let key = super::schema::node_key(self.0.owner.as_ref(), path);
        match self
            .0
            .store
            .db()
            .get_pinned_cf(self.0.cf, key)
            .map_err(db_err)?
        {
            Some(v) => decode_node(&v).map(Some),
            None => Ok(None),
        }
    }

    fn first_below(
        &self,
        path: &Nibbles,
    ) -> Result<Option<(Nibbles, BranchNodeCompact)>, StateError> {
        let prefix = super::schema::node_key(self.0.owner.as_ref(), path);
        let mut slot = self.0.iter.borrow_mut();
        let it = slot.get_or_insert_with(|| self.0.store.db().raw_iterator_cf(self.0.cf));
        it.seek(&prefix);
        // Skip the node at exactly `path`, if any.
        if it.key().is_some_and(|k| k == prefix.as_slice()) {
            it.next();
        }
        let found = match it.item() {
            Some((key, value)) if key.starts_with(&prefix) => {
                let nibbles = &key[self.0.owner_len()..];
                if nibbles.len() > 64 || nibbles.iter().any(|n| *n > 15) {
                    return Err(StateError::Backend("corrupt trie node key".into()));
                }
                Some((Nibbles::from_nibbles(nibbles), decode_node(value)?))
            }
            _ => None,
        };
        it.status().map_err(db_err)?;
        Ok(found)
    }
}

/// Hashed leaves of one trie.
pub(crate) struct DbLeaves<'a>(TrieColumn<'a>);

impl<'a> DbLeaves<'a> {
    pub(crate) fn new(
        store: &'a RocksStore,
        cf: &str,
        owner: Option<B256>,
    ) -> Result<Self, StateError> {
        TrieColumn::new(store, cf, owner).map(Self)
    }
}

impl LeafSource for DbLeaves<'_> {
    fn leaves_from(
        &self,
        from: &B256,
        f: &mut dyn FnMut(&B256, &[u8]) -> bool,
    ) -> Result<(), StateError> {
        let mut start = Vec::with_capacity(64);
        if let Some(owner) = &self.0.owner {
            start.extend_from_slice(owner.as_slice());
        }
        let skip = start.len();
        start.extend_from_slice(from.as_slice());
        let mut slot = self.0.iter.borrow_mut();
        let it = slot.get_or_insert_with(|| self.0.store.db().raw_iterator_cf(self.0.cf));
        it.seek(&start);
        while let Some((key, value)) = it.item() {
            if key.len() != skip + 32 || !key.starts_with(&start[..skip]) {
                break;
            }
            if !f(&B256::from_slice(&key[skip..]), value) {
                break;
            }
            it.next();
        }
        it.status().map_err(db_err)
    }
}
