//! Conflict profiles for people: the per-block table, the text of one
//! profile, and the summary across many blocks (bound distribution, hottest
//! contracts).

use crate::output::Table;
use alloy_primitives::Address;
use pel_executor::profile::{BlockProfile, LocationKind, BOUND_THREADS};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// How many contracts the summary lists.
const TOP_CONTRACTS: usize = 10;

/// Upper edges of the histogram buckets of unlimited-thread bounds.
const BUCKETS: [f64; 7] = [1.5, 2.0, 4.0, 8.0, 16.0, 32.0, f64::INFINITY];

/// Distribution of one thread count's bound across blocks.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BoundStats {
    /// Thread count; `None` for unlimited.
    pub threads: Option<usize>,
    /// Smallest block bound.
    pub min: f64,
    /// Median block bound.
    pub median: f64,
    /// Largest block bound.
    pub max: f64,
    /// The bound for the blocks run one after another: total gas over the
    /// sum of each block's `max(critical path, gas / threads)`.
    pub aggregate: f64,
}

/// One bucket of the histogram of unlimited-thread bounds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Bucket {
    /// Bounds below this (and at or above the previous bucket's edge).
    pub below: Option<f64>,
    /// Blocks in the bucket.
    pub blocks: usize,
}

/// A contract ranked by the dependencies its state caused across blocks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HotContract {
    /// The contract or account.
    pub address: Address,
    /// Dependencies through any of its locations (among each block's hottest).
    pub dependencies: usize,
    /// Blocks in which it was among the hottest locations.
    pub blocks: usize,
}

/// The profile summary across blocks (gas-weighted bounds).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProfileSummary {
    /// Blocks with a profile.
    pub blocks: usize,
    /// Dependency edges across blocks.
    pub edges: usize,
    /// Aborted incarnations across the profiled runs.
    pub aborts: usize,
    /// Bound distribution per thread count (unlimited last).
    pub bounds: Vec<BoundStats>,
    /// Histogram of the unlimited-thread bounds.
    pub histogram: Vec<Bucket>,
    /// The contracts that caused most dependencies, hottest first.
    pub hot_contracts: Vec<HotContract>,
}

impl ProfileSummary {
    /// Summarises `profiles`; `None` when there are none.
    pub fn from_profiles<'a>(profiles: impl IntoIterator<Item = &'a BlockProfile>) -> Option<Self> {
        let profiles: Vec<&BlockProfile> = profiles.into_iter().collect();
        if profiles.is_empty() {
            return None;
        }
        let thread_counts = BOUND_THREADS.iter().map(|&t| Some(t)).chain([None]);
        let bounds = thread_counts
            .map(|threads| {
                let mut values: Vec<f64> = profiles
                    .iter()
                    .map(|p| match threads {
                        Some(t) => p.bound_by_gas(t),
                        None => p.bound(None).map_or(1.0, |b| b.by_gas),
                    })
                    .collect();
                values.sort_by(f64::total_cmp);
                let gas: f64 = profiles.iter().map(|p| p.gas as f64).sum();
                let floor: f64 = profiles
                    .iter()
                    .map(|p| {
                        let cp = p.critical_path.gas as f64;
                        match threads {
                            Some(t) => cp.max(p.gas as f64 / t as f64),
                            None => cp,
                        }
                    })
                    .sum();
                BoundStats {
                    threads,
                    min: values[0],
                    median: values[values.len() / 2],
                    max: values[values.len() - 1],
                    aggregate: if floor > 0.0 { gas / floor } else { 1.0 },
                }
            })
            .collect();
        let mut histogram: Vec<Bucket> = BUCKETS
            .iter()
            .map(|&edge| Bucket {
                below: edge.is_finite().then_some(edge),
                blocks: 0,
            })
            .collect();
        for p in &profiles {
            let b = p.bound(None).map_or(1.0, |b| b.by_gas);
            if let Some(i) = BUCKETS.iter().position(|&edge| b < edge) {
                histogram[i].blocks += 1;
            }
        }
        let mut contracts: BTreeMap<Address, (usize, usize)> = BTreeMap::new();
        for p in &profiles {
            let mut seen: Vec<Address> = Vec::new();
            for h in &p.hot {
                let entry = contracts.entry(h.address).or_default();
                entry.0 += h.dependencies;
                if !seen.contains(&h.address) {
                    seen.push(h.address);
                    entry.1 += 1;
                }
            }
        }
        let mut hot_contracts: Vec<HotContract> = contracts
            .into_iter()
            .map(|(address, (dependencies, blocks))| HotContract {
                address,
                dependencies,
                blocks,
            })
            .collect();
        hot_contracts.sort_by_key(|c| std::cmp::Reverse(c.dependencies));
        hot_contracts.truncate(TOP_CONTRACTS);
        Some(Self {
            blocks: profiles.len(),
            edges: profiles.iter().map(|p| p.edges).sum(),
            aborts: profiles.iter().map(|p| p.aborts).sum(),
            bounds,
            histogram,
            hot_contracts,
        })
    }

    /// The summary as text: bound distribution table, histogram, hot contracts.
    pub fn text(&self) -> String {
        let mut out = format!(
            "\nconflict profile of {} blocks: {} dependencies, {} aborts; speedup bounds (gas-weighted critical path):\n",
            self.blocks, self.edges, self.aborts
        );
        let mut table = Table::new(&["threads", "min", "median", "max", "all blocks"], 1);
        for b in &self.bounds {
            table.row(vec![
                b.threads.map_or("unlimited".into(), |t| t.to_string()),
                format!("{:.2}x", b.min),
                format!("{:.2}x", b.median),
                format!("{:.2}x", b.max),
                format!("{:.2}x", b.aggregate),
            ]);
        }
        out.push_str(&table.render());
        out.push_str("blocks by unlimited-thread bound: ");
        let mut lower = 1.0;
        let buckets: Vec<String> = self
            .histogram
            .iter()
            .map(|b| {
                let s = match b.below {
                    Some(edge) => format!("[{lower}, {edge}): {}", b.blocks),
                    None => format!(">= {lower}: {}", b.blocks),
                };
                lower = b.below.unwrap_or(lower);
                s
            })
            .collect();
        out.push_str(&buckets.join(", "));
        out.push('\n');
        if !self.hot_contracts.is_empty() {
            out.push_str("hottest contracts:\n");
            let mut table = Table::new(&["address", "dependencies", "blocks"], 1);
            for c in &self.hot_contracts {
                table.row(vec![
                    c.address.to_string(),
                    c.dependencies.to_string(),
                    c.blocks.to_string(),
                ]);
            }
            out.push_str(&table.render());
        }
        out
    }
}

