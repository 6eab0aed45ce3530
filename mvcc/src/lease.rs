//! A shared reference that a txn takes and drops without writing a cache line other threads write.
//!
//! The database core lives as long as its handles (`Owner`: `Mvcc` and its clones) and its txns
//! (`Lease`: every `Txn` and every scan that outlives its call). An `Arc` would do, but every
//! begin and every txn's end would then write the `Arc`'s count — one line shared by every
//! thread, a cache-line transfer per txn on a many-core machine (docs/benchmarks.md, "Cache-line
//! transfers"). Here a lease is counted on its thread's stripe instead.
//!
//! The protocol (every step is one atomic read-modify-write; nothing touches the shared state
//! after an RMW that may let another thread release it, except the one thread whose RMW did):
//!
//! 1. While an owner lives, a lease is counted in one of `STRIPES` counters: the stripe of the
//!    thread that took it from an owner, or its parent's stripe if it was cloned from a lease.
//!    Dropping a lease decrements the stripe it was counted in (whichever thread drops it), so
//!    no stripe goes below zero.
//! 2. The last owner's drop *folds* the stripes: each in turn is swapped for `FOLDED`, and the
//!    count it held is added to `central`, which starts at `BIAS` (the owners' hold as a group).
//!    Then it removes `BIAS`. The bias is not 1 because a lease counted on a stripe can be
//!    dropped (through `central`, step 3) between its stripe's swap and the addition of the
//!    count that swap took: `central` dips by at most the number of leases meanwhile, which
//!    `BIAS` dwarfs. (With a hold of 1 the loom model below found `central` reaching 0 twice.)
//! 3. A lease whose stripe is folded is counted in `central` instead: cloning adds 1 there,
//!    dropping removes 1.
//! 4. Whoever brings `central` to 0 releases the value (drops the `Arc` the leases hold as a
//!    group; the owners' `Arc`s are dropped with them).
//!
//! Why no lease is lost: a stripe's count moves to `central` in one swap, so a lease counted
//! before the swap is counted after it, in `central`; an RMW on a stripe after its swap sees
//! `FOLDED` and goes to `central`. `central` cannot reach 0 while the fold runs (the bias),
//! nor while any lease counted in it lives. A lease taken from an owner (step 1) is taken while
//! that owner lives, so before the fold; one cloned from a lease is counted where its living
//! parent is counted, or in `central`. Why it is released once: only one RMW can take `central`
//! to 0 (a lease's from 1, after the bias is gone; the owner's from `BIAS`), and no count is
//! added after it (a clone needs a living parent). Why it is released: the fold ends with `central`'s RMW, and so does the last
//! lease's drop after it; the last of those reaches 0.
//!
//! Orderings: lease drops are Release (the txn's uses of the value happen before), the fold's
//! swaps are AcqRel and every `central` RMW is AcqRel, so the releasing RMW happens after every
//! use of the value by any lease (release sequences on each stripe and on `central`). Taking a
//! lease from a living owner is Relaxed: the owner's own drop (AcqRel on `handles`) orders it.
//!
//! The loom model below checks the value is freed exactly once, after every lease's last use,
//! with leases taken, cloned across threads and dropped around the last owner's drop.

use crate::sync::{Arc, AtomicU64, AtomicUsize, Mutex, Ordering};
use crossbeam_utils::CachePadded;
use std::ops::Deref;
use std::ptr::NonNull;

/// Lease counters per value (threads share one when there are more).
#[cfg(not(any(loom, shuttle)))]
const STRIPES: usize = 32;
#[cfg(any(loom, shuttle))]
const STRIPES: usize = 2;

/// A stripe's value once the last owner has moved its count to `central`.
const FOLDED: u64 = 1 << 63;
/// `central`'s value before the fold: the owners' hold (module doc, step 2).
const BIAS: u64 = 1 << 48;

fn bias() -> u64 {
    #[cfg(any(loom, shuttle))]
    if crate::canary::active(crate::canary::Canary::LeaseHoldOfOne) {
        return 1; // the broken variant
    }
    BIAS
}

struct Shared<T> {
    value: T,
    /// Owners alive (`Owner::clone` and drop; rare).
    handles: AtomicUsize,
    stripes: Box<[CachePadded<AtomicU64>]>,
    /// The count after the fold (module doc, steps 2–4).
    central: AtomicU64,
    /// The leases' hold as a group (a reference to this very allocation), taken and dropped by
    /// whoever releases (module doc, step 4). Locked once, at the release.
    group: Mutex<Option<Arc<Shared<T>>>>,
}

/// The value's owning handle: cloned and dropped rarely (a database handle).
pub(crate) struct Owner<T> {
    shared: Arc<Shared<T>>,
}

/// A txn's reference: taking and dropping one writes only its stripe.
pub(crate) struct Lease<T> {
    shared: NonNull<Shared<T>>,
    stripe: usize,
}

