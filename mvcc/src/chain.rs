//! Version chains: lock-free, newest-first singly linked lists with a CAS on the head.
//!
//! ```text
//!  Chain.head ──► [pending | aborted]? ──► committed(ts=9) ──► committed(ts=5) ──► … ──► null
//!                  (at most one, and only                 (strictly decreasing
//!                   ever at the head)                      commit timestamps)
//! ```
//!
//! Invariants (checked by `debug_assert!` where cheap; argued in docs/design/mvcc.md):
//! 1. Only the head may be uncommitted (pending or aborted): an installer replaces an aborted
//!    head and refuses to install over a pending one, so everything below the head is committed.
//! 2. Below the head, commit timestamps strictly decrease: an installer links over a head that
//!    committed at `t <= read_ts`, and its own timestamp is taken later, so it is `> t`.
//! 3. A version's `payload`, `writer` and the `next` it was published with never change while it
//!    is reachable from the head, except that GC may cut `next` to null below a version that every
//!    snapshot can see (`truncate_below`). `begin` goes once from 0 to the commit timestamp.
//! 4. Every unlinked version is retired exactly once: whoever's CAS or swap removed the last link
//!    to it retires it, through `crossbeam-epoch`, so a reader that loaded a pointer under its
//!    guard never touches freed memory.
//! 5. A chain whose head is a tombstone every snapshot can see may be *sealed* (tag bit on the
//!    head). Nothing is installed on a sealed chain; the key index drops it and writers retry on a
//!    fresh chain. Readers treat a sealed chain as "no row".
//!
//! Concurrency: any number of readers, installers and GC passes at once; no locks. A reader may
//! wait (spin, then yield) only on a version whose writer is publishing (`Committing(lb)` with
//! `lb <= read_ts`), which lasts one `fetch_add` and one store on the writer's side — unless that
//! writer is descheduled in between: the wait is not bounded in time, it lasts until the writer
//! runs again. An installer also waits on a head whose writer is still `Active`, for at most
//! `INSTALL_WAIT_ACTIVE_MAX`, then reports a conflict.

use crate::bytes::Bytes;
use crate::error::MvccError;
use crate::state::{TxnId, TxnState, TxnStatus};
use crate::store::SealRule;
use crate::sync::epoch::{self, Atomic, Guard, Owned, Shared};
use crate::sync::{AtomicU64, Ordering, SpinWait};
use std::cell::Cell;
use std::fmt;

/// Tag bit on `Chain::head` marking a sealed chain (invariant 5).
const SEALED: usize = 1;

/// Tag bit on `Version::writer` marking a version a merge wrote (`merge.rs`). The state word is
/// 8-aligned, so the bit is free; every dereference masks it off (`writer_ptr`).
const MERGE_TAG: usize = 1;

/// Versions inline GC (on the commit path) inspects before giving up and leaving the chain to
/// the background pass. Unbounded, a commit would walk every version newer than the watermark:
/// on an oversubscribed machine a descheduled txn pins the watermark for milliseconds, chains
/// grow to tens of versions, and each commit paid a cache miss per version (measured: 16
/// threads on 2 cores fell to a third of the 2-thread throughput).
pub(crate) const INLINE_GC_STEPS_MAX: usize = 4;

/// Longest an installer waits on a head whose writer is still `Active` (installing its other
/// keys) before it gives up with a conflict. Without the wait, a writer descheduled in the middle
/// of its installs made every other writer of that key fail at once, retry, fail again, and burn
/// through its retry budget (issue #13 §3b: a txn gave up after 64 attempts on 16 threads / 2
/// cores). Waiting cannot deadlock: installs go in one canonical key order, so a waiter holds
/// only keys below the one it waits on, and the writer it waits on waits, if at all, only on
/// keys above it. Readers never wait on an `Active` writer.
#[cfg(not(any(loom, shuttle)))]
pub(crate) const INSTALL_WAIT_ACTIVE_MAX: std::time::Duration = std::time::Duration::from_millis(2);

/// One version of one key.
pub(crate) struct Version {
    /// The commit timestamp once known, 0 while `writer` decides.
    /// Release store in `publish`, Acquire load in `commit_status`.
    begin: AtomicU64,
    /// The writing txn's state word, for versions created pending; null for versions created
    /// already committed (`begin != 0` from the start); its low bit is `MERGE_TAG`. Not reference-counted: the committer
    /// retires the state word through the epoch collector only after every version of its txn
    /// has `begin != 0` (published) or is unlinked (aborted), so any reader that can still see
    /// `begin == 0` is pinned from before that retirement and finds the state allocated. (A
    /// refcount here cost a cache miss on a cold, foreign line per version freed.)
    writer: *const TxnState,
    /// `None` is a tombstone (delete).
    payload: Option<Bytes>,
    next: Atomic<Version>,
    /// The state word of a txn that wrote this version and no other (`pending_alone`):
    /// `writer` then points here, so the word lives exactly as long as the version — no
    /// allocation and no deferred free of its own. Unused (and never read) otherwise.
    alone: TxnState,
}

impl fmt::Debug for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Version")
            .field("begin", &self.begin.load(Ordering::Relaxed))
            .field("pending", &!self.writer.is_null())
            .field("tombstone", &self.payload.is_none())
            .field("merge", &self.is_merge())
            .finish()
    }
}

/// The `alone` field of a version whose state word lives elsewhere (or nowhere).
fn unused() -> TxnState {
    TxnState::new(TxnId(0))
}

/// How one version looks from a snapshot.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Seen {
    /// Committed at this timestamp (may still be above the caller's snapshot).
    Committed(u64),
    /// Its writer is running, or publishing a timestamp above the caller's snapshot.
    Pending,
    /// Its writer aborted: garbage that must be skipped.
    Aborted,
}

#[cfg(feature = "line-count")]
impl Drop for Version {
    fn drop(&mut self) {
        crate::lines::write(crate::lines::Site::Version, self);
    }
}

#[cfg(all(loom, crossbeam_loom))]
impl Drop for Version {
    fn drop(&mut self) {
        crate::sync::freed::mark(self as *const Version as usize);
    }
}

