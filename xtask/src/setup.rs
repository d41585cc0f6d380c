//! Installs what the build and the tests need, when it is missing.
//!
//! Debian packages come from apt with freshly refreshed package lists: a fresh machine's lists
//! are as old as its image, and installing from them gives an older build than the one the
//! tests were verified with (Chromium 148 instead of 156 once made two browser tests fail on
//! every fresh machine). Whatever was installed, the version that runs is printed.

use std::path::Path;
use std::process::Command;
use std::sync::Once;

use anyhow::{Context, Result};

use crate::{output, status};

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
/// as boxes in the screenshots people look at). All are Debian packages. Prints the Chromium
/// version the tests will run.
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
    // With recommends: this is the install the browser tests were verified with.
    apt_install(&packages)?;
    let version = output(Command::new(CHROMIUM).arg("--version"))
        .with_context(|| format!("{CHROMIUM} does not run"))?;
    println!("xtask: the browser tests run {} ({CHROMIUM})", version.trim());
    Ok(())
}

/// Installs Debian `packages` (none: does nothing), refreshing the package lists first, once
/// per run.
pub fn apt_install(packages: &[&str]) -> Result<()> {
    if packages.is_empty() {
        return Ok(());
    }
    static REFRESHED: Once = Once::new();
    let mut refreshed = Ok(());
    REFRESHED.call_once(|| {
        println!("xtask: refreshing the package lists (apt-get update)");
        refreshed = status(Command::new("apt-get").args(["update", "-q"]));
    });
    refreshed.context("cannot refresh the package lists (apt-get update; run as root?)")?;
    println!("xtask: installing {} (apt-get)", packages.join(", "));
    status(
        Command::new("apt-get")
            .args(["install", "-y", "-q"])
            .args(packages)
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )
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
