//! [`BlockState`]: the sequential executor's view of state during one block, a
//! write-back cache over a [`StateReader`] that revm reads and commits into.
//!
//! Invariants:
//! - every account revm touches is cached with the value it had at block start
//!   (`original`) and its current value (`info`; `None` = does not exist);
//! - every cached slot holds its block-start value and its current value; after a
//!   storage wipe (self-destruct, re-creation, EIP-161 removal) `storage_cleared`
//!   is set, the cached slots are dropped and unread slots read as zero;
//! - commits follow revm's rules: untouched accounts are ignored, self-destructed
//!   ones vanish, created ones start from empty storage, touched empty ones are
//!   removed (EIP-161; revm already normalised pre-Spurious-Dragon state);
//! - [`BlockState::into_diff`] reports exactly what differs from block start.

use crate::changes::{AccountChange, ChangeKind, TxChanges};
use crate::{error::DbError, journal::StorageProbe, CodeCache};
use alloy_primitives::{
    map::{AddressMap, B256Map, HashMap, U256Map},
    Address, Bytes, B256, U256,
};
use pel_state::{account::KECCAK_EMPTY, AccountDiff, AccountInfo, StateDiff, StateReader};
use revm::bytecode::Bytecode;
use revm::database_interface::Database;
use revm::primitives::hardfork::SpecId;
use revm::state::AccountInfo as RevmAccountInfo;
use std::sync::Arc;

/// A cached storage slot.
#[derive(Clone, Copy, Debug)]
struct Slot {
    original: U256,
    present: U256,
}

/// A cached account.
#[derive(Clone, Debug, Default)]
struct CachedAccount {
    original: Option<AccountInfo>,
    info: Option<AccountInfo>,
    storage_cleared: bool,
    storage: U256Map<Slot>,
}

/// Accounts a transaction usually touches (sender, recipient or contract, and
/// one more for tokens and pools), for [`BlockState::reserve_for_block`].
const ACCOUNTS_PER_TX: usize = 3;

/// Blocks with fewer transactions grow their account map as needed.
const RESERVE_MIN_TXS: usize = 1000;

/// The cached part of a [`BlockState`], detached from its base.
#[derive(Debug)]
pub struct CachedState {
    accounts: AddressMap<CachedAccount>,
    code_cache: B256Map<Bytecode>,
    new_codes: B256Map<Bytes>,
}

/// Block-scoped state over a base [`StateReader`]; see the module docs.
#[derive(Debug)]
pub struct BlockState<S> {
    base: S,
    accounts: AddressMap<CachedAccount>,
    code_cache: B256Map<Bytecode>,
    shared_code: Arc<CodeCache>,
    new_codes: B256Map<Bytes>,
    /// A backend error met where revm gives no way to report it (the EIP-7610
    /// storage probe); the executor checks it after every transaction.
    deferred_error: Option<DbError>,
    /// Accounts whose whole storage was probed (EIP-7610), in probe order:
    /// a read of every slot, for the partitioned executor's conflict check.
    probes: Vec<Address>,
    /// An account whose reads revm makes are counted (see [`Self::watch`]).
    watched: Option<Address>,
    watched_reads: u64,
}

/// A location a transaction changed, as [`BlockState::commit_changes_tracked`]
/// reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Written {
    /// The account's record (balance, nonce, code, existence; a wipe).
    Account(Address),
    /// One storage slot.
    Slot(Address, U256),
}

impl<S: StateReader> BlockState<S> {
    /// A fresh view of `base` with its own code cache.
    pub fn new(base: S) -> Self {
        Self::with_code_cache(base, Arc::default())
    }

    /// A fresh view of `base` sharing analysed code with other blocks.
    pub fn with_code_cache(base: S, shared_code: Arc<CodeCache>) -> Self {
        Self {
            base,
            accounts: HashMap::default(),
            code_cache: B256Map::default(),
            shared_code,
            new_codes: B256Map::default(),
            deferred_error: None,
            probes: Vec::new(),
            watched: None,
            watched_reads: 0,
        }
    }

