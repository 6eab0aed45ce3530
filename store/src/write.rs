//! Writing a checkpoint: a copy-on-write update of the tree, page allocation and reuse.
//!
//! A checkpoint of generation `g` rewrites only the pages on the paths to the keys it changes
//! (and the overflow chains of the values it changes); every other page of the new tree is
//! shared with the old one. New pages go to free pages or to the end of the file, never over a
//! page of the durable tree, so a crash before the new meta page is durable leaves the old tree
//! whole.
//!
//! **Page reuse.** The pages a checkpoint of generation `g` stops using (the old copies of the
//! pages it rewrote, the overflow chains of values it replaced or deleted, the previous free
//! list) are *pending(g)*: a snapshot of an older generation may still walk them. They become
//! reusable once no snapshot of a generation below `g` is alive (`Alloc::release`). The file's
//! free list (written with every checkpoint) lists reusable and pending pages alike: after a
//! restart no snapshot is alive, so all of them are free.

use crate::error::StoreError;
use crate::page::{
    self, Blob, Kind, BODY_BYTES, FREE_PER_PAGE, HEADER_BYTES, INLINE_ENTRY_BYTES_MAX,
    INLINE_KEY_BYTES_MAX, OVERFLOW_DATA_BYTES, PAGE_BYTES,
};
use crate::read::{PageBytes, Source};
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

/// One change a checkpoint applies: the key, and its new value (`None`: the key is deleted).
pub type Change = (Vec<u8>, Option<Vec<u8>>);

/// Which pages are free, and since when.
#[derive(Clone, Debug, Default)]
pub(crate) struct Alloc {
    /// Free pages no live snapshot can reach: writable now. Lowest first, so the file stays
    /// compact.
    pub(crate) reusable: BTreeSet<u64>,
    /// Pages freed by a generation, reusable once no snapshot older than it is alive.
    pub(crate) pending: Vec<(u64, Vec<u64>)>,
    /// Pages in use: every page number is below this.
    pub(crate) pages: u64,
    /// The pages of the durable free list.
    pub(crate) list_pages: Vec<u64>,
}

impl Alloc {
    /// Makes the pages freed by generations `<= oldest_live` reusable: no snapshot that could
    /// reach them is alive.
    pub(crate) fn release(&mut self, oldest_live: u64) {
        let mut keep = Vec::new();
        for (gen, pages) in self.pending.drain(..) {
            if gen <= oldest_live {
                self.reusable.extend(pages);
            } else {
                keep.push((gen, pages));
            }
        }
        self.pending = keep;
    }

    fn take(&mut self) -> u64 {
        match self.reusable.pop_first() {
            Some(p) => p,
            None => {
                self.pages += 1;
                self.pages - 1
            }
        }
    }

    /// Every free page, reusable or pending.
    pub(crate) fn free_count(&self) -> usize {
        self.reusable.len() + self.pending.iter().map(|(_, p)| p.len()).sum::<usize>()
    }
}

/// A leaf entry while a leaf is rewritten: the whole key, the key's chain (its encoded blob)
/// when it is too long to be inline, and the value blob. Keys and values are borrowed from the
/// changes and the old page wherever they can be, so rewriting a leaf copies each entry once,
/// into its new page.
struct LeafItem<'a> {
    key: &'a [u8],
    chained: Option<Vec<u8>>,
    value: ValueBlob<'a>,
}

/// A leaf entry's value as the rewrite holds it.
enum ValueBlob<'a> {
    /// An encoded blob: an old entry's, borrowed from its page, or a new overflow chain's
    /// reference.
    Encoded(Cow<'a, [u8]>),
    /// Bytes to store inline (encoded when the page is laid out).
    Inline(&'a [u8]),
}

impl ValueBlob<'_> {
    /// Bytes the encoded blob takes.
    fn len(&self) -> usize {
        match self {
            ValueBlob::Encoded(b) => b.len(),
            ValueBlob::Inline(v) => Blob::inline_len(v.len()),
        }
    }

    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            ValueBlob::Encoded(b) => out.extend_from_slice(b),
            ValueBlob::Inline(v) => Blob::Inline(v).encode(out),
        }
    }
}

