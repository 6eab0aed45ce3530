//! The WAL's synchronisation primitives, from one place (STYLE §2).
//!
//! The group-commit handshake (`group.rs`) takes its mutex, condvar and atomics from `model`,
//! which is loom's under `cfg(loom)` so the loom model runs the real code. Everything else (the
//! storage layer, the log's append state) uses std/parking_lot directly; loom never sees it.
#![allow(clippy::disallowed_types)]

pub(crate) use parking_lot::Mutex as PlMutex;
#[cfg(all(test, not(loom)))]
pub(crate) use std::sync::mpsc;
pub(crate) use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

/// What the group-commit model checks.
pub(crate) mod model {
    #[cfg(loom)]
    pub(crate) use loom::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    #[cfg(loom)]
    pub(crate) use loom::sync::{Condvar, Mutex, MutexGuard};
    #[cfg(not(loom))]
    pub(crate) use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    #[cfg(not(loom))]
    pub(crate) use std::sync::{Condvar, Mutex, MutexGuard};

    /// Locks, ignoring poisoning: every critical section here leaves the state consistent
    /// before anything that can panic.
    pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
        m.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn wait<'a, T>(cv: &Condvar, g: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
        cv.wait(g).unwrap_or_else(|e| e.into_inner())
    }

    #[cfg(loom)]
    pub(crate) use loom::thread::yield_now;
    #[cfg(not(loom))]
    pub(crate) use std::thread::yield_now;
}
