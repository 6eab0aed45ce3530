//! Merge histories: a recorder for real threads that add to, overwrite and read a few integer
//! keys, and a checker for what merges promise (ADR 0014).
//!
//! The unique-value trick of [`crate::history`] cannot name the writer of a merged value (a
//! merge's value is a sum), so this checker works from the commit timestamps instead: it replays
//! the committed txns in timestamp order into the value of every key at every timestamp, and
//! then checks, for every txn:
//! - **every read** returned the value at its snapshot, with the txn's own earlier writes applied
//!   (a put replaces, an add adds: what `Txn::get` over a buffered merge shows) — a lost or
//!   misplaced merge shows as a wrong read, a fractured commit as two reads that disagree;
//! - **first committer wins**: no committed put of a key has another committed write of it
//!   (put or add) between its snapshot and its commit, and no committed add has a committed put
//!   of its key there;
//! - **the final values** equal the replay (checked by the caller: [`MergeHistory::value_at`]).
//!
//! With no puts at all (`put_pct: 0`), no txn may abort: merges never conflict with each other.
//!
//! [`record`] runs the txns through the API (`Txn::add`, `Txn::put`, `Txn::get`); [`record_sql`]
//! through SQL: `BEGIN CONCURRENT`, `UPDATE merges SET n = n + ? WHERE id = ?` (which runs as a
//! merge, ADR 0014), `UPDATE merges SET n = ? WHERE id = ?`, `SELECT n FROM merges WHERE id = ?`,
//! `COMMIT`, with the timestamps from `Connection::txn_read_ts` and `last_commit_ts`.

use std::collections::BTreeMap;
use std::fmt;

/// One operation of a recorded txn, with what a read returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MergeOpRecord {
    /// A point read and the integer it returned (`None`: no row).
    Read(u64, Option<i64>),
    /// `Txn::add(key, delta)`.
    Add(u64, i64),
    /// `Txn::put(key, value)`.
    Put(u64, i64),
}

/// How a txn ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MergeOutcome {
    Committed {
        ts: u64,
    },
    /// A retryable conflict at commit.
    Conflict,
}

/// One recorded txn.
#[derive(Clone, Debug)]
pub struct MergeTxn {
    pub thread: u64,
    pub read_ts: u64,
    pub ops: Vec<MergeOpRecord>,
    pub outcome: MergeOutcome,
}

/// A recorded run.
#[derive(Clone, Debug, Default)]
pub struct MergeHistory {
    pub txns: Vec<MergeTxn>,
}

/// What the recorder runs.
#[derive(Clone, Copy, Debug)]
pub struct MergeWorkload {
    pub threads: usize,
    pub txns_per_thread: usize,
    pub keys: u64,
    /// Percent of writes that are puts (the rest are adds).
    pub put_pct: u64,
    pub seed: u64,
}

/// A violation found by [`check`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MergeAnomaly {
    /// A read returned something other than its snapshot's value with the txn's own writes.
    WrongRead { thread: u64, read_ts: u64, key: u64, saw: Option<i64>, expected: Option<i64> },
    /// A committed write of `key` lies between a committed txn's snapshot and its commit, where
    /// first-committer-wins forbids it (`by_put`: the later one is a put; else an add over a put).
    LostUpdate { key: u64, first_ts: u64, second_ts: u64, by_put: bool },
    /// A txn that only added conflicted although no txn put anything.
    MergeConflict { thread: u64, read_ts: u64 },
}

impl fmt::Display for MergeAnomaly {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MergeAnomaly::WrongRead { thread, read_ts, key, saw, expected } => write!(
                f,
                "thread {thread} (snapshot {read_ts}) read {saw:?} of key {key}, expected {expected:?}"
            ),
            MergeAnomaly::LostUpdate { key, first_ts, second_ts, by_put } => write!(
                f,
                "key {key}: the commit at {second_ts} ({}) overwrote the one at {first_ts} it did not see",
                if *by_put { "a put" } else { "an add over a put" }
            ),
            MergeAnomaly::MergeConflict { thread, read_ts } => {
                write!(f, "thread {thread} (snapshot {read_ts}): an add-only txn conflicted")
            }
        }
    }
}

/// The net write of one txn to one key: a put (with the adds after it folded in) or an add.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Net {
    Put(i64),
    Add(i64),
}

