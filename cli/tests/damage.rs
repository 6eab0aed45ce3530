//! Media damage in the log is never recovered away silently (issue #13 §1): damage at many
//! positions — a record's header, payload and checksum, a record at a segment boundary, the
//! second segment, the last commit of a cleanly closed database, a missing segment — is refused
//! by `Database::open` with `Corrupt` (naming where), changes no file, and `strata check` keeps
//! saying CORRUPT; only `strata recover DIR --salvage` keeps the valid prefix and moves the
//! segments aside (never deleting them). The same for the log's files: deleted, zeroed or
//! truncated beside a checkpoint, or a segment renamed. A torn tail from a crash still opens as
//! before, and `strata check` of a directory that holds no database says so.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use strata::{Database, Durability, ErrorKind, LogEnding, Options};
use strata_wal::{scan_log, FileStorage, LogRecord, RecordKind};

const COMMITS: u32 = 100;

/// A fresh temporary directory (removed when the guard drops) and a path inside it that does
/// not exist yet.
fn tmp_dir(name: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join(name);
    (tmp, dir)
}

/// No checkpoint at close: the damage these tests make must lie in log the open needs.
fn options() -> Options {
    Options::default()
        .segment_bytes(32 * 1024)
        .checkpoints(u64::MAX, None)
        .checkpoint_on_close(false)
}

/// One table and `COMMITS` autocommit inserts (Sync: each acknowledged), closed cleanly.
fn build(dir: &Path, durability: Durability) {
    let db = Database::open(dir, options().durability(durability)).unwrap();
    let t = db.create_table("t").unwrap();
    for i in 0..COMMITS {
        db.transaction(|txn| txn.put(&t, i.to_be_bytes(), [7u8; 400])).unwrap();
    }
    db.close().unwrap();
}

fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_name() != strata::LOCK_FILE)
        .map(|e| (e.file_name().into_string().unwrap(), std::fs::read(e.path()).unwrap()))
        .collect()
}

fn records(dir: &Path) -> Vec<LogRecord> {
    scan_log(&FileStorage::read_only(dir).unwrap()).unwrap().records
}

fn segment(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("wal-{seq:020}.log"))
}

fn flip(path: &Path, offset: u64) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[offset as usize] ^= 0x10;
    std::fs::write(path, bytes).unwrap();
}

fn strata(args: &[&str], dir: &Path) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_strata")).args(args).arg(dir).output().unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap(), text)
}

fn rows(db: &Database) -> u32 {
    let t = db.open_table("t").unwrap();
    db.begin_read().unwrap().scan(&t).unwrap().len() as u32
}

/// The whole story for one damaged database: open refuses and changes nothing, check says
/// CORRUPT (library and binary), `recover` without `--salvage` refuses too, `--salvage` keeps a
/// prefix and moves the segments aside, then check says OK and the database opens and works.
fn refused_then_salvaged(dir: &Path, what: &str) {
    refused_then_salvaged_below(dir, what, COMMITS);
}

