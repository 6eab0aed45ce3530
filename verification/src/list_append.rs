//! The list-append workload and its checker: the standard test for lost updates (the shape of
//! Jepsen's Elle `list-append`, written here from its definition, sharing no code with it).
//!
//! Every key holds a list of integers. A txn runs 3–4 micro-ops on a small pool of hot keys;
//! each op either reads a key (decodes its list) or appends to it (reads the list, pushes a value
//! that no other op in the run uses, writes the list back). A key leaves the pool after
//! `appends_per_key` appends and a fresh key takes its place, so lists stay short and every key
//! sees a burst of contention. A retryable error counts as a failed txn; it is not retried.
//!
//! The check, after every thread joined, against a final read of every key:
//! - **Lost update**: a value appended by a committed txn is missing from the final list.
//! - **Aborted write visible** (G1a): a value appended by a failed txn is in the final list.
//! - **Not a prefix**: a list read by any txn (committed or not — snapshot reads never see
//!   uncommitted state), or written by a committed txn, is not a prefix of the final list. Two
//!   committed writers that read the same list and both appended show up here too.
//! - **Duplicate**: a value appears twice in a final list.
//!
//! Lists grow only by appends, so under snapshot isolation with first-committer-wins every read
//! and every committed write is a prefix of the final list, and the final list holds exactly the
//! committed appends. The workload runs on the engine API (any store, isolation or directory) or
//! through SQL (`UPDATE lists SET v = v || ?`), from real OS threads, optionally with a sleep
//! between the ops of a txn so that preemption lands inside txns.
//!
//! The bug that motivated it (docs/design/lost-update-2026-11.md) needed a third txn aborting at
//! the wrong instant; run it oversubscribed, under CPU load, with many seeds.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

/// A key of the workload (keys are created lazily: a key with no row is an empty list).
pub type LKey = u64;
/// An appended value: unique within a run.
pub type LValue = u64;

/// How the workload reaches the database.
#[derive(Clone, Copy)]
pub enum Target<'a> {
    /// The engine API at this isolation level (the store and directory are the database's).
    Api(&'a strata::Database, strata::Isolation),
    /// SQL: each worker gets a sibling connection of this one; appends are one `UPDATE ... SET v
    /// = v || ?` (the read happens inside the statement), reads a `SELECT`.
    Sql(&'a strata_sql::Connection),
}

impl fmt::Debug for Target<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Api(_, iso) => write!(f, "api/{}", iso.name()),
            Target::Sql(_) => write!(f, "sql"),
        }
    }
}

/// Parameters of one run.
#[derive(Clone, Copy, Debug)]
pub struct Config {
    /// Worker threads (more than the cores: preemption inside txns is the point).
    pub threads: usize,
    /// Txns in all, split across the threads.
    pub txns: usize,
    /// Hot keys in the pool at any time.
    pub pool_keys: usize,
    /// Appends after which a key leaves the pool.
    pub appends_per_key: u32,
    /// Sleep between the ops of a txn (0: none).
    pub op_sleep_us: u64,
    /// Seed of every thread's op generator.
    pub seed: u64,
}

impl Config {
    /// The configuration of issue #12: 8 threads, 20,000 txns, 8 hot keys, 32 appends per key.
    pub fn standard(seed: u64) -> Config {
        Config { threads: 8, txns: 20_000, pool_keys: 8, appends_per_key: 32, op_sleep_us: 0, seed }
    }
}

/// One micro-op as recorded.
#[derive(Clone, Debug)]
enum Op {
    /// Read `key`: the list seen.
    Read(LKey, Vec<LValue>),
    /// Appended `value` to `key`; `seen` is the list read first (`None` through SQL, where the
    /// read happens inside the UPDATE).
    Append { key: LKey, value: LValue, seen: Option<Vec<LValue>> },
}

#[derive(Clone, Debug)]
struct Record {
    ops: Vec<Op>,
    committed: bool,
}

