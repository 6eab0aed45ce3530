//! `Database`: the handle users embed. Cheap to clone (`Arc`), `Send + Sync`; every method may be
//! called from any thread at once.
//!
//! A database owns an MVCC core (`strata_mvcc::Mvcc`), a catalog of named tables, and a
//! background GC thread that periodically reclaims versions no snapshot can see (commits also
//! reclaim inline on the keys they write). Tables are created, opened and dropped outside txns
//! (catalog changes are not transactional in this in-memory engine; the WAL issue logs them).

use crate::error::{Error, Result};
use crate::retry::RetryPolicy;
use crate::sync::{Arc, AtomicBool, AtomicU32, Condvar, Mutex, Ordering, RwLock};
use crate::txn::{Snapshot, Txn};
use std::collections::HashMap;
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::thread::JoinHandle;
use std::time::Duration;
use strata_mvcc::{GcReport, Mvcc, MvccStats, StoreKind, TableId, Timestamp, TxnMode};

/// Longest table name, in bytes.
pub const TABLE_NAME_BYTES_MAX: usize = 255;

/// Database options. Pass them explicitly: `Database::with_options(Options { .. })`.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Options {
    /// Version store: Strata's lock-free chains, or the mutex-per-chain baseline.
    pub store: StoreKind,
    /// How often the background GC thread wakes to consider a full pass (it runs one only when
    /// enough is reclaimable: `strata_mvcc::Mvcc::maybe_collect_garbage`); `None` disables the
    /// thread (inline GC on commit and `Database::collect_garbage` still work).
    pub gc_interval: Option<Duration>,
    /// Retry policy of `Database::transaction`.
    pub retry: RetryPolicy,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            store: StoreKind::LockFree,
            gc_interval: Some(Duration::from_millis(100)),
            retry: RetryPolicy::default(),
        }
    }
}

impl Options {
    /// Sets the version store.
    pub fn store(mut self, store: StoreKind) -> Self {
        self.store = store;
        self
    }

    /// Sets (or disables) the background GC interval.
    pub fn gc_interval(mut self, interval: Option<Duration>) -> Self {
        self.gc_interval = interval;
        self
    }

    /// Sets the retry policy of `Database::transaction`.
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }
}

/// A handle to a named table. Cheap to clone; stays valid until the table is dropped, after
/// which operations through it fail with `Error::TableDropped`.
#[derive(Clone)]
pub struct Table {
    pub(crate) id: TableId,
    pub(crate) name: Arc<str>,
    pub(crate) dropped: Arc<AtomicBool>,
}

impl fmt::Debug for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Table({:?}, {})", self.name, self.id)
    }
}

impl Table {
    /// The table's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The table's engine id.
    pub fn id(&self) -> TableId {
        self.id
    }

    pub(crate) fn check_live(&self) -> Result<()> {
        // Acquire: pairs with the Release in `drop_table`.
        if self.dropped.load(Ordering::Acquire) {
            return Err(Error::TableDropped { name: self.name.to_string() });
        }
        Ok(())
    }
}

pub(crate) struct Inner {
    pub(crate) mvcc: Mvcc,
    catalog: RwLock<HashMap<String, Table>>,
    next_table: AtomicU32,
    options: Options,
}

/// Stops and joins the background GC thread when the last `Database` handle goes away.
struct GcThread {
    stop: Arc<(Mutex<bool>, Condvar)>,
    handle: Option<JoinHandle<()>>,
}

impl Drop for GcThread {
    fn drop(&mut self) {
        let (lock, cv) = &*self.stop;
        *lock.lock() = true;
        cv.notify_all();
        if let Some(h) = self.handle.take() {
            // A panic inside GC is a bug; surfacing it here would abort inside drop. It has
            // already been printed by the panic hook.
            let _ = h.join();
        }
    }
}

/// An embedded Strata database.
#[derive(Clone)]
pub struct Database {
    pub(crate) inner: Arc<Inner>,
    _gc: Option<Arc<GcThread>>,
}

impl fmt::Debug for Database {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Database")
            .field("mvcc", &self.inner.mvcc)
            .field("tables", &self.inner.catalog.read().len())
            .finish()
    }
}

fn validate_name(name: &str) -> Result<()> {
    let reason = if name.is_empty() {
        "empty"
    } else if name.len() > TABLE_NAME_BYTES_MAX {
        "longer than 255 bytes"
    } else if name.chars().any(char::is_control) {
        "contains control characters"
    } else {
        return Ok(());
    };
    Err(Error::InvalidTableName { name: name.chars().take(64).collect(), reason })
}

impl Database {
    /// A new in-memory database with default options (lock-free store, background GC).
    pub fn in_memory() -> Database {
        Database::with_options(Options::default())
    }

    /// A new in-memory database.
    pub fn with_options(options: Options) -> Database {
        let mvcc = Mvcc::new(options.store, Timestamp::ZERO);
        let gc = options.gc_interval.map(|interval| Arc::new(spawn_gc(mvcc.clone(), interval)));
        let inner = Inner {
            mvcc,
            catalog: RwLock::new(HashMap::new()),
            next_table: AtomicU32::new(1),
            options,
        };
        Database { inner: Arc::new(inner), _gc: gc }
    }

