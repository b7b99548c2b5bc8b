//! Multi-version memory: for every state location, the value written by each
//! transaction's latest incarnation, or an ESTIMATE marker where that
//! incarnation was aborted and is expected to write again.
//!
//! Locations are an account's basic record (balance, nonce, code hash,
//! existence, plus the index of the last transaction that wiped its storage)
//! and single storage slots. An account entry may also be a *delta* of a
//! plain transfer: a credit (the record below it with its balance raised by
//! an amount: the recipient, written without reading the balance it
//! raised) or a debit (the balance lowered by an amount and the nonce set:
//! the sender, which only checked that its balance sufficed), or, for a
//! contract whose transaction moved its balance without looking at it, a
//! credit or a withdrawal of the net amount. Code is content-addressed and
//! lives in the shared
//! [`crate::CodeCache`], not here. Block-beneficiary fees are kept per
//! transaction beside the map (see [`MvMemory::fee`]).
//!
//! Invariants:
//! - a read by transaction `j` sees the entry of the highest transaction `i < j`
//!   that wrote the location, or the base state when none did;
//! - an ESTIMATE below the reader is a dependency: the reader must wait for
//!   that transaction rather than use an older value;
//! - deltas are kept apart from a location's full writes. A read returns
//!   the latest full write below the reader (or the base state) with every
//!   delta between it and the reader applied (credits and debits summed, the
//!   highest debit's nonce), attributed to the highest writer; an ESTIMATE
//!   among them blocks it. A read *past deltas*
//!   ([`MvMemory::read_past_deltas`], for a transfer's recipient, which only
//!   depends on the account's code and a bound on its balance) sees the full
//!   writes alone, in time logarithmic in the number of deltas, and ignores
//!   aborted deltas: an incarnation that turns a delta into a full write, or
//!   the reverse, reports it as a new write, so every transaction above is
//!   validated again. The block beneficiary never gets a credit (its value
//!   also depends on the deferred fees, which are counted from its last full
//!   write; its own payouts are debits, applied after those fees);
//! - after [`MvMemory::record`] of transaction `i`, exactly the locations of
//!   its latest write set hold entries of `i`.

use crate::scheduler::{lock, Incarnation, TxIdx};
use alloy_primitives::{map::HashSet, Address, U256};
use crossbeam_utils::CachePadded;
use dashmap::DashMap;
use pel_state::AccountInfo;
use smallvec::SmallVec;
use std::sync::{
    atomic::{AtomicU64, Ordering},
    Mutex,
};

/// Above this many comparisons (old locations times new writes), a
/// re-recorded incarnation finds the locations it no longer writes through
/// a set instead of scanning its writes once per old location.
const SCAN_MAX: usize = 1024;

/// A versioned state location.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Location {
    /// Balance, nonce, code hash and existence of an account.
    Account(Address),
    /// One storage slot.
    Storage(Address, U256),
}

/// Fed to the hasher in whole words: every read, record and validation
/// hashes a location, and the derived hash (a tag, then a length and a byte
/// slice per field) took the hasher's path for long inputs once per field.
impl std::hash::Hash for Location {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        let (head, tail) = address_words(match self {
            Self::Account(address) | Self::Storage(address, _) => address,
        });
        state.write_u128(head);
        match self {
            Self::Account(_) => state.write_u64(u64::from(tail)),
            Self::Storage(_, slot) => {
                let [l0, l1, l2, l3] = *slot.as_limbs();
                state.write_u128(u128::from(l0) | (u128::from(l1) << 64));
                state.write_u128(u128::from(l2) | (u128::from(l3) << 64));
                // The tag beside the address's last bytes.
                state.write_u64(u64::from(tail) | (1 << 32));
            }
        }
    }
}

/// An address as its first sixteen bytes and its last four.
fn address_words(address: &Address) -> (u128, u32) {
    let mut head = [0u8; 16];
    let mut tail = [0u8; 4];
    head.copy_from_slice(&address[..16]);
    tail.copy_from_slice(&address[16..]);
    (u128::from_ne_bytes(head), u32::from_ne_bytes(tail))
}

