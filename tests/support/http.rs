//! Raw HTTP/1.1 over a TcpStream (the server speaks HTTP/1; no client crate here): quire's
//! API, `/metrics` and `/healthz`.

use std::net::{IpAddr, SocketAddr};

use serde_json::Value;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// Returns the status code and body of `GET path`.
pub async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("send request");
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.expect("read response");
    let response = String::from_utf8_lossy(&response).into_owned();
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status line");
    let body = response.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    (status, body)
}

/// The value of a Prometheus sample `name` (no labels) in `/metrics`.
pub async fn metric(addr: SocketAddr, name: &str) -> f64 {
    let (_, body) = get(addr, "/metrics").await;
    body.lines()
        .find_map(|line| {
            let (key, value) = line.split_once(' ')?;
            (key == name).then(|| value.trim().parse().ok())?
        })
        .unwrap_or_else(|| panic!("metric {name} not found in:\n{body}"))
}

/// A response: status, headers, body (de-chunked).
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        let found = self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name));
        found.map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8(self.body.clone()).expect("a UTF-8 body")
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    /// Asserts the status and quire's JSON error shape; returns the error code.
    pub fn error(&self, status: u16) -> String {
        assert_eq!(self.status, status, "body: {}", String::from_utf8_lossy(&self.body));
        assert_eq!(self.header("content-type"), Some("application/json"));
        let body = self.json();
        assert!(body["error"]["message"].is_string(), "{body}");
        body["error"]["code"].as_str().expect("an error code").to_owned()
    }
}

/// quire's HTTP API at an address.
#[derive(Clone, Copy)]
pub struct Api(pub SocketAddr);

impl Api {
    pub async fn send(self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Reply {
        let stream = tokio::net::TcpStream::connect(self.0).await.expect("connect");
        exchange(stream, self.0, method, path, headers, body).await
    }

    /// [`send`](Self::send) from another loopback address (Linux answers on all of
    /// 127.0.0.0/8): a second client, as far as the server can tell.
    pub async fn send_from(
        self,
        source: IpAddr,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Reply {
        exchange(connect_from(source, self.0).await, self.0, method, path, headers, body).await
    }

    pub async fn get(self, path: &str) -> Reply {
        self.send("GET", path, &[], b"").await
    }

    pub async fn delete(self, path: &str) -> Reply {
        self.send("DELETE", path, &[], b"").await
    }

    pub async fn create(self, body: Value) -> Reply {
        let json = [("Content-Type", "application/json")];
        self.send("POST", "/api/docs", &json, body.to_string().as_bytes()).await
    }

    pub async fn put(self, doc: &str, content_type: &str, body: &[u8]) -> Reply {
        let path = format!("/api/docs/{doc}/content");
        self.send("PUT", &path, &[("Content-Type", content_type)], body).await
    }

    pub async fn post_update(self, doc: &str, content_type: Option<&str>, body: &[u8]) -> Reply {
        let path = format!("/api/docs/{doc}/updates");
        let headers: Vec<_> = content_type.map(|t| ("Content-Type", t)).into_iter().collect();
        self.send("POST", &path, &headers, body).await
    }
}

/// Sends one request on `stream` and reads the whole response.
async fn exchange(
    mut stream: TcpStream,
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Reply {
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    stream.write_all(head.as_bytes()).await.expect("send the head");
    // A server refusing the body (413) may stop reading it: its answer is what counts.
    let _ = stream.write_all(body).await;
    read_reply(&mut stream).await
}

/// Reads a response until the server closes the socket.
pub async fn read_reply(stream: &mut (impl AsyncRead + Unpin)) -> Reply {
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw).await;
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("a response head");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines.next().and_then(|l| l.split(' ').nth(1)?.parse().ok()).expect("a status");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let mut reply = Reply { status, headers, body: raw[split + 4..].to_vec() };
    if reply.header("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        reply.body = dechunk(&reply.body);
    }
    reply
}

/// A socket to `addr` from the loopback address `source` (any free port).
pub async fn connect_from(source: IpAddr, addr: SocketAddr) -> TcpStream {
    let socket = match source {
        IpAddr::V4(_) => TcpSocket::new_v4(),
        IpAddr::V6(_) => TcpSocket::new_v6(),
    }
    .expect("a socket");
    socket.bind(SocketAddr::new(source, 0)).unwrap_or_else(|e| panic!("bind {source}: {e}"));
    socket.connect(addr).await.unwrap_or_else(|e| panic!("connect {addr} from {source}: {e}"))
}

fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let end = raw.windows(2).position(|w| w == b"\r\n").expect("a chunk size line");
        let size = usize::from_str_radix(std::str::from_utf8(&raw[..end]).unwrap().trim(), 16).unwrap();
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&raw[end + 2..end + 2 + size]);
        raw = &raw[end + 2 + size + 2..];
    }
}
