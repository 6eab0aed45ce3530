//! History recorder and isolation-anomaly checker for real multi-threaded runs.
//!
//! Every write stores a value unique to its (txn, key), so each read names the txn it read from.
//! The checker then judges the history against snapshot isolation:
//! - **G1a** (aborted read): a read returned a value written by an aborted txn.
//! - **G1b** (intermediate read): a read returned a value its writer later overwrote itself.
//! - **Snapshot violation** (read skew / fractured read): a read did not return the newest value
//!   committed at or below the reader's snapshot timestamp.
//! - **Lost update**: two committed txns read the same version of a key and both wrote it.
//! - **G0 / G1c**: a cycle of write-write (and write-read) dependencies among committed txns,
//!   reported with the cycle itself.
//!
//! Serializability (`check_serializable`) adds Adya's anti-dependency (rw) edges — a txn read a
//! version, another committed the next version of that key — and reports any cycle of the full
//! dependency graph: **G-single** (exactly one rw edge) or **G2-item** (more). Snapshot isolation
//! allows both (write skew); serializable txns must show neither.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

/// A key of the recorded workload.
pub type HKey = u64;
/// A recorded value: unique per (txn, key, write), `0` is "no row".
pub type HValue = u64;

/// How a recorded txn ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Committed { ts: u64 },
    Aborted,
}

/// One txn as the recorder saw it.
#[derive(Clone, Debug)]
pub struct TxnRecord {
    /// Unique id (also the high bits of its values).
    pub id: u64,
    /// Snapshot timestamp.
    pub read_ts: u64,
    /// Reads of keys this txn had not written itself: `(key, value)`, `None` = no row.
    pub reads: Vec<(HKey, Option<HValue>)>,
    /// Writes in order: `(key, value)`.
    pub writes: Vec<(HKey, HValue)>,
    pub outcome: Outcome,
}

/// A whole history: the initial state (committed at `initial_ts`) and every txn.
#[derive(Clone, Debug, Default)]
pub struct History {
    pub initial: BTreeMap<HKey, HValue>,
    pub initial_ts: u64,
    pub txns: Vec<TxnRecord>,
}

/// A violation of snapshot isolation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Anomaly {
    G1a {
        reader: u64,
        writer: u64,
        key: HKey,
    },
    G1b {
        reader: u64,
        writer: u64,
        key: HKey,
    },
    SnapshotViolation {
        reader: u64,
        read_ts: u64,
        key: HKey,
        saw: Option<HValue>,
        expected: Option<HValue>,
    },
    LostUpdate {
        key: HKey,
        first: u64,
        second: u64,
    },
    Cycle {
        kind: &'static str,
        txns: Vec<u64>,
    },
}

impl Anomaly {
    /// Adya's (or the common) name of the anomaly.
    pub fn name(&self) -> &'static str {
        match self {
            Anomaly::G1a { .. } => "G1a (aborted read)",
            Anomaly::G1b { .. } => "G1b (intermediate read)",
            Anomaly::SnapshotViolation { .. } => "read skew / fractured read (snapshot violation)",
            Anomaly::LostUpdate { .. } => "lost update",
            Anomaly::Cycle { kind, .. } => kind,
        }
    }
}

impl fmt::Display for Anomaly {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.name())?;
        match self {
            Anomaly::G1a { reader, writer, key } | Anomaly::G1b { reader, writer, key } => {
                write!(f, "txn {reader:#x} read key {key} from txn {writer:#x}")
            }
            Anomaly::SnapshotViolation { reader, read_ts, key, saw, expected } => write!(
                f,
                "txn {reader:#x} at snapshot {read_ts} read key {key} = {saw:?}, snapshot holds {expected:?}"
            ),
            Anomaly::LostUpdate { key, first, second } => {
                write!(f, "txns {first:#x} and {second:#x} both read and overwrote the same version of key {key}")
            }
            Anomaly::Cycle { txns, .. } => {
                let names: Vec<String> = txns.iter().map(|t| format!("{t:#x}")).collect();
                write!(f, "cycle {}", names.join(" -> "))
            }
        }
    }
}

struct Writer {
    txn: usize,
    final_write: bool,
}

