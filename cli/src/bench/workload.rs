//! Workload definitions: which operations a thread runs, over which keys.
//!
//! - `counters-1k`, `counters-1m`, `counters-hot`, `counters`: every op increments one counter
//!   (read-modify-write txn), keys uniform. Gate: SUM = increments committed.
//! - `ycsb-a` (50% reads, 50% updates), `ycsb-b` (95/5), `ycsb-c` (reads only), `ycsb-f` (50%
//!   reads, 50% read-modify-writes), keys zipfian (`--zipf`, default θ 0.99), 100K keys. A YCSB
//!   update is a blind write (no read) of a fresh value. Gates: every read finds its row; for C
//!   the SUM is unchanged, for F it grew by the RMWs committed; for A and B (blind writes of
//!   values the gate cannot predict) the rows are all there and readable.
//! - `long-reader`: `counters` over 1,000 keys while one reader holds a snapshot for the whole
//!   run (engines that can report their versions: strata, baseline). Reported beside the
//!   throughput: the versions retained while the reader lives, and how long after it ends the
//!   background GC needs to bring them back to one per key. Gate: as `counters`.
//! - `ycsb-e`: 95% short range scans (from a zipfian start key, 1–100 rows, YCSB's scan length
//!   distribution) and 5% inserts of new keys above the preloaded ones, 100K keys. A scan is a
//!   read-only txn; the `baseline` store has no ordered index, so its scans collect and sort the
//!   table (the comparison the key directory is for). Gate: every scan returned ascending keys
//!   from its start, at most its length; the SUM grew by the inserts committed (each inserts 1).
//! - `scan` and `scan-after-churn`: every op is a full-table SUM in one snapshot (100K rows of 1).
//!   Before `scan-after-churn` runs, one thread churns the table: every row is overwritten
//!   `CHURN_ROUNDS` times and every other row deleted and inserted again, so the store holds dead
//!   versions and tombstones (until its GC removes them). Dead versions must not slow scans: the
//!   two workloads' rates should match. Gate: every SUM equals the row count.
//! - `bank`: transfers of 1–10 units between two uniform accounts (1,000 accounts of 1,000), and
//!   every 16th op of each thread a snapshot SUM of all balances, which must equal the opening
//!   total. Gate: every snapshot sum and the final sum equal the opening total.

use rand::{Rng as _, RngCore as _, SeedableRng as _};

/// What a workload's ops are.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Mix {
    Counters,
    /// Counters while a reader holds one snapshot for the whole run.
    LongReader,
    /// Percent of reads; the rest are blind writes (`rmw: false`) or increments (`rmw: true`).
    Ycsb {
        read_pct: u64,
        rmw: bool,
    },
    Bank,
    /// YCSB E: short scans and inserts.
    YcsbE,
    /// Full-table sums, after churn (`churn`) or on a freshly loaded table.
    Scan {
        churn: bool,
    },
}

/// Times `scan-after-churn` overwrites every row before it runs.
pub const CHURN_ROUNDS: u64 = 5;

/// Longest YCSB E scan (rows).
pub const SCAN_ROWS_MAX: u64 = 100;
/// Percent of YCSB E ops that are scans (the rest insert).
pub const SCAN_PCT: u64 = 95;

#[derive(Clone, Debug)]
pub struct Spec {
    pub mix: Mix,
    pub keys: u64,
    /// Zipfian skew; `None` is uniform.
    pub zipf: Option<f64>,
    /// Every row's opening value.
    pub initial: u64,
}

/// Opening balance of each bank account.
pub const BANK_BALANCE: u64 = 1_000;
/// Every this many ops a bank thread checks the snapshot total.
pub const BANK_CHECK_EVERY: u64 = 16;

pub const NAMES: &str = "counters-1k, counters-1m, counters-hot, counters, long-reader, ycsb-a, \
     ycsb-b, ycsb-c, ycsb-e, ycsb-f, bank, scan, scan-after-churn";

