//! The base file's bytes: page and meta-page layouts, their checksums, and entry encoding.
//!
//! Every page is `PAGE_BYTES` long and starts with a 32-byte header:
//!
//! | bytes | field |
//! |---|---|
//! | 0..4 | CRC32C of bytes 4..`PAGE_BYTES` |
//! | 4 | kind: 1 leaf, 2 branch, 3 overflow, 4 free list |
//! | 5 | 0 |
//! | 6..8 | entries (leaf, branch) or 0 |
//! | 8..16 | the page's own number (a page written to the wrong place does not verify) |
//! | 16..24 | the generation (checkpoint) that wrote it |
//! | 24..32 | next page of an overflow or free-list chain (0: the last) |
//!
//! Leaf and branch bodies are slotted: `entries` little-endian u16 offsets (from the page start),
//! then the entries they point at, in key order. A leaf body starts with the prefix every key in
//! the leaf shares (`prefix len u16, bytes`; its slots follow), and stores each key without it:
//! a leaf entry is the key's suffix blob then the value blob. A branch entry is a child page
//! number (u64) then a key blob, the smallest key that child's subtree may hold (the first
//! entry's key is empty: it bounds nothing). A blob starts with a LEB128 varint `len << 1 |
//! chained`: inline (`chained` 0) the `len` bytes follow; in an overflow chain (1) the chain's
//! first page (u64) follows. A leaf holding a key in an overflow chain has an empty prefix, so a
//! chained key is always whole. Overflow pages carry `OVERFLOW_DATA_BYTES` of the blob each;
//! free-list pages carry a u32 count and that many u64 page numbers.
//!
//! Integers are little-endian. The two meta pages (pages 0 and 1) have their own layout
//! (`Meta`).

use crate::error::StoreError;

/// Bytes per page (and the unit the file grows and is read in).
pub const PAGE_BYTES: usize = 4096;
/// Header bytes at the start of every page.
pub const HEADER_BYTES: usize = 32;
/// Bytes after the header.
pub const BODY_BYTES: usize = PAGE_BYTES - HEADER_BYTES;
/// Blob bytes one overflow page carries.
pub const OVERFLOW_DATA_BYTES: usize = BODY_BYTES;
/// A key longer than this lives in an overflow chain.
pub const INLINE_KEY_BYTES_MAX: usize = 512;
/// A leaf entry whose inline form would be longer than this moves its value to an overflow
/// chain, so a leaf holds at least three entries.
pub const INLINE_ENTRY_BYTES_MAX: usize = 1024;
/// Page numbers a free-list page holds.
pub const FREE_PER_PAGE: usize = (BODY_BYTES - 4) / 8;

/// What a page holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Leaf = 1,
    Branch = 2,
    Overflow = 3,
    FreeList = 4,
}

impl Kind {
    fn from_byte(b: u8) -> Option<Kind> {
        match b {
            1 => Some(Kind::Leaf),
            2 => Some(Kind::Branch),
            3 => Some(Kind::Overflow),
            4 => Some(Kind::FreeList),
            _ => None,
        }
    }
}

pub(crate) fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

pub(crate) fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(a)
}

pub(crate) fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

/// A verified page: its kind and header fields. Verification checks the checksum, that the
/// page says it is page `no`, its kind, and (for slotted pages) that every slot and entry lies
/// inside the page, so later decoding indexes only within bounds.
#[derive(Clone, Copy, Debug)]
pub struct Header {
    pub kind: Kind,
    pub entries: usize,
    pub generation: u64,
    pub next: u64,
}

