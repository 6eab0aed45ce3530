//! Durability: what a database opened from a directory adds to the in-memory engine.
//!
//! - Every commit that wrote something appends one log record (its writes, stamped with its
//!   commit timestamp) after the MVCC commit gave it a timestamp, then waits as its
//!   `Durability` asks (`strata_wal::Log::wait`). Timestamps are dense and every one has a
//!   record, so recovery can restore exactly a prefix of the commit order (INVARIANTS §4.2).
//! - Catalog changes are commits to the system table (`SYSTEM_TABLE`), logged like any other.
//! - Recovery: the base's newest checkpoint, then the log records above its timestamp in
//!   timestamp order up to the first missing timestamp. A missing commit that some intact record claims was
//!   durable is media damage (`LogDamage`): open refuses it with `Error::Corrupt` and changes no
//!   file, unless the operator asked to salvage (`Options::salvage`). Otherwise, if anything had
//!   to be dropped (a torn tail, records beyond a gap, garbage after the end), recovery writes a
//!   checkpoint of what it restored and starts a fresh log (moving the old segments aside when
//!   salvaging), so the files never hold two records of one timestamp and a crash during
//!   recovery recovers the same state (docs/design/wal.md, Recovery).
//! - Checkpoints: the changes committed since the base's last checkpoint, as of an MVCC snapshot
//!   (writers keep running), written into the base file (`base.rs`, `strata-store`) and switched
//!   atomically, then the log segments it covers are recycled.
//! - Recovery opens the base (no rows are loaded: reads the chains cannot answer go to it) and
//!   replays the log after its checkpoint into the chains.

use crate::base::{base_key, StoreBase, Written};
use crate::error::{Error, Result};
use crate::sync::{Arc, Mutex, RwLock};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use strata_mvcc::{MergeOp, Mvcc, StoreKind, TableId, Timestamp, TxnMode, WriteOp};
use strata_wal::{
    create_segment, read_checkpoint, remove_segments_before, scan_log, AppendFrom, Log, LogEnd,
    LogError, LogOptions, LogScan, RecordKind, Storage, WalOp, SEGMENT_HEADER_BYTES,
};

/// The catalog's own table: `id (u32 BE) -> name`, plus `NEXT_TABLE_KEY -> next id (u32 LE)`.
pub(crate) const SYSTEM_TABLE: TableId = TableId(0);
/// Key of the next-table-id row (ids are never reused, even across restarts).
pub(crate) const NEXT_TABLE_KEY: &[u8] = b"next_table_id";

/// What recovery found and did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RecoveryReport {
    /// Timestamp of the checkpoint recovery started from (0: none).
    pub checkpoint_ts: u64,
    /// Rows loaded from it.
    pub checkpoint_rows: u64,
    /// Log records replayed (those above the checkpoint, up to the first gap).
    pub records_replayed: u64,
    /// Valid records dropped because an earlier timestamp was missing.
    pub records_dropped: u64,
    /// Where the log stopped being valid, if it did not end cleanly.
    pub log_stop: Option<String>,
    /// The newest commit recovered; the clock continues after it.
    pub recovered_ts: u64,
    /// Log bytes read.
    pub log_bytes: u64,
    /// Whether recovery wrote a checkpoint and started a fresh log (unclean tail).
    pub reset_log: bool,
    /// Set only by an open with `Options::salvage`: the damage that was salvaged (intact
    /// records past a bad one, which the open dropped).
    pub salvaged: Option<LogDamage>,
    /// Files a salvaging open moved aside (renamed with a `.damaged` suffix, never deleted).
    pub moved_aside: Vec<String>,
    /// The log segment the checkpoint says the log continues in (`None`: no checkpoint, or one
    /// written before segments had headers).
    pub checkpoint_log_seq: Option<u64>,
    pub elapsed: Duration,
}

