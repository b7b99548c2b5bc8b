//! The conflict profile of a block: which transactions depended on which,
//! along which state locations, the critical path, and the speedup the
//! dependencies allow at a given number of threads.
//!
//! It is computed after a parallel run from what the executor already keeps:
//! the read and write sets of every transaction's final incarnation, the
//! deferred beneficiary fees, and each final incarnation's execution time.
//!
//! Definitions:
//! - transaction `j` depends on `i < j` when `j` read a location whose last
//!   writer below `j` is `i` (the value `j` saw came from `i`). Reading the
//!   block beneficiary also depends on every lower transaction since that
//!   writer that paid it a fee (the deferred fees are part of the value);
//! - the critical path is the heaviest chain of dependencies, weighted either
//!   by each transaction's gas or by its measured execution time;
//! - with total work `W` and critical path `C`, no schedule on `p` threads
//!   finishes before `max(C, W / p)`, so `W / max(C, W / p)` bounds the
//!   speedup on `p` threads (`W / C` with unlimited threads).

use crate::{
    mv_memory::{Delta, Location, Value},
    scheduler::TxIdx,
    vm::ReadRecord,
};
use alloy_primitives::{map::HashMap, Address, U256};
use serde::{Deserialize, Serialize};

/// Thread counts the profile gives a bound for (besides unlimited).
pub const BOUND_THREADS: [usize; 5] = [2, 4, 8, 16, 32];

/// How many hot locations a profile lists.
pub const HOT_LOCATIONS: usize = 10;

/// What the executor knew about one transaction's final incarnation.
#[derive(Clone, Debug, Default)]
pub struct TxTrace {
    /// Every location it read from outside itself, with the value seen.
    pub reads: Vec<ReadRecord>,
    /// Its versioned writes.
    pub writes: Vec<(Location, Value)>,
    /// Whether it paid the beneficiary a non-zero fee.
    pub paid_fee: bool,
    /// Gas it used.
    pub gas: u64,
    /// Execution time of the final incarnation, in nanoseconds.
    pub time_ns: u64,
    /// Incarnations it took (1 when never aborted).
    pub incarnations: u32,
}

/// The part of a location a dependency went through.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LocationKind {
    /// An account's balance (also the beneficiary's deferred fees).
    Balance,
    /// An account's nonce.
    Nonce,
    /// An account's code.
    Code,
    /// An account's existence (created, destroyed, emptied).
    Account,
    /// A storage slot.
    Storage,
}

/// A state location ranked by the dependencies it caused.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HotLocation {
    /// The account or contract.
    pub address: Address,
    /// Which part of it.
    pub kind: LocationKind,
    /// The slot, for [`LocationKind::Storage`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slot: Option<U256>,
    /// Dependencies (graph edges) that went through it.
    pub dependencies: usize,
}

/// The heaviest chain of dependencies under one weighting.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CriticalPath {
    /// Total gas of the transactions on the gas-weighted path.
    pub gas: u64,
    /// The gas-weighted path, in block order.
    pub txs: Vec<TxIdx>,
    /// Total execution time of the time-weighted path, in microseconds.
    pub time_us: f64,
    /// Length of the time-weighted path.
    pub time_path_len: usize,
}

/// The speedup the dependencies allow on `threads` threads.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Bound {
    /// Thread count; `None` for unlimited.
    pub threads: Option<usize>,
    /// Bound with transactions weighted by gas (exact, machine-independent).
    pub by_gas: f64,
    /// Bound with transactions weighted by measured execution time.
    pub by_time: f64,
}

/// The conflict profile of one block.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BlockProfile {
    /// Transactions.
    pub txs: usize,
    /// Gas of all transactions.
    pub gas: u64,
    /// Sum of the final incarnations' execution times, in microseconds.
    pub work_us: f64,
    /// Dependency edges in the graph.
    pub edges: usize,
    /// For each transaction, the lower transactions it depends on (ascending).
    pub depends_on: Vec<Vec<TxIdx>>,
    /// Transactions that depend on no other.
    pub independent: usize,
    /// Aborted incarnations in the run that produced the profile.
    pub aborts: usize,
    /// The critical path.
    pub critical_path: CriticalPath,
    /// Speedup bounds at [`BOUND_THREADS`] and unlimited threads (last).
    pub bounds: Vec<Bound>,
    /// The locations that caused most dependencies, hottest first.
    pub hot: Vec<HotLocation>,
}

impl BlockProfile {
    /// The bound at `threads` threads (`None`: unlimited), if listed.
    pub fn bound(&self, threads: Option<usize>) -> Option<&Bound> {
        self.bounds.iter().find(|b| b.threads == threads)
    }

