//! Protocol scenarios shared by the loom models (`loom_protocol.rs`) and their exhaustive
//! shuttle backing (`shuttle_protocol.rs`): the same code under both checkers. `thread::spawn` is
//! whichever checker's spawn the including test file provides.

use super::thread;
use strata_mvcc::{MergeOp, Mvcc, MvccError, StoreKind, TableId, Timestamp, TxnMode};

/// Every invariant failure of a model starts with this. A canary counts as caught only when the
/// checker's failure carries it (`invariant_fired`): a branch-limit, deadlock or setup panic is a
/// broken model, not a caught bug.
pub const INVARIANT: &str = "model invariant violated";

/// Set by `invariant!` before it panics: a checker may replace the panic's payload with its own
/// (shuttle reports a panic raised while it tears the failing execution down), so
/// `invariant_fired` also takes this flag.
pub static FIRED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// `assert!` for a model's invariants: panics with a message that starts with `INVARIANT`.
#[macro_export]
macro_rules! invariant {
    ($cond:expr, $($arg:tt)+) => {
        if !$cond {
            $crate::scenarios::FIRED.store(true, std::sync::atomic::Ordering::SeqCst);
            panic!("{}: {}", $crate::scenarios::INVARIANT, format_args!($($arg)+));
        }
    };
}

/// `assert_eq!` for a model's invariants (see `invariant!`).
#[macro_export]
macro_rules! invariant_eq {
    ($left:expr, $right:expr, $($arg:tt)+) => {
        match (&$left, &$right) {
            (l, r) => $crate::invariant!(
                l == r,
                "{:?} != {:?}: {}", l, r, format_args!($($arg)+)
            ),
        }
    };
}

/// Whether a checker's failure is a model invariant firing (see `INVARIANT`, `FIRED`); clears
/// `FIRED` for the next run.
pub fn invariant_fired(payload: &(dyn std::any::Any + Send)) -> bool {
    let message = payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied());
    let flagged = FIRED.swap(false, std::sync::atomic::Ordering::SeqCst);
    message.is_some_and(|m| m.contains(INVARIANT)) || flagged
}

pub const T: TableId = TableId(1);

pub fn db() -> Mvcc {
    Mvcc::new(StoreKind::LockFree, Timestamp::ZERO)
}

pub fn put(db: &Mvcc, key: &[u8], value: &[u8]) -> Timestamp {
    let mut txn = db.begin(TxnMode::ReadWrite).unwrap();
    txn.write(T, key, Some(value)).unwrap();
    txn.commit().unwrap()
}

// Model 1: the clock/publication race (INVARIANTS §3.3). W commits writes to two keys while R takes
// a snapshot and reads both. If commit_ts(W) <= read_ts(R), R sees both writes; otherwise
// neither. Preemption bound 3.

pub fn publication_race() {
    let db = db();
    let mut w = db.begin(TxnMode::ReadWrite).unwrap();
    w.write(T, b"a", Some(b"w")).unwrap();
    w.write(T, b"b", Some(b"w")).unwrap();
    let reader_db = db.clone();
    let reader = thread::spawn(move || {
        let r = reader_db.begin(TxnMode::ReadOnly).unwrap();
        (r.read_ts(), r.get(T, b"a").unwrap(), r.get(T, b"b").unwrap())
    });
    let ts = w.commit().unwrap();
    let (read_ts, a, b) = reader.join().unwrap();
    let expect = (read_ts >= ts).then(|| b"w".to_vec());
    invariant_eq!((a, b), (expect.clone(), expect), "snapshot {read_ts:?} vs commit {ts:?}");
}

// Model 2: first committer wins on one key. Two txns with the same snapshot write the same key
// while a third thread reads it: exactly one commit succeeds (the other gets a retryable
// conflict), the loser's value is never visible, and the reader sees the old value or the
// winner's, as its snapshot says. Preemption bound 3.