// SAFETY: all shared mutation goes through atomics; `writer` is only read, and points to a
// `TxnState` (itself `Sync`) that outlives every access (see the field's comment).
unsafe impl Send for Version {}
// SAFETY: as above.
unsafe impl Sync for Version {}

impl Version {
    /// A pending version owned by the txn whose state word is `writer`.
    ///
    /// # Safety
    /// `writer` must stay allocated until this version is published (`publish`) or unlinked, and
    /// then until every thread pinned at that moment has unpinned (retire it through the epoch
    /// collector after the last `publish`/unlink of its txn).
    pub(crate) unsafe fn pending(writer: *const TxnState, payload: Option<Bytes>) -> Self {
        debug_assert!(!writer.is_null());
        Version { begin: AtomicU64::new(0), writer, payload, next: Atomic::null(), alone: unused() }
    }

    /// A boxed pending version of txn `id` that writes this one version only: its state word
    /// is the version's own `alone` field (its address is the box's, stable until the version is
    /// freed, which the epoch collector defers past every reader that could see `begin == 0`).
    pub(crate) fn pending_alone(id: TxnId, payload: Option<Bytes>) -> Owned<Version> {
        let mut owned = Version {
            begin: AtomicU64::new(0),
            writer: std::ptr::null(),
            payload,
            next: Atomic::null(),
            alone: TxnState::new(id),
        }
        .boxed();
        owned.writer = &owned.alone;
        owned
    }

    /// The state word of a `pending_alone` version.
    pub(crate) fn own_state(&self) -> &TxnState {
        debug_assert!(std::ptr::eq(self.writer_ptr(), &self.alone), "not a pending_alone version");
        &self.alone
    }

    /// Marks a version not yet installed as a merge's: its payload is computed at install
    /// (`Chain::install_merge`), and merges may link over it after it commits.
    pub(crate) fn set_merge(&mut self) {
        self.writer = self.writer.map_addr(|a| a | MERGE_TAG);
    }

    /// Whether a merge wrote this version.
    pub(crate) fn is_merge(&self) -> bool {
        self.writer.addr() & MERGE_TAG != 0
    }

    /// `writer` without the merge tag.
    fn writer_ptr(&self) -> *const TxnState {
        self.writer.map_addr(|a| a & !MERGE_TAG)
    }

    /// Where the writer stands, without waiting (`None`: running or publishing). For an
    /// installing merge, which waits for a pending merge below it rather than judge it.
    fn settled(&self) -> Option<Seen> {
        self.check_alive();
        // Acquire: pairs with the Release in `publish`.
        let begin = self.begin.load(Ordering::Acquire);
        if begin != 0 {
            return Some(Seen::Committed(begin));
        }
        match self.writer().map(TxnState::status) {
            Some(TxnStatus::Committed { ts }) => Some(Seen::Committed(ts)),
            Some(TxnStatus::Aborted) | None => Some(Seen::Aborted),
            Some(_) => None,
        }
    }

    /// Boxes a version for installation.
    pub(crate) fn boxed(self) -> Owned<Version> {
        let owned = Owned::new(self);
        crate::lines::write(crate::lines::Site::Version, &*owned);
        #[cfg(all(loom, crossbeam_loom))]
        crate::sync::freed::unmark(&*owned as *const Version as usize);
        owned
    }

    /// Use-after-free check of the reclamation model (a no-op otherwise).
    #[inline(always)]
    fn check_alive(&self) {
        #[cfg(all(loom, crossbeam_loom))]
        crate::sync::freed::check(self as *const Version as usize);
    }

    /// Whether this version's writer is still `Active` (installing; not yet publishing).
    fn writer_active(&self) -> bool {
        // Acquire: pairs with the Release in `publish`.
        self.begin.load(Ordering::Acquire) == 0
            && matches!(self.writer().map(TxnState::status), Some(TxnStatus::Active))
    }

    /// The writer's state word, while the version may still be unpublished.
    fn writer(&self) -> Option<&TxnState> {
        // SAFETY: `pending`'s contract: the state outlives every reader that can observe
        // `begin == 0`, and callers only ask after observing `begin == 0` under a guard.
        unsafe { self.writer_ptr().as_ref() }
    }

    /// A version committed at `ts` from birth (tests; recovery will use it).
    #[cfg(all(test, not(any(loom, shuttle))))]
    pub(crate) fn committed(ts: u64, payload: Option<Bytes>) -> Self {
        debug_assert!(ts > 0, "timestamp 0 is never a commit");
        Version {
            begin: AtomicU64::new(ts),
            writer: std::ptr::null(),
            payload,
            next: Atomic::null(),
            alone: unused(),
        }
    }

    pub(crate) fn payload(&self) -> Option<&[u8]> {
        self.payload.as_ref().map(Bytes::as_slice)
    }

    /// Records the commit timestamp in the version itself, so later readers skip the state word.
    /// Release: pairs with the Acquire in `seen_by`/`committed_ts`.
    pub(crate) fn publish(&self, ts: u64) {
        debug_assert!(
            !crate::sync::DEBUG_LOADS || self.begin.load(Ordering::Relaxed) == 0,
            "version published twice"
        );
        crate::lines::write(crate::lines::Site::VersionStamp, &self.begin);
        self.begin.store(ts, Ordering::Release);
    }

    /// The commit timestamp if the writer has finished committing; never waits.
    pub(crate) fn committed_ts(&self) -> Option<u64> {
        self.check_alive();
        // Acquire: pairs with the Release in `publish`.
        let begin = self.begin.load(Ordering::Acquire);
        if begin != 0 {
            return Some(begin);
        }
        match self.writer().map(TxnState::status) {
            Some(TxnStatus::Committed { ts }) => Some(ts),
            _ => None,
        }
    }

