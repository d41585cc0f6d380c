//! Work that grows with its input runs off the async runtime: while imports as big as the
//! body limit allows are parsed and applied, other documents' typing and `/healthz` are served
//! as usual. (How fast is a benchmark's question; here, only that they do not wait.)

use std::sync::Arc;
use std::time::Duration;

use quire::store::memory::MemoryStore;
use quire::Config;
use quire_tests::http::{get, metric, Api};
use quire_tests::{wait_for_async, Client, TestServer};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typing_and_health_are_served_while_heavy_imports_run() {
    let server = TestServer::with_store(Arc::new(MemoryStore::new()), Config::default()).await;
    let api = Api(server.addr);
    // Many short paragraphs with marks: seconds of parsing and applying each, in a debug build.
    let markdown: String = (0..180_000).map(|i| format!("Line **{i}** of a *big* import, [a link](https://example.com/{i}).\n\n")).collect();
    let url = server.ws_url("typing");
    let typist = Client::connect_synced(&url).await;
    let watcher = Client::connect_synced(&url).await;

    // As many imports as the runtime has threads: run there, they would take every one.
    let mut imports = Vec::new();
    for i in 0..2 {
        let id = format!("big-{i}");
        assert_eq!(api.create(json!({ "id": id })).await.status, 201);
        let body = markdown.clone();
        imports.push(tokio::spawn(async move {
            let reply = api.put(&id, "text/markdown", body.as_bytes()).await;
            assert_eq!(reply.status, 204, "{}", reply.text());
        }));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(imports.iter().all(|i| !i.is_finished()), "the imports are not heavy enough to show anything");

    let mut typed = String::new();
    for i in 0..20 {
        let key = format!("{i} ");
        typist.push(&key);
        typed.push_str(&key);
        watcher.wait_text(&typed).await;
        let (status, _) = get(server.addr, "/healthz").await;
        assert_eq!(status, 200);
    }
    // Had the imports held the runtime's threads, no keystroke could have arrived before
    // one of them was done.
    assert!(
        imports.iter().all(|i| !i.is_finished()),
        "typing had to wait for an import to finish"
    );
    let started = std::time::Instant::now();
    for import in imports {
        import.await.unwrap();
    }
    eprintln!("the imports ran on for {:?} after the typing", started.elapsed());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_big_paste_is_not_held_behind_another_documents_import() {
    // One thread for heavy work: the paste (over 64 KiB, applied off the runtime) and the
    // import would take turns on it. Conversions have permits of their own, so the paste goes
    // ahead while the import is still being converted.
    let config = Config { heavy_workers: 1, ..Config::default() };
    let server = TestServer::with_store(Arc::new(MemoryStore::new()), config).await;
    let api = Api(server.addr);
    let markdown: String = (0..180_000).map(|i| format!("Line **{i}** of a *big* import, [a link](https://example.com/{i}).\n\n")).collect();
    assert_eq!(api.create(json!({ "id": "big" })).await.status, 201);
    let import = tokio::spawn(async move {
        let reply = api.put("big", "text/markdown", markdown.as_bytes()).await;
        assert_eq!(reply.status, 204, "{}", reply.text());
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!import.is_finished(), "the import is not heavy enough to show anything");

    let url = server.ws_url("pasted");
    let writer = Client::connect_synced(&url).await;
    let watcher = Client::connect_synced(&url).await;
    let page = "A pasted page of text. ".repeat(4_000);
    writer.push(&page);
    watcher.wait_text(&page).await;
    assert!(!import.is_finished(), "the paste waited for the import to finish");
    import.await.unwrap();
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conversions_past_their_byte_budget_wait_their_turn() {
    // Two threads for conversions, but room for one big input at a time: what a conversion
    // takes grows with its input, and threads are not what bounds memory.
    let config = Config { heavy_workers: 2, max_converting_bytes: 1024 * 1024, ..Config::default() };
    let server = TestServer::with_store(Arc::new(MemoryStore::new()), config).await;
    let api = Api(server.addr);
    let lines = |n: usize| -> String { (0..n).map(|i| format!("Line **{i}** of an *import*, [a link](https://example.com/{i}).\n\n")).collect() };
    let (big, second) = (lines(180_000), lines(5_000));
    let big_bytes = big.len() as f64;
    for id in ["big", "second"] {
        assert_eq!(api.create(json!({ "id": id })).await.status, 201);
    }
    let big = tokio::spawn(async move { api.put("big", "text/markdown", big.as_bytes()).await.status });
    wait_for_async(Duration::from_secs(30), "the big import converting", || async {
        metric(server.addr, "quire_converting_bytes").await > 0.0
    })
    .await;
    let second = tokio::spawn(async move { api.put("second", "text/markdown", second.as_bytes()).await.status });
    // Both converting at once would show as both inputs under way.
    let mut most: f64 = 0.0;
    while !second.is_finished() {
        most = most.max(metric(server.addr, "quire_converting_bytes").await);
    }
    assert_eq!(second.await.unwrap(), 204);
    assert_eq!(big.await.unwrap(), 204);
    assert!(most <= big_bytes, "two conversions ran at once past the budget: {most} bytes under way");
    server.stop().await;
}
