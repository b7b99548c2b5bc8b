//! EIP-7685 execution-layer requests of a block (Prague on): deposits parsed
//! from the deposit contract's logs (EIP-6110), then the outputs of the
//! withdrawal (EIP-7002) and consolidation (EIP-7251) system calls. The
//! header's `requestsHash` commits to them.
//!
//! A deposit log whose layout is not the deposit contract's makes the block
//! invalid, as the EIP requires.

use crate::TxReceipt;
use alloy_eips::{eip6110::DEPOSIT_REQUEST_TYPE, eip7685::Requests};
use alloy_primitives::{keccak256, Address, Bytes, B256};

/// Field sizes of a deposit request: pubkey, withdrawal credentials, amount,
/// signature, index.
const DEPOSIT_FIELDS: [usize; 5] = [48, 32, 8, 96, 8];

/// Byte offsets of those fields in the ABI-encoded `DepositEvent` data.
const DEPOSIT_OFFSETS: [usize; 5] = [160, 256, 320, 384, 512];

/// Length of the ABI-encoded `DepositEvent` data.
const DEPOSIT_DATA_BYTES: usize = 576;

/// `keccak256("DepositEvent(bytes,bytes,bytes,bytes,bytes)")`.
fn deposit_event_topic() -> B256 {
    keccak256(b"DepositEvent(bytes,bytes,bytes,bytes,bytes)")
}

/// The deposit request (192 bytes) in one `DepositEvent`'s data.
pub fn parse_deposit(data: &[u8]) -> Result<[u8; 192], String> {
    if data.len() != DEPOSIT_DATA_BYTES {
        return Err(format!(
            "deposit event data is {} bytes, not {DEPOSIT_DATA_BYTES}",
            data.len()
        ));
    }
    let word = |at: usize| -> Option<usize> {
        let w = &data[at..at + 32];
        if w[..24].iter().any(|b| *b != 0) {
            return None;
        }
        Some(u64::from_be_bytes(w[24..].try_into().ok()?) as usize)
    };
    let mut out = [0u8; 192];
    let mut at = 0;
    for (i, (&size, &offset)) in DEPOSIT_FIELDS.iter().zip(&DEPOSIT_OFFSETS).enumerate() {
        if word(i * 32) != Some(offset) {
            return Err(format!("deposit event field {i} is not at offset {offset}"));
        }
        if word(offset) != Some(size) {
            return Err(format!("deposit event field {i} is not {size} bytes"));
        }
        out[at..at + size].copy_from_slice(&data[offset + 32..offset + 32 + size]);
        at += size;
    }
    Ok(out)
}

/// The block's requests: deposits from `receipts`' logs of `deposit_contract`,
/// then each system call's `(type, output)` in order.
pub fn collect(
    deposit_contract: Address,
    receipts: &[TxReceipt],
    system: Vec<(u8, Bytes)>,
) -> Result<Requests, String> {
    let topic = deposit_event_topic();
    let mut deposits = Vec::new();
    for log in receipts.iter().flat_map(|r| &r.logs) {
        if log.address == deposit_contract && log.data.topics().first() == Some(&topic) {
            deposits.extend_from_slice(&parse_deposit(&log.data.data)?);
        }
    }
    let mut requests = Requests::default();
    requests.push_request_with_type(DEPOSIT_REQUEST_TYPE, deposits);
    for (kind, output) in system {
        requests.push_request_with_type(kind, output);
    }
    Ok(requests)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(sizes: [usize; 5], offsets: [usize; 5]) -> Vec<u8> {
        let mut data = vec![0u8; DEPOSIT_DATA_BYTES];
        for i in 0..5 {
            data[i * 32 + 24..i * 32 + 32].copy_from_slice(&(offsets[i] as u64).to_be_bytes());
            let o = offsets[i];
            data[o + 24..o + 32].copy_from_slice(&(sizes[i] as u64).to_be_bytes());
            for b in &mut data[o + 32..o + 32 + sizes[i]] {
                *b = i as u8 + 1;
            }
        }
        data
    }

    #[test]
    fn a_well_formed_deposit_concatenates_its_fields() {
        let out = parse_deposit(&event(DEPOSIT_FIELDS, DEPOSIT_OFFSETS)).unwrap();
        assert!(out[..48].iter().all(|b| *b == 1));
        assert!(out[48..80].iter().all(|b| *b == 2));
        assert!(out[80..88].iter().all(|b| *b == 3));
        assert!(out[88..184].iter().all(|b| *b == 4));
        assert!(out[184..].iter().all(|b| *b == 5));
    }

    #[test]
    fn a_bad_layout_is_an_error() {
        let mut sizes = DEPOSIT_FIELDS;
        sizes[2] = 7;
        assert!(parse_deposit(&event(sizes, DEPOSIT_OFFSETS)).is_err());
        assert!(parse_deposit(&[0u8; 575]).is_err());
        let mut data = event(DEPOSIT_FIELDS, DEPOSIT_OFFSETS);
        data[31] = 161;
        assert!(parse_deposit(&data).is_err());
    }

    #[test]
    fn no_requests_hash_to_the_empty_hash() {
        let requests = collect(
            Address::ZERO,
            &[],
            vec![(1, Bytes::new()), (2, Bytes::new())],
        )
        .unwrap();
        assert_eq!(
            requests.requests_hash(),
            alloy_eips::eip7685::EMPTY_REQUESTS_HASH
        );
    }
}
