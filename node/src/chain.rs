//! A chain on disk: the RocksDB store with its chain configuration, and the one
//! path by which blocks enter it. [`Chain::import`] validates a block against its
//! parent, executes it with the Block-STM executor (or the sequential one), checks
//! gas, bloom, receipts root and state root, then commits it in one write batch.
//! A rejected block changes nothing: the chain stays at its parent.

use crate::{
    genesis::GenesisSpec,
    validate::{self, Invalid},
};
use alloy_consensus::{Block, BlockBody, Header, ReceiptEnvelope, TxEnvelope};
use alloy_primitives::{Bloom, B256};
use alloy_rlp::{Decodable, Encodable};
use pel_executor::{
    receipt, sequential::ExecOptions, BlockInput, BlockOutput, BlockProfile, ChainConfig,
    CodeCache, ExecError, Ommer, ParallelExecutor, ParallelStats, PreparedTx, SpecId,
};
use pel_state::{BlockRecord, RocksStore, StateError, StateReader, StoreOptions};
use rayon::prelude::*;
use std::{path::Path, sync::Arc, time::Instant};

/// What kind of rule a rejected block broke (the official tests name it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum RejectClass {
    /// The block's encoding.
    Rlp,
    /// A header, body or block-result rule.
    Block,
    /// A transaction is invalid.
    Transaction,
}

/// Why a block was not imported.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The bytes are not a block.
    #[error("bad block encoding: {0}")]
    Decode(String),
    /// The parent is not the chain's head.
    #[error("unknown parent {parent}: the head is {head} (reorgs are not supported)")]
    UnknownParent {
        /// The block's parent hash.
        parent: B256,
        /// The current head hash.
        head: B256,
    },
    /// A header or body rule is broken.
    #[error("block {number}: invalid: {reason}")]
    Invalid {
        /// Block number.
        number: u64,
        /// What is wrong.
        reason: Invalid,
    },
    /// A transaction cannot be included.
    #[error("block {number}: transaction {index} is invalid: {reason}")]
    Transaction {
        /// Block number.
        number: u64,
        /// Index in the block.
        index: usize,
        /// What is wrong.
        reason: String,
    },
    /// Execution produced a result other than the header commits to.
    #[error("block {number}: {what} mismatch: header has {expected}, execution gives {got}")]
    Mismatch {
        /// Block number.
        number: u64,
        /// Which field.
        what: &'static str,
        /// The header's value.
        expected: String,
        /// The executed value.
        got: String,
    },
    /// Execution failed for a reason other than the block's validity.
    #[error(transparent)]
    Exec(ExecError),
    /// The store failed.
    #[error(transparent)]
    State(#[from] StateError),
}

impl ImportError {
    /// The class of rule broken, or `None` for failures that are not the block's
    /// fault (disk errors).
    pub fn class(&self) -> Option<RejectClass> {
        match self {
            Self::Decode(_) => Some(RejectClass::Rlp),
            Self::UnknownParent { .. } | Self::Invalid { .. } | Self::Mismatch { .. } => {
                Some(RejectClass::Block)
            }
            Self::Transaction { .. } => Some(RejectClass::Transaction),
            Self::Exec(ExecError::InvalidTx { .. }) => Some(RejectClass::Transaction),
            Self::Exec(
                ExecError::InvalidBlock { .. }
                | ExecError::SystemCall { .. }
                | ExecError::Requests { .. },
            ) => Some(RejectClass::Block),
            Self::Exec(ExecError::State { .. }) | Self::State(_) => None,
        }
    }
}

/// Timings and counts of one imported block.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct ImportStats {
    /// Block number.
    pub number: u64,
    /// Transactions.
    pub txs: usize,
    /// Gas used.
    pub gas_used: u64,
    /// Decoding checks, sender recovery and validation, in seconds.
    pub validate_s: f64,
    /// Execution, in seconds.
    pub execute_s: f64,
    /// State root (staging the trie update), in seconds.
    pub root_s: f64,
    /// The atomic write, in seconds.
    pub commit_s: f64,
    /// Aborted incarnations in the parallel executor.
    pub reexecutions: usize,
    /// Validations that found a changed read.
    pub validation_failures: usize,
    /// The block ran through the parallel phase.
    pub parallel: bool,
    /// The serial work of the transactions, in seconds: the sum of their
    /// final incarnations' times when the block ran in parallel, else the
    /// execution time.
    pub work_s: f64,
}