/// Media damage in the log: a commit that was durable is missing or does not verify. Every
/// commit record states what was durable when it was written (its *durable claim*), and a clean
/// close writes a `Close` record stating the newest durable commit. If some intact record claims
/// a timestamp durable that recovery cannot replay, the bytes were lost after they were synced —
/// not by a crash, which only loses or tears unsynced writes. Such a log is never recovered
/// silently: `Database::open` refuses with `Error::Corrupt`, `strata check` reports it, and only
/// an open with `Options::salvage` (`strata recover DIR --salvage`) drops what lies past it.
/// Logs written in format 1 state no claims; for them, intact records past a bad one count as
/// damage (the earlier, conservative rule).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogDamage {
    /// Where the valid log ends: segment file, offset and what failed to verify there (or the
    /// missing timestamp, when the log ends cleanly but has a gap).
    pub at: String,
    /// The newest commit replayed; the next one is the one lost.
    pub recovered_ts: u64,
    /// The newest timestamp some intact record states was durable (0: none states any).
    pub durable_through: u64,
    /// Intact commit records that recovery would drop (past the damage), and their timestamps.
    pub stray_records: u64,
    pub stray_ts_min: u64,
    pub stray_ts_max: u64,
}

impl std::fmt::Display for LogDamage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the log stops being replayable at {} after commit {}",
            self.at, self.recovered_ts
        )?;
        if self.durable_through > self.recovered_ts {
            write!(
                f,
                ", but its records show every commit through {} was durable",
                self.durable_through
            )?;
        }
        if self.stray_records > 0 {
            write!(
                f,
                "; {} intact commits (timestamps {}..={}) lie past it",
                self.stray_records, self.stray_ts_min, self.stray_ts_max
            )?;
        }
        Ok(())
    }
}

/// Where a scanned log stops being valid — the first bad record (its error names the offset), or
/// non-zero bytes after an all-zero header — or `None` if it ends cleanly.
pub(crate) fn where_log_stops(scan: &LogScan) -> Option<String> {
    match (&scan.stop, &scan.end) {
        (Some(stop), _) => Some(format!("{}: {}", stop.segment, stop.error)),
        _ if scan.tail_clean => None,
        (None, Some(end)) => Some(format!(
            "segment {} offset {}: an all-zero header followed by non-zero bytes",
            end.seq, end.offset
        )),
        (None, None) => Some("the first segment".to_string()),
    }
}

/// Looks for media damage (see `LogDamage`) in a scanned log whose replay stopped after
/// `recovered_ts`: `None` when the log ends cleanly or only a crash's unsynced tail is missing.
pub(crate) fn log_damage(
    storage: &dyn Storage,
    scan: &LogScan,
    recovered_ts: u64,
    log_seq: Option<u64>,
) -> Result<Option<LogDamage>> {
    if let Some(at) = segment_damage(scan, log_seq) {
        return Ok(Some(LogDamage {
            at,
            recovered_ts,
            durable_through: 0,
            stray_records: 0,
            stray_ts_min: 0,
            stray_ts_max: 0,
        }));
    }
    // Padding past the end carries nothing; only records with data (or claims) count.
    let mut past = if scan.tail_clean {
        Vec::new()
    } else {
        strata_wal::records_past_end(storage, scan).map_err(log_error)?
    };
    past.retain(|r| r.kind != RecordKind::Padding);
    let durable_through = scan
        .records
        .iter()
        .filter_map(|r| r.durable_claim)
        .chain(past.iter().filter_map(|r| r.durable_claim))
        .max()
        .unwrap_or(0);
    let dropped: Vec<u64> = scan
        .records
        .iter()
        .filter(|r| r.kind == RecordKind::Commit && r.ts > recovered_ts)
        .map(|r| r.ts)
        .chain(past.iter().filter(|r| r.kind == RecordKind::Commit).map(|r| r.ts))
        .collect();
    let format_1_strays = past.iter().any(|r| r.format_1);
    if durable_through <= recovered_ts && !format_1_strays {
        return Ok(None);
    }
    let at = where_log_stops(scan).unwrap_or_else(|| {
        format!("timestamp {} (no intact record of it in any segment)", recovered_ts + 1)
    });
    Ok(Some(LogDamage {
        at,
        recovered_ts,
        durable_through,
        stray_records: dropped.len() as u64,
        stray_ts_min: dropped.iter().copied().min().unwrap_or(0),
        stray_ts_max: dropped.iter().copied().max().unwrap_or(0),
    }))
}

