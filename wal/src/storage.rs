//! All file I/O of the log goes through `Storage` (STYLE §12), so crash behaviour is testable:
//! `FileStorage` is the real thing (positioned writes, `fdatasync`, zero-filled preallocation so
//! a full disk fails at creation rather than later), and `FaultyStorage` is an in-memory disk
//! that loses unsynced bytes on a simulated crash, can tear the last unsynced write, fail a sync,
//! or run out of space.
//!
//! Concurrency: both implementations are `Send + Sync`; a file may be written and synced from
//! several threads (the log's group commit will serialise appends itself).

use crate::sync::{Arc, Mutex, MutexGuard};
use std::collections::HashMap;
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;

/// Bytes written per call while zero-filling a preallocated file.
pub const PREALLOCATE_CHUNK_BYTES: usize = 1 << 20;

/// A directory of files.
pub trait Storage: Send + Sync {
    /// Creates `name` with `len` zero bytes actually allocated (an error, not a later failure,
    /// when the disk is full). Fails if it exists.
    fn create(&self, name: &str, len: u64) -> io::Result<Box<dyn StorageFile>>;
    /// Opens an existing file.
    fn open(&self, name: &str) -> io::Result<Box<dyn StorageFile>>;
    /// Names of the files, sorted.
    fn list(&self) -> io::Result<Vec<String>>;
    /// Removes a file.
    fn remove(&self, name: &str) -> io::Result<()>;
    /// Renames atomically (replacing `to`).
    fn rename(&self, from: &str, to: &str) -> io::Result<()>;
    /// Makes creations, renames and removals durable.
    fn sync_dir(&self) -> io::Result<()>;
    /// Creates `name` like `create`, as a file of page-sized random writes that can grow and be
    /// mapped read-only (the base store's file). Storage whose `create` already gives such
    /// files need not override it.
    fn create_paged(&self, name: &str, len: u64) -> io::Result<Box<dyn StorageFile>> {
        self.create(name, len)
    }
    /// Opens `name` as `create_paged` made it.
    fn open_paged(&self, name: &str) -> io::Result<Box<dyn StorageFile>> {
        self.open(name)
    }
    /// `Some(page)` when writing into a page soon after it was synced is slow here: a mapped
    /// file's synced page is write-protected for writeback, so the next store faults (and may
    /// wait for the writeback to end). The log then pads to a page boundary before each sync,
    /// so the next record lands on a fresh page. `None` (the default): no padding.
    fn sync_page_bytes(&self) -> Option<u64> {
        None
    }
}

/// One file.
pub trait StorageFile: Send + Sync {
    fn write_at(&self, offset: u64, data: &[u8]) -> io::Result<()>;
    /// Reads up to `buf.len()` bytes; returns how many (short only at the end of the file).
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize>;
    fn len(&self) -> io::Result<u64>;
    /// Whether the file has no bytes (preallocated segments never are).
    fn is_empty(&self) -> io::Result<bool> {
        Ok(self.len()? == 0)
    }
    /// Makes every write so far durable.
    fn sync(&self) -> io::Result<()>;
    /// Grows the file to `len` bytes, zero-filled with real blocks (so a full disk is an error
    /// here, never a later fault on a mapped page); the new length is durable after the next
    /// `sync`. A `len` at or below the current length changes nothing. Files are never shrunk.
    /// Storage that cannot grow files says `Unsupported` (the log's segments never grow).
    fn grow(&self, _len: u64) -> io::Result<()> {
        Err(io::Error::new(io::ErrorKind::Unsupported, "this storage does not grow files"))
    }
    /// A read-only mapping of the file as long as it is now, where this storage has one (real
    /// files); `None` where reads must go through `read_at` (the simulated disk).
    fn map_read_only(&self) -> Option<io::Result<crate::mmap::ReadMap>> {
        None
    }
}

/// Real files in a directory.
#[derive(Debug, Clone)]
pub struct FileStorage {
    dir: PathBuf,
    read_only: bool,
}

