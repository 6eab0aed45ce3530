//! The SQL engines of `strata bench`: Strata through `strata-sql` and SQLite through `rusqlite`,
//! both running every workload as prepared statements, one connection per thread (an increment
//! is `BEGIN; UPDATE counters SET n = n + 1 WHERE id = ?; COMMIT`, a read a point `SELECT`, a
//! transfer two `UPDATE`s in one txn, a total `SELECT SUM(n)`):
//!
//! - `strata-sql`: `BEGIN CONCURRENT`, a conflict (at an UPDATE or the COMMIT) rolled back and
//!   retried. Its `SET n = n + ?` updates run as merges (they find the row by key and read
//!   nothing else of it), so increments never conflict;
//! - `strata-sql-rmw`: the same, but an increment is the read-modify-write form, `SELECT n`
//!   then `UPDATE counters SET n = <n + 1>`, in one txn: what the merge replaces;
//! - `sqlite`: the same with `BEGIN IMMEDIATE`, in WAL mode with `busy_timeout` (a writer waits
//!   for the lock instead of failing), `synchronous` matched to Strata's durability (OFF for in
//!   memory, which for SQLite is a file in the temporary directory whose pages stay in the page
//!   cache; FULL for `Sync`).

use super::{check_scan, open_database, Disk, Engine, Worker};
use durability_arg::to_synchronous;
use std::path::PathBuf;
use std::sync::Mutex;
use strata::StoreKind;
use strata_sql::{Connection, Value};

const SCHEMA: &str = "CREATE TABLE counters (id INTEGER PRIMARY KEY, n INTEGER NOT NULL)";
const UPDATE: &str = "UPDATE counters SET n = n + 1 WHERE id = ?";
const READ: &str = "SELECT n FROM counters WHERE id = ?";
const WRITE: &str = "UPDATE counters SET n = ?2 WHERE id = ?1";
const DEBIT: &str = "UPDATE counters SET n = n - ?2 WHERE id = ?1";
const CREDIT: &str = "UPDATE counters SET n = n + ?2 WHERE id = ?1";
const TOTAL: &str = "SELECT SUM(n) FROM counters";
const SCAN: &str = "SELECT id, n FROM counters WHERE id >= ?1 ORDER BY id LIMIT ?2";
const INSERT: &str = "INSERT INTO counters VALUES (?1, 1)";

/// The statements of one churn step over keys `from..to` (literal SQL: one txn's worth).
pub fn churn_sql(from: u64, to: u64, step: super::Churn) -> Vec<String> {
    match step {
        super::Churn::OverwriteAll => {
            vec![format!("UPDATE counters SET n = 1 WHERE id >= {from} AND id < {to}")]
        }
        super::Churn::DeleteEven => {
            vec![format!("DELETE FROM counters WHERE id >= {from} AND id < {to} AND id % 2 = 0")]
        }
        super::Churn::InsertEven => {
            let rows: Vec<String> =
                (from..to).filter(|k| k % 2 == 0).map(|k| format!("({k}, 1)")).collect();
            if rows.is_empty() {
                return vec![];
            }
            vec![format!("INSERT INTO counters (id, n) VALUES {}", rows.join(", "))]
        }
    }
}
/// Rows per INSERT statement while preloading.
const PRELOAD_ROWS_PER_STATEMENT: u64 = 500;

mod durability_arg {
    use crate::bench::durability::DurabilityArg;

    pub fn to_synchronous(d: Option<DurabilityArg>) -> &'static str {
        match d {
            Some(DurabilityArg::Sync) => "FULL",
            _ => "OFF",
        }
    }
}

/// The INSERTs that load `keys` rows of value `initial` (also used by the SQLRite and Turso
/// engines, so the column list is explicit).
pub fn preload_statements(keys: u64, initial: u64) -> impl Iterator<Item = String> {
    (0..keys).step_by(PRELOAD_ROWS_PER_STATEMENT as usize).map(move |start| {
        let end = (start + PRELOAD_ROWS_PER_STATEMENT).min(keys);
        let rows: Vec<String> = (start..end).map(|k| format!("({k}, {initial})")).collect();
        format!("INSERT INTO counters (id, n) VALUES {}", rows.join(", "))
    })
}

