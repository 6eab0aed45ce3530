//! `strata-mvcc`: multi-version concurrency control with lock-free version chains.
//!
//! The pieces, bottom up (each module's header gives its invariants):
//! - [`clock`]: the monotonic commit clock (`Timestamp`s are dense).
//! - [`state`]: one `AtomicU64` per write txn: `Active | Committing(lb) | Committed(ts) | Aborted`.
//! - `chain`: lock-free newest-first version lists with CAS on the head, epoch reclamation.
//! - `registry`: the snapshot registry and its begin/GC handshake; the low watermark.
//! - `lockfree` / `baseline`: the two version stores behind one trait ([`StoreKind`]).
//! - [`txn`]: snapshots, write buffering, commit and rollback.
//! - [`base`]: what the core asks of a base under the chains (on disk: the engine's base file);
//!   with one, the chains hold only what changed since its last checkpoint.
//!
//! The protocol and why it is correct: `docs/design/mvcc.md`. It implements snapshot isolation
//! with first-committer-wins; readers never take a lock and never abort, and wait only for a
//! writer that is *publishing* a timestamp inside their snapshot.
//!
//! Knows nothing of files or SQL. Concurrency: `Mvcc` is `Clone + Send + Sync`; every method may
//! be called from any thread at once.

pub mod base;
pub mod clock;
pub mod error;
pub mod key;
pub mod merge;
pub mod range;
pub mod state;
pub mod store;
pub mod txn;

mod bytes;
/// Crate-private: its slots point into its own blocks, so a `SlotRef` used with another
/// registry, or after its registry is gone, would be a use-after-free reachable from safe code.
mod registry;
mod writeset;

#[cfg(any(loom, shuttle, strata_canary))]
pub mod canary;
#[cfg(shuttle)]
pub mod kernel;

mod baseline;
mod chain;
mod index;
// Under loom only its own model uses it (see `CoreOwner`).
#[cfg_attr(loom, allow(dead_code))]
mod lease;
pub mod lines;
mod lockfree;
mod stats;
mod sync;

pub use base::{BaseReader, RowVisitor};
pub use clock::{Clock, Timestamp};
pub use error::MvccError;
pub use key::TableId;
pub use merge::{MergeError, MergeOp};
pub use range::{KeyRange, RangeIter, Row};
pub use registry::{SLOTS_PER_BLOCK, SNAPSHOT_SLOTS_MAX};
pub use state::TxnId;
pub use store::{GcReport, StoreKind};
pub use txn::{Isolation, Txn, TxnMode, KEY_BYTES_MAX, TXN_WRITES_MAX, VALUE_BYTES_MAX};
pub use writeset::{WriteOp, WRITESET_SMALL_MAX};

use crate::key::KeyView;
use crate::registry::SnapshotRegistry;
use crate::stats::{bump, Stats};
use crate::store::{CommitCtx, SealRule, VersionStore};
#[cfg(loom)]
use crate::sync::Arc;
use crate::sync::{AtomicU64, Mutex, MutexGuard, Ordering, RwLock, StdArc};
use crate::writeset::WriteSet;
use crossbeam_utils::CachePadded;
use std::cell::Cell;
use std::collections::HashMap;
use std::fmt;

/// A background GC pass runs when at least this many versions are garbage (beyond one per key)…
pub const GC_GARBAGE_VERSIONS_MIN: u64 = 4096;
/// …and the garbage is at least this fraction (1/N) of the keys, so a pass over a large index
/// pays for itself. Deletes (tombstones to seal) and dropped tables also trigger a pass.
pub const GC_GARBAGE_PER_KEYS: u64 = 16;

/// Commits between two inline refreshes of the cached GC watermark (one committer in this many
/// scans the registry; the others reuse the cached value, which is always safe if stale).
pub const WATERMARK_REFRESH_COMMITS: u64 = 8;

