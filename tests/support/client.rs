//! A native Yjs client: a yrs replica speaking the y-websocket protocol over a real socket.
//!
//! It behaves as `y-websocket`'s provider does: on connect it sends sync step 1, answers the
//! server's step 1 with step 2, applies every update, and sends each local edit as an update.
//! Test code only: the replica sits behind a std `Mutex` that is never held across `.await`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use quire_model::protocol::{self, Inbound};
use quire_model::schema::{self, CONTENT, META, TITLE};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use yrs::sync::{Awareness, Message};
use yrs::types::text::YChange;
use yrs::types::Attrs;
use yrs::{Doc, GetString, Map, MapRef, ReadTxn, Text, TextRef, Transact};

use crate::wait::wait_for;

#[derive(Default)]
struct Status {
    synced: bool,
    /// Sync step 2s received: answers to our step 1s (the server answers them in order).
    answers: usize,
    /// The reason of a "permission denied" auth message, if one came.
    denied: Option<String>,
    /// Close code and reason, once the connection ended (1006 = no close frame).
    closed: Option<(u16, String)>,
    /// The first frame from the server after which the replica held changes whose
    /// dependencies it lacked: a server must never send one.
    first_incomplete: Option<Vec<u8>>,
}

struct Shared {
    awareness: Awareness,
    status: Status,
}

pub struct Client {
    shared: Arc<Mutex<Shared>>,
    out: mpsc::UnboundedSender<WsMessage>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Client {
    /// Connects a fresh, empty replica.
    pub async fn connect(url: &str) -> Client {
        Self::connect_with(url, schema::new_doc()).await
    }

    /// Connects and waits until the initial sync is done.
    pub async fn connect_synced(url: &str) -> Client {
        let client = Self::connect(url).await;
        client.wait_synced().await;
        client
    }

    /// Connects an existing replica (e.g. one that edited while disconnected).
    pub async fn connect_with(url: &str, doc: Doc) -> Client {
        let (socket, _) = tokio_tungstenite::connect_async(url)
            .await
            .unwrap_or_else(|e| panic!("connect {url}: {e}"));
        let (mut sink, mut stream) = socket.split();
        let shared = Arc::new(Mutex::new(Shared {
            awareness: Awareness::new(doc),
            status: Status::default(),
        }));
        let (out, mut outgoing) = mpsc::unbounded_channel::<WsMessage>();
        let writer = tokio::spawn(async move {
            while let Some(message) = outgoing.recv().await {
                if sink.send(message).await.is_err() {
                    break;
                }
            }
        });
        let reader = {
            let shared = shared.clone();
            let out = out.clone();
            tokio::spawn(async move {
                let mut closed = (1006, String::new());
                while let Some(frame) = stream.next().await {
                    match frame {
                        Ok(WsMessage::Binary(bytes)) => {
                            let mut shared = lock(&shared);
                            for reply in handle_frame(&mut shared, &bytes) {
                                let _ = out.send(WsMessage::Binary(protocol::encode(&reply).into()));
                            }
                        }
                        Ok(WsMessage::Close(Some(frame))) => {
                            closed = (u16::from(frame.code), frame.reason.to_string());
                        }
                        Ok(_) => {}
                        Err(_) => break,
                    }
                }
                lock(&shared).status.closed = Some(closed);
            })
        };
        let client = Client {
            shared,
            out,
            tasks: vec![reader, writer],
        };
        let step1 = protocol::sync_step1(client.lock().awareness.doc());
        client.send(&step1);
        client
    }

    fn lock(&self) -> MutexGuard<'_, Shared> {
        lock(&self.shared)
    }

    /// Sends a sync step 1; the server answers it after everything sent before it.
    pub fn ask(&self) {
        let step1 = protocol::sync_step1(self.lock().awareness.doc());
        self.send(&step1);
    }

    /// The reason of the "permission denied" message the server sent, if it sent one.
    pub fn denied(&self) -> Option<String> {
        self.lock().status.denied.clone()
    }