/// The workloads as literal SQL, for the engines driven through `execute` with the values
/// written in (SQLRite, Turso): the same statements as the prepared ones above.
pub mod literal {
    pub const TOTAL: &str = super::TOTAL;
    pub const CREATE: &str = super::SCHEMA;

    pub fn increment(key: u64) -> Vec<String> {
        vec![format!("UPDATE counters SET n = n + 1 WHERE id = {key}")]
    }
    pub fn read(key: u64) -> String {
        format!("SELECT n FROM counters WHERE id = {key}")
    }
    pub fn write(key: u64, value: u64) -> Vec<String> {
        vec![format!("UPDATE counters SET n = {value} WHERE id = {key}")]
    }
    pub fn transfer(from: u64, to: u64, amount: u64) -> Vec<String> {
        vec![
            format!("UPDATE counters SET n = n - {amount} WHERE id = {from}"),
            format!("UPDATE counters SET n = n + {amount} WHERE id = {to}"),
        ]
    }
    pub fn scan(start: u64, len: u64) -> String {
        format!("SELECT id FROM counters WHERE id >= {start} ORDER BY id LIMIT {len}")
    }
    pub fn insert(key: u64) -> Vec<String> {
        vec![format!("INSERT INTO counters (id, n) VALUES ({key}, 1)")]
    }
}

pub struct StrataSql {
    root: Mutex<Connection>,
    /// Increments read, then write the new value (`strata-sql-rmw`).
    rmw: bool,
}

impl StrataSql {
    pub fn new(keys: u64, initial: u64, disk: Option<&Disk>, rmw: bool) -> Result<Self, String> {
        let e = |e: strata_sql::Error| e.to_string();
        let db = open_database(StoreKind::LockFree, strata::Isolation::Snapshot, disk)?;
        let mut root = Connection::from_database(db).map_err(e)?;
        root.execute(SCHEMA, &[]).map_err(e)?;
        for stmt in preload_statements(keys, initial) {
            root.execute(&stmt, &[]).map_err(e)?;
        }
        root.database().collect_garbage();
        Ok(StrataSql { root: Mutex::new(root), rmw })
    }
}

struct StrataSqlWorker {
    conn: Connection,
    rmw: bool,
    begin: strata_sql::Statement,
    update: strata_sql::Statement,
    commit: strata_sql::Statement,
    rollback: strata_sql::Statement,
    read: strata_sql::Statement,
    write: strata_sql::Statement,
    debit: strata_sql::Statement,
    credit: strata_sql::Statement,
    total: strata_sql::Statement,
    scan: strata_sql::Statement,
    insert: strata_sql::Statement,
}

fn int(v: u64) -> Value {
    Value::Integer(v as i64)
}

impl StrataSqlWorker {
    /// `BEGIN CONCURRENT`, the statements with their parameters, `COMMIT`; retried on conflict.
    /// Returns the aborted attempts.
    fn txn(&mut self, steps: &[(&strata_sql::Statement, &[Value])]) -> Result<u64, String> {
        self.retried(|w| {
            for (stmt, params) in steps {
                stmt.execute(&mut w.conn, params)?;
            }
            Ok(())
        })
    }

    /// The read-modify-write increment: read `n`, write `n + 1`, commit; retried on conflict.
    fn read_then_write(&mut self, key: u64) -> Result<u64, String> {
        let (read, write) = (self.read.clone(), self.write.clone());
        self.retried(|w| {
            let rows = read.query(&mut w.conn, &[int(key)])?;
            let n = match rows.rows.first().and_then(|r| r.first()) {
                None | Some(Value::Null) => 0,
                Some(Value::Integer(n)) => *n as u64,
                Some(other) => {
                    let message = format!("expected an integer, got {other:?}");
                    return Err(strata_sql::Error::new(strata_sql::ErrorKind::Type, message));
                }
            };
            write.execute(&mut w.conn, &[int(key), int(n + 1)]).map(drop)
        })
    }

