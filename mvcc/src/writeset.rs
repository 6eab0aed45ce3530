//! A txn's buffered writes, in canonical key order (commit installs in this order, so two txns
//! over the same keys never abort each other for the wrong reason).
//!
//! Small txns (the common case: a few keys) use one sorted `Vec` — one allocation, binary
//! search, no tree nodes. A txn that writes its keys in ascending order (a bulk load) stays in
//! the `Vec` however many keys it writes: each new key is appended. Only a key that would land
//! in the middle of a `Vec` already holding `WRITESET_SMALL_MAX` keys moves the set to a
//! `BTreeMap`, so a large txn with keys in random order stays `O(n log n)`.

use crate::bytes::Bytes;
use crate::key::{KeyView, StoredKey};
use std::collections::BTreeMap;

/// Keys kept in the sorted-`Vec` form before an out-of-order key switches it to a `BTreeMap`.
pub const WRITESET_SMALL_MAX: usize = 64;

/// One buffered write: `None` deletes.
pub(crate) type Write = (StoredKey, Option<Bytes>);

#[derive(Debug)]
pub(crate) enum WriteSet {
    Small(Vec<Write>),
    Large(BTreeMap<StoredKey, Option<Bytes>>),
}

impl Default for WriteSet {
    fn default() -> Self {
        WriteSet::Small(Vec::new())
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

    /// The buffered write of `key`, if any (`Some(None)` is a buffered delete).
    pub(crate) fn get(&self, key: &dyn KeyView) -> Option<&Option<Bytes>> {
        match self {
            WriteSet::Small(v) => {
                v.binary_search_by(|(k, _)| k.as_view().cmp(key)).ok().map(|i| &v[i].1)
            }
            WriteSet::Large(m) => m.get(key),
        }
    }

    /// Buffers a write, replacing an earlier one to the same key. Returns whether the key is new.
    pub(crate) fn put(&mut self, key: &dyn KeyView, value: Option<Bytes>) -> bool {
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
    pub(crate) fn iter(&self) -> Box<dyn Iterator<Item = (&StoredKey, &Option<Bytes>)> + '_> {
        match self {
            WriteSet::Small(v) => Box::new(v.iter().map(|(k, b)| (k, b))),
            WriteSet::Large(m) => Box::new(m.iter()),
        }
    }

    /// The writes in key order, as one vector (free for the small form).
    pub(crate) fn into_sorted_vec(self) -> Vec<Write> {
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
            let val = (i % 7 != 0).then(|| Bytes::new(&i.to_le_bytes()));
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

    /// Keys written in ascending order stay in the vector however many there are; the first
    /// key out of order past the small limit moves the set to the tree, in order.
    #[test]
    fn ascending_keys_stay_in_the_vector() {
        let mut ws = WriteSet::default();
        let n = WRITESET_SMALL_MAX as u64 * 4;
        for i in 0..n {
            let key = (i * 2).to_be_bytes();
            assert!(ws.put(&(TableId(1), &key[..]), Some(Bytes::new(&key))));
        }
        assert!(matches!(ws, WriteSet::Small(_)), "an ascending load needs no tree");
        // A rewrite of a present key keeps the form; a key between two present ones does not.
        assert!(!ws.put(&(TableId(1), &6u64.to_be_bytes()[..]), None));
        assert!(matches!(ws, WriteSet::Small(_)));
        assert!(ws.put(&(TableId(1), &7u64.to_be_bytes()[..]), None));
        assert!(matches!(ws, WriteSet::Large(_)));
        assert_eq!(ws.len() as u64, n + 1);
        assert_eq!(ws.get(&(TableId(1), &6u64.to_be_bytes()[..])), Some(&None));
        assert_eq!(
            ws.get(&(TableId(1), &8u64.to_be_bytes()[..])),
            Some(&Some(Bytes::new(&8u64.to_be_bytes())))
        );
        let sorted = ws.into_sorted_vec();
        assert!(sorted.windows(2).all(|w| w[0].0 < w[1].0));
    }
}