/// `refused_then_salvaged` for a database that held `total` rows before the damage.
fn refused_then_salvaged_below(dir: &Path, what: &str, total: u32) {
    let before = files(dir);
    let err = Database::open(dir, options()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Corrupt, "{what}: {err}");
    assert!(err.to_string().contains("nothing was changed"), "{what}: {err}");
    assert_eq!(files(dir), before, "{what}: a refused open changed the directory");
    let report = strata::check(dir).unwrap();
    assert!(report.is_corrupt(), "{what}: {:?}", report.ending);
    assert!(matches!(report.ending, LogEnding::Damaged(_)), "{what}: {:?}", report.ending);
    let (code, text) = strata(&["check"], dir);
    assert_eq!(code, 2, "{what}: {text}");
    assert!(text.contains("CORRUPT") && text.contains("DAMAGED"), "{what}: {text}");
    let (code, text) = strata(&["recover"], dir);
    assert_eq!(code, 2, "{what}: {text}");
    assert_eq!(files(dir), before, "{what}: recover without --salvage changed the directory");
    // A second refused open, and check still CORRUPT: no open turns CORRUPT into OK.
    assert!(Database::open(dir, options()).is_err());
    assert!(strata::check(dir).unwrap().is_corrupt());

    let (code, text) = strata(&["recover", "--salvage"], dir);
    assert_eq!(code, 0, "{what}: {text}");
    let aside: Vec<String> = files(dir).into_keys().filter(|n| n.ends_with(".damaged")).collect();
    let segments = before.keys().filter(|n| n.starts_with("wal-0") && n.ends_with(".log")).count();
    assert!(text.contains("DROPPED"), "{what}: {text}");
    assert!(segments == 0 || text.contains("moved aside"), "{what}: {text}");
    assert_eq!(aside.len(), segments, "{what}: every segment kept aside: {aside:?}");
    for name in &aside {
        let original = name.trim_end_matches(".damaged");
        assert_eq!(
            files(dir)[name],
            before[original],
            "{what}: {name} is the damaged file as it was"
        );
    }
    let (code, text) = strata(&["check"], dir);
    assert_eq!(code, 0, "{what}: after salvage: {text}");
    let db = Database::open(dir, options()).unwrap();
    let n = rows(&db);
    assert!(n < total, "{what}: salvage keeps a prefix, got {n}");
    let t = db.open_table("t").unwrap();
    db.transaction(|txn| txn.put(&t, b"after", b"salvage")).unwrap();
    db.close().unwrap();
    let db = Database::open(dir, options()).unwrap();
    assert_eq!(rows(&db), n + 1, "{what}: commits after salvage are kept");
    db.close().unwrap();
}

/// A damage case: its name, which commit (an index into the log's commits), which byte of it.
type Case = (&'static str, fn(&[LogRecord]) -> usize, u64);

fn commits(dir: &Path) -> Vec<LogRecord> {
    records(dir).into_iter().filter(|r| r.kind == RecordKind::Commit).collect()
}

#[test]
fn damage_at_many_positions_is_refused_and_only_salvage_drops_it() {
    for durability in [Durability::Sync, Durability::Buffered] {
        // (what, which commit (index into the log's commits), byte offset inside it)
        let cases: [Case; 6] = [
            ("header length", |_| 3, 1),
            ("header timestamp", |_| 5, 9),
            ("checksum", |_| 7, 17),
            ("payload", |_| 10, 30),
            ("first record of the second segment", |c| first_of_segment(c, 2), 25),
            ("the last commit of a cleanly closed database", |c| c.len() - 1, 30),
        ];
        for (what, pick, at) in cases {
            let (_tmp, dir) = tmp_dir("positions");
            build(&dir, durability);
            let c = commits(&dir);
            let victim = &c[pick(&c)];
            flip(&segment(&dir, victim.seq), victim.offset + at);
            refused_then_salvaged(&dir, &format!("{what} ({durability:?})"));
        }
    }
}

fn first_of_segment(c: &[LogRecord], nth: usize) -> usize {
    let mut seqs: Vec<u64> = c.iter().map(|r| r.seq).collect();
    seqs.dedup();
    let seq = seqs[nth - 1];
    c.iter()
        .position(|r| r.seq == seq && r.offset == strata_wal::SEGMENT_HEADER_BYTES as u64)
        .unwrap()
}

#[test]
fn a_missing_segment_in_the_middle_is_refused() {
    let (_tmp, dir) = tmp_dir("missing");
    build(&dir, Durability::Sync);
    let mut seqs: Vec<u64> = commits(&dir).iter().map(|r| r.seq).collect();
    seqs.dedup();
    assert!(seqs.len() > 3, "{seqs:?}");
    std::fs::remove_file(segment(&dir, seqs[1])).unwrap();
    refused_then_salvaged(&dir, "missing second segment");
}

#[test]
fn a_torn_tail_from_a_crash_still_opens() {
    let (_tmp, dir) = tmp_dir("torn");
    build(&dir, Durability::Sync);
    let all = records(&dir);
    // A crash writes no close marker: blank it, then tear the last commit mid-way.
    let close =
        all.iter().find(|r| r.kind == RecordKind::Close).expect("a clean close marks the log");
    let path = segment(&dir, close.seq);
    let mut bytes = std::fs::read(&path).unwrap();
    let at = close.offset as usize;
    bytes[at..at + strata_wal::RECORD_HEADER_BYTES].fill(0);
    let last = all.iter().filter(|r| r.kind == RecordKind::Commit).max_by_key(|r| r.ts).unwrap();
    assert_eq!(last.seq, close.seq);
    let torn = last.offset as usize + 24;
    bytes[torn..at].fill(0);
    std::fs::write(&path, bytes).unwrap();

    let report = strata::check(&dir).unwrap();
    assert!(matches!(report.ending, LogEnding::TornTail { .. }), "{:?}", report.ending);
    assert!(!report.is_corrupt(), "{:?}", report.problems);
    let db = Database::open(&dir, options()).unwrap();
    assert_eq!(rows(&db), COMMITS - 1, "the torn commit alone is dropped");
    assert!(db.recovery_report().unwrap().salvaged.is_none());
    db.close().unwrap();
}

/// `build`, then a checkpoint (naming the segment the log continues in) and `EXTRA` more commits.
const EXTRA: u32 = 20;

fn build_with_checkpoint(dir: &Path) {
    build(dir, Durability::Sync);
    let db = Database::open(dir, options()).unwrap();
    db.checkpoint().unwrap();
    let t = db.open_table("t").unwrap();
    for i in COMMITS..COMMITS + EXTRA {
        db.transaction(|txn| txn.put(&t, i.to_be_bytes(), [7u8; 400])).unwrap();
    }
    db.close().unwrap();
}

fn segment_paths(dir: &Path) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy().into_owned();
            n.starts_with("wal-0") && n.ends_with(".log")
        })
        .collect();
    paths.sort();
    paths
}

