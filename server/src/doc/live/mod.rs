//! A loaded document and the connections subscribed to it: the y-websocket protocol as the
//! server side of it.
//!
//! Owned by the document task, so nothing else ever locks the yrs `Doc` (inside its
//! `Awareness`). Every update is applied, appended to the store and then fanned out, in that
//! order, so a peer never holds an update the store refused; the flusher makes it durable
//! within ms, and the answer that lets a client say "All changes synced" waits for that.
//! While the store refuses writes, the document takes no edits: everyone is closed with
//! 4507 and keeps their changes until it can.
//!
//! Here: joining, leaving, each connection's messages in order, the store. The rest by what it
//! handles: sync steps and updates ([`sync`]), presence ([`awareness`]). What a connection may
//! send is bounded before it is applied: the document's size ([`sync`]), presence
//! ([`presence`](super::presence)), updates that depend on changes the server lacks
//! ([`pending`]), writes under another connection's client id ([`owners`]). In a cluster, what
//! other processes do arrives through the store's feed ([`remote`]), and our clients' presence
//! is published for them.
//!
//! The document's history is kept here too: who writes under which client id and who deletes
//! what ([`attribution`](super::attribution)), and versions ([`history`], [`restore`]).

mod awareness;
mod history;
mod owners;
mod pending;
mod remote;
mod restore;
mod sync;

pub use history::Restored;

use std::collections::{HashMap, HashSet};
use std::iter::once;
use std::sync::Arc;

use bytes::Bytes;
use quire_model::protocol::{self, Inbound, ProtocolError};
use quire_model::DocId;
use yrs::sync::{Awareness, Message};
use yrs::updates::decoder::Decode;
use yrs::{ClientID, Doc, Update};

use super::attribution::Attribution;
use super::context::DocContext;
use super::peers::Peers;
use super::probe::Probes;
use super::storage::{DocStorage, Feed};
use super::ConnId;
use crate::auth::Grant;
use crate::error::{CloseReason, DocError};
use crate::state::INLINE_BYTES;
use crate::store::history::Author;
use crate::store::Remote;
use crate::ws::outbox::Outbox;

/// Whether a document task keeps serving.
#[derive(Debug, Clone)]
pub enum Lifecycle {
    Live,
    /// Stop: close every connection with this reason and retire without writing.
    Ended(CloseReason),
}

pub struct LiveDoc {
    id: DocId,
    context: Arc<DocContext>,
    awareness: Awareness,
    peers: Peers,
    storage: DocStorage,
    lifecycle: Lifecycle,
    probes: Probes,
    /// What other processes do to this document (a shared store only).
    feed: Feed,
    /// The clients of other processes whose presence we hold, by process.
    remote_clients: HashMap<String, HashSet<ClientID>>,
    /// Updates waiting for changes we lack (see [`pending`]).
    waiting: Option<pending::Waiting>,
    /// Updates that skip over their sender's own earlier changes, held for its step 2.
    gapped: pending::Gapped,
    history: history::History,
    attribution: Attribution,
}

/// What happened in the background: another process's change, or a version job's end.
pub enum Background {
    Remote(Option<Remote>),
    Version(history::Outcome),
}

impl LiveDoc {
    pub fn new(id: DocId, doc: Doc, storage: DocStorage, feed: Feed, context: Arc<DocContext>) -> Self {
        LiveDoc {
            id,
            context,
            awareness: Awareness::new(doc),
            peers: Peers::default(),
            storage,
            lifecycle: Lifecycle::Live,
            probes: Probes::default(),
            feed,
            remote_clients: HashMap::new(),
            waiting: None,
            gapped: pending::Gapped::default(),
            history: history::History::default(),
            attribution: Attribution::default(),
        }
    }

