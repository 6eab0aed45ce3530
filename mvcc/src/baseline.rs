//! The baseline store: SQLRite's MvStore shape, `Mutex<HashMap<Key, Arc<RwLock<Vec<Version>>>>>`,
//! with the same visibility and conflict rules as Strata's lock-free store. It exists so every
//! benchmark can run the design Strata replaces side by side, and so the model-based tests have
//! a second, independently written implementation to compare against.
//!
//! Rules: each chain is a `Vec` of committed versions, oldest first. A commit locks its chains'
//! write locks in key order (no deadlock), validates first-committer-wins (newest committed
//! `ts <= read_ts`), takes its timestamp *while holding the locks*, appends, and unlocks. A reader
//! with `read_ts >= ts` loaded the clock after the `advance`, which the committer did while
//! holding the write locks, so its read lock is granted only after the appends: it sees all of
//! the commit or (if `read_ts < ts`) ignores it by timestamp. Readers take the global mutex (to
//! find the chain) and the chain's read lock — the costs Strata's design removes.

use crate::bytes::Bytes;
use crate::clock::{Clock, Timestamp};
use crate::error::MvccError;
use crate::index::ChainHint;
use crate::key::{KeyView, StoredKey, TableId};
use crate::range::KeyRange;
use crate::stats::bump;
use crate::store::{CommitCtx, GcReport, SealRule, SeenKey, StoreKind, VersionStore, Visible};
use crate::sync::{Mutex, RwLock, StdArc};
use crate::writeset::{Op, Writes};
use std::collections::{HashMap, VecDeque};
use std::fmt;

#[derive(Debug)]
struct BVersion {
    ts: u64,
    payload: Option<Bytes>,
    /// Written by a merge: a later merge may commit over it without a conflict.
    merge: bool,
}

/// A row's versions, oldest first. `removed` is set (under the write lock) when GC drops the
/// row from the map; a committer that locked a removed row looks it up again.
#[derive(Debug, Default)]
struct BRow {
    versions: Vec<BVersion>,
    removed: bool,
}

type BChain = StdArc<RwLock<BRow>>;

/// SQLRite-shaped store.
pub(crate) struct BaselineStore {
    rows: Mutex<HashMap<StoredKey, BChain, foldhash::fast::RandomState>>,
}

impl fmt::Debug for BaselineStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BaselineStore").field("keys", &self.rows.lock().len()).finish()
    }
}

impl BaselineStore {
    pub(crate) fn new() -> Self {
        BaselineStore { rows: Mutex::new(HashMap::default()) }
    }

    fn chain(&self, key: &dyn KeyView) -> Option<BChain> {
        crate::lines::write(crate::lines::Site::ShardLock, &self.rows);
        let chain = self.rows.lock().get(key).cloned();
        if let Some(c) = &chain {
            crate::lines::write(crate::lines::Site::RowLock, StdArc::as_ptr(c));
        }
        chain
    }
}

/// Keeps the newest version at or below `watermark` and everything newer. Returns the count cut.
fn truncate(versions: &mut Vec<BVersion>, watermark: u64) -> u64 {
    match versions.iter().rposition(|v| v.ts <= watermark) {
        Some(keep_from) if keep_from > 0 => {
            versions.drain(..keep_from);
            keep_from as u64
        }
        _ => 0,
    }
}

fn visible(versions: &[BVersion], read_ts: u64) -> Option<&BVersion> {
    versions.iter().rev().find(|v| v.ts <= read_ts)
}

impl VersionStore for BaselineStore {
    fn kind(&self) -> StoreKind {
        StoreKind::Baseline
    }

