//! `strata-store`: the base store under Strata's version chains.
//!
//! One file holds a copy-on-write B+tree of checksummed 4 KiB pages: for each key, its newest
//! value as of a checkpoint timestamp. Only the checkpointer writes it (`Base::checkpoint`),
//! one checkpoint at a time; any number of readers walk a `Snapshot` of one checkpoint's tree
//! without locks, in place through a read-only memory map. A checkpoint writes only the pages
//! its changed keys touch, into free pages or the end of the file, syncs them, then writes the
//! meta page of its generation's slot and syncs it: a crash at any point leaves the old tree or
//! the new one, whole. Pages the new tree no longer uses are reused once no snapshot that can
//! reach them is alive.
//!
//! The layout (`page`), the update and page reuse (`write`), reading (`read`) and verification
//! (`check`) each say their part; `docs/design/storage.md` has the whole design and what it
//! guarantees. The engine keeps every row's checkpointed version here (`strata::base`), with the
//! version chains in front of it. The handshake between readers, the switch to a new
//! checkpoint and page reuse is model-checked with loom (`tests/loom_pages.rs`, with canaries).
#![deny(unsafe_code)] // except the one read of a mapped page (`read.rs`; docs/UNSAFE.md §8b)

mod check;
mod error;
pub mod page;
mod read;
mod sync;
mod write;

#[cfg(loom)]
pub use sync::canary;

pub use check::{check, CheckReport};
pub use error::StoreError;
pub use read::{Range, Snapshot};
pub use write::Change;

use crate::sync::{fence_acquire, Arc, Mutex, RwLock, SnapArc};
use page::{Meta, MetaProblem, FORMAT_VERSION, PAGE_BYTES};
use read::{SnapshotState, Source};
use std::time::Instant;
use strata_wal::{Storage, StorageFile};
use write::{Alloc, Update};

/// What one checkpoint did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CheckpointReport {
    pub generation: u64,
    /// Changes applied (puts and deletes).
    pub changes: u64,
    /// Pages written, the meta page included.
    pub pages_written: u64,
    /// Pages this checkpoint stopped using (reusable once older snapshots end).
    pub pages_freed: u64,
    /// Rows in the new tree.
    pub rows: u64,
    /// Pages in use after it (the file may be longer).
    pub pages: u64,
    /// When the file's syncs began and ended (the pages' sync, then the meta page's): the
    /// window in which this checkpoint's writes reach the device, where they compete with the
    /// log's syncs (the storage suite splits commit latency by it).
    pub synced: Option<(Instant, Instant)>,
}

/// A base file, open for reading and checkpointing.
pub struct Base {
    name: String,
    file: Arc<dyn StorageFile>,
    /// Whether pages are read through a mapping (real files) or copied (`read_at`).
    mapped: bool,
    current: RwLock<Snapshot>,
    writer: Mutex<Writer>,
}

impl std::fmt::Debug for Base {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Base")
            .field("name", &self.name)
            .field("meta", self.snapshot().meta())
            .finish()
    }
}

struct Writer {
    alloc: Alloc,
    /// Every snapshot published while any holder of it may be alive: its generation and a
    /// handle. A snapshot whose only handle is this one is dead: no one else can get it (only
    /// the current one is handed out, and `current` holds that one too).
    published: Vec<(u64, SnapArc<SnapshotState>)>,
    /// The file's length in pages.
    file_pages: u64,
    /// Why an earlier checkpoint failed, if one did: no more are written.
    failed: Option<String>,
}

/// Grows the file by at least an eighth (and at least this many pages) at a time.
const GROW_PAGES_MIN: u64 = 16;

impl Base {
    /// Creates the base file `name` in `storage` (an empty tree at timestamp 0, generation 0)
    /// and opens it. Crash-safe: the file appears under its name only once its meta page is
    /// durable. Fails if `name` exists.
    pub fn create(storage: &dyn Storage, name: &str, user: u64) -> Result<Base, StoreError> {
        let tmp = format!("{name}.tmp");
        let _ = storage.remove(&tmp); // a crash while creating left it; it was never the base
        let file = storage
            .create_paged(&tmp, 2 * PAGE_BYTES as u64)
            .map_err(StoreError::io(name, "creating the file"))?;
        let meta = Meta { generation: 0, pages: 2, user, ..Meta::default() };
        file.write_at(0, &meta.encode()).map_err(StoreError::io(name, "writing the meta page"))?;
        file.sync().map_err(StoreError::io(name, "syncing the file"))?;
        drop(file);
        if storage.open_paged(name).is_ok() {
            return Err(StoreError::Io {
                file: name.into(),
                what: "creating the file",
                source: std::io::Error::new(std::io::ErrorKind::AlreadyExists, "it exists"),
            });
        }
        storage.rename(&tmp, name).map_err(StoreError::io(name, "renaming the new file"))?;
        storage.sync_dir().map_err(StoreError::io(name, "syncing the directory"))?;
        Base::open(storage, name)
    }

