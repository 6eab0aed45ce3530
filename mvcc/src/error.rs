//! Errors of the MVCC layer. A conflict is an expected value, never a panic (STYLE §7).

use crate::clock::Timestamp;
use crate::key::TableId;
use crate::state::TxnId;

/// Bytes of a key kept in an error for context (errors carry small context, not rows).
pub const ERROR_KEY_PREFIX_BYTES: usize = 16;

/// An MVCC-layer error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MvccError {
    /// First-committer-wins: another txn committed (or is committing) a write to a key this txn
    /// wrote, after this txn's snapshot. Retryable. None of this txn's writes became visible.
    #[error(
        "write-write conflict: {txn} (snapshot {read_ts}) lost on {table} key {key_prefix:02x?}{}",
        match committed_ts { Some(ts) => format!(" to a commit at {ts}"), None => " to a txn in progress".to_string() }
    )]
    Conflict {
        txn: TxnId,
        read_ts: Timestamp,
        table: TableId,
        key_prefix: Vec<u8>,
        committed_ts: Option<Timestamp>,
    },
    /// Serializable validation: a key this txn read (or a key inside a range it scanned) was
    /// written by a txn that committed at `committed_ts`, after this txn's snapshot and before
    /// its commit timestamp `commit_ts`, so the txn cannot be placed at `commit_ts` in a serial
    /// order. Retryable. None of its writes became visible. `commit_ts` was used up: a durable
    /// engine logs an empty commit for it (timestamps are dense).
    #[error(
        "serialization failure: {txn} (snapshot {read_ts}, commit {commit_ts}) read {table} key {key_prefix:02x?}, which a commit at {committed_ts} changed"
    )]
    SerializationFailure {
        txn: TxnId,
        read_ts: Timestamp,
        commit_ts: Timestamp,
        table: TableId,
        key_prefix: Vec<u8>,
        committed_ts: Timestamp,
    },
    /// The requested isolation level is not available on this store.
    #[error("{isolation:?} isolation is not supported by the {store} store")]
    Unsupported { isolation: crate::txn::Isolation, store: &'static str },
    /// A write through a read-only snapshot.
    #[error("{txn} is read-only")]
    ReadOnly { txn: TxnId },
    /// Too many live snapshots (see `SNAPSHOT_SLOTS_MAX`).
    #[error("too many live transactions (at most {max})")]
    TooManySnapshots { max: usize },
    /// A key longer than `KEY_BYTES_MAX`.
    #[error("key of {len} bytes exceeds the limit of {max}")]
    KeyTooLarge { len: usize, max: usize },
    /// A value longer than `VALUE_BYTES_MAX`.
    #[error("value of {len} bytes exceeds the limit of {max}")]
    ValueTooLarge { len: usize, max: usize },
    /// The txn wrote to a table that was dropped before it committed; nothing was written.
    /// `label` is the table's name if its owner gave one (`Mvcc::label_table`).
    #[error("{txn} wrote to {}, which was dropped before it committed", label.as_deref().map_or_else(|| table.to_string(), str::to_string))]
    TableDropped { txn: TxnId, table: TableId, label: Option<String> },
    /// The database was closed.
    #[error("the database is closed")]
    Closed,
    /// The database was stopped (`Mvcc::stop`) after a failure it cannot recover from in place:
    /// nothing more is read or written until it is reopened.
    #[error("the database stopped after a failure and must be reopened: {reason}")]
    Stopped { reason: String },
    /// More distinct keys written than `TXN_WRITES_MAX`.
    /// The base store under the chains could not be read (a page that does not verify, an
    /// I/O error): nothing it held is served.
    #[error("the base store could not be read: {reason}")]
    Base { reason: String },

    #[error("{txn} wrote more than {max} keys")]
    TxnTooLarge { txn: TxnId, max: usize },
    /// A merge (`Txn::merge`) could not be applied to the value it met: at commit, to the
    /// newest committed value of its key (nothing of the txn became visible), or when the txn
    /// read its own merge. Not retryable: the value or the operand must change.
    #[error("merge into {table} key {key_prefix:02x?} failed: {reason}")]
    Merge { txn: TxnId, table: TableId, key_prefix: Vec<u8>, reason: crate::merge::MergeError },
}

impl MvccError {
    /// Whether running the txn again may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, MvccError::Conflict { .. } | MvccError::SerializationFailure { .. })
    }
}
