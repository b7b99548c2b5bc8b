//! Plain transfers credit their recipient without depending on its balance:
//! many payments to one address run in parallel without a single conflict,
//! and the result still equals the sequential one, also when the recipient
//! spends what it received in the same block.

#![allow(clippy::unwrap_used)] // tests unwrap: a panic is the failure report

use alloy_consensus::Header;
use alloy_primitives::{Address, Bytes, TxKind, B256, U256};
use pel_executor::{
    execute_block, revm::context::TxEnv, sequential::ExecOptions, BlockInput, ChainConfig,
    CostModel, Fork, ParallelExecutor, PreparedTx,
};
use pel_state::{AccountInfo, InMemoryState};

const PAYERS: u8 = 64;

/// Each payment: 0.001 ETH plus the payer's index in wei.
const PAYMENT: u64 = 1_000_000_000_000_000;

fn payer(i: u8) -> Address {
    let mut a = [0x10u8; 20];
    a[19] = i;
    Address::from(a)
}

/// What the deposit address receives from the payers.
fn received() -> u64 {
    (0..PAYERS as u64).map(|i| PAYMENT + i).sum()
}

fn deposit_address() -> Address {
    Address::repeat_byte(0xde)
}

fn transfer(i: usize, from: Address, to: Address, value: u64, nonce: u64) -> PreparedTx {
    let env = TxEnv {
        tx_type: 2,
        caller: from,
        gas_limit: 21_000,
        gas_price: 20,
        gas_priority_fee: Some(2),
        kind: TxKind::Call(to),
        value: U256::from(value),
        data: Bytes::new(),
        nonce,
        chain_id: Some(1),
        ..TxEnv::default()
    };
    PreparedTx {
        hash: B256::with_last_byte(i as u8),
        tx_type: 2,
        sender: from,
        env,
    }
}

fn state() -> InMemoryState {
    let mut s = InMemoryState::new();
    for i in 0..PAYERS {
        s.insert_account(
            payer(i),
            AccountInfo::with_balance(U256::from(10u64.pow(18))),
            [],
        );
    }
    s.insert_account(
        deposit_address(),
        AccountInfo::with_balance(U256::from(5)),
        [],
    );
    s
}

fn block(transactions: Vec<PreparedTx>) -> BlockInput {
    BlockInput {
        header: Header {
            number: 20_000_000,
            timestamp: 1_800_000_000,
            beneficiary: Address::repeat_byte(0xcb),
            gas_limit: 30_000_000,
            base_fee_per_gas: Some(7),
            ..Header::default()
        },
        transactions,
        withdrawals: Some(Vec::new()),
        ommers: Vec::new(),
    }
}

fn payments() -> Vec<PreparedTx> {
    (0..PAYERS)
        .map(|i| {
            transfer(
                i as usize,
                payer(i),
                deposit_address(),
                PAYMENT + i as u64,
                0,
            )
        })
        .collect()
}

fn executor(threads: usize) -> ParallelExecutor {
    let mut executor = ParallelExecutor::new(threads).unwrap();
    executor.cost_model = CostModel::always();
    executor
}

/// The payers, and the deposit address funded for gas of its own payments.
fn funded_state() -> InMemoryState {
    let mut pre = state();
    pre.insert_account(
        deposit_address(),
        AccountInfo::with_balance(U256::from(10_000_000u64)),
        [],
    );
    pre
}

/// Runs `block` 20 times at 2 and at 4 threads, checks every output against
/// the sequential one (all transactions successful), and returns the
/// re-executions and failed validations of every run and each thread
/// count's conflict-profile edges.
fn run_in_parallel(
    pre: &InMemoryState,
    block: &BlockInput,
    chain: &ChainConfig,
) -> (Vec<(usize, usize)>, Vec<usize>) {
    let sequential = execute_block(pre, block, chain, ExecOptions::default()).unwrap();
    assert!(sequential.receipts.iter().all(|r| r.success));
    let (mut conflicts, mut edges) = (Vec::new(), Vec::new());
    for threads in [2, 4] {
        let executor = executor(threads);
        for _ in 0..20 {
            let (parallel, stats) = executor
                .execute_block(pre, block, chain, ExecOptions::default())
                .unwrap();
            assert_eq!(parallel, sequential, "{threads} threads");
            conflicts.push((stats.reexecutions, stats.validation_failures));
        }
        let (_, _, profile) = executor
            .profile_block(pre, block, chain, ExecOptions::default())
            .unwrap();
        edges.push(profile.edges);
    }
    (conflicts, edges)
}

#[test]
fn payments_to_one_address_do_not_conflict() {
    let chain = ChainConfig::single_fork(1, Fork::Shanghai);
    let block = block(payments());
    let sequential = execute_block(state(), &block, &chain, ExecOptions::default()).unwrap();
    let deposit = sequential.diff.accounts.get(&deposit_address()).unwrap();
    assert_eq!(
        deposit.info.map(|i| i.balance),
        Some(U256::from(5 + received()))
    );
    let (conflicts, edges) = run_in_parallel(&state(), &block, &chain);
    assert!(conflicts.iter().all(|c| *c == (0, 0)), "{conflicts:?}");
    // The conflict profile sees no dependency either.
    assert_eq!(edges, [0, 0]);
}

#[test]
fn a_credited_account_that_spends_sees_every_credit() {
    let chain = ChainConfig::single_fork(1, Fork::Shanghai);
    // The deposit address pays midway, and at the end more than it held
    // before the block (it must see the credits); a fresh address is paid
    // and pays on; one payer pays itself.
    let mut txs = payments();
    let fresh = Address::repeat_byte(0xf7);
    let n = txs.len();
    txs.insert(
        n / 2,
        transfer(n / 2, deposit_address(), fresh, 1_000_000, 0),
    );
    txs.push(transfer(n + 1, payer(3), payer(3), 7, 1));
    txs.push(transfer(n + 2, fresh, payer(9), 10_000, 0));
    txs.push(transfer(n + 3, deposit_address(), payer(1), received(), 1));
    run_in_parallel(&funded_state(), &block(txs), &chain);
}

#[test]
fn a_paid_address_pays_without_depending_on_its_credits() {
    // The deposit address pays out midway: its balance check passes on what
    // it held before the block, so it does not depend on the credits below.
    let chain = ChainConfig::single_fork(1, Fork::Shanghai);
    let mut txs = payments();
    let n = txs.len();
    txs.insert(
        n / 2,
        transfer(n / 2, deposit_address(), payer(0), 1_000_000, 0),
    );
    for (i, tx) in txs.iter_mut().enumerate() {
        tx.hash = B256::with_last_byte(i as u8);
    }
    let (conflicts, edges) = run_in_parallel(&funded_state(), &block(txs), &chain);
    assert!(conflicts.iter().all(|c| *c == (0, 0)), "{conflicts:?}");
    assert_eq!(edges, [0, 0]);
}
