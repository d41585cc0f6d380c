//! One document's side of the store: loading, appending, compacting, and its metadata.
//!
//! Owned by the document task, so none of it needs a lock. The rules it keeps:
//! - a document is read in full (snapshot + log) before anything is written for it;
//! - every applied update is appended before it is fanned out, then flushed by the group
//!   commit; [`DocStorage::saved`] is the ticket that says when everything so far is on disk;
//! - a write the store refuses (a full disk) puts the document in the *unsaved* state: the
//!   edits since are only in memory, and the next successful [`DocStorage::compact`] writes the
//!   whole state; the document task refuses edits meanwhile and retries on a timer;
//! - the log is folded into a snapshot once it outgrows the snapshot (loading stays
//!   proportional to the document's size, not its history), encoded in place when the
//!   document is small and on the blocking pool otherwise;
//! - in a cluster, the store's feed brings what other processes appended: the position it
//!   reached ([`DocStorage::seen`]) is what a snapshot covers, never a position of our own
//!   appends (entries of others before it may not be applied here yet);
//! - metadata (title, times, size) follows the content: written at once after a quiet spell,
//!   then at most every [`META_INTERVAL`] while edits flow, and once more after the last of
//!   them ([`DocStorage::meta_due`], which the document task waits for), whether or not anyone
//!   is still connected.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use quire_model::{protocol, schema, DocId};
use tokio::time::Instant;
use yrs::updates::decoder::Decode;
use yrs::updates::encoder::Encode;
use yrs::{Doc, Map, ReadTxn, StateVector, Transact, Update};

use super::context::DocContext;
use crate::error::{DocError, LoadError};
use crate::state::INLINE_BYTES;
use crate::store::flusher::Ticket;
use crate::store::{DocMeta, Remote, Seq, StoreError, Stored};

/// What other processes do to the document, when the store is shared with them.
pub type Feed = Option<tokio::sync::mpsc::Receiver<Remote>>;

/// After a compaction failed (a cluster's database is unreachable), how long before the next
/// try: the log keeps the edits meanwhile, and each try encodes the whole document.
const COMPACT_RETRY: Duration = Duration::from_secs(5);
/// How stale the documents list may be while someone is typing.
const META_INTERVAL: Duration = Duration::from_secs(2);
/// Longest title kept in the metadata (and so in the documents list), in bytes: a title is a
/// line, and the list must stay cheap to read whatever a client wrote into the document.
pub const MAX_TITLE_BYTES: usize = 1024;

/// What the store holds for this document beyond its snapshot.
#[derive(Default)]
struct LogState {
    /// The position in the log that this document's state covers (a snapshot written now
    /// replaces the log up to here).
    last_seq: Option<Seq>,
    entries: u64,
    bytes: u64,
    /// Size of the stored snapshot (0 if none).
    snapshot_bytes: u64,
    /// A write failed: edits since are only in memory, and the next compaction must write
    /// the whole state.
    unsaved: bool,
}

impl From<&Stored> for LogState {
    fn from(stored: &Stored) -> Self {
        let has_snapshot = stored.updates.len() as u64 > stored.log_entries;
        LogState {
            last_seq: stored.last_seq,
            entries: stored.log_entries,
            bytes: stored.log_bytes,
            snapshot_bytes: if has_snapshot { stored.updates[0].len() as u64 } else { 0 },
            unsaved: false,
        }
    }
}

pub struct DocStorage {
    id: DocId,
    log: LogState,
    /// The flush ticket of the last write that holds content.
    written: Ticket,
    meta: Option<DocMeta>,
    /// Set when an edit changed what the metadata says; cleared when it is written.
    meta_dirty: bool,
    meta_written: Option<Instant>,
    /// Deleted through the API and not created again since.
    deleted: bool,
    /// What the deleted documents that had this id before held: a copy holding any of it is a
    /// copy of one of them, not of this one.
    stale: StateVector,
    /// Other processes append to the log too (the store's feed brings their entries).
    shared: bool,
    /// When the last compaction failed, if the one after has not succeeded yet.
    compact_failed: Option<Instant>,
}

