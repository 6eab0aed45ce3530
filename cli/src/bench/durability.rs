//! `strata bench --suite durability --path DIR`: what durability costs, measured in one run.
//!
//! 1. `raw`: the device's limit — 4 KiB `pwrite` + `fdatasync` in a loop on a preallocated
//!    file in DIR, one thread.
//! 2. `sync`: `Durability::Sync` commits/s at each `--sync-threads` count (default 1, 2, 4, 8,
//!    16, 64). Each txn writes one 100-byte row under a key of its own thread (no conflicts:
//!    this measures the log, not first-committer-wins). Reported against the raw rate and
//!    against one thread, with the mean group-commit batch (commits per sync).
//! 3. `file-io`: the same at 1 and 16 threads for mmap+fdatasync, mmap+msync and pwrite.
//! 4. `buffered`: `Durability::Buffered` (and `None`) on disk against the in-memory engine.
//! 5. `recovery`: `--recovery-commits` commits (default 1M, over 100K keys) then reopen, with
//!    and without a checkpoint: open time and MB/s of log replayed.
//!
//! Every run ends with a gate: the database is closed, reopened, and each writer's last
//! acknowledged commit must be there (recovery runs check the row count and the newest commit
//! timestamp). A failed gate marks the row FAILED.

use super::{Histogram, LATENCY_NS_MAX};
use clap::ValueEnum;
use comfy_table::{presets::UTF8_BORDERS_ONLY, Cell, CellAlignment, Table as Grid};
use serde::Serialize;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use strata::{Database, Durability, FileIo, Options, Table};

/// Rows written per key slot of a writer (keys are reused so memory stays flat).
const SLOTS_PER_WRITER: u64 = 4096;
const VALUE_BYTES: usize = 100;
const RAW_BLOCK: usize = 4096;
/// Blocks in the raw-sync file (written round-robin).
const RAW_BLOCKS: u64 = 256;
/// Keys the recovery workload updates.
const RECOVERY_KEYS: u64 = 100_000;

/// `--durability`.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum DurabilityArg {
    None,
    Buffered,
    Sync,
}

impl From<DurabilityArg> for Durability {
    fn from(d: DurabilityArg) -> Durability {
        match d {
            DurabilityArg::None => Durability::None,
            DurabilityArg::Buffered => Durability::Buffered,
            DurabilityArg::Sync => Durability::Sync,
        }
    }
}

/// `--file-io`.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileIoArg {
    /// mmap, synced with fdatasync (the default)
    Mmap,
    /// mmap, synced with msync
    Msync,
    /// pwrite + fdatasync
    Pwrite,
}

impl From<FileIoArg> for FileIo {
    fn from(io: FileIoArg) -> FileIo {
        match io {
            FileIoArg::Mmap => FileIo::Mmap,
            FileIoArg::Msync => FileIo::MmapMsync,
            FileIoArg::Pwrite => FileIo::Pwrite,
        }
    }
}

/// What the suite needs from the command line.
#[derive(Debug, Clone)]
pub struct SuiteArgs {
    pub path: PathBuf,
    pub duration: Duration,
    pub sync_threads: Vec<usize>,
    pub recovery_commits: u64,
    pub repeat: u32,
    /// Which parts to run (`SECTIONS`); the raw rate runs whenever `sync` does.
    pub sections: Vec<String>,
}

/// The suite's parts, in the order they run.
pub const SECTIONS: [&str; 5] = ["raw", "sync", "file-io", "buffered", "recovery"];

/// One measured row.
#[derive(Serialize, Debug, Clone)]
pub struct DurRow {
    pub section: String,
    pub config: String,
    pub threads: usize,
    pub ops_per_s: f64,
    /// Against the section's reference (raw sync rate, one thread, in memory...), as `note` says.
    pub ratio: Option<f64>,
    pub p50_us: f64,
    pub p99_us: f64,
    /// Mean commits per log sync (group commit), where syncs happened.
    pub mean_batch: Option<f64>,
    pub note: String,
    pub gate: String,
}

fn latency_hist() -> Histogram<u64> {
    Histogram::new_with_bounds(1, LATENCY_NS_MAX, 2).expect("valid bounds")
}

fn record(h: &mut Histogram<u64>, d: Duration) {
    h.saturating_record((d.as_nanos().min(u128::from(LATENCY_NS_MAX)) as u64).max(1));
}

