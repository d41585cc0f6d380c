//! The sync protocol's two directions: a client's sync step 1 is answered with what it lacks
//! (once what it sent is on disk), and its updates are applied within the document's bounds,
//! appended to the store and sent on to the others.

use bytes::Bytes;
use quire_model::protocol::{self, ProtocolError};
use yrs::sync::Message;
use yrs::{ClientID, Doc, ReadTxn, StateVector, Transact, Update};

use super::{encode, pending, LiveDoc};
use crate::doc::ConnId;
use crate::error::CloseReason;
use crate::state::INLINE_BYTES;
use crate::ws::outbox::Frame;

impl LiveDoc {
    /// An applied change goes to the store, then to every peer but `author` (if given: the peer
    /// that sent all of it). If the store refuses it, nobody else gets it and everyone is closed
    /// (4507): each keeps their own edits, and the document holds this one in memory until it
    /// can be written.
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
    pub(super) async fn answer_step1(&mut self, conn: ConnId, sv: StateVector) {
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
    pub(super) async fn apply(&mut self, conn: ConnId, update: Update, bytes: usize) {
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
        // What waits for changes we lack (others' updates, perhaps) may be taken in with this
        // update: the change then holds more than its sender has, so it goes back to it too.
        let something_waited = self.doc().transact().has_missing_updates();
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
                self.commit(&delta, (!something_waited).then_some(conn)).await
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
    pub(super) fn writer_of(&self, conn: ConnId, update: &Update) -> Option<ClientID> {
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
}

/// Sync step 2 for a peer at `sv`, encoded; `None` if yrs panicked encoding it.
fn step2(doc: &Doc, sv: &StateVector) -> Option<Bytes> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| encode(&protocol::sync_step2(doc, sv)))).ok()
}
