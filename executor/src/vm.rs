//! The VM adapter of the Block-STM executor: runs one transaction incarnation
//! on revm against its view of the multi-version memory, recording what it
//! read and turning what it wrote into versioned writes; and re-checks those
//! reads at validation.
//!
//! EVM-specific rules keep real blocks parallel:
//! - the block beneficiary's fee is not paid inside the transaction (a revm
//!   handler with a deferred `reward_beneficiary`): it is kept per transaction
//!   in the multi-version memory and added when a later transaction reads the
//!   beneficiary explicitly, and at commit;
//! - reads are validated by value: an incarnation stays valid as long as every
//!   location it read still resolves to the same value;
//! - the recipient of a plain value transfer is credited without depending
//!   on its balance: when a transaction sends value (below 2^128) to an
//!   account without code that is not the sender, the beneficiary or a
//!   precompile, the transfer cannot fail once the transaction is valid,
//!   and nothing in it depends on the target's balance, nonce or existence,
//!   only on its having no code and a balance below 2^255 (so that no sum of
//!   such credits can overflow). The read records just that
//!   ([`ReadRecord::Credited`]) and looks past the credits of other
//!   transactions ([`MvMemory::read_past_deltas`]), the write is a credit
//!   ([`Delta::Credit`]), and the commit adds the amount to the committed
//!   balance: many payments to one address form no chain. revm computes the
//!   target's new balance from the value read past credits; that result is
//!   replaced by the credit, and an incarnation whose target change is not
//!   exactly that credit (never expected) runs again with an ordinary read.
//!   The sender of such a transfer (without code) is debited the same
//!   way: revm checked that its balance covered the transfer and its gas, so
//!   once the transaction ran, its read of the sender only requires the same
//!   nonce and code and at least the balance it saw
//!   ([`ReadRecord::Debited`]), and its write is a debit (the cost, and the
//!   new nonce): a payer that received credits earlier in the block does not
//!   depend on them. That holds for the beneficiary's payouts too (a pool or
//!   a builder paying out mid-block): its balance seen with the fees known
//!   then only grows as the other fees below it become known, and its
//!   deferred fees count from its last full write, its debits applied after
//!   them ([`MvMemory::read_split`]);
//! - a contract whose balance the transaction only moved is shifted: when
//!   an account with code (not the sender, the beneficiary or a precompile)
//!   had its balance moved only by transfers, none of them failing, and
//!   nothing looked at it (the journal tracks this, see
//!   [`crate::journal::BalanceUse`]), and the transaction changed nothing of
//!   it but the balance, then it ran the same from any starting balance that
//!   covers every transfer out of it: at least the balance it saw less the
//!   lowest balance such a transfer left. The read records that least
//!   balance ([`ReadRecord::Shifted`]; zero when nothing left it: it is then
//!   validated past other transactions' deltas), and the write is the net
//!   change as a delta ([`Delta::Credit`] or [`Delta::Withdraw`]), applied
//!   at commit to the committed balance ([`BalanceShift`]). WETH's ether
//!   balance, moved by routers' deposits and withdrawals inside swaps, then
//!   no longer chains the block's swaps together, nor does any contract's
//!   balance chain the calls into it. Balances stay below 2^254 and each
//!   shift below 2^128, so that no sum overflows.

use crate::{
    block_state::revm_account_info,
    changes::{BalanceShift, ChangeKind, TxChanges},
    error::DbError,
    journal::{BalanceUse, PelJournal, StorageProbe},
    mv_memory::{credited, AccountValue, Delta, Deltas, Fee, Location, MvMemory, Read, Value},
    scheduler::TxIdx,
    CodeCache,
};
use alloy_primitives::{map::AddressMap, Address, B256, U256};
use pel_state::{account::KECCAK_EMPTY, AccountInfo, StateReader};
use revm::{
    bytecode::Bytecode,
    context::{
        result::{EVMError, ExecutionResult, InvalidTransaction},
        BlockEnv, CfgEnv, Context, TxEnv,
    },
    context_interface::{Block, Cfg, ContextSetters, ContextTr, Transaction},
    database_interface::Database,
    handler::{evm::FrameTr, EthFrame, EvmTr, EvmTrError, FrameResult, Handler, MainBuilder},
    interpreter::{interpreter::EthInterpreter, interpreter_action::FrameInit},
    primitives::hardfork::SpecId,
    state::{AccountInfo as RevmAccountInfo, EvmState},
    ExecuteEvm,
};
use smallvec::SmallVec;
use std::{cell::Cell, sync::Arc};

/// Everything the workers of one block share.
#[derive(Debug)]
pub struct Shared<'a, S> {
    /// The state the parallel phase starts from.
    pub base: &'a S,
    /// The multi-version memory.
    pub mv: &'a MvMemory,
    /// Analysed code by hash.
    pub code: &'a Arc<CodeCache>,
    /// The block beneficiary, whose fees are deferred.
    pub beneficiary: Address,
    /// The block's spec.
    pub spec: SpecId,
    /// The spec's precompiles.
    pub precompiles: &'static revm::precompile::Precompiles,
}

/// Adds `fee` to an account the way revm's fee payment would (EIP-161: an
/// account left empty by the touch is removed from Spurious Dragon on).
pub fn credit(info: Option<AccountInfo>, fee: U256, spec: SpecId) -> Option<AccountInfo> {
    let mut account = info.unwrap_or_default();
    account.balance = account.balance.saturating_add(fee);
    if account.is_empty() && spec >= SpecId::SPURIOUS_DRAGON {
        None
    } else {
        Some(account)
    }
}

