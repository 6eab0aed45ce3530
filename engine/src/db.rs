//! `Database`: the handle users embed. Cheap to clone (`Arc`), `Send + Sync`; every method may be
//! called from any thread at once.
//!
//! A database owns an MVCC core (`strata_mvcc::Mvcc`), a catalog of named tables, and a
//! background GC thread that periodically reclaims versions no snapshot can see (commits also
//! reclaim inline on the keys they write). Tables are created, opened and dropped outside txns
//! (catalog changes are not transactional in this in-memory engine; the WAL issue logs them).

use crate::durable::{
    self, CheckpointReport, DurabilityStats, Durable, RecoveryReport, NEXT_TABLE_KEY, SYSTEM_TABLE,
};
use crate::error::{Error, Result};
use crate::retry::RetryPolicy;
use crate::sync::{Arc, AtomicBool, AtomicU32, Condvar, Mutex, OnceLock, Ordering, RwLock, Weak};
use crate::txn::{Snapshot, Txn};
use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::thread::{JoinHandle, ThreadId};
use std::time::Duration;
use strata_mvcc::{GcReport, Isolation, Mvcc, MvccStats, StoreKind, TableId, Timestamp, TxnMode};
use strata_wal::{
    AppendFrom, Durability, FileStorage, LogOptions, MmapStorage, Storage, SyncMethod,
};

/// Longest table name, in bytes.
pub const TABLE_NAME_BYTES_MAX: usize = 255;

/// Database options. The struct is `#[non_exhaustive]` (fields are added over time), so code
/// outside this crate builds it from `Options::default()` and its setters:
///
/// ```
/// use strata::{Database, Durability, Isolation, Options};
/// let db = Database::with_options(
///     Options::default().isolation(Isolation::Serializable).durability(Durability::Sync),
/// );
/// # drop(db);
/// ```
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
    /// What a commit waits for by default in a database opened from a directory
    /// (`Txn::set_durability` overrides it per txn). Ignored in memory.
    pub durability: Durability,
    /// The largest log segment (preallocated). A new log starts with a 256 KiB segment (or this,
    /// if smaller) and each next segment doubles, up to this (`strata_wal::next_segment_bytes`).
    pub segment_bytes: u64,
    /// Checkpoint when the log since the last checkpoint reaches this many bytes...
    pub checkpoint_log_bytes: u64,
    /// ...or when this much time has passed and anything was logged (`None`: only by size and
    /// `Database::checkpoint`).
    pub checkpoint_interval: Option<Duration>,
    /// How `Database::open` writes its files.
    pub file_io: FileIo,
    /// The isolation level of `Database::begin` and `Database::transaction` (per-txn choice:
    /// `begin_with`, `transaction_with`). `Serializable` needs the lock-free store.
    pub isolation: Isolation,
    /// Operator's choice, off by default: open a database whose log has *media damage* (intact
    /// records past a bad one, which a crash never leaves) by keeping the valid prefix, dropping
    /// the records past the damage and moving every log segment aside (renamed `*.damaged`,
    /// never deleted); `Database::recovery_report` says what was dropped. Without it such an
    /// open fails with `Error::Corrupt` and changes no file. A torn tail is recovered either way.
    pub salvage: bool,
    /// Whether `close` writes a checkpoint first (on by default), so the next open replays no
    /// log: the changes since the last checkpoint go into the base file, the log continues in
    /// a new segment of the smallest size, and the spare segments are removed. A close then
    /// takes as long as that checkpoint. A failed one loses nothing (the log still holds every
    /// commit) and `close` returns its error after closing. Off: `close` only syncs the log.
    pub checkpoint_on_close: bool,
}

