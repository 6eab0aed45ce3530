//! Transactions: a snapshot (`read_ts` + registry slot) and a buffer of writes.
//!
//! A `Txn` is owned and `Send`: it may move to another thread, but is used by one at a time
//! (`&mut self` for writes). It holds no epoch guard between calls — each call pins for its own
//! duration only (DESIGN §3.7); the snapshot is protected from GC by its registry slot.
//!
//! Writes are buffered (canonical key order) and reach the store only at `commit`, so an
//! uncommitted txn is invisible by construction and rollback is just dropping the buffer and the
//! slot. `Drop` rolls back: a txn abandoned by an early return or a panic leaves the registry.

use crate::bytes::Bytes;
use crate::clock::Timestamp;
use crate::error::MvccError;
use crate::key::{KeyView, StoredKey, TableId};
use crate::registry::SlotRef;
use crate::state::TxnId;
use crate::stats::bump;
use crate::store::CommitCtx;
use crate::sync::Arc;
use crate::writeset::WriteSet;
use crate::Core;
use std::fmt;

/// Longest key accepted, in bytes.
pub const KEY_BYTES_MAX: usize = 64 * 1024;
/// Largest value accepted, in bytes.
pub const VALUE_BYTES_MAX: usize = 64 * 1024 * 1024;
/// Most distinct keys one txn may write.
pub const TXN_WRITES_MAX: usize = 1 << 24;

/// Whether a txn may write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TxnMode {
    /// Reads and writes.
    ReadWrite,
    /// A read-only snapshot; writes fail with `MvccError::ReadOnly`.
    ReadOnly,
}

/// An MVCC transaction.
pub struct Txn {
    core: Arc<Core>,
    slot: Option<SlotRef>,
    id: TxnId,
    read_ts: Timestamp,
    mode: TxnMode,
    writes: WriteSet,
    /// `Core::table_drops` at begin: if it moved by commit, check the written tables.
    drops_at_begin: u64,
}

impl fmt::Debug for Txn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Txn")
            .field("id", &self.id)
            .field("read_ts", &self.read_ts)
            .field("mode", &self.mode)
            .field("writes", &self.writes.len())
            .finish()
    }
}

impl Txn {
    pub(crate) fn new(
        core: Arc<Core>,
        slot: SlotRef,
        read_ts: Timestamp,
        id: TxnId,
        mode: TxnMode,
    ) -> Self {
        let drops_at_begin = core.table_drops();
        Txn {
            core,
            slot: Some(slot),
            id,
            read_ts,
            mode,
            writes: WriteSet::default(),
            drops_at_begin,
        }
    }

    /// This txn's id.
    pub fn id(&self) -> TxnId {
        self.id
    }

    /// The snapshot: this txn sees exactly the commits at or below it, plus its own writes.
    pub fn read_ts(&self) -> Timestamp {
        self.read_ts
    }

    /// Read-only or read-write.
    pub fn mode(&self) -> TxnMode {
        self.mode
    }

    /// Number of distinct keys written so far.
    pub fn write_count(&self) -> usize {
        self.writes.len()
    }

    /// Fails with `Closed` once the database is closed.
    pub fn check_open(&self) -> Result<(), MvccError> {
        self.core.check_open()
    }