/// Why a resolution could not produce a value.
#[derive(Debug)]
pub enum Unresolved {
    /// A lower transaction's write is an ESTIMATE.
    Blocked(TxIdx),
    /// The base state failed.
    Db(DbError),
}

impl<S: StateReader> Shared<'_, S> {
    /// The account record transaction `tx` sees.
    pub fn resolve_account(&self, address: Address, tx: TxIdx) -> Result<AccountValue, Unresolved> {
        self.resolve_account_from(address, tx).map(|(_, v)| v)
    }

    /// Like [`Self::resolve_account`], with the writer the value came from
    /// (`None`: the base state; always `None` for the beneficiary, whose value
    /// also depends on deferred fees).
    fn resolve_account_from(
        &self,
        address: Address,
        tx: TxIdx,
    ) -> Result<(Option<TxIdx>, AccountValue), Unresolved> {
        if address == self.beneficiary {
            return self.resolve_beneficiary(tx).map(|v| (None, v));
        }
        self.resolve_plain_account(address, tx)
    }

    fn resolve_plain_account(
        &self,
        address: Address,
        tx: TxIdx,
    ) -> Result<(Option<TxIdx>, AccountValue), Unresolved> {
        self.account_from(address, self.mv.read(&Location::Account(address), tx))
    }

    /// The account record transaction `tx` sees when it ignores credits (see
    /// [`MvMemory::read_past_deltas`]), with its writer.
    fn resolve_past_deltas(
        &self,
        address: Address,
        tx: TxIdx,
    ) -> Result<(Option<TxIdx>, AccountValue), Unresolved> {
        let read = self.mv.read_past_deltas(&Location::Account(address), tx);
        self.account_from(address, read)
    }

    fn account_from(
        &self,
        address: Address,
        read: Read,
    ) -> Result<(Option<TxIdx>, AccountValue), Unresolved> {
        let base = || {
            self.base
                .account(&address)
                .map_err(|e| Unresolved::Db(e.into()))
        };
        match read {
            Read::Written {
                tx: writer,
                value: Value::Account(v),
            } => Ok((Some(writer), v)),
            Read::Written { .. } => Err(Unresolved::Db(DbError::Inconsistent(
                "storage value under an account location",
            ))),
            Read::Blocked(k) => Err(Unresolved::Blocked(k)),
            Read::Base => Ok((
                None,
                AccountValue {
                    info: base()?,
                    last_wipe: None,
                },
            )),
            Read::BaseDelta { tx: writer, deltas } => Ok((
                Some(writer),
                AccountValue {
                    info: deltas.apply(base()?),
                    last_wipe: None,
                },
            )),
        }
    }

    /// The beneficiary as `tx` sees it: its last full write (or base), plus
    /// the deferred fees of every transaction from that writer up to `tx`,
    /// less what its own plain payouts since that write cost it (debits).
    fn resolve_beneficiary(&self, tx: TxIdx) -> Result<AccountValue, Unresolved> {
        let location = Location::Account(self.beneficiary);
        let (full, deltas) = self
            .mv
            .read_split(&location, tx)
            .map_err(Unresolved::Blocked)?;
        let (writer, mut value) = self.account_from(self.beneficiary, full)?;
        for k in writer.unwrap_or(0)..tx {
            match self.mv.fee(k) {
                Fee::Known(fee) => value.info = credit(value.info, fee, self.spec),
                Fee::Unknown => {}
                Fee::Estimate => return Err(Unresolved::Blocked(k)),
            }
        }
        // Fees and debits add up in any order (a payout leaves a nonce: no
        // fee removes the account after it); the fees first, so that no
        // debit is taken from less than the block order gave it.
        if deltas != Deltas::default() {
            value.info = deltas.apply(value.info);
        }
        Ok(value)
    }

    /// A storage slot as `tx` sees it, given the account's last wipe, with
    /// the writer the value came from (`None`: the base state).
    pub fn resolve_storage(
        &self,
        address: Address,
        slot: U256,
        last_wipe: Option<TxIdx>,
        tx: TxIdx,
    ) -> Result<(Option<TxIdx>, U256), Unresolved> {
        match self.mv.read(&Location::Storage(address, slot), tx) {
            Read::Written {
                tx: writer,
                value: Value::Storage(v),
            } => Ok((
                Some(writer),
                if last_wipe.is_some_and(|w| writer < w) {
                    U256::ZERO
                } else {
                    v
                },
            )),
            Read::Written { .. } => Err(Unresolved::Db(DbError::Inconsistent(
                "account value under a storage location",
            ))),
            Read::Blocked(k) => Err(Unresolved::Blocked(k)),
            Read::BaseDelta { .. } => Err(Unresolved::Db(DbError::Inconsistent(
                "account delta under a storage location",
            ))),
            Read::Base if last_wipe.is_some() => Ok((None, U256::ZERO)),
            Read::Base => self
                .base
                .storage(&address, &slot)
                .map(|v| (None, v))
                .map_err(|e| Unresolved::Db(e.into())),
        }
    }

    fn code(&self, hash: B256) -> Result<Bytecode, DbError> {
        if let Some(code) = self.code.get(&hash) {
            return Ok(code);
        }
        let raw = self.base.code(&hash)?.ok_or(DbError::MissingCode(hash))?;
        let code =
            Bytecode::new_raw_checked(raw).map_err(|e| DbError::BadCode(hash, format!("{e:?}")))?;
        self.code.insert(hash, code.clone());
        Ok(code)
    }
}