    /// How this version looks from a snapshot at `read_ts`. Waits only while the writer is
    /// publishing a timestamp that may be `<= read_ts` (the `lb` bound lets older snapshots skip
    /// it at once) — the one wait INVARIANTS §3.2 allows.
    pub(crate) fn seen_by(&self, read_ts: u64) -> Seen {
        self.check_alive();
        // Acquire: pairs with the Release in `publish`.
        let begin = self.begin.load(Ordering::Acquire);
        if begin != 0 {
            return Seen::Committed(begin);
        }
        let Some(writer) = self.writer() else {
            debug_assert!(false, "a version with begin 0 always has a writer");
            return Seen::Aborted;
        };
        let mut wait = SpinWait::default();
        loop {
            match writer.status() {
                TxnStatus::Active => return Seen::Pending,
                TxnStatus::Aborted => return Seen::Aborted,
                TxnStatus::Committed { ts } => return Seen::Committed(ts),
                TxnStatus::Committing { lb } if lb > read_ts => return Seen::Pending,
                // A serializable committer checking its reads: its timestamp is known, so only
                // snapshots at or above it wait for the verdict.
                TxnStatus::Validating { ts } if ts > read_ts => return Seen::Pending,
                #[cfg(any(loom, shuttle))]
                TxnStatus::Committing { .. }
                    if crate::canary::active(crate::canary::Canary::CommittingInvisible) =>
                {
                    return Seen::Pending
                }
                #[cfg(any(loom, shuttle))]
                TxnStatus::Validating { .. }
                    if crate::canary::active(crate::canary::Canary::ValidatingInvisible) =>
                {
                    return Seen::Pending
                }
                TxnStatus::Committing { .. } | TxnStatus::Validating { .. } => wait.wait(),
            }
        }
    }
}

/// An installer's bounded wait on an `Active` head (`INSTALL_WAIT_ACTIVE_MAX`), taken by the
/// commit protocol with no lock held (the key index's shard lock included: waiting under it
/// stalled the very writer being waited on when it needed that shard's write lock). Under loom and
/// shuttle the bound is `ACTIVE_WAIT_MODEL_STEPS` yields instead of a time (an unbounded wait
/// made shuttle's DFS of `kernel_same_key` run out of memory). The `WriterSkipsActive` canary
/// skips the wait, so it reaches the broken branch.
pub(crate) struct ActiveWait {
    spin: SpinWait,
    #[cfg(not(any(loom, shuttle)))]
    deadline: Option<std::time::Instant>,
    #[cfg(any(loom, shuttle))]
    steps: u32,
}

/// Yields an installer may spend on one `Active` head in the models: one under loom (both
/// outcomes of the wait are explored). Shuttle does not wait at all (`ActiveWait::skipped`): its
/// DFS of `kernel_same_key` grew past 8 GiB of memory with the wait in (the extra status loads
/// and yield multiply its schedules), so shuttle checks the protocol without the wait — a
/// conflict at once, as before it — and loom checks the wait.
#[cfg(any(loom, shuttle))]
const ACTIVE_WAIT_MODEL_STEPS: u32 = 1;

impl ActiveWait {
    pub(crate) fn new() -> Self {
        ActiveWait {
            spin: SpinWait::default(),
            #[cfg(not(any(loom, shuttle)))]
            deadline: None,
            #[cfg(any(loom, shuttle))]
            steps: 0,
        }
    }

    /// Whether installers skip the wait altogether: under shuttle (see
    /// `ACTIVE_WAIT_MODEL_STEPS`), and with the `WriterSkipsActive` canary.
    fn skipped() -> bool {
        #[cfg(shuttle)]
        return true;
        #[cfg(loom)]
        if crate::canary::active(crate::canary::Canary::WriterSkipsActive) {
            return true;
        }
        #[cfg(not(shuttle))]
        false
    }

    /// Waits until `head`'s writer is no longer `Active` (true: judge it again) or the wait is
    /// used up (false: a conflict).
    pub(crate) fn until_resolved(&mut self, head: &Version) -> bool {
        while head.writer_active() {
            if !self.again() {
                return false;
            }
        }
        true
    }

    /// Waits one step and returns true, or returns false once the wait is used up.
    fn again(&mut self) -> bool {
        #[cfg(any(loom, shuttle))]
        if self.steps >= ACTIVE_WAIT_MODEL_STEPS {
            return false;
        }
        #[cfg(any(loom, shuttle))]
        {
            self.steps += 1;
        }
        #[cfg(not(any(loom, shuttle)))]
        {
            let now = std::time::Instant::now();
            let deadline = *self.deadline.get_or_insert(now + INSTALL_WAIT_ACTIVE_MAX);
            if now >= deadline {
                return false;
            }
        }
        self.spin.wait();
        true
    }
}

/// Why an install failed.
#[derive(Debug)]
pub(crate) enum InstallError<'g> {
    /// First-committer-wins: the head committed after the installer's snapshot (`Some(ts)`), or
    /// is owned by a txn that is running or publishing past the snapshot (`None`).
    Conflict { committed_ts: Option<u64> },
    /// The chain was sealed: the caller must fetch a fresh chain; the version comes back.
    Sealed(Owned<Version>),
    /// The head's writer is still `Active` (installing its other keys): the caller may wait for
    /// it with no lock held (`ActiveWait`) and retry; the version comes back.
    Active { version: Owned<Version>, head: Shared<'g, Version> },
    /// A merge met a pending merge at the head: the caller waits, with no lock held, until
    /// that writer commits or aborts (`Chain::until_settled`) and retries; merges never
    /// conflict with each other. The version comes back.
    Settling { version: Owned<Version>, head: Shared<'g, Version> },
    /// A merge could not compute its value (`MvccError::Merge`, or the base could not be read).
    Failed(MvccError),
}

/// What an installing merge needs besides its version: its operator applied to a value in the
/// chain, and to the key's row in the base (for a chain with no version).
pub(crate) struct Merging<'a> {
    pub(crate) on_value: &'a MergeFn<'a>,
    pub(crate) on_base: &'a dyn Fn() -> Result<Bytes, MvccError>,
    /// The newest version an earlier attempt of this install found to be a merge with every
    /// version below it, down to the snapshot, a merge too (null: none yet). A retry checks only
    /// what was linked above it since. Without this, every retry walked all the merges committed
    /// since the snapshot: a txn whose snapshot had aged walked longer, so lost every race for
    /// the head, so aged further (measured: txns starved for seconds, and their snapshots held
    /// back GC). Compared by address only; the installer stays pinned across its retries, so the
    /// version cannot be freed and its address reused meanwhile.
    pub(crate) verified: Cell<*const Version>,
}

