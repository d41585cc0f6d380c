//! The listening socket: accept, admit, serve HTTP/1 with a header-read timeout, and stop in
//! the order [`shutdown`](crate::shutdown) writes down.
//!
//! `axum::serve` installs no timer, so a client that sends its request head a byte a minute
//! would hold its socket forever, and it counts nothing but what the handlers count (only
//! WebSocket upgrades). Here every accepted socket takes a [`Ticket`](admission::Ticket) first:
//! one of `max_sockets`, and one of its address's `max_per_address`. A socket that gets none is
//! answered at once (503 or 429, with Retry-After) and closed. hyper's HTTP/1 connection then
//! serves it with a timer: a request head that has not arrived `header_read_timeout` after the
//! server started waiting for it closes the socket. (Not timed: a request body sent slowly,
//! or a response read slowly. Those sockets are bounded only by the budget and the cap.)
//!
//! Refusing by answering rather than by not accepting: a server that stops calling `accept`
//! leaves new clients in the kernel's backlog, where they wait without a word (their SYNs are
//! dropped once it is full, and they retry for a minute or more), and the clients it would
//! have had room for a moment later wait behind them. An answer costs one write on a fresh
//! socket, tells a client when to come back (y-websocket's provider retries with backoff), and
//! shows up in `/metrics`.
//!
//! Behind a reverse proxy every socket comes from the proxy. For peers in `trusted_proxies`
//! the socket is not capped per address; instead each request it forwards counts against the
//! address in its `X-Forwarded-For` ([`client`]), for as long as the request runs, and for a
//! WebSocket as long as the WebSocket is open ([`ClientSlot`]).

pub mod admission;
pub mod client;

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use axum::response::{IntoResponse, Response};
use axum::Router;
use bytes::Bytes;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::state::Shared;
use admission::{AddressSlot, Admission, Admitted, PerAddress, Refused};
pub use client::{AddressKey, Cidr, CidrError, TrustedProxies};

/// Binds a listener on `addr` whose kernel queue of connections not yet accepted holds
/// `backlog` (the kernel caps it at `net.core.somaxconn`). tokio's `TcpListener::bind` asks for
/// 128, as std does; past that the kernel drops SYNs, and each client waits a retransmission
/// (1 s, then 3 s, 7 s...) instead of a few microseconds for `accept`.
pub fn bind(addr: SocketAddr, backlog: u32) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    // As std and tokio do: a restarted server binds at once, past its predecessor's TIME_WAITs.
    #[cfg(unix)]
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(backlog)
}

/// A forwarded client's place in its address's cap, in the extensions of a request that came
/// through a trusted proxy. Whoever needs the request's client counted for longer than the
/// request (the WebSocket endpoint: for the life of the WebSocket) keeps a clone.
#[derive(Clone)]
pub struct ClientSlot {
    _slot: Arc<AddressSlot>,
}

/// Serves `router` on `listener` until `shared.shutdown` is cancelled. Then stops accepting,
/// lets every HTTP connection finish the request it is serving (idle ones close at once) for
/// at most `shutdown_grace`, closes the ones still open, and returns. Upgraded WebSockets are
/// not waited for here: they belong to `shared.tracker`.
pub async fn serve(listener: TcpListener, router: Router, shared: &Shared) {
    let config = &shared.config;
    let metrics = shared.metrics.clone();
    let admission = Admission::new(config.max_sockets, config.max_per_address, metrics.clone());
    let trusted = TrustedProxies::new(config.trusted_proxies.clone());
    let refusals = Refusals {
        budget: render(ApiError::Busy).await,
        address: render(ApiError::TooManyFromAddress).await,
    };
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(config.header_read_timeout);
    let connections = Arc::new(Connections {
        router,
        http,
        trusted: trusted.clone(),
        per_address: admission.per_address.clone(),
        metrics,
        stop: shared.shutdown.clone(),
        cut: CancellationToken::new(),
    });
    let tasks = TaskTracker::new();
    loop {
        let (stream, peer) = tokio::select! {
            biased;
            () = shared.shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    accept_failed(error).await;
                    continue;
                }
            },
        };
        // Edits are small frames that must go out at once: Nagle's algorithm would hold them
        // back waiting for an ACK (tens of ms).
        if let Err(error) = stream.set_nodelay(true) {
            tracing::warn!(%error, "cannot set TCP_NODELAY");
        }
        let key = (!trusted.contains(peer.ip())).then(|| AddressKey::of(peer.ip()));
        match admission.admit(key) {
            Ok(ticket) => {
                tasks.spawn(connections.clone().serve(Admitted::new(stream, ticket), peer));
            }
            Err(Refused::Budget) => refuse(stream, &refusals.budget),
            Err(Refused::Address) => {
                tracing::debug!(client = %peer.ip(), "refused: too many sockets from one address");
                refuse(stream, &refusals.address);
            }
        }
    }
    // Stop accepting: from here the kernel refuses new connections to the port.
    drop(listener);
    tasks.close();
    let grace = config.shutdown_grace;
    if tokio::time::timeout(grace, tasks.wait()).await.is_err() {
        tracing::warn!("{} HTTP connections did not finish within {grace:?}; closing them", tasks.len());
        connections.cut.cancel();
        tasks.wait().await;
    }
}

/// What every HTTP connection shares.
struct Connections {
    router: Router,
    http: http1::Builder,
    trusted: TrustedProxies,
    per_address: Arc<PerAddress>,
    metrics: Arc<Metrics>,
    /// Shutdown has begun: finish the request in flight, take no more.
    stop: CancellationToken,
    /// The grace period is over: close now.
    cut: CancellationToken,
}

