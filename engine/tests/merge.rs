//! Merges through the public API, on both stores: concurrent merges into one key all commit and
//! sum exactly; a merge and a put or delete of its key conflict, first committer wins, in either
//! order and through a run of merges; a txn reads its own merges; a value the operator does not
//! take fails the commit with a typed error and changes nothing; serializable txns are not
//! validated for their merges; the log, recovery and the base carry merges.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::sync::atomic::{AtomicU64, Ordering};
use strata::{Database, ErrorKind, Isolation, MergeOp, Options, StoreKind, Table};

mod common;
use common::dbs;

fn int(v: Option<Vec<u8>>) -> Option<i64> {
    v.map(|b| i64::from_le_bytes(b.try_into().expect("an 8-byte integer")))
}

fn read(db: &Database, t: &Table, key: &[u8]) -> Option<i64> {
    int(db.begin_read().unwrap().get(t, key).unwrap())
}

#[test]
fn concurrent_merges_into_one_key_all_commit() {
    for db in dbs() {
        let t = db.create_table("t").unwrap();
        db.transaction(|txn| txn.put(&t, b"k", 5i64.to_le_bytes())).unwrap();
        let mut a = db.begin().unwrap();
        let mut b = db.begin().unwrap();
        let mut c = db.begin().unwrap();
        a.add(&t, b"k", 1).unwrap();
        b.add(&t, b"k", 10).unwrap();
        c.add(&t, b"k", 100).unwrap();
        c.add(&t, b"fresh", -3).unwrap();
        let (ta, tb, tc) = (a.commit().unwrap(), b.commit().unwrap(), c.commit().unwrap());
        assert!(ta < tb && tb < tc);
        assert_eq!(read(&db, &t, b"k"), Some(116));
        assert_eq!(read(&db, &t, b"fresh"), Some(-3), "an absent value counts as 0");
        assert_eq!(db.stats().conflicts, 0);
    }
}

#[test]
fn a_merge_and_a_put_of_one_key_conflict_in_either_order() {
    for db in dbs() {
        let t = db.create_table("t").unwrap();
        db.transaction(|txn| txn.put(&t, b"k", 0i64.to_le_bytes())).unwrap();
        // The put commits first: the merge, whose snapshot predates it, loses.
        let mut m = db.begin().unwrap();
        let mut p = db.begin().unwrap();
        m.add(&t, b"k", 1).unwrap();
        p.put(&t, b"k", 50i64.to_le_bytes()).unwrap();
        p.commit().unwrap();
        assert_eq!(m.commit().unwrap_err().kind(), ErrorKind::Conflict);
        assert_eq!(read(&db, &t, b"k"), Some(50));
        // The merge commits first: the put loses.
        let mut m = db.begin().unwrap();
        let mut d = db.begin().unwrap();
        m.add(&t, b"k", 1).unwrap();
        d.delete(&t, b"k").unwrap();
        m.commit().unwrap();
        assert_eq!(d.commit().unwrap_err().kind(), ErrorKind::Conflict);
        assert_eq!(read(&db, &t, b"k"), Some(51));
        // A put, then a merge over it, both after the snapshot: the run of merges on top does
        // not hide the put.
        let mut late = db.begin().unwrap();
        late.add(&t, b"k", 1000).unwrap();
        db.transaction(|txn| txn.put(&t, b"k", 7i64.to_le_bytes())).unwrap();
        db.transaction(|txn| txn.add(&t, b"k", 1)).unwrap();
        db.transaction(|txn| txn.add(&t, b"k", 1)).unwrap();
        assert_eq!(late.commit().unwrap_err().kind(), ErrorKind::Conflict);
        assert_eq!(read(&db, &t, b"k"), Some(9));
    }
}

#[test]
fn a_txn_reads_its_own_merges() {
    for db in dbs() {
        let t = db.create_table("t").unwrap();
        db.transaction(|txn| txn.put(&t, b"k", 40i64.to_le_bytes())).unwrap();
        let mut txn = db.begin().unwrap();
        txn.add(&t, b"k", 1).unwrap();
        txn.add(&t, b"k", 1).unwrap();
        assert_eq!(int(txn.get(&t, b"k").unwrap()), Some(42));
        let rows = txn.scan(&t).unwrap();
        assert_eq!(rows, vec![(b"k".to_vec(), 42i64.to_le_bytes().to_vec())]);
        // Someone else adds meanwhile: our commit applies to their result, not our snapshot.
        db.transaction(|o| o.add(&t, b"k", 100)).unwrap();
        assert_eq!(int(txn.get(&t, b"k").unwrap()), Some(42), "the snapshot does not move");
        txn.commit().unwrap();
        assert_eq!(read(&db, &t, b"k"), Some(142));
        // Over an own put, and over an own delete, a merge applies at once.
        let mut txn = db.begin().unwrap();
        txn.put(&t, b"p", 1i64.to_le_bytes()).unwrap();
        txn.add(&t, b"p", 2).unwrap();
        txn.delete(&t, b"k").unwrap();
        txn.add(&t, b"k", 5).unwrap();
        assert_eq!(int(txn.get(&t, b"p").unwrap()), Some(3));
        assert_eq!(int(txn.get(&t, b"k").unwrap()), Some(5));
        txn.commit().unwrap();
        assert_eq!((read(&db, &t, b"p"), read(&db, &t, b"k")), (Some(3), Some(5)));
    }
}

