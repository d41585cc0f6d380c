//! PostgreSQL: what the cluster keeps of each document besides its recent changes (which are in
//! its Redis stream): the folded snapshot and the stream position it covers, metadata,
//! deletions and stale states, share links.
//!
//! A snapshot is written only with a fencing token newer than the one it replaces, so a process
//! that lost its fold lease while paused can never put an older snapshot over a newer one.
//!
//! Layouts: 1, the documents and links; 2 adds version history ([`HISTORY`], queried in
//! `history.rs`).

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use quire_model::DocId;
use tokio::sync::Mutex;
use tokio_postgres::{Client, NoTls};

use super::stream;
use crate::store::{DocMeta, Page, Seq, StoreError};

/// The layout this quire writes; recorded in `quire_layout`, checked and migrated at start.
const LAYOUT: i32 = 2;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS quire_layout (version integer NOT NULL);
CREATE TABLE IF NOT EXISTS quire_docs (
    id            text PRIMARY KEY,
    snapshot      bytea,
    stream_pos    text,
    fence         bigint NOT NULL DEFAULT 0,
    meta          jsonb,
    updated_ms    bigint,
    deleted_ms    bigint,
    deleted_state bytea,
    stale         bytea
);
CREATE INDEX IF NOT EXISTS quire_docs_by_updated ON quire_docs (updated_ms DESC, id)
    WHERE meta IS NOT NULL AND deleted_ms IS NULL;
CREATE TABLE IF NOT EXISTS quire_links (
    doc    text NOT NULL,
    id     text NOT NULL,
    record bytea NOT NULL,
    PRIMARY KEY (doc, id)
);
";

/// Layout 2: versions (a record, JSON, and the packed state) and who wrote under which Yjs
/// client id. Client ids are 53-bit (Yjs's), so they fit a bigint.
const HISTORY: &str = "
CREATE TABLE IF NOT EXISTS quire_versions (
    doc    text NOT NULL,
    id     bigint NOT NULL,
    record jsonb NOT NULL,
    state  bytea NOT NULL,
    PRIMARY KEY (doc, id)
);
CREATE TABLE IF NOT EXISTS quire_authors (
    doc    text NOT NULL,
    client bigint NOT NULL,
    author jsonb NOT NULL,
    PRIMARY KEY (doc, client)
);
";

/// A document's row: the snapshot and the stream position it covers.
#[derive(Debug, Default)]
pub struct Row {
    pub snapshot: Option<Vec<u8>>,
    pub stream_pos: Option<Seq>,
    pub meta: Option<DocMeta>,
    pub deleted: bool,
    pub stale: Option<Vec<u8>>,
}

/// How long a query (or making the connection) may take before the database counts as
/// unreachable.
const TIMEOUT: Duration = Duration::from_secs(2);

/// One connection, made again when it breaks. (A document task's queries are few and short: a
/// load, a fold now and then, metadata every couple of seconds; a pool would buy little.)
///
/// While the database is unreachable every call fails at once, without waiting for a timeout:
/// the document tasks that call it keep serving edits. The health check ([`ping`](Self::ping))
/// notices when it is back.
pub struct Postgres {
    config: tokio_postgres::Config,
    client: Mutex<Option<Arc<Client>>>,
    up: AtomicBool,
}

fn db(e: tokio_postgres::Error) -> StoreError {
    StoreError::Backend(Box::new(e))
}

#[derive(Debug, thiserror::Error)]
enum Unreachable {
    #[error("postgresql did not answer within {0:?}")]
    Timeout(Duration),
    #[error("postgresql was unreachable a moment ago")]
    Down,
}

/// Any number that no other user of the database takes as an advisory lock.
const MIGRATION_LOCK: i64 = 0x7175_6972_6500;

