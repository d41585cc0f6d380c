//! quire's browser replica, compiled to WebAssembly: the same yrs CRDT and the same protocol code
//! (`quire-model`) as the server, so both ends treat bytes the same way. It owns the document,
//! the presence states and the y-websocket protocol state machine; JavaScript only moves bytes
//! between a WebSocket and this module, and renders what it reports.
//!
//! One JavaScript class, `QuireDoc`: the document, its presence and its protocol state belong to
//! one owner, so a page holds one handle (and frees one). Positions are UTF-16 code units
//! everywhere, as in Quill and Yjs. The content is interchangeable with the stock `y-quill`
//! binding: same YText (`content`), same Delta rules, same presence conventions.
//!
//! `cargo xtask wasm` builds `client-wasm/pkg/` (`quire_client.js`, `.d.ts`, `.wasm`).
//!
//! # Layout
//! - `doc`: the `QuireDoc` class, a thin shell: borrow the replica, convert, call.
//! - `js`: every conversion between Rust and JavaScript values, and the exported TS types
//!   (no serde on the wasm side: JavaScript values are read into typed values directly).
//! - [`replica`]: the document itself, plain Rust (tested natively): local edits, title, state.
//! - `sync`: the y-websocket protocol as the browser end speaks it (start, receive, close).
//! - `awareness`: presence, renewal and timeouts, Yjs relative positions for cursors.
//! - `client_id`: a new client id when another client writes under ours, as Yjs does.
//! - `quill`: Quill Delta ⇄ YText, with Yjs's `applyDelta` / `toDelta` rules; typed [`Op`]s.
//! - [`error`]: why a call was refused (becomes a thrown JavaScript `Error`).
//!
//! # Panics
//! The size profile builds with `panic = "abort"`: a panic would trap and leave the module
//! unusable. Malformed input is therefore refused through `Result`s (yrs's decoders are
//! fallible, and everything that could index out of range is clamped first); the native build
//! keeps the `catch_unwind` of `quire_model::protocol` as a second net.

mod awareness;
mod client_id;
mod doc;
pub mod error;
mod js;
mod quill;
pub mod replica;
mod sync;

pub use awareness::OUTDATED_MS;
pub use doc::QuireDoc;
pub use error::ClientError;
pub use quill::Op;
pub use replica::{Changes, Replica};

#[cfg(test)]
mod tests;
