//! The document task's answers to the HTTP API: metadata, export, import, create, delete, and
//! what changes the history (naming, deleting and restoring versions).
//!
//! Every change goes through [`LiveDoc::commit`], the same path as a client's update: stored,
//! then sent to every connected client, so an import shows up live in open editors. A change
//! is answered with the flush ticket that makes it durable; the caller waits for it. Work that
//! grows with the input or the document (parsing, importing, exporting) runs off the runtime.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex};

use quire_model::convert::{self, Format};
use quire_model::{protocol, schema};
use yrs::{Doc, Map, ReadTxn, StateVector, Transact};

use super::handle::{Reply, Request};
use super::live::LiveDoc;
use crate::error::DocError;
use crate::state::INLINE_BYTES;
use crate::store::flusher::Ticket;
use crate::store::DocMeta;

/// Serves one request and sends its answer.
pub(super) async fn serve(live: &mut LiveDoc, request: Request) {
    match request {
        Request::Meta(reply) => answer(reply, existing(live).and_then(|live| meta(live))),
        Request::Create { title, content, reply } => answer(reply, create(live, title, content).await),
        Request::Export { format, reply } => answer(reply, export(live, format).await),
        Request::ExportYjs { v2, since, reply } => answer(reply, export_yjs(live, v2, since).await),
        Request::Replace { format, input, reply } => answer(reply, replace(live, format, input).await),
        Request::ApplyUpdate { update, reply } => answer(reply, apply_update(live, &update).await),
        Request::Delete(reply) => answer(reply, delete(live).await),
        // Answered by the version job, once the version is written.
        Request::NameVersion { name, reply } => match existing(live) {
            Ok(live) => live.name_current(name, reply).await,
            Err(error) => answer(reply, Err(error)),
        },
        Request::RenameVersion { id, name, reply } => match existing(live) {
            Ok(live) => answer(reply, live.rename_version(id, name).await),
            Err(error) => answer(reply, Err(error)),
        },
        Request::DeleteVersion { id, reply } => match existing(live) {
            Ok(live) => answer(reply, live.delete_version(id).await),
            Err(error) => answer(reply, Err(error)),
        },
        Request::Restore { id, by, reply } => match writable(live, 0) {
            Ok(live) => live.want_restore(id, by, reply).await,
            Err(error) => answer(reply, Err(error)),
        },
    }
}

fn answer<T>(reply: Reply<T>, result: Result<T, DocError>) {
    // The asker may have given up (its HTTP client went away): nothing to do then.
    let _ = reply.send(result);
}

/// The document, if it exists: every request but `Create` is about an existing one.
fn existing(live: &mut LiveDoc) -> Result<&mut LiveDoc, DocError> {
    if live.storage().exists() {
        Ok(live)
    } else {
        Err(DocError::NotFound)
    }
}

/// An existing document that takes edits now, and may grow by about `bytes`.
fn writable(live: &mut LiveDoc, bytes: usize) -> Result<&mut LiveDoc, DocError> {
    let live = existing(live)?;
    if !live.saving() {
        return Err(DocError::NotSaved);
    }
    fits(live, bytes)?;
    Ok(live)
}

/// Whether the document may grow by about `bytes` (an import's input, an update's size).
fn fits(live: &LiveDoc, bytes: usize) -> Result<(), DocError> {
    let limit = live.context().shared.config.max_doc_bytes;
    if live.storage().size_bytes() + bytes as u64 > limit {
        return Err(DocError::TooLarge { limit });
    }
    Ok(())
}

fn meta(live: &LiveDoc) -> Result<DocMeta, DocError> {
    live.storage().meta().cloned().ok_or(DocError::NotFound)
}

async fn create(
    live: &mut LiveDoc,
    title: Option<String>,
    content: Option<(Format, Arc<str>)>,
) -> Result<(DocMeta, Ticket), DocError> {
    if live.storage().exists() {
        return Err(DocError::Exists);
    }
    if !live.saving() {
        return Err(DocError::NotSaved);
    }
    let input = content.as_ref().map_or(0, |(_, input)| input.len());
    fits(live, input)?;
    let doc = live.doc().clone();
    let updates = live
        .context()
        .shared
        .convert(input, move || {
            // Parse first: a create with bad content creates nothing.
            if let Some((format, input)) = &content {
                import(&schema::new_doc(), *format, input)?;
            }
            changes(&doc, |doc| {
                if let Some((format, input)) = &content {
                    import(doc, *format, input)?;
                }
                if let Some(title) = &title {
                    let meta = doc.get_or_insert_map(schema::META);
                    meta.insert(&mut doc.transact_mut(), schema::TITLE, title.as_str());
                }
                Ok(())
            })
        })
        .await??;
    live.undelete().await?;
    live.imported(&updates.0, Vec::new()).await;
    commit_all(live, updates).await?;
    live.record_created().await;
    Ok((meta(live)?, live.storage().saved()?))
}

