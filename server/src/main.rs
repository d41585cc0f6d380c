//! The `quire` binary: flags in, [`quire::run`] out; and `export`/`import`/`versions`, clients
//! of a running server's HTTP API ([`cli`]).

mod cli;

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use quire::listen::Cidr;
use quire::store::cluster::{ClusterOptions, ClusterStore};
use quire::Config;

#[derive(Parser)]
#[command(name = "quire", version, about = "A collaborative document editor")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve documents over HTTP and WebSocket.
    Serve(Box<ServeArgs>),
    /// Print a document of a running server as Markdown, HTML, text, Delta or Yjs.
    Export(cli::export::ExportArgs),
    /// Replace a document of a running server with a file (creating the document if needed).
    Import(cli::import::ImportArgs),
    /// List a document's versions on a running server, newest first.
    Versions(cli::versions::VersionsArgs),
    /// Print the owner's sign-in URL again (the owner key is in the data directory).
    OwnerUrl(OwnerUrlArgs),
}

/// Who may do what.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum AuthMode {
    /// The owner key and share links (the default).
    Owner,
    /// Everyone may do everything: only for a trusted single-user setup.
    None,
}

#[derive(Args)]
struct OwnerUrlArgs {
    /// The data directory the server runs on.
    #[arg(long, env = "QUIRE_DATA", default_value = "./quire-data")]
    data: PathBuf,
    /// Where the server is reached.
    #[arg(long, env = "QUIRE_PUBLIC_URL", default_value = "http://127.0.0.1:8080")]
    public_url: String,
}