impl DocStorage {
    /// Reads the stored state and metadata of `id` and applies the state to a fresh `Doc`, on
    /// the blocking pool (it takes time in proportion to the document).
    /// In a cluster, also the feed of what other processes append after what was loaded.
    pub async fn load(context: &DocContext, id: &DocId) -> Result<(Doc, DocStorage, Feed), LoadError> {
        let store = &context.store;
        // Metadata is only about the content: damaged metadata must not make the content
        // unreachable; it is rewritten on the next edit.
        let meta = store.meta(id).await.unwrap_or_else(|error| {
            tracing::warn!(doc = %id, %error, "ignoring unreadable metadata");
            None
        });
        let stored = store.load(id).await?.unwrap_or_default();
        let deleted = store.deleted(id).await?;
        let stale = store.stale(id).await?;
        let feed = store.follow(id, stored.last_seq);
        let (doc, stored) = context
            .shared
            .off_runtime(move || Ok::<_, LoadError>((rebuild(&stored)?, stored)))
            .await??;
        let storage = DocStorage {
            id: id.clone(),
            log: LogState::from(&stored),
            written: Ticket::default(),
            meta,
            meta_dirty: false,
            meta_written: None,
            deleted,
            stale: read_state(stale.as_deref()),
            shared: feed.is_some(),
            compact_failed: None,
        };
        Ok((doc, storage, feed))
    }

    /// Whether the document was ever written (content or metadata).
    pub fn exists(&self) -> bool {
        self.meta.is_some() || self.log.entries > 0 || self.log.snapshot_bytes > 0
    }

    /// Whether the document was deleted (and not created again since).
    pub fn is_deleted(&self) -> bool {
        self.deleted
    }

    /// Whether some edit is only in memory because the store refused a write.
    pub fn is_unsaved(&self) -> bool {
        self.log.unsaved
    }

    /// The ticket to wait for before saying that everything applied so far is saved; an error
    /// while some edit is only in memory.
    pub fn saved(&self) -> Result<Ticket, DocError> {
        if self.log.unsaved {
            Err(DocError::NotSaved)
        } else {
            Ok(self.written)
        }
    }

    /// Where in the log the state is: what a version of the stored state records, to be told
    /// from one of a later state.
    pub fn last_seq(&self) -> Option<Seq> {
        self.log.last_seq
    }

    /// Bytes the document takes in the store (snapshot plus log): what its whole-document
    /// operations cost.
    pub fn size_bytes(&self) -> u64 {
        self.log.snapshot_bytes + self.log.bytes
    }

    /// The id is being created again: it is no longer a deleted document, and what the
    /// deleted one held is stale from now on.
    pub async fn undelete(&mut self, context: &DocContext) -> Result<(), StoreError> {
        if self.deleted {
            context.store.undelete(&self.id).await?;
            self.written = context.flusher.mark_dirty();
            self.deleted = false;
            self.stale = read_state(context.store.stale(&self.id).await?.as_deref());
        }
        Ok(())
    }

    /// Whether a peer at state `sv` holds anything of a deleted document that had this id.
    pub fn is_stale_state(&self, sv: &StateVector) -> bool {
        sv.iter().any(|(client, &clock)| clock > 0 && self.stale.get(client) > 0)
    }

    /// Whether `update` brings items of a deleted document that had this id.
    pub fn is_stale_update(&self, update: &Update) -> bool {
        update
            .insertions(true)
            .iter()
            .any(|(client, ranges)| ranges.iter().any(|range| range.start < self.stale.get(client)))
    }

    pub fn meta(&self) -> Option<&DocMeta> {
        self.meta.as_ref()
    }

    /// Appends an applied update and asks for a flush. False if the store refused it: the
    /// document is then unsaved (see [`is_unsaved`](Self::is_unsaved)).
    pub async fn append(&mut self, context: &DocContext, delta: &[u8]) -> bool {
        self.meta_dirty = true;
        if self.log.unsaved {
            // Appending after a gap would store a log that does not replay: the retry writes
            // the whole state instead.
            return false;
        }
        match context.store.append(&self.id, delta).await {
            Ok(seq) => {
                if !self.shared {
                    self.log.last_seq = Some(seq);
                }
                self.log.entries += 1;
                self.log.bytes += delta.len() as u64;
                self.written = context.flusher.mark_dirty();
                true
            }
            Err(error) => {
                // The edit lives in memory and in its author's replica; the next compaction
                // that succeeds writes the whole state, this edit included.
                tracing::error!(doc = %self.id, error = %crate::error::chain(&error), "append failed");
                self.log.unsaved = true;
                false
            }
        }
    }

