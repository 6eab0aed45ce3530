//! The key index: `(TableId, key bytes)` → version chain.
//!
//! Normally a sharded `DashMap` (foldhash hasher): the map only *finds* a chain, and its shard
//! lock is held only for the lookup (a read lock; a write lock the first time a key is written or
//! when GC drops a dead chain), never across another call into the map.
//!
//! Beside the map, an ordered *key directory* (a lock-free skip list, `crossbeam-skiplist`, reclaimed
//! through the same `crossbeam-epoch` collector) lists every key in `(table, bytes)` order, so a
//! range or prefix scan walks keys in order instead of collecting and sorting the table. A key
//! enters the directory when its chain is created and leaves it when GC drops its sealed chain or
//! its table — both *under the map shard's write lock*, so the directory and the map agree on
//! which keys exist (a writer re-creating a key cannot interleave with GC removing it). Range
//! scans then look each key's chain up in the map (one hash lookup per key; ADR 0006).
//!
//! Under `cfg(any(loom, shuttle))` the `DashMap` is replaced by a `loom::sync::RwLock<Vec<(key, Arc<Chain>)>>`:
//! loom cannot run `DashMap` (its shard lock parks the one OS thread loom schedules on, and the
//! model hangs). The chains, and every atomic of the protocol, are the same code either way.

use crate::chain::Chain;
use crate::key::{KeyView, StoredKey};
use crate::range::KeyRange;
use crate::sync::epoch::Guard;
use std::ops::{ControlFlow, Deref};

#[cfg(not(any(loom, shuttle)))]
use {crate::key::TableId, std::ops::Bound};

/// The bounds of `range` as borrowed keys: `(table, lo)` to `(table, hi)`, with an unbounded
/// end closed at the table's edge.
/// One end of a range over borrowed keys.
#[cfg(not(any(loom, shuttle)))]
type KeyBound<'a> = Bound<(TableId, &'a [u8])>;

#[cfg(not(any(loom, shuttle)))]
fn view_bounds(range: &KeyRange) -> (KeyBound<'_>, KeyBound<'_>) {
    let t = range.table;
    let lo = match &range.lo {
        Bound::Included(k) => Bound::Included((t, k.as_slice())),
        Bound::Excluded(k) => Bound::Excluded((t, k.as_slice())),
        Bound::Unbounded => Bound::Included((t, &[][..])),
    };
    let hi = match &range.hi {
        Bound::Included(k) => Bound::Included((t, k.as_slice())),
        Bound::Excluded(k) => Bound::Excluded((t, k.as_slice())),
        Bound::Unbounded => match t.0.checked_add(1) {
            Some(next) => Bound::Excluded((TableId(next), &[][..])),
            None => Bound::Unbounded,
        },
    };
    (lo, hi)
}

#[cfg(not(any(loom, shuttle)))]
fn as_view<'a>(b: &'a KeyBound<'a>) -> Bound<&'a (dyn KeyView + 'a)> {
    match b {
        Bound::Included(k) => Bound::Included(k as &dyn KeyView),
        Bound::Excluded(k) => Bound::Excluded(k as &dyn KeyView),
        Bound::Unbounded => Bound::Unbounded,
    }
}

#[cfg(not(any(loom, shuttle)))]
mod imp {
    use super::*;
    use dashmap::DashMap;

    /// A chain found in the index (holds the shard's read lock: drop it before the next call).
    pub(crate) type ChainRef<'a> = dashmap::mapref::one::Ref<'a, StoredKey, Chain>;

    pub(crate) struct Index {
        map: DashMap<StoredKey, Chain, foldhash::fast::RandomState>,
        /// Every key of `map`, ordered (module doc).
        dir: crossbeam_skiplist::SkipSet<StoredKey>,
    }

    impl Index {
        pub(crate) fn new() -> Self {
            Index {
                map: DashMap::with_hasher(foldhash::fast::RandomState::default()),
                dir: crossbeam_skiplist::SkipSet::new(),
            }
        }

        pub(crate) fn get(&self, key: &dyn KeyView) -> Option<ChainRef<'_>> {
            self.map.get(key)
        }

