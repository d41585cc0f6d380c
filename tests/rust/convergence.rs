//! Clients converge: concurrent edits, late joiners, presence, offline edits, bad ids.

use std::time::Duration;

use quire::Config;
use quire_model::schema;
use quire_tests::{wait_for, Client, TempDir, TestServer};
use yrs::types::Attrs;
use yrs::Any;

#[tokio::test]
async fn three_clients_typing_concurrently_converge() {
    let dir = TempDir::new("converge");
    let server = TestServer::start(dir.path(), Config::default()).await;
    let url = server.ws_url("converge");
    let clients = [
        Client::connect_synced(&url).await,
        Client::connect_synced(&url).await,
        Client::connect_synced(&url).await,
    ];
    let words = [
        ["你好", "世界", "👋🏽", "文档"],
        ["hello", "😀", "wörld", "🇨🇳"],
        ["协作", "编辑", "🚀", "end"],
    ];
    // Interleave: each client inserts at a position that depends on what it has seen so far,
    // so edits really are concurrent with ones in flight from the others.
    let mut seed = 7u32;
    for round in 0..4 {
        for (client, words) in clients.iter().zip(&words) {
            seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
            let len = client.text().encode_utf16().count() as u32;
            // Insert on a code-point boundary: count UTF-16 units of a char prefix.
            let chars: Vec<char> = client.text().chars().collect();
            let at_char = (seed as usize >> 8) % (chars.len() + 1);
            let at: u32 = chars[..at_char].iter().map(|c| c.len_utf16() as u32).sum();
            assert!(at <= len);
            client.insert(at, words[round]);
        }
    }
    let mut expected: Vec<char> = words.iter().flatten().flat_map(|w| w.chars()).collect();
    expected.sort_unstable();
    wait_for(Duration::from_secs(10), "all three replicas to be equal and complete", || {
        let texts: Vec<String> = clients.iter().map(|c| c.text()).collect();
        let mut chars: Vec<char> = texts[0].chars().collect();
        chars.sort_unstable();
        texts.iter().all(|t| *t == texts[0]) && chars == expected
    })
    .await;
    // The server's copy is the same: a fresh client gets exactly that text.
    let fresh = Client::connect(&url).await;
    fresh.wait_text(&clients[0].text()).await;
    server.stop().await;
}

#[tokio::test]
async fn a_late_joiner_receives_the_whole_document_with_formatting_and_title() {
    let dir = TempDir::new("late");
    let server = TestServer::start(dir.path(), Config::default()).await;
    let url = server.ws_url("late-joiner");
    let writer = Client::connect_synced(&url).await;
    writer.push("标题 Heading\nbold 粗体 and plain 😀\n");
    writer.format(10, 1, Attrs::from([("header".into(), Any::from(1))]));
    writer.format(12, 7, Attrs::from([("bold".into(), Any::Bool(true))]));
    writer.set_title("季度计划 Q3");
    let watcher = Client::connect_synced(&url).await;
    watcher.wait_text(&writer.text()).await;
    wait_for(Duration::from_secs(5), "formatting and title", || {
        watcher.delta() == writer.delta() && watcher.title().as_deref() == Some("季度计划 Q3")
    })
    .await;
    assert!(watcher.delta().contains("bold"), "{}", watcher.delta());
    assert!(watcher.delta().contains("header"), "{}", watcher.delta());
    let late = Client::connect_synced(&url).await;
    late.wait_text(&writer.text()).await;
    assert_eq!(late.delta(), writer.delta());
    assert_eq!(late.title().as_deref(), Some("季度计划 Q3"));
    server.stop().await;
}

