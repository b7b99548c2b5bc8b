//! `pel statetest`: runs the official GeneralStateTests fixtures.
//!
//! Each post entry of each fork is one case. The transaction is taken from the
//! entry's `txbytes` and goes through the same path as a block's: EIP-2718
//! decoding, signature recovery, conversion, execution on a [`BlockState`].
//! A case passes when the post-state root and the logs hash match, or, for an
//! `expectException` case, when the transaction is rejected (at decoding,
//! recovery or validation) and the state root stays the pre-state root.

use alloy_consensus::TxEnvelope;
use alloy_eips::eip2718::Decodable2718;
use alloy_primitives::{keccak256, Address, Bytes, B256, U256};
use pel_executor::changes::TxChanges;
use pel_executor::revm::context::{BlockEnv, CfgEnv};
use pel_executor::revm::handler::ExecuteEvm;
use pel_executor::{
    block_state::BlockState, chain::Fork, execute_block, sequential::ExecOptions, system,
    BlockInput, ChainConfig, ParallelExecutor, PreparedTx, SpecId,
};
use pel_state::{AccountInfo, InMemoryState, StateError, StateReader};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

#[derive(Debug, Deserialize)]
struct Fixture {
    env: Env,
    pre: BTreeMap<Address, PreAccount>,
    post: BTreeMap<String, Vec<PostEntry>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Env {
    current_coinbase: Address,
    current_difficulty: U256,
    current_gas_limit: U256,
    current_number: U256,
    current_timestamp: U256,
    #[serde(default)]
    current_base_fee: Option<U256>,
    #[serde(default)]
    current_random: Option<B256>,
    #[serde(default)]
    current_excess_blob_gas: Option<U256>,
}

#[derive(Debug, Deserialize)]
struct PreAccount {
    balance: U256,
    nonce: U256,
    code: Bytes,
    storage: BTreeMap<U256, U256>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PostEntry {
    indexes: Indexes,
    hash: B256,
    logs: B256,
    txbytes: Bytes,
    #[serde(default)]
    expect_exception: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Indexes {
    data: usize,
    gas: usize,
    value: usize,
}

/// Fork names of the fixtures that PEL knowingly does not execute: the
/// original Constantinople (with EIP-1283) was replaced by Petersburg before it
/// reached mainnet, and revm has no spec for it.
pub const UNSUPPORTED_FORKS: &[&str] = &["Constantinople"];

/// One case that did not pass, or was skipped.
#[derive(Clone, Debug, Serialize)]
pub struct CaseNote {
    /// `file::test::fork[d,g,v]`.
    pub id: String,
    /// Why.
    pub reason: String,
}

/// Totals of a run (the `--json` shape).
#[derive(Clone, Debug, Default, Serialize)]
pub struct Outcome {
    /// Cases that passed.
    pub passed: usize,
    /// Cases that failed.
    pub failed: usize,
    /// Cases skipped (forks PEL does not execute).
    pub skipped: usize,
    /// Each failure.
    pub failures: Vec<CaseNote>,
    /// Each skip, with its reason.
    pub skips: Vec<CaseNote>,
}

impl Outcome {
    /// One outcome from two (for parallel reductions).
    pub fn merge(mut self, other: Outcome) -> Outcome {
        self.passed += other.passed;
        self.failed += other.failed;
        self.skipped += other.skipped;
        self.failures.extend(other.failures);
        self.skips.extend(other.skips);
        self
    }

    /// Counts one failure of `id`.
    pub fn fail(&mut self, id: String, reason: String) {
        self.failed += 1;
        self.failures.push(CaseNote { id, reason });
    }
}

/// Every `.json` file under the given files and folders, sorted.
pub fn collect_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, StateError> {
    fn walk(path: &Path, out: &mut Vec<PathBuf>) -> Result<(), StateError> {
        let meta = std::fs::metadata(path).map_err(|source| StateError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        if meta.is_dir() {
            let entries = std::fs::read_dir(path).map_err(|source| StateError::Io {
                path: path.to_path_buf(),
                source,
            })?;
            for entry in entries {
                let entry = entry.map_err(|source| StateError::Io {
                    path: path.to_path_buf(),
                    source,
                })?;
                walk(&entry.path(), out)?;
            }
        } else if path.extension().is_some_and(|e| e == "json") {
            out.push(path.to_path_buf());
        }
        Ok(())
    }
    let mut files = Vec::new();
    for p in paths {
        walk(p, &mut files)?;
    }
    files.sort();
    Ok(files)
}

/// The thread pool fixture runners use: the fixtures nest calls 1024 deep, so
/// the threads get 64 MiB stacks.
pub fn fixture_pool(name: &str) -> Result<rayon::ThreadPool, StateError> {
    let name = name.to_string();
    rayon::ThreadPoolBuilder::new()
        .stack_size(64 << 20)
        .thread_name(move |i| format!("pel-{name}-{i}"))
        .build()
        .map_err(|e| StateError::Backend(format!("cannot start test threads: {e}")))
}

/// Runs every case of every fixture file under `paths`.
pub fn run(paths: &[PathBuf]) -> Result<Outcome, StateError> {
    run_with(paths, &[])
}

/// Like [`run`]; each case also runs as a one-transaction block through the
/// sequential block executor and through every executor of `parallel`, and
/// fails unless all of them give the same result.
pub fn run_with(paths: &[PathBuf], parallel: &[ParallelExecutor]) -> Result<Outcome, StateError> {
    let files = collect_files(paths)?;
    let pool = fixture_pool("statetest")?;
    Ok(pool.install(|| {
        files
            .par_iter()
            .map(|f| run_file_with(f, parallel))
            .reduce(Outcome::default, Outcome::merge)
    }))
}

/// Runs every case of one fixture file; a malformed file counts as one failure.
pub fn run_file(path: &Path) -> Outcome {
    run_file_with(path, &[])
}

fn run_file_with(path: &Path, parallel: &[ParallelExecutor]) -> Outcome {
    let mut outcome = Outcome::default();
    let fixtures: BTreeMap<String, Fixture> = match pel_state::mainnet::read_json(path) {
        Ok(f) => f,
        Err(e) => {
            outcome.failed += 1;
            outcome.failures.push(CaseNote {
                id: path.display().to_string(),
                reason: e.to_string(),
            });
            return outcome;
        }
    };
    for (name, fixture) in &fixtures {
        let pre = match build_pre_state(fixture) {
            Ok(pre) => pre,
            Err(reason) => {
                outcome.failed += 1;
                outcome.failures.push(CaseNote {
                    id: format!("{}::{name}", path.display()),
                    reason,
                });
                continue;
            }
        };
        for (fork_name, entries) in &fixture.post {
            for entry in entries {
                let id = format!(
                    "{}::{name}::{fork_name}[d{},g{},v{}]",
                    path.display(),
                    entry.indexes.data,
                    entry.indexes.gas,
                    entry.indexes.value
                );
                let Some(fork) = Fork::from_name(fork_name) else {
                    if !UNSUPPORTED_FORKS.contains(&fork_name.as_str()) {
                        outcome.failed += 1;
                        outcome.failures.push(CaseNote {
                            id,
                            reason: format!("unknown fork {fork_name:?}"),
                        });
                        continue;
                    }
                    outcome.skipped += 1;
                    outcome.skips.push(CaseNote {
                        id,
                        reason: format!(
                            "fork {fork_name} is not executable: pre-Petersburg Constantinople \
                             (EIP-1283) never ran on mainnet and revm has no spec for it"
                        ),
                    });
                    continue;
                };
                let result = run_case(&fixture.env, &pre, fork, entry)
                    .and_then(|()| compare_executors(&fixture.env, &pre, fork, entry, parallel));
                match result {
                    Ok(()) => outcome.passed += 1,
                    Err(reason) => {
                        outcome.failed += 1;
                        outcome.failures.push(CaseNote { id, reason });
                    }
                }
            }
        }
    }
    outcome
}

/// Parses a fixture file's text and prepares every case without executing
/// it: pre-state, block environment, and the decoded and recovered
/// transaction. Returns the number of cases (the fuzz target's entry point).
pub fn prepare_fixture_bytes(text: &[u8]) -> Result<usize, String> {
    let fixtures: BTreeMap<String, Fixture> =
        serde_json::from_slice(text).map_err(|e| e.to_string())?;
    let mut cases = 0;
    for fixture in fixtures.values() {
        let pre = build_pre_state(fixture)?;
        let _ = pre.state_root();
        for (fork_name, entries) in &fixture.post {
            let Some(fork) = Fork::from_name(fork_name) else {
                continue;
            };
            let _ = envs(&fixture.env, fork);
            for entry in entries {
                cases += 1;
                let mut raw = entry.txbytes.as_ref();
                if let Ok(envelope) = TxEnvelope::decode_2718(&mut raw) {
                    let _ = PreparedTx::recover(&envelope, None, fork.spec() < SpecId::HOMESTEAD);
                }
            }
        }
    }
    Ok(cases)
}

fn build_pre_state(fixture: &Fixture) -> Result<InMemoryState, String> {
    let mut state = InMemoryState::new();
    for (address, account) in &fixture.pre {
        let nonce = u64::try_from(account.nonce)
            .map_err(|_| format!("nonce of {address} does not fit 64 bits"))?;
        let code_hash = if account.code.is_empty() {
            pel_state::account::KECCAK_EMPTY
        } else {
            state.insert_code(account.code.clone())
        };
        state.insert_account(
            *address,
            AccountInfo {
                balance: account.balance,
                nonce,
                code_hash,
            },
            account.storage.iter().map(|(k, v)| (*k, *v)),
        );
    }
    Ok(state)
}

/// The state tests' BLOCKHASH: keccak256 of the decimal block number.
struct TestReader<'a>(&'a InMemoryState);

impl StateReader for TestReader<'_> {
    fn account(&self, address: &Address) -> Result<Option<AccountInfo>, StateError> {
        self.0.account(address)
    }
    fn code(&self, code_hash: &B256) -> Result<Option<Bytes>, StateError> {
        self.0.code(code_hash)
    }
    fn storage(&self, address: &Address, slot: &U256) -> Result<U256, StateError> {
        self.0.storage(address, slot)
    }
    fn block_hash(&self, number: u64) -> Result<Option<B256>, StateError> {
        Ok(Some(keccak256(number.to_string().as_bytes())))
    }
    fn has_storage(&self, address: &Address) -> Result<bool, StateError> {
        self.0.has_storage(address)
    }
}

fn saturating_u64(v: U256) -> u64 {
    u64::try_from(v).unwrap_or(u64::MAX)
}

fn envs(env: &Env, fork: Fork) -> (CfgEnv, BlockEnv) {
    let spec = fork.spec();
    let chain = ChainConfig::single_fork(1, fork);
    let timestamp = saturating_u64(env.current_timestamp);
    let cfg = pel_executor::env::cfg_env(&chain, spec, timestamp);
    let mut block = BlockEnv {
        number: env.current_number,
        beneficiary: env.current_coinbase,
        timestamp: env.current_timestamp,
        gas_limit: saturating_u64(env.current_gas_limit),
        basefee: env.current_base_fee.map(saturating_u64).unwrap_or_default(),
        difficulty: env.current_difficulty,
        prevrandao: if spec >= SpecId::MERGE {
            env.current_random
        } else {
            None
        },
        blob_excess_gas_and_price: None,
        slot_num: 0,
    };
    if let (true, Some(params)) = (spec >= SpecId::CANCUN, chain.blob_params_at(timestamp)) {
        let fraction = params.update_fraction;
        block.set_blob_excess_gas_and_price(
            env.current_excess_blob_gas
                .map(saturating_u64)
                .unwrap_or_default(),
            fraction,
        );
    }
    (cfg, block)
}

/// Runs the case's transaction as a block through the sequential executor and
/// each parallel one; any difference is a failure.
fn compare_executors(
    env: &Env,
    pre: &InMemoryState,
    fork: Fork,
    entry: &PostEntry,
    parallel: &[ParallelExecutor],
) -> Result<(), String> {
    if parallel.is_empty() {
        return Ok(());
    }
    let mut raw = entry.txbytes.as_ref();
    let Ok(envelope) = TxEnvelope::decode_2718(&mut raw) else {
        return Ok(());
    };
    let Ok(tx) = PreparedTx::recover(&envelope, None, fork.spec() < SpecId::HOMESTEAD) else {
        return Ok(());
    };
    let chain = ChainConfig::single_fork(1, fork);
    let header = alloy_consensus::Header {
        number: saturating_u64(env.current_number),
        beneficiary: env.current_coinbase,
        timestamp: saturating_u64(env.current_timestamp),
        gas_limit: saturating_u64(env.current_gas_limit),
        base_fee_per_gas: env.current_base_fee.map(saturating_u64),
        difficulty: env.current_difficulty,
        mix_hash: env.current_random.unwrap_or_default(),
        excess_blob_gas: env.current_excess_blob_gas.map(saturating_u64),
        ..Default::default()
    };
    let block = BlockInput {
        header,
        transactions: vec![tx],
        withdrawals: None,
        ommers: Vec::new(),
    };
    let reader = TestReader(pre);
    let sequential =
        execute_block(&reader, &block, &chain, ExecOptions::default()).map_err(|e| e.to_string());
    for executor in parallel {
        let result = executor
            .execute_block(&reader, &block, &chain, ExecOptions::default())
            .map(|(output, _)| output)
            .map_err(|e| e.to_string());
        if result != sequential {
            return Err(format!(
                "parallel executor ({} threads) differs from sequential: {:?} vs {:?}",
                executor.threads(),
                result.as_ref().map(|o| o.gas_used),
                sequential.as_ref().map(|o| o.gas_used)
            ));
        }
    }
    Ok(())
}

fn run_case(env: &Env, pre: &InMemoryState, fork: Fork, entry: &PostEntry) -> Result<(), String> {
    let expected_exception = entry.expect_exception.as_deref();
    let rejected = |why: String| -> Result<(), String> {
        match expected_exception {
            Some(_) if entry.hash == pre.state_root() => Ok(()),
            Some(_) => Err(format!(
                "rejected ({why}) but the expected root is not the pre-state root"
            )),
            None => Err(format!("transaction rejected: {why}")),
        }
    };
    let mut raw = entry.txbytes.as_ref();
    let envelope = match TxEnvelope::decode_2718(&mut raw) {
        Ok(e) if raw.is_empty() => e,
        Ok(_) => return rejected("trailing bytes after the transaction".into()),
        Err(e) => return rejected(format!("txbytes do not decode: {e}")),
    };
    let spec = fork.spec();
    let tx = match PreparedTx::recover(&envelope, None, spec < SpecId::HOMESTEAD) {
        Ok(tx) => tx,
        Err(e) => return rejected(e.to_string()),
    };
    let (cfg, block) = envs(env, fork);
    let mut evm = system::evm_with_env(BlockState::new(TestReader(pre)), cfg, block);
    let result = evm.transact(tx.env);
    if let Some(e) = evm.ctx.journaled_state.inner.database.take_error() {
        return Err(format!("state error: {e}"));
    }
    let out = match result {
        Ok(out) => out,
        Err(pel_executor::revm::context::result::EVMError::Database(e)) => {
            return Err(format!("state error: {e}"))
        }
        Err(e) => return rejected(e.to_string()),
    };
    if let Some(exception) = expected_exception {
        return Err(format!(
            "expected exception {exception}, but the transaction executed"
        ));
    }
    let mut state = evm.ctx.journaled_state.inner.database;
    state
        .commit_changes(TxChanges::from_state(out.state))
        .map_err(|e| format!("state error: {e}"))?;
    let diff = state.into_diff();
    let mut post = pre.clone();
    post.apply(&diff);
    let root = post.state_root();
    let logs_hash = keccak256(alloy_rlp::encode(out.result.logs().to_vec()));
    let mut problems = Vec::new();
    if root != entry.hash {
        problems.push(format!("state root {root}, expected {}", entry.hash));
    }
    if logs_hash != entry.logs {
        problems.push(format!("logs hash {logs_hash}, expected {}", entry.logs));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}
