//! `cargo xtask fresh [--uninstall] [--keep]`: the README's two commands, run as a newcomer's
//! fresh machine would run them.
//!
//! A green run on a machine that already has the tools proves little about a newcomer's first
//! run: a missing install step only shows where the tool is missing. So this runs
//! `cargo xtask run` (until the app answers, then stops it) and then `cargo xtask test` in a
//! clean clone of HEAD, with
//! - a cold target directory (the clone's own);
//! - an empty `CARGO_HOME` and a `PATH` without the one in use: every crate is downloaded again
//!   and wasm-bindgen-cli is built from scratch;
//! - an empty npm cache and no `node_modules`;
//! - `shared/` (the editing traces) beside the clone, as beside every checkout;
//! - with `--uninstall`, meant for throwaway machines and CI runners because it changes this
//!   one: without the wasm target and without the Debian packages the commands install
//!   (Chromium, the fonts, Redis, PostgreSQL, HAProxy), so those installs run too. Without it,
//!   the ones already here are listed as not exercised.
//!
//! What it cannot undo is the age of the machine's apt package lists; the commands refresh
//! them before installing anything, so that does not change what gets installed.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::{output, root, status};

/// The wasm target the build adds with rustup.
const WASM_TARGET: &str = "wasm32-unknown-unknown";
/// The Debian packages `cargo xtask test` installs when they are missing.
const PACKAGES: &[&str] = &[
    "chromium",
    "chromium-common",
    "fonts-wqy-zenhei",
    "fonts-noto-color-emoji",
    "redis-server",
    "postgresql",
    "postgresql-15",
    "haproxy",
];
/// A cold build of everything, wasm-bindgen-cli included, takes ~15 min on 2 cores.
const RUN_DEADLINE: Duration = Duration::from_secs(60 * 60);

