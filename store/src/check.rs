//! Verifying a whole base file (`strata check`): every page reachable from the newest meta page
//! and every free-list page, read and verified; keys in order and inside their parents' bounds;
//! rows counted; and every page in use accounted for exactly once (in the tree, in the free
//! list, or listed as free). Reads only; changes nothing.

use crate::error::StoreError;
use crate::page::{self, Blob, Kind, OVERFLOW_DATA_BYTES};
use crate::read::Source;
use crate::Base;
use strata_wal::Storage;

/// What `check` found in a base file that verified.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CheckReport {
    pub generation: u64,
    pub ts: u64,
    pub rows: u64,
    pub height: u64,
    /// Pages in use (the two meta pages included).
    pub pages: u64,
    pub leaf_pages: u64,
    pub branch_pages: u64,
    pub overflow_pages: u64,
    pub free_list_pages: u64,
    pub free_pages: u64,
    /// Bytes of entries and slots in leaf pages over the leaf pages' body bytes (percent).
    pub leaf_fill_percent: u64,
}

struct Walk<'a> {
    src: &'a Source,
    seen: Vec<bool>,
    report: CheckReport,
    leaf_bytes: u64,
}

impl Walk<'_> {
    fn mark(&mut self, no: u64, what: &str) -> Result<(), StoreError> {
        match self.seen.get_mut(no as usize) {
            None => Err(StoreError::Corrupt {
                page: no,
                what: format!("{what} names a page past the {} in use", self.seen.len()),
            }),
            Some(true) => Err(StoreError::Corrupt {
                page: no,
                what: format!("{what} names a page that is already in use"),
            }),
            Some(s) => {
                *s = true;
                Ok(())
            }
        }
    }

    fn key(&mut self, blob: Blob<'_>) -> Result<Vec<u8>, StoreError> {
        match blob {
            Blob::Inline(k) => Ok(k.to_vec()),
            Blob::Overflow { len, first } => {
                self.chain(first, len)?;
                self.src.overflow(first, len)
            }
        }
    }

    /// Marks and verifies an overflow chain.
    fn chain(&mut self, first: u64, len: u32) -> Result<(), StoreError> {
        let pages = (len as usize).div_ceil(OVERFLOW_DATA_BYTES);
        let mut no = first;
        for i in 0..pages {
            self.mark(no, "an overflow chain")?;
            let (_, h) = self.src.page(no)?;
            if h.kind != Kind::Overflow {
                return Err(StoreError::Corrupt {
                    page: no,
                    what: format!("a {:?} page in an overflow chain", h.kind),
                });
            }
            if (i + 1 == pages) != (h.next == 0) {
                return Err(StoreError::Corrupt {
                    page: no,
                    what: format!("overflow chain of {len} bytes has the wrong length"),
                });
            }
            self.report.overflow_pages += 1;
            no = h.next;
        }
        Ok(())
    }

    /// Walks the subtree at `no` (at `depth`, leaves at `height`), whose keys must lie in
    /// `[low, high)`; returns its rows.
    fn node(
        &mut self,
        no: u64,
        depth: u64,
        low: Option<&[u8]>,
        high: Option<&[u8]>,
    ) -> Result<u64, StoreError> {
        self.mark(no, "the tree")?;
        let src = self.src;
        let (b, h) = src.page(no)?;
        let leaf = depth == self.report.height;
        let want = if leaf { Kind::Leaf } else { Kind::Branch };
        let bad = |what: String| StoreError::Corrupt { page: no, what };
        if h.kind != want {
            return Err(bad(format!("a {:?} page at depth {depth}, expected {want:?}", h.kind)));
        }
        if h.entries == 0 {
            return Err(bad("an empty page in the tree".into()));
        }
        if h.generation > self.report.generation {
            return Err(bad(format!(
                "written by generation {}, after the meta's {}",
                h.generation, self.report.generation
            )));
        }
        let in_bounds = |k: &[u8]| low.is_none_or(|l| k >= l) && high.is_none_or(|hi| k < hi);
        if leaf {
            let mut prev: Option<Vec<u8>> = None;
            let prefix = page::leaf_prefix(&b);
            self.leaf_bytes += 2 + prefix.len() as u64;
            for i in 0..h.entries {
                let (raw, k, v) = page::leaf_entry(&b, i);
                self.leaf_bytes += page::slotted_cost(raw.len()) as u64;
                let key = match k {
                    Blob::Inline(suffix) => [prefix, suffix].concat(),
                    Blob::Overflow { .. } if !prefix.is_empty() => {
                        return Err(bad(format!("key {i} is chained in a leaf with a prefix")));
                    }
                    Blob::Overflow { .. } => self.key(k)?,
                };
                if let Blob::Overflow { len, first } = v {
                    self.chain(first, len)?;
                }
                if !in_bounds(&key) || prev.as_ref().is_some_and(|p| *p >= key) {
                    return Err(bad(format!("key {i} is out of order")));
                }
                prev = Some(key);
            }
            self.report.leaf_pages += 1;
            return Ok(h.entries as u64);
        }
        self.report.branch_pages += 1;
        let mut children = Vec::with_capacity(h.entries);
        for i in 0..h.entries {
            let (child, k, _) = page::branch_entry(&b, i);
            let key = if i == 0 { None } else { Some(self.key(k)?) };
            if let Some(key) = &key {
                let after_prev =
                    children.last().and_then(|(k, _): &(Option<Vec<u8>>, u64)| k.as_ref());
                if !in_bounds(key) || after_prev.is_some_and(|p| p >= key) {
                    return Err(bad(format!("separator {i} is out of order")));
                }
            }
            children.push((key, child));
        }
        drop(b);
        let mut rows = 0;
        for i in 0..children.len() {
            let lo = children[i].0.as_deref().or(low);
            let hi = children.get(i + 1).and_then(|c| c.0.as_deref()).or(high);
            let child = children[i].1;
            rows += self.node(child, depth + 1, lo, hi)?;
        }
        Ok(rows)
    }
}