/// A violation found by the checker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ListAnomaly {
    LostUpdate {
        key: LKey,
        value: LValue,
    },
    AbortedWriteVisible {
        key: LKey,
        value: LValue,
    },
    NotAPrefix {
        key: LKey,
        observed: Vec<LValue>,
        final_list: Vec<LValue>,
        committed: bool,
    },
    Duplicate {
        key: LKey,
        value: LValue,
    },
    /// `Path::Disk`: the list a reopened database recovered differs from the one before close.
    NotRecovered {
        key: LKey,
    },
}

impl fmt::Display for ListAnomaly {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ListAnomaly::LostUpdate { key, value } => {
                write!(
                    f,
                    "lost update: key {key}: committed append {value} is not in the final list"
                )
            }
            ListAnomaly::AbortedWriteVisible { key, value } => {
                write!(f, "G1a: key {key}: the append {value} of a failed txn is visible")
            }
            ListAnomaly::NotAPrefix { key, observed, final_list, committed } => write!(
                f,
                "key {key}: {} list {observed:?} is not a prefix of the final {final_list:?}",
                if *committed { "a committed txn's" } else { "a failed txn's" }
            ),
            ListAnomaly::Duplicate { key, value } => {
                write!(f, "key {key}: value {value} appears twice")
            }
            ListAnomaly::NotRecovered { key } => {
                write!(f, "key {key}: the reopened database recovered a different list")
            }
        }
    }
}

/// What one run did and what the checker found.
#[derive(Clone, Debug, Default)]
pub struct Report {
    pub committed: usize,
    pub failed: usize,
    pub appends_committed: usize,
    pub keys: usize,
    pub anomalies: Vec<ListAnomaly>,
}

/// The shared pool of hot keys: a key leaves after `appends_per_key` appends (attempted, not
/// committed) and the next fresh key takes its slot.
struct Pool {
    slots: Vec<(LKey, u32)>,
    next_key: LKey,
    appends_per_key: u32,
}

impl Pool {
    fn new(cfg: &Config) -> Pool {
        Pool {
            slots: (0..cfg.pool_keys as LKey).map(|k| (k, 0)).collect(),
            next_key: cfg.pool_keys as LKey,
            appends_per_key: cfg.appends_per_key,
        }
    }

    fn pick(&mut self, r: u64, append: bool) -> LKey {
        let i = (r % self.slots.len() as u64) as usize;
        let (key, count) = self.slots[i];
        if append {
            if count + 1 >= self.appends_per_key {
                self.slots[i] = (self.next_key, 0);
                self.next_key += 1;
            } else {
                self.slots[i].1 = count + 1;
            }
        }
        key
    }
}

/// The most keys a run can touch (SQL pre-creates a row for each): every append could retire
/// a key only after `appends_per_key` of them.
fn keys_max(cfg: &Config) -> u64 {
    let appends_max = cfg.txns as u64 * 4;
    cfg.pool_keys as u64 + appends_max / u64::from(cfg.appends_per_key.max(1)) + 1
}

fn encode(list: &[LValue]) -> Vec<u8> {
    list.iter().flat_map(|v| v.to_le_bytes()).collect()
}

fn decode(bytes: Option<Vec<u8>>) -> Vec<LValue> {
    let bytes = bytes.unwrap_or_default();
    assert!(bytes.len().is_multiple_of(8), "a list-append value is a whole number of u64s");
    bytes.chunks_exact(8).map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes"))).collect()
}

fn decode_text(text: &str) -> Vec<LValue> {
    text.split(',')
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().expect("list-append text lists hold integers"))
        .collect()
}

