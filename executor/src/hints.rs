//! Dependencies guessed before a block runs: the Block-STM workers make a
//! transaction wait for a lower one that has not executed yet, instead of
//! running it on a view that one is about to change.
//!
//! - A sender's transactions are a chain (nonce, balance): each waits for the
//!   sender's previous one.
//! - Two transactions of one sender at most [`BUNDLE_SPAN`] apart, with others
//!   between them, are taken for a bundle: a searcher's opening and closing
//!   trades around the trades they target (a sandwich), all on one pool. The
//!   transactions between them wait for the opening one, and the closing one,
//!   which waits for the opening one as its sender's next, also waits for the
//!   transaction just before it. On the captured mainnet blocks, the costliest
//!   aborted incarnation was most often the first victim of such a bundle at
//!   the top of the block, run beside the opening trade.
//!
//! Apart from waits, a transaction that would still be running when the
//! other workers have finished the rest of the block is started early,
//! beside the in-order execution: one whose gas limit, as a share of the
//! block's gas, is at least the share of the block's transactions after it
//! divided among the other workers (and at least [`EARLY_GAS_SHARE`]). On the
//! captured mainnet blocks such a transaction (a proof verification, a batch
//! of swaps) often ran for a third to a half of the block's whole work near
//! its end, and started in order it kept one worker busy while the others
//! had nothing left to do. A limit says little about the gas used, but a
//! transaction with a small one is never long, and one started early for
//! nothing costs its own execution only when a lower transaction changes
//! what it read.
//!
//! Invariants: every hint of transaction `k` names a transaction below `k`,
//! so waits form no cycle; and a hint only delays a transaction until its
//! blocker has executed once. A wrong guess costs parallelism, never
//! correctness: validation still checks every read.

use crate::{block::BlockInput, scheduler::TxIdx};
use alloy_primitives::{map::HashMap, Address};

/// The largest distance between the two transactions of one sender that are
/// taken for a bundle's opening and closing trades.
pub const BUNDLE_SPAN: usize = 4;

/// What one transaction waits for: its sender's previous transaction, and the
/// opening trade of the bundle it sits in (or, for a closing trade, the
/// transaction just before it).
pub type Hints = [Option<TxIdx>; 2];

/// The hints of each of `block`'s transactions (see the module docs).
pub fn wait_hints(block: &BlockInput) -> Vec<Hints> {
    let previous = previous_by_sender(block);
    let mut hints: Vec<Hints> = previous.iter().map(|p| [*p, None]).collect();
    let mut bundle = |k: TxIdx, blocker: TxIdx| {
        let slot = &mut hints[k][1];
        *slot = Some(slot.map_or(blocker, |b| b.max(blocker)));
    };
    for (close, open) in previous.iter().enumerate() {
        let Some(open) = *open else {
            continue;
        };
        if !(2..=BUNDLE_SPAN).contains(&(close - open)) {
            continue;
        }
        for inside in open + 1..close {
            bundle(inside, open);
        }
        bundle(close, close - 1);
    }
    hints
}

/// The least share of the block's gas (numerator, denominator) a
/// transaction's gas limit must reach for it to start early.
pub const EARLY_GAS_SHARE: (u64, u64) = (1, 20);

/// The transactions of `block` to start early on `threads` workers, latest
/// first (see the module docs): a gas limit whose share of `gas` (the
/// block's gas used) is at least [`EARLY_GAS_SHARE`] and at least the share
/// of transactions after it over `threads - 1`, and no wait (`hints`): a
/// transaction that waits for a lower one would only be suspended.
pub fn early_starts(block: &BlockInput, hints: &[Hints], gas: u64, threads: usize) -> Vec<TxIdx> {
    let (num, den) = (u128::from(EARLY_GAS_SHARE.0), u128::from(EARLY_GAS_SHARE.1));
    let n = block.transactions.len();
    let others = threads.saturating_sub(1) as u128;
    if others == 0 {
        return Vec::new();
    }
    let gas = u128::from(gas);
    (0..n)
        .rev()
        .filter(|&k| {
            let limit = u128::from(block.transactions[k].env.gas_limit);
            let after = (n - k - 1) as u128;
            // limit / gas >= num / den and >= after / n / others, in integers.
            limit * den >= gas * num
                && limit * n as u128 * others >= gas * after
                && hints.get(k).is_some_and(|h| h.iter().all(Option::is_none))
        })
        .collect()
}

