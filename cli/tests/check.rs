//! `strata check DIR`: the library report and the binary's exit status on a sound database, a
//! torn tail, damage in the middle of the log, a corrupt checkpoint, an open database and a
//! missing directory — and the directory is never changed by a check.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use strata::{Database, ErrorKind, LogEnding, Options};
use strata_wal::{scan_log, FileStorage, LogRecord, RecordKind};

/// A fresh temporary directory (removed when the guard drops) and a path inside it that does
/// not exist yet.
fn tmp_dir(name: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join(name);
    (tmp, dir)
}

/// 3 tables, a checkpoint after 100 commits, 50 more commits in the log; closed (without the
/// checkpoint at close, so the 50 stay in the log).
fn build(dir: &Path) {
    let options = Options::default()
        .segment_bytes(8192)
        .checkpoints(u64::MAX, None)
        .checkpoint_on_close(false);
    let db = Database::open(dir, options).unwrap();
    let a = db.create_table("alpha").unwrap();
    let b = db.create_table("beta").unwrap();
    db.create_table("empty").unwrap();
    for i in 0..150u32 {
        db.transaction(|txn| {
            txn.put(&a, i.to_be_bytes(), [1u8; 40])?;
            if i % 3 == 0 {
                txn.put(&b, i.to_be_bytes(), b"b")?;
            }
            Ok(())
        })
        .unwrap();
        if i == 99 {
            db.checkpoint().unwrap();
        }
    }
    db.close().unwrap();
}

fn snapshot_files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .map(|e| (e.file_name().into_string().unwrap(), std::fs::read(e.path()).unwrap()))
        .collect()
}

fn log_records(dir: &Path) -> Vec<LogRecord> {
    scan_log(&FileStorage::read_only(dir).unwrap()).unwrap().records
}

fn flip(path: &Path, offset: u64) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[offset as usize] ^= 0x10;
    std::fs::write(path, bytes).unwrap();
}

/// The commit written last (the newest position in the log).
fn last_commit(records: &[LogRecord]) -> &LogRecord {
    records
        .iter()
        .filter(|r| r.kind == RecordKind::Commit)
        .max_by_key(|r| (r.seq, r.offset))
        .expect("the log holds commits")
}

fn segment(dir: &Path, r: &LogRecord) -> PathBuf {
    dir.join(format!("wal-{:020}.log", r.seq))
}

fn strata_check(dir: &Path) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_strata")).arg("check").arg(dir).output().unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap(), text)
}

#[test]
fn a_sound_database_checks_clean_and_is_not_changed() {
    let (_tmp, dir) = tmp_dir("sound");
    build(&dir);
    let before = snapshot_files(&dir);
    let report = strata::check(&dir).unwrap();
    assert!(!report.is_corrupt(), "{:?}", report.problems);
    assert_eq!(report.ending, LogEnding::Clean);
    let rows: Vec<(String, u64)> = report.tables.iter().map(|t| (t.name.clone(), t.rows)).collect();
    assert_eq!(rows, [("alpha".into(), 150), ("beta".into(), 50), ("empty".into(), 0)]);
    let (ckpt_ts, _, _) = report.checkpoint.unwrap();
    assert_eq!(report.recovery.recovered_ts, ckpt_ts + 50, "50 commits after the checkpoint");
    assert_eq!(report.recovery.records_replayed, 50);
    let (code, text) = strata_check(&dir);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("result      OK") && text.contains("alpha  150 rows"), "{text}");
    assert_eq!(snapshot_files(&dir), before, "a check changed the directory");
    // And the database still opens with everything in it; closed with its checkpoint at
    // close (the log then continues in a new small segment), it checks clean too.
    let db = Database::open(&dir, Options::default()).unwrap();
    assert_eq!(db.recovery_report().unwrap().recovered_ts, report.recovery.recovered_ts);
    db.close().unwrap();
    let (code, text) = strata_check(&dir);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("alpha  150 rows"), "{text}");
    let db = Database::open(&dir, Options::default()).unwrap();
    assert_eq!(db.recovery_report().unwrap().records_replayed, 0);
    db.close().unwrap();
}

#[test]
fn an_open_database_and_a_missing_directory_cannot_be_checked() {
    let (_tmp, dir) = tmp_dir("open");
    build(&dir);
    let db = Database::open(&dir, Options::default()).unwrap();
    assert_eq!(strata::check(&dir).unwrap_err().kind(), ErrorKind::Busy);
    let (code, text) = strata_check(&dir);
    assert_eq!(code, 1, "{text}");
    db.close().unwrap();
    let again = strata::check(&dir);
    assert!(again.is_ok(), "closed: checkable again, got {again:?}");
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(strata::check(&dir).unwrap_err().kind(), ErrorKind::Io);
    assert_eq!(strata_check(&dir).0, 1);
}

