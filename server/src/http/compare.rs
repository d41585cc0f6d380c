//! `/api/docs/{id}/versions/{v}/content` and `/diff`: what a version holds, in every export
//! format, and what changed between two states, each change with who made it, as Google
//! Docs' "Show changes" colours it.
//!
//! A comparison is a list of spans in document order, each a Quill Delta insert (text, or an
//! embed) with its attributes, marked `kept`, `inserted`, `deleted` or `formatted` (kept text
//! whose formatting changed: `old_attributes` says how it was). An editor renders it as one
//! read-only document: the newer state's text with the deleted text put back where it was,
//! struck through, and changes coloured by `author`.

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::response::Response;
use axum::Json;
use bytes::Bytes;
use quire_model::convert::Format;
use quire_model::diff::Change;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::access::Editor;
use super::content::{exported, ExportFormat, YjsEncoding, YJS_MIME};
use super::openapi::ErrorBody;
use super::versions::{version_id, AuthorInfo, VersionPath};
use crate::doc::history::{Against, Attributed, Compared, Side};
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::history::{VersionKind, VersionRecord};

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ContentQuery {
    /// `markdown` (default), `html`, `text`, `delta` (Quill Delta JSON) or `yjs` (a binary Yjs
    /// update holding the whole state).
    #[param(inline)]
    format: Option<ExportFormat>,
    /// Only with `format=yjs`: `v1` (default) or `v2`.
    #[param(inline)]
    encoding: Option<YjsEncoding>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DiffQuery {
    /// `previous` (default): the changes this version made since the one before it;
    /// `current`: the changes since this version, up to now; or a version id: the changes
    /// between the two, the older one first.
    #[param(value_type = String, example = "previous")]
    against: Option<String>,
}

/// A version, as a comparison names its sides.
#[derive(Debug, Serialize, ToSchema)]
pub struct VersionRef {
    pub id: u64,
    pub created_ms: u64,
    #[schema(required = true)]
    pub name: Option<String>,
    #[schema(value_type = String, example = "auto")]
    pub kind: VersionKind,
}

impl From<VersionRecord> for VersionRef {
    fn from(record: VersionRecord) -> Self {
        VersionRef { id: record.id, created_ms: record.created_ms, name: record.name, kind: record.kind }
    }
}

/// What happened to a span.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ChangeKind {
    Kept,
    Inserted,
    Deleted,
    /// Kept text whose formatting changed.
    Formatted,
}

/// A span of the comparison.
#[derive(Debug, Serialize, ToSchema)]
pub struct SpanInfo {
    pub change: ChangeKind,
    /// Text, or an embed as in a Quill Delta.
    #[schema(value_type = Object, example = "Revenue grew")]
    pub insert: serde_json::Value,
    /// Quill attributes: as in the newer state (for deleted text, as it had them).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub attributes: Option<serde_json::Value>,
    /// For `formatted`: the attributes it had in the older state.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub old_attributes: Option<serde_json::Value>,
    /// Who made the change (not on kept text). A deletion, or a change of formatting alone,
    /// that the server did not see made is `unknown` when several people changed the document
    /// between the two states, with those people in `candidates`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub author: Option<AuthorInfo>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub candidates: Vec<AuthorInfo>,
}

/// Two states of a document compared.
#[derive(Debug, Serialize, ToSchema)]
pub struct DiffInfo {
    /// The older side; `null`: before the first version (an empty document).
    #[schema(required = true)]
    pub from: Option<VersionRef>,
    /// The newer side; `null`: the document as it is now.
    #[schema(required = true)]
    pub to: Option<VersionRef>,
    /// The title in the older state, and in the newer.
    pub old_title: String,
    pub title: String,
    /// The body, in document order.
    pub spans: Vec<SpanInfo>,
}

fn json<T: Serialize>(value: &T) -> serde_json::Value {
    // Yjs values are JSON values already (non-finite numbers become null).
    serde_json::to_value(value).unwrap_or(serde_json::Value::Null)
}

