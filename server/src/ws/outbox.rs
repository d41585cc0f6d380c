//! A connection's queue of frames to send: bounded in messages and in bytes.
//!
//! The document task pushes without waiting (`try_push`); a full outbox means the client cannot
//! keep up, and the document task drops it rather than wait for it or silently skip a message
//! (either would stall everyone or leave that client diverged). The writer task drains it.
//!
//! A frame may carry a [`Gate`]: the writer sends it, and everything queued after it, only once
//! the gate opens. The answer that tells a client "the server has your changes" waits so for
//! those changes to be on disk, while everything else goes out at once.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::error::CloseReason;

struct Shared {
    queued_bytes: AtomicUsize,
    /// Whether a frame larger than the whole budget is queued (uncounted; one at a time).
    oversized_queued: AtomicBool,
    max_bytes: usize,
    /// Set once, when someone decides this connection must close.
    close_reason: OnceLock<CloseReason>,
    closed: CancellationToken,
}

impl Shared {
    /// Larger than the whole budget: not counted, and alone of its kind in the queue.
    fn oversized(&self, len: usize) -> bool {
        len > self.max_bytes
    }

    /// Gives back what a frame of `len` bytes took when it was queued.
    fn give_back(&self, len: usize) {
        if self.oversized(len) {
            self.oversized_queued.store(false, Ordering::Release);
        } else {
            self.queued_bytes.fetch_sub(len, Ordering::AcqRel);
        }
    }
}

/// What must happen before a frame may go out; an error closes the connection with its reason.
pub type Gate = Pin<Box<dyn Future<Output = Result<(), CloseReason>> + Send>>;

/// One WebSocket message to send, and what it waits for.
pub struct Frame {
    pub bytes: Bytes,
    pub gate: Option<Gate>,
}

// Every connection's channel allocates its slots in blocks of 32: a bigger frame costs every
// connection more (10,000 connections, 5 MB for 16 bytes more).
const _: () = assert!(std::mem::size_of::<Frame>() <= 48);

impl Frame {
    /// A frame that goes out only once `gate` resolves.
    pub fn gated(bytes: Bytes, gate: Gate) -> Frame {
        Frame { bytes, gate: Some(gate) }
    }

    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}

impl From<Bytes> for Frame {
    fn from(bytes: Bytes) -> Frame {
        Frame { bytes, gate: None }
    }
}

/// The sending side, held by the document task.
#[derive(Clone)]
pub struct Outbox {
    tx: mpsc::Sender<Frame>,
    shared: Arc<Shared>,
}

/// The receiving side, owned by the connection's writer.
pub struct OutboxReceiver {
    rx: mpsc::Receiver<Frame>,
    shared: Arc<Shared>,
}

/// Why a frame could not be queued.
#[derive(Debug, PartialEq, Eq)]
pub enum PushError {
    /// The client is not keeping up: drop it.
    Full,
    /// The connection already ended; its `Leave` is on the way.
    Closed,
}

pub fn outbox(max_messages: usize, max_bytes: usize) -> (Outbox, OutboxReceiver) {
    let (tx, rx) = mpsc::channel(max_messages.max(1));
    let shared = Arc::new(Shared {
        queued_bytes: AtomicUsize::new(0),
        oversized_queued: AtomicBool::new(false),
        max_bytes,
        close_reason: OnceLock::new(),
        closed: CancellationToken::new(),
    });
    (
        Outbox {
            tx,
            shared: shared.clone(),
        },
        OutboxReceiver { rx, shared },
    )
}

impl Outbox {
    /// Queues one frame, or fails if that would exceed either bound.
    ///
    /// A frame larger than the whole budget (a big document's first sync) is queued when no
    /// other such frame is, and is not counted: the frames around it (the presence of the
    /// people there, the next edits) keep the whole budget, or a client that keeps up could
    /// never open that document. The queue so holds at most one such frame beside its budget.
    pub fn try_push(&self, frame: impl Into<Frame>) -> Result<(), PushError> {
        let frame = frame.into();
        let len = frame.len();
        // Whether a frame counts follows from its length and the fixed budget, so the receiver
        // gives back the same without the frame carrying it.
        if self.shared.oversized(len) {
            if self.shared.oversized_queued.swap(true, Ordering::AcqRel) {
                return Err(PushError::Full);
            }
        } else {
            let queued = self.shared.queued_bytes.fetch_add(len, Ordering::AcqRel) + len;
            if queued > self.shared.max_bytes {
                self.shared.queued_bytes.fetch_sub(len, Ordering::AcqRel);
                return Err(PushError::Full);
            }
        }
        self.tx.try_send(frame).map_err(|e| {
            self.shared.give_back(len);
            match e {
                mpsc::error::TrySendError::Full(_) => PushError::Full,
                mpsc::error::TrySendError::Closed(_) => PushError::Closed,
            }
        })
    }

    /// Asks the connection to close with `reason`. The first reason given wins.
    pub fn close(&self, reason: CloseReason) {
        let _ = self.shared.close_reason.set(reason);
        self.shared.closed.cancel();
    }

    /// Resolves once [`close`](Self::close) was called.
    pub async fn closed(&self) -> CloseReason {
        self.shared.closed.cancelled().await;
        self.reason()
    }

    fn reason(&self) -> CloseReason {
        self.shared
            .close_reason
            .get()
            .cloned()
            .unwrap_or(CloseReason::Internal)
    }
}

impl OutboxReceiver {
    /// The next frame to send; `None` once every sender is gone.
    pub async fn recv(&mut self) -> Option<Frame> {
        let frame = self.rx.recv().await?;
        self.shared.give_back(frame.len());
        Some(frame)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn bounded_in_bytes_and_messages() {
        let (tx, mut rx) = outbox(3, 10);
        tx.try_push(Bytes::from_static(b"123456")).unwrap();
        assert!(tx.try_push(Bytes::from_static(b"12345")).is_err(), "11 bytes > 10");
        tx.try_push(Bytes::from_static(b"1234")).unwrap();
        assert_eq!(rx.recv().await.unwrap().len(), 6);
        tx.try_push(Bytes::from_static(b"12")).unwrap();
        tx.try_push(Bytes::from_static(b"1")).unwrap();
        assert_eq!(tx.try_push(Bytes::from_static(b"1")), Err(PushError::Full), "4th message > 3");
        drop(rx);
        assert_eq!(tx.try_push(Bytes::new()), Err(PushError::Closed));
    }

    #[tokio::test]
    async fn one_oversized_frame_at_a_time_and_the_budget_stays_the_others() {
        let (tx, mut rx) = outbox(4, 10);
        tx.try_push(Bytes::from_static(b"1234")).unwrap();
        tx.try_push(Bytes::from(vec![0; 100])).unwrap();
        tx.try_push(Bytes::from_static(b"123456")).unwrap();
        assert_eq!(tx.try_push(Bytes::from(vec![0; 100])), Err(PushError::Full), "a second one");
        assert_eq!(tx.try_push(Bytes::from_static(b"1")), Err(PushError::Full), "11 bytes > 10");
        assert_eq!(rx.recv().await.unwrap().len(), 4);
        assert_eq!(rx.recv().await.unwrap().len(), 100);
        tx.try_push(Bytes::from(vec![0; 100])).unwrap();
    }

    #[tokio::test]
    async fn first_close_reason_wins() {
        let (tx, _rx) = outbox(1, 1);
        tx.close(CloseReason::TooSlow);
        tx.close(CloseReason::ShuttingDown);
        assert_eq!(tx.closed().await.code(), CloseReason::TooSlow.code());
    }
}
