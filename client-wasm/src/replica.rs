//! The browser's replica of one quire document: the yrs `Doc` (inside the `Awareness`, which owns
//! it), the y-websocket session state, and what changed since JavaScript last asked.
//!
//! Plain Rust, no `JsValue`: everything here runs and is tested natively. The protocol state
//! machine is in `sync.rs`, presence in `awareness.rs`; this file holds the document itself.

use std::sync::{Arc, Mutex, PoisonError};

use quire_model::{protocol, schema};
use yrs::sync::{Awareness, Clock};
use yrs::{Doc, Map, MapRef, Observable, Origin, Out, ReadTxn, Text, TextRef, Transact};

use crate::error::ClientError;
use crate::quill::{self, Op};

/// Origin of the transactions this replica makes itself, so the content observer can tell
/// local edits (Quill already shows them) from remote ones (Quill must be told).
const LOCAL: &str = "quire-local";

/// What one inbound frame (or a stored state) did, for the UI to act on.
#[derive(Debug, Default)]
pub struct Changes {
    /// Messages to send back on the same connection, in order.
    pub replies: Vec<Vec<u8>>,
    /// Whether the initial sync with the server has completed on this connection.
    pub synced: bool,
    /// How many sync step 2s (answers to our sync step 1s) the frame carried. The server
    /// answers in order, after everything sent before the question: an answer to a question
    /// asked after a change proves the server has that change.
    pub sync_answers: u32,
    /// The remote change to `content` as Quill ops, if there was one.
    pub content: Option<Vec<Op>>,
    pub title_changed: bool,
    pub awareness_changed: bool,
}

pub struct Replica {
    pub(crate) awareness: Awareness,
    pub(crate) text: TextRef,
    pub(crate) meta: MapRef,
    /// The wall clock, shared with the `Awareness` (the browser passes `Date.now`).
    pub(crate) clock: Arc<dyn Clock>,
    /// True once sync step 2 arrived since the last `start`.
    pub(crate) synced: bool,
    /// Remote `content` changes the observer saw and nobody has collected yet.
    remote_ops: RemoteOps,
}

/// A `Mutex` only because yrs's `sync` feature requires `Send + Sync` observers; the browser
/// has one thread, so it is never contended.
type RemoteOps = Arc<Mutex<Vec<Vec<Op>>>>;

impl Replica {
    /// A replica of an empty document with `doc`'s client id, reading time from `clock`
    /// (milliseconds since the epoch).
    pub fn new(doc: Doc, clock: impl Clock + 'static) -> Self {
        let remote_ops = RemoteOps::default();
        let (text, meta) = bind(&doc, &remote_ops);
        let clock: Arc<dyn Clock> = Arc::new(clock);
        let awareness_clock = Arc::clone(&clock);
        Replica {
            awareness: Awareness::with_clock(doc, move || awareness_clock.now()),
            text,
            meta,
            clock,
            synced: false,
            remote_ops,
        }
    }

    /// Puts `doc` in place of the replica's `Doc`, which it must already hold all of: the root
    /// types and the content observer move to it; presence states stay (the `Awareness` keeps
    /// them apart from its `Doc`). Remote changes not yet collected were made to the old `Doc`
    /// and are still reported.
    pub(crate) fn replace_doc(&mut self, doc: Doc) {
        (self.text, self.meta) = bind(&doc, &self.remote_ops);
        *self.awareness.doc_mut() = doc;
    }

    pub fn doc(&self) -> &Doc {
        self.awareness.doc()
    }

    pub fn client_id(&self) -> u64 {
        self.doc().client_id().get()
    }

    /// Applies a Quill delta typed by the local user in one transaction and returns the update
    /// message for the server, or `None` if the delta changed nothing. The update is what this
    /// transaction added (`encode_update_v1` on the transaction), not the whole document: a
    /// keystroke costs a few dozen bytes however long the document is.
    ///
    /// Encoding here rather than collecting `observe_update_v1` output: that observer runs the
    /// same encoder at commit, and would also fire for remote transactions that must then be
    /// kept out of the next keystroke. Neither is where a keystroke's time goes: replaying the
    /// automerge-paper trace (`cargo bench -p quire-client --bench replay`, and
    /// `tests/bench/replay/`), the encoding is under 1% of it, and yrs's walk from the start of
    /// the text to the retained position (it has no search markers, unlike Yjs) about 70%.
    ///
    /// `delta` is Quill's delta as JSON-like data (an array of ops or `{ops: [...]}`); it is
    /// validated completely before anything is applied.
    pub fn apply_quill_delta(&mut self, delta: &yrs::Any) -> Result<Option<Vec<u8>>, ClientError> {
        Ok(self.apply_ops(quill::parse(delta)?))
    }