    /// The buffered writes in key order: `(table, key, value or None for a delete)`. The
    /// engine encodes them into its log record before `commit`.
    pub fn writes(&self) -> impl Iterator<Item = (TableId, &[u8], Option<&[u8]>)> + '_ {
        self.writes.iter().map(|(k, v)| (k.table(), k.bytes(), v.as_deref()))
    }

    /// The value of `key` in this txn's view (own writes first, then the snapshot).
    pub fn get(&self, table: TableId, key: &[u8]) -> Option<Vec<u8>> {
        let probe: (TableId, &[u8]) = (table, key);
        let view: &dyn KeyView = &probe;
        if !self.writes.is_empty() {
            if let Some(own) = self.writes.get(view) {
                return own.as_ref().map(|b| b.to_vec());
            }
        }
        self.core.store.read(view, self.read_ts)
    }

    /// Buffers a write (`None` deletes).
    pub fn write(
        &mut self,
        table: TableId,
        key: &[u8],
        value: Option<&[u8]>,
    ) -> Result<(), MvccError> {
        if self.mode == TxnMode::ReadOnly {
            return Err(MvccError::ReadOnly { txn: self.id });
        }
        self.core.check_open()?;
        if key.len() > KEY_BYTES_MAX {
            return Err(MvccError::KeyTooLarge { len: key.len(), max: KEY_BYTES_MAX });
        }
        if let Some(v) = value {
            if v.len() > VALUE_BYTES_MAX {
                return Err(MvccError::ValueTooLarge { len: v.len(), max: VALUE_BYTES_MAX });
            }
        }
        let probe: (TableId, &[u8]) = (table, key);
        let view: &dyn KeyView = &probe;
        if self.writes.len() >= TXN_WRITES_MAX && self.writes.get(view).is_none() {
            return Err(MvccError::TxnTooLarge { txn: self.id, max: TXN_WRITES_MAX });
        }
        self.writes.put(view, value.map(Bytes::new));
        Ok(())
    }

    /// Every row of `table` in this txn's view, in key order (own writes merged in).
    pub fn scan(&self, table: TableId) -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut rows = Vec::new();
        self.core.store.scan(table, self.read_ts, &mut rows);
        rows.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let own: Vec<(&StoredKey, &Option<Bytes>)> =
            self.writes.iter().filter(|(k, _)| k.table() == table).collect();
        if own.is_empty() {
            return rows;
        }
        // Merge two sorted sequences; own writes win over the snapshot.
        let mut merged = Vec::with_capacity(rows.len() + own.len());
        let mut snap = rows.into_iter().peekable();
        for (k, v) in own {
            while let Some((sk, _)) = snap.peek() {
                if sk.as_slice() < k.bytes() {
                    merged.extend(snap.next());
                } else {
                    break;
                }
            }
            if matches!(snap.peek(), Some((sk, _)) if sk.as_slice() == k.bytes()) {
                snap.next();
            }
            if let Some(v) = v {
                merged.push((k.bytes().to_vec(), v.to_vec()));
            }
        }
        merged.extend(snap);
        merged
    }

    /// Commits: validates first-committer-wins and publishes every write at one instant.
    /// Returns the commit timestamp (for a txn that wrote nothing, its snapshot timestamp).
    /// On a conflict nothing this txn wrote ever becomes visible.
    pub fn commit(mut self) -> Result<Timestamp, MvccError> {
        let core = self.core.clone();
        let stats = core.stats.local();
        if let Err(e) = core.check_open() {
            self.abandon();
            return Err(e);
        }
        if self.writes.is_empty() {
            self.end();
            bump(&stats.commits, 1);
            return Ok(self.read_ts);
        }
        let writes = std::mem::take(&mut self.writes).into_sorted_vec();
        if core.table_drops() != self.drops_at_begin {
            if let Some(table) = writes.iter().map(|(k, _)| k.table()).find(|t| core.is_dropped(*t))
            {
                self.end();
                bump(&stats.rollbacks, 1);
                return Err(MvccError::TableDropped { txn: self.id, table });
            }
        }
        let ctx = CommitCtx {
            clock: &core.clock,
            txn: self.id,
            read_ts: self.read_ts,
            watermark: core.cached_watermark(),
            stats: &core.stats,
        };
        let tombstones = writes.iter().filter(|(_, v)| v.is_none()).count() as u64;
        let result = core.store.commit(&ctx, writes);
        // The snapshot is no longer needed once our versions are published or unlinked.
        self.end();
        match result {
            Ok(ts) => {
                bump(&stats.commits, 1);
                if tombstones > 0 {
                    bump(&stats.tombstones_installed, tombstones);
                }
                core.after_commit(ts);
                Ok(ts)
            }
            Err(e) => {
                bump(&stats.conflicts, 1);
                Err(e)
            }
        }
    }

    /// Discards the txn's writes and ends its snapshot.
    pub fn rollback(mut self) {
        self.abandon();
    }

    fn abandon(&mut self) {
        if self.slot.is_some() {
            if self.mode == TxnMode::ReadWrite {
                bump(&self.core.stats.local().rollbacks, 1);
            }
            self.writes.clear();
            self.end();
        }
    }

    fn end(&mut self) {
        if let Some(slot) = self.slot.take() {
            self.core.registry.release(slot);
        }
    }
}

impl Drop for Txn {
    fn drop(&mut self) {
        self.abandon();
    }
}
