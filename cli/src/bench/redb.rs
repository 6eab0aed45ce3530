//! The redb peer of `--suite cold-open` (`--engine redb`): the same rows (`id` → `n = id`, both
//! `u64`) in one redb file, loaded in write transactions of the suite's size, each committed
//! with redb's default durability (`Immediate`: synced before `commit` returns, as Strata's
//! `Sync` and SQLite's `synchronous = FULL`). ADR 0010 owes this comparison: redb is the
//! well-kept crate closest to Strata's base store (a copy-on-write B-tree of checksummed pages
//! with a double-buffered commit slot).
//!
//! redb writes its tree in place at each commit, so it has no separate checkpoint: its bytes
//! per changed row are what the commits wrote, and its commit latency has no "during a
//! checkpoint" window (reported as `-`).

use redb::{ReadableDatabase, ReadableTable, TableDefinition};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::cold::{
    added, dir_bytes, files, first_second, gate, probe_key, resident, warm, with_fresh, ColdRow,
    LOAD_ROWS_PER_TXN,
};
use super::storage::{self, StorageRow};
use super::workload::Rng;
use rand::{Rng as _, SeedableRng};

const COUNTERS: TableDefinition<u64, u64> = TableDefinition::new("counters");
const FILE: &str = "cold.redb";

fn err(e: impl std::fmt::Display) -> String {
    format!("redb: {e}")
}

/// One write transaction putting `id → value(id)` for each of `ids`, committed durably.
fn put(db: &redb::Database, ids: &[u64], value: impl Fn(u64) -> u64) -> Result<(), String> {
    let txn = db.begin_write().map_err(err)?;
    {
        let mut t = txn.open_table(COUNTERS).map_err(err)?;
        for &id in ids {
            t.insert(id, value(id)).map_err(err)?;
        }
    }
    txn.commit().map_err(err)
}

fn get(db: &redb::Database, id: u64) -> Result<Option<u64>, String> {
    let txn = db.begin_read().map_err(err)?;
    let t = txn.open_table(COUNTERS).map_err(err)?;
    Ok(t.get(id).map_err(err)?.map(|v| v.value()))
}

/// `strata probe-read --engine redb`: opens the file, reads `key`.
pub fn probe(dir: &Path, key: u64) -> Result<Option<u64>, String> {
    let db = redb::Database::open(dir.join(FILE)).map_err(err)?;
    get(&db, key)
}

/// The cold-open figures for redb in `dir`.
pub fn cold(dir: &Path, keys: u64) -> Result<ColdRow, String> {
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    let file = dir.join(FILE);
    let started = Instant::now();
    {
        let db = redb::Database::create(&file).map_err(err)?;
        let mut k = 0;
        while k < keys {
            let ids: Vec<u64> = (k..(k + LOAD_ROWS_PER_TXN).min(keys)).collect();
            put(&db, &ids, |id| id)?;
            k += LOAD_ROWS_PER_TXN;
        }
    }
    let load_s = started.elapsed().as_secs_f64();
    let disk_bytes = dir_bytes(dir);
    let disk_files = files(dir);
    let probe = probe_key(keys);
    let fresh = storage::fresh_process_read("redb", dir, probe)?;
    let before = resident();
    let t0 = Instant::now();
    let db = redb::Database::open(&file).map_err(err)?;
    let open_ms = t0.elapsed().as_secs_f64() * 1e3;
    let t1 = Instant::now();
    let value = get(&db, probe)?;
    let first_read_us = t1.elapsed().as_secs_f64() * 1e6;
    let mem = added(before, resident());
    let scan = |deadline: Option<Instant>| -> Result<(u64, bool), String> {
        let txn = db.begin_read().map_err(err)?;
        let t = txn.open_table(COUNTERS).map_err(err)?;
        let mut n = 0u64;
        for row in t.iter().map_err(err)? {
            let (_, v) = row.map_err(err)?;
            std::hint::black_box(v.value());
            n += 1;
            if n.is_multiple_of(4096) && deadline.is_some_and(|d| Instant::now() >= d) {
                return Ok((n, false));
            }
        }
        Ok((n, true))
    };
    let (rows, scans, bad) = first_second(t0, keys, |deadline| scan(Some(deadline)))?;
    let warm_scan_rows_s = warm(|| scan(None).map(|(n, _)| n))?;
    let mut srow = StorageRow::default();
    storage_figures(&db, keys, &mut srow, &|| added(before, resident()))?;
    Ok(ColdRow {
        engine: "redb".to_string(),
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
        gate: gate(value, probe, bad),
        storage: Some(with_fresh(srow, fresh, probe)),
    })
}

/// The storage measurements (`storage.rs`) that apply to redb: YCSB C, memory, bytes written
/// per changed row (1% at random, 1% in key order, transactions of the suite's size, each
/// committed durably), and one-row commit latency (no checkpoint to overlap).
fn storage_figures(
    db: &redb::Database,
    keys: u64,
    row: &mut StorageRow,
    mem: &dyn Fn() -> (Option<f64>, Option<f64>),
) -> Result<(), String> {
    let mut rng = Rng::seed_from_u64(14);
    row.ycsb_c_reads_s = storage::ycsb_c(&mut rng, keys, |k| match get(db, k)? {
        Some(_) => Ok(()),
        None => Err(format!("key {k} missing")),
    })?;
    (row.anon_mib_after_reads, row.file_mib_after_reads) = mem();
    // No checkpoint to settle: redb's commits write the tree in place.
    let bad = storage::change_rounds(
        &mut rng,
        keys,
        row,
        |chunk, round| put(db, chunk, |k| storage::changed(k, round)),
        || Ok(()),
        |k| get(db, k),
    )?;
    // One second of one-row durable commits from another thread.
    let stop = Arc::new(AtomicBool::new(false));
    let samples = std::thread::scope(|s| {
        let writer = s.spawn(|| -> Result<Vec<Duration>, String> {
            let mut rng = Rng::seed_from_u64(15);
            let mut lat = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let k = rng.random_range(0..keys);
                let at = Instant::now();
                put(db, &[k], |k| storage::changed(k, 4))?;
                lat.push(at.elapsed());
            }
            Ok(lat)
        });
        std::thread::sleep(Duration::from_secs(1));
        stop.store(true, Ordering::Relaxed);
        writer.join().map_err(|_| "the writer panicked".to_string())?
    })?;
    row.commit_p99_us = storage::p99(samples);
    row.gate = bad.map_or("pass".into(), |b| format!("FAILED: {b}"));
    Ok(())
}
