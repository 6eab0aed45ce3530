//! Ordered range scans and the serializable read set.
//!
//! - [`KeyRange`]: a table and two byte-string bounds (what a scan *requested*, which is what a
//!   serializable txn must validate — not just the keys it happened to see).
//! - `ReadSet`: the point reads and scanned ranges of a serializable txn, checked at commit.
//! - [`RangeIter`]: an owned, `Send` iterator over a txn's view of a range, forward or reverse,
//!   with the txn's own writes merged in. It holds a share of the txn's snapshot slot (so GC keeps
//!   what it needs even after the txn ends) and no epoch guard between calls: each refill pins for
//!   one batch (16 rows, doubling to `RANGE_BATCH_ROWS`) and re-seeks the key directory after the
//!   last key it examined.

use crate::bytes::Bytes;
use crate::clock::Timestamp;
use crate::error::MvccError;
use crate::key::TableId;
use crate::registry::SlotRef;
use crate::store::SeenKey;
use crate::sync::Arc;
use crate::{Core, CoreLease};
use std::collections::VecDeque;
use std::fmt;
use std::ops::{Bound, ControlFlow};

/// Rows fetched by a `RangeIter`'s first refill (one epoch pin and one directory seek each);
/// each later refill doubles it, up to `RANGE_BATCH_ROWS`. A short scan (`LIMIT 10`) then reads
/// little past what it uses, and a long one still amortizes the seek.
pub const RANGE_FIRST_BATCH_ROWS: usize = 16;
/// Most rows fetched per refill.
pub const RANGE_BATCH_ROWS: usize = 256;

/// Keys examined per refill at most, visible or not: a range full of deleted keys (not yet
/// collected) still returns control between batches.
pub(crate) const RANGE_BATCH_KEYS_MAX: usize = 8 * RANGE_BATCH_ROWS;

/// A range of keys of one table: `lo` to `hi` in byte order.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyRange {
    pub(crate) table: TableId,
    pub(crate) lo: Bound<Bytes>,
    pub(crate) hi: Bound<Bytes>,
}

impl fmt::Debug for KeyRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let show = |b: &Bound<Bytes>| match b {
            Bound::Included(k) => format!("={:02x?}", k.as_slice()),
            Bound::Excluded(k) => format!("{:02x?}", k.as_slice()),
            Bound::Unbounded => "..".to_string(),
        };
        write!(f, "{}[{} .. {}]", self.table, show(&self.lo), show(&self.hi))
    }
}

fn owned(b: Bound<&[u8]>) -> Bound<Bytes> {
    match b {
        Bound::Included(k) => Bound::Included(Bytes::new(k)),
        Bound::Excluded(k) => Bound::Excluded(Bytes::new(k)),
        Bound::Unbounded => Bound::Unbounded,
    }
}

impl KeyRange {
    /// Keys of `table` between `lo` and `hi`.
    pub fn new(table: TableId, lo: Bound<&[u8]>, hi: Bound<&[u8]>) -> Self {
        KeyRange { table, lo: owned(lo), hi: owned(hi) }
    }

    /// Every key of `table`.
    pub fn all(table: TableId) -> Self {
        KeyRange { table, lo: Bound::Unbounded, hi: Bound::Unbounded }
    }

    /// Every key of `table` that starts with `prefix`.
    pub fn prefix(table: TableId, prefix: &[u8]) -> Self {
        // The smallest key above every key with this prefix: drop trailing 0xff bytes and
        // increment the last one; an all-0xff prefix has no upper bound.
        let mut end = prefix.to_vec();
        while end.last() == Some(&0xff) {
            end.pop();
        }
        let hi = match end.last_mut() {
            Some(last) => {
                *last += 1;
                Bound::Excluded(Bytes::new(&end))
            }
            None => Bound::Unbounded,
        };
        KeyRange { table, lo: Bound::Included(Bytes::new(prefix)), hi }
    }

    /// The table.
    pub fn table(&self) -> TableId {
        self.table
    }

    /// Whether `key` lies inside the range.
    pub fn contains(&self, key: &[u8]) -> bool {
        let above = match &self.lo {
            Bound::Included(lo) => key >= lo.as_slice(),
            Bound::Excluded(lo) => key > lo.as_slice(),
            Bound::Unbounded => true,
        };
        let below = match &self.hi {
            Bound::Included(hi) => key <= hi.as_slice(),
            Bound::Excluded(hi) => key < hi.as_slice(),
            Bound::Unbounded => true,
        };
        above && below
    }

