//! One simulated Yjs client: connects, does the y-websocket handshake, then types or watches
//! until the run says stop.
//!
//! A client is one task and one socket, read and written from a single `select!` loop: no
//! split halves, no extra tasks, so 10,000 of them cost little beyond their sockets.

use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::{watch, Semaphore};
use tokio::time::{Instant, Interval, MissedTickBehavior};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message as Frame;
use tokio_tungstenite::WebSocketStream;

use crate::replica::Replica;
use crate::stats::Stats;

type Socket = WebSocketStream<TcpStream>;

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
    pub addr: SocketAddr,
    pub period: Duration,
    pub connect_timeout: Duration,
    pub seed: u64,
}

pub struct Plan {
    pub index: usize,
    pub url: String,
    pub writer: bool,
}

/// Small buffers: tungstenite allocates the read buffer eagerly (128 KiB by default, 1.3 GB at
/// 10,000 clients) while our frames are tens of bytes. A write buffer of 0 writes each frame at
/// once, which is what a keystroke wants anyway.
fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default().read_buffer_size(4 * 1024).write_buffer_size(0)
}

pub async fn run(plan: Plan, shared: Arc<Shared>) {
    let stats = &shared.stats;
    let replica = Replica::new(plan.index as u64 + 1, stats.clone());
    // One stream per client, derived from the run's seed: same phases and positions for every
    // server. The multiplier is the 64-bit golden ratio, which spreads consecutive indices.
    let mut rng = fastrand::Rng::with_seed(shared.seed ^ (plan.index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));

    let joined = tokio::time::timeout(shared.connect_timeout, join(&plan, &shared, &replica)).await;
    let mut ws = match joined {
        Ok(Ok(ws)) => ws,
        Ok(Err(reason)) => return stats.record_connect_error(reason),
        Err(_) => return stats.record_connect_error(format!("not synced within {:?}", shared.connect_timeout)),
    };
    stats.record_synced(shared.connect_started);

    if let Err(reason) = session(&mut ws, &plan, &shared, &replica, &mut rng).await {
        stats.record_disconnect(reason);
    }
}

/// Connects and runs the handshake until the server's sync step 2 has been applied.
async fn join(plan: &Plan, shared: &Shared, replica: &Replica) -> Result<Socket, String> {
    let permit = shared.connect_permits.acquire().await.map_err(|_| "run ended".to_owned())?;
    let tcp = TcpStream::connect(shared.addr).await.map_err(|e| format!("tcp connect: {e}"))?;
    // Keystrokes are single small frames; Nagle would hold them back behind unacked ones.
    tcp.set_nodelay(true).map_err(|e| format!("tcp nodelay: {e}"))?;
    let (mut ws, _) = tokio_tungstenite::client_async_with_config(plan.url.as_str(), tcp, Some(ws_config()))
        .await
        .map_err(|e| format!("websocket handshake: {e}"))?;
    // The permit bounds connections in their TCP/HTTP handshake; sync is cheap for the server.
    drop(permit);

    send(&mut ws, replica.step1()).await?;
    loop {
        let bytes = next_binary(&mut ws).await.map_err(|e| format!("{e} (before sync)"))?;
        let received = replica.receive(&bytes).map_err(|e| format!("protocol before sync: {e}"))?;
        for reply in received.replies {
            send(&mut ws, reply).await?;
        }
        if received.synced {
            return Ok(ws);
        }
    }
}

/// Reads and applies everything the server sends; a writer also types while the phase says so.
async fn session(
    ws: &mut Socket,
    plan: &Plan,
    shared: &Shared,
    replica: &Replica,
    rng: &mut fastrand::Rng,
) -> Result<(), String> {
    let mut phase = shared.phase.clone();
    let mut ticker: Option<Interval> = None;
    let mut typing_until = Instant::now();
    // A client that synced after the phase changed still sees the current phase: the cloned
    // receiver has not marked it seen, so `changed()` fires at once.
    loop {
        tokio::select! {
            changed = phase.changed() => {
                if changed.is_err() {
                    return Ok(()); // the run is gone
                }
                let current = *phase.borrow_and_update();
                match current {
                    Phase::Joining => {}
                    Phase::Typing { start, until } if plan.writer => {
                        // A random phase within the first period, so the writers do not start
                        // in one burst. Then absolute deadlines (Burst: a late tick is made up,
                        // not dropped): every server is offered the same updates even when a
                        // saturated machine makes loadgen late, which `send_lag` reports.
                        let first = start + shared.period.mul_f64(rng.f64());
                        let mut t = tokio::time::interval_at(first, shared.period);
                        t.set_missed_tick_behavior(MissedTickBehavior::Burst);
                        ticker = Some(t);
                        typing_until = until;
                    }
                    Phase::Typing { .. } => {}
                    Phase::Stop => {
                        // Best effort: the figures are taken already; do not wait for the reply.
                        let _ = tokio::time::timeout(Duration::from_secs(1), ws.close(None)).await;
                        return Ok(());
                    }
                }
            }
            frame = next_binary(ws) => {
                let bytes = frame?;
                let received = replica.receive(&bytes).map_err(|e| format!("protocol: {e}"))?;
                for reply in received.replies {
                    send(ws, reply).await?;
                }
            }
            at = next_tick(&mut ticker) => {
                if at >= typing_until {
                    ticker = None;
                    continue;
                }
                shared.stats.record_send_lag(at.elapsed());
                let frame = replica.keystroke(shared.stats.now_us(), rng);
                send(ws, frame).await?;
                shared.stats.sent.fetch_add(1, Relaxed);
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

/// The next binary frame. Pings are answered by tungstenite itself while we read; text frames
/// are not part of the protocol and are skipped. A close is an error: only loadgen ends a session.
async fn next_binary(ws: &mut Socket) -> Result<bytes::Bytes, String> {
    loop {
        match ws.next().await {
            None => return Err("connection ended without a close frame".to_owned()),
            Some(Ok(Frame::Close(None))) => return Err("closed by server".to_owned()),
            Some(Ok(Frame::Close(Some(close)))) => {
                return Err(format!("closed by server: {} {}", u16::from(close.code), close.reason))
            }
            Some(Ok(Frame::Binary(bytes))) => return Ok(bytes),
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(format!("websocket read: {e}")),
        }
    }
}

async fn send(ws: &mut Socket, frame: Vec<u8>) -> Result<(), String> {
    ws.send(Frame::Binary(frame.into())).await.map_err(|e| format!("websocket write: {e}"))
}
