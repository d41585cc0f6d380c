//! The document task's answers to the HTTP API: metadata, export, import, create, delete.
//!
//! Every change goes through [`LiveDoc::commit`], the same path as a client's update: stored,
//! then sent to every connected client, so an import shows up live in open editors.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex};

use quire_model::convert::{self, Format};
use quire_model::{protocol, schema};
use yrs::{Doc, Map, ReadTxn, Transact};

use super::handle::{Reply, Request};
use super::live::LiveDoc;
use crate::error::DocError;
use crate::store::DocMeta;

/// Serves one request and sends its answer.
pub(super) fn serve(live: &mut LiveDoc, request: Request) {
    match request {
        Request::Meta(reply) => answer(reply, existing(live).and_then(meta)),
        Request::Create { title, content, reply } => answer(reply, create(live, title, content)),
        Request::Export { format, reply } => answer(reply, existing(live).and_then(|live| export(live, format))),
        Request::ExportYjs { v2, since, reply } => answer(
            reply,
            existing(live).map(|live| {
                let txn = live.doc().transact();
                if v2 {
                    txn.encode_state_as_update_v2(&since)
                } else {
                    txn.encode_state_as_update_v1(&since)
                }
            }),
        ),
        Request::Replace { format, input, reply } => answer(reply, replace(live, format, &input)),
        Request::ApplyUpdate { update, reply } => answer(reply, apply_update(live, &update)),
        Request::Delete(reply) => answer(reply, existing(live).and_then(LiveDoc::delete)),
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

fn meta(live: &mut LiveDoc) -> Result<DocMeta, DocError> {
    live.storage().meta().cloned().ok_or(DocError::NotFound)
}

fn create(live: &mut LiveDoc, title: Option<String>, content: Option<(Format, Arc<str>)>) -> Result<DocMeta, DocError> {
    if live.storage().exists() {
        return Err(DocError::Exists);
    }
    // Parse first: a create with bad content creates nothing.
    if let Some((format, input)) = &content {
        import(&schema::new_doc(), *format, input)?;
    }
    live.undelete()?;
    change(live, |doc| {
        if let Some((format, input)) = &content {
            import(doc, *format, input)?;
        }
        if let Some(title) = &title {
            let meta = doc.get_or_insert_map(schema::META);
            meta.insert(&mut doc.transact_mut(), schema::TITLE, title.as_str());
        }
        Ok(())
    })?;
    live.record_created();
    meta(live)
}

fn export(live: &mut LiveDoc, format: Format) -> Result<String, DocError> {
    let doc = live.doc();
    catch_unwind(AssertUnwindSafe(|| convert::export(doc, format))).map_err(|_| DocError::ExportFailed(format))
}

fn replace(live: &mut LiveDoc, format: Format, input: &str) -> Result<(), DocError> {
    let live = existing(live)?;
    import(&schema::new_doc(), format, input)?;
    change(live, |doc| import(doc, format, input))
}

fn apply_update(live: &mut LiveDoc, update: &[u8]) -> Result<(), DocError> {
    let live = existing(live)?;
    let update = protocol::decode_update(update).map_err(DocError::BadUpdate)?;
    match protocol::apply_update(live.doc(), update) {
        Ok(Some(delta)) => live.commit(&delta, None),
        Ok(None) => {}
        Err(error @ protocol::ProtocolError::Panicked(_)) => {
            live.reload();
            return Err(DocError::BadUpdate(error));
        }
        Err(error) => return Err(DocError::BadUpdate(error)),
    }
    Ok(())
}

/// Runs `edit` on the document and commits what it changed as one update per transaction.
fn change(live: &mut LiveDoc, edit: impl FnOnce(&Doc) -> Result<(), DocError>) -> Result<(), DocError> {
    // The observer hands over the exact update of each transaction `edit` commits.
    const KEY: &str = "quire-api";
    let captured: Arc<Mutex<Vec<Vec<u8>>>> = Arc::default();
    let sink = captured.clone();
    let observed = live.doc().observe_update_v1(KEY, move |_: &yrs::TransactionMut, event: &yrs::UpdateEvent| {
        sink.lock().unwrap_or_else(|p| p.into_inner()).push(event.update.clone());
    });
    // Only fails while another transaction is open, which the task never leaves behind.
    observed.map_err(|_| DocError::Busy)?;
    let result = edit(live.doc());
    let _ = live.doc().unobserve_update_v1(KEY);
    let updates = std::mem::take(&mut *captured.lock().unwrap_or_else(|p| p.into_inner()));
    for update in updates {
        live.commit(&update, None);
    }
    result
}

/// Imports into `doc`. Every import is tried on a scratch document first, so a panic in a
/// parser lands here as an error; the same input then runs on the live document.
fn import(doc: &Doc, format: Format, input: &str) -> Result<(), DocError> {
    catch_unwind(AssertUnwindSafe(|| convert::import(doc, format, input)))
        .map_err(|_| DocError::ImportPanicked(format))?
        .map_err(|source| DocError::BadContent { format, source })
}
