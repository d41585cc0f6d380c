//! The HTTP surface: one feature per file, assembled here.
//!
//! - `access`: the extractors that ask the access policy, so no route can forget to.
//! - `health`, `metrics`: operations.
//! - `docs`: `/api/docs`, the documents and their metadata.
//! - `content`: `/api/docs/{id}/content` and `/updates`, export and import.
//! - `links`: `/api/docs/{id}/links`, share links.
//! - `versions`: `/api/docs/{id}/versions`, version history: list, name, rename, delete, restore.
//! - `compare`: a version's content, and comparisons with who made each change.
//! - `session`: `/api/session` and the sign-in URL.
//! - `openapi`: `/api/openapi.json`, generated from the `/api` route list below.
//! - `pace`: request bodies must keep coming.
//! - `web`: the browser app, `/` and `/d/{doc}`.

mod access;
mod compare;
mod content;
mod docs;
mod health;
mod links;
mod metrics;
pub mod openapi;
pub(crate) mod pace;
mod session;
mod versions;
mod web;

use axum::extract::DefaultBodyLimit;
use axum::routing::get;
use axum::Router;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::state::AppState;
use crate::ws;

pub fn router(state: AppState) -> Router {
    // An import is the HTTP form of one big WebSocket message: the same limit. The handlers
    // turn axum's 413 into quire's JSON error.
    let (api, _) = api_routes().split_for_parts();
    let api = api
        .layer(DefaultBodyLimit::max(state.shared.config.max_message_bytes))
        .layer(axum::middleware::map_request_with_state(state.clone(), pace::paced));
    let web = web::routes(&state.shared.config.web_dir)
        .layer(axum::middleware::from_fn_with_state(state.clone(), session::sign_in_from_url));
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/metrics", get(metrics::metrics))
        .route("/ws/{doc}", get(ws::upgrade))
        .merge(api)
        .merge(web)
        .with_state(state)
}

/// The metrics address's routes: `/metrics` and `/healthz`, asking for nothing.
pub fn metrics_router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/metrics", get(metrics::open_metrics))
        .with_state(state)
}

/// `/api`: each route is registered from the `#[utoipa::path]` annotation that documents it, so
/// this list is also the OpenAPI document's. Routes of one path go in one `routes!`.
fn api_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .routes(routes!(docs::list, docs::create))
        .routes(routes!(docs::get, docs::delete))
        .routes(routes!(content::export, content::replace))
        .routes(routes!(content::merge_update))
        .routes(routes!(links::create, links::list))
        .routes(routes!(links::remove))
        .routes(routes!(versions::list, versions::create))
        .routes(routes!(versions::rename, versions::remove))
        .routes(routes!(versions::restore))
        .routes(routes!(compare::content))
        .routes(routes!(compare::diff))
        .routes(routes!(session::get, session::sign_in, session::sign_out))
        .routes(routes!(openapi::openapi_json))
}
