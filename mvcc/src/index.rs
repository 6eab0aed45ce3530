//! The key index: `(TableId, key bytes)` → version chain.
//!
//! Normally a sharded `DashMap` (foldhash hasher): the map only *finds* a chain, and its shard
//! lock is held only for the lookup (a read lock; a write lock the first time a key is written or
//! when GC drops a dead chain), never across another call into the map and never while a chain
//! is walked or waited on. A caller copies the chain pointer out under the shard lock while pinned
//! to the epoch, drops the lock, and then reads, installs or waits. (Before, `get` handed back the
//! `DashMap` guard itself, and a reader waiting on a publishing writer kept the shard read-locked,
//! stalling every new key of that shard.)
//!
//! Beside the map, an ordered *key directory* (a lock-free skip list, `crossbeam-skiplist`, reclaimed
//! through the same `crossbeam-epoch` collector) lists every key in `(table, bytes)` order, each
//! with its chain, so a range or prefix scan walks keys in order instead of collecting and sorting
//! the table, and reaches each chain without a hash lookup. A key enters the directory when its
//! chain is created and leaves it when GC drops its sealed chain or its table — both *under the
//! map shard's write lock*, so the directory and the map agree on which keys exist (a writer
//! re-creating a key cannot interleave with GC removing it). The directory entry *owns* the chain:
//! the skip list destroys an entry (and the chain with it) only after it left the list, no
//! `Entry` handle to it remains, and every thread pinned before then has unpinned. So a thread
//! that found the chain in the map while pinned, or that holds the entry, can keep using it.
//! (Until ADR 0012, scans and the checkpoint's walk looked every key up in the map again: a
//! hash lookup, mostly a cache miss, per key.)
//!
//! A chain that leaves the directory is not destroyed with its entry: removal hands it out as
//! an [`Unlinked`], which the store frees only once no txn that could hold a [`ChainHint`] to
//! it is still live (`lockfree.rs`, "Chain hints and the limbo"; ADR 0017). A hint is the chain
//! pointer a txn's read found, kept unpinned until its commit installs on the same key, so the
//! commit does not look the key up a second time.
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
    use crate::sync::{AtomicBool, Ordering};
    use dashmap::DashMap;
    use std::ptr::NonNull;

    type Entry<'a> = crossbeam_skiplist::map::Entry<'a, StoredKey, ChainBox>;

    /// A chain found in the index: valid for as long as the guard it was found under is pinned
    /// (the index holds no lock once it returns).
    pub(crate) type ChainRef<'g> = &'g Chain;

    /// A chain on the heap, owned by its directory entry while the key is in the directory.
    /// Removal (under the shard's write lock) marks the box `released` and hands the chain out
    /// as an [`Unlinked`]; the box then frees nothing when the skip list destroys the entry
    /// (through the epoch collector, once no `Entry` handle to it is held and every thread
    /// pinned before its removal has unpinned). Only an index dropped whole (`free_all`) frees
    /// chains through their boxes. So a thread that found the chain in the map while pinned, or
    /// that holds the directory entry, can keep using it after the shard lock is released.
    struct ChainBox {
        chain: NonNull<Chain>,
        /// Set once the chain was handed out by a removal (never cleared).
        released: AtomicBool,
    }

    // SAFETY: `Chain` is `Send + Sync` (atomics and epoch pointers); `ChainBox` is the unique
    // owner of one and may be dropped on any thread.
    unsafe impl Send for ChainBox {}
    // SAFETY: as above; shared access only hands out `&Chain`.
    unsafe impl Sync for ChainBox {}

    impl ChainBox {
        fn new() -> Self {
            let chain = NonNull::from(Box::leak(Box::new(Chain::new())));
            #[cfg(debug_assertions)]
            crate::sync::freed_chains::unmark(chain.as_ptr() as usize);
            ChainBox { chain, released: AtomicBool::new(false) }
        }

        /// The chain, for as long as the directory entry holding `self` is alive.
        fn chain(&self) -> &Chain {
            // SAFETY: allocated by `new`; freed by `drop` (after every borrow of `self` ended)
            // or, once released, by the store's limbo, which waits for every thread pinned
            // before the removal (so for every holder of the entry) to unpin.
            unsafe { self.chain.as_ref() }
        }

        /// Hands the chain out of the box (the caller's removal took the entry out of the
        /// directory under the shard's write lock, so this runs once per box).
        fn release(&self) -> Unlinked {
            // Relaxed: read back only by this box's `drop`, which the skip list runs after the
            // entry's removal (and so after this store) is visible to it.
            let was = self.released.swap(true, Ordering::Relaxed);
            debug_assert!(!was, "a directory entry is removed once");
            Unlinked(self.chain)
        }
    }

    impl Drop for ChainBox {
        fn drop(&mut self) {
            if *self.released.get_mut() {
                return; // the limbo owns the chain
            }
            // SAFETY: the chain was never handed out, so the box still owns it, and the box is
            // destroyed only with the whole index (`free_all`'s contract: nothing holds or will
            // load a pointer into any chain); every removal releases the box first.
            unsafe { Box::from_raw(self.chain.as_ptr()).free_now() };
        }
    }

    /// A chain taken out of the index by a removal: no new lookup can find it, but a txn may
    /// still hold a [`ChainHint`] to it, and a thread pinned before the removal may still be
    /// using it. The store's limbo frees it (`lockfree.rs`).
    #[must_use = "an unlinked chain leaks unless the store's limbo frees it"]
    pub(crate) struct Unlinked(NonNull<Chain>);

    // SAFETY: the unique owner of a `Send + Sync` chain.
    unsafe impl Send for Unlinked {}

    impl Unlinked {
        /// Frees the chain and every version still on it.
        ///
        /// # Safety
        /// No thread holds or will load a pointer into the chain: every thread pinned when it
        /// was removed has unpinned, and every txn that could hold a hint to it has ended.
        pub(crate) unsafe fn free(self) {
            #[cfg(debug_assertions)]
            crate::sync::freed_chains::mark(self.0.as_ptr() as usize);
            // SAFETY: the caller's contract; `release` handed this chain out exactly once.
            unsafe { Box::from_raw(self.0.as_ptr()).free_now() };
        }
    }

    /// The chain a txn's read found, kept for its commit to install on without a second index
    /// lookup. It holds the chain by a plain pointer, with no pin and no count: it stays valid
    /// because a chain is freed only once every txn live at its removal has ended (the limbo
    /// rule, `lockfree.rs`), and the txn holding the hint is live until its commit returns.
    #[derive(Clone, Copy)]
    pub(crate) struct ChainHint(NonNull<Chain>);

    // SAFETY: a plain pointer to a `Send + Sync` chain; dereferenced only under `chain`'s
    // contract.
    unsafe impl Send for ChainHint {}
    // SAFETY: as above.
    unsafe impl Sync for ChainHint {}

    impl ChainHint {
        /// The hint for a chain found under a pinned guard.
        pub(crate) fn of(chain: &ChainRef<'_>) -> Self {
            ChainHint(NonNull::from(*chain))
        }

        /// The chain again.
        ///
        /// # Safety
        /// The caller is the txn that took the hint, and it has stayed registered in the
        /// snapshot registry since (the limbo rule then keeps the chain allocated).
        pub(crate) unsafe fn chain<'g>(&self, _guard: &'g Guard) -> ChainRef<'g> {
            #[cfg(debug_assertions)]
            crate::sync::freed_chains::assert_live(self.0.as_ptr() as usize);
            // SAFETY: the caller's contract.
            unsafe { self.0.as_ref() }
        }
    }

    /// The map's copy of a chain pointer (the directory entry owns the chain).
    #[derive(Clone, Copy)]
    struct ChainPtr(NonNull<Chain>);

    // SAFETY: a plain pointer to a `Send + Sync` chain; dereferenced only under the rules of
    // `Index::get`.
    unsafe impl Send for ChainPtr {}
    // SAFETY: as above.
    unsafe impl Sync for ChainPtr {}

    pub(crate) struct Index {
        map: DashMap<StoredKey, ChainPtr, foldhash::fast::RandomState>,
        /// Every key of `map`, ordered, each with the chain it owns (module doc).
        dir: crossbeam_skiplist::SkipMap<StoredKey, ChainBox>,
    }

    impl Index {
        pub(crate) fn new() -> Self {
            Index {
                map: DashMap::with_hasher(foldhash::fast::RandomState::default()),
                dir: crossbeam_skiplist::SkipMap::new(),
            }
        }

        /// The chain of `key`, if it has one. The shard's read lock is held for the lookup only.
        pub(crate) fn get<'g>(&self, key: &dyn KeyView, _guard: &'g Guard) -> Option<ChainRef<'g>> {
            #[cfg(feature = "line-count")]
            crate::lines::write(
                crate::lines::Site::ShardLock,
                &*self.map.shards()[self.map.determine_map(key)],
            );
            let ptr = *self.map.get(key)?;
            // SAFETY: read from the map while `guard` is pinned: the chain's owner leaves the
            // directory (under this shard's write lock, so after our read) before it is destroyed,
            // and its destruction is deferred through the epoch, so it waits for `guard`.
            Some(unsafe { ptr.0.as_ref() })
        }

        pub(crate) fn get_or_create<'g>(&self, key: &StoredKey, guard: &'g Guard) -> ChainRef<'g> {
            if let Some(chain) = self.get(key.as_view(), guard) {
                return chain;
            }
            let ptr = *self.map.entry(key.clone()).or_insert_with(|| {
                // Under the shard's write lock (module doc).
                let boxed = ChainBox::new();
                let ptr = ChainPtr(boxed.chain);
                self.dir.insert(key.clone(), boxed);
                ptr
            });
            // SAFETY: as in `get`: read from the map while `guard` is pinned.
            unsafe { ptr.0.as_ref() }
        }

        /// Removes `key` if its chain is sealed, handing the chain out.
        pub(crate) fn remove_if_sealed(&self, key: &StoredKey, guard: &Guard) -> Option<Unlinked> {
            self.remove_where(key, guard, |chain| chain.is_sealed(guard))
        }

        /// Removes `key` whatever its chain holds (its table was dropped), handing the chain out.
        pub(crate) fn remove(&self, key: &StoredKey, guard: &Guard) -> Option<Unlinked> {
            self.remove_where(key, guard, |_| true)
        }

        fn remove_where(
            &self,
            key: &StoredKey,
            _guard: &Guard,
            doomed: impl FnOnce(&Chain) -> bool,
        ) -> Option<Unlinked> {
            let mut unlinked = None;
            self.map.remove_if(key.as_view(), |k, ptr| {
                // SAFETY: under the shard's write lock the key's directory entry is still there
                // (it leaves only under this lock), so its chain is alive.
                let yes = doomed(unsafe { ptr.0.as_ref() });
                if yes {
                    // Under the shard's write lock (module doc): the entry leaves the directory
                    // and hands its chain to the caller (`ChainBox`).
                    unlinked = self.dir.remove(k.as_view()).map(|entry| entry.value().release());
                    debug_assert!(unlinked.is_some(), "the map and the directory agree");
                }
                yes
            });
            unlinked
        }

        /// Calls `f` on the keys of `range` in order (`reverse`: descending) that have a chain,
        /// until it breaks. No lock is held while `f` runs (each key's chain is looked up under
        /// its shard's read lock, which is released before the call).
        pub(crate) fn range(
            &self,
            range: &KeyRange,
            reverse: bool,
            _guard: &Guard,
            mut f: impl FnMut(&StoredKey, &Chain) -> ControlFlow<()>,
        ) {
            if range.is_empty() {
                return;
            }
            let (lo, hi) = view_bounds(range);
            let keys = self.dir.range::<dyn KeyView, _>((as_view(&lo), as_view(&hi)));
            let mut visit = |entry: &Entry<'_>| {
                if entry.is_removed() {
                    return ControlFlow::Continue(()); // GC removed it after the directory step
                }
                f(entry.key(), entry.value().chain())
            };
            if reverse {
                for entry in keys.rev() {
                    if visit(&entry).is_break() {
                        return;
                    }
                }
            } else {
                for entry in keys {
                    if visit(&entry).is_break() {
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
                if !entry.is_removed() {
                    f(entry.key(), entry.value().chain(), guard);
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
            self.map = DashMap::default();
            // Dropping the directory drops every entry at once (no epoch), and with it every
            // chain (`ChainBox::drop`, whose contract is this function's).
            self.dir = crossbeam_skiplist::SkipMap::new();
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

    /// A chain taken out of the index. The store's limbo decides when it is dead, as in the
    /// real build; here `free` only records that decision (`sync::freed_chains`) and drops the
    /// index's `Arc`, so a hint followed after it is caught by the model instead of reading
    /// freed memory.
    pub(crate) struct Unlinked(Arc<Chain>);

    impl Unlinked {
        /// Records the chain as freed (the limbo's decision) and drops the index's hold on it.
        ///
        /// # Safety
        /// None needed here; `unsafe` only to match the real index's `Unlinked::free`.
        pub(crate) unsafe fn free(self) {
            crate::sync::freed_chains::mark(Arc::as_ptr(&self.0) as usize);
        }
    }

    /// The chain a txn's read found (an `Arc` clone here).
    #[derive(Clone)]
    pub(crate) struct ChainHint(Arc<Chain>);

    impl ChainHint {
        pub(crate) fn of(chain: &ChainRef<'_>) -> Self {
            ChainHint(chain.chain.clone())
        }

        /// # Safety
        /// None needed here; `unsafe` only to match the real index's `ChainHint::chain`. A hint
        /// followed into a chain the limbo freed is recorded (`sync::freed_chains`).
        pub(crate) unsafe fn chain<'g>(&self, _guard: &'g Guard) -> ChainRef<'g> {
            crate::sync::freed_chains::assert_live(Arc::as_ptr(&self.0) as usize);
            found(&self.0)
        }
    }

    /// A lookup result for a chain held outside the index (the shuttle kernel's fixed chains).
    #[cfg(shuttle)]
    pub(crate) fn held<'a>(chain: &Arc<Chain>) -> LoomRef<'a> {
        found(chain)
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
            crate::sync::freed_chains::unmark(Arc::as_ptr(&chain) as usize);
            entries.push((key.clone(), chain.clone()));
            found(&chain)
        }

        pub(crate) fn remove_if_sealed(&self, key: &StoredKey, guard: &Guard) -> Option<Unlinked> {
            let mut entries = self.entries.write().expect("loom lock");
            let at = entries.iter().position(|(k, c)| k == key && c.is_sealed(guard))?;
            Some(Unlinked(entries.remove(at).1))
        }

        pub(crate) fn remove(&self, key: &StoredKey, _guard: &Guard) -> Option<Unlinked> {
            let mut entries = self.entries.write().expect("loom lock");
            let at = entries.iter().position(|(k, _)| k == key)?;
            Some(Unlinked(entries.remove(at).1))
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

#[cfg(shuttle)]
pub(crate) use imp::held;
pub(crate) use imp::{ChainHint, ChainRef, Index, Unlinked};

// Compile-time check that both index variants hand out something that derefs to a `Chain` (the
// callers in `lockfree.rs` rely on it); never called.
#[allow(dead_code)]
fn _assert_deref(r: ChainRef<'_>) -> impl Deref<Target = Chain> + '_ {
    r
}
