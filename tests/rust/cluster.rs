//! The cluster store against a real Redis and PostgreSQL: folding under a lease and a fencing
//! token, concurrent folds and loads, and PostgreSQL going away while people type.
//! (Convergence, presence, crashes and Redis restarts across processes are in
//! tests/node/cluster.test.mjs, with stock y-websocket clients.)

use std::sync::Arc;
use std::time::Duration;

use quire::store::cluster::lease::Folded;
use quire::store::cluster::{ClusterOptions, ClusterStore};
use quire::store::{Store, Stored};
use quire_model::{protocol, schema, DocId};
use quire_tests::cluster::{database, Redis};
use quire_tests::http::Api;
use quire_tests::process::{quire_bin, QuireProcess};
use quire_tests::relay::Relay;
use quire_tests::{wait_for, wait_for_async, Client, TempDir};
use yrs::{GetString, ReadTxn, Text, Transact};

fn text_of(stored: &Stored) -> String {
    let doc = schema::new_doc();
    for update in &stored.updates {
        protocol::apply_bytes(&doc, update).expect("a stored update applies");
    }
    let text = doc.get_or_insert_text(schema::CONTENT);
    let txn = doc.transact();
    text.get_string(&txn)
}

/// Types `s` at the end of `doc`'s text; the update.
fn type_into(doc: &yrs::Doc, s: &str) -> Vec<u8> {
    let text = doc.get_or_insert_text(schema::CONTENT);
    let before = doc.transact().state_vector();
    let len = text.len(&doc.transact());
    text.insert(&mut doc.transact_mut(), len, s);
    doc.transact().encode_state_as_update_v1(&before)
}

