//! A document's content in sled (layout 4): its log and its snapshot, in three trees.
//!
//! - `docs`: `{doc}\0\x01{seq}` → one v1 update of up to [`INLINE_BYTES`], `seq` a big-endian
//!   u64 from sled's `generate_id` (monotonic across restarts, also after a crash), so that a
//!   prefix scan reads the log in order;
//! - `big_log`: the same keys, for updates over [`INLINE_BYTES`] (a paste, an import);
//! - `snapshots`: `{doc}` → `upto` (u64 big-endian) followed by a v1 update of everything up to
//!   and including log entry `upto`.
//!
//! Big values live apart because sled rewrites a whole leaf, its values included, when it
//! splits or merges one on a write's path: with megabyte snapshots beside the small appends of
//! typing, a keystroke's append could write megabytes on a runtime thread (the hostile
//! benchmark caught it under an import and a flood).
//!
//! A compaction writes the snapshot, then removes the entries it covers, as plain writes: no
//! batch, because once a batch has run sled takes one lock on every operation, and a batch
//! waits for every write in flight, so every document's typing waited behind a big one. A
//! compaction cut short leaves entries the snapshot covers, which [`Inner::load`] skips and
//! the next compaction removes.

use quire_model::DocId;

use super::{backend, be_u64, prefix, Inner};
use crate::state::INLINE_BYTES;
use crate::store::{Seq, StoreError, Stored};

/// The tag after `{doc}\0` of a log entry (layout 3 also had `\0` there, for the snapshot).
pub(super) const LOG: u8 = 1;

pub(super) fn log_key(doc: &DocId, seq: Seq) -> Vec<u8> {
    let mut key = prefix(doc);
    key.push(LOG);
    key.extend_from_slice(&seq.low_u64().to_be_bytes());
    key
}

/// Whether a log entry of `len` bytes goes to `big_log`.
pub(super) fn is_big(len: usize) -> bool {
    len > INLINE_BYTES
}

impl Inner {
    pub(super) fn load(&self, doc: &DocId) -> Result<Option<Stored>, StoreError> {
        let mut stored = Stored::default();
        let snapshot = self.snapshots.get(doc.as_str().as_bytes()).map_err(backend)?;
        let upto = match &snapshot {
            Some(value) => {
                let upto = be_u64(value.get(..8).ok_or_else(|| StoreError::Corrupt(format!("the snapshot of {doc} is cut short")))?)?;
                stored.last_seq = Some(Seq(u128::from(upto)));
                stored.updates.push(value[8..].to_vec());
                Some(upto)
            }
            None => None,
        };
        let prefix = prefix(doc);
        let mut log = Vec::new();
        for tree in [&self.docs, &self.big_log] {
            for entry in tree.scan_prefix(&prefix) {
                let (key, value) = entry.map_err(backend)?;
                if key.get(prefix.len()) != Some(&LOG) {
                    return Err(StoreError::Corrupt(format!("unexpected key for document {doc}")));
                }
                let seq = be_u64(&key[prefix.len() + 1..])?;
                if upto.is_none_or(|upto| seq > upto) {
                    log.push((seq, value));
                }
            }
        }
        if snapshot.is_none() && log.is_empty() {
            return Ok(None);
        }
        log.sort_unstable_by_key(|(seq, _)| *seq);
        for (seq, value) in log {
            stored.last_seq = Some(Seq(u128::from(seq)));
            stored.log_entries += 1;
            stored.log_bytes += value.len() as u64;
            stored.updates.push(value.to_vec());
        }
        Ok(Some(stored))
    }

    pub(super) fn append(&self, doc: &DocId, update: &[u8]) -> Result<Seq, StoreError> {
        self.guard.admit(update.len() as u64)?;
        let seq = Seq(u128::from(self.db.generate_id().map_err(backend)?));
        let tree = if is_big(update.len()) { &self.big_log } else { &self.docs };
        tree.insert(log_key(doc, seq), update).map_err(backend)?;
        Ok(seq)
    }