/// A chain stored in a data dir.
pub struct Chain {
    store: Arc<RocksStore>,
    config: ChainConfig,
    executor: Option<Arc<ParallelExecutor>>,
    code_cache: Arc<CodeCache>,
    head_header: Header,
}

impl std::fmt::Debug for Chain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chain")
            .field("store", &self.store)
            .field("head", &self.head_header.number)
            .finish()
    }
}

/// Encodes receipts for storage.
pub fn encode_receipts(receipts: &[ReceiptEnvelope]) -> Vec<u8> {
    let mut out = Vec::new();
    alloy_rlp::encode_list(receipts, &mut out);
    out
}

/// Decodes stored receipts.
pub fn decode_receipts(bytes: &[u8]) -> Result<Vec<ReceiptEnvelope>, StateError> {
    Vec::<ReceiptEnvelope>::decode(&mut &bytes[..])
        .map_err(|e| StateError::Backend(format!("corrupt receipts: {e}")))
}

/// Decodes a stored header.
pub fn decode_header(bytes: &[u8]) -> Result<Header, StateError> {
    Header::decode(&mut &bytes[..]).map_err(|e| StateError::Backend(format!("corrupt header: {e}")))
}

/// Decodes a stored body.
pub fn decode_body(bytes: &[u8]) -> Result<BlockBody<TxEnvelope>, StateError> {
    BlockBody::<TxEnvelope>::decode(&mut &bytes[..])
        .map_err(|e| StateError::Backend(format!("corrupt body: {e}")))
}

impl Chain {
    /// Creates a data dir from a genesis. Refuses a dir that already has data.
    pub fn init(
        path: &Path,
        genesis: &GenesisSpec,
        options: StoreOptions,
    ) -> Result<Self, StateError> {
        let config = serde_json::to_vec(&genesis.chain)
            .map_err(|e| StateError::Backend(format!("cannot encode chain config: {e}")))?;
        let body = BlockBody::<TxEnvelope> {
            transactions: vec![],
            ommers: vec![],
            withdrawals: genesis.header.withdrawals_root.map(|_| Default::default()),
        };
        let record = BlockRecord {
            number: genesis.header.number,
            hash: genesis.hash(),
            header: alloy_rlp::encode(&genesis.header),
            body: alloy_rlp::encode(&body),
            receipts: encode_receipts(&[]),
            tx_hashes: vec![],
        };
        if genesis.header.number != 0 {
            return Err(StateError::Backend(
                "genesis blocks other than number 0 are not supported".into(),
            ));
        }
        let store = RocksStore::create(
            path,
            &config,
            &genesis.alloc,
            &record,
            Some(genesis.header.state_root),
            options,
        )?;
        Ok(Self {
            store: Arc::new(store),
            config: genesis.chain.clone(),
            executor: None,
            code_cache: Arc::new(CodeCache::new()),
            head_header: genesis.header.clone(),
        })
    }

    /// Opens an existing data dir (checks schema, head and state root).
    pub fn open(path: &Path, options: StoreOptions) -> Result<Self, StateError> {
        let store = RocksStore::open(path, options)?;
        let config: ChainConfig = serde_json::from_slice(&store.chain_config()?)
            .map_err(|e| StateError::Backend(format!("corrupt chain config: {e}")))?;
        let head = store.head()?;
        let header = store.header(head.number)?.ok_or_else(|| {
            StateError::Backend(format!("head block {} has no header", head.number))
        })?;
        let head_header = decode_header(&header)?;
        if head_header.hash_slow() != head.hash {
            return Err(StateError::Backend(
                "head header does not hash to the head".into(),
            ));
        }
        Ok(Self {
            store: Arc::new(store),
            config,
            executor: None,
            code_cache: Arc::new(CodeCache::new()),
            head_header,
        })
    }

    /// Executes blocks with this parallel executor (sequentially when `None`).
    pub fn with_executor(mut self, executor: Option<Arc<ParallelExecutor>>) -> Self {
        self.executor = executor;
        self
    }

    /// The store.
    pub fn store(&self) -> &RocksStore {
        &self.store
    }

    /// The store, shared (readers such as the RPC server hold it).
    pub fn shared_store(&self) -> Arc<RocksStore> {
        self.store.clone()
    }

