//! `UPDATE t SET n = n + ? WHERE key = ?` runs as a merge: concurrent ones commit without
//! conflicts and lose nothing; a plain write of the row still conflicts with them; an update of
//! any other shape or a NULL value takes the read-modify-write path. A serializable txn's
//! increment is a merge too: the statement's read of a row it found is not validated, a key that
//! matched nothing and a value the txn read by itself are.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use strata_sql::{Connection, ErrorKind, Value};

fn counters() -> Connection {
    let mut c = Connection::open_in_memory().unwrap();
    c.execute_batch(
        "CREATE TABLE c (id INTEGER PRIMARY KEY, name TEXT, n INTEGER);
         INSERT INTO c VALUES (1, 'one', 10), (2, 'two', NULL), (3, 'three', 0);
         CREATE TABLE k (key TEXT PRIMARY KEY, n INTEGER);
         INSERT INTO k VALUES ('a', 5);",
    )
    .unwrap();
    c
}

fn value(c: &mut Connection, sql: &str) -> Value {
    c.query(sql, &[]).unwrap().rows.remove(0).remove(0)
}

#[test]
fn concurrent_increments_of_one_row_both_commit() {
    let c = counters();
    let (mut a, mut b) = (c.connect().unwrap(), c.connect().unwrap());
    a.execute("BEGIN CONCURRENT", &[]).unwrap();
    b.execute("BEGIN CONCURRENT", &[]).unwrap();
    let n = a.execute("UPDATE c SET n = n + ? WHERE id = ?", &[Value::from(5), Value::from(1)]);
    assert_eq!(n.unwrap(), 1);
    assert_eq!(b.execute("UPDATE c SET n = n - 3 WHERE id = 1", &[]).unwrap(), 1);
    assert_eq!(b.execute("UPDATE k SET n = 1 + n WHERE key = 'a'", &[]).unwrap(), 1);
    // Each sees its own change on its snapshot.
    assert_eq!(value(&mut a, "SELECT n FROM c WHERE id = 1"), Value::Integer(15));
    assert_eq!(value(&mut b, "SELECT n FROM c WHERE id = 1"), Value::Integer(7));
    a.execute("COMMIT", &[]).unwrap();
    b.execute("COMMIT", &[]).unwrap();
    let mut c = c;
    assert_eq!(value(&mut c, "SELECT n FROM c WHERE id = 1"), Value::Integer(12));
    assert_eq!(value(&mut c, "SELECT name FROM c WHERE id = 1"), Value::Text("one".into()));
    assert_eq!(value(&mut c, "SELECT n FROM k WHERE key = 'a'"), Value::Integer(6));
    // No row matched: nothing changes, no row appears.
    assert_eq!(c.execute("UPDATE c SET n = n + 1 WHERE id = 99", &[]).unwrap(), 0);
    assert_eq!(value(&mut c, "SELECT COUNT(*) FROM c"), Value::Integer(3));
}

