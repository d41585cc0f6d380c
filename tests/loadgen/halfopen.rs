//! `--half-open N`: a slowloris beside the real clients. N sockets that each send the start of
//! a request head (a WebSocket upgrade to a document of the run) and never finish it. When the
//! server closes one (its header-read timeout, or a refusal), it is opened again at once, so N
//! stay open, or trying to be, for the whole run: an attacker does the same.
//!
//! The attacker runs on a thread of its own: on the clients' thread, its waves of reopenings
//! (all N time out together) made the clients read late, and loadgen measured itself.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;

use crate::client::Phase;

/// After a failed connect (the listen backlog full, the server's descriptors exhausted): wait
/// this long before the next try, so the attacker does not spin a core that loadgen shares with
/// the server. A tenth of the SYN retry a kernel would make anyway (1 s).
const RETRY: Duration = Duration::from_millis(100);

/// What the half-open sockets saw.
#[derive(Default)]
pub struct HalfOpenStats {
    /// Sockets that got as far as sending their unfinished head.
    pub opened: AtomicU64,
    /// Of those, the ones the server closed (timed out or refused).
    pub closed_by_server: AtomicU64,
    /// Connects that failed.
    pub connect_errors: AtomicU64,
}

/// Keeps `count` sockets half-open against `addr`, from a thread of their own, until the phase
/// is `Stop`; the thread ends then.
pub fn start(
    count: usize,
    addr: SocketAddr,
    host: &str,
    path: &str,
    connect_concurrency: usize,
    phase: watch::Receiver<Phase>,
) -> std::io::Result<(std::thread::JoinHandle<()>, Arc<HalfOpenStats>)> {
    let stats = Arc::new(HalfOpenStats::default());
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let connect_permits = Arc::new(Semaphore::new(connect_concurrency));
    // Everything but the blank line that would end the head.
    let head: Arc<[u8]> = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Version: 13\r\n"
    )
    .into_bytes()
    .into();
    let mut tasks = JoinSet::new();
    let _entered = runtime.enter();
    for _ in 0..count {
        let (stats, head, permits, mut phase) = (stats.clone(), head.clone(), connect_permits.clone(), phase.clone());
        tasks.spawn(async move {
            let stopped = async move {
                while !matches!(*phase.borrow_and_update(), Phase::Stop) {
                    if phase.changed().await.is_err() {
                        return;
                    }
                }
            };
            tokio::pin!(stopped);
            loop {
                tokio::select! {
                    () = &mut stopped => return,
                    () = hold_one(addr, &head, &permits, &stats) => {}
                }
            }
        });
    }
    drop(_entered);
    let thread = std::thread::Builder::new().name("half-open".into()).spawn(move || {
        runtime.block_on(async move { while tasks.join_next().await.is_some() {} });
    })?;
    Ok((thread, stats))
}

/// Opens one socket, sends the unfinished head, and waits until the server closes it.
async fn hold_one(addr: SocketAddr, head: &[u8], permits: &Semaphore, stats: &HalfOpenStats) {
    let connected = {
        let _permit = permits.acquire().await;
        TcpStream::connect(addr).await
    };
    let mut socket = match connected {
        Ok(socket) => socket,
        Err(_) => {
            stats.connect_errors.fetch_add(1, Relaxed);
            tokio::time::sleep(RETRY).await;
            return;
        }
    };
    if socket.write_all(head).await.is_err() {
        stats.connect_errors.fetch_add(1, Relaxed);
        return;
    }
    stats.opened.fetch_add(1, Relaxed);
    // Whatever the server answers (a refusal) is read and dropped; EOF or an error is the close.
    let mut buf = [0u8; 512];
    while let Ok(n) = socket.read(&mut buf).await {
        if n == 0 {
            break;
        }
    }
    stats.closed_by_server.fetch_add(1, Relaxed);
}
