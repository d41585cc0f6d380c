//! The web app: `web/dist` as `cargo xtask web` builds it, served from `Config::web_dir`.
//!
//! Every page route answers with the same `index.html`; the app reads the path itself. Its
//! assets sit under `/assets/`; its service worker is `/sw.js` (at the root, so that its scope
//! covers every page). File names carry no content hash, so everything is sent with
//! `Cache-Control: no-cache`: browsers keep their copy and revalidate it (a `304` while the
//! build is unchanged), and a new build is picked up on the next load.

use std::path::Path;

use axum::http::{header, HeaderValue};
use axum::Router;
use tower_http::services::{ServeDir, ServeFile};
use tower_http::set_header::SetResponseHeaderLayer;

use crate::state::AppState;

/// The routes of the app in `dir`. A missing directory is not an error (the API and sync
/// work without the app); it is reported once, at startup.
pub fn routes(dir: &Path) -> Router<AppState> {
    if !dir.join("index.html").is_file() {
        tracing::warn!(
            dir = %dir.display(),
            "no web app here (build it with `cargo xtask web`): serving the API and sync only"
        );
    }
    // The web build writes a gzipped twin of each big file; clients that accept gzip get it.
    let page = ServeFile::new(dir.join("index.html")).precompressed_gzip();
    let assets = ServeDir::new(dir.join("assets")).precompressed_gzip();
    Router::new()
        .route_service("/", page.clone())
        .route_service("/d/{doc}", page)
        .route_service("/sw.js", ServeFile::new(dir.join("sw.js")))
        .nest_service("/assets", assets)
        .layer(SetResponseHeaderLayer::overriding(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-cache"),
        ))
}
