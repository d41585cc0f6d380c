//! `quire export DOC [--format F] [--version V] [--output FILE]`: `GET /api/docs/{id}/content`,
//! or `GET /api/docs/{id}/versions/{v}/content` for a version (`quire versions DOC` lists them).

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;

use super::format::CliFormat;
use super::{doc_id, Server, ServerArg};

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// The document id.
    doc: String,
    /// What to export as.
    #[arg(long, short, value_enum, default_value = "markdown")]
    format: CliFormat,
    /// Write here instead of to stdout (replaced only once the whole export has arrived).
    #[arg(long, short)]
    output: Option<PathBuf>,
    /// Export this version instead of the document as it is now (an id from `quire versions`).
    #[arg(long)]
    version: Option<u64>,
    #[command(flatten)]
    server: ServerArg,
}


pub fn run(args: ExportArgs) -> anyhow::Result<()> {
    let id = doc_id(&args.doc)?;
    let server = Server::new(&args.server)?;
    let path = match args.version {
        Some(v) => format!("/api/docs/{id}/versions/{v}/content"),
        None => format!("/api/docs/{id}/content"),
    };
    let url = server.url(&format!("{path}?format={}", args.format.api_name()));
    let response = server
        .get(&url)
        .call()
        .map_err(|e| server.unreachable(e))?;
    if !response.status().is_success() {
        return Err(server.failure(&format!("cannot export `{id}`"), response));
    }
    // No size limit: the server bounds what it holds, and the body is streamed, not buffered.
    let mut body = response.into_body().into_with_config().reader();
    match &args.output {
        None => {
            let mut stdout = io::stdout().lock();
            io::copy(&mut body, &mut stdout).context("export interrupted")?;
            stdout.flush()?;
        }
        Some(path) => write_replacing(path, &mut body)?,
    }
    Ok(())
}

/// Writes beside `path`, then renames over it: an interrupted export leaves the old file.
fn write_replacing(path: &Path, body: &mut impl io::Read) -> anyhow::Result<()> {
    let name = path.file_name().context("--output needs a file name")?;
    let mut partial = name.to_owned();
    partial.push(".part");
    let partial = path.with_file_name(partial);
    let written = (|| {
        let mut file = File::create(&partial)?;
        io::copy(body, &mut file)?;
        file.sync_all()?;
        std::fs::rename(&partial, path)
    })();
    if let Err(error) = written {
        let _ = std::fs::remove_file(&partial);
        return Err(error).with_context(|| format!("cannot write {}", path.display()));
    }
    Ok(())
}
