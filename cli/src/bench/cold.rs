//! `strata bench --suite cold-open`: open an existing on-disk database of `--keys` rows (default
//! 1M) after a restart — time to open (Strata: recovery from its checkpoint and log; SQLite:
//! opening the file), the latency of the first point read, and how many rows full-table scans
//! deliver in the first second after the open. Strata through its API (`strata`) and through SQL
//! (`strata-sql`), SQLite through rusqlite, and redb (`redb.rs`), each on the same rows
//! (`id` → `n = id`).
//!
//! "Restart" means a new `Database`/connection in this process after the writer closed its
//! handle; the operating system's page cache still holds the files (dropping it needs root), so
//! the open measures the engine's own work (recovery, catalog), not the device.
//!
//! Both engines end the load with a checkpoint (SQLite's last connection checkpoints its WAL
//! into the database file when it closes; Strata's load calls `Database::checkpoint`, which
//! writes the changes into its base file), so the open replays no log. Also reported: the
//! resident memory the open and first read added (anonymous and file-backed separately, from
//! `/proc/self/status`; Linux only), and the rate of one more full scan after the first second
//! (warm).
//!
//! Gate: the first read returns its row's value, and every scan sees exactly `--keys` rows.

use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use strata::{Database, Options};

use super::storage::{self, StorageRow};

/// Rows per preload txn / statement batch.
pub(super) const LOAD_ROWS_PER_TXN: u64 = 10_000;

/// One engine's cold-open figures.
#[derive(Serialize, Debug, Clone)]
pub struct ColdRow {
    pub engine: String,
    pub keys: u64,
    /// Seconds to write the database (before the restart).
    pub load_s: f64,
    /// Bytes of the database directory or file.
    pub disk_bytes: u64,
    /// Each file of it and its bytes.
    pub disk_files: Vec<(String, u64)>,
    /// Milliseconds to open it again.
    pub open_ms: f64,
    /// Microseconds of the first point read after the open.
    pub first_read_us: f64,
    /// Rows delivered by full-table scans in the first second after the open.
    pub scan_rows_first_s: u64,
    /// Full scans completed in that second (the last one may be partial).
    pub scans: u64,
    /// Rows per second of one full scan after that second.
    pub warm_scan_rows_s: f64,
    /// Strata's API only: rows per second of the same scan through `range_with`, which hands
    /// each row over borrowed instead of copying it (`null` for the other engines).
    pub warm_scan_borrowed_rows_s: Option<f64>,
    /// Resident memory the open and the first read added, anonymous and file-backed (MiB;
    /// `null` where `/proc/self/status` has no such lines).
    pub anon_mib_open: Option<f64>,
    pub file_mib_open: Option<f64>,
    pub gate: String,
    /// The storage measurements (`storage.rs`; Strata's API and SQLite only).
    pub storage: Option<StorageRow>,
}

/// Resident anonymous and file-backed memory of this process (KiB), from `/proc/self/status`.
pub(super) fn resident() -> Option<(u64, u64)> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let field = |name: &str| -> Option<u64> {
        let line = status.lines().find(|l| l.starts_with(name))?;
        line.split_whitespace().nth(1)?.parse().ok()
    };
    Some((field("RssAnon:")?, field("RssFile:")?))
}

/// MiB added between two `resident` readings (negative deltas, from memory returned to the
/// system meanwhile, count as 0).
pub(super) fn added(
    before: Option<(u64, u64)>,
    after: Option<(u64, u64)>,
) -> (Option<f64>, Option<f64>) {
    match (before, after) {
        (Some(b), Some(a)) => (
            Some(a.0.saturating_sub(b.0) as f64 / 1024.0),
            Some(a.1.saturating_sub(b.1) as f64 / 1024.0),
        ),
        _ => (None, None),
    }
}

/// Times one full scan (`scan` returns the rows it saw); rows per second.
pub(super) fn warm(mut scan: impl FnMut() -> Result<u64, String>) -> Result<f64, String> {
    let t = Instant::now();
    let n = scan()?;
    Ok(n as f64 / t.elapsed().as_secs_f64().max(1e-9))
}

