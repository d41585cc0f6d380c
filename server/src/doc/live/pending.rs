//! Updates that wait for changes the server does not have yet.
//!
//! A client that just (re)connected may send a live edit before its sync step 2 (its answer to
//! our step 1) has brought what the edit builds on: what it typed while away. That is how a
//! stock y-websocket client behaves when someone types during a reconnect, so those updates
//! wait (yrs holds them as pending) while a connection whose updates wait has not answered
//! yet, within [`CATCH_UP`] of its joining, up to [`CATCH_UP_BYTES`]. Anything else that waits
//! would wait in memory for changes that may never come: whoever sent what waits is closed
//! (4400) and resyncs, which loses nothing (each client keeps its own edits and sends them
//! again). Whose updates wait is read from yrs's pending update, so that the others typing
//! meanwhile are left alone (the fuzzer found a hostile connection that had just joined
//! getting every editor of its document closed by leaving an update pending and then going).
//!
//! An update that skips over its own client's earlier changes (typed after edits made while
//! away, before those arrive) never reaches yrs while it skips: yrs would integrate it behind a
//! skip whenever its neighbours are known, and the skipped changes could then never be applied
//! (see `protocol::continues`). Within the same bounds it is held here, apart from yrs, and
//! applied after its sender's sync step 2; otherwise its sender is closed (4400) and resyncs.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use tokio::time::Instant;
use yrs::{IdSet, ReadTxn, Transact, Update, WriteTxn, ID};

use super::LiveDoc;
use crate::doc::peers::Peer;
use crate::doc::ConnId;
use crate::error::CloseReason;

/// How long after joining a connection's updates may wait for its sync step 2.
pub const CATCH_UP: Duration = Duration::from_secs(10);
/// How much may wait.
pub const CATCH_UP_BYTES: usize = 1024 * 1024;

/// Why a client's update is refused when the server lacks what it builds on: the client sent
/// it out of order, and resyncs.
pub const MISSING_DEPENDENCIES: &str = "update depends on changes the server does not have";

/// What an update inserts and deletes, to tell afterwards whether any of it waits.
pub struct Footprint {
    insertions: IdSet,
    deletions: IdSet,
}

impl Footprint {
    pub fn of(update: &Update) -> Footprint {
        Footprint {
            insertions: update.insertions(true),
            deletions: update.delete_set().clone(),
        }
    }

    /// Whether any of it is in `waiting` (yrs keeps what waits in whole blocks, less what it
    /// already has: the end of each range is enough to look at).
    fn any_in(mine: &IdSet, waiting: Option<&IdSet>) -> bool {
        let Some(waiting) = waiting else { return false };
        mine.iter().any(|(&client, ranges)| {
            ranges.iter().any(|range| range.end > range.start && waiting.contains(&ID::new(client, range.end - 1)))
        })
    }
}

/// Updates waiting for their dependencies, and the connections whose updates they are.
pub struct Waiting {
    since: Instant,
    bytes: usize,
    senders: HashSet<ConnId>,
}

/// Updates that skip over their sender's own earlier changes, held until its sync step 2, by
/// connection, in the order they came; at most [`CATCH_UP_BYTES`] in all.
#[derive(Default)]
pub struct Gapped {
    by_conn: HashMap<ConnId, Vec<(Update, usize)>>,
    bytes: usize,
}

impl Gapped {
    /// What is held for `conn`, in order, no longer held.
    pub fn release(&mut self, conn: ConnId) -> Vec<(Update, usize)> {
        let held = self.by_conn.remove(&conn).unwrap_or_default();
        self.bytes -= held.iter().map(|(_, bytes)| bytes).sum::<usize>();
        held
    }
}

impl LiveDoc {
    /// `conn`'s update (`bytes` long) skips over changes of its own client that we lack: held
    /// while `conn` is catching up (its step 2 may bring them), refused otherwise.
    pub(super) fn hold_gapped(&mut self, conn: ConnId, update: Update, bytes: usize) {
        let catching_up = |peer: &Peer| !peer.answered && peer.joined.elapsed() < CATCH_UP;
        // Whoever held updates here and is past catching up without its step 2 gives its
        // place back first: one connection must not keep the room from the others for ever.
        let overdue: Vec<ConnId> = self
            .gapped
            .by_conn
            .keys()
            .copied()
            .filter(|held| *held != conn && !self.peers.get(*held).is_some_and(catching_up))
            .collect();
        for held in overdue {
            self.gapped.release(held);
            self.close(held, CloseReason::Malformed(MISSING_DEPENDENCIES.into()));
        }
        if self.peers.get(conn).is_some_and(catching_up) && self.gapped.bytes + bytes <= CATCH_UP_BYTES {
            self.gapped.bytes += bytes;
            self.gapped.by_conn.entry(conn).or_default().push((update, bytes));
            return;
        }
        self.gapped.release(conn);
        self.context.shared.metrics.messages_rejected.inc();
        self.close(conn, CloseReason::Malformed(MISSING_DEPENDENCIES.into()));
    }

    /// After `conn`'s update (`bytes` long, `footprint` its content) was applied: lets what
    /// waits wait, within bounds, or drops it and closes whoever sent it.
    pub(super) fn check_pending(&mut self, conn: ConnId, bytes: usize, footprint: &Footprint) {
        if self.nothing_waits() {
            return;
        }
        let waits = {
            let txn = self.doc().transact();
            let store = txn.store();
            let pending = store.pending_update().map(|pending| pending.update.insertions(true));
            Footprint::any_in(&footprint.insertions, pending.as_ref())
                || Footprint::any_in(&footprint.deletions, store.pending_ds())
        };
        let waiting = self.waiting.get_or_insert_with(|| Waiting {
            since: Instant::now(),
            bytes: 0,
            senders: HashSet::new(),
        });
        if waits {
            waiting.bytes += bytes;
            waiting.senders.insert(conn);
        }
        // yrs keeps one pending update for everyone's: it may wait while any whose updates
        // are in it is still catching up.
        let catching_up = waiting
            .senders
            .iter()
            .any(|sender| self.peers.get(*sender).is_some_and(|peer| !peer.answered && peer.joined.elapsed() < CATCH_UP));
        if catching_up && waiting.since.elapsed() < CATCH_UP && waiting.bytes <= CATCH_UP_BYTES {
            return;
        }
        self.drop_waiting();
    }

    /// Whether nothing waits (any more: an update may have brought everything that waited, an
    /// update from another process too); then nobody is closed for it when they leave.
    pub(super) fn nothing_waits(&mut self) -> bool {
        let nothing = !self.doc().transact().has_missing_updates();
        if nothing {
            self.waiting = None;
        }
        nothing
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
            self.close(sender, CloseReason::Malformed(MISSING_DEPENDENCIES.into()));
        }
    }
}
