//! The on-disk layout's version, and the migrations that bring a store written by an earlier
//! quire up to it. A store written by a later quire (a newer layout) is refused, not guessed at.
//!
//! - Layout 1 (quire 0.1, no version recorded): trees `docs`, `meta`, `deleted` (a deletion's
//!   time, 8 bytes).
//! - Layout 2: the version in the default tree; `by_updated` (the documents list's order, so a
//!   page is read without the whole list) and a document count; a deletion also keeps the state
//!   vector of what was deleted, and tree `stale` holds, for a document created again, the
//!   state of its deleted predecessors; tree `links` holds share links. Layout 1 deletions carry
//!   no state: their stale copies cannot be told apart (the one thing a migration cannot
//!   recover).
//! - Layout 3: version history. Trees `versions` (records), `version_states` (the states,
//!   apart so that listing versions never reads one) and `authors` (who wrote under which Yjs
//!   client id). They start empty: a document of an older store gets its first version when it
//!   is next opened. The version number is what matters here: an older quire, which knows
//!   nothing of history, refuses the store instead of deleting documents and leaving their
//!   versions behind for a later document of the same id.
//! - Layout 4: big values apart from small ones (see `content`). A document's snapshot moves
//!   from `docs` (key `{doc}\0\0`) to tree `snapshots` (key `{doc}`), and log entries over
//!   64 KiB to tree `big_log` (same keys). Compactions, metadata and versions are then written
//!   without batches or transactions, which an older quire, expecting every snapshot in
//!   `docs`, would misread: it refuses the store by its version.

use super::open::OpenError;
use super::{content, list};

/// The layout this quire writes.
pub const CURRENT: u64 = 4;
/// Where the version is kept (default tree).
const VERSION_KEY: &[u8] = b"quire-layout";
/// Where the number of documents with metadata is kept (default tree).
pub const COUNT_KEY: &[u8] = b"quire-doc-count";

/// The trees of layout 4.
pub struct Trees {
    pub docs: sled::Tree,
    pub metas: sled::Tree,
    pub by_updated: sled::Tree,
    pub deleted: sled::Tree,
    pub stale: sled::Tree,
    pub links: sled::Tree,
    pub versions: sled::Tree,
    pub version_states: sled::Tree,
    pub authors: sled::Tree,
    pub snapshots: sled::Tree,
    pub big_log: sled::Tree,
}

impl Trees {
    pub fn open(db: &sled::Db) -> Result<Trees, OpenError> {
        let tree = |name: &str| db.open_tree(name).map_err(OpenError::Sled);
        Ok(Trees {
            docs: tree("docs")?,
            metas: tree("meta")?,
            by_updated: tree("by_updated")?,
            deleted: tree("deleted")?,
            stale: tree("stale")?,
            // New in layout 2 as well; a tree that starts empty needs no migration.
            links: tree("links")?,
            // Layout 3, empty at first too.
            versions: tree("versions")?,
            version_states: tree("version_states")?,
            authors: tree("authors")?,
            // Layout 4, filled by its migration.
            snapshots: tree("snapshots")?,
            big_log: tree("big_log")?,
        })
    }
}

/// The key of a document in `by_updated`: newest first (the time inverted, big-endian), then
/// by id.
pub fn order_key(updated_ms: u64, doc: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(8 + doc.len());
    key.extend_from_slice(&(u64::MAX - updated_ms).to_be_bytes());
    key.extend_from_slice(doc.as_bytes());
    key
}

