//! Parallel == sequential on blocks the fuzzer writes: transfers and contract
//! calls over a small shared state, so that transactions collide on balances,
//! nonces and storage slots, revert, run out of gas, create contracts, pay or
//! are the block's beneficiary, and sometimes are invalid.
//!
//! The first byte picks the beneficiary (a sender or not); each following
//! 8-byte chunk is one transaction:
//! `[sender, kind, target, value, slot a, slot b, flags, gas]`.
//! The kitchen-sink contract does `s[b] = s[a] + 1`, stores `BALANCE(x)` in
//! `s[b + 16]`, calls `x` with some value, and reverts when asked.

use alloy_primitives::{Address, Bytes, TxKind, B256, U256};
use pel_executor::{
    execute_block, sequential::ExecOptions, BlockInput, BlockOutput, ChainConfig, CostModel,
    ExecError, Fork, ParallelExecutor,
};
use pel_node::bench;
use pel_state::{AccountInfo, InMemoryState};
use std::sync::OnceLock;

/// Most transactions in one fuzzed block.
pub const MAX_TXS: usize = 48;

/// `s[b] = s[a] + 1; s[b + 16] = BALANCE(x); CALL(x, value); if flags REVERT`,
/// with a = word 0, b = word 1, flags = word 2, x = word 3, value = word 4.
#[rustfmt::skip]
const KITCHEN_SINK: [u8; 52] = [
    0x60, 0x00, 0x35, 0x54,             // s[a]
    0x60, 0x01, 0x01,                   // + 1
    0x60, 0x20, 0x35, 0x55,             // -> s[b]
    0x60, 0x60, 0x35, 0x31,             // BALANCE(x)
    0x60, 0x20, 0x35, 0x60, 0x10, 0x01, // b + 16
    0x55,                               // -> s[b + 16]
    0x60, 0x00, 0x60, 0x00, 0x60, 0x00, 0x60, 0x00, // no data in or out
    0x60, 0x80, 0x35,                   // value
    0x60, 0x60, 0x35,                   // x
    0x5a, 0xf1, 0x50,                   // CALL with all gas, drop success
    0x60, 0x40, 0x35,                   // flags
    0x60, 0x2e, 0x57,                   // jump to the revert if set
    0x00,                               // STOP
    0x5b, 0x60, 0x00, 0x60, 0x00, 0xfd, // 0x2e: REVERT(0, 0)
];

/// Init code of a created contract: stores 1 in slot 0, deploys no code.
const INIT_CODE: [u8; 6] = [0x60, 0x01, 0x60, 0x00, 0x55, 0x00];

fn eoa(i: u8) -> Address {
    Address::with_last_byte(0x10 + i)
}

const CONTRACT_C: Address = Address::new([0xc0; 20]);
const CONTRACT_D: Address = Address::new([0xd0; 20]);
const COINBASE: Address = Address::new([0xcb; 20]);

fn kitchen_sink() -> Bytes {
    Bytes::from_static(&KITCHEN_SINK)
}

fn ether(n: u64) -> U256 {
    U256::from(n) * U256::from(10u64).pow(U256::from(18))
}

/// The shared pre-state: six accounts (two with little ether), two
/// kitchen-sink contracts with storage and balance.
pub fn pre_state() -> InMemoryState {
    let mut state = InMemoryState::new();
    let balances = [
        ether(10),
        ether(10),
        ether(10),
        ether(10),
        U256::from(1_000_000_000_000_000u64),
        U256::from(10_000_000_000_000_000u64),
    ];
    for (i, balance) in balances.into_iter().enumerate() {
        state.insert_account(eoa(i as u8), AccountInfo::with_balance(balance), []);
    }
    let hash = state.insert_code(kitchen_sink());
    for c in [CONTRACT_C, CONTRACT_D] {
        state.insert_account(
            c,
            AccountInfo {
                balance: ether(1),
                nonce: 1,
                code_hash: hash,
            },
            (0..4u64).map(|s| (U256::from(s), U256::from(s * 7 + 1))),
        );
    }
    state
}