/// One read an incarnation made, with the value it saw and the transaction
/// whose write it came from (`None`: the base state).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReadRecord {
    /// An account record.
    Account(Address, AccountValue, Option<TxIdx>),
    /// A storage slot.
    Storage(Address, U256, U256, Option<TxIdx>),
    /// The target of a plain transfer, credited lazily: the incarnation only
    /// depends on the account's full record (past credits) having no code
    /// and a balance below 2^255. With the record it saw past credits and
    /// that record's writer (`None`: the base state).
    Credited(Address, AccountValue, Option<TxIdx>),
    /// The sender of a plain transfer that was credited lazily, debited: the
    /// incarnation only depends on the sender keeping this nonce and code,
    /// and at least this balance. With its writer (`None`: the base state).
    Debited(Address, AccountValue, Option<TxIdx>),
    /// An account with code whose balance the incarnation only moved (see
    /// the module docs): it depends on the account keeping the record it
    /// saw but for the balance, and a balance of at least the amount given
    /// (and below [`MAX_SHIFTED_BALANCE`]). With its writer (`None`: the
    /// base state). With a least balance of zero, the deltas of other
    /// transactions cannot matter, and it is validated past them.
    Shifted(Address, AccountValue, U256, Option<TxIdx>),
}

/// Whether a debited sender, seen as `seen` when it ran, still pays as it
/// did: same nonce, code and storage wipe, and no less balance.
fn debit_holds(seen: &AccountValue, now: &AccountValue) -> bool {
    match (seen.info, now.info) {
        (Some(seen_info), Some(now_info)) => {
            now_info.nonce == seen_info.nonce
                && now_info.code_hash == seen_info.code_hash
                && now_info.balance >= seen_info.balance
                && now.last_wipe == seen.last_wipe
        }
        _ => false,
    }
}

/// Whether a shifted account (see [`ReadRecord::Shifted`]), seen as `seen`
/// when it ran, still runs the same: the same nonce, code and storage wipe,
/// at least `least` and less than [`MAX_SHIFTED_BALANCE`].
fn shift_holds(seen: &AccountValue, least: U256, now: &AccountValue) -> bool {
    match (seen.info, now.info) {
        (Some(seen_info), Some(now_info)) => {
            now_info.nonce == seen_info.nonce
                && now_info.code_hash == seen_info.code_hash
                && now_info.balance >= least
                && now_info.balance < MAX_SHIFTED_BALANCE
                && now.last_wipe == seen.last_wipe
        }
        _ => false,
    }
}

/// A shifted account's balance, as read and as validated, stays below this
/// (past deltas, when validated so; each delta is below [`MAX_LAZY_CREDIT`]),
/// so that no sum of shifts and credits can overflow.
const MAX_SHIFTED_BALANCE: U256 = U256::from_limbs([0, 0, 0, 1 << 62]);

/// The plain transfer whose target an incarnation credits lazily.
#[derive(Clone, Copy, Debug)]
struct LazyCredit {
    to: Address,
    value: U256,
}

/// The target of `env` when it may be credited lazily (see the module docs):
/// a call with a value below 2^128 to another account than the beneficiary
/// and the precompiles, without EIP-7702 authorizations (which may give the
/// target code during the transaction), from Spurious Dragon on (before it,
/// a transfer that brings an account into existence is a creation). Whether
/// it has code is checked when it is read.
fn lazy_credit<S>(env: &TxEnv, shared: &Shared<'_, S>) -> Option<LazyCredit> {
    let revm::primitives::TxKind::Call(to) = env.kind else {
        return None;
    };
    (shared.spec >= SpecId::SPURIOUS_DRAGON
        && !env.value.is_zero()
        && env.value < MAX_LAZY_CREDIT
        && to != env.caller
        && to != shared.beneficiary
        && !shared.precompiles.contains(&to)
        && env.authorization_list.is_empty())
    .then_some(LazyCredit {
        to,
        value: env.value,
    })
}

/// Lazy credits are below this, so that a block's worth of them cannot
/// overflow a balance below [`MAX_LAZY_BALANCE`] (the partitioned path's
/// sink credits and payouts follow the same bound).
pub(crate) const MAX_LAZY_CREDIT: U256 = U256::from_limbs([0, 0, 1, 0]);
/// A lazily credited account's full record holds less than this.
const MAX_LAZY_BALANCE: U256 = U256::from_limbs([0, 0, 0, 1 << 63]);

/// Whether an account, read past credits, may be credited lazily: no code,
/// and a balance far from overflowing (also what a partitioned sink needs).
pub(crate) fn lazy_holds(info: Option<AccountInfo>) -> bool {
    info.is_none_or(|i| i.has_no_code() && i.balance < MAX_LAZY_BALANCE)
}

/// The database revm sees while executing one incarnation of transaction `tx`.
#[derive(Debug)]
pub struct VmDb<'a, S> {
    shared: &'a Shared<'a, S>,
    tx: TxIdx,
    accounts: AddressMap<AccountValue>,
    /// The account of the latest lookup (an entry of `accounts`): a
    /// contract's storage reads come in runs, each asking its account's last
    /// wipe. Storage itself needs no cache: revm's journal keeps every slot
    /// it loaded, so each slot is asked at most once per incarnation (a
    /// repeated ask would resolve again and be recorded and validated like
    /// the first).
    last_account: Option<(Address, AccountValue)>,
    reads: Vec<ReadRecord>,
    deferred_error: Option<DbError>,
    /// This incarnation's plain-transfer target, if credited lazily.
    lazy: Option<LazyCredit>,
    /// What the lazy target's read found (value, writer) once it was read
    /// lazily.
    lazy_seen: Option<(AccountValue, Option<TxIdx>)>,
}