fn us(h: &Histogram<u64>, q: f64) -> f64 {
    h.value_at_quantile(q) as f64 / 1000.0
}

/// A fresh, empty directory under the suite's path.
fn fresh(base: &Path, name: &str) -> Result<PathBuf, String> {
    let dir = base.join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    Ok(dir)
}

/// The device's sync rate: 4 KiB `pwrite` + `fdatasync`, round-robin over a preallocated file.
fn raw_sync(base: &Path, duration: Duration) -> Result<DurRow, String> {
    let dir = fresh(base, "raw")?;
    let path = dir.join("raw.dat");
    let io = |e: std::io::Error| format!("raw sync file: {e}");
    let mut file = std::fs::File::create(&path).map_err(io)?;
    file.write_all(&vec![0u8; RAW_BLOCK * RAW_BLOCKS as usize]).map_err(io)?;
    file.sync_all().map_err(io)?;
    let block = [0xA5u8; RAW_BLOCK];
    let mut h = latency_hist();
    let (start, mut n) = (Instant::now(), 0u64);
    while start.elapsed() < duration {
        let t0 = Instant::now();
        file.write_all_at(&block, (n % RAW_BLOCKS) * RAW_BLOCK as u64).map_err(io)?;
        file.sync_data().map_err(io)?;
        record(&mut h, t0.elapsed());
        n += 1;
    }
    let rate = n as f64 / start.elapsed().as_secs_f64();
    let _ = std::fs::remove_dir_all(&dir);
    Ok(DurRow {
        section: "raw".into(),
        config: "pwrite 4 KiB + fdatasync".into(),
        threads: 1,
        ops_per_s: rate,
        ratio: None,
        p50_us: us(&h, 0.5),
        p99_us: us(&h, 0.99),
        mean_batch: None,
        note: format!("{n} syncs"),
        gate: "n/a".into(),
    })
}

/// Where a write run happens.
#[derive(Clone, Copy, Debug)]
enum Place {
    Memory,
    Disk(Durability, FileIo),
}

impl Place {
    fn label(self) -> String {
        match self {
            Place::Memory => "in memory".into(),
            Place::Disk(d, io) => format!("{d:?}, {io:?}"),
        }
    }
}

struct WriteRun {
    ops_per_s: f64,
    latency: Histogram<u64>,
    mean_batch: Option<f64>,
    gate: String,
}

fn options(durability: Durability, io: FileIo) -> Options {
    // Checkpoints off: a run measures commits, not a checkpoint that happens to land in it.
    Options::default().durability(durability).file_io(io).checkpoints(u64::MAX, None)
}

/// `threads` writers commit one-row txns for `duration`; then the gate.
fn write_run(
    base: &Path,
    place: Place,
    threads: usize,
    duration: Duration,
) -> Result<WriteRun, String> {
    let e = |e: strata::Error| e.to_string();
    let dir = fresh(base, "writes")?;
    let db = match place {
        Place::Memory => Database::in_memory(),
        Place::Disk(d, io) => Database::open(&dir, options(d, io)).map_err(e)?,
    };
    let table = db.create_table("w").map_err(e)?;
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let results: Vec<Result<(u64, Histogram<u64>), String>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (db, table, stop) = (&db, &table, &stop);
                s.spawn(move || writer(db, table, t as u64, stop))
            })
            .collect();
        std::thread::sleep(duration);
        stop.store(true, Ordering::Relaxed);
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err("writer panicked".into())))
            .collect()
    });
    let elapsed = started.elapsed().as_secs_f64();
    let mut latency = latency_hist();
    let mut last = Vec::new();
    for r in results {
        let (n, h) = r?;
        latency.add(&h).map_err(|e| e.to_string())?;
        last.push(n);
    }
    let commits: u64 = last.iter().sum();
    let mean_batch = db.durability_stats().and_then(|s| {
        (s.log.group.syncs > 0)
            .then(|| s.log.group.synced_commits as f64 / s.log.group.syncs as f64)
    });
    let gate = match place {
        Place::Memory => check_writers(&db, &table, &last).err().unwrap_or_else(|| "pass".into()),
        Place::Disk(d, io) => {
            db.close().map_err(e)?;
            drop(db);
            let db = Database::open(&dir, options(d, io)).map_err(e)?;
            let table = db.open_table("w").map_err(e)?;
            let verdict = check_writers(&db, &table, &last);
            db.close().map_err(e)?;
            verdict.err().unwrap_or_else(|| "pass (after reopen)".into())
        }
    };
    let _ = std::fs::remove_dir_all(&dir);
    Ok(WriteRun { ops_per_s: commits as f64 / elapsed, latency, mean_batch, gate })
}

