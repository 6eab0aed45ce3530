//! A soak of increments on 10 hot keys: `THREADS` threads for `SECONDS`, as merges (`merge`) or
//! as read-modify-write txns (`rmw`). Every half second it prints the process's resident memory
//! and the versions the store holds; at the end, the slowest single txn (its waits and retries
//! included). It is how the two defects of ADR 0014, decision 7 showed up (a starving merge,
//! and memory growing with the run), and how their fixes were checked.
//!
//! `cargo run --release -p strata --example merge_soak -- [THREADS] [SECONDS] [merge|rmw]`
#![allow(clippy::unwrap_used)] // a measuring tool: a failed unwrap is a failed run

use std::time::{Duration, Instant};

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let line = status.lines().find(|l| l.starts_with("VmRSS"));
    line.and_then(|l| l.split_whitespace().nth(1)?.parse().ok()).unwrap_or(0)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let threads: u64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(16);
    let seconds: u64 = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(4);
    let merge = args.get(3).is_none_or(|m| m != "rmw");
    let db = strata::Database::in_memory();
    let t = db.create_table("t").unwrap();
    let end = Instant::now() + Duration::from_secs(seconds);
    let worst = std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|id| {
                let (db, t) = (&db, &t);
                s.spawn(move || {
                    let (mut x, mut worst) = (id + 1, Duration::ZERO);
                    while Instant::now() < end {
                        x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                        let key = [((x >> 59) % 10) as u8];
                        let started = Instant::now();
                        if merge {
                            db.transaction(|txn| txn.add(t, key, 1)).unwrap();
                        } else {
                            db.transaction(|txn| {
                                let v = txn.get(t, key)?;
                                let n = v.map_or(0, |b| i64::from_le_bytes(b.try_into().unwrap()));
                                txn.put(t, key, (n + 1).to_le_bytes())
                            })
                            .unwrap();
                        }
                        worst = worst.max(started.elapsed());
                    }
                    worst
                })
            })
            .collect();
        while Instant::now() < end {
            std::thread::sleep(Duration::from_millis(500));
            let st = db.stats();
            println!(
                "rss {} KiB, live versions {}, commits {}",
                rss_kib(),
                st.versions_installed - st.versions_reclaimed,
                st.commits
            );
        }
        workers.into_iter().map(|w| w.join().unwrap()).max().unwrap_or_default()
    });
    let mode = if merge { "merge" } else { "rmw" };
    println!("{threads} threads, {mode}: slowest txn {worst:?}");
}