/// Verifies every page of the base file `name` that the newest checkpoint uses (see the module
/// header). Returns what it found, or the first damage.
pub fn check(storage: &dyn Storage, name: &str) -> Result<CheckReport, StoreError> {
    let base = Base::open(storage, name)?;
    let snap = base.snapshot();
    let meta = *snap.meta();
    let src = snap.source();
    let mut walk = Walk {
        src,
        seen: vec![false; meta.pages as usize],
        report: CheckReport {
            generation: meta.generation,
            ts: meta.ts,
            height: meta.height,
            pages: meta.pages,
            ..CheckReport::default()
        },
        leaf_bytes: 0,
    };
    walk.seen[0] = true;
    walk.seen[1] = true;
    let rows = if meta.root == 0 { 0 } else { walk.node(meta.root, 1, None, None)? };
    if rows != meta.rows {
        return Err(StoreError::Corrupt {
            page: meta.root,
            what: format!("the tree holds {rows} rows, the meta page says {}", meta.rows),
        });
    }
    walk.report.rows = rows;
    let (list, free) = crate::write::read_free_list(src, meta.free_list, meta.pages)?;
    for no in &list {
        walk.mark(*no, "the free list")?;
    }
    for no in &free {
        walk.mark(*no, "a free-list entry")?;
    }
    walk.report.free_list_pages = list.len() as u64;
    walk.report.free_pages = free.len() as u64;
    if let Some(lost) = walk.seen.iter().position(|s| !s) {
        let count = walk.seen.iter().filter(|s| !**s).count();
        return Err(StoreError::Corrupt {
            page: lost as u64,
            what: format!("{count} pages in use are neither in the tree nor free (first: {lost})"),
        });
    }
    let body = walk.report.leaf_pages * page::BODY_BYTES as u64;
    walk.report.leaf_fill_percent = (walk.leaf_bytes * 100).checked_div(body).unwrap_or(0);
    Ok(walk.report)
}
