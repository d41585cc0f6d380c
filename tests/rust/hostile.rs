//! Clients that misbehave, one way each: every one is refused or closed alone, the document
//! changes by nothing it should not, and the other clients carry on.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use quire::store::memory::MemoryStore;
use quire::Config;
use quire_model::{protocol, schema};
use quire_tests::http::{metric, Api};
use quire_tests::{wait_for, Client, TestServer};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use yrs::sync::{Message, SyncMessage};
use yrs::{ReadTxn, Text, Transact};

async fn server(config: Config) -> TestServer {
    TestServer::with_store(Arc::new(MemoryStore::new()), config).await
}

#[tokio::test]
async fn a_presence_state_over_the_limit_closes_only_its_connection() {
    let server = server(Config::default()).await;
    let url = server.ws_url("presence");
    let other = Client::connect_synced(&url).await;
    let big = Client::connect_synced(&url).await;
    big.set_presence(&format!("{{\"name\":\"{}\"}}", "x".repeat(16 * 1024)));
    let (code, reason) = big.wait_closed().await;
    assert_eq!((code, reason.as_str()), (4400, "malformed message: presence state too large"));
    // Nobody else ever saw it, and the document goes on.
    assert!(other.presence().values().all(|state| state.len() < 1024));
    let writer = Client::connect_synced(&url).await;
    writer.push("still fine");
    other.wait_text("still fine").await;
    server.stop().await;
}

