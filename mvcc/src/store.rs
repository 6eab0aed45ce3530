//! The version-store trait: where chains live and how a commit is validated and published.
//!
//! Two implementations share the clock, snapshot registry, txn buffering and GC scheduling
//! (`Mvcc`/`Txn` in `lib.rs`/`txn.rs`) and differ only in the chain representation:
//! - `lockfree::LockFreeStore`: lock-free chains in a sharded `DashMap` (Strata);
//! - `baseline::BaselineStore`: SQLRite's shape, `Mutex<HashMap<Key,
//!   Arc<RwLock<Vec<Version>>>>>`, with the same visibility and conflict rules, kept for
//!   side-by-side benchmarks and as a second implementation for the model-based tests.

use crate::clock::{Clock, Timestamp};
use crate::error::MvccError;
use crate::key::{KeyView, StoredKey, TableId};
use crate::state::TxnId;
use crate::stats::Stats;
use crate::writeset::Write;
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
}

impl CommitCtx<'_> {
    pub(crate) fn conflict(&self, key: &StoredKey, committed_ts: Option<u64>) -> MvccError {
        let bytes = key.bytes();
        MvccError::Conflict {
            txn: self.txn,
            read_ts: self.read_ts,
            table: key.table(),
            key_prefix: bytes[..bytes.len().min(crate::error::ERROR_KEY_PREFIX_BYTES)].to_vec(),
            committed_ts: committed_ts.map(Timestamp),
        }
    }
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

    /// The payload a snapshot at `read_ts` sees for `key` (`None`: no row).
    fn read(&self, key: &dyn KeyView, read_ts: Timestamp) -> Option<Vec<u8>>;

    /// Every row of `table` a snapshot at `read_ts` sees, in no particular order.
    fn scan(&self, table: TableId, read_ts: Timestamp, out: &mut Vec<(Vec<u8>, Vec<u8>)>);

    /// Validates and publishes `writes` (sorted by key, no duplicates) atomically (first committer wins), returning the commit
    /// timestamp. On conflict none of the writes ever becomes visible.
    fn commit(&self, ctx: &CommitCtx<'_>, writes: Vec<Write>) -> Result<Timestamp, MvccError>;

    /// Reclaims versions no snapshot at or above `watermark` can see, removes all-dead keys and
    /// the keys of `dropped` tables.
    fn collect(&self, watermark: Timestamp, dropped: &[TableId]) -> GcReport;

    /// Keys in the index (live or not yet collected).
    fn key_count(&self) -> usize;
}
