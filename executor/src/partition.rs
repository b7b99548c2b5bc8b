//! Partitioned execution: the parallel executor's fast path for blocks whose
//! transactions fall into groups that touch disjoint state.
//!
//! Block-STM pays for its generality on every transaction: each read goes
//! through the multi-version memory, each write is recorded there, each
//! result is validated and then committed in block order by one thread. When
//! a block's transactions can be told apart before they run (transfers
//! between different accounts, ERC-20 transfers between different holders,
//! calls to different contracts), none of that is needed: each worker
//! executes its share of the block in order, exactly as the sequential
//! executor does, on its own [`BlockState`] over the pre-block state, and the
//! shares are checked for conflicts and merged afterwards.
//!
//! 1. **Plan** ([`plan`]): transactions that share a *key* go into one group
//!    (union-find): the sender; the target of a call, unless the call is an
//!    ERC-20 `transfer`, `transferFrom` or `approve` without value, which is
//!    keyed by the token and each holder it names instead, or a plain
//!    transfer with value to a *sink*, which is not keyed by its target: an
//!    account without code that many plain transfers pay and that does
//!    nothing else in the block (an exchange's deposit address), whose
//!    payers would otherwise all fall into one group. In a pool's payout
//!    block (the beneficiary's plain payouts hold most of its gas, and no
//!    call names the beneficiary by `COINBASE`), the payouts to accounts
//!    without code are not keyed by their sender either ([`Payouts`]).
//!    Groups are packed
//!    into one bin per worker, largest first; a bin keeps block order. The
//!    plan is rejected when the bins would be too uneven to pay, when a
//!    transaction pays the block beneficiary or carries EIP-7702
//!    authorizations, or when the beneficiary creates a contract.
//! 2. **Execute**: each bin runs its transactions in block order on its own
//!    revm and [`BlockState`], with the beneficiary's fee deferred (as in the
//!    Block-STM path) and every account and slot a transaction changed
//!    recorded.
//! 3. **Check**: the bins are independent when no account or slot one bin
//!    changed was read or written by another (a bin's cache holds every
//!    account and slot it touched, and the accounts whose whole storage it
//!    probed), and no transaction touched the beneficiary (whose balance
//!    depends on every fee before a read) but its own payments (a pool's
//!    payouts, a builder's payment to the proposer). Those see its balance
//!    only in their balance check (the journal watches the code a payment
//!    runs: code that looks at the beneficiary, by `BALANCE` or a call back
//!    to it, gives the attempt up), which is made on the balance without the
//!    block's fees: if it passes there it passes with them, since fees only
//!    add, and if it fails the attempt is given up. What the payments and the
//!    fees change in its balance adds up in any order; its bin hands it over
//!    like the accounts of the system calls. Split payouts run in several
//!    bins, each from the beneficiary's nonce before it and its balance less
//!    the most the payouts before it may cost: no more than the real
//!    balance, so a check that passes there passes in block order. What they
//!    really cost is summed, and no bin hands the beneficiary over. A sink
//!    is changed by several bins, but only by the plain payments to it,
//!    which run no code and do not depend on its balance; every other
//!    transaction runs with the journal watching the sinks, and one whose
//!    code looks at a sink or that changes one gives the attempt up. What
//!    each bin credited a sink adds up in any order. Then every transaction
//!    saw exactly what it would have seen in block order, since nothing it
//!    read was changed by a transaction outside its bin, and within its bin
//!    the order is the block's.
//! 4. **Merge**: the bins' states are absorbed into the pre-block state,
//!    split payouts are charged to the beneficiary (their cost, and its
//!    nonce after them), the fees are paid to it in block order, each bin's
//!    credits are added to the sinks, and receipts are built with the
//!    block's running gas; then the post-block steps shared with the
//!    sequential executor run.
//!
//! Any transaction that fails, a block limit that does not hold, or a
//! conflict found in step 3 discards the attempt: the caller runs the block
//! through Block-STM instead. The result is therefore always the sequential
//! one; a wrong plan only costs time.

use crate::{
    block::{BlockInput, BlockOutput},
    block_state::{BlockState, CachedState, Written},
    changes::TxChanges,
    error::{DbError, ExecError},
    receipt::TxReceipt,
    scheduler::TxIdx,
    sequential::{self, check_block_limits, finish_block, make_receipt, ExecOptions},
    system,
    vm::{lazy_holds, DeferredFeeHandler, MAX_LAZY_CREDIT},
    ChainConfig, CodeCache,
};
use alloy_primitives::{Address, U256};
use pel_state::{AccountDiff, AccountInfo, DiffOverlay, StateReader};
use revm::{
    context::result::{EVMError, InvalidTransaction},
    context_interface::ContextSetters,
    handler::{EthFrame, Handler},
    interpreter::interpreter::EthInterpreter,
    primitives::{hardfork::SpecId, TxKind},
    ExecuteEvm,
};
use std::collections::BTreeMap;
use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::Instant,
};

/// How a plan groups transactions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Grouping {
    /// By sender, call target, and ERC-20 holder (see the module docs).
    Keys,
    /// By sender only: a plan that usually conflicts, for tests of the
    /// conflict check.
    SenderOnly,
}

/// Which transactions each worker runs.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// One bin per worker, each in block order.
    pub bins: Vec<Vec<TxIdx>>,
    /// Total gas limit over the heaviest bin's: the speedup the plan allows.
    pub predicted: f64,
    /// The share of the block's gas limit in the group of calls into
    /// contracts that reach others (0 when there are none): the part of the
    /// block most likely to meet another group somewhere the plan cannot see.
    pub reaching: f64,
    /// How many groups the transactions fall into.
    pub groups: usize,
    /// Accounts without code that receive many plain transfers and do
    /// nothing else in the block (an exchange's deposit address): their
    /// payments are not keyed by them, so the payers' groups stay apart, and
    /// each bin hands over what it credited them (see [`run`]).
    pub sinks: Vec<Address>,
    /// The block is a pool's payout block (see [`scan`]) and no
    /// call names the beneficiary: its payouts to accounts without code are
    /// not keyed by it, so they spread across the bins, each starting from
    /// the beneficiary's nonce and a bounded balance ([`Payouts`]).
    pub split_payouts: bool,
}

/// What a transaction is grouped by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Key {
    /// Everything about one account.
    Account(Address),
    /// One holder's entries in one token.
    Holder(Address, Address),
    /// Calls into contracts that call other contracts: they may meet
    /// anywhere (a router and an aggregator swapping on one pool, both
    /// wrapping ether), so they all share one group.
    Reaching,
}

/// What the target of a call may touch besides itself, as far as its code
/// tells (see [`classify`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// No code: a transfer.
    Account,
    /// Code that neither calls, creates nor self-destructs: it changes only
    /// its own storage and balance (and its caller's, through the
    /// transaction).
    SelfContained,
    /// Code that may call other contracts (or delegated EIP-7702 code).
    Reaching,
    /// Code that names the block's beneficiary (`COINBASE`): it may pay it
    /// (a searcher's bribe) or read its balance. Grouped like
    /// [`Target::Reaching`]; a block that calls such code does not split
    /// the beneficiary's payouts ([`Plan::split_payouts`]).
    Beneficiary,
}

/// Classifies runtime code by the opcodes it holds (`COINBASE`; `CALL`,
/// `CALLCODE`, `DELEGATECALL`, `STATICCALL`, `CREATE`, `CREATE2`,
/// `SELFDESTRUCT`),
/// skipping push data and the compiler's trailing metadata. A wrong answer
/// only makes a plan conflict (and the block run on Block-STM), never a
/// wrong result.
pub fn classify(code: &[u8]) -> Target {
    if code.is_empty() {
        return Target::Account;
    }
    if code.starts_with(&[0xef, 0x01]) {
        return Target::Reaching;
    }
    // Solidity and Vyper end the code with CBOR metadata and its length.
    let end = match code.len().checked_sub(2).map(|at| {
        let len = u16::from_be_bytes([code[at], code[at + 1]]) as usize;
        (at, len)
    }) {
        Some((at, len)) if len <= at && (0xa1..=0xa5).contains(&code[at - len]) => at - len,
        _ => code.len(),
    };
    let (mut i, mut reaching) = (0, false);
    while i < end {
        match code[i] {
            0x41 => return Target::Beneficiary,
            0xf0 | 0xf1 | 0xf2 | 0xf4 | 0xf5 | 0xfa | 0xff => reaching = true,
            op @ 0x60..=0x7f => i += (op - 0x5f) as usize,
            _ => {}
        }
        i += 1;
    }
    if reaching {
        Target::Reaching
    } else {
        Target::SelfContained
    }
}

