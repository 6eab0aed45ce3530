//! Memory stays bounded: 1M single-key updates over 1,000 keys with no long reader leave at most
//! a few thousand live versions (inline GC on commit keeps chains short); with one reader held
//! open, every version it can see survives GC, and all of them are reclaimed once it ends.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use strata::{Database, Options, StoreKind};

const KEYS: u64 = 1000;
const UPDATES: u64 = 1_000_000;

fn update_all(db: &Database, t: &strata::Table, updates: u64, threads: u64) {
    std::thread::scope(|s| {
        for th in 0..threads {
            s.spawn(move || {
                for i in 0..updates / threads {
                    let key = ((i * 7919 + th) % KEYS).to_be_bytes();
                    db.transaction(|txn| txn.put(t, key, i.to_le_bytes())).unwrap();
                }
            });
        }
    });
}

#[test]
fn a_million_updates_leave_few_versions() {
    for store in [StoreKind::LockFree, StoreKind::Baseline] {
        // No background GC: the bound must come from inline GC alone.
        let db = Database::with_options(Options::default().store(store).gc_interval(None));
        let t = db.create_table("t").unwrap();
        update_all(&db, &t, UPDATES, 2);
        let s = db.stats();
        assert_eq!(s.versions_installed, UPDATES);
        assert!(s.live_versions <= 3 * KEYS, "{store:?}: {} live versions", s.live_versions);
        db.collect_garbage();
        assert_eq!(db.stats().live_versions, KEYS, "one version per key after a full pass");
    }
}

#[test]
fn a_held_reader_keeps_what_it_sees_until_it_ends() {
    for store in [StoreKind::LockFree, StoreKind::Baseline] {
        let db = Database::with_options(Options::default().store(store));
        let t = db.create_table("t").unwrap();
        db.transaction(|txn| {
            for k in 0..KEYS {
                txn.put(&t, k.to_be_bytes(), u64::MAX.to_le_bytes())?;
            }
            Ok(())
        })
        .unwrap();
        let reader = db.begin_read().unwrap();
        update_all(&db, &t, 100_000, 2);
        db.collect_garbage();
        let expected: Vec<(Vec<u8>, Vec<u8>)> = (0..KEYS)
            .map(|k| (k.to_be_bytes().to_vec(), u64::MAX.to_le_bytes().to_vec()))
            .collect();
        assert_eq!(reader.scan(&t).unwrap(), expected, "{store:?}: the reader's versions survive");
        let held = db.stats();
        assert!(held.live_versions >= 2 * KEYS, "{store:?}: {held:?}");
        drop(reader);
        db.collect_garbage();
        let after = db.stats();
        assert_eq!(after.live_versions, KEYS, "{store:?}: reclaimed after the reader ended");
        assert_eq!(after.gc_lag, 0);
    }
}

/// Full passes run one at a time: a pass that returns has reclaimed and counted everything below
/// its watermark, even chains a concurrent pass (the background thread's, here a second caller)
/// cut first. Before passes were serialized, `stats()` could miss the other pass's counts.
#[test]
fn a_returned_pass_has_counted_what_a_concurrent_pass_cut() {
    for store in [StoreKind::LockFree, StoreKind::Baseline] {
        for round in 0..20 {
            let db = Database::with_options(Options::default().store(store).gc_interval(None));
            let t = db.create_table("t").unwrap();
            let reader = db.begin_read().unwrap();
            update_all(&db, &t, 20 * KEYS, 1);
            drop(reader);
            std::thread::scope(|s| {
                s.spawn(|| db.collect_garbage());
                db.collect_garbage();
                let live = db.stats().live_versions;
                assert_eq!(live, KEYS, "{store:?} round {round}: counted after the pass returned");
            });
        }
    }
}
