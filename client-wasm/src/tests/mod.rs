//! Replica-level tests with fixed client ids and a settable clock. Every peer here also keeps
//! a model of what its Quill editor would show, built only from the deltas the replica hands
//! out (local edits as typed, remote changes as reported); after every step that model must
//! equal the document: the remote deltas are exactly what Quill needs.
//!
//! This file is the harness (the JavaScript view, the Quill model, peers); the tests are in
//! `editing` (content and titles), `presence` (carets, renewal, reconnects), `sync` (stored
//! state, heartbeats), `robustness` (garbage, random concurrent edits) and `client_id`
//! (another client writing under ours).

mod client_id;
mod editing;
mod presence;
mod robustness;
mod sync;

use std::cell::Cell;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Once};

use quire_model::schema::{doc_with_client_id, CONTENT};
use serde_json::{json, Value};
use yrs::{Any, IndexScope, StickyIndex};

use crate::error::ClientError;
use crate::quill::Op;
use crate::replica::{Changes, Replica};
use crate::OUTDATED_MS;

/// JSON as JavaScript hands it over: `js.rs` reads a JavaScript value into the same `Any`.
fn any(json: &Value) -> Any {
    serde_json::from_value(json.clone()).unwrap()
}

/// Ops as the JSON JavaScript receives (`js.rs` writes the same fields).
fn json(ops: &[Op]) -> Vec<Value> {
    let value = |any: &Any| serde_json::to_value(any).unwrap();
    ops.iter()
        .map(|op| {
            let (kind, n, attrs) = match op {
                Op::Insert(v, attrs) => ("insert", value(v), Some(attrs)),
                Op::Retain(n, attrs) => ("retain", json!(n), Some(attrs)),
                Op::Delete(n) => ("delete", json!(n), None),
            };
            let mut op = json!({ kind: n });
            if let Some(attrs) = attrs.filter(|a| !a.is_empty()) {
                let attrs: serde_json::Map<String, Value> = attrs
                    .iter()
                    .map(|(k, v)| (k.to_string(), value(v)))
                    .collect();
                op["attributes"] = Value::Object(attrs);
            }
            op
        })
        .collect()
}

/// What JavaScript sees of a replica, as JSON, so tests read like the browser's calls. The
/// JavaScript side of these shapes is `js.rs`; `tests/node/` checks it against npm Yjs.
trait AsJs {
    fn content_json(&self) -> Vec<Value>;
    /// `setLocalState`: `null` clears.
    fn set_state_json(&mut self, state: &Value) -> Vec<u8>;
    fn local_json(&self) -> Option<Value>;
    fn states_json(&self) -> BTreeMap<String, Value>;
    /// `relativePositionFromIndex`, in `Y.relativePositionToJSON` form.
    fn position_json(&self, index: u32, assoc: i32) -> Value;
    fn index_json(&self, position: &Value) -> Result<Option<u32>, ClientError>;
}

impl AsJs for Replica {
    fn content_json(&self) -> Vec<Value> {
        json(&self.content_delta())
    }

    fn set_state_json(&mut self, state: &Value) -> Vec<u8> {
        self.set_local_state((!state.is_null()).then(|| state.to_string()))
    }

    fn local_json(&self) -> Option<Value> {
        serde_json::from_str(&self.local_state()?).ok()
    }

    fn states_json(&self) -> BTreeMap<String, Value> {
        self.awareness_states()
            .into_iter()
            .filter_map(|(client, state)| {
                Some((client.to_string(), serde_json::from_str(&state).ok()?))
            })
            .collect()
    }

    fn position_json(&self, index: u32, assoc: i32) -> Value {
        let position: StickyIndex = self.relative_position(index, assoc);
        let assoc = position.assoc as i8;
        match position.scope() {
            IndexScope::Relative(id) => json!({"tname": CONTENT, "item": id, "assoc": assoc}),
            IndexScope::Nested(id) => json!({"type": id, "assoc": assoc}),
            IndexScope::Root(name) => json!({"tname": &**name, "assoc": assoc}),
        }
    }