/// The log's files damaged beside a checkpoint — deleted, zeroed, truncated, renamed — used to
/// read as an empty or shorter log (the commits after the checkpoint silently gone). Now the
/// checkpoint names the segment the log continues in, every segment starts with a header that
/// names itself and its length, and each case is refused like damage inside a record.
#[test]
fn a_log_deleted_zeroed_truncated_or_renamed_beside_a_checkpoint_is_refused() {
    type Damage = fn(&[PathBuf]);
    let cases: [(&str, Damage); 4] = [
        ("every segment deleted", |segs| {
            for p in segs {
                std::fs::remove_file(p).unwrap();
            }
        }),
        ("every segment zeroed", |segs| {
            for p in segs {
                let len = std::fs::metadata(p).unwrap().len() as usize;
                std::fs::write(p, vec![0u8; len]).unwrap();
            }
        }),
        ("the segment after the checkpoint truncated", |segs| {
            let p = &segs[0];
            let bytes = std::fs::read(p).unwrap();
            std::fs::write(p, &bytes[..bytes.len() / 2]).unwrap();
        }),
        ("a segment renamed over the one after the checkpoint", |segs| {
            assert!(segs.len() >= 2, "{segs:?}");
            std::fs::rename(&segs[1], &segs[0]).unwrap();
        }),
    ];
    for (what, damage) in cases {
        let (_tmp, dir) = tmp_dir("files");
        build_with_checkpoint(&dir);
        let segs = segment_paths(&dir);
        assert!(!segs.is_empty());
        damage(&segs);
        refused_then_salvaged_below(&dir, what, COMMITS + EXTRA);
    }
}

/// `strata check` of a directory with no database in it used to say OK ("0 tables").
#[test]
fn check_of_a_directory_without_a_database_says_so() {
    let (_tmp, dir) = tmp_dir("unrelated");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("notes.txt"), "not a database").unwrap();
    let (code, text) = strata(&["check"], &dir);
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("no Strata database here"), "{text}");
}
