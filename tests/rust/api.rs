//! The HTTP API under `/api` and the `quire export`/`import` commands, against a started server:
//! every route's success and error statuses over a real socket, what is on disk afterwards, and
//! that imports reach connected clients live. Longer than most files because it is the one place
//! every route and error status of the feature is checked.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use quire::auth::{Authorizer, Credentials, Denied, Grant, Role};
use quire::store::memory::MemoryStore;
use quire::store::sled::SledStore;
use quire::store::Store;
use quire::Config;
use quire_model::convert::{self, Format};
use quire_model::{schema, DocId};
use quire_tests::http::{Api, Reply};
use quire_tests::{wait_for, Client, TempDir, TestServer};
use serde_json::{json, Value};
use yrs::updates::decoder::Decode;
use yrs::updates::encoder::Encode;
use yrs::{Doc, GetString, ReadTxn, Text, Transact, Update};

// ---- documents and the store ----

/// Standard base64 with padding (the tests crate has no base64 dependency).
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            let c = if i <= chunk.len() { ALPHABET[(n >> (18 - 6 * i) & 63) as usize] } else { b'=' };
            out.push(char::from(c));
        }
    }
    out
}

fn doc_from_update(update: &[u8], v2: bool) -> Doc {
    let doc = schema::new_doc();
    let update = if v2 { Update::decode_v2(update) } else { Update::decode_v1(update) };
    doc.transact_mut().apply_update(update.expect("the update decodes")).expect("the update applies");
    doc
}

fn text_of(doc: &Doc) -> String {
    let text = doc.get_or_insert_text(schema::CONTENT);
    let s = text.get_string(&doc.transact());
    s
}

/// An update that appends `suffix` to the document whose full state is the v1 update `base`.
fn append_update(base: &[u8], suffix: &str) -> Vec<u8> {
    let doc = doc_from_update(base, false);
    let before = doc.transact().state_vector();
    let text = doc.get_or_insert_text(schema::CONTENT);
    {
        let mut txn = doc.transact_mut();
        let end = text.len(&txn);
        text.insert(&mut txn, end, suffix);
    }
    let update = doc.transact().encode_state_as_update_v1(&before);
    update
}

fn open_store(dir: &Path) -> SledStore {
    SledStore::open(dir, 1 << 20).expect("open the stopped server's store")
}

/// The stored document, rebuilt from what sled holds.
async fn stored_doc(store: &SledStore, id: &str) -> Option<Doc> {
    let stored = store.load(&DocId::parse(id).unwrap()).await.unwrap()?;
    let doc = schema::new_doc();
    for update in stored.updates {
        doc.transact_mut().apply_update(Update::decode_v1(&update).unwrap()).unwrap();
    }
    Some(doc)
}

async fn stored_ids(store: &SledStore) -> BTreeSet<String> {
    store.list(0, usize::MAX).await.unwrap().docs.into_iter().map(|(id, _)| id.to_string()).collect()
}