    /// The next thing that happens in the background; pending while nothing can.
    pub async fn background(&mut self) -> Background {
        let running = self.history.running.as_mut();
        let feed = self.feed.as_mut();
        tokio::select! {
            outcome = history::outcome_of(running) => Background::Version(outcome),
            remote = async {
                match feed {
                    Some(feed) => feed.recv().await,
                    None => std::future::pending().await,
                }
            } => Background::Remote(remote),
        }
    }

    /// Handles what [`background`](Self::background) brought.
    pub async fn on_background(&mut self, event: Background) {
        match event {
            Background::Version(outcome) => self.version_done(outcome).await,
            // The store stopped feeding us (it is shutting down).
            Background::Remote(None) => self.feed = None,
            Background::Remote(Some(remote)) => self.remote(remote).await,
        }
    }

    /// Records who writes under some client ids; a failure costs only their names. Written off
    /// the task: a store across the network (PostgreSQL, up to its timeout while it is going
    /// away) must not hold up everyone's edits because someone announced their name. Names are
    /// read only when history is shown, long after. (Two writes for one client id may land out
    /// of order only if it renames itself twice within one write's time.)
    pub fn note_authors(&mut self, authors: Vec<(u64, Author)>) {
        if authors.is_empty() {
            return;
        }
        let (store, id) = (self.context.store.clone(), self.id.clone());
        self.context.shared.tracker.spawn(async move {
            if let Err(error) = store.put_authors(&id, &authors).await {
                tracing::warn!(doc = %id, error = %crate::error::chain(&error), "cannot record who writes");
            }
        });
    }

    /// Content the API brought (`updates`, as committed) is "imported": what the server wrote
    /// itself, under its own client id, what it deleted, and the client ids of a posted update
    /// (`posted`) that nobody's presence named.
    pub async fn imported(&mut self, updates: &[Vec<u8>], posted: Vec<ClientID>) {
        let own = self.doc().client_id();
        let mut authors: Vec<(u64, Author)> = self.attribution.note(own, Author::Imported).into_iter().collect();
        for client in posted {
            if !self.attribution.knows(client) {
                authors.extend(self.attribution.note(client, Author::Imported));
            }
        }
        for update in updates {
            // Decoding costs in proportion to the update (an import is up to the body limit):
            // a big one is decoded off the runtime, as it was applied.
            let deleted = if update.len() <= INLINE_BYTES {
                Update::decode_v1(update).ok().map(|u| u.delete_set().clone())
            } else {
                let update = update.clone();
                let decode = move || Update::decode_v1(&update).ok().map(|u| u.delete_set().clone());
                self.context.shared.off_runtime(decode).await.ok().flatten()
            };
            if let Some(deleted) = deleted {
                self.attribution.deleted(own, &deleted);
            }
        }
        self.note_authors(authors);
    }

    pub fn doc(&self) -> &Doc {
        self.awareness.doc()
    }

    /// Applies an encoded update (`what` names it if yrs panics), off the runtime when it is
    /// big, and returns what it changed.
    async fn apply_encoded(&self, update: Vec<u8>, what: &'static str) -> Result<Option<Vec<u8>>, ProtocolError> {
        if update.len() <= INLINE_BYTES {
            return protocol::apply_bytes(self.doc(), &update);
        }
        let doc = self.doc().clone();
        self.context
            .shared
            .off_runtime(move || protocol::apply_bytes(&doc, &update))
            .await
            .unwrap_or(Err(ProtocolError::Panicked(what)))
    }

    pub fn context(&self) -> &DocContext {
        &self.context
    }

    pub fn storage(&self) -> &DocStorage {
        &self.storage
    }

    pub fn lifecycle(&self) -> &Lifecycle {
        &self.lifecycle
    }

    /// From now on the task stops: everyone is closed with `reason` and nothing more is written.
    pub fn end(&mut self, reason: CloseReason) {
        self.lifecycle = Lifecycle::Ended(reason);
    }

    pub fn has_peers(&self) -> bool {
        !self.peers.is_empty()
    }

    /// Whether edits can be taken: the store takes this document's writes and flushes work.
    pub fn saving(&self) -> bool {
        !self.storage.is_unsaved() && self.context.flusher.healthy()
    }

