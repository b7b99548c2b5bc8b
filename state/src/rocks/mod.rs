//! The RocksDB backend: durable plain state, hashed state with its incrementally
//! maintained Merkle-Patricia trie, block data, indices and per-block history.
//!
//! Invariants:
//! - one block = one atomic [`WriteBatch`] (state, trie nodes, history, block data,
//!   indices and the `head` record), so a crash leaves the store at the last whole
//!   block;
//! - the stored trie nodes always describe exactly the hashed state, and the
//!   `head` record's state root is the root of that trie ([`RocksStore::open`]
//!   checks it);
//! - history: for every block `N` and every account or slot it changed, the value
//!   *before* `N` is kept (until pruned), which makes the state after any kept
//!   block readable ([`RocksStore::at_block`]). Reading an old value costs one
//!   seek in the history index plus one point read; each block stores one entry
//!   per changed account and slot (about 100 bytes each), twice (by block for
//!   pruning, by key for reads).
//!
//! Layout: [`schema`]. Writes are serialised by the caller (one block at a time);
//! reads may run concurrently with a commit and see either the old or the new
//! block for each key.

pub mod history;
pub mod schema;
mod sources;

use crate::{
    trie::{self, LeafChanges, TrieUpdate},
    AccountDiff, AccountInfo, StateDiff, StateError, StateReader,
};
use alloy_primitives::{keccak256, map::HashSet, Address, Bytes, B256, U256};
use alloy_trie::{Nibbles, TrieAccount, EMPTY_ROOT_HASH};
pub use history::HistoricalState;
use rayon::prelude::*;
use rocksdb::{ColumnFamily, ColumnFamilyDescriptor, Options, WriteBatch, DB};
use schema::*;
use sources::{DbLeaves, DbNodes};
use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    sync::RwLock,
};

/// The chain head as stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Head {
    /// Block number.
    pub number: u64,
    /// Block hash.
    pub hash: B256,
    /// State root after the block.
    pub state_root: B256,
}

/// Everything about a block other than its state changes, already encoded by the
/// node (this crate does not interpret headers, bodies or receipts).
#[derive(Clone, Debug, Default)]
pub struct BlockRecord {
    /// Block number.
    pub number: u64,
    /// Block hash.
    pub hash: B256,
    /// RLP of the header.
    pub header: Vec<u8>,
    /// Encoded body (transactions, ommers, withdrawals).
    pub body: Vec<u8>,
    /// Encoded receipts.
    pub receipts: Vec<u8>,
    /// Hashes of the block's transactions, in order.
    pub tx_hashes: Vec<B256>,
}

/// A block's state changes staged for commit, with the state root they produce.
pub struct PendingState {
    batch: WriteBatch,
    number: u64,
    root: B256,
}

impl PendingState {
    /// The state root after the block.
    pub fn root(&self) -> B256 {
        self.root
    }
}

/// Options chosen when opening a store.
#[derive(Clone, Copy, Debug, Default)]
pub struct StoreOptions {
    /// Keep history for only the last `K` blocks (`None`: keep all).
    pub history_limit: Option<u64>,
}

/// A PEL data dir.
pub struct RocksStore {
    db: DB,
    path: PathBuf,
    head: RwLock<Option<Head>>,
    history_from: RwLock<u64>,
    options: StoreOptions,
}

impl std::fmt::Debug for RocksStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RocksStore")
            .field("path", &self.path)
            .finish()
    }
}

fn db_err(e: rocksdb::Error) -> StateError {
    StateError::Backend(e.to_string())
}

/// The block cache shared by all column families.
const BLOCK_CACHE_BYTES: usize = 256 << 20;

/// The memtable budget of all column families together.
const DB_WRITE_BUFFER_BYTES: usize = 128 << 20;

impl RocksStore {
    /// Creates a new data dir holding `genesis` (its state and block record) and
    /// the node's opaque `chain_config`. Refuses a dir that already holds data.
    pub fn create(
        path: &Path,
        chain_config: &[u8],
        genesis_diff: &StateDiff,
        genesis: &BlockRecord,
        expected_root: Option<B256>,
        options: StoreOptions,
    ) -> Result<Self, StateError> {
        if path.exists()
            && std::fs::read_dir(path)
                .map(|mut d| d.next().is_some())
                .unwrap_or(true)
        {
            return Err(StateError::Backend(format!(
                "{} already exists and is not empty; refusing to overwrite it",
                path.display()
            )));
        }
        let store = Self::open_db(path, true, options)?;
        let pending = store.prepare(genesis_diff, 0)?;
        if let Some(expected) = expected_root {
            if expected != pending.root {
                drop(store);
                let _ = std::fs::remove_dir_all(path);
                return Err(StateError::Backend(format!(
                    "genesis state root {} differs from the header's {expected}",
                    pending.root
                )));
            }
        }
        let mut pending = pending;
        let meta = store.cf(CF_META)?;
        pending
            .batch
            .put_cf(meta, META_SCHEMA_VERSION, SCHEMA_VERSION.to_be_bytes());
        pending
            .batch
            .put_cf(meta, META_GENESIS_HASH, genesis.hash.as_slice());
        pending.batch.put_cf(meta, META_CHAIN_CONFIG, chain_config);
        pending
            .batch
            .put_cf(meta, META_HISTORY_FROM, 0u64.to_be_bytes());
        store.commit(pending, genesis)?;
        Ok(store)
    }

