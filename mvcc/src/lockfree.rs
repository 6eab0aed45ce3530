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
//!
//! Every way out before the verdict — a conflict, a failed validation, a panic (a bug, or a
//! user's `BaseReader` panicking while a merge reads the base) — aborts what was installed
//! (`Undo`): no version is left pending for others to wait on.
//!
//! ## Chain hints and the limbo (ADR 0017)
//!
//! A read-write txn's point read keeps the chain it found as a `ChainHint` (`txn.rs`), and step 1
//! installs on that chain instead of looking the key up again (a hash, a shard lock and a probe:
//! about 270 instructions of a one-key read-modify-write). The txn holds no pin between the two,
//! so what keeps the chain allocated is this rule: *a chain removed from the index is freed only
//! once the GC watermark is above a clock reading taken after its removal* (the limbo).
//!
//! Why that suffices. A txn `T` that holds a hint to chain `C` registered its snapshot `r` before
//! its read found `C` in the map, and the removal of `C` took the shard's write lock after that
//! read released the read lock; so the clock reading `S` taken after the removal is at least
//! `r`. Every watermark computed while `T` lives is at most `r` (the registry's guarantee,
//! `registry.rs`). So a watermark above `S` was computed after `T` ended, and `T` released its
//! slot only after its commit returned. The limbo then defers the free through the epoch, for
//! the threads still pinned from before the removal (scans that found the entry).
//!
//! What the commit may find on a hinted chain: a sealed head (GC sealed and removed it after
//! the read; the install fails with `Sealed` and looks the key up afresh, as a commit that
//! raced the seal always did), or a chain its dropped table's purge removed (the install lands
//! on a chain nobody reads: a commit racing its table's drop may land, and its rows are
//! garbage, as `Mvcc::drop_table` says). An aborted commit unlinks its versions from the chains
//! it installed on, not from whatever the index holds now, so no version whose state word is
//! freed stays reachable through a hint.
//!
//! The models run this limbo too (loom and shuttle model 10, `hint_across_a_removal`): there the
//! index holds chains by `Arc`, its `Unlinked::free` records the limbo's decision, and a hint
//! followed into a chain so recorded fails the model. Two canaries (`LimboIgnoresStamp`,
//! `LimboStampsBeforeRemoval`) are caught.

use crate::chain::{
    ActiveWait, Chain, InstallError, Merging, ReadOutcome, Version, INLINE_GC_STEPS_MAX,
};
use crate::clock::{Clock, Timestamp};
use crate::error::MvccError;
use crate::index::{ChainHint, ChainRef, Index, Unlinked};
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
    /// Chains removed from the index, each with a clock reading taken after its removal, until
    /// the watermark passes it (module doc, "Chain hints and the limbo"). The models run it
    /// too (loom model 10, `hint_across_a_removal`).
    limbo: crate::sync::Mutex<Vec<(u64, Unlinked)>>,
}

impl fmt::Debug for LockFreeStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LockFreeStore").field("keys", &self.index.len()).finish()
    }
}

impl LockFreeStore {
    pub(crate) fn new() -> Self {
        LockFreeStore { index: Index::new(), limbo: crate::sync::Mutex::new(Vec::new()) }
    }

    /// Hands chains just removed from the index to the limbo. `now` is a clock reading taken
    /// after their removal.
    fn retire_chains(&self, chains: Vec<Unlinked>, now: Timestamp) {
        if chains.is_empty() {
            return;
        }
        self.limbo.lock().extend(chains.into_iter().map(|c| (now.0, c)));
    }

