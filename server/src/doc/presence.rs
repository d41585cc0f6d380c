//! Bounds on presence (awareness): what one connection may announce, and how everyone's
//! presence is sent to one connection.
//!
//! Checked before anything is applied: a state's size, and how many client ids one connection
//! speaks for. Everyone's presence goes out in frames of bounded size, so asking for it (one
//! byte) costs the asker's outbox, which bounds it, rather than one frame of any size.

use std::collections::{HashMap, HashSet};

use yrs::sync::AwarenessUpdate;
use yrs::ClientID;

use crate::error::CloseReason;

/// A y-websocket client announces one presence (its own); a few leave room for tabs sharing a
/// socket. More is someone filling the server's memory.
pub const MAX_PER_CONNECTION: usize = 8;
/// Presence states per frame when everyone's are sent: a few hundred people's carets.
const FRAME_BYTES: usize = 64 * 1024;

/// Refuses an update from a connection that already announced `mine`: a state over
/// `max_state_bytes`, or more than [`MAX_PER_CONNECTION`] ids.
pub fn check(update: &AwarenessUpdate, mine: &HashSet<ClientID>, max_state_bytes: usize) -> Result<(), CloseReason> {
    if update.clients.values().any(|entry| entry.json.len() > max_state_bytes) {
        return Err(CloseReason::Malformed("presence state too large".into()));
    }
    // yrs adds one to a client's clock when it leaves: at u32::MAX that overflows (a panic in
    // debug builds; in release the clock wraps to 0 and the removal is ignored by everyone, a
    // ghost). A clock goes up by one per change of presence: no person gets near it.
    if update.clients.values().any(|entry| entry.clock == u32::MAX) {
        return Err(CloseReason::Malformed("presence clock at its limit".into()));
    }
    let new = update
        .clients
        .iter()
        .filter(|(client, entry)| &*entry.json != "null" && !mine.contains(client))
        .count();
    if mine.len() + new > MAX_PER_CONNECTION {
        return Err(CloseReason::Malformed("too many presence entries".into()));
    }
    Ok(())
}

/// `everyone` cut into updates of about [`FRAME_BYTES`] each.
pub fn frames(everyone: AwarenessUpdate) -> Vec<AwarenessUpdate> {
    let mut frames = Vec::new();
    let mut current = HashMap::new();
    let mut bytes = 0;
    for (client, entry) in everyone.clients {
        if bytes + entry.json.len() > FRAME_BYTES && !current.is_empty() {
            frames.push(AwarenessUpdate { clients: std::mem::take(&mut current) });
            bytes = 0;
        }
        bytes += entry.json.len();
        current.insert(client, entry);
    }
    if !current.is_empty() {
        frames.push(AwarenessUpdate { clients: current });
    }
    frames
}

#[cfg(test)]
mod tests {
    use super::*;
    use yrs::sync::awareness::AwarenessUpdateEntry;

    fn update(states: &[(u64, usize)]) -> AwarenessUpdate {
        let clients = states
            .iter()
            .map(|&(client, len)| (ClientID::new(client), AwarenessUpdateEntry { clock: 1, json: "x".repeat(len).into() }))
            .collect();
        AwarenessUpdate { clients }
    }

    #[test]
    fn states_are_bounded_in_size_and_in_number_per_connection() {
        assert!(check(&update(&[(1, 100)]), &HashSet::new(), 8192).is_ok());
        assert!(check(&update(&[(1, 9000)]), &HashSet::new(), 8192).is_err());
        let mine: HashSet<ClientID> = (0..8).map(ClientID::new).collect();
        assert!(check(&update(&[(3, 10)]), &mine, 8192).is_ok(), "an id it has");
        assert!(check(&update(&[(9, 10)]), &mine, 8192).is_err(), "a ninth");
    }

    #[test]
    fn everyone_goes_out_in_bounded_frames_and_nobody_is_left_out() {
        let everyone = update(&(0..100).map(|c| (c, 8000)).collect::<Vec<_>>());
        let frames = frames(everyone);
        assert!(frames.len() > 10);
        let mut seen: Vec<u64> = frames.iter().flat_map(|f| f.clients.keys().map(|c| c.get())).collect();
        seen.sort();
        assert_eq!(seen, (0..100).collect::<Vec<_>>());
        for frame in frames {
            assert!(frame.clients.values().map(|e| e.json.len()).sum::<usize>() <= FRAME_BYTES + 8000);
        }
    }
}
