//! Transactions: a snapshot (`read_ts` + registry slot) and a buffer of writes.
//!
//! A `Txn` is owned and `Send`: it may move to another thread, but is used by one at a time
//! (`&mut self` for writes). It holds no epoch guard between calls — each call pins for its own
//! duration only (INVARIANTS §3.7); the snapshot is protected from GC by its registry slot.
//!
//! Writes are buffered (canonical key order) and reach the store only at `commit`, so an
//! uncommitted txn is invisible by construction and rollback is just dropping the buffer and the
//! slot. `Drop` rolls back: a txn abandoned by an early return or a panic leaves the registry.
//!
//! Isolation ([`Isolation`]): snapshot isolation by default; a `Serializable` read-write txn also
//! records what it reads (point keys and requested ranges) and has them validated at commit
//! (docs/design/isolation.md). Range iterators ([`RangeIter`]) share the txn's registry slot, so
//! they may outlive it.

use crate::bytes::Bytes;
use crate::clock::Timestamp;
use crate::error::MvccError;
use crate::index::ChainHint;
use crate::key::{KeyView, TableId};
use crate::merge::{MergeError, MergeOp};
use crate::range::{KeyRange, RangeIter, ReadSet, Row, SnapshotPin};
use crate::registry::SlotRef;
use crate::state::TxnId;
use crate::stats::bump;
use crate::store::{CommitCtx, Hint, Visible};
use crate::sync::{Arc, Mutex};
use crate::writeset::{Op, WriteOp, WriteSet};
use crate::{Core, CoreLease};
use std::fmt;
use std::ops::ControlFlow;

/// Longest key accepted, in bytes.
pub const KEY_BYTES_MAX: usize = 64 * 1024;
/// Largest value accepted, in bytes.
pub const VALUE_BYTES_MAX: usize = 64 * 1024 * 1024;
/// Most distinct keys one txn may write.
pub const TXN_WRITES_MAX: usize = 1 << 24;
/// Longest key whose chain a read-write txn's point read keeps for its commit (`LastRead`).
pub(crate) const HINT_KEY_BYTES_MAX: usize = crate::bytes::INLINE_BYTES_MAX;

/// Whether a txn may write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TxnMode {
    /// Reads and writes.
    ReadWrite,
    /// A read-only snapshot; writes fail with `MvccError::ReadOnly`.
    ReadOnly,
}

/// How strongly a txn is isolated from concurrent ones.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Hash)]
pub enum Isolation {
    /// Snapshot isolation: reads see the snapshot, writes are checked first-committer-wins.
    /// Write skew (G2-item) and phantom-based skew can commit.
    #[default]
    Snapshot,
    /// Serializable: snapshot isolation plus validation at commit that nothing the txn read —
    /// no point key and no key inside a range it asked for — was changed by a txn that committed
    /// between its snapshot and its commit. A read-only txn (or one that wrote nothing) never
    /// fails: it is serialized at its snapshot.
    Serializable,
}

impl Isolation {
    /// `"snapshot"` or `"serializable"`.
    pub fn name(self) -> &'static str {
        match self {
            Isolation::Snapshot => "snapshot",
            Isolation::Serializable => "serializable",
        }
    }
}

/// The key and chain of a read-write txn's last point read (`Txn::keep_hint`).
struct LastRead {
    table: TableId,
    len: u8,
    key: [u8; HINT_KEY_BYTES_MAX],
    chain: Option<ChainHint>,
}

impl Default for LastRead {
    fn default() -> Self {
        LastRead { table: TableId(0), len: 0, key: [0; HINT_KEY_BYTES_MAX], chain: None }
    }
}

/// Who holds the txn's registry slot: the txn alone, or the txn and its range iterators.
enum Pin {
    Own(SlotRef),
    Shared(Arc<SnapshotPin>),
    Released,
}

/// An MVCC transaction.
pub struct Txn {
    /// Boxed: the body is a few hundred bytes, and a `Txn` moves several times between begin
    /// and commit (out of `begin`, into the engine's handle, into `commit`); each move of the
    /// body was a call of the C library's `memcpy` (ADR 0017).
    b: Box<Body>,
}