/// Damage to the log's files rather than to a record in them: the segment the checkpoint says
/// the log continues in (`log_seq`) missing, or not beginning with its `SegmentStart` record
/// (zeroed, overwritten); a segment missing between two others at or after it; a segment whose
/// header names another segment (renamed) or a longer file (truncated). A crash causes none of
/// these: a segment is created with its header synced before a checkpoint names it, its name is
/// synced before the next segment is created, segments are removed only below the
/// checkpoint's, and files never shrink.
fn segment_damage(scan: &LogScan, log_seq: Option<u64>) -> Option<String> {
    let name = |seq: u64| format!("segment {seq} ({})", strata_wal::segment_name(seq));
    if let Some(a) = log_seq {
        if !scan.segment_seqs.contains(&a) {
            return Some(format!(
                "{}: it is missing, but the checkpoint says the log continues there (deleted?)",
                name(a)
            ));
        }
    }
    let from = log_seq.unwrap_or(0);
    let heads: Vec<_> = scan.heads.iter().filter(|h| h.seq >= from).collect();
    for pair in heads.windows(2) {
        if pair[1].seq != pair[0].seq + 1 {
            return Some(format!(
                "{}: missing between segments {} and {}",
                name(pair[0].seq + 1),
                pair[0].seq,
                pair[1].seq
            ));
        }
    }
    for h in &heads {
        match h.header {
            Some((seq, _)) if seq != h.seq => {
                return Some(format!("{}: its header says it is segment {seq}", name(h.seq)))
            }
            Some((_, len)) if h.file_len < len => {
                return Some(format!(
                    "{}: {} bytes long, but it was created {len} bytes long (truncated)",
                    name(h.seq),
                    h.file_len
                ))
            }
            Some(_) => {}
            // Only the checkpoint's segment is known to have had its header synced; a later
            // segment's header is written at rotation and may be lost or torn by a crash (what
            // its records held is judged by their durable claims, `log_damage`).
            None if Some(h.seq) != log_seq => {}
            None if h.all_zero => {
                return Some(format!(
                    "{}: all zero, but the checkpoint says the log continues there (zeroed?)",
                    name(h.seq)
                ))
            }
            None => {
                return Some(format!(
                    "{}: does not begin with its header, but the checkpoint says the log \
                     continues there (overwritten, or not a Strata log)",
                    name(h.seq)
                ))
            }
        }
    }
    None
}

/// What one checkpoint did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CheckpointReport {
    /// The snapshot timestamp written (0: nothing new since the last one; nothing written).
    pub ts: u64,
    pub rows: u64,
    pub bytes: u64,
    /// Log segments recycled or removed after it.
    pub segments_retired: u64,
    pub elapsed: Duration,
    /// When the base file's syncs began and ended (`None` when nothing was written): the
    /// window in which the checkpoint's pages reach the device, competing with commits' log
    /// syncs.
    pub base_synced: Option<(Instant, Instant)>,
}

/// Durability counters (part of `Database::durability_stats`).
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct DurabilityStats {
    pub log: strata_wal::LogStats,
    /// Log bytes appended since the last checkpoint.
    pub log_bytes_since_checkpoint: u64,
    pub checkpoints: u64,
    pub last_checkpoint_ts: u64,
    /// Time since the last checkpoint (or since open).
    pub checkpoint_age: Duration,
    pub last_checkpoint_error: Option<String>,
    pub recovery: RecoveryReport,
}

#[derive(Debug)]
struct CheckpointState {
    ts: u64,
    log_bytes_at: u64,
    at: Instant,
    count: u64,
    last_error: Option<String>,
}

