//! The log: preallocated, fixed-size segment files, appended under one short lock, made
//! durable by group commit (`group.rs`), read back by recovery, recycled after checkpoints.
//!
//! Files (names sort in log order):
//! - `wal-<seq>.log`: segment `seq` (20 digits). Records start after the segment's header and
//!   run to the segment's clean end (an all-zero header); a record never spans segments.
//!   Segment sizes grow: a new log's first segment is `first_segment_bytes` (256 KiB, or
//!   `segment_bytes` if that is smaller), and each next one twice the one before, up to
//!   `segment_bytes` (longer only to hold one record that is larger). A small database keeps
//!   small files; a busy one reaches full-size segments after a few rotations.
//! - `wal-spare-<n>.log`: a zeroed, preallocated file waiting to become the next segment, so a
//!   rotation is a rename, not a 64 MiB allocation under the append lock.
//!
//! Appends take the append lock only to place and copy the bytes (and rotate when a segment is
//! full); encoding happens before, waiting after. A failed write or sync is sticky: the log
//! refuses every later append and every waiter gets the error.

use crate::group::{Failed, GroupCommit, GroupStats, SYNC_FLIGHTS_DEFAULT};
use crate::record::{encode, CodecError, RecordKind, RecordRef, RECORD_HEADER_BYTES};
use crate::storage::{Storage, StorageFile};
use crate::sync::{Arc, PlMutex};
use std::fmt;
use std::io;

/// Default (largest) segment size.
pub const SEGMENT_BYTES_DEFAULT: u64 = 64 * 1024 * 1024;
/// The first segment of a new log, when `segment_bytes` is larger.
pub const FIRST_SEGMENT_BYTES: u64 = 256 * 1024;

/// The size of a new log's first segment for segments of at most `segment_bytes`.
pub fn first_segment_bytes(segment_bytes: u64) -> u64 {
    segment_bytes.min(FIRST_SEGMENT_BYTES)
}

/// The size of the segment after one of `len` bytes: twice it, within the first size and
/// `segment_bytes`.
pub fn next_segment_bytes(len: u64, segment_bytes: u64) -> u64 {
    len.saturating_mul(2).clamp(first_segment_bytes(segment_bytes), segment_bytes.max(1))
}
/// Zeroed spares kept ready for rotation.
pub const SPARES_MAX: usize = 1;
const ZERO_CHUNK_BYTES: usize = 1 << 20;
/// The unit `Log::zero` checks and rewrites: a page of the page cache.
const ZERO_PAGE_BYTES: usize = 4096;

/// What a commit waits for before it is acknowledged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Durability {
    /// Nothing: the record is appended (timestamps are dense, so every commit has one) but the
    /// commit does not wait. In a database without a directory, nothing is logged at all.
    None,
    /// Written to the log (the OS page cache): survives a process crash, not power loss.
    Buffered,
    /// Synced to the device, with every earlier commit: survives power loss.
    #[default]
    Sync,
}

/// Errors of the log.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LogError {
    #[error("log I/O error during {op}: {source}")]
    Io {
        op: &'static str,
        #[source]
        source: io::Error,
    },
    /// A previous write or sync failed; the log accepts nothing more.
    #[error("the log failed earlier and is read-only: {0}")]
    Failed(String),
    #[error("invalid record: {0}")]
    Codec(#[from] CodecError),
}

fn io_err(op: &'static str) -> impl FnOnce(io::Error) -> LogError {
    move |source| LogError::Io { op, source }
}

/// The file name of segment `seq`.
pub fn segment_name(seq: u64) -> String {
    format!("wal-{seq:020}.log")
}

fn spare_name(n: u64) -> String {
    format!("wal-spare-{n:020}.log")
}

/// The sequence number of a segment file's name (`wal-<20 digits>.log`); `None` for any other
/// file, spares included.
pub fn parse_segment(name: &str) -> Option<u64> {
    let digits = name.strip_prefix("wal-")?.strip_suffix(".log")?;
    (digits.len() == 20 && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| digits.parse().ok())
        .flatten()
}

/// The `SegmentStart` record that begins segment `seq`, created `len` bytes long.
fn segment_header(seq: u64, len: u64) -> Vec<u8> {
    let mut payload = [0u8; 16];
    payload[..8].copy_from_slice(&seq.to_le_bytes());
    payload[8..].copy_from_slice(&len.to_le_bytes());
    let mut out = Vec::with_capacity(SEGMENT_HEADER_BYTES);
    encode(RecordKind::SegmentStart, 0, &payload, &mut out)
        .expect("a 16-byte payload at timestamp 0 always encodes");
    out
}

/// Bytes of a segment's `SegmentStart` record (header and payload).
pub const SEGMENT_HEADER_BYTES: usize = RECORD_HEADER_BYTES + 16;

/// Creates segment `seq` (`len` bytes, zeroed) with its `SegmentStart` record, and makes both
/// the file and its name durable. Recovery relies on every segment it must read starting so.
pub fn create_segment(storage: &dyn Storage, seq: u64, len: u64) -> Result<(), LogError> {
    let name = segment_name(seq);
    let file = storage.create(&name, len).map_err(io_err("create segment"))?;
    let len = file.len().map_err(io_err("segment length"))?;
    file.write_at(0, &segment_header(seq, len)).map_err(io_err("write segment header"))?;
    file.sync().map_err(io_err("sync segment"))?;
    storage.sync_dir().map_err(io_err("sync directory"))
}

fn is_spare(name: &str) -> bool {
    name.starts_with("wal-spare-") && name.ends_with(".log")
}

/// Log options.
#[derive(Clone, Copy, Debug)]
pub struct LogOptions {
    /// Size of the largest preallocated segment (the first is smaller: `first_segment_bytes`).
    pub segment_bytes: u64,
    /// Most group-commit syncs running at once (`group::SYNC_FLIGHTS_DEFAULT`).
    pub sync_flights: usize,
}

