//! Reading one checkpoint's tree: point reads and ordered ranges, without locks.
//!
//! A `Snapshot` holds the meta of one checkpoint and the file view its pages are read through.
//! Its pages are immutable while it lives: the writer never reuses a page a live snapshot can
//! reach (`write.rs`, page reuse). Every page is verified (checksum, its own number, layout)
//! each time it is read; a page that does not verify is `Corrupt`, never served.

use crate::error::StoreError;
use crate::page::{self, Blob, Header, Kind, Meta, OVERFLOW_DATA_BYTES, PAGE_BYTES};
use crate::sync::{Arc, SnapArc};
use std::borrow::Cow;
use std::cmp::Ordering;
use std::ops::Bound;
use std::ops::ControlFlow;
use strata_wal::{ReadMap, StorageFile};

/// How a snapshot reads pages: in place through a mapping, or by copying (`read_at`) where the
/// storage has no mapping (the simulated disk of the crash tests).
#[derive(Clone)]
pub(crate) enum Source {
    Map(Arc<ReadMap>),
    File(Arc<dyn StorageFile>),
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Map(m) => write!(f, "Map({} bytes)", m.len()),
            Source::File(_) => f.write_str("File"),
        }
    }
}

/// One checkpoint's tree, as readers see it. Cheap to clone (an `Arc`).
#[derive(Clone, Debug)]
pub struct Snapshot(pub(crate) SnapArc<SnapshotState>);

#[derive(Debug)]
pub(crate) struct SnapshotState {
    pub(crate) meta: Meta,
    pub(crate) source: Source,
}

/// A verified page's bytes.
pub(crate) type PageBytes<'s> = Cow<'s, [u8]>;