/// The block an input stands for.
pub fn block(data: &[u8]) -> BlockInput {
    let beneficiary = match data.first() {
        Some(b) if b & 1 == 1 => eoa(3),
        _ => COINBASE,
    };
    let targets = [
        eoa(0),
        eoa(1),
        eoa(2),
        eoa(3),
        eoa(4),
        eoa(5),
        CONTRACT_C,
        CONTRACT_D,
    ];
    let mut nonces = [0u64; 6];
    let transactions = data
        .get(1..)
        .unwrap_or_default()
        .chunks_exact(8)
        .take(MAX_TXS)
        .enumerate()
        .map(|(i, c)| {
            let sender_index = c[0] as usize % 6;
            let sender = eoa(sender_index as u8);
            let target = targets[c[2] as usize % targets.len()];
            let value = match c[3] % 4 {
                0 => U256::ZERO,
                1 => U256::from(1000),
                2 => U256::from(1_000_000_000_000_000u64),
                _ => ether(100),
            };
            let flags = c[6];
            let gas_limit = [21_000, 60_000, 200_000, 25_000][c[7] as usize % 4];
            let word = |v: U256| v.to_be_bytes::<32>();
            let (kind, data) = match c[1] % 4 {
                0 => (TxKind::Call(target), Bytes::new()),
                1 | 2 => {
                    let contract = if c[1] % 4 == 1 {
                        CONTRACT_C
                    } else {
                        CONTRACT_D
                    };
                    let mut input = Vec::with_capacity(160);
                    input.extend_from_slice(&word(U256::from(c[4] % 4)));
                    input.extend_from_slice(&word(U256::from(c[5] % 4)));
                    input.extend_from_slice(&word(U256::from(flags & 1)));
                    input.extend_from_slice(&word(U256::from_be_slice(target.as_slice())));
                    input.extend_from_slice(&word(U256::from((flags >> 1) as u64 * 1000)));
                    (TxKind::Call(contract), input.into())
                }
                _ => (TxKind::Create, Bytes::from_static(&INIT_CODE)),
            };
            // Bit 7: a wrong nonce (the transaction, and so the block, is invalid).
            let nonce = nonces[sender_index] + u64::from(flags >> 7);
            if flags >> 7 == 0 {
                nonces[sender_index] += 1;
            }
            bench::transaction(
                B256::with_last_byte(i as u8),
                sender,
                kind,
                value,
                data,
                nonce,
                gas_limit,
            )
        })
        .collect();
    let header = bench::header(beneficiary, 30_000_000);
    BlockInput {
        header,
        transactions,
        withdrawals: Some(Vec::new()),
        ommers: Vec::new(),
    }
}

fn executors() -> &'static [ParallelExecutor] {
    static EXECUTORS: OnceLock<Vec<ParallelExecutor>> = OnceLock::new();
    EXECUTORS.get_or_init(|| {
        [2, 4]
            .into_iter()
            .filter_map(|t| ParallelExecutor::new(t).ok())
            .map(|mut e| {
                e.cost_model = CostModel::always();
                e
            })
            .collect()
    })
}

fn state() -> &'static InMemoryState {
    static STATE: OnceLock<InMemoryState> = OnceLock::new();
    STATE.get_or_init(pre_state)
}

fn outcome(result: Result<BlockOutput, ExecError>) -> Result<BlockOutput, String> {
    result.map_err(|e| e.to_string())
}

/// Runs the block sequentially and on 2 and 4 threads; all must agree.
pub fn run(data: &[u8]) {
    let block = block(data);
    let chain = ChainConfig::single_fork(1, Fork::Cancun);
    let expected = outcome(execute_block(
        state(),
        &block,
        &chain,
        ExecOptions::default(),
    ));
    for executor in executors() {
        let got = outcome(
            executor
                .execute_block(state(), &block, &chain, ExecOptions::default())
                .map(|(output, _)| output),
        );
        match (&expected, &got) {
            (Ok(a), Ok(b)) => {
                if let Some(difference) = pel_node::replay::first_difference(a, b) {
                    panic!(
                        "{} threads: parallel differs from sequential: {difference}",
                        executor.threads()
                    );
                }
            }
            (Err(a), Err(b)) => assert_eq!(a, b, "{} threads: errors differ", executor.threads()),
            (a, b) => panic!(
                "{} threads: sequential {:?} vs parallel {:?}",
                executor.threads(),
                a.as_ref().map(|o| o.gas_used),
                b.as_ref().map(|o| o.gas_used)
            ),
        }
    }
}
