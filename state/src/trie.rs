//! Incremental Merkle-Patricia root over stored branch nodes.
//!
//! A trie is kept as two sorted key spaces: its *leaves* (hashed key -> RLP value)
//! and its *branch nodes* (nibble path -> [`BranchNodeCompact`], the form
//! `alloy-trie`'s hash builder emits). Every branch node of the trie is stored,
//! the root included (`with_all_branch_nodes`), so:
//!
//! - a stored node exists at path `P` exactly when the trie has a branch at `P`;
//! - a child slot `P+n` of a stored branch holds either a branch stored at `P+n`,
//!   an extension to the one topmost stored node below `P+n`, or a single leaf
//!   (when no node is stored below `P+n`);
//! - a branch's `tree_mask` marks the children with a stored node at or below
//!   them: a child outside it is a single leaf or empty, so its leaves are read
//!   directly, and neighbouring such children with one scan;
//! - a branch's `hash_mask` marks the children whose hashes it carries: the
//!   branches hashed into it (also in `tree_mask`) and, outside `tree_mask`,
//!   single leaves whose node is long enough to be referenced by hash.
//!
//! Recomputing the root after a block touches only the paths its changed keys lie
//! on: an unchanged child with a carried hash is fed to the hash builder by that
//! hash alone; everything on a changed path is rebuilt from its children. A
//! branch's hash stays valid wherever the branch ends up. A leaf's node encodes
//! the rest of its key below its parent, so its hash is reused only while the
//! parent stays a branch at the same path: when no key under the parent is
//! deleted (the parent keeps every child, so it cannot collapse). Nodes visited
//! on changed paths are reported as removed and the hash builder's output as
//! updated; applying removals then updates brings the store to the new trie
//! exactly.
//!
//! A big update that deletes nothing may walk the subtries under the root's
//! children apart, on all cores ([`update_root_split`]): without deletions no
//! branch moves or collapses, so the branch stored at each child's path stays
//! there, and its own hash builder (fed the paths without their first
//! nibble) yields that child's hash and the nodes below it. The root is then
//! rebuilt from those hashes as from any unchanged child's.

use crate::StateError;
use alloy_primitives::{map::HashMap, B256};
use alloy_trie::{
    nodes::{LeafNodeRef, RlpNode},
    BranchNodeCompact, HashBuilder, Nibbles, TrieMask, EMPTY_ROOT_HASH,
};
use std::collections::BTreeMap;

/// Read access to one trie's stored branch nodes.
pub trait NodeSource {
    /// The branch node stored at exactly `path`.
    fn node(&self, path: &Nibbles) -> Result<Option<BranchNodeCompact>, StateError>;
    /// The first stored node whose path starts with `path` and is longer than it.
    fn first_below(
        &self,
        path: &Nibbles,
    ) -> Result<Option<(Nibbles, BranchNodeCompact)>, StateError>;
}

/// Read access to one trie's leaves in key order.
pub trait LeafSource {
    /// Calls `f` on each leaf with key `>= from`, in order, until it returns false.
    fn leaves_from(
        &self,
        from: &B256,
        f: &mut dyn FnMut(&B256, &[u8]) -> bool,
    ) -> Result<(), StateError>;
}

impl<T: NodeSource + ?Sized> NodeSource for &T {
    fn node(&self, path: &Nibbles) -> Result<Option<BranchNodeCompact>, StateError> {
        (**self).node(path)
    }
    fn first_below(
        &self,
        path: &Nibbles,
    ) -> Result<Option<(Nibbles, BranchNodeCompact)>, StateError> {
        (**self).first_below(path)
    }
}

impl<T: LeafSource + ?Sized> LeafSource for &T {
    fn leaves_from(
        &self,
        from: &B256,
        f: &mut dyn FnMut(&B256, &[u8]) -> bool,
    ) -> Result<(), StateError> {
        (**self).leaves_from(from, f)
    }
}

/// Leaf changes of one trie: new value, or `None` for a deleted key.
pub type LeafChanges = BTreeMap<B256, Option<Vec<u8>>>;