impl Default for LogOptions {
    fn default() -> Self {
        LogOptions { segment_bytes: SEGMENT_BYTES_DEFAULT, sync_flights: SYNC_FLIGHTS_DEFAULT }
    }
}

struct Segment {
    seq: u64,
    file: Box<dyn StorageFile>,
    len: u64,
}

/// A live segment's bookkeeping (for recycling).
#[derive(Clone, Copy, Debug)]
struct SegmentInfo {
    seq: u64,
    max_ts: u64,
}

struct AppendState {
    current: Arc<Segment>,
    offset: u64,
    /// Full segments not yet synced since they filled.
    unsynced_full: Vec<Arc<Segment>>,
    /// Every segment file in the log, oldest first (the last is `current`).
    segments: Vec<SegmentInfo>,
    spares: Vec<String>,
    next_spare: u64,
    bytes_appended: u64,
    /// Bytes written to prepare segment files: zero-filling new segments and spares, and
    /// zeroing recycled ones (`LogStats::bytes_prepared`).
    bytes_prepared: u64,
    failed: Option<String>,
    /// Where appends began when the log was opened (segment, offset).
    opened_at: (u64, u64),
}

/// Log counters.
#[derive(Clone, Copy, Debug, Default)]
pub struct LogStats {
    pub bytes_appended: u64,
    /// Bytes written since open to prepare segment files rather than to hold records: the
    /// zero-fill of each new segment or spare (its whole length: files are preallocated by
    /// writing, `storage.rs`) and the pages rewritten to zero a recycled segment (`zero`).
    pub bytes_prepared: u64,
    pub segments: u64,
    pub written_ts: u64,
    pub durable_ts: u64,
    pub group: GroupStats,
}

/// Where appends continue after recovery.
#[derive(Clone, Debug)]
pub enum AppendFrom {
    /// A new segment `seq` (after a reset, or an empty directory).
    Fresh { seq: u64 },
    /// The valid end of the recovered log.
    End(LogEnd),
}

/// The end of the valid log.
#[derive(Clone, Debug)]
pub struct LogEnd {
    pub seq: u64,
    pub offset: u64,
    /// Every segment, oldest first, with the largest timestamp it holds.
    pub segments: Vec<(u64, u64)>,
}

/// The write side of the log.
pub struct Log {
    storage: Arc<dyn Storage>,
    options: LogOptions,
    append: PlMutex<AppendState>,
    group: GroupCommit,
    /// `storage.sync_page_bytes()`: pad to this boundary before each sync.
    pad_page: Option<u64>,
}

impl fmt::Debug for Log {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Log").field("stats", &self.stats()).finish()
    }
}

impl Log {
    /// Opens the log for appends; everything at or below `ts` is already durable.
    pub fn open(
        storage: Arc<dyn Storage>,
        options: LogOptions,
        from: AppendFrom,
        ts: u64,
    ) -> Result<Log, LogError> {
        let names = storage.list().map_err(io_err("list"))?;
        let spares: Vec<String> = names.iter().filter(|n| is_spare(n)).cloned().collect();
        let next_spare = spares
            .iter()
            .filter_map(|n| n.strip_prefix("wal-spare-")?.strip_suffix(".log")?.parse::<u64>().ok())
            .max()
            .map_or(0, |n| n + 1);
        let (current, offset, segments) = match from {
            AppendFrom::Fresh { seq } => {
                create_segment(&*storage, seq, first_segment_bytes(options.segment_bytes))?;
                let file = storage.open(&segment_name(seq)).map_err(io_err("open segment"))?;
                let len = file.len().map_err(io_err("segment length"))?;
                let seg = Segment { seq, file, len };
                (seg, SEGMENT_HEADER_BYTES as u64, vec![SegmentInfo { seq, max_ts: 0 }])
            }
            AppendFrom::End(end) => {
                let file = storage.open(&segment_name(end.seq)).map_err(io_err("open segment"))?;
                let len = file.len().map_err(io_err("segment length"))?;
                let segments =
                    end.segments.iter().map(|&(seq, max_ts)| SegmentInfo { seq, max_ts }).collect();
                (Segment { seq: end.seq, file, len }, end.offset, segments)
            }
        };
        let opened_at = (current.seq, offset);
        let append = AppendState {
            current: Arc::new(current),
            offset,
            unsynced_full: Vec::new(),
            segments,
            spares,
            next_spare,
            bytes_appended: 0,
            bytes_prepared: 0,
            failed: None,
            opened_at,
        };
        let pad_page = storage.sync_page_bytes().filter(|p| *p > RECORD_HEADER_BYTES as u64);
        Ok(Log {
            storage,
            options,
            append: PlMutex::new(append),
            group: GroupCommit::with_flights(ts, options.sync_flights),
            pad_page,
        })
    }

    /// Appends one sealed record of timestamp `ts`. Each timestamp exactly once.
    pub fn append(&self, ts: u64, record: &[u8]) -> Result<(), LogError> {
        let mut a = self.append.lock();
        if let Some(reason) = &a.failed {
            return Err(LogError::Failed(reason.clone()));
        }
        let len = record.len() as u64;
        let result = (|| {
            if a.offset + len > a.current.len {
                self.rotate(&mut a, len)?;
            }
            a.current.file.write_at(a.offset, record).map_err(io_err("append"))
        })();
        if let Err(e) = result {
            let reason = e.to_string();
            a.failed = Some(reason.clone());
            drop(a);
            self.group.fail(reason);
            return Err(e);
        }
        a.offset += len;
        a.bytes_appended += len;
        if let Some(last) = a.segments.last_mut() {
            last.max_ts = last.max_ts.max(ts);
        }
        drop(a);
        self.group.written(ts);
        Ok(())
    }

    fn rotate(&self, a: &mut AppendState, record_len: u64) -> Result<(), LogError> {
        let want = next_segment_bytes(a.current.len, self.options.segment_bytes)
            .max(record_len + SEGMENT_HEADER_BYTES as u64);
        self.rotate_to(a, want, true)
    }

