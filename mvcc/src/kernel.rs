//! The lock-free kernel without the key index and snapshot registry around it, for *complete*
//! schedule search (`shuttle::check_dfs`, `cfg(shuttle)` builds only).
//!
//! A full-API scenario is dozens of scheduler-visible operations per thread (registry slot scan,
//! index locks, statistics), and DFS — which has no preemption bound — cannot enumerate its
//! interleavings. Here a fixed array of chains replaces the index and snapshots are bare clock
//! reads, so a two-txn scenario has a few dozen operations in all and DFS finishes. The commit is
//! the store's own `commit_protocol` and the reads are `Chain::read`: the same code, not a copy.

use crate::bytes::Bytes;
use crate::chain::{Chain, Merging, ReadOutcome, Version};
use crate::clock::{Clock, Timestamp};
use crate::error::MvccError;
use crate::index::{held, ChainHint, ChainRef};
use crate::key::{KeyView, StoredKey, TableId};
use crate::lockfree::{commit_protocol, install_on, ChainSource, InstallFail};
use crate::range::{KeyRange, ReadSet};
use crate::state::{TxnId, TxnState};
use crate::stats::Stats;
use crate::store::CommitCtx;
use crate::sync::epoch::{self, Guard, Owned, Shared};
use crate::sync::Arc;
use crate::writeset::Op;
use std::ops::Bound;

/// A clock and a fixed set of chains (keys are `0..n` as one-byte keys).
pub struct Kernel {
    clock: Clock,
    stats: Stats,
    /// By `Arc`, as the model index holds its chains (a commit keeps the ones it installed on).
    chains: Vec<Arc<Chain>>,
}

impl std::fmt::Debug for Kernel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kernel").field("chains", &self.chains.len()).finish()
    }
}

impl ChainSource for Kernel {
    fn install<'g>(
        &self,
        ctx: &CommitCtx<'_>,
        key: &StoredKey,
        version: Owned<Version>,
        merge: Option<&Merging<'_>>,
        _hint: Option<&ChainHint>,
        guard: &'g Guard,
    ) -> Result<(Shared<'g, Version>, ChainRef<'g>), InstallFail<'g>> {
        let chain = &self.chains[usize::from(key.bytes()[0])];
        match install_on(chain, ctx, key, version, merge, guard) {
            Err(InstallFail::Sealed(_)) => unreachable!("kernel chains are never sealed"),
            result => result.map(|v| (v, held(chain))),
        }
    }

    fn validate(
        &self,
        ctx: &CommitCtx<'_>,
        reads: &ReadSet,
        commit_ts: Timestamp,
        own: &TxnState,
        guard: &Guard,
    ) -> Result<(), MvccError> {
        let keys = reads.keys.iter().map(|(_, k)| k.as_slice()[0]);
        let in_ranges =
            (0..self.chains.len() as u8).filter(|k| reads.ranges.iter().any(|r| r.contains(&[*k])));
        for k in keys.chain(in_ranges) {
            let chain = &self.chains[usize::from(k)];
            if let Err(ts) = chain.validate(ctx.read_ts.0, commit_ts.0, own, guard) {
                let probe: (TableId, &[u8]) = (TableId(0), &[k]);
                return Err(ctx.serialization_failure(&probe, ts, commit_ts));
            }
        }
        Ok(())
    }
}

impl Kernel {
    /// `keys` empty chains and a clock at 0.
    pub fn new(keys: usize) -> Self {
        Kernel {
            clock: Clock::new(Timestamp::ZERO),
            stats: Stats::new(),
            chains: (0..keys).map(|_| Arc::new(Chain::new())).collect(),
        }
    }

    /// A snapshot timestamp (the clock's Acquire read; no registry).
    pub fn snapshot(&self) -> u64 {
        self.clock.now().0
    }

    /// Commits `value` to every key in `keys` for a txn whose snapshot is `read_ts`, through the
    /// store's commit protocol (no inline GC: watermark 0).
    pub fn commit(
        &self,
        txn: u64,
        keys: &[u8],
        value: &[u8],
        read_ts: u64,
    ) -> Result<u64, MvccError> {
        self.commit_checked(txn, keys, value, read_ts, None)
    }

    /// `commit` for a serializable txn that read `reads` (keys, and ranges of one-byte keys).
    pub fn commit_serializable(
        &self,
        txn: u64,
        keys: &[u8],
        value: &[u8],
        read_ts: u64,
        reads: &[u8],
        ranges: &[std::ops::RangeInclusive<u8>],
    ) -> Result<u64, MvccError> {
        let set = ReadSet {
            keys: reads.iter().map(|k| (TableId(0), Bytes::new(&[*k]))).collect(),
            ranges: ranges
                .iter()
                .map(|r| {
                    let (lo, hi) = ([*r.start()], [*r.end()]);
                    KeyRange::new(TableId(0), Bound::Included(&lo), Bound::Included(&hi))
                })
                .collect(),
        };
        self.commit_checked(txn, keys, value, read_ts, Some(&set))
    }

    fn commit_checked(
        &self,
        txn: u64,
        keys: &[u8],
        value: &[u8],
        read_ts: u64,
        reads: Option<&ReadSet>,
    ) -> Result<u64, MvccError> {
        let mut writes: crate::writeset::Writes = keys
            .iter()
            .map(|k| (StoredKey::new(TableId(0), &[*k]), Op::Put(Bytes::new(value))))
            .collect();
        writes.sort_by(|a, b| a.0.cmp(&b.0));
        let ctx = CommitCtx {
            clock: &self.clock,
            txn: TxnId(txn),
            read_ts: Timestamp(read_ts),
            watermark: Timestamp::ZERO,
            stats: &self.stats,
            reads,
            base: None,
            hints: &[],
        };
        commit_protocol(self, &ctx, writes).map(|ts| ts.0)
    }

    /// What a snapshot at `read_ts` reads for `key`.
    pub fn read(&self, key: u8, read_ts: u64) -> Option<Vec<u8>> {
        let guard = epoch::pin();
        match self.chains[usize::from(key)].read(read_ts, &guard) {
            ReadOutcome::Found(Some(p)) => Some(p.to_vec()),
            _ => None,
        }
    }
}
