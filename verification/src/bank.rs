//! The bank-with-journal workload of the process kill test (`tests/kill.rs`, child binary
//! `src/bin/kill-child.rs`), and the checker that judges a recovered database.
//!
//! Tables:
//! - `bank`: `ACCOUNTS` accounts (key: account number, u32 BE; value: balance, i64 BE), each
//!   opened with `OPENING_BALANCE` by one txn;
//! - `journal`: one row per transfer, key `(generation u32, writer u16, seq u32)` BE, value
//!   `(from u32, to u32, amount i64)` BE — written in the same txn as the two balances;
//! - `counters`: per `(generation, writer)`, the number of transfers that writer committed,
//!   bumped in the same txn.
//!
//! Each writer commits its transfers one after another, so its seqs are committed in order.
//! A recovered state is judged by [`check`]: the money is conserved, every balance equals the
//! opening balance plus the journal's effects (so no transfer is half-present), each writer's
//! journal is a gap-free prefix `0..n` whose length the counter repeats (recovery restores a
//! prefix of the commit order), and every acknowledged seq is inside that prefix.

use std::collections::BTreeMap;
use std::time::Duration;
use strata::{Database, Durability, FileIo, Options, Result, Table, Txn};

/// Accounts in the bank.
pub const ACCOUNTS: u32 = 16;
/// Each account's opening balance.
pub const OPENING_BALANCE: i64 = 1_000;

pub const BANK: &str = "bank";
pub const JOURNAL: &str = "journal";
pub const COUNTERS: &str = "counters";

/// The kill test's deterministic coin (schedule and transfers): `rand`'s small generator, so a
/// run repeats from its seed.
pub fn rng(seed: u64) -> rand::rngs::SmallRng {
    rand::SeedableRng::seed_from_u64(seed)
}

/// The options both the child and the checking parent open the directory with: small
/// segments (so rotation and recycling happen) and frequent background checkpoints.
pub fn options(io: FileIo) -> Options {
    Options::default()
        .durability(Durability::Sync)
        .file_io(io)
        .segment_bytes(64 * 1024)
        .checkpoints(256 * 1024, Some(Duration::from_millis(20)))
}

/// One writer of one child process: `(generation, writer)`.
pub type WriterId = (u32, u16);

/// The three tables, created if missing.
#[derive(Debug)]
pub struct Tables {
    pub bank: Table,
    pub journal: Table,
    pub counters: Table,
}

impl Tables {
    pub fn open(db: &Database) -> Result<Tables> {
        Ok(Tables {
            bank: db.create_or_open_table(BANK)?,
            journal: db.create_or_open_table(JOURNAL)?,
            counters: db.create_or_open_table(COUNTERS)?,
        })
    }
}

/// Opens the accounts in one txn unless a previous generation already did.
pub fn open_accounts(db: &Database, t: &Tables) -> Result<()> {
    db.transaction(|txn| {
        if txn.get(&t.bank, 0u32.to_be_bytes())?.is_some() {
            return Ok(());
        }
        for account in 0..ACCOUNTS {
            txn.put(&t.bank, account.to_be_bytes(), OPENING_BALANCE.to_be_bytes())?;
        }
        Ok(())
    })
}

pub fn journal_key((generation, writer): WriterId, seq: u32) -> [u8; 10] {
    let mut k = [0u8; 10];
    k[..4].copy_from_slice(&generation.to_be_bytes());
    k[4..6].copy_from_slice(&writer.to_be_bytes());
    k[6..].copy_from_slice(&seq.to_be_bytes());
    k
}

fn counter_key((generation, writer): WriterId) -> [u8; 6] {
    let mut k = [0u8; 6];
    k[..4].copy_from_slice(&generation.to_be_bytes());
    k[4..].copy_from_slice(&writer.to_be_bytes());
    k
}

fn balance(txn: &Txn, t: &Tables, account: u32) -> Result<i64> {
    let v = txn.get(&t.bank, account.to_be_bytes())?;
    // A missing or malformed balance reads as a poisoned value the checker will reject.
    Ok(v.and_then(|v| <[u8; 8]>::try_from(v.as_slice()).ok()).map_or(i64::MIN, i64::from_be_bytes))
}

/// Writes transfer `seq` of `writer` into `txn`: moves `amount` (or nothing, if `from` cannot
/// cover it) and records it in the journal and the writer's counter.
pub fn transfer(
    txn: &mut Txn,
    t: &Tables,
    writer: WriterId,
    seq: u32,
    from: u32,
    to: u32,
    amount: i64,
) -> Result<()> {
    let from_balance = balance(txn, t, from)?;
    let moved = if from != to && from_balance >= amount { amount } else { 0 };
    if moved > 0 {
        let to_balance = balance(txn, t, to)?;
        txn.put(&t.bank, from.to_be_bytes(), (from_balance - moved).to_be_bytes())?;
        txn.put(&t.bank, to.to_be_bytes(), (to_balance + moved).to_be_bytes())?;
    }
    let mut entry = [0u8; 16];
    entry[..4].copy_from_slice(&from.to_be_bytes());
    entry[4..8].copy_from_slice(&to.to_be_bytes());
    entry[8..].copy_from_slice(&moved.to_be_bytes());
    txn.put(&t.journal, journal_key(writer, seq), entry)?;
    txn.put(&t.counters, counter_key(writer), (seq + 1).to_be_bytes())
}

