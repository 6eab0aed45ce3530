//! Strata's store: lock-free version chains (`chain.rs`) in a sharded `DashMap`.
//!
//! The map is only the *index* from key to chain; every read and write of versions is a
//! lock-free operation on the chain. A shard's lock is held only for the hash-table lookup (a
//! shared read lock; a write lock the first time a key is written, and when GC drops dead keys),
//! and never across another call into the map (STYLE, dependency rules: dashmap deadlocks otherwise).
//!
//! Commit protocol (INVARIANTS §3; the interleavings it guards against are in docs/design/mvcc.md):
//! 1. For each written key in key order, install a pending version on the chain's head with a
//!    CAS, if the head committed at or below `read_ts` (a `Committing` head whose `lb <= read_ts`
//!    is waited on and then judged by its timestamp; a head whose writer is still installing is
//!    waited on for at most `INSTALL_WAIT_ACTIVE_MAX`, with no lock held (`install_waiting`),
//!    then judged, or a conflict past the bound). The version below an aborted head is judged
//!    like a head before the aborted one is replaced (docs/design/lost-update-2026-11.md).
//! 2. `state = Committing(lb)` with `lb = clock + 1`; `ts = clock.advance()`;
//!    `state = Committed(ts)`. All versions become visible at the instant the state word reads
//!    `Committed`: readers resolve a pending version through that one word.
//! 3. Stamp `ts` into each version (readers then skip the state word) and reclaim inline below
//!    the newest version the cached watermark says every snapshot can see.
//!
//! On conflict: `state = Aborted` (readers skip the versions at once), then unlink them.
//!
//! A merge (`merge.rs`) installs in step 1 like a put, except that it may link over versions
//! committed after `read_ts` as long as all of them are merges, waits (without bound, no lock
//! held) for a pending merge at the head instead of judging it, and takes as its value its
//! operator applied to the newest committed version (`Chain::install_merge`).
//!
//! Serializable txns (docs/design/isolation.md) insert one step between 2 and 3: after taking `ts`
//! the state becomes `Validating(ts)`, and every key the txn read — and every key now in each
//! range it scanned — must have no version committed in `(read_ts, ts)`. If one has, the txn
//! aborts as on a conflict (`SerializationFailure`); `ts` is used up.

use crate::chain::{
    ActiveWait, Chain, InstallError, Merging, ReadOutcome, Version, INLINE_GC_STEPS_MAX,
};
use crate::clock::Timestamp;
use crate::error::MvccError;
use crate::index::Index;
use crate::key::{KeyView, StoredKey, TableId};
use crate::range::{KeyRange, ReadSet, RANGE_BATCH_KEYS_MAX};
use crate::state::{TxnState, TxnStatus};
use crate::stats::bump;
use crate::store::{CommitCtx, GcReport, SealRule, SeenKey, StoreKind, VersionStore, Visible};
use crate::sync::epoch::{self, Guard, Owned, Shared};
use crate::writeset::{Op, Writes};
use std::collections::VecDeque;
use std::fmt;
use std::ops::ControlFlow;

/// GC re-pins its epoch guard after this many chains, so one pass never holds back reclamation.
pub const GC_CHAINS_PER_PIN: usize = 256;

/// Lock-free chains in a sharded hash index.
pub(crate) struct LockFreeStore {
    index: Index,
}

impl fmt::Debug for LockFreeStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LockFreeStore").field("keys", &self.index.len()).finish()
    }
}

impl LockFreeStore {
    pub(crate) fn new() -> Self {
        LockFreeStore { index: Index::new() }
    }
}

