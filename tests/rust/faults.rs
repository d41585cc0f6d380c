//! Bad input and bad clients affect only themselves.

use std::time::Duration;

use futures_util::SinkExt;
use quire::Config;
use quire_model::protocol;
use quire_tests::http::metric;
use quire_tests::{wait_for, wait_for_async, Client, TempDir, TestServer};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message as WsMessage;

/// Two healthy clients on `doc`, synced with some text.
async fn healthy_pair(server: &TestServer, doc: &str) -> (Client, Client) {
    let a = Client::connect_synced(&server.ws_url(doc)).await;
    let b = Client::connect_synced(&server.ws_url(doc)).await;
    a.push("before ");
    b.wait_text("before ").await;
    (a, b)
}

/// The healthy pair still syncs both ways.
async fn still_syncing(a: &Client, b: &Client, tag: &str) {
    a.push(tag);
    b.wait_text(&a.text()).await;
    b.push("!");
    a.wait_text(&b.text()).await;
}

#[tokio::test]
async fn malformed_messages_close_only_their_own_connection() {
    let dir = TempDir::new("malformed");
    let server = TestServer::start(dir.path(), Config::default()).await;
    let (a, b) = healthy_pair(&server, "shared").await;
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("garbage bytes", vec![0xff, 0xff, 0xff, 0xff, 0x0f]),
        ("unknown message type", vec![9, 1, 0]),
        ("truncated sync message", vec![0, 2, 50, 1, 2]),
        ("update that does not decode", protocol::encode(&protocol::update_message(vec![0xff; 16]))),
    ];
    for (what, bytes) in cases {
        let bad = Client::connect_synced(&server.ws_url("shared")).await;
        bad.send_raw(bytes);
        let (code, reason) = bad.wait_closed().await;
        assert_eq!(code, 4400, "{what}: {reason}");
        assert!(reason.starts_with("malformed message"), "{what}: {reason}");
        still_syncing(&a, &b, what).await;
    }
    assert!(metric(server.addr, "quire_messages_rejected_total").await >= 4.0);
    // Nothing of it was stored: after a restart the document is exactly the good edits.
    let text = a.text();
    drop((a, b));
    server.stop().await;
    let server = TestServer::start(dir.path(), Config::default()).await;
    Client::connect(&server.ws_url("shared")).await.wait_text(&text).await;
    server.stop().await;
}

#[tokio::test]
async fn text_frames_and_oversized_messages_close_only_their_own_connection() {
    let dir = TempDir::new("oversized");
    let config = Config {
        max_message_bytes: 64 * 1024,
        ..Config::default()
    };
    let server = TestServer::start(dir.path(), config).await;
    let (a, b) = healthy_pair(&server, "limits").await;

    let (mut raw, _) = tokio_tungstenite::connect_async(server.ws_url("limits")).await.unwrap();
    raw.send(WsMessage::text("hello")).await.unwrap();
    assert_eq!(close_code(&mut raw).await, Some(4400));

    let big = Client::connect_synced(&server.ws_url("limits")).await;
    big.push(&"x".repeat(100 * 1024));
    let (code, reason) = big.wait_closed().await;
    assert_eq!((code, reason.as_str()), (1009, "message too big"));
    still_syncing(&a, &b, "after big").await;
    assert!(!a.text().contains("xxxx"), "the oversized edit must not reach anyone");
    server.stop().await;
}

/// Reads until the server's close frame; returns its code.
async fn close_code<S>(socket: &mut S) -> Option<u16>
where
    S: futures_util::Stream<Item = Result<WsMessage, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    use futures_util::StreamExt;
    let deadline = tokio::time::sleep(Duration::from_secs(10));
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            _ = &mut deadline => return None,
            frame = socket.next() => match frame {
                Some(Ok(WsMessage::Close(frame))) => return frame.map(|f| u16::from(f.code)),
                Some(Ok(_)) => continue,
                _ => return None,
            }
        }
    }
}

#[tokio::test]
async fn a_reader_that_stops_reading_is_dropped_while_the_others_keep_receiving() {
    let dir = TempDir::new("slow");
    let config = Config {
        outbox_bytes: 256 * 1024,
        ..Config::default()
    };
    let server = TestServer::start(dir.path(), config).await;
    let url = server.ws_url("busy");
    let writer = Client::connect_synced(&url).await;
    let watcher = Client::connect_synced(&url).await;

    // A client that connects, says hello, and then never reads again. Its receive buffer is
    // kept small so the kernel cannot absorb what the server sends.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(server.addr).await.unwrap();
    let ws_config = WebSocketConfig::default().read_buffer_size(4096);
    let (mut stalled, _) = tokio_tungstenite::client_async_with_config(&url, stream, Some(ws_config))
        .await
        .unwrap();
    let hello = protocol::encode(&protocol::sync_step1(&quire_model::schema::new_doc()));
    stalled.send(WsMessage::Binary(hello.into())).await.unwrap();

    // 160 updates of ~48 KiB: 7.5 MiB, more than the stalled socket's kernel buffers and its
    // 256 KiB outbox hold. Paced by the healthy watcher, which must never fall behind.
    let chunk = "数据".repeat(8 * 1024);
    for _ in 0..160 {
        writer.push(&chunk);
        let len = writer.len();
        wait_for(Duration::from_secs(10), "the watcher to keep up", || watcher.len() == len).await;
    }
    assert!(watcher.closed().is_none(), "the healthy watcher was dropped");
    wait_for_async(Duration::from_secs(10), "the stalled reader to be dropped", || async {
        metric(server.addr, "quire_clients_dropped_slow_total").await >= 1.0
    })
    .await;
    assert_eq!(metric(server.addr, "quire_clients_dropped_slow_total").await, 1.0);
    // The others never noticed: still in sync both ways.
    still_syncing(&writer, &watcher, "still live").await;
    drop(stalled);
    server.stop().await;
}