    /// The chain configuration.
    pub fn config(&self) -> &ChainConfig {
        &self.config
    }

    /// The head block's header.
    pub fn head(&self) -> &Header {
        &self.head_header
    }

    /// Imports one RLP-encoded block.
    pub fn import_rlp(&mut self, bytes: &[u8]) -> Result<ImportStats, ImportError> {
        let block =
            validate::decode_block(bytes).map_err(|e| ImportError::Decode(e.to_string()))?;
        self.import(block)
    }

    /// Validates, executes, checks and commits one block. The chain follows the
    /// latest valid block, as a fork-choice update to each imported block would:
    /// a block whose parent is an earlier canonical block first unwinds the
    /// chain to that parent (a reorganisation); if the block then turns out
    /// invalid, the unwound blocks are imported again, so a rejected block leaves
    /// the chain where it was.
    pub fn import(&mut self, block: Block<TxEnvelope>) -> Result<ImportStats, ImportError> {
        let head = self.store.head()?;
        if block.header.parent_hash == head.hash {
            return self.import_on_head(block);
        }
        let parent = block.header.parent_hash;
        let unknown = ImportError::UnknownParent {
            parent,
            head: head.hash,
        };
        let Some(fork_point) = self.store.block_number(&parent)? else {
            return Err(unknown);
        };
        if self.store.block_hash(fork_point)? != Some(parent) {
            return Err(unknown);
        }
        // Check what can be checked against the parent before touching the chain.
        let parent_header = stored_block(&self.store, fork_point)?.header;
        validate::validate_header(&self.config, &parent_header, &block.header).map_err(
            |reason| ImportError::Invalid {
                number: block.header.number,
                reason,
            },
        )?;
        let unwound = self.unwind_to(fork_point)?;
        match self.import_on_head(block) {
            Ok(stats) => Ok(stats),
            Err(e) => {
                for old in unwound.into_iter().rev() {
                    self.import_on_head(old)?;
                }
                Err(e)
            }
        }
    }

    /// Removes blocks above `number`, newest first, each in one write batch;
    /// returns them, newest first.
    pub fn unwind_to(&mut self, number: u64) -> Result<Vec<Block<TxEnvelope>>, ImportError> {
        let mut unwound = Vec::new();
        while self.head_header.number > number {
            let current = stored_block(&self.store, self.head_header.number)?;
            let tx_hashes: Vec<B256> = current
                .body
                .transactions
                .iter()
                .map(|t| *t.tx_hash())
                .collect();
            let parent_block = stored_block(&self.store, self.head_header.number - 1)?;
            self.store
                .unwind(&tx_hashes, parent_block.header.state_root)?;
            self.head_header = parent_block.header;
            unwound.push(current);
        }
        Ok(unwound)
    }

    fn import_on_head(&mut self, block: Block<TxEnvelope>) -> Result<ImportStats, ImportError> {
        let start = Instant::now();
        let header = &block.header;
        let number = header.number;
        if let Some(reason) = validate::body_shape_error(&self.config, &block) {
            return Err(ImportError::Decode(format!("block {number}: {reason}")));
        }
        let invalid = |reason| ImportError::Invalid { number, reason };
        validate::validate_header(&self.config, &self.head_header, header).map_err(invalid)?;
        validate::validate_body(&self.config, &block).map_err(invalid)?;
        let spec = self.config.spec_at(number, header.timestamp);
        let input = self.block_input(&block, spec)?;
        let validated = Instant::now();
        let (output, stats) = self.execute(&input)?;
        let executed = Instant::now();
        // The header's transaction and receipt checks on one core while the
        // state root is computed on another.
        let this = &*self;
        let (checked, pending) = rayon::join(
            || {
                validate::validate_transactions_root(&block).map_err(invalid)?;
                let receipts = receipt::envelopes(&output.receipts);
                this.check_output(&input, spec, &output, &receipts)?;
                Ok::<_, ImportError>(receipts)
            },
            || this.store.prepare(&output.diff, number),
        );
        let receipts = checked?;
        let pending = pending?;
        if pending.root() != header.state_root {
            return Err(ImportError::Mismatch {
                number,
                what: "state root",
                expected: header.state_root.to_string(),
                got: pending.root().to_string(),
            });
        }
        let rooted = Instant::now();
        let record = BlockRecord {
            number,
            hash: header.hash_slow(),
            header: alloy_rlp::encode(header),
            body: alloy_rlp::encode(&block.body),
            receipts: encode_receipts(&receipts),
            tx_hashes: block
                .body
                .transactions
                .iter()
                .map(|t| *t.tx_hash())
                .collect(),
        };
        self.store.commit(pending, &record)?;
        let committed = Instant::now();
        self.head_header = block.header;
        Ok(ImportStats {
            number,
            txs: input.transactions.len(),
            gas_used: output.gas_used,
            validate_s: (validated - start).as_secs_f64(),
            execute_s: (executed - validated).as_secs_f64(),
            root_s: (rooted - executed).as_secs_f64(),
            commit_s: (committed - rooted).as_secs_f64(),
            reexecutions: stats.reexecutions,
            validation_failures: stats.validation_failures,
            parallel: stats.parallel && !stats.fell_back,
            work_s: work_seconds(&stats, (executed - validated).as_secs_f64()),
        })
    }

