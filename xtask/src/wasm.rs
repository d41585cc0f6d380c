//! `cargo xtask wasm`: builds the browser's two WebAssembly modules and prints their sizes, raw
//! and gzipped:
//! - client-wasm into `client-wasm/pkg/` (`quire_client.js`, `quire_client.d.ts`,
//!   `quire_client_bg.wasm`): the replica, which every editor page loads;
//! - client-markdown into `client-markdown/pkg/` (`quire_markdown.*`): the Markdown writer, which
//!   the app loads only when a device must save its copy of a document itself.
//!
//! Steps, each timed: the `wasm32-unknown-unknown` target (rustup), the wasm-bindgen CLI of
//! exactly the version Cargo.lock pins (it refuses modules built by another version), the
//! build with the `wasm-release` size profile, then wasm-bindgen.
//!
//! No wasm-opt: measured on this module, binaryen 108 (Debian) writes wasm-bindgen's
//! externref table export onto the funcref table (even with no passes; the module then fails
//! to load), and where it works (binaryen 132) it saves about 2% gzipped (`-Oz -ocimfs 20`;
//! plain `-Oz` makes the module ~8% *bigger* gzipped). The size comes from the profile and
//! from keeping serde_json out of client-wasm.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{bail, Context, Result};

use crate::{cargo, output, root, status};

const TARGET: &str = "wasm32-unknown-unknown";
const PROFILE: &str = "wasm-release";

/// One module: its package, the file name its crate builds (and wasm-bindgen's output names),
/// and where its package goes.
struct Module {
    package: &'static str,
    name: &'static str,
    pkg: &'static str,
}

const MODULES: [Module; 2] = [
    Module {
        package: "quire-client",
        name: "quire_client",
        pkg: "client-wasm/pkg",
    },
    Module {
        package: "quire-markdown",
        name: "quire_markdown",
        pkg: "client-markdown/pkg",
    },
];

pub fn build() -> Result<()> {
    step("rust target", wasm_target)?;
    let bindgen = step("wasm-bindgen CLI", wasm_bindgen_cli)?;
    step("cargo build", || {
        let mut build = cargo();
        build.args(["build", "--target", TARGET, "--profile", PROFILE]);
        for module in &MODULES {
            build.args(["-p", module.package]);
        }
        status(&mut build)
    })?;
    for module in &MODULES {
        let built = target_dir()
            .join(TARGET)
            .join(PROFILE)
            .join(format!("{}.wasm", module.name));
        let pkg = root().join(module.pkg);
        let out = pkg.join(format!("{}_bg.wasm", module.name));
        if is_newer(&out, &built) && is_newer(&pkg.join(format!("{}.js", module.name)), &built) {
            println!("xtask: wasm: {} is up to date", module.pkg);
        } else {
            step("wasm-bindgen", || {
                // The name section only serves stack traces and is a third of the module.
                let args = [
                    "--target",
                    "web",
                    "--remove-name-section",
                    "--remove-producers-section",
                    "--out-dir",
                ];
                status(Command::new(&bindgen).args(args).arg(&pkg).arg(&built))
            })?;
        }
        report(&out)?;
    }
    Ok(())
}

/// Runs one step and prints how long it took.
fn step<T>(name: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    let start = Instant::now();
    let result = f().with_context(|| format!("wasm build step {name:?} failed"))?;
    println!(
        "xtask: wasm: {name}: {:.1} s",
        start.elapsed().as_secs_f64()
    );
    Ok(result)
}

/// `rustup target add wasm32-unknown-unknown` unless it is installed.
fn wasm_target() -> Result<()> {
    let installed = output(Command::new("rustup").args(["target", "list", "--installed"]))
        .context("rustup is needed to add the wasm32 target")?;
    if installed.lines().any(|line| line.trim() == TARGET) {
        return Ok(());
    }
    println!("xtask: wasm: adding the {TARGET} target (rustup)");
    status(Command::new("rustup").args(["target", "add", TARGET]))
}

