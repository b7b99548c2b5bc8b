//! Dev accounts: keys derived from a BIP-39 mnemonic along m/44'/60'/0'/0/i,
//! so the default mnemonic gives the addresses and keys anvil and hardhat print.

use alloy_signer_local::{coins_bip39::English, MnemonicBuilder, PrivateKeySigner};

/// The mnemonic anvil and hardhat use by default.
pub const DEFAULT_MNEMONIC: &str = "test test test test test test test test test test test junk";

/// The first `count` keys of `mnemonic`.
pub fn derive(mnemonic: &str, count: u32) -> Result<Vec<PrivateKeySigner>, String> {
    (0..count)
        .map(|i| {
            MnemonicBuilder::<English>::default()
                .phrase(mnemonic)
                .index(i)
                .and_then(|b| b.build())
                .map_err(|e| format!("cannot derive account {i} from the mnemonic: {e}"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_mnemonic_gives_the_familiar_first_account() {
        let keys = derive(DEFAULT_MNEMONIC, 2).unwrap();
        assert_eq!(
            keys[0].address().to_string(),
            "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
        );
        assert_eq!(
            keys[1].address().to_string(),
            "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
        );
        assert!(derive("not a mnemonic", 1).is_err());
    }
}