#[test]
fn a_value_the_operator_does_not_take_fails_the_commit_and_changes_nothing() {
    for db in dbs() {
        let t = db.create_table("t").unwrap();
        db.transaction(|txn| {
            txn.put(&t, b"text", b"abc")?;
            txn.put(&t, b"max", i64::MAX.to_le_bytes())
        })
        .unwrap();
        for key in [&b"text"[..], b"max"] {
            let mut txn = db.begin().unwrap();
            txn.put(&t, b"other", b"x").unwrap();
            txn.add(&t, key, 1).unwrap();
            let err = txn.commit().unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
            assert!(!err.is_retryable());
            assert!(err.to_string().contains("merge"), "{err}");
            assert_eq!(db.begin_read().unwrap().get(&t, b"other").unwrap(), None);
        }
        assert_eq!(read(&db, &t, b"max"), Some(i64::MAX));
        // AddAt on a missing row, and past the end of one.
        let mut txn = db.begin().unwrap();
        txn.merge(&t, b"nothing", MergeOp::AddAt { offset: 0, delta: 1 }).unwrap();
        assert_eq!(txn.commit().unwrap_err().kind(), ErrorKind::InvalidInput);
        let mut txn = db.begin().unwrap();
        txn.merge(&t, b"text", MergeOp::AddAt { offset: 1, delta: 1 }).unwrap();
        assert_eq!(txn.get(&t, b"text").unwrap_err().kind(), ErrorKind::InvalidInput);
        assert_eq!(txn.commit().unwrap_err().kind(), ErrorKind::InvalidInput);
        assert_eq!(
            db.begin_read().unwrap().get(&t, b"text").unwrap().as_deref(),
            Some(&b"abc"[..])
        );
    }
}

#[test]
fn a_field_of_a_row_adds_in_place() {
    for db in dbs() {
        let t = db.create_table("t").unwrap();
        let mut row = b"name".to_vec();
        row.extend_from_slice(&10i64.to_le_bytes());
        row.extend_from_slice(b"tail");
        db.transaction(|txn| txn.put(&t, b"r", &row)).unwrap();
        let mut a = db.begin().unwrap();
        let mut b = db.begin().unwrap();
        a.merge(&t, b"r", MergeOp::AddAt { offset: 4, delta: 5 }).unwrap();
        b.merge(&t, b"r", MergeOp::AddAt { offset: 4, delta: -2 }).unwrap();
        a.commit().unwrap();
        b.commit().unwrap();
        let got = db.begin_read().unwrap().get(&t, b"r").unwrap().unwrap();
        assert_eq!(&got[..4], b"name");
        assert_eq!(i64::from_le_bytes(got[4..12].try_into().unwrap()), 13);
        assert_eq!(&got[12..], b"tail");
    }
}

#[test]
fn serializable_txns_are_not_validated_for_their_merges() {
    let db = Database::in_memory();
    let t = db.create_table("t").unwrap();
    db.transaction(|txn| txn.put(&t, b"k", 0i64.to_le_bytes())).unwrap();
    let mut a = db.begin_with(Isolation::Serializable).unwrap();
    let mut b = db.begin_with(Isolation::Serializable).unwrap();
    a.add(&t, b"k", 1).unwrap();
    b.add(&t, b"k", 2).unwrap();
    a.commit().unwrap();
    b.commit().expect("a merge reads nothing, so a concurrent merge does not invalidate it");
    assert_eq!(read(&db, &t, b"k"), Some(3));
    // A serializable txn that *read* the key is validated as usual.
    let mut r = db.begin_with(Isolation::Serializable).unwrap();
    assert_eq!(int(r.get(&t, b"k").unwrap()), Some(3));
    r.put(&t, b"copy", 3i64.to_le_bytes()).unwrap();
    db.transaction(|txn| txn.add(&t, b"k", 1)).unwrap();
    assert_eq!(r.commit().unwrap_err().kind(), ErrorKind::SerializationFailure);
}

