//! [`PelJournal`]: revm's journal with EIP-7610 added.
//!
//! EIP-7610 makes a contract creation collide not only with an account that has
//! code or a nonce but also with one that has non-empty storage. revm 43 checks
//! code and nonce only, so this wrapper asks the database about storage before
//! delegating `create_account_checkpoint`; every other method delegates as is.
//! Such accounts (storage, no code, nonce 0) exist on mainnet (a few dozen,
//! left by early failed deployments) and in the official tests.
//!
//! It can also *watch* a few accounts: it then notes whether the running code
//! looked at one of them (`BALANCE`, `EXTCODE*`, a call to it, a
//! self-destruct paying it). The interpreter reaches other accounts only
//! through `load_account_info_skip_cold_load` and `selfdestruct`; the
//! handler's own loads of the transaction's sender go through the `_mut`
//! loads, which are not watched. The partitioned executor watches the block
//! beneficiary while one of its own payments runs, and the accounts it
//! credits across bins (its *sinks*) while any other transaction runs.
//!
//! It can also *track balances* (the Block-STM executor's workers do): it
//! then notes, per account, how the transaction used its balance
//! ([`BalanceUse`]). A balance is *looked at* when code reads it (`BALANCE`,
//! `SELFBALANCE`, and `EXTCODEHASH`: every load without code), when the
//! handler loads the account to change it outside a transfer (the sender,
//! a creation's caller, EIP-7702 authorities), when it self-destructs or is
//! paid by a self-destruct, and when a transfer from it fails. Otherwise it
//! only moved through transfers, each from it checked against its balance
//! then: the lowest balance such a transfer left is noted, and what it
//! received. For an account with code (never empty, so no gas cost or
//! EIP-161 rule sees its balance), the transaction then runs the same from
//! any starting balance that keeps every such transfer covered.

use revm::bytecode::Bytecode;
use revm::context::journal::Journal;
use revm::context_interface::{
    context::{SStoreResult, SelfDestructResult},
    journaled_state::{
        AccountInfoLoad, AccountLoad, JournalCheckpoint, JournalLoadError, StateLoad, TransferError,
    },
    Database, JournalTr,
};
use revm::primitives::{hardfork::SpecId, StorageKey, StorageValue};
use revm::primitives::{Address, AddressMap, AddressSet, HashSet, Log, B256, U256};
use revm::state::{Account, EvmState};

/// A database that can tell whether an account has any storage.
pub trait StorageProbe {
    /// True when `address` currently has at least one non-zero storage slot.
    /// A backend error is recorded by the implementation and surfaces after
    /// the transaction; the probe then answers `false`.
    fn has_storage(&mut self, address: Address) -> bool;
}

/// How one transaction used an account's balance (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BalanceUse {
    /// The account.
    pub address: Address,
    /// Its balance was looked at: what ran depends on its exact value.
    pub looked_at: bool,
    /// The lowest balance a successful transfer out of it left (`None`:
    /// nothing was sent from it).
    pub lowest_left: Option<U256>,
    /// What it received through transfers, in all (saturating).
    pub received: U256,
}

/// revm's [`Journal`] with the EIP-7610 creation-collision rule.
#[derive(Debug)]
pub struct PelJournal<DB> {
    /// The wrapped revm journal (its `database` field is the block state).
    pub inner: Journal<DB>,
    /// The watched accounts (a handful: looked up one by one).
    watched: Vec<Address>,
    /// Whether the running code looked at a watched account since
    /// [`PelJournal::watch`].
    seen: bool,
    /// Whether balances are tracked.
    tracking: bool,
    /// The tracked balance uses since [`PelJournal::clear_balance_uses`] (a
    /// handful per transaction: looked up one by one).
    uses: Vec<BalanceUse>,
}

impl<DB> PelJournal<DB> {
    /// Watches `addresses` (those alone) from now on, forgetting what was
    /// seen.
    pub fn watch(&mut self, addresses: &[Address]) {
        self.watched.clear();
        self.watched.extend_from_slice(addresses);
        self.seen = false;
    }

    /// Whether code looked at a watched account since [`PelJournal::watch`].
    pub fn watched_seen(&self) -> bool {
        self.seen
    }

    #[inline]
    fn note(&mut self, address: Address) {
        if self.watched.contains(&address) {
            self.seen = true;
        }
    }

    /// Tracks balance uses from now on (see the module docs).
    pub fn track_balances(&mut self) {
        self.tracking = true;
    }

    /// Forgets the balance uses noted so far (at a transaction's start).
    pub fn clear_balance_uses(&mut self) {
        self.uses.clear();
    }

    /// The database, beside the balance uses noted since
    /// [`Self::clear_balance_uses`].
    pub fn database_and_uses(&mut self) -> (&mut DB, &[BalanceUse]) {
        (&mut self.inner.database, &self.uses)
    }

