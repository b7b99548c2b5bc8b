//! Genesis: the chain configuration, the genesis header and the initial state,
//! from a geth-style genesis file (`pel init --genesis`) or built in code (the
//! official blockchain tests, the devnet).

use alloy_consensus::{constants::EMPTY_OMMER_ROOT_HASH, Header, EMPTY_ROOT_HASH};
use alloy_primitives::{keccak256, Address, Bytes, B256, U256};
use pel_executor::{chain::BlobParams, ChainConfig, Fork};
use pel_state::{AccountDiff, AccountInfo, InMemoryState, StateDiff};
use std::path::{Path, PathBuf};

/// A genesis file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum GenesisError {
    /// The file could not be read.
    #[error("cannot read genesis {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a valid geth-style genesis.
    #[error("malformed genesis {path}: {source}")]
    Json {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: serde_json::Error,
    },
    /// The file parses but describes something PEL cannot run.
    #[error("unsupported genesis: {0}")]
    Unsupported(String),
}

/// Everything needed to create a chain.
#[derive(Clone, Debug)]
pub struct GenesisSpec {
    /// Fork schedule and chain id.
    pub chain: ChainConfig,
    /// The genesis header (its state root already computed).
    pub header: Header,
    /// The initial state as a diff over an empty state.
    pub alloc: StateDiff,
}

impl GenesisSpec {
    /// The genesis block hash.
    pub fn hash(&self) -> B256 {
        self.header.hash_slow()
    }
}

/// Adds an account to an allocation diff.
pub fn alloc_account(
    alloc: &mut StateDiff,
    address: Address,
    balance: U256,
    nonce: u64,
    code: Option<Bytes>,
    storage: impl IntoIterator<Item = (U256, U256)>,
) {
    let code_hash = match code {
        Some(code) if !code.is_empty() => {
            let hash = keccak256(&code);
            alloc.codes.insert(hash, code);
            hash
        }
        _ => pel_state::account::KECCAK_EMPTY,
    };
    alloc.accounts.insert(
        address,
        AccountDiff {
            info: Some(AccountInfo {
                balance,
                nonce,
                code_hash,
            }),
            storage_cleared: false,
            storage: storage.into_iter().filter(|(_, v)| !v.is_zero()).collect(),
        },
    );
}

/// The state root of an allocation.
pub fn alloc_root(alloc: &StateDiff) -> B256 {
    let mut state = InMemoryState::new();
    state.apply(alloc);
    state.state_root()
}

