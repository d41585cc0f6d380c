//! quire's document model, shared by the server and the browser (sans-IO: no tokio, no axum).
//!
//! # The document
//! Every quire document is one yrs [`Doc`](yrs::Doc) built by [`schema::new_doc`], always with
//! UTF-16 offsets so that positions mean the same thing in Quill, Delta, Yjs and quire.
//! - `content`: a YText holding rich text with Quill-compatible formatting attributes.
//! - `meta`: a YMap; key `title` holds the document's title as a string.
//!
//! # Layout
//! - [`doc_id`]: the validated document identifier.
//! - [`schema`]: the shared type names and the one way to build a `Doc`.
//! - [`protocol`]: the y-websocket sync protocol as quire applies it: panic-isolated decoding
//!   and applying, and the replies each message calls for.
//! - [`diff`]: two states of a document compared: kept, inserted, deleted and reformatted text,
//!   with the Yjs items that say who wrote it.
//! - [`revert`]: the one edit that turns a document back into an earlier state (a restore).
//! - `convert` (feature `convert`, off by default so the browser build stays small): import and
//!   export of the document body as Markdown, HTML, plain text and Quill Delta JSON. Feature
//!   `markdown` builds only its Markdown export, for the browser.

pub mod diff;
pub mod doc_id;
pub mod protocol;
pub mod revert;
pub mod schema;

#[cfg(feature = "markdown")]
pub mod convert;

pub use doc_id::{DocId, DocIdError};
pub use protocol::ProtocolError;
