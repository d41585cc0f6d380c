//! A loaded document and the connections subscribed to it: the y-websocket protocol as the
//! server side of it.
//!
//! Owned by the document task, so nothing else ever locks the yrs `Doc` (inside its
//! `Awareness`). Every update is applied, appended to the store and then fanned out, in that
//! order, so a peer never holds an update the store refused; the flusher makes it durable
//! within ms, and the answer that lets a client say "All changes synced" waits for that.
//! While the store refuses writes, the document takes no edits: everyone is closed with
//! 4507 and keeps their changes until it can. What a connection may send is bounded before it
//! is applied: the document's size, presence ([`presence`](super::presence)), updates that
//! depend on changes the server lacks, writes under another connection's client id
//! ([`probe`](super::probe)). In a cluster, what other processes do arrives through the
//! store's feed ([`remote`]), and our clients' presence is published for them.
//!
//! The document's history is kept here too: who writes under which client id and who deletes
//! what ([`attribution`](super::attribution)), and versions ([`history`], [`restore`]).

mod history;
mod pending;
mod remote;
mod restore;

pub use history::Restored;

use std::collections::{HashMap, HashSet};
use std::iter::once;
use std::sync::Arc;

use bytes::Bytes;
use quire_model::protocol::{self, Inbound, ProtocolError};
use quire_model::DocId;
use yrs::sync::{Awareness, AwarenessUpdate, Message};
use yrs::updates::decoder::Decode;
use yrs::{ClientID, Doc, ReadTxn, StateVector, Transact, Update};

