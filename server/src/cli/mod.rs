//! The client subcommands, `quire export` and `quire import`: a running server's HTTP API from
//! the command line. Part of the binary only, so `anyhow` is at home here.
//!
//! - `export`: a document's body (or one of its versions) to stdout or a file.
//! - `import`: a file into a document, created if missing, with a progress bar for big files.
//! - `versions`: a document's versions, newest first.
//! - `format`: the formats export and import speak.

pub mod export;
mod format;
pub mod import;
pub mod versions;

use std::time::Duration;

use anyhow::{bail, Context};
use clap::Args;
use quire_model::DocId;
use ureq::http::Response;
use ureq::Body;

/// Error bodies are small JSON; anything past this is not one of ours.
const ERROR_BODY_LIMIT: u64 = 64 * 1024;
/// Loopback or a LAN: a server that has not answered a connect within this is not there.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the server is; shared by the client subcommands.
#[derive(Args, Debug)]
pub struct ServerArg {
    /// Base URL of the quire server.
    #[arg(long, env = "QUIRE_SERVER", default_value = "http://127.0.0.1:8080")]
    server: String,
    /// The owner key, or a document's token (a share link's or one an application minted).
    #[arg(long, env = "QUIRE_TOKEN", hide_env_values = true)]
    token: Option<String>,
}

/// A quire server's HTTP API.
pub struct Server {
    base: String,
    agent: ureq::Agent,
    /// `Authorization` for every request, if a token was given.
    authorization: Option<String>,
}

impl Server {
    pub fn new(arg: &ServerArg) -> anyhow::Result<Server> {
        let base = arg.server.trim_end_matches('/').to_owned();
        // The client is built without TLS: quire serves plain HTTP, normally on loopback; an
        // https URL would fail later with a less helpful message.
        if !base.starts_with("http://") {
            bail!("--server must be an http:// URL (this build has no TLS), got `{base}`");
        }
        let agent = ureq::Agent::config_builder()
            // Error statuses carry quire's JSON error: read them instead of failing.
            .http_status_as_error(false)
            .timeout_connect(Some(CONNECT_TIMEOUT))
            .build()
            .new_agent();
        let authorization = arg.token.as_ref().map(|token| format!("Bearer {token}"));
        Ok(Server { base, agent, authorization })
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn get(&self, url: &str) -> ureq::RequestBuilder<ureq::typestate::WithoutBody> {
        self.authorize(self.agent.get(url))
    }

    pub fn delete(&self, url: &str) -> ureq::RequestBuilder<ureq::typestate::WithoutBody> {
        self.authorize(self.agent.delete(url))
    }

    pub fn put(&self, url: &str) -> ureq::RequestBuilder<ureq::typestate::WithBody> {
        self.authorize(self.agent.put(url))
    }

    pub fn post(&self, url: &str) -> ureq::RequestBuilder<ureq::typestate::WithBody> {
        self.authorize(self.agent.post(url))
    }

    fn authorize<B>(&self, request: ureq::RequestBuilder<B>) -> ureq::RequestBuilder<B> {
        match &self.authorization {
            Some(value) => request.header("Authorization", value),
            None => request,
        }
    }

    /// What went wrong in words, from a response with an error status.
    pub fn failure(&self, what: &str, mut response: Response<Body>) -> anyhow::Error {
        let status = response.status();
        let body = response
            .body_mut()
            .with_config()
            .limit(ERROR_BODY_LIMIT)
            .read_to_string()
            .unwrap_or_default();
        let message = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v["error"]["message"].as_str().map(str::to_owned))
            .unwrap_or(body);
        anyhow::anyhow!("{what}: the server answered {status}: {message}")
    }

    /// A transport failure (no server, connection reset …) in words.
    pub fn unreachable(&self, error: ureq::Error) -> anyhow::Error {
        anyhow::Error::new(error).context(format!("cannot talk to quire at {}", self.base))
    }
}

/// Checks the id here, for a clear message, before any request.
pub fn doc_id(raw: &str) -> anyhow::Result<DocId> {
    DocId::parse(raw).with_context(|| format!("bad document id `{raw}`"))
}
