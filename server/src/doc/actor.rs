//! The task that owns one live document.
//!
//! It owns the yrs `Doc` (inside its `Awareness`) outright, so nothing else ever locks it. Its
//! life: load the stored state before answering anyone; then serve joins, messages and leaves;
//! unload itself after `idle_unload` without connections, or persist and stop at shutdown.
//! Every update is applied, appended to the store and then fanned out, in that order, so a
//! peer never holds an update the store refused; the flusher makes it durable within ms.
//! Requests from the HTTP API (export, import, delete) are served in [`super::api`].


use bytes::Bytes;
use quire_model::protocol::{self, Inbound, ProtocolError};
use quire_model::DocId;
use tokio::sync::mpsc;
use tokio::time::{sleep_until, Instant};
use yrs::sync::{Awareness, AwarenessUpdate, Message};
use yrs::{ClientID, Doc, StateVector, Update};

pub(super) use super::handle::Lifecycle;

/// A y-websocket client announces one presence (its own); a few leave room for tabs sharing a
/// socket. More is someone filling the server's memory.
const MAX_PRESENCES_PER_CONNECTION: usize = 8;

use super::handle::Command;
use super::peers::{Peer, Peers};
use super::registry::Registry;
use super::storage::DocStorage;
use super::ConnId;
use crate::auth::Access;
use crate::error::{CloseReason, DocError};

/// Runs the task for document `id` until it unloads, fails to load, or the server stops.
pub async fn run(id: DocId, generation: u64, mut rx: mpsc::Receiver<Command>, registry: Registry) {
    let metrics = registry.context().metrics.clone();
    metrics.documents_live.inc();
    match DocStorage::load(registry.context(), &id).await {
        Ok((doc, storage)) => {
            tracing::debug!(doc = %id, "loaded");
            let mut actor = DocActor {
                awareness: Awareness::new(doc),
                peers: Peers::default(),
                storage,
                lifecycle: Lifecycle::Live,
                id,
                generation,
                registry,
            };
            actor.serve(&mut rx).await;
        }
        Err(error) => {
            tracing::error!(doc = %id, %error, "document failed to load; refusing connections");
            // Retire at once: nothing is written for this document, and the next connection
            // tries a fresh load (the failure may have been passing).
            registry.retire(&id, generation, &mut rx, false);
            let refusal = || DocError::LoadFailed(error.to_string());
            while let Some(command) = rx.recv().await {
                match command {
                    Command::Join { reply, .. } => drop(reply.send(Err(refusal()))),
                    Command::Api { reply, .. } => drop(reply.send(Err(refusal()))),
                    Command::Inbound { .. } | Command::Leave { .. } => {}
                }
            }
        }
    }
    metrics.documents_live.dec();
}

pub(super) struct DocActor {
    pub(super) id: DocId,
    generation: u64,
    pub(super) registry: Registry,
    pub(super) awareness: Awareness,
    pub(super) peers: Peers,
    pub(super) storage: DocStorage,
    /// Whether the task keeps serving, and if not, why.
    pub(super) lifecycle: Lifecycle,
}

impl DocActor {
    pub(super) fn doc(&self) -> &Doc {
        self.awareness.doc()
    }

