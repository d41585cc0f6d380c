//! `GET /ws/{doc}`: the y-websocket endpoint.
//!
//! Everything that can refuse a connection happens here, before the upgrade: the document id,
//! the authorisation hook, the connection limit. (The socket budget and the per-address cap
//! come before any of it, in [`listen`](crate::listen).) After the upgrade, [`connection`] runs
//! the socket, [`outbox`] bounds what may queue up for it and [`rate`] what it may send.

pub mod connection;
pub mod outbox;
pub mod rate;

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::{Path, RawQuery, State, WebSocketUpgrade};
use axum::http::{HeaderMap, Method};
use axum::response::Response;
use axum::Extension;
use quire_model::DocId;

use crate::auth::Credentials;
use crate::error::ApiError;
use crate::listen::ClientSlot;
use crate::state::AppState;
use crate::store::Health;

pub async fn upgrade(
    State(app): State<AppState>,
    Path(doc): Path<String>,
    RawQuery(query): RawQuery,
    method: Method,
    headers: HeaderMap,
    forwarded: Option<Extension<ClientSlot>>,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let id = DocId::parse(&doc)?;
    let credentials = Credentials {
        headers: &headers,
        query: query.as_deref(),
        method: &method,
    };
    // Refused before the upgrade: a connection that may not open the document is sent nothing
    // of it (a browser page on another site, using the owner's cookie, included).
    let grant = app.auth.authorize(Some(&id), &credentials).await?;
    let ws = ws.map_err(|e| ApiError::NotWebSocket(e.to_string()))?;
    // A document that could not be kept or shared would diverge from the other processes'
    // copies: refuse, and the client (keeping its edits) comes back after Retry-After.
    if let Health::Down(reason) = app.docs.backend_health() {
        return Err(ApiError::StoreDown(reason));
    }
    // Admission before the upgrade: past the limit, a polite 503 with Retry-After beats
    // accepting and falling over.
    let permit = app.admission.clone().try_acquire_owned().map_err(|_| {
        app.shared.metrics.connections_rejected.inc();
        ApiError::Busy
    })?;
    let config = &app.shared.config;
    let ws = ws
        .read_buffer_size(config.socket_read_buffer)
        .write_buffer_size(config.socket_write_buffer)
        .max_message_size(config.max_message_bytes)
        .max_frame_size(config.max_message_bytes);
    // Counted from now, not from when the upgrade completes: shutdown must wait for a
    // connection whose handshake is still in flight.
    let tracked = app.shared.tracker.token();
    Ok(ws.on_upgrade(move |socket| async move {
        connection::serve(socket, id, grant, app, permit).await;
        // A client behind a trusted proxy counts against its address's cap for as long as its
        // WebSocket is open, not only while the upgrade request ran.
        drop(forwarded);
        drop(tracked);
    }))
}