/// Checks `history` against snapshot isolation; returns every anomaly found.
pub fn check_snapshot_isolation(history: &History) -> Vec<Anomaly> {
    check(history, false)
}

/// Checks `history` against serializability: everything `check_snapshot_isolation` checks, and
/// no cycle of ww, wr and rw (anti-dependency) edges among committed txns.
pub fn check_serializable(history: &History) -> Vec<Anomaly> {
    check(history, true)
}

fn check(history: &History, serializable: bool) -> Vec<Anomaly> {
    let mut anomalies = Vec::new();
    let txns = &history.txns;
    // Who wrote each value, and whether it was that txn's last write to the key.
    let mut writer_of: HashMap<HValue, Writer> = HashMap::new();
    for (i, t) in txns.iter().enumerate() {
        for (j, (k, v)) in t.writes.iter().enumerate() {
            let final_write = !t.writes[j + 1..].iter().any(|(k2, _)| k2 == k);
            writer_of.insert(*v, Writer { txn: i, final_write });
        }
    }
    // Committed versions per key, in commit-timestamp order.
    let mut versions: BTreeMap<HKey, Vec<(u64, HValue, usize)>> = BTreeMap::new();
    for (i, t) in txns.iter().enumerate() {
        if let Outcome::Committed { ts } = t.outcome {
            for (k, v) in &t.writes {
                if writer_of.get(v).is_some_and(|w| w.final_write) {
                    versions.entry(*k).or_default().push((ts, *v, i));
                }
            }
        }
    }
    for vs in versions.values_mut() {
        vs.sort_unstable();
    }
    let visible = |key: HKey, ts: u64| -> Option<HValue> {
        let newest = versions.get(&key).and_then(|vs| vs.iter().rev().find(|(t, _, _)| *t <= ts));
        match newest {
            Some((_, v, _)) => Some(*v),
            None => {
                (history.initial_ts <= ts).then(|| history.initial.get(&key).copied()).flatten()
            }
        }
    };
    for t in txns {
        for (key, saw) in &t.reads {
            if let Some(w) = saw.and_then(|v| writer_of.get(&v)) {
                let writer = &txns[w.txn];
                if writer.outcome == Outcome::Aborted {
                    anomalies.push(Anomaly::G1a { reader: t.id, writer: writer.id, key: *key });
                    continue;
                }
                if !w.final_write {
                    anomalies.push(Anomaly::G1b { reader: t.id, writer: writer.id, key: *key });
                    continue;
                }
            }
            let expected = visible(*key, t.read_ts);
            if *saw != expected {
                anomalies.push(Anomaly::SnapshotViolation {
                    reader: t.id,
                    read_ts: t.read_ts,
                    key: *key,
                    saw: *saw,
                    expected,
                });
            }
        }
    }
    lost_updates(txns, &mut anomalies);
    dependency_cycles(txns, &versions, &writer_of, serializable, &mut anomalies);
    anomalies
}

fn lost_updates(txns: &[TxnRecord], anomalies: &mut Vec<Anomaly>) {
    // (key, version read) -> committed txns that read it and wrote the key.
    let mut rmw: HashMap<(HKey, Option<HValue>), Vec<u64>> = HashMap::new();
    for t in txns.iter().filter(|t| matches!(t.outcome, Outcome::Committed { .. })) {
        for (k, v) in &t.reads {
            if t.writes.iter().any(|(wk, _)| wk == k) {
                let ids = rmw.entry((*k, *v)).or_default();
                if !ids.contains(&t.id) {
                    ids.push(t.id);
                }
            }
        }
    }
    for ((key, _), ids) in rmw {
        if ids.len() > 1 {
            anomalies.push(Anomaly::LostUpdate { key, first: ids[0], second: ids[1] });
        }
    }
}

/// A dependency edge's kind (Adya).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Dep {
    /// Write-write: consecutive committed writers of a key.
    Ww,
    /// Write-read: the reader read the writer's version.
    Wr,
    /// Read-write (anti-dependency): the reader read a version, the writer installed the next.
    Rw,
}

