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
    match r.checkpoint {
        Some((ts, rows, bytes)) => {
            println!("checkpoint  at ts {ts}: {rows} rows (catalog included), {bytes} bytes, checksums ok")
        }
        None => println!("checkpoint  none"),
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
            "log end     torn tail at {at} (a crash mid-write: recovery drops it; nothing \
             acknowledged under Sync was in it)"
        ),
        LogEnding::Damaged { at, stray_records, stray_ts_min, stray_ts_max } => println!(
            "log end     DAMAGED at {at}: {stray_records} intact records past it \
             (ts {stray_ts_min}..={stray_ts_max})"
        ),
    }
    println!("tables      {} ({} rows)", r.tables.len(), r.total_rows());
    let width = r.tables.iter().map(|t| t.name.len()).max().unwrap_or(0);
    for t in &r.tables {
        println!("  {:width$}  {} rows", t.name, t.rows);
    }
}
