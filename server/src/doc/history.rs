//! Reading a document's history for the API: the versions with their editors' names, a
//! version's content, and two states compared with each change's author.
//!
//! Versions are immutable and live in the store beside the document, so these read the store
//! directly and never load the document into a task (a person browsing the history of a big
//! document does not cost its editors anything); decoding and comparing run off the runtime.
//!
//! Who made a change:
//! - an insertion, or formatting written with new text, by the client id of its Yjs item,
//!   named through the recorded authors (`attribution`);
//! - a deletion, by the client that sent it, where the server saw it happen (the versions in
//!   between keep that). Yjs itself does not record who deletes; where the server did not see
//!   it (another process of a cluster, an edit lost with a crash) the deletion goes to the one
//!   person who changed anything between the two states if there was one, and otherwise to
//!   nobody, with the list of those who may have made it: naming one of several people for a
//!   deletion they may not have made would be worse than saying "one of these";
//! - a change of formatting alone the same way (yrs does not say which formatting items made
//!   it).

use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};

use quire_model::convert::{self, Format};
use quire_model::diff::{compare, split_utf16, Change, Comparison, Span};
use quire_model::{protocol, schema};
use yrs::updates::decoder::Decode;
use yrs::{ClientID, Doc, IdSet, ReadTxn, Transact, Update, ID};

use super::attribution::decode_deletions;
use super::context::DocContext;
use super::storage::rebuild;
use crate::error::DocError;
use crate::store::history::{unpack, Author, VersionRecord};
use crate::store::StoreError;
use quire_model::DocId;

/// A version's state as a document. Run off the runtime.
pub fn open_version(packed: &[u8], limit: usize) -> Result<Doc, DocError> {
    let v2 = unpack(packed, limit)?;
    let doc = schema::new_doc();
    let applied = catch_unwind(AssertUnwindSafe(|| {
        let update = Update::decode_v2(&v2).map_err(|source| undecodable(Box::new(source)))?;
        doc.transact_mut().apply_update(update).map_err(|source| undecodable(Box::new(source)))
    }));
    match applied {
        Ok(Ok(())) => Ok(doc),
        Ok(Err(error)) => Err(DocError::Store(error)),
        Err(_) => Err(DocError::Store(StoreError::Corrupt("a version's state panicked yrs".into()))),
    }
}

fn undecodable(source: Box<dyn std::error::Error + Send + Sync>) -> StoreError {
    StoreError::Undecodable { what: "a version's state does not apply", source }
}

/// A version and the people whose changes it holds.
pub struct VersionView {
    pub record: VersionRecord,
    pub editors: Vec<Author>,
}

/// What a version is compared with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Against {
    /// The version before it (none: an empty document).
    Previous,
    /// The document as it is now.
    Current,
    Version(u64),
}

/// One side of a comparison.
pub enum Side {
    Version(VersionRecord),
    /// The document now.
    Current,
    /// Nothing (before the first version).
    Empty,
}

/// A change and who made it.
pub struct Attributed {
    pub span: Span,
    /// `None` for kept text.
    pub author: Option<Author>,
    /// When it cannot be told who made it: who may have.
    pub candidates: Vec<Author>,
}

/// Two states compared: `from` the older, `to` the newer.
pub struct Compared {
    pub from: Side,
    pub to: Side,
    pub old_title: String,
    pub new_title: String,
    pub spans: Vec<Attributed>,
}

fn authors_map(authors: Vec<(u64, Author)>) -> HashMap<u64, Author> {
    authors.into_iter().collect()
}

fn author_of(authors: &HashMap<u64, Author>, client: u64) -> Author {
    authors.get(&client).cloned().unwrap_or(Author::Unknown)
}

/// Authors without repeats, in first-seen order.
fn distinct(authors: impl IntoIterator<Item = Author>) -> Vec<Author> {
    let mut seen = Vec::new();
    for author in authors {
        if !seen.contains(&author) {
            seen.push(author);
        }
    }
    seen
}

/// One page of `doc`'s versions, newest first, each with its editors named.
pub async fn list(context: &DocContext, doc: &DocId, offset: usize, limit: usize) -> Result<(Vec<VersionView>, u64), DocError> {
    let page = context.store.versions(doc, offset, limit).await?;
    let authors = authors_map(context.store.authors(doc).await?);
    let views = page
        .versions
        .into_iter()
        .map(|record| {
            let editors = distinct(record.editors.iter().map(|&c| author_of(&authors, c)));
            VersionView { record, editors }
        })
        .collect();
    Ok((views, page.total))
}