    /// Starts segment `current + 1`, `want` bytes long (from a spare when `use_spare` and one
    /// is large enough), and writes its header.
    fn rotate_to(&self, a: &mut AppendState, want: u64, use_spare: bool) -> Result<(), LogError> {
        let seq = a.current.seq + 1;
        let name = segment_name(seq);
        let mut spare = None;
        if let Some(name) = if use_spare { a.spares.pop() } else { None } {
            let len =
                self.storage.open(&name).and_then(|f| f.len()).map_err(io_err("spare length"))?;
            if len >= want {
                spare = Some(name);
            } else {
                // A recycled segment from when segments were smaller.
                self.storage.remove(&name).map_err(io_err("remove small spare"))?;
            }
        }
        let file = match spare {
            Some(spare) => {
                self.storage.rename(&spare, &name).map_err(io_err("rename spare"))?;
                self.storage.open(&name).map_err(io_err("open segment"))?
            }
            None => {
                let file = self.storage.create(&name, want).map_err(io_err("create segment"))?;
                a.bytes_prepared += want;
                file
            }
        };
        // The new name must be durable before any record in it is acknowledged.
        self.storage.sync_dir().map_err(io_err("sync directory"))?;
        let len = file.len().map_err(io_err("segment length"))?;
        // Made durable by the next sync, with the first records; a crash before it leaves this
        // (newest) segment all zero, which recovery accepts as a crash artifact.
        file.write_at(0, &segment_header(seq, len)).map_err(io_err("write segment header"))?;
        let old = std::mem::replace(&mut a.current, Arc::new(Segment { seq, file, len }));
        a.unsynced_full.push(old);
        a.offset = SEGMENT_HEADER_BYTES as u64;
        a.segments.push(SegmentInfo { seq, max_ts: 0 });
        Ok(())
    }

    /// Makes everything appended so far durable (the group-commit leader's flush).
    fn flush(&self) -> Result<(), String> {
        let (full, current) = {
            let mut a = self.append.lock();
            if let Some(page) = self.pad_page {
                self.pad_to_page(&mut a, page).map_err(|e| e.to_string())?;
            }
            (a.unsynced_full.clone(), a.current.clone())
        };
        for seg in full.iter().chain(std::iter::once(&current)) {
            seg.file.sync().map_err(|e| format!("sync of segment {}: {e}", seg.seq))?;
        }
        // Full segments leave the list only once a sync of them has completed, so a sync that
        // overlaps this one (group commit runs several) never skips a segment still unsynced.
        if !full.is_empty() {
            let mut a = self.append.lock();
            a.unsynced_full.retain(|s| !full.iter().any(|f| Arc::ptr_eq(f, s)));
        }
        Ok(())
    }

    /// Fills the current page with a padding record, so the first append after the coming
    /// sync starts on a fresh page (`Storage::sync_page_bytes`). A gap too small for a record
    /// header takes the next page too. Nothing to do at a page boundary, or where the padding
    /// would not fit in the segment (the next append rotates instead).
    fn pad_to_page(&self, a: &mut AppendState, page: u64) -> Result<(), LogError> {
        if a.failed.is_some() || a.offset.is_multiple_of(page) {
            return Ok(());
        }
        let mut gap = page - a.offset % page;
        if gap < RECORD_HEADER_BYTES as u64 {
            gap += page;
        }
        if a.offset + gap > a.current.len {
            return Ok(());
        }
        let mut record = Vec::with_capacity(gap as usize);
        let ts = self.group.written_ts().max(1);
        encode(
            RecordKind::Padding,
            ts,
            &vec![0u8; gap as usize - RECORD_HEADER_BYTES],
            &mut record,
        )?;
        if let Err(e) = a.current.file.write_at(a.offset, &record) {
            let reason = format!("log padding: {e}");
            a.failed = Some(reason.clone());
            return Err(LogError::Failed(reason));
        }
        a.offset += gap;
        a.bytes_appended += gap;
        Ok(())
    }

    /// Waits until the commit at `ts` may be acknowledged under `durability`.
    pub fn wait(&self, ts: u64, durability: Durability) -> Result<(), LogError> {
        let result = match durability {
            Durability::None => self.group.failed().map_or(Ok(()), Err),
            Durability::Buffered => self.group.wait_written(ts),
            Durability::Sync => self.group.wait_durable(ts, &|| self.flush()),
        };
        result.map_err(|Failed(reason)| {
            // The append lock's copy makes later appends fail fast.
            let mut a = self.append.lock();
            if a.failed.is_none() {
                a.failed = Some(reason.clone());
            }
            LogError::Failed(reason)
        })
    }

    /// Every timestamp up to this one is durable (what a commit record states it knew:
    /// `CommitBuilder::finish_claiming`).
    pub fn durable_ts(&self) -> u64 {
        self.group.durable_ts()
    }

    /// For a clean close, after `sync_all`: appends a `Close` record stamped with the durable
    /// timestamp and syncs it, so recovery can tell a damaged last commit from a torn one.
    /// Nothing is written when nothing was logged, nothing was written since the open, or the
    /// log failed (the marker is evidence,
    /// not data: its absence only weakens what recovery and `strata check` can prove). A full
    /// segment rotates as for an append.
    pub fn close_marker(&self) -> Result<(), LogError> {
        let ts = self.group.durable_ts();
        if ts == 0 || self.group.written_ts() != ts {
            return Ok(());
        }
        let mut a = self.append.lock();
        if a.failed.is_some() {
            return Ok(());
        }
        if (a.current.seq, a.offset) == a.opened_at {
            // Nothing was written since the open: the log is as the open found and accepted
            // it, and says what it said then. (A marker would cost a sync: ~15 ms on a
            // read-only session's close.)
            return Ok(());
        }
        let mut record = Vec::with_capacity(RECORD_HEADER_BYTES);
        encode(RecordKind::Close, ts, &[], &mut record)?;
        if a.offset + record.len() as u64 > a.current.len {
            self.rotate(&mut a, record.len() as u64)?;
        }
        a.current.file.write_at(a.offset, &record).map_err(io_err("write close marker"))?;
        a.offset += record.len() as u64;
        a.bytes_appended += record.len() as u64;
        a.current.file.sync().map_err(io_err("sync close marker"))
    }