// SAFETY: a lease is a shared reference to `T` plus atomic counters; it may move to and be used
// from any thread exactly when `&T` may (`T: Sync`), and its drop may run there (`T: Send`, as
// the last drop may free `T` on that thread).
unsafe impl<T: Send + Sync> Send for Lease<T> {}
// SAFETY: as above.
unsafe impl<T: Send + Sync> Sync for Lease<T> {}

impl<T> Owner<T> {
    pub(crate) fn new(value: T) -> Self {
        let stripes = (0..STRIPES).map(|_| CachePadded::new(AtomicU64::new(0))).collect();
        let shared = Arc::new(Shared {
            value,
            handles: AtomicUsize::new(1),
            stripes,
            central: AtomicU64::new(bias()),
            group: Mutex::new(None),
        });
        *shared.group.lock() = Some(shared.clone());
        Owner { shared }
    }

    /// A lease counted on the calling thread's stripe.
    pub(crate) fn lease(&self) -> Lease<T> {
        self.lease_on(crate::stats::stripe_index() % STRIPES)
    }

    /// A lease counted on `stripe` (the loom model picks it).
    pub(crate) fn lease_on(&self, stripe: usize) -> Lease<T> {
        let counter = &self.shared.stripes[stripe];
        crate::lines::write(crate::lines::Site::CoreRef, &**counter);
        // Relaxed: this owner lives, so the fold has not begun (module doc).
        let before = counter.fetch_add(1, Ordering::Relaxed);
        debug_assert!(before & FOLDED == 0, "a lease taken from an owner after the fold");
        Lease { shared: NonNull::from(&*self.shared), stripe }
    }
}

impl<T> Deref for Owner<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.shared.value
    }
}

impl<T> Clone for Owner<T> {
    fn clone(&self) -> Self {
        // Relaxed: as for `Arc::clone`; the decrement in `drop` orders everything that matters.
        self.shared.handles.fetch_add(1, Ordering::Relaxed);
        Owner { shared: self.shared.clone() }
    }
}

impl<T> Drop for Owner<T> {
    fn drop(&mut self) {
        // AcqRel: the last owner sees every lease the other owners took.
        if self.shared.handles.fetch_sub(1, Ordering::AcqRel) != 1 {
            return;
        }
        // The fold (module doc, step 2). `self.shared` keeps the memory alive throughout.
        for counter in self.shared.stripes.iter() {
            let count = counter.swap(FOLDED, Ordering::AcqRel);
            debug_assert!(count & FOLDED == 0, "folded twice");
            self.shared.central.fetch_add(count, Ordering::AcqRel);
        }
        let bias = bias();
        if self.shared.central.fetch_sub(bias, Ordering::AcqRel) == bias {
            // `central` reached 0 by our RMW: no lease is left (our own `Arc` keeps the memory).
            release(&self.shared);
        }
    }
}

/// Drops the leases' group hold (module doc, step 4). The caller's RMW took `central` to 0, and
/// it must not touch `shared` afterwards: this may free it.
fn release<T>(shared: &Shared<T>) {
    let group = shared.group.lock().take(); // the guard is dropped here, before the hold
    debug_assert!(group.is_some(), "released twice");
    drop(group);
}

impl<T> Lease<T> {
    fn shared(&self) -> &Shared<T> {
        // SAFETY: this lease is counted (in its stripe or in `central`), so the group's hold,
        // and with it the allocation, outlives it (module doc).
        unsafe { self.shared.as_ref() }
    }
}

impl<T> Deref for Lease<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.shared().value
    }
}

impl<T> Clone for Lease<T> {
    /// A lease on this one's stripe, or in `central` once it is folded (module doc, step 3).
    fn clone(&self) -> Self {
        let shared = self.shared();
        let counter = &shared.stripes[self.stripe];
        crate::lines::write(crate::lines::Site::CoreRef, &**counter);
        let mut seen = counter.load(Ordering::Relaxed);
        loop {
            if seen & FOLDED != 0 {
                // Relaxed: `self` is counted in `central`, so it is at least 1 and stays so.
                shared.central.fetch_add(1, Ordering::Relaxed);
                break;
            }
            // Relaxed: `self` is counted on this stripe, so the count is at least 1.
            match counter.compare_exchange_weak(
                seen,
                seen + 1,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => break,
                Err(now) => seen = now,
            }
        }
        Lease { shared: self.shared, stripe: self.stripe }
    }
}

