//! `MmapStorage`: the log's default storage. Files are created like `FileStorage`'s (zero-filled,
//! so a full disk fails at creation, never as a SIGBUS on a mapped page), then mapped with
//! `memmap2`; appends are a `memcpy` into the mapping and a sync is `fdatasync` of the file
//! (on Linux it writes back the mapping's dirty pages; `msync` is available as `SyncMethod::Msync`
//! for comparison). A mapped file is never truncated or grown.
#![allow(unsafe_code)] // the two copies through the mapping; see docs/UNSAFE.md §8

use crate::storage::{FileStorage, Storage, StorageFile};
use crate::sync::PlMutex;
use memmap2::{Advice, MmapRaw};
use std::fs;
use std::io;
use std::path::PathBuf;

/// How `sync` makes a mapped file durable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SyncMethod {
    /// `fdatasync` on the file descriptor.
    #[default]
    Fdatasync,
    /// `msync(MS_SYNC)` of the whole mapping.
    Msync,
}

/// Files in a directory, written through memory mappings.
#[derive(Debug, Clone)]
pub struct MmapStorage {
    files: FileStorage,
    dir: PathBuf,
    sync: SyncMethod,
}

impl MmapStorage {
    pub fn new(dir: impl Into<PathBuf>, sync: SyncMethod) -> io::Result<Self> {
        let dir = dir.into();
        Ok(MmapStorage { files: FileStorage::new(&dir)?, dir, sync })
    }

    fn map(&self, name: &str) -> io::Result<Box<dyn StorageFile>> {
        let file = fs::OpenOptions::new().read(true).write(true).open(self.dir.join(name))?;
        let len = file.metadata()?.len();
        if len == 0 {
            // Nothing to map (a zero-length mapping is an error); such files are never written.
            return self.files.open(name);
        }
        let map = MmapRaw::map_raw(&file)?;
        // No readahead on faults: a page evicted and faulted back in comes back as one page,
        // not as part of a large folio (see `create`). Advice only: a failure changes nothing
        // about correctness.
        let _ = map.advise(Advice::Random);
        Ok(Box::new(MappedFile { file, map, len, writer: PlMutex::new(()), sync: self.sync }))
    }
}

struct MappedFile {
    file: fs::File,
    map: MmapRaw,
    len: u64,
    /// Copies in and out of the mapping are serialised (the log appends under its own lock
    /// anyway), so no two overlap: no data race on the mapped bytes.
    writer: PlMutex<()>,
    sync: SyncMethod,
}

impl MappedFile {
    fn range(&self, offset: u64, n: usize) -> io::Result<usize> {
        match offset.checked_add(n as u64) {
            Some(end) if end <= self.len => Ok(offset as usize),
            _ => Err(io::Error::new(io::ErrorKind::StorageFull, "write past the mapped end")),
        }
    }
}

impl StorageFile for MappedFile {
    fn write_at(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        let at = self.range(offset, data.len())?;
        let _g = self.writer.lock();
        // SAFETY: `at + data.len() <= len` (checked above), the mapping is `len` bytes and
        // lives as long as `self`; copies into it are serialised by `writer`, and `data` cannot
        // alias the mapping (it is a shared borrow of other memory or of a copy made under the
        // same lock). The file is never truncated while mapped (a lock file keeps other Strata
        // processes out; see docs/UNSAFE.md §8 for what an outside writer could do).
        unsafe {
            std::ptr::copy_nonoverlapping(data.as_ptr(), self.map.as_mut_ptr().add(at), data.len());
        }
        Ok(())
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let start = offset.min(self.len) as usize;
        let n = buf.len().min(self.len as usize - start);
        let _g = self.writer.lock();
        // SAFETY: `start + n <= len`; no copy into the mapping runs concurrently (`writer`).
        unsafe {
            std::ptr::copy_nonoverlapping(self.map.as_ptr().add(start), buf.as_mut_ptr(), n);
        }
        Ok(n)
    }
    fn len(&self) -> io::Result<u64> {
        Ok(self.len)
    }
    fn sync(&self) -> io::Result<()> {
        match self.sync {
            SyncMethod::Fdatasync => self.file.sync_data(),
            SyncMethod::Msync => self.map.flush(),
        }
    }
}

/// A read-only mapping of a whole file, read in place by the base store. It hands out slices
/// of ranges the caller promises nobody writes while the slice lives (`bytes`), never one slice
/// of the whole file: other ranges of the same file are written (with `write_at`) while readers
/// hold slices of these.
pub struct ReadMap {
    map: Option<MmapRaw>,
    len: u64,
}

impl std::fmt::Debug for ReadMap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadMap").field("len", &self.len).finish()
    }
}

impl ReadMap {
    /// Maps `file` as long as it is now (an empty file maps nothing).
    pub(crate) fn new(file: &fs::File) -> io::Result<ReadMap> {
        let len = file.metadata()?.len();
        if len == 0 {
            return Ok(ReadMap { map: None, len });
        }
        let map = memmap2::MmapOptions::new().map_raw_read_only(file)?;
        let _ = map.advise(Advice::Random); // page-sized reads; advice only
        Ok(ReadMap { map: Some(map), len })
    }

