//! The Rust API: parameters and typed values, prepared statements, sibling connections on
//! threads, durability across reopen, and hostile input (never a panic).
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use strata_sql::{Connection, ErrorKind, Value};

#[test]
fn parameters_bind_typed_values_exactly() {
    let mut c = Connection::open_in_memory().unwrap();
    c.execute("CREATE TABLE v (i INTEGER, r REAL, t TEXT, b BLOB)", &[]).unwrap();
    let ins = c.prepare("INSERT INTO v VALUES (?, ?, ?, ?)").unwrap();
    for (i, r, t, b) in [
        (i64::MAX, 0.5, "max", vec![0u8, 255]),
        (i64::MIN, -1e300, "min", vec![]),
        (0, 0.1, "", vec![1, 2, 3]),
    ] {
        let n = ins
            .execute(&mut c, &[Value::from(i), Value::from(r), Value::from(t), Value::from(b)])
            .unwrap();
        assert_eq!(n, 1);
    }
    ins.execute(&mut c, &[Value::Null, Value::Null, Value::Null, Value::Null]).unwrap();
    let rows = c
        .query(
            "SELECT i, r, t, b FROM v WHERE i = ?1 OR i = ?2 ORDER BY i",
            &[Value::from(i64::MIN), Value::from(i64::MAX)],
        )
        .unwrap();
    assert_eq!(rows.columns, vec!["i", "r", "t", "b"]);
    assert_eq!(
        rows.rows,
        vec![
            vec![
                Value::Integer(i64::MIN),
                Value::Real(-1e300),
                Value::from("min"),
                Value::Blob(vec![])
            ],
            vec![
                Value::Integer(i64::MAX),
                Value::Real(0.5),
                Value::from("max"),
                Value::Blob(vec![0, 255])
            ],
        ]
    );
    // ?NNN may repeat and skip; the count is the highest number.
    let r = c.query("SELECT ?2 + ?2, ?1", &[Value::from("a"), Value::from(21)]).unwrap();
    assert_eq!(r.rows, vec![vec![Value::Integer(42), Value::from("a")]]);
    assert_eq!(c.query("SELECT ?, ?", &[Value::from(1)]).unwrap_err().kind(), ErrorKind::Params);
    assert_eq!(c.execute("SELECT 1", &[Value::from(1)]).unwrap_err().kind(), ErrorKind::Params);
    assert_eq!(
        c.query("SELECT ? + 1", &[Value::from(i64::MAX)]).unwrap_err().kind(),
        ErrorKind::Range,
        "overflow is an error, never a silent f64"
    );
    assert_eq!(c.query("SELECT ?1000", &[]).unwrap_err().kind(), ErrorKind::Params);
}

#[test]
fn prepared_statements_are_parsed_once_and_follow_schema_changes() {
    let mut c = Connection::open_in_memory().unwrap();
    c.execute("CREATE TABLE t (a INTEGER)", &[]).unwrap();
    let ins = c.prepare("INSERT INTO t VALUES (?)").unwrap();
    for i in 0..100 {
        ins.execute(&mut c, &[Value::from(i)]).unwrap();
    }
    let sum = c.prepare("SELECT SUM(a) FROM t").unwrap();
    assert_eq!(sum.query(&mut c, &[]).unwrap().rows, vec![vec![Value::Integer(4950)]]);
    // The same statement, re-created with another column type: bound again at execution.
    c.execute("DROP TABLE t", &[]).unwrap();
    c.execute("CREATE TABLE t (a TEXT)", &[]).unwrap();
    assert_eq!(ins.execute(&mut c, &[Value::from(1)]).unwrap_err().kind(), ErrorKind::Type);
    ins.execute(&mut c, &[Value::from("x")]).unwrap();
    assert_eq!(sum.query(&mut c, &[]).unwrap_err().kind(), ErrorKind::Type);
}

