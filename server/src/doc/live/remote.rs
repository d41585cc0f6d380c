//! What other quire processes do to this document, as the store's feed brings it: their
//! clients' edits (applied here and sent to our peers, not appended again: they are in the log
//! already), their clients' presence, deletions and removed share links.

use std::collections::HashSet;

use quire_model::protocol::{self, ProtocolError};
use yrs::sync::Message;
use yrs::{ClientID, ReadTxn, Transact};

use super::{encode, LiveDoc};
use crate::error::CloseReason;
use crate::store::{Change, Remote, Seq};

impl LiveDoc {
    pub async fn remote(&mut self, remote: Remote) {
        match remote {
            Remote::Log { changes, upto } => self.remote_log(changes, upto).await,
            Remote::Presence { process, update } => self.remote_presence(process, &update),
            Remote::PresenceQuery => self.answer_presence_query(),
            Remote::ProcessGone(process) => self.process_gone(&process),
            Remote::Reload => self.catch_up().await,
        }
    }

    async fn remote_log(&mut self, changes: Vec<Change>, upto: Seq) {
        for change in changes {
            match change {
                Change::Update(update) => {
                    self.storage.remote_entry(update.len());
                    if !self.apply_remote(update).await {
                        return;
                    }
                }
                Change::Deleted => {
                    // Deleted through another process: everyone here is closed with 4410 and
                    // the task retires without writing.
                    self.end(CloseReason::Deleted);
                    return;
                }
                Change::Revoked(link) => self.revoke(&link),
            }
        }
        self.storage.seen(upto);
        if self.storage.compaction_due(&self.context) {
            if let Err(error) = self.storage.compact(&self.context, self.awareness.doc()).await {
                tracing::warn!(doc = %self.id, error = %crate::error::chain(&error), "fold failed; the stream keeps the changes");
            }
        }
    }

    /// Applies an update another process accepted and sends our peers what was new in it.
    /// False if the document had to be rebuilt (yrs panicked): the rebuild read the log.
    async fn apply_remote(&mut self, update: Vec<u8>) -> bool {
        // An update of one of our clients that waits for changes we lacked may be taken in with
        // these: that part is in no log yet, so the change is kept as our own.
        let something_waited = self.doc().transact().has_missing_updates();
        match self.apply_encoded(update, "update").await {
            Ok(Some(delta)) if something_waited => {
                self.nothing_waits();
                self.commit(&delta, None).await;
                true
            }
            Ok(Some(delta)) => {
                self.history_changed();
                let frame = encode(&protocol::update_message(delta));
                self.broadcast(&frame, None);
                true
            }
            Ok(None) => true,
            Err(ProtocolError::Panicked(what)) => {
                tracing::error!(doc = %self.id, what, "yrs panicked on another process's update; reloading");
                self.reload().await;
                false
            }
            Err(error) => {
                // Another process accepted it, so it decoded there: a bug, not an attack.
                tracing::error!(doc = %self.id, %error, "an update from the stream does not apply");
                true
            }
        }
    }

    /// Presence of another process's clients: applied and sent to our peers. A client that is
    /// connected here now (it moved) is ours to speak for: what others say of it is ignored.
    fn remote_presence(&mut self, process: String, frame: &[u8]) {
        let Ok(messages) = protocol::decode_frame(frame) else { return };
        for message in messages {
            let Message::Awareness(mut update) = message else { continue };
            update.clients.retain(|&client, entry| {
                !self.peers.claims(client) && (&*entry.json != "null" || self.awareness.meta(client).is_some())
            });
            let applied = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                self.awareness.apply_update_summary(update)
            }));
            let Ok(Ok(Some(summary))) = applied else { continue };
            let theirs = self.remote_clients.entry(process.clone()).or_default();
            theirs.extend(summary.added.iter().chain(&summary.updated).copied());
            for client in &summary.removed {
                theirs.remove(client);
            }
            if let Ok(update) = self.awareness.update_with_clients(summary.all_changes()) {
                self.broadcast(&encode(&Message::Awareness(update)), None);
            }
        }
    }

    /// A process that just started holding this document asks who is here: our clients.
    fn answer_presence_query(&mut self) {
        let ours: Vec<ClientID> = self.peers.claimed().collect();
        if ours.is_empty() {
            return;
        }
        if let Ok(update) = self.awareness.update_with_clients(ours) {
            self.publish_presence(&encode(&Message::Awareness(update)));
        }
    }

    /// A process stopped (or crashed): its clients' presence goes, here and at our peers.
    fn process_gone(&mut self, process: &str) {
        let Some(clients) = self.remote_clients.remove(process) else { return };
        let clients: HashSet<ClientID> = clients.into_iter().filter(|&c| !self.peers.claims(c)).collect();
        if clients.is_empty() {
            return;
        }
        for &client in &clients {
            self.awareness.remove_state(client);
        }
        if let Ok(update) = self.awareness.update_with_clients(clients) {
            self.broadcast(&encode(&Message::Awareness(update)), None);
        }
    }

    /// The feed fell behind what the stream keeps (it was folded and trimmed while this process
    /// could not read it): what we lack is loaded from the store, merged, and sent to our
    /// peers; the feed starts again from there.
    async fn catch_up(&mut self) {
        match self.storage.reload(&self.context).await {
            Ok((stored, feed)) => {
                self.feed = feed;
                if self.storage.is_deleted() {
                    self.end(CloseReason::Deleted);
                    return;
                }
                let known = self.doc().transact().state_vector();
                let missing = stored.transact().encode_diff_v1(&known);
                match protocol::apply_bytes(self.doc(), &missing) {
                    Ok(Some(delta)) => {
                        let frame = encode(&protocol::update_message(delta));
                        self.broadcast(&frame, None);
                    }
                    Ok(None) => {}
                    Err(error) => {
                        tracing::error!(doc = %self.id, %error, "catching up with the store failed; closing the document");
                        self.end(CloseReason::Unavailable);
                    }
                }
            }
            Err(error) => {
                tracing::error!(doc = %self.id, error = %crate::error::chain(&error), "catching up with the store failed; closing the document");
                self.end(CloseReason::Unavailable);
            }
        }
    }
}
