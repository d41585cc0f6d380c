//! Live documents: one task owns each, everyone else holds a cheap handle to it.
//!
//! Dependencies point one way: [`registry`] → `actor` → `live` / `api` → `storage` → the
//! store. Nothing below the registry knows it exists.
//!
//! - [`registry`]: the documents as the server sees them: join one, ask it the API's questions.
//! - `slot`: the map of live tasks (never two for one document) and each task's way out of it.
//! - [`handle`]: the cheap handle to a task, its commands and their typed replies.
//! - `actor`: a task's life: load, serve, unload.
//! - `live`: a loaded document and its connections: the sync protocol's server side.
//! - [`peers`]: the connections subscribed to one document, fan-out to them, their client ids.
//! - `presence`: bounds on what one connection may announce, and on what it is sent.
//! - `probe`: deciding which of two connections writing under one client id is the impostor.
//! - `api`: the task's answers to the HTTP API.
//! - `storage`: one document's side of the store (load, append, compact, metadata).
//! - `context`: what every task shares with the rest of the server.
//! - [`versions`]: when automatic versions are taken and which are kept as they age (pure).
//! - `attribution`: who writes under which Yjs client id, who deletes what.
//! - `capture`: taking a version off the task (read from the store, encode, compress, write).
//! - [`history`]: reading history for the API: versions with their editors, a version's
//!   content, comparisons with each change's author.

mod actor;
mod api;
mod attribution;
mod capture;
pub mod context;
pub mod handle;
pub mod history;
mod live;
pub mod peers;
mod presence;
mod probe;
pub mod registry;
mod slot;
mod storage;
pub mod versions;

use std::sync::atomic::{AtomicU64, Ordering};

pub use handle::DocHandle;
pub use live::Restored;
pub use storage::MAX_TITLE_BYTES;
pub use registry::Registry;

/// Identifies one connection for the lifetime of the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConnId(u64);

impl ConnId {
    pub fn next() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        ConnId(NEXT.fetch_add(1, Ordering::Relaxed))
    }
}

impl std::fmt::Display for ConnId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "c{}", self.0)
    }
}
