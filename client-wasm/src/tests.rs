//! Replica-level tests with fixed client ids and a settable clock. Every peer here also keeps
//! a model of what its Quill editor would show, built only from the deltas the replica hands
//! out (local edits as typed, remote changes as reported); after every step that model must
//! equal the document: the remote deltas are exactly what Quill needs.

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

#[test]
fn offline_edits_converge_with_cjk_emoji_and_formats() {
    let mut a = Peer::new(1);
    let mut b = Peer::new(2);
    a.edit(json!([{"insert": "文档 😀 one"}, {"insert": "\n", "attributes": {"header": 1}}]));
    a.edit(json!([{"retain": 3}, {"retain": 2, "attributes": {"bold": true}}]));
    b.edit(json!([{"insert": "👋🏽 两 two\n"}]));
    b.edit(json!([{"retain": 2}, {"delete": 2}]));
    connect(&mut a, &mut b);
    assert!(a.replica.synced && b.replica.synced);
    assert_eq!(a.replica.content_json(), b.replica.content_json());
    assert_eq!(a.text().encode_utf16().count(), 10 + 11 - 2);
    assert!(
        a.text().contains("文档 😀 one\n") && a.text().contains("👋 两 two\n"),
        "{}",
        a.text()
    );
    assert!(a
        .replica
        .content_json()
        .contains(&json!({"insert": "😀", "attributes": {"bold": true}})));

    // Live edits both ways, each delivered as the server would relay it.
    let m = a.edit(json!([{"retain": 1}, {"insert": "件", "attributes": {"italic": true}}]));
    b.receive(&m);
    let m = b.edit(json!([{"retain": 4}, {"retain": 2, "attributes": {"bold": null, "underline": true}}, {"delete": 1}]));
    a.receive(&m);
    assert_eq!(a.replica.content_json(), b.replica.content_json());
    assert_eq!(
        a.replica.encode_state().len(),
        a.replica.encode_state().len()
    );
}

#[test]
fn remote_changes_arrive_as_the_delta_quill_applies() {
    let mut a = Peer::new(1);
    let mut b = Peer::new(2);
    connect(&mut a, &mut b);
    b.receive(&a.edit(json!([{"insert": "ab😀cd"}])));
    let changes =
        b.receive(&a.edit(json!([{"retain": 2}, {"retain": 2, "attributes": {"bold": true}}])));
    assert_eq!(
        changes.content.as_deref().map(json),
        Some(vec![
            json!({"retain": 2}),
            json!({"retain": 2, "attributes": {"bold": true}})
        ])
    );
    let changes = b.receive(&a.edit(json!([{"retain": 4}, {"delete": 1}, {"insert": "X"}])));
    assert_eq!(
        changes.content.as_deref().map(json),
        Some(vec![
            json!({"retain": 4}),
            json!({"delete": 1}),
            json!({"insert": "X"})
        ])
    );
    let changes =
        b.receive(&a.edit(json!([{"retain": 2}, {"retain": 2, "attributes": {"bold": null}}])));
    // yrs reports the cleared format over the whole run it rewrote (the unformatted "Xd" too);
    // to Quill that is the same change, which the editor model of `b` checks.
    assert_eq!(
        json(changes.content.as_ref().unwrap())[0],
        json!({"retain": 2})
    );
    assert_eq!(b.replica.content_json(), vec![json!({"insert": "ab😀Xd"})]);
    assert!(!changes.title_changed && !changes.awareness_changed);
}

#[test]
fn a_keystroke_is_a_small_update_however_long_the_document() {
    let mut a = Peer::new(1);
    let long: String = "lorem ipsum dolor sit amet ".repeat(400);
    a.edit(json!([{"insert": long}]));
    let at = long.len() / 2;
    let keystroke = a.edit(json!([{"retain": at}, {"insert": "x"}]));
    assert!(
        keystroke.len() < 40,
        "a keystroke update is {} bytes",
        keystroke.len()
    );
    assert_eq!(
        a.replica
            .apply_quill_delta(&any(&json!([{"retain": 5}])))
            .unwrap(),
        None,
        "a bare retain changes nothing"
    );
}