    /// Whether no key can lie inside the range (`lo` above `hi`, or equal and not both included).
    pub fn is_empty(&self) -> bool {
        match (&self.lo, &self.hi) {
            (_, Bound::Excluded(hi)) if hi.as_slice().is_empty() => true,
            (Bound::Included(lo), Bound::Included(hi)) => lo.as_slice() > hi.as_slice(),
            (Bound::Included(lo), Bound::Excluded(hi))
            | (Bound::Excluded(lo), Bound::Included(hi))
            | (Bound::Excluded(lo), Bound::Excluded(hi)) => lo.as_slice() >= hi.as_slice(),
            _ => false,
        }
    }

    /// The lower bound.
    pub fn lo(&self) -> Bound<&[u8]> {
        self.lo.as_ref().map(Bytes::as_slice)
    }

    /// The upper bound.
    pub fn hi(&self) -> Bound<&[u8]> {
        self.hi.as_ref().map(Bytes::as_slice)
    }

    /// The part of the range up to `key` in scan order, `key` included (forward: at or below
    /// it; reverse: at or above it).
    fn up_to(&self, key: &[u8], reverse: bool) -> KeyRange {
        let mut part = self.clone();
        if reverse {
            part.lo = Bound::Included(Bytes::new(key));
        } else {
            part.hi = Bound::Included(Bytes::new(key));
        }
        part
    }

    /// The part of the range past `key` in scan order (forward: above it; reverse: below it).
    fn past(&self, key: &[u8], reverse: bool) -> KeyRange {
        let mut rest = self.clone();
        if reverse {
            rest.hi = Bound::Excluded(Bytes::new(key));
        } else {
            rest.lo = Bound::Excluded(Bytes::new(key));
        }
        rest
    }
}

/// What a serializable txn read: point keys (present or not) and requested ranges.
#[derive(Debug, Default)]
pub(crate) struct ReadSet {
    pub(crate) keys: Vec<(TableId, Bytes)>,
    pub(crate) ranges: Vec<KeyRange>,
}

impl ReadSet {
    /// Sorts and drops duplicate point keys and keys already covered by a range.
    pub(crate) fn compact(&mut self) {
        self.keys.sort_unstable_by(|a, b| (a.0, a.1.as_slice()).cmp(&(b.0, b.1.as_slice())));
        self.keys.dedup_by(|a, b| a.0 == b.0 && a.1.as_slice() == b.1.as_slice());
        let ranges = &self.ranges;
        self.keys
            .retain(|(t, k)| !ranges.iter().any(|r| r.table == *t && r.contains(k.as_slice())));
    }
}

/// A registry slot shared by a txn and the iterators it created; released when the last of
/// them lets go, so a scan outliving its txn still keeps its snapshot from GC.
pub(crate) struct SnapshotPin {
    pub(crate) core: CoreLease,
    slot: Option<SlotRef>,
}

impl SnapshotPin {
    /// `slot: None` for a scan that runs inside one call of a txn that holds its own slot.
    pub(crate) fn new(core: CoreLease, slot: Option<SlotRef>) -> Self {
        SnapshotPin { core, slot }
    }
}

impl Drop for SnapshotPin {
    fn drop(&mut self) {
        if let Some(slot) = self.slot.take() {
            self.core.registry.release(slot);
        }
    }
}

/// One row a range scan yields: `(key, value)`.
pub type Row = (Vec<u8>, Vec<u8>);

/// A txn's own write inside a scanned range: `(key, value)`, `None` for a delete.
type OwnWrite = (Vec<u8>, Option<Vec<u8>>);

/// An owned iterator over one txn's view of a [`KeyRange`], in key order (or reverse), with the
/// txn's own writes (as of the iterator's creation) merged in. `Send`; holds no lock or epoch
/// guard between calls.
pub struct RangeIter {
    pin: Arc<SnapshotPin>,
    read_ts: Timestamp,
    /// What is still to be fetched from the store.
    rest: KeyRange,
    reverse: bool,
    /// Fetched snapshot rows, in scan order.
    buf: VecDeque<Row>,
    /// The store has nothing more in `rest`.
    exhausted: bool,
    /// Rows the next refill asks for.
    batch: usize,
    /// The txn's own writes inside the range, in scan order (`None`: deleted).
    own: std::iter::Peekable<std::vec::IntoIter<OwnWrite>>,
    /// An error to yield before anything else (the txn's own merge could not be applied).
    failed: Option<MvccError>,
}

impl fmt::Debug for RangeIter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RangeIter")
            .field("read_ts", &self.read_ts)
            .field("rest", &self.rest)
            .field("reverse", &self.reverse)
            .finish_non_exhaustive()
    }
}

impl RangeIter {
    pub(crate) fn new(
        pin: Arc<SnapshotPin>,
        read_ts: Timestamp,
        range: KeyRange,
        reverse: bool,
        mut own: Vec<OwnWrite>,
    ) -> Self {
        if reverse {
            own.reverse();
        }
        let exhausted = range.is_empty();
        RangeIter {
            pin,
            read_ts,
            rest: range,
            reverse,
            buf: VecDeque::new(),
            exhausted,
            batch: RANGE_FIRST_BATCH_ROWS,
            own: own.into_iter().peekable(),
            failed: None,
        }
    }

