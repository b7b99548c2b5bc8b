//! `pel import`: files of concatenated RLP blocks (as geth and reth export them)
//! imported one block at a time through [`Chain::import_rlp`], with a progress bar
//! and a summary of where the time went.

use crate::chain::{Chain, ImportError, ImportStats};
use serde::Serialize;

/// Splits a file of concatenated RLP blocks into one slice per block.
pub fn split_blocks(mut bytes: &[u8]) -> Result<Vec<&[u8]>, ImportError> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let mut probe = bytes;
        let header = alloy_rlp::Header::decode(&mut probe)
            .map_err(|e| ImportError::Decode(format!("block {}: {e}", out.len())))?;
        if !header.list {
            return Err(ImportError::Decode(format!(
                "block {}: expected an RLP list",
                out.len()
            )));
        }
        let len = (bytes.len() - probe.len())
            .checked_add(header.payload_length)
            .filter(|len| *len <= bytes.len())
            .ok_or_else(|| ImportError::Decode(format!("block {}: truncated", out.len())))?;
        out.push(&bytes[..len]);
        bytes = &bytes[len..];
    }
    Ok(out)
}

/// Totals of an import (the `--json` shape of `pel import`).
#[derive(Clone, Debug, Default, Serialize)]
pub struct ImportSummary {
    /// Blocks imported.
    pub blocks: usize,
    /// Blocks already in the chain (skipped).
    pub skipped: usize,
    /// Transactions imported.
    pub txs: usize,
    /// Gas imported.
    pub gas: u64,
    /// The head after the import.
    pub head: u64,
    /// Wall time, seconds.
    pub seconds: f64,
    /// Gas per second over the whole import, in millions.
    pub mgas_per_s: f64,
    /// Time validating (decode checks, senders, header rules), seconds.
    pub validate_s: f64,
    /// Time executing, seconds.
    pub execute_s: f64,
    /// Time computing the state root (trie update), seconds.
    pub root_s: f64,
    /// Time in the atomic commit, seconds.
    pub commit_s: f64,
    /// Aborted incarnations in the parallel executor.
    pub reexecutions: usize,
}

impl ImportSummary {
    /// Adds one block's figures.
    pub fn add(&mut self, stats: &ImportStats) {
        self.blocks += 1;
        self.txs += stats.txs;
        self.gas += stats.gas_used;
        self.head = stats.number;
        self.validate_s += stats.validate_s;
        self.execute_s += stats.execute_s;
        self.root_s += stats.root_s;
        self.commit_s += stats.commit_s;
        self.reexecutions += stats.reexecutions;
    }
}

/// Imports every block of `data` in order. Blocks at or below the head whose hash
/// is already stored are skipped (re-running an import resumes it); the first
/// bad block stops the import with its error, the chain staying at its parent.
pub fn import_bytes(
    chain: &mut Chain,
    data: &[u8],
    summary: &mut ImportSummary,
    progress: &indicatif::ProgressBar,
) -> Result<(), ImportError> {
    let blocks = split_blocks(data)?;
    progress.inc_length(blocks.len() as u64);
    let start = std::time::Instant::now();
    for raw in blocks {
        let block =
            crate::validate::decode_block(raw).map_err(|e| ImportError::Decode(e.to_string()))?;
        let number = block.header.number;
        if number <= chain.head().number {
            let known = pel_state::StateReader::block_hash(chain.store(), number)?;
            if known == Some(block.header.hash_slow()) {
                summary.skipped += 1;
                progress.inc(1);
                continue;
            }
        }
        let stats = chain.import(block)?;
        summary.add(&stats);
        summary.seconds = start.elapsed().as_secs_f64();
        summary.mgas_per_s = summary.gas as f64 / 1e6 / summary.seconds.max(1e-9);
        progress.set_message(format!("block {number}, {:.1} Mgas/s", summary.mgas_per_s));
        progress.inc(1);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_rejects_truncated_and_non_lists() {
        assert!(split_blocks(&[]).unwrap().is_empty());
        assert_eq!(split_blocks(&[0xc1, 0x80, 0xc0]).unwrap().len(), 2);
        assert!(split_blocks(&[0xc5, 0x80]).is_err());
        assert!(split_blocks(&[0x80]).is_err());
    }
}
