//! The connections subscribed to one document, fan-out to them, and which of them claims which
//! Yjs client id.
//!
//! A connection claims the client ids it announces in its presence (a y-websocket client
//! announces its own on connecting, before it writes). An id's owner is the earliest live
//! claimant that has written under it, or, while nothing is written under it yet, the earliest
//! live claimant: a write under that id from anyone else is suspect (see `live`). Announcing
//! alone does not take an id someone has written under: anyone who saw an editor's presence
//! knows their id, and could otherwise announce it while they are away and lock them out.

use std::collections::{HashMap, HashSet};

use bytes::Bytes;
use yrs::ClientID;

use super::ConnId;
use crate::auth::{Grant, Role};
use crate::error::CloseReason;
use crate::metrics::Metrics;
use crate::ws::outbox::{Frame, Outbox, PushError};

pub struct Peer {
    pub outbox: Outbox,
    /// What it may do, and the share link it came in with.
    pub grant: Grant,
    /// Whether it was told, once, that its writes are dropped (view only).
    pub told_read_only: bool,
    /// Awareness client ids this connection has announced; cleared when it leaves.
    pub clients: HashSet<ClientID>,
    /// Those of them it has written under.
    pub wrote: HashSet<ClientID>,
    /// When it joined, and whether it has answered our sync step 1 since: until it has, it
    /// may send edits that build on what its answer brings (see `live::pending`).
    pub joined: tokio::time::Instant,
    pub answered: bool,
}

#[derive(Default)]
pub struct Peers {
    map: HashMap<ConnId, Peer>,
    /// Client id → the live connections that announced it, earliest first.
    claims: HashMap<ClientID, Vec<ConnId>>,
}

impl Peers {
    pub fn insert(&mut self, conn: ConnId, outbox: Outbox, grant: Grant) {
        let peer = Peer {
            outbox,
            grant,
            told_read_only: false,
            clients: HashSet::new(),
            wrote: HashSet::new(),
            joined: tokio::time::Instant::now(),
            answered: false,
        };
        self.map.insert(conn, peer);
    }

    pub fn get(&self, conn: ConnId) -> Option<&Peer> {
        self.map.get(&conn)
    }

    pub fn get_mut(&mut self, conn: ConnId) -> Option<&mut Peer> {
        self.map.get_mut(&conn)
    }

    /// Whether `conn` may change the document.
    pub fn may_edit(&self, conn: ConnId) -> bool {
        self.map.get(&conn).is_some_and(|peer| peer.grant.role >= Role::Edit)
    }

    /// The connections that came in with share link `link`.
    pub fn with_link(&self, link: &str) -> Vec<ConnId> {
        self.map
            .iter()
            .filter(|(_, peer)| peer.grant.link.as_deref() == Some(link))
            .map(|(&conn, _)| conn)
            .collect()
    }

    pub fn contains(&self, conn: ConnId) -> bool {
        self.map.contains_key(&conn)
    }

    pub fn remove(&mut self, conn: ConnId) -> Option<Peer> {
        let peer = self.map.remove(&conn)?;
        for client in &peer.clients {
            self.unclaim(conn, *client);
        }
        Some(peer)
    }

    /// `conn` announced `added` and withdrew `removed`.
    pub fn claim(&mut self, conn: ConnId, added: impl IntoIterator<Item = ClientID>, removed: &[ClientID]) {
        let Some(peer) = self.map.get_mut(&conn) else { return };
        let mut fresh = Vec::new();
        for client in added {
            if peer.clients.insert(client) {
                fresh.push(client);
            }
        }
        for client in removed {
            peer.clients.remove(client);
            peer.wrote.remove(client);
        }
        for client in fresh {
            self.claims.entry(client).or_default().push(conn);
        }
        for client in removed {
            self.unclaim(conn, *client);
        }
    }

    fn unclaim(&mut self, conn: ConnId, client: ClientID) {
        if let Some(claimants) = self.claims.get_mut(&client) {
            claimants.retain(|c| *c != conn);
            if claimants.is_empty() {
                self.claims.remove(&client);
            }
        }
    }

    /// Whether a live connection has announced `client`'s presence.
    pub fn claims(&self, client: ClientID) -> bool {
        self.claims.contains_key(&client)
    }

    /// Every client id a live connection has announced.
    pub fn claimed(&self) -> impl Iterator<Item = ClientID> + '_ {
        self.claims.keys().copied()
    }

    /// Whose writes under `client` are, given whether the document holds any yet (`written`).
    pub fn owner(&self, client: ClientID, written: bool) -> Option<ConnId> {
        let claimants = self.claims.get(&client)?;
        if !written {
            return claimants.first().copied();
        }
        claimants
            .iter()
            .copied()
            .find(|conn| self.map.get(conn).is_some_and(|peer| peer.wrote.contains(&client)))
    }

    /// `conn` wrote under `clients`: those it announced are its own from now on.
    pub fn wrote(&mut self, conn: ConnId, clients: impl IntoIterator<Item = ClientID>) {
        if let Some(peer) = self.map.get_mut(&conn) {
            for client in clients {
                if peer.clients.contains(&client) {
                    peer.wrote.insert(client);
                }
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Queues `frame` for one peer. A peer that cannot take it is removed (and, if it was too
    /// slow, told to close) and returned so its presence can be cleared.
    pub fn send(&mut self, conn: ConnId, frame: impl Into<Frame>, metrics: &Metrics) -> Option<Peer> {
        let error = self.map.get(&conn)?.outbox.try_push(frame).err()?;
        Some(self.drop_peer(conn, error, metrics))
    }

    /// Queues `frame` for every peer but `except`; returns the peers that had to be dropped.
    pub fn broadcast(&mut self, frame: &Bytes, except: Option<ConnId>, metrics: &Metrics) -> Vec<Peer> {
        let mut failed = Vec::new();
        let mut sent = 0;
        for (&conn, peer) in &self.map {
            if Some(conn) == except {
                continue;
            }
            match peer.outbox.try_push(frame.clone()) {
                Ok(()) => sent += 1,
                Err(error) => failed.push((conn, error)),
            }
        }
        metrics.updates_broadcast.inc_by(sent);
        failed
            .into_iter()
            .map(|(conn, error)| self.drop_peer(conn, error, metrics))
            .collect()
    }

    fn drop_peer(&mut self, conn: ConnId, error: PushError, metrics: &Metrics) -> Peer {
        let peer = self.remove(conn).expect("caller checked the peer exists");
        match error {
            PushError::Full => {
                tracing::info!(%conn, "dropping a client that cannot keep up");
                metrics.clients_dropped_slow.inc();
                peer.outbox.close(CloseReason::TooSlow);
            }
            // The writer is gone; make sure the reader stops too (its updates would be ignored).
            PushError::Closed => peer.outbox.close(CloseReason::Normal),
        }
        peer
    }

    /// Closes every connection with `reason` and forgets them.
    pub fn close_all(&mut self, reason: CloseReason) {
        self.claims.clear();
        for (_, peer) in self.map.drain() {
            peer.outbox.close(reason.clone());
        }
    }
}
