//! A stand-in for `crossbeam-epoch` under `cfg(loom)`: the subset of its API the chains use, on
//! loom atomics, with a *trivial reclaimer* — retired objects are leaked, never freed.
//!
//! Why: loom explores every interleaving of the atomics it can see; crossbeam-epoch's own loom
//! mode adds its internal atomics to that search, and a 2-writer + 1-reader model did not finish
//! in 280 s (measured before this crate existed). The publication protocol does not depend on
//! *when* memory is freed, only on which versions are reachable from a chain, so these models use
//! this reclaimer; a version GC unlinked too early shows up as a version the model can no longer
//! find, not as a use-after-free. (Epoch reclamation itself is crossbeam's, tested upstream.)
//!
//! Only compiled under `cfg(loom)`; the rest of the crate imports `crate::sync::epoch` either way.
#![allow(dead_code)]

use super::{AtomicUsize, Ordering};
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};

const fn tag_mask<T>() -> usize {
    std::mem::align_of::<T>() - 1
}

/// An atomic pointer with tag bits in its low (alignment) bits.
pub(crate) struct Atomic<T> {
    data: AtomicUsize,
    _marker: PhantomData<*mut T>,
}

// SAFETY: like crossbeam's `Atomic<T>`: it hands out `Shared<T>` to any thread.
unsafe impl<T: Send + Sync> Send for Atomic<T> {}
// SAFETY: as above.
unsafe impl<T: Send + Sync> Sync for Atomic<T> {}

/// An owned heap object (a `Box` in disguise).
pub(crate) struct Owned<T> {
    data: usize,
    _marker: PhantomData<Box<T>>,
}

/// A pointer loaded under a guard.
pub(crate) struct Shared<'g, T> {
    data: usize,
    _marker: PhantomData<(&'g (), *const T)>,
}

impl<T> Clone for Shared<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for Shared<'_, T> {}

/// A pin of the (non-existent) collector.
pub(crate) struct Guard {
    _private: (),
}

/// The error of a failed `compare_exchange`: the current value and the unused new one.
pub(crate) struct CompareExchangeError<'g, T, P> {
    pub(crate) current: Shared<'g, T>,
    pub(crate) new: P,
}

/// Something that can be stored in an `Atomic`.
pub(crate) trait Pointer<T> {
    fn into_usize(self) -> usize;
    /// # Safety
    /// `data` must come from `into_usize` of the same pointer type.
    unsafe fn from_usize(data: usize) -> Self;
}

impl<T> Pointer<T> for Owned<T> {
    fn into_usize(self) -> usize {
        let d = self.data;
        std::mem::forget(self);
        d
    }
    unsafe fn from_usize(data: usize) -> Self {
        Owned { data, _marker: PhantomData }
    }
}

impl<T> Pointer<T> for Shared<'_, T> {
    fn into_usize(self) -> usize {
        self.data
    }
    unsafe fn from_usize(data: usize) -> Self {
        Shared { data, _marker: PhantomData }
    }
}

impl<T> Atomic<T> {
    pub(crate) fn null() -> Self {
        Atomic { data: AtomicUsize::new(0), _marker: PhantomData }
    }

    pub(crate) fn load<'g>(&self, ord: Ordering, _: &'g Guard) -> Shared<'g, T> {
        Shared { data: self.data.load(ord), _marker: PhantomData }
    }

    pub(crate) fn store<P: Pointer<T>>(&self, new: P, ord: Ordering) {
        self.data.store(new.into_usize(), ord);
    }

    pub(crate) fn swap<'g, P: Pointer<T>>(
        &self,
        new: P,
        ord: Ordering,
        _: &'g Guard,
    ) -> Shared<'g, T> {
        Shared { data: self.data.swap(new.into_usize(), ord), _marker: PhantomData }
    }

    pub(crate) fn compare_exchange<'g, P: Pointer<T>>(
        &self,
        current: Shared<'_, T>,
        new: P,
        success: Ordering,
        failure: Ordering,
        _: &'g Guard,
    ) -> Result<Shared<'g, T>, CompareExchangeError<'g, T, P>> {
        let new = new.into_usize();
        match self.data.compare_exchange(current.data, new, success, failure) {
            Ok(_) => Ok(Shared { data: new, _marker: PhantomData }),
            Err(actual) => Err(CompareExchangeError {
                current: Shared { data: actual, _marker: PhantomData },
                // SAFETY: `new` came from `into_usize` of a `P` just above.
                new: unsafe { P::from_usize(new) },
            }),
        }
    }
}

