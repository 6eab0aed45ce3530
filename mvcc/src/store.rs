//! The version-store trait: where chains live and how a commit is validated and published.
//!
//! Two implementations share the clock, snapshot registry, txn buffering and GC scheduling
//! (`Mvcc`/`Txn` in `lib.rs`/`txn.rs`) and differ only in the chain representation:
//! - `lockfree::LockFreeStore`: lock-free chains in a sharded `DashMap` (Strata);
//! - `baseline::BaselineStore`: SQLRite's shape, `Mutex<HashMap<Key,
//!   Arc<RwLock<Vec<Version>>>>>`, with the same visibility and conflict rules, kept for
//!   side-by-side benchmarks and as a second implementation for the model-based tests.

use crate::base::BaseReader;
use crate::bytes::Bytes;
use crate::clock::{Clock, Timestamp};
use crate::error::MvccError;
use crate::index::ChainHint;
use crate::key::{KeyView, StoredKey, TableId};
use crate::merge::MergeOp;
use crate::range::{KeyRange, ReadSet};
use crate::state::TxnId;
use crate::stats::Stats;
use crate::writeset::Writes;
use std::collections::VecDeque;
use std::fmt;

/// Which chain representation a database uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Hash)]
#[non_exhaustive]
pub enum StoreKind {
    /// Lock-free version chains in a sharded `DashMap` (the default).
    #[default]
    LockFree,
    /// The mutex-per-chain store of SQLRite's shape, for comparison.
    Baseline,
}

impl StoreKind {
    /// The name used by benchmarks and statistics.
    pub fn name(self) -> &'static str {
        match self {
            StoreKind::LockFree => "strata",
            StoreKind::Baseline => "baseline",
        }
    }
}

/// What a commit needs from the shared core.
pub(crate) struct CommitCtx<'a> {
    pub(crate) clock: &'a Clock,
    pub(crate) txn: TxnId,
    pub(crate) read_ts: Timestamp,
    /// A (possibly stale, always safe) GC watermark for inline reclamation.
    pub(crate) watermark: Timestamp,
    pub(crate) stats: &'a Stats,
    /// A serializable txn's reads, validated after it takes its timestamp; `None` for snapshot
    /// isolation.
    pub(crate) reads: Option<&'a ReadSet>,
    /// The base under the chains: a merge into a key with no version in its chain applies to
    /// the base's row.
    pub(crate) base: Option<&'a dyn BaseReader>,
    /// Chains this txn's reads found, by key (`VersionStore::read_with`); a commit installs on
    /// a key's hinted chain instead of looking the key up again.
    pub(crate) hints: &'a [Hint<'a>],
}

/// A key and the chain a txn's read found for it.
#[derive(Clone, Copy)]
pub(crate) struct Hint<'a> {
    pub(crate) table: TableId,
    pub(crate) key: &'a [u8],
    pub(crate) chain: &'a ChainHint,
}

/// The start of a key, kept in an error for context.
pub(crate) fn key_prefix(bytes: &[u8]) -> Vec<u8> {
    bytes[..bytes.len().min(crate::error::ERROR_KEY_PREFIX_BYTES)].to_vec()
}

impl CommitCtx<'_> {
    /// The hinted chain of `key`, if this txn's reads left one.
    pub(crate) fn hint(&self, key: &StoredKey) -> Option<&ChainHint> {
        let (table, bytes) = (key.table(), key.bytes());
        self.hints.iter().find(|h| h.table == table && h.key == bytes).map(|h| h.chain)
    }

    pub(crate) fn conflict(&self, key: &StoredKey, committed_ts: Option<u64>) -> MvccError {
        MvccError::Conflict {
            txn: self.txn,
            read_ts: self.read_ts,
            table: key.table(),
            key_prefix: key_prefix(key.bytes()),
            committed_ts: committed_ts.map(Timestamp),
        }
    }

    /// `op` applied to `value` (`None`: absent or deleted), the newest committed value of `key`.
    pub(crate) fn merged(
        &self,
        key: &StoredKey,
        op: MergeOp,
        value: Option<&[u8]>,
    ) -> Result<Bytes, MvccError> {
        op.apply(value).map_err(|reason| MvccError::Merge {
            txn: self.txn,
            table: key.table(),
            key_prefix: key_prefix(key.bytes()),
            reason,
        })
    }

    /// `op` applied to the base's row of `key` (a key with no version in the chains: the base
    /// holds its newest committed value, as a read at `read_ts` finds it).
    pub(crate) fn merged_into_base(
        &self,
        key: &StoredKey,
        op: MergeOp,
    ) -> Result<Bytes, MvccError> {
        let Some(base) = self.base else { return self.merged(key, op, None) };
        let mut out = None;
        base.get_with(key.table(), key.bytes(), self.read_ts, &mut |v| {
            out = Some(self.merged(key, op, v))
        })
        .map_err(|reason| MvccError::Base { reason })?;
        out.unwrap_or_else(|| {
            Err(MvccError::Base { reason: "the base returned no answer".to_string() })
        })
    }

    /// Serializable validation failed on `key`: another txn committed it at `committed_ts`,
    /// between this txn's snapshot and its timestamp `commit_ts`.
    pub(crate) fn serialization_failure(
        &self,
        key: &dyn KeyView,
        committed_ts: u64,
        commit_ts: Timestamp,
    ) -> MvccError {
        MvccError::SerializationFailure {
            txn: self.txn,
            read_ts: self.read_ts,
            commit_ts,
            table: key.table(),
            key_prefix: key_prefix(key.bytes()),
            committed_ts: Timestamp(committed_ts),
        }
    }
}

