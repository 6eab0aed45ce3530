//! Merges: commutative writes that never conflict with each other (docs/adr/0014-merge.md).
//!
//! A merge (`Txn::merge`) records *how* to change a value, not the value: "add 5". It still
//! conflicts, first committer wins, with a concurrent put or delete of its key, but two txns
//! that merge into one key both commit. The store applies a merge when it installs it, to the
//! newest committed version of the key (or to the base's row, or to nothing) — never to the
//! txn's snapshot — so every version in a chain holds a whole value: readers, GC, checkpoints
//! and range scans see ordinary versions, and a run of merges is folded as it is made.
//!
//! The operators are built in and kept simple: an `i64` add to a value that is one integer
//! (`MergeOp::Add`, a counter) or to an integer field at a known offset inside a row
//! (`MergeOp::AddAt`, what the SQL layer uses for `SET n = n + ?`). Both are commutative, so
//! the order concurrent merges install in does not change the result. Overflow, a value of the
//! wrong length and a field past the row's end are typed errors (`MergeError`): the txn that
//! merged fails at commit with `MvccError::Merge` and nothing of it becomes visible.

use crate::bytes::Bytes;

/// A merge operator with its operand.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MergeOp {
    /// Adds to a value that is one `i64`, 8 bytes little-endian. An absent or deleted value
    /// counts as 0, so the first merge into a new key creates it.
    Add(i64),
    /// Adds to the `i64` stored little-endian in bytes `offset..offset + 8` of the value (an
    /// integer field of a row). The value must exist and reach that far.
    AddAt { offset: u32, delta: i64 },
}

/// Why a merge could not be applied to the value it met.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MergeError {
    /// The result does not fit in an `i64`.
    #[error("integer overflow")]
    Overflow,
    /// `Add` met a value that is not 8 bytes long.
    #[error("the value is {len} bytes, not an 8-byte integer")]
    NotAnInteger { len: usize },
    /// `AddAt` met no value (absent or deleted).
    #[error("there is no row to add to")]
    Missing,
    /// `AddAt` met a value too short for its field.
    #[error("the field at byte {offset} lies past the end of a {len}-byte value")]
    OutOfRange { offset: u32, len: usize },
}

/// Encoded size of one operator (`encode`): a tag byte, an offset and a delta.
pub const MERGE_OP_BYTES: usize = 1 + 4 + 8;

const TAG_ADD: u8 = 1;
const TAG_ADD_AT: u8 = 2;

impl MergeOp {
    /// The value after this merge, given the value before it (`None`: absent or deleted).
    pub fn apply(&self, base: Option<&[u8]>) -> Result<Bytes, MergeError> {
        match *self {
            MergeOp::Add(delta) => {
                let old = match base {
                    None => 0,
                    Some(v) => i64::from_le_bytes(
                        v.try_into().map_err(|_| MergeError::NotAnInteger { len: v.len() })?,
                    ),
                };
                let new = old.checked_add(delta).ok_or(MergeError::Overflow)?;
                Ok(Bytes::new(&new.to_le_bytes()))
            }
            MergeOp::AddAt { offset, delta } => {
                let v = base.ok_or(MergeError::Missing)?;
                let at = offset as usize;
                let field =
                    v.get(at..at + 8).ok_or(MergeError::OutOfRange { offset, len: v.len() })?;
                let old = i64::from_le_bytes(field.try_into().expect("8 bytes"));
                let new = old.checked_add(delta).ok_or(MergeError::Overflow)?;
                let mut out = v.to_vec();
                out[at..at + 8].copy_from_slice(&new.to_le_bytes());
                Ok(Bytes::new(&out))
            }
        }
    }

    /// One operator equal to `self` then `next`, if there is one (same kind and field):
    /// how a txn that merges into one key twice keeps a single buffered write. `Err` if the
    /// combined delta overflows.
    pub(crate) fn then(self, next: MergeOp) -> Option<Result<MergeOp, MergeError>> {
        let sum = |a: i64, b: i64| a.checked_add(b).ok_or(MergeError::Overflow);
        match (self, next) {
            (MergeOp::Add(a), MergeOp::Add(b)) => Some(sum(a, b).map(MergeOp::Add)),
            (MergeOp::AddAt { offset, delta: a }, MergeOp::AddAt { offset: o2, delta: b })
                if offset == o2 =>
            {
                Some(sum(a, b).map(|delta| MergeOp::AddAt { offset, delta }))
            }
            _ => None,
        }
    }