async fn migrate(client: &mut Client) -> Result<(), StoreError> {
    let tx = client.transaction().await.map_err(db)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK]).await.map_err(db)?;
    tx.batch_execute(SCHEMA).await.map_err(db)?;
    let version: Option<i32> = tx
        .query_one("SELECT max(version) FROM quire_layout", &[])
        .await
        .map_err(db)?
        .get(0);
    match version {
        None => {
            tx.batch_execute(HISTORY).await.map_err(db)?;
            tx.execute("INSERT INTO quire_layout (version) VALUES ($1)", &[&LAYOUT]).await.map_err(db)?;
        }
        Some(found) if found > LAYOUT => {
            return Err(StoreError::Corrupt(format!(
                "the database was written by a later quire (layout {found}; this one reads up to {LAYOUT})"
            )));
        }
        Some(found) if found < LAYOUT => {
            tracing::info!(from = found, to = LAYOUT, "migrating the database's layout");
            // 1 → 2: the history tables, empty (a document's first version is taken when it is
            // next opened). An older quire then refuses the database instead of deleting
            // documents and leaving their versions behind.
            tx.batch_execute(HISTORY).await.map_err(db)?;
            tx.execute("UPDATE quire_layout SET version = $1", &[&LAYOUT]).await.map_err(db)?;
        }
        Some(_) => {}
    }
    tx.commit().await.map_err(db)
}