    fn balance_use(&mut self, address: Address) -> &mut BalanceUse {
        let i = match self.uses.iter().position(|u| u.address == address) {
            Some(i) => i,
            None => {
                self.uses.push(BalanceUse {
                    address,
                    looked_at: false,
                    lowest_left: None,
                    received: U256::ZERO,
                });
                self.uses.len() - 1
            }
        };
        &mut self.uses[i]
    }

    #[inline]
    fn looked_at(&mut self, address: Address) {
        if self.tracking {
            self.balance_use(address).looked_at = true;
        }
    }
}

impl<DB: Database> PelJournal<DB> {
    /// Notes a transfer of `value` from `from` to `to` that revm just made
    /// (`failed`: it did not, for lack of funds or an overflow).
    fn transferred(&mut self, from: Address, to: Address, value: U256, failed: bool) {
        if !self.tracking || value.is_zero() {
            // A transfer of nothing checks nothing a transfer before it did
            // not (a balance never goes below the lowest one noted).
            return;
        }
        if failed {
            self.looked_at(from);
            self.looked_at(to);
            return;
        }
        let left = self
            .inner
            .db_and_state()
            .1
            .get(&from)
            .map(|a| a.info.balance);
        // A transfer to itself only checked that the balance covered it.
        let left = if from == to {
            left.map(|b| b.saturating_sub(value))
        } else {
            left
        };
        let from_use = self.balance_use(from);
        match left {
            Some(left) => {
                from_use.lowest_left = Some(from_use.lowest_left.map_or(left, |l| l.min(left)))
            }
            None => from_use.looked_at = true,
        }
        let to_use = self.balance_use(to);
        to_use.received = to_use.received.saturating_add(value);
    }
}

impl<DB: Database + StorageProbe> JournalTr for PelJournal<DB> {
    type Database = DB;
    type State = EvmState;
    type JournaledAccount<'a>
        = <Journal<DB> as JournalTr>::JournaledAccount<'a>
    where
        DB: 'a;

    fn new(database: DB) -> Self {
        Self {
            inner: Journal::new(database),
            watched: Vec::new(),
            seen: false,
            tracking: false,
            uses: Vec::new(),
        }
    }

    fn db_and_state(&self) -> (&DB, &EvmState) {
        self.inner.db_and_state()
    }

    fn db_and_state_mut(&mut self) -> (&mut DB, &mut EvmState) {
        self.inner.db_and_state_mut()
    }

    fn sload_skip_cold_load(
        &mut self,
        address: Address,
        key: StorageKey,
        skip_cold_load: bool,
    ) -> Result<StateLoad<StorageValue>, JournalLoadError<DB::Error>> {
        self.inner
            .sload_skip_cold_load(address, key, skip_cold_load)
    }

    fn sstore_skip_cold_load(
        &mut self,
        address: Address,
        key: StorageKey,
        value: StorageValue,
        skip_cold_load: bool,
    ) -> Result<StateLoad<SStoreResult>, JournalLoadError<DB::Error>> {
        self.inner
            .sstore_skip_cold_load(address, key, value, skip_cold_load)
    }

    fn tload(&mut self, address: Address, key: StorageKey) -> StorageValue {
        self.inner.tload(address, key)
    }

    fn tstore(&mut self, address: Address, key: StorageKey, value: StorageValue) {
        self.inner.tstore(address, key, value)
    }

    fn log(&mut self, log: Log) {
        self.inner.log(log)
    }

    fn take_logs(&mut self) -> Vec<Log> {
        self.inner.take_logs()
    }

    fn logs(&self) -> &[Log] {
        self.inner.logs()
    }

    fn selfdestruct(
        &mut self,
        address: Address,
        target: Address,
        skip_cold_load: bool,
    ) -> Result<StateLoad<SelfDestructResult>, JournalLoadError<DB::Error>> {
        self.note(target);
        self.looked_at(address);
        self.looked_at(target);
        self.inner.selfdestruct(address, target, skip_cold_load)
    }

    fn warm_access_list(&mut self, access_list: AddressMap<HashSet<StorageKey>>) {
        self.inner.warm_access_list(access_list)
    }

    fn warm_coinbase_account(&mut self, address: Address) {
        self.inner.warm_coinbase_account(address)
    }

    fn warm_precompiles(&mut self, addresses: &AddressSet) {
        self.inner.warm_precompiles(addresses)
    }

    fn precompile_addresses(&self) -> &AddressSet {
        self.inner.precompile_addresses()
    }

    fn set_spec_id(&mut self, spec_id: SpecId) {
        self.inner.set_spec_id(spec_id)
    }