impl Key {
    /// A 64-bit hash of the key, cheaper than a general hasher (the plan
    /// hashes two or three keys a transaction). A collision only joins two
    /// groups.
    pub(crate) fn hash(self) -> u64 {
        /// MurmurHash3's 64-bit finaliser.
        fn mix(mut x: u64) -> u64 {
            x ^= x >> 33;
            x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
            x ^= x >> 33;
            x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
            x ^ (x >> 33)
        }
        fn fold(seed: u64, a: &Address) -> u64 {
            let b = a.as_slice();
            let word = |i: usize| {
                let mut w = [0u8; 8];
                let end = (i + 8).min(20);
                w[..end - i].copy_from_slice(&b[i..end]);
                u64::from_le_bytes(w)
            };
            mix(word(0) ^ mix(word(8) ^ mix(word(16) ^ seed)))
        }
        match self {
            Key::Account(a) => fold(1, &a),
            Key::Holder(token, holder) => fold(fold(2, &token), &holder),
            Key::Reaching => mix(3),
        }
    }
}

/// ERC-20 `transfer(address,uint256)`.
pub(crate) const TRANSFER: [u8; 4] = [0xa9, 0x05, 0x9c, 0xbb];
/// ERC-20 `transferFrom(address,address,uint256)`.
pub(crate) const TRANSFER_FROM: [u8; 4] = [0x23, 0xb8, 0x72, 0xdd];
/// ERC-20 `approve(address,uint256)`.
const APPROVE: [u8; 4] = [0x09, 0x5e, 0xa7, 0xb3];

/// The `i`-th word of `args` as an address, if it is one.
fn address_arg(args: &[u8], i: usize) -> Option<Address> {
    let word = args.get(32 * i..32 * (i + 1))?;
    word[..12]
        .iter()
        .all(|b| *b == 0)
        .then(|| Address::from_slice(&word[12..]))
}

/// The holders an ERC-20 call names, when `data` is one of the three calls
/// with exactly its arguments.
pub(crate) fn erc20_holders(sender: Address, data: &[u8]) -> Option<[Address; 2]> {
    let (selector, args) = (data.get(..4)?, &data[4..]);
    match (selector.try_into().ok()?, args.len()) {
        (TRANSFER, 64) => Some([sender, address_arg(args, 0)?]),
        (TRANSFER_FROM, 96) => Some([address_arg(args, 0)?, address_arg(args, 1)?]),
        (APPROVE, 64) => Some([sender, sender]),
        _ => None,
    }
}

/// The call target whose code [`plan`] asks about for `tx`: calls with data
/// that are not ERC-20 transfers or approvals (a call without data is keyed
/// by its target, whatever it is). The caller may classify these ahead, all
/// at once.
pub fn asks_target(tx: &crate::PreparedTx, beneficiary: Address) -> Option<Address> {
    let TxKind::Call(to) = tx.env.kind else {
        return None;
    };
    let erc20 = || tx.env.value.is_zero() && erc20_holders(tx.sender, &tx.env.data).is_some();
    (to != beneficiary && !(tx.env.data.is_empty() || erc20())).then_some(to)
}

/// Union-find over transaction indices.
struct Groups {
    parent: Vec<u32>,
}

impl Groups {
    fn find(&mut self, mut x: u32) -> u32 {
        while self.parent[x as usize] != x {
            let up = self.parent[self.parent[x as usize] as usize];
            self.parent[x as usize] = up;
            x = up;
        }
        x
    }

    fn union(&mut self, a: u32, b: u32) {
        let (a, b) = (self.find(a), self.find(b));
        // The lower index is the root: a group is named by its first member.
        match a.cmp(&b) {
            std::cmp::Ordering::Less => self.parent[b as usize] = a,
            std::cmp::Ordering::Greater => self.parent[a as usize] = b,
            std::cmp::Ordering::Equal => {}
        }
    }
}

/// What a plan is built by, and what it must allow (a plan that cannot is
/// given up as soon as that is known, so that a block bound for another
/// route stops paying for its plan early).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Limits {
    /// How transactions are grouped.
    pub grouping: Grouping,
    /// The largest share of the block's gas limits that calls into contracts
    /// that reach others may hold ([`Plan::reaching`]).
    pub max_reaching: f64,
    /// How many plain transfers make their target a sink ([`Plan::sinks`]).
    pub min_sink_credits: u32,
    /// The least share of the block's gas limits the beneficiary's payouts,
    /// or a sink's deposits, must hold to be split ([`Plan::split_payouts`]).
    pub min_split_share: f64,
    /// The least [`Plan::predicted`] the caller takes. The plan is given up
    /// early when one group is sure to hold more than its share: the
    /// beneficiary's payouts once a call names the beneficiary.
    pub min_predicted: f64,
}

