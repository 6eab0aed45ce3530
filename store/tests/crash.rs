//! Crashes while checkpointing into the base file: a simulated power loss at every write, sync
//! and growth of a checkpoint, keeping none, a random half, or all but a torn last of the
//! unsynced writes. After each, the file opens at the old checkpoint or the new one (the new one
//! whenever the checkpoint had returned), whole; `check` passes; and the next checkpoint works.
//! Also a crash while creating the file, and damage that is not a crash.
#![cfg(not(loom))] // the loom build runs tests/loom_pages.rs only
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::collections::BTreeMap;
use std::ops::Bound;
use strata_store::{check, Base, Change, StoreError};
use strata_wal::{CrashMode, Faults, FaultyStorage, FileStorage};

type Model = BTreeMap<Vec<u8>, Vec<u8>>;

fn state(base: &Base) -> Model {
    base.snapshot().range(Bound::Unbounded, Bound::Unbounded).map(|r| r.unwrap()).collect()
}

/// Round `r`'s changes: rewrites a third of the keys, deletes some, adds new ones, and puts
/// a few values into overflow chains, so a checkpoint writes leaves, branches, chains and the
/// free list.
fn changes(r: u32) -> Vec<Change> {
    let mut out = BTreeMap::new();
    for k in 0..1500u32 {
        if (k + r).is_multiple_of(3) {
            let len = if k % 97 == 0 { 5000 } else { 30 };
            out.insert(k.to_be_bytes().to_vec(), Some(vec![(k + r) as u8; len]));
        } else if (k * 7 + r).is_multiple_of(11) {
            out.insert(k.to_be_bytes().to_vec(), None);
        }
    }
    out.into_iter().collect()
}

fn apply(model: &mut Model, changes: &[Change]) {
    for (k, v) in changes {
        match v {
            Some(v) => model.insert(k.clone(), v.clone()),
            None => model.remove(k),
        };
    }
}

#[test]
fn a_crash_at_any_write_or_sync_of_a_checkpoint_leaves_the_old_or_the_new_tree() {
    // Twelve seeds of random keeping: the dangerous case (the meta page kept, a page it
    // needs lost) must come up if the pages are not synced before the meta page is written.
    let mut modes = vec![CrashMode::LoseUnsynced, CrashMode::TearLast { bytes: 1000 }];
    modes.extend((1..=12).map(|seed| CrashMode::KeepRandom { seed }));
    let mut crashes = 0;
    let mut saw = (0, 0);
    for mode in modes {
        for after in 0.. {
            let disk = FaultyStorage::default();
            let base = Base::create(&disk, "base", 0).unwrap();
            let mut old = Model::new();
            for r in 0..3 {
                let c = changes(r);
                base.checkpoint(u64::from(r) + 1, 0, &c).unwrap();
                apply(&mut old, &c);
            }
            // A snapshot held across the crashing checkpoint keeps its pages pending.
            let held = base.snapshot();
            let c = changes(3);
            let mut new = old.clone();
            apply(&mut new, &c);
            disk.set_faults(Faults {
                crash_after_ops: Some(disk.ops() + after),
                ..Faults::default()
            });
            let result = base.checkpoint(4, 4, &c);
            drop(held);
            let returned = result.is_ok();
            let after_crash = disk.crash(mode);
            let reopened = Base::open(&after_crash, "base")
                .unwrap_or_else(|e| panic!("{mode:?} after {after}: reopen failed: {e}"));
            let got = state(&reopened);
            let snap = reopened.snapshot();
            if got == new {
                assert_eq!((snap.ts(), snap.user()), (4, 4));
                saw.1 += 1;
            } else {
                assert!(!returned, "{mode:?} after {after}: an acknowledged checkpoint was lost");
                assert!(got == old, "{mode:?} after {after}: neither the old nor the new tree");
                assert_eq!(snap.ts(), 3);
                saw.0 += 1;
            }
            check(&after_crash, "base")
                .unwrap_or_else(|e| panic!("{mode:?} after {after}: check: {e}"));
            // The free list the crash left is right: another checkpoint works and verifies.
            let more = changes(5);
            reopened.checkpoint(5, 5, &more).unwrap();
            let mut next = got.clone();
            apply(&mut next, &more);
            assert!(state(&reopened) == next);
            check(&after_crash, "base").unwrap();
            crashes += 1;
            if returned {
                break;
            }
        }
    }
    assert!(saw.0 > 0 && saw.1 > 0, "both outcomes occurred: {saw:?}");
    eprintln!("{crashes} crashes: {} left the old tree, {} the new", saw.0, saw.1);
}

