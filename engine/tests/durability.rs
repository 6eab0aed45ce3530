//! Durability: reopen round trips on real files, the directory lock, `close`, and crash
//! recovery through the faulty in-memory disk — a crash at *every* write and sync of a
//! workload, under five loss modes, each recovery checked against the model (every
//! acknowledged commit present, state equal to a prefix of the commit order), a crash during
//! recovery recovering the same state, and new commits working afterwards.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::collections::BTreeMap;
use std::sync::Arc;
use strata::{
    CrashMode, Database, Durability, Error, ErrorKind, Faults, FaultyStorage, FileIo, Options,
    Storage,
};

/// A fresh temporary directory (removed when the guard drops) and a path inside it that does
/// not exist yet.
fn tmp_dir(name: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join(name);
    (tmp, dir)
}

fn options() -> Options {
    Options::default().segment_bytes(4096).checkpoints(u64::MAX, None).gc_interval(None)
}

type State = BTreeMap<Vec<u8>, Vec<u8>>;

fn state(db: &Database, table: &str) -> State {
    match db.open_table(table) {
        Ok(t) => db.begin_read().unwrap().scan(&t).unwrap().into_iter().collect(),
        Err(_) => State::new(),
    }
}

#[test]
fn a_database_survives_close_and_reopen_on_real_files() {
    for io in [FileIo::Mmap, FileIo::MmapMsync, FileIo::Pwrite] {
        reopen_round_trip(io);
    }
}

fn reopen_round_trip(io: FileIo) {
    let (_tmp, dir) = tmp_dir(&format!("reopen-{io:?}"));
    // Without the checkpoint at close, so the reopen replays the log after the explicit one.
    let options = || options().file_io(io).checkpoint_on_close(false);
    {
        let db = Database::open(&dir, options()).unwrap();
        let t = db.create_table("t").unwrap();
        let gone = db.create_table("gone").unwrap();
        for i in 0..500u32 {
            db.transaction(|txn| txn.put(&t, i.to_be_bytes(), i.to_le_bytes())).unwrap();
        }
        db.transaction(|txn| txn.put(&gone, b"x", b"y")).unwrap();
        db.drop_table("gone").unwrap();
        db.checkpoint().unwrap();
        for i in 0..10u32 {
            db.transaction(|txn| txn.delete(&t, i.to_be_bytes()).map(|_| ())).unwrap();
        }
        db.close().unwrap();
    }
    let db = Database::open(&dir, options()).unwrap();
    let report = db.recovery_report().unwrap();
    assert!(!report.reset_log, "a clean close continues the log: {report:?}");
    assert!(report.checkpoint_ts > 0 && report.records_replayed == 10, "{report:?}");
    assert_eq!(db.list_tables(), vec!["t".to_string()]);
    let rows = state(&db, "t");
    assert_eq!(rows.len(), 490);
    assert_eq!(rows[&20u32.to_be_bytes().to_vec()], 20u32.to_le_bytes().to_vec());
    let before = db.begin_read().unwrap().read_ts();
    assert_eq!(before.0, report.recovered_ts, "the clock continues after the recovered state");
    let again = db.create_table("gone").unwrap();
    assert!(db.begin_read().unwrap().scan(&again).unwrap().is_empty(), "ids are not reused");
    db.close().unwrap();
}

/// The checkpoint `close` takes: the next open replays nothing, the log continues in one small
/// segment, no spare is left, and every row is there; again after a reopen that wrote nothing,
/// and after a drop (which closes too).
#[test]
fn close_checkpoints_so_the_next_open_replays_nothing() {
    let (_tmp, dir) = tmp_dir("close-checkpoint");
    let options = || Options::default().gc_interval(None);
    let segments = || -> Vec<(String, u64)> {
        let mut v: Vec<(String, u64)> = std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .map(|e| (e.file_name().to_string_lossy().into_owned(), e.metadata().unwrap().len()))
            .filter(|(n, _)| n.starts_with("wal-"))
            .collect();
        v.sort();
        v
    };
    let first = strata_wal::log::first_segment_bytes(options().segment_bytes);
    {
        let db = Database::open(&dir, options()).unwrap();
        let t = db.create_table("t").unwrap();
        // Enough to grow the log past its first segments and make a spare.
        for chunk in 0..40u32 {
            db.transaction(|txn| {
                for i in chunk * 500..(chunk + 1) * 500 {
                    txn.put(&t, i.to_be_bytes(), [7u8; 100])?;
                }
                Ok(())
            })
            .unwrap();
        }
        db.close().unwrap();
    }
    let files = segments();
    assert_eq!(files.len(), 1, "one segment, no spare: {files:?}");
    assert_eq!(files[0].1, first, "the log continues in a first-size segment: {files:?}");
    for round in 0..2 {
        let db = Database::open(&dir, options()).unwrap();
        let report = db.recovery_report().unwrap();
        assert_eq!(report.records_replayed, 0, "round {round}: {report:?}");
        assert!(report.log_bytes <= first, "round {round}: read {} bytes", report.log_bytes);
        assert_eq!(state(&db, "t").len(), 20_000 + round, "round {round}");
        if round == 0 {
            let t = db.open_table("t").unwrap();
            db.transaction(|txn| txn.put(&t, b"late", b"1")).unwrap();
            drop(db); // the last handle's drop closes, and checkpoints, too
        } else {
            assert_eq!(state(&db, "t").get(&b"late"[..]), Some(&b"1".to_vec()));
            db.close().unwrap();
        }
        assert_eq!(segments().len(), 1, "round {round}: {:?}", segments());
    }
}

