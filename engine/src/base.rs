//! The base under the chains: `strata-store`'s B+tree file, as the MVCC core reads it
//! (`strata_mvcc::BaseReader`), and the checkpoints written into it.
//!
//! Keys in the file are the table id (u32, big-endian, so tables sort by id) followed by the
//! row's key. The published checkpoints readers may need are kept in `roots`, oldest first: a
//! read at `read_ts` uses the newest one at or below it; one is let go once the next is at or
//! below the GC watermark (every live snapshot then reads a newer one), and only then can the
//! store reuse the pages it alone reaches.

use crate::error::{Error, Result};
use crate::sync::{Arc, RwLock};
use std::ops::{Bound, ControlFlow};
use strata_mvcc::{BaseReader, KeyRange, Row, RowVisitor, TableId, Timestamp};
use strata_store::{Base, Snapshot, StoreError};
use strata_wal::Storage;

/// The base file's name in a database directory.
pub const BASE_FILE: &str = "base.strata";

pub(crate) fn store_error(e: StoreError) -> Error {
    match e {
        StoreError::Io { .. } | StoreError::Stopped(_) => Error::Io { message: e.to_string() },
        _ => Error::Corrupt { message: e.to_string() },
    }
}

pub(crate) fn base_key(table: TableId, key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(4 + key.len());
    k.extend_from_slice(&table.0.to_be_bytes());
    k.extend_from_slice(key);
    k
}

/// The base file and the checkpoints of it that readers may use.
#[derive(Debug)]
pub(crate) struct StoreBase {
    base: Base,
    roots: RwLock<Vec<Snapshot>>,
}

impl StoreBase {
    /// Opens the base file, or creates an empty one (`create`).
    pub(crate) fn open(storage: &dyn Storage, create: bool) -> Result<StoreBase> {
        let base = if create {
            Base::create(storage, BASE_FILE, 0)
        } else {
            Base::open(storage, BASE_FILE)
        }
        .map_err(store_error)?;
        let roots = RwLock::new(vec![base.snapshot()]);
        Ok(StoreBase { base, roots })
    }

    /// Whether a database directory has a base file.
    pub(crate) fn exists(storage: &dyn Storage) -> Result<bool> {
        let names = storage.list().map_err(|e| Error::Io { message: e.to_string() })?;
        Ok(names.iter().any(|n| n == BASE_FILE))
    }

    /// The newest checkpoint.
    pub(crate) fn newest(&self) -> Snapshot {
        self.base.snapshot()
    }

    /// Writes a checkpoint at `ts` of `changes` (keys made by `base_key`, in order), stores
    /// `log_seq` with it, and publishes it to readers. Returns the rows in the base after it
    /// and the bytes written.
    pub(crate) fn checkpoint(
        &self,
        ts: Timestamp,
        log_seq: u64,
        changes: &[strata_store::Change],
    ) -> Result<Written> {
        let report = self.base.checkpoint(ts.0, log_seq, changes).map_err(store_error)?;
        self.roots.write().push(self.base.snapshot());
        Ok(Written {
            rows: report.rows,
            bytes: report.pages_written * strata_store::page::PAGE_BYTES as u64,
            synced: report.synced,
        })
    }

    /// Lets go of checkpoints no live snapshot can use: every one whose successor is at or
    /// below `watermark`.
    pub(crate) fn prune(&self, watermark: Timestamp) {
        let mut roots = self.roots.write();
        let keep_from = roots.iter().rposition(|r| r.ts() <= watermark.0).unwrap_or(0);
        roots.drain(..keep_from);
    }

    /// The keys (in the base's encoding, `base_key`) of every row the newest checkpoint holds
    /// for `table` (a dropped table, whose rows the next checkpoint deletes).
    pub(crate) fn rows_of(&self, table: TableId) -> Result<Vec<Vec<u8>>> {
        let snap = self.base.snapshot();
        let lo = base_key(table, &[]);
        let hi = table.0.checked_add(1).map(|t| base_key(TableId(t), &[]));
        let hi = hi.as_deref().map_or(Bound::Unbounded, Bound::Excluded);
        snap.range(Bound::Included(&lo[..]), hi)
            .map(|r| r.map(|(k, _)| k.to_vec()).map_err(store_error))
            .collect()
    }

