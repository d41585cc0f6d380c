//! Quill Delta ⇄ the `content` YText, with the same rules as Yjs's `Y.Text#applyDelta` and
//! `toDelta` (what the stock `y-quill` binding relies on), so a quire browser and a y-quill
//! browser editing one document agree on every character and format.
//!
//! Positions are UTF-16 code units (the `Doc` is built with `OffsetKind::Utf16`), which is how
//! Quill counts. Ops are typed ([`Op`]) on this side; `js.rs` reads and writes them as Quill's
//! objects: `{insert: string | object, attributes?}`, `{retain: n, attributes?}` or `{delete: n}`.
//! A delta read from JavaScript arrives as a JSON-like [`Any`] (an array of ops or `{ops: [...]}`,
//! Quill's `Delta`) and is validated here, so the rules are tested natively. No JSON text and no
//! serde_json on the way: that keeps a JSON parser and printer for `Value` out of the browser
//! module (`cargo xtask wasm` measures it).

use std::collections::HashMap;

use yrs::types::text::{Diff, YChange};
use yrs::types::{Attrs, Delta};
use yrs::{Any, In, Number, Out, ReadTxn, Text, TextRef, TransactionMut};

use crate::error::ClientError;

/// One Quill Delta op, local (validated by [`parse`]) or remote (from a YText event).
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// Text or an embed, with the formats it has (none: it has none, even if its neighbours do).
    Insert(Any, Attrs),
    /// Skip `n` units; with attributes, set (value) or clear (`null`) those formats on them.
    Retain(u32, Attrs),
    Delete(u32),
}

/// Validates a Quill delta completely before anything is applied, so a bad one changes nothing.
pub fn parse(delta: &Any) -> Result<Vec<Op>, ClientError> {
    let ops = match delta {
        Any::Array(ops) => ops,
        Any::Map(map) => match map.get("ops") {
            Some(Any::Array(ops)) => ops,
            _ => return Err(bad("expected an array of ops or {ops: [...]}")),
        },
        _ => return Err(bad("expected an array of ops or {ops: [...]}")),
    };
    ops.iter().map(parse_op).collect()
}

fn parse_op(op: &Any) -> Result<Op, ClientError> {
    let Any::Map(op) = op else {
        return Err(bad("an op must be an object"));
    };
    let attrs = match op.get("attributes") {
        None | Some(Any::Null | Any::Undefined) => Attrs::new(),
        Some(Any::Map(attributes)) => attributes
            .iter()
            .map(|(k, v)| (k.as_str().into(), v.clone()))
            .collect(),
        Some(_) => return Err(bad("attributes must be an object")),
    };
    match (op.get("insert"), op.get("retain"), op.get("delete")) {
        (Some(s @ Any::String(_)), None, None) => Ok(Op::Insert(s.clone(), attrs)),
        (Some(embed @ Any::Map(_)), None, None) => Ok(Op::Insert(embed.clone(), attrs)),
        (None, Some(n), None) => Ok(Op::Retain(length(n)?, attrs)),
        (None, None, Some(n)) if attrs.is_empty() => Ok(Op::Delete(length(n)?)),
        _ => Err(bad(
            "an op is exactly one of {insert: string | object}, {retain: n}, {delete: n}",
        )),
    }
}

fn length(n: &Any) -> Result<u32, ClientError> {
    match n {
        Any::Number(Number::Int(n)) => u32::try_from(*n).ok(),
        _ => None,
    }
    .ok_or_else(|| bad("retain and delete take a count of UTF-16 units"))
}

fn bad(why: &str) -> ClientError {
    ClientError::BadDelta(why.to_owned())
}

/// UTF-16 length of what an insert adds (an embed counts one, as in Quill and Yjs).
fn insert_len(value: &Any) -> u32 {
    match value {
        Any::String(s) => s.encode_utf16().count() as u32,
        _ => 1,
    }
}