        pub(crate) fn get_or_create(&self, key: &StoredKey) -> ChainRef<'_> {
            match self.map.get(key.as_view()) {
                Some(chain) => chain,
                None => self
                    .map
                    .entry(key.clone())
                    .or_insert_with(|| {
                        // Under the shard's write lock (module doc).
                        self.dir.insert(key.clone());
                        Chain::new()
                    })
                    .downgrade(),
            }
        }

        /// Removes `key` if its chain is sealed. Returns whether it did.
        pub(crate) fn remove_if_sealed(&self, key: &StoredKey, guard: &Guard) -> bool {
            self.map
                .remove_if(key.as_view(), |k, c| {
                    let sealed = c.is_sealed(guard);
                    if sealed {
                        // Under the shard's write lock (module doc).
                        self.dir.remove(k.as_view());
                    }
                    sealed
                })
                .is_some()
        }

        /// Calls `f` on the keys of `range` in order (`reverse`: descending) that have a chain,
        /// until it breaks. `f` must not call back into the index.
        pub(crate) fn range(
            &self,
            range: &KeyRange,
            reverse: bool,
            mut f: impl FnMut(&StoredKey, &Chain) -> ControlFlow<()>,
        ) {
            if range.is_empty() {
                return;
            }
            let (lo, hi) = view_bounds(range);
            let keys = self.dir.range::<dyn KeyView, _>((as_view(&lo), as_view(&hi)));
            let mut visit = |key: &StoredKey| match self.map.get(key.as_view()) {
                // The shard's read lock is released at the end of this arm.
                Some(chain) => f(key, &chain),
                None => ControlFlow::Continue(()), // GC removed it after the directory step
            };
            if reverse {
                for entry in keys.rev() {
                    if visit(entry.value()).is_break() {
                        return;
                    }
                }
            } else {
                for entry in keys {
                    if visit(entry.value()).is_break() {
                        return;
                    }
                }
            }
        }

        /// Calls `f` on every entry; `f` must not call back into the index.
        pub(crate) fn for_each(&self, mut f: impl FnMut(&StoredKey, &Chain)) {
            for entry in self.map.iter() {
                f(entry.key(), entry.value());
            }
        }

        pub(crate) fn retain(&self, mut keep: impl FnMut(&StoredKey) -> bool) {
            self.map.retain(|k, _| {
                let kept = keep(k);
                if !kept {
                    // Under the shard's write lock (module doc).
                    self.dir.remove(k.as_view());
                }
                kept
            });
        }

        pub(crate) fn len(&self) -> usize {
            self.map.len()
        }

        /// Frees every chain now, without the epoch.
        ///
        /// # Safety
        /// As `Chain::free_now`: no thread holds or will load a pointer into any chain (the
        /// store is being dropped, and everything that could still use it holds it alive).
        pub(crate) unsafe fn free_all(&mut self) {
            for mut chain in self.map.iter_mut() {
                // SAFETY: this function's contract is `free_now`'s, for every chain.
                unsafe { chain.free_now() };
            }
        }
    }
}

#[cfg(any(loom, shuttle))]
mod imp {
    use super::*;
    use crate::sync::{Arc, ModelRwLock as RwLock};

    pub(crate) type ChainRef<'a> = LoomRef<'a>;

    /// A chain found in the index (an `Arc` clone; the lock is already released).
    pub(crate) struct LoomRef<'a> {
        chain: Arc<Chain>,
        _index: std::marker::PhantomData<&'a Index>,
    }

    impl Deref for LoomRef<'_> {
        type Target = Chain;
        fn deref(&self) -> &Chain {
            &self.chain
        }
    }

    pub(crate) struct Index {
        entries: RwLock<Vec<(StoredKey, Arc<Chain>)>>,
    }

    fn found<'a>(chain: &Arc<Chain>) -> LoomRef<'a> {
        LoomRef { chain: chain.clone(), _index: std::marker::PhantomData }
    }

    impl Index {
        pub(crate) fn new() -> Self {
            Index { entries: RwLock::new(Vec::new()) }
        }

        pub(crate) fn get(&self, key: &dyn KeyView) -> Option<ChainRef<'_>> {
            let entries = self.entries.read().expect("loom lock");
            entries.iter().find(|(k, _)| k.as_view() == key).map(|(_, c)| found(c))
        }

        pub(crate) fn get_or_create(&self, key: &StoredKey) -> ChainRef<'_> {
            if let Some(c) = self.get(key.as_view()) {
                return c;
            }
            let mut entries = self.entries.write().expect("loom lock");
            if let Some((_, c)) = entries.iter().find(|(k, _)| k == key) {
                return found(c);
            }
            let chain = Arc::new(Chain::new());
            entries.push((key.clone(), chain.clone()));
            found(&chain)
        }

        pub(crate) fn remove_if_sealed(&self, key: &StoredKey, guard: &Guard) -> bool {
            let mut entries = self.entries.write().expect("loom lock");
            let before = entries.len();
            entries.retain(|(k, c)| !(k == key && c.is_sealed(guard)));
            entries.len() != before
        }

        /// The same contract as the `DashMap` index's; here the "directory" is the entry list,
        /// filtered and sorted (the model only needs the order and the locking, not the speed).
        pub(crate) fn range(
            &self,
            range: &KeyRange,
            reverse: bool,
            mut f: impl FnMut(&StoredKey, &Chain) -> ControlFlow<()>,
        ) {
            let mut hits: Vec<(StoredKey, Arc<Chain>)> = self
                .entries
                .read()
                .expect("loom lock")
                .iter()
                .filter(|(k, _)| k.table() == range.table && range.contains(k.bytes()))
                .cloned()
                .collect();
            hits.sort_by(|a, b| a.0.cmp(&b.0));
            if reverse {
                hits.reverse();
            }
            for (k, c) in &hits {
                if f(k, c).is_break() {
                    return;
                }
            }
        }

        pub(crate) fn for_each(&self, mut f: impl FnMut(&StoredKey, &Chain)) {
            let snapshot: Vec<(StoredKey, Arc<Chain>)> =
                self.entries.read().expect("loom lock").iter().cloned().collect();
            for (k, c) in &snapshot {
                f(k, c);
            }
        }

        pub(crate) fn retain(&self, mut keep: impl FnMut(&StoredKey) -> bool) {
            self.entries.write().expect("loom lock").retain(|(k, _)| keep(k));
        }

        pub(crate) fn len(&self) -> usize {
            self.entries.read().expect("loom lock").len()
        }

        /// Under loom the trivial reclaimer leaks; nothing to do.
        ///
        /// # Safety
        /// None needed here; `unsafe` only to match the real index's `free_all`.
        pub(crate) unsafe fn free_all(&mut self) {}
    }
}

pub(crate) use imp::{ChainRef, Index};

// Compile-time check that both index variants hand out something that derefs to a `Chain` (the
// callers in `lockfree.rs` rely on it); never called.
#[allow(dead_code)]
fn _assert_deref(r: ChainRef<'_>) -> impl Deref<Target = Chain> + '_ {
    r
}
