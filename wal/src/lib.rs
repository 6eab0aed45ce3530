//! `strata-wal`: the write-ahead log (memmap2 segments, CRC32C records, group commit, recovery,
//! checkpoints). Not built yet: issue #4 fills this crate. Strata is in-memory only until then
//! (`Durability::None`), and the engine says so rather than pretending to persist.
#![forbid(unsafe_code)]
