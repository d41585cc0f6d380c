//! The default store: sled 0.34, embedded, zero setup.
//!
//! One tree, keys that sort in log order so one prefix scan reads a document back as written:
//! - `{doc}\0\0` → snapshot: `upto` (u64 big-endian) followed by a v1 update;
//! - `{doc}\0\x01{seq}` → one v1 update, `seq` a big-endian u64 from sled's `generate_id`
//!   (monotonic across restarts, also after a crash).
//!
//! Doc ids never contain NUL, so `{doc}\0` is a prefix of no other document's keys.
//! sled's own background flusher is off: an `insert` is not durable until a flush, and the
//! [`Flusher`](super::flusher) owns that barrier.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use quire_model::DocId;

use super::{Seq, Store, StoreError, Stored};

const SNAPSHOT: u8 = 0;
const LOG: u8 = 1;

pub struct SledStore {
    db: sled::Db,
    docs: sled::Tree,
}

impl SledStore {
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
            let empty = entries.next().is_none();
            if !empty && !dir.join("conf").is_file() {
                return Err(open_error(
                    "directory is not empty and holds no quire store (no sled `conf` file)".into(),
                ));
            }
        }
        let config = sled::Config::new()
            .path(dir)
            .cache_capacity(cache_capacity_bytes)
            .flush_every_ms(None);
        let db = catch_unwind(AssertUnwindSafe(|| config.open()))
            .map_err(|_| open_error("sled panicked while opening: the store may be damaged".into()))?
            .map_err(|e| open_error(e.to_string()))?;
        let docs = db.open_tree("docs").map_err(backend)?;
        Ok(SledStore { db, docs })
    }
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
        let seq = Seq(self.db.generate_id().map_err(backend)?);
        self.docs.insert(log_key(doc, seq), update).map_err(backend)?;
        Ok(seq)
    }

    fn compact(&self, doc: &DocId, snapshot: &[u8], upto: Seq) -> Result<(), StoreError> {
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
        let mut batch = sled::Batch::default();
        for key in self.docs.scan_prefix(prefix(doc)).keys() {
            batch.remove(key.map_err(backend)?);
        }
        self.docs.apply_batch(batch).map_err(backend)
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

        store.delete(&a).unwrap();
        assert_eq!(store.load(&a).unwrap(), None);
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
