//! Loader for the captured-block layout (`blocks/<N>/{pre_state,bytecodes}.json`
//! and `block_hashes.json`): builds an [`InMemoryState`] holding the accounts a
//! block touches. Every value is validated; nothing here panics on bad files.

use crate::{AccountInfo, InMemoryState, StateError};
use alloy_primitives::{keccak256, Address, Bytes, B256, U256};
use serde::Deserialize;
use std::{collections::BTreeMap, path::Path};

/// One account of `pre_state.json`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PreAccount {
    balance: U256,
    nonce: u64,
    #[serde(default)]
    code_hash: Option<B256>,
    #[serde(default)]
    storage: BTreeMap<U256, U256>,
}

/// One entry of `bytecodes.json`: raw code, or an EIP-7702 delegation.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum CodeEntry {
    Raw(Bytes),
    Delegation { eip7702: Address },
}

/// Reads and parses a JSON file with errors that name the file.
pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, StateError> {
    let bytes = std::fs::read(path).map_err(|source| StateError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_slice(&bytes).map_err(|source| StateError::Json {
        path: path.to_path_buf(),
        source,
    })
}

/// Loads `block_hashes.json` (`{"<decimal number>": "0x<hash>"}`); a missing file means none.
pub fn load_block_hashes(path: &Path) -> Result<BTreeMap<u64, B256>, StateError> {
    if !path.exists() {
        return Ok(BTreeMap::new());
    }
    let raw: BTreeMap<String, B256> = read_json(path)?;
    raw.into_iter()
        .map(|(number, hash)| {
            number
                .parse::<u64>()
                .map(|n| (n, hash))
                .map_err(|_| StateError::Invalid {
                    path: path.to_path_buf(),
                    reason: format!("block number {number:?} is not a decimal integer"),
                })
        })
        .collect()
}

/// Builds the pre-state of one captured block from its folder
/// (`pre_state.json` + `bytecodes.json`) and the shared block hashes.
pub fn load_pre_state(
    block_dir: &Path,
    block_hashes: &BTreeMap<u64, B256>,
) -> Result<InMemoryState, StateError> {
    let pre_path = block_dir.join("pre_state.json");
    let code_path = block_dir.join("bytecodes.json");
    let accounts: BTreeMap<Address, PreAccount> = read_json(&pre_path)?;
    let codes: BTreeMap<B256, CodeEntry> = read_json(&code_path)?;

    let mut state = InMemoryState::new();
    for (hash, entry) in codes {
        let code = match entry {
            CodeEntry::Raw(code) => code,
            CodeEntry::Delegation { eip7702 } => {
                let mut raw = vec![0xef, 0x01, 0x00];
                raw.extend_from_slice(eip7702.as_slice());
                Bytes::from(raw)
            }
        };
        if keccak256(&code) != hash {
            return Err(StateError::Invalid {
                path: code_path,
                reason: format!("code under {hash} does not hash to it"),
            });
        }
        state.insert_code_with_hash(hash, code);
    }
    for (address, account) in accounts {
        let code_hash = match account.code_hash {
            Some(hash) => {
                if crate::StateReader::code(&state, &hash)?.is_none() {
                    return Err(StateError::Invalid {
                        path: code_path,
                        reason: format!("no code for {hash}, the code hash of {address}"),
                    });
                }
                hash
            }
            None => crate::account::KECCAK_EMPTY,
        };
        let info = AccountInfo {
            balance: account.balance,
            nonce: account.nonce,
            code_hash,
        };
        state.insert_account(address, info, account.storage);
    }
    for (number, hash) in block_hashes {
        state.insert_block_hash(*number, *hash);
    }
    Ok(state)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StateReader;

    fn write(dir: &Path, name: &str, text: &str) {
        std::fs::write(dir.join(name), text).unwrap();
    }

    fn temp_dir(tag: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("pel-state-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn loads_accounts_codes_and_storage() {
        let dir = temp_dir("ok");
        let code_hash = keccak256([0x60, 0x00]);
        write(
            &dir,
            "pre_state.json",
            &format!(
                r#"{{"0x0000000000000000000000000000000000000001":{{"balance":"0x10","nonce":2,"code_hash":"{code_hash}","storage":{{"0x1":"0x2a"}}}}}}"#
            ),
        );
        write(
            &dir,
            "bytecodes.json",
            &format!(r#"{{"{code_hash}":"0x6000"}}"#),
        );
        let state = load_pre_state(&dir, &BTreeMap::new()).unwrap();
        let a = Address::with_last_byte(1);
        let info = state.account(&a).unwrap().unwrap();
        assert_eq!(info.balance, U256::from(16));
        assert_eq!(info.nonce, 2);
        assert_eq!(info.code_hash, code_hash);
        assert_eq!(state.storage(&a, &U256::from(1)).unwrap(), U256::from(42));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn rejects_missing_code_and_bad_json() {
        let dir = temp_dir("bad");
        write(
            &dir,
            "pre_state.json",
            r#"{"0x0000000000000000000000000000000000000001":{"balance":"0x10","nonce":2,"code_hash":"0x1111111111111111111111111111111111111111111111111111111111111111"}}"#,
        );
        write(&dir, "bytecodes.json", "{}");
        let err = load_pre_state(&dir, &BTreeMap::new()).unwrap_err();
        assert!(err.to_string().contains("no code for"), "{err}");
        write(&dir, "pre_state.json", "{not json");
        let err = load_pre_state(&dir, &BTreeMap::new()).unwrap_err();
        assert!(matches!(err, StateError::Json { .. }), "{err}");
        std::fs::remove_file(dir.join("pre_state.json")).unwrap();
        let err = load_pre_state(&dir, &BTreeMap::new()).unwrap_err();
        assert!(matches!(err, StateError::Io { .. }), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