    /// The gas-weighted bound for `threads` threads, for any thread count.
    pub fn bound_by_gas(&self, threads: usize) -> f64 {
        speedup_bound(
            self.gas as f64,
            self.critical_path.gas as f64,
            Some(threads),
        )
    }

    /// The time-weighted bound for `threads` threads, for any thread count.
    pub fn bound_by_time(&self, threads: usize) -> f64 {
        speedup_bound(self.work_us, self.critical_path.time_us, Some(threads))
    }
}

/// `W / max(C, W / p)`; 1 for an empty block.
fn speedup_bound(work: f64, critical: f64, threads: Option<usize>) -> f64 {
    let floor = match threads {
        Some(p) => critical.max(work / p.max(1) as f64),
        None => critical,
    };
    if work <= 0.0 || floor <= 0.0 {
        1.0
    } else {
        work / floor
    }
}

type LocationKey = (Address, LocationKind, Option<U256>);

/// Computes the profile of a block from its transactions' traces.
pub fn profile(traces: &[TxTrace], beneficiary: Address, aborts: usize) -> BlockProfile {
    let n = traces.len();
    // Writers of each location, ascending (traces are visited in order),
    // each with its write's delta if it was one (a plain transfer's credit
    // or debit).
    let mut writers: HashMap<Location, Vec<(TxIdx, Option<Delta>)>> = HashMap::default();
    for (i, trace) in traces.iter().enumerate() {
        for (location, value) in &trace.writes {
            let delta = match value {
                Value::Delta(d) => Some(*d),
                _ => None,
            };
            writers.entry(*location).or_default().push((i, delta));
        }
    }
    let fee_payers: Vec<TxIdx> = (0..n).filter(|&i| traces[i].paid_fee).collect();
    let mut depends_on: Vec<Vec<TxIdx>> = Vec::with_capacity(n);
    let mut heat: HashMap<LocationKey, usize> = HashMap::default();
    for (j, trace) in traces.iter().enumerate() {
        let mut deps: Vec<(TxIdx, LocationKey)> = Vec::new();
        for read in &trace.reads {
            // Which deltas the read depends on: all of them for an ordinary
            // read, the highest debit (its nonce) for a debited sender, none
            // for a lazily credited target.
            let (location, credits, debits) = match read {
                ReadRecord::Account(address, ..) => (Location::Account(*address), true, true),
                ReadRecord::Debited(address, ..) => (Location::Account(*address), false, true),
                ReadRecord::Credited(address, ..) => (Location::Account(*address), false, false),
                ReadRecord::Shifted(address, _, least, _) => {
                    let depends = !least.is_zero();
                    (Location::Account(*address), depends, depends)
                }
                ReadRecord::Storage(address, slot, ..) => {
                    (Location::Storage(*address, *slot), true, true)
                }
            };
            // The writers the read depends on, downwards: those deltas down to
            // the first full write, which ends the list.
            let mut writer = None;
            if let Some(w) = writers.get(&location) {
                let below = w.partition_point(|&(i, _)| i < j);
                for &(i, delta) in w[..below].iter().rev() {
                    let counts = match delta {
                        None => true,
                        Some(Delta::Credit(_)) => credits,
                        Some(Delta::Debit { .. } | Delta::Withdraw(_)) => debits,
                    };
                    if counts {
                        writer.get_or_insert(i);
                        deps.push((i, location_key(traces, i, &location)));
                    }
                    let nonce_only =
                        debits && !credits && matches!(delta, Some(Delta::Debit { .. }));
                    if delta.is_none() || nonce_only {
                        break;
                    }
                }
            }
            if let ReadRecord::Account(address, ..) = read {
                if *address == beneficiary {
                    let from = writer.unwrap_or(0);
                    let start = fee_payers.partition_point(|&k| k < from);
                    let end = fee_payers.partition_point(|&k| k < j);
                    for &k in &fee_payers[start..end] {
                        deps.push((k, (beneficiary, LocationKind::Balance, None)));
                    }
                }
            }
        }
        // A location counts once per dependency it carries; a pair of
        // transactions linked through several locations is one edge.
        deps.sort_unstable();
        deps.dedup();
        for (_, key) in &deps {
            *heat.entry(*key).or_default() += 1;
        }
        let mut ids: Vec<TxIdx> = deps.into_iter().map(|(i, _)| i).collect();
        ids.dedup();
        depends_on.push(ids);
    }

    let gas: Vec<u64> = traces.iter().map(|t| t.gas).collect();
    let time: Vec<f64> = traces.iter().map(|t| t.time_ns as f64 / 1e3).collect();
    let (gas_path, gas_cp) = longest_path(&depends_on, &gas);
    let (time_path, time_cp) = longest_path(&depends_on, &time);
    let total_gas: u64 = gas.iter().sum();
    let work_us: f64 = time.iter().sum();
    let bounds = BOUND_THREADS
        .iter()
        .map(|&p| Some(p))
        .chain([None])
        .map(|threads| Bound {
            threads,
            by_gas: speedup_bound(total_gas as f64, gas_cp as f64, threads),
            by_time: speedup_bound(work_us, time_cp, threads),
        })
        .collect();
    let mut hot: Vec<HotLocation> = heat
        .into_iter()
        .map(|((address, kind, slot), dependencies)| HotLocation {
            address,
            kind,
            slot,
            dependencies,
        })
        .collect();
    hot.sort_by(|a, b| {
        b.dependencies
            .cmp(&a.dependencies)
            .then_with(|| (a.address, a.kind, a.slot).cmp(&(b.address, b.kind, b.slot)))
    });
    hot.truncate(HOT_LOCATIONS);
    BlockProfile {
        txs: n,
        gas: total_gas,
        work_us,
        edges: depends_on.iter().map(Vec::len).sum(),
        independent: depends_on.iter().filter(|d| d.is_empty()).count(),
        depends_on,
        aborts,
        critical_path: CriticalPath {
            gas: gas_cp,
            txs: gas_path,
            time_us: time_cp,
            time_path_len: time_path.len(),
        },
        bounds,
        hot,
    }
}

