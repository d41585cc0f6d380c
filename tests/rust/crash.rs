//! Crash safety: the real binary is killed with SIGKILL while clients type, again and again.
//!
//! The promise under test: an edit the server confirmed survives `kill -9`. The confirmation is
//! the answer to a client's sync step 1 (behind the app's "All changes synced"), which the
//! server sends only after the group commit that covers everything the client sent before it.
//! Before each kill, some documents settle (their writer asks and is answered) and must come
//! back exactly; one document is still being typed into at the moment of the kill. Every
//! restart must open the store. At the end, once the writers (who keep their replicas)
//! reconnect, everything typed is there.
//!
//! (It used to wait 50 ms instead of asking: a promise about time, which a machine whose CPU
//! is saturated by other work breaks without anything being wrong.)

use std::time::Duration;

use quire_tests::process::{quire_bin, QuireProcess};
use quire_tests::{Client, TempDir};
use yrs::Doc;

const DOCS: usize = 3;
const ROUNDS: usize = 5;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_while_typing_loses_nothing_the_server_confirmed() {
    let bin = quire_bin();
    let dir = TempDir::new("crash");
    // Each writer's replica outlives the server processes, as a browser tab does.
    let mut replicas: Vec<Doc> = (0..DOCS).map(|_| quire_model::schema::new_doc()).collect();
    let mut settled_text: Vec<Option<String>> = vec![None; DOCS];

    for round in 0..ROUNDS {
        let server = QuireProcess::start(&bin, dir.path(), &[]).await;
        // What the server kept from the last round, before any writer reconnects.
        for (doc, settled) in settled_text.iter().enumerate() {
            if let Some(expected) = settled {
                let fresh = Client::connect(&server.ws_url(&format!("crash-{doc}"))).await;
                fresh.wait_text(expected).await;
            }
        }
        let mut writers = Vec::new();
        for (doc, replica) in replicas.drain(..).enumerate() {
            let writer = Client::connect_with(&server.ws_url(&format!("crash-{doc}")), replica).await;
            writer.wait_synced().await;
            writers.push(writer);
        }
        // Type: every document gets keystrokes; document 0 keeps typing into the kill.
        for i in 0..20 {
            for writer in &writers {
                writer.push(&format!("r{round}k{i}键🔑 "));
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        for doc in 1..DOCS {
            let writer = &writers[doc];
            let answered = writer.answers();
            writer.ask();
            writer.wait_answers(answered + 1).await;
            settled_text[doc] = Some(writer.text());
        }
        for i in 0..10 {
            writers[0].push(&format!("r{round}inflight{i} "));
        }
        server.kill9().await;
        replicas = writers.into_iter().map(Client::disconnect).collect();
    }

    // Final: writers reconnect and resync; a fresh client finds every keystroke of every round.
    let server = QuireProcess::start(&bin, dir.path(), &[]).await;
    let mut writers = Vec::new();
    for (doc, replica) in replicas.into_iter().enumerate() {
        let writer = Client::connect_with(&server.ws_url(&format!("crash-{doc}")), replica).await;
        writer.wait_synced().await;
        writers.push(writer);
    }
    for (doc, writer) in writers.iter().enumerate() {
        let fresh = Client::connect(&server.ws_url(&format!("crash-{doc}"))).await;
        fresh.wait_text(&writer.text()).await;
        for round in 0..ROUNDS {
            for i in 0..20 {
                let keystroke = format!("r{round}k{i}键🔑 ");
                assert!(fresh.text().contains(&keystroke), "doc {doc} lost {keystroke:?}");
            }
        }
    }
    let status = server.terminate().await;
    assert!(status.success(), "quire exited with {status} on SIGTERM");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_closes_connections_with_1001_and_keeps_every_edit() {
    let bin = quire_bin();
    let dir = TempDir::new("sigterm");
    let server = QuireProcess::start(&bin, dir.path(), &[]).await;
    let url = server.ws_url("graceful");
    let writer = Client::connect_synced(&url).await;
    let watcher = Client::connect_synced(&url).await;
    for i in 0..50 {
        writer.push(&format!("{i}✓ "));
    }
    watcher.wait_text(&writer.text()).await;
    let status = server.terminate().await;
    assert!(status.success(), "quire exited with {status} on SIGTERM");
    assert_eq!(writer.wait_closed().await, (1001, "server shutting down".to_owned()));

    let server = QuireProcess::start(&bin, dir.path(), &[]).await;
    Client::connect(&server.ws_url("graceful")).await.wait_text(&writer.text()).await;
    server.kill9().await;
}