impl Source {
    /// Page `no`'s bytes, unverified.
    pub(crate) fn raw(&self, no: u64) -> Result<PageBytes<'_>, StoreError> {
        let offset = no * PAGE_BYTES as u64;
        match self {
            Source::Map(map) => {
                #[allow(unsafe_code)]
                // SAFETY: callers read only pages reachable from a snapshot that is alive (or,
                // for the writer, pages of the current tree and free list, which it alone
                // rewrites, and never while it reads them); such pages are not written while
                // the snapshot lives (`write.rs`, page reuse), and the base file never shrinks.
                match unsafe { map.bytes(offset, PAGE_BYTES) } {
                    Some(b) => Ok(Cow::Borrowed(b)),
                    None => Err(StoreError::Corrupt {
                        page: no,
                        what: format!("past the end of the file ({} bytes)", map.len()),
                    }),
                }
            }
            Source::File(file) => {
                let mut buf = vec![0u8; PAGE_BYTES];
                let n = file.read_at(offset, &mut buf).map_err(|source| StoreError::Io {
                    file: "base".into(),
                    what: "reading a page",
                    source,
                })?;
                if n < PAGE_BYTES {
                    return Err(StoreError::Corrupt {
                        page: no,
                        what: "past the end of the file".into(),
                    });
                }
                Ok(Cow::Owned(buf))
            }
        }
    }

    /// Page `no`, verified.
    pub(crate) fn page(&self, no: u64) -> Result<(PageBytes<'_>, Header), StoreError> {
        let b = self.raw(no)?;
        let h = page::verify(no, &b)?;
        Ok((b, h))
    }

    /// The `len` bytes of the overflow chain starting at `first`.
    pub(crate) fn overflow(&self, first: u64, len: u32) -> Result<Vec<u8>, StoreError> {
        let mut out = Vec::with_capacity(len as usize);
        let mut no = first;
        while out.len() < len as usize {
            if no == 0 {
                return Err(StoreError::Corrupt {
                    page: first,
                    what: format!("overflow chain ends after {} of {len} bytes", out.len()),
                });
            }
            let (b, h) = self.page(no)?;
            if h.kind != Kind::Overflow {
                return Err(StoreError::Corrupt {
                    page: no,
                    what: format!("a {:?} page in an overflow chain", h.kind),
                });
            }
            let take = (len as usize - out.len()).min(OVERFLOW_DATA_BYTES);
            out.extend_from_slice(&b[page::HEADER_BYTES..page::HEADER_BYTES + take]);
            no = h.next;
        }
        Ok(out)
    }

    /// A blob's bytes: borrowed from the page when inline and the page is borrowed.
    pub(crate) fn blob<'s>(
        &'s self,
        page: &PageBytes<'s>,
        blob: Blob<'_>,
    ) -> Result<Cow<'s, [u8]>, StoreError> {
        match (blob, page) {
            (Blob::Inline(v), Cow::Borrowed(p)) => {
                // Re-derive the slice from the borrowed page so it carries the page's lifetime
                // (`v` was decoded from that page; anything else is copied).
                let start = (v.as_ptr() as usize).checked_sub(p.as_ptr() as usize);
                match start.and_then(|s| p.get(s..s + v.len())) {
                    Some(inside) if inside.as_ptr() == v.as_ptr() => Ok(Cow::Borrowed(inside)),
                    _ => Ok(Cow::Owned(v.to_vec())),
                }
            }
            (Blob::Inline(v), Cow::Owned(_)) => Ok(Cow::Owned(v.to_vec())),
            (Blob::Overflow { len, first }, _) => Ok(Cow::Owned(self.overflow(first, len)?)),
        }
    }

    /// Compares a stored key with `key` (loading it when it is in an overflow chain).
    pub(crate) fn cmp_key(&self, stored: Blob<'_>, key: &[u8]) -> Result<Ordering, StoreError> {
        match stored {
            Blob::Inline(k) => Ok(k.cmp(key)),
            Blob::Overflow { len, first } => Ok(self.overflow(first, len)?.as_slice().cmp(key)),
        }
    }

    /// In a verified branch page, the entry whose subtree holds `key`: the last entry after
    /// the first whose key is `<= key`, or the first.
    pub(crate) fn child_for(
        &self,
        b: &[u8],
        entries: usize,
        key: &[u8],
    ) -> Result<usize, StoreError> {
        let (mut lo, mut hi) = (1, entries); // the answer is in [lo - 1, hi)
        while lo < hi {
            let mid = (lo + hi) / 2;
            let (_, k, _) = page::branch_entry(b, mid);
            if self.cmp_key(k, key)? == Ordering::Greater {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        Ok(lo - 1)
    }

    /// In a verified leaf, the first entry whose key is `>= key` (or `entries`), and whether it
    /// equals `key`.
    pub(crate) fn leaf_search(
        &self,
        b: &[u8],
        entries: usize,
        key: &[u8],
    ) -> Result<(usize, bool), StoreError> {
        // Every key in the leaf starts with the prefix: a key that does not lies before or
        // after all of them (a proper prefix of the prefix sorts first).
        let prefix = page::leaf_prefix(b);
        let n = prefix.len().min(key.len());
        match key[..n].cmp(&prefix[..n]) {
            Ordering::Less => return Ok((0, false)),
            Ordering::Greater => return Ok((entries, false)),
            Ordering::Equal if key.len() < prefix.len() => return Ok((0, false)),
            Ordering::Equal => {}
        }
        let rest = &key[prefix.len()..];
        let (mut lo, mut hi) = (0, entries);
        while lo < hi {
            let mid = (lo + hi) / 2;
            let (_, k, _) = page::leaf_entry(b, mid);
            match self.cmp_key(k, rest)? {
                Ordering::Less => lo = mid + 1,
                Ordering::Equal => return Ok((mid, true)),
                Ordering::Greater => hi = mid,
            }
        }
        Ok((lo, false))
    }

    /// The whole key of a leaf entry, the leaf's prefix and the entry's suffix, into `key`
    /// (cleared first; its allocation is reused).
    pub(crate) fn leaf_key_into(
        &self,
        b: &[u8],
        suffix: Blob<'_>,
        key: &mut Vec<u8>,
    ) -> Result<(), StoreError> {
        key.clear();
        match suffix {
            Blob::Inline(s) => {
                let prefix = page::leaf_prefix(b);
                key.reserve(prefix.len() + s.len());
                key.extend_from_slice(prefix);
                key.extend_from_slice(s);
            }
            // A leaf with a chained key has no prefix.
            Blob::Overflow { len, first } => *key = self.overflow(first, len)?,
        }
        Ok(())
    }
}

fn wrong_kind(no: u64, got: Kind, want: Kind, depth: u64) -> StoreError {
    StoreError::Corrupt {
        page: no,
        what: format!("a {got:?} page at depth {depth}, expected {want:?}"),
    }
}

impl Snapshot {
    /// The checkpoint timestamp: the tree holds, for each key, its newest version `<= ts`.
    pub fn ts(&self) -> u64 {
        self.0.meta.ts
    }

    /// The checkpoint's generation (1 for the first checkpoint into a new file).
    pub fn generation(&self) -> u64 {
        self.0.meta.generation
    }

    /// Rows in the tree.
    pub fn rows(&self) -> u64 {
        self.0.meta.rows
    }

    /// The value the owner stored with this checkpoint (`Base::checkpoint`'s `user`).
    pub fn user(&self) -> u64 {
        self.0.meta.user
    }

    pub(crate) fn meta(&self) -> &Meta {
        &self.0.meta
    }

    pub(crate) fn source(&self) -> &Source {
        &self.0.source
    }

    /// The leaf that would hold `key`: its page number and bytes (`None`: the tree is empty).
    fn leaf_for(&self, key: &[u8]) -> Result<Option<(u64, PageBytes<'_>, Header)>, StoreError> {
        let meta = &self.0.meta;
        let src = &self.0.source;
        if meta.root == 0 {
            return Ok(None);
        }
        let mut no = meta.root;
        for depth in 1..meta.height {
            let (b, h) = src.page(no)?;
            if h.kind != Kind::Branch {
                return Err(wrong_kind(no, h.kind, Kind::Branch, depth));
            }
            let i = src.child_for(&b, h.entries, key)?;
            no = page::branch_entry(&b, i).0;
        }
        let (b, h) = src.page(no)?;
        if h.kind != Kind::Leaf {
            return Err(wrong_kind(no, h.kind, Kind::Leaf, meta.height));
        }
        Ok(Some((no, b, h)))
    }

    /// The value of `key`, if the tree holds it.
    pub fn get(&self, key: &[u8]) -> Result<Option<Cow<'_, [u8]>>, StoreError> {
        let Some((_, b, h)) = self.leaf_for(key)? else { return Ok(None) };
        let src = &self.0.source;
        match src.leaf_search(&b, h.entries, key)? {
            (i, true) => {
                let (_, _, v) = page::leaf_entry(&b, i);
                Ok(Some(src.blob(&b, v)?))
            }
            _ => Ok(None),
        }
    }

    /// Whether the tree holds `key` (reads no value).
    pub fn contains(&self, key: &[u8]) -> Result<bool, StoreError> {
        let Some((_, b, h)) = self.leaf_for(key)? else { return Ok(false) };
        Ok(self.0.source.leaf_search(&b, h.entries, key)?.1)
    }

    /// The rows with keys between `from` and `to`, in key order.
    pub fn range<'s>(&'s self, from: Bound<&[u8]>, to: Bound<&[u8]>) -> Range<'s> {
        self.walk(from, to, false)
    }

    /// The rows with keys between `from` and `to`, in descending key order.
    pub fn range_rev<'s>(&'s self, from: Bound<&[u8]>, to: Bound<&[u8]>) -> Range<'s> {
        self.walk(from, to, true)
    }

    fn walk<'s>(&'s self, from: Bound<&[u8]>, to: Bound<&[u8]>, reverse: bool) -> Range<'s> {
        Range {
            snap: self,
            stack: Vec::new(),
            started: false,
            from: from.map(<[u8]>::to_vec),
            to: to.map(<[u8]>::to_vec),
            reverse,
            done: false,
        }
    }
}

