//! Txn state words: `Active | Committing(lb) | Validating(ts) | Committed(ts) | Aborted` packed in
//! one `AtomicU64`.
//!
//! Layout: the top three bits are the tag, the low 61 bits the timestamp.
//!
//! ```text
//!  63  61 60                                                   0
//! +------+------------------------------------------------------+
//! | tag  |  lb (Committing) / ts (Validating, Committed) / 0    |
//! +------+------------------------------------------------------+
//!  000 Active   001 Committing   010 Committed   011 Aborted   100 Validating
//! ```
//!
//! Invariants: a state only moves forward — `Active → Committing(lb) → Committed(ts)` with
//! `lb <= ts`, or `Active → Aborted`; a serializable txn goes `Committing(lb) → Validating(ts)`
//! (its timestamp is known, its read set is being checked) `→ Committed(ts)` or `→ Aborted`. A state word outlives every version that points at it and is
//! never reused for another txn (reuse would resurrect aborted versions — INVARIANTS §3
//! hazards): it is either its own allocation, retired through the epoch collector once every
//! version of its txn is published or unlinked, or — for a txn that wrote one key — a field of
//! that key's version, freed with it (docs/UNSAFE.md §3).
//!
//! Concurrency: only the owning txn stores; anyone loads. Stores are Release and loads Acquire:
//! strictly the clock's release sequence already publishes `Committing` (INVARIANTS §3), but once a
//! version's `begin` is rewritten to a plain timestamp the state word must carry its own edge.

use crate::sync::{AtomicU64, Ordering};
use std::fmt;

const TAG_SHIFT: u32 = 61;
const VALUE_MASK: u64 = (1 << TAG_SHIFT) - 1;
const TAG_ACTIVE: u64 = 0;
const TAG_COMMITTING: u64 = 1;
const TAG_COMMITTED: u64 = 2;
const TAG_ABORTED: u64 = 3;
const TAG_VALIDATING: u64 = 4;

/// A unique txn identifier, for errors, logs and statistics (not an MVCC timestamp).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct TxnId(pub u64);

impl fmt::Display for TxnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "txn#{:x}", self.0)
    }
}

/// The decoded value of a state word.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum TxnStatus {
    /// Running (its versions, if any, are pending and invisible).
    Active,
    /// Publishing: its commit timestamp will be `>= lb`.
    Committing { lb: u64 },
    /// Serializable only: took timestamp `ts` and is checking its reads; it ends `Committed(ts)`
    /// or `Aborted`. Waited on (like `Committing`) only by snapshots at or above `ts`.
    Validating { ts: u64 },
    /// Committed at this timestamp.
    Committed { ts: u64 },
    /// Aborted: its versions are garbage and never become visible.
    Aborted,
}

impl TxnStatus {
    fn encode(self) -> u64 {
        match self {
            TxnStatus::Active => TAG_ACTIVE << TAG_SHIFT,
            TxnStatus::Committing { lb } => (TAG_COMMITTING << TAG_SHIFT) | (lb & VALUE_MASK),
            TxnStatus::Validating { ts } => (TAG_VALIDATING << TAG_SHIFT) | (ts & VALUE_MASK),
            TxnStatus::Committed { ts } => (TAG_COMMITTED << TAG_SHIFT) | (ts & VALUE_MASK),
            TxnStatus::Aborted => TAG_ABORTED << TAG_SHIFT,
        }
    }

    fn decode(word: u64) -> Self {
        let value = word & VALUE_MASK;
        match word >> TAG_SHIFT {
            TAG_ACTIVE => TxnStatus::Active,
            TAG_COMMITTING => TxnStatus::Committing { lb: value },
            TAG_COMMITTED => TxnStatus::Committed { ts: value },
            TAG_VALIDATING => TxnStatus::Validating { ts: value },
            _ => TxnStatus::Aborted,
        }
    }
}

/// The shared part of a write txn: its id and state word, referenced by its pending versions.
#[derive(Debug)]
pub struct TxnState {
    id: TxnId,
    word: AtomicU64,
}

impl TxnState {
    pub(crate) fn new(id: TxnId) -> Self {
        TxnState { id, word: AtomicU64::new(TxnStatus::Active.encode()) }
    }

    /// The owning txn's id.
    pub fn id(&self) -> TxnId {
        self.id
    }

    /// Acquire: pairs with the Release in `set`, so a reader that sees `Committed(ts)` also sees
    /// everything the committer wrote before it.
    pub fn status(&self) -> TxnStatus {
        TxnStatus::decode(self.word.load(Ordering::Acquire))
    }

    /// Moves the state forward. Release: pairs with the Acquire in `status`.
    pub(crate) fn set(&self, status: TxnStatus) {
        debug_assert!(
            !crate::sync::DEBUG_LOADS
                || match (self.status(), status) {
                    (TxnStatus::Active, TxnStatus::Committing { .. }) => true,
                    (TxnStatus::Active, TxnStatus::Aborted) => true,
                    (TxnStatus::Committing { lb }, TxnStatus::Committed { ts }) => lb <= ts,
                    (TxnStatus::Committing { lb }, TxnStatus::Validating { ts }) => lb <= ts,
                    (TxnStatus::Validating { ts }, TxnStatus::Committed { ts: t }) => ts == t,
                    (TxnStatus::Validating { .. }, TxnStatus::Aborted) => true,
                    #[cfg(any(loom, shuttle))]
                    (TxnStatus::Active, TxnStatus::Committed { .. }) =>
                        crate::canary::active(crate::canary::Canary::NoCommitting),
                    _ => false,
                },
            "illegal txn state transition {:?} -> {:?} for {}",
            self.status(),
            status,
            self.id
        );
        crate::lines::write(crate::lines::Site::StateWord, &self.word);
        self.word.store(status.encode(), Ordering::Release);
    }
}

#[cfg(all(test, not(any(loom, shuttle))))]
mod tests {
    use super::*;

    #[test]
    fn encoding_round_trips() {
        for s in [
            TxnStatus::Active,
            TxnStatus::Committing { lb: 7 },
            TxnStatus::Committed { ts: (1 << 61) - 1 },
            TxnStatus::Validating { ts: 12 },
            TxnStatus::Aborted,
        ] {
            assert_eq!(TxnStatus::decode(s.encode()), s);
        }
    }

    #[test]
    fn forward_transitions() {
        let st = TxnState::new(TxnId(1));
        assert_eq!(st.status(), TxnStatus::Active);
        st.set(TxnStatus::Committing { lb: 3 });
        st.set(TxnStatus::Committed { ts: 4 });
        assert_eq!(st.status(), TxnStatus::Committed { ts: 4 });
    }

    #[test]
    #[should_panic(expected = "illegal txn state transition")]
    #[cfg(debug_assertions)]
    fn backward_transition_is_caught() {
        let st = TxnState::new(TxnId(1));
        st.set(TxnStatus::Aborted);
        st.set(TxnStatus::Committing { lb: 1 });
    }
}
