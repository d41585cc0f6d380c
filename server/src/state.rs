//! What every request handler can reach: cheap to clone, all shared parts behind `Arc`s.

use std::sync::Arc;

use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::auth::Authorizer;
use crate::config::Config;
use crate::doc::Registry;
use crate::metrics::Metrics;
use crate::store::flusher::FlushHandle;

#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub registry: Registry,
    pub metrics: Arc<Metrics>,
    pub auth: Arc<dyn Authorizer>,
    /// One permit per open WebSocket (`max_connections`).
    pub admission: Arc<Semaphore>,
    pub flusher: FlushHandle,
    /// Cancelled when the server begins to shut down.
    pub shutdown: CancellationToken,
    /// Connection and document tasks, awaited at shutdown.
    pub tracker: TaskTracker,
}
