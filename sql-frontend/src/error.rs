//! SQL errors: one type, with a stable `kind` word for the shell (`Error: <kind>: <message>`).

use std::fmt;

/// What went wrong, as a stable word.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The SQL does not parse.
    Parse,
    /// Valid SQL that Strata does not support (the message says what).
    NotSupported,
    /// A table or column that does not exist, or one that already does.
    Schema,
    /// A NOT NULL, PRIMARY KEY (uniqueness) or type constraint.
    Constraint,
    /// A value of the wrong type for an operation or a column.
    Type,
    /// Integer overflow, a literal out of range.
    Range,
    /// Wrong number or kind of parameters.
    Params,
    /// A write-write conflict: the txn was rolled back; retry it.
    Conflict,
    /// A SERIALIZABLE txn read rows a concurrent commit changed: rolled back; retry it.
    SerializationFailure,
    /// A statement inside a txn that already failed (until `ROLLBACK`).
    TxnAborted,
    /// `BEGIN` inside a txn, `COMMIT` outside one.
    TxnState,
    /// The engine: I/O, a closed database, limits.
    Engine,
}

impl ErrorKind {
    /// The word the shell prints.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Parse => "parse",
            ErrorKind::NotSupported => "not_supported",
            ErrorKind::Schema => "schema",
            ErrorKind::Constraint => "constraint",
            ErrorKind::Type => "type",
            ErrorKind::Range => "range",
            ErrorKind::Params => "params",
            ErrorKind::Conflict => "conflict",
            ErrorKind::SerializationFailure => "serialization_failure",
            ErrorKind::TxnAborted => "txn_aborted",
            ErrorKind::TxnState => "txn_state",
            ErrorKind::Engine => "engine",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A SQL error.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}{message}", if *kind == ErrorKind::NotSupported { "not supported: " } else { "" })]
pub struct Error {
    kind: ErrorKind,
    message: String,
}

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error { kind, message: message.into() }
    }

    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The message without the kind (`Display` adds "not supported: " for that kind).
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Whether running the same txn again may succeed (a conflict or serialization failure).
    pub fn is_retryable(&self) -> bool {
        matches!(self.kind, ErrorKind::Conflict | ErrorKind::SerializationFailure)
    }

    pub(crate) fn not_supported(what: impl fmt::Display) -> Self {
        Error::new(ErrorKind::NotSupported, what.to_string())
    }

    pub(crate) fn schema(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Schema, message)
    }

    pub(crate) fn type_error(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Type, message)
    }

    pub(crate) fn constraint(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Constraint, message)
    }

    pub(crate) fn range(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Range, message)
    }
}

impl From<strata::Error> for Error {
    fn from(e: strata::Error) -> Self {
        match e.kind() {
            // A stable message (the engine's names internal txn ids and encoded keys).
            strata::ErrorKind::Conflict | strata::ErrorKind::RetryLimitExceeded => Error::new(
                ErrorKind::Conflict,
                "write-write conflict: another transaction committed a change to a row this one \
                 wrote; this transaction was rolled back, retry it",
            ),
            strata::ErrorKind::SerializationFailure => Error::new(
                ErrorKind::SerializationFailure,
                "could not serialize access: a concurrent transaction committed a change to rows \
                 this one read; this transaction was rolled back, retry it",
            ),
            strata::ErrorKind::InvalidInput => Error::new(ErrorKind::Range, e.to_string()),
            _ => Error::new(ErrorKind::Engine, e.to_string()),
        }
    }
}

impl From<sqlparser::tokenizer::TokenizerError> for Error {
    fn from(e: sqlparser::tokenizer::TokenizerError) -> Self {
        Error::new(ErrorKind::Parse, e.to_string())
    }
}

impl From<sqlparser::parser::ParserError> for Error {
    fn from(e: sqlparser::parser::ParserError) -> Self {
        let message = match e {
            sqlparser::parser::ParserError::TokenizerError(m)
            | sqlparser::parser::ParserError::ParserError(m) => m,
            sqlparser::parser::ParserError::RecursionLimitExceeded => {
                "the statement is nested too deeply".to_string()
            }
        };
        Error::new(ErrorKind::Parse, message)
    }
}

pub type Result<T> = std::result::Result<T, Error>;
