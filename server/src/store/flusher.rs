//! Group commit: the one task that makes appended updates durable, and the tickets with which
//! anyone can wait for that.
//!
//! Document tasks append to the store (fast, in memory) and call [`FlushHandle::mark_dirty`],
//! which hands back a [`Ticket`]. This task flushes whenever something is dirty; while one
//! flush runs, new appends gather and the next flush starts as soon as it ends, so one fsync
//! covers many updates under load and a lone update waits for at most one flush in progress
//! plus its own. An appended edit is on disk within `flush_delay` + two flush times (a few ms
//! on a healthy disk, when the flusher gets a CPU: a saturated machine makes it later, never
//! makes a confirmation early).
//!
//! "Saved" is promised only after the flush: API replies and the answers behind "All changes
//! synced" wait for their ticket ([`FlushHandle::durable`]); fan-out to other clients does not.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{watch, Notify};
use tokio_util::sync::CancellationToken;

use super::Store;
use crate::metrics::Metrics;

/// How long to wait before retrying a failed flush: a failing disk is not hammered.
const RETRY_AFTER_FAILURE: Duration = Duration::from_millis(100);

/// A place in the order of appends: durable once a flush that started after it succeeded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Ticket(u64);

/// What the flusher has achieved so far.
#[derive(Debug, Clone, Copy)]
struct Progress {
    /// Every ticket up to this one is durable.
    durable: Ticket,
    /// False after a failed flush, until one succeeds again.
    healthy: bool,
}

/// The flushes are failing: what was appended is not on disk yet (it will be if the disk
/// recovers, and the flusher keeps trying).
#[derive(Debug, thiserror::Error)]
#[error("the store cannot make changes durable right now")]
pub struct NotDurable;

struct Shared {
    /// The last ticket handed out.
    issued: AtomicU64,
    wake: Notify,
    progress: watch::Sender<Progress>,
    /// `progress.healthy` alone, changed only when it flips: what document tasks watch.
    health: watch::Sender<bool>,
}

/// Cheap to clone; held by every document task.
#[derive(Clone)]
pub struct FlushHandle(Arc<Shared>);

impl FlushHandle {
    pub fn new() -> Self {
        let progress = Progress {
            durable: Ticket(0),
            healthy: true,
        };
        FlushHandle(Arc::new(Shared {
            issued: AtomicU64::new(0),
            wake: Notify::new(),
            progress: watch::Sender::new(progress),
            health: watch::Sender::new(true),
        }))
    }

    /// Something was appended: make it durable soon. The ticket says when it is.
    pub fn mark_dirty(&self) -> Ticket {
        let ticket = Ticket(self.0.issued.fetch_add(1, Ordering::AcqRel) + 1);
        // notify_one stores a permit when the flusher is busy: the next flush starts right away.
        self.0.wake.notify_one();
        ticket
    }

    /// False after a failed flush, until one succeeds again.
    pub fn healthy(&self) -> bool {
        self.0.progress.borrow().healthy
    }

    /// Changes when flushes start or stop failing (`true`: healthy).
    pub fn health(&self) -> watch::Receiver<bool> {
        self.0.health.subscribe()
    }

    /// Whether everything up to `ticket` is on disk.
    pub fn is_durable(&self, ticket: Ticket) -> bool {
        self.0.progress.borrow().durable >= ticket
    }

    /// Waits until everything up to `ticket` is on disk. Fails at once, rather than wait for
    /// a disk that may not come back, while flushes are failing.
    pub async fn durable(&self, ticket: Ticket) -> Result<(), NotDurable> {
        let mut progress = self.0.progress.subscribe();
        let reached = progress
            .wait_for(|p| p.durable >= ticket || !p.healthy)
            .await
            .map_err(|_| NotDurable)?;
        if reached.durable >= ticket {
            Ok(())
        } else {
            Err(NotDurable)
        }
    }

    /// Runs group commits until `cancel`, then flushes whatever is left once more.
    pub async fn run(
        self,
        store: Arc<dyn Store>,
        delay: Duration,
        metrics: Arc<Metrics>,
        cancel: CancellationToken,
    ) {
        loop {
            tokio::select! {
                _ = self.0.wake.notified() => {}
                _ = cancel.cancelled() => break,
            }
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            self.flush_once(&store, &metrics).await;
        }
        self.flush_once(&store, &metrics).await;
    }

    async fn flush_once(&self, store: &Arc<dyn Store>, metrics: &Metrics) {
        // Everything issued before the flush starts is covered by it.
        let upto = Ticket(self.0.issued.load(Ordering::Acquire));
        let before = self.0.progress.borrow().durable;
        let started = Instant::now();
        match store.flush().await {
            Ok(()) => {
                metrics.flush_seconds.observe(started.elapsed().as_secs_f64());
                metrics.flush_batch_updates.observe(upto.0.saturating_sub(before.0) as f64);
                self.0.progress.send_replace(Progress {
                    durable: upto.max(before),
                    healthy: true,
                });
                self.0.health.send_if_modified(|healthy| !std::mem::replace(healthy, true));
            }
            Err(error) => {
                tracing::error!(error = %crate::error::chain(&error), "flush failed; retrying");
                metrics.flush_failures.inc();
                self.0.progress.send_modify(|p| p.healthy = false);
                self.0.health.send_if_modified(|healthy| std::mem::replace(healthy, false));
                // Try again after a pause rather than spinning on a failing disk.
                tokio::time::sleep(RETRY_AFTER_FAILURE).await;
                self.0.wake.notify_one();
            }
        }
    }
}

impl Default for FlushHandle {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::memory::MemoryStore;

    #[tokio::test]
    async fn a_ticket_is_durable_only_after_a_flush_that_started_after_it() {
        let store = Arc::new(MemoryStore::new());
        let flusher = FlushHandle::new();
        let first = flusher.mark_dirty();
        assert!(!flusher.is_durable(first));
        let cancel = CancellationToken::new();
        let task = tokio::spawn(flusher.clone().run(store.clone(), Duration::ZERO, Arc::new(Metrics::new()), cancel.clone()));
        flusher.durable(first).await.unwrap();
        assert!(store.flushes() >= 1);
        // A failing store: waiters are told, not left hanging; it recovers by itself.
        store.fail_flushes.store(true, Ordering::SeqCst);
        let second = flusher.mark_dirty();
        assert!(flusher.durable(second).await.is_err());
        assert!(!flusher.is_durable(second));
        store.fail_flushes.store(false, Ordering::SeqCst);
        let mut progress = flusher.0.progress.subscribe();
        progress.wait_for(|p| p.healthy && p.durable >= second).await.unwrap();
        cancel.cancel();
        task.await.unwrap();
    }
}
