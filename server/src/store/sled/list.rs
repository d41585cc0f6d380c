//! Documents' metadata and the documents list, in sled.
//!
//! - `meta`: `{doc}` → [`DocMeta`] as JSON, one small entry per document, so the list never
//!   reads content;
//! - `by_updated`: [`order_key`] → nothing, the list's order, so that a page is read without
//!   the whole list; and a count of the documents with metadata in the default tree.
//!
//! Metadata is written often (every few seconds while someone types), so it is written as
//! plain writes, not a transaction (see `content` for why sled's batches and transactions
//! hold every document up): the new list entry, then the metadata, then the old entry's
//! removal. The list skips entries that do not match their document's metadata, which is all
//! that a write in progress, or one cut short by a crash, can leave; after an unclean shutdown
//! [`rebuild`] makes the index and the count again from the metadata.

use quire_model::DocId;
use sled::transaction::{ConflictableTransactionError, TransactionalTree};

use super::layout::{order_key, COUNT_KEY};
use super::{backend, be_u64, Inner};
use crate::store::{DocMeta, Page, StoreError};

pub(super) fn decode_meta(doc: &str, json: &[u8]) -> Result<DocMeta, StoreError> {
    serde_json::from_slice(json).map_err(|e| StoreError::Corrupt(format!("metadata of {doc}: {e}")))
}

/// Adds `delta` to the documents' count, inside a transaction (a deletion's).
pub(super) fn add_to_count(counts: &TransactionalTree, delta: i64) -> Result<(), ConflictableTransactionError<StoreError>> {
    let count = match counts.get(COUNT_KEY)? {
        Some(bytes) => be_u64(&bytes).map_err(ConflictableTransactionError::Abort)?,
        None => 0,
    };
    counts.insert(COUNT_KEY, &count.saturating_add_signed(delta).to_be_bytes())?;
    Ok(())
}

/// The list's order and the count, made again from the metadata (a migration from layout 1,
/// and every start after an unclean shutdown).
pub(super) fn rebuild(db: &sled::Db, metas: &sled::Tree, by_updated: &sled::Tree) -> Result<(), RebuildError> {
    by_updated.clear()?;
    let mut count: u64 = 0;
    for entry in metas.iter() {
        let (key, json) = entry?;
        let doc = std::str::from_utf8(&key).map_err(|_| RebuildError::BadEntry)?;
        let meta = decode_meta(doc, &json).map_err(|_| RebuildError::BadEntry)?;
        by_updated.insert(order_key(meta.updated_ms, doc), &[])?;
        count += 1;
    }
    db.insert(COUNT_KEY, &count.to_be_bytes())?;
    Ok(())
}

#[derive(Debug, thiserror::Error)]
pub enum RebuildError {
    #[error(transparent)]
    Sled(#[from] sled::Error),
    #[error("a document's metadata is damaged")]
    BadEntry,
}

impl Inner {
    pub(super) fn put_meta(&self, doc: &DocId, meta: &DocMeta) -> Result<(), StoreError> {
        let json = serde_json::to_vec(meta).map_err(|e| StoreError::Backend(Box::new(e)))?;
        self.guard.admit(json.len() as u64 + 64)?;
        let id = doc.as_str().as_bytes();
        let entry = order_key(meta.updated_ms, doc.as_str());
        self.by_updated.insert(&entry, &[]).map_err(backend)?;
        match self.metas.insert(id, json.as_slice()).map_err(backend)? {
            Some(old) => {
                let old = order_key(decode_meta(doc.as_str(), &old)?.updated_ms, doc.as_str());
                if old != entry {
                    self.by_updated.remove(old).map_err(backend)?;
                }
            }
            None => {
                self.db
                    .update_and_fetch(COUNT_KEY, |count| {
                        let count = count.and_then(|b| <[u8; 8]>::try_from(b).ok()).map_or(0, u64::from_be_bytes);
                        Some((count + 1).to_be_bytes().to_vec())
                    })
                    .map_err(backend)?;
            }
        }
        Ok(())
    }

    pub(super) fn meta(&self, doc: &DocId) -> Result<Option<DocMeta>, StoreError> {
        self.metas
            .get(doc.as_str().as_bytes())
            .map_err(backend)?
            .map(|json| decode_meta(doc.as_str(), &json))
            .transpose()
    }

    pub(super) fn list(&self, offset: usize, limit: usize) -> Result<Page, StoreError> {
        let total = match self.db.get(COUNT_KEY).map_err(backend)? {
            Some(bytes) => be_u64(&bytes)?,
            None => 0,
        };
        let mut docs = Vec::with_capacity(limit.min(1000));
        // Entries are counted before they are checked: an entry that does not match (a write
        // in progress) makes one page one shorter, for a moment, rather than every page read
        // the metadata of all the documents before it.
        for key in self.by_updated.iter().keys().skip(offset).take(limit) {
            let key = key.map_err(backend)?;
            let id = key
                .get(8..)
                .and_then(|id| std::str::from_utf8(id).ok())
                .and_then(|s| DocId::parse(s).ok())
                .ok_or_else(|| StoreError::Corrupt("a list entry is not a document id".into()))?;
            let Some(meta) = self.meta(&id)? else { continue };
            if order_key(meta.updated_ms, id.as_str()) == key.as_ref() {
                docs.push((id, meta));
            }
        }
        Ok(Page { docs, total })
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::tempdir;
    use super::super::{open, SledStore};
    use super::*;
    use crate::store::Store;

    #[tokio::test]
    async fn a_metadata_write_cut_short_is_skipped_and_repaired_at_the_next_start() {
        let dir = tempdir();
        let store = SledStore::open(&dir, 1 << 20).unwrap();
        let (a, b) = (DocId::parse("a").unwrap(), DocId::parse("b").unwrap());
        let meta = |updated_ms| DocMeta { title: String::new(), created_ms: 1, updated_ms, size_bytes: 0 };
        store.put_meta(&a, &meta(10)).await.unwrap();
        store.put_meta(&b, &meta(20)).await.unwrap();
        // A crash after `a`'s new list entry, before its metadata.
        store.inner.by_updated.insert(order_key(30, "a"), &[]).unwrap();
        let ids = |page: Page| page.docs.into_iter().map(|(id, _)| id.to_string()).collect::<Vec<_>>();
        assert_eq!(ids(store.list(0, 10).await.unwrap()), ["b", "a"], "the stray entry is skipped");
        store.flush().await.unwrap();
        drop(store);
        std::fs::remove_file(dir.join(open::CLEAN_MARKER)).unwrap();

        let store = SledStore::open(&dir, 1 << 20).unwrap();
        assert_eq!(store.inner.by_updated.len(), 2, "the index is made again from the metadata");
        let page = store.list(0, 10).await.unwrap();
        assert_eq!(page.total, 2);
        assert_eq!(ids(page), ["b", "a"]);
        drop(store);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
