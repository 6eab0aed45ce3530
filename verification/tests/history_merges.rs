//! Merge histories over real threads (`strata_verification::merge_history`), on both stores,
//! 2 to 16 threads (oversubscribed on 2 cores): every read sees its snapshot with the txn's own
//! writes over it, first committer wins between a put and any other write, the final values are
//! the replay of the commits in timestamp order, and with no puts no txn ever conflicts.
//! Canaries: a checker that must flag a history with a lost merge and one with a put that
//! overwrote a concurrent add; and, in a build with `RUSTFLAGS="--cfg strata_canary"`, the engine
//! with a merge bug switched on (`MergeOnSnapshot`, `MergeOverPut`), whose histories the checker
//! must flag on real threads. `STRATA_HISTORY_TXNS=N` sets the txns per thread (default 1500).
#![cfg(not(any(loom, shuttle)))] // real threads; the model-checking builds leave out SQL
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use strata::{Database, Options, StoreKind};
use strata_verification::merge_history::{
    check, record, record_sql, record_sql_with, MergeAnomaly, MergeHistory, MergeOpRecord,
    MergeOutcome, MergeTxn, MergeWorkload,
};

fn txns_per_thread() -> usize {
    std::env::var("STRATA_HISTORY_TXNS").ok().and_then(|s| s.parse().ok()).unwrap_or(1500)
}

fn workload(threads: usize, put_pct: u64) -> MergeWorkload {
    MergeWorkload {
        threads,
        txns_per_thread: txns_per_thread(),
        keys: 4,
        put_pct,
        seed: 11 + threads as u64 + put_pct,
    }
}

fn run(store: StoreKind, threads: usize, put_pct: u64) {
    let w = workload(threads, put_pct);
    let keys = w.keys;
    let db = Database::with_options(Options::default().store(store));
    let history = record(&db, w).unwrap();
    let anomalies = check(&history, put_pct == 0);
    for a in anomalies.iter().take(5) {
        eprintln!("{store:?}/{threads}t/{put_pct}% puts: {a}");
    }
    assert!(
        anomalies.is_empty(),
        "{} anomalies on {store:?} at {threads} threads",
        anomalies.len()
    );
    let table = db.open_table("merges").unwrap();
    let snap = db.begin_read().unwrap();
    let now = snap.read_ts().get();
    for k in 0..keys {
        let got = snap.get(&table, k.to_be_bytes()).unwrap();
        let got = got.map(|b| i64::from_le_bytes(b.try_into().unwrap()));
        assert_eq!(got, history.value_at(k, now), "key {k}: the final value is the replay");
    }
    let committed =
        history.txns.iter().filter(|t| matches!(t.outcome, MergeOutcome::Committed { .. }));
    assert!(committed.count() > w.threads * w.txns_per_thread / 4, "too few commits to mean much");
}

#[test]
#[cfg_attr(strata_canary, ignore = "the canary build switches a bug on process-wide")]
fn merges_only_never_conflict_and_read_consistently() {
    for store in [StoreKind::LockFree, StoreKind::Baseline] {
        for threads in [2, 4, 16] {
            run(store, threads, 0);
        }
    }
}

#[test]
#[cfg_attr(strata_canary, ignore = "the canary build switches a bug on process-wide")]
fn merges_and_puts_keep_first_committer_wins() {
    for store in [StoreKind::LockFree, StoreKind::Baseline] {
        for threads in [2, 4, 16] {
            run(store, threads, 20);
        }
    }
}

/// As `run`, through SQL (`BEGIN CONCURRENT`; increments by key run as merges) on the lock-free
/// store.
fn run_sql(threads: usize, put_pct: u64) {
    run_sql_with(threads, put_pct, "BEGIN CONCURRENT");
}

fn run_sql_with(threads: usize, put_pct: u64, begin: &str) {
    let serializable = begin.contains("SERIALIZABLE");
    let w = workload(threads, put_pct);
    let conn = strata_sql::Connection::open_in_memory().unwrap();
    let history = if serializable {
        record_sql_with(&conn, w, begin).unwrap()
    } else {
        record_sql(&conn, w).unwrap()
    };
    // Serializable txns that read may fail validation, so only snapshot runs without puts
    // expect no conflict at all; a serializable txn that only adds must still always commit
    // (its statements' reads of the rows they found are waived: ADR 0017, decision 7).
    let anomalies = check(&history, put_pct == 0 && !serializable);
    if serializable && put_pct == 0 {
        let only_adds = |t: &&MergeTxn| t.ops.iter().all(|o| matches!(o, MergeOpRecord::Add(..)));
        let failed = history
            .txns
            .iter()
            .filter(only_adds)
            .filter(|t| t.outcome == MergeOutcome::Conflict)
            .count();
        assert_eq!(failed, 0, "serializable txns of adds alone failed at {threads} threads");
    }
    for a in anomalies.iter().take(5) {
        eprintln!("sql/{threads}t/{put_pct}% puts: {a}");
    }
    assert!(anomalies.is_empty(), "{} anomalies through SQL at {threads} threads", anomalies.len());
    let mut c = conn.connect().unwrap();
    c.execute("BEGIN", &[]).unwrap();
    let now = c.txn_read_ts().unwrap().get();
    let rows = c.query("SELECT id, n FROM merges ORDER BY id", &[]).unwrap();
    c.execute("COMMIT", &[]).unwrap();
    assert_eq!(rows.rows.len() as u64, w.keys);
    for row in &rows.rows {
        let (strata_sql::Value::Integer(k), strata_sql::Value::Integer(n)) = (&row[0], &row[1])
        else {
            panic!("unexpected row {row:?}");
        };
        assert_eq!(
            Some(*n),
            history.value_at(*k as u64, now),
            "key {k}: the final value is the replay"
        );
    }
    let committed =
        history.txns.iter().filter(|t| matches!(t.outcome, MergeOutcome::Committed { .. }));
    assert!(committed.count() > w.threads * w.txns_per_thread / 4, "too few commits to mean much");
}