impl<'a> Merging<'a> {
    pub(crate) fn new(
        on_value: &'a MergeFn<'a>,
        on_base: &'a dyn Fn() -> Result<Bytes, MvccError>,
    ) -> Self {
        Merging { on_value, on_base, verified: Cell::new(std::ptr::null()) }
    }
}

/// A merge's operator applied to a value (`None`: absent or deleted).
pub(crate) type MergeFn<'a> = dyn Fn(Option<&[u8]>) -> Result<Bytes, MvccError> + 'a;

/// What a snapshot read found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ReadOutcome<'g> {
    /// The visible version's payload (`None` = tombstone).
    Found(Option<&'g [u8]>),
    /// No version is visible (or the chain is sealed).
    Absent,
}

/// A version chain: the head pointer of a lock-free newest-first list.
pub(crate) struct Chain {
    head: Atomic<Version>,
}

impl fmt::Debug for Chain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Chain").finish_non_exhaustive()
    }
}

impl Default for Chain {
    fn default() -> Self {
        Chain::new()
    }
}

impl Chain {
    pub(crate) fn new() -> Self {
        Chain { head: Atomic::null() }
    }

    /// Whether GC sealed this chain (writers must use a fresh one).
    pub(crate) fn is_sealed(&self, guard: &Guard) -> bool {
        // Acquire: pairs with the AcqRel CAS in `try_seal`.
        self.head.load(Ordering::Acquire, guard).tag() == SEALED
    }