impl<'a, S: StateReader> VmDb<'a, S> {
    /// A fresh view for transaction `tx`.
    pub fn new(shared: &'a Shared<'a, S>, tx: TxIdx) -> Self {
        Self {
            shared,
            tx,
            accounts: AddressMap::default(),
            last_account: None,
            reads: Vec::new(),
            deferred_error: None,
            lazy: None,
            lazy_seen: None,
        }
    }

    /// Starts a new incarnation of `tx`, keeping the maps' capacity.
    fn reset(&mut self, tx: TxIdx, lazy: Option<LazyCredit>) {
        self.tx = tx;
        self.accounts.clear();
        self.last_account = None;
        self.reads.clear();
        self.deferred_error = None;
        self.lazy = lazy;
        self.lazy_seen = None;
    }

    fn unresolved(e: Unresolved) -> DbError {
        match e {
            Unresolved::Blocked(k) => DbError::Blocked(k),
            Unresolved::Db(e) => e,
        }
    }

    fn account_value(&mut self, address: Address) -> Result<AccountValue, DbError> {
        if let Some((last, v)) = self.last_account {
            if last == address {
                return Ok(v);
            }
        }
        if let Some(&v) = self.accounts.get(&address) {
            self.last_account = Some((address, v));
            return Ok(v);
        }
        if self.lazy.is_some_and(|lazy| lazy.to == address) {
            let (writer, v) = self
                .shared
                .resolve_past_deltas(address, self.tx)
                .map_err(Self::unresolved)?;
            if lazy_holds(v.info) {
                self.accounts.insert(address, v);
                self.last_account = Some((address, v));
                self.lazy_seen = Some((v, writer));
                self.reads.push(ReadRecord::Credited(address, v, writer));
                return Ok(v);
            }
        }
        let (writer, v) = self
            .shared
            .resolve_account_from(address, self.tx)
            .map_err(Self::unresolved)?;
        self.accounts.insert(address, v);
        self.last_account = Some((address, v));
        self.reads.push(ReadRecord::Account(address, v, writer));
        Ok(v)
    }
}

impl<S: StateReader> StorageProbe for VmDb<'_, S> {
    fn has_storage(&mut self, address: Address) -> bool {
        match self.account_value(address) {
            Ok(v) if v.last_wipe.is_some() => false,
            Ok(_) => match self.shared.base.has_storage(&address) {
                Ok(has) => has,
                Err(e) => {
                    self.deferred_error = Some(e.into());
                    false
                }
            },
            Err(e) => {
                self.deferred_error = Some(e);
                false
            }
        }
    }
}

impl<S: StateReader> Database for VmDb<'_, S> {
    type Error = DbError;

    fn basic(&mut self, address: Address) -> Result<Option<RevmAccountInfo>, DbError> {
        let Some(info) = self.account_value(address)?.info else {
            return Ok(None);
        };
        let code = if info.has_no_code() {
            None
        } else {
            Some(self.shared.code(info.code_hash)?)
        };
        Ok(Some(revm_account_info(info, code)))
    }

    fn code_by_hash(&mut self, code_hash: B256) -> Result<Bytecode, DbError> {
        if code_hash == KECCAK_EMPTY || code_hash == B256::ZERO {
            return Ok(Bytecode::default());
        }
        self.shared.code(code_hash)
    }

    fn storage(&mut self, address: Address, index: U256) -> Result<U256, DbError> {
        let last_wipe = self.account_value(address)?.last_wipe;
        let (writer, value) = self
            .shared
            .resolve_storage(address, index, last_wipe, self.tx)
            .map_err(Self::unresolved)?;
        self.reads
            .push(ReadRecord::Storage(address, index, value, writer));
        Ok(value)
    }

    fn block_hash(&mut self, number: u64) -> Result<B256, DbError> {
        self.shared
            .base
            .block_hash(number)?
            .ok_or(DbError::MissingBlockHash(number))
    }
}

/// Re-resolves every read of an incarnation of `tx`; true when all still hold.
///
/// A read that came from the base state and still finds no write below `tx`
/// holds without reading the base again (the base does not change during the
/// block, and a storage read's wipe context is validated with its account's
/// read, which precedes it). Every other read is compared by value.
pub fn validate<S: StateReader>(shared: &Shared<'_, S>, tx: TxIdx, reads: &[ReadRecord]) -> bool {
    // The validated accounts' wipe contexts: a handful per transaction, so a
    // linear list on the stack beats a hash map (and its allocation).
    let mut wipes: SmallVec<[(Address, Option<TxIdx>); 8]> = SmallVec::new();
    let wipe_of = |wipes: &SmallVec<[(Address, Option<TxIdx>); 8]>, address: &Address| {
        wipes.iter().find(|(a, _)| a == address).map(|(_, w)| *w)
    };
    for read in reads {
        match read {
            ReadRecord::Account(address, seen, from) => {
                if from.is_none()
                    && *address != shared.beneficiary
                    && shared.mv.read(&Location::Account(*address), tx) == Read::Base
                {
                    wipes.push((*address, seen.last_wipe));
                    continue;
                }
                match shared.resolve_account(*address, tx) {
                    Ok(now) if now == *seen => {
                        wipes.push((*address, now.last_wipe));
                    }
                    _ => return false,
                }
            }
            ReadRecord::Storage(address, slot, seen, from) => {
                let validated_wipe = wipe_of(&wipes, address);
                if from.is_none()
                    && validated_wipe.is_some()
                    && shared.mv.read(&Location::Storage(*address, *slot), tx) == Read::Base
                {
                    continue;
                }
                let last_wipe = match validated_wipe {
                    Some(w) => w,
                    None => match shared.resolve_account(*address, tx) {
                        Ok(v) => v.last_wipe,
                        Err(_) => return false,
                    },
                };
                match shared.resolve_storage(*address, *slot, last_wipe, tx) {
                    Ok((_, now)) if now == *seen => {}
                    _ => return false,
                }
            }
            ReadRecord::Credited(address, ..) => match shared.resolve_past_deltas(*address, tx) {
                Ok((_, now)) if lazy_holds(now.info) => {}
                _ => return false,
            },
            ReadRecord::Debited(address, seen, _) => match shared.resolve_account(*address, tx) {
                Ok(now) if debit_holds(seen, &now) => wipes.push((*address, now.last_wipe)),
                _ => return false,
            },
            ReadRecord::Shifted(address, seen, least, from) => {
                let location = Location::Account(*address);
                let now = if least.is_zero() {
                    if from.is_none() && shared.mv.read_past_deltas(&location, tx) == Read::Base {
                        wipes.push((*address, seen.last_wipe));
                        continue;
                    }
                    shared.resolve_past_deltas(*address, tx).map(|(_, v)| v)
                } else {
                    shared.resolve_account(*address, tx)
                };
                match now {
                    Ok(now) if shift_holds(seen, *least, &now) => {
                        wipes.push((*address, now.last_wipe));
                    }
                    _ => return false,
                }
            }
        }
    }
    true
}