#[test]
fn the_directory_is_locked_and_a_second_open_shares_the_engine() {
    let (_tmp, dir) = tmp_dir("lock");
    let db = Database::open(&dir, options()).unwrap();
    let t = db.create_table("t").unwrap();
    let same = Database::open(&dir, options()).unwrap();
    same.transaction(|txn| txn.put(&t, b"k", b"v")).unwrap();
    assert_eq!(db.begin_read().unwrap().get(&t, b"k").unwrap(), Some(b"v".to_vec()));
    // What another process would see: the lock is held.
    let f = std::fs::File::open(dir.join(strata::LOCK_FILE)).unwrap();
    assert!(matches!(f.try_lock(), Err(std::fs::TryLockError::WouldBlock)));
    db.close().unwrap();
    assert!(f.try_lock().is_ok(), "close releases the lock");
    f.unlock().unwrap();
    assert_eq!(same.begin().unwrap_err().kind(), ErrorKind::Closed, "closed for every handle");
    let reopened = Database::open(&dir, options()).unwrap();
    assert_eq!(state(&reopened, "t").len(), 1);
    drop(reopened); // dropping the last handle closes too
    let f = std::fs::File::open(dir.join(strata::LOCK_FILE)).unwrap();
    assert!(f.try_lock().is_ok(), "the last handle's drop released the lock");
}

#[test]
fn close_from_many_threads_waits_for_in_flight_commits() {
    let disk = FaultyStorage::new(Faults::default());
    let db = Database::open_with_storage(Arc::new(disk.clone()), options()).unwrap();
    let t = db.create_table("t").unwrap();
    let acked = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for th in 0..4u32 {
            let (db, t, acked) = (&db, &t, &acked);
            s.spawn(move || {
                for i in 0.. {
                    let key = (th * 1_000_000 + i).to_be_bytes();
                    match db.transaction(|txn| txn.put(t, key, b"v")) {
                        Ok(()) => acked.lock().unwrap().push(key.to_vec()),
                        Err(e) => {
                            assert_eq!(e.kind(), ErrorKind::Closed, "{e}");
                            break;
                        }
                    }
                }
            });
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
        for _ in 0..3 {
            s.spawn(|| db.close().unwrap());
        }
    });
    assert!(db.is_closed());
    assert!(matches!(db.create_table("x"), Err(Error::Closed)));
    let after =
        Database::open_with_storage(Arc::new(disk.crash(CrashMode::LoseUnsynced)), options())
            .unwrap();
    let rows = state(&after, "t");
    let acked = acked.into_inner().unwrap();
    assert!(!acked.is_empty());
    for key in &acked {
        assert!(rows.contains_key(key), "an acknowledged commit was lost");
    }
}

/// The workload: create a table, then commits that each set one of 8 keys, with a checkpoint
/// in the middle (so crashes also land in checkpoint writing and log recycling). Returns how
/// many commits were acknowledged before the first error.
fn workload(db: &Database, commits: u32) -> u32 {
    let Ok(t) = db.create_table("t") else { return 0 };
    for i in 0..commits {
        if i == commits / 2 && db.checkpoint().is_err() {
            return i;
        }
        // Each commit also adds to one counter by a merge: the log carries the operator and
        // recovery applies it again, in commit order.
        let r = db.transaction(|txn| {
            txn.put(&t, [(i % 8) as u8], i.to_le_bytes())?;
            txn.add(&t, b"sum", i64::from(i) + 1)
        });
        if r.is_err() {
            return i;
        }
    }
    commits
}