    fn read_with(
        &self,
        key: &dyn KeyView,
        read_ts: Timestamp,
        f: &mut dyn FnMut(Visible<'_>),
    ) -> Option<ChainHint> {
        let Some(chain) = self.chain(key) else {
            f(Visible::Unknown);
            return None;
        };
        // Copied out so that `f` runs with the chain's lock released (it may call back into
        // the store); short values are inline, so the copy allocates nothing.
        crate::lines::write(crate::lines::Site::RowLock, StdArc::as_ptr(&chain));
        let seen = visible(&chain.read().versions, read_ts.0).map(|v| v.payload.clone());
        f(match &seen {
            Some(Some(p)) => Visible::Row(p),
            Some(None) => Visible::Deleted,
            None => Visible::Unknown,
        });
        None // this store takes no hints: its commit looks every key up under its lock
    }

    /// Collects and sorts the whole range in one batch (this store has no ordered index: the
    /// cost a directory removes).
    fn range_batch(
        &self,
        range: &KeyRange,
        reverse: bool,
        read_ts: Timestamp,
        _max_rows: usize,
        out: &mut VecDeque<SeenKey>,
    ) -> Option<Vec<u8>> {
        let mut chains: Vec<(Vec<u8>, BChain)> = self
            .rows
            .lock()
            .iter()
            .filter(|(k, _)| k.table() == range.table() && range.contains(k.bytes()))
            .map(|(k, c)| (k.bytes().to_vec(), c.clone()))
            .collect();
        chains.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        if reverse {
            chains.reverse();
        }
        for (key, chain) in chains {
            let row = chain.read();
            if let Some(v) = visible(&row.versions, read_ts.0) {
                out.push_back((key, v.payload.as_deref().map(<[u8]>::to_vec)));
            }
        }
        None
    }

    fn supports_serializable(&self) -> bool {
        false
    }

    fn commit(&self, ctx: &CommitCtx<'_>, writes: Writes) -> Result<Timestamp, MvccError> {
        // Keys guarded by `Txn::validate_at_commit` (this store has no serializable mode, so
        // `reads` holds only those): locked like written keys, so no commit to them can land
        // between the check and our timestamp. A changed one is a plain conflict here (no
        // timestamp was taken, so none must be logged).
        let guards: Vec<StoredKey> = ctx
            .reads
            .map_or(&[][..], |r| &r.keys[..])
            .iter()
            .map(|(table, key)| StoredKey::new(*table, key.as_slice()))
            .filter(|g| !writes.iter().any(|(k, _)| k == g))
            .collect();
        // (key, what we write to it, if anything)
        let mut order: Vec<(&StoredKey, Option<&Op>)> =
            writes.iter().map(|(k, op)| (k, Some(op))).collect();
        order.extend(guards.iter().map(|g| (g, None)));
        // One key order over writes and guards: no two committers deadlock.
        if !guards.is_empty() {
            order.sort_by(|a, b| a.0.cmp(b.0));
        }
        let chains: Vec<BChain> = {
            crate::lines::write(crate::lines::Site::ShardLock, &self.rows);
            let mut rows = self.rows.lock();
            order.iter().map(|(k, _)| rows.entry((*k).clone()).or_default().clone()).collect()
        };
        for c in &chains {
            // The clone above and the lock below (the unlock writes the word again).
            crate::lines::write(crate::lines::Site::RowLock, StdArc::as_ptr(c));
        }
        // Each locked row with whether we write it.
        let mut locked: Vec<_> =
            chains.iter().zip(&order).map(|(c, (_, op))| (c.write(), op.is_some())).collect();
        if locked.iter().any(|(row, _)| row.removed) {
            // GC dropped a dead row between our lookup and our lock (rare): look up again.
            drop(locked);
            return self.commit(ctx, writes);
        }
        // The value of each merge, in the write set's order.
        let mut merged = Vec::new();
        for ((row, _), (key, op)) in locked.iter().zip(&order) {
            // A merge commits over merges that committed after its snapshot, not over a put
            // or a delete; anything else conflicts with every commit after its snapshot.
            let merge = match op {
                Some(Op::Merge(m)) => Some(*m),
                _ => None,
            };
            let mut after = row.versions.iter().rev().take_while(|v| v.ts > ctx.read_ts.0);
            if let Some(v) = after.find(|v| merge.is_none() || !v.merge) {
                return Err(ctx.conflict(key, Some(v.ts)));
            }
            if let Some(m) = merge {
                merged.push(match row.versions.last() {
                    Some(newest) => ctx.merged(key, m, newest.payload.as_deref())?,
                    None => ctx.merged_into_base(key, m)?,
                });
            }
        }
        let ts = ctx.clock.advance();
        let mut reclaimed = 0;
        let installed = writes.len() as u64;
        // The written rows come in the write set's own (sorted) order.
        let mut ops = writes.into_iter().map(|(_, op)| op);
        let mut merged = merged.into_iter();
        for (row, _) in locked.iter_mut().filter(|(_, write)| *write) {
            let (payload, merge) = match ops.next().expect("one op per written key") {
                Op::Put(v) => (Some(v), false),
                Op::Delete => (None, false),
                Op::Merge(_) => (Some(merged.next().expect("one value per merge")), true),
            };
            row.versions.push(BVersion { ts: ts.0, payload, merge });
            reclaimed += truncate(&mut row.versions, ctx.watermark.0);
        }
        drop(locked);
        let stripe = ctx.stats.local();
        bump(&stripe.versions_installed, installed);
        bump(&stripe.versions_reclaimed, reclaimed);
        Ok(ts)
    }

    fn collect(
        &self,
        watermark: Timestamp,
        dropped: &[TableId],
        seal: SealRule,
        _clock: &Clock,
    ) -> GcReport {
        let mut report = GcReport { watermark, ..GcReport::default() };
        let mut rows = self.rows.lock();
        rows.retain(|key, chain| {
            if dropped.contains(&key.table()) {
                report.keys_removed += 1;
                return false;
            }
            let mut row = chain.write();
            report.versions_reclaimed += truncate(&mut row.versions, watermark.0);
            let dead = match seal {
                SealRule::Tombstones { watermark } => matches!(row.versions.as_slice(),
                    [only] if only.payload.is_none() && only.ts <= watermark),
                SealRule::Checkpointed { upto } => {
                    row.versions.last().is_some_and(|newest| newest.ts <= upto)
                }
            };
            if dead {
                row.removed = true;
                report.versions_reclaimed += row.versions.len() as u64;
                report.keys_removed += 1;
            }
            !dead
        });
        report
    }

    fn key_count(&self) -> usize {
        self.rows.lock().len()
    }

    fn changes(&self, since: u64, upto: u64, f: &mut dyn FnMut(&StoredKey, Option<&[u8]>)) {
        let mut chains: Vec<(StoredKey, BChain)> =
            self.rows.lock().iter().map(|(k, c)| (k.clone(), c.clone())).collect();
        chains.sort_by(|a, b| a.0.cmp(&b.0));
        for (key, chain) in chains {
            let row = chain.read();
            if let Some(v) = visible(&row.versions, upto).filter(|v| v.ts > since) {
                f(&key, v.payload.as_deref());
            }
        }
    }
}