    /// Counts from now on every read revm makes of `address` (its account
    /// or a slot of it), as [`Self::watched_reads`]: the partitioned
    /// executor's way to see which transaction looked at the beneficiary.
    pub fn watch(&mut self, address: Address) {
        self.watched = Some(address);
    }

    /// How many reads of the watched account revm made so far.
    pub fn watched_reads(&self) -> u64 {
        self.watched_reads
    }

    fn count_watched(&mut self, address: Address) {
        if self.watched == Some(address) {
            self.watched_reads += 1;
        }
    }

    /// Reserves room for the accounts a big block of `txs` transactions will
    /// likely cache, so that the map does not grow (rehashing into fresh
    /// memory, page by page) while it runs: about a tenth of the sequential
    /// time of a block of 4,000 transfers. Smaller blocks (mainnet's) showed
    /// no gain, so they keep growing the map as needed.
    pub fn reserve_for_block(&mut self, txs: usize) {
        if txs >= RESERVE_MIN_TXS {
            self.accounts.reserve(txs.saturating_mul(ACCOUNTS_PER_TX));
        }
    }

    /// The state the block started from.
    pub fn base(&self) -> &S {
        &self.base
    }

    /// Whether `address` was read or written through this state (every
    /// account revm loads is cached).
    pub fn is_cached(&self, address: &Address) -> bool {
        self.accounts.contains_key(address)
    }

    /// Whether `slot` of `address` was read or written through this state
    /// and is still cached (a wipe drops an account's slots, but a wipe is a
    /// write of the account itself).
    pub fn is_slot_cached(&self, address: &Address, slot: &U256) -> bool {
        self.accounts
            .get(address)
            .is_some_and(|a| a.storage.contains_key(slot))
    }

    /// How many accounts this state holds (read or written).
    pub fn cached_accounts(&self) -> usize {
        self.accounts.len()
    }

    /// Accounts whose storage as a whole was probed (EIP-7610 collision
    /// checks).
    pub fn probed(&self) -> &[Address] {
        &self.probes
    }

    fn cached(&mut self, address: Address) -> Result<&mut CachedAccount, DbError> {
        self.cached_known(address, None)
    }

