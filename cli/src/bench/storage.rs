//! The storage measurements of `--suite cold-open` (issue #14), for Strata's API and SQLite on
//! the database the suite loaded:
//!
//! - **a fresh process's point read**: this binary started again (`strata probe-read`, a
//!   hidden command) opens the database, reads one row and exits; the median of five wall
//!   times from spawn to exit, process start included (the same binary for every engine);
//! - **YCSB C**: one second of uniform random point reads on the open handle, and the resident
//!   memory (anonymous and file-backed) the open and the reads added;
//! - **bytes written per changed row**: 1% of the rows changed at random, then 1% in key
//!   order (transactions of 100 rows, each committed durably), then a checkpoint; the bytes
//!   the process sent to the page cache for writing (`write_bytes` of `/proc/self/io`: a page
//!   counts each time it goes from clean to dirty, whether written with `pwrite` or through a
//!   mapping) divided by the rows changed. For Strata also its own count (log bytes appended
//!   plus checkpoint bytes) and, beside it, the bytes it wrote to prepare log files meanwhile
//!   (`LogStats::bytes_prepared`: zero-filling new segments and spares, zeroing recycled ones);
//! - **commit latency during a checkpoint**: 5% of the rows changed (not checkpointed), then a
//!   writer thread commits one-row updates, durably, for a second without a checkpoint and
//!   then while a checkpoint of those changes runs (SQLite: `PRAGMA wal_checkpoint(PASSIVE)`
//!   from another connection, automatic checkpoints off, so it neither blocks the writer nor
//!   runs at other times); the 99th percentile of each window, and for Strata also of the
//!   commits that overlapped the base file's syncs (`CheckpointReport::base_synced`).

use serde::Serialize;
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use strata::{Database, Table};

use super::workload::Rng;
use rand::{Rng as _, SeedableRng};

/// Rows per transaction of the change phases.
const CHANGE_ROWS_PER_TXN: usize = 100;

/// What the storage measurements found for one engine.
#[derive(Serialize, Debug, Clone, Default)]
pub struct StorageRow {
    /// Milliseconds from spawning a process that opens the database and reads one row to its
    /// exit.
    pub fresh_process_read_ms: f64,
    /// Uniform random point reads per second on the open handle (one thread, one second).
    pub ycsb_c_reads_s: f64,
    /// Resident memory the open and the reads added (MiB), anonymous and file-backed.
    pub anon_mib_after_reads: Option<f64>,
    pub file_mib_after_reads: Option<f64>,
    /// Bytes dirtied per changed row, 1% changed at random / in key order, checkpoint included.
    pub random_bytes_per_row: Option<f64>,
    pub ordered_bytes_per_row: Option<f64>,
    /// Strata's own count of the same (log bytes appended plus checkpoint bytes).
    pub random_engine_bytes_per_row: Option<f64>,
    pub ordered_engine_bytes_per_row: Option<f64>,
    /// Strata's count of the bytes written to prepare log files meanwhile (zero-filling new
    /// segments and spares, zeroing recycled ones: `LogStats::bytes_prepared`), per changed row.
    pub random_prepared_bytes_per_row: Option<f64>,
    pub ordered_prepared_bytes_per_row: Option<f64>,
    /// One-row durable commits: 99th percentile latency (µs) without and during a checkpoint,
    /// and the commits measured during it.
    pub commit_p99_us: f64,
    /// (`null` for an engine with no checkpoint to overlap: redb.)
    pub commit_p99_checkpoint_us: Option<f64>,
    pub commits_during_checkpoint: u64,
    pub checkpoint_ms: Option<f64>,
    /// Strata only: the commits of that window whose time overlapped the base file's syncs
    /// (`CheckpointReport::base_synced`), their 99th percentile (µs), and the syncs' length
    /// (ms): whether the checkpoint's effect on commits is its sync competing with theirs.
    pub commit_p99_base_sync_us: Option<f64>,
    pub commits_during_base_sync: u64,
    pub base_sync_ms: Option<f64>,
    /// Every changed row reads back its new value.
    pub gate: String,
}

