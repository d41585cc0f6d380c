//! The default store: sled 0.34, embedded, zero setup.
//!
//! A document's content is its log and its snapshot ([`content`]); its metadata and the
//! documents list are kept apart so that the list never reads content ([`list`]). Deletions and
//! the states of deleted predecessors are kept in `deleted` and `stale`; share links in
//! `links`; version history in `versions`, `version_states` and `authors` ([`history`]).
//! [`layout`] says which version of this a store holds and migrates older ones.
//!
//! Keys start with `{doc}\0`: doc ids never contain NUL, so that is a prefix of no other
//! document's keys. sled's own background flusher is off: an `insert` is not durable until a
//! flush, and the [`Flusher`](super::flusher) owns that barrier.
//!
//! sled takes one lock on every operation once any batch or transaction has run, and a batch
//! or transaction waits for every write in flight: so only the rare operations (deleting a
//! document, creating one again) use them, and everything written while people type is
//! written as plain writes, in an order that a crash cannot make wrong.
//!
//! - [`open`]: one quire per directory, and crash recovery that changes nothing if it fails.
//! - [`guard`]: sled must never meet a full disk; writes stop short of it.
//! - [`layout`]: the layout's version and the migrations from older ones.
//! - [`content`]: logs and snapshots.
//! - [`list`]: metadata and the documents list.
//! - [`history`]: versions and authors.
mod content;
mod guard;
mod history;
mod layout;
mod list;
mod open;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use quire_model::DocId;

use sled::transaction::{ConflictableTransactionError, TransactionError};
use sled::Transactional;
use tokio_util::task::TaskTracker;

use super::history::{Author, VersionPage, VersionRecord};
use super::{merge_states, DocMeta, Page, Seq, Store, StoreError, Stored};
use crate::state::INLINE_BYTES;
use guard::DiskGuard;
use layout::order_key;
use list::{add_to_count, decode_meta};
pub use open::OpenError;

/// The sled store. Cheap to clone: every clone is the same open store (the work that may
/// wait for the disk runs on the blocking pool, with a clone).
#[derive(Clone)]
pub struct SledStore {
    inner: Arc<Inner>,
    /// Every job on the blocking pool: each holds `inner`, and so the store's lock, and a
    /// caller that gave up (a client hanging up) does not stop it. [`Store::close`] waits for
    /// them, so that the store is closed when the server has stopped.
    jobs: TaskTracker,
}

struct Inner {
    db: sled::Db,
    guard: DiskGuard,
    docs: sled::Tree,
    metas: sled::Tree,
    /// The documents list's order: [`order_key`] → nothing.
    by_updated: sled::Tree,
    /// Deleted ids → when (ms since the epoch, big-endian), then the state vector deleted: see
    /// `DocError::Deleted`.
    deleted: sled::Tree,
    /// Ids created again → the state vector of their deleted predecessors.
    stale: sled::Tree,
    /// `{doc}\0{link}` → a share link's record.
    links: sled::Tree,
    /// Version history: see [`history`].
    versions: sled::Tree,
    version_states: sled::Tree,
    authors: sled::Tree,
    /// Content: see [`content`].
    snapshots: sled::Tree,
    big_log: sled::Tree,
    dir: PathBuf,
    /// Held (locked) for as long as the store is open.
    _lock: std::fs::File,
}