impl ChainSource for LockFreeStore {
    /// Installs one version on `key`'s chain, creating the chain (or replacing a sealed one).
    /// Returns with the shard lock released in every case (an `Active` head is waited on by the
    /// caller, never under the lock).
    fn install<'g>(
        &self,
        ctx: &CommitCtx<'_>,
        key: &StoredKey,
        mut version: Owned<Version>,
        merge: Option<&Merging<'_>>,
        guard: &'g Guard,
    ) -> Result<Shared<'g, Version>, InstallFail<'g>> {
        loop {
            let chain = self.index.get_or_create(key, guard);
            // Under loom the index lends a guard that derefs to the chain, not a reference.
            #[allow(clippy::needless_borrow)]
            let result = install_on(&chain, ctx, key, version, merge, guard);
            match result {
                Ok(installed) => return Ok(installed),
                Err(InstallFail::Sealed(v)) => {
                    version = v;
                    self.index.remove_if_sealed(key, guard);
                }
                Err(fail) => return Err(fail),
            }
        }
    }

    fn validate(
        &self,
        ctx: &CommitCtx<'_>,
        reads: &ReadSet,
        commit_ts: Timestamp,
        own: &TxnState,
        guard: &Guard,
    ) -> Result<(), MvccError> {
        let (read_ts, own) = (ctx.read_ts.0, own as *const TxnState);
        for (table, key) in &reads.keys {
            let probe: (TableId, &[u8]) = (*table, key.as_slice());
            // No chain: nobody committed this key since before the watermark (GC drops a chain
            // only when its newest version is a tombstone every snapshot sees).
            if let Some(chain) = self.index.get(&probe, guard) {
                if let Err(ts) = chain.validate(read_ts, commit_ts.0, own, guard) {
                    return Err(ctx.serialization_failure(&probe, ts, commit_ts));
                }
            }
        }
        for range in &reads.ranges {
            // Every key in the directory now: a txn that committed below `commit_ts` created
            // its keys' chains (and directory entries) before taking its timestamp, and our
            // `advance` synchronized with its.
            let mut failure = None;
            self.index.range(range, false, guard, |key, chain| {
                match chain.validate(read_ts, commit_ts.0, own, guard) {
                    Ok(()) => ControlFlow::Continue(()),
                    Err(ts) => {
                        failure = Some(ctx.serialization_failure(key, ts, commit_ts));
                        ControlFlow::Break(())
                    }
                }
            });
            if let Some(e) = failure {
                return Err(e);
            }
        }
        Ok(())
    }

    fn unlink_aborted(&self, key: &StoredKey, version: Shared<'_, Version>, guard: &Guard) -> bool {
        // A chain holding our pending head is never sealed (only tombstones that committed are),
        // so it is still in the index unless its table was purged (then Chain::drop retired the
        // version). If an installer already replaced it, it also retired it.
        self.index
            .get(key.as_view(), guard)
            .is_some_and(|chain| chain.unlink_aborted(version, guard))
    }
}

/// Why `ChainSource::install` did not install.
pub(crate) enum InstallFail<'g> {
    /// A conflict (or another error): the commit fails.
    Error(MvccError),
    /// The head's writer is still `Active`: wait for it with no lock held, then retry with the
    /// version that came back.
    Active { version: Owned<Version>, head: Shared<'g, Version> },
    /// A merge met a pending merge: wait until it settles (`Chain::until_settled`), then retry.
    Settling { version: Owned<Version>, head: Shared<'g, Version> },
    /// The chain was sealed: install on a fresh one (never leaves `ChainSource::install`).
    Sealed(Owned<Version>),
}

/// `Chain::install`, or `install_merge` for a merge, with its error as the protocol sees it.
pub(crate) fn install_on<'g>(
    chain: &Chain,
    ctx: &CommitCtx<'_>,
    key: &StoredKey,
    version: Owned<Version>,
    merge: Option<&Merging<'_>>,
    guard: &'g Guard,
) -> Result<Shared<'g, Version>, InstallFail<'g>> {
    let result = match merge {
        None => chain.install(version, ctx.read_ts.0, guard),
        Some(m) => chain.install_merge(version, ctx.read_ts.0, m, guard),
    };
    result.map_err(|e| match e {
        InstallError::Conflict { committed_ts } => {
            InstallFail::Error(ctx.conflict(key, committed_ts))
        }
        InstallError::Failed(e) => InstallFail::Error(e),
        InstallError::Active { version, head } => InstallFail::Active { version, head },
        InstallError::Settling { version, head } => InstallFail::Settling { version, head },
        InstallError::Sealed(v) => InstallFail::Sealed(v),
    })
}