fn slot_key(writer: u64, seq: u64) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&writer.to_be_bytes());
    k[8..].copy_from_slice(&(seq % SLOTS_PER_WRITER).to_be_bytes());
    k
}

/// Commits until stopped; returns the number of commits and their latencies.
fn writer(
    db: &Database,
    table: &Table,
    w: u64,
    stop: &AtomicBool,
) -> Result<(u64, Histogram<u64>), String> {
    let mut h = latency_hist();
    let mut value = [0u8; VALUE_BYTES];
    let mut seq = 0u64;
    // Relaxed: a stop flag; the scope's join orders everything that matters.
    while !stop.load(Ordering::Relaxed) {
        value[..8].copy_from_slice(&seq.to_le_bytes());
        let t0 = Instant::now();
        let mut txn = db.begin().map_err(|e| e.to_string())?;
        txn.put(table, slot_key(w, seq), value).map_err(|e| e.to_string())?;
        txn.commit().map_err(|e| e.to_string())?;
        record(&mut h, t0.elapsed());
        seq += 1;
    }
    Ok((seq, h))
}

/// Each writer's newest acknowledged commit (`last[w] - 1`) is in its slot.
fn check_writers(db: &Database, table: &Table, last: &[u64]) -> Result<(), String> {
    let snap = db.begin_read().map_err(|e| e.to_string())?;
    for (w, &n) in last.iter().enumerate() {
        let Some(seq) = n.checked_sub(1) else { continue };
        let v = snap.get(table, slot_key(w as u64, seq)).map_err(|e| e.to_string())?;
        let found = v
            .as_deref()
            .and_then(|v| v.get(..8))
            .map(|b| u64::from_le_bytes(b.try_into().unwrap_or_default()));
        if found != Some(seq) {
            return Err(format!(
                "FAILED: writer {w}'s acknowledged commit {seq} reads as {found:?}"
            ));
        }
    }
    Ok(())
}

/// The median run by throughput (`repeat` runs); a failed gate in any run fails the result.
fn measured(
    base: &Path,
    place: Place,
    threads: usize,
    args: &SuiteArgs,
) -> Result<WriteRun, String> {
    let mut runs = Vec::new();
    for _ in 0..args.repeat.max(1) {
        runs.push(write_run(base, place, threads, args.duration)?);
    }
    let failed = runs.iter().find(|r| r.gate.starts_with("FAILED")).map(|r| r.gate.clone());
    runs.sort_by(|a, b| a.ops_per_s.total_cmp(&b.ops_per_s));
    let mut run = runs.swap_remove(runs.len() / 2);
    if let Some(g) = failed {
        run.gate = g;
    }
    Ok(run)
}

fn write_row(
    section: &str,
    place: Place,
    threads: usize,
    run: &WriteRun,
    ratio: Option<f64>,
    note: &str,
) -> DurRow {
    DurRow {
        section: section.into(),
        config: place.label(),
        threads,
        ops_per_s: run.ops_per_s,
        ratio,
        p50_us: us(&run.latency, 0.5),
        p99_us: us(&run.latency, 0.99),
        mean_batch: run.mean_batch,
        note: note.into(),
        gate: run.gate.clone(),
    }
}

/// A goal and whether the run met it.
#[derive(Serialize, Debug, Clone)]
pub struct Goal {
    pub goal: String,
    pub measured: String,
    pub met: bool,
}

