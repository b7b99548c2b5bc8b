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
//! - A contract call waits for the latest call to the same function (the
//!   same selector) of the same contract by another sender at most
//!   [`CALL_SPAN`] transactions before it, unless the block calls that
//!   function more than [`CALL_RACE_MAX`] times: searchers racing for one
//!   opportunity, users of one pool or one sale, all reading the slots the
//!   first of them writes. On the 20 largest captured mainnet blocks run
//!   through Block-STM, these waits cut the re-executions from about 100 to
//!   about 32 a pass and the parallel time by 5-7% (10760440: 27 to 5 and
//!   1.59x to 1.7-1.8x; 12522062: 38 to 2-3). Calls to one function that do
//!   not conflict (transfers of one token between different holders) only
//!   run in a slightly different order: the wait ends when the earlier call
//!   has executed, which on two workers is usually at once.
//! - An ERC-20 `transfer`, `transferFrom` or `approve` (as the partitioned
//!   path reads them, [`crate::partition`]) waits for the latest earlier one
//!   of the same token by another sender that names one of its holders,
//!   however far back and however popular the token: both change that
//!   holder's balance (or allowance). In 12522062, 56 of the block's 73
//!   USDT transfers pay one exchange deposit address; the popular function
//!   waits for nothing, so they ran beside each other and 18-36 of them ran
//!   again each pass (1.10-1.50x on replay). Waiting for the holder's
//!   previous transfer, none runs again (1.47-1.53x), and the captured set's
//!   re-executions fall from 92 to 55 at two threads and from 238 to 78 at
//!   eight. Where timing already hid such a run of transfers (17666333),
//!   the waits cost 1.5-3% of the block.
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
//! The share of transactions after it is only a guess of the work after it:
//! a transaction whose gas limit is a quarter of the block's gas or more
//! ([`BIG_GAS_SHARE`]) starts early wherever it stands. In 18988207, a
//! 5,000,000-gas call (40% of the block's gas) at position 23 of 186 ran for
//! 4.0 ms of the block's 9.0 ms, and started in order at 1.0 ms it left the
//! other worker idle for its last 1.2 ms (1.54-1.56x); started first, the
//! block ran at 1.80-1.83x. 7280000 (a 6,000,000-gas call at position 9 of
//! 118) went from 1.47-1.55x to 1.67-1.75x.
//!
//! A *heavy chain* starts early the same way, as one: a sender's heavy
//! contract calls in a row, led by the latest heavy call before them to the
//! same function of the same contract (see [`early_starts`]). In 9069000, a
//! bot's seven 400,000-gas calls near the block's end, each waiting for the
//! one before, and another sender's call to the same function before them,
//! were half of the block's work; started in order, they ran one after the
//! other while the other worker had nothing left to do. Started without
//! their lead, they all ran again once it executed, so the lead comes first.
//!
//! Invariants: every hint of transaction `k` names a transaction below `k`,
//! so waits form no cycle; and a hint only delays a transaction until its
//! blocker has executed once. A wrong guess costs parallelism, never
//! correctness: validation still checks every read.

use crate::{
    block::BlockInput,
    partition::{erc20_holders, Key},
    scheduler::TxIdx,
    PreparedTx,
};
use alloy_primitives::{map::HashMap, Address, TxKind};

/// The largest distance between the two transactions of one sender that are
/// taken for a bundle's opening and closing trades.
pub const BUNDLE_SPAN: usize = 4;

/// The largest distance from a contract call to the earlier call of the same
/// function by another sender that it waits for.
pub const CALL_SPAN: usize = 8;

/// A function called more often than this in one block (a token's
/// `transfer`) is taken for a popular one, not a race: its calls do not wait
/// for each other. Waiting, they would form one chain through the block (a
/// block of 4,000 transfers of one token ran at 0.72x instead of 1.27x on
/// Block-STM).
pub const CALL_RACE_MAX: usize = 16;

/// What one transaction waits for: its sender's previous transaction, the
/// opening trade of the bundle it sits in (or, for a closing trade, the
/// transaction just before it), and the latest nearby call to the same
/// function by another sender.
pub type Hints = [Option<TxIdx>; 3];

