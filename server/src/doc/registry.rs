//! The documents, as the rest of the server sees them: find or start a document's task, join
//! it, and ask it the HTTP API's questions, each with its own typed answer.

use std::sync::Arc;

use bytes::Bytes;
use quire_model::convert::Format;
use quire_model::DocId;
use yrs::StateVector;

use super::context::DocContext;
use super::handle::{Command, DocHandle, Reply, Request, SendError};
use super::history::{self, Against, Compared, VersionView};
use super::slot::Slots;
use super::{actor, ConnId, Restored};
use crate::auth::Grant;
use crate::error::DocError;
use crate::store::flusher::Ticket;
use crate::store::history::{Author, VersionRecord};
use crate::store::{DocMeta, Health, Page};
use crate::ws::outbox::Outbox;

/// Whether a request is about an existing document or creates one.
#[derive(Clone, Copy, PartialEq, Eq)]
enum About {
    Existing,
    New,
}
use About::{Existing, New};

/// How often a command is retried when it meets a task that is retiring. Each retry finds
/// either the same document reloaded or a fresh task, so more than a couple means something
/// is wrong.
const ATTEMPTS: usize = 8;

#[derive(Clone)]
pub struct Registry {
    slots: Arc<Slots>,
    context: Arc<DocContext>,
}

impl Registry {
    pub fn new(context: DocContext) -> Self {
        Registry {
            slots: Arc::default(),
            context: Arc::new(context),
        }
    }

    /// Subscribes `conn` to the document, loading it if needed. Returns once the document has
    /// sent the connection its first messages.
    pub async fn join(
        &self,
        id: &DocId,
        conn: ConnId,
        grant: Grant,
        outbox: &Outbox,
    ) -> Result<DocHandle, DocError> {
        for _ in 0..ATTEMPTS {
            let handle = self.get_or_spawn(id)?;
            let joined = handle
                .call(|reply| Command::Join {
                    conn,
                    grant: grant.clone(),
                    outbox: outbox.clone(),
                    reply,
                })
                .await;
            match joined {
                Ok(()) => return Ok(handle),
                Err(SendError::Doc(e)) => return Err(e),
                Err(SendError::Retry) => continue,
            }
        }
        Err(DocError::Gone)
    }

    /// The document's metadata.
    pub async fn meta(&self, id: &DocId) -> Result<DocMeta, DocError> {
        self.request(id, Existing, Request::Meta).await
    }

    /// Creates the document, with a title and a body if given. Returns once it is on disk.
    pub async fn create(
        &self,
        id: &DocId,
        title: Option<String>,
        content: Option<(Format, Arc<str>)>,
    ) -> Result<DocMeta, DocError> {
        let (meta, ticket) = self
            .request(id, New, |reply| Request::Create {
                title: title.clone(),
                content: content.clone(),
                reply,
            })
            .await?;
        self.saved(ticket).await?;
        Ok(meta)
    }

    /// The body in a text format.
    pub async fn export(&self, id: &DocId, format: Format) -> Result<String, DocError> {
        self.request(id, Existing, |reply| Request::Export { format, reply }).await
    }

    /// The state as a Yjs update (v1, or v2), only what `since` lacks.
    pub async fn export_yjs(&self, id: &DocId, v2: bool, since: &StateVector) -> Result<Vec<u8>, DocError> {
        self.request(id, Existing, |reply| Request::ExportYjs {
            v2,
            since: since.clone(),
            reply,
        })
        .await
    }

    /// Replaces the body with `input` read as `format`. Returns once the change is on disk.
    pub async fn replace(&self, id: &DocId, format: Format, input: Arc<str>) -> Result<(), DocError> {
        let ticket = self
            .request(id, Existing, |reply| Request::Replace {
                format,
                input: input.clone(),
                reply,
            })
            .await?;
        self.saved(ticket).await
    }

    /// Merges a v1 Yjs update. Returns once it is on disk.
    pub async fn apply_update(&self, id: &DocId, update: Bytes) -> Result<(), DocError> {
        let ticket = self
            .request(id, Existing, |reply| Request::ApplyUpdate {
                update: update.clone(),
                reply,
            })
            .await?;
        self.saved(ticket).await
    }

    /// Disconnects everyone from the document and removes it. Returns once that is on disk.
    pub async fn delete(&self, id: &DocId) -> Result<(), DocError> {
        let ticket = self.request(id, Existing, Request::Delete).await?;
        self.saved(ticket).await
    }

    /// One page of the document's versions, newest first, with their editors named. Read from
    /// the store: browsing history does not load the document.
    pub async fn versions(&self, id: &DocId, offset: usize, limit: usize) -> Result<(Vec<VersionView>, u64), DocError> {
        self.must_exist(id).await?;
        history::list(&self.context, id, offset, limit).await
    }

    /// A version of the document as it is now, named (the newest version, if nothing changed
    /// since it and it has no name). Returns once it is written.
    pub async fn name_version(&self, id: &DocId, name: String) -> Result<VersionRecord, DocError> {
        self.request(id, Existing, |reply| Request::NameVersion { name: name.clone(), reply }).await
    }