impl Connections {
    /// Serves HTTP/1 on one socket until the client leaves, the socket upgrades to a WebSocket
    /// (hyper then hands the socket, ticket and all, to the WebSocket's task), the request
    /// head times out, or shutdown.
    async fn serve(self: Arc<Self>, socket: Admitted, peer: SocketAddr) {
        let proxy = self.trusted.contains(peer.ip());
        let handler = self.clone();
        let service = service_fn(move |request| handler.clone().handle(request, peer.ip(), proxy));
        let connection = self.http.serve_connection(TokioIo::new(socket), service).with_upgrades();
        tokio::pin!(connection);
        let ended = tokio::select! {
            ended = connection.as_mut() => ended,
            () = self.stop.cancelled() => {
                // Closes an idle connection at once, or after the response in flight.
                connection.as_mut().graceful_shutdown();
                tokio::select! {
                    ended = connection.as_mut() => ended,
                    () = self.cut.cancelled() => Ok(()),
                }
            }
        };
        match ended {
            Err(error) if error.is_timeout() => {
                self.metrics.header_timeouts.inc();
                tracing::debug!(%peer, "closed: no request head within the header read timeout");
            }
            Err(error) => tracing::debug!(%peer, %error, "HTTP connection failed"),
            Ok(()) => {}
        }
    }

    async fn handle(self: Arc<Self>, mut request: Request<Incoming>, peer: IpAddr, proxy: bool) -> Result<Response, Infallible> {
        if proxy {
            let client = self.trusted.client_behind(peer, request.headers());
            match self.per_address.take(AddressKey::of(client)) {
                Some(slot) => {
                    request.extensions_mut().insert(ClientSlot { _slot: Arc::new(slot) });
                }
                None => {
                    self.metrics.address_refused.inc();
                    tracing::debug!(%client, "refused: too many requests from one forwarded address");
                    return Ok(ApiError::TooManyFromAddress.into_response());
                }
            }
        }
        self.router.clone().oneshot(request.map(Body::new)).await
    }
}

/// The answers to sockets that are not let in, rendered once.
struct Refusals {
    budget: Bytes,
    address: Bytes,
}

/// `error`'s response as HTTP/1.1 bytes that close the connection, for sockets refused before
/// hyper sees them. Rendered from [`ApiError`], so the status, the Retry-After and the JSON
/// body are the ones every other refusal has.
async fn render(error: ApiError) -> Bytes {
    let (parts, body) = error.into_response().into_parts();
    // A JSON object of a few dozen bytes, already in memory: this cannot fail.
    let body = axum::body::to_bytes(body, usize::MAX).await.unwrap_or_default();
    let mut out = format!("HTTP/1.1 {}\r\n", parts.status).into_bytes();
    for (name, value) in &parts.headers {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("content-length: {}\r\nconnection: close\r\n\r\n", body.len()).as_bytes());
    out.extend_from_slice(&body);
    out.into()
}

/// Answers a socket that is not let in, and closes it, without waiting for it: the accept loop
/// must not be held up by a client it is turning away, least of all in a flood.
fn refuse(stream: TcpStream, answer: &[u8]) {
    // A fresh socket's send buffer (tens of KiB) takes the few hundred bytes whole.
    let _ = stream.try_write(answer);
    // Read what the client has sent already (its request, usually): closing a socket with
    // unread data sends a reset, which can destroy the answer before the client reads it. What
    // arrives after the close still draws a reset; lingering to read it, as nginx does, would
    // hold descriptors past the budget at exactly the moment there are none to spare.
    let mut discard = [0u8; 4096];
    let mut drained = 0;
    while drained < DRAIN_BYTES {
        match stream.try_read(&mut discard) {
            Ok(0) | Err(_) => break,
            Ok(n) => drained += n,
        }
    }
}

/// How much of a refused client's request is read before closing: a request head several
/// times over (browsers send a few KiB at most, a WebSocket upgrade well under 2 KiB), and
/// still only microseconds of the accept loop's time.
const DRAIN_BYTES: usize = 64 * 1024;

/// What to do when `accept` fails. A connection that broke before it was accepted concerns
/// only its client. Anything else is most likely the process's file limit (EMFILE) or the
/// system's (ENFILE): nothing can be accepted until something closes, so wait instead of
/// spinning (hyper 0.14's `sleep_on_errors` and axum::serve do the same, for a second).
async fn accept_failed(error: std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(error.kind(), ConnectionAborted | ConnectionRefused | ConnectionReset) {
        return;
    }
    tracing::error!(%error, "accept failed; retrying in 1 s");
    tokio::time::sleep(ACCEPT_RETRY).await;
}

/// hyper 0.14's and axum's pause after an accept error that is not the client's.
const ACCEPT_RETRY: Duration = Duration::from_secs(1);

#[cfg(test)]
mod tests {
    use super::*;

    /// A burst of connects larger than tokio's default backlog (128) completes even while
    /// nobody accepts: the kernel queues them instead of dropping their SYNs, which would cost
    /// each client a retransmission (1 s, then 3 s, 7 s...).
    #[tokio::test]
    async fn a_burst_of_connects_waits_in_the_backlog() {
        let somaxconn: u32 = std::fs::read_to_string("/proc/sys/net/core/somaxconn")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(4096);
        let burst = 1000.min(somaxconn as usize - 1);
        let listener = bind("127.0.0.1:0".parse().unwrap(), 4096).unwrap();
        let addr = listener.local_addr().unwrap();
        let mut sockets = Vec::new();
        for i in 0..burst {
            // Never accepted: only the backlog holds them. A dropped SYN would be retried for
            // two minutes, so this waits for a retransmission or two at most.
            let connect = tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(addr)).await;
            sockets.push(connect.unwrap_or_else(|_| panic!("connect {i} of {burst} was dropped")).unwrap());
        }
        drop(listener);
    }
}