#[derive(Args)]
struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "QUIRE_ADDR", default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    /// Directory of the document store (created if missing).
    #[arg(long, env = "QUIRE_DATA", default_value = "./quire-data")]
    data: PathBuf,
    /// Join a cluster: Redis carries every change between quire processes (e.g.
    /// redis://10.0.0.5:6379). Needs --database; documents are then kept in PostgreSQL,
    /// not in the data directory.
    #[arg(long = "redis", env = "QUIRE_REDIS_URL", requires = "database_url", hide_env_values = true)]
    redis_url: Option<String>,
    /// The cluster's PostgreSQL (e.g. postgres://quire@10.0.0.6/quire). Needs --redis.
    #[arg(long = "database", env = "QUIRE_DATABASE_URL", requires = "redis_url", hide_env_values = true)]
    database_url: Option<String>,
    /// `owner`: credentials are required (the owner key, its browser session, share links,
    /// tokens); `none`: everyone may do everything (a trusted single-user setup only).
    #[arg(long, env = "QUIRE_AUTH", value_enum, default_value = "owner")]
    auth: AuthMode,
    /// The owner key (for scripts, tests and several processes); without it one is created in
    /// the data directory on first start.
    #[arg(long, env = "QUIRE_OWNER_KEY", hide_env_values = true)]
    owner_key: Option<String>,
    /// The secret tokens are signed with (several processes, or an application minting tokens,
    /// share it); without it one is created in the data directory on first start.
    #[arg(long, env = "QUIRE_SECRET", hide_env_values = true)]
    secret: Option<String>,
    /// Where people reach this server (e.g. https://docs.example.com), for the share links
    /// and the sign-in URL; without it, the address each request was sent to.
    #[arg(long, env = "QUIRE_PUBLIC_URL")]
    public_url: Option<String>,
    /// Other origins whose pages may use the owner's browser session (comma separated).
    #[arg(long, env = "QUIRE_ALLOWED_ORIGINS", value_delimiter = ',')]
    allowed_origins: Vec<String>,
    /// Also serve /metrics here, without credentials (an address only the monitoring reaches).
    #[arg(long, env = "QUIRE_METRICS_ADDR")]
    metrics_addr: Option<SocketAddr>,
    /// Directory of the built web app (`cargo xtask web` builds it into web/dist).
    #[arg(long, env = "QUIRE_WEB_DIR", default_value = "./web/dist")]
    web_dir: PathBuf,
    /// Seconds a document without connections stays in memory.
    #[arg(long, env = "QUIRE_IDLE_UNLOAD_SECS", default_value_t = 30)]
    idle_unload_secs: u64,
    /// Largest WebSocket message accepted, in bytes.
    #[arg(long, env = "QUIRE_MAX_MESSAGE_BYTES", default_value_t = 16 * 1024 * 1024)]
    max_message_bytes: usize,
    /// Bytes queued for one connection before it is dropped as too slow.
    #[arg(long, env = "QUIRE_OUTBOX_BYTES", default_value_t = 4 * 1024 * 1024)]
    outbox_bytes: usize,
    /// Most concurrent WebSocket connections; more get 503 + Retry-After.
    #[arg(long, env = "QUIRE_MAX_CONNECTIONS", default_value_t = 16_000)]
    max_connections: usize,
    /// Most documents in memory at once; opening more gets 503 + Retry-After.
    #[arg(long, env = "QUIRE_MAX_LIVE_DOCS", default_value_t = 50_000)]
    max_live_docs: usize,
    /// Largest document, in MiB as stored; edits past it are refused (4413, HTTP 413).
    #[arg(long, env = "QUIRE_MAX_DOC_MB", default_value_t = 64)]
    max_doc_mb: u64,
    /// Bytes per second one connection may send, sustained (it waits beyond that).
    #[arg(long, env = "QUIRE_RATE_BYTES_PER_SEC", default_value_t = 1024 * 1024)]
    rate_bytes_per_sec: u64,
    /// Messages per second one connection may send, sustained (4429 beyond a burst of 10 s' worth).
    #[arg(long, env = "QUIRE_RATE_MESSAGES_PER_SEC", default_value_t = 100)]
    rate_messages_per_sec: u64,
    /// Connections the kernel queues for accepting (capped by net.core.somaxconn); past it,
    /// new clients' SYNs are dropped and they retry after a second or more.
    #[arg(long, env = "QUIRE_LISTEN_BACKLOG", default_value_t = 4096)]
    listen_backlog: u32,
    /// Most open sockets of any kind (HTTP, WebSocket, still sending headers); more are
    /// answered 503 + Retry-After and closed. Keep it above --max-connections.
    #[arg(long, env = "QUIRE_MAX_SOCKETS", default_value_t = 18_000)]
    max_sockets: usize,
    /// Most open sockets from one client address (an IPv6 client counts by its /64); more are
    /// answered 429 + Retry-After and closed. Through a trusted proxy: most requests and
    /// WebSockets of one forwarded client address. 0 = no cap.
    #[arg(long, env = "QUIRE_MAX_PER_ADDRESS", default_value_t = 4_000)]
    max_per_address: usize,
    /// Seconds a client may take to send a request's headers (and an idle keep-alive
    /// connection is kept); then its socket is closed.
    #[arg(long, env = "QUIRE_HEADER_READ_TIMEOUT_SECS", default_value_t = 10)]
    header_read_timeout_secs: u64,
    /// Seconds a request body gets before it must keep up `--body-min-rate`; then it gets a
    /// second more for every that many bytes. Slower bodies are answered 408.
    #[arg(long, env = "QUIRE_BODY_READ_TIMEOUT_SECS", default_value_t = 20)]
    body_read_timeout_secs: u64,
    /// Bytes per second a request body must keep up after `--body-read-timeout-secs`.
    #[arg(long, env = "QUIRE_BODY_MIN_RATE", default_value_t = 500)]
    body_min_rate: u64,
    /// Reverse proxies whose X-Forwarded-For is believed: addresses or CIDR blocks, comma
    /// separated (e.g. `10.0.0.0/8,::1`). Without it the header is ignored.
    #[arg(long, env = "QUIRE_TRUSTED_PROXY", value_delimiter = ',')]
    trusted_proxy: Vec<Cidr>,
    /// Compact a document's log after this many updates.
    #[arg(long, env = "QUIRE_COMPACT_AFTER_UPDATES", default_value_t = 1000)]
    compact_after_updates: u64,
    /// Extra milliseconds to gather updates before each flush (0 = flush back to back).
    #[arg(long, env = "QUIRE_FLUSH_DELAY_MS", default_value_t = 0)]
    flush_delay_ms: u64,
    /// Seconds between pings to each client.
    #[arg(long, env = "QUIRE_PING_INTERVAL_SECS", default_value_t = 15)]
    ping_interval_secs: u64,
    /// Seconds of silence after which a client is disconnected.
    #[arg(long, env = "QUIRE_IDLE_CONNECTION_TIMEOUT_SECS", default_value_t = 45)]
    idle_connection_timeout_secs: u64,
    /// Writes stop while the store's disk has fewer MiB than this free, and resume after.
    #[arg(long, env = "QUIRE_MIN_FREE_DISK_MB", default_value_t = 128)]
    min_free_disk_mb: u64,
    /// sled page cache, in MiB.
    #[arg(long, env = "QUIRE_CACHE_MB", default_value_t = 32)]
    cache_mb: u64,
    /// Seconds after the last change of a burst of editing when an automatic version is taken.
    #[arg(long, env = "QUIRE_VERSION_SETTLE_SECS", default_value_t = 300)]
    version_settle_secs: u64,
    /// While editing goes on, seconds at most between automatic versions.
    #[arg(long, env = "QUIRE_VERSION_MAX_INTERVAL_SECS", default_value_t = 1800)]
    version_max_interval_secs: u64,
    /// Updates at most between automatic versions (a flood is versioned at once).
    #[arg(long, env = "QUIRE_VERSION_MAX_UPDATES", default_value_t = 5000)]
    version_max_updates: u64,
    /// Hours for which every automatic version is kept (then one an hour).
    #[arg(long, env = "QUIRE_VERSIONS_KEEP_ALL_HOURS", default_value_t = 24)]
    versions_keep_all_hours: u64,
    /// Days for which one automatic version an hour is kept (then one a day).
    #[arg(long, env = "QUIRE_VERSIONS_HOURLY_DAYS", default_value_t = 30)]
    versions_hourly_days: u64,
    /// Named versions a document may have (each keeps a whole state and is never thinned).
    #[arg(long, env = "QUIRE_MAX_NAMED_VERSIONS", default_value_t = 40)]
    max_named_versions: usize,
    /// MiB of input being converted at once (imports, exports): what bounds conversions'
    /// memory, which grows with their input (a 16 MiB import peaks at about 1.5 GB).
    #[arg(long, env = "QUIRE_MAX_CONVERTING_MB", default_value_t = 32)]
    max_converting_mb: u64,
}

