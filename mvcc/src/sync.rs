//! The one place this crate takes its synchronisation primitives from (STYLE §2).
//!
//! Under `cfg(loom)` the atomics, `Arc` and the spin/yield hints come from `loom` (and under
//! `cfg(shuttle)` from `shuttle`, the randomized/exhaustive scheduler), so the models
//! run the real kernel code (`chain`, `registry`, `clock`, `state`) rather than a copy of it.
//! Locks for the *baseline* store and the key index come from `parking_lot` / `dashmap`, which
//! loom cannot see; they stay outside the modelled kernel (INVARIANTS §3.8).
#![allow(clippy::disallowed_types)]

#[cfg(all(loom, shuttle))]
compile_error!("cfg(loom) and cfg(shuttle) are separate model-checking builds; pick one");

#[cfg(not(any(loom, shuttle)))]
pub(crate) use std::sync::atomic::{
    fence, AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering,
};
#[cfg(not(any(loom, shuttle)))]
pub(crate) use std::sync::Arc;

#[cfg(loom)]
pub(crate) use loom::sync::RwLock as ModelRwLock;
#[cfg(shuttle)]
pub(crate) use shuttle::sync::atomic::{fence, AtomicPtr, AtomicU64, AtomicUsize, Ordering};
#[cfg(shuttle)]
pub(crate) use shuttle::sync::{Arc, RwLock as ModelRwLock};

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{fence, AtomicPtr, AtomicU64, AtomicUsize, Ordering};
#[cfg(loom)]
pub(crate) use loom::sync::Arc;

/// Epoch reclamation: crossbeam-epoch, except in the protocol models, which use a leak-only
/// stand-in (`epoch.rs`). `--cfg loom --cfg crossbeam_loom` keeps the real collector (built on
/// loom atomics) for the reclamation model.
#[cfg(any(not(any(loom, shuttle)), all(loom, crossbeam_loom)))]
pub(crate) use crossbeam_epoch as epoch;
#[cfg(any(all(loom, not(crossbeam_loom)), shuttle))]
pub(crate) mod epoch;

/// Std atomics for process-wide statics that are ids or hints, never part of the protocol (loom
/// atomics cannot live in statics).
pub(crate) mod unmodelled {
    #![allow(clippy::disallowed_types)]
    #[cfg(strata_canary)]
    pub(crate) use std::sync::atomic::AtomicU8;
    pub(crate) use std::sync::atomic::{AtomicU64, AtomicUsize};
}

/// The tally behind `lines.rs` (`--features line-count`): std statics, never modelled.
#[cfg(feature = "line-count")]
pub(crate) mod line_tally {
    #![allow(clippy::disallowed_types)]
    use std::cell::RefCell;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Mutex;

    use crate::lines::Site;

    /// Line → the last thread that wrote it (sharded to keep the instrumentation itself from
    /// serializing the run).
    static LAST: std::sync::LazyLock<dashmap::DashMap<usize, u32>> =
        std::sync::LazyLock::new(dashmap::DashMap::new);
    static NEXT_THREAD: AtomicU32 = AtomicU32::new(1);
    /// Tallies of threads that exited (or flushed), per site: (writes, transfers).
    static DONE: Mutex<Vec<(u64, u64)>> = Mutex::new(Vec::new());

    struct Local {
        id: u32,
        tally: Vec<(u64, u64)>,
    }

    impl Drop for Local {
        fn drop(&mut self) {
            flush_into(&mut self.tally);
        }
    }

    fn flush_into(tally: &mut [(u64, u64)]) {
        let mut done = DONE.lock().unwrap_or_else(|e| e.into_inner());
        if done.len() < Site::ALL.len() {
            done.resize(Site::ALL.len(), (0, 0));
        }
        for (d, t) in done.iter_mut().zip(tally.iter_mut()) {
            d.0 += t.0;
            d.1 += t.1;
            *t = (0, 0);
        }
    }

    thread_local! {
        static LOCAL: RefCell<Local> = RefCell::new(Local {
            id: NEXT_THREAD.fetch_add(1, Ordering::Relaxed),
            tally: vec![(0, 0); Site::ALL.len()],
        });
    }

