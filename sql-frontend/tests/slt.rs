//! Statement-level tests from files: every `tests/slt/**/*.slt`, in sqllogictest's format, run
//! by the `sqllogictest` crate, each file on a fresh in-memory database.
//!
//! What the files use of the format:
//! - `statement ok` + SQL: must succeed.
//! - `statement error <regex>` + SQL: must fail, and `<kind>: <message>` (what the shell prints
//!   after `Error: `) must match `<regex>` somewhere.
//! - `query <types> [rowsort]` + SQL + `----` + expected rows: values separated by one space,
//!   NULL as `NULL`, the empty string as `(empty)`; `rowsort` sorts the rows before comparing
//!   (for queries without ORDER BY). The types are not checked.
//! - `connection <name>` before a record: that record runs on that connection (a sibling of
//!   the others on the file's database, created on first use); the next record without one runs
//!   on the default connection. Files interleave concurrent transactions this way.
//!
//! Rows are compared exactly (the crate's default comparison folds runs of whitespace, which
//! would hide a wrong text value).
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use sqllogictest::{DBOutput, DefaultColumnType, Runner, DB};
use std::path::{Path, PathBuf};
use strata_sql::{Connection, Value};

/// A statement's error as the shell prints it: `<kind>: <message>`.
#[derive(Debug)]
struct SqlError(String);

impl std::fmt::Display for SqlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SqlError {}

struct Strata(Connection);

fn render(v: &Value) -> String {
    match v {
        Value::Null => "NULL".into(),
        Value::Text(s) if s.is_empty() => "(empty)".into(),
        other => other.to_string(),
    }
}

impl DB for Strata {
    type Error = SqlError;
    type ColumnType = DefaultColumnType;

    fn run(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, SqlError> {
        let rows = self
            .0
            .query(sql, &[])
            .map_err(|e| SqlError(format!("{}: {}", e.kind(), e.message())))?;
        if rows.columns.is_empty() {
            return Ok(DBOutput::StatementComplete(0));
        }
        Ok(DBOutput::Rows {
            types: vec![DefaultColumnType::Any; rows.columns.len()],
            rows: rows.rows.iter().map(|r| r.iter().map(render).collect()).collect(),
        })
    }

    fn engine_name(&self) -> &str {
        "strata"
    }
}

/// Each actual row, its values joined by one space, equals the expected line exactly.
fn exact(
    _normalizer: sqllogictest::Normalizer,
    actual: &[Vec<String>],
    expected: &[String],
) -> bool {
    actual.len() == expected.len()
        && actual.iter().zip(expected).all(|(row, want)| row.join(" ") == *want)
}

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            files(&p, out);
        } else if p.extension().is_some_and(|e| e == "slt") {
            out.push(p);
        }
    }
}

fn run_file(path: &Path) -> Result<(), String> {
    let first = Connection::open_in_memory().unwrap();
    let mut runner = Runner::new(move || {
        let sibling = first.connect().map(Strata).map_err(|e| SqlError(e.to_string()));
        std::future::ready(sibling)
    });
    runner.with_validator(exact);
    runner.run_file(path).map_err(|e| format!("{}", e.display(false)))
}

#[test]
fn every_slt_file_passes() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/slt");
    let mut all = Vec::new();
    files(&root, &mut all);
    assert!(!all.is_empty(), "no .slt files under {}", root.display());
    let failures: Vec<String> = all.iter().filter_map(|f| run_file(f).err()).collect();
    assert!(
        failures.is_empty(),
        "{} of {} files failed:\n{}",
        failures.len(),
        all.len(),
        failures.join("\n\n")
    );
    eprintln!("{} files", all.len());
}
