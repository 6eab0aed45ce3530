//! The base store against a model (a `BTreeMap`): random checkpoints of puts and deletes, with
//! small and large keys and values, reopened between checkpoints, on real files (read through
//! the mapping) and on the simulated disk (read through `read_at`); old snapshots keep their
//! view while later checkpoints reuse pages; `check` passes after every checkpoint.
#![cfg(not(loom))] // the loom build runs tests/loom_pages.rs only
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use proptest::prelude::*;
use std::collections::BTreeMap;
use std::ops::Bound;
use strata_store::page::BODY_BYTES;
use strata_store::{check, Base, Change, Snapshot};
use strata_wal::{FaultyStorage, FileStorage, Storage};

type Model = BTreeMap<Vec<u8>, Vec<u8>>;

/// The key of `k` in one of three shapes: 0, its 4 bytes; 1, a long shared prefix, then `k`,
/// then a tail of `k % 100` bytes (leaves of these share a prefix of about 200 bytes, and
/// their suffixes need two-byte length tags); 2, a long key (an overflow chain past 512 bytes)
/// that still sorts by `k`.
fn key(k: u32, shape: u8) -> Vec<u8> {
    match shape {
        0 => k.to_be_bytes().to_vec(),
        1 => {
            let mut v = vec![b'p'; 200];
            v.extend_from_slice(&k.to_be_bytes());
            v.extend(std::iter::repeat_n(b'q', k as usize % 100));
            v
        }
        _ => {
            let mut v = k.to_be_bytes().to_vec();
            v.extend(std::iter::repeat_n(b'k', 600));
            v
        }
    }
}

fn value(k: u32, round: u32, len: usize) -> Vec<u8> {
    (0..len).map(|i| (k as usize * 31 + round as usize * 7 + i) as u8).collect()
}

/// Every read of `snap` agrees with `model`: point reads of present and absent keys, and
/// ranges with each kind of bound.
fn agrees(snap: &Snapshot, model: &Model) {
    assert_eq!(snap.rows(), model.len() as u64);
    let all: Vec<(Vec<u8>, Vec<u8>)> =
        snap.range(Bound::Unbounded, Bound::Unbounded).map(|r| r.unwrap()).collect();
    let want: Vec<(Vec<u8>, Vec<u8>)> = model.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    assert_eq!(all.len(), want.len(), "full scan length");
    assert!(all == want, "full scan differs");
    let mut back: Vec<(Vec<u8>, Vec<u8>)> =
        snap.range_rev(Bound::Unbounded, Bound::Unbounded).map(|r| r.unwrap()).collect();
    back.reverse();
    assert!(back == want, "reverse full scan differs");
    for (k, v) in model.iter().step_by(7) {
        assert_eq!(snap.get(k).unwrap().as_deref(), Some(v.as_slice()));
        assert!(snap.contains(k).unwrap());
    }
    // Absent keys around and inside leaf prefixes: a proper prefix of a shared prefix, one that
    // leaves it partway, one past it.
    let mut inside = vec![b'p'; 200];
    inside.extend_from_slice(&[0, 0, 1]);
    let probes = [
        vec![],
        vec![0u8; 3],
        vec![0xFF; 5],
        b"\x00\x00\x01\x00x".to_vec(),
        vec![b'p'; 150],
        [&[b'p'; 120][..], b"a"].concat(),
        [&[b'p'; 120][..], b"z"].concat(),
        inside.clone(),
    ];
    for probe in probes {
        assert_eq!(snap.get(&probe).unwrap().as_deref(), model.get(&probe).map(|v| v.as_slice()));
    }
    let keys: Vec<&Vec<u8>> = model.keys().collect();
    if keys.len() >= 2 {
        let (a, b) = (keys[keys.len() / 3].as_slice(), keys[2 * keys.len() / 3].as_slice());
        for (lo, hi) in [
            (Bound::Included(a), Bound::Excluded(b)),
            (Bound::Excluded(a), Bound::Included(b)),
            (Bound::Included(a), Bound::Unbounded),
            (Bound::Unbounded, Bound::Excluded(a)),
            (Bound::Excluded(a), Bound::Excluded(b)),
            (Bound::Included(b), Bound::Included(b)),
            (Bound::Included(&b"\x00\x00\x01"[..]), Bound::Included(&b"\x00\x00\x07"[..])),
            (Bound::Excluded(&inside[..197]), Bound::Included(&inside[..])),
            (Bound::Included(&inside[..]), Bound::Unbounded),
        ] {
            let got: Vec<Vec<u8>> = snap.range(lo, hi).map(|r| r.unwrap().0).collect();
            let want: Vec<Vec<u8>> =
                model.range::<[u8], _>((lo, hi)).map(|(k, _)| k.clone()).collect();
            assert_eq!(got, want, "range {lo:?}..{hi:?}");
            let mut rev: Vec<Vec<u8>> = snap.range_rev(lo, hi).map(|r| r.unwrap().0).collect();
            rev.reverse();
            assert_eq!(rev, want, "reverse range {lo:?}..{hi:?}");
        }
    }
}

#[derive(Clone, Debug)]
struct Round {
    /// (key, key shape, Some(value length) or None: delete)
    changes: Vec<(u32, u8, Option<usize>)>,
    reopen: bool,
}

