//! Two connections writing under one Yjs client id: which is the impostor?
//!
//! Every item a Yjs client makes is named by its client id and a clock. A connection that
//! writes under another connection's id takes the clocks that one would use next, whose edits
//! would then be dropped as already known while its screen says "All changes synced". But the
//! same client reconnecting (a new socket before its old one timed out) also writes under an
//! id that another connection, its dead old one, announced, and must never be refused.
//!
//! So a suspect write is held, and the id's owner (the earliest connection that announced it)
//! is asked a question every client answers (a sync step 1). If it answers within
//! `client_id_probe`, it is alive: the writer is the impostor and is closed (4409). If not,
//! the owner is the dead old socket: it is closed (replaced), and the held writes go ahead.

use std::collections::VecDeque;

use quire_model::protocol::Inbound;
use tokio::time::Instant;

use super::ConnId;

/// One held write and the question that decides it.
pub struct Probe {
    /// The connection that wrote under an id `owner` announced.
    pub writer: ConnId,
    pub owner: ConnId,
    pub deadline: Instant,
    /// The writer's messages from the suspect one on, with the size of the frame each batch
    /// came in, in order.
    pub held: VecDeque<(Vec<Inbound>, usize)>,
}

/// The probes under way in one document.
#[derive(Default)]
pub struct Probes(Vec<Probe>);

impl Probes {
    pub fn start(&mut self, writer: ConnId, owner: ConnId, deadline: Instant, held: Vec<Inbound>, bytes: usize) {
        self.0.push(Probe {
            writer,
            owner,
            deadline,
            held: VecDeque::from([(held, bytes)]),
        });
    }

    /// Holds a later batch from a writer under probe; gives it back if there is no probe.
    pub fn hold(&mut self, writer: ConnId, messages: Vec<Inbound>, bytes: usize) -> Option<(Vec<Inbound>, usize)> {
        match self.0.iter_mut().find(|p| p.writer == writer) {
            Some(probe) => {
                probe.held.push_back((messages, bytes));
                None
            }
            None => Some((messages, bytes)),
        }
    }

    /// `conn` was heard from: the probes it was the owner of are decided (it is alive).
    pub fn answered_by(&mut self, conn: ConnId) -> Vec<Probe> {
        self.take(|p| p.owner == conn)
    }

    /// The probes whose owner stayed silent until now.
    pub fn expired(&mut self, now: Instant) -> Vec<Probe> {
        self.take(|p| p.deadline <= now)
    }

    /// The probes of a writer that left (their held writes go with it) and those whose owner
    /// left (it was not alive after all).
    pub fn gone(&mut self, conn: ConnId) -> (Vec<Probe>, Vec<Probe>) {
        (self.take(|p| p.writer == conn), self.take(|p| p.owner == conn))
    }

    /// When the next probe runs out, if one is under way.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.0.iter().map(|p| p.deadline).min()
    }

    fn take(&mut self, decided: impl Fn(&Probe) -> bool) -> Vec<Probe> {
        let (done, open): (Vec<_>, Vec<_>) = std::mem::take(&mut self.0).into_iter().partition(decided);
        self.0 = open;
        done
    }
}
