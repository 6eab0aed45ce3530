//! `strata`: the command-line tool. `strata bench` runs workloads against Strata and its peers;
//! `strata check DIR` verifies a database directory; `strata shell [DIR]` is the SQL shell.
#![deny(unsafe_code)]

#[cfg(not(feature = "turso"))]
mod alloc;
mod bench;
mod check;
mod shell;

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
    Bench(Box<bench::BenchArgs>),
    /// Verify a database directory without changing it (checksums, timestamps, catalog, what
    /// recovery would keep); exit 0 sound, 2 corrupt, 1 could not check.
    Check(check::CheckArgs),
    /// Run recovery on a database directory as an open does, then close it. A log with media
    /// damage is refused (exit 2) unless `--salvage` keeps the valid prefix and moves the
    /// damaged segments aside; exit 0 recovered, 1 could not run.
    Recover(check::RecoverArgs),
    /// SQL shell over a database directory (or in memory): statements end with `;`, dot-commands
    /// (`.help`), several connections at once (`.spawn`, `.use NAME`, `.conns`).
    Shell(shell::ShellArgs),
    /// Open a database the cold-open suite loaded, read one row, print it (the suite's fresh
    /// process).
    #[command(hide = true)]
    ProbeRead(bench::ProbeArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Bench(args) => bench::run(&args),
        Command::Check(args) => return check::run(&args),
        Command::Recover(args) => return check::recover(&args),
        Command::Shell(args) => return shell::run(&args),
        Command::ProbeRead(args) => bench::probe_read(&args).map(|()| true),
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
/// frees them lock-free (`alloc`: how it is called). Every engine in `strata bench` runs under
/// this same allocator. (With `--features turso` the `turso` crate installs the `mimalloc`
/// crate's allocator itself, and two `#[global_allocator]`s cannot coexist.)
#[cfg(not(feature = "turso"))]
#[global_allocator]
static GLOBAL: alloc::Mimalloc = alloc::Mimalloc;
