//! The one place that decides who may open a document.
//!
//! Every WebSocket upgrade asks the [`Authorizer`] before anything else happens, so access
//! control can be added later (tokens, sharing links) without touching the protocol code.

use axum::http::HeaderMap;
use quire_model::DocId;

/// What a connection may do with a document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    ReadWrite,
    /// Receives everything; its updates are ignored (presence still flows).
    ReadOnly,
    Deny,
}

/// What a request brings to prove who it is.
pub struct Credentials<'a> {
    pub headers: &'a HeaderMap,
    /// The query string (y-websocket clients pass tokens as URL parameters).
    pub query: Option<&'a str>,
}

pub trait Authorizer: Send + Sync + 'static {
    fn authorize(&self, doc: &DocId, credentials: &Credentials<'_>) -> Access;
}

/// Today's policy: anyone with the link may edit.
pub struct AllowAll;

impl Authorizer for AllowAll {
    fn authorize(&self, _: &DocId, _: &Credentials<'_>) -> Access {
        Access::ReadWrite
    }
}
