//! `cargo xtask wasm`: builds client-wasm into `client-wasm/pkg/` (`quire_client.js`,
//! `quire_client.d.ts`, `quire_client_bg.wasm`) and prints its size, raw and gzipped.
//!
//! Steps, each timed: the `wasm32-unknown-unknown` target (rustup), the wasm-bindgen CLI of
//! exactly the version Cargo.lock pins (it refuses modules built by another version), the
//! build with the `wasm-release` size profile, wasm-bindgen, then wasm-opt when installed.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{bail, Context, Result};

use crate::{cargo, root, status};

const TARGET: &str = "wasm32-unknown-unknown";
const PROFILE: &str = "wasm-release";

pub fn build() -> Result<()> {
    step("rust target", wasm_target)?;
    let bindgen = step("wasm-bindgen CLI", wasm_bindgen_cli)?;
    step("cargo build", || {
        status(cargo().args([
            "build",
            "-p",
            "quire-client",
            "--target",
            TARGET,
            "--profile",
            PROFILE,
        ]))
    })?;
    let built = target_dir()
        .join(TARGET)
        .join(PROFILE)
        .join("quire_client.wasm");
    let pkg = root().join("client-wasm/pkg");
    let out = pkg.join("quire_client_bg.wasm");
    if is_newer(&out, &built) && is_newer(&pkg.join("quire_client.js"), &built) {
        println!("xtask: wasm: client-wasm/pkg is up to date");
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
        step("wasm-opt", || optimise(&out))?;
    }
    report(&out)
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

/// `wasm-opt -Oz` in place, when binaryen is installed (optional: `apt-get install binaryen`
/// or npm `binaryen`). What the browser downloads is gzipped, and wasm-opt's output is not
/// always smaller once gzipped: plain -Oz inlines every function with one caller up to its
/// default size limit, which makes the module smaller raw but about 8% bigger gzipped (binaryen
/// 108; the copies compress worse than the shared calls). `-ocimfs 20`
/// (`--one-caller-inline-max-function-size`) keeps that inlining to small functions: about 2%
/// smaller gzipped than without wasm-opt. Its output is still kept only when it wins gzipped.
fn optimise(wasm: &Path) -> Result<()> {
    const OPT_FLAGS: [&str; 3] = ["-Oz", "-ocimfs", "20"];
    let Ok(version) = output(Command::new("wasm-opt").arg("--version")) else {
        println!("xtask: wasm: wasm-opt not found (binaryen), skipping it");
        return Ok(());
    };
    let optimised = wasm.with_extension("opt.wasm");
    // Optional, so a wasm-opt too old for the module's features is a note, not a failure.
    if let Err(e) = output(
        Command::new("wasm-opt")
            .args(OPT_FLAGS)
            .arg(wasm)
            .arg("-o")
            .arg(&optimised),
    ) {
        println!(
            "xtask: wasm: {} could not optimise the module ({e}), keeping it as is",
            version.trim()
        );
        let _ = std::fs::remove_file(&optimised);
        return Ok(());
    }
    // binaryen 108 writes wasm-bindgen's externref table export pointing at the funcref table
    // (even with no passes), and the module then fails to load (`__wbindgen_init_externref_table`
    // throws). Refuse any output whose exported tables changed type.
    if exported_tables(&std::fs::read(wasm)?) != exported_tables(&std::fs::read(&optimised)?) {
        println!(
            "xtask: wasm: {} broke the exported tables (a binaryen bug), keeping the module without it",
            version.trim()
        );
        std::fs::remove_file(&optimised)?;
        return Ok(());
    }
    let (before, after) = (gzipped_size(wasm)?, gzipped_size(&optimised)?);
    println!(
        "xtask: wasm: {} {}: {} -> {} bytes raw, {before} -> {after} bytes gzipped",
        version.trim(),
        OPT_FLAGS.join(" "),
        file_size(wasm)?,
        file_size(&optimised)?,
    );
    if after < before {
        std::fs::rename(&optimised, wasm)?;
    } else {
        println!("xtask: wasm: keeping the module without wasm-opt (smaller gzipped)");
        std::fs::remove_file(&optimised)?;
    }
    Ok(())
}

/// Each exported table's name and element type (0x70 funcref, 0x6f externref), read from the
/// module's import, table and export sections; `None` if the module does not parse as expected.
fn exported_tables(module: &[u8]) -> Option<Vec<(Vec<u8>, u8)>> {
    fn leb(bytes: &[u8], at: &mut usize) -> Option<u32> {
        let (mut value, mut shift) = (0u32, 0);
        loop {
            let byte = *bytes.get(*at)?;
            *at += 1;
            value |= u32::from(byte & 0x7f).checked_shl(shift)?;
            if byte & 0x80 == 0 {
                return Some(value);
            }
            shift += 7;
        }
    }
    fn name<'a>(bytes: &'a [u8], at: &mut usize) -> Option<&'a [u8]> {
        let len = leb(bytes, at)? as usize;
        let name = bytes.get(*at..*at + len)?;
        *at += len;
        Some(name)
    }
    fn limits(bytes: &[u8], at: &mut usize) -> Option<()> {
        let flags = *bytes.get(*at)?;
        *at += 1;
        leb(bytes, at)?;
        if flags & 1 == 1 {
            leb(bytes, at)?;
        }
        Some(())
    }
    let mut tables = Vec::new(); // element types, imported tables first
    let mut exports = Vec::new();
    let mut at = 8; // magic and version
    while at < module.len() {
        let id = module[at];
        at += 1;
        let size = leb(module, &mut at)? as usize;
        let section = module.get(at..at + size)?;
        at += size;
        let mut p = 0;
        match id {
            2 => {
                for _ in 0..leb(section, &mut p)? {
                    name(section, &mut p)?;
                    name(section, &mut p)?;
                    let kind = *section.get(p)?;
                    p += 1;
                    match kind {
                        0 | 4 => {
                            if kind == 4 {
                                p += 1;
                            }
                            leb(section, &mut p)?;
                        }
                        1 => {
                            tables.push(*section.get(p)?);
                            p += 1;
                            limits(section, &mut p)?;
                        }
                        2 => limits(section, &mut p)?,
                        3 => p += 2,
                        _ => return None,
                    }
                }
            }
            4 => {
                for _ in 0..leb(section, &mut p)? {
                    tables.push(*section.get(p)?);
                    p += 1;
                    limits(section, &mut p)?;
                }
            }
            7 => {
                for _ in 0..leb(section, &mut p)? {
                    let export = name(section, &mut p)?.to_vec();
                    let kind = *section.get(p)?;
                    p += 1;
                    let index = leb(section, &mut p)? as usize;
                    if kind == 1 {
                        exports.push((export, index));
                    }
                }
            }
            _ => {}
        }
    }
    exports
        .into_iter()
        .map(|(export, index)| Some((export, *tables.get(index)?)))
        .collect()
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
fn output(command: &mut Command) -> Result<String> {
    let out = command.stderr(Stdio::null()).output()?;
    if !out.status.success() {
        bail!("{command:?} failed ({})", out.status);
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

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