#[test]
fn a_crash_while_creating_leaves_no_base_or_a_whole_one() {
    for after in 0..10 {
        let disk = FaultyStorage::new(Faults { crash_after_ops: Some(after), ..Faults::default() });
        let created = Base::create(&disk, "base", 0).is_ok();
        let after_crash = disk.crash(CrashMode::LoseUnsynced);
        match Base::open(&after_crash, "base") {
            // Whole (the crash may have come after the rename, before `create` returned).
            Ok(b) => assert_eq!(b.snapshot().rows(), 0),
            Err(StoreError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                assert!(!created, "after {after}: created, then gone");
                // Creating again works (a leftover temporary file is not in the way).
                Base::create(&after_crash, "base", 0).unwrap();
            }
            Err(e) => panic!("after {after}: {e}"),
        }
    }
}

fn flip(path: &std::path::Path, offset: u64) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[offset as usize] ^= 0x10;
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn a_damaged_page_is_corrupt_when_read_and_in_check_never_served() {
    let tmp = tempfile::tempdir().unwrap();
    let storage = FileStorage::new(tmp.path()).unwrap();
    let base = Base::create(&storage, "base", 0).unwrap();
    let c: Vec<Change> =
        (0..5000u32).map(|k| (k.to_be_bytes().to_vec(), Some(vec![k as u8; 40]))).collect();
    base.checkpoint(1, 0, &c).unwrap();
    drop(base);
    // A byte in the middle of the file: some leaf.
    let path = tmp.path().join("base");
    let pages = std::fs::metadata(&path).unwrap().len() / 4096;
    flip(&path, (pages / 2) * 4096 + 100);
    let err = check(&storage, "base").unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { page, .. } if page == pages / 2), "{err}");
    let base = Base::open(&storage, "base").unwrap(); // open reads no tree page
    let snap = base.snapshot();
    let scan: Result<Vec<_>, _> = snap.range(Bound::Unbounded, Bound::Unbounded).collect();
    assert!(matches!(scan, Err(StoreError::Corrupt { .. })), "a scan stops at the damage");
    let mut corrupt_reads = 0;
    for (k, v) in &c {
        match snap.get(k) {
            Ok(got) => assert_eq!(got.as_deref(), v.as_deref(), "a read that succeeds is right"),
            Err(StoreError::Corrupt { .. }) => corrupt_reads += 1,
            Err(e) => panic!("{e}"),
        }
    }
    assert!(corrupt_reads > 0 && corrupt_reads < c.len(), "{corrupt_reads}");
}

#[test]
fn other_files_versions_and_truncation_are_refused_with_what_is_wrong() {
    let tmp = tempfile::tempdir().unwrap();
    let storage = FileStorage::new(tmp.path()).unwrap();
    std::fs::write(tmp.path().join("notes"), vec![b'x'; 10_000]).unwrap();
    assert!(matches!(Base::open(&storage, "notes"), Err(StoreError::NotABase { .. })));
    std::fs::write(tmp.path().join("tiny"), b"hello").unwrap();
    assert!(matches!(Base::open(&storage, "tiny"), Err(StoreError::NotABase { .. })));

    let base = Base::create(&storage, "base", 0).unwrap();
    let c: Vec<Change> =
        (0..3000u32).map(|k| (k.to_be_bytes().to_vec(), Some(vec![1; 40]))).collect();
    base.checkpoint(1, 0, &c).unwrap();
    drop(base);
    let path = tmp.path().join("base");
    let bytes = std::fs::read(&path).unwrap();
    // A later format (3) and the first one (1, before leaf prefixes) in the newest meta slot
    // (slot 1), checksum recomputed: both refused, never misread.
    for version in [3u32, 1] {
        let mut other = bytes.clone();
        other[4096 + 12..4096 + 16].copy_from_slice(&version.to_le_bytes());
        let crc = crc32c::crc32c(&other[4096 + 4..4096 + 128]);
        other[4096..4096 + 4].copy_from_slice(&crc.to_le_bytes());
        std::fs::write(&path, &other).unwrap();
        let err = Base::open(&storage, "base").unwrap_err();
        assert!(
            matches!(err, StoreError::Version { found, supported: 2, .. } if found == version),
            "{err}"
        );
        assert!(err.to_string().contains(&format!("format version {version}")), "{err}");
    }
    // Truncated below the pages in use.
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let err = Base::open(&storage, "base").unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
    // Both meta pages damaged.
    let mut both = bytes.clone();
    both[40] ^= 1;
    both[4096 + 40] ^= 1;
    std::fs::write(&path, &both).unwrap();
    let err = Base::open(&storage, "base").unwrap_err();
    assert!(err.to_string().contains("neither meta page verifies"), "{err}");
}