pub(super) fn dir_bytes(path: &Path) -> u64 {
    match std::fs::metadata(path) {
        Ok(m) if m.is_dir() => std::fs::read_dir(path)
            .map(|entries| entries.flatten().map(|e| dir_bytes(&e.path())).sum())
            .unwrap_or(0),
        Ok(m) => m.len(),
        Err(_) => 0,
    }
}

pub(super) fn files(dir: &Path) -> Vec<(String, u64)> {
    let mut out: Vec<(String, u64)> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| (e.file_name().to_string_lossy().into_owned(), dir_bytes(&e.path())))
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// The key read first: the middle of the table.
pub(super) fn probe_key(keys: u64) -> u64 {
    keys / 2
}

/// Runs `scan` (returning the rows one full scan saw, stopping early at `deadline`) until a
/// second has passed since `opened`; returns (rows, scans, a gate failure if any scan that ran
/// to completion saw the wrong count).
pub(super) fn first_second(
    opened: Instant,
    keys: u64,
    mut scan: impl FnMut(Instant) -> Result<(u64, bool), String>,
) -> Result<(u64, u64, Option<String>), String> {
    let deadline = opened + Duration::from_secs(1);
    let (mut rows, mut scans, mut bad) = (0, 0, None);
    while Instant::now() < deadline {
        let (n, complete) = scan(deadline)?;
        rows += n;
        scans += 1;
        if complete && n != keys && bad.is_none() {
            bad = Some(format!("a full scan saw {n} rows of {keys}"));
        }
    }
    Ok((rows, scans, bad))
}