impl FileStorage {
    /// Uses (and creates if needed) `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> io::Result<Self> {
        let dir = dir.into();
        fs::create_dir_all(&dir)?;
        Ok(FileStorage { dir, read_only: false })
    }

    /// Reads an existing `dir` and changes nothing in it: files are opened read-only, and
    /// every operation that would create, write, rename or remove fails with
    /// `PermissionDenied` (what `strata check` inspects a database through).
    pub fn read_only(dir: impl Into<PathBuf>) -> io::Result<Self> {
        let dir = dir.into();
        if !fs::metadata(&dir)?.is_dir() {
            return Err(io::Error::new(io::ErrorKind::NotADirectory, "not a directory"));
        }
        Ok(FileStorage { dir, read_only: true })
    }

    /// `Storage::create`, zero-filling in writes of `chunk` bytes. The size of those writes
    /// sets the size of the page-cache folios the file starts with (Linux 6.x allocates large
    /// folios for large writes), and a mapped file's dirty tracking works per folio: see
    /// `MmapStorage`.
    pub(crate) fn create_zeroed(
        &self,
        name: &str,
        len: u64,
        chunk: usize,
    ) -> io::Result<Box<dyn StorageFile>> {
        self.check_writable()?;
        let path = self.dir.join(name);
        let mut file =
            fs::OpenOptions::new().read(true).write(true).create_new(true).open(&path)?;
        // Zero-fill rather than `set_len`: a sparse file would defer ENOSPC to a later write
        // (a SIGBUS once the file is memory-mapped).
        let zeros = vec![0u8; chunk.max(1)];
        let mut left = len;
        let filled = (|| {
            while left > 0 {
                let n = left.min(zeros.len() as u64) as usize;
                file.write_all(&zeros[..n])?;
                left -= n as u64;
            }
            file.sync_all()
        })();
        if let Err(e) = filled {
            let _ = fs::remove_file(&path); // do not leave a half-allocated segment behind
            return Err(e);
        }
        Ok(Box::new(RealFile(file)))
    }

    fn check_writable(&self) -> io::Result<()> {
        if self.read_only {
            return Err(io::Error::new(io::ErrorKind::PermissionDenied, "read-only storage"));
        }
        Ok(())
    }
}

struct RealFile(fs::File);

impl StorageFile for RealFile {
    fn write_at(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        self.0.write_all_at(data, offset)
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let mut done = 0;
        while done < buf.len() {
            match self.0.read_at(&mut buf[done..], offset + done as u64)? {
                0 => break,
                n => done += n,
            }
        }
        Ok(done)
    }
    fn len(&self) -> io::Result<u64> {
        Ok(self.0.metadata()?.len())
    }
    fn sync(&self) -> io::Result<()> {
        self.0.sync_data()
    }
    fn grow(&self, len: u64) -> io::Result<()> {
        let now = self.0.metadata()?.len();
        if len <= now {
            return Ok(());
        }
        // Zero-fill rather than `set_len`, as `create` does: a sparse tail would defer ENOSPC
        // to a write through a mapping (a SIGBUS).
        let zeros = vec![0u8; PREALLOCATE_CHUNK_BYTES];
        let mut at = now;
        while at < len {
            let n = (len - at).min(zeros.len() as u64) as usize;
            self.0.write_all_at(&zeros[..n], at)?;
            at += n as u64;
        }
        Ok(())
    }
    fn map_read_only(&self) -> Option<io::Result<crate::mmap::ReadMap>> {
        Some(crate::mmap::ReadMap::new(&self.0))
    }
}

impl Storage for FileStorage {
    fn create(&self, name: &str, len: u64) -> io::Result<Box<dyn StorageFile>> {
        self.create_zeroed(name, len, PREALLOCATE_CHUNK_BYTES)
    }
    fn open(&self, name: &str) -> io::Result<Box<dyn StorageFile>> {
        let file =
            fs::OpenOptions::new().read(true).write(!self.read_only).open(self.dir.join(name))?;
        Ok(Box::new(RealFile(file)))
    }
    fn list(&self) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in fs::read_dir(&self.dir)? {
            if let Some(name) = entry?.file_name().to_str() {
                names.push(name.to_string());
            }
        }
        names.sort();
        Ok(names)
    }
    fn remove(&self, name: &str) -> io::Result<()> {
        self.check_writable()?;
        fs::remove_file(self.dir.join(name))
    }
    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        self.check_writable()?;
        fs::rename(self.dir.join(from), self.dir.join(to))
    }
    fn sync_dir(&self) -> io::Result<()> {
        self.check_writable()?;
        fs::File::open(&self.dir)?.sync_all()
    }
}