/// Threads (more than cores) add to a few keys while others read: every merge commits, none
/// conflicts, and the totals are exact. Some txns merge into two keys, which exercises waits
/// on a pending multi-key writer.
#[test]
fn many_threads_merging_lose_no_increment() {
    for db in dbs() {
        let t = db.create_table("t").unwrap();
        let threads = 8u64;
        let per_thread = 400u64;
        let done = AtomicU64::new(0);
        std::thread::scope(|s| {
            for id in 0..threads {
                let (db, t, done) = (&db, &t, &done);
                s.spawn(move || {
                    for i in 0..per_thread {
                        let mut txn = db.begin().unwrap();
                        let key = [(i % 3) as u8];
                        txn.add(t, key, 1).unwrap();
                        if (i + id) % 4 == 0 {
                            txn.add(t, b"pair", 2).unwrap();
                        }
                        txn.commit().expect("merges never conflict");
                    }
                    done.fetch_add(1, Ordering::Relaxed);
                });
            }
            s.spawn(|| {
                // Totals only grow, as snapshots see them.
                let mut last = 0;
                while done.load(Ordering::Relaxed) < threads {
                    let snap = db.begin_read().unwrap();
                    let total: i64 =
                        (0..3u8).map(|k| int(snap.get(&t, [k]).unwrap()).unwrap_or(0)).sum();
                    assert!(total >= last, "a snapshot lost increments: {total} < {last}");
                    last = total;
                }
            });
        });
        let snap = db.begin_read().unwrap();
        let total: i64 = (0..3u8).map(|k| int(snap.get(&t, [k]).unwrap()).unwrap()).sum();
        assert_eq!(total as u64, threads * per_thread);
        let pairs = (0..threads)
            .map(|id| (0..per_thread).filter(|i| (i + id) % 4 == 0).count() as i64)
            .sum::<i64>();
        assert_eq!(int(snap.get(&t, b"pair").unwrap()), Some(2 * pairs));
        assert_eq!(db.stats().conflicts, 0);
        // Every version holds a whole value: GC keeps only the newest of each key, and the
        // totals read the same after it.
        drop(snap);
        db.collect_garbage();
        let stats = db.stats();
        assert_eq!(stats.versions_installed - stats.versions_reclaimed, stats.keys);
        let snap = db.begin_read().unwrap();
        let after: i64 = (0..3u8).map(|k| int(snap.get(&t, [k]).unwrap()).unwrap()).sum();
        assert_eq!(after, total);
    }
}

/// The log carries merges and recovery applies them again in commit order, on top of the
/// base's rows; merges into rows that live only in the base apply to those rows.
#[test]
fn merges_survive_recovery_and_apply_to_rows_in_the_base() {
    for store in [StoreKind::LockFree, StoreKind::Baseline] {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("db");
        let options = || {
            Options::default().store(store).checkpoints(u64::MAX, None).checkpoint_on_close(false)
        };
        {
            let db = Database::open(&dir, options()).unwrap();
            let t = db.create_table("t").unwrap();
            db.transaction(|txn| txn.put(&t, b"base", 100i64.to_le_bytes())).unwrap();
            db.checkpoint().unwrap();
            db.collect_garbage();
            // The row lives only in the base now; merges apply to it.
            db.transaction(|txn| txn.add(&t, b"base", 1)).unwrap();
            db.transaction(|txn| txn.add(&t, b"base", 1)).unwrap();
            db.transaction(|txn| txn.add(&t, b"new", 7)).unwrap();
            db.transaction(|txn| txn.put(&t, b"put", 1i64.to_le_bytes())).unwrap();
            db.transaction(|txn| txn.add(&t, b"put", 1)).unwrap();
            assert_eq!(read(&db, &t, b"base"), Some(102));
            drop(db); // no checkpoint on close: recovery replays the merges from the log
        }
        let db = Database::open(&dir, options()).unwrap();
        let t = db.open_table("t").unwrap();
        assert_eq!(read(&db, &t, b"base"), Some(102), "{store:?}");
        assert_eq!(read(&db, &t, b"new"), Some(7));
        assert_eq!(read(&db, &t, b"put"), Some(2));
        // A checkpoint writes the merged values; after it, merges go on from them.
        db.checkpoint().unwrap();
        db.collect_garbage();
        db.transaction(|txn| txn.add(&t, b"base", 10)).unwrap();
        drop(db);
        let db = Database::open(&dir, options()).unwrap();
        let t = db.open_table("t").unwrap();
        assert_eq!(read(&db, &t, b"base"), Some(112), "{store:?}");
        drop(db);
        assert!(!strata::check(&dir).unwrap().is_corrupt());
    }
}