impl Spec {
    pub fn parse(name: &str, keys: Option<u64>, zipf: f64) -> Result<Spec, String> {
        let (mix, default_keys, skew, initial) = match name {
            "counters-1k" | "counters" => (Mix::Counters, 1_000, None, 0),
            "counters-1m" => (Mix::Counters, 1_000_000, None, 0),
            "counters-hot" => (Mix::Counters, 10, None, 0),
            "long-reader" => (Mix::LongReader, 1_000, None, 0),
            "ycsb-a" => (Mix::Ycsb { read_pct: 50, rmw: false }, 100_000, Some(zipf), 0),
            "ycsb-b" => (Mix::Ycsb { read_pct: 95, rmw: false }, 100_000, Some(zipf), 0),
            "ycsb-c" => (Mix::Ycsb { read_pct: 100, rmw: false }, 100_000, Some(zipf), 0),
            "ycsb-e" => (Mix::YcsbE, 100_000, Some(zipf), 0),
            "ycsb-f" => (Mix::Ycsb { read_pct: 50, rmw: true }, 100_000, Some(zipf), 0),
            "bank" => (Mix::Bank, 1_000, None, BANK_BALANCE),
            "scan" => (Mix::Scan { churn: false }, 100_000, None, 1),
            "scan-after-churn" => (Mix::Scan { churn: true }, 100_000, None, 1),
            other => return Err(format!("unknown workload {other:?} ({NAMES})")),
        };
        if let Some(t) = skew {
            if !(0.0..1.0).contains(&t) {
                return Err(format!("--zipf must be in [0, 1), got {t}"));
            }
        }
        let keys = keys.unwrap_or(default_keys).max(if mix == Mix::Bank { 2 } else { 1 });
        Ok(Spec { mix, keys, zipf: skew, initial })
    }
}

/// One operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Increment(u64),
    Read(u64),
    Write(u64, u64),
    Transfer {
        from: u64,
        to: u64,
        amount: u64,
    },
    CheckTotal,
    /// Up to `len` rows from `start` on, in key order.
    Scan {
        start: u64,
        len: u64,
    },
    /// A new key (value 1).
    Insert(u64),
}

/// The op streams' generator: `rand`'s small fast generator, seeded per thread so a run's ops
/// repeat from its seed.
pub type Rng = rand::rngs::SmallRng;

/// Gray et al.'s zipfian generator ("Quickly generating billion-record synthetic databases",
/// as YCSB uses it): rank 0 is the most popular; ranks are then scattered over the key space by
/// a hash, so the hot keys are not neighbours.
#[derive(Clone, Debug)]
pub struct Zipf {
    n: u64,
    theta: f64,
    alpha: f64,
    zeta_n: f64,
    eta: f64,
}

impl Zipf {
    pub fn new(n: u64, theta: f64) -> Zipf {
        let zeta = |n: u64| (1..=n).map(|i| 1.0 / (i as f64).powf(theta)).sum::<f64>();
        let zeta_n = zeta(n);
        let zeta_2 = zeta(2.min(n));
        let alpha = 1.0 / (1.0 - theta);
        let eta = (1.0 - (2.0 / n as f64).powf(1.0 - theta)) / (1.0 - zeta_2 / zeta_n);
        Zipf { n, theta, alpha, zeta_n, eta }
    }

    pub fn rank(&self, rng: &mut Rng) -> u64 {
        let u: f64 = rng.random();
        let uz = u * self.zeta_n;
        if uz < 1.0 {
            return 0;
        }
        if uz < 1.0 + 0.5f64.powf(self.theta) {
            return 1.min(self.n - 1);
        }
        let r = (self.n as f64 * (self.eta * u - self.eta + 1.0).powf(self.alpha)) as u64;
        r.min(self.n - 1)
    }

    /// A key: the rank scattered by FNV-1a.
    pub fn key(&self, rng: &mut Rng) -> u64 {
        let mut h: u64 = 0xCBF2_9CE4_8422_2325;
        for b in self.rank(rng).to_le_bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01B3);
        }
        h % self.n
    }
}

/// A thread's op stream.
pub struct Ops {
    spec: Spec,
    rng: Rng,
    zipf: Option<Zipf>,
    count: u64,
    /// The next key this thread inserts (YCSB E), and the stride between its keys.
    next_insert: u64,
    insert_stride: u64,
}