    /// Frees, through the epoch, the chains in the limbo whose removal reading is below
    /// `watermark` (a watermark computed at any time: every one is at most the snapshot of every
    /// txn live when or after it was computed).
    fn free_retired_chains(&self, watermark: Timestamp, guard: &Guard) {
        #[cfg(any(loom, shuttle))]
        let any_stamp = crate::canary::active(crate::canary::Canary::LimboIgnoresStamp);
        #[cfg(not(any(loom, shuttle)))]
        let any_stamp = false;
        let due: Vec<Unlinked> = self
            .limbo
            .lock()
            .extract_if(.., |(stamp, _)| *stamp < watermark.0 || any_stamp)
            .map(|(_, chain)| chain)
            .collect();
        for chain in due {
            retire_unlinked(chain, guard);
        }
    }

    /// Chains waiting in the limbo (tests).
    #[cfg(all(test, not(any(loom, shuttle))))]
    fn limbo_len(&self) -> usize {
        self.limbo.lock().len()
    }
}

/// Frees a chain the limbo released, through the epoch (module doc, "Chain hints and the limbo").
#[cfg(not(any(loom, shuttle)))]
fn retire_unlinked(chain: Unlinked, guard: &Guard) {
    // SAFETY: `Unlinked::free`'s contract. No txn can hold a hint to the chain (module doc: its
    // removal reading is below the watermark), no lookup can find it (it left the index before
    // that reading), and the deferred call runs only once every thread pinned now — so every
    // thread pinned at its removal, which is earlier — has unpinned.
    unsafe { guard.defer_unchecked(move || chain.free()) };
}

/// Under the models the index holds chains by `Arc` and the reclaimer never frees: `free`
/// records the limbo's decision, which model 10 (`hint_across_a_removal`) checks against the
/// hints followed afterwards.
#[cfg(any(loom, shuttle))]
fn retire_unlinked(chain: Unlinked, _guard: &Guard) {
    // SAFETY: none needed for the model index's `Unlinked` (`index.rs`).
    unsafe { chain.free() };
}