async fn export(live: &mut LiveDoc, format: Format) -> Result<String, DocError> {
    let live = existing(live)?;
    let doc = live.doc().clone();
    let work = move || {
        catch_unwind(AssertUnwindSafe(|| convert::export(&doc, format)))
            .map_err(|_| DocError::ExportFailed(format))?
            .map_err(|source| DocError::ExportRefused { format, source })
    };
    let size = live.storage().size_bytes() as usize;
    if size > INLINE_BYTES {
        live.context().shared.convert(size, work).await?
    } else {
        work()
    }
}

async fn export_yjs(live: &mut LiveDoc, v2: bool, since: StateVector) -> Result<Vec<u8>, DocError> {
    let live = existing(live)?;
    let doc = live.doc().clone();
    let work = move || {
        catch_unwind(AssertUnwindSafe(|| {
            let txn = doc.transact();
            // What the document has, not what waits for changes it lacks (see
            // `protocol::sync_step2`).
            if v2 {
                txn.encode_diff_v2(&since)
            } else {
                txn.encode_diff_v1(&since)
            }
        }))
        .map_err(|_| DocError::ExportYjsFailed)
    };
    if live.storage().size_bytes() as usize > INLINE_BYTES {
        live.context().shared.off_runtime(work).await?
    } else {
        work()
    }
}

async fn replace(live: &mut LiveDoc, format: Format, input: Arc<str>) -> Result<Ticket, DocError> {
    let live = writable(live, input.len())?;
    let doc = live.doc().clone();
    let updates = live
        .context()
        .shared
        .convert(input.len(), move || {
            // A scratch document first: input that does not parse changes nothing.
            import(&schema::new_doc(), format, &input)?;
            changes(&doc, |doc| import(doc, format, &input))
        })
        .await??;
    live.imported(&updates.0, Vec::new()).await;
    commit_all(live, updates).await?;
    live.storage().saved()
}

async fn apply_update(live: &mut LiveDoc, update: &[u8]) -> Result<Ticket, DocError> {
    let live = writable(live, update.len())?;
    // Decoding costs in proportion to the body (up to its limit): a big one off the runtime.
    let update = if update.len() > INLINE_BYTES {
        let bytes = update.to_vec();
        live.context().shared.off_runtime(move || protocol::decode_update(&bytes)).await?
    } else {
        protocol::decode_update(update)
    }
    .map_err(DocError::BadUpdate)?;
    if live.storage().is_stale_update(&update) {
        return Err(DocError::StaleCopy);
    }
    protocol::continues(&live.doc().transact().state_vector(), &update).map_err(DocError::BadUpdate)?;
    let posted: Vec<yrs::ClientID> = update.insertions(true).client_ids().collect();
    let doc = live.doc().clone();
    let applied = live
        .context()
        .shared
        .off_runtime(move || protocol::apply_update(&doc, update))
        .await?;
    match applied {
        Ok(Some(delta)) => {
            live.imported(std::slice::from_ref(&delta), posted).await;
            live.commit(&delta, None).await
        }
        Ok(None) => {}
        Err(error @ protocol::ProtocolError::Panicked(_)) => {
            live.reload().await;
            return Err(DocError::BadUpdate(error));
        }
        Err(error) => return Err(DocError::BadUpdate(error)),
    }
    live.storage().saved()
}

async fn delete(live: &mut LiveDoc) -> Result<Ticket, DocError> {
    let live = existing(live)?;
    live.delete().await?;
    live.storage().saved()
}

/// What an edit changed (one update per transaction, each to be committed) and how it ended:
/// an edit that failed half-way still changed the document up to there.
type Changes = (Vec<Vec<u8>>, Result<(), DocError>);

/// Commits what an edit changed, then reports how it ended.
async fn commit_all(live: &mut LiveDoc, (updates, result): Changes) -> Result<(), DocError> {
    for update in updates {
        live.commit(&update, None).await;
    }
    result
}

/// Runs `edit` on `doc` and returns the update of each transaction it committed.
fn changes(doc: &Doc, edit: impl FnOnce(&Doc) -> Result<(), DocError>) -> Result<Changes, DocError> {
    // The observer hands over the exact update of each transaction `edit` commits.
    const KEY: &str = "quire-api";
    let captured: Arc<Mutex<Vec<Vec<u8>>>> = Arc::default();
    let sink = captured.clone();
    let observed = doc.observe_update_v1(KEY, move |_: &yrs::TransactionMut, event: &yrs::UpdateEvent| {
        sink.lock().unwrap_or_else(|p| p.into_inner()).push(event.update.clone());
    });
    // Only fails while another transaction is open, which the task never leaves behind.
    observed.map_err(|_| DocError::Busy)?;
    let result = edit(doc);
    let _ = doc.unobserve_update_v1(KEY);
    let updates = std::mem::take(&mut *captured.lock().unwrap_or_else(|p| p.into_inner()));
    Ok((updates, result))
}

/// Imports into `doc`. Every import is tried on a scratch document first, so a panic in a
/// parser lands here as an error; the same input then runs on the live document.
fn import(doc: &Doc, format: Format, input: &str) -> Result<(), DocError> {
    catch_unwind(AssertUnwindSafe(|| convert::import(doc, format, input)))
        .map_err(|_| DocError::ImportPanicked(format))?
        .map_err(|source| DocError::BadContent { format, source })
}