/// Groups `block`'s transactions and packs the groups into `bins` bins;
/// `None` when a transaction rules the fast path out (see the module docs),
/// or as soon as it is known that the plan would not meet `limits`: calls
/// into contracts that reach others hold more than `max_reaching` of the
/// block's gas limits (their group would hold at least as much,
/// [`Plan::reaching`]), or a call names the beneficiary in a block whose
/// payouts, then one group, hold too much of them for `min_predicted`.
///
/// `target(i, to)` tells what transaction `i`'s call target `to` may reach;
/// it is asked once for each call [`asks_target`] names, in block order, and
/// then for each candidate sink: the target of at least `min_sink_credits`
/// plain transfers ([`Plan::sinks`]).
pub fn plan(
    block: &BlockInput,
    bins: usize,
    limits: &Limits,
    mut target: impl FnMut(TxIdx, Address) -> Target,
) -> Option<Plan> {
    let &Limits {
        grouping,
        max_reaching,
        min_sink_credits,
        min_split_share,
        min_predicted,
    } = limits;
    let n = block.transactions.len();
    let beneficiary = block.header.beneficiary;
    if bins < 2 || n < 2 || u32::try_from(n).is_err() {
        return None;
    }
    // Each key by a hash of it ([`KeyTable`]): a general hash map of the
    // keys themselves cost five times as much on a block of transfers. At
    // most three keys a transaction.
    let mut table = KeyTable::new(n.saturating_mul(3));
    let mut groups = Groups {
        parent: (0..n as u32).collect(),
    };
    // The transactions are read in two passes (each a few cache misses a
    // transaction on a big block): this one, and the loop below, which keeps
    // their gas limits for the sinks' shares and the groups' weights.
    let (total, payout_gas) = scan(block);
    // Split when no call names the beneficiary (decided after the loop,
    // which keys the payouts by their sender only then).
    let payout_gas = payout_gas
        .filter(|gas| grouping == Grouping::Keys && share(*gas, total) >= min_split_share);
    let may_split = payout_gas.is_some();
    // Unsplit, the payouts are one group: the plan cannot allow more than
    // this.
    let unsplit_bound = payout_gas.map_or(f64::INFINITY, |gas| 1.0 / share(gas, total));
    let mut names_beneficiary = false;
    let mut payouts: Vec<(u32, Address)> = Vec::new();
    let mut reaching = None;
    // Plain transfers with value, keyed by their target after the loop.
    let mut plain: Vec<(u32, Address)> = Vec::new();
    let mut reaching_gas = 0u64;
    let mut gas_limits = Vec::with_capacity(n);
    for (i, tx) in block.transactions.iter().enumerate() {
        let i = i as u32;
        let env = &tx.env;
        if !env.authorization_list.is_empty() {
            return None;
        }
        gas_limits.push(env.gas_limit);
        // What the call's target may reach, where the grouping depends on it.
        let reaches = asks_target(tx, beneficiary).map(|to| target(i as TxIdx, to));
        // The beneficiary's own payments are calls: `run_bin` watches that
        // nothing but their balance check sees its balance.
        if tx.sender == beneficiary && env.kind.is_create() {
            return None;
        }
        let mut key = |key: Key| table.insert(&mut groups, i, key);
        match env.kind {
            TxKind::Call(to) if may_split && tx.sender == beneficiary => payouts.push((i, to)),
            _ => key(Key::Account(tx.sender)),
        }
        if grouping == Grouping::SenderOnly {
            continue;
        }
        if let TxKind::Call(to) = env.kind {
            if to == beneficiary {
                return None;
            }
            match erc20_holders(tx.sender, &env.data).filter(|_| env.value.is_zero()) {
                Some(holders) => {
                    for holder in holders {
                        key(Key::Holder(to, holder));
                    }
                }
                // Keyed once the block's sinks are known.
                None if env.data.is_empty() && is_credit(env) => plain.push((i, to)),
                None if env.data.is_empty() => key(Key::Account(to)),
                None => match reaches {
                    // Also keyed by the target itself, so that a plain
                    // payment to it (a deposit into wrapped ether) joins.
                    Some(Target::Reaching | Target::Beneficiary) => {
                        if reaches == Some(Target::Beneficiary) {
                            names_beneficiary = true;
                            if unsplit_bound < min_predicted {
                                return None;
                            }
                        }
                        key(Key::Reaching);
                        key(Key::Account(to));
                        reaching.get_or_insert(i);
                        reaching_gas = reaching_gas.saturating_add(env.gas_limit);
                        if share(reaching_gas, total) > max_reaching {
                            return None;
                        }
                    }
                    _ => key(Key::Account(to)),
                },
            }
        }
    }
    // A split payout is not keyed by the beneficiary, unless its target has
    // code: what that code does (forward the payment to a hot wallet, say)
    // is unknown, so such payouts stay in one group.
    let split_payouts = may_split && !names_beneficiary;
    for &(i, to) in &payouts {
        if !split_payouts || target(i as TxIdx, to) != Target::Account {
            table.insert(&mut groups, i, Key::Account(beneficiary));
        }
    }
    let sinks = if grouping == Grouping::Keys {
        let min = (min_sink_credits.max(1), min_split_share);
        find_sinks(&plain, (&gas_limits, total), &table, min, &mut target)
    } else {
        Vec::new()
    };
    for &(i, to) in &plain {
        if !sinks.contains(&to) {
            table.insert(&mut groups, i, Key::Account(to));
        }
    }
    // Group weights (gas limits), then largest first into the lightest bin.
    let mut weight = vec![0u64; n];
    for (i, gas) in gas_limits.into_iter().enumerate() {
        let root = groups.find(i as u32) as usize;
        weight[root] = weight[root].saturating_add(gas);
    }
    let reaching = match reaching {
        Some(tx) => share(weight[groups.find(tx) as usize], total),
        None => 0.0,
    };
    let mut roots: Vec<u32> = (0..n as u32)
        .filter(|&i| groups.parent[i as usize] == i)
        .collect();
    let roots_count = roots.len();
    roots.sort_unstable_by_key(|&r| std::cmp::Reverse(weight[r as usize]));
    let mut load = vec![0u64; bins];
    let mut bin_of = vec![0u32; n];
    for root in roots {
        let (lightest, _) = load
            .iter()
            .enumerate()
            .min_by_key(|(_, l)| **l)
            .unwrap_or((0, &0));
        load[lightest] = load[lightest].saturating_add(weight[root as usize]);
        bin_of[root as usize] = lightest as u32;
    }
    let mut plan_bins: Vec<Vec<TxIdx>> = vec![Vec::with_capacity(n / bins + 1); bins];
    for i in 0..n {
        let root = groups.find(i as u32) as usize;
        plan_bins[bin_of[root] as usize].push(i);
    }
    plan_bins.retain(|b| !b.is_empty());
    let heaviest = load.iter().copied().max().unwrap_or(0).max(1);
    Some(Plan {
        bins: plan_bins,
        predicted: total as f64 / heaviest as f64,
        reaching,
        groups: roots_count,
        sinks,
        split_payouts,
    })
}

/// The block's gas limits, and those of the beneficiary's payouts when they
/// may be split ([`Plan::split_payouts`]) if they hold enough of the block:
/// there is one, and each one is a plain payout, a call without data, access
/// list, blobs or authorizations, of a value below 2^128, to another
/// account. What each one costs the beneficiary is then bounded before it
/// runs (its value and its gas limit at its price), and its nonce known. A
/// pool's payout block holds mostly these: keyed by their sender, they would
/// be one group that caps the plan.
fn scan(block: &BlockInput) -> (u64, Option<u64>) {
    let beneficiary = block.header.beneficiary;
    let (mut total, mut payouts) = (0u64, 0u64);
    let (mut any, mut plain) = (false, true);
    for tx in &block.transactions {
        let env = &tx.env;
        total = total.saturating_add(env.gas_limit);
        if tx.sender != beneficiary {
            continue;
        }
        plain &= matches!(env.kind, TxKind::Call(to) if to != beneficiary)
            && env.data.is_empty()
            && env.access_list.is_empty()
            && env.blob_hashes.is_empty()
            && env.authorization_list.is_empty()
            && env.value < MAX_LAZY_CREDIT;
        any = true;
        payouts = payouts.saturating_add(env.gas_limit);
    }
    (total, (any && plain).then_some(payouts))
}

/// What the beneficiary's split payouts may cost it, before each one.
///
/// A payout's cost (its value, if the call succeeds, and its gas used at its
/// price) is known only once it ran, but bounded before: the value and the
/// whole gas limit. A bin starts each payout from the beneficiary's nonce
/// before it (exact: one per payout) and its balance less the bound of every
/// payout before it, a balance no higher than the real one (which also lacks
/// the block's fees, as for unsplit payouts). A balance check that passes
/// there passes in block order; one that fails gives the attempt up. Nothing
/// else may see that balance: the journal watches the beneficiary while its
/// payouts run, and any look gives the attempt up. What each payout really
/// cost is taken from the bin's state and summed at the merge.
struct Payouts {
    /// Its record after the pre-block calls.
    base: AccountInfo,
    /// Per transaction of the block: how many payouts come before it, the
    /// bound of what they cost, and the bound of its own cost.
    at: Vec<(u64, U256, U256)>,
    /// How many payouts there are.
    count: u64,
}

impl Payouts {
    /// The bounds for `block`'s payouts from `base`, at the block's base fee.
    fn new(block: &BlockInput, base: AccountInfo) -> Self {
        let beneficiary = block.header.beneficiary;
        let base_fee = u128::from(block.header.base_fee_per_gas.unwrap_or(0));
        let mut at = Vec::with_capacity(block.transactions.len());
        let (mut count, mut bound) = (0u64, U256::ZERO);
        for tx in &block.transactions {
            let own = if tx.sender == beneficiary {
                let price =
                    revm::context_interface::Transaction::effective_gas_price(&tx.env, base_fee);
                tx.env
                    .value
                    .saturating_add(U256::from(price).saturating_mul(U256::from(tx.env.gas_limit)))
            } else {
                U256::ZERO
            };
            at.push((count, bound, own));
            if tx.sender == beneficiary {
                count += 1;
                bound = bound.saturating_add(own);
            }
        }
        Self { base, at, count }
    }

    /// The beneficiary's nonce and balance bound just before transaction `i`,
    /// and the bound of `i`'s own cost; `None` when the bounds before it
    /// exceed its balance.
    fn before(&self, i: TxIdx) -> Option<(u64, U256, U256)> {
        let &(count, bound, own) = self.at.get(i)?;
        Some((
            self.base.nonce.checked_add(count)?,
            self.base.balance.checked_sub(bound)?,
            own,
        ))
    }
}

/// The plan's keys: an open-addressing table from a key's hash to the first
/// transaction with that key. An entry is one word, the hash's high half
/// over the transaction's index, in the slot the hash's low bits pick: the
/// table of a 10,000-transaction block is half a megabyte, and its random
/// probes stay in the core's cache. A collision (same high half, same
/// probe run) only joins two groups: the plan is then coarser, never wrong.
struct KeyTable {
    slots: Vec<u64>,
}

/// A free slot of a [`KeyTable`]: no entry has all bits set, since no
/// transaction index is `u32::MAX`.
const FREE: u64 = u64::MAX;

impl KeyTable {
    /// A table for up to `keys` keys, at most three quarters full.
    fn new(keys: usize) -> Self {
        let len = keys
            .saturating_mul(4)
            .div_ceil(3)
            .max(4)
            .next_power_of_two();
        // Free slots are all ones, so the table is written when allocated
        // (not mapped zero and faulted in line by line as it is probed).
        Self {
            slots: vec![FREE; len],
        }
    }