/// How a database opened from a directory writes its log and checkpoints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum FileIo {
    /// Through `memmap2` mappings of the preallocated segments, synced with `fdatasync`.
    #[default]
    Mmap,
    /// Through mappings, synced with `msync` (for comparison).
    MmapMsync,
    /// Positioned writes (`pwrite`) and `fdatasync` (for comparison, and a fallback).
    Pwrite,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            store: StoreKind::LockFree,
            gc_interval: Some(Duration::from_millis(100)),
            retry: RetryPolicy::default(),
            durability: Durability::Sync,
            segment_bytes: strata_wal::log::SEGMENT_BYTES_DEFAULT,
            checkpoint_log_bytes: 256 * 1024 * 1024,
            checkpoint_interval: Some(Duration::from_secs(60)),
            file_io: FileIo::Mmap,
            isolation: Isolation::Snapshot,
            salvage: false,
            checkpoint_on_close: true,
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

    /// Sets the default commit durability.
    pub fn durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    /// Sets the largest log segment size (at least 4 KiB); segments start small and double up
    /// to it.
    pub fn segment_bytes(mut self, bytes: u64) -> Self {
        self.segment_bytes = bytes.max(4096);
        self
    }

    /// Sets how files are written.
    pub fn file_io(mut self, io: FileIo) -> Self {
        self.file_io = io;
        self
    }

    /// Sets the default isolation level.
    pub fn isolation(mut self, isolation: Isolation) -> Self {
        self.isolation = isolation;
        self
    }

    /// Sets `salvage` (see the field: an operator's explicit choice, never a default).
    pub fn salvage(mut self, salvage: bool) -> Self {
        self.salvage = salvage;
        self
    }

    /// Sets whether `close` checkpoints first (see the field).
    pub fn checkpoint_on_close(mut self, on: bool) -> Self {
        self.checkpoint_on_close = on;
        self
    }

    /// Sets when background checkpoints run: by log size, and (optionally) by age.
    pub fn checkpoints(mut self, log_bytes: u64, interval: Option<Duration>) -> Self {
        self.checkpoint_log_bytes = log_bytes;
        self.checkpoint_interval = interval;
        self
    }
}

/// A lock on a database directory's `LOCK` file, released explicitly when dropped — on close,
/// on a failed open, after `strata check`. Only closing the file is not enough: a child process
/// forked by any thread meanwhile shares the open file description (and its `flock`) until it
/// execs, so the directory stayed locked for a moment and a reopen or check got `AlreadyOpen`.
#[derive(Debug)]
pub(crate) struct DirLock(pub(crate) std::fs::File);

impl Drop for DirLock {
    fn drop(&mut self) {
        let _ = self.0.unlock();
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
    pub(crate) durable: Option<Arc<Durable>>,
    background: Mutex<Option<Background>>,
    /// Serialises `close` calls; true once closed.
    closed: Mutex<bool>,
    /// The registry key of a database opened from a directory.
    path: Option<PathBuf>,
    /// State of layers built on this database (`Database::extension`), one per type.
    extensions: Mutex<HashMap<TypeId, Arc<dyn Any + Send + Sync>>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // The last handle went away without `close`: do what it would (sync, stop, unlock).
        let _ = self.close();
    }
}

/// The background thread (GC; for durable databases also spare segments and checkpoints).
/// Stopped and joined by `close`.
struct Background {
    stop: Arc<(Mutex<bool>, Condvar)>,
    handle: Option<JoinHandle<()>>,
    id: Option<ThreadId>,
}

impl Background {
    fn stop(mut self) {
        let (lock, cv) = &*self.stop;
        *lock.lock() = true;
        cv.notify_all();
        if let Some(h) = self.handle.take() {
            // The thread itself may drop the last handle (it upgrades a Weak per tick): it
            // must not join itself; it exits on its own after the flag.
            if Some(std::thread::current().id()) != self.id {
                // A panic inside the thread is a bug already printed by the panic hook.
                let _ = h.join();
            }
        }
    }
}

/// Databases open in this process, by canonical directory: a second `open` of the same
/// directory shares the engine instead of failing on its own lock file.
fn open_registry() -> &'static Mutex<HashMap<PathBuf, Weak<Inner>>> {
    static OPEN: OnceLock<Mutex<HashMap<PathBuf, Weak<Inner>>>> = OnceLock::new();
    OPEN.get_or_init(|| Mutex::new(HashMap::new()))
}