fn net_writes(ops: &[MergeOpRecord]) -> BTreeMap<u64, Net> {
    let mut out = BTreeMap::new();
    for op in ops {
        match *op {
            MergeOpRecord::Put(k, v) => {
                out.insert(k, Net::Put(v));
            }
            MergeOpRecord::Add(k, d) => {
                let next = match out.get(&k) {
                    None => Net::Add(d),
                    Some(Net::Add(a)) => Net::Add(a + d),
                    Some(Net::Put(v)) => Net::Put(v + d),
                };
                out.insert(k, next);
            }
            MergeOpRecord::Read(..) => {}
        }
    }
    out
}

impl MergeHistory {
    /// Committed txns in timestamp order, with their net writes.
    fn committed(&self) -> Vec<(u64, u64, BTreeMap<u64, Net>)> {
        let mut out: Vec<_> = self
            .txns
            .iter()
            .filter_map(|t| match t.outcome {
                MergeOutcome::Committed { ts } => Some((ts, t.read_ts, net_writes(&t.ops))),
                MergeOutcome::Conflict => None,
            })
            .filter(|(_, _, w)| !w.is_empty())
            .collect();
        out.sort_by_key(|(ts, ..)| *ts);
        out
    }

    /// The value of `key` after every commit at or below `ts` (`None`: never written).
    pub fn value_at(&self, key: u64, ts: u64) -> Option<i64> {
        let mut value = None;
        for (t, _, writes) in self.committed() {
            if t > ts {
                break;
            }
            match writes.get(&key) {
                Some(Net::Put(v)) => value = Some(*v),
                Some(Net::Add(d)) => value = Some(value.unwrap_or(0) + d),
                None => {}
            }
        }
        value
    }
}

/// Checks `history` (module doc). `merges_only`: the workload had no puts.
pub fn check(history: &MergeHistory, merges_only: bool) -> Vec<MergeAnomaly> {
    let committed = history.committed();
    // Per key, the value after each commit that wrote it, in timestamp order.
    let mut timeline: BTreeMap<u64, Vec<(u64, Option<i64>, bool)>> = BTreeMap::new();
    for (ts, _, writes) in &committed {
        for (k, w) in writes {
            let line = timeline.entry(*k).or_default();
            let before = line.last().and_then(|(_, v, _)| *v);
            let (after, is_put) = match w {
                Net::Put(v) => (*v, true),
                Net::Add(d) => (before.unwrap_or(0) + d, false),
            };
            line.push((*ts, Some(after), is_put));
        }
    }
    let at = |key: u64, ts: u64| -> Option<i64> {
        timeline.get(&key)?.iter().rev().find(|(t, ..)| *t <= ts).and_then(|(_, v, _)| *v)
    };
    let mut anomalies = Vec::new();
    for txn in &history.txns {
        // Reads: the snapshot's value with this txn's own earlier writes over it.
        let mut own: BTreeMap<u64, Option<i64>> = BTreeMap::new();
        for op in &txn.ops {
            match *op {
                MergeOpRecord::Read(k, saw) => {
                    let expected = *own.entry(k).or_insert_with(|| at(k, txn.read_ts));
                    if saw != expected {
                        anomalies.push(MergeAnomaly::WrongRead {
                            thread: txn.thread,
                            read_ts: txn.read_ts,
                            key: k,
                            saw,
                            expected,
                        });
                    }
                }
                MergeOpRecord::Put(k, v) => {
                    own.insert(k, Some(v));
                }
                MergeOpRecord::Add(k, d) => {
                    let base = *own.entry(k).or_insert_with(|| at(k, txn.read_ts));
                    own.insert(k, Some(base.unwrap_or(0) + d));
                }
            }
        }
        if merges_only && txn.outcome == MergeOutcome::Conflict {
            anomalies
                .push(MergeAnomaly::MergeConflict { thread: txn.thread, read_ts: txn.read_ts });
        }
    }
    // First committer wins: what each committed write may not have between snapshot and commit.
    for (ts, read_ts, writes) in &committed {
        for (k, w) in writes {
            let between = timeline[k].iter().filter(|(t, ..)| *t > *read_ts && *t < *ts);
            for (t, _, is_put) in between {
                let by_put = matches!(w, Net::Put(_));
                if by_put || *is_put {
                    anomalies.push(MergeAnomaly::LostUpdate {
                        key: *k,
                        first_ts: *t,
                        second_ts: *ts,
                        by_put,
                    });
                }
            }
        }
    }
    anomalies
}