#[test]
fn sibling_connections_on_threads_never_lose_an_increment() {
    let mut c = Connection::open_in_memory().unwrap();
    c.execute("CREATE TABLE counters (id INTEGER PRIMARY KEY, n INTEGER NOT NULL)", &[]).unwrap();
    for id in 0..4 {
        c.execute("INSERT INTO counters VALUES (?, 0)", &[Value::from(id)]).unwrap();
    }
    c.execute("CREATE TABLE log (who INTEGER, seq INTEGER)", &[]).unwrap();
    let threads = 4;
    let per_thread = 300;
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let mut conn = c.connect().unwrap();
            std::thread::spawn(move || {
                let mut conflicts = 0;
                for i in 0..per_thread {
                    loop {
                        conn.execute("BEGIN CONCURRENT", &[]).unwrap();
                        let step = conn
                            .execute(
                                "UPDATE counters SET n = n + 1 WHERE id = ?",
                                &[Value::from(i % 4)],
                            )
                            .and_then(|_| {
                                conn.execute(
                                    "INSERT INTO log (who, seq) VALUES (?, ?)",
                                    &[Value::from(t), Value::from(i)],
                                )
                            })
                            .and_then(|_| conn.execute("COMMIT", &[]));
                        match step {
                            Ok(_) => break,
                            Err(e) if e.is_retryable() => {
                                conflicts += 1;
                                if conn.in_transaction() {
                                    conn.execute("ROLLBACK", &[]).unwrap();
                                }
                            }
                            Err(e) => panic!("thread {t}: {e}"),
                        }
                    }
                }
                conflicts
            })
        })
        .collect();
    let conflicts: i64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
    let total = c.query("SELECT SUM(n), COUNT(*) FROM counters", &[]).unwrap();
    assert_eq!(total.rows, vec![vec![Value::Integer(threads * per_thread), Value::Integer(4)]]);
    let log = c.query("SELECT COUNT(*), COUNT(rowid) FROM log", &[]).unwrap();
    assert_eq!(log.rows[0][0], Value::Integer(threads * per_thread), "one log row per commit");
    eprintln!("{conflicts} conflicts retried");
}

