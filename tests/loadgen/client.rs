//! One simulated Yjs client: connects, does the y-websocket handshake, then types or watches
//! until the run says stop.
//!
//! A client is one task and one socket, read and written from a single `select!` loop: no
//! split halves, no extra tasks, so 10,000 of them cost little beyond their sockets. No client
//! is a replica: a watcher holds a few counters, a writer its own yrs document (see `writer`),
//! and both find deliveries by scanning update bytes for stamps (see `stamp`).

use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::sync::{watch, Semaphore};
use tokio::time::{Instant, Interval, MissedTickBehavior};

use crate::socket::{Incoming, Socket};
use crate::stamp::scan;
use crate::stats::Stats;
use crate::wire::{self, Handshake};
use crate::writer::Writer;

type Ws = Socket<TcpStream>;

/// Where the run is; every client watches it.
#[derive(Debug, Clone, Copy)]
pub enum Phase {
    Joining,
    /// Writers type from `start` (each at its own phase within the first period) until `until`.
    Typing { start: Instant, until: Instant },
    Stop,
}

/// Everything the clients of one run share.
pub struct Shared {
    pub stats: Arc<Stats>,
    pub phase: watch::Receiver<Phase>,
    pub connect_permits: Arc<Semaphore>,
    pub connect_started: std::time::Instant,
    pub period: Duration,
    pub connect_timeout: Duration,
    pub seed: u64,
    /// Writers per document: the slots a stamp may name.
    pub writers: usize,
    pub handshake: Handshake,
}

pub struct Plan {
    pub index: usize,
    /// The server it connects to (with several, a document's clients are spread over them).
    pub addr: SocketAddr,
    /// The WebSocket path of the client's document.
    pub path: String,
    /// For a writer, its index among its document's writers (the slot its stamps carry).
    pub writer_slot: Option<usize>,
    /// Whether it is a client of the first document (the one `--attack flood` floods).
    pub first_doc: bool,
}

pub async fn run(plan: Plan, shared: Arc<Shared>) {
    let stats = &shared.stats;
    let mut client = Client {
        shared: &shared,
        writer: plan.writer_slot.map(|slot| Writer::new(plan.index as u64 + 1, slot)),
        own_slot: plan.writer_slot,
        next_us: vec![0; shared.writers].into_boxed_slice(),
        first_doc: plan.first_doc,
    };
    // One stream per client, derived from the run's seed: same phases for every server. The
    // multiplier is the 64-bit golden ratio, which spreads consecutive indices.
    let mut rng = fastrand::Rng::with_seed(shared.seed ^ (plan.index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));

    let joined = tokio::time::timeout(shared.connect_timeout, join(&plan, &shared, &mut client)).await;
    let mut ws = match joined {
        Ok(Ok(ws)) => ws,
        Ok(Err(reason)) => return stats.record_connect_error(reason),
        Err(_) => return stats.record_connect_error(format!("not synced within {:?}", shared.connect_timeout)),
    };
    stats.record_synced(shared.connect_started);

    if let Err(reason) = session(&mut ws, &shared, &mut client, &mut rng).await {
        stats.record_disconnect(reason);
    }
}

/// Connects and runs the handshake until the server's sync step 2 has arrived.
async fn join(plan: &Plan, shared: &Shared, client: &mut Client<'_>) -> Result<Ws, String> {
    let permit = shared.connect_permits.acquire().await.map_err(|_| "run ended".to_owned())?;
    let tcp = TcpStream::connect(plan.addr).await.map_err(|e| format!("tcp connect: {e}"))?;
    // Keystrokes are single small frames; Nagle would hold them back behind unacked ones.
    tcp.set_nodelay(true).map_err(|e| format!("tcp nodelay: {e}"))?;
    let mut ws = Socket::handshake(tcp, &plan.addr.to_string(), &plan.path)
        .await
        .map_err(|e| format!("websocket handshake: {e}"))?;
    // The permit bounds connections in their TCP/HTTP handshake; sync is cheap for the server.
    drop(permit);

    ws.send(&shared.handshake.step1).await?;
    loop {
        let incoming = ws.next().await.map_err(|e| format!("{e} (before sync)"))?;
        let received = client.receive(incoming).map_err(|e| format!("protocol before sync: {e}"))?;
        answer(&mut ws, &received).await?;
        if received.synced {
            return Ok(ws);
        }
    }
}