pub(crate) fn verify(no: u64, b: &[u8]) -> Result<Header, StoreError> {
    let bad = |what: String| StoreError::Corrupt { page: no, what };
    if b.len() != PAGE_BYTES {
        return Err(bad(format!("page is {} bytes, not {PAGE_BYTES}", b.len())));
    }
    let want = u32_at(b, 0);
    let got = crc32c::crc32c(&b[4..]);
    if want != got {
        return Err(bad(format!("checksum mismatch (stored {want:#010x}, computed {got:#010x})")));
    }
    let kind = Kind::from_byte(b[4]).ok_or_else(|| bad(format!("unknown page kind {}", b[4])))?;
    let says = u64_at(b, 8);
    if says != no {
        return Err(bad(format!("the page says it is page {says} (misplaced write)")));
    }
    let entries = usize::from(u16_at(b, 6));
    let h = Header { kind, entries, generation: u64_at(b, 16), next: u64_at(b, 24) };
    if matches!(kind, Kind::Leaf | Kind::Branch) {
        let slots = match kind {
            Kind::Leaf => HEADER_BYTES + 2 + usize::from(u16_at(b, HEADER_BYTES)),
            _ => HEADER_BYTES,
        };
        if slots + 2 * entries > PAGE_BYTES {
            return Err(bad(format!("a prefix and {entries} slots do not fit")));
        }
        for i in 0..entries {
            let at = usize::from(u16_at(b, slots + 2 * i));
            let len = match kind {
                Kind::Leaf => blob_len(b, at).and_then(|k| blob_len(b, at + k).map(|v| k + v)),
                _ => blob_len(b, at + 8).map(|k| k + 8),
            };
            match len {
                Some(len) if at >= slots + 2 * entries && at + len <= PAGE_BYTES => {}
                _ => return Err(bad(format!("entry {i} lies outside the page"))),
            }
        }
    } else if kind == Kind::FreeList {
        let n = u32_at(b, HEADER_BYTES) as usize;
        if n > FREE_PER_PAGE {
            return Err(bad(format!("free-list page claims {n} entries")));
        }
    }
    Ok(h)
}

/// Decodes the LEB128 varint at `at`: its value and length, if it lies inside `b` and is at
/// most 5 bytes (a blob's tag, a u32 length shifted by one, needs at most 33 bits).
fn varint(b: &[u8], at: usize) -> Option<(u64, usize)> {
    let mut v = 0u64;
    for i in 0..5 {
        let byte = *b.get(at + i)?;
        v |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some((v, i + 1));
        }
    }
    None
}

fn put_varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Bytes the varint of `v` takes.
pub(crate) fn varint_len(v: u64) -> usize {
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

/// The encoded length of the blob at `at`, if it lies inside `b`.
fn blob_len(b: &[u8], at: usize) -> Option<usize> {
    let (tag, n) = varint(b, at)?;
    let len = if tag & 1 == 0 { n + (tag >> 1) as usize } else { n + 8 };
    (at + len <= b.len()).then_some(len)
}

/// A blob as stored: the bytes, or where they are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Blob<'a> {
    Inline(&'a [u8]),
    Overflow { len: u32, first: u64 },
}

impl<'a> Blob<'a> {
    /// Decodes the blob at `at` (bounds were checked by `verify`); returns it and its length.
    pub(crate) fn at(b: &'a [u8], at: usize) -> (Blob<'a>, usize) {
        let (tag, n) = varint(b, at).unwrap_or((0, 1));
        let len = (tag >> 1) as usize;
        if tag & 1 == 0 {
            (Blob::Inline(&b[at + n..at + n + len]), n + len)
        } else {
            (Blob::Overflow { len: len as u32, first: u64_at(b, at + n) }, n + 8)
        }
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Blob::Inline(v) => {
                put_varint((v.len() as u64) << 1, out);
                out.extend_from_slice(v);
            }
            Blob::Overflow { len, first } => {
                put_varint(u64::from(*len) << 1 | 1, out);
                out.extend_from_slice(&first.to_le_bytes());
            }
        }
    }

    /// The encoded length of an inline blob of `len` bytes.
    pub(crate) fn inline_len(len: usize) -> usize {
        varint_len((len as u64) << 1) + len
    }

    /// The encoded length of a chained blob of `len` bytes.
    pub(crate) fn chained_len(len: usize) -> usize {
        varint_len((len as u64) << 1 | 1) + 8
    }
}

