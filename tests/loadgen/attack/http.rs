//! One HTTP/1.1 request on a fresh connection, answered or failed without panicking: an
//! attacker must survive a server that refuses it in any way.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The status and, for quire's JSON errors, the error code; or why there was no answer.
pub async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<(u16, Option<String>), String> {
    let mut stream = TcpStream::connect(addr).await.map_err(|e| format!("connect: {e}"))?;
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    stream.write_all(head.as_bytes()).await.map_err(|e| format!("send: {e}"))?;
    // A server that refuses the body may stop reading it: its answer is what counts.
    let _ = stream.write_all(body).await;
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response).await;
    let text = String::from_utf8_lossy(&response);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("no status line in {} bytes", response.len()))?;
    let code = text.split_once(r#""code":""#).and_then(|(_, rest)| rest.split('"').next()).map(str::to_owned);
    Ok((status, code))
}

/// "HTTP 404 not_found", or the failure.
pub fn outcome(answer: Result<(u16, Option<String>), String>) -> String {
    match answer {
        Ok((status, Some(code))) => format!("HTTP {status} {code}"),
        Ok((status, None)) => format!("HTTP {status}"),
        Err(error) => error,
    }
}
