//! The base under the chains, as the core sees it: a read-only view of the newest checkpointed
//! version of every key, kept by the owner (the engine, over `strata-store`).
//!
//! A read looks at the chains first; only where they hold no version visible to the snapshot
//! (`store::Lookup::Unknown`) does it ask the base. For that to be right, the base must answer
//! as of a checkpoint `C <= read_ts` such that every version of the key in `(C, read_ts]` is
//! still in its chain — which holds if the base answers from the newest checkpoint at or below
//! `read_ts` among those it has published, and GC removes a chain only when its newest version
//! is at or below a published checkpoint that every live snapshot is at or above
//! (`store::SealRule::Checkpointed`). `docs/design/storage.md` has the argument in full.

use crate::clock::Timestamp;
use crate::key::TableId;
use crate::range::{KeyRange, Row};
use std::fmt;
use std::ops::ControlFlow;

/// What a borrowed-row scan calls with each row (key, value): `Break` stops the scan.
pub type RowVisitor<'a> = dyn FnMut(&[u8], &[u8]) -> ControlFlow<()> + 'a;

/// A base the core reads through. Errors are strings the core reports as `MvccError::Base`.
pub trait BaseReader: Send + Sync + fmt::Debug {
    /// The value of `key` in the newest published checkpoint at or below `read_ts`.
    fn get(
        &self,
        table: TableId,
        key: &[u8],
        read_ts: Timestamp,
    ) -> Result<Option<Vec<u8>>, String>;

    /// Calls `f` once with the value of `key` in that checkpoint, borrowed where the base can
    /// lend it (valid for the call only). By default a copy, through `get`.
    fn get_with(
        &self,
        table: TableId,
        key: &[u8],
        read_ts: Timestamp,
        f: &mut dyn FnMut(Option<&[u8]>),
    ) -> Result<(), String> {
        f(self.get(table, key, read_ts)?.as_deref());
        Ok(())
    }

    /// Appends to `out` at most `max_rows` rows of `range` from that checkpoint, in key order
    /// (`reverse`: descending).
    fn range(
        &self,
        range: &KeyRange,
        reverse: bool,
        read_ts: Timestamp,
        max_rows: usize,
        out: &mut Vec<Row>,
    ) -> Result<(), String>;

    /// Hands `f` the rows of `range` from that checkpoint in key order (`reverse`:
    /// descending), borrowed, until the range ends or `f` breaks; returns whether `f` broke.
    fn visit(
        &self,
        range: &KeyRange,
        reverse: bool,
        read_ts: Timestamp,
        f: &mut RowVisitor<'_>,
    ) -> Result<ControlFlow<()>, String>;

    /// The newest published checkpoint at or below `ts` (`Timestamp::ZERO`: none).
    fn checkpoint_at_or_below(&self, ts: Timestamp) -> Timestamp;
}