    /// [`Self::cached`], taking the block-start record from `known` instead
    /// of the base when the account is not cached yet and `known` has it.
    fn cached_known(
        &mut self,
        address: Address,
        known: Option<Option<AccountInfo>>,
    ) -> Result<&mut CachedAccount, DbError> {
        use std::collections::hash_map::Entry;
        Ok(match self.accounts.entry(address) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) => {
                let original = match known {
                    Some(original) => original,
                    None => self.base.account(&address)?,
                };
                e.insert(CachedAccount {
                    original,
                    info: original,
                    ..Default::default()
                })
            }
        })
    }

    fn load_code(&mut self, hash: B256) -> Result<Bytecode, DbError> {
        if let Some(code) = self.code_cache.get(&hash) {
            return Ok(code.clone());
        }
        let code = match self.shared_code.get(&hash) {
            Some(code) => code,
            None => {
                let raw = self.base.code(&hash)?.ok_or(DbError::MissingCode(hash))?;
                let code = Bytecode::new_raw_checked(raw)
                    .map_err(|e| DbError::BadCode(hash, format!("{e:?}")))?;
                self.shared_code.insert(hash, code.clone());
                code
            }
        };
        self.code_cache.insert(hash, code.clone());
        Ok(code)
    }

    /// Current account info (after what this block did so far).
    pub fn account(&mut self, address: Address) -> Result<Option<AccountInfo>, DbError> {
        Ok(self.cached(address)?.info)
    }

    /// Adds `amount` wei to an account outside any transaction (withdrawals,
    /// block rewards). Under EIP-161 an account left empty is removed.
    pub fn increment_balance(
        &mut self,
        address: Address,
        amount: U256,
        spec: SpecId,
    ) -> Result<(), DbError> {
        let account = self.cached(address)?;
        let mut info = account.info.unwrap_or_default();
        info.balance = info.balance.saturating_add(amount);
        if info.is_empty() && spec >= SpecId::SPURIOUS_DRAGON {
            if account.info.is_some() {
                account.info = None;
                account.storage_cleared = true;
                account.storage.clear();
            }
        } else {
            if account.info.is_none() && info.is_empty() {
                // Materialising an empty account (before Spurious Dragon) is a
                // creation, as revm reports it.
                account.storage_cleared = true;
                account.storage.clear();
            }
            account.info = Some(info);
        }
        Ok(())
    }

    /// Adds each of `amounts` to `address` in turn, exactly as one
    /// [`Self::increment_balance`] per amount would (the beneficiary's fees,
    /// in block order). Once the account exists and is not empty (from
    /// Spurious Dragon on; before it, once it exists) an increment only
    /// raises its balance, so the remaining amounts are added as one sum.
    pub fn increment_balance_each(
        &mut self,
        address: Address,
        amounts: &[U256],
        spec: SpecId,
    ) -> Result<(), DbError> {
        let mut rest = amounts;
        while let Some((first, tail)) = rest.split_first() {
            self.increment_balance(address, *first, spec)?;
            rest = tail;
            let settled = self
                .accounts
                .get(&address)
                .and_then(|a| a.info)
                .is_some_and(|i| !i.is_empty() || spec < SpecId::SPURIOUS_DRAGON);
            if settled {
                break;
            }
        }
        if rest.is_empty() {
            return Ok(());
        }
        let sum = rest
            .iter()
            .fold(U256::ZERO, |sum, a| sum.saturating_add(*a));
        self.increment_balance(address, sum, spec)
    }

    /// Lowers `address`'s balance by `amount` and sets its nonce (a plain
    /// transfer's sender, see [`crate::mv_memory::Delta::Debit`]). The
    /// account must exist and hold at least `amount`.
    pub fn apply_debit(
        &mut self,
        address: Address,
        amount: U256,
        nonce: u64,
    ) -> Result<(), DbError> {
        let account = self.cached(address)?;
        let info = account
            .info
            .as_mut()
            .ok_or(DbError::Inconsistent("debit of a missing account"))?;
        info.balance = info
            .balance
            .checked_sub(amount)
            .ok_or(DbError::Inconsistent("debit beyond the balance"))?;
        info.nonce = nonce;
        Ok(())
    }

    /// How much `address`'s balance rose through this state when nothing
    /// else of it changed (its nonce, its storage, its having no code): zero
    /// when it is not cached, `None` when anything else changed or the
    /// balance fell.
    pub fn balance_gain(&self, address: &Address) -> Option<U256> {
        let Some(account) = self.accounts.get(address) else {
            return Some(U256::ZERO);
        };
        if account.storage_cleared || !account.storage.is_empty() {
            return None;
        }
        let (before, after) = (
            account.original.unwrap_or_default(),
            account.info.unwrap_or_default(),
        );
        let same = after.nonce == before.nonce && before.has_no_code() && after.has_no_code();
        same.then(|| after.balance.checked_sub(before.balance))
            .flatten()
    }

    /// The accounts this state holds.
    pub fn cached_addresses(&self) -> impl Iterator<Item = &Address> {
        self.accounts.keys()
    }

    /// What this state changed in every account but those in `keep`,
    /// sorted by address (built on the calling thread: the partitioned
    /// executor's groups build theirs on all cores at once).
    pub fn sorted_diff(&self, keep: &[Address]) -> Vec<(Address, AccountDiff)> {
        let mut touched: Vec<(Address, &CachedAccount)> = self
            .accounts
            .iter()
            .filter(|(a, _)| !keep.contains(a))
            .map(|(a, account)| (*a, account))
            .collect();
        touched.sort_unstable_by_key(|(address, _)| *address);
        touched
            .into_iter()
            .filter_map(|(address, account)| account_diff(&address, account))
            .collect()
    }

    /// Takes the accounts in `keep` out of this state (those cached), with
    /// its code, for a later [`Self::absorb_sibling`].
    pub fn take_kept(&mut self, keep: &[Address]) -> CachedState {
        let mut kept = HashMap::default();
        for address in keep {
            if let Some(account) = self.accounts.remove(address) {
                kept.insert(*address, account);
            }
        }
        CachedState {
            accounts: kept,
            code_cache: std::mem::take(&mut self.code_cache),
            new_codes: std::mem::take(&mut self.new_codes),
        }
    }

    /// What this state cached, without its base (see [`BlockState::absorb`]).
    pub fn into_cached(self) -> CachedState {
        CachedState {
            accounts: self.accounts,
            code_cache: self.code_cache,
            new_codes: self.new_codes,
        }
    }

    /// Applies what a second state changed on top of this one. `other` must
    /// have been built over this state's base plus this state's changes so far
    /// (the parallel executor commits transactions on such a view while this
    /// state holds the pre-block system calls): an account `other` cached but
    /// this state did not was untouched here, so its original is the base's.
    ///
    /// Costs one map operation per account cached here (usually a handful):
    /// the larger map of `other` is kept and these are merged into it.
    pub fn absorb(&mut self, other: CachedState) {
        use std::collections::hash_map::Entry;
        let mut accounts = other.accounts;
        for (address, before) in std::mem::take(&mut self.accounts) {
            match accounts.entry(address) {
                Entry::Vacant(e) => {
                    e.insert(before);
                }
                Entry::Occupied(mut e) => {
                    let after = std::mem::replace(e.get_mut(), before);
                    merge_later(e.get_mut(), after);
                }
            }
        }
        self.accounts = accounts;
        self.absorb_codes(other.code_cache, other.new_codes);
    }

    /// Applies a sibling's changes on top of this state: `other` was built
    /// over the same view this state's latest changes were (the partitioned
    /// executor's groups, all over the pre-block state), and no account or
    /// slot that one of them changed was read or written by the other (the
    /// caller checked). Accounts both only read keep one entry, with the
    /// slots either read.
    ///
    /// Costs one map operation per account of `other`: absorb the largest
    /// state with [`Self::absorb`] and the smaller ones with this.
    pub fn absorb_sibling(&mut self, other: CachedState) {
        use std::collections::hash_map::Entry;
        self.accounts.reserve(other.accounts.len());
        for (address, after) in other.accounts {
            match self.accounts.entry(address) {
                Entry::Vacant(e) => {
                    e.insert(after);
                }
                Entry::Occupied(mut e) => merge_later(e.get_mut(), after),
            }
        }
        self.absorb_codes(other.code_cache, other.new_codes);
    }

    fn absorb_codes(&mut self, code_cache: B256Map<Bytecode>, new_codes: B256Map<Bytes>) {
        for (hash, code) in code_cache {
            self.code_cache.entry(hash).or_insert(code);
        }
        self.new_codes.extend(new_codes);
    }

    /// Takes the backend error recorded during the last transaction, if any.
    pub fn take_error(&mut self) -> Option<DbError> {
        self.deferred_error.take()
    }

    /// What the block changed relative to the base state.
    pub fn into_diff(self) -> StateDiff {
        self.diff()
    }

    /// What the block changed so far relative to the base state.
    pub fn diff(&self) -> StateDiff {
        StateDiff {
            accounts: self
                .accounts
                .iter()
                .filter_map(|(address, account)| account_diff(address, account))
                .collect(),
            codes: self.new_codes(),
        }
    }

    /// [`Self::diff`] on the threads of `pool` when the block touched enough
    /// accounts: the diff of a big block (one entry per touched account, built
    /// and then ordered) is otherwise a serial step after its parallel
    /// execution. Smaller blocks stay on the calling thread, sparing them the
    /// hand-off to the pool.
    pub fn diff_on(&self, pool: &rayon::ThreadPool) -> StateDiff {
        if self.accounts.len() < 2 * PARALLEL_DIFF_CHUNK {
            return self.diff();
        }
        pool.install(|| self.diff_parallel())
    }

    fn diff_parallel(&self) -> StateDiff {
        use rayon::prelude::*;
        // Ordered first, as small (address, pointer) pairs; then one diff per
        // account into a vector of exactly that length: neither vector grows
        // (growing one faulted fresh pages in on every big block).
        let mut touched: Vec<(Address, &CachedAccount)> = self
            .accounts
            .iter()
            .map(|(address, account)| (*address, account))
            .collect();
        touched.par_sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let diffs: Vec<Option<(Address, AccountDiff)>> = touched
            .par_iter()
            .with_min_len(PARALLEL_DIFF_CHUNK)
            .map(|(address, account)| account_diff(address, account))
            .collect();
        let mut changed = Vec::with_capacity(diffs.iter().flatten().count());
        changed.extend(diffs.into_iter().flatten());
        StateDiff {
            // Already in order: the map is built in one pass, in place.
            accounts: changed.into_iter().collect(),
            codes: self.new_codes(),
        }
    }

    fn new_codes(&self) -> std::collections::BTreeMap<B256, Bytes> {
        self.new_codes
            .iter()
            .map(|(k, v)| (*k, v.clone()))
            .collect()
    }

    /// Caches `original` as `address`'s block-start record unless the
    /// account is cached already, sparing a read of the base. `original`
    /// must be exactly what the base holds.
    pub fn cache_original(&mut self, address: Address, original: Option<AccountInfo>) {
        // With the original given, caching never reads the base, so it
        // cannot fail.
        let _ = self.cached_known(address, Some(original));
    }

    fn commit_account(
        &mut self,
        change: AccountChange,
        known: impl Fn(&Address) -> Option<Option<AccountInfo>>,
        mut written: Option<&mut Vec<Written>>,
    ) -> Result<(), DbError> {
        let address = change.address;
        let cached = self.cached_known(address, known(&address))?;
        let mut info = change.info;
        if let Some(shift) = change.shift {
            // Only the balance moved, relative to what the account holds now.
            let held = cached
                .info
                .ok_or(DbError::Inconsistent("balance shift of a missing account"))?;
            info = AccountInfo {
                balance: shift
                    .apply(held.balance)
                    .ok_or(DbError::Inconsistent("balance shift out of range"))?,
                ..held
            };
        }
        let mut wrote = |location| {
            if let Some(written) = written.as_deref_mut() {
                written.push(location);
            }
        };
        match change.kind {
            ChangeKind::SelfDestructed => {
                cached.info = None;
                cached.storage_cleared = true;
                cached.storage.clear();
                wrote(Written::Account(address));
                return Ok(());
            }
            ChangeKind::Emptied => {
                // EIP-161: a touched empty account is removed.
                if cached.info.is_some() {
                    cached.info = None;
                    cached.storage_cleared = true;
                    cached.storage.clear();
                    wrote(Written::Account(address));
                }
                return Ok(());
            }
            ChangeKind::Created => {
                cached.storage_cleared = true;
                cached.storage.clear();
                wrote(Written::Account(address));
            }
            ChangeKind::Updated => {
                if cached.info != Some(info) {
                    wrote(Written::Account(address));
                }
            }
        }
        for (slot, _, _) in &change.storage {
            wrote(Written::Slot(address, *slot));
        }
        let old_code_hash = cached.info.map(|i| i.code_hash);
        cached.info = Some(info);
        if cached.storage.is_empty() {
            // Sized once: an account first cached here (the parallel
            // executor's commit) would otherwise grow its map slot by slot.
            cached.storage.reserve(change.storage.len());
        }
        for (slot, original, present) in change.storage {
            cached
                .storage
                .entry(slot)
                .and_modify(|s| s.present = present)
                .or_insert(Slot { original, present });
        }
        if old_code_hash != Some(info.code_hash) && info.code_hash != KECCAK_EMPTY {
            if let Some(code) = change.code {
                self.new_codes.insert(info.code_hash, code.original_bytes());
                self.code_cache.entry(info.code_hash).or_insert(code);
            }
        }
        Ok(())
    }

    /// Applies what a transaction or system call changed.
    pub fn commit_changes(&mut self, changes: TxChanges) -> Result<(), DbError> {
        self.commit_changes_known(changes, |_| None)
    }

    /// Like [`Self::commit_changes`], taking the block-start value of an
    /// account this state has not cached yet from `known` where it has one
    /// (`Some(info)`, `None` inside: the account did not exist) instead of
    /// reading the base. `known` must answer exactly what the base holds:
    /// the parallel executor passes the base values its incarnation read.
    pub fn commit_changes_known(
        &mut self,
        changes: TxChanges,
        known: impl Fn(&Address) -> Option<Option<AccountInfo>>,
    ) -> Result<(), DbError> {
        for change in changes.0 {
            self.commit_account(change, &known, None)?;
        }
        Ok(())
    }

    /// Like [`Self::commit_changes`], and appends to `written` every account
    /// and slot whose value the changes set (an account whose record they
    /// leave as it was is not written; a wipe is a write of the account).
    pub fn commit_changes_tracked(
        &mut self,
        changes: TxChanges,
        written: &mut Vec<Written>,
    ) -> Result<(), DbError> {
        for change in changes.0 {
            self.commit_account(change, |_| None, Some(written))?;
        }
        Ok(())
    }
}