/// Reads everything the server sends; a writer also types while the phase says so.
async fn session(
    ws: &mut Ws,
    shared: &Shared,
    client: &mut Client<'_>,
    rng: &mut fastrand::Rng,
) -> Result<(), String> {
    let mut phase = shared.phase.clone();
    let mut ticker: Option<Interval> = None;
    let mut typing_until = Instant::now();
    // A client that synced after the phase changed still sees the current phase: the cloned
    // receiver has not marked it seen, so `changed()` fires at once.
    loop {
        // One `changed()` future per phase, not one per frame: each one registers a waiter on
        // the watch channel and unregisters it when dropped, which per frame was 8% of
        // loadgen's user-space CPU.
        let changed = {
            let changed = phase.changed();
            tokio::pin!(changed);
            loop {
                tokio::select! {
                    changed = &mut changed => break changed,
                    // Replies are sent here, not raced: `select!` may drop `ws.next()` at any
                    // await, but a frame cut off halfway would corrupt the stream.
                    incoming = ws.next() => {
                        let received = client.receive(incoming?).map_err(|e| format!("protocol: {e}"))?;
                        answer(ws, &received).await?;
                    }
                    at = next_tick(&mut ticker) => {
                        if at >= typing_until {
                            ticker = None;
                            continue;
                        }
                        shared.stats.record_send_lag(at.elapsed());
                        let Some(writer) = client.writer.as_mut() else { continue };
                        let frame = writer.keystroke(shared.stats.now_us());
                        ws.send(&frame).await?;
                        shared.stats.sent.fetch_add(1, Relaxed);
                    }
                }
            }
        };
        if changed.is_err() {
            return Ok(()); // the run is gone
        }
        let current = *phase.borrow_and_update();
        match current {
            Phase::Joining => {}
            Phase::Typing { start, until } if client.writer.is_some() => {
                // A random phase within the first period, so the writers do not start in one
                // burst. Then absolute deadlines (Burst: a late tick is made up, not dropped):
                // every server is offered the same updates even when a saturated machine makes
                // loadgen late, which `send_lag` reports.
                let first = start + shared.period.mul_f64(rng.f64());
                let mut t = tokio::time::interval_at(first, shared.period);
                t.set_missed_tick_behavior(MissedTickBehavior::Burst);
                ticker = Some(t);
                typing_until = until;
            }
            Phase::Typing { .. } => {}
            Phase::Stop => {
                // Best effort: the figures are taken already; do not wait for the reply.
                let _ = tokio::time::timeout(Duration::from_secs(1), ws.close()).await;
                return Ok(());
            }
        }
    }
}

async fn next_tick(ticker: &mut Option<Interval>) -> Instant {
    match ticker {
        Some(t) => t.tick().await,
        None => std::future::pending().await,
    }
}

/// Sends what handling one incoming message asked for.
async fn answer(ws: &mut Ws, received: &Received) -> Result<(), String> {
    if let Some(payload) = &received.pong {
        ws.pong(payload).await?;
    }
    for reply in &received.replies {
        ws.send(reply).await?;
    }
    Ok(())
}

/// What one client keeps between frames: a few counters, plus a writer's document.
struct Client<'a> {
    shared: &'a Shared,
    writer: Option<Writer>,
    /// A writer's own slot: its stamps coming back (y-websocket echoes every update to its
    /// sender) are not deliveries.
    own_slot: Option<usize>,
    /// Per writer slot, the smallest stamp that would be new: stamps of one writer strictly
    /// increase, so anything below was delivered already or arrived out of order.
    next_us: Box<[u64]>,
    first_doc: bool,
}

#[derive(Default)]
struct Received {
    replies: Vec<bytes::Bytes>,
    /// A ping's payload, to be sent back in a pong.
    pong: Option<Vec<u8>>,
    synced: bool,
}

