//! The cluster store: many quire processes serve the same documents, each able to serve any.
//!
//! - A document's log is a Redis stream ([`stream`]). An update counts as accepted once Redis
//!   appended it; how long it takes to reach Redis's disk is Redis's `appendfsync` (`always`:
//!   nothing acknowledged is lost; `everysec`: up to a second of edits when the Redis machine
//!   itself dies). Every process that holds the document reads the stream ([`feed`]).
//! - PostgreSQL keeps the rest ([`postgres`]): each document's snapshot and the stream position
//!   it covers, metadata, deletions, share links. Loading = the snapshot, then the stream after
//!   it.
//! - Folding the stream into the snapshot is done by one process at a time, under a lease with
//!   a fencing token ([`lease`]); the stream is then trimmed up to what was folded.
//! - [`conn`]: the one multiplexed Redis connection every document task shares.
//! - `history`: version history in PostgreSQL. Every process that holds a document would take
//!   its automatic versions; the first to claim the stored state's version in Redis takes it
//!   and the others skip theirs (they saw the same edits, through the stream). A version also records the stream position it covers, and a process whose state
//!   is at a position a stored version covers already takes none.
//!
//! While Redis is unreachable the store is down (edits cannot be accepted or shared: new
//! connections are refused); while PostgreSQL is, it is degraded (edits go on in the streams,
//! loads of documents not in memory and folds wait).

mod conn;
mod feed;
mod history;
pub mod lease;
mod postgres;
mod stream;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use quire_model::DocId;
use tokio::sync::mpsc;
use tokio_util::sync::{CancellationToken, DropGuard};

use conn::Conn;
use feed::Feed;
use lease::{Fold, Folded};
use postgres::Postgres;
use stream::{Entry, Keys};

use super::history::{Author, VersionPage, VersionRecord};
use super::{DocMeta, Health, Page, Remote, Seq, Store, StoreError, Stored};

/// How to reach the cluster's services.
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    /// `redis://host:port/db`.
    pub redis_url: String,
    /// `postgres://user@host:port/dbname` (libpq's key=value form works too).
    pub database_url: String,
    /// How long a fold lease lasts if its holder never gives it back (it died).
    pub lease_ttl: Duration,
}

impl ClusterOptions {
    pub fn new(redis_url: impl Into<String>, database_url: impl Into<String>) -> Self {
        ClusterOptions {
            redis_url: redis_url.into(),
            database_url: database_url.into(),
            lease_ttl: Duration::from_secs(30),
        }
    }
}

/// What the cluster store counts, beside the server's own metrics.
pub struct ClusterMetrics {
    /// From an entry's append (by another process) to its hand-over here.
    pub stream_lag: Histogram,
    pub append_seconds: Histogram,
    pub fold_seconds: Histogram,
    pub leases_taken: Counter,
    pub leases_busy: Counter,
    pub folds_fenced: Counter,
}

impl ClusterMetrics {
    fn new() -> Self {
        // 100 µs .. ~3.3 s.
        let latency = || Histogram::new(exponential_buckets(0.0001, 2.0, 16));
        ClusterMetrics {
            stream_lag: latency(),
            append_seconds: latency(),
            fold_seconds: latency(),
            leases_taken: Counter::default(),
            leases_busy: Counter::default(),
            folds_fenced: Counter::default(),
        }
    }
}

/// Presence updates waiting to be published; past this they are dropped (clients renew).
const PRESENCE_QUEUE: usize = 1024;
/// How often Redis and PostgreSQL are checked for `/healthz` and admission.
const HEALTH_EVERY: Duration = Duration::from_secs(1);
/// How long the start waits for the cluster feed's first connection.
const FEED_CONNECT: Duration = Duration::from_secs(10);