/// Merges `after`, an account as a later state left it, into `merged`, the
/// same account as an earlier one left it: the block-start record and slot
/// values stay the earlier state's, the current ones become the later's.
fn merge_later(merged: &mut CachedAccount, after: CachedAccount) {
    if after.storage_cleared {
        merged.storage_cleared = true;
        merged.storage.clear();
    }
    merged.info = after.info;
    for (slot, value) in after.storage {
        merged
            .storage
            .entry(slot)
            .and_modify(|s| s.present = value.present)
            .or_insert(value);
    }
}

/// Accounts per task of [`BlockState::diff_on`].
const PARALLEL_DIFF_CHUNK: usize = 512;

/// What the block did to one cached account, if anything.
fn account_diff(address: &Address, account: &CachedAccount) -> Option<(Address, AccountDiff)> {
    let storage: std::collections::BTreeMap<U256, U256> = account
        .storage
        .iter()
        .filter(|(_, slot)| {
            if account.storage_cleared {
                !slot.present.is_zero()
            } else {
                slot.present != slot.original
            }
        })
        .map(|(k, slot)| (*k, slot.present))
        .collect();
    let changed =
        account.storage_cleared || account.info != account.original || !storage.is_empty();
    changed.then_some((
        *address,
        AccountDiff {
            info: account.info,
            storage_cleared: account.storage_cleared,
            storage,
        },
    ))
}

