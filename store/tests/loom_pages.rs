//! The handshake between readers, the switch to a new checkpoint and page reuse, under loom
//! (`RUSTFLAGS="--cfg loom"`): the real `Base` on a page store whose every page is a loom
//! `UnsafeCell`, so loom reports any write to a page that is not ordered after every read of
//! it (a reader walking a page the writer reused), besides the reader checking what it read.
//!
//! The schedule: a tree with a small row and one whose value needs an overflow chain, at
//! checkpoint 1. Two readers each take the current snapshot, read both rows, drop it, and do it
//! again, while the writer checkpoints twice more (each rewrites both rows' pages and frees the old copies; the second
//! may reuse what the first freed). Each read must see exactly its checkpoint's values, and no
//! page it reads may be written concurrently. Two canaries (page reuse one generation early,
//! and reuse ignoring live snapshots) must be caught.
#![cfg(loom)]
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use loom::cell::UnsafeCell;
use std::collections::BTreeMap;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use strata_store::canary::{self, Canary};
use strata_store::Base;
use strata_wal::{Storage, StorageFile};

const PAGE: usize = 4096;
/// Pages a file may have in the model (the schedule needs about a dozen).
const CAPACITY: usize = 32;

/// A file whose pages loom watches. Its length is bookkeeping only the writer changes.
struct PageFile {
    pages: Vec<UnsafeCell<Box<[u8]>>>,
    len: AtomicU64,
}

/// Walks the pages `offset..offset + n` touches: (page, offset in page, offset in buffer, n).
fn spans(offset: u64, n: usize) -> impl Iterator<Item = (usize, usize, usize, usize)> {
    let mut done = 0usize;
    std::iter::from_fn(move || {
        if done == n {
            return None;
        }
        let at = offset as usize + done;
        let (page, within) = (at / PAGE, at % PAGE);
        let take = (PAGE - within).min(n - done);
        let span = (page, within, done, take);
        done += take;
        Some(span)
    })
}

// SAFETY: every access to a page goes through loom's `UnsafeCell::with`/`with_mut`, which fail
// the model on any two accesses, one a write, that are not ordered; `len` is an atomic.
unsafe impl Sync for PageFile {}
// SAFETY: as above; the pages are owned boxes.
unsafe impl Send for PageFile {}

impl PageFile {
    fn new(len: u64) -> PageFile {
        let pages = (0..CAPACITY).map(|_| UnsafeCell::new(vec![0u8; PAGE].into())).collect();
        PageFile { pages, len: AtomicU64::new(len) }
    }
}

impl StorageFile for PageFile {
    fn write_at(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        assert!(offset as usize + data.len() <= CAPACITY * PAGE, "the model's file is full");
        for (page, within, from, n) in spans(offset, data.len()) {
            self.pages[page].with_mut(|p| {
                // SAFETY: loom checks this access is not concurrent with another to the page.
                let p = unsafe { &mut *p };
                p[within..within + n].copy_from_slice(&data[from..from + n]);
            });
        }
        self.len.fetch_max(offset + data.len() as u64, Ordering::Relaxed);
        Ok(())
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let len = self.len.load(Ordering::Relaxed);
        let n = (len.saturating_sub(offset) as usize).min(buf.len());
        for (page, within, to, n) in spans(offset, n) {
            self.pages[page].with(|p| {
                // SAFETY: as in `write_at`.
                let p = unsafe { &*p };
                buf[to..to + n].copy_from_slice(&p[within..within + n]);
            });
        }
        Ok(n)
    }

    fn len(&self) -> io::Result<u64> {
        Ok(self.len.load(Ordering::Relaxed))
    }

    fn sync(&self) -> io::Result<()> {
        Ok(())
    }

    fn grow(&self, len: u64) -> io::Result<()> {
        assert!(len as usize <= CAPACITY * PAGE, "the model's file is full");
        self.len.fetch_max(len, Ordering::Relaxed);
        Ok(())
    }
}

/// A directory of `PageFile`s (no crashes: the model is about concurrency).
#[derive(Default)]
struct PageStorage {
    files: Mutex<BTreeMap<String, Arc<PageFile>>>,
}

/// A handle on a shared `PageFile`.
struct Handle(Arc<PageFile>);

