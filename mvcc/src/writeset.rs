//! A txn's buffered writes, in canonical key order (commit installs in this order, so two txns
//! over the same keys never abort each other for the wrong reason).
//!
//! Small txns (the common case: a few keys) use one sorted vector — binary search, no tree
//! nodes, and its first write held inline, so a txn that writes one key allocates nothing for
//! its write set (`Writes`). A txn that writes its keys in ascending order (a bulk load) stays
//! in the vector however many keys it writes: each new key is appended. Only a key that would
//! land in the middle of a vector already holding `WRITESET_SMALL_MAX` keys moves the set to a
//! `BTreeMap`, so a large txn with keys in random order stays `O(n log n)`.

use crate::bytes::Bytes;
use crate::key::{KeyView, StoredKey};
use crate::merge::MergeOp;
use smallvec::SmallVec;
use std::collections::{btree_map, BTreeMap};

/// Keys kept in the sorted-`Vec` form before an out-of-order key switches it to a `BTreeMap`.
pub const WRITESET_SMALL_MAX: usize = 64;

/// What a txn does to one key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    /// Sets the value.
    Put(Bytes),
    /// Deletes the row.
    Delete,
    /// Applies a merge to the newest committed value when the commit installs it (`merge.rs`).
    Merge(MergeOp),
}

impl Op {
    /// A put of `Some`, a delete of `None`.
    pub(crate) fn of(value: Option<&[u8]>) -> Op {
        value.map_or(Op::Delete, |v| Op::Put(Bytes::new(v)))
    }
}

/// One buffered write.
pub(crate) type Write = (StoredKey, Op);

/// A txn's writes in key order, as its commit hands them to the store: the first one inline.
pub(crate) type Writes = SmallVec<[Write; 1]>;

/// A write as a txn's owner hands it over or reads it back (`Txn::writes`, `Mvcc::apply`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteOp<'a> {
    /// Sets the value.
    Put(&'a [u8]),
    /// Deletes the row.
    Delete,
    /// A merge, applied at commit to the newest committed value (`Txn::merge`).
    Merge(MergeOp),
}

impl<'a> From<Option<&'a [u8]>> for WriteOp<'a> {
    /// `Some` puts, `None` deletes.
    fn from(value: Option<&'a [u8]>) -> Self {
        value.map_or(WriteOp::Delete, WriteOp::Put)
    }
}

impl From<WriteOp<'_>> for Op {
    fn from(op: WriteOp<'_>) -> Op {
        match op {
            WriteOp::Put(v) => Op::Put(Bytes::new(v)),
            WriteOp::Delete => Op::Delete,
            WriteOp::Merge(m) => Op::Merge(m),
        }
    }
}

#[derive(Debug)]
pub(crate) enum WriteSet {
    Small(Writes),
    Large(BTreeMap<StoredKey, Op>),
}

impl Default for WriteSet {
    fn default() -> Self {
        WriteSet::Small(Writes::new())
    }
}

/// `WriteSet::iter`: either form's iterator, without boxing it.
pub(crate) enum Iter<'a> {
    Small(std::slice::Iter<'a, Write>),
    Large(btree_map::Iter<'a, StoredKey, Op>),
}

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a StoredKey, &'a Op);

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Iter::Small(it) => it.next().map(|(k, op)| (k, op)),
            Iter::Large(it) => it.next(),
        }
    }
}

