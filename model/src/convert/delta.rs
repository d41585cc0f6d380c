//! Quill Delta JSON: `{"ops": [{"insert": "…", "attributes": {…}}, …]}`, the format Quill's
//! `getContents`/`setContents` use and y-quill mirrors into the YText.

use std::collections::BTreeMap;

use serde_json::Value;
use yrs::types::text::{Diff, YChange};
use yrs::{Any, Out};

use super::attrs::{self, LinkCheck, Strictness};
use super::budget::Budget;
use super::lines::{Line, LineBuilder};
use super::ConvertError;

/// The YText's content as a canonical Delta: inserts only, adjacent runs with equal attributes
/// merged (the diff already is), attribute names sorted so that equal documents give equal bytes.
/// Embeds that are plain values are written as they are; nested shared types are left out.
///
/// Each op repeats its attributes in full, so a link cut by other formats into many chunks is
/// written once per chunk: what is written is spent from `budget`, op by op.
pub(crate) fn render(diff: &[Diff<YChange>], budget: &Budget) -> Result<String, ConvertError> {
    let mut out = String::from("{\"ops\":[");
    let mut first = true;
    for chunk in diff {
        let before = out.len();
        let Out::Any(insert) = &chunk.insert else {
            continue;
        };
        if !first {
            out.push(',');
        }
        first = false;
        out.push_str("{\"insert\":");
        out.push_str(&json(serde_json::to_string(insert)));
        if let Some(attrs) = chunk
            .attributes
            .as_deref()
            .filter(|attrs| !attrs.is_empty())
        {
            let sorted: BTreeMap<&str, &Any> = attrs.iter().map(|(k, v)| (k.as_ref(), v)).collect();
            out.push_str(",\"attributes\":");
            out.push_str(&json(serde_json::to_string(&sorted)));
        }
        out.push('}');
        budget.spend(out.len() - before)?;
    }
    out.push_str("]}");
    Ok(out)
}

/// JSON text of a value. The op objects are written by hand rather than through `json!`:
/// serde_json's `Map` keeps insertion order when any crate in the build turns on its
/// `preserve_order` feature, and the output should not depend on that.
fn json(serialized: serde_json::Result<String>) -> String {
    // Cannot fail: these values have string keys only, and non-finite floats become `null`.
    serialized.unwrap_or_else(|_| "null".to_owned())
}

/// Reads a Delta describing a whole document: `{"ops": [...]}` or the bare array.
///
/// Only inserts of text are accepted (retain and delete describe a change, not a document;
/// embeds are out of scope), with attributes from quire's schema. As in Quill, block formats
/// count only on `"\n"` and inline marks only on text; a missing final `"\n"` is added.
pub(crate) fn parse(input: &str, budget: &Budget) -> Result<Vec<Line>, ConvertError> {
    let value: Value = serde_json::from_str(input)?;
    let ops = match &value {
        Value::Array(ops) => ops,
        Value::Object(object) => match object.get("ops") {
            Some(Value::Array(ops)) => ops,
            _ => return Err(ConvertError::NotDelta),
        },
        _ => return Err(ConvertError::NotDelta),
    };
    let mut out = LineBuilder::new(budget);
    let mut links = LinkCheck::default();
    for (index, op) in ops.iter().enumerate() {
        let problem = |problem: String| ConvertError::DeltaOp { index, problem };
        let (text, marks, block) = parse_op(op, &mut links).map_err(problem)?;
        for (i, part) in text.split('\n').enumerate() {
            if i > 0 {
                out.end_line(block.clone());
            }
            out.push(part, &marks)?;
        }
    }
    Ok(out.finish())
}

