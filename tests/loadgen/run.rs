//! One benchmark run against one server: join everyone, type, wait for stragglers, measure.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::args::Load;
use crate::attack::{self, AttackStats, Tally};
use crate::client::{self, Phase, Plan, Shared};
use crate::external::ClusterFigures;
use crate::halfopen::{self, HalfOpenStats};
use crate::stats::{Percentiles, Stats};
use crate::usage::Usage;
use crate::wire::Handshake;

/// How often the orchestrator looks at the counters while clients join (and so the resolution
/// of nothing reported; "synced in" itself is exact, taken from the clients' own timestamps).
const POLL: Duration = Duration::from_millis(20);
/// How often progress goes to stderr.
const PROGRESS: Duration = Duration::from_secs(5);
/// How long the clients get to close their sockets after the run before they are aborted.
const TEARDOWN: Duration = Duration::from_secs(10);

/// What a run drives: a server loadgen started (`server`), or processes someone else started
/// (`external`).
pub trait Target {
    /// Where client `slot` of document `doc` connects.
    fn addr(&self, doc: usize, slot: usize) -> SocketAddr;
    /// The WebSocket path of one document.
    fn path(&self, doc: &str) -> String;
    /// The `Authorization` header value of the owner.
    fn authorization(&self) -> String;
    /// The server's CPU and peak memory so far; None once it is gone.
    fn usage(&self) -> Option<Usage>;
    /// If it has exited on its own, how.
    fn exited(&mut self) -> Option<String>;
    /// Typing starts now.
    async fn typing_started(&mut self) {}
    /// The grace period ended: what only processes someone else started report.
    async fn grace_ended(&mut self) -> Option<ClusterFigures> {
        None
    }
}

/// The figures of one run.
#[derive(Debug, Clone)]
pub struct Figures {
    pub server: &'static str,
    pub connections: usize,
    pub synced: usize,
    /// From the first connect until the last client was synced (only the synced ones count).
    pub synced_in: Duration,
    pub connect_errors: BTreeMap<String, u64>,
    pub disconnects: BTreeMap<String, u64>,
    pub sent: u64,
    /// Every update sent reaches every other client of its document.
    pub expected: u64,
    pub delivered: u64,
    pub foreign: u64,
    pub repeated: u64,
    pub echoes: u64,
    pub latency: Percentiles,
    /// `latency` at the clients of the first document (the one `--attack flood` floods), and
    /// at everyone else.
    pub latency_first_doc: Percentiles,
    pub latency_other_docs: Percentiles,
    /// How late keystrokes left against their schedule (loadgen starved of CPU).
    pub send_lag: Percentiles,
    /// Server CPU over its whole life up to the end of the grace period, and its peak RSS.
    pub server_usage: Option<Usage>,
    /// Server CPU seconds during typing and grace only.
    pub server_cpu_typing: Option<f64>,
    /// How long typing and grace lasted (the divisor that turns CPU seconds into cores).
    pub typing_and_grace: Duration,
    pub server_exit: Option<String>,
    /// loadgen's own CPU seconds during this run (connects included): it shares the cores with
    /// the server.
    pub loadgen_cpu: Option<f64>,
    /// loadgen's own CPU seconds during typing and grace only: its cost at the steady load.
    pub loadgen_cpu_typing: Option<f64>,
    /// loadgen's peak RSS so far (it only grows from run to run).
    pub loadgen_peak_rss_bytes: Option<u64>,
    /// With `--half-open`: what those sockets saw.
    pub half_open: Option<HalfOpenFigures>,
    /// Whether this run had the `--attack`s beside it, and what each attacker saw.
    pub attacked: bool,
    pub attacks: BTreeMap<&'static str, Tally>,
    /// Processes someone else started: each one's cost, the cluster's metrics, the replicas.
    pub cluster: Option<ClusterFigures>,
}

impl Figures {
    /// The server's name, and whether it was under attack.
    pub fn label(&self) -> String {
        if self.attacked {
            format!("{} + attacks", self.server)
        } else {
            self.server.to_owned()
        }
    }
}

