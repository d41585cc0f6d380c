//! Who gets in: the access hook, the connection limit, dead connections.

use std::sync::Arc;
use std::time::Duration;

use quire::auth::{Authorizer, Credentials, Denied, Grant, Role};
use quire::Config;
use quire_model::DocId;
use quire_tests::http::metric;
use quire_tests::{wait_for, wait_for_async, Client, TempDir, TestServer};

/// View only for `?mode=view`, refused for document `secret`, edit otherwise.
struct ByQuery;

#[async_trait::async_trait]
impl Authorizer for ByQuery {
    async fn authorize(&self, doc: Option<&DocId>, credentials: &Credentials<'_>) -> Result<Grant, Denied> {
        let role = if doc.is_some_and(|d| d.as_str() == "secret") {
            return Err(Denied::Forbidden);
        } else if credentials.query == Some("mode=view") {
            Role::View
        } else {
            Role::Edit
        };
        Ok(Grant { role, link: None, expires_ms: None })
    }
}

#[tokio::test]
async fn the_access_hook_decides_read_write_read_only_and_deny() {
    let server = TestServer::with_auth(Arc::new(ByQuery), Config::default()).await;
    let url = server.ws_url("shared");
    let editor = Client::connect_synced(&url).await;
    let viewer = Client::connect_synced(&format!("{url}?mode=view")).await;
    editor.push("from the editor ");
    viewer.wait_text("from the editor ").await;
    viewer.push("from the viewer");
    editor.push("again");
    // The viewer still receives (concurrent appends order by client id, so either order).
    wait_for(Duration::from_secs(10), "the viewer to receive the editor's edit", || {
        let text = viewer.text();
        text.contains("again") && text.contains("from the viewer")
    })
    .await;
    // The viewer's edit stayed local: the server and the editor never took it.
    editor.wait_text("from the editor again").await;
    Client::connect(&url).await.wait_text("from the editor again").await;

    match tokio_tungstenite::connect_async(server.ws_url("secret")).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => assert_eq!(response.status(), 403),
        other => panic!("expected 403, got {:?}", other.map(|_| "an open socket")),
    }
    server.stop().await;
}

#[tokio::test]
async fn past_the_connection_limit_upgrades_get_503_with_retry_after_and_recover() {
    let dir = TempDir::new("limit");
    let config = Config {
        max_connections: 2,
        ..Config::default()
    };
    let server = TestServer::start(dir.path(), config).await;
    let url = server.ws_url("crowded");
    let a = Client::connect_synced(&url).await;
    let b = Client::connect_synced(&url).await;
    match tokio_tungstenite::connect_async(&url).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 503);
            assert_eq!(response.headers()["retry-after"], "2");
        }
        other => panic!("expected 503, got {:?}", other.map(|_| "an open socket")),
    }
    assert_eq!(metric(server.addr, "quire_connections_rejected_total").await, 1.0);
    // The ones inside never noticed; once one leaves, the next one gets in.
    a.push("inside");
    b.wait_text("inside").await;
    a.close().await;
    wait_for_async(Duration::from_secs(5), "a free slot", || async {
        metric(server.addr, "quire_connections_open").await == 1.0
    })
    .await;
    Client::connect(&url).await.wait_text("inside").await;
    server.stop().await;
}

#[tokio::test]
async fn a_client_that_answers_no_ping_is_disconnected() {
    let dir = TempDir::new("ping");
    let config = Config {
        ping_interval: Duration::from_millis(50),
        idle_connection_timeout: Duration::from_millis(300),
        ..Config::default()
    };
    let server = TestServer::start(dir.path(), config).await;
    let url = server.ws_url("quiet");
    // A live client answers pings (tungstenite does it while reading) and stays.
    let live = Client::connect_synced(&url).await;
    // A dead one: the handshake, then silence; never reads, so never answers a ping.
    let (dead, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
    wait_for_async(Duration::from_secs(5), "the dead connection to be dropped", || async {
        metric(server.addr, "quire_connections_open").await == 1.0
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(live.closed().is_none(), "the live client was dropped too");
    live.push("still connected");
    Client::connect(&url).await.wait_text("still connected").await;
    drop(dead);
    server.stop().await;
}
