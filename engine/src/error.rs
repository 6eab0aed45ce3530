//! `strata::Error`: the one error type of the embedding API (STYLE §7).
//!
//! Callers branch on [`Error::kind`] and loop on [`Error::is_retryable`]; the variants carry
//! small context (txn id, table name, a key prefix), never whole rows.

use strata_mvcc::{MvccError, TxnId};

/// Convenience alias.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong, coarsely, for callers that branch on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A write-write conflict (first committer wins). Retryable.
    Conflict,
    /// A serializable txn's reads were changed by a concurrent commit. Retryable.
    SerializationFailure,
    /// A named table does not exist (or was dropped).
    NotFound,
    /// A table or key that must not exist already does.
    AlreadyExists,
    /// A write through a read-only snapshot.
    ReadOnly,
    /// `Database::transaction` gave up.
    RetryLimitExceeded,
    /// User code panicked inside `Database::transaction`.
    Panicked,
    /// An argument was invalid (table name, key or value size).
    InvalidInput,
    /// An engine limit was reached (live snapshots, keys per txn).
    LimitExceeded,
    /// The database was closed.
    Closed,
    /// The directory is held by another process (or another open in this one).
    Busy,
    /// A log or checkpoint write or sync failed (after a failed log write or sync the database
    /// stops: every later read and write fails until it is reopened), or the directory could
    /// not be read.
    Io,
    /// Checkpoint or log contents that do not verify.
    Corrupt,
}

/// An engine error.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// First-committer-wins: another txn wrote the same key after this txn's snapshot.
    /// Nothing this txn wrote became visible; run it again on a fresh snapshot.
    #[error(transparent)]
    Conflict(MvccError),
    /// A `Serializable` txn read a key (or scanned a range holding a key) that a txn committed
    /// after its snapshot and before its commit wrote. Nothing this txn wrote became visible;
    /// run it again on a fresh snapshot.
    #[error(transparent)]
    SerializationFailure(MvccError),
    /// No table of this name.
    #[error("table {name:?} does not exist")]
    TableNotFound { name: String },
    /// A table of this name already exists.
    #[error("table {name:?} already exists")]
    TableExists { name: String },
    /// The table was dropped after this handle was opened (or, at commit, after the txn began;
    /// then `name` is the table's id, e.g. `table#3`).
    #[error("table {name:?} was dropped")]
    TableDropped { name: String },
    /// `insert` of a key that is present in the txn's view.
    #[error("key {key_prefix:02x?} already exists in table {table:?}")]
    KeyExists { table: String, key_prefix: Vec<u8> },
    /// A write through a read-only snapshot.
    #[error("{txn} is a read-only snapshot")]
    ReadOnly { txn: TxnId },
    /// `Database::transaction` hit a retryable error on every one of `attempts` runs.
    #[error("gave up after {attempts} attempts; last error: {last}")]
    RetryLimitExceeded { attempts: u32, last: Box<Error> },
    /// User code panicked inside `Database::transaction`; the txn was rolled back.
    #[error("transaction body panicked (rolled back): {message}")]
    Panicked { message: String },
    /// A table name that is empty, too long, or not valid.
    #[error("invalid table name {name:?}: {reason}")]
    InvalidTableName { name: String, reason: &'static str },
    /// A key or value over its size limit, or a txn over its key limit.
    #[error(transparent)]
    InvalidInput(MvccError),
    /// Too many live snapshots.
    #[error(transparent)]
    Limit(MvccError),
    /// A commit whose log record would exceed the record size limit.
    #[error("commit of {bytes} bytes exceeds the log record limit of {max}")]
    TxnTooLarge { bytes: usize, max: usize },
    /// `close` was called on this database (through any handle).
    #[error("the database is closed")]
    Closed,
    /// Another process (or an incompatible open in this one) holds the directory.
    #[error("database directory {path:?} is already open elsewhere")]
    AlreadyOpen { path: String },
    /// A log, checkpoint or directory operation failed. After a failed log write or sync the
    /// database stops: every later begin, read, write and commit fails with this error until it
    /// is reopened (a commit that reports it may have been visible in memory for a moment, but
    /// was not made durable, and nobody reads it after the stop).
    #[error("I/O error: {message}")]
    Io { message: String },
    /// Checkpoint or log contents that do not verify (recovery refuses to guess).
    #[error("corrupt database files: {message}")]
    Corrupt { message: String },
}