/// An embedded Strata database.
#[derive(Clone)]
pub struct Database {
    pub(crate) inner: Arc<Inner>,
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
        Database::assemble(mvcc, HashMap::new(), 1, options, None, None)
    }

    fn assemble(
        mvcc: Mvcc,
        catalog: HashMap<String, Table>,
        next_table: u32,
        options: Options,
        durable: Option<Arc<Durable>>,
        path: Option<PathBuf>,
    ) -> Database {
        if let Some(d) = &durable {
            // A failed log write or sync stops the database at once, reads included: commits
            // it published in memory may not survive a restart, so nobody may read them.
            let core = mvcc.clone();
            d.log.on_failure(move |reason| core.stop(reason));
        }
        let inner = Arc::new(Inner {
            mvcc,
            catalog: RwLock::new(catalog),
            next_table: AtomicU32::new(next_table),
            options,
            durable,
            background: Mutex::new(None),
            closed: Mutex::new(false),
            path,
            extensions: Mutex::new(HashMap::new()),
        });
        let tick = match (inner.options.gc_interval, &inner.durable) {
            (Some(gc), Some(_)) => Some(gc.min(Duration::from_millis(100))),
            (Some(gc), None) => Some(gc),
            (None, Some(_)) => Some(Duration::from_millis(100)),
            (None, None) => None,
        };
        if let Some(tick) = tick {
            *inner.background.lock() = spawn_background(Arc::downgrade(&inner), tick);
        }
        Database { inner }
    }

    /// Opens the database in `dir`, creating the directory and an empty database if needed:
    /// takes the directory's lock file (another process gets `AlreadyOpen`), recovers the
    /// newest checkpoint and the log after it, and continues the clock past everything
    /// recovered. Opening a directory this process already has open returns that database
    /// (sharing one engine; `options` are ignored then).
    pub fn open(dir: impl AsRef<Path>, options: Options) -> Result<Database> {
        let io = |what: &str, e: std::io::Error| Error::Io { message: format!("{what}: {e}") };
        let dir = dir.as_ref();
        std::fs::create_dir_all(dir).map_err(|e| io("creating the directory", e))?;
        let path = dir.canonicalize().map_err(|e| io("resolving the directory", e))?;
        let mut registry = open_registry().lock();
        if let Some(inner) = registry.get(&path).and_then(Weak::upgrade) {
            if !*inner.closed.lock() {
                return Ok(Database { inner });
            }
        }
        let lock_file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(path.join(LOCK_FILE))
            .map_err(|e| io("opening the lock file", e))?;
        let lock_file = match lock_file.try_lock() {
            Ok(()) => DirLock(lock_file),
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(Error::AlreadyOpen { path: path.display().to_string() })
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io("locking the directory", e)),
        };
        let dir_err = |e| io("opening the directory", e);
        let storage: Arc<dyn Storage> = match options.file_io {
            FileIo::Mmap => {
                Arc::new(MmapStorage::new(&path, SyncMethod::Fdatasync).map_err(dir_err)?)
            }
            FileIo::MmapMsync => {
                Arc::new(MmapStorage::new(&path, SyncMethod::Msync).map_err(dir_err)?)
            }
            FileIo::Pwrite => Arc::new(FileStorage::new(&path).map_err(dir_err)?),
        };
        let db = Database::open_storage(storage, options, Some(lock_file), Some(path.clone()))?;
        registry.retain(|_, w| w.strong_count() > 0);
        registry.insert(path, Arc::downgrade(&db.inner));
        Ok(db)
    }

    /// Opens a database on any `Storage` (tests use `FaultyStorage` to crash it at will). No
    /// lock file: the caller keeps other openers away.
    pub fn open_with_storage(storage: Arc<dyn Storage>, options: Options) -> Result<Database> {
        Database::open_storage(storage, options, None, None)
    }

    fn open_storage(
        storage: Arc<dyn Storage>,
        options: Options,
        lock_file: Option<DirLock>,
        path: Option<PathBuf>,
    ) -> Result<Database> {
        match storage.remove(strata_wal::checkpoint::CHECKPOINT_TMP) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(Error::Io { message: format!("removing a stale checkpoint: {e}") })
            }
            _ => {}
        }
        let (mvcc, from, mut report, last_seq, base) =
            durable::recover(&*storage, options.store, options.salvage)?;
        let base = base.ok_or_else(|| Error::Io { message: "recovery opened no base".into() })?;
        let from = match from {
            Some(from) => from,
            // A new database, a log that did not end cleanly, or one written before segments
            // had headers: a checkpoint of what was recovered, naming a fresh segment.
            None => {
                let (seq, bytes) =
                    (last_seq + 1, strata_wal::first_segment_bytes(options.segment_bytes));
                let end = if report.salvaged.is_some() {
                    let (end, moved) =
                        durable::reset_log_aside(&mvcc, &base, &*storage, seq, bytes)?;
                    report.moved_aside = moved;
                    end
                } else {
                    durable::reset_log(&mvcc, &base, &*storage, seq, bytes)?
                };
                report.reset_log = true;
                report.checkpoint_ts = report.recovered_ts;
                report.checkpoint_log_seq = Some(seq);
                AppendFrom::End(end)
            }
        };
        let (tables, next_table) = durable::read_catalog(&mvcc)?;
        // Rows of tables that are not in the catalog (dropped, or written by a commit that
        // raced the drop) go to GC.
        let live: Vec<TableId> = tables.values().copied().collect();
        for id in (1..next_table).map(TableId).filter(|id| !live.contains(id)) {
            mvcc.drop_table(id);
        }
        let catalog = tables
            .into_iter()
            .map(|(name, id)| {
                mvcc.label_table(id, &name);
                let table = Table {
                    id,
                    name: Arc::from(name.as_str()),
                    dropped: Arc::new(AtomicBool::new(false)),
                };
                (name, table)
            })
            .collect();
        let log_options =
            LogOptions { segment_bytes: options.segment_bytes, ..LogOptions::default() };
        let durable = Durable::open(storage, base, log_options, from, report, lock_file)?;
        Ok(Database::assemble(mvcc, catalog, next_table, options, Some(Arc::new(durable)), path))
    }

    /// Closes the database for every handle: new calls fail with `Error::Closed`, in-flight
    /// commits finish (durable or failed) first, the log is synced, background work stops and
    /// the directory lock is released. Idempotent; safe from several threads at once.
    pub fn close(&self) -> Result<()> {
        self.inner.close()
    }

    /// Whether `close` was called.
    pub fn is_closed(&self) -> bool {
        self.inner.mvcc.is_closed()
    }

    /// Writes a checkpoint now (background checkpoints also run by log size and age) and
    /// recycles the log it covers. In memory: nothing to do.
    pub fn checkpoint(&self) -> Result<CheckpointReport> {
        self.inner.check_open()?;
        match &self.inner.durable {
            Some(d) => d.checkpoint(&self.inner.mvcc),
            None => Ok(CheckpointReport::default()),
        }
    }

    /// Log, group-commit and checkpoint counters; `None` in memory.
    pub fn durability_stats(&self) -> Option<DurabilityStats> {
        self.inner.durable.as_ref().map(|d| d.stats())
    }

    /// What recovery did when this database was opened; `None` in memory.
    pub fn recovery_report(&self) -> Option<RecoveryReport> {
        self.inner.durable.as_ref().map(|d| d.recovery.clone())
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
        // Relaxed: the catalog lock orders every access.
        let id = self.inner.next_table.load(Ordering::Relaxed);
        let next = id.checked_add(1).ok_or(Error::InvalidTableName {
            name: name.chars().take(64).collect(),
            reason: "table ids exhausted",
        })?;
        let (key, next_bytes) = (id.to_be_bytes(), next.to_le_bytes());
        self.commit_catalog(&[(&key, Some(name.as_bytes())), (NEXT_TABLE_KEY, Some(&next_bytes))])?;
        self.inner.next_table.store(next, Ordering::Relaxed);
        let id = TableId(id);
        self.inner.mvcc.label_table(id, name);
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
        let mut catalog = self.inner.catalog.write();
        let id =
            catalog.get(name).ok_or_else(|| Error::TableNotFound { name: name.to_string() })?.id;
        self.commit_catalog(&[(&id.0.to_be_bytes(), None)])?;
        let table =
            catalog.remove(name).ok_or_else(|| Error::TableNotFound { name: name.to_string() })?;
        drop(catalog);
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

    /// A catalog change: one txn on the system table, logged and as durable as a commit.
    /// The caller holds the catalog write lock, so catalog txns never conflict. In memory the
    /// catalog map alone is the truth (the system table is how the catalog persists).
    fn commit_catalog(&self, writes: &[(&[u8], Option<&[u8]>)]) -> Result<()> {
        if self.inner.durable.is_none() {
            return self.inner.check_open();
        }
        let mut txn = self.begin()?;
        for (key, value) in writes {
            txn.write_raw(SYSTEM_TABLE, key, *value)?;
        }
        txn.commit().map(|_| ())
    }

    /// Starts a read-write txn at the default isolation level (`Options::isolation`). Its
    /// snapshot is taken now.
    pub fn begin(&self) -> Result<Txn> {
        self.begin_with(self.inner.options.isolation)
    }

    /// Starts a read-write txn at `isolation`. A `Serializable` txn that wrote something fails
    /// its commit with the retryable `Error::SerializationFailure` if anything it read (a key,
    /// or any key inside a range it scanned) was changed by a commit after its snapshot.
    pub fn begin_with(&self, isolation: Isolation) -> Result<Txn> {
        let txn = self.inner.mvcc.begin_with(TxnMode::ReadWrite, isolation)?;
        let durability = self.inner.options.durability;
        Ok(Txn::new(txn, self.inner.durable.clone(), durability))
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
    pub fn transaction<T>(&self, body: impl FnMut(&mut Txn) -> Result<T>) -> Result<T> {
        self.transaction_with(self.inner.options.isolation, body)
    }

    /// `transaction` at the given isolation level (serialization failures are retried like
    /// conflicts).
    ///
    /// ```
    /// use strata::{Database, Isolation};
    /// let db = Database::in_memory();
    /// let shifts = db.create_table("shifts")?;
    /// db.transaction_with(Isolation::Serializable, |txn| {
    ///     // An owned, Send iterator in key order (range_rev: descending; prefix: by prefix).
    ///     let today = txn.prefix(&shifts, "2026-11-25/")?.count();
    ///     if today < 2 {
    ///         txn.put(&shifts, "2026-11-25/alice", "on call")?;
    ///     }
    ///     Ok(())
    /// })?;
    /// assert_eq!(db.begin_read()?.prefix(&shifts, "2026-11-25/")?.count(), 1);
    /// # Ok::<(), strata::Error>(())
    /// ```
    pub fn transaction_with<T>(
        &self,
        isolation: Isolation,
        mut body: impl FnMut(&mut Txn) -> Result<T>,
    ) -> Result<T> {
        let policy = self.inner.options.retry;
        let attempts = policy.max_attempts.max(1);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut txn = self.begin_with(isolation)?;
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

    /// Per-database state of a layer built on top of the engine (the SQL frontend keeps its
    /// rowid counters here): one value per type, created by `init` on first use and shared by
    /// every handle of this database, including a second `Database::open` of the same
    /// directory in this process. It lives as long as the database.
    pub fn extension<T: Any + Send + Sync>(&self, init: impl FnOnce() -> T) -> Arc<T> {
        let mut map = self.inner.extensions.lock();
        let entry = map.entry(TypeId::of::<T>()).or_insert_with(|| Arc::new(init()));
        match Arc::clone(entry).downcast::<T>() {
            Ok(value) => value,
            Err(_) => panic!("the map is keyed by each value's own type id, so this cannot fail"),
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

/// The lock file in a database directory.
pub const LOCK_FILE: &str = "LOCK";

impl Inner {
    fn check_open(&self) -> Result<()> {
        Ok(self.mvcc.check_open()?)
    }

    fn close(&self) -> Result<()> {
        let mut closed = self.closed.lock();
        if *closed {
            return Ok(());
        }
        *closed = true;
        // First, so no background checkpoint or spare segment races the checkpoint at close.
        if let Some(bg) = self.background.lock().take() {
            bg.stop();
        }
        // Before the core closes (a checkpoint takes a snapshot). Commits may still run
        // meanwhile; they land in the log after the checkpoint, as at any other time.
        let mut checkpoint = Ok(());
        if let Some(d) = &self.durable {
            if self.options.checkpoint_on_close && d.log.failure().is_none() {
                checkpoint = d.checkpoint_for_close(&self.mvcc).map(|_| ());
            }
        }
        self.mvcc.close();
        let mut result = Ok(());
        if let Some(d) = &self.durable {
            // Wait for every in-flight commit (each holds the gate shared until acknowledged).
            drop(d.gate.write());
            if d.log.failure().is_none() {
                result = d
                    .log
                    .sync_all()
                    .and_then(|()| d.log.close_marker())
                    .map_err(durable::log_error);
            }
            drop(d.lock_file.lock().take()); // unlocks (`DirLock`)
        }
        let result = result.and(checkpoint);
        if let Some(path) = &self.path {
            let mut registry = open_registry().lock();
            if registry
                .get(path)
                .is_some_and(|w| w.strong_count() == 0 || std::ptr::eq(w.as_ptr(), self))
            {
                registry.remove(path);
            }
        }
        result
    }
}

fn spawn_background(inner: Weak<Inner>, tick: Duration) -> Option<Background> {
    let stop = Arc::new((Mutex::new(false), Condvar::new()));
    let signal = stop.clone();
    let handle = std::thread::Builder::new().name("strata-background".into()).spawn(move || {
        let (lock, cv) = &*signal;
        let mut stopped = lock.lock();
        while !*stopped {
            cv.wait_for(&mut stopped, tick);
            if *stopped {
                break;
            }
            drop(stopped);
            let Some(db) = inner.upgrade() else { return };
            if db.options.gc_interval.is_some() {
                db.mvcc.maybe_collect_garbage();
            }
            if let Some(d) = &db.durable {
                d.maintain(
                    &db.mvcc,
                    db.options.checkpoint_interval,
                    db.options.checkpoint_log_bytes,
                );
            }
            drop(db);
            stopped = lock.lock();
        }
    });
    // If the thread cannot be spawned (resource exhaustion), run without it rather than fail:
    // inline GC on commit, `collect_garbage` and `checkpoint` still work.
    let handle = handle.ok()?;
    let id = Some(handle.thread().id());
    Some(Background { stop, handle: Some(handle), id })
}
