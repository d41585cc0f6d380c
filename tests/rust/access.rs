//! Access control, against the real binary with its default policy: the owner key, share links
//! for view and edit, tokens, live revocation, the owner's browser session and its protection
//! from other sites, and `--auth none`.

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use quire_tests::http::{Api, Reply};
use quire_tests::process::{quire_bin, QuireProcess};
use quire_tests::{Client, TempDir};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{HeaderName, HeaderValue};

const OWNER: &str = "the-owner-key-for-tests";

async fn keyed(dir: &TempDir) -> QuireProcess {
    QuireProcess::start(&quire_bin(), dir.path(), &["--owner-key", OWNER]).await
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// `Api` with a bearer token.
async fn send(api: Api, method: &str, path: &str, token: Option<&str>, content_type: Option<&str>, body: &[u8]) -> Reply {
    let auth = token.map(bearer);
    let mut headers: Vec<(&str, &str)> = Vec::new();
    if let Some(auth) = &auth {
        headers.push(("Authorization", auth));
    }
    if let Some(content_type) = content_type {
        headers.push(("Content-Type", content_type));
    }
    api.send(method, path, &headers, body).await
}

async fn create_doc(api: Api, id: &str, content: &str) {
    let body = json!({ "id": id, "content": content }).to_string();
    let reply = send(api, "POST", "/api/docs", Some(OWNER), Some("application/json"), body.as_bytes()).await;
    assert_eq!(reply.status, 201, "{}", reply.text());
}

async fn make_link(api: Api, doc: &str, body: Value) -> Value {
    let path = format!("/api/docs/{doc}/links");
    let reply = send(api, "POST", &path, Some(OWNER), Some("application/json"), body.to_string().as_bytes()).await;
    assert_eq!(reply.status, 201, "{}", reply.text());
    reply.json()
}

/// The HTTP status a WebSocket upgrade to `url` gets (101 if it opens).
async fn upgrade_status(url: &str, headers: &[(&str, &str)]) -> u16 {
    let mut request = url.to_owned().into_client_request().unwrap();
    for (name, value) in headers {
        let name = HeaderName::from_bytes(name.as_bytes()).unwrap();
        request.headers_mut().insert(name, HeaderValue::from_str(value).unwrap());
    }
    match tokio_tungstenite::connect_async(request).await {
        Ok(_) => 101,
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => response.status().as_u16(),
        Err(other) => panic!("upgrade to {url} failed: {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_credentials_every_route_and_the_socket_are_refused() {
    let dir = TempDir::new("access-none");
    let server = keyed(&dir).await;
    let api = Api(server.addr);
    create_doc(api, "closed", "private").await;
    for (method, path) in [
        ("GET", "/api/docs"),
        ("POST", "/api/docs"),
        ("GET", "/api/docs/closed"),
        ("DELETE", "/api/docs/closed"),
        ("GET", "/api/docs/closed/content"),
        ("PUT", "/api/docs/closed/content"),
        ("POST", "/api/docs/closed/updates"),
        ("GET", "/api/docs/closed/links"),
        ("POST", "/api/docs/closed/links"),
        ("DELETE", "/api/docs/closed/links/x"),
        ("GET", "/metrics"),
        // A document that does not exist answers the same: nothing leaks.
        ("GET", "/api/docs/nothing-here"),
    ] {
        let reply = send(api, method, path, None, Some("text/plain"), b"x").await;
        assert_eq!(reply.error(401), "unauthenticated", "{method} {path}");
    }
    assert_eq!(upgrade_status(&server.ws_url("closed"), &[]).await, 401);
    // What everyone may reach: health, the app shell.
    assert_eq!(api.get("/healthz").await.status, 200);
    // The owner key opens everything.
    assert_eq!(send(api, "GET", "/api/docs", Some(OWNER), None, b"").await.json()["total"], 1);
    assert_eq!(upgrade_status(&format!("{}?token={OWNER}", server.ws_url("closed")), &[]).await, 101);
    server.kill9().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_view_link_reads_and_its_writes_go_nowhere_while_an_edit_link_edits() {
    let dir = TempDir::new("access-links");
    let server = keyed(&dir).await;
    let api = Api(server.addr);
    create_doc(api, "shared", "Hello").await;
    let view = make_link(api, "shared", json!({ "role": "view", "label": "for the board" })).await;
    let edit = make_link(api, "shared", json!({ "role": "edit" })).await;
    assert!(view["url"].as_str().unwrap().ends_with(&format!("/d/shared#token={}", view["token"].as_str().unwrap())));
    let (view_token, edit_token) = (view["token"].as_str().unwrap(), edit["token"].as_str().unwrap());

    let url = |token: &str| format!("{}?token={token}", server.ws_url("shared"));
    let watcher = Client::connect_synced(&url(OWNER)).await;
    let viewer = Client::connect_synced(&url(view_token)).await;
    let editor = Client::connect_synced(&url(edit_token)).await;
    assert_eq!(viewer.text(), "Hello\n");
    editor.push("from the editor");
    watcher.wait_text("Hello\nfrom the editor").await;
    viewer.wait_text("Hello\nfrom the editor").await;

    viewer.push(" and the viewer");
    quire_tests::wait_for(Duration::from_secs(10), "the permission-denied message", || viewer.denied().is_some()).await;
    assert!(viewer.denied().unwrap().contains("view only"));
    editor.push("!");
    watcher.wait_text("Hello\nfrom the editor!").await;
    assert!(!watcher.text().contains("viewer"));

    // Over HTTP: the view token exports; it may not change anything.
    let export = send(api, "GET", "/api/docs/shared/content?format=text", Some(view_token), None, b"").await;
    assert_eq!(export.text(), "Hello\nfrom the editor!");
    let put = send(api, "PUT", "/api/docs/shared/content", Some(view_token), Some("text/plain"), b"gone").await;
    assert_eq!(put.error(403), "forbidden");
    assert_eq!(send(api, "PUT", "/api/docs/shared/content", Some(edit_token), Some("text/plain"), b"Hello again").await.status, 204);
    assert_eq!(send(api, "DELETE", "/api/docs/shared", Some(edit_token), None, b"").await.error(403), "forbidden");
    assert_eq!(send(api, "GET", "/api/docs", Some(edit_token), None, b"").await.error(403), "forbidden");
    let links = send(api, "GET", "/api/docs/shared/links", Some(OWNER), None, b"").await.json();
    let links = links["links"].as_array().unwrap();
    assert_eq!(links.len(), 2);
    let listed = links.iter().find(|l| l["id"] == view["id"]).unwrap();
    assert_eq!((&listed["label"], &listed["role"], &listed["token"]), (&json!("for the board"), &json!("view"), &view["token"]));

    // After a restart the viewer's words are nowhere.
    drop((watcher, viewer, editor));
    let status = server.terminate().await;
    assert!(status.success());
    let server = keyed(&dir).await;
    let text = send(Api(server.addr), "GET", "/api/docs/shared/content?format=text", Some(OWNER), None, b"").await.text();
    assert_eq!(text, "Hello again\n");
    server.kill9().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_open_their_own_document_only_and_bad_ones_are_refused() {
    let dir = TempDir::new("access-tokens");
    let server = keyed(&dir).await;
    let api = Api(server.addr);
    create_doc(api, "a", "A").await;
    create_doc(api, "b", "B").await;
    let token = make_link(api, "a", json!({ "role": "edit" })).await["token"].as_str().unwrap().to_owned();
    let b_url = format!("{}?token={token}", server.ws_url("b"));
    assert_eq!(upgrade_status(&b_url, &[]).await, 403, "a token for a opens b");
    assert_eq!(send(api, "GET", "/api/docs/b/content", Some(&token), None, b"").await.error(403), "forbidden");

    // Tampered: one character of the payload changed.
    let mut tampered = token.clone().into_bytes();
    let at = token.find('.').unwrap() + 5;
    tampered[at] = if tampered[at] == b'x' { b'y' } else { b'x' };
    let tampered = String::from_utf8(tampered).unwrap();
    assert_eq!(send(api, "GET", "/api/docs/a/content", Some(&tampered), None, b"").await.error(401), "invalid_credentials");
    assert_eq!(upgrade_status(&format!("{}?token={tampered}", server.ws_url("a")), &[]).await, 401);

    // Expired: a link that lasts a second.
    let short = make_link(api, "a", json!({ "role": "view", "expires_in_secs": 1 })).await;
    let short_token = short["token"].as_str().unwrap().to_owned();
    let live = Client::connect_synced(&format!("{}?token={short_token}", server.ws_url("a"))).await;
    // On a live connection it ends as a removed link does.
    assert_eq!(live.wait_closed().await, (4403, "access expired".to_owned()));
    assert_eq!(send(api, "GET", "/api/docs/a/content", Some(&short_token), None, b"").await.error(401), "invalid_credentials");
    server.kill9().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_a_link_closes_its_connections_at_once_and_no_one_else() {
    let dir = TempDir::new("access-revoke");
    let server = keyed(&dir).await;
    let api = Api(server.addr);
    create_doc(api, "meeting", "Agenda").await;
    let link = make_link(api, "meeting", json!({ "role": "edit" })).await;
    let other = make_link(api, "meeting", json!({ "role": "edit" })).await;
    let url = |token: &str| format!("{}?token={token}", server.ws_url("meeting"));
    let guest = Client::connect_synced(&url(link["token"].as_str().unwrap())).await;
    let colleague = Client::connect_synced(&url(other["token"].as_str().unwrap())).await;
    let owner = Client::connect_synced(&url(OWNER)).await;

    let path = format!("/api/docs/meeting/links/{}", link["id"].as_str().unwrap());
    let removed_at = Instant::now();
    assert_eq!(send(api, "DELETE", &path, Some(OWNER), None, b"").await.status, 204);
    assert_eq!(guest.wait_closed().await, (4403, "access revoked".to_owned()));
    let took = removed_at.elapsed();
    assert!(took < Duration::from_secs(1), "closed {took:?} after the link was removed");
    assert!(owner.closed().is_none() && colleague.closed().is_none());
    colleague.push(" still here");
    owner.wait_text("Agenda\n still here").await;
    // And the token is refused from now on, everywhere.
    assert_eq!(upgrade_status(&url(link["token"].as_str().unwrap()), &[]).await, 401);
    assert_eq!(send(api, "DELETE", &path, Some(OWNER), None, b"").await.error(404), "not_found");
    server.kill9().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sign_in_url_sets_a_session_that_other_sites_cannot_use() {
    let dir = TempDir::new("access-session");
    let server = keyed(&dir).await;
    let api = Api(server.addr);
    create_doc(api, "mine", "Mine").await;
    let wrong = api.get("/?key=not-the-key").await;
    assert_eq!(wrong.status, 303);
    assert!(wrong.header("set-cookie").is_none());

    let signed_in = api.get("/d/mine?key=the-owner-key-for-tests").await;
    assert_eq!(signed_in.status, 303);
    assert_eq!(signed_in.header("location"), Some("/d/mine"), "the key leaves the address bar");
    let cookie_header = signed_in.header("set-cookie").unwrap().to_owned();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie_header.contains(attribute), "{cookie_header}");
    }
    let cookie = cookie_header.split(';').next().unwrap().to_owned();
    let host = server.addr.to_string();
    let own_origin = format!("http://{host}");
    let get = |origin: &'static str| {
        let cookie = cookie.clone();
        async move { api.send("GET", "/api/docs", &[("Cookie", &cookie), ("Origin", origin)], b"").await }
    };
    assert_eq!(get("http://evil.example").await.status, 200, "reading is not a cross-site risk (no CORS)");
    // Changing something from another site's page: refused; from ours: fine.
    let put = |origin: String| {
        let cookie = cookie.clone();
        async move {
            api.send("PUT", "/api/docs/mine/content", &[("Cookie", &cookie), ("Origin", &origin), ("Content-Type", "text/plain")], b"changed").await
        }
    };
    assert_eq!(put("http://evil.example".into()).await.error(403), "cross_site");
    assert_eq!(put(own_origin.clone()).await.status, 204);
    // A socket: a page on another origin cannot open the document with the owner's cookie.
    let url = server.ws_url("mine");
    assert_eq!(upgrade_status(&url, &[("Cookie", &cookie), ("Origin", "http://evil.example")]).await, 403);
    assert_eq!(upgrade_status(&url, &[("Cookie", &cookie), ("Origin", &own_origin)]).await, 101);
    let session = api.send("GET", "/api/session?doc=mine", &[("Cookie", &cookie)], b"").await.json();
    assert_eq!((&session["owner"], &session["role"]), (&json!(true), &json!("owner")));
    server.kill9().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_start_makes_private_keys_and_prints_the_sign_in_url() {
    let dir = TempDir::new("access-keys");
    let bin = quire_bin();
    let server = QuireProcess::start(&bin, dir.path(), &["--auth", "owner"]).await;
    server.kill9().await;
    for file in ["owner.key", "secret.key"] {
        let mode = std::fs::metadata(dir.path().join(file)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{file}");
    }
    let key = std::fs::read_to_string(dir.path().join("owner.key")).unwrap();
    let out = std::process::Command::new(&bin)
        .args(["owner-url", "--public-url", "http://127.0.0.1:9999", "--data"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), format!("http://127.0.0.1:9999/?key={}", key.trim()));
    // It stays the same across restarts, and opens everything.
    let server = QuireProcess::start(&bin, dir.path(), &["--auth", "owner"]).await;
    let reply = send(Api(server.addr), "GET", "/api/docs", Some(key.trim()), None, b"").await;
    assert_eq!(reply.status, 200);
    server.kill9().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_auth_none_everyone_may_do_everything_as_before() {
    let dir = TempDir::new("access-open");
    let server = QuireProcess::start(&quire_bin(), dir.path(), &["--auth", "none"]).await;
    let api = Api(server.addr);
    assert_eq!(api.create(json!({ "id": "open", "content": "hi" })).await.status, 201);
    assert_eq!(api.get("/api/docs").await.json()["total"], 1);
    let client = Client::connect_synced(&server.ws_url("open")).await;
    client.push("!");
    Client::connect_synced(&server.ws_url("open")).await.wait_text("hi\n!").await;
    assert_eq!(api.get("/api/session").await.json()["access_control"], false);
    server.kill9().await;
}
