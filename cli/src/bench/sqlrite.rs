//! `sqlrite`: SQLRite (the `sqlrite-engine` crate), the engine Strata's design replaces, through
//! its real MVCC path: `PRAGMA journal_mode = mvcc`, `BEGIN CONCURRENT` on sibling connections
//! (`Connection::connect`, one per thread), `COMMIT` validated against concurrent commits, and a
//! retry on its retryable errors (`Busy`, `BusySnapshot`). Statements are literal SQL through
//! `Connection::execute` (the path `BEGIN CONCURRENT` intercepts), reads through `prepare` +
//! `query` (which read the open txn's snapshot). In memory only: SQLRite's durability is not
//! what is being compared. The test `a_same_row_conflict_is_reported` checks that writes really
//! go through its validation.

use super::sql::{literal, preload_statements};
use super::{check_scan, Engine, Worker};
use sqlrite::Connection;
use std::sync::Mutex;

fn err(e: sqlrite::SQLRiteError) -> String {
    format!("sqlrite: {e}")
}

pub struct Sqlrite {
    root: Mutex<Connection>,
}

impl Sqlrite {
    pub fn new(keys: u64, initial: u64) -> Result<Self, String> {
        let mut root = Connection::open_in_memory().map_err(err)?;
        root.execute("PRAGMA journal_mode = mvcc").map_err(err)?;
        root.execute(literal::CREATE).map_err(err)?;
        for statement in preload_statements(keys, initial) {
            root.execute(&statement).map_err(err)?;
        }
        Ok(Sqlrite { root: Mutex::new(root) })
    }
}

/// The first column of the first row as an integer (`None`: no row or NULL).
fn one_integer(conn: &mut Connection, sql: &str) -> Result<Option<i64>, String> {
    let stmt = conn.prepare(sql).map_err(err)?;
    let mut rows = stmt.query().map_err(err)?;
    match rows.next().map_err(err)? {
        Some(row) => row.get::<Option<i64>>(0).map_err(err),
        None => Ok(None),
    }
}

struct SqlriteWorker {
    conn: Connection,
}

impl SqlriteWorker {
    /// `BEGIN CONCURRENT`, the statements, `COMMIT`; retried on a retryable error. Returns the
    /// aborted attempts.
    fn txn(&mut self, statements: &[String]) -> Result<u64, String> {
        let mut aborts = 0;
        loop {
            let attempt = (|| {
                self.conn.execute("BEGIN CONCURRENT")?;
                for s in statements {
                    self.conn.execute(s)?;
                }
                self.conn.execute("COMMIT")
            })();
            match attempt {
                Ok(_) => return Ok(aborts),
                Err(e) if e.is_retryable() => {
                    aborts += 1;
                    if self.conn.concurrent_tx_is_open() {
                        self.conn.execute("ROLLBACK").map_err(err)?;
                    }
                }
                Err(e) => {
                    if self.conn.concurrent_tx_is_open() {
                        let _ = self.conn.execute("ROLLBACK");
                    }
                    return Err(err(e));
                }
            }
        }
    }
}

impl Worker for SqlriteWorker {
    fn increment(&mut self, key: u64) -> Result<u64, String> {
        self.txn(&literal::increment(key))
    }

    fn read(&mut self, key: u64) -> Result<Option<u64>, String> {
        let sql = literal::read(key);
        Ok(one_integer(&mut self.conn, &sql)?.map(|n| n as u64))
    }

    fn write(&mut self, key: u64, value: u64) -> Result<u64, String> {
        self.txn(&literal::write(key, value))
    }

    fn transfer(&mut self, from: u64, to: u64, amount: u64) -> Result<u64, String> {
        self.txn(&literal::transfer(from, to, amount))
    }

    fn total(&mut self) -> Result<u64, String> {
        Ok(one_integer(&mut self.conn, literal::TOTAL)?.unwrap_or(0) as u64)
    }

    fn scan(&mut self, start: u64, len: u64) -> Result<u64, String> {
        let sql = literal::scan(start, len);
        let stmt = self.conn.prepare(&sql).map_err(err)?;
        let mut rows = stmt.query().map_err(err)?;
        let mut keys = Vec::new();
        while let Some(row) = rows.next().map_err(err)? {
            keys.push(row.get::<i64>(0).map_err(err)? as u64);
        }
        check_scan(start, len, keys.into_iter())
    }

    fn insert(&mut self, key: u64) -> Result<u64, String> {
        self.txn(&literal::insert(key))
    }

    fn churn_step(&mut self, from: u64, to: u64, step: super::Churn) -> Result<(), String> {
        self.txn(&super::sql::churn_sql(from, to, step)).map(|_| ())
    }
}

impl Engine for Sqlrite {
    fn via(&self) -> &'static str {
        "sql"
    }

    fn sum(&self) -> Result<u64, String> {
        let mut root = self.root.lock().map_err(|_| "poisoned")?;
        Ok(one_integer(&mut root, literal::TOTAL)?.unwrap_or(0) as u64)
    }

    fn worker(&self) -> Option<Result<Box<dyn Worker>, String>> {
        Some(
            self.root
                .lock()
                .map_err(|_| "poisoned".to_string())
                .map(|root| Box::new(SqlriteWorker { conn: root.connect() }) as Box<dyn Worker>),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two concurrent txns on one row: SQLRite must report the second commit as a retryable
    /// conflict (so the benchmark measures its validated MVCC path, not a bypass).
    #[test]
    fn a_same_row_conflict_is_reported() {
        let engine = Sqlrite::new(4, 0).unwrap();
        let root = engine.root.lock().unwrap();
        let (mut a, mut b) = (root.connect(), root.connect());
        drop(root);
        a.execute("BEGIN CONCURRENT").unwrap();
        b.execute("BEGIN CONCURRENT").unwrap();
        a.execute("UPDATE counters SET n = n + 1 WHERE id = 1").unwrap();
        b.execute("UPDATE counters SET n = n + 1 WHERE id = 1").unwrap();
        a.execute("COMMIT").unwrap();
        let e = b.execute("COMMIT").unwrap_err();
        assert!(e.is_retryable(), "{e}");
        assert_eq!(engine.sum().unwrap(), 1, "the loser's increment is not applied");
    }
}