    /// The slot `key` is in, or the free slot where it would go, and its
    /// entry's tag.
    fn find(&self, key: Key) -> (usize, u64) {
        let hash = key.hash();
        let tag = hash & !u64::from(u32::MAX);
        let mask = self.slots.len() - 1;
        let mut at = hash as usize & mask;
        loop {
            let entry = self.slots[at];
            if entry == FREE || entry & !u64::from(u32::MAX) == tag {
                return (at, tag);
            }
            at = (at + 1) & mask;
        }
    }

    /// Adds transaction `i`'s `key`, joining `i`'s group to that of the
    /// first transaction with it.
    fn insert(&mut self, groups: &mut Groups, i: u32, key: Key) {
        let (at, tag) = self.find(key);
        match self.slots[at] {
            FREE => self.slots[at] = tag | u64::from(i),
            entry => groups.union(entry as u32, i),
        }
    }

    /// Whether the table holds `key`.
    fn contains(&self, key: Key) -> bool {
        let (at, _) = self.find(key);
        self.slots[at] != FREE
    }
}

/// A plain transfer (a call without data) whose target may be a sink: it
/// carries value, below [`MAX_LAZY_CREDIT`], so that no block's worth of
/// them can overflow a sink's balance (which [`run`] checks as Block-STM's
/// lazy credits do).
fn is_credit(env: &revm::context::TxEnv) -> bool {
    !env.value.is_zero() && env.value < MAX_LAZY_CREDIT
}

/// At most this many sinks a block, those paid most often.
const MAX_SINKS: usize = 4;

/// The targets of `plain` transfers that are paid often (at least
/// `min_credits` times, with at least `min_share` of the block's gas limits
/// `total`; `gas_limits` per transaction), have no key of their own in
/// `table` (they send nothing, and no other call is keyed by them) and have
/// no code.
fn find_sinks(
    plain: &[(u32, Address)],
    (gas_limits, total): (&[u64], u64),
    table: &KeyTable,
    (min_credits, min_share): (u32, f64),
    target: &mut impl FnMut(TxIdx, Address) -> Target,
) -> Vec<Address> {
    if plain.len() < min_credits as usize {
        return Vec::new();
    }
    // Payments per target, by open addressing on the key's hash (a
    // collision only merges two counts: a sink candidate is then checked
    // all the same).
    let slots = plain.len().saturating_mul(2).next_power_of_two();
    let mask = slots - 1;
    // Per target: its hash, payments, first payment and their gas limits.
    let mut counts: Vec<(u64, u32, u32, u64)> = vec![(0, 0, 0, 0); slots];
    for (n, &(i, to)) in plain.iter().enumerate() {
        let gas = gas_limits.get(i as usize).copied().unwrap_or(0);
        let hash = Key::Account(to).hash().max(1);
        let mut at = hash as usize & mask;
        loop {
            match counts[at] {
                (0, ..) => {
                    counts[at] = (hash, 1, n as u32, gas);
                    break;
                }
                (h, count, first, sum) if h == hash => {
                    counts[at] = (h, count + 1, first, sum.saturating_add(gas));
                    break;
                }
                _ => at = (at + 1) & mask,
            }
        }
    }
    let mut candidates: Vec<(u32, u32)> = counts
        .into_iter()
        .filter(|&(h, count, _, gas)| {
            h != 0 && count >= min_credits && share(gas, total) >= min_share
        })
        .map(|(_, count, first, _)| (count, first))
        .collect();
    candidates.sort_unstable_by_key(|&(count, _)| std::cmp::Reverse(count));
    let mut sinks = Vec::new();
    for (_, first) in candidates {
        let (i, to) = plain[first as usize];
        if sinks.len() == MAX_SINKS {
            break;
        }
        if !table.contains(Key::Account(to)) && target(i as TxIdx, to) == Target::Account {
            sinks.push(to);
        }
    }
    sinks
}

/// `part` of the block's gas limits `total`, as a fraction.
fn share(part: u64, total: u64) -> f64 {
    part as f64 / total.max(1) as f64
}

/// One bin's run.
struct BinRun<S> {
    state: BlockState<S>,
    /// Per transaction of the bin, in its order: its receipt (without the
    /// block's running gas, filled in later) and its fee.
    receipts: Vec<(TxIdx, TxReceipt, U256)>,
    written: Vec<Written>,
    /// What the bin changed, sorted by address, without the kept accounts
    /// and the sinks.
    diff: Vec<(Address, AccountDiff)>,
    /// What the bin credited each sink, in [`Context::sinks`]' order.
    gains: Vec<U256>,
    /// What the bin's split payouts cost the beneficiary.
    payout_cost: U256,
    time_ns: u64,
}

/// Why an attempt was given up (the caller runs Block-STM instead).
#[derive(Debug)]
pub enum Abandoned {
    /// A transaction failed or the state backend did: let the general path
    /// report it exactly as the sequential executor would.
    Failed,
    /// Two bins touched the same location, one of them writing it.
    Conflict,
    /// A transaction touched the block beneficiary.
    Beneficiary,
    /// A transaction other than a plain payment to a sink touched it.
    Sink,
    /// Another bin gave up first.
    Stopped,
    /// A block limit does not hold (or, when building, the block is full
    /// before its last transaction).
    Limits,
}

/// Everything a bin needs to run.
struct Context<'a, S> {
    block: &'a BlockInput,
    chain: &'a ChainConfig,
    spec: SpecId,
    /// The state after the pre-block system calls.
    base: S,
    code: &'a Arc<CodeCache>,
    /// The plan's sinks that hold (see [`run`]).
    sinks: &'a [Address],
    /// The beneficiary's split payouts, predicted.
    payouts: Option<&'a Payouts>,
    /// Accounts several bins change by design, which the conflict check
    /// skips: the sinks, and the beneficiary when its payouts are split.
    shared: &'a [Address],
    /// What the bins' diffs leave out: the accounts they hand over as they
    /// are (see [`run`]), and the sinks.
    hidden: &'a [Address],
    /// Set by the first bin that gives up, so that the others stop.
    stop: AtomicBool,
}

