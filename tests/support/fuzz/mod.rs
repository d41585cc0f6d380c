//! Fuzzing the server end to end: frame → decode → document task → store, on stable Rust.
//!
//! A corpus of real updates is made by replaying an editing trace ([`corpus`]); a seeded
//! mutator turns it into hostile frames ([`mutate`]); hostile connections send them to an
//! in-process server, one frame and one question at a time, so that each frame's fate is known
//! ([`hostile`]); honest clients type the trace meanwhile. At the end ([`check`]): every honest
//! replica, a fresh client and the store reloaded by a restarted server hold the same document
//! (read through the API, [`states`]), nothing an honest client typed is missing, `/healthz`
//! answered throughout ([`health`]), and no panic happened on the server's threads ([`panics`])
//! or the clients'.
//!
//! The short run is a test (`tests/rust/fuzz.rs`); the long one is `tests/fuzz/main.rs`.

pub mod check;
pub mod corpus;
mod health;
pub mod hostile;
pub mod mutate;
pub mod panics;
pub mod report;
mod states;
pub mod trace;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use quire::store::memory::MemoryStore;
use quire::store::Store;
use quire::Config;
use quire_model::schema::{doc_with_client_id, CONTENT};
use tokio::runtime::Handle;
use yrs::{Text, Transact};

use crate::{Client, TempDir, TestServer};
use corpus::Corpus;
use report::Report;

pub use health::Health;
use health::{healthz, watch_health};
use states::{keep_states, state, states};

/// The document the honest clients edit (one per round); half of the hostile connections join
/// it too.
pub const HONEST_DOC: &str = "fuzz-honest";
const PROGRESS_EVERY: Duration = Duration::from_secs(30);
/// How long the honest replicas get to agree with the server once the attack is over.
const SETTLE: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    Sled,
    Memory,
}

#[derive(Debug, Clone)]
pub struct Options {
    /// Hostile frames to send in all...
    pub frames: u64,
    /// ...in rounds of this many, each on fresh documents (see `Round`).
    pub round_frames: u64,
    /// The number of the first round: a round's frames and client ids follow from the seed and
    /// its number, so one round of a long run can be sent again on its own.
    pub first_round: u64,
    pub seed: u64,
    /// A sequential trace in `../shared/traces/` (without `.json.gz`).
    pub trace: String,
    /// Keystrokes of the trace the corpus is made of.
    pub corpus_patches: usize,
    /// Hostile connections at once.
    pub hostile: usize,
    /// Documents only the hostile connections use (besides the honest one).
    pub hostile_docs: usize,
    /// Honest clients, typing the trace in turn, one keystroke every `pace`.
    pub honest: usize,
    pub pace: Duration,
    pub store: StoreKind,
    /// Print every frame and its fate on stderr, in the order their fates were known.
    pub dump: bool,
}

impl Options {
    /// A short run (seconds), with `seed`.
    pub fn short(seed: u64) -> Options {
        Options {
            frames: 4_000,
            round_frames: 100_000,
            first_round: 0,
            seed,
            trace: "automerge-paper".into(),
            corpus_patches: 2_000,
            hostile: 8,
            hostile_docs: 4,
            honest: 3,
            pace: Duration::from_millis(5),
            store: StoreKind::Sled,
            dump: false,
        }
    }
}

/// The server as the fuzzer runs it: the defaults, except that what a single connection may
/// send per second is not limited (the rate limits have tests of their own, and here they
/// would close the hostile connections long before their frames reach the document), frames
/// over 1 MiB are too big (so that oversized frames are cheap to send), and documents unload
/// after a second without connections (so that loading what was stored is exercised too).
pub fn config() -> Config {
    Config {
        max_message_bytes: 1 << 20,
        doc_queue_bytes: 8 << 20,
        rate_bytes_per_sec: 1 << 40,
        rate_burst_bytes: 1 << 40,
        rate_messages_per_sec: 1 << 40,
        rate_burst_messages: 1 << 40,
        idle_unload: Duration::from_secs(1),
        ..Config::default()
    }
}

