//! Shuttle backing for the loom models, plus whole-engine schedules.
//!
//! 1. The *same* protocol scenarios as `loom_protocol.rs` (`scenarios/mod.rs`), explored with
//!    shuttle's PCT scheduler. Shuttle prunes no schedules, so it does not share loom 0.7's DPOR
//!    hole; it is sequentially consistent (every atomic is SeqCst), so weak-memory bugs stay
//!    loom's job. Each scenario's schedule-level canaries must be caught here too. A complete
//!    `check_dfs` was tried first and did not finish: a commit is dozens of visible operations and
//!    DFS has no preemption bound, so the schedule count is astronomical even for two threads.
//! 2. A complete DFS (every interleaving, over all schedules of up to `DFS_STEPS_MAX` steps) of
//!    the kernel — the store's own commit protocol and chains, without the index and registry —
//!    for the publication race and first-committer-wins, with their canaries.
//! 3. Whole-engine scenarios on the real `strata-mvcc` code with 4–6 threads under shuttle's
//!    random scheduler: lost updates, the bank invariant with snapshot readers, GC racing
//!    readers; and one injected bug (validation off by one) that the counters scenario must find.
//!
//! Run: `RUSTFLAGS="--cfg shuttle" cargo test -p strata-verification --test shuttle_protocol
//! --release --target-dir target/shuttle -- --test-threads=1`. `SHUTTLE_ITERATIONS=N` sets the
//! PCT and random-scheduler iterations (default 20,000).
#![cfg(shuttle)]
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use strata_mvcc::canary::{self, Canary};
use strata_mvcc::kernel::Kernel;
use strata_mvcc::{Mvcc, TxnMode};

mod thread {
    pub use shuttle::thread::{spawn, yield_now};
}
#[allow(dead_code)]
#[macro_use]
mod scenarios;
use scenarios::*;

fn counted(name: &str, kind: &str, run: impl FnOnce(Box<dyn Fn() + Send + Sync>)) -> usize {
    let n = Arc::new(AtomicUsize::new(0));
    let c = n.clone();
    let _ = (name, kind);
    run(Box::new(move || {
        c.fetch_add(1, Ordering::Relaxed);
    }));
    n.load(Ordering::Relaxed)
}

/// PCT (probabilistic concurrency testing, bug depth `PCT_DEPTH`) over `model`'s schedules.
fn pct(name: &str, model: fn()) -> usize {
    let iters = iterations();
    let n = counted(name, "pct", |tick| {
        shuttle::check_pct(
            move || {
                tick();
                model();
            },
            iters,
            PCT_DEPTH,
        )
    });
    eprintln!("shuttle pct {name}: {n} schedules, depth {PCT_DEPTH}");
    n
}

/// Bug depth for PCT: the number of ordering constraints a bug needs (the canaries need 2–3).
const PCT_DEPTH: usize = 3;

fn iterations() -> usize {
    std::env::var("SHUTTLE_ITERATIONS").ok().and_then(|s| s.parse().ok()).unwrap_or(20_000)
}

fn random(name: &str, model: fn()) -> usize {
    let iters = iterations();
    let n = counted(name, "random", |tick| {
        shuttle::check_random(
            move || {
                tick();
                model();
            },
            iters,
        )
    });
    eprintln!("shuttle random {name}: {n} schedules");
    n
}

fn expect_caught(name: &str, bug: Canary, check: fn(&str, fn()) -> usize, model: fn()) {
    canary::set(bug);
    FIRED.store(false, std::sync::atomic::Ordering::SeqCst);
    let outcome = catch_unwind(AssertUnwindSafe(|| check(name, model)));
    canary::set(Canary::None);
    match outcome {
        Ok(_) => panic!("canary {bug:?} was NOT caught by shuttle in {name}"),
        Err(payload) => assert!(
            invariant_fired(payload.as_ref()),
            "canary {bug:?}: shuttle failed in {name}, but not on the model's own invariant"
        ),
    }
    eprintln!("shuttle {name}: canary {bug:?} caught");
}

// --- 1. the loom scenarios, exhaustively -------------------------------------------------------

#[test]
fn pct_publication_race() {
    assert!(pct("publication_race", publication_race) > 1);
    expect_caught("publication_race", Canary::NoCommitting, pct, publication_race);
    expect_caught("publication_race", Canary::CommittingInvisible, pct, publication_race);
}