/// ww and wr edges (and rw edges when `with_rw`) over committed txns; reports one cycle, named
/// by its edges: G0 (ww only), G1c (ww/wr), G-single (one rw), G2-item (several rw).
fn dependency_cycles(
    txns: &[TxnRecord],
    versions: &BTreeMap<HKey, Vec<(u64, HValue, usize)>>,
    writer_of: &HashMap<HValue, Writer>,
    with_rw: bool,
    anomalies: &mut Vec<Anomaly>,
) {
    let n = txns.len();
    let committed = |i: usize| matches!(txns[i].outcome, Outcome::Committed { .. });
    let mut edges: Vec<Vec<(usize, Dep)>> = vec![Vec::new(); n];
    for vs in versions.values() {
        for pair in vs.windows(2) {
            edges[pair[0].2].push((pair[1].2, Dep::Ww));
        }
    }
    for (i, t) in txns.iter().enumerate() {
        if !committed(i) {
            continue;
        }
        for (key, v) in &t.reads {
            if let Some(w) = v.and_then(|v| writer_of.get(&v)) {
                if w.txn != i && committed(w.txn) {
                    edges[w.txn].push((i, Dep::Wr));
                }
            }
            if with_rw {
                // The version after the one read (the first committed one if it read the
                // initial value or no row).
                let Some(vs) = versions.get(key) else { continue };
                let after = match v.and_then(|v| vs.iter().position(|(_, x, _)| *x == v)) {
                    Some(pos) => vs.get(pos + 1),
                    None => vs.first(),
                };
                if let Some(&(_, _, j)) = after {
                    if j != i {
                        edges[i].push((j, Dep::Rw));
                    }
                }
            }
        }
    }
    // Iterative DFS for one cycle.
    let mut color = vec![0u8; n];
    let mut parent: Vec<(usize, Dep)> = vec![(usize::MAX, Dep::Ww); n];
    for start in 0..n {
        if color[start] != 0 {
            continue;
        }
        let mut stack = vec![(start, 0usize)];
        color[start] = 1;
        while let Some((node, next)) = stack.pop() {
            if next < edges[node].len() {
                stack.push((node, next + 1));
                let (to, dep) = edges[node][next];
                if color[to] == 0 {
                    color[to] = 1;
                    parent[to] = (node, dep);
                    stack.push((to, 0));
                } else if color[to] == 1 {
                    let mut cycle = vec![txns[to].id];
                    let mut deps = vec![dep];
                    let mut cur = node;
                    while cur != to {
                        cycle.push(txns[cur].id);
                        deps.push(parent[cur].1);
                        cur = parent[cur].0;
                    }
                    cycle.push(txns[to].id);
                    cycle.reverse();
                    let rw = deps.iter().filter(|d| **d == Dep::Rw).count();
                    let kind = match rw {
                        0 if deps.iter().all(|d| *d == Dep::Ww) => "G0 (write cycle)",
                        0 => "G1c (circular information flow)",
                        1 => "G-single (read skew cycle: one anti-dependency)",
                        _ => "G2-item (write skew: anti-dependency cycle)",
                    };
                    anomalies.push(Anomaly::Cycle { kind, txns: cycle });
                    return;
                }
            } else {
                color[node] = 2;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn txn(
        id: u64,
        read_ts: u64,
        reads: &[(HKey, Option<HValue>)],
        writes: &[(HKey, HValue)],
        outcome: Outcome,
    ) -> TxnRecord {
        TxnRecord { id, read_ts, reads: reads.to_vec(), writes: writes.to_vec(), outcome }
    }

    fn base() -> History {
        History { initial: [(1, 10), (2, 20)].into_iter().collect(), initial_ts: 1, txns: vec![] }
    }

    #[test]
    fn a_clean_history_has_no_anomalies() {
        let mut h = base();
        h.txns.push(txn(1, 1, &[(1, Some(10))], &[(1, 11)], Outcome::Committed { ts: 2 }));
        h.txns.push(txn(2, 2, &[(1, Some(11)), (2, Some(20))], &[], Outcome::Committed { ts: 2 }));
        assert_eq!(check_snapshot_isolation(&h), vec![]);
    }

    #[test]
    fn each_anomaly_is_reported_by_name() {
        let mut h = base();
        h.txns.push(txn(1, 1, &[], &[(1, 11), (1, 12)], Outcome::Committed { ts: 2 }));
        h.txns.push(txn(2, 1, &[], &[(2, 21)], Outcome::Aborted));
        h.txns.push(txn(3, 2, &[(1, Some(11))], &[], Outcome::Committed { ts: 2 })); // G1b
        h.txns.push(txn(4, 2, &[(2, Some(21))], &[], Outcome::Committed { ts: 2 })); // G1a
        h.txns.push(txn(5, 1, &[(1, Some(12))], &[], Outcome::Committed { ts: 1 })); // skew
        h.txns.push(txn(6, 2, &[(2, Some(20))], &[(2, 22)], Outcome::Committed { ts: 3 }));
        h.txns.push(txn(7, 2, &[(2, Some(20))], &[(2, 23)], Outcome::Committed { ts: 4 })); // lost
        let names: Vec<&str> = check_snapshot_isolation(&h).iter().map(Anomaly::name).collect();
        for want in [
            "G1b (intermediate read)",
            "G1a (aborted read)",
            "lost update",
            "read skew / fractured read (snapshot violation)",
        ] {
            assert!(names.contains(&want), "{want} missing from {names:?}");
        }
    }

    #[test]
    fn write_skew_is_a_g2_cycle_only_to_the_serializable_checker() {
        let mut h = base();
        // Both read x and y at snapshot 1; one writes x, the other y.
        let reads = [(1, Some(10)), (2, Some(20))];
        h.txns.push(txn(1, 1, &reads, &[(1, 11)], Outcome::Committed { ts: 2 }));
        h.txns.push(txn(2, 1, &reads, &[(2, 21)], Outcome::Committed { ts: 3 }));
        assert_eq!(check_snapshot_isolation(&h), vec![]);
        let found = check_serializable(&h);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].name().starts_with("G2-item"), "{}", found[0]);
        // A serial version of the same: the second read the first's write.
        let mut h = base();
        h.txns.push(txn(1, 1, &reads, &[(1, 11)], Outcome::Committed { ts: 2 }));
        let later = [(1, Some(11)), (2, Some(20))];
        h.txns.push(txn(2, 2, &later, &[(2, 21)], Outcome::Committed { ts: 3 }));
        assert_eq!(check_serializable(&h), vec![]);
    }

    #[test]
    fn a_write_cycle_is_printed() {
        let mut h = base();
        // Two txns whose commit order disagrees across keys: impossible under SI.
        h.txns.push(txn(1, 1, &[], &[(1, 11), (2, 21)], Outcome::Committed { ts: 2 }));
        h.txns.push(txn(2, 1, &[], &[(1, 12), (2, 22)], Outcome::Committed { ts: 3 }));
        h.txns.push(txn(3, 3, &[(1, Some(12))], &[], Outcome::Committed { ts: 3 }));
        // Force a ww cycle by a third writer that read 2's x but is ordered before it on y.
        h.txns.push(txn(4, 3, &[(1, Some(12))], &[(2, 23)], Outcome::Committed { ts: 2 }));
        let anomalies = check_snapshot_isolation(&h);
        let cycle = anomalies.iter().find(|a| matches!(a, Anomaly::Cycle { .. }));
        assert!(cycle.is_some(), "{anomalies:?}");
        assert!(cycle.unwrap().to_string().contains("->"));
    }
}

/// How the recorded workload reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadMode {
    /// Through the txn (snapshot isolation: what Strata promises).
    Snapshot,
    /// Test-only broken configuration: each read takes a fresh snapshot (read committed), while
    /// writes still go through the txn. The checker must report it.
    FreshSnapshotPerRead,
}