/// A revm handler that runs transactions exactly as mainnet's, except that the
/// beneficiary's fee is computed, not paid.
#[derive(Debug)]
pub struct DeferredFeeHandler<EVM, ERROR, FRAME> {
    fee: Cell<U256>,
    _phantom: std::marker::PhantomData<(EVM, ERROR, FRAME)>,
}

impl<EVM, ERROR, FRAME> Default for DeferredFeeHandler<EVM, ERROR, FRAME> {
    fn default() -> Self {
        Self {
            fee: Cell::new(U256::ZERO),
            _phantom: std::marker::PhantomData,
        }
    }
}

impl<EVM, ERROR, FRAME> DeferredFeeHandler<EVM, ERROR, FRAME> {
    /// The fee the last transaction owes the beneficiary.
    pub fn fee(&self) -> U256 {
        self.fee.get()
    }
}

impl<EVM, ERROR, FRAME> Handler for DeferredFeeHandler<EVM, ERROR, FRAME>
where
    EVM: EvmTr<
        Context: ContextTr<Journal: revm::context_interface::JournalTr<State = EvmState>>,
        Frame = FRAME,
    >,
    ERROR: EvmTrError<EVM>,
    FRAME: FrameTr<FrameResult = FrameResult, FrameInit = FrameInit>,
{
    type Evm = EVM;
    type Error = ERROR;
    type HaltReason = revm::context::result::HaltReason;

    fn reward_beneficiary(
        &self,
        evm: &mut Self::Evm,
        exec_result: &mut FrameResult,
    ) -> Result<(), Self::Error> {
        // Same amount as revm's `post_execution::reward_beneficiary`.
        let ctx = evm.ctx();
        if ctx.cfg().is_fee_charge_disabled() {
            self.fee.set(U256::ZERO);
            return Ok(());
        }
        let basefee = ctx.block().basefee() as u128;
        let effective_gas_price = ctx.tx().effective_gas_price(basefee);
        let coinbase_gas_price = if ctx.cfg().spec().into().is_enabled_in(SpecId::LONDON) {
            effective_gas_price.saturating_sub(basefee)
        } else {
            effective_gas_price
        };
        let gas = exec_result.gas();
        let used = gas.used().saturating_sub(gas.reservoir());
        self.fee
            .set(U256::from(coinbase_gas_price) * U256::from(used));
        Ok(())
    }
}

/// The revm context of a worker.
pub type VmContext<'a, S> =
    Context<BlockEnv, TxEnv, CfgEnv, VmDb<'a, S>, PelJournal<VmDb<'a, S>>, ()>;
/// The revm instance of a worker.
pub type VmEvm<'a, S> = revm::handler::MainnetEvm<VmContext<'a, S>>;

/// A worker's EVM for the block.
pub fn new_vm<'a, S: StateReader>(
    shared: &'a Shared<'a, S>,
    cfg: CfgEnv,
    block: BlockEnv,
) -> VmEvm<'a, S> {
    let spec = cfg.spec;
    let mut ctx = VmContext::<S>::new(VmDb::new(shared, 0), spec).with_cfg(cfg);
    ctx.journaled_state.track_balances();
    ctx.block = block;
    ctx.build_mainnet()
}

/// What one incarnation produced (returned by value once per incarnation;
/// boxing the large variant would cost an allocation each time).
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
pub enum Incarnated {
    /// It read an ESTIMATE of this lower transaction.
    Blocked(TxIdx),
    /// It ran (or was rejected): its reads, writes, and outcome.
    Done {
        /// What it read.
        reads: Vec<ReadRecord>,
        /// Versioned writes.
        writes: Vec<(Location, Value)>,
        /// Its beneficiary fee.
        fee: U256,
        /// revm's result with the state changes, or the error.
        outcome: TxOutcome,
    },
}

/// What an incarnation that ran produced, as the commit step needs it.
#[derive(Debug)]
pub struct Executed {
    /// revm's result.
    pub result: ExecutionResult,
    /// Its state changes, without the lazily credited target's.
    pub changes: TxChanges,
    /// Its fee to the beneficiary.
    pub fee: U256,
    /// The lazily credited target and amount (see the module docs): the
    /// commit raises the committed balance by it.
    pub credit: Option<(Address, U256)>,
    /// The debited sender, the amount and its new nonce: the commit lowers
    /// the committed balance by it and sets the nonce.
    pub debit: Option<(Address, U256, u64)>,
}