/// One version with its editors named.
pub async fn view(context: &DocContext, doc: &DocId, record: VersionRecord) -> Result<VersionView, DocError> {
    let authors = authors_map(context.store.authors(doc).await?);
    let editors = distinct(record.editors.iter().map(|&c| author_of(&authors, c)));
    Ok(VersionView { record, editors })
}

/// Every version record of `doc`, oldest first.
async fn all_versions(context: &DocContext, doc: &DocId) -> Result<Vec<VersionRecord>, DocError> {
    let mut all = context.store.versions(doc, 0, usize::MAX).await?.versions;
    all.reverse();
    Ok(all)
}

/// A version's state as a document.
pub async fn version_doc(context: &DocContext, doc: &DocId, id: u64) -> Result<Doc, DocError> {
    let packed = context.store.version_state(doc, id).await?.ok_or(DocError::NoSuchVersion)?;
    let limit = context.shared.config.max_doc_bytes as usize * 2;
    context.shared.off_runtime(move || open_version(&packed, limit)).await?
}

/// A version's body in a text format.
pub async fn export_version(context: &DocContext, doc: &DocId, id: u64, format: Format) -> Result<String, DocError> {
    let packed = context.store.version_state(doc, id).await?.ok_or(DocError::NoSuchVersion)?;
    let limit = context.shared.config.max_doc_bytes as usize * 2;
    // The state is compressed: what it opens to, which the conversion works on, is bigger.
    let input = packed.len().saturating_mul(4);
    context
        .shared
        .convert(input, move || {
            let version = open_version(&packed, limit)?;
            catch_unwind(AssertUnwindSafe(|| convert::export(&version, format)))
                .map_err(|_| DocError::ExportFailed(format))?
                .map_err(|source| DocError::ExportRefused { format, source })
        })
        .await?
}

/// A version's state as a Yjs update, v1 or v2.
pub async fn version_update(context: &DocContext, doc: &DocId, id: u64, v2: bool) -> Result<Vec<u8>, DocError> {
    let packed = context.store.version_state(doc, id).await?.ok_or(DocError::NoSuchVersion)?;
    let limit = context.shared.config.max_doc_bytes as usize * 2;
    context
        .shared
        .off_runtime(move || {
            if v2 {
                // Stored as v2 already.
                return Ok(unpack(&packed, limit)?);
            }
            let version = open_version(&packed, limit)?;
            let update = protocol::full_state(&version);
            Ok(update)
        })
        .await?
}

/// The document as stored now.
async fn current_doc(context: &DocContext, doc: &DocId) -> Result<Doc, DocError> {
    let stored = context.store.load(doc).await?.unwrap_or_default();
    context.shared.off_runtime(move || rebuild(&stored).map_err(DocError::Stored)).await?
}

async fn side_doc(context: &DocContext, doc: &DocId, side: &Side) -> Result<Doc, DocError> {
    match side {
        Side::Version(record) => version_doc(context, doc, record.id).await,
        Side::Current => current_doc(context, doc).await,
        Side::Empty => Ok(schema::new_doc()),
    }
}

/// Compares version `id` of `doc` with `against`, naming who made each change.
pub async fn compare_versions(context: &DocContext, doc: &DocId, id: u64, against: Against) -> Result<Compared, DocError> {
    let all = all_versions(context, doc).await?;
    let at = all.iter().position(|v| v.id == id).ok_or(DocError::NoSuchVersion)?;
    let (from, to) = match against {
        Against::Previous => (at.checked_sub(1).map_or(Side::Empty, |p| Side::Version(all[p].clone())), Side::Version(all[at].clone())),
        Against::Current => (Side::Version(all[at].clone()), Side::Current),
        Against::Version(other) => {
            let other = all.iter().position(|v| v.id == other).ok_or(DocError::NoSuchVersion)?;
            let (older, newer) = (at.min(other), at.max(other));
            (Side::Version(all[older].clone()), Side::Version(all[newer].clone()))
        }
    };
    // The versions whose changes lie between the two: after `from`, up to `to`.
    let after = match &from {
        Side::Version(record) => record.id,
        _ => 0,
    };
    let upto = match &to {
        Side::Version(record) => record.id,
        _ => u64::MAX,
    };
    let between: Vec<&VersionRecord> = all.iter().filter(|v| v.id > after && v.id <= upto).collect();
    let deletions: Vec<(ClientID, IdSet)> = between.iter().flat_map(|v| decode_deletions(&v.deletions)).collect();
    let deleters: Vec<u64> = deletions.iter().map(|(client, _)| client.get()).collect();
    let (old, new) = (side_doc(context, doc, &from).await?, side_doc(context, doc, &to).await?);
    let authors = authors_map(context.store.authors(doc).await?);
    // Comparing and naming both grow with the documents: off the runtime.
    let (old_title, new_title, spans) = context
        .shared
        .off_runtime(move || -> Result<_, DocError> {
            let Comparison { spans, old_title, new_title } = compare(&old, &new).map_err(DocError::Incomparable)?;
            let (before, after) = (old.transact().state_vector(), new.transact().state_vector());
            let changed = after.iter().filter(|(c, clock)| **clock > before.get(c)).map(|(c, _)| c.get());
            let candidates = distinct(changed.chain(deleters).map(|c| author_of(&authors, c)));
            Ok((old_title, new_title, attribute(spans, &authors, &deletions, &candidates)))
        })
        .await??;
    Ok(Compared { from, to, old_title, new_title, spans })
}