    /// Opens an existing data dir, checking its schema version and that the head's
    /// state root equals the stored trie's root.
    pub fn open(path: &Path, options: StoreOptions) -> Result<Self, StateError> {
        if !path.join("CURRENT").exists() {
            return Err(StateError::Backend(format!(
                "{} is not a PEL data dir (no database found); create one with `pel init`",
                path.display()
            )));
        }
        let store = Self::open_db(path, false, options)?;
        let meta = store.cf(CF_META)?;
        let version = store
            .db
            .get_cf(meta, META_SCHEMA_VERSION)
            .map_err(db_err)?
            .ok_or_else(|| {
                StateError::Backend(format!(
                    "{} has no schema version: not a PEL data dir or its creation was interrupted",
                    path.display()
                ))
            })?;
        let version = u32::from_be_bytes(
            version
                .as_slice()
                .try_into()
                .map_err(|_| StateError::Backend("corrupt schema version".into()))?,
        );
        if version != SCHEMA_VERSION && version != UPGRADABLE_SCHEMA_VERSION {
            return Err(StateError::Backend(format!(
                "{} has schema version {version}, this build reads version {SCHEMA_VERSION}",
                path.display()
            )));
        }
        let head = store
            .db
            .get_cf(meta, META_HEAD)
            .map_err(db_err)?
            .ok_or_else(|| StateError::Backend("data dir has no head block".into()))?;
        let (number, hash, state_root) = decode_head(&head)?;
        let history_from = match store.db.get_cf(meta, META_HISTORY_FROM).map_err(db_err)? {
            Some(v) => decode_u64(&v)?,
            None => 0,
        };
        *store.history_from.write().map_err(poisoned)? = history_from;
        *store.head.write().map_err(poisoned)? = Some(Head {
            number,
            hash,
            state_root,
        });
        let trie_root = store.stored_trie_root()?;
        if trie_root != state_root {
            return Err(StateError::Backend(format!(
                "data dir is inconsistent: head block {number} has state root {state_root} but the stored trie has {trie_root}"
            )));
        }
        if version == UPGRADABLE_SCHEMA_VERSION {
            // Marked once every check passed, before this build writes a block.
            store
                .db
                .put_cf(meta, META_SCHEMA_VERSION, SCHEMA_VERSION.to_be_bytes())
                .map_err(db_err)?;
        }
        Ok(store)
    }

    fn open_db(path: &Path, create: bool, options: StoreOptions) -> Result<Self, StateError> {
        let mut opts = Options::default();
        opts.create_if_missing(create);
        opts.create_missing_column_families(create);
        opts.set_compression_type(rocksdb::DBCompressionType::Lz4);
        opts.increase_parallelism(2);
        opts.set_paranoid_checks(true);
        // Bound the memtables of all column families together (each would
        // otherwise grow to 64 MiB, twice, on its own): memory stays flat
        // under sustained load (see the soak test).
        opts.set_db_write_buffer_size(DB_WRITE_BUFFER_BYTES);
        // One block cache for every column family; bloom filters make point
        // reads of absent keys (new accounts, unset slots) skip the disk.
        let cache = rocksdb::Cache::new_lru_cache(BLOCK_CACHE_BYTES);
        let cfs = COLUMN_FAMILIES.iter().map(|name| {
            let mut table = rocksdb::BlockBasedOptions::default();
            table.set_block_cache(&cache);
            table.set_bloom_filter(10.0, false);
            table.set_cache_index_and_filter_blocks(true);
            let mut o = Options::default();
            o.set_compression_type(rocksdb::DBCompressionType::Lz4);
            o.set_block_based_table_factory(&table);
            ColumnFamilyDescriptor::new(*name, o)
        });
        let db = DB::open_cf_descriptors(&opts, path, cfs).map_err(|e| {
            StateError::Backend(format!("cannot open data dir {}: {e}", path.display()))
        })?;
        Ok(Self {
            db,
            path: path.to_path_buf(),
            head: RwLock::new(None),
            history_from: RwLock::new(0),
            options,
        })
    }