    fn index_json(&self, position: &Value) -> Result<Option<u32>, ClientError> {
        let position = crate::awareness::sticky_index(&any(position))?;
        Ok(self.index_of(&position))
    }
}

/// One unit of a Quill document (a UTF-16 code unit or an embed) with its formats.
#[derive(Debug, Clone, PartialEq)]
struct Unit {
    unit: Value,
    attrs: BTreeMap<String, Value>,
}

/// A model of the editor: the document as a list of units, changed only by Quill deltas.
#[derive(Debug, Default, PartialEq)]
struct Quill(Vec<Unit>);

impl Quill {
    fn apply(&mut self, ops: &[Value]) {
        let mut at = 0;
        for op in ops {
            let attrs = op.get("attributes").and_then(Value::as_object);
            if let Some(n) = op.get("retain").and_then(Value::as_u64) {
                for unit in &mut self.0[at..at + n as usize] {
                    for (k, v) in attrs.into_iter().flatten() {
                        if v.is_null() {
                            unit.attrs.remove(k);
                        } else {
                            unit.attrs.insert(k.clone(), v.clone());
                        }
                    }
                }
                at += n as usize;
            } else if let Some(n) = op.get("delete").and_then(Value::as_u64) {
                self.0.drain(at..at + n as usize);
            } else {
                let attrs: BTreeMap<String, Value> = attrs
                    .into_iter()
                    .flatten()
                    .filter(|(_, v)| !v.is_null())
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                let units: Vec<Value> = match &op["insert"] {
                    Value::String(s) => s.encode_utf16().map(Value::from).collect(),
                    embed => vec![embed.clone()],
                };
                for unit in units {
                    self.0.insert(
                        at,
                        Unit {
                            unit,
                            attrs: attrs.clone(),
                        },
                    );
                    at += 1;
                }
            }
        }
    }

    fn of(ops: &[Value]) -> Quill {
        let mut quill = Quill::default();
        quill.apply(ops);
        quill
    }
}

type TestClock = Arc<AtomicU64>;

struct Peer {
    replica: Replica,
    quill: Quill,
    clock: TestClock,
}

impl Peer {
    fn new(client_id: u64) -> Peer {
        let clock = Arc::new(AtomicU64::new(1_000_000));
        let time = Arc::clone(&clock);
        let replica = Replica::new(doc_with_client_id(client_id), move || {
            time.load(Ordering::SeqCst)
        });
        Peer {
            replica,
            quill: Quill::default(),
            clock,
        }
    }

    /// Types a Quill delta, as the editor would report it; the message for the others.
    fn edit(&mut self, ops: Value) -> Vec<u8> {
        self.quill.apply(ops.as_array().unwrap());
        let message = self
            .replica
            .apply_quill_delta(&any(&ops))
            .unwrap()
            .expect("a change");
        self.check();
        message
    }

    fn receive(&mut self, frame: &[u8]) -> Changes {
        let changes = self.replica.receive(frame).unwrap();
        if let Some(ops) = &changes.content {
            self.quill.apply(&json(ops));
        }
        self.check();
        changes
    }

    fn check(&self) {
        assert_eq!(
            self.quill,
            Quill::of(&self.replica.content_json()),
            "the editor diverged from the document"
        );
    }

    fn text(&self) -> String {
        self.replica
            .content_json()
            .iter()
            .filter_map(|op| op["insert"].as_str())
            .collect()
    }

    fn advance(&self, ms: u64) {
        self.clock.fetch_add(ms, Ordering::SeqCst);
    }
}

/// Connects two peers directly (each plays the server for the other) until both are quiet.
fn connect(a: &mut Peer, b: &mut Peer) {
    let mut to_b = a.replica.start();
    let mut to_a = b.replica.start();
    while !(to_a.is_empty() && to_b.is_empty()) {
        for frame in std::mem::take(&mut to_b) {
            to_a.extend(b.receive(&frame).replies);
        }
        for frame in std::mem::take(&mut to_a) {
            to_b.extend(a.receive(&frame).replies);
        }
    }
}