/// The outcome of a root computation: the root and the node changes to store.
#[derive(Debug, Default)]
pub struct TrieUpdate {
    /// The new root hash.
    pub root: B256,
    /// Paths of stored nodes to delete (before writing `updated`).
    pub removed: Vec<Nibbles>,
    /// Nodes to write, by path.
    pub updated: HashMap<Nibbles, BranchNodeCompact>,
}

/// Computes the root of a trie after `changes`, reusing the stored nodes of
/// unchanged subtries. With `wiped`, the stored leaves and nodes are ignored (the
/// trie is rebuilt from `changes` alone; the caller deletes the old ones).
/// `previous_root` is returned as is when nothing changed.
///
/// `replaced(key)` says that a changed key is already a stored leaf: a child
/// holding a single stored leaf and a single change to that same key then
/// needs no read of the stored leaves. It must never be true for a key that is
/// not stored; false is always safe (the leaves are read).
pub fn update_root(
    nodes: &dyn NodeSource,
    leaves: &dyn LeafSource,
    changes: &LeafChanges,
    replaced: &dyn Fn(&B256) -> bool,
    wiped: bool,
    previous_root: B256,
) -> Result<TrieUpdate, StateError> {
    if changes.is_empty() && !wiped {
        return Ok(TrieUpdate {
            root: previous_root,
            ..TrieUpdate::default()
        });
    }
    let keys = Keys::new(changes);
    let mut walk = Walk::new(nodes, leaves, changes, &keys, replaced, !wiped, 0);
    walk.slot(Nibbles::default())?;
    Ok(walk.finish().update)
}

/// Changed keys from which the account trie's root children are walked on
/// all cores ([`update_root_split`]); below it, one walk is cheaper.
pub const SPLIT_MIN_CHANGES: usize = 256;

/// A walk of the subtrie under one child of the root, with its own hash
/// builder: the child's hash, and the nodes to remove and write.
struct SplitChild {
    nibble: u8,
    hash: B256,
    removed: Vec<Nibbles>,
    updated: HashMap<Nibbles, BranchNodeCompact>,
}

/// [`update_root`] with the subtries under the stored root's children walked
/// on all cores (rayon's pool), each with sources of its own from `open`
/// (sources need not be shareable between threads), when the update has at
/// least `min_changes` keys ([`SPLIT_MIN_CHANGES`] suits the account trie)
/// and deletes nothing. Otherwise, and if a subtrie's node is short enough to
/// be inlined in the root (never with hashed 32-byte keys), it is
/// [`update_root`]. The result is the same.
pub fn update_root_split<N, L, F>(
    open: &F,
    changes: &LeafChanges,
    replaced: &(dyn Fn(&B256) -> bool + Sync),
    previous_root: B256,
    min_changes: usize,
) -> Result<TrieUpdate, StateError>
where
    N: NodeSource,
    L: LeafSource,
    F: Fn() -> Result<(N, L), StateError> + Sync,
{
    use rayon::prelude::*;
    let (nodes, leaves) = open()?;
    let whole =
        |nodes: &N, leaves: &L| update_root(nodes, leaves, changes, replaced, false, previous_root);
    // Without deletions every branch stays where it is, so the root's
    // children keep their paths and kinds; a deletion could collapse them.
    if changes.len() < min_changes || changes.values().any(Option::is_none) {
        return whole(&nodes, &leaves);
    }
    let Some(root) = nodes.node(&Nibbles::default())? else {
        return whole(&nodes, &leaves);
    };
    let keys = Keys::new(changes);
    // Children with a stored node below them and a change under them.
    let split: Vec<u8> = (0..16u8)
        .filter(|&n| {
            root.tree_mask.is_bit_set(n) && any_under(&keys.changed, &Nibbles::from_nibbles([n]))
        })
        .collect();
    if split.len() < 2 {
        return whole(&nodes, &leaves);
    }
    let children: Vec<Option<SplitChild>> = split
        .par_iter()
        .map(|&nibble| {
            let (nodes, leaves) = open()?;
            let path = Nibbles::from_nibbles([nibble]);
            let Some(node) = nodes.node(&path)? else {
                // An extension under the root: walked in place.
                return Ok(None);
            };
            let mut walk = Walk::new(&nodes, &leaves, changes, &keys, replaced, true, 1);
            walk.branch(path, &node)?;
            let done = walk.finish();
            let Some(hash) = done.top.as_ref().and_then(RlpNode::as_hash) else {
                return Ok(None);
            };
            let updated = done
                .update
                .updated
                .into_iter()
                .map(|(below, mut node)| {
                    if below.is_empty() {
                        // The subtrie's own builder saw this node as its root.
                        node.root_hash = None;
                    }
                    (path.join(&below), node)
                })
                .collect();
            Ok(Some(SplitChild {
                nibble,
                hash,
                removed: done.update.removed,
                updated,
            }))
        })
        .collect::<Result<_, StateError>>()?;
    let mut walk = Walk::new(&nodes, &leaves, changes, &keys, replaced, true, 0);
    for child in children.iter().flatten() {
        walk.split[child.nibble as usize] = Some(child.hash);
    }
    walk.branch(Nibbles::default(), &root)?;
    let mut update = walk.finish().update;
    for child in children.into_iter().flatten() {
        update.removed.extend(child.removed);
        update.updated.extend(child.updated);
    }
    Ok(update)
}

