//! `strata-wal`: Strata's write-ahead log.
//!
//! This first increment (issue #4) is the **record codec**: the byte format every log record
//! has, its checksum, and a decoder that never panics on bad bytes and says where a log stops
//! being valid. Segment files (memmap2, preallocated), group commit, recovery, checkpoints and
//! the storage trait with its faulty in-memory implementation are the rest of issue #4; until
//! they exist Strata is in memory only. The format is in `docs/design/wal.md`.
#![forbid(unsafe_code)]

pub mod record;

pub use record::{
    decode_commit, encode, encode_commit, scan, CodecError, RecordKind, RecordRef, WalWrite,
    FORMAT_VERSION, RECORD_HEADER_BYTES, RECORD_PAYLOAD_BYTES_MAX,
};