pub fn same_key_writers() {
    let db = db();
    put(&db, b"k", b"0");
    let mut w1 = db.begin(TxnMode::ReadWrite).unwrap();
    let mut w2 = db.begin(TxnMode::ReadWrite).unwrap();
    w1.write(T, b"k", Some(b"1")).unwrap();
    w2.write(T, b"k", Some(b"2")).unwrap();
    let reader_db = db.clone();
    let reader = thread::spawn(move || {
        let r = reader_db.begin(TxnMode::ReadOnly).unwrap();
        (r.read_ts(), r.get(T, b"k").unwrap())
    });
    let other = thread::spawn(move || w2.commit());
    let first = w1.commit();
    let second = other.join().unwrap();
    let (read_ts, seen) = reader.join().unwrap();
    let (winner, ts) = match (&first, &second) {
        (Ok(ts), Err(e)) | (Err(e), Ok(ts)) => {
            invariant!(matches!(e, MvccError::Conflict { .. }) && e.is_retryable(), "{e}");
            (if first.is_ok() { b"1" } else { b"2" }, *ts)
        }
        _ => {
            FIRED.store(true, std::sync::atomic::Ordering::SeqCst);
            panic!("{INVARIANT}: exactly one commit must succeed: {first:?} / {second:?}")
        }
    };
    let expect: &[u8] = if read_ts >= ts { winner } else { b"0" };
    invariant_eq!(seen.as_deref(), Some(expect), "snapshot {read_ts:?}, winner at {ts:?}");
    let now = db.begin(TxnMode::ReadOnly).unwrap().get(T, b"k").unwrap();
    invariant_eq!(now.as_deref(), Some(&winner[..]), "the winner's write is the newest");
}

// Model 3: atomic publication over two keys with two writers. Each writer commits {x, y} with
// its own value; a reader never sees x and y from different txns. Preemption bound 1 (three
// threads: bound 2 did not finish in 5 minutes on this machine).

pub fn two_key_atomicity() {
    let db = db();
    put(&db, b"x", b"0");
    put(&db, b"y", b"0");
    let writer_db = db.clone();
    let writer = thread::spawn(move || {
        let mut w = writer_db.begin(TxnMode::ReadWrite).unwrap();
        w.write(T, b"x", Some(b"1")).unwrap();
        w.write(T, b"y", Some(b"1")).unwrap();
        w.commit()
    });
    let reader_db = db.clone();
    let reader = thread::spawn(move || {
        let r = reader_db.begin(TxnMode::ReadOnly).unwrap();
        (r.get(T, b"x").unwrap(), r.get(T, b"y").unwrap())
    });
    let mut w = db.begin(TxnMode::ReadWrite).unwrap();
    w.write(T, b"y", Some(b"2")).unwrap();
    w.write(T, b"x", Some(b"2")).unwrap();
    let _ = w.commit();
    let _ = writer.join().unwrap();
    let (x, y) = reader.join().unwrap();
    invariant_eq!(x, y, "fractured read: x and y from different txns");
}

// Model 4: begin vs GC (the begin-publish window). A snapshot is taken while another thread
// commits a newer version and runs a full GC pass. The snapshot always finds the version its
// timestamp selects: GC never unlinks what a beginning txn will need. Preemption bound 4.

pub fn begin_vs_gc() {
    let db = db();
    let ts1 = put(&db, b"k", b"1");
    let gc_db = db.clone();
    let writer = thread::spawn(move || {
        let ts2 = put(&gc_db, b"k", b"2");
        gc_db.collect_garbage();
        ts2
    });
    let r = db.begin(TxnMode::ReadOnly).unwrap();
    let seen = r.get(T, b"k").unwrap();
    let read_ts = r.read_ts();
    let ts2 = writer.join().unwrap();
    invariant!(read_ts >= ts1, "a snapshot after the first commit");
    let expect: &[u8] = if read_ts >= ts2 { b"2" } else { b"1" };
    invariant_eq!(seen.as_deref(), Some(expect), "snapshot {read_ts:?}, second commit {ts2:?}");
}

