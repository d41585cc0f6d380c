//! The handle to a live document task: a cheap `Clone` over its bounded command channel.

use quire_model::convert::Format;
use quire_model::protocol::Inbound;
use yrs::StateVector;
use tokio::sync::{mpsc, oneshot};

use super::ConnId;
use crate::auth::Access;
use crate::error::{CloseReason, DocError};
use crate::store::DocMeta;
use crate::ws::outbox::Outbox;

/// What a document task can be asked to do.
pub enum Command {
    /// Subscribe a connection. The task answers once the document is loaded (or failed to).
    Join {
        conn: ConnId,
        access: Access,
        outbox: Outbox,
        reply: oneshot::Sender<Result<(), DocError>>,
    },
    /// Messages one connection sent, already decoded and validated.
    Inbound { conn: ConnId, messages: Vec<Inbound> },
    /// The connection is gone (on every exit path: see the connection's guard).
    Leave { conn: ConnId },
    /// A request from the HTTP API.
    Api {
        request: ApiRequest,
        reply: oneshot::Sender<Result<ApiReply, DocError>>,
    },
}

/// What the HTTP API can ask of a document. Served by the document task, in order with the
/// edits of connected clients, so an import is an ordinary edit everyone sees live.
#[derive(Debug, Clone)]
pub enum ApiRequest {
    /// The metadata of an existing document.
    Meta,
    /// Creates the document; fails if it exists.
    Create {
        title: Option<String>,
        content: Option<(Format, String)>,
    },
    /// The body in a text format.
    Export(Format),
    /// The state as a Yjs update: v1 or v2, only what `since` lacks.
    ExportYjs { v2: bool, since: StateVector },
    /// Replaces the body with an import.
    Replace(Format, String),
    /// Merges a v1 Yjs update.
    ApplyUpdate(Vec<u8>),
    /// Disconnects everyone and removes the document from disk.
    Delete,
}

#[derive(Debug)]
pub enum ApiReply {
    Meta(DocMeta),
    Text(String),
    Bytes(Vec<u8>),
    Done,
}

/// Whether a document task keeps serving.
#[derive(Debug, Clone)]
pub enum Lifecycle {
    Live,
    /// Stop: close every connection with this reason and retire without writing.
    Ended(CloseReason),
}

/// Why a join did not happen.
pub enum JoinError {
    /// The task is unloading or gone: ask the registry again.
    Retry,
    Doc(DocError),
}

#[derive(Clone)]
pub struct DocHandle {
    tx: mpsc::Sender<Command>,
}

/// The document task is gone.
#[derive(Debug)]
pub struct Closed;

impl DocHandle {
    pub(super) fn new(tx: mpsc::Sender<Command>) -> Self {
        DocHandle { tx }
    }

    pub(super) fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }

    pub(super) async fn join(
        &self,
        conn: ConnId,
        access: Access,
        outbox: Outbox,
    ) -> Result<(), JoinError> {
        let (reply, answer) = oneshot::channel();
        let command = Command::Join {
            conn,
            access,
            outbox,
            reply,
        };
        self.tx.send(command).await.map_err(|_| JoinError::Retry)?;
        // A dropped reply means the task retired with our Join still queued: retry.
        match answer.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(JoinError::Doc(e)),
            Err(_) => Err(JoinError::Retry),
        }
    }

    pub(super) async fn request(&self, request: ApiRequest) -> Result<ApiReply, JoinError> {
        let (reply, answer) = oneshot::channel();
        let command = Command::Api { request, reply };
        self.tx.send(command).await.map_err(|_| JoinError::Retry)?;
        match answer.await {
            Ok(Ok(reply)) => Ok(reply),
            Ok(Err(e)) => Err(JoinError::Doc(e)),
            Err(_) => Err(JoinError::Retry),
        }
    }

    /// Hands a connection's messages to the document. Waits while the task's queue is full:
    /// that back-pressure reaches only the connection that sends faster than the document
    /// can apply.
    pub async fn send(&self, conn: ConnId, messages: Vec<Inbound>) -> Result<(), Closed> {
        self.tx
            .send(Command::Inbound { conn, messages })
            .await
            .map_err(|_| Closed)
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