/// An account's versioned record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AccountValue {
    /// `None` when the account does not exist.
    pub info: Option<AccountInfo>,
    /// The last transaction of this block (at or below the writer) that wiped
    /// the account's storage (self-destruct, creation, EIP-161 removal).
    pub last_wipe: Option<TxIdx>,
}

/// A versioned value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Value {
    /// For [`Location::Account`].
    Account(AccountValue),
    /// For [`Location::Storage`].
    Storage(U256),
    /// For [`Location::Account`], as a write only: a change of the account
    /// below. Reads never return it.
    Delta(Delta),
}

/// A plain transfer's change of an account, relative to the record below it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delta {
    /// The recipient: its balance raised by this (non-zero) amount; a missing
    /// account becomes one with only that balance (the same as
    /// [`crate::BlockState::increment_balance`] for such an amount, in every
    /// fork).
    Credit(U256),
    /// The sender: its balance lowered by `amount`, its nonce set to `nonce`.
    Debit {
        /// What the transfer cost it (value and gas).
        amount: U256,
        /// Its nonce after the transfer.
        nonce: u64,
    },
    /// A contract whose balance its transaction moved without looking at it
    /// (see [`crate::vm`]): its balance lowered by this (non-zero) amount,
    /// nothing else changed.
    Withdraw(U256),
}

/// Deltas summed, to apply to the record below them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Deltas {
    /// The credits' sum.
    pub credit: U256,
    /// The debits' sum.
    pub debit: U256,
    /// The highest debit's nonce.
    pub nonce: Option<u64>,
}

impl Deltas {
    /// Adds `delta`, which lies below every delta added so far.
    fn add_below(&mut self, delta: Delta) {
        match delta {
            Delta::Credit(amount) => self.credit = self.credit.saturating_add(amount),
            Delta::Debit { amount, nonce } => {
                self.debit = self.debit.saturating_add(amount);
                self.nonce.get_or_insert(nonce);
            }
            Delta::Withdraw(amount) => self.debit = self.debit.saturating_add(amount),
        }
    }

    /// `info` with these deltas applied.
    pub fn apply(&self, info: Option<AccountInfo>) -> Option<AccountInfo> {
        let mut info = info.unwrap_or_default();
        info.balance = info
            .balance
            .saturating_add(self.credit)
            .saturating_sub(self.debit);
        if let Some(nonce) = self.nonce {
            info.nonce = nonce;
        }
        Some(info)
    }
}

/// `info` raised by a non-zero `amount`: [`Delta::Credit`].
pub fn credited(info: Option<AccountInfo>, amount: U256) -> Option<AccountInfo> {
    Deltas {
        credit: amount,
        ..Deltas::default()
    }
    .apply(info)
}

#[derive(Clone, Copy, Debug)]
enum Entry {
    Data(Value),
    Estimate,
}

/// What a read found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Read {
    /// The value written by transaction `tx`.
    Written {
        /// The writer.
        tx: TxIdx,
        /// Its value.
        value: Value,
    },
    /// No lower transaction wrote the location: read the base state.
    Base,
    /// Only deltas below: the base state's account with `deltas` applied;
    /// `tx` is the highest of their writers.
    BaseDelta {
        /// The highest writer.
        tx: TxIdx,
        /// The deltas.
        deltas: Deltas,
    },
    /// A lower transaction's write is an ESTIMATE: wait for it.
    Blocked(TxIdx),
}

/// A transaction's fee to the block beneficiary, deferred so that paying it
/// does not make every transaction depend on the one before.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fee {
    /// Not executed yet (counts as zero; validation catches the change).
    Unknown,
    /// Executed, fee known.
    Known(U256),
    /// Aborted: will pay again.
    Estimate,
}