pub struct ClusterStore {
    /// This process's name in the streams (random per start).
    process: String,
    conn: Arc<Conn>,
    pg: Arc<Postgres>,
    feed: Arc<Feed>,
    metrics: Arc<ClusterMetrics>,
    presence: mpsc::Sender<(DocId, Vec<u8>)>,
    lease_ttl: Duration,
    /// Stops the feed, the presence publisher and the health checks with the store.
    _tasks: DropGuard,
}

impl ClusterStore {
    /// Connects to Redis and PostgreSQL (failing if either cannot be reached: a process that
    /// starts must be able to serve), brings the database's schema up to date, and starts the
    /// feed.
    pub async fn open(options: &ClusterOptions) -> Result<ClusterStore, StoreError> {
        let client = redis::Client::open(options.redis_url.as_str()).map_err(conn::redis_error)?;
        let conn = Arc::new(Conn::new(client));
        conn.cmd::<String>(&redis::cmd("PING")).await?;
        let pg = Arc::new(Postgres::open(&options.database_url).await?);
        let process = process_name()?;
        let metrics = Arc::new(ClusterMetrics::new());
        let feed = Arc::new(Feed::new(process.clone(), metrics.clone()));
        let cancel = CancellationToken::new();
        tokio::spawn(feed.clone().run(conn.clone(), cancel.clone()));
        let (presence, queue) = mpsc::channel(PRESENCE_QUEUE);
        tokio::spawn(publish_presence(conn.clone(), process.clone(), queue, cancel.clone()));
        tokio::spawn(check_health(conn.clone(), pg.clone(), cancel.clone()));
        // Listening before the feed is up would answer the first clients 503 (and not hear
        // the other processes): the start waits for it.
        if !feed.connected_within(FEED_CONNECT).await {
            cancel.cancel();
            return Err(StoreError::Backend(Box::new(feed::FeedNotConnected(FEED_CONNECT))));
        }
        tracing::info!(%process, "joined the cluster");
        Ok(ClusterStore {
            process,
            conn,
            pg,
            feed,
            metrics,
            presence,
            lease_ttl: options.lease_ttl,
            _tasks: cancel.drop_guard(),
        })
    }

    /// This process's name in the cluster.
    pub fn process(&self) -> &str {
        &self.process
    }

    /// Takes `doc`'s fold lease to store a snapshot covering its stream up to `upto`. `None`:
    /// another process is folding it, or the stored snapshot is at least as recent. (A fold in
    /// two steps, so that tests can pause between them.)
    pub async fn begin_fold(&self, doc: &DocId, upto: Seq) -> Result<Option<Fold>, StoreError> {
        let fold = Fold::begin(&self.conn, &self.pg, &self.process, doc, upto, self.lease_ttl).await?;
        match &fold {
            Some(_) => self.metrics.leases_taken.inc(),
            None => self.metrics.leases_busy.inc(),
        };
        Ok(fold)
    }

    /// Writes the snapshot of a fold begun with [`begin_fold`](Self::begin_fold).
    pub async fn finish_fold(&self, fold: Fold, snapshot: &[u8]) -> Result<Folded, StoreError> {
        let folded = fold.write(&self.conn, &self.pg, snapshot).await?;
        if folded == Folded::Fenced {
            self.metrics.folds_fenced.inc();
        }
        Ok(folded)
    }

    /// The stream after `start` and the trimmed mark, read together (one transaction), so a
    /// fold that lands between reading the database and the stream is noticed.
    async fn read_stream(&self, doc: &DocId, start: Option<Seq>) -> Result<(Option<Seq>, Vec<(Seq, Entry)>), StoreError> {
        let keys = Keys::of(doc);
        let from = start.map_or_else(|| "-".to_owned(), |seq| format!("({}", stream::id(seq)));
        let mut pipe = redis::pipe();
        pipe.atomic().cmd("GET").arg(&keys.trimmed).cmd("XRANGE").arg(&keys.log).arg(from).arg("+");
        let (trimmed, range): (Option<String>, redis::streams::StreamRangeReply) = self.conn.pipe(&pipe).await?;
        Ok((stream::read_trimmed(trimmed)?, stream::read_range(range)?))
    }

