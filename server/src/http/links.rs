//! `/api/docs/{id}/links`: share links, "anyone with the link can view / can edit", as the
//! owner makes, lists and removes them. Removing one closes every connection that came in with
//! it at once (4403), and its token is refused everywhere after.
//!
//! A link's URL carries its token in the fragment (`/d/{doc}#token=…`): a fragment never
//! reaches a server's log or a `Referer` header.

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::access::DocOwner;
use super::openapi::ErrorBody;
use crate::auth::links::Link;
use crate::auth::{now_ms, Auth, Role};
use crate::error::{ApiError, DocError};
use crate::state::AppState;

/// Longest label, in bytes: a few words to tell links apart ("for the board").
const MAX_LABEL_BYTES: usize = 200;

/// What a link lets its holder do.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum LinkRole {
    View,
    Edit,
}

impl From<LinkRole> for Role {
    fn from(role: LinkRole) -> Role {
        match role {
            LinkRole::View => Role::View,
            LinkRole::Edit => Role::Edit,
        }
    }
}

/// The body of `POST /api/docs/{id}/links`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewLink {
    pub role: LinkRole,
    /// The link stops working this many seconds from now; without it, it works until removed.
    #[schema(minimum = 1)]
    pub expires_in_secs: Option<u64>,
    /// To tell links apart; at most 200 bytes.
    pub label: Option<String>,
}

/// A share link.
#[derive(Debug, Serialize, ToSchema)]
pub struct LinkInfo {
    pub id: String,
    #[schema(value_type = String, example = "view")]
    pub role: Role,
    /// The address to share: the app at `/d/{doc}`, the token in the fragment.
    pub url: String,
    /// The token alone, for a stock y-websocket client (`params: { token }`) or the API
    /// (`Authorization: Bearer`).
    pub token: String,
    pub label: Option<String>,
    pub created_ms: u64,
    /// When it stops working (ms since the epoch); `null`: when removed.
    #[schema(required = true)]
    pub expires_ms: Option<u64>,
}

/// The links of one document, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct LinkList {
    pub links: Vec<LinkInfo>,
}

fn info(app: &AppState, keys: &Auth, headers: &HeaderMap, link: Link) -> LinkInfo {
    let token = keys.link_token(&link);
    LinkInfo {
        url: format!("{}/d/{}#token={token}", base_url(app, headers), link.doc),
        id: link.id,
        role: link.role,
        token,
        label: link.label,
        created_ms: link.created_ms,
        expires_ms: link.expires_ms,
    }
}

/// Where this server is reached: `--public-url`, or the host the request was sent to.
fn base_url(app: &AppState, headers: &HeaderMap) -> String {
    if let Some(url) = &app.shared.config.public_url {
        return url.trim_end_matches('/').to_owned();
    }
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("localhost");
    format!("http://{host}")
}

/// Create a share link
///
/// Owner only. Anyone with the link can then open the document with its role.
#[utoipa::path(
    post,
    path = "/api/docs/{id}/links",
    operation_id = "create_link",
    tag = "links",
    params(("id" = String, Path, description = "Document id")),
    request_body(content = NewLink, content_type = "application/json"),
    responses(
        (status = 201, description = "Created", body = LinkInfo),
        (status = 400, description = "Bad id or body", body = ErrorBody),
        (status = 401, description = "No valid credentials", body = ErrorBody),
        (status = 403, description = "Not the owner", body = ErrorBody),
        (status = 404, description = "No such document", body = ErrorBody),
    )
)]
pub async fn create(
    State(app): State<AppState>,
    access: DocOwner,
    headers: HeaderMap,
    body: Result<Json<NewLink>, JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let Json(request) = body.map_err(ApiError::from_json_rejection)?;
    if request.label.as_ref().is_some_and(|l| l.len() > MAX_LABEL_BYTES) {
        return Err(ApiError::BadRequest(format!("the label is longer than {MAX_LABEL_BYTES} bytes")));
    }
    if request.expires_in_secs == Some(0) {
        return Err(ApiError::BadRequest("expires_in_secs must be at least 1".into()));
    }
    // A link to nothing would open an empty document and create it.
    app.docs.meta(&access.id).await?;
    let now = now_ms();
    let expires_ms = request.expires_in_secs.map(|s| now.saturating_add(s.saturating_mul(1000)));
    let keys = app.auth.keys().ok_or(ApiError::NoAccessControl)?;
    let link = keys
        .links()
        .create(&access.id, request.role.into(), request.label, now, expires_ms)
        .await
        .map_err(|e| ApiError::Internal(crate::error::chain(&e)))?;
    Ok((StatusCode::CREATED, Json(info(&app, keys, &headers, link))))
}

/// List a document's share links
#[utoipa::path(
    get,
    path = "/api/docs/{id}/links",
    operation_id = "list_links",
    tag = "links",
    params(("id" = String, Path, description = "Document id")),
    responses(
        (status = 200, description = "Its links, oldest first", body = LinkList),
        (status = 401, description = "No valid credentials", body = ErrorBody),
        (status = 403, description = "Not the owner", body = ErrorBody),
    )
)]
pub async fn list(State(app): State<AppState>, access: DocOwner, headers: HeaderMap) -> Result<Json<LinkList>, ApiError> {
    let keys = app.auth.keys().ok_or(ApiError::NoAccessControl)?;
    let links = keys.links().of(&access.id).await.map_err(|e| ApiError::Internal(crate::error::chain(&e)))?;
    let links = links.into_iter().map(|l| info(&app, keys, &headers, l)).collect();
    Ok(Json(LinkList { links }))
}

/// Remove a share link
///
/// Everyone connected through it is disconnected (WebSocket close 4403) at once, and its token
/// is refused from then on.
#[utoipa::path(
    delete,
    path = "/api/docs/{id}/links/{link}",
    operation_id = "remove_link",
    tag = "links",
    params(("id" = String, Path, description = "Document id"), ("link" = String, Path, description = "Link id")),
    responses(
        (status = 204, description = "Removed"),
        (status = 401, description = "No valid credentials", body = ErrorBody),
        (status = 403, description = "Not the owner", body = ErrorBody),
        (status = 404, description = "No such link", body = ErrorBody),
    )
)]
pub async fn remove(
    State(app): State<AppState>,
    access: DocOwner,
    Path((_, link)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let keys = app.auth.keys().ok_or(ApiError::NoAccessControl)?;
    let removed = keys.links().remove(&access.id, &link).await.map_err(|e| ApiError::Internal(crate::error::chain(&e)))?;
    if !removed {
        return Err(ApiError::Doc(DocError::NoSuchLink));
    }
    app.docs.revoke(&access.id, &link).await;
    Ok(StatusCode::NO_CONTENT)
}