/// Names the part of `location` that writer `i` changed.
fn location_key(traces: &[TxTrace], i: TxIdx, location: &Location) -> LocationKey {
    match location {
        Location::Storage(address, slot) => (*address, LocationKind::Storage, Some(*slot)),
        Location::Account(address) => {
            let delta = traces[i].writes.iter().find_map(|(l, v)| match (l, v) {
                (Location::Account(a), Value::Delta(d)) if a == address => Some(*d),
                _ => None,
            });
            match delta {
                Some(Delta::Credit(_) | Delta::Withdraw(_)) => {
                    return (*address, LocationKind::Balance, None)
                }
                Some(Delta::Debit { .. }) => return (*address, LocationKind::Nonce, None),
                None => {}
            }
            let written = traces[i].writes.iter().find_map(|(l, v)| match (l, v) {
                (Location::Account(a), Value::Account(v)) if a == address => Some(*v),
                _ => None,
            });
            let before = traces[i].reads.iter().find_map(|r| match r {
                ReadRecord::Account(a, v, _) if a == address => Some(*v),
                _ => None,
            });
            let kind = match (before.and_then(|b| b.info), written.and_then(|w| w.info)) {
                (Some(b), Some(w))
                    if before.map(|b| b.last_wipe) == written.map(|w| w.last_wipe) =>
                {
                    if b.nonce != w.nonce {
                        LocationKind::Nonce
                    } else if b.code_hash != w.code_hash {
                        LocationKind::Code
                    } else {
                        LocationKind::Balance
                    }
                }
                _ => LocationKind::Account,
            };
            (*address, kind, None)
        }
    }
}