    /// Opens an existing base file: reads both meta pages and uses the newest that verifies,
    /// reads the free list, and maps the file. Reads no tree page (a page is verified when it
    /// is first read).
    ///
    /// A meta slot that does not verify while the other does is what a crash while writing it
    /// leaves, and is not an error; the owner can tell a checkpoint it relied on is missing by
    /// the `user` value (the engine stores where its log continues). Both slots bad is
    /// `Corrupt`; another format version is `Version`; a file that is not a base is `NotABase`.
    pub fn open(storage: &dyn Storage, name: &str) -> Result<Base, StoreError> {
        let file: Arc<dyn StorageFile> =
            Arc::from(storage.open_paged(name).map_err(StoreError::io(name, "opening the file"))?);
        let len = file.len().map_err(StoreError::io(name, "reading the file's length"))?;
        let mut metas: Vec<Result<Meta, MetaProblem>> = Vec::new();
        for slot in 0..2u64 {
            let mut b = vec![0u8; PAGE_BYTES];
            let n = file
                .read_at(slot * PAGE_BYTES as u64, &mut b)
                .map_err(StoreError::io(name, "reading a meta page"))?;
            metas.push(if n < PAGE_BYTES {
                Err(MetaProblem::Damaged(format!("the file is only {len} bytes")))
            } else {
                Meta::decode(&b).and_then(|m| {
                    if m.generation % 2 == slot {
                        Ok(m)
                    } else {
                        Err(MetaProblem::Damaged(format!(
                            "generation {} in slot {slot}",
                            m.generation
                        )))
                    }
                })
            });
        }
        if len < 2 * PAGE_BYTES as u64 && metas.iter().all(|m| m.is_err()) {
            return Err(StoreError::NotABase { file: name.into() });
        }
        for m in &metas {
            if let Err(MetaProblem::Version(found)) = m {
                return Err(StoreError::Version {
                    file: name.into(),
                    found: *found,
                    supported: FORMAT_VERSION,
                });
            }
        }
        if metas.iter().all(|m| matches!(m, Err(MetaProblem::NotABase))) {
            return Err(StoreError::NotABase { file: name.into() });
        }
        let meta = match (&metas[0], &metas[1]) {
            (Ok(a), Ok(b)) => {
                if a.generation.abs_diff(b.generation) != 1 {
                    return Err(StoreError::Corrupt {
                        page: 0,
                        what: format!(
                            "the meta pages hold generations {} and {}, not consecutive ones",
                            a.generation, b.generation
                        ),
                    });
                }
                if a.generation > b.generation {
                    *a
                } else {
                    *b
                }
            }
            (Ok(m), _) | (_, Ok(m)) => *m,
            (Err(a), Err(b)) => {
                return Err(StoreError::Corrupt {
                    page: 0,
                    what: format!("neither meta page verifies (page 0: {a:?}; page 1: {b:?})"),
                })
            }
        };
        if meta.pages * PAGE_BYTES as u64 > len {
            return Err(StoreError::Corrupt {
                page: meta.pages - 1,
                what: format!("{} pages in use, the file has {len} bytes", meta.pages),
            });
        }
        let mapped_source = match file.map_read_only() {
            Some(map) => {
                Some(Source::Map(Arc::new(map.map_err(StoreError::io(name, "mapping the file"))?)))
            }
            None => None,
        };
        let mapped = mapped_source.is_some();
        let source = mapped_source.unwrap_or_else(|| Source::File(file.clone()));
        let (list_pages, free) = write::read_free_list(&source, meta.free_list, meta.pages)?;
        if free.len() as u64 != meta.free_pages {
            return Err(StoreError::Corrupt {
                page: meta.free_list,
                what: format!(
                    "the free list holds {} pages, the meta says {}",
                    free.len(),
                    meta.free_pages
                ),
            });
        }
        let alloc = Alloc {
            reusable: free.into_iter().collect(),
            pending: Vec::new(),
            pages: meta.pages,
            list_pages,
        };
        let snap = Snapshot(SnapArc::new(SnapshotState { meta, source }));
        let writer = Writer {
            alloc,
            published: vec![(meta.generation, snap.0.clone())],
            file_pages: len / PAGE_BYTES as u64,
            failed: None,
        };
        Ok(Base {
            name: name.into(),
            file,
            mapped,
            current: RwLock::new(snap),
            writer: Mutex::new(writer),
        })
    }

    /// The newest checkpoint's tree. Its pages stay as they are for as long as it is held.
    pub fn snapshot(&self) -> Snapshot {
        self.current.read().clone()
    }