/// Runs one bin's transactions in order, then builds its sorted diff
/// (without `cx.keep`) and receipts, while other bins may still run. Gives up
/// as soon as a transaction fails or touches the beneficiary, or another bin
/// gave up (`cx.stop`).
fn run_bin<S: StateReader + Copy>(
    cx: &Context<'_, S>,
    bin: &[TxIdx],
) -> Result<BinRun<S>, Abandoned> {
    let start = Instant::now();
    let beneficiary = cx.block.header.beneficiary;
    let mut state = BlockState::with_code_cache(cx.base, cx.code.clone());
    state.reserve_for_block(bin.len());
    state.watch(beneficiary);
    let mut evm = system::new_evm(state, cx.chain, &cx.block.header, cx.spec);
    // What the journal watches: the beneficiary during its own payments,
    // the sinks during everything but plain payments to them.
    let sinks = cx.sinks;
    let with_beneficiary: Vec<Address> = std::iter::once(beneficiary)
        .chain(sinks.iter().copied())
        .collect();
    // Whether one of the beneficiary's own payments ran in this bin.
    let mut paid = false;
    // What the bin's split payouts cost the beneficiary.
    let mut payout_cost = U256::ZERO;
    let mut results = Vec::with_capacity(bin.len());
    let mut written = Vec::with_capacity(bin.len() * 2);
    let give_up = |why| {
        cx.stop.store(true, Ordering::Relaxed);
        Err(why)
    };
    for &i in bin {
        if cx.stop.load(Ordering::Relaxed) {
            return Err(Abandoned::Stopped);
        }
        let tx = &cx.block.transactions[i];
        let pays = tx.sender == beneficiary;
        let credits = !sinks.is_empty()
            && tx.env.data.is_empty()
            && matches!(tx.env.kind, TxKind::Call(to) if sinks.contains(&to));
        let watched: &[Address] = match (pays, credits) {
            (true, true) => &with_beneficiary[..1],
            (true, false) => &with_beneficiary,
            (false, true) => &[],
            (false, false) => sinks,
        };
        evm.ctx.journaled_state.watch(watched);
        // A split payout starts from the beneficiary's nonce before it and
        // its balance less the bounds of the payouts before it ([`Payouts`]).
        let predicted = match cx.payouts.filter(|_| pays) {
            Some(payouts) => {
                let Some((nonce, balance, bound)) = payouts.before(i) else {
                    return give_up(Abandoned::Beneficiary);
                };
                let db = &mut evm.ctx.journaled_state.inner.database;
                let now = match db.account(beneficiary) {
                    Ok(now) => now.unwrap_or_default(),
                    Err(_) => return give_up(Abandoned::Failed),
                };
                let Some(gap) = now.balance.checked_sub(balance) else {
                    return give_up(Abandoned::Beneficiary);
                };
                if db.apply_debit(beneficiary, gap, nonce).is_err() {
                    return give_up(Abandoned::Beneficiary);
                }
                Some((nonce, balance, bound))
            }
            None => None,
        };
        let reads = evm.ctx.journaled_state.inner.database.watched_reads();
        evm.ctx.set_tx(tx.env.clone());
        let mut handler = DeferredFeeHandler::<
            _,
            EVMError<DbError, InvalidTransaction>,
            EthFrame<EthInterpreter>,
        >::default();
        let result = handler.run(&mut evm);
        let changes = evm.finalize();
        let looked = evm.ctx.journaled_state.watched_seen();
        let db = &mut evm.ctx.journaled_state.inner.database;
        if db.take_error().is_some() {
            return give_up(Abandoned::Failed);
        }
        let Ok(result) = result else {
            return give_up(Abandoned::Failed);
        };
        let changes = TxChanges::from_state(changes);
        // A sink changes only by the plain payments to it (no code runs
        // there), and no code looks at it: then what each bin credits it
        // adds up in any order.
        if !credits && !sinks.is_empty() {
            if looked && !pays {
                return give_up(Abandoned::Sink);
            }
            if changes.0.iter().any(|c| sinks.contains(&c.address)) {
                return give_up(Abandoned::Sink);
            }
        }
        if db.commit_changes_tracked(changes, &mut written).is_err() {
            return give_up(Abandoned::Failed);
        }
        // Its balance depends on every fee before the reader: only the
        // general path can tell what a transaction touching it saw. Its own
        // payments see it only in their balance check, which passes on the
        // balance without the fees only if it passes with them (fees only
        // add); what they change adds up with the fees in any order. Two
        // watches: the block state counts every read of it from the base
        // (enough for other transactions); the journal tells a payment's
        // loads of its own sender apart from its code's looks.
        if pays {
            // Code it ran looked at the beneficiary (`BALANCE(CALLER)`, a call
            // back to it): what it saw depends on the fees before it.
            if looked {
                return give_up(Abandoned::Beneficiary);
            }
            // A split payout raised the nonce by one and cost no more than
            // its bound; what it cost joins the bin's sum.
            if let Some((nonce, balance, bound)) = predicted {
                let spent = db
                    .account(beneficiary)
                    .ok()
                    .flatten()
                    .filter(|after| Some(after.nonce) == nonce.checked_add(1))
                    .and_then(|after| balance.checked_sub(after.balance))
                    .filter(|spent| *spent <= bound);
                let Some(spent) = spent else {
                    return give_up(Abandoned::Beneficiary);
                };
                payout_cost = payout_cost.saturating_add(spent);
            }
            paid = true;
        } else if db.watched_reads() != reads || (!paid && db.is_cached(&beneficiary)) {
            return give_up(Abandoned::Beneficiary);
        }
        results.push((i, result, handler.fee()));
    }
    let state = evm.ctx.journaled_state.inner.database;
    let Some(gains) = sinks
        .iter()
        .map(|sink| state.balance_gain(sink))
        .collect::<Option<Vec<U256>>>()
    else {
        return give_up(Abandoned::Sink);
    };
    let diff = state.sorted_diff(cx.hidden);
    let receipts = results
        .into_iter()
        .map(|(i, result, fee)| {
            let tx_type = cx.block.transactions[i].tx_type;
            (i, make_receipt(tx_type, result, 0), fee)
        })
        .collect();
    Ok(BinRun {
        state,
        receipts,
        written,
        diff,
        gains,
        payout_cost,
        time_ns: start.elapsed().as_nanos() as u64,
    })
}

/// Whether bin `a` touched something bin `b` changed, but the `shared`
/// accounts (see [`Context::shared`]).
fn touches<S: StateReader>(a: &BlockState<S>, b: &BinRun<S>, shared: &[Address]) -> bool {
    b.written.iter().any(|w| match w {
        Written::Account(address) => a.is_cached(address) && !shared.contains(address),
        Written::Slot(address, slot) => a.is_slot_cached(address, slot),
    }) || a.probed().iter().any(|address| b.state.is_cached(address))
}

/// How an attempt ended.
pub enum Outcome<S: StateReader> {
    /// The block's output, and the bins' summed execution time in
    /// nanoseconds.
    Done(BlockOutput, u64),
    /// Given up: the pre-block state comes back untouched, for Block-STM.
    Abandoned(Abandoned, Box<system::BlockEvm<S>>),
}

/// What the bins left, once checked.
struct Checked {
    /// The kept accounts, per bin.
    kept: Vec<CachedState>,
    /// What the bins changed in the other accounts.
    diff: BTreeMap<Address, AccountDiff>,
    /// What the bins credited each sink, in all.
    credits: Vec<U256>,
    /// When the beneficiary's payouts were split: its nonce after them, and
    /// what they cost it.
    payouts: Option<(u64, U256)>,
    receipts: Result<Receipts, Abandoned>,
    work_ns: u64,
}

/// The block's receipts and what they add up to.
struct Receipts {
    receipts: Vec<TxReceipt>,
    /// Each transaction's fee to the beneficiary, in block order.
    fees: Vec<U256>,
    gas: u64,
    blob_gas: u64,
}

/// Puts the bins' receipts (each bin's in block order) in block order with
/// the block's running gas, checking the block limits as the sequential
/// executor does.
fn receipts(
    block: &BlockInput,
    max_blob_gas: Option<u64>,
    bins: Vec<Vec<(TxIdx, TxReceipt, U256)>>,
) -> Result<Receipts, Abandoned> {
    let n = block.transactions.len();
    let mut ordered: Vec<Option<(TxReceipt, U256)>> = Vec::with_capacity(n);
    ordered.resize_with(n, || None);
    for (i, receipt, fee) in bins.into_iter().flatten() {
        ordered[i] = Some((receipt, fee));
    }
    let mut out = Receipts {
        receipts: Vec::with_capacity(n),
        fees: Vec::with_capacity(n),
        gas: 0,
        blob_gas: 0,
    };
    for (i, slot) in ordered.into_iter().enumerate() {
        let (mut receipt, fee) = slot.ok_or(Abandoned::Failed)?;
        // Building: the block is full before this transaction, but the bins
        // ran past it. Otherwise the block is invalid: either way the
        // general path gives the exact answer.
        check_block_limits(block, i, out.gas, out.blob_gas, max_blob_gas)
            .map_err(|_| Abandoned::Limits)?;
        let tx = &block.transactions[i];
        out.gas += receipt.gas_used;
        out.blob_gas += tx.env.blob_hashes.len() as u64 * alloy_eips::eip4844::DATA_GAS_PER_BLOB;
        receipt.cumulative_gas_used = out.gas;
        out.fees.push(fee);
        out.receipts.push(receipt);
    }
    Ok(out)
}

/// Blocks with fewer transactions check and merge their bins on the calling
/// thread, not on the workers.
const MERGE_HERE_MAX_TXS: usize = 1024;