/// revm's view of an account: PEL's record plus its analysed code (`None`
/// for accounts without code).
// The struct update covers fields revm adds under optional features.
#[allow(clippy::needless_update)]
pub fn revm_account_info(info: AccountInfo, code: Option<Bytecode>) -> RevmAccountInfo {
    RevmAccountInfo {
        balance: info.balance,
        nonce: info.nonce,
        code_hash: if info.code_hash == B256::ZERO {
            KECCAK_EMPTY
        } else {
            info.code_hash
        },
        account_id: None,
        code: code.or_else(|| Some(Bytecode::default())),
        ..Default::default()
    }
}

impl<S: StateReader> StorageProbe for BlockState<S> {
    fn has_storage(&mut self, address: Address) -> bool {
        self.probes.push(address);
        let cached_non_zero = |a: &CachedAccount| a.storage.values().any(|s| !s.present.is_zero());
        if let Some(account) = self.accounts.get(&address) {
            if cached_non_zero(account) {
                return true;
            }
            if account.storage_cleared {
                return false;
            }
        }
        // An account without code cannot write its own storage, so the base
        // answer stands unless the block wiped it (handled above).
        match self.base.has_storage(&address) {
            Ok(has) => has,
            Err(e) => {
                self.deferred_error = Some(e.into());
                false
            }
        }
    }
}

