//! The HTTP surface: one feature per file, assembled here.

mod health;
mod metrics;

use axum::routing::get;
use axum::Router;

use crate::state::AppState;
use crate::ws;

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/metrics", get(metrics::metrics))
        .route("/ws/{doc}", get(ws::upgrade))
        .with_state(state)
}