impl Client<'_> {
    /// Handles one message from the server. Returns the replies to send, and whether it held
    /// sync step 2 (the moment a y-websocket client calls itself synced).
    fn receive(&mut self, incoming: Incoming<'_>) -> Result<Received, String> {
        let mut received = Received::default();
        let frame = match incoming {
            Incoming::Binary(frame) => frame,
            Incoming::Ping(payload) => {
                received.pong = Some(payload.to_vec());
                return Ok(received);
            }
        };
        for message in wire::messages(frame) {
            match message? {
                wire::Message::Step1(state_vector) => received.replies.push(match &self.writer {
                    Some(writer) => writer.step2(state_vector)?.into(),
                    None => self.shared.handshake.empty_step2.clone(),
                }),
                // What the server had before anyone typed: nothing to count.
                wire::Message::Step2(_) => received.synced = true,
                wire::Message::Update(update) => self.count(update),
                // Awareness carries no document content; loadgen sends no presence, so there is
                // nothing to answer (a stock client without awareness state does the same).
                wire::Message::Ignored => {}
                wire::Message::Denied(reason) => return Err(format!("permission denied: {reason}")),
            }
        }
        Ok(received)
    }

    /// Counts the stamps in one update: each new stamp of another writer is one delivery.
    fn count(&mut self, update: &[u8]) {
        let stats = &self.shared.stats;
        let now_us = stats.now_us();
        let mut stamps = 0;
        for stamp in scan(update) {
            stamps += 1;
            if Some(stamp.slot) == self.own_slot {
                stats.echoes.fetch_add(1, Relaxed);
                continue;
            }
            match self.next_us.get_mut(stamp.slot) {
                None => {
                    stats.foreign.fetch_add(1, Relaxed);
                }
                Some(next) if stamp.sent_us < *next => {
                    stats.repeated.fetch_add(1, Relaxed);
                }
                Some(next) => {
                    *next = stamp.sent_us + 1;
                    stats.record_delivery(stamp.sent_us, now_us, self.first_doc);
                }
            }
        }
        if stamps == 0 {
            stats.foreign.fetch_add(1, Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quire_model::protocol::{encode, update_message};
    use yrs::sync::{Message, SyncMessage};

    fn shared() -> Shared {
        Shared {
            stats: Arc::new(Stats::new()),
            phase: watch::channel(Phase::Joining).1,
            connect_permits: Arc::new(Semaphore::new(1)),
            connect_started: std::time::Instant::now(),
            period: Duration::from_millis(500),
            connect_timeout: Duration::from_secs(1),
            seed: 0,
            writers: 2,
            handshake: Handshake::new(),
        }
    }

    fn client(shared: &Shared, writer_slot: Option<usize>) -> Client<'_> {
        Client {
            shared,
            writer: writer_slot.map(|slot| Writer::new(slot as u64 + 1, slot)),
            own_slot: writer_slot,
            next_us: vec![0; shared.writers].into_boxed_slice(),
            first_doc: true,
        }
    }

    #[test]
    fn a_watcher_syncs_and_counts_each_new_stamp_once() {
        let shared = shared();
        let mut watcher = client(&shared, None);
        let step1 = encode(&Message::Sync(SyncMessage::SyncStep1(Default::default())));
        let received = watcher.receive(Incoming::Binary(&step1)).unwrap();
        assert_eq!(received.replies, std::slice::from_ref(&shared.handshake.empty_step2));
        assert!(!received.synced);
        let step2 = encode(&Message::Sync(SyncMessage::SyncStep2(vec![0, 0])));
        assert!(watcher.receive(Incoming::Binary(&step2)).unwrap().synced);

        let (mut a, mut b) = (Writer::new(1, 0), Writer::new(2, 1));
        let frames = [a.keystroke(10), b.keystroke(10), a.keystroke(20)];
        for frame in &frames {
            watcher.receive(Incoming::Binary(frame)).unwrap();
        }
        watcher.receive(Incoming::Binary(&frames[0])).unwrap(); // sent twice by a faulty server
        watcher.receive(Incoming::Binary(&encode(&update_message(vec![0, 0])))).unwrap(); // no stamp in it
        let stats = &shared.stats;
        assert_eq!(
            [&stats.delivered, &stats.repeated, &stats.foreign, &stats.echoes].map(|c| c.load(Relaxed)),
            [3, 1, 1, 0]
        );
    }

    #[test]
    fn a_writer_counts_the_other_writer_but_not_its_own_echo() {
        let shared = shared();
        let mut writer = client(&shared, Some(0));
        let own = writer.writer.as_mut().unwrap().keystroke(10);
        let other = Writer::new(2, 1).keystroke(10);
        writer.receive(Incoming::Binary(&own)).unwrap();
        writer.receive(Incoming::Binary(&other)).unwrap();
        let stats = &shared.stats;
        assert_eq!([&stats.delivered, &stats.echoes].map(|c| c.load(Relaxed)), [1, 1]);
    }
}
