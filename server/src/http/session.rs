//! The owner's sign-in: the URL quire prints at start (`/?key=…`) signs a browser in, as
//! Jupyter's does, and leaves the key out of the address bar; `/api/session` tells the app who
//! it is, signs in with the key, and signs out.

use axum::extract::{Query, Request, State};
use axum::http::{header, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Json;
use quire_model::DocId;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::access::grant;
use super::openapi::ErrorBody;
use crate::auth::{Denied, Role};
use crate::error::ApiError;
use crate::state::AppState;

/// What the caller is.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionInfo {
    /// Whether the server checks access at all (`false` with `--auth none`).
    pub access_control: bool,
    /// Whether the caller is the owner.
    pub owner: bool,
    /// With `?doc=`: what the caller may do with that document (`view`, `edit`, `owner`), or
    /// `null` if nothing.
    #[schema(value_type = Option<String>, required = true)]
    pub role: Option<Role>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SessionQuery {
    /// A document id, to learn the caller's role on it.
    doc: Option<String>,
}

/// Who am I
///
/// Whether the caller is the owner and, for a document, what it may do with it: the app shows
/// "View only" and the Share button from this.
#[utoipa::path(
    get,
    path = "/api/session",
    operation_id = "get_session",
    tag = "session",
    params(SessionQuery),
    responses((status = 200, description = "The caller", body = SessionInfo))
)]
pub async fn get(State(app): State<AppState>, Query(query): Query<SessionQuery>, request: Request) -> Json<SessionInfo> {
    let (parts, _) = request.into_parts();
    let owner = grant(&app, None, &parts).await.is_ok_and(|g| g.role == Role::Owner);
    let role = match query.doc.and_then(|doc| DocId::parse(&doc).ok()) {
        Some(doc) => grant(&app, Some(&doc), &parts).await.ok().map(|g| g.role),
        None => None,
    };
    Json(SessionInfo {
        access_control: app.auth.keys().is_some(),
        owner,
        role,
    })
}

/// The body of `POST /api/session`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignIn {
    /// The owner key.
    pub key: String,
}

/// Sign in as the owner
///
/// With the owner key: sets the session cookie (HttpOnly, SameSite=Strict).
#[utoipa::path(
    post,
    path = "/api/session",
    operation_id = "sign_in",
    tag = "session",
    request_body(content = SignIn, content_type = "application/json"),
    responses(
        (status = 204, description = "Signed in"),
        (status = 401, description = "Not the owner key", body = ErrorBody),
    )
)]
pub async fn sign_in(State(app): State<AppState>, Json(body): Json<SignIn>) -> Result<Response, ApiError> {
    let keys = app.auth.keys().ok_or(ApiError::NoAccessControl)?;
    if !keys.is_owner_key(&body.key) {
        return Err(Denied::InvalidCredentials.into());
    }
    Ok((StatusCode::NO_CONTENT, [(header::SET_COOKIE, keys.sign_in())]).into_response())
}

/// Sign out
#[utoipa::path(
    delete,
    path = "/api/session",
    operation_id = "sign_out",
    tag = "session",
    responses((status = 204, description = "Signed out"))
)]
pub async fn sign_out(State(app): State<AppState>) -> Result<Response, ApiError> {
    let keys = app.auth.keys().ok_or(ApiError::NoAccessControl)?;
    Ok((StatusCode::NO_CONTENT, [(header::SET_COOKIE, keys.sign_out())]).into_response())
}

/// For the app's pages: `?key=<owner key>` signs the browser in and sends it to the same page
/// without the key, so it stays out of the address bar and the history. A wrong key signs
/// nothing in (the page then says so).
pub async fn sign_in_from_url(State(app): State<AppState>, request: Request, next: Next) -> Response {
    let Some(keys) = app.auth.keys() else { return next.run(request).await };
    let Some((key, rest)) = take_key(request.uri()) else { return next.run(request).await };
    let target = format!("{}{}", request.uri().path(), rest.map(|q| format!("?{q}")).unwrap_or_default());
    if keys.is_owner_key(&key) {
        ([(header::SET_COOKIE, keys.sign_in())], Redirect::to(&target)).into_response()
    } else {
        Redirect::to(&format!("{target}#signin=failed")).into_response()
    }
}

/// The `key` query parameter and the query without it.
fn take_key(uri: &Uri) -> Option<(String, Option<String>)> {
    let query = uri.query()?;
    let mut key = None;
    let rest: Vec<&str> = query
        .split('&')
        .filter(|pair| match pair.strip_prefix("key=") {
            Some(value) => {
                key = Some(value.to_owned());
                false
            }
            None => true,
        })
        .collect();
    let key = key?;
    Some((key, (!rest.is_empty()).then(|| rest.join("&"))))
}