/// The hints of each of `block`'s transactions (see the module docs).
pub fn wait_hints(block: &BlockInput) -> Vec<Hints> {
    let previous = previous_by_sender(block);
    let mut hints: Vec<Hints> = previous.iter().map(|p| [*p, None, None]).collect();
    let keys: Vec<Option<CallKey>> = block.transactions.iter().map(call_key).collect();
    let mut calls: HashMap<CallKey, usize> = HashMap::default();
    for key in keys.iter().flatten() {
        *calls.entry(*key).or_default() += 1;
    }
    let mut last_call: HashMap<CallKey, TxIdx> = HashMap::default();
    for (k, key) in keys.into_iter().enumerate() {
        let Some(key) = key.filter(|key| calls.get(key).is_some_and(|&c| c <= CALL_RACE_MAX))
        else {
            continue;
        };
        if let Some(before) = last_call.insert(key, k) {
            let sender = |i: TxIdx| block.transactions[i].sender;
            if k - before <= CALL_SPAN && sender(before) != sender(k) {
                hints[k][2] = Some(before);
            }
        }
    }
    // An ERC-20 call waits for the latest earlier one of the same token that
    // names one of its holders. The map is keyed by the partitioned plan's
    // 64-bit hash of (token, holder) (a collision only adds a wait) and sized
    // once: with the pairs themselves as keys in a growing map, this pass
    // took 2.0 ms of a block of 10,000 token transfers, against 1.2 ms.
    let mut last_holder: HashMap<u64, TxIdx> = HashMap::default();
    for (k, tx) in block.transactions.iter().enumerate() {
        let TxKind::Call(token) = tx.env.kind else {
            continue;
        };
        let Some(holders) =
            erc20_holders(tx.sender, &tx.env.data).filter(|_| tx.env.value.is_zero())
        else {
            continue;
        };
        if last_holder.capacity() == 0 {
            last_holder.reserve(2 * (block.transactions.len() - k));
        }
        let named = if holders[0] == holders[1] { 1 } else { 2 };
        for holder in &holders[..named] {
            let key = Key::Holder(token, *holder).hash();
            let Some(before) = last_holder.insert(key, k) else {
                continue;
            };
            // The sender's own earlier calls are its chain's to wait for.
            if block.transactions[before].sender != tx.sender {
                let slot = &mut hints[k][2];
                *slot = Some(slot.map_or(before, |b| b.max(before)));
            }
        }
    }
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
/// transaction's gas limit, or a chain's, must reach for it to start early.
pub const EARLY_GAS_SHARE: (u64, u64) = (1, 20);

/// The share of the block's gas (numerator, denominator) from which a
/// transaction's gas limit, or a chain's, starts it early wherever it stands
/// (see [`early_starts`]).
pub const BIG_GAS_SHARE: (u64, u64) = (1, 4);

/// The least share of the block's gas (numerator, denominator) the gas limit
/// of each link of a heavy chain must reach (see [`early_starts`]).
pub const CHAIN_LINK_SHARE: (u64, u64) = (1, 40);

/// The transactions of `block` to start early on `threads` workers (see the
/// module docs), in the order to start them: chains whose first transaction
/// comes latest first, each chain's links in block order.
///
/// A *heavy* transaction calls a function of a contract with a gas limit of
/// at least [`CHAIN_LINK_SHARE`] of `gas` (the block's gas used). A chain is
/// a sender's heavy transactions in a row (each waits for the one before
/// it), led by the latest heavy transaction before them that calls the same
/// function of the same contract, if any (they most likely read what it
/// writes: started without it, the chain would run again after it). A
/// chain, or a lone transaction, starts early when its gas limits add up to
/// at least [`EARLY_GAS_SHARE`] of `gas` and either at least the share of the
/// other transactions after its first one over `threads - 1` or at least
/// [`BIG_GAS_SHARE`] of `gas`, and nothing in it waits (`hints`) for a
/// transaction outside it: it would only be suspended.
pub fn early_starts(block: &BlockInput, hints: &[Hints], gas: u64, threads: usize) -> Vec<TxIdx> {
    let n = block.transactions.len();
    let others = threads.saturating_sub(1) as u128;
    if others == 0 || hints.len() != n {
        return Vec::new();
    }
    let gas128 = u128::from(gas);
    let limit = |k: TxIdx| u128::from(block.transactions[k].env.gas_limit);
    let (link_num, link_den) = (
        u128::from(CHAIN_LINK_SHARE.0),
        u128::from(CHAIN_LINK_SHARE.1),
    );
    let calls: Vec<_> = (0..n)
        .map(|k| {
            call_key(&block.transactions[k]).filter(|_| limit(k) * link_den >= gas128 * link_num)
        })
        .collect();
    // Each heavy call's sender's next heavy call, and the latest heavy call
    // before it to the same function.
    let mut next = vec![None; n];
    let mut previous_call = vec![None; n];
    let mut by_sender: HashMap<Address, TxIdx> = HashMap::default();
    let mut by_call: HashMap<CallKey, TxIdx> = HashMap::default();
    for k in 0..n {
        let Some(key) = calls[k] else {
            continue;
        };
        if let Some(before) = by_sender.insert(block.transactions[k].sender, k) {
            next[before] = Some(k);
        }
        previous_call[k] = by_call.insert(key, k);
    }
    let mut in_chain = vec![false; n];
    for k in next.iter().flatten() {
        in_chain[*k] = true;
    }
    let (num, den) = (u128::from(EARLY_GAS_SHARE.0), u128::from(EARLY_GAS_SHARE.1));
    let (big_num, big_den) = (u128::from(BIG_GAS_SHARE.0), u128::from(BIG_GAS_SHARE.1));
    let mut early = Vec::new();
    let mut chain = Vec::new();
    for head in (0..n).rev() {
        if in_chain[head] {
            continue;
        }
        chain.clear();
        if next[head].is_some() {
            if let Some(lead) = previous_call[head].filter(|&p| !in_chain[p] && next[p].is_none()) {
                in_chain[lead] = true;
                chain.push(lead);
            }
        }
        let mut at = Some(head);
        while let Some(k) = at {
            chain.push(k);
            at = next[k];
        }
        let first = chain[0];
        let total: u128 = chain.iter().map(|&k| limit(k)).sum();
        let after = (n - first - chain.len()) as u128;
        // Every wait of a link names an earlier link of the chain.
        let self_contained = chain.iter().enumerate().all(|(i, &k)| {
            hints[k]
                .iter()
                .flatten()
                .all(|blocker| chain[..i].contains(blocker))
        });
        // total / gas >= num / den, and either >= big_num / big_den or >=
        // after / n / others, in integers.
        if self_contained
            && total * den >= gas128 * num
            && (total * big_den >= gas128 * big_num || total * n as u128 * others >= gas128 * after)
        {
            early.extend_from_slice(&chain);
        }
    }
    early
}

/// A contract and one of its functions (the selector).
type CallKey = (Address, [u8; 4]);

/// The contract and function `tx` calls, if it calls one.
fn call_key(tx: &PreparedTx) -> Option<CallKey> {
    match (tx.env.kind, tx.env.data.get(..4)) {
        (TxKind::Call(to), Some(selector)) => {
            let mut key = [0u8; 4];
            key.copy_from_slice(selector);
            Some((to, key))
        }
        _ => None,
    }
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
    use alloy_primitives::{Bytes, B256};
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
        // the rest, and 0 (0.8 against 0.9) holds a quarter of the gas or
        // more; 6 (0.199 against 0.3) and 8 (below 1/20) do neither.
        assert_eq!(early_starts(&b, &hints, 1000, 2), vec![9, 7, 4, 0]);
        // On three, 6 (0.199 against 0.15) does too.
        assert_eq!(early_starts(&b, &hints, 1000, 3), vec![9, 7, 6, 4, 0]);
        assert!(early_starts(&b, &hints, 1000, 1).is_empty());
        assert!(early_starts(&b, &hints, 100_000, 2).is_empty());
    }

    /// A call to function `selector` of contract `to`, with an argument.
    fn call(to: u8, selector: u8) -> (TxKind, Bytes) {
        (
            TxKind::Call(Address::with_last_byte(to)),
            Bytes::from(vec![selector, 0, 0, 0, 1]),
        )
    }

    #[test]
    fn a_heavy_chain_starts_early_led_by_the_call_before_it() {
        // Sender 9 calls the same function of contract 0xaa at 5, 6 and 7;
        // sender 4 called it at 3; 1 and 2 call another function.
        let mut b = block(&[1, 8, 2, 4, 3, 9, 9, 9, 5, 6]);
        for (k, tx) in b.transactions.iter_mut().enumerate() {
            tx.env.gas_limit = 10;
            let (kind, data) = match k {
                3 | 5..=7 => call(0xaa, 1),
                1 | 2 => call(0xaa, 2),
                _ => call(0xbb, 1),
            };
            (tx.env.kind, tx.env.data) = (kind, data);
        }
        for k in [1, 2, 3, 5, 6, 7] {
            b.transactions[k].env.gas_limit = 100;
        }
        let hints = wait_hints(&b);
        // 3, 5, 6 and 7 add up to 400 of 1000 against two others after 3;
        // alone, none outlasts the rest.
        assert_eq!(early_starts(&b, &hints, 1000, 2), vec![3, 5, 6, 7]);
        // Lighter links (below 1/40 of the gas) chain nothing.
        assert!(early_starts(&b, &hints, 5000, 2).is_empty());
        // Plain transfers (no call data) are no links.
        for tx in &mut b.transactions {
            tx.env.data = Bytes::new();
        }
        assert!(early_starts(&b, &hints, 1000, 2).is_empty());
    }

    #[test]
    fn a_call_waits_for_a_nearby_call_to_the_same_function_by_another_sender() {
        let mut b = block(&[1, 2, 1, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13]);
        for (k, tx) in b.transactions.iter_mut().enumerate() {
            (tx.env.kind, tx.env.data) = match k {
                // 0xaa's function 1 at 0, 1, 2 and 12; function 2 at 3;
                // 0xbb's function 1 at 4; a plain transfer to 0xaa at 5.
                0..=2 | 12 => call(0xaa, 1),
                3 => call(0xaa, 2),
                4 => call(0xbb, 1),
                5 => (TxKind::Call(Address::with_last_byte(0xaa)), Bytes::new()),
                _ => call(0xcc, k as u8),
            };
        }
        let calls: Vec<_> = wait_hints(&b).iter().map(|h| h[2]).collect();
        // 1 waits for 0; 2 (sender 1 again) waits for 1, not for its own
        // earlier call; 12 is more than CALL_SPAN after 2.
        assert_eq!(calls[1], Some(0));
        assert_eq!(calls[2], Some(1));
        assert_eq!(calls.iter().flatten().count(), 2, "{calls:?}");
        // A function called more than CALL_RACE_MAX times is popular: no
        // call to it waits.
        let mut b = block(&[1; CALL_RACE_MAX + 1]);
        for (k, tx) in b.transactions.iter_mut().enumerate() {
            tx.sender = Address::with_last_byte(k as u8);
            (tx.env.kind, tx.env.data) = call(0xaa, 1);
        }
        assert!(wait_hints(&b).iter().all(|h| h[2].is_none()));
        b.transactions.pop();
        assert!(wait_hints(&b)[1..].iter().all(|h| h[2].is_some()));
    }

    /// ERC-20 call data: `selector` and the given addresses as arguments,
    /// then an amount.
    fn erc20(selector: [u8; 4], holders: &[u8]) -> Bytes {
        let mut data = selector.to_vec();
        for h in holders {
            data.extend_from_slice(&[0; 12]);
            data.extend_from_slice(Address::with_last_byte(*h).as_slice());
        }
        data.extend_from_slice(&[0; 32]);
        Bytes::from(data)
    }

    #[test]
    fn an_erc20_call_waits_for_the_last_one_naming_its_holders() {
        use crate::partition::{TRANSFER, TRANSFER_FROM};
        let token = TxKind::Call(Address::with_last_byte(0xaa));
        let other_token = TxKind::Call(Address::with_last_byte(0xbb));
        // More transfers than CALL_RACE_MAX, so the call hint stays out.
        let n = CALL_RACE_MAX + 12;
        let senders: Vec<u8> = (1..=n as u8).collect();
        let mut b = block(&senders);
        for tx in &mut b.transactions {
            // Unrelated holders by default.
            let to = tx.sender.0[19] + 100;
            (tx.env.kind, tx.env.data) = (token, erc20(TRANSFER, &[to]));
        }
        let set = |b: &mut BlockInput, k: usize, kind: TxKind, data: Bytes| {
            (b.transactions[k].env.kind, b.transactions[k].env.data) = (kind, data);
        };
        // 2 and 20 pay holder 0xf0, far apart; 25 pays it in another token.
        set(&mut b, 2, token, erc20(TRANSFER, &[0xf0]));
        set(&mut b, 20, token, erc20(TRANSFER, &[0xf0]));
        set(&mut b, 25, other_token, erc20(TRANSFER, &[0xf0]));
        // 22 moves the tokens of 3's sender (4) to 0xf1; 23 pays 0xf1 with
        // value, which is no plain token call.
        set(&mut b, 22, token, erc20(TRANSFER_FROM, &[4, 0xf1]));
        set(&mut b, 23, token, erc20(TRANSFER, &[0xf1]));
        b.transactions[23].env.value = alloy_primitives::U256::from(1);
        let holders: Vec<_> = wait_hints(&b).iter().map(|h| h[2]).collect();
        assert_eq!(holders[20], Some(2));
        assert_eq!(holders[22], Some(3));
        assert_eq!(holders.iter().flatten().count(), 2, "{holders:?}");
        // The sender's own earlier call is its chain's, not a holder's.
        b.transactions[20].sender = b.transactions[2].sender;
        let hints = wait_hints(&b);
        assert_eq!(hints[20], [Some(2), None, None]);
    }

    #[test]
    fn a_sender_chain_waits_link_by_link() {
        assert_eq!(
            wait_hints(&block(&[1, 1, 1])),
            vec![
                [None, None, None],
                [Some(0), None, None],
                [Some(1), None, None]
            ]
        );
    }

    #[test]
    fn a_sandwich_waits_for_its_opening_trade_and_closes_last() {
        // Searcher 9 opens at 0 and closes at 3 around victims 1 and 2;
        // transaction 4 is outside.
        assert_eq!(
            wait_hints(&block(&[9, 1, 2, 9, 3])),
            vec![
                [None, None, None],
                [None, Some(0), None],
                [None, Some(0), None],
                [Some(0), Some(2), None],
                [None, None, None],
            ]
        );
    }

    #[test]
    fn far_apart_transactions_of_one_sender_are_no_bundle() {
        let hints = wait_hints(&block(&[9, 1, 2, 3, 4, 9]));
        assert_eq!(hints[5], [Some(0), None, None]);
        assert!(hints[1..5].iter().all(|h| h[1].is_none()));
    }

    #[test]
    fn overlapping_bundles_wait_for_the_nearest_opening_and_never_upwards() {
        // 9 opens at 0 and closes at 2; 8 opens at 1 and closes at 4.
        let hints = wait_hints(&block(&[9, 8, 9, 7, 8]));
        assert_eq!(hints[1], [None, Some(0), None]);
        assert_eq!(hints[2], [Some(0), Some(1), None]);
        assert_eq!(hints[3], [None, Some(1), None]);
        assert_eq!(hints[4], [Some(1), Some(3), None]);
        for (k, h) in hints.iter().enumerate() {
            assert!(h.iter().flatten().all(|&b| b < k), "{k}: {h:?}");
        }
    }
}
