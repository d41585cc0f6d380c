//! `/api/docs/{id}/versions`: a document's version history, as Google Docs' File → Version
//! history shows it: the versions, newest first, each with its time, its name and the people
//! whose changes it holds (with their colours); naming the current version, renaming and
//! deleting one, restoring one. Editors (edit links, edit tokens, the owner) see and restore
//! history; view-only links get 403, as in Google Docs.
//!
//! A version's content and comparisons are in `compare.rs`.

use axum::extract::rejection::{BytesRejection, JsonRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::access::Editor;
use super::openapi::ErrorBody;
use crate::doc::history::VersionView;
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::history::{Author, VersionKind};

/// Page size when `?limit=` is not given: a side panel's first screenful and then some.
const DEFAULT_LIMIT: usize = 100;
/// Largest page (~300 bytes a version).
const MAX_LIMIT: usize = 1000;
/// Longest version name, in bytes: a few words ("Sent to the board").
const MAX_NAME_BYTES: usize = 200;

/// Who made changes: a person as their presence named them, or where the content came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum AuthorInfo {
    /// Someone editing live: the name and colour their editor announced.
    Person {
        name: String,
        #[schema(example = "#1a73e8")]
        color: Option<String>,
    },
    /// Content that came through the API (an import, a posted Yjs update).
    Imported,
    /// Text written again by restoring `version`, by `by` if the restore said who.
    Restored { version: u64, by: Option<PersonInfo> },
    /// Nobody the server knows (a client that announced no name).
    Unknown,
}

/// A person, as a restore names who asked for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PersonInfo {
    pub name: String,
    pub color: Option<String>,
}

impl From<Author> for AuthorInfo {
    fn from(author: Author) -> Self {
        match author {
            Author::Person { name, color } => AuthorInfo::Person { name, color },
            Author::Imported => AuthorInfo::Imported,
            Author::Restored { version, by } => AuthorInfo::Restored {
                version,
                by: by.and_then(|by| match *by {
                    Author::Person { name, color } => Some(PersonInfo { name, color }),
                    _ => None,
                }),
            },
            Author::Unknown => AuthorInfo::Unknown,
        }
    }
}

/// One version.
#[derive(Debug, Serialize, ToSchema)]
pub struct VersionInfo {
    /// Unique within the document and increasing (milliseconds since the epoch when taken,
    /// moved on if taken).
    pub id: u64,
    /// When it was taken, in milliseconds since the Unix epoch.
    pub created_ms: u64,
    /// Named versions are kept until deleted; automatic ones are thinned as they age.
    #[schema(required = true)]
    pub name: Option<String>,
    /// `auto`: taken when editing settled or during a long session; `manual`: named on
    /// demand; `restore`: the state a restore made.
    #[schema(value_type = String, example = "auto")]
    pub kind: VersionKind,
    /// For `restore`: the version restored.
    #[schema(required = true)]
    pub restored_from: Option<u64>,
    /// Who changed something since the version before (people once each, in no set order).
    pub editors: Vec<AuthorInfo>,
    /// Bytes the version takes in the store.
    pub size_bytes: u64,
}

impl From<VersionView> for VersionInfo {
    fn from(view: VersionView) -> Self {
        let record = view.record;
        VersionInfo {
            id: record.id,
            created_ms: record.created_ms,
            name: record.name,
            kind: record.kind,
            restored_from: record.restored_from,
            editors: view.editors.into_iter().map(AuthorInfo::from).collect(),
            size_bytes: record.size_bytes,
        }
    }
}

/// One page of a document's versions.
#[derive(Debug, Serialize, ToSchema)]
pub struct VersionList {
    /// Newest first.
    pub versions: Vec<VersionInfo>,
    /// How many versions there are in all.
    pub total: u64,
    /// The `offset` of the next page; `null` on the last page.
    #[schema(required = true)]
    pub next_offset: Option<u64>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Versions per page.
    #[param(minimum = 1, maximum = 1000, default = 100)]
    limit: Option<usize>,
    /// How many versions to skip.
    #[param(minimum = 0, default = 0)]
    offset: Option<usize>,
}

/// The body of `POST /api/docs/{id}/versions`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewVersion {
    /// At most 200 bytes, not blank.
    pub name: String,
}

/// The body of `PATCH /api/docs/{id}/versions/{v}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Rename {
    /// The new name; `null` takes the name away (the version is then thinned as automatic
    /// ones are).
    #[schema(required = true)]
    pub name: Option<String>,
}

