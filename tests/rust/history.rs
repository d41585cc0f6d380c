//! Version history over the real API and sockets: automatic versions when editing settles and
//! during long sessions, named versions across restarts and compaction, thinning, a version's
//! export in every format, restore as one live transaction that offline copies merge, who
//! changed what, a restore that repairs a document whose copies read differently, access for
//! view-only links, and the CLI.
//! (The cluster store's history and the migrations of older stores are in `cluster.rs` and
//! `migration.rs`.)

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use quire::Config;
use quire_model::convert::{self, Format};
use quire_model::diff::compare;
use quire_model::schema;
use quire_tests::http::{metric, Api, Reply};
use quire_tests::neighbours::{documents, fresh_copy, read, Extra, Written};
use quire_tests::process::{quire_bin, QuireProcess};
use quire_tests::{wait_for_async, Client, TempDir, TestServer};
use serde_json::{json, Value};
use yrs::updates::decoder::Decode;
use yrs::{Map, Text, Transact, Update};

/// Versions a test can wait for: a burst settles after 300 ms of quiet.
fn quick() -> Config {
    Config {
        version_settle: Duration::from_millis(300),
        version_max_interval: Duration::from_secs(60),
        version_max_updates: 1_000_000,
        ..Config::default()
    }
}

const ADA: &str = r##"{"user":{"name":"Ada","color":"#d93025"}}"##;
const BOB: &str = r##"{"user":{"name":"Bob","color":"#1a73e8"}}"##;

async fn versions(api: Api, doc: &str) -> Vec<Value> {
    let reply = api.get(&format!("/api/docs/{doc}/versions?limit=1000")).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    reply.json()["versions"].as_array().unwrap().clone()
}

async fn post_json(api: Api, path: &str, body: Value) -> Reply {
    api.send("POST", path, &[("Content-Type", "application/json")], body.to_string().as_bytes()).await
}

/// Names the current version of `doc`; its id.
async fn name_version(api: Api, doc: &str, name: &str) -> u64 {
    let reply = post_json(api, &format!("/api/docs/{doc}/versions"), json!({ "name": name })).await;
    assert_eq!(reply.status, 201, "{}", reply.text());
    assert_eq!(reply.json()["name"], name);
    reply.json()["id"].as_u64().unwrap()
}

async fn wait_versions(api: Api, doc: &str, n: usize) {
    wait_for_async(Duration::from_secs(10), &format!("{n} versions of {doc}"), || async { versions(api, doc).await.len() == n }).await;
}

fn names(editors: &Value) -> Vec<String> {
    let mut names: Vec<String> = editors.as_array().unwrap().iter().map(|e| e["name"].as_str().unwrap_or("-").to_owned()).collect();
    names.sort();
    names
}

