//! Presence (awareness) as this document's connections send it: checked against its bounds
//! ([`presence`]) before yrs applies it, the client ids it announces recorded (who owns which
//! id, whose name goes on their text), sent to everyone, and cleared when its connection goes.
//! In a cluster, our clients' presence is published for the others.

use bytes::Bytes;
use yrs::sync::{AwarenessUpdate, Message};
use yrs::{ClientID, ReadTxn, Transact};

use super::{encode, LiveDoc};
use crate::doc::ConnId;
use crate::doc::attribution::Presence;
use crate::doc::peers::Peer;
use crate::doc::presence;
use crate::error::CloseReason;

impl LiveDoc {
    /// Who `conn` says it is, for the client ids it owns: recorded if it may edit (so that a
    /// view-only connection cannot put its name on anyone's text).
    pub(super) async fn note_presence(&mut self, conn: ConnId, clients: Vec<ClientID>) {
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

    pub(super) async fn apply_awareness(&mut self, conn: ConnId, update: AwarenessUpdate) {
        if let Some(announced) = self.apply_presence(conn, update) {
            self.note_presence(conn, announced).await;
        }
    }

    /// Applies a presence update; the client ids it added or changed.
    pub(super) fn apply_presence(&mut self, conn: ConnId, mut update: AwarenessUpdate) -> Option<Vec<ClientID>> {
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
    pub(super) fn send_presence(&mut self, conn: ConnId) {
        let Ok(everyone) = self.awareness.update() else { return };
        for frame in presence::frames(everyone) {
            self.send(conn, &Message::Awareness(frame));
        }
    }

    /// Clears the presence of a connection that left or was dropped, and tells the others.
    pub(super) fn forget(&mut self, peer: Peer) {
        self.forget_clients(peer.clients.into_iter().collect());
    }

    pub(super) fn forget_clients(&mut self, mut clients: Vec<ClientID>) {
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
    pub(super) fn publish_presence(&self, frame: &Bytes) {
        if self.context.store.is_shared() {
            self.context.store.publish_presence(&self.id, frame.to_vec());
        }
    }
}