fn strata(dir: &Path, keys: u64, sql: bool) -> Result<ColdRow, String> {
    let e = |e: strata::Error| e.to_string();
    let started = Instant::now();
    {
        let db = Database::open(dir, Options::default()).map_err(e)?;
        if sql {
            let mut conn =
                strata_sql::Connection::from_database(db.clone()).map_err(|e| e.to_string())?;
            conn.execute("CREATE TABLE counters (id INTEGER PRIMARY KEY, n INTEGER NOT NULL)", &[])
                .map_err(|e| e.to_string())?;
            let insert =
                conn.prepare("INSERT INTO counters VALUES (?1, ?1)").map_err(|e| e.to_string())?;
            let mut k = 0;
            while k < keys {
                conn.execute("BEGIN", &[]).map_err(|e| e.to_string())?;
                for id in k..(k + LOAD_ROWS_PER_TXN).min(keys) {
                    insert
                        .execute(&mut conn, &[strata_sql::Value::Integer(id as i64)])
                        .map_err(|e| e.to_string())?;
                }
                conn.execute("COMMIT", &[]).map_err(|e| e.to_string())?;
                k += LOAD_ROWS_PER_TXN;
            }
        } else {
            let t = db.create_table("counters").map_err(e)?;
            let mut k = 0;
            while k < keys {
                db.transaction(|txn| {
                    for id in k..(k + LOAD_ROWS_PER_TXN).min(keys) {
                        txn.put(&t, id.to_be_bytes(), id.to_le_bytes())?;
                    }
                    Ok(())
                })
                .map_err(e)?;
                k += LOAD_ROWS_PER_TXN;
            }
        }
        db.checkpoint().map_err(e)?;
        db.close().map_err(e)?;
    }
    let load_s = started.elapsed().as_secs_f64();
    let disk_bytes = dir_bytes(dir);
    let disk_files = files(dir);
    let probe = probe_key(keys);
    let mut srow = StorageRow::default();
    let fresh = if sql { None } else { Some(storage::fresh_process_read("strata", dir, probe)?) };
    let before = resident();
    let t0 = Instant::now();
    let (row, rows, scans, bad, warm_scan_rows_s, mem) = if sql {
        let mut conn = strata_sql::Connection::open(dir).map_err(|e| e.to_string())?;
        let open_ms = t0.elapsed().as_secs_f64() * 1e3;
        let t1 = Instant::now();
        let got = conn
            .query(
                "SELECT n FROM counters WHERE id = ?",
                &[strata_sql::Value::Integer(probe as i64)],
            )
            .map_err(|e| e.to_string())?;
        let first_read_us = t1.elapsed().as_secs_f64() * 1e6;
        let value = match got.rows.first().and_then(|r| r.first()) {
            Some(strata_sql::Value::Integer(v)) => Some(*v as u64),
            _ => None,
        };
        let mem = added(before, resident());
        // Pages of 4,096 rows in key order (a rowid range read with an early stop), so the
        // second can end mid-scan as for the other engines.
        let page = conn
            .prepare("SELECT id, n FROM counters WHERE id >= ? ORDER BY id LIMIT 4096")
            .map_err(|e| e.to_string())?;
        let (rows, scans, bad) = first_second(t0, keys, |deadline| {
            let (mut n, mut from) = (0u64, 0i64);
            loop {
                let r = page
                    .query(&mut conn, &[strata_sql::Value::Integer(from)])
                    .map_err(|e| e.to_string())?;
                n += r.rows.len() as u64;
                match r.rows.last().and_then(|row| row.first()) {
                    Some(strata_sql::Value::Integer(last)) if r.rows.len() == 4096 => {
                        from = last + 1
                    }
                    _ => return Ok((n, true)),
                }
                if Instant::now() >= deadline {
                    return Ok((n, false));
                }
            }
        })?;
        let full = conn.prepare("SELECT id, n FROM counters").map_err(|e| e.to_string())?;
        let warm_rate =
            warm(|| Ok(full.query(&mut conn, &[]).map_err(|e| e.to_string())?.rows.len() as u64))?;
        ((open_ms, first_read_us, value), rows, scans, bad, (warm_rate, None), mem)
    } else {
        let db = Database::open(dir, Options::default()).map_err(e)?;
        let open_ms = t0.elapsed().as_secs_f64() * 1e3;
        let t1 = Instant::now();
        let t = db.open_table("counters").map_err(e)?;
        let got = db.begin_read().and_then(|s| s.get(&t, probe.to_be_bytes())).map_err(e)?;
        let first_read_us = t1.elapsed().as_secs_f64() * 1e6;
        let value = got.and_then(|v| v.try_into().ok()).map(u64::from_le_bytes);
        let mem = added(before, resident());
        let (rows, scans, bad) = first_second(t0, keys, |deadline| {
            let snap = db.begin_read().map_err(e)?;
            let mut n = 0u64;
            for row in snap.range::<&[u8]>(&t, ..).map_err(e)? {
                row.map_err(e)?;
                n += 1;
                if n.is_multiple_of(4096) && Instant::now() >= deadline {
                    return Ok((n, false));
                }
            }
            Ok((n, true))
        })?;
        let warm_rate = warm(|| {
            let snap = db.begin_read().map_err(e)?;
            let mut n = 0u64;
            for row in snap.range::<&[u8]>(&t, ..).map_err(e)? {
                row.map_err(e)?;
                n += 1;
            }
            Ok(n)
        })?;
        let mut borrowed_rows = 0u64;
        let borrowed = warm(|| {
            let snap = db.begin_read().map_err(e)?;
            let mut n = 0u64;
            snap.range_with::<&[u8]>(&t, .., |_, v| {
                n += u64::from(!v.is_empty());
                std::ops::ControlFlow::Continue(())
            })
            .map_err(e)?;
            borrowed_rows = n;
            Ok(n)
        })?;
        let bad = bad.or_else(|| {
            (borrowed_rows != keys)
                .then(|| format!("a borrowed-row scan saw {borrowed_rows} rows of {keys}"))
        });
        storage::strata(&db, keys, &mut srow, &|| added(before, resident()))?;
        db.close().map_err(e)?;
        ((open_ms, first_read_us, value), rows, scans, bad, (warm_rate, Some(borrowed)), mem)
    };
    let (open_ms, first_read_us, value) = row;
    let (warm_scan_rows_s, warm_scan_borrowed_rows_s) = warm_scan_rows_s;
    let gate = gate(value, probe, bad);
    let storage = fresh.map(|f| with_fresh(srow, f, probe));
    Ok(ColdRow {
        engine: if sql { "strata-sql" } else { "strata" }.to_string(),
        keys,
        load_s,
        disk_bytes,
        disk_files,
        open_ms,
        first_read_us,
        scan_rows_first_s: rows,
        scans,
        warm_scan_rows_s,
        warm_scan_borrowed_rows_s,
        anon_mib_open: mem.0,
        file_mib_open: mem.1,
        gate,
        storage,
    })
}