    pub(crate) fn write(site: Site, addr: usize) {
        let _ = LOCAL.try_with(|local| {
            let mut local = local.borrow_mut();
            let me = local.id;
            let previous = LAST.insert(addr >> 6, me);
            let t = &mut local.tally[site as usize];
            t.0 += 1;
            if previous.is_some_and(|p| p != me) {
                t.1 += 1;
            }
        });
    }

    pub(crate) fn take() -> Vec<(u64, u64)> {
        let _ = LOCAL.try_with(|local| flush_into(&mut local.borrow_mut().tally));
        let mut done = DONE.lock().unwrap_or_else(|e| e.into_inner());
        let out = std::mem::take(&mut *done);
        LAST.clear();
        out
    }
}

/// A process-wide set of freed addresses, for the use-after-free checks below (std, never
/// modelled). Marking the address of each thing freed and unmarking it when something is
/// allocated there again lets an access check that what it reaches was not freed.
#[cfg(any(loom, shuttle, debug_assertions))]
pub(crate) struct FreedSet(std::sync::Mutex<Option<std::collections::HashSet<usize>>>);

#[cfg(any(loom, shuttle, debug_assertions))]
impl FreedSet {
    pub(crate) const fn new() -> Self {
        FreedSet(std::sync::Mutex::new(None))
    }

    fn with<R>(&self, f: impl FnOnce(&mut std::collections::HashSet<usize>) -> R) -> R {
        let mut guard = self.0.lock().unwrap_or_else(|e| e.into_inner());
        f(guard.get_or_insert_with(std::collections::HashSet::new))
    }

    pub(crate) fn mark(&self, addr: usize) {
        self.with(|s| s.insert(addr));
    }

    pub(crate) fn unmark(&self, addr: usize) {
        self.with(|s| s.remove(&addr));
    }

    pub(crate) fn contains(&self, addr: usize) -> bool {
        self.with(|s| s.contains(&addr))
    }
}

/// Use-after-free detection for the reclamation model (`--cfg loom --cfg crossbeam_loom`): loom
/// cannot see accesses to freed plain memory, so a dropped version records its address here and
/// every version access checks it (an allocation at a reused address clears the mark).
#[cfg(all(loom, crossbeam_loom))]
pub(crate) mod freed {
    static FREED: super::FreedSet = super::FreedSet::new();

    pub(crate) fn mark(addr: usize) {
        FREED.mark(addr);
    }

    pub(crate) fn unmark(addr: usize) {
        FREED.unmark(addr);
    }

    static VIOLATION: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

    /// Records (rather than panics on) an access to a reclaimed version: a panic in the middle of
    /// an epoch-pinned section would unwind through crossbeam's loom state and abort the test.
    /// The model asserts `take_violation() == false` at its end.
    pub(crate) fn check(addr: usize) {
        if FREED.contains(addr) {
            VIOLATION.store(true, std::sync::atomic::Ordering::Relaxed);
        }
    }

    pub(crate) fn take_violation() -> bool {
        VIOLATION.swap(false, std::sync::atomic::Ordering::Relaxed)
    }
}

/// The check of the limbo rule (`lockfree.rs`, "Chain hints and the limbo"), in debug builds and
/// under the model checkers: a chain the limbo frees records its address, a new chain clears
/// it, and following a hint checks that its chain was not freed. No sanitizer runs on stable
/// Rust, so this is how the tests see a hint outliving its chain; best effort (an address reused
/// by a new chain is clear again). Debug builds panic at once. Under loom and shuttle the model
/// index holds chains by `Arc`, so following such a hint is still memory-safe there: the check
/// records the violation for the model to assert at its end (`canary::take_freed_hint`), which
/// keeps the failure the model's own and not a panic in the middle of a commit.
#[cfg(any(loom, shuttle, debug_assertions))]
pub(crate) mod freed_chains {
    static FREED: super::FreedSet = super::FreedSet::new();

    pub(crate) fn mark(addr: usize) {
        FREED.mark(addr);
    }

    pub(crate) fn unmark(addr: usize) {
        FREED.unmark(addr);
    }

