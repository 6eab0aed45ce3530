//! Model-based test: random interleavings of up to four txns on one thread — begin (read-write
//! or read-only), get, put, insert, delete, merge (an integer add), scan, commit, rollback, drop,
//! full GC, checkpoint —
//! run against the reference model (`strata_verification::model`) and against the engine on both
//! stores, in memory and on a (simulated) disk, comparing every result. On disk, a checkpoint
//! writes the base file and GC then drops the chains it covers, so rows live in the base, in
//! chains, or both, and open snapshots straddle checkpoints. Shrinking reduces a failure to a short, readable op list.
//! `PROPTEST_CASES=N` runs more cases (default 256 per store).
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use proptest::prelude::*;
use strata::{Database, ErrorKind, Options, StoreKind, Table};
use strata_verification::model::{Key, ModelCommit, ModelTxn, SiModel, Value};

const SLOTS: usize = 4;

#[derive(Clone, Debug)]
enum Op {
    Begin {
        slot: usize,
        read_only: bool,
    },
    Get {
        slot: usize,
        key: Key,
    },
    Put {
        slot: usize,
        key: Key,
        value: Value,
    },
    Insert {
        slot: usize,
        key: Key,
        value: Value,
    },
    Delete {
        slot: usize,
        key: Key,
    },
    /// A merge: add `delta` to the key's integer.
    Add {
        slot: usize,
        key: Key,
        delta: i8,
    },
    Scan {
        slot: usize,
    },
    Commit {
        slot: usize,
    },
    Rollback {
        slot: usize,
    },
    Drop {
        slot: usize,
    },
    Gc,
    /// A base checkpoint, then a full GC (on disk; in memory a checkpoint does nothing).
    Checkpoint,
}

fn op() -> impl Strategy<Value = Op> {
    let slot = 0..SLOTS;
    let key = 0u8..5;
    prop_oneof![
        3 => (slot.clone(), any::<bool>()).prop_map(|(slot, r)| Op::Begin { slot, read_only: r && slot % 2 == 1 }),
        4 => (slot.clone(), key.clone()).prop_map(|(slot, key)| Op::Get { slot, key }),
        4 => (slot.clone(), key.clone(), any::<u8>()).prop_map(|(slot, key, value)| Op::Put { slot, key, value: value.into() }),
        1 => (slot.clone(), key.clone(), any::<u8>()).prop_map(|(slot, key, value)| Op::Insert { slot, key, value: value.into() }),
        2 => (slot.clone(), key.clone()).prop_map(|(slot, key)| Op::Delete { slot, key }),
        4 => (slot.clone(), key, any::<i8>()).prop_map(|(slot, key, delta)| Op::Add { slot, key, delta }),
        1 => slot.clone().prop_map(|slot| Op::Scan { slot }),
        3 => slot.clone().prop_map(|slot| Op::Commit { slot }),
        1 => slot.clone().prop_map(|slot| Op::Rollback { slot }),
        1 => slot.prop_map(|slot| Op::Drop { slot }),
        1 => Just(Op::Gc),
        1 => Just(Op::Checkpoint),
    ]
}

enum Handle {
    Rw(strata::Txn),
    Ro(strata::Snapshot),
}

/// Values are stored as 8-byte integers (what a merge adds to).
fn value(v: &[u8]) -> Value {
    Value::from_le_bytes(v.try_into().expect("an 8-byte value"))
}

impl Handle {
    fn get(&self, t: &Table, key: Key) -> Option<Value> {
        let v = match self {
            Handle::Rw(x) => x.get(t, [key]).unwrap(),
            Handle::Ro(x) => x.get(t, [key]).unwrap(),
        };
        v.map(|v| value(&v))
    }

    fn scan(&self, t: &Table) -> Vec<(Key, Value)> {
        let rows = match self {
            Handle::Rw(x) => x.scan(t).unwrap(),
            Handle::Ro(x) => x.scan(t).unwrap(),
        };
        rows.into_iter().map(|(k, v)| (k[0], value(&v))).collect()
    }

    /// The same view through the borrowed-row scan (`range_with`, `range_rev_with`), forward
    /// and back, and cut short after `limit` rows.
    fn visit(&self, t: &Table, reverse: bool, limit: usize) -> Vec<(Key, Value)> {
        let snap: &strata::Snapshot = match self {
            Handle::Rw(x) => x,
            Handle::Ro(x) => x,
        };
        let mut out = Vec::new();
        let f = |k: &[u8], v: &[u8]| {
            out.push((k[0], value(v)));
            if out.len() >= limit {
                std::ops::ControlFlow::Break(())
            } else {
                std::ops::ControlFlow::Continue(())
            }
        };
        if reverse {
            snap.range_rev_with::<&[u8]>(t, .., f).unwrap();
        } else {
            snap.range_with::<&[u8]>(t, .., f).unwrap();
        }
        out
    }
}

