//! Txn and table lifecycles through the public API: rollback, drop without commit, a panic
//! inside `transaction`, the retry bound, tables (create/open/drop/list), and txns that move
//! between threads. Every path must leave the snapshot registry empty afterwards.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::time::Duration;
use strata::{Database, Error, ErrorKind, Options, RetryPolicy, StoreKind};

mod common;
use common::dbs;

#[test]
fn rollback_discards_writes() {
    for db in dbs() {
        let t = db.create_table("t").unwrap();
        let mut txn = db.begin().unwrap();
        txn.put(&t, b"k", b"v").unwrap();
        txn.rollback();
        assert_eq!(db.begin_read().unwrap().get(&t, b"k").unwrap(), None);
        let s = db.stats();
        assert_eq!(s.active_snapshots, 0);
        assert_eq!(s.rollbacks, 1);
    }
}

#[test]
fn dropping_an_uncommitted_txn_rolls_back() {
    for db in dbs() {
        let t = db.create_table("t").unwrap();
        {
            let mut txn = db.begin().unwrap();
            txn.put(&t, b"k", b"v").unwrap();
            assert_eq!(db.stats().active_snapshots, 1);
        }
        assert_eq!(db.stats().active_snapshots, 0);
        assert_eq!(db.begin_read().unwrap().get(&t, b"k").unwrap(), None);
    }
}

#[test]
fn panic_inside_transaction_rolls_back_and_is_an_error() {
    for db in dbs() {
        let t = db.create_table("t").unwrap();
        let result: strata::Result<()> = db.transaction(|txn| {
            txn.put(&t, b"k", b"v")?;
            panic!("user bug");
        });
        let err = result.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Panicked);
        assert!(err.to_string().contains("user bug"), "{err}");
        assert_eq!(db.stats().active_snapshots, 0);
        assert_eq!(db.begin_read().unwrap().get(&t, b"k").unwrap(), None);
        // The database is still fully usable.
        db.transaction(|txn| txn.put(&t, b"k", b"ok")).unwrap();
    }
}

#[test]
fn panic_in_a_thread_holding_a_txn_leaves_the_registry() {
    let db = Database::in_memory();
    let t = db.create_table("t").unwrap();
    let db2 = db.clone();
    let joined = std::thread::spawn(move || {
        let mut txn = db2.begin().unwrap();
        txn.put(&t, b"k", b"v").unwrap();
        panic!("thread dies holding a txn");
    })
    .join();
    assert!(joined.is_err());
    assert_eq!(db.stats().active_snapshots, 0);
}

#[test]
fn retry_helper_gives_up_after_the_bound() {
    for store in [StoreKind::LockFree, StoreKind::Baseline] {
        let policy = RetryPolicy {
            max_attempts: 5,
            base_backoff: Duration::from_micros(1),
            max_backoff: Duration::from_micros(50),
        };
        let db = Database::with_options(Options::default().store(store).retry(policy));
        let t = db.create_table("t").unwrap();
        let mut runs = 0;
        let result = db.transaction(|txn| {
            runs += 1;
            txn.put(&t, b"k", b"mine")?;
            // Another committer always wins the key before we commit.
            db.transaction(|other| other.put(&t, b"k", b"theirs"))?;
            Ok(())
        });
        match result {
            Err(Error::RetryLimitExceeded { attempts, last }) => {
                assert_eq!(attempts, 5);
                assert_eq!(last.kind(), ErrorKind::Conflict);
            }
            other => panic!("expected RetryLimitExceeded, got {other:?}"),
        }
        assert_eq!(runs, 5);
        assert_eq!(db.stats().retries, 4);
        assert_eq!(db.stats().active_snapshots, 0);
    }
}

#[test]
fn retry_helper_retries_until_success() {
    let db = Database::in_memory();
    let t = db.create_table("t").unwrap();
    let mut runs = 0;
    db.transaction(|txn| {
        runs += 1;
        txn.put(&t, b"k", b"mine")?;
        if runs < 3 {
            db.transaction(|other| other.put(&t, b"k", b"theirs"))?;
        }
        Ok(())
    })
    .unwrap();
    assert_eq!(runs, 3);
    assert_eq!(db.begin_read().unwrap().get(&t, b"k").unwrap().as_deref(), Some(&b"mine"[..]));
}

#[test]
fn non_retryable_errors_are_returned_at_once() {
    let db = Database::in_memory();
    let t = db.create_table("t").unwrap();
    db.transaction(|txn| txn.insert(&t, b"k", b"v")).unwrap();
    let mut runs = 0;
    let err = db
        .transaction(|txn| {
            runs += 1;
            txn.insert(&t, b"k", b"again")
        })
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists);
    assert_eq!(runs, 1);
}

