//! The snapshot registry: which snapshots are live, so GC knows what it may reclaim.
//!
//! Each live txn owns one *slot*, an `AtomicU64` on its own cache line holding a lower bound of
//! its snapshot timestamp (`FREE` when unowned). Slots live in fixed blocks of
//! `SLOTS_PER_BLOCK`, linked by an append-only list that only grows (CAS on `next`), up to
//! `SNAPSHOT_SLOTS_MAX`. Begin and end touch only the caller's slot (no global lock, no shared
//! counter); a thread-local hint sends a thread back to the slot it used last, so the common case
//! is an uncontended CAS on a line the thread already owns.
//!
//! The begin/GC handshake (INVARIANTS §3, "the obvious version is wrong"):
//!
//! ```text
//!   begin:  s = clock.now(); slot.cas(FREE → s); fence(SeqCst); read_ts = clock.now()
//!   GC:     c = clock.now(); fence(SeqCst); w = min(c, all slots)
//! ```
//!
//! Either GC's slot scan sees `s` (so `w <= s <= read_ts`), or the begin fence comes after the
//! GC fence in the SeqCst order, and then the begin's re-read returns at least `c >= w`. Either
//! way `w <= read_ts`: GC never reclaims a version the new snapshot needs. Using the pre-fence
//! value `s` as the snapshot, or dropping either fence, admits "clock read, commit + GC, then
//! publish" — and GC frees what the snapshot needs. Both fences are `SeqCst` for that reason
//! (loom also treats SeqCst *accesses* as AcqRel, so fences are the honest way to say it).
//!
//! A stale watermark is always safe: every snapshot that exists or will exist has
//! `read_ts >= w` once `w` has been computed.

use crate::clock::{Clock, Timestamp};
use crate::sync::{fence, AtomicPtr, AtomicU64, AtomicUsize, Ordering};
use crossbeam_utils::CachePadded;
use std::cell::Cell;
use std::fmt;
use std::ptr;

/// Slots per block (one allocation of `SLOTS_PER_BLOCK` cache lines).
pub const SLOTS_PER_BLOCK: usize = 64;
/// The most snapshots (read or write txns) that may be live at once.
pub const SNAPSHOT_SLOTS_MAX: usize = 1 << 16;

const FREE: u64 = u64::MAX;

struct Block {
    slots: [CachePadded<AtomicU64>; SLOTS_PER_BLOCK],
    /// Append-only; Release on publish, Acquire on load.
    next: AtomicPtr<Block>,
}

impl Block {
    fn new() -> Box<Self> {
        Box::new(Block {
            slots: std::array::from_fn(|_| CachePadded::new(AtomicU64::new(FREE))),
            next: AtomicPtr::new(ptr::null_mut()),
        })
    }
}

/// A claimed slot; released by `SnapshotRegistry::release`.
#[derive(Debug)]
pub struct SlotRef {
    block: *const Block,
    index: usize,
    global: usize,
}

// SAFETY: `block` points into the registry's block list, which is append-only and freed only when
// the registry is dropped; the owning `Txn` keeps the registry alive (it holds a lease on the
// core, `lease.rs`). The slot itself is an atomic, so using it from another thread is sound.
unsafe impl Send for SlotRef {}
// SAFETY: as for `Send`; `SlotRef` exposes no interior mutability except through atomics.
unsafe impl Sync for SlotRef {}

impl SlotRef {
    fn slot(&self) -> &AtomicU64 {
        // SAFETY: see the `Send` impl: blocks outlive every `SlotRef` issued from them.
        unsafe { &(*self.block).slots[self.index] }
    }
}

thread_local! {
    static SLOT_HINT: Cell<usize> = const { Cell::new(0) };
}

/// Registry of live snapshots.
pub struct SnapshotRegistry {
    first: Box<Block>,
    blocks: AtomicUsize,
}

impl fmt::Debug for SnapshotRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SnapshotRegistry")
            .field("blocks", &self.blocks.load(Ordering::Relaxed))
            .finish()
    }
}

impl Default for SnapshotRegistry {
    fn default() -> Self {
        Self::new()
    }
}

/// The registry is full (`SNAPSHOT_SLOTS_MAX` live snapshots).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegistryFull;

impl SnapshotRegistry {
    pub fn new() -> Self {
        SnapshotRegistry { first: Block::new(), blocks: AtomicUsize::new(1) }
    }