    /// Starts a new segment of the first size now (never a spare), makes everything before it
    /// and its header durable, and returns its sequence number. For a checkpoint at close: the
    /// log after that checkpoint then starts in a small file, so the next open reads little
    /// (recovery reads the whole segment the checkpoint names, to its end).
    pub fn start_small_segment(&self) -> Result<u64, LogError> {
        self.sync_all()?;
        let mut a = self.append.lock();
        if let Some(reason) = &a.failed {
            return Err(LogError::Failed(reason.clone()));
        }
        let want = first_segment_bytes(self.options.segment_bytes);
        let result = self.rotate_to(&mut a, want, false).and_then(|()| {
            // The segments before it (records appended since `sync_all` included), so the
            // checkpoint that follows can retire them.
            for old in a.unsynced_full.drain(..) {
                old.file.sync().map_err(io_err("sync segment"))?;
            }
            a.current.file.sync().map_err(io_err("sync segment header"))?;
            Ok(a.current.seq)
        });
        if let Err(e) = &result {
            let reason = e.to_string();
            a.failed = Some(reason.clone());
            drop(a);
            self.group.fail(reason);
        }
        result
    }

    /// Removes every spare segment (at close: a closed database keeps no preallocated files;
    /// the next session makes a spare when its segment is half full).
    pub fn remove_spares(&self) -> Result<usize, LogError> {
        let spares = std::mem::take(&mut self.append.lock().spares);
        for name in &spares {
            self.storage.remove(name).map_err(io_err("remove spare"))?;
        }
        if !spares.is_empty() {
            self.storage.sync_dir().map_err(io_err("sync directory"))?;
        }
        Ok(spares.len())
    }

    /// Whether the current segment is no longer than a first segment.
    pub fn current_is_small(&self) -> bool {
        self.append.lock().current.len <= first_segment_bytes(self.options.segment_bytes)
    }

    /// Syncs everything written so far (close, checkpoints).
    /// The segment appends go to now.
    pub fn current_seq(&self) -> u64 {
        self.append.lock().current.seq
    }

    pub fn sync_all(&self) -> Result<(), LogError> {
        let ts = self.group.written_ts();
        self.wait(ts, Durability::Sync)
    }

    /// Marks the log failed (sticky): for a caller that cannot log a commit it already made
    /// visible in memory.
    pub fn fail(&self, reason: String) {
        {
            let mut a = self.append.lock();
            if a.failed.is_none() {
                a.failed = Some(reason.clone());
            }
        }
        self.group.fail(reason);
    }

    /// Runs `hook` with the reason when the log fails (a write, a sync or a `fail` call), once;
    /// at once if it already has. The hook runs on the failing thread with the log's sync lock
    /// held: it must not call back into the log. Only the first hook set is kept.
    pub fn on_failure(&self, hook: impl Fn(&str) + Send + Sync + 'static) {
        self.group.on_failure(crate::group::FailureHook(Box::new(hook)));
    }

    /// The sticky failure, if any.
    pub fn failure(&self) -> Option<String> {
        self.group.failed().map(|f| f.0)
    }

    /// Creates a zeroed spare segment, the size the next segment will have, if none is ready
    /// and the current segment is more than half full (call outside the commit path: it
    /// allocates the file). A database that writes little never allocates one.
    pub fn ensure_spare(&self) -> Result<(), LogError> {
        let (n, len) = {
            let mut a = self.append.lock();
            if a.spares.len() >= SPARES_MAX || a.offset <= a.current.len / 2 {
                return Ok(());
            }
            a.next_spare += 1;
            (a.next_spare - 1, next_segment_bytes(a.current.len, self.options.segment_bytes))
        };
        let name = spare_name(n);
        self.storage.create(&name, len).map_err(io_err("create spare"))?;
        self.storage.sync_dir().map_err(io_err("sync directory"))?;
        let mut a = self.append.lock();
        a.spares.push(name);
        a.bytes_prepared += len;
        Ok(())
    }

    /// After a checkpoint at `ts` is durable: segments (not the current one) whose records are
    /// all at or below `ts` are no longer needed. Up to `SPARES_MAX` are zeroed and kept as
    /// spares, the rest removed. Returns how many segments were retired.
    ///
    /// Segments at or after `keep_from` stay whatever they hold: the checkpoint names that
    /// segment as where the log continues, and recovery requires it.
    pub fn recycle(&self, ts: u64, keep_from: u64) -> Result<usize, LogError> {
        let (retire, mut spares, spare_len) = {
            let mut a = self.append.lock();
            let current = a.current.seq;
            let spare_len = next_segment_bytes(a.current.len, self.options.segment_bytes);
            let unsynced: Vec<u64> = a.unsynced_full.iter().map(|s| s.seq).collect();
            let (retire, keep): (Vec<SegmentInfo>, Vec<SegmentInfo>) =
                a.segments.iter().partition(|s| {
                    s.max_ts <= ts
                        && s.seq < keep_from
                        && s.seq != current
                        && !unsynced.contains(&s.seq)
                });
            a.segments = keep;
            (retire, a.spares.len(), spare_len)
        };
        for seg in &retire {
            let name = segment_name(seg.seq);
            // Kept as the spare only if it is as large as the next segment must be.
            let big_enough =
                self.storage.open(&name).and_then(|f| f.len()).map_err(io_err("segment length"))?
                    >= spare_len;
            if spares < SPARES_MAX && big_enough {
                let spare = {
                    let mut a = self.append.lock();
                    a.next_spare += 1;
                    spare_name(a.next_spare - 1)
                };
                let zeroed = self.zero(&name)?;
                self.storage.rename(&name, &spare).map_err(io_err("rename to spare"))?;
                let mut a = self.append.lock();
                a.spares.push(spare);
                a.bytes_prepared += zeroed;
                spares += 1;
            } else {
                self.storage.remove(&name).map_err(io_err("remove segment"))?;
            }
        }
        if !retire.is_empty() {
            self.storage.sync_dir().map_err(io_err("sync directory"))?;
        }
        Ok(retire.len())
    }

