//! Canaries: deliberately broken variants of the protocol, switched on per test under `cfg(loom)`
//! or `cfg(shuttle)` only, so the loom models can show they *detect* each bug. A model whose canaries pass proves
//! nothing (loom 0.7's DPOR can miss "A loads X; B loads X, then CASes X" interleavings, exactly
//! the shape of this protocol — DESIGN §3).
//!
//! The switch is thread-local to the test thread; loom runs a model's threads as coroutines on
//! the calling thread, so every modelled thread sees it.

use std::cell::Cell;

/// A known-broken variant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Canary {
    /// The real protocol.
    None = 0,
    /// `Clock::advance` with `Relaxed` instead of `Release`: a snapshot that includes a commit
    /// need not see its installs.
    RelaxedAdvance = 1,
    /// Commit skips `Committing(lb)`: `Active → Committed` after the clock moved, so a reader
    /// whose snapshot includes the commit may skip a still-`Active` version.
    NoCommitting = 2,
    /// Readers treat `Committing` as invisible (never wait): fractured reads.
    CommittingInvisible = 3,
    /// Installers link over an `Active` head instead of failing: lost updates.
    WriterSkipsActive = 4,
    /// The naive begin: publish the slot and use that pre-publish clock read as the snapshot,
    /// with no fence: GC can free what the snapshot needs.
    UnfencedBegin = 5,
    /// Validation off by one: an installer links over a head committed at `read_ts + 1` (one
    /// commit after its snapshot) instead of failing: lost updates.
    ValidationOffByOne = 6,
    /// GC frees a detached version at once instead of deferring it through the epoch collector:
    /// a reader still walking the chain touches freed memory.
    FreeImmediately = 7,
    /// Serializable commits skip read validation: write skew and phantoms commit.
    SkipValidation = 8,
    /// Serializable commits validate their reads *before* taking the timestamp (against the
    /// clock's value then): a txn that commits between the check and the timestamp is missed.
    ValidateBeforeTimestamp = 9,
    /// Snapshots (and validators) treat a `Validating` writer as invisible instead of waiting
    /// for its verdict: two validators each skip the other and both commit.
    ValidatingInvisible = 10,
    /// `Clock::advance` with `Release` instead of `AcqRel`: enough for snapshot isolation, but a
    /// validator need not see the installs of a txn with a smaller timestamp (write skew).
    ReleaseAdvance = 11,
}

thread_local! {
    static ACTIVE: Cell<u8> = const { Cell::new(0) };
}

/// Switches a canary on for the calling thread (`Canary::None` switches it off).
pub fn set(canary: Canary) {
    ACTIVE.with(|a| a.set(canary as u8));
}

/// Whether any reclaimed version was accessed since the last call (reclamation model only).
#[cfg(all(loom, crossbeam_loom))]
pub fn take_use_after_free() -> bool {
    crate::sync::freed::take_violation()
}

/// Whether `canary` is on.
pub(crate) fn active(canary: Canary) -> bool {
    ACTIVE.with(|a| a.get()) == canary as u8
}