impl SledStore {
    /// Opens (or creates) the store in `dir`. Refuses a non-empty directory that is not a sled
    /// store, and turns sled's panics on a damaged store into an error, so a failed start
    /// leaves the directory exactly as it was.
    pub fn open(dir: &Path, cache_capacity_bytes: u64) -> Result<Self, StoreError> {
        open::open(dir, |dir, lock, crashed| {
            let db = open::sled_db(dir, cache_capacity_bytes)?;
            let trees = layout::Trees::open(&db)?;
            layout::migrate(&db, &trees)?;
            if crashed {
                // The list's index is written without a transaction (see `list`).
                list::rebuild(&db, &trees.metas, &trees.by_updated).map_err(OpenError::ListIndex)?;
            }
            Ok(Inner {
                guard: DiskGuard::new(dir, 0),
                docs: trees.docs,
                metas: trees.metas,
                by_updated: trees.by_updated,
                deleted: trees.deleted,
                stale: trees.stale,
                links: trees.links,
                versions: trees.versions,
                version_states: trees.version_states,
                authors: trees.authors,
                snapshots: trees.snapshots,
                big_log: trees.big_log,
                db,
                dir: dir.to_path_buf(),
                _lock: lock,
            })
        })
        .map(|inner| SledStore { inner: Arc::new(inner), jobs: TaskTracker::new() })
        .map_err(|source| StoreError::Open {
            path: dir.to_path_buf(),
            source: Box::new(source),
        })
    }

    /// Refuses writes while the store's disk has less than `bytes` free (0: never). Set right
    /// after opening, before the store is shared.
    pub fn with_reserve(mut self, bytes: u64) -> Self {
        Arc::get_mut(&mut self.inner).expect("set before the store is shared").guard.reserve = bytes;
        self
    }
}

impl Drop for Inner {
    /// A clean close: flush, then leave the marker that says no recovery is needed.
    fn drop(&mut self) {
        if self.db.flush().is_ok() {
            open::mark_clean(&self.dir);
        }
    }
}

fn backend(e: sled::Error) -> StoreError {
    StoreError::Backend(Box::new(e))
}

fn transaction_error(e: TransactionError<StoreError>) -> StoreError {
    match e {
        TransactionError::Storage(e) => backend(e),
        TransactionError::Abort(e) => e,
    }
}

fn prefix(doc: &DocId) -> Vec<u8> {
    let mut key = Vec::with_capacity(doc.as_str().len() + 10);
    key.extend_from_slice(doc.as_str().as_bytes());
    key.push(0);
    key
}

fn link_key(doc: &DocId, link: &str) -> Vec<u8> {
    let mut key = prefix(doc);
    key.extend_from_slice(link.as_bytes());
    key
}

fn be_u64(bytes: &[u8]) -> Result<u64, StoreError> {
    let array: [u8; 8] = bytes
        .try_into()
        .map_err(|_| StoreError::Corrupt("sequence number is not 8 bytes".into()))?;
    Ok(u64::from_be_bytes(array))
}

/// The store's operations as sled runs them, synchronously.
impl Inner {
    fn delete(&self, doc: &DocId, state: &[u8]) -> Result<(), StoreError> {
        self.guard.admit(64 + state.len() as u64)?;
        let (log, big_log) = self.log_keys(doc)?;
        let (versions, authors) = self.history_keys(doc)?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let id = doc.as_str().as_bytes();
        // One transaction over every tree: a crash leaves the document whole, or gone (history
        // and all) and marked deleted.
        let content = (&self.docs, &self.big_log, &self.snapshots);
        let history = (&self.versions, &self.version_states, &self.authors);
        (content.0, content.1, content.2, &self.metas, &self.by_updated, &self.deleted, &self.stale, &*self.db, history.0, history.1, history.2)
            .transaction(|(docs, big_docs, snapshots, metas, order, deleted, stale, counts, version_records, version_states, authors_tree)| {
                for key in &log {
                    docs.remove(key)?;
                }
                for key in &big_log {
                    big_docs.remove(key)?;
                }
                snapshots.remove(id)?;
                for key in &versions {
                    version_records.remove(key)?;
                    version_states.remove(key)?;
                }
                for key in &authors {
                    authors_tree.remove(key)?;
                }
                if let Some(old) = metas.remove(id)? {
                    let old = decode_meta(doc.as_str(), &old).map_err(ConflictableTransactionError::Abort)?;
                    order.remove(order_key(old.updated_ms, doc.as_str()))?;
                    add_to_count(counts, -1)?;
                }
                let earlier = stale.remove(id)?.map(|v| v.to_vec()).unwrap_or_default();
                let mut tombstone = now.to_be_bytes().to_vec();
                tombstone.extend_from_slice(&merge_states(&earlier, state));
                deleted.insert(id, tombstone)?;
                Ok(())
            })
            .map_err(transaction_error)
    }

