//! # Strata
//!
//! An embeddable multi-version storage engine for programs where many threads write at once.
//! Version chains are lock-free linked lists (CAS on the head) in a sharded hash index, reclaimed
//! through `crossbeam-epoch`; the commit protocol takes no global lock. Txns run under snapshot
//! isolation with first-committer-wins: readers never block and never abort, and a write-write
//! conflict is a retryable [`Error::Conflict`]. [`Isolation::Serializable`] (per txn or per
//! database) also validates every read and scanned range at commit, so write skew and phantoms
//! fail with the retryable [`Error::SerializationFailure`]. Keys are kept in order: `range`,
//! `range_rev` and `prefix` scans walk them without sorting.
//!
//! ```
//! use strata::{Database, Result};
//!
//! fn main() -> Result<()> {
//!     let db = Database::in_memory();
//!     let accounts = db.create_table("accounts")?;
//!     db.transaction(|txn| txn.put(&accounts, b"alice", 100u64.to_le_bytes()))?;
//!     let balance = db.transaction(|txn| {
//!         let old = txn.get(&accounts, b"alice")?.expect("alice exists");
//!         let new = u64::from_le_bytes(old.try_into().expect("8 bytes")) + 5;
//!         txn.put(&accounts, b"alice", new.to_le_bytes())?;
//!         Ok(new)
//!     })?;
//!     assert_eq!(balance, 105);
//!     // A merge: an add applied at commit to the newest value, so concurrent adds to one key
//!     // all commit (no conflict, no retry); a put or delete of the key still conflicts with it.
//!     let hits = db.create_table("hits")?;
//!     std::thread::scope(|s| {
//!         for _ in 0..4 {
//!             s.spawn(|| db.transaction(|txn| txn.add(&hits, b"home", 1)).expect("no conflict"));
//!         }
//!     });
//!     let total = db.begin_read()?.get(&hits, b"home")?.expect("counted");
//!     assert_eq!(i64::from_le_bytes(total.try_into().expect("8 bytes")), 4);
//!     Ok(())
//! }
//! ```
//!
//! Design and invariants: `docs/ARCHITECTURE.md` and `docs/design/mvcc.md` in the repository.
#![forbid(unsafe_code)]

mod base;
mod check;
mod db;
mod durable;
mod error;
mod retry;
mod sync;
mod txn;

pub use check::{check, CheckReport, LogEnding, TableSummary};
pub use db::{Database, FileIo, Options, Table, LOCK_FILE, TABLE_NAME_BYTES_MAX};
pub use durable::{CheckpointReport, DurabilityStats, LogDamage, RecoveryReport};
pub use error::{Error, ErrorKind, Result};
pub use retry::{RetryPolicy, TXN_ATTEMPTS_MAX};
/// Cache-line transfer counts per write site (`--features line-count`; `strata bench --lines`).
pub use strata_mvcc::lines;
pub use strata_mvcc::{
    GcReport, Isolation, MergeError, MergeOp, MvccStats as Stats, Row, StoreKind, TableId,
    Timestamp, TxnId, KEY_BYTES_MAX, TXN_WRITES_MAX, VALUE_BYTES_MAX,
};
pub use strata_wal::{CrashMode, Durability, Faults, FaultyStorage, FileStorage, Storage};
pub use txn::{Snapshot, Txn};
