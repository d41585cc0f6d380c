//! The protocol around the edits: stored state offered to the server, heartbeats.

use super::*;

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