/// What the chains say about a key at a snapshot, copied out (tests compare it).
#[cfg(all(test, not(any(loom, shuttle))))]
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Lookup {
    /// A row: the visible version's value.
    Row(Vec<u8>),
    /// The visible version is a delete.
    Deleted,
    /// No version is visible (no chain, a sealed one, or only newer versions): the row is as
    /// the base holds it (none, without a base).
    Unknown,
}

#[cfg(all(test, not(any(loom, shuttle))))]
impl Lookup {
    fn of(seen: Visible<'_>) -> Self {
        match seen {
            Visible::Row(v) => Lookup::Row(v.to_vec()),
            Visible::Deleted => Lookup::Deleted,
            Visible::Unknown => Lookup::Unknown,
        }
    }
}

/// `Lookup` with the value borrowed from its version, for the duration of a `read_with` call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Visible<'a> {
    /// A row: the visible version's value.
    Row(&'a [u8]),
    /// The visible version is a delete.
    Deleted,
    /// No version is visible: the row is as the base holds it.
    Unknown,
}

/// A key a range batch examined and found a visible version of: its value, or `None` for a
/// visible delete (which hides the base's row).
pub(crate) type SeenKey = (Vec<u8>, Option<Vec<u8>>);

/// Which chains GC may seal and remove from the index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SealRule {
    /// No base: a chain whose newest version is a delete at or below the watermark (no snapshot
    /// can see a row there).
    Tombstones { watermark: u64 },
    /// A base checkpoint at `upto` is published and every live snapshot is at or above it: a
    /// chain whose newest version is at or below `upto` (a row or a delete) holds nothing the
    /// base does not (docs/design/storage.md, chain drop).
    Checkpointed { upto: u64 },
}

/// Result of a GC pass.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GcReport {
    /// The watermark used.
    pub watermark: Timestamp,
    /// Versions unlinked and handed to the reclaimer.
    pub versions_reclaimed: u64,
    /// Keys removed from the index (all-dead chains and dropped tables).
    pub keys_removed: u64,
}

/// A chain store. All methods may be called from any thread at once.
pub(crate) trait VersionStore: Send + Sync + fmt::Debug {
    fn kind(&self) -> StoreKind;

    /// What a snapshot at `read_ts` sees of `key` in the chains, copied out.
    #[cfg(all(test, not(any(loom, shuttle))))]
    fn read(&self, key: &dyn KeyView, read_ts: Timestamp) -> Lookup {
        let mut out = Lookup::Unknown;
        self.read_with(key, read_ts, &mut |seen| out = Lookup::of(seen));
        out
    }

    /// Calls `f` once with what a snapshot at `read_ts` sees of `key` in the chains, the value
    /// borrowed from its version (valid for the call only). Returns a hint to the key's chain
    /// if it has one and the store takes hints (the lock-free store; `lockfree.rs`, "Chain
    /// hints and the limbo"), for a commit of the same key by the same txn.
    fn read_with(
        &self,
        key: &dyn KeyView,
        read_ts: Timestamp,
        f: &mut dyn FnMut(Visible<'_>),
    ) -> Option<ChainHint>;

    /// Appends to `out` the keys of `range` a snapshot at `read_ts` sees a version of (rows and
    /// deletes), in key order (`reverse`: descending), stopping once it appended `max_rows` or
    /// examined `RANGE_BATCH_KEYS_MAX` keys. Returns the last key examined if it stopped early
    /// (the next batch starts past it), `None` once the range is exhausted.
    fn range_batch(
        &self,
        range: &KeyRange,
        reverse: bool,
        read_ts: Timestamp,
        max_rows: usize,
        out: &mut VecDeque<SeenKey>,
    ) -> Option<Vec<u8>>;

    /// Whether commits validate a serializable read set (the lock-free store does).
    fn supports_serializable(&self) -> bool;

    /// Validates and publishes `writes` (sorted by key, no duplicates) atomically (first committer wins), returning the commit
    /// timestamp. On conflict none of the writes ever becomes visible.
    fn commit(&self, ctx: &CommitCtx<'_>, writes: Writes) -> Result<Timestamp, MvccError>;

    /// Reclaims versions no snapshot at or above `watermark` can see, removes the keys `seal`
    /// allows and the keys of `dropped` tables. `clock` is read after the removals (the
    /// lock-free store's limbo, `lockfree.rs`).
    fn collect(
        &self,
        watermark: Timestamp,
        dropped: &[TableId],
        seal: SealRule,
        clock: &Clock,
    ) -> GcReport;

    /// Calls `f`, in key order, on every key whose newest committed version at or below `upto`
    /// is above `since`, with that version's value (`None`: a delete). What a base checkpoint
    /// at `upto` over one at `since` must apply. Waits, as a read at `upto` does, for writers
    /// publishing a timestamp that may be at or below it.
    fn changes(&self, since: u64, upto: u64, f: &mut dyn FnMut(&StoredKey, Option<&[u8]>));

    /// Keys in the index (live or not yet collected).
    fn key_count(&self) -> usize;
}