    /// An iterator that yields `error` and ends.
    pub(crate) fn failed(pin: Arc<SnapshotPin>, read_ts: Timestamp, error: MvccError) -> Self {
        let mut it = RangeIter::new(
            pin,
            read_ts,
            KeyRange::new(
                crate::key::TableId(0),
                std::ops::Bound::Unbounded,
                std::ops::Bound::Excluded(&[]),
            ),
            false,
            Vec::new(),
        );
        it.exhausted = true;
        it.failed = Some(error);
        it
    }

    /// The snapshot this iterator reads.
    pub fn read_ts(&self) -> Timestamp {
        self.read_ts
    }

    /// Fetches the next batch: the keys the chains have a visible version of, merged (with
    /// a base) with the base's rows of the same stretch of keys; a chain's version hides the
    /// base's row of its key, and a visible delete hides it altogether.
    fn refill(&mut self) -> Result<(), MvccError> {
        while self.buf.is_empty() && !self.exhausted {
            let core = &self.pin.core;
            let mut seen: VecDeque<SeenKey> = VecDeque::new();
            let mut last = core.store.range_batch(
                &self.rest,
                self.reverse,
                self.read_ts,
                self.batch,
                &mut seen,
            );
            let mut base_rows = Vec::new();
            if let Some(base) = &core.base {
                // The stretch the chains' batch covered: up to the last key it examined, or
                // the whole rest of the range.
                let covered = match &last {
                    Some(k) => self.rest.up_to(k, self.reverse),
                    None => self.rest.clone(),
                };
                base.range(&covered, self.reverse, self.read_ts, self.batch, &mut base_rows)
                    .map_err(|reason| MvccError::Base { reason })?;
                if base_rows.len() >= self.batch {
                    // The base may hold more in that stretch: end this batch at its last row.
                    let cut = base_rows[base_rows.len() - 1].0.clone();
                    let reverse = self.reverse;
                    seen.retain(|(k, _)| if reverse { *k >= cut } else { *k <= cut });
                    last = Some(cut);
                }
            }
            self.batch = (self.batch * 2).min(RANGE_BATCH_ROWS);
            let mut base_rows = base_rows.into_iter().peekable();
            for (key, value) in seen {
                while let Some((bk, _)) = base_rows.peek() {
                    let before = if self.reverse { *bk > key } else { *bk < key };
                    if !before {
                        break;
                    }
                    self.buf.extend(base_rows.next());
                }
                if base_rows.peek().is_some_and(|(bk, _)| *bk == key) {
                    base_rows.next(); // the chain's version replaces the base's row
                }
                if let Some(v) = value {
                    self.buf.push_back((key, v));
                }
            }
            self.buf.extend(base_rows);
            match last {
                Some(key) => self.rest = self.rest.past(&key, self.reverse),
                None => self.exhausted = true,
            }
        }
        Ok(())
    }
}

impl Iterator for RangeIter {
    /// A row, or why the base could not be read (after which the iterator ends).
    type Item = Result<Row, MvccError>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(e) = self.failed.take() {
            return Some(Err(e));
        }
        loop {
            if let Err(e) = self.refill() {
                self.exhausted = true;
                self.buf.clear();
                self.own = Vec::new().into_iter().peekable();
                return Some(Err(e));
            }
            let snap_first = match (self.buf.front(), self.own.peek()) {
                (None, None) => return None,
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (Some((sk, _)), Some((ok, _))) => {
                    if sk == ok {
                        self.buf.pop_front(); // our own write replaces the snapshot's row
                        false
                    } else {
                        (sk < ok) != self.reverse
                    }
                }
            };
            if snap_first {
                return self.buf.pop_front().map(Ok);
            }
            if let Some((k, Some(v))) = self.own.next() {
                return Some(Ok((k, v)));
            }
            // An own delete: nothing to yield for this key.
        }
    }
}

