//! `GET /api/openapi.json`: the OpenAPI 3.1 document of `/api`, generated from the handlers.
//!
//! The route list in `http::api_routes` registers each handler from the same
//! `#[utoipa::path]` annotation that documents it (utoipa-axum), so the document lists exactly
//! the routes that are served, with the parameters and bodies written beside the code that reads
//! them.

use axum::http::header;
use axum::response::IntoResponse;
use serde::Serialize;
use utoipa::openapi::OpenApi as Document;
use utoipa::ToSchema;

#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "quire",
        description = "Manage quire's documents, import and export them, share them. Errors are \
            JSON `{\"error\": {\"code\", \"message\"}}`; times are milliseconds since the Unix \
            epoch. Credentials: the owner key or a token (`Authorization: Bearer …` or \
            `?token=…`), or the owner's session cookie.",
    ),
    tags(
        (name = "docs", description = "Documents and their metadata"),
        (name = "content", description = "A document's body: export, import, Yjs updates"),
        (name = "links", description = "Share links: anyone with the link can view or edit"),
        (name = "versions", description = "Version history: versions with their editors, names, \
            content, comparisons with each change's author, restore. Editors only"),
        (name = "session", description = "Who the caller is; the owner's sign-in"),
        (name = "meta", description = "This API's description"),
    )
)]
pub(super) struct ApiDoc;

/// Every error of the API, as `ApiError` renders it.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable, for programs: `bad_doc_id`, `bad_request`, `bad_content`, `unauthenticated`,
    /// `invalid_credentials`, `forbidden`, `cross_site`, `not_found`, `exists`, `too_large`,
    /// `body_timeout`, `unsupported_media_type`, `bad_update`, …
    #[schema(example = "not_found")]
    pub code: String,
    /// For people.
    #[schema(example = "no such document")]
    pub message: String,
}

/// The OpenAPI document of `/api`.
pub fn document() -> Document {
    super::api_routes().into_openapi()
}

/// The OpenAPI document of this API
#[utoipa::path(
    get,
    path = "/api/openapi.json",
    tag = "meta",
    responses((status = 200, description = "OpenAPI 3.1", content_type = "application/json"))
)]
pub async fn openapi_json() -> impl IntoResponse {
    // Built once: it depends only on the code.
    static JSON: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let json = JSON.get_or_init(|| {
        document()
            .to_pretty_json()
            .unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    });
    ([(header::CONTENT_TYPE, "application/json")], json.as_str())
}