    /// The version a snapshot at `read_ts` sees: the newest committed at or below `read_ts`.
    pub(crate) fn read<'g>(&self, read_ts: u64, guard: &'g Guard) -> ReadOutcome<'g> {
        // Acquire: pairs with the Release CAS in `install`, so the version's fields are visible.
        let head = self.head.load(Ordering::Acquire, guard);
        if head.tag() == SEALED {
            return ReadOutcome::Absent;
        }
        let mut cur = head;
        // SAFETY: `cur` was loaded under `guard`; versions are retired through the epoch
        // collector only after being unlinked, so they stay allocated while `guard` is pinned.
        while let Some(version) = unsafe { cur.as_ref() } {
            if let Seen::Committed(ts) = version.seen_by(read_ts) {
                if ts <= read_ts {
                    return ReadOutcome::Found(version.payload());
                }
            }
            // Acquire: pairs with the Release CAS that published `next`'s target.
            cur = version.next.load(Ordering::Acquire, guard);
        }
        ReadOutcome::Absent
    }

    /// The newest version a snapshot at `read_ts` sees, with its commit timestamp (`None`
    /// inside: a delete), or `None` if it sees none. Waits as `read` does.
    pub(crate) fn newest_at<'g>(
        &self,
        read_ts: u64,
        guard: &'g Guard,
    ) -> Option<(u64, Option<&'g [u8]>)> {
        // Acquire: pairs with the Release CAS in `install`.
        let head = self.head.load(Ordering::Acquire, guard);
        if head.tag() == SEALED {
            return None;
        }
        let mut cur = head;
        // SAFETY: as in `read`: loaded under `guard`, retired only after being unlinked.
        while let Some(version) = unsafe { cur.as_ref() } {
            if let Seen::Committed(ts) = version.seen_by(read_ts) {
                if ts <= read_ts {
                    return Some((ts, version.payload()));
                }
            }
            // Acquire: pairs with the Release CAS that published `next`'s target.
            cur = version.next.load(Ordering::Acquire, guard);
        }
        None
    }

    /// Serializable validation of one key that a txn with snapshot `read_ts` read (or could have
    /// read, inside a scanned range) and that commits at `commit_ts`: `Ok` if no other txn
    /// committed a version of it in `(read_ts, commit_ts)`, else `Err(that timestamp)`.
    ///
    /// Looks at the chain as a snapshot at `commit_ts - 1` would (`seen_by`): a version whose
    /// writer is publishing or validating a timestamp that may be below `commit_ts` is waited on.
    /// That cannot deadlock: a validator waits only for timestamps smaller than its own (or for a
    /// `Committing` writer, which is between two stores and waits for nothing). Versions of the
    /// validating txn itself (`own`, still unpublished) are skipped.
    pub(crate) fn validate(
        &self,
        read_ts: u64,
        commit_ts: u64,
        own: *const TxnState,
        guard: &Guard,
    ) -> Result<(), u64> {
        debug_assert!(commit_ts > read_ts);
        // Acquire: pairs with the Release CAS in `install`.
        let head = self.head.load(Ordering::Acquire, guard);
        if head.tag() == SEALED {
            // Sealed: its head is a tombstone at or below the watermark, so at or below read_ts.
            return Ok(());
        }
        let mut cur = head;
        // SAFETY: loaded under `guard` (see `read`).
        while let Some(version) = unsafe { cur.as_ref() } {
            // Our own versions are unpublished (`begin == 0`) until we finish; only then is the
            // `writer` pointer of a version meaningful to compare (a published version's state
            // word may be freed and its address reused).
            // Acquire: pairs with the Release in `publish`.
            let own_version = version.begin.load(Ordering::Acquire) == 0
                && std::ptr::eq(version.writer_ptr(), own);
            if !own_version {
                match version.seen_by(commit_ts - 1) {
                    Seen::Committed(ts) if ts <= read_ts => return Ok(()),
                    Seen::Committed(ts) if ts < commit_ts => return Err(ts),
                    _ => {}
                }
            }
            // Acquire: pairs with the Release CAS that published `next`'s target.
            cur = version.next.load(Ordering::Acquire, guard);
        }
        Ok(())
    }

    /// First-committer-wins for a version an installer with snapshot `read_ts` is about to link
    /// over, given how it looks from that snapshot (`Version::seen_by`): `Ok` if it committed at
    /// or below `read_ts`; a conflict if it committed later or its writer is running or
    /// publishing past the snapshot (INVARIANTS §3.4). An aborted version is never linked over
    /// (`install` replaces it instead), so it is never admitted here.
    fn admits_over<'g>(seen: Seen, read_ts: u64) -> Result<(), InstallError<'g>> {
        match seen {
            Seen::Committed(ts) if ts <= read_ts => Ok(()),
            #[cfg(any(loom, shuttle))]
            Seen::Committed(ts)
                if ts == read_ts + 1
                    && crate::canary::active(crate::canary::Canary::ValidationOffByOne) =>
            {
                Ok(())
            }
            Seen::Committed(ts) => Err(InstallError::Conflict { committed_ts: Some(ts) }),
            #[cfg(any(loom, shuttle))]
            Seen::Pending if crate::canary::active(crate::canary::Canary::WriterSkipsActive) => {
                Ok(())
            }
            Seen::Pending => Err(InstallError::Conflict { committed_ts: None }),
            Seen::Aborted => {
                debug_assert!(false, "an aborted version below the head (chain invariant 1)");
                Err(InstallError::Conflict { committed_ts: None })
            }
        }
    }

    /// Installs `version` as the new head if the current head allows it for a txn whose snapshot
    /// is `read_ts` (INVARIANTS §3: first committer wins, no spurious conflicts). Replaces an aborted
    /// head, retiring it. Returns the installed pointer.
    pub(crate) fn install<'g>(
        &self,
        mut version: Owned<Version>,
        read_ts: u64,
        guard: &'g Guard,
    ) -> Result<Shared<'g, Version>, InstallError<'g>> {
        loop {
            // Acquire: pairs with the Release CAS of the previous installer.
            let head = self.head.load(Ordering::Acquire, guard);
            if head.tag() == SEALED {
                return Err(InstallError::Sealed(version));
            }
            // SAFETY: loaded under `guard` (see `read`).
            let (next, replaces_aborted) = match unsafe { head.as_ref() } {
                None => (Shared::null(), false),
                Some(h) => match h.seen_by(read_ts) {
                    Seen::Aborted => {
                        // Acquire: `h.next` was published by the CAS that installed `h`.
                        let below = h.next.load(Ordering::Acquire, guard);
                        // The aborted head hides the version below it, which may have committed
                        // after our snapshot (its writer linked `h`'s writer over it, with a
                        // newer snapshot). Replacing `h` links us over `below`, so `below` must
                        // pass first-committer-wins exactly as a head would (docs/design/
                        // lost-update-2026-11.md: skipping this check lost updates under load).
                        #[cfg(any(loom, shuttle, strata_canary))]
                        let check_below =
                            !crate::canary::active(crate::canary::Canary::AbortedHeadUnchecked);
                        #[cfg(not(any(loom, shuttle, strata_canary)))]
                        let check_below = true;
                        if check_below {
                            // SAFETY: loaded under `guard` (see `read`).
                            if let Some(b) = unsafe { below.as_ref() } {
                                Chain::admits_over(b.seen_by(read_ts), read_ts)?;
                            }
                        }
                        (below, true)
                    }
                    // A writer still installing its other keys: the caller waits (bounded, and
                    // without any lock: `ActiveWait`) for its verdict and retries, rather than
                    // failing at once (`INSTALL_WAIT_ACTIVE_MAX`).
                    Seen::Pending if !ActiveWait::skipped() && h.writer_active() => {
                        return Err(InstallError::Active { version, head });
                    }
                    seen => {
                        Chain::admits_over(seen, read_ts)?;
                        (head, false)
                    }
                },
            };
            match self.link(head, version, next, replaces_aborted, guard) {
                Ok(installed) => return Ok(installed),
                Err(back) => version = back,
            }
        }
    }

    /// Links `version` over `next` by a CAS of the head from `head` (an installer's last step),
    /// retiring `head` if it is an aborted version being replaced. The version comes back if
    /// the head moved.
    fn link<'g>(
        &self,
        head: Shared<'g, Version>,
        version: Owned<Version>,
        next: Shared<'g, Version>,
        replaces_aborted: bool,
        guard: &'g Guard,
    ) -> Result<Shared<'g, Version>, Owned<Version>> {
        // Relaxed: published by the Release CAS below.
        version.next.store(next, Ordering::Relaxed);
        crate::lines::write(crate::lines::Site::ChainLink, &self.head);
        // Release on success: pairs with the Acquire head loads in `read`/`install`.
        // Acquire on failure: the installer's next attempt dereferences the new head.
        match self.head.compare_exchange(head, version, Ordering::Release, Ordering::Acquire, guard)
        {
            Ok(installed) => {
                if replaces_aborted {
                    // SAFETY: our CAS removed the only link to the aborted head (invariant 1:
                    // nothing is ever linked below an uncommitted version), so we retire it
                    // exactly once; readers that loaded it are pinned.
                    unsafe { guard.defer_destroy(head) };
                }
                Ok(installed)
            }
            Err(err) => Err(err.new),
        }
    }

    /// Installs a merge's `version` (`Version::set_merge`) as the new head, its payload the merge
    /// applied to the newest committed version below it (`merge.rs`). First committer wins
    /// against puts and deletes: every version committed after the snapshot `read_ts` that it
    /// links over must be a merge, else a conflict. A pending merge at the head is waited for
    /// (`InstallError::Settling`), never judged by a snapshot, so the chain keeps invariants 1
    /// and 2 and every version holds a whole value. A pending put or delete is judged as
    /// `install` judges it. An aborted head is replaced as `install` replaces it.
    pub(crate) fn install_merge<'g>(
        &self,
        mut version: Owned<Version>,
        read_ts: u64,
        merging: &Merging<'_>,
        guard: &'g Guard,
    ) -> Result<Shared<'g, Version>, InstallError<'g>> {
        debug_assert!(version.is_merge());
        loop {
            // Acquire: pairs with the Release CAS of the previous installer.
            let head = self.head.load(Ordering::Acquire, guard);
            if head.tag() == SEALED {
                return Err(InstallError::Sealed(version));
            }
            // `top`: the newest committed version (null: none), whose value we merge into and
            // which we link over (below an aborted head we replace).
            // SAFETY: loaded under `guard` (see `read`).
            let (top, replaces_aborted) = match unsafe { head.as_ref() } {
                None => (head, false),
                Some(h) => match h.settled() {
                    // Acquire: `h.next` was published by the CAS that installed `h`.
                    Some(Seen::Aborted) => (h.next.load(Ordering::Acquire, guard), true),
                    Some(_) => (head, false),
                    None if h.is_merge() => return Err(InstallError::Settling { version, head }),
                    None if !ActiveWait::skipped() && h.writer_active() => {
                        return Err(InstallError::Active { version, head });
                    }
                    // A put or delete publishing: judged by the snapshot as `install` does.
                    None => match h.seen_by(read_ts) {
                        // Its writer aborted since `settled` looked, or while `seen_by` waited
                        // for its verdict (a serializable validation that failed): the next pass
                        // replaces it. Judging it here tripped the invariant-1 assertion in
                        // checked builds (it hung CI: the panicking committer left its other
                        // merges pending) and failed the merge in release builds, over a put
                        // that never committed (loom model 9, `merge_over_a_failed_validation`).
                        Seen::Aborted => continue,
                        seen => {
                            Chain::admits_over(seen, read_ts)?;
                            (head, false)
                        }
                    },
                },
            };
            // First committer wins against puts and deletes committed after the snapshot: every
            // version down to the snapshot must be a merge's (down to `verified`: checked before).
            let mut cur = top;
            #[cfg(any(loom, shuttle, strata_canary))]
            let mut visible = Shared::null();
            // SAFETY: loaded under `guard` (see `read`); below the head all are committed.
            while let Some(v) = unsafe { cur.as_ref() } {
                #[cfg(any(loom, shuttle, strata_canary))]
                let checked = std::ptr::eq(v, merging.verified.get())
                    && !crate::canary::active(crate::canary::Canary::MergeOnSnapshot);
                #[cfg(not(any(loom, shuttle, strata_canary)))]
                let checked = std::ptr::eq(v, merging.verified.get());
                if checked {
                    break;
                }
                match v.committed_ts() {
                    Some(ts) if ts <= read_ts => {
                        #[cfg(any(loom, shuttle, strata_canary))]
                        {
                            visible = cur;
                        }
                        break;
                    }
                    Some(_) if v.is_merge() => {}
                    #[cfg(any(loom, shuttle, strata_canary))]
                    Some(_) if crate::canary::active(crate::canary::Canary::MergeOverPut) => {}
                    committed_ts => return Err(InstallError::Conflict { committed_ts }),
                }
                // Acquire: pairs with the Release CAS that published `next`'s target.
                cur = v.next.load(Ordering::Acquire, guard);
            }
            merging.verified.set(top.as_raw());
            // The broken variant: merge into what the snapshot saw, not the newest value.
            #[cfg(any(loom, shuttle, strata_canary))]
            let source = match crate::canary::active(crate::canary::Canary::MergeOnSnapshot) {
                true => visible,
                false => top,
            };
            #[cfg(not(any(loom, shuttle, strata_canary)))]
            let source = top;
            // SAFETY: loaded under `guard`.
            let value = match unsafe { source.as_ref() } {
                Some(v) => (merging.on_value)(v.payload()),
                None => (merging.on_base)(),
            };
            version.payload = Some(value.map_err(InstallError::Failed)?);
            match self.link(head, version, top, replaces_aborted, guard) {
                Ok(installed) => return Ok(installed),
                Err(back) => version = back,
            }
        }
    }

    /// Waits, with no lock held, until `head`'s writer has committed or aborted (an installing
    /// merge that met a pending merge: `InstallError::Settling`). That writer is installing
    /// keys after this one in the canonical key order, or publishing, so the wait cannot
    /// deadlock; it lasts until that writer runs again, as a reader's wait on a publisher does.
    pub(crate) fn until_settled(head: &Version) {
        let mut wait = SpinWait::default();
        while head.settled().is_none() {
            wait.wait();
        }
    }

    /// Removes the caller's own aborted version from the head, if it is still there (an installer
    /// may already have replaced it). Returns whether this call retired it.
    pub(crate) fn unlink_aborted(&self, version: Shared<'_, Version>, guard: &Guard) -> bool {
        // SAFETY: the caller installed `version` and is still pinned, so it is not yet freed.
        let v = unsafe { version.deref() };
        debug_assert!(
            !crate::sync::DEBUG_LOADS || v.seen_by(0) == Seen::Aborted,
            "only aborted versions are unlinked"
        );
        // Acquire: `next` was published by our own install CAS (same thread), kept for clarity.
        let next = v.next.load(Ordering::Acquire, guard);
        crate::lines::write(crate::lines::Site::ChainLink, &self.head);
        // Release/Acquire: same pairing as `install`.
        let unlinked = self
            .head
            .compare_exchange(version, next, Ordering::Release, Ordering::Acquire, guard)
            .is_ok();
        if unlinked {
            // SAFETY: our CAS removed the only link to `version`; retired once (invariant 4).
            unsafe { guard.defer_destroy(version) };
        }
        unlinked
    }

    /// GC from `start` (the head, or a version the caller just published): finds the first
    /// version that committed at or below `watermark` — the newest every snapshot can see — and
    /// cuts everything older. Gives up after inspecting `steps_max` versions. Returns how many
    /// versions were retired.
    pub(crate) fn truncate_below<'g>(
        start: Shared<'g, Version>,
        watermark: u64,
        steps_max: usize,
        guard: &'g Guard,
    ) -> u64 {
        Chain::cut_below(start, watermark, steps_max, guard).retired
    }

    /// `truncate_below`, also saying how deep the cut was.
    pub(crate) fn cut_below<'g>(
        start: Shared<'g, Version>,
        watermark: u64,
        steps_max: usize,
        guard: &'g Guard,
    ) -> Cut {
        let mut cur = start.with_tag(0);
        let mut steps = 0;
        // SAFETY: loaded under `guard` (see `read`).
        while let Some(v) = unsafe { cur.as_ref() } {
            steps += 1;
            if steps > steps_max {
                return Cut { retired: 0, depth: None };
            }
            match v.committed_ts() {
                Some(ts) if ts <= watermark => {
                    let depth = Some(steps);
                    // Nothing below: skip the RMW (a full GC pass visits every chain).
                    if v.next.load(Ordering::Relaxed, guard).is_null() {
                        return Cut { retired: 0, depth };
                    }
                    // AcqRel: Acquire to read the tail we take over, Release so a racing GC that
                    // swaps the same link sees null (only one of us gets the tail).
                    crate::lines::write(crate::lines::Site::ChainLink, &v.next);
                    let tail = v.next.swap(Shared::null(), Ordering::AcqRel, guard);
                    return Cut { retired: retire_list(tail, guard), depth };
                }
                _ => cur = v.next.load(Ordering::Acquire, guard),
            }
        }
        Cut { retired: 0, depth: Some(steps) }
    }

    /// GC: cuts old versions below the newest one every snapshot (all `>= watermark`) can see.
    pub(crate) fn collect(&self, watermark: u64, guard: &Guard) -> u64 {
        // Acquire: pairs with the Release CAS in `install`.
        let head = self.head.load(Ordering::Acquire, guard);
        if head.tag() == SEALED {
            return 0;
        }
        Chain::truncate_below(head, watermark, usize::MAX, guard)
    }

    /// Seals the chain if `rule` allows (`SealRule`: without a base, its head is a tombstone
    /// that committed at or below the watermark, so no snapshot can see any row here; with one,
    /// its head committed at or below a checkpoint every snapshot reads the base of). Retires
    /// the whole list. Returns the count retired, or `None` if the chain was not sealed.
    pub(crate) fn try_seal(&self, rule: SealRule, guard: &Guard) -> Option<u64> {
        // Acquire: pairs with the Release CAS in `install`.
        let head = self.head.load(Ordering::Acquire, guard);
        if head.tag() == SEALED {
            return None;
        }
        // SAFETY: loaded under `guard`.
        let h = unsafe { head.as_ref() }?;
        let sealable = match (rule, h.committed_ts()) {
            (_, None) => false,
            (SealRule::Tombstones { watermark }, Some(ts)) => {
                h.payload.is_none() && ts <= watermark
            }
            (SealRule::Checkpointed { upto }, Some(ts)) => ts <= upto,
        };
        if !sealable {
            return None;
        }
        crate::lines::write(crate::lines::Site::ChainLink, &self.head);
        // AcqRel: Release so installers that see the tag see a settled chain; Acquire to own it.
        self.head
            .compare_exchange(
                head,
                head.with_tag(SEALED),
                Ordering::AcqRel,
                Ordering::Relaxed,
                guard,
            )
            .ok()?;
        // The head stays reachable only as a tagged pointer nobody dereferences; take its tail
        // (racing truncations are settled by the swap) and retire the head itself.
        let tail = h.next.swap(Shared::null(), Ordering::AcqRel, guard);
        let retired = retire_list(tail, guard);
        // SAFETY: sealing removed the last dereferenceable link to the head; retired once.
        unsafe { guard.defer_destroy(head) };
        Some(retired + 1)
    }

    /// Length of the chain as seen now (tests).
    #[cfg(all(test, not(any(loom, shuttle))))]
    pub(crate) fn len(&self, guard: &Guard) -> usize {
        let head = self.head.load(Ordering::Acquire, guard);
        if head.tag() == SEALED {
            return 0;
        }
        let mut n = 0;
        let mut cur = head;
        // SAFETY: loaded under `guard`.
        while let Some(v) = unsafe { cur.as_ref() } {
            n += 1;
            cur = v.next.load(Ordering::Acquire, guard);
        }
        n
    }
}

