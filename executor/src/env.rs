//! revm's block and configuration environments derived from a header and a chain.

use crate::ChainConfig;
use alloy_consensus::Header;
use alloy_primitives::U256;
use revm::context::{BlockEnv, CfgEnv};
use revm::primitives::hardfork::SpecId;

/// The configuration environment for a block of `spec` on `chain`.
pub fn cfg_env(chain: &ChainConfig, spec: SpecId, timestamp: u64) -> CfgEnv {
    let mut cfg = CfgEnv::new_with_spec(spec).with_chain_id(chain.chain_id);
    if let Some(params) = chain.blob_params_at(timestamp) {
        if spec >= SpecId::CANCUN {
            cfg.blob_base_fee_update_fraction = Some(params.update_fraction);
            // A transaction may carry at most a block's worth of blobs; Osaka
            // (EIP-7594) caps it at 6 whatever the block allows.
            let per_tx = if spec >= SpecId::OSAKA {
                params.max_blobs_per_block.min(6)
            } else {
                params.max_blobs_per_block
            };
            cfg.max_blobs_per_tx = Some(per_tx);
        }
    }
    cfg
}

/// The block environment of a header executed under `spec`.
pub fn block_env(header: &Header, spec: SpecId, chain: &ChainConfig) -> BlockEnv {
    let mut env = BlockEnv {
        number: U256::from(header.number),
        beneficiary: header.beneficiary,
        timestamp: U256::from(header.timestamp),
        gas_limit: header.gas_limit,
        basefee: header.base_fee_per_gas.unwrap_or_default(),
        difficulty: header.difficulty,
        prevrandao: (spec >= SpecId::MERGE).then_some(header.mix_hash),
        blob_excess_gas_and_price: None,
        slot_num: 0,
    };
    if spec >= SpecId::CANCUN {
        let fraction = chain
            .blob_params_at(header.timestamp)
            .map(|p| p.update_fraction)
            .unwrap_or(revm::primitives::eip4844::BLOB_BASE_FEE_UPDATE_FRACTION_CANCUN);
        env.set_blob_excess_gas_and_price(header.excess_blob_gas.unwrap_or_default(), fraction);
    }
    env
}