fn model(commits: u32) -> State {
    let mut m = State::new();
    for i in 0..commits {
        m.insert(vec![(i % 8) as u8], i.to_le_bytes().to_vec());
    }
    if commits > 0 {
        let sum = i64::from(commits) * (i64::from(commits) + 1) / 2;
        m.insert(b"sum".to_vec(), sum.to_le_bytes().to_vec());
    }
    m
}

fn open_after(disk: &FaultyStorage) -> Database {
    Database::open_with_storage(Arc::new(disk.clone()), options()).unwrap()
}

#[test]
fn a_crash_at_every_write_and_sync_recovers_a_prefix_with_every_acknowledged_commit() {
    // Without padding (pwrite-like storage), and with the log padding to 512-byte pages
    // before each sync (as it does on mapped files).
    let mut recoveries = 0;
    for pad in [None, Some(512)] {
        recoveries += crash_everywhere(pad);
    }
    assert!(recoveries > 2000, "{recoveries} recoveries");
}

fn faulty_disk(pad: Option<u64>) -> FaultyStorage {
    let disk = FaultyStorage::new(Faults::default());
    disk.set_sync_page_bytes(pad);
    disk
}

fn crash_everywhere(pad: Option<u64>) -> u32 {
    const COMMITS: u32 = 40;
    let total_ops = {
        let disk = faulty_disk(pad);
        let db = open_after(&disk);
        assert_eq!(workload(&db, COMMITS), COMMITS);
        disk.ops()
    };
    // Two random-subset modes (different seeds per crash point) and two tears (inside a
    // header, and far into a record or past it).
    let modes = [
        CrashMode::LoseUnsynced,
        CrashMode::KeepRandom { seed: 7 },
        CrashMode::KeepRandom { seed: 8 },
        CrashMode::TearLast { bytes: 9 },
        CrashMode::TearLast { bytes: 100 },
    ];
    let mut recoveries = 0;
    for crash_at in 0..=total_ops {
        for (m, mode) in modes.iter().enumerate() {
            let disk = faulty_disk(pad);
            let acked = {
                let db = open_after(&disk);
                disk.set_faults(Faults { crash_after_ops: Some(crash_at), ..Faults::default() });
                workload(&db, COMMITS)
            };
            let mode = match mode {
                CrashMode::KeepRandom { .. } => {
                    CrashMode::KeepRandom { seed: crash_at * 8 + m as u64 }
                }
                other => *other,
            };
            let after = disk.crash(mode);
            let recovered = {
                let db = open_after(&after);
                state(&db, "t")
            };
            let k = (acked..=COMMITS).find(|k| model(*k) == recovered);
            assert!(
                k.is_some(),
                "crash after op {crash_at} ({mode:?}): {acked} acknowledged, recovered {recovered:?}"
            );
            recoveries += 1;
            // Recovering again (from what the first recovery left) gives the same state, and
            // so does a recovery that itself crashes at any of its operations.
            let again = after.crash(CrashMode::LoseUnsynced);
            let ops_before = again.ops();
            let db = open_after(&again);
            assert_eq!(state(&db, "t"), recovered, "crash after op {crash_at}: second recovery");
            drop(db);
            let recovery_ops = again.ops() - ops_before;
            for n in 0..recovery_ops.min(8) {
                let d = disk.crash(mode);
                d.set_faults(Faults { crash_after_ops: Some(d.ops() + n), ..Faults::default() });
                let _ = Database::open_with_storage(Arc::new(d.clone()), options());
                let db = open_after(&d.crash(CrashMode::LoseUnsynced));
                assert_eq!(state(&db, "t"), recovered, "recovery crashed after its op {n}");
                recoveries += 1;
            }
            // New commits work after recovery and survive the next crash.
            let db = open_after(&after);
            let t = db.create_or_open_table("t").unwrap();
            db.transaction(|txn| txn.put(&t, b"new", b"1")).unwrap();
            drop(db);
            let db = open_after(&after.crash(CrashMode::LoseUnsynced));
            assert_eq!(state(&db, "t").get(&b"new"[..]), Some(&b"1".to_vec()));
        }
    }
    eprintln!("padding {pad:?}: {total_ops} crash points, {recoveries} recoveries checked");
    recoveries
}

