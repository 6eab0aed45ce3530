//! `Txn` (read-write) and `Snapshot` (read-only): owned, `Send` handles over an MVCC txn.
//!
//! A txn sees the database as of its snapshot (taken at `begin`) plus its own writes, which are
//! buffered until `commit`. `commit` consumes the txn, so a txn that failed can never report
//! success later; dropping an uncommitted txn rolls it back (also during a panic's unwinding).
//! No epoch guard or lock is held between calls: a long-lived txn holds back GC only through its
//! snapshot timestamp, never by pinning the reclaimer.
//!
//! A `Txn` *is* a snapshot plus writes: it derefs to `Snapshot` for every read (`get`, `contains`,
//! `scan`, `id`, `read_ts`), which therefore sees the txn's own writes.

use crate::db::Table;
use crate::durable::{log_error, Durable};
use crate::error::{Error, Result};
use crate::sync::Arc;
use std::fmt;
use std::ops::Deref;
use strata_mvcc::{TableId, Timestamp, TxnId};
use strata_wal::{
    commit_write_bytes, CommitBuilder, Durability, RecordKind, RECORD_PAYLOAD_BYTES_MAX,
};

/// A read-only snapshot. Never conflicts, never blocks anyone.
pub struct Snapshot {
    inner: strata_mvcc::Txn,
}

impl fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Snapshot").field("inner", &self.inner).finish()
    }
}

impl Snapshot {
    pub(crate) fn new(inner: strata_mvcc::Txn) -> Self {
        Snapshot { inner }
    }

    /// The txn id (appears in errors).
    pub fn id(&self) -> TxnId {
        self.inner.id()
    }

    /// The snapshot timestamp: exactly the commits at or below it are visible.
    pub fn read_ts(&self) -> Timestamp {
        self.inner.read_ts()
    }

    /// The value of `key` (for a `Txn`: seeing its own writes).
    pub fn get(&self, table: &Table, key: impl AsRef<[u8]>) -> Result<Option<Vec<u8>>> {
        table.check_live()?;
        self.inner.check_open()?;
        Ok(self.inner.get(table.id, key.as_ref()))
    }

    /// Whether `key` has a value in this view.
    pub fn contains(&self, table: &Table, key: impl AsRef<[u8]>) -> Result<bool> {
        self.get(table, key).map(|v| v.is_some())
    }

    /// All rows of `table` in key order, as this view sees them (own writes merged in).
    pub fn scan(&self, table: &Table) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        table.check_live()?;
        self.inner.check_open()?;
        Ok(self.inner.scan(table.id))
    }

    /// Ends the snapshot (same as dropping it).
    pub fn close(self) {}
}

/// A read-write transaction. Reads come from its `Snapshot` (it derefs to one).
pub struct Txn {
    view: Snapshot,
    /// The log, for a database opened from a directory.
    durable: Option<Arc<Durable>>,
    durability: Durability,
}

impl fmt::Debug for Txn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Txn").field("inner", &self.view.inner).finish()
    }
}

impl Deref for Txn {
    type Target = Snapshot;
    fn deref(&self) -> &Snapshot {
        &self.view
    }
}

impl Txn {
    pub(crate) fn new(
        inner: strata_mvcc::Txn,
        durable: Option<Arc<Durable>>,
        durability: Durability,
    ) -> Self {
        Txn { view: Snapshot { inner }, durable, durability }
    }

    /// What `commit` waits for (default: the database's `Options::durability`). No effect in
    /// an in-memory database.
    pub fn set_durability(&mut self, durability: Durability) {
        self.durability = durability;
    }

    /// The durability `commit` will wait for.
    pub fn durability(&self) -> Durability {
        self.durability
    }

    /// Sets `key` to `value` (insert or overwrite).
    pub fn put(
        &mut self,
        table: &Table,
        key: impl AsRef<[u8]>,
        value: impl AsRef<[u8]>,
    ) -> Result<()> {
        self.write(table, key.as_ref(), Some(value.as_ref()))
    }

    /// Inserts `key`; fails with `KeyExists` if it has a value in this txn's view. (A concurrent
    /// insert of the same key by another txn is caught at commit as a conflict.)
    pub fn insert(
        &mut self,
        table: &Table,
        key: impl AsRef<[u8]>,
        value: impl AsRef<[u8]>,
    ) -> Result<()> {
        let key = key.as_ref();
        if self.get(table, key)?.is_some() {
            return Err(Error::KeyExists {
                table: table.name().to_string(),
                key_prefix: key[..key.len().min(strata_mvcc::error::ERROR_KEY_PREFIX_BYTES)]
                    .to_vec(),
            });
        }
        self.write(table, key, Some(value.as_ref()))
    }

    /// Deletes `key`. Returns whether it had a value in this txn's view.
    pub fn delete(&mut self, table: &Table, key: impl AsRef<[u8]>) -> Result<bool> {
        let key = key.as_ref();
        let existed = self.get(table, key)?.is_some();
        self.write(table, key, None)?;
        Ok(existed)
    }

    /// Commits. On success every write became visible at one instant, at the returned
    /// timestamp (for a txn that wrote nothing: its snapshot). On `Error::Conflict` none did.
    ///
    /// In a database opened from a directory, a commit that wrote something is acknowledged
    /// only once its log record (and every earlier commit's) is as durable as
    /// `Txn::durability` asks. If the log cannot take it (`Error::Io`), the commit may be
    /// visible in memory but is not durable, and the database refuses every later write: it is
    /// read-only until reopened.
    pub fn commit(self) -> Result<Timestamp> {
        let Txn { view, durable, durability } = self;
        let inner = view.inner;
        // A table dropped since `begin` fails the commit (`TableDropped`) inside the core.
        let Some(d) = durable.filter(|_| inner.write_count() > 0) else {
            return Ok(inner.commit()?);
        };
        let _in_flight = d.gate.read();
        if let Some(reason) = d.log.failure() {
            return Err(Error::Io { message: format!("the database is read-only: {reason}") });
        }
        let bytes = inner.writes().map(|(_, k, v)| commit_write_bytes(k, v)).sum();
        let mut record = CommitBuilder::with_capacity(bytes);
        for (table, key, value) in inner.writes() {
            record.push(table.0, key, value);
        }
        if record.payload_len() > RECORD_PAYLOAD_BYTES_MAX {
            return Err(Error::TxnTooLarge {
                bytes: record.payload_len(),
                max: RECORD_PAYLOAD_BYTES_MAX,
            });
        }
        let ts = inner.commit()?;
        let record = record.finish(RecordKind::Commit, ts.0).map_err(|e| {
            // Unreachable after the size check; still, never acknowledge an unlogged commit.
            d.log.fail(format!("encoding commit {ts}: {e}"));
            Error::Io { message: e.to_string() }
        })?;
        d.log.append(ts.0, &record).map_err(log_error)?;
        d.log.wait(ts.0, durability).map_err(log_error)?;
        Ok(ts)
    }

    /// Discards every write and ends the snapshot.
    pub fn rollback(self) {
        self.view.inner.rollback();
    }

    fn write(&mut self, table: &Table, key: &[u8], value: Option<&[u8]>) -> Result<()> {
        table.check_live()?;
        self.write_raw(table.id, key, value)
    }

    /// A write by table id (the catalog's system table).
    pub(crate) fn write_raw(
        &mut self,
        table: TableId,
        key: &[u8],
        value: Option<&[u8]>,
    ) -> Result<()> {
        Ok(self.view.inner.write(table, key, value)?)
    }
}
