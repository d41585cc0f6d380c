//! `GET /healthz`: 200 while the server can take edits and make them durable.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

use crate::state::AppState;

pub async fn healthz(State(app): State<AppState>) -> (StatusCode, Json<Value>) {
    if app.docs.storage_healthy() {
        (StatusCode::OK, Json(json!({ "status": "ok" })))
    } else {
        // Edits still apply and sync, but they are not reaching the disk: say so.
        let body = json!({ "status": "degraded", "reason": "flushes to disk are failing" });
        (StatusCode::SERVICE_UNAVAILABLE, Json(body))
    }
}