/// The prefix every key in a verified leaf shares.
pub(crate) fn leaf_prefix(b: &[u8]) -> &[u8] {
    let n = usize::from(u16_at(b, HEADER_BYTES));
    &b[HEADER_BYTES + 2..HEADER_BYTES + 2 + n]
}

/// The raw bytes of leaf entry `i` (key suffix blob and value blob), and of its two blobs.
pub(crate) fn leaf_entry(b: &[u8], i: usize) -> (&[u8], Blob<'_>, Blob<'_>) {
    let slots = HEADER_BYTES + 2 + usize::from(u16_at(b, HEADER_BYTES));
    let at = usize::from(u16_at(b, slots + 2 * i));
    let (k, kn) = Blob::at(b, at);
    let (v, vn) = Blob::at(b, at + kn);
    (&b[at..at + kn + vn], k, v)
}

/// Branch entry `i`: its child and key blob, and the key blob's raw bytes.
pub(crate) fn branch_entry(b: &[u8], i: usize) -> (u64, Blob<'_>, &[u8]) {
    let at = usize::from(u16_at(b, HEADER_BYTES + 2 * i));
    let child = u64_at(b, at);
    let (k, kn) = Blob::at(b, at + 8);
    (child, k, &b[at + 8..at + 8 + kn])
}

/// Fills in a page's header and checksum around a body already in `page[HEADER_BYTES..]`.
pub(crate) fn seal(
    page: &mut [u8],
    kind: Kind,
    entries: usize,
    no: u64,
    generation: u64,
    next: u64,
) {
    page[4] = kind as u8;
    page[5] = 0;
    page[6..8].copy_from_slice(&(entries as u16).to_le_bytes());
    page[8..16].copy_from_slice(&no.to_le_bytes());
    page[16..24].copy_from_slice(&generation.to_le_bytes());
    page[24..32].copy_from_slice(&next.to_le_bytes());
    let crc = crc32c::crc32c(&page[4..]);
    page[0..4].copy_from_slice(&crc.to_le_bytes());
}

/// Lays out slotted entries (each already encoded) into a page body, after a leaf's key prefix
/// (`Some`; `None` for a branch); `None` if they do not fit.
pub(crate) fn slotted(prefix: Option<&[u8]>, entries: &[&[u8]]) -> Option<Box<[u8]>> {
    let mut page = vec![0u8; PAGE_BYTES].into_boxed_slice();
    let mut slots = HEADER_BYTES;
    if let Some(p) = prefix {
        if HEADER_BYTES + 2 + p.len() > PAGE_BYTES || p.len() > usize::from(u16::MAX) {
            return None;
        }
        page[HEADER_BYTES..HEADER_BYTES + 2].copy_from_slice(&(p.len() as u16).to_le_bytes());
        page[HEADER_BYTES + 2..HEADER_BYTES + 2 + p.len()].copy_from_slice(p);
        slots += 2 + p.len();
    }
    let mut at = slots + 2 * entries.len();
    for (i, e) in entries.iter().enumerate() {
        if at + e.len() > PAGE_BYTES {
            return None;
        }
        page[slots + 2 * i..slots + 2 * i + 2].copy_from_slice(&(at as u16).to_le_bytes());
        page[at..at + e.len()].copy_from_slice(e);
        at += e.len();
    }
    Some(page)
}

/// Bytes a slotted entry of `len` bytes takes (the entry and its slot).
pub(crate) fn slotted_cost(len: usize) -> usize {
    len + 2
}