/// Root of a trie from all its leaves, in key order (no stored nodes used).
pub fn full_root(leaves: impl IntoIterator<Item = (B256, Vec<u8>)>) -> B256 {
    let mut hb = HashBuilder::default();
    let mut any = false;
    for (key, value) in leaves {
        hb.add_leaf(Nibbles::unpack(key), &value);
        any = true;
    }
    if any {
        hb.root()
    } else {
        EMPTY_ROOT_HASH
    }
}

/// The changed keys of one update, in the forms the walk looks them up by.
struct Keys {
    /// Every changed key, unpacked, sorted.
    changed: Vec<Nibbles>,
    /// The same keys, packed.
    changed_keys: Vec<B256>,
    /// The deleted keys, unpacked, sorted.
    deleted: Vec<Nibbles>,
}

impl Keys {
    fn new(changes: &LeafChanges) -> Self {
        Self {
            changed: changes.keys().map(Nibbles::unpack).collect(),
            changed_keys: changes.keys().copied().collect(),
            deleted: changes
                .iter()
                .filter(|(_, v)| v.is_none())
                .map(|(k, _)| Nibbles::unpack(k))
                .collect(),
        }
    }
}

struct Walk<'a> {
    nodes: &'a dyn NodeSource,
    leaves: &'a dyn LeafSource,
    changes: &'a LeafChanges,
    keys: &'a Keys,
    /// False when the stored trie is to be ignored (wiped).
    base: bool,
    replaced: &'a dyn Fn(&B256) -> bool,
    /// Leading nibbles left out of the paths given to the hash builder: 1 when
    /// the walk builds the subtrie under one child of the root on its own.
    strip: usize,
    /// Hashes of the root's children computed by walks of their own.
    split: [Option<B256>; 16],
    /// Scratch buffer for leaf encodings.
    rlp: Vec<u8>,
    hb: HashBuilder,
    removed: Vec<Nibbles>,
}

/// What a walk produced: the update, and the reference to its top node.
struct Walked {
    update: TrieUpdate,
    top: Option<RlpNode>,
}

impl<'a> Walk<'a> {
    fn new(
        nodes: &'a dyn NodeSource,
        leaves: &'a dyn LeafSource,
        changes: &'a LeafChanges,
        keys: &'a Keys,
        replaced: &'a dyn Fn(&B256) -> bool,
        base: bool,
        strip: usize,
    ) -> Self {
        Self {
            nodes,
            leaves,
            changes,
            keys,
            base,
            replaced,
            strip,
            split: [None; 16],
            rlp: Vec::new(),
            hb: HashBuilder::default()
                .with_updates(true)
                .with_all_branch_nodes(true),
            removed: Vec::new(),
        }
    }

