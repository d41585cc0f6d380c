//! Durable per-document storage: an append-only log of updates, compacted into snapshots.
//!
//! A backend is a module implementing [`Store`]: [`sled`](self::sled) is the default,
//! [`cluster`] (Redis streams + PostgreSQL) serves many processes at once, [`memory`] serves
//! tests. A backend other processes write too also feeds each document task what they did
//! ([`Store::follow`]). Durability is explicit: `append` makes an update visible to later
//! loads at once, `flush` makes everything appended so far survive a crash. The
//! [`flusher`] owns that barrier as a group commit.

pub mod cluster;
pub mod flusher;
pub mod history;
pub mod memory;
pub mod sled;

use quire_model::DocId;

use history::{Author, VersionPage, VersionRecord};

/// Position of an update in a document's log. Increases with every append, across restarts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Seq(pub u128);

impl Seq {
    /// The part of a sequence number sled keeps (its ids are 64-bit).
    pub fn low_u64(self) -> u64 {
        self.0 as u64
    }
}

/// A document as stored: its snapshot (if compacted) then the later updates, in order.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Stored {
    /// v1 updates to apply in order; the snapshot, if any, comes first.
    pub updates: Vec<Vec<u8>>,
    /// The newest sequence number the state covers.
    pub last_seq: Option<Seq>,
    /// How many of `updates` are log entries (not the snapshot): decides when to compact next.
    pub log_entries: u64,
    /// Bytes in those log entries.
    pub log_bytes: u64,
}

/// What the documents list shows about a document, kept beside its content. Written by the
/// document task (debounced), so it can lag the content by a moment; never the truth about
/// content, only about when and how big.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DocMeta {
    pub title: String,
    /// Milliseconds since the Unix epoch.
    pub created_ms: u64,
    pub updated_ms: u64,
    /// Bytes the document takes in the store (snapshot plus log).
    pub size_bytes: u64,
}