    /// The operator's encoding, how the log carries it: a tag byte (1 `Add`, 2 `AddAt`), the
    /// offset (u32) and the delta (i64), little-endian.
    pub fn to_bytes(&self) -> [u8; MERGE_OP_BYTES] {
        let (tag, offset, delta) = match *self {
            MergeOp::Add(delta) => (TAG_ADD, 0, delta),
            MergeOp::AddAt { offset, delta } => (TAG_ADD_AT, offset, delta),
        };
        let mut out = [0u8; MERGE_OP_BYTES];
        out[0] = tag;
        out[1..5].copy_from_slice(&offset.to_le_bytes());
        out[5..].copy_from_slice(&delta.to_le_bytes());
        out
    }

    /// Decodes `to_bytes`; `None` if the bytes are not an operator.
    pub fn decode(bytes: &[u8]) -> Option<MergeOp> {
        if bytes.len() != MERGE_OP_BYTES {
            return None;
        }
        let offset = u32::from_le_bytes(bytes[1..5].try_into().ok()?);
        let delta = i64::from_le_bytes(bytes[5..13].try_into().ok()?);
        match bytes[0] {
            TAG_ADD if offset == 0 => Some(MergeOp::Add(delta)),
            TAG_ADD_AT => Some(MergeOp::AddAt { offset, delta }),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn int(v: &Bytes) -> i64 {
        i64::from_le_bytes(v.as_slice().try_into().unwrap())
    }

    #[test]
    fn add_counts_absent_as_zero_and_checks_its_input() {
        assert_eq!(int(&MergeOp::Add(5).apply(None).unwrap()), 5);
        assert_eq!(int(&MergeOp::Add(-7).apply(Some(&3i64.to_le_bytes())).unwrap()), -4);
        assert_eq!(MergeOp::Add(1).apply(Some(&i64::MAX.to_le_bytes())), Err(MergeError::Overflow));
        assert_eq!(MergeOp::Add(1).apply(Some(b"abc")), Err(MergeError::NotAnInteger { len: 3 }));
    }

    #[test]
    fn add_at_changes_one_field_only() {
        let mut row = vec![9u8; 3];
        row.extend_from_slice(&40i64.to_le_bytes());
        row.push(7);
        let op = MergeOp::AddAt { offset: 3, delta: 2 };
        let out = op.apply(Some(&row)).unwrap();
        assert_eq!(&out.as_slice()[..3], &[9, 9, 9]);
        assert_eq!(i64::from_le_bytes(out.as_slice()[3..11].try_into().unwrap()), 42);
        assert_eq!(out.as_slice()[11], 7);
        assert_eq!(op.apply(None), Err(MergeError::Missing));
        assert_eq!(op.apply(Some(&row[..10])), Err(MergeError::OutOfRange { offset: 3, len: 10 }));
    }

    #[test]
    fn ops_combine_and_round_trip() {
        assert_eq!(MergeOp::Add(2).then(MergeOp::Add(3)), Some(Ok(MergeOp::Add(5))));
        assert_eq!(MergeOp::Add(i64::MAX).then(MergeOp::Add(1)), Some(Err(MergeError::Overflow)));
        let at = |offset, delta| MergeOp::AddAt { offset, delta };
        assert_eq!(at(1, 2).then(at(1, 3)), Some(Ok(at(1, 5))));
        assert_eq!(at(1, 2).then(at(9, 3)), None);
        assert_eq!(MergeOp::Add(1).then(at(0, 1)), None);
        for op in [MergeOp::Add(-3), at(17, i64::MIN)] {
            assert_eq!(MergeOp::decode(&op.to_bytes()), Some(op));
        }
        assert_eq!(MergeOp::decode(&[3; MERGE_OP_BYTES]), None);
        assert_eq!(MergeOp::decode(&[1; 4]), None);
    }
}
