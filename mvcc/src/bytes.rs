//! `Bytes`: an immutable byte string stored inline when short (`INLINE_BYTES_MAX`), on the heap
//! otherwise. Keys and payloads of typical rows (integers, short strings) then cost no separate
//! allocation and no extra cache miss when a chain or an index entry is read.

use std::fmt;

/// Longest byte string stored inline (the whole value is 24 bytes, like a `Vec` header).
pub const INLINE_BYTES_MAX: usize = 22;

/// An immutable byte string.
#[derive(Clone)]
pub enum Bytes {
    /// Short: stored in place.
    Inline { len: u8, buf: [u8; INLINE_BYTES_MAX] },
    /// Long: one heap allocation.
    Heap(Box<[u8]>),
}

const _: () = assert!(std::mem::size_of::<Bytes>() == 24, "Bytes must stay one Vec header wide");
const _: () = assert!(std::mem::size_of::<Option<Bytes>>() == 24, "Option<Bytes> uses the niche");

impl Bytes {
    /// Copies `b`.
    pub fn new(b: &[u8]) -> Self {
        if b.len() <= INLINE_BYTES_MAX {
            let mut buf = [0u8; INLINE_BYTES_MAX];
            buf[..b.len()].copy_from_slice(b);
            Bytes::Inline { len: b.len() as u8, buf }
        } else {
            Bytes::Heap(b.into())
        }
    }

    /// The bytes.
    pub fn as_slice(&self) -> &[u8] {
        match self {
            Bytes::Inline { len, buf } => &buf[..usize::from(*len)],
            Bytes::Heap(b) => b,
        }
    }
}

impl std::ops::Deref for Bytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl fmt::Debug for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02x?}", self.as_slice())
    }
}

impl PartialEq for Bytes {
    fn eq(&self, other: &Self) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl Eq for Bytes {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_inline_long_heap() {
        for len in (0..=INLINE_BYTES_MAX + 1).chain([1000]) {
            let v: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let b = Bytes::new(&v);
            assert_eq!(b.as_slice(), &v[..]);
            assert_eq!(matches!(b, Bytes::Inline { .. }), len <= INLINE_BYTES_MAX);
        }
    }
}