/// The heaviest path through the dependency DAG (edges point to lower
/// indices): its transactions in block order and its weight.
fn longest_path<W>(depends_on: &[Vec<TxIdx>], weight: &[W]) -> (Vec<TxIdx>, W)
where
    W: Copy + Default + PartialOrd + std::ops::Add<Output = W>,
{
    let n = depends_on.len();
    let mut finish: Vec<W> = Vec::with_capacity(n);
    let mut via: Vec<Option<TxIdx>> = Vec::with_capacity(n);
    for (j, deps) in depends_on.iter().enumerate() {
        let mut best: Option<TxIdx> = None;
        for &i in deps {
            if best.is_none_or(|b| finish[i] > finish[b]) {
                best = Some(i);
            }
        }
        let start = best.map(|b| finish[b]).unwrap_or_default();
        finish.push(start + weight[j]);
        via.push(best);
    }
    let Some(mut last) = (0..n).fold(None, |best: Option<TxIdx>, j| match best {
        Some(b) if finish[b] >= finish[j] => Some(b),
        _ => Some(j),
    }) else {
        return (Vec::new(), W::default());
    };
    let total = finish[last];
    let mut path = vec![last];
    while let Some(prev) = via[last] {
        path.push(prev);
        last = prev;
    }
    path.reverse();
    (path, total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mv_memory::AccountValue;
    use pel_state::AccountInfo;

    fn addr(i: u8) -> Address {
        Address::with_last_byte(i)
    }

    fn slot_read(a: u8, s: u64) -> ReadRecord {
        ReadRecord::Storage(addr(a), U256::from(s), U256::ZERO, None)
    }

    fn slot_write(a: u8, s: u64) -> (Location, Value) {
        (
            Location::Storage(addr(a), U256::from(s)),
            Value::Storage(U256::from(1)),
        )
    }

    fn trace(reads: Vec<ReadRecord>, writes: Vec<(Location, Value)>, gas: u64) -> TxTrace {
        TxTrace {
            reads,
            writes,
            paid_fee: false,
            gas,
            time_ns: gas * 10,
            incarnations: 1,
        }
    }

    #[test]
    fn independent_transactions_bound_is_the_thread_count() {
        let traces: Vec<TxTrace> = (0..8)
            .map(|i| trace(vec![slot_read(i, 0)], vec![slot_write(i, 0)], 21_000))
            .collect();
        let p = profile(&traces, addr(0xcb), 0);
        assert_eq!(p.edges, 0);
        assert_eq!(p.independent, 8);
        assert_eq!(p.critical_path.gas, 21_000);
        assert_eq!(p.bound(Some(2)).map(|b| b.by_gas), Some(2.0));
        assert_eq!(p.bound(Some(16)).map(|b| b.by_gas), Some(8.0));
        assert_eq!(p.bound(None).map(|b| b.by_gas), Some(8.0));
        assert!(p.hot.is_empty());
    }

    #[test]
    fn a_chain_has_bound_one_and_names_its_slot() {
        let traces: Vec<TxTrace> = (0..5)
            .map(|_| trace(vec![slot_read(9, 3)], vec![slot_write(9, 3)], 30_000))
            .collect();
        let p = profile(&traces, addr(0xcb), 4);
        assert_eq!(
            p.depends_on,
            vec![vec![], vec![0], vec![1], vec![2], vec![3]]
        );
        assert_eq!(p.critical_path.txs, vec![0, 1, 2, 3, 4]);
        assert_eq!(p.critical_path.gas, 150_000);
        assert_eq!(p.bound(None).map(|b| b.by_gas), Some(1.0));
        assert_eq!(p.aborts, 4);
        assert_eq!(
            p.hot,
            vec![HotLocation {
                address: addr(9),
                kind: LocationKind::Storage,
                slot: Some(U256::from(3)),
                dependencies: 4
            }]
        );
    }

    #[test]
    fn a_read_depends_only_on_the_last_writer_below() {
        // 0 writes, 1 writes, 2 reads: 2 depends on 1 only; 3 reads something
        // written only by 4 (above it): no dependency.
        let traces = vec![
            trace(vec![], vec![slot_write(1, 0)], 10),
            trace(vec![], vec![slot_write(1, 0)], 10),
            trace(vec![slot_read(1, 0)], vec![], 10),
            trace(vec![slot_read(2, 0)], vec![], 10),
            trace(vec![], vec![slot_write(2, 0)], 10),
        ];
        let p = profile(&traces, addr(0xcb), 0);
        assert_eq!(p.depends_on, vec![vec![], vec![], vec![1], vec![], vec![]]);
        assert_eq!(p.critical_path.gas, 20);
        assert_eq!(p.critical_path.txs, vec![1, 2]);
        assert_eq!(p.bound(Some(2)).map(|b| b.by_gas), Some(2.0));
        assert_eq!(p.bound(None).map(|b| b.by_gas), Some(2.5));
    }

    #[test]
    fn reading_the_beneficiary_depends_on_fee_payers_and_names_nonce_changes() {
        let info = |nonce| {
            Some(AccountInfo {
                nonce,
                ..AccountInfo::default()
            })
        };
        let account = |nonce| AccountValue {
            info: info(nonce),
            last_wipe: None,
        };
        let mut t0 = trace(
            vec![ReadRecord::Account(addr(1), account(0), None)],
            vec![(Location::Account(addr(1)), Value::Account(account(1)))],
            21_000,
        );
        t0.paid_fee = true;
        let mut t1 = trace(vec![], vec![], 21_000);
        t1.paid_fee = true;
        let t2 = trace(vec![], vec![], 21_000);
        // Same sender as 0 (reads its account), and reads the beneficiary.
        let t3 = trace(
            vec![
                ReadRecord::Account(addr(1), account(1), Some(0)),
                ReadRecord::Account(addr(0xcb), account(0), None),
            ],
            vec![],
            21_000,
        );
        let p = profile(&[t0, t1, t2, t3], addr(0xcb), 0);
        assert_eq!(p.depends_on[3], vec![0, 1]);
        assert_eq!(p.hot.len(), 2);
        let kinds: Vec<(Address, LocationKind)> =
            p.hot.iter().map(|h| (h.address, h.kind)).collect();
        assert!(kinds.contains(&(addr(1), LocationKind::Nonce)));
        assert!(kinds.contains(&(addr(0xcb), LocationKind::Balance)));
    }

    #[test]
    fn an_empty_block_has_bound_one() {
        let p = profile(&[], addr(0), 0);
        assert_eq!(p.edges, 0);
        assert!(p.bounds.iter().all(|b| b.by_gas == 1.0 && b.by_time == 1.0));
        assert!(p.critical_path.txs.is_empty());
    }
}