/// A location as a person reads it: `0xabc… balance` or `0xabc… slot 0x5`.
pub fn location_name(h: &pel_executor::profile::HotLocation) -> String {
    match (h.kind, h.slot) {
        (LocationKind::Storage, Some(slot)) => format!("{} slot {slot:#x}", h.address),
        (kind, _) => format!("{} {}", h.address, kind_name(kind)),
    }
}

/// [`location_name`] with the address and slot shortened, for tables.
pub fn short_location_name(h: &pel_executor::profile::HotLocation) -> String {
    let a = h.address.to_string();
    let address = format!("{}..{}", &a[..6], &a[a.len() - 4..]);
    match (h.kind, h.slot) {
        (LocationKind::Storage, Some(slot)) if slot < alloy_primitives::U256::from(1u64 << 32) => {
            format!("{address} slot {slot}")
        }
        (LocationKind::Storage, Some(slot)) => {
            let s = format!("{slot:#x}");
            format!("{address} slot {}..", &s[..s.len().min(8)])
        }
        (kind, _) => format!("{address} {}", kind_name(kind)),
    }
}

fn kind_name(kind: LocationKind) -> &'static str {
    match kind {
        LocationKind::Balance => "balance",
        LocationKind::Nonce => "nonce",
        LocationKind::Code => "code",
        LocationKind::Account => "account",
        LocationKind::Storage => "storage",
    }
}

/// One profile as text: graph size, critical path, bounds, hot locations.
pub fn profile_text(p: &BlockProfile) -> String {
    let mut out = format!(
        "conflict profile: {} txs, {} dependencies, {} independent, {} aborts; critical path {} txs, {:.1}% of gas\n",
        p.txs,
        p.edges,
        p.independent,
        p.aborts,
        p.critical_path.txs.len(),
        100.0 * p.critical_path.gas as f64 / (p.gas.max(1)) as f64,
    );
    let mut table = Table::new(&["threads", "bound (gas)", "bound (time)"], 1);
    for b in &p.bounds {
        table.row(vec![
            b.threads.map_or("unlimited".into(), |t| t.to_string()),
            format!("{:.2}x", b.by_gas),
            format!("{:.2}x", b.by_time),
        ]);
    }
    out.push_str(&table.render());
    if !p.hot.is_empty() {
        let mut table = Table::new(&["hot location", "dependencies"], 1);
        for h in &p.hot {
            table.row(vec![location_name(h), h.dependencies.to_string()]);
        }
        out.push_str(&table.render());
    }
    out
}

/// The compact per-block profile table of `pel replay --profile`.
pub fn block_table<'a>(blocks: impl IntoIterator<Item = (u64, &'a BlockProfile)>) -> String {
    let mut table = Table::new(
        &[
            "block",
            "txs",
            "deps",
            "indep",
            "aborts",
            "cp gas%",
            "bound 2",
            "bound 8",
            "bound inf",
            "hottest",
        ],
        1,
    );
    for (number, p) in blocks {
        let bound = |t: Option<usize>| {
            p.bound(t)
                .map_or("-".into(), |b| format!("{:.2}x", b.by_gas))
        };
        table.row(vec![
            number.to_string(),
            p.txs.to_string(),
            p.edges.to_string(),
            p.independent.to_string(),
            p.aborts.to_string(),
            format!(
                "{:.1}",
                100.0 * p.critical_path.gas as f64 / (p.gas.max(1)) as f64
            ),
            bound(Some(2)),
            bound(Some(8)),
            bound(None),
            p.hot.first().map_or("-".into(), |h| {
                format!("{} ({})", short_location_name(h), h.dependencies)
            }),
        ]);
    }
    table.render()
}
