//! [`TxChanges`]: what one transaction (or system call) changed, distilled from
//! revm's post-execution state. Only touched accounts are kept, each with the
//! kind of change and the slots that matter, so the parallel executor can hold
//! a block's worth of them cheaply and every executor commits them through the
//! same code.

use alloy_primitives::{Address, U256};
use pel_state::AccountInfo;
use revm::bytecode::Bytecode;
use revm::state::EvmState;

/// How an account changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeKind {
    /// SELFDESTRUCT removed it (with its storage).
    SelfDestructed,
    /// Touched and left empty: removed under EIP-161 (revm already normalised
    /// pre-Spurious-Dragon touches).
    Emptied,
    /// Created (or, before Spurious Dragon, materialised) in this transaction:
    /// storage starts empty.
    Created,
    /// Balance, nonce, code or storage updated.
    Updated,
}

/// A balance change relative to what the account holds when the change is
/// applied: the parallel executor's record of a contract whose transaction
/// moved its balance without looking at it ([`crate::vm`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BalanceShift {
    /// Raised by this much.
    Up(U256),
    /// Lowered by this much.
    Down(U256),
}

impl BalanceShift {
    /// The shift from `before` to `after`.
    pub fn between(before: U256, after: U256) -> Self {
        if after >= before {
            Self::Up(after - before)
        } else {
            Self::Down(before - after)
        }
    }

    /// The amount moved.
    pub fn amount(self) -> U256 {
        match self {
            Self::Up(a) | Self::Down(a) => a,
        }
    }

    /// `balance` shifted; `None` on overflow or below zero.
    pub fn apply(self, balance: U256) -> Option<U256> {
        match self {
            Self::Up(a) => balance.checked_add(a),
            Self::Down(a) => balance.checked_sub(a),
        }
    }
}

/// One touched account's change.
#[derive(Clone, Debug)]
pub struct AccountChange {
    /// The account.
    pub address: Address,
    /// How it changed.
    pub kind: ChangeKind,
    /// Its info after the transaction.
    pub info: AccountInfo,
    /// When set, `info.balance` is not final: the change applies this shift
    /// to the balance the account holds then (`None`: `info` is final).
    pub shift: Option<BalanceShift>,
    /// Its code, for accounts with code (to publish newly deployed code).
    pub code: Option<Bytecode>,
    /// (slot, value before the transaction, value after): every slot of a
    /// created account, the changed slots of an updated one.
    pub storage: Vec<(U256, U256, U256)>,
}

/// Every account a transaction changed.
#[derive(Clone, Debug, Default)]
pub struct TxChanges(pub Vec<AccountChange>);

impl TxChanges {
    /// Distils revm's state after a transaction.
    pub fn from_state(state: EvmState) -> Self {
        let mut changes = Vec::new();
        for (address, account) in state {
            if !account.is_touched() {
                continue;
            }
            let kind = if account.is_selfdestructed() {
                ChangeKind::SelfDestructed
            } else if account.is_created() {
                ChangeKind::Created
            } else if account.is_empty() {
                ChangeKind::Emptied
            } else {
                ChangeKind::Updated
            };
            let info = AccountInfo {
                balance: account.info.balance,
                nonce: account.info.nonce,
                code_hash: account.info.code_hash,
            };
            let storage = match kind {
                ChangeKind::SelfDestructed | ChangeKind::Emptied => Vec::new(),
                ChangeKind::Created => account
                    .storage
                    .into_iter()
                    .map(|(slot, v)| (slot, v.original_value, v.present_value))
                    .collect(),
                ChangeKind::Updated => account
                    .storage
                    .into_iter()
                    .filter(|(_, v)| v.is_changed())
                    .map(|(slot, v)| (slot, v.original_value, v.present_value))
                    .collect(),
            };
            let code = if info.has_no_code() {
                None
            } else {
                account.info.code
            };
            changes.push(AccountChange {
                address,
                kind,
                info,
                shift: None,
                code,
                storage,
            });
        }
        Self(changes)
    }
}