impl<T> Drop for Lease<T> {
    fn drop(&mut self) {
        let shared = self.shared();
        let counter = &shared.stripes[self.stripe];
        crate::lines::write(crate::lines::Site::CoreRef, &**counter);
        let mut seen = counter.load(Ordering::Relaxed);
        loop {
            if seen & FOLDED != 0 {
                if shared.central.fetch_sub(1, Ordering::AcqRel) == 1 {
                    release(shared); // our RMW took `central` to 0 (module doc, step 4)
                }
                return;
            }
            debug_assert!(seen > 0, "a lease's stripe is empty");
            // Release: our uses of the value happen before the fold reads this count.
            match counter.compare_exchange_weak(
                seen,
                seen - 1,
                Ordering::Release,
                Ordering::Relaxed,
            ) {
                Ok(_) => return,
                Err(now) => seen = now,
            }
        }
    }
}

#[cfg(all(test, not(loom), not(shuttle)))]
mod tests {
    use super::*;

    /// Counts its drops (frees).
    struct Flag(Arc<AtomicUsize>);
    impl Drop for Flag {
        fn drop(&mut self) {
            assert_eq!(self.0.fetch_add(1, Ordering::SeqCst), 0, "freed twice");
        }
    }

    fn owned() -> (Owner<Flag>, Arc<AtomicUsize>) {
        let freed = Arc::new(AtomicUsize::new(0));
        (Owner::new(Flag(freed.clone())), freed)
    }

    #[test]
    fn freed_with_the_last_owner_when_no_lease_is_left() {
        let (owner, freed) = owned();
        let second = owner.clone();
        drop(owner.lease());
        drop(owner);
        assert_eq!(freed.load(Ordering::SeqCst), 0);
        drop(second);
        assert_eq!(freed.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn freed_with_the_last_lease_after_the_owners() {
        let (owner, freed) = owned();
        let a = owner.lease_on(0);
        let b = owner.lease_on(1);
        let a2 = a.clone();
        drop(owner);
        assert_eq!(freed.load(Ordering::SeqCst), 0);
        let a3 = a2.clone(); // cloned after the fold: counted in `central`
        drop(a);
        drop(b);
        drop(a2);
        assert_eq!(freed.load(Ordering::SeqCst), 0);
        assert_eq!(a3.0.load(Ordering::SeqCst), 0, "the value is readable while leased");
        drop(a3);
        assert_eq!(freed.load(Ordering::SeqCst), 1);
    }

    /// Leases taken on many threads, moved and dropped on others, racing the owners' drops.
    #[test]
    fn threads_racing_the_last_owner() {
        for _ in 0..200 {
            let (owner, freed) = owned();
            let handles: Vec<_> = (0..4)
                .map(|i| {
                    let lease = owner.lease();
                    let other = owner.clone();
                    std::thread::spawn(move || {
                        let copies: Vec<_> = (0..i + 1).map(|_| lease.clone()).collect();
                        drop(other);
                        drop(lease);
                        for c in copies {
                            assert_eq!(c.0.load(Ordering::SeqCst), 0);
                        }
                    })
                })
                .collect();
            drop(owner);
            for h in handles {
                h.join().expect("a lease thread");
            }
            assert_eq!(freed.load(Ordering::SeqCst), 1);
        }
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use loom::sync::atomic::AtomicBool;

    struct Flag(Arc<AtomicBool>);
    impl Drop for Flag {
        fn drop(&mut self) {
            assert!(!self.0.swap(true, Ordering::SeqCst), "freed twice");
        }
    }

    /// One thread holds a lease taken on stripe 0, clones it (its stripe, or `central` once
    /// folded), uses the clone and drops both; another holds a lease on stripe 1 and drops it;
    /// the main thread drops the last owner meanwhile. The value must be readable at every use,
    /// freed exactly once, and freed by the end (loom also reports a leaked `Arc`).
    fn model() {
        loom::model(|| {
            let freed = Arc::new(AtomicBool::new(false));
            let owner = Owner::new(Flag(freed.clone()));
            let a = owner.lease_on(0);
            let b = owner.lease_on(1);
            let t1 = loom::thread::spawn(move || {
                let a2 = a.clone();
                drop(a);
                assert!(!a2.0.load(Ordering::SeqCst), "used after free");
                drop(a2);
            });
            let t2 = loom::thread::spawn(move || {
                assert!(!b.0.load(Ordering::SeqCst), "used after free");
                drop(b);
            });
            drop(owner);
            t1.join().expect("thread 1");
            t2.join().expect("thread 2");
            assert!(freed.load(Ordering::SeqCst), "never freed");
        });
    }

    #[test]
    fn leases_racing_the_last_owner() {
        model();
    }

    /// The canary: with a hold of 1 instead of the bias the model must fail (it found exactly
    /// this: `central` reaching 0 twice).
    #[test]
    fn leases_racing_the_last_owner_with_a_hold_of_one_is_caught() {
        crate::canary::set(crate::canary::Canary::LeaseHoldOfOne);
        let caught = std::panic::catch_unwind(model).is_err();
        crate::canary::set(crate::canary::Canary::None);
        assert!(caught, "the canary LeaseHoldOfOne was not caught");
    }
}