/// The optional body of `POST /api/docs/{id}/versions/{v}/restore`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RestoreBody {
    /// Who restores (the name and colour their editor shows): the restored text is
    /// attributed to "restored by" them.
    pub by: Option<PersonInfo>,
}

/// What a restore did.
#[derive(Debug, Serialize, ToSchema)]
pub struct RestoreResult {
    /// False if the document already was as the version (nothing was written).
    pub changed: bool,
    /// The version taken right after the restore (`kind: restore`); `null` if nothing changed.
    #[schema(required = true)]
    pub version: Option<VersionInfo>,
}

/// A document id and a version id from the path.
#[derive(Debug, Deserialize)]
pub struct VersionPath {
    #[allow(dead_code, reason = "read by the access extractor")]
    id: String,
    v: u64,
}

pub fn version_id(path: Result<Path<VersionPath>, PathRejection>) -> Result<u64, ApiError> {
    Ok(path?.0.v)
}

fn checked_name(name: &str) -> Result<String, ApiError> {
    let name = name.trim();
    if name.is_empty() {
        return Err(ApiError::BadRequest("a version's name must not be blank".into()));
    }
    if name.len() > MAX_NAME_BYTES {
        return Err(ApiError::BadRequest(format!("a version's name is at most {MAX_NAME_BYTES} bytes")));
    }
    Ok(name.to_owned())
}

/// List a document's versions
///
/// Newest first, each with the people whose changes it holds since the version before it.
/// Automatic versions are taken when editing settles and during long sessions; as they age
/// they are thinned (all of the last day, then one an hour for a month, then one a day).
#[utoipa::path(
    get,
    path = "/api/docs/{id}/versions",
    operation_id = "list_versions",
    tag = "versions",
    params(("id" = String, Path, description = "Document id"), ListQuery),
    responses(
        (status = 200, description = "One page of versions", body = VersionList),
        (status = 400, description = "Bad id, `limit` or `offset`", body = ErrorBody),
        (status = 401, description = "No valid credentials", body = ErrorBody),
        (status = 403, description = "The credentials do not allow editing (view-only links see no history)", body = ErrorBody),
        (status = 404, description = "No such document", body = ErrorBody),
    )
)]
pub async fn list(
    State(app): State<AppState>,
    access: Editor,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<VersionList>, ApiError> {
    let Query(query) = query?;
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::BadRequest(format!("limit must be between 1 and {MAX_LIMIT}")));
    }
    let offset = query.offset.unwrap_or(0);
    let (views, total) = app.docs.versions(&access.id, offset, limit).await?;
    let end = offset.saturating_add(views.len()) as u64;
    Ok(Json(VersionList {
        versions: views.into_iter().map(VersionInfo::from).collect(),
        total,
        next_offset: (end < total).then_some(end),
    }))
}

/// Name the current version
///
/// A version of the document as it is now, with a name (kept until deleted). If nothing changed
/// since the newest version and it has no name, that version is named instead.
#[utoipa::path(
    post,
    path = "/api/docs/{id}/versions",
    operation_id = "create_version",
    tag = "versions",
    params(("id" = String, Path, description = "Document id")),
    request_body(content = NewVersion, content_type = "application/json"),
    responses(
        (status = 201, description = "The named version", body = VersionInfo,
            headers(("Location" = String, description = "`/api/docs/{id}/versions/{v}/content`"))),
        (status = 400, description = "Bad id or name", body = ErrorBody),
        (status = 401, description = "No valid credentials", body = ErrorBody),
        (status = 403, description = "The credentials do not allow editing", body = ErrorBody),
        (status = 404, description = "No such document", body = ErrorBody),
        (status = 409, description = "The document has as many named versions as it may", body = ErrorBody),
    )
)]
pub async fn create(
    State(app): State<AppState>,
    access: Editor,
    body: Result<Json<NewVersion>, JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let Json(request) = body.map_err(ApiError::from_json_rejection)?;
    let name = checked_name(&request.name)?;
    let record = app.docs.name_version(&access.id, name).await?;
    let location = format!("/api/docs/{}/versions/{}/content", access.id, record.id);
    let view = app.docs.describe(&access.id, record).await?;
    Ok((StatusCode::CREATED, [(header::LOCATION, location)], Json(VersionInfo::from(view))))
}