/// The durable half of a database.
pub(crate) struct Durable {
    pub(crate) log: Log,
    /// The base file the chains sit in front of.
    pub(crate) base: Arc<StoreBase>,
    /// Commits hold it shared from their first check to their acknowledgement; `close` takes
    /// it exclusively, so it returns only after every in-flight commit is durable or failed.
    pub(crate) gate: RwLock<()>,
    checkpoint: Mutex<CheckpointState>,
    pub(crate) recovery: RecoveryReport,
    /// The directory lock (released when the database closes).
    pub(crate) lock_file: Mutex<Option<crate::db::DirLock>>,
}

impl std::fmt::Debug for Durable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Durable").field("log", &self.log).finish()
    }
}

pub(crate) fn log_error(e: LogError) -> Error {
    Error::Io { message: e.to_string() }
}

/// Replays checkpoint and log into a new MVCC core. Returns the core, where appends continue,
/// and the report. `reset` is decided by the caller once the catalog is rebuilt (it needs a
/// checkpoint, which needs the catalog).
///
/// Media damage (`LogDamage`) is `Error::Corrupt` and changes nothing, unless `salvage` is set:
/// then the valid prefix is recovered and the report says what was dropped (the caller resets
/// the log, moving the damaged segments aside).
pub(crate) fn recover(storage: &dyn Storage, store: StoreKind, salvage: bool) -> Result<Recovered> {
    let started = Instant::now();
    let scan = scan_log(storage).map_err(log_error)?;
    let mut out = recover_scanned(storage, store, &scan, started, true)?;
    let damage = log_damage(storage, &scan, out.2.recovered_ts, out.2.checkpoint_log_seq)?;
    if let Some(d) = &damage {
        if !salvage {
            return Err(Error::Corrupt {
                message: format!(
                    "{d}: media damage, not a crash; nothing was changed. `strata check DIR` \
                     reports it; `strata recover DIR --salvage` (Options::salvage) keeps the \
                     valid prefix, drops what lies past it and moves the log segments aside"
                ),
            });
        }
        // Salvage: the log is reset (segments moved aside), never continued.
        out.1 = None;
    }
    out.2.salvaged = damage;
    Ok(out)
}

/// What recovery hands back: the core, where appends continue (`None`: the log must be
/// reset), the report, the newest segment's sequence number, and the base (`None` only when
/// `strata check` reads a directory written before base files, which it must not upgrade).
pub(crate) type Recovered = (Mvcc, Option<AppendFrom>, RecoveryReport, u64, Option<Arc<StoreBase>>);

/// Opens the base for recovery. A directory written before base files (a `checkpoint.ckpt`) is
/// upgraded when `writable`: its checkpoint's rows become the base's first checkpoint (at the
/// same timestamp, naming the same log segment), then the old file is removed — a crash in
/// between leaves both, and the base is used. A new directory gets an empty base. `None`: not
/// `writable` and no base file.
fn open_base(storage: &dyn Storage, writable: bool) -> Result<Option<Arc<StoreBase>>> {
    let corrupt = |message: String| Error::Corrupt { message };
    if StoreBase::exists(storage)? {
        return Ok(Some(Arc::new(StoreBase::open(storage, false)?)));
    }
    if !writable {
        return Ok(None);
    }
    let legacy = read_checkpoint(storage).map_err(|e| corrupt(e.to_string()))?;
    let base = Arc::new(StoreBase::open(storage, true)?);
    if let Some(c) = legacy {
        let (ts, log_seq) = (c.ts, c.log_seq.unwrap_or(0));
        let mut rows: Vec<strata_store::Change> =
            c.rows.into_iter().map(|(t, k, v)| (base_key(TableId(t), &k), Some(v))).collect();
        rows.sort_by(|a, b| a.0.cmp(&b.0));
        rows.dedup_by(|a, b| a.0 == b.0);
        base.checkpoint(Timestamp(ts), log_seq, &rows)?;
        storage
            .remove(strata_wal::checkpoint::CHECKPOINT_FILE)
            .and_then(|()| storage.sync_dir())
            .map_err(|e| Error::Io { message: format!("removing the upgraded checkpoint: {e}") })?;
    }
    Ok(Some(base))
}