    /// Another process appended an entry of `bytes` to the log, which this document applied.
    pub fn remote_entry(&mut self, bytes: usize) {
        self.log.entries += 1;
        self.log.bytes += bytes as u64;
    }

    /// The feed handed over everything in the log up to `upto`: the state covers it.
    pub fn seen(&mut self, upto: Seq) {
        self.log.last_seq = Some(upto);
    }

    /// Whether the log should be folded into a snapshot now.
    pub fn compaction_due(&self, context: &DocContext) -> bool {
        let config = &context.shared.config;
        if self.compact_failed.is_some_and(|at| at.elapsed() < COMPACT_RETRY) {
            return false;
        }
        self.log.unsaved
            || self.log.entries >= config.compact_after_updates
            || self.log.bytes >= config.compact_after_bytes.max(self.log.snapshot_bytes)
    }

    /// When the metadata should next be written, if an edit changed it: at once after a quiet
    /// spell, otherwise [`META_INTERVAL`] after the last write, so that a burst of edits costs
    /// one write per interval and its end is written within one.
    pub fn meta_due(&self) -> Option<Instant> {
        if !self.meta_dirty {
            return None;
        }
        Some(self.meta_written.map_or_else(Instant::now, |t| t + META_INTERVAL))
    }

    /// Writes the metadata if an edit changed it.
    pub async fn write_meta_if_dirty(&mut self, context: &DocContext, doc: &Doc) {
        if self.meta_dirty {
            self.write_meta(context, doc).await;
        }
    }

    /// Everything out: the log folded into a snapshot and the metadata current. Called when
    /// the document unloads or the server stops. Returns false while some edit is still only
    /// in memory (the store failed): then the document must not be dropped.
    pub async fn settle(&mut self, context: &DocContext, doc: &Doc) -> bool {
        if self.log.entries > 0 || self.log.unsaved {
            if let Err(error) = self.compact(context, doc).await {
                tracing::error!(doc = %self.id, error = %crate::error::chain(&error), "compaction failed; the log stays as it is");
            }
        }
        if self.meta_dirty {
            self.write_meta(context, doc).await;
        }
        !self.log.unsaved
    }

    /// Records the document as existing from now on (documents created through the API exist
    /// before their first edit).
    pub async fn create(&mut self, context: &DocContext, doc: &Doc) {
        self.meta_dirty = true;
        if let Some(ticket) = self.write_meta(context, doc).await {
            // The metadata is what makes an empty document exist: "created" waits for it.
            self.written = ticket;
        }
    }

    /// Removes the document from the store; afterwards it does not exist.
    /// Removes the document (`doc`, whose state is kept so that copies of it stay recognised
    /// as copies of a deleted document) from the store; afterwards it does not exist.
    pub async fn delete(&mut self, context: &DocContext, doc: &Doc) -> Result<(), StoreError> {
        let mut state = doc.transact().state_vector();
        state.merge(self.stale.clone());
        context.store.delete(&self.id, &state.encode_v1()).await?;
        self.written = context.flusher.mark_dirty();
        self.log = LogState::default();
        self.meta = None;
        self.meta_dirty = false;
        self.deleted = true;
        Ok(())
    }

    /// Replaces the log by one snapshot of `doc`, encoded on the blocking pool unless it is
    /// small (it costs in proportion to the document). When the document is unsaved, the
    /// state is first appended as a log entry, so the edits only in memory reach the store
    /// even if the compaction itself then fails; success leaves the document saved again.
    pub async fn compact(&mut self, context: &DocContext, doc: &Doc) -> Result<(), DocError> {
        let result = self.try_compact(context, doc).await;
        self.compact_failed = match result {
            Ok(()) => None,
            Err(_) => Some(Instant::now()),
        };
        result
    }