/// Runs the workload on `target` and checks it. An error is a failure of the harness or a
/// non-retryable engine error, never an anomaly (those are in the report).
pub fn run(target: Target<'_>, cfg: &Config) -> Result<Report, String> {
    let err = |e: &dyn fmt::Display| e.to_string();
    let table = match target {
        Target::Api(db, _) => Some(db.create_or_open_table("lists").map_err(|e| err(&e))?),
        Target::Sql(conn) => {
            let mut c = conn.connect().map_err(|e| err(&e))?;
            c.execute("CREATE TABLE lists (k INTEGER PRIMARY KEY, v TEXT NOT NULL)", &[])
                .map_err(|e| err(&e))?;
            let rows: Vec<String> = (0..keys_max(cfg)).map(|k| format!("({k}, '')")).collect();
            for chunk in rows.chunks(1000) {
                let sql = format!("INSERT INTO lists VALUES {}", chunk.join(", "));
                c.execute(&sql, &[]).map_err(|e| err(&e))?;
            }
            None
        }
    };
    let pool = Mutex::new(Pool::new(cfg));
    let per_thread: Vec<Result<Vec<Record>, String>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..cfg.threads)
            .map(|th| {
                let (pool, table) = (&pool, table.clone());
                s.spawn(move || worker(target, table.as_ref(), cfg, th as u64, pool))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err("worker panicked".into())))
            .collect()
    });
    let mut records = Vec::new();
    for r in per_thread {
        records.extend(r?);
    }
    let keys_used = pool.lock().map_err(|_| "pool poisoned".to_string())?.next_key;
    let finals = final_lists(target, table.as_ref(), keys_used)?;
    Ok(check(&records, &finals))
}

fn final_lists(
    target: Target<'_>,
    table: Option<&strata::Table>,
    keys: LKey,
) -> Result<HashMap<LKey, Vec<LValue>>, String> {
    let err = |e: &dyn fmt::Display| e.to_string();
    let mut out = HashMap::new();
    match target {
        Target::Api(db, _) => {
            let snap = db.begin_read().map_err(|e| err(&e))?;
            let table = table.ok_or("no table")?;
            for k in 0..keys {
                out.insert(k, decode(snap.get(table, k.to_be_bytes()).map_err(|e| err(&e))?));
            }
        }
        Target::Sql(conn) => {
            let mut c = conn.connect().map_err(|e| err(&e))?;
            let rows = c.query("SELECT k, v FROM lists", &[]).map_err(|e| err(&e))?;
            for row in rows.rows.iter() {
                let (strata_sql::Value::Integer(k), strata_sql::Value::Text(v)) =
                    (&row[0], &row[1])
                else {
                    return Err(format!("unexpected row {row:?}"));
                };
                out.insert(*k as LKey, decode_text(v));
            }
        }
    }
    Ok(out)
}