#[tokio::test]
async fn everyones_presence_is_sent_in_frames_of_bounded_size() {
    let server = server(Config::default()).await;
    let url = server.ws_url("crowd");
    let mut crowd = Vec::new();
    for i in 0..40 {
        let client = Client::connect_synced(&url).await;
        client.set_presence(&format!("{{\"name\":\"{i:02}{}\"}}", "n".repeat(7000)));
        crowd.push(client);
    }
    wait_for(Duration::from_secs(10), "the others' presence at the last", || crowd[39].presence().len() == 39).await;

    // A one-byte question for everyone's presence.
    let (mut socket, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
    socket.send(WsMessage::Binary(vec![3].into())).await.unwrap();
    let mut seen = std::collections::HashSet::new();
    let mut largest = 0;
    while seen.len() < 40 {
        let frame = tokio::time::timeout(Duration::from_secs(10), socket.next()).await.expect("frames").unwrap().unwrap();
        let WsMessage::Binary(bytes) = frame else { continue };
        for message in protocol::decode_frame(&bytes).unwrap() {
            if let Message::Awareness(update) = message {
                largest = largest.max(bytes.len());
                seen.extend(update.clients.keys().copied());
            }
        }
    }
    assert!(largest <= 80 * 1024, "a presence frame of {largest} bytes");
    server.stop().await;
}

#[tokio::test]
async fn a_document_stops_growing_at_its_limit_and_says_so() {
    let config = Config {
        max_doc_bytes: 256 * 1024,
        ..Config::default()
    };
    let server = server(config).await;
    let url = server.ws_url("capped");
    let watcher = Client::connect_synced(&url).await;
    let writer = Client::connect_synced(&url).await;
    let chunk = "z".repeat(60 * 1024);
    for _ in 0..8 {
        writer.push(&chunk);
        if writer.closed().is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(writer.wait_closed().await, (4413, "the document has reached its size limit".to_owned()));
    assert!(watcher.closed().is_none(), "only the writer is closed");
    assert!(watcher.len() <= 256 * 1024);
    let api = Api(server.addr);
    let too_big = api.put("capped", "text/plain", "y".repeat(300 * 1024).as_bytes()).await;
    assert_eq!(too_big.error(413), "doc_too_large");
    server.stop().await;
}

#[tokio::test]
async fn an_update_whose_dependencies_the_server_lacks_is_not_kept() {
    let server = server(Config::default()).await;
    let url = server.ws_url("pending");
    assert_eq!(Api(server.addr).create(json!({ "id": "pending" })).await.status, 201);
    // Two edits; the second builds on the first, which the server never gets.
    let doc = schema::new_doc();
    let text = doc.get_or_insert_text(schema::CONTENT);
    text.insert(&mut doc.transact_mut(), 0, "first ");
    let before = yrs::ReadTxn::state_vector(&doc.transact());
    text.insert(&mut doc.transact_mut(), 6, "second");
    let second = yrs::ReadTxn::encode_state_as_update_v1(&doc.transact(), &before);
    let client = Client::connect_synced(&url).await;
    client.send(&Message::Sync(SyncMessage::Update(second)));
    let (code, reason) = client.wait_closed().await;
    assert_eq!(code, 4400, "{reason}");
    assert!(reason.contains("depends on changes the server does not have"), "{reason}");
    // Nothing of it stayed: the server's whole state is that of an empty document.
    let state = Api(server.addr).get("/api/docs/pending/content?format=yjs").await;
    let empty = protocol::full_state(&schema::new_doc());
    assert_eq!(state.status, 200);
    assert_eq!(state.body, empty, "the server held on to the update");
    server.stop().await;
}

#[tokio::test]
async fn a_flooder_is_closed_and_the_others_keep_up() {
    let config = Config {
        rate_bytes_per_sec: 256 * 1024,
        rate_burst_bytes: 1024 * 1024,
        ..Config::default()
    };
    let server = server(config).await;
    let url = server.ws_url("flood");
    let victims = [Client::connect_synced(&url).await, Client::connect_synced(&url).await];
    let flooder = Client::connect_synced(&url).await;
    // Big updates back to back: the first passes a full bucket, the next would owe too much.
    let chunk = "f".repeat(3 * 1024 * 1024);
    flooder.push(&chunk);
    flooder.push(&chunk);
    assert_eq!(flooder.wait_closed().await, (4429, "sending too fast".to_owned()));
    for victim in &victims {
        victim.wait_text(&chunk).await;
        assert!(victim.closed().is_none());
    }
    // Small messages in a flood no person types: closed too.
    let typist = Client::connect_synced(&url).await;
    for i in 0..1500 {
        typist.push(&i.to_string());
    }
    assert_eq!(typist.wait_closed().await.0, 4429);
    assert!(metric(server.addr, "quire_clients_dropped_fast_total").await >= 2.0);
    for victim in &victims {
        assert!(victim.closed().is_none(), "a victim was dropped: {:?}", victim.closed());
    }
    server.stop().await;
}

#[tokio::test]
async fn writing_under_another_live_connections_client_id_closes_the_writer() {
    let server = server(Config::default()).await;
    let url = server.ws_url("squat");
    let victim = Client::connect_synced(&url).await;
    victim.set_presence(r#"{"name":"Vic"}"#);
    victim.push("mine ");
    let watcher = Client::connect_synced(&url).await;
    watcher.wait_text("mine ").await;
    // Someone copies Vic's client id from the presence list and writes under it.
    let squatter = Client::connect_with(&url, schema::doc_with_client_id(victim.client_id())).await;
    squatter.wait_synced().await;
    squatter.push("stolen ");
    let (code, reason) = squatter.wait_closed().await;
    assert_eq!((code, reason.as_str()), (4409, "writes under a client id another connection uses"));
    assert_eq!(metric(server.addr, "quire_client_id_conflicts_total").await, 1.0);
    // Vic's next words are not taken for known ones: everyone gets them, and nothing stolen.
    victim.push("and more");
    watcher.wait_text("mine and more").await;
    assert!(victim.closed().is_none());
    Client::connect(&url).await.wait_text("mine and more").await;
    server.stop().await;
}

#[tokio::test]
async fn announcing_an_absent_editors_client_id_does_not_lock_them_out() {
    // Ann's client id is known to everyone who saw her presence. While she is away, someone
    // announces a presence under it and stays. Announcing writes nothing: when Ann comes back
    // and types, she is who wrote under that id, and her words are taken (before, the first to
    // announce the id owned it, Ann was closed 4409 at every reconnect, and the fuzzer saw an
    // honest client closed so).
    let server = server(Config::default()).await;
    let url = server.ws_url("away");
    let ann = Client::connect_synced(&url).await;
    ann.set_presence(r#"{"name":"Ann"}"#);
    ann.push("before ");
    let watcher = Client::connect_synced(&url).await;
    watcher.wait_text("before ").await;
    let replica = ann.disconnect();
    let id = replica.client_id().get();
    let spoofer = Client::connect_with(&url, schema::doc_with_client_id(id)).await;
    spoofer.wait_synced().await;
    // Past the clock of Ann's goodbye, or it would be taken for an old state.
    for _ in 0..3 {
        spoofer.set_presence(r#"{"name":"Not Ann"}"#);
    }
    wait_for(Duration::from_secs(5), "the spoofed presence", || watcher.presence().get(&id).is_some_and(|p| p.contains("Not Ann"))).await;

    let ann = Client::connect_with(&url, replica).await;
    ann.wait_synced().await;
    ann.set_presence(r#"{"name":"Ann"}"#);
    ann.push("after");
    watcher.wait_text("before after").await;
    assert_eq!(ann.closed(), None);
    // And the one who only announced cannot write under her id now.
    spoofer.push("stolen");
    assert_eq!(spoofer.wait_closed().await.0, 4409);
    ann.push(" still");
    watcher.wait_text("before after still").await;
    assert_eq!(ann.closed(), None);
    server.stop().await;
}

#[tokio::test]
async fn the_same_client_reconnecting_before_its_old_socket_timed_out_is_never_refused() {
    let server = server(Config {
        client_id_probe: Duration::from_millis(500),
        ..Config::default()
    })
    .await;
    let url = server.ws_url("reconnect");
    let relay = quire_tests::relay::Relay::start(server.addr).await;
    let old = Client::connect_synced(&relay.ws_url("reconnect")).await;
    old.set_presence(r#"{"name":"Ann"}"#);
    old.push("before ");
    let watcher = Client::connect_synced(&url).await;
    watcher.wait_text("before ").await;
    // The network under the old socket dies: the server hears nothing, and nothing closes.
    relay.freeze();
    let replica = old.disconnect();
    let new = Client::connect_with(&url, replica).await;
    new.wait_synced().await;
    new.set_presence(r#"{"name":"Ann"}"#);
    new.push("after");
    watcher.wait_text("before after").await;
    assert!(new.closed().is_none(), "the reconnect was refused: {:?}", new.closed());
    assert_eq!(metric(server.addr, "quire_client_id_conflicts_total").await, 0.0);
    server.stop().await;
}

#[tokio::test]
async fn asking_about_unknown_documents_loads_nothing() {
    let server = server(Config::default()).await;
    let api = Api(server.addr);
    for i in 0..500 {
        assert_eq!(api.get(&format!("/api/docs/nobody-{i}")).await.status, 404);
        assert_eq!(api.get(&format!("/api/docs/nobody-{i}/content")).await.status, 404);
    }
    assert_eq!(metric(server.addr, "quire_documents_live").await, 0.0);
    server.stop().await;
}

#[tokio::test]
async fn past_the_live_document_limit_opening_another_is_refused_politely() {
    let server = server(Config {
        max_live_docs: 3,
        ..Config::default()
    })
    .await;
    let mut open = Vec::new();
    for i in 0..3 {
        open.push(Client::connect_synced(&server.ws_url(&format!("d{i}"))).await);
    }
    let refused = Api(server.addr).create(json!({ "id": "one-too-many" })).await;
    assert_eq!(refused.error(503), "busy");
    assert_eq!(refused.header("retry-after"), Some("2"));
    let late = Client::connect(&server.ws_url("d9")).await;
    assert_eq!(late.wait_closed().await.0, 4503);
    drop(open);
    server.stop().await;
}

#[tokio::test]
async fn titles_are_capped_in_the_api_and_in_the_list() {
    let server = server(Config::default()).await;
    let api = Api(server.addr);
    let long = "t".repeat(5000);
    assert_eq!(api.create(json!({ "id": "long", "title": long })).await.error(400), "bad_request");
    let client = Client::connect_synced(&server.ws_url("long-title")).await;
    client.set_title(&"长".repeat(100_000));
    let mut listed = String::new();
    for _ in 0..100 {
        let list = api.get("/api/docs").await.json();
        if let Some(doc) = list["docs"].as_array().unwrap().iter().find(|d| d["id"] == "long-title") {
            listed = doc["title"].as_str().unwrap().to_owned();
            if !listed.is_empty() {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!listed.is_empty() && listed.len() <= 1024, "{} bytes", listed.len());
    assert!(listed.chars().all(|c| c == '长'));
    server.stop().await;
}

#[tokio::test]
async fn an_update_that_skips_over_changes_the_server_lacks_is_refused() {
    // yrs integrates an item whose own client's earlier items are missing "out of order" (behind
    // a skip) when its neighbours are known. A server must not: the delta it stores and sends on
    // cannot carry such an item, so the server would hold text nobody else ever gets (found by
    // the fuzzer: `cargo xtask bench fuzz`).
    let server = server(Config::default()).await;
    let url = server.ws_url("skips");
    let writer = Client::connect_synced(&url).await;
    writer.push("known");
    let watcher = Client::connect_synced(&url).await;
    watcher.wait_text("known").await;
    // Client 77 at clock 100, after the writer's last character: its 0..100 never existed.
    let mut update = vec![1, 1, 77, 100, 0x80 | 4];
    yrs::encoding::write::Write::write_var(&mut update, writer.client_id());
    update.extend([4, 3, b'G', b'A', b'P', 0]);
    let hostile = Client::connect_synced(&url).await;
    hostile.send(&Message::Sync(SyncMessage::Update(update)));
    let (code, reason) = hostile.wait_closed().await;
    assert_eq!(code, 4400, "{reason}");
    let text = Api(server.addr).get("/api/docs/skips/content?format=text").await.text();
    assert!(!text.contains("GAP"), "the server holds an item nobody else has: {text:?}");
    writer.push(" still");
    watcher.wait_text("known still").await;
    Client::connect(&url).await.wait_text("known still").await;
    server.stop().await;
}

#[tokio::test]
async fn a_presence_clock_at_its_limit_is_refused_and_the_document_lives_on() {
    // yrs adds one to a client's presence clock when the client leaves: from u32::MAX that
    // overflows, which panicked the document task (debug builds) or wrapped to 0, leaving a
    // ghost everyone still sees (release builds). Found by the fuzzer.
    let server = server(Config::default()).await;
    let url = server.ws_url("clock");
    let watcher = Client::connect_synced(&url).await;
    let hostile = Client::connect_synced(&url).await;
    let mut presence = vec![1, 0, 1, 42];
    yrs::encoding::write::Write::write_var(&mut presence, u32::MAX);
    presence.extend([2, b'{', b'}']);
    presence[1] = (presence.len() - 2) as u8;
    hostile.send_raw(presence);
    let (code, reason) = hostile.wait_closed().await;
    assert_eq!(code, 4400, "{reason}");
    let writer = Client::connect_synced(&url).await;
    writer.push("alive");
    watcher.wait_text("alive").await;
    wait_for(Duration::from_secs(5), "no ghost presence", || watcher.presence().is_empty()).await;
    server.stop().await;
}

#[tokio::test]
async fn client_ids_past_53_bits_are_refused() {
    // Yjs client ids are 53 bits; yrs kept the low 53 bits of a longer one (two ids on the wire,
    // one client) and asserted in debug builds. Found by the fuzzer.
    let server = server(Config::default()).await;
    let url = server.ws_url("wide");
    let writer = Client::connect_synced(&url).await;
    writer.push("mine");
    let hostile = Client::connect_synced(&url).await;
    // The writer's id with bit 60 set, writing at clock 0.
    let mut update = vec![1, 1];
    yrs::encoding::write::Write::write_var(&mut update, writer.client_id() | 1 << 60);
    update.extend([0, 4, 1, 7]);
    update.extend(b"content");
    update.extend([4, b'w', b'i', b'd', b'e', 0]);
    hostile.send(&Message::Sync(SyncMessage::Update(update)));
    let (code, reason) = hostile.wait_closed().await;
    assert_eq!((code, reason.as_str()), (4400, format!("malformed message: client id {} is longer than 53 bits", writer.client_id() | 1 << 60).as_str()));
    writer.push(" still");
    Client::connect(&url).await.wait_text("mine still").await;
    server.stop().await;
}

/// Client 99's first item, "abc", after item 12345:7, which nobody has: an update that waits.
fn update_that_waits() -> Vec<u8> {
    let mut update = vec![1, 1, 99, 0, 0x80 | 4];
    yrs::encoding::write::Write::write_var(&mut update, 12345u64);
    update.extend([7, 3, b'a', b'b', b'c', 0]);
    update
}

/// A connection that has joined and not answered the server's step 1, with an update of its
/// waiting for changes the server lacks (as a newcomer's may, for a while).
async fn newcomer_with_an_update_that_waits(url: &str) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>> {
    let (mut newcomer, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let update = Message::Sync(SyncMessage::Update(update_that_waits()));
    newcomer.send(WsMessage::Binary(protocol::encode(&update).into())).await.unwrap();
    newcomer
}

#[tokio::test]
async fn what_waits_for_its_dependencies_is_given_to_nobody() {
    // While a newcomer's update waits, the server's answers to everyone else, its exports and
    // its versions hold what it has, not what waits: a replica that took what waits would keep
    // it pending for ever once it is dropped, and send it back in every later sync step 2 (the
    // fuzzer saw honest editors closed 4409 for it, and left apart from the others).
    let server = server(Config::default()).await;
    let url = server.ws_url("given");
    let writer = Client::connect_synced(&url).await;
    writer.push("typed");
    let mut newcomer = newcomer_with_an_update_that_waits(&url).await;
    writer.push(" on");
    // Its join is queued behind the waiting update: that is in by the time it has synced.
    let watcher = Client::connect_synced(&url).await;
    watcher.wait_text("typed on").await;
    let late = Client::connect_synced(&url).await;
    late.wait_text("typed on").await;
    assert_eq!(late.first_incomplete(), None, "a sync step 2 carried what waits");

    let api = Api(server.addr);
    let export = api.get("/api/docs/given/content?format=yjs").await;
    assert_eq!(export.status, 200);
    let exported = schema::new_doc();
    protocol::apply_bytes(&exported, &export.body).unwrap();
    assert!(!exported.transact().has_missing_updates(), "the export carried what waits");

    newcomer.close(None).await.unwrap();
    while newcomer.next().await.is_some() {}
    assert_eq!(writer.closed(), None);
    assert_eq!(late.closed(), None);
    server.stop().await;
}

#[tokio::test]
async fn what_waits_for_its_dependencies_is_not_stored() {
    // A compaction while a newcomer's update waits stores what the server has. Before, the
    // snapshot held what waited: after a restart the document did not load whole (the fuzzer
    // found one), and versions taken of it held what waited too (yrs panicked encoding some).
    let store = Arc::new(MemoryStore::new());
    let config = Config { compact_after_updates: 1, ..Config::default() };
    let server = TestServer::with_store(store.clone(), config.clone()).await;
    let url = server.ws_url("stored");
    let writer = Client::connect_synced(&url).await;
    writer.push("typed");
    let mut newcomer = newcomer_with_an_update_that_waits(&url).await;
    // Its join is queued behind the waiting update: that is in by the time it has synced.
    let watcher = Client::connect_synced(&url).await;
    writer.push(" on"); // compacted after this
    watcher.wait_text("typed on").await;
    // Stopping compacts once more, with the newcomer's update still waiting.
    server.stop().await;
    while newcomer.next().await.is_some() {}

    let server = TestServer::with_store(store, config).await;
    let api = Api(server.addr);
    let named = api
        .send("POST", "/api/docs/stored/versions", &[("Content-Type", "application/json")], br#"{"name":"after"}"#)
        .await;
    assert_eq!(named.status, 201, "{}", named.text());
    let id = named.json()["id"].as_u64().unwrap();
    let version = api.get(&format!("/api/docs/stored/versions/{id}/content?format=yjs")).await;
    assert_eq!(version.status, 200);
    let doc = schema::new_doc();
    protocol::apply_bytes(&doc, &version.body).unwrap();
    assert!(!doc.transact().has_missing_updates(), "the version holds what waited");
    let reader = Client::connect_synced(&server.ws_url("stored")).await;
    reader.wait_text("typed on").await;
    assert_eq!(reader.first_incomplete(), None, "the stored state holds what waited");
    server.stop().await;
}

#[tokio::test]
async fn an_update_a_newcomer_leaves_waiting_closes_nobody_else_when_it_goes() {
    // A connection that has not answered the server's step 1 yet may leave an update waiting
    // for changes its answer would bring. When it goes without them, what waits is dropped and
    // whoever sent it is closed: only that, never the editors who typed meanwhile (found by
    // the fuzzer, which saw every honest editor of a document closed with 4400).
    let server = server(Config::default()).await;
    let url = server.ws_url("waits");
    let writer = Client::connect_synced(&url).await;
    let watcher = Client::connect_synced(&url).await;
    writer.push("typing");
    watcher.wait_text("typing").await;
    let (mut newcomer, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
    // Client 99's first item, after an item of client 12345 that nobody has: it waits.
    let mut update = vec![1, 1, 99, 0, 0x80 | 4];
    yrs::encoding::write::Write::write_var(&mut update, 12345u64);
    update.extend([7, 3, b'a', b'b', b'c', 0]);
    let frame = |message: Message| WsMessage::Binary(protocol::encode(&message).into());
    newcomer.send(frame(Message::Sync(SyncMessage::Update(update)))).await.unwrap();
    writer.push(" on");
    watcher.wait_text("typing on").await;
    newcomer.close(None).await.unwrap();
    while newcomer.next().await.is_some() {}
    writer.push(" still");
    Client::connect(&url).await.wait_text("typing on still").await;
    watcher.wait_text("typing on still").await;
    assert_eq!(writer.closed(), None);
    assert_eq!(watcher.closed(), None);
    server.stop().await;
}