/// What `Chain::cut_below` did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Cut {
    /// Versions retired.
    pub(crate) retired: u64,
    /// Versions inspected to find where to cut (or the end of the chain); `None`: it gave up.
    pub(crate) depth: Option<usize>,
}

/// Retires a detached list: for each node, takes its `next` by swap (so a racing truncation of
/// the same list gets null) and defers its destruction. Returns the count.
fn retire_list<'g>(mut cur: Shared<'g, Version>, guard: &'g Guard) -> u64 {
    let mut n = 0;
    while !cur.is_null() {
        // SAFETY: `cur` came from a swap that detached it (we own the link to it); it is still
        // allocated because it has not been retired yet and we are pinned.
        let v = unsafe { cur.deref() };
        let next = v.next.swap(Shared::null(), Ordering::AcqRel, guard);
        #[cfg(all(loom, crossbeam_loom))]
        if crate::canary::active(crate::canary::Canary::FreeImmediately) {
            // SAFETY: none — this is the deliberately broken variant the reclamation model must
            // catch (a pinned reader may still hold `cur`).
            drop(unsafe { cur.into_owned() });
            n += 1;
            cur = next;
            continue;
        }
        // SAFETY: the link we took was the only one to `cur` (invariant 4): retired exactly once.
        unsafe { guard.defer_destroy(cur) };
        n += 1;
        cur = next;
    }
    n
}