#[test]
fn pct_begin_vs_gc() {
    assert!(pct("begin_vs_gc", begin_vs_gc) > 1);
    expect_caught("begin_vs_gc", Canary::UnfencedBegin, pct, begin_vs_gc);
}

#[test]
fn pct_same_key_writers() {
    assert!(pct("same_key_writers", same_key_writers) > 1);
    expect_caught("same_key_writers", Canary::WriterSkipsActive, pct, same_key_writers);
}

#[test]
fn pct_two_key_atomicity() {
    assert!(pct("two_key_atomicity", two_key_atomicity) > 1);
    expect_caught("two_key_atomicity", Canary::CommittingInvisible, pct, two_key_atomicity);
}

#[test]
fn pct_write_skew() {
    assert!(pct("write_skew", write_skew) > 1);
    expect_caught("write_skew", Canary::SkipValidation, pct, write_skew);
    expect_caught("write_skew", Canary::ValidateBeforeTimestamp, pct, write_skew);
}

#[test]
fn pct_aborted_head() {
    assert!(pct("aborted_head", aborted_head) > 1);
    expect_caught("aborted_head", Canary::AbortedHeadUnchecked, pct, aborted_head);
}

#[test]
fn pct_merges_and_a_put() {
    assert!(pct("merges_and_a_put", merges_and_a_put) > 1);
    expect_caught("merges_and_a_put", Canary::MergeOverPut, pct, merges_and_a_put);
    expect_caught("merges_and_a_put", Canary::MergeOnSnapshot, pct, merges_and_a_put);
}

#[test]
fn pct_merge_over_a_failed_validation() {
    assert!(pct("merge_over_a_failed_validation", merge_over_a_failed_validation) > 1);
}

#[test]
fn pct_hint_across_a_removal() {
    assert!(pct("hint_across_a_removal", hint_across_a_removal) > 1);
    expect_caught("hint_across_a_removal", Canary::LimboIgnoresStamp, pct, hint_across_a_removal);
    expect_caught(
        "hint_across_a_removal",
        Canary::LimboStampsBeforeRemoval,
        pct,
        hint_across_a_removal,
    );
}

#[test]
fn pct_phantom() {
    assert!(pct("phantom", phantom) > 1);
    expect_caught("phantom", Canary::SkipValidation, pct, phantom);
}

// --- 1c. complete DFS over the kernel (commit protocol + chains, no index/registry) -----------

/// Schedules longer than this many steps are cut short (not failed). Without a bound, DFS never
/// ends once a reader can spin on a publishing writer (each extra spin is a new schedule); every
/// schedule that completes within the bound is explored.
const DFS_STEPS_MAX: usize = 64;

/// Exhaustive DFS: every interleaving of every shuttle-visible operation, over all schedules of
/// at most `DFS_STEPS_MAX` steps. Returns the count.
fn dfs(name: &str, model: fn()) -> usize {
    let n = counted(name, "dfs", |tick| {
        let mut config = shuttle::Config::new();
        config.max_steps = shuttle::MaxSteps::ContinueAfter(DFS_STEPS_MAX);
        let scheduler = shuttle::scheduler::DfsScheduler::new(None, false);
        shuttle::Runner::new(scheduler, config).run(move || {
            tick();
            model();
        });
    });
    eprintln!("shuttle dfs {name}: {n} schedules (complete up to {DFS_STEPS_MAX} steps)");
    n
}

/// The clock/publication race on two keys: a snapshot that includes the commit sees both writes,
/// one that does not sees neither.
fn kernel_publication_race() {
    let k = Arc::new(Kernel::new(2));
    let reader_k = k.clone();
    let reader = shuttle::thread::spawn(move || {
        let ts = reader_k.snapshot();
        (ts, reader_k.read(0, ts), reader_k.read(1, ts))
    });
    let ts = k.commit(1, &[0, 1], b"w", 0).unwrap();
    let (read_ts, a, b) = reader.join().unwrap();
    let expect = (read_ts >= ts).then(|| b"w".to_vec());
    invariant_eq!((a, b), (expect.clone(), expect), "snapshot {read_ts} vs commit {ts}");
}

