//! One HTTP/1.1 request on a fresh connection, answered or failed without panicking: an
//! attacker must survive a server that refuses it in any way, and reading a server's figures
//! must not end a benchmark.

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
    let (status, response) = exchange(addr, method, path, headers, body).await?;
    let text = String::from_utf8_lossy(&response);
    let code = text.split_once(r#""code":""#).and_then(|(_, rest)| rest.split('"').next()).map(str::to_owned);
    Ok((status, code))
}

/// A GET's status and body (chunked or not).
pub async fn get(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Result<(u16, Vec<u8>), String> {
    let (status, response) = exchange(addr, "GET", path, headers, b"").await?;
    let split = response.windows(4).position(|w| w == b"\r\n\r\n").ok_or("no end of the head")?;
    let head = String::from_utf8_lossy(&response[..split]).to_ascii_lowercase();
    let body = &response[split + 4..];
    if head.contains("transfer-encoding: chunked") {
        return Ok((status, dechunk(body)?));
    }
    Ok((status, body.to_vec()))
}

fn dechunk(mut body: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let line = body.windows(2).position(|w| w == b"\r\n").ok_or("a chunk without its size")?;
        let size = std::str::from_utf8(&body[..line]).ok().and_then(|s| usize::from_str_radix(s.split(';').next()?.trim(), 16).ok());
        let size = size.ok_or("an unreadable chunk size")?;
        if size == 0 {
            return Ok(out);
        }
        let chunk = body.get(line + 2..line + 2 + size).ok_or("a chunk cut short")?;
        out.extend_from_slice(chunk);
        body = body.get(line + 4 + size..).ok_or("a chunk cut short")?;
    }
}

/// Sends the request and reads until the server closes: the status and the whole response.
async fn exchange(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<(u16, Vec<u8>), String> {
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
    let status = String::from_utf8_lossy(&response[..response.len().min(64)])
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("no status line in {} bytes", response.len()))?;
    Ok((status, response))
}

/// "HTTP 404 not_found", or the failure.
pub fn outcome(answer: Result<(u16, Option<String>), String>) -> String {
    match answer {
        Ok((status, Some(code))) => format!("HTTP {status} {code}"),
        Ok((status, None)) => format!("HTTP {status}"),
        Err(error) => error,
    }
}