/// Runs the fuzzer: the server on a runtime of its own (two threads named
/// [`panics::SERVER_THREADS`]), the clients on another (two).
pub fn run(options: &Options) -> Report {
    panics::watch();
    panics::take();
    let runtime = |name: &str, threads: usize| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .thread_name(name)
            .enable_all()
            .build()
            .expect("a runtime")
    };
    let server = runtime(panics::SERVER_THREADS, 2);
    let clients = runtime(panics::CLIENT_THREADS, 2);
    let mut report = clients.block_on(drive(options, server.handle().clone()));
    clients.shutdown_timeout(Duration::from_secs(5));
    server.shutdown_timeout(Duration::from_secs(5));
    for panic in panics::take() {
        report.failures.push(format!("panic: {panic}"));
    }
    report.peak_rss_bytes = peak_rss();
    report
}

/// Where the store lives, kept across the restart.
enum Storage {
    Sled(TempDir),
    Memory(Arc<dyn Store>),
}

impl Storage {
    async fn start(&self, on: &Handle) -> TestServer {
        let config = config();
        let started = match self {
            Storage::Sled(dir) => {
                let dir = dir.path().to_owned();
                on.spawn(async move { TestServer::start(&dir, config).await })
            }
            Storage::Memory(store) => {
                let store = store.clone();
                on.spawn(async move { TestServer::with_store(store, config).await })
            }
        };
        started.await.expect("the server starts")
    }
}

async fn drive(options: &Options, server_runtime: Handle) -> Report {
    let mut report = Report::new(options);
    // A checkout may lie where the traces are not beside it (a clean clone elsewhere): the
    // fuzzer then types keystrokes of its own rather than not run.
    let patches = if !trace::dir().is_dir() {
        eprintln!(
            "fuzz: no traces at {} (QUIRE_TRACES says where): typing made-up keystrokes instead",
            trace::dir().display()
        );
        report.trace = "made-up".to_owned();
        trace::made_up(options.corpus_patches)
    } else {
        match trace::load(&options.trace, options.corpus_patches) {
            Ok(patches) if !patches.is_empty() => patches,
            Ok(_) => return report.failed(format!("trace {} has no keystrokes", options.trace)),
            Err(error) => return report.failed(error),
        }
    };
    let corpus = Arc::new(Corpus::build(&patches));
    report.corpus_frames = corpus.frames.len();

    let storage = match options.store {
        StoreKind::Sled => Storage::Sled(TempDir::new("fuzz")),
        StoreKind::Memory => Storage::Memory(Arc::new(MemoryStore::new())),
    };
    let server = storage.start(&server_runtime).await;
    let stop_health = Arc::new(AtomicBool::new(false));
    let health = tokio::spawn(watch_health(server.addr, stop_health.clone()));
    let progress = Arc::new(Progress { frames: options.frames, sent: AtomicU64::new(0), connections: AtomicU64::new(0) });
    let started = Instant::now();
    let reporter = tokio::spawn(progress.clone().report(started));

    let mut all_docs = Vec::new();
    let mut remaining = options.frames;
    for round in options.first_round.. {
        if remaining == 0 {
            break;
        }
        let frames = remaining.min(options.round_frames.max(1));
        remaining -= frames;
        let docs = Round { number: round, hostile_docs: options.hostile_docs };
        all_docs.extend(docs.all());
        let round = run_round(options, &docs, frames, &corpus, &patches, &server, &progress).await;
        report.add(round);
    }
    report.elapsed = started.elapsed();
    reporter.abort();
    stop_health.store(true, Relaxed);
    report.health = health.await.unwrap_or_default();
    report.connections = progress.connections.load(Relaxed);

    // The store, reloaded: every document as it was.
    let addr = server.addr;
    let before = match states(addr, &all_docs).await {
        Ok(states) => states,
        // Said, not panicked on: the report then shows what happened on the server's threads.
        Err(error) => return report.failed(format!("reading every document before the restart: {error}")),
    };
    server.stop().await;
    let restarted = storage.start(&server_runtime).await;
    let after = match states(restarted.addr, &all_docs).await {
        Ok(states) => states,
        Err(error) => return report.failed(format!("reading every document after the restart: {error}")),
    };
    for (doc, before) in &before {
        match (before, &after[doc]) {
            (None, None) => {}
            (Some(before), Some(after)) => match check::same(before, after) {
                Ok(()) => report.reloaded += 1,
                Err(error) => report.failures.push(format!("{doc} after a restart: {error}")),
            },
            (before, after) => report.failures.push(format!(
                "{doc}: {} before the restart, {} after",
                if before.is_some() { "stored" } else { "missing" },
                if after.is_some() { "stored" } else { "missing" }
            )),
        }
    }
    match healthz(restarted.addr).await {
        Ok(200) => {}
        other => report.failures.push(format!("/healthz after the restart: {other:?}")),
    }
    restarted.stop().await;
    report.check();
    report
}