/// Faults a `FaultyStorage` can inject.
#[derive(Debug, Clone, Copy, Default)]
pub struct Faults {
    /// Total bytes the disk holds; creating past it fails with `StorageFull`.
    pub capacity_bytes: Option<u64>,
    /// The next this-many file syncs fail (and leave the data unsynced).
    pub failing_syncs: u32,
    /// After this many mutating operations (create, write, sync, rename, remove, directory
    /// sync) every further one fails: the process "died" there. `crash` then gives the disk
    /// a restart would find. Lets a test crash a workload at every one of its writes and syncs.
    pub crash_after_ops: Option<u64>,
}

/// What a simulated power loss keeps of the writes no sync covered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrashMode {
    /// None of them.
    LoseUnsynced,
    /// Each one independently with probability 1/2 (seeded), applied in write order.
    KeepRandom { seed: u64 },
    /// All but the last, and of the last only its first `bytes` (a torn write).
    TearLast { bytes: usize },
}

#[derive(Debug, Default, Clone)]
struct MemFile {
    /// What a crash preserves.
    durable: Vec<u8>,
    /// What reads see now.
    current: Vec<u8>,
    /// Writes since the last sync: (offset, bytes), in order.
    unsynced: Vec<(u64, Vec<u8>)>,
}

#[derive(Debug, Default)]
struct Disk {
    files: HashMap<String, MemFile>,
    faults: Faults,
    ops: u64,
    sync_page_bytes: Option<u64>,
}

impl Disk {
    /// Counts a mutating operation; fails once the crash point has passed.
    fn op(&mut self) -> io::Result<()> {
        self.ops += 1;
        match self.faults.crash_after_ops {
            Some(limit) if self.ops > limit => {
                Err(io::Error::other("simulated crash: the process is gone"))
            }
            _ => Ok(()),
        }
    }
}

/// An in-memory disk with injectable faults, for crash tests. File creation, renames and
/// removals are durable at once (as if every directory change were synced); file contents are
/// durable only once synced.
#[derive(Debug, Clone, Default)]
pub struct FaultyStorage {
    disk: Arc<Mutex<Disk>>,
}

fn lock(disk: &Mutex<Disk>) -> MutexGuard<'_, Disk> {
    disk.lock().unwrap_or_else(|e| e.into_inner())
}

fn not_found(name: &str) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, format!("no file {name:?}"))
}

fn apply(file: &mut [u8], offset: u64, bytes: &[u8]) {
    let start = offset as usize;
    if let Some(dst) = file.get_mut(start..start + bytes.len()) {
        dst.copy_from_slice(bytes);
    }
}

impl FaultyStorage {
    /// An empty disk with these faults.
    pub fn new(faults: Faults) -> Self {
        FaultyStorage { disk: Arc::new(Mutex::new(Disk { faults, ..Disk::default() })) }
    }

    /// Makes the disk ask the log for padding to `page`-byte boundaries before syncs, as a
    /// mapped file does (`Storage::sync_page_bytes`); survives `crash`.
    pub fn set_sync_page_bytes(&self, page: Option<u64>) {
        lock(&self.disk).sync_page_bytes = page;
    }

    /// Changes the faults from now on (the operation count keeps running).
    pub fn set_faults(&self, faults: Faults) {
        lock(&self.disk).faults = faults;
    }

    /// Mutating operations so far (see `Faults::crash_after_ops`).
    pub fn ops(&self) -> u64 {
        lock(&self.disk).ops
    }

