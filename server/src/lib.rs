//! quire's collaboration server: y-websocket sync over axum, documents persisted in sled (one
//! process) or in Redis streams and PostgreSQL (a cluster).
//!
//! The binary (`main.rs`) is a thin shell: it parses flags into a [`Config`] and calls [`run`].
//! Tests start the same server in-process with [`run`] or [`serve`] on `127.0.0.1:0`.
//!
//! # Layout
//! - [`config`]: every limit and interval.
//! - [`listen`]: the listening socket: admission of every socket, HTTP/1 with a header-read
//!   timeout, trusted proxies.
//! - [`error`]: the error taxonomy, mapped once to HTTP statuses and WebSocket close codes.
//! - [`auth`]: the one admission hook (document + credentials → read-write / read-only / deny).
//! - [`state`]: what request handlers share.
//! - [`http`]: the HTTP routes, one feature per file.
//! - [`ws`]: the WebSocket endpoint, the per-connection reader/writer, the bounded outbox.
//! - [`doc`]: one task per live document, the registry that finds or starts it.
//! - [`store`]: the storage trait, the sled, cluster (Redis + PostgreSQL) and memory backends,
//!   the group-commit flusher.
//! - [`metrics`]: Prometheus metrics.
//! - [`shutdown`]: the shutdown order and the signals that start it.

pub mod auth;
pub mod config;
pub mod doc;
pub mod error;
pub mod http;
pub mod listen;
pub mod metrics;
pub mod shutdown;
pub mod state;
pub mod store;
pub mod ws;

use std::future::Future;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use config::Config;
use doc::context::DocContext;
use doc::Registry;
use metrics::Metrics;
use state::{AppState, Shared};
use store::flusher::FlushHandle;
use store::sled::SledStore;
use store::{Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("server I/O failed: {0}")]
    Io(#[from] std::io::Error),
}

/// Opens the sled store in `config.data_dir` and serves on `listener` until `shutdown`
/// resolves. Fails before serving anything if the store cannot be opened.
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let opening = config.clone();
    let store = tokio::task::spawn_blocking(move || open_store(&opening))
        .await
        .map_err(std::io::Error::other)??;
    serve(listener, config, Arc::new(store), shutdown).await
}

/// Opens the sled store `config` names. Blocking.
pub fn open_store(config: &Config) -> Result<SledStore, StoreError> {
    Ok(SledStore::open(&config.data_dir, config.cache_capacity_bytes)?.with_reserve(config.min_free_disk_bytes))
}

/// Serves on `listener` with the given store until `shutdown` resolves, then shuts down in
/// the order written in [`shutdown`]. Anyone may edit any document ([`auth::AllowAll`]).
pub async fn serve(
    listener: TcpListener,
    config: Config,
    store: Arc<dyn Store>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    serve_with_auth(listener, config, store, Arc::new(auth::AllowAll), shutdown).await
}

/// [`serve`] with an access policy: every WebSocket upgrade asks `auth` first.
pub async fn serve_with_auth(
    listener: TcpListener,
    config: Config,
    store: Arc<dyn Store>,
    auth: Arc<dyn auth::Authorizer>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    if config.max_connections >= config.max_sockets {
        tracing::warn!(
            max_connections = config.max_connections,
            max_sockets = config.max_sockets,
            "WebSockets may take every socket: the API, /healthz and /metrics can be starved"
        );
    }
    let config = Arc::new(config);
    let cancel = CancellationToken::new();
    let tracker = TaskTracker::new();
    let mut metrics = Metrics::new();
    store.register_metrics(metrics.registry_mut());
    let shared = Shared {
        config: config.clone(),
        metrics: Arc::new(metrics),
        shutdown: cancel.clone(),
        tracker: tracker.clone(),
        heavy: Arc::new(Semaphore::new(config.heavy_workers.max(1))),
        converting: Arc::new(Semaphore::new(config.heavy_workers.max(1))),
        converting_bytes: Arc::new(Semaphore::new(state::converting_units(&config) as usize)),
    };
    let flusher = FlushHandle::new();
    let stop_flusher = CancellationToken::new();
    let flusher_task = tokio::spawn(flusher.clone().run(
        store.clone(),
        config.flush_delay,
        shared.metrics.clone(),
        stop_flusher.clone(),
    ));
    let docs = Registry::new(DocContext {
        shared: shared.clone(),
        store: store.clone(),
        flusher,
    });
    let state = AppState {
        admission: Arc::new(Semaphore::new(config.max_connections)),
        shared: shared.clone(),
        docs,
        auth,
    };
    let metrics_server = match config.metrics_addr {
        Some(addr) => {
            let listener = listen::bind(addr, 128)?;
            tracing::info!(addr = %listener.local_addr()?, "metrics served without credentials");
            let (router, shared) = (http::metrics_router(state.clone()), shared.clone());
            Some(tokio::spawn(async move { listen::serve(listener, router, &shared).await }))
        }
        None => None,
    };
    let app = http::router(state);

    // 1. Stop accepting; 2. at the same moment, cancel WebSockets and document tasks (upgraded
    // sockets are not HTTP requests that a graceful shutdown would wait for), and give HTTP
    // requests in flight up to `shutdown_grace` to finish: listen::serve returns after that.
    let signal = {
        let cancel = cancel.clone();
        tokio::spawn(async move {
            shutdown.await;
            cancel.cancel();
        })
    };
    listen::serve(listener, app, &shared).await;
    signal.abort();
    if let Some(metrics_server) = metrics_server {
        let _ = metrics_server.await;
    }
    // 3. Every connection closed and every document persisted.
    tracker.close();
    tracker.wait().await;
    // 4. The last flush.
    stop_flusher.cancel();
    let _ = flusher_task.await;
    let flushed = store.flush().await;
    store.close().await;
    flushed?;
    tracing::info!("stopped; everything is on disk");
    Ok(())
}