    /// Appends `entry` to `doc`'s stream and rings its doorbell; the entry's position.
    async fn add(&self, doc: &DocId, entry: &Entry) -> Result<Seq, StoreError> {
        let keys = Keys::of(doc);
        let mut pipe = redis::pipe();
        pipe.cmd("XADD").arg(&keys.log).arg("*");
        for (field, value) in stream::fields(&self.process, entry) {
            pipe.arg(field).arg(value);
        }
        pipe.cmd("PUBLISH").arg(&keys.channel).arg(feed::bell(&self.process)).ignore();
        let (id,): (String,) = self.conn.pipe(&pipe).await?;
        stream::parse_id(&id)
    }
}

/// Tries to load `doc` this many times when folds keep landing between the two reads.
const LOAD_ATTEMPTS: usize = 5;

#[async_trait::async_trait]
impl Store for ClusterStore {
    async fn load(&self, doc: &DocId) -> Result<Option<Stored>, StoreError> {
        for _ in 0..LOAD_ATTEMPTS {
            let row = self.pg.row(doc).await?;
            let (trimmed, entries) = self.read_stream(doc, row.stream_pos).await?;
            if trimmed > row.stream_pos {
                continue; // folded meanwhile: the database has a newer snapshot
            }
            let mut stored = Stored {
                updates: row.snapshot.into_iter().collect(),
                last_seq: row.stream_pos,
                log_entries: 0,
                log_bytes: 0,
            };
            for (seq, entry) in entries {
                stored.last_seq = Some(seq);
                match entry {
                    Entry::Update { update, .. } => {
                        stored.log_entries += 1;
                        stored.log_bytes += update.len() as u64;
                        stored.updates.push(update);
                    }
                    // Deleted after we read the database: what came before is gone.
                    Entry::Deleted => {
                        stored.updates.clear();
                        stored.log_entries = 0;
                        stored.log_bytes = 0;
                    }
                    Entry::Revoked(_) => {}
                }
            }
            return Ok(stored.last_seq.map(|_| stored));
        }
        Err(StoreError::Corrupt(format!("{doc}: the stream kept being trimmed while loading")))
    }

    async fn append(&self, doc: &DocId, update: &[u8]) -> Result<Seq, StoreError> {
        let started = Instant::now();
        let entry = Entry::Update { origin: self.process.clone(), update: update.to_vec() };
        let seq = self.add(doc, &entry).await?;
        self.metrics.append_seconds.observe(started.elapsed().as_secs_f64());
        Ok(seq)
    }

    async fn compact(&self, doc: &DocId, snapshot: &[u8], upto: Seq) -> Result<(), StoreError> {
        let started = Instant::now();
        let Some(fold) = self.begin_fold(doc, upto).await? else {
            return Ok(()); // another process folds it, or already has
        };
        self.finish_fold(fold, snapshot).await?;
        self.metrics.fold_seconds.observe(started.elapsed().as_secs_f64());
        Ok(())
    }

    async fn delete(&self, doc: &DocId, state: &[u8]) -> Result<(), StoreError> {
        let keys = Keys::of(doc);
        // A token of its own: a fold begun before the deletion can no longer write.
        let fence: i64 = self.conn.cmd(redis::cmd("INCR").arg(&keys.fence)).await?;
        let at = self.add(doc, &Entry::Deleted).await?;
        self.pg.delete(doc, state, at, fence, now_ms() as i64).await?;
        // What came before the deletion is of no use to anyone: loads start after it, and a
        // process that had not read that far reads the deletion next (its entry stays).
        self.conn
            .cmd::<i64>(redis::cmd("XTRIM").arg(&keys.log).arg("MINID").arg(stream::id(at)))
            .await?;
        Ok(())
    }

