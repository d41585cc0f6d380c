//! One document's side of the store: loading, appending, compacting, and its metadata.
//!
//! Owned by the document task, so none of it needs a lock. The rules it keeps:
//! - a document is read in full (snapshot + log) before anything is written for it;
//! - every applied update is appended before it is fanned out, then flushed by the group commit;
//! - the log is folded into a snapshot once it outgrows the snapshot (loading stays
//!   proportional to the document's size, not its history);
//! - metadata (title, times, size) follows the content: written at once after a quiet spell,
//!   then at most every [`META_INTERVAL`] while edits flow, and once more after the last of
//!   them ([`DocStorage::meta_due`], which the document task waits for), whether or not anyone
//!   is still connected.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use quire_model::{protocol, schema, DocId};
use tokio::time::Instant;
use yrs::{Doc, Map, Transact};

use super::context::DocContext;
use crate::error::LoadError;
use crate::store::{DocMeta, Seq, StoreError, Stored};

/// How stale the documents list may be while someone is typing.
const META_INTERVAL: Duration = Duration::from_secs(2);

/// What the store holds for this document beyond its snapshot.
#[derive(Default)]
struct LogState {
    last_seq: Option<Seq>,
    entries: u64,
    bytes: u64,
    /// Size of the stored snapshot (0 if none).
    snapshot_bytes: u64,
    /// An append failed: the next compaction must write the whole state.
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
    meta: Option<DocMeta>,
    /// Set when an edit changed what the metadata says; cleared when it is written.
    meta_dirty: bool,
    meta_written: Option<Instant>,
    /// Deleted through the API and not created again since.
    deleted: bool,
}

impl DocStorage {
    /// Reads the stored state and metadata of `id` and applies the state to a fresh `Doc`.
    pub async fn load(context: &DocContext, id: &DocId) -> Result<(Doc, DocStorage), LoadError> {
        let store = context.store.clone();
        let key = id.clone();
        let (stored, meta, deleted) = tokio::task::spawn_blocking(move || {
            // Metadata is only about the content: damaged metadata must not make the content
            // unreachable; it is rewritten on the next edit.
            let meta = store.meta(&key).unwrap_or_else(|error| {
                tracing::warn!(doc = %key, %error, "ignoring unreadable metadata");
                None
            });
            Ok::<_, StoreError>((store.load(&key)?, meta, store.deleted(&key)?))
        })
        .await??;
        let stored = stored.unwrap_or_default();
        let doc = rebuild(&stored)?;
        let storage = DocStorage {
            id: id.clone(),
            log: LogState::from(&stored),
            meta,
            meta_dirty: false,
            meta_written: None,
            deleted,
        };
        Ok((doc, storage))
    }

    /// Whether the document was ever written (content or metadata).
    pub fn exists(&self) -> bool {
        self.meta.is_some() || self.log.last_seq.is_some()
    }

    /// Whether the document was deleted (and not created again since).
    pub fn is_deleted(&self) -> bool {
        self.deleted
    }

    /// The id is being created again: it is no longer a deleted document.
    pub fn undelete(&mut self, context: &DocContext) -> Result<(), StoreError> {
        if self.deleted {
            context.store.undelete(&self.id)?;
            context.flusher.mark_dirty();
            self.deleted = false;
        }
        Ok(())
    }

    pub fn meta(&self) -> Option<&DocMeta> {
        self.meta.as_ref()
    }