impl WriteSet {
    pub(crate) fn len(&self) -> usize {
        match self {
            WriteSet::Small(v) => v.len(),
            WriteSet::Large(m) => m.len(),
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The buffered write of `key`, if any.
    pub(crate) fn get(&self, key: &dyn KeyView) -> Option<&Op> {
        match self {
            WriteSet::Small(v) => {
                v.binary_search_by(|(k, _)| k.as_view().cmp(key)).ok().map(|i| &v[i].1)
            }
            WriteSet::Large(m) => m.get(key),
        }
    }

    /// Buffers a write, replacing an earlier one to the same key. Returns whether the key is new.
    pub(crate) fn put(&mut self, key: &dyn KeyView, value: Op) -> bool {
        match self {
            WriteSet::Small(v) => {
                // Fast path for keys written in ascending order (bulk loads).
                let pos = match v.last() {
                    Some((last, _)) if last.as_view() < key => Err(v.len()),
                    None => Err(0),
                    _ => v.binary_search_by(|(k, _)| k.as_view().cmp(key)),
                };
                match pos {
                    Ok(i) => {
                        v[i].1 = value;
                        false
                    }
                    Err(i) if i == v.len() || v.len() < WRITESET_SMALL_MAX => {
                        v.insert(i, (StoredKey::new(key.table(), key.bytes()), value));
                        true
                    }
                    Err(_) => {
                        let mut m: BTreeMap<_, _> = std::mem::take(v).into_iter().collect();
                        m.insert(StoredKey::new(key.table(), key.bytes()), value);
                        *self = WriteSet::Large(m);
                        true
                    }
                }
            }
            WriteSet::Large(m) => match m.get_mut(key) {
                Some(slot) => {
                    *slot = value;
                    false
                }
                None => {
                    m.insert(StoredKey::new(key.table(), key.bytes()), value);
                    true
                }
            },
        }
    }

    /// The writes in key order.
    pub(crate) fn iter(&self) -> Iter<'_> {
        match self {
            WriteSet::Small(v) => Iter::Small(v.iter()),
            WriteSet::Large(m) => Iter::Large(m.iter()),
        }
    }

    /// The writes in key order, as one vector (free for the small form).
    pub(crate) fn into_sorted_vec(self) -> Writes {
        match self {
            WriteSet::Small(v) => v,
            WriteSet::Large(m) => m.into_iter().collect(),
        }
    }

    pub(crate) fn clear(&mut self) {
        *self = WriteSet::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::TableId;

    #[test]
    fn stays_sorted_across_the_switch_to_a_tree() {
        let mut ws = WriteSet::default();
        let mut expect = BTreeMap::new();
        let mut x = 12345u64;
        for i in 0..500u64 {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let key = (x >> 56).to_be_bytes();
            let val = if i % 7 != 0 { Op::Put(Bytes::new(&i.to_le_bytes())) } else { Op::Delete };
            let probe: (TableId, &[u8]) = (TableId(1), &key);
            ws.put(&probe, val.clone());
            expect.insert(key.to_vec(), val);
            let got = ws.get(&probe).cloned();
            assert_eq!(got, Some(expect[&key.to_vec()].clone()));
        }
        assert_eq!(ws.len(), expect.len());
        assert!(matches!(ws, WriteSet::Large(_)));
        let keys: Vec<Vec<u8>> = ws.iter().map(|(k, _)| k.bytes().to_vec()).collect();
        assert_eq!(keys, expect.keys().cloned().collect::<Vec<_>>());
        let sorted = ws.into_sorted_vec();
        assert!(sorted.windows(2).all(|w| w[0].0 < w[1].0));
    }

    /// A one-key txn's write set holds its write inline (no allocation), also after the write
    /// is replaced; a second key moves it to the heap, in order.
    #[test]
    fn one_write_is_held_inline() {
        let mut ws = WriteSet::default();
        assert!(ws.put(&(TableId(1), &b"k"[..]), Op::Put(Bytes::new(b"a"))));
        assert!(!ws.put(&(TableId(1), &b"k"[..]), Op::Delete));
        assert!(matches!(&ws, WriteSet::Small(v) if !v.spilled() && v.len() == 1));
        assert!(ws.put(&(TableId(1), &b"a"[..]), Op::Delete));
        assert!(matches!(&ws, WriteSet::Small(v) if v.spilled()));
        let keys: Vec<&[u8]> = ws.iter().map(|(k, _)| k.bytes()).collect();
        assert_eq!(keys, [&b"a"[..], &b"k"[..]]);
    }

    /// Keys written in ascending order stay in the vector however many there are; the first
    /// key out of order past the small limit moves the set to the tree, in order.
    #[test]
    fn ascending_keys_stay_in_the_vector() {
        let mut ws = WriteSet::default();
        let n = WRITESET_SMALL_MAX as u64 * 4;
        for i in 0..n {
            let key = (i * 2).to_be_bytes();
            assert!(ws.put(&(TableId(1), &key[..]), Op::Put(Bytes::new(&key))));
        }
        assert!(matches!(ws, WriteSet::Small(_)), "an ascending load needs no tree");
        // A rewrite of a present key keeps the form; a key between two present ones does not.
        assert!(!ws.put(&(TableId(1), &6u64.to_be_bytes()[..]), Op::Delete));
        assert!(matches!(ws, WriteSet::Small(_)));
        assert!(ws.put(&(TableId(1), &7u64.to_be_bytes()[..]), Op::Delete));
        assert!(matches!(ws, WriteSet::Large(_)));
        assert_eq!(ws.len() as u64, n + 1);
        assert_eq!(ws.get(&(TableId(1), &6u64.to_be_bytes()[..])), Some(&Op::Delete));
        assert_eq!(
            ws.get(&(TableId(1), &8u64.to_be_bytes()[..])),
            Some(&Op::Put(Bytes::new(&8u64.to_be_bytes())))
        );
        let sorted = ws.into_sorted_vec();
        assert!(sorted.windows(2).all(|w| w[0].0 < w[1].0));
    }
}
