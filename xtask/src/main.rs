//! quire's build and test driver: `cargo xtask run | test | wasm | bench`.
//!
//! Each command first installs what it needs and is missing (npm packages from the committed
//! lockfile), so both work on a fresh machine and in CI.
//!
//! - [`setup`]: checks and installs of tools and packages.
//! - [`test`]: every test suite, with one summary line at the end.
//! - [`wasm`]: the browser modules (client-wasm, client-markdown) built into their `pkg/`, with their sizes.
//! - [`web`]: the browser app built into `web/dist/`.
//! - [`fresh`]: the README's two commands as a fresh machine runs them.
//! - [`services`]: PostgreSQL, Redis and HAProxy in temporary directories, for the tests and
//!   the cluster.
//! - [`cluster`]: a whole cluster on this machine.
//! - [`quire`]: a quire process started for the cluster and its benchmark.
//! - [`cluster_bench`]: the load benchmark against a cluster, four ways.

mod cluster;
mod cluster_bench;
mod fresh;
mod quire;
mod services;
mod setup;
mod test;
mod wasm;
mod web;

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

const USAGE: &str = "usage: cargo xtask <command> [args]

commands:
  run [quire serve flags]   build the app and run quire (release), e.g. `cargo xtask run --addr 127.0.0.1:8080`
  test                      run every test: Rust unit and integration tests, Node interop tests, the wasm
                            module, the app in headless Chromium
  wasm                      build the browser modules into client-wasm/pkg/ and client-markdown/pkg/ and print their sizes
  web                       build the browser app (and the module) into web/dist/
  cluster [--port PORT]     run a cluster on this machine: Redis, PostgreSQL, three quire processes
                            and HAProxy in front on PORT (default 8080); prints the URL to open
  fresh [--uninstall] [--keep]
                            run the two commands above as on a fresh machine: a clean clone of
                            HEAD, a cold target directory, empty cargo home and npm cache;
                            --uninstall first removes the wasm target and Chromium (throwaway
                            machines only)
  bench load [flags]        the load generator against quire and the reference y-websocket server
                            (flags: `cargo xtask bench load --help`)
  bench hostile [flags]     1,000 editors on quire twice in one run, without and with every attack beside
                            them (floods, oversized presence, import bombs, unknown ids, slowloris);
                            loadgen flags after it
  bench fuzz [flags]        hostile frames from a real trace against an in-process server, beside honest
                            clients (default 10,000,000 frames; flags: `cargo xtask bench fuzz --help`)
  bench cluster [flags]     1,000 editors against 3 quire processes on Redis and PostgreSQL (clients of
                            each document spread over them; then behind HAProxy), 1 process on the
                            same stores and 1 on sled: each process's CPU and memory, Redis append,
                            PostgreSQL fold and stream lag per update, replicas compared; loadgen flags after it
  bench typing [N] [MS]     keystroke-to-screen latency between two browsers (N keys, MS apart)
  bench replay [TRACE]      replay an editing trace (default automerge-paper) one keystroke at a
                            time: the wasm module, native yrs, npm yjs";

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let command = args.next().unwrap_or_default();
    let rest: Vec<String> = args.collect();
    match command.as_str() {
        "run" => run(&rest),
        "test" => test::all(),
        "wasm" => wasm::build(),
        "web" => web::build(),
        "bench" => bench(&rest),
        "fresh" => fresh::run(&rest),
        "cluster" => cluster::run(&rest),
        "" | "help" | "-h" | "--help" => {
            println!("{USAGE}");
            Ok(())
        }
        other => bail!("unknown command {other:?}\n\n{USAGE}"),
    }
}

/// The workspace root (xtask lives one level below it).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// A binary of the release build, where cargo puts it (`CARGO_TARGET_DIR` or `target/`).
pub fn release(name: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root().join("target"), PathBuf::from);
    target.join("release").join(name)
}

/// A `cargo` command run from the workspace root, with the cargo that runs xtask.
pub fn cargo() -> Command {
    let mut command = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    command.current_dir(root());
    command
}

/// Runs `command`, failing with its description if it does not succeed.
pub fn status(command: &mut Command) -> Result<()> {
    let description = format!("{command:?}");
    let status = command.status().with_context(|| format!("cannot start {description}"))?;
    if !status.success() {
        bail!("{description} failed ({status})");
    }
    Ok(())
}

/// What `command` prints on stdout, if it succeeds (its stderr is discarded).
pub fn output(command: &mut Command) -> Result<String> {
    let out = command
        .stderr(std::process::Stdio::null())
        .output()
        .with_context(|| format!("cannot start {command:?}"))?;
    if !out.status.success() {
        bail!("{command:?} failed ({})", out.status);
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn run(args: &[String]) -> Result<()> {
    web::build()?;
    status(cargo().args(["build", "--release", "-p", "quire", "--bin", "quire"]))?;
    let bin = release("quire");
    let mut command = Command::new(bin);
    command.arg("serve").args(args);
    status(&mut command)
}

fn bench(args: &[String]) -> Result<()> {
    match args.split_first() {
        Some((kind, rest)) if kind == "load" => bench_load(rest),
        Some((kind, rest)) if kind == "typing" => bench_typing(rest),
        Some((kind, rest)) if kind == "replay" => bench_replay(rest),
        Some((kind, rest)) if kind == "hostile" => {
            let hostile = ["--servers", "quire", "--docs", "100", "--attack", "all", "--baseline"];
            let args: Vec<String> = hostile.iter().map(|s| s.to_string()).chain(rest.iter().cloned()).collect();
            bench_load(&args)
        }
        Some((kind, rest)) if kind == "cluster" => cluster_bench::run(rest),
        Some((kind, rest)) if kind == "fuzz" => {
            status(cargo().args(["run", "--release", "-p", "quire-tests", "--bin", "fuzz", "--"]).args(rest))
        }
        _ => bail!("which benchmark? `load`, `hostile`, `cluster`, `fuzz`, `typing` or `replay`\n\n{USAGE}"),
    }
}

/// The same trace through the three engines, one after the other (see tests/bench/README.md).
fn bench_replay(args: &[String]) -> Result<()> {
    wasm::build()?;
    setup::npm_packages(&root().join("tests"))?;
    let node = |script: &str| {
        let mut command = Command::new("node");
        command.arg(script).args(args).current_dir(root());
        command
    };
    status(&mut node("tests/bench/replay/wasm.mjs"))?;
    status(cargo().args(["bench", "-p", "quire-client", "--bench", "replay", "--"]).args(args))?;
    status(&mut node("tests/bench/replay/yjs.mjs"))
}

fn bench_typing(args: &[String]) -> Result<()> {
    web::build()?;
    setup::npm_packages(&root().join("tests"))?;
    setup::browser()?;
    status(cargo().args(["build", "--release", "-p", "quire", "--bin", "quire"]))?;
    status(
        Command::new("node")
            .arg("tests/bench/typing-latency.mjs")
            .args(args)
            .current_dir(root())
            .env("QUIRE_BIN", release("quire")),
    )
}

fn bench_load(args: &[String]) -> Result<()> {
    setup::npm_packages(&root().join("tests"))?;
    status(cargo().args([
        "build", "--release", "-p", "quire", "-p", "quire-tests", "--bin", "quire", "--bin", "loadgen",
    ]))?;
    let mut command = Command::new(release("loadgen"));
    command
        .current_dir(root())
        .env("QUIRE_BIN", release("quire"))
        .args(args);
    status(&mut command)
}
