//! The feed: one task per process that reads, for every document this process holds, what the
//! other processes appended to its stream, and hands it to the document's task in order.
//!
//! Reads are multiplexed: one pub/sub connection carries every followed document's doorbell
//! and presence, and the entries themselves are read with pipelined XRANGEs on the shared
//! connection, from each document's cursor (the last entry seen). A doorbell is only a hint:
//! every followed stream is also swept each [`SWEEP`], so a lost doorbell (pub/sub delivers at
//! most once) delays an edit by a second at worst and never loses it. After Redis comes back
//! from a restart or a network cut, each document resumes from its cursor; if its stream was
//! folded and trimmed past the cursor meanwhile, its task is told to load again.
//!
//! Presence crosses processes on the same channel, fire and forget (clients renew theirs).
//! Each process keeps a heartbeat key; when one disappears, the presence of its clients goes.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{FutureExt, StreamExt};
use quire_model::DocId;
use redis::streams::StreamRangeReply;
use tokio::sync::{mpsc, watch, Notify};
use tokio_util::sync::CancellationToken;

use super::conn::{redis_error, Conn};
use super::stream::{self, Entry, Keys};
use super::ClusterMetrics;
use crate::store::{Change, Remote, Seq, StoreError};

/// Every followed stream is read at least this often, doorbell or not: what a lost doorbell
/// can delay an edit by. (Doorbells are lost only when pub/sub drops a slow or broken
/// connection, and a reconnect reads everything anyway.) Also how soon the position of this
/// process's own entries reaches its documents (they fold up to it).
const SWEEP: Duration = Duration::from_secs(2);
/// A process refreshes its heartbeat this often; it expires after [`HEARTBEAT_TTL`].
const HEARTBEAT: Duration = Duration::from_secs(2);
const HEARTBEAT_TTL: Duration = Duration::from_secs(6);
/// Entries read per document per round: a document far behind catches up in rounds, without
/// one huge reply holding up the others.
const BATCH: usize = 512;
/// Documents per pipelined read.
const PIPELINE: usize = 128;
/// Messages waiting for one document's task. A task that falls this far behind is read again
/// from its cursor later (presence, which is not kept, is dropped).
pub const QUEUE: usize = 256;
/// Waits between attempts to reach Redis again.
const RETRY_FIRST: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(5);

/// Channel messages: a kind byte, `:`, the sending process, and for presence `:` and the
/// update.
const BELL: u8 = b'b';
const PRESENCE: u8 = b'p';
/// "Who is here?": processes that hold the document answer with their clients' presence.
const QUERY: u8 = b'q';

struct Follower {
    tx: mpsc::Sender<Remote>,
    /// The last entry handed over (or loaded): reading resumes after it.
    cursor: Seq,
    /// Processes whose clients' presence this document has.
    present: HashSet<String>,
}

pub struct Feed {
    process: String,
    // std Mutexes: held for map operations only, never across an await.
    follows: Mutex<HashMap<DocId, Follower>>,
    /// Documents followed since the task last looked: to subscribe.
    fresh: Mutex<Vec<DocId>>,
    /// Wakes the task when a document is followed (subscribe it, read it).
    changed: Notify,
    metrics: Arc<ClusterMetrics>,
    /// Whether the pub/sub connection is up (a watch: the start waits for the first time).
    up: watch::Sender<bool>,
}

fn key_of_heartbeat(process: &str) -> String {
    format!("quire:proc:{process}")
}

impl Feed {
    pub fn new(process: String, metrics: Arc<ClusterMetrics>) -> Feed {
        Feed {
            process,
            follows: Mutex::new(HashMap::new()),
            fresh: Mutex::new(Vec::new()),
            changed: Notify::new(),
            metrics,
            up: watch::Sender::new(false),
        }
    }

    pub fn is_up(&self) -> bool {
        *self.up.borrow()
    }

    /// Waits until the pub/sub connection is up, at most `limit`: until then this process
    /// could neither hear the others nor be trusted with a client.
    pub async fn connected_within(&self, limit: Duration) -> bool {
        let mut up = self.up.subscribe();
        let connected = tokio::time::timeout(limit, up.wait_for(|up| *up)).await;
        matches!(connected, Ok(Ok(_)))
    }

