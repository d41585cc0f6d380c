//! Documents load, unload when idle, and come back, without losing anyone in between.

use std::time::Duration;

use quire::Config;
use quire_tests::http::metric;
use quire_tests::{wait_for_async, Client, TempDir, TestServer};

#[tokio::test]
async fn an_idle_document_is_unloaded_and_comes_back_on_the_next_connection() {
    let dir = TempDir::new("idle");
    let config = Config {
        idle_unload: Duration::from_millis(200),
        ..Config::default()
    };
    let server = TestServer::start(dir.path(), config).await;
    let url = server.ws_url("sleepy");
    let client = Client::connect_synced(&url).await;
    client.push("still here 🌙");
    Client::connect(&url).await.wait_text("still here 🌙").await;
    client.close().await;
    wait_for_async(Duration::from_secs(10), "the idle document to be unloaded", || async {
        metric(server.addr, "quire_documents_live").await == 0.0
    })
    .await;
    let back = Client::connect(&url).await;
    back.wait_text("still here 🌙").await;
    assert_eq!(metric(server.addr, "quire_documents_live").await, 1.0);
    server.stop().await;
}

#[tokio::test]
async fn connections_arriving_while_a_document_unloads_lose_nothing() {
    let dir = TempDir::new("unload-race");
    // Unload as soon as a document is idle, so connecting lands in the middle of unloads.
    let config = Config {
        idle_unload: Duration::from_millis(1),
        ..Config::default()
    };
    let server = TestServer::start(dir.path(), config).await;
    let url = server.ws_url("racy");
    let mut expected = String::new();
    for i in 0..60 {
        let client = Client::connect(&url).await;
        client.wait_text(&expected).await;
        let word = format!("{i}字");
        client.push(&word);
        expected.push_str(&word);
        // Let the server apply it (a second client sees it), then leave at once.
        if i % 3 == 0 {
            Client::connect(&url).await.wait_text(&expected).await;
        }
        client.close().await;
        // Vary the gap so reconnects hit before, during and after the unload.
        tokio::time::sleep(Duration::from_micros((i % 7) * 300)).await;
    }
    Client::connect(&url).await.wait_text(&expected).await;
    server.stop().await;
}
