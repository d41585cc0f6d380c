//! The default store: sled 0.34, embedded, zero setup.
//!
//! One tree, keys that sort in log order so one prefix scan reads a document back as written:
//! - `{doc}\0\0` → snapshot: `upto` (u64 big-endian) followed by a v1 update;
//! - `{doc}\0\x01{seq}` → one v1 update, `seq` a big-endian u64 from sled's `generate_id`
//!   (monotonic across restarts, also after a crash).
//!
//! and a second tree, `meta`: `{doc}` → [`DocMeta`] as JSON, one small entry per document so
//! the documents list never scans content.
//!
//! Doc ids never contain NUL, so `{doc}\0` is a prefix of no other document's keys.
//! sled's own background flusher is off: an `insert` is not durable until a flush, and the
//! [`Flusher`](super::flusher) owns that barrier.
//!
//! Opening after a crash runs sled's recovery, which rewrites files (it truncates torn
//! writes) and can fail or panic half-way. So after an unclean shutdown (no clean-shutdown
//! marker) the directory is copied aside first; if the open fails, the copy is put back and
//! the directory is exactly as the crash left it, for an operator (or a fixed quire) to try
//! again. After a clean shutdown there is nothing to recover and no copy is made. The copy
//! needs as much free space as the store takes: without it, opening says so and changes
//! nothing.
//!
//! sled 0.34 does not survive a failed write: after ENOSPC its flushes fail and its threads
//! wedge for good, taking whichever thread called it along. So sled must never see a full
//! disk: a [`DiskGuard`] refuses writes while the disk has less than a reserve free (the
//! document then stops taking edits and retries), and they go through again once space
//! returns.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use quire_model::DocId;

use super::{DocMeta, Seq, Store, StoreError, Stored};

/// Written after the last flush of a clean shutdown; missing at start means a crash.
const CLEAN_MARKER: &str = "quire-clean-shutdown";
/// Locked by the process that has the store open.
const LOCK_FILE: &str = "quire.lock";

const SNAPSHOT: u8 = 0;
const LOG: u8 = 1;

/// How long a reading of the disk's free space is trusted, between writes that stay well
/// within it.
const FREE_SPACE_TTL: Duration = Duration::from_millis(200);

pub struct SledStore {
    db: sled::Db,
    guard: DiskGuard,
    docs: sled::Tree,
    metas: sled::Tree,
    /// Deleted ids → when (ms since the epoch, big-endian): see `DocError::Deleted`.
    deleted: sled::Tree,
    dir: PathBuf,
    /// Held (locked) for as long as the store is open.
    _lock: std::fs::File,
}

impl SledStore {
    /// Refuses writes while the store's disk has less than `bytes` free (0: never).
    pub fn with_reserve(mut self, bytes: u64) -> Self {
        self.guard.reserve = bytes;
        self
    }

