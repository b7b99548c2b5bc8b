//! Checks of an executed captured block against its real header.

use crate::load::CapturedBlock;
use pel_executor::{receipt, BlockOutput, SpecId};
use serde::{Deserialize, Serialize};

/// The outcome of each header check: `Some(pass)`, or `None` where the check
/// cannot be made from the captured data.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Checks {
    /// Header `gasUsed` equals the executed gas.
    pub gas_used: Option<bool>,
    /// Header `logsBloom` equals the union of receipt blooms.
    pub logs_bloom: Option<bool>,
    /// Header `receiptsRoot` equals the root over the executed receipts
    /// (`null` before Byzantium: receipts then hold intermediate state roots,
    /// which a touched-accounts pre-state cannot reproduce).
    pub receipts_root: Option<bool>,
    /// Header `transactionsRoot` equals the root over block.json's transactions.
    pub transactions_root: Option<bool>,
    /// The header hashes to the block's `hash`.
    pub block_hash: Option<bool>,
    /// Header `withdrawalsRoot` equals the root over the withdrawals (Shanghai on).
    pub withdrawals_root: Option<bool>,
}

impl Checks {
    /// Every check that could be made passed.
    pub fn all_pass(&self) -> bool {
        self.iter().all(|(_, c)| c != Some(false))
    }

    /// (passed, made) counts.
    pub fn counts(&self) -> (usize, usize) {
        let made = self.iter().filter(|(_, c)| c.is_some()).count();
        let passed = self.iter().filter(|(_, c)| *c == Some(true)).count();
        (passed, made)
    }

    /// Each check by name.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, Option<bool>)> {
        [
            ("gasUsed", self.gas_used),
            ("logsBloom", self.logs_bloom),
            ("receiptsRoot", self.receipts_root),
            ("transactionsRoot", self.transactions_root),
            ("hash", self.block_hash),
            ("withdrawalsRoot", self.withdrawals_root),
        ]
        .into_iter()
    }
}

/// Checks that depend only on block.json (hash and transactions root).
pub fn static_checks(block: &CapturedBlock) -> Checks {
    let header = &block.header.inner;
    let tx_root = alloy_consensus::proofs::calculate_transaction_root(&block.envelopes);
    let withdrawals_root = header.withdrawals_root.map(|expected| {
        let ws = block.input.withdrawals.as_deref().unwrap_or_default();
        alloy_consensus::proofs::calculate_withdrawals_root(ws) == expected
    });
    Checks {
        transactions_root: Some(tx_root == header.transactions_root),
        block_hash: Some(header.hash_slow() == block.header.hash),
        withdrawals_root,
        ..Checks::default()
    }
}

/// All checks of an executed block; `errors` receives a line per mismatch.
pub fn check_block(
    block: &CapturedBlock,
    spec: SpecId,
    output: &BlockOutput,
    errors: &mut Vec<String>,
) -> Checks {
    let header = &block.header.inner;
    let mut checks = static_checks(block);
    checks.gas_used = Some(output.gas_used == header.gas_used);
    if checks.gas_used == Some(false) {
        errors.push(format!(
            "gasUsed: header {}, executed {}",
            header.gas_used, output.gas_used
        ));
    }
    let receipts = receipt::envelopes(&output.receipts);
    checks.logs_bloom = Some(receipt::envelopes_bloom(&receipts) == header.logs_bloom);
    if checks.logs_bloom == Some(false) {
        errors.push("logsBloom differs from the header".into());
    }
    if spec >= SpecId::BYZANTIUM {
        let root = receipt::envelopes_root(&receipts);
        checks.receipts_root = Some(root == header.receipts_root);
        if root != header.receipts_root {
            errors.push(format!(
                "receiptsRoot: header {}, executed {root}",
                header.receipts_root
            ));
        }
    }
    if checks.transactions_root == Some(false) {
        errors.push("transactionsRoot differs from the transactions in block.json".into());
    }
    if checks.block_hash == Some(false) {
        errors.push(format!(
            "hash: header hashes to {}, not {}",
            header.hash_slow(),
            block.header.hash
        ));
    }
    if checks.withdrawals_root == Some(false) {
        errors.push("withdrawalsRoot differs from the withdrawals in block.json".into());
    }
    checks
}