#[tokio::test]
async fn presence_propagates_and_is_removed_when_a_client_leaves() {
    let dir = TempDir::new("presence");
    let server = TestServer::start(dir.path(), Config::default()).await;
    let url = server.ws_url("presence");
    let ann = Client::connect_synced(&url).await;
    let bob = Client::connect_synced(&url).await;
    ann.set_presence(r##"{"user":{"name":"Ann","color":"#f00"}}"##);
    let ann_id = ann.client_id();
    wait_for(Duration::from_secs(5), "Bob to see Ann", || {
        bob.presence().get(&ann_id).is_some_and(|s| s.contains("Ann"))
    })
    .await;
    // A late joiner learns who is already here.
    let cat = Client::connect_synced(&url).await;
    wait_for(Duration::from_secs(5), "Cat to see Ann", || cat.presence().contains_key(&ann_id)).await;

    // Ann's connection drops without a goodbye: the server clears her presence for everyone.
    drop(ann.disconnect());
    wait_for(Duration::from_secs(5), "Ann's presence to be removed", || {
        !bob.presence().contains_key(&ann_id) && !cat.presence().contains_key(&ann_id)
    })
    .await;
    server.stop().await;
}

#[tokio::test]
async fn edits_made_while_disconnected_merge_on_reconnect() {
    let dir = TempDir::new("offline");
    let server = TestServer::start(dir.path(), Config::default()).await;
    let url = server.ws_url("offline");
    let a = Client::connect_synced(&url).await;
    let b = Client::connect_synced(&url).await;
    a.push("shared line\n");
    b.wait_text("shared line\n").await;

    let offline = b.disconnect();
    {
        // Edit the detached replica, as a client does while offline.
        use yrs::{Text, Transact};
        let text = offline.get_or_insert_text(schema::CONTENT);
        text.insert(&mut offline.transact_mut(), 0, "离线 offline ✈️ ");
    }
    a.push("online edit\n");
    let b = Client::connect_with(&url, offline).await;
    let expected_parts = ["离线 offline ✈️ ", "shared line\n", "online edit\n"];
    wait_for(Duration::from_secs(10), "both replicas to hold both edits", || {
        a.text() == b.text() && expected_parts.iter().all(|p| a.text().contains(p))
    })
    .await;
    server.stop().await;
}

#[tokio::test]
async fn invalid_document_ids_are_refused_before_the_upgrade() {
    let dir = TempDir::new("badid");
    let server = TestServer::start(dir.path(), Config::default()).await;
    let long = "x".repeat(129);
    for bad in ["bad%20id", "a%2Fb", long.as_str(), "%E6%96%87"] {
        let url = server.ws_url(bad);
        match tokio_tungstenite::connect_async(&url).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                assert_eq!(response.status(), 400, "{bad}");
                let body = String::from_utf8_lossy(response.body().as_deref().unwrap_or_default());
                assert!(body.contains("bad_doc_id"), "{bad}: {body}");
            }
            other => panic!("{bad}: expected HTTP 400, got {:?}", other.map(|_| "an open socket")),
        }
    }
    server.stop().await;
}