    /// `BEGIN CONCURRENT`, `body`, `COMMIT`; rolled back and run again while it fails with a
    /// retryable error. Returns the aborted attempts.
    fn retried(
        &mut self,
        mut body: impl FnMut(&mut Self) -> strata_sql::Result<()>,
    ) -> Result<u64, String> {
        let mut aborts = 0;
        loop {
            self.begin.execute(&mut self.conn, &[]).map_err(|e| e.to_string())?;
            let done = body(self).and_then(|()| self.commit.execute(&mut self.conn, &[]));
            match done {
                Ok(_) => return Ok(aborts),
                Err(e) if e.is_retryable() => {
                    aborts += 1;
                    if self.conn.in_transaction() {
                        self.rollback.execute(&mut self.conn, &[]).map_err(|e| e.to_string())?;
                    }
                }
                Err(e) => return Err(e.to_string()),
            }
        }
    }

    fn one_integer(
        &mut self,
        which: &strata_sql::Statement,
        params: &[Value],
    ) -> Result<Option<u64>, String> {
        let rows = which.query(&mut self.conn, params).map_err(|e| e.to_string())?;
        match rows.rows.first().and_then(|r| r.first()) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Integer(n)) => Ok(Some(*n as u64)),
            Some(other) => Err(format!("expected an integer, got {other:?}")),
        }
    }
}

impl Worker for StrataSqlWorker {
    fn increment(&mut self, key: u64) -> Result<u64, String> {
        if self.rmw {
            return self.read_then_write(key);
        }
        let update = self.update.clone();
        self.txn(&[(&update, &[int(key)])])
    }

    fn read(&mut self, key: u64) -> Result<Option<u64>, String> {
        let read = self.read.clone();
        self.one_integer(&read, &[int(key)])
    }

    fn write(&mut self, key: u64, value: u64) -> Result<u64, String> {
        let write = self.write.clone();
        self.txn(&[(&write, &[int(key), int(value)])])
    }

    fn transfer(&mut self, from: u64, to: u64, amount: u64) -> Result<u64, String> {
        let (debit, credit) = (self.debit.clone(), self.credit.clone());
        self.txn(&[(&debit, &[int(from), int(amount)]), (&credit, &[int(to), int(amount)])])
    }

    fn total(&mut self) -> Result<u64, String> {
        let total = self.total.clone();
        Ok(self.one_integer(&total, &[])?.unwrap_or(0))
    }

    fn scan(&mut self, start: u64, len: u64) -> Result<u64, String> {
        let rows =
            self.scan.query(&mut self.conn, &[int(start), int(len)]).map_err(|e| e.to_string())?;
        let keys = rows.rows.iter().map(|r| match r.first() {
            Some(Value::Integer(k)) => *k as u64,
            _ => u64::MAX,
        });
        check_scan(start, len, keys)
    }

    fn insert(&mut self, key: u64) -> Result<u64, String> {
        let insert = self.insert.clone();
        self.txn(&[(&insert, &[int(key)])])
    }

    fn churn_step(&mut self, from: u64, to: u64, step: super::Churn) -> Result<(), String> {
        let statements = churn_sql(from, to, step)
            .iter()
            .map(|sql| self.conn.prepare(sql).map_err(|e| e.to_string()))
            .collect::<Result<Vec<_>, _>>()?;
        let steps: Vec<(&strata_sql::Statement, &[Value])> =
            statements.iter().map(|s| (s, &[][..])).collect();
        self.txn(&steps).map(|_| ())
    }
}

