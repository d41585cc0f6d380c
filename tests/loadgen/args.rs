//! The command line: every flag has a `LOADGEN_*` environment fallback (the quire binary also
//! reads `QUIRE_BIN`, the name the other test tools use).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Parser, ValueEnum};

use crate::attack::Attack;
use crate::external::Process;
use crate::stamp;

/// Half-open sockets `--attack slowloris` holds unless `--half-open` says how many.
const SLOWLORIS: usize = 1000;
/// quire's default request body limit (`--max-message-bytes`): the import bombs' size.
const BODY_LIMIT: usize = 16 << 20;

/// The workspace root, known at compile time so the defaults work from any working directory.
fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_default()
}

/// Benchmarks y-websocket servers side by side: stock y-sync bytes over real sockets, identical
/// load and seed for every server, each server started fresh by loadgen and killed at the end.
#[derive(Debug, Parser)]
#[command(name = "loadgen")]
pub struct Args {
    /// Servers to benchmark, one after the other.
    #[arg(long, env = "LOADGEN_SERVERS", value_delimiter = ',', default_value = "quire,y-websocket")]
    pub servers: Vec<ServerKind>,

    /// Documents; every document gets `writers + watchers` connections.
    #[arg(long, env = "LOADGEN_DOCS", default_value_t = 1000)]
    pub docs: usize,

    /// Clients per document that type.
    #[arg(long, env = "LOADGEN_WRITERS", default_value_t = 2)]
    pub writers: usize,

    /// Clients per document that only receive.
    #[arg(long, env = "LOADGEN_WATCHERS", default_value_t = 8)]
    pub watchers: usize,

    /// Updates per second per writer.
    #[arg(long, env = "LOADGEN_RATE", default_value_t = 2.0)]
    pub rate: f64,

    /// Seconds of typing, counted from the moment every client is synced.
    #[arg(long, env = "LOADGEN_DURATION", default_value_t = 30.0)]
    pub duration: f64,

    /// Seconds to wait after typing stops for updates still in flight.
    #[arg(long, env = "LOADGEN_GRACE", default_value_t = 5.0)]
    pub grace: f64,

    /// Seed for client phases and edit positions; random if unset (it is printed either way).
    #[arg(long, env = "LOADGEN_SEED")]
    pub seed: Option<u64>,

    /// Connections being opened at once. 200 stays well under the servers' listen backlogs
    /// (quire asks for 4096, node for 511), so no SYN is dropped.
    #[arg(long, env = "LOADGEN_CONNECT_CONCURRENCY", default_value_t = 200)]
    pub connect_concurrency: usize,

    /// Seconds one client may take to connect and receive sync step 2 before it counts as failed.
    #[arg(long, env = "LOADGEN_CONNECT_TIMEOUT", default_value_t = 30.0)]
    pub connect_timeout: f64,

    /// Sockets that send part of a request head and never finish it (a slowloris), opened
    /// before the clients join and reopened whenever the server closes one, until the end.
    #[arg(long, env = "LOADGEN_HALF_OPEN", default_value_t = 0)]
    pub half_open: usize,

    /// Attacks beside the clients, during typing (comma-separated; `all` for every one):
    /// `flood` (1 MiB updates back to back on the first document), `spam` (tiny updates faster
    /// than anyone types, on the first document too), `presence` (states over the limit, too many entries), `import` (adversarial
    /// HTML and Markdown at the body limit), `unknown` (GETs of documents that do not exist),
    /// `slowloris` (`--half-open`, 1,000 unless given). quire only.
    #[arg(long = "attack", env = "LOADGEN_ATTACKS", value_delimiter = ',', value_enum)]
    pub attacks: Vec<Attack>,

    /// With `--attack`: run each server twice, first without the attacks, to compare.
    #[arg(long, env = "LOADGEN_BASELINE")]
    pub baseline: bool,

    /// Attempts per second of the paced attackers (presence, unknown ids).
    #[arg(long, env = "LOADGEN_ATTACK_RATE", default_value_t = 50.0)]
    pub attack_rate: f64,

    /// The server's request body limit, which the import bombs fill (quire's default).
    #[arg(long, env = "LOADGEN_BODY_LIMIT", default_value_t = BODY_LIMIT)]
    pub body_limit: usize,

    /// Servers already running (comma-separated addresses), instead of starting `--servers`:
    /// quire processes, or a load balancer in front of them. A document's clients are spread
    /// over all of them (`cargo xtask bench cluster`).
    #[arg(long, env = "LOADGEN_CONNECT_TO", value_delimiter = ',')]
    pub connect_to: Vec<SocketAddr>,

    /// With `--connect-to`: a process to measure, `NAME=PID` (its whole process tree), or
    /// `NAME=PID@ADDR` for a quire process, whose `/metrics` is read too and whose documents
    /// must match the other quire processes' at the end. Repeat, or separate with commas.
    #[arg(long = "process", env = "LOADGEN_PROCESSES", value_delimiter = ',')]
    pub processes: Vec<Process>,

    /// A name for the `--connect-to` run in the table.
    #[arg(long, env = "LOADGEN_LABEL", default_value = "quire")]
    pub label: String,

    /// The owner key: quire is started with it, and every client and API call brings it.
    #[arg(long, env = "LOADGEN_OWNER_KEY", default_value = "loadgen-owner-key")]
    pub owner_key: String,

