//! The in-order commit of the parallel executor: final transaction results are
//! applied to a block state, with their block-limit checks, deferred
//! beneficiary fees and receipts, strictly in block order.
//!
//! Workers commit while the parallel phase runs (a rolling commit), so the
//! serial part of the block overlaps with the execution of later
//! transactions. Invariants:
//! - transaction `k` is committed only after every transaction below it, and
//!   only once its reads were validated against their (then final) writes, under
//!   its scheduler lock (see [`crate::scheduler::Scheduler::try_commit`]): its
//!   result is final and the scheduler never re-executes it;
//! - the first failure (a block limit, an invalid transaction) stops the
//!   commit; it is the block's error, exactly as the sequential executor would
//!   report it;
//! - when building a block ([`crate::sequential::ExecOptions::fill`]), the first
//!   transaction that does not fit in the gas left ends the block instead:
//!   the block is the committed prefix, as in the sequential executor, and the
//!   workers are stopped.

use crate::{
    block::BlockInput,
    block_state::BlockState,
    error::ExecError,
    receipt::TxReceipt,
    scheduler::TxIdx,
    sequential::{check_block_limits, execute_in_order, make_receipt, tx_error, InOrder},
    system,
    vm::{Executed, ReadRecord, TxOutcome},
    ChainConfig,
};
use alloy_primitives::{map::HashMap, Address};
use pel_state::{AccountInfo, StateReader};
use revm::{context::result::EVMError, primitives::hardfork::SpecId};

/// Above this many reads, the commit of a transaction indexes its base
/// reads by address instead of scanning them once per changed account.
const KNOWN_SCAN_MAX: usize = 32;

/// The committed prefix of a block; see the module docs.
#[derive(Debug)]
pub struct Committer<'a, S> {
    block: &'a BlockInput,
    spec: SpecId,
    max_blob_gas: Option<u64>,
    state: BlockState<S>,
    receipts: Vec<TxReceipt>,
    cumulative_gas: u64,
    blob_gas: u64,
    failure: Option<ExecError>,
    /// Block building ([`crate::sequential::ExecOptions::fill`]): the next transaction
    /// does not fit, so the block ends before it.
    fill: bool,
    full: bool,
}

/// What the commit of a whole block produced.
#[derive(Debug)]
pub struct CommittedBlock<S> {
    /// The state after every transaction (and fee).
    pub state: BlockState<S>,
    /// One receipt per transaction.
    pub receipts: Vec<TxReceipt>,
    /// Gas used by the block's transactions.
    pub gas_used: u64,
    /// Blob gas used by the block's transactions.
    pub blob_gas_used: u64,
}

impl<'a, S: StateReader> Committer<'a, S> {
    /// Commits `block`'s transactions on top of `state`; with `fill`, up to
    /// the first one that does not fit in the block.
    pub fn new(
        block: &'a BlockInput,
        spec: SpecId,
        max_blob_gas: Option<u64>,
        fill: bool,
        state: BlockState<S>,
    ) -> Self {
        Self {
            block,
            spec,
            max_blob_gas,
            state,
            receipts: Vec::with_capacity(block.transactions.len()),
            cumulative_gas: 0,
            blob_gas: 0,
            failure: None,
            fill,
            full: false,
        }
    }

    /// The next transaction to commit (the number committed so far).
    pub fn next(&self) -> TxIdx {
        self.receipts.len()
    }

    /// True while more transactions can be committed: not at the block's end,
    /// not full, and no failure.
    pub fn open(&self) -> bool {
        self.failure.is_none() && !self.full && self.next() < self.block.transactions.len()
    }

    /// Commits transaction [`Self::next`] with its final outcome (`None`: it
    /// never ran, an executor bug reported as an error). Returns false, and
    /// keeps the error, when the block fails here; in fill mode, also when
    /// the transaction does not fit (the block ends before it).
    ///
    /// `reads` are the reads of the incarnation that produced `outcome`: the
    /// accounts it read from the base state are not read from it again.
    pub fn commit(&mut self, outcome: Option<TxOutcome>, reads: &[ReadRecord]) -> bool {
        if let Err(e) = check_block_limits(
            self.block,
            self.next(),
            self.cumulative_gas,
            self.blob_gas,
            self.max_blob_gas,
        ) {
            if self.fill {
                self.full = true;
            } else {
                self.failure = Some(e);
            }
            return false;
        }
        match self.apply(outcome, reads) {
            Ok(()) => true,
            Err(e) => {
                self.failure = Some(e);
                false
            }
        }
    }