/// First committer wins: two txns with snapshot 0 write key 0; exactly one commits, and a later
/// snapshot reads the winner.
fn kernel_same_key() {
    let k = Arc::new(Kernel::new(1));
    let other_k = k.clone();
    let other = shuttle::thread::spawn(move || other_k.commit(2, &[0], b"2", 0));
    let first = k.commit(1, &[0], b"1", 0);
    let second = other.join().unwrap();
    let winner: &[u8] = match (&first, &second) {
        (Ok(_), Err(e)) | (Err(e), Ok(_)) => {
            invariant!(e.is_retryable(), "{e}");
            if first.is_ok() {
                b"1"
            } else {
                b"2"
            }
        }
        _ => {
            FIRED.store(true, std::sync::atomic::Ordering::SeqCst);
            panic!("{INVARIANT}: exactly one commit must succeed: {first:?} / {second:?}")
        }
    };
    let ts = k.snapshot();
    invariant_eq!(k.read(0, ts).as_deref(), Some(winner), "the winner's write is the newest");
}

/// Write skew on the kernel: keys 0 and 1 start at "1"; two serializable txns with snapshot 1
/// each read both and write "0" to their own key. At most one commits.
fn kernel_write_skew() {
    let k = Arc::new(Kernel::new(2));
    k.commit(1, &[0, 1], b"1", 0).unwrap();
    let other_k = k.clone();
    let other =
        shuttle::thread::spawn(move || other_k.commit_serializable(3, &[1], b"0", 1, &[0, 1], &[]));
    let first = k.commit_serializable(2, &[0], b"0", 1, &[0, 1], &[]);
    let second = other.join().unwrap();
    invariant!(first.is_err() || second.is_err(), "write skew committed: {first:?} / {second:?}");
    invariant!(first.is_ok() || second.is_ok(), "both failed: {first:?} / {second:?}");
}

/// A phantom on the kernel: two serializable txns (snapshot 0) each scan keys 0..=2 (empty)
/// and insert one of them. At most one commits.
fn kernel_phantom() {
    let k = Arc::new(Kernel::new(3));
    let other_k = k.clone();
    let other = shuttle::thread::spawn(move || {
        other_k.commit_serializable(2, &[2], b"1", 0, &[], &[0..=2])
    });
    let first = k.commit_serializable(1, &[0], b"1", 0, &[], &[0..=2]);
    let second = other.join().unwrap();
    invariant!(first.is_err() || second.is_err(), "phantom committed: {first:?} / {second:?}");
}

/// First committer wins across an aborted head (docs/design/lost-update-2026-11.md): W committed
/// key 0 at ts 1, after the snapshot (0) of `late`; key 1 got a commit at ts 2, after the
/// snapshot (1) of X, which writes keys 0 and 1 and so installs on key 0, conflicts on key 1 and
/// aborts. `late` commits key 0 meanwhile and must fail whatever head it finds.
fn kernel_aborted_head() {
    let k = Arc::new(Kernel::new(2));
    k.commit(1, &[0], b"w", 0).unwrap();
    k.commit(2, &[1], b"y", 1).unwrap();
    let other_k = k.clone();
    let aborter = shuttle::thread::spawn(move || other_k.commit(3, &[0, 1], b"x", 1));
    let late = k.commit(4, &[0], b"late", 0);
    let x = aborter.join().unwrap();
    invariant!(x.is_err(), "X must conflict on key 1: {x:?}");
    invariant!(late.is_err(), "lost update: a snapshot before W's commit overwrote it: {late:?}");
    invariant_eq!(k.read(0, k.snapshot()).as_deref(), Some(&b"w"[..]), "W's write must survive");
}

#[test]
fn dfs_kernel_aborted_head() {
    assert!(dfs("kernel_aborted_head", kernel_aborted_head) > 1);
    expect_caught("kernel_aborted_head", Canary::AbortedHeadUnchecked, dfs, kernel_aborted_head);
}

// DFS does not finish on the serializable kernel scenarios (validation adds a status load per
// version and a wait loop, and schedules multiply past what two minutes enumerate), so they run
// under PCT like the full-API scenarios.

#[test]
fn pct_kernel_write_skew() {
    assert!(pct("kernel_write_skew", kernel_write_skew) > 1);
    expect_caught("kernel_write_skew", Canary::SkipValidation, pct, kernel_write_skew);
    expect_caught("kernel_write_skew", Canary::ValidateBeforeTimestamp, pct, kernel_write_skew);
    expect_caught("kernel_write_skew", Canary::ValidatingInvisible, pct, kernel_write_skew);
}

