//! SQL values, their comparison (SQLite's order: NULL < numbers < text < blob), and the row and
//! key encodings stored in the engine.

use crate::error::{Error, Result};
use std::cmp::Ordering;
use std::fmt;

/// A SQL value. Integers are exact `i64` end to end.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Integer(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

impl Value {
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// The type's name, for messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "NULL",
            Value::Integer(_) => "INTEGER",
            Value::Real(_) => "REAL",
            Value::Text(_) => "TEXT",
            Value::Blob(_) => "BLOB",
        }
    }

    fn class(&self) -> u8 {
        match self {
            Value::Null => 0,
            Value::Integer(_) | Value::Real(_) => 1,
            Value::Text(_) => 2,
            Value::Blob(_) => 3,
        }
    }

    /// Total order for sorting and grouping: NULL first, then numbers (integers and reals
    /// compared by value), text (bytewise), blobs (bytewise). NaN never occurs (arithmetic
    /// that would make one gives NULL).
    pub fn total_cmp(&self, other: &Value) -> Ordering {
        match (self, other) {
            (Value::Integer(a), Value::Integer(b)) => a.cmp(b),
            (Value::Integer(a), Value::Real(b)) => cmp_int_real(*a, *b),
            (Value::Real(a), Value::Integer(b)) => cmp_int_real(*b, *a).reverse(),
            (Value::Real(a), Value::Real(b)) => a.total_cmp(b),
            (Value::Text(a), Value::Text(b)) => a.as_bytes().cmp(b.as_bytes()),
            (Value::Blob(a), Value::Blob(b)) => a.cmp(b),
            _ => self.class().cmp(&other.class()),
        }
    }

    /// SQL comparison: `None` (NULL) when either side is NULL.
    pub fn sql_cmp(&self, other: &Value) -> Option<Ordering> {
        if self.is_null() || other.is_null() {
            None
        } else {
            Some(self.total_cmp(other))
        }
    }
}

/// Compares an integer with a real exactly (no rounding of large integers through `f64`).
fn cmp_int_real(i: i64, r: f64) -> Ordering {
    if r.is_nan() {
        return Ordering::Less;
    }
    // Every i64 lies in [-2^63, 2^63); reals outside that range compare by sign.
    if r >= 9_223_372_036_854_775_808.0 {
        return Ordering::Less;
    }
    if r < -9_223_372_036_854_775_808.0 {
        return Ordering::Greater;
    }
    let t = r.trunc();
    // `t` is within range, so the cast is exact.
    match i.cmp(&(t as i64)) {
        Ordering::Equal => {
            if r > t {
                Ordering::Less
            } else if r < t {
                Ordering::Greater
            } else {
                Ordering::Equal
            }
        }
        other => other,
    }
}

impl fmt::Display for Value {
    /// The shell's format: NULL as empty, reals as SQLite prints them.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => Ok(()),
            Value::Integer(i) => write!(f, "{i}"),
            Value::Real(r) => f.write_str(&format_real(*r)),
            Value::Text(s) => f.write_str(s),
            Value::Blob(b) => {
                for byte in b {
                    write!(f, "{byte:02X}")?;
                }
                Ok(())
            }
        }
    }
}

/// Formats a real as SQLite does for common values: an integral value keeps a `.0`, others use
/// the shortest representation that reads back the same.
pub fn format_real(r: f64) -> String {
    if r.is_finite() && r == r.trunc() && r.abs() < 1e15 {
        format!("{r:.1}")
    } else {
        format!("{r}")
    }
}

impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Integer(v)
    }
}
impl From<i32> for Value {
    fn from(v: i32) -> Self {
        Value::Integer(i64::from(v))
    }
}
impl From<f64> for Value {
    fn from(v: f64) -> Self {
        Value::Real(v)
    }
}
impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::Text(v.to_string())
    }
}
impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::Text(v)
    }
}
impl From<Vec<u8>> for Value {
    fn from(v: Vec<u8>) -> Self {
        Value::Blob(v)
    }
}
impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::Null, Into::into)
    }
}

/// The engine key of a rowid: big-endian with the sign bit flipped, so keys sort as rowids do.
pub fn rowid_key(rowid: i64) -> [u8; 8] {
    ((rowid as u64) ^ (1 << 63)).to_be_bytes()
}