/// A keystroke's message is that transaction's update and nothing else: what arrived from the
/// server just before must not ride along (the server would get its own edits back, and a
/// peer that kept only our messages would hold edits it never asked for).
#[test]
fn a_keystroke_message_carries_only_that_keystroke() {
    let mut a = Peer::new(1);
    let mut b = Peer::new(2);
    connect(&mut a, &mut b);
    b.receive(&a.edit(json!([{"insert": "shared text, long enough to matter"}])));
    a.receive(&b.edit(json!([{"retain": 6}, {"insert": " and remote"}, {"delete": 5}])));
    let keystroke = a.edit(json!([{"retain": 1}, {"insert": "x"}]));
    let update = match &quire_model::protocol::decode_frame(&keystroke).unwrap()[..] {
        [yrs::sync::Message::Sync(yrs::sync::SyncMessage::Update(update))] => update.clone(),
        other => panic!("not one update message: {other:?}"),
    };
    let update = quire_model::protocol::decode_update(&update).unwrap();
    // a typed 34 characters before: the keystroke inserts a's 35th and nothing of b's.
    let mut typed = yrs::IdSet::new();
    typed.insert(yrs::ID::new(yrs::ClientID::new(1), 34), 1);
    assert_eq!(
        update.insertions(true),
        typed,
        "b's insert leaked into a's keystroke"
    );
    assert!(
        update.delete_set().is_empty(),
        "b's delete leaked into a's keystroke"
    );
    // And it is enough: a peer that has everything else converges on it.
    b.receive(&keystroke);
    assert_eq!(a.replica.content_json(), b.replica.content_json());
}

#[test]
fn the_last_line_of_quill_takes_line_formats() {
    let mut a = Peer::new(1);
    let mut b = Peer::new(2);
    connect(&mut a, &mut b);
    b.receive(&a.edit(json!([{"insert": "Title"}])));
    // Quill shows "Title\n" but the YText holds "Title": the header retain runs past the end.
    let m = a
        .replica
        .apply_quill_delta(&any(
            &json!([{"retain": 5}, {"retain": 1, "attributes": {"header": 1}}]),
        ))
        .unwrap()
        .unwrap();
    let changes = b.receive(&m);
    assert_eq!(
        changes.content.as_deref().map(json),
        Some(vec![
            json!({"retain": 5}),
            json!({"insert": "\n", "attributes": {"header": 1}})
        ])
    );
}

#[test]
fn titles_travel() {
    let mut a = Peer::new(1);
    let mut b = Peer::new(2);
    connect(&mut a, &mut b);
    assert_eq!(b.replica.title(), None);
    let m = a.replica.set_title("计划 📅").unwrap();
    assert_eq!(
        a.replica.set_title("计划 📅"),
        None,
        "an unchanged title sends nothing"
    );
    let changes = b.receive(&m);
    assert!(changes.title_changed && changes.content.is_none());
    assert_eq!(b.replica.title().as_deref(), Some("计划 📅"));
}

fn presence(name: &str, anchor: Value, head: Value) -> Value {
    json!({"user": {"name": name, "color": "#30bced"}, "cursor": {"anchor": anchor, "head": head}})
}

#[test]
fn presence_round_trips_with_cursors() {
    let mut a = Peer::new(1);
    let mut b = Peer::new(2);
    a.edit(json!([{"insert": "hello 世界"}]));
    connect(&mut a, &mut b);
    let state = presence(
        "Ann",
        a.replica.position_json(6, 0),
        a.replica.position_json(8, 0),
    );
    let changes = b.receive(&a.replica.set_state_json(&state));
    assert!(changes.awareness_changed);
    assert_eq!(b.replica.states_json()["1"], state);
    assert_eq!(a.replica.local_json(), Some(state.clone()));
    // The cursor follows its characters through an insert before it.
    b.receive(&a.edit(json!([{"insert": ">> "}])));
    assert_eq!(
        b.replica.index_json(&state["cursor"]["anchor"]).unwrap(),
        Some(9)
    );
    assert_eq!(
        b.replica.index_json(&state["cursor"]["head"]).unwrap(),
        Some(11)
    );
    // Renewing an unchanged state is not a change; clearing it is.
    assert!(
        !b.receive(&a.replica.set_state_json(&state))
            .awareness_changed
    );
    assert!(
        b.receive(&a.replica.set_state_json(&Value::Null))
            .awareness_changed
    );
    assert!(!b.replica.states_json().contains_key("1"));
}

