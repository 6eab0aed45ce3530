//! The logical clock: one monotonic `AtomicU64` that hands out commit timestamps and snapshots.
//!
//! Invariants:
//! - Timestamps are dense: every value `1..=now()` was returned by exactly one `advance`, so each
//!   belongs to exactly one commit (the WAL relies on this to find the gap-free prefix).
//! - `0` is never a commit timestamp; a snapshot at `0` sees nothing.
//!
//! Concurrency: any thread may call anything. `advance` is the *only* writer; it is a `Release`
//! RMW, so every store a committer made before `advance` (its version installs and its
//! `Committing` state) happens-before any `Acquire` load of the clock that reads its value or a
//! later one (the RMWs form one release sequence). That edge is what closes the
//! clock/publication race without a global lock (INVARIANTS §3.3, docs/design/mvcc.md).

use crate::sync::{AtomicU64, Ordering};
use std::fmt;

/// A point in MVCC time (never an epoch: "epoch" means crossbeam reclamation only).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(pub u64);

impl Timestamp {
    /// The timestamp before any commit; a snapshot at `ZERO` sees an empty database.
    pub const ZERO: Timestamp = Timestamp(0);

    /// The raw value.
    pub const fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ts{}", self.0)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The monotonic commit clock.
#[derive(Debug)]
pub struct Clock {
    now: AtomicU64,
}

impl Clock {
    /// A clock whose last handed-out timestamp is `start` (recovery seeds it past the log).
    pub fn new(start: Timestamp) -> Self {
        Clock { now: AtomicU64::new(start.0) }
    }

    /// The newest timestamp handed out. Acquire: pairs with the Release of `advance`, so a
    /// snapshot taken at the returned value sees every commit at or below it (see module doc).
    pub fn now(&self) -> Timestamp {
        Timestamp(self.now.load(Ordering::Acquire))
    }

    /// A cheap hint of the current time, with no ordering; used for lower bounds (`Committing(lb)`)
    /// and statistics only, never to take a snapshot.
    pub fn now_relaxed(&self) -> Timestamp {
        Timestamp(self.now.load(Ordering::Relaxed))
    }

    /// Takes the next commit timestamp. AcqRel. The Release half publishes the caller's
    /// installs and its `Committing` state to every snapshot whose `now()` reads this value or
    /// a later one (snapshot isolation needs only that). The Acquire half is for serializable
    /// validation: a validator must see the installs of every txn that took a smaller
    /// timestamp, which it does because this RMW reads theirs (release sequence). With Release
    /// alone, the loom write-skew model commits both txns. (On x86 any RMW is a full barrier:
    /// the Acquire costs nothing.)
    pub fn advance(&self) -> Timestamp {
        #[cfg(any(loom, shuttle))]
        let ordering = if crate::canary::active(crate::canary::Canary::RelaxedAdvance) {
            Ordering::Relaxed
        } else if crate::canary::active(crate::canary::Canary::ReleaseAdvance) {
            Ordering::Release
        } else {
            Ordering::AcqRel
        };
        #[cfg(not(any(loom, shuttle)))]
        let ordering = Ordering::AcqRel;
        crate::lines::write(crate::lines::Site::Clock, &self.now);
        let prev = self.now.fetch_add(1, ordering);
        debug_assert!(prev < u64::MAX >> 3, "clock overflowed the 61-bit timestamp space");
        Timestamp(prev + 1)
    }
}

#[cfg(all(test, not(any(loom, shuttle))))]
mod tests {
    use super::*;

    #[test]
    fn advance_is_dense_and_monotonic() {
        let clock = Clock::new(Timestamp(41));
        assert_eq!(clock.now(), Timestamp(41));
        assert_eq!(clock.advance(), Timestamp(42));
        assert_eq!(clock.advance(), Timestamp(43));
        assert_eq!(clock.now(), Timestamp(43));
        assert_ne!(clock.now_relaxed(), Timestamp::ZERO);
    }
}
