//! The web app: `web/dist` as `cargo xtask web` builds it, served from `Config::web_dir`.
//!
//! Every page route answers with the same `index.html`; the app reads the path itself. Its
//! assets sit under `/assets/`; its service worker is `/sw.js` (at the root, so that its scope
//! covers every page). File names carry no content hash, so everything is sent with
//! `Cache-Control: no-cache`: browsers keep their copy and revalidate it (a `304` while the
//! build is unchanged), and a new build is picked up on the next load.
//!
//! Every response carries a strict content security policy: the app runs only its own script
//! (and its WebAssembly), talks only to its own origin, and cannot be framed, so markup that
//! got into a document could neither run nor send anything anywhere.

use std::path::Path;

use axum::http::{header, HeaderValue};
use axum::Router;
use tower_http::services::{ServeDir, ServeFile};
use tower_http::set_header::SetResponseHeaderLayer;

use crate::state::AppState;

/// What the app may load and do. `'wasm-unsafe-eval'` lets it compile its own WebAssembly
/// module (nothing else is evaluated); styles stay `'self'` (Quill and the caret layer set
/// styles through the DOM, which a policy does not restrict); `connect-src 'self'` covers the
/// WebSocket to the same host; documents show no remote images.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; \
    style-src 'self'; img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; \
    form-action 'self'; frame-ancestors 'none'";

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
        .layer(SetResponseHeaderLayer::overriding(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        // For browsers that predate `frame-ancestors`.
        .layer(SetResponseHeaderLayer::overriding(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ))
}
