//! One WebSocket connection: a reader loop (this task) and a writer task.
//!
//! The reader decodes and validates each frame and hands it to the document task; the writer
//! drains the connection's [`Outbox`] and pings. Either side can end the connection by closing
//! the outbox with a reason; the writer then sends the close frame. A guard tells the document
//! the connection left on every exit path, so presence is always cleared.
//!
//! Generic over `Sink + Stream` so it runs over a real socket or over channels in tests.

use std::future::Future;

use futures_util::{Sink, SinkExt, Stream, StreamExt};
use quire_model::protocol::{self, ProtocolError};
use quire_model::DocId;
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::{interval_at, Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use axum::extract::ws::{CloseFrame, Message as WsMessage};

use super::outbox::{outbox, Outbox, OutboxReceiver};
use super::rate::{RateLimit, Verdict};
use crate::auth::Grant;
use crate::config::Config;
use crate::doc::{ConnId, DocHandle};
use crate::error::{CloseReason, DocError};
use crate::metrics::Metrics;
use crate::state::{AppState, Shared, INLINE_BYTES};

/// Runs one connection to document `id` until either side ends it.
///
/// Not an `async fn`, and the join boxed: every connection's future lives as long as it does,
/// so its size counts ten thousand times over. An `async fn` keeps its arguments for its whole
/// life, the socket's 368 bytes among them after it is split; the join's 568 bytes, needed only
/// until the document answers, would be reserved beside the reading loop. (2,448 -> 1,392 bytes.)
pub fn serve<S>(socket: S, id: DocId, grant: Grant, app: AppState, permit: OwnedSemaphorePermit) -> impl Future<Output = ()> + Send
where
    S: Stream<Item = Result<WsMessage, axum::Error>> + Sink<WsMessage, Error = axum::Error> + Send + 'static,
{
    let (sink, stream) = socket.split();
    async move {
        let _open = OpenConnection::new(&app.shared.metrics, permit);
        let config = &app.shared.config;
        let conn = ConnId::next();
        let (outbox, outbox_rx) = outbox(config.outbox_messages, config.outbox_bytes);
        let writer = tokio::spawn(write_loop(
            sink,
            outbox_rx,
            outbox.clone(),
            app.shared.config.clone(),
            app.shared.metrics.clone(),
            app.shared.shutdown.clone(),
        ));
        let expires_ms = grant.expires_ms;
        let reason = match Box::pin(app.docs.join(&id, conn, grant, &outbox)).await {
            Ok(handle) => {
                tracing::debug!(doc = %id, %conn, "joined");
                let _leave = LeaveGuard { handle: &handle, conn };
                tokio::select! {
                    reason = read_loop(stream, &handle, conn, &outbox, &app.shared) => reason,
                    // Expired credentials end the connection as a removed link does.
                    () = until(expires_ms) => CloseReason::AccessExpired,
                }
            }
            Err(DocError::Deleted) => CloseReason::Deleted,
            Err(DocError::NotSaved) => CloseReason::NotSaving,
            Err(_) => CloseReason::Unavailable,
        };
        tracing::debug!(doc = %id, %conn, code = reason.code(), reason = %reason.reason(), "connection ends");
        outbox.close(reason);
        let _ = writer.await;
    }
}

/// Reads frames until the connection should end, and says why.
async fn read_loop<R>(
    mut stream: R,
    handle: &DocHandle,
    conn: ConnId,
    outbox: &Outbox,
    shared: &Shared,
) -> CloseReason
where
    R: Stream<Item = Result<WsMessage, axum::Error>> + Unpin,
{
    let (config, metrics) = (&shared.config, &shared.metrics);
    let mut rate = RateLimit::new(config, Instant::now());
    loop {
        let next = tokio::select! {
            // The document or the writer decided to end this connection.
            reason = outbox.closed() => return reason,
            next = tokio::time::timeout(config.idle_connection_timeout, stream.next()) => next,
        };
        let frame = match next {
            Err(_) => return CloseReason::Timeout,
            Ok(None) => return CloseReason::Normal,
            Ok(Some(Err(error))) => return socket_error(error),
            Ok(Some(Ok(WsMessage::Binary(frame)))) => frame,
            Ok(Some(Ok(WsMessage::Text(_)))) => {
                return CloseReason::Malformed("text frames are not part of the protocol".into())
            }
            // tungstenite answers pings itself; any frame at all proves the peer is alive.
            Ok(Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_)))) => continue,
            Ok(Some(Ok(WsMessage::Close(_)))) => return CloseReason::Normal,
        };
        metrics.bytes_in.inc_by(frame.len() as u64);
        let len = frame.len();
        match rate.admit(len, Instant::now()) {
            Verdict::Now => {}
            // Its bytes are paid for by waiting; meanwhile its socket is read no further.
            Verdict::After(wait) => tokio::select! {
                reason = outbox.closed() => return reason,
                () = tokio::time::sleep(wait) => {}
            },
            Verdict::Flood => {
                metrics.clients_dropped_fast.inc();
                return CloseReason::TooFast;
            }
        }
        // Decoding costs in proportion to the frame: a big one is decoded off the runtime.
        let decoded = if len > INLINE_BYTES {
            shared
                .off_runtime(move || protocol::decode_inbound(&frame))
                .await
                .unwrap_or(Err(ProtocolError::Panicked("message decoding")))
        } else {
            protocol::decode_inbound(&frame)
        };
        match decoded {
            Ok(messages) => {
                if handle.send(conn, messages, len).await.is_err() {
                    return CloseReason::ShuttingDown;
                }
            }
            Err(error) => {
                metrics.messages_rejected.inc();
                return error.into();
            }
        }
    }
}