pub fn run(args: &[String]) -> Result<()> {
    let mut uninstall = false;
    let mut keep = false;
    for arg in args {
        match arg.as_str() {
            "--uninstall" => uninstall = true,
            "--keep" => keep = true,
            other => bail!("unknown flag {other:?}: `cargo xtask fresh [--uninstall] [--keep]`"),
        }
    }
    let dirty = output(Command::new("git").args(["status", "--porcelain"]).current_dir(root()))?;
    if !dirty.trim().is_empty() {
        println!("xtask fresh: uncommitted changes are not part of this run (it clones HEAD)");
    }
    let scratch = std::env::temp_dir().join(format!("quire-fresh-{}", std::process::id()));
    let clone = scratch.join("quire");
    std::fs::create_dir_all(&scratch)?;
    status(Command::new("git").args(["clone", "--quiet", "--no-local"]).arg(root()).arg(&clone))?;
    // The workplace and CI lay `shared/` (the editing traces some tests read) beside the
    // checkout; so does this run, beside the clone.
    let shared = root().join("../shared");
    if shared.is_dir() {
        std::os::unix::fs::symlink(shared.canonicalize()?, scratch.join("shared"))
            .context("cannot link shared/ beside the clone")?;
    }

    if uninstall {
        remove_machine_tools()?;
    } else {
        let present = machine_tools_present();
        if !present.is_empty() {
            println!(
                "xtask fresh: already on this machine, so their installs are not exercised: {} \
                 (--uninstall removes them first)",
                present.join(", ")
            );
        }
    }

    let env = FreshEnv::create(&scratch)?;
    let started = Instant::now();
    let answered = run_until_answering(&clone, &env, &scratch.join("data"))?;
    println!("xtask fresh: `cargo xtask run` answered after {:.0} s", answered.as_secs_f64());

    let started_test = Instant::now();
    let mut test = env.command(&clone);
    test.args(["xtask", "test"]);
    let tested = status(&mut test);
    println!(
        "xtask fresh: `cargo xtask test` {} after {:.0} s ({:.0} s in all)",
        if tested.is_ok() { "passed" } else { "FAILED" },
        started_test.elapsed().as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    if keep || tested.is_err() {
        println!("xtask fresh: the clone and its environment are kept in {}", scratch.display());
    } else {
        let _ = std::fs::remove_dir_all(&scratch);
    }
    tested
}

/// The wasm target and the Debian packages that are installed now.
fn machine_tools_present() -> Vec<String> {
    let mut present = Vec::new();
    let targets = output(Command::new("rustup").args(["target", "list", "--installed"])).unwrap_or_default();
    if targets.lines().any(|t| t.trim() == WASM_TARGET) {
        present.push(format!("the {WASM_TARGET} target"));
    }
    present.extend(PACKAGES.iter().filter(|p| is_installed(p)).map(|p| p.to_string()));
    present
}

fn remove_machine_tools() -> Result<()> {
    let targets = output(Command::new("rustup").args(["target", "list", "--installed"]))?;
    if targets.lines().any(|t| t.trim() == WASM_TARGET) {
        println!("xtask fresh: removing the {WASM_TARGET} target");
        status(Command::new("rustup").args(["target", "remove", WASM_TARGET]))?;
    }
    let installed: Vec<&str> = PACKAGES.iter().copied().filter(|p| is_installed(p)).collect();
    if !installed.is_empty() {
        println!("xtask fresh: removing {}", installed.join(", "));
        status(
            Command::new("apt-get")
                .args(["purge", "-y", "-q", "--autoremove"])
                .args(&installed)
                .env("DEBIAN_FRONTEND", "noninteractive"),
        )?;
    }
    Ok(())
}

fn is_installed(package: &str) -> bool {
    output(Command::new("dpkg-query").args(["-W", "-f", "${Status}", package]))
        .is_ok_and(|s| s.contains("install ok installed"))
}

/// The environment of a newcomer's shell: their own empty cargo home and npm cache, and the
/// Rust toolchain (rustup's `cargo`, `rustc`, `rustup`) on the `PATH`, nothing else of ours.
struct FreshEnv {
    cargo_home: PathBuf,
    path: std::ffi::OsString,
    npm_cache: PathBuf,
}

impl FreshEnv {
    fn create(scratch: &Path) -> Result<FreshEnv> {
        let cargo_home = scratch.join("cargo-home");
        let bin = scratch.join("bin");
        std::fs::create_dir_all(&cargo_home)?;
        std::fs::create_dir_all(&bin)?;
        let own_cargo_bin = home_cargo_bin()?;
        for tool in ["cargo", "rustc", "rustup", "rustdoc"] {
            let link = bin.join(tool);
            if !link.exists() {
                std::os::unix::fs::symlink(own_cargo_bin.join(tool), link)?;
            }
        }
        // Our cargo bin (which holds an installed wasm-bindgen, say) is replaced by the links.
        let rest = std::env::var_os("PATH").unwrap_or_default();
        let mut entries = vec![bin];
        entries.extend(std::env::split_paths(&rest).filter(|p| p != &own_cargo_bin));
        Ok(FreshEnv {
            cargo_home,
            path: std::env::join_paths(entries)?,
            npm_cache: scratch.join("npm-cache"),
        })
    }

    /// `cargo` in `dir`, in this environment.
    fn command(&self, dir: &Path) -> Command {
        let mut command = Command::new("cargo");
        command.current_dir(dir);
        // What the cargo running xtask exported, and quire's own settings, stay out.
        for (name, _) in std::env::vars_os() {
            let name_str = name.to_string_lossy();
            if (name_str.starts_with("CARGO") || name_str.starts_with("RUST") || name_str.starts_with("QUIRE_"))
                && !name_str.starts_with("RUSTUP_")
            {
                command.env_remove(&name);
            }
        }
        command
            .env("CARGO_HOME", &self.cargo_home)
            .env("PATH", &self.path)
            .env("npm_config_cache", &self.npm_cache);
        command
    }
}

/// The directory of rustup's proxies (`~/.cargo/bin` unless CARGO_HOME says otherwise).
fn home_cargo_bin() -> Result<PathBuf> {
    let home = match std::env::var_os("CARGO_HOME") {
        Some(home) => PathBuf::from(home),
        None => PathBuf::from(std::env::var_os("HOME").context("HOME is not set")?).join(".cargo"),
    };
    Ok(home.join("bin"))
}

/// Runs `cargo xtask run` on a free loopback port until the app and `/healthz` answer, then
/// stops it (SIGTERM to its process group). Returns how long it took to answer.
fn run_until_answering(clone: &Path, env: &FreshEnv, data: &Path) -> Result<Duration> {
    let addr = format!("127.0.0.1:{}", TcpListener::bind("127.0.0.1:0")?.local_addr()?.port());
    let started = Instant::now();
    let mut command = env.command(clone);
    command
        .args(["xtask", "run", "--addr", &addr, "--data"])
        .arg(data)
        .process_group(0);
    let mut child = command.spawn().context("cannot start `cargo xtask run`")?;
    let result = wait_answering(&mut child, &addr, started);
    stop_group(&mut child);
    result
}

fn wait_answering(child: &mut Child, addr: &str, started: Instant) -> Result<Duration> {
    loop {
        if let Some(exit) = child.try_wait()? {
            bail!("`cargo xtask run` ended before it answered ({exit})");
        }
        if started.elapsed() > RUN_DEADLINE {
            bail!("`cargo xtask run` did not answer within {RUN_DEADLINE:?}");
        }
        if http_status(addr, "/healthz") == Some(200) && http_status(addr, "/") == Some(200) {
            return Ok(started.elapsed());
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}

fn stop_group(child: &mut Child) {
    let group = format!("-{}", child.id());
    let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
    let _ = child.wait();
}

/// The status of `GET path` on `addr`, or `None` if nothing answers.
fn http_status(addr: &str, path: &str) -> Option<u16> {
    let mut stream = TcpStream::connect(addr).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").ok()?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).ok()?;
    // "HTTP/1.1 200"
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}