    /// How many of our sync step 1s were answered.
    pub fn answers(&self) -> usize {
        self.lock().status.answers
    }

    /// Waits until `n` sync step 1s were answered.
    pub async fn wait_answers(&self, n: usize) {
        wait_for(Duration::from_secs(10), &format!("{n} answers to sync step 1"), || self.answers() >= n).await;
    }

    pub async fn wait_synced(&self) {
        wait_for(Duration::from_secs(10), "initial sync", || self.lock().status.synced).await;
    }

    /// Waits until the replica's text equals `expected`.
    pub async fn wait_text(&self, expected: &str) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while self.text() != expected {
            if tokio::time::Instant::now() >= deadline {
                panic!(
                    "timed out waiting for the text\n expected: {}\n   actual: {}",
                    abbreviate(expected),
                    abbreviate(&self.text())
                );
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Waits until this replica's content (text, formatting) and title equal `other`'s.
    pub async fn wait_same_as(&self, other: &Client) {
        wait_for(Duration::from_secs(10), "replicas to hold the same content and title", || {
            self.delta() == other.delta() && self.title() == other.title()
        })
        .await;
    }

    /// Length of the text in UTF-16 code units.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn len(&self) -> u32 {
        let shared = self.lock();
        let doc = shared.awareness.doc();
        let len = doc.get_or_insert_text(CONTENT).len(&doc.transact());
        len
    }

    /// Waits until the server closed this connection; returns the close code and reason.
    pub async fn wait_closed(&self) -> (u16, String) {
        wait_for(Duration::from_secs(10), "the server to close the connection", || {
            self.lock().status.closed.is_some()
        })
        .await;
        self.closed().unwrap()
    }

    pub fn closed(&self) -> Option<(u16, String)> {
        self.lock().status.closed.clone()
    }

    pub fn send(&self, message: &Message) {
        self.send_raw(protocol::encode(message));
    }

    /// Sends arbitrary bytes as one binary frame.
    pub fn send_raw(&self, bytes: Vec<u8>) {
        let _ = self.out.send(WsMessage::Binary(bytes.into()));
    }

    pub fn text(&self) -> String {
        let shared = self.lock();
        let doc = shared.awareness.doc();
        let text = doc.get_or_insert_text(CONTENT).get_string(&doc.transact());
        text
    }

    /// The rich text as a debug rendering of its delta: text runs with their attributes.
    pub fn delta(&self) -> String {
        let shared = self.lock();
        let doc = shared.awareness.doc();
        let text = doc.get_or_insert_text(CONTENT);
        format!("{:?}", text.diff(&doc.transact(), YChange::identity))
    }

    /// The first frame from the server that left this replica with changes whose dependencies
    /// it lacks, if one did.
    pub fn first_incomplete(&self) -> Option<Vec<u8>> {
        self.lock().status.first_incomplete.clone()
    }

    /// The replica's whole state as one v1 update.
    pub fn state(&self) -> Vec<u8> {
        protocol::full_state(self.lock().awareness.doc())
    }

    pub fn title(&self) -> Option<String> {
        let shared = self.lock();
        let doc = shared.awareness.doc();
        let meta = doc.get_or_insert_map(META);
        let txn = doc.transact();
        meta.get(&txn, TITLE).map(|v| v.to_string(&txn))
    }

    /// Edits the replica and sends the edit as one update, as an editor does per keystroke.
    /// The root types are fetched before the transaction opens: yrs's `get_or_insert_*` open
    /// a transaction of their own and would wait forever on ours.
    pub fn edit(&self, f: impl FnOnce(&TextRef, &MapRef, &mut yrs::TransactionMut)) {
        let update = {
            let shared = self.lock();
            let doc = shared.awareness.doc();
            let (text, meta) = (doc.get_or_insert_text(CONTENT), doc.get_or_insert_map(META));
            let mut txn = doc.transact_mut();
            f(&text, &meta, &mut txn);
            txn.encode_update_v1()
        };
        self.send(&protocol::update_message(update));
    }

    pub fn insert(&self, index: u32, s: &str) {
        self.edit(|text, _, txn| text.insert(txn, index, s));
    }

    /// Appends at the end (UTF-16 length, as every quire Doc counts).
    pub fn push(&self, s: &str) {
        self.edit(|text, _, txn| {
            let end = text.len(txn);
            text.insert(txn, end, s);
        });
    }

    pub fn format(&self, index: u32, len: u32, attrs: Attrs) {
        self.edit(|text, _, txn| text.format(txn, index, len, attrs));
    }

    pub fn set_title(&self, title: &str) {
        self.edit(|_, meta, txn| {
            meta.insert(txn, TITLE, title);
        });
    }

    /// Announces this client's presence (a JSON object) to the others.
    pub fn set_presence(&self, json: &str) {
        let message = {
            let mut shared = self.lock();
            shared.awareness.set_local_state_raw(json);
            let me = shared.awareness.client_id();
            Message::Awareness(shared.awareness.update_with_clients([me]).unwrap())
        };
        self.send(&message);
    }

    /// Presence states of the other clients this replica knows: client id → JSON.
    pub fn presence(&self) -> HashMap<u64, String> {
        let shared = self.lock();
        let me = shared.awareness.client_id();
        shared
            .awareness
            .iter()
            .filter(|(id, _)| *id != me)
            .filter_map(|(id, state)| Some((id.get(), state.data.as_deref()?.to_owned())))
            .collect()
    }

    pub fn client_id(&self) -> u64 {
        self.lock().awareness.client_id().get()
    }

    /// Says goodbye: everything sent so far goes out first, then a close frame; returns once
    /// the server has answered the close.
    pub async fn close(self) {
        let _ = self.out.send(WsMessage::Close(None));
        let _ = self.wait_closed_quietly().await;
    }

    async fn wait_closed_quietly(&self) -> bool {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while self.lock().status.closed.is_none() {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        true
    }

    /// Closes the socket without goodbye and hands back the replica, edits and all.
    pub fn disconnect(self) -> Doc {
        for task in &self.tasks {
            task.abort();
        }
        let doc = self.lock().awareness.doc().clone();
        doc
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// A long text shortened for a failure message.
fn abbreviate(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    if chars.len() <= 120 {
        return format!("{text:?}");
    }
    let head: String = chars[..60].iter().collect();
    let tail: String = chars[chars.len() - 60..].iter().collect();
    format!("{head:?} … {tail:?} ({} chars)", chars.len())
}

fn lock(shared: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    shared.lock().unwrap_or_else(|p| p.into_inner())
}

/// Applies one frame from the server; returns the replies it calls for.
fn handle_frame(shared: &mut Shared, frame: &[u8]) -> Vec<Message> {
    for message in protocol::decode_frame(frame).expect("the server sent a malformed frame") {
        match message {
            Message::Sync(yrs::sync::SyncMessage::SyncStep2(_)) => shared.status.answers += 1,
            Message::Auth(Some(reason)) => shared.status.denied = Some(reason),
            _ => {}
        }
    }
    let messages = protocol::decode_inbound(frame).expect("the server sent a malformed frame");
    let mut replies = Vec::new();
    for message in messages {
        match message {
            Inbound::StateVector(sv) => replies.push(protocol::sync_step2(shared.awareness.doc(), &sv)),
            Inbound::Update(update) | Inbound::Answer(update) => {
                protocol::apply_update(shared.awareness.doc(), update).expect("server update applies");
                if shared.status.first_incomplete.is_none() && shared.awareness.doc().transact().has_missing_updates() {
                    shared.status.first_incomplete = Some(frame.to_vec());
                }
                // The server's step 2 follows its step 1 (y-websocket order): after it, we are
                // in sync. Live updates keep that true.
                shared.status.synced = true;
            }
            Inbound::Awareness(update) => {
                shared.awareness.apply_update(update).expect("awareness applies");
            }
            Inbound::AwarenessQuery | Inbound::Auth => {}
        }
    }
    replies
}