    /// Subscribes a connection and sends it its first messages.
    pub fn join(&mut self, conn: ConnId, grant: Grant, outbox: Outbox) -> Result<(), DocError> {
        if self.storage.is_deleted() {
            // A client with an old copy would otherwise bring the document back.
            return Err(DocError::Deleted);
        }
        if !self.saving() {
            // Its edits could not be kept: it keeps them itself and comes back later.
            return Err(DocError::NotSaved);
        }
        self.peers.insert(conn, outbox, grant);
        // As y-websocket's server does: our state vector first, then who is here.
        self.send(conn, &protocol::sync_step1(self.doc()));
        self.send_presence(conn);
        Ok(())
    }

    /// The messages of one frame (`bytes` long) a connection sent.
    pub async fn inbound(&mut self, conn: ConnId, messages: Vec<Inbound>, bytes: usize) {
        // It is alive: whoever wrote under a client id it announced is not it.
        for probe in self.probes.answered_by(conn) {
            self.context.shared.metrics.client_id_conflicts.inc();
            tracing::info!(doc = %self.id, writer = %probe.writer, owner = %probe.owner, "closing a connection that wrote under another's client id");
            self.close(probe.writer, CloseReason::ClientIdInUse);
        }
        if let Some((messages, bytes)) = self.probes.hold(conn, messages, bytes) {
            self.process(conn, messages, bytes).await;
        }
    }

    /// Handles one batch in order; stops, holding the rest, at a write that needs a probe.
    async fn process(&mut self, conn: ConnId, messages: Vec<Inbound>, bytes: usize) {
        let mut messages = messages.into_iter();
        while let Some(message) = messages.next() {
            if !self.peers.contains(conn) {
                break; // dropped while handling an earlier message of this batch
            }
            let update = match message {
                Inbound::StateVector(sv) => {
                    self.answer_step1(conn, sv).await;
                    continue;
                }
                Inbound::Awareness(update) => {
                    self.apply_awareness(conn, update).await;
                    continue;
                }
                Inbound::AwarenessQuery => {
                    self.send_presence(conn);
                    continue;
                }
                Inbound::Auth => continue,
                Inbound::Update(update) => update,
                Inbound::Answer(update) => {
                    // The answer to our step 1: from now on its edits build on what we have.
                    if let Some(peer) = self.peers.get_mut(conn) {
                        peer.answered = true;
                    }
                    update
                }
            };
            let fresh = self.fresh_ids(&update);
            if let Some(owner) = self.owner_elsewhere(conn, &fresh) {
                let held = once(Inbound::Update(update)).chain(messages).collect();
                let deadline = tokio::time::Instant::now() + self.context.shared.config.client_id_probe;
                self.probes.start(conn, owner, deadline, held, bytes);
                self.send(owner, &protocol::sync_step1(self.doc()));
                return;
            }
            self.apply(conn, update, bytes).await;
            self.peers.wrote(conn, fresh.into_iter().map(|(client, _)| client));
            if self.peers.get(conn).is_some_and(|peer| peer.answered) {
                // Its step 2 is in (perhaps with this very message): what it sent ahead of it
                // continues from here now, or is refused.
                for (update, bytes) in self.gapped.release(conn) {
                    self.apply(conn, update, bytes).await;
                }
            }
        }
    }

    /// Closes every connection that came in with share link `link` (it was removed).
    pub fn revoke(&mut self, link: &str) {
        for conn in self.peers.with_link(link) {
            self.close(conn, CloseReason::AccessRevoked);
        }
    }

    /// A connection is gone: its presence goes with it, and so do the writes held for it.
    pub async fn leave(&mut self, conn: ConnId) {
        if let Some(peer) = self.peers.remove(conn) {
            self.forget(peer);
        }
        self.left_while_waiting(conn);
        self.gapped.release(conn);
        let (_held_for_it, it_owned) = self.probes.gone(conn);
        for probe in it_owned {
            self.release(probe).await;
        }
    }