/// For each transaction, the previous transaction of the same sender.
fn previous_by_sender(block: &BlockInput) -> Vec<Option<TxIdx>> {
    // Sized up front: growing the map cost a twentieth of a chained block.
    let mut last: HashMap<Address, TxIdx> =
        HashMap::with_capacity_and_hasher(block.transactions.len(), Default::default());
    block
        .transactions
        .iter()
        .enumerate()
        .map(|(i, tx)| last.insert(tx.sender, i))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::PreparedTx;
    use alloy_primitives::B256;
    use revm::context::TxEnv;

    fn block(senders: &[u8]) -> BlockInput {
        BlockInput {
            header: Default::default(),
            transactions: senders
                .iter()
                .map(|s| PreparedTx {
                    hash: B256::ZERO,
                    tx_type: 2,
                    sender: Address::with_last_byte(*s),
                    env: TxEnv::default(),
                })
                .collect(),
            withdrawals: None,
            ommers: Vec::new(),
        }
    }

    #[test]
    fn transactions_that_would_outlast_the_rest_start_early_latest_first() {
        // Ten transactions; 0 is heavy but has most of the block after it,
        // 2 is heavy but waits for its sender's previous one.
        let mut b = block(&[1, 2, 1, 3, 4, 5, 6, 7, 8, 9]);
        let limits = [800, 10, 900, 10, 600, 10, 199, 250, 49, 50];
        for (tx, limit) in b.transactions.iter_mut().zip(limits) {
            tx.env.gas_limit = limit;
        }
        let hints = wait_hints(&b);
        // On two workers, 4 (a share of 0.6 against 5 of 10 after it), 7
        // (0.25 against 0.2) and 9 (0.05 against nothing after it) outlast
        // the rest; 6 (0.199 against 0.3) and 8 (below 1/20) do not.
        assert_eq!(early_starts(&b, &hints, 1000, 2), vec![9, 7, 4]);
        // On three, 6 (0.199 against 0.15) and 0 (0.8 against 0.45) do too.
        assert_eq!(early_starts(&b, &hints, 1000, 3), vec![9, 7, 6, 4, 0]);
        assert!(early_starts(&b, &hints, 1000, 1).is_empty());
        assert!(early_starts(&b, &hints, 100_000, 2).is_empty());
    }

    #[test]
    fn a_sender_chain_waits_link_by_link() {
        assert_eq!(
            wait_hints(&block(&[1, 1, 1])),
            vec![[None, None], [Some(0), None], [Some(1), None]]
        );
    }

    #[test]
    fn a_sandwich_waits_for_its_opening_trade_and_closes_last() {
        // Searcher 9 opens at 0 and closes at 3 around victims 1 and 2;
        // transaction 4 is outside.
        assert_eq!(
            wait_hints(&block(&[9, 1, 2, 9, 3])),
            vec![
                [None, None],
                [None, Some(0)],
                [None, Some(0)],
                [Some(0), Some(2)],
                [None, None],
            ]
        );
    }

    #[test]
    fn far_apart_transactions_of_one_sender_are_no_bundle() {
        let hints = wait_hints(&block(&[9, 1, 2, 3, 4, 9]));
        assert_eq!(hints[5], [Some(0), None]);
        assert!(hints[1..5].iter().all(|h| h[1].is_none()));
    }

    #[test]
    fn overlapping_bundles_wait_for_the_nearest_opening_and_never_upwards() {
        // 9 opens at 0 and closes at 2; 8 opens at 1 and closes at 4.
        let hints = wait_hints(&block(&[9, 8, 9, 7, 8]));
        assert_eq!(hints[1], [None, Some(0)]);
        assert_eq!(hints[2], [Some(0), Some(1)]);
        assert_eq!(hints[3], [None, Some(1)]);
        assert_eq!(hints[4], [Some(1), Some(3)]);
        for (k, h) in hints.iter().enumerate() {
            assert!(h.iter().flatten().all(|&b| b < k), "{k}: {h:?}");
        }
    }
}