/// `recover` over a log already scanned (`strata::check` needs the scan afterwards too).
pub(crate) fn recover_scanned(
    storage: &dyn Storage,
    store: StoreKind,
    scan: &LogScan,
    started: Instant,
    writable: bool,
) -> Result<Recovered> {
    let corrupt = |message: String| Error::Corrupt { message };
    let mut report = RecoveryReport::default();
    let (mvcc, store_base) = match open_base(storage, writable)? {
        Some(base) => {
            let newest = base.newest();
            report.checkpoint_ts = newest.ts();
            report.checkpoint_rows = newest.rows();
            report.checkpoint_log_seq = (newest.user() != 0).then_some(newest.user());
            let mvcc = Mvcc::with_base(store, Timestamp(newest.ts()), crate::base::reader(&base));
            (mvcc, Some(base))
        }
        None => {
            // `strata check` on a directory written before base files: its checkpoint is
            // loaded into the chains, as that release did, and nothing is written.
            let checkpoint = read_checkpoint(storage).map_err(|e| corrupt(e.to_string()))?;
            let mvcc = match &checkpoint {
                Some(c) if !c.rows.is_empty() => {
                    let mvcc = Mvcc::new(store, Timestamp(c.ts - 1));
                    let rows =
                        c.rows.iter().map(|(t, k, v)| (TableId(*t), &k[..], WriteOp::Put(&v[..])));
                    let ts = mvcc
                        .apply(rows)
                        .map_err(|e| corrupt(format!("loading the checkpoint: {e}")))?;
                    if ts.0 != c.ts {
                        let expected = c.ts;
                        return Err(corrupt(format!(
                            "checkpoint loaded at {ts}, expected {expected}"
                        )));
                    }
                    mvcc
                }
                Some(c) => Mvcc::new(store, Timestamp(c.ts)),
                None => Mvcc::new(store, Timestamp::ZERO),
            };
            if let Some(c) = &checkpoint {
                report.checkpoint_ts = c.ts;
                report.checkpoint_rows = c.rows.len() as u64;
                report.checkpoint_log_seq = c.log_seq;
            }
            (mvcc, None)
        }
    };
    let base = report.checkpoint_ts;
    report.log_bytes = scan.bytes_read;
    report.log_stop = scan.stop.as_ref().map(|s| format!("{}: {}", s.segment, s.error));
    let mut above: Vec<&strata_wal::LogRecord> =
        scan.records.iter().filter(|r| r.ts > base && r.kind == RecordKind::Commit).collect();
    above.sort_by_key(|r| r.ts);
    let mut next = base + 1;
    for r in &above {
        if r.ts != next {
            if r.ts < next {
                return Err(corrupt(format!("timestamp {} appears twice in the log", r.ts)));
            }
            break;
        }
        let in_record = |e: String| corrupt(format!("record {} in segment {}: {e}", r.ts, r.seq));
        let writes =
            strata_wal::decode_commit_ops(&r.payload).map_err(|e| in_record(e.to_string()))?;
        let ops = writes
            .iter()
            .map(|(t, k, op)| {
                let op = match op {
                    WalOp::Put(v) => WriteOp::Put(v),
                    WalOp::Delete => WriteOp::Delete,
                    WalOp::Merge(m) => WriteOp::Merge(
                        MergeOp::decode(m).ok_or_else(|| in_record("an unknown merge".into()))?,
                    ),
                };
                Ok((TableId(*t), &k[..], op))
            })
            .collect::<Result<Vec<_>>>()?;
        let ts = mvcc.apply(ops).map_err(|e| corrupt(format!("replaying {}: {e}", r.ts)))?;
        if ts.0 != r.ts {
            return Err(corrupt(format!("record {} replayed at {ts}", r.ts)));
        }
        next += 1;
    }
    report.records_replayed = next - base - 1;
    report.records_dropped = (above.len() as u64) - report.records_replayed;
    report.recovered_ts = next - 1;
    // Appends continue in place only where the files are in the current shape: a checkpoint
    // that names its segment and every segment headed. Otherwise (a new database, a crash's
    // tail, an older format) the caller resets the log.
    let anchored = report.checkpoint_log_seq.is_some()
        && !scan.heads.is_empty()
        && scan.heads.iter().all(|h| h.header.is_some());
    let clean = scan.stop.is_none() && report.records_dropped == 0 && scan.tail_clean;
    let last_seq = scan.segment_seqs.last().copied().unwrap_or(0);
    let from = if clean && anchored { scan.end.clone().map(AppendFrom::End) } else { None };
    report.elapsed = started.elapsed();
    Ok((mvcc, from, report, last_seq, store_base))
}

