//! An in-memory store for tests, with injectable faults.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

use quire_model::DocId;

use super::history::{Author, VersionPage, VersionRecord};
use super::{DocMeta, Page, Seq, Store, StoreError, Stored};

/// A document's history: versions by id (record, packed state), authors by client id.
#[derive(Default)]
struct History {
    versions: BTreeMap<u64, (VersionRecord, Vec<u8>)>,
    authors: BTreeMap<u64, Author>,
}

#[derive(Default)]
pub struct MemoryStore {
    // std Mutex: held only for map operations, never across an await.
    docs: Mutex<BTreeMap<DocId, Stored>>,
    metas: Mutex<BTreeMap<DocId, DocMeta>>,
    /// Deleted ids → the state deleted; live ids → the state of their deleted predecessors.
    deleted: Mutex<BTreeMap<DocId, Vec<u8>>>,
    stale: Mutex<BTreeMap<DocId, Vec<u8>>>,
    links: Mutex<BTreeMap<(DocId, String), Vec<u8>>>,
    history: Mutex<BTreeMap<DocId, History>>,
    next_seq: AtomicU64,
    /// While set, every `load` fails, as a damaged disk would.
    pub fail_loads: AtomicBool,
    /// Counts calls that write, so tests can assert that nothing was written.
    pub writes: AtomicU64,
    /// While set, every `flush` fails, as a full or broken disk would.
    pub fail_flushes: AtomicBool,
    flushes: AtomicU64,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// How many flushes succeeded.
    pub fn flushes(&self) -> u64 {
        self.flushes.load(Ordering::SeqCst)
    }

    fn docs(&self) -> std::sync::MutexGuard<'_, BTreeMap<DocId, Stored>> {
        // A test that panicked while holding the lock must not hide the data from the next one.
        self.docs.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn metas(&self) -> std::sync::MutexGuard<'_, BTreeMap<DocId, DocMeta>> {
        self.metas.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn deleted(&self) -> std::sync::MutexGuard<'_, BTreeMap<DocId, Vec<u8>>> {
        self.deleted.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn lock_links(&self) -> std::sync::MutexGuard<'_, BTreeMap<(DocId, String), Vec<u8>>> {
        self.links.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn history(&self) -> std::sync::MutexGuard<'_, BTreeMap<DocId, History>> {
        self.history.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn stales(&self) -> std::sync::MutexGuard<'_, BTreeMap<DocId, Vec<u8>>> {
        self.stale.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[async_trait::async_trait]
impl Store for MemoryStore {
    async fn load(&self, doc: &DocId) -> Result<Option<Stored>, StoreError> {
        if self.fail_loads.load(Ordering::SeqCst) {
            return Err(StoreError::Injected("load"));
        }
        Ok(self.docs().get(doc).cloned())
    }

    async fn append(&self, doc: &DocId, update: &[u8]) -> Result<Seq, StoreError> {
        self.writes.fetch_add(1, Ordering::SeqCst);
        let seq = Seq(u128::from(self.next_seq.fetch_add(1, Ordering::SeqCst) + 1));
        let mut docs = self.docs();
        let stored = docs.entry(doc.clone()).or_default();
        stored.updates.push(update.to_vec());
        stored.last_seq = Some(seq);
        stored.log_entries += 1;
        stored.log_bytes += update.len() as u64;
        Ok(seq)
    }

    async fn compact(&self, doc: &DocId, snapshot: &[u8], upto: Seq) -> Result<(), StoreError> {
        self.writes.fetch_add(1, Ordering::SeqCst);
        let mut docs = self.docs();
        let stored = docs.entry(doc.clone()).or_default();
        // Entries after `upto` stay; this store keeps no per-entry seq, so only a full
        // compaction (upto = last_seq) is supported, which is all the document task does.
        if stored.last_seq != Some(upto) {
            return Err(StoreError::Corrupt("memory store compacts whole logs only".into()));
        }
        *stored = Stored {
            updates: vec![snapshot.to_vec()],
            last_seq: Some(upto),
            log_entries: 0,
            log_bytes: 0,
        };
        Ok(())
    }

    async fn delete(&self, doc: &DocId, state: &[u8]) -> Result<(), StoreError> {
        self.writes.fetch_add(1, Ordering::SeqCst);
        self.docs().remove(doc);
        self.metas().remove(doc);
        self.history().remove(doc);
        let earlier = self.stales().remove(doc).unwrap_or_default();
        self.deleted().insert(doc.clone(), super::merge_states(&earlier, state));
        Ok(())
    }

    async fn exists(&self, doc: &DocId) -> Result<bool, StoreError> {
        Ok(self.docs().contains_key(doc) || self.metas().contains_key(doc))
    }

    async fn deleted(&self, doc: &DocId) -> Result<bool, StoreError> {
        Ok(self.deleted().contains_key(doc))
    }

