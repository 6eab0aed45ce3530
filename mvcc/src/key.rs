//! Keys: `(TableId, bytes)`, stored owned and looked up borrowed without allocating.
//!
//! The index is keyed by `StoredKey`; lookups pass `&dyn KeyView` (a `(TableId, &[u8])` pair),
//! which `StoredKey` borrows as. `Hash`, `Eq` and `Ord` are defined once, on `dyn KeyView`, and
//! `StoredKey` delegates to them, so `Borrow`'s contract (equal hashes and order) holds by
//! construction.

use crate::bytes::Bytes;
use std::borrow::Borrow;
use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};

/// A table's identity inside the engine (never reused after a drop).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct TableId(pub u32);

impl fmt::Display for TableId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "table#{}", self.0)
    }
}

/// A borrowed view of a key.
pub trait KeyView {
    fn table(&self) -> TableId;
    fn bytes(&self) -> &[u8];
}

impl KeyView for (TableId, &[u8]) {
    fn table(&self) -> TableId {
        self.0
    }
    fn bytes(&self) -> &[u8] {
        self.1
    }
}

impl Hash for dyn KeyView + '_ {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u32(self.table().0);
        state.write(self.bytes());
    }
}

impl PartialEq for dyn KeyView + '_ {
    fn eq(&self, other: &Self) -> bool {
        self.table() == other.table() && self.bytes() == other.bytes()
    }
}

impl Eq for dyn KeyView + '_ {}

impl PartialOrd for dyn KeyView + '_ {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for dyn KeyView + '_ {
    fn cmp(&self, other: &Self) -> Ordering {
        self.table().cmp(&other.table()).then_with(|| self.bytes().cmp(other.bytes()))
    }
}

/// An owned key.
#[derive(Clone)]
pub struct StoredKey {
    table: TableId,
    bytes: Bytes,
}

impl StoredKey {
    pub fn new(table: TableId, bytes: &[u8]) -> Self {
        StoredKey { table, bytes: Bytes::new(bytes) }
    }

    pub fn as_view(&self) -> &(dyn KeyView + '_) {
        self
    }
}

impl KeyView for StoredKey {
    fn table(&self) -> TableId {
        self.table
    }
    fn bytes(&self) -> &[u8] {
        self.bytes.as_slice()
    }
}

impl fmt::Debug for StoredKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.bytes.as_slice();
        write!(f, "{}:{:02x?}", self.table, &b[..b.len().min(16)])
    }
}

impl<'a> Borrow<dyn KeyView + 'a> for StoredKey {
    fn borrow(&self) -> &(dyn KeyView + 'a) {
        self
    }
}

impl Hash for StoredKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_view().hash(state)
    }
}

impl PartialEq for StoredKey {
    fn eq(&self, other: &Self) -> bool {
        self.as_view() == other.as_view()
    }
}

impl Eq for StoredKey {}

impl PartialOrd for StoredKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for StoredKey {
    fn cmp(&self, other: &Self) -> Ordering {
        self.as_view().cmp(other.as_view())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeMap, HashMap};

    #[test]
    fn borrowed_lookups_match_owned_keys() {
        let mut h = HashMap::new();
        let mut b = BTreeMap::new();
        for (t, k) in [(1, &b"a"[..]), (1, b"b"), (2, b"a")] {
            h.insert(StoredKey::new(TableId(t), k), t);
            b.insert(StoredKey::new(TableId(t), k), t);
        }
        let probe: (TableId, &[u8]) = (TableId(2), b"a");
        assert_eq!(h.get(&probe as &dyn KeyView), Some(&2));
        assert_eq!(b.get(&probe as &dyn KeyView), Some(&2));
        let missing: (TableId, &[u8]) = (TableId(3), b"a");
        assert_eq!(h.get(&missing as &dyn KeyView), None);
        let order: Vec<_> = b.keys().map(|k| (k.table().0, k.bytes().to_vec())).collect();
        assert_eq!(order, vec![(1, b"a".to_vec()), (1, b"b".to_vec()), (2, b"a".to_vec())]);
    }
}