    fn deleted(&self, doc: &DocId) -> Result<bool, StoreError> {
        self.deleted.contains_key(doc.as_str().as_bytes()).map_err(backend)
    }

    fn undelete(&self, doc: &DocId) -> Result<(), StoreError> {
        self.guard.admit(64)?;
        let id = doc.as_str().as_bytes();
        // History written under the id after its deletion (a version job that was still
        // running) must not show up as the new document's.
        let (versions, authors) = self.history_keys(doc)?;
        (&self.deleted, &self.stale, &self.versions, &self.version_states, &self.authors)
            .transaction(|(deleted, stale, version_records, version_states, authors_tree)| {
                if let Some(tombstone) = deleted.remove(id)? {
                    // Layout 1 kept only the time (8 bytes): nothing to remember then.
                    if tombstone.len() > 8 {
                        stale.insert(id, &tombstone[8..])?;
                    }
                }
                for key in &versions {
                    version_records.remove(key)?;
                    version_states.remove(key)?;
                }
                for key in &authors {
                    authors_tree.remove(key)?;
                }
                Ok(())
            })
            .map_err(transaction_error)
    }

    fn stale(&self, doc: &DocId) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.stale.get(doc.as_str().as_bytes()).map_err(backend)?.map(|v| v.to_vec()))
    }

    fn put_link(&self, doc: &DocId, link: &str, record: &[u8]) -> Result<(), StoreError> {
        self.guard.admit(record.len() as u64 + 64)?;
        self.links.insert(link_key(doc, link), record).map_err(backend)?;
        Ok(())
    }

    fn remove_link(&self, doc: &DocId, link: &str) -> Result<bool, StoreError> {
        Ok(self.links.remove(link_key(doc, link)).map_err(backend)?.is_some())
    }

    fn links(&self) -> Result<Vec<(DocId, String, Vec<u8>)>, StoreError> {
        self.links
            .iter()
            .map(|entry| {
                let (key, record) = entry.map_err(backend)?;
                let corrupt = || StoreError::Corrupt("a share link's key is damaged".into());
                let split = key.iter().position(|&b| b == 0).ok_or_else(corrupt)?;
                let doc = std::str::from_utf8(&key[..split]).ok().and_then(|s| DocId::parse(s).ok()).ok_or_else(corrupt)?;
                let link = std::str::from_utf8(&key[split + 1..]).map_err(|_| corrupt())?.to_owned();
                Ok((doc, link, record.to_vec()))
            })
            .collect()
    }

    fn flush(&self) -> Result<(), StoreError> {
        self.db.flush().map(drop).map_err(backend)
    }
}

#[async_trait]
impl Store for SledStore {
    async fn load(&self, doc: &DocId) -> Result<Option<Stored>, StoreError> {
        let (inner, doc) = (self.inner.clone(), doc.clone());
        self.blocking(move || inner.load(&doc)).await
    }

    async fn append(&self, doc: &DocId, update: &[u8]) -> Result<Seq, StoreError> {
        // An insert into sled's in-memory log: no disk until the flush. A big update (a paste,
        // an import up to the body limit) is inserted on the blocking pool, as it was decoded
        // and applied: sled copies it and writes a value of megabytes to a file of its own,
        // holding the thread meanwhile (a 16 MiB import held a runtime thread for that).
        if update.len() > INLINE_BYTES {
            let (inner, doc, update) = (self.inner.clone(), doc.clone(), update.to_vec());
            return self.blocking(move || inner.append(&doc, &update)).await;
        }
        self.inner.append(doc, update)
    }

    async fn compact(&self, doc: &DocId, snapshot: &[u8], upto: Seq) -> Result<(), StoreError> {
        let (inner, doc, snapshot) = (self.inner.clone(), doc.clone(), snapshot.to_vec());
        self.blocking(move || inner.compact(&doc, &snapshot, upto)).await
    }