/// `write_bytes` of `/proc/self/io` (Linux only).
fn write_bytes() -> Option<u64> {
    let io = std::fs::read_to_string("/proc/self/io").ok()?;
    let line = io.lines().find(|l| l.starts_with("write_bytes:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Fresh-process reads per engine; the suite reports their median (one spawn swings with
/// what else the machine does).
const FRESH_READS: usize = 5;

/// Runs `strata probe-read` on `dir` for `key` `FRESH_READS` times; (the median of the
/// milliseconds from spawn to exit, the value printed). Runs that print different values are
/// an error.
pub fn fresh_process_read(
    engine: &str,
    dir: &Path,
    key: u64,
) -> Result<(f64, Option<u64>), String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut times = Vec::with_capacity(FRESH_READS);
    let mut seen: Option<Option<u64>> = None;
    for _ in 0..FRESH_READS {
        let t = Instant::now();
        let out = std::process::Command::new(&exe)
            .args(["probe-read", "--engine", engine, "--key", &key.to_string()])
            .arg(dir)
            .output()
            .map_err(|e| e.to_string())?;
        times.push(t.elapsed().as_secs_f64() * 1e3);
        if !out.status.success() {
            return Err(format!(
                "probe-read {engine}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        let value = String::from_utf8_lossy(&out.stdout).trim().parse().ok();
        match seen {
            None => seen = Some(value),
            Some(first) if first != value => {
                return Err(format!(
                    "probe-read {engine}: the first run read {first:?}, a later one {value:?}"
                ))
            }
            Some(_) => {}
        }
    }
    times.sort_by(f64::total_cmp);
    Ok((times[FRESH_READS / 2], seen.flatten()))
}

/// `strata probe-read` (hidden; the cold-open suite's fresh process).
#[derive(clap::Args, Debug)]
pub struct ProbeArgs {
    /// strata, sqlite or redb.
    #[arg(long)]
    engine: String,
    /// The row to read.
    #[arg(long)]
    key: u64,
    /// The database directory the suite loaded.
    dir: std::path::PathBuf,
}

/// `strata probe-read`: opens the database in `dir` as `engine` does, reads `key`, prints its
/// value (nothing when absent).
pub fn probe_read(args: &ProbeArgs) -> Result<(), String> {
    let (dir, key) = (args.dir.as_path(), args.key);
    let value: Option<u64> = match args.engine.as_str() {
        "strata" => {
            let e = |e: strata::Error| e.to_string();
            let db = Database::open(dir, strata::Options::default()).map_err(e)?;
            let t = db.open_table("counters").map_err(e)?;
            let v = db.begin_read().and_then(|s| s.get(&t, key.to_be_bytes())).map_err(e)?;
            db.close().map_err(e)?;
            v.and_then(|v| v.try_into().ok()).map(u64::from_le_bytes)
        }
        "sqlite" => {
            let e = |e: rusqlite::Error| e.to_string();
            let conn = rusqlite::Connection::open(dir.join("cold.sqlite")).map_err(e)?;
            let v: i64 = conn
                .query_row("SELECT n FROM counters WHERE id = ?1", [key as i64], |r| r.get(0))
                .map_err(e)?;
            Some(v as u64)
        }
        "redb" => super::redb::probe(dir, key)?,
        other => return Err(format!("probe-read: unknown engine {other}")),
    };
    if let Some(v) = value {
        println!("{v}");
    }
    Ok(())
}

/// The 99th percentile of `lat` (µs); 0 when empty.
pub(super) fn p99(mut lat: Vec<Duration>) -> f64 {
    if lat.is_empty() {
        return 0.0;
    }
    lat.sort_unstable();
    let i = ((lat.len() as f64 * 0.99).ceil() as usize).clamp(1, lat.len()) - 1;
    lat[i].as_secs_f64() * 1e6
}

/// `n` distinct keys below `keys`: at random, or a run in key order from a random start.
fn change_set(rng: &mut Rng, keys: u64, n: u64, ordered: bool) -> Vec<u64> {
    let n = n.clamp(1, keys);
    if ordered {
        let start = rng.random_range(0..=keys - n);
        return (start..start + n).collect();
    }
    let mut set = BTreeSet::new();
    while (set.len() as u64) < n {
        set.insert(rng.random_range(0..keys));
    }
    let mut v: Vec<u64> = set.into_iter().collect();
    // Committed in random order, as a random workload would.
    for i in (1..v.len()).rev() {
        v.swap(i, rng.random_range(0..=i));
    }
    v
}

/// The value a change phase writes for `key` in round `round`.
pub(super) fn changed(key: u64, round: u64) -> u64 {
    key + round * 1_000_000_000
}

/// The bytes-per-changed-row rounds for an engine Strata has no counts of its own for (SQLite,
/// redb): 1% of the rows changed at random, then 1% in key order, `CHANGE_ROWS_PER_TXN` per
/// `apply(chunk, round)` (one durable commit), then `settle` (a checkpoint, if the engine has
/// one); the bytes dirtied per row go into `row`. Returns the first row `read` finds without
/// its change, if any.
pub(super) fn change_rounds(
    rng: &mut Rng,
    keys: u64,
    row: &mut StorageRow,
    mut apply: impl FnMut(&[u64], u64) -> Result<(), String>,
    mut settle: impl FnMut() -> Result<(), String>,
    mut read: impl FnMut(u64) -> Result<Option<u64>, String>,
) -> Result<Option<String>, String> {
    let mut bad = None;
    for (round, ordered) in [(1u64, false), (2, true)] {
        let set = change_set(rng, keys, keys / 100, ordered);
        let io0 = write_bytes();
        for chunk in set.chunks(CHANGE_ROWS_PER_TXN) {
            apply(chunk, round)?;
        }
        settle()?;
        let io1 = write_bytes();
        let page = io0.zip(io1).map(|(a, b)| (b - a) as f64 / set.len() as f64);
        if ordered {
            row.ordered_bytes_per_row = page;
        } else {
            row.random_bytes_per_row = page;
        }
        for &k in &set {
            if read(k)? != Some(changed(k, round)) && bad.is_none() {
                bad = Some(format!("key {k} lost its change of round {round}"));
            }
        }
    }
    Ok(bad)
}

/// What a writer thread saw: start of each commit, and its latency.
type Samples = Vec<(Instant, Duration)>;

fn split(samples: &Samples, from: Instant, to: Instant) -> (Vec<Duration>, Vec<Duration>) {
    let before: Vec<Duration> = samples.iter().filter(|(t, _)| *t < from).map(|s| s.1).collect();
    let during: Vec<Duration> =
        samples.iter().filter(|(t, _)| *t >= from && *t < to).map(|s| s.1).collect();
    (before, during)
}

/// YCSB C: uniform random point reads of `keys` rows for one second; reads per second.
pub(super) fn ycsb_c(
    rng: &mut Rng,
    keys: u64,
    mut read: impl FnMut(u64) -> Result<(), String>,
) -> Result<f64, String> {
    let started = Instant::now();
    let deadline = started + Duration::from_secs(1);
    let mut reads = 0u64;
    while Instant::now() < deadline {
        for _ in 0..256 {
            read(rng.random_range(0..keys))?;
            reads += 1;
        }
    }
    Ok(reads as f64 / started.elapsed().as_secs_f64())
}

/// The storage measurements on Strata's open `db` (its table `counters` of `keys` rows).
/// `mem` reads the resident memory added since before the open; it is called after the reads.
pub fn strata(
    db: &Database,
    keys: u64,
    row: &mut StorageRow,
    mem: &dyn Fn() -> (Option<f64>, Option<f64>),
) -> Result<(), String> {
    let e = |e: strata::Error| e.to_string();
    let t = db.open_table("counters").map_err(e)?;
    let mut rng = Rng::seed_from_u64(14);
    row.ycsb_c_reads_s = ycsb_c(&mut rng, keys, |k| {
        match db.begin_read().and_then(|s| s.get(&t, k.to_be_bytes())).map_err(e)? {
            Some(_) => Ok(()),
            None => Err(format!("key {k} missing")),
        }
    })?;
    (row.anon_mib_after_reads, row.file_mib_after_reads) = mem();
    // Bytes written per changed row.
    let mut bad = None;
    for (round, ordered) in [(1u64, false), (2, true)] {
        let set = change_set(&mut rng, keys, keys / 100, ordered);
        let io0 = write_bytes();
        let log_counts = || {
            db.durability_stats().map_or((0, 0), |s| (s.log.bytes_appended, s.log.bytes_prepared))
        };
        let (log0, prep0) = log_counts();
        for chunk in set.chunks(CHANGE_ROWS_PER_TXN) {
            db.transaction(|txn| {
                for k in chunk {
                    txn.put(&t, k.to_be_bytes(), changed(*k, round).to_le_bytes())?;
                }
                Ok(())
            })
            .map_err(e)?;
        }
        let log1 = log_counts().0;
        let report = db.checkpoint().map_err(e)?;
        let io1 = write_bytes();
        let prep1 = log_counts().1;
        let n = set.len() as f64;
        let page = io0.zip(io1).map(|(a, b)| (b - a) as f64 / n);
        let own = Some(((log1 - log0) + report.bytes) as f64 / n);
        let prepared = Some((prep1 - prep0) as f64 / n);
        if ordered {
            (row.ordered_bytes_per_row, row.ordered_engine_bytes_per_row) = (page, own);
            row.ordered_prepared_bytes_per_row = prepared;
        } else {
            (row.random_bytes_per_row, row.random_engine_bytes_per_row) = (page, own);
            row.random_prepared_bytes_per_row = prepared;
        }
        let snap = db.begin_read().map_err(e)?;
        for k in &set {
            let want = changed(*k, round).to_le_bytes().to_vec();
            if snap.get(&t, k.to_be_bytes()).map_err(e)? != Some(want) && bad.is_none() {
                bad = Some(format!("key {k} lost its change of round {round}"));
            }
        }
    }
    // Commit latency during a checkpoint.
    let set = change_set(&mut rng, keys, keys / 20, false);
    for chunk in set.chunks(1000) {
        db.transaction(|txn| {
            for k in chunk {
                txn.put(&t, k.to_be_bytes(), changed(*k, 3).to_le_bytes())?;
            }
            Ok(())
        })
        .map_err(e)?;
    }
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (db, t, stop) = (db.clone(), t.clone(), stop.clone());
        std::thread::spawn(move || -> Result<Samples, String> {
            strata_writer(&db, &t, keys, &stop).map_err(|e| e.to_string())
        })
    };
    std::thread::sleep(Duration::from_secs(1));
    let from = Instant::now();
    let report = db.checkpoint().map_err(e);
    let to = Instant::now();
    stop.store(true, Ordering::Relaxed);
    let samples = writer.join().map_err(|_| "the writer panicked".to_string())??;
    let report = report?;
    commit_figures(row, &samples, from, to);
    if let Some((s0, s1)) = report.base_synced {
        let overlapping: Vec<Duration> =
            samples.iter().filter(|(at, lat)| *at < s1 && *at + *lat > s0).map(|s| s.1).collect();
        row.commits_during_base_sync = overlapping.len() as u64;
        row.commit_p99_base_sync_us = Some(p99(overlapping));
        row.base_sync_ms = Some((s1 - s0).as_secs_f64() * 1e3);
    }
    row.gate = bad.map_or("pass".into(), |b| format!("FAILED: {b}"));
    Ok(())
}

fn strata_writer(
    db: &Database,
    t: &Table,
    keys: u64,
    stop: &AtomicBool,
) -> strata::Result<Samples> {
    let mut rng = Rng::seed_from_u64(15);
    let mut samples = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let k = rng.random_range(0..keys);
        let at = Instant::now();
        db.transaction(|txn| txn.put(t, k.to_be_bytes(), changed(k, 4).to_le_bytes()))?;
        samples.push((at, at.elapsed()));
    }
    Ok(samples)
}

fn commit_figures(row: &mut StorageRow, samples: &Samples, from: Instant, to: Instant) {
    let (before, during) = split(samples, from, to);
    row.commits_during_checkpoint = during.len() as u64;
    row.commit_p99_us = p99(before);
    row.commit_p99_checkpoint_us = Some(p99(during));
    row.checkpoint_ms = Some((to - from).as_secs_f64() * 1e3);
}

/// The storage measurements on SQLite's open connection (its table `counters`).
pub fn sqlite(
    conn: &rusqlite::Connection,
    file: &Path,
    keys: u64,
    row: &mut StorageRow,
    mem: &dyn Fn() -> (Option<f64>, Option<f64>),
) -> Result<(), String> {
    let e = |e: rusqlite::Error| e.to_string();
    conn.pragma_update(None, "synchronous", "FULL").map_err(e)?;
    let mut rng = Rng::seed_from_u64(14);
    {
        let mut get = conn.prepare_cached("SELECT n FROM counters WHERE id = ?1").map_err(e)?;
        row.ycsb_c_reads_s = ycsb_c(&mut rng, keys, |k| {
            get.query_row([k as i64], |r| r.get::<_, i64>(0)).map(|_| ()).map_err(e)
        })?;
    }
    (row.anon_mib_after_reads, row.file_mib_after_reads) = mem();
    let update = |conn: &rusqlite::Connection, ks: &[u64], round: u64| -> Result<(), String> {
        conn.execute_batch("BEGIN").map_err(e)?;
        {
            let mut up =
                conn.prepare_cached("UPDATE counters SET n = ?2 WHERE id = ?1").map_err(e)?;
            for k in ks {
                up.execute([*k as i64, changed(*k, round) as i64]).map_err(e)?;
            }
        }
        conn.execute_batch("COMMIT").map_err(e)
    };
    let bad = change_rounds(
        &mut rng,
        keys,
        row,
        |chunk, round| update(conn, chunk, round),
        || conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())).map_err(e),
        |k| {
            let mut get = conn.prepare_cached("SELECT n FROM counters WHERE id = ?1").map_err(e)?;
            get.query_row([k as i64], |r| r.get::<_, i64>(0)).map(|v| Some(v as u64)).map_err(e)
        },
    )?;
    // Commit latency during a checkpoint: automatic checkpoints off on both connections.
    conn.pragma_update(None, "wal_autocheckpoint", 0).map_err(e)?;
    let set = change_set(&mut rng, keys, keys / 20, false);
    for chunk in set.chunks(1000) {
        update(conn, chunk, 3)?;
    }
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (file, stop) = (file.to_path_buf(), stop.clone());
        std::thread::spawn(move || -> Result<Samples, String> {
            let e = |e: rusqlite::Error| e.to_string();
            let w = rusqlite::Connection::open(&file).map_err(e)?;
            w.pragma_update(None, "synchronous", "FULL").map_err(e)?;
            w.pragma_update(None, "wal_autocheckpoint", 0).map_err(e)?;
            w.busy_timeout(Duration::from_secs(10)).map_err(e)?;
            let mut up = w.prepare("UPDATE counters SET n = ?2 WHERE id = ?1").map_err(e)?;
            let mut rng = Rng::seed_from_u64(15);
            let mut samples = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let k = rng.random_range(0..keys);
                let at = Instant::now();
                up.execute([k as i64, changed(k, 4) as i64]).map_err(e)?;
                samples.push((at, at.elapsed()));
            }
            Ok(samples)
        })
    };
    std::thread::sleep(Duration::from_secs(1));
    let from = Instant::now();
    let done = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())).map_err(e);
    let to = Instant::now();
    stop.store(true, Ordering::Relaxed);
    let samples = writer.join().map_err(|_| "the writer panicked".to_string())??;
    done?;
    commit_figures(row, &samples, from, to);
    conn.pragma_update(None, "wal_autocheckpoint", 1000).map_err(e)?;
    row.gate = bad.map_or("pass".into(), |b| format!("FAILED: {b}"));
    Ok(())
}