impl ServeArgs {
    fn into_config(self) -> Config {
        Config {
            data_dir: self.data,
            web_dir: self.web_dir,
            public_url: self.public_url,
            allowed_origins: self.allowed_origins,
            metrics_addr: self.metrics_addr,
            cache_capacity_bytes: self.cache_mb * 1024 * 1024,
            min_free_disk_bytes: self.min_free_disk_mb * 1024 * 1024,
            max_live_docs: self.max_live_docs,
            max_doc_bytes: self.max_doc_mb * 1024 * 1024,
            rate_bytes_per_sec: self.rate_bytes_per_sec,
            rate_messages_per_sec: self.rate_messages_per_sec,
            rate_burst_messages: self.rate_messages_per_sec * 10,
            max_message_bytes: self.max_message_bytes,
            outbox_bytes: self.outbox_bytes,
            max_connections: self.max_connections,
            listen_backlog: self.listen_backlog,
            max_sockets: self.max_sockets,
            max_per_address: self.max_per_address,
            header_read_timeout: Duration::from_secs(self.header_read_timeout_secs),
            body_read_timeout: Duration::from_secs(self.body_read_timeout_secs),
            body_min_rate: self.body_min_rate,
            trusted_proxies: self.trusted_proxy,
            idle_unload: Duration::from_secs(self.idle_unload_secs),
            compact_after_updates: self.compact_after_updates,
            flush_delay: Duration::from_millis(self.flush_delay_ms),
            ping_interval: Duration::from_secs(self.ping_interval_secs),
            idle_connection_timeout: Duration::from_secs(self.idle_connection_timeout_secs),
            version_settle: Duration::from_secs(self.version_settle_secs),
            version_max_interval: Duration::from_secs(self.version_max_interval_secs),
            version_max_updates: self.version_max_updates,
            versions_keep_all: Duration::from_secs(self.versions_keep_all_hours * 3600),
            versions_hourly: Duration::from_secs(self.versions_hourly_days * 24 * 3600),
            max_named_versions: self.max_named_versions,
            max_converting_bytes: self.max_converting_mb * 1024 * 1024,
            ..Config::default()
        }
    }
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Command::Serve(args) => serve(*args),
        Command::Export(args) => cli::export::run(args),
        Command::Import(args) => cli::import::run(args),
        Command::Versions(args) => cli::versions::run(args),
        Command::OwnerUrl(args) => {
            let key = quire::auth::keys::read_owner_key(&args.data)
                .with_context(|| format!("no owner key in {}: has quire run there?", args.data.display()))?;
            println!("{}", sign_in_url(&args.public_url, &key));
            Ok(())
        }
    }
}

