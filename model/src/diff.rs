//! Comparing two states of a document: the body as spans of kept, inserted, deleted and
//! reformatted text, each inserted or deleted span naming the Yjs item it came from (so the
//! caller can say who wrote it), and the title before and after.
//!
//! quire's documents run with garbage collection on, so a state keeps no content of deleted
//! text, and yrs's snapshots cannot be read back from one state alone. Both states are in hand
//! here, though, and the newer one grew out of the older one (a document's state only grows):
//! - a scratch document *without* garbage collection takes the older state, then the newer one.
//!   Text visible in the older state arrives with its content; when the newer state's delete
//!   set then deletes it, the content stays, because nothing collects it;
//! - the scratch document's text is read between the two states' snapshots (yrs's
//!   `diff_range`, the port of Yjs's `toDelta(snapshot, prevSnapshot)`): every item visible in
//!   either comes out in document order, an item only the newer one sees as `Added` (with its
//!   id: its client is its author), one only the older one sees as `Removed`;
//! - formatting is taken from each state's own rendering, walked alongside by position: kept
//!   text whose attributes differ is [`Change::Formatted`], and deleted text keeps the
//!   attributes it had. (`diff_range` formats everything as the newer state does.)
//!
//! Lengths and positions count UTF-16 code units, as everywhere in quire.

use yrs::types::text::{ChangeKind, Diff, YChange};
use yrs::types::Attrs;
use yrs::updates::decoder::Decode;
use yrs::{Any, Doc, GetString, Map, Options, Out, ReadTxn, StateVector, Text, Transact, Update, ID};

use crate::schema::{doc_options, CONTENT, META, TITLE};

/// What happened to a span of text between the older and the newer state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// In both, formatted alike.
    Kept,
    /// Only in the newer state.
    Inserted,
    /// Only in the older state.
    Deleted,
    /// In both, formatted differently.
    Formatted,
}

/// A run of text (or one embed) and what happened to it.
#[derive(Debug, Clone, PartialEq)]
pub struct Span {
    pub change: Change,
    /// A string, or an embed's value.
    pub insert: Any,
    /// Its formatting: in the newer state, or for deleted text in the older one.
    pub attributes: Option<Box<Attrs>>,
    /// For [`Change::Formatted`]: its formatting in the older state.
    pub old_attributes: Option<Box<Attrs>>,
    /// For inserted and deleted text: the id of its first character's item (its client wrote
    /// it). `None` for embeds, which yrs reports without ids.
    pub item: Option<ID>,
}

