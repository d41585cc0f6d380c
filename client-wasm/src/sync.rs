//! The y-websocket protocol as the browser end speaks it, the way the stock `y-websocket`
//! client does: on open, sync step 1 and our presence; answer step 1 with step 2 and an
//! awareness query with every state we know; "synced" once step 2 arrives; on close, forget
//! the other clients' presence. JavaScript only moves the bytes.

use quire_model::protocol;
use yrs::sync::{Message, SyncMessage};

use crate::error::ClientError;
use crate::replica::{Changes, Replica};

impl Replica {
    /// The messages to send when a connection opens (first time or reconnect), in order: sync
    /// step 1 (our state vector; the server answers with what we lack and its own step 1, whose
    /// answer carries our offline edits), then our presence if we have one.
    pub fn start(&mut self) -> Vec<Vec<u8>> {
        self.synced = false;
        self.outrun_departure();
        let mut messages = vec![protocol::encode(&protocol::sync_step1(self.doc()))];
        messages.extend(self.local_awareness_message());
        messages
    }

    /// A sync step 1 (our state vector) on its own: a question the server always answers
    /// (with what we lack, usually nothing), to prove the connection alive and to confirm that
    /// everything sent before it has arrived (see `Changes::sync_answers`).
    pub fn heartbeat(&self) -> Vec<u8> {
        protocol::encode(&protocol::sync_step1(self.doc()))
    }

    /// The connection closed: not synced any more, and the other clients' presence is stale
    /// (the server sends it again on the next connection). Whether presence changed.
    pub fn disconnected(&mut self) -> bool {
        self.synced = false;
        self.forget_remote_presence()
    }

    /// Handles one WebSocket frame from the server. All or nothing for malformed input: the
    /// frame is decoded completely (every message, every update inside) before anything is
    /// applied, so garbage is an error that changes nothing.
    pub fn receive(&mut self, frame: &[u8]) -> Result<Changes, ClientError> {
        let mut replies = Vec::new();
        let mut updates = Vec::new();
        let mut presence = Vec::new();
        let mut answers = 0;
        for message in protocol::decode_frame(frame)? {
            match message {
                Message::Sync(SyncMessage::SyncStep1(sv)) => {
                    replies.push(protocol::encode(&protocol::sync_step2(self.doc(), &sv)));
                }
                Message::Sync(SyncMessage::SyncStep2(update)) => {
                    updates.push(protocol::decode_update(&update)?);
                    answers += 1;
                }
                Message::Sync(SyncMessage::Update(update)) => {
                    updates.push(protocol::decode_update(&update)?);
                }
                Message::Awareness(update) => presence.push(update),
                Message::AwarenessQuery => replies.extend(self.all_awareness_message()),
                // quire decides access when the socket opens; a denial closes the socket.
                Message::Auth(_) => {}
                Message::Custom(tag, _) => {
                    return Err(quire_model::ProtocolError::Unsupported(tag).into())
                }
            }
        }
        // What a frame from the server added needs no forwarding: the server already has it.
        let (mut changes, _added) = self.apply_remote(updates)?;
        replies.append(&mut changes.replies);
        if answers > 0 {
            self.synced = true;
        }
        changes.synced = self.synced;
        changes.sync_answers = answers;
        for update in presence {
            let (changed, reply) = self.apply_presence(update);
            changes.awareness_changed |= changed;
            replies.extend(reply);
        }
        changes.replies = replies;
        Ok(changes)
    }
}
