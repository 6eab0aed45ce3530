//! Statement-level tests from files: every `tests/slt/**/*.slt`, in a subset of sqllogictest's
//! format, each file on a fresh in-memory database.
//!
//! Records (separated by blank lines; `#` starts a comment line):
//! - `statement ok` + SQL: must succeed.
//! - `statement error <text>` + SQL: must fail, and `<kind>: <message>` (what the shell prints
//!   after `Error: `) must contain `<text>`.
//! - `query <types> [rowsort]` + SQL + `----` + expected rows: values separated by one space,
//!   NULL as `NULL`, the empty string as `(empty)`; `rowsort` sorts the rows before comparing
//!   (for queries without ORDER BY). `<types>` is one letter per column (I, R, T, B, any).
//! - `connection <name>`: later records run on that connection (a sibling of the first,
//!   created on first use), so files can interleave concurrent transactions.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use strata_sql::{Connection, Value};

fn render(v: &Value) -> String {
    match v {
        Value::Null => "NULL".into(),
        Value::Text(s) if s.is_empty() => "(empty)".into(),
        other => other.to_string(),
    }
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

fn run_file(path: &Path) -> Result<usize, String> {
    let text = std::fs::read_to_string(path).unwrap();
    let first = Connection::open_in_memory().unwrap();
    let mut conns: HashMap<String, Connection> = HashMap::new();
    let mut current = "default".to_string();
    conns.insert(current.clone(), first);
    let lines: Vec<&str> = text.lines().collect();
    let mut i = 0;
    let mut records = 0;
    while i < lines.len() {
        let line = lines[i].trim_end();
        if line.trim().is_empty() || line.starts_with('#') {
            i += 1;
            continue;
        }
        let at = format!("{}:{}", path.display(), i + 1);
        let header: Vec<&str> = line.split_whitespace().collect();
        i += 1;
        if header[0] == "connection" {
            current = header[1].to_string();
            if !conns.contains_key(&current) {
                let sibling = conns["default"].connect().unwrap();
                conns.insert(current.clone(), sibling);
            }
            continue;
        }
        let mut sql = Vec::new();
        while i < lines.len() && !lines[i].trim().is_empty() && lines[i].trim() != "----" {
            sql.push(lines[i]);
            i += 1;
        }
        let sql = sql.join("\n");
        let conn = conns.get_mut(&current).unwrap();
        records += 1;
        match header.as_slice() {
            ["statement", "ok"] => {
                conn.execute(&sql, &[])
                    .map_err(|e| format!("{at}: {sql}\n  failed: {}: {e}", e.kind()))?;
            }
            ["statement", "error", ..] => {
                let want = line
                    .trim_start_matches("statement")
                    .trim_start()
                    .trim_start_matches("error")
                    .trim();
                match conn.execute(&sql, &[]) {
                    Ok(_) => {
                        return Err(format!(
                            "{at}: {sql}\n  succeeded, expected an error containing {want:?}"
                        ))
                    }
                    Err(e) => {
                        let got = format!("{}: {}", e.kind(), e.message());
                        if !got.contains(want) {
                            return Err(format!(
                                "{at}: {sql}\n  error {got:?} does not contain {want:?}"
                            ));
                        }
                    }
                }
            }
            ["query", _types, rest @ ..] => {
                let rowsort = rest.contains(&"rowsort");
                if i >= lines.len() || lines[i].trim() != "----" {
                    return Err(format!("{at}: a query needs ---- and its expected rows"));
                }
                i += 1;
                let mut expected = Vec::new();
                while i < lines.len() && !lines[i].trim().is_empty() {
                    expected.push(lines[i].trim_end().to_string());
                    i += 1;
                }
                let rows = conn
                    .query(&sql, &[])
                    .map_err(|e| format!("{at}: {sql}\n  failed: {}: {e}", e.kind()))?;
                let mut got: Vec<String> = rows
                    .rows
                    .iter()
                    .map(|r| r.iter().map(render).collect::<Vec<_>>().join(" "))
                    .collect();
                if rowsort {
                    got.sort();
                    expected.sort();
                }
                if got != expected {
                    return Err(format!(
                        "{at}: {sql}\n  expected:\n    {}\n  got:\n    {}",
                        expected.join("\n    "),
                        got.join("\n    ")
                    ));
                }
            }
            _ => return Err(format!("{at}: unknown record {line:?}")),
        }
    }
    Ok(records)
}

#[test]
fn every_slt_file_passes() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/slt");
    let mut all = Vec::new();
    files(&root, &mut all);
    assert!(!all.is_empty(), "no .slt files under {}", root.display());
    let mut failures = Vec::new();
    let mut records = 0;
    for f in &all {
        match run_file(f) {
            Ok(n) => records += n,
            Err(e) => failures.push(e),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} files failed:\n{}",
        failures.len(),
        all.len(),
        failures.join("\n\n")
    );
    eprintln!("{} files, {records} records", all.len());
}