#[test]
fn relative_positions_have_the_yjs_json_form() {
    let mut a = Peer::new(7);
    assert_eq!(
        a.replica.position_json(0, 0),
        json!({"tname": "content", "assoc": 0}),
        "empty text: the type"
    );
    a.edit(json!([{"insert": "a😀b"}]));
    assert_eq!(
        a.replica.position_json(1, 0),
        json!({"tname": "content", "item": {"client": 7, "clock": 1}, "assoc": 0})
    );
    assert_eq!(
        a.replica.position_json(3, -1),
        json!({"tname": "content", "item": {"client": 7, "clock": 2}, "assoc": -1})
    );
    assert_eq!(
        a.replica.position_json(4, 0),
        json!({"tname": "content", "assoc": 0}),
        "the end: the type"
    );
    assert_eq!(
        a.replica.position_json(99, 0),
        json!({"tname": "content", "assoc": 0}),
        "past the end: clamped"
    );
    for (index, assoc) in [(0, 0), (1, 0), (3, 0), (4, 0), (1, -1), (4, -1)] {
        let position = a.replica.position_json(index, assoc);
        assert_eq!(
            a.replica.index_json(&position).unwrap(),
            Some(index),
            "{position}"
        );
    }
    // The form JSON.stringify gives a Yjs RelativePosition object (null fields) is accepted too.
    let stringified =
        json!({"type": null, "tname": null, "item": {"client": 7, "clock": 1}, "assoc": 0});
    assert_eq!(a.replica.index_json(&stringified).unwrap(), Some(1));
    // Unknown to this replica (yet): no index. Another type: no index.
    assert_eq!(
        a.replica
            .index_json(&json!({"item": {"client": 99, "clock": 0}}))
            .unwrap(),
        None
    );
    assert_eq!(
        a.replica
            .index_json(&json!({"tname": "meta", "assoc": 0}))
            .unwrap(),
        None
    );
}

#[test]
fn presence_is_renewed_and_times_out() {
    let mut a = Peer::new(1);
    let mut b = Peer::new(2);
    connect(&mut a, &mut b);
    b.receive(&a.replica.set_state_json(&json!({"user": {"name": "Ann"}})));
    a.advance(OUTDATED_MS / 2 - 1);
    assert_eq!(a.replica.tick().0.len(), 0, "not yet due");
    a.advance(1);
    let (renewal, _) = a.replica.tick();
    assert_eq!(renewal.len(), 1);
    b.advance(OUTDATED_MS - 1);
    assert!(!b.replica.tick().1);
    assert!(
        !b.receive(&renewal[0]).awareness_changed,
        "a renewal is not a change"
    );
    b.advance(OUTDATED_MS - 1);
    assert!(!b.replica.tick().1, "renewed: still there");
    b.advance(1);
    assert!(b.replica.tick().1, "timed out");
    assert!(b.replica.states_json().is_empty());
}

#[test]
fn reconnecting_resyncs_and_reannounces() {
    let mut a = Peer::new(1);
    let mut b = Peer::new(2);
    let state = json!({"user": {"name": "Ann"}});
    a.replica.set_state_json(&state);
    connect(&mut a, &mut b);
    assert_eq!(b.replica.states_json()["1"], state);
    assert!(b.replica.disconnected() && !b.replica.synced);
    assert!(b.replica.states_json().is_empty());
    b.edit(json!([{"insert": "offline"}]));
    let opening = a.replica.start();
    assert_eq!(opening.len(), 2, "sync step 1 and our presence");
    assert!(!a.replica.synced);
    connect(&mut a, &mut b);
    assert_eq!(a.text(), "offline");
    assert_eq!(b.replica.states_json()["1"], state);
}

#[test]
fn a_peer_declaring_us_gone_gets_our_state_back() {
    let mut a = Peer::new(1);
    let mut b = Peer::new(2);
    a.replica.set_state_json(&json!({"user": {"name": "Ann"}}));
    connect(&mut a, &mut b);
    // b's view of a goes stale and b says so (as a server does when a connection drops).
    b.replica.awareness.remove_state(yrs::ClientID::new(1));
    let update = b
        .replica
        .awareness
        .update_with_clients([yrs::ClientID::new(1)])
        .unwrap();
    let gone = quire_model::protocol::encode(&yrs::sync::Message::Awareness(update));
    let changes = a.receive(&gone);
    assert_eq!(
        changes.replies.len(),
        1,
        "a answers with its state at a higher clock"
    );
    assert!(b.receive(&changes.replies[0]).awareness_changed);
    assert!(b.replica.states_json().contains_key("1"));
}

#[test]
fn stored_state_loads_and_is_offered_to_the_server() {
    let mut a = Peer::new(1);
    a.edit(json!([{"insert": "saved "}, {"insert": "bold", "attributes": {"bold": true}}]));
    a.replica.set_title("t");
    let mut b = Peer::new(2);
    let changes = b.replica.apply_state(&a.replica.encode_state()).unwrap();
    b.quill.apply(&json(changes.content.as_deref().unwrap()));
    b.check();
    assert!(changes.title_changed);
    assert_eq!(changes.replies.len(), 1, "what was new goes to the server");
    let again = b.replica.apply_state(&a.replica.encode_state()).unwrap();
    assert!(again.replies.is_empty() && again.content.is_none());
}