fn worker(
    target: Target<'_>,
    table: Option<&strata::Table>,
    cfg: &Config,
    th: u64,
    pool: &Mutex<Pool>,
) -> Result<Vec<Record>, String> {
    let mut rng = crate::bank::rng(cfg.seed ^ (th + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let mut next = move || rand::RngCore::next_u64(&mut rng);
    let mut sql = match target {
        Target::Sql(conn) => Some(conn.connect().map_err(|e| e.to_string())?),
        Target::Api(..) => None,
    };
    let txns = cfg.txns / cfg.threads + usize::from((th as usize) < cfg.txns % cfg.threads);
    let mut seq = 0u64;
    let mut out = Vec::with_capacity(txns);
    for _ in 0..txns {
        let n_ops = 3 + next() % 2;
        let mut plan = Vec::with_capacity(n_ops as usize);
        {
            let mut pool = pool.lock().map_err(|_| "pool poisoned".to_string())?;
            for _ in 0..n_ops {
                let append = next() % 2 == 0;
                let key = pool.pick(next(), append);
                let value = append.then(|| {
                    seq += 1;
                    ((th + 1) << 40) | seq
                });
                plan.push((key, value));
            }
        }
        let record = match (&mut sql, target) {
            (Some(conn), _) => sql_txn(conn, &plan, cfg)?,
            (None, Target::Api(db, isolation)) => {
                api_txn(db, isolation, table.ok_or("no table")?, &plan, cfg)?
            }
            (None, Target::Sql(_)) => unreachable!("SQL workers hold a connection"),
        };
        out.push(record);
    }
    Ok(out)
}

fn pause(cfg: &Config) {
    if cfg.op_sleep_us > 0 {
        std::thread::sleep(Duration::from_micros(cfg.op_sleep_us));
    }
}

fn api_txn(
    db: &strata::Database,
    isolation: strata::Isolation,
    table: &strata::Table,
    plan: &[(LKey, Option<LValue>)],
    cfg: &Config,
) -> Result<Record, String> {
    let fatal = |e: strata::Error| -> Result<Record, String> { Err(e.to_string()) };
    let mut txn = match db.begin_with(isolation) {
        Ok(t) => t,
        Err(e) => return fatal(e),
    };
    let mut ops = Vec::with_capacity(plan.len());
    for (i, &(key, value)) in plan.iter().enumerate() {
        if i > 0 {
            pause(cfg);
        }
        let seen = match txn.get(table, key.to_be_bytes()) {
            Ok(v) => decode(v),
            Err(e) => return fatal(e),
        };
        match value {
            None => ops.push(Op::Read(key, seen)),
            Some(value) => {
                let mut list = seen.clone();
                list.push(value);
                if let Err(e) = txn.put(table, key.to_be_bytes(), encode(&list)) {
                    return fatal(e);
                }
                ops.push(Op::Append { key, value, seen: Some(seen) });
            }
        }
    }
    pause(cfg);
    let committed = match txn.commit() {
        Ok(_) => true,
        Err(e) if e.is_retryable() => false,
        Err(e) => return fatal(e),
    };
    Ok(Record { ops, committed })
}

fn sql_txn(
    conn: &mut strata_sql::Connection,
    plan: &[(LKey, Option<LValue>)],
    cfg: &Config,
) -> Result<Record, String> {
    use strata_sql::Value;
    let mut ops = Vec::with_capacity(plan.len());
    let outcome = (|| -> strata_sql::Result<()> {
        conn.execute("BEGIN CONCURRENT", &[])?;
        for (i, &(key, value)) in plan.iter().enumerate() {
            if i > 0 {
                pause(cfg);
            }
            let k = Value::Integer(key as i64);
            match value {
                None => {
                    let rows = conn.query("SELECT v FROM lists WHERE k = ?", &[k])?;
                    let seen = match rows.rows.first().map(|r| &r[0]) {
                        Some(Value::Text(t)) => decode_text(t),
                        _ => Vec::new(),
                    };
                    ops.push(Op::Read(key, seen));
                }
                Some(value) => {
                    let suffix = Value::Text(format!(",{value}"));
                    conn.execute("UPDATE lists SET v = v || ? WHERE k = ?", &[suffix, k])?;
                    ops.push(Op::Append { key, value, seen: None });
                }
            }
        }
        pause(cfg);
        conn.execute("COMMIT", &[])?;
        Ok(())
    })();
    let committed = match outcome {
        Ok(()) => true,
        Err(e) if e.is_retryable() => {
            if conn.in_transaction() {
                conn.execute("ROLLBACK", &[]).map_err(|e| e.to_string())?;
            }
            false
        }
        Err(e) => return Err(e.to_string()),
    };
    Ok(Record { ops, committed })
}

fn is_prefix(observed: &[LValue], list: &[LValue]) -> bool {
    observed.len() <= list.len() && list[..observed.len()] == *observed
}

/// Judges `records` against the final lists (module doc).
fn check(records: &[Record], finals: &HashMap<LKey, Vec<LValue>>) -> Report {
    let mut report = Report { keys: finals.len(), ..Report::default() };
    let empty = Vec::new();
    let final_of = |k: LKey| finals.get(&k).unwrap_or(&empty);
    let mut committed_values: HashSet<(LKey, LValue)> = HashSet::new();
    let mut failed_values: HashSet<(LKey, LValue)> = HashSet::new();
    for r in records {
        if r.committed {
            report.committed += 1;
        } else {
            report.failed += 1;
        }
        // A failed txn's reads may include its own earlier appends (it sees its own writes);
        // only what it read from its snapshot must be a prefix of the final list.
        let mut own: HashSet<(LKey, LValue)> = HashSet::new();
        for op in &r.ops {
            let (key, observed) = match op {
                Op::Read(key, seen) => (*key, Some(seen.clone())),
                Op::Append { key, value, seen } => {
                    if r.committed {
                        committed_values.insert((*key, *value));
                        report.appends_committed += 1;
                    } else {
                        failed_values.insert((*key, *value));
                    }
                    // A committed append wrote `seen + [value]`; a failed one only read `seen`.
                    let written = seen.as_ref().map(|s| {
                        let mut l = s.clone();
                        if r.committed {
                            l.push(*value);
                        }
                        l
                    });
                    (*key, written)
                }
            };
            if let Op::Append { key, value, .. } = op {
                own.insert((*key, *value));
            }
            if let Some(mut observed) = observed {
                if !r.committed {
                    observed.retain(|v| !own.contains(&(key, *v)));
                }
                let list = final_of(key);
                if !is_prefix(&observed, list) {
                    report.anomalies.push(ListAnomaly::NotAPrefix {
                        key,
                        observed,
                        final_list: list.clone(),
                        committed: r.committed,
                    });
                }
            }
        }
    }
    for (&key, list) in finals {
        let mut seen = HashSet::new();
        for &value in list {
            if !seen.insert(value) {
                report.anomalies.push(ListAnomaly::Duplicate { key, value });
            }
            if failed_values.contains(&(key, value)) {
                report.anomalies.push(ListAnomaly::AbortedWriteVisible { key, value });
            }
        }
    }
    let mut lost: Vec<_> = committed_values
        .iter()
        .filter(|(k, v)| !final_of(*k).contains(v))
        .map(|&(key, value)| ListAnomaly::LostUpdate { key, value })
        .collect();
    lost.sort_by_key(|a| match a {
        ListAnomaly::LostUpdate { key, value } => (*key, *value),
        _ => (0, 0),
    });
    report.anomalies.extend(lost);
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(committed: bool, ops: Vec<Op>) -> Record {
        Record { ops, committed }
    }

    #[test]
    fn a_clean_history_passes() {
        let records = vec![
            rec(true, vec![Op::Append { key: 1, value: 10, seen: Some(vec![]) }]),
            rec(true, vec![Op::Append { key: 1, value: 11, seen: Some(vec![10]) }]),
            rec(false, vec![Op::Append { key: 1, value: 12, seen: Some(vec![10]) }]),
            rec(true, vec![Op::Read(1, vec![10])]),
        ];
        let finals = HashMap::from([(1, vec![10, 11])]);
        let report = check(&records, &finals);
        assert_eq!(report.anomalies, vec![]);
        assert_eq!((report.committed, report.failed, report.appends_committed), (3, 1, 2));
    }

    #[test]
    fn the_issue_12_shape_is_a_lost_update_and_not_a_prefix() {
        // Both writers read [24]; both committed; the final list kept the second one's append.
        let records = vec![
            rec(true, vec![Op::Append { key: 726, value: 26, seen: Some(vec![24]) }]),
            rec(true, vec![Op::Append { key: 726, value: 29, seen: Some(vec![24]) }]),
        ];
        let finals = HashMap::from([(726, vec![24, 29])]);
        let report = check(&records, &finals);
        assert!(report.anomalies.contains(&ListAnomaly::LostUpdate { key: 726, value: 26 }));
        assert!(report.anomalies.iter().any(|a| matches!(a, ListAnomaly::NotAPrefix { .. })));
    }

    #[test]
    fn aborted_and_duplicate_values_are_reported() {
        let records = vec![rec(false, vec![Op::Append { key: 2, value: 5, seen: None }])];
        let finals = HashMap::from([(2, vec![5, 5])]);
        let report = check(&records, &finals);
        assert!(report.anomalies.contains(&ListAnomaly::AbortedWriteVisible { key: 2, value: 5 }));
        assert!(report.anomalies.contains(&ListAnomaly::Duplicate { key: 2, value: 5 }));
    }

    #[test]
    fn text_lists_round_trip() {
        assert_eq!(decode_text(",1,22,333"), vec![1, 22, 333]);
        assert_eq!(decode_text(""), Vec::<LValue>::new());
        assert_eq!(decode(Some(encode(&[7, 8]))), vec![7, 8]);
    }
}

/// Every store and path the workload runs on (issue #12).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Path {
    /// The lock-free store, snapshot isolation, in memory.
    LockFree,
    /// The lock-free store, serializable, in memory.
    Serializable,
    /// The mutex-per-chain baseline store, in memory.
    Baseline,
    /// The lock-free store on disk (`Durability::Buffered`, small segments so the log rolls and
    /// checkpoints run during the workload); reopened after the run and checked again.
    Disk,
    /// SQL over the lock-free store in memory (`BEGIN CONCURRENT`, `UPDATE ... SET v = v || ?`).
    Sql,
}

impl Path {
    /// Every path.
    pub const ALL: [Path; 5] =
        [Path::LockFree, Path::Serializable, Path::Baseline, Path::Disk, Path::Sql];

    /// Its name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Path::LockFree => "lockfree",
            Path::Serializable => "serializable",
            Path::Baseline => "baseline",
            Path::Disk => "disk",
            Path::Sql => "sql",
        }
    }

    /// The path called `name`.
    pub fn parse(name: &str) -> Option<Path> {
        Path::ALL.into_iter().find(|p| p.name() == name)
    }
}