impl<S: StateReader> Database for BlockState<S> {
    type Error = DbError;

    fn basic(&mut self, address: Address) -> Result<Option<RevmAccountInfo>, DbError> {
        self.count_watched(address);
        let Some(info) = self.cached(address)?.info else {
            return Ok(None);
        };
        let code = if info.has_no_code() {
            None
        } else {
            Some(self.load_code(info.code_hash)?)
        };
        Ok(Some(revm_account_info(info, code)))
    }

    fn code_by_hash(&mut self, code_hash: B256) -> Result<Bytecode, DbError> {
        if code_hash == KECCAK_EMPTY || code_hash == B256::ZERO {
            return Ok(Bytecode::default());
        }
        self.load_code(code_hash)
    }

    fn storage(&mut self, address: Address, index: U256) -> Result<U256, DbError> {
        self.count_watched(address);
        let account = self.cached(address)?;
        if let Some(slot) = account.storage.get(&index) {
            return Ok(slot.present);
        }
        let value = if account.storage_cleared || account.info.is_none() {
            U256::ZERO
        } else {
            self.base.storage(&address, &index)?
        };
        // Re-borrow: the base read above needed `self.base`.
        if let Some(account) = self.accounts.get_mut(&address) {
            account.storage.insert(
                index,
                Slot {
                    original: value,
                    present: value,
                },
            );
        }
        Ok(value)
    }

