//! Who is asking: the extractors every route uses, so that no route can forget to ask the
//! [`Authorizer`](crate::auth::Authorizer) (the same one a WebSocket upgrade asks).
//!
//! - [`DocAccess`]: the `{id}` of a per-document route, and a grant of at least a role on it.
//! - [`OwnerAccess`]: the owner, for what concerns the server as a whole.

use std::collections::HashMap;

use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use quire_model::DocId;

use crate::auth::{Credentials, Grant, Role};
use crate::error::ApiError;
use crate::state::AppState;

/// The grant the request's credentials give for `doc` (`None`: the server as a whole).
pub async fn grant(app: &AppState, doc: Option<&DocId>, parts: &Parts) -> Result<Grant, ApiError> {
    let credentials = Credentials {
        headers: &parts.headers,
        query: parts.uri.query(),
        method: &parts.method,
    };
    Ok(app.auth.authorize(doc, &credentials).await?)
}

/// A document id from the path, with a grant of at least `view` (`MIN` 0), `edit` (1) or
/// `owner` (2) on it: extracting it has refused a bad id (400), missing or invalid credentials
/// (401) and too little access (403), in that order, before anything is read.
pub struct DocAccess<const MIN: u8> {
    pub id: DocId,
}

/// For the routes that read.
pub type Viewer = DocAccess<0>;
/// For the routes that change a document.
pub type Editor = DocAccess<1>;
/// For the routes that only the owner may use on a document (delete, share).
pub type DocOwner = DocAccess<2>;

const fn role(min: u8) -> Role {
    match min {
        0 => Role::View,
        1 => Role::Edit,
        _ => Role::Owner,
    }
}

impl<const MIN: u8> FromRequestParts<AppState> for DocAccess<MIN> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, ApiError> {
        // By name: a route may have more parameters than the document's (a link's id).
        let Path(params) = Path::<HashMap<String, String>>::from_request_parts(parts, app).await?;
        let raw = params.get("id").ok_or_else(|| ApiError::BadRequest("no document id in the path".into()))?;
        let id = DocId::parse(raw)?;
        let grant = grant(app, Some(&id), parts).await?;
        if grant.role < role(MIN) {
            return Err(ApiError::Forbidden);
        }
        Ok(DocAccess { id })
    }
}

/// The owner, for listing and creating documents.
pub struct OwnerAccess;

impl FromRequestParts<AppState> for OwnerAccess {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, ApiError> {
        match grant(app, None, parts).await?.role {
            Role::Owner => Ok(OwnerAccess),
            _ => Err(ApiError::Forbidden),
        }
    }
}