fn ids(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

// ---- the routes ----

#[tokio::test]
async fn documents_are_created_listed_read_and_deleted() {
    let dir = TempDir::new("api-docs");
    let server = TestServer::start(dir.path(), Config::default()).await;
    let api = Api(server.addr);

    let content = json!({ "id": "alpha", "title": "Alpha", "content": "# Hello\n\n**bold**", "format": "markdown" });
    let created = api.create(content).await;
    assert_eq!(created.status, 201, "{}", created.text());
    assert_eq!(created.header("location"), Some("/api/docs/alpha"));
    let meta = created.json();
    assert_eq!((meta["id"].as_str(), meta["title"].as_str()), (Some("alpha"), Some("Alpha")));
    assert!(meta["created_ms"].as_u64().unwrap() > 1_600_000_000_000, "{meta}");
    assert!(meta["size_bytes"].as_u64().unwrap() > 0, "{meta}");

    // No body at all: a random id of 16 [a-z0-9].
    let random = api.send("POST", "/api/docs", &[], b"").await;
    assert_eq!(random.status, 201);
    let random_id = random.json()["id"].as_str().unwrap().to_owned();
    assert_eq!(random_id.len(), 16);
    assert!(random_id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()), "{random_id}");
    assert_eq!(random.header("location"), Some(format!("/api/docs/{random_id}").as_str()));

    assert_eq!(api.create(json!({ "id": "alpha" })).await.error(409), "exists");
    assert_eq!(api.create(json!({ "id": "a b" })).await.error(400), "bad_doc_id");
    assert_eq!(api.create(json!({ "idd": "x" })).await.error(400), "bad_request");
    let not_json = api.send("POST", "/api/docs", &[("Content-Type", "application/json")], b"{").await;
    assert_eq!(not_json.error(400), "bad_request");
    let wrong_type = api.send("POST", "/api/docs", &[("Content-Type", "text/plain")], b"{}").await;
    assert_eq!(wrong_type.error(415), "unsupported_media_type");
    let bad_content = json!({ "id": "broken", "content": "{not a delta", "format": "delta" });
    assert_eq!(api.create(bad_content).await.error(400), "bad_content");
    assert_eq!(api.get("/api/docs/broken").await.error(404), "not_found");

    let alpha = api.get("/api/docs/alpha").await;
    assert_eq!((alpha.status, alpha.json()), (200, meta));
    assert_eq!(api.get("/api/docs/nope").await.error(404), "not_found");
    assert_eq!(api.get("/api/docs/a%20b").await.error(400), "bad_doc_id");

    // Newest first: p2 was written last.
    for p in ["p0", "p1", "p2"] {
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert_eq!(api.create(json!({ "id": p })).await.status, 201);
    }
    let all = api.get("/api/docs").await.json();
    assert_eq!((all["total"].as_u64(), &all["next_offset"]), (Some(5), &Value::Null));
    let order: Vec<&str> = all["docs"].as_array().unwrap().iter().map(|d| d["id"].as_str().unwrap()).collect();
    assert_eq!(order[..3], ["p2", "p1", "p0"]);
    let mut paged = Vec::new();
    let mut offset = Some(0);
    while let Some(at) = offset {
        let page = api.get(&format!("/api/docs?limit=2&offset={at}")).await.json();
        assert_eq!(page["total"], 5);
        let docs = page["docs"].as_array().unwrap();
        assert!(docs.len() <= 2);
        paged.extend(docs.iter().map(|d| d["id"].as_str().unwrap().to_owned()));
        offset = page["next_offset"].as_u64();
    }
    assert_eq!(paged, order, "pages neither overlap nor skip");
    for bad in ["limit=0", "limit=501", "limit=x", "offset=-1"] {
        assert_eq!(api.get(&format!("/api/docs?{bad}")).await.error(400), "bad_request", "{bad}");
    }

    // Deleting disconnects whoever is connected.
    let client = Client::connect_synced(&server.ws_url("p1")).await;
    assert_eq!(api.delete("/api/docs/p1").await.status, 204);
    assert_eq!(client.wait_closed().await.0, 4410);
    assert_eq!(api.delete("/api/docs/p1").await.error(404), "not_found");
    assert_eq!(api.get("/api/docs/p1").await.error(404), "not_found");
    server.stop().await;

    let store = open_store(dir.path());
    assert_eq!(stored_ids(&store).await, ids(&["alpha", "p0", "p2", &random_id]));
    assert!(store.load(&DocId::parse("p1").unwrap()).await.unwrap().is_none());
    assert_eq!(store.meta(&DocId::parse("alpha").unwrap()).await.unwrap().unwrap().title, "Alpha");
    let alpha = stored_doc(&store, "alpha").await.unwrap();
    assert_eq!(convert::export(&alpha, Format::Markdown).unwrap(), "# Hello\n\n**bold**\n");
}