    async fn try_compact(&mut self, context: &DocContext, doc: &Doc) -> Result<(), DocError> {
        // A small document (most of them: a few hundred keystrokes fold every 16 KiB) is
        // encoded in place: queued for the bounded pool behind imports and big documents'
        // folds, it would hold its document's typing back for as long as they take (the
        // hostile benchmark).
        let snapshot = if self.size_bytes() <= INLINE_BYTES as u64 {
            protocol::full_state(doc)
        } else {
            let doc = doc.clone();
            context.shared.off_runtime(move || protocol::full_state(&doc)).await?
        };
        let snapshot_bytes = snapshot.len() as u64;
        if self.log.unsaved || (!self.shared && self.log.last_seq.is_none()) {
            let seq = context.store.append(&self.id, &snapshot).await?;
            // That entry holds everything: durable with the next flush, and the compaction
            // is an optimisation, not what keeps the edits.
            self.written = context.flusher.mark_dirty();
            if !self.shared {
                self.log.last_seq = Some(seq);
            }
            self.log.entries += 1;
            self.log.bytes += snapshot_bytes;
            self.log.unsaved = false;
        }
        // Shared: nothing to fold until the feed has said where our state is in the log.
        let Some(upto) = self.log.last_seq else { return Ok(()) };
        context.store.compact(&self.id, &snapshot, upto).await?;
        self.written = context.flusher.mark_dirty();
        context.shared.metrics.compactions.inc();
        self.log = LogState {
            last_seq: Some(upto),
            snapshot_bytes,
            ..LogState::default()
        };
        Ok(())
    }

    /// Writes the metadata; the ticket that makes it durable, unless the store refused it.
    async fn write_meta(&mut self, context: &DocContext, doc: &Doc) -> Option<Ticket> {
        let now = now_ms();
        let meta = DocMeta {
            title: title_of(doc),
            created_ms: self.meta.as_ref().map_or(now, |m| m.created_ms),
            updated_ms: now,
            size_bytes: self.size_bytes(),
        };
        match context.store.put_meta(&self.id, &meta).await {
            Ok(()) => {
                self.meta = Some(meta);
                self.meta_dirty = false;
                self.meta_written = Some(Instant::now());
                Some(context.flusher.mark_dirty())
            }
            Err(error) => {
                tracing::error!(doc = %self.id, error = %crate::error::chain(&error), "metadata write failed");
                None
            }
        }
    }

    /// Rebuilds the document from the store, on the blocking pool: after yrs panicked mid-apply
    /// and the in-memory `Doc` can no longer be trusted, or after the feed fell behind what the
    /// store keeps of the log. In a cluster, the feed then starts again from what was loaded.
    pub async fn reload(&mut self, context: &DocContext) -> Result<(Doc, Feed), LoadError> {
        let stored = context.store.load(&self.id).await?.unwrap_or_default();
        self.deleted = context.store.deleted(&self.id).await?;
        let feed = context.store.follow(&self.id, stored.last_seq);
        let (doc, stored) = context
            .shared
            .off_runtime(move || Ok::<_, LoadError>((rebuild(&stored)?, stored)))
            .await??;
        // Edits only in memory stay so: the retry writes the whole state, theirs included.
        let unsaved = self.log.unsaved;
        self.log = LogState::from(&stored);
        self.log.unsaved = unsaved;
        Ok((doc, feed))
    }

}

/// A state vector as stored; nothing if there is none.
fn read_state(bytes: Option<&[u8]>) -> StateVector {
    bytes.and_then(|b| StateVector::decode_v1(b).ok()).unwrap_or_default()
}

/// A fresh `Doc` with every stored update applied, in order.
pub(super) fn rebuild(stored: &Stored) -> Result<Doc, LoadError> {
    let doc = schema::new_doc();
    for (index, update) in stored.updates.iter().enumerate() {
        protocol::apply_bytes(&doc, update).map_err(|source| LoadError::Rebuild { index, source })?;
    }
    Ok(doc)
}

/// The title in the document's `meta` map (empty if none), cut to [`MAX_TITLE_BYTES`].
fn title_of(doc: &Doc) -> String {
    let meta = doc.get_or_insert_map(schema::META);
    let txn = doc.transact();
    let mut title = match meta.get(&txn, schema::TITLE) {
        Some(yrs::Out::Any(yrs::Any::String(title))) => title.to_string(),
        _ => String::new(),
    };
    if title.len() > MAX_TITLE_BYTES {
        let mut end = MAX_TITLE_BYTES;
        while !title.is_char_boundary(end) {
            end -= 1;
        }
        title.truncate(end);
    }
    title
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
