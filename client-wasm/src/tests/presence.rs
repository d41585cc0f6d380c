//! Presence: carets as relative positions, renewal and timeouts, reconnects.

use super::*;

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
