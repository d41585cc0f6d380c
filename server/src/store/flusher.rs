//! Group commit: the one task that makes appended updates durable.
//!
//! Document tasks append to the store (fast, in memory) and call [`FlushHandle::mark_dirty`].
//! This task flushes whenever something is dirty; while one flush runs, new appends gather and
//! the next flush starts as soon as it ends, so one fsync covers many updates under load and a
//! lone update waits for at most one flush in progress plus its own. An acknowledged edit is on
//! disk within `flush_delay` + two flush times (a few ms on a healthy disk; the crash test holds
//! it to 50 ms).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::Store;
use crate::metrics::Metrics;

#[derive(Default)]
struct Shared {
    pending: AtomicU64,
    wake: Notify,
    healthy: AtomicBool,
}

/// Cheap to clone; held by every document task.
#[derive(Clone)]
pub struct FlushHandle(Arc<Shared>);

impl FlushHandle {
    pub fn new() -> Self {
        let shared = Shared::default();
        shared.healthy.store(true, Ordering::Relaxed);
        FlushHandle(Arc::new(shared))
    }

    /// Something was appended: make it durable soon.
    pub fn mark_dirty(&self) {
        self.0.pending.fetch_add(1, Ordering::Relaxed);
        // notify_one stores a permit when the flusher is busy: the next flush starts right away.
        self.0.wake.notify_one();
    }

    /// False after a failed flush, until one succeeds again.
    pub fn healthy(&self) -> bool {
        self.0.healthy.load(Ordering::Relaxed)
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
        let batch = self.0.pending.swap(0, Ordering::Relaxed);
        let started = Instant::now();
        let store = store.clone();
        let result = tokio::task::spawn_blocking(move || store.flush()).await;
        match result {
            Ok(Ok(())) => {
                metrics.flush_seconds.observe(started.elapsed().as_secs_f64());
                metrics.flush_batch_updates.observe(batch as f64);
                self.0.healthy.store(true, Ordering::Relaxed);
            }
            failure => {
                let error = match failure {
                    Ok(Err(e)) => e.to_string(),
                    Err(join) => join.to_string(),
                    Ok(Ok(())) => unreachable!(),
                };
                tracing::error!(%error, "flush failed; retrying");
                metrics.flush_failures.inc();
                self.0.healthy.store(false, Ordering::Relaxed);
                // Put the batch back and try again after a pause rather than spinning on a
                // failing disk.
                self.0.pending.fetch_add(batch.max(1), Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(100)).await;
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