    /// Simulates power loss: every file keeps its synced bytes and, per `mode`, some of its
    /// unsynced writes. Returns the disk as a process restarting would find it (no faults).
    pub fn crash(&self, mode: CrashMode) -> FaultyStorage {
        let disk = lock(&self.disk);
        let mut rng = match mode {
            CrashMode::KeepRandom { seed } => seed,
            _ => 0,
        };
        let mut names: Vec<&String> = disk.files.keys().collect();
        names.sort(); // a deterministic order for the seeded choices
        let mut files = HashMap::new();
        for name in names {
            let f = &disk.files[name];
            let mut after = f.durable.clone();
            let last = f.unsynced.len().saturating_sub(1);
            for (i, (offset, bytes)) in f.unsynced.iter().enumerate() {
                match mode {
                    CrashMode::LoseUnsynced => {}
                    CrashMode::KeepRandom { .. } => {
                        // splitmix64: a test-only coin.
                        rng = rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
                        let mut z = rng;
                        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
                        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
                        if (z ^ (z >> 31)) >> 63 == 1 {
                            apply(&mut after, *offset, bytes);
                        }
                    }
                    CrashMode::TearLast { bytes: keep } => {
                        let n = if i == last { keep.min(bytes.len()) } else { bytes.len() };
                        apply(&mut after, *offset, &bytes[..n]);
                    }
                }
            }
            files.insert(
                name.clone(),
                MemFile { durable: after.clone(), current: after, unsynced: Vec::new() },
            );
        }
        let sync_page_bytes = disk.sync_page_bytes;
        FaultyStorage {
            disk: Arc::new(Mutex::new(Disk { files, sync_page_bytes, ..Disk::default() })),
        }
    }

    /// Flips one bit of a file, durably (a bad sector). For corruption tests.
    pub fn flip_bit(&self, name: &str, bit: u64) -> io::Result<()> {
        let mut disk = lock(&self.disk);
        let f = disk.files.get_mut(name).ok_or_else(|| not_found(name))?;
        let byte = (bit / 8) as usize;
        if byte >= f.current.len() {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "bit past the end"));
        }
        f.current[byte] ^= 1 << (bit % 8);
        f.durable[byte] ^= 1 << (bit % 8);
        Ok(())
    }
}

struct FaultyFile {
    disk: Arc<Mutex<Disk>>,
    name: String,
}

impl StorageFile for FaultyFile {
    fn write_at(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        let mut disk = lock(&self.disk);
        disk.op()?;
        let f = disk.files.get_mut(&self.name).ok_or_else(|| not_found(&self.name))?;
        let end = offset as usize + data.len();
        if end > f.current.len() {
            // Preallocated files never grow in the log's use; refuse like a full segment.
            return Err(io::Error::new(
                io::ErrorKind::StorageFull,
                "write past the preallocated end",
            ));
        }
        f.current[offset as usize..end].copy_from_slice(data);
        f.unsynced.push((offset, data.to_vec()));
        Ok(())
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let disk = lock(&self.disk);
        let f = disk.files.get(&self.name).ok_or_else(|| not_found(&self.name))?;
        let start = (offset as usize).min(f.current.len());
        let n = buf.len().min(f.current.len() - start);
        buf[..n].copy_from_slice(&f.current[start..start + n]);
        Ok(n)
    }
    fn len(&self) -> io::Result<u64> {
        let disk = lock(&self.disk);
        Ok(disk.files.get(&self.name).ok_or_else(|| not_found(&self.name))?.current.len() as u64)
    }
    fn sync(&self) -> io::Result<()> {
        let mut disk = lock(&self.disk);
        disk.op()?;
        if disk.faults.failing_syncs > 0 {
            disk.faults.failing_syncs -= 1;
            return Err(io::Error::other("injected sync failure"));
        }
        let f = disk.files.get_mut(&self.name).ok_or_else(|| not_found(&self.name))?;
        f.durable.clone_from(&f.current);
        f.unsynced.clear();
        Ok(())
    }
    /// The new zero bytes are durable at once (a crash never shortens a grown file here): the
    /// base store syncs before it relies on a length anyway.
    fn grow(&self, len: u64) -> io::Result<()> {
        let mut disk = lock(&self.disk);
        disk.op()?;
        let used: u64 = disk.files.values().map(|f| f.current.len() as u64).sum();
        let f = disk.files.get(&self.name).ok_or_else(|| not_found(&self.name))?;
        let extra = len.saturating_sub(f.current.len() as u64);
        if disk.faults.capacity_bytes.is_some_and(|cap| used + extra > cap) {
            return Err(io::Error::new(io::ErrorKind::StorageFull, "no space left on the device"));
        }
        let f = disk.files.get_mut(&self.name).ok_or_else(|| not_found(&self.name))?;
        if extra > 0 {
            f.current.resize(len as usize, 0);
            f.durable.resize(len as usize, 0);
        }
        Ok(())
    }
}