/// Writes a base checkpoint as of a snapshot taken now: every change committed since the base's
/// newest checkpoint, and deletes of the rows the base holds for dropped tables. Only the pages
/// those rows touch are written; commits and readers keep running. Returns the checkpoint's
/// timestamp and what it wrote.
///
/// `log_seq` is the segment the log continues in: it must exist, with its header durable.
pub(crate) fn write_checkpoint(
    mvcc: &Mvcc,
    base: &StoreBase,
    log_seq: u64,
) -> Result<(u64, Written)> {
    let snap = mvcc.begin(TxnMode::ReadOnly)?;
    let upto = snap.read_ts();
    let since = Timestamp(base.newest().ts());
    let dropped = mvcc.dropped_tables();
    // Built straight in the base's key encoding: one key and one value copy per changed row.
    let mut changes: Vec<strata_store::Change> = Vec::new();
    mvcc.changes_with(since, upto, |t, k, v| {
        if dropped.binary_search(&t).is_err() {
            changes.push((base_key(t, k), v.map(<[u8]>::to_vec)));
        }
    });
    let mut gone = Vec::new();
    for t in &dropped {
        gone.extend(base.rows_of(*t)?.into_iter().map(|k| (k, None)));
    }
    if !gone.is_empty() {
        changes.extend(gone);
        changes.sort_by(|a, b| a.0.cmp(&b.0));
    }
    let written = base.checkpoint(upto, log_seq, &changes)?;
    drop(snap);
    base.prune(mvcc.refresh_watermark());
    Ok((upto.0, written))
}

/// The catalog a snapshot of the system table describes: name -> id, and the next id.
pub(crate) fn read_catalog(mvcc: &Mvcc) -> Result<(BTreeMap<String, TableId>, u32)> {
    let snap = mvcc.begin(TxnMode::ReadOnly)?;
    let mut tables = BTreeMap::new();
    let mut next = 1u32;
    for (k, v) in snap.scan(SYSTEM_TABLE)? {
        if k == NEXT_TABLE_KEY {
            let b: [u8; 4] = v.as_slice().try_into().map_err(|_| Error::Corrupt {
                message: "catalog: next table id is not a u32".into(),
            })?;
            next = next.max(u32::from_le_bytes(b));
        } else if let (Ok(id), Ok(name)) = (<[u8; 4]>::try_from(&k[..]), String::from_utf8(v)) {
            let id = u32::from_be_bytes(id);
            // Ids count up from 1 and `create_table` refuses to hand out u32::MAX's successor;
            // a row claiming it is damage, not a panic.
            let after = id.checked_add(1).ok_or_else(|| Error::Corrupt {
                message: format!("catalog: table id {id} has no successor"),
            })?;
            next = next.max(after);
            tables.insert(name, TableId(id));
        } else {
            return Err(Error::Corrupt { message: "catalog: malformed table row".into() });
        }
    }
    Ok((tables, next))
}