/// The magic at the start of a meta page.
pub const MAGIC: [u8; 8] = *b"STRATAB\0";
/// The base file format this build writes and reads.
///
/// 1: the first format (fixed-width blob lengths, whole keys in leaves); 2: leaf key prefixes
/// and varint blob tags. A file of another version is refused (`MetaProblem::Version`).
pub const FORMAT_VERSION: u32 = 2;
/// Bytes of a meta page that are used (and checksummed); the rest is zero.
pub const META_BYTES: usize = 128;

/// A meta page: where the tree of one checkpoint is. Two slots (pages 0 and 1); a checkpoint
/// writes the slot of its generation's parity, so the other keeps the previous one.
///
/// | bytes | field |
/// |---|---|
/// | 0..4 | CRC32C of bytes 4..`META_BYTES` |
/// | 4..12 | `MAGIC` |
/// | 12..16 | format version |
/// | 16..20 | page size |
/// | 20..24 | 0 |
/// | 24..32 | generation |
/// | 32..40 | checkpoint timestamp |
/// | 40..48 | root page (0: empty tree) |
/// | 48..56 | tree height (0: empty; 1: the root is a leaf) |
/// | 56..64 | pages in use (the file may be longer) |
/// | 64..72 | rows |
/// | 72..80 | first free-list page (0: none) |
/// | 80..88 | free pages listed |
/// | 88..96 | the owner's value (the engine: where its log continues) |
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Meta {
    pub generation: u64,
    pub ts: u64,
    pub root: u64,
    pub height: u64,
    pub pages: u64,
    pub rows: u64,
    pub free_list: u64,
    pub free_pages: u64,
    pub user: u64,
}

/// Why a meta slot was not usable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MetaProblem {
    /// All zero: never written.
    Blank,
    /// Not a Strata base file.
    NotABase,
    /// A base file of another format version.
    Version(u32),
    /// Damaged (or torn by a crash while being written).
    Damaged(String),
}