/// The writers of one location, by transaction: full writes, and deltas
/// apart (`None` once aborted: an ESTIMATE), so that a read past them need
/// not walk them. The first of each is stored inline.
#[derive(Debug, Default)]
struct Entries {
    writes: SmallVec<[(TxIdx, Entry); 1]>,
    deltas: SmallVec<[(TxIdx, Option<Delta>); 1]>,
}

/// The position of `tx`'s entry in `list`, or where it goes.
fn find<E>(list: &[(TxIdx, E)], tx: TxIdx) -> Result<usize, usize> {
    list.binary_search_by_key(&tx, |(writer, _)| *writer)
}

/// Sets `tx`'s entry in `list`; true when it had none.
fn put<E, A: smallvec::Array<Item = (TxIdx, E)>>(
    list: &mut SmallVec<A>,
    tx: TxIdx,
    entry: E,
) -> bool {
    match find(list, tx) {
        Ok(i) => {
            list[i].1 = entry;
            false
        }
        Err(i) => {
            list.insert(i, (tx, entry));
            true
        }
    }
}

/// Removes `tx`'s entry from `list`; true when it had one.
fn take<E, A: smallvec::Array<Item = (TxIdx, E)>>(list: &mut SmallVec<A>, tx: TxIdx) -> bool {
    find(list, tx).map(|i| list.remove(i)).is_ok()
}

/// Most transactions write two or three locations; reserving that much up
/// front spares the map its rehashes while the workers fill it.
const LOCATIONS_PER_TX: usize = 3;

/// The multi-version store of one block; see the module docs.
#[derive(Debug)]
pub struct MvMemory {
    /// Per location, the entries of its writers sorted by transaction (most
    /// locations have a single writer: it is stored inline, without a heap
    /// allocation; a sorted vector beats a tree for the few that have more).
    data: DashMap<Location, Entries, alloy_primitives::map::DefaultHashBuilder>,
    txs: Vec<CachePadded<TxWrites>>,
    /// How many records the block has seen ([`MvMemory::epoch`]).
    records: AtomicU64,
}

/// What one transaction's latest incarnation wrote, on its own cache line
/// (neighbouring transactions are usually recorded by different workers).
#[derive(Debug)]
struct TxWrites {
    locations: Mutex<Vec<Location>>,
    fee: Mutex<Fee>,
    /// The epoch its latest record ended at.
    recorded_at: AtomicU64,
    /// The latest epoch from which an incarnation's reads were found to
    /// hold, with the incarnation ([`MvMemory::note_checked`]).
    checked: AtomicU64,
}

/// [`TxWrites::checked`] keeps the incarnation (plus one) above these bits,
/// the epoch in them.
const CHECKED_EPOCH_BITS: u32 = 40;

impl MvMemory {
    /// An empty store for `block_size` transactions.
    pub fn new(block_size: usize) -> Self {
        let mut mv = Self {
            data: DashMap::with_capacity_and_hasher(
                block_size.saturating_mul(LOCATIONS_PER_TX),
                Default::default(),
            ),
            txs: Vec::new(),
            records: AtomicU64::new(0),
        };
        mv.set_block_size(block_size);
        mv
    }

    /// Empties the store, keeping its allocations: a store reused from block
    /// to block neither grows its map again nor faults fresh pages in while
    /// the workers fill it.
    pub fn clear(&mut self) {
        // `DashMap::clear` erases entry by entry, which leaves tombstones that
        // make the next block's inserts rehash; clearing each shard's table
        // resets it whole.
        for shard in self.data.shards_mut() {
            shard.get_mut().clear();
        }
        for writes in &mut self.txs {
            writes
                .locations
                .get_mut()
                .unwrap_or_else(|e| e.into_inner())
                .clear();
            *writes.fee.get_mut().unwrap_or_else(|e| e.into_inner()) = Fee::Unknown;
            *writes.recorded_at.get_mut() = 0;
            *writes.checked.get_mut() = 0;
        }
        *self.records.get_mut() = 0;
    }

