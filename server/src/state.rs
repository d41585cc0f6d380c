//! What every request handler can reach: cheap to clone, all shared parts behind `Arc`s.

use std::sync::Arc;

use tokio::sync::Semaphore;
use tokio::task::JoinError;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::auth::Authorizer;
use crate::config::Config;
use crate::doc::Registry;
use crate::metrics::Metrics;

/// Work on more bytes than this (decoding or applying an update, encoding a whole document)
/// runs [off the runtime](Shared::off_runtime); smaller work (a keystroke is ~30 bytes, a
/// pasted page a few KiB) is done in place, sparing it a thread hop.
pub const INLINE_BYTES: usize = 64 * 1024;

/// The server-wide handles that the connection and document layers both use, built once.
#[derive(Clone)]
pub struct Shared {
    pub config: Arc<Config>,
    pub metrics: Arc<Metrics>,
    /// Cancelled when the server begins to shut down.
    pub shutdown: CancellationToken,
    /// Connection and document tasks, awaited at shutdown.
    pub tracker: TaskTracker,
    /// Permits for [`off_runtime`](Self::off_runtime) work (`heavy_workers`).
    pub heavy: Arc<Semaphore>,
    /// Permits for [`convert`](Self::convert) work (`heavy_workers` too)...
    pub converting: Arc<Semaphore>,
    /// ...and for its input, a permit per [`CONVERT_UNIT`] bytes (`max_converting_bytes`).
    pub converting_bytes: Arc<Semaphore>,
}

/// What one permit of [`Shared::converting_bytes`] stands for.
pub const CONVERT_UNIT: u64 = 64 * 1024;

impl Shared {
    /// Runs `work` on the blocking pool, at most `heavy_workers` at a time server-wide. Work
    /// whose cost grows with its input (decoding and applying a big update, a compaction, a
    /// load; conversions go to [`convert`](Self::convert)) goes here: on a runtime thread it
    /// would stall every connection that thread serves, and two of them would freeze a 2-core
    /// server. The caller waits (a document task: its document is not touched meanwhile;
    /// others go on).
    pub async fn off_runtime<R: Send + 'static>(&self, work: impl FnOnce() -> R + Send + 'static) -> Result<R, JoinError> {
        blocking(&self.heavy, work).await
    }

    /// [`off_runtime`](Self::off_runtime) for converting a document from or to a text format
    /// (imports, exports), with permits of its own: a conversion of 16 MiB takes seconds, and
    /// a document's own big work (a pasted page, a fold) waiting behind it would hold up that
    /// document's typing meanwhile (the hostile benchmark's flooded document waited behind the
    /// import bombs).
    ///
    /// It waits first for room for its `input` (bytes) in `max_converting_bytes`: what a
    /// conversion takes grows with its input, and a server with many cores must not run as
    /// many 16 MiB imports at once as it has threads.
    pub async fn convert<R: Send + 'static>(&self, input: usize, work: impl FnOnce() -> R + Send + 'static) -> Result<R, JoinError> {
        let units = (input as u64).div_ceil(CONVERT_UNIT).clamp(1, converting_units(&self.config)) as u32;
        let room = self.converting_bytes.clone().acquire_many_owned(units).await.expect("the semaphore is never closed");
        let metrics = self.metrics.clone();
        blocking(&self.converting, move || {
            let _room = room;
            metrics.converting_bytes.inc_by(input as i64);
            // After the work, also when it panics.
            scopeguard::defer! {
                metrics.converting_bytes.dec_by(input as i64);
            }
            work()
        })
        .await
    }
}

/// How many [`CONVERT_UNIT`]s `max_converting_bytes` is (at least one).
pub fn converting_units(config: &Config) -> u64 {
    (config.max_converting_bytes / CONVERT_UNIT).clamp(1, u64::from(u32::MAX))
}

async fn blocking<R: Send + 'static>(permits: &Arc<Semaphore>, work: impl FnOnce() -> R + Send + 'static) -> Result<R, JoinError> {
    // The permit goes with the job: a caller that gives up (a client hanging up) must not free
    // a place while its job still runs.
    let permit = permits.clone().acquire_owned().await.expect("the semaphore is never closed");
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
        work()
    })
    .await
}

#[derive(Clone)]
pub struct AppState {
    pub shared: Shared,
    /// The documents: every request about one goes through here.
    pub docs: Registry,
    pub auth: Arc<dyn Authorizer>,
    /// One permit per open WebSocket (`max_connections`). Every socket, WebSocket or not, also
    /// holds one of `max_sockets` ([`listen`](crate::listen)).
    pub admission: Arc<Semaphore>,
}
