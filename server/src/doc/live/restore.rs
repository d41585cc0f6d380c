//! Restoring a version: never a rewrite of history, an ordinary edit the server makes.
//!
//! 1. If anything changed since the newest version, that state is taken as a version first, so
//!    restoring the version before the restore undoes it.
//! 2. The edit is the minimal one from the current content to the version's
//!    ([`quire_model::revert`]): what was inserted since is deleted, what was deleted since is
//!    written again, formatting is put back, kept text is left alone. (Where that does not give
//!    the version back, as on a document whose copies read differently, the whole body is
//!    written anew: see there.) It is made on a scratch
//!    copy under a client id of its own, recorded as "restored version X by NAME", and
//!    committed as one update like any client's: stored, then sent to everyone connected;
//!    a client that was offline merges it as any other change.
//! 3. The version after it is taken (kind `restore`), and that answers the request.
//!
//! Steps 1 and 2 hold the document task while they run (as an import does): a restore is
//! asked for by a person, rarely, and must see the content exactly as it is.

use quire_model::revert::revert;
use quire_model::{protocol, schema};
use yrs::{ClientID, ReadTxn, Transact};

use super::history::Restored;
use super::LiveDoc;
use crate::doc::handle::Reply;
use crate::doc::history::open_version;
use crate::error::DocError;
use crate::store::history::{Author, VersionKind};

impl LiveDoc {
    /// Restores version `from` (asked for by `by`) and answers `reply` once the version after
    /// it is taken.
    pub(super) async fn restore(&mut self, from: u64, by: Option<Author>, reply: Reply<Restored>) {
        match self.restore_edit(from, by).await {
            Ok(true) => self.want_after_restore(from, reply),
            Ok(false) => drop(reply.send(Ok(Restored { changed: false, version: None }))),
            Err(error) => drop(reply.send(Err(error))),
        }
    }

    /// Steps 1 and 2; whether the content changed.
    async fn restore_edit(&mut self, from: u64, by: Option<Author>) -> Result<bool, DocError> {
        if !self.saving() {
            return Err(DocError::NotSaved);
        }
        let packed = self.context.store.version_state(&self.id, from).await?.ok_or(DocError::NoSuchVersion)?;
        if self.unversioned() {
            self.capture_now(VersionKind::Auto).await?;
        }
        let known = self.doc().transact().state_vector();
        let client = loop {
            let client = ClientID::random();
            if known.get(&client) == 0 {
                break client;
            }
        };
        let doc = self.doc().clone();
        let limit = self.context.shared.config.max_doc_bytes as usize * 2;
        let update = self
            .context
            .shared
            .off_runtime(move || -> Result<Option<Vec<u8>>, DocError> {
                let version = open_version(&packed, limit)?;
                let scratch = schema::doc_with_client_id(client.get());
                protocol::apply_bytes(&scratch, &protocol::full_state(&doc)).map_err(DocError::BadUpdate)?;
                let before = scratch.transact().state_vector();
                if !revert(&scratch, &version).map_err(DocError::Incomparable)? {
                    return Ok(None);
                }
                let update = scratch.transact().encode_diff_v1(&before);
                Ok(Some(update))
            })
            .await??;
        let Some(update) = update else { return Ok(false) };
        let author = Author::Restored { version: from, by: by.map(Box::new) };
        let noted = self.attribution.note(client, author).into_iter().collect();
        self.note_authors(noted);
        // As big as the document at worst (a version restored over a cleared one).
        match self.apply_encoded(update, "restore").await {
            Ok(Some(delta)) => {
                self.attribution.deleted_by(client, &delta);
                self.commit(&delta, None).await;
                Ok(true)
            }
            Ok(None) => Ok(false),
            Err(error) => Err(DocError::BadUpdate(error)),
        }
    }
}
