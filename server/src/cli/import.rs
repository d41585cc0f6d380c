//! `quire import DOC FILE [--format F]`: replaces a document's body with a file, creating the
//! document if it does not exist.
//!
//! `PUT /api/docs/{id}/content` if it exists; if not, `POST /api/docs` with the content (one
//! request: the document never exists half-imported). Either falls back to the other when
//! someone else created or deleted the document in between. A Yjs update cannot go into a create, so for it
//! the document is created empty and then the update is applied; if that fails, the empty
//! document is deleted again.

use std::io::{Cursor, Read};
use std::path::PathBuf;

use anyhow::{bail, Context};
use bytes::Bytes;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use quire_model::DocId;
use serde_json::json;
use ureq::http::{Response, StatusCode};
use ureq::typestate::WithBody;
use ureq::{Body, RequestBuilder, SendBody};

use super::format::CliFormat;
use super::{doc_id, Server, ServerArg};

/// Uploads smaller than this finish before a progress bar would be worth drawing.
const PROGRESS_THRESHOLD: usize = 1024 * 1024;

#[derive(Args, Debug)]
pub struct ImportArgs {
    /// The document id (created if it does not exist).
    doc: String,
    /// The file to import.
    file: PathBuf,
    /// The file's format; by default from its extension: .md/.markdown, .html/.htm, .txt,
    /// .json (Quill Delta), .yjs/.bin (a Yjs update).
    #[arg(long, short, value_enum)]
    format: Option<CliFormat>,
    #[command(flatten)]
    server: ServerArg,
}


pub fn run(args: ImportArgs) -> anyhow::Result<()> {
    let id = doc_id(&args.doc)?;
    let format = match args.format {
        Some(format) => format,
        None => CliFormat::from_extension(&args.file).with_context(|| {
            format!(
                "cannot tell the format of {} from its extension: pass --format",
                args.file.display()
            )
        })?,
    };
    let server = Server::new(&args.server)?;
    let bytes = Bytes::from(
        std::fs::read(&args.file)
            .with_context(|| format!("cannot read {}", args.file.display()))?,
    );
    // Said here, with the file's name, rather than as the server's 400.
    if format != CliFormat::Yjs && std::str::from_utf8(&bytes).is_err() {
        bail!(
            "{} is not UTF-8 text; {} files must be",
            args.file.display(),
            format.api_name()
        );
    }
    let size = bytes.len();
    // Asked first so that a big file is uploaded once, not refused by PUT and sent again.
    let replaced = exists(&server, &id)?
        && matches!(replace(&server, &id, format, bytes.clone())?, Outcome::Done);
    let created = if replaced {
        false
    } else if format == CliFormat::Yjs {
        create_then_merge(&server, &id, bytes)?
    } else {
        create_with(&server, &id, format, bytes)?
    };
    let verb = if created { "created" } else { "replaced" };
    eprintln!(
        "{verb} `{id}` from {} ({size} bytes, {})",
        args.file.display(),
        format.api_name()
    );
    Ok(())
}

enum Outcome {
    Done,
    Missing,
}

/// `GET /api/docs/{id}`: whether the document exists.
fn exists(server: &Server, id: &DocId) -> anyhow::Result<bool> {
    let url = server.url(&format!("/api/docs/{id}"));
    let response = server
        .get(&url)
        .call()
        .map_err(|e| server.unreachable(e))?;
    match response.status() {
        StatusCode::OK => Ok(true),
        StatusCode::NOT_FOUND => Ok(false),
        _ => Err(server.failure(&format!("cannot look up `{id}`"), response)),
    }
}

/// `PUT /api/docs/{id}/content`.
fn replace(
    server: &Server,
    id: &DocId,
    format: CliFormat,
    bytes: Bytes,
) -> anyhow::Result<Outcome> {
    let url = server.url(&format!("/api/docs/{id}/content"));
    let response = upload(server, server.put(&url), format.mime(), bytes)?;
    match response.status() {
        StatusCode::NO_CONTENT => Ok(Outcome::Done),
        StatusCode::NOT_FOUND => Ok(Outcome::Missing),
        _ => Err(server.failure(&format!("cannot import into `{id}`"), response)),
    }
}

/// `POST /api/docs` with the content. Returns whether it created the document: someone may
/// have created it since our PUT, and then the PUT is simply done again.
fn create_with(
    server: &Server,
    id: &DocId,
    format: CliFormat,
    bytes: Bytes,
) -> anyhow::Result<bool> {
    let content = std::str::from_utf8(&bytes).context("not UTF-8")?;
    let body = json!({ "id": id.as_str(), "content": content, "format": format.api_name() });
    let post = server.post(&server.url("/api/docs"));
    let response = upload(server, post, "application/json", body.to_string().into())?;
    match response.status() {
        StatusCode::CREATED => Ok(true),
        StatusCode::CONFLICT => match replace(server, id, format, bytes)? {
            Outcome::Done => Ok(false),
            Outcome::Missing => bail!("`{id}` was created and deleted again while importing"),
        },
        _ => Err(server.failure(&format!("cannot create `{id}`"), response)),
    }
}

/// Creates an empty document, then merges the update; deletes it again if the update is
/// refused, so a failed import leaves nothing behind. Returns whether it created it.
fn create_then_merge(server: &Server, id: &DocId, bytes: Bytes) -> anyhow::Result<bool> {
    let body = json!({ "id": id.as_str() }).to_string();
    let post = server.post(&server.url("/api/docs"));
    let response = upload(server, post, "application/json", body.into())?;
    let we_created = match response.status() {
        StatusCode::CREATED => true,
        StatusCode::CONFLICT => false,
        _ => return Err(server.failure(&format!("cannot create `{id}`"), response)),
    };
    let failure = match replace(server, id, CliFormat::Yjs, bytes) {
        Ok(Outcome::Done) => return Ok(we_created),
        Ok(Outcome::Missing) => anyhow::anyhow!("`{id}` was deleted while importing"),
        Err(error) => error,
    };
    if we_created {
        let url = server.url(&format!("/api/docs/{id}"));
        if let Err(error) = server.delete(&url).call() {
            eprintln!("warning: could not remove the empty `{id}` again: {error}");
        }
    }
    Err(failure)
}

/// Sends `bytes` with a progress bar on stderr when they are many (and stderr is a terminal:
/// indicatif draws nothing otherwise).
fn upload(
    server: &Server,
    request: RequestBuilder<WithBody>,
    mime: &str,
    bytes: Bytes,
) -> anyhow::Result<Response<Body>> {
    let len = bytes.len();
    let bar = if len >= PROGRESS_THRESHOLD {
        let style =
            ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {bytes_per_sec} {eta}")
                .context("progress bar template")?;
        ProgressBar::new(len as u64).with_style(style)
    } else {
        ProgressBar::hidden()
    };
    let mut reader: Box<dyn Read> = Box::new(bar.wrap_read(Cursor::new(bytes)));
    // With the length given, the body goes out as is, not chunked.
    let body = SendBody::from_reader(&mut reader);
    let sent = request
        .header("content-type", mime)
        .header("content-length", len)
        .send(body);
    bar.finish_and_clear();
    sent.map_err(|e| server.unreachable(e))
}