/// The shared core of one database.
///
/// Layout matters: the clock (written by every commit) and the cached watermark (written every
/// `WATERMARK_REFRESH_COMMITS`) each get their own cache lines, apart from the read-mostly fields
/// below them. The counts that keep the core alive are not in it: a txn's lease is counted on its
/// thread's stripe, in an allocation of its own (`lease.rs`).
/// Sharing one line made every begin and every commit invalidate everyone's copy of the clock.
pub(crate) struct Core {
    pub(crate) clock: CachePadded<Clock>,
    pub(crate) registry: SnapshotRegistry,
    pub(crate) store: Box<dyn VersionStore>,
    pub(crate) stats: Stats,
    /// The newest computed watermark. Relaxed is enough: any value ever computed stays a valid
    /// lower bound of every present and future snapshot (see `registry`), and memory safety of
    /// what GC frees comes from the epoch, not from this value.
    watermark: CachePadded<AtomicU64>,
    gc_passes: AtomicU64,
    /// `tombstones_installed`, `table_drops` and the base checkpoint GC could rely on, as of
    /// the last full pass (GC policy). Held for the whole of a pass: passes run one at a time,
    /// so a pass that returns has reclaimed (and counted) everything below its watermark, even
    /// what a concurrent pass had cut first.
    gc_seen: Mutex<(u64, u64, u64)>,
    /// Every dropped table, sorted. GC removes their keys during the walk over every key it
    /// makes anyway (a binary search per key, one shard write lock per key removed), so a
    /// dropped table costs nothing once its keys are gone.
    dropped_tables: Mutex<Vec<TableId>>,
    /// Bumped by every `drop_table`; txns compare it at commit (one shared read, no RMW).
    table_drops: AtomicU64,
    /// Names the owner gave tables (`Mvcc::label_table`), for errors only: a txn carries no
    /// name of its own (cloning one per txn wrote a count every writer of the table shares).
    table_labels: RwLock<HashMap<TableId, String>>,
    /// `SHUT_CLOSED` (set by `Mvcc::close`) and `SHUT_STOPPED` (set by `Mvcc::stop`): begins,
    /// reads, writes and commits fail with `Closed` or `Stopped` once either is set.
    shut: AtomicU64,
    /// Why the core was stopped (set before `SHUT_STOPPED`).
    stop_reason: crate::sync::OnceLock<String>,
    /// The base under the chains (`None`: every row lives in the chains).
    /// Not modelled under loom (a plain `Arc`): the models run without a base.
    pub(crate) base: Option<StdArc<dyn BaseReader>>,
}

impl Core {
    pub(crate) fn cached_watermark(&self) -> Timestamp {
        Timestamp(self.watermark.load(Ordering::Relaxed))
    }

    fn refresh_watermark(&self) -> Timestamp {
        let w = self.registry.watermark(&self.clock);
        // Relaxed: see the field comment; fetch_max keeps it monotonic.
        let prev = self.watermark.fetch_max(w.0, Ordering::Relaxed);
        Timestamp(prev.max(w.0))
    }

    pub(crate) fn check_open(&self) -> Result<(), MvccError> {
        // Relaxed: a read-mostly flag for begins, reads and writes, which publish nothing;
        // commits go through `enter_commit`, which `close` waits for.
        match self.shut.load(Ordering::Relaxed) {
            0 => Ok(()),
            shut => Err(self.shut_error(shut)),
        }
    }

    fn shut_error(&self, shut: u64) -> MvccError {
        if shut & SHUT_CLOSED != 0 {
            return MvccError::Closed;
        }
        let reason = self.stop_reason.get().cloned().unwrap_or_default();
        MvccError::Stopped { reason }
    }