    /// Writes a checkpoint at `ts`: applies `changes` (keys strictly increasing; `None` deletes)
    /// to the newest tree, makes it durable and publishes it. `user` is stored with it
    /// (`Snapshot::user`). Readers and earlier snapshots are not disturbed. On any error the
    /// file still holds the previous checkpoint, and this handle writes no more checkpoints.
    pub fn checkpoint(
        &self,
        ts: u64,
        user: u64,
        changes: &[Change],
    ) -> Result<CheckpointReport, StoreError> {
        let mut w = self.writer.lock();
        if let Some(why) = &w.failed {
            return Err(StoreError::Stopped(why.clone()));
        }
        let current = self.snapshot();
        let old = *current.meta();
        if ts < old.ts {
            return Err(StoreError::Input(format!(
                "timestamp {ts} is below the base's {}",
                old.ts
            )));
        }
        for pair in changes.windows(2) {
            if pair[0].0 >= pair[1].0 {
                return Err(StoreError::Input("keys are not strictly increasing".into()));
            }
        }
        let result = self.write_checkpoint(&mut w, &current, ts, user, changes);
        if let Err(e) = &result {
            w.failed = Some(e.to_string());
        }
        result
    }

    fn write_checkpoint(
        &self,
        w: &mut Writer,
        current: &Snapshot,
        ts: u64,
        user: u64,
        changes: &[Change],
    ) -> Result<CheckpointReport, StoreError> {
        let old = *current.meta();
        let generation = old.generation + 1;
        // Pages freed by generations no live snapshot predates are writable again.
        w.published.retain(|(_, s)| SnapArc::strong_count(s) > 1);
        // Order the reuse below after every read the dropped holders made (`sync.rs`).
        fence_acquire();
        let oldest_live = w.published.iter().map(|(g, _)| *g).min().unwrap_or(old.generation);
        #[cfg(loom)]
        let oldest_live = crate::sync::canary::oldest_live(oldest_live);
        let mut alloc = w.alloc.clone();
        alloc.release(oldest_live);
        let mut up = Update::new(current.source(), generation, alloc);
        let (root, height) = up.apply(old.root, old.height, changes)?;
        let rows = (old.rows as i64 + up.rows).max(0) as u64;
        // The old free list is no longer needed once the new one is durable.
        let old_list = std::mem::take(&mut up.alloc.list_pages);
        up.freed.extend(old_list);
        let (free_list, free_pages) = up.free_list();
        let pages_freed = up.freed.len() as u64;
        let meta = Meta {
            generation,
            ts,
            root,
            height,
            pages: up.alloc.pages,
            rows,
            free_list,
            free_pages,
            user,
        };
        // Grow, write the pages (contiguous runs in one write each), sync.
        let name = self.name.as_str();
        let mut file_pages = w.file_pages;
        if meta.pages > file_pages {
            let target =
                meta.pages.max(file_pages + file_pages / 8).max(file_pages + GROW_PAGES_MIN);
            self.file
                .grow(target * PAGE_BYTES as u64)
                .map_err(StoreError::io(name, "growing the file"))?;
            file_pages = target;
        }
        let mut run: Vec<u8> = Vec::new();
        let mut run_start = 0u64;
        let mut written = up.written.iter().peekable();
        while let Some((no, bytes)) = written.next() {
            if run.is_empty() {
                run_start = *no;
            }
            run.extend_from_slice(bytes);
            let contiguous = written.peek().is_some_and(|(next, _)| **next == *no + 1);
            if !contiguous || run.len() >= 1 << 20 {
                self.file
                    .write_at(run_start * PAGE_BYTES as u64, &run)
                    .map_err(StoreError::io(name, "writing pages"))?;
                run.clear();
            }
        }
        let sync_began = Instant::now();
        self.file.sync().map_err(StoreError::io(name, "syncing pages"))?;
        let slot = generation % 2;
        self.file
            .write_at(slot * PAGE_BYTES as u64, &meta.encode())
            .map_err(StoreError::io(name, "writing the meta page"))?;
        self.file.sync().map_err(StoreError::io(name, "syncing the meta page"))?;
        let synced = Some((sync_began, Instant::now()));
        // Durable: publish.
        let source = if self.mapped && file_pages > w.file_pages {
            match self.file.map_read_only() {
                Some(map) => {
                    Source::Map(Arc::new(map.map_err(StoreError::io(name, "mapping the file"))?))
                }
                None => current.source().clone(),
            }
        } else {
            current.source().clone()
        };
        let pages_written = up.written.len() as u64 + 1;
        let freed = std::mem::take(&mut up.freed);
        let mut alloc = up.alloc;
        alloc.pending.push((generation, freed));
        let snap = Snapshot(SnapArc::new(SnapshotState { meta, source }));
        w.published.push((generation, snap.0.clone()));
        w.alloc = alloc;
        w.file_pages = file_pages;
        *self.current.write() = snap;
        Ok(CheckpointReport {
            generation,
            changes: changes.len() as u64,
            pages_written,
            pages_freed,
            rows,
            pages: meta.pages,
            synced,
        })
    }
}
