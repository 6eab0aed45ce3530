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
use std::ops::{Bound, ControlFlow, Deref, RangeBounds};
use strata_mvcc::merge::MERGE_OP_BYTES;
use strata_mvcc::{
    Isolation, KeyRange, MergeOp, MvccError, Row, TableId, Timestamp, TxnId, WriteOp,
};
use strata_wal::{
    commit_merge_bytes, commit_write_bytes, CommitBuilder, Durability, RecordKind,
    RECORD_PAYLOAD_BYTES_MAX,
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
        Ok(self.inner.get(table.id, key.as_ref())?)
    }

    /// Calls `f` with the value of `key` (for a `Txn`: seeing its own writes), borrowed for the
    /// call: nothing is copied or allocated, which makes it the cheapest point read. `f` runs
    /// while the read holds its reclamation pin, so keep it short (decode, compare, add); use
    /// `get` to keep the value.
    ///
    /// ```
    /// # let db = strata::Database::in_memory();
    /// # let t = db.create_table("t")?;
    /// db.transaction(|txn| txn.put(&t, "visits", 41u64.to_le_bytes()))?;
    /// let n = db.begin_read()?.get_with(&t, "visits", |v| {
    ///     v.and_then(|v| v.try_into().ok()).map(u64::from_le_bytes)
    /// })?;
    /// assert_eq!(n, Some(41));
    /// # Ok::<(), strata::Error>(())
    /// ```
    pub fn get_with<R>(
        &self,
        table: &Table,
        key: impl AsRef<[u8]>,
        f: impl FnOnce(Option<&[u8]>) -> R,
    ) -> Result<R> {
        table.check_live()?;
        self.inner.check_open()?;
        Ok(self.inner.get_with(table.id, key.as_ref(), f)?)
    }

    /// Whether `key` has a value in this view.
    pub fn contains(&self, table: &Table, key: impl AsRef<[u8]>) -> Result<bool> {
        self.get_with(table, key, |v| v.is_some())
    }

    /// The isolation level (a read-only snapshot is serializable by construction: it is
    /// placed at its snapshot timestamp).
    pub fn isolation(&self) -> Isolation {
        self.inner.isolation()
    }

    /// All rows of `table` in key order, as this view sees them (own writes merged in).
    pub fn scan(&self, table: &Table) -> Result<Vec<Row>> {
        table.check_live()?;
        self.inner.check_open()?;
        Ok(self.inner.scan(table.id)?)
    }

    /// The rows whose keys lie in `bounds`, in key order, as this view sees them (for a `Txn`:
    /// its writes so far merged in). The iterator is owned and `Send`, holds no lock, and keeps
    /// its snapshot alive even past the end of the txn. For a serializable txn, the whole
    /// requested range is validated at commit, not just the rows it returned.
    ///
    /// ```
    /// # let db = strata::Database::in_memory();
    /// # let t = db.create_table("t")?;
    /// # db.transaction(|txn| { for k in ["a", "b", "c", "d"] { txn.put(&t, k, k)?; } Ok(()) })?;
    /// let snap = db.begin_read()?;
    /// let keys: Vec<_> = snap.range(&t, "b".."d")?.map(|row| row.map(|(k, _)| k)).collect::<Result<_, _>>()?;
    /// assert_eq!(keys, [b"b".to_vec(), b"c".to_vec()]);
    /// # Ok::<(), strata::Error>(())
    /// ```
    pub fn range<K: AsRef<[u8]>>(
        &self,
        table: &Table,
        bounds: impl RangeBounds<K>,
    ) -> Result<RangeIter> {
        self.range_iter(table, key_range(table.id, &bounds), false)
    }

    /// `range`, in descending key order.
    pub fn range_rev<K: AsRef<[u8]>>(
        &self,
        table: &Table,
        bounds: impl RangeBounds<K>,
    ) -> Result<RangeIter> {
        self.range_iter(table, key_range(table.id, &bounds), true)
    }

    /// The rows whose keys start with `prefix`, in key order (see `range`).
    pub fn prefix(&self, table: &Table, prefix: impl AsRef<[u8]>) -> Result<RangeIter> {
        self.range_iter(table, KeyRange::prefix(table.id, prefix.as_ref()), false)
    }

    /// Calls `f` with each row whose key lies in `bounds`, in key order, as this view sees
    /// them (for a `Txn`: its writes so far merged in), until the range ends or `f` returns
    /// `ControlFlow::Break`. Key and value are borrowed for the call: rows that live in the
    /// base file are handed over from its pages without being copied, so this is the fastest
    /// way to scan (an aggregate, an export). For a serializable txn the whole requested
    /// range is validated at commit, however early `f` stops.
    ///
    /// ```
    /// # use std::ops::ControlFlow;
    /// # let db = strata::Database::in_memory();
    /// # let t = db.create_table("t")?;
    /// # db.transaction(|txn| { for (k, v) in [("a", 1u8), ("b", 2), ("c", 3)] { txn.put(&t, k, [v])?; } Ok(()) })?;
    /// let snap = db.begin_read()?;
    /// let mut sum = 0u64;
    /// snap.range_with(&t, "b".., |_key, value| {
    ///     sum += u64::from(value[0]);
    ///     ControlFlow::Continue(())
    /// })?;
    /// assert_eq!(sum, 5);
    /// # Ok::<(), strata::Error>(())
    /// ```
    pub fn range_with<K: AsRef<[u8]>>(
        &self,
        table: &Table,
        bounds: impl RangeBounds<K>,
        f: impl FnMut(&[u8], &[u8]) -> ControlFlow<()>,
    ) -> Result<()> {
        self.visit(table, key_range(table.id, &bounds), false, f)
    }

    /// `range_with`, in descending key order.
    pub fn range_rev_with<K: AsRef<[u8]>>(
        &self,
        table: &Table,
        bounds: impl RangeBounds<K>,
        f: impl FnMut(&[u8], &[u8]) -> ControlFlow<()>,
    ) -> Result<()> {
        self.visit(table, key_range(table.id, &bounds), true, f)
    }

    fn visit(
        &self,
        table: &Table,
        range: KeyRange,
        reverse: bool,
        f: impl FnMut(&[u8], &[u8]) -> ControlFlow<()>,
    ) -> Result<()> {
        table.check_live()?;
        self.inner.check_open()?;
        Ok(self.inner.range_with(range, reverse, f)?)
    }

    fn range_iter(&self, table: &Table, range: KeyRange, reverse: bool) -> Result<RangeIter> {
        table.check_live()?;
        self.inner.check_open()?;
        Ok(RangeIter(self.inner.range(range, reverse)))
    }

    /// Ends the snapshot (same as dropping it).
    pub fn close(self) {}
}

