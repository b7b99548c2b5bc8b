//! [`CodeCache`]: analysed bytecode by code hash, shared by every block (and,
//! for the parallel executor, every thread). Analysis (jump-destination
//! tables) happens once per distinct code for the life of the cache, not once
//! per block. Entries are immutable: a code hash always names the same code.

use alloy_primitives::B256;
use dashmap::DashMap;
use revm::bytecode::Bytecode;

/// A concurrent map from code hash to analysed bytecode.
#[derive(Debug, Default)]
pub struct CodeCache {
    map: DashMap<B256, Bytecode, alloy_primitives::map::FbBuildHasher<32>>,
}

impl CodeCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// The analysed code under `hash`, if cached.
    pub fn get(&self, hash: &B256) -> Option<Bytecode> {
        self.map.get(hash).map(|c| c.clone())
    }

    /// Caches analysed code under its hash.
    pub fn insert(&self, hash: B256, code: Bytecode) {
        self.map.insert(hash, code);
    }

    /// Number of cached codes.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True when nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}