/// Names who made each span's change, and merges neighbours that then read alike.
fn attribute(spans: Vec<Span>, authors: &HashMap<u64, Author>, deletions: &[(ClientID, IdSet)], candidates: &[Author]) -> Vec<Attributed> {
    let unsure = || match candidates {
        [one] => (Some(one.clone()), Vec::new()),
        _ => (Some(Author::Unknown), candidates.to_vec()),
    };
    let mut out: Vec<(Attributed, Option<String>)> = Vec::with_capacity(spans.len());
    for span in spans {
        let pieces = match (span.change, span.item) {
            (Change::Kept, _) => vec![(span, None, Vec::new())],
            (Change::Inserted, Some(item)) => vec![(span, Some(author_of(authors, item.client.get())), Vec::new())],
            (Change::Deleted, Some(_)) => by_deleter(span, deletions)
                .into_iter()
                .map(|(piece, deleter)| match deleter {
                    Some(client) => (piece, Some(author_of(authors, client.get())), Vec::new()),
                    None => {
                        let (author, candidates) = unsure();
                        (piece, author, candidates)
                    }
                })
                .collect(),
            _ => {
                let (author, candidates) = unsure();
                vec![(span, author, candidates)]
            }
        };
        for (span, author, candidates) in pieces {
            push(&mut out, Attributed { span, author, candidates });
        }
    }
    out.into_iter()
        .map(|(mut attributed, merged)| {
            if let Some(text) = merged {
                attributed.span.insert = yrs::Any::from(text);
            }
            attributed
        })
        .collect()
}

/// A deleted span cut where who deleted it changes (one Yjs item can lose its characters to
/// several people), each piece with the client that deleted it, if the server saw it.
fn by_deleter(span: Span, deletions: &[(ClientID, IdSet)]) -> Vec<(Span, Option<ClientID>)> {
    let (Some(item), yrs::Any::String(text)) = (span.item, &span.insert) else {
        return vec![(span, None)];
    };
    let deleter = |offset: u32| {
        let id = ID::new(item.client, item.clock + offset);
        deletions.iter().find(|(_, ids)| ids.contains(&id)).map(|(client, _)| *client)
    };
    let mut pieces = Vec::new();
    let mut rest: &str = text;
    let mut offset = 0;
    while !rest.is_empty() {
        let who = deleter(offset);
        let mut n = 0;
        let len = span.len() - offset;
        while n < len && deleter(offset + n) == who {
            n += 1;
        }
        let (piece, after) = split_utf16(rest, n);
        let n = piece.encode_utf16().count() as u32;
        let item = Some(ID::new(item.client, item.clock + offset));
        pieces.push((Span { insert: yrs::Any::from(piece), item, ..span.clone() }, who));
        rest = after;
        offset += n.max(1);
    }
    pieces
}

/// Appends, merged into the last one when they read alike. A merged span's text grows in the
/// `String` beside it (an `Any` string is immutable: rebuilding it at every merge made a
/// document typed by one person in many places quadratic to compare).
fn push(out: &mut Vec<(Attributed, Option<String>)>, next: Attributed) {
    if let Some((last, merged)) = out.last_mut() {
        let alike = last.span.change == next.span.change
            && last.author == next.author
            && last.candidates == next.candidates
            && last.span.attributes == next.span.attributes
            && last.span.old_attributes == next.span.old_attributes;
        if let (true, yrs::Any::String(a), yrs::Any::String(b)) = (alike, &last.span.insert, &next.span.insert) {
            merged.get_or_insert_with(|| a.to_string()).push_str(b);
            return;
        }
    }
    out.push((next, None));
}
