//! The task that owns one live document: its life from load to retirement.
//!
//! Load the stored state before answering anyone; then serve joins, messages, leaves and API
//! requests one at a time ([`LiveDoc`] does the work); unload after `idle_unload` without
//! connections, or persist and stop at shutdown. A failed load refuses everyone and writes
//! nothing.

use std::sync::Arc;

use tokio::sync::mpsc;
use tokio::time::{sleep_until, Instant};

use super::api;
use super::context::DocContext;
use super::handle::Command;
use super::live::{Lifecycle, LiveDoc};
use super::slot::{Slot, Spawn};
use super::storage::DocStorage;
use crate::error::{CloseReason, DocError};

/// Runs the task of the document `spawn` is for until it unloads, fails to load, or the server
/// stops.
pub(super) async fn run(spawn: Spawn, context: Arc<DocContext>) {
    let Spawn { slot, mut rx } = spawn;
    let metrics = context.shared.metrics.clone();
    metrics.documents_live.inc();
    match DocStorage::load(&context, slot.id()).await {
        Ok((doc, storage)) => {
            tracing::debug!(doc = %slot.id(), "loaded");
            let mut live = LiveDoc::new(slot.id().clone(), doc, storage, context);
            serve(&mut live, &slot, &mut rx).await;
        }
        Err(error) => {
            tracing::error!(doc = %slot.id(), error = %crate::error::chain(&error), "document failed to load; refusing connections");
            // Retire at once: nothing is written for this document, and the next connection
            // tries a fresh load (the failure may have been passing).
            slot.retire_now(&mut rx);
            while let Some(command) = rx.recv().await {
                match command {
                    Command::Join { reply, .. } => drop(reply.send(Err(DocError::Unavailable))),
                    Command::Request(request) => request.refuse(DocError::Unavailable),
                    Command::Inbound { .. } | Command::Leave { .. } => {}
                }
            }
        }
    }
    metrics.documents_live.dec();
}

async fn serve(live: &mut LiveDoc, slot: &Slot, rx: &mut mpsc::Receiver<Command>) {
    let shutdown = live.context().shared.shutdown.clone();
    let idle_unload = live.context().shared.config.idle_unload;
    // One timer, re-armed when the last peer leaves (not a new one per message).
    let idle = sleep_until(Instant::now() + idle_unload);
    tokio::pin!(idle);
    let mut idle_armed = true;
    // The metadata's next write, re-armed after each command that changed it.
    let meta = sleep_until(Instant::now());
    tokio::pin!(meta);
    let mut meta_armed = false;
    loop {
        tokio::select! {
            command = rx.recv() => {
                // The map keeps a sender until we retire, so the queue cannot end here.
                let Some(command) = command else { return };
                handle(live, command);
                if let Lifecycle::Ended(reason) = live.lifecycle() {
                    // Nothing is written here: either the document is gone, or its in-memory
                    // state is the suspect one.
                    let reason = reason.clone();
                    live.close_all(reason);
                    slot.retire_now(rx);
                    break;
                }
                if live.has_peers() {
                    idle_armed = false;
                } else if !idle_armed {
                    idle.as_mut().reset(Instant::now() + idle_unload);
                    idle_armed = true;
                }
                if let Some(due) = live.meta_due() {
                    if !meta_armed || due < meta.deadline() {
                        meta.as_mut().reset(due);
                        meta_armed = true;
                    }
                }
            }
            () = &mut meta, if meta_armed => {
                meta_armed = false;
                live.write_meta();
            }
            () = &mut idle, if idle_armed => {
                // While the store refuses an edit, this task holds the only copy: stay.
                if live.settle() && slot.retire_if_idle(rx) {
                    tracing::debug!(doc = %slot.id(), "unloaded idle document");
                    break;
                }
                // A command arrived meanwhile: serve it, and try again later if still idle.
                idle.as_mut().reset(Instant::now() + idle_unload);
            }
            _ = shutdown.cancelled() => {
                live.close_all(CloseReason::ShuttingDown);
                if !live.settle() {
                    // The clients that made them still hold them and resync on reconnect.
                    tracing::error!(doc = %slot.id(), "stopping with edits the store refused");
                }
                slot.retire_now(rx);
                break;
            }
        }
    }
    // Retired: whatever slipped into the queue before it closed goes unanswered; a dropped
    // reply makes its sender retry on a fresh task, which loads what we wrote.
    while rx.recv().await.is_some() {}
}

fn handle(live: &mut LiveDoc, command: Command) {
    match command {
        Command::Join { conn, access, outbox, reply } => {
            let _ = reply.send(live.join(conn, access, outbox));
        }
        Command::Inbound { conn, messages } => live.inbound(conn, messages),
        Command::Leave { conn } => live.leave(conn),
        Command::Request(request) => api::serve(live, request),
    }
}