fn run(store: StoreKind, on_disk: bool, ops: &[Op]) -> Result<(), TestCaseError> {
    let options = Options::default().store(store).gc_interval(None);
    let db = if on_disk {
        let disk = std::sync::Arc::new(strata::FaultyStorage::default());
        let options = options.checkpoints(u64::MAX, None).durability(strata::Durability::None);
        Database::open_with_storage(disk, options).unwrap()
    } else {
        Database::with_options(options)
    };
    let t = db.create_table("t").unwrap();
    // On disk, creating the table is a commit (to the catalog); the model starts after it.
    let offset = db.begin_read().unwrap().read_ts().get();
    let mut model = SiModel::default();
    let mut open: Vec<Option<(Handle, ModelTxn)>> = (0..SLOTS).map(|_| None).collect();
    for (i, op) in ops.iter().enumerate() {
        let ctx = || format!("op #{i} {op:?} on {store:?}");
        match *op {
            Op::Begin { slot, read_only } => {
                let m = model.begin(read_only);
                let h = if read_only {
                    Handle::Ro(db.begin_read().unwrap())
                } else {
                    Handle::Rw(db.begin().unwrap())
                };
                let ts = match &h {
                    Handle::Rw(x) => x.read_ts(),
                    Handle::Ro(x) => x.read_ts(),
                };
                prop_assert_eq!(ts.get() - offset, m.read_ts, "{}", ctx());
                open[slot] = Some((h, m)); // replacing drops (rolls back) the old txn
            }
            Op::Get { slot, key } => {
                if let Some((h, m)) = &open[slot] {
                    prop_assert_eq!(h.get(&t, key), model.get(m, key), "{}", ctx());
                }
            }
            Op::Scan { slot } => {
                if let Some((h, m)) = &open[slot] {
                    let want = model.scan(m);
                    prop_assert_eq!(h.scan(&t), want.clone(), "{}", ctx());
                    prop_assert_eq!(h.visit(&t, false, usize::MAX), want.clone(), "{}", ctx());
                    let mut back = h.visit(&t, true, usize::MAX);
                    back.reverse();
                    prop_assert_eq!(back, want.clone(), "reverse: {}", ctx());
                    let first: Vec<_> = want.iter().copied().take(2).collect();
                    prop_assert_eq!(h.visit(&t, false, 2), first, "two rows: {}", ctx());
                }
            }
            Op::Put { slot, key, value } | Op::Insert { slot, key, value } => {
                if let Some((Handle::Rw(h), m)) = &mut open[slot] {
                    let insert = matches!(op, Op::Insert { .. });
                    let exists = model.get(m, key).is_some();
                    let r = if insert {
                        h.insert(&t, [key], value.to_le_bytes())
                    } else {
                        h.put(&t, [key], value.to_le_bytes())
                    };
                    if insert && exists {
                        prop_assert_eq!(
                            r.unwrap_err().kind(),
                            ErrorKind::AlreadyExists,
                            "{}",
                            ctx()
                        );
                    } else {
                        r.unwrap();
                        m.write(key, Some(value));
                    }
                }
            }
            Op::Delete { slot, key } => {
                if let Some((Handle::Rw(h), m)) = &mut open[slot] {
                    let existed = h.delete(&t, [key]).unwrap();
                    prop_assert_eq!(existed, model.get(m, key).is_some(), "{}", ctx());
                    m.write(key, None);
                }
            }
            Op::Add { slot, key, delta } => {
                if let Some((Handle::Rw(h), m)) = &mut open[slot] {
                    h.add(&t, [key], delta.into()).unwrap();
                    model.add(m, key, delta.into());
                }
            }
            Op::Commit { slot } => {
                if let Some((h, m)) = open[slot].take() {
                    let got = match h {
                        Handle::Rw(x) => x.commit(),
                        Handle::Ro(x) => Ok(x.read_ts()),
                    };
                    match (got, model.commit(m)) {
                        (Ok(ts), ModelCommit::Committed(mts)) => {
                            prop_assert_eq!(ts.get() - offset, mts, "{}", ctx())
                        }
                        (Err(e), ModelCommit::Conflict) => {
                            prop_assert_eq!(e.kind(), ErrorKind::Conflict, "{}", ctx())
                        }
                        (got, want) => {
                            prop_assert!(false, "{}: engine {:?}, model {:?}", ctx(), got, want)
                        }
                    }
                }
            }
            Op::Rollback { slot } => {
                if let Some((Handle::Rw(x), _)) = open[slot].take() {
                    x.rollback(); // a read-only snapshot in the slot is simply dropped
                }
            }
            Op::Drop { slot } => drop(open[slot].take()),
            Op::Gc => {
                db.collect_garbage();
            }
            Op::Checkpoint => {
                db.checkpoint().unwrap();
                db.collect_garbage();
            }
        }
        let live = open.iter().filter(|o| o.is_some()).count() as u64;
        prop_assert_eq!(db.stats().active_snapshots, live, "{}: registry leak", ctx());
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn lockfree_store_matches_the_model(ops in proptest::collection::vec(op(), 1..80)) {
        run(StoreKind::LockFree, false, &ops)?;
    }

    #[test]
    fn baseline_store_matches_the_model(ops in proptest::collection::vec(op(), 1..80)) {
        run(StoreKind::Baseline, false, &ops)?;
    }

    #[test]
    fn lockfree_store_over_the_base_matches_the_model(ops in proptest::collection::vec(op(), 1..80)) {
        run(StoreKind::LockFree, true, &ops)?;
    }

    #[test]
    fn baseline_store_over_the_base_matches_the_model(ops in proptest::collection::vec(op(), 1..80)) {
        run(StoreKind::Baseline, true, &ops)?;
    }
}