/// A transaction's final result as the commit step needs it.
pub type TxOutcome = Result<Executed, EVMError<DbError, InvalidTransaction>>;

/// Runs one incarnation of transaction `tx`.
pub fn execute<'a, S: StateReader>(
    evm: &mut VmEvm<'a, S>,
    shared: &'a Shared<'a, S>,
    tx: TxIdx,
    env: &TxEnv,
) -> Incarnated {
    let lazy = lazy_credit(env, shared);
    match execute_with(evm, shared, tx, env, lazy) {
        // Never expected (see the module docs): run with an ordinary read.
        None => execute_with(evm, shared, tx, env, None).unwrap_or_else(|| Incarnated::Done {
            reads: Vec::new(),
            writes: Vec::new(),
            fee: U256::ZERO,
            outcome: Err(EVMError::Custom("lazy credit without a target".into())),
        }),
        Some(done) => done,
    }
}

/// One run of [`execute`] with `lazy` as the lazily credited target; `None`
/// when the target was read lazily but its change is not the plain credit.
fn execute_with<'a, S: StateReader>(
    evm: &mut VmEvm<'a, S>,
    shared: &'a Shared<'a, S>,
    tx: TxIdx,
    env: &TxEnv,
    lazy: Option<LazyCredit>,
) -> Option<Incarnated> {
    evm.ctx.journaled_state.inner.database.reset(tx, lazy);
    evm.ctx.journaled_state.clear_balance_uses();
    evm.ctx.set_tx(env.clone());
    let mut handler = DeferredFeeHandler::<
        _,
        EVMError<DbError, InvalidTransaction>,
        EthFrame<EthInterpreter>,
    >::default();
    let result = handler.run(evm);
    let state = evm.finalize();
    let (db, uses) = evm.ctx.journaled_state.database_and_uses();
    // The read set leaves with the result, copied at its own size (it is
    // kept until the block ends: handing over the worker's buffer, sized for
    // the largest read set it met, cost every incarnation that much fresh
    // memory); the worker's buffer and maps stay for reuse.
    let mut reads = db.reads.to_vec();
    db.reads.clear();
    if let Some(e) = db.deferred_error.take() {
        return Some(match e {
            DbError::Blocked(k) => Incarnated::Blocked(k),
            e => Incarnated::Done {
                reads,
                writes: Vec::new(),
                fee: U256::ZERO,
                outcome: Err(EVMError::Database(e)),
            },
        });
    }
    Some(match result {
        Err(EVMError::Database(DbError::Blocked(k))) => Incarnated::Blocked(k),
        Err(e) => Incarnated::Done {
            reads,
            writes: Vec::new(),
            fee: U256::ZERO,
            outcome: Err(e),
        },
        Ok(result) => {
            let mut changes = TxChanges::from_state(state);
            let credit = take_credit(db, &mut changes);
            if credit.is_none() && db.lazy_seen.is_some() {
                return None;
            }
            let debit = credit.and_then(|_| take_debit(env.caller, &mut changes, &mut reads));
            shift_balances(shared, env.caller, uses, &mut changes, &mut reads);
            // Code is content-addressed: publishing it early is safe even if
            // this incarnation is later aborted.
            for change in &changes.0 {
                if let Some(code) = &change.code {
                    if shared.code.get(&change.info.code_hash).is_none() {
                        shared.code.insert(change.info.code_hash, code.clone());
                    }
                }
            }
            // The credit and the debit follow the writes revm reported.
            let deltas = usize::from(credit.is_some()) + usize::from(debit.is_some());
            let mut writes = extract_writes(&changes, &db.accounts, tx, deltas);
            if let Some((to, value)) = credit {
                writes.push((Location::Account(to), Value::Delta(Delta::Credit(value))));
            }
            if let Some((from, amount, nonce)) = debit {
                let debit = Delta::Debit { amount, nonce };
                writes.push((Location::Account(from), Value::Delta(debit)));
            }
            let fee = handler.fee();
            Incarnated::Done {
                reads,
                writes,
                fee,
                outcome: Ok(Executed {
                    result,
                    changes,
                    fee,
                    credit,
                    debit,
                }),
            }
        }
    })
}

/// Takes the lazily credited target's change out of `changes` when it is
/// exactly the credit (the record it read, its balance raised by the value),
/// and returns the target and amount.
fn take_credit<S>(db: &VmDb<'_, S>, changes: &mut TxChanges) -> Option<(Address, U256)> {
    let (lazy, (seen, _)) = (db.lazy?, db.lazy_seen?);
    let i = changes.0.iter().position(|c| c.address == lazy.to)?;
    let change = &changes.0[i];
    let plain = change.kind == ChangeKind::Updated
        && change.storage.is_empty()
        && Some(change.info) == credited(seen.info, lazy.value);
    plain.then(|| {
        changes.0.swap_remove(i);
        (lazy.to, lazy.value)
    })
}