    /// Makes a retired segment read as zeros, writing only the 4 KiB pages that are not zero
    /// already (a segment is mostly the zeros it was created with: rewriting all of it cost
    /// its whole size in writes per checkpoint), then syncs it. Returns the bytes written.
    fn zero(&self, name: &str) -> Result<u64, LogError> {
        let file = self.storage.open(name).map_err(io_err("open segment"))?;
        let len = file.len().map_err(io_err("segment length"))?;
        let zeros = vec![0u8; ZERO_CHUNK_BYTES];
        let mut buf = vec![0u8; ZERO_CHUNK_BYTES];
        let (mut at, mut written) = (0, 0);
        while at < len {
            let n = (len - at).min(ZERO_CHUNK_BYTES as u64) as usize;
            let got = file.read_at(at, &mut buf[..n]).map_err(io_err("read segment"))?;
            // Bytes the read did not return are treated as not zero (rewritten).
            buf[got..n].fill(1);
            let mut page = 0;
            while page < n {
                let end = (page + ZERO_PAGE_BYTES).min(n);
                if all_zero(&buf[page..end]) {
                    page = end;
                    continue;
                }
                // A run of pages that are not all zero: one write.
                let mut run_end = end;
                while run_end < n {
                    let next = (run_end + ZERO_PAGE_BYTES).min(n);
                    if all_zero(&buf[run_end..next]) {
                        break;
                    }
                    run_end = next;
                }
                file.write_at(at + page as u64, &zeros[page..run_end])
                    .map_err(io_err("zero segment"))?;
                written += (run_end - page) as u64;
                page = run_end;
            }
            at += n as u64;
        }
        file.sync().map_err(io_err("sync segment"))?;
        Ok(written)
    }

    pub fn stats(&self) -> LogStats {
        let (bytes_appended, bytes_prepared, segments) = {
            let a = self.append.lock();
            (a.bytes_appended, a.bytes_prepared, a.segments.len() as u64)
        };
        LogStats {
            bytes_appended,
            bytes_prepared,
            segments,
            written_ts: self.group.written_ts(),
            durable_ts: self.group.durable_ts(),
            group: self.group.stats(),
        }
    }
}

/// A record read back by recovery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogRecord {
    pub kind: RecordKind,
    pub ts: u64,
    pub payload: Vec<u8>,
    /// Every timestamp up to this one was durable when the record was written (`RecordRef`).
    pub durable_claim: Option<u64>,
    /// Segment and offset (for reports).
    pub seq: u64,
    pub offset: u64,
}

/// Why the valid log ended before the last byte of the last segment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogStop {
    pub segment: String,
    /// The segment's sequence number and the offset of the bad record in it.
    pub seq: u64,
    pub offset: u64,
    pub error: CodecError,
}

/// Everything recovery found in the log.
#[derive(Clone, Debug)]
pub struct LogScan {
    /// Valid records in log order, up to the first bad one.
    pub records: Vec<LogRecord>,
    /// The first bad record, if the log did not end cleanly.
    pub stop: Option<LogStop>,
    /// The end of the valid log, if there is a segment; `None` for an empty directory.
    pub end: Option<LogEnd>,
    /// Whether every byte after the valid end (in every segment at or after it) is zero, so
    /// appends can continue there.
    pub tail_clean: bool,
    /// Segment files found, oldest first.
    pub segment_seqs: Vec<u64>,
    /// How each segment file begins, oldest first (same order as `segment_seqs`).
    pub heads: Vec<SegmentHead>,
    pub bytes_read: u64,
}

/// How a segment file begins, for the checks that tell a damaged log from a crashed one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentHead {
    pub seq: u64,
    /// The file's length now.
    pub file_len: u64,
    /// Its `SegmentStart` record: the sequence number and length it was created with.
    pub header: Option<(u64, u64)>,
    /// Starts with a valid record of another kind: written before segments had headers.
    pub legacy: bool,
    /// Every byte is zero.
    pub all_zero: bool,
}

/// Reads every segment in order. Never panics on bad bytes: stops at the first torn or
/// corrupt record and says where.
pub fn scan_log(storage: &dyn Storage) -> Result<LogScan, LogError> {
    let mut seqs: Vec<u64> =
        storage.list().map_err(io_err("list"))?.iter().filter_map(|n| parse_segment(n)).collect();
    seqs.sort_unstable();
    let mut out = LogScan {
        records: Vec::new(),
        stop: None,
        end: None,
        tail_clean: true,
        segment_seqs: seqs.clone(),
        heads: Vec::new(),
        bytes_read: 0,
    };
    let mut segments = Vec::new();
    for &seq in &seqs {
        let name = segment_name(seq);
        let file = storage.open(&name).map_err(io_err("open segment"))?;
        let len = file.len().map_err(io_err("segment length"))?;
        let mut buf = vec![0u8; len as usize];
        let n = file.read_at(0, &mut buf).map_err(io_err("read segment"))?;
        buf.truncate(n);
        out.bytes_read += n as u64;
        out.heads.push(segment_head(seq, len, &buf));
        if out.stop.is_some() {
            // Past a bad record nothing counts; appends must not continue before it.
            out.tail_clean &= all_zero(&buf);
            continue;
        }
        let mut offset = 0;
        let mut max_ts = 0;
        loop {
            match RecordRef::parse(&buf, offset) {
                // A segment's header describes the file (`heads`), not the log's contents.
                Ok(Some((r, next))) if r.kind == RecordKind::SegmentStart && offset == 0 => {
                    offset = next;
                }
                Ok(Some((r, next))) => {
                    out.records.push(LogRecord {
                        kind: r.kind,
                        ts: r.ts,
                        payload: r.payload.to_vec(),
                        durable_claim: r.durable_claim,
                        seq,
                        offset: offset as u64,
                    });
                    max_ts = max_ts.max(r.ts);
                    offset = next;
                }
                Ok(None) => break,
                Err(error) => {
                    out.stop =
                        Some(LogStop { segment: name.clone(), seq, offset: offset as u64, error });
                    out.tail_clean = false;
                    break;
                }
            }
        }
        if out.stop.is_none() {
            out.tail_clean &= all_zero(&buf[offset.min(buf.len())..]);
        }
        segments.push((seq, max_ts));
        if out.stop.is_none() {
            out.end = Some(LogEnd { seq, offset: offset as u64, segments: segments.clone() });
        }
    }
    Ok(out)
}