impl StorageFile for Handle {
    fn write_at(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        self.0.write_at(offset, data)
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read_at(offset, buf)
    }
    fn len(&self) -> io::Result<u64> {
        self.0.len()
    }
    fn sync(&self) -> io::Result<()> {
        Ok(())
    }
    fn grow(&self, len: u64) -> io::Result<()> {
        self.0.grow(len)
    }
}

fn not_found(name: &str) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, name.to_string())
}

impl Storage for PageStorage {
    fn create(&self, name: &str, len: u64) -> io::Result<Box<dyn StorageFile>> {
        let mut files = self.files.lock().unwrap();
        if files.contains_key(name) {
            return Err(io::Error::new(io::ErrorKind::AlreadyExists, name.to_string()));
        }
        let f = Arc::new(PageFile::new(len));
        files.insert(name.into(), f.clone());
        Ok(Box::new(Handle(f)))
    }
    fn open(&self, name: &str) -> io::Result<Box<dyn StorageFile>> {
        let files = self.files.lock().unwrap();
        let f = files.get(name).ok_or_else(|| not_found(name))?;
        Ok(Box::new(Handle(f.clone())))
    }
    fn list(&self) -> io::Result<Vec<String>> {
        Ok(self.files.lock().unwrap().keys().cloned().collect())
    }
    fn remove(&self, name: &str) -> io::Result<()> {
        self.files.lock().unwrap().remove(name).map(|_| ()).ok_or_else(|| not_found(name))
    }
    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        let mut files = self.files.lock().unwrap();
        let f = files.remove(from).ok_or_else(|| not_found(from))?;
        files.insert(to.into(), f);
        Ok(())
    }
    fn sync_dir(&self) -> io::Result<()> {
        Ok(())
    }
}

/// Checkpoint `ts`'s value of the small row and of the row with an overflow chain.
fn values(ts: u64) -> (Vec<u8>, Vec<u8>) {
    (format!("small-{ts}").into_bytes(), vec![b'0' + ts as u8; 3000])
}

fn checkpoint(base: &Base, ts: u64) {
    let (small, large) = values(ts);
    base.checkpoint(ts, 0, &[(b"a".to_vec(), Some(small)), (b"b".to_vec(), Some(large))]).unwrap();
}

fn reader(base: &Base) {
    let snap = base.snapshot();
    let (small, large) = values(snap.ts());
    assert_eq!(snap.get(b"a").unwrap().as_deref(), Some(&small[..]), "at {}", snap.ts());
    assert_eq!(snap.get(b"b").unwrap().as_deref(), Some(&large[..]), "at {}", snap.ts());
}

/// Schedules the last model explored.
static SCHEDULES: AtomicU64 = AtomicU64::new(0);

fn model(c: Canary) {
    canary::set(c);
    SCHEDULES.store(0, Ordering::Relaxed);
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(3);
    builder.check(|| {
        SCHEDULES.fetch_add(1, Ordering::Relaxed);
        let storage = PageStorage::default();
        let base = Arc::new(Base::create(&storage, "base", 0).unwrap());
        checkpoint(&base, 1);
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let base = base.clone();
                loom::thread::spawn(move || {
                    reader(&base);
                    reader(&base);
                })
            })
            .collect();
        checkpoint(&base, 2);
        checkpoint(&base, 3);
        for r in readers {
            r.join().unwrap();
        }
        // With the readers gone, the next checkpoint may reuse every page it held.
        checkpoint(&base, 4);
        reader(&base);
    });
    canary::set(Canary::None);
}

#[test]
fn no_reader_walks_a_page_the_writer_reuses() {
    model(Canary::None);
    let n = SCHEDULES.load(Ordering::Relaxed);
    eprintln!("page reuse: {n} schedules explored");
    assert!(n > 10, "the reader and the writer must interleave in many ways ({n})");
}

#[test]
fn the_model_catches_reuse_one_generation_early() {
    let caught = std::panic::catch_unwind(|| model(Canary::ReleaseOneEarly)).is_err();
    canary::set(Canary::None);
    assert!(caught, "loom must find the schedule where a reused page is still read");
}

#[test]
fn the_model_catches_reuse_that_ignores_snapshots() {
    let caught = std::panic::catch_unwind(|| model(Canary::IgnoreSnapshots)).is_err();
    canary::set(Canary::None);
    assert!(caught, "loom must find the schedule where a reused page is still read");
}