#[tokio::test]
async fn a_fold_whose_lease_expired_cannot_put_an_older_snapshot_over_a_newer_one() {
    let redis = Redis::start().await;
    let mut options = ClusterOptions::new(redis.url(), database().await);
    options.lease_ttl = Duration::from_millis(300);
    let (p, q) = (ClusterStore::open(&options).await.unwrap(), ClusterStore::open(&options).await.unwrap());
    let id = DocId::parse("fenced").unwrap();
    let doc = schema::new_doc();

    let first = p.append(&id, &type_into(&doc, "one ")).await.unwrap();
    let older = protocol::full_state(&doc);
    // P takes the lease to fold what it has, then stalls (a long pause, a stopped VM) past the
    // lease's expiry.
    let stalled = p.begin_fold(&id, first).await.unwrap().expect("the lease is free");
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Meanwhile Q takes the lease, which expired, and folds newer content; the stream is
    // trimmed up to it.
    let second = q.append(&id, &type_into(&doc, "two ")).await.unwrap();
    let newer = protocol::full_state(&doc);
    let fold = q.begin_fold(&id, second).await.unwrap().expect("an expired lease is free again");
    assert!(fold.fence() > stalled.fence(), "every lease takes a newer token");
    assert_eq!(q.finish_fold(fold, &newer).await.unwrap(), Folded::Written);

    // P wakes up and writes what it had: refused.
    assert_eq!(p.finish_fold(stalled, &older).await.unwrap(), Folded::Fenced);
    let r = ClusterStore::open(&options).await.unwrap();
    let stored = r.load(&id).await.unwrap().expect("stored");
    assert_eq!(text_of(&stored), "one two ", "the newer snapshot stands");
    assert_eq!(stored.log_entries, 0, "and the stream was trimmed up to it");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_appending_loading_and_folding_at_once_lose_and_duplicate_nothing() {
    let redis = Redis::start().await;
    let options = ClusterOptions::new(redis.url(), database().await);
    let stores = [Arc::new(ClusterStore::open(&options).await.unwrap()), Arc::new(ClusterStore::open(&options).await.unwrap())];
    let id = DocId::parse("busy").unwrap();
    const EDITS: usize = 150;

    let mut tasks = Vec::new();
    for (n, store) in stores.iter().enumerate() {
        // A writer on each process: its own replica, its own words.
        let (writer, doc_id) = (store.clone(), id.clone());
        tasks.push(tokio::spawn(async move {
            let doc = schema::new_doc();
            for i in 0..EDITS {
                writer.append(&doc_id, &type_into(&doc, &format!("<{n}.{i}>"))).await.unwrap();
            }
        }));
        // And a folder on each: load everything, fold it, again and again.
        let (store, id) = (store.clone(), id.clone());
        tasks.push(tokio::spawn(async move {
            for _ in 0..30 {
                if let Some(stored) = store.load(&id).await.unwrap() {
                    let doc = schema::new_doc();
                    for update in &stored.updates {
                        protocol::apply_bytes(&doc, update).unwrap();
                    }
                    if let Some(upto) = stored.last_seq {
                        if let Some(fold) = store.begin_fold(&id, upto).await.unwrap() {
                            store.finish_fold(fold, &protocol::full_state(&doc)).await.unwrap();
                        }
                    }
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let text = text_of(&stores[0].load(&id).await.unwrap().unwrap());
    for n in 0..2 {
        for i in 0..EDITS {
            let word = format!("<{n}.{i}>");
            assert_eq!(text.matches(&word).count(), 1, "{word} is there exactly once");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_postgresql_unreachable_editing_goes_on_health_says_degraded_and_nothing_is_lost() {
    let bin = quire_bin();
    let redis = Redis::start().await;
    let database = database().await;
    // The processes reach PostgreSQL through a relay that can go silent, as a dead network does.
    let postgres: std::net::SocketAddr = {
        let url = std::env::var("QUIRE_TEST_POSTGRES").unwrap();
        let host = url.split('@').nth(1).unwrap().split('/').next().unwrap().to_owned();
        tokio::net::lookup_host(host).await.unwrap().next().unwrap()
    };
    let relay = Relay::start(postgres).await;
    let via_relay = database.replace(&postgres.to_string(), &relay.addr().to_string());
    let (dir_a, dir_b) = (TempDir::new("pg-a"), TempDir::new("pg-b"));
    let flags = ["--redis", &redis.url(), "--database", &via_relay, "--compact-after-updates", "20"];
    let a = QuireProcess::start(&bin, dir_a.path(), &flags).await;
    let b = QuireProcess::start(&bin, dir_b.path(), &flags).await;

    let on_a = Client::connect_synced(&a.ws_url("pg-down")).await;
    let on_b = Client::connect_synced(&b.ws_url("pg-down")).await;
    // Both type at once, so the words interleave: what matters is that each is everywhere.
    let mut expected: Vec<String> = Vec::new();
    let type_word = |expected: &mut Vec<String>, client: &Client, word: String| {
        client.push(&word);
        expected.push(word);
    };
    let has_all = |client: &Client, expected: &[String]| {
        let text = client.text();
        expected.iter().all(|word| text.contains(word.as_str()))
    };
    for i in 0..30 {
        type_word(&mut expected, if i % 2 == 0 { &on_a } else { &on_b }, format!("before{i} "));
    }
    wait_for(Duration::from_secs(10), "A to have every word", || has_all(&on_a, &expected)).await;

    relay.freeze();
    // Editing goes on across processes (the streams carry it), past more than one fold's worth.
    for i in 0..60 {
        type_word(&mut expected, if i % 2 == 0 { &on_a } else { &on_b }, format!("during{i} "));
    }
    wait_for(Duration::from_secs(10), "A and B to have every word", || has_all(&on_a, &expected) && has_all(&on_b, &expected)).await;
    wait_for_async(Duration::from_secs(10), "/healthz to say degraded", || async {
        let health = Api(a.addr).get("/healthz").await;
        health.status == 200 && health.json()["status"] == "degraded"
    })
    .await;
    assert!(Api(a.addr).get("/healthz").await.json()["reason"].as_str().unwrap().contains("postgresql"));

    relay.thaw();
    wait_for_async(Duration::from_secs(10), "/healthz to say ok again", || async { Api(a.addr).get("/healthz").await.json()["status"] == "ok" }).await;
    for i in 0..30 {
        type_word(&mut expected, if i % 2 == 0 { &on_a } else { &on_b }, format!("after{i} "));
    }
    wait_for(Duration::from_secs(10), "B to have every word", || has_all(&on_b, &expected)).await;
    on_a.close().await;
    on_b.close().await;
    // Both stop (folding what they hold); a new process, and a fresh client, have everything.
    assert!(a.terminate().await.success());
    assert!(b.terminate().await.success());
    let dir_c = TempDir::new("pg-c");
    let c = QuireProcess::start(&bin, dir_c.path(), &flags).await;
    let fresh = Client::connect_synced(&c.ws_url("pg-down")).await;
    wait_for(Duration::from_secs(10), "a fresh client of a new process to have every word", || has_all(&fresh, &expected)).await;
}

async fn post_json(api: Api, path: &str, body: serde_json::Value) -> quire_tests::http::Reply {
    api.send("POST", path, &[("Content-Type", "application/json")], body.to_string().as_bytes()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versions_live_in_postgresql_beside_the_document_across_processes_and_restarts() {
    let bin = quire_bin();
    let redis = Redis::start().await;
    let database = database().await;
    let (dir_a, dir_b) = (TempDir::new("hist-a"), TempDir::new("hist-b"));
    let flags = ["--redis", &redis.url(), "--database", &database, "--compact-after-updates", "10", "--version-settle-secs", "1"];
    let a = QuireProcess::start(&bin, dir_a.path(), &flags).await;
    let b = QuireProcess::start(&bin, dir_b.path(), &flags).await;
    let (api_a, api_b) = (Api(a.addr), Api(b.addr));

    let ada = Client::connect_synced(&a.ws_url("hist")).await;
    ada.set_presence(r##"{"user":{"name":"Ada","color":"#d93025"}}"##);
    let bob = Client::connect_synced(&b.ws_url("hist")).await;
    ada.push("first words");
    bob.wait_text("first words").await;
    // Named through the other process: it holds the same document, through the stream.
    let named = post_json(api_b, "/api/docs/hist/versions", serde_json::json!({ "name": "Draft" })).await;
    assert_eq!(named.status, 201, "{}", named.text());
    let draft = named.json()["id"].as_u64().unwrap();
    // Both processes see it (one store).
    for api in [api_a, api_b] {
        let listed = api.get("/api/docs/hist/versions").await.json();
        assert!(listed["versions"].as_array().unwrap().iter().any(|v| v["id"].as_u64() == Some(draft)), "{listed}");
    }
    // Ada types on past several folds of the stream into PostgreSQL; the automatic version
    // comes once, not once per process holding the document, and names her.
    for n in 0..30 {
        ada.push(&format!(" w{n}"));
    }
    bob.wait_same_as(&ada).await;
    wait_for_async(Duration::from_secs(15), "an automatic version of the burst", || async {
        let listed = api_a.get("/api/docs/hist/versions").await.json();
        listed["versions"][0]["kind"] == "auto"
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let listed = api_a.get("/api/docs/hist/versions").await.json();
    let autos: Vec<&serde_json::Value> = listed["versions"].as_array().unwrap().iter().filter(|v| v["kind"] == "auto").collect();
    assert_eq!(autos.len(), 1, "one automatic version for the burst, not one per process: {listed}");
    assert!(autos[0]["editors"].as_array().unwrap().iter().any(|e| e["name"] == "Ada"), "{listed}");
    assert_eq!(api_b.get(&format!("/api/docs/hist/versions/{draft}/content?format=text")).await.text().trim_end(), "first words");

    // A restore through A reaches Bob on B live.
    let restored = post_json(api_a, &format!("/api/docs/hist/versions/{draft}/restore"), serde_json::json!({})).await;
    assert_eq!(restored.status, 200, "{}", restored.text());
    bob.wait_text("first words").await;
    ada.close().await;
    bob.close().await;
    assert!(a.terminate().await.success());
    assert!(b.terminate().await.success());

    // A new process has the history and its contents.
    let dir_c = TempDir::new("hist-c");
    let c = QuireProcess::start(&bin, dir_c.path(), &flags).await;
    let listed = Api(c.addr).get("/api/docs/hist/versions").await.json();
    let kinds: Vec<&str> = listed["versions"].as_array().unwrap().iter().map(|v| v["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["restore", "auto", "manual"], "{listed}");
    let diff = Api(c.addr).get(&format!("/api/docs/hist/versions/{draft}/diff?against=current")).await.json();
    assert!(diff["spans"].as_array().unwrap().iter().all(|s| s["change"] == "kept"), "restored: {diff}");
    assert!(c.terminate().await.success());
}

/// `tests/fixtures/cluster-v1.sql`: a database written by quire at layout 1 (see its header).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_written_by_layout_1_opens_with_everything_in_it_and_gains_history() {
    let bin = quire_bin();
    let redis = Redis::start().await;
    let database = database().await;
    let (client, connection) = tokio_postgres::connect(&database, tokio_postgres::NoTls).await.unwrap();
    let connection = tokio::spawn(connection);
    client.batch_execute(include_str!("../fixtures/cluster-v1.sql")).await.expect("load the fixture");

    let dir = TempDir::new("pg-v1");
    let flags = ["--redis", &redis.url(), "--database", &database];
    let server = QuireProcess::start(&bin, dir.path(), &flags).await;
    let layout: i32 = client.query_one("SELECT version FROM quire_layout", &[]).await.unwrap().get(0);
    assert_eq!(layout, 2, "migrated");
    let api = Api(server.addr);
    let list = api.get("/api/docs").await.json();
    assert_eq!(list["total"], 1, "{list}");
    assert_eq!(list["docs"][0]["title"], "Q1 plan");
    let plan = api.get("/api/docs/plan/content?format=markdown").await.text();
    assert_eq!(plan, "# Q1 plan\n\nRevenue **up**, costs *down*.\n\n- hire\n- ship\n");
    assert_eq!(api.get("/api/docs/gone").await.status, 404);
    // The first version is taken when the document is opened, off its task.
    wait_for_async(Duration::from_secs(10), "the first version", || async { api.get("/api/docs/plan/versions").await.json()["total"] == 1 }).await;
    let versions = api.get("/api/docs/plan/versions").await.json();
    let first = versions["versions"][0]["id"].as_u64().unwrap();
    assert_eq!(api.get(&format!("/api/docs/plan/versions/{first}/content?format=markdown")).await.text(), plan);
    assert!(server.terminate().await.success());

    // Opens again at layout 2 as it is.
    let server = QuireProcess::start(&bin, dir.path(), &flags).await;
    assert_eq!(Api(server.addr).get("/api/docs/plan/versions").await.json()["total"], 1);
    assert!(server.terminate().await.success());
    drop(client);
    let _ = connection.await;
}

#[tokio::test]
async fn an_edit_that_waited_here_and_was_completed_from_another_process_is_kept() {
    // B's edit, sent to process P, waits for keystrokes of A's that P lacks. A's step 2 brings
    // them to process Q; P applies them from the stream, and B's edit with them. P must then
    // keep B's edit like any other: before, it only sent it to its own clients, so it never
    // reached the stream, Q's clients or the database.
    use futures_util::SinkExt;
    use tokio_tungstenite::tungstenite::Message as WsMessage;
    use yrs::sync::{Message, SyncMessage};

    let bin = quire_bin();
    let redis = Redis::start().await;
    let database = database().await;
    let (dir_p, dir_q) = (TempDir::new("waited-p"), TempDir::new("waited-q"));
    let flags = ["--redis", &redis.url(), "--database", &database];
    let p = QuireProcess::start(&bin, dir_p.path(), &flags).await;
    let q = QuireProcess::start(&bin, dir_q.path(), &flags).await;
    let a = schema::doc_with_client_id(101);
    type_into(&a, "lost ");
    let b = schema::doc_with_client_id(202);
    protocol::apply_bytes(&b, &protocol::full_state(&a)).unwrap();
    let b_edit = type_into(&b, "and found");

    let watcher_p = Client::connect_synced(&p.ws_url("waited")).await;
    let (mut b_socket, _) = tokio_tungstenite::connect_async(p.ws_url("waited")).await.unwrap();
    let frame = |message: Message| WsMessage::Binary(protocol::encode(&message).into());
    b_socket.send(frame(Message::Sync(SyncMessage::Update(b_edit)))).await.unwrap();
    let a = Client::connect_with(&q.ws_url("waited"), a).await;
    a.wait_synced().await;
    watcher_p.wait_text("lost and found").await;
    a.wait_text("lost and found").await;
    Client::connect(&q.ws_url("waited")).await.wait_text("lost and found").await;
    drop(b_socket);
    p.kill9().await;
    q.kill9().await;
}