/// Parameters of a recorded run.
#[derive(Clone, Copy, Debug)]
pub struct Workload {
    pub threads: usize,
    pub txns_per_thread: usize,
    pub keys: u64,
    pub seed: u64,
    pub read_mode: ReadMode,
    /// The txns' isolation level.
    pub isolation: strata::Isolation,
    /// Half the txns read through one range scan of consecutive keys instead of point reads
    /// (so range validation is exercised too).
    pub scans: bool,
}

fn decode(v: Option<Vec<u8>>) -> Option<HValue> {
    v.map(|b| u64::from_le_bytes(b.try_into().expect("recorded values are 8 bytes")))
}

/// Runs a randomized read/write workload on `db` from `threads` OS threads and records it.
/// Each txn reads 1–3 keys (point reads, or with `scans` sometimes one range scan) and writes
/// 0–2 of them (read-modify-write), values unique per write. With 2+ reads and 1 write per
/// txn over few keys, write skew is common: the workload provokes it under snapshot isolation.
pub fn record(db: &strata::Database, w: Workload) -> strata::Result<History> {
    let table = db.create_or_open_table("history")?;
    let mut history = History::default();
    let initial: BTreeMap<HKey, HValue> = (0..w.keys).map(|k| (k, (1 << 63) | k)).collect();
    history.initial_ts = db
        .transaction(|txn| {
            for (k, v) in &initial {
                txn.put(&table, k.to_be_bytes(), v.to_le_bytes())?;
            }
            Ok(())
        })
        .and_then(|()| Ok(db.begin_read()?.read_ts().get()))?;
    history.initial = initial;
    let per_thread: Vec<strata::Result<Vec<TxnRecord>>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..w.threads)
            .map(|th| {
                let table = table.clone();
                s.spawn(move || run_thread(db, &table, w, th as u64))
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("history worker panicked")).collect()
    });
    for txns in per_thread {
        history.txns.extend(txns?);
    }
    Ok(history)
}

