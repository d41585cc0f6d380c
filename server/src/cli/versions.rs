//! `quire versions DOC [--json]`: `GET /api/docs/{id}/versions`, every page, newest first: one
//! line per version (its id for `quire export DOC --version V`, when it was taken, its kind,
//! its name, who edited), or the API's JSON.

use std::io::Write;

use anyhow::Context;
use clap::Args;
use serde_json::Value;

use super::{doc_id, Server, ServerArg};

/// The API's largest page.
const PAGE: u64 = 1000;

#[derive(Args, Debug)]
pub struct VersionsArgs {
    /// The document id.
    doc: String,
    /// Print the versions as the API's JSON (one array), not as lines.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    server: ServerArg,
}

pub fn run(args: VersionsArgs) -> anyhow::Result<()> {
    let id = doc_id(&args.doc)?;
    let server = Server::new(&args.server)?;
    let mut versions: Vec<Value> = Vec::new();
    let mut offset = 0;
    loop {
        let url = server.url(&format!("/api/docs/{id}/versions?limit={PAGE}&offset={offset}"));
        let response = server.get(&url).call().map_err(|e| server.unreachable(e))?;
        if !response.status().is_success() {
            return Err(server.failure(&format!("cannot list the versions of `{id}`"), response));
        }
        // A page is ~300 bytes a version: well under this.
        let body = response.into_body().with_config().limit(16 * 1024 * 1024).read_to_string()?;
        let page: Value = serde_json::from_str(&body).context("the server's answer is not JSON")?;
        versions.extend(page["versions"].as_array().cloned().unwrap_or_default());
        match page["next_offset"].as_u64() {
            Some(next) if next > offset => offset = next,
            _ => break,
        }
    }
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &versions)?;
        writeln!(out)?;
        return Ok(());
    }
    writeln!(out, "{:<15} {:<20} {:<8} {:<24} EDITORS", "ID", "TAKEN (UTC)", "KIND", "NAME")?;
    for version in &versions {
        let editors: Vec<String> = version["editors"].as_array().into_iter().flatten().map(author).collect();
        writeln!(
            out,
            "{:<15} {:<20} {:<8} {:<24} {}",
            version["id"].as_u64().unwrap_or_default(),
            utc(version["created_ms"].as_u64().unwrap_or_default()),
            version["kind"].as_str().unwrap_or("?"),
            version["name"].as_str().unwrap_or("-"),
            editors.join(", "),
        )?;
    }
    Ok(())
}

/// An author as a person reads it.
fn author(author: &Value) -> String {
    match author["kind"].as_str() {
        Some("person") => author["name"].as_str().unwrap_or("?").to_owned(),
        Some("restored") => match author["by"]["name"].as_str() {
            Some(by) => format!("restored by {by}"),
            None => "restored".to_owned(),
        },
        Some(kind) => kind.to_owned(),
        None => "?".to_owned(),
    }
}

/// `YYYY-MM-DD HH:MM:SS` of a time in milliseconds since the epoch, in UTC (the civil date
/// from the day count, as in Howard Hinnant's `civil_from_days`).
fn utc(ms: u64) -> String {
    let secs = ms / 1000;
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}", rest / 3600, rest % 3600 / 60, rest % 60)
}

#[cfg(test)]
mod tests {
    #[test]
    fn utc_times_read_as_dates() {
        assert_eq!(super::utc(0), "1970-01-01 00:00:00");
        assert_eq!(super::utc(1_796_147_214_545), "2026-12-01 17:46:54");
        assert_eq!(super::utc(951_782_400_000), "2000-02-29 00:00:00");
    }
}
