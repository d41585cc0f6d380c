//! Import and export of the document body (`content`) as Markdown, HTML, plain text or Quill
//! Delta JSON. Sans-IO: strings in, strings out; the caller owns the `Doc` and the transport.
//!
//! Behind the `convert` feature (off by default): client-wasm compiles this crate for the browser,
//! where the parsers would only add weight. Feature `markdown` builds [`export_markdown`] alone
//! (with the Markdown reader its writer checks lines with), so that the browser writes a document
//! as the same Markdown as the server.
//!
//! Every format goes through one shape, Quill's view of a document: lines, each with one block
//! format, holding spans of text with inline marks. Export reads it from `TextRef::diff`. Import
//! builds it from the input, then replaces the YText's content with `TextRef::apply_delta` — the
//! port of the `applyDelta` that y-quill calls — in one transaction, so an import is an ordinary
//! edit that reaches connected clients and the YText looks like what a Quill client writes.
//!
//! Every conversion, import or export, spends from a budget in proportion to its input (the
//! document, for an export) and stops with [`ConvertError::TooLarge`] rather than growing without
//! bound: see `budget`.
//!
//! # Layout
//! - `attrs`: Quill's attribute names, the values quire accepts, the link-URL policy.
//! - `lines`: the line/span shape, the builder importers fill, the nesting walk exporters use.
//! - `budget`: what a conversion may spend, and the size of a document as an export's input.
//! - `delta`, `markdown`, `html`, `text`: one format each.

mod attrs;
mod budget;
#[cfg(feature = "convert")]
mod delta;
#[cfg(feature = "convert")]
mod html;
mod lines;
mod markdown;
#[cfg(feature = "convert")]
mod text;

#[cfg(feature = "convert")]
use std::fmt;
#[cfg(feature = "convert")]
use std::str::FromStr;

use yrs::types::text::YChange;
#[cfg(feature = "convert")]
use yrs::types::Delta;
#[cfg(feature = "convert")]
use yrs::{Any, In, TextRef, TransactionMut};
use yrs::{Doc, Text, Transact};

use crate::schema::CONTENT;
use budget::{document_size, Budget};

pub use budget::{FLOOR, PER_INPUT_BYTE};

#[cfg(feature = "convert")]
/// A format the document body can be exported to and imported from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    /// CommonMark with GitHub's `~~strikethrough~~`; underline as inline `<u>` HTML.
    Markdown,
    /// An HTML fragment of semantic elements (`<h1>`, `<p>`, `<ul>`, `<strong>` …).
    Html,
    /// The plain text, formatting dropped.
    Text,
    /// Quill Delta JSON: `{"ops": [{"insert": "…", "attributes": {…}}, …]}`.
    Delta,
}

#[cfg(feature = "convert")]
impl Format {
    /// The format's canonical name, as [`FromStr`] reads it.
    pub fn name(self) -> &'static str {
        match self {
            Format::Markdown => "markdown",
            Format::Html => "html",
            Format::Text => "text",
            Format::Delta => "delta",
        }
    }

    /// The MIME type to serve an export with (always UTF-8).
    pub fn mime_type(self) -> &'static str {
        match self {
            Format::Markdown => "text/markdown; charset=utf-8",
            Format::Html => "text/html; charset=utf-8",
            Format::Text => "text/plain; charset=utf-8",
            Format::Delta => "application/json",
        }
    }

    /// The format a MIME type (a `Content-Type` or one `Accept` entry) stands for. Parameters
    /// such as `; charset=utf-8` and letter case are ignored; `None` for anything else.
    pub fn from_mime(mime: &str) -> Option<Format> {
        let essence = mime.split(';').next().unwrap_or_default().trim();
        [
            ("text/markdown", Format::Markdown),
            ("text/x-markdown", Format::Markdown),
            ("text/html", Format::Html),
            ("text/plain", Format::Text),
            ("application/json", Format::Delta),
        ]
        .into_iter()
        .find(|(name, _)| essence.eq_ignore_ascii_case(name))
        .map(|(_, format)| format)
    }
}

#[cfg(feature = "convert")]
/// Reads a format name: `markdown` or `md`, `html`, `text` or `txt`, `delta` (any case).
impl FromStr for Format {
    type Err = ConvertError;

    fn from_str(name: &str) -> Result<Format, ConvertError> {
        match name.to_ascii_lowercase().as_str() {
            "markdown" | "md" => Ok(Format::Markdown),
            "html" => Ok(Format::Html),
            "text" | "txt" => Ok(Format::Text),
            "delta" => Ok(Format::Delta),
            _ => Err(ConvertError::UnknownFormat(name.to_owned())),
        }
    }
}

