//! The connections subscribed to one document, and fan-out to them.

use std::collections::{HashMap, HashSet};

use bytes::Bytes;
use yrs::ClientID;

use super::ConnId;
use crate::auth::Access;
use crate::error::CloseReason;
use crate::metrics::Metrics;
use crate::ws::outbox::{Frame, Outbox, PushError};

pub struct Peer {
    pub outbox: Outbox,
    pub access: Access,
    /// Awareness client ids this connection has announced; cleared when it leaves.
    pub clients: HashSet<ClientID>,
}

#[derive(Default)]
pub struct Peers {
    map: HashMap<ConnId, Peer>,
}

impl Peers {
    pub fn insert(&mut self, conn: ConnId, outbox: Outbox, access: Access) {
        let peer = Peer {
            outbox,
            access,
            clients: HashSet::new(),
        };
        self.map.insert(conn, peer);
    }

    pub fn get_mut(&mut self, conn: ConnId) -> Option<&mut Peer> {
        self.map.get_mut(&conn)
    }

    pub fn remove(&mut self, conn: ConnId) -> Option<Peer> {
        self.map.remove(&conn)
    }

    /// Whether a live connection has announced `client`'s presence.
    pub fn claims(&self, client: ClientID) -> bool {
        self.map.values().any(|peer| peer.clients.contains(&client))
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
        let peer = self.map.remove(&conn).expect("caller checked the peer exists");
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
        for (_, peer) in self.map.drain() {
            peer.outbox.close(reason.clone());
        }
    }
}