/// A row: key and value.
pub type Row = (Vec<u8>, Vec<u8>);

/// An ordered walk over a snapshot's rows (`Snapshot::range`, `range_rev`). Yields owned keys
/// and values; stops after the first error.
#[derive(Debug)]
pub struct Range<'s> {
    snap: &'s Snapshot,
    /// From the root down: each page on the path, its entry count, and a cursor. Forward: the
    /// index of the entry being walked. Reverse: one past it (0: the page is done).
    stack: Vec<(u64, PageBytes<'s>, usize, usize)>,
    started: bool,
    from: Bound<Vec<u8>>,
    to: Bound<Vec<u8>>,
    reverse: bool,
    done: bool,
}

impl Range<'_> {
    /// Descends from the stack's top entry to the leaf below it: the leftmost (forward) or the
    /// rightmost (reverse).
    fn descend(&mut self) -> Result<(), StoreError> {
        let src = self.snap.source();
        let height = self.snap.meta().height;
        while (self.stack.len() as u64) < height {
            let (_, b, _, i) = self.stack.last().expect("a non-empty stack");
            let entry = if self.reverse { *i - 1 } else { *i };
            let child = page::branch_entry(b, entry).0;
            let depth = self.stack.len() as u64 + 1;
            let (cb, h) = src.page(child)?;
            let want = if depth == height { Kind::Leaf } else { Kind::Branch };
            if h.kind != want {
                return Err(wrong_kind(child, h.kind, want, depth));
            }
            let cursor = if self.reverse { h.entries } else { 0 };
            self.stack.push((child, cb, h.entries, cursor));
        }
        Ok(())
    }

    /// Positions the walk at the first row in scan order: the first entry `>= from` (forward)
    /// or the last `<= to` (reverse).
    fn start(&mut self) -> Result<(), StoreError> {
        let meta = *self.snap.meta();
        let src = self.snap.source();
        if meta.root == 0 {
            self.done = true;
            return Ok(());
        }
        let bound = if self.reverse { &self.to } else { &self.from };
        let (key, included) = match bound {
            Bound::Included(k) => (Some(k.clone()), true),
            Bound::Excluded(k) => (Some(k.clone()), false),
            Bound::Unbounded => (None, true),
        };
        let mut no = meta.root;
        for depth in 1..=meta.height {
            let (b, h) = src.page(no)?;
            let want = if depth == meta.height { Kind::Leaf } else { Kind::Branch };
            if h.kind != want {
                return Err(wrong_kind(no, h.kind, want, depth));
            }
            let (cursor, child) = if want == Kind::Branch {
                let i = match &key {
                    None if self.reverse => h.entries - 1,
                    None => 0,
                    Some(k) => src.child_for(&b, h.entries, k)?,
                };
                (if self.reverse { i + 1 } else { i }, page::branch_entry(&b, i).0)
            } else {
                let i = match &key {
                    None if self.reverse => h.entries,
                    None => 0,
                    Some(k) => {
                        let (i, found) = src.leaf_search(&b, h.entries, k)?;
                        // Forward: skip an excluded match. Reverse: `i` entries lie below `k`;
                        // an included match is one more.
                        match (self.reverse, found, included) {
                            (false, true, false) => i + 1,
                            (true, true, true) => i + 1,
                            _ => i,
                        }
                    }
                };
                (i, 0)
            };
            self.stack.push((no, b, h.entries, cursor));
            no = child;
        }
        Ok(())
    }

    fn step(&mut self) -> Result<Option<Row>, StoreError> {
        let mut key = Vec::new();
        self.step_with(&mut key, |k, v| (std::mem::take(k), v.to_vec()))
    }

    /// Moves to the next row and hands it to `emit`: the whole key, built in `key` (reused
    /// across calls), and the value, borrowed from the page where it is inline.
    fn step_with<R>(
        &mut self,
        key: &mut Vec<u8>,
        emit: impl FnOnce(&mut Vec<u8>, &[u8]) -> R,
    ) -> Result<Option<R>, StoreError> {
        if !self.started {
            self.started = true;
            self.start()?;
        }
        let height = self.snap.meta().height;
        loop {
            if self.done {
                return Ok(None);
            }
            let Some((_, _, n, i)) = self.stack.last() else {
                self.done = true;
                return Ok(None);
            };
            let page_done = if self.reverse { *i == 0 } else { *i >= *n };
            if page_done {
                // Move to the next child of the nearest ancestor that has one.
                self.stack.pop();
                let reverse = self.reverse;
                let Some((_, _, pn, pi)) = self.stack.last_mut() else {
                    self.done = true;
                    return Ok(None);
                };
                let more = if reverse {
                    *pi -= 1;
                    *pi > 0
                } else {
                    *pi += 1;
                    *pi < *pn
                };
                if more {
                    self.descend()?;
                }
                continue;
            }
            if (self.stack.len() as u64) < height {
                self.descend()?;
                continue;
            }
            let src = self.snap.source();
            let reverse = self.reverse;
            let Some((_, b, _, i)) = self.stack.last_mut() else { continue };
            let entry = if reverse { *i - 1 } else { *i };
            let (_, k, v) = page::leaf_entry(b, entry);
            if reverse {
                *i -= 1;
            } else {
                *i += 1;
            }
            src.leaf_key_into(b, k, key)?;
            let past = if reverse {
                match &self.from {
                    Bound::Included(f) => key.as_slice() < f.as_slice(),
                    Bound::Excluded(f) => key.as_slice() <= f.as_slice(),
                    Bound::Unbounded => false,
                }
            } else {
                match &self.to {
                    Bound::Included(t) => key.as_slice() > t.as_slice(),
                    Bound::Excluded(t) => key.as_slice() >= t.as_slice(),
                    Bound::Unbounded => false,
                }
            };
            if past {
                self.done = true;
                return Ok(None);
            }
            return match v {
                Blob::Inline(v) => Ok(Some(emit(key, v))),
                Blob::Overflow { len, first } => Ok(Some(emit(key, &src.overflow(first, len)?))),
            };
        }
    }

    /// Hands each remaining row to `f`, borrowed (the key from a buffer reused across rows,
    /// an inline value from the page), until the range ends or `f` breaks. Returns whether
    /// `f` broke. Allocates nothing per row for rows whose key and value are inline.
    pub fn for_each_borrowed(
        &mut self,
        mut f: impl FnMut(&[u8], &[u8]) -> ControlFlow<()>,
    ) -> Result<ControlFlow<()>, StoreError> {
        let mut key = Vec::new();
        loop {
            match self.step_with(&mut key, |k, v| f(k, v)) {
                Ok(Some(ControlFlow::Continue(()))) => {}
                Ok(Some(ControlFlow::Break(()))) => return Ok(ControlFlow::Break(())),
                Ok(None) => return Ok(ControlFlow::Continue(())),
                Err(e) => {
                    self.done = true;
                    return Err(e);
                }
            }
        }
    }
}

impl Iterator for Range<'_> {
    type Item = Result<Row, StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.step() {
            Ok(Some(row)) => Some(Ok(row)),
            Ok(None) => None,
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}
