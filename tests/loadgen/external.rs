//! Servers loadgen did not start (`--connect-to`, `--process`), as `cargo xtask bench cluster`
//! hands over the quire processes, Redis, PostgreSQL and HAProxy it started.
//!
//! A document's clients are spread over every `--connect-to` address, starting at one picked at
//! random per document, so that with three processes its writers are on different processes
//! and every update crosses them. Each `--process` is measured through /proc (its whole tree:
//! PostgreSQL runs a process per connection) from typing to the end of the grace period. The
//! quire processes among them (those given with an address) also have their `/metrics` read
//! then, for what the cluster's parts cost per update, and at the end every document is read
//! from each of them: all replicas must hold the same text.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

use tokio::time::Instant;

use crate::histogram::Histogram;
use crate::http;
use crate::run::Target;
use crate::usage::Usage;

/// Appending one update to its document's Redis stream.
pub const APPEND: &str = "quire_cluster_append_seconds";
/// Folding a stream into its PostgreSQL snapshot.
pub const FOLD: &str = "quire_cluster_fold_seconds";
/// From one process appending an update to another reading it.
pub const LAG: &str = "quire_cluster_stream_lag_seconds";
/// How long the replicas may take to agree after the grace period: the stream lag is
/// milliseconds, so anything near this is a replica that will never catch up.
const REPLICA_WAIT: Duration = Duration::from_secs(10);
const REPLICA_POLL: Duration = Duration::from_millis(250);

/// `NAME=PID`, or `NAME=PID@ADDR` for a quire process.
#[derive(Debug, Clone)]
pub struct Process {
    pub name: String,
    pub pid: u32,
    pub addr: Option<SocketAddr>,
}

impl FromStr for Process {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (name, rest) = s.split_once('=').ok_or("NAME=PID or NAME=PID@ADDR")?;
        let (pid, addr) = match rest.split_once('@') {
            Some((pid, addr)) => (pid, Some(addr.parse().map_err(|e| format!("{addr}: {e}"))?)),
            None => (rest, None),
        };
        Ok(Process { name: name.to_owned(), pid: pid.parse().map_err(|e| format!("{pid}: {e}"))?, addr })
    }
}

pub struct External {
    connect_to: Vec<SocketAddr>,
    /// Per document, the index in `connect_to` of its first client's address.
    first: Vec<usize>,
    processes: Vec<Process>,
    owner_key: String,
    authorization: String,
    docs: usize,
    start: Option<Reading>,
}

/// The processes' usage and the quire processes' metrics at one moment.
struct Reading {
    usage: Vec<Option<Usage>>,
    metrics: Vec<Option<String>>,
}

/// What each process cost from typing to the end of the grace period, what the cluster's parts
/// took, and whether the replicas agree.
#[derive(Debug, Clone)]
pub struct ClusterFigures {
    pub processes: Vec<ProcessFigures>,
    /// Merged over the quire processes; None where no process has the metric (sled).
    pub append: Option<Histogram>,
    pub fold: Option<Histogram>,
    pub lag: Option<Histogram>,
    pub replicas: Replicas,
}

#[derive(Debug, Clone)]
pub struct ProcessFigures {
    pub name: String,
    pub quire: bool,
    pub cpu_secs: Option<f64>,
    pub peak_rss_bytes: Option<u64>,
}

#[derive(Debug, Clone, Default)]
pub struct Replicas {
    pub docs: usize,
    /// Documents whose text every quire process returned, the same everywhere.
    pub same: usize,
    pub processes: usize,
    /// How long after the grace period the last of them agreed.
    pub agreed_after: Option<Duration>,
    /// Reads that failed, by reason.
    pub errors: BTreeMap<String, u64>,
}

impl External {
    pub fn new(connect_to: Vec<SocketAddr>, processes: Vec<Process>, owner_key: &str, docs: usize, seed: u64) -> Self {
        let mut rng = fastrand::Rng::with_seed(seed);
        let first = (0..docs).map(|_| rng.usize(..connect_to.len())).collect();
        let authorization = format!("Bearer {owner_key}");
        External { connect_to, first, processes, owner_key: owner_key.to_owned(), authorization, docs, start: None }
    }

