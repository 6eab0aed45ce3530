//! Checkpoint files: a consistent snapshot of every row at one timestamp, written beside the log
//! so recovery replays only the log after it.
//!
//! Format: the log's record format (`record.rs`), all records stamped with the checkpoint's
//! timestamp: one `CheckpointBegin` (empty payload), any number of `CheckpointRows` (commit
//! payloads of puts, at most `CHUNK_BYTES` each), one `CheckpointEnd` (row count, u64 LE, then —
//! since segments have headers — the sequence number of the log segment where the log continues,
//! u64 LE: recovery requires that segment to exist and to start with its header, so a log deleted
//! or zeroed beside the checkpoint is damage, not an empty log). The timestamp may be 0 (the
//! empty checkpoint a new database starts with).
//! A file without its end record, or with any record that does not verify, is refused.
//!
//! Switching is atomic: write `checkpoint.tmp`, sync it, rename it over `checkpoint.ckpt`,
//! sync the directory. A crash at any point leaves either the old checkpoint or the new one.

use crate::log::LogError;
use crate::record::{decode_commit, encode, CodecError, CommitBuilder, RecordKind, RecordRef};
use crate::storage::Storage;
use std::io;

/// The current checkpoint.
pub const CHECKPOINT_FILE: &str = "checkpoint.ckpt";
/// A checkpoint being written (removed at open: never complete by definition).
pub const CHECKPOINT_TMP: &str = "checkpoint.tmp";
/// Payload bytes per rows record.
pub const CHUNK_BYTES: usize = 1 << 20;

/// Builds a checkpoint in memory, then writes it atomically.
#[derive(Debug)]
pub struct CheckpointWriter {
    ts: u64,
    out: Vec<u8>,
    chunk: CommitBuilder,
    rows: u64,
    log_seq: Option<u64>,
}

/// One row: table, key, value.
pub type Row = (u32, Vec<u8>, Vec<u8>);

/// A checkpoint read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub ts: u64,
    pub rows: Vec<Row>,
    pub bytes: u64,
    /// The log segment where the log continues after this checkpoint (`None` in checkpoints
    /// written before segments had headers).
    pub log_seq: Option<u64>,
}

impl CheckpointWriter {
    /// A checkpoint of the state at `ts` (0: an empty database).
    pub fn new(ts: u64) -> Result<Self, LogError> {
        let mut out = Vec::new();
        encode(RecordKind::CheckpointBegin, ts, &[], &mut out)?;
        Ok(CheckpointWriter { ts, out, chunk: CommitBuilder::new(), rows: 0, log_seq: None })
    }

    /// Records that the log continues in segment `seq` (which must exist, with its header
    /// durable, before the checkpoint is: recovery refuses a checkpoint whose segment is gone).
    pub fn log_continues_at(&mut self, seq: u64) {
        self.log_seq = Some(seq);
    }

    pub fn push(&mut self, table: u32, key: &[u8], value: &[u8]) -> Result<(), LogError> {
        self.chunk.push(table, key, Some(value));
        self.rows += 1;
        if self.chunk.payload_len() >= CHUNK_BYTES {
            self.flush_chunk()?;
        }
        Ok(())
    }

    fn flush_chunk(&mut self) -> Result<(), LogError> {
        let chunk = std::mem::take(&mut self.chunk);
        if chunk.count() > 0 {
            self.out.extend_from_slice(&chunk.finish(RecordKind::CheckpointRows, self.ts)?);
        }
        Ok(())
    }

    /// Writes, syncs and switches to the checkpoint. Returns its size in bytes.
    pub fn finish(mut self, storage: &dyn Storage) -> Result<u64, LogError> {
        self.flush_chunk()?;
        let mut end = self.rows.to_le_bytes().to_vec();
        if let Some(seq) = self.log_seq {
            end.extend_from_slice(&seq.to_le_bytes());
        }
        encode(RecordKind::CheckpointEnd, self.ts, &end, &mut self.out)?;
        let io = |op| move |source| LogError::Io { op, source };
        match storage.remove(CHECKPOINT_TMP) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(io("remove stale tmp")(e)),
            _ => {}
        }
        let file = storage
            .create(CHECKPOINT_TMP, self.out.len() as u64)
            .map_err(io("create checkpoint"))?;
        file.write_at(0, &self.out).map_err(io("write checkpoint"))?;
        file.sync().map_err(io("sync checkpoint"))?;
        drop(file);
        storage.rename(CHECKPOINT_TMP, CHECKPOINT_FILE).map_err(io("switch checkpoint"))?;
        storage.sync_dir().map_err(io("sync directory"))?;
        Ok(self.out.len() as u64)
    }
}

/// Why a checkpoint file cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CheckpointError {
    #[error("checkpoint I/O error: {0}")]
    Io(#[from] io::Error),
    #[error("checkpoint is corrupt: {0}")]
    Corrupt(String),
}