thread_local! {
    static PANICS: Cell<usize> = const { Cell::new(0) };
}

/// Counts panics on this thread, including the ones `catch_unwind` in quire-model hides: in
/// the browser build every one of them would abort the module.
fn count_panics() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            // yrs's `ClientID::new` debug-asserts that an id fits 53 bits; release builds (the
            // browser's included) compile it out, so a huge id in garbage is no abort there.
            let message = info
                .payload()
                .downcast_ref::<&str>()
                .copied()
                .unwrap_or_default();
            if !message.contains("Self::MASK") {
                PANICS.with(|p| p.set(p.get() + 1));
            }
            default(info);
        }));
    });
}

#[test]
fn garbage_is_an_error_and_changes_nothing() {
    count_panics();
    let mut a = Peer::new(1);
    let mut b = Peer::new(2);
    a.replica.set_state_json(&json!({"user": {"name": "Ann"}}));
    let mut frames = a.replica.start();
    frames.push(a.edit(json!([{"insert": "文档😀", "attributes": {"bold": true}}, {"insert": "\n", "attributes": {"header": 2}}])));
    let first = a.replica.encode_state();
    frames.push(a.edit(json!([{"retain": 1}, {"delete": 1}])));
    frames.push(a.edit(
        json!([{"retain": 3}, {"retain": 1, "attributes": {"header": null}}, {"insert": "!"}]),
    ));
    frames.push(a.replica.set_title("x").unwrap());
    let state = a.replica.encode_state();
    let before = b.replica.encode_state();
    for garbage in [
        &[][..],
        &[0xff],
        &[0, 0],
        &[0, 1, 0xff, 0xff, 0xff],
        &[0, 2, 5, 1, 2, 3],
        &[9, 1, 0],
        &[1, 0x80],
    ] {
        assert!(
            b.replica.receive(garbage).is_err(),
            "{garbage:?} was accepted"
        );
        assert!(b.replica.apply_state(garbage).is_err() || garbage == [0, 0]);
    }
    // Mutated real messages, from a printed, replayable seed.
    let mut next = rng("garbage");
    let (mut refused, mut accepted) = (0, 0);
    for _ in 0..3000 {
        let mut frame = frames[next() as usize % frames.len()].clone();
        for _ in 0..1 + next() % 3 {
            let i = next() as usize % frame.len();
            frame[i] = next() as u8;
        }
        if next() & 3 == 0 {
            frame.truncate(next() as usize % frame.len());
        }
        let mut fresh = Peer::new(3);
        // Half the time against a replica that holds the edits the later frames build on.
        if next() & 1 == 0 {
            fresh.replica.apply_state(&first).unwrap();
        }
        match fresh.replica.receive(&frame) {
            Ok(_) => accepted += 1,
            Err(_) => refused += 1,
        }
        let _ = fresh.replica.apply_state(&frame);
        let _ = fresh.replica.content_json();
    }
    println!("mutated frames: {refused} refused, {accepted} accepted");
    assert_eq!(
        PANICS.with(Cell::get),
        0,
        "yrs panicked on garbage: the browser module would abort"
    );
    assert_eq!(b.replica.encode_state(), before);
    assert!(b.replica.apply_state(&state).is_ok());

    let too_big = json!({"item": {"client": 1u64 << 60, "clock": 0}});
    assert!(
        b.replica.index_json(&too_big).is_err(),
        "not a JavaScript number: refused, not asserted on"
    );
    assert!(b.replica.index_json(&json!({"item": "x"})).is_err());
    assert!(b.replica.index_json(&json!([1, 2])).is_err());
    assert!(b.replica.index_json(&json!({"bogus": 1})).is_err());
    assert!(b
        .replica
        .apply_quill_delta(&any(&json!([{"delete": -1}])))
        .is_err());
}

/// A tiny seeded generator (xorshift64), so failures replay from the printed seed.
fn rng(name: &str) -> impl FnMut() -> u64 {
    let seed = std::env::var("QUIRE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_u64);
    println!("{name} seed: QUIRE_SEED={seed}");
    let mut state = seed | 1;
    move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    }
}

#[test]
fn random_quill_edits_converge_and_never_panic() {
    random_edits(false);
}