#[test]
fn tables_create_open_drop_list() {
    let db = Database::in_memory();
    let a = db.create_table("a").unwrap();
    db.create_table("b").unwrap();
    assert_eq!(db.create_table("a").unwrap_err().kind(), ErrorKind::AlreadyExists);
    assert_eq!(db.create_table("").unwrap_err().kind(), ErrorKind::InvalidInput);
    assert_eq!(db.create_table(&"x".repeat(300)).unwrap_err().kind(), ErrorKind::InvalidInput);
    assert_eq!(db.list_tables(), vec!["a".to_string(), "b".to_string()]);
    assert_eq!(db.open_table("a").unwrap().id(), a.id());
    assert_eq!(db.open_table("nope").unwrap_err().kind(), ErrorKind::NotFound);
    db.transaction(|txn| txn.put(&a, b"k", b"v")).unwrap();
    let mut pending = db.begin().unwrap();
    pending.put(&a, b"k2", b"v").unwrap();
    db.drop_table("a").unwrap();
    let err = pending.commit().unwrap_err();
    assert!(matches!(&err, Error::TableDropped { name } if name == "a"), "named by name: {err}");
    assert_eq!(db.list_tables(), vec!["b".to_string()]);
    assert!(matches!(db.begin_read().unwrap().get(&a, b"k"), Err(Error::TableDropped { .. })));
    db.collect_garbage();
    assert_eq!(db.stats().keys, 0, "the dropped table's rows are gone");
    let a2 = db.create_table("a").unwrap();
    assert_ne!(a2.id(), a.id(), "table ids are never reused");
    assert_eq!(db.begin_read().unwrap().scan(&a2).unwrap(), vec![]);
    assert_eq!(db.drop_table("a2").unwrap_err().kind(), ErrorKind::NotFound);
}

#[test]
fn read_only_snapshots_cannot_write_and_txns_move_between_threads() {
    let db = Database::in_memory();
    let t = db.create_table("t").unwrap();
    let mut txn = db.begin().unwrap();
    txn.put(&t, b"k", b"v").unwrap();
    let t2 = t.clone();
    let ts = std::thread::spawn(move || {
        let mut txn = txn;
        txn.put(&t2, b"k2", b"v").unwrap();
        txn.commit().unwrap()
    })
    .join()
    .unwrap();
    let snap = db.begin_read().unwrap();
    assert!(snap.read_ts() >= ts);
    let rows = std::thread::spawn(move || snap.scan(&t).unwrap()).join().unwrap();
    assert_eq!(rows.len(), 2);
}

#[test]
fn oversized_input_is_a_typed_error() {
    let db = Database::in_memory();
    let t = db.create_table("t").unwrap();
    let mut txn = db.begin().unwrap();
    let err = txn.put(&t, vec![0u8; strata::KEY_BYTES_MAX + 1], b"v").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    txn.put(&t, b"fine", b"v").unwrap();
    txn.commit().unwrap();
}

#[test]
fn stats_report_gc_lag_and_snapshot_age() {
    let db = Database::with_options(Options::default().gc_interval(None));
    let t = db.create_table("t").unwrap();
    let snap = db.begin_read().unwrap();
    for i in 0..10u32 {
        db.transaction(|txn| txn.put(&t, b"k", i.to_le_bytes())).unwrap();
    }
    let s = db.stats();
    assert_eq!(s.active_snapshots, 1);
    assert_eq!(s.oldest_snapshot_age, 10);
    assert_eq!(s.commits, 10);
    db.collect_garbage();
    assert_eq!(db.stats().gc_lag, 10, "the snapshot holds the watermark back");
    drop(snap);
    db.collect_garbage();
    let s = db.stats();
    assert_eq!((s.gc_lag, s.live_versions, s.gc_passes), (0, 1, 2), "{s:?}");
}

/// `close` on an in-memory database must not return while a commit can still land: before, the
/// closed flag was a Relaxed store that a commit past its first check never looked at again, so
/// the clock moved after `close` returned. Many rounds, 8 committers on 2 cores, on both stores.
#[test]
fn close_on_an_in_memory_database_waits_for_in_flight_commits() {
    for round in 0..60 {
        for db in dbs() {
            let t = db.create_table("t").unwrap();
            let clock_at_close = std::thread::scope(|s| {
                for th in 0..8u32 {
                    let (db, t) = (&db, &t);
                    s.spawn(move || {
                        for i in 0u32.. {
                            let key = (th << 24 | i).to_be_bytes();
                            if let Err(e) = db.transaction(|txn| txn.put(t, key, b"v")) {
                                assert_eq!(e.kind(), ErrorKind::Closed, "{e}");
                                break;
                            }
                        }
                    });
                }
                std::thread::sleep(Duration::from_millis(2));
                db.close().unwrap();
                db.stats().clock
            });
            assert_eq!(
                db.stats().clock,
                clock_at_close,
                "round {round}: a commit landed after close returned ({:?})",
                db.stats().store
            );
        }
    }
}