    /// The quire server binary.
    #[arg(long, env = "QUIRE_BIN", default_value_os_t = workspace().join("target/release/quire"))]
    pub quire_bin: PathBuf,

    /// An extra argument for `quire serve`, after loadgen's own `--addr` and `--data`; repeat
    /// for more, e.g. `--quire-arg=--flush-delay-ms=5`. Commas separate arguments here too (the
    /// environment variable has no other way to hold several).
    #[arg(
        long = "quire-arg",
        value_name = "ARG",
        env = "LOADGEN_QUIRE_ARGS",
        value_delimiter = ',',
        allow_hyphen_values = true
    )]
    pub quire_args: Vec<String>,

    /// Node.js, for the reference server.
    #[arg(long, env = "LOADGEN_NODE", default_value = "node")]
    pub node: PathBuf,

    /// The reference server's entry point (npm `@y/websocket-server`; `npm ci` in tests/).
    #[arg(
        long,
        env = "LOADGEN_Y_WEBSOCKET_SERVER",
        default_value_os_t = workspace().join("tests/node_modules/@y/websocket-server/src/server.js")
    )]
    pub y_websocket_server: PathBuf,

    /// Where server logs and quire's data directory go; a fresh temporary directory if unset.
    /// Data directories are removed after each run, logs are kept.
    #[arg(long, env = "LOADGEN_WORK_DIR")]
    pub work_dir: Option<PathBuf>,

    /// Also write the figures as JSON to this file.
    #[arg(long, env = "LOADGEN_JSON")]
    pub json: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ServerKind {
    Quire,
    #[value(name = "y-websocket")]
    YWebsocket,
}

impl ServerKind {
    pub fn name(self) -> &'static str {
        match self {
            ServerKind::Quire => "quire",
            ServerKind::YWebsocket => "y-websocket",
        }
    }
}

/// The load, identical for every server in one invocation.
#[derive(Debug, Clone)]
pub struct Load {
    pub docs: usize,
    pub writers: usize,
    pub watchers: usize,
    pub period: Duration,
    pub duration: Duration,
    pub grace: Duration,
    pub seed: u64,
    pub connect_concurrency: usize,
    pub connect_timeout: Duration,
    pub half_open: usize,
    /// Every attack asked for (`all` spelled out), slowloris included.
    pub attacks: Vec<Attack>,
    pub baseline: bool,
    pub attack_rate: f64,
    pub body_limit: usize,
}

impl Load {
    pub fn from_args(args: &Args) -> anyhow::Result<Self> {
        anyhow::ensure!(args.docs > 0, "--docs must be at least 1");
        anyhow::ensure!(args.writers + args.watchers >= 2, "a document needs at least two clients");
        anyhow::ensure!(
            args.writers < 10usize.pow(stamp::SLOT_DIGITS as u32),
            "--writers must fit in {} digits",
            stamp::SLOT_DIGITS
        );
        anyhow::ensure!(args.rate > 0.0 && args.rate.is_finite(), "--rate must be positive");
        anyhow::ensure!(args.connect_concurrency > 0, "--connect-concurrency must be at least 1");
        anyhow::ensure!(args.attack_rate > 0.0 && args.attack_rate.is_finite(), "--attack-rate must be positive");
        anyhow::ensure!(args.body_limit > 4096, "--body-limit must be more than 4096");
        let mut attacks: Vec<Attack> =
            args.attacks.iter().flat_map(|&a| if a == Attack::All { Attack::EVERY.to_vec() } else { vec![a] }).collect();
        attacks.sort();
        attacks.dedup();
        let secs = |name: &str, v: f64| {
            anyhow::ensure!(v >= 0.0 && v.is_finite(), "{name} must be a non-negative number of seconds");
            Ok(Duration::from_secs_f64(v))
        };
        Ok(Load {
            docs: args.docs,
            writers: args.writers,
            watchers: args.watchers,
            period: Duration::from_secs_f64(1.0 / args.rate),
            duration: secs("--duration", args.duration)?,
            grace: secs("--grace", args.grace)?,
            seed: args.seed.unwrap_or_else(|| fastrand::u64(..)),
            connect_concurrency: args.connect_concurrency,
            connect_timeout: secs("--connect-timeout", args.connect_timeout)?,
            half_open: if attacks.contains(&Attack::Slowloris) && args.half_open == 0 {
                SLOWLORIS
            } else {
                args.half_open
            },
            attacks,
            baseline: args.baseline,
            attack_rate: args.attack_rate,
            body_limit: args.body_limit,
        })
    }

    /// The runs each server gets: with the attacks, and first without them with `--baseline`.
    pub fn runs(&self) -> Vec<bool> {
        match (self.attacks.is_empty(), self.baseline) {
            (true, _) => vec![false],
            (false, false) => vec![true],
            (false, true) => vec![false, true],
        }
    }

    /// Half-open sockets of a run: `--half-open` alone holds them in every run; with attacks,
    /// they are the slowloris, an attack like the others.
    pub fn half_open_in(&self, attacked: bool) -> usize {
        if self.attacks.is_empty() || (attacked && self.attacks.contains(&Attack::Slowloris)) {
            self.half_open
        } else {
            0
        }
    }

    pub fn per_doc(&self) -> usize {
        self.writers + self.watchers
    }

    pub fn connections(&self) -> usize {
        self.docs * self.per_doc()
    }
}