    async fn exists(&self, doc: &DocId) -> Result<bool, StoreError> {
        let row = self.pg.row(doc).await?;
        if row.deleted {
            return Ok(false);
        }
        if row.meta.is_some() || row.snapshot.is_some() {
            return Ok(true);
        }
        let last: redis::streams::StreamRangeReply =
            self.conn.cmd(redis::cmd("XREVRANGE").arg(Keys::of(doc).log).arg("+").arg("-").arg("COUNT").arg(1)).await?;
        Ok(matches!(stream::read_range(last)?.first(), Some((_, Entry::Update { .. }))))
    }

    async fn deleted(&self, doc: &DocId) -> Result<bool, StoreError> {
        Ok(self.pg.row(doc).await?.deleted)
    }

    async fn undelete(&self, doc: &DocId) -> Result<(), StoreError> {
        self.pg.undelete(doc).await
    }

    async fn stale(&self, doc: &DocId) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.pg.row(doc).await?.stale)
    }

    async fn put_meta(&self, doc: &DocId, meta: &DocMeta) -> Result<(), StoreError> {
        self.pg.put_meta(doc, meta).await
    }

    async fn meta(&self, doc: &DocId) -> Result<Option<DocMeta>, StoreError> {
        Ok(self.pg.row(doc).await?.meta)
    }

    async fn list(&self, offset: usize, limit: usize) -> Result<Page, StoreError> {
        self.pg.list(offset, limit).await
    }

    async fn put_link(&self, doc: &DocId, link: &str, record: &[u8]) -> Result<(), StoreError> {
        self.pg.put_link(doc, link, record).await
    }

    async fn remove_link(&self, doc: &DocId, link: &str) -> Result<bool, StoreError> {
        self.pg.remove_link(doc, link).await
    }

    async fn links(&self) -> Result<Vec<(DocId, String, Vec<u8>)>, StoreError> {
        self.pg.links(None).await
    }

    async fn link(&self, doc: &DocId, link: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.pg.link(doc, link).await
    }

    async fn links_of(&self, doc: &DocId) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let links = self.pg.links(Some(doc)).await?;
        Ok(links.into_iter().map(|(_, id, record)| (id, record)).collect())
    }

    /// An update is durable once Redis has appended it (with `appendfsync always`): there is
    /// nothing to wait for here.
    async fn flush(&self) -> Result<(), StoreError> {
        Ok(())
    }

    async fn put_version(&self, doc: &DocId, record: &VersionRecord, state: &[u8]) -> Result<bool, StoreError> {
        self.pg.put_version(doc, record, state).await
    }

    async fn update_version(&self, doc: &DocId, record: &VersionRecord) -> Result<bool, StoreError> {
        self.pg.update_version(doc, record).await
    }

    async fn remove_versions(&self, doc: &DocId, ids: &[u64]) -> Result<(), StoreError> {
        self.pg.remove_versions(doc, ids).await
    }

    async fn versions(&self, doc: &DocId, offset: usize, limit: usize) -> Result<VersionPage, StoreError> {
        self.pg.versions(doc, offset, limit).await
    }

    async fn version_state(&self, doc: &DocId, id: u64) -> Result<Option<Vec<u8>>, StoreError> {
        self.pg.version_state(doc, id).await
    }

    async fn put_authors(&self, doc: &DocId, authors: &[(u64, Author)]) -> Result<(), StoreError> {
        self.pg.put_authors(doc, authors).await
    }

    async fn authors(&self, doc: &DocId) -> Result<Vec<(u64, Author)>, StoreError> {
        self.pg.authors(doc).await
    }

    /// The first process to ask for the state at `pos` takes its version. The claim is a key
    /// that expires by itself after `lease_ttl` (by then every process has settled on that
    /// state or moved past it); a process that dies after claiming costs that one automatic
    /// version, and the next change brings another.
    async fn claim_version(&self, doc: &DocId, pos: Option<Seq>) -> Result<bool, StoreError> {
        let key = format!("{}:{}", Keys::of(doc).version, pos.map_or_else(|| "-".to_owned(), |Seq(n)| n.to_string()));
        let ttl = self.lease_ttl.as_millis() as u64;
        let set: Option<String> =
            self.conn.cmd(redis::cmd("SET").arg(&key).arg(&self.process).arg("NX").arg("PX").arg(ttl)).await?;
        Ok(set.is_some())
    }

    fn follow(&self, doc: &DocId, after: Option<Seq>) -> Option<mpsc::Receiver<Remote>> {
        Some(self.feed.follow(doc, after))
    }

    fn publish_presence(&self, doc: &DocId, update: Vec<u8>) {
        // Presence is about now: when Redis cannot keep up, the oldest news is the first to go.
        let _ = self.presence.try_send((doc.clone(), update));
    }

    async fn announce_revoked(&self, doc: &DocId, link: &str) -> Result<(), StoreError> {
        self.add(doc, &Entry::Revoked(link.to_owned())).await.map(drop)
    }

    fn is_shared(&self) -> bool {
        true
    }

    fn health(&self) -> Health {
        if !self.conn.is_up() || !self.feed.is_up() {
            Health::Down("redis is unreachable: edits could be neither kept nor shared")
        } else if !self.pg.is_up() {
            Health::Degraded("postgresql is unreachable: edits go on, saving snapshots waits")
        } else {
            Health::Ok
        }
    }

    fn register_metrics(&self, registry: &mut prometheus_client::registry::Registry) {
        let m = &self.metrics;
        registry.register(
            "quire_cluster_stream_lag_seconds",
            "From another process appending an update to this one reading it",
            m.stream_lag.clone(),
        );
        registry.register("quire_cluster_append_seconds", "Appending one update to its Redis stream", m.append_seconds.clone());
        registry.register("quire_cluster_fold_seconds", "Folding a stream into its PostgreSQL snapshot", m.fold_seconds.clone());
        registry.register("quire_cluster_fold_leases_taken", "Fold leases this process took", m.leases_taken.clone());
        registry.register(
            "quire_cluster_fold_leases_busy",
            "Folds skipped: another process held the lease, or had folded further",
            m.leases_busy.clone(),
        );
        registry.register(
            "quire_cluster_folds_fenced",
            "Folds refused by the database: a newer lease holder had written (this one's lease expired)",
            m.folds_fenced.clone(),
        );
    }
}