    /// Closes every connection with `reason`.
    pub fn close_all(&mut self, reason: CloseReason) {
        self.peers.close_all(reason);
    }

    /// Everything out to the store; false while some edit is still only in memory.
    pub async fn settle(&mut self) -> bool {
        self.storage.settle(&self.context, self.awareness.doc()).await
    }

    /// Tries to write the state that only memory holds (after the store refused a write).
    /// Returns whether the document is saved again.
    pub async fn retry_save(&mut self) -> bool {
        if let Err(error) = self.storage.compact(&self.context, self.awareness.doc()).await {
            tracing::warn!(doc = %self.id, error = %crate::error::chain(&error), "the store still refuses writes");
        }
        !self.storage.is_unsaved()
    }

    /// When the metadata is due to be written (see [`DocStorage::meta_due`]).
    pub fn meta_due(&self) -> Option<tokio::time::Instant> {
        self.storage.meta_due()
    }

    /// Writes the metadata if an edit changed it.
    pub async fn write_meta(&mut self) {
        self.storage.write_meta_if_dirty(&self.context, self.awareness.doc()).await;
    }

    /// The id is being created again: it is no longer a deleted document.
    pub async fn undelete(&mut self) -> Result<(), DocError> {
        Ok(self.storage.undelete(&self.context).await?)
    }

    /// Records the document as existing (created through the API, perhaps with no edit yet).
    pub async fn record_created(&mut self) {
        self.storage.create(&self.context, self.awareness.doc()).await;
    }

    /// Removes the document from the store; the task then ends, closing everyone with 4410.
    pub async fn delete(&mut self) -> Result<(), DocError> {
        // No version may land after the deletion (it would show up under a later document of
        // this id).
        self.stop_versions().await;
        self.storage.delete(&self.context, self.awareness.doc()).await?;
        self.end(CloseReason::Deleted);
        Ok(())
    }

    fn send(&mut self, conn: ConnId, message: &Message) {
        let metrics = self.context.shared.metrics.clone();
        if let Some(dropped) = self.peers.send(conn, encode(message), &metrics) {
            self.forget(dropped);
        }
    }

    fn broadcast(&mut self, frame: &Bytes, except: Option<ConnId>) {
        let metrics = self.context.shared.metrics.clone();
        let dropped: Vec<ClientID> = self
            .peers
            .broadcast(frame, except, &metrics)
            .into_iter()
            .flat_map(|peer| peer.clients)
            .collect();
        self.forget_clients(dropped);
    }

    fn close(&mut self, conn: ConnId, reason: CloseReason) {
        if let Some(peer) = self.peers.remove(conn) {
            peer.outbox.close(reason);
            self.forget(peer);
        }
    }

    /// After yrs panicked mid-apply, the in-memory `Doc` may be inconsistent: rebuild it from
    /// the store, which holds every update applied so far, and ask the peers for the rest.
    pub async fn reload(&mut self) {
        match self.storage.reload(&self.context).await {
            Ok((doc, feed)) => {
                self.feed = feed;
                let old = std::mem::replace(&mut self.awareness, Awareness::new(doc));
                // Presence is not stored: carry it over.
                if let Ok(update) = old.update() {
                    let _ = self.awareness.apply_update(update);
                }
                // The rebuilt document may lack what was only in memory (pending structs, an
                // edit the store refused). Ask every peer for what we lack: a stock client
                // answers sync step 1 with a step 2 holding it.
                let step1 = encode(&protocol::sync_step1(self.doc()));
                self.broadcast(&step1, None);
            }
            Err(error) => {
                tracing::error!(doc = %self.id, error = %crate::error::chain(&error), "reload failed; closing the document");
                self.end(CloseReason::Internal);
            }
        }
    }
}

fn encode(message: &Message) -> Bytes {
    Bytes::from(protocol::encode(message))
}