#[test]
fn a_torn_last_record_after_a_crash_is_a_torn_tail_not_corruption() {
    let (_tmp, dir) = tmp_dir("torn");
    build(&dir);
    let records = log_records(&dir);
    // A crash writes no close marker: blank the one the clean close wrote, then damage the
    // last commit, which no other record says was durable.
    let close = records.iter().find(|r| r.kind == RecordKind::Close).unwrap();
    let path = dir.join(format!("wal-{:020}.log", close.seq));
    let mut bytes = std::fs::read(&path).unwrap();
    let at = close.offset as usize;
    bytes[at..at + strata_wal::RECORD_HEADER_BYTES].fill(0);
    std::fs::write(&path, bytes).unwrap();
    let last = last_commit(&records);
    flip(&segment(&dir, last), last.offset + 30);
    let report = strata::check(&dir).unwrap();
    assert!(matches!(report.ending, LogEnding::TornTail { .. }), "{:?}", report.ending);
    assert!(!report.is_corrupt());
    assert_eq!(report.recovery.records_replayed, 49, "the torn commit is dropped");
    let (code, text) = strata_check(&dir);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("torn tail"), "{text}");
}

#[test]
fn a_damaged_last_record_of_a_cleanly_closed_database_is_corruption() {
    let (_tmp, dir) = tmp_dir("last");
    build(&dir);
    let records = log_records(&dir);
    let last = last_commit(&records);
    flip(&segment(&dir, last), last.offset + 30);
    let report = strata::check(&dir).unwrap();
    assert!(matches!(report.ending, LogEnding::Damaged(_)), "{:?}", report.ending);
    assert!(report.is_corrupt());
    assert_eq!(strata_check(&dir).0, 2);
}

#[test]
fn damage_in_the_middle_of_the_log_is_corruption() {
    let (_tmp, dir) = tmp_dir("middle");
    build(&dir);
    let records = log_records(&dir);
    let ckpt_ts = strata::check(&dir).unwrap().checkpoint.unwrap().0;
    let victim = records.iter().find(|r| r.ts == ckpt_ts + 10).unwrap();
    flip(&segment(&dir, victim), victim.offset + 25);
    let report = strata::check(&dir).unwrap();
    assert!(report.is_corrupt());
    match &report.ending {
        LogEnding::Damaged(d) => {
            assert!(d.stray_records > 0);
            assert_eq!(d.stray_ts_max, ckpt_ts + 50);
        }
        other => panic!("expected damage, got {other:?}"),
    }
    assert_eq!(report.recovery.recovered_ts, ckpt_ts + 9, "recovery keeps the prefix");
    let (code, text) = strata_check(&dir);
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("CORRUPT") && text.contains("intact commits"), "{text}");
}

#[test]
fn a_damaged_base_file_is_corruption() {
    // A page of the tree: the base opens (open reads no tree page), every page is verified.
    let (_tmp, dir) = tmp_dir("base-page");
    build(&dir);
    let path = dir.join("base.strata");
    // The root page of the newest checkpoint: the meta slot with the higher generation
    // (bytes 24..32) names it (bytes 40..48).
    let bytes = std::fs::read(&path).unwrap();
    let field = |slot: usize, at: usize| {
        u64::from_le_bytes(bytes[slot * 4096 + at..slot * 4096 + at + 8].try_into().unwrap())
    };
    let slot = if field(1, 24) > field(0, 24) { 1 } else { 0 };
    let root = field(slot, 40);
    assert!(root >= 2, "a tree");
    flip(&path, root * 4096 + 100);
    // Recovery reads the catalog through the root, so the check stops there, naming the page.
    let err = strata::check(&dir).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Corrupt);
    assert!(err.to_string().contains(&format!("page {root}")), "{err}");
    let (code, text) = strata_check(&dir);
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("CORRUPT"), "{text}");
    // Both meta pages: the base does not open at all.
    let (_tmp, dir) = tmp_dir("base-meta");
    build(&dir);
    let path = dir.join("base.strata");
    flip(&path, 40);
    flip(&path, 4096 + 40);
    assert_eq!(strata::check(&dir).unwrap_err().kind(), ErrorKind::Corrupt);
    let (code, text) = strata_check(&dir);
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("neither meta page verifies"), "{text}");
}