/// Runs `plan`'s bins on `pool` over `evm`'s state (the block after its
/// pre-block system calls) and checks them; then frees their states and
/// merges their diffs and receipts (on all cores for a big block).
fn run_bins<S: StateReader>(
    job: &Job<'_>,
    evm: &system::BlockEvm<S>,
    pre_block: &pel_state::StateDiff,
    keep: &[Address],
    sinks: &[Address],
) -> Result<Checked, Abandoned> {
    use rayon::prelude::*;
    let Job {
        pool,
        block,
        chain,
        spec,
        code,
        plan,
        ..
    } = *job;
    let base = DiffOverlay::new(evm.ctx.journaled_state.inner.database.base(), pre_block);
    let beneficiary = block.header.beneficiary;
    let payouts = if plan.split_payouts {
        match base.account(&beneficiary) {
            Ok(Some(info)) => Some(Payouts::new(block, info)),
            _ => return Err(Abandoned::Beneficiary),
        }
    } else {
        None
    };
    // Split payouts leave the beneficiary in several bins: its state comes
    // from the prediction, not from one bin.
    let kept_list: Vec<Address> = keep
        .iter()
        .copied()
        .filter(|a| payouts.is_none() || *a != beneficiary)
        .collect();
    let mut shared = sinks.to_vec();
    if payouts.is_some() {
        shared.push(beneficiary);
    }
    let cx = Context {
        block,
        chain,
        spec,
        base: &base,
        code,
        sinks,
        payouts: payouts.as_ref(),
        shared: &shared,
        hidden: &[keep, sinks].concat(),
        stop: AtomicBool::new(false),
    };
    let runs: Vec<Result<BinRun<_>, Abandoned>> = pool.install(|| {
        plan.bins
            .par_iter()
            .with_max_len(1)
            .map(|bin| run_bin(&cx, bin))
            .collect()
    });
    // The first bin's own reason, not another's "stopped".
    let mut stopped = false;
    let mut checked_runs = Vec::with_capacity(runs.len());
    for run in runs {
        match run {
            Ok(run) => checked_runs.push(run),
            Err(Abandoned::Stopped) => stopped = true,
            Err(why) => return Err(why),
        }
    }
    if stopped {
        return Err(Abandoned::Stopped);
    }
    let runs = checked_runs;
    // A small block's check and merge cost less than handing them to the
    // workers and waiting (20-60 µs each way on a VM; 4330482, 237
    // transactions: three hand-overs took a fifth of its partitioned time).
    let here = block.transactions.len() < MERGE_HERE_MAX_TXS;
    let pair =
        |a: usize| (0..runs.len()).any(|b| a != b && touches(&runs[a].state, &runs[b], cx.shared));
    let conflict = if here {
        (0..runs.len()).any(pair)
    } else {
        pool.install(|| (0..runs.len()).into_par_iter().any(pair))
    };
    if conflict {
        return Err(Abandoned::Conflict);
    }
    let mut receipts_of = Vec::with_capacity(runs.len());
    let mut diffs = Vec::with_capacity(runs.len());
    let mut kept = Vec::with_capacity(runs.len());
    let mut states = Vec::with_capacity(runs.len());
    let mut work_ns = 0;
    let mut credits = vec![U256::ZERO; sinks.len()];
    let mut payout_cost = U256::ZERO;
    for mut run in runs {
        work_ns += run.time_ns;
        for (credit, gain) in credits.iter_mut().zip(&run.gains) {
            *credit = credit.saturating_add(*gain);
        }
        payout_cost = payout_cost.saturating_add(run.payout_cost);
        receipts_of.push(run.receipts);
        diffs.push(run.diff);
        kept.push(run.state.take_kept(&kept_list));
        states.push(run.state);
    }
    let max_blob_gas = sequential::max_blob_gas(chain, spec, block.header.timestamp);
    let (receipts, diff) = if here {
        let merged = (
            receipts(block, max_blob_gas, receipts_of),
            merge_sorted(diffs),
        );
        drop(states);
        merged
    } else {
        let (merged, ()) = pool.install(|| {
            rayon::join(
                || {
                    rayon::join(
                        || receipts(block, max_blob_gas, receipts_of),
                        || merge_sorted(diffs),
                    )
                },
                // The bins' caches are big for big blocks: freed meanwhile.
                || states.into_par_iter().for_each(drop),
            )
        });
        merged
    };
    Ok(Checked {
        kept,
        diff,
        credits,
        payouts: payouts.map(|p| (p.base.nonce.saturating_add(p.count), payout_cost)),
        receipts,
        work_ns,
    })
}

/// One block to run by a plan.
#[derive(Clone, Copy)]
pub struct Job<'a> {
    /// The executor's workers.
    pub pool: &'a rayon::ThreadPool,
    /// The block.
    pub block: &'a BlockInput,
    /// Its chain.
    pub chain: &'a ChainConfig,
    /// Its spec.
    pub spec: SpecId,
    /// How it executes.
    pub options: &'a ExecOptions,
    /// Analysed code.
    pub code: &'a Arc<CodeCache>,
    /// Which worker runs what.
    pub plan: &'a Plan,
}

/// Runs `job` on `evm`'s state (the block after its pre-block system
/// calls); see the module docs.
pub fn run<S: StateReader>(
    job: &Job<'_>,
    mut evm: system::BlockEvm<S>,
) -> Result<Outcome<S>, ExecError> {
    let Job {
        block,
        chain,
        spec,
        options,
        ..
    } = *job;
    let header = &block.header;
    let beneficiary = header.beneficiary;
    let pre = &evm.ctx.journaled_state.inner.database;
    let pre_block = pre.diff();
    // Accounts the pre-block calls touched and the post-block steps may
    // touch: the bins hand them over as they are, to be merged into the
    // pre-block state before those steps run there.
    let mut keep: Vec<Address> = pre.cached_addresses().copied().collect();
    keep.extend(system::post_block_accounts(block, options.rewards));
    // The bin of the beneficiary's own payments hands it over too: the fees
    // are added to it there.
    keep.push(beneficiary);
    // The plan's sinks, where their credits add up as plain balance
    // increments: from Spurious Dragon on (before it, a payment of nothing
    // brings an account into existence), not handed over as they are, not
    // precompiles (a payment to one runs it), and far from overflowing. A
    // sink left out is an account several bins change: the conflict check
    // then gives the attempt up.
    let sinks: Vec<Address> = if spec >= SpecId::SPURIOUS_DRAGON {
        let base = pre.base();
        let precompiles = revm::precompile::Precompiles::new(
            revm::precompile::PrecompileSpecId::from_spec_id(spec),
        );
        job.plan
            .sinks
            .iter()
            .copied()
            .filter(|sink| {
                !keep.contains(sink)
                    && !precompiles.contains(sink)
                    && base.account(sink).is_ok_and(lazy_holds)
            })
            .collect()
    } else {
        Vec::new()
    };
    let checked = match run_bins(job, &evm, &pre_block, &keep, &sinks) {
        Ok(checked) => checked,
        Err(why) => return Ok(Outcome::Abandoned(why, Box::new(evm))),
    };
    let Receipts {
        receipts,
        fees,
        gas,
        blob_gas,
    } = match checked.receipts {
        Ok(receipts) => receipts,
        Err(why) => return Ok(Outcome::Abandoned(why, Box::new(evm))),
    };
    // The kept accounts join the pre-block state; the fees go to the
    // beneficiary in block order; then the post-block steps run there.
    let pre = &mut evm.ctx.journaled_state.inner.database;
    for kept in checked.kept {
        pre.absorb_sibling(kept);
    }
    let state_error = |e: DbError| ExecError::State {
        block: header.number,
        source: pel_state::StateError::Backend(e.to_string()),
    };
    if let Some((nonce, cost)) = checked.payouts {
        pre.apply_debit(beneficiary, cost, nonce)
            .map_err(state_error)?;
    }
    pre.increment_balance_each(beneficiary, &fees, spec)
        .map_err(state_error)?;
    for (sink, credit) in sinks.iter().zip(&checked.credits) {
        if !credit.is_zero() {
            pre.increment_balance(*sink, *credit, spec)
                .map_err(state_error)?;
        }
    }
    let (state, requests) = finish_block(evm, block, chain, spec, options, &receipts)?;
    // Whatever the post-block steps touched must not be something a bin
    // changed and did not hand over (a system contract of another chain
    // calling out): then the general path runs the block instead.
    let mut accounts = checked.diff;
    if state.cached_addresses().any(|a| accounts.contains_key(a)) {
        let output = sequential::execute_block(state.base(), block, chain, options.clone())?;
        return Ok(Outcome::Done(output, checked.work_ns));
    }
    let mut diff = state.into_diff();
    // A handful of accounts: inserted one by one (appending would rebuild
    // the whole map).
    accounts.extend(std::mem::take(&mut diff.accounts));
    diff.accounts = accounts;
    Ok(Outcome::Done(
        BlockOutput {
            gas_used: gas,
            blob_gas_used: blob_gas,
            receipts,
            diff,
            requests,
        },
        checked.work_ns,
    ))
}

/// Merges the bins' sorted diffs into one map. An account in several bins'
/// diffs is one every bin only read, each changing its own slots: its slots
/// are united.
fn merge_sorted(lists: Vec<Vec<(Address, AccountDiff)>>) -> BTreeMap<Address, AccountDiff> {
    let merged = lists.into_iter().reduce(merge_two).unwrap_or_default();
    // Sorted and unique: built in one pass.
    merged.into_iter().collect()
}

