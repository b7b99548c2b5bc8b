//! Transactions as the executor takes them: the signed envelope, its recovered
//! sender, and the revm [`TxEnv`] built from both once, up front.

use alloy_consensus::{transaction::SignerRecoverable, Transaction, TxEnvelope};
use alloy_eips::eip2718::Typed2718;
use alloy_primitives::{Address, B256};
use revm::context::TxEnv;
use revm::context_interface::either::Either;

/// A transaction ready to execute.
#[derive(Clone, Debug)]
pub struct PreparedTx {
    /// Transaction hash.
    pub hash: B256,
    /// EIP-2718 type byte.
    pub tx_type: u8,
    /// The sender, recovered from the signature.
    pub sender: Address,
    /// What revm executes.
    pub env: TxEnv,
}

/// Why a transaction could not be prepared.
#[derive(Debug, thiserror::Error)]
pub enum TxError {
    /// The signature does not recover to any address.
    #[error("signature does not recover: {0}")]
    BadSignature(String),
    /// The signature recovers to another address than the one claimed.
    #[error("signature recovers to {recovered}, not to the claimed sender {claimed}")]
    SenderMismatch {
        /// What the signature says.
        recovered: Address,
        /// What the block data says.
        claimed: Address,
    },
}

impl PreparedTx {
    /// Recovers the sender of `envelope` and, when `claimed` is given (the
    /// `from` field of block JSON), checks that the signature agrees with it.
    /// `allow_high_s` accepts signatures with s above secp256k1n/2, which
    /// Frontier allowed and Homestead (EIP-2) forbade.
    pub fn recover(
        envelope: &TxEnvelope,
        claimed: Option<Address>,
        allow_high_s: bool,
    ) -> Result<Self, TxError> {
        let recovered = if allow_high_s {
            envelope.recover_signer_unchecked()
        } else {
            envelope.recover_signer()
        };
        let sender = recovered.map_err(|e| TxError::BadSignature(e.to_string()))?;
        if let Some(claimed) = claimed {
            if claimed != sender {
                return Err(TxError::SenderMismatch {
                    recovered: sender,
                    claimed,
                });
            }
        }
        Ok(Self::with_sender(envelope, sender))
    }

    /// Builds the executable form for a sender the caller has already verified.
    pub fn with_sender(envelope: &TxEnvelope, sender: Address) -> Self {
        Self {
            hash: *envelope.tx_hash(),
            tx_type: envelope.ty(),
            sender,
            env: tx_env(envelope, sender),
        }
    }
}

/// The revm transaction environment of a signed transaction of any type.
pub fn tx_env<T: Transaction>(tx: &T, sender: Address) -> TxEnv {
    TxEnv {
        tx_type: tx.ty(),
        caller: sender,
        gas_limit: tx.gas_limit(),
        // For fee-market transactions revm reads the fee cap here.
        gas_price: tx.max_fee_per_gas(),
        kind: tx.kind(),
        value: tx.value(),
        data: tx.input().clone(),
        nonce: tx.nonce(),
        chain_id: tx.chain_id(),
        access_list: tx.access_list().cloned().unwrap_or_default(),
        gas_priority_fee: tx.max_priority_fee_per_gas(),
        blob_hashes: tx
            .blob_versioned_hashes()
            .map(<[B256]>::to_vec)
            .unwrap_or_default(),
        max_fee_per_blob_gas: tx.max_fee_per_blob_gas().unwrap_or_default(),
        authorization_list: tx
            .authorization_list()
            .map(|list| list.iter().cloned().map(Either::Left).collect())
            .unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_consensus::{SignableTransaction, TxEip1559, TxLegacy};
    use alloy_primitives::{Signature, TxKind, U256};

    fn sign<T: SignableTransaction<Signature> + Clone>(
        tx: T,
    ) -> (alloy_consensus::Signed<T>, Address) {
        let key = alloy_primitives::hex!(
            "45a915e4d060149eb4365960e6a7a45f334393093061116b197e3240065ff2d8"
        );
        let signing = k256::ecdsa::SigningKey::from_slice(&key).unwrap();
        let address = Address::from_private_key(&signing);
        let hash = tx.signature_hash();
        let (sig, recid) = signing.sign_prehash_recoverable(hash.as_slice()).unwrap();
        let signature = Signature::from_signature_and_parity(sig, recid.is_y_odd());
        (tx.into_signed(signature), address)
    }

    #[test]
    fn legacy_and_1559_convert_with_recovered_sender() {
        let legacy = TxLegacy {
            chain_id: Some(1),
            nonce: 7,
            gas_price: 20,
            gas_limit: 21_000,
            to: TxKind::Call(Address::with_last_byte(9)),
            value: U256::from(5),
            input: Default::default(),
        };
        let (signed, address) = sign(legacy);
        let envelope = TxEnvelope::Legacy(signed);
        let prepared = PreparedTx::recover(&envelope, Some(address), false).unwrap();
        assert_eq!(prepared.sender, address);
        assert_eq!(prepared.env.tx_type, 0);
        assert_eq!(prepared.env.nonce, 7);
        assert_eq!(prepared.env.gas_price, 20);
        assert_eq!(prepared.env.gas_priority_fee, None);
        assert_eq!(prepared.env.chain_id, Some(1));

        let tx = TxEip1559 {
            chain_id: 1,
            nonce: 1,
            gas_limit: 50_000,
            max_fee_per_gas: 100,
            max_priority_fee_per_gas: 3,
            to: TxKind::Create,
            value: U256::ZERO,
            access_list: Default::default(),
            input: vec![0x60, 0x00].into(),
        };
        let (signed, address) = sign(tx);
        let envelope = TxEnvelope::Eip1559(signed);
        let prepared = PreparedTx::recover(&envelope, None, false).unwrap();
        assert_eq!(prepared.sender, address);
        assert_eq!(prepared.env.tx_type, 2);
        assert_eq!(prepared.env.gas_price, 100);
        assert_eq!(prepared.env.gas_priority_fee, Some(3));
        assert_eq!(prepared.env.kind, TxKind::Create);
    }

    #[test]
    fn wrong_claimed_sender_is_rejected() {
        let (signed, _) = sign(TxLegacy {
            gas_limit: 21_000,
            ..Default::default()
        });
        let envelope = TxEnvelope::Legacy(signed);
        let err =
            PreparedTx::recover(&envelope, Some(Address::with_last_byte(1)), false).unwrap_err();
        assert!(matches!(err, TxError::SenderMismatch { .. }));
    }
}
