//! Updates that wait for changes the server does not have yet.
//!
//! A client that just (re)connected may send a live edit before its sync step 2 (its answer to
//! our step 1) has brought what the edit builds on: what it typed while away. That is how a
//! stock y-websocket client behaves when someone types during a reconnect, so those updates
//! wait (yrs holds them as pending) while a connection that sent updates since they started
//! waiting has not answered yet, within [`CATCH_UP`] of its joining, up to [`CATCH_UP_BYTES`]. Anything else that waits would wait in
//! memory for changes that may never come: whoever sent updates meanwhile is closed (4400) and
//! resyncs, which loses nothing (each client keeps its own edits and sends them again).

use std::collections::HashSet;
use std::time::Duration;

use tokio::time::Instant;
use yrs::{ReadTxn, Transact, WriteTxn};

use super::LiveDoc;
use crate::doc::ConnId;
use crate::error::CloseReason;

/// How long after joining a connection's updates may wait for its sync step 2.
pub const CATCH_UP: Duration = Duration::from_secs(10);
/// How much may wait.
pub const CATCH_UP_BYTES: usize = 1024 * 1024;

/// Updates waiting for their dependencies, and who sent updates since they started waiting.
pub struct Waiting {
    since: Instant,
    bytes: usize,
    senders: HashSet<ConnId>,
}

impl LiveDoc {
    /// After `conn`'s update (`bytes` long) was applied: lets what waits wait, within bounds,
    /// or drops it and closes whoever sent updates while it waited.
    pub(super) fn check_pending(&mut self, conn: ConnId, bytes: usize) {
        if !self.doc().transact().has_missing_updates() {
            self.waiting = None;
            return;
        }
        let waiting = self.waiting.get_or_insert_with(|| Waiting {
            since: Instant::now(),
            bytes: 0,
            senders: HashSet::new(),
        });
        waiting.bytes += bytes;
        waiting.senders.insert(conn);
        // Whose updates wait is not known (yrs keeps one pending update): they may wait while
        // any sender since they started waiting is still catching up.
        let catching_up = waiting
            .senders
            .iter()
            .any(|sender| self.peers.get(*sender).is_some_and(|peer| !peer.answered && peer.joined.elapsed() < CATCH_UP));
        if catching_up && waiting.since.elapsed() < CATCH_UP && waiting.bytes <= CATCH_UP_BYTES {
            return;
        }
        self.drop_waiting();
    }

    /// A connection left: updates waiting for its step 2 will never get it.
    pub(super) fn left_while_waiting(&mut self, conn: ConnId) {
        if self.waiting.as_ref().is_some_and(|w| w.senders.contains(&conn)) {
            self.drop_waiting();
        }
    }

    fn drop_waiting(&mut self) {
        let Some(waiting) = self.waiting.take() else { return };
        self.doc().transact_mut().prune_pending();
        self.context.shared.metrics.messages_rejected.inc();
        for sender in waiting.senders {
            self.close(sender, CloseReason::Malformed("update depends on changes the server does not have".into()));
        }
    }
}