impl Storage for FaultyStorage {
    fn create(&self, name: &str, len: u64) -> io::Result<Box<dyn StorageFile>> {
        let mut disk = lock(&self.disk);
        disk.op()?;
        if disk.files.contains_key(name) {
            return Err(io::Error::new(io::ErrorKind::AlreadyExists, format!("{name:?} exists")));
        }
        let used: u64 = disk.files.values().map(|f| f.current.len() as u64).sum();
        if disk.faults.capacity_bytes.is_some_and(|cap| used + len > cap) {
            return Err(io::Error::new(io::ErrorKind::StorageFull, "no space left on the device"));
        }
        let zeros = vec![0u8; len as usize];
        disk.files.insert(
            name.to_string(),
            MemFile { durable: zeros.clone(), current: zeros, unsynced: Vec::new() },
        );
        Ok(Box::new(FaultyFile { disk: self.disk.clone(), name: name.to_string() }))
    }
    fn open(&self, name: &str) -> io::Result<Box<dyn StorageFile>> {
        if !lock(&self.disk).files.contains_key(name) {
            return Err(not_found(name));
        }
        Ok(Box::new(FaultyFile { disk: self.disk.clone(), name: name.to_string() }))
    }
    fn list(&self) -> io::Result<Vec<String>> {
        let mut names: Vec<String> = lock(&self.disk).files.keys().cloned().collect();
        names.sort();
        Ok(names)
    }
    fn remove(&self, name: &str) -> io::Result<()> {
        let mut disk = lock(&self.disk);
        disk.op()?;
        disk.files.remove(name).map(|_| ()).ok_or_else(|| not_found(name))
    }
    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        let mut disk = lock(&self.disk);
        disk.op()?;
        let f = disk.files.remove(from).ok_or_else(|| not_found(from))?;
        disk.files.insert(to.to_string(), f);
        Ok(())
    }
    fn sync_dir(&self) -> io::Result<()> {
        lock(&self.disk).op()
    }
    fn sync_page_bytes(&self) -> Option<u64> {
        lock(&self.disk).sync_page_bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{encode, scan, CodecError, RecordKind};

    fn log_two_records(storage: &dyn Storage, sync_second: bool) -> usize {
        let file = storage.create("seg-0", 4096).unwrap();
        let mut first = Vec::new();
        encode(RecordKind::Commit, 1, b"first", &mut first).unwrap();
        file.write_at(0, &first).unwrap();
        file.sync().unwrap();
        let mut second = Vec::new();
        encode(RecordKind::Commit, 2, b"second record", &mut second).unwrap();
        file.write_at(first.len() as u64, &second).unwrap();
        if sync_second {
            file.sync().unwrap();
        }
        first.len()
    }

    fn recover(storage: &dyn Storage) -> (Vec<u64>, Option<CodecError>) {
        let file = storage.open("seg-0").unwrap();
        let mut buf = vec![0u8; file.len().unwrap() as usize];
        file.read_at(0, &mut buf).unwrap();
        let (records, stop) = scan(&buf);
        (records.iter().map(|r| r.ts).collect(), stop)
    }

    #[test]
    fn a_crash_loses_only_unsynced_bytes() {
        let disk = FaultyStorage::new(Faults::default());
        log_two_records(&disk, false);
        assert_eq!(recover(&disk), (vec![1, 2], None), "before the crash both are readable");
        assert_eq!(
            recover(&disk.crash(CrashMode::LoseUnsynced)),
            (vec![1], None),
            "the unsynced record is gone"
        );
        let synced = FaultyStorage::new(Faults::default());
        log_two_records(&synced, true);
        assert_eq!(recover(&synced.crash(CrashMode::LoseUnsynced)), (vec![1, 2], None));
    }

    #[test]
    fn a_torn_write_is_reported_at_its_offset() {
        let disk = FaultyStorage::new(Faults::default());
        let first = log_two_records(&disk, false);
        let (records, stop) = recover(&disk.crash(CrashMode::TearLast { bytes: 7 }));
        assert_eq!(records, vec![1]);
        assert!(
            matches!(stop, Some(CodecError::Torn { offset, .. } | CodecError::Corrupt { offset, .. }) if offset == first),
            "{stop:?}"
        );
    }

    #[test]
    fn a_failed_sync_keeps_the_data_unsynced() {
        let disk = FaultyStorage::new(Faults { failing_syncs: 1, ..Faults::default() });
        let file = disk.create("seg-0", 64).unwrap();
        file.write_at(0, b"x").unwrap();
        assert!(file.sync().is_err());
        assert_eq!(
            disk.crash(CrashMode::LoseUnsynced)
                .open("seg-0")
                .unwrap()
                .read_at(0, &mut [9u8; 1])
                .unwrap(),
            1
        );
        let mut b = [9u8; 1];
        disk.crash(CrashMode::LoseUnsynced).open("seg-0").unwrap().read_at(0, &mut b).unwrap();
        assert_eq!(b, [0], "the write was never made durable");
        file.sync().unwrap();
        disk.crash(CrashMode::LoseUnsynced).open("seg-0").unwrap().read_at(0, &mut b).unwrap();
        assert_eq!(b, *b"x");
    }

    #[test]
    fn random_loss_keeps_a_subset_and_the_crash_point_stops_everything() {
        let disk = FaultyStorage::new(Faults::default());
        let file = disk.create("f", 4).unwrap();
        for i in 0..4u8 {
            file.write_at(u64::from(i), &[i + 1]).unwrap();
        }
        let mut kept = std::collections::HashSet::new();
        for seed in 0..64 {
            let mut b = [0u8; 4];
            disk.crash(CrashMode::KeepRandom { seed })
                .open("f")
                .unwrap()
                .read_at(0, &mut b)
                .unwrap();
            for (i, v) in b.iter().enumerate() {
                assert!(*v == 0 || *v == i as u8 + 1, "only written bytes or zeros: {b:?}");
            }
            kept.insert(b);
        }
        assert!(kept.len() > 4, "seeds choose different subsets: {kept:?}");
        let dying = FaultyStorage::new(Faults { crash_after_ops: Some(2), ..Faults::default() });
        let f = dying.create("f", 4).unwrap();
        f.write_at(0, b"a").unwrap();
        assert!(f.sync().is_err(), "the third operation is past the crash point");
        assert!(dying.create("g", 1).is_err());
        assert_eq!(dying.ops(), 4);
    }

    #[test]
    fn a_full_disk_fails_at_creation() {
        let disk = FaultyStorage::new(Faults { capacity_bytes: Some(100), ..Faults::default() });
        disk.create("a", 60).unwrap();
        let err = disk.create("b", 60).err().expect("no space");
        assert_eq!(err.kind(), io::ErrorKind::StorageFull);
        assert_eq!(disk.list().unwrap(), vec!["a".to_string()]);
    }

    #[test]
    fn real_files_round_trip_and_rename() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("wal-storage");
        let storage = FileStorage::new(&dir).unwrap();
        log_two_records(&storage, true);
        assert_eq!(recover(&storage), (vec![1, 2], None));
        assert_eq!(storage.open("seg-0").unwrap().len().unwrap(), 4096, "preallocated");
        assert!(storage.create("seg-0", 10).is_err(), "never overwrites");
        storage.rename("seg-0", "seg-1").unwrap();
        storage.sync_dir().unwrap();
        assert_eq!(storage.list().unwrap(), vec!["seg-1".to_string()]);
        storage.remove("seg-1").unwrap();
    }
}