/// Takes the sender's change out of `changes` when it is exactly a debit of
/// the record it read (same code, the nonce one up, no more balance), and
/// turns that read into a [`ReadRecord::Debited`]; returns the sender, the
/// amount and the new nonce. Only for a transfer whose target was credited.
fn take_debit(
    sender: Address,
    changes: &mut TxChanges,
    reads: &mut [ReadRecord],
) -> Option<(Address, U256, u64)> {
    let read = reads
        .iter_mut()
        .find(|r| matches!(r, ReadRecord::Account(a, ..) if *a == sender))?;
    let ReadRecord::Account(_, seen, from) = *read else {
        return None;
    };
    let before = seen.info?;
    let i = changes.0.iter().position(|c| c.address == sender)?;
    let change = &changes.0[i];
    let after = change.info;
    // A sender with code (EIP-7702) keeps an ordinary record: a delta that
    // sets a nonce never lies under a shifted account's reads, which are
    // validated past deltas.
    let plain = change.kind == ChangeKind::Updated
        && change.storage.is_empty()
        && before.has_no_code()
        && after.code_hash == before.code_hash
        && Some(after.nonce) == before.nonce.checked_add(1)
        && after.balance <= before.balance;
    if !plain {
        return None;
    }
    *read = ReadRecord::Debited(sender, seen, from);
    changes.0.swap_remove(i);
    Some((sender, before.balance - after.balance, after.nonce))
}

/// Turns the ordinary reads of accounts with code whose balance the
/// incarnation only moved through transfers (see the module docs) into
/// [`ReadRecord::Shifted`], and their changes into balance shifts.
fn shift_balances<S>(
    shared: &Shared<'_, S>,
    sender: Address,
    uses: &[BalanceUse],
    changes: &mut TxChanges,
    reads: &mut [ReadRecord],
) {
    for read in reads.iter_mut() {
        let ReadRecord::Account(address, seen, from) = *read else {
            continue;
        };
        let Some(info) = seen.info else {
            continue;
        };
        if info.has_no_code()
            || info.balance >= MAX_SHIFTED_BALANCE
            || address == sender
            || address == shared.beneficiary
        {
            continue;
        }
        let used = uses.iter().find(|u| u.address == address);
        if used.is_some_and(|u| u.looked_at || u.received >= MAX_LAZY_CREDIT)
            || shared.precompiles.contains(&address)
        {
            continue;
        }
        if let Some(change) = changes.0.iter_mut().find(|c| c.address == address) {
            let shift = BalanceShift::between(info.balance, change.info.balance);
            let only_balance = change.kind == ChangeKind::Updated
                && change.info.code_hash == info.code_hash
                && change.info.nonce == info.nonce
                && shift.amount() < MAX_LAZY_CREDIT;
            if !only_balance {
                continue;
            }
            change.shift = Some(shift);
        }
        // Every transfer out of it stays covered from this balance on.
        let least = used
            .and_then(|u| u.lowest_left)
            .map_or(U256::ZERO, |left| info.balance.saturating_sub(left));
        *read = ReadRecord::Shifted(address, seen, least, from);
    }
}

/// Turns revm's state changes into versioned writes, following the same rules
/// as [`crate::BlockState`]'s commit; with room for `extra` more, so that
/// appending a transfer's deltas does not reallocate.
fn extract_writes(
    changes: &TxChanges,
    read: &AddressMap<AccountValue>,
    tx: TxIdx,
    extra: usize,
) -> Vec<(Location, Value)> {
    let slots: usize = changes.0.iter().map(|c| c.storage.len()).sum();
    let mut writes = Vec::with_capacity(changes.0.len() + slots + extra);
    for change in &changes.0 {
        let address = change.address;
        let before = read.get(&address).copied().unwrap_or(AccountValue {
            info: None,
            last_wipe: None,
        });
        let account = |info, last_wipe| {
            (
                Location::Account(address),
                Value::Account(AccountValue { info, last_wipe }),
            )
        };
        match change.kind {
            ChangeKind::SelfDestructed => writes.push(account(None, Some(tx))),
            ChangeKind::Emptied => {
                if before.info.is_some() {
                    writes.push(account(None, Some(tx)));
                }
            }
            ChangeKind::Created => writes.push(account(Some(change.info), Some(tx))),
            ChangeKind::Updated => match change.shift {
                Some(BalanceShift::Up(amount)) if !amount.is_zero() => writes.push((
                    Location::Account(address),
                    Value::Delta(Delta::Credit(amount)),
                )),
                Some(BalanceShift::Down(amount)) if !amount.is_zero() => writes.push((
                    Location::Account(address),
                    Value::Delta(Delta::Withdraw(amount)),
                )),
                Some(_) => {}
                None => {
                    if before.info != Some(change.info) {
                        writes.push(account(Some(change.info), before.last_wipe));
                    }
                }
            },
        }
        for (slot, _, present) in &change.storage {
            writes.push((Location::Storage(address, *slot), Value::Storage(*present)));
        }
    }
    writes
}

#[cfg(test)]
mod tests {
    use super::*;
    use pel_state::InMemoryState;

    /// The block beneficiary of these tests.
    const BENEFICIARY: Address = Address::with_last_byte(0xcb);

