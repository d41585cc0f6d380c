//! What is stored survives: restarts, compaction, and loads that fail.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use quire::store::memory::MemoryStore;
use quire::store::sled::SledStore;
use quire::store::Store;
use quire::Config;
use quire_model::DocId;
use quire_tests::http::metric;
use quire_tests::{Client, TempDir, TestServer};
use yrs::types::Attrs;
use yrs::Any;

#[tokio::test]
async fn a_restart_on_the_same_data_dir_brings_back_every_document() {
    let dir = TempDir::new("restart");
    let server = TestServer::start(dir.path(), Config::default()).await;
    let mut written = Vec::new();
    for (i, body) in ["第一篇 🐉", "second doc", "ダン 😀 three"].iter().enumerate() {
        let doc = format!("doc-{i}");
        let client = Client::connect_synced(&server.ws_url(&doc)).await;
        client.push(body);
        client.format(0, 2, Attrs::from([("italic".into(), Any::Bool(true))]));
        client.set_title(&format!("Title {i}"));
        // A second client seeing it proves the server has applied it.
        let check = Client::connect(&server.ws_url(&doc)).await;
        check.wait_same_as(&client).await;
        written.push((doc, client.delta(), client.text()));
    }
    server.stop().await;

    let server = TestServer::start(dir.path(), Config::default()).await;
    for (i, (doc, delta, text)) in written.iter().enumerate() {
        let client = Client::connect(&server.ws_url(doc)).await;
        client.wait_text(text).await;
        assert_eq!(&client.delta(), delta, "{doc} came back different");
        assert_eq!(client.title(), Some(format!("Title {i}")));
    }
    server.stop().await;
}

#[tokio::test]
async fn compaction_keeps_content_identical() {
    let dir = TempDir::new("compact");
    let config = Config {
        compact_after_updates: 5,
        ..Config::default()
    };
    let server = TestServer::start(dir.path(), config.clone()).await;
    let url = server.ws_url("compacted");
    let writer = Client::connect_synced(&url).await;
    let watcher = Client::connect_synced(&url).await;
    for i in 0..40 {
        writer.push(&format!("{i}:字{}", if i % 7 == 0 { "😀" } else { "" }));
        if i % 10 == 3 {
            writer.format(0, 3, Attrs::from([("bold".into(), Any::Bool(i % 20 == 3))]));
        }
    }
    watcher.wait_text(&writer.text()).await;
    assert!(metric(server.addr, "quire_compactions_total").await >= 7.0);
    let (text, delta) = (writer.text(), writer.delta());
    drop((writer, watcher));
    server.stop().await;

    // On disk: one snapshot and a short tail of the log, not 40+ entries.
    {
        let store = SledStore::open(dir.path(), 1 << 20).unwrap();
        let stored = store.load(&DocId::parse("compacted").unwrap()).await.unwrap().unwrap();
        assert!(stored.log_entries < 5, "log not compacted: {} entries", stored.log_entries);
    }
    let server = TestServer::start(dir.path(), config).await;
    let reader = Client::connect(&server.ws_url("compacted")).await;
    reader.wait_text(&text).await;
    assert_eq!(reader.delta(), delta);
    server.stop().await;
}

#[tokio::test]
async fn a_document_whose_stored_state_does_not_load_is_refused_and_never_overwritten() {
    let dir = TempDir::new("corrupt");
    let id = DocId::parse("damaged").unwrap();
    // A stored log whose second entry is not a Yjs update: the document cannot be loaded.
    let good = {
        let doc = quire_model::schema::doc_with_client_id(1);
        use yrs::{Text, Transact};
        doc.get_or_insert_text("content").insert(&mut doc.transact_mut(), 0, "precious");
        quire_model::protocol::full_state(&doc)
    };
    let before = {
        let store = SledStore::open(dir.path(), 1 << 20).unwrap();
        store.append(&id, &good).await.unwrap();
        store.append(&id, &[0xde, 0xad, 0xbe, 0xef]).await.unwrap();
        store.flush().await.unwrap();
        store.load(&id).await.unwrap().unwrap()
    };

    let server = TestServer::start(dir.path(), Config::default()).await;
    for _ in 0..3 {
        let client = Client::connect(&server.ws_url("damaged")).await;
        let (code, reason) = client.wait_closed().await;
        assert_eq!(code, 4503, "{reason}");
        assert!(reason.contains("unavailable"), "{reason}");
        // Even a client that sends an edit before it learns it was refused changes nothing.
        client.push("blank over precious?");
    }
    // Other documents are unaffected.
    let other = Client::connect_synced(&server.ws_url("healthy")).await;
    other.push("fine");
    Client::connect(&server.ws_url("healthy")).await.wait_text("fine").await;
    server.stop().await;

    let store = SledStore::open(dir.path(), 1 << 20).unwrap();
    assert_eq!(store.load(&id).await.unwrap().unwrap(), before, "stored state was written over");
}

#[tokio::test]
async fn a_failing_store_load_writes_nothing_and_a_later_load_succeeds() {
    let store = Arc::new(MemoryStore::new());
    let server = TestServer::with_store(store.clone(), Config::default()).await;
    let url = server.ws_url("flaky");
    let first = Client::connect_synced(&url).await;
    first.push("kept");
    Client::connect(&url).await.wait_text("kept").await;
    drop(first);
    server.stop().await;

    store.fail_loads.store(true, Ordering::SeqCst);
    let writes = store.writes.load(Ordering::SeqCst);
    let server = TestServer::with_store(store.clone(), Config::default()).await;
    let refused = Client::connect(&server.ws_url("flaky")).await;
    assert_eq!(refused.wait_closed().await.0, 4503);
    assert_eq!(store.writes.load(Ordering::SeqCst), writes, "a failed load led to a write");

    store.fail_loads.store(false, Ordering::SeqCst);
    Client::connect(&server.ws_url("flaky")).await.wait_text("kept").await;
    server.stop().await;
}