/// Where the commit protocol finds chains: the store's index, or (in the complete schedule
/// search under `cfg(shuttle)`) a fixed array of chains. The protocol itself is one function.
pub(crate) trait ChainSource {
    /// Installs `version` on `key`'s chain for a txn whose snapshot is `ctx.read_ts` (a merge's
    /// with `merge`). Holds no lock when it returns. Never returns `InstallFail::Sealed`.
    fn install<'g>(
        &self,
        ctx: &CommitCtx<'_>,
        key: &StoredKey,
        version: Owned<Version>,
        merge: Option<&Merging<'_>>,
        guard: &'g Guard,
    ) -> Result<Shared<'g, Version>, InstallFail<'g>>;

    /// Serializable validation (module doc) of `reads` for a txn committing at `commit_ts`
    /// whose state word is `own`.
    fn validate(
        &self,
        ctx: &CommitCtx<'_>,
        reads: &ReadSet,
        commit_ts: Timestamp,
        own: &TxnState,
        guard: &Guard,
    ) -> Result<(), MvccError>;

    /// Unlinks the caller's aborted `version` from `key`'s chain; returns whether it retired it.
    fn unlink_aborted(&self, key: &StoredKey, version: Shared<'_, Version>, guard: &Guard) -> bool;
}

/// The commit protocol (module doc, steps 1–3) over any chain source.
pub(crate) fn commit_protocol<S: ChainSource>(
    source: &S,
    ctx: &CommitCtx<'_>,
    mut writes: Writes,
) -> Result<Timestamp, MvccError> {
    let guard = epoch::pin();
    // The state word every pending version points to. A txn that writes one key keeps it in
    // that key's version (`Version::pending_alone`): no allocation, nothing to retire. Otherwise
    // it is allocated here and retired (not freed) at the end, once every version is published
    // or unlinked: see `Version::pending`'s contract.
    let (state, mut st) = match writes.len() {
        1 => (None, None),
        _ => {
            let state = Owned::new(TxnState::new(ctx.txn)).into_shared(&guard);
            // SAFETY: just allocated, retired only at the end of this function.
            let st = unsafe { state.deref() };
            crate::lines::write(crate::lines::Site::StateAlloc, st);
            (Some(state), Some(st))
        }
    };
    // Inline for a one-key txn (no allocation), like its write set.
    let mut installed: smallvec::SmallVec<[(&StoredKey, Shared<'_, Version>); 1]> =
        smallvec::SmallVec::with_capacity(writes.len());
    let mut merged = false; // whether any write is a merge (deep inline GC, below)
    for (key, op) in writes.iter_mut() {
        let (payload, merge) = match std::mem::replace(op, Op::Delete) {
            Op::Put(value) => (Some(value), None),
            Op::Delete => (None, None),
            Op::Merge(m) => (None, Some(m)),
        };
        merged |= merge.is_some();
        let mut version = match st {
            // SAFETY: `state` outlives the version as `pending` requires: it is retired
            // through the epoch collector below, after the version is published or unlinked.
            Some(st) => unsafe { Version::pending(st, payload) }.boxed(),
            None => Version::pending_alone(ctx.txn, payload),
        };
        let result = match merge {
            None => install_waiting(source, ctx, key, version, None, &guard),
            Some(m) => {
                version.set_merge();
                let on_value = |v: Option<&[u8]>| ctx.merged(key, m, v);
                let on_base = || ctx.merged_into_base(key, m);
                let merging = Merging::new(&on_value, &on_base);
                install_waiting(source, ctx, key, version, Some(&merging), &guard)
            }
        };
        match result {
            Ok(v) => {
                // SAFETY: installed under `guard`, which is still pinned: the version (and the
                // state word inside it) stays allocated while we use it.
                st = st.or_else(|| Some(unsafe { v.deref() }.own_state()));
                installed.push((key, v));
            }
            Err(e) => {
                // A lone write that failed to install left nothing behind (its version and
                // state word were dropped unpublished).
                if let Some(st) = st {
                    abort(source, state, st, &installed, ctx.stats, &guard);
                }
                return Err(e);
            }
        }
    }
    let Some(st) = st else {
        debug_assert!(false, "a commit with writes installed at least one");
        drop(installed); // (empty) ends its borrow of `writes`
        return Err(ctx.conflict(&writes[0].0, None));
    };
    let stripe = ctx.stats.local();
    bump(&stripe.versions_installed, installed.len() as u64);

    // Publication (module doc, step 2). `lb` is a lower bound of the coming timestamp
    // because the clock only grows; readers whose snapshot is below it skip us at once.
    #[cfg(any(loom, shuttle))]
    let (reads, early) = match ctx.reads {
        _ if crate::canary::active(crate::canary::Canary::SkipValidation) => (None, None),
        Some(r) if crate::canary::active(crate::canary::Canary::ValidateBeforeTimestamp) => {
            (None, Some(r))
        }
        r => (r, None),
    };
    #[cfg(not(any(loom, shuttle)))]
    let reads = ctx.reads;
    #[cfg(any(loom, shuttle))]
    if let Some(r) = early {
        // The broken variant: validate against the clock as it is now, then take a timestamp.
        let as_of = Timestamp(ctx.clock.now().0 + 1);
        if let Err(e) = source.validate(ctx, r, as_of, st, &guard) {
            abort(source, state, st, &installed, ctx.stats, &guard);
            return Err(e);
        }
    }
    let lb = ctx.clock.now_relaxed().0 + 1;
    #[cfg(any(loom, shuttle))]
    let publish_committing = !crate::canary::active(crate::canary::Canary::NoCommitting);
    #[cfg(not(any(loom, shuttle)))]
    let publish_committing = true;
    if publish_committing {
        st.set(TxnStatus::Committing { lb });
    }
    let ts = ctx.clock.advance();
    if let Some(reads) = reads {
        st.set(TxnStatus::Validating { ts: ts.0 });
        if let Err(e) = source.validate(ctx, reads, ts, st, &guard) {
            abort(source, state, st, &installed, ctx.stats, &guard);
            return Err(e);
        }
    }
    st.set(TxnStatus::Committed { ts: ts.0 });

    // Step 3: stamp, then reclaim. Our guard keeps every installed version allocated even if
    // a racing GC already cut it off below a newer version.
    for (_, v) in &installed {
        // SAFETY: installed by us under `guard`, which is still pinned.
        unsafe { v.deref() }.publish(ts.0);
    }
    if let Some(state) = state {
        // SAFETY: every version pointing at `state` now has `begin != 0`; a reader that loaded
        // `begin == 0` earlier is pinned, so the deferred free waits for it.
        unsafe { guard.defer_destroy(state) };
    }
    let (mut reclaimed, mut gave_up) = (0, false);
    for (_, v) in &installed {
        let cut = Chain::cut_below(*v, ctx.watermark.0, INLINE_GC_STEPS_MAX, &guard);
        reclaimed += cut.retired;
        gave_up |= cut.depth.is_none();
    }
    #[cfg(not(any(loom, shuttle)))]
    if gave_up && merged {
        reclaimed += deep_inline_gc(&installed, ctx.watermark.0, &guard);
    }
    #[cfg(any(loom, shuttle))]
    let _ = (gave_up, merged);
    bump(&stripe.versions_reclaimed, reclaimed);
    drop(installed);
    drop(writes);
    Ok(ts)
}

/// Versions a deep inline cut inspects at most (`deep_inline_gc`).
#[cfg(not(any(loom, shuttle)))]
pub const DEEP_GC_STEPS_MAX: usize = 1 << 16;

/// A deep inline cut runs once per this many commits of one thread whose shallow cut gave up,
/// at least; more rarely the deeper the last one had to go (`deep_inline_gc`).
#[cfg(not(any(loom, shuttle)))]
const DEEP_GC_EVERY_MIN: u32 = 16;

/// Inline GC for merges when the shallow cut (`INLINE_GC_STEPS_MAX` versions) gave up. Merges
/// never conflict, so every thread stays inside a txn and a hot key gets many versions above the
/// oldest live snapshot: the cut point lies deeper than the shallow cut looks, and with more
/// threads than cores the background pass (one starved thread) fell behind for good (measured:
/// 8 threads on 2 cores, 10 keys: millions of live versions and hundreds of MiB after 4 s). So
/// the committer, now and then, walks down to the cut point itself. The walk costs as many
/// steps as the cut is deep, so the next one waits for a quarter as many of this thread's
/// commits: about four inspected versions per commit, amortized, whatever the depth.
#[cfg(not(any(loom, shuttle)))]
fn deep_inline_gc(
    installed: &[(&StoredKey, Shared<'_, Version>)],
    watermark: u64,
    guard: &Guard,
) -> u64 {
    use std::cell::Cell;
    thread_local! {
        static COUNTDOWN: Cell<u32> = const { Cell::new(DEEP_GC_EVERY_MIN) };
    }
    let due = COUNTDOWN.with(|c| {
        let left = c.get().saturating_sub(1);
        c.set(left);
        left == 0
    });
    if !due {
        return 0;
    }
    let (mut reclaimed, mut deepest) = (0, 0);
    for (_, v) in installed {
        let cut = Chain::cut_below(*v, watermark, DEEP_GC_STEPS_MAX, guard);
        reclaimed += cut.retired;
        deepest = deepest.max(cut.depth.unwrap_or(DEEP_GC_STEPS_MAX));
    }
    let next = (deepest / INLINE_GC_STEPS_MAX).clamp(DEEP_GC_EVERY_MIN as usize, 1 << 14);
    COUNTDOWN.with(|c| c.set(next as u32));
    reclaimed
}

/// `ChainSource::install`, waiting (bounded, no lock held: `ActiveWait`) on a head whose
/// writer is still installing and retrying once it has moved on. Past the bound, a conflict.
/// A merge waits for a pending merge without bound (`Chain::until_settled`).
fn install_waiting<'g, S: ChainSource>(
    source: &S,
    ctx: &CommitCtx<'_>,
    key: &StoredKey,
    mut version: Owned<Version>,
    merge: Option<&Merging<'_>>,
    guard: &'g Guard,
) -> Result<Shared<'g, Version>, MvccError> {
    let mut wait = ActiveWait::new();
    loop {
        match source.install(ctx, key, version, merge, guard) {
            Ok(v) => return Ok(v),
            Err(InstallFail::Error(e)) => return Err(e),
            Err(InstallFail::Settling { version: back, head }) => {
                // SAFETY: `head` was loaded under `guard`, which is still pinned.
                Chain::until_settled(unsafe { head.deref() });
                version = back;
            }
            Err(InstallFail::Sealed(_)) => {
                debug_assert!(false, "ChainSource::install retries sealed chains itself");
                return Err(ctx.conflict(key, None));
            }
            Err(InstallFail::Active { version: back, head }) => {
                // SAFETY: `head` was loaded under `guard`, which is still pinned.
                if !wait.until_resolved(unsafe { head.deref() }) {
                    return Err(ctx.conflict(key, None));
                }
                version = back;
            }
        }
    }
}

/// Undoes a failed commit (a conflict, or a failed serializable validation): marks it aborted
/// (readers skip its versions from now on), unlinks the versions it installed, and retires its
/// state word `state` if it has one of its own (`st` is that word, dereferenced, or the word
/// inside a lone version, which goes with the version).
fn abort<S: ChainSource>(
    source: &S,
    state: Option<Shared<'_, TxnState>>,
    st: &TxnState,
    installed: &[(&StoredKey, Shared<'_, Version>)],
    stats: &crate::stats::Stats,
    guard: &Guard,
) {
    st.set(TxnStatus::Aborted);
    let reclaimed = installed.iter().filter(|(k, v)| source.unlink_aborted(k, *v, guard)).count();
    bump(&stats.local().versions_reclaimed, reclaimed as u64);
    if let Some(state) = state {
        // SAFETY: every version pointing at `state` is now unlinked (by us, or by the installer
        // that replaced it); readers that saw one are pinned, so the deferred free waits for
        // them.
        unsafe { guard.defer_destroy(state) };
    }
}

impl VersionStore for LockFreeStore {
    fn kind(&self) -> StoreKind {
        StoreKind::LockFree
    }

    fn read_with(&self, key: &dyn KeyView, read_ts: Timestamp, f: &mut dyn FnMut(Visible<'_>)) {
        let guard = epoch::pin();
        let Some(chain) = self.index.get(key, &guard) else { return f(Visible::Unknown) };
        f(match chain.read(read_ts.0, &guard) {
            ReadOutcome::Found(Some(payload)) => Visible::Row(payload),
            ReadOutcome::Found(None) => Visible::Deleted,
            ReadOutcome::Absent => Visible::Unknown,
        })
    }

    fn range_batch(
        &self,
        range: &KeyRange,
        reverse: bool,
        read_ts: Timestamp,
        max_rows: usize,
        out: &mut VecDeque<SeenKey>,
    ) -> Option<Vec<u8>> {
        let guard = epoch::pin();
        let (mut rows, mut examined, mut stopped_at) = (0, 0, None);
        self.index.range(range, reverse, &guard, |key, chain| {
            examined += 1;
            if let ReadOutcome::Found(payload) = chain.read(read_ts.0, &guard) {
                out.push_back((key.bytes().to_vec(), payload.map(<[u8]>::to_vec)));
                rows += 1;
            }
            if rows >= max_rows || examined >= RANGE_BATCH_KEYS_MAX {
                stopped_at = Some(key.bytes().to_vec());
                return ControlFlow::Break(());
            }
            ControlFlow::Continue(())
        });
        stopped_at
    }

    fn supports_serializable(&self) -> bool {
        true
    }

    fn commit(&self, ctx: &CommitCtx<'_>, writes: Writes) -> Result<Timestamp, MvccError> {
        commit_protocol(self, ctx, writes)
    }

    fn collect(&self, watermark: Timestamp, dropped: &[TableId], seal: SealRule) -> GcReport {
        let mut report = GcReport { watermark, ..GcReport::default() };
        let mut guard = epoch::pin();
        let (mut sealed, mut doomed) = (Vec::new(), Vec::new());
        debug_assert!(dropped.is_sorted(), "dropped tables come sorted");
        self.index.for_each(&mut guard, GC_CHAINS_PER_PIN, |key, chain, guard| {
            if dropped.binary_search(&key.table()).is_ok() {
                doomed.push(key.clone());
                return;
            }
            report.versions_reclaimed += chain.collect(watermark.0, guard);
            if let Some(n) = chain.try_seal(seal, guard) {
                report.versions_reclaimed += n;
                sealed.push(key.clone());
            }
        });
        // Removal takes one shard write lock per key, never while the walk is on a key.
        for key in sealed {
            if self.index.remove_if_sealed(&key, &guard) {
                report.keys_removed += 1;
            }
        }
        for key in doomed {
            if self.index.remove(&key, &guard) {
                report.keys_removed += 1;
            }
        }
        guard.flush();
        report
    }

    fn key_count(&self) -> usize {
        self.index.len()
    }

    fn changes(&self, since: u64, upto: u64, f: &mut dyn FnMut(&StoredKey, Option<&[u8]>)) {
        let mut guard = epoch::pin();
        // The directory walks in key order (so does the model-checking stand-in).
        self.index.for_each(&mut guard, GC_CHAINS_PER_PIN, |key, chain, guard| {
            if let Some((ts, payload)) = chain.newest_at(upto, guard) {
                if ts > since {
                    f(key, payload);
                }
            }
        });
    }
}

impl Drop for LockFreeStore {
    fn drop(&mut self) {
        // SAFETY: the store is being dropped; every txn and range iterator holds the core (and
        // so the store) alive through its lease, and a GC pass through the `Mvcc` handle it runs
        // on (`lease.rs`), so none is running or pinned on it.
        unsafe { self.index.free_all() };
    }
}

#[cfg(all(test, not(any(loom, shuttle))))]
impl LockFreeStore {
    /// Total versions in all chains (tests).
    pub(crate) fn chain_versions(&self) -> usize {
        let mut guard = epoch::pin();
        let mut n = 0;
        self.index.for_each(&mut guard, GC_CHAINS_PER_PIN, |_, c, g| n += c.len(g));
        n
    }
}

#[cfg(all(test, not(any(loom, shuttle))))]
mod tests {
    use super::*;
    use crate::clock::Clock;
    use crate::state::TxnId;
    use crate::stats::Stats;
    use crate::store::Lookup;

    fn writes(keys: &[&[u8]]) -> Writes {
        keys.iter()
            .map(|k| (StoredKey::new(TableId(1), k), Op::Put(crate::bytes::Bytes::new(b"v"))))
            .collect()
    }

    /// A reader waiting on a publishing writer must not hold its key's shard lock: before the
    /// index handed out chain pointers, `read` kept the `DashMap` shard read-locked for the whole
    /// wait, and creating a new key in that shard (a write lock) stalled until the writer finished.
    #[test]
    fn a_waiting_reader_holds_no_shard_lock() {
        use crate::sync::{AtomicU64, Ordering};
        use std::time::{Duration, Instant};
        let writer = TxnState::new(TxnId(7));
        let store = LockFreeStore::new();
        let key = StoredKey::new(TableId(1), b"hot");
        {
            let guard = epoch::pin();
            // SAFETY: `writer` outlives the version: it is declared before the store, so the
            // store (which frees the version) is dropped first.
            let v = unsafe { Version::pending(&writer, Some(crate::bytes::Bytes::new(b"v"))) };
            store.index.get_or_create(&key, &guard).install(v.boxed(), 0, &guard).expect("install");
        }
        // Publishing: a snapshot at 5 must wait for the verdict (lb 1 <= 5).
        writer.set(TxnStatus::Committing { lb: 1 });
        let created = AtomicU64::new(0);
        std::thread::scope(|s| {
            let reader = s.spawn(|| store.read(key.as_view(), Timestamp(5)));
            std::thread::sleep(Duration::from_millis(50)); // let the reader start waiting
            s.spawn(|| {
                let guard = epoch::pin();
                // Enough keys to land in every shard, the reader's included.
                for i in 0..4096u32 {
                    store
                        .index
                        .get_or_create(&StoredKey::new(TableId(2), &i.to_be_bytes()), &guard);
                }
                created.store(1, Ordering::Release);
            });
            let deadline = Instant::now() + Duration::from_secs(20);
            while created.load(Ordering::Acquire) == 0 && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
            let stalled = created.load(Ordering::Acquire) == 0;
            writer.set(TxnStatus::Committed { ts: 3 });
            assert_eq!(reader.join().expect("reader"), Lookup::Row(b"v".to_vec()));
            assert!(!stalled, "new keys stalled behind a reader waiting on a publisher");
        });
    }

    #[test]
    fn a_failed_commit_unlinks_what_it_installed() {
        let store = LockFreeStore::new();
        let (clock, stats) = (Clock::new(Timestamp::ZERO), Stats::new());
        let commit = |id: u64, read_ts: u64, keys: &[&[u8]]| {
            let ctx = CommitCtx {
                clock: &clock,
                txn: TxnId(id),
                read_ts: Timestamp(read_ts),
                watermark: Timestamp::ZERO,
                stats: &stats,
                reads: None,
                base: None,
            };
            store.commit(&ctx, writes(keys))
        };
        let first = commit(1, 0, &[b"b"]);
        assert_eq!(first, Ok(Timestamp(1)));
        // "a" installs first (key order), then "b" conflicts: "a" must be unlinked again.
        let second = commit(2, 0, &[b"a", b"b"]);
        assert!(matches!(second, Err(MvccError::Conflict { .. })), "{second:?}");
        assert_eq!(store.chain_versions(), 1);
        assert_eq!(store.read(&(TableId(1), &b"a"[..]), Timestamp(9)), Lookup::Unknown);
        // A later snapshot commits over both.
        let third = commit(3, 1, &[b"a", b"b"]);
        assert_eq!(third, Ok(Timestamp(2)));
        assert_eq!(store.chain_versions(), 3);
        let report = store.collect(Timestamp(2), &[], SealRule::Tombstones { watermark: 2 });
        assert_eq!((report.versions_reclaimed, store.chain_versions()), (1, 2));
    }
}