    /// Opens (or creates) the store in `dir`. Refuses a non-empty directory that is not a sled
    /// store, and turns sled's panics on a damaged store into an error, so a failed start
    /// leaves the directory exactly as it was.
    pub fn open(dir: &Path, cache_capacity_bytes: u64) -> Result<Self, StoreError> {
        let open_error = |reason: String| StoreError::Open {
            path: dir.display().to_string(),
            reason,
        };
        if dir.exists() {
            if !dir.is_dir() {
                return Err(open_error("not a directory".into()));
            }
            let mut entries = std::fs::read_dir(dir).map_err(|e| open_error(e.to_string()))?;
            let empty = entries.all(|e| e.is_ok_and(|e| e.file_name() == LOCK_FILE));
            if !empty && !dir.join("conf").is_file() {
                return Err(open_error(
                    "directory is not empty and holds no quire store (no sled `conf` file)".into(),
                ));
            }
        }
        // One quire per store: lock before looking at the marker, let alone copying anything.
        // A second instance must never mistake a running store for a crashed one.
        let lock_path = dir.join(LOCK_FILE);
        let lock_existed = lock_path.exists();
        std::fs::create_dir_all(dir).map_err(|e| open_error(e.to_string()))?;
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| open_error(format!("cannot create {}: {e}", lock_path.display())))?;
        if lock.try_lock().is_err() {
            return Err(open_error("another quire is using this store".into()));
        }
        let opened = Self::open_locked(dir, cache_capacity_bytes, lock);
        if opened.is_err() && !lock_existed {
            let _ = std::fs::remove_file(&lock_path);
        }
        opened.map_err(open_error)
    }

    /// The part of [`open`](Self::open) that runs holding the store's lock.
    fn open_locked(dir: &Path, cache_capacity_bytes: u64, lock: std::fs::File) -> Result<Self, String> {
        // Canonical, so that `--data .` cannot put the copy inside the store itself.
        let dir = dir.canonicalize().map_err(|e| e.to_string())?;
        let backup = recovery_backup_path(&dir);
        if backup.exists() {
            return Err(format!(
                "{} holds a copy from an interrupted recovery: compare it with the store, keep \
                 the right one, remove the other and start again",
                backup.display()
            ));
        }
        let only_lock = std::fs::read_dir(&dir)
            .map_err(|e| e.to_string())?
            .all(|e| e.is_ok_and(|e| e.file_name() == LOCK_FILE));
        let crashed = !only_lock && !dir.join(CLEAN_MARKER).exists();
        if crashed {
            tracing::warn!(dir = %dir.display(), "the last shutdown was not clean: recovering");
            let needed = dir_size(&dir).map_err(|e| e.to_string())?;
            let free = fs2::available_space(&dir).map_err(|e| e.to_string())?;
            if free < needed {
                return Err(format!(
                    "the last shutdown was not clean, and recovery first copies the store aside: \
                     that needs {needed} bytes free on its disk, which has {free}. Free some \
                     space (or move the store to a bigger disk) and start again; nothing was changed"
                ));
            }
            if let Err(e) = copy_dir(&dir, &backup) {
                let _ = std::fs::remove_dir_all(&backup);
                return Err(format!("cannot copy the store aside before recovery: {e}"));
            }
        }
        match Self::open_sled(&dir, cache_capacity_bytes, lock) {
            Ok(store) => {
                if crashed {
                    let _ = std::fs::remove_dir_all(&backup);
                }
                // From now on a crash must be noticed at the next start.
                let _ = std::fs::remove_file(dir.join(CLEAN_MARKER));
                Ok(store)
            }
            Err(reason) if crashed => match restore(&dir, &backup) {
                // The directory is back exactly as the crash left it.
                Ok(()) => Err(reason),
                Err(e) => Err(format!(
                    "{reason}; the pre-recovery copy is at {} (restoring it failed: {e})",
                    backup.display()
                )),
            },
            Err(reason) => Err(reason),
        }
    }

    fn open_sled(dir: &Path, cache_capacity_bytes: u64, lock: std::fs::File) -> Result<Self, String> {
        let config = sled::Config::new()
            .path(dir)
            .cache_capacity(cache_capacity_bytes)
            .flush_every_ms(None);
        let db = catch_unwind(AssertUnwindSafe(|| config.open()))
            .map_err(|_| "sled panicked while opening: the store may be damaged".to_owned())?
            .map_err(|e| e.to_string())?;
        let docs = db.open_tree("docs").map_err(|e| e.to_string())?;
        let metas = db.open_tree("meta").map_err(|e| e.to_string())?;
        let deleted = db.open_tree("deleted").map_err(|e| e.to_string())?;
        Ok(SledStore {
            guard: DiskGuard::new(dir, 0),
            db,
            docs,
            metas,
            deleted,
            dir: dir.to_path_buf(),
            _lock: lock,
        })
    }
}

impl Drop for SledStore {
    /// A clean close: flush, then leave the marker that says no recovery is needed.
    fn drop(&mut self) {
        if self.db.flush().is_ok() {
            let _ = std::fs::write(self.dir.join(CLEAN_MARKER), b"");
        }
    }
}

fn recovery_backup_path(dir: &Path) -> PathBuf {
    let mut name = dir.file_name().map(|n| n.to_os_string()).unwrap_or_else(|| "store".into());
    name.push(".recovery");
    dir.with_file_name(name)
}

/// Puts the pre-recovery copy back: everything but the lock file is replaced by the copy.
fn restore(dir: &Path, backup: &Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_name() == LOCK_FILE {
            continue;
        }
        if entry.file_type()?.is_dir() {
            std::fs::remove_dir_all(entry.path())?;
        } else {
            std::fs::remove_file(entry.path())?;
        }
    }
    for entry in std::fs::read_dir(backup)? {
        let entry = entry?;
        if entry.file_name() != LOCK_FILE {
            std::fs::rename(entry.path(), dir.join(entry.file_name()))?;
        }
    }
    std::fs::remove_dir_all(backup)
}

/// Bytes the files under `dir` take.
fn dir_size(dir: &Path) -> std::io::Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        total += if entry.file_type()?.is_dir() {
            dir_size(&entry.path())?
        } else {
            entry.metadata()?.len()
        };
    }
    Ok(total)
}

