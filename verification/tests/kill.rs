//! The process kill test: a child process (`src/bin/kill-child.rs`) runs concurrent bank
//! transfers under `Durability::Sync` on a real directory and prints each acknowledged commit;
//! this parent `SIGKILL`s it at a random moment — during recovery, right after it, or while
//! transfers and checkpoints run — then reopens the directory itself and checks it with
//! `strata::check` (no damage, and the same recovery it predicts) and `bank::check`: every acknowledged transfer present, no transfer half-present (balances equal
//! the opening balances plus the journal), money conserved, each writer's transfers a gap-free
//! prefix, and nothing seen at an earlier check lost. The same directory carries on through
//! runs of 25 kills, so each child also recovers from the previous one's crash; the file backend
//! rotates through mmap+fdatasync, mmap+msync and pwrite.
//!
//! `STRATA_KILL_POINTS=N` sets the number of kills (default 200); `STRATA_KILL_SEED=S` the
//! seed of the kill schedule and the transfers.
#![cfg(unix)]
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use rand::rngs::SmallRng;
use rand::Rng as _;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;
use strata::{Database, FileIo};
use strata_verification::bank::{self, Summary, WriterId};

const WRITERS: u16 = 4;
/// Kills per directory: each child recovers from its predecessor's crash; after this many a
/// fresh directory starts, so the journal (and each recovery) stays small.
const KILLS_PER_DIRECTORY: u32 = 25;
/// How long the parent waits for a child to say `ready` before calling it hung.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|s| s.parse().ok()).unwrap_or(default)
}

fn sleep_up_to(rng: &mut SmallRng, micros: u64) {
    std::thread::sleep(Duration::from_micros(rng.random_range(0..=micros)));
}

#[test]
fn acknowledged_commits_survive_sigkill_at_random_moments() {
    let points: u32 = env_or("STRATA_KILL_POINTS", 200);
    let seed: u64 = env_or("STRATA_KILL_SEED", 1);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("kill");
    let ios = [("mmap", FileIo::Mmap), ("msync", FileIo::MmapMsync), ("pwrite", FileIo::Pwrite)];

    let mut rng = bank::rng(seed);
    let mut before = Summary::default();
    let mut recovered_total = 0u64;
    let (mut acks_total, mut before_ready, mut torn_tails, mut resets) = (0u64, 0u32, 0u32, 0u32);
    for generation in 0..points {
        if generation.is_multiple_of(KILLS_PER_DIRECTORY) {
            let _ = std::fs::remove_dir_all(&dir);
            before = Summary::default();
        }
        let (io_name, io) = ios[generation as usize % ios.len()];
        let mut child = Command::new(env!("CARGO_BIN_EXE_kill-child"))
            .arg(&dir)
            .args([generation.to_string(), WRITERS.to_string(), seed.to_string()])
            .arg(io_name)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel::<String>();
        let out_reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let err_reader = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = stderr.read_to_string(&mut s);
            s
        });

        // Where the kill lands: 10% before `ready` (inside open and recovery), 20% just
        // after it, the rest while transfers and checkpoints run.
        let mut lines = Vec::new();
        let mode = rng.random_range(0..10);
        if mode == 0 {
            before_ready += 1;
            sleep_up_to(&mut rng, 15_000);
        } else {
            loop {
                match rx.recv_timeout(READY_TIMEOUT) {
                    Ok(line) if line == "ready" => break,
                    Ok(line) => lines.push(line),
                    Err(e) => {
                        let _ = child.kill();
                        let _ = child.wait();
                        panic!(
                            "kill {generation}: no `ready` from the child ({e}); stderr: {}",
                            err_reader.join().unwrap()
                        );
                    }
                }
            }
            sleep_up_to(&mut rng, if mode < 3 { 2_000 } else { 40_000 });
        }
        child.kill().unwrap();
        let status = child.wait().unwrap();
        out_reader.join().unwrap();
        let stderr = err_reader.join().unwrap();
        lines.extend(rx.try_iter());
        assert!(
            status.signal() == Some(9) || status.success(),
            "kill {generation}: the child died by itself ({status}); stderr: {stderr}"
        );

        let mut acked: Vec<(WriterId, u32)> = Vec::new();
        for line in lines.iter().filter(|l| *l != "ready") {
            let mut parts = line.split(' ');
            match (parts.next(), parts.next(), parts.next()) {
                (Some("ack"), Some(w), Some(seq)) => {
                    acked.push(((generation, w.parse().unwrap()), seq.parse().unwrap()));
                }
                _ => panic!("kill {generation}: unexpected child output {line:?}"),
            }
        }
        acks_total += acked.len() as u64;

        // `strata check` on the crashed directory: a SIGKILL keeps the page cache, so at most
        // a torn tail — never damage — and it predicts exactly what the reopen recovers.
        let checked = strata::check(&dir).unwrap_or_else(|e| {
            panic!("kill {generation} ({io_name}): check failed: {e}; child stderr: {stderr}")
        });
        assert!(!checked.is_corrupt(), "kill {generation}: check found {:?}", checked.problems);
        let db = Database::open(&dir, bank::options(io)).unwrap_or_else(|e| {
            panic!("kill {generation} ({io_name}): reopening failed: {e}; child stderr: {stderr}")
        });
        let report = db.recovery_report().unwrap();
        assert_eq!(report.recovered_ts, checked.recovery.recovered_ts, "kill {generation}");
        torn_tails += u32::from(report.log_stop.is_some());
        resets += u32::from(report.reset_log);
        before = bank::check(&db, &acked, &before).unwrap_or_else(|e| {
            panic!("kill {generation} ({io_name}, {} acks): {e}; recovery: {report:?}", acked.len())
        });
        db.close().unwrap();
        if (generation + 1).is_multiple_of(KILLS_PER_DIRECTORY) || generation + 1 == points {
            recovered_total += before.total_transfers;
        }
    }
    println!(
        "{points} kills ({before_ready} before `ready`), {acks_total} acknowledged transfers, \
         {recovered_total} transfers recovered, {torn_tails} recoveries found a torn or unclean tail, \
         {resets} reset the log"
    );
    assert!(acks_total > 0, "no child acknowledged anything: the test exercised nothing");
    assert!(recovered_total >= acks_total);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The checker is the kill test's only judge: it must reject each kind of damage it claims to