#[tokio::test]
async fn typing_during_a_reconnect_before_the_sync_step_2_loses_nothing() {
    // A stock client that typed while away and types again as it reconnects sends that edit
    // before its step 2 (the answer to the server's step 1) brings what it typed while away.
    // The edit skips over those changes, which a hostile update may do too (yrs takes it behind
    // a skip when its neighbours are known: `hostile::an_update_that_skips_over_changes_...`).
    // The server holds it apart from yrs until the step 2, instead of refusing it (4400).
    use futures_util::{SinkExt, StreamExt};
    use quire_model::protocol::{self, Inbound};
    use tokio_tungstenite::tungstenite::Message as WsMessage;
    use yrs::sync::{Message, SyncMessage};
    use yrs::{ReadTxn, Text, Transact};

    let dir = TempDir::new("catchup");
    let server = TestServer::start(dir.path(), Config::default()).await;
    let url = server.ws_url("catchup");
    let a = Client::connect_synced(&url).await;
    let b = Client::connect_synced(&url).await;
    a.push("shared\n");
    b.wait_text("shared\n").await;
    let offline = b.disconnect();
    let text = offline.get_or_insert_text(schema::CONTENT);
    let edit = |f: &dyn Fn(&mut yrs::TransactionMut)| {
        let before = offline.transact().state_vector();
        f(&mut offline.transact_mut());
        offline.transact().encode_state_as_update_v1(&before)
    };
    edit(&|txn| text.insert(txn, 7, "away"));
    // Typed during the reconnect: before known text (its neighbour is known), and after the
    // text typed away (its neighbour is not).
    let before_known = edit(&|txn| text.insert(txn, 0, ">"));
    let after_away = edit(&|txn| text.push(txn, "!"));

    let (mut socket, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
    let send = |message: Message| WsMessage::Binary(protocol::encode(&message).into());
    socket.send(send(protocol::sync_step1(&offline))).await.unwrap();
    for update in [before_known, after_away] {
        socket.send(send(Message::Sync(SyncMessage::Update(update)))).await.unwrap();
    }
    // Then the step 2, once the server's step 1 is in.
    while let Some(Ok(frame)) = socket.next().await {
        let WsMessage::Binary(bytes) = frame else { continue };
        let server_state = protocol::decode_inbound(&bytes)
            .unwrap()
            .into_iter()
            .find_map(|message| match message {
                Inbound::StateVector(sv) => Some(sv),
                _ => None,
            });
        if let Some(sv) = server_state {
            let step2 = offline.transact().encode_state_as_update_v1(&sv);
            socket.send(send(Message::Sync(SyncMessage::SyncStep2(step2)))).await.unwrap();
            break;
        }
    }
    a.wait_text(">shared\naway!").await;
    Client::connect(&url).await.wait_text(">shared\naway!").await;
    // Still connected: nothing was refused.
    socket.send(send(protocol::sync_step1(&offline))).await.unwrap();
    let answer = tokio::time::timeout(Duration::from_secs(5), socket.next()).await.unwrap();
    assert!(matches!(answer, Some(Ok(WsMessage::Binary(_)))), "{answer:?}");
    server.stop().await;
}

#[tokio::test]
async fn an_update_that_completes_anothers_waiting_update_brings_its_sender_both() {
    // B typed after A's last keystrokes, which the server lost (a crash within the flush
    // window, after it had sent them on); B's edit waits for them. When A reconnects, its sync
    // step 2 brings them, and the server takes A's keystrokes and B's edit in one go. A must get
    // B's edit too: sent to everyone but its author, A, as the server sends each change, it
    // never reached A, whose screen said "All changes synced" without it.
    use futures_util::SinkExt;
    use quire_model::protocol;
    use tokio_tungstenite::tungstenite::Message as WsMessage;
    use yrs::sync::{Message, SyncMessage};
    use yrs::{ReadTxn, Text, Transact};

    let dir = TempDir::new("completes");
    let server = TestServer::start(dir.path(), Config::default()).await;
    let url = server.ws_url("completes");
    // A's keystrokes, as A and B (who received them before the crash) hold them.
    let a = schema::doc_with_client_id(101);
    a.get_or_insert_text(schema::CONTENT).insert(&mut a.transact_mut(), 0, "lost ");
    let b = schema::doc_with_client_id(202);
    protocol::apply_bytes(&b, &protocol::full_state(&a)).unwrap();
    let before = b.transact().state_vector();
    b.get_or_insert_text(schema::CONTENT).push(&mut b.transact_mut(), "and found");
    let b_edit = b.transact().encode_state_as_update_v1(&before);

    // B, reconnecting, sends its edit before its step 2: it waits (B is still catching up).
    let (mut b_socket, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
    let frame = |message: Message| WsMessage::Binary(protocol::encode(&message).into());
    b_socket.send(frame(Message::Sync(SyncMessage::Update(b_edit)))).await.unwrap();
    // A reconnects: its step 2 brings what B's edit waits for.
    let a = Client::connect_with(&url, a).await;
    a.wait_synced().await;
    let watcher = Client::connect_synced(&url).await;
    watcher.wait_text("lost and found").await;
    a.wait_text("lost and found").await;
    server.stop().await;
}