#[test]
fn a_flipped_bit_in_the_log_is_refused_and_salvage_keeps_the_prefix() {
    let disk = FaultyStorage::new(Faults::default());
    {
        // Without the checkpoint at close: the damage must lie in log the open needs.
        let options = options().checkpoint_on_close(false);
        let db = Database::open_with_storage(Arc::new(disk.clone()), options).unwrap();
        let t = db.create_table("t").unwrap();
        for i in 0..200u32 {
            db.transaction(|txn| txn.put(&t, i.to_be_bytes(), [1u8; 40])).unwrap();
        }
    }
    let segments: Vec<String> =
        disk.list().unwrap().into_iter().filter(|n| n.starts_with("wal-0")).collect();
    assert!(segments.len() > 2);
    disk.flip_bit(&segments[1], 8 * 100 + 1).unwrap();
    // Intact records later in the log say the damaged commit was durable: media damage, not a
    // crash. Open refuses and changes nothing; only an explicit salvage drops it.
    let err = Database::open_with_storage(Arc::new(disk.clone()), options()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Corrupt, "{err}");
    assert!(err.to_string().contains(&segments[1]), "{err}");
    assert_eq!(disk.list().unwrap().len(), {
        let again = Database::open_with_storage(Arc::new(disk.clone()), options());
        assert!(again.is_err(), "a refused open changed nothing, so it refuses again");
        disk.list().unwrap().len()
    });
    let db = Database::open_with_storage(Arc::new(disk.clone()), options().salvage(true)).unwrap();
    let report = db.recovery_report().unwrap();
    assert!(report.log_stop.as_deref().is_some_and(|s| s.contains(&segments[1])), "{report:?}");
    assert!(report.reset_log && report.salvaged.is_some(), "{report:?}");
    assert!(report.moved_aside.iter().any(|n| n.starts_with(&segments[1])), "{report:?}");
    let names = disk.list().unwrap();
    assert!(names.iter().any(|n| n == &format!("{}.damaged", segments[1])), "{names:?}");
    let rows = state(&db, "t");
    let n = rows.len() as u32;
    assert!(n > 0 && n < 200, "a prefix: {n}");
    assert_eq!(
        rows.keys().cloned().collect::<Vec<_>>(),
        (0..n).map(|i| i.to_be_bytes().to_vec()).collect::<Vec<_>>()
    );
    let t = db.open_table("t").unwrap();
    db.transaction(|txn| txn.put(&t, b"after", b"ok")).unwrap();
    drop(db);
    let db = open_after(&disk.crash(CrashMode::LoseUnsynced));
    assert_eq!(state(&db, "t").len() as u32, n + 1, "the reset log keeps new commits");
}

/// After a failed sync the database stops: the failed commit was published in memory before its
/// sync, and it does not survive a restart, so nobody may read it afterwards. (Before, the
/// database only refused writes, and readers kept seeing the failed commit's row until reopen.)
#[test]
fn a_failed_sync_stops_the_database_and_loses_nothing_acknowledged() {
    let disk = FaultyStorage::new(Faults::default());
    let db = open_after(&disk);
    let t = db.create_table("t").unwrap();
    db.transaction(|txn| txn.put(&t, b"a", b"1")).unwrap();
    let reader = db.begin_read().unwrap(); // a snapshot taken before the failure
    disk.set_faults(Faults { failing_syncs: 1, ..Faults::default() });
    let err = db.transaction(|txn| txn.put(&t, b"b", b"2")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Io, "{err}");
    let err = db.transaction(|txn| txn.put(&t, b"c", b"3")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Io, "sticky: {err}");
    assert!(err.to_string().contains("stopped"), "{err}");
    let err = db.begin_read().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Io, "a new snapshot is refused: {err}");
    let err = reader.get(&t, b"a").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Io, "an open snapshot's reads are refused: {err}");
    assert!(err.to_string().contains("reopen"), "the error says what to do: {err}");
    assert!(!db.is_closed(), "stopped is not closed");
    drop(reader);
    db.close().unwrap();
    let db = open_after(&disk.crash(CrashMode::LoseUnsynced));
    let rows = state(&db, "t");
    assert_eq!(rows.get(&b"a"[..]), Some(&b"1".to_vec()));
    assert!(!rows.contains_key(&b"b"[..]), "the failed commit did not survive");
    assert!(!rows.contains_key(&b"c"[..]));
}

