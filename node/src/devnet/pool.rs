//! The transaction pool of the devnet node.
//!
//! Transactions are kept per sender by nonce. A sender's transactions whose
//! nonces run contiguously from its account nonce are *pending* (executable);
//! the rest are *queued* until the gap closes. Admission checks signature,
//! chain id, size, gas limit against the block's, intrinsic gas, fee caps
//! against the next base fee, nonce, and balance for the maximum cost; a
//! transaction with the nonce of one already pooled replaces it only with a fee
//! bump of at least 10% on both caps. The pool is bounded per sender and in
//! total. Block building takes pending transactions by effective tip, equal
//! tips in arrival order, each sender's in nonce order. Error messages follow
//! geth's wording.

use alloy_consensus::{Transaction, TxEnvelope};
use alloy_eips::eip2718::Encodable2718;
use alloy_primitives::{Address, B256, U256};
use pel_executor::{
    revm::context_interface::cfg::gas::calculate_initial_tx_gas_for_tx, PreparedTx, SpecId,
};
use pel_rpc::NodeError;
use std::collections::{BTreeMap, BinaryHeap, HashMap};

/// Pool bounds and admission rules.
#[derive(Clone, Copy, Debug)]
pub struct PoolConfig {
    /// Chain id transactions must carry (legacy ones without a chain id pass).
    pub chain_id: u64,
    /// Block gas limit.
    pub block_gas_limit: u64,
    /// Most transactions of one sender.
    pub max_per_sender: usize,
    /// Most transactions in total.
    pub max_total: usize,
    /// Largest nonce gap ahead of the account's nonce.
    pub max_nonce_gap: u64,
    /// Largest encoded transaction.
    pub max_tx_bytes: usize,
}

impl PoolConfig {
    /// Defaults for a chain.
    pub fn new(chain_id: u64, block_gas_limit: u64) -> Self {
        Self {
            chain_id,
            block_gas_limit,
            max_per_sender: 4096,
            max_total: 100_000,
            max_nonce_gap: 1024,
            max_tx_bytes: 128 * 1024,
        }
    }
}

/// A transaction that passed the checks needing neither the pool nor the
/// chain's state, with its recovered sender.
#[derive(Clone, Debug)]
pub struct Checked {
    tx: TxEnvelope,
    sender: Address,
    hash: B256,
}

impl Checked {
    /// The recovered sender.
    pub fn sender(&self) -> Address {
        self.sender
    }
}

impl PoolConfig {
    /// The admission checks that need neither the pool nor the chain's state:
    /// size, chain id, signature (sender recovery), gas limit against the
    /// block's, intrinsic gas, and fee caps against `base_fee`. Sender
    /// recovery is most of admission's CPU, so callers run this outside the
    /// pool's lock and admit with [`Pool::insert`].
    pub fn check(&self, tx: TxEnvelope, base_fee: u64, spec: SpecId) -> Result<Checked, NodeError> {
        let size = tx.encode_2718_len();
        if size > self.max_tx_bytes {
            return Err(reject(format!(
                "oversized data: transaction size {size}, limit {}",
                self.max_tx_bytes
            )));
        }
        if let Some(id) = tx.chain_id() {
            if id != self.chain_id {
                return Err(reject(format!(
                    "invalid chain id: have {id}, want {}",
                    self.chain_id
                )));
            }
        }
        let prepared = PreparedTx::recover(&tx, None, false)
            .map_err(|e| reject(format!("invalid sender: {e}")))?;
        let sender = prepared.sender;
        if tx.gas_limit() > self.block_gas_limit {
            return Err(reject(format!(
                "exceeds block gas limit: gas {} > {}",
                tx.gas_limit(),
                self.block_gas_limit
            )));
        }
        let intrinsic = calculate_initial_tx_gas_for_tx(&prepared.env, spec, None);
        let needed =
            (intrinsic.initial_regular_gas + intrinsic.initial_state_gas).max(intrinsic.floor_gas);
        if tx.gas_limit() < needed {
            return Err(reject(format!(
                "intrinsic gas too low: gas {}, minimum needed {needed}",
                tx.gas_limit()
            )));
        }
        if let Some(tip) = tx.max_priority_fee_per_gas() {
            if tip > tx.max_fee_per_gas() {
                return Err(reject(format!(
                    "max priority fee per gas higher than max fee per gas: tip {tip}, cap {}",
                    tx.max_fee_per_gas()
                )));
            }
        }
        if tx.max_fee_per_gas() < base_fee as u128 {
            return Err(reject(format!(
                "max fee per gas less than block base fee: address {sender}, maxFeePerGas: {}, baseFee: {base_fee}",
                tx.max_fee_per_gas()
            )));
        }
        let hash = *tx.tx_hash();
        Ok(Checked { tx, sender, hash })
    }
}

