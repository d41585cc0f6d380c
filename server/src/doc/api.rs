//! The document task's answers to the HTTP API: metadata, export, import, create, delete.
//!
//! Every change goes through [`DocActor::commit`], the same path as a client's update: stored,
//! then sent to every connected client, so an import shows up live in open editors.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex};

use quire_model::convert::{self, Format};
use quire_model::{protocol, schema};
use yrs::{Doc, Map, ReadTxn, Transact};

use super::actor::{DocActor, Lifecycle};
use super::handle::{ApiReply, ApiRequest};
use crate::error::{CloseReason, DocError};

impl DocActor {
    pub(super) fn handle_api(&mut self, request: ApiRequest) -> Result<ApiReply, DocError> {
        if !matches!(request, ApiRequest::Create { .. }) && !self.storage.exists() {
            return Err(DocError::NotFound);
        }
        match request {
            ApiRequest::Meta => self.current_meta(),
            ApiRequest::Create { title, content } => {
                if self.storage.exists() {
                    return Err(DocError::Exists);
                }
                // Parse first: a create with bad content creates nothing.
                let scratch = schema::new_doc();
                if let Some((format, input)) = &content {
                    import(&scratch, *format, input)?;
                }
                self.storage.undelete(self.registry.context())?;
                self.change(|doc| {
                    if let Some((format, input)) = &content {
                        import(doc, *format, input)?;
                    }
                    if let Some(title) = &title {
                        let meta = doc.get_or_insert_map(schema::META);
                        meta.insert(&mut doc.transact_mut(), schema::TITLE, title.as_str());
                    }
                    Ok(())
                })?;
                self.storage.create(self.registry.context(), self.awareness.doc());
                self.current_meta()
            }
            ApiRequest::Export(format) => {
                let doc = self.doc();
                catch_unwind(AssertUnwindSafe(|| convert::export(doc, format)))
                    .map(ApiReply::Text)
                    .map_err(|_| DocError::BadContent(format!("the document could not be exported as {format}")))
            }
            ApiRequest::ExportYjs { v2, since } => {
                let txn = self.doc().transact();
                Ok(ApiReply::Bytes(if v2 {
                    txn.encode_state_as_update_v2(&since)
                } else {
                    txn.encode_state_as_update_v1(&since)
                }))
            }
            ApiRequest::Replace(format, input) => {
                import(&schema::new_doc(), format, &input)?;
                self.change(|doc| import(doc, format, &input))?;
                Ok(ApiReply::Done)
            }
            ApiRequest::ApplyUpdate(update) => {
                let update =
                    protocol::decode_update(&update).map_err(|e| DocError::BadUpdate(e.to_string()))?;
                match protocol::apply_update(self.doc(), update) {
                    Ok(Some(delta)) => self.commit(&delta, None),
                    Ok(None) => {}
                    Err(protocol::ProtocolError::Panicked(_)) => {
                        self.reload();
                        return Err(DocError::BadUpdate("the update could not be applied".into()));
                    }
                    Err(e) => return Err(DocError::BadUpdate(e.to_string())),
                }
                Ok(ApiReply::Done)
            }
            ApiRequest::Delete => {
                self.storage.delete(self.registry.context())?;
                self.lifecycle = Lifecycle::Ended(CloseReason::Deleted);
                Ok(ApiReply::Done)
            }
        }
    }

    fn current_meta(&self) -> Result<ApiReply, DocError> {
        self.storage.meta().cloned().map(ApiReply::Meta).ok_or(DocError::NotFound)
    }

    /// Runs `edit` on the document and commits what it changed as one update.
    fn change(&mut self, edit: impl FnOnce(&Doc) -> Result<(), DocError>) -> Result<(), DocError> {
        // The observer hands over the exact update of each transaction `edit` commits.
        const KEY: &str = "quire-api";
        let captured: Arc<Mutex<Vec<Vec<u8>>>> = Arc::default();
        let sink = captured.clone();
        let observed = self.doc().observe_update_v1(KEY, move |_: &yrs::TransactionMut, event: &yrs::UpdateEvent| {
            sink.lock().unwrap_or_else(|p| p.into_inner()).push(event.update.clone());
        });
        if observed.is_err() {
            return Err(DocError::LoadFailed("document busy".into()));
        }
        let result = edit(self.doc());
        let _ = self.doc().unobserve_update_v1(KEY);
        let updates = std::mem::take(&mut *captured.lock().unwrap_or_else(|p| p.into_inner()));
        for update in updates {
            self.commit(&update, None);
        }
        result
    }
}

/// Imports into `doc`. Every import is tried on a scratch document first, so a panic in a
/// parser lands here as an error; the same input then runs on the live document.
fn import(doc: &Doc, format: Format, input: &str) -> Result<(), DocError> {
    catch_unwind(AssertUnwindSafe(|| convert::import(doc, format, input)))
        .map_err(|_| DocError::BadContent(format!("the {format} input could not be imported")))?
        .map_err(|e| DocError::BadContent(e.to_string()))
}