#[tokio::test]
async fn content_exports_in_every_format() {
    let dir = TempDir::new("api-export");
    let server = TestServer::start(dir.path(), Config::default()).await;
    let api = Api(server.addr);
    let markdown = "# Notes\n\nSome **bold** text\n\n- one\n- two\n";
    assert_eq!(api.create(json!({ "id": "ex", "content": markdown })).await.status, 201);

    let md = api.get("/api/docs/ex/content").await;
    assert_eq!((md.status, md.header("content-type")), (200, Some("text/markdown; charset=utf-8")));
    assert_eq!(md.text(), markdown);
    assert_eq!(md.header("x-content-type-options"), Some("nosniff"));
    let html = api.get("/api/docs/ex/content?format=html").await;
    assert_eq!(html.header("content-type"), Some("text/html; charset=utf-8"));
    let expected = "<h1>Notes</h1>\n<p>Some <strong>bold</strong> text</p>\n<ul>\n<li>one</li>\n<li>two</li>\n</ul>\n";
    assert_eq!(html.text(), expected);
    let text = api.get("/api/docs/ex/content?format=text").await;
    assert_eq!(text.header("content-type"), Some("text/plain; charset=utf-8"));
    assert_eq!(text.text(), "Notes\nSome bold text\none\ntwo\n");
    let delta = api.get("/api/docs/ex/content?format=delta").await;
    assert_eq!(delta.header("content-type"), Some("application/json"));
    assert_eq!(delta.json()["ops"][3], json!({ "insert": "bold", "attributes": { "bold": true } }));

    let v1 = api.get("/api/docs/ex/content?format=yjs").await;
    assert_eq!(v1.header("content-type"), Some("application/octet-stream"));
    let replica = doc_from_update(&v1.body, false);
    assert_eq!(convert::export(&replica, Format::Markdown).unwrap(), markdown);
    let v2 = api.get("/api/docs/ex/content?format=yjs&encoding=v2").await;
    assert_eq!(text_of(&doc_from_update(&v2.body, true)), text_of(&replica));
    assert_ne!(v1.body, v2.body);

    // `since`: only what the replica lacks, however the state vector is spelled.
    let sv = replica.transact().state_vector().encode_v1();
    assert_eq!(api.post_update("ex", None, &append_update(&v1.body, "tail")).await.status, 204);
    let standard = base64(&sv);
    let url_safe = standard.trim_end_matches('=').replace('+', "-").replace('/', "_");
    let escaped = standard.replace('+', "%2B").replace('/', "%2F").replace('=', "%3D");
    let mut diffs = Vec::new();
    // Unescaped, a `+` arrives as a space: the server reads it back as `+`.
    for spelled in [&escaped, &url_safe, &standard] {
        let diff = api.get(&format!("/api/docs/ex/content?format=yjs&since={spelled}")).await;
        assert_eq!(diff.status, 200, "{spelled}: {}", String::from_utf8_lossy(&diff.body));
        diffs.push(diff.body);
    }
    assert!(diffs.iter().all(|d| d == &diffs[0]));
    assert!(diffs[0].len() < v1.body.len() / 2, "{} vs {} bytes", diffs[0].len(), v1.body.len());
    replica.transact_mut().apply_update(Update::decode_v1(&diffs[0]).unwrap()).unwrap();
    assert_eq!(text_of(&replica), "Notes\nSome bold text\none\ntwo\ntail");
    let now = base64(&replica.transact().state_vector().encode_v1()).replace('+', "%2B").replace('=', "%3D");
    let nothing = api.get(&format!("/api/docs/ex/content?format=yjs&since={now}")).await;
    assert_eq!(nothing.body, [0, 0], "an empty v1 update: no structs, no deletions");

    for bad in ["format=pdf", "format=yjs&encoding=v3", "format=yjs&since=!!", "format=yjs&since=", "since=AA"] {
        assert_eq!(api.get(&format!("/api/docs/ex/content?{bad}")).await.error(400), "bad_request", "{bad}");
    }
    assert_eq!(api.get("/api/docs/ex/content?format=html&encoding=v2").await.error(400), "bad_request");
    assert_eq!(api.get("/api/docs/none/content").await.error(404), "not_found");
    server.stop().await;
}

/// No element or attribute that could run: everything the user wrote is text.
fn assert_inert(html: &Reply) {
    let body = html.text().to_ascii_lowercase();
    for active in ["<script", "<img", "<iframe", "javascript:"] {
        assert!(!body.contains(active), "{active} in {body}");
    }
    assert_eq!(html.header("content-security-policy"), Some("default-src 'none'; sandbox"));
    assert_eq!(html.header("x-content-type-options"), Some("nosniff"));
}

