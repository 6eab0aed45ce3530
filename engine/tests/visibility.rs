//! Snapshot visibility through the public API, on both stores: a snapshot never changes while
//! others commit, a txn reads its own writes, deletes and re-inserts are versioned, scans merge
//! own writes in key order, and a multi-key commit is seen whole or not at all.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod common;
use common::dbs;

#[test]
fn snapshot_never_changes_while_others_commit() {
    for db in dbs() {
        let t = db.create_table("t").unwrap();
        db.transaction(|txn| txn.put(&t, b"k", b"v1")).unwrap();
        let snap = db.begin_read().unwrap();
        let old_rows = snap.scan(&t).unwrap();
        for i in 0..50u32 {
            db.transaction(|txn| {
                txn.put(&t, b"k", i.to_le_bytes())?;
                txn.put(&t, i.to_be_bytes(), b"new")?;
                Ok(())
            })
            .unwrap();
            assert_eq!(snap.get(&t, b"k").unwrap().as_deref(), Some(&b"v1"[..]));
            assert_eq!(snap.get(&t, i.to_be_bytes()).unwrap(), None);
        }
        db.collect_garbage();
        assert_eq!(
            snap.scan(&t).unwrap(),
            old_rows,
            "{:?}: GC must keep what the snapshot sees",
            db.options().store
        );
        let fresh = db.begin_read().unwrap();
        assert_eq!(fresh.get(&t, b"k").unwrap(), Some(49u32.to_le_bytes().to_vec()));
        assert_eq!(fresh.scan(&t).unwrap().len(), 51);
    }
}

#[test]
fn reads_own_writes_and_hides_them_from_others() {
    for db in dbs() {
        let t = db.create_table("t").unwrap();
        let mut txn = db.begin().unwrap();
        txn.put(&t, b"a", b"1").unwrap();
        assert_eq!(txn.get(&t, b"a").unwrap().as_deref(), Some(&b"1"[..]));
        let other = db.begin_read().unwrap();
        assert_eq!(other.get(&t, b"a").unwrap(), None, "uncommitted writes are invisible");
        txn.put(&t, b"a", b"2").unwrap();
        assert!(txn.get_with(&t, b"a", |v| v == Some(&b"2"[..])).unwrap(), "own write");
        assert!(txn.delete(&t, b"a").unwrap());
        assert_eq!(txn.get(&t, b"a").unwrap(), None);
        assert!(txn.get_with(&t, b"a", |v| v.is_none()).unwrap(), "own delete");
        txn.put(&t, b"a", b"3").unwrap();
        let ts = txn.commit().unwrap();
        assert!(ts > other.read_ts());
        assert_eq!(other.get(&t, b"a").unwrap(), None, "a snapshot taken before stays before");
        assert_eq!(db.begin_read().unwrap().get(&t, b"a").unwrap().as_deref(), Some(&b"3"[..]));
    }
}

#[test]
fn delete_and_reinsert_are_versioned() {
    for db in dbs() {
        let t = db.create_table("t").unwrap();
        db.transaction(|txn| txn.insert(&t, b"k", b"first")).unwrap();
        let s1 = db.begin_read().unwrap();
        assert!(db.transaction(|txn| txn.delete(&t, b"k")).unwrap());
        let s2 = db.begin_read().unwrap();
        assert!(!db.transaction(|txn| txn.delete(&t, b"k")).unwrap(), "deleting nothing");
        db.transaction(|txn| txn.insert(&t, b"k", b"second")).unwrap();
        db.collect_garbage();
        assert_eq!(s1.get(&t, b"k").unwrap().as_deref(), Some(&b"first"[..]));
        assert_eq!(s1.get_with(&t, b"k", |v| v.map(<[u8]>::len)).unwrap(), Some(5));
        assert_eq!(s2.get(&t, b"k").unwrap(), None);
        assert_eq!(s2.get_with(&t, b"k", |v| v.map(<[u8]>::len)).unwrap(), None, "deleted");
        let now = db.begin_read().unwrap();
        assert_eq!(now.get(&t, b"k").unwrap().as_deref(), Some(&b"second"[..]));
    }
}

#[test]
fn deleted_keys_leave_the_index_after_gc() {
    for db in dbs() {
        let t = db.create_table("t").unwrap();
        db.transaction(|txn| {
            for i in 0..100u32 {
                txn.put(&t, i.to_be_bytes(), b"x")?;
            }
            Ok(())
        })
        .unwrap();
        db.transaction(|txn| {
            for i in 0..100u32 {
                txn.delete(&t, i.to_be_bytes())?;
            }
            Ok(())
        })
        .unwrap();
        db.collect_garbage();
        let stats = db.stats();
        assert_eq!(stats.keys, 0, "{:?}: all-dead chains are dropped", db.options().store);
        assert_eq!(stats.live_versions, 0, "{stats:?}");
        // The keys can be written again after their chains were dropped.
        db.transaction(|txn| txn.insert(&t, 7u32.to_be_bytes(), b"back")).unwrap();
        assert_eq!(db.begin_read().unwrap().scan(&t).unwrap().len(), 1);
    }
}

#[test]
fn scan_is_ordered_and_merges_own_writes() {
    for db in dbs() {
        let t = db.create_table("t").unwrap();
        let u = db.create_table("u").unwrap();
        db.transaction(|txn| {
            for k in [b"b", b"d", b"f"] {
                txn.put(&t, k, b"old")?;
            }
            txn.put(&u, b"a", b"other table")?;
            Ok(())
        })
        .unwrap();
        let mut txn = db.begin().unwrap();
        txn.put(&t, b"a", b"new").unwrap();
        txn.put(&t, b"d", b"new").unwrap();
        txn.delete(&t, b"f").unwrap();
        txn.put(&t, b"z", b"new").unwrap();
        let rows = txn.scan(&t).unwrap();
        let expect: Vec<(Vec<u8>, Vec<u8>)> =
            [("a", "new"), ("b", "old"), ("d", "new"), ("z", "new")]
                .iter()
                .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
                .collect();
        assert_eq!(rows, expect);
        txn.rollback();
        assert_eq!(db.begin_read().unwrap().scan(&t).unwrap().len(), 3);
    }
}

#[test]
fn multi_key_commit_is_seen_whole() {
    for db in dbs() {
        let t = db.create_table("t").unwrap();
        db.transaction(|txn| {
            txn.put(&t, b"x", 0u64.to_le_bytes())?;
            txn.put(&t, b"y", 0u64.to_le_bytes())?;
            Ok(())
        })
        .unwrap();
        std::thread::scope(|s| {
            s.spawn(|| {
                for i in 1..=2000u64 {
                    db.transaction(|txn| {
                        txn.put(&t, b"x", i.to_le_bytes())?;
                        txn.put(&t, b"y", i.to_le_bytes())?;
                        Ok(())
                    })
                    .unwrap();
                }
            });
            for _ in 0..2000 {
                let snap = db.begin_read().unwrap();
                let x = snap.get(&t, b"x").unwrap();
                let y = snap.get(&t, b"y").unwrap();
                assert_eq!(x, y, "fractured read at {:?}", snap.read_ts());
            }
        });
    }
}