fn rounds() -> impl Strategy<Value = Vec<Round>> {
    let change = (
        0u32..3000,
        prop_oneof![16 => Just(0u8), 3 => Just(1u8), 1 => Just(2u8)],
        prop_oneof![
            8 => (0usize..80).prop_map(Some),
            1 => (900usize..20_000).prop_map(Some),
            3 => Just(None),
        ],
    );
    let round = (prop::collection::vec(change, 0..400), prop::bool::weighted(0.3))
        .prop_map(|(changes, reopen)| Round { changes, reopen });
    prop::collection::vec(round, 1..8)
}

fn run(storage: &dyn Storage, rounds: &[Round]) {
    let mut base = Base::create(storage, "base", 0).unwrap();
    let mut model = Model::new();
    // Snapshots kept across later checkpoints, with the model state they must still show.
    let mut held: Vec<(Snapshot, Model)> = Vec::new();
    for (r, round) in rounds.iter().enumerate() {
        let mut changes: BTreeMap<Vec<u8>, Option<Vec<u8>>> = BTreeMap::new();
        for (k, shape, v) in &round.changes {
            changes.insert(key(*k, *shape), v.map(|len| value(*k, r as u32, len)));
        }
        for (k, v) in &changes {
            match v {
                Some(v) => model.insert(k.clone(), v.clone()),
                None => model.remove(k),
            };
        }
        let changes: Vec<Change> = changes.into_iter().collect();
        let report = base.checkpoint(10 * (r as u64 + 1), r as u64, &changes).unwrap();
        assert_eq!(report.rows, model.len() as u64);
        let snap = base.snapshot();
        assert_eq!((snap.ts(), snap.user()), (10 * (r as u64 + 1), r as u64));
        agrees(&snap, &model);
        if r % 2 == 0 {
            held.push((snap, model.clone()));
        }
        for (old, m) in &held {
            agrees(old, m);
        }
        let report = check(storage, "base").unwrap();
        assert_eq!(report.rows, model.len() as u64);
        if round.reopen {
            held.clear(); // a reopened file's earlier snapshots are gone with the old handle
            drop(base);
            base = Base::open(storage, "base").unwrap();
            agrees(&base.snapshot(), &model);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn checkpoints_agree_with_the_model_on_the_simulated_disk(rounds in rounds()) {
        run(&FaultyStorage::default(), &rounds);
    }

    #[test]
    fn checkpoints_agree_with_the_model_on_real_files(rounds in rounds()) {
        let tmp = tempfile::tempdir().unwrap();
        run(&FileStorage::new(tmp.path()).unwrap(), &rounds);
    }
}

#[test]
fn a_large_ordered_load_then_sparse_updates_fills_pages_and_reuses_them() {
    let tmp = tempfile::tempdir().unwrap();
    let storage = FileStorage::new(tmp.path()).unwrap();
    let base = Base::create(&storage, "base", 0).unwrap();
    let rows = 100_000u32;
    let load: Vec<Change> = (0..rows).map(|k| (key(k, 0), Some(value(k, 0, 40)))).collect();
    base.checkpoint(1, 0, &load).unwrap();
    let first = check(&storage, "base").unwrap();
    assert_eq!(first.rows, u64::from(rows));
    assert!(first.leaf_fill_percent >= 90, "an ordered load fills leaves: {first:?}");
    // A leaf stores the bytes its keys share once: a row of a 4-byte key (3 shared within a
    // leaf) and a 40-byte value takes 45 bytes with its slot and tags (52 with whole keys and
    // fixed-width lengths).
    let per_leaf = (BODY_BYTES as u64 - 8) / 45;
    assert!(first.leaf_pages <= u64::from(rows).div_ceil(per_leaf) * 105 / 100, "{first:?}");
    // 0.1% of the rows changed at random, ten times, then 1% in key order: only the leaves
    // the changes fall in and the branches above them are written (plus the free list and the
    // meta page), and the file stops growing once freed pages come back into use (no snapshot
    // holds the old trees).
    let mut sizes = Vec::new();
    let ceiling = |leaves: u64| leaves + first.branch_pages + 4;
    for round in 1..=10u32 {
        let mut changes: Vec<Change> = (0..rows / 1000)
            .map(|i| {
                let k = (i * 7919 + round * 104_729) % rows;
                (key(k, 0), Some(value(k, round, 40)))
            })
            .collect();
        changes.sort();
        changes.dedup_by(|a, b| a.0 == b.0);
        let r = base.checkpoint(1 + u64::from(round), 0, &changes).unwrap();
        assert!(r.pages_written <= ceiling(changes.len() as u64), "{r:?} {first:?}");
        sizes.push(r.pages);
    }
    let ordered: Vec<Change> =
        (5_000..5_000 + rows / 100).map(|k| (key(k, 0), Some(value(k, 99, 40)))).collect();
    let r = base.checkpoint(20, 0, &ordered).unwrap();
    let leaves = (rows / 100) as u64 * first.leaf_pages / u64::from(rows) + 2;
    assert!(r.pages_written <= ceiling(leaves), "{r:?} {first:?}");
    assert!(sizes[9] <= sizes[2] + sizes[2] / 50, "the file stops growing: {sizes:?}");
    check(&storage, "base").unwrap();
}