impl Engine for StrataSql {
    fn via(&self) -> &'static str {
        "sql"
    }

    fn sum(&self) -> Result<u64, String> {
        let mut root = self.root.lock().map_err(|_| "poisoned")?;
        let rows = root.query("SELECT SUM(n) FROM counters", &[]).map_err(|e| e.to_string())?;
        match rows.rows.first().and_then(|r| r.first()) {
            Some(Value::Integer(n)) => Ok(*n as u64),
            Some(Value::Null) | None => Ok(0),
            Some(other) => Err(format!("SUM(n) is {other:?}")),
        }
    }

    fn worker(&self) -> Option<Result<Box<dyn Worker>, String>> {
        Some((|| {
            let mut conn =
                self.root.lock().map_err(|_| "poisoned")?.connect().map_err(|e| e.to_string())?;
            let mut prep = |sql: &str| conn.prepare(sql).map_err(|e| e.to_string());
            let (begin, update, commit, rollback) =
                (prep("BEGIN CONCURRENT")?, prep(UPDATE)?, prep("COMMIT")?, prep("ROLLBACK")?);
            let (read, write, debit, credit, total) =
                (prep(READ)?, prep(WRITE)?, prep(DEBIT)?, prep(CREDIT)?, prep(TOTAL)?);
            let (scan, insert) = (prep(SCAN)?, prep(INSERT)?);
            Ok(Box::new(StrataSqlWorker {
                conn,
                rmw: self.rmw,
                begin,
                update,
                commit,
                rollback,
                read,
                write,
                debit,
                credit,
                total,
                scan,
                insert,
            }) as Box<dyn Worker>)
        })())
    }
}

pub struct Sqlite {
    path: PathBuf,
    synchronous: &'static str,
    /// The directory of a database the run does not keep (removed with the engine).
    _scratch: Option<tempfile::TempDir>,
}

impl Sqlite {
    pub fn new(keys: u64, initial: u64, disk: Option<&Disk>) -> Result<Self, String> {
        let (dir, scratch) = match disk {
            Some(d) => {
                let _ = std::fs::remove_dir_all(&d.dir);
                std::fs::create_dir_all(&d.dir)
                    .map_err(|e| format!("creating {}: {e}", d.dir.display()))?;
                (d.dir.clone(), None)
            }
            None => {
                let tmp = tempfile::Builder::new()
                    .prefix("strata-bench-sqlite-")
                    .tempdir()
                    .map_err(|e| format!("creating a temporary directory: {e}"))?;
                (tmp.path().to_path_buf(), Some(tmp))
            }
        };
        let engine = Sqlite {
            path: dir.join("bench.sqlite"),
            synchronous: to_synchronous(disk.map(|d| d.durability)),
            _scratch: scratch,
        };
        let conn = engine.open()?;
        let e = |e: rusqlite::Error| e.to_string();
        conn.execute(SCHEMA, []).map_err(e)?;
        conn.execute_batch("BEGIN").map_err(e)?;
        for stmt in preload_statements(keys, initial) {
            conn.execute(&stmt, []).map_err(e)?;
        }
        conn.execute_batch("COMMIT").map_err(e)?;
        Ok(engine)
    }

    fn open(&self) -> Result<rusqlite::Connection, String> {
        let e = |e: rusqlite::Error| e.to_string();
        let conn = rusqlite::Connection::open(&self.path).map_err(e)?;
        conn.busy_timeout(std::time::Duration::from_secs(10)).map_err(e)?;
        conn.pragma_update(None, "journal_mode", "WAL").map_err(e)?;
        conn.pragma_update(None, "synchronous", self.synchronous).map_err(e)?;
        Ok(conn)
    }
}

struct SqliteWorker {
    conn: rusqlite::Connection,
}