    async fn delete(&self, doc: &DocId, state: &[u8]) -> Result<(), StoreError> {
        let (inner, doc, state) = (self.inner.clone(), doc.clone(), state.to_vec());
        self.blocking(move || inner.delete(&doc, &state)).await
    }

    async fn exists(&self, doc: &DocId) -> Result<bool, StoreError> {
        let (inner, doc) = (self.inner.clone(), doc.clone());
        self.blocking(move || inner.exists(&doc)).await
    }

    async fn deleted(&self, doc: &DocId) -> Result<bool, StoreError> {
        self.inner.deleted(doc)
    }

    async fn undelete(&self, doc: &DocId) -> Result<(), StoreError> {
        self.inner.undelete(doc)
    }

    async fn stale(&self, doc: &DocId) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.stale(doc)
    }

    async fn put_meta(&self, doc: &DocId, meta: &DocMeta) -> Result<(), StoreError> {
        self.inner.put_meta(doc, meta)
    }

    async fn meta(&self, doc: &DocId) -> Result<Option<DocMeta>, StoreError> {
        self.inner.meta(doc)
    }

    async fn list(&self, offset: usize, limit: usize) -> Result<Page, StoreError> {
        let inner = self.inner.clone();
        self.blocking(move || inner.list(offset, limit)).await
    }

    async fn put_link(&self, doc: &DocId, link: &str, record: &[u8]) -> Result<(), StoreError> {
        self.inner.put_link(doc, link, record)
    }

    async fn remove_link(&self, doc: &DocId, link: &str) -> Result<bool, StoreError> {
        self.inner.remove_link(doc, link)
    }

    async fn links(&self) -> Result<Vec<(DocId, String, Vec<u8>)>, StoreError> {
        let inner = self.inner.clone();
        self.blocking(move || inner.links()).await
    }

    async fn flush(&self) -> Result<(), StoreError> {
        let inner = self.inner.clone();
        self.blocking(move || inner.flush()).await
    }

    async fn close(&self) {
        self.jobs.close();
        self.jobs.wait().await;
    }

    async fn put_version(&self, doc: &DocId, record: &VersionRecord, state: &[u8]) -> Result<bool, StoreError> {
        let (inner, doc, record, state) = (self.inner.clone(), doc.clone(), record.clone(), state.to_vec());
        self.blocking(move || inner.put_version(&doc, &record, &state)).await
    }

    async fn update_version(&self, doc: &DocId, record: &VersionRecord) -> Result<bool, StoreError> {
        self.inner.update_version(doc, record)
    }

    async fn remove_versions(&self, doc: &DocId, ids: &[u64]) -> Result<(), StoreError> {
        let (inner, doc, ids) = (self.inner.clone(), doc.clone(), ids.to_vec());
        self.blocking(move || inner.remove_versions(&doc, &ids)).await
    }

    async fn versions(&self, doc: &DocId, offset: usize, limit: usize) -> Result<VersionPage, StoreError> {
        let (inner, doc) = (self.inner.clone(), doc.clone());
        self.blocking(move || inner.versions(&doc, offset, limit)).await
    }

    async fn version_state(&self, doc: &DocId, id: u64) -> Result<Option<Vec<u8>>, StoreError> {
        let (inner, doc) = (self.inner.clone(), doc.clone());
        self.blocking(move || inner.version_state(&doc, id)).await
    }

    async fn put_authors(&self, doc: &DocId, authors: &[(u64, Author)]) -> Result<(), StoreError> {
        self.inner.put_authors(doc, authors)
    }

    async fn authors(&self, doc: &DocId) -> Result<Vec<(u64, Author)>, StoreError> {
        let (inner, doc) = (self.inner.clone(), doc.clone());
        self.blocking(move || inner.authors(&doc)).await
    }
}

impl SledStore {
    /// Runs `work` (which may wait for the disk) on the blocking pool.
    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        self.jobs.spawn_blocking(work).await.map_err(|e| StoreError::Backend(Box::new(e)))?
    }
}

#[cfg(test)]
mod tests;
