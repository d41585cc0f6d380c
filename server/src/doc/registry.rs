//! Document id → live document task.
//!
//! The map's lock (std `Mutex`, never held across `.await`) guards only the map. Spawning
//! happens under it, so two first opens of one document cannot start two tasks. A task removes
//! itself under the same lock, and only when its queue is empty, so a connection either reaches
//! the old task or finds it gone and starts a new one — which loads only after the old task's
//! last write (it writes before it retires).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use quire_model::DocId;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::actor;
use super::handle::{ApiRequest, ApiReply, Command, DocHandle, JoinError};
use super::ConnId;
use crate::auth::Access;
use crate::config::Config;
use crate::error::DocError;
use crate::metrics::Metrics;
use crate::store::flusher::FlushHandle;
use crate::store::Store;
use crate::ws::outbox::Outbox;

/// How often a join is retried when it meets a task that is retiring. Each retry finds either
/// the same document reloaded or a fresh task, so more than a couple means something is wrong.
const JOIN_ATTEMPTS: usize = 8;

/// Everything a document task needs from the server.
pub struct DocContext {
    pub store: Arc<dyn Store>,
    pub flusher: FlushHandle,
    pub metrics: Arc<Metrics>,
    pub config: Arc<Config>,
    /// Cancelled at shutdown: every task persists and exits.
    pub shutdown: CancellationToken,
    pub tracker: TaskTracker,
}

struct Entry {
    handle: DocHandle,
    generation: u64,
}

#[derive(Clone)]
pub struct Registry {
    inner: Arc<Inner>,
}

struct Inner {
    docs: Mutex<HashMap<DocId, Entry>>,
    next_generation: AtomicU64,
    context: DocContext,
}

impl Registry {
    pub fn new(context: DocContext) -> Self {
        Registry {
            inner: Arc::new(Inner {
                docs: Mutex::new(HashMap::new()),
                next_generation: AtomicU64::new(1),
                context,
            }),
        }
    }

    pub fn context(&self) -> &DocContext {
        &self.inner.context
    }

    fn docs(&self) -> MutexGuard<'_, HashMap<DocId, Entry>> {
        // The map stays consistent even if a holder panicked: every critical section is a
        // single insert, get or remove.
        self.inner.docs.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Subscribes `conn` to the document, loading it if needed. Returns once the document has
    /// sent the connection its first messages.
    pub async fn join(
        &self,
        id: &DocId,
        conn: ConnId,
        access: Access,
        outbox: &Outbox,
    ) -> Result<DocHandle, DocError> {
        for _ in 0..JOIN_ATTEMPTS {
            let handle = self.get_or_spawn(id);
            match handle.join(conn, access, outbox.clone()).await {
                Ok(()) => return Ok(handle),
                Err(JoinError::Doc(e)) => return Err(e),
                Err(JoinError::Retry) => continue,
            }
        }
        Err(DocError::Gone)
    }

    /// Serves one API request on the document's task (loading it if needed).
    pub async fn request(&self, id: &DocId, request: ApiRequest) -> Result<ApiReply, DocError> {
        // A request that meets a retiring task (which drops what is queued, unanswered) is sent
        // again to the next one.
        for _ in 0..JOIN_ATTEMPTS {
            let handle = self.get_or_spawn(id);
            match handle.request(request.clone()).await {
                Ok(reply) => return Ok(reply),
                Err(JoinError::Doc(e)) => return Err(e),
                Err(JoinError::Retry) => continue,
            }
        }
        Err(DocError::Gone)
    }

    /// The live task for `id`, spawning one if there is none.
    pub fn get_or_spawn(&self, id: &DocId) -> DocHandle {
        let mut docs = self.docs();
        if let Some(entry) = docs.get(id) {
            if !entry.handle.is_closed() {
                return entry.handle.clone();
            }
        }
        let context = &self.inner.context;
        let (tx, rx) = mpsc::channel(context.config.doc_channel_capacity);
        let handle = DocHandle::new(tx);
        let generation = self.inner.next_generation.fetch_add(1, Ordering::Relaxed);
        docs.insert(
            id.clone(),
            Entry {
                handle: handle.clone(),
                generation,
            },
        );
        context
            .tracker
            .spawn(actor::run(id.clone(), generation, rx, self.clone()));
        handle
    }

    /// Removes the task `generation` of `id` from the map and closes its queue, unless the
    /// queue still holds work (`only_if_idle`). Returns whether it retired. After this, new
    /// callers get a new task; the caller must drain what is left in `rx`.
    pub(super) fn retire(
        &self,
        id: &DocId,
        generation: u64,
        rx: &mut mpsc::Receiver<Command>,
        only_if_idle: bool,
    ) -> bool {
        let mut docs = self.docs();
        if only_if_idle && !rx.is_empty() {
            return false;
        }
        if docs.get(id).is_some_and(|e| e.generation == generation) {
            docs.remove(id);
        }
        rx.close();
        true
    }
}
