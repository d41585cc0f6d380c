//! Turning a document's body back into what an earlier state held, as one ordinary edit.
//!
//! The edit is the [comparison](crate::diff) read backwards: text inserted since is deleted,
//! text deleted since is inserted again with the formatting it had, text formatted since gets
//! its old formatting back, and everything kept is left alone. So the edit touches only what
//! changed: text kept since keeps its Yjs items, and whatever an offline client anchored to
//! them (its own insertions, its carets) merges around the restored text as around any edit.
//! (Yjs cannot bring a deleted item back: restored text is new text, written by whoever
//! restores.)
//!
//! When the edit does not give the version back (or the two states do not line up at all), the
//! body is written anew instead: all of it deleted, the version's written again. Items with
//! forged neighbours (the test crate's `rust/neighbours.rs`) can make the edit miss: their order
//! depends on arrival, so the fresh copy the edit is made on and the copies that take it can
//! read the text differently. Deleting every item and writing new ones in a row makes every
//! copy read the version again.

use yrs::types::{Attrs, Delta};
use yrs::{Any, Doc, GetString, In, Map, Out, Text, Transact, TransactionMut};

use crate::diff::{compare, rendering, same, title, Change, Comparison, DiffError, Runs, Span};
use crate::schema::{CONTENT, META, TITLE};

/// The deltas that turn the newer body of a comparison into the older one, to apply in order
/// (in one transaction): the text inserted since is deleted first, then the kept text gets its
/// old formatting, then the text deleted since is written again (with its own formatting, as
/// inserting with attributes sets exactly those).
pub fn deltas(spans: &[Span]) -> [Vec<Delta<In>>; 3] {
    let (mut deletions, mut formatting, mut insertions) = (Ops::default(), Ops::default(), Ops::default());
    for span in spans {
        let len = span.len();
        match span.change {
            Change::Kept => {
                deletions.retain(len);
                formatting.retain(len);
                insertions.retain(len);
            }
            Change::Formatted => {
                deletions.retain(len);
                let attrs = restoring(span.old_attributes.as_deref(), span.attributes.as_deref());
                formatting.push(Delta::Retain(len, Some(Box::new(attrs))));
                insertions.retain(len);
            }
            Change::Inserted => deletions.push(Delta::Deleted(len)),
            Change::Deleted => {
                let attributes = span.attributes.clone().filter(|a| !a.is_empty());
                insertions.push(Delta::Inserted(In::Any(span.insert.clone()), attributes));
            }
        }
    }
    [deletions.finish(), formatting.finish(), insertions.finish()]
}

/// A delta being written: neighbouring plain retains are one, and a trailing one is dropped.
#[derive(Default)]
struct Ops(Vec<Delta<In>>);

impl Ops {
    fn retain(&mut self, len: u32) {
        if let Some(Delta::Retain(n, None)) = self.0.last_mut() {
            *n += len;
        } else {
            self.0.push(Delta::Retain(len, None));
        }
    }

    fn push(&mut self, op: Delta<In>) {
        self.0.push(op);
    }

    /// The ops, or none if they change nothing.
    fn finish(mut self) -> Vec<Delta<In>> {
        if let Some(Delta::Retain(_, None)) = self.0.last() {
            self.0.pop();
        }
        self.0
    }
}

/// The formatting that puts `old` back over `new`: each old attribute set, each one added since
/// removed (set to null).
fn restoring(old: Option<&Attrs>, new: Option<&Attrs>) -> Attrs {
    let mut attrs = old.cloned().unwrap_or_default();
    for key in new.iter().flat_map(|a| a.keys()) {
        attrs.entry(key.clone()).or_insert(Any::Null);
    }
    attrs
}

/// How many formatting passes [`revert`] makes at most after its edit; one is the most seen.
const FORMATTING_PASSES: usize = 4;