/// A txn's state (`Txn`).
struct Body {
    core: CoreLease,
    /// Locked only to share the slot with a new range iterator (`&self`); `end` uses `get_mut`.
    pin: Mutex<Pin>,
    id: TxnId,
    read_ts: Timestamp,
    mode: TxnMode,
    isolation: Isolation,
    /// What a serializable read-write txn read (locked per read: reads take `&self`). Boxed:
    /// a snapshot-isolation txn (the common case) carries one pointer, not the set, through
    /// every move of the `Txn`.
    reads: Option<Box<Mutex<ReadSet>>>,
    /// Keys validated at commit at any isolation level (`validate_at_commit`).
    guards: Vec<(TableId, Bytes)>,
    /// The chain this read-write txn's last point read found (`lockfree.rs`, "Chain hints and
    /// the limbo"): a commit that writes that key installs on it without looking the key up
    /// again. Locked per read (reads take `&self`); never contended in practice.
    last_read: Mutex<LastRead>,
    writes: WriteSet,
    /// `Core::table_drops` at begin: if it moved by commit, check the written tables.
    drops_at_begin: u64,
}

impl fmt::Debug for Txn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Txn")
            .field("id", &self.b.id)
            .field("read_ts", &self.b.read_ts)
            .field("mode", &self.b.mode)
            .field("isolation", &self.b.isolation)
            .field("writes", &self.b.writes.len())
            .finish()
    }
}

impl Txn {
    pub(crate) fn new(
        core: CoreLease,
        slot: SlotRef,
        read_ts: Timestamp,
        id: TxnId,
        mode: TxnMode,
        isolation: Isolation,
    ) -> Self {
        let drops_at_begin = core.table_drops();
        let validates = isolation == Isolation::Serializable && mode == TxnMode::ReadWrite;
        Txn {
            b: Box::new(Body {
                core,
                pin: Mutex::new(Pin::Own(slot)),
                id,
                read_ts,
                mode,
                isolation,
                reads: validates.then(|| Box::new(Mutex::new(ReadSet::default()))),
                guards: Vec::new(),
                last_read: Mutex::new(LastRead::default()),
                writes: WriteSet::default(),
                drops_at_begin,
            }),
        }
    }

    /// This txn's id.
    pub fn id(&self) -> TxnId {
        self.b.id
    }

    /// The snapshot: this txn sees exactly the commits at or below it, plus its own writes.
    pub fn read_ts(&self) -> Timestamp {
        self.b.read_ts
    }

    /// Read-only or read-write.
    pub fn mode(&self) -> TxnMode {
        self.b.mode
    }

    /// Snapshot or serializable.
    pub fn isolation(&self) -> Isolation {
        self.b.isolation
    }

    /// Number of distinct keys written so far.
    pub fn write_count(&self) -> usize {
        self.b.writes.len()
    }

    /// Fails with `Closed` once the database is closed.
    pub fn check_open(&self) -> Result<(), MvccError> {
        self.b.core.check_open()
    }

