//! EIP-7685 requests: a Prague block whose transaction makes the deposit
//! contract emit a `DepositEvent` yields the deposit request and the requests
//! hash of the EIP, the same from the sequential and the parallel executor; a
//! malformed deposit log makes the block invalid.
#![allow(clippy::unwrap_used)]

use alloy_consensus::Header;
use alloy_primitives::{keccak256, Address, Bytes, TxKind, B256, U256};
use pel_executor::{
    execute_block, revm::context::TxEnv, sequential::ExecOptions, BlockInput, ChainConfig,
    CostModel, ExecError, Fork, ParallelExecutor, PreparedTx,
};
use pel_state::{AccountInfo, InMemoryState};
use sha2::{Digest, Sha256};

/// Emits LOG1(DepositEvent topic) with the call data as the log data.
fn emitter() -> Bytes {
    let topic = keccak256(b"DepositEvent(bytes,bytes,bytes,bytes,bytes)");
    let mut code = vec![0x36, 0x60, 0x00, 0x60, 0x00, 0x37, 0x7f];
    code.extend_from_slice(topic.as_slice());
    code.extend_from_slice(&[0x36, 0x60, 0x00, 0xa1, 0x00]);
    code.into()
}

/// ABI-encoded DepositEvent data; `amount_size` 8 is well formed.
fn deposit_data(amount_size: u64) -> Vec<u8> {
    let fields: [(u64, u64, u8); 5] = [
        (160, 48, 1),
        (256, 32, 2),
        (320, amount_size, 3),
        (384, 96, 4),
        (512, 8, 5),
    ];
    let mut data = vec![0u8; 576];
    for (i, (offset, size, fill)) in fields.into_iter().enumerate() {
        data[i * 32 + 24..i * 32 + 32].copy_from_slice(&offset.to_be_bytes());
        let o = offset as usize;
        data[o + 24..o + 32].copy_from_slice(&size.to_be_bytes());
        for b in &mut data[o + 32..o + 32 + size.min(96) as usize] {
            *b = fill;
        }
    }
    data
}

fn block(chain: &ChainConfig, data: Vec<u8>) -> (InMemoryState, BlockInput) {
    let mut state = InMemoryState::new();
    let sender = Address::with_last_byte(0x51);
    state.insert_account(
        sender,
        AccountInfo::with_balance(U256::from(10u64).pow(U256::from(18))),
        [],
    );
    let hash = state.insert_code(emitter());
    state.insert_account(
        chain.deposit_contract,
        AccountInfo {
            balance: U256::ZERO,
            nonce: 1,
            code_hash: hash,
        },
        [],
    );
    let env = TxEnv {
        tx_type: 2,
        caller: sender,
        gas_limit: 200_000,
        gas_price: 20,
        gas_priority_fee: Some(2),
        kind: TxKind::Call(chain.deposit_contract),
        data: data.into(),
        chain_id: Some(1),
        ..TxEnv::default()
    };
    let header = Header {
        number: 1,
        timestamp: 1,
        gas_limit: 30_000_000,
        base_fee_per_gas: Some(7),
        excess_blob_gas: Some(0),
        parent_beacon_block_root: Some(B256::ZERO),
        ..Header::default()
    };
    let tx = PreparedTx {
        hash: B256::with_last_byte(1),
        tx_type: 2,
        sender,
        env,
    };
    (
        state,
        BlockInput {
            header,
            transactions: vec![tx],
            withdrawals: Some(Vec::new()),
            ommers: Vec::new(),
        },
    )
}

#[test]
fn a_deposit_log_becomes_a_deposit_request() {
    let chain = ChainConfig::single_fork(1, Fork::Prague);
    let (state, block) = block(&chain, deposit_data(8));
    let out = execute_block(&state, &block, &chain, ExecOptions::default()).unwrap();
    assert!(out.receipts[0].success);
    // The request: type 0 followed by the five fields, concatenated.
    let mut request = vec![0u8];
    for (size, fill) in [(48, 1u8), (32, 2), (8, 3), (96, 4), (8, 5)] {
        request.extend(std::iter::repeat_n(fill, size));
    }
    let mut outer = Sha256::new();
    outer.update(Sha256::digest(&request));
    let expected = B256::from_slice(&outer.finalize());
    assert_eq!(out.requests_hash(), Some(expected));
    let mut executor = ParallelExecutor::new(2).unwrap();
    executor.cost_model = CostModel::always();
    let (par, _) = executor
        .execute_block(&state, &block, &chain, ExecOptions::default())
        .unwrap();
    assert_eq!(par, out);
    // Before Prague there are no requests.
    let cancun = ChainConfig::single_fork(1, Fork::Cancun);
    let out = execute_block(&state, &block, &cancun, ExecOptions::default()).unwrap();
    assert_eq!(out.requests_hash(), None);
}

#[test]
fn a_malformed_deposit_log_makes_the_block_invalid() {
    let chain = ChainConfig::single_fork(1, Fork::Prague);
    let (state, block) = block(&chain, deposit_data(7));
    let err = execute_block(&state, &block, &chain, ExecOptions::default()).unwrap_err();
    assert!(matches!(err, ExecError::Requests { .. }), "{err}");
}
