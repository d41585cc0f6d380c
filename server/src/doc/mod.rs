//! Live documents: one task owns each, everyone else holds a cheap handle to it.
//!
//! - [`handle`]: the public handle and the commands it sends.
//! - [`registry`]: document id → handle; spawns tasks, never two for one document.
//! - [`actor`]: the task that owns a document's yrs `Doc` and `Awareness`.
//! - [`peers`]: the connections subscribed to one document, and fan-out to them.
//! - [`storage`]: one document's side of the store (load, append, compact, metadata).
//! - `api`: the document task's answers to the HTTP API.

pub mod actor;
mod api;
pub mod handle;
pub mod peers;
pub mod registry;
pub mod storage;

use std::sync::atomic::{AtomicU64, Ordering};

pub use handle::DocHandle;
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
