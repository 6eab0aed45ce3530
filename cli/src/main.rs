//! `strata`: the command-line tool. `strata bench` runs workloads against Strata and its peers;
//! `strata shell` and `strata check` arrive with the SQL (#5) and WAL (#4) issues.
#![forbid(unsafe_code)]

mod bench;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(
    name = "strata",
    version,
    about = "Strata: an MVCC storage engine with lock-free version chains"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run workloads against Strata and its peers and print one row per (engine, workload, threads).
    Bench(bench::BenchArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Bench(args) => bench::run(&args),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("strata bench: at least one correctness gate FAILED");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("strata: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The allocator of the `strata` binary (not of the library: embedders choose their own).
/// Versions are allocated by one thread and freed through the epoch collector by another;
/// glibc's malloc serialises such cross-thread frees on the allocating arena's lock, mimalloc
/// frees them lock-free. Every engine in `strata bench` runs under this same allocator.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
