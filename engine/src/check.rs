//! `strata::check`: verifies a database directory without changing it (what `strata check DIR`
//! runs). It replays checkpoint and log exactly as `Database::open` would, into a throwaway
//! in-memory core, through a read-only view of the files, and reports what it found.

use crate::base::BASE_FILE;
use crate::durable::LogDamage;
use crate::durable::{read_catalog, recover_scanned, RecoveryReport, SYSTEM_TABLE};
use crate::error::{Error, Result};
use crate::LOCK_FILE;
use std::path::Path;
use std::time::Instant;
use strata_mvcc::{StoreKind, TxnMode};
use strata_wal::checkpoint::CHECKPOINT_TMP;
use strata_wal::{scan_log, FileStorage, RecordKind, Storage};

/// How the log ends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LogEnding {
    /// At an all-zero header, with nothing but zeros after it.
    Clean,
    /// At a torn, unwritten or lost record that no intact record states was durable: what a
    /// crash leaves (a write torn mid-way, or unsynced writes lost in any order by a power
    /// loss). Recovery drops it and anything logged past it; none of it was acknowledged under
    /// `Sync`.
    TornTail { at: String },
    /// Media damage (`LogDamage`): a commit some intact record states was durable is missing or
    /// does not verify. Opening the database refuses it (`Error::Corrupt`) until an operator
    /// salvages it (`Options::salvage`, `strata recover DIR --salvage`).
    Damaged(LogDamage),
}

/// One table's row count.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableSummary {
    pub name: String,
    pub id: u32,
    pub rows: u64,
}

/// What `check` found.
#[derive(Clone, Debug)]
pub struct CheckReport {
    /// Checkpoint timestamp, rows and bytes (of the base file; of `checkpoint.ckpt` in a
    /// directory written before base files), if there is one.
    pub checkpoint: Option<(u64, u64, u64)>,
    /// What verifying every page of the base file found (`None`: no base file, or it did not
    /// verify — then `problems` says where).
    pub base: Option<strata_store::CheckReport>,
    /// Log segment files.
    pub segments: usize,
    /// Intact log records before the end of the valid log (any timestamp).
    pub log_records: u64,
    /// What a recovery would do: records replayed and dropped, the newest commit, log bytes.
    pub recovery: RecoveryReport,
    pub ending: LogEnding,
    /// User tables (not the catalog) and their rows at the newest recovered commit.
    pub tables: Vec<TableSummary>,
    /// A checkpoint that was being written when the process stopped (harmless: ignored and
    /// replaced by the next checkpoint).
    pub interrupted_checkpoint: bool,
    /// Everything that does not verify. Empty means the directory is sound.
    ///
    /// Commits logged past a missing timestamp (`recovery.records_dropped`) are not a problem:
    /// committers append in the order they reach the log, not in timestamp order, so a crash
    /// can leave a later timestamp logged while an earlier one never was. Neither was
    /// acknowledged (an acknowledgement waits for every earlier timestamp), and recovery drops
    /// them.
    pub problems: Vec<String>,
}

impl CheckReport {
    /// Whether anything failed to verify (`strata check` exits non-zero).
    pub fn is_corrupt(&self) -> bool {
        !self.problems.is_empty()
    }

    /// Rows over all user tables.
    pub fn total_rows(&self) -> u64 {
        self.tables.iter().map(|t| t.rows).sum()
    }
}