    /// The buffered writes in key order. The engine encodes them into its log record before
    /// `commit` (a merge as its operator: replay applies it again, in commit order).
    pub fn writes(&self) -> impl Iterator<Item = (TableId, &[u8], WriteOp<'_>)> + '_ {
        self.b.writes.iter().map(|(k, op)| {
            let op = match op {
                Op::Put(v) => WriteOp::Put(v.as_slice()),
                Op::Delete => WriteOp::Delete,
                Op::Merge(m) => WriteOp::Merge(*m),
            };
            (k.table(), k.bytes(), op)
        })
    }

    /// The value of `key` in this txn's view (own writes first, then the chains, then the
    /// base if the core has one). Fails only if the base cannot be read (`MvccError::Base`).
    pub fn get(&self, table: TableId, key: &[u8]) -> Result<Option<Vec<u8>>, MvccError> {
        self.get_with(table, key, |v| v.map(<[u8]>::to_vec))
    }

    /// Calls `f` with the value of `key` in this txn's view, borrowed: no copy and no
    /// allocation (`get` copies it out). `f` runs while the read holds its epoch pin (and on
    /// the baseline store after the chain's lock is released), so keep it short: memory retired
    /// meanwhile waits for it. Fails only if the base cannot be read (`MvccError::Base`); `f`
    /// then is not called.
    pub fn get_with<R>(
        &self,
        table: TableId,
        key: &[u8],
        f: impl FnOnce(Option<&[u8]>) -> R,
    ) -> Result<R, MvccError> {
        let probe: (TableId, &[u8]) = (table, key);
        let view: &dyn KeyView = &probe;
        if !self.b.writes.is_empty() {
            match self.b.writes.get(view) {
                None => {}
                Some(Op::Put(v)) => return Ok(f(Some(v.as_slice()))),
                Some(Op::Delete) => return Ok(f(None)),
                Some(Op::Merge(m)) => {
                    let m = *m;
                    let merged =
                        self.snapshot_with(table, key, |v| self.merged(table, key, m, v))?;
                    return Ok(f(Some(merged?.as_slice())));
                }
            }
        }
        self.snapshot_with(table, key, f)
    }

    /// `op` applied to `value`, as this txn's own view of a key it merged into shows it.
    fn merged(
        &self,
        table: TableId,
        key: &[u8],
        op: MergeOp,
        value: Option<&[u8]>,
    ) -> Result<Bytes, MvccError> {
        op.apply(value).map_err(|reason| self.merge_error(table, key, reason))
    }

    fn merge_error(&self, table: TableId, key: &[u8], reason: MergeError) -> MvccError {
        MvccError::Merge {
            txn: self.b.id,
            table,
            key_prefix: crate::store::key_prefix(key),
            reason,
        }
    }

    /// `get_with` past the txn's own writes: the snapshot's value (chains, then base).
    fn snapshot_with<R>(
        &self,
        table: TableId,
        key: &[u8],
        f: impl FnOnce(Option<&[u8]>) -> R,
    ) -> Result<R, MvccError> {
        let probe: (TableId, &[u8]) = (table, key);
        let view: &dyn KeyView = &probe;
        if let Some(reads) = &self.b.reads {
            reads.lock().keys.push((table, Bytes::new(key)));
        }
        // `read_with` and `get_with` take `FnMut` (they are object-safe); each calls it once.
        let mut once = Some(f);
        let mut out = None;
        let mut unknown = false;
        let hint = self.b.core.store.read_with(view, self.b.read_ts, &mut |seen| match seen {
            Visible::Row(v) => out = once.take().map(|f| f(Some(v))),
            Visible::Deleted => out = once.take().map(|f| f(None)),
            Visible::Unknown => unknown = true,
        });
        if let Some(hint) = hint {
            self.keep_hint(table, key, hint);
        }
        if unknown {
            match &self.b.core.base {
                None => out = once.take().map(|f| f(None)),
                Some(base) => base
                    .get_with(table, key, self.b.read_ts, &mut |v| out = once.take().map(|f| f(v)))
                    .map_err(|reason| MvccError::Base { reason })?,
            }
        }
        out.ok_or_else(|| MvccError::Base { reason: "the base returned no answer".to_string() })
    }

    /// Keeps the chain a point read found, for a commit that writes the key (read-write txns,
    /// keys up to `HINT_KEY_BYTES_MAX`).
    fn keep_hint(&self, table: TableId, key: &[u8], hint: ChainHint) {
        if self.b.mode != TxnMode::ReadWrite || key.len() > HINT_KEY_BYTES_MAX {
            return;
        }
        let mut last = self.b.last_read.lock();
        last.table = table;
        last.len = key.len() as u8;
        last.key[..key.len()].copy_from_slice(key);
        last.chain = Some(hint);
    }

    /// Makes the commit fail with a retryable `SerializationFailure` if another txn commits a
    /// change to `key` after this txn's snapshot — the serializable read check for one key, at
    /// any isolation level. For a key whose value this txn's writes depend on without writing
    /// it (the SQL layer guards each table's schema row, so rows never land in a table dropped
    /// or re-created after the txn began). A read-only txn ignores it (it commits nothing).
    pub fn validate_at_commit(&mut self, table: TableId, key: &[u8]) {
        if self.b.mode == TxnMode::ReadWrite
            && !self.b.guards.iter().any(|(t, k)| *t == table && k.as_slice() == key)
        {
            self.b.guards.push((table, Bytes::new(key)));
        }
    }

    /// Buffers a write (`None` deletes).
    pub fn write(
        &mut self,
        table: TableId,
        key: &[u8],
        value: Option<&[u8]>,
    ) -> Result<(), MvccError> {
        self.check_write(table, key)?;
        if let Some(v) = value {
            if v.len() > VALUE_BYTES_MAX {
                return Err(MvccError::ValueTooLarge { len: v.len(), max: VALUE_BYTES_MAX });
            }
        }
        self.b.writes.put(&(table, key), Op::of(value));
        Ok(())
    }

    /// Buffers a merge (`merge.rs`): at commit, `op` is applied to the newest committed value
    /// of `key` — not to this txn's snapshot — so concurrent merges into one key all commit,
    /// in some order, while a merge still conflicts (first committer wins) with a concurrent
    /// put or delete of the key. Records no read: a serializable txn is not validated for it.
    ///
    /// Over this txn's own put or delete of `key`, the merge is applied at once (the key is
    /// then a plain write). Over its own merge, the two combine into one when they can (same
    /// operator and field); otherwise the key becomes a put of the value this txn sees, which
    /// conflicts as a put does. Fails with `MvccError::Merge` if it is applied now and the
    /// value does not take it (or two deltas overflow combined); a merge that meets such a
    /// value at commit fails the commit with that error, and nothing of the txn is visible.
    pub fn merge(&mut self, table: TableId, key: &[u8], op: MergeOp) -> Result<(), MvccError> {
        self.check_write(table, key)?;
        let probe: (TableId, &[u8]) = (table, key);
        let write = match self.b.writes.get(&probe) {
            None => Op::Merge(op),
            Some(Op::Put(v)) => Op::Put(self.merged(table, key, op, Some(v.as_slice()))?),
            Some(Op::Delete) => Op::Put(self.merged(table, key, op, None)?),
            Some(Op::Merge(prev)) => match prev.then(op) {
                Some(Ok(both)) => Op::Merge(both),
                Some(Err(reason)) => return Err(self.merge_error(table, key, reason)),
                None => {
                    let seen = self.get(table, key)?;
                    Op::Put(self.merged(table, key, op, seen.as_deref())?)
                }
            },
        };
        self.b.writes.put(&probe, write);
        Ok(())
    }

    /// `merge`, into a key this txn has just read to find its row, and that read is not
    /// validated at commit (serializable): the caller read the key only for what a merge
    /// relies on — that the row is there, and where its field is — and every put or delete of
    /// the key committed after the snapshot, the only changes that alter those, conflicts with
    /// the merge (first committer wins). What is waived is this txn's last point read, and only
    /// if it was of `key` and came from the snapshot (not from this txn's own put or delete of
    /// it). A txn that read another key after it, or never read `key`, waives nothing, so a caller
    /// who gets the order wrong keeps a validated read instead of losing one; earlier reads and
    /// scanned ranges that cover the key stay validated too. A txn that used the value it read
    /// for anything else must call `merge` instead. This is
    /// how a serializable SQL increment by key runs as a merge (ADR 0017, decision 7;
    /// docs/design/isolation.md, "Merges, and a read waived for one").
    pub fn merge_found(
        &mut self,
        table: TableId,
        key: &[u8],
        op: MergeOp,
    ) -> Result<(), MvccError> {
        let probe: (TableId, &[u8]) = (table, key);
        let from_snapshot = matches!(self.b.writes.get(&probe), None | Some(Op::Merge(_)));
        self.merge(table, key, op)?;
        if from_snapshot {
            if let Some(reads) = &mut self.b.reads {
                let keys = &mut reads.get_mut().keys;
                if keys.last().is_some_and(|(t, k)| *t == table && k.as_slice() == key) {
                    keys.pop();
                }
            }
        }
        Ok(())
    }

    /// What every buffered write checks: a read-write txn, an open database, the key's size
    /// and the txn's write limit.
    fn check_write(&self, table: TableId, key: &[u8]) -> Result<(), MvccError> {
        if self.b.mode == TxnMode::ReadOnly {
            return Err(MvccError::ReadOnly { txn: self.b.id });
        }
        self.b.core.check_open()?;
        if key.len() > KEY_BYTES_MAX {
            return Err(MvccError::KeyTooLarge { len: key.len(), max: KEY_BYTES_MAX });
        }
        let probe: (TableId, &[u8]) = (table, key);
        if self.b.writes.len() >= TXN_WRITES_MAX && self.b.writes.get(&probe).is_none() {
            return Err(MvccError::TxnTooLarge { txn: self.b.id, max: TXN_WRITES_MAX });
        }
        Ok(())
    }

    /// Every row of `table` in this txn's view, in key order (own writes merged in).
    pub fn scan(&self, table: TableId) -> Result<Vec<Row>, MvccError> {
        self.scan_range(KeyRange::all(table), false)
    }

    /// The rows of `range` in this txn's view, in key order (`reverse`: descending), own writes
    /// merged in; collected now. For a serializable txn the whole requested range is validated
    /// at commit.
    pub fn scan_range(&self, range: KeyRange, reverse: bool) -> Result<Vec<Row>, MvccError> {
        // The txn's own slot protects the snapshot for the duration of this call.
        self.iter_with(None, range, reverse).collect()
    }

    /// An owned iterator over `range` in this txn's view (`reverse`: descending), with the txn's
    /// writes so far merged in. It shares the txn's snapshot slot, so it stays valid (and keeps
    /// its snapshot from GC) after the txn commits or is dropped; writes the txn makes after
    /// creating it are not seen. For a serializable txn the whole requested range is validated
    /// at commit, however far the iterator is consumed.
    pub fn range(&self, range: KeyRange, reverse: bool) -> RangeIter {
        let pin = {
            let mut held = self.b.pin.lock();
            match &*held {
                Pin::Shared(p) => p.clone(),
                Pin::Own(_) => {
                    let Pin::Own(slot) = std::mem::replace(&mut *held, Pin::Released) else {
                        unreachable!("matched above")
                    };
                    let shared = Arc::new(SnapshotPin::new(self.b.core.clone(), Some(slot)));
                    *held = Pin::Shared(shared.clone());
                    shared
                }
                // A txn that ended cannot be reached through `&self` (commit and rollback
                // consume it); pin nothing rather than panic.
                Pin::Released => Arc::new(SnapshotPin::new(self.b.core.clone(), None)),
            }
        };
        self.iter_with(Some(pin), range, reverse)
    }

    /// Hands `f` each row of `range` in this txn's view (`reverse`: descending), with the
    /// txn's writes so far merged in, until the range ends or `f` breaks. The key and value
    /// are borrowed: the base's rows are not copied (`RangeIter` copies every row). The txn's
    /// own slot protects the snapshot for the duration of the call. For a serializable txn the
    /// whole requested range is validated at commit, however early `f` breaks.
    pub fn range_with(
        &self,
        range: KeyRange,
        reverse: bool,
        mut f: impl FnMut(&[u8], &[u8]) -> ControlFlow<()>,
    ) -> Result<(), MvccError> {
        let own = self.own_writes_in(&range)?;
        crate::range::visit(&self.b.core, self.b.read_ts, range, reverse, own, &mut f)
    }

    /// Records `range` in a serializable read set; returns the txn's writes inside it (in key
    /// order, `None`: a delete), a merge as the value this txn sees. Fails if a merge does not
    /// apply to the snapshot's value, or the base cannot be read for it.
    #[allow(clippy::type_complexity)]
    fn own_writes_in(
        &self,
        range: &KeyRange,
    ) -> Result<Vec<(Vec<u8>, Option<Vec<u8>>)>, MvccError> {
        if let Some(reads) = &self.b.reads {
            reads.lock().ranges.push(range.clone());
        }
        self.b
            .writes
            .iter()
            .filter(|(k, _)| k.table() == range.table() && range.contains(k.bytes()))
            .map(|(k, op)| {
                let value = match op {
                    Op::Put(v) => Some(v.to_vec()),
                    Op::Delete => None,
                    Op::Merge(_) => self.get(k.table(), k.bytes())?,
                };
                Ok((k.bytes().to_vec(), value))
            })
            .collect()
    }

    fn iter_with(
        &self,
        pin: Option<Arc<SnapshotPin>>,
        range: KeyRange,
        reverse: bool,
    ) -> RangeIter {
        let own = self.own_writes_in(&range);
        let pin = pin.unwrap_or_else(|| Arc::new(SnapshotPin::new(self.b.core.clone(), None)));
        match own {
            Ok(own) => RangeIter::new(pin, self.b.read_ts, range, reverse, own),
            Err(e) => RangeIter::failed(pin, self.b.read_ts, e),
        }
    }

    /// Commits: validates first-committer-wins and publishes every write at one instant.
    /// Returns the commit timestamp (for a txn that wrote nothing, its snapshot timestamp).
    /// On a conflict nothing this txn wrote ever becomes visible.
    pub fn commit(mut self) -> Result<Timestamp, MvccError> {
        // Borrowed, not cloned: a clone and its drop would be two more writes to the lease's
        // count. `self` lives to the end of this call, and the fields used beside `core` below
        // are disjoint from it.
        let core: &Core = &self.b.core;
        let stats = core.stats.local();
        if let Err(e) = core.check_open() {
            abandon(core, &mut self.b.pin, &mut self.b.writes, self.b.mode);
            return Err(e);
        }
        if self.b.writes.is_empty() {
            end(core, &mut self.b.pin);
            bump(&stats.commits, 1);
            return Ok(self.b.read_ts);
        }
        // Held until the commit has published or failed: `Mvcc::close` waits for it.
        let _admitted = match core.enter_commit() {
            Ok(ticket) => ticket,
            Err(e) => {
                abandon(core, &mut self.b.pin, &mut self.b.writes, self.b.mode);
                return Err(e);
            }
        };
        let writes = std::mem::take(&mut self.b.writes).into_sorted_vec();
        if core.table_drops() != self.b.drops_at_begin {
            if let Some(table) = writes.iter().map(|(k, _)| k.table()).find(|t| core.is_dropped(*t))
            {
                end(core, &mut self.b.pin);
                bump(&stats.rollbacks, 1);
                let label = core.table_label(table);
                return Err(MvccError::TableDropped { txn: self.b.id, table, label });
            }
        }
        let mut reads = self.b.reads.take().map(|r| r.into_inner());
        if !self.b.guards.is_empty() {
            reads.get_or_insert_with(ReadSet::default).keys.append(&mut self.b.guards);
        }
        if let Some(r) = &mut reads {
            r.compact();
        }
        // Used only inside the store's commit, which returns before `end` releases the slot
        // (the hints' contract: the txn stays registered while it uses them).
        let last = self.b.last_read.get_mut();
        let hint = last.chain.as_ref().map(|chain| Hint {
            table: last.table,
            key: &last.key[..usize::from(last.len)],
            chain,
        });
        let ctx = CommitCtx {
            clock: &core.clock,
            txn: self.b.id,
            read_ts: self.b.read_ts,
            watermark: core.cached_watermark(),
            stats: &core.stats,
            reads: reads.as_ref(),
            base: core.base.as_deref(),
            hints: hint.as_slice(),
        };
        let tombstones = writes.iter().filter(|(_, op)| *op == Op::Delete).count() as u64;
        let result = core.store.commit(&ctx, writes);
        // The snapshot is no longer needed once our versions are published or unlinked.
        end(core, &mut self.b.pin);
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
        abandon(&self.b.core, &mut self.b.pin, &mut self.b.writes, self.b.mode);
    }
}

/// Discards the writes and ends the snapshot, unless it has ended. (Free functions over the
/// fields they touch, so `Txn::commit` can call them while it borrows the core.)
fn abandon(core: &Core, pin: &mut Mutex<Pin>, writes: &mut WriteSet, mode: TxnMode) {
    if !matches!(pin.get_mut(), Pin::Released) {
        if mode == TxnMode::ReadWrite {
            bump(&core.stats.local().rollbacks, 1);
        }
        writes.clear();
        end(core, pin);
    }
}

/// Ends the snapshot: releases the registry slot, or this txn's share of it.
fn end(core: &Core, pin: &mut Mutex<Pin>) {
    match std::mem::replace(pin.get_mut(), Pin::Released) {
        Pin::Own(slot) => core.registry.release(slot),
        Pin::Shared(shared) => drop(shared), // the last iterator releases the slot
        Pin::Released => {}
    }
}

impl Drop for Txn {
    fn drop(&mut self) {
        self.abandon();
    }
}