    /// The root (of the subtrie, with `strip`) and the node changes.
    fn finish(mut self) -> Walked {
        let root = self.hb.root();
        let top = self.hb.stack.last().cloned();
        let (_, updated) = self.hb.split();
        Walked {
            update: TrieUpdate {
                root,
                removed: self.removed,
                updated,
            },
            top,
        }
    }

    /// `path` as the hash builder sees it.
    fn rel(&self, path: Nibbles) -> Nibbles {
        if self.strip == 0 {
            path
        } else {
            path.slice(self.strip..)
        }
    }

    /// True when some changed key lies under `prefix`.
    fn is_changed(&self, prefix: &Nibbles) -> bool {
        any_under(&self.keys.changed, prefix)
    }

    /// True when the child slot `child`, holding at most one stored leaf,
    /// needs no read of it: the only change under it replaces that leaf.
    fn replaces_its_leaf(&self, child: &Nibbles) -> bool {
        let changed = &self.keys.changed;
        let i = changed.partition_point(|k| k < child);
        let under = |j: usize| changed.get(j).is_some_and(|k| k.starts_with(child));
        under(i) && !under(i + 1) && (self.replaced)(&self.keys.changed_keys[i])
    }

    /// True when some changed key under `prefix` is `>= from` and `< stop`.
    fn changed_between(&self, prefix: &Nibbles, from: &Nibbles, stop: Option<&Nibbles>) -> bool {
        any_between(&self.keys.changed, prefix, from, stop)
    }

    /// Feeds every leaf under the child slot `path`.
    fn slot(&mut self, path: Nibbles) -> Result<(), StateError> {
        if self.base {
            if let Some(node) = self.nodes.node(&path)? {
                return self.branch(path, &node);
            }
            if let Some((below, node)) = self.nodes.first_below(&path)? {
                // The slot held an extension to `below`, so every stored leaf
                // under it is under `below`; new leaves may sit beside it.
                if self.changed_between(&path, &path, Some(&below)) {
                    self.leaves_in(&path, &path, Some(&below), None, false)?;
                }
                self.branch(below, &node)?;
                if let Some(after) = below.increment() {
                    if self.changed_between(&path, &after, None) {
                        self.leaves_in(&path, &after, None, None, false)?;
                    }
                }
                return Ok(());
            }
        }
        self.leaves_in(&path, &path, None, None, true)
    }

    /// Rebuilds the stored branch at `path` from its children.
    fn branch(&mut self, path: Nibbles, node: &BranchNodeCompact) -> Result<(), StateError> {
        self.removed.push(path);
        // Without deletions below, this branch keeps all its children and
        // stays a branch here, so its leaf children's hashes stay valid.
        let stays = !any_under(&self.keys.deleted, &path);
        // First nibble of a run of children holding no stored node and no
        // reusable hash, whose leaves (one per child, or a new subtrie where a
        // change lands) are read with a single scan.
        let mut run: Option<u8> = None;
        for nibble in 0..16u8 {
            let mut child = path;
            child.push(nibble);
            let tree = node.tree_mask.is_bit_set(nibble);
            let reusable =
                node.hash_mask.is_bit_set(nibble) && (tree || stays) && !self.is_changed(&child);
            if !tree && !reusable {
                run.get_or_insert(nibble);
                continue;
            }
            if let Some(first) = run.take() {
                self.leaf_run(&path, node.state_mask, first, Some(nibble), stays)?;
            }
            if reusable {
                self.hb
                    .add_branch(self.rel(child), node.hash_for_nibble(nibble), tree);
                continue;
            }
            if let Some(hash) = self.split[usize::from(nibble)].filter(|_| path.is_empty()) {
                // Walked apart: a stored branch below, so a tree child.
                self.hb.add_branch(child, hash, true);
                continue;
            }
            self.slot(child)?;
        }
        if let Some(first) = run {
            self.leaf_run(&path, node.state_mask, first, None, stays)?;
        }
        Ok(())
    }