impl Span {
    /// Length in UTF-16 code units (an embed counts one).
    pub fn len(&self) -> u32 {
        match &self.insert {
            Any::String(s) => utf16_len(s),
            _ => 1,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The whole comparison: the body's spans in document order, and the titles.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    pub spans: Vec<Span>,
    pub old_title: String,
    pub new_title: String,
}

#[derive(Debug, thiserror::Error)]
pub enum DiffError {
    /// The two renderings do not line up with the items: states that are not of one document.
    #[error("the two states are not of one document's history")]
    Misaligned,
    #[error("a state does not decode")]
    Decode(#[source] yrs::encoding::read::Error),
    #[error("a state does not apply")]
    Apply(#[source] yrs::error::UpdateError),
}

/// Compares `old` with `new` (a later state of the same document). Must not be called while a
/// transaction on either is open.
pub fn compare(old: &Doc, new: &Doc) -> Result<Comparison, DiffError> {
    let (old_update, old_snapshot, old_runs, old_title) = read(old);
    let (new_update, new_snapshot, new_runs, new_title) = read(new);
    // Without garbage collection, so that text the newer state deleted keeps its content.
    let scratch = Doc::with_options(Options { skip_gc: true, ..doc_options() });
    let text = scratch.get_or_insert_text(CONTENT);
    let chunks = {
        let mut txn = scratch.transact_mut();
        for update in [old_update, new_update] {
            let update = Update::decode_v1(&update).map_err(DiffError::Decode)?;
            txn.apply_update(update).map_err(DiffError::Apply)?;
        }
        text.diff_range(&mut txn, Some(&new_snapshot), Some(&old_snapshot), YChange::identity)
    };
    let spans = align(chunks, Runs::new(old_runs), Runs::new(new_runs))?;
    Ok(Comparison { spans, old_title, new_title })
}

type Rendering = Vec<Diff<YChange>>;

/// A document's full state (v1), its snapshot, its body as rendered, and its title.
fn read(doc: &Doc) -> (Vec<u8>, yrs::Snapshot, Rendering, String) {
    let text = doc.get_or_insert_text(CONTENT);
    let meta = doc.get_or_insert_map(META);
    let txn = doc.transact();
    let update = txn.encode_diff_v1(&StateVector::default());
    let title = title_in(&meta, &txn);
    (update, txn.snapshot(), text.diff(&txn, YChange::identity), title)
}

/// A document's title (empty if it has none).
pub(crate) fn title(doc: &Doc) -> String {
    let meta = doc.get_or_insert_map(META);
    let txn = doc.transact();
    title_in(&meta, &txn)
}

fn title_in(meta: &yrs::MapRef, txn: &yrs::Transaction) -> String {
    match meta.get(txn, TITLE) {
        Some(Out::Any(Any::String(title))) => title.to_string(),
        _ => String::new(),
    }
}

/// Walks the scratch document's chunks alongside each state's own rendering, cutting spans
/// where either rendering's formatting changes.
fn align(chunks: Vec<Diff<YChange>>, mut old: Runs, mut new: Runs) -> Result<Vec<Span>, DiffError> {
    let mut spans = Vec::with_capacity(chunks.len());
    for chunk in chunks {
        let Out::Any(value) = chunk.insert else {
            // A nested shared type: quire's schema has none in its text.
            continue;
        };
        let Any::String(string) = &value else {
            spans.push(embed(value, &mut old, &mut new)?);
            continue;
        };
        let change = match chunk.ychange.as_ref().map(|c| c.kind) {
            None => Change::Kept,
            Some(ChangeKind::Added) => Change::Inserted,
            Some(ChangeKind::Removed) => Change::Deleted,
        };
        let mut rest: &str = string;
        let mut offset = 0;
        while !rest.is_empty() {
            let left = utf16_len(rest);
            let (n, attributes, old_attributes) = match change {
                Change::Inserted => {
                    let n = left.min(new.text_left()?);
                    (n, new.attributes(), None)
                }
                Change::Deleted => {
                    let n = left.min(old.text_left()?);
                    (n, old.attributes(), None)
                }
                Change::Kept | Change::Formatted => {
                    let n = left.min(old.text_left()?).min(new.text_left()?);
                    (n, new.attributes(), old.attributes())
                }
            };
            let (piece, after) = split_utf16(rest, n);
            let (change, old_attributes) = match change {
                Change::Kept | Change::Formatted if !same(&attributes, &old_attributes) => {
                    (Change::Formatted, old_attributes)
                }
                Change::Kept | Change::Formatted => (Change::Kept, None),
                other => (other, None),
            };
            let item = chunk.ychange.as_ref().map(|c| ID::new(c.id.client, c.id.clock + offset));
            if matches!(change, Change::Kept | Change::Formatted | Change::Deleted) {
                old.advance(n);
            }
            if change != Change::Deleted {
                new.advance(n);
            }
            push(&mut spans, Span { change, insert: Any::from(piece), attributes, old_attributes, item });
            rest = after;
            offset += n;
        }
    }
    if !old.done() || !new.done() {
        return Err(DiffError::Misaligned);
    }
    Ok(spans)
}

/// An embed: `diff_range` says nothing of whether it changed, so each rendering's next run
/// says where it is.
fn embed(value: Any, old: &mut Runs, new: &mut Runs) -> Result<Span, DiffError> {
    let (in_old, in_new) = (old.next_is(&value), new.next_is(&value));
    let (change, attributes, old_attributes) = match (in_old, in_new) {
        (true, true) => {
            let (attributes, old_attributes) = (new.attributes(), old.attributes());
            if same(&attributes, &old_attributes) {
                (Change::Kept, attributes, None)
            } else {
                (Change::Formatted, attributes, old_attributes)
            }
        }
        (false, true) => (Change::Inserted, new.attributes(), None),
        (true, false) => (Change::Deleted, old.attributes(), None),
        (false, false) => return Err(DiffError::Misaligned),
    };
    if in_old {
        old.advance(1);
    }
    if in_new {
        new.advance(1);
    }
    Ok(Span { change, insert: value, attributes, old_attributes, item: None })
}

/// Appends `span`, merged into the last one when nothing tells them apart (a kept run that the
/// other state's formatting cut in two).
fn push(spans: &mut Vec<Span>, span: Span) {
    if let Some(last) = spans.last_mut() {
        let mergeable = last.change == span.change
            && matches!(span.change, Change::Kept | Change::Formatted)
            && same(&last.attributes, &span.attributes)
            && same(&last.old_attributes, &span.old_attributes);
        if let (true, Any::String(a), Any::String(b)) = (mergeable, &last.insert, &span.insert) {
            last.insert = Any::from(format!("{a}{b}"));
            return;
        }
    }
    spans.push(span);
}

pub(crate) fn same(a: &Option<Box<Attrs>>, b: &Option<Box<Attrs>>) -> bool {
    let empty = |x: &Option<Box<Attrs>>| x.as_ref().is_none_or(|x| x.is_empty());
    match (a, b) {
        (Some(a), Some(b)) => a == b,
        _ => empty(a) && empty(b),
    }
}

/// One state's rendering, consumed from the front in UTF-16 units.
pub(crate) struct Runs {
    runs: Vec<Diff<YChange>>,
    index: usize,
    /// Units of the current run already consumed.
    offset: u32,
}

impl Runs {
    pub(crate) fn new(runs: Vec<Diff<YChange>>) -> Self {
        Runs { runs, index: 0, offset: 0 }
    }

    fn current(&self) -> Option<&Diff<YChange>> {
        self.runs.get(self.index)
    }

    /// Units left in the current run, which must be text.
    pub(crate) fn text_left(&self) -> Result<u32, DiffError> {
        match self.current().map(|run| &run.insert) {
            Some(Out::Any(Any::String(s))) => Ok(utf16_len(s) - self.offset),
            _ => Err(DiffError::Misaligned),
        }
    }

    fn next_is(&self, value: &Any) -> bool {
        matches!(self.current().map(|run| &run.insert), Some(Out::Any(v)) if v == value)
    }

    pub(crate) fn attributes(&self) -> Option<Box<Attrs>> {
        self.current().and_then(|run| run.attributes.clone())
    }

    pub(crate) fn advance(&mut self, n: u32) {
        let len = match self.current().map(|run| &run.insert) {
            Some(Out::Any(Any::String(s))) => utf16_len(s),
            _ => 1,
        };
        self.offset += n;
        if self.offset >= len {
            self.index += 1;
            self.offset = 0;
        }
    }

    pub(crate) fn done(&self) -> bool {
        self.index >= self.runs.len()
    }
}

pub(crate) fn utf16_len(s: &str) -> u32 {
    s.chars().map(|c| c.len_utf16() as u32).sum()
}

/// `s` cut after `n` UTF-16 units (never inside a character: a cut inside a surrogate pair
/// moves after it).
pub fn split_utf16(s: &str, n: u32) -> (&str, &str) {
    let mut units = 0;
    for (at, c) in s.char_indices() {
        if units >= n {
            return s.split_at(at);
        }
        units += c.len_utf16() as u32;
    }
    (s, "")
}

/// A document's body as rendered: runs of text (or embeds) with their formatting.
pub(crate) fn rendering(doc: &Doc) -> Vec<Diff<YChange>> {
    let text = doc.get_or_insert_text(CONTENT);
    let txn = doc.transact();
    text.diff(&txn, YChange::identity)
}

/// The body's plain text of a document, for tests and messages.
pub fn plain_text(doc: &Doc) -> String {
    let text = doc.get_or_insert_text(CONTENT);
    let txn = doc.transact();
    text.get_string(&txn)
}

#[cfg(test)]
mod tests;