fn parse_op<'a>(
    op: &'a Value,
    links: &mut LinkCheck,
) -> Result<(&'a str, attrs::Marks, attrs::Block), String> {
    let Value::Object(op) = op else {
        return Err(format!(
            "expected an object like {{\"insert\": \"text\"}}, not {op}"
        ));
    };
    if let Some(key) = op
        .keys()
        .find(|key| !matches!(key.as_str(), "insert" | "attributes"))
    {
        return Err(match key.as_str() {
            "retain" | "delete" => {
                format!("`{key}` cannot describe a whole document: use inserts only")
            }
            _ => format!("unexpected key `{key}`"),
        });
    }
    let text = match op.get("insert") {
        Some(Value::String(text)) => text,
        Some(other) => {
            return Err(format!(
                "embeds are not supported: `insert` must be a string, not {other}"
            ))
        }
        None => return Err("missing `insert`".into()),
    };
    let attrs = match op.get("attributes") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Object(attrs)) => attrs
            .iter()
            .map(|(name, value)| match to_any(value) {
                Some(any) => Ok((name.as_str(), any)),
                None => Err(format!("`{name}` cannot be {value}")),
            })
            .collect::<Result<_, _>>()?,
        Some(other) => return Err(format!("`attributes` must be an object, not {other}")),
    };
    let pairs = attrs.iter().map(|(k, v)| (*k, v));
    let (marks, block) = attrs::parse(pairs, Strictness::Refuse, links)?;
    Ok((text, marks, block))
}

/// The scalar JSON values an attribute can hold; arrays and objects are no Quill format's value.
fn to_any(value: &Value) -> Option<Any> {
    Some(match value {
        Value::Null => Any::Null,
        Value::Bool(b) => Any::Bool(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => Any::from(i),
            None => Any::from(n.as_f64()?),
        },
        Value::String(s) => Any::from(s.as_str()),
        Value::Array(_) | Value::Object(_) => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(input: &str) -> Result<Vec<Line>, ConvertError> {
        parse(input, &Budget::for_input(input.len()))
    }

    fn error(input: &str) -> String {
        lines(input).unwrap_err().to_string()
    }

    #[test]
    fn refuses_what_is_not_a_document_delta() {
        assert!(error("{\"ops\": [").starts_with("invalid JSON: "));
        assert_eq!(
            error("{\"insert\": \"x\"}"),
            "not a Quill Delta: expected an array of ops or an object with an `ops` array"
        );
        assert_eq!(
            error("[\"x\"]"),
            "delta op 0: expected an object like {\"insert\": \"text\"}, not \"x\""
        );
        assert_eq!(
            error("[{\"insert\": \"a\"}, {\"retain\": 1}]"),
            "delta op 1: `retain` cannot describe a whole document: use inserts only"
        );
        assert_eq!(
            error("[{\"insert\": {\"image\": \"x.png\"}}]"),
            "delta op 0: embeds are not supported: `insert` must be a string, not {\"image\":\"x.png\"}"
        );
        assert_eq!(
            error("[{\"insert\": \"\\n\", \"attributes\": {\"header\": 9}}]"),
            "delta op 0: `header` must be a number from 1 to 6, not 9"
        );
        assert_eq!(
            error("[{\"insert\": \"a\", \"attributes\": {\"bold\": [true]}}]"),
            "delta op 0: `bold` cannot be [true]"
        );
        assert_eq!(
            error("[{\"insert\": \"a\", \"attributes\": {\"link\": \"javascript:alert(1)\"}}]"),
            "delta op 0: `link` must be an http, https, mailto, tel or sms URL"
        );
    }

    #[test]
    fn block_formats_count_only_on_newlines() {
        let lines =
            lines(r#"[{"insert": "a\nb", "attributes": {"header": 1, "bold": true}}]"#).unwrap();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].block, attrs::Block::Header(1));
        assert!(lines[0].spans[0].marks.bold);
        // The text after the last newline gets Quill's implicit final line, a plain paragraph.
        assert_eq!(lines[1].block, attrs::Block::Paragraph);
        assert_eq!(lines[1].text(), "b");
    }
}
