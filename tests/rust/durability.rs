//! "Saved" means on disk: every reply that tells a client its change is kept (201/204 from
//! the API, the answer to a sync step 1 behind the app's "All changes synced") is sent only
//! after the group commit that covers the change. Checked with the real binary, its flushes
//! held back by `--flush-delay-ms`, killed with SIGKILL right after the reply.

use quire_tests::http::Api;
use quire_tests::process::{quire_bin, QuireProcess};
use quire_tests::{Client, TempDir};
use serde_json::json;
use yrs::{Text, Transact};

/// Long enough that, were the reply sent before the flush, the kill would always win.
const FLUSH_DELAY: &[&str] = &["--flush-delay-ms", "400"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_the_api_answered_for_survives_kill_9_right_after() {
    let bin = quire_bin();
    let dir = TempDir::new("durable-api");
    let server = QuireProcess::start(&bin, dir.path(), FLUSH_DELAY).await;
    let api = Api(server.addr);
    let created = api.create(json!({ "id": "made", "content": "# Made", "format": "markdown" })).await;
    assert_eq!(created.status, 201, "{}", created.text());
    assert_eq!(api.put("made", "text/markdown", b"# Replaced\n\nby PUT").await.status, 204);
    let doc = quire_model::schema::new_doc();
    let text = doc.get_or_insert_text(quire_model::schema::CONTENT);
    text.insert(&mut doc.transact_mut(), 0, "merged by POST");
    let update = quire_model::protocol::full_state(&doc);
    assert_eq!(api.create(json!({ "id": "posted" })).await.status, 201);
    assert_eq!(api.post_update("posted", Some("application/octet-stream"), &update).await.status, 204);
    assert_eq!(api.create(json!({ "id": "gone", "content": "bye" })).await.status, 201);
    assert_eq!(api.delete("/api/docs/gone").await.status, 204);
    server.kill9().await;

    let server = QuireProcess::start(&bin, dir.path(), &[]).await;
    let api = Api(server.addr);
    assert_eq!(api.get("/api/docs/made/content?format=text").await.text(), "Replaced\nby PUT\n");
    assert_eq!(api.get("/api/docs/posted/content?format=text").await.text(), "merged by POST");
    assert_eq!(api.get("/api/docs/gone").await.status, 404);
    server.kill9().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_answer_that_confirms_an_edit_comes_after_the_edit_is_on_disk() {
    let bin = quire_bin();
    let dir = TempDir::new("durable-answer");
    let server = QuireProcess::start(&bin, dir.path(), FLUSH_DELAY).await;
    let url = server.ws_url("confirmed");
    let client = Client::connect_synced(&url).await;
    client.push("typed, then confirmed");
    let answered = client.answers();
    client.ask();
    client.wait_answers(answered + 1).await;
    server.kill9().await;

    let server = QuireProcess::start(&bin, dir.path(), &[]).await;
    let fresh = Client::connect_synced(&server.ws_url("confirmed")).await;
    assert_eq!(fresh.text(), "typed, then confirmed");
    server.kill9().await;
}
