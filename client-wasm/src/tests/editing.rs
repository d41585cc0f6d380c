//! Local edits, remote changes as Quill deltas, titles.

use super::*;

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
