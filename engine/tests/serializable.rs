//! `Isolation::Serializable` through the public API: write skew and phantoms that snapshot
//! isolation lets commit are refused with a retryable `SerializationFailure`; read-only and
//! write-free txns never fail; a txn whose reads were not touched commits; a failed commit's
//! timestamp is logged as an empty commit so recovery stays gap-free.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use strata::{Database, Durability, ErrorKind, Isolation, Options, StoreKind};

fn num(v: Option<Vec<u8>>) -> i64 {
    v.map_or(0, |b| String::from_utf8(b).unwrap().parse().unwrap())
}

/// The on-call doctors: each txn reads both, and takes itself off call if the other is on.
fn write_skew(db: &Database, isolation: Isolation) -> (bool, bool) {
    let t = db.create_or_open_table("doctors").unwrap();
    db.transaction(|txn| {
        txn.put(&t, "alice", "1")?;
        txn.put(&t, "bob", "1")
    })
    .unwrap();
    let mut a = db.begin_with(isolation).unwrap();
    let mut b = db.begin_with(isolation).unwrap();
    for (txn, me) in [(&mut a, "alice"), (&mut b, "bob")] {
        let on_call = num(txn.get(&t, "alice").unwrap()) + num(txn.get(&t, "bob").unwrap());
        assert_eq!(on_call, 2);
        txn.put(&t, me, "0").unwrap();
    }
    let ra = a.commit();
    let rb = b.commit();
    if let Err(e) = &rb {
        assert_eq!(e.kind(), ErrorKind::SerializationFailure, "{e}");
        assert!(e.is_retryable());
    }
    (ra.is_ok(), rb.is_ok())
}

#[test]
fn write_skew_commits_under_snapshot_and_fails_under_serializable() {
    let db = Database::in_memory();
    assert_eq!(write_skew(&db, Isolation::Snapshot), (true, true), "SI admits write skew");
    let db = Database::in_memory();
    assert_eq!(write_skew(&db, Isolation::Serializable), (true, false));
    let t = db.open_table("doctors").unwrap();
    let s = db.begin_read().unwrap();
    assert_eq!(num(s.get(&t, "alice").unwrap()) + num(s.get(&t, "bob").unwrap()), 1);
    assert_eq!(db.stats().conflicts, 1, "a serialization failure counts as a failed commit");
}

/// Each txn counts the rows in a range and inserts one more if it sees fewer than two.
fn phantom(db: &Database, isolation: Isolation) -> usize {
    let t = db.create_or_open_table("shifts").unwrap();
    db.transaction(|txn| txn.put(&t, "day1/carol", "x")).unwrap();
    let mut a = db.begin_with(isolation).unwrap();
    let mut b = db.begin_with(isolation).unwrap();
    for (txn, me) in [(&mut a, "day1/alice"), (&mut b, "day1/bob")] {
        let n = txn.prefix(&t, "day1/").unwrap().count();
        assert_eq!(n, 1);
        txn.put(&t, me, "x").unwrap();
    }
    let _ = a.commit();
    let _ = b.commit();
    db.begin_read().unwrap().prefix(&t, "day1/").unwrap().count()
}

#[test]
fn phantoms_are_caught_by_range_validation() {
    assert_eq!(phantom(&Database::in_memory(), Isolation::Snapshot), 3, "SI admits the phantom");
    assert_eq!(phantom(&Database::in_memory(), Isolation::Serializable), 2);
}

#[test]
fn a_range_is_validated_as_requested_not_as_consumed() {
    let db = Database::in_memory();
    let t = db.create_table("t").unwrap();
    db.transaction(|txn| txn.put(&t, "a", "1")).unwrap();
    let mut txn = db.begin_with(Isolation::Serializable).unwrap();
    // Reads only the first row of a..z, then writes elsewhere.
    assert_eq!(txn.range(&t, "a".."z").unwrap().next().unwrap().unwrap().0, b"a");
    txn.put(&t, "zz", "1").unwrap();
    // A concurrent insert far into the requested range, past what was consumed.
    db.transaction(|other| other.put(&t, "y", "1")).unwrap();
    let err = txn.commit().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::SerializationFailure, "{err}");
}