    /// Feeds the leaves under the children `first..end` (to the last child
    /// when `end` is `None`) of the branch at `path`; with `stays` (the branch
    /// keeps its place), a leaf alone in its child is fed by its hash, so that
    /// the branch carries it.
    fn leaf_run(
        &mut self,
        path: &Nibbles,
        state_mask: TrieMask,
        first: u8,
        end: Option<u8>,
        stays: bool,
    ) -> Result<(), StateError> {
        let mut from = *path;
        from.push(first);
        let stop = end.map(|end| {
            let mut stop = *path;
            stop.push(end);
            stop
        });
        // Stored leaves need reading unless each present child's only change
        // replaces its single leaf.
        let (mut any, mut read) = (false, false);
        for nibble in first..end.unwrap_or(16) {
            let mut child = *path;
            child.push(nibble);
            let present = state_mask.is_bit_set(nibble);
            any |= present || self.is_changed(&child);
            read |= present && !self.replaces_its_leaf(&child);
        }
        if !any {
            return Ok(());
        }
        self.leaves_in(
            path,
            &from,
            stop.as_ref(),
            stays.then_some(path.len()),
            read,
        )
    }

    /// Feeds the leaves under `prefix` with key `>= from` and `< stop`, merging
    /// the stored leaves (unless `read` is false: the range holds none that the
    /// changes do not replace) with the changes. With `branch_depth`, the
    /// leaves are children of a branch at that depth which stays a branch: a
    /// leaf alone in its child is fed by its hash when its node is referenced
    /// by hash.
    fn leaves_in(
        &mut self,
        prefix: &Nibbles,
        from: &Nibbles,
        stop: Option<&Nibbles>,
        branch_depth: Option<usize>,
        read: bool,
    ) -> Result<(), StateError> {
        let lower = lower_bound(from);
        let within = |key: &Nibbles| key.starts_with(prefix) && stop.is_none_or(|s| key < s);
        let mut stored: Vec<(B256, Vec<u8>)> = Vec::new();
        if self.base && read {
            let changes = self.changes;
            self.leaves.leaves_from(&lower, &mut |key, value| {
                if !within(&Nibbles::unpack(key)) {
                    return false;
                }
                if !changes.contains_key(key) {
                    stored.push((*key, value.to_vec()));
                }
                true
            })?;
        }
        let mut changed = self
            .changes
            .range(lower..)
            .take_while(|(k, _)| within(&Nibbles::unpack(k)))
            .filter_map(|(k, v)| v.as_ref().map(|v| (*k, v)))
            .peekable();
        let mut stored = stored.iter().peekable();
        let mut merged: Vec<(B256, &[u8])> = Vec::new();
        loop {
            let take_stored = match (stored.peek(), changed.peek()) {
                (None, None) => break,
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (Some((a, _)), Some((b, _))) => a < b,
            };
            if take_stored {
                if let Some((key, value)) = stored.next() {
                    merged.push((*key, value));
                }
            } else if let Some((key, value)) = changed.next() {
                merged.push((key, value));
            }
        }
        for (i, (key, value)) in merged.iter().enumerate() {
            let key = Nibbles::unpack(key);
            if let Some(depth) = branch_depth {
                let nibble = |k: &B256| nibble_at(k, depth);
                let own = key.get_unchecked(depth);
                let alone = (i == 0 || nibble(&merged[i - 1].0) != own)
                    && merged
                        .get(i + 1)
                        .is_none_or(|(next, _)| nibble(next) != own);
                if alone {
                    self.rlp.clear();
                    let rest = key.slice(depth + 1..);
                    if let Some(hash) = LeafNodeRef::new(&rest, value).rlp(&mut self.rlp).as_hash()
                    {
                        self.hb
                            .add_branch(self.rel(key.slice(..depth + 1)), hash, false);
                        continue;
                    }
                }
            }
            self.hb.add_leaf(self.rel(key), value);
        }
        Ok(())
    }
}

/// True when some key of the sorted `keys` lies under `prefix`.
fn any_under(keys: &[Nibbles], prefix: &Nibbles) -> bool {
    any_between(keys, prefix, prefix, None)
}