/// The second results table.
pub fn print(rows: &[(String, StorageRow)]) {
    use comfy_table::{presets::UTF8_BORDERS_ONLY, Cell, CellAlignment, Table};
    let mut grid = Table::new();
    grid.load_preset(UTF8_BORDERS_ONLY);
    grid.set_header(vec![
        "engine",
        "fresh-process read ms",
        "YCSB C reads/s",
        "anon MiB after",
        "file MiB after",
        "B/changed row, random (own count + log files prepared)",
        "B/changed row, key order (own count + log files prepared)",
        "commit p99 µs",
        "p99 in checkpoint µs (commits)",
        "checkpoint ms",
        "of it, base sync: p99 µs (commits), ms",
        "gate",
    ]);
    let right = |s: String| Cell::new(s).set_alignment(CellAlignment::Right);
    let mib = |m: Option<f64>| m.map_or("-".into(), |m| format!("{m:.1}"));
    let bytes = |page: Option<f64>, own: Option<f64>, prepared: Option<f64>| {
        let page = page.map_or("-".into(), |b| format!("{b:.0}"));
        match (own, prepared) {
            (Some(o), Some(p)) => format!("{page} ({o:.0} + {p:.0})"),
            (Some(o), None) => format!("{page} ({o:.0})"),
            _ => page,
        }
    };
    for (engine, r) in rows {
        grid.add_row(vec![
            Cell::new(engine),
            right(format!("{:.1}", r.fresh_process_read_ms)),
            right(format!("{:.0}", r.ycsb_c_reads_s)),
            right(mib(r.anon_mib_after_reads)),
            right(mib(r.file_mib_after_reads)),
            right(bytes(
                r.random_bytes_per_row,
                r.random_engine_bytes_per_row,
                r.random_prepared_bytes_per_row,
            )),
            right(bytes(
                r.ordered_bytes_per_row,
                r.ordered_engine_bytes_per_row,
                r.ordered_prepared_bytes_per_row,
            )),
            right(format!("{:.0}", r.commit_p99_us)),
            right(
                r.commit_p99_checkpoint_us
                    .map_or("-".into(), |p| format!("{p:.0} ({})", r.commits_during_checkpoint)),
            ),
            right(r.checkpoint_ms.map_or("-".into(), |ms| format!("{ms:.0}"))),
            right(r.commit_p99_base_sync_us.zip(r.base_sync_ms).map_or("-".into(), |(p, ms)| {
                format!("{p:.0} ({}), {ms:.0}", r.commits_during_base_sync)
            })),
            Cell::new(&r.gate),
        ]);
    }
    println!("{grid}");
}
