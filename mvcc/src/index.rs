//! The key index: `(TableId, key bytes)` → version chain.
//!
//! Normally a sharded `DashMap` (foldhash hasher): the map only *finds* a chain, and its shard
//! lock is held only for the lookup (a read lock; a write lock the first time a key is written or
//! when GC drops a dead chain), never across another call into the map and never while a chain
//! is walked or waited on. Each chain lives in its own heap allocation that the map owns; a
//! caller copies the pointer out under the shard lock while pinned to the epoch, drops the lock,
//! and then reads, installs or waits. A chain removed from the map (sealed by GC, or of a dropped
//! table) is freed through the epoch collector, so a pinned caller that found it can finish with
//! it. (Before, `get` handed back the `DashMap` guard itself, and a reader waiting on a
//! publishing writer kept the shard read-locked, stalling every new key of that shard.)
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
    use std::ptr::NonNull;

    /// A chain found in the index: valid for as long as the guard it was found under is pinned
    /// (the index holds no lock once it returns).
    pub(crate) type ChainRef<'g> = &'g Chain;

    /// A chain on the heap, owned by the index. It is freed only through the epoch collector
    /// (`retire`), after its entry left the map and the directory, so a thread that found it
    /// while pinned can keep using it after the shard lock is released.
    struct ChainBox(NonNull<Chain>);

    // SAFETY: `Chain` is `Send + Sync` (atomics and epoch pointers); `ChainBox` is a unique
    // owner of one, handed between threads only through the map.
    unsafe impl Send for ChainBox {}
    // SAFETY: as above; shared access only hands out `&Chain`.
    unsafe impl Sync for ChainBox {}

    impl ChainBox {
        fn new() -> Self {
            ChainBox(NonNull::from(Box::leak(Box::new(Chain::new()))))
        }

        /// The chain, for as long as `guard` stays pinned.
        ///
        /// # Safety
        /// `self` must have been read from the map while `guard` was pinned: the chain is then
        /// retired (if ever) after this thread pinned, and freed only after it unpins.
        unsafe fn chain<'g>(&self, _guard: &'g Guard) -> &'g Chain {
            // SAFETY: the caller's contract: allocated by `new`, freed only by `retire`, whose
            // deferred free waits for every guard pinned before it ran.
            unsafe { self.0.as_ref() }
        }

        /// Frees the chain (and its versions) once every thread pinned now has unpinned. The
        /// entry must already be out of the map and the directory, so no thread can find it
        /// afterwards.
        fn retire(self, guard: &Guard) {
            // SAFETY: `self` is the unique owner (`Send`, so any thread may run the closure) and
            // the entry is unreachable for threads that pin from now on; the closure runs after
            // every thread pinned before this call has unpinned, so no `&Chain` or version
            // pointer into the chain is left.
            unsafe {
                guard.defer_unchecked(move || {
                    let mut chain = Box::from_raw(self.0.as_ptr());
                    chain.free_now();
                })
            };
        }
    }

    pub(crate) struct Index {
        map: DashMap<StoredKey, ChainBox, foldhash::fast::RandomState>,
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

        /// The chain of `key`, if it has one. The shard's read lock is held for the lookup only.
        pub(crate) fn get<'g>(&self, key: &dyn KeyView, guard: &'g Guard) -> Option<ChainRef<'g>> {
            let entry = self.map.get(key)?;
            // SAFETY: read from the map while `guard` is pinned.
            Some(unsafe { entry.chain(guard) })
        }

        pub(crate) fn get_or_create<'g>(&self, key: &StoredKey, guard: &'g Guard) -> ChainRef<'g> {
            if let Some(chain) = self.get(key.as_view(), guard) {
                return chain;
            }
            let entry = self.map.entry(key.clone()).or_insert_with(|| {
                // Under the shard's write lock (module doc).
                self.dir.insert(key.clone());
                ChainBox::new()
            });
            // SAFETY: read from the map while `guard` is pinned.
            unsafe { entry.chain(guard) }
        }

        /// Removes `key` if its chain is sealed. Returns whether it did.
        pub(crate) fn remove_if_sealed(&self, key: &StoredKey, guard: &Guard) -> bool {
            self.remove_where(key, guard, |chain| chain.is_sealed(guard))
        }

        /// Removes `key` whatever its chain holds (its table was dropped). Returns whether it did.
        pub(crate) fn remove(&self, key: &StoredKey, guard: &Guard) -> bool {
            self.remove_where(key, guard, |_| true)
        }

        fn remove_where(
            &self,
            key: &StoredKey,
            guard: &Guard,
            doomed: impl FnOnce(&Chain) -> bool,
        ) -> bool {
            let removed = self.map.remove_if(key.as_view(), |k, boxed| {
                // SAFETY: read from the map (under its write lock) while `guard` is pinned.
                let yes = doomed(unsafe { boxed.chain(guard) });
                if yes {
                    // Under the shard's write lock (module doc).
                    self.dir.remove(k.as_view());
                }
                yes
            });
            match removed {
                Some((_, boxed)) => {
                    boxed.retire(guard);
                    true
                }
                None => false,
            }
        }

        /// Calls `f` on the keys of `range` in order (`reverse`: descending) that have a chain,
        /// until it breaks. No lock is held while `f` runs (each key's chain is looked up under
        /// its shard's read lock, which is released before the call).
        pub(crate) fn range(
            &self,
            range: &KeyRange,
            reverse: bool,
            guard: &Guard,
            mut f: impl FnMut(&StoredKey, &Chain) -> ControlFlow<()>,
        ) {
            if range.is_empty() {
                return;
            }
            let (lo, hi) = view_bounds(range);
            let keys = self.dir.range::<dyn KeyView, _>((as_view(&lo), as_view(&hi)));
            let mut visit = |key: &StoredKey| match self.get(key.as_view(), guard) {
                Some(chain) => f(key, chain),
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

        /// Calls `f` on every key in order with its chain and a guard it is valid under,
        /// re-pinning `guard` every `per_pin` keys so a long walk never holds back reclamation.
        /// Walks the directory, so no shard lock is held while `f` runs (a GC pass over a
        /// shard used to hold its read lock for the whole shard, stalling every new key there).
        pub(crate) fn for_each(
            &self,
            guard: &mut Guard,
            per_pin: usize,
            mut f: impl FnMut(&StoredKey, &Chain, &Guard),
        ) {
            for (i, entry) in self.dir.iter().enumerate() {
                if i > 0 && i.is_multiple_of(per_pin.max(1)) {
                    guard.repin();
                }
                let key = entry.value();
                if let Some(chain) = self.get(key.as_view(), guard) {
                    f(key, chain, guard);
                }
            }
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
            for (_, boxed) in std::mem::take(&mut self.map) {
                // SAFETY: this function's contract; the map owned the only pointer to the box.
                let mut chain = unsafe { Box::from_raw(boxed.0.as_ptr()) };
                // SAFETY: this function's contract is `free_now`'s, for every chain.
                unsafe { chain.free_now() };
            }
            self.dir = crossbeam_skiplist::SkipSet::new();
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
        _guard: std::marker::PhantomData<&'a Guard>,
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
        LoomRef { chain: chain.clone(), _guard: std::marker::PhantomData }
    }

    impl Index {
        pub(crate) fn new() -> Self {
            Index { entries: RwLock::new(Vec::new()) }
        }

        pub(crate) fn get<'g>(&self, key: &dyn KeyView, _guard: &'g Guard) -> Option<ChainRef<'g>> {
            let entries = self.entries.read().expect("loom lock");
            entries.iter().find(|(k, _)| k.as_view() == key).map(|(_, c)| found(c))
        }

        pub(crate) fn get_or_create<'g>(&self, key: &StoredKey, guard: &'g Guard) -> ChainRef<'g> {
            if let Some(c) = self.get(key.as_view(), guard) {
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

        pub(crate) fn remove(&self, key: &StoredKey, _guard: &Guard) -> bool {
            let mut entries = self.entries.write().expect("loom lock");
            let before = entries.len();
            entries.retain(|(k, _)| k != key);
            entries.len() != before
        }

        /// The same contract as the `DashMap` index's; here the "directory" is the entry list,
        /// filtered and sorted (the model only needs the order and the locking, not the speed).
        pub(crate) fn range(
            &self,
            range: &KeyRange,
            reverse: bool,
            _guard: &Guard,
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

        pub(crate) fn for_each(
            &self,
            guard: &mut Guard,
            per_pin: usize,
            mut f: impl FnMut(&StoredKey, &Chain, &Guard),
        ) {
            let mut snapshot: Vec<(StoredKey, Arc<Chain>)> =
                self.entries.read().expect("loom lock").iter().cloned().collect();
            snapshot.sort_by(|a, b| a.0.cmp(&b.0));
            for (i, (k, c)) in snapshot.iter().enumerate() {
                if i > 0 && i.is_multiple_of(per_pin.max(1)) {
                    guard.repin();
                }
                f(k, c, guard);
            }
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