/// catch.
#[test]
fn the_bank_checker_rejects_damaged_states() {
    let db = Database::in_memory();
    let t = bank::Tables::open(&db).unwrap();
    bank::open_accounts(&db, &t).unwrap();
    let writer = (7, 1);
    for seq in 0..20 {
        db.transaction(|txn| {
            bank::transfer(txn, &t, writer, seq, seq % 16, (seq * 5 + 3) % 16, 50)
        })
        .unwrap();
    }
    let good = bank::check(&db, &[(writer, 19)], &Summary::default()).unwrap();
    assert_eq!(good.transfers[&writer], 20);

    // An acknowledged transfer beyond what is there.
    assert!(bank::check(&db, &[(writer, 20)], &Summary::default()).is_err());
    // Fewer transfers than an earlier check saw.
    let mut more = good.clone();
    more.transfers.insert(writer, 21);
    assert!(bank::check(&db, &[], &more).is_err());

    // Half a transfer: one balance moved, no journal row.
    let snap = db.begin_read().unwrap();
    let b0 = snap.get(&t.bank, 0u32.to_be_bytes()).unwrap().unwrap();
    drop(snap);
    let put_balance = |value: &[u8]| {
        let mut txn = db.begin().unwrap();
        txn.put(&t.bank, 0u32.to_be_bytes(), value).unwrap();
        txn.commit().unwrap();
    };
    put_balance(&1i64.to_be_bytes());
    assert!(bank::check(&db, &[], &Summary::default()).is_err(), "half a transfer not caught");
    put_balance(&b0);
    // The state is whole again; a gap in the journal (with a matching counter) is caught...
    bank::check(&db, &[], &Summary::default()).unwrap();
    let mut txn = db.begin().unwrap();
    txn.put(&t.journal, bank::journal_key(writer, 25), [0u8; 16]).unwrap();
    txn.commit().unwrap();
    assert!(bank::check(&db, &[], &Summary::default()).is_err());
}