/// Runs `w` on `db` (a table `merges`, every key starting at 0) and records it.
pub fn record(db: &strata::Database, w: MergeWorkload) -> strata::Result<MergeHistory> {
    let table = db.create_or_open_table("merges")?;
    let mut preload = db.begin()?;
    for k in 0..w.keys {
        preload.put(&table, k.to_be_bytes(), 0i64.to_le_bytes())?;
    }
    let preload_ts = preload.commit()?.get();
    let per_thread: Vec<strata::Result<Vec<MergeTxn>>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..w.threads as u64)
            .map(|th| {
                let table = table.clone();
                s.spawn(move || run_thread(db, &table, w, th))
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("merge history worker panicked")).collect()
    });
    assemble(per_thread, w.keys, preload_ts)
}

/// The threads' txns, and the preload (a put of 0 to every key, committed at `preload_ts`) as a
/// committed txn of puts like any other.
fn assemble<E>(
    per_thread: Vec<Result<Vec<MergeTxn>, E>>,
    keys: u64,
    preload_ts: u64,
) -> Result<MergeHistory, E> {
    let mut history = MergeHistory::default();
    for txns in per_thread {
        history.txns.extend(txns?);
    }
    history.txns.push(MergeTxn {
        thread: u64::MAX,
        read_ts: preload_ts - 1,
        ops: (0..keys).map(|k| MergeOpRecord::Put(k, 0)).collect(),
        outcome: MergeOutcome::Committed { ts: preload_ts },
    });
    Ok(history)
}

fn run_thread(
    db: &strata::Database,
    table: &strata::Table,
    w: MergeWorkload,
    th: u64,
) -> strata::Result<Vec<MergeTxn>> {
    let mut next = crate::history::thread_rng(w.seed, th);
    let int = |v: Option<Vec<u8>>| v.map(|b| i64::from_le_bytes(b.try_into().unwrap_or([0; 8])));
    let mut out = Vec::with_capacity(w.txns_per_thread);
    for _ in 0..w.txns_per_thread {
        let mut txn = db.begin()?;
        let read_ts = txn.read_ts().get();
        let mut ops = Vec::new();
        for op in draw_txn(&mut next, &w) {
            ops.push(match op {
                Draw::Read(key) => {
                    MergeOpRecord::Read(key, int(txn.get(table, key.to_be_bytes())?))
                }
                Draw::Put(key, value) => {
                    txn.put(table, key.to_be_bytes(), value.to_le_bytes())?;
                    MergeOpRecord::Put(key, value)
                }
                Draw::Add(key, delta) => {
                    txn.add(table, key.to_be_bytes(), delta)?;
                    MergeOpRecord::Add(key, delta)
                }
            });
        }
        let outcome = match txn.commit() {
            Ok(ts) => MergeOutcome::Committed { ts: ts.get() },
            Err(e) if e.is_retryable() => MergeOutcome::Conflict,
            Err(e) => return Err(e),
        };
        out.push(MergeTxn { thread: th, read_ts, ops, outcome });
    }
    Ok(out)
}

/// The ops of one txn, drawn from the workload's mix: 1–4 ops on random keys, 35% reads and the
/// rest writes, `put_pct` of them puts of 0..1000 and the others adds of −9..9.
enum Draw {
    Read(u64),
    Add(u64, i64),
    Put(u64, i64),
}

fn draw_txn(next: &mut impl FnMut(u64) -> u64, w: &MergeWorkload) -> Vec<Draw> {
    (0..1 + next(4))
        .map(|_| {
            let key = next(w.keys);
            match next(100) {
                r if r < 35 => Draw::Read(key),
                r if r < 35 + w.put_pct * 65 / 100 => Draw::Put(key, next(1000) as i64),
                _ => Draw::Add(key, next(19) as i64 - 9),
            }
        })
        .collect()
}