impl Chain {
    /// Frees every version now, without the epoch. For a store being dropped: no txn and no GC
    /// pass can be running (each holds the store alive), so no thread holds a pointer into it.
    /// Deferring instead queued one destructor per version of the whole database on the global
    /// collector, which later callers then paid for (measured: a benchmark run after dropping a
    /// 1M-key database lost ~40% throughput).
    ///
    /// # Safety
    /// No thread may hold a pointer into this chain's versions (loaded under a guard that is
    /// still pinned), and none may load one later: `&mut self` excludes other users of the
    /// `Chain`, but not a committer or reader that loaded a version pointer earlier and is still
    /// pinned. The store's `Drop` satisfies this (every txn, iterator and GC pass holds the store
    /// alive).
    #[cfg_attr(any(loom, shuttle), allow(dead_code))]
    pub(crate) unsafe fn free_now(&mut self) {
        // SAFETY: the caller's contract above: nothing else can reach this chain's versions.
        let guard = unsafe { epoch::unprotected() };
        let mut cur = self.head.swap(Shared::null(), Ordering::Relaxed, guard);
        if cur.tag() == SEALED {
            return; // already retired by `try_seal`
        }
        while !cur.is_null() {
            // SAFETY: exclusively owned (see above); each node is freed once as we walk past it.
            let owned = unsafe { cur.into_owned() };
            cur = owned.next.load(Ordering::Relaxed, guard);
            drop(owned);
        }
    }
}