/// Applies validated ops to `text` inside `txn` (one transaction: one update, one undo step).
///
/// Where Quill's model and the YText differ:
/// - Quill's document always ends with a newline the YText may not hold. Formatting that line
///   (a header on the last line) is a retain past the end: like Yjs's `formatText`, the newline
///   is inserted carrying the formats. Only one: Quill has no more than that one line beyond
///   the YText, and a larger count would only be a request to allocate without bound.
/// - A retain or delete past the end is otherwise clipped (yrs would panic on the delete, and
///   a panic aborts the browser module).
pub fn apply(text: &TextRef, txn: &mut TransactionMut, ops: Vec<Op>) {
    let mut len = text.len(txn);
    let mut index = 0u32;
    let mut delta: Vec<Delta<In>> = Vec::with_capacity(ops.len());
    for op in ops {
        match op {
            Op::Insert(value, attrs) => {
                let n = insert_len(&value);
                if n == 0 {
                    continue; // an empty string: Yjs skips it too
                }
                delta.push(Delta::Inserted(In::Any(value), Some(Box::new(attrs))));
                index += n;
                len += n;
            }
            Op::Retain(n, attrs) => {
                let inside = n.min(len - index);
                if inside > 0 {
                    let attrs = (!attrs.is_empty()).then(|| Box::new(attrs.clone()));
                    delta.push(Delta::Retain(inside, attrs));
                }
                if n > inside && !attrs.is_empty() {
                    delta.push(Delta::Inserted(
                        In::Any(Any::from("\n")),
                        Some(Box::new(attrs)),
                    ));
                    len += 1;
                }
                index = index.saturating_add(n).min(len);
            }
            Op::Delete(n) => {
                let n = n.min(len - index);
                if n > 0 {
                    delta.push(Delta::Deleted(n));
                    len -= n;
                }
            }
        }
    }
    // Trailing retains without formats change nothing; dropping them spares apply_delta a walk.
    while matches!(delta.last(), Some(Delta::Retain(_, None))) {
        delta.pop();
    }
    if !delta.is_empty() {
        text.apply_delta(txn, delta);
    }
}

/// A YText change event's delta as Quill ops (what `quill.updateContents` takes), as Yjs's
/// `event.delta` would give it: removed formats are `null`.
pub fn ops_of_change(delta: &[Delta]) -> Vec<Op> {
    delta
        .iter()
        .map(|d| match d {
            Delta::Inserted(value, attrs) => Op::Insert(embed(value), attrs_of(attrs.as_deref())),
            Delta::Retain(n, attrs) => Op::Retain(*n, attrs_of(attrs.as_deref())),
            Delta::Deleted(n) => Op::Delete(*n),
        })
        .collect()
}

/// The whole document as Quill ops (Yjs's `ytext.toDelta()`).
pub fn ops_of_content<T: ReadTxn>(txn: &T, text: &TextRef) -> Vec<Op> {
    text.diff(txn, YChange::identity)
        .into_iter()
        .map(
            |Diff {
                 insert, attributes, ..
             }| Op::Insert(embed(&insert), attrs_of(attributes.as_deref())),
        )
        .collect()
}

fn attrs_of(attrs: Option<&Attrs>) -> Attrs {
    attrs.cloned().unwrap_or_default()
}