impl Postgres {
    /// Connects and brings the schema to [`LAYOUT`]: one process at a time (processes of a
    /// cluster start together), in one transaction.
    pub async fn open(url: &str) -> Result<Postgres, StoreError> {
        let mut config: tokio_postgres::Config = url.parse().map_err(db)?;
        config.connect_timeout(TIMEOUT);
        let pg = Postgres {
            config,
            client: Mutex::new(None),
            up: AtomicBool::new(true),
        };
        let (mut client, connection) = pg.config.connect(NoTls).await.map_err(db)?;
        let connection = tokio::spawn(connection);
        let migrated = migrate(&mut client).await;
        drop(client);
        let _ = connection.await;
        migrated?;
        Ok(pg)
    }

    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }

    /// The connection, made (again) if there is none or it broke.
    async fn client(&self) -> Result<Arc<Client>, tokio_postgres::Error> {
        let mut slot = self.client.lock().await;
        if let Some(client) = slot.as_ref().filter(|c| !c.is_closed()) {
            return Ok(client.clone());
        }
        let (client, connection) = self.config.connect(NoTls).await?;
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::warn!(%error, "the database connection ended");
            }
        });
        let client = Arc::new(client);
        *slot = Some(client.clone());
        Ok(client)
    }

    /// Runs `query` on the connection within [`TIMEOUT`]; fails at once while the database is
    /// known to be unreachable.
    pub(super) async fn with<T, F, Fut>(&self, query: F) -> Result<T, StoreError>
    where
        F: FnOnce(Arc<Client>) -> Fut,
        Fut: Future<Output = Result<T, tokio_postgres::Error>>,
    {
        if !self.is_up() {
            return Err(StoreError::Backend(Box::new(Unreachable::Down)));
        }
        self.attempt(query).await
    }

    async fn attempt<T, F, Fut>(&self, query: F) -> Result<T, StoreError>
    where
        F: FnOnce(Arc<Client>) -> Fut,
        Fut: Future<Output = Result<T, tokio_postgres::Error>>,
    {
        let result = tokio::time::timeout(TIMEOUT, async { query(self.client().await?).await }).await;
        match result {
            Ok(Ok(value)) => Ok(value),
            // An error the database itself answered (a constraint, a syntax error): it is up.
            Ok(Err(error)) if error.as_db_error().is_some() => Err(db(error)),
            Ok(Err(error)) => {
                self.went_down().await;
                Err(db(error))
            }
            Err(_) => {
                self.went_down().await;
                Err(StoreError::Backend(Box::new(Unreachable::Timeout(TIMEOUT))))
            }
        }
    }

    async fn went_down(&self) {
        self.up.store(false, Ordering::Relaxed);
        *self.client.lock().await = None;
    }

    pub async fn row(&self, doc: &DocId) -> Result<Row, StoreError> {
        let found = self
            .with(|client| async move {
                client
                    .query_opt(
                        "SELECT snapshot, stream_pos, meta, deleted_ms, stale FROM quire_docs WHERE id = $1",
                        &[&doc.as_str()],
                    )
                    .await
            })
            .await?;
        let Some(row) = found else { return Ok(Row::default()) };
        let meta: Option<serde_json::Value> = row.get(2);
        let pos: Option<String> = row.get(1);
        Ok(Row {
            snapshot: row.get(0),
            stream_pos: pos.as_deref().map(stream::parse_id).transpose()?,
            meta: meta.map(serde_json::from_value).transpose().map_err(|e| StoreError::Backend(Box::new(e)))?,
            deleted: row.get::<_, Option<i64>>(3).is_some(),
            stale: row.get(4),
        })
    }

    /// Where the stored snapshot is in the stream (none: nothing folded yet).
    pub async fn stream_pos(&self, doc: &DocId) -> Result<Option<Seq>, StoreError> {
        let row = self
            .with(|client| async move {
                client.query_opt("SELECT stream_pos FROM quire_docs WHERE id = $1", &[&doc.as_str()]).await
            })
            .await?;
        let pos: Option<String> = row.and_then(|row| row.get(0));
        pos.as_deref().map(stream::parse_id).transpose()
    }

    /// Writes a snapshot covering the stream up to `pos`, if `fence` is newer than the one of
    /// the snapshot there. Whether it was written.
    pub async fn write_snapshot(&self, doc: &DocId, snapshot: &[u8], pos: Seq, fence: i64) -> Result<bool, StoreError> {
        let pos = stream::id(pos);
        let written = self
            .with(|client| async move {
                client
                    .execute(
                        "INSERT INTO quire_docs (id, snapshot, stream_pos, fence) VALUES ($1, $2, $3, $4)
                         ON CONFLICT (id) DO UPDATE
                             SET snapshot = EXCLUDED.snapshot, stream_pos = EXCLUDED.stream_pos, fence = EXCLUDED.fence
                             WHERE quire_docs.fence < EXCLUDED.fence",
                        &[&doc.as_str(), &snapshot, &pos, &fence],
                    )
                    .await
            })
            .await?;
        Ok(written == 1)
    }

    pub async fn put_meta(&self, doc: &DocId, meta: &DocMeta) -> Result<(), StoreError> {
        let json = serde_json::to_value(meta).map_err(|e| StoreError::Backend(Box::new(e)))?;
        let updated = meta.updated_ms as i64;
        self.with(|client| async move {
            client
                .execute(
                    "INSERT INTO quire_docs (id, meta, updated_ms) VALUES ($1, $2, $3)
                     ON CONFLICT (id) DO UPDATE SET meta = EXCLUDED.meta, updated_ms = EXCLUDED.updated_ms",
                    &[&doc.as_str(), &json, &updated],
                )
                .await
        })
        .await
        .map(drop)
    }

    /// Marks the document deleted, its content and history gone, and later loads starting after
    /// `pos` (the deletion's own entry in its stream: what came before belongs to the deleted
    /// document). `fence` is a token taken for the deletion: a fold begun before it can no
    /// longer write. One statement: its parts happen together or not at all.
    pub async fn delete(&self, doc: &DocId, state: &[u8], pos: Seq, fence: i64, now_ms: i64) -> Result<(), StoreError> {
        let pos = stream::id(pos);
        self.with(|client| async move {
            client
                .execute(
                    "WITH versions AS (DELETE FROM quire_versions WHERE doc = $1),
                          authors AS (DELETE FROM quire_authors WHERE doc = $1)
                     INSERT INTO quire_docs (id, stream_pos, fence, deleted_ms, deleted_state) VALUES ($1, $2, $3, $4, $5)
                     ON CONFLICT (id) DO UPDATE SET snapshot = NULL, meta = NULL, updated_ms = NULL, stale = NULL,
                         stream_pos = EXCLUDED.stream_pos, fence = GREATEST(quire_docs.fence, EXCLUDED.fence),
                         deleted_ms = EXCLUDED.deleted_ms, deleted_state = EXCLUDED.deleted_state",
                    &[&doc.as_str(), &pos, &fence, &now_ms, &state],
                )
                .await
        })
        .await
        .map(drop)
    }

    /// The id is being created again; history left under it (a version another process was
    /// still writing during the deletion) goes.
    pub async fn undelete(&self, doc: &DocId) -> Result<(), StoreError> {
        self.with(|client| async move {
            client
                .execute(
                    "WITH versions AS (DELETE FROM quire_versions WHERE doc = $1),
                          authors AS (DELETE FROM quire_authors WHERE doc = $1)
                     UPDATE quire_docs SET stale = deleted_state, deleted_ms = NULL, deleted_state = NULL
                     WHERE id = $1 AND deleted_ms IS NOT NULL",
                    &[&doc.as_str()],
                )
                .await
        })
        .await
        .map(drop)
    }

    pub async fn list(&self, offset: usize, limit: usize) -> Result<Page, StoreError> {
        let (limit, offset) = (limit.min(i64::MAX as usize) as i64, offset.min(i64::MAX as usize) as i64);
        let (total, rows) = self
            .with(|client| async move {
                let total: i64 = client
                    .query_one("SELECT count(*) FROM quire_docs WHERE meta IS NOT NULL AND deleted_ms IS NULL", &[])
                    .await?
                    .get(0);
                let rows = client
                    .query(
                        "SELECT id, meta FROM quire_docs WHERE meta IS NOT NULL AND deleted_ms IS NULL
                         ORDER BY updated_ms DESC, id LIMIT $1 OFFSET $2",
                        &[&limit, &offset],
                    )
                    .await?;
                Ok((total, rows))
            })
            .await?;
        let mut docs = Vec::with_capacity(rows.len());
        for row in rows {
            let id: String = row.get(0);
            let id = DocId::parse(&id).map_err(|_| StoreError::Corrupt(format!("a listed id is not a document id: {id}")))?;
            let meta: serde_json::Value = row.get(1);
            docs.push((id, serde_json::from_value(meta).map_err(|e| StoreError::Backend(Box::new(e)))?));
        }
        Ok(Page { docs, total: total as u64 })
    }

    pub async fn put_link(&self, doc: &DocId, link: &str, record: &[u8]) -> Result<(), StoreError> {
        self.with(|client| async move {
            client
                .execute(
                    "INSERT INTO quire_links (doc, id, record) VALUES ($1, $2, $3)
                     ON CONFLICT (doc, id) DO UPDATE SET record = EXCLUDED.record",
                    &[&doc.as_str(), &link, &record],
                )
                .await
        })
        .await
        .map(drop)
    }

    pub async fn remove_link(&self, doc: &DocId, link: &str) -> Result<bool, StoreError> {
        let removed = self
            .with(|client| async move {
                client.execute("DELETE FROM quire_links WHERE doc = $1 AND id = $2", &[&doc.as_str(), &link]).await
            })
            .await?;
        Ok(removed == 1)
    }

    /// Every link, or those of one document.
    pub async fn links(&self, of: Option<&DocId>) -> Result<Vec<(DocId, String, Vec<u8>)>, StoreError> {
        let rows = self
            .with(|client| async move {
                match of {
                    None => client.query("SELECT doc, id, record FROM quire_links", &[]).await,
                    Some(doc) => client.query("SELECT doc, id, record FROM quire_links WHERE doc = $1", &[&doc.as_str()]).await,
                }
            })
            .await?;
        rows.into_iter()
            .map(|row| {
                let doc: String = row.get(0);
                let doc = DocId::parse(&doc).map_err(|_| StoreError::Corrupt("a link's document id is damaged".into()))?;
                Ok((doc, row.get(1), row.get(2)))
            })
            .collect()
    }

    pub async fn link(&self, doc: &DocId, link: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let row = self
            .with(|client| async move {
                client
                    .query_opt("SELECT record FROM quire_links WHERE doc = $1 AND id = $2", &[&doc.as_str(), &link])
                    .await
            })
            .await?;
        Ok(row.map(|row| row.get(0)))
    }

    /// Whether the database answers; the one call tried while it is known to be down.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.attempt(|client| async move { client.simple_query("SELECT 1").await.map(drop) }).await?;
        self.up.store(true, Ordering::Relaxed);
        Ok(())
    }
}