use super::attribution::{Attribution, Presence};
use super::context::DocContext;
use super::peers::{Peer, Peers};
use super::presence;
use super::probe::{Probe, Probes};
use super::storage::{DocStorage, Feed};
use super::ConnId;
use crate::auth::Grant;
use crate::error::{CloseReason, DocError};
use crate::state::INLINE_BYTES;
use crate::store::history::Author;
use crate::store::Remote;
use crate::ws::outbox::{Frame, Outbox};

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

    /// The client ids `update` brings new items under, each with whether we hold any of its
    /// items already. (`Update::state_vector` only counts clients whose blocks start at clock
    /// 0; the inserted ranges say where each client's items end.) An echo or a resend of what
    /// we have is no write: it must not make its sender the owner of anyone's id.
    fn fresh_ids(&self, update: &Update) -> Vec<(ClientID, bool)> {
        let known = self.doc().transact().state_vector();
        update
            .insertions(true)
            .iter()
            .filter_map(|(&client, ranges)| {
                let end = ranges.iter().map(|range| range.end).max()?;
                let have = known.get(&client);
                (end > have).then_some((client, have > 0))
            })
            .collect()
    }

    /// Another live connection that owns a client id `conn` brings new items under (`fresh`):
    /// the one whose writes `conn` would take the place of.
    fn owner_elsewhere(&self, conn: ConnId, fresh: &[(ClientID, bool)]) -> Option<ConnId> {
        fresh
            .iter()
            .find_map(|&(client, written)| self.peers.owner(client, written).filter(|&owner| owner != conn))
    }

    /// When the next client-id probe runs out, if one is under way.
    pub fn probe_due(&self) -> Option<tokio::time::Instant> {
        self.probes.next_deadline()
    }

    /// The owners that did not answer in time are dead sockets: they are replaced, and what
    /// their successors wrote goes ahead.
    pub async fn probes_expired(&mut self) {
        for probe in self.probes.expired(tokio::time::Instant::now()) {
            tracing::info!(doc = %self.id, owner = %probe.owner, writer = %probe.writer, "replacing a connection that stopped answering");
            self.close(probe.owner, CloseReason::Replaced);
            self.release(probe).await;
        }
    }

    /// Handles what a probe held, in order (a later write may need a probe of its own).
    async fn release(&mut self, mut probe: Probe) {
        while let Some((messages, bytes)) = probe.held.pop_front() {
            if let Some((messages, bytes)) = self.probes.hold(probe.writer, messages, bytes) {
                self.process(probe.writer, messages, bytes).await;
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

    /// An applied change goes to the store, then to every peer but its author. If the store
    /// refuses it, nobody else gets it and everyone is closed (4507): each keeps their own
    /// edits, and the document holds this one in memory until it can be written.
    pub async fn commit(&mut self, delta: &[u8], author: Option<ConnId>) {
        if !self.storage.append(&self.context, delta).await {
            self.context.shared.metrics.documents_not_saving.inc();
            self.close_all(CloseReason::NotSaving);
            return;
        }
        self.history_changed();
        let frame = encode(&protocol::update_message(delta.to_vec()));
        self.broadcast(&frame, author);
        if self.storage.compaction_due(&self.context) {
            if let Err(error) = self.storage.compact(&self.context, self.awareness.doc()).await {
                tracing::error!(doc = %self.id, error = %crate::error::chain(&error), "compaction failed; the log stays as it is");
            }
        }
    }

    /// Answers a sync step 1 with what the peer lacks. The answer goes out only once every
    /// edit applied so far is on disk: a client takes it as proof that the server has its
    /// changes ("All changes synced").
    async fn answer_step1(&mut self, conn: ConnId, sv: StateVector) {
        if self.storage.is_stale_state(&sv) {
            // A copy of a deleted document of the same id: it must never merge into this one,
            // so it gets nothing of it either (its owner can still save it as it is).
            return self.close(conn, CloseReason::StaleCopy);
        }
        let reply = if self.storage.size_bytes() as usize > INLINE_BYTES {
            let doc = self.doc().clone();
            self.context.shared.off_runtime(move || step2(&doc, &sv)).await.ok().flatten()
        } else {
            step2(self.doc(), &sv)
        };
        let Some(step2) = reply else {
            return self.close(conn, CloseReason::Internal);
        };
        let frame = match self.storage.saved() {
            Ok(ticket) if self.context.flusher.is_durable(ticket) => Frame::from(step2),
            Ok(ticket) => {
                let flusher = self.context.flusher.clone();
                let durable = async move { flusher.durable(ticket).await.map_err(|_| CloseReason::NotSaving) };
                Frame::gated(step2, Box::pin(durable))
            }
            Err(_) => return self.close(conn, CloseReason::NotSaving),
        };
        let metrics = self.context.shared.metrics.clone();
        if let Some(dropped) = self.peers.send(conn, frame, &metrics) {
            self.forget(dropped);
        }
    }

    /// Applies a client's update (`bytes`: the size of the frame it came in, to decide where
    /// the work runs and whether the document may grow by it).
    async fn apply(&mut self, conn: ConnId, update: Update, bytes: usize) {
        let metrics = self.context.shared.metrics.clone();
        metrics.updates_received.inc();
        if !self.peers.may_edit(conn) {
            // View only: dropped, never applied, stored or sent on. The client is told once,
            // when it first tries to change something (its empty answer to our sync step 1 is
            // no attempt), with y-protocols' "permission denied", which a stock client reports.
            if update.is_empty() {
                return;
            }
            if let Some(peer) = self.peers.get_mut(conn) {
                if !std::mem::replace(&mut peer.told_read_only, true) {
                    self.send(conn, &Message::Auth(Some("permission denied: this link is view only".into())));
                }
            }
            return;
        }
        if !self.saving() {
            return self.close(conn, CloseReason::NotSaving);
        }
        if self.storage.size_bytes() + bytes as u64 > self.context.shared.config.max_doc_bytes {
            return self.close(conn, CloseReason::DocTooLarge);
        }
        if self.storage.is_stale_update(&update) {
            return self.close(conn, CloseReason::StaleCopy);
        }
        if protocol::continues(&self.doc().transact().state_vector(), &update).is_err() {
            // Never handed to yrs, which would take it behind a skip (see
            // `protocol::continues`): held until the sender's sync step 2 brings what it skips
            // over, or refused.
            return self.hold_gapped(conn, update, bytes);
        }
        let footprint = pending::Footprint::of(&update);
        // Yjs does not say who deletes: the connection that sends a deletion does (read from
        // what the update deleted, below: a sync step 2 carries every deletion ever made).
        let deleter = if update.delete_set().is_empty() { None } else { self.writer_of(conn, &update) };
        let applied = if bytes > INLINE_BYTES {
            let doc = self.doc().clone();
            self.context
                .shared
                .off_runtime(move || protocol::apply_update(&doc, update))
                .await
                .unwrap_or(Err(ProtocolError::Panicked("update")))
        } else {
            protocol::apply_update(self.doc(), update)
        };
        self.check_pending(conn, bytes, &footprint);
        match applied {
            Ok(None) => {}
            Ok(Some(delta)) => {
                if let Some(deleter) = deleter {
                    self.attribution.deleted_by(deleter, &delta);
                }
                self.commit(&delta, Some(conn)).await
            }
            Err(ProtocolError::Panicked(what)) => {
                tracing::error!(doc = %self.id, %conn, what, "yrs panicked on a client's update");
                self.close(conn, CloseReason::Internal);
                self.reload().await;
            }
            Err(error) => {
                tracing::info!(doc = %self.id, %conn, %error, "refused an update");
                metrics.messages_rejected.inc();
                self.close(conn, error.into());
            }
        }
    }

    /// The client id `conn` writes under: the one its presence announced (the lowest, if it
    /// announced several), else the only one that `update` inserts under.
    fn writer_of(&self, conn: ConnId, update: &Update) -> Option<ClientID> {
        if let Some(client) = self.peers.get(conn).and_then(|peer| peer.clients.iter().min_by_key(|c| c.get())) {
            return Some(*client);
        }
        let inserted = update.insertions(true);
        let mut clients = inserted.client_ids();
        match (clients.next(), clients.next()) {
            (Some(client), None) => Some(client),
            _ => None,
        }
    }

    /// Who `conn` says it is, for the client ids it owns: recorded if it may edit (so that a
    /// view-only connection cannot put its name on anyone's text).
    async fn note_presence(&mut self, conn: ConnId, clients: Vec<ClientID>) {
        if !self.peers.may_edit(conn) {
            return;
        }
        let known = self.doc().transact().state_vector();
        let mut authors = Vec::new();
        for client in clients {
            if self.peers.owner(client, known.get(&client) > 0) != Some(conn) {
                continue;
            }
            let Some(author) = self.awareness.state::<Presence>(client).and_then(Presence::author) else { continue };
            authors.extend(self.attribution.note(client, author));
        }
        self.note_authors(authors);
    }

    async fn apply_awareness(&mut self, conn: ConnId, update: AwarenessUpdate) {
        if let Some(announced) = self.apply_presence(conn, update) {
            self.note_presence(conn, announced).await;
        }
    }

    /// Applies a presence update; the client ids it added or changed.
    fn apply_presence(&mut self, conn: ConnId, mut update: AwarenessUpdate) -> Option<Vec<ClientID>> {
        // yrs keeps an entry for every client id it ever saw: a "gone" state for an id nobody
        // knows would only grow that table, so it is dropped here.
        update
            .clients
            .retain(|&client, entry| &*entry.json != "null" || self.awareness.meta(client).is_some());
        let peer = self.peers.get(conn)?;
        if let Err(reason) = presence::check(&update, &peer.clients, self.context.shared.config.max_presence_bytes) {
            self.close(conn, reason);
            return None;
        }
        let applied = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.awareness.apply_update_summary(update)
        }));
        let summary = match applied {
            Ok(Ok(Some(summary))) => summary,
            Ok(Ok(None)) => return None,
            Ok(Err(error)) => {
                self.close(conn, CloseReason::Malformed(error.to_string()));
                return None;
            }
            Err(_) => {
                self.close(conn, CloseReason::Internal);
                return None;
            }
        };
        let announced: Vec<ClientID> = summary.added.iter().chain(&summary.updated).copied().collect();
        self.peers.claim(conn, announced.iter().copied(), &summary.removed);
        if let Ok(update) = self.awareness.update_with_clients(summary.all_changes()) {
            // To everyone, the sender too, as y-websocket's server does: a lone client counts
            // its own echo as liveness and would otherwise reconnect every 30 s.
            let frame = encode(&Message::Awareness(update));
            self.publish_presence(&frame);
            self.broadcast(&frame, None);
        }
        Some(announced)
    }

    /// Sends everyone's presence to one connection, in frames of bounded size.
    fn send_presence(&mut self, conn: ConnId) {
        let Ok(everyone) = self.awareness.update() else { return };
        for frame in presence::frames(everyone) {
            self.send(conn, &Message::Awareness(frame));
        }
    }

    /// Clears the presence of a connection that left or was dropped, and tells the others.
    fn forget(&mut self, peer: Peer) {
        self.forget_clients(peer.clients.into_iter().collect());
    }

    fn forget_clients(&mut self, mut clients: Vec<ClientID>) {
        // A worklist rather than recursion: telling the others may drop more slow peers.
        loop {
            // A client that reconnected announces itself on its new connection before the old
            // one times out: its presence belongs to the live one.
            clients.retain(|&client| !self.peers.claims(client));
            if clients.is_empty() {
                return;
            }
            for &client in &clients {
                self.awareness.remove_state(client);
            }
            let Ok(update) = self.awareness.update_with_clients(clients.drain(..)) else { return };
            let frame = encode(&Message::Awareness(update));
            self.publish_presence(&frame);
            let metrics = self.context.shared.metrics.clone();
            for dropped in self.peers.broadcast(&frame, None, &metrics) {
                clients.extend(dropped.clients);
            }
        }
    }

    /// Shares a presence frame of our clients with the other processes (a shared store only).
    fn publish_presence(&self, frame: &Bytes) {
        if self.context.store.is_shared() {
            self.context.store.publish_presence(&self.id, frame.to_vec());
        }
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

/// Sync step 2 for a peer at `sv`, encoded; `None` if yrs panicked encoding it.
fn step2(doc: &Doc, sv: &StateVector) -> Option<Bytes> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| encode(&protocol::sync_step2(doc, sv)))).ok()
}
