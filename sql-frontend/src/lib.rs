//! `strata-sql`: a thin SQL layer over the Strata engine (sqlparser for the grammar).
//!
//! ```
//! use strata_sql::{Connection, Value};
//!
//! let mut a = Connection::open_in_memory()?;
//! a.execute("CREATE TABLE counters (id INTEGER PRIMARY KEY, n INTEGER NOT NULL)", &[])?;
//! a.execute("INSERT INTO counters VALUES (1, 0), (2, 0)", &[])?;
//! let mut b = a.connect()?; // a sibling connection, e.g. for another thread
//! a.execute("BEGIN CONCURRENT", &[])?;
//! b.execute("BEGIN CONCURRENT", &[])?;
//! // An increment of a row found by its key runs as a merge: both commit.
//! a.execute("UPDATE counters SET n = n + 1 WHERE id = ?", &[Value::from(1)])?;
//! b.execute("UPDATE counters SET n = n + 1 WHERE id = ?", &[Value::from(1)])?;
//! a.execute("COMMIT", &[])?;
//! b.execute("COMMIT", &[])?;
//! // Any other write of the row conflicts with a concurrent one: first committer wins.
//! a.execute("BEGIN CONCURRENT", &[])?;
//! b.execute("BEGIN CONCURRENT", &[])?;
//! a.execute("UPDATE counters SET n = n * 2 WHERE id = 2", &[])?;
//! b.execute("UPDATE counters SET n = 7 WHERE id = 2", &[])?;
//! a.execute("COMMIT", &[])?;
//! let err = b.execute("COMMIT", &[]).unwrap_err();
//! assert!(err.is_retryable());
//! let rows = a.query("SELECT id, n FROM counters ORDER BY id", &[])?;
//! assert_eq!(rows.rows, vec![vec![Value::from(1), Value::from(2)], vec![Value::from(2), Value::from(0)]]);
//! # Ok::<(), strata_sql::Error>(())
//! ```
//!
//! What is supported and what is not: `docs/design/sql-frontend.md`.
#![forbid(unsafe_code)]

mod conn;
mod error;
mod exec;
mod expr;
mod schema;
mod value;

pub use conn::{split_statements, Connection, Statement, STATEMENT_BYTES_MAX};
pub use error::{Error, ErrorKind, Result};
pub use exec::Rows;
pub use schema::{Column, ColumnType, TableSchema, SQL_TABLE_NAME_BYTES_MAX};
pub use value::Value;