#[test]
fn concurrent_autocommit_inserts_get_distinct_rowids() {
    let mut c = Connection::open_in_memory().unwrap();
    c.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, who INTEGER)", &[]).unwrap();
    let handles: Vec<_> = (0..4)
        .map(|t| {
            let mut conn = c.connect().unwrap();
            std::thread::spawn(move || {
                for _ in 0..250 {
                    conn.execute("INSERT INTO t (who) VALUES (?)", &[Value::from(t)]).unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let r = c.query("SELECT COUNT(*), MIN(id), MAX(id) FROM t", &[]).unwrap();
    assert_eq!(r.rows, vec![vec![Value::Integer(1000), Value::Integer(1), Value::Integer(1000)]]);
}

#[test]
fn tables_and_rows_survive_reopen() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("sql-reopen");
    {
        let mut c = Connection::open(&dir).unwrap();
        c.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, s TEXT NOT NULL)", &[]).unwrap();
        c.execute("INSERT INTO t (s) VALUES ('a'), ('b'), ('c')", &[]).unwrap();
        c.execute("DELETE FROM t WHERE id = 3", &[]).unwrap();
        c.database().close().unwrap();
    }
    let mut c = Connection::open(&dir).unwrap();
    let r = c.query("SELECT id, s FROM t ORDER BY id", &[]).unwrap();
    assert_eq!(
        r.rows,
        vec![vec![Value::from(1), Value::from("a")], vec![Value::from(2), Value::from("b")]]
    );
    // The rowid counter restarts above the largest rowid kept.
    c.execute("INSERT INTO t (s) VALUES ('d')", &[]).unwrap();
    let r = c.query("SELECT id FROM t WHERE s = 'd'", &[]).unwrap();
    assert_eq!(r.rows, vec![vec![Value::from(3)]]);
    assert_eq!(
        c.execute("INSERT INTO t (s) VALUES (NULL)", &[]).unwrap_err().kind(),
        ErrorKind::Constraint
    );
    c.database().close().unwrap();
}

#[test]
fn hostile_input_gets_errors_never_panics() {
    let mut c = Connection::open_in_memory().unwrap();
    c.execute("CREATE TABLE t (a INTEGER)", &[]).unwrap();
    // Deep nesting and long operator chains.
    let nested = format!("SELECT {}1{}", "(".repeat(5000), ")".repeat(5000));
    assert_eq!(c.query(&nested, &[]).unwrap_err().kind(), ErrorKind::Parse);
    let chain = |n: usize| format!("SELECT {}", vec!["1"; n].join("+"));
    assert_eq!(c.query(&chain(200), &[]).unwrap().rows, vec![vec![Value::Integer(200)]]);
    assert_eq!(c.query(&chain(201), &[]).unwrap_err().kind(), ErrorKind::Parse, "deeper than 200");
    assert_eq!(c.query(&chain(9_000), &[]).unwrap_err().kind(), ErrorKind::Parse);
    let deep_group = format!("SELECT COUNT(*) FROM t GROUP BY {}", vec!["a"; 9_000].join("+"));
    assert_eq!(c.query(&deep_group, &[]).unwrap_err().kind(), ErrorKind::Parse);
    assert_eq!(
        c.query(&chain(100_000), &[]).unwrap_err().kind(),
        ErrorKind::Parse,
        "too many operators"
    );
    let nots = format!("SELECT {}1", "NOT ".repeat(3000));
    assert!(c.query(&nots, &[]).is_err());
    // Huge literals and strings.
    assert_eq!(
        c.query(&format!("SELECT {}", "9".repeat(400)), &[]).unwrap_err().kind(),
        ErrorKind::Range
    );
    assert_eq!(c.query("SELECT 1e999", &[]).unwrap_err().kind(), ErrorKind::Range);
    let big = "x".repeat(STATEMENT_BYTES);
    assert_eq!(c.query(&format!("SELECT '{big}'"), &[]).unwrap_err().kind(), ErrorKind::Parse);
    // Garbage.
    for junk in [
        "",
        ";",
        "\0\0\0",
        "SELECT '",
        "SELECT \"",
        "INSERT INTO",
        "CREATE TABLE (",
        "))))",
        "PRAGMA",
        "PRAGMA x = ;",
        "BEGIN CONCURRENT EXTRA",
    ] {
        let _ = c.execute(junk, &[]);
    }
}

const STATEMENT_BYTES: usize = strata_sql::STATEMENT_BYTES_MAX;

mod fuzz {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]
        #[test]
        fn arbitrary_text_never_panics(s in ".{0,80}") {
            let mut c = Connection::open_in_memory().unwrap();
            c.execute("CREATE TABLE t (a INTEGER, b TEXT)", &[]).unwrap();
            let _ = c.execute(&s, &[]);
            let _ = c.query(&format!("SELECT {s} FROM t"), &[]);
            let _ = c.execute(&format!("INSERT INTO t VALUES ({s})"), &[]);
        }

        #[test]
        fn arbitrary_token_soup_never_panics(words in proptest::collection::vec(prop_oneof![
            Just("SELECT"), Just("FROM"), Just("WHERE"), Just("t"), Just("a"), Just("b"), Just("("),
            Just(")"), Just(","), Just("+"), Just("-"), Just("*"), Just("/"), Just("%"), Just("||"),
            Just("="), Just("<"), Just("AND"), Just("OR"), Just("NOT"), Just("NULL"), Just("IS"),
            Just("IN"), Just("BETWEEN"), Just("LIKE"), Just("1"), Just("'x'"), Just("?"),
            Just("COUNT"), Just("SUM"), Just("GROUP"), Just("BY"), Just("ORDER"), Just("LIMIT"),
            Just("INSERT"), Just("INTO"), Just("VALUES"), Just("UPDATE"), Just("SET"),
            Just("DELETE"), Just("9223372036854775807"), Just("1.5"),
        ], 0..30)) {
            let mut c = Connection::open_in_memory().unwrap();
            c.execute("CREATE TABLE t (a INTEGER, b TEXT)", &[]).unwrap();
            c.execute("INSERT INTO t VALUES (1, 'x'), (NULL, NULL)", &[]).unwrap();
            let _ = c.execute(&words.join(" "), &[Value::from(3)]);
        }
    }
}