/// The storage row with the fresh-process read's time, and its gate: the value it printed.
pub(super) fn with_fresh(
    mut row: StorageRow,
    (ms, value): (f64, Option<u64>),
    probe: u64,
) -> StorageRow {
    row.fresh_process_read_ms = ms;
    if value != Some(probe) && !row.gate.starts_with("FAILED") {
        row.gate = format!("FAILED: the fresh process read {value:?}, expected {probe}");
    }
    row
}

pub(super) fn gate(value: Option<u64>, probe: u64, bad: Option<String>) -> String {
    match (value, bad) {
        (_, Some(b)) => format!("FAILED: {b}"),
        (Some(v), None) if v == probe => "pass".to_string(),
        (v, None) => format!("FAILED: the first read returned {v:?}, expected {probe}"),
    }
}

fn sqlite(dir: &Path, keys: u64) -> Result<ColdRow, String> {
    let e = |e: rusqlite::Error| e.to_string();
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    let file = dir.join("cold.sqlite");
    let started = Instant::now();
    {
        let conn = rusqlite::Connection::open(&file).map_err(e)?;
        conn.pragma_update(None, "journal_mode", "WAL").map_err(e)?;
        conn.pragma_update(None, "synchronous", "FULL").map_err(e)?;
        conn.execute("CREATE TABLE counters (id INTEGER PRIMARY KEY, n INTEGER NOT NULL)", [])
            .map_err(e)?;
        let mut k = 0;
        while k < keys {
            conn.execute_batch("BEGIN").map_err(e)?;
            {
                let mut insert =
                    conn.prepare_cached("INSERT INTO counters VALUES (?1, ?1)").map_err(e)?;
                for id in k..(k + LOAD_ROWS_PER_TXN).min(keys) {
                    insert.execute([id as i64]).map_err(e)?;
                }
            }
            conn.execute_batch("COMMIT").map_err(e)?;
            k += LOAD_ROWS_PER_TXN;
        }
    }
    let load_s = started.elapsed().as_secs_f64();
    let disk_bytes = dir_bytes(dir);
    let disk_files = files(dir);
    let probe = probe_key(keys);
    let fresh = storage::fresh_process_read("sqlite", dir, probe)?;
    let before = resident();
    let t0 = Instant::now();
    let conn = rusqlite::Connection::open(&file).map_err(e)?;
    let open_ms = t0.elapsed().as_secs_f64() * 1e3;
    let t1 = Instant::now();
    let value: Option<i64> = conn
        .query_row("SELECT n FROM counters WHERE id = ?1", [probe as i64], |r| r.get(0))
        .map(Some)
        .map_err(e)?;
    let first_read_us = t1.elapsed().as_secs_f64() * 1e6;
    let mem = added(before, resident());
    let mut scan = conn.prepare("SELECT id, n FROM counters").map_err(e)?;
    let (rows, scans, bad) = first_second(t0, keys, |deadline| {
        let mut rows = scan.query([]).map_err(e)?;
        let mut n = 0u64;
        while let Some(row) = rows.next().map_err(e)? {
            let _: i64 = row.get(1).map_err(e)?;
            n += 1;
            if n.is_multiple_of(4096) && Instant::now() >= deadline {
                return Ok((n, false));
            }
        }
        Ok((n, true))
    })?;
    let warm_scan_rows_s = warm(|| {
        let mut rows = scan.query([]).map_err(e)?;
        let mut n = 0u64;
        while let Some(row) = rows.next().map_err(e)? {
            let _: i64 = row.get(1).map_err(e)?;
            n += 1;
        }
        Ok(n)
    })?;
    drop(scan);
    let mut srow = StorageRow::default();
    storage::sqlite(&conn, &file, keys, &mut srow, &|| added(before, resident()))?;
    Ok(ColdRow {
        engine: "sqlite".to_string(),
        keys,
        load_s,
        disk_bytes,
        disk_files,
        open_ms,
        first_read_us,
        scan_rows_first_s: rows,
        scans,
        warm_scan_rows_s,
        warm_scan_borrowed_rows_s: None,
        anon_mib_open: mem.0,
        file_mib_open: mem.1,
        gate: gate(value.map(|v| v as u64), probe, bad),
        storage: Some(with_fresh(srow, fresh, probe)),
    })
}