/// The wasm-bindgen CLI matching the `wasm-bindgen` crate in Cargo.lock; installs it with
/// `cargo install` (a few minutes, once) when missing or of another version.
fn wasm_bindgen_cli() -> Result<PathBuf> {
    let version = locked_version("wasm-bindgen")?;
    // Prefer the copy `cargo install` put in CARGO_HOME over another one earlier on PATH.
    let installed = cargo_home().join("bin/wasm-bindgen");
    let bin = if installed.exists() {
        installed
    } else {
        PathBuf::from("wasm-bindgen")
    };
    let found = output(Command::new(&bin).arg("--version")).unwrap_or_default();
    // "wasm-bindgen 0.2.130"
    if found.split_whitespace().nth(1) == Some(version.as_str()) {
        return Ok(bin);
    }
    println!(
        "xtask: wasm: installing wasm-bindgen-cli {version} (found {:?}; takes a few minutes, once)",
        found.trim()
    );
    // --force: cargo skips a crate it has recorded as installed, even when the binary is gone.
    status(cargo().args([
        "install",
        "--force",
        "wasm-bindgen-cli",
        "--version",
        &version,
    ]))?;
    Ok(cargo_home().join("bin/wasm-bindgen"))
}

/// The version of `package` in Cargo.lock (the only one: Cargo.lock may list a crate twice,
/// but then this build could not pick a CLI version, so that is an error).
fn locked_version(package: &str) -> Result<String> {
    let lock = std::fs::read_to_string(root().join("Cargo.lock")).context("reading Cargo.lock")?;
    let name_line = format!("name = \"{package}\"");
    let versions: Vec<&str> = lock
        .split("[[package]]")
        .filter(|entry| entry.lines().any(|line| line.trim() == name_line))
        .filter_map(|entry| {
            entry
                .lines()
                .find_map(|line| line.trim().strip_prefix("version = \"")?.strip_suffix('"'))
        })
        .collect();
    match versions[..] {
        [version] => Ok(version.to_owned()),
        [] => bail!("{package} is not in Cargo.lock"),
        _ => bail!("Cargo.lock holds several versions of {package}: {versions:?}"),
    }
}

fn report(wasm: &Path) -> Result<()> {
    println!(
        "xtask: wasm: {}: {} bytes, {} bytes gzipped (gzip -9)",
        wasm.strip_prefix(root()).unwrap_or(wasm).display(),
        file_size(wasm)?,
        gzipped_size(wasm)?
    );
    Ok(())
}

fn file_size(path: &Path) -> Result<u64> {
    Ok(std::fs::metadata(path)
        .with_context(|| format!("{}", path.display()))?
        .len())
}

/// Size after `gzip -9` (gzip is on every machine this runs on; no Rust gzip crate in the lock).
fn gzipped_size(path: &Path) -> Result<u64> {
    let mut child = Command::new("gzip")
        .args(["-9", "-c"])
        .arg(path)
        .stdout(Stdio::piped())
        .spawn()
        .context("gzip is needed to measure the compressed size")?;
    let mut compressed = Vec::new();
    child
        .stdout
        .take()
        .expect("piped")
        .read_to_end(&mut compressed)?;
    if !child.wait()?.success() {
        bail!("gzip failed on {}", path.display());
    }
    Ok(compressed.len() as u64)
}

/// A command's stdout, failing if it cannot start or does not succeed.
fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root().join("target"), PathBuf::from)
}

fn cargo_home() -> PathBuf {
    std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".cargo")))
        .unwrap_or_else(|| PathBuf::from(".cargo"))
}

/// Whether `a` exists and was modified after `b`.
fn is_newer(a: &Path, b: &Path) -> bool {
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    matches!((modified(a), modified(b)), (Some(a), Some(b)) if a > b)
}