    /// Admits one commit unless the core is closed; `close` returns only after every admitted
    /// commit has dropped its ticket. A Dekker-style handshake, all SeqCst: the commit
    /// increments its stripe's in-flight count and then loads the flag; `close` stores the flag
    /// and then sums the counts. In the single total order either the commit's load sees the flag
    /// (it refuses) or `close`'s sum sees the increment (it waits). Per-thread stripes keep the
    /// increment off any shared cache line.
    pub(crate) fn enter_commit(&self) -> Result<CommitTicket<'_>, MvccError> {
        let stripe = self.stats.local();
        crate::lines::write(crate::lines::Site::Stats, &stripe.in_flight);
        stripe.in_flight.fetch_add(1, Ordering::SeqCst);
        let ticket = CommitTicket { counter: &stripe.in_flight };
        let shut = self.shut.load(Ordering::SeqCst);
        if shut != 0 {
            return Err(self.shut_error(shut)); // the ticket's drop undoes the increment
        }
        Ok(ticket)
    }

    fn close(&self) {
        self.shut.fetch_or(SHUT_CLOSED, Ordering::SeqCst);
        let mut wait = crate::sync::SpinWait::default();
        while self.stats.in_flight() != 0 {
            wait.wait();
        }
    }

    /// The name `Mvcc::label_table` gave `table`, if any.
    pub(crate) fn table_label(&self, table: TableId) -> Option<String> {
        self.table_labels.read().get(&table).cloned()
    }

    pub(crate) fn table_drops(&self) -> u64 {
        // Acquire: pairs with the Release in `Mvcc::drop_table`, so a txn that sees the new
        // count also sees the dropped id in the list.
        self.table_drops.load(Ordering::Acquire)
    }

    pub(crate) fn is_dropped(&self, table: TableId) -> bool {
        self.dropped_tables.lock().binary_search(&table).is_ok()
    }

    pub(crate) fn after_commit(&self, ts: Timestamp) {
        if ts.0.is_multiple_of(WATERMARK_REFRESH_COMMITS) {
            self.refresh_watermark();
        }
    }
}

/// `Core::shut` bits.
const SHUT_CLOSED: u64 = 1;
const SHUT_STOPPED: u64 = 2;

/// A commit admitted by `Core::enter_commit`; `close` waits until every ticket is dropped.
pub(crate) struct CommitTicket<'a> {
    counter: &'a AtomicU64,
}

impl Drop for CommitTicket<'_> {
    fn drop(&mut self) {
        crate::lines::write(crate::lines::Site::Stats, self.counter);
        // Release: the commit's effects happen before `close` (whose SeqCst sum reads this)
        // returns.
        self.counter.fetch_sub(1, Ordering::Release);
    }
}

fn next_txn_id() -> TxnId {
    static THREADS: sync::unmodelled::AtomicU64 = sync::unmodelled::AtomicU64::new(1);
    thread_local! {
        static NEXT: Cell<u64> = const { Cell::new(0) };
    }
    NEXT.with(|n| {
        let mut v = n.get();
        if v & 0xFFFF_FFFF == 0 {
            // First use on this thread, or 2^32 txns later: take a fresh high half.
            v = THREADS.fetch_add(1, Ordering::Relaxed) << 32;
        }
        n.set(v + 1);
        TxnId(v + 1)
    })
}

/// How a `Mvcc` owns its core, and how a txn or a scan holds it: a striped lease (`lease.rs`).
/// Under loom the protocol models hold it by a plain `Arc` instead: the lease's counters are
/// atomics loom interleaves, and they multiplied the executions of a three-thread model sevenfold
/// (`same_key_writers` at bound 2: 32,916 → 240,754). The lease is checked by its own model
/// (`lease::loom_tests`), and the shuttle schedules run the engine with it.
#[cfg(not(loom))]
type CoreOwner = lease::Owner<Core>;
#[cfg(not(loom))]
pub(crate) type CoreLease = lease::Lease<Core>;
#[cfg(loom)]
type CoreOwner = Arc<Core>;
#[cfg(loom)]
pub(crate) type CoreLease = Arc<Core>;

/// A txn's hold on the core (see `CoreOwner`).
fn lease(core: &CoreOwner) -> CoreLease {
    #[cfg(not(loom))]
    return core.lease();
    #[cfg(loom)]
    return core.clone();
}

/// An MVCC database core: clock, snapshot registry, version store and GC.
#[derive(Clone)]
pub struct Mvcc {
    /// Txns and scans hold the core by a lease (`lease.rs`): begin and end write only the
    /// calling thread's stripe, not a count every thread writes.
    core: CoreOwner,
}

impl fmt::Debug for Mvcc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mvcc")
            .field("store", &self.core.store.kind())
            .field("clock", &self.core.clock.now_relaxed())
            .finish()
    }
}

