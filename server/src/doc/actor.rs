//! The task that owns one live document: its life from load to retirement.
//!
//! Load the stored state before answering anyone; then serve joins, messages, leaves and API
//! requests one at a time ([`LiveDoc`] does the work); unload after `idle_unload` without
//! connections, or persist and stop at shutdown. A failed load refuses everyone and writes
//! nothing. While the store refuses this document's writes, retry on a timer; while flushes
//! fail, take no edits. With a shared store, also apply what other processes do. Take a version
//! when one is due (the job runs off the task; its outcome comes back here), and one of the
//! last changes before unloading or stopping.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::{sleep_until, Instant};

use super::api;
use super::context::DocContext;
use super::handle::Command;
use super::live::{Lifecycle, LiveDoc};
use super::slot::{Slot, Spawn};
use super::storage::DocStorage;
use crate::error::{CloseReason, DocError};

/// How soon, and at most how long after the last try, an unsaved document tries to write
/// again: a full disk that gets space back is noticed within seconds, a dead one is not
/// hammered.
const RETRY_SAVE_FIRST: Duration = Duration::from_secs(1);
const RETRY_SAVE_MAX: Duration = Duration::from_secs(30);

/// Runs the task of the document `spawn` is for until it unloads, fails to load, or the server
/// stops.
pub(super) async fn run(spawn: Spawn, context: Arc<DocContext>) {
    let Spawn { slot, mut rx } = spawn;
    let metrics = context.shared.metrics.clone();
    metrics.documents_live.inc();
    match DocStorage::load(&context, slot.id()).await {
        Ok((doc, storage, feed)) => {
            tracing::debug!(doc = %slot.id(), "loaded");
            let mut live = LiveDoc::new(slot.id().clone(), doc, storage, feed, context);
            live.load_history().await;
            live.pump_history().await;
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
                    Command::Inbound { .. } | Command::Leave { .. } | Command::Revoke { .. } => {}
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
    // While unsaved: the next attempt to write, and the wait before the one after.
    let retry = sleep_until(Instant::now());
    tokio::pin!(retry);
    let mut retry_after: Option<Duration> = None;
    let mut health = live.context().flusher.health();
    // The next client-id probe to decide (see `probe.rs`).
    let probe = sleep_until(Instant::now());
    tokio::pin!(probe);
    // The next automatic version.
    let version = sleep_until(Instant::now());
    tokio::pin!(version);
    loop {
        if let Some(due) = live.probe_due() {
            if probe.deadline() != due {
                probe.as_mut().reset(due);
            }
        }
        if let Some(due) = live.version_due() {
            if version.deadline() != due {
                version.as_mut().reset(due);
            }
        }
        if live.storage().is_unsaved() && retry_after.is_none() {
            retry.as_mut().reset(Instant::now() + RETRY_SAVE_FIRST);
            retry_after = Some(RETRY_SAVE_FIRST);
        }
        tokio::select! {
            command = rx.recv() => {
                // The map keeps a sender until we retire, so the queue cannot end here.
                let Some(command) = command else { return };
                handle(live, command).await;
                if ended(live, slot, rx) {
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
            event = live.background() => {
                // What other processes did (a shared store only), or a version job's end.
                live.on_background(event).await;
                if ended(live, slot, rx) {
                    break;
                }
            }
            () = &mut version, if live.version_due().is_some() => {
                live.version_timer().await;
            }
            () = &mut meta, if meta_armed => {
                meta_armed = false;
                live.write_meta().await;
            }
            () = &mut probe, if live.probe_due().is_some() => {
                live.probes_expired().await;
            }
            () = &mut retry, if retry_after.is_some() => {
                live.context().shared.metrics.save_retries.inc();
                if live.retry_save().await {
                    tracing::info!(doc = %slot.id(), "the store takes writes again");
                    retry_after = None;
                } else {
                    let next = retry_after.map_or(RETRY_SAVE_FIRST, |d| (d * 2).min(RETRY_SAVE_MAX));
                    retry.as_mut().reset(Instant::now() + next);
                    retry_after = Some(next);
                }
            }
            changed = health.changed() => {
                // Flushes started failing: what clients send now could not be kept. They are
                // told, keep their changes, and come back once joins are taken again.
                if changed.is_ok() && !*health.borrow_and_update() {
                    live.close_all(CloseReason::NotSaving);
                }
            }
            () = &mut idle, if idle_armed => {
                // The burst has settled (nobody is connected): its version is taken now, so
                // that a document nobody opens again still has it in its history.
                live.settle_history().await;
                // While the store refuses an edit, this task holds the only copy: stay.
                if live.settle().await && slot.retire_if_idle(rx) {
                    tracing::debug!(doc = %slot.id(), "unloaded idle document");
                    break;
                }
                // A command arrived meanwhile: serve it, and try again later if still idle.
                idle.as_mut().reset(Instant::now() + idle_unload);
            }
            _ = shutdown.cancelled() => {
                live.close_all(CloseReason::ShuttingDown);
                if live.settle().await {
                    // The session ends here: its changes get their version, as when the
                    // document unloads idle (the store is flushed after every task ends).
                    live.settle_history().await;
                } else {
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

/// Whether the document ended (deleted, or its in-memory state is suspect): then everyone is
/// closed and the task retires, writing nothing.
fn ended(live: &mut LiveDoc, slot: &Slot, rx: &mut mpsc::Receiver<Command>) -> bool {
    let Lifecycle::Ended(reason) = live.lifecycle() else { return false };
    let reason = reason.clone();
    live.close_all(reason);
    slot.retire_now(rx);
    true
}

async fn handle(live: &mut LiveDoc, command: Command) {
    match command {
        Command::Join { conn, grant, outbox, reply } => {
            let _ = reply.send(live.join(conn, grant, outbox));
        }
        Command::Revoke { link } => live.revoke(&link),
        Command::Inbound { conn, messages, bytes, queued } => {
            live.inbound(conn, messages, bytes).await;
            drop(queued);
        }
        Command::Leave { conn } => live.leave(conn).await,
        Command::Request(request) => api::serve(live, request).await,
    }
}