    /// Readies an empty store (new or [cleared](Self::clear)) for a block of
    /// `block_size` transactions.
    pub fn set_block_size(&mut self, block_size: usize) {
        self.txs.truncate(block_size);
        let missing = block_size - self.txs.len();
        self.txs.extend((0..missing).map(|_| {
            CachePadded::new(TxWrites {
                locations: Mutex::new(Vec::new()),
                fee: Mutex::new(Fee::Unknown),
                recorded_at: AtomicU64::new(0),
                checked: AtomicU64::new(0),
            })
        }));
    }

    /// The latest write to `location` below transaction `tx`.
    pub fn read(&self, location: &Location, tx: TxIdx) -> Read {
        let Some(entries) = self.data.get(location) else {
            return Read::Base;
        };
        let full = Self::latest_full(&entries, tx);
        if let Read::Blocked(_) = full {
            return full;
        }
        if entries.deltas.is_empty() {
            return full;
        }
        let (deltas, top) = match Self::deltas_above(&entries, full, tx) {
            Ok(found) => found,
            Err(k) => return Read::Blocked(k),
        };
        let Some(top) = top else {
            return full;
        };
        match full {
            Read::Written {
                value: Value::Account(v),
                ..
            } => Read::Written {
                tx: top,
                value: Value::Account(AccountValue {
                    info: deltas.apply(v.info),
                    last_wipe: v.last_wipe,
                }),
            },
            // A delta over a slot: inconsistent, and reported as such by the
            // caller.
            Read::Written { value, .. } => Read::Written { tx: top, value },
            _ => Read::BaseDelta { tx: top, deltas },
        }
    }

    /// The latest full write to `location` below transaction `tx` (or
    /// [`Read::Base`]) and the deltas between it and `tx`, apart: the block
    /// beneficiary's deferred fees count from that full write, before its
    /// deltas are applied. `Err(k)`: an ESTIMATE of transaction `k` below.
    pub fn read_split(&self, location: &Location, tx: TxIdx) -> Result<(Read, Deltas), TxIdx> {
        let Some(entries) = self.data.get(location) else {
            return Ok((Read::Base, Deltas::default()));
        };
        let full = Self::latest_full(&entries, tx);
        if let Read::Blocked(k) = full {
            return Err(k);
        }
        let (deltas, _) = Self::deltas_above(&entries, full, tx)?;
        Ok((full, deltas))
    }

    /// The deltas between `full` (the latest full write below `tx`, or the
    /// block start) and `tx`, summed, with the highest of their writers;
    /// `Err(k)`: an ESTIMATE of transaction `k` among them.
    fn deltas_above(
        entries: &Entries,
        full: Read,
        tx: TxIdx,
    ) -> Result<(Deltas, Option<TxIdx>), TxIdx> {
        let from = match full {
            Read::Written { tx: writer, .. } => writer + 1,
            _ => 0,
        };
        let start = entries.deltas.partition_point(|(writer, _)| *writer < from);
        let end = entries.deltas.partition_point(|(writer, _)| *writer < tx);
        let mut deltas = Deltas::default();
        for &(writer, delta) in entries.deltas[start..end].iter().rev() {
            match delta {
                Some(delta) => deltas.add_below(delta),
                None => return Err(writer),
            }
        }
        Ok((
            deltas,
            entries.deltas[start..end].last().map(|&(top, _)| top),
        ))
    }

    /// The latest full write to `location` below transaction `tx`, ignoring
    /// deltas (see the module docs).
    pub fn read_past_deltas(&self, location: &Location, tx: TxIdx) -> Read {
        match self.data.get(location) {
            Some(entries) => Self::latest_full(&entries, tx),
            None => Read::Base,
        }
    }

    fn latest_full(entries: &Entries, tx: TxIdx) -> Read {
        let below = entries.writes.partition_point(|(writer, _)| *writer < tx);
        match below.checked_sub(1).map(|i| entries.writes[i]) {
            None => Read::Base,
            Some((writer, Entry::Estimate)) => Read::Blocked(writer),
            Some((writer, Entry::Data(value))) => Read::Written { tx: writer, value },
        }
    }

