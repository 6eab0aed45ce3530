//! The child process of the kill test (`tests/kill.rs`): opens a database directory, runs
//! concurrent bank transfers under `Durability::Sync` and checkpoints, and prints a line per
//! acknowledged commit until its parent `SIGKILL`s it.
//!
//! Usage: `kill-child DIR GENERATION WRITERS SEED IO` (IO: mmap, msync or pwrite).
//! Output (stdout, one line each): `ready` once recovery is done and the writers start, then
//! `ack WRITER SEQ` after each commit returns `Ok`. Exit codes: 0 when its 60 s safety limit
//! ends it, 2 on bad arguments, 3 on an engine error (printed on stderr).

use rand::Rng as _;
use std::io::Write;
use std::process::ExitCode;
use std::time::{Duration, Instant};
use strata::{Database, ErrorKind, FileIo};
use strata_verification::bank::{self, Tables, ACCOUNTS};

/// How long a child runs if nobody kills it (a guard against an orphaned child).
const SAFETY_LIMIT: Duration = Duration::from_secs(60);

fn fail(what: &str, e: impl std::fmt::Display) -> ! {
    eprintln!("kill-child: {what}: {e}");
    std::process::exit(3)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let parsed = match args.as_slice() {
        [dir, generation, writers, seed, io] => (|| {
            let io = match io.as_str() {
                "mmap" => FileIo::Mmap,
                "msync" => FileIo::MmapMsync,
                "pwrite" => FileIo::Pwrite,
                _ => return None,
            };
            Some((
                dir.clone(),
                generation.parse::<u32>().ok()?,
                writers.parse::<u16>().ok()?,
                seed.parse::<u64>().ok()?,
                io,
            ))
        })(),
        _ => None,
    };
    let Some((dir, generation, writers, seed, io)) = parsed else {
        eprintln!("usage: kill-child DIR GENERATION WRITERS SEED mmap|msync|pwrite");
        return ExitCode::from(2);
    };
    let db = Database::open(&dir, bank::options(io)).unwrap_or_else(|e| fail("open", e));
    let tables = Tables::open(&db).unwrap_or_else(|e| fail("tables", e));
    bank::open_accounts(&db, &tables).unwrap_or_else(|e| fail("accounts", e));
    println!("ready");

    std::thread::scope(|s| {
        for w in 0..writers {
            let (db, tables) = (&db, &tables);
            s.spawn(move || {
                let writer = (generation, w);
                let mut rng = bank::rng(seed ^ (u64::from(generation) << 32) ^ u64::from(w));
                let mut seq = 0u32;
                loop {
                    let from = rng.random_range(0..ACCOUNTS);
                    let to = rng.random_range(0..ACCOUNTS);
                    let amount = rng.random_range(1..=200i64);
                    let result = db.transaction(|txn| {
                        bank::transfer(txn, tables, writer, seq, from, to, amount)
                    });
                    match result {
                        Ok(()) => {
                            // Line-buffered stdout: the ack reaches the pipe before the next
                            // transfer starts. A closed pipe (parent gone) ends the child.
                            let mut out = std::io::stdout().lock();
                            if writeln!(out, "ack {w} {seq}").and_then(|()| out.flush()).is_err() {
                                std::process::exit(0);
                            }
                            seq += 1;
                        }
                        Err(e) if e.kind() == ErrorKind::RetryLimitExceeded => {}
                        Err(e) => fail("transfer", e),
                    }
                }
            });
        }
        // The main thread forces checkpoints now and then, so kills land inside them too.
        let start = Instant::now();
        let mut rng = bank::rng(seed ^ u64::from(generation));
        while start.elapsed() < SAFETY_LIMIT {
            std::thread::sleep(Duration::from_millis(rng.random_range(1..=8)));
            if rng.random_ratio(1, 4) {
                db.checkpoint().unwrap_or_else(|e| fail("checkpoint", e));
            }
        }
        std::process::exit(0)
    })
}