/// Keeps writes away from a nearly full disk (see the module's doc). The free space is read
/// at most every [`FREE_SPACE_TTL`], and sooner once the writes since the last reading could
/// have eaten into the reserve.
struct DiskGuard {
    dir: PathBuf,
    reserve: u64,
    /// When the free space was last read, what it was, and the bytes written since.
    reading: Mutex<Option<(Instant, u64, u64)>>,
}

impl DiskGuard {
    fn new(dir: &Path, reserve: u64) -> Self {
        DiskGuard {
            dir: dir.to_path_buf(),
            reserve,
            reading: Mutex::new(None),
        }
    }

    /// Admits a write of about `bytes`, or refuses it while the disk is short of the reserve.
    fn admit(&self, bytes: u64) -> Result<(), StoreError> {
        if self.reserve == 0 {
            return Ok(());
        }
        let mut reading = self.reading.lock().unwrap_or_else(|p| p.into_inner());
        let stale = match *reading {
            None => true,
            Some((at, free, written)) => {
                at.elapsed() > FREE_SPACE_TTL || free.saturating_sub(written + bytes) < self.reserve * 2
            }
        };
        if stale {
            let free = fs2::available_space(&self.dir).map_err(StoreError::FreeSpace)?;
            *reading = Some((Instant::now(), free, 0));
        }
        let (at, free, written) = reading.expect("just read");
        let left = free.saturating_sub(written + bytes);
        if left < self.reserve {
            return Err(StoreError::DiskFull {
                available: free.saturating_sub(written),
                reserve: self.reserve,
            });
        }
        *reading = Some((at, free, written + bytes));
        Ok(())
    }
}

fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}

fn decode_meta(doc: &str, json: &[u8]) -> Result<DocMeta, StoreError> {
    serde_json::from_slice(json).map_err(|e| StoreError::Corrupt(format!("metadata of {doc}: {e}")))
}

fn backend(e: sled::Error) -> StoreError {
    StoreError::Backend(Box::new(e))
}

fn prefix(doc: &DocId) -> Vec<u8> {
    let mut key = Vec::with_capacity(doc.as_str().len() + 10);
    key.extend_from_slice(doc.as_str().as_bytes());
    key.push(0);
    key
}

fn snapshot_key(doc: &DocId) -> Vec<u8> {
    let mut key = prefix(doc);
    key.push(SNAPSHOT);
    key
}

fn log_key(doc: &DocId, seq: Seq) -> Vec<u8> {
    let mut key = prefix(doc);
    key.push(LOG);
    key.extend_from_slice(&seq.0.to_be_bytes());
    key
}

fn be_u64(bytes: &[u8]) -> Result<u64, StoreError> {
    let array: [u8; 8] = bytes
        .try_into()
        .map_err(|_| StoreError::Corrupt("sequence number is not 8 bytes".into()))?;
    Ok(u64::from_be_bytes(array))
}

impl Store for SledStore {
    fn load(&self, doc: &DocId) -> Result<Option<Stored>, StoreError> {
        let prefix = prefix(doc);
        let mut stored = Stored::default();
        let mut found = false;
        for entry in self.docs.scan_prefix(&prefix) {
            let (key, value) = entry.map_err(backend)?;
            found = true;
            match key.get(prefix.len()) {
                Some(&SNAPSHOT) if value.len() >= 8 => {
                    stored.last_seq = Some(Seq(be_u64(&value[..8])?));
                    stored.updates.push(value[8..].to_vec());
                }
                Some(&LOG) => {
                    stored.last_seq = Some(Seq(be_u64(&key[prefix.len() + 1..])?));
                    stored.log_entries += 1;
                    stored.log_bytes += value.len() as u64;
                    stored.updates.push(value.to_vec());
                }
                _ => return Err(StoreError::Corrupt(format!("unexpected key for document {doc}"))),
            }
        }
        Ok(found.then_some(stored))
    }

    fn append(&self, doc: &DocId, update: &[u8]) -> Result<Seq, StoreError> {
        self.guard.admit(update.len() as u64)?;
        let seq = Seq(self.db.generate_id().map_err(backend)?);
        self.docs.insert(log_key(doc, seq), update).map_err(backend)?;
        Ok(seq)
    }

