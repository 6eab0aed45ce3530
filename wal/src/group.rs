//! Group commit: which commits are written, which are durable, and who syncs.
//!
//! Commit timestamps are dense (every timestamp the clock hands out belongs to exactly one
//! record), but two committers race to append, so records reach the log out of timestamp
//! order. Two watermarks turn that into the prefix guarantee (INVARIANTS §4.2):
//!
//! - **written**: the largest `t` such that the records of *every* timestamp `<= t` have been
//!   written to the log (`Buffered` acknowledges at `written >= ts`: a process crash loses
//!   nothing below it, the page cache keeps it).
//! - **durable**: the largest `t` such that a sync that *started after* `written` reached `t`
//!   has completed (`Sync` acknowledges at `durable >= ts`).
//!
//! Leader/follower: a committer that needs `durable >= ts` either waits for a running sync whose
//! target covers `ts` or, if none does (and fewer than `FLIGHTS_MAX` syncs run), becomes a
//! leader: it reads `written` (the target), syncs, and publishes `durable = max(durable,
//! target)` for everyone whose timestamp it covers — one sync per batch. Syncs may overlap: each
//! covers everything written before it started, so one finishing before an earlier one is
//! still correct on its own. If nothing
//! new is written (an earlier timestamp's record is still being appended) the would-be leader
//! parks until an appender advances `written` (the `stalled` flag, below) instead of spinning on
//! empty syncs. A failed sync (or append) is sticky: every waiter, now and later, gets the error,
//! and nothing past the last good sync is ever acknowledged.
//!
//! Lock order: `sync` before `frontier`. The loom model at the bottom checks that no commit is
//! acknowledged before every smaller timestamp is durable, with a canary it must catch.

use crate::sync::model::{lock, wait, yield_now, AtomicBool, AtomicU64, Condvar, Mutex, Ordering};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

/// Most yields a group-commit leader makes while the batch still grows (`linger`). Under loom
/// one, to keep the model's state space small (the property does not depend on the count).
#[cfg(not(loom))]
const LINGER_ROUNDS_MAX: u32 = 32;
#[cfg(loom)]
const LINGER_ROUNDS_MAX: u32 = 1;

/// How many times a `Buffered` waiter checks `written` (spinning, and yielding every 32nd
/// time) before it parks. A park and its wake-up cost two context switches.
#[cfg(not(loom))]
const WRITTEN_SPINS_MAX: u32 = 256;
#[cfg(loom)]
const WRITTEN_SPINS_MAX: u32 = 1;

/// Default for the most syncs running at once (`LogOptions::sync_flights`). Each sync covers
/// everything written before it started, so overlapping syncs need no ordering among
/// themselves, and overlapping them overlaps device time (raw concurrent `fdatasync`s of one
/// file ran 1.8x as many syncs/s with two, 3.4x with four, on this machine). Through the
/// engine, though, 2 and 4 measured no better than 1 here (2 cores: the committers' CPU and
/// wake-ups bound the rate first, and a sync with fewer commits pads more pages), so one it
/// is; `docs/adr/0004-log-file-io.md`.
pub const SYNC_FLIGHTS_DEFAULT: usize = 1;

/// Why the log stopped accepting commits (sticky).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failed(pub String);

#[derive(Debug, Default)]
struct Frontier {
    written: u64,
    /// Written timestamps above a gap (`> written + 1`).
    pending: BinaryHeap<Reverse<u64>>,
}

#[derive(Debug, Default)]
struct SyncState {
    durable: u64,
    /// Syncs running now, each with the `written` watermark it read before it started.
    flights: Vec<Flight>,
    next_flight: u64,
    failed: Option<Failed>,
    stats: GroupStats,
}

#[derive(Debug)]
struct Flight {
    id: u64,
    target: u64,
}

/// Group-commit counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GroupStats {
    /// Syncs that made commits durable.
    pub syncs: u64,
    /// Commits those syncs covered (sum of batch sizes).
    pub synced_commits: u64,
    /// Largest batch one sync covered.
    pub batch_max: u64,
    /// Total and largest sync latency.
    pub sync_time: Duration,
    pub sync_time_max: Duration,
}

