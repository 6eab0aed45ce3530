//! Loom models of the commit protocol, run on the real `strata-mvcc` code (its `sync` shim swaps
//! in loom atomics, a loom-visible key index and a leak-only reclaimer). Each model states what it
//! proves; each is paired with canaries — deliberately broken variants of the protocol — that loom
//! must catch, because a model whose canaries pass proves nothing (loom 0.7's DPOR can miss
//! load-then-CAS interleavings; see docs/design/verification.md). Every model prints how many
//! executions it explored.
//!
//! Run: `RUSTFLAGS="--cfg loom" cargo test -p strata-verification --test loom_protocol --release`
//! (`LOOM_MAX_PREEMPTIONS` is ignored here: each model sets its own bound, stated below).
#![cfg(loom)]
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use strata_mvcc::canary::{self, Canary};
use strata_mvcc::{Mvcc, MvccError, StoreKind, TableId, Timestamp, TxnMode};

const T: TableId = TableId(1);

/// Explores `model` exhaustively up to `bound` preemptions; returns the executions explored.
fn explore(name: &str, bound: usize, model: fn()) -> usize {
    let executions = Arc::new(AtomicUsize::new(0));
    let counter = executions.clone();
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(bound);
    // A commit is a few dozen atomic operations; three threads overflow loom's default of 1,000
    // branch points per execution.
    builder.max_branches = 20_000;
    builder.check(move || {
        counter.fetch_add(1, Ordering::Relaxed);
        model();
    });
    let n = executions.load(Ordering::Relaxed);
    eprintln!("loom {name}: {n} executions, preemption bound {bound}");
    n
}

/// Runs `model` with `bug` switched on and asserts loom finds a failing execution.
fn expect_caught(name: &str, bound: usize, bug: Canary, model: fn()) {
    canary::set(bug);
    let outcome = catch_unwind(AssertUnwindSafe(|| explore(name, bound, model)));
    canary::set(Canary::None);
    assert!(
        outcome.is_err(),
        "canary {bug:?} was NOT caught by the {name} model: the model is blind"
    );
    eprintln!("loom {name}: canary {bug:?} caught");
}

fn db() -> Mvcc {
    Mvcc::new(StoreKind::LockFree, Timestamp::ZERO)
}

fn put(db: &Mvcc, key: &[u8], value: &[u8]) -> Timestamp {
    let mut txn = db.begin(TxnMode::ReadWrite).unwrap();
    txn.write(T, key, Some(value)).unwrap();
    txn.commit().unwrap()
}

// ---------------------------------------------------------------------------------------------
// Model 1: the clock/publication race (DESIGN §3.3). W commits writes to two keys while R takes
// a snapshot and reads both. If commit_ts(W) <= read_ts(R), R sees both writes; otherwise
// neither. Preemption bound 3.

fn publication_race() {
    let db = db();
    let mut w = db.begin(TxnMode::ReadWrite).unwrap();
    w.write(T, b"a", Some(b"w")).unwrap();
    w.write(T, b"b", Some(b"w")).unwrap();
    let reader_db = db.clone();
    let reader = loom::thread::spawn(move || {
        let r = reader_db.begin(TxnMode::ReadOnly).unwrap();
        (r.read_ts(), r.get(T, b"a"), r.get(T, b"b"))
    });
    let ts = w.commit().unwrap();
    let (read_ts, a, b) = reader.join().unwrap();
    let expect = (read_ts >= ts).then(|| b"w".to_vec());
    assert_eq!((a, b), (expect.clone(), expect), "snapshot {read_ts:?} vs commit {ts:?}");
}

#[test]
fn loom_publication_race() {
    assert!(explore("publication_race", 3, publication_race) > 1);
}

#[test]
fn loom_publication_race_canaries() {
    expect_caught("publication_race", 3, Canary::RelaxedAdvance, publication_race);
    expect_caught("publication_race", 3, Canary::NoCommitting, publication_race);
    expect_caught("publication_race", 3, Canary::CommittingInvisible, publication_race);
}

// ---------------------------------------------------------------------------------------------
// Model 2: first committer wins on one key. Two txns with the same snapshot write the same key
// while a third thread reads it: exactly one commit succeeds (the other gets a retryable
// conflict), the loser's value is never visible, and the reader sees the old value or the
// winner's, as its snapshot says. Preemption bound 3.