    /// Transaction `tx`'s fee as last recorded.
    pub fn fee(&self, tx: TxIdx) -> Fee {
        *lock(&self.txs[tx].fee)
    }

    /// Stores the writes and fee of `tx`'s incarnation, removing entries its
    /// previous incarnation wrote and this one did not. Returns true when it
    /// wrote a location the previous incarnation did not.
    pub fn record(&self, tx: TxIdx, writes: &[(Location, Value)], fee: U256) -> bool {
        let mut last = lock(&self.txs[tx].locations);
        let mut wrote_new = false;
        for (location, value) in writes {
            let mut entries = self.data.entry(*location).or_default();
            let Entries {
                writes: full,
                deltas,
            } = &mut *entries;
            // A credit turned into a full write, or the reverse, changes what
            // reads past deltas see: it counts as new.
            wrote_new |= match value {
                Value::Delta(delta) => take(full, tx) | put(deltas, tx, Some(*delta)),
                _ => take(deltas, tx) | put(full, tx, Entry::Data(*value)),
            };
        }
        // Entries of the previous incarnation that this one did not rewrite:
        // a scan of the new writes per old location, or, for transactions
        // writing many locations (a scan each would be quadratic), a set.
        let remove_stale = |rewritten: &dyn Fn(&Location) -> bool| {
            for old in last.iter().filter(|old| !rewritten(old)) {
                if let Some(mut entries) = self.data.get_mut(old) {
                    take(&mut entries.writes, tx);
                    take(&mut entries.deltas, tx);
                }
            }
        };
        if last.len().saturating_mul(writes.len()) <= SCAN_MAX {
            remove_stale(&|old| writes.iter().any(|(l, _)| l == old));
        } else {
            let new: HashSet<&Location> = writes.iter().map(|(l, _)| l).collect();
            remove_stale(&|old| new.contains(old));
        }
        last.clear();
        last.extend(writes.iter().map(|(l, _)| *l));
        drop(last);
        *lock(&self.txs[tx].fee) = Fee::Known(fee);
        // Last: a reader that loads the epoch after this sees every write
        // above (the increment publishes them).
        let epoch = self.records.fetch_add(1, Ordering::SeqCst) + 1;
        self.txs[tx].recorded_at.store(epoch, Ordering::SeqCst);
        wrote_new
    }

    /// The number of records so far: an incarnation whose reads were
    /// resolved (executed or validated) after loading epoch `e` saw every
    /// record that ended at `e` or before.
    pub fn epoch(&self) -> u64 {
        self.records.load(Ordering::SeqCst)
    }

    /// The epoch at which `tx`'s latest record ended (0: none yet).
    pub fn recorded_at(&self, tx: TxIdx) -> u64 {
        self.txs[tx].recorded_at.load(Ordering::SeqCst)
    }

    /// Notes that the reads of incarnation `incarnation` of `tx`, resolved
    /// from epoch `epoch` on, were found to hold (it executed from there, or
    /// a validation from there passed).
    pub fn note_checked(&self, tx: TxIdx, incarnation: Incarnation, epoch: u64) {
        if incarnation >= (1 << (63 - CHECKED_EPOCH_BITS)) || epoch >= (1 << CHECKED_EPOCH_BITS) {
            return;
        }
        let packed = ((u64::from(incarnation) + 1) << CHECKED_EPOCH_BITS) | epoch;
        self.txs[tx].checked.fetch_max(packed, Ordering::SeqCst);
    }

    /// Whether the reads of incarnation `incarnation` of `tx` were found to
    /// hold from epoch `epoch` or later: when every lower transaction's last
    /// record ended by `epoch`, they hold against those final writes.
    pub fn checked_since(&self, tx: TxIdx, incarnation: Incarnation, epoch: u64) -> bool {
        let packed = self.txs[tx].checked.load(Ordering::SeqCst);
        packed >> CHECKED_EPOCH_BITS == u64::from(incarnation) + 1
            && packed & ((1 << CHECKED_EPOCH_BITS) - 1) >= epoch
    }