/// Merges two diffs sorted by address (see [`merge_sorted`]).
fn merge_two(
    a: Vec<(Address, AccountDiff)>,
    b: Vec<(Address, AccountDiff)>,
) -> Vec<(Address, AccountDiff)> {
    use std::cmp::Ordering::{Equal, Greater, Less};
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut a, mut b) = (a.into_iter().peekable(), b.into_iter().peekable());
    loop {
        let order = match (a.peek(), b.peek()) {
            (Some(x), Some(y)) => x.0.cmp(&y.0),
            (Some(_), None) => Less,
            (None, Some(_)) => Greater,
            (None, None) => break,
        };
        match order {
            Less => out.extend(a.next()),
            Greater => out.extend(b.next()),
            Equal => {
                if let (Some((address, mut x)), Some((_, y))) = (a.next(), b.next()) {
                    // Both sorted, keys disjoint: one linear merge, not an
                    // insertion per slot.
                    x.storage = std::mem::take(&mut x.storage)
                        .into_iter()
                        .chain(y.storage)
                        .collect();
                    out.push((address, x));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::PreparedTx;
    use alloy_primitives::{Bytes, B256};
    use revm::context::TxEnv;

    fn addr(n: u16) -> Address {
        Address::left_padding_from(&n.to_be_bytes())
    }

    fn word(a: Address) -> [u8; 32] {
        let mut w = [0u8; 32];
        w[12..].copy_from_slice(a.as_slice());
        w
    }

    fn tx(sender: u16, to: Option<u16>, data: Vec<u8>) -> PreparedTx {
        PreparedTx {
            hash: B256::ZERO,
            tx_type: 2,
            sender: addr(sender),
            env: TxEnv {
                caller: addr(sender),
                kind: to.map_or(TxKind::Create, |to| TxKind::Call(addr(to))),
                data: Bytes::from(data),
                gas_limit: 50_000,
                ..TxEnv::default()
            },
        }
    }

    fn transfer_call(to: u16) -> Vec<u8> {
        let mut data = TRANSFER.to_vec();
        data.extend(word(addr(to)));
        data.extend([0u8; 32]);
        data
    }

    fn block(transactions: Vec<PreparedTx>) -> BlockInput {
        BlockInput {
            header: alloy_consensus::Header {
                beneficiary: addr(0xcb),
                ..Default::default()
            },
            transactions,
            withdrawals: None,
            ommers: Vec::new(),
        }
    }

    /// The bin each transaction landed in.
    fn bins_of(plan: &Plan, n: usize) -> Vec<usize> {
        let mut of = vec![usize::MAX; n];
        for (b, bin) in plan.bins.iter().enumerate() {
            assert!(bin.windows(2).all(|w| w[0] < w[1]), "bins keep block order");
            for &i in bin {
                of[i] = b;
            }
        }
        assert!(
            of.iter().all(|&b| b != usize::MAX),
            "every transaction placed"
        );
        of
    }

    #[test]
    fn asks_target_names_exactly_the_calls_the_plan_asks_about() {
        let mut with_value = tx(7, Some(50), transfer_call(8));
        with_value.env.value = U256::from(1);
        let txs = vec![
            tx(1, Some(50), transfer_call(2)), // an ERC-20 transfer: keyed by holders
            tx(3, Some(51), Vec::new()),       // a plain payment
            tx(4, Some(52), vec![1, 2, 3]),    // a call with data
            tx(5, None, vec![1]),              // a creation
            tx(0xcb, Some(53), Vec::new()),    // the beneficiary's payment: keyed by target
            with_value,                        // a transfer call carrying value
            tx(9, Some(54), vec![9]),          // another call with data
        ];
        let block = block(txs);
        let mut asked = Vec::new();
        let planned = plan(&block, 2, &limits(1.0), |i, to| {
            asked.push((i, to));
            Target::Account
        });
        assert!(planned.is_some());
        asked.dedup();
        let ahead: Vec<(TxIdx, Address)> = block
            .transactions
            .iter()
            .enumerate()
            .filter_map(|(i, tx)| asks_target(tx, block.header.beneficiary).map(|to| (i, to)))
            .collect();
        assert_eq!(asked, ahead);
        assert_eq!(
            ahead.iter().map(|(i, _)| *i).collect::<Vec<_>>(),
            vec![2, 5, 6]
        );
    }

    #[test]
    fn independent_transfers_spread_evenly() {
        let txs = (0..8)
            .map(|i| tx(300 + i, Some(400 + i), Vec::new()))
            .collect();
        let plan = plan_keys(txs, |_, _| Target::SelfContained).unwrap();
        assert_eq!(plan.bins.len(), 2);
        assert_eq!(plan.bins[0].len(), 4);
        assert!((plan.predicted - 2.0).abs() < 1e-9);
    }

    #[test]
    fn shared_senders_recipients_and_targets_stay_together() {
        let txs = vec![
            tx(1, Some(50), Vec::new()), // 0: pays 50
            tx(2, Some(50), Vec::new()), // 1: also pays 50
            tx(3, Some(60), vec![1, 2]), // 2: calls contract 60
            tx(4, Some(60), vec![3]),    // 3: calls it too
            tx(1, None, Vec::new()),     // 4: sender 1 again, a creation
            tx(5, Some(70), Vec::new()), // 5: alone
        ];
        let n = txs.len();
        let plan = plan_keys(txs, |_, _| Target::SelfContained).unwrap();
        let of = bins_of(&plan, n);
        assert_eq!(of[0], of[1]);
        assert_eq!(of[0], of[4]);
        assert_eq!(of[2], of[3]);
    }

    #[test]
    fn erc20_transfers_group_by_holder_not_by_token() {
        let txs = vec![
            tx(1, Some(900), transfer_call(11)), // 0: 1 -> 11
            tx(2, Some(900), transfer_call(12)), // 1: 2 -> 12
            tx(3, Some(900), transfer_call(11)), // 2: 3 -> 11, shares holder 11 with 0
            tx(4, Some(900), transfer_call(14)), // 3
        ];
        let n = txs.len();
        let plan = plan_keys(txs, |_, _| Target::SelfContained).unwrap();
        let of = bins_of(&plan, n);
        assert_eq!(of[0], of[2]);
        assert!(plan.predicted > 1.0);
        // A malformed argument (not an address) makes it an ordinary call:
        // keyed by the token, so everything lands in one group.
        let mut bad = transfer_call(11);
        bad[4] = 1;
        let txs = vec![tx(1, Some(900), bad.clone()), tx(2, Some(900), bad)];
        assert_eq!(plan_of(txs).map(|p| p.groups), Some(1));
    }

    #[test]
    fn an_account_only_paid_often_is_a_sink_that_keeps_its_payers_apart() {
        let pay = |from: u16, to: u16| {
            let mut t = tx(from, Some(to), Vec::new());
            t.env.value = U256::from(5);
            t
        };
        let sink = addr(50);
        let no_code = |_, to| {
            if to == sink {
                Target::Account
            } else {
                Target::Reaching
            }
        };
        let payments: Vec<PreparedTx> = (0..16).map(|i| pay(100 + i, 50)).collect();
        let planned = plan_keys(payments.clone(), no_code).unwrap();
        assert_eq!(planned.sinks, vec![sink]);
        assert_eq!((planned.groups, planned.bins.len()), (16, 2));
        // Paid once too few, with code, sending, or called with data: keyed
        // by it, one group.
        let few = plan_keys(payments[1..].to_vec(), no_code);
        let with_code = plan_keys(payments.clone(), |_, _| Target::SelfContained);
        let mut sends = payments.clone();
        sends.push(tx(50, Some(7), Vec::new()));
        let sends = plan_keys(sends, no_code);
        let mut called = payments.clone();
        called.push(tx(9, Some(50), vec![1]));
        let called = plan_keys(called, no_code);
        // Paid often, but with a small share of the block's gas: its group
        // cannot cap the plan, and it stays keyed.
        let mut diluted = payments.clone();
        diluted.extend((0..4).map(|i| {
            let mut t = tx(200 + i, Some(300 + i), vec![1]);
            t.env.gas_limit = 1_000_000;
            t
        }));
        let diluted = plan_keys(diluted, no_code).unwrap();
        assert_eq!(diluted.sinks.len(), 0);
        for (case, planned) in [few, with_code, sends, called].into_iter().enumerate() {
            let planned = planned.unwrap();
            assert_eq!((planned.groups, planned.sinks.len()), (1, 0), "case {case}");
        }
    }

    /// Grouping by keys, at most `max_reaching` in reaching calls, and the
    /// policy's other defaults but any predicted speedup.
    fn limits(max_reaching: f64) -> Limits {
        Limits {
            grouping: Grouping::Keys,
            max_reaching,
            min_sink_credits: 16,
            min_split_share: 0.5,
            min_predicted: 0.0,
        }
    }

    /// The plan of `txs` on two bins, by keys, with the default limits.
    fn plan_keys(
        txs: Vec<PreparedTx>,
        target: impl FnMut(TxIdx, Address) -> Target,
    ) -> Option<Plan> {
        plan(&block(txs), 2, &limits(1.0), target)
    }

    fn plan_of(txs: Vec<PreparedTx>) -> Option<Plan> {
        plan_keys(txs, |_, _| Target::SelfContained)
    }

    #[test]
    fn the_beneficiary_rules_the_plan_out_but_for_its_payments_and_one_group_is_one_bin() {
        // Every transaction calls one counter: a single group.
        let one = plan_of((0..4).map(|i| tx(i, Some(77), Vec::new())).collect()).unwrap();
        assert_eq!((one.groups, one.bins.len(), one.predicted), (1, 1, 1.0));
        // Paying the beneficiary, or a creation by it.
        assert_eq!(
            plan_of(vec![
                tx(1, Some(0xcb), Vec::new()),
                tx(2, Some(3), Vec::new())
            ]),
            None
        );
        assert_eq!(
            plan_of(vec![tx(0xcb, None, Vec::new()), tx(2, Some(3), Vec::new())]),
            None
        );
        // Its payments to code are planned (`run_bin` watches what the code
        // looks at).
        assert!(plan_of(vec![
            tx(0xcb, Some(4), Vec::new()),
            tx(2, Some(3), Vec::new())
        ])
        .is_some());
        // Its plain payouts are split: each is keyed by its target alone.
        let payouts = vec![
            tx(0xcb, Some(4), Vec::new()),
            tx(2, Some(3), Vec::new()),
            tx(0xcb, Some(5), Vec::new()),
        ];
        let planned = plan_keys(payouts.clone(), |_, _| Target::Account).unwrap();
        assert_eq!((planned.groups, planned.split_payouts), (3, true));
        // One of them with data: all are keyed by the beneficiary, one group.
        let mut with_data = payouts;
        with_data[2].env.data = Bytes::from(vec![1]);
        let planned = plan_keys(with_data, |_, _| Target::Account).unwrap();
        assert_eq!((planned.groups, planned.split_payouts), (2, false));
        let of = bins_of(&planned, 3);
        assert_eq!(of[0], of[2]);
        assert_ne!(of[0], of[1]);
        // Sender-only grouping ignores the shared target.
        let txs = (0..4).map(|i| tx(i, Some(77), Vec::new())).collect();
        let sender_only = Limits {
            grouping: Grouping::SenderOnly,
            ..limits(1.0)
        };
        assert!(plan(&block(txs), 2, &sender_only, |_, _| Target::Reaching).is_some());
    }

    #[test]
    fn the_key_table_joins_a_key_to_its_first_transaction_and_keeps_others_apart() {
        let n = 3000u32;
        let mut table = KeyTable::new(n as usize);
        let mut groups = Groups {
            parent: (0..n).collect(),
        };
        // Transaction i names holder i % 1000 of one token: the first
        // thousand are apart, each later one joins the one with its holder.
        for i in 0..n {
            let holder = addr((i % 1000) as u16);
            table.insert(&mut groups, i, Key::Holder(addr(0xffff), holder));
        }
        for i in 0..n {
            assert_eq!(groups.find(i), i % 1000, "transaction {i}");
        }
        assert!(table.contains(Key::Holder(addr(0xffff), addr(999))));
        assert!(!table.contains(Key::Holder(addr(0xffff), addr(1000))));
        // The same address as an account is another key.
        assert!(!table.contains(Key::Account(addr(5))));
    }

    #[test]
    fn a_call_naming_the_beneficiary_ends_a_plan_its_payouts_would_cap() {
        // Six payouts (three fifths of the gas limits), then a searcher's call
        // that names the beneficiary, then three transfers.
        let mut txs: Vec<PreparedTx> = (0..6).map(|i| tx(0xcb, Some(10 + i), Vec::new())).collect();
        txs.push(tx(1, Some(60), vec![1]));
        txs.extend((0..3).map(|i| tx(20 + i, Some(30 + i), Vec::new())));
        let searcher = |_: TxIdx, to: Address| {
            if to == addr(60) {
                Target::Beneficiary
            } else {
                Target::Account
            }
        };
        // Unsplit, the payouts cap the plan at 10/6 of one bin.
        let block = block(txs);
        let planned = plan(&block, 2, &limits(1.0), searcher).unwrap();
        assert!(!planned.split_payouts);
        assert!((planned.predicted - 10.0 / 6.0).abs() < 1e-9, "{planned:?}");
        // A caller that wants more: the plan ends at the searcher's call,
        // before the transfers after it are keyed or any payout's target is
        // asked about.
        let mut asked = Vec::new();
        let wants = Limits {
            min_predicted: 1.7,
            ..limits(1.0)
        };
        let counting = |i, to| {
            asked.push(i);
            searcher(i, to)
        };
        assert_eq!(plan(&block, 2, &wants, counting), None);
        assert_eq!(asked, vec![6]);
        // One that wants no more than that gets it.
        let enough = Limits {
            min_predicted: 1.6,
            ..limits(1.0)
        };
        assert!(plan(&block, 2, &enough, searcher).is_some());
    }

    #[test]
    fn calls_into_reaching_contracts_share_one_group() {
        let txs = vec![
            tx(1, Some(60), vec![1]),    // 0: a router
            tx(2, Some(61), vec![2]),    // 1: another router
            tx(3, Some(62), vec![3]),    // 2: a self-contained contract
            tx(4, Some(63), Vec::new()), // 3: a plain payment
            tx(5, Some(64), vec![4]),    // 4: a self-contained contract
        ];
        let n = txs.len();
        let reach = |to: Address| {
            if to == addr(60) || to == addr(61) {
                Target::Reaching
            } else {
                Target::SelfContained
            }
        };
        let block = block(txs);
        let planned = plan(&block, 2, &limits(1.0), |_, to| reach(to)).unwrap();
        let of = bins_of(&planned, n);
        assert_eq!(of[0], of[1]);
        // The two router calls hold two fifths of the gas limits: a limit
        // below that ends the plan at the second one (which `reach` counts).
        assert!((planned.reaching - 0.4).abs() < 1e-9, "{planned:?}");
        assert!(plan(&block, 2, &limits(0.4), |_, to| reach(to)).is_some());
        let mut asked = 0;
        let counting = |_, to| {
            asked += 1;
            reach(to)
        };
        assert_eq!(plan(&block, 2, &limits(0.3), counting), None);
        assert_eq!(asked, 2);
    }

    #[test]
    fn code_is_classified_by_its_opcodes() {
        assert_eq!(classify(&[]), Target::Account);
        // PUSH1 0 SLOAD PUSH1 1 ADD PUSH1 0 SSTORE STOP
        assert_eq!(
            classify(&[0x60, 0, 0x54, 0x60, 1, 0x01, 0x60, 0, 0x55, 0x00]),
            Target::SelfContained
        );
        // A CALL opcode byte inside push data is data.
        assert_eq!(classify(&[0x61, 0xf1, 0xf1, 0x00]), Target::SelfContained);
        // ... and outside it, a call.
        assert_eq!(classify(&[0x60, 0, 0xf1]), Target::Reaching);
        assert_eq!(classify(&[0x60, 0, 0xff]), Target::Reaching);
        // A delegation designator (EIP-7702) runs code elsewhere.
        let mut delegated = vec![0xef, 0x01, 0x00];
        delegated.extend([0x11; 20]);
        assert_eq!(classify(&delegated), Target::Reaching);
        // Trailing metadata (CBOR map, then its length) is not code.
        let mut with_metadata = vec![0x00, 0xa1, 0xf1, 0xf1];
        with_metadata.extend(3u16.to_be_bytes());
        assert_eq!(classify(&with_metadata), Target::SelfContained);
        // `COINBASE` names the beneficiary, before or after a call; inside
        // push data it is data.
        assert_eq!(classify(&[0x41, 0x31, 0x00]), Target::Beneficiary);
        assert_eq!(classify(&[0x60, 0, 0xf1, 0x41]), Target::Beneficiary);
        assert_eq!(classify(&[0x60, 0x41, 0x00]), Target::SelfContained);
    }
}
