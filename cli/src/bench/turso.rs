//! `turso`: Turso's MVCC (the `turso` crate, behind the `turso` cargo feature of `strata-cli`:
//! its build is about 330 crates): an in-memory database in `PRAGMA journal_mode = 'mvcc'`,
//! one connection per thread, `BEGIN CONCURRENT`, and a retry on `Busy`/`BusySnapshot` and on
//! its write-write conflict. Its API is async; each call is driven to completion on the calling
//! thread (`futures::executor::block_on`: Turso does its own I/O, no runtime is needed). The test
//! `a_same_row_conflict_is_reported` checks that writes go through its validation.

use super::sql::{literal, preload_statements};
use super::{check_scan, Churn, Engine, Worker};
use futures::executor::block_on;
use std::sync::Mutex;

fn err(e: turso::Error) -> String {
    format!("turso: {e}")
}

/// Whether re-running the txn may succeed.
fn retryable(e: &turso::Error) -> bool {
    match e {
        turso::Error::Busy(_) | turso::Error::BusySnapshot(_) => true,
        other => {
            let text = other.to_string().to_ascii_lowercase();
            text.contains("conflict") || text.contains("busy")
        }
    }
}

pub struct Turso {
    db: turso::Database,
    root: Mutex<turso::Connection>,
}

impl Turso {
    pub fn new(keys: u64, initial: u64) -> Result<Self, String> {
        let db = block_on(turso::Builder::new_local(":memory:").build()).map_err(err)?;
        let root = db.connect().map_err(err)?;
        // The PRAGMA answers with the mode now in force: insist on MVCC.
        let mode = block_on(async {
            let mut rows = root.query("PRAGMA journal_mode = 'mvcc'", ()).await?;
            let mut mode = None;
            while let Some(row) = rows.next().await? {
                if let turso::Value::Text(t) = row.get_value(0)? {
                    mode = Some(t);
                }
            }
            Ok::<_, turso::Error>(mode)
        })
        .map_err(err)?;
        if mode.as_deref() != Some("mvcc") {
            return Err(format!("turso: journal_mode is {mode:?}, not mvcc"));
        }
        block_on(root.execute(literal::CREATE, ())).map_err(err)?;
        for statement in preload_statements(keys, initial) {
            block_on(root.execute(statement, ())).map_err(err)?;
        }
        Ok(Turso { db, root: Mutex::new(root) })
    }
}

fn one_integer(conn: &turso::Connection, sql: &str) -> Result<Option<i64>, String> {
    block_on(async {
        let mut rows = conn.query(sql, ()).await?;
        match rows.next().await? {
            Some(row) => match row.get_value(0)? {
                turso::Value::Integer(n) => Ok(Some(n)),
                _ => Ok(None),
            },
            None => Ok(None),
        }
    })
    .map_err(err)
}

struct TursoWorker {
    conn: turso::Connection,
}

impl TursoWorker {
    /// `BEGIN CONCURRENT`, the statements, `COMMIT`; retried on a retryable error. Returns the
    /// aborted attempts.
    fn txn(&mut self, statements: &[String]) -> Result<u64, String> {
        let mut aborts = 0;
        loop {
            let attempt: Result<(), turso::Error> = block_on(async {
                self.conn.execute("BEGIN CONCURRENT", ()).await?;
                for s in statements {
                    self.conn.execute(s, ()).await?;
                }
                self.conn.execute("COMMIT", ()).await?;
                Ok(())
            });
            match attempt {
                Ok(()) => return Ok(aborts),
                Err(e) => {
                    // Whatever failed, leave no txn open.
                    let _ = block_on(self.conn.execute("ROLLBACK", ()));
                    if retryable(&e) {
                        aborts += 1;
                    } else {
                        return Err(err(e));
                    }
                }
            }
        }
    }
}

impl Worker for TursoWorker {
    fn increment(&mut self, key: u64) -> Result<u64, String> {
        self.txn(&literal::increment(key))
    }

    fn read(&mut self, key: u64) -> Result<Option<u64>, String> {
        let sql = literal::read(key);
        Ok(one_integer(&self.conn, &sql)?.map(|n| n as u64))
    }

    fn write(&mut self, key: u64, value: u64) -> Result<u64, String> {
        self.txn(&literal::write(key, value))
    }

    fn transfer(&mut self, from: u64, to: u64, amount: u64) -> Result<u64, String> {
        self.txn(&literal::transfer(from, to, amount))
    }

    fn total(&mut self) -> Result<u64, String> {
        Ok(one_integer(&self.conn, literal::TOTAL)?.unwrap_or(0) as u64)
    }

    fn scan(&mut self, start: u64, len: u64) -> Result<u64, String> {
        let sql = literal::scan(start, len);
        let keys: Vec<u64> = block_on(async {
            let mut rows = self.conn.query(sql, ()).await?;
            let mut keys = Vec::new();
            while let Some(row) = rows.next().await? {
                if let turso::Value::Integer(k) = row.get_value(0)? {
                    keys.push(k as u64);
                }
            }
            Ok::<_, turso::Error>(keys)
        })
        .map_err(err)?;
        check_scan(start, len, keys.into_iter())
    }

    fn insert(&mut self, key: u64) -> Result<u64, String> {
        self.txn(&literal::insert(key))
    }

    fn churn_step(&mut self, from: u64, to: u64, step: Churn) -> Result<(), String> {
        self.txn(&super::sql::churn_sql(from, to, step)).map(|_| ())
    }
}

impl Engine for Turso {
    fn via(&self) -> &'static str {
        "sql"
    }

    fn sum(&self) -> Result<u64, String> {
        let root = self.root.lock().map_err(|_| "poisoned")?;
        Ok(one_integer(&root, literal::TOTAL)?.unwrap_or(0) as u64)
    }

    fn worker(&self) -> Option<Result<Box<dyn Worker>, String>> {
        Some(
            self.db
                .connect()
                .map_err(err)
                .map(|conn| Box::new(TursoWorker { conn }) as Box<dyn Worker>),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two concurrent txns on one row: Turso must report the second as a retryable conflict.
    #[test]
    fn a_same_row_conflict_is_reported() {
        let engine = Turso::new(4, 0).unwrap();
        let (a, b) = (engine.db.connect().unwrap(), engine.db.connect().unwrap());
        block_on(a.execute("BEGIN CONCURRENT", ())).unwrap();
        block_on(b.execute("BEGIN CONCURRENT", ())).unwrap();
        block_on(a.execute("UPDATE counters SET n = n + 1 WHERE id = 1", ())).unwrap();
        // Turso may refuse b's write at once (a holds the row) or at b's commit.
        let b_write = block_on(b.execute("UPDATE counters SET n = n + 1 WHERE id = 1", ()));
        block_on(a.execute("COMMIT", ())).unwrap();
        let second = b_write.and_then(|_| block_on(b.execute("COMMIT", ())));
        let e = second.expect_err("the second writer of one row must fail");
        assert!(retryable(&e), "{e}");
        let _ = block_on(b.execute("ROLLBACK", ()));
        assert_eq!(engine.sum().unwrap(), 1);
    }
}