    pub(crate) fn cf(&self, name: &str) -> Result<&ColumnFamily, StateError> {
        self.db
            .cf_handle(name)
            .ok_or_else(|| StateError::Backend(format!("data dir lacks column family {name}")))
    }

    pub(crate) fn db(&self) -> &DB {
        &self.db
    }

    /// Where the store lives.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The last committed block.
    pub fn head(&self) -> Result<Head, StateError> {
        self.head
            .read()
            .map_err(poisoned)?
            .ok_or_else(|| StateError::Backend("store has no head".into()))
    }

    /// Hash of the genesis block this data dir was created with.
    pub fn genesis_hash(&self) -> Result<B256, StateError> {
        let v = self
            .get(CF_META, META_GENESIS_HASH)?
            .ok_or_else(|| StateError::Backend("no genesis hash".into()))?;
        if v.len() != 32 {
            return Err(StateError::Backend("corrupt genesis hash".into()));
        }
        Ok(B256::from_slice(&v))
    }

    /// The node's chain configuration as it was stored at creation.
    pub fn chain_config(&self) -> Result<Vec<u8>, StateError> {
        self.get(CF_META, META_CHAIN_CONFIG)?
            .ok_or_else(|| StateError::Backend("no chain config".into()))
    }

    /// Oldest block whose state can still be read (after pruning).
    pub fn history_from(&self) -> Result<u64, StateError> {
        Ok(*self.history_from.read().map_err(poisoned)?)
    }

    pub(crate) fn get(&self, cf: &str, key: &[u8]) -> Result<Option<Vec<u8>>, StateError> {
        self.db.get_cf(self.cf(cf)?, key).map_err(db_err)
    }

    /// RLP header of block `number`.
    pub fn header(&self, number: u64) -> Result<Option<Vec<u8>>, StateError> {
        self.get(CF_HEADERS, &number.to_be_bytes())
    }

    /// Encoded body of block `number`.
    pub fn body(&self, number: u64) -> Result<Option<Vec<u8>>, StateError> {
        self.get(CF_BODIES, &number.to_be_bytes())
    }

    /// Encoded receipts of block `number`.
    pub fn receipts(&self, number: u64) -> Result<Option<Vec<u8>>, StateError> {
        self.get(CF_RECEIPTS, &number.to_be_bytes())
    }

    /// Number of the block with this hash.
    pub fn block_number(&self, hash: &B256) -> Result<Option<u64>, StateError> {
        self.get(CF_BLOCK_NUMBERS, hash.as_slice())?
            .map(|v| decode_u64(&v))
            .transpose()
    }

    /// Block number and index of a transaction.
    pub fn transaction_location(&self, hash: &B256) -> Result<Option<(u64, u32)>, StateError> {
        let Some(v) = self.get(CF_TX_LOOKUP, hash.as_slice())? else {
            return Ok(None);
        };
        if v.len() != 12 {
            return Err(StateError::Backend("corrupt transaction index".into()));
        }
        let index = u32::from_be_bytes([v[8], v[9], v[10], v[11]]);
        Ok(Some((decode_u64(&v[..8])?, index)))
    }

