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
