//! `/api/docs`: list, create, read the metadata of and delete documents. Listing, creating and
//! deleting are the owner's; reading a document's metadata takes any access to it.

use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use bytes::Bytes;
use quire_model::DocId;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::access::{DocOwner, OwnerAccess, Viewer};
use super::openapi::ErrorBody;
use crate::doc::MAX_TITLE_BYTES;
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::DocMeta;

/// Page size when `?limit=` is not given.
const DEFAULT_LIMIT: usize = 50;
/// Largest page: the whole list is read and sorted per request anyway; the cap keeps one
/// response (~150 bytes per document) well under 100 KB.
const MAX_LIMIT: usize = 500;
/// Generated ids: 16 characters of `[a-z0-9]`, about 83 bits, so that a link cannot be guessed
/// (anyone with a document's link may edit it). Lower case only: ids are also typed and read.
const GENERATED_ID_LEN: usize = 16;
const ID_ALPHABET: &[u8; 36] = b"abcdefghijklmnopqrstuvwxyz0123456789";

/// A document's metadata. Times are milliseconds since the Unix epoch (UTC), as stored: exact,
/// and `new Date(ms)` in JavaScript.
#[derive(Debug, Serialize, ToSchema)]
pub struct DocInfo {
    #[schema(example = "k3v9x0q2m7c1a8zt")]
    pub id: String,
    /// The document's title (`meta.title` in the Yjs document); empty if it has none.
    pub title: String,
    /// When the document was created, in milliseconds since the Unix epoch.
    pub created_ms: u64,
    /// When its content or title last changed, in milliseconds since the Unix epoch. While
    /// someone is typing this may lag by a couple of seconds.
    pub updated_ms: u64,
    /// Bytes the document takes in the store.
    pub size_bytes: u64,
}

impl DocInfo {
    pub fn new(id: &DocId, meta: DocMeta) -> DocInfo {
        DocInfo {
            id: id.to_string(),
            title: meta.title,
            created_ms: meta.created_ms,
            updated_ms: meta.updated_ms,
            size_bytes: meta.size_bytes,
        }
    }
}

/// One page of the documents list.
#[derive(Debug, Serialize, ToSchema)]
pub struct DocList {
    /// Newest `updated_ms` first (ties by id).
    pub docs: Vec<DocInfo>,
    /// How many documents there are in all.
    pub total: u64,
    /// The `offset` of the next page; `null` on the last page.
    #[schema(required = true)]
    pub next_offset: Option<u64>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Documents per page.
    #[param(minimum = 1, maximum = 500, default = 50)]
    limit: Option<usize>,
    /// How many documents to skip.
    #[param(minimum = 0, default = 0)]
    offset: Option<usize>,
}

/// The body of `POST /api/docs`; every field is optional, and so is the body itself.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateDoc {
    /// 1–128 characters of `[A-Za-z0-9._-]`; a random 16-character `[a-z0-9]` id if absent.
    pub id: Option<String>,
    pub title: Option<String>,
    /// The initial body, read as `format`.
    pub content: Option<String>,
    /// How `content` is written; `markdown` if absent.
    pub format: Option<TextFormat>,
}

/// A text format of the document body.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TextFormat {
    Markdown,
    Html,
    Text,
    /// Quill Delta JSON.
    Delta,
}

impl From<TextFormat> for quire_model::convert::Format {
    fn from(format: TextFormat) -> Self {
        use quire_model::convert::Format;
        match format {
            TextFormat::Markdown => Format::Markdown,
            TextFormat::Html => Format::Html,
            TextFormat::Text => Format::Text,
            TextFormat::Delta => Format::Delta,
        }
    }
}

/// List documents
///
/// Newest `updated_ms` first. The list is read from the metadata the document tasks write, which
/// may lag an ongoing edit by a couple of seconds.
#[utoipa::path(
    get,
    path = "/api/docs",
    tag = "docs",
    params(ListQuery),
    responses(
        (status = 200, description = "One page of documents", body = DocList),
        (status = 400, description = "Bad `limit` or `offset`", body = ErrorBody),
    )
)]
pub async fn list(
    State(app): State<AppState>,
    _owner: OwnerAccess,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<DocList>, ApiError> {
    let Query(query) = query?;
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::BadRequest(format!(
            "limit must be between 1 and {MAX_LIMIT}"
        )));
    }
    let offset = query.offset.unwrap_or(0);
    // The store reads this page only (newest first, ties by id, so pages do not overlap).
    let page = app.docs.list(offset, limit).await?;
    let end = offset.saturating_add(page.docs.len());
    Ok(Json(DocList {
        docs: page.docs.into_iter().map(|(id, meta)| DocInfo::new(&id, meta)).collect(),
        total: page.total,
        next_offset: ((end as u64) < page.total).then_some(end as u64),
    }))
}