    /// What the workers of a Cancun block with [`BENEFICIARY`] share.
    fn shared<'a>(
        base: &'a InMemoryState,
        mv: &'a MvMemory,
        code: &'a Arc<CodeCache>,
    ) -> Shared<'a, InMemoryState> {
        Shared {
            base,
            mv,
            code,
            beneficiary: BENEFICIARY,
            spec: SpecId::CANCUN,
            precompiles: revm::precompile::Precompiles::new(
                revm::precompile::PrecompileSpecId::from_spec_id(SpecId::CANCUN),
            ),
        }
    }

    /// A shifted contract stays valid while its balance covers what its
    /// transaction sent (the least balance recorded) and its nonce and code
    /// stay; with no least balance, other transactions' deltas do not matter,
    /// even aborted ones.
    #[test]
    fn a_shifted_contract_holds_while_its_balance_covers_what_it_sent() {
        let contract = Address::with_last_byte(0xc7);
        let mut base = InMemoryState::new();
        let code_hash = base.insert_code(alloy_primitives::Bytes::from_static(&[0x00]));
        let info = AccountInfo {
            balance: U256::from(100),
            nonce: 1,
            code_hash,
        };
        base.insert_account(contract, info, []);
        let mv = MvMemory::new(4);
        let code = Arc::new(CodeCache::default());
        let shared = shared(&base, &mv, &code);
        let seen = shared.resolve_account(contract, 3).unwrap();
        let needs_30 = [ReadRecord::Shifted(contract, seen, U256::from(30), None)];
        let needs_none = [ReadRecord::Shifted(contract, seen, U256::ZERO, None)];
        let location = Location::Account(contract);
        let delta = |tx, delta| mv.record(tx, &[(location, Value::Delta(delta))], U256::ZERO);
        assert!(validate(&shared, 3, &needs_30));
        // Another transaction withdrew some: 40 left still covers it.
        delta(0, Delta::Withdraw(U256::from(60)));
        assert!(validate(&shared, 3, &needs_30));
        assert!(validate(&shared, 3, &needs_none));
        // 20 left does not.
        delta(1, Delta::Withdraw(U256::from(20)));
        assert!(!validate(&shared, 3, &needs_30));
        assert!(validate(&shared, 3, &needs_none));
        // A credit brings it back.
        delta(2, Delta::Credit(U256::from(15)));
        assert!(validate(&shared, 3, &needs_30));
        // An aborted delta below: unknown, unless nothing is needed.
        mv.convert_writes_to_estimates(2);
        assert!(!validate(&shared, 3, &needs_30));
        assert!(validate(&shared, 3, &needs_none));
        // Anything else of the record changed: neither holds.
        let bumped = AccountValue {
            info: Some(AccountInfo { nonce: 2, ..info }),
            last_wipe: None,
        };
        mv.record(1, &[(location, Value::Account(bumped))], U256::ZERO);
        assert!(!validate(&shared, 3, &needs_30));
        assert!(!validate(&shared, 3, &needs_none));
    }

    /// The beneficiary's payouts are debits: it is seen as its block-start
    /// record, plus every fee below, less its payouts, whatever order they
    /// were recorded in (a debit taken before the fees that cover it would
    /// have been cut at zero).
    #[test]
    fn the_beneficiarys_payouts_come_off_its_fees() {
        let beneficiary = BENEFICIARY;
        let base = InMemoryState::new();
        let mv = MvMemory::new(4);
        let code = Arc::new(CodeCache::default());
        let shared = shared(&base, &mv, &code);
        let location = Location::Account(beneficiary);
        let balance = |tx| {
            shared
                .resolve_account(beneficiary, tx)
                .unwrap()
                .info
                .map(|i| (i.balance, i.nonce))
        };
        // Transaction 1, a payout, recorded first: 20 of the 30 that
        // transaction 0's fee brings.
        let payout = Delta::Debit {
            amount: U256::from(20),
            nonce: 1,
        };
        mv.record(1, &[(location, Value::Delta(payout))], U256::from(1));
        mv.record(0, &[], U256::from(30));
        mv.record(2, &[], U256::from(5));
        assert_eq!(balance(1), Some((U256::from(30), 0)));
        assert_eq!(balance(2), Some((U256::from(11), 1)));
        assert_eq!(balance(3), Some((U256::from(16), 1)));
        // Seen at 30 by the payout: still covered while fees only grow.
        let seen = shared.resolve_account(beneficiary, 1).unwrap();
        let reads = [ReadRecord::Debited(beneficiary, seen, None)];
        assert!(validate(&shared, 1, &reads));
        mv.record(0, &[], U256::from(29));
        assert!(!validate(&shared, 1, &reads));
        // A full write below resets where fees and debits count from.
        let written = AccountValue {
            info: Some(AccountInfo::with_balance(U256::from(70))),
            last_wipe: None,
        };
        mv.record(0, &[(location, Value::Account(written))], U256::from(2));
        assert_eq!(balance(3), Some((U256::from(70 + 2 + 1 + 5 - 20), 1)));
    }

    /// A debited sender stays valid while it keeps its nonce and at least
    /// the balance it saw, and not once a credit it relied on is withdrawn
    /// (its crediting transaction re-ran without it).
    #[test]
    fn a_debit_holds_while_the_balance_it_saw_remains() {
        let sender = Address::with_last_byte(1);
        let mut base = InMemoryState::new();
        base.insert_account(sender, AccountInfo::with_balance(U256::from(100)), []);
        let mv = MvMemory::new(3);
        let code = Arc::new(CodeCache::default());
        let shared = shared(&base, &mv, &code);
        let credit = |amount: u64| {
            let delta = Delta::Credit(U256::from(amount));
            mv.record(
                0,
                &[(Location::Account(sender), Value::Delta(delta))],
                U256::ZERO,
            );
        };
        credit(1_000);
        let seen = shared.resolve_account(sender, 2).unwrap();
        assert_eq!(seen.info.map(|i| i.balance), Some(U256::from(1_100)));
        let reads = [ReadRecord::Debited(sender, seen, Some(0))];
        assert!(validate(&shared, 2, &reads));
        // More than it saw: still valid.
        credit(5_000);
        assert!(validate(&shared, 2, &reads));
        // Less: the balance check may fail now.
        credit(10);
        assert!(!validate(&shared, 2, &reads));
        // A lower transaction of the same sender changes its nonce.
        credit(1_000);
        let debit = Delta::Debit {
            amount: U256::ZERO,
            nonce: 1,
        };
        mv.record(
            1,
            &[(Location::Account(sender), Value::Delta(debit))],
            U256::ZERO,
        );
        assert!(!validate(&shared, 2, &reads));
    }
}