// Model 5: write skew (G2-item) under Serializable. x = y = 1; two txns with the same snapshot
// each read both and set *its own* key to 0 if the sum is 2. Snapshot isolation commits both
// (sum 0); serializable commits at most one, and never fails both. Preemption bound 3.

pub fn write_skew() {
    use strata_mvcc::Isolation::Serializable;
    let db = db();
    let mut seed = db.begin(TxnMode::ReadWrite).unwrap();
    seed.write(T, b"x", Some(b"1")).unwrap();
    seed.write(T, b"y", Some(b"1")).unwrap();
    seed.commit().unwrap();
    let skew = |db: &Mvcc, mine: &[u8]| {
        let mut txn = db.begin_with(TxnMode::ReadWrite, Serializable).unwrap();
        let sum = [&b"x"[..], b"y"]
            .iter()
            .filter(|k| txn.get(T, k).unwrap().as_deref() == Some(b"1"))
            .count();
        if sum == 2 {
            txn.write(T, mine, Some(b"0")).unwrap();
        }
        txn.commit()
    };
    let other_db = db.clone();
    let other = thread::spawn(move || skew(&other_db, b"y"));
    let first = skew(&db, b"x");
    let second = other.join().unwrap();
    for r in [&first, &second] {
        if let Err(e) = r {
            invariant!(
                matches!(e, MvccError::SerializationFailure { .. }) && e.is_retryable(),
                "{e}"
            );
        }
    }
    let snap = db.begin(TxnMode::ReadOnly).unwrap();
    let (x, y) = (snap.get(T, b"x").unwrap(), snap.get(T, b"y").unwrap());
    invariant!(
        !(x.as_deref() == Some(b"0") && y.as_deref() == Some(b"0")),
        "write skew committed: {first:?} / {second:?}"
    );
    invariant!(first.is_ok() || second.is_ok(), "both failed: {first:?} / {second:?}");
}

// Model 6: a phantom under Serializable. Each txn scans the range a..=c and inserts its own key
// into it if the range is empty. Both inserting would be a write skew through a phantom: keys
// neither txn could have read. Range validation must fail one of them. Preemption bound 3.

pub fn phantom() {
    use std::ops::Bound::Included;
    use strata_mvcc::{Isolation::Serializable, KeyRange};
    let db = db();
    let claim = |db: &Mvcc, mine: &[u8]| {
        let mut txn = db.begin_with(TxnMode::ReadWrite, Serializable).unwrap();
        let range = KeyRange::new(T, Included(b"a"), Included(b"c"));
        if txn.scan_range(range, false).unwrap().is_empty() {
            txn.write(T, mine, Some(b"1")).unwrap();
        }
        txn.commit()
    };
    let other_db = db.clone();
    let other = thread::spawn(move || claim(&other_db, b"b"));
    let first = claim(&db, b"a");
    let second = other.join().unwrap();
    let snap = db.begin(TxnMode::ReadOnly).unwrap();
    let rows = snap.scan(T).unwrap().len();
    invariant_eq!(rows, 1, "exactly one claim lands: {first:?} / {second:?}");
}

// Model 7: first committer wins across an aborted head (docs/design/lost-update-2026-11.md).
// `late` takes its snapshot, then W commits key a. X (snapshot after W) writes a and b; b gets a
// commit after X's snapshot, so X installs on a, conflicts on b and aborts. `late` commits a
// concurrently: whatever it finds at a's head (W's version, X's pending or aborted one), its
// snapshot predates W's commit, so it must fail. The bug this reproduces: an installer replaced
// X's aborted head without checking W's version below it, and overwrote W. Preemption bound 3.