    /// The state after block `number` (the head or any unpruned earlier block).
    pub fn at_block(&self, number: u64) -> Result<HistoricalState<'_>, StateError> {
        HistoricalState::new(self, number)
    }

    /// Stages a block's state changes: plain and hashed state, trie nodes and
    /// history, and computes the new state root. Nothing is written until
    /// [`RocksStore::commit`].
    pub fn prepare(&self, diff: &StateDiff, number: u64) -> Result<PendingState, StateError> {
        self.stage(diff, number, true)
    }

    /// [`RocksStore::prepare`], optionally without recording history (unwinding).
    fn stage(
        &self,
        diff: &StateDiff,
        number: u64,
        history: bool,
    ) -> Result<PendingState, StateError> {
        let mut batch = WriteBatch::default();
        let (accounts, storage) = (self.cf(CF_ACCOUNTS)?, self.cf(CF_STORAGE)?);
        let (hashed_accounts, hashed_storage) =
            (self.cf(CF_HASHED_ACCOUNTS)?, self.cf(CF_HASHED_STORAGE)?);
        let (account_trie, storage_trie) = (self.cf(CF_ACCOUNT_TRIE)?, self.cf(CF_STORAGE_TRIE)?);
        let (changes, account_history, storage_history) = (
            self.cf(CF_CHANGE_SETS)?,
            self.cf(CF_ACCOUNT_HISTORY)?,
            self.cf(CF_STORAGE_HISTORY)?,
        );
        let code = self.cf(CF_CODE)?;
        for (hash, bytes) in &diff.codes {
            batch.put_cf(code, hash.as_slice(), bytes);
        }
        let mut account_leaves = LeafChanges::new();
        // Hashed slots, written at the end in key order: RocksDB's memtable
        // inserts ascending keys much faster than random ones.
        let mut hashed_slots: Vec<([u8; 64], Option<Vec<u8>>)> = Vec::new();
        // Changed keys that are stored leaves already (see `trie::update_root`).
        let mut replaced_accounts: HashSet<B256> = HashSet::default();
        // Each account's reads, history and storage root apart from the
        // others (on all cores for big blocks), then written in account order.
        let entries: Vec<(&Address, &AccountDiff)> = diff.accounts.iter().collect();
        let stage_one = |(address, change): &(&Address, &AccountDiff)| {
            self.stage_account(address, change, history)
        };
        let staged: Vec<StagedAccount> = if entries.len() >= PARALLEL_STAGE_ACCOUNTS {
            entries
                .par_iter()
                .with_min_len(64)
                .map(stage_one)
                .collect::<Result<_, _>>()?
        } else {
            entries.iter().map(stage_one).collect::<Result<_, _>>()?
        };
        for (address, staged) in entries.iter().map(|(a, _)| *a).zip(staged) {
            let hashed = staged.hashed;
            if staged.existed {
                replaced_accounts.insert(hashed);
            }
            if let Some(pre_bytes) = &staged.account_history {
                batch.put_cf(changes, account_change_key(number, address), pre_bytes);
                batch.put_cf(
                    account_history,
                    account_history_key(address, number),
                    pre_bytes,
                );
            }
            for (slot, pre_bytes) in &staged.slot_history {
                batch.put_cf(
                    changes,
                    storage_change_key(number, address, slot),
                    pre_bytes,
                );
                batch.put_cf(
                    storage_history,
                    storage_history_key(address, slot, number),
                    pre_bytes,
                );
            }
            if staged.wipe {
                delete_prefix(&mut batch, storage, address.as_slice());
                delete_prefix(&mut batch, hashed_storage, hashed.as_slice());
                delete_prefix(&mut batch, storage_trie, hashed.as_slice());
            }
            let Some(post) = staged.post else {
                batch.delete_cf(accounts, address.as_slice());
                account_leaves.insert(hashed, None);
                continue;
            };
            for (key, value) in &post.storage {
                put_or_delete(
                    &mut batch,
                    storage,
                    key,
                    value.as_ref().map(|v| v.as_slice()),
                );
            }
            hashed_slots.extend(post.hashed_slots);
            write_trie_update(
                &mut batch,
                storage_trie,
                Some(&hashed),
                &post.trie,
                staged.wipe,
            );
            batch.put_cf(accounts, address.as_slice(), post.account);
            account_leaves.insert(hashed, Some(post.leaf));
        }
        // After every wipe's range deletion above, in key order.
        hashed_slots.sort_unstable_by_key(|(key, _)| *key);
        for (key, leaf) in &hashed_slots {
            put_or_delete(&mut batch, hashed_storage, key, leaf.as_deref());
        }
        for (hashed, leaf) in &account_leaves {
            put_or_delete(
                &mut batch,
                hashed_accounts,
                hashed.as_slice(),
                leaf.as_deref(),
            );
        }
        let previous_root = match *self.head.read().map_err(poisoned)? {
            Some(head) => head.state_root,
            None => EMPTY_ROOT_HASH,
        };
        // Big blocks walk the root's children on all cores, each walk with
        // its own iterators.
        let open = || {
            Ok((
                DbNodes::new(self, CF_ACCOUNT_TRIE, None)?,
                DbLeaves::new(self, CF_HASHED_ACCOUNTS, None)?,
            ))
        };
        let update = trie::update_root_split(
            &open,
            &account_leaves,
            &|k| replaced_accounts.contains(k),
            previous_root,
            trie::SPLIT_MIN_CHANGES,
        )?;
        write_trie_update(&mut batch, account_trie, None, &update, false);
        Ok(PendingState {
            batch,
            number,
            root: update.root,
        })
    }

    /// One account's part of [`RocksStore::stage`]: its pre-block values for
    /// the history, its storage writes and storage root. Reads only, so
    /// accounts are staged in parallel.
    fn stage_account(
        &self,
        address: &Address,
        change: &AccountDiff,
        history: bool,
    ) -> Result<StagedAccount, StateError> {
        let hashed = keccak256(address);
        let pre = self.account(address)?;
        let account_history =
            (history && pre != change.info).then(|| encode_pre_account(pre.as_ref()));
        let wipe = change.info.is_none() || change.storage_cleared;
        // Pre-block values of every slot this block changes.
        let mut pre_slots: BTreeMap<U256, U256> = if wipe {
            self.storage_of(address)?
        } else {
            BTreeMap::new()
        };
        for slot in change.storage.keys() {
            if !pre_slots.contains_key(slot) && !wipe {
                pre_slots.insert(*slot, self.storage(address, slot)?);
            }
        }
        let post = |slot: &U256, pre: U256| -> U256 {
            if change.info.is_none() {
                return U256::ZERO;
            }
            match change.storage.get(slot) {
                Some(v) => *v,
                None if wipe => U256::ZERO,
                None => pre,
            }
        };
        let mut slot_history = Vec::new();
        if history {
            let mut touched: BTreeMap<U256, U256> = pre_slots.clone();
            for slot in change.storage.keys() {
                touched.entry(*slot).or_insert(U256::ZERO);
            }
            for (slot, pre) in &touched {
                if post(slot, *pre) != *pre {
                    slot_history.push((*slot, pre.to_be_bytes::<32>()));
                }
            }
        }
        let mut staged = StagedAccount {
            hashed,
            existed: pre.is_some(),
            account_history,
            slot_history,
            wipe,
            post: None,
        };
        let Some(info) = change.info else {
            return Ok(staged);
        };
        let mut storage = Vec::with_capacity(change.storage.len());
        let mut hashed_slots = Vec::with_capacity(change.storage.len());
        let mut slot_leaves = LeafChanges::new();
        let mut replaced_slots: HashSet<B256> = HashSet::default();
        for (slot, value) in &change.storage {
            let key = storage_key(address, slot);
            let hashed_slot = keccak256(slot.to_be_bytes::<32>());
            let mut hashed_key = [0u8; 64];
            hashed_key[..32].copy_from_slice(hashed.as_slice());
            hashed_key[32..].copy_from_slice(hashed_slot.as_slice());
            if pre_slots.get(slot).is_some_and(|pre| !pre.is_zero()) {
                replaced_slots.insert(hashed_slot);
            }
            if value.is_zero() {
                storage.push((key, None));
                hashed_slots.push((hashed_key, None));
                if !wipe {
                    slot_leaves.insert(hashed_slot, None);
                }
            } else {
                let leaf = alloy_rlp::encode(value);
                storage.push((key, Some(value.to_be_bytes::<32>())));
                hashed_slots.push((hashed_key, Some(leaf.clone())));
                slot_leaves.insert(hashed_slot, Some(leaf));
            }
        }
        let previous_root = if wipe {
            EMPTY_ROOT_HASH
        } else {
            self.storage_root_of(&hashed)?
        };
        let trie = trie::update_root(
            &DbNodes::new(self, CF_STORAGE_TRIE, Some(hashed))?,
            &DbLeaves::new(self, CF_HASHED_STORAGE, Some(hashed))?,
            &slot_leaves,
            &|k| replaced_slots.contains(k),
            wipe,
            previous_root,
        )?;
        let leaf = alloy_rlp::encode(info.to_trie_account(trie.root));
        staged.post = Some(StagedPost {
            account: encode_account(&info),
            storage,
            hashed_slots,
            trie,
            leaf,
        });
        Ok(staged)
    }

    /// Writes a prepared block with its record and makes it the head, in one
    /// atomic batch. The block must follow the current head.
    pub fn commit(&self, pending: PendingState, block: &BlockRecord) -> Result<(), StateError> {
        let mut head = self.head.write().map_err(poisoned)?;
        let expected = head.map_or(0, |h| h.number + 1);
        if pending.number != expected || block.number != expected {
            return Err(StateError::Backend(format!(
                "block {} does not follow the head (expected {expected})",
                block.number
            )));
        }
        let mut batch = pending.batch;
        let number = block.number.to_be_bytes();
        batch.put_cf(self.cf(CF_HEADERS)?, number, &block.header);
        batch.put_cf(self.cf(CF_BODIES)?, number, &block.body);
        batch.put_cf(self.cf(CF_RECEIPTS)?, number, &block.receipts);
        batch.put_cf(self.cf(CF_CANONICAL)?, number, block.hash.as_slice());
        batch.put_cf(self.cf(CF_BLOCK_NUMBERS)?, block.hash.as_slice(), number);
        let lookup = self.cf(CF_TX_LOOKUP)?;
        // In hash order: the memtable inserts ascending keys much faster than
        // random ones, and a devnet block can carry tens of thousands.
        let mut by_hash: Vec<(&B256, u32)> = block.tx_hashes.iter().zip(0u32..).collect();
        by_hash.sort_unstable_by_key(|(hash, _)| *hash);
        for (tx, i) in by_hash {
            let mut v = [0u8; 12];
            v[..8].copy_from_slice(&number);
            v[8..].copy_from_slice(&i.to_be_bytes());
            batch.put_cf(lookup, tx.as_slice(), v);
        }
        let mut history_from = self.history_from.write().map_err(poisoned)?;
        let mut new_history_from = *history_from;
        if let Some(limit) = self.options.history_limit {
            while new_history_from.saturating_add(limit) < block.number {
                self.prune_block(&mut batch, new_history_from)?;
                new_history_from += 1;
            }
        }
        let meta = self.cf(CF_META)?;
        batch.put_cf(meta, META_HISTORY_FROM, new_history_from.to_be_bytes());
        batch.put_cf(
            meta,
            META_HEAD,
            encode_head(block.number, &block.hash, &pending.root),
        );
        self.db.write(batch).map_err(db_err)?;
        *history_from = new_history_from;
        *head = Some(Head {
            number: block.number,
            hash: block.hash,
            state_root: pending.root,
        });
        Ok(())
    }

    /// Removes the head block (for a reorganisation): its state changes are undone
    /// from its change set, its history, block data and indices deleted, and its
    /// parent becomes the head, all in one write batch. `tx_hashes` are the
    /// block's transactions; `parent_root` is the parent's state root, which the
    /// undone state must reproduce. Fails when the block's history was pruned.
    pub fn unwind(&self, tx_hashes: &[B256], parent_root: B256) -> Result<Head, StateError> {
        let head = self.head()?;
        if head.number == 0 {
            return Err(StateError::Backend(
                "cannot unwind the genesis block".into(),
            ));
        }
        let number = head.number;
        if number < self.history_from()? {
            return Err(StateError::Backend(format!(
                "cannot unwind block {number}: its history is pruned"
            )));
        }
        let reverse = self.reverse_diff(number)?;
        let mut pending = self.stage(&reverse, number, false)?;
        if pending.root != parent_root {
            return Err(StateError::Backend(format!(
                "unwinding block {number} gives state root {}, expected the parent's {parent_root}",
                pending.root
            )));
        }
        let parent_hash = self
            .block_hash(number - 1)?
            .ok_or_else(|| StateError::Backend(format!("block {} has no hash", number - 1)))?;
        let batch = &mut pending.batch;
        self.prune_block(batch, number)?;
        let key = number.to_be_bytes();
        for cf in [CF_HEADERS, CF_BODIES, CF_RECEIPTS, CF_CANONICAL] {
            batch.delete_cf(self.cf(cf)?, key);
        }
        batch.delete_cf(self.cf(CF_BLOCK_NUMBERS)?, head.hash.as_slice());
        let lookup = self.cf(CF_TX_LOOKUP)?;
        for tx in tx_hashes {
            batch.delete_cf(lookup, tx.as_slice());
        }
        let new_head = Head {
            number: number - 1,
            hash: parent_hash,
            state_root: parent_root,
        };
        batch.put_cf(
            self.cf(CF_META)?,
            META_HEAD,
            encode_head(new_head.number, &new_head.hash, &new_head.state_root),
        );
        let mut guard = self.head.write().map_err(poisoned)?;
        self.db.write(pending.batch).map_err(db_err)?;
        *guard = Some(new_head);
        Ok(new_head)
    }

    /// The diff that takes the state after block `number` back to before it,
    /// from its change set.
    fn reverse_diff(&self, number: u64) -> Result<StateDiff, StateError> {
        let mut diff = StateDiff::default();
        let mut it = self.db.raw_iterator_cf(self.cf(CF_CHANGE_SETS)?);
        let prefix = number.to_be_bytes();
        it.seek(prefix);
        let mut accounts: BTreeMap<Address, Option<AccountInfo>> = BTreeMap::new();
        let mut slots: Vec<(Address, U256, U256)> = Vec::new();
        while let Some((key, value)) = it.item() {
            if !key.starts_with(&prefix) {
                break;
            }
            match (key.get(8), key.len()) {
                (Some(0), 29) => {
                    accounts.insert(Address::from_slice(&key[9..29]), decode_pre_account(value)?);
                }
                (Some(1), 61) => slots.push((
                    Address::from_slice(&key[9..29]),
                    U256::from_be_slice(&key[29..61]),
                    decode_word(value)?,
                )),
                _ => return Err(StateError::Backend("corrupt change set key".into())),
            }
            it.next();
        }
        it.status().map_err(db_err)?;
        for (address, pre) in accounts {
            diff.accounts.entry(address).or_default().info = pre;
        }
        for (address, slot, pre) in slots {
            if !diff.accounts.contains_key(&address) {
                let info = self.account(&address)?;
                diff.accounts.entry(address).or_default().info = info;
            }
            let entry = diff.accounts.entry(address).or_default();
            if entry.info.is_some() {
                entry.storage.insert(slot, pre);
            }
        }
        Ok(diff)
    }

    /// Adds the deletion of block `number`'s history to `batch`.
    fn prune_block(&self, batch: &mut WriteBatch, number: u64) -> Result<(), StateError> {
        let changes = self.cf(CF_CHANGE_SETS)?;
        let (accounts, slots) = (self.cf(CF_ACCOUNT_HISTORY)?, self.cf(CF_STORAGE_HISTORY)?);
        let prefix = number.to_be_bytes();
        let mut it = self.db.raw_iterator_cf(changes);
        it.seek(prefix);
        while let Some(key) = it.key() {
            if !key.starts_with(&prefix) {
                break;
            }
            match (key.get(8), key.len()) {
                (Some(0), 29) => {
                    let address = Address::from_slice(&key[9..29]);
                    batch.delete_cf(accounts, account_history_key(&address, number));
                }
                (Some(1), 61) => {
                    let address = Address::from_slice(&key[9..29]);
                    let slot = U256::from_be_slice(&key[29..61]);
                    batch.delete_cf(slots, storage_history_key(&address, &slot, number));
                }
                _ => return Err(StateError::Backend("corrupt change set key".into())),
            }
            it.next();
        }
        it.status().map_err(db_err)?;
        delete_prefix(batch, changes, &prefix);
        Ok(())
    }

    /// Every non-zero slot of an account, from the plain state.
    pub fn storage_of(&self, address: &Address) -> Result<BTreeMap<U256, U256>, StateError> {
        let mut out = BTreeMap::new();
        let mut it = self.db.raw_iterator_cf(self.cf(CF_STORAGE)?);
        it.seek(address.as_slice());
        while let Some((key, value)) = it.item() {
            if !key.starts_with(address.as_slice()) || key.len() != 52 {
                break;
            }
            out.insert(U256::from_be_slice(&key[20..]), decode_word(value)?);
            it.next();
        }
        it.status().map_err(db_err)?;
        Ok(out)
    }

    /// Storage root of an account, read from its trie leaf.
    fn storage_root_of(&self, hashed: &B256) -> Result<B256, StateError> {
        match self.get(CF_HASHED_ACCOUNTS, hashed.as_slice())? {
            None => Ok(EMPTY_ROOT_HASH),
            Some(leaf) => {
                let account: TrieAccount = alloy_rlp::Decodable::decode(&mut leaf.as_slice())
                    .map_err(|e| StateError::Backend(format!("corrupt account leaf: {e}")))?;
                Ok(account.storage_root)
            }
        }
    }

    /// The root recorded in the stored account trie (its root node), or recomputed
    /// from the hashed leaves when the trie is too small to have a branch at its root.
    pub fn stored_trie_root(&self) -> Result<B256, StateError> {
        let root_key = node_key(None, &Nibbles::default());
        if let Some(node) = self.get(CF_ACCOUNT_TRIE, &root_key)? {
            if let Some(root) = trie::decode_node(&node)?.root_hash {
                return Ok(root);
            }
        }
        self.hashed_state_root()
    }

    /// The state root recomputed from all hashed leaves, ignoring stored nodes.
    pub fn hashed_state_root(&self) -> Result<B256, StateError> {
        let mut leaves = Vec::new();
        let mut it = self.db.raw_iterator_cf(self.cf(CF_HASHED_ACCOUNTS)?);
        it.seek_to_first();
        while let Some((k, v)) = it.item() {
            if k.len() != 32 {
                return Err(StateError::Backend("corrupt hashed account key".into()));
            }
            leaves.push((B256::from_slice(k), v.to_vec()));
            it.next();
        }
        it.status().map_err(db_err)?;
        Ok(trie::full_root(leaves))
    }

    /// The state root recomputed from the plain state alone (accounts and slots,
    /// hashing everything afresh): the check crash tests and `pel db verify` use.
    pub fn plain_state_root(&self) -> Result<B256, StateError> {
        let mut accounts = Vec::new();
        let mut it = self.db.raw_iterator_cf(self.cf(CF_ACCOUNTS)?);
        it.seek_to_first();
        while let Some((k, v)) = it.item() {
            if k.len() != 20 {
                return Err(StateError::Backend("corrupt account key".into()));
            }
            accounts.push((Address::from_slice(k), decode_account(v)?));
            it.next();
        }
        it.status().map_err(db_err)?;
        let mut full = Vec::with_capacity(accounts.len());
        for (address, info) in accounts {
            full.push((address, info, self.storage_of(&address)?));
        }
        Ok(crate::state_root(full))
    }
}