/// Reads a geth-style genesis file.
pub fn from_file(path: &Path) -> Result<GenesisSpec, GenesisError> {
    let text = std::fs::read_to_string(path).map_err(|source| GenesisError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let genesis: alloy_genesis::Genesis =
        serde_json::from_str(&text).map_err(|source| GenesisError::Json {
            path: path.to_path_buf(),
            source,
        })?;
    from_geth(&genesis)
}

/// Parses a geth-style genesis from its JSON text (`source` names it in errors).
pub fn from_json(text: &[u8], source: &Path) -> Result<GenesisSpec, GenesisError> {
    let genesis: alloy_genesis::Genesis =
        serde_json::from_slice(text).map_err(|e| GenesisError::Json {
            path: source.to_path_buf(),
            source: e,
        })?;
    from_geth(&genesis)
}

/// Converts a parsed geth genesis.
pub fn from_geth(genesis: &alloy_genesis::Genesis) -> Result<GenesisSpec, GenesisError> {
    let chain = chain_config(&genesis.config)?;
    let mut alloc = StateDiff::default();
    for (address, account) in &genesis.alloc {
        let storage = account
            .storage
            .iter()
            .flatten()
            .map(|(k, v)| (U256::from_be_bytes(k.0), U256::from_be_bytes(v.0)));
        alloc_account(
            &mut alloc,
            *address,
            account.balance,
            account.nonce.unwrap_or(0),
            account.code.clone(),
            storage,
        );
    }
    let number = genesis.number.unwrap_or(0);
    let fork = chain.fork_at(number, genesis.timestamp);
    let base_fee = genesis
        .base_fee_per_gas
        .map(|f| {
            u64::try_from(f)
                .map_err(|_| GenesisError::Unsupported("baseFeePerGas overflows u64".into()))
        })
        .transpose()?;
    let mut header = Header {
        parent_hash: genesis.parent_hash.unwrap_or_default(),
        ommers_hash: EMPTY_OMMER_ROOT_HASH,
        beneficiary: genesis.coinbase,
        state_root: alloc_root(&alloc),
        transactions_root: EMPTY_ROOT_HASH,
        receipts_root: EMPTY_ROOT_HASH,
        difficulty: genesis.difficulty,
        number,
        gas_limit: genesis.gas_limit,
        gas_used: 0,
        timestamp: genesis.timestamp,
        extra_data: genesis.extra_data.clone(),
        mix_hash: genesis.mix_hash,
        nonce: genesis.nonce.into(),
        ..Header::default()
    };
    fill_fork_fields(
        &mut header,
        fork,
        base_fee,
        genesis.excess_blob_gas,
        genesis.blob_gas_used,
    );
    Ok(GenesisSpec {
        chain,
        header,
        alloc,
    })
}

/// Sets the header fields a fork requires of a genesis block, using defaults
/// where the genesis leaves them out (base fee 1 gwei, zero blob gas).
pub fn fill_fork_fields(
    header: &mut Header,
    fork: Fork,
    base_fee: Option<u64>,
    excess_blob_gas: Option<u64>,
    blob_gas_used: Option<u64>,
) {
    if fork >= Fork::London {
        header.base_fee_per_gas = Some(base_fee.unwrap_or(alloy_eips::eip1559::INITIAL_BASE_FEE));
    }
    if fork >= Fork::Shanghai {
        header.withdrawals_root = Some(EMPTY_ROOT_HASH);
    }
    if fork >= Fork::Cancun {
        header.excess_blob_gas = Some(excess_blob_gas.unwrap_or(0));
        header.blob_gas_used = Some(blob_gas_used.unwrap_or(0));
        header.parent_beacon_block_root = Some(B256::ZERO);
    }
    if fork >= Fork::Prague {
        header.requests_hash = Some(alloy_eips::eip7685::EMPTY_REQUESTS_HASH);
    }
}

/// PEL's chain configuration from geth's.
pub fn chain_config(config: &alloy_genesis::ChainConfig) -> Result<ChainConfig, GenesisError> {
    let mut blocks = vec![(Fork::Frontier, 0)];
    let by_block = [
        (Fork::Homestead, config.homestead_block),
        (Fork::Tangerine, config.eip150_block),
        (Fork::SpuriousDragon, config.eip158_block),
        (Fork::Byzantium, config.byzantium_block),
        (
            Fork::Petersburg,
            config.petersburg_block.or(config.constantinople_block),
        ),
        (Fork::Istanbul, config.istanbul_block),
        (Fork::Berlin, config.berlin_block),
        (Fork::London, config.london_block),
    ];
    for (fork, at) in by_block {
        if let Some(at) = at {
            blocks.push((fork, at));
        }
    }
    if config.constantinople_block.is_some() && config.petersburg_block.is_none() {
        return Err(GenesisError::Unsupported(
            "Constantinople without Petersburg (the reverted EIP-1283 rules) is not supported"
                .into(),
        ));
    }
    if config.dao_fork_support && config.dao_fork_block.is_some() {
        return Err(GenesisError::Unsupported(
            "the DAO fork's irregular state change is not implemented".into(),
        ));
    }
    let paris = match (
        config.merge_netsplit_block,
        config.terminal_total_difficulty,
        config.terminal_total_difficulty_passed,
    ) {
        (Some(at), _, _) => Some(at),
        (None, Some(ttd), _) if ttd.is_zero() => Some(0),
        (None, _, true) => Some(0),
        _ => None,
    };
    if let Some(at) = paris {
        blocks.push((Fork::Paris, at));
    }
    let mut times = Vec::new();
    for (fork, at) in [
        (Fork::Shanghai, config.shanghai_time),
        (Fork::Cancun, config.cancun_time),
        (Fork::Prague, config.prague_time),
        (Fork::Osaka, config.osaka_time),
    ] {
        if let Some(at) = at {
            times.push((fork, at));
        }
    }
    let mut blob_schedule = Vec::new();
    for (name, fork_time, default) in [
        (
            "cancun",
            config.cancun_time,
            alloy_eips::eip7840::BlobParams::cancun(),
        ),
        (
            "prague",
            config.prague_time,
            alloy_eips::eip7840::BlobParams::prague(),
        ),
        (
            "osaka",
            config.osaka_time,
            alloy_eips::eip7840::BlobParams::osaka(),
        ),
    ] {
        if let Some(timestamp) = fork_time {
            let params = config.blob_schedule.get(name).copied().unwrap_or(default);
            blob_schedule.push(BlobParams {
                timestamp,
                update_fraction: u64::try_from(params.update_fraction).map_err(|_| {
                    GenesisError::Unsupported(format!("{name} blob update fraction overflows"))
                })?,
                max_blobs_per_block: params.max_blob_count,
            });
        }
    }
    blob_schedule.sort_by_key(|p| p.timestamp);
    Ok(ChainConfig {
        chain_id: config.chain_id,
        blocks,
        times,
        blob_schedule,
        deposit_contract: config
            .deposit_contract_address
            .unwrap_or(alloy_eips::eip6110::MAINNET_DEPOSIT_CONTRACT_ADDRESS),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn geth_genesis_with_all_forks_at_zero() {
        let json = r#"{
            "config": {"chainId": 1337, "homesteadBlock": 0, "eip150Block": 0, "eip155Block": 0,
                "eip158Block": 0, "byzantiumBlock": 0, "constantinopleBlock": 0, "petersburgBlock": 0,
                "istanbulBlock": 0, "berlinBlock": 0, "londonBlock": 0, "mergeNetsplitBlock": 0,
                "terminalTotalDifficulty": 0, "shanghaiTime": 0, "cancunTime": 0},
            "gasLimit": "0x1c9c380", "difficulty": "0x0", "timestamp": "0x0", "extraData": "0x",
            "alloc": {"0x00000000000000000000000000000000000000aa": {"balance": "0x10",
                "code": "0x6000", "storage": {"0x01": "0x02"}}}
        }"#;
        let genesis: alloy_genesis::Genesis = serde_json::from_str(json).unwrap();
        let spec = from_geth(&genesis).unwrap();
        assert_eq!(spec.chain.chain_id, 1337);
        assert_eq!(spec.chain.fork_at(0, 0), Fork::Cancun);
        assert_eq!(spec.header.base_fee_per_gas, Some(1_000_000_000));
        assert_eq!(spec.header.withdrawals_root, Some(EMPTY_ROOT_HASH));
        assert_eq!(spec.header.state_root, alloc_root(&spec.alloc));
        let account = &spec.alloc.accounts[&Address::with_last_byte(0xaa)];
        assert_eq!(account.storage[&U256::from(1)], U256::from(2));
    }

    #[test]
    fn unreadable_and_malformed_files_are_errors() {
        assert!(matches!(
            from_file(Path::new("/nonexistent/genesis.json")),
            Err(GenesisError::Io { .. })
        ));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("g.json");
        std::fs::write(&path, "{ not json").unwrap();
        assert!(matches!(from_file(&path), Err(GenesisError::Json { .. })));
    }
}
