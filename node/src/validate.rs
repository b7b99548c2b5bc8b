//! Consensus checks of a block before execution: its header against its parent's
//! and its body against its header. Proof-of-work seals and pre-Merge difficulty
//! are *not* verified (PEL imports chains it trusts for history, and the devnet
//! has no miners); everything else the execution layer decides is.

use alloy_consensus::{constants::EMPTY_OMMER_ROOT_HASH, Block, Header, TxEnvelope};
use alloy_eips::eip1559::{BaseFeeParams, INITIAL_BASE_FEE};
use pel_executor::{ChainConfig, Fork};

/// Most extra data a header may carry.
pub const MAX_EXTRA_DATA: usize = 32;
/// Lowest allowed gas limit.
pub const MIN_GAS_LIMIT: u64 = 5000;
/// Highest allowed gas limit (geth's bound: it must fit an i64).
pub const MAX_GAS_LIMIT: u64 = i64::MAX as u64;

/// Why a header or body is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

fn invalid<T>(reason: impl Into<String>) -> Result<T, Invalid> {
    Err(Invalid(reason.into()))
}

/// The blob parameters (with the target the excess formula needs) in force at
/// `timestamp`: PEL's schedule gives the maximum and update fraction; the target
/// is the mainnet one for that maximum.
pub fn blob_params(chain: &ChainConfig, timestamp: u64) -> Option<alloy_eips::eip7840::BlobParams> {
    let params = chain.blob_params_at(timestamp)?;
    let fork = chain.fork_at(u64::MAX, timestamp);
    let mut out = match params.max_blobs_per_block {
        6 => alloy_eips::eip7840::BlobParams::cancun(),
        9 => alloy_eips::eip7840::BlobParams::prague(),
        15 => alloy_eips::eip7840::BlobParams::bpo1(),
        21 => alloy_eips::eip7840::BlobParams::bpo2(),
        max => alloy_eips::eip7840::BlobParams {
            target_blob_count: max * 2 / 3,
            max_blob_count: max,
            ..alloy_eips::eip7840::BlobParams::prague()
        },
    };
    out.update_fraction = params.update_fraction as u128;
    out.max_blob_count = params.max_blobs_per_block;
    out.blob_base_cost = if fork >= Fork::Osaka {
        alloy_eips::eip7840::BLOB_BASE_COST
    } else {
        0
    };
    Some(out)
}

/// Checks `header` as the child of `parent`.
pub fn validate_header(
    chain: &ChainConfig,
    parent: &Header,
    header: &Header,
) -> Result<(), Invalid> {
    let fork = chain.fork_at(header.number, header.timestamp);
    let parent_fork = chain.fork_at(parent.number, parent.timestamp);
    if header.number != parent.number + 1 {
        return invalid(format!(
            "block number {} does not follow parent {}",
            header.number, parent.number
        ));
    }
    if header.timestamp <= parent.timestamp {
        return invalid(format!(
            "timestamp {} is not after the parent's {}",
            header.timestamp, parent.timestamp
        ));
    }
    if header.extra_data.len() > MAX_EXTRA_DATA {
        return invalid(format!(
            "extra data is {} bytes, more than {MAX_EXTRA_DATA}",
            header.extra_data.len()
        ));
    }
    if header.gas_limit > MAX_GAS_LIMIT {
        return invalid(format!(
            "gas limit {} is above {MAX_GAS_LIMIT}",
            header.gas_limit
        ));
    }
    if header.gas_limit < MIN_GAS_LIMIT {
        return invalid(format!(
            "gas limit {} is below {MIN_GAS_LIMIT}",
            header.gas_limit
        ));
    }
    if header.gas_used > header.gas_limit {
        return invalid(format!(
            "gas used {} exceeds the gas limit {}",
            header.gas_used, header.gas_limit
        ));
    }
    // At the London block the parent's limit counts doubled (elasticity).
    let parent_limit = if fork >= Fork::London && parent_fork < Fork::London {
        parent.gas_limit.saturating_mul(2)
    } else {
        parent.gas_limit
    };
    let bound = parent_limit / 1024;
    if header.gas_limit.abs_diff(parent_limit) >= bound {
        return invalid(format!(
            "gas limit {} changes too much from the parent's {parent_limit} (bound {bound})",
            header.gas_limit
        ));
    }
    if fork >= Fork::London {
        let expected = if parent_fork < Fork::London {
            INITIAL_BASE_FEE
        } else {
            parent
                .next_block_base_fee(BaseFeeParams::ethereum())
                .ok_or_else(|| Invalid("parent has no base fee".into()))?
        };
        match header.base_fee_per_gas {
            Some(fee) if fee == expected => {}
            Some(fee) => return invalid(format!("base fee {fee}, expected {expected}")),
            None => return invalid("base fee missing"),
        }
    } else if header.base_fee_per_gas.is_some() {
        return invalid("base fee before London");
    }
    if fork >= Fork::Paris {
        if !header.difficulty.is_zero() {
            return invalid("difficulty must be zero after the Merge");
        }
        if !header.nonce.is_zero() {
            return invalid("nonce must be zero after the Merge");
        }
        if header.ommers_hash != EMPTY_OMMER_ROOT_HASH {
            return invalid("ommers are not allowed after the Merge");
        }
    }
    present(
        fork >= Fork::Shanghai,
        header.withdrawals_root.is_some(),
        "withdrawals root",
    )?;
    present(
        fork >= Fork::Cancun,
        header.blob_gas_used.is_some(),
        "blob gas used",
    )?;
    present(
        fork >= Fork::Cancun,
        header.excess_blob_gas.is_some(),
        "excess blob gas",
    )?;
    present(
        fork >= Fork::Cancun,
        header.parent_beacon_block_root.is_some(),
        "parent beacon block root",
    )?;
    present(
        fork >= Fork::Prague,
        header.requests_hash.is_some(),
        "requests hash",
    )?;
    if fork >= Fork::Cancun {
        let params = blob_params(chain, header.timestamp)
            .ok_or_else(|| Invalid("no blob parameters configured".into()))?;
        let expected = if parent_fork < Fork::Cancun {
            0
        } else {
            let parent_params = blob_params(chain, parent.timestamp).unwrap_or(params);
            parent
                .next_block_excess_blob_gas(parent_params)
                .ok_or_else(|| Invalid("parent lacks blob gas fields".into()))?
        };
        if header.excess_blob_gas != Some(expected) {
            return invalid(format!(
                "excess blob gas {:?}, expected {expected}",
                header.excess_blob_gas
            ));
        }
        let used = header.blob_gas_used.unwrap_or_default();
        if used > params.max_blob_gas_per_block() {
            return invalid(format!(
                "blob gas used {used} exceeds the block maximum {}",
                params.max_blob_gas_per_block()
            ));
        }
        if !used.is_multiple_of(alloy_eips::eip4844::DATA_GAS_PER_BLOB) {
            return invalid(format!(
                "blob gas used {used} is not a whole number of blobs"
            ));
        }
    }
    Ok(())
}