    /// Appends an applied update and asks for a flush; compacts when the log is due.
    pub fn persist(&mut self, context: &DocContext, doc: &Doc, delta: &[u8]) {
        match context.store.append(&self.id, delta) {
            Ok(seq) => {
                self.log.last_seq = Some(seq);
                self.log.entries += 1;
                self.log.bytes += delta.len() as u64;
                context.flusher.mark_dirty();
            }
            Err(error) => {
                // The edit lives in memory and in its author's replica; the next compaction
                // writes the whole state, this edit included.
                tracing::error!(doc = %self.id, %error, "append failed");
                self.log.unsaved = true;
            }
        }
        self.meta_dirty = true;
        let config = &context.shared.config;
        if self.log.entries >= config.compact_after_updates
            || self.log.bytes >= config.compact_after_bytes.max(self.log.snapshot_bytes)
            || self.log.unsaved
        {
            self.compact_if_needed(context, doc);
        }
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
    pub fn write_meta_if_dirty(&mut self, context: &DocContext, doc: &Doc) {
        if self.meta_dirty {
            self.write_meta(context, doc);
        }
    }

    /// Everything out: the log folded into a snapshot and the metadata current. Called when
    /// the document unloads or the server stops. Returns false while some edit is still only
    /// in memory (the store failed): then the document must not be dropped.
    pub fn settle(&mut self, context: &DocContext, doc: &Doc) -> bool {
        self.compact_if_needed(context, doc);
        if self.meta_dirty {
            self.write_meta(context, doc);
        }
        !self.log.unsaved
    }

    /// Records the document as existing from now on (documents created through the API exist
    /// before their first edit).
    pub fn create(&mut self, context: &DocContext, doc: &Doc) {
        self.meta_dirty = true;
        self.write_meta(context, doc);
    }

    /// Removes the document from the store; afterwards it does not exist.
    pub fn delete(&mut self, context: &DocContext) -> Result<(), StoreError> {
        context.store.delete(&self.id)?;
        context.flusher.mark_dirty();
        self.log = LogState::default();
        self.meta = None;
        self.meta_dirty = false;
        self.deleted = true;
        Ok(())
    }

    /// Replaces the log by one snapshot if there is a log (or unsaved state) to replace.
    fn compact_if_needed(&mut self, context: &DocContext, doc: &Doc) {
        if self.log.entries == 0 && !self.log.unsaved {
            return;
        }
        if let Err(error) = self.compact(context, doc) {
            tracing::error!(doc = %self.id, %error, "compaction failed; the log stays as it is");
        }
    }

    fn compact(&mut self, context: &DocContext, doc: &Doc) -> Result<(), StoreError> {
        let snapshot = protocol::full_state(doc);
        let upto = match (self.log.unsaved, self.log.last_seq) {
            (false, Some(seq)) => seq,
            // Nothing in the log covers the unsaved edits: write them as a log entry first.
            _ => {
                let seq = context.store.append(&self.id, &snapshot)?;
                // That entry now holds everything: durable with the next flush, and the
                // compaction below is an optimisation, not what keeps the edits.
                context.flusher.mark_dirty();
                self.log.last_seq = Some(seq);
                self.log.entries += 1;
                self.log.bytes += snapshot.len() as u64;
                self.log.unsaved = false;
                seq
            }
        };
        context.store.compact(&self.id, &snapshot, upto)?;
        context.flusher.mark_dirty();
        context.shared.metrics.compactions.inc();
        self.log = LogState {
            last_seq: Some(upto),
            snapshot_bytes: snapshot.len() as u64,
            ..LogState::default()
        };
        Ok(())
    }

    fn write_meta(&mut self, context: &DocContext, doc: &Doc) {
        let now = now_ms();
        let meta = DocMeta {
            title: title_of(doc),
            created_ms: self.meta.as_ref().map_or(now, |m| m.created_ms),
            updated_ms: now,
            size_bytes: self.log.snapshot_bytes + self.log.bytes,
        };
        match context.store.put_meta(&self.id, &meta) {
            Ok(()) => {
                context.flusher.mark_dirty();
                self.meta = Some(meta);
                self.meta_dirty = false;
                self.meta_written = Some(Instant::now());
            }
            Err(error) => tracing::error!(doc = %self.id, %error, "metadata write failed"),
        }
    }

    /// Rebuilds the document from the store (after yrs panicked mid-apply and the in-memory
    /// `Doc` can no longer be trusted).
    pub fn reload(&mut self, context: &DocContext) -> Result<Doc, LoadError> {
        let stored = context.store.load(&self.id)?.unwrap_or_default();
        let doc = rebuild(&stored)?;
        self.log = LogState::from(&stored);
        Ok(doc)
    }
}

/// A fresh `Doc` with every stored update applied, in order.
fn rebuild(stored: &Stored) -> Result<Doc, LoadError> {
    let doc = schema::new_doc();
    for (index, update) in stored.updates.iter().enumerate() {
        protocol::apply_bytes(&doc, update).map_err(|source| LoadError::Rebuild { index, source })?;
    }
    Ok(doc)
}

/// The title in the document's `meta` map (empty if none).
fn title_of(doc: &Doc) -> String {
    let meta = doc.get_or_insert_map(schema::META);
    let txn = doc.transact();
    match meta.get(&txn, schema::TITLE) {
        Some(yrs::Out::Any(yrs::Any::String(title))) => title.to_string(),
        _ => String::new(),
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