/// What [`check`] found in a consistent state.
#[derive(Debug, Default, Clone)]
pub struct Summary {
    /// Committed transfers per writer (each writer's journal is exactly `0..n`).
    pub transfers: BTreeMap<WriterId, u32>,
    pub total_transfers: u64,
}

/// Judges a recovered database. `acked` lists every `(writer, seq)` the child acknowledged;
/// `before` is the previous check's summary (nothing it saw may have disappeared).
pub fn check(
    db: &Database,
    acked: &[(WriterId, u32)],
    before: &Summary,
) -> std::result::Result<Summary, String> {
    let e = |e: strata::Error| e.to_string();
    let t = Tables::open(db).map_err(e)?;
    let snap = db.begin_read().map_err(e)?;
    let bank = snap.scan(&t.bank).map_err(e)?;
    let journal = snap.scan(&t.journal).map_err(e)?;
    let counters = snap.scan(&t.counters).map_err(e)?;

    let mut expected: BTreeMap<u32, i64> = BTreeMap::new();
    let mut summary = Summary::default();
    if !bank.is_empty() {
        expected = (0..ACCOUNTS).map(|a| (a, OPENING_BALANCE)).collect();
    }
    for (k, v) in &journal {
        let (Ok(k), Ok(v)) =
            (<[u8; 10]>::try_from(k.as_slice()), <[u8; 16]>::try_from(v.as_slice()))
        else {
            return Err(format!("malformed journal row {k:?} = {v:?}"));
        };
        let writer = (
            u32::from_be_bytes(k[..4].try_into().unwrap_or_default()),
            u16::from_be_bytes([k[4], k[5]]),
        );
        let seq = u32::from_be_bytes(k[6..].try_into().unwrap_or_default());
        let n = summary.transfers.entry(writer).or_insert(0);
        if seq != *n {
            return Err(format!(
                "writer {writer:?}: journal has seq {seq} where {n} was next (a gap)"
            ));
        }
        *n += 1;
        summary.total_transfers += 1;
        let from = u32::from_be_bytes(v[..4].try_into().unwrap_or_default());
        let to = u32::from_be_bytes(v[4..8].try_into().unwrap_or_default());
        let moved = i64::from_be_bytes(v[8..].try_into().unwrap_or_default());
        if moved != 0 {
            if expected.is_empty() {
                return Err("a transfer moved money before the accounts were opened".into());
            }
            *expected.entry(from).or_insert(i64::MIN) -= moved;
            *expected.entry(to).or_insert(i64::MIN) += moved;
        }
    }
    let found: BTreeMap<u32, i64> = bank
        .iter()
        .map(|(k, v)| {
            let k = <[u8; 4]>::try_from(k.as_slice()).map(u32::from_be_bytes).unwrap_or(u32::MAX);
            let v = <[u8; 8]>::try_from(v.as_slice()).map(i64::from_be_bytes).unwrap_or(i64::MIN);
            (k, v)
        })
        .collect();
    if found != expected {
        return Err(format!(
            "balances differ from opening balances + journal (a half-present transfer?): \
             found {found:?}, expected {expected:?}"
        ));
    }
    if let Some((a, b)) = found.iter().find(|(_, b)| **b < 0) {
        return Err(format!("account {a} is negative: {b}"));
    }
    let total: i64 = found.values().sum();
    if !found.is_empty() && total != i64::from(ACCOUNTS) * OPENING_BALANCE {
        return Err(format!("money not conserved: total {total}"));
    }
    let counted: BTreeMap<WriterId, u32> = counters
        .iter()
        .map(|(k, v)| {
            let writer = if k.len() == 6 {
                (u32::from_be_bytes([k[0], k[1], k[2], k[3]]), u16::from_be_bytes([k[4], k[5]]))
            } else {
                (u32::MAX, u16::MAX)
            };
            let n = <[u8; 4]>::try_from(v.as_slice()).map(u32::from_be_bytes).unwrap_or(u32::MAX);
            (writer, n)
        })
        .collect();
    if counted != summary.transfers {
        return Err(format!(
            "counters {counted:?} disagree with the journal {:?}",
            summary.transfers
        ));
    }
    for &(writer, seq) in acked {
        let n = summary.transfers.get(&writer).copied().unwrap_or(0);
        if seq >= n {
            return Err(format!(
                "acknowledged transfer {writer:?}#{seq} is missing (journal has 0..{n})"
            ));
        }
    }
    for (writer, &n) in &before.transfers {
        let now = summary.transfers.get(writer).copied().unwrap_or(0);
        if now < n {
            return Err(format!(
                "writer {writer:?} had {n} transfers at the previous check, now {now}"
            ));
        }
    }
    Ok(summary)
}