/// A point-in-time view of the core's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct MvccStats {
    /// Which store.
    pub store: StoreKind,
    /// The clock: the newest commit timestamp.
    pub clock: Timestamp,
    /// Committed txns (read-only ones included).
    pub commits: u64,
    /// Commits that failed first-committer-wins validation.
    pub conflicts: u64,
    /// Read-write txns rolled back explicitly or by drop (closing a snapshot is not one).
    pub rollbacks: u64,
    /// Retries recorded by callers (`Mvcc::record_retry`).
    pub retries: u64,
    /// Versions installed by commits.
    pub versions_installed: u64,
    /// Versions unlinked and handed to the reclaimer (aborted ones included).
    pub versions_reclaimed: u64,
    /// Versions still linked in some chain.
    pub live_versions: u64,
    /// Keys in the index.
    pub keys: u64,
    /// Keys removed by GC (all-dead chains, dropped tables).
    pub keys_removed: u64,
    /// Live snapshots.
    pub active_snapshots: u64,
    /// How many commits behind the clock the oldest live snapshot is (0 if none).
    pub oldest_snapshot_age: u64,
    /// The newest GC watermark.
    pub watermark: Timestamp,
    /// How many commits the watermark trails the clock: versions newer than it are kept.
    pub gc_lag: u64,
    /// Full GC passes run.
    pub gc_passes: u64,
}

impl Mvcc {
    /// An empty in-memory core whose clock starts at `start` (0 for a new database).
    pub fn new(kind: StoreKind, start: Timestamp) -> Self {
        Mvcc::build(kind, start, None)
    }

    /// A core whose chains hold only what changed since the checkpoints in `base`: a read the
    /// chains cannot answer goes to the base (`base` module), and GC removes a chain once a
    /// checkpoint every snapshot reads holds its newest version. The clock starts at `start`,
    /// which must be at or above the base's newest checkpoint.
    pub fn with_base(kind: StoreKind, start: Timestamp, base: StdArc<dyn BaseReader>) -> Self {
        Mvcc::build(kind, start, Some(base))
    }

    fn build(kind: StoreKind, start: Timestamp, base: Option<StdArc<dyn BaseReader>>) -> Self {
        let store: Box<dyn VersionStore> = match kind {
            StoreKind::LockFree => Box::new(lockfree::LockFreeStore::new()),
            StoreKind::Baseline => Box::new(baseline::BaselineStore::new()),
        };
        Mvcc {
            core: CoreOwner::new(Core {
                clock: CachePadded::new(Clock::new(start)),
                registry: SnapshotRegistry::new(),
                store,
                stats: Stats::new(),
                watermark: CachePadded::new(AtomicU64::new(start.0)),
                gc_passes: AtomicU64::new(0),
                gc_seen: Mutex::new((0, 0, 0)),
                dropped_tables: Mutex::new(Vec::new()),
                table_drops: AtomicU64::new(0),
                table_labels: RwLock::new(HashMap::new()),
                shut: AtomicU64::new(0),
                stop_reason: crate::sync::OnceLock::new(),
                base,
            }),
        }
    }

    /// Which store this core uses.
    pub fn kind(&self) -> StoreKind {
        self.core.store.kind()
    }

    /// Starts a snapshot-isolation txn whose snapshot is the clock's current value.
    pub fn begin(&self, mode: TxnMode) -> Result<Txn, MvccError> {
        self.begin_with(mode, Isolation::Snapshot)
    }

    /// Starts a txn at the given isolation level. `Serializable` needs the lock-free store
    /// (`Unsupported` on the baseline).
    pub fn begin_with(&self, mode: TxnMode, isolation: Isolation) -> Result<Txn, MvccError> {
        self.core.check_open()?;
        if isolation == Isolation::Serializable && !self.core.store.supports_serializable() {
            return Err(MvccError::Unsupported { isolation, store: self.kind().name() });
        }
        let (slot, read_ts) = self
            .core
            .registry
            .begin(&self.core.clock)
            .map_err(|_| MvccError::TooManySnapshots { max: registry::SNAPSHOT_SLOTS_MAX })?;
        Ok(Txn::new(lease(&self.core), slot, read_ts, next_txn_id(), mode, isolation))
    }

    /// Closes the core: every later begin, read, write and commit fails with `Closed`, and
    /// commits already past their first check finish first — when this returns, no commit
    /// publishes anything any more (it waits for them, typically microseconds).
    pub fn close(&self) {
        self.core.close();
    }

    /// `Ok` while the core is open; `Closed` or `Stopped` after `close` or `stop`.
    pub fn check_open(&self) -> Result<(), MvccError> {
        self.core.check_open()
    }

