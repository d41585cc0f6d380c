//! Every socket counts: sockets that never finish their request head or body are closed, the socket
//! budget and the per-address cap refuse politely, `X-Forwarded-For` is believed only from a
//! trusted proxy, and a flood of half-open sockets does not stop real editors.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use quire::store::memory::MemoryStore;
use quire::Config;
use quire_tests::http::{metric, read_reply, Api, Reply};
use quire_tests::process::{quire_bin, QuireProcess};
use quire_tests::{wait_for, wait_for_async, Client, TempDir, TestServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Error as WsError;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// The start of a request head, without the blank line that would end it.
const UNFINISHED_HEAD: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: quire\r\n";

/// A second client on this machine: Linux answers on all of 127.0.0.0/8.
const OTHER_CLIENT: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));

async fn memory_server(config: Config) -> TestServer {
    TestServer::with_store(Arc::new(MemoryStore::new()), config).await
}

/// A socket that has sent part of a request head and will never send the rest.
async fn half_open(addr: std::net::SocketAddr) -> TcpStream {
    let mut socket = TcpStream::connect(addr).await.expect("connect");
    socket.write_all(UNFINISHED_HEAD).await.expect("send half a head");
    socket
}

/// Reads until the server closes `socket` (EOF or a reset); what it says before (nothing, or
/// a refusal) is dropped.
async fn closed_by_server(socket: &mut TcpStream) {
    let mut buf = [0u8; 512];
    while let Ok(n) = socket.read(&mut buf).await {
        if n == 0 {
            return;
        }
    }
}

/// Sends a request head that never ends, a byte at a time (a slowloris client); returns once
/// the server has closed the socket, or panics after `deadline`.
async fn trickle_until_closed(socket: &mut TcpStream, deadline: Duration) {
    socket.write_all(UNFINISHED_HEAD).await.unwrap();
    let give_up = tokio::time::Instant::now() + deadline;
    let mut buf = [0u8; 256];
    loop {
        tokio::select! {
            read = socket.read(&mut buf) => match read {
                Ok(0) | Err(_) => return,
                Ok(_) => continue,
            },
            () = tokio::time::sleep(Duration::from_millis(100)) => {
                if socket.write_all(b"X").await.is_err() {
                    return;
                }
            }
        }
        assert!(
            tokio::time::Instant::now() < give_up,
            "the server kept a socket that never finished its request head open for {deadline:?}"
        );
    }
}

/// Asserts a polite refusal: `status`, quire's JSON error with `code`, and Retry-After.
fn assert_refused(reply: &Reply, status: u16, code: &str) {
    assert_eq!(reply.error(status), code);
    assert_eq!(reply.header("retry-after"), Some("2"));
}

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Opens a WebSocket with an `X-Forwarded-For` header, as a proxy in front of quire would;
/// returns the socket or the status that refused it.
async fn ws_forwarded_for(url: &str, forwarded_for: &str) -> Result<Ws, u16> {
    let mut request = url.into_client_request().unwrap();
    request.headers_mut().insert("x-forwarded-for", forwarded_for.parse().unwrap());
    match tokio_tungstenite::connect_async(request).await {
        Ok((ws, _)) => Ok(ws),
        Err(WsError::Http(response)) => Err(response.status().as_u16()),
        Err(other) => panic!("expected a WebSocket or a refusal, got {other}"),
    }
}

#[tokio::test]
async fn a_socket_that_never_finishes_its_request_head_is_closed() {
    let config = Config {
        header_read_timeout: Duration::from_millis(500),
        ..Config::default()
    };
    let server = memory_server(config).await;
    // One that sends a byte every 100 ms (it is never idle, only never done)...
    let mut slow = TcpStream::connect(server.addr).await.unwrap();
    trickle_until_closed(&mut slow, Duration::from_secs(10)).await;
    // ...and one that sends nothing at all.
    let mut silent = TcpStream::connect(server.addr).await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), closed_by_server(&mut silent))
        .await
        .expect("a silent socket was kept open");
    assert_eq!(metric(server.addr, "quire_header_timeouts_total").await, 2.0);
    // A request that does arrive in time is served as before.
    assert_eq!(Api(server.addr).get("/healthz").await.status, 200);
    server.stop().await;
}

