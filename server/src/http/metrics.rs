//! `GET /metrics`: Prometheus text format.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use super::access::OwnerAccess;
use crate::state::AppState;

/// The owner's: the numbers say how many people use which document how much. (Scrape them
/// with the owner key as a bearer token, or from `--metrics-addr`, which asks nothing.)
pub async fn metrics(State(app): State<AppState>, _owner: OwnerAccess) -> impl IntoResponse {
    open_metrics(State(app)).await
}

/// The same, for the metrics address (which only the monitoring reaches).
pub async fn open_metrics(State(app): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")],
        app.shared.metrics.render(),
    )
}