    fn with_root<T>(
        &self,
        read_ts: Timestamp,
        f: impl FnOnce(&Snapshot) -> std::result::Result<T, StoreError>,
    ) -> std::result::Result<T, String> {
        let roots = self.roots.read();
        let root = newest_at_or_below(&roots, read_ts)
            .ok_or_else(|| format!("no base checkpoint at or below {read_ts} is kept"))?;
        f(root).map_err(|e| e.to_string())
    }
}

/// What one checkpoint wrote into the base file.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Written {
    /// Rows in the base after it.
    pub(crate) rows: u64,
    pub(crate) bytes: u64,
    /// When the file's syncs began and ended.
    pub(crate) synced: Option<(std::time::Instant, std::time::Instant)>,
}

impl StoreBase {
    /// Runs `f` over the base's walk of `range` (`reverse`: descending) in the checkpoint a
    /// read at `read_ts` uses.
    fn with_rows<T>(
        &self,
        range: &KeyRange,
        reverse: bool,
        read_ts: Timestamp,
        f: impl FnOnce(strata_store::Range<'_>) -> std::result::Result<T, StoreError>,
    ) -> std::result::Result<T, String> {
        let (lo, hi) = base_bounds(range);
        self.with_root(read_ts, |root| {
            let (lo, hi) = (lo.as_ref().map(Vec::as_slice), hi.as_ref().map(Vec::as_slice));
            f(if reverse { root.range_rev(lo, hi) } else { root.range(lo, hi) })
        })
    }
}

impl BaseReader for StoreBase {
    fn get(
        &self,
        table: TableId,
        key: &[u8],
        read_ts: Timestamp,
    ) -> std::result::Result<Option<Vec<u8>>, String> {
        let k = base_key(table, key);
        self.with_root(read_ts, |root| Ok(root.get(&k)?.map(|v| v.into_owned())))
    }

    fn get_with(
        &self,
        table: TableId,
        key: &[u8],
        read_ts: Timestamp,
        f: &mut dyn FnMut(Option<&[u8]>),
    ) -> std::result::Result<(), String> {
        let k = base_key(table, key);
        self.with_root(read_ts, |root| {
            f(root.get(&k)?.as_deref());
            Ok(())
        })
    }

    fn range(
        &self,
        range: &KeyRange,
        reverse: bool,
        read_ts: Timestamp,
        max_rows: usize,
        out: &mut Vec<Row>,
    ) -> std::result::Result<(), String> {
        self.with_rows(range, reverse, read_ts, |rows| {
            for row in rows.take(max_rows) {
                let (mut k, v) = row?;
                k.drain(..4);
                out.push((k, v));
            }
            Ok(())
        })
    }

    fn visit(
        &self,
        range: &KeyRange,
        reverse: bool,
        read_ts: Timestamp,
        f: &mut RowVisitor<'_>,
    ) -> std::result::Result<ControlFlow<()>, String> {
        self.with_rows(range, reverse, read_ts, |mut rows| {
            rows.for_each_borrowed(|k, v| f(&k[4..], v))
        })
    }

    fn checkpoint_at_or_below(&self, ts: Timestamp) -> Timestamp {
        Timestamp(newest_at_or_below(&self.roots.read(), ts).map_or(0, Snapshot::ts))
    }
}

/// The bounds of `range` as keys of the base file (an unbounded end closed at the table's edge).
fn base_bounds(range: &KeyRange) -> (Bound<Vec<u8>>, Bound<Vec<u8>>) {
    let table = range.table();
    let lo = match range.lo() {
        Bound::Included(k) => Bound::Included(base_key(table, k)),
        Bound::Excluded(k) => Bound::Excluded(base_key(table, k)),
        Bound::Unbounded => Bound::Included(base_key(table, &[])),
    };
    let hi = match range.hi() {
        Bound::Included(k) => Bound::Included(base_key(table, k)),
        Bound::Excluded(k) => Bound::Excluded(base_key(table, k)),
        Bound::Unbounded => match table.0.checked_add(1) {
            Some(next) => Bound::Excluded(base_key(TableId(next), &[])),
            None => Bound::Unbounded,
        },
    };
    (lo, hi)
}

/// The newest of `roots` (oldest first) at or below `ts`: the checkpoint a read at `ts` uses.
fn newest_at_or_below(roots: &[Snapshot], ts: Timestamp) -> Option<&Snapshot> {
    roots.iter().rev().find(|r| r.ts() <= ts.0)
}

/// Keeps `Arc<StoreBase>` usable as the core's `Arc<dyn BaseReader>`.
pub(crate) fn reader(base: &Arc<StoreBase>) -> Arc<dyn BaseReader> {
    base.clone()
}