#[tokio::test]
async fn html_export_of_script_text_is_inert() {
    let server = TestServer::with_store(Arc::new(MemoryStore::new()), Config::default()).await;
    let api = Api(server.addr);
    let hostile = "<script>alert(1)</script> & <img src=x onerror=alert(2)>\n";
    assert_eq!(api.create(json!({ "id": "x", "content": hostile, "format": "text" })).await.status, 201);
    let html = api.get("/api/docs/x/content?format=html").await;
    assert_inert(&html);
    assert!(html.text().contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; &lt;img"), "{}", html.text());

    let markdown = b"[click](javascript:alert(3)) <script>alert(4)</script> <iframe src=x>";
    assert_eq!(api.put("x", "text/markdown", markdown).await.status, 204);
    assert_inert(&api.get("/api/docs/x/content?format=html").await);
    // A Delta may carry any attribute: the link is refused or dropped, never exported.
    let link = json!({ "insert": "link", "attributes": { "link": "javascript:alert(5)" } });
    let delta = json!({ "ops": [link, { "insert": "\n" }] }).to_string();
    let status = api.put("x", "application/json", delta.as_bytes()).await.status;
    assert!(status == 204 || status == 400, "{status}");
    assert_inert(&api.get("/api/docs/x/content?format=html").await);
    server.stop().await;
}

#[tokio::test]
async fn an_import_reaches_connected_clients_live() {
    let dir = TempDir::new("api-live");
    let server = TestServer::start(dir.path(), Config::default()).await;
    let api = Api(server.addr);
    assert_eq!(api.create(json!({ "id": "live", "content": "old words" })).await.status, 201);
    let client = Client::connect_synced(&server.ws_url("live")).await;
    client.wait_text("old words\n").await;

    assert_eq!(api.put("live", "text/markdown; charset=utf-8", b"# Fresh\n\n*new* words").await.status, 204);
    client.wait_text("Fresh\nnew words\n").await;
    assert!(client.delta().contains("header"), "{}", client.delta());
    assert_eq!(api.put("live", "text/html", "<p>from <b>HTML</b> — 你好</p>".as_bytes()).await.status, 204);
    client.wait_text("from HTML — 你好\n").await;
    let bold = json!({ "insert": "bold", "attributes": { "bold": true } });
    let delta = json!({ "ops": [{ "insert": "delta " }, bold, { "insert": "\n" }] }).to_string();
    assert_eq!(api.put("live", "application/json", delta.as_bytes()).await.status, 204);
    client.wait_text("delta bold\n").await;
    assert_eq!(api.put("live", "text/plain", "plain 😀\n".as_bytes()).await.status, 204);
    client.wait_text("plain 😀\n").await;

    // A Yjs update, through PUT and through /updates: merged, and live too.
    let state = api.get("/api/docs/live/content?format=yjs").await.body;
    let update = append_update(&state, "+put");
    assert_eq!(api.put("live", "application/octet-stream", &update).await.status, 204);
    client.wait_text("plain 😀\n+put").await;
    let state = api.get("/api/docs/live/content?format=yjs").await.body;
    let update = append_update(&state, "+post");
    assert_eq!(api.post_update("live", Some("application/octet-stream"), &update).await.status, 204);
    client.wait_text("plain 😀\n+put+post").await;
    assert!(client.closed().is_none(), "the client was disconnected");
    drop(client);
    server.stop().await;

    let store = open_store(dir.path());
    assert_eq!(text_of(&stored_doc(&store, "live").await.unwrap()), "plain 😀\n+put+post");
}

#[tokio::test]
async fn failed_requests_change_nothing_on_disk() {
    let dir = TempDir::new("api-failures");
    let limit = 64 * 1024;
    let config = Config { max_message_bytes: limit, ..Config::default() };
    let server = TestServer::start(dir.path(), config.clone()).await;
    let keep = json!({ "id": "keep", "title": "Kept", "content": "**keep** me" });
    assert_eq!(Api(server.addr).create(keep).await.status, 201);
    server.stop().await;
    let id = DocId::parse("keep").unwrap();
    let on_disk = async |store: &SledStore| {
        (store.load(&id).await.unwrap().unwrap(), store.meta(&id).await.unwrap().unwrap(), store.list(0, usize::MAX).await.unwrap())
    };
    let before = on_disk(&open_store(dir.path())).await;

    let server = TestServer::start(dir.path(), config).await;
    let api = Api(server.addr);
    let client = Client::connect_synced(&server.ws_url("keep")).await;
    let text = client.text();
    assert_eq!(api.put("keep", "application/json", b"{not json").await.error(400), "bad_content");
    assert_eq!(api.put("keep", "application/json", br#"{"ops":[{"insert":5}]}"#).await.error(400), "bad_content");
    assert_eq!(api.put("keep", "text/plain", &[b'a', 0xff, 0xfe]).await.error(400), "bad_request");
    assert_eq!(api.put("keep", "image/png", b"x").await.error(415), "unsupported_media_type");
    assert_eq!(api.put("keep", "text/plain; charset=latin1", b"x").await.error(415), "unsupported_media_type");
    let untyped = api.send("PUT", "/api/docs/keep/content", &[], b"text").await;
    assert_eq!(untyped.error(415), "unsupported_media_type");
    let too_big = api.put("keep", "text/plain", &vec![b'a'; limit + 1]).await;
    assert_eq!(too_big.error(413), "too_large");
    assert!(too_big.json()["error"]["message"].as_str().unwrap().contains(&limit.to_string()));
    assert_eq!(api.put("keep", "application/octet-stream", &[0xff; 40]).await.error(422), "bad_update");
    let octets = Some("application/octet-stream");
    assert_eq!(api.post_update("keep", octets, b"").await.error(422), "bad_update");
    assert_eq!(api.post_update("keep", octets, b"\x05garbage").await.error(422), "bad_update");
    assert_eq!(api.post_update("keep", Some("text/plain"), b"x").await.error(415), "unsupported_media_type");
    assert_eq!(api.post_update("keep", octets, &vec![0; limit + 1]).await.error(413), "too_large");
    let again = json!({ "id": "keep", "title": "Other", "content": "replaced?" });
    assert_eq!(api.create(again).await.error(409), "exists");
    assert_eq!(api.create(json!({ "id": "huge", "content": "a".repeat(limit) })).await.error(413), "too_large");
    let unparsable = json!({ "id": "newbad", "content": "[1,", "format": "delta" });
    assert_eq!(api.create(unparsable).await.error(400), "bad_content");
    assert_eq!(api.put("ghost", "text/plain", b"x").await.error(404), "not_found");
    assert_eq!(api.delete("/api/docs/ghost").await.error(404), "not_found");
    assert_eq!(api.get("/api/docs/ghost/content").await.error(404), "not_found");
    assert_eq!(client.text(), text, "a connected client saw a change");
    drop(client);
    server.stop().await;

    assert_eq!(on_disk(&open_store(dir.path())).await, before);
}

#[tokio::test]
async fn the_body_limit_is_max_message_bytes() {
    let limit = 32 * 1024;
    let config = Config { max_message_bytes: limit, ..Config::default() };
    let server = TestServer::with_store(Arc::new(MemoryStore::new()), config).await;
    let api = Api(server.addr);
    assert_eq!(api.create(json!({ "id": "edge" })).await.status, 201);
    assert_eq!(api.put("edge", "text/plain", &vec![b'a'; limit]).await.status, 204);
    assert_eq!(api.put("edge", "text/plain", &vec![b'b'; limit + 1]).await.error(413), "too_large");
    let text = api.get("/api/docs/edge/content?format=text").await.text();
    assert_eq!(text.trim_end(), "a".repeat(limit));
    server.stop().await;
}

/// Admins (header `x-role: admin`) are the owner; others may not open `secret` and may only
/// view `ro-*`, and edit the rest.
struct Policy;

#[async_trait::async_trait]
impl Authorizer for Policy {
    async fn authorize(&self, doc: Option<&DocId>, credentials: &Credentials<'_>) -> Result<Grant, Denied> {
        let grant = |role| Ok(Grant { role, link: None, expires_ms: None });
        if credentials.headers.get("x-role").is_some_and(|v| v == "admin") {
            return grant(Role::Owner);
        }
        match doc.map(DocId::as_str) {
            None => Err(Denied::Forbidden),
            Some("secret") => Err(Denied::Forbidden),
            Some(id) if id.starts_with("ro-") => grant(Role::View),
            Some(_) => grant(Role::Edit),
        }
    }
}

#[tokio::test]
async fn the_access_policy_applies_to_the_api() {
    let server = TestServer::with_auth(Arc::new(Policy), Config::default()).await;
    let api = Api(server.addr);
    let admin = [("Content-Type", "application/json"), ("x-role", "admin")];
    for id in ["secret", "ro-doc"] {
        let body = json!({ "id": id, "content": "hi" }).to_string();
        assert_eq!(api.send("POST", "/api/docs", &admin, body.as_bytes()).await.status, 201);
    }
    // Only the owner lists and creates.
    assert_eq!(api.create(json!({ "id": "ro-new" })).await.error(403), "forbidden");
    assert_eq!(api.get("/api/docs").await.error(403), "forbidden");
    assert_eq!(api.send("GET", "/api/docs", &admin, b"").await.json()["total"], 2);
    assert_eq!(api.get("/api/docs/secret").await.error(403), "forbidden");
    assert_eq!(api.get("/api/docs/secret/content").await.error(403), "forbidden");
    assert_eq!(api.get("/api/docs/ro-doc/content").await.text(), "hi\n");
    assert_eq!(api.put("ro-doc", "text/plain", b"changed").await.error(403), "forbidden");
    assert_eq!(api.post_update("ro-doc", None, b"x").await.error(403), "forbidden");
    assert_eq!(api.delete("/api/docs/ro-doc").await.error(403), "forbidden");
    assert_eq!(api.get("/api/docs/ro-doc/content").await.text(), "hi\n");
    server.stop().await;
}

#[tokio::test]
async fn the_openapi_document_lists_every_route() {
    let server = TestServer::with_store(Arc::new(MemoryStore::new()), Config::default()).await;
    let reply = Api(server.addr).get("/api/openapi.json").await;
    assert_eq!((reply.status, reply.header("content-type")), (200, Some("application/json")));
    let doc = reply.json();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"), "{}", doc["openapi"]);
    let routes = [
        ("get", "/api/docs"),
        ("post", "/api/docs"),
        ("get", "/api/docs/{id}"),
        ("delete", "/api/docs/{id}"),
        ("get", "/api/docs/{id}/content"),
        ("put", "/api/docs/{id}/content"),
        ("post", "/api/docs/{id}/updates"),
        ("get", "/api/openapi.json"),
    ];
    for (method, path) in routes {
        assert!(doc["paths"][path][method].is_object(), "{method} {path} is not documented");
    }
    assert_eq!(doc, serde_json::to_value(quire::http::openapi::document()).unwrap());
    server.stop().await;
}

#[tokio::test]
async fn a_document_typed_over_websocket_exports_as_markdown() {
    let server = TestServer::with_store(Arc::new(MemoryStore::new()), Config::default()).await;
    let client = Client::connect_synced(&server.ws_url("typed")).await;
    client.push("Title\nbody");
    client.format(5, 1, yrs::types::Attrs::from([("header".into(), yrs::Any::from(1.0))]));
    // A second replica with the heading proves the server has applied both edits.
    let watcher = Client::connect(&server.ws_url("typed")).await;
    wait_for(Duration::from_secs(10), "the heading to reach a second client", || {
        watcher.delta().contains("header")
    })
    .await;
    assert_eq!(Api(server.addr).get("/api/docs/typed/content").await.text(), "# Title\n\nbody\n");
    server.stop().await;
}

// ---- the CLI ----

async fn quire(args: &[&str], env_server: Option<&str>) -> std::process::Output {
    let mut command = tokio::process::Command::new(quire_tests::process::quire_bin());
    command.args(args).env_remove("QUIRE_SERVER").env_remove("RUST_BACKTRACE");
    if let Some(server) = env_server {
        command.env("QUIRE_SERVER", server);
    }
    command.output().await.expect("run quire")
}

/// Asserts how the command ended and that stderr says `said`.
fn ended(output: &std::process::Output, success: bool, said: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.success(), success, "{stderr}");
    assert!(stderr.contains(said), "expected {said:?} in: {stderr}");
}

#[tokio::test]
async fn cli_exports_and_imports_against_a_running_server() {
    quire_tests::process::quire_bin(); // built before the server starts: it may take a while
    let dir = TempDir::new("api-cli");
    let files = TempDir::new("api-cli-files");
    std::fs::create_dir_all(files.path()).unwrap();
    let file = |name: &str| files.path().join(name).to_str().unwrap().to_owned();
    let server = TestServer::start(dir.path(), Config::default()).await;
    let api = Api(server.addr);
    let url = format!("http://{}", server.addr);

    let markdown = "# Plan\n\nShip **it**\n\n- write\n- test\n";
    std::fs::write(file("plan.md"), markdown).unwrap();
    ended(&quire(&["import", "plan", &file("plan.md"), "--server", &url], None).await, true, "created `plan`");
    assert_eq!(api.get("/api/docs/plan/content").await.text(), markdown);

    // Into an existing document: replaced, and a connected client sees it live. The server
    // comes from QUIRE_SERVER this time.
    let client = Client::connect_synced(&server.ws_url("plan")).await;
    std::fs::write(file("plan.html"), "<h2>Plan B</h2><p>ok</p>").unwrap();
    ended(&quire(&["import", "plan", &file("plan.html")], Some(&url)).await, true, "replaced `plan`");
    client.wait_text("Plan B\nok\n").await;

    let out = quire(&["export", "plan", "--format", "md", "--server", &url], None).await;
    ended(&out, true, "");
    assert_eq!(String::from_utf8(out.stdout).unwrap(), "## Plan B\n\nok\n");
    let out = quire(&["export", "plan", "-f", "html", "-o", &file("out.html"), "--server", &url], None).await;
    ended(&out, true, "");
    assert!(out.stdout.is_empty());
    assert_eq!(std::fs::read_to_string(file("out.html")).unwrap(), "<h2>Plan B</h2>\n<p>ok</p>\n");

    // Yjs out and in again: a new document with the same content.
    let out = quire(&["export", "plan", "-f", "yjs", "-o", &file("plan.yjs"), "--server", &url], None).await;
    ended(&out, true, "");
    ended(&quire(&["import", "copy", &file("plan.yjs"), "--server", &url], None).await, true, "created `copy`");
    assert_eq!(api.get("/api/docs/copy/content").await.text(), "## Plan B\n\nok\n");
    // The extension says nothing: --format does.
    std::fs::write(file("notes.dat"), "just text").unwrap();
    let out = quire(&["import", "notes", &file("notes.dat"), "--format", "txt", "--server", &url], None).await;
    ended(&out, true, "created `notes`");
    assert_eq!(api.get("/api/docs/notes/content?format=text").await.text(), "just text\n");

    // Failures: said on stderr, non-zero exit, nothing left behind.
    ended(&quire(&["export", "absent", "--server", &url], None).await, false, "no such document");
    std::fs::write(file("junk.bin"), b"\x07not an update").unwrap();
    ended(&quire(&["import", "junk", &file("junk.bin"), "--server", &url], None).await, false, "422");
    assert_eq!(api.get("/api/docs/junk").await.status, 404);
    ended(&quire(&["import", "notes", &file("notes.dat"), "--server", &url], None).await, false, "--format");
    let nobody = "http://127.0.0.1:9";
    ended(&quire(&["export", "plan", "--server", nobody], None).await, false, "cannot talk to quire");
    drop(client);
    server.stop().await;

    let store = open_store(dir.path());
    assert_eq!(stored_ids(&store).await, ids(&["copy", "notes", "plan"]));
    assert_eq!(text_of(&stored_doc(&store, "copy").await.unwrap()), "Plan B\nok\n");
}

#[tokio::test]
async fn a_deleted_document_stays_deleted_when_a_client_with_a_copy_reconnects() {
    let dir = TempDir::new("api-tombstone");
    let server = TestServer::start(dir.path(), Config::default()).await;
    let api = Api(server.addr);
    assert_eq!(api.create(json!({ "id": "gone", "title": "Old" })).await.status, 201);
    let client = Client::connect_synced(&server.ws_url("gone")).await;
    client.push("a copy on the client");
    client.wait_text("a copy on the client").await;
    assert_eq!(api.delete("/api/docs/gone").await.status, 204);
    assert_eq!(client.wait_closed().await.0, 4410);

    // The client reconnects with its copy, as y-websocket does: refused, nothing comes back.
    let copy = client.disconnect();
    let again = Client::connect_with(&server.ws_url("gone"), copy).await;
    assert_eq!(again.wait_closed().await, (4410, "document deleted".to_owned()));
    assert_eq!(api.get("/api/docs/gone").await.error(404), "not_found");
    server.stop().await;

    // Still deleted after a restart.
    let store = open_store(dir.path());
    let id = DocId::parse("gone").unwrap();
    assert!(store.load(&id).await.unwrap().is_none());
    assert!(store.deleted(&id).await.unwrap());
    drop(store);
    let server = TestServer::start(dir.path(), Config::default()).await;
    let late = Client::connect(&server.ws_url("gone")).await;
    assert_eq!(late.wait_closed().await.0, 4410);

    // Creating the id again makes it an ordinary, empty document.
    let api = Api(server.addr);
    assert_eq!(api.create(json!({ "id": "gone" })).await.status, 201);
    let fresh = Client::connect_synced(&server.ws_url("gone")).await;
    fresh.push("new life");
    Client::connect_synced(&server.ws_url("gone")).await.wait_text("new life").await;
    assert_eq!(api.get("/api/docs/gone/content?format=text").await.text(), "new life");

    // A device that never saw the deletion comes back with its copy of the old one: it is told
    // its copy belongs to a deleted document and gets nothing of the new one; nothing merges.
    let copy = again.disconnect();
    let stale = Client::connect_with(&server.ws_url("gone"), copy.clone()).await;
    assert_eq!(stale.wait_closed().await, (4412, "this copy belongs to a deleted document of the same id".to_owned()));
    assert_eq!(stale.text(), "a copy on the client", "it was sent nothing of the new document");
    let old_state = quire_model::protocol::full_state(&copy);
    let pushed = api.post_update("gone", Some("application/octet-stream"), &old_state).await;
    assert_eq!(pushed.error(409), "stale_copy");
    server.stop().await;
    assert!(!open_store(dir.path()).deleted(&id).await.unwrap());

    // The new document stays apart from old copies after a restart too.
    let server = TestServer::start(dir.path(), Config::default()).await;
    let stale = Client::connect_with(&server.ws_url("gone"), copy).await;
    assert_eq!(stale.wait_closed().await.0, 4412);
    assert_eq!(Api(server.addr).get("/api/docs/gone/content?format=text").await.text(), "new life");
    server.stop().await;
}

#[tokio::test]
async fn app_pages_carry_a_strict_content_security_policy() {
    let web = TempDir::new("web");
    std::fs::create_dir_all(web.path().join("assets")).unwrap();
    std::fs::write(web.path().join("index.html"), "<!doctype html><title>quire</title>").unwrap();
    std::fs::write(web.path().join("assets/app.js"), "console.log(1)").unwrap();
    let config = Config {
        web_dir: web.path().to_path_buf(),
        ..Config::default()
    };
    let server = TestServer::with_store(Arc::new(MemoryStore::new()), config).await;
    let api = Api(server.addr);
    for path in ["/", "/d/some-doc", "/assets/app.js"] {
        let reply = api.get(path).await;
        assert_eq!(reply.status, 200, "{path}");
        let csp = reply.header("content-security-policy").unwrap_or_else(|| panic!("{path}: no policy"));
        for directive in ["default-src 'self'", "script-src 'self' 'wasm-unsafe-eval'", "frame-ancestors 'none'", "object-src 'none'"] {
            assert!(csp.contains(directive), "{path}: {csp}");
        }
        assert!(!csp.contains("unsafe-inline"), "{path}: {csp}");
        assert_eq!(reply.header("x-content-type-options"), Some("nosniff"), "{path}");
        assert_eq!(reply.header("x-frame-options"), Some("DENY"), "{path}");
    }
    server.stop().await;
}