impl Error {
    /// The coarse kind.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Conflict(_) => ErrorKind::Conflict,
            Error::SerializationFailure(_) => ErrorKind::SerializationFailure,
            Error::TableNotFound { .. } | Error::TableDropped { .. } => ErrorKind::NotFound,
            Error::TableExists { .. } | Error::KeyExists { .. } => ErrorKind::AlreadyExists,
            Error::ReadOnly { .. } => ErrorKind::ReadOnly,
            Error::RetryLimitExceeded { .. } => ErrorKind::RetryLimitExceeded,
            Error::Panicked { .. } => ErrorKind::Panicked,
            Error::InvalidTableName { .. } | Error::InvalidInput(_) => ErrorKind::InvalidInput,
            Error::Limit(_) | Error::TxnTooLarge { .. } => ErrorKind::LimitExceeded,
            Error::Closed => ErrorKind::Closed,
            Error::AlreadyOpen { .. } => ErrorKind::Busy,
            Error::Io { .. } => ErrorKind::Io,
            Error::Corrupt { .. } => ErrorKind::Corrupt,
        }
    }

    /// Whether running the same txn again may succeed (a conflict or a serialization
    /// failure). `transaction` retries exactly these.
    pub fn is_retryable(&self) -> bool {
        matches!(self.kind(), ErrorKind::Conflict | ErrorKind::SerializationFailure)
    }
}

impl From<MvccError> for Error {
    fn from(e: MvccError) -> Self {
        match e {
            MvccError::Conflict { .. } => Error::Conflict(e),
            MvccError::SerializationFailure { .. } => Error::SerializationFailure(e),
            MvccError::ReadOnly { txn } => Error::ReadOnly { txn },
            MvccError::TooManySnapshots { .. } => Error::Limit(e),
            MvccError::Closed => Error::Closed,
            MvccError::Stopped { reason } => Error::Io {
                message: format!(
                    "the database stopped after its log failed ({reason}); reopen it to \
                     continue from what was made durable"
                ),
            },
            MvccError::TableDropped { table, label, .. } => {
                Error::TableDropped { name: label.unwrap_or_else(|| table.to_string()) }
            }
            MvccError::Base { reason } => Error::Corrupt { message: reason },
            _ => Error::InvalidInput(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_mvcc::{TableId, Timestamp};

    #[test]
    fn only_conflicts_and_serialization_failures_are_retryable() {
        let conflict = Error::from(MvccError::Conflict {
            txn: TxnId(1),
            read_ts: Timestamp(3),
            table: TableId(1),
            key_prefix: vec![1, 2],
            committed_ts: Some(Timestamp(4)),
        });
        assert_eq!(conflict.kind(), ErrorKind::Conflict);
        assert!(conflict.is_retryable());
        assert!(conflict.to_string().contains("conflict"), "{conflict}");
        let gave_up = Error::RetryLimitExceeded { attempts: 3, last: Box::new(conflict) };
        assert!(!gave_up.is_retryable());
        assert_eq!(gave_up.kind(), ErrorKind::RetryLimitExceeded);
        let skew = Error::from(MvccError::SerializationFailure {
            txn: TxnId(1),
            read_ts: Timestamp(3),
            commit_ts: Timestamp(6),
            table: TableId(1),
            key_prefix: vec![1],
            committed_ts: Timestamp(5),
        });
        assert_eq!(skew.kind(), ErrorKind::SerializationFailure);
        assert!(skew.is_retryable());
        assert!(skew.to_string().contains("serialization failure"), "{skew}");
        let big = Error::from(MvccError::KeyTooLarge { len: 10, max: 5 });
        assert_eq!(big.kind(), ErrorKind::InvalidInput);
        assert!(!Error::TableNotFound { name: "t".into() }.is_retryable());
    }
}