/// One page of the documents list, newest change first (ties by id), and how many there are.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Page {
    pub docs: Vec<(DocId, DocMeta)>,
    pub total: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the store at {}", path.display())]
    Open {
        path: std::path::PathBuf,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The backend failed; its own error is kept as the source.
    #[error("storage backend failed")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// Stored bytes that their decoder refused; its error is kept as the source.
    #[error("stored data is corrupt: {what}")]
    Undecodable {
        what: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The disk is nearly full: the write was refused before it reached the backend.
    #[error("the disk holding the store has {available} bytes free, under the {reserve} bytes kept in reserve")]
    DiskFull { available: u64, reserve: u64 },
    #[error("cannot read the free space of the store's disk")]
    FreeSpace(#[source] std::io::Error),
    #[error("injected failure: {0}")]
    Injected(&'static str),
}

/// The union of two state vectors (v1): what a stale copy may hold from either. An empty or
/// unreadable side counts as nothing (an older store kept no state with its deletions).
pub fn merge_states(a: &[u8], b: &[u8]) -> Vec<u8> {
    use yrs::updates::decoder::Decode;
    use yrs::updates::encoder::Encode;
    let read = |bytes: &[u8]| yrs::StateVector::decode_v1(bytes).unwrap_or_default();
    let mut merged = read(a);
    merged.merge(read(b));
    merged.encode_v1()
}

/// What other quire processes did to a document this one holds (a cluster store's feed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Remote {
    /// What they appended to its log after what this process had, in order, up to `upto`
    /// (entries this process appended itself are left out: its task has them).
    Log { changes: Vec<Change>, upto: Seq },
    /// A presence (awareness) update of `process`'s clients.
    Presence { process: String, update: Vec<u8> },
    /// A process that just started following the document asks who is here.
    PresenceQuery,
    /// That process is gone (it stopped or crashed): its clients' presence goes with it.
    ProcessGone(String),
    /// This process fell behind what the store still holds of the log: load it again.
    Reload,
}

/// One entry of a document's log, as another process wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// An update (v1) it accepted.
    Update(Vec<u8>),
    /// The document was deleted.
    Deleted,
    /// A share link of the document was removed: close who came in with it.
    Revoked(String),
}

/// Whether the store can serve now, for `/healthz` and for admitting connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    Ok,
    /// Edits go on, something behind them does not (e.g. folding into the database): say so,
    /// and keep serving.
    Degraded(&'static str),
    /// Edits cannot be kept or shared: refuse new connections until it is back.
    Down(&'static str),
}

/// Durable per-document storage. Async, because a store may be reached over the network
/// (PostgreSQL, Redis); a backend that waits for a local disk does that on the blocking pool.
#[async_trait::async_trait]
pub trait Store: Send + Sync + 'static {
    /// Everything stored for `doc`, or `None` if it was never written.
    async fn load(&self, doc: &DocId) -> Result<Option<Stored>, StoreError>;
    /// Appends one v1 update to the document's log. Visible to `load` at once; durable after
    /// the next `flush`. Quick: it is awaited for every edit.
    async fn append(&self, doc: &DocId, update: &[u8]) -> Result<Seq, StoreError>;
    /// Replaces the log up to and including `upto` by `snapshot`, atomically: a crash leaves
    /// either the old log or the new snapshot, never neither.
    async fn compact(&self, doc: &DocId, snapshot: &[u8], upto: Seq) -> Result<(), StoreError>;
    /// Removes the document entirely, content, metadata and history, and records that it was
    /// deleted, atomically. `state` is the state vector (v1) of what was deleted: kept, so that copies
    /// of it can be told apart from a document created later under the same id.
    async fn delete(&self, doc: &DocId, state: &[u8]) -> Result<(), StoreError>;
    /// Whether anything is stored for `doc` (content or metadata).
    async fn exists(&self, doc: &DocId) -> Result<bool, StoreError>;
    /// Whether `doc` was deleted (and not created again since).
    async fn deleted(&self, doc: &DocId) -> Result<bool, StoreError>;
    /// Forgets that `doc` was deleted: it is being created again. What the deleted documents of
    /// this id held becomes its [`stale`](Self::stale) state, and any history left under the id
    /// goes (a version a process was still writing while another deleted the document).
    async fn undelete(&self, doc: &DocId) -> Result<(), StoreError>;
    /// The state vector (v1) of every earlier document under this id, deleted since: what a
    /// stale copy holds and the live document must never take.
    async fn stale(&self, doc: &DocId) -> Result<Option<Vec<u8>>, StoreError>;
    /// Records the document's metadata (durable with the next `flush`).
    async fn put_meta(&self, doc: &DocId, meta: &DocMeta) -> Result<(), StoreError>;
    /// The document's metadata, if it has any.
    async fn meta(&self, doc: &DocId) -> Result<Option<DocMeta>, StoreError>;
    /// One page of the documents that have metadata, newest change first: `limit` of them
    /// after skipping `offset`. Reads only that page, not the whole list.
    async fn list(&self, offset: usize, limit: usize) -> Result<Page, StoreError>;
    /// Records a share link of `doc` (`record`: the access layer's own encoding).
    async fn put_link(&self, doc: &DocId, link: &str, record: &[u8]) -> Result<(), StoreError>;
    /// Removes a share link; whether it was there.
    async fn remove_link(&self, doc: &DocId, link: &str) -> Result<bool, StoreError>;
    /// Every share link: (document, link id, record).
    async fn links(&self) -> Result<Vec<(DocId, String, Vec<u8>)>, StoreError>;
    /// The durability barrier: everything appended before this call survives a crash after it
    /// returns.
    async fn flush(&self) -> Result<(), StoreError>;
    /// Waits for the store's own work in flight (jobs whose callers gave up included): after
    /// it, nothing of the server holds the store. Called once, when the server has stopped.
    async fn close(&self) {}

    /// Records a version of `doc`: its record and its packed state (see [`history::pack`]),
    /// together. False, writing nothing, if the document has a version with this id already.
    async fn put_version(&self, doc: &DocId, record: &VersionRecord, state: &[u8]) -> Result<bool, StoreError>;
    /// Rewrites a version's record (its state stays); false if there is no such version.
    async fn update_version(&self, doc: &DocId, record: &VersionRecord) -> Result<bool, StoreError>;
    /// Removes versions, records and states; ids that are not there are skipped.
    async fn remove_versions(&self, doc: &DocId, ids: &[u64]) -> Result<(), StoreError>;
    /// One page of `doc`'s version records, newest first: `limit` after skipping `offset`.
    async fn versions(&self, doc: &DocId, offset: usize, limit: usize) -> Result<VersionPage, StoreError>;
    /// One version's packed state.
    async fn version_state(&self, doc: &DocId, id: u64) -> Result<Option<Vec<u8>>, StoreError>;
    /// Records who wrote under Yjs client ids of `doc` (a later record of a client replaces
    /// the earlier one: people rename themselves).
    async fn put_authors(&self, doc: &DocId, authors: &[(u64, Author)]) -> Result<(), StoreError>;
    /// Everyone recorded as writing in `doc`, by client id.
    async fn authors(&self, doc: &DocId) -> Result<Vec<(u64, Author)>, StoreError>;
    /// Whether this process may take `doc`'s automatic version of the state stored up to
    /// `pos`. Several processes of a cluster may hold a document and each would take it: the
    /// first to claim that state does (see the cluster store).
    async fn claim_version(&self, _doc: &DocId, _pos: Option<Seq>) -> Result<bool, StoreError> {
        Ok(true)
    }

    /// Follows what other processes do to `doc`, from just after `after` in its log; dropping
    /// the receiver stops it. `None` for a store no other process writes.
    fn follow(&self, _doc: &DocId, _after: Option<Seq>) -> Option<tokio::sync::mpsc::Receiver<Remote>> {
        None
    }

    /// Shares a presence update of this process's clients with the other processes. Presence
    /// is about now: it is sent on, never stored, and may be lost (clients renew it).
    fn publish_presence(&self, _doc: &DocId, _update: Vec<u8>) {}

    /// Tells every process that holds `doc` that share link `link` was removed, reliably and
    /// in order with its edits.
    async fn announce_revoked(&self, _doc: &DocId, _link: &str) -> Result<(), StoreError> {
        Ok(())
    }

    /// One share link's record, if it exists.
    async fn link(&self, doc: &DocId, link: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.links().await?.into_iter().find(|(d, id, _)| d == doc && id == link).map(|(_, _, record)| record))
    }

    /// The share links of one document: (link id, record).
    async fn links_of(&self, doc: &DocId) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        Ok(self.links().await?.into_iter().filter(|(d, _, _)| d == doc).map(|(_, id, record)| (id, record)).collect())
    }

    /// Whether other processes write this store too (then caches of it must be checked).
    fn is_shared(&self) -> bool {
        false
    }

    fn health(&self) -> Health {
        Health::Ok
    }

    /// Adds the backend's own metrics to the server's.
    fn register_metrics(&self, _registry: &mut prometheus_client::registry::Registry) {}
}