/// Brings the store in `db` to [`CURRENT`], writing the version last (a crash half-way leaves
/// the old version, and the migration runs again: every step can be repeated).
pub fn migrate(db: &sled::Db, trees: &Trees) -> Result<(), OpenError> {
    let version = match db.get(VERSION_KEY).map_err(OpenError::Sled)? {
        None => 1,
        Some(bytes) => u64::from_be_bytes(bytes.as_ref().try_into().map_err(|_| OpenError::BadLayout)?),
    };
    if version > CURRENT {
        return Err(OpenError::NewerLayout { found: version, supported: CURRENT });
    }
    if version == CURRENT {
        return Ok(());
    }
    let fresh = trees.docs.is_empty() && trees.metas.is_empty() && trees.deleted.is_empty();
    if !fresh {
        tracing::info!(from = version, to = CURRENT, "migrating the store's layout");
    }
    if version < 2 {
        list::rebuild(db, &trees.metas, &trees.by_updated).map_err(OpenError::ListIndex)?;
        // On disk before the version says it is done.
        db.flush().map_err(OpenError::Sled)?;
    }
    // 2 → 3: the history trees, created empty when opened; nothing to move.
    if version < 4 {
        migrate_3_to_4(trees)?;
    }
    db.insert(VERSION_KEY, &CURRENT.to_be_bytes()).map_err(OpenError::Sled)?;
    db.flush().map_err(OpenError::Sled)?;
    Ok(())
}

/// Snapshots to `snapshots`, big log entries to `big_log`. Each is written in its new place
/// before it leaves the old one, so a crash half-way loses nothing and the step runs again.
fn migrate_3_to_4(trees: &Trees) -> Result<(), OpenError> {
    const SNAPSHOT: u8 = 0;
    for entry in trees.docs.iter() {
        let (key, value) = entry.map_err(OpenError::Sled)?;
        // Document ids hold no NUL: the first one ends the id.
        let id_end = key.iter().position(|&b| b == 0).ok_or(OpenError::BadLayout)?;
        match key.get(id_end + 1) {
            Some(&SNAPSHOT) => {
                trees.snapshots.insert(&key[..id_end], value).map_err(OpenError::Sled)?;
            }
            Some(&content::LOG) if content::is_big(value.len()) => {
                trees.big_log.insert(&key, value).map_err(OpenError::Sled)?;
            }
            Some(&content::LOG) => continue,
            _ => return Err(OpenError::BadLayout),
        }
        trees.docs.remove(&key).map_err(OpenError::Sled)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::tests::tempdir;
    use super::super::SledStore;
    use super::*;
    use crate::store::Store;
    use quire_model::DocId;

    #[tokio::test]
    async fn layout_3_content_moves_to_where_layout_4_keeps_it() {
        // Layout 3's keys, written as quire at 4c0d827 wrote them: a snapshot (`{doc}\0\0`) and
        // log entries, one of them big, all in `docs`. (A whole store written by that quire is
        // the black-box test's fixture; a big entry is rarely left by a clean stop.)
        let dir = tempdir();
        let big = vec![9u8; crate::state::INLINE_BYTES + 1];
        {
            let db = super::super::open::sled_db(&dir, 1 << 20).unwrap();
            let docs = db.open_tree("docs").unwrap();
            let mut snapshot = 5u64.to_be_bytes().to_vec();
            snapshot.extend_from_slice(b"snap");
            docs.insert(b"d\0\0", snapshot).unwrap();
            docs.insert([&b"d\0\x01"[..], &6u64.to_be_bytes()].concat(), big.clone()).unwrap();
            docs.insert([&b"d\0\x01"[..], &7u64.to_be_bytes()].concat(), &b"small"[..]).unwrap();
            db.insert(VERSION_KEY, &3u64.to_be_bytes()).unwrap();
            db.flush().unwrap();
            std::fs::write(dir.join(super::super::open::CLEAN_MARKER), b"").unwrap();
        }
        let store = SledStore::open(&dir, 1 << 20).unwrap();
        let loaded = store.load(&DocId::parse("d").unwrap()).await.unwrap().unwrap();
        assert_eq!(loaded.updates, vec![b"snap".to_vec(), big, b"small".to_vec()]);
        assert_eq!(loaded.log_entries, 2);
        assert_eq!((store.inner.snapshots.len(), store.inner.big_log.len(), store.inner.docs.len()), (1, 1, 1));
        drop(store);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