impl ChainSource for LockFreeStore {
    /// Installs one version on `key`'s chain: the hinted one if the txn's read left a hint,
    /// else the index's, creating it (or replacing a sealed one). Returns with the shard lock
    /// released in every case (an `Active` head is waited on by the caller, never under the
    /// lock).
    fn install<'g>(
        &self,
        ctx: &CommitCtx<'_>,
        key: &StoredKey,
        mut version: Owned<Version>,
        merge: Option<&Merging<'_>>,
        mut hint: Option<&ChainHint>,
        guard: &'g Guard,
    ) -> Result<(Shared<'g, Version>, ChainRef<'g>), InstallFail<'g>> {
        loop {
            let chain = match hint.take() {
                // SAFETY: the hint was taken by this committing txn, which is still registered
                // (`Txn::commit` ends its snapshot after the store's commit returns).
                Some(h) => unsafe { h.chain(guard) },
                None => self.index.get_or_create(key, guard),
            };
            // Under loom the index lends a guard that derefs to the chain, not a reference.
            #[allow(clippy::needless_borrow)]
            let result = install_on(&chain, ctx, key, version, merge, guard);
            match result {
                Ok(installed) => return Ok((installed, chain)),
                Err(InstallFail::Sealed(v)) => {
                    version = v;
                    if let Some(gone) = self.index.remove_if_sealed(key, guard) {
                        self.retire_chains(vec![gone], ctx.clock.now());
                    }
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
    /// with `merge`), trying the chain of `hint` first if given (module doc). Returns the version
    /// and the chain it is on. Holds no lock when it returns. Never returns
    /// `InstallFail::Sealed`.
    fn install<'g>(
        &self,
        ctx: &CommitCtx<'_>,
        key: &StoredKey,
        version: Owned<Version>,
        merge: Option<&Merging<'_>>,
        hint: Option<&ChainHint>,
        guard: &'g Guard,
    ) -> Result<(Shared<'g, Version>, ChainRef<'g>), InstallFail<'g>>;

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
    let (state, st) = match writes.len() {
        1 => (None, None),
        _ => {
            let state = Owned::new(TxnState::new(ctx.txn)).into_shared(&guard);
            // SAFETY: just allocated, retired only at the end of this function.
            let st = unsafe { state.deref() };
            crate::lines::write(crate::lines::Site::StateAlloc, st);
            (Some(state), Some(st))
        }
    };
    // Until the verdict, every way out — an error returned or a panic unwinding — aborts what
    // was installed (`Undo`).
    let mut undo = Undo {
        state,
        st,
        installed: smallvec::SmallVec::with_capacity(writes.len()),
        stats: ctx.stats,
        guard: &guard,
        decided: false,
    };
    let mut merged = false; // whether any write is a merge (deep inline GC, below)
    for (key, op) in writes.iter_mut() {
        let (payload, merge) = match std::mem::replace(op, Op::Delete) {
            Op::Put(value) => (Some(value), None),
            Op::Delete => (None, None),
            Op::Merge(m) => (None, Some(m)),
        };
        merged |= merge.is_some();
        let mut version = match undo.st {
            // SAFETY: `state` outlives the version as `pending` requires: it is retired
            // through the epoch collector below, after the version is published or unlinked.
            Some(st) => unsafe { Version::pending(st, payload) }.boxed(),
            None => Version::pending_alone(ctx.txn, payload),
        };
        let hint = ctx.hint(key);
        let (v, chain) = match merge {
            None => install_waiting(source, ctx, key, version, None, hint, &guard)?,
            Some(m) => {
                version.set_merge();
                let on_value = |v: Option<&[u8]>| ctx.merged(key, m, v);
                let on_base = || ctx.merged_into_base(key, m);
                let merging = Merging::new(&on_value, &on_base);
                install_waiting(source, ctx, key, version, Some(&merging), hint, &guard)?
            }
        };
        // SAFETY: installed under `guard`, which is still pinned: the version (and the state
        // word inside it) stays allocated while we use it.
        undo.st = undo.st.or_else(|| Some(unsafe { v.deref() }.own_state()));
        undo.installed.push((chain, v));
    }
    let Some(st) = undo.st else {
        debug_assert!(false, "a commit with writes installed at least one");
        return Err(ctx.conflict(&writes[0].0, None));
    };
    let stripe = ctx.stats.local();
    bump(&stripe.versions_installed, undo.installed.len() as u64);

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
        source.validate(ctx, r, as_of, st, &guard)?;
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
        source.validate(ctx, reads, ts, st, &guard)?;
    }
    st.set(TxnStatus::Committed { ts: ts.0 });
    undo.decided = true;

    // Step 3: stamp, then reclaim. Our guard keeps every installed version allocated even if
    // a racing GC already cut it off below a newer version.
    for (_, v) in &undo.installed {
        // SAFETY: installed by us under `guard`, which is still pinned.
        unsafe { v.deref() }.publish(ts.0);
    }
    if let Some(state) = undo.state {
        // SAFETY: every version pointing at `state` now has `begin != 0`; a reader that loaded
        // `begin == 0` earlier is pinned, so the deferred free waits for it.
        unsafe { guard.defer_destroy(state) };
    }
    let (mut reclaimed, mut gave_up) = (0, false);
    for (_, v) in &undo.installed {
        let cut = Chain::cut_below(*v, ctx.watermark.0, INLINE_GC_STEPS_MAX, &guard);
        reclaimed += cut.retired;
        gave_up |= cut.depth.is_none();
    }
    #[cfg(not(any(loom, shuttle)))]
    if gave_up && merged {
        reclaimed += deep_inline_gc(&undo.installed, ctx.watermark.0, &guard);
    }
    #[cfg(any(loom, shuttle))]
    let _ = (gave_up, merged);
    bump(&stripe.versions_reclaimed, reclaimed);
    drop(undo);
    drop(writes);
    Ok(ts)
}

