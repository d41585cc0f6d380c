//! The error taxonomy, mapped once to HTTP statuses and once to WebSocket close codes.

use std::borrow::Cow;

use axum::extract::rejection::{BytesRejection, JsonRejection, PathRejection, QueryRejection};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use quire_model::convert::{ConvertError, Format};
use quire_model::{DocIdError, ProtocolError};
use serde_json::json;

use crate::auth::Denied;
use crate::http::pace::{self, TooSlow};
use crate::store::StoreError;

/// Errors a document task reports to whoever asked it for something.
#[derive(Debug, thiserror::Error)]
pub enum DocError {
    /// An earlier load of the document failed (the cause is logged where it happened). Nothing
    /// is written for it until a later load succeeds, so the stored bytes stay as they are for
    /// an operator to inspect.
    #[error("the document is unavailable, retry shortly")]
    Unavailable,
    #[error("the document is unavailable, retry shortly")]
    Gone,
    /// The server is at its limit of documents in memory (`max_live_docs`).
    #[error("the server has too many documents open, retry shortly")]
    TooManyDocuments,
    /// The document task could not run the request now.
    #[error("the document is busy, retry shortly")]
    Busy,
    #[error("no such document")]
    NotFound,
    /// Deleted through the API: joins are refused (4410) until the id is created again, so a
    /// client that still holds a copy cannot bring it back by reconnecting.
    #[error("this document was deleted")]
    Deleted,
    #[error("a document with this id exists")]
    Exists,
    #[error("no such share link")]
    NoSuchLink,
    /// The update holds changes of a deleted document that had the same id: a copy made before
    /// the deletion, which must never merge into the document created since.
    #[error("this update belongs to a deleted document of the same id, not to the one there now")]
    StaleCopy,
    /// The request's content could not be read in the format it claims.
    #[error("the content is not valid {format}")]
    BadContent {
        format: Format,
        #[source]
        source: ConvertError,
    },
    /// A converter failed on the content (a bug of ours, caught).
    #[error("the {0} content could not be imported")]
    ImportPanicked(Format),
    #[error("the document could not be exported as {0}")]
    ExportFailed(Format),
    /// The export would cost more than its budget (a document planted to blow up exports).
    #[error("the document cannot be exported as {format}")]
    ExportRefused {
        format: Format,
        #[source]
        source: ConvertError,
    },
    #[error("the document could not be exported as a Yjs update")]
    ExportYjsFailed,
    /// A Yjs update that does not decode or apply.
    #[error("update rejected")]
    BadUpdate(#[source] ProtocolError),
    /// The edit would make the document larger than `max_doc_bytes`.
    #[error("the document would grow past its limit of {limit} bytes")]
    TooLarge { limit: u64 },
    /// The store refuses writes (a full disk): the change is in memory only, and is written
    /// when the store takes writes again.
    #[error("the server cannot save changes right now, retry shortly")]
    NotSaved,
    #[error("storage failure")]
    Store(#[from] StoreError),
    /// The stored document (or a stored version) does not read back.
    #[error("the stored document could not be read")]
    Stored(#[source] LoadError),
    /// No such version of the document.
    #[error("no such version")]
    NoSuchVersion,
    /// Naming one more version would pass the document's limit of named versions.
    #[error("the document has {limit} named versions, its limit: delete or unname one first")]
    TooManyNamedVersions { limit: usize },
    /// Two versions that cannot be compared (not of one history).
    #[error("the versions cannot be compared")]
    Incomparable(#[source] quire_model::diff::DiffError),
    #[error("a background task failed")]
    Task(#[from] tokio::task::JoinError),
}

/// Why a document could not be loaded. Logged with its sources; clients are told only that the
/// document is unavailable.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("reading the store failed")]
    Store(#[from] StoreError),
    #[error("stored update {index} does not apply")]
    Rebuild {
        index: usize,
        #[source]
        source: ProtocolError,
    },
    #[error("the load task failed")]
    Task(#[from] tokio::task::JoinError),
}

/// An error and its sources, "outer: inner: innermost", for logs and for messages about a
/// client's own input.
pub fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}

/// Errors of the HTTP surface. Call sites never choose a status: `IntoResponse` does, here.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("bad document id: {0}")]
    BadDocId(#[from] DocIdError),
    #[error("access denied")]
    Forbidden,
    #[error(transparent)]
    Denied(#[from] crate::auth::Denied),
    /// Share links and sign-in need access control, which this server runs without.
    #[error("this server runs without access control (--auth none): there is nothing to sign in to or share")]
    NoAccessControl,
    #[error("server is at its connection limit, retry shortly")]
    Busy,
    /// The store cannot keep or share edits now (a cluster's Redis is unreachable).
    #[error("the server cannot keep changes right now ({0}), retry shortly")]
    StoreDown(&'static str),
    /// The client's address holds `max_per_address` sockets (or forwarded requests) already.
    #[error("too many connections from your address, retry shortly")]
    TooManyFromAddress,
    #[error("expected a WebSocket upgrade request: {0}")]
    NotWebSocket(String),
    /// A request the API cannot read: a malformed body, query or path.
    #[error("{0}")]
    BadRequest(String),
    /// A body over the limit (`max_message_bytes`).
    #[error("request body is larger than the limit of {limit} bytes")]
    TooLarge { limit: usize },
    /// A body that stalled or trickled (see `http::pace`).
    #[error(transparent)]
    BodyTooSlow(TooSlow),
    #[error("unsupported media type: {0}")]
    UnsupportedMediaType(String),
    /// A bug or an environment failure on our side; the details are logged, not sent.
    #[error("internal error: {0}")]
    Internal(String),
    #[error(transparent)]
    Doc(#[from] DocError),
}

impl ApiError {
    /// An extractor's rejection, by the status axum gives it: axum knows which of its failures
    /// are "wrong type"; everything else is a request we could not read.
    fn from_rejection(status: StatusCode, text: String) -> ApiError {
        match status {
            StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::UnsupportedMediaType(text),
            _ => ApiError::BadRequest(text),
        }
    }

    /// A body that could not be read. The limit is passed in because axum's 413 text does not
    /// say it, and a client that hit it should learn what it is.
    pub fn from_body_rejection(rejection: BytesRejection, limit: usize) -> ApiError {
        if let Some(slow) = pace::too_slow(&rejection) {
            return ApiError::BodyTooSlow(slow);
        }
        match rejection.status() {
            StatusCode::PAYLOAD_TOO_LARGE => ApiError::TooLarge { limit },
            status => Self::from_rejection(status, rejection.body_text()),
        }
    }

    /// A JSON body that could not be read: whatever axum says is wrong with it is a bad
    /// request, unless it came too slowly.
    pub fn from_json_rejection(rejection: JsonRejection) -> ApiError {
        match pace::too_slow(&rejection) {
            Some(slow) => ApiError::BodyTooSlow(slow),
            None => ApiError::BadRequest(rejection.body_text()),
        }
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        Self::from_rejection(rejection.status(), rejection.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        Self::from_rejection(rejection.status(), rejection.body_text())
    }
}

impl ApiError {
    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::BadDocId(_) => (StatusCode::BAD_REQUEST, "bad_doc_id"),
            ApiError::Forbidden => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::Denied(Denied::Unauthenticated) => (StatusCode::UNAUTHORIZED, "unauthenticated"),
            ApiError::Denied(Denied::InvalidCredentials) => (StatusCode::UNAUTHORIZED, "invalid_credentials"),
            ApiError::Denied(Denied::Forbidden) => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::Denied(Denied::CrossSite) => (StatusCode::FORBIDDEN, "cross_site"),
            ApiError::Denied(Denied::Unavailable) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            ApiError::NoAccessControl => (StatusCode::NOT_FOUND, "no_access_control"),
            ApiError::Doc(DocError::NoSuchLink | DocError::NoSuchVersion) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::Busy => (StatusCode::SERVICE_UNAVAILABLE, "busy"),
            ApiError::StoreDown(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            ApiError::TooManyFromAddress => (StatusCode::TOO_MANY_REQUESTS, "too_many_connections"),
            ApiError::NotWebSocket(_) => (StatusCode::BAD_REQUEST, "not_websocket"),
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            ApiError::TooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "too_large"),
            ApiError::BodyTooSlow(_) => (StatusCode::REQUEST_TIMEOUT, "body_timeout"),
            ApiError::UnsupportedMediaType(_) => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
            }
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
            ApiError::Doc(DocError::Unavailable | DocError::Gone | DocError::Busy | DocError::NotSaved) => {
                (StatusCode::SERVICE_UNAVAILABLE, "doc_unavailable")
            }
            ApiError::Doc(DocError::TooManyDocuments) => (StatusCode::SERVICE_UNAVAILABLE, "busy"),
            ApiError::Doc(
                DocError::Store(_)
                | DocError::Stored(_)
                | DocError::Incomparable(_)
                | DocError::Task(_)
                | DocError::ExportFailed(_)
                | DocError::ExportYjsFailed,
            ) => {
                (StatusCode::INTERNAL_SERVER_ERROR, "internal")
            }
            ApiError::Doc(DocError::NotFound | DocError::Deleted) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::Doc(DocError::Exists) => (StatusCode::CONFLICT, "exists"),
            ApiError::Doc(DocError::StaleCopy) => (StatusCode::CONFLICT, "stale_copy"),
            ApiError::Doc(DocError::TooManyNamedVersions { .. }) => (StatusCode::CONFLICT, "too_many_named_versions"),
            ApiError::Doc(DocError::TooLarge { .. }) => (StatusCode::PAYLOAD_TOO_LARGE, "doc_too_large"),
            ApiError::Doc(DocError::BadContent { .. } | DocError::ImportPanicked(_)) => {
                (StatusCode::BAD_REQUEST, "bad_content")
            }
            ApiError::Doc(DocError::BadUpdate(_)) => (StatusCode::UNPROCESSABLE_ENTITY, "bad_update"),
            ApiError::Doc(DocError::ExportRefused { .. }) => (StatusCode::UNPROCESSABLE_ENTITY, "export_refused"),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        // Internal details go to the log, never to the client. A client's own mistake is
        // explained in full (what was wrong with its input, down to the parser's words);
        // "unavailable" has a fixed text.
        let message = if status == StatusCode::SERVICE_UNAVAILABLE {
            self.to_string()
        } else if status.is_server_error() {
            tracing::error!(error = %chain(&self), "request failed");
            "internal error".to_owned()
        } else {
            chain(&self)
        };
        let mut response =
            (status, Json(json!({ "error": { "code": code, "message": message } }))).into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE || status == StatusCode::TOO_MANY_REQUESTS {
            // Spread the retries of a crowd: clients that honour it come back after a pause.
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("2"));
        }
        response
    }
}

/// Why the server closes a WebSocket. Each reason has one close code, chosen here.
#[derive(Debug, Clone)]
pub enum CloseReason {
    /// A message that does not decode or apply.
    Malformed(String),
    /// A message over `max_message_bytes`.
    TooBig,
    /// The connection's outbox filled up: it could not keep up. It may reconnect and resync.
    TooSlow,
    /// No frame (not even a pong) within the idle timeout.
    Timeout,
    /// The document could not be loaded, or the server has no room for it now.
    Unavailable,
    /// The server is shutting down.
    ShuttingDown,
    /// The document was deleted.
    Deleted,
    /// The store refuses writes: the client keeps its changes and retries later.
    NotSaving,
    /// An edit would make the document larger than its limit.
    DocTooLarge,
    /// The connection sends faster than its rate limit.
    TooFast,
    /// It wrote under a client id that another live connection uses.
    ClientIdInUse,
    /// A newer connection of the same client took over (this one stopped answering).
    Replaced,
    /// The client's copy belongs to a deleted document of the same id.
    StaleCopy,
    /// The share link it came in with was removed.
    AccessRevoked,
    /// Its credentials expired.
    AccessExpired,
    /// The client closed, or its connection broke.
    Normal,
    /// Something went wrong on our side.
    Internal,
}

impl CloseReason {
    /// 1xxx are the standard codes; 4xxx are quire's, mirroring HTTP statuses where one fits.
    pub fn code(&self) -> u16 {
        match self {
            CloseReason::Malformed(_) => 4400,
            CloseReason::TooBig => 1009,
            CloseReason::TooSlow => 4408,
            CloseReason::Timeout => 4504,
            CloseReason::Unavailable => 4503,
            CloseReason::ShuttingDown => 1001,
            CloseReason::Deleted => 4410,
            CloseReason::NotSaving => 4507,
            CloseReason::DocTooLarge => 4413,
            CloseReason::TooFast => 4429,
            CloseReason::ClientIdInUse => 4409,
            CloseReason::Replaced => 4001,
            CloseReason::StaleCopy => 4412,
            CloseReason::AccessRevoked | CloseReason::AccessExpired => 4403,
            CloseReason::Normal => 1000,
            CloseReason::Internal => 1011,
        }
    }

    /// The reason text; a close frame's reason must fit in 123 bytes.
    pub fn reason(&self) -> Cow<'static, str> {
        let text: Cow<'static, str> = match self {
            CloseReason::Malformed(why) => format!("malformed message: {why}").into(),
            CloseReason::TooBig => "message too big".into(),
            CloseReason::TooSlow => "too slow, reconnect to resync".into(),
            CloseReason::Timeout => "no response to ping".into(),
            CloseReason::Unavailable => "document unavailable, retry shortly".into(),
            CloseReason::ShuttingDown => "server shutting down".into(),
            CloseReason::Deleted => "document deleted".into(),
            CloseReason::NotSaving => "the server cannot save changes right now; keep them and retry later".into(),
            CloseReason::DocTooLarge => "the document has reached its size limit".into(),
            CloseReason::TooFast => "sending too fast".into(),
            CloseReason::ClientIdInUse => "writes under a client id another connection uses".into(),
            CloseReason::Replaced => "replaced by a newer connection".into(),
            CloseReason::StaleCopy => "this copy belongs to a deleted document of the same id".into(),
            CloseReason::AccessRevoked => "access revoked".into(),
            CloseReason::AccessExpired => "access expired".into(),
            CloseReason::Normal => "bye".into(),
            CloseReason::Internal => "internal error".into(),
        };
        truncate_utf8(text, 123)
    }
}

impl From<ProtocolError> for CloseReason {
    fn from(e: ProtocolError) -> Self {
        match e {
            ProtocolError::Panicked(_) => CloseReason::Internal,
            // Its own text already says "malformed message".
            ProtocolError::Malformed(source) => CloseReason::Malformed(source.to_string()),
            other => CloseReason::Malformed(other.to_string()),
        }
    }
}

fn truncate_utf8(text: Cow<'static, str>, max: usize) -> Cow<'static, str> {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_reasons_fit_a_close_frame() {
        let long = CloseReason::Malformed("é".repeat(200));
        assert!(long.reason().len() <= 123);
        assert!(long.reason().starts_with("malformed message: é"));
    }
}