#[test]
fn a_plain_write_of_the_row_still_conflicts_with_an_increment() {
    let c = counters();
    let (mut a, mut b) = (c.connect().unwrap(), c.connect().unwrap());
    a.execute("BEGIN CONCURRENT", &[]).unwrap();
    b.execute("BEGIN CONCURRENT", &[]).unwrap();
    a.execute("UPDATE c SET n = n + 1 WHERE id = 3", &[]).unwrap();
    b.execute("UPDATE c SET name = 'drei' WHERE id = 3", &[]).unwrap();
    b.execute("COMMIT", &[]).unwrap();
    let err = a.execute("COMMIT", &[]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");
    let mut c = c;
    assert_eq!(value(&mut c, "SELECT n FROM c WHERE id = 3"), Value::Integer(0));
}

#[test]
fn other_shapes_read_modify_write_as_before() {
    let mut c = counters();
    // NULL + 1 is NULL; a filter on another column reads it; a REAL delta is type-checked.
    assert_eq!(c.execute("UPDATE c SET n = n + 1 WHERE id = 2", &[]).unwrap(), 1);
    assert_eq!(value(&mut c, "SELECT n FROM c WHERE id = 2"), Value::Null);
    c.execute("UPDATE c SET n = n + 1 WHERE id = 3 AND n = 0", &[]).unwrap();
    c.execute("UPDATE c SET n = n + 1 WHERE id = 3 AND n = 0", &[]).unwrap();
    assert_eq!(value(&mut c, "SELECT n FROM c WHERE id = 3"), Value::Integer(1));
    let err = c.execute("UPDATE c SET n = n + 0.5 WHERE id = 1", &[]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Type, "a REAL delta is checked as before: {err}");
    assert_eq!(value(&mut c, "SELECT n FROM c WHERE id = 1"), Value::Integer(10));
    // Overflow on the row the statement sees fails the statement, as the plain form does.
    c.execute("UPDATE c SET n = 9223372036854775807 WHERE id = 3", &[]).unwrap();
    let err = c.execute("UPDATE c SET n = n + 1 WHERE id = 3", &[]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Range, "{err}");
    assert!(err.to_string().contains("overflow"), "{err}");
}

const SERIALIZABLE: &str = "BEGIN TRANSACTION ISOLATION LEVEL SERIALIZABLE";

#[test]
fn serializable_increments_of_one_row_all_commit() {
    let c = counters();
    let (mut a, mut b, mut s) = (c.connect().unwrap(), c.connect().unwrap(), c.connect().unwrap());
    a.execute(SERIALIZABLE, &[]).unwrap();
    b.execute(SERIALIZABLE, &[]).unwrap();
    s.execute("BEGIN CONCURRENT", &[]).unwrap();
    assert_eq!(a.execute("UPDATE c SET n = n + 1 WHERE id = 1", &[]).unwrap(), 1);
    assert_eq!(b.execute("UPDATE c SET n = n + 10 WHERE id = 1", &[]).unwrap(), 1);
    assert_eq!(b.execute("UPDATE k SET n = n - 1 WHERE key = 'a'", &[]).unwrap(), 1);
    assert_eq!(s.execute("UPDATE c SET n = n + 100 WHERE id = 1", &[]).unwrap(), 1);
    s.execute("COMMIT", &[]).unwrap();
    a.execute("COMMIT", &[]).expect("a serializable increment is not validated for its row");
    b.execute("COMMIT", &[]).expect("nor through a PRIMARY KEY other than the rowid");
    let mut c = c;
    assert_eq!(value(&mut c, "SELECT n FROM c WHERE id = 1"), Value::Integer(121));
    assert_eq!(value(&mut c, "SELECT n FROM k WHERE key = 'a'"), Value::Integer(4));
}

/// The statement's outcome (no row changed) depends on the key's absence, so that read is
/// validated: a row inserted there after the snapshot fails the commit.
#[test]
fn a_serializable_increment_that_matched_nothing_is_validated() {
    let c = counters();
    let (mut a, mut b) = (c.connect().unwrap(), c.connect().unwrap());
    b.execute(SERIALIZABLE, &[]).unwrap();
    assert_eq!(b.execute("UPDATE c SET n = n + 1 WHERE id = 99", &[]).unwrap(), 0);
    b.execute("UPDATE c SET n = n + 1 WHERE id = 3", &[]).unwrap(); // so that b writes
    a.execute("INSERT INTO c VALUES (99, 'new', 0)", &[]).unwrap();
    let err = b.execute("COMMIT", &[]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::SerializationFailure, "{err}");
}

/// A value the txn read by itself (a SELECT before the increment) stays validated: only the
/// increment statement's own read of the row is waived.
#[test]
fn a_serializable_txn_that_read_the_value_is_still_validated() {
    let c = counters();
    let (mut a, mut b) = (c.connect().unwrap(), c.connect().unwrap());
    b.execute(SERIALIZABLE, &[]).unwrap();
    assert_eq!(value(&mut b, "SELECT n FROM c WHERE id = 1"), Value::Integer(10));
    b.execute("UPDATE c SET n = n + 1 WHERE id = 1", &[]).unwrap();
    a.execute("UPDATE c SET n = n + 5 WHERE id = 1", &[]).unwrap();
    let err = b.execute("COMMIT", &[]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::SerializationFailure, "{err}");
    let mut c = c;
    assert_eq!(value(&mut c, "SELECT n FROM c WHERE id = 1"), Value::Integer(15));
}

/// More threads than cores add to four rows with no retries at all.
#[test]
fn threads_incrementing_never_conflict() {
    let mut c = counters();
    let (threads, per_thread) = (6, 200);
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let mut conn = c.connect().unwrap();
            std::thread::spawn(move || {
                let stmt = conn.prepare("UPDATE c SET n = n + 1 WHERE id = ?").unwrap();
                for i in 0..per_thread {
                    conn.execute("BEGIN CONCURRENT", &[]).unwrap();
                    stmt.execute(&mut conn, &[Value::from(1 + i % 2 * 2)]).unwrap();
                    conn.execute("COMMIT", &[]).expect("an increment never conflicts");
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let total = value(&mut c, "SELECT SUM(n) FROM c WHERE id <> 2");
    assert_eq!(total, Value::Integer(10 + threads * per_thread));
}