    fn compact(&self, doc: &DocId, snapshot: &[u8], upto: Seq) -> Result<(), StoreError> {
        self.guard.admit(snapshot.len() as u64)?;
        let mut batch = sled::Batch::default();
        let mut value = Vec::with_capacity(8 + snapshot.len());
        value.extend_from_slice(&upto.0.to_be_bytes());
        value.extend_from_slice(snapshot);
        batch.insert(snapshot_key(doc), value);
        for key in self.docs.range(log_key(doc, Seq(0))..=log_key(doc, upto)).keys() {
            batch.remove(key.map_err(backend)?);
        }
        // One batch is atomic in sled: readers and crash recovery see all of it or none.
        self.docs.apply_batch(batch).map_err(backend)
    }

    fn delete(&self, doc: &DocId) -> Result<(), StoreError> {
        use sled::Transactional;
        self.guard.admit(64)?;
        let keys = self
            .docs
            .scan_prefix(prefix(doc))
            .keys()
            .collect::<Result<Vec<_>, _>>()
            .map_err(backend)?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        // One transaction over the three trees: a crash leaves the document whole, or gone
        // and marked deleted.
        (&self.docs, &self.metas, &self.deleted)
            .transaction(|(docs, metas, deleted)| {
                for key in &keys {
                    docs.remove(key)?;
                }
                metas.remove(doc.as_str().as_bytes())?;
                deleted.insert(doc.as_str().as_bytes(), &now.to_be_bytes())?;
                Ok(())
            })
            .map_err(|e: sled::transaction::TransactionError<()>| match e {
                sled::transaction::TransactionError::Storage(e) => backend(e),
                sled::transaction::TransactionError::Abort(()) => {
                    StoreError::Corrupt("delete aborted".into())
                }
            })
    }

    fn exists(&self, doc: &DocId) -> Result<bool, StoreError> {
        if self.metas.contains_key(doc.as_str().as_bytes()).map_err(backend)? {
            return Ok(true);
        }
        Ok(self.docs.scan_prefix(prefix(doc)).next().transpose().map_err(backend)?.is_some())
    }

    fn deleted(&self, doc: &DocId) -> Result<bool, StoreError> {
        self.deleted.contains_key(doc.as_str().as_bytes()).map_err(backend)
    }

    fn undelete(&self, doc: &DocId) -> Result<(), StoreError> {
        self.guard.admit(64)?;
        self.deleted.remove(doc.as_str().as_bytes()).map_err(backend)?;
        Ok(())
    }

    fn put_meta(&self, doc: &DocId, meta: &DocMeta) -> Result<(), StoreError> {
        let json = serde_json::to_vec(meta).map_err(|e| StoreError::Backend(Box::new(e)))?;
        self.guard.admit(json.len() as u64)?;
        self.metas.insert(doc.as_str().as_bytes(), json).map_err(backend)?;
        Ok(())
    }

    fn meta(&self, doc: &DocId) -> Result<Option<DocMeta>, StoreError> {
        self.metas
            .get(doc.as_str().as_bytes())
            .map_err(backend)?
            .map(|json| decode_meta(doc.as_str(), &json))
            .transpose()
    }

    fn list(&self) -> Result<Vec<(DocId, DocMeta)>, StoreError> {
        self.metas
            .iter()
            .map(|entry| {
                let (key, json) = entry.map_err(backend)?;
                let id = std::str::from_utf8(&key)
                    .ok()
                    .and_then(|s| DocId::parse(s).ok())
                    .ok_or_else(|| StoreError::Corrupt("a metadata key is not a document id".into()))?;
                let meta = decode_meta(id.as_str(), &json)?;
                Ok((id, meta))
            })
            .collect()
    }