/// Runs the suite for `engines` (of strata, strata-sql, sqlite, redb) in subdirectories of `path`.
pub fn run(
    path: &Path,
    engines: &[String],
    keys: u64,
    say: &dyn Fn(String),
) -> Result<Vec<ColdRow>, String> {
    let mut rows = Vec::new();
    for engine in engines {
        let dir: PathBuf = path.join(format!("cold-{engine}"));
        let _ = std::fs::remove_dir_all(&dir);
        let row = match engine.as_str() {
            "strata" => strata(&dir, keys, false),
            "strata-sql" => strata(&dir, keys, true),
            "sqlite" => sqlite(&dir, keys),
            "redb" => super::redb::cold(&dir, keys),
            other => {
                say(format!(
                    "  cold-open: {other} skipped (cold-open runs strata, strata-sql, sqlite, redb)"
                ));
                continue;
            }
        };
        let _ = std::fs::remove_dir_all(&dir);
        let row = row?;
        let on_disk: Vec<String> = row
            .disk_files
            .iter()
            .map(|(name, bytes)| format!("{name} {:.1} MiB", *bytes as f64 / (1 << 20) as f64))
            .collect();
        say(format!(
            "  cold-open/{engine}: opened in {:.1} ms, first read {:.0} µs, {} rows scanned in the first second, gate {}; files: {}",
            row.open_ms, row.first_read_us, row.scan_rows_first_s, row.gate, on_disk.join(", ")
        ));
        rows.push(row);
    }
    Ok(rows)
}

/// The results table.
pub fn print(rows: &[ColdRow]) {
    use comfy_table::{presets::UTF8_BORDERS_ONLY, Cell, CellAlignment, Table};
    let mut grid = Table::new();
    grid.load_preset(UTF8_BORDERS_ONLY);
    grid.set_header(vec![
        "engine",
        "rows",
        "load s",
        "MiB on disk",
        "open ms",
        "first read µs",
        "rows scanned in 1st s",
        "scans",
        "warm scan rows/s",
        "borrowed rows/s",
        "anon MiB",
        "file MiB",
        "gate",
    ]);
    let right = |s: String| Cell::new(s).set_alignment(CellAlignment::Right);
    for r in rows {
        grid.add_row(vec![
            Cell::new(&r.engine),
            right(r.keys.to_string()),
            right(format!("{:.2}", r.load_s)),
            right(format!("{:.1}", r.disk_bytes as f64 / (1 << 20) as f64)),
            right(format!("{:.1}", r.open_ms)),
            right(format!("{:.0}", r.first_read_us)),
            right(r.scan_rows_first_s.to_string()),
            right(r.scans.to_string()),
            right(format!("{:.0}", r.warm_scan_rows_s)),
            right(r.warm_scan_borrowed_rows_s.map_or("-".into(), |s| format!("{s:.0}"))),
            right(r.anon_mib_open.map_or("-".into(), |m| format!("{m:.1}"))),
            right(r.file_mib_open.map_or("-".into(), |m| format!("{m:.1}"))),
            Cell::new(&r.gate),
        ]);
    }
    println!("{grid}");
    let storage: Vec<(String, StorageRow)> =
        rows.iter().filter_map(|r| r.storage.clone().map(|s| (r.engine.clone(), s))).collect();
    if !storage.is_empty() {
        storage::print(&storage);
    }
}
