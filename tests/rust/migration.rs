//! A store written by an earlier quire opens in this one. `tests/fixtures/store-v1.tar.gz` is
//! a store written by quire at commit 1a75b48 (layout 1: no version recorded): two documents
//! made through the API (formatting, Chinese and emoji, a title; one replaced five times, its
//! log compacted), and one deleted. It was stopped cleanly.

use std::process::Command;
use std::time::Duration;

use quire::Config;
use quire_tests::http::Api;
use quire_tests::process::QuireProcess;
use quire_tests::{wait_for_async, Client, TempDir, TestServer};
use serde_json::json;

/// `tests/fixtures/{name}.tar.gz` unpacked into a fresh directory (the store is in its `data`).
fn unpack(name: &str) -> TempDir {
    let dir = TempDir::new(name);
    std::fs::create_dir_all(dir.path()).unwrap();
    let fixture = format!("{}/fixtures/{name}.tar.gz", env!("CARGO_MANIFEST_DIR"));
    let status = Command::new("tar").arg("xzf").arg(&fixture).arg("-C").arg(dir.path()).status().expect("run tar");
    assert!(status.success());
    dir
}

#[tokio::test]
async fn a_store_written_by_layout_1_opens_with_everything_in_it() {
    let dir = unpack("store-v1");
    let data = dir.path().join("data");
    let server = TestServer::start(&data, Config::default()).await;
    let api = Api(server.addr);

    // The list, now read a page at a time from its own index, built by the migration.
    let list = api.get("/api/docs").await.json();
    assert_eq!(list["total"], 2);
    let titles: Vec<&str> = list["docs"].as_array().unwrap().iter().map(|d| d["title"].as_str().unwrap()).collect();
    assert_eq!(titles, ["会议纪要 📝", "Q1 plan"]);
    let first = api.get("/api/docs?limit=1").await.json();
    assert_eq!((first["docs"].as_array().unwrap().len(), &first["next_offset"]), (1, &json!(1)));

    // Content, formatting and the compacted log.
    let plan = api.get("/api/docs/plan/content?format=markdown").await.text();
    assert_eq!(plan, "# Q1 plan\n\nRevenue **up**, costs *down*.\n\n- hire\n- ship\n");
    let notes = api.get("/api/docs/notes.2026/content?format=text").await.text();
    assert!(notes.contains("emoji 😀 and 中文, edit 5"), "{notes}");
    let reader = Client::connect_synced(&server.ws_url("plan")).await;
    assert!(reader.text().starts_with("Q1 plan\n"), "{}", reader.text());

    // The deletion stands; the id can be made again (a layout-1 deletion kept no state, so
    // there is nothing to tell its copies by).
    assert_eq!(api.get("/api/docs/gone").await.status, 404);
    let late = Client::connect(&server.ws_url("gone")).await;
    assert_eq!(late.wait_closed().await.0, 4410);
    assert_eq!(api.create(json!({ "id": "gone", "content": "again" })).await.status, 201);

    // Edits after the migration are kept, and the migrated store opens again as it is now.
    assert_eq!(api.put("plan", "text/markdown", b"# Q2 plan\n").await.status, 204);
    server.stop().await;
    let server = TestServer::start(&data, Config::default()).await;
    let api = Api(server.addr);
    assert_eq!(api.get("/api/docs/plan/content?format=markdown").await.text(), "# Q2 plan\n");
    assert_eq!(api.get("/api/docs").await.json()["total"], 3);
    server.stop().await;
}

