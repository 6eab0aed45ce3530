//! The history checker over real threads: randomized read-modify-write workloads on both stores,
//! 2 to 16 threads (oversubscribed on 2 cores), recorded with unique values and checked for
//! G0, G1a, G1b, G1c, lost update and read skew / fractured reads. A deliberately broken
//! configuration (fresh snapshot per read) must be caught. `STRATA_HISTORY_TXNS=N` sets the txns
//! per thread (default 1500); `STRATA_HISTORY_VERBOSE=1` prints every anomaly found.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use strata::{Database, Options, StoreKind};
use strata_verification::history::{check_snapshot_isolation, record, Anomaly, ReadMode, Workload};

fn txns_per_thread() -> usize {
    std::env::var("STRATA_HISTORY_TXNS").ok().and_then(|s| s.parse().ok()).unwrap_or(1500)
}

fn run(store: StoreKind, threads: usize, keys: u64, read_mode: ReadMode) -> (usize, Vec<Anomaly>) {
    let db = Database::with_options(Options::default().store(store));
    let w = Workload {
        threads,
        txns_per_thread: txns_per_thread(),
        keys,
        seed: 7 + threads as u64,
        read_mode,
    };
    let history = record(&db, w).unwrap();
    let anomalies = check_snapshot_isolation(&history);
    if std::env::var_os("STRATA_HISTORY_VERBOSE").is_some() {
        for a in &anomalies {
            eprintln!("{store:?}/{threads}t: {a}");
        }
    }
    let committed = history
        .txns
        .iter()
        .filter(|t| matches!(t.outcome, strata_verification::history::Outcome::Committed { .. }))
        .count();
    (committed, anomalies)
}

#[test]
fn snapshot_isolation_holds_on_both_stores() {
    for store in [StoreKind::LockFree, StoreKind::Baseline] {
        for (threads, keys) in [(2, 8), (4, 32), (16, 8)] {
            let (committed, anomalies) = run(store, threads, keys, ReadMode::Snapshot);
            assert!(committed > 0);
            assert!(
                anomalies.is_empty(),
                "{store:?} with {threads} threads: {} anomalies, first: {}",
                anomalies.len(),
                anomalies[0]
            );
        }
    }
}

#[test]
fn the_checker_catches_a_broken_configuration() {
    let (_, anomalies) = run(StoreKind::LockFree, 4, 4, ReadMode::FreshSnapshotPerRead);
    assert!(
        anomalies.iter().any(|a| matches!(a, Anomaly::SnapshotViolation { .. })),
        "reads from fresh snapshots must show as read skew; found {anomalies:?}"
    );
}