fn poisoned<T>(_: std::sync::PoisonError<T>) -> StateError {
    StateError::Backend("store lock poisoned by a panicked thread".into())
}

/// Blocks changing at least this many accounts stage them on all cores.
const PARALLEL_STAGE_ACCOUNTS: usize = 256;

/// One account's part of a staged block (see [`RocksStore::stage_account`]).
struct StagedAccount {
    hashed: B256,
    /// The account existed before the block (its leaf is replaced).
    existed: bool,
    /// Its pre-block encoding for the change set and history, when changed.
    account_history: Option<Vec<u8>>,
    /// Pre-block values of the slots it changed, for the same.
    slot_history: Vec<(U256, [u8; 32])>,
    /// Its storage is wiped (destroyed or cleared) before the writes.
    wipe: bool,
    /// What it holds after the block; `None`: it was destroyed.
    post: Option<StagedPost>,
}

/// An account's writes after the block.
struct StagedPost {
    account: [u8; 72],
    /// Plain storage: value or deletion, by storage key.
    storage: Vec<([u8; 52], Option<[u8; 32]>)>,
    /// Hashed storage leaves (deletion: `None`).
    hashed_slots: Vec<([u8; 64], Option<Vec<u8>>)>,
    /// Its storage trie after the block.
    trie: TrieUpdate,
    /// Its account-trie leaf.
    leaf: Vec<u8>,
}