/// The documents of one round. Rounds keep each document's history to what one round sends:
/// every client id a hostile update brings stays in its document's state vector, which every
/// join and every sync step then carries, so one document for ten million frames would measure
/// that growth (a document's size limit bounds it in production) rather than the server.
struct Round {
    number: u64,
    hostile_docs: usize,
}

impl Round {
    fn honest(&self) -> String {
        format!("{HONEST_DOC}-{}", self.number)
    }

    /// Where hostile connections go: half of them to the honest document.
    fn targets(&self) -> Vec<String> {
        let mut docs = vec![self.honest(); self.hostile_docs.max(1)];
        docs.extend(self.hostile());
        docs
    }

    fn hostile(&self) -> impl Iterator<Item = String> + '_ {
        (0..self.hostile_docs).map(|i| format!("fuzz-{}-{i}", self.number))
    }

    fn all(&self) -> Vec<String> {
        std::iter::once(self.honest()).chain(self.hostile()).collect()
    }
}

/// What one round found.
pub struct RoundOutcome {
    pub tally: hostile::Tally,
    pub keystrokes: u64,
    pub honest_text_chars: u64,
    pub failures: Vec<String>,
}

/// One round: honest clients join a fresh document and type while `frames` hostile frames go
/// to it and to fresh hostile documents; then the honest replicas must agree with the server.
async fn run_round(
    options: &Options,
    round: &Round,
    frames: u64,
    corpus: &Arc<Corpus>,
    patches: &[trace::Patch],
    server: &TestServer,
    progress: &Arc<Progress>,
) -> RoundOutcome {
    let url = server.ws_url(&round.honest());
    // The honest clients announce themselves first, so that their client ids are theirs. Their
    // ids are random, as a stock Yjs client's are: nobody can announce an id before seeing it
    // (with ids 1, 2, 3, a spoofed presence under a guessed 1 came first and closed client 1).
    let mut ids = fastrand::Rng::with_seed(options.seed ^ round.number);
    let mut honest = Vec::new();
    for i in 0..options.honest {
        let client = Client::connect_with(&url, doc_with_client_id(ids.u64(1..1 << 53))).await;
        client.wait_synced().await;
        client.set_presence(&format!(r#"{{"user":{{"name":"Honest {i}"}}}}"#));
        honest.push(Arc::new(client));
    }
    let stop = Arc::new(AtomicBool::new(false));
    let typing = tokio::spawn(type_trace(honest.clone(), patches.to_vec(), options.pace, stop.clone()));

    let shared = Arc::new(hostile::Shared {
        corpus: corpus.clone(),
        addr: server.addr,
        docs: round.targets(),
        seed: options.seed ^ round.number.wrapping_mul(0xD1B5_4A32_D192_ED03),
        frames,
        taken: AtomicU64::new(0),
        progress: progress.clone(),
        max_message_bytes: config().max_message_bytes,
        dump: options.dump,
        tally: Mutex::new(hostile::Tally::default()),
    });
    let mut failures = Vec::new();
    let mut workers = tokio::task::JoinSet::new();
    for worker in 0..options.hostile as u64 {
        workers.spawn(hostile::run(worker, shared.clone()));
    }
    while let Some(done) = workers.join_next().await {
        if let Err(error) = done {
            failures.push(format!("a hostile worker failed: {error}"));
        }
    }
    stop.store(true, Relaxed);
    let keystrokes = typing.await.unwrap_or_default();
    let tally = std::mem::take(&mut *shared.tally.lock().unwrap());
    // A limit of Yjs that the server cannot check (see `rust/neighbours.rs`): an item under an
    // absent writer's id, which an `impostor` frame writes, gives the writer's later items forged
    // neighbours, and those are placed by arrival. A failure to converge says whether the
    // document took any.
    let known_limit = match tally.impostors.get(&round.honest()) {
        Some(n) => format!(" (the document took {n} `impostor` frames: see tests/rust/neighbours.rs)"),
        None => String::new(),
    };
    let honest_text_chars = converge(&mut failures, &honest, server, &round.honest(), &known_limit).await;
    for client in &honest {
        if let Some((code, reason)) = client.closed() {
            failures.push(format!("honest client {} was closed: {code} {reason}", client.client_id()));
        }
    }
    for failure in &mut failures {
        *failure = format!("round {}: {failure}", round.number);
    }
    RoundOutcome { tally, keystrokes, honest_text_chars, failures }
}

/// Frames sent and connections opened over all rounds, shown every [`PROGRESS_EVERY`].
pub struct Progress {
    frames: u64,
    pub sent: AtomicU64,
    pub connections: AtomicU64,
}

impl Progress {
    async fn report(self: Arc<Self>, started: Instant) {
        loop {
            tokio::time::sleep(PROGRESS_EVERY).await;
            let sent = self.sent.load(Relaxed);
            eprintln!(
                "fuzz: {sent}/{} frames, {:.0} frames/s, {} connections",
                self.frames,
                sent as f64 / started.elapsed().as_secs_f64(),
                self.connections.load(Relaxed)
            );
        }
    }
}

/// The honest clients type the trace in turn, from its start (and again), until `stop`.
/// Returns how many keystrokes they typed.
async fn type_trace(clients: Vec<Arc<Client>>, patches: Vec<trace::Patch>, pace: Duration, stop: Arc<AtomicBool>) -> u64 {
    let mut ticker = tokio::time::interval(pace);
    let mut typed = 0u64;
    while !stop.load(Relaxed) {
        ticker.tick().await;
        let patch = &patches[typed as usize % patches.len()];
        let client = &clients[typed as usize % clients.len()];
        client.edit(|text, _, txn| {
            let (pos, delete) = trace::clamp(patch, text.len(txn));
            if delete > 0 {
                text.remove_range(txn, pos, delete);
            }
            text.insert(txn, pos, &patch.insert);
        });
        typed += 1;
    }
    typed
}

/// Once the attack is over: every honest replica holds what the server holds, a fresh client
/// gets the same, and the server holds every item each honest client made.
/// `known_limit` is said with a failure.
async fn converge(
    failures: &mut Vec<String>,
    honest: &[Arc<Client>],
    server: &TestServer,
    doc: &str,
    known_limit: &str,
) -> u64 {
    let url = server.ws_url(doc);
    let deadline = Instant::now() + SETTLE;
    let mut last_error: String;
    loop {
        let state = match state(server.addr, doc).await {
            Ok(Some(state)) => state,
            Ok(None) => {
                failures.push("the honest document is not stored".into());
                return 0;
            }
            Err(error) => {
                failures.push(format!("reading the honest document: {error}"));
                return 0;
            }
        };
        if let Err(error) = check::load(&state) {
            failures.push(format!("the server's state of the honest document: {error}"));
            return 0;
        }
        let disagreeing = honest.iter().find_map(|c| check::same(&c.state(), &state).err().map(|e| (c.client_id(), e)));
        match disagreeing {
            None => {
                let fresh = Client::connect_synced(&url).await;
                // A fresh client has the state once its sync step 1 is answered.
                fresh.ask();
                fresh.wait_answers(2).await;
                if let Err(error) = check::same(&fresh.state(), &state) {
                    let kept = keep_states(doc, &state, [("fresh".to_owned(), fresh.state())]);
                    failures.push(format!("a fresh client differs from the server: {error}; {kept}{known_limit}"));
                }
                for client in honest {
                    let (theirs, stored) = (
                        check::clock_of(&client.state(), client.client_id()),
                        check::clock_of(&state, client.client_id()),
                    );
                    if theirs != stored {
                        failures.push(format!(
                            "honest client {} made items up to clock {theirs:?}, the server holds {stored:?}",
                            client.client_id()
                        ));
                    }
                }
                let doc = check::load(&state).unwrap_or_default();
                return doc.get_or_insert_text(CONTENT).len(&doc.transact()).into();
            }
            Some((client, error)) => {
                last_error = format!("honest client {client}: {error}");
                if let Some(frame) = honest.iter().find_map(|c| c.first_incomplete()) {
                    last_error.push_str(&format!("; the server sent a frame it lacked the dependencies of: {}", hostile::hex(&frame)));
                }
            }
        }
        if Instant::now() >= deadline {
            let kept = keep_states(doc, &state, honest.iter().map(|c| (format!("client-{}", c.client_id()), c.state())));
            failures.push(format!("the honest replicas did not converge within {SETTLE:?}: {last_error}; {kept}{known_limit}"));
            return 0;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// This process's peak resident memory (server and clients together), from /proc.
fn peak_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb: u64 = status.lines().find_map(|l| l.strip_prefix("VmHWM:"))?.trim().trim_end_matches("kB").trim().parse().ok()?;
    Some(kb * 1024)
}
