//! A reference model of snapshot isolation with first-committer-wins: a plain sequential
//! structure holding every committed version and each open txn's snapshot and write set. It is
//! deliberately naive (no GC, no sharing, whole histories kept) so that it is obviously right;
//! the engine is checked against it operation by operation.

use std::collections::BTreeMap;

/// Key and value types of the model (small domains make conflicts and overwrites likely).
pub type Key = u8;
pub type Value = u8;

/// One open txn of the model.
#[derive(Clone, Debug)]
pub struct ModelTxn {
    pub read_ts: u64,
    pub read_only: bool,
    pub writes: BTreeMap<Key, Option<Value>>,
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
    /// Per key, committed versions oldest first: `(commit_ts, value or tombstone)`.
    versions: BTreeMap<Key, Vec<(u64, Option<Value>)>>,
}

impl SiModel {
    /// A txn whose snapshot is now.
    pub fn begin(&self, read_only: bool) -> ModelTxn {
        ModelTxn { read_ts: self.clock, read_only, writes: BTreeMap::new() }
    }

    fn committed(&self, key: Key, ts: u64) -> Option<Value> {
        self.versions.get(&key)?.iter().rev().find(|(t, _)| *t <= ts).and_then(|(_, v)| *v)
    }

    /// What `txn` reads for `key`.
    pub fn get(&self, txn: &ModelTxn, key: Key) -> Option<Value> {
        match txn.writes.get(&key) {
            Some(own) => *own,
            None => self.committed(key, txn.read_ts),
        }
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
        let newer = |k: &Key| {
            self.versions.get(k).and_then(|v| v.last()).is_some_and(|(t, _)| *t > txn.read_ts)
        };
        if txn.writes.keys().any(newer) {
            return ModelCommit::Conflict;
        }
        self.clock += 1;
        for (k, v) in txn.writes {
            self.versions.entry(k).or_default().push((self.clock, v));
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
        a.writes.insert(1, Some(10));
        b.writes.insert(1, Some(20));
        assert_eq!(m.commit(a), ModelCommit::Committed(1));
        assert_eq!(m.commit(b), ModelCommit::Conflict);
        let c = m.begin(true);
        assert_eq!(m.get(&c, 1), Some(10));
        assert_eq!(m.scan(&c), vec![(1, 10)]);
    }
}