    fn quire(&self) -> impl Iterator<Item = (usize, SocketAddr)> + '_ {
        self.processes.iter().enumerate().filter_map(|(i, p)| Some((i, p.addr?)))
    }

    async fn read(&self) -> Reading {
        let usage = self.processes.iter().map(|p| Usage::of_tree(p.pid)).collect();
        let mut metrics = vec![None; self.processes.len()];
        for (i, addr) in self.quire() {
            let answer = http::get(addr, "/metrics", &[("Authorization", &self.authorization)]).await;
            metrics[i] = match answer {
                Ok((200, body)) => Some(String::from_utf8_lossy(&body).into_owned()),
                Ok((status, _)) => {
                    eprintln!("loadgen: /metrics of {} answered {status}", self.processes[i].name);
                    None
                }
                Err(e) => {
                    eprintln!("loadgen: /metrics of {}: {e}", self.processes[i].name);
                    None
                }
            };
        }
        Reading { usage, metrics }
    }

    /// One histogram over every quire process, from the start reading to `end`.
    fn merged(&self, end: &Reading, name: &str) -> Option<Histogram> {
        let start = self.start.as_ref()?;
        let mut merged: Option<Histogram> = None;
        for (i, _) in self.quire() {
            let Some(after) = end.metrics[i].as_deref().and_then(|t| Histogram::parse(t, name)) else { continue };
            let before = start.metrics[i].as_deref().and_then(|t| Histogram::parse(t, name)).unwrap_or_default();
            merged.get_or_insert_with(Histogram::default).add(&after.since(&before));
        }
        merged
    }

    /// Reads every document from every quire process until all agree or `REPLICA_WAIT` ends.
    async fn replicas(&self) -> Replicas {
        let quire: Vec<SocketAddr> = self.quire().map(|(_, addr)| addr).collect();
        let mut replicas = Replicas { docs: self.docs, processes: quire.len(), ..Replicas::default() };
        let began = Instant::now();
        let mut pending: Vec<usize> = (0..self.docs).collect();
        loop {
            let mut still = Vec::new();
            for &doc in &pending {
                let mut texts = Vec::new();
                for &addr in &quire {
                    let path = format!("/api/docs/load-{doc}/content?format=text");
                    match http::get(addr, &path, &[("Authorization", &self.authorization)]).await {
                        Ok((200, body)) => texts.push(body),
                        Ok((status, _)) => *replicas.errors.entry(format!("HTTP {status}")).or_default() += 1,
                        Err(e) => *replicas.errors.entry(e).or_default() += 1,
                    }
                }
                let agree = texts.len() == quire.len() && texts.windows(2).all(|w| w[0] == w[1]);
                if !agree {
                    still.push(doc);
                }
            }
            pending = still;
            if pending.is_empty() {
                replicas.agreed_after = Some(began.elapsed());
            }
            if pending.is_empty() || began.elapsed() >= REPLICA_WAIT {
                replicas.same = self.docs - pending.len();
                return replicas;
            }
            tokio::time::sleep(REPLICA_POLL).await;
        }
    }
}

impl Target for External {
    fn addr(&self, doc: usize, slot: usize) -> SocketAddr {
        self.connect_to[(self.first[doc] + slot) % self.connect_to.len()]
    }

    fn path(&self, doc: &str) -> String {
        // The owner key as y-websocket passes any parameter, as the server under test gets it.
        format!("/ws/{doc}?token={}", self.owner_key)
    }

    fn authorization(&self) -> String {
        self.authorization.clone()
    }

    /// The quire processes together (Redis, PostgreSQL and HAProxy are reported apart).
    fn usage(&self) -> Option<Usage> {
        let mut total = Usage::default();
        for (i, _) in self.quire() {
            let usage = Usage::of_tree(self.processes[i].pid)?;
            total.cpu_secs += usage.cpu_secs;
            total.peak_rss_bytes += usage.peak_rss_bytes;
        }
        Some(total)
    }

    fn exited(&mut self) -> Option<String> {
        let gone: Vec<&str> =
            self.processes.iter().filter(|p| Usage::of(p.pid).is_none()).map(|p| p.name.as_str()).collect();
        (!gone.is_empty()).then(|| format!("{} gone", gone.join(", ")))
    }

    async fn typing_started(&mut self) {
        self.start = Some(self.read().await);
    }

    async fn grace_ended(&mut self) -> Option<ClusterFigures> {
        let end = self.read().await;
        let start = self.start.as_ref()?;
        let processes = self
            .processes
            .iter()
            .enumerate()
            .map(|(i, p)| ProcessFigures {
                name: p.name.clone(),
                quire: p.addr.is_some(),
                cpu_secs: end.usage[i].zip(start.usage[i]).map(|(e, s)| e.cpu_secs - s.cpu_secs),
                peak_rss_bytes: end.usage[i].map(|u| u.peak_rss_bytes),
            })
            .collect();
        let (append, fold, lag) = (self.merged(&end, APPEND), self.merged(&end, FOLD), self.merged(&end, LAG));
        Some(ClusterFigures { processes, append, fold, lag, replicas: self.replicas().await })
    }
}
