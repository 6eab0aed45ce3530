//! Differential property test: random INSERT/UPDATE/DELETE/SELECT sequences over the supported
//! subset run on Strata and on SQLite (`rusqlite`, bundled), and every statement must give the
//! same outcome — the same rows (values and order), the same number of rows changed, or an
//! error on both sides. Values are generated well-typed (Strata has no type affinity) and reals
//! are binary fractions, so sums are exact on both. Inserts give their rowids: SQLite reuses
//! the largest rowid + 1 after deletes, Strata never reuses one (as SQLite's AUTOINCREMENT),
//! so automatic rowids legitimately differ. `PROPTEST_CASES=N` runs more sequences.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use proptest::prelude::*;
use strata_sql::{Connection, Value};

const SCHEMA: &str = "CREATE TABLE t (id INTEGER PRIMARY KEY, a INTEGER, b TEXT, c REAL)";
/// A table whose key is not the rowid (kept unique through a key table in Strata).
const SCHEMA_U: &str = "CREATE TABLE u (k TEXT PRIMARY KEY, v INTEGER)";

fn key() -> impl Strategy<Value = String> {
    (0i64..8).prop_map(|n| format!("'k{n}'"))
}

/// A range predicate on `u.k` (bounds between and around the keys, NULL and a number too).
fn key_range() -> impl Strategy<Value = String> {
    let bound = prop_oneof![
        4 => key(),
        1 => prop::sample::select(vec!["'k'", "'k3x'", "'l'", "''", "NULL", "5"]).prop_map(String::from),
    ];
    (prop::sample::select(vec!["<", "<=", ">", ">="]), bound.clone(), bound).prop_map(
        |(op, a, b)| match op {
            "<" => format!("k < {a}"),
            "<=" => format!("k <= {a} AND k > {b}"),
            ">" => format!("{a} < k"),
            _ => format!("k BETWEEN {a} AND {b}"),
        },
    )
}

fn int() -> impl Strategy<Value = String> {
    prop_oneof![Just("NULL".to_string()), (-5i64..20).prop_map(|i| i.to_string())]
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("NULL".to_string()),
        prop::sample::select(vec!["'x'", "'xy'", "'y'", "'Ya'", "''", "'b%'"])
            .prop_map(String::from),
    ]
}

fn real() -> impl Strategy<Value = String> {
    prop_oneof![Just("NULL".to_string()), (-8i64..8).prop_map(|q| format!("{:.2}", q as f64 / 4.0))]
}

fn predicate() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        (prop::sample::select(vec!["<", "<=", "=", "<>", ">", ">="]), -5i64..20)
            .prop_map(|(op, k)| format!("a {op} {k}")),
        text().prop_map(|t| format!("b = {t}")),
        Just("a IS NULL".to_string()),
        Just("b IS NOT NULL".to_string()),
        prop::sample::select(vec!["'x%'", "'%a'", "'_'", "'%'", "'Y%'"])
            .prop_map(|p| format!("b LIKE {p}")),
        (-5i64..20, 0i64..10).prop_map(|(lo, w)| format!("a BETWEEN {lo} AND {}", lo + w)),
        prop::collection::vec(1i64..12, 1..4).prop_map(|ids| format!(
            "id IN ({})",
            ids.iter().map(i64::to_string).collect::<Vec<_>>().join(", ")
        )),
        (1i64..12).prop_map(|id| format!("id = {id}")),
        // Rowid ranges (the ordered-directory access path), with either operand order, real
        // and NULL bounds.
        (prop::sample::select(vec!["<", "<=", ">", ">="]), -2i64..32)
            .prop_map(|(op, k)| format!("id {op} {k}")),
        (prop::sample::select(vec!["<", ">="]), 0i64..30)
            .prop_map(|(op, k)| format!("{k} {op} id")),
        (0i64..30, 0i64..12).prop_map(|(lo, w)| format!("id BETWEEN {lo} AND {}", lo + w)),
        (0i64..60).prop_map(|h| format!("id > {}.5", h / 2)),
        Just("id < NULL".to_string()),
        Just("c > 0".to_string()),
        Just("a + id > 10".to_string()),
    ];
    leaf.prop_recursive(2, 6, 2, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(l, r)| format!("({l}) AND ({r})")),
            (inner.clone(), inner.clone()).prop_map(|(l, r)| format!("({l}) OR ({r})")),
            inner.prop_map(|p| format!("NOT ({p})")),
        ]
    })
}