/// Encodes PRIMARY KEY values (a key table's key) so that byte order is value order, value by
/// value: a class byte in SQL's order (NULL < numbers < text < blob), then integers big-endian
/// with the sign bit flipped, reals as their IEEE bits made order-preserving (positive: sign bit
/// set; negative: every bit flipped), text and blobs with each 0x00 escaped as 0x00 0xff and a
/// 0x00 0x00 terminator (so a shorter value sorts first and the next column starts cleanly).
/// A key column holds one type (types are strict; an INTEGER given to a REAL key is stored as
/// REAL), so integers and reals never meet in one column.
pub fn encode_key(values: &[Value], out: &mut Vec<u8>) {
    for v in values {
        match v {
            Value::Null => out.push(KEY_NULL),
            Value::Integer(i) => {
                out.push(KEY_INTEGER);
                out.extend_from_slice(&rowid_key(*i));
            }
            Value::Real(r) => {
                out.push(KEY_REAL);
                let bits = r.to_bits();
                let ordered = if bits >> 63 == 0 { bits | (1 << 63) } else { !bits };
                out.extend_from_slice(&ordered.to_be_bytes());
            }
            Value::Text(t) => {
                out.push(KEY_TEXT);
                escape_key_bytes(t.as_bytes(), out);
            }
            Value::Blob(b) => {
                out.push(KEY_BLOB);
                escape_key_bytes(b, out);
            }
        }
    }
}

const KEY_NULL: u8 = 0x05;
const KEY_INTEGER: u8 = 0x10;
const KEY_REAL: u8 = 0x11;
const KEY_TEXT: u8 = 0x20;
const KEY_BLOB: u8 = 0x30;

fn escape_key_bytes(bytes: &[u8], out: &mut Vec<u8>) {
    for &b in bytes {
        out.push(b);
        if b == 0 {
            out.push(0xff);
        }
    }
    out.extend_from_slice(&[0, 0]);
}

pub fn key_rowid(key: &[u8]) -> Result<i64> {
    let bytes: [u8; 8] =
        key.try_into().map_err(|_| Error::type_error("corrupt row key (not 8 bytes)"))?;
    Ok((u64::from_be_bytes(bytes) ^ (1 << 63)) as i64)
}

const TAG_NULL: u8 = 0;
const TAG_INTEGER: u8 = 1;
const TAG_REAL: u8 = 2;
const TAG_TEXT: u8 = 3;
const TAG_BLOB: u8 = 4;

/// Encodes a row: per value a tag byte, then 8 bytes (integer, real) or a u32 length and the
/// bytes (text, blob).
pub fn encode_row(values: &[Value], out: &mut Vec<u8>) {
    for v in values {
        match v {
            Value::Null => out.push(TAG_NULL),
            Value::Integer(i) => {
                out.push(TAG_INTEGER);
                out.extend_from_slice(&i.to_le_bytes());
            }
            Value::Real(r) => {
                out.push(TAG_REAL);
                out.extend_from_slice(&r.to_le_bytes());
            }
            Value::Text(s) => {
                out.push(TAG_TEXT);
                out.extend_from_slice(&(s.len() as u32).to_le_bytes());
                out.extend_from_slice(s.as_bytes());
            }
            Value::Blob(b) => {
                out.push(TAG_BLOB);
                out.extend_from_slice(&(b.len() as u32).to_le_bytes());
                out.extend_from_slice(b);
            }
        }
    }
}

/// Where the 8 bytes of the INTEGER at `index` start in `encode_row(values)`; `None` if that
/// value is not an INTEGER. (A merge adds to the stored row in place there.)
pub fn integer_offset(values: &[Value], index: usize) -> Option<usize> {
    if !matches!(values.get(index)?, Value::Integer(_)) {
        return None;
    }
    let width = |v: &Value| match v {
        Value::Null => 1,
        Value::Integer(_) | Value::Real(_) => 1 + 8,
        Value::Text(s) => 1 + 4 + s.len(),
        Value::Blob(b) => 1 + 4 + b.len(),
    };
    Some(values[..index].iter().map(width).sum::<usize>() + 1)
}

/// Decodes a row of `columns` values; never panics on bad bytes.
pub fn decode_row(bytes: &[u8], columns: usize) -> Result<Vec<Value>> {
    let values = decode_values(bytes)?;
    // Columns are never added to a table, so a row has exactly `columns` values.
    if values.len() != columns {
        return Err(Error::type_error("corrupt row encoding (wrong column count)"));
    }
    Ok(values)
}

