//! What every document task shares with the rest of the server.

use std::sync::Arc;

use crate::state::Shared;
use crate::store::flusher::FlushHandle;
use crate::store::Store;

/// The server-wide handles ([`Shared`]) and the storage side that only documents use.
pub struct DocContext {
    pub shared: Shared,
    pub store: Arc<dyn Store>,
    pub flusher: FlushHandle,
}