impl Durable {
    pub(crate) fn open(
        storage: Arc<dyn Storage>,
        base: Arc<StoreBase>,
        options: LogOptions,
        from: AppendFrom,
        recovery: RecoveryReport,
        lock_file: Option<crate::db::DirLock>,
    ) -> Result<Durable> {
        let log =
            Log::open(storage.clone(), options, from, recovery.recovered_ts).map_err(log_error)?;
        let checkpoint = CheckpointState {
            ts: recovery.checkpoint_ts,
            log_bytes_at: 0,
            at: Instant::now(),
            count: 0,
            last_error: None,
        };
        Ok(Durable {
            log,
            base,
            gate: RwLock::new(()),
            checkpoint: Mutex::new(checkpoint),
            recovery,
            lock_file: Mutex::new(lock_file),
        })
    }

    /// Takes a checkpoint now (one at a time) and recycles the log it covers.
    pub(crate) fn checkpoint(&self, mvcc: &Mvcc) -> Result<CheckpointReport> {
        self.checkpoint_with(mvcc, false)
    }

    /// The checkpoint `close` takes (`Options::checkpoint_on_close`): the log continues in a
    /// new segment of the smallest size, so the next open reads one small file; then the spare
    /// segments are removed. Nothing is written when the last checkpoint covers every commit
    /// and the log already continues in a small segment.
    pub(crate) fn checkpoint_for_close(&self, mvcc: &Mvcc) -> Result<CheckpointReport> {
        let report = self.checkpoint_with(mvcc, true)?;
        self.log.remove_spares().map_err(log_error)?;
        Ok(report)
    }

    fn checkpoint_with(&self, mvcc: &Mvcc, small_segment: bool) -> Result<CheckpointReport> {
        let mut state = self.checkpoint.lock();
        let started = Instant::now();
        let log_bytes = self.log.stats().bytes_appended;
        if mvcc.now().0 == state.ts && (!small_segment || self.log.current_is_small()) {
            return Ok(CheckpointReport::default());
        }
        let result: Result<CheckpointReport> = (|| {
            // Read before the snapshot: every commit above it is appended at or after this
            // segment. Synced before the checkpoint names it (its header must be durable).
            let log_seq = if small_segment {
                self.log.start_small_segment().map_err(log_error)?
            } else {
                self.log.current_seq()
            };
            self.log.sync_all().map_err(log_error)?;
            let (ts, written) = write_checkpoint(mvcc, &self.base, log_seq)?;
            let retired = self.log.recycle(ts, log_seq).map_err(log_error)?;
            Ok(CheckpointReport {
                ts,
                rows: written.rows,
                bytes: written.bytes,
                segments_retired: retired as u64,
                elapsed: started.elapsed(),
                base_synced: written.synced,
            })
        })();
        match &result {
            Ok(r) => {
                state.ts = r.ts;
                state.log_bytes_at = log_bytes;
                state.at = Instant::now();
                state.count += 1;
                state.last_error = None;
            }
            Err(e) => state.last_error = Some(e.to_string()),
        }
        result
    }

    /// The background thread's tick: keep a spare segment ready; checkpoint when the log since
    /// the last one is large or old enough.
    pub(crate) fn maintain(&self, mvcc: &Mvcc, every: Option<Duration>, log_bytes: u64) {
        if self.log.failure().is_some() {
            return;
        }
        let _ = self.log.ensure_spare(); // a failure here surfaces at the next rotation
                                         // Let go of base checkpoints no live snapshot can use, so their pages can be reused.
        self.base.prune(mvcc.refresh_watermark());
        let (since, age) = {
            let s = self.checkpoint.lock();
            (self.log.stats().bytes_appended.saturating_sub(s.log_bytes_at), s.at.elapsed())
        };
        let due = since >= log_bytes || (since > 0 && every.is_some_and(|e| age >= e));
        if due {
            let _ = self.checkpoint(mvcc); // recorded in `last_error`
        }
    }

    pub(crate) fn stats(&self) -> DurabilityStats {
        let log = self.log.stats();
        let s = self.checkpoint.lock();
        DurabilityStats {
            log,
            log_bytes_since_checkpoint: log.bytes_appended.saturating_sub(s.log_bytes_at),
            checkpoints: s.count,
            last_checkpoint_ts: s.ts,
            checkpoint_age: s.at.elapsed(),
            last_checkpoint_error: s.last_error.clone(),
            recovery: self.recovery.clone(),
        }
    }
}