impl Drop for Chain {
    fn drop(&mut self) {
        // A dropped chain may still be referenced by a committer that installed into it and then
        // lost the key-index entry (table purge): defer, never free in place.
        let guard = epoch::pin();
        let head = self.head.swap(Shared::null(), Ordering::AcqRel, &guard);
        if head.tag() == SEALED {
            return; // already retired by `try_seal`
        }
        let n = retire_list(head, &guard);
        if n > 64 {
            guard.flush();
        }
    }
}

#[cfg(all(test, not(any(loom, shuttle))))]
mod tests {
    use super::*;
    use crate::state::TxnId;

    fn committed(chain: &Chain, ts: u64, val: &[u8], guard: &Guard) {
        let v = Owned::new(Version::committed(ts, Some(Bytes::new(val))));
        chain.install(v, u64::MAX >> 2, guard).expect("install over committed head");
    }

    #[test]
    fn reads_pick_newest_visible() {
        let guard = crossbeam_epoch::pin();
        let chain = Chain::new();
        assert_eq!(chain.read(10, &guard), ReadOutcome::Absent);
        committed(&chain, 2, b"a", &guard);
        committed(&chain, 5, b"b", &guard);
        assert_eq!(chain.read(1, &guard), ReadOutcome::Absent);
        assert_eq!(chain.read(2, &guard), ReadOutcome::Found(Some(&b"a"[..])));
        assert_eq!(chain.read(4, &guard), ReadOutcome::Found(Some(&b"a"[..])));
        assert_eq!(chain.read(5, &guard), ReadOutcome::Found(Some(&b"b"[..])));
    }

    #[test]
    fn pending_head_conflicts_and_is_invisible() {
        let guard = crossbeam_epoch::pin();
        let chain = Chain::new();
        committed(&chain, 1, b"a", &guard);
        let w = TxnState::new(TxnId(1));
        let p = chain
            .install(
                Owned::new(
                    // SAFETY: `w` outlives the chain's use of it in this test (no reads after it drops).
                    unsafe { Version::pending(&w, Some(Bytes::new(b"x"))) },
                ),
                1,
                &guard,
            )
            .expect("install");
        assert_eq!(chain.read(100, &guard), ReadOutcome::Found(Some(&b"a"[..])));
        // An installer meeting an `Active` head is told to wait (with no lock held) and retry.
        let other = Owned::new(Version::committed(3, None));
        assert!(matches!(chain.install(other, 5, &guard), Err(InstallError::Active { .. })));
        // Committing above the snapshot is skipped without waiting, and conflicts.
        w.set(TxnStatus::Committing { lb: 7 });
        assert_eq!(chain.read(6, &guard), ReadOutcome::Found(Some(&b"a"[..])));
        w.set(TxnStatus::Committed { ts: 7 });
        assert_eq!(chain.read(7, &guard), ReadOutcome::Found(Some(&b"x"[..])));
        // SAFETY: test owns p; still pinned.
        unsafe { p.deref() }.publish(7);
        let stale = Owned::new(Version::committed(9, None));
        assert!(matches!(
            chain.install(stale, 6, &guard),
            Err(InstallError::Conflict { committed_ts: Some(7) })
        ));
    }

    #[test]
    fn aborted_head_is_replaced_or_unlinked() {
        let guard = crossbeam_epoch::pin();
        let chain = Chain::new();
        committed(&chain, 1, b"a", &guard);
        let w = TxnState::new(TxnId(1));
        let p = chain
            .install(
                Owned::new(
                    // SAFETY: `w` outlives the chain's use of it in this test (no reads after it drops).
                    unsafe { Version::pending(&w, None) },
                ),
                1,
                &guard,
            )
            .expect("install");
        w.set(TxnStatus::Aborted);
        assert_eq!(chain.read(9, &guard), ReadOutcome::Found(Some(&b"a"[..])));
        assert!(chain.unlink_aborted(p, &guard));
        assert_eq!(chain.len(&guard), 1);

        let w2 = TxnState::new(TxnId(2));
        chain
            .install(
                Owned::new(
                    // SAFETY: `w2` outlives the chain's use of it in this test (no reads after it drops).
                    unsafe { Version::pending(&w2, None) },
                ),
                1,
                &guard,
            )
            .expect("install");
        w2.set(TxnStatus::Aborted);
        committed(&chain, 4, b"c", &guard);
        assert_eq!(chain.len(&guard), 2, "the aborted head was replaced, not buried");
    }

    #[test]
    fn truncate_keeps_newest_visible_at_watermark() {
        let guard = crossbeam_epoch::pin();
        let chain = Chain::new();
        for ts in 1..=10 {
            committed(&chain, ts, &ts.to_le_bytes(), &guard);
        }
        assert_eq!(chain.collect(6, &guard), 5);
        assert_eq!(chain.len(&guard), 5);
        assert_eq!(chain.read(6, &guard), ReadOutcome::Found(Some(&6u64.to_le_bytes()[..])));
        assert_eq!(chain.read(5, &guard), ReadOutcome::Absent, "below the watermark is gone");
        assert_eq!(chain.collect(6, &guard), 0, "idempotent");
    }

    #[test]
    fn seal_only_a_visible_tombstone() {
        let guard = crossbeam_epoch::pin();
        let chain = Chain::new();
        committed(&chain, 1, b"a", &guard);
        assert!(
            chain.try_seal(SealRule::Tombstones { watermark: 5 }, &guard).is_none(),
            "a live row is never sealed"
        );
        chain.install(Owned::new(Version::committed(3, None)), 3, &guard).expect("tombstone");
        assert!(
            chain.try_seal(SealRule::Tombstones { watermark: 2 }, &guard).is_none(),
            "a snapshot at 2 still sees the row"
        );
        assert_eq!(chain.try_seal(SealRule::Tombstones { watermark: 3 }, &guard), Some(2));
        assert!(chain.is_sealed(&guard));
        assert_eq!(chain.read(9, &guard), ReadOutcome::Absent);
        let v = Owned::new(Version::committed(4, Some(Bytes::new(b"b"))));
        assert!(matches!(chain.install(v, 9, &guard), Err(InstallError::Sealed(_))));
    }
}