/// The URL that signs a browser in as the owner.
fn sign_in_url(base: &str, key: &str) -> String {
    format!("{}/?key={key}", base.trim_end_matches('/'))
}

fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let addr = args.addr;
    let (mode, owner_key, secret) = (args.auth, args.owner_key.clone(), args.secret.clone());
    let cluster = match (&args.redis_url, &args.database_url) {
        (Some(redis), Some(database)) => Some(ClusterOptions::new(redis, database)),
        _ => None,
    };
    if cluster.is_some() && mode == AuthMode::Owner && (owner_key.is_none() || secret.is_none()) {
        // Each process would otherwise make up its own: links made on one would fail on the
        // others, and the owner would need a key per process.
        anyhow::bail!("in a cluster every process needs the same --owner-key and --secret (or QUIRE_OWNER_KEY and QUIRE_SECRET)");
    }
    let config = args.into_config();
    // Every socket is a file descriptor; the usual soft limit of 1024 would cap us there.
    match rlimit::increase_nofile_limit(u64::MAX) {
        // Past the file limit, accept fails and clients wait in the backlog unanswered: the
        // budget must run out first for them to be refused politely.
        Ok(limit) if limit <= config.max_sockets as u64 => tracing::warn!(
            limit,
            max_sockets = config.max_sockets,
            "the open file limit is not above max_sockets: lower --max-sockets or raise the limit"
        ),
        Ok(_) => {}
        Err(error) => tracing::warn!(%error, "could not raise the open file limit"),
    }
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    // Open the store before listening: if it cannot be opened, say so and exit, having
    // touched nothing (SledStore::open refuses rather than "repairs").
    let store: Arc<dyn quire::store::Store> = match &cluster {
        Some(options) => Arc::new(
            runtime
                .block_on(ClusterStore::open(options))
                .context("quire cannot join the cluster (are Redis and PostgreSQL reachable?)")?,
        ),
        None => Arc::new(
            quire::open_store(&config).with_context(|| format!("quire cannot start on {}", config.data_dir.display()))?,
        ),
    };
    runtime.block_on(async move {
        let policy: Arc<dyn quire::auth::Authorizer> = match mode {
            AuthMode::Owner => Arc::new(
                quire::auth::Auth::open(
                    &config.data_dir,
                    store.clone(),
                    owner_key.as_deref(),
                    secret.as_deref(),
                    config.allowed_origins.clone(),
                )
                .await
                .context("cannot set up access control")?,
            ),
            AuthMode::None => {
                tracing::warn!("--auth none: anyone who reaches this server may read, change and delete every document");
                Arc::new(quire::auth::AllowAll)
            }
        };
        let listener =
            quire::listen::bind(addr, config.listen_backlog).with_context(|| format!("cannot listen on {addr}"))?;
        let local = listener.local_addr()?;
        // Tests and scripts wait for this exact line.
        println!("quire listening on http://{local}");
        if let Some(keys) = policy.keys() {
            let base = config.public_url.clone().unwrap_or_else(|| format!("http://{local}"));
            println!("sign in as the owner: {}", sign_in_url(&base, keys.owner_key()));
        }
        std::io::stdout().flush()?;
        quire::serve_with_auth(listener, config, store, policy, quire::shutdown::signal()).await?;
        anyhow::Ok(())
    })
}