    /// Marks every write of `tx`'s aborted incarnation as an ESTIMATE.
    pub fn convert_writes_to_estimates(&self, tx: TxIdx) {
        let last = lock(&self.txs[tx].locations);
        for location in last.iter() {
            if let Some(mut entries) = self.data.get_mut(location) {
                if let Ok(i) = find(&entries.writes, tx) {
                    entries.writes[i].1 = Entry::Estimate;
                }
                if let Ok(i) = find(&entries.deltas, tx) {
                    entries.deltas[i].1 = None;
                }
            }
        }
        drop(last);
        *lock(&self.txs[tx].fee) = Fee::Estimate;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot(n: u64) -> Location {
        Location::Storage(Address::with_last_byte(1), U256::from(n))
    }

    /// A check counts for its incarnation only, and only from its epoch on:
    /// a record that ends after it makes it stale.
    #[test]
    fn a_check_holds_for_its_incarnation_from_its_epoch() {
        let mv = MvMemory::new(3);
        mv.record(0, &[(slot(1), Value::Storage(U256::from(1)))], U256::ZERO);
        let after_0 = mv.epoch();
        assert_eq!(mv.recorded_at(0), after_0);
        mv.note_checked(2, 0, after_0);
        assert!(mv.checked_since(2, 0, mv.recorded_at(0)));
        assert!(!mv.checked_since(2, 1, mv.recorded_at(0)));
        // Transaction 1 records later: the check predates it.
        mv.record(1, &[(slot(1), Value::Storage(U256::from(2)))], U256::ZERO);
        assert!(!mv.checked_since(2, 0, mv.recorded_at(1)));
        // A later check of a newer incarnation replaces it.
        mv.note_checked(2, 1, mv.epoch());
        assert!(mv.checked_since(2, 1, mv.recorded_at(1)));
        assert!(!mv.checked_since(2, 0, 0));
        // An older incarnation's check, noted late, does not count for it.
        mv.note_checked(2, 0, mv.epoch() + 5);
        assert!(mv.checked_since(2, 1, mv.recorded_at(1)));
        // A new block starts from nothing.
        let mut mv = mv;
        mv.clear();
        assert_eq!(mv.epoch(), 0);
        assert!(!mv.checked_since(2, 1, 0));
    }

    /// The word-wise hash covers every byte of the address and of the slot,
    /// and tells an account from its slots.
    #[test]
    fn every_byte_of_a_location_reaches_its_hash() {
        use std::hash::{BuildHasher, BuildHasherDefault};
        let hash = |l: Location| {
            BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default().hash_one(l)
        };
        let address = Address::repeat_byte(0x11);
        let slot = U256::from_be_bytes([0x22; 32]);
        let account = hash(Location::Account(address));
        let storage = hash(Location::Storage(address, slot));
        assert_ne!(account, storage);
        assert_ne!(account, hash(Location::Storage(address, U256::ZERO)));
        for i in 0..20 {
            let mut other = address;
            other[i] ^= 1;
            assert_ne!(hash(Location::Account(other)), account, "address byte {i}");
            assert_ne!(
                hash(Location::Storage(other, slot)),
                storage,
                "address byte {i}"
            );
        }
        for i in 0..32 {
            let mut bytes = slot.to_be_bytes::<32>();
            bytes[i] ^= 1;
            let other = U256::from_be_bytes(bytes);
            assert_ne!(
                hash(Location::Storage(address, other)),
                storage,
                "slot byte {i}"
            );
        }
    }

    #[test]
    fn reads_see_the_latest_lower_write() {
        let mv = MvMemory::new(4);
        assert_eq!(mv.read(&slot(1), 3), Read::Base);
        mv.record(0, &[(slot(1), Value::Storage(U256::from(10)))], U256::ZERO);
        mv.record(2, &[(slot(1), Value::Storage(U256::from(30)))], U256::ZERO);
        assert_eq!(mv.read(&slot(1), 0), Read::Base);
        assert_eq!(
            mv.read(&slot(1), 2),
            Read::Written {
                tx: 0,
                value: Value::Storage(U256::from(10))
            }
        );
        assert_eq!(
            mv.read(&slot(1), 3),
            Read::Written {
                tx: 2,
                value: Value::Storage(U256::from(30))
            }
        );
    }

    #[test]
    fn estimates_block_and_rewrites_replace() {
        let mv = MvMemory::new(3);
        assert!(mv.record(
            0,
            &[(slot(1), Value::Storage(U256::from(1)))],
            U256::from(5)
        ));
        mv.convert_writes_to_estimates(0);
        assert_eq!(mv.read(&slot(1), 2), Read::Blocked(0));
        assert_eq!(mv.fee(0), Fee::Estimate);
        // The next incarnation writes another slot: the old entry disappears.
        assert!(mv.record(
            0,
            &[(slot(2), Value::Storage(U256::from(2)))],
            U256::from(7)
        ));
        assert_eq!(mv.read(&slot(1), 2), Read::Base);
        assert_eq!(mv.fee(0), Fee::Known(U256::from(7)));
        // Same location again: nothing new.
        assert!(!mv.record(0, &[(slot(2), Value::Storage(U256::from(3)))], U256::ZERO));
    }

    #[test]
    fn a_big_rewrite_drops_exactly_the_locations_it_no_longer_writes() {
        // Both ways of finding them: a scan for a few locations, a set for
        // many (more than SCAN_MAX comparisons).
        for n in [8u64, 200] {
            let mv = MvMemory::new(2);
            let first: Vec<_> = (0..n)
                .map(|i| (slot(i), Value::Storage(U256::from(i))))
                .collect();
            assert!(mv.record(0, &first, U256::ZERO));
            // The next incarnation writes the even slots again, and new ones.
            let second: Vec<_> = (0..n)
                .filter(|i| i % 2 == 0)
                .chain(n..n + 4)
                .map(|i| (slot(i), Value::Storage(U256::from(i + 1000))))
                .collect();
            assert!(mv.record(0, &second, U256::ZERO));
            for i in 0..n + 4 {
                let read = mv.read(&slot(i), 1);
                if i % 2 == 1 && i < n {
                    assert_eq!(read, Read::Base, "slot {i} of {n}");
                } else {
                    assert_eq!(
                        read,
                        Read::Written {
                            tx: 0,
                            value: Value::Storage(U256::from(i + 1000))
                        },
                        "slot {i} of {n}"
                    );
                }
            }
        }
    }

    #[test]
    fn credits_add_up_over_the_write_below() {
        let a = Address::with_last_byte(7);
        let account = Location::Account(a);
        let info = |balance: u64| {
            Some(AccountInfo {
                balance: U256::from(balance),
                nonce: 3,
                code_hash: pel_state::account::KECCAK_EMPTY,
            })
        };
        let mv = MvMemory::new(6);
        mv.record(
            1,
            &[(account, Value::Delta(Delta::Credit(U256::from(5))))],
            U256::ZERO,
        );
        mv.record(
            3,
            &[(account, Value::Delta(Delta::Credit(U256::from(7))))],
            U256::ZERO,
        );
        assert_eq!(mv.read(&account, 1), Read::Base);
        assert_eq!(
            mv.read(&account, 5),
            Read::BaseDelta {
                tx: 3,
                deltas: Deltas {
                    credit: U256::from(12),
                    ..Deltas::default()
                }
            }
        );
        let full = AccountValue {
            info: info(100),
            last_wipe: Some(0),
        };
        mv.record(2, &[(account, Value::Account(full))], U256::ZERO);
        assert_eq!(
            mv.read(&account, 3),
            Read::Written {
                tx: 2,
                value: Value::Account(full)
            }
        );
        assert_eq!(
            mv.read(&account, 4),
            Read::Written {
                tx: 3,
                value: Value::Account(AccountValue {
                    info: info(107),
                    last_wipe: Some(0),
                })
            }
        );
        // An aborted credit blocks the readers above it, not those below.
        mv.convert_writes_to_estimates(1);
        assert_eq!(
            mv.read(&account, 5),
            Read::Written {
                tx: 3,
                value: Value::Account(AccountValue {
                    info: info(107),
                    last_wipe: Some(0),
                })
            }
        );
        mv.convert_writes_to_estimates(3);
        assert_eq!(mv.read(&account, 5), Read::Blocked(3));
        assert_eq!(mv.read(&account, 2), Read::Blocked(1));
        assert_eq!(
            credited(None, U256::from(9)),
            Some(AccountInfo::with_balance(U256::from(9)))
        );
        // A read past credits sees the full write alone, aborted credits
        // or not.
        assert_eq!(
            mv.read_past_deltas(&account, 5),
            Read::Written {
                tx: 2,
                value: Value::Account(full)
            }
        );
        assert_eq!(mv.read_past_deltas(&account, 2), Read::Base);
        // A credit turned into a full write, and back, is a new write.
        assert!(mv.record(3, &[(account, Value::Account(full))], U256::ZERO));
        assert!(!mv.record(3, &[(account, Value::Account(full))], U256::ZERO));
        assert_eq!(
            mv.read_past_deltas(&account, 5),
            Read::Written {
                tx: 3,
                value: Value::Account(full)
            }
        );
        assert!(mv.record(
            3,
            &[(account, Value::Delta(Delta::Credit(U256::from(1))))],
            U256::ZERO
        ));

        // Debits lower the balance; the highest one's nonce wins.
        let b = Location::Account(Address::with_last_byte(8));
        let mv = MvMemory::new(4);
        let debit = |amount: u64, nonce| {
            Value::Delta(Delta::Debit {
                amount: U256::from(amount),
                nonce,
            })
        };
        mv.record(0, &[(b, debit(3, 1))], U256::ZERO);
        mv.record(
            1,
            &[(b, Value::Delta(Delta::Credit(U256::from(10))))],
            U256::ZERO,
        );
        mv.record(2, &[(b, debit(4, 2))], U256::ZERO);
        let deltas = Deltas {
            credit: U256::from(10),
            debit: U256::from(7),
            nonce: Some(2),
        };
        assert_eq!(mv.read(&b, 3), Read::BaseDelta { tx: 2, deltas });
        let mut expected = info(103);
        if let Some(i) = expected.as_mut() {
            i.nonce = 2;
        }
        assert_eq!(deltas.apply(info(100)), expected);
    }

    #[test]
    fn a_cleared_store_is_as_good_as_new() {
        let mut mv = MvMemory::new(3);
        mv.record(
            1,
            &[(slot(1), Value::Storage(U256::from(1)))],
            U256::from(9),
        );
        mv.convert_writes_to_estimates(1);
        mv.clear();
        mv.set_block_size(5);
        assert_eq!(mv.read(&slot(1), 4), Read::Base);
        assert_eq!(mv.fee(1), Fee::Unknown);
        assert_eq!(mv.fee(4), Fee::Unknown);
        // The old incarnation's locations are forgotten: recording elsewhere
        // leaves nothing behind at the old location, and its write is new.
        assert!(mv.record(1, &[(slot(2), Value::Storage(U256::from(2)))], U256::ZERO));
        assert_eq!(mv.read(&slot(1), 4), Read::Base);
        mv.clear();
        mv.set_block_size(2);
        assert_eq!(mv.read(&slot(2), 1), Read::Base);
        assert!(mv.record(1, &[(slot(2), Value::Storage(U256::from(3)))], U256::ZERO));
    }
}
