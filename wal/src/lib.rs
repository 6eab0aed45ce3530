//! `strata-wal`: Strata's write-ahead log.
//!
//! Built so far (issue #4): the **record codec** (`record`: the byte format every log record has,
//! its checksum, and a decoder that never panics on bad bytes and says where a log stops being
//! valid) and the **storage trait** (`storage`: real files, and an in-memory disk that loses
//! unsynced bytes, tears writes, fails syncs and fills up). Segment files (memmap2), group
//! commit, recovery and checkpoints are the rest of issue #4; until they exist Strata is in
//! memory only. The format is in `docs/design/wal.md`.
#![deny(unsafe_code)] // except `mmap.rs` (docs/UNSAFE.md §8)

pub mod record;
pub mod storage;

pub mod checkpoint;
pub mod group;
pub mod log;
pub mod mmap;
mod sync;

pub use checkpoint::{read_checkpoint, Checkpoint, CheckpointError, CheckpointWriter};
pub use log::{
    create_segment, first_segment_bytes, next_segment_bytes, parse_segment, records_past_end,
    remove_segments_before, scan_log, segment_name, AppendFrom, Durability, Log, LogEnd, LogError,
    LogOptions, LogRecord, LogScan, LogStats, LogStop, SegmentHead, StrayRecord,
    SEGMENT_HEADER_BYTES,
};
pub use mmap::{MmapStorage, ReadMap, SyncMethod};
pub use record::{
    commit_merge_bytes, commit_write_bytes, decode_commit, decode_commit_ops, encode,
    encode_commit, scan, seal, seal_claiming, CodecError, CommitBuilder, RecordKind, RecordRef,
    WalOp, WalWrite, DURABLE_LAG_MAX, FORMAT_VERSION, FORMAT_VERSION_1, RECORD_HEADER_BYTES,
    RECORD_PAYLOAD_BYTES_MAX,
};
pub use storage::{CrashMode, Faults, FaultyStorage, FileStorage, Storage, StorageFile};