/// Publishes this process's presence updates, in order, until `cancel`.
async fn publish_presence(conn: Arc<Conn>, process: String, mut queue: mpsc::Receiver<(DocId, Vec<u8>)>, cancel: CancellationToken) {
    loop {
        let (doc, update) = tokio::select! {
            next = queue.recv() => match next { Some(next) => next, None => return },
            () = cancel.cancelled() => return,
        };
        let channel = Keys::of(&doc).channel;
        let sent = conn.cmd::<i64>(redis::cmd("PUBLISH").arg(channel).arg(feed::presence(&process, &update))).await;
        if let Err(error) = sent {
            tracing::debug!(%doc, %error, "presence not published");
        }
    }
}

/// Checks Redis and PostgreSQL every [`HEALTH_EVERY`], so that health recovers without waiting
/// for a document to try.
async fn check_health(conn: Arc<Conn>, pg: Arc<Postgres>, cancel: CancellationToken) {
    let mut every = tokio::time::interval(HEALTH_EVERY);
    loop {
        tokio::select! {
            _ = every.tick() => {}
            () = cancel.cancelled() => return,
        }
        let _ = conn.cmd::<String>(&redis::cmd("PING")).await;
        let was_up = pg.is_up();
        let up = pg.ping().await.is_ok();
        if up != was_up {
            if up {
                tracing::info!("postgresql is reachable again");
            } else {
                tracing::warn!("postgresql is unreachable: edits go on in the streams, snapshots wait");
            }
        }
    }
}

/// A random name for this process: 16 hex digits.
fn process_name() -> Result<String, StoreError> {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).map_err(|e| StoreError::Backend(Box::new(e)))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

pub(crate) fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}