/// Runs the workload once on a fresh database of `path` (`dir`: where `Path::Disk` puts it; it
/// is removed first and afterwards).
pub fn run_path(path: Path, cfg: &Config, dir: &std::path::Path) -> Result<Report, String> {
    use strata::{Database, Isolation, Options, StoreKind};
    let err = |e: strata::Error| e.to_string();
    match path {
        Path::LockFree => run(Target::Api(&Database::in_memory(), Isolation::Snapshot), cfg),
        Path::Serializable => {
            run(Target::Api(&Database::in_memory(), Isolation::Serializable), cfg)
        }
        Path::Baseline => {
            let db = Database::with_options(Options::default().store(StoreKind::Baseline));
            run(Target::Api(&db, Isolation::Snapshot), cfg)
        }
        Path::Disk => {
            let _ = std::fs::remove_dir_all(dir);
            let options = || {
                Options::default()
                    .durability(strata::Durability::Buffered)
                    .segment_bytes(1 << 20)
                    .checkpoints(4 << 20, None)
            };
            let db = Database::open(dir, options()).map_err(err)?;
            let mut report = run(Target::Api(&db, Isolation::Snapshot), cfg)?;
            // What recovery restores must hold every committed append too.
            let before = final_lists(
                Target::Api(&db, Isolation::Snapshot),
                db.open_table("lists").ok().as_ref(),
                report.keys as LKey,
            )?;
            db.close().map_err(err)?;
            drop(db);
            let db = Database::open(dir, options()).map_err(err)?;
            let table = db.open_table("lists").map_err(err)?;
            let after = final_lists(
                Target::Api(&db, Isolation::Snapshot),
                Some(&table),
                report.keys as LKey,
            )?;
            if before != after {
                let key = before.keys().find(|k| before.get(k) != after.get(k)).copied();
                report.anomalies.push(ListAnomaly::NotRecovered { key: key.unwrap_or(0) });
            }
            db.close().map_err(err)?;
            drop(db);
            let _ = std::fs::remove_dir_all(dir);
            Ok(report)
        }
        Path::Sql => {
            let conn = strata_sql::Connection::open_in_memory().map_err(|e| e.to_string())?;
            run(Target::Sql(&conn), cfg)
        }
    }
}
