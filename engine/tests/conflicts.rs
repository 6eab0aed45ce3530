//! First-committer-wins through the public API, on both stores: the second writer of a key
//! fails with a retryable conflict and none of its writes appear; a txn whose snapshot already
//! includes a commit does not conflict with it; concurrent inserts of one key admit one.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use strata::{Error, ErrorKind};

mod common;
use common::dbs;

#[test]
fn first_committer_wins() {
    for db in dbs() {
        let t = db.create_table("t").unwrap();
        db.transaction(|txn| txn.put(&t, b"k", b"0")).unwrap();
        let mut a = db.begin().unwrap();
        let mut b = db.begin().unwrap();
        a.put(&t, b"k", b"a").unwrap();
        b.put(&t, b"k", b"b").unwrap();
        b.put(&t, b"other", b"b").unwrap();
        a.commit().unwrap();
        let err = b.commit().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");
        assert!(err.is_retryable());
        let snap = db.begin_read().unwrap();
        assert_eq!(snap.get(&t, b"k").unwrap().as_deref(), Some(&b"a"[..]));
        assert_eq!(snap.get(&t, b"other").unwrap(), None, "the loser's other writes never appear");
        assert_eq!(db.stats().conflicts, 1);
    }
}

#[test]
fn a_later_snapshot_does_not_conflict() {
    for db in dbs() {
        let t = db.create_table("t").unwrap();
        let mut a = db.begin().unwrap();
        a.put(&t, b"k", b"a").unwrap();
        a.commit().unwrap();
        let mut b = db.begin().unwrap(); // snapshot includes a's commit
        b.put(&t, b"k", b"b").unwrap();
        b.commit().expect("no spurious conflict");
    }
}

#[test]
fn disjoint_writers_both_commit() {
    for db in dbs() {
        let t = db.create_table("t").unwrap();
        let mut a = db.begin().unwrap();
        let mut b = db.begin().unwrap();
        a.put(&t, b"a", b"1").unwrap();
        b.put(&t, b"b", b"1").unwrap();
        b.commit().unwrap();
        a.commit().unwrap();
        assert_eq!(db.begin_read().unwrap().scan(&t).unwrap().len(), 2);
    }
}

#[test]
fn concurrent_inserts_of_one_key_admit_one() {
    for db in dbs() {
        let t = db.create_table("t").unwrap();
        let mut a = db.begin().unwrap();
        let mut b = db.begin().unwrap();
        a.insert(&t, b"k", b"a").unwrap();
        b.insert(&t, b"k", b"b").unwrap();
        a.commit().unwrap();
        assert!(matches!(b.commit(), Err(Error::Conflict(_))));
        let mut c = db.begin().unwrap();
        let err = c.insert(&t, b"k", b"c").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::AlreadyExists, "{err}");
    }
}

#[test]
fn write_after_read_of_stale_value_conflicts() {
    // The lost-update shape: both read 0, both write read+1; exactly one may commit.
    for db in dbs() {
        let t = db.create_table("t").unwrap();
        db.transaction(|txn| txn.put(&t, b"n", 0u64.to_le_bytes())).unwrap();
        let mut a = db.begin().unwrap();
        let mut b = db.begin().unwrap();
        let read = |txn: &strata::Txn| {
            u64::from_le_bytes(txn.get(&t, b"n").unwrap().unwrap().try_into().unwrap())
        };
        let (va, vb) = (read(&a), read(&b));
        a.put(&t, b"n", (va + 1).to_le_bytes()).unwrap();
        b.put(&t, b"n", (vb + 1).to_le_bytes()).unwrap();
        assert!(a.commit().is_ok());
        assert!(b.commit().is_err());
    }
}
