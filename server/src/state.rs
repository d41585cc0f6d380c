//! What every request handler can reach: cheap to clone, all shared parts behind `Arc`s.

use std::sync::Arc;

use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::auth::Authorizer;
use crate::config::Config;
use crate::doc::Registry;
use crate::metrics::Metrics;

/// The server-wide handles that the connection and document layers both use, built once.
#[derive(Clone)]
pub struct Shared {
    pub config: Arc<Config>,
    pub metrics: Arc<Metrics>,
    /// Cancelled when the server begins to shut down.
    pub shutdown: CancellationToken,
    /// Connection and document tasks, awaited at shutdown.
    pub tracker: TaskTracker,
}

#[derive(Clone)]
pub struct AppState {
    pub shared: Shared,
    /// The documents: every request about one goes through here.
    pub docs: Registry,
    pub auth: Arc<dyn Authorizer>,
    /// One permit per open WebSocket (`max_connections`).
    pub admission: Arc<Semaphore>,
}