/// `tests/fixtures/store-v2.tar.gz`: a store written by quire at commit c37af87 (layout 2,
/// before version history): `plan` (a title and Markdown), `notes.2026` (replaced five times,
/// its log compacted), a share link to `plan`, and `gone`, created and deleted.
#[tokio::test]
async fn a_store_written_by_layout_2_opens_with_everything_in_it_and_gains_history() {
    const OWNER: &str = "the-owner-key-for-migration-tests";
    let dir = unpack("store-v2");
    let data = dir.path().join("data");
    let bin = quire_tests::process::quire_bin();
    let owner = format!("Bearer {OWNER}");
    let auth = [("Authorization", owner.as_str())];
    let server = QuireProcess::start(&bin, &data, &["--owner-key", OWNER]).await;
    let api = Api(server.addr);
    let get = |path: &'static str| api.send("GET", path, &auth, b"");

    let list = get("/api/docs").await.json();
    assert_eq!(list["total"], 2, "{list}");
    let titles: Vec<&str> = list["docs"].as_array().unwrap().iter().map(|d| d["title"].as_str().unwrap()).collect();
    assert_eq!(titles, ["会议纪要 📝", "Q1 plan"]);
    let plan = get("/api/docs/plan/content?format=markdown").await.text();
    assert_eq!(plan, "# Q1 plan\n\nRevenue **up**, costs *down*.\n\n- hire\n- ship\n");
    let notes = get("/api/docs/notes.2026/content?format=text").await.text();
    assert!(notes.contains("emoji 😀 and 中文, edit 5"), "{notes}");
    let links = get("/api/docs/plan/links").await.json();
    assert_eq!(links["links"].as_array().map(Vec::len), Some(1), "the share link: {links}");
    assert_eq!(get("/api/docs/gone").await.status, 404);

    // History starts when a document is next opened: its first version holds what it was.
    // The first version is taken when the document is opened, off its task.
    wait_for_async(Duration::from_secs(10), "the first version", || async { get("/api/docs/plan/versions").await.json()["total"] == 1 }).await;
    let versions = get("/api/docs/plan/versions").await.json();
    let first = versions["versions"][0]["id"].as_u64().unwrap();
    let path = format!("/api/docs/plan/versions/{first}/content?format=markdown");
    assert_eq!(api.send("GET", &path, &auth, b"").await.text(), plan);
    let named = api
        .send("POST", "/api/docs/notes.2026/versions", &[auth[0], ("Content-Type", "application/json")], br#"{"name":"Migrated"}"#)
        .await;
    assert_eq!(named.status, 201, "{}", named.text());

    // The migrated store opens again as it is now, versions and all.
    assert!(server.terminate().await.success());
    let server = QuireProcess::start(&bin, &data, &["--owner-key", OWNER]).await;
    let api = Api(server.addr);
    let versions = api.send("GET", "/api/docs/notes.2026/versions", &auth, b"").await.json();
    assert!(versions["versions"].as_array().unwrap().iter().any(|v| v["name"] == "Migrated"), "{versions}");
    assert_eq!(api.send("GET", "/api/docs", &auth, b"").await.json()["total"], 2);
    assert!(server.terminate().await.success());
}

/// `tests/fixtures/store-v3.tar.gz`: a store written by quire at commit 4c0d827 (layout 3,
/// every snapshot among the log entries of tree `docs`): `plan` (replaced three times, a
/// named version "Before review", a share link), `long` (3,000 paragraphs, a snapshot of
/// 300 KB) and `gone`, created and deleted. Stopped cleanly.
#[tokio::test]
async fn a_store_written_by_layout_3_opens_with_everything_in_it() {
    const OWNER: &str = "the-owner-key-for-migration-tests";
    let dir = unpack("store-v3");
    let data = dir.path().join("data");
    let bin = quire_tests::process::quire_bin();
    let owner = format!("Bearer {OWNER}");
    let auth = [("Authorization", owner.as_str())];
    let json = [auth[0], ("Content-Type", "application/json")];
    let server = QuireProcess::start(&bin, &data, &["--owner-key", OWNER]).await;
    let api = Api(server.addr);
    let get = |path: String| async move { api.send("GET", &path, &auth, b"").await };

    let list = get("/api/docs".into()).await.json();
    assert_eq!(list["total"], 2, "{list}");
    let titles: Vec<&str> = list["docs"].as_array().unwrap().iter().map(|d| d["title"].as_str().unwrap()).collect();
    assert_eq!(titles, ["Q1 plan", "Long notes"]);
    let plan = get("/api/docs/plan/content?format=markdown".into()).await.text();
    assert_eq!(plan, "# Q1 plan\n\nRevenue **up**, costs *down*, edit 3.\n\n- hire\n- ship\n");
    let long = get("/api/docs/long/content?format=text".into()).await.text();
    assert_eq!(long.matches("the lazy dog.").count(), 3000, "{} chars", long.len());
    assert!(long.contains("Paragraph 2999: 会议纪要 📝"), "the end of the snapshot");
    let links = get("/api/docs/plan/links".into()).await.json();
    assert_eq!(links["links"].as_array().map(Vec::len), Some(1), "the share link: {links}");
    assert_eq!(get("/api/docs/gone".into()).await.status, 404);
    let versions = get("/api/docs/plan/versions".into()).await.json();
    let named = versions["versions"].as_array().unwrap().iter().find(|v| v["name"] == "Before review").expect("the named version");
    let at = get(format!("/api/docs/plan/versions/{}/content?format=markdown", named["id"])).await.text();
    assert_eq!(at, plan);

    // Edits after the migration are kept (and folded into snapshots where layout 4 keeps
    // them), and the migrated store opens again as it is now.
    assert_eq!(api.send("PUT", "/api/docs/long/content", &[auth[0], ("Content-Type", "text/markdown")], b"# Short now\n").await.status, 204);
    let created = api.send("POST", "/api/docs", &json, br#"{"id":"after","content":"made in layout 4"}"#).await;
    assert_eq!(created.status, 201, "{}", created.text());
    assert!(server.terminate().await.success());
    let server = QuireProcess::start(&bin, &data, &["--owner-key", OWNER]).await;
    let api = Api(server.addr);
    let get = |path: &'static str| api.send("GET", path, &auth, b"");
    assert_eq!(get("/api/docs/long/content?format=markdown").await.text(), "# Short now\n");
    assert_eq!(get("/api/docs/after/content?format=text").await.text(), "made in layout 4\n");
    assert_eq!(get("/api/docs/plan/content?format=markdown").await.text(), plan);
    assert_eq!(get("/api/docs").await.json()["total"], 3);
    assert!(server.terminate().await.success());
}