#[test]
fn a_full_disk_fails_at_segment_creation_and_keeps_what_was_acknowledged() {
    let disk = FaultyStorage::new(Faults { capacity_bytes: Some(6 * 4096), ..Faults::default() });
    let db = open_after(&disk);
    let t = db.create_table("t").unwrap();
    let mut acked = 0u32;
    let err = loop {
        match db.transaction(|txn| txn.put(&t, acked.to_be_bytes(), [7u8; 100])) {
            Ok(()) => acked += 1,
            Err(e) => break e,
        }
        assert!(acked < 10_000, "the disk must fill");
    };
    assert_eq!(err.kind(), ErrorKind::Io, "{err}");
    assert!(err.to_string().contains("create segment"), "{err}");
    drop(db);
    let db = open_after(&disk.crash(CrashMode::LoseUnsynced));
    assert!(state(&db, "t").len() as u32 >= acked);
}

#[test]
fn buffered_and_none_durability_survive_a_process_crash_but_not_necessarily_power_loss() {
    let disk = FaultyStorage::new(Faults::default());
    let db = Database::open_with_storage(
        Arc::new(disk.clone()),
        options().durability(Durability::Buffered),
    )
    .unwrap();
    let t = db.create_table("t").unwrap();
    let syncs_before = db.durability_stats().unwrap().log.group.syncs;
    for i in 0..50u32 {
        db.transaction(|txn| txn.put(&t, i.to_be_bytes(), b"v")).unwrap();
    }
    let mut txn = db.begin().unwrap();
    txn.set_durability(Durability::Sync);
    txn.put(&t, b"synced", b"v").unwrap();
    txn.commit().unwrap();
    let stats = db.durability_stats().unwrap();
    assert_eq!(stats.log.group.syncs, syncs_before + 1, "only the Sync commit synced");
    assert_eq!(stats.log.durable_ts, stats.log.written_ts);
    // A process crash keeps the page cache: everything written is there.
    drop(db);
    assert_eq!(state(&open_after(&disk), "t").len(), 51);
}

/// Checkpoints run while 4 writers commit read-modify-write txns (Sync) over 16 counters; a
/// power loss is simulated at random moments *while* all of that runs (`crash` snapshots the
/// disk: durable bytes plus, per mode, none / a random subset / a torn last write of the rest).
/// Each snapshot is recovered and compared with the model: the state equals the commits with
/// timestamps up to the recovered one applied in order, and every commit acknowledged before
/// the snapshot began is among them.
#[test]
fn checkpoints_under_concurrent_writers_then_a_crash_recover_a_prefix_equal_to_the_model() {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    const WRITERS: u64 = 4;
    const KEYS: u64 = 16;
    const SNAPSHOTS: u64 = 12;
    let disk = FaultyStorage::new(Faults::default());
    disk.set_sync_page_bytes(Some(512));
    let opts = Options::default()
        .segment_bytes(4096)
        .checkpoints(u64::MAX, None)
        .gc_interval(None)
        .durability(Durability::Sync);
    let db = Database::open_with_storage(Arc::new(disk.clone()), opts.clone()).unwrap();
    let t = db.create_table("counters").unwrap();
    let stop = AtomicBool::new(false);
    let snapshot_epoch = AtomicU64::new(0);
    // (ts, key, value, snapshots taken before its acknowledgement was seen)
    let commits = std::sync::Mutex::new(Vec::<(u64, u64, u64, u64)>::new());
    let mut snapshots = Vec::new();
    let checkpoints = AtomicU64::new(0);
    std::thread::scope(|s| {
        for w in 0..WRITERS {
            let (db, t, stop, commits, epoch) = (&db, &t, &stop, &commits, &snapshot_epoch);
            s.spawn(move || {
                let mut rng = w + 1;
                while !stop.load(Ordering::Relaxed) {
                    rng = rng.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    let key = (rng >> 33) % KEYS;
                    loop {
                        let mut txn = db.begin().unwrap();
                        let old = txn
                            .get(t, key.to_be_bytes())
                            .unwrap()
                            .map_or(0, |v| u64::from_le_bytes(v.try_into().unwrap()));
                        txn.put(t, key.to_be_bytes(), (old + 1).to_le_bytes()).unwrap();
                        match txn.commit() {
                            Ok(ts) => {
                                // SeqCst: an ack whose load still sees epoch n happened before
                                // snapshot n+1 began.
                                let seen = epoch.load(Ordering::SeqCst);
                                commits.lock().unwrap().push((ts.0, key, old + 1, seen));
                                break;
                            }
                            Err(e) if e.kind() == ErrorKind::Conflict => continue,
                            Err(e) => panic!("writer {w}: {e}"),
                        }
                    }
                }
            });
        }
        let (db, stop, checkpoints) = (&db, &stop, &checkpoints);
        s.spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                db.checkpoint().unwrap();
                checkpoints.fetch_add(1, Ordering::Relaxed);
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
        });
        let modes = [
            CrashMode::LoseUnsynced,
            CrashMode::KeepRandom { seed: 11 },
            CrashMode::TearLast { bytes: 7 },
        ];
        for n in 0..SNAPSHOTS {
            std::thread::sleep(std::time::Duration::from_millis(7 + n % 5));
            // On a busy machine the writers may have done little in that time: wait for work
            // between crashes (progress, not a time, decides), within a generous limit.
            let since = std::time::Instant::now();
            while (commits.lock().unwrap().len() as u64) < 10 * (n + 1)
                || checkpoints.load(Ordering::Relaxed) < n / 2
            {
                assert!(since.elapsed().as_secs() < 60, "no progress in 60 s");
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            let mode = match modes[n as usize % 3] {
                CrashMode::KeepRandom { .. } => CrashMode::KeepRandom { seed: n },
                m => m,
            };
            snapshot_epoch.store(n + 1, Ordering::SeqCst);
            snapshots.push((n + 1, mode, disk.crash(mode)));
        }
        stop.store(true, Ordering::Relaxed);
    });
    db.close().unwrap();
    let mut commits = commits.into_inner().unwrap();
    commits.sort_unstable();
    assert!(commits.len() > 100, "{} commits", commits.len());
    assert!(checkpoints.load(Ordering::Relaxed) > 5, "checkpoints ran during the writes");
    let mut checked_with_checkpoint = 0;
    for (epoch, mode, snapshot) in snapshots {
        let db = Database::open_with_storage(Arc::new(snapshot), opts.clone()).unwrap();
        let report = db.recovery_report().unwrap();
        let r = report.recovered_ts;
        let mut model = State::new();
        for &(_, key, value, _) in commits.iter().filter(|c| c.0 <= r) {
            model.insert(key.to_be_bytes().to_vec(), value.to_le_bytes().to_vec());
        }
        assert_eq!(state(&db, "counters"), model, "snapshot {epoch} ({mode:?}): {report:?}");
        let must: Vec<u64> = commits.iter().filter(|c| c.3 < epoch).map(|c| c.0).collect();
        if let Some(&newest) = must.iter().max() {
            assert!(
                newest <= r,
                "snapshot {epoch} ({mode:?}): acked commit {newest} lost, recovered to {r}"
            );
        }
        checked_with_checkpoint += u32::from(report.checkpoint_ts > 0);
    }
    assert!(checked_with_checkpoint > 0, "some snapshot recovered from a checkpoint");
}