pub fn aborted_head() {
    let db = db();
    put(&db, b"a", b"0");
    let mut late = db.begin(TxnMode::ReadWrite).unwrap();
    late.write(T, b"a", Some(b"late")).unwrap();
    let w_ts = put(&db, b"a", b"w");
    let mut x = db.begin(TxnMode::ReadWrite).unwrap();
    x.write(T, b"a", Some(b"x")).unwrap();
    x.write(T, b"b", Some(b"x")).unwrap();
    put(&db, b"b", b"y");
    let aborter = thread::spawn(move || x.commit());
    let late_result = late.commit();
    let x_result = aborter.join().unwrap();
    invariant!(
        matches!(x_result, Err(MvccError::Conflict { .. })),
        "X must conflict on b: {x_result:?}"
    );
    invariant!(
        matches!(late_result, Err(MvccError::Conflict { .. })),
        "lost update: a txn whose snapshot predates W's commit at {w_ts:?} committed over it: \
         {late_result:?}"
    );
    let now = db.begin(TxnMode::ReadOnly).unwrap().get(T, b"a").unwrap();
    invariant_eq!(now.as_deref(), Some(&b"w"[..]), "W's write must survive");
}

// Model 8: merges (mvcc/src/merge.rs). Two txns add 1 and 10 to one key while a third puts 100,
// all from one snapshot. The merges never conflict with each other; each conflicts with the put
// (first committer wins): either the put commits and both merges fail, or the put fails and
// both merges commit, the second applied to the first's result (0 + 1 + 10). Preemption bound 2.

pub fn merges_and_a_put() {
    let db = db();
    put(&db, b"k", &0i64.to_le_bytes());
    let mut m1 = db.begin(TxnMode::ReadWrite).unwrap();
    let mut m2 = db.begin(TxnMode::ReadWrite).unwrap();
    let mut p = db.begin(TxnMode::ReadWrite).unwrap();
    m1.merge(T, b"k", MergeOp::Add(1)).unwrap();
    m2.merge(T, b"k", MergeOp::Add(10)).unwrap();
    p.write(T, b"k", Some(&100i64.to_le_bytes())).unwrap();
    let one = thread::spawn(move || m1.commit());
    let two = thread::spawn(move || m2.commit());
    let put_result = p.commit();
    let (r1, r2) = (one.join().unwrap(), two.join().unwrap());
    let int = |v: Option<Vec<u8>>| v.map(|b| i64::from_le_bytes(b.try_into().unwrap()));
    let now = int(db.begin(TxnMode::ReadOnly).unwrap().get(T, b"k").unwrap());
    match &put_result {
        Ok(_) => {
            for r in [&r1, &r2] {
                invariant!(
                    matches!(r, Err(MvccError::Conflict { .. })),
                    "a merge committed beside a concurrent put: {r:?}"
                );
            }
            invariant_eq!(now, Some(100), "the put's value stands");
        }
        Err(e) => {
            invariant!(matches!(e, MvccError::Conflict { .. }), "{e}");
            let (Ok(t1), Ok(t2)) = (&r1, &r2) else {
                FIRED.store(true, std::sync::atomic::Ordering::SeqCst);
                panic!("{INVARIANT}: merges conflicted with each other: {r1:?} / {r2:?}");
            };
            invariant!(t1 != t2, "two commits at one timestamp: {t1:?}");
            invariant_eq!(now, Some(11), "a merge was lost");
        }
    }
}

// Model 9: a merge over a put whose serializable validation fails. P (serializable) reads r and
// puts k; W then commits r, so P's validation must fail. M takes its snapshot while P commits and
// adds 1 to k. M meets P's version at k's head in every state: active (M waits, bounded), publishing
// (judged by M's snapshot: a conflict if P's timestamp may be above it, else M waits for the
// verdict) or aborted (replaced). The bug this reproduces: M looked once (`settled`: publishing),
// then judged the head again and found it aborted, and took that for a broken chain — a
// state-machine assertion in a checked build, a needless conflict in a release one. Found by the
// serializable SQL history run, not by a model. Nothing here can tell that conflict from a legal
// one, so the model has no canary of its own: it is the assertions (the models run with
// `debug_assert!` on) that catch the bug, and reverting the fix makes this model fail.
// Preemption bound 2.

