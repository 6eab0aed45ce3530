//! Ordered range scans through the public API, on both stores: order, bounds, reverse, prefixes,
//! own writes merged in, concurrent commits invisible, iterators outliving their txn, and keys
//! leaving the directory when GC drops them.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::ops::Bound;
use strata::{Database, Options};

mod common;
use common::dbs;

fn keys(rows: impl Iterator<Item = strata::Result<(Vec<u8>, Vec<u8>)>>) -> Vec<String> {
    rows.map(|r| String::from_utf8(r.unwrap().0).unwrap()).collect()
}

fn fill(db: &Database, t: &strata::Table, ks: &[&str]) {
    db.transaction(|txn| {
        for k in ks {
            txn.put(t, k, format!("v{k}"))?;
        }
        Ok(())
    })
    .unwrap();
}

#[test]
fn bounds_order_and_reverse() {
    for db in dbs() {
        let t = db.create_table("t").unwrap();
        let other = db.create_table("other").unwrap();
        fill(&db, &t, &["d", "a", "c", "b", "e", "ab"]);
        fill(&db, &other, &["a", "c", "z"]); // another table's keys never leak in
        let s = db.begin_read().unwrap();
        assert_eq!(keys(s.range(&t, "b".."d").unwrap()), ["b", "c"]);
        assert_eq!(keys(s.range(&t, "b"..="d").unwrap()), ["b", "c", "d"]);
        assert_eq!(keys(s.range(&t, "b"..).unwrap()), ["b", "c", "d", "e"]);
        assert_eq!(keys(s.range(&t, .."b").unwrap()), ["a", "ab"]);
        assert_eq!(keys(s.range::<&str>(&t, ..).unwrap()), ["a", "ab", "b", "c", "d", "e"]);
        assert_eq!(keys(s.range_rev(&t, "ab"..="d").unwrap()), ["d", "c", "b", "ab"]);
        assert_eq!(keys(s.range_rev::<&str>(&t, ..).unwrap()), ["e", "d", "c", "b", "ab", "a"]);
        let excl: (Bound<&str>, Bound<&str>) = (Bound::Excluded("a"), Bound::Excluded("c"));
        assert_eq!(keys(s.range::<&str>(&t, excl).unwrap()), ["ab", "b"]);
        assert_eq!(keys(s.prefix(&t, "a").unwrap()), ["a", "ab"]);
        assert!(keys(s.range(&t, "d".."b").unwrap()).is_empty(), "inverted bounds: empty");
        assert!(keys(s.range(&t, "c".."c").unwrap()).is_empty());
        assert_eq!(keys(s.range(&other, "b"..).unwrap()), ["c", "z"]);
        let values: Vec<_> = s.range(&t, "e"..).unwrap().map(|r| r.unwrap().1).collect();
        assert_eq!(values, [b"ve".to_vec()]);
    }
}

#[test]
fn own_writes_are_merged_in_order() {
    for db in dbs() {
        let t = db.create_table("t").unwrap();
        fill(&db, &t, &["b", "d", "f"]);
        let mut txn = db.begin().unwrap();
        txn.put(&t, "a", "mine").unwrap(); // before everything
        txn.put(&t, "d", "mine").unwrap(); // overwrites a snapshot row
        txn.delete(&t, "f").unwrap(); // hides a snapshot row
        txn.put(&t, "e", "mine").unwrap(); // between snapshot rows
        txn.put(&t, "z", "mine").unwrap(); // outside the range below
        let rows: Vec<_> = txn.range(&t, "a".."g").unwrap().map(Result::unwrap).collect();
        let got: Vec<(String, String)> = rows
            .into_iter()
            .map(|(k, v)| (String::from_utf8(k).unwrap(), String::from_utf8(v).unwrap()))
            .collect();
        let want = [("a", "mine"), ("b", "vb"), ("d", "mine"), ("e", "mine")];
        assert_eq!(got, want.map(|(k, v)| (k.to_string(), v.to_string())));
        assert_eq!(keys(txn.range_rev(&t, "a".."g").unwrap()), ["e", "d", "b", "a"]);
        assert_eq!(keys(txn.scan(&t).unwrap().into_iter().map(Ok)), ["a", "b", "d", "e", "z"]);
        // Writes made after the iterator was created are not seen by it.
        let it = txn.range(&t, "a"..).unwrap();
        txn.put(&t, "c", "later").unwrap();
        assert!(!keys(it).contains(&"c".to_string()));
        txn.rollback();
    }
}