    #[cfg(not(any(loom, shuttle)))]
    pub(crate) fn assert_live(addr: usize) {
        assert!(!FREED.contains(addr), "a chain hint outlived its chain (the limbo rule)");
    }

    #[cfg(any(loom, shuttle))]
    static VIOLATION: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

    #[cfg(any(loom, shuttle))]
    pub(crate) fn assert_live(addr: usize) {
        if FREED.contains(addr) {
            VIOLATION.store(true, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// Whether a hint reached a freed chain since the last call.
    #[cfg(any(loom, shuttle))]
    pub(crate) fn take_violation() -> bool {
        VIOLATION.swap(false, std::sync::atomic::Ordering::Relaxed)
    }
}

/// Whether debug assertions that need an extra atomic load run. Not under shuttle: each load is
/// a scheduling point there, and the extra ones pushed the schedule that shows a bug past the
/// DFS's step bound (`DFS_STEPS_MAX`), hiding canaries; the DFS must explore exactly the
/// release build's schedules. Assertions without loads still run under shuttle.
pub(crate) const DEBUG_LOADS: bool = cfg!(all(debug_assertions, not(shuttle)));

/// Locks and `Arc` for the parts loom never models (the baseline store, the dropped-table list).
pub(crate) use parking_lot::{Mutex, MutexGuard, RwLock};
pub(crate) use std::sync::Arc as StdArc;
pub(crate) use std::sync::OnceLock;

/// A spin, then yield, then sleep wait used while another txn is *publishing* its commit
/// (between `Committing` and `Committed`: one `fetch_add` and one store, or a serializable
/// txn's validation of its reads), or, bounded in time by the caller, while an installer waits
/// on an `Active` head. It spins `SPIN_STEPS_MAX` doubling steps, then yields the CPU for
/// `YIELD_STEPS_MAX` steps, then sleeps, doubling from `SLEEP_MIN` to `SLEEP_MAX` per step. The
/// wait itself is **not bounded in time** here: a publisher descheduled between its two stores,
/// or validating a large read set, keeps the readers that need its verdict waiting until it
/// finishes — but past the first few dozen steps they sleep rather than burn a core, so on an
/// oversubscribed machine they give the publisher the CPU it needs to finish.
#[derive(Debug, Default)]
#[cfg_attr(any(loom, shuttle), allow(dead_code))]
pub(crate) struct SpinWait {
    step: u32,
}

/// Spins this many times (doubling) before yielding the CPU…
#[cfg_attr(any(loom, shuttle), allow(dead_code))]
const SPIN_STEPS_MAX: u32 = 6;
/// …then yields this many times before sleeping…
#[cfg_attr(any(loom, shuttle), allow(dead_code))]
const YIELD_STEPS_MAX: u32 = 16;
/// …from this long, doubling each step…
#[cfg_attr(any(loom, shuttle), allow(dead_code))]
const SLEEP_MIN: std::time::Duration = std::time::Duration::from_micros(8);
/// …up to this long per step.
#[cfg_attr(any(loom, shuttle), allow(dead_code))]
const SLEEP_MAX: std::time::Duration = std::time::Duration::from_millis(1);

impl SpinWait {
    pub(crate) fn wait(&mut self) {
        #[cfg(loom)]
        {
            loom::thread::yield_now();
        }
        #[cfg(shuttle)]
        {
            shuttle::thread::yield_now();
        }
        #[cfg(not(any(loom, shuttle)))]
        {
            if self.step < SPIN_STEPS_MAX {
                for _ in 0..(1u32 << self.step) {
                    std::hint::spin_loop();
                }
            } else if self.step < SPIN_STEPS_MAX + YIELD_STEPS_MAX {
                // Oversubscribed machines: the publisher may be descheduled; give it the core.
                std::thread::yield_now();
            } else {
                let doublings = (self.step - SPIN_STEPS_MAX - YIELD_STEPS_MAX).min(16);
                std::thread::sleep(SLEEP_MIN.saturating_mul(1 << doublings).min(SLEEP_MAX));
            }
            self.step = self.step.saturating_add(1);
        }
    }
}