/// Found by the test above when positions may fall inside a surrogate pair (Quill never sends
/// those: a caret cannot sit inside a character): with yrs 0.28, a format whose boundary
/// splits a pair leaves U+FFFD on some replicas and the emoji on others, depending on the
/// order updates arrive in. Inserts and deletes at such positions converge.
#[test]
#[ignore = "yrs 0.28 diverges on formats that split a surrogate pair; run with --ignored"]
fn formats_splitting_surrogate_pairs_converge() {
    random_edits(true);
}

/// Three peers make random Quill edits (text with CJK and emoji, formats set and cleared,
/// deletes, retains past the end) and exchange them with delays, so edits are concurrent.
/// Positions are whole characters unless `anywhere`.
fn random_edits(anywhere: bool) {
    count_panics();
    let mut next = rng("random edits");
    let words = ["a", "文", "😀", "👋🏽", " ", "\n", "ab", "两个"];
    let formats = [
        json!({"bold": true}),
        json!({"bold": null}),
        json!({"header": 2}),
        json!({"italic": true}),
        json!({}),
    ];
    let mut peers = [Peer::new(1), Peer::new(2), Peer::new(3)];
    let mut inflight: Vec<(usize, Vec<u8>)> = Vec::new();
    let deliver = |peers: &mut [Peer; 3], inflight: &mut Vec<(usize, Vec<u8>)>| {
        for (from, message) in inflight.drain(..) {
            for (_, peer) in peers.iter_mut().enumerate().filter(|(i, _)| *i != from) {
                if anywhere {
                    // A split character is U+FFFD in the document but not in the editor
                    // model, so only convergence is checked then.
                    peer.replica.receive(&message).unwrap();
                } else {
                    peer.receive(&message);
                }
            }
        }
    };
    for round in 0..300 {
        let who = next() as usize % peers.len();
        let peer = &mut peers[who];
        // UTF-16 offsets of every character boundary (no embeds are inserted here).
        let text: String = peer
            .replica
            .content_json()
            .iter()
            .filter_map(|op| op["insert"].as_str().map(str::to_owned))
            .collect();
        let mut bounds = vec![0u64];
        for ch in text.chars() {
            bounds.push(bounds.last().unwrap() + ch.len_utf16() as u64);
        }
        let len = *bounds.last().unwrap();
        let span = 1 + next() % 5;
        let (at, n) = if anywhere {
            (next() % (len + 1), span)
        } else {
            let i = next() as usize % bounds.len();
            let end = bounds.get(i + span as usize).copied().unwrap_or(len + span);
            (bounds[i], end - bounds[i])
        };
        let attrs = formats[next() as usize % formats.len()].clone();
        let ops = match next() % 4 {
            0 => json!([{"retain": at}, {"delete": n}]),
            1 => json!([{"retain": at}, {"retain": n, "attributes": attrs}]),
            _ => {
                let word = words[next() as usize % words.len()];
                json!([{"retain": at}, {"insert": word, "attributes": attrs}])
            }
        };
        if let Some(message) = peer.replica.apply_quill_delta(&any(&ops)).unwrap() {
            // These deltas may run past the end, where the model lacks Quill's own final
            // newline: resync it after local edits; remote changes are checked against it.
            peer.quill = Quill::of(&peer.replica.content_json());
            inflight.push((who, message));
        }
        if round % 3 == 0 || next() & 1 == 0 {
            deliver(&mut peers, &mut inflight);
        }
    }
    deliver(&mut peers, &mut inflight);
    let content = peers[0].replica.content_json();
    for peer in &peers[1..] {
        assert_eq!(peer.replica.content_json(), content, "replicas diverged");
    }
    assert_eq!(
        PANICS.with(Cell::get),
        0,
        "yrs panicked on a Quill edit: the browser module would abort"
    );
}

#[test]
fn a_heartbeat_is_answered_and_counted_with_what_we_lack() {
    let mut a = Peer::new(1);
    let mut b = Peer::new(2);
    connect(&mut a, &mut b);
    // b (playing the server) gets an edit that a has not seen.
    b.edit(json!([{"insert": "心跳 ok"}]));
    let question = a.replica.heartbeat();
    let answers = b.receive(&question).replies;
    assert_eq!(answers.len(), 1, "a sync step 1 is always answered");
    let changes = a.receive(&answers[0]);
    assert_eq!(changes.sync_answers, 1);
    assert_eq!(a.text(), "心跳 ok", "the answer carries what we lacked");
    // An update or a presence message is not an answer.
    let update = b.edit(json!([{"retain": 2}, {"insert": "!"}]));
    assert_eq!(a.receive(&update).sync_answers, 0);
}
