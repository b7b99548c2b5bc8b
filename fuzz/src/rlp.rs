//! Transaction, block, header and receipt decoding, as `eth_sendRawTransaction`,
//! `pel import` and the store see bytes. Oracle: whatever decodes re-encodes
//! to something that decodes to the same value.

use alloy_consensus::{Block, Header, TxEnvelope};
use alloy_eips::eip2718::{Decodable2718, Encodable2718};
use alloy_rlp::{Decodable, Encodable};
use pel_executor::{ChainConfig, PreparedTx};
use pel_node::{chain, import, validate};

/// Decodes `data` every way PEL decodes untrusted bytes.
pub fn run(data: &[u8]) {
    transaction(data);
    block(data);
    let _ = import::split_blocks(data);
    let _ = chain::decode_receipts(data);
    let mut raw = data;
    if let Ok(header) = Header::decode(&mut raw) {
        let mut out = Vec::new();
        header.encode(&mut out);
        let again = Header::decode(&mut out.as_slice());
        assert_eq!(again.ok().as_ref(), Some(&header), "header round trip");
    }
}

fn transaction(data: &[u8]) {
    let mut raw = data;
    let Ok(tx) = TxEnvelope::decode_2718(&mut raw) else {
        return;
    };
    let encoded = tx.encoded_2718();
    let again = TxEnvelope::decode_2718(&mut encoded.as_slice());
    assert_eq!(again.ok().as_ref(), Some(&tx), "transaction round trip");
    let _ = PreparedTx::recover(&tx, None, false);
    let _ = PreparedTx::recover(&tx, None, true);
}

fn block(data: &[u8]) {
    let Ok(block) = validate::decode_block(data) else {
        return;
    };
    let encoded = chain::encode_block(&block);
    let again: Option<Block<TxEnvelope>> = validate::decode_block(&encoded).ok();
    assert_eq!(again.as_ref(), Some(&block), "block round trip");
    let mainnet = ChainConfig::mainnet();
    let _ = validate::body_shape_error(&mainnet, &block);
    let _ = validate::validate_body(&mainnet, &block);
    let _ = validate::validate_transactions_root(&block);
    let _ = validate::validate_header(&mainnet, &block.header, &block.header);
}
