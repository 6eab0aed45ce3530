//! The `strata` binary's global allocator: mimalloc, asked the way its fast path expects.
//!
//! The `mimalloc` crate hands every Rust allocation to `mi_malloc_aligned(size, align)`. For a
//! size whose block is not a power of two (24, 48, 96, 320 bytes: most of a txn's vectors),
//! mimalloc 3 takes its fast path only while the size class's page has a free block at hand;
//! otherwise it over-allocates `size + align - 1` bytes from the next size class. In a loop that
//! allocates and frees one such object per txn, that is every time: the block goes back to the
//! larger class, and the next allocation finds its own class empty again. Under callgrind that
//! was two slow-path allocations per `counters-1k` increment (docs/adr/0003-benchmark-allocator.md).
//!
//! Every mimalloc block is a multiple of 8 bytes in a page aligned at least that much, so a
//! layout that asks for at most 8-byte alignment gets it from plain `mi_malloc`; only stricter
//! alignments go through the aligned entry points. The same allocator serves every engine of
//! `strata bench`, so comparisons stay fair.
#![allow(unsafe_code)]

use libmimalloc_sys::{mi_free, mi_malloc, mi_malloc_aligned, mi_realloc, mi_realloc_aligned};
use libmimalloc_sys::{mi_zalloc, mi_zalloc_aligned};
use std::alloc::{GlobalAlloc, Layout};
use std::ffi::c_void;

/// The alignment every mimalloc block has whatever its size (its smallest block and the
/// granularity of its size classes are one 8-byte word).
const PLAIN_ALIGN: usize = 8;

pub struct Mimalloc;

// SAFETY: every method forwards to mimalloc, whose blocks satisfy `Layout::align` on both paths
// (the plain path only for alignments of at most `PLAIN_ALIGN`, see the module doc), stay valid
// until `mi_free`, and which `mi_free`/`mi_realloc*` accept whichever entry point made them.
unsafe impl GlobalAlloc for Mimalloc {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.align() <= PLAIN_ALIGN {
            // SAFETY: FFI call with a size; no pointer arguments.
            unsafe { mi_malloc(layout.size()).cast() }
        } else {
            // SAFETY: as above; `align` is a power of two (a `Layout` invariant).
            unsafe { mi_malloc_aligned(layout.size(), layout.align()).cast() }
        }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if layout.align() <= PLAIN_ALIGN {
            // SAFETY: FFI call with a size; no pointer arguments.
            unsafe { mi_zalloc(layout.size()).cast() }
        } else {
            // SAFETY: as above; `align` is a power of two (a `Layout` invariant).
            unsafe { mi_zalloc_aligned(layout.size(), layout.align()).cast() }
        }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        // SAFETY: `ptr` came from this allocator (the `GlobalAlloc` contract), so from mimalloc.
        unsafe { mi_free(ptr.cast::<c_void>()) }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if layout.align() <= PLAIN_ALIGN {
            // SAFETY: `ptr` came from this allocator; a plain reallocation keeps 8-byte alignment.
            unsafe { mi_realloc(ptr.cast::<c_void>(), new_size).cast() }
        } else {
            // SAFETY: `ptr` came from this allocator with this alignment.
            unsafe { mi_realloc_aligned(ptr.cast::<c_void>(), new_size, layout.align()).cast() }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every alignment up to a page, at sizes that are and are not powers of two, comes back
    /// aligned, writable and freeable, also after growing in place or moving.
    #[test]
    fn blocks_have_the_alignment_asked_for() {
        for align in [1usize, 2, 4, 8, 16, 32, 64, 4096] {
            for size in [align, 24usize.max(align), 48usize.max(align), 320usize.max(align) * 3] {
                let size = size.next_multiple_of(align);
                let layout = Layout::from_size_align(size, align).expect("layout");
                // SAFETY: a non-zero size; every block is freed below with its layout.
                unsafe {
                    for zeroed in [false, true] {
                        let p = if zeroed {
                            Mimalloc.alloc_zeroed(layout)
                        } else {
                            Mimalloc.alloc(layout)
                        };
                        assert!(!p.is_null());
                        assert_eq!(p as usize % align, 0, "size {size} align {align}");
                        if zeroed {
                            assert!(std::slice::from_raw_parts(p, size).iter().all(|&b| b == 0));
                        }
                        p.write_bytes(0xA5, size);
                        let q = Mimalloc.realloc(p, layout, size * 5);
                        assert!(!q.is_null());
                        assert_eq!(q as usize % align, 0, "realloc: size {size} align {align}");
                        assert!(std::slice::from_raw_parts(q, size).iter().all(|&b| b == 0xA5));
                        Mimalloc
                            .dealloc(q, Layout::from_size_align(size * 5, align).expect("layout"));
                    }
                }
            }
        }
    }
}
