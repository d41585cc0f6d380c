//! The handle to a live document task: a cheap `Clone` over its bounded command channel, and
//! the commands it carries. Each request carries its own typed reply channel.

use std::sync::Arc;

use bytes::Bytes;
use quire_model::convert::Format;
use quire_model::protocol::Inbound;
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit, Semaphore};
use yrs::StateVector;

use super::{ConnId, Restored};
use crate::auth::Grant;
use crate::error::DocError;
use crate::store::flusher::Ticket;
use crate::store::history::{Author, VersionRecord};
use crate::store::DocMeta;
use crate::ws::outbox::Outbox;

/// Where a document task sends the answer to one request.
pub type Reply<T> = oneshot::Sender<Result<T, DocError>>;

/// What a document task can be asked to do.
pub enum Command {
    /// Subscribe a connection. The task answers once the document is loaded (or failed to).
    Join {
        conn: ConnId,
        grant: Grant,
        outbox: Outbox,
        reply: Reply<()>,
    },
    /// Messages one connection sent in one frame of `bytes`, already decoded and validated;
    /// they hold their share of the task's queue budget until handled.
    Inbound {
        conn: ConnId,
        messages: Vec<Inbound>,
        bytes: usize,
        queued: OwnedSemaphorePermit,
    },
    /// The connection is gone (on every exit path: see the connection's guard).
    Leave { conn: ConnId },
    /// Share link `link` was removed: close everyone who came in with it.
    Revoke { link: String },
    /// A request from the HTTP API.
    Request(Request),
}

/// What the HTTP API can ask of a document, each with its reply. Served by the document task
/// in order with the edits of connected clients, so an import is an ordinary edit everyone
/// sees live.
pub enum Request {
    /// The metadata of an existing document.
    Meta(Reply<DocMeta>),
    /// Creates the document; fails if it exists. Saved once the ticket is durable.
    Create {
        title: Option<String>,
        content: Option<(Format, Arc<str>)>,
        reply: Reply<(DocMeta, Ticket)>,
    },
    /// The body in a text format.
    Export { format: Format, reply: Reply<String> },
    /// The state as a Yjs update: v1 or v2, only what `since` lacks.
    ExportYjs {
        v2: bool,
        since: StateVector,
        reply: Reply<Vec<u8>>,
    },
    /// Replaces the body with an import. Saved once the ticket is durable.
    Replace {
        format: Format,
        input: Arc<str>,
        reply: Reply<Ticket>,
    },
    /// Merges a v1 Yjs update. Saved once the ticket is durable.
    ApplyUpdate { update: Bytes, reply: Reply<Ticket> },
    /// Disconnects everyone and removes the document from disk, for good once the ticket is
    /// durable.
    Delete(Reply<Ticket>),
    /// A named version of the document as it is now (answered once it is written).
    NameVersion { name: String, reply: Reply<VersionRecord> },
    /// Names a version, or takes its name away.
    RenameVersion {
        id: u64,
        name: Option<String>,
        reply: Reply<VersionRecord>,
    },
    DeleteVersion { id: u64, reply: Reply<()> },
    /// Restores a version, as an edit by `by` (answered once the version after it is written).
    Restore {
        id: u64,
        by: Option<Author>,
        reply: Reply<Restored>,
    },
}

impl Request {
    /// The task is gone or failed: tell the asker, whatever the request.
    pub(super) fn refuse(self, error: DocError) {
        match self {
            Request::Meta(reply) => drop(reply.send(Err(error))),
            Request::Create { reply, .. } => drop(reply.send(Err(error))),
            Request::Export { reply, .. } => drop(reply.send(Err(error))),
            Request::ExportYjs { reply, .. } => drop(reply.send(Err(error))),
            Request::Replace { reply, .. } | Request::ApplyUpdate { reply, .. } | Request::Delete(reply) => {
                drop(reply.send(Err(error)))
            }
            Request::NameVersion { reply, .. } | Request::RenameVersion { reply, .. } => drop(reply.send(Err(error))),
            Request::DeleteVersion { reply, .. } => drop(reply.send(Err(error))),
            Request::Restore { reply, .. } => drop(reply.send(Err(error))),
        }
    }
}

/// Why a command did not get its answer.
pub enum SendError {
    /// The task is unloading or gone: ask the registry again.
    Retry,
    Doc(DocError),
}

#[derive(Clone)]
pub struct DocHandle {
    tx: mpsc::Sender<Command>,
    /// Bytes of client messages the task may have queued, and how many that is in all.
    queue: Arc<Semaphore>,
    queue_bytes: u32,
}

/// The document task is gone.
#[derive(Debug)]
pub struct Closed;

impl DocHandle {
    pub(super) fn new(tx: mpsc::Sender<Command>, queue_bytes: usize) -> Self {
        let queue_bytes = u32::try_from(queue_bytes).unwrap_or(u32::MAX).max(1);
        DocHandle {
            tx,
            queue: Arc::new(Semaphore::new(queue_bytes as usize)),
            queue_bytes,
        }
    }

    pub(super) fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }

    /// Sends the command `make` builds around a reply channel and waits for the answer.
    pub(super) async fn call<T>(&self, make: impl FnOnce(Reply<T>) -> Command) -> Result<T, SendError> {
        let (reply, answer) = oneshot::channel();
        self.tx.send(make(reply)).await.map_err(|_| SendError::Retry)?;
        // A dropped reply means the task retired with our command still queued: retry.
        match answer.await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(SendError::Doc(e)),
            Err(_) => Err(SendError::Retry),
        }
    }

    /// Hands a connection's messages to the document. Waits while the task's queue is full,
    /// in commands or in bytes: that back-pressure reaches only the connections that send
    /// faster than the document can apply (their sockets are read no further meanwhile).
    pub async fn send(&self, conn: ConnId, messages: Vec<Inbound>, bytes: usize) -> Result<(), Closed> {
        // A message bigger than the whole budget waits for an empty queue instead.
        let budget = u32::try_from(bytes).unwrap_or(u32::MAX).clamp(1, self.queue_bytes);
        let queued = self.queue.clone().acquire_many_owned(budget).await.map_err(|_| Closed)?;
        self.tx
            .send(Command::Inbound { conn, messages, bytes, queued })
            .await
            .map_err(|_| Closed)
    }

    /// Asks the document to close the connections of share link `link`. A task that is gone
    /// had none left.
    pub async fn revoke(&self, link: &str) {
        let _ = self.tx.send(Command::Revoke { link: link.to_owned() }).await;
    }

    /// Tells the document a connection is gone. Never blocks and never gets lost: if the
    /// queue is full, a task delivers it as soon as there is room.
    pub fn leave(&self, conn: ConnId) {
        match self.tx.try_send(Command::Leave { conn }) {
            Ok(()) | Err(mpsc::error::TrySendError::Closed(_)) => {}
            Err(mpsc::error::TrySendError::Full(command)) => {
                let tx = self.tx.clone();
                tokio::spawn(async move {
                    let _ = tx.send(command).await;
                });
            }
        }
    }
}