impl<T> Owned<T> {
    pub(crate) fn new(value: T) -> Self {
        let data = Box::into_raw(Box::new(value)) as usize;
        debug_assert_eq!(data & tag_mask::<T>(), 0);
        Owned { data, _marker: PhantomData }
    }

    pub(crate) fn into_shared<'g>(self, _: &'g Guard) -> Shared<'g, T> {
        Shared { data: self.into_usize(), _marker: PhantomData }
    }
}

impl<T> Deref for Owned<T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: `data` is a live `Box` allocation we own.
        unsafe { &*((self.data & !tag_mask::<T>()) as *const T) }
    }
}

impl<T> DerefMut for Owned<T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as above, and we own it exclusively.
        unsafe { &mut *((self.data & !tag_mask::<T>()) as *mut T) }
    }
}

impl<T> Drop for Owned<T> {
    fn drop(&mut self) {
        // SAFETY: an `Owned` that was not converted into a pointer still owns its box.
        drop(unsafe { Box::from_raw((self.data & !tag_mask::<T>()) as *mut T) });
    }
}

impl<'g, T> Shared<'g, T> {
    pub(crate) fn null() -> Self {
        Shared { data: 0, _marker: PhantomData }
    }

    pub(crate) fn is_null(&self) -> bool {
        self.data & !tag_mask::<T>() == 0
    }

    pub(crate) fn tag(&self) -> usize {
        self.data & tag_mask::<T>()
    }

    /// The pointer without its tag (for comparing addresses).
    pub(crate) fn as_raw(&self) -> *const T {
        (self.data & !tag_mask::<T>()) as *const T
    }

    pub(crate) fn with_tag(&self, tag: usize) -> Self {
        Shared {
            data: (self.data & !tag_mask::<T>()) | (tag & tag_mask::<T>()),
            _marker: PhantomData,
        }
    }

    /// # Safety
    /// As crossbeam's: the pointee must be alive (here: it is never freed while the test runs).
    pub(crate) unsafe fn as_ref(&self) -> Option<&'g T> {
        // SAFETY: the caller's contract; the trivial reclaimer never frees retired objects.
        unsafe { ((self.data & !tag_mask::<T>()) as *const T).as_ref() }
    }

    /// # Safety
    /// As `as_ref`, and non-null.
    pub(crate) unsafe fn deref(&self) -> &'g T {
        // SAFETY: the caller's contract.
        unsafe { &*((self.data & !tag_mask::<T>()) as *const T) }
    }

    /// # Safety
    /// The caller must own the pointee exclusively.
    pub(crate) unsafe fn into_owned(self) -> Owned<T> {
        Owned { data: self.data & !tag_mask::<T>(), _marker: PhantomData }
    }
}

impl Guard {
    /// The trivial reclaimer: leak. (Never freeing is always safe; see the module doc.)
    ///
    /// # Safety
    /// Same contract as crossbeam's; nothing is freed, so nothing can go wrong here.
    pub(crate) unsafe fn defer_destroy<T>(&self, _: Shared<'_, T>) {}

    pub(crate) fn flush(&self) {}

    pub(crate) fn repin(&mut self) {}
}

pub(crate) fn pin() -> Guard {
    Guard { _private: () }
}

/// # Safety
/// As crossbeam's: only where no other thread can reach the objects used.
pub(crate) unsafe fn unprotected() -> &'static Guard {
    static UNPROTECTED: Guard = Guard { _private: () };
    &UNPROTECTED
}

impl<T> std::fmt::Debug for Owned<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Owned({:#x})", self.data)
    }
}

impl<T> std::fmt::Debug for Shared<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Shared({:#x})", self.data)
    }
}