/// The shared state of one log's group commit.
#[derive(Debug)]
pub(crate) struct GroupCommit {
    frontier: Mutex<Frontier>,
    sync: Mutex<SyncState>,
    cv: Condvar,
    /// Set (under `sync`, before reading the frontier) by a waiter that found nothing new
    /// written; an appender that advances `written` then wakes the waiters.
    stalled: AtomicBool,
    /// `frontier.written`, readable without the lock (statistics and the fast path).
    written_hint: AtomicU64,
    /// `sync.durable`, readable without the lock (the durable claim every commit record
    /// carries: any value read is a lower bound, since it only grows).
    durable_hint: AtomicU64,
    /// Most syncs running at once (at least 1).
    flights_max: usize,
    /// Whether `failed` is set (so the commit path checks it without the lock).
    failed_flag: AtomicBool,
    /// Called once, with the reason, when the log fails (`Log::on_failure`). Read and set under
    /// `sync`, as the failure is, so a hook set after a failure is called at once instead.
    on_fail: crate::sync::OnceLock<FailureHook>,
}

/// What the owner of a log runs when it fails (the engine stops the database).
pub(crate) struct FailureHook(pub(crate) Box<dyn Fn(&str) + Send + Sync>);

impl std::fmt::Debug for FailureHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FailureHook")
    }
}

impl GroupCommit {
    /// Everything at or below `ts` is already written and durable (recovered state).
    #[cfg(all(test, not(loom)))]
    pub(crate) fn new(ts: u64) -> Self {
        Self::with_flights(ts, SYNC_FLIGHTS_DEFAULT)
    }

    /// As `new`, with at most `flights_max` syncs at once.
    pub(crate) fn with_flights(ts: u64, flights_max: usize) -> Self {
        GroupCommit {
            flights_max: flights_max.max(1),
            failed_flag: AtomicBool::new(false),
            on_fail: crate::sync::OnceLock::new(),
            frontier: Mutex::new(Frontier { written: ts, pending: BinaryHeap::new() }),
            sync: Mutex::new(SyncState { durable: ts, ..SyncState::default() }),
            cv: Condvar::new(),
            stalled: AtomicBool::new(false),
            written_hint: AtomicU64::new(ts),
            durable_hint: AtomicU64::new(ts),
        }
    }

    /// Records that the record of `ts` is fully written to the log.
    pub(crate) fn written(&self, ts: u64) {
        {
            let mut f = lock(&self.frontier);
            if ts == f.written + 1 {
                f.written = ts;
                while f.pending.peek() == Some(&Reverse(f.written + 1)) {
                    f.pending.pop();
                    f.written += 1;
                }
                // Release: `wait_written`'s lock-free fast path acquires it.
                self.written_hint.store(f.written, Ordering::Release);
            } else if ts > f.written {
                f.pending.push(Reverse(ts));
                return; // `written` did not move: nobody to wake
            } else {
                debug_assert!(false, "timestamp {ts} written twice");
                return;
            }
        }
        // SeqCst: pairs with the SeqCst store in `park`: either the parked waiter's frontier
        // read saw our advance, or we see its flag and wake it.
        if self.stalled.load(Ordering::SeqCst) {
            let _s = lock(&self.sync);
            self.stalled.store(false, Ordering::SeqCst);
            self.cv.notify_all();
        }
    }

    /// Marks the log failed (an append could not be written); wakes every waiter.
    pub(crate) fn fail(&self, reason: String) {
        let mut s = lock(&self.sync);
        self.record_failure(&mut s, reason);
        self.cv.notify_all();
    }

    /// Makes `reason` the sticky failure unless there is one, and runs the hook (under `sync`).
    fn record_failure(&self, s: &mut SyncState, reason: String) {
        if s.failed.is_none() {
            if let Some(hook) = self.on_fail.get() {
                (hook.0)(&reason);
            }
            s.failed = Some(Failed(reason));
            self.failed_flag.store(true, Ordering::Release);
        }
    }

    /// Sets the failure hook (once; a second call is ignored). Runs it at once if the log has
    /// already failed.
    pub(crate) fn on_failure(&self, hook: FailureHook) {
        let s = lock(&self.sync);
        if let Some(Failed(reason)) = &s.failed {
            (hook.0)(reason);
        }
        let _ = self.on_fail.set(hook);
    }