#[test]
fn untouched_reads_and_disjoint_ranges_commit() {
    let db = Database::in_memory();
    let t = db.create_table("t").unwrap();
    db.transaction(|txn| {
        txn.put(&t, "a", "1")?;
        txn.put(&t, "m", "1")
    })
    .unwrap();
    let mut txn = db.begin_with(Isolation::Serializable).unwrap();
    num(txn.get(&t, "a").unwrap());
    assert_eq!(txn.range(&t, "b".."f").unwrap().count(), 0);
    txn.put(&t, "out", "1").unwrap();
    // Others write outside what it read (a key past the range's end, one before it).
    db.transaction(|o| o.put(&t, "f", "1")).unwrap();
    db.transaction(|o| o.put(&t, "aa", "1")).unwrap();
    db.transaction(|o| o.put(&t, "m", "2")).unwrap();
    txn.commit().unwrap();
}

#[test]
fn read_only_and_write_free_txns_never_fail() {
    let db = Database::in_memory();
    let t = db.create_table("t").unwrap();
    db.transaction(|txn| txn.put(&t, "k", "1")).unwrap();
    let reader = db.begin_read().unwrap();
    let write_free = db.begin_with(Isolation::Serializable).unwrap();
    assert_eq!(num(reader.get(&t, "k").unwrap()), 1);
    assert_eq!(num(write_free.get(&t, "k").unwrap()), 1);
    assert_eq!(write_free.range::<&str>(&t, ..).unwrap().count(), 1);
    db.transaction(|txn| txn.put(&t, "k", "2")).unwrap();
    db.transaction(|txn| txn.put(&t, "new", "2")).unwrap();
    assert_eq!(num(reader.get(&t, "k").unwrap()), 1, "still its snapshot");
    write_free.commit().unwrap(); // serialized at its snapshot
}

#[test]
fn own_writes_are_not_a_failure() {
    let db = Database::in_memory();
    let t = db.create_table("t").unwrap();
    let mut txn = db.begin_with(Isolation::Serializable).unwrap();
    txn.put(&t, "k", "1").unwrap();
    assert_eq!(num(txn.get(&t, "k").unwrap()), 1);
    assert_eq!(txn.range::<&str>(&t, ..).unwrap().count(), 1);
    txn.commit().unwrap();
}

#[test]
fn transaction_with_retries_serialization_failures() {
    // Each txn reads every thread's counter and writes max + 1 to its own: no two txns write
    // the same key, so only read validation keeps two of them from handing out one number.
    let db = Database::with_options(Options::default().isolation(Isolation::Serializable));
    let t = db.create_table("t").unwrap();
    let threads = 4;
    let per_thread = 200;
    let handed_out: Vec<Vec<i64>> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|i| {
                let (db, t) = (&db, &t);
                s.spawn(move || {
                    (0..per_thread)
                        .map(|_| {
                            db.transaction(|txn| {
                                let mut max = 0;
                                for j in 0..threads {
                                    max = max.max(num(txn.get(t, format!("c{j}"))?));
                                }
                                txn.put(t, format!("c{i}"), (max + 1).to_string())?;
                                Ok(max + 1)
                            })
                            .unwrap()
                        })
                        .collect()
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    let mut all: Vec<i64> = handed_out.into_iter().flatten().collect();
    all.sort_unstable();
    let want: Vec<i64> = (1..=(threads * per_thread) as i64).collect();
    assert_eq!(all, want, "every number handed out exactly once");
}

#[test]
fn the_baseline_store_refuses_serializable() {
    let db = Database::with_options(Options::default().store(StoreKind::Baseline));
    let err = db.begin_with(Isolation::Serializable).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    assert!(err.to_string().contains("not supported"), "{err}");
}

#[test]
fn a_failed_commit_leaves_an_empty_log_record_and_recovery_stays_gap_free() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("serializable");
    let opts = Options::default().durability(Durability::Sync).segment_bytes(64 * 1024);
    {
        let db = Database::open(&dir, opts.clone()).unwrap();
        assert_eq!(write_skew(&db, Isolation::Serializable), (true, false));
        let t = db.open_table("doctors").unwrap();
        // Commits after the failed one must be recovered (no gap at its timestamp).
        db.transaction(|txn| txn.put(&t, "carol", "1")).unwrap();
        db.close().unwrap();
    }
    let report = strata::check(&dir).unwrap();
    assert!(!report.is_corrupt(), "{report:?}");
    assert_eq!(report.recovery.records_dropped, 0, "{report:?}");
    let db = Database::open(&dir, opts).unwrap();
    let t = db.open_table("doctors").unwrap();
    let s = db.begin_read().unwrap();
    assert_eq!(num(s.get(&t, "carol").unwrap()), 1);
    assert_eq!(num(s.get(&t, "alice").unwrap()) + num(s.get(&t, "bob").unwrap()), 1);
    assert_eq!(db.recovery_report().unwrap().records_dropped, 0);
    db.close().unwrap();
}