    fn flush(&self) -> Result<(), StoreError> {
        self.db.flush().map(drop).map_err(backend)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> DocId {
        DocId::parse(s).unwrap()
    }

    #[test]
    fn log_compaction_and_isolation_between_ids() {
        let dir = tempdir();
        let store = SledStore::open(&dir, 1 << 20).unwrap();
        let (a, ab) = (id("a"), id("a.b"));
        let s1 = store.append(&a, b"one").unwrap();
        let s2 = store.append(&a, b"two").unwrap();
        store.append(&ab, b"other").unwrap();
        assert!(s2 > s1);
        let loaded = store.load(&a).unwrap().unwrap();
        assert_eq!(loaded.updates, vec![b"one".to_vec(), b"two".to_vec()]);
        assert_eq!((loaded.last_seq, loaded.log_entries), (Some(s2), 2));

        store.compact(&a, b"snap", s1).unwrap();
        let s3 = store.append(&a, b"three").unwrap();
        let loaded = store.load(&a).unwrap().unwrap();
        assert_eq!(loaded.updates, vec![b"snap".to_vec(), b"two".to_vec(), b"three".to_vec()]);
        assert_eq!((loaded.last_seq, loaded.log_entries), (Some(s3), 2));

        let meta = DocMeta { title: "A".into(), created_ms: 1, updated_ms: 2, size_bytes: 3 };
        store.put_meta(&a, &meta).unwrap();
        store.put_meta(&ab, &meta).unwrap();
        assert_eq!(store.meta(&a).unwrap(), Some(meta.clone()));
        assert_eq!(store.list().unwrap().len(), 2);
        store.delete(&a).unwrap();
        assert_eq!(store.load(&a).unwrap(), None);
        assert_eq!(store.meta(&a).unwrap(), None);
        assert_eq!(store.list().unwrap(), vec![(ab.clone(), meta)]);
        assert_eq!(store.load(&ab).unwrap().unwrap().updates, vec![b"other".to_vec()]);
        store.flush().unwrap();
        drop(store);

        // Reopened, sequence numbers keep increasing.
        let store = SledStore::open(&dir, 1 << 20).unwrap();
        assert!(store.append(&ab, b"x").unwrap() > s3);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn refuses_a_foreign_directory_and_leaves_it_alone() {
        let dir = tempdir();
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("notes.txt"), b"mine").unwrap();
        let err = SledStore::open(&dir, 1 << 20).err().expect("must refuse");
        assert!(err.to_string().contains("no quire store"), "{err}");
        let names: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, vec!["notes.txt"]);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_failed_recovery_puts_the_directory_back_as_the_crash_left_it() {
        let dir = tempdir();
        {
            let store = SledStore::open(&dir, 1 << 20).unwrap();
            store.append(&id("a"), b"one").unwrap();
        }
        // A crash (no clean marker) that also damaged sled's configuration.
        std::fs::remove_file(dir.join(CLEAN_MARKER)).unwrap();
        std::fs::write(dir.join("conf"), b"segment_size: banana\n").unwrap();
        let before = snapshot_files(&dir);
        let err = SledStore::open(&dir, 1 << 20).err().expect("a damaged store must not open");
        assert!(err.to_string().contains("cannot open the store"), "{err}");
        assert_eq!(snapshot_files(&dir), before, "the directory was changed");
        assert!(!recovery_backup_path(&dir.canonicalize().unwrap()).exists());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_clean_close_leaves_the_marker_and_a_crash_does_not() {
        let dir = tempdir();
        let store = SledStore::open(&dir, 1 << 20).unwrap();
        assert!(!dir.join(CLEAN_MARKER).exists(), "an open store is not clean");
        drop(store);
        assert!(dir.join(CLEAN_MARKER).exists());
        // Recovery after a crash (the kill -9 itself is in the black-box crash test) works,
        // keeps the data and removes its copy.
        {
            let store = SledStore::open(&dir, 1 << 20).unwrap();
            store.append(&id("a"), b"kept").unwrap();
        }
        std::fs::remove_file(dir.join(CLEAN_MARKER)).unwrap();
        let store = SledStore::open(&dir, 1 << 20).unwrap();
        assert_eq!(store.load(&id("a")).unwrap().unwrap().updates, vec![b"kept".to_vec()]);
        assert!(!recovery_backup_path(&dir.canonicalize().unwrap()).exists(), "the recovery copy must be removed");
        drop(store);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_second_instance_is_refused_and_changes_nothing() {
        let dir = tempdir();
        let first = SledStore::open(&dir, 1 << 20).unwrap();
        first.append(&id("a"), b"live").unwrap();
        first.flush().unwrap();
        let before = snapshot_files(&dir);
        let err = SledStore::open(&dir, 1 << 20).err().expect("the store is in use");
        assert!(err.to_string().contains("another quire is using this store"), "{err}");
        assert_eq!(snapshot_files(&dir), before);
        assert!(!recovery_backup_path(&dir.canonicalize().unwrap()).exists());
        assert_eq!(first.load(&id("a")).unwrap().unwrap().updates, vec![b"live".to_vec()]);
        drop(first);
        std::fs::remove_dir_all(dir).unwrap();
    }

    fn snapshot_files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
        let mut files = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                files.extend(snapshot_files(&path));
            } else {
                files.push((path.clone(), std::fs::read(&path).unwrap()));
            }
        }
        files.sort();
        files
    }

    fn tempdir() -> std::path::PathBuf {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        std::env::temp_dir().join(format!(
            "quire-sled-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ))
    }
}