    /// The sticky failure, if any.
    pub(crate) fn failed(&self) -> Option<Failed> {
        // Acquire: pairs with the Release store made with the failure, under `sync`.
        if !self.failed_flag.load(Ordering::Acquire) {
            return None;
        }
        lock(&self.sync).failed.clone()
    }

    /// The `written` watermark (may lag by a moment).
    pub(crate) fn written_ts(&self) -> u64 {
        self.written_hint.load(Ordering::Relaxed)
    }

    /// The `durable` watermark, without the lock (may lag by a moment: a lower bound).
    pub(crate) fn durable_ts(&self) -> u64 {
        // Relaxed: a lower bound is all a caller needs; no data is read through it.
        self.durable_hint.load(Ordering::Relaxed)
    }

    pub(crate) fn stats(&self) -> GroupStats {
        lock(&self.sync).stats
    }

    /// Waits until every record at or below `ts` is written (`Buffered`).
    pub(crate) fn wait_written(&self, ts: u64) -> Result<(), Failed> {
        // Fast path, no lock: Acquire on the hint pairs with its Release store, made under the
        // frontier lock by whoever advanced `written` — after every record up to it reported
        // (each after its bytes were copied), so those copies happen before this return.
        // The missing records are usually microseconds away (their committers are between the
        // MVCC commit and the append), so spin a little — yielding now and then, for when the
        // machine is oversubscribed — before parking on the condvar.
        for round in 0..WRITTEN_SPINS_MAX {
            if self.written_hint.load(Ordering::Acquire) >= ts {
                return self.failed().map_or(Ok(()), Err);
            }
            if round % 32 == 31 {
                yield_now();
            } else {
                std::hint::spin_loop();
            }
        }
        let mut s = lock(&self.sync);
        loop {
            if let Some(f) = &s.failed {
                return Err(f.clone());
            }
            if self.written_or_arm(ts) >= ts {
                return Ok(());
            }
            s = wait(&self.cv, s);
        }
    }

    /// `written`, read once; if it is below `needed`, sets `stalled` and reads it again. A
    /// caller that still finds it short parks on the condvar: any appender that advances
    /// `written` after the second read sees the flag (SeqCst, and the frontier lock orders the
    /// read before the advance), and cannot notify before the caller waits, because the caller
    /// holds `sync` until then.
    fn written_or_arm(&self, needed: u64) -> u64 {
        let written = lock(&self.frontier).written;
        if written >= needed {
            return written;
        }
        self.stalled.store(true, Ordering::SeqCst);
        lock(&self.frontier).written
    }

    /// Waits until every record at or below `ts` is durable (`Sync`), syncing as a leader when
    /// no running sync covers `ts` and fewer than `FLIGHTS_MAX` run. `flush` makes everything
    /// written before it was called durable (as `fdatasync` does, however many run at once).
    pub(crate) fn wait_durable(
        &self,
        ts: u64,
        flush: &dyn Fn() -> Result<(), String>,
    ) -> Result<(), Failed> {
        let mut s = lock(&self.sync);
        loop {
            if let Some(f) = &s.failed {
                return Err(f.clone());
            }
            if s.durable >= ts {
                return Ok(());
            }
            let covered = s.flights.iter().any(|f| f.target >= ts);
            if covered || s.flights.len() >= self.flights_max {
                s = wait(&self.cv, s);
                continue;
            }
            let floor = s.flights.iter().map(|f| f.target).fold(s.durable, u64::max);
            let target = self.leader_target(floor);
            if target <= floor {
                // Nothing new is written (an earlier record is still being appended): park
                // until an appender moves `written`.
                s = wait(&self.cv, s);
                continue;
            }
            let id = s.next_flight;
            s.next_flight += 1;
            s.flights.push(Flight { id, target });
            drop(s);
            let target = self.linger(target);
            s = lock(&self.sync);
            if let Some(f) = s.flights.iter_mut().find(|f| f.id == id) {
                f.target = target; // only grows: everything up to it is written
            }
            drop(s);
            let started = Instant::now();
            let result = flush();
            let took = started.elapsed();
            s = lock(&self.sync);
            s.flights.retain(|f| f.id != id);
            match result {
                Ok(()) => {
                    let batch = target.saturating_sub(s.durable);
                    s.durable = s.durable.max(target);
                    // Relaxed: a hint (see `durable_ts`); written under `sync`, so it only grows.
                    self.durable_hint.store(s.durable, Ordering::Relaxed);
                    let st = &mut s.stats;
                    st.syncs += 1;
                    st.synced_commits += batch;
                    st.batch_max = st.batch_max.max(batch);
                    st.sync_time += took;
                    st.sync_time_max = st.sync_time_max.max(took);
                }
                Err(e) => self.record_failure(&mut s, format!("log sync failed: {e}")),
            }
            self.cv.notify_all();
        }
    }