/// Create a document
///
/// With an optional title and initial content. Content that cannot be read in its format
/// creates nothing.
#[utoipa::path(
    post,
    path = "/api/docs",
    tag = "docs",
    request_body(content = Option<CreateDoc>, content_type = "application/json",
        description = "May be empty: a random id, no title, no content"),
    responses(
        (status = 201, description = "Created", body = DocInfo,
            headers(("Location" = String, description = "`/api/docs/{id}`"))),
        (status = 400, description = "Bad id, malformed JSON, or content that does not parse", body = ErrorBody),
        (status = 401, description = "No valid credentials", body = ErrorBody),
        (status = 403, description = "The credentials do not allow it", body = ErrorBody),
        (status = 409, description = "A document with this id exists", body = ErrorBody),
        (status = 413, description = "Body over the server's limit", body = ErrorBody),
        (status = 415, description = "A body that is not `application/json`", body = ErrorBody),
    )
)]
pub async fn create(
    State(app): State<AppState>,
    _owner: OwnerAccess,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let body = body.map_err(|e| ApiError::from_body_rejection(e, app.shared.config.max_message_bytes))?;
    let request = parse_create(&headers, &body)?;
    if request.title.as_ref().is_some_and(|t| t.len() > MAX_TITLE_BYTES) {
        return Err(ApiError::BadRequest(format!("the title is longer than {MAX_TITLE_BYTES} bytes")));
    }
    let id = match &request.id {
        Some(id) => DocId::parse(id)?,
        None => random_id()?,
    };
    let content = request.content.map(|text| {
        let format = request.format.unwrap_or(TextFormat::Markdown);
        (format.into(), text.into())
    });
    let meta = app.docs.create(&id, request.title, content).await?;
    let location = format!("/api/docs/{id}");
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(DocInfo::new(&id, meta)),
    ))
}

/// An empty body is an empty request; anything else must be JSON and say so.
fn parse_create(headers: &HeaderMap, body: &[u8]) -> Result<CreateDoc, ApiError> {
    if body.is_empty() {
        return Ok(CreateDoc::default());
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let essence = content_type.split(';').next().unwrap_or_default().trim();
    if !essence.eq_ignore_ascii_case("application/json") {
        return Err(ApiError::UnsupportedMediaType(format!(
            "expected application/json, got `{content_type}`"
        )));
    }
    serde_json::from_slice(body).map_err(|e| ApiError::BadRequest(format!("invalid body: {e}")))
}

/// A fresh id from the OS's CSPRNG. Rejection sampling keeps every character equally likely
/// (252 = 7 × 36 is the largest multiple of 36 below 256). A collision, at 83 bits, would come
/// back as 409 like any other.
fn random_id() -> Result<DocId, ApiError> {
    let mut id = String::with_capacity(GENERATED_ID_LEN);
    let mut bytes = [0u8; 32];
    while id.len() < GENERATED_ID_LEN {
        getrandom::fill(&mut bytes).map_err(|e| ApiError::Internal(format!("getrandom: {e}")))?;
        for byte in bytes.iter().filter(|&&b| b < 252) {
            if id.len() < GENERATED_ID_LEN {
                id.push(char::from(
                    ID_ALPHABET[usize::from(*byte) % ID_ALPHABET.len()],
                ));
            }
        }
    }
    Ok(DocId::parse(&id)?)
}

/// Get a document's metadata
#[utoipa::path(
    get,
    path = "/api/docs/{id}",
    tag = "docs",
    params(("id" = String, Path, description = "Document id: 1–128 characters of `[A-Za-z0-9._-]`")),
    responses(
        (status = 200, description = "The document's metadata", body = DocInfo),
        (status = 400, description = "Bad id", body = ErrorBody),
        (status = 401, description = "No valid credentials", body = ErrorBody),
        (status = 403, description = "The credentials do not allow it", body = ErrorBody),
        (status = 404, description = "No such document", body = ErrorBody),
    )
)]
pub async fn get(State(app): State<AppState>, access: Viewer) -> Result<Json<DocInfo>, ApiError> {
    let meta = app.docs.meta(&access.id).await?;
    Ok(Json(DocInfo::new(&access.id, meta)))
}

/// Delete a document
///
/// Everyone connected to it is disconnected (WebSocket close code 4410) and it is removed from
/// disk.
#[utoipa::path(
    delete,
    path = "/api/docs/{id}",
    tag = "docs",
    params(("id" = String, Path, description = "Document id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "Bad id", body = ErrorBody),
        (status = 401, description = "No valid credentials", body = ErrorBody),
        (status = 403, description = "The credentials do not allow it", body = ErrorBody),
        (status = 404, description = "No such document", body = ErrorBody),
    )
)]
pub async fn delete(State(app): State<AppState>, access: DocOwner) -> Result<StatusCode, ApiError> {
    app.docs.delete(&access.id).await?;
    // Its links would open the next document of this id: they go with it.
    if let Some(keys) = app.auth.keys() {
        keys.links().remove_all(&access.id).await.map_err(|e| ApiError::Internal(crate::error::chain(&e)))?;
    }
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_are_16_lowercase_alphanumerics_and_differ() {
        let a = random_id().unwrap();
        let b = random_id().unwrap();
        for id in [&a, &b] {
            assert_eq!(id.as_str().len(), GENERATED_ID_LEN);
            assert!(
                id.as_str().bytes().all(|c| ID_ALPHABET.contains(&c)),
                "{id}"
            );
        }
        assert_ne!(a, b);
    }
}
