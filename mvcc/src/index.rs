//! The key index: `(TableId, key bytes)` → version chain.
//!
//! Normally a sharded `DashMap` (foldhash hasher): the map only *finds* a chain, and its shard
//! lock is held only for the lookup (a read lock; a write lock the first time a key is written or
//! when GC drops a dead chain), never across another call into the map.
//!
//! Under `cfg(any(loom, shuttle))` the `DashMap` is replaced by a `loom::sync::RwLock<Vec<(key, Arc<Chain>)>>`:
//! loom cannot run `DashMap` (its shard lock parks the one OS thread loom schedules on, and the
//! model hangs). The chains, and every atomic of the protocol, are the same code either way.

use crate::chain::Chain;
use crate::key::{KeyView, StoredKey};
use crate::sync::epoch::Guard;
use std::ops::Deref;

#[cfg(not(any(loom, shuttle)))]
mod imp {
    use super::*;
    use dashmap::DashMap;

    /// A chain found in the index (holds the shard's read lock: drop it before the next call).
    pub(crate) type ChainRef<'a> = dashmap::mapref::one::Ref<'a, StoredKey, Chain>;

    pub(crate) struct Index {
        map: DashMap<StoredKey, Chain, foldhash::fast::RandomState>,
    }

    impl Index {
        pub(crate) fn new() -> Self {
            Index { map: DashMap::with_hasher(foldhash::fast::RandomState::default()) }
        }

        pub(crate) fn get(&self, key: &dyn KeyView) -> Option<ChainRef<'_>> {
            self.map.get(key)
        }

        pub(crate) fn get_or_create(&self, key: &StoredKey) -> ChainRef<'_> {
            match self.map.get(key.as_view()) {
                Some(chain) => chain,
                None => self.map.entry(key.clone()).or_default().downgrade(),
            }
        }

        /// Removes `key` if its chain is sealed. Returns whether it did.
        pub(crate) fn remove_if_sealed(&self, key: &StoredKey, guard: &Guard) -> bool {
            self.map.remove_if(key.as_view(), |_, c| c.is_sealed(guard)).is_some()
        }

        /// Calls `f` on every entry; `f` must not call back into the index.
        pub(crate) fn for_each(&self, mut f: impl FnMut(&StoredKey, &Chain)) {
            for entry in self.map.iter() {
                f(entry.key(), entry.value());
            }
        }

        pub(crate) fn retain(&self, mut keep: impl FnMut(&StoredKey) -> bool) {
            self.map.retain(|k, _| keep(k));
        }

        pub(crate) fn len(&self) -> usize {
            self.map.len()
        }

        /// Frees every chain now (the store is being dropped: nothing else can reach it).
        pub(crate) fn free_all(&mut self) {
            for mut chain in self.map.iter_mut() {
                chain.free_now();
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
        pub(crate) fn free_all(&mut self) {}
    }
}

pub(crate) use imp::{ChainRef, Index};

// Compile-time check that both index variants hand out something that derefs to a `Chain` (the
// callers in `lockfree.rs` rely on it); never called.
#[allow(dead_code)]
fn _assert_deref(r: ChainRef<'_>) -> impl Deref<Target = Chain> + '_ {
    r
}
