//! `/healthz`, asked all through the run: the server must keep answering whatever it is sent.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How often `/healthz` is asked during the run, and how long it may take to answer.
const HEALTH_EVERY: Duration = Duration::from_millis(250);
const HEALTH_TIMEOUT: Duration = Duration::from_secs(5);

/// Health checks while the attack runs.
#[derive(Debug, Default, Clone)]
pub struct Health {
    pub answered: u64,
    /// Status or error → how many.
    pub failed: BTreeMap<String, u64>,
    pub slowest: Duration,
}

pub(super) async fn watch_health(addr: SocketAddr, stop: Arc<AtomicBool>) -> Health {
    let mut health = Health::default();
    while !stop.load(Relaxed) {
        let asked = Instant::now();
        match healthz(addr).await {
            Ok(200) => health.answered += 1,
            Ok(status) => *health.failed.entry(format!("status {status}")).or_default() += 1,
            Err(error) => *health.failed.entry(error).or_default() += 1,
        }
        health.slowest = health.slowest.max(asked.elapsed());
        tokio::time::sleep(HEALTH_EVERY).await;
    }
    health
}

/// `GET /healthz`: its status, or why there was none within [`HEALTH_TIMEOUT`].
pub(super) async fn healthz(addr: SocketAddr) -> Result<u16, String> {
    let ask = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await.map_err(|e| format!("connect: {e}"))?;
        let request = format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.map_err(|e| format!("send: {e}"))?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await.map_err(|e| format!("read: {e}"))?;
        let head = String::from_utf8_lossy(&response[..response.len().min(32)]).into_owned();
        head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).ok_or(format!("no status in {head:?}"))
    };
    tokio::time::timeout(HEALTH_TIMEOUT, ask).await.unwrap_or(Err("no answer within 5 s".into()))
}