/// Merges never conflict, so every thread stays inside a txn and a hot key gets many versions
/// above the oldest live snapshot, deeper than the commit's shallow inline cut looks. Here each
/// thread keeps one merging txn open across its next hundred commits, so the oldest snapshot always
/// lags well over the shallow cut's reach. With the background GC off, only the committers' own
/// (deep, amortized) cuts reclaim: memory must follow the live snapshots, not the number of
/// commits. (Before the deep cut, every version stayed; in a 4 s run of 8 threads on 2 cores,
/// millions.)
#[test]
fn merging_threads_reclaim_their_own_garbage() {
    let db = Database::with_options(Options::default().gc_interval(None));
    let t = db.create_table("t").unwrap();
    let (threads, per_thread) = (8u64, 4_000u64);
    std::thread::scope(|s| {
        for id in 0..threads {
            let (db, t) = (&db, &t);
            s.spawn(move || {
                let mut held: Option<strata::Txn> = None;
                for i in 0..per_thread {
                    let key = [((i + id) % 10) as u8];
                    if i % 100 == 0 {
                        if let Some(old) = held.take() {
                            old.commit().expect("merges never conflict");
                        }
                        let mut txn = db.begin().unwrap();
                        txn.add(t, key, 1).unwrap();
                        held = Some(txn);
                    } else {
                        db.transaction(|txn| txn.add(t, key, 1)).unwrap();
                    }
                }
                held.unwrap().commit().expect("merges never conflict");
            });
        }
    });
    let stats = db.stats();
    let live = stats.versions_installed - stats.versions_reclaimed;
    assert!(
        live < threads * per_thread / 4,
        "{live} versions live after {} merges into 10 keys",
        threads * per_thread
    );
    let total: i64 = (0..10u8).map(|k| read(&db, &t, &[k]).unwrap()).sum();
    assert_eq!(total as u64, threads * per_thread);
}

/// `merge_found`: a serializable txn that read a key only to find its row and merges into it is
/// not validated for that read, so concurrent ones all commit; a txn that read the key before
/// (a second, earlier read), or read another key after it, stays validated.
#[test]
fn merge_found_waives_only_the_finding_read() {
    let db = Database::in_memory();
    let t = db.create_table("t").unwrap();
    db.transaction(|txn| txn.put(&t, b"k", 0i64.to_le_bytes())).unwrap();
    let begin = || db.begin_with(Isolation::Serializable).unwrap();
    let (mut a, mut b) = (begin(), begin());
    for txn in [&mut a, &mut b] {
        assert!(txn.get(&t, b"k").unwrap().is_some());
        txn.merge_found(&t, b"k", MergeOp::Add(1)).unwrap();
    }
    a.commit().unwrap();
    b.commit().expect("the finding read is not validated");
    assert_eq!(read(&db, &t, b"k"), Some(2));

    // One txn reads `reads` in order (each read of k sees k as it was at begin), merges into k
    // with `merge_found`, and commits after another txn added 100 to k.
    db.transaction(|txn| txn.put(&t, b"j", 0i64.to_le_bytes())).unwrap();
    let after_reads = |reads: &[&[u8]]| {
        let at_begin = read(&db, &t, b"k");
        let mut txn = begin();
        for key in reads {
            let seen = int(txn.get(&t, key).unwrap());
            assert!(seen.is_some());
            if *key == b"k" {
                assert_eq!(seen, at_begin, "the read comes from the snapshot");
            }
        }
        txn.merge_found(&t, b"k", MergeOp::Add(1)).unwrap();
        db.transaction(|other| other.add(&t, b"k", 100)).unwrap();
        txn.commit()
    };

    // Read twice: the first read stays in the read set and fails the commit.
    let err = after_reads(&[b"k", b"k"]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::SerializationFailure, "{err}");
    assert_eq!(read(&db, &t, b"k"), Some(102));

    // Read k, then another key: k's read is not the last one, so nothing is waived (a caller
    // that read k long before may rely on its value).
    let err = after_reads(&[b"k", b"j"]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::SerializationFailure, "{err}");
    assert_eq!(read(&db, &t, b"k"), Some(202));

    // The same reads the other way round: k's read is the last one, is waived, and commits.
    after_reads(&[b"j", b"k"]).expect("k's read was the last and is waived");
    assert_eq!(read(&db, &t, b"k"), Some(303));
}
