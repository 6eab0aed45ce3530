//! Canaries: deliberately broken variants of the protocol, switched on per test under `cfg(loom)`
//! or `cfg(shuttle)` only, so the loom models can show they *detect* each bug. A model whose canaries pass proves
//! nothing (loom 0.7's DPOR can miss "A loads X; B loads X, then CASes X" interleavings, exactly
//! the shape of this protocol — INVARIANTS §3).
//!
//! The switch is thread-local to the test thread under loom and shuttle: they run a model's
//! threads as coroutines on the calling thread, so every modelled thread sees it. A normal build
//! with `--cfg strata_canary` (real OS threads: the history checkers' canary runs) compiles the
//! `AbortedHeadUnchecked`, `MergeOverPut` and `MergeOnSnapshot` hooks only, behind a process-wide
//! switch. Release builds without that cfg contain no canary code at all.

#[cfg(any(loom, shuttle))]
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
    /// An installer that finds an aborted head replaces it without checking the version below
    /// it against its snapshot: a txn whose snapshot predates that version's commit overwrites
    /// it (a lost update). The bug of docs/design/lost-update-2026-11.md, put back.
    AbortedHeadUnchecked = 12,
    /// A merge links over any version committed after its snapshot, a put or delete included,
    /// instead of only over merges: a merge and a concurrent put both commit.
    MergeOverPut = 13,
    /// A merge applies its operator to the version its snapshot sees instead of the newest
    /// committed one: concurrent merges overwrite each other (a lost increment).
    MergeOnSnapshot = 14,
    /// The core's lease fold starts `central` at 1 instead of a large bias: a lease dropped
    /// between its stripe's swap and the addition of that stripe's count takes `central` to 0
    /// early, and the core is released twice (`lease.rs`).
    LeaseHoldOfOne = 15,
    /// The limbo frees every chain it holds at the next GC pass, whatever its removal reading:
    /// a txn still holding a hint to the chain follows it into a freed chain (ADR 0017).
    LimboIgnoresStamp = 16,
    /// A GC pass stamps the chains it removes with a clock reading taken *before* the removals
    /// (at the start of the pass) instead of after: a txn that began in between, with a later
    /// snapshot, and found the chain before its removal, can see the watermark pass the stamp
    /// while it still holds the hint.
    LimboStampsBeforeRemoval = 17,
}

#[cfg(any(loom, shuttle))]
thread_local! {
    static ACTIVE: Cell<u8> = const { Cell::new(0) };
}

/// Switches a canary on for the calling thread (`Canary::None` switches it off).
#[cfg(any(loom, shuttle))]
pub fn set(canary: Canary) {
    ACTIVE.with(|a| a.set(canary as u8));
}

/// Whether `canary` is on.
#[cfg(any(loom, shuttle))]
pub(crate) fn active(canary: Canary) -> bool {
    ACTIVE.with(|a| a.get()) == canary as u8
}

/// The process-wide switch of a `--cfg strata_canary` build (real threads, no model checker).
#[cfg(all(strata_canary, not(any(loom, shuttle))))]
static ACTIVE: crate::sync::unmodelled::AtomicU8 = crate::sync::unmodelled::AtomicU8::new(0);

/// Switches a canary on for every thread of the process (`Canary::None` switches it off).
#[cfg(all(strata_canary, not(any(loom, shuttle))))]
pub fn set(canary: Canary) {
    // Relaxed: set before the worker threads are spawned (spawn orders it).
    ACTIVE.store(canary as u8, crate::sync::Ordering::Relaxed);
}

/// Whether `canary` is on.
#[cfg(all(strata_canary, not(any(loom, shuttle))))]
pub(crate) fn active(canary: Canary) -> bool {
    // Relaxed: see `set`.
    ACTIVE.load(crate::sync::Ordering::Relaxed) == canary as u8
}

#[cfg(loom)]
thread_local! {
    static HINTS: Cell<bool> = const { Cell::new(false) };
}

/// Whether the lock-free store's point reads leave chain hints under loom (off unless a model
/// asks: a hint is an `Arc` clone per read there, which adds steps to every model; model 10
/// needs them). Shuttle builds always take hints, as real builds do.
#[cfg(loom)]
pub fn set_hints(on: bool) {
    HINTS.with(|h| h.set(on));
}

/// Whether point reads leave hints (see `set_hints`).
#[cfg(loom)]
pub(crate) fn hints() -> bool {
    HINTS.with(Cell::get)
}

/// Whether a commit followed a chain hint into a chain the store's limbo had freed, since the
/// last call (model 10; `sync::freed_chains`).
#[cfg(any(loom, shuttle))]
pub fn take_freed_hint() -> bool {
    crate::sync::freed_chains::take_violation()
}

/// Whether any reclaimed version was accessed since the last call (reclamation model only).
#[cfg(all(loom, crossbeam_loom))]
pub fn take_use_after_free() -> bool {
    crate::sync::freed::take_violation()
}