/// Rename a version
///
/// Any version can be named (it is then kept until deleted); `null` takes its name away.
#[utoipa::path(
    patch,
    path = "/api/docs/{id}/versions/{v}",
    operation_id = "rename_version",
    tag = "versions",
    params(("id" = String, Path, description = "Document id"), ("v" = u64, Path, description = "Version id")),
    request_body(content = Rename, content_type = "application/json"),
    responses(
        (status = 200, description = "Renamed", body = VersionInfo),
        (status = 400, description = "Bad id or name", body = ErrorBody),
        (status = 401, description = "No valid credentials", body = ErrorBody),
        (status = 403, description = "The credentials do not allow editing", body = ErrorBody),
        (status = 404, description = "No such document or version", body = ErrorBody),
        (status = 409, description = "The document has as many named versions as it may", body = ErrorBody),
    )
)]
pub async fn rename(
    State(app): State<AppState>,
    access: Editor,
    path: Result<Path<VersionPath>, PathRejection>,
    body: Result<Json<Rename>, JsonRejection>,
) -> Result<Json<VersionInfo>, ApiError> {
    let v = version_id(path)?;
    let Json(request) = body.map_err(ApiError::from_json_rejection)?;
    let name = request.name.as_deref().map(checked_name).transpose()?;
    let record = app.docs.rename_version(&access.id, v, name).await?;
    Ok(Json(app.docs.describe(&access.id, record).await?.into()))
}

/// Delete a version
///
/// Its changes count toward the next newer version from then on.
#[utoipa::path(
    delete,
    path = "/api/docs/{id}/versions/{v}",
    operation_id = "delete_version",
    tag = "versions",
    params(("id" = String, Path, description = "Document id"), ("v" = u64, Path, description = "Version id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "Bad id", body = ErrorBody),
        (status = 401, description = "No valid credentials", body = ErrorBody),
        (status = 403, description = "The credentials do not allow editing", body = ErrorBody),
        (status = 404, description = "No such document or version", body = ErrorBody),
    )
)]
pub async fn remove(
    State(app): State<AppState>,
    access: Editor,
    path: Result<Path<VersionPath>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    let v = version_id(path)?;
    app.docs.delete_version(&access.id, v).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Restore a version
///
/// Never rewrites history: the server makes one ordinary edit that turns the current content
/// and title into the version's (only what changed since is touched), which everyone connected
/// receives live and offline clients merge like any other change. If the document changed since
/// its newest version, that state is taken as a version first; the state after the restore is
/// taken as a version too (`kind: restore`), so restoring the version before it undoes the
/// restore.
#[utoipa::path(
    post,
    path = "/api/docs/{id}/versions/{v}/restore",
    operation_id = "restore_version",
    tag = "versions",
    params(("id" = String, Path, description = "Document id"), ("v" = u64, Path, description = "Version id")),
    request_body(content = Option<RestoreBody>, content_type = "application/json",
        description = "May be empty"),
    responses(
        (status = 200, description = "Restored", body = RestoreResult),
        (status = 400, description = "Bad id or body", body = ErrorBody),
        (status = 401, description = "No valid credentials", body = ErrorBody),
        (status = 403, description = "The credentials do not allow editing", body = ErrorBody),
        (status = 404, description = "No such document or version", body = ErrorBody),
        (status = 503, description = "The server cannot save changes right now", body = ErrorBody),
    )
)]
pub async fn restore(
    State(app): State<AppState>,
    access: Editor,
    path: Result<Path<VersionPath>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<RestoreResult>, ApiError> {
    let v = version_id(path)?;
    let body = body.map_err(|e| ApiError::from_body_rejection(e, app.shared.config.max_message_bytes))?;
    let request: RestoreBody = if body.iter().all(u8::is_ascii_whitespace) {
        RestoreBody::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| ApiError::BadRequest(format!("bad restore body: {e}")))?
    };
    let by = match request.by {
        Some(p) => Some(Author::Person { name: checked_name(&p.name)?, color: p.color.map(|c| checked_name(&c)).transpose()? }),
        None => None,
    };
    let restored = app.docs.restore(&access.id, v, by).await?;
    let version = match restored.version {
        Some(record) => Some(app.docs.describe(&access.id, record).await?.into()),
        None => None,
    };
    Ok(Json(RestoreResult { changed: restored.changed, version }))
}