    /// The options this database was opened with.
    pub fn options(&self) -> &Options {
        &self.inner.options
    }

    /// Creates a table; fails with `TableExists` if the name is taken.
    pub fn create_table(&self, name: &str) -> Result<Table> {
        validate_name(name)?;
        let mut catalog = self.inner.catalog.write();
        if catalog.contains_key(name) {
            return Err(Error::TableExists { name: name.to_string() });
        }
        // Relaxed: ids only need uniqueness; the catalog lock orders publication.
        let id = TableId(self.inner.next_table.fetch_add(1, Ordering::Relaxed));
        let table = Table { id, name: Arc::from(name), dropped: Arc::new(AtomicBool::new(false)) };
        catalog.insert(name.to_string(), table.clone());
        Ok(table)
    }

    /// Opens an existing table.
    pub fn open_table(&self, name: &str) -> Result<Table> {
        self.inner
            .catalog
            .read()
            .get(name)
            .cloned()
            .ok_or_else(|| Error::TableNotFound { name: name.to_string() })
    }

    /// Opens a table, creating it if needed.
    pub fn create_or_open_table(&self, name: &str) -> Result<Table> {
        match self.create_table(name) {
            Err(Error::TableExists { .. }) => self.open_table(name),
            other => other,
        }
    }

    /// Drops a table: its handles start failing with `TableDropped`, and GC removes its rows.
    /// Snapshots that already hold a handle cannot read it any more either (catalog changes are
    /// not versioned in this release; see docs/ARCHITECTURE.md).
    pub fn drop_table(&self, name: &str) -> Result<()> {
        let table = self
            .inner
            .catalog
            .write()
            .remove(name)
            .ok_or_else(|| Error::TableNotFound { name: name.to_string() })?;
        // Release: pairs with the Acquire in `Table::check_live`.
        table.dropped.store(true, Ordering::Release);
        self.inner.mvcc.drop_table(table.id);
        Ok(())
    }

    /// Names of all tables, sorted.
    pub fn list_tables(&self) -> Vec<String> {
        let mut names: Vec<String> = self.inner.catalog.read().keys().cloned().collect();
        names.sort();
        names
    }

    /// Starts a read-write txn. Its snapshot is taken now.
    pub fn begin(&self) -> Result<Txn> {
        let txn = self.inner.mvcc.begin(TxnMode::ReadWrite)?;
        Ok(Txn::new(txn))
    }

    /// Starts a read-only snapshot, taken now. It never conflicts and never blocks writers; while
    /// it lives, GC keeps the versions it can see.
    pub fn begin_read(&self) -> Result<Snapshot> {
        let txn = self.inner.mvcc.begin(TxnMode::ReadOnly)?;
        Ok(Snapshot::new(txn))
    }

    /// Runs `body` in a txn and commits it, re-running both on a retryable error (a conflict)
    /// with bounded, jittered backoff (`Options::retry`). Returns `RetryLimitExceeded` with the
    /// last error when the attempts run out. A non-retryable error from `body` rolls back and is
    /// returned as is. A panic in `body` rolls back and returns `Error::Panicked`.
    pub fn transaction<T>(&self, mut body: impl FnMut(&mut Txn) -> Result<T>) -> Result<T> {
        let policy = self.inner.options.retry;
        let attempts = policy.max_attempts.max(1);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut txn = self.begin()?;
            let outcome = match catch_unwind(AssertUnwindSafe(|| body(&mut txn))) {
                Ok(Ok(value)) => txn.commit().map(|_| value),
                Ok(Err(e)) => {
                    txn.rollback();
                    Err(e)
                }
                Err(panic) => {
                    drop(txn); // rolls back and leaves the registry
                    return Err(Error::Panicked { message: panic_message(&panic) });
                }
            };
            match outcome {
                Ok(value) => return Ok(value),
                Err(e) if e.is_retryable() && attempt < attempts => {
                    self.inner.mvcc.record_retry();
                    policy.wait(attempt);
                }
                Err(e) if e.is_retryable() => {
                    return Err(Error::RetryLimitExceeded { attempts: attempt, last: Box::new(e) })
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Runs a full GC pass now (the background thread does this every `gc_interval`).
    pub fn collect_garbage(&self) -> GcReport {
        self.inner.mvcc.collect_garbage()
    }

    /// Engine counters: commits, conflicts, retries, live and reclaimed versions, oldest
    /// snapshot age and GC lag (both in commits).
    pub fn stats(&self) -> MvccStats {
        self.inner.mvcc.stats()
    }
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_string()
    }
}

fn spawn_gc(mvcc: Mvcc, interval: Duration) -> GcThread {
    let stop = Arc::new((Mutex::new(false), Condvar::new()));
    let signal = stop.clone();
    let handle = std::thread::Builder::new().name("strata-gc".into()).spawn(move || {
        let (lock, cv) = &*signal;
        let mut stopped = lock.lock();
        while !*stopped {
            cv.wait_for(&mut stopped, interval);
            if *stopped {
                break;
            }
            drop(stopped);
            mvcc.maybe_collect_garbage();
            stopped = lock.lock();
        }
    });
    // If the thread cannot be spawned (resource exhaustion), run without background GC rather
    // than fail: inline GC on commit and `collect_garbage` still reclaim.
    GcThread { stop, handle: handle.ok() }
}
