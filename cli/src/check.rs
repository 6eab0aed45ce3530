//! `strata check DIR`: verifies a database directory without changing it and prints a summary.
//! Exit status: 0 sound (a torn tail from a crash counts as sound: recovery drops it and
//! nothing acknowledged under `Sync` was in it), 2 corrupt, 1 could not check (no such
//! directory, I/O error, open in another process).

use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;
use strata::{CheckReport, ErrorKind, LogEnding};

#[derive(Args, Debug, Clone)]
pub struct CheckArgs {
    /// The database directory.
    pub dir: PathBuf,
}

pub fn run(args: &CheckArgs) -> ExitCode {
    println!("strata check {}", args.dir.display());
    match strata::check(&args.dir) {
        Ok(report) => {
            print_report(&report);
            if report.is_corrupt() {
                println!("result      CORRUPT");
                for p in &report.problems {
                    println!("  - {p}");
                }
                ExitCode::from(2)
            } else {
                println!("result      OK");
                ExitCode::SUCCESS
            }
        }
        Err(e) if e.kind() == ErrorKind::Corrupt => {
            println!("result      CORRUPT: {e}");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("strata check: {e}");
            ExitCode::FAILURE
        }
    }
}

fn print_report(r: &CheckReport) {
    match (&r.base, r.checkpoint) {
        (Some(b), Some((_, _, bytes))) => {
            println!(
                "base        at ts {}: {} rows (catalog included), {bytes} bytes; every page \
                 verified: {} in use ({} leaf, {} branch, {} overflow, {} free, {} free-list), \
                 height {}, leaves {}% full",
                b.ts,
                b.rows,
                b.pages,
                b.leaf_pages,
                b.branch_pages,
                b.overflow_pages,
                b.free_pages,
                b.free_list_pages,
                b.height,
                b.leaf_fill_percent
            )
        }
        (None, Some((ts, rows, bytes))) => {
            println!("checkpoint  at ts {ts}: {rows} rows (catalog included), {bytes} bytes")
        }
        (_, None) => println!("base        none"),
    }
    if r.interrupted_checkpoint {
        println!("            (an interrupted checkpoint file is present; ignored)");
    }
    let rec = &r.recovery;
    println!(
        "log         {} segments, {} bytes read, {} intact records",
        r.segments, rec.log_bytes, r.log_records
    );
    println!(
        "recovery    replays {} commits after the checkpoint; last commit ts {}",
        rec.records_replayed, rec.recovered_ts
    );
    if rec.records_dropped > 0 {
        println!(
            "            and drops {} commits logged past a missing timestamp (concurrent \
             commits whose predecessor never reached the log: never acknowledged)",
            rec.records_dropped
        );
    }
    match &r.ending {
        LogEnding::Clean => println!("log end     clean"),
        LogEnding::TornTail { at } => println!(
            "log end     torn tail at {at} (a crash: no intact record says it was durable; \
             recovery drops it, nothing acknowledged under Sync was in it)"
        ),
        LogEnding::Damaged(d) => println!("log end     DAMAGED: {d}"),
    }
    println!("tables      {} ({} rows)", r.tables.len(), r.total_rows());
    let width = r.tables.iter().map(|t| t.name.len()).max().unwrap_or(0);
    for t in &r.tables {
        println!("  {:width$}  {} rows", t.name, t.rows);
    }
}

#[derive(Args, Debug, Clone)]
pub struct RecoverArgs {
    /// The database directory.
    pub dir: PathBuf,
    /// Open a log with media damage anyway: keep the valid prefix, drop the intact records past
    /// the damage (they are listed first), and move every log segment aside as `*.damaged`
    /// (never deleted). Without it, recovery refuses damage and changes nothing.
    #[arg(long)]
    pub salvage: bool,
}

/// `strata recover DIR [--salvage]`: runs recovery as an open does, closes, and says what it
/// did. Exit status: 0 recovered, 2 refused (damage without `--salvage`), 1 other errors.
pub fn recover(args: &RecoverArgs) -> ExitCode {
    println!(
        "strata recover {}{}",
        args.dir.display(),
        if args.salvage { " --salvage" } else { "" }
    );
    if !args.dir.is_dir() {
        eprintln!("strata recover: {} is not a directory", args.dir.display());
        return ExitCode::FAILURE;
    }
    let options = strata::Options::default().salvage(args.salvage);
    let db = match strata::Database::open(&args.dir, options) {
        Ok(db) => db,
        Err(e) if e.kind() == ErrorKind::Corrupt => {
            println!("result      REFUSED: {e}");
            return ExitCode::from(2);
        }
        Err(e) => {
            eprintln!("strata recover: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(r) = db.recovery_report() {
        println!(
            "recovered   through ts {} ({} commits replayed after the checkpoint at ts {})",
            r.recovered_ts, r.records_replayed, r.checkpoint_ts
        );
        if let Some(d) = &r.salvaged {
            println!("salvaged    DROPPED {} intact commits: {d}", d.stray_records);
        }
        for name in &r.moved_aside {
            println!("moved aside {name}");
        }
    }
    match db.close() {
        Ok(()) => {
            println!("result      OK");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("strata recover: closing: {e}");
            ExitCode::FAILURE
        }
    }
}