    /// [`Replica::apply_quill_delta`] for ops already typed (the replay bench builds them).
    pub fn apply_ops(&mut self, ops: Vec<Op>) -> Option<Vec<u8>> {
        let mut txn = self.doc().transact_mut_with(LOCAL);
        quill::apply(&self.text, &mut txn, ops);
        update_frame(txn.encode_update_v1())
    }

    /// The whole body as Quill ops, for `quill.setContents` (Yjs's `ytext.toDelta()`).
    pub fn content_delta(&self) -> Vec<Op> {
        quill::ops_of_content(&self.doc().transact(), &self.text)
    }

    pub fn title(&self) -> Option<String> {
        title(&self.doc().transact(), &self.meta)
    }

    /// Sets the title; the update message for the server, or `None` if it was already that.
    pub fn set_title(&mut self, title: &str) -> Option<Vec<u8>> {
        if self.title().as_deref() == Some(title) {
            return None;
        }
        let mut txn = self.doc().transact_mut_with(LOCAL);
        self.meta.insert(&mut txn, schema::TITLE, title);
        update_frame(txn.encode_update_v1())
    }

    /// The whole document as one v1 update, for a local store (IndexedDB).
    pub fn encode_state(&self) -> Vec<u8> {
        protocol::replica_state(self.doc())
    }

    /// Applies a stored state (from [`Replica::encode_state`] or any v1 update). What it added
    /// comes back as an update message in `replies`: edits made offline in an earlier session
    /// reach the server if the connection is up (and through sync step 2 when it comes up).
    pub fn apply_state(&mut self, state: &[u8]) -> Result<Changes, ClientError> {
        let update = protocol::decode_update(state)?;
        let (mut changes, added) = self.apply_remote(vec![update])?;
        changes.replies.extend(added.and_then(update_frame));
        Ok(changes)
    }

    /// Applies remote updates as one transaction, so Quill gets one delta for the lot. Also
    /// returns the v1 update of what was new, if anything (the caller decides whether to send
    /// it on). If they wrote under our client id, the replica takes a new one
    /// (`client_id.rs`); `replies` then carries our presence under it.
    pub(crate) fn apply_remote(
        &mut self,
        updates: Vec<yrs::Update>,
    ) -> Result<(Changes, Option<Vec<u8>>), ClientError> {
        let mut changes = Changes {
            synced: self.synced,
            ..Changes::default()
        };
        if updates.is_empty() {
            return Ok((changes, None));
        }
        let title_before = self.title();
        let len_before = self.text.len(&self.doc().transact());
        let update = if updates.len() == 1 {
            updates.into_iter().next().expect("one update")
        } else {
            yrs::Update::merge_updates(updates)
        };
        let own_clock = self.own_clock();
        let outcome = protocol::apply_update(self.doc(), update);
        // Collect the observer's deltas even when applying failed part-way: they are stale
        // after this call either way.
        let mut deltas = std::mem::take(
            &mut *self
                .remote_ops
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        let added = outcome?;
        if self.own_clock() != own_clock {
            changes.replies.extend(self.take_new_client_id());
        }
        changes.content = match deltas.len() {
            0 => None,
            1 => deltas.pop(),
            // One transaction commits one event, so this is not expected. Should it happen,
            // composing Quill deltas is not done here: replace the whole body instead, which
            // is always right (Quill's extra final newline is past `len_before` and stays).
            _ => {
                let mut replace = Vec::new();
                if len_before > 0 {
                    replace.push(Op::Delete(len_before));
                }
                replace.extend(self.content_delta());
                Some(replace)
            }
        };
        changes.title_changed = self.title() != title_before;
        Ok((changes, added))
    }
}

/// `doc`'s root types, with the observer that reports remote changes to `content` into `sink`
/// (local edits are left out: Quill already shows them).
fn bind(doc: &Doc, sink: &RemoteOps) -> (TextRef, MapRef) {
    let text = doc.get_or_insert_text(schema::CONTENT);
    let meta = doc.get_or_insert_map(schema::META);
    let sink = Arc::clone(sink);
    let local = Origin::from(LOCAL);
    text.observe("quire-client", move |txn, event| {
        if txn.origin() == Some(&local) {
            return;
        }
        let ops = quill::ops_of_change(event.delta(txn));
        sink.lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(ops);
    });
    (text, meta)
}

fn title<T: ReadTxn>(txn: &T, meta: &MapRef) -> Option<String> {
    match meta.get(txn, schema::TITLE)? {
        Out::Any(yrs::Any::String(s)) => Some(s.to_string()),
        _ => None,
    }
}

/// The update message for a transaction's v1 update, `None` for an empty one (`[0, 0]`: no
/// blocks, no deletions).
fn update_frame(update: Vec<u8>) -> Option<Vec<u8>> {
    (update != [0, 0]).then(|| protocol::encode(&protocol::update_message(update)))
}