/// Reads the current checkpoint, if there is one. Never panics on bad bytes.
pub fn read_checkpoint(storage: &dyn Storage) -> Result<Option<Checkpoint>, CheckpointError> {
    let file = match storage.open(CHECKPOINT_FILE) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let mut buf = vec![0u8; file.len()? as usize];
    let n = file.read_at(0, &mut buf)?;
    buf.truncate(n);
    let corrupt = |m: String| CheckpointError::Corrupt(m);
    let mut offset = 0;
    let mut ts = None;
    let mut rows = Vec::new();
    loop {
        let (r, next) = match RecordRef::parse(&buf, offset) {
            Ok(Some(x)) => x,
            Ok(None) => {
                return Err(corrupt(format!("ends at byte {offset} without its end record")))
            }
            Err(e) => return Err(corrupt(e.to_string())),
        };
        match (ts, r.kind) {
            (None, RecordKind::CheckpointBegin) => ts = Some(r.ts),
            (None, _) => return Err(corrupt("does not start with a begin record".into())),
            (Some(t), _) if t != r.ts => {
                return Err(corrupt(format!("record at byte {offset} has timestamp {}", r.ts)))
            }
            (Some(_), RecordKind::CheckpointRows) => {
                for (table, key, value) in
                    decode_commit(r.payload).map_err(|e: CodecError| corrupt(e.to_string()))?
                {
                    let value = value.ok_or_else(|| corrupt("a delete in a checkpoint".into()))?;
                    rows.push((table, key, value));
                }
            }
            (Some(t), RecordKind::CheckpointEnd) => {
                let (count, log_seq) = match r.payload.len() {
                    8 => (&r.payload[..8], None),
                    16 => (&r.payload[..8], Some(&r.payload[8..])),
                    _ => {
                        return Err(corrupt(
                            "end record is not a u64 row count (and log segment)".into(),
                        ))
                    }
                };
                let word = |b: &[u8]| u64::from_le_bytes(b.try_into().expect("8 bytes"));
                let log_seq = log_seq.map(word);
                if word(count) != rows.len() as u64 {
                    return Err(corrupt("row count does not match".into()));
                }
                if buf[next..].iter().any(|b| *b != 0) {
                    return Err(corrupt(format!("bytes after the end record at {next}")));
                }
                return Ok(Some(Checkpoint { ts: t, rows, bytes: n as u64, log_seq }));
            }
            (Some(_), kind) => {
                return Err(corrupt(format!("unexpected {kind:?} record at byte {offset}")))
            }
        }
        offset = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{CrashMode, Faults, FaultyStorage};

    fn write(disk: &FaultyStorage, ts: u64, rows: u32) {
        let mut w = CheckpointWriter::new(ts).unwrap();
        for i in 0..rows {
            w.push(i % 3, &i.to_be_bytes(), &vec![i as u8; (i % 50) as usize]).unwrap();
        }
        w.finish(disk).unwrap();
    }

    #[test]
    fn round_trip_and_atomic_switch() {
        let disk = FaultyStorage::new(Faults::default());
        assert_eq!(read_checkpoint(&disk).unwrap(), None);
        write(&disk, 7, 100_000);
        let c = read_checkpoint(&disk.crash(CrashMode::LoseUnsynced)).unwrap().unwrap();
        assert_eq!((c.ts, c.rows.len()), (7, 100_000));
        assert_eq!(c.rows[5], (2, 5u32.to_be_bytes().to_vec(), vec![5; 5]));
        // A crash at every operation of the next checkpoint leaves the old or the new one.
        let ops_before = disk.ops();
        write(&disk, 9, 10);
        let ops = disk.ops() - ops_before;
        for n in 0..ops {
            let d = FaultyStorage::new(Faults::default());
            write(&d, 7, 100);
            d.set_faults(Faults { crash_after_ops: Some(d.ops() + n), ..Faults::default() });
            let mut w = CheckpointWriter::new(9).unwrap();
            w.push(0, b"k", b"v").unwrap();
            let _ = w.finish(&d);
            for mode in [CrashMode::LoseUnsynced, CrashMode::TearLast { bytes: 5 }] {
                let c = read_checkpoint(&d.crash(mode)).unwrap().unwrap();
                assert!(c.ts == 7 || c.ts == 9, "crash after op {n}: {}", c.ts);
            }
        }
    }

    #[test]
    fn corruption_is_reported_not_used() {
        let disk = FaultyStorage::new(Faults::default());
        write(&disk, 3, 1000);
        disk.flip_bit(CHECKPOINT_FILE, 8 * 5000 + 3).unwrap();
        assert!(matches!(read_checkpoint(&disk), Err(CheckpointError::Corrupt(_))));
    }
}