/// Runs the whole suite; returns its rows and goals.
pub fn run(args: &SuiteArgs, progress: &dyn Fn(&str)) -> Result<(Vec<DurRow>, Vec<Goal>), String> {
    std::fs::create_dir_all(&args.path)
        .map_err(|e| format!("creating {}: {e}", args.path.display()))?;
    if let Some(bad) = args.sections.iter().find(|s| !SECTIONS.contains(&s.as_str())) {
        return Err(format!("unknown section {bad:?} ({})", SECTIONS.join(", ")));
    }
    let wants = |section: &str| args.sections.iter().any(|s| s == section);
    let base = args.path.as_path();
    let mut rows = Vec::new();
    let mut goals = Vec::new();

    let mut raw_rate = f64::NAN;
    if wants("raw") || wants("sync") {
        progress("raw device sync rate");
        let raw = raw_sync(base, args.duration)?;
        raw_rate = raw.ops_per_s;
        rows.push(raw);
    }

    let sync = Place::Disk(Durability::Sync, FileIo::Mmap);
    let mut one_thread = None;
    let sweep = if wants("sync") { args.sync_threads.as_slice() } else { &[] };
    for &threads in sweep {
        progress(&format!("Sync commits, {threads} threads"));
        let run = measured(base, sync, threads, args)?;
        let base_rate = *one_thread.get_or_insert(run.ops_per_s);
        let vs_one = run.ops_per_s / base_rate;
        let note = format!("{:.2}× raw sync rate", run.ops_per_s / raw_rate);
        match threads {
            1 => goals.push(Goal {
                goal: "Sync, 1 thread ≥ 80% of the raw sync rate".into(),
                measured: format!("{:.0}%", 100.0 * run.ops_per_s / raw_rate),
                met: run.ops_per_s >= 0.8 * raw_rate,
            }),
            16 | 64 => {
                let want = if threads == 16 { 20.0 } else { 50.0 };
                goals.push(Goal {
                    goal: format!("Sync, {threads} threads ≥ {want}× one thread"),
                    measured: format!("{vs_one:.1}×"),
                    met: vs_one >= want,
                });
            }
            _ => {}
        }
        rows.push(write_row("sync", sync, threads, &run, Some(vs_one), &note));
    }

    let mut io_rates = Vec::new();
    let io_threads: &[usize] = if wants("file-io") { &[1, 16] } else { &[] };
    for &threads in io_threads {
        for io in [FileIo::Mmap, FileIo::MmapMsync, FileIo::Pwrite] {
            progress(&format!("Sync commits via {io:?}, {threads} threads"));
            let place = Place::Disk(Durability::Sync, io);
            let run = measured(base, place, threads, args)?;
            io_rates.push((threads, io, run.ops_per_s));
            let reference =
                io_rates.iter().find(|(t, i, _)| *t == threads && *i == FileIo::Mmap).map(|r| r.2);
            let ratio = reference.map(|r| run.ops_per_s / r);
            rows.push(write_row(
                "file-io",
                place,
                threads,
                &run,
                ratio,
                "ratio: against Mmap (fdatasync)",
            ));
        }
    }

    let buffered_threads: &[usize] = if wants("buffered") { &[1, 2, 4] } else { &[] };
    for &threads in buffered_threads {
        progress(&format!("in memory vs Buffered vs None, {threads} threads"));
        let mem = measured(base, Place::Memory, threads, args)?;
        rows.push(write_row("buffered", Place::Memory, threads, &mem, Some(1.0), "reference"));
        for (d, io) in [
            (Durability::Buffered, FileIo::Mmap),
            (Durability::Buffered, FileIo::Pwrite),
            (Durability::None, FileIo::Mmap),
        ] {
            let place = Place::Disk(d, io);
            let run = measured(base, place, threads, args)?;
            let ratio = run.ops_per_s / mem.ops_per_s;
            if d == Durability::Buffered && io == FileIo::Mmap {
                goals.push(Goal {
                    goal: format!("Buffered ≥ 50% of in memory, {threads} thread(s)"),
                    measured: format!("{:.0}%", 100.0 * ratio),
                    met: ratio >= 0.5,
                });
            }
            rows.push(write_row(
                "buffered",
                place,
                threads,
                &run,
                Some(ratio),
                "ratio: against in memory",
            ));
        }
    }

    if wants("recovery") {
        progress(&format!("recovery after {} commits", args.recovery_commits));
        rows.extend(recovery(base, args.recovery_commits)?);
    }
    let _ = std::fs::remove_dir_all(base.join("writes"));
    Ok((rows, goals))
}