/// Writes `value` under `key`, or deletes `key` when there is none.
fn put_or_delete(batch: &mut WriteBatch, cf: &ColumnFamily, key: &[u8], value: Option<&[u8]>) {
    match value {
        Some(value) => batch.put_cf(cf, key, value),
        None => batch.delete_cf(cf, key),
    }
}

fn delete_prefix(batch: &mut WriteBatch, cf: &ColumnFamily, prefix: &[u8]) {
    match prefix_end(prefix) {
        Some(end) => batch.delete_range_cf(cf, prefix, end.as_slice()),
        None => batch.delete_range_cf(cf, prefix, [0xffu8; 80].as_slice()),
    }
}

fn write_trie_update(
    batch: &mut WriteBatch,
    cf: &ColumnFamily,
    owner: Option<&B256>,
    update: &TrieUpdate,
    wiped: bool,
) {
    // Deletions and writes touch different paths; both go in key order, which
    // RocksDB's memtable inserts much faster than random order.
    let mut writes: Vec<(Vec<u8>, Option<Vec<u8>>)> = update
        .updated
        .iter()
        .map(|(path, node)| (node_key(owner, path), Some(trie::encode_node(node))))
        .collect();
    if !wiped {
        writes.extend(
            update
                .removed
                .iter()
                .filter(|path| !update.updated.contains_key(*path))
                .map(|path| (node_key(owner, path), None)),
        );
    }
    writes.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    for (key, node) in &writes {
        put_or_delete(batch, cf, key, node.as_deref());
    }
}