/// Resolves at `ms` since the epoch; never, without one.
async fn until(ms: Option<u64>) {
    match ms {
        Some(ms) => {
            let left = ms.saturating_sub(crate::auth::now_ms());
            tokio::time::sleep(std::time::Duration::from_millis(left)).await;
        }
        None => std::future::pending().await,
    }
}

/// Too-big messages get their own close code; anything else means the socket broke.
fn socket_error(error: axum::Error) -> CloseReason {
    let inner = error.into_inner();
    match inner.downcast_ref::<tungstenite::Error>() {
        Some(tungstenite::Error::Capacity(_)) => CloseReason::TooBig,
        _ => CloseReason::Normal,
    }
}

/// Sends queued frames and pings until the outbox is closed, then sends the close frame.
async fn write_loop<K>(
    mut sink: K,
    mut frames: OutboxReceiver,
    outbox: Outbox,
    config: std::sync::Arc<Config>,
    metrics: std::sync::Arc<Metrics>,
    shutdown: CancellationToken,
) where
    K: Sink<WsMessage, Error = axum::Error> + Unpin,
{
    let mut ping = interval_at(Instant::now() + config.ping_interval, config.ping_interval);
    ping.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let reason = loop {
        let message = tokio::select! {
            biased;
            reason = outbox.closed() => break reason,
            _ = shutdown.cancelled() => break CloseReason::ShuttingDown,
            frame = frames.recv() => match frame {
                Some(frame) => {
                    if let Some(gate) = frame.gate {
                        tokio::select! {
                            biased;
                            reason = outbox.closed() => break reason,
                            opened = gate => if let Err(reason) = opened { break reason },
                        }
                    }
                    metrics.bytes_out.inc_by(frame.bytes.len() as u64);
                    WsMessage::Binary(frame.bytes)
                }
                None => break CloseReason::Internal,
            },
            _ = ping.tick() => WsMessage::Ping(Default::default()),
        };
        tokio::select! {
            biased;
            // A send stuck on a full socket is abandoned when the connection is dropped.
            reason = outbox.closed() => break reason,
            sent = sink.send(message) => if sent.is_err() {
                // The socket is gone: end the reader too, so the document drops this peer.
                outbox.close(CloseReason::Normal);
                return;
            },
        }
    };
    let close = CloseFrame {
        code: reason.code(),
        reason: reason.reason().as_ref().into(),
    };
    let _ = tokio::time::timeout(config.close_timeout, sink.send(WsMessage::Close(Some(close)))).await;
}

/// Tells the document the connection left, however the connection ends.
struct LeaveGuard<'a> {
    handle: &'a DocHandle,
    conn: ConnId,
}

impl Drop for LeaveGuard<'_> {
    fn drop(&mut self) {
        self.handle.leave(self.conn);
    }
}

/// Counts the connection as open, and holds its admission permit, for as long as it lives.
struct OpenConnection<'a> {
    metrics: &'a Metrics,
    _permit: OwnedSemaphorePermit,
}

impl<'a> OpenConnection<'a> {
    fn new(metrics: &'a Metrics, permit: OwnedSemaphorePermit) -> Self {
        metrics.connections_open.inc();
        OpenConnection {
            metrics,
            _permit: permit,
        }
    }
}

impl Drop for OpenConnection<'_> {
    fn drop(&mut self) {
        self.metrics.connections_open.dec();
    }
}