#[tokio::test]
async fn automatic_versions_come_when_editing_settles_and_during_long_editing_not_per_keystroke() {
    let dir = TempDir::new("history-auto");
    let config = Config { version_max_interval: Duration::from_millis(1500), ..quick() };
    let server = TestServer::start(dir.path(), config).await;
    let api = Api(server.addr);
    let ada = Client::connect_synced(&server.ws_url("auto")).await;
    ada.set_presence(ADA);

    // A burst of 30 keystrokes: one version once it settles, none per keystroke.
    for n in 0..30 {
        ada.push(&format!("{}", n % 10));
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    wait_versions(api, "auto", 1).await;
    let first = &versions(api, "auto").await[0];
    assert_eq!(first["kind"], "auto");
    assert_eq!(first["editors"], json!([{ "kind": "person", "name": "Ada", "color": "#d93025" }]));
    assert!(first["size_bytes"].as_u64().unwrap() > 0);
    // Nothing changed since: nothing more is taken.
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(versions(api, "auto").await.len(), 1);

    // Typing that never pauses for the settle time: a version at least every interval while
    // it goes on (4 s of keystrokes 100 ms apart, the interval 1.5 s).
    let mut during = 0;
    for n in 0..40 {
        ada.push("x");
        tokio::time::sleep(Duration::from_millis(100)).await;
        if n == 39 {
            during = versions(api, "auto").await.len();
        }
    }
    assert!(during >= 2, "a version was taken while the typing went on ({during} versions)");
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let all = versions(api, "auto").await;
    assert!(all.len() <= 5, "a few versions for 70 keystrokes, not one each: {}", all.len());
    // The newest holds everything typed.
    let newest = all[0]["id"].as_u64().unwrap();
    let text = api.get(&format!("/api/docs/auto/versions/{newest}/content?format=text")).await.text();
    assert_eq!(text.trim_end(), ada.text().trim_end());
    server.stop().await;
}

#[tokio::test]
async fn named_versions_survive_restart_and_compaction() {
    let dir = TempDir::new("history-named");
    let config = Config { compact_after_updates: 5, ..quick() };
    let server = TestServer::start(dir.path(), config.clone()).await;
    let api = Api(server.addr);
    assert_eq!(api.create(json!({ "id": "notes", "content": "# Notes\n\nfirst draft\n" })).await.status, 201);
    let draft = name_version(api, "notes", "First draft").await;

    let ada = Client::connect_synced(&server.ws_url("notes")).await;
    for n in 0..40 {
        ada.push(&format!(" more{n}"));
    }
    wait_for_async(Duration::from_secs(10), "the log to be compacted", || async {
        metric(server.addr, "quire_compactions_total").await >= 3.0
    })
    .await;
    // Every edit on the server before it stops (one still in flight at shutdown would stay
    // with the client, to be sent when it reconnects).
    wait_for_async(Duration::from_secs(10), "the last edit on the server", || async {
        api.get("/api/docs/notes/content?format=text").await.text().contains("more39")
    })
    .await;
    ada.close().await;
    server.stop().await;

    let server = TestServer::start(dir.path(), config).await;
    let api = Api(server.addr);
    let all = versions(api, "notes").await;
    let named: Vec<&Value> = all.iter().filter(|v| v["name"] == "First draft").collect();
    assert_eq!(named.len(), 1, "{all:?}");
    assert_eq!((named[0]["id"].as_u64(), &named[0]["kind"]), (Some(draft), &json!("manual")));
    let content = api.get(&format!("/api/docs/notes/versions/{draft}/content?format=markdown")).await;
    assert_eq!(content.text(), "# Notes\n\nfirst draft\n");
    // The edits after it are in the document, and in a later version (taken as the task
    // unloaded at shutdown).
    assert!(api.get("/api/docs/notes/content?format=text").await.text().contains("more39"));
    let newest = all[0]["id"].as_u64().unwrap();
    assert!(newest > draft);
    assert!(api.get(&format!("/api/docs/notes/versions/{newest}/content?format=text")).await.text().contains("more39"));
    server.stop().await;
}

#[tokio::test]
async fn naming_an_unchanged_document_again_renames_its_version_and_named_versions_are_capped() {
    let dir = TempDir::new("history-names");
    let server = TestServer::start(dir.path(), Config { max_named_versions: 2, ..quick() }).await;
    let api = Api(server.addr);
    assert_eq!(api.create(json!({ "id": "n", "content": "one\n" })).await.status, 201);
    let first = name_version(api, "n", "Draft").await;
    let before = versions(api, "n").await.len();
    // Nothing changed: the same version takes the new name, as Google Docs does.
    assert_eq!(name_version(api, "n", "Final draft").await, first);
    let all = versions(api, "n").await;
    assert_eq!(all.len(), before, "no second entry for one state: {all:?}");
    assert_eq!(all.iter().find(|v| v["id"] == first).unwrap()["name"], "Final draft");

    assert_eq!(api.put("n", "text/plain", b"two").await.status, 204);
    let second = name_version(api, "n", "Second").await;
    assert_ne!(second, first);
    // Each named version keeps a whole state and is never thinned: past the cap, a clear
    // refusal, and nothing written.
    assert_eq!(api.put("n", "text/plain", b"three").await.status, 204);
    let count = versions(api, "n").await.len();
    let refused = post_json(api, "/api/docs/n/versions", json!({ "name": "Third" })).await;
    assert_eq!(refused.error(409), "too_many_named_versions", "{}", refused.text());
    assert_eq!(versions(api, "n").await.len(), count);
    // Naming an automatic version counts the same: the edit above settles into one, unnamed.
    let unnamed = || async { versions(api, "n").await.iter().find(|v| v["name"].is_null()).and_then(|v| v["id"].as_u64()) };
    wait_for_async(Duration::from_secs(10), "an automatic version of the last edit", || async { unnamed().await.is_some() }).await;
    let auto = unnamed().await.unwrap();
    let path = format!("/api/docs/n/versions/{auto}");
    let body = json!({ "name": "Third" }).to_string();
    let refused = api.send("PATCH", &path, &[("Content-Type", "application/json")], body.as_bytes()).await;
    assert_eq!(refused.error(409), "too_many_named_versions", "{}", refused.text());
    assert!(versions(api, "n").await.iter().any(|v| v["id"] == auto && v["name"].is_null()), "still unnamed");
    // Renaming stays possible, and a deleted one makes room.
    assert_eq!(api.send("DELETE", &format!("/api/docs/n/versions/{first}"), &[], b"").await.status, 204);
    name_version(api, "n", "Third").await;
}

#[tokio::test]
async fn deleting_the_newest_version_keeps_its_deletions_credited_to_who_made_them() {
    let dir = TempDir::new("history-delete-newest");
    let server = TestServer::start(dir.path(), quick()).await;
    let api = Api(server.addr);
    assert_eq!(api.create(json!({ "id": "d", "content": "Keep this. Drop this.\n" })).await.status, 201);
    let base = name_version(api, "d", "Base").await;
    let bob = Client::connect_synced(&server.ws_url("d")).await;
    bob.set_presence(BOB);
    let at = bob.text().find(" Drop this.").unwrap() as u32;
    bob.edit(|text, _, txn| text.remove_range(txn, at, 11));
    wait_for_async(Duration::from_secs(10), "Bob's cut on the server", || async {
        !api.get("/api/docs/d/content?format=text").await.text().contains("Drop")
    })
    .await;
    let cut = name_version(api, "d", "Cut").await;
    // The newest version goes: what it held is again among the changes not yet versioned, and
    // the next version has them, deletions with who made them (they carry no client id).
    assert_eq!(api.send("DELETE", &format!("/api/docs/d/versions/{cut}"), &[], b"").await.status, 204);
    bob.push(" More.");
    wait_for_async(Duration::from_secs(10), "Bob's addition on the server", || async {
        api.get("/api/docs/d/content?format=text").await.text().contains("More.")
    })
    .await;
    let later = name_version(api, "d", "Later").await;
    let diff = api.get(&format!("/api/docs/d/versions/{later}/diff")).await.json();
    assert_eq!(diff["from"]["id"].as_u64(), Some(base), "{diff}");
    let dropped = spans_with(&diff, "Drop this.");
    assert_eq!(dropped.len(), 1, "{diff}");
    assert_eq!((&dropped[0]["change"], author_name(dropped[0])), (&json!("deleted"), "Bob"), "{diff}");
    bob.close().await;
    server.stop().await;
}

#[tokio::test]
async fn thinning_keeps_the_newest_automatic_version_of_each_period_and_every_named_one() {
    let dir = TempDir::new("history-thin");
    // Nothing is "recent": every automatic version falls to one a day at once, so thinning
    // shows within a test; named versions stay whatever their age.
    let config = Config { versions_keep_all: Duration::ZERO, versions_hourly: Duration::ZERO, ..quick() };
    let server = TestServer::start(dir.path(), config).await;
    let api = Api(server.addr);
    let ada = Client::connect_synced(&server.ws_url("thin")).await;
    ada.set_presence(ADA);
    ada.push("one");
    wait_versions(api, "thin", 1).await;
    ada.push(" two");
    let kept = name_version(api, "thin", "Kept").await;
    for (n, word) in [" three", " four", " five"].into_iter().enumerate() {
        ada.push(word);
        // Each burst's version replaces the automatic one before it (both in today's bucket).
        wait_for_async(Duration::from_secs(10), &format!("burst {n}'s version"), || async {
            let all = versions(api, "thin").await;
            let newest = all[0]["id"].as_u64().unwrap();
            let text = api.get(&format!("/api/docs/thin/versions/{newest}/content?format=text")).await.text();
            all[0]["kind"] == "auto" && text.contains(word.trim())
        })
        .await;
        let all = versions(api, "thin").await;
        assert_eq!(all.len(), 2, "the newest automatic version and the named one: {all:?}");
        assert_eq!(all[1]["id"].as_u64(), Some(kept), "the named version stays");
    }
    // The changes of a version that went count toward the next one that stays.
    let all = versions(api, "thin").await;
    assert_eq!(names(&all[0]["editors"]), ["Ada"]);
    server.stop().await;
}

/// A Yjs update as a document.
fn doc_of(update: &[u8], v2: bool) -> yrs::Doc {
    let doc = schema::new_doc();
    let update = if v2 { Update::decode_v2(update) } else { Update::decode_v1(update) }.unwrap();
    doc.transact_mut().apply_update(update).unwrap();
    doc
}

#[tokio::test]
async fn a_versions_export_in_every_format_equals_the_documents_export_at_that_moment() {
    let dir = TempDir::new("history-export");
    let server = TestServer::start(dir.path(), quick()).await;
    let api = Api(server.addr);
    let markdown = "# Plan 📝\n\nRevenue **up**, costs *down*, [link](https://example.com).\n\n- hire\n- ship\n\n> 中文\n";
    assert_eq!(api.create(json!({ "id": "fmt", "content": markdown, "title": "The plan" })).await.status, 201);
    let formats = ["markdown", "html", "text", "delta"];
    let mut then = Vec::new();
    for format in formats {
        let reply = api.get(&format!("/api/docs/fmt/content?format={format}")).await;
        assert_eq!(reply.status, 200);
        then.push((reply.text(), reply.header("content-type").unwrap().to_owned()));
    }
    let yjs_then = doc_of(&api.get("/api/docs/fmt/content?format=yjs").await.body, false);
    let v = name_version(api, "fmt", "Before the rewrite").await;
    assert_eq!(api.put("fmt", "text/markdown", b"# Something else\n").await.status, 204);

    for (format, (body, content_type)) in formats.into_iter().zip(&then) {
        let reply = api.get(&format!("/api/docs/fmt/versions/{v}/content?format={format}")).await;
        assert_eq!(reply.status, 200, "{format}: {}", reply.text());
        assert_eq!(&reply.text(), body, "{format}");
        assert_eq!(reply.header("content-type"), Some(content_type.as_str()), "{format}");
    }
    for (encoding, v2) in [("v1", false), ("v2", true)] {
        let reply = api.get(&format!("/api/docs/fmt/versions/{v}/content?format=yjs&encoding={encoding}")).await;
        assert_eq!(reply.header("content-type"), Some("application/octet-stream"));
        let version = doc_of(&reply.body, v2);
        for format in [Format::Delta, Format::Markdown] {
            assert_eq!(convert::export(&version, format).unwrap(), convert::export(&yjs_then, format).unwrap(), "{encoding}");
        }
        let title = version.get_or_insert_map(schema::META).get(&version.transact(), schema::TITLE);
        assert_eq!(title.map(|t| t.to_string(&version.transact())), Some("The plan".to_owned()), "{encoding}");
    }
    // Errors name the problem.
    assert_eq!(api.get("/api/docs/fmt/versions/12345/content").await.error(404), "not_found");
    assert_eq!(api.get(&format!("/api/docs/fmt/versions/{v}/content?format=pdf")).await.error(400), "bad_request");
    assert_eq!(api.get("/api/docs/fmt/versions/nope/content").await.error(400), "bad_request");
    assert_eq!(api.get(&format!("/api/docs/absent/versions/{v}/content")).await.error(404), "not_found");
    assert_eq!(post_json(api, "/api/docs/fmt/versions", json!({ "name": "  " })).await.error(400), "bad_request");
    assert_eq!(post_json(api, "/api/docs/fmt/versions", json!({ "title": "x" })).await.error(400), "bad_request");
    server.stop().await;
}

#[tokio::test]
async fn a_restore_is_one_live_transaction_and_offline_edits_merge_into_it() {
    let dir = TempDir::new("history-restore");
    let server = TestServer::start(dir.path(), quick()).await;
    let api = Api(server.addr);
    assert_eq!(api.create(json!({ "id": "r", "content": "alpha beta gamma\n" })).await.status, 201);
    let ada = Client::connect_synced(&server.ws_url("r")).await;
    ada.set_presence(ADA);
    // Bob's replica counts the transactions it receives.
    let bob_doc = schema::new_doc();
    let received = Arc::new(AtomicUsize::new(0));
    let counter = received.clone();
    bob_doc.observe_update_v1("count", move |_, _| {
        counter.fetch_add(1, Ordering::SeqCst);
    })
    .expect("observe updates");
    let bob = Client::connect_with(&server.ws_url("r"), bob_doc).await;
    bob.wait_synced().await;
    let original = ada.text();
    let v1 = name_version(api, "r", "Original").await;

    // Carol has a copy, goes offline.
    let carol = Client::connect_synced(&server.ws_url("r")).await;
    let carol_doc = carol.disconnect();

    // Ada rewrites: deletes "beta ", adds at the end.
    let at = original.find("beta").unwrap() as u32;
    ada.edit(|text, _, txn| text.remove_range(txn, at, 5));
    ada.push("delta");
    bob.wait_same_as(&ada).await;
    assert_ne!(bob.text(), original);
    // Carol, offline, types at the start.
    carol_doc.get_or_insert_text(schema::CONTENT).insert(&mut carol_doc.transact_mut(), 0, "carol: ");

    let before = received.load(Ordering::SeqCst);
    let reply = post_json(api, &format!("/api/docs/r/versions/{v1}/restore"), json!({ "by": { "name": "Bob", "color": "#1a73e8" } })).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let result = reply.json();
    assert_eq!(result["changed"], true);
    assert_eq!((&result["version"]["kind"], &result["version"]["restored_from"]), (&json!("restore"), &json!(v1)));
    bob.wait_text(&original).await;
    ada.wait_text(&original).await;
    assert_eq!(received.load(Ordering::SeqCst) - before, 1, "the restore arrived as one transaction");

    // History was not rewritten: Ada's state before the restore is a version of its own.
    let all = versions(api, "r").await;
    let kinds: Vec<&str> = all.iter().map(|v| v["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["restore", "auto", "manual"], "{all:?}");
    let pre = all[1]["id"].as_u64().unwrap();
    assert_eq!(names(&all[1]["editors"]), ["Ada"]);
    assert!(api.get(&format!("/api/docs/r/versions/{pre}/content?format=text")).await.text().contains("delta"));
    // Restoring the same version again changes nothing.
    let again = post_json(api, &format!("/api/docs/r/versions/{v1}/restore"), json!({})).await.json();
    assert_eq!((&again["changed"], &again["version"]), (&json!(false), &Value::Null));

    // Carol comes back: her offline edit merges into the restored text.
    let carol = Client::connect_with(&server.ws_url("r"), carol_doc).await;
    let merged = format!("carol: {original}");
    carol.wait_text(&merged).await;
    ada.wait_text(&merged).await;
    // The restore itself can be undone by restoring the version before it.
    let undo = post_json(api, &format!("/api/docs/r/versions/{pre}/restore"), json!({})).await;
    assert_eq!(undo.status, 200);
    wait_for_async(Duration::from_secs(10), "the undo to reach Bob", || async { bob.text().contains("delta") && !bob.text().contains("beta") }).await;
    assert_eq!(post_json(api, "/api/docs/r/versions/999/restore", json!({})).await.error(404), "not_found");
    server.stop().await;
}

/// A document whose copies read differently (items with forged neighbours, see `neighbours.rs`)
/// is repaired by restoring a version from before them: the server, a client that saw the
/// items arrive and a newcomer all read the version. The document is one on which the minimal
/// edit (what a restore makes, see `quire_model::revert`) does not give the version back: a
/// restore used to answer 200 and leave other text.
#[tokio::test]
async fn restoring_a_version_repairs_a_document_whose_copies_read_differently() {
    let written = documents(300, Extra::ForgedNeighbours)
        .into_iter()
        .find(|doc| read(&doc.server) != read(&fresh_copy(&doc.server)) && !minimal_restore_works(doc))
        .expect("a document that the minimal edit does not restore");
    let dir = TempDir::new("history-forged");
    let server = TestServer::start(dir.path(), quick()).await;
    let api = Api(server.addr);
    assert_eq!(api.create(json!({ "id": "forged" })).await.status, 201);
    let post = |update: &Vec<u8>| {
        let update = update.clone();
        async move {
            let reply = api.send("POST", "/api/docs/forged/updates", &[], &update).await;
            assert_eq!(reply.status, 204, "{}", reply.text());
        }
    };
    for update in &written.updates[..written.version_at] {
        post(update).await;
    }
    let before = name_version(api, "forged", "Before").await;
    let watcher = Client::connect_synced(&server.ws_url("forged")).await;
    for update in &written.updates[written.version_at..] {
        post(update).await;
    }
    watcher.wait_text(&read(&written.server)).await;
    let newcomer = Client::connect_synced(&server.ws_url("forged")).await;
    assert_ne!(newcomer.text(), watcher.text(), "the copies read differently before the restore");

    let reply = post_json(api, &format!("/api/docs/forged/versions/{before}/restore"), json!({})).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let version = read(&written.version());
    watcher.wait_text(&version).await;
    newcomer.wait_text(&version).await;
    let later = Client::connect_synced(&server.ws_url("forged")).await;
    assert_eq!(later.text(), version);
    assert_eq!(api.get("/api/docs/forged/content?format=text").await.text().trim_end(), version.trim_end());
    server.stop().await;
}

/// Whether the minimal edit from a fresh copy of `doc` to its earlier version gives the version
/// back.
fn minimal_restore_works(doc: &Written) -> bool {
    let (version, scratch) = (doc.version(), fresh_copy(&doc.server));
    let Ok(comparison) = compare(&version, &scratch) else { return false };
    let text = scratch.get_or_insert_text(schema::CONTENT);
    let mut txn = scratch.transact_mut();
    for delta in quire_model::revert::deltas(&comparison.spans) {
        text.apply_delta(&mut txn, delta);
    }
    drop(txn);
    read(&scratch) == read(&version)
}

/// The spans of a comparison whose text contains `needle`.
fn spans_with<'a>(diff: &'a Value, needle: &str) -> Vec<&'a Value> {
    diff["spans"].as_array().unwrap().iter().filter(|s| s["insert"].as_str().is_some_and(|t| t.contains(needle))).collect()
}

fn author_name(span: &Value) -> &str {
    span["author"]["name"].as_str().unwrap_or_else(|| span["author"]["kind"].as_str().unwrap_or("none"))
}

#[tokio::test]
async fn a_comparison_names_who_made_each_of_two_peoples_interleaved_edits() {
    let dir = TempDir::new("history-diff");
    let server = TestServer::start(dir.path(), quick()).await;
    let api = Api(server.addr);
    assert_eq!(api.create(json!({ "id": "pair", "content": "Intro text\n" })).await.status, 201);
    let base = name_version(api, "pair", "Base").await;
    let ada = Client::connect_synced(&server.ws_url("pair")).await;
    let bob = Client::connect_synced(&server.ws_url("pair")).await;
    ada.set_presence(ADA);
    bob.set_presence(BOB);

    // Interleaved: Ada, Bob, Ada, each seeing the other's edit first; Bob deletes "Intro ",
    // text that was there before; Ada makes "text" bold.
    ada.insert(0, "[ada one] ");
    bob.wait_same_as(&ada).await;
    let end = bob.text().trim_end().len() as u32;
    bob.insert(end, " [bob one]");
    ada.wait_same_as(&bob).await;
    ada.insert(10, "[ada two] ");
    bob.wait_same_as(&ada).await;
    let intro = bob.text().find("Intro ").unwrap() as u32;
    bob.edit(|text, _, txn| text.remove_range(txn, intro, 6));
    ada.wait_same_as(&bob).await;
    let text_at = ada.text().find("text").unwrap() as u32;
    ada.format(text_at, 4, yrs::types::Attrs::from([("bold".into(), true.into())]));
    bob.wait_same_as(&ada).await;
    let after = name_version(api, "pair", "After").await;

    let diff = api.get(&format!("/api/docs/pair/versions/{after}/diff")).await.json();
    assert_eq!(diff["from"]["id"].as_u64(), Some(base));
    assert_eq!(diff["to"]["id"].as_u64(), Some(after));
    for (needle, who) in [("[ada one]", "Ada"), ("[ada two]", "Ada"), ("[bob one]", "Bob")] {
        let spans = spans_with(&diff, needle);
        assert_eq!(spans.len(), 1, "{needle}: {diff}");
        assert_eq!((&spans[0]["change"], author_name(spans[0])), (&json!("inserted"), who), "{needle}");
        assert_eq!(spans[0]["author"]["color"], if who == "Ada" { "#d93025" } else { "#1a73e8" });
    }
    let deleted = spans_with(&diff, "Intro");
    assert_eq!(deleted.len(), 1, "{diff}");
    assert_eq!((&deleted[0]["change"], author_name(deleted[0])), (&json!("deleted"), "Bob"));
    let bold = spans_with(&diff, "text");
    assert_eq!(bold.len(), 1, "{diff}");
    assert_eq!(bold[0]["change"], "formatted");
    assert_eq!(bold[0]["attributes"]["bold"], true);
    // Formatting alone does not say who: one of the two, and the comparison says so.
    assert_eq!(author_name(bold[0]), "unknown");
    assert_eq!(names(&bold[0]["candidates"]), ["Ada", "Bob"]);
    assert_eq!(names(&versions(api, "pair").await[0]["editors"]), ["Ada", "Bob"]);

    // The first version's text came through the API: "imported".
    let first = api.get(&format!("/api/docs/pair/versions/{base}/diff")).await.json();
    assert_eq!(first["from"], Value::Null);
    let intro = spans_with(&first, "Intro");
    assert_eq!((&intro[0]["change"], &intro[0]["author"]), (&json!("inserted"), &json!({ "kind": "imported" })));
    // Against now, and between two named versions in either order.
    ada.push("[later]");
    bob.wait_same_as(&ada).await;
    let now = api.get(&format!("/api/docs/pair/versions/{after}/diff?against=current")).await.json();
    assert_eq!((&now["to"], author_name(spans_with(&now, "[later]")[0])), (&Value::Null, "Ada"));
    let span = api.get(&format!("/api/docs/pair/versions/{after}/diff?against={base}")).await.json();
    assert_eq!(span["from"]["id"].as_u64(), Some(base));
    assert_eq!(api.get(&format!("/api/docs/pair/versions/{after}/diff?against=yesterday")).await.error(400), "bad_request");
    server.stop().await;
}

// ---- access and the CLI, against the real binary ----

const OWNER: &str = "the-owner-key-for-history-tests";

async fn as_bearer(api: Api, method: &str, path: &str, token: &str, body: Option<Value>) -> Reply {
    let auth = format!("Bearer {token}");
    let mut headers = vec![("Authorization", auth.as_str())];
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    if !body.is_empty() {
        headers.push(("Content-Type", "application/json"));
    }
    api.send(method, path, &headers, body.as_bytes()).await
}

#[tokio::test]
async fn editors_see_and_restore_history_and_view_only_links_get_403() {
    let dir = TempDir::new("history-access");
    let server = QuireProcess::start(&quire_bin(), dir.path(), &["--owner-key", OWNER, "--version-settle-secs", "1"]).await;
    let api = Api(server.addr);
    let create = json!({ "id": "shared", "content": "hello\n" });
    assert_eq!(as_bearer(api, "POST", "/api/docs", OWNER, Some(create)).await.status, 201);
    let v = as_bearer(api, "POST", "/api/docs/shared/versions", OWNER, Some(json!({ "name": "v" }))).await.json()["id"].as_u64().unwrap();
    let link = |role: &str| as_bearer(api, "POST", "/api/docs/shared/links", OWNER, Some(json!({ "role": role })));
    let view = link("view").await.json()["token"].as_str().unwrap().to_owned();
    let edit = link("edit").await.json()["token"].as_str().unwrap().to_owned();

    let routes = [
        ("GET", "/api/docs/shared/versions".to_owned(), None),
        ("POST", "/api/docs/shared/versions".to_owned(), Some(json!({ "name": "mine" }))),
        ("GET", format!("/api/docs/shared/versions/{v}/content"), None),
        ("GET", format!("/api/docs/shared/versions/{v}/diff"), None),
        ("PATCH", format!("/api/docs/shared/versions/{v}"), Some(json!({ "name": "renamed" }))),
        ("POST", format!("/api/docs/shared/versions/{v}/restore"), Some(json!({}))),
    ];
    for (method, path, body) in &routes {
        assert_eq!(as_bearer(api, method, path, &view, body.clone()).await.error(403), "forbidden", "{method} {path}");
        let reply = as_bearer(api, method, path, &edit, body.clone()).await;
        assert!(matches!(reply.status, 200 | 201), "{method} {path} with an edit link: {}", reply.text());
        assert_eq!(api.send(method, path, &[], b"").await.status, 401, "{method} {path} without credentials");
    }
    // The edit link renamed it; the owner deletes it.
    let all = as_bearer(api, "GET", "/api/docs/shared/versions", OWNER, None).await.json();
    assert!(all["versions"].as_array().unwrap().iter().any(|x| x["name"] == "renamed"));
    assert_eq!(as_bearer(api, "DELETE", &format!("/api/docs/shared/versions/{v}"), &view, None).await.error(403), "forbidden");
    assert_eq!(as_bearer(api, "DELETE", &format!("/api/docs/shared/versions/{v}"), OWNER, None).await.status, 204);
    assert_eq!(as_bearer(api, "GET", &format!("/api/docs/shared/versions/{v}/content"), OWNER, None).await.error(404), "not_found");
}

async fn quire_cli(args: &[&str]) -> std::process::Output {
    let mut command = tokio::process::Command::new(quire_bin());
    command.args(args).env_remove("QUIRE_SERVER").env_remove("QUIRE_TOKEN");
    command.output().await.expect("run quire")
}

#[tokio::test]
async fn cli_lists_versions_and_exports_one() {
    quire_bin();
    let dir = TempDir::new("history-cli");
    let server = TestServer::start(dir.path(), quick()).await;
    let api = Api(server.addr);
    let url = format!("http://{}", server.addr);
    assert_eq!(api.create(json!({ "id": "cli", "content": "# One\n" })).await.status, 201);
    let one = name_version(api, "cli", "First").await;
    assert_eq!(api.put("cli", "text/markdown", b"# Two\n").await.status, 204);
    name_version(api, "cli", "Second").await;

    let out = quire_cli(&["versions", "cli", "--server", &url]).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let listed = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = listed.lines().collect();
    assert_eq!(lines.len(), 3, "a header and two versions, newest first:\n{listed}");
    assert!(lines[1].contains("Second") && lines[2].contains("First") && lines[2].starts_with(&one.to_string()), "{listed}");
    assert!(lines[2].contains("imported"), "{listed}");
    let json = quire_cli(&["versions", "cli", "--json", "--server", &url]).await;
    assert_eq!(serde_json::from_slice::<Value>(&json.stdout).unwrap().as_array().unwrap().len(), 2);

    let out = quire_cli(&["export", "cli", "--version", &one.to_string(), "--server", &url]).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8(out.stdout).unwrap(), "# One\n");
    let missing = quire_cli(&["export", "cli", "--version", "7", "--server", &url]).await;
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no such version"), "{}", String::from_utf8_lossy(&missing.stderr));
    server.stop().await;
}