    /// The mapped length.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether nothing is mapped.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// `n` bytes at `offset`, or `None` past the mapped end.
    ///
    /// # Safety
    /// Nothing may write `offset..offset + n` of the file (through this process's handles or
    /// any other) while the returned slice lives, and the file may not be truncated below
    /// `offset + n` while this map lives. The base store keeps both: a page reachable from a
    /// root a reader holds is never rewritten (`docs/design/storage.md`, page reuse), and the
    /// base file only grows.
    pub unsafe fn bytes(&self, offset: u64, n: usize) -> Option<&[u8]> {
        let end = offset.checked_add(n as u64)?;
        let map = self.map.as_ref()?;
        if end > self.len {
            return None;
        }
        // SAFETY: `offset + n <= len`, the mapping is `len` bytes and lives as long as `self`
        // (the slice's lifetime is tied to `&self`); the caller guarantees the range is not
        // written or truncated while the slice lives, so the shared slice never sees a change.
        Some(unsafe { std::slice::from_raw_parts(map.as_ptr().add(offset as usize), n) })
    }
}

/// Size of the writes that zero-fill a new mapped segment, and so of its page-cache folios
/// (Linux 6.x). Measured here (ADR 0004): 4 KiB folios synced 4.1 KiB per commit at 9.9K
/// syncs/s but made zero-filling cost 86 ms of system calls per 64 MiB; 16 KiB synced 16.8 KiB
/// at 9.6K/s for 49 ms; 256 KiB fell to 7.6K/s. What 16 KiB costs in writes (ADR 0012): a
/// durable commit that appends one page still writes back its whole 16 KiB folio (~120 of the
/// 295 bytes dirtied per changed row in the storage suite's key-order round); 4 KiB folios
/// remove that but halved `Buffered` commits/s through the mapping (a page fault per 4 KiB).
pub const ZERO_FILL_CHUNK_BYTES: usize = 16 * 1024;

/// The page size the log pads to before a sync (4 KiB: the x86-64 and most arm64 page; on a
/// larger page, padding to 4 KiB still leaves the next record in the synced page, which is
/// correct, only slower).
pub const SYNC_PAGE_BYTES: u64 = 4096;

impl Storage for MmapStorage {
    fn create(&self, name: &str, len: u64) -> io::Result<Box<dyn StorageFile>> {
        // Zero-filled in small writes, so the page cache holds small folios: a store through the
        // mapping dirties a whole folio, and a sync writes all of it back. With the 1 MiB writes
        // `FileStorage` uses, Linux 6.18 here made 1 MiB folios and each commit's sync wrote
        // 1 MiB (`docs/adr/0004-log-file-io.md`).
        drop(self.files.create_zeroed(name, len, ZERO_FILL_CHUNK_BYTES)?);
        self.map(name)
    }
    fn open(&self, name: &str) -> io::Result<Box<dyn StorageFile>> {
        self.map(name)
    }
    /// Plain files (written with `pwrite`, grown, mapped read-only by their reader), not the
    /// log's writable mappings.
    fn create_paged(&self, name: &str, len: u64) -> io::Result<Box<dyn StorageFile>> {
        self.files.create(name, len)
    }
    fn open_paged(&self, name: &str) -> io::Result<Box<dyn StorageFile>> {
        self.files.open(name)
    }
    fn list(&self) -> io::Result<Vec<String>> {
        self.files.list()
    }
    fn remove(&self, name: &str) -> io::Result<()> {
        self.files.remove(name)
    }
    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        self.files.rename(from, to)
    }
    fn sync_dir(&self) -> io::Result<()> {
        self.files.sync_dir()
    }
    /// A synced page of a shared mapping is write-protected so the kernel sees the next
    /// store; that store faults and, on ext4 and others, waits for the page's writeback.
    /// Measured here (`docs/benchmarks.md`): appending into the page just synced ran at about
    /// a fifth of the rate of appending into a fresh one.
    fn sync_page_bytes(&self) -> Option<u64> {
        Some(SYNC_PAGE_BYTES)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::{scan_log, AppendFrom, Durability, Log, LogOptions};
    use crate::record::{encode, RecordKind};
    use crate::sync::Arc;

    #[test]
    fn the_log_round_trips_through_mappings_with_both_sync_methods() {
        for method in [SyncMethod::Fdatasync, SyncMethod::Msync] {
            let tmp = tempfile::tempdir().unwrap();
            let dir = tmp.path().join("wal-mmap");
            let storage: Arc<dyn Storage> = Arc::new(MmapStorage::new(&dir, method).unwrap());
            let opts = LogOptions { segment_bytes: 4096, ..LogOptions::default() };
            let log = Log::open(storage.clone(), opts, AppendFrom::Fresh { seq: 1 }, 0).unwrap();
            for ts in 1..=100u64 {
                let mut rec = Vec::new();
                encode(RecordKind::Commit, ts, &[ts as u8; 100], &mut rec).unwrap();
                log.append(ts, &rec).unwrap();
            }
            log.wait(100, Durability::Sync).unwrap();
            let scan = scan_log(&FileStorage::new(&dir).unwrap()).unwrap();
            let commits = scan.records.iter().filter(|r| r.kind == RecordKind::Commit).count();
            assert_eq!(commits, 100, "{method:?}: plain reads see the mapped writes");
            assert_eq!(
                scan.records.last().map(|r| r.kind),
                Some(RecordKind::Padding),
                "{method:?}: the sync padded to a page"
            );
            assert!(scan.stop.is_none() && scan.tail_clean);
            let f = storage.open(&crate::log::segment_name(1)).unwrap();
            assert!(f.write_at(4090, &[0u8; 10]).is_err(), "never past the mapped end");
        }
    }
}