/// A pooled transaction.
#[derive(Clone, Debug)]
pub struct PoolTx {
    /// The signed transaction.
    pub tx: TxEnvelope,
    /// Its sender.
    pub sender: Address,
    /// Its hash.
    pub hash: B256,
    /// Arrival order in the pool: among equal tips, earlier first.
    pub seq: u64,
}

/// What the pool needs to know about the chain to admit a transaction.
#[derive(Clone, Copy, Debug)]
pub struct AccountView {
    /// The sender's nonce at the head.
    pub nonce: u64,
    /// The sender's balance at the head.
    pub balance: U256,
}

/// The pool.
#[derive(Debug)]
pub struct Pool {
    config: PoolConfig,
    by_sender: HashMap<Address, BTreeMap<u64, PoolTx>>,
    by_hash: HashMap<B256, (Address, u64)>,
    /// Arrival counter.
    next_seq: u64,
    /// Bumped by every change to the pooled set.
    version: u64,
}

fn reject(message: impl Into<String>) -> NodeError {
    NodeError::server(message)
}

impl Pool {
    /// An empty pool.
    pub fn new(config: PoolConfig) -> Self {
        Self {
            config,
            by_sender: HashMap::new(),
            by_hash: HashMap::new(),
            next_seq: 0,
            version: 0,
        }
    }

    /// A number that changes whenever the pooled set does: equal versions
    /// give equal blocks on the same head.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Number of pooled transactions.
    pub fn len(&self) -> usize {
        self.by_hash.len()
    }

    /// True when nothing is pooled.
    pub fn is_empty(&self) -> bool {
        self.by_hash.is_empty()
    }

    /// A pooled transaction by hash.
    pub fn get(&self, hash: &B256) -> Option<&PoolTx> {
        let (sender, nonce) = self.by_hash.get(hash)?;
        self.by_sender.get(sender)?.get(nonce)
    }

    /// The next nonce of `sender` counting its contiguous pooled transactions.
    pub fn next_nonce(&self, sender: &Address, account_nonce: u64) -> u64 {
        let mut next = account_nonce;
        if let Some(txs) = self.by_sender.get(sender) {
            while txs.contains_key(&next) {
                next += 1;
            }
        }
        next
    }

    /// Admits a transaction that passed [`PoolConfig::check`], given its
    /// sender's account at the head: the checks against the pool (known,
    /// replacement, bounds) and the account (nonce, balance).
    pub fn insert(&mut self, checked: Checked, view: AccountView) -> Result<B256, NodeError> {
        let Checked { tx, sender, hash } = checked;
        if self.by_hash.contains_key(&hash) {
            return Err(reject("already known"));
        }
        let nonce = tx.nonce();
        if nonce < view.nonce {
            return Err(reject(format!(
                "nonce too low: next nonce {}, tx nonce {nonce}",
                view.nonce
            )));
        }
        if nonce > view.nonce + self.config.max_nonce_gap {
            return Err(reject(format!(
                "nonce too high: next nonce {}, tx nonce {nonce}",
                view.nonce
            )));
        }
        let blob_cost = U256::from(tx.blob_gas_used().unwrap_or_default())
            * U256::from(tx.max_fee_per_blob_gas().unwrap_or_default());
        let cost =
            U256::from(tx.gas_limit()) * U256::from(tx.max_fee_per_gas()) + tx.value() + blob_cost;
        if view.balance < cost {
            return Err(reject(format!(
                "insufficient funds for gas * price + value: address {sender} have {} want {cost}",
                view.balance
            )));
        }
        let existing = self
            .by_sender
            .get(&sender)
            .and_then(|m| m.get(&nonce))
            .cloned();
        if let Some(old) = &existing {
            let bump = |new: u128, old: u128| new.saturating_mul(100) >= old.saturating_mul(110);
            let old_tip = old
                .tx
                .max_priority_fee_per_gas()
                .unwrap_or(old.tx.max_fee_per_gas());
            let new_tip = tx
                .max_priority_fee_per_gas()
                .unwrap_or(tx.max_fee_per_gas());
            if !bump(tx.max_fee_per_gas(), old.tx.max_fee_per_gas()) || !bump(new_tip, old_tip) {
                return Err(reject("replacement transaction underpriced"));
            }
        } else {
            let count = self.by_sender.get(&sender).map_or(0, BTreeMap::len);
            if count >= self.config.max_per_sender {
                return Err(reject(format!(
                    "txpool is full: {count} transactions from {sender} (limit {})",
                    self.config.max_per_sender
                )));
            }
            if self.by_hash.len() >= self.config.max_total {
                return Err(reject("txpool is full"));
            }
        }
        if let Some(old) = existing {
            self.by_hash.remove(&old.hash);
        }
        self.by_hash.insert(hash, (sender, nonce));
        let seq = self.next_seq;
        self.next_seq += 1;
        self.version += 1;
        self.by_sender.entry(sender).or_default().insert(
            nonce,
            PoolTx {
                tx,
                sender,
                hash,
                seq,
            },
        );
        Ok(hash)
    }