impl Meta {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut b = vec![0u8; PAGE_BYTES];
        b[4..12].copy_from_slice(&MAGIC);
        b[12..16].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        b[16..20].copy_from_slice(&(PAGE_BYTES as u32).to_le_bytes());
        let fields = [
            self.generation,
            self.ts,
            self.root,
            self.height,
            self.pages,
            self.rows,
            self.free_list,
            self.free_pages,
            self.user,
        ];
        for (i, f) in fields.iter().enumerate() {
            b[24 + 8 * i..32 + 8 * i].copy_from_slice(&f.to_le_bytes());
        }
        let crc = crc32c::crc32c(&b[4..META_BYTES]);
        b[0..4].copy_from_slice(&crc.to_le_bytes());
        b
    }

    pub(crate) fn decode(b: &[u8]) -> Result<Meta, MetaProblem> {
        if b.len() < META_BYTES {
            return Err(MetaProblem::Damaged(format!("only {} bytes", b.len())));
        }
        if b[..META_BYTES].iter().all(|x| *x == 0) {
            return Err(MetaProblem::Blank);
        }
        if b[4..12] != MAGIC {
            return Err(MetaProblem::NotABase);
        }
        let want = u32_at(b, 0);
        if crc32c::crc32c(&b[4..META_BYTES]) != want {
            return Err(MetaProblem::Damaged("checksum mismatch".into()));
        }
        let version = u32_at(b, 12);
        if version != FORMAT_VERSION {
            return Err(MetaProblem::Version(version));
        }
        let page = u32_at(b, 16) as usize;
        if page != PAGE_BYTES {
            return Err(MetaProblem::Damaged(format!("page size {page}, not {PAGE_BYTES}")));
        }
        let f = |i: usize| u64_at(b, 24 + 8 * i);
        let m = Meta {
            generation: f(0),
            ts: f(1),
            root: f(2),
            height: f(3),
            pages: f(4),
            rows: f(5),
            free_list: f(6),
            free_pages: f(7),
            user: f(8),
        };
        let in_file = |p: u64| p == 0 || (2..m.pages).contains(&p);
        if !in_file(m.root) || !in_file(m.free_list) || m.pages < 2 {
            return Err(MetaProblem::Damaged(format!(
                "root {} or free list {} outside the {} pages in use",
                m.root, m.free_list, m.pages
            )));
        }
        if (m.root == 0) != (m.height == 0) || m.height > 64 {
            return Err(MetaProblem::Damaged(format!("root {} with height {}", m.root, m.height)));
        }
        Ok(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_page_verifies_and_any_flipped_bit_does_not() {
        let e1 = {
            let mut e = Vec::new();
            Blob::Inline(b"key").encode(&mut e);
            Blob::Inline(b"value").encode(&mut e);
            e
        };
        let mut page = slotted(Some(b"pre"), &[&e1]).unwrap();
        seal(&mut page, Kind::Leaf, 1, 7, 3, 0);
        let h = verify(7, &page).unwrap();
        assert_eq!((h.kind, h.entries, h.generation), (Kind::Leaf, 1, 3));
        let (_, k, v) = leaf_entry(&page, 0);
        assert_eq!((k, v), (Blob::Inline(b"key"), Blob::Inline(b"value")));
        assert_eq!(leaf_prefix(&page), b"pre");
        assert!(verify(8, &page).is_err(), "a page read from the wrong place");
        for bit in (0..PAGE_BYTES * 8).step_by(97) {
            let mut bad = page.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            assert!(verify(7, &bad).is_err(), "bit {bit}");
        }
    }

    #[test]
    fn blobs_round_trip_with_one_and_two_byte_tags_and_truncated_tags_do_not_verify() {
        let long = vec![7u8; 300];
        for blob in [
            Blob::Inline(b""),
            Blob::Inline(b"abc"),
            Blob::Inline(&long[..63]),
            Blob::Inline(&long[..64]),
            Blob::Inline(&long),
            Blob::Overflow { len: 5000, first: 9 },
            Blob::Overflow { len: u32::MAX >> 1, first: u64::MAX },
        ] {
            let mut e = vec![0xAA];
            blob.encode(&mut e);
            let want = match blob {
                Blob::Inline(v) => Blob::inline_len(v.len()),
                Blob::Overflow { len, .. } => Blob::chained_len(len as usize),
            };
            assert_eq!(e.len() - 1, want, "{blob:?}");
            assert_eq!(blob_len(&e, 1), Some(want));
            assert_eq!(Blob::at(&e, 1), (blob, want));
            assert_eq!(blob_len(&e[..e.len() - 1], 1), None, "cut short: {blob:?}");
        }
        // A tag that never ends is not a blob.
        assert_eq!(blob_len(&[0xFF; 12], 0), None);
        assert_eq!(varint_len(0), 1);
        assert_eq!(varint_len(127), 1);
        assert_eq!(varint_len(128), 2);
    }

    #[test]
    fn meta_round_trips_and_refuses_other_versions_and_files() {
        let m = Meta {
            generation: 9,
            ts: 77,
            root: 5,
            height: 2,
            pages: 10,
            rows: 3,
            ..Meta::default()
        };
        let b = m.encode();
        assert_eq!(Meta::decode(&b), Ok(m));
        assert_eq!(Meta::decode(&vec![0u8; PAGE_BYTES]), Err(MetaProblem::Blank));
        let mut other = b.clone();
        other[12..16].copy_from_slice(&1u32.to_le_bytes());
        let crc = crc32c::crc32c(&other[4..META_BYTES]);
        other[0..4].copy_from_slice(&crc.to_le_bytes());
        assert_eq!(Meta::decode(&other), Err(MetaProblem::Version(1)));
        assert_eq!(Meta::decode(&[b'x'; PAGE_BYTES]), Err(MetaProblem::NotABase));
        let mut torn = b;
        torn[40] ^= 1;
        assert!(matches!(Meta::decode(&torn), Err(MetaProblem::Damaged(_))));
    }
}
