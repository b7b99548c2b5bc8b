//! Interval mining builds the next tick's block ahead while the pool is
//! quiet. The tick commits that block only when the head, the pool and the
//! timestamp are those it was built with, and it is then the very block the
//! tick would have built; any change makes the tick build afresh.
#![allow(clippy::unwrap_used)]

mod common;

use alloy_consensus::{TxEip1559, TxEnvelope, TypedTransaction};
use alloy_primitives::{Address, TxKind, U256};
use pel_node::devnet::{
    run::{open_node, NodeOptions},
    DevNode,
};
use pel_rpc::Backend;

fn transfer(node: &DevNode, from: Address, nonce: u64) -> TxEnvelope {
    let tx = TxEip1559 {
        chain_id: 31337,
        nonce,
        gas_limit: 21_000,
        max_fee_per_gas: 10_000_000_000,
        max_priority_fee_per_gas: 1_000_000_000,
        to: TxKind::Call(Address::with_last_byte(0x42)),
        value: U256::from(1),
        ..TxEip1559::default()
    };
    node.sign_transaction(from, TypedTransaction::Eip1559(tx))
        .unwrap()
}

#[test]
fn block_built_ahead_is_the_tick_block_and_only_while_nothing_changed() {
    let dir = common::temp_dir("prebuild");
    let options = NodeOptions {
        datadir: dir.join("data"),
        no_mining: true,
        threads: Some(2),
        ..NodeOptions::default()
    };
    let node = open_node(&options).unwrap().node;
    let accounts = node.accounts();
    let mut txs = Vec::new();
    for from in &accounts[..4] {
        for nonce in 0..3 {
            txs.push(transfer(&node, *from, nonce));
        }
    }
    let head_time = node.block(0).unwrap().unwrap().block.header.timestamp;
    let t = head_time + 10;

    // The block mined at the tick without building ahead...
    for tx in &txs {
        node.submit(tx.clone()).unwrap();
    }
    let snapshot = node.snapshot().unwrap();
    let at_tick = node.mine_one(Some(t)).unwrap();
    assert_eq!(at_tick.block.body.transactions.len(), txs.len());
    assert!(node.revert(snapshot).unwrap());

    // ...equals the block built ahead and committed at the tick.
    for tx in &txs {
        node.submit(tx.clone()).unwrap();
    }
    assert!(node.prebuild(t).unwrap());
    let ahead = node.mine_one(Some(t)).unwrap();
    assert_eq!(node.prebuilt_blocks(), 1);
    assert_eq!(ahead.hash, at_tick.hash);
    assert_eq!(ahead.receipts, at_tick.receipts);
    assert_eq!(ahead.senders, at_tick.senders);
    assert_eq!(node.pool_content().pending.len(), 0);

    // A transaction arriving after the build: the tick builds afresh, with it.
    node.submit(transfer(&node, accounts[5], 0)).unwrap();
    assert!(node.prebuild(t + 1).unwrap());
    node.submit(transfer(&node, accounts[6], 0)).unwrap();
    let block = node.mine_one(Some(t + 1)).unwrap();
    assert_eq!(block.block.body.transactions.len(), 2);
    assert_eq!(node.prebuilt_blocks(), 1);

    // Another timestamp than the one built for: afresh.
    node.submit(transfer(&node, accounts[5], 1)).unwrap();
    assert!(node.prebuild(t + 5).unwrap());
    let block = node.mine_one(Some(t + 6)).unwrap();
    assert_eq!(block.block.header.timestamp, t + 6);
    assert_eq!(block.block.body.transactions.len(), 1);
    assert_eq!(node.prebuilt_blocks(), 1);

    // The head moved (a state edit mines a block): afresh, on the new head.
    node.submit(transfer(&node, accounts[5], 2)).unwrap();
    assert!(node.prebuild(t + 20).unwrap());
    node.set_account(
        Address::with_last_byte(0x77),
        pel_rpc::AccountEdit {
            balance: Some(U256::from(7)),
            ..Default::default()
        },
    )
    .unwrap();
    let edit_head = node.block(4).unwrap().unwrap();
    let block = node.mine_one(Some(t + 20)).unwrap();
    assert_eq!(block.block.header.parent_hash, edit_head.hash);
    assert_eq!(block.block.body.transactions.len(), 1);
    assert_eq!(node.prebuilt_blocks(), 1);

    // Nothing pending: nothing to build ahead.
    assert!(!node.prebuild(t + 30).unwrap());
}