    /// Pending transactions for a block: by effective tip (at `base_fee`),
    /// equal tips in arrival order (as geth orders them), each sender's in
    /// nonce order from its account nonce, until their gas limits fill
    /// `gas_limit`. Arrival order interleaves senders that send at once, so
    /// a sender's next transaction lands far from its previous one and the
    /// parallel executor finds the block's independent work.
    pub fn best(
        &self,
        account_nonce: impl Fn(&Address) -> u64,
        base_fee: u64,
        gas_limit: u64,
    ) -> Vec<(TxEnvelope, Address)> {
        #[derive(PartialEq, Eq, PartialOrd, Ord)]
        struct Head {
            tip: u128,
            // Earlier arrivals first on equal tips.
            seq: std::cmp::Reverse<u64>,
            sender: Address,
            nonce: u64,
        }
        let tip_of = |tx: &TxEnvelope| tx.effective_tip_per_gas(base_fee).unwrap_or(0);
        let mut heap = BinaryHeap::new();
        for (sender, txs) in &self.by_sender {
            let nonce = account_nonce(sender);
            if let Some(tx) = txs.get(&nonce) {
                if tx.tx.max_fee_per_gas() >= base_fee as u128 {
                    heap.push(Head {
                        tip: tip_of(&tx.tx),
                        seq: std::cmp::Reverse(tx.seq),
                        sender: *sender,
                        nonce,
                    });
                }
            }
        }
        let mut out = Vec::new();
        let mut gas = 0u64;
        while let Some(head) = heap.pop() {
            let sender = head.sender;
            let Some(txs) = self.by_sender.get(&sender) else {
                continue;
            };
            let Some(tx) = txs.get(&head.nonce) else {
                continue;
            };
            if gas + tx.tx.gas_limit() > gas_limit {
                continue;
            }
            gas += tx.tx.gas_limit();
            out.push((tx.tx.clone(), tx.sender));
            if let Some(next) = txs.get(&(head.nonce + 1)) {
                if next.tx.max_fee_per_gas() >= base_fee as u128 {
                    heap.push(Head {
                        tip: tip_of(&next.tx),
                        seq: std::cmp::Reverse(next.seq),
                        sender,
                        nonce: head.nonce + 1,
                    });
                }
            }
        }
        out
    }

    /// Removes transactions by hash (mined or dropped).
    pub fn remove(&mut self, hashes: impl IntoIterator<Item = B256>) {
        for hash in hashes {
            if let Some((sender, nonce)) = self.by_hash.remove(&hash) {
                self.version += 1;
                if let Some(txs) = self.by_sender.get_mut(&sender) {
                    txs.remove(&nonce);
                    if txs.is_empty() {
                        self.by_sender.remove(&sender);
                    }
                }
            }
        }
    }

    /// Drops transactions whose nonce the chain has passed.
    pub fn prune_stale(&mut self, account_nonce: impl Fn(&Address) -> u64) {
        let mut stale = Vec::new();
        for (sender, txs) in &self.by_sender {
            let nonce = account_nonce(sender);
            stale.extend(txs.range(..nonce).map(|(_, t)| t.hash));
        }
        self.remove(stale);
    }

    /// Pending and queued transactions by sender.
    pub fn content(&self, account_nonce: impl Fn(&Address) -> u64) -> pel_rpc::PoolContent {
        let mut content = pel_rpc::PoolContent::default();
        for (sender, txs) in &self.by_sender {
            let mut next = account_nonce(sender);
            let (mut pending, mut queued) = (Vec::new(), Vec::new());
            for (nonce, tx) in txs {
                if *nonce == next {
                    pending.push(tx.tx.clone());
                    next += 1;
                } else {
                    queued.push(tx.tx.clone());
                }
            }
            if !pending.is_empty() {
                content.pending.push((*sender, pending));
            }
            if !queued.is_empty() {
                content.queued.push((*sender, queued));
            }
        }
        content
    }
}
