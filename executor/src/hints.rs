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