/// As [`record`], through SQL: `conn` is the database's first connection (each thread opens a
/// sibling). Creates the table `merges (id INTEGER PRIMARY KEY, n INTEGER NOT NULL)` with a row
/// of 0 per key. A txn whose COMMIT fails with a retryable error is recorded as a conflict. (Not
/// in the model-checking builds, which leave out the SQL frontend.)
#[cfg(not(any(loom, shuttle)))]
pub fn record_sql(conn: &strata_sql::Connection, w: MergeWorkload) -> Result<MergeHistory, String> {
    record_sql_with(conn, w, "BEGIN CONCURRENT")
}

/// [`record_sql`] with each txn opened by `begin` (e.g. `BEGIN TRANSACTION ISOLATION LEVEL
/// SERIALIZABLE`).
#[cfg(not(any(loom, shuttle)))]
pub fn record_sql_with(
    conn: &strata_sql::Connection,
    w: MergeWorkload,
    begin: &str,
) -> Result<MergeHistory, String> {
    let err = |e: strata_sql::Error| e.to_string();
    let mut c = conn.connect().map_err(err)?;
    c.execute("CREATE TABLE merges (id INTEGER PRIMARY KEY, n INTEGER NOT NULL)", &[])
        .map_err(err)?;
    c.execute("BEGIN", &[]).map_err(err)?;
    for k in 0..w.keys {
        c.execute("INSERT INTO merges VALUES (?, 0)", &[strata_sql::Value::Integer(k as i64)])
            .map_err(err)?;
    }
    c.execute("COMMIT", &[]).map_err(err)?;
    let preload_ts = c.last_commit_ts().ok_or("the preload has no commit timestamp")?.get();
    let per_thread: Vec<Result<Vec<MergeTxn>, String>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..w.threads as u64)
            .map(|th| s.spawn(move || run_sql_thread(conn, w, th, begin)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err("merge history worker panicked".into())))
            .collect()
    });
    assemble(per_thread, w.keys, preload_ts)
}

#[cfg(not(any(loom, shuttle)))]
fn run_sql_thread(
    conn: &strata_sql::Connection,
    w: MergeWorkload,
    th: u64,
    begin: &str,
) -> Result<Vec<MergeTxn>, String> {
    use strata_sql::Value::Integer;
    let err = |e: strata_sql::Error| e.to_string();
    let mut c = conn.connect().map_err(err)?;
    let read = c.prepare("SELECT n FROM merges WHERE id = ?").map_err(err)?;
    let add = c.prepare("UPDATE merges SET n = n + ? WHERE id = ?").map_err(err)?;
    let put = c.prepare("UPDATE merges SET n = ? WHERE id = ?").map_err(err)?;
    let mut next = crate::history::thread_rng(w.seed, th);
    let mut out = Vec::with_capacity(w.txns_per_thread);
    for _ in 0..w.txns_per_thread {
        c.execute(begin, &[]).map_err(err)?;
        let read_ts = c.txn_read_ts().ok_or("BEGIN opened no txn")?.get();
        let mut ops = Vec::new();
        for op in draw_txn(&mut next, &w) {
            let key = |k: u64| Integer(k as i64);
            ops.push(match op {
                Draw::Read(k) => {
                    let rows = read.query(&mut c, &[key(k)]).map_err(err)?;
                    let n = match rows.rows.first().map(|r| &r[0]) {
                        None => None,
                        Some(Integer(n)) => Some(*n),
                        Some(other) => return Err(format!("key {k}: read {other:?}")),
                    };
                    MergeOpRecord::Read(k, n)
                }
                Draw::Add(k, delta) => {
                    add.execute(&mut c, &[Integer(delta), key(k)]).map_err(err)?;
                    MergeOpRecord::Add(k, delta)
                }
                Draw::Put(k, value) => {
                    put.execute(&mut c, &[Integer(value), key(k)]).map_err(err)?;
                    MergeOpRecord::Put(k, value)
                }
            });
        }
        let outcome = match c.execute("COMMIT", &[]) {
            Ok(_) => MergeOutcome::Committed {
                ts: c.last_commit_ts().ok_or("COMMIT left no timestamp")?.get(),
            },
            Err(e) if e.is_retryable() => MergeOutcome::Conflict,
            Err(e) => return Err(e.to_string()),
        };
        out.push(MergeTxn { thread: th, read_ts, ops, outcome });
    }
    Ok(out)
}
