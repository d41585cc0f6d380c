//! Floods on the first editors' document: large updates back to back (`flood`), and tiny ones
//! faster than anyone types (`spam`). The server makes the first wait for its byte budget
//! (1 MiB/s by default: it is read no faster) and closes the second (4429) once its burst of
//! messages is spent; a closed flooder comes back a second later.

use std::sync::Arc;
use std::time::Duration;

use quire_model::protocol;
use quire_model::schema::{doc_with_client_id, CONTENT};
use yrs::{Text, Transact};

use super::{closed, connect, AttackStats, Target};

/// One large update: a pasted book chapter. Back to back, they are throttled rather than
/// refused; what a document may hold in all (64 MiB) is far beyond a run's worth.
const LARGE: usize = 1 << 20;
/// Between a closed flooder and its next connection.
const COME_BACK: Duration = Duration::from_secs(1);
const CLOSE_WITHIN: Duration = Duration::from_secs(5);
/// Client ids of the flooders: far from the editors' (client index + 1).
const FIRST_CLIENT: u64 = 700_000_000;

/// Large updates back to back.
pub async fn bytes(target: Arc<Target>, stats: Arc<AttackStats>) {
    flood(target, stats, "flood, 1 MiB updates", LARGE).await
}

/// One-character updates back to back.
pub async fn messages(target: Arc<Target>, stats: Arc<AttackStats>) {
    flood(target, stats, "flood, tiny updates", 1).await
}

async fn flood(target: Arc<Target>, stats: Arc<AttackStats>, name: &'static str, size: usize) {
    let chunk = "f".repeat(size);
    for connection in 0u64.. {
        // A new client id per connection: its updates are new items, never a resend.
        let doc = doc_with_client_id(FIRST_CLIENT + connection * 2 + u64::from(size > 1));
        let text = doc.get_or_insert_text(CONTENT);
        let outcome = match connect(&target, &target.doc_paths[0]).await {
            Err(error) => error,
            Ok(mut socket) => loop {
                let update = {
                    let mut txn = doc.transact_mut();
                    text.push(&mut txn, &chunk);
                    txn.encode_update_v1()
                };
                let frame = protocol::encode(&protocol::update_message(update));
                stats.attempt(name, frame.len());
                if socket.send(&frame).await.is_err() {
                    break closed(&mut socket, CLOSE_WITHIN).await;
                }
                // Nothing is read while flooding: a closed socket shows when a write fails, or
                // here, where the server's close frame may already be waiting.
                if let Ok(Err(reason)) = tokio::time::timeout(Duration::ZERO, socket.next()).await {
                    break reason.strip_prefix("closed by server: ").map_or(reason.clone(), |r| format!("close {r}"));
                }
            },
        };
        stats.outcome(name, outcome);
        tokio::time::sleep(COME_BACK).await;
    }
}