fn present(required: bool, is_present: bool, field: &str) -> Result<(), Invalid> {
    match (required, is_present) {
        (true, false) => invalid(format!("{field} missing")),
        (false, true) => invalid(format!("{field} present before its fork")),
        _ => Ok(()),
    }
}

/// Checks the transactions root. Import runs it after execution, so that a block
/// carrying an invalid transaction is reported for that transaction.
pub fn validate_transactions_root(block: &Block<TxEnvelope>) -> Result<(), Invalid> {
    let tx_root = alloy_consensus::proofs::calculate_transaction_root(&block.body.transactions);
    if tx_root != block.header.transactions_root {
        return invalid(format!(
            "transactions root {tx_root} differs from the header's {}",
            block.header.transactions_root
        ));
    }
    Ok(())
}

/// True when the body's shape disagrees with its fork: withdrawals present
/// before Shanghai or missing from Shanghai on (an encoding error, since the
/// fork fixes the body's list of fields).
pub fn body_shape_error(chain: &ChainConfig, block: &Block<TxEnvelope>) -> Option<String> {
    let header = &block.header;
    let fork = chain.fork_at(header.number, header.timestamp);
    match (fork >= Fork::Shanghai, block.body.withdrawals.is_some()) {
        (true, false) => Some("body lacks the withdrawals list its fork requires".into()),
        (false, true) => Some("body has a withdrawals list before Shanghai".into()),
        _ => None,
    }
}

/// Checks the body against the header: ommers hash and withdrawals (the
/// transactions root is [`validate_transactions_root`]).
pub fn validate_body(chain: &ChainConfig, block: &Block<TxEnvelope>) -> Result<(), Invalid> {
    let header = &block.header;
    let fork = chain.fork_at(header.number, header.timestamp);
    let ommers = alloy_consensus::proofs::calculate_ommers_root(&block.body.ommers);
    if ommers != header.ommers_hash {
        return invalid(format!("ommers hash {ommers} differs from the header's"));
    }
    if fork >= Fork::Paris && !block.body.ommers.is_empty() {
        return invalid("ommers are not allowed after the Merge");
    }
    if block.body.ommers.len() > 2 {
        return invalid("more than two ommers");
    }
    match (&block.body.withdrawals, header.withdrawals_root) {
        (Some(ws), Some(root)) => {
            let computed = alloy_consensus::proofs::calculate_withdrawals_root(ws);
            if computed != root {
                return invalid(format!(
                    "withdrawals root {computed} differs from the header's {root}"
                ));
            }
        }
        (None, None) => {}
        (Some(_), None) => {
            return invalid("withdrawals in a block whose header has no withdrawals root")
        }
        (None, Some(_)) => return invalid("withdrawals missing"),
    }
    if fork < Fork::Shanghai && block.body.withdrawals.is_some() {
        return invalid("withdrawals before Shanghai");
    }
    Ok(())
}

/// Decodes one RLP block, refusing trailing bytes.
pub fn decode_block(mut bytes: &[u8]) -> Result<Block<TxEnvelope>, alloy_rlp::Error> {
    let block = <Block<TxEnvelope> as alloy_rlp::Decodable>::decode(&mut bytes)?;
    if !bytes.is_empty() {
        return Err(alloy_rlp::Error::Custom("trailing bytes after the block"));
    }
    Ok(block)
}