    async fn undelete(&self, doc: &DocId) -> Result<(), StoreError> {
        self.writes.fetch_add(1, Ordering::SeqCst);
        if let Some(state) = self.deleted().remove(doc) {
            self.stales().insert(doc.clone(), state);
        }
        self.history().remove(doc);
        Ok(())
    }

    async fn stale(&self, doc: &DocId) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.stales().get(doc).cloned())
    }

    async fn put_meta(&self, doc: &DocId, meta: &DocMeta) -> Result<(), StoreError> {
        self.writes.fetch_add(1, Ordering::SeqCst);
        self.metas().insert(doc.clone(), meta.clone());
        Ok(())
    }

    async fn meta(&self, doc: &DocId) -> Result<Option<DocMeta>, StoreError> {
        Ok(self.metas().get(doc).cloned())
    }

    async fn list(&self, offset: usize, limit: usize) -> Result<Page, StoreError> {
        let metas = self.metas();
        let mut docs: Vec<(DocId, DocMeta)> = metas.iter().map(|(id, m)| (id.clone(), m.clone())).collect();
        // Newest first; ties by id (the map's order, kept by a stable sort).
        docs.sort_by_key(|(_, meta)| std::cmp::Reverse(meta.updated_ms));
        let total = docs.len() as u64;
        let docs = docs.into_iter().skip(offset).take(limit).collect();
        Ok(Page { docs, total })
    }

    async fn put_link(&self, doc: &DocId, link: &str, record: &[u8]) -> Result<(), StoreError> {
        self.writes.fetch_add(1, Ordering::SeqCst);
        self.lock_links().insert((doc.clone(), link.to_owned()), record.to_vec());
        Ok(())
    }

    async fn remove_link(&self, doc: &DocId, link: &str) -> Result<bool, StoreError> {
        self.writes.fetch_add(1, Ordering::SeqCst);
        Ok(self.lock_links().remove(&(doc.clone(), link.to_owned())).is_some())
    }

    async fn links(&self) -> Result<Vec<(DocId, String, Vec<u8>)>, StoreError> {
        Ok(self.lock_links().iter().map(|((doc, link), record)| (doc.clone(), link.clone(), record.clone())).collect())
    }

    async fn flush(&self) -> Result<(), StoreError> {
        if self.fail_flushes.load(Ordering::SeqCst) {
            return Err(StoreError::Injected("flush"));
        }
        self.flushes.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    async fn put_version(&self, doc: &DocId, record: &VersionRecord, state: &[u8]) -> Result<bool, StoreError> {
        self.writes.fetch_add(1, Ordering::SeqCst);
        let mut history = self.history();
        let versions = &mut history.entry(doc.clone()).or_default().versions;
        if versions.contains_key(&record.id) {
            return Ok(false);
        }
        versions.insert(record.id, (record.clone(), state.to_vec()));
        Ok(true)
    }

    async fn update_version(&self, doc: &DocId, record: &VersionRecord) -> Result<bool, StoreError> {
        self.writes.fetch_add(1, Ordering::SeqCst);
        let mut history = self.history();
        let found = history.get_mut(doc).and_then(|h| h.versions.get_mut(&record.id));
        Ok(found.map(|(old, _)| *old = record.clone()).is_some())
    }

    async fn remove_versions(&self, doc: &DocId, ids: &[u64]) -> Result<(), StoreError> {
        self.writes.fetch_add(1, Ordering::SeqCst);
        if let Some(history) = self.history().get_mut(doc) {
            for id in ids {
                history.versions.remove(id);
            }
        }
        Ok(())
    }

    async fn versions(&self, doc: &DocId, offset: usize, limit: usize) -> Result<VersionPage, StoreError> {
        let history = self.history();
        let Some(history) = history.get(doc) else { return Ok(VersionPage::default()) };
        let versions = history.versions.values().rev().skip(offset).take(limit).map(|(r, _)| r.clone()).collect();
        Ok(VersionPage { versions, total: history.versions.len() as u64 })
    }

    async fn version_state(&self, doc: &DocId, id: u64) -> Result<Option<Vec<u8>>, StoreError> {
        let history = self.history();
        Ok(history.get(doc).and_then(|h| h.versions.get(&id)).map(|(_, state)| state.clone()))
    }

    async fn put_authors(&self, doc: &DocId, authors: &[(u64, Author)]) -> Result<(), StoreError> {
        self.writes.fetch_add(1, Ordering::SeqCst);
        let mut history = self.history();
        let recorded = &mut history.entry(doc.clone()).or_default().authors;
        recorded.extend(authors.iter().cloned());
        Ok(())
    }

    async fn authors(&self, doc: &DocId) -> Result<Vec<(u64, Author)>, StoreError> {
        let history = self.history();
        Ok(history.get(doc).map(|h| h.authors.iter().map(|(c, a)| (*c, a.clone())).collect()).unwrap_or_default())
    }
}
