//! `--attack`: attackers beside the editors, each one way of abusing the server, all from one
//! thread of their own (as the half-open sockets: on the clients' thread their bursts would make
//! loadgen measure itself). They start when typing starts and stop with the run.
//!
//! - `flood`: large updates back to back on a document the editors use.
//! - `spam`: tiny updates faster than anyone types, on the same document.
//! - `presence`: presence states over the server's limit, and updates with many entries.
//! - `import`: `PUT /api/docs/{id}/content` of adversarial HTML and Markdown at the body limit.
//! - `unknown`: `GET /api/docs/{random id}`, documents that do not exist.
//! - `slowloris` is `--half-open` (see `halfopen`); `--attack slowloris` turns it on.
//!
//! Every attempt's outcome is counted by what the server answered (close code and reason, or
//! HTTP status and error code), so the report says how each attack was refused.

mod flood;
mod import;
mod presence;
mod unknown;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::ValueEnum;
use tokio::net::TcpStream;
use tokio::sync::watch;

use crate::client::Phase;
use crate::socket::Socket;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, ValueEnum)]
pub enum Attack {
    Flood,
    Spam,
    Presence,
    Import,
    Unknown,
    Slowloris,
    /// Every attack above.
    All,
}

impl Attack {
    /// Every attack, `All` spelled out.
    pub const EVERY: [Attack; 6] =
        [Attack::Flood, Attack::Spam, Attack::Presence, Attack::Import, Attack::Unknown, Attack::Slowloris];
}

/// What one attacker did and what the server answered, by answer.
#[derive(Debug, Clone, Default)]
pub struct Tally {
    pub attempts: u64,
    pub bytes: u64,
    pub outcomes: BTreeMap<String, u64>,
}

/// Every attacker's tally, by attacker name.
#[derive(Default)]
pub struct AttackStats(Mutex<BTreeMap<&'static str, Tally>>);

impl AttackStats {
    fn attempt(&self, attacker: &'static str, bytes: usize) {
        let mut map = self.0.lock().unwrap();
        let tally = map.entry(attacker).or_default();
        tally.attempts += 1;
        tally.bytes += bytes as u64;
    }

    fn outcome(&self, attacker: &'static str, outcome: impl Into<String>) {
        *self.0.lock().unwrap().entry(attacker).or_default().outcomes.entry(outcome.into()).or_default() += 1;
    }

    pub fn snapshot(&self) -> BTreeMap<&'static str, Tally> {
        self.0.lock().unwrap().clone()
    }
}

/// Where the attackers aim, and how hard.
#[derive(Clone)]
pub struct Target {
    pub addr: SocketAddr,
    pub host: String,
    /// The WebSocket path of editors' document `i` (credentials included).
    pub doc_paths: Vec<String>,
    /// `Authorization` header value the HTTP attackers bring (the owner's: the worst case).
    pub authorization: String,
    /// Attempts per second of the paced attackers (presence, unknown ids).
    pub rate: f64,
    /// The server's request body limit (the import bombs are as big as it allows).
    pub body_limit: usize,
}

/// Starts the attacks in `attacks` (slowloris aside: see `halfopen`) on a thread of their own;
/// they run until the phase is `Stop`.
pub fn start(
    attacks: &[Attack],
    target: Target,
    phase: watch::Receiver<Phase>,
) -> std::io::Result<(std::thread::JoinHandle<()>, Arc<AttackStats>)> {
    let stats = Arc::new(AttackStats::default());
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let mut tasks = tokio::task::JoinSet::new();
    let _entered = runtime.enter();
    let target = Arc::new(target);
    for attack in attacks {
        let (target, stats) = (target.clone(), stats.clone());
        match attack {
            Attack::Flood => {
                tasks.spawn(until_stopped(phase.clone(), flood::bytes(target, stats)));
            }
            Attack::Spam => {
                tasks.spawn(until_stopped(phase.clone(), flood::messages(target, stats)));
            }
            Attack::Presence => {
                tasks.spawn(until_stopped(phase.clone(), presence::run(target, stats)));
            }
            Attack::Import => {
                tasks.spawn(until_stopped(phase.clone(), import::run(target, stats)));
            }
            Attack::Unknown => {
                tasks.spawn(until_stopped(phase.clone(), unknown::run(target, stats)));
            }
            Attack::Slowloris | Attack::All => {}
        }
    }
    drop(_entered);
    let thread = std::thread::Builder::new().name("attacks".into()).spawn(move || {
        runtime.block_on(async move { while tasks.join_next().await.is_some() {} });
    })?;
    Ok((thread, stats))
}

/// Runs `attack` until the phase says stop.
async fn until_stopped(mut phase: watch::Receiver<Phase>, attack: impl std::future::Future<Output = ()>) {
    let stopped = async move {
        while !matches!(*phase.borrow_and_update(), Phase::Stop) {
            if phase.changed().await.is_err() {
                return;
            }
        }
    };
    tokio::select! {
        () = stopped => {}
        () = attack => {}
    }
}

/// A WebSocket to `path`, handshake done.
async fn connect(target: &Target, path: &str) -> Result<Socket<TcpStream>, String> {
    let tcp = TcpStream::connect(target.addr).await.map_err(|e| format!("tcp connect: {e}"))?;
    tcp.set_nodelay(true).map_err(|e| e.to_string())?;
    Socket::handshake(tcp, &target.host, path).await
}

/// Reads until the server closes the socket; the close code and reason (or how it ended).
async fn closed(socket: &mut Socket<TcpStream>, within: Duration) -> String {
    let read = async {
        loop {
            if let Err(reason) = socket.next().await {
                return reason.strip_prefix("closed by server: ").map_or(reason.clone(), |r| format!("close {r}"));
            }
        }
    };
    tokio::time::timeout(within, read).await.unwrap_or_else(|_| "still open".to_owned())
}

/// A pause between attempts, so that a paced attacker sends `rate` a second.
fn pace(rate: f64) -> tokio::time::Interval {
    let mut interval = tokio::time::interval(Duration::from_secs_f64(1.0 / rate.max(0.001)));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    interval
}