    /// Before syncing, the leader lets committers that are about to write join the batch: it
    /// yields the CPU while `written` keeps moving (at most `LINGER_ROUNDS_MAX` times) and
    /// returns the newest `written`. Without this, the committers a sync just released
    /// re-commit while the next sync already runs, and the batches alternate between two
    /// halves of the writers. Stops at the first yield that brought nothing (one thread:
    /// one yield per sync).
    fn linger(&self, mut target: u64) -> u64 {
        for _ in 0..LINGER_ROUNDS_MAX {
            yield_now();
            let now = lock(&self.frontier).written;
            if now == target {
                break;
            }
            target = now;
        }
        target
    }

    #[cfg(not(all(loom, test)))]
    fn leader_target(&self, durable: u64) -> u64 {
        self.written_or_arm(durable + 1)
    }

    /// Under the model, the canary replaces the target with the leader's own view of the clock
    /// (it syncs, then claims timestamps whose records may not be written yet).
    #[cfg(all(loom, test))]
    fn leader_target(&self, durable: u64) -> u64 {
        let written = self.written_or_arm(durable + 1);
        if loom_tests::CANARY.with(|c| c.get()) {
            loom_tests::CLAIMED.with(|c| c.get()).max(written).max(durable)
        } else {
            written
        }
    }
}

#[cfg(all(loom, test))]
mod loom_tests {
    //! The group-commit handshake under loom: committers take dense timestamps from a clock,
    //! "write" their record (a flag), report it, and wait for `Sync` durability; the flush
    //! copies every flag written before it started to a "disk". With one sync at a time and
    //! with two overlapping. Property: when `wait_durable(ts)` returns, every
    //! timestamp `<= ts` is on the disk. The canary (a leader that claims its own timestamp
    //! instead of `written`) must be caught.
    use super::*;
    use loom::sync::atomic::AtomicBool as LAtomicBool;
    use loom::sync::Arc;
    use std::cell::Cell;

    thread_local! {
        pub(super) static CANARY: Cell<bool> = const { Cell::new(false) };
        pub(super) static CLAIMED: Cell<u64> = const { Cell::new(0) };
    }

    const N: usize = 3;

    struct World {
        clock: AtomicU64,
        written: [LAtomicBool; N + 1],
        disk: [LAtomicBool; N + 1],
        group: GroupCommit,
    }

    fn committer(w: &World, canary: bool) {
        let ts = w.clock.fetch_add(1, Ordering::SeqCst) + 1;
        CANARY.with(|c| c.set(canary));
        CLAIMED.with(|c| c.set(ts));
        w.written[ts as usize].store(true, Ordering::SeqCst);
        w.group.written(ts);
        // Like `fdatasync`: what was written before the call is durable when it returns (read
        // at the start, stored at the end, so overlapping flushes can finish out of order).
        let flush = || {
            let before: Vec<bool> = (1..=N).map(|t| w.written[t].load(Ordering::SeqCst)).collect();
            for (i, was_written) in before.into_iter().enumerate() {
                if was_written {
                    w.disk[i + 1].store(true, Ordering::SeqCst);
                }
            }
            Ok(())
        };
        w.group.wait_durable(ts, &flush).expect("no failure injected");
        for t in 1..=ts as usize {
            assert!(
                w.disk[t].load(Ordering::SeqCst),
                "ts {ts} acknowledged before {t} was durable"
            );
        }
    }

