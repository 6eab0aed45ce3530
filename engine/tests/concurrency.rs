//! Multi-threaded invariants on both stores, oversubscribed (more threads than this machine's 2
//! cores): counters — every committed increment is counted exactly once (final SUM equals the
//! number of successful commits); bank — concurrent snapshot readers always see the same total.
//! Bounded by operation counts, so they take seconds whatever the machine does.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use strata::{Database, Table};

mod common;
use common::dbs;

fn read_u64(v: Option<Vec<u8>>) -> u64 {
    v.map_or(0, |b| u64::from_le_bytes(b.try_into().expect("8-byte counter")))
}

fn counters(db: &Database, threads: u64, keys: u64, increments_per_thread: u64) {
    let t = db.create_table("counters").unwrap();
    let committed = AtomicU64::new(0);
    let conflicts = AtomicU64::new(0);
    std::thread::scope(|s| {
        for th in 0..threads {
            let (t, committed, conflicts) = (&t, &committed, &conflicts);
            s.spawn(move || {
                let mut rng = 0x9E37_79B9_7F4A_7C15u64 ^ th;
                for _ in 0..increments_per_thread {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    let key = (rng % keys).to_be_bytes();
                    // A raw begin/commit loop (not the helper) so each outcome is counted here.
                    loop {
                        let mut txn = db.begin().unwrap();
                        let v = read_u64(txn.get(t, key).unwrap());
                        txn.put(t, key, (v + 1).to_le_bytes()).unwrap();
                        match txn.commit() {
                            Ok(_) => {
                                committed.fetch_add(1, Ordering::Relaxed);
                                break;
                            }
                            Err(e) => {
                                assert!(e.is_retryable(), "{e}");
                                conflicts.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                }
            });
        }
    });
    let rows = db.begin_read().unwrap().scan(&t).unwrap();
    let sum: u64 = rows.into_iter().map(|(_, v)| read_u64(Some(v))).sum();
    let committed = committed.load(Ordering::Relaxed);
    assert_eq!(committed, threads * increments_per_thread);
    assert_eq!(sum, committed, "{:?}: lost or duplicated increments", db.options().store);
    let stats = db.stats();
    assert_eq!(stats.conflicts, conflicts.load(Ordering::Relaxed), "{stats:?}");
    assert_eq!(stats.active_snapshots, 0);
}

#[test]
fn counters_hot_keys_oversubscribed() {
    for db in dbs() {
        counters(&db, 16, 10, 1500);
    }
}

#[test]
fn counters_many_keys() {
    for db in dbs() {
        counters(&db, 4, 1000, 10_000);
    }
}

fn bank(db: &Database, writers: u64, readers: usize, transfers_per_writer: u64) {
    const ACCOUNTS: u64 = 64;
    const START: u64 = 1000;
    let t: Table = db.create_table("bank").unwrap();
    db.transaction(|txn| {
        for a in 0..ACCOUNTS {
            txn.put(&t, a.to_be_bytes(), START.to_le_bytes())?;
        }
        Ok(())
    })
    .unwrap();
    let done = AtomicBool::new(false);
    let checks = AtomicU64::new(0);
    std::thread::scope(|s| {
        let mut handles = Vec::new();
        for w in 0..writers {
            let t = &t;
            handles.push(s.spawn(move || {
                let mut rng = 0xDEAD_BEEF_u64.wrapping_mul(w + 1);
                for _ in 0..transfers_per_writer {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    let from = (rng % ACCOUNTS).to_be_bytes();
                    let to = ((rng >> 20) % ACCOUNTS).to_be_bytes();
                    let amount = (rng >> 40) % 50;
                    db.transaction(|txn| {
                        let a = read_u64(txn.get(t, from)?);
                        if a < amount || from == to {
                            return Ok(());
                        }
                        let b = read_u64(txn.get(t, to)?);
                        txn.put(t, from, (a - amount).to_le_bytes())?;
                        txn.put(t, to, (b + amount).to_le_bytes())?;
                        Ok(())
                    })
                    .unwrap();
                }
            }));
        }
        for r in 0..readers {
            let (t, done, checks) = (&t, &done, &checks);
            s.spawn(move || {
                while !done.load(Ordering::Relaxed) {
                    let snap = db.begin_read().unwrap();
                    let total: u64 = if r % 2 == 0 {
                        snap.scan(t).unwrap().into_iter().map(|(_, v)| read_u64(Some(v))).sum()
                    } else {
                        (0..ACCOUNTS).map(|a| read_u64(snap.get(t, a.to_be_bytes()).unwrap())).sum()
                    };
                    assert_eq!(
                        total,
                        ACCOUNTS * START,
                        "snapshot at {:?} saw a broken total",
                        snap.read_ts()
                    );
                    checks.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
        for h in handles {
            h.join().unwrap();
        }
        done.store(true, Ordering::Relaxed);
    });
    assert!(checks.load(Ordering::Relaxed) > 0);
}

#[test]
fn bank_total_is_invariant_under_concurrent_readers() {
    for db in dbs() {
        bank(&db, 4, 4, 10_000);
    }
}

#[test]
fn bank_oversubscribed() {
    for db in dbs() {
        bank(&db, 12, 4, 1500);
    }
}

/// Chains leave the index under txns that hold them (ADR 0017: a read-write txn keeps the chain
/// its read found and installs on it at commit). Workers read a counter and either increment it
/// or delete it (banking its value), so chains keep ending in tombstones that GC seals and
/// removes, while a GC thread runs passes back to back; then a scratch table the workers also
/// write is dropped under them and purged. Every increment must be counted exactly once (the
/// live sum plus the banked deletions), and no hint may outlive its chain (debug builds check
/// each one followed, `strata_mvcc`'s `freed_chains`). 8 workers on this machine's 2 cores.
#[test]
fn chains_removed_under_txns_that_hold_them() {
    for db in dbs() {
        let t = db.create_table("counters").unwrap();
        let scratch = db.create_table("scratch").unwrap();
        let (added, banked) = (AtomicU64::new(0), AtomicU64::new(0));
        let (stop_gc, dropped) = (AtomicBool::new(false), AtomicBool::new(false));
        std::thread::scope(|s| {
            s.spawn(|| {
                while !stop_gc.load(Ordering::Relaxed) {
                    db.collect_garbage();
                }
            });
            // Stops the GC thread however this closure ends: a failing worker's panic unwinds
            // through it, and the scope would otherwise wait on the GC thread for ever.
            let _stop = SetOnDrop(&stop_gc);
            let workers: Vec<_> = (0..8u64)
                .map(|th| {
                    let (t, scratch, added, banked) = (&t, &scratch, &added, &banked);
                    let (db, dropped) = (&db, &dropped);
                    s.spawn(move || {
                        let mut rng = 0x2545_F491_4F6C_DD1Du64 ^ (th << 32);
                        for i in 0..3000u64 {
                            rng ^= rng << 13;
                            rng ^= rng >> 7;
                            rng ^= rng << 17;
                            let key = (rng % 4).to_be_bytes();
                            let delete = rng.is_multiple_of(5);
                            // Now and then a txn stalls between its read and its write, so
                            // GC passes (and the epoch) run while it holds its hint. Only its
                            // first attempt: a txn that stalled on every retry would lose each
                            // one to the other writers of its hot key and run out of attempts.
                            let mut stall = rng % 8 == 1;
                            let (v, deleted) = db
                                .transaction(|txn| {
                                    let v = read_u64(txn.get(t, key)?);
                                    if std::mem::take(&mut stall) {
                                        std::thread::sleep(std::time::Duration::from_micros(300));
                                    }
                                    if delete {
                                        txn.delete(t, key)?;
                                    } else {
                                        txn.put(t, key, (v + 1).to_le_bytes())?;
                                    }
                                    Ok((v, delete))
                                })
                                .unwrap();
                            if deleted {
                                banked.fetch_add(v, Ordering::Relaxed);
                            } else {
                                added.fetch_add(1, Ordering::Relaxed);
                            }
                            if i.is_multiple_of(3) && !dropped.load(Ordering::Relaxed) {
                                // Read-modify-write on the scratch table until it is dropped:
                                // then every call fails with `TableDropped`, at the read, the
                                // write or the commit, and nothing else.
                                let r = db.transaction(|txn| {
                                    let v = read_u64(txn.get(scratch, key)?);
                                    txn.put(scratch, key, (v + 1).to_le_bytes())
                                });
                                if let Err(e) = r {
                                    assert!(matches!(e, strata::Error::TableDropped { .. }), "{e}");
                                }
                            }
                        }
                    })
                })
                .collect();
            std::thread::sleep(std::time::Duration::from_millis(50));
            db.drop_table("scratch").unwrap();
            dropped.store(true, Ordering::Relaxed);
            for w in workers {
                w.join().unwrap();
            }
        });
        db.collect_garbage();
        let rows = db.begin_read().unwrap().scan(&t).unwrap();
        let live: u64 = rows.into_iter().map(|(_, v)| read_u64(Some(v))).sum();
        let (added, banked) = (added.into_inner(), banked.into_inner());
        assert_eq!(live + banked, added, "{:?}: lost or duplicated increments", db.options().store);
        assert!(db.stats().keys_removed > 0, "GC never removed a chain: the test tested nothing");
    }
}

/// Sets its flag when dropped, also while unwinding.
struct SetOnDrop<'a>(&'a AtomicBool);

impl Drop for SetOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}
