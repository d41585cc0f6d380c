//! An in-process quire server on a free loopback port.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use quire::auth::Authorizer;
use quire::store::memory::MemoryStore;
use quire::store::Store;
use quire::Config;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub struct TestServer {
    pub addr: SocketAddr,
    pub config: Config,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), quire::ServeError>>>,
}

impl TestServer {
    /// Starts quire with its sled store in `data_dir`.
    pub async fn start(data_dir: &Path, config: Config) -> Self {
        let config = Config {
            data_dir: data_dir.to_path_buf(),
            ..config
        };
        Self::launch(config, None, None).await
    }

    /// Starts quire on a store the test provides (memory, or one with injected faults).
    pub async fn with_store(store: Arc<dyn Store>, config: Config) -> Self {
        Self::launch(config, Some(store), None).await
    }

    /// Starts quire on a memory store with an access policy.
    pub async fn with_auth(auth: Arc<dyn Authorizer>, config: Config) -> Self {
        Self::launch(config, Some(Arc::new(MemoryStore::new())), Some(auth)).await
    }

    async fn launch(config: Config, store: Option<Arc<dyn Store>>, auth: Option<Arc<dyn Authorizer>>) -> Self {
        // RUST_LOG=debug shows the server's log with the test's output.
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
        let listener = quire::listen::bind("127.0.0.1:0".parse().unwrap(), config.listen_backlog).expect("bind");
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let shutdown = async move {
            let _ = stopped.await;
        };
        let task = match (store, auth) {
            (Some(store), Some(auth)) => {
                tokio::spawn(quire::serve_with_auth(listener, config.clone(), store, auth, shutdown))
            }
            (Some(store), None) => tokio::spawn(quire::serve(listener, config.clone(), store, shutdown)),
            (None, _) => tokio::spawn(quire::run(listener, config.clone(), shutdown)),
        };
        TestServer {
            addr,
            config,
            stop: Some(stop),
            task: Some(task),
        }
    }

    pub fn ws_url(&self, doc: &str) -> String {
        format!("ws://{}/ws/{doc}", self.addr)
    }

    /// Graceful shutdown; returns once everything is flushed and the store is closed.
    pub async fn stop(mut self) {
        self.shutdown().await.expect("server stopped with an error");
    }

    async fn shutdown(&mut self) -> Result<(), quire::ServeError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.task.take() {
            Some(task) => task.await.expect("server task panicked"),
            None => Ok(()),
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