/// Text and embeds are plain values. A nested shared type (quire never puts one in `content`)
/// becomes the embed `{shared: null}`, so it still counts as one unit like in the YText. Not its
/// JSON (`Out::to_json`): that would pull yrs's XML printing and with it core's float
/// formatting (some 20 KB) into the browser module for a case that does not occur.
fn embed(value: &Out) -> Any {
    match value {
        Out::Any(any) => any.clone(),
        _ => Any::Map(HashMap::from([("shared".to_owned(), Any::Null)]).into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quire_model::schema::{doc_with_client_id, CONTENT};
    use serde_json::{json, Value};
    use yrs::{GetString, Transact};

    /// JSON as JavaScript would hand it over (`js.rs` converts a JS value to the same `Any`).
    fn any(json: Value) -> Any {
        serde_json::from_value(json).unwrap()
    }

    fn delta(json: Value) -> Vec<Op> {
        parse(&any(json)).unwrap()
    }

    fn applied(initial: &[Value], edit: Value) -> (String, Vec<Op>) {
        let doc = doc_with_client_id(1);
        let text = doc.get_or_insert_text(CONTENT);
        let mut txn = doc.transact_mut();
        apply(&text, &mut txn, delta(json!(initial)));
        apply(&text, &mut txn, delta(edit));
        (text.get_string(&txn), ops_of_content(&txn, &text))
    }

    #[test]
    fn positions_are_utf16_units() {
        // "文😀" is 1 + 2 units: retain 3 lands after the emoji, delete 2 removes "ab".
        let (s, _) = applied(
            &[json!({"insert": "文😀ab!"})],
            json!([{"retain": 3}, {"delete": 2}, {"insert": "好", "attributes": {"bold": true}}]),
        );
        assert_eq!(s, "文😀好!");
    }

    #[test]
    fn inserts_do_not_inherit_neighbouring_formats() {
        let (_, ops) = applied(
            &[json!({"insert": "bold", "attributes": {"bold": true}})],
            json!({"ops": [{"retain": 4}, {"insert": " plain"}]}),
        );
        assert_eq!(
            ops,
            delta(json!([
                {"insert": "bold", "attributes": {"bold": true}},
                {"insert": " plain"}
            ]))
        );
    }

    #[test]
    fn formats_set_and_clear() {
        let (_, ops) = applied(
            &[json!({"insert": "abcdef", "attributes": {"italic": true}})],
            json!([{"retain": 2, "attributes": {"italic": null, "bold": true}}, {"retain": 1, "attributes": {"italic": null}}]),
        );
        assert_eq!(
            ops,
            delta(json!([
                {"insert": "ab", "attributes": {"bold": true}},
                {"insert": "c"},
                {"insert": "def", "attributes": {"italic": true}},
            ]))
        );
    }

    #[test]
    fn formatting_quills_final_newline_inserts_it() {
        // Quill holds "Title\n" while the YText holds "Title": the header goes on a new "\n".
        let (s, ops) = applied(
            &[json!({"insert": "Title"})],
            json!([{"retain": 5}, {"retain": 1, "attributes": {"header": 1}}]),
        );
        assert_eq!(s, "Title\n");
        let (huge, _) = applied(
            &[json!({"insert": "Title"})],
            json!([{"retain": u32::MAX, "attributes": {"header": 1}}]),
        );
        assert_eq!(huge, "Title\n", "one newline at most, whatever the count");
        assert_eq!(
            ops,
            delta(json!([
                {"insert": "Title"},
                {"insert": "\n", "attributes": {"header": 1}}
            ]))
        );
    }

    #[test]
    fn deletes_past_the_end_are_clipped_and_embeds_count_one() {
        let (s, ops) = applied(
            &[
                json!({"insert": "ab"}),
                json!({"insert": {"image": "x.png"}}),
                json!({"insert": "c"}),
            ],
            json!([{"retain": 1}, {"delete": 99}]),
        );
        assert_eq!(s, "a");
        assert_eq!(ops, delta(json!([{"insert": "a"}])));
        let (_, ops) = applied(
            &[
                json!({"insert": "ab"}),
                json!({"insert": {"image": "x.png"}}),
                json!({"insert": "c"}),
            ],
            json!([{"retain": 3}, {"delete": 1}]),
        );
        assert_eq!(
            ops,
            delta(json!([
                {"insert": "ab"},
                {"insert": {"image": "x.png"}}
            ]))
        );
    }

    #[test]
    fn malformed_deltas_are_refused() {
        for bad in [
            json!("text"),
            json!({"ops": 3}),
            json!([3]),
            json!([{"retain": -1}]),
            json!([{"retain": 1.5}]),
            json!([{"delete": 1, "attributes": {"bold": true}}]),
            json!([{"insert": "a", "delete": 1}]),
            json!([{"insert": 5}]),
            json!([{"retain": {"image": "x"}}]),
            json!([{"insert": "a", "attributes": [1]}]),
            json!([{"retain": 5_000_000_000u64}]),
            json!([{}]),
        ] {
            assert!(parse(&any(bad.clone())).is_err(), "{bad} was accepted");
        }
    }
}