    fn set_eip7708_config(&mut self, disabled: bool, eip8246_delayed_clear_disabled: bool) {
        self.inner
            .set_eip7708_config(disabled, eip8246_delayed_clear_disabled)
    }

    fn touch_account(&mut self, address: Address) {
        self.inner.touch_account(address)
    }

    fn transfer(
        &mut self,
        from: Address,
        to: Address,
        balance: U256,
    ) -> Result<Option<TransferError>, DB::Error> {
        let result = self.inner.transfer(from, to, balance)?;
        self.transferred(from, to, balance, result.is_some());
        Ok(result)
    }

    fn transfer_loaded(
        &mut self,
        from: Address,
        to: Address,
        balance: U256,
    ) -> Option<TransferError> {
        let result = self.inner.transfer_loaded(from, to, balance);
        self.transferred(from, to, balance, result.is_some());
        result
    }

    #[allow(deprecated)]
    fn caller_accounting_journal_entry(
        &mut self,
        address: Address,
        old_balance: U256,
        bump_nonce: bool,
    ) {
        self.looked_at(address);
        self.inner
            .caller_accounting_journal_entry(address, old_balance, bump_nonce)
    }

    fn balance_incr(&mut self, address: Address, balance: U256) -> Result<(), DB::Error> {
        self.looked_at(address);
        self.inner.balance_incr(address, balance)
    }

    #[allow(deprecated)]
    fn nonce_bump_journal_entry(&mut self, address: Address) {
        self.looked_at(address);
        self.inner.nonce_bump_journal_entry(address)
    }

    fn load_account(&mut self, address: Address) -> Result<StateLoad<&Account>, DB::Error> {
        self.note(address);
        self.inner.load_account(address)
    }

    fn load_account_with_code(
        &mut self,
        address: Address,
    ) -> Result<StateLoad<&Account>, DB::Error> {
        self.note(address);
        self.inner.load_account_with_code(address)
    }

    fn load_account_delegated(
        &mut self,
        address: Address,
    ) -> Result<StateLoad<AccountLoad>, DB::Error> {
        self.note(address);
        self.inner.load_account_delegated(address)
    }

    fn load_account_mut_skip_cold_load(
        &mut self,
        address: Address,
        skip_cold_load: bool,
    ) -> Result<StateLoad<Self::JournaledAccount<'_>>, JournalLoadError<DB::Error>> {
        self.looked_at(address);
        self.inner
            .load_account_mut_skip_cold_load(address, skip_cold_load)
    }

    fn load_account_mut_optional_code(
        &mut self,
        address: Address,
        load_code: bool,
    ) -> Result<StateLoad<Self::JournaledAccount<'_>>, DB::Error> {
        self.looked_at(address);
        self.inner
            .load_account_mut_optional_code(address, load_code)
    }

    fn set_code_with_hash(&mut self, address: Address, code: Bytecode, hash: B256) {
        self.inner.set_code_with_hash(address, code, hash)
    }

    fn checkpoint(&mut self) -> JournalCheckpoint {
        self.inner.checkpoint()
    }

    fn checkpoint_commit(&mut self) {
        self.inner.checkpoint_commit()
    }

    fn checkpoint_revert(&mut self, checkpoint: JournalCheckpoint) {
        self.inner.checkpoint_revert(checkpoint)
    }

    fn create_account_checkpoint(
        &mut self,
        caller: Address,
        address: Address,
        balance: U256,
        spec_id: SpecId,
    ) -> Result<JournalCheckpoint, TransferError> {
        self.looked_at(caller);
        self.looked_at(address);
        // The target was loaded by the caller of this method. Only an account
        // without code and nonce needs the storage probe; revm checks the rest.
        let (db, state) = self.inner.db_and_state_mut();
        if let Some(target) = state.get(&address) {
            if target.info.nonce == 0
                && target.info.is_empty_code_hash()
                && !target.is_created()
                && db.has_storage(address)
            {
                return Err(TransferError::CreateCollision);
            }
        }
        self.inner
            .create_account_checkpoint(caller, address, balance, spec_id)
    }

    fn depth(&self) -> usize {
        self.inner.depth()
    }

    fn commit_tx(&mut self) {
        self.inner.commit_tx()
    }

    fn discard_tx(&mut self) {
        self.inner.discard_tx()
    }

    fn finalize(&mut self) -> EvmState {
        self.inner.finalize()
    }

    fn load_account_info_skip_cold_load(
        &mut self,
        address: Address,
        load_code: bool,
        skip_cold_load: bool,
    ) -> Result<AccountInfoLoad<'_>, JournalLoadError<DB::Error>> {
        self.note(address);
        if !load_code {
            // `BALANCE`, `SELFBALANCE`, `EXTCODEHASH`.
            self.looked_at(address);
        }
        self.inner
            .load_account_info_skip_cold_load(address, load_code, skip_cold_load)
    }
}