/// True when some key of the sorted `keys` under `prefix` is `>= from` and
/// `< stop`.
fn any_between(keys: &[Nibbles], prefix: &Nibbles, from: &Nibbles, stop: Option<&Nibbles>) -> bool {
    let i = keys.partition_point(|k| k < from);
    keys.get(i)
        .is_some_and(|k| k.starts_with(prefix) && stop.is_none_or(|s| k < s))
}

/// The nibble of `key` at position `depth` (below 64).
fn nibble_at(key: &B256, depth: usize) -> u8 {
    let byte = key[depth / 2];
    if depth.is_multiple_of(2) {
        byte >> 4
    } else {
        byte & 0x0f
    }
}

/// The smallest 32-byte key whose nibbles start at or after `path`.
fn lower_bound(path: &Nibbles) -> B256 {
    let mut out = [0u8; 32];
    for (i, nibble) in path.iter().enumerate() {
        out[i / 2] |= if i % 2 == 0 { nibble << 4 } else { nibble };
    }
    B256::from(out)
}

/// Encodes a stored branch node: three u16 masks (state, tree, hash), a flag and
/// the optional root hash, then the child hashes.
pub fn encode_node(node: &BranchNodeCompact) -> Vec<u8> {
    let mut out = Vec::with_capacity(7 + 32 * (node.hashes.len() + 1));
    out.extend_from_slice(&node.state_mask.get().to_be_bytes());
    out.extend_from_slice(&node.tree_mask.get().to_be_bytes());
    out.extend_from_slice(&node.hash_mask.get().to_be_bytes());
    match node.root_hash {
        Some(root) => {
            out.push(1);
            out.extend_from_slice(root.as_slice());
        }
        None => out.push(0),
    }
    for hash in node.hashes.iter() {
        out.extend_from_slice(hash.as_slice());
    }
    out
}