/// Starts a fresh log: creates segment `seq` (`bytes` long) with its header synced, writes a
/// checkpoint of what was recovered naming that segment, then removes every older segment. A
/// crash before the checkpoint's meta slot is durable recovers the same state from the old files
/// (the new segment holds only its header); after it, from the new checkpoint (the old segments hold only
/// timestamps it covers, or ones beyond the gap, which stay beyond it). Returns where appends
/// continue.
pub(crate) fn reset_log(
    mvcc: &Mvcc,
    base: &StoreBase,
    storage: &dyn Storage,
    seq: u64,
    bytes: u64,
) -> Result<LogEnd> {
    let end = start_log(mvcc, base, storage, seq, bytes)?;
    remove_segments_before(storage, seq).map_err(log_error)?;
    Ok(end)
}

/// `reset_log` for a salvaging open: the new segment and the checkpoint of the recovered prefix
/// are written and synced first, then every older segment is renamed `<name>.damaged` (never
/// deleted: the operator keeps the evidence). Returns where appends continue and the new names.
pub(crate) fn reset_log_aside(
    mvcc: &Mvcc,
    base: &StoreBase,
    storage: &dyn Storage,
    seq: u64,
    bytes: u64,
) -> Result<(LogEnd, Vec<String>)> {
    let end = start_log(mvcc, base, storage, seq, bytes)?;
    let io =
        |what: &'static str| move |e: std::io::Error| Error::Io { message: format!("{what}: {e}") };
    let names = storage.list().map_err(io("listing the directory"))?;
    let mut moved = Vec::new();
    // Log segments before the new one; zeroed spares hold nothing.
    let older = |n: &&String| strata_wal::parse_segment(n).is_some_and(|s| s < seq);
    for name in names.iter().filter(older) {
        let mut to = format!("{name}.damaged");
        let mut n = 1;
        while names.contains(&to) {
            n += 1;
            to = format!("{name}.damaged.{n}");
        }
        storage.rename(name, &to).map_err(io("moving a damaged segment aside"))?;
        moved.push(to);
    }
    storage.sync_dir().map_err(io("syncing the directory"))?;
    Ok((end, moved))
}

/// The first two steps of a reset: segment `seq` with its header, then the checkpoint naming it.
fn start_log(
    mvcc: &Mvcc,
    base: &StoreBase,
    storage: &dyn Storage,
    seq: u64,
    bytes: u64,
) -> Result<LogEnd> {
    create_segment(storage, seq, bytes).map_err(log_error)?;
    write_checkpoint(mvcc, base, seq)?;
    Ok(LogEnd { seq, offset: SEGMENT_HEADER_BYTES as u64, segments: vec![(seq, 0)] })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A crafted catalog row with the largest table id is corruption, not an overflow panic
    /// (issue #13 §4).
    #[test]
    fn a_catalog_row_with_the_last_table_id_is_corrupt_not_a_panic() {
        let mvcc = Mvcc::new(StoreKind::LockFree, Timestamp::ZERO);
        let key = u32::MAX.to_be_bytes();
        mvcc.apply([(SYSTEM_TABLE, &key[..], WriteOp::Put(b"evil"))]).expect("apply");
        let err = read_catalog(&mvcc).expect_err("refused");
        assert!(matches!(err, Error::Corrupt { .. }), "{err}");
        let fine = 7u32.to_be_bytes();
        let mvcc = Mvcc::new(StoreKind::LockFree, Timestamp::ZERO);
        mvcc.apply([(SYSTEM_TABLE, &fine[..], WriteOp::Put(b"ok"))]).expect("apply");
        let (tables, next) = read_catalog(&mvcc).expect("read");
        assert_eq!((tables.get("ok").copied(), next), (Some(TableId(7)), 8));
    }
}