/// A recorder thread's random stream: `next(n)` is in `0..n`; one independent stream per
/// (seed, thread), so a run is reproducible from its seed.
pub(crate) fn thread_rng(seed: u64, thread: u64) -> impl FnMut(u64) -> u64 {
    let mut rng = seed ^ (thread + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    move |n: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % n
    }
}

fn run_thread(
    db: &strata::Database,
    table: &strata::Table,
    w: Workload,
    th: u64,
) -> strata::Result<Vec<TxnRecord>> {
    let mut next = thread_rng(w.seed, th);
    let mut out = Vec::with_capacity(w.txns_per_thread);
    for i in 0..w.txns_per_thread as u64 {
        let id = ((th + 1) << 40) | (i + 1);
        let mut txn = db.begin_with(w.isolation)?;
        let mut rec = TxnRecord {
            id,
            read_ts: txn.read_ts().get(),
            reads: vec![],
            writes: vec![],
            outcome: Outcome::Aborted,
        };
        let n_reads = 1 + next(3);
        let n_writes = next(3);
        let mut keys: Vec<HKey> = Vec::with_capacity(n_reads as usize);
        for _ in 0..n_reads {
            let k = next(w.keys);
            if !keys.contains(&k) {
                keys.push(k);
            }
        }
        if w.scans && w.read_mode == ReadMode::Snapshot && next(2) == 0 {
            // One range scan over consecutive keys; its rows are the txn's reads.
            let lo = next(w.keys);
            let hi = (lo + n_reads).min(w.keys);
            keys = (lo..hi).collect();
            for row in txn.range(table, lo.to_be_bytes()..hi.to_be_bytes())? {
                let (k, v) = row?;
                let k = u64::from_be_bytes(k.try_into().expect("recorded keys are 8 bytes"));
                rec.reads.push((k, decode(Some(v))));
            }
        }
        for &k in &keys {
            if rec.writes.iter().any(|(wk, _)| *wk == k) || rec.reads.iter().any(|(rk, _)| *rk == k)
            {
                continue;
            }
            let v = match w.read_mode {
                ReadMode::Snapshot => txn.get(table, k.to_be_bytes())?,
                ReadMode::FreshSnapshotPerRead => db.begin_read()?.get(table, k.to_be_bytes())?,
            };
            rec.reads.push((k, decode(v)));
        }
        for (j, &k) in keys.iter().take(n_writes as usize).enumerate() {
            let value = (id << 8) | j as u64;
            txn.put(table, k.to_be_bytes(), value.to_le_bytes())?;
            rec.writes.push((k, value));
        }
        rec.outcome = match txn.commit() {
            Ok(ts) => Outcome::Committed { ts: ts.get() },
            Err(e) if e.is_retryable() => Outcome::Aborted,
            Err(e) => return Err(e),
        };
        out.push(rec);
    }
    Ok(out)
}