    async fn serve(&mut self, rx: &mut mpsc::Receiver<Command>) {
        let context = self.registry.context();
        let shutdown = context.shutdown.clone();
        let idle_unload = context.config.idle_unload;
        // One timer, re-armed when the last peer leaves (not a new one per message).
        let idle = sleep_until(Instant::now() + idle_unload);
        tokio::pin!(idle);
        let mut idle_armed = true;
        loop {
            tokio::select! {
                command = rx.recv() => {
                    // The registry keeps a sender until we retire, so the queue cannot end here.
                    let Some(command) = command else { return };
                    self.handle(command);
                    if let Lifecycle::Ended(reason) = &self.lifecycle {
                        // Nothing is written here: either the document is gone, or its
                        // in-memory state is the suspect one.
                        self.peers.close_all(reason.clone());
                        self.registry.retire(&self.id, self.generation, rx, false);
                        break;
                    }
                    if !self.peers.is_empty() {
                        idle_armed = false;
                    } else if !idle_armed {
                        idle.as_mut().reset(Instant::now() + idle_unload);
                        idle_armed = true;
                    }
                }
                () = &mut idle, if idle_armed => {
                    let settled = self.storage.settle(self.registry.context(), self.awareness.doc());
                    // While the store refuses an edit, this task holds the only copy: stay.
                    if settled && self.registry.retire(&self.id, self.generation, rx, true) {
                        tracing::debug!(doc = %self.id, "unloaded idle document");
                        break;
                    }
                    // A command arrived meanwhile: serve it, and try again later if still idle.
                    idle.as_mut().reset(Instant::now() + idle_unload);
                }
                _ = shutdown.cancelled() => {
                    self.peers.close_all(CloseReason::ShuttingDown);
                    if !self.storage.settle(self.registry.context(), self.awareness.doc()) {
                        // The clients that made them still hold them and resync on reconnect.
                        tracing::error!(doc = %self.id, "stopping with edits the store refused");
                    }
                    self.registry.retire(&self.id, self.generation, rx, false);
                    break;
                }
            }
        }
        // Retired: whatever slipped into the queue before it closed goes unanswered; a dropped
        // Join reply makes that connection retry on a fresh task, which loads what we wrote.
        while rx.recv().await.is_some() {}
    }

    fn handle(&mut self, command: Command) {
        match command {
            Command::Join { conn, access, outbox, reply } => {
                if self.storage.is_deleted() {
                    // A client with an old copy would otherwise bring the document back.
                    let _ = reply.send(Err(DocError::Deleted));
                    return;
                }
                self.peers.insert(conn, outbox, access);
                // As y-websocket's server does: our state vector first, then who is here.
                self.send(conn, &protocol::sync_step1(self.doc()));
                if let Some(update) = self.awareness_of_everyone() {
                    self.send(conn, &Message::Awareness(update));
                }
                let _ = reply.send(Ok(()));
            }
            Command::Inbound { conn, messages } => {
                for message in messages {
                    if self.peers.get_mut(conn).is_none() {
                        break; // dropped while handling an earlier message of this batch
                    }
                    self.handle_message(conn, message);
                }
            }
            Command::Leave { conn } => {
                if let Some(peer) = self.peers.remove(conn) {
                    self.forget(peer);
                }
            }
            Command::Api { request, reply } => {
                let _ = reply.send(self.handle_api(request));
            }
        }
    }

    fn handle_message(&mut self, conn: ConnId, message: Inbound) {
        match message {
            Inbound::StateVector(sv) => self.answer_step1(conn, &sv),
            Inbound::Update(update) => self.apply(conn, update),
            Inbound::Awareness(update) => self.apply_awareness(conn, update),
            Inbound::AwarenessQuery => {
                if let Some(update) = self.awareness_of_everyone() {
                    self.send(conn, &Message::Awareness(update));
                }
            }
            Inbound::Auth => {}
        }
    }

