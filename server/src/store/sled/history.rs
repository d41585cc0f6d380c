//! sled's side of version history (layout 3): three trees, keyed alike by document.
//!
//! - `versions`: `{doc}\0{id}` → a version's record as JSON (`id` big-endian, so a prefix scan
//!   runs oldest first, and backwards newest first);
//! - `version_states`: the same key → its packed state, apart so that listing reads records only;
//! - `authors`: `{doc}\0{client}` → who wrote under a Yjs client id, as JSON.
//!
//! Written as plain writes, not transactions (see the parent for why): a version's state before
//! the record that makes it visible, and removed after it, so that a record never lacks its
//! state (a state without a record is never read, and goes with its document). A document's
//! deletion removes its history in the transaction that removes the document (see `delete` in
//! the parent).

use quire_model::DocId;

use super::{backend, be_u64, prefix, Inner};
use crate::store::history::{Author, VersionPage, VersionRecord};
use crate::store::StoreError;

/// The key of a version, or of an author (`n`: the id, or the client id).
pub(super) fn key(doc: &DocId, n: u64) -> Vec<u8> {
    let mut key = prefix(doc);
    key.extend_from_slice(&n.to_be_bytes());
    key
}

fn json<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(value).map_err(|e| StoreError::Backend(Box::new(e)))
}

fn record(doc: &DocId, bytes: &[u8]) -> Result<VersionRecord, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt(format!("a version record of {doc}: {e}")))
}

impl Inner {
    pub(super) fn put_version(&self, doc: &DocId, version: &VersionRecord, state: &[u8]) -> Result<bool, StoreError> {
        let value = json(version)?;
        self.guard.admit((state.len() + value.len()) as u64 + 64)?;
        let key = key(doc, version.id);
        if self.versions.contains_key(&key).map_err(backend)? {
            return Ok(false);
        }
        // Ids come from the document's task, one at a time: nothing else writes this key now.
        self.version_states.insert(key.as_slice(), state).map_err(backend)?;
        let put = self
            .versions
            .compare_and_swap(key.as_slice(), None::<&[u8]>, Some(value.as_slice()))
            .map_err(backend)?;
        Ok(put.is_ok())
    }

    pub(super) fn update_version(&self, doc: &DocId, version: &VersionRecord) -> Result<bool, StoreError> {
        let value = json(version)?;
        self.guard.admit(value.len() as u64 + 64)?;
        let key = key(doc, version.id);
        let updated = self
            .versions
            .update_and_fetch(key.as_slice(), |old| old.map(|_| value.clone()))
            .map_err(backend)?;
        Ok(updated.is_some())
    }

    pub(super) fn remove_versions(&self, doc: &DocId, ids: &[u64]) -> Result<(), StoreError> {
        for &id in ids {
            self.versions.remove(key(doc, id)).map_err(backend)?;
            self.version_states.remove(key(doc, id)).map_err(backend)?;
        }
        Ok(())
    }

    pub(super) fn versions(&self, doc: &DocId, offset: usize, limit: usize) -> Result<VersionPage, StoreError> {
        let mut page = VersionPage::default();
        // Records are small (a few hundred bytes): counting them is a scan of this document's.
        for (n, entry) in self.versions.scan_prefix(prefix(doc)).rev().enumerate() {
            let (_, value) = entry.map_err(backend)?;
            if n >= offset && page.versions.len() < limit {
                page.versions.push(record(doc, &value)?);
            }
            page.total += 1;
        }
        Ok(page)
    }