fn bytes_on_disk(dir: &std::path::Path) -> (u64, Vec<(String, u64)>) {
    let files: Vec<(String, u64)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (e.file_name().to_string_lossy().into_owned(), e.metadata().unwrap().len())
        })
        .collect();
    (files.iter().map(|f| f.1).sum(), files)
}

/// Issue #14: a small database keeps small files (default options: 64 MiB segments at most).
/// 300 rows in one txn take the 256 KiB first segment and the base file (72 KiB: its pages, and
/// room to grow by 16 pages). 300 autocommits under
/// `Sync` write about 1.2 MB of log (each sync pads to a 4 KiB page of the mapped segment), so
/// segments grow to 512 KiB and 1 MiB on the way; no spare is made while a segment is less than
/// half full. Before segments grew, either took two 64 MiB files.
#[test]
fn a_small_database_on_disk_is_small() {
    for autocommit in [false, true] {
        let (_tmp, dir) = tmp_dir("small");
        {
            let db = Database::open(&dir, Options::default()).unwrap();
            let t = db.create_table("t").unwrap();
            let mut txn = db.begin().unwrap();
            for k in 0..300u32 {
                txn.put(&t, k.to_be_bytes(), [7u8; 40]).unwrap();
                if autocommit {
                    txn.commit().unwrap();
                    txn = db.begin().unwrap();
                }
            }
            txn.commit().unwrap();
            db.checkpoint().unwrap();
            db.close().unwrap();
        }
        let (total, files) = bytes_on_disk(&dir);
        let limit = if autocommit { 1_350 * 1024 } else { 340 * 1024 };
        assert!(total <= limit, "autocommit {autocommit}: {total} bytes for 300 rows: {files:?}");
        let db = Database::open(&dir, Options::default()).unwrap();
        assert_eq!(state(&db, "t").len(), 300);
    }
}