    fn follows(&self) -> std::sync::MutexGuard<'_, HashMap<DocId, Follower>> {
        self.follows.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn fresh(&self) -> std::sync::MutexGuard<'_, Vec<DocId>> {
        self.fresh.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Follows `doc` from just after `after`; replaces an earlier follower of it (whose task
    /// unloaded or loaded again). A task stops following by dropping the receiver.
    pub fn follow(&self, doc: &DocId, after: Option<Seq>) -> mpsc::Receiver<Remote> {
        let (tx, rx) = mpsc::channel(QUEUE);
        let follower = Follower {
            tx,
            cursor: after.unwrap_or(Seq(0)),
            present: HashSet::new(),
        };
        self.follows().insert(doc.clone(), follower);
        self.fresh().push(doc.clone());
        self.changed.notify_one();
        rx
    }

    /// Runs until `cancel`: (re)connects, subscribes, reads.
    pub async fn run(self: Arc<Self>, conn: Arc<Conn>, cancel: CancellationToken) {
        let mut retry = RETRY_FIRST;
        while !cancel.is_cancelled() {
            match self.connected(&conn, &cancel).await {
                Ok(()) => return,
                Err(error) => {
                    if self.up.send_replace(false) {
                        // It was up: this is a new outage, not the next failure of one.
                        retry = RETRY_FIRST;
                    }
                    tracing::warn!(error = %crate::error::chain(&error), retry_in = ?retry, "lost the cluster feed; reconnecting");
                }
            }
            tokio::select! {
                () = tokio::time::sleep(retry) => {}
                () = cancel.cancelled() => return,
            }
            retry = (retry * 2).min(RETRY_MAX);
        }
    }

    /// One life of the pub/sub connection. Ok at shutdown, Err when it broke.
    async fn connected(&self, conn: &Conn, cancel: &CancellationToken) -> Result<(), StoreError> {
        let pubsub = conn.client().get_async_pubsub().await.map_err(redis_error)?;
        let (mut sink, mut messages) = pubsub.split();
        self.up.send_replace(true);
        tracing::info!("cluster feed connected");
        // Everything followed, subscribed afresh, and read: it may have moved while we were away.
        self.fresh().clear();
        let mut subscribed: HashSet<DocId> = HashSet::new();
        let mut dirty: HashSet<DocId> = HashSet::new();
        let everything: Vec<DocId> = self.follows().keys().cloned().collect();
        self.subscribe(conn, &mut sink, everything, &mut subscribed, &mut dirty).await?;
        let mut sweep = tokio::time::interval(SWEEP);
        let mut heartbeat = tokio::time::interval(HEARTBEAT);
        loop {
            if !dirty.is_empty() {
                self.read(conn, &mut dirty).await?;
            }
            tokio::select! {
                message = messages.next() => {
                    let Some(message) = message else {
                        return Err(StoreError::Backend(Box::new(FeedClosed)));
                    };
                    dirty.extend(self.on_message(&message));
                    // Whatever else arrived meanwhile, before reading: one read for many bells.
                    for _ in 0..BATCH {
                        match messages.next().now_or_never() {
                            Some(Some(message)) => dirty.extend(self.on_message(&message)),
                            Some(None) => return Err(StoreError::Backend(Box::new(FeedClosed))),
                            None => break,
                        }
                    }
                }
                () = self.changed.notified() => {
                    let fresh = std::mem::take(&mut *self.fresh());
                    self.subscribe(conn, &mut sink, fresh, &mut subscribed, &mut dirty).await?;
                }
                _ = sweep.tick() => {
                    // Drop what nobody follows any more; read the rest (a lost doorbell).
                    let gone: Vec<String> = self
                        .prune()
                        .iter()
                        .filter(|doc| subscribed.remove(*doc))
                        .map(|doc| Keys::of(doc).channel)
                        .collect();
                    if !gone.is_empty() {
                        sink.unsubscribe(gone).await.map_err(redis_error)?;
                    }
                    dirty.extend(subscribed.iter().cloned());
                }
                _ = heartbeat.tick() => self.heartbeat(conn).await?,
                () = cancel.cancelled() => return Ok(()),
            }
        }
    }

    /// Subscribes `docs` (newly followed, or followed again after a reload), marks them to be
    /// read, and asks who is there.
    async fn subscribe(
        &self,
        conn: &Conn,
        sink: &mut redis::aio::PubSubSink,
        docs: Vec<DocId>,
        subscribed: &mut HashSet<DocId>,
        dirty: &mut HashSet<DocId>,
    ) -> Result<(), StoreError> {
        let channels: Vec<String> = docs.iter().filter(|doc| !subscribed.contains(*doc)).map(|doc| Keys::of(doc).channel).collect();
        for chunk in channels.chunks(PIPELINE) {
            sink.subscribe(chunk).await.map_err(redis_error)?;
        }
        if !docs.is_empty() {
            let mut pipe = redis::pipe();
            for doc in &docs {
                pipe.cmd("PUBLISH").arg(Keys::of(doc).channel).arg(message(QUERY, &self.process, &[])).ignore();
            }
            conn.pipe::<()>(&pipe).await?;
        }
        subscribed.extend(docs.iter().cloned());
        dirty.extend(docs);
        Ok(())
    }

    /// Drops the followers whose task is gone; returns their documents.
    fn prune(&self) -> Vec<DocId> {
        let mut follows = self.follows();
        let gone: Vec<DocId> = follows.iter().filter(|(_, f)| f.tx.is_closed()).map(|(d, _)| d.clone()).collect();
        for doc in &gone {
            follows.remove(doc);
        }
        gone
    }

    /// Handles a channel message; the document to read if it was a doorbell from elsewhere.
    fn on_message(&self, message: &redis::Msg) -> Option<DocId> {
        let doc = stream::doc_of_channel(message.get_channel_name())?;
        let payload = message.get_payload_bytes();
        let (&kind, rest) = payload.split_first()?;
        let rest = rest.strip_prefix(b":")?;
        let (origin, body) = match rest.iter().position(|&b| b == b':') {
            Some(at) => (&rest[..at], &rest[at + 1..]),
            None => (rest, &[][..]),
        };
        let origin = std::str::from_utf8(origin).ok()?;
        if origin == self.process {
            return None; // our own: its task has it already
        }
        match kind {
            BELL => Some(doc),
            PRESENCE | QUERY => {
                let mut follows = self.follows();
                let follower = follows.get_mut(&doc)?;
                let remote = if kind == PRESENCE {
                    follower.present.insert(origin.to_owned());
                    Remote::Presence { process: origin.to_owned(), update: body.to_vec() }
                } else {
                    Remote::PresenceQuery
                };
                // Presence is about now: if the task is that far behind, this one is dropped.
                let _ = follower.tx.try_send(remote);
                None
            }
            _ => None,
        }
    }

    /// Reads what the `dirty` documents' streams hold after their cursors and hands it over.
    /// A document stays dirty if it has more, or if its task could not take it yet.
    async fn read(&self, conn: &Conn, dirty: &mut HashSet<DocId>) -> Result<(), StoreError> {
        let docs: Vec<(DocId, Seq)> = {
            let follows = self.follows();
            dirty.drain().filter_map(|doc| follows.get(&doc).map(|f| (doc, f.cursor))).collect()
        };
        for chunk in docs.chunks(PIPELINE) {
            let mut pipe = redis::pipe();
            for (doc, cursor) in chunk {
                let keys = Keys::of(doc);
                pipe.cmd("GET").arg(&keys.trimmed);
                pipe.cmd("XRANGE")
                    .arg(&keys.log)
                    .arg(format!("({}", stream::id(*cursor)))
                    .arg("+")
                    .arg("COUNT")
                    .arg(BATCH);
            }
            let replies: Vec<(Option<String>, StreamRangeReply)> = conn.pipe(&pipe).await?;
            for ((doc, cursor), (trimmed, range)) in chunk.iter().zip(replies) {
                let more = range.ids.len() >= BATCH;
                let trimmed = stream::read_trimmed(trimmed)?;
                let outcome = if trimmed.is_some_and(|t| t > *cursor) {
                    // Entries after our cursor were folded and dropped: only the database has
                    // them now. Its task loads again and follows anew.
                    self.hand_over(doc, *cursor, Vec::new(), None, true)
                } else {
                    let entries = stream::read_range(range)?;
                    let upto = entries.last().map(|(seq, _)| *seq);
                    self.hand_over(doc, *cursor, entries, upto, false)
                };
                if more || !outcome {
                    dirty.insert(doc.clone());
                }
            }
        }
        Ok(())
    }

    /// Gives a document's task what was read after `from` (if it still follows from there).
    /// False if its queue was full: it is read again later.
    fn hand_over(&self, doc: &DocId, from: Seq, entries: Vec<(Seq, Entry)>, upto: Option<Seq>, reload: bool) -> bool {
        let mut follows = self.follows();
        let Some(follower) = follows.get_mut(doc) else { return true };
        if follower.cursor != from {
            return true; // it followed again meanwhile, from elsewhere: read again
        }
        let remote = if reload {
            Remote::Reload
        } else {
            let Some(upto) = upto else { return true };
            let now = crate::store::cluster::now_ms();
            let mut ours = Vec::with_capacity(entries.len());
            for (seq, entry) in entries {
                ours.push(match entry {
                    // Its task applied it before appending it.
                    Entry::Update { origin, .. } if origin == self.process => continue,
                    Entry::Update { update, .. } => {
                        self.metrics.stream_lag.observe(now.saturating_sub(stream::millis(seq)) as f64 / 1000.0);
                        Change::Update(update)
                    }
                    Entry::Deleted => Change::Deleted,
                    Entry::Revoked(link) => Change::Revoked(link),
                });
            }
            Remote::Log { changes: ours, upto }
        };
        match follower.tx.try_send(remote) {
            Ok(()) => {
                if let Some(upto) = upto {
                    follower.cursor = upto;
                }
                true
            }
            Err(mpsc::error::TrySendError::Full(_)) => false,
            Err(mpsc::error::TrySendError::Closed(_)) => true,
        }
    }

    /// Refreshes this process's heartbeat; tells documents that had presence from a process
    /// whose heartbeat expired that its clients are gone.
    async fn heartbeat(&self, conn: &Conn) -> Result<(), StoreError> {
        let mut pipe = redis::pipe();
        pipe.cmd("SET")
            .arg(key_of_heartbeat(&self.process))
            .arg(1)
            .arg("PX")
            .arg(HEARTBEAT_TTL.as_millis() as u64)
            .ignore();
        let others: Vec<String> = {
            let follows = self.follows();
            let all: HashSet<&String> = follows.values().flat_map(|f| &f.present).collect();
            all.into_iter().cloned().collect()
        };
        for other in &others {
            pipe.cmd("EXISTS").arg(key_of_heartbeat(other));
        }
        let alive: Vec<bool> = conn.pipe(&pipe).await?;
        let gone: Vec<&String> = others.iter().zip(alive).filter(|(_, alive)| !alive).map(|(p, _)| p).collect();
        if gone.is_empty() {
            return Ok(());
        }
        let mut follows = self.follows();
        for process in gone {
            tracing::info!(%process, "a quire process stopped answering; removing its clients' presence");
            for follower in follows.values_mut() {
                if follower.present.remove(process) {
                    // Dropped if the task is that far behind: the clients' own timeouts then
                    // clear them (30 s).
                    let _ = follower.tx.try_send(Remote::ProcessGone(process.clone()));
                }
            }
        }
        Ok(())
    }
}

/// A channel message of `kind` from `process`.
pub fn message(kind: u8, process: &str, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(process.len() + body.len() + 3);
    out.push(kind);
    out.push(b':');
    out.extend_from_slice(process.as_bytes());
    if kind == PRESENCE {
        out.push(b':');
        out.extend_from_slice(body);
    }
    out
}

pub fn bell(process: &str) -> Vec<u8> {
    message(BELL, process, &[])
}

pub fn presence(process: &str, update: &[u8]) -> Vec<u8> {
    message(PRESENCE, process, update)
}

#[derive(Debug, thiserror::Error)]
#[error("the pub/sub connection to redis closed")]
struct FeedClosed;

#[derive(Debug, thiserror::Error)]
#[error("the pub/sub connection to redis did not open within {0:?}")]
pub struct FeedNotConnected(pub Duration);