/// Verifies the database in `dir` without writing to it: checkpoint checksums and structure,
/// every log record's checksum, timestamps (each appears once; replay is gap-free), commit
/// payloads, the catalog, and what lies past the end of the log. Holds a shared lock on the
/// directory while it runs, so a database open in another process (or this one) is refused
/// with `Error::AlreadyOpen` rather than checked while it changes.
///
/// Returns `Err(Error::Corrupt)` when recovery itself would refuse the directory (a corrupt
/// checkpoint, a timestamp logged twice, an undecodable commit or catalog), and otherwise a
/// report whose `problems` list what does not verify: intact records past a damaged one, and
/// records of a kind the log should not hold.
pub fn check(dir: impl AsRef<Path>) -> Result<CheckReport> {
    let dir = dir.as_ref();
    let io = |what: &str, e: std::io::Error| Error::Io { message: format!("{what}: {e}") };
    let storage = FileStorage::read_only(dir).map_err(|e| io("opening the directory", e))?;
    // Shared lock (if a lock file exists: `check` creates nothing). `Database::open` takes it
    // exclusively, so the two exclude each other.
    let _lock = match std::fs::File::open(dir.join(LOCK_FILE)) {
        Ok(f) => match f.try_lock_shared() {
            Ok(()) => Some(crate::db::DirLock(f)),
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(Error::AlreadyOpen { path: dir.display().to_string() })
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io("locking the directory", e)),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(io("opening the lock file", e)),
    };

    let started = Instant::now();
    let scan = scan_log(&storage).map_err(crate::durable::log_error)?;
    let (mvcc, _, recovery, _, store_base) =
        recover_scanned(&storage, StoreKind::LockFree, &scan, started, false)?;
    let mut problems = Vec::new();

    // The base file: every page the newest checkpoint reaches, verified.
    let base = match &store_base {
        Some(_) => match strata_store::check(&storage, BASE_FILE) {
            Ok(report) => Some(report),
            Err(e) => {
                problems.push(format!("{BASE_FILE}: {e}"));
                None
            }
        },
        None => None,
    };
    let checkpoint_name =
        if store_base.is_some() { BASE_FILE } else { strata_wal::checkpoint::CHECKPOINT_FILE };
    let checkpoint_file = match storage.open(checkpoint_name) {
        Ok(f) => Some(f.len().map_err(|e| io("reading the checkpoint's length", e))?),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(io("opening the checkpoint", e)),
    };
    let checkpoint =
        checkpoint_file.map(|bytes| (recovery.checkpoint_ts, recovery.checkpoint_rows, bytes));
    let names = storage.list().map_err(|e| io("listing", e))?;
    // A lock file or a half-made base file alone: a database whose creation was interrupted
    // (nothing was ever committed to it; opening it creates it).
    let interrupted_creation =
        names.iter().any(|n| n == LOCK_FILE || n == &format!("{BASE_FILE}.tmp"));
    if checkpoint.is_none() && scan.segment_seqs.is_empty() && !interrupted_creation {
        problems.push(
            "no Strata database here: no base file and no log segment (a database directory \
             always holds both once it has been opened)"
                .to_string(),
        );
    }
    let interrupted_checkpoint = names.iter().any(|n| n == CHECKPOINT_TMP);

    let strays: Vec<u64> = scan
        .records
        .iter()
        .filter(|r| {
            !matches!(
                r.kind,
                RecordKind::Commit
                    | RecordKind::Padding
                    | RecordKind::Close
                    | RecordKind::SegmentStart
            )
        })
        .map(|r| r.ts)
        .collect();
    if let Some(ts) = strays.first() {
        problems.push(format!(
            "{} log records are neither commits nor padding (first at timestamp {ts}); recovery \
             ignores them",
            strays.len()
        ));
    }
    let damage = crate::durable::log_damage(
        &storage,
        &scan,
        recovery.recovered_ts,
        recovery.checkpoint_log_seq,
    )?;
    let ending = match damage {
        None if scan.tail_clean => LogEnding::Clean,
        None => LogEnding::TornTail {
            at: crate::durable::where_log_stops(&scan).unwrap_or_else(|| "the log".to_string()),
        },
        Some(d) => {
            problems.push(format!(
                "{d}; opening the database refuses it (Corrupt) until salvaged with `strata \
                 recover DIR --salvage`"
            ));
            LogEnding::Damaged(d)
        }
    };

    let (catalog, _) = read_catalog(&mvcc)?;
    let snap = mvcc.begin(TxnMode::ReadOnly)?;
    let tables = catalog
        .into_iter()
        .filter(|(_, id)| *id != SYSTEM_TABLE)
        .map(|(name, id)| Ok(TableSummary { name, id: id.0, rows: snap.scan(id)?.len() as u64 }))
        .collect::<Result<Vec<_>>>()?;
    drop(snap);
    Ok(CheckReport {
        checkpoint,
        base,
        segments: scan.segment_seqs.len(),
        log_records: scan.records.len() as u64,
        recovery,
        ending,
        tables,
        interrupted_checkpoint,
        problems,
    })
}