/// Whether every byte is zero, a page at a time (compared as slices: vectorised, where a
/// byte-at-a-time loop was a fifth of an open's time).
fn all_zero(bytes: &[u8]) -> bool {
    const ZEROS: [u8; 4096] = [0; 4096];
    bytes.chunks(ZEROS.len()).all(|c| c == &ZEROS[..c.len()])
}

fn segment_head(seq: u64, file_len: u64, buf: &[u8]) -> SegmentHead {
    let (mut header, mut legacy) = (None, false);
    if let Ok(Some((r, _))) = RecordRef::parse(buf, 0) {
        match (r.kind, <[u8; 16]>::try_from(r.payload)) {
            (RecordKind::SegmentStart, Ok(p)) => {
                let word = |i: usize| u64::from_le_bytes(p[i..i + 8].try_into().expect("8 bytes"));
                header = Some((word(0), word(8)));
            }
            (RecordKind::SegmentStart, Err(_)) => {}
            _ => legacy = true,
        }
    }
    SegmentHead { seq, file_len, header, legacy, all_zero: all_zero(buf) }
}

/// A verified record that lies past the end of the valid log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StrayRecord {
    pub seq: u64,
    pub offset: u64,
    pub kind: RecordKind,
    pub ts: u64,
    /// What it states was durable when it was written (`RecordRef::durable_claim`).
    pub durable_claim: Option<u64>,
    /// Written in format 1, which states nothing about durability.
    pub format_1: bool,
}

/// Searches the bytes past the end of the valid log (the first bad record, or a zero header
/// followed by non-zero bytes) for records that still verify, at every byte offset. Recovery
/// ignores them. A crash mid-write leaves none; a power loss that kept a later page but not an
/// earlier one, a lost write, or a flipped bit in the middle of the log does.
pub fn records_past_end(
    storage: &dyn Storage,
    scan: &LogScan,
) -> Result<Vec<StrayRecord>, LogError> {
    if scan.tail_clean {
        return Ok(Vec::new());
    }
    let (end_seq, start) = match (&scan.stop, &scan.end) {
        (Some(stop), _) => (stop.seq, stop.offset + 1),
        (None, Some(end)) => (end.seq, end.offset),
        (None, None) => return Ok(Vec::new()),
    };
    let mut found = Vec::new();
    for &seq in scan.segment_seqs.iter().filter(|s| **s >= end_seq) {
        let file = storage.open(&segment_name(seq)).map_err(io_err("open segment"))?;
        let mut buf = vec![0u8; file.len().map_err(io_err("segment length"))? as usize];
        let n = file.read_at(0, &mut buf).map_err(io_err("read segment"))?;
        buf.truncate(n);
        let mut offset = if seq == end_seq { start as usize } else { 0 };
        while offset < buf.len() {
            match RecordRef::parse(&buf, offset) {
                Ok(Some((r, next))) if r.kind == RecordKind::SegmentStart => offset = next,
                Ok(Some((r, next))) => {
                    found.push(StrayRecord {
                        seq,
                        offset: offset as u64,
                        kind: r.kind,
                        ts: r.ts,
                        durable_claim: r.durable_claim,
                        format_1: buf.get(offset + 5) == Some(&crate::record::FORMAT_VERSION_1),
                    });
                    offset = next;
                }
                _ => offset += 1,
            }
        }
    }
    Ok(found)
}

