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

/// Where the browser tests find Chromium (the Debian package's path).
pub const CHROMIUM: &str = "/usr/bin/chromium";

/// Chromium for the browser tests, and fonts for Chinese and emoji (without them, text renders
/// as boxes in the screenshots people look at). All are Debian packages.
pub fn browser() -> Result<()> {
    let mut packages = Vec::new();
    if !Path::new(CHROMIUM).exists() {
        packages.push("chromium");
    }
    if !has_font(":lang=zh") {
        packages.push("fonts-wqy-zenhei");
    }
    if !has_font(":charset=1f600:color=true") {
        packages.push("fonts-noto-color-emoji");
    }
    if packages.is_empty() {
        return Ok(());
    }
    println!("xtask: installing {} (apt-get)", packages.join(", "));
    let install = || {
        status(
            Command::new("apt-get")
                // With recommends: this is the install the browser tests were verified with.
                .args(["install", "-y"])
                .args(&packages)
                .env("DEBIAN_FRONTEND", "noninteractive"),
        )
    };
    // A fresh machine may have no package lists yet.
    install()
        .or_else(|_| {
            status(Command::new("apt-get").arg("update"))?;
            install()
        })
        .with_context(|| format!("cannot install {} with apt-get (run as root?)", packages.join(", ")))
}

/// Whether fontconfig knows a font matching `pattern` (`fc-list` prints nothing otherwise;
/// no fontconfig at all counts as no font).
fn has_font(pattern: &str) -> bool {
    Command::new("fc-list")
        .args([pattern, "family"])
        .output()
        .map(|out| out.status.success() && !out.stdout.trim_ascii().is_empty())
        .unwrap_or(false)
}