    fn model(canary: bool, flights: usize) {
        let mut builder = loom::model::Builder::new();
        builder.preemption_bound = Some(3);
        builder.check(move || {
            let world = Arc::new(World {
                clock: AtomicU64::new(0),
                written: Default::default(),
                disk: Default::default(),
                group: GroupCommit::with_flights(0, flights),
            });
            let threads: Vec<_> = (0..N - 1)
                .map(|_| {
                    let w = world.clone();
                    loom::thread::spawn(move || committer(&w, canary))
                })
                .collect();
            committer(&world, canary);
            for t in threads {
                t.join().expect("committer");
            }
            assert_eq!(world.group.durable_ts(), N as u64);
        });
    }

    #[test]
    fn no_commit_is_acknowledged_before_its_prefix_is_durable() {
        model(false, 1);
    }

    #[test]
    fn with_two_overlapping_syncs_too() {
        model(false, 2);
    }

    #[test]
    fn the_model_catches_a_leader_that_claims_unwritten_timestamps() {
        let caught = std::panic::catch_unwind(|| model(true, 1)).is_err();
        assert!(caught, "loom must find the schedule where the canary acknowledges too early");
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::sync::model::AtomicU64 as StdU64;
    use crate::sync::Arc;

    #[test]
    fn out_of_order_writes_move_written_only_past_gaps() {
        let g = GroupCommit::new(10);
        g.written(12);
        g.written(13);
        assert_eq!(g.written_ts(), 10, "11 is missing");
        g.written(11);
        assert_eq!(g.written_ts(), 13);
        g.wait_written(13).unwrap();
    }

    #[test]
    fn one_sync_covers_a_batch_and_failure_is_sticky() {
        let g = GroupCommit::new(0);
        for ts in 1..=5 {
            g.written(ts);
        }
        let syncs = StdU64::new(0);
        let flush = || {
            syncs.fetch_add(1, Ordering::Relaxed);
            Ok(())
        };
        g.wait_durable(3, &flush).unwrap();
        g.wait_durable(5, &flush).unwrap();
        assert_eq!(syncs.load(Ordering::Relaxed), 1, "the first sync took all 5");
        assert_eq!(g.stats().batch_max, 5);
        g.written(6);
        let failing = || Err("disk on fire".to_string());
        let err = g.wait_durable(6, &failing).unwrap_err();
        assert!(err.0.contains("disk on fire"));
        g.written(7);
        assert!(g.wait_durable(7, &flush).is_err(), "sticky");
        assert!(g.wait_written(7).is_err(), "sticky for Buffered too");
        assert_eq!(g.durable_ts(), 5, "nothing past the last good sync");
    }

    #[test]
    fn with_two_flights_a_later_sync_completes_while_an_earlier_one_still_runs() {
        let g = Arc::new(GroupCommit::with_flights(0, 2));
        g.written(1);
        let (entered_tx, entered_rx) = crate::sync::mpsc::channel::<()>();
        let (release_tx, release_rx) = crate::sync::mpsc::channel::<()>();
        let g2 = g.clone();
        let slow = std::thread::spawn(move || {
            let flush = || {
                entered_tx.send(()).map_err(|e| e.to_string())?;
                release_rx.recv().map_err(|e| e.to_string())
            };
            g2.wait_durable(1, &flush)
        });
        entered_rx.recv().unwrap(); // the first sync (target 1) is running
        g.written(2);
        g.wait_durable(2, &|| Ok(())).unwrap(); // a second leader; its sync covers 1 and 2
        assert_eq!(g.durable_ts(), 2);
        release_tx.send(()).unwrap();
        slow.join().unwrap().unwrap();
        assert_eq!(g.durable_ts(), 2, "the earlier sync finishing late moves nothing back");
        assert_eq!(g.stats().syncs, 2);
    }

    #[test]
    fn a_waiter_parked_on_a_gap_wakes_when_it_fills() {
        let g = Arc::new(GroupCommit::new(0));
        g.written(2);
        let g2 = g.clone();
        let waiter = std::thread::spawn(move || g2.wait_durable(2, &|| Ok(())));
        std::thread::sleep(Duration::from_millis(20));
        g.written(1);
        waiter.join().unwrap().unwrap();
        assert_eq!(g.durable_ts(), 2);
    }
}
