//! `cargo xtask web`: the browser app into `web/dist/`, which `quire serve` serves
//! (`--web-dir`, default `./web/dist`).
//!
//! The app bundles the wasm module's JavaScript glue and ships the module beside it, so the
//! module is built first. The TypeScript is type-checked (esbuild only strips types), then
//! `web/build.mjs` bundles it with esbuild.

use std::process::Command;

use anyhow::{Context, Result};

use crate::{root, setup, status};

pub fn build() -> Result<()> {
    crate::wasm::build()?;
    let dir = root().join("web");
    setup::npm_packages(&dir)?;
    // The page and the service worker run in different globals (DOM, WebWorker): one
    // project each.
    for project in [".", "sw"] {
        status(
            Command::new("node")
                .args(["node_modules/typescript/bin/tsc", "--noEmit", "-p", project])
                .current_dir(&dir),
        )
        .context("the web app does not type-check")?;
    }
    status(Command::new("node").arg("build.mjs").current_dir(&dir))
}