    fn apply(&mut self, outcome: Option<TxOutcome>, reads: &[ReadRecord]) -> Result<(), ExecError> {
        let block = self.block;
        let index = self.next();
        let Executed {
            result,
            changes,
            fee,
            credit,
            debit,
        } = match outcome {
            Some(Ok(done)) => done,
            Some(Err(e)) => return Err(tx_error(block, index, e)),
            None => {
                return Err(tx_error(
                    block,
                    index,
                    EVMError::Custom(
                        "parallel phase ended without executing the transaction".into(),
                    ),
                ))
            }
        };
        let beneficiary = block.header.beneficiary;
        // A base read of the beneficiary includes deferred fees: not a base value.
        // A lazily credited target read past deltas from the base saw the
        // block-start record too, as did a debited sender or a shifted
        // account read from the base.
        let base_read = |read: &ReadRecord| match read {
            ReadRecord::Account(a, seen, None)
            | ReadRecord::Credited(a, seen, None)
            | ReadRecord::Debited(a, seen, None)
            | ReadRecord::Shifted(a, seen, _, None)
                if *a != beneficiary =>
            {
                Some((*a, seen.info))
            }
            _ => None,
        };
        // Asked once per changed account: a scan of the reads each time, or,
        // for a transaction that read many (a scan each would be quadratic),
        // a map of the first base read of each account.
        let by_address: Option<HashMap<Address, Option<AccountInfo>>> =
            (reads.len() > KNOWN_SCAN_MAX).then(|| {
                let mut map = HashMap::default();
                for (address, info) in reads.iter().filter_map(base_read) {
                    map.entry(address).or_insert(info);
                }
                map
            });
        let known = |address: &Address| match &by_address {
            Some(map) => map.get(address).copied(),
            None => reads
                .iter()
                .filter_map(base_read)
                .find_map(|(a, info)| (a == *address).then_some(info)),
        };
        let spec = self.spec;
        self.state
            .commit_changes_known(changes, known)
            .and_then(|()| match credit {
                Some((to, value)) => {
                    if let Some(original) = known(&to) {
                        self.state.cache_original(to, original);
                    }
                    self.state.increment_balance(to, value, spec)
                }
                None => Ok(()),
            })
            .and_then(|()| match debit {
                Some((from, amount, nonce)) => {
                    if let Some(original) = known(&from) {
                        self.state.cache_original(from, original);
                    }
                    self.state.apply_debit(from, amount, nonce)
                }
                None => Ok(()),
            })
            .and_then(|()| self.state.increment_balance(beneficiary, fee, spec))
            .map_err(|e| tx_error(block, index, EVMError::Database(e)))?;
        self.cumulative_gas += result.tx_gas_used();
        let tx = &block.transactions[index];
        self.blob_gas += tx.env.blob_hashes.len() as u64 * alloy_eips::eip4844::DATA_GAS_PER_BLOB;
        self.receipts
            .push(make_receipt(tx.tx_type, result, self.cumulative_gas));
        Ok(())
    }

    /// Executes the transactions not committed yet in order, on the committed
    /// state, as the sequential executor would (the parallel phase gave up on
    /// a dependent block); then the committed block, or its first failure.
    pub fn finish_in_order(self, chain: &ChainConfig) -> Result<CommittedBlock<S>, ExecError> {
        if let Some(e) = self.failure {
            return Err(e);
        }
        let block = self.block;
        let mut evm = system::new_evm(self.state, chain, &block.header, self.spec);
        let mut progress = InOrder {
            receipts: self.receipts,
            cumulative_gas: self.cumulative_gas,
            blob_gas: self.blob_gas,
        };
        execute_in_order(&mut evm, block, self.max_blob_gas, self.fill, &mut progress)?;
        Ok(CommittedBlock {
            state: evm.ctx.journaled_state.inner.database,
            receipts: progress.receipts,
            gas_used: progress.cumulative_gas,
            blob_gas_used: progress.blob_gas,
        })
    }

    /// The committed block, or its first failure.
    pub fn finish(self) -> Result<CommittedBlock<S>, ExecError> {
        if let Some(e) = self.failure {
            return Err(e);
        }
        Ok(CommittedBlock {
            state: self.state,
            receipts: self.receipts,
            gas_used: self.cumulative_gas,
            blob_gas_used: self.blob_gas,
        })
    }
}