    pub async fn rename_version(&self, id: &DocId, version: u64, name: Option<String>) -> Result<VersionRecord, DocError> {
        self.request(id, Existing, |reply| Request::RenameVersion { id: version, name: name.clone(), reply }).await
    }

    pub async fn delete_version(&self, id: &DocId, version: u64) -> Result<(), DocError> {
        self.request(id, Existing, |reply| Request::DeleteVersion { id: version, reply }).await
    }

    /// Restores a version as an edit everyone connected sees; returns once the version after
    /// it is written.
    pub async fn restore(&self, id: &DocId, version: u64, by: Option<Author>) -> Result<Restored, DocError> {
        self.request(id, Existing, |reply| Request::Restore { id: version, by: by.clone(), reply }).await
    }

    /// A version's body in a text format.
    pub async fn export_version(&self, id: &DocId, version: u64, format: Format) -> Result<String, DocError> {
        self.must_exist(id).await?;
        history::export_version(&self.context, id, version, format).await
    }

    /// A version's state as a Yjs update (v1, or v2).
    pub async fn version_yjs(&self, id: &DocId, version: u64, v2: bool) -> Result<Vec<u8>, DocError> {
        self.must_exist(id).await?;
        history::version_update(&self.context, id, version, v2).await
    }

    /// Version `version` compared with `against`, each change with its author.
    pub async fn compare(&self, id: &DocId, version: u64, against: Against) -> Result<Compared, DocError> {
        self.must_exist(id).await?;
        history::compare_versions(&self.context, id, version, against).await
    }

    /// A version with its editors named.
    pub async fn describe(&self, id: &DocId, record: VersionRecord) -> Result<VersionView, DocError> {
        history::view(&self.context, id, record).await
    }

    async fn must_exist(&self, id: &DocId) -> Result<(), DocError> {
        if self.slots.get(id).is_some() || self.exists(id).await? {
            Ok(())
        } else {
            Err(DocError::NotFound)
        }
    }

    /// Waits until everything up to `ticket` is on disk: a reply says "saved" only then.
    async fn saved(&self, ticket: Ticket) -> Result<(), DocError> {
        self.context.flusher.durable(ticket).await.map_err(|_| DocError::NotSaved)
    }

    /// One page of the documents, newest change first: `limit` after skipping `offset`.
    pub async fn list(&self, offset: usize, limit: usize) -> Result<Page, DocError> {
        Ok(self.context.store.list(offset, limit).await?)
    }

    /// Closes, at once, every connection to `id` that came in with share link `link` (just
    /// removed).
    pub async fn revoke(&self, id: &DocId, link: &str) {
        if let Some(handle) = self.slots.get(id) {
            handle.revoke(link).await;
        }
        // And on every other process that holds the document (a shared store). Should that
        // fail, the link is still refused everywhere within a second; only sockets already
        // open on other processes stay until they reconnect.
        if let Err(error) = self.context.store.announce_revoked(id, link).await {
            tracing::error!(doc = %id, link, error = %crate::error::chain(&error), "could not tell the other processes that a link was removed");
        }
    }

    /// The store backend's own health: whether the services it needs answer (a cluster's Redis
    /// and PostgreSQL). Failing flushes are the documents' to handle (they close with 4507).
    pub fn backend_health(&self) -> Health {
        self.context.store.health()
    }

    /// Whether the store can take and keep edits now: its own health (a cluster's services),
    /// and whether flushes succeed.
    pub fn store_health(&self) -> Health {
        match self.backend_health() {
            Health::Ok if !self.context.flusher.healthy() => Health::Down("flushes to disk are failing"),
            health => health,
        }
    }

    /// Serves one API request on the document's task (loading it if needed). A request that
    /// meets a retiring task (which drops what is queued, unanswered) is sent again to the next
    /// one, so `make` may be called more than once.
    async fn request<T>(&self, id: &DocId, about: About, make: impl Fn(Reply<T>) -> Request) -> Result<T, DocError> {
        for _ in 0..ATTEMPTS {
            let handle = match self.slots.get(id) {
                Some(handle) => handle,
                // Asking about a document that does not exist must not load it: a loop of such
                // questions would fill memory with empty tasks.
                None if about == Existing && !self.exists(id).await? => return Err(DocError::NotFound),
                None => self.get_or_spawn(id)?,
            };
            match handle.call(|reply| Command::Request(make(reply))).await {
                Ok(value) => return Ok(value),
                Err(SendError::Doc(e)) => return Err(e),
                Err(SendError::Retry) => continue,
            }
        }
        Err(DocError::Gone)
    }

    /// Whether the store holds anything for `id`.
    async fn exists(&self, id: &DocId) -> Result<bool, DocError> {
        Ok(self.context.store.exists(id).await?)
    }

    /// The live task for `id`, spawning one if there is none and the server has room for it.
    fn get_or_spawn(&self, id: &DocId) -> Result<DocHandle, DocError> {
        let context = &self.context;
        let config = &context.shared.config;
        self.slots
            .get_or_spawn(id, (config.doc_channel_capacity, config.doc_queue_bytes), config.max_live_docs, |spawn| {
                context.shared.tracker.spawn(actor::run(spawn, context.clone()));
            })
            .ok_or_else(|| {
                context.shared.metrics.documents_refused.inc();
                DocError::TooManyDocuments
            })
    }
}