fn span_info(attributed: Attributed) -> SpanInfo {
    let Attributed { span, author, candidates } = attributed;
    let attributes = |a: Option<Box<yrs::types::Attrs>>| a.filter(|a| !a.is_empty()).map(|a| json(&*a));
    SpanInfo {
        change: match span.change {
            Change::Kept => ChangeKind::Kept,
            Change::Inserted => ChangeKind::Inserted,
            Change::Deleted => ChangeKind::Deleted,
            Change::Formatted => ChangeKind::Formatted,
        },
        insert: json(&span.insert),
        attributes: attributes(span.attributes),
        old_attributes: attributes(span.old_attributes),
        author: author.map(AuthorInfo::from),
        candidates: candidates.into_iter().map(AuthorInfo::from).collect(),
    }
}

fn side(side: Side) -> Option<VersionRef> {
    match side {
        Side::Version(record) => Some(record.into()),
        Side::Current | Side::Empty => None,
    }
}

/// Export a version
///
/// A version's content in any export format, as `GET /api/docs/{id}/content` exports the
/// document (the same formats, headers and encodings).
#[utoipa::path(
    get,
    path = "/api/docs/{id}/versions/{v}/content",
    operation_id = "export_version",
    tag = "versions",
    params(("id" = String, Path, description = "Document id"), ("v" = u64, Path, description = "Version id"), ContentQuery),
    responses(
        (status = 200, description = "The version in the requested format", content(
            (String = "text/markdown"),
            (String = "text/html"),
            (String = "text/plain"),
            (Object = "application/json"),
            (super::content::YjsUpdate = "application/octet-stream"),
        )),
        (status = 400, description = "Bad id, version, format or encoding", body = ErrorBody),
        (status = 401, description = "No valid credentials", body = ErrorBody),
        (status = 403, description = "The credentials do not allow editing", body = ErrorBody),
        (status = 404, description = "No such document or version", body = ErrorBody),
    )
)]
pub async fn content(
    State(app): State<AppState>,
    access: Editor,
    path: Result<Path<VersionPath>, PathRejection>,
    query: Result<Query<ContentQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let v = version_id(path)?;
    let Query(query) = query?;
    match query.format.unwrap_or(ExportFormat::Markdown).text() {
        Some(text) => {
            if query.encoding.is_some() {
                return Err(ApiError::BadRequest("`encoding` applies only to format=yjs".into()));
            }
            let format = Format::from(text);
            let body = app.docs.export_version(&access.id, v, format).await?;
            Ok(exported(Bytes::from(body), format.mime_type()))
        }
        None => {
            let v2 = matches!(query.encoding, Some(YjsEncoding::V2));
            let body = app.docs.version_yjs(&access.id, v, v2).await?;
            Ok(exported(Bytes::from(body), YJS_MIME))
        }
    }
}

/// Compare a version
///
/// What changed between two states, in document order: kept, inserted, deleted and reformatted
/// text, each change with who made it. By default the changes this version made since the one
/// before it (what a version history panel highlights when the version is selected).
#[utoipa::path(
    get,
    path = "/api/docs/{id}/versions/{v}/diff",
    operation_id = "compare_version",
    tag = "versions",
    params(("id" = String, Path, description = "Document id"), ("v" = u64, Path, description = "Version id"), DiffQuery),
    responses(
        (status = 200, description = "The comparison", body = DiffInfo),
        (status = 400, description = "Bad id, version or `against`", body = ErrorBody),
        (status = 401, description = "No valid credentials", body = ErrorBody),
        (status = 403, description = "The credentials do not allow editing", body = ErrorBody),
        (status = 404, description = "No such document or version", body = ErrorBody),
    )
)]
pub async fn diff(
    State(app): State<AppState>,
    access: Editor,
    path: Result<Path<VersionPath>, PathRejection>,
    query: Result<Query<DiffQuery>, QueryRejection>,
) -> Result<Json<DiffInfo>, ApiError> {
    let v = version_id(path)?;
    let Query(query) = query?;
    let against = match query.against.as_deref() {
        None | Some("previous") => Against::Previous,
        Some("current") => Against::Current,
        Some(other) => Against::Version(other.parse().map_err(|_| {
            ApiError::BadRequest(format!("`against` is `previous`, `current` or a version id, not `{other}`"))
        })?),
    };
    let Compared { from, to, old_title, new_title, spans } = app.docs.compare(&access.id, v, against).await?;
    Ok(Json(DiffInfo {
        from: side(from),
        to: side(to),
        old_title,
        title: new_title,
        spans: spans.into_iter().map(span_info).collect(),
    }))
}