/// What a commit has installed, undone (`abort`) when it is dropped before the verdict: on a
/// conflict or failed validation (`?`), and on a panic inside the protocol (a bug, or a
/// `debug_assert!`). Without it a panicking committer left its versions pending forever, and
/// every merge that met one waited for it without bound (`Chain::until_settled`): a panic in
/// one thread hung the others (it did, in CI, before model 9's fix).
struct Undo<'g> {
    /// The txn's own state word if it has one (more than one write), retired by `abort`.
    state: Option<Shared<'g, TxnState>>,
    /// The state word every installed version points to (`None`: nothing installed yet).
    st: Option<&'g TxnState>,
    /// Each installed version with the chain it is on (an abort unlinks it from there).
    /// Inline for a one-key txn (no allocation), like its write set.
    installed: smallvec::SmallVec<[(ChainRef<'g>, Shared<'g, Version>); 1]>,
    stats: &'g crate::stats::Stats,
    guard: &'g Guard,
    /// Set once the txn is `Committed`: from then on nothing is undone.
    decided: bool,
}

impl Drop for Undo<'_> {
    fn drop(&mut self) {
        // A lone write that failed to install left nothing behind (its version and state word
        // were dropped unpublished), so there is no `st` and nothing to do.
        if let (false, Some(st)) = (self.decided, self.st) {
            abort(self.state, st, &self.installed, self.stats, self.guard);
        }
    }
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
    installed: &[(ChainRef<'_>, Shared<'_, Version>)],
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
    hint: Option<&ChainHint>,
    guard: &'g Guard,
) -> Result<(Shared<'g, Version>, ChainRef<'g>), MvccError> {
    let mut wait = ActiveWait::new();
    loop {
        match source.install(ctx, key, version, merge, hint, guard) {
            Ok(installed) => return Ok(installed),
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

/// Undoes a failed commit (a conflict, a failed serializable validation, or a panic: `Undo`):
/// marks it aborted (readers skip its versions from now on), unlinks the versions it installed,
/// and retires its state word `state` if it has one of its own (`st` is that word, dereferenced,
/// or the word inside a lone version, which goes with the version).
fn abort(
    state: Option<Shared<'_, TxnState>>,
    st: &TxnState,
    installed: &[(ChainRef<'_>, Shared<'_, Version>)],
    stats: &crate::stats::Stats,
    guard: &Guard,
) {
    st.set(TxnStatus::Aborted);
    // From the chain each version went onto: the index may hold another chain for the key by
    // now, or none (a table purge), and a txn's hint may still reach this one (module doc). If
    // an installer already replaced the version, it retired it.
    let reclaimed = installed.iter().filter(|(c, v)| c.unlink_aborted(*v, guard)).count();
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

    fn read_with(
        &self,
        key: &dyn KeyView,
        read_ts: Timestamp,
        f: &mut dyn FnMut(Visible<'_>),
    ) -> Option<ChainHint> {
        let guard = epoch::pin();
        let Some(chain) = self.index.get(key, &guard) else {
            f(Visible::Unknown);
            return None;
        };
        f(match chain.read(read_ts.0, &guard) {
            ReadOutcome::Found(Some(payload)) => Visible::Row(payload),
            ReadOutcome::Found(None) => Visible::Deleted,
            ReadOutcome::Absent => Visible::Unknown,
        });
        // No hints under loom unless a model asks (`canary::set_hints`, model 10): there the
        // index lends chains by `Arc`, and a clone per read would add model steps to every
        // other protocol model for no protocol change (ADR 0017).
        #[cfg(loom)]
        let keep = crate::canary::hints();
        #[cfg(not(loom))]
        let keep = true;
        keep.then(|| ChainHint::of(&chain))
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

    fn collect(
        &self,
        watermark: Timestamp,
        dropped: &[TableId],
        seal: SealRule,
        clock: &Clock,
    ) -> GcReport {
        let mut report = GcReport { watermark, ..GcReport::default() };
        // The broken variant of model 10: the removals' clock reading taken before them.
        #[cfg(any(loom, shuttle))]
        let early = crate::canary::active(crate::canary::Canary::LimboStampsBeforeRemoval)
            .then(|| clock.now());
        let mut guard = epoch::pin();
        // Chains removed by earlier passes (or by commits that met a sealed chain) that no
        // live txn can hold a hint to any more.
        self.free_retired_chains(watermark, &guard);
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
        let mut unlinked = Vec::new();
        unlinked.extend(sealed.iter().filter_map(|key| self.index.remove_if_sealed(key, &guard)));
        unlinked.extend(doomed.iter().filter_map(|key| self.index.remove(key, &guard)));
        report.keys_removed = unlinked.len() as u64;
        // Read after the removals (module doc, "Chain hints and the limbo").
        let stamp = clock.now();
        #[cfg(any(loom, shuttle))]
        let stamp = early.unwrap_or(stamp);
        self.retire_chains(unlinked, stamp);
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
        for (_, chain) in self.limbo.get_mut().drain(..) {
            // SAFETY: as above: no txn is live and nothing is pinned on this store, so nothing
            // holds or will load a pointer into a chain removed from its index.
            unsafe { chain.free() };
        }
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

    /// A commit context for the hint tests.
    fn ctx<'a>(
        clock: &'a Clock,
        stats: &'a Stats,
        id: u64,
        read_ts: u64,
        hints: &'a [crate::store::Hint<'a>],
    ) -> CommitCtx<'a> {
        CommitCtx {
            clock,
            txn: TxnId(id),
            read_ts: Timestamp(read_ts),
            watermark: Timestamp::ZERO,
            stats,
            reads: None,
            base: None,
            hints,
        }
    }

    /// A store where txn 1 committed key `k` at timestamp 1, with its clock and statistics.
    fn with_k_committed() -> (LockFreeStore, Clock, Stats, StoredKey) {
        let store = LockFreeStore::new();
        let (clock, stats) = (Clock::new(Timestamp::ZERO), Stats::new());
        let key = StoredKey::new(TableId(1), b"k");
        let first = store.commit(&ctx(&clock, &stats, 1, 0, &[]), writes(&[b"k"]));
        assert_eq!(first, Ok(Timestamp(1)));
        (store, clock, stats, key)
    }

    fn hint_of(store: &LockFreeStore, key: &StoredKey) -> ChainHint {
        let hint = store.read_with(key.as_view(), Timestamp(u64::MAX - 1), &mut |_| {});
        hint.expect("the key has a chain")
    }

    fn hinted<'a>(key: &'a StoredKey, chain: &'a ChainHint) -> crate::store::Hint<'a> {
        crate::store::Hint { table: key.table(), key: key.bytes(), chain }
    }

    /// The commit installs on the chain the read found, without looking the key up: here that
    /// chain was taken out of the index (as a table purge does) after the read, so a commit that
    /// looked the key up would have created a new chain.
    #[test]
    fn a_commit_installs_on_the_hinted_chain() {
        let (store, clock, stats, key) = with_k_committed();
        let h = hint_of(&store, &key);
        let hints = [hinted(&key, &h)];
        let guard = epoch::pin();
        let gone = store.index.remove(&key, &guard).expect("in the index");
        store.retire_chains(vec![gone], clock.now());
        assert_eq!((store.key_count(), store.limbo_len()), (0, 1));
        let second = store.commit(&ctx(&clock, &stats, 2, 1, &hints), writes(&[b"k"]));
        assert_eq!(second, Ok(Timestamp(2)));
        assert_eq!(store.key_count(), 0, "the commit looked the key up instead of using the hint");
        // SAFETY: the chain is in the limbo, which nothing below frees before this use.
        let chain = unsafe { h.chain(&guard) };
        assert_eq!(chain.len(&guard), 2, "both versions are on the hinted chain");
        // An aborted commit unlinks from the chain it installed on, though the index has none.
        let third = store.commit(&ctx(&clock, &stats, 3, 1, &hints), writes(&[b"k"]));
        assert!(matches!(third, Err(MvccError::Conflict { .. })), "{third:?}");
        let (a, b) = (StoredKey::new(TableId(1), b"a"), StoredKey::new(TableId(1), b"z"));
        store.commit(&ctx(&clock, &stats, 4, 2, &[]), writes(&[b"z"])).expect("z");
        let hb = hint_of(&store, &b);
        let mixed = [hinted(&key, &h), hinted(&b, &hb)];
        let mut three = writes(&[b"a", b"k", b"z"]);
        three.sort_by(|x, y| x.0.cmp(&y.0));
        // "a" and "k" install (k on the hinted chain), then "z" conflicts (read_ts 2 < 3).
        let fourth = store.commit(&ctx(&clock, &stats, 5, 2, &mixed), three);
        assert!(matches!(fourth, Err(MvccError::Conflict { .. })), "{fourth:?}");
        assert_eq!(chain.len(&guard), 2, "the aborted version left the hinted chain");
        assert_eq!(store.read(a.as_view(), Timestamp(9)), Lookup::Unknown);
        drop(guard);
    }

    /// A hinted chain that GC sealed and removed after the read: the install meets the seal
    /// and looks the key up afresh. The removed chain waits in the limbo until the watermark
    /// passes the clock reading taken after its removal.
    #[test]
    fn a_sealed_hinted_chain_falls_back_and_waits_in_the_limbo() {
        let store = LockFreeStore::new();
        let (clock, stats) = (Clock::new(Timestamp::ZERO), Stats::new());
        let key = StoredKey::new(TableId(1), b"k");
        let delete: Writes = [(key.clone(), Op::Delete)].into_iter().collect();
        assert_eq!(store.commit(&ctx(&clock, &stats, 1, 0, &[]), delete), Ok(Timestamp(1)));
        let h = hint_of(&store, &key);
        let hints = [hinted(&key, &h)];
        let seal = SealRule::Tombstones { watermark: 1 };
        let report = store.collect(Timestamp(1), &[], seal, &clock);
        assert_eq!((report.keys_removed, store.key_count(), store.limbo_len()), (1, 0, 1));
        let put = store.commit(&ctx(&clock, &stats, 2, 1, &hints), writes(&[b"k"]));
        assert_eq!(put, Ok(Timestamp(2)));
        assert_eq!(store.key_count(), 1, "a fresh chain replaced the sealed one");
        assert_eq!(store.read(key.as_view(), Timestamp(2)), Lookup::Row(b"v".to_vec()));
        // Removed when the clock read 1: a watermark of 1 may still belong to a txn holding
        // the hint; 2 cannot.
        store.collect(Timestamp(1), &[], SealRule::Tombstones { watermark: 1 }, &clock);
        assert_eq!(store.limbo_len(), 1);
        store.collect(Timestamp(2), &[], SealRule::Tombstones { watermark: 2 }, &clock);
        assert_eq!(store.limbo_len(), 0);
    }

    /// The debug check the stress tests rely on (`sync::freed_chains`) catches a hint followed
    /// after its chain was freed: here the limbo is skipped on purpose.
    #[cfg(debug_assertions)]
    #[test]
    #[should_panic(expected = "outlived its chain")]
    fn a_hint_followed_after_its_chain_was_freed_is_caught() {
        let (store, _, _, key) = with_k_committed();
        let h = hint_of(&store, &key);
        let guard = epoch::pin();
        let gone = store.index.remove(&key, &guard).expect("in the index");
        // SAFETY: none — the broken variant the check must catch; `chain` below panics before
        // it dereferences anything.
        unsafe { gone.free() };
        // SAFETY: none — see above; the debug check inside panics first.
        let _ = unsafe { h.chain(&guard) };
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
                hints: &[],
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
        let report =
            store.collect(Timestamp(2), &[], SealRule::Tombstones { watermark: 2 }, &clock);
        assert_eq!((report.versions_reclaimed, store.chain_versions()), (1, 2));
    }
    /// A base that panics when asked for one key: a bug in a user's `BaseReader`, met while a
    /// merge is computed inside the commit.
    #[derive(Debug)]
    struct PanickingBase;

    impl crate::base::BaseReader for PanickingBase {
        fn get(&self, _: TableId, key: &[u8], _: Timestamp) -> Result<Option<Vec<u8>>, String> {
            assert_ne!(key, b"b", "the base panics on b");
            Ok(None)
        }

        fn range(
            &self,
            _: &KeyRange,
            _: bool,
            _: Timestamp,
            _: usize,
            _: &mut Vec<(Vec<u8>, Vec<u8>)>,
        ) -> Result<(), String> {
            Ok(())
        }

        fn visit(
            &self,
            _: &KeyRange,
            _: bool,
            _: Timestamp,
            _: &mut crate::base::RowVisitor<'_>,
        ) -> Result<ControlFlow<()>, String> {
            Ok(ControlFlow::Continue(()))
        }

        fn checkpoint_at_or_below(&self, _: Timestamp) -> Timestamp {
            Timestamp::ZERO
        }
    }

    /// A panic inside the commit protocol, after the txn installed a merge on one key, aborts
    /// what it installed: before, the merge stayed pending for good, and the next merge into that
    /// key waited for it forever (a panicking committer hung CI this way).
    #[test]
    fn a_panic_inside_a_commit_aborts_what_it_installed() {
        use crate::merge::MergeOp;
        use std::panic::{catch_unwind, AssertUnwindSafe};
        use std::time::Duration;
        // Shared with a detached thread below, so that a hang fails the test instead of
        // hanging it.
        let world = crate::sync::StdArc::new((
            LockFreeStore::new(),
            Clock::new(Timestamp::ZERO),
            Stats::new(),
        ));
        let (store, clock, stats) = (&world.0, &world.1, &world.2);
        let (a, b) = (StoredKey::new(TableId(1), b"a"), StoredKey::new(TableId(1), b"b"));
        let five: Writes =
            [(a.clone(), Op::Put(crate::bytes::Bytes::new(&5i64.to_le_bytes())))].into();
        assert_eq!(store.commit(&ctx(clock, stats, 1, 0, &[]), five), Ok(Timestamp(1)));
        let adds: Writes =
            [(a.clone(), Op::Merge(MergeOp::Add(10))), (b.clone(), Op::Merge(MergeOp::Add(1)))]
                .into_iter()
                .collect();
        let base = PanickingBase;
        let mut with_base = ctx(clock, stats, 2, 1, &[]);
        with_base.base = Some(&base);
        // "a" installs first (key order); "b" has no chain, so its merge asks the base.
        let panicked = catch_unwind(AssertUnwindSafe(|| store.commit(&with_base, adds)));
        assert!(panicked.is_err(), "the base's panic reaches the caller");
        assert_eq!(store.chain_versions(), 1, "the pending merge on a was unlinked");
        let (w, key) = (world.clone(), a.clone());
        let later = std::thread::spawn(move || {
            let one: Writes = [(key, Op::Merge(MergeOp::Add(100)))].into();
            w.0.commit(&ctx(&w.1, &w.2, 3, 1, &[]), one)
        });
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while !later.is_finished() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        let next = later.is_finished().then(|| later.join().expect("the merge thread"));
        assert!(matches!(next, Some(Ok(_))), "a later merge into a (None: hung): {next:?}");
        let now = store.read(a.as_view(), clock.now());
        assert_eq!(now, Lookup::Row(105i64.to_le_bytes().to_vec()), "5 + 100; the 10 aborted");
    }
}
