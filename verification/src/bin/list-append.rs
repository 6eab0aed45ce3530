//! `list-append`: runs the list-append workload (`strata_verification::list_append`) many times
//! and reports runs, txns, time and anomalies — the command behind the figures in
//! docs/design/lost-update-2026-11.md.
//!
//! ```text
//! cargo run --release -p strata-verification --bin list-append -- \
//!     [--runs N] [--paths lockfree,serializable,baseline,disk,sql] [--threads N] [--txns N]
//!     [--sleep-us N|mixed] [--seed S] [--until-caught]
//! ```
//! `--until-caught` stops at the first anomaly and prints the run it took (with a build under
//! `RUSTFLAGS="--cfg strata_canary"`, `--canary` switches the reverted fix back on). Exit status:
//! 0 clean, 1 anomalies found, 2 bad usage or a harness error.

#![cfg_attr(any(loom, shuttle), allow(unused))]

#[cfg(not(any(loom, shuttle)))]
use std::time::Instant;
#[cfg(not(any(loom, shuttle)))]
use strata_verification::list_append::{run_path, Config, Path};

/// Model-checking builds (`--cfg loom` / `--cfg shuttle`) have no workload to run.
#[cfg(any(loom, shuttle))]
fn main() {
    eprintln!("list-append is not built for loom or shuttle");
    std::process::exit(2);
}

#[cfg(not(any(loom, shuttle)))]
struct Args {
    runs: u64,
    paths: Vec<Path>,
    threads: usize,
    txns: usize,
    sleep: Option<u64>,
    seed: u64,
    until_caught: bool,
    canary: bool,
}

#[cfg(not(any(loom, shuttle)))]
fn parse() -> Result<Args, String> {
    let mut a = Args {
        runs: 10,
        paths: vec![Path::LockFree],
        threads: 8,
        txns: 20_000,
        sleep: None,
        seed: 1,
        until_caught: false,
        canary: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        let num = |v: String| v.parse::<u64>().map_err(|e| format!("{flag}: {e}"));
        match flag.as_str() {
            "--runs" => a.runs = num(value()?)?,
            "--threads" => a.threads = num(value()?)? as usize,
            "--txns" => a.txns = num(value()?)? as usize,
            "--seed" => a.seed = num(value()?)?,
            "--sleep-us" => {
                let v = value()?;
                a.sleep = if v == "mixed" { None } else { Some(num(v)?) };
            }
            "--paths" => {
                let v = value()?;
                a.paths = if v == "all" {
                    Path::ALL.to_vec()
                } else {
                    v.split(',')
                        .map(|p| Path::parse(p).ok_or(format!("unknown path {p}")))
                        .collect::<Result<_, _>>()?
                };
            }
            "--until-caught" => a.until_caught = true,
            "--canary" => a.canary = true,
            "--help" | "-h" => return Err(String::new()),
            other => return Err(format!("unknown flag {other}")),
        }
    }
    if a.threads == 0 || a.txns == 0 {
        return Err("--threads and --txns must be positive".into());
    }
    Ok(a)
}

#[cfg(not(any(loom, shuttle)))]
fn main() {
    let args = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}\nusage: list-append [--runs N] [--paths P,..|all] [--threads N] [--txns N] [--sleep-us N|mixed] [--seed S] [--until-caught] [--canary]");
            std::process::exit(2);
        }
    };
    if args.canary {
        #[cfg(strata_canary)]
        strata_mvcc::canary::set(strata_mvcc::canary::Canary::AbortedHeadUnchecked);
        #[cfg(not(strata_canary))]
        {
            eprintln!("--canary needs a build with RUSTFLAGS=\"--cfg strata_canary\"");
            std::process::exit(2);
        }
    }
    let tmp = match tempfile::Builder::new().prefix("strata-list-append-").tempdir() {
        Ok(t) => t,
        Err(e) => {
            eprintln!("creating a temporary directory: {e}");
            std::process::exit(2);
        }
    };
    let dir = tmp.path().join("db");
    let started = Instant::now();
    let mut bad_runs = 0u64;
    for path in &args.paths {
        let t0 = Instant::now();
        let (mut committed, mut failed, mut anomalies) = (0usize, 0usize, 0usize);
        for run in 0..args.runs {
            let sleep = args.sleep.unwrap_or(if run % 2 == 0 { 0 } else { 20 });
            let cfg = Config {
                threads: args.threads,
                txns: args.txns,
                op_sleep_us: sleep,
                ..Config::standard(args.seed + run)
            };
            let report = match run_path(*path, &cfg, &dir) {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("{}: run {}: harness error: {e}", path.name(), run + 1);
                    std::process::exit(2);
                }
            };
            committed += report.committed;
            failed += report.failed;
            if !report.anomalies.is_empty() {
                bad_runs += 1;
                anomalies += report.anomalies.len();
                println!(
                    "{}: run {} (seed {}, sleep {sleep}us): {} anomalies, first: {}",
                    path.name(),
                    run + 1,
                    args.seed + run,
                    report.anomalies.len(),
                    report.anomalies[0]
                );
                if args.until_caught {
                    println!("caught after {} runs", run + 1);
                    drop(tmp); // `exit` runs no destructors
                    std::process::exit(1);
                }
            }
        }
        println!(
            "{}: {} runs x {} txns, {} threads: {committed} committed, {failed} failed, {anomalies} anomalies, {:.1}s",
            path.name(),
            args.runs,
            args.txns,
            args.threads,
            t0.elapsed().as_secs_f64()
        );
    }
    println!("total {:.1}s, runs with anomalies: {bad_runs}", started.elapsed().as_secs_f64());
    drop(tmp); // `exit` runs no destructors
    std::process::exit(i32::from(bad_runs > 0));
}