/// Splits `n` entries into pages, given the body bytes `cost` of a range of them (which grows
/// as the range does): each page filled in order, then the last two evened out when the last
/// would be less than half full.
fn group(n: usize, cost: impl Fn(std::ops::Range<usize>) -> usize) -> Vec<std::ops::Range<usize>> {
    let mut groups = Vec::new();
    let mut start = 0;
    for i in 0..n {
        if i > start && cost(start..i + 1) > BODY_BYTES {
            groups.push(start..i);
            start = i;
        }
    }
    groups.push(start..n);
    let last = groups.len() - 1;
    if last >= 1 && cost(groups[last].clone()) < BODY_BYTES / 2 {
        let both = groups[last - 1].start..groups[last].end;
        let best = (both.start + 1..both.end)
            .map(|split| (cost(both.start..split).max(cost(split..both.end)), split))
            .filter(|(worst, _)| *worst <= BODY_BYTES)
            .min();
        if let Some((_, split)) = best {
            groups[last - 1] = both.start..split;
            groups[last] = split..both.end;
        }
    }
    groups
}

/// One checkpoint's update of the tree.
pub(crate) struct Update<'a> {
    src: &'a Source,
    generation: u64,
    pub(crate) alloc: Alloc,
    /// New pages, by number.
    pub(crate) written: BTreeMap<u64, Box<[u8]>>,
    /// Pages this generation stops using.
    pub(crate) freed: Vec<u64>,
    /// Rows added minus rows removed.
    pub(crate) rows: i64,
}

/// A child list as a node update returns it: each new node's smallest key (`None`: the node's
/// old lower bound, kept by the parent) and page.
type Children = Vec<(Option<Vec<u8>>, u64)>;

impl<'a> Update<'a> {
    pub(crate) fn new(src: &'a Source, generation: u64, alloc: Alloc) -> Self {
        Update { src, generation, alloc, written: BTreeMap::new(), freed: Vec::new(), rows: 0 }
    }

    /// Applies `changes` (keys strictly increasing) to the tree at `root` of `height`; returns
    /// the new root and height.
    pub(crate) fn apply(
        &mut self,
        root: u64,
        height: u64,
        changes: &[Change],
    ) -> Result<(u64, u64), StoreError> {
        if changes.is_empty() {
            return Ok((root, height));
        }
        let (mut level, mut h) = if root == 0 {
            (self.leaf(0, changes)?, 1)
        } else {
            (self.node(root, height, changes)?, height)
        };
        if level.is_empty() {
            return Ok((0, 0));
        }
        while level.len() > 1 {
            level = self.pack_branch(level)?;
            h += 1;
        }
        let mut root = level[0].1;
        // A root branch with one child is replaced by the child.
        while h > 1 {
            let only = {
                let b = self.page_any(root)?;
                (page::u16_at(&b, 6) == 1).then(|| page::branch_entry(&b, 0).0)
            };
            let Some(child) = only else { break };
            self.drop_page(root);
            root = child;
            h -= 1;
        }
        Ok((root, h))
    }