pub fn merge_over_a_failed_validation() {
    use strata_mvcc::Isolation::Serializable;
    let db = db();
    put(&db, b"k", &0i64.to_le_bytes());
    put(&db, b"r", b"0");
    let mut p = db.begin_with(TxnMode::ReadWrite, Serializable).unwrap();
    let _ = p.get(T, b"r").unwrap();
    p.write(T, b"k", Some(&100i64.to_le_bytes())).unwrap();
    put(&db, b"r", b"1");
    let putter = thread::spawn(move || p.commit());
    let mut m = db.begin(TxnMode::ReadWrite).unwrap();
    m.merge(T, b"k", MergeOp::Add(1)).unwrap();
    let merge_result = m.commit();
    let put_result = putter.join().unwrap();
    // P fails validation, or first committer wins against M's committed merge.
    invariant!(
        matches!(
            put_result,
            Err(MvccError::SerializationFailure { .. } | MvccError::Conflict { .. })
        ),
        "P read r before W's commit and must not commit: {put_result:?}"
    );
    if let Err(e) = &merge_result {
        // Only P can stand in M's way, and only while it may still commit.
        invariant!(
            matches!(e, MvccError::Conflict { committed_ts: None, .. }),
            "the merge failed on something other than a pending put: {e}"
        );
    }
    let int = |v: Option<Vec<u8>>| v.map(|b| i64::from_le_bytes(b.try_into().unwrap()));
    let now = int(db.begin(TxnMode::ReadOnly).unwrap().get(T, b"k").unwrap());
    invariant_eq!(
        now,
        Some(i64::from(merge_result.is_ok())),
        "k is 0 plus M's add if it committed"
    );
}

// Model 10: a chain hint across its chain's removal (ADR 0017, the limbo; `lockfree.rs`, "Chain
// hints and the limbo"). k's newest version is a tombstone, so a GC pass seals k's chain, removes
// it from the index and hands it to the limbo, and a second pass frees it if the limbo rule
// allows. Meanwhile T's thread commits j (moving the clock), begins T, reads k (finding the
// chain: a hint, kept without a pin), yields (the user code a txn runs between its statements),
// then writes k and commits. However the steps interleave, T's commit must never follow its hint
// into a chain the limbo freed (`canary::take_freed_hint`); the write lands (on the hinted chain,
// or on a fresh one if the hinted one was sealed) and a later snapshot reads it. Canaries: the
// limbo ignoring its stamps, and stamping before the removals instead of after (caught where T
// begins after the first pass's early reading, once j moved the clock, and reads k before the
// removal: one preemption into T's thread, whose yield hands the processor back). Under loom
// the model switches hints on (`canary::set_hints`). Preemption bound 2.

pub fn hint_across_a_removal() {
    let _ = strata_mvcc::canary::take_freed_hint(); // each execution starts clean
    let db = db();
    put(&db, b"k", b"1");
    let mut del = db.begin(TxnMode::ReadWrite).unwrap();
    del.write(T, b"k", None).unwrap();
    del.commit().unwrap();
    let t_db = db.clone();
    let txn = thread::spawn(move || {
        put(&t_db, b"j", b"y");
        let mut t = t_db.begin(TxnMode::ReadWrite).unwrap();
        let seen = t.get(T, b"k").unwrap();
        thread::yield_now();
        t.write(T, b"k", Some(b"x")).unwrap();
        (seen, t.commit())
    });
    db.collect_garbage(); // seals and removes k's chain: into the limbo
    db.collect_garbage(); // frees it once the watermark passes its stamp
    let (seen, committed) = txn.join().unwrap();
    invariant!(
        !strata_mvcc::canary::take_freed_hint(),
        "a commit followed a chain hint into a chain the limbo had freed"
    );
    invariant!(seen.is_none(), "k was deleted before T began: {seen:?}");
    invariant!(committed.is_ok(), "nothing else wrote k: {committed:?}");
    let r = db.begin(TxnMode::ReadOnly).unwrap();
    invariant_eq!(r.get(T, b"k").unwrap().as_deref(), Some(&b"x"[..]), "T's write of k is lost");
    invariant_eq!(r.get(T, b"j").unwrap().as_deref(), Some(&b"y"[..]), "j's write is lost");
}