    fn answer_step1(&mut self, conn: ConnId, sv: &StateVector) {
        let reply = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            protocol::sync_step2(self.doc(), sv)
        }));
        match reply {
            Ok(step2) => self.send(conn, &step2),
            Err(_) => self.close(conn, CloseReason::Internal),
        }
    }

    fn apply(&mut self, conn: ConnId, update: Update) {
        let metrics = self.registry.context().metrics.clone();
        metrics.updates_received.inc();
        if self.peers.get_mut(conn).is_some_and(|p| p.access == Access::ReadOnly) {
            return;
        }
        match protocol::apply_update(self.doc(), update) {
            Ok(None) => {}
            Ok(Some(delta)) => self.commit(&delta, Some(conn)),
            Err(ProtocolError::Panicked(what)) => {
                tracing::error!(doc = %self.id, %conn, what, "yrs panicked on a client's update");
                self.close(conn, CloseReason::Internal);
                self.reload();
            }
            Err(error) => {
                tracing::info!(doc = %self.id, %conn, %error, "refused an update");
                metrics.messages_rejected.inc();
                self.close(conn, error.into());
            }
        }
    }

    fn apply_awareness(&mut self, conn: ConnId, mut update: AwarenessUpdate) {
        // yrs keeps an entry for every client id it ever saw: a "gone" state for an id nobody
        // knows would only grow that table, so it is dropped here.
        update
            .clients
            .retain(|&client, entry| &*entry.json != "null" || self.awareness.meta(client).is_some());
        let applied = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.awareness.apply_update_summary(update)
        }));
        let summary = match applied {
            Ok(Ok(Some(summary))) => summary,
            Ok(Ok(None)) => return,
            Ok(Err(error)) => return self.close(conn, CloseReason::Malformed(error.to_string())),
            Err(_) => return self.close(conn, CloseReason::Internal),
        };
        if let Some(peer) = self.peers.get_mut(conn) {
            peer.clients.extend(summary.added.iter().chain(&summary.updated));
            for removed in &summary.removed {
                peer.clients.remove(removed);
            }
            if peer.clients.len() > MAX_PRESENCES_PER_CONNECTION {
                let reason = CloseReason::Malformed("too many presence entries".into());
                return self.close(conn, reason);
            }
        }
        if let Ok(update) = self.awareness.update_with_clients(summary.all_changes()) {
            // To everyone, the sender too, as y-websocket's server does: a lone client counts
            // its own echo as liveness and would otherwise reconnect every 30 s.
            self.broadcast(&encode(&Message::Awareness(update)), None);
        }
    }

    /// Every known presence state, or `None` if nobody has one.
    fn awareness_of_everyone(&self) -> Option<AwarenessUpdate> {
        self.awareness.update().ok().filter(|u| !u.clients.is_empty())
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
            let metrics = self.registry.context().metrics.clone();
            for dropped in self.peers.broadcast(&frame, None, &metrics) {
                clients.extend(dropped.clients);
            }
        }
    }

    fn send(&mut self, conn: ConnId, message: &Message) {
        let metrics = self.registry.context().metrics.clone();
        if let Some(dropped) = self.peers.send(conn, encode(message), &metrics) {
            self.forget(dropped);
        }
    }

    /// An applied change goes to the store, then to every peer but its author.
    pub(super) fn commit(&mut self, delta: &[u8], author: Option<ConnId>) {
        self.storage.persist(self.registry.context(), self.awareness.doc(), delta);
        let frame = encode(&protocol::update_message(delta.to_vec()));
        self.broadcast(&frame, author);
    }

    fn broadcast(&mut self, frame: &Bytes, except: Option<ConnId>) {
        let metrics = self.registry.context().metrics.clone();
        let dropped: Vec<ClientID> = self
            .peers
            .broadcast(frame, except, &metrics)
            .into_iter()
            .flat_map(|peer| peer.clients)
            .collect();
        self.forget_clients(dropped);
    }

    pub(super) fn close(&mut self, conn: ConnId, reason: CloseReason) {
        if let Some(peer) = self.peers.remove(conn) {
            peer.outbox.close(reason);
            self.forget(peer);
        }
    }

    /// After yrs panicked mid-apply, the in-memory `Doc` may be inconsistent: rebuild it from
    /// the store, which holds every update applied so far, and ask the peers for the rest.
    pub(super) fn reload(&mut self) {
        match self.storage.reload(self.registry.context()) {
            Ok(doc) => {
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
                tracing::error!(doc = %self.id, %error, "reload failed; closing the document");
                self.lifecycle = Lifecycle::Ended(CloseReason::Internal);
            }
        }
    }
}

fn encode(message: &Message) -> Bytes {
    Bytes::from(protocol::encode(message))
}