    /// A page written in this update, or else the old tree's.
    fn page_any(&self, no: u64) -> Result<PageBytes<'_>, StoreError> {
        match self.written.get(&no) {
            Some(b) => Ok(Cow::Borrowed(&b[..])),
            None => Ok(self.src.page(no)?.0),
        }
    }

    /// Gives up a page: a page written in this update goes straight back to the free pool (no
    /// one can reach it); an old one is pending until older snapshots end.
    fn drop_page(&mut self, no: u64) {
        if self.written.remove(&no).is_some() {
            self.alloc.reusable.insert(no);
        } else {
            self.freed.push(no);
        }
    }

    fn node(&mut self, no: u64, height: u64, changes: &[Change]) -> Result<Children, StoreError> {
        if height <= 1 {
            self.leaf(no, changes)
        } else {
            self.branch(no, height, changes)
        }
    }

    fn bytes_of(&self, blob: Blob<'_>) -> Result<Vec<u8>, StoreError> {
        match blob {
            Blob::Inline(b) => Ok(b.to_vec()),
            Blob::Overflow { len, first } => self.src.overflow(first, len),
        }
    }

    /// Frees an overflow chain (a no-op for an inline blob).
    fn free_blob(&mut self, blob: Blob<'_>) -> Result<(), StoreError> {
        let Blob::Overflow { len, first } = blob else { return Ok(()) };
        let mut no = first;
        for _ in 0..(len as usize).div_ceil(OVERFLOW_DATA_BYTES) {
            let (_, h) = self.src.page(no)?;
            self.freed.push(no);
            no = h.next;
        }
        Ok(())
    }

    /// Writes `data` into a new overflow chain.
    fn overflow(&mut self, data: &[u8]) -> Result<Blob<'static>, StoreError> {
        let len = u32::try_from(data.len())
            .map_err(|_| StoreError::Input(format!("a {}-byte blob", data.len())))?;
        let chunks: Vec<&[u8]> = data.chunks(OVERFLOW_DATA_BYTES).collect();
        let pages: Vec<u64> = chunks.iter().map(|_| self.alloc.take()).collect();
        for (i, chunk) in chunks.iter().enumerate() {
            let mut p = vec![0u8; PAGE_BYTES].into_boxed_slice();
            p[HEADER_BYTES..HEADER_BYTES + chunk.len()].copy_from_slice(chunk);
            let next = pages.get(i + 1).copied().unwrap_or(0);
            page::seal(&mut p, Kind::Overflow, 0, pages[i], self.generation, next);
            self.written.insert(pages[i], p);
        }
        Ok(Blob::Overflow { len, first: pages.first().copied().unwrap_or(0) })
    }

    fn key_blob(&mut self, key: &[u8], out: &mut Vec<u8>) -> Result<(), StoreError> {
        if key.len() <= INLINE_KEY_BYTES_MAX {
            Blob::Inline(key).encode(out);
        } else {
            self.overflow(key)?.encode(out);
        }
        Ok(())
    }

    /// A new leaf entry: a chain for a long key, the value inline or in a chain.
    fn leaf_item<'c>(
        &mut self,
        key: &'c [u8],
        value: &'c [u8],
    ) -> Result<LeafItem<'c>, StoreError> {
        let chained = if key.len() > INLINE_KEY_BYTES_MAX {
            let mut e = Vec::new();
            self.overflow(key)?.encode(&mut e);
            Some(e)
        } else {
            None
        };
        let key_bytes = chained.as_ref().map_or(Blob::inline_len(key.len()), Vec::len);
        let value = if key_bytes + Blob::inline_len(value.len()) <= INLINE_ENTRY_BYTES_MAX {
            ValueBlob::Inline(value)
        } else {
            let mut v = Vec::new();
            self.overflow(value)?.encode(&mut v);
            ValueBlob::Encoded(Cow::Owned(v))
        };
        Ok(LeafItem { key, chained, value })
    }

    fn leaf(&mut self, no: u64, changes: &[Change]) -> Result<Children, StoreError> {
        let src = self.src;
        let page = if no != 0 {
            let (b, h) = src.page(no)?;
            if h.kind != Kind::Leaf {
                return Err(StoreError::Corrupt {
                    page: no,
                    what: format!("a {:?} page where a leaf belongs", h.kind),
                });
            }
            self.freed.push(no);
            Some((b, h.entries))
        } else {
            None
        };
        // The old entries: whole keys rebuilt into one buffer (the page stores suffixes after a
        // shared prefix), value blobs borrowed from the page as they are.
        let (mut keys, mut at, mut key) = (Vec::new(), Vec::new(), Vec::new());
        if let Some((b, entries)) = &page {
            for i in 0..*entries {
                let (raw, k, _) = page::leaf_entry(b, i);
                let (_, kn) = Blob::at(raw, 0);
                let chained = matches!(k, Blob::Overflow { .. }).then(|| raw[..kn].to_vec());
                src.leaf_key_into(b, k, &mut key)?;
                keys.extend_from_slice(&key);
                at.push((keys.len(), chained, &raw[kn..]));
            }
        }
        let mut start = 0;
        let mut old = at
            .into_iter()
            .map(|(end, chained, value)| {
                let key = &keys[start..end];
                start = end;
                LeafItem { key, chained, value: ValueBlob::Encoded(Cow::Borrowed(value)) }
            })
            .peekable();
        let mut out: Vec<LeafItem<'_>> = Vec::with_capacity(old.len() + changes.len());
        let mut changes = changes.iter().peekable();
        loop {
            let order = match (old.peek(), changes.peek()) {
                (None, None) => break,
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (Some(item), Some((c, _))) => item.key.cmp(c.as_slice()),
            };
            match order {
                std::cmp::Ordering::Less => out.extend(old.next()),
                std::cmp::Ordering::Greater => {
                    let Some((key, value)) = changes.next() else { break };
                    if let Some(v) = value {
                        out.push(self.leaf_item(key, v)?);
                        self.rows += 1;
                    }
                }
                std::cmp::Ordering::Equal => {
                    let (Some(item), Some((key, value))) = (old.next(), changes.next()) else {
                        break;
                    };
                    if let Some(chain) = &item.chained {
                        self.free_blob(Blob::at(chain, 0).0)?;
                    }
                    // An old entry's value is always `Encoded`, borrowed from its page.
                    if let ValueBlob::Encoded(raw) = &item.value {
                        self.free_blob(Blob::at(raw, 0).0)?;
                    }
                    match value {
                        Some(v) => out.push(self.leaf_item(key, v)?),
                        None => self.rows -= 1,
                    }
                }
            }
        }
        self.pack_leaves(out)
    }

    fn branch(&mut self, no: u64, height: u64, changes: &[Change]) -> Result<Children, StoreError> {
        let src = self.src;
        let (b, h) = src.page(no)?;
        if h.kind != Kind::Branch {
            return Err(StoreError::Corrupt {
                page: no,
                what: format!("a {:?} page where a branch belongs", h.kind),
            });
        }
        let mut entries: Vec<(Option<Vec<u8>>, u64)> = Vec::with_capacity(h.entries);
        for i in 0..h.entries {
            let (child, k, _) = page::branch_entry(&b, i);
            // The page is rewritten below, so its separators' chains go with it.
            self.free_blob(k)?;
            entries.push(((i > 0).then(|| self.bytes_of(k)).transpose()?, child));
        }
        drop(b);
        self.freed.push(no);
        let mut out: Children = Vec::with_capacity(entries.len() + 1);
        let mut rest = changes;
        for i in 0..entries.len() {
            let take = match entries.get(i + 1).and_then(|e| e.0.as_deref()) {
                Some(upper) => rest.partition_point(|(k, _)| k.as_slice() < upper),
                None => rest.len(),
            };
            let (mine, later) = rest.split_at(take);
            rest = later;
            let (key, child) = entries[i].clone();
            if mine.is_empty() {
                out.push((key, child));
                continue;
            }
            for (j, (first, page)) in self.node(child, height - 1, mine)?.into_iter().enumerate() {
                out.push((if j == 0 { key.clone() } else { first }, page));
            }
        }
        if out.is_empty() {
            return Ok(out);
        }
        self.pack_branch(out)
    }

    /// Writes branch pages over `children` (the first of each page stored with an empty key).
    fn pack_branch(&mut self, children: Children) -> Result<Children, StoreError> {
        if children.is_empty() {
            return Ok(Vec::new());
        }
        // Each entry sized with its key, even where it will be stored empty (conservative).
        let mut sums = Vec::with_capacity(children.len() + 1);
        sums.push(0);
        for (key, _) in &children {
            let key_bytes = match key {
                Some(k) if k.len() > INLINE_KEY_BYTES_MAX => Blob::chained_len(k.len()),
                Some(k) => Blob::inline_len(k.len()),
                None => Blob::inline_len(0),
            };
            sums.push(sums[sums.len() - 1] + page::slotted_cost(8 + key_bytes));
        }
        let groups = group(children.len(), |r| sums[r.end] - sums[r.start]);
        let mut out = Vec::with_capacity(groups.len());
        for g in groups {
            let mut raws: Vec<Vec<u8>> = Vec::with_capacity(g.len());
            for (i, (key, child)) in children[g.clone()].iter().enumerate() {
                // The key: empty for a page's first entry, else inline or in a new chain.
                let mut b = child.to_le_bytes().to_vec();
                match key {
                    Some(k) if i > 0 => self.key_blob(k, &mut b)?,
                    _ => Blob::Inline(&[]).encode(&mut b),
                }
                raws.push(b);
            }
            let refs: Vec<&[u8]> = raws.iter().map(Vec::as_slice).collect();
            let no = self.seal_new(None, &refs, Kind::Branch)?;
            out.push((children[g.start].0.clone(), no));
        }
        Ok(out)
    }

    /// Writes leaf pages over `items` (in key order). Returns each page's first key.
    fn pack_leaves(&mut self, items: Vec<LeafItem<'_>>) -> Result<Children, StoreError> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        // Per entry, its cost with the whole key; and the chained keys, counted.
        let (mut sums, mut chained) = (vec![0], vec![0]);
        for item in &items {
            let key_bytes =
                item.chained.as_ref().map_or(Blob::inline_len(item.key.len()), Vec::len);
            sums.push(sums[sums.len() - 1] + page::slotted_cost(key_bytes + item.value.len()));
            chained.push(chained[chained.len() - 1] + usize::from(item.chained.is_some()));
        }
        let prefix = |r: &std::ops::Range<usize>| -> usize {
            if chained[r.end] > chained[r.start] {
                return 0;
            }
            let (first, last) = (items[r.start].key, items[r.end - 1].key);
            first.iter().zip(last.iter()).take_while(|(a, b)| a == b).count()
        };
        // A prefix of `p` bytes is stored once and saves `p` bytes per key (the varint of a
        // shorter suffix is never longer, so the cost is an upper bound).
        let cost = |r: std::ops::Range<usize>| -> usize {
            let p = prefix(&r);
            2 + p + sums[r.end] - sums[r.start] - r.len() * p
        };
        let groups = group(items.len(), cost);
        let mut out = Vec::with_capacity(groups.len());
        // Each page's entries laid out end to end in one buffer, then sliced.
        let (mut buf, mut ends) = (Vec::with_capacity(BODY_BYTES), Vec::new());
        for g in groups {
            let p = prefix(&g);
            buf.clear();
            ends.clear();
            for item in &items[g.clone()] {
                match &item.chained {
                    Some(chain) => buf.extend_from_slice(chain),
                    None => Blob::Inline(&item.key[p..]).encode(&mut buf),
                }
                item.value.encode(&mut buf);
                ends.push(buf.len());
            }
            let starts = std::iter::once(0).chain(ends.iter().copied());
            let refs: Vec<&[u8]> = starts.zip(ends.iter()).map(|(a, &b)| &buf[a..b]).collect();
            let no = self.seal_new(Some(&items[g.start].key[..p]), &refs, Kind::Leaf)?;
            out.push((Some(items[g.start].key.to_vec()), no));
        }
        Ok(out)
    }

    /// Lays out and seals one new slotted page; returns its number.
    fn seal_new(
        &mut self,
        prefix: Option<&[u8]>,
        entries: &[&[u8]],
        kind: Kind,
    ) -> Result<u64, StoreError> {
        let mut p = page::slotted(prefix, entries).ok_or_else(|| {
            StoreError::Input(format!(
                "{} entries of {} bytes do not fit a page",
                entries.len(),
                entries.iter().map(|r| r.len()).sum::<usize>()
            ))
        })?;
        let no = self.alloc.take();
        page::seal(&mut p, kind, entries.len(), no, self.generation, 0);
        self.written.insert(no, p);
        Ok(no)
    }

    /// Writes the free list for the new generation into new pages: every page that is free in
    /// it (reusable, pending, and `freed` — which must already hold the old list's pages).
    /// Returns the first list page (0: none) and the number of pages listed.
    pub(crate) fn free_list(&mut self) -> (u64, u64) {
        // Taking a page for the list from the reusable pool shortens the list; take until the
        // pages hold it. A page left over by the last shortening stays in the chain, empty.
        let mut list: Vec<u64> = Vec::new();
        while list.len() < (self.alloc.free_count() + self.freed.len()).div_ceil(FREE_PER_PAGE) {
            list.push(self.alloc.take());
        }
        let mut free: Vec<u64> = self.alloc.reusable.iter().copied().collect();
        free.extend(self.alloc.pending.iter().flat_map(|(_, p)| p.iter().copied()));
        free.extend(self.freed.iter().copied());
        free.sort_unstable();
        let mut chunks = free.chunks(FREE_PER_PAGE);
        for (i, no) in list.iter().enumerate() {
            let chunk = chunks.next().unwrap_or(&[]);
            let mut p = vec![0u8; PAGE_BYTES].into_boxed_slice();
            p[HEADER_BYTES..HEADER_BYTES + 4].copy_from_slice(&(chunk.len() as u32).to_le_bytes());
            for (j, free_no) in chunk.iter().enumerate() {
                let at = HEADER_BYTES + 4 + 8 * j;
                p[at..at + 8].copy_from_slice(&free_no.to_le_bytes());
            }
            let next = list.get(i + 1).copied().unwrap_or(0);
            page::seal(&mut p, Kind::FreeList, 0, *no, self.generation, next);
            self.written.insert(*no, p);
        }
        self.alloc.list_pages = list;
        (self.alloc.list_pages.first().copied().unwrap_or(0), free.len() as u64)
    }
}

/// Reads a free list: its pages and the page numbers it lists.
pub(crate) fn read_free_list(
    src: &Source,
    first: u64,
    pages: u64,
) -> Result<(Vec<u64>, Vec<u64>), StoreError> {
    let (mut list, mut free) = (Vec::new(), Vec::new());
    let mut no = first;
    while no != 0 {
        if list.len() as u64 >= pages {
            return Err(StoreError::Corrupt { page: no, what: "the free list loops".into() });
        }
        let (b, h) = src.page(no)?;
        if h.kind != Kind::FreeList {
            return Err(StoreError::Corrupt {
                page: no,
                what: format!("a {:?} page in the free list", h.kind),
            });
        }
        let n = page::u32_at(&b, HEADER_BYTES) as usize;
        for j in 0..n {
            let p = page::u64_at(&b, HEADER_BYTES + 4 + 8 * j);
            if !(2..pages).contains(&p) {
                return Err(StoreError::Corrupt {
                    page: no,
                    what: format!("the free list names page {p}, outside the {pages} pages in use"),
                });
            }
            free.push(p);
        }
        list.push(no);
        no = h.next;
    }
    Ok((list, free))
}
