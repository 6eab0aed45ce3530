//! Statistics counters, striped per thread so that counting never bounces a shared cache line
//! between committers (a single `AtomicU64` bumped by every commit would serialise them).
//!
//! Counts are exact once the threads that bumped them are quiescent; while they run, a snapshot
//! of the counters is a consistent-enough sum of stripes (each stripe is monotonic).

use crate::sync::unmodelled::AtomicUsize as StdAtomicUsize;
use crate::sync::{AtomicU64, Ordering};
use crossbeam_utils::CachePadded;
use std::fmt;

/// Number of stripes; threads beyond it share stripes (still correct, just some sharing).
pub const STATS_STRIPES: usize = 32;

/// The counters one thread bumps.
#[derive(Default)]
pub(crate) struct Stripe {
    pub(crate) commits: AtomicU64,
    pub(crate) conflicts: AtomicU64,
    pub(crate) rollbacks: AtomicU64,
    pub(crate) retries: AtomicU64,
    pub(crate) versions_installed: AtomicU64,
    pub(crate) versions_reclaimed: AtomicU64,
    pub(crate) keys_removed: AtomicU64,
    pub(crate) tombstones_installed: AtomicU64,
    /// Commits in flight that started on this stripe's threads (incremented and decremented by
    /// the same thread; the sum over stripes is the number in flight). Not a statistic: `close`
    /// waits for the sum to reach zero (`Core::enter_commit`).
    pub(crate) in_flight: AtomicU64,
}

/// Adds to one counter of the caller's stripe. Relaxed: counters order nothing.
pub(crate) fn bump(counter: &AtomicU64, n: u64) {
    crate::lines::write(crate::lines::Site::Stats, counter);
    counter.fetch_add(n, Ordering::Relaxed);
}

pub(crate) fn stripe_index() -> usize {
    static NEXT: StdAtomicUsize = StdAtomicUsize::new(0);
    thread_local! {
        static INDEX: usize = NEXT.fetch_add(1, Ordering::Relaxed) % STATS_STRIPES;
    }
    INDEX.with(|i| *i)
}

/// Per-thread striped counters.
pub(crate) struct Stats {
    stripes: Box<[CachePadded<Stripe>]>,
}

impl fmt::Debug for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stats").field("totals", &self.totals()).finish()
    }
}

/// Summed counters.
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub(crate) struct Totals {
    pub(crate) commits: u64,
    pub(crate) conflicts: u64,
    pub(crate) rollbacks: u64,
    pub(crate) retries: u64,
    pub(crate) versions_installed: u64,
    pub(crate) versions_reclaimed: u64,
    pub(crate) keys_removed: u64,
    pub(crate) tombstones_installed: u64,
}

impl Stats {
    pub(crate) fn new() -> Self {
        Stats { stripes: (0..STATS_STRIPES).map(|_| CachePadded::new(Stripe::default())).collect() }
    }

    /// The calling thread's stripe.
    pub(crate) fn local(&self) -> &Stripe {
        &self.stripes[stripe_index()]
    }

    /// Commits in flight (see `Stripe::in_flight`). SeqCst loads: `Core::close` relies on them
    /// being ordered after its store of the closed flag.
    pub(crate) fn in_flight(&self) -> u64 {
        self.stripes.iter().map(|s| s.in_flight.load(Ordering::SeqCst)).fold(0, u64::wrapping_add)
    }

    pub(crate) fn totals(&self) -> Totals {
        let mut t = Totals::default();
        for s in self.stripes.iter() {
            // Relaxed: statistics only.
            t.commits += s.commits.load(Ordering::Relaxed);
            t.conflicts += s.conflicts.load(Ordering::Relaxed);
            t.rollbacks += s.rollbacks.load(Ordering::Relaxed);
            t.retries += s.retries.load(Ordering::Relaxed);
            t.versions_installed += s.versions_installed.load(Ordering::Relaxed);
            t.versions_reclaimed += s.versions_reclaimed.load(Ordering::Relaxed);
            t.keys_removed += s.keys_removed.load(Ordering::Relaxed);
            t.tombstones_installed += s.tombstones_installed.load(Ordering::Relaxed);
        }
        t
    }
}

#[cfg(all(test, not(any(loom, shuttle))))]
mod tests {
    use super::*;

    #[test]
    fn stripes_sum_across_threads() {
        let stats = Stats::new();
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| {
                    for _ in 0..1000 {
                        bump(&stats.local().commits, 1);
                    }
                });
            }
        });
        assert_eq!(stats.totals().commits, 8000);
    }
}