#[test]
fn connections_and_statements_move_between_threads() {
    fn is_send<T: Send>() {}
    is_send::<Connection>();
    is_send::<strata_sql::Statement>();
    is_send::<strata_sql::Rows>();
    is_send::<strata_sql::Error>();
    let mut c = Connection::open_in_memory().unwrap();
    let stmt = c.prepare("SELECT 40 + 2").unwrap();
    let rows = std::thread::spawn(move || stmt.query(&mut c, &[]).unwrap()).join().unwrap();
    assert_eq!(rows.rows, vec![vec![Value::Integer(42)]]);
}

#[test]
fn a_database_with_an_earlier_primary_key_format_is_refused() {
    // Earlier builds kept PRIMARY KEY tables as `sql-pk:<name>` with keys that do not sort like
    // their values; reading them as the current format would break lookups and uniqueness.
    let db = strata::Database::in_memory();
    db.create_table("sql-pk:users").unwrap();
    let err = Connection::from_database(db).unwrap_err();
    assert_eq!(err.kind(), strata_sql::ErrorKind::Engine, "{err}");
    assert!(err.to_string().contains("earlier Strata"), "{err}");
}

/// DDL racing DML (issue #13 §4): a txn that wrote rows of a table must not commit once that
/// table was dropped (and re-created under the same name) after its snapshot — at either
/// isolation level, on disk, across a reopen. Before the fix the row landed in the new table,
/// where every SELECT failed with "corrupt row encoding".
#[test]
fn a_write_never_lands_in_a_table_dropped_or_recreated_after_the_txn_began() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("sql-ddl-race");
    for begin in ["BEGIN", "BEGIN ISOLATION LEVEL SERIALIZABLE"] {
        let mut a = Connection::open(&dir).unwrap();
        let mut b = a.connect().unwrap();
        a.execute("CREATE TABLE acc (id INTEGER PRIMARY KEY, bal INTEGER NOT NULL)", &[]).unwrap();
        a.execute("INSERT INTO acc VALUES (1, 100)", &[]).unwrap();
        a.execute(begin, &[]).unwrap();
        a.execute("INSERT INTO acc (bal) VALUES (5)", &[]).unwrap();
        a.execute("UPDATE acc SET bal = bal + 1 WHERE id = 1", &[]).unwrap();
        b.execute("DROP TABLE acc", &[]).unwrap();
        b.execute("CREATE TABLE acc (x TEXT)", &[]).unwrap();
        let err = a.execute("COMMIT", &[]).unwrap_err();
        assert!(err.is_retryable(), "{begin}: {err}");
        assert!(!a.in_transaction(), "{begin}: the failed commit rolled back");
        let rows = b.query("SELECT x FROM acc", &[]).unwrap();
        assert!(rows.rows.is_empty(), "{begin}: the old txn's rows are not in the new table");
        b.execute("INSERT INTO acc VALUES ('new')", &[]).unwrap();
        a.database().close().unwrap();
        drop((a, b));
        let mut c = Connection::open(&dir).unwrap();
        let rows = c.query("SELECT x FROM acc", &[]).unwrap();
        assert_eq!(rows.rows, vec![vec![Value::from("new")]], "{begin}: after reopen");
        c.execute("DROP TABLE acc", &[]).unwrap();
        c.database().close().unwrap();
        drop(c);
        let report = strata::check(&dir).unwrap();
        assert!(!report.is_corrupt(), "{begin}: {:?}", report.problems);
    }
}

