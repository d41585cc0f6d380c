//! Another client writing under our client id (hardening item 11): the server accepts items
//! under any id, so the replica itself must notice and take a new one, as a Yjs `Doc` does.

use quire_model::protocol;
use yrs::{Doc, ReadTxn, Text, Transact};

use super::*;

/// A third party that writes under `client_id`, starting from everything `victim` has: what a
/// client that copied someone's id from the presence list can do.
struct Squatter {
    doc: Doc,
}

impl Squatter {
    fn as_(client_id: u64, victim: &Peer) -> Squatter {
        let doc = doc_with_client_id(client_id);
        protocol::apply_bytes(&doc, &victim.replica.encode_state()).unwrap();
        Squatter { doc }
    }

    /// Appends `s` to the body; the update message, as the server would forward it.
    fn append(&self, s: &str) -> Vec<u8> {
        let text = self.doc.get_or_insert_text(CONTENT);
        let mut txn = self.doc.transact_mut();
        let end = text.len(&txn);
        text.insert(&mut txn, end, s);
        protocol::encode(&protocol::update_message(txn.encode_update_v1()))
    }
}

#[test]
fn an_update_under_our_client_id_makes_us_take_a_new_one() {
    let mut a = Peer::new(1);
    let mut b = Peer::new(2);
    connect(&mut a, &mut b);
    b.receive(&a.edit(json!([{"insert": "hello "}])));
    let caret = presence_at(&a, 2);
    b.receive(&a.replica.set_state_json(&caret));
    // An edit of b's that a holds back until the one before it arrives (yrs keeps it pending):
    // it must survive the switch too.
    let first = b.edit(json!([{"retain": 6}, {"insert": "x"}]));
    let second = b.edit(json!([{"retain": 7}, {"insert": "y"}]));
    a.receive(&second);

    // The squatter's first write reaches everyone, as the server forwards it.
    let squatter = Squatter::as_(1, &a);
    let evil = squatter.append("evil ");
    b.receive(&evil);
    let moved = a.receive(&evil).replies;
    // It writes again under our old id, and the server has that before our next keystroke:
    // under the old id, the keystroke would carry the same item id and be dropped as known.
    let more = squatter.append("more ");
    b.receive(&more);
    b.receive(&a.edit(json!([{"insert": "¡"}])));
    a.receive(&more);
    a.receive(&first);

    assert_eq!(a.text(), b.text(), "a's keystroke was lost");
    assert_eq!(a.replica.content_json(), b.replica.content_json());
    let text = a.text();
    for piece in ["¡hello ", "evil ", "more ", "xy"] {
        assert!(text.contains(piece), "{piece:?} is missing from {text:?}");
    }
    let me = a.replica.client_id();
    assert_ne!(me, 1, "an update under our id makes us take a new one");
    // Our presence moves to the new id, and the old one is announced gone: nobody sees two Anns.
    assert_eq!(moved.len(), 1, "one awareness message");
    assert!(b.receive(&moved[0]).awareness_changed);
    let expected = BTreeMap::from([(me.to_string(), caret.clone())]);
    assert_eq!(b.replica.states_json(), expected);
    assert_eq!(a.replica.states_json(), expected);
    // The caret still points at its character: relative positions name items, whose ids the
    // switch kept.
    for peer in [&a, &b] {
        let index = peer.replica.index_json(&caret["cursor"]["anchor"]).unwrap();
        assert_eq!(index, Some(3));
    }
    // And we stay on the new id.
    connect(&mut a, &mut b);
    assert_eq!(a.replica.client_id(), me);
    // Same items (the byte encodings differ: a's copy merged runs of characters).
    let state_vector = |peer: &Peer| peer.replica.doc().transact().state_vector();
    assert_eq!(state_vector(&a), state_vector(&b));
}

#[test]
fn our_own_edits_coming_back_keep_our_client_id() {
    let mut a = Peer::new(1);
    let mut b = Peer::new(2);
    let edit = a.edit(json!([{"insert": "mine"}]));
    connect(&mut a, &mut b);
    // An echo, another client's edit, a stored state holding both, a resync: none of them
    // moves our own clock.
    a.receive(&edit);
    a.receive(&b.edit(json!([{"insert": "theirs"}])));
    a.replica.apply_state(&b.replica.encode_state()).unwrap();
    a.replica.disconnected();
    connect(&mut a, &mut b);
    assert_eq!(a.replica.client_id(), 1);
}

/// A y-quill presence with a caret at `index`.
fn presence_at(peer: &Peer, index: u32) -> Value {
    let position = peer.replica.position_json(index, 0);
    json!({"user": {"name": "Ann"}, "cursor": {"anchor": position, "head": position}})
}
