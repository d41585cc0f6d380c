//! Why a call into the replica was refused. `js.rs` turns each into a JavaScript `Error` whose
//! message is the `Display` text below; nothing here may become a panic, because the browser
//! build aborts on panic and takes the whole module (and the document in it) down.

use quire_model::ProtocolError;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Bytes from the network or the local store that quire's protocol refuses.
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
    /// A Quill Delta that is not one (wrong shape, negative lengths, unsupported ops).
    #[error("bad Quill delta: {0}")]
    BadDelta(String),
    /// A presence state or cursor position that is not the JSON it should be.
    #[error("bad JSON: {0}")]
    BadJson(String),
    /// The `QuireDoc` was called again while a call was still running (only possible from a
    /// callback re-entering the module); refused instead of aliasing the document.
    #[error("QuireDoc is busy: re-entrant call")]
    Busy,
}