/// Hands `f` every row of `range` in a view at `read_ts` with the txn's own writes `own` (in
/// key order) over it, in scan order, borrowed, until the range ends or `f` breaks: the merge
/// `RangeIter` does, without copying the base's rows. Per stretch of keys one chain batch
/// covers, the chains' versions and the own writes in it (an own write replacing the chains'
/// version of its key) are collected, then the base's rows of that stretch are streamed past
/// them (a chain or own version hides the base's row of its key; a delete hides it altogether).
pub(crate) fn visit(
    core: &Core,
    read_ts: Timestamp,
    mut rest: KeyRange,
    reverse: bool,
    mut own: Vec<OwnWrite>,
    f: &mut crate::base::RowVisitor<'_>,
) -> Result<(), MvccError> {
    if reverse {
        own.reverse();
    }
    let mut own = own.into_iter().peekable();
    let before = |a: &[u8], b: &[u8]| if reverse { a > b } else { a < b };
    let mut batch = RANGE_FIRST_BATCH_ROWS;
    if rest.is_empty() {
        return Ok(());
    }
    loop {
        let mut seen: VecDeque<SeenKey> = VecDeque::new();
        let last = core.store.range_batch(&rest, reverse, read_ts, batch, &mut seen);
        batch = (batch * 2).min(RANGE_BATCH_ROWS);
        // Keys at or before `last` in scan order lie in this stretch.
        let in_stretch = |k: &[u8]| last.as_deref().is_none_or(|l| !before(l, k));
        let mut overlay: Vec<OwnWrite> = Vec::with_capacity(seen.len());
        let mut seen = seen.into_iter().peekable();
        loop {
            let own_next = own.peek().filter(|(k, _)| in_stretch(k));
            let take_seen = match (seen.peek(), own_next) {
                (None, None) => break,
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (Some((sk, _)), Some((ok, _))) => {
                    if sk == ok {
                        seen.next(); // the own write replaces the chains' version
                        false
                    } else {
                        before(sk, ok)
                    }
                }
            };
            overlay.extend(if take_seen { seen.next() } else { own.next() });
        }
        let mut overlay = overlay.into_iter().peekable();
        if let Some(base) = &core.base {
            let covered = match &last {
                Some(k) => rest.up_to(k, reverse),
                None => rest.clone(),
            };
            let flow = base
                .visit(&covered, reverse, read_ts, &mut |bk, bv| {
                    while let Some((k, v)) = overlay.next_if(|(k, _)| before(k, bk)) {
                        if let Some(v) = v {
                            f(&k, &v)?;
                        }
                    }
                    match overlay.next_if(|(k, _)| k.as_slice() == bk) {
                        Some((_, Some(v))) => f(bk, &v),
                        Some((_, None)) => ControlFlow::Continue(()),
                        None => f(bk, bv),
                    }
                })
                .map_err(|reason| MvccError::Base { reason })?;
            if flow.is_break() {
                return Ok(());
            }
        }
        for (k, v) in overlay {
            if let Some(v) = v {
                if f(&k, &v).is_break() {
                    return Ok(());
                }
            }
        }
        match last {
            Some(key) => rest = rest.past(&key, reverse),
            None => return Ok(()),
        }
    }
}

#[cfg(all(test, not(any(loom, shuttle))))]
mod tests {
    use super::*;

    #[test]
    fn prefix_bounds() {
        let t = TableId(1);
        let r = KeyRange::prefix(t, b"ab");
        assert!(r.contains(b"ab") && r.contains(b"ab\xff\xff") && r.contains(b"ab\x00"));
        assert!(!r.contains(b"ac") && !r.contains(b"aa\xff"));
        let r = KeyRange::prefix(t, b"a\xff");
        assert!(r.contains(b"a\xff\x01") && !r.contains(b"b"));
        assert_eq!(r.hi, Bound::Excluded(Bytes::new(b"b")));
        let r = KeyRange::prefix(t, b"\xff\xff");
        assert_eq!(r.hi, Bound::Unbounded);
        assert!(KeyRange::prefix(t, b"").contains(b"anything"));
    }

    #[test]
    fn emptiness() {
        let t = TableId(1);
        let r = |lo, hi| KeyRange::new(t, lo, hi);
        use Bound::*;
        assert!(r(Included(&b"b"[..]), Included(&b"a"[..])).is_empty());
        assert!(!r(Included(&b"a"[..]), Included(&b"a"[..])).is_empty());
        assert!(r(Included(&b"a"[..]), Excluded(&b"a"[..])).is_empty());
        assert!(r(Excluded(&b"a"[..]), Included(&b"a"[..])).is_empty());
        assert!(r(Unbounded, Excluded(&b""[..])).is_empty());
        assert!(!r(Unbounded, Unbounded).is_empty());
    }

    #[test]
    fn compact_drops_keys_covered_by_ranges() {
        let t = TableId(1);
        let mut rs = ReadSet::default();
        for k in [&b"c"[..], b"a", b"c", b"x"] {
            rs.keys.push((t, Bytes::new(k)));
        }
        rs.keys.push((TableId(2), Bytes::new(b"c")));
        rs.ranges.push(KeyRange::new(t, Bound::Included(b"b"), Bound::Excluded(b"d")));
        rs.compact();
        let keys: Vec<_> = rs.keys.iter().map(|(t, k)| (t.0, k.as_slice().to_vec())).collect();
        assert_eq!(keys, vec![(1, b"a".to_vec()), (1, b"x".to_vec()), (2, b"c".to_vec())]);
    }
}