fn same_key_writers() {
    let db = db();
    put(&db, b"k", b"0");
    let mut w1 = db.begin(TxnMode::ReadWrite).unwrap();
    let mut w2 = db.begin(TxnMode::ReadWrite).unwrap();
    w1.write(T, b"k", Some(b"1")).unwrap();
    w2.write(T, b"k", Some(b"2")).unwrap();
    let reader_db = db.clone();
    let reader = loom::thread::spawn(move || {
        let r = reader_db.begin(TxnMode::ReadOnly).unwrap();
        (r.read_ts(), r.get(T, b"k"))
    });
    let other = loom::thread::spawn(move || w2.commit());
    let first = w1.commit();
    let second = other.join().unwrap();
    let (read_ts, seen) = reader.join().unwrap();
    let (winner, ts) = match (&first, &second) {
        (Ok(ts), Err(e)) | (Err(e), Ok(ts)) => {
            assert!(matches!(e, MvccError::Conflict { .. }) && e.is_retryable(), "{e}");
            (if first.is_ok() { b"1" } else { b"2" }, *ts)
        }
        _ => panic!("exactly one commit must succeed: {first:?} / {second:?}"),
    };
    let expect: &[u8] = if read_ts >= ts { winner } else { b"0" };
    assert_eq!(seen.as_deref(), Some(expect), "snapshot {read_ts:?}, winner at {ts:?}");
    let now = db.begin(TxnMode::ReadOnly).unwrap().get(T, b"k");
    assert_eq!(now.as_deref(), Some(&winner[..]));
}

#[test]
fn loom_same_key_writers() {
    assert!(explore("same_key_writers", 3, same_key_writers) > 1);
}

#[test]
fn loom_same_key_writers_canaries() {
    expect_caught("same_key_writers", 3, Canary::WriterSkipsActive, same_key_writers);
}

// ---------------------------------------------------------------------------------------------
// Model 3: atomic publication over two keys with two writers. Each writer commits {x, y} with
// its own value; a reader never sees x and y from different txns. Preemption bound 1 (three
// threads: bound 2 did not finish in 5 minutes on this machine).

fn two_key_atomicity() {
    let db = db();
    put(&db, b"x", b"0");
    put(&db, b"y", b"0");
    let writer_db = db.clone();
    let writer = loom::thread::spawn(move || {
        let mut w = writer_db.begin(TxnMode::ReadWrite).unwrap();
        w.write(T, b"x", Some(b"1")).unwrap();
        w.write(T, b"y", Some(b"1")).unwrap();
        w.commit()
    });
    let reader_db = db.clone();
    let reader = loom::thread::spawn(move || {
        let r = reader_db.begin(TxnMode::ReadOnly).unwrap();
        (r.get(T, b"x"), r.get(T, b"y"))
    });
    let mut w = db.begin(TxnMode::ReadWrite).unwrap();
    w.write(T, b"y", Some(b"2")).unwrap();
    w.write(T, b"x", Some(b"2")).unwrap();
    let _ = w.commit();
    let _ = writer.join().unwrap();
    let (x, y) = reader.join().unwrap();
    assert_eq!(x, y, "fractured read: x and y from different txns");
}

#[test]
fn loom_two_key_atomicity() {
    assert!(explore("two_key_atomicity", 1, two_key_atomicity) > 1);
}

#[test]
fn loom_two_key_atomicity_canaries() {
    expect_caught("two_key_atomicity", 1, Canary::CommittingInvisible, two_key_atomicity);
}

// ---------------------------------------------------------------------------------------------
// Model 4: begin vs GC (the begin-publish window). A snapshot is taken while another thread
// commits a newer version and runs a full GC pass. The snapshot always finds the version its
// timestamp selects: GC never unlinks what a beginning txn will need. Preemption bound 4.

fn begin_vs_gc() {
    let db = db();
    let ts1 = put(&db, b"k", b"1");
    let gc_db = db.clone();
    let writer = loom::thread::spawn(move || {
        let ts2 = put(&gc_db, b"k", b"2");
        gc_db.collect_garbage();
        ts2
    });
    let r = db.begin(TxnMode::ReadOnly).unwrap();
    let seen = r.get(T, b"k");
    let read_ts = r.read_ts();
    let ts2 = writer.join().unwrap();
    assert!(read_ts >= ts1);
    let expect: &[u8] = if read_ts >= ts2 { b"2" } else { b"1" };
    assert_eq!(seen.as_deref(), Some(expect), "snapshot {read_ts:?}, second commit {ts2:?}");
}

#[test]
fn loom_begin_vs_gc() {
    assert!(explore("begin_vs_gc", 4, begin_vs_gc) > 1);
}

#[test]
fn loom_begin_vs_gc_canaries() {
    expect_caught("begin_vs_gc", 4, Canary::UnfencedBegin, begin_vs_gc);
}
