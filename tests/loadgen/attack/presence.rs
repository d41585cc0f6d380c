//! Presence past the server's bounds, on the editors' documents: a state bigger than
//! `max_presence_bytes` (8 KiB by default), and one update announcing more client ids than one
//! connection may. Each attempt is a connection that announces it and is closed for it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use quire_model::protocol;
use yrs::sync::awareness::{AwarenessUpdate, AwarenessUpdateEntry};
use yrs::sync::Message;
use yrs::ClientID;

use super::{closed, connect, pace, AttackStats, Target};

/// Twice the server's default limit.
const BIG_STATE: usize = 16 * 1024;
/// Entries in one update; the server allows 8 per connection.
const MANY: u64 = 64;
/// How long the server may take to close an attacker.
const CLOSE_WITHIN: Duration = Duration::from_secs(10);

pub async fn run(target: Arc<Target>, stats: Arc<AttackStats>) {
    let big = frame((1..=1).map(|id| (id, format!(r#"{{"user":{{"name":"{}"}}}}"#, "x".repeat(BIG_STATE)))));
    let many = frame((1..=MANY).map(|id| (id, format!(r#"{{"user":{{"name":"n{id}"}}}}"#))));
    let mut ticks = pace(target.rate);
    let mut rng = fastrand::Rng::with_seed(11);
    for attempt in 0u64.. {
        ticks.tick().await;
        let (name, frame) = if attempt % 2 == 0 { ("presence too big", &big) } else { ("presence entries", &many) };
        let path = &target.doc_paths[rng.usize(..target.doc_paths.len())];
        stats.attempt(name, frame.len());
        let outcome = match connect(&target, path).await {
            Ok(mut socket) => match socket.send(frame).await {
                Ok(()) => closed(&mut socket, CLOSE_WITHIN).await,
                Err(error) => error,
            },
            Err(error) => error,
        };
        stats.outcome(name, outcome);
    }
}

/// An awareness message with the given (client id, JSON state) entries. Ids far above the
/// editors' (loadgen's client index + 1), so the attack never speaks for an editor.
fn frame(entries: impl Iterator<Item = (u64, String)>) -> Vec<u8> {
    let clients: HashMap<ClientID, AwarenessUpdateEntry> = entries
        .map(|(id, json)| (ClientID::new(800_000_000 + id), AwarenessUpdateEntry { clock: 1, json: json.into() }))
        .collect();
    protocol::encode(&Message::Awareness(AwarenessUpdate { clients: clients.into_iter().collect() }))
}