#[cfg(feature = "convert")]
impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why an import, an export or a format name was refused. Every variant describes a problem with
/// the caller's input (or, for an export, with the document), so its message is fit to send back
/// to the client.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConvertError {
    #[cfg(feature = "convert")]
    #[error("unknown format `{0}`: expected markdown, html, text or delta")]
    UnknownFormat(String),
    #[cfg(feature = "convert")]
    #[error("invalid JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[cfg(feature = "convert")]
    #[error("not a Quill Delta: expected an array of ops or an object with an `ops` array")]
    NotDelta,
    /// `index` counts from 0, as in the `ops` array.
    #[cfg(feature = "convert")]
    #[error("delta op {index}: {problem}")]
    DeltaOp { index: usize, problem: String },
    /// The conversion would take more than [`PER_INPUT_BYTE`] times its input in memory and
    /// work (plus [`FLOOR`]): typically a long link or format repeated on many lines, which the
    /// output must spell out again on each. `input` is the input's size in bytes (for an export,
    /// the document's).
    #[error(
        "too large: converting {input} bytes would take more than {PER_INPUT_BYTE} times as much \
         (is a long link or format repeated on many lines?)"
    )]
    TooLarge { input: usize },
}

/// The document body in `format`.
///
/// Must not be called while a transaction on `doc` is open (it opens a read transaction).
/// Only what quire's schema knows is exported as Markdown or HTML; the Delta is the YText's
/// exact content, every attribute included. Fails with [`ConvertError::TooLarge`] for a
/// document whose export would be out of proportion to it (a long link over many lines).
#[cfg(feature = "convert")]
pub fn export(doc: &Doc, format: Format) -> Result<String, ConvertError> {
    let content = doc.get_or_insert_text(CONTENT);
    if format == Format::Markdown {
        return export_markdown(doc);
    }
    let txn = doc.transact();
    if format == Format::Text {
        // The text as stored: it repeats nothing, so it needs no budget.
        return Ok(text::render(&content, &txn));
    }
    let diff = content.diff(&txn, YChange::identity);
    let budget = Budget::for_input(document_size(&diff));
    match format {
        Format::Delta => delta::render(&diff, &budget),
        Format::Html => html::render(&lines::from_diff(&diff, &budget)?, &budget),
        Format::Markdown | Format::Text => unreachable!("returned above"),
    }
}

/// The document body as Markdown: [`export`] with [`Format::Markdown`] on the server, and the
/// whole of this module that the browser build (feature `markdown`) has.
pub fn export_markdown(doc: &Doc) -> Result<String, ConvertError> {
    let content = doc.get_or_insert_text(CONTENT);
    let txn = doc.transact();
    let diff = content.diff(&txn, YChange::identity);
    let budget = Budget::for_input(document_size(&diff));
    markdown::render(&lines::from_diff(&diff, &budget)?, &budget)
}

#[cfg(feature = "convert")]
/// Replaces the document body with `input` read as `format`, in one transaction.
///
/// The input is parsed completely before the document is touched, so on error nothing changes.
/// Fails with [`ConvertError::TooLarge`] for an input whose document would be out of proportion
/// to it. Must not be called while a transaction on `doc` is open.
pub fn import(doc: &Doc, format: Format, input: &str) -> Result<(), ConvertError> {
    let budget = Budget::for_input(input.len());
    let lines = match format {
        Format::Markdown => markdown::parse(input, &budget)?,
        Format::Html => html::parse(input, &budget)?,
        Format::Text => text::parse(input, &budget)?,
        Format::Delta => delta::parse(input, &budget)?,
    };
    let runs = lines::to_runs(&lines, &budget)?;
    drop(lines);
    let content = doc.get_or_insert_text(CONTENT);
    let mut txn = doc.transact_mut();
    replace(&content, &mut txn, runs);
    Ok(())
}

#[cfg(feature = "convert")]
/// Deletes everything, then inserts `runs` with their attributes: one `applyDelta`, as y-quill's
/// `setContents` would make it.
fn replace(content: &TextRef, txn: &mut TransactionMut, runs: Vec<(String, yrs::types::Attrs)>) {
    let len = content.len(txn);
    let delete = (len > 0).then_some(Delta::Deleted(len));
    let inserts = runs.into_iter().map(|(text, attrs)| {
        let attrs = (!attrs.is_empty()).then(|| Box::new(attrs));
        Delta::Inserted(In::Any(Any::from(text)), attrs)
    });
    content.apply_delta(txn, delete.into_iter().chain(inserts));
}

#[cfg(all(test, feature = "convert"))]
mod tests {
    use super::*;

    #[test]
    fn formats_parse_from_names_and_mime_types() {
        for (name, format) in [
            ("markdown", Format::Markdown),
            ("MD", Format::Markdown),
            ("html", Format::Html),
            ("txt", Format::Text),
            ("text", Format::Text),
            ("delta", Format::Delta),
        ] {
            assert_eq!(name.parse::<Format>().unwrap(), format);
        }
        let err = "docx".parse::<Format>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown format `docx`: expected markdown, html, text or delta"
        );

        assert_eq!(Format::from_mime("text/markdown"), Some(Format::Markdown));
        assert_eq!(
            Format::from_mime("Text/HTML; charset=UTF-8"),
            Some(Format::Html)
        );
        assert_eq!(Format::from_mime("text/plain"), Some(Format::Text));
        assert_eq!(Format::from_mime("application/json"), Some(Format::Delta));
        assert_eq!(Format::from_mime("application/pdf"), None);
        for format in [Format::Markdown, Format::Html, Format::Text, Format::Delta] {
            assert_eq!(Format::from_mime(format.mime_type()), Some(format));
            assert_eq!(format.to_string().parse::<Format>().unwrap(), format);
        }
    }
}
