//! The formats `quire export` and `quire import` speak, and how each maps to the API.

use std::path::Path;

use clap::ValueEnum;

/// One of the API's content formats, as the command line names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum CliFormat {
    #[value(alias = "md")]
    Markdown,
    #[value(alias = "htm")]
    Html,
    #[value(alias = "txt")]
    Text,
    /// Quill Delta JSON.
    #[value(alias = "json")]
    Delta,
    /// A binary Yjs update (v1): the whole document on export, merged in on import.
    Yjs,
}

impl CliFormat {
    pub fn from_extension(path: &Path) -> Option<CliFormat> {
        let extension = path.extension()?.to_str()?.to_ascii_lowercase();
        Some(match extension.as_str() {
            "md" | "markdown" => CliFormat::Markdown,
            "html" | "htm" => CliFormat::Html,
            "txt" => CliFormat::Text,
            "json" => CliFormat::Delta,
            "yjs" | "bin" => CliFormat::Yjs,
            _ => return None,
        })
    }

    /// The `Content-Type` the API reads the format from.
    pub fn mime(self) -> &'static str {
        match self {
            CliFormat::Markdown => "text/markdown; charset=utf-8",
            CliFormat::Html => "text/html; charset=utf-8",
            CliFormat::Text => "text/plain; charset=utf-8",
            CliFormat::Delta => "application/json",
            CliFormat::Yjs => "application/octet-stream",
        }
    }

    /// The API's name for it (`?format=` on export, `format` in `POST /api/docs`).
    pub fn api_name(self) -> &'static str {
        match self {
            CliFormat::Markdown => "markdown",
            CliFormat::Html => "html",
            CliFormat::Text => "text",
            CliFormat::Delta => "delta",
            CliFormat::Yjs => "yjs",
        }
    }
}