    /// Registers a snapshot and returns it with its timestamp (the handshake in the module doc).
    pub fn begin(&self, clock: &Clock) -> Result<(SlotRef, Timestamp), RegistryFull> {
        let s = clock.now();
        let slot = self.claim(s.0)?;
        #[cfg(any(loom, shuttle))]
        if crate::canary::active(crate::canary::Canary::UnfencedBegin) {
            return Ok((slot, s)); // the naive begin: publish, no fence, use the pre-publish read
        }
        // SeqCst fence: orders the slot publication before the re-read against GC's fence
        // between its clock read and its slot scan (`watermark`).
        fence(Ordering::SeqCst);
        let read_ts = clock.now();
        debug_assert!(read_ts >= s, "clock went backwards");
        Ok((slot, read_ts))
    }

    /// Ends a snapshot. Release: orders the txn's reads before the slot is seen free, pairing
    /// with the Acquire slot loads in `watermark` (GC may then reclaim what it read).
    pub fn release(&self, slot: SlotRef) {
        debug_assert!(
            !crate::sync::DEBUG_LOADS || slot.slot().load(Ordering::Relaxed) != FREE,
            "slot released twice"
        );
        crate::lines::write(crate::lines::Site::Registry, slot.slot());
        slot.slot().store(FREE, Ordering::Release);
        SLOT_HINT.with(|h| h.set(slot.global));
    }

    /// The low watermark: no live or future snapshot has `read_ts` below it.
    pub fn watermark(&self, clock: &Clock) -> Timestamp {
        let c = clock.now();
        // SeqCst fence: partner of the fence in `begin` (module doc).
        fence(Ordering::SeqCst);
        let mut w = c.0;
        self.for_each_slot(|v| w = w.min(v));
        Timestamp(w)
    }

    /// The number of live snapshots and the oldest one (statistics; racy by nature).
    pub fn live(&self) -> (usize, Option<Timestamp>) {
        let mut n = 0;
        let mut oldest = FREE;
        self.for_each_slot(|v| {
            n += 1;
            oldest = oldest.min(v);
        });
        (n, (oldest != FREE).then_some(Timestamp(oldest)))
    }

    fn for_each_slot(&self, mut f: impl FnMut(u64)) {
        let mut block: *const Block = &*self.first;
        while !block.is_null() {
            // SAFETY: blocks are freed only in `Drop`, which `&self` excludes.
            let b = unsafe { &*block };
            for slot in &b.slots {
                // Acquire: pairs with the Release in `release`.
                let v = slot.load(Ordering::Acquire);
                if v != FREE {
                    f(v);
                }
            }
            // Acquire: pairs with the Release CAS that appended the block.
            block = b.next.load(Ordering::Acquire);
        }
    }

    fn claim(&self, value: u64) -> Result<SlotRef, RegistryFull> {
        // Under loom the hint would carry over from one explored execution to the next (it is a
        // std thread-local) and make the model non-deterministic: always scan from slot 0.
        #[cfg(any(loom, shuttle))]
        let hint = 0;
        #[cfg(not(any(loom, shuttle)))]
        let hint = SLOT_HINT.with(|h| h.get());
        let blocks = self.blocks.load(Ordering::Relaxed);
        let total = blocks * SLOTS_PER_BLOCK;
        let start = hint % total.max(1);
        // Pass 1 from the hint to the end, pass 2 from the beginning; then grow.
        for range in [start..total, 0..start] {
            let mut global = range.start;
            let mut block = self.block_at(global / SLOTS_PER_BLOCK);
            while global < range.end {
                // SAFETY: `block_at` returns a live block (blocks freed only in Drop).
                let b = unsafe { &*block };
                let index = global % SLOTS_PER_BLOCK;
                crate::lines::write(crate::lines::Site::Registry, &*b.slots[index]);
                // Relaxed: the SeqCst fence that follows in `begin` orders this store.
                if b.slots[index]
                    .compare_exchange(FREE, value, Ordering::Relaxed, Ordering::Relaxed)
                    .is_ok()
                {
                    SLOT_HINT.with(|h| h.set(global));
                    return Ok(SlotRef { block, index, global });
                }
                global += 1;
                if global.is_multiple_of(SLOTS_PER_BLOCK) {
                    // Acquire: pairs with the Release in `grow`.
                    block = b.next.load(Ordering::Acquire);
                    if block.is_null() {
                        break;
                    }
                }
            }
        }
        self.grow(value)
    }

