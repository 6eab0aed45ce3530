//! The store's locks and shared pointers, from one place (STYLE §2: a model checker swaps them
//! here).
//!
//! The handshake between readers, the switch to a new checkpoint and page reuse runs on
//! `Mutex`, `RwLock`, `SnapArc` (the count that says whether a snapshot is alive) and
//! `fence_acquire`; under `cfg(loom)` those are loom's, and `store/tests/loom_pages.rs` runs the
//! real `Base` on a page store loom watches. File handles and maps use the plain `Arc`: when
//! they are dropped is not part of the protocol.
#![allow(clippy::disallowed_types)]

pub(crate) use std::sync::Arc;

#[cfg(not(loom))]
pub(crate) use parking_lot::{Mutex, RwLock};
#[cfg(not(loom))]
pub(crate) use std::sync::Arc as SnapArc;

/// An acquire fence: after the writer sees that only it holds a snapshot, the fence orders the
/// reuse of that snapshot's pages after every read the dropped holders made (their drops are
/// release decrements; `Arc::strong_count` itself promises no ordering).
pub(crate) fn fence_acquire() {
    #[cfg(not(loom))]
    std::sync::atomic::fence(std::sync::atomic::Ordering::Acquire);
    #[cfg(loom)]
    loom::sync::atomic::fence(loom::sync::atomic::Ordering::Acquire);
}

#[cfg(loom)]
pub(crate) use loom::sync::Arc as SnapArc;

/// loom's locks with parking_lot's signatures (no poisoning), so the code is the same.
#[cfg(loom)]
mod loom_locks {
    pub(crate) struct Mutex<T>(loom::sync::Mutex<T>);
    impl<T> Mutex<T> {
        pub(crate) fn new(t: T) -> Self {
            Mutex(loom::sync::Mutex::new(t))
        }
        pub(crate) fn lock(&self) -> loom::sync::MutexGuard<'_, T> {
            self.0.lock().unwrap_or_else(|e| e.into_inner())
        }
    }
    pub(crate) struct RwLock<T>(loom::sync::RwLock<T>);
    impl<T> RwLock<T> {
        pub(crate) fn new(t: T) -> Self {
            RwLock(loom::sync::RwLock::new(t))
        }
        pub(crate) fn read(&self) -> loom::sync::RwLockReadGuard<'_, T> {
            self.0.read().unwrap_or_else(|e| e.into_inner())
        }
        pub(crate) fn write(&self) -> loom::sync::RwLockWriteGuard<'_, T> {
            self.0.write().unwrap_or_else(|e| e.into_inner())
        }
    }
}
#[cfg(loom)]
pub(crate) use loom_locks::{Mutex, RwLock};

/// Known-broken variants of page reuse, switched on per model (thread-local: loom runs a
/// model's threads on the calling thread), so the loom model shows it catches them.
#[cfg(loom)]
pub mod canary {
    use std::cell::Cell;

    /// A broken variant.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Canary {
        /// The real protocol.
        None,
        /// Pages freed by generation `g` become reusable while a snapshot of `g - 1` is still
        /// alive (an off-by-one in the release).
        ReleaseOneEarly,
        /// Freed pages are reusable at the next checkpoint whatever snapshots are alive.
        IgnoreSnapshots,
    }

    thread_local! {
        static ACTIVE: Cell<Canary> = const { Cell::new(Canary::None) };
    }

    /// Switches `c` on for the models this thread runs.
    pub fn set(c: Canary) {
        ACTIVE.with(|a| a.set(c));
    }

    /// The oldest live generation the writer releases pages up to, as the canary breaks it.
    pub(crate) fn oldest_live(real: u64) -> u64 {
        match ACTIVE.with(|a| a.get()) {
            Canary::None => real,
            Canary::ReleaseOneEarly => real + 1,
            Canary::IgnoreSnapshots => u64::MAX,
        }
    }
}