#[tokio::test]
async fn a_document_larger_than_the_outbox_opens_while_people_are_present() {
    // The first sync of a document larger than a connection's whole outbox goes out alone; the
    // presence of the people already there, queued behind it, must not make the newcomer look
    // slow (it was dropped 4408 on every attempt, so such a document could never be opened).
    let dir = TempDir::new("big-open");
    let config = Config {
        outbox_bytes: 64 * 1024,
        ..Config::default()
    };
    let server = TestServer::start(dir.path(), config).await;
    let url = server.ws_url("big");
    let author = Client::connect_synced(&url).await;
    author.set_presence(r##"{"user":{"name":"Ada","color":"#c33"}}"##);
    author.push(&"大文档".repeat(40 * 1024)); // 360 KiB of UTF-8, five outboxes' worth
    let len = author.len();
    for attempt in 0..3 {
        let reader = Client::connect(&url).await;
        wait_for(Duration::from_secs(10), "the reader to have the whole document", || {
            reader.len() == len || reader.closed().is_some()
        })
        .await;
        assert_eq!(reader.closed(), None, "attempt {attempt}: the reader was closed");
        wait_for(Duration::from_secs(10), "the reader to see Ada", || !reader.presence().is_empty()).await;
        reader.close().await;
    }
    assert_eq!(metric(server.addr, "quire_clients_dropped_slow_total").await, 0.0);
    server.stop().await;
}

#[tokio::test]
async fn a_connection_announcing_many_presences_is_closed_and_the_table_does_not_grow() {
    use std::collections::HashMap;
    use yrs::sync::awareness::{AwarenessUpdate, AwarenessUpdateEntry};
    use yrs::sync::Message;
    let dir = TempDir::new("presence-flood");
    let server = TestServer::start(dir.path(), Config::default()).await;
    let (a, b) = healthy_pair(&server, "flood").await;
    let flood = |json: &str| {
        let clients: HashMap<_, _> = (1..=1000u64)
            .map(|id| (yrs::ClientID::new(id), AwarenessUpdateEntry { clock: 1, json: json.into() }))
            .collect();
        Message::Awareness(AwarenessUpdate { clients })
    };
    // "Gone" states for ids nobody knows are dropped without a trace...
    let ghost = Client::connect_synced(&server.ws_url("flood")).await;
    ghost.send(&flood("null"));
    // ...and real ones beyond a handful close the connection.
    let greedy = Client::connect_synced(&server.ws_url("flood")).await;
    greedy.send(&flood(r#"{"user":{"name":"x"}}"#));
    let (code, reason) = greedy.wait_closed().await;
    assert_eq!((code, reason.as_str()), (4400, "malformed message: too many presence entries"));
    still_syncing(&a, &b, "after the flood").await;
    assert!(ghost.closed().is_none());
    // The entries the greedy connection did add were removed when it was closed.
    assert!(b.presence().is_empty(), "{:?}", b.presence().len());
    server.stop().await;
}

#[tokio::test]
async fn shutdown_does_not_wait_forever_for_a_client_stuck_in_its_headers() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = TempDir::new("stuck-headers");
    let config = Config {
        shutdown_grace: Duration::from_millis(200),
        ..Config::default()
    };
    let server = TestServer::start(dir.path(), config).await;
    let a = Client::connect_synced(&server.ws_url("kept")).await;
    a.push("kept through shutdown");
    Client::connect(&server.ws_url("kept")).await.wait_text("kept through shutdown").await;
    let mut stuck = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    stuck.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n").await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    tokio::time::timeout(Duration::from_secs(10), server.stop())
        .await
        .expect("shutdown hung on a half-sent request");
    // Past the grace period the server closed the stuck connection itself, rather than leave
    // its task (and the store it holds) behind.
    let mut rest = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), stuck.read_to_end(&mut rest))
        .await
        .expect("the stuck connection outlived the server")
        .ok();
    let server = TestServer::start(dir.path(), Config::default()).await;
    Client::connect(&server.ws_url("kept")).await.wait_text("kept through shutdown").await;
    server.stop().await;
}