/// Decodes [`encode_node`]'s format, rejecting anything inconsistent.
pub fn decode_node(bytes: &[u8]) -> Result<BranchNodeCompact, StateError> {
    let bad = |why: &str| StateError::Backend(format!("corrupt trie node: {why}"));
    if bytes.len() < 7 {
        return Err(bad("too short"));
    }
    let mask = |i: usize| TrieMask::new(u16::from_be_bytes([bytes[i], bytes[i + 1]]));
    let (state_mask, tree_mask, hash_mask) = (mask(0), mask(2), mask(4));
    let (root_hash, rest) = match bytes[6] {
        0 => (None, &bytes[7..]),
        1 if bytes.len() >= 39 => (Some(B256::from_slice(&bytes[7..39])), &bytes[39..]),
        _ => return Err(bad("bad root flag")),
    };
    if !tree_mask.is_subset_of(state_mask) || !hash_mask.is_subset_of(state_mask) {
        return Err(bad("masks disagree"));
    }
    if rest.len() != 32 * hash_mask.count_ones() as usize {
        return Err(bad("wrong number of hashes"));
    }
    let hashes = rest.chunks_exact(32).map(B256::from_slice).collect();
    Ok(BranchNodeCompact::new(
        state_mask, tree_mask, hash_mask, hashes, root_hash,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_primitives::keccak256;
    use proptest::prelude::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// An in-memory trie store: leaves and nodes in ordered maps.
    #[derive(Default)]
    struct MemTrie {
        leaves: BTreeMap<B256, Vec<u8>>,
        nodes: BTreeMap<Nibbles, BranchNodeCompact>,
        root: B256,
        /// Stored leaves read by walks so far.
        reads: AtomicUsize,
        /// Tell the walk nothing about which changed keys are stored.
        conservative: bool,
        /// Updates whose root children were walked apart.
        split_runs: usize,
    }

    impl NodeSource for MemTrie {
        fn node(&self, path: &Nibbles) -> Result<Option<BranchNodeCompact>, StateError> {
            Ok(self.nodes.get(path).cloned())
        }
        fn first_below(
            &self,
            path: &Nibbles,
        ) -> Result<Option<(Nibbles, BranchNodeCompact)>, StateError> {
            use std::ops::Bound;
            Ok(self
                .nodes
                .range((Bound::Excluded(*path), Bound::Unbounded))
                .next()
                .filter(|(k, _)| k.starts_with(path))
                .map(|(k, v)| (*k, v.clone())))
        }
    }

    impl LeafSource for MemTrie {
        fn leaves_from(
            &self,
            from: &B256,
            f: &mut dyn FnMut(&B256, &[u8]) -> bool,
        ) -> Result<(), StateError> {
            for (k, v) in self.leaves.range(*from..) {
                self.reads.fetch_add(1, Ordering::Relaxed);
                if !f(k, v) {
                    break;
                }
            }
            Ok(())
        }
    }

    impl MemTrie {
        fn apply(&mut self, changes: &LeafChanges) {
            let stored = |k: &B256| !self.conservative && self.leaves.contains_key(k);
            let update = update_root(self, self, changes, &stored, false, self.root).unwrap();
            // The root's children walked apart give the same update (whatever
            // the number of changes, so that small tries exercise it too).
            let reads = self.reads.load(Ordering::Relaxed);
            let this = &*self;
            let opened = AtomicUsize::new(0);
            let open = || {
                opened.fetch_add(1, Ordering::Relaxed);
                Ok((this, this))
            };
            let split = update_root_split(&open, changes, &stored, self.root, 0).unwrap();
            self.reads.store(reads, Ordering::Relaxed);
            if opened.load(Ordering::Relaxed) > 1 {
                self.split_runs += 1;
            }
            assert_eq!(split.root, update.root, "split walk root");
            assert_eq!(split.updated, update.updated, "split walk nodes");
            let sorted = |mut v: Vec<Nibbles>| {
                v.sort_unstable();
                v
            };
            assert_eq!(
                sorted(split.removed),
                sorted(update.removed.clone()),
                "split walk removals"
            );
            for path in &update.removed {
                self.nodes.remove(path);
            }
            self.nodes.extend(update.updated);
            for (k, v) in changes {
                match v {
                    Some(v) => self.leaves.insert(*k, v.clone()),
                    None => self.leaves.remove(k),
                };
            }
            self.root = update.root;
            assert_eq!(
                self.root,
                full_root(self.leaves.iter().map(|(k, v)| (*k, v.clone()))),
                "incremental root differs from the full recomputation"
            );
            // The store must hold exactly the branch nodes of a fresh build.
            let mut fresh = MemTrie::default();
            let all: LeafChanges = self
                .leaves
                .iter()
                .map(|(k, v)| (*k, Some(v.clone())))
                .collect();
            let rebuilt =
                update_root(&fresh, &fresh, &all, &|_| false, false, EMPTY_ROOT_HASH).unwrap();
            fresh.nodes.extend(rebuilt.updated);
            assert_eq!(
                self.nodes.keys().collect::<Vec<_>>(),
                fresh.nodes.keys().collect::<Vec<_>>()
            );
            // A child is in its branch's tree mask exactly when a stored node
            // lies at or below it (the walk relies on this to read leaves
            // directly).
            for (path, node) in &self.nodes {
                for nibble in 0..16u8 {
                    let mut child = *path;
                    child.push(nibble);
                    let below = self.nodes.keys().any(|k| k.starts_with(&child));
                    assert_eq!(
                        node.tree_mask.is_bit_set(nibble),
                        below,
                        "tree mask of {path:?} at {nibble}"
                    );
                }
            }
        }
    }

    fn key(i: u16) -> B256 {
        keccak256(i.to_be_bytes())
    }

    #[test]
    fn node_encoding_round_trips_and_rejects_garbage() {
        let node = BranchNodeCompact::new(
            TrieMask::new(0b1011),
            TrieMask::new(0b0001),
            TrieMask::new(0b1001),
            vec![B256::repeat_byte(1), B256::repeat_byte(2)],
            Some(B256::repeat_byte(3)),
        );
        assert_eq!(decode_node(&encode_node(&node)).unwrap(), node);
        assert!(decode_node(&[0, 1]).is_err());
        let mut bad = encode_node(&node);
        bad.pop();
        assert!(decode_node(&bad).is_err());
    }

    #[test]
    fn grows_and_shrinks_to_empty() {
        let mut trie = MemTrie {
            root: EMPTY_ROOT_HASH,
            ..MemTrie::default()
        };
        for round in 0..5u16 {
            let changes: LeafChanges = (0..200u16)
                .map(|i| {
                    let len = 1 + (i % 3) as usize * 20;
                    (key(round * 200 + i), Some(vec![0x80 + (i % 50) as u8; len]))
                })
                .collect();
            trie.apply(&changes);
        }
        for round in 0..5u16 {
            let changes: LeafChanges = (0..200u16).map(|i| (key(round * 200 + i), None)).collect();
            trie.apply(&changes);
        }
        assert_eq!(trie.root, EMPTY_ROOT_HASH);
        assert!(trie.nodes.is_empty());
        // The insertions (no deletions) were walked child by child.
        assert!(trie.split_runs >= 3, "split {} times", trie.split_runs);
    }

    #[test]
    fn unchanged_leaves_are_reused_by_hash_until_a_deletion() {
        let mut trie = MemTrie {
            root: EMPTY_ROOT_HASH,
            ..MemTrie::default()
        };
        let all =
            |v: u8| -> LeafChanges { (0..2000u16).map(|i| (key(i), Some(vec![v; 40]))).collect() };
        trie.apply(&all(1));
        // Rewriting every leaf stores their hashes in their branches.
        trie.apply(&all(2));
        // Updating a stored key reads no stored leaf at all (the checks in
        // `apply` read through the leaves map directly).
        let one: LeafChanges = [(key(7), Some(vec![3; 40]))].into();
        trie.reads.store(0, Ordering::Relaxed);
        trie.apply(&one);
        assert_eq!(trie.reads.load(Ordering::Relaxed), 0);
        // Without knowing that the key is stored, only its neighbourhood is.
        trie.conservative = true;
        trie.apply(&[(key(7), Some(vec![4; 40]))].into());
        assert!(
            trie.reads.load(Ordering::Relaxed) <= 2,
            "read {} leaves",
            trie.reads.load(Ordering::Relaxed)
        );
        trie.conservative = false;
        // A new key reads at most the leaf it lands beside.
        trie.reads.store(0, Ordering::Relaxed);
        trie.apply(&[(key(5000), Some(vec![5; 40]))].into());
        assert!(
            trie.reads.load(Ordering::Relaxed) <= 2,
            "read {} leaves",
            trie.reads.load(Ordering::Relaxed)
        );
        // A deletion below a branch makes its leaf hashes unusable: the
        // siblings are read again, and the result is still exact.
        let gone: LeafChanges = [(key(8), None)].into();
        trie.reads.store(0, Ordering::Relaxed);
        trie.apply(&gone);
        assert!(trie.reads.load(Ordering::Relaxed) > 2);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]
        /// Random batches of inserts, updates and deletes over a small key space
        /// (so branches split, collapse and vanish): the incremental root always
        /// equals the full recomputation and the stored nodes equal a fresh build.
        #[test]
        fn incremental_equals_full(batches in prop::collection::vec(
            prop::collection::vec((0u16..300, prop::option::weighted(0.7, 0u8..40)), 0..60),
            1..8,
        ), conservative in any::<bool>()) {
            let mut trie = MemTrie { root: EMPTY_ROOT_HASH, conservative, ..MemTrie::default() };
            for batch in batches {
                // Short values give leaves inlined in their branch; long ones
                // give leaves referenced by hash, which branches carry.
                let changes: LeafChanges = batch
                    .into_iter()
                    .map(|(k, v)| {
                        let len = if k % 2 == 0 { 4 } else { 40 };
                        (key(k), v.map(|v| vec![0x80 + v; len]))
                    })
                    .collect();
                trie.apply(&changes);
            }
        }
    }
}
