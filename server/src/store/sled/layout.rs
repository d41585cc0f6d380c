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

use super::open::OpenError;

/// The layout this quire writes.
pub const CURRENT: u64 = 3;
/// Where the version is kept (default tree).
const VERSION_KEY: &[u8] = b"quire-layout";
/// Where the number of documents with metadata is kept (default tree).
pub const COUNT_KEY: &[u8] = b"quire-doc-count";

/// The trees of layout 3.
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
        migrate_1_to_2(db, trees)?;
    }
    // 2 → 3: the history trees, created empty when opened; nothing to move.
    db.insert(VERSION_KEY, &CURRENT.to_be_bytes()).map_err(OpenError::Sled)?;
    db.flush().map_err(OpenError::Sled)?;
    Ok(())
}

/// The list's order and the count, from the metadata.
fn migrate_1_to_2(db: &sled::Db, trees: &Trees) -> Result<(), OpenError> {
    trees.by_updated.clear().map_err(OpenError::Sled)?;
    let mut count: u64 = 0;
    for entry in trees.metas.iter() {
        let (key, json) = entry.map_err(OpenError::Sled)?;
        let doc = std::str::from_utf8(&key).map_err(|_| OpenError::BadLayout)?;
        let meta: crate::store::DocMeta = serde_json::from_slice(&json).map_err(|_| OpenError::BadLayout)?;
        trees.by_updated.insert(order_key(meta.updated_ms, doc), &[]).map_err(OpenError::Sled)?;
        count += 1;
    }
    db.insert(COUNT_KEY, &count.to_be_bytes()).map_err(OpenError::Sled)?;
    // On disk before the version says it is done.
    db.flush().map_err(OpenError::Sled)?;
    Ok(())
}
