//! Cache-line transfer counting (`--features line-count` only; every call compiles to nothing
//! otherwise): evidence for many cores from a machine with two (issue #15).
//!
//! Each instrumented write — an atomic store or read-modify-write, a lock acquisition, an
//! allocation or free of a version — calls [`write()`] with its site and address. A global map
//! remembers, per 64-byte line, the thread that wrote it last; a write that finds the line last
//! written by *another* thread is a **transfer**: on real hardware that core must first take the
//! line from the other core's cache (an invalidation and a miss, 50–150 ns across cores,
//! more across sockets). Writes that find their own line are free by comparison. The count
//! depends on the interleaving, not on the number of cores: a line two threads take turns
//! writing costs a transfer per turn whether the threads run on 2 cores or 64.
//!
//! What is not instrumented, because it lives inside dependencies: the epoch collector's
//! internal lines (pinning writes the thread's own record; a full bag of 64 deferred frees is
//! pushed onto a global queue) and the allocator's own metadata. Version frees *are* counted
//! (a free on another thread than the allocation is a transfer of that line).
//!
//! The instrumented build is slower (one map update per write), so its throughput says nothing;
//! only the counts per committed txn are read from it.

/// Where an instrumented write happens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(usize)]
pub enum Site {
    /// The commit clock's `fetch_add`.
    Clock,
    /// A snapshot registry slot (claim and release).
    Registry,
    /// A chain's head pointer (install, unlink, seal) or a version's `next` (GC's cut).
    ChainLink,
    /// A version's commit timestamp (`publish`).
    VersionStamp,
    /// A txn state word (`Committing`, `Committed`, `Aborted`).
    StateWord,
    /// A key-index shard lock (`DashMap`; taking a read lock writes its word too).
    ShardLock,
    /// The baseline store's per-row mutex (lock and unlock).
    RowLock,
    /// A version's allocation or free (the allocator's line of it).
    Version,
    /// A txn state word's own allocation or free (txns that write more than one key).
    StateAlloc,
    /// The database core's reference count: a txn's lease, on its thread's stripe (`lease.rs`).
    CoreRef,
    /// Per-thread statistics stripes and the in-flight commit count.
    Stats,
}

impl Site {
    /// Every site, in `repr` order.
    pub const ALL: [Site; 11] = [
        Site::Clock,
        Site::Registry,
        Site::ChainLink,
        Site::VersionStamp,
        Site::StateWord,
        Site::ShardLock,
        Site::RowLock,
        Site::Version,
        Site::StateAlloc,
        Site::CoreRef,
        Site::Stats,
    ];

    /// A short name for tables.
    pub fn name(self) -> &'static str {
        match self {
            Site::Clock => "clock",
            Site::Registry => "registry",
            Site::ChainLink => "chain link",
            Site::VersionStamp => "version stamp",
            Site::StateWord => "state word",
            Site::ShardLock => "shard lock",
            Site::RowLock => "row lock",
            Site::Version => "version alloc/free",
            Site::StateAlloc => "state alloc/free",
            Site::CoreRef => "core refcount",
            Site::Stats => "stats stripes",
        }
    }
}

/// Records a write at `addr` from `site` (nothing without the `line-count` feature).
#[inline(always)]
pub fn write<T: ?Sized>(site: Site, addr: *const T) {
    #[cfg(feature = "line-count")]
    crate::sync::line_tally::write(site, addr as *const u8 as usize);
    #[cfg(not(feature = "line-count"))]
    let _ = (site, addr);
}

/// Whether this build counts (the `line-count` feature).
pub const ENABLED: bool = cfg!(feature = "line-count");

/// The tallies since the last call, per site (`Site::ALL` order): (writes, transfers). Threads
/// that are still running contribute what they flushed; the calling thread flushes its own.
/// Worker threads flush when they exit. Empty without the feature.
pub fn take() -> Vec<(Site, u64, u64)> {
    #[cfg(feature = "line-count")]
    {
        let t = crate::sync::line_tally::take();
        Site::ALL.iter().zip(t).map(|(s, (w, x))| (*s, w, x)).collect()
    }
    #[cfg(not(feature = "line-count"))]
    Vec::new()
}