#[test]
#[cfg_attr(strata_canary, ignore = "the canary build switches a bug on process-wide")]
fn through_sql_merges_never_conflict_and_puts_keep_first_committer_wins() {
    for threads in [2, 4, 16] {
        run_sql(threads, 0);
        run_sql(threads, 20);
    }
}

/// The same through serializable txns: no anomaly, and a txn of adds alone never fails.
#[test]
fn through_serializable_sql_adds_alone_always_commit() {
    for threads in [2, 4, 16] {
        run_sql_with(threads, 0, "BEGIN TRANSACTION ISOLATION LEVEL SERIALIZABLE");
        run_sql_with(threads, 20, "BEGIN TRANSACTION ISOLATION LEVEL SERIALIZABLE");
    }
}

fn txn(read_ts: u64, ops: Vec<MergeOpRecord>, ts: Option<u64>) -> MergeTxn {
    let outcome = ts.map_or(MergeOutcome::Conflict, |ts| MergeOutcome::Committed { ts });
    MergeTxn { thread: 0, read_ts, ops, outcome }
}

/// The checker itself must see a lost merge, a put over a concurrent add, and a conflict among
/// merges.
#[test]
fn the_checker_catches_broken_histories() {
    use MergeOpRecord::{Add, Put, Read};
    let preload = txn(0, vec![Put(0, 0)], Some(1));
    // Two adds from one snapshot, then a read that sees only the second: a lost merge.
    let lost = MergeHistory {
        txns: vec![
            preload.clone(),
            txn(1, vec![Add(0, 1)], Some(2)),
            txn(1, vec![Add(0, 10)], Some(3)),
            txn(3, vec![Read(0, Some(10))], Some(3)),
        ],
    };
    assert!(matches!(check(&lost, true)[..], [MergeAnomaly::WrongRead { .. }]));
    // A put committed over an add it did not see.
    let overwritten = MergeHistory {
        txns: vec![
            preload.clone(),
            txn(1, vec![Add(0, 1)], Some(2)),
            txn(1, vec![Put(0, 5)], Some(3)),
        ],
    };
    assert!(matches!(
        check(&overwritten, false)[..],
        [MergeAnomaly::LostUpdate { by_put: true, .. }]
    ));
    // An add committed over a put it did not see; and an add-only txn that conflicted.
    let over_put = MergeHistory {
        txns: vec![
            preload,
            txn(1, vec![Put(0, 5)], Some(2)),
            txn(1, vec![Add(0, 1)], Some(3)),
            txn(1, vec![Add(0, 1)], None),
        ],
    };
    let found = check(&over_put, true);
    assert!(found.iter().any(|a| matches!(a, MergeAnomaly::LostUpdate { by_put: false, .. })));
    assert!(found.iter().any(|a| matches!(a, MergeAnomaly::MergeConflict { .. })));
}

/// The engine with `bug` switched on, on real threads (4 and 16 on 2 cores): the checker must
/// flag an anomaly `expected` accepts. Histories are recorded until one is flagged, at most
/// `STRATA_MERGE_CANARY_RUNS` (default 20) per thread count.
#[cfg(strata_canary)]
fn caught(
    bug: strata_mvcc::canary::Canary,
    put_pct: u64,
    sql: bool,
    expected: impl Fn(&MergeAnomaly) -> bool,
) {
    use strata_mvcc::canary::{self, Canary};
    let runs: u64 =
        std::env::var("STRATA_MERGE_CANARY_RUNS").ok().and_then(|s| s.parse().ok()).unwrap_or(20);
    canary::set(bug);
    for threads in [4, 16] {
        let mut found = None;
        for run in 0..runs {
            let mut w = workload(threads, put_pct);
            w.seed += 1000 * run;
            let history = if sql {
                record_sql(&strata_sql::Connection::open_in_memory().unwrap(), w).unwrap()
            } else {
                record(&Database::with_options(Options::default().store(StoreKind::LockFree)), w)
                    .unwrap()
            };
            let anomalies = check(&history, put_pct == 0);
            if let Some(a) = anomalies.iter().find(|a| expected(a)) {
                found = Some((run, a.to_string()));
                break;
            }
        }
        let Some((run, first)) = found else {
            canary::set(Canary::None);
            panic!("{bug:?} was not caught at {threads} threads in {runs} runs (sql: {sql})");
        };
        eprintln!(
            "{bug:?} caught at {threads} threads (sql: {sql}) in run {} of {runs}: {first}",
            run + 1
        );
    }
    canary::set(Canary::None);
}

/// Two merge bugs, one after the other, through the API and through SQL (the switch is
/// process-wide, so one test runs them all):
/// - merges applied to the snapshot's value instead of the newest: concurrent adds overwrite each
///   other, and a read after them sees less than their sum;
/// - merges that link over a put committed after their snapshot: the put and the add both commit.
#[cfg(strata_canary)]
#[test]
fn merge_bugs_in_the_engine_are_caught() {
    use strata_mvcc::canary::Canary;
    let lost_merge = |a: &MergeAnomaly| matches!(a, MergeAnomaly::WrongRead { .. });
    let over_put = |a: &MergeAnomaly| matches!(a, MergeAnomaly::LostUpdate { by_put: false, .. });
    for sql in [false, true] {
        caught(Canary::MergeOnSnapshot, 0, sql, lost_merge);
        caught(Canary::MergeOverPut, 20, sql, over_put);
    }
}