    fn block_hash(&mut self, number: u64) -> Result<B256, DbError> {
        self.base
            .block_hash(number)?
            .ok_or(DbError::MissingBlockHash(number))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::changes::AccountChange;
    use pel_state::InMemoryState;

    #[test]
    fn parallel_diff_equals_the_serial_one() {
        let mut base = InMemoryState::new();
        let one = AccountInfo::with_balance(U256::from(1));
        for i in 0..3000u64 {
            let storage = [(U256::from(1), U256::from(i + 1))];
            base.insert_account(Address::left_padding_from(&i.to_be_bytes()), one, storage);
        }
        let mut state = BlockState::new(&base);
        let mut changes = Vec::new();
        for i in 0..3000u64 {
            let address = Address::left_padding_from(&i.to_be_bytes());
            // Every third account is only read: no entry in the diff.
            if i % 3 == 0 {
                state.account(address).unwrap();
                continue;
            }
            changes.push(AccountChange {
                address,
                kind: if i % 7 == 0 {
                    ChangeKind::SelfDestructed
                } else {
                    ChangeKind::Updated
                },
                info: AccountInfo::with_balance(U256::from(i)),
                shift: None,
                code: None,
                storage: vec![(U256::from(1), U256::from(i + 1), U256::from(i % 5))],
            });
        }
        state.commit_changes(TxChanges(changes)).unwrap();
        let serial = state.diff();
        assert!(serial.accounts.len() > 1500);
        assert!(serial.accounts.values().any(|a| a.storage_cleared));
        assert!(serial.accounts.values().any(|a| !a.storage.is_empty()));
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        assert_eq!(state.diff_on(&pool), serial);
    }
}