/// Writers of one table do not conflict through the schema guard: it is validated, not written.
#[test]
fn writers_of_one_table_do_not_conflict_through_the_schema_guard() {
    let mut a = Connection::open_in_memory().unwrap();
    let mut b = a.connect().unwrap();
    a.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v INTEGER)", &[]).unwrap();
    a.execute("BEGIN", &[]).unwrap();
    b.execute("BEGIN", &[]).unwrap();
    a.execute("INSERT INTO t VALUES (1, 1)", &[]).unwrap();
    b.execute("INSERT INTO t VALUES (2, 2)", &[]).unwrap();
    a.execute("COMMIT", &[]).unwrap();
    b.execute("COMMIT", &[]).unwrap();
    assert_eq!(a.query("SELECT COUNT(*) FROM t", &[]).unwrap().rows, vec![vec![Value::from(2)]]);
}

/// An over-long table name is reported in SQL terms (issue #13 §4: the error named the internal
/// `sql:` engine table).
#[test]
fn a_table_name_too_long_is_reported_without_internal_prefixes() {
    let mut c = Connection::open_in_memory().unwrap();
    let long = "t".repeat(strata_sql::SQL_TABLE_NAME_BYTES_MAX + 1);
    let err = c.execute(&format!("CREATE TABLE {long} (a INTEGER PRIMARY KEY)"), &[]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Schema, "{err}");
    assert!(!err.message().contains("sql:") && !err.message().contains("sql-pkey:"), "{err}");
    let fits = "t".repeat(strata_sql::SQL_TABLE_NAME_BYTES_MAX);
    c.execute(&format!("CREATE TABLE {fits} (a INTEGER, b TEXT, PRIMARY KEY (b))"), &[]).unwrap();
    c.execute(&format!("INSERT INTO {fits} VALUES (1, 'x')"), &[]).unwrap();
}

/// `txn_read_ts` names the open txn's snapshot and `last_commit_ts` the last explicit commit, in
/// the engine's order: a txn that began after a commit sees it, and one that began before does not.
#[test]
fn txn_timestamps_follow_the_engine() {
    let mut a = Connection::open_in_memory().unwrap();
    let mut b = a.connect().unwrap();
    a.execute("CREATE TABLE t (k INTEGER PRIMARY KEY, n INTEGER)", &[]).unwrap();
    assert_eq!(a.txn_read_ts(), None);
    assert_eq!(a.last_commit_ts(), None, "autocommit statements set no commit timestamp");
    b.execute("BEGIN CONCURRENT", &[]).unwrap();
    let before = b.txn_read_ts().unwrap();
    a.execute("BEGIN", &[]).unwrap();
    a.execute("INSERT INTO t VALUES (1, 10)", &[]).unwrap();
    a.execute("COMMIT", &[]).unwrap();
    let committed = a.last_commit_ts().unwrap();
    assert_eq!(a.txn_read_ts(), None);
    assert!(committed > before);
    let seen = b.query("SELECT n FROM t WHERE k = 1", &[]).unwrap();
    assert!(seen.rows.is_empty(), "a snapshot below the commit does not see it");
    b.execute("ROLLBACK", &[]).unwrap();
    b.execute("BEGIN", &[]).unwrap();
    assert!(b.txn_read_ts().unwrap() >= committed);
    let seen = b.query("SELECT n FROM t WHERE k = 1", &[]).unwrap();
    assert_eq!(seen.rows, vec![vec![Value::Integer(10)]]);
    b.execute("COMMIT", &[]).unwrap();
    assert!(b.last_commit_ts().unwrap() >= committed, "a read-only commit returns its snapshot");
}