    pub(super) fn version_state(&self, doc: &DocId, id: u64) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.version_states.get(key(doc, id)).map_err(backend)?.map(|v| v.to_vec()))
    }

    pub(super) fn put_authors(&self, doc: &DocId, authors: &[(u64, Author)]) -> Result<(), StoreError> {
        let values = authors
            .iter()
            .map(|(client, author)| Ok((key(doc, *client), json(author)?)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        self.guard.admit(values.iter().map(|(_, value)| value.len() as u64 + 64).sum())?;
        // Each author stands alone: no write needs another to make sense.
        for (key, value) in values {
            self.authors.insert(key, value).map_err(backend)?;
        }
        Ok(())
    }

    pub(super) fn authors(&self, doc: &DocId) -> Result<Vec<(u64, Author)>, StoreError> {
        let prefix = prefix(doc);
        self.authors
            .scan_prefix(&prefix)
            .map(|entry| {
                let (key, value) = entry.map_err(backend)?;
                let client = be_u64(&key[prefix.len()..])?;
                let author = serde_json::from_slice(&value)
                    .map_err(|e| StoreError::Corrupt(format!("an author of {doc}: {e}")))?;
                Ok((client, author))
            })
            .collect()
    }

    /// The keys of `doc`'s versions and of its authors, for a deletion to remove: the versions'
    /// from both version trees (a crash may have left a state whose record was never written).
    pub(super) fn history_keys(&self, doc: &DocId) -> Result<(Vec<sled::IVec>, Vec<sled::IVec>), StoreError> {
        let keys = |tree: &sled::Tree| tree.scan_prefix(prefix(doc)).keys().collect::<Result<Vec<_>, _>>().map_err(backend);
        let mut versions = keys(&self.versions)?;
        versions.extend(keys(&self.version_states)?);
        versions.sort_unstable();
        versions.dedup();
        Ok((versions, keys(&self.authors)?))
    }
}

#[cfg(test)]
mod tests {
    use super::super::SledStore;
    use crate::store::history::{Author, VersionKind, VersionRecord};
    use crate::store::Store;
    use quire_model::DocId;

    fn version(id: u64, name: Option<&str>) -> VersionRecord {
        VersionRecord {
            id,
            created_ms: id,
            name: name.map(Into::into),
            kind: VersionKind::Auto,
            restored_from: None,
            editors: vec![7],
            deletions: Vec::new(),
            size_bytes: 3,
            pos: None,
        }
    }

    #[tokio::test]
    async fn versions_are_listed_newest_first_and_go_with_their_document() {
        let dir = std::env::temp_dir().join(format!("quire-sled-history-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = SledStore::open(&dir, 1 << 20).unwrap();
        let (a, ab) = (DocId::parse("a").unwrap(), DocId::parse("a.b").unwrap());
        for id in [10, 30, 20] {
            assert!(store.put_version(&a, &version(id, None), &[id as u8]).await.unwrap());
        }
        assert!(!store.put_version(&a, &version(20, Some("again")), b"x").await.unwrap(), "an id is taken once");
        store.put_version(&ab, &version(99, None), b"other").await.unwrap();
        let page = store.versions(&a, 0, 2).await.unwrap();
        assert_eq!((page.versions.iter().map(|v| v.id).collect::<Vec<_>>(), page.total), (vec![30, 20], 3));
        assert_eq!(store.versions(&a, 2, 5).await.unwrap().versions[0].id, 10);
        assert_eq!(store.version_state(&a, 20).await.unwrap(), Some(vec![20]));

        assert!(store.update_version(&a, &version(20, Some("draft"))).await.unwrap());
        assert!(!store.update_version(&a, &version(21, Some("none"))).await.unwrap());
        assert_eq!(store.versions(&a, 1, 1).await.unwrap().versions[0].name.as_deref(), Some("draft"));
        store.remove_versions(&a, &[10, 11]).await.unwrap();
        assert_eq!(store.versions(&a, 0, 10).await.unwrap().total, 2);
        assert_eq!(store.version_state(&a, 10).await.unwrap(), None);

        let ada = Author::Person { name: "Ada".into(), color: None };
        store.put_authors(&a, &[(5, ada.clone()), (6, Author::Imported)]).await.unwrap();
        store.put_authors(&ab, &[(5, Author::Imported)]).await.unwrap();
        assert_eq!(store.authors(&a).await.unwrap(), vec![(5, ada), (6, Author::Imported)]);

        // Deleting a document removes its history, and only its.
        store.append(&a, b"x").await.unwrap();
        store.delete(&a, &[]).await.unwrap();
        assert_eq!(store.versions(&a, 0, 10).await.unwrap().total, 0);
        assert_eq!(store.version_state(&a, 30).await.unwrap(), None);
        assert!(store.authors(&a).await.unwrap().is_empty());
        assert_eq!(store.versions(&ab, 0, 10).await.unwrap().total, 1);
        assert_eq!(store.authors(&ab).await.unwrap().len(), 1);
        drop(store);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