    /// Whether `close` was called.
    pub fn is_closed(&self) -> bool {
        // Relaxed: a status query.
        self.core.shut.load(Ordering::Relaxed) & SHUT_CLOSED != 0
    }

    /// Stops the core for good after a failure its owner cannot recover from in place (the
    /// engine calls it when the log fails): every later begin, read, write and commit fails with
    /// `Stopped { reason }`, so nobody reads data that may not survive a restart. Unlike
    /// `close`, it does not wait for commits in flight (it may be called from one). Only the
    /// first reason is kept.
    pub fn stop(&self, reason: &str) {
        let _ = self.core.stop_reason.set(reason.to_string());
        self.core.shut.fetch_or(SHUT_STOPPED, Ordering::SeqCst);
    }

    /// Whether `stop` was called.
    pub fn is_stopped(&self) -> bool {
        // Relaxed: a status query.
        self.core.shut.load(Ordering::Relaxed) & SHUT_STOPPED != 0
    }

    /// Commits `writes` (later duplicates win; none at all: an empty commit) as one txn outside
    /// the usual limits, at the next timestamp. For recovery, which replays the log and
    /// checkpoint single-threaded before any txn runs, so it cannot conflict; a merge applies to
    /// the newest value, as it did when it first committed. Fails only if a merge does not
    /// apply, or the base cannot be read for it.
    pub fn apply<'a>(
        &self,
        writes: impl IntoIterator<Item = (TableId, &'a [u8], WriteOp<'a>)>,
    ) -> Result<Timestamp, MvccError> {
        let mut set = WriteSet::default();
        for (table, key, op) in writes {
            let probe: (TableId, &[u8]) = (table, key);
            set.put(&probe, op.into());
        }
        if set.is_empty() {
            // An empty commit still owns its timestamp (a serializable txn that failed
            // validation after taking one is logged this way): replay must advance the clock.
            return Ok(self.core.clock.advance());
        }
        let ctx = CommitCtx {
            clock: &self.core.clock,
            txn: next_txn_id(),
            read_ts: self.core.clock.now(),
            watermark: self.core.cached_watermark(),
            stats: &self.core.stats,
            reads: None,
            base: self.core.base.as_deref(),
            hints: &[],
        };
        let writes = set.into_sorted_vec();
        bump(&self.core.stats.local().commits, 1);
        self.core.store.commit(&ctx, writes)
    }

    /// The newest commit timestamp.
    pub fn now(&self) -> Timestamp {
        self.core.clock.now()
    }

    /// Recomputes the GC watermark (the oldest snapshot any live or future txn can have).
    pub fn refresh_watermark(&self) -> Timestamp {
        self.core.refresh_watermark()
    }

    /// A full GC pass: cuts versions no snapshot can see from every chain, drops all-dead keys
    /// and the keys of dropped tables, and flushes the epoch reclaimer. Waits for a pass already
    /// running (the background thread's) to finish first, so when this returns everything below
    /// its watermark is reclaimed and in `stats()`.
    pub fn collect_garbage(&self) -> GcReport {
        let seen = self.core.gc_seen.lock();
        self.collect_garbage_locked(seen)
    }

    fn collect_garbage_locked(&self, mut seen: MutexGuard<'_, (u64, u64, u64)>) -> GcReport {
        let w = self.core.refresh_watermark();
        let (seal, upto) = match &self.core.base {
            None => (SealRule::Tombstones { watermark: w.0 }, 0),
            Some(base) => {
                let upto = base.checkpoint_at_or_below(w).0;
                (SealRule::Checkpointed { upto }, upto)
            }
        };
        let before = (self.core.stats.totals().tombstones_installed, self.core.table_drops(), upto);
        let dropped = self.core.dropped_tables.lock().clone();
        let report = self.core.store.collect(w, &dropped, seal, &self.core.clock);
        let stripe = self.core.stats.local();
        bump(&stripe.versions_reclaimed, report.versions_reclaimed);
        bump(&stripe.keys_removed, report.keys_removed);
        // Relaxed: statistics.
        self.core.gc_passes.fetch_add(1, Ordering::Relaxed);
        *seen = before;
        report
    }

    /// Runs a full GC pass if there is enough to reclaim (the background thread's policy):
    /// garbage versions `>= max(GC_GARBAGE_VERSIONS_MIN, keys / GC_GARBAGE_PER_KEYS)`, or deletes
    /// or table drops since the last pass. A pass visits every key, so running it on a clean
    /// index would only burn a core (measured: ~190 ms per pass over 1M keys on this machine).
    /// Returns `None` at once if another pass is running.
    pub fn maybe_collect_garbage(&self) -> Option<GcReport> {
        let seen = self.core.gc_seen.try_lock()?;
        let t = self.core.stats.totals();
        let keys = self.core.store.key_count() as u64;
        let live = t.versions_installed.saturating_sub(t.versions_reclaimed);
        let garbage = live.saturating_sub(keys);
        let drops = self.core.table_drops();
        // A checkpoint every snapshot now reads lets a pass drop the chains it covers.
        let checkpointed =
            self.core.base.as_ref().is_some_and(|b| {
                b.checkpoint_at_or_below(self.core.cached_watermark()).0 != seen.2
            });
        let worth_it = garbage >= GC_GARBAGE_VERSIONS_MIN.max(keys / GC_GARBAGE_PER_KEYS)
            || t.tombstones_installed != seen.0
            || drops != seen.1
            || checkpointed;
        worth_it.then(|| self.collect_garbage_locked(seen))
    }

    /// Names `table` in errors (`MvccError::TableDropped`): the core knows tables by id only.
    pub fn label_table(&self, table: TableId, label: &str) {
        self.core.table_labels.write().insert(table, label.to_string());
    }

    /// Marks a table dropped: txns that wrote to it fail to commit with `TableDropped` (a commit
    /// racing the drop itself may still land; its rows are garbage), and its keys are removed by
    /// the next GC pass (and any a racing commit
    /// adds later, by the passes after it). Table ids are never reused.
    pub fn drop_table(&self, table: TableId) {
        let mut dropped = self.core.dropped_tables.lock();
        if let Err(at) = dropped.binary_search(&table) {
            dropped.insert(at, table);
            // Release: pairs with the Acquire in `Core::table_drops`.
            self.core.table_drops.fetch_add(1, Ordering::Release);
        }
    }

    /// Calls `f` on every key whose newest committed version at or below `upto` is above
    /// `since`, in `(table, key)` order, with that version's value (`None`: deleted): what a base
    /// checkpoint at `upto` applies over one at `since`. The caller keeps a snapshot at `upto`
    /// open meanwhile, so GC keeps those versions.
    ///
    /// Each key and value is lent to `f` (nothing is copied for it); `f` runs while the walk is
    /// pinned to the epoch, so it should not block.
    pub fn changes_with(
        &self,
        since: Timestamp,
        upto: Timestamp,
        mut f: impl FnMut(TableId, &[u8], Option<&[u8]>),
    ) {
        self.core.store.changes(since.0, upto.0, &mut |k, v| f(k.table(), k.bytes(), v));
    }

    /// Every table marked dropped (`drop_table`), sorted.
    pub fn dropped_tables(&self) -> Vec<TableId> {
        self.core.dropped_tables.lock().clone()
    }

    /// Whether this core reads through a base.
    pub fn has_base(&self) -> bool {
        self.core.base.is_some()
    }

    /// Records that a caller re-ran a txn after a retryable error (statistics only).
    pub fn record_retry(&self) {
        bump(&self.core.stats.local().retries, 1);
    }

    /// Current counters.
    pub fn stats(&self) -> MvccStats {
        let t = self.core.stats.totals();
        let clock = self.core.clock.now();
        let (active, oldest) = self.core.registry.live();
        let watermark = self.core.cached_watermark();
        MvccStats {
            store: self.kind(),
            clock,
            commits: t.commits,
            conflicts: t.conflicts,
            rollbacks: t.rollbacks,
            retries: t.retries,
            versions_installed: t.versions_installed,
            versions_reclaimed: t.versions_reclaimed,
            live_versions: t.versions_installed.saturating_sub(t.versions_reclaimed),
            keys: self.core.store.key_count() as u64,
            keys_removed: t.keys_removed,
            active_snapshots: active as u64,
            oldest_snapshot_age: oldest.map_or(0, |o| clock.0.saturating_sub(o.0)),
            watermark,
            gc_lag: clock.0.saturating_sub(watermark.0),
            gc_passes: self.core.gc_passes.load(Ordering::Relaxed),
        }
    }
}