    /// The executor's input for `block`: senders recovered in parallel.
    fn block_input(
        &self,
        block: &Block<TxEnvelope>,
        spec: SpecId,
    ) -> Result<BlockInput, ImportError> {
        let header = &block.header;
        let number = header.number;
        // Sender recovery dominates validation: spread it over the cores.
        let transactions = block
            .body
            .transactions
            .par_iter()
            .enumerate()
            .map(|(index, tx)| {
                PreparedTx::recover(tx, None, spec < SpecId::HOMESTEAD).map_err(|e| {
                    ImportError::Transaction {
                        number,
                        index,
                        reason: e.to_string(),
                    }
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let input = BlockInput {
            header: header.clone(),
            transactions,
            withdrawals: block.body.withdrawals.clone().map(|w| w.into_inner()),
            ommers: block
                .body
                .ommers
                .iter()
                .map(|o| Ommer {
                    number: o.number,
                    beneficiary: o.beneficiary,
                })
                .collect(),
        };
        Ok(input)
    }

    /// The conflict profile of committed block `number`, re-executed on its
    /// parent's state (needs the parent's history, see `--history`).
    pub fn profile(&self, number: u64) -> Result<BlockProfile, ImportError> {
        if number == 0 {
            return Err(ImportError::Decode(
                "block 0 is the genesis state: it has no transactions to profile".into(),
            ));
        }
        let block = stored_block(&self.store, number)?;
        let spec = self.config.spec_at(number, block.header.timestamp);
        let input = self.block_input(&block, spec)?;
        let parent = self.store.at_block(number - 1)?;
        let options = ExecOptions {
            rewards: true,
            code_cache: Some(self.code_cache.clone()),
            fill: false,
        };
        let single;
        let executor = match &self.executor {
            Some(executor) => executor.as_ref(),
            None => {
                single =
                    ParallelExecutor::new(1).map_err(|e| ImportError::Decode(e.to_string()))?;
                &single
            }
        };
        let (output, _, profile) = executor
            .profile_block(parent, &input, &self.config, options)
            .map_err(ImportError::Exec)?;
        if output.gas_used != block.header.gas_used {
            return Err(ImportError::Mismatch {
                number,
                what: "gas used on re-execution",
                expected: block.header.gas_used.to_string(),
                got: output.gas_used.to_string(),
            });
        }
        Ok(profile)
    }

    /// Worker threads of the executor (1 when blocks run sequentially).
    pub fn threads(&self) -> usize {
        self.executor.as_ref().map_or(1, |e| e.threads())
    }

    /// Executes a block on the head state.
    pub fn execute(&self, input: &BlockInput) -> Result<(BlockOutput, ParallelStats), ImportError> {
        self.execute_with(input, false)
    }

    /// Executes a block on the head state; with `fill` (block building), up
    /// to the first transaction that does not fit (see [`ExecOptions::fill`]).
    fn execute_with(
        &self,
        input: &BlockInput,
        fill: bool,
    ) -> Result<(BlockOutput, ParallelStats), ImportError> {
        let options = ExecOptions {
            rewards: true,
            code_cache: Some(self.code_cache.clone()),
            fill,
        };
        let result = match &self.executor {
            Some(executor) => executor.execute_block(&*self.store, input, &self.config, options),
            None => pel_executor::execute_block(&*self.store, input, &self.config, options)
                .map(|o| (o, ParallelStats::default())),
        };
        result.map_err(ImportError::Exec)
    }

    fn check_output(
        &self,
        input: &BlockInput,
        spec: SpecId,
        output: &BlockOutput,
        receipts: &[ReceiptEnvelope],
    ) -> Result<(), ImportError> {
        let header = &input.header;
        let number = header.number;
        let mismatch = |what, expected: String, got: String| {
            Err(ImportError::Mismatch {
                number,
                what,
                expected,
                got,
            })
        };
        if output.gas_used != header.gas_used {
            return mismatch(
                "gas used",
                header.gas_used.to_string(),
                output.gas_used.to_string(),
            );
        }
        if let Some(blob_gas) = header.blob_gas_used {
            if blob_gas != output.blob_gas_used {
                return mismatch(
                    "blob gas used",
                    blob_gas.to_string(),
                    output.blob_gas_used.to_string(),
                );
            }
        }
        let bloom: Bloom = receipt::envelopes_bloom(receipts);
        if bloom != header.logs_bloom {
            return mismatch(
                "logs bloom",
                header.logs_bloom.to_string(),
                bloom.to_string(),
            );
        }
        // Before Byzantium receipts carry intermediate state roots, which the
        // executor does not compute; the state root below still checks the block.
        if spec >= SpecId::BYZANTIUM {
            let root = receipt::envelopes_root(receipts);
            if root != header.receipts_root {
                return mismatch(
                    "receipts root",
                    header.receipts_root.to_string(),
                    root.to_string(),
                );
            }
        }
        if let Some(expected) = output.requests_hash() {
            if header.requests_hash != Some(expected) {
                return mismatch(
                    "requests hash",
                    format!("{:?}", header.requests_hash),
                    expected.to_string(),
                );
            }
        }
        Ok(())
    }
}

/// The serial work of a block: the parallel phase's summed incarnation times,
/// or the execution time when the block ran sequentially.
fn work_seconds(stats: &ParallelStats, execute_s: f64) -> f64 {
    if stats.parallel && !stats.fell_back {
        stats.work_ns as f64 / 1e9
    } else {
        execute_s
    }
}

/// Encodes a block for an import file.
pub fn encode_block(block: &Block<TxEnvelope>) -> Vec<u8> {
    let mut out = Vec::new();
    block.encode(&mut out);
    out
}

/// Reads back block `number` from the store.
pub fn stored_block(store: &RocksStore, number: u64) -> Result<Block<TxEnvelope>, StateError> {
    let header = store
        .header(number)?
        .ok_or_else(|| StateError::Backend(format!("block {number} has no header")))?;
    let body = store
        .body(number)?
        .ok_or_else(|| StateError::Backend(format!("block {number} has no body")))?;
    Ok(Block {
        header: decode_header(&header)?,
        body: decode_body(&body)?,
    })
}

/// Writes blocks 1..=head as concatenated RLP; returns how many.
pub fn export(chain: &Chain, file: &Path) -> Result<u64, StateError> {
    let io = |e: std::io::Error| StateError::Io {
        path: file.to_path_buf(),
        source: e,
    };
    let mut out = std::io::BufWriter::new(std::fs::File::create(file).map_err(io)?);
    let head = chain.head().number;
    for number in 1..=head {
        let block = stored_block(chain.store(), number)?;
        std::io::Write::write_all(&mut out, &encode_block(&block)).map_err(io)?;
    }
    std::io::Write::flush(&mut out).map_err(io)?;
    Ok(head)
}

/// What the block builder needs beyond the transactions.
#[derive(Clone, Debug)]
pub struct BlockAttrs {
    /// Block timestamp (must be after the parent's).
    pub timestamp: u64,
    /// Fee recipient.
    pub beneficiary: alloy_primitives::Address,
    /// Gas limit of the new block.
    pub gas_limit: u64,
    /// PREVRANDAO (the header's mix hash) after the Merge.
    pub prev_randao: B256,
    /// Extra data (at most 32 bytes).
    pub extra_data: alloy_primitives::Bytes,
    /// Dev-chain state edits (`anvil_setBalance` and the like) committed with
    /// this block, after its transactions: each account given here ends the
    /// block with exactly this info and these slots.
    pub state_edit: Option<pel_state::StateDiff>,
}

/// A block the builder committed.
#[derive(Debug)]
pub struct BuiltBlock {
    /// The block as stored.
    pub block: Block<TxEnvelope>,
    /// Its receipts.
    pub receipts: Vec<ReceiptEnvelope>,
    /// Transactions left out, with the reason.
    pub dropped: Vec<(B256, String)>,
    /// Sender of each included transaction.
    pub senders: Vec<alloy_primitives::Address>,
    /// Timings.
    pub stats: ImportStats,
}

/// A block built on a head and staged for commit, not written yet (see
/// [`Chain::prepare_block`]).
pub struct PreparedBlock {
    /// Hash of the head it was built on.
    pub parent_hash: B256,
    pending: pel_state::PendingState,
    record: BlockRecord,
    built: BuiltBlock,
}

impl std::fmt::Debug for PreparedBlock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreparedBlock")
            .field("parent_hash", &self.parent_hash)
            .field("number", &self.record.number)
            .finish()
    }
}

impl Chain {
    /// Builds a block on the head from `txs` (in the given order, each with its
    /// sender when already recovered), leaving out the ones that turn out
    /// invalid, and commits it. The header's roots, bloom,
    /// gas and fee fields are computed here, so the result imports elsewhere.
    pub fn build(
        &mut self,
        txs: Vec<(TxEnvelope, Option<alloy_primitives::Address>)>,
        attrs: &BlockAttrs,
    ) -> Result<BuiltBlock, ImportError> {
        let prepared = self.prepare_block(txs, attrs)?;
        self.commit_block(prepared)
    }

    /// Commits a block from [`Self::prepare_block`] in one write batch, if
    /// the head is still the block it was built on.
    pub fn commit_block(&mut self, prepared: PreparedBlock) -> Result<BuiltBlock, ImportError> {
        let PreparedBlock {
            parent_hash,
            pending,
            record,
            mut built,
        } = prepared;
        let head = self.head_header.hash_slow();
        if parent_hash != head {
            return Err(ImportError::UnknownParent {
                parent: parent_hash,
                head,
            });
        }
        let start = Instant::now();
        self.store.commit(pending, &record)?;
        built.stats.commit_s = start.elapsed().as_secs_f64();
        self.head_header = built.block.header.clone();
        Ok(built)
    }

    /// [`Self::build`] up to the commit: the block executed, its roots
    /// computed and its writes staged, nothing written.
    pub fn prepare_block(
        &self,
        txs: Vec<(TxEnvelope, Option<alloy_primitives::Address>)>,
        attrs: &BlockAttrs,
    ) -> Result<PreparedBlock, ImportError> {
        let start = Instant::now();
        let parent = self.head_header.clone();
        let number = parent.number + 1;
        let fork = self.config.fork_at(number, attrs.timestamp);
        let parent_fork = self.config.fork_at(parent.number, parent.timestamp);
        let spec = fork.spec();
        let mut header = Header {
            parent_hash: parent.hash_slow(),
            ommers_hash: alloy_consensus::constants::EMPTY_OMMER_ROOT_HASH,
            beneficiary: attrs.beneficiary,
            number,
            gas_limit: attrs.gas_limit,
            timestamp: attrs.timestamp,
            extra_data: attrs.extra_data.clone(),
            mix_hash: attrs.prev_randao,
            difficulty: if fork >= pel_executor::Fork::Paris {
                alloy_primitives::U256::ZERO
            } else {
                alloy_primitives::U256::from(1)
            },
            ..Header::default()
        };
        if fork >= pel_executor::Fork::London {
            header.base_fee_per_gas = Some(if parent_fork < pel_executor::Fork::London {
                alloy_eips::eip1559::INITIAL_BASE_FEE
            } else {
                parent
                    .next_block_base_fee(alloy_eips::eip1559::BaseFeeParams::ethereum())
                    .unwrap_or(alloy_eips::eip1559::INITIAL_BASE_FEE)
            });
        }
        if fork >= pel_executor::Fork::Cancun {
            let excess = if parent_fork < pel_executor::Fork::Cancun {
                0
            } else {
                validate::blob_params(&self.config, parent.timestamp)
                    .and_then(|p| parent.next_block_excess_blob_gas(p))
                    .unwrap_or(0)
            };
            header.excess_blob_gas = Some(excess);
            header.parent_beacon_block_root = Some(B256::ZERO);
        }
        let mut dropped = Vec::new();
        let mut kept = Vec::new();
        let mut prepared = Vec::new();
        for (tx, sender) in txs {
            let p = match sender {
                Some(sender) => Ok(PreparedTx::with_sender(&tx, sender)),
                None => PreparedTx::recover(&tx, None, false),
            };
            match p {
                Ok(p) => {
                    prepared.push(p);
                    kept.push(tx);
                }
                Err(e) => dropped.push((*tx.tx_hash(), e.to_string())),
            }
        }
        let withdrawals = (fork >= pel_executor::Fork::Shanghai).then(Vec::new);
        let (mut output, stats, input) = loop {
            let mut input = BlockInput {
                header: header.clone(),
                transactions: prepared.clone(),
                withdrawals: withdrawals.clone(),
                ommers: vec![],
            };
            match self.execute_with(&input, true) {
                Ok((output, stats)) => {
                    // The block is full before the rest: they stay pending.
                    let included = output.receipts.len();
                    if included < prepared.len() {
                        prepared.truncate(included);
                        kept.truncate(included);
                        input.transactions.truncate(included);
                    }
                    break (output, stats, input);
                }
                Err(ImportError::Exec(ExecError::InvalidTx { index, reason, .. })) => {
                    prepared.remove(index);
                    let tx = kept.remove(index);
                    dropped.push((*tx.tx_hash(), reason));
                }
                Err(e) => return Err(e),
            }
        };
        let executed = Instant::now();
        if let Some(edit) = &attrs.state_edit {
            output.diff.codes.extend(edit.codes.clone());
            for (address, change) in &edit.accounts {
                let entry = output.diff.accounts.entry(*address).or_default();
                entry.info = change.info;
                entry.storage_cleared |= change.storage_cleared;
                entry
                    .storage
                    .extend(change.storage.iter().map(|(k, v)| (*k, *v)));
            }
        }
        header.gas_used = output.gas_used;
        // Receipts and the transaction and receipt roots on one core while
        // the state root is computed on another.
        let store = &self.store;
        let ((receipts, bloom, receipts_root, transactions_root), pending) = rayon::join(
            || {
                let receipts = receipt::envelopes(&output.receipts);
                let bloom = receipt::envelopes_bloom(&receipts);
                let root = receipt::envelopes_root(&receipts);
                let tx_root = alloy_consensus::proofs::calculate_transaction_root(&kept);
                (receipts, bloom, root, tx_root)
            },
            || store.prepare(&output.diff, number),
        );
        let pending = pending?;
        header.logs_bloom = bloom;
        header.receipts_root = receipts_root;
        header.transactions_root = transactions_root;
        if fork >= pel_executor::Fork::Shanghai {
            header.withdrawals_root = Some(alloy_consensus::EMPTY_ROOT_HASH);
        }
        if fork >= pel_executor::Fork::Cancun {
            header.blob_gas_used = Some(output.blob_gas_used);
        }
        if fork >= pel_executor::Fork::Prague {
            header.requests_hash = Some(
                output
                    .requests_hash()
                    .unwrap_or(alloy_eips::eip7685::EMPTY_REQUESTS_HASH),
            );
        }
        header.state_root = pending.root();
        let rooted = Instant::now();
        let body = BlockBody {
            transactions: kept,
            ommers: vec![],
            withdrawals: withdrawals.map(Into::into),
        };
        let hash = header.hash_slow();
        let record = BlockRecord {
            number,
            hash,
            header: alloy_rlp::encode(&header),
            body: alloy_rlp::encode(&body),
            receipts: encode_receipts(&receipts),
            tx_hashes: body.transactions.iter().map(|t| *t.tx_hash()).collect(),
        };
        let _ = spec;
        let built = BuiltBlock {
            stats: ImportStats {
                number,
                txs: input.transactions.len(),
                gas_used: output.gas_used,
                validate_s: 0.0,
                execute_s: (executed - start).as_secs_f64(),
                root_s: (rooted - executed).as_secs_f64(),
                commit_s: 0.0,
                reexecutions: stats.reexecutions,
                validation_failures: stats.validation_failures,
                parallel: stats.parallel && !stats.fell_back,
                work_s: work_seconds(&stats, (executed - start).as_secs_f64()),
            },
            senders: prepared.iter().map(|p| p.sender).collect(),
            block: Block { header, body },
            receipts,
            dropped,
        };
        Ok(PreparedBlock {
            parent_hash: parent.hash_slow(),
            pending,
            record,
            built,
        })
    }
}