    fn block_at(&self, n: usize) -> *const Block {
        let mut block: *const Block = &*self.first;
        for _ in 0..n {
            // SAFETY: blocks are freed only in Drop; `n` < the count we read, so it is linked.
            let next = unsafe { &*block }.next.load(Ordering::Acquire);
            if next.is_null() {
                break;
            }
            block = next;
        }
        block
    }

    /// Appends a block with the first slot already claimed for `value`.
    fn grow(&self, value: u64) -> Result<SlotRef, RegistryFull> {
        let mut last: *const Block = &*self.first;
        let mut count = 1;
        loop {
            // SAFETY: blocks are freed only in Drop.
            let b = unsafe { &*last };
            let next = b.next.load(Ordering::Acquire);
            if !next.is_null() {
                last = next;
                count += 1;
                continue;
            }
            if count * SLOTS_PER_BLOCK >= SNAPSHOT_SLOTS_MAX {
                return Err(RegistryFull);
            }
            let fresh = Block::new();
            fresh.slots[0].store(value, Ordering::Relaxed);
            let fresh = Box::into_raw(fresh);
            // Release: publishes the block's initialised slots; pairs with Acquire loads of `next`.
            match b.next.compare_exchange(
                ptr::null_mut(),
                fresh,
                Ordering::Release,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    self.blocks.fetch_add(1, Ordering::Relaxed);
                    SLOT_HINT.with(|h| h.set(count * SLOTS_PER_BLOCK));
                    return Ok(SlotRef { block: fresh, index: 0, global: count * SLOTS_PER_BLOCK });
                }
                Err(_) => {
                    // SAFETY: `fresh` was never published; we still own it.
                    drop(unsafe { Box::from_raw(fresh) });
                }
            }
        }
    }
}

impl Drop for SnapshotRegistry {
    fn drop(&mut self) {
        // Relaxed: `&mut self` means no other thread can touch the list any more.
        let mut next = self.first.next.load(Ordering::Relaxed);
        while !next.is_null() {
            // SAFETY: every appended block came from `Box::into_raw` in `grow` and is freed once,
            // here, when no `SlotRef` can exist (each holds the registry alive).
            let b = unsafe { Box::from_raw(next) };
            next = b.next.load(Ordering::Relaxed);
        }
    }
}

#[cfg(all(test, not(any(loom, shuttle))))]
mod tests {
    use super::*;

    #[test]
    fn watermark_tracks_oldest_live_snapshot() {
        let clock = Clock::new(Timestamp(10));
        let reg = SnapshotRegistry::new();
        assert_eq!(reg.watermark(&clock), Timestamp(10));
        let (a, ts) = reg.begin(&clock).expect("slot");
        assert_eq!(ts, Timestamp(10));
        clock.advance();
        clock.advance();
        let (b, _) = reg.begin(&clock).expect("slot");
        assert_eq!(reg.watermark(&clock), Timestamp(10));
        assert_eq!(reg.live(), (2, Some(Timestamp(10))));
        reg.release(a);
        assert_eq!(reg.watermark(&clock), Timestamp(12));
        reg.release(b);
        assert_eq!(reg.live(), (0, None));
    }

    #[test]
    fn grows_past_one_block_and_reuses_slots() {
        let clock = Clock::new(Timestamp(1));
        let reg = SnapshotRegistry::new();
        let held: Vec<_> =
            (0..SLOTS_PER_BLOCK * 3 + 5).map(|_| reg.begin(&clock).expect("slot").0).collect();
        assert_eq!(reg.live().0, held.len());
        assert_eq!(reg.blocks.load(Ordering::Relaxed), 4);
        for s in held {
            reg.release(s);
        }
        assert_eq!(reg.live().0, 0);
        let again: Vec<_> =
            (0..SLOTS_PER_BLOCK * 2).map(|_| reg.begin(&clock).expect("slot").0).collect();
        assert_eq!(reg.blocks.load(Ordering::Relaxed), 4, "freed slots are reused before growing");
        for s in again {
            reg.release(s);
        }
    }

    #[test]
    fn full_registry_is_an_error_not_a_panic() {
        let clock = Clock::new(Timestamp(1));
        let reg = SnapshotRegistry::new();
        let mut held = Vec::new();
        while let Ok((s, _)) = reg.begin(&clock) {
            held.push(s);
        }
        assert_eq!(reg.begin(&clock).map(|_| ()), Err(RegistryFull));
        assert_eq!(held.len(), SNAPSHOT_SLOTS_MAX);
        for s in held {
            reg.release(s);
        }
    }
}