/// Turns `doc` back into `version`'s body and title (`version` is an earlier state of the same
/// document). Returns whether anything changed. Must not be called while a transaction on
/// either document is open.
///
/// The edit is made in one transaction; then, while the formatting still differs from the
/// version's anywhere, one more pass formats those runs as the version has them. (yrs places
/// the markers that end a formatted run after the tombstones that follow it; when those are
/// the text the edit deleted, a run can come out formatted as its neighbour was.) Whoever
/// publishes the result sends everything as one update (the state vector before, encoded
/// after), which a receiving client applies in one transaction.
pub fn revert(doc: &Doc, version: &Doc) -> Result<bool, DiffError> {
    let comparison = match compare(version, doc) {
        Ok(comparison) => comparison,
        Err(DiffError::Misaligned) => {
            rewrite(doc, version);
            return Ok(true);
        }
        Err(error) => return Err(error),
    };
    // Text restored earlier is new text (new items) that reads as the version's: the body is
    // the version's already, and swapping items for equal ones would be an edit nobody sees.
    if retitle(&comparison).is_none() && same_body(version, doc) {
        return Ok(false);
    }
    let mut changed = apply(doc, &deltas(&comparison.spans), retitle(&comparison));
    for _ in 0..FORMATTING_PASSES {
        let fix = formatting(version, doc);
        if fix.is_empty() {
            break;
        }
        apply(doc, &[fix], None);
        changed = true;
    }
    if !same_body(version, doc) {
        rewrite(doc, version);
        return Ok(true);
    }
    Ok(changed)
}

/// Writes `version`'s body and title over `doc`'s: every character deleted, the version's
/// written again after them, in one transaction (as an import does).
fn rewrite(doc: &Doc, version: &Doc) {
    let runs: Vec<Delta<In>> = rendering(version)
        .into_iter()
        .filter_map(|run| match run.insert {
            Out::Any(value) => Some(Delta::Inserted(In::Any(value), run.attributes)),
            // A nested shared type: quire's schema has none in its text.
            _ => None,
        })
        .collect();
    let title = title(version);
    let text = doc.get_or_insert_text(CONTENT);
    let meta = doc.get_or_insert_map(META);
    let mut txn = doc.transact_mut();
    let len = text.len(&txn);
    let delete = (len > 0).then_some(Delta::Deleted(len));
    text.apply_delta(&mut txn, delete.into_iter().chain(runs));
    set_title(&meta, &mut txn, &title);
}

/// Whether the two bodies read alike: the same text, formatted alike.
fn same_body(version: &Doc, doc: &Doc) -> bool {
    let string = |doc: &Doc| doc.get_or_insert_text(CONTENT).get_string(&doc.transact());
    // `formatting` is empty when the texts differ too, hence the texts first.
    string(version) == string(doc) && formatting(version, doc).is_empty()
}

/// The title to set, if it differs.
fn retitle(comparison: &Comparison) -> Option<&str> {
    (comparison.old_title != comparison.new_title).then_some(comparison.old_title.as_str())
}

/// Applies `deltas` in order and sets the title, in one transaction. Whether there was
/// anything to do.
fn apply(doc: &Doc, deltas: &[Vec<Delta<In>>], title: Option<&str>) -> bool {
    if deltas.iter().all(Vec::is_empty) && title.is_none() {
        return false;
    }
    let text = doc.get_or_insert_text(CONTENT);
    let meta = doc.get_or_insert_map(META);
    let mut txn = doc.transact_mut();
    for delta in deltas {
        if !delta.is_empty() {
            text.apply_delta(&mut txn, delta.iter().cloned());
        }
    }
    if let Some(title) = title {
        set_title(&meta, &mut txn, title);
    }
    true
}

/// The delta that formats `doc`'s text as `version`'s, position by position (the two hold the
/// same text); empty if they are formatted alike, or if their texts differ after all.
fn formatting(version: &Doc, doc: &Doc) -> Vec<Delta<In>> {
    let (mut want, mut have) = (Runs::new(rendering(version)), Runs::new(rendering(doc)));
    let mut ops = Ops::default();
    while !want.done() && !have.done() {
        // An embed is one unit.
        let n = match (want.text_left(), have.text_left()) {
            (Ok(a), Ok(b)) => a.min(b),
            _ => 1,
        };
        let (old, new) = (want.attributes(), have.attributes());
        if same(&old, &new) {
            ops.retain(n);
        } else {
            ops.push(Delta::Retain(n, Some(Box::new(restoring(old.as_deref(), new.as_deref())))));
        }
        want.advance(n);
        have.advance(n);
    }
    if !want.done() || !have.done() {
        return Vec::new();
    }
    ops.finish()
}

fn set_title(meta: &yrs::MapRef, txn: &mut TransactionMut, title: &str) {
    if title.is_empty() {
        meta.remove(txn, TITLE);
    } else {
        meta.insert(txn, TITLE, title);
    }
}