/// An owned iterator over the rows of a range in one view (`Snapshot::range`): each item is a
/// row, or `Error::Corrupt` if a page of the base file it needed does not verify (after which
/// it ends). `Send`; holds no lock between calls.
#[derive(Debug)]
pub struct RangeIter(strata_mvcc::RangeIter);

impl Iterator for RangeIter {
    type Item = Result<Row>;

    fn next(&mut self) -> Option<Result<Row>> {
        self.0.next().map(|r| r.map_err(Error::from))
    }
}

fn as_bytes<K: AsRef<[u8]>>(b: Bound<&K>) -> Bound<&[u8]> {
    match b {
        Bound::Included(k) => Bound::Included(k.as_ref()),
        Bound::Excluded(k) => Bound::Excluded(k.as_ref()),
        Bound::Unbounded => Bound::Unbounded,
    }
}

fn key_range<K: AsRef<[u8]>>(table: TableId, bounds: &impl RangeBounds<K>) -> KeyRange {
    KeyRange::new(table, as_bytes(bounds.start_bound()), as_bytes(bounds.end_bound()))
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
        if self.contains(table, key)? {
            return Err(Error::KeyExists {
                table: table.name().to_string(),
                key_prefix: key[..key.len().min(strata_mvcc::error::ERROR_KEY_PREFIX_BYTES)]
                    .to_vec(),
            });
        }
        self.write(table, key, Some(value.as_ref()))
    }

    /// Makes `commit` fail with a retryable error (`SerializationFailure` on the lock-free
    /// store, `Conflict` on the baseline) if another txn commits a change to `key` after this
    /// txn's snapshot: the serializable read check for one key, at any isolation level. For a
    /// key this txn's writes depend on without writing it — the SQL layer guards each table's
    /// schema row, so a row never lands in a table dropped or re-created after the txn began.
    pub fn validate_at_commit(&mut self, table: &Table, key: impl AsRef<[u8]>) -> Result<()> {
        table.check_live()?;
        self.view.inner.validate_at_commit(table.id, key.as_ref());
        Ok(())
    }

    /// Deletes `key`. Returns whether it had a value in this txn's view.
    pub fn delete(&mut self, table: &Table, key: impl AsRef<[u8]>) -> Result<bool> {
        let key = key.as_ref();
        let existed = self.contains(table, key)?;
        self.write(table, key, None)?;
        Ok(existed)
    }

    /// Commits. On success every write became visible at one instant, at the returned
    /// timestamp (for a txn that wrote nothing: its snapshot). On `Error::Conflict` none did.
    ///
    /// In a database opened from a directory, a commit that wrote something is acknowledged
    /// only once its log record (and every earlier commit's) is as durable as
    /// `Txn::durability` asks. If the log cannot take it (`Error::Io`), the commit is not
    /// durable, and the database stops: every later read and write fails with `Error::Io` until
    /// it is reopened (so the failed commit, visible in memory until the failure, is read by
    /// nobody after it; see docs/design/wal.md, "A failed write or sync"). A panic inside a
    /// durable commit stops the database the same way (its timestamp may be taken and never
    /// logged, and every later commit would wait behind it).
    pub fn commit(self) -> Result<Timestamp> {
        let Txn { view, durable, durability } = self;
        let inner = view.inner;
        // A table dropped since `begin` fails the commit (`TableDropped`) inside the core.
        let Some(d) = durable.filter(|_| inner.write_count() > 0) else {
            return inner.commit().map_err(Error::from);
        };
        // (A serializable commit that fails validation used up a timestamp: it is logged
        // below as an empty commit, since replay needs every timestamp.)
        let _in_flight = d.gate.read();
        if let Some(reason) = d.log.failure() {
            return Err(MvccError::Stopped { reason }.into());
        }
        // Timestamps are dense in the log: a commit that took one and panicked before logging
        // it would leave a hole every later commit's acknowledgement waits behind, forever.
        // So a panic from here on stops the database, as a failed log write does.
        let _stop_on_panic = StopOnPanic::new(&d.log);
        let bytes = inner
            .writes()
            .map(|(_, k, op)| match op {
                WriteOp::Put(v) => commit_write_bytes(k, Some(v)),
                WriteOp::Delete => commit_write_bytes(k, None),
                WriteOp::Merge(_) => commit_merge_bytes(k, &[0; MERGE_OP_BYTES]),
            })
            .sum();
        let mut record = CommitBuilder::with_capacity(bytes);
        for (table, key, op) in inner.writes() {
            match op {
                WriteOp::Put(v) => record.push(table.0, key, Some(v)),
                WriteOp::Delete => record.push(table.0, key, None),
                WriteOp::Merge(m) => record.push_merge(table.0, key, &m.to_bytes()),
            }
        }
        if record.payload_len() > RECORD_PAYLOAD_BYTES_MAX {
            return Err(Error::TxnTooLarge {
                bytes: record.payload_len(),
                max: RECORD_PAYLOAD_BYTES_MAX,
            });
        }
        let ts = match inner.commit() {
            Ok(ts) => ts,
            Err(e @ MvccError::SerializationFailure { commit_ts, .. }) => {
                let empty = CommitBuilder::with_capacity(0)
                    .finish_claiming(RecordKind::Commit, commit_ts.0, Some(d.log.durable_ts()))
                    .map_err(|e| Error::Io { message: e.to_string() })?;
                d.log.append(commit_ts.0, &empty).map_err(log_error)?;
                return Err(e.into());
            }
            Err(e) => return Err(e.into()),
        };
        #[cfg(test)]
        tests::panic_if_asked();
        // The record states what was durable before it (recovery tells damage from a crash by it).
        let claim = Some(d.log.durable_ts());
        let record = record.finish_claiming(RecordKind::Commit, ts.0, claim).map_err(|e| {
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

    /// Adds `delta` to the integer at `key` (8 bytes, little-endian; an absent key counts as
    /// 0) as a merge: `merge(table, key, MergeOp::Add(delta))`. Concurrent adds to one key all
    /// commit; `get` reads the total back (8 bytes, little-endian).
    pub fn add(&mut self, table: &Table, key: impl AsRef<[u8]>, delta: i64) -> Result<()> {
        self.merge(table, key, MergeOp::Add(delta))
    }

    /// Buffers a merge: at commit, `op` applies to the newest committed value of `key`, not to
    /// this txn's snapshot, so txns that merge into one key concurrently all commit (in some
    /// order), while a merge still conflicts with a concurrent put or delete of the key (first
    /// committer wins). A serializable txn is not validated for it (it reads nothing). Reads
    /// in this txn see the merge applied to the snapshot's value. A value the operator does
    /// not take (an `Add` on a value that is not 8 bytes, an overflow) fails with
    /// `ErrorKind::InvalidInput`, at commit if it is met there; nothing of the txn is then
    /// visible. See `strata_mvcc::Txn::merge` for a merge over this txn's own writes.
    pub fn merge(&mut self, table: &Table, key: impl AsRef<[u8]>, op: MergeOp) -> Result<()> {
        self.touch(table)?;
        Ok(self.view.inner.merge(table.id, key.as_ref(), op)?)
    }

    /// `merge` into a key this txn has just read only to find its row; a serializable txn then
    /// does not validate that read. Every put or delete of the key committed after the
    /// snapshot — the only changes that would alter whether the row is there — conflicts with
    /// the merge, so the read needs no check of its own. Only the txn's last point read is
    /// waived, and only if it was of `key`: read another key in between and nothing is waived.
    /// Earlier reads of the key, and scanned ranges that cover it, stay validated. Use `merge`
    /// if anything the txn does depends on the value it read. (The SQL layer runs a
    /// serializable `UPDATE t SET n = n + ? WHERE id = ?` this way;
    /// `strata_mvcc::Txn::merge_found` has the exact rule.)
    pub fn merge_found(&mut self, table: &Table, key: impl AsRef<[u8]>, op: MergeOp) -> Result<()> {
        self.touch(table)?;
        Ok(self.view.inner.merge_found(table.id, key.as_ref(), op)?)
    }

    fn write(&mut self, table: &Table, key: &[u8], value: Option<&[u8]>) -> Result<()> {
        self.touch(table)?;
        self.write_raw(table.id, key, value)
    }

    /// Checks `table` is live. (Its name for errors at commit comes from the core's labels,
    /// `Mvcc::label_table`: a txn holds no name of its own.)
    fn touch(&mut self, table: &Table) -> Result<()> {
        table.check_live()
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

/// Stops the database (`Log::fail`) when dropped by a panic that began after it was made: see
/// `Txn::commit`. (A commit run by a destructor while an earlier panic unwinds is not one.)
struct StopOnPanic<'a> {
    log: &'a strata_wal::Log,
    already: bool,
}

impl<'a> StopOnPanic<'a> {
    fn new(log: &'a strata_wal::Log) -> Self {
        StopOnPanic { log, already: std::thread::panicking() }
    }
}

impl Drop for StopOnPanic<'_> {
    fn drop(&mut self) {
        if !self.already && std::thread::panicking() {
            self.log.fail(
                "a commit panicked before it was acknowledged; reopen the database (that \
                 commit may be lost; every acknowledged one is kept)"
                    .to_string(),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::{Database, Error, Options};
    use std::cell::Cell;
    use std::panic::{catch_unwind, AssertUnwindSafe};
    use std::time::{Duration, Instant};

    thread_local! {
        static PANIC_AFTER_COMMIT: Cell<bool> = const { Cell::new(false) };
    }

    /// The fault this module's test injects: a panic between the in-memory commit (its
    /// timestamp taken) and its log record.
    pub(super) fn panic_if_asked() {
        if PANIC_AFTER_COMMIT.with(Cell::take) {
            panic!("injected: a commit panicked after taking its timestamp");
        }
    }

    /// A commit that panics after taking its timestamp and before logging it stops the
    /// database; the next commit fails at once instead of waiting forever for the missing
    /// timestamp, and a reopen recovers everything acknowledged.
    #[test]
    fn a_commit_that_panics_before_its_record_stops_the_database() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("db");
        let db = Database::open(&dir, Options::default()).expect("open");
        let t = db.create_table("t").expect("table");
        db.transaction(|txn| txn.put(&t, b"kept", b"1")).expect("a first commit");
        let mut txn = db.begin().expect("begin");
        txn.put(&t, b"lost", b"2").expect("put");
        PANIC_AFTER_COMMIT.with(|p| p.set(true));
        assert!(catch_unwind(AssertUnwindSafe(|| txn.commit())).is_err(), "the fault fired");
        let (db2, t2) = (db.clone(), t.clone());
        let next = std::thread::spawn(move || db2.transaction(|txn| txn.put(&t2, b"after", b"3")));
        let deadline = Instant::now() + Duration::from_secs(30);
        while !next.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert!(next.is_finished(), "the next commit hung behind the missing timestamp");
        let after = next.join().expect("no panic");
        assert!(matches!(after, Err(Error::Io { .. })), "{after:?}");
        drop(db);
        let db = Database::open(&dir, Options::default()).expect("reopen");
        let t = db.open_table("t").expect("the table survived");
        let snap = db.begin_read().expect("snapshot");
        assert_eq!(snap.get(&t, b"kept").expect("get").as_deref(), Some(&b"1"[..]));
        assert_eq!(snap.get(&t, b"lost").expect("get"), None, "never logged, never acknowledged");
        assert_eq!(snap.get(&t, b"after").expect("get"), None);
    }

    /// A commit made by a destructor while an unrelated panic unwinds is not a panicking
    /// commit: the database keeps running.
    #[test]
    fn a_commit_during_an_earlier_panic_does_not_stop_the_database() {
        struct CommitOnDrop(Option<crate::Txn>);
        impl Drop for CommitOnDrop {
            fn drop(&mut self) {
                let txn = self.0.take().expect("a txn");
                txn.commit().expect("the commit itself succeeds");
            }
        }
        let tmp = tempfile::tempdir().expect("tempdir");
        let db = Database::open(tmp.path().join("db"), Options::default()).expect("open");
        let t = db.create_table("t").expect("table");
        let mut txn = db.begin().expect("begin");
        txn.put(&t, b"k", b"1").expect("put");
        let unwound = catch_unwind(AssertUnwindSafe(|| {
            let _commits = CommitOnDrop(Some(txn));
            panic!("an unrelated panic");
        }));
        assert!(unwound.is_err());
        db.transaction(|txn| txn.put(&t, b"next", b"2")).expect("the database still runs");
        let snap = db.begin_read().expect("snapshot");
        assert_eq!(snap.get(&t, b"k").expect("get").as_deref(), Some(&b"1"[..]));
    }
}