#[derive(Debug, Clone)]
pub struct HalfOpenFigures {
    /// How many were kept open (or trying to be).
    pub held: usize,
    /// Unfinished heads sent, reopenings included.
    pub opened: u64,
    /// Closed by the server (header-read timeout or a refusal).
    pub closed_by_server: u64,
    pub connect_errors: u64,
}

/// One run; with `attacked`, the load's attacks run beside the clients.
pub async fn run(server: &mut impl Target, name: &'static str, load: &Load, attacked: bool) -> Figures {
    let half_open_count = load.half_open_in(attacked);
    let stats = Arc::new(Stats::new());
    let (phase_tx, phase_rx) = watch::channel(Phase::Joining);
    // The half-open sockets and the attackers go to the first document's first address.
    let addr = server.addr(0, 0);
    let host = addr.to_string();

    // The slowloris first, so the clients join under it too, and before the clock of "synced
    // in" starts. Their own connect permits: their reopenings must not queue the real clients'
    // joins behind them.
    let half_open = if half_open_count > 0 {
        let started = halfopen::start(
            half_open_count,
            addr,
            &host,
            &server.path("load-0"),
            load.connect_concurrency,
            phase_rx.clone(),
        );
        match started {
            Ok(started) => Some(started),
            Err(e) => {
                eprintln!("  {name}: cannot start the half-open sockets' thread: {e}");
                None
            }
        }
    } else {
        None
    };
    if let Some((_, opened)) = &half_open {
        let began = Instant::now();
        let deadline = began + load.connect_timeout;
        while (opened.opened.load(Relaxed) as usize) < half_open_count && Instant::now() < deadline {
            tokio::time::sleep(POLL).await;
        }
        eprintln!(
            "  {name}: {} half-open sockets sent their unfinished heads in {:.2} s",
            opened.opened.load(Relaxed),
            began.elapsed().as_secs_f64()
        );
    }

    let loadgen_before = Usage::of_self();
    let connections = load.connections();
    let connect_started = std::time::Instant::now();
    let shared = Arc::new(Shared {
        stats: stats.clone(),
        phase: phase_rx,
        connect_permits: Arc::new(Semaphore::new(load.connect_concurrency)),
        connect_started,
        period: load.period,
        connect_timeout: load.connect_timeout,
        seed: load.seed,
        writers: load.writers,
        handshake: Handshake::new(),
    });

    // Client i belongs to document i / per_doc; the first `writers` of each document type.
    let mut clients = JoinSet::new();
    for index in 0..connections {
        let (doc, slot) = (index / load.per_doc(), index % load.per_doc());
        let writer_slot = (slot < load.writers).then_some(slot);
        let plan = Plan {
            index,
            addr: server.addr(doc, slot),
            path: server.path(&format!("load-{doc}")),
            writer_slot,
            first_doc: doc == 0,
        };
        clients.spawn(client::run(plan, shared.clone()));
    }

    let mut next_report = Instant::now() + PROGRESS;
    loop {
        let (synced, failed) = (stats.synced.load(Relaxed), stats.failed.load(Relaxed));
        if synced + failed >= connections {
            break;
        }
        // A client that panicked would never count as synced or failed: count it here.
        while let Some(done) = clients.try_join_next() {
            if let Err(e) = done {
                stats.record_connect_error(format!("client task failed: {e}"));
            }
        }
        if Instant::now() >= next_report {
            eprintln!("  {name}: {synced}/{connections} synced, {failed} failed");
            next_report += PROGRESS;
        }
        tokio::time::sleep(POLL).await;
    }
    let synced = stats.synced.load(Relaxed);
    let synced_in = stats.all_synced_after();
    eprintln!(
        "  {name}: {synced}/{connections} synced in {:.2} s; typing for {:?}",
        synced_in.as_secs_f64(),
        load.duration
    );

    let cpu_at_start = server.usage().map(|u| u.cpu_secs);
    let loadgen_at_start = Usage::of_self().map(|u| u.cpu_secs);
    let start = Instant::now();
    let until = start + load.duration;
    let _ = phase_tx.send(Phase::Typing { start, until });
    server.typing_started().await;
    let attacks = if attacked { start_attacks(server, load, addr, shared.phase.clone(), name) } else { None };
    let end = until + load.grace;
    while Instant::now() < end {
        tokio::time::sleep_until(end.min(Instant::now() + PROGRESS)).await;
        eprintln!(
            "  {name}: {:.0} s, sent {}, delivered {}",
            start.elapsed().as_secs_f64(),
            stats.sent.load(Relaxed),
            stats.delivered.load(Relaxed)
        );
    }

    // The figures are taken before teardown: closing 10,000 sockets is not part of the load.
    let sent = stats.sent.load(Relaxed);
    let usage = server.usage();
    let typing_and_grace = start.elapsed();
    let loadgen_usage = Usage::of_self();
    let figures = Figures {
        server: name,
        connections,
        synced,
        synced_in,
        connect_errors: stats.connect_errors(),
        disconnects: stats.disconnects(),
        sent,
        expected: sent * (load.per_doc() as u64 - 1),
        delivered: stats.delivered.load(Relaxed),
        foreign: stats.foreign.load(Relaxed),
        repeated: stats.repeated.load(Relaxed),
        echoes: stats.echoes.load(Relaxed),
        latency: stats.latency(),
        latency_first_doc: stats.latency_split().0,
        latency_other_docs: stats.latency_split().1,
        send_lag: stats.send_lag(),
        server_usage: usage,
        server_cpu_typing: usage.zip(cpu_at_start).map(|(u, s)| u.cpu_secs - s),
        typing_and_grace,
        server_exit: server.exited(),
        loadgen_cpu: loadgen_usage.zip(loadgen_before).map(|(a, b)| a.cpu_secs - b.cpu_secs),
        loadgen_cpu_typing: loadgen_usage.zip(loadgen_at_start).map(|(a, s)| a.cpu_secs - s),
        loadgen_peak_rss_bytes: loadgen_usage.map(|u| u.peak_rss_bytes),
        half_open: half_open.as_ref().map(|(_, s)| half_open_figures(half_open_count, s)),
        attacked,
        attacks: attacks.as_ref().map(|(_, s)| s.snapshot()).unwrap_or_default(),
        cluster: None,
    };

    // Before the clients leave (their teardown is not part of the load), after the figures
    // above (reading the metrics and every document is not either).
    let mut figures = figures;
    figures.cluster = server.grace_ended().await;
    let _ = phase_tx.send(Phase::Stop);
    if let Some((thread, _)) = attacks {
        let _ = tokio::task::spawn_blocking(move || thread.join()).await;
    }
    if let Some((thread, _)) = half_open {
        // The phase says stop: the thread ends as soon as its sockets are dropped.
        let _ = tokio::task::spawn_blocking(move || thread.join()).await;
    }
    let teardown = async { while clients.join_next().await.is_some() {} };
    if tokio::time::timeout(TEARDOWN, teardown).await.is_err() {
        eprintln!("  {name}: clients still open after {TEARDOWN:?}; aborting them");
        clients.shutdown().await;
    }
    figures
}

/// Starts the load's attacks (but the slowloris, which is `halfopen`) on their own thread.
fn start_attacks(
    server: &impl Target,
    load: &Load,
    addr: SocketAddr,
    phase: watch::Receiver<Phase>,
    name: &str,
) -> Option<(std::thread::JoinHandle<()>, Arc<AttackStats>)> {
    let target = attack::Target {
        addr,
        host: addr.to_string(),
        doc_paths: (0..load.docs).map(|doc| server.path(&format!("load-{doc}"))).collect(),
        authorization: server.authorization(),
        rate: load.attack_rate,
        body_limit: load.body_limit,
    };
    match attack::start(&load.attacks, target, phase) {
        Ok(started) => Some(started),
        Err(e) => {
            eprintln!("  {name}: cannot start the attackers' thread: {e}");
            None
        }
    }
}

fn half_open_figures(held: usize, stats: &HalfOpenStats) -> HalfOpenFigures {
    HalfOpenFigures {
        held,
        opened: stats.opened.load(Relaxed),
        closed_by_server: stats.closed_by_server.load(Relaxed),
        connect_errors: stats.connect_errors.load(Relaxed),
    }
}
