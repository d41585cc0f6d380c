//! Support for quire's black-box tests: servers started in-process or as the real binary,
//! native yrs clients over real WebSockets, and small polling helpers.
//!
//! - [`server`]: an in-process server on `127.0.0.1:0` that can be stopped and restarted.
//! - [`process`]: the `quire` binary as a child process (for kill -9).
//! - [`client`]: a yrs replica speaking the y-websocket protocol over tokio-tungstenite.
//! - [`cluster`]: a Redis of the test's own and a fresh PostgreSQL database.
//! - [`http`]: raw HTTP/1.1: quire's API, `/metrics`, `/healthz`.
//! - [`fuzz`]: hostile frames from real traces against an in-process server, and the checks
//!   after them.
//! - [`neighbours`]: documents whose text depends on the order their updates arrive in.
//! - [`relay`]: a TCP relay that can go silent, as a dead network does.
//! - [`tmpfs`]: a size-limited directory, for a full disk.
//! - [`wait`]: polling with a deadline and a message saying what was expected.

pub mod client;
pub mod cluster;
pub mod fuzz;
pub mod http;
pub mod neighbours;
pub mod process;
pub mod relay;
pub mod server;
pub mod tmpfs;
pub mod wait;

pub use client::Client;
pub use server::TestServer;
pub use wait::{wait_for, wait_for_async};

/// A fresh directory under the system temp dir, removed when dropped.
pub struct TempDir(pub std::path::PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let path = std::env::temp_dir().join(format!(
            "quire-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&path);
        TempDir(path)
    }

    pub fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
