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
}

/// Real files in a directory.
#[derive(Debug, Clone)]
pub struct FileStorage {
    dir: PathBuf,
}

impl FileStorage {
    /// Uses (and creates if needed) `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> io::Result<Self> {
        let dir = dir.into();
        fs::create_dir_all(&dir)?;
        Ok(FileStorage { dir })
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
}

impl Storage for FileStorage {
    fn create(&self, name: &str, len: u64) -> io::Result<Box<dyn StorageFile>> {
        let path = self.dir.join(name);
        let mut file =
            fs::OpenOptions::new().read(true).write(true).create_new(true).open(&path)?;
        // Zero-fill rather than `set_len`: a sparse file would defer ENOSPC to a later write
        // (a SIGBUS once the file is memory-mapped).
        let zeros = vec![0u8; PREALLOCATE_CHUNK_BYTES];
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
    fn open(&self, name: &str) -> io::Result<Box<dyn StorageFile>> {
        let file = fs::OpenOptions::new().read(true).write(true).open(self.dir.join(name))?;
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
        fs::remove_file(self.dir.join(name))
    }
    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        fs::rename(self.dir.join(from), self.dir.join(to))
    }
    fn sync_dir(&self) -> io::Result<()> {
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
    /// On `crash`, keep this many bytes of the last unsynced write of each file (a torn write)
    /// instead of losing all unsynced bytes.
    pub torn_bytes_on_crash: Option<usize>,
}

#[derive(Debug, Default, Clone)]
struct MemFile {
    /// What a crash preserves.
    durable: Vec<u8>,
    /// What reads see now.
    current: Vec<u8>,
    /// The last write since the last sync: (offset, bytes).
    last_unsynced: Option<(u64, Vec<u8>)>,
}

#[derive(Debug, Default)]
struct Disk {
    files: HashMap<String, MemFile>,
    faults: Faults,
}

/// An in-memory disk with injectable faults, for crash tests.
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

impl FaultyStorage {
    /// An empty disk with these faults.
    pub fn new(faults: Faults) -> Self {
        FaultyStorage { disk: Arc::new(Mutex::new(Disk { files: HashMap::new(), faults })) }
    }

    /// Changes the faults from now on.
    pub fn set_faults(&self, faults: Faults) {
        lock(&self.disk).faults = faults;
    }

    /// Simulates power loss: every file keeps only its synced bytes (plus, with
    /// `torn_bytes_on_crash`, a prefix of its last unsynced write). Returns the disk as a process
    /// restarting would find it.
    pub fn crash(&self) -> FaultyStorage {
        let disk = lock(&self.disk);
        let mut files = HashMap::new();
        for (name, f) in &disk.files {
            let mut after = f.durable.clone();
            if let (Some(keep), Some((offset, bytes))) =
                (disk.faults.torn_bytes_on_crash, &f.last_unsynced)
            {
                let keep = keep.min(bytes.len());
                let start = *offset as usize;
                if start + keep <= after.len() {
                    after[start..start + keep].copy_from_slice(&bytes[..keep]);
                }
            }
            files.insert(
                name.clone(),
                MemFile { durable: after.clone(), current: after, last_unsynced: None },
            );
        }
        FaultyStorage { disk: Arc::new(Mutex::new(Disk { files, faults: Faults::default() })) }
    }
}

struct FaultyFile {
    disk: Arc<Mutex<Disk>>,
    name: String,
}

impl StorageFile for FaultyFile {
    fn write_at(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        let mut disk = lock(&self.disk);
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
        f.last_unsynced = Some((offset, data.to_vec()));
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
        if disk.faults.failing_syncs > 0 {
            disk.faults.failing_syncs -= 1;
            return Err(io::Error::other("injected sync failure"));
        }
        let f = disk.files.get_mut(&self.name).ok_or_else(|| not_found(&self.name))?;
        f.durable.clone_from(&f.current);
        f.last_unsynced = None;
        Ok(())
    }
}

impl Storage for FaultyStorage {
    fn create(&self, name: &str, len: u64) -> io::Result<Box<dyn StorageFile>> {
        let mut disk = lock(&self.disk);
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
            MemFile { durable: zeros.clone(), current: zeros, last_unsynced: None },
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
        lock(&self.disk).files.remove(name).map(|_| ()).ok_or_else(|| not_found(name))
    }
    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        let mut disk = lock(&self.disk);
        let f = disk.files.remove(from).ok_or_else(|| not_found(from))?;
        disk.files.insert(to.to_string(), f);
        Ok(())
    }
    fn sync_dir(&self) -> io::Result<()> {
        Ok(())
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
        assert_eq!(recover(&disk.crash()), (vec![1], None), "the unsynced record is gone");
        let synced = FaultyStorage::new(Faults::default());
        log_two_records(&synced, true);
        assert_eq!(recover(&synced.crash()), (vec![1, 2], None));
    }

    #[test]
    fn a_torn_write_is_reported_at_its_offset() {
        let disk = FaultyStorage::new(Faults { torn_bytes_on_crash: Some(7), ..Faults::default() });
        let first = log_two_records(&disk, false);
        let (records, stop) = recover(&disk.crash());
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
        assert_eq!(disk.crash().open("seg-0").unwrap().read_at(0, &mut [9u8; 1]).unwrap(), 1);
        let mut b = [9u8; 1];
        disk.crash().open("seg-0").unwrap().read_at(0, &mut b).unwrap();
        assert_eq!(b, [0], "the write was never made durable");
        file.sync().unwrap();
        disk.crash().open("seg-0").unwrap().read_at(0, &mut b).unwrap();
        assert_eq!(b, *b"x");
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
        let dir = std::env::temp_dir().join(format!("strata-wal-storage-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let storage = FileStorage::new(&dir).unwrap();
        log_two_records(&storage, true);
        assert_eq!(recover(&storage), (vec![1, 2], None));
        assert_eq!(storage.open("seg-0").unwrap().len().unwrap(), 4096, "preallocated");
        assert!(storage.create("seg-0", 10).is_err(), "never overwrites");
        storage.rename("seg-0", "seg-1").unwrap();
        storage.sync_dir().unwrap();
        assert_eq!(storage.list().unwrap(), vec!["seg-1".to_string()]);
        storage.remove("seg-1").unwrap();
        fs::remove_dir_all(&dir).unwrap();
    }
}