#[test]
fn pct_kernel_phantom() {
    assert!(pct("kernel_phantom", kernel_phantom) > 1);
    expect_caught("kernel_phantom", Canary::SkipValidation, pct, kernel_phantom);
}

#[test]
fn dfs_kernel_publication_race() {
    assert!(dfs("kernel_publication_race", kernel_publication_race) > 1);
    expect_caught("kernel_publication_race", Canary::NoCommitting, dfs, kernel_publication_race);
    expect_caught(
        "kernel_publication_race",
        Canary::CommittingInvisible,
        dfs,
        kernel_publication_race,
    );
}

#[test]
fn dfs_kernel_same_key() {
    assert!(dfs("kernel_same_key", kernel_same_key) > 1);
    expect_caught("kernel_same_key", Canary::WriterSkipsActive, dfs, kernel_same_key);
}

// --- 2. whole-engine scenarios -----------------------------------------------------------------

const RETRIES_MAX: usize = 10_000;

fn read_u64(v: Option<Vec<u8>>) -> u64 {
    v.map_or(0, |b| u64::from_le_bytes(b.try_into().unwrap()))
}

/// Four threads each increment two counters (retrying conflicts); the sum must equal the number
/// of successful increments.
fn counters() {
    let db = db();
    let handles: Vec<_> = (0..4u64)
        .map(|th| {
            let db = db.clone();
            shuttle::thread::spawn(move || {
                for i in 0..2u64 {
                    let key = [((th + i) % 2) as u8];
                    let mut attempts = 0;
                    loop {
                        attempts += 1;
                        assert!(attempts < RETRIES_MAX, "livelock");
                        let mut txn = db.begin(TxnMode::ReadWrite).unwrap();
                        let v = read_u64(txn.get(T, &key).unwrap());
                        txn.write(T, &key, Some(&(v + 1).to_le_bytes())).unwrap();
                        if txn.commit().is_ok() {
                            break;
                        }
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let snap = db.begin(TxnMode::ReadOnly).unwrap();
    let sum = read_u64(snap.get(T, &[0]).unwrap()) + read_u64(snap.get(T, &[1]).unwrap());
    invariant_eq!(sum, 8, "lost or duplicated increments");
}

#[test]
fn random_counters_no_lost_updates() {
    random("counters", counters);
}

#[test]
fn random_counters_find_the_injected_validation_bug() {
    expect_caught("counters", Canary::ValidationOffByOne, random, counters);
}

/// Three transfer threads over three accounts and two snapshot readers: every snapshot sums to
/// the same total, and a full GC pass runs concurrently.
fn bank() {
    let db = db();
    for a in 0..3u8 {
        put(&db, &[a], &100u64.to_le_bytes());
    }
    let mut handles = Vec::new();
    for th in 0..3u8 {
        let db = db.clone();
        handles.push(shuttle::thread::spawn(move || {
            let (from, to) = ([th], [(th + 1) % 3]);
            for _ in 0..RETRIES_MAX {
                let mut txn = db.begin(TxnMode::ReadWrite).unwrap();
                let (a, b) =
                    (read_u64(txn.get(T, &from).unwrap()), read_u64(txn.get(T, &to).unwrap()));
                txn.write(T, &from, Some(&(a - 10).to_le_bytes())).unwrap();
                txn.write(T, &to, Some(&(b + 10).to_le_bytes())).unwrap();
                if txn.commit().is_ok() {
                    return;
                }
            }
            panic!("livelock");
        }));
    }
    for _ in 0..2 {
        let db = db.clone();
        handles.push(shuttle::thread::spawn(move || {
            let snap = db.begin(TxnMode::ReadOnly).unwrap();
            let total: u64 = (0..3u8).map(|a| read_u64(snap.get(T, &[a]).unwrap())).sum();
            invariant_eq!(total, 300, "broken snapshot at {:?}", snap.read_ts());
        }));
    }
    let gc_db: Mvcc = db.clone();
    handles.push(shuttle::thread::spawn(move || {
        gc_db.collect_garbage();
    }));
    for h in handles {
        h.join().unwrap();
    }
    let total: u64 = (0..3u8)
        .map(|a| read_u64(db.begin(TxnMode::ReadOnly).unwrap().get(T, &[a]).unwrap()))
        .sum();
    invariant_eq!(total, 300, "money created or lost");
}

#[test]
fn random_bank_invariant_with_gc() {
    random("bank", bank);
}