fn statement() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => (1i64..30, int(), text(), real()).prop_map(|(id, a, b, c)| format!("INSERT INTO t (id, a, b, c) VALUES ({id}, {a}, {b}, {c})")),
        1 => (1i64..30, 1i64..30, int()).prop_map(|(i, j, a)| format!("INSERT INTO t (id, a) VALUES ({i}, {a}), ({j}, {a})")),
        2 => (-3i64..4, predicate()).prop_map(|(k, p)| format!("UPDATE t SET a = a + {k} WHERE {p}")),
        1 => (text(), predicate()).prop_map(|(t, p)| format!("UPDATE t SET b = {t}, c = c * 2 WHERE {p}")),
        1 => predicate().prop_map(|p| format!("DELETE FROM t WHERE {p}")),
        3 => predicate().prop_map(|p| format!("SELECT id, a, b, c FROM t WHERE {p} ORDER BY id")),
        1 => predicate().prop_map(|p| format!("SELECT COUNT(*), COUNT(a), SUM(a), MIN(b), MAX(a), SUM(c) FROM t WHERE {p}")),
        1 => Just("SELECT b, COUNT(*), SUM(a), AVG(c) FROM t GROUP BY b ORDER BY b".to_string()),
        1 => Just("SELECT a % 3, COUNT(*) FROM t WHERE a IS NOT NULL GROUP BY a % 3 HAVING COUNT(*) > 1 ORDER BY 1".to_string()),
        1 => predicate().prop_map(|p| format!("SELECT a / 2, a * 3 - id, -a, a % 4, c || 'x', c / 2 FROM t WHERE {p} ORDER BY id")),
        1 => (1i64..15, predicate()).prop_map(|(k, p)| format!("UPDATE t SET id = id + {k} WHERE {p}")),
        2 => (key(), int()).prop_map(|(k, v)| format!("INSERT INTO u VALUES ({k}, {v})")),
        1 => (key(), key()).prop_map(|(a, b)| format!("UPDATE u SET k = {b} WHERE k = {a}")),
        1 => (key(), key()).prop_map(|(a, b)| format!("UPDATE u SET v = v + 1 WHERE k IN ({a}, {b}) OR v > 10")),
        1 => key().prop_map(|k| format!("DELETE FROM u WHERE k = {k}")),
        1 => key().prop_map(|k| format!("SELECT k, v FROM u WHERE k = {k} OR v IS NULL ORDER BY k")),
        // Primary-key ranges (the key table's ordered walk), either direction, with a LIMIT.
        2 => (key_range(), prop::sample::select(vec!["", " DESC"]), 0i64..4).prop_map(|(p, dir, l)| {
            format!("SELECT k, v FROM u WHERE {p} ORDER BY k{dir} LIMIT {l}")
        }),
        1 => key_range().prop_map(|p| format!("SELECT k, v FROM u WHERE {p} ORDER BY v, k")),
        1 => (key_range(), int()).prop_map(|(p, v)| format!("UPDATE u SET v = {v} WHERE {p}")),
        1 => (0i64..4, 0i64..3).prop_map(|(l, o)| format!("SELECT id, b || '-' || a FROM t ORDER BY a DESC, id LIMIT {l} OFFSET {o}")),
        1 => (predicate(), 0i64..4, 0i64..3).prop_map(|(p, l, o)| format!("SELECT id, a FROM t WHERE {p} ORDER BY id DESC LIMIT {l} OFFSET {o}")),
    ]
}

fn sqlite_value(v: rusqlite::types::ValueRef<'_>) -> Value {
    use rusqlite::types::ValueRef;
    match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::Integer(i),
        ValueRef::Real(r) => Value::Real(r),
        ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => Value::Blob(b.to_vec()),
    }
}

#[derive(Debug, PartialEq)]
enum Outcome {
    Rows(Vec<Vec<Value>>),
    Changed(u64),
    Error,
}

fn on_sqlite(db: &rusqlite::Connection, sql: &str) -> Outcome {
    if sql.starts_with("SELECT") {
        let mut stmt = match db.prepare(sql) {
            Ok(s) => s,
            Err(_) => return Outcome::Error,
        };
        let n = stmt.column_count();
        let rows = stmt.query_map([], |r| {
            (0..n).map(|i| r.get_ref(i).map(sqlite_value)).collect::<Result<Vec<_>, _>>()
        });
        match rows.and_then(|rs| rs.collect::<Result<Vec<_>, _>>()) {
            Ok(rows) => Outcome::Rows(rows),
            Err(_) => Outcome::Error,
        }
    } else {
        match db.execute(sql, []) {
            Ok(n) => Outcome::Changed(n as u64),
            Err(_) => Outcome::Error,
        }
    }
}

fn on_strata(db: &mut Connection, sql: &str) -> Outcome {
    if sql.starts_with("SELECT") {
        match db.query(sql, &[]) {
            Ok(r) => Outcome::Rows(r.rows),
            Err(_) => Outcome::Error,
        }
    } else {
        match db.execute(sql, &[]) {
            Ok(n) => Outcome::Changed(n),
            Err(_) => Outcome::Error,
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn random_statement_sequences_match_sqlite(stmts in prop::collection::vec(statement(), 1..40)) {
        let lite = rusqlite::Connection::open_in_memory().unwrap();
        lite.execute(SCHEMA, []).unwrap();
        lite.execute(SCHEMA_U, []).unwrap();
        let mut strata = Connection::open_in_memory().unwrap();
        strata.execute(SCHEMA, &[]).unwrap();
        strata.execute(SCHEMA_U, &[]).unwrap();
        for sql in &stmts {
            let expected = on_sqlite(&lite, sql);
            let got = on_strata(&mut strata, sql);
            prop_assert_eq!(&got, &expected, "statement: {}", sql);
        }
        // And the final table, whole.
        for all in ["SELECT id, a, b, c FROM t ORDER BY id", "SELECT k, v FROM u ORDER BY k"] {
            prop_assert_eq!(on_strata(&mut strata, all), on_sqlite(&lite, all));
        }
    }
}