/// `commits` one-row commits over `RECOVERY_KEYS` keys (Buffered, 2 writers), closed; then
/// reopened twice: from the log alone, and after a checkpoint.
fn recovery(base: &Path, commits: u64) -> Result<Vec<DurRow>, String> {
    let e = |e: strata::Error| e.to_string();
    let dir = fresh(base, "recovery")?;
    let opts = || options(Durability::Buffered, FileIo::Mmap);
    let build = Instant::now();
    {
        let db = Database::open(&dir, opts()).map_err(e)?;
        let table = db.create_table("r").map_err(e)?;
        let writers = 2u64;
        std::thread::scope(|s| {
            let hs: Vec<_> = (0..writers)
                .map(|w| {
                    let (db, table) = (&db, &table);
                    s.spawn(move || -> Result<(), String> {
                        let mut value = [7u8; VALUE_BYTES];
                        for i in (w..commits).step_by(writers as usize) {
                            value[..8].copy_from_slice(&i.to_le_bytes());
                            let mut txn = db.begin().map_err(|e| e.to_string())?;
                            txn.put(table, (i % RECOVERY_KEYS).to_be_bytes(), value)
                                .map_err(|e| e.to_string())?;
                            txn.commit().map_err(|e| e.to_string())?;
                        }
                        Ok(())
                    })
                })
                .collect();
            hs.into_iter()
                .try_for_each(|h| h.join().unwrap_or_else(|_| Err("writer panicked".into())))
        })?;
        db.close().map_err(e)?;
    }
    let build = build.elapsed();
    let expect_rows = commits.min(RECOVERY_KEYS);
    let mut rows = Vec::new();
    for (config, checkpoint_first) in [("log only", false), ("after a checkpoint", true)] {
        if checkpoint_first {
            let db = Database::open(&dir, opts()).map_err(e)?;
            db.checkpoint().map_err(e)?;
            db.close().map_err(e)?;
        }
        let t0 = Instant::now();
        let db = Database::open(&dir, opts()).map_err(e)?;
        let open = t0.elapsed();
        let report = db.recovery_report().unwrap_or_default();
        let rows_found = db
            .open_table("r")
            .and_then(|t| db.begin_read()?.scan(&t))
            .map(|r| r.len() as u64)
            .map_err(e)?;
        db.close().map_err(e)?;
        // The table creation is one more commit.
        let gate = if report.recovered_ts > commits && rows_found == expect_rows {
            "pass".to_string()
        } else {
            format!(
                "FAILED: recovered ts {} (want ≥ {}), {rows_found} rows (want {expect_rows})",
                report.recovered_ts,
                commits + 1
            )
        };
        let mb = report.log_bytes as f64 / 1e6;
        rows.push(DurRow {
            section: "recovery".into(),
            config: format!("open, {config}"),
            threads: 1,
            ops_per_s: report.records_replayed as f64 / open.as_secs_f64(),
            ratio: None,
            p50_us: open.as_secs_f64() * 1e6,
            p99_us: open.as_secs_f64() * 1e6,
            mean_batch: None,
            note: format!(
                "open {:.0} ms; {} checkpoint rows; {} records, {mb:.1} MB of log read ({:.0} MB/s); built in {:.1} s",
                open.as_secs_f64() * 1e3,
                report.checkpoint_rows,
                report.records_replayed,
                mb / open.as_secs_f64(),
                build.as_secs_f64()
            ),
            gate,
        });
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(rows)
}

pub fn print(rows: &[DurRow], goals: &[Goal]) {
    let mut grid = Grid::new();
    grid.load_preset(UTF8_BORDERS_ONLY);
    grid.set_header(vec![
        "section", "config", "threads", "ops/s", "ratio", "p50 µs", "p99 µs", "batch", "note",
        "gate",
    ]);
    let right = |s: String| Cell::new(s).set_alignment(CellAlignment::Right);
    for r in rows {
        grid.add_row(vec![
            Cell::new(&r.section),
            Cell::new(&r.config),
            right(r.threads.to_string()),
            right(format!("{:.0}", r.ops_per_s)),
            right(r.ratio.map_or(String::new(), |x| format!("{x:.2}"))),
            right(format!("{:.0}", r.p50_us)),
            right(format!("{:.0}", r.p99_us)),
            right(r.mean_batch.map_or(String::new(), |x| format!("{x:.1}"))),
            Cell::new(&r.note),
            Cell::new(&r.gate),
        ]);
    }
    println!("{grid}");
    let mut g = Grid::new();
    g.load_preset(UTF8_BORDERS_ONLY);
    g.set_header(vec!["goal", "measured", "met"]);
    for goal in goals {
        g.add_row(vec![
            Cell::new(&goal.goal),
            right(goal.measured.clone()),
            Cell::new(if goal.met { "yes" } else { "MISSED" }),
        ]);
    }
    println!("{g}");
}
