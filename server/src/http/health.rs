//! `GET /healthz`: 200 while the server can take edits and keep them (with what is wrong, if
//! something behind them is: a load balancer keeps sending users here, an operator is told);
//! 503 while it cannot, with why.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

use crate::state::AppState;
use crate::store::Health;

pub async fn healthz(State(app): State<AppState>) -> (StatusCode, Json<Value>) {
    match app.docs.store_health() {
        Health::Ok => (StatusCode::OK, Json(json!({ "status": "ok" }))),
        Health::Degraded(reason) => (StatusCode::OK, Json(json!({ "status": "degraded", "reason": reason }))),
        Health::Down(reason) => (StatusCode::SERVICE_UNAVAILABLE, Json(json!({ "status": "down", "reason": reason }))),
    }
}