/// Removes every segment file older than segment `seq` (a reset, once the checkpoint naming
/// `seq` is durable).
pub fn remove_segments_before(storage: &dyn Storage, seq: u64) -> Result<(), LogError> {
    for name in storage.list().map_err(io_err("list"))? {
        if parse_segment(&name).is_some_and(|s| s < seq) {
            storage.remove(&name).map_err(io_err("remove segment"))?;
        }
    }
    storage.sync_dir().map_err(io_err("sync directory"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::encode;
    use crate::storage::{CrashMode, Faults, FaultyStorage};

    fn rec(ts: u64, len: usize) -> Vec<u8> {
        let mut out = Vec::new();
        encode(RecordKind::Commit, ts, &vec![ts as u8; len], &mut out).unwrap();
        out
    }

    fn small() -> LogOptions {
        LogOptions { segment_bytes: 256, ..LogOptions::default() }
    }

    #[test]
    fn segments_start_small_and_double_up_to_the_largest() {
        let disk = FaultyStorage::new(Faults::default());
        let storage: Arc<dyn Storage> = Arc::new(disk.clone());
        let opts = LogOptions { segment_bytes: 1 << 20, ..LogOptions::default() };
        let log = Log::open(storage.clone(), opts, AppendFrom::Fresh { seq: 1 }, 0).unwrap();
        let mut ts = 0;
        while log.current_seq() < 5 {
            ts += 1;
            log.append(ts, &rec(ts, 8000)).unwrap();
            if ts % 20 == 0 {
                log.ensure_spare().unwrap(); // as the background thread does
            }
        }
        let sizes: Vec<u64> =
            (1..=5).map(|seq| storage.open(&segment_name(seq)).unwrap().len().unwrap()).collect();
        assert_eq!(sizes, [256 << 10, 512 << 10, 1 << 20, 1 << 20, 1 << 20]);
        // Every file made after the open (segments 2 to 5, and a spare not used yet) was
        // zero-filled in full, and counted as prepared.
        let spares: u64 = storage
            .list()
            .unwrap()
            .iter()
            .filter(|n| is_spare(n))
            .map(|n| storage.open(n).unwrap().len().unwrap())
            .sum();
        assert_eq!(log.stats().bytes_prepared, sizes[1..].iter().sum::<u64>() + spares);
        // A spare recycled from the small first segment is not used for a full-size one.
        log.wait(ts, Durability::Sync).unwrap();
        assert!(log.recycle(ts / 2, log.current_seq()).unwrap() > 0);
        while log.current_seq() < 7 {
            ts += 1;
            log.append(ts, &rec(ts, 8000)).unwrap();
        }
        let len = storage.open(&segment_name(7)).unwrap().len().unwrap();
        assert_eq!(len, 1 << 20);
    }

    #[test]
    fn appends_rotate_and_read_back_in_order() {
        let disk = FaultyStorage::new(Faults::default());
        let storage: Arc<dyn Storage> = Arc::new(disk.clone());
        let log = Log::open(storage.clone(), small(), AppendFrom::Fresh { seq: 1 }, 0).unwrap();
        for ts in 1..=20 {
            log.append(ts, &rec(ts, 30)).unwrap();
        }
        log.wait(20, Durability::Sync).unwrap();
        let scan = scan_log(&disk.crash(CrashMode::LoseUnsynced)).unwrap();
        assert_eq!(
            scan.records.iter().map(|r| r.ts).collect::<Vec<_>>(),
            (1..=20).collect::<Vec<_>>()
        );
        assert!(scan.stop.is_none() && scan.tail_clean);
        assert!(scan.segment_seqs.len() > 3, "rotated: {:?}", scan.segment_seqs);
        let big = rec(21, 1000);
        log.append(21, &big).unwrap();
        log.wait(21, Durability::Sync).unwrap();
        let scan = scan_log(&disk.crash(CrashMode::LoseUnsynced)).unwrap();
        assert_eq!(scan.records.last().unwrap().payload.len(), 1000, "an oversized segment");
    }

    #[test]
    fn recycling_keeps_a_spare_and_rotation_uses_it() {
        let disk = FaultyStorage::new(Faults::default());
        let storage: Arc<dyn Storage> = Arc::new(disk.clone());
        let log = Log::open(storage.clone(), small(), AppendFrom::Fresh { seq: 1 }, 0).unwrap();
        for ts in 1..=20 {
            log.append(ts, &rec(ts, 30)).unwrap();
        }
        log.sync_all().unwrap();
        let before = log.stats().segments;
        let retired = log.recycle(20, log.current_seq()).unwrap();
        assert_eq!(retired as u64, before - 1, "all but the current segment");
        let names = disk.list().unwrap();
        assert_eq!(names.iter().filter(|n| is_spare(n)).count(), SPARES_MAX);
        // Zeroing rewrote only the pages that held records, and synced them: the spare reads
        // as zeros even after a crash that loses unsynced writes.
        let crashed = disk.crash(CrashMode::LoseUnsynced);
        for spare in names.iter().filter(|n| is_spare(n)) {
            let file = crashed.open(spare).unwrap();
            let mut bytes = vec![1u8; file.len().unwrap() as usize];
            assert_eq!(file.read_at(0, &mut bytes).unwrap(), bytes.len());
            assert!(bytes.iter().all(|b| *b == 0), "{spare} is not all zeros");
        }
        for ts in 21..=30 {
            log.append(ts, &rec(ts, 30)).unwrap();
        }
        log.sync_all().unwrap();
        let scan = scan_log(&disk.crash(CrashMode::LoseUnsynced)).unwrap();
        let ts: Vec<u64> = scan.records.iter().map(|r| r.ts).filter(|t| *t > 20).collect();
        assert_eq!(
            ts,
            (21..=30).collect::<Vec<_>>(),
            "the recycled spare reads as a clean segment"
        );
        assert!(scan.stop.is_none());
    }

    #[test]
    fn a_recycled_segment_of_many_pages_reads_as_zeros() {
        let disk = FaultyStorage::new(Faults::default());
        let storage: Arc<dyn Storage> = Arc::new(disk.clone());
        let opts = LogOptions { segment_bytes: 64 << 10, ..LogOptions::default() };
        let log = Log::open(storage.clone(), opts, AppendFrom::Fresh { seq: 1 }, 0).unwrap();
        // Records over many pages of several segments (some records cross page boundaries).
        for ts in 1..=200 {
            log.append(ts, &rec(ts, 1000 + ts as usize)).unwrap();
        }
        log.sync_all().unwrap();
        let before = log.stats().bytes_prepared;
        assert!(log.recycle(200, log.current_seq()).unwrap() >= 2);
        // Zeroing the one segment kept as the spare rewrote whole pages of it, and was counted.
        let zeroed = log.stats().bytes_prepared - before;
        assert!(zeroed > 0 && zeroed <= 64 << 10 && zeroed.is_multiple_of(4096), "{zeroed} bytes");
        let crashed = disk.crash(CrashMode::LoseUnsynced);
        let spares: Vec<String> =
            crashed.list().unwrap().into_iter().filter(|n| is_spare(n)).collect();
        assert_eq!(spares.len(), SPARES_MAX);
        for spare in &spares {
            let file = crashed.open(spare).unwrap();
            let mut bytes = vec![1u8; file.len().unwrap() as usize];
            assert!(bytes.len() > 4 * 4096, "{} bytes", bytes.len());
            assert_eq!(file.read_at(0, &mut bytes).unwrap(), bytes.len());
            let first_bad = bytes.iter().position(|b| *b != 0);
            assert_eq!(first_bad, None, "{spare} is not all zeros");
        }
    }

    #[test]
    fn continuing_after_recovery_appends_at_the_valid_end() {
        let disk = FaultyStorage::new(Faults::default());
        let log =
            Log::open(Arc::new(disk.clone()), small(), AppendFrom::Fresh { seq: 1 }, 0).unwrap();
        for ts in 1..=5 {
            log.append(ts, &rec(ts, 30)).unwrap();
        }
        log.sync_all().unwrap();
        let after = disk.crash(CrashMode::LoseUnsynced);
        let scan = scan_log(&after).unwrap();
        let log =
            Log::open(Arc::new(after.clone()), small(), AppendFrom::End(scan.end.unwrap()), 5)
                .unwrap();
        for ts in 6..=12 {
            log.append(ts, &rec(ts, 30)).unwrap();
        }
        log.sync_all().unwrap();
        let scan = scan_log(&after.crash(CrashMode::LoseUnsynced)).unwrap();
        assert_eq!(
            scan.records.iter().map(|r| r.ts).collect::<Vec<_>>(),
            (1..=12).collect::<Vec<_>>()
        );
    }

    #[test]
    fn on_storage_that_asks_for_it_each_sync_pads_to_a_page_boundary() {
        let disk = FaultyStorage::new(Faults::default());
        disk.set_sync_page_bytes(Some(128));
        let log = Log::open(
            Arc::new(disk.clone()),
            LogOptions { segment_bytes: 1024, ..LogOptions::default() },
            AppendFrom::Fresh { seq: 1 },
            0,
        )
        .unwrap();
        for ts in 1..=12 {
            log.append(ts, &rec(ts, 30)).unwrap(); // 50 bytes each
            log.wait(ts, Durability::Sync).unwrap();
        }
        let scan = scan_log(&disk.crash(CrashMode::LoseUnsynced)).unwrap();
        assert!(scan.stop.is_none() && scan.tail_clean);
        let commits: Vec<&LogRecord> =
            scan.records.iter().filter(|r| r.kind == RecordKind::Commit).collect();
        assert_eq!(commits.iter().map(|r| r.ts).collect::<Vec<_>>(), (1..=12).collect::<Vec<_>>());
        for r in &commits {
            // (The first record of a segment follows its header, synced when it was created.)
            let first = r.offset == SEGMENT_HEADER_BYTES as u64;
            assert!(
                first || r.offset % 128 == 0,
                "after a sync, the next record starts a page: {r:?}"
            );
        }
        let pads = scan.records.iter().filter(|r| r.kind == RecordKind::Padding).count();
        assert!(pads >= 10, "{pads} padding records");
        assert!(scan
            .records
            .iter()
            .all(|r| matches!(r.kind, RecordKind::Commit | RecordKind::Padding)));
        // Appends continue at the valid end, after the last padding.
        let end = scan.end.unwrap();
        assert_eq!(end.offset % 128, 0);
    }

    #[test]
    fn records_past_a_flipped_bit_are_found_and_a_torn_tail_has_none() {
        let disk = FaultyStorage::new(Faults::default());
        let log =
            Log::open(Arc::new(disk.clone()), small(), AppendFrom::Fresh { seq: 1 }, 0).unwrap();
        for ts in 1..=12 {
            log.append(ts, &rec(ts, 30)).unwrap();
        }
        log.sync_all().unwrap();
        let clean = scan_log(&disk).unwrap();
        assert!(records_past_end(&disk, &clean).unwrap().is_empty());

        // A torn last record: only its first bytes exist.
        let torn = disk.crash(CrashMode::LoseUnsynced);
        let last = clean.records.last().unwrap();
        let name = segment_name(last.seq);
        let f = torn.open(&name).unwrap();
        f.write_at(last.offset + 10, &[0u8; 40]).unwrap();
        let scan = scan_log(&torn).unwrap();
        assert_eq!(scan.records.len(), 11);
        assert_eq!(scan.stop.as_ref().map(|s| (s.seq, s.offset)), Some((last.seq, last.offset)));
        assert!(records_past_end(&torn, &scan).unwrap().is_empty(), "a torn tail hides nothing");

        // A flipped bit in record 3: records 4.. still verify past the end of the valid log.
        let third = &clean.records[2];
        disk.flip_bit(&segment_name(third.seq), (third.offset + 25) * 8).unwrap();
        let scan = scan_log(&disk).unwrap();
        assert_eq!(scan.records.len(), 2);
        let stray = records_past_end(&disk, &scan).unwrap();
        assert_eq!(stray.iter().map(|r| r.ts).collect::<Vec<_>>(), (4..=12).collect::<Vec<_>>());
    }

    #[test]
    fn a_failed_sync_is_sticky_and_a_full_disk_fails_the_rotation() {
        let disk = FaultyStorage::new(Faults::default());
        let log =
            Log::open(Arc::new(disk.clone()), small(), AppendFrom::Fresh { seq: 1 }, 0).unwrap();
        log.append(1, &rec(1, 10)).unwrap();
        disk.set_faults(Faults { failing_syncs: 1, ..Faults::default() });
        assert!(matches!(log.wait(1, Durability::Sync), Err(LogError::Failed(_))));
        assert!(matches!(log.append(2, &rec(2, 10)), Err(LogError::Failed(_))), "sticky");
        assert!(log.failure().is_some());

        let full = FaultyStorage::new(Faults { capacity_bytes: Some(300), ..Faults::default() });
        let log = Log::open(Arc::new(full), small(), AppendFrom::Fresh { seq: 1 }, 0).unwrap();
        let mut err = None;
        for ts in 1..=20 {
            if let Err(e) = log.append(ts, &rec(ts, 30)) {
                err = Some(e);
                break;
            }
        }
        assert!(matches!(err, Some(LogError::Io { op: "create segment", .. })), "{err:?}");
        assert!(log.wait(1, Durability::Buffered).is_err(), "no acknowledgement after a failure");
    }
}
