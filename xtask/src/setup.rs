//! Installs what the build and the tests need, when it is missing.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result};

use crate::status;

/// `npm ci` in `dir` unless its `node_modules` already matches the committed lockfile.
pub fn npm_packages(dir: &Path) -> Result<()> {
    let lock = dir.join("package-lock.json");
    let installed = dir.join("node_modules/.package-lock.json");
    if is_newer_or_equal(&installed, &lock) {
        return Ok(());
    }
    println!("xtask: installing npm packages in {} (npm ci)", dir.display());
    status(Command::new("npm").args(["ci", "--no-audit", "--no-fund"]).current_dir(dir))
        .context("npm ci failed: is Node.js (with npm) installed?")
}

/// Whether `a` exists and was modified no earlier than `b`.
fn is_newer_or_equal(a: &Path, b: &Path) -> bool {
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    match (modified(a), modified(b)) {
        (Some(a), Some(b)) => a >= b,
        _ => false,
    }
}