#[test]
fn concurrent_commits_are_invisible_and_iterators_outlive_their_txn() {
    for db in dbs() {
        let t = db.create_table("t").unwrap();
        let many: Vec<String> = (0..2000).map(|i| format!("k{i:05}")).collect();
        let refs: Vec<&str> = many.iter().map(String::as_str).collect();
        fill(&db, &t, &refs);
        let snap = db.begin_read().unwrap();
        let mut it = snap.range::<&str>(&t, ..).unwrap();
        drop(snap); // the iterator keeps the snapshot alive
        let first = it.next().unwrap().unwrap();
        // Churn: delete every other key, insert new ones in between, overwrite the rest, and
        // collect garbage, while the iterator is half-way.
        db.transaction(|txn| {
            for (i, k) in many.iter().enumerate() {
                if i % 2 == 0 {
                    txn.delete(&t, k)?;
                } else {
                    txn.put(&t, k, "new")?;
                }
                txn.put(&t, format!("{k}x"), "inserted")?;
            }
            Ok(())
        })
        .unwrap();
        db.collect_garbage();
        let rest: Vec<_> = it.map(Result::unwrap).collect();
        assert_eq!(rest.len() + 1, many.len());
        assert_eq!(first.0, many[0].as_bytes());
        for ((k, v), want) in rest.iter().zip(&many[1..]) {
            assert_eq!(k, want.as_bytes());
            assert_eq!(v, format!("v{want}").as_bytes(), "old value, from the snapshot");
        }
        // A fresh snapshot sees the new state, in order.
        let now: Vec<_> = keys(db.begin_read().unwrap().range::<&str>(&t, ..).unwrap());
        assert_eq!(now.len(), many.len() / 2 + many.len());
        assert!(now.windows(2).all(|w| w[0] < w[1]));
    }
}

#[test]
fn gc_removes_dead_keys_from_the_directory() {
    let db = Database::with_options(Options::default().gc_interval(None));
    let t = db.create_table("t").unwrap();
    let ks: Vec<String> = (0..500).map(|i| format!("{i:04}")).collect();
    let refs: Vec<&str> = ks.iter().map(String::as_str).collect();
    fill(&db, &t, &refs);
    let keys_before = db.stats().keys;
    db.transaction(|txn| {
        for k in &ks[..400] {
            txn.delete(&t, k)?;
        }
        Ok(())
    })
    .unwrap();
    db.collect_garbage();
    let stats = db.stats();
    assert_eq!(stats.keys, keys_before - 400, "sealed chains leave the index and directory");
    let live = keys(db.begin_read().unwrap().range::<&str>(&t, ..).unwrap());
    assert_eq!(live, ks[400..]);
    // Re-inserting a removed key puts it back in the directory, in order.
    fill(&db, &t, &["0007"]);
    let live = keys(db.begin_read().unwrap().range::<&str>(&t, .."0401").unwrap());
    assert_eq!(live, ["0007", "0400"]);
}

#[test]
fn iterators_are_send() {
    fn send<T: Send + 'static>(_: &T) {}
    let db = Database::in_memory();
    let t = db.create_table("t").unwrap();
    fill(&db, &t, &["a", "b"]);
    let it = db.begin_read().unwrap().range::<&str>(&t, ..).unwrap();
    send(&it);
    let got = std::thread::spawn(move || keys(it)).join().unwrap();
    assert_eq!(got, ["a", "b"]);
}
