//! Who writes under which client id (see [`probe`](crate::doc::probe)): a write under an id
//! that another live connection owns waits while that owner is asked whether it is alive.

use yrs::{ClientID, ReadTxn, Transact, Update};

use super::LiveDoc;
use crate::doc::ConnId;
use crate::doc::probe::Probe;
use crate::error::CloseReason;

impl LiveDoc {
    /// The client ids `update` brings new items under, each with whether we hold any of its
    /// items already. (`Update::state_vector` only counts clients whose blocks start at clock
    /// 0; the inserted ranges say where each client's items end.) An echo or a resend of what
    /// we have is no write: it must not make its sender the owner of anyone's id.
    pub(super) fn fresh_ids(&self, update: &Update) -> Vec<(ClientID, bool)> {
        let known = self.doc().transact().state_vector();
        update
            .insertions(true)
            .iter()
            .filter_map(|(&client, ranges)| {
                let end = ranges.iter().map(|range| range.end).max()?;
                let have = known.get(&client);
                (end > have).then_some((client, have > 0))
            })
            .collect()
    }

    /// Another live connection that owns a client id `conn` brings new items under (`fresh`):
    /// the one whose writes `conn` would take the place of.
    pub(super) fn owner_elsewhere(&self, conn: ConnId, fresh: &[(ClientID, bool)]) -> Option<ConnId> {
        fresh
            .iter()
            .find_map(|&(client, written)| self.peers.owner(client, written).filter(|&owner| owner != conn))
    }

    /// When the next client-id probe runs out, if one is under way.
    pub fn probe_due(&self) -> Option<tokio::time::Instant> {
        self.probes.next_deadline()
    }

    /// The owners that did not answer in time are dead sockets: they are replaced, and what
    /// their successors wrote goes ahead.
    pub async fn probes_expired(&mut self) {
        for probe in self.probes.expired(tokio::time::Instant::now()) {
            tracing::info!(doc = %self.id, owner = %probe.owner, writer = %probe.writer, "replacing a connection that stopped answering");
            self.close(probe.owner, CloseReason::Replaced);
            self.release(probe).await;
        }
    }

    /// Handles what a probe held, in order (a later write may need a probe of its own).
    pub(super) async fn release(&mut self, mut probe: Probe) {
        while let Some((messages, bytes)) = probe.held.pop_front() {
            if let Some((messages, bytes)) = self.probes.hold(probe.writer, messages, bytes) {
                self.process(probe.writer, messages, bytes).await;
            }
        }
    }
}
