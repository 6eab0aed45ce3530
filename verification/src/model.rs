//! A reference model of snapshot isolation with first-committer-wins: a plain sequential
//! structure holding every committed version and each open txn's snapshot and write set. It is
//! deliberately naive (no GC, no sharing, whole histories kept) so that it is obviously right;
//! the engine is checked against it operation by operation.
//!
//! Merges (`ModelWrite::Add`): an add commits over adds committed after its snapshot but not
//! over a put or delete, and adds to the newest committed value (absent: 0); a txn reads its
//! own add on its snapshot's value; an add over the txn's own put or delete applies at once.

use std::collections::BTreeMap;

/// Key and value types of the model (small domains make conflicts and overwrites likely).
pub type Key = u8;
pub type Value = i64;

/// What a txn does to one key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModelWrite {
    Put(Value),
    Delete,
    /// A merge: add to the newest committed value at commit.
    Add(Value),
}

/// One open txn of the model.
#[derive(Clone, Debug)]
pub struct ModelTxn {
    pub read_ts: u64,
    pub read_only: bool,
    pub writes: BTreeMap<Key, ModelWrite>,
}

impl ModelTxn {
    /// Buffers a put (`Some`) or delete (`None`).
    pub fn write(&mut self, key: Key, value: Option<Value>) {
        self.writes.insert(key, value.map_or(ModelWrite::Delete, ModelWrite::Put));
    }
}

/// Outcome of a commit in the model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModelCommit {
    /// Committed at this timestamp (a txn that wrote nothing reports its snapshot).
    Committed(u64),
    /// First-committer-wins rejected it.
    Conflict,
}

/// The reference model.
#[derive(Clone, Debug, Default)]
pub struct SiModel {
    clock: u64,
    /// Per key, committed versions oldest first: `(commit_ts, value or tombstone, by a merge)`.
    versions: BTreeMap<Key, Vec<(u64, Option<Value>, bool)>>,
}

impl SiModel {
    /// A txn whose snapshot is now.
    pub fn begin(&self, read_only: bool) -> ModelTxn {
        ModelTxn { read_ts: self.clock, read_only, writes: BTreeMap::new() }
    }

    fn committed(&self, key: Key, ts: u64) -> Option<Value> {
        self.versions.get(&key)?.iter().rev().find(|(t, ..)| *t <= ts).and_then(|(_, v, _)| *v)
    }

    /// What `txn` reads for `key`.
    pub fn get(&self, txn: &ModelTxn, key: Key) -> Option<Value> {
        match txn.writes.get(&key) {
            Some(ModelWrite::Put(v)) => Some(*v),
            Some(ModelWrite::Delete) => None,
            Some(ModelWrite::Add(d)) => Some(self.committed(key, txn.read_ts).unwrap_or(0) + d),
            None => self.committed(key, txn.read_ts),
        }
    }

    /// Buffers an add of `delta` to `key` in `txn`.
    pub fn add(&self, txn: &mut ModelTxn, key: Key, delta: Value) {
        let write = match txn.writes.get(&key) {
            None => ModelWrite::Add(delta),
            Some(ModelWrite::Add(d)) => ModelWrite::Add(d + delta),
            Some(ModelWrite::Put(v)) => ModelWrite::Put(v + delta),
            Some(ModelWrite::Delete) => ModelWrite::Put(delta),
        };
        txn.writes.insert(key, write);
    }

    /// Every row `txn` sees, in key order.
    pub fn scan(&self, txn: &ModelTxn) -> Vec<(Key, Value)> {
        let mut keys: Vec<Key> = self.versions.keys().copied().collect();
        keys.extend(txn.writes.keys().copied());
        keys.sort_unstable();
        keys.dedup();
        keys.into_iter().filter_map(|k| self.get(txn, k).map(|v| (k, v))).collect()
    }

    /// Commits `txn`: first committer wins on every written key.
    pub fn commit(&mut self, txn: ModelTxn) -> ModelCommit {
        if txn.writes.is_empty() {
            return ModelCommit::Committed(txn.read_ts);
        }
        // A put or delete loses to any commit after the snapshot; an add only to a put or delete.
        let conflicts = |(k, w): (&Key, &ModelWrite)| {
            let after =
                self.versions.get(k).into_iter().flatten().filter(|(t, ..)| *t > txn.read_ts);
            let mut after = after.filter(|(.., merge)| !matches!(w, ModelWrite::Add(_)) || !*merge);
            after.next().is_some()
        };
        if txn.writes.iter().any(conflicts) {
            return ModelCommit::Conflict;
        }
        self.clock += 1;
        for (k, w) in txn.writes {
            let newest = self.versions.get(&k).and_then(|v| v.last()).and_then(|(_, v, _)| *v);
            let version = match w {
                ModelWrite::Put(v) => (self.clock, Some(v), false),
                ModelWrite::Delete => (self.clock, None, false),
                ModelWrite::Add(d) => (self.clock, Some(newest.unwrap_or(0) + d), true),
            };
            self.versions.entry(k).or_default().push(version);
        }
        ModelCommit::Committed(self.clock)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_model_itself_behaves() {
        let mut m = SiModel::default();
        let mut a = m.begin(false);
        let mut b = m.begin(false);
        a.write(1, Some(10));
        b.write(1, Some(20));
        assert_eq!(m.commit(a), ModelCommit::Committed(1));
        assert_eq!(m.commit(b), ModelCommit::Conflict);
        let c = m.begin(true);
        assert_eq!(m.get(&c, 1), Some(10));
        assert_eq!(m.scan(&c), vec![(1, 10)]);
        // Adds commit over each other, not over a put.
        let (mut x, mut y, mut p) = (m.begin(false), m.begin(false), m.begin(false));
        m.add(&mut x, 1, 1);
        m.add(&mut y, 1, 2);
        p.write(1, Some(0));
        assert_eq!(m.get(&x, 1), Some(11));
        assert_eq!(m.commit(x), ModelCommit::Committed(2));
        assert_eq!(m.commit(y), ModelCommit::Committed(3));
        assert_eq!(m.commit(p), ModelCommit::Conflict);
        assert_eq!(m.get(&m.begin(true), 1), Some(13));
    }
}