#[tokio::test]
async fn a_request_body_that_stalls_or_trickles_is_answered_408_and_closed() {
    let config = Config {
        body_read_timeout: Duration::from_millis(500),
        body_min_rate: 100_000,
        ..Config::default()
    };
    let server = memory_server(config).await;
    let api = Api(server.addr);
    assert_eq!(api.create(serde_json::json!({ "id": "kept", "content": "as it was" })).await.status, 201);
    let before = api.get("/api/docs/kept/content?format=text").await.text();
    let head = b"PUT /api/docs/kept/content HTTP/1.1\r\nHost: quire\r\nContent-Type: text/plain\r\nContent-Length: 1000\r\n\r\nreplaced b";
    // One that stops after 10 of its 1,000 bytes, one that sends a byte every 100 ms.
    for trickle in [false, true] {
        let (mut from, mut to) = TcpStream::connect(server.addr).await.unwrap().into_split();
        to.write_all(head).await.unwrap();
        let sending = tokio::spawn(async move {
            while trickle && to.write_all(b"y").await.is_ok() {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            to
        });
        let reply = tokio::time::timeout(Duration::from_secs(10), read_reply(&mut from))
            .await
            .unwrap_or_else(|_| panic!("a body that {} was waited for 10 s", if trickle { "trickles" } else { "stalls" }));
        assert_eq!(reply.error(408), "body_timeout", "{}", reply.text());
        sending.abort();
    }
    assert_eq!(api.get("/api/docs/kept/content?format=text").await.text(), before);
    // A body that keeps its pace is taken, though it takes longer than the timeout: 300 KB in
    // 10 KB steps every 20 ms (500 KB/s) over 0.6 s.
    let (mut from, mut to) = TcpStream::connect(server.addr).await.unwrap().into_split();
    let body = "paced line\n".repeat(300_000 / 11);
    let head = format!(
        "PUT /api/docs/kept/content HTTP/1.1\r\nHost: quire\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    to.write_all(head.as_bytes()).await.unwrap();
    for step in body.as_bytes().chunks(10_000) {
        to.write_all(step).await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(read_reply(&mut from).await.status, 204);
    assert!(api.get("/api/docs/kept/content?format=text").await.text().starts_with("paced line\n"));
    server.stop().await;
}

#[tokio::test]
async fn past_the_socket_budget_a_socket_is_answered_503_and_closed() {
    let config = Config {
        max_sockets: 3,
        ..Config::default()
    };
    let server = memory_server(config).await;
    let api = Api(server.addr);
    // Three sockets that are not WebSockets (max_connections is far away) take the budget.
    let mut hogs = vec![half_open(server.addr).await, half_open(server.addr).await, half_open(server.addr).await];
    // The server accepts in the order the kernel queued the connections, so the next one
    // finds no room: an HTTP request...
    assert_refused(&api.get("/healthz").await, 503, "busy");
    // ...and a WebSocket, refused before the upgrade like any other request.
    match tokio_tungstenite::connect_async(server.ws_url("full")).await {
        Err(WsError::Http(response)) => {
            assert_eq!(response.status(), 503);
            assert_eq!(response.headers()["retry-after"], "2");
        }
        other => panic!("expected 503, got {:?}", other.map(|_| "an open socket")),
    }
    // One leaves; its place is free for the next.
    drop(hogs.pop());
    wait_for_async(Duration::from_secs(10), "a free place in the socket budget", || async {
        api.get("/healthz").await.status == 200
    })
    .await;
    assert!(metric(server.addr, "quire_sockets_refused_total").await >= 2.0);
    assert_eq!(metric(server.addr, "quire_sockets_open").await, 3.0, "two hogs and this request");
    drop(hogs);
    server.stop().await;
}

#[tokio::test]
async fn past_the_per_address_cap_a_socket_is_answered_429_and_closed() {
    let config = Config {
        max_per_address: 2,
        ..Config::default()
    };
    let server = memory_server(config).await;
    let api = Api(server.addr);
    let mut hogs = vec![half_open(server.addr).await, half_open(server.addr).await];
    assert_refused(&api.get("/healthz").await, 429, "too_many_connections");
    let url = server.ws_url("capped");
    match tokio_tungstenite::connect_async(&url).await {
        Err(WsError::Http(response)) => assert_eq!(response.status(), 429),
        other => panic!("expected 429, got {:?}", other.map(|_| "an open socket")),
    }
    // Another address is not affected.
    assert_eq!(api.send_from(OTHER_CLIENT, "GET", "/healthz", &[], b"").await.status, 200);
    let metrics = api.send_from(OTHER_CLIENT, "GET", "/metrics", &[], b"").await.text();
    assert!(metrics.contains("quire_address_refused_total 2"), "{metrics}");
    // A place of its own comes back when one of its sockets closes.
    drop(hogs.pop());
    wait_for_async(Duration::from_secs(10), "a free place for 127.0.0.1", || async {
        api.get("/healthz").await.status == 200
    })
    .await;
    drop(hogs);
    let client = Client::connect_synced(&url).await;
    client.push("in");
    client.wait_text("in").await;
    server.stop().await;
}

#[tokio::test]
async fn x_forwarded_for_counts_only_from_a_trusted_proxy() {
    // The test is the proxy: its sockets come from 127.0.0.1.
    let trusted = memory_server(Config {
        max_per_address: 2,
        trusted_proxies: vec!["127.0.0.0/8".parse().unwrap()],
        ..Config::default()
    })
    .await;
    let url = trusted.ws_url("proxied");
    let a1 = ws_forwarded_for(&url, "203.0.113.7").await.expect("first from .7");
    // The left-most entry is whatever the client sent; the proxy appended .7.
    let a2 = ws_forwarded_for(&url, "198.51.100.1, 203.0.113.7").await.expect("second from .7");
    // A chain through another trusted proxy still ends at .7, which has two open.
    assert_eq!(ws_forwarded_for(&url, "203.0.113.7, 127.0.0.9").await.err(), Some(429));
    // API requests count too.
    let reply = Api(trusted.addr).send("GET", "/healthz", &[("X-Forwarded-For", "203.0.113.7")], b"").await;
    assert_refused(&reply, 429, "too_many_connections");
    // Other clients behind the same proxy get in, past two sockets from 127.0.0.1: the proxy's
    // own sockets are not capped.
    let b1 = ws_forwarded_for(&url, "203.0.113.8").await.expect("first from .8");
    let b2 = ws_forwarded_for(&url, "203.0.113.9").await.expect("first from .9");
    // .7's place comes back when one of its WebSockets closes, not before.
    drop(a1);
    wait_for_async(Duration::from_secs(10), "a free place for 203.0.113.7", || async {
        ws_forwarded_for(&url, "203.0.113.7").await.is_ok()
    })
    .await;
    drop((a2, b1, b2));
    trusted.stop().await;

    // The same requests to a server that trusts another proxy: the header is ignored, and
    // every socket is the peer's, 127.0.0.1.
    let untrusting = memory_server(Config {
        max_per_address: 2,
        trusted_proxies: vec!["192.0.2.0/24".parse().unwrap()],
        ..Config::default()
    })
    .await;
    let url = untrusting.ws_url("proxied");
    let c1 = ws_forwarded_for(&url, "203.0.113.7").await.expect("first socket");
    let c2 = ws_forwarded_for(&url, "203.0.113.8").await.expect("second socket");
    assert_eq!(ws_forwarded_for(&url, "203.0.113.9").await.err(), Some(429));
    drop((c1, c2));
    untrusting.stop().await;
}

/// Each client appends one word; returns once every replica of every document holds every
/// word of its document and the replicas of a document agree.
async fn edit_round(docs: &[Vec<Client>], round: usize) {
    for (d, clients) in docs.iter().enumerate() {
        for (c, client) in clients.iter().enumerate() {
            client.push(&format!("[r{round} d{d} c{c}]"));
        }
    }
    for (d, clients) in docs.iter().enumerate() {
        let words: Vec<String> = (0..=round)
            .flat_map(|r| (0..clients.len()).map(move |c| format!("[r{r} d{d} c{c}]")))
            .collect();
        wait_for(Duration::from_secs(30), &format!("document {d} to converge in round {round}"), || {
            let first = clients[0].text();
            words.iter().all(|w| first.contains(w.as_str())) && clients.iter().all(|c| c.text() == first)
        })
        .await;
    }
}

/// The scenario: 5,000 sockets that never finish their request heads while 100 real
/// clients keep editing. The editors keep converging with the half-open sockets all open, and
/// the header-read timeout closes those afterwards. How the editors' latency changes is a
/// benchmark's question (`loadgen --half-open`), not this test's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_thousand_half_open_sockets_do_not_stop_a_hundred_editors() {
    const HALF_OPEN: usize = 5_000;
    const DOCS: usize = 10;
    const PER_DOC: usize = 10;
    // The test holds its end of every socket: 5,100 descriptors and some to spare.
    let limit = rlimit::increase_nofile_limit(u64::MAX).expect("raise the open file limit");
    assert!(limit >= 6_000, "this test needs 6,000 file descriptors; the limit is {limit}");
    let dir = TempDir::new("half-open");
    // The real binary, so the flood and the editors meet the server as deployed, on its own
    // runtime. One address sends the flood here; a botnet would use many, so the per-address
    // cap, which would stop this one at 4,000, is turned off: the timeout must do the work.
    // 30 s: far longer than the editing below takes, so the sockets are all open throughout.
    let server =
        QuireProcess::start(&quire_bin(), dir.path(), &["--header-read-timeout-secs", "30", "--max-per-address", "0"])
            .await;
    let addr = server.addr;

    // 200 connects at a time stays well under the listen backlog (tokio asks for 1024).
    let mut flood: Vec<TcpStream> =
        futures_util::stream::iter(0..HALF_OPEN).map(|_| half_open(addr)).buffer_unordered(200).collect().await;
    wait_for_async(Duration::from_secs(60), "the server to hold all 5,000 half-open sockets", || async {
        metric(addr, "quire_sockets_open").await >= (HALF_OPEN + 1) as f64
    })
    .await;

    let mut docs = Vec::new();
    for d in 0..DOCS {
        let url = server.ws_url(&format!("busy-{d}"));
        let clients = futures_util::future::join_all((0..PER_DOC).map(|_| Client::connect_synced(&url))).await;
        docs.push(clients);
    }
    for round in 0..5 {
        edit_round(&docs, round).await;
    }
    // None of them had been closed yet: the editing happened with all 5,000 open.
    assert_eq!(metric(addr, "quire_header_timeouts_total").await, 0.0, "the editing outlasted the flood");
    assert!(metric(addr, "quire_sockets_open").await >= (HALF_OPEN + DOCS * PER_DOC) as f64);

    // Then the timeout closes every one of them, and the editors are still there.
    let closed = Arc::new(AtomicUsize::new(0));
    futures_util::future::join_all(flood.iter_mut().map(|socket| {
        let closed = closed.clone();
        async move {
            if tokio::time::timeout(Duration::from_secs(120), closed_by_server(socket)).await.is_ok() {
                closed.fetch_add(1, Ordering::Relaxed);
            }
        }
    }))
    .await;
    assert_eq!(closed.load(Ordering::Relaxed), HALF_OPEN, "half-open sockets the server closed");
    assert_eq!(metric(addr, "quire_header_timeouts_total").await, HALF_OPEN as f64);
    edit_round(&docs, 5).await;
    assert!(docs.iter().flatten().all(|c| c.closed().is_none()), "an editor was disconnected");
    assert_eq!(
        metric(addr, "quire_sockets_open").await,
        (DOCS * PER_DOC + 1) as f64,
        "the editors and this request"
    );
    drop(flood);
    assert!(server.terminate().await.success());
}