impl Ops {
    /// `zipf` is shared (its setup sums `keys` powers); pass `Zipf::new` once per run.
    pub fn new(spec: &Spec, seed: u64, zipf: Option<Zipf>) -> Ops {
        Ops {
            spec: spec.clone(),
            rng: Rng::seed_from_u64(seed),
            zipf,
            count: 0,
            next_insert: spec.keys,
            insert_stride: 1,
        }
    }

    /// Inserted keys (YCSB E) of thread `thread` of `threads`, from `first` on: `first + thread`,
    /// then every `threads` keys, so no two threads (or runs, given a fresh `first`) collide.
    pub fn inserting(mut self, first: u64, thread: u64, threads: u64) -> Ops {
        self.next_insert = first + thread;
        self.insert_stride = threads.max(1);
        self
    }

    fn key(&mut self) -> u64 {
        match &self.zipf {
            Some(z) => z.key(&mut self.rng),
            None => self.rng.random_range(0..self.spec.keys),
        }
    }

    pub fn next(&mut self) -> Op {
        self.count += 1;
        match self.spec.mix {
            Mix::Counters | Mix::LongReader => Op::Increment(self.key()),
            Mix::Ycsb { read_pct, rmw } => {
                let k = self.key();
                if self.rng.random_range(0..100) < read_pct {
                    Op::Read(k)
                } else if rmw {
                    Op::Increment(k)
                } else {
                    Op::Write(k, self.rng.next_u32().into())
                }
            }
            Mix::YcsbE => {
                if self.rng.random_range(0..100) < SCAN_PCT {
                    let start = self.key();
                    Op::Scan { start, len: 1 + self.rng.random_range(0..SCAN_ROWS_MAX) }
                } else {
                    let key = self.next_insert;
                    self.next_insert += self.insert_stride;
                    Op::Insert(key)
                }
            }
            Mix::Scan { .. } => Op::CheckTotal,
            Mix::Bank => {
                if self.count.is_multiple_of(BANK_CHECK_EVERY) {
                    return Op::CheckTotal;
                }
                let from = self.key();
                let mut to = self.key();
                if to == from {
                    to = (to + 1) % self.spec.keys;
                }
                Op::Transfer { from, to, amount: 1 + self.rng.random_range(0..10) }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zipf_is_skewed_and_in_range() {
        let z = Zipf::new(1000, 0.99);
        let mut rng = Rng::seed_from_u64(1);
        let mut counts = vec![0u32; 1000];
        for _ in 0..100_000 {
            counts[z.key(&mut rng) as usize] += 1;
        }
        let mut sorted = counts.clone();
        sorted.sort_unstable_by(|a, b| b.cmp(a));
        let top10: u32 = sorted[..10].iter().sum();
        // θ = 0.99 over 1,000 keys: the 10 hottest take about 39% of the accesses.
        assert!(top10 > 30_000 && top10 < 50_000, "top 10 keys got {top10} of 100000");
        // θ = 0: ranks are uniform (keys are ranks scattered by a hash, which need not be a
        // bijection, so some keys share a rank).
        let uniform = Zipf::new(1000, 0.0);
        let mut c2 = vec![0u32; 1000];
        for _ in 0..100_000 {
            c2[uniform.rank(&mut rng) as usize] += 1;
        }
        assert!(c2.iter().all(|c| *c > 40 && *c < 170), "θ = 0 gives uniform ranks");
    }

    #[test]
    fn mixes_have_their_proportions() {
        let spec = Spec::parse("ycsb-b", Some(100), 0.5).unwrap();
        let mut ops = Ops::new(&spec, 3, Some(Zipf::new(100, 0.5)));
        let reads = (0..10_000).filter(|_| matches!(ops.next(), Op::Read(_))).count();
        assert!((9_300..9_700).contains(&reads), "{reads} reads of 10000");
        let bank = Spec::parse("bank", None, 0.99).unwrap();
        let mut ops = Ops::new(&bank, 3, None);
        let all: Vec<Op> = (0..64).map(|_| ops.next()).collect();
        assert_eq!(all.iter().filter(|o| **o == Op::CheckTotal).count(), 4);
        assert!(all.iter().all(|o| match o {
            Op::Transfer { from, to, amount } => from != to && (1..=10).contains(amount),
            _ => true,
        }));
        assert!(Spec::parse("nope", None, 0.5).is_err());
        assert!(Spec::parse("ycsb-a", None, 1.5).is_err());
    }
}