impl StateReader for RocksStore {
    fn account(&self, address: &Address) -> Result<Option<AccountInfo>, StateError> {
        let cf = self.cf(CF_ACCOUNTS)?;
        match self
            .db
            .get_pinned_cf(cf, address.as_slice())
            .map_err(db_err)?
        {
            Some(v) => decode_account(&v).map(Some),
            None => Ok(None),
        }
    }

    fn code(&self, code_hash: &B256) -> Result<Option<Bytes>, StateError> {
        Ok(self.get(CF_CODE, code_hash.as_slice())?.map(Bytes::from))
    }

    fn storage(&self, address: &Address, slot: &U256) -> Result<U256, StateError> {
        let cf = self.cf(CF_STORAGE)?;
        match self
            .db
            .get_pinned_cf(cf, storage_key(address, slot))
            .map_err(db_err)?
        {
            Some(v) => decode_word(&v),
            None => Ok(U256::ZERO),
        }
    }

    fn block_hash(&self, number: u64) -> Result<Option<B256>, StateError> {
        Ok(self
            .get(CF_CANONICAL, &number.to_be_bytes())?
            .filter(|v| v.len() == 32)
            .map(|v| B256::from_slice(&v)))
    }

    fn has_storage(&self, address: &Address) -> Result<bool, StateError> {
        let mut it = self.db.raw_iterator_cf(self.cf(CF_STORAGE)?);
        it.seek(address.as_slice());
        let found = it.key().is_some_and(|k| k.starts_with(address.as_slice()));
        it.status().map_err(db_err)?;
        Ok(found)
    }
}