    pub(super) fn compact(&self, doc: &DocId, snapshot: &[u8], upto: Seq) -> Result<(), StoreError> {
        self.guard.admit(snapshot.len() as u64)?;
        let mut value = Vec::with_capacity(8 + snapshot.len());
        value.extend_from_slice(&upto.low_u64().to_be_bytes());
        value.extend_from_slice(snapshot);
        self.snapshots.insert(doc.as_str().as_bytes(), value).map_err(backend)?;
        for tree in [&self.docs, &self.big_log] {
            for key in tree.range(log_key(doc, Seq(0))..=log_key(doc, upto)).keys() {
                tree.remove(key.map_err(backend)?).map_err(backend)?;
            }
        }
        Ok(())
    }

    pub(super) fn exists(&self, doc: &DocId) -> Result<bool, StoreError> {
        let id = doc.as_str().as_bytes();
        if self.metas.contains_key(id).map_err(backend)? || self.snapshots.contains_key(id).map_err(backend)? {
            return Ok(true);
        }
        for tree in [&self.docs, &self.big_log] {
            if tree.scan_prefix(prefix(doc)).next().transpose().map_err(backend)?.is_some() {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Every key of `doc`'s log, in both trees, for a deletion to remove.
    pub(super) fn log_keys(&self, doc: &DocId) -> Result<(Vec<sled::IVec>, Vec<sled::IVec>), StoreError> {
        let keys = |tree: &sled::Tree| tree.scan_prefix(prefix(doc)).keys().collect::<Result<Vec<_>, _>>().map_err(backend);
        Ok((keys(&self.docs)?, keys(&self.big_log)?))
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::tempdir;
    use super::super::SledStore;
    use super::*;
    use crate::store::Store;

    fn id(s: &str) -> DocId {
        DocId::parse(s).unwrap()
    }

    #[tokio::test]
    async fn big_entries_are_kept_apart_and_read_back_in_order() {
        let dir = tempdir();
        let store = SledStore::open(&dir, 1 << 20).unwrap();
        let doc = id("mixed");
        let big = vec![7u8; INLINE_BYTES + 1];
        let s1 = store.append(&doc, b"small").await.unwrap();
        let s2 = store.append(&doc, &big).await.unwrap();
        let s3 = store.append(&doc, b"after").await.unwrap();
        assert_eq!(store.inner.big_log.len(), 1, "the big entry is apart");
        assert_eq!(store.inner.docs.len(), 2);
        let loaded = store.load(&doc).await.unwrap().unwrap();
        assert_eq!(loaded.updates, vec![b"small".to_vec(), big.clone(), b"after".to_vec()]);
        assert_eq!((loaded.last_seq, loaded.log_entries), (Some(s3), 3));

        store.compact(&doc, b"snap", s2).await.unwrap();
        assert!(store.inner.big_log.is_empty(), "folded entries leave both trees");
        let loaded = store.load(&doc).await.unwrap().unwrap();
        assert_eq!(loaded.updates, vec![b"snap".to_vec(), b"after".to_vec()]);
        assert_eq!((loaded.last_seq, loaded.log_entries), (Some(s3), 1));
        assert!(s1 < s2);
        drop(store);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[tokio::test]
    async fn a_compaction_cut_short_loads_as_if_it_had_finished() {
        // The snapshot is written before the entries it covers are removed: a crash between
        // leaves them, and they must not be applied twice or counted as log.
        let dir = tempdir();
        let store = SledStore::open(&dir, 1 << 20).unwrap();
        let doc = id("cut");
        let s1 = store.append(&doc, b"one").await.unwrap();
        let s2 = store.append(&doc, b"two").await.unwrap();
        let mut snapshot = s1.low_u64().to_be_bytes().to_vec();
        snapshot.extend_from_slice(b"snap");
        store.inner.snapshots.insert(doc.as_str(), snapshot).unwrap();
        let loaded = store.load(&doc).await.unwrap().unwrap();
        assert_eq!(loaded.updates, vec![b"snap".to_vec(), b"two".to_vec()]);
        assert_eq!((loaded.last_seq, loaded.log_entries), (Some(s2), 1));
        // The next compaction removes what was left.
        store.compact(&doc, b"snap2", s2).await.unwrap();
        assert!(store.inner.docs.is_empty());
        drop(store);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