impl SqliteWorker {
    /// `BEGIN IMMEDIATE`, `body`, `COMMIT`; retried when busy. Returns the retries.
    fn txn(
        &mut self,
        body: impl Fn(&rusqlite::Connection) -> rusqlite::Result<()>,
    ) -> Result<u64, String> {
        let mut aborts = 0;
        loop {
            let attempt = (|| -> rusqlite::Result<()> {
                self.conn.prepare_cached("BEGIN IMMEDIATE")?.execute([])?;
                match body(&self.conn) {
                    Ok(()) => self.conn.prepare_cached("COMMIT")?.execute([]).map(|_| ()),
                    Err(e) => {
                        let _ = self.conn.execute_batch("ROLLBACK");
                        Err(e)
                    }
                }
            })();
            match attempt {
                Ok(()) => return Ok(aborts),
                Err(rusqlite::Error::SqliteFailure(f, _))
                    if matches!(
                        f.code,
                        rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
                    ) =>
                {
                    aborts += 1;
                    if !self.conn.is_autocommit() {
                        let _ = self.conn.execute_batch("ROLLBACK");
                    }
                }
                Err(e) => return Err(e.to_string()),
            }
        }
    }
}

impl Worker for SqliteWorker {
    fn increment(&mut self, key: u64) -> Result<u64, String> {
        self.txn(|c| c.prepare_cached(UPDATE)?.execute([key as i64]).map(|_| ()))
    }

    fn read(&mut self, key: u64) -> Result<Option<u64>, String> {
        let mut stmt = self.conn.prepare_cached(READ).map_err(|e| e.to_string())?;
        let mut rows = stmt.query([key as i64]).map_err(|e| e.to_string())?;
        match rows.next().map_err(|e| e.to_string())? {
            Some(r) => r.get::<_, i64>(0).map(|n| Some(n as u64)).map_err(|e| e.to_string()),
            None => Ok(None),
        }
    }

    fn write(&mut self, key: u64, value: u64) -> Result<u64, String> {
        self.txn(|c| c.prepare_cached(WRITE)?.execute([key as i64, value as i64]).map(|_| ()))
    }

    fn transfer(&mut self, from: u64, to: u64, amount: u64) -> Result<u64, String> {
        self.txn(|c| {
            c.prepare_cached(DEBIT)?.execute([from as i64, amount as i64])?;
            c.prepare_cached(CREDIT)?.execute([to as i64, amount as i64]).map(|_| ())
        })
    }

    fn total(&mut self) -> Result<u64, String> {
        self.conn
            .query_row(TOTAL, [], |r| r.get::<_, Option<i64>>(0))
            .map(|n| n.unwrap_or(0) as u64)
            .map_err(|e| e.to_string())
    }

    fn scan(&mut self, start: u64, len: u64) -> Result<u64, String> {
        let e = |e: rusqlite::Error| e.to_string();
        let mut stmt = self.conn.prepare_cached(SCAN).map_err(e)?;
        let keys: Vec<u64> = stmt
            .query_map([start as i64, len as i64], |r| r.get::<_, i64>(0))
            .map_err(e)?
            .map(|k| k.map(|k| k as u64))
            .collect::<rusqlite::Result<_>>()
            .map_err(e)?;
        check_scan(start, len, keys.into_iter())
    }

    fn insert(&mut self, key: u64) -> Result<u64, String> {
        self.txn(|c| c.prepare_cached(INSERT)?.execute([key as i64]).map(|_| ()))
    }

    fn churn_step(&mut self, from: u64, to: u64, step: super::Churn) -> Result<(), String> {
        let statements = churn_sql(from, to, step);
        self.txn(|c| statements.iter().try_for_each(|s| c.execute(s, []).map(|_| ()))).map(|_| ())
    }
}

impl Engine for Sqlite {
    fn via(&self) -> &'static str {
        "sql"
    }

    fn sum(&self) -> Result<u64, String> {
        let conn = self.open()?;
        conn.query_row("SELECT COALESCE(SUM(n), 0) FROM counters", [], |r| r.get::<_, i64>(0))
            .map(|n| n as u64)
            .map_err(|e| e.to_string())
    }

    fn worker(&self) -> Option<Result<Box<dyn Worker>, String>> {
        Some(self.open().map(|conn| Box::new(SqliteWorker { conn }) as Box<dyn Worker>))
    }

    /// One writer at a time (`BEGIN IMMEDIATE`), so every history is serial.
    fn isolation(&self) -> &'static str {
        "serializable"
    }
}