/// Decodes every value in `bytes`; never panics on bad bytes.
pub fn decode_values(bytes: &[u8]) -> Result<Vec<Value>> {
    let corrupt = || Error::type_error("corrupt row encoding");
    let mut out = Vec::new();
    let mut at = 0usize;
    let take = |at: &mut usize, n: usize| -> Result<&[u8]> {
        let end = at.checked_add(n).filter(|e| *e <= bytes.len()).ok_or_else(corrupt)?;
        let s = &bytes[*at..end];
        *at = end;
        Ok(s)
    };
    while at < bytes.len() {
        let tag = take(&mut at, 1)?[0];
        let v = match tag {
            TAG_NULL => Value::Null,
            TAG_INTEGER => Value::Integer(i64::from_le_bytes(
                take(&mut at, 8)?.try_into().map_err(|_| corrupt())?,
            )),
            TAG_REAL => Value::Real(f64::from_le_bytes(
                take(&mut at, 8)?.try_into().map_err(|_| corrupt())?,
            )),
            TAG_TEXT | TAG_BLOB => {
                let len = u32::from_le_bytes(take(&mut at, 4)?.try_into().map_err(|_| corrupt())?);
                let b = take(&mut at, len as usize)?;
                if tag == TAG_TEXT {
                    Value::Text(String::from_utf8(b.to_vec()).map_err(|_| corrupt())?)
                } else {
                    Value::Blob(b.to_vec())
                }
            }
            _ => return Err(corrupt()),
        };
        out.push(v);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn value() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            any::<i64>().prop_map(Value::Integer),
            any::<f64>().prop_filter("no NaN", |f| !f.is_nan()).prop_map(Value::Real),
            ".{0,20}".prop_map(Value::Text),
            proptest::collection::vec(any::<u8>(), 0..20).prop_map(Value::Blob),
        ]
    }

    proptest! {
        #[test]
        fn rows_round_trip(row in proptest::collection::vec(value(), 0..8)) {
            let mut bytes = Vec::new();
            encode_row(&row, &mut bytes);
            prop_assert_eq!(decode_row(&bytes, row.len()).unwrap(), row);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64), n in 0usize..6) {
            let _ = decode_row(&bytes, n);
        }

        #[test]
        fn primary_keys_sort_as_their_values(a in value(), b in value(), c in value()) {
            // One class per column (types are strict): compare values of one class, or NULL.
            let same_class = std::mem::discriminant(&a) == std::mem::discriminant(&b)
                || a.is_null() || b.is_null();
            let key = |vs: &[Value]| {
                let mut out = Vec::new();
                encode_key(vs, &mut out);
                out
            };
            if same_class && !matches!((&a, &b), (Value::Real(x), Value::Real(y)) if *x == 0.0 && *y == 0.0) {
                prop_assert_eq!(key(std::slice::from_ref(&a)).cmp(&key(std::slice::from_ref(&b))), a.total_cmp(&b), "{:?} {:?}", a, b);
                // Two-column keys: the first column decides unless equal.
                let ab = key(&[a.clone(), c.clone()]).cmp(&key(&[b.clone(), c.clone()]));
                prop_assert_eq!(ab, a.total_cmp(&b));
            }
            if a != b {
                prop_assert_ne!(key(std::slice::from_ref(&a)), key(std::slice::from_ref(&b)));
            }
        }

        #[test]
        fn rowid_keys_sort_as_rowids(a in any::<i64>(), b in any::<i64>()) {
            prop_assert_eq!(rowid_key(a).cmp(&rowid_key(b)), a.cmp(&b));
            prop_assert_eq!(key_rowid(&rowid_key(a)).unwrap(), a);
        }

        #[test]
        fn integer_real_comparison_is_exact(i in any::<i64>(), k in -(1i64 << 50)..(1i64 << 50)) {
            let r = k as f64 / 4.0; // exact: quarters within f64's precision
            let expected = (i128::from(i) * 4).cmp(&i128::from(k));
            prop_assert_eq!(Value::Integer(i).total_cmp(&Value::Real(r)), expected);
        }
    }

    #[test]
    fn order_of_classes_and_large_integers() {
        let big = Value::Integer(i64::MAX);
        assert_eq!(big.total_cmp(&Value::Real(9.223_372_036_854_776e18)), Ordering::Less);
        assert_eq!(Value::Integer(1).total_cmp(&Value::Real(1.5)), Ordering::Less);
        assert_eq!(Value::Integer(2).total_cmp(&Value::Real(1.5)), Ordering::Greater);
        assert_eq!(Value::Null.total_cmp(&Value::Integer(0)), Ordering::Less);
        assert_eq!(Value::Integer(9).total_cmp(&Value::Text("0".into())), Ordering::Less);
        assert_eq!(Value::Text("z".into()).total_cmp(&Value::Blob(vec![0])), Ordering::Less);
        assert_eq!(Value::Null.sql_cmp(&Value::Null), None);
        assert_eq!(format_real(2.0), "2.0");
        assert_eq!(format_real(0.1), "0.1");
    }
}
