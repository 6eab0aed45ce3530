//! Loom model of epoch reclamation racing a traversal, on the real crossbeam-epoch collector
//! built on loom atomics (`--cfg loom --cfg crossbeam_loom`). A full GC pass detaches and retires
//! old versions while a committer's inline GC, working from an older cached watermark, walks
//! into the very tail being retired: the walker must never touch freed memory (a freed version's
//! loom atomics would fail the model) and both truncations must settle on one owner per node.
//! The canary frees detached versions at once instead of through the epoch; loom must catch it.
//! Two threads, preemption bound 2.
//!
//! Run: `RUSTFLAGS="--cfg loom --cfg crossbeam_loom" cargo test -p strata-verification --test
//! loom_reclaim --release --target-dir target/loom-epoch -- --test-threads=1 --nocapture`
#![cfg(all(loom, crossbeam_loom))]
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use strata_mvcc::canary::{self, Canary};
use strata_mvcc::{Mvcc, StoreKind, TableId, Timestamp, TxnMode};

const T: TableId = TableId(1);

fn put(db: &Mvcc, value: &[u8]) -> Timestamp {
    let mut txn = db.begin(TxnMode::ReadWrite).unwrap();
    txn.write(T, b"k", Some(value)).unwrap();
    txn.commit().unwrap()
}

/// Returns whether the execution was correct. It must not panic inside the model: unwinding
/// through crossbeam-epoch's loom-backed thread-locals aborts the test process, so failures are
/// reported after the model (`explore`).
fn unlink_vs_traversal() -> bool {
    canary::take_use_after_free(); // start each execution clean
    let db = Mvcc::new(StoreKind::LockFree, Timestamp::ZERO);
    // Cache a watermark of 1 while a snapshot pins it, so the later inline GC walks deep.
    put(&db, b"1");
    let pin = db.begin(TxnMode::ReadOnly).unwrap();
    put(&db, b"2");
    put(&db, b"3");
    db.refresh_watermark();
    drop(pin);
    // Chain: v3 -> v2 -> v1; cached watermark 1.
    let gc_db = db.clone();
    let gc = loom::thread::spawn(move || {
        gc_db.collect_garbage(); // watermark 3: detaches and retires v2, v1
    });
    let ts4 = put(&db, b"4"); // inline GC from v4 with the cached watermark walks v3, v2, v1
    gc.join().unwrap();
    let r = db.begin(TxnMode::ReadOnly).unwrap();
    let value_ok = r.read_ts() >= ts4 && r.get(T, b"k").unwrap().as_deref() == Some(&b"4"[..]);
    let no_use_after_free = !canary::take_use_after_free();
    value_ok && no_use_after_free
}

static FAILED_EXECUTIONS: AtomicUsize = AtomicUsize::new(0);

/// Explores the model; returns (executions, failed executions).
fn explore(bound: usize) -> (usize, usize) {
    // `LOOM_MAX_PREEMPTIONS=N` explores deeper than the default bound.
    let bound =
        std::env::var("LOOM_MAX_PREEMPTIONS").ok().and_then(|s| s.parse().ok()).unwrap_or(bound);
    let n = Arc::new(AtomicUsize::new(0));
    let c = n.clone();
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(bound);
    builder.max_branches = 20_000;
    builder.check(move || {
        c.fetch_add(1, Ordering::Relaxed);
        if !unlink_vs_traversal() {
            FAILED_EXECUTIONS.fetch_add(1, Ordering::Relaxed);
        }
    });
    let n = n.load(Ordering::Relaxed);
    let failed = FAILED_EXECUTIONS.swap(0, Ordering::Relaxed);
    eprintln!(
        "loom unlink_vs_traversal: {n} executions, {failed} failed, preemption bound {bound}"
    );
    (n, failed)
}

#[test]
fn loom_unlink_vs_traversal() {
    let (n, failed) = explore(2);
    assert!(n > 1);
    assert_eq!(failed, 0, "{failed} executions touched reclaimed memory or read a wrong value");
}

#[test]
fn loom_unlink_vs_traversal_canary() {
    canary::set(Canary::FreeImmediately);
    // Caught means: executions completed and the model's own check (a use after free, or a
    // wrong value) failed in some of them — not that loom panicked for another reason.
    let (n, failed) = explore(2);
    canary::set(Canary::None);
    assert!(n > 1);
    assert!(failed > 0, "canary FreeImmediately was NOT caught: the model is blind");
    eprintln!("loom unlink_vs_traversal: canary FreeImmediately caught");
}
