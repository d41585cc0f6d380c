//! `cargo xtask test`: every suite, live output, and one summary line at the end.
//!
//! Output is streamed as it comes and also scanned for each runner's own totals
//! (`test result: ok. N passed; M failed` from cargo, `# pass N` / `# fail N` from node), so
//! the last line says `tests: N passed, M failed` across all suites.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

use crate::{cargo, root, services, setup};

#[derive(Default)]
struct Totals {
    passed: u64,
    failed: u64,
    failed_suites: Vec<&'static str>,
}

pub fn all() -> Result<()> {
    let tests_dir = root().join("tests");
    setup::npm_packages(&tests_dir)?;
    // The wasm suite loads client-wasm/pkg/ and the browser suite web/dist/; build both (the
    // app build builds the module) before any suite runs.
    crate::web::build()?;
    setup::browser()?;
    // The black-box tests run the real binary; build it once, up front.
    crate::status(cargo().args(["build", "-p", "quire", "--bin", "quire"]))?;
    let quire_bin = root().join("target/debug/quire");
    // The cluster tests: each starts its own Redis (it restarts it) and quire processes, and
    // takes a fresh database of this PostgreSQL (initdb is too slow to run per test).
    services::install()?;
    let postgres = services::Postgres::start()?;

    let mut totals = Totals::default();
    let mut rust = cargo();
    rust.args(["test", "--workspace", "--no-fail-fast"])
        .env("QUIRE_BIN", &quire_bin)
        .env("QUIRE_TEST_POSTGRES", postgres.url());
    suite("rust", &mut rust, &mut totals)?;

    let mut node = Command::new("node");
    node.args(["--test", "--test-reporter=tap", "node/"])
        .current_dir(&tests_dir)
        .env("QUIRE_BIN", &quire_bin)
        .env("QUIRE_TEST_POSTGRES", postgres.url());
    suite("node interop", &mut node, &mut totals)?;

    let mut wasm = Command::new("node");
    wasm.args(["--test", "--test-reporter=tap", "client-wasm/tests/node/"]).current_dir(root());
    suite("wasm", &mut wasm, &mut totals)?;

    // One file at a time: each starts its own server and browser, and two cores are few.
    let mut browser = Command::new("node");
    browser
        .args(["--test", "--test-reporter=tap", "--test-concurrency=1", "e2e/"])
        .current_dir(&tests_dir)
        .env("QUIRE_BIN", &quire_bin)
        .env("CHROMIUM_BIN", setup::CHROMIUM);
    suite("browser", &mut browser, &mut totals)?;

    println!("tests: {} passed, {} failed", totals.passed, totals.failed);
    if !totals.failed_suites.is_empty() || totals.failed > 0 {
        bail!("failing suites: {}", totals.failed_suites.join(", "));
    }
    if totals.passed == 0 {
        bail!("no test ran");
    }
    Ok(())
}

/// Runs one suite, echoing its output and adding its totals.
fn suite(name: &'static str, command: &mut Command, totals: &mut Totals) -> Result<()> {
    println!("xtask: running the {name} tests");
    let mut child = command
        .stdout(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot start the {name} tests"))?;
    let stdout = child.stdout.take().expect("piped");
    for line in BufReader::new(stdout).lines() {
        let line = line?;
        println!("{line}");
        count(&line, totals);
    }
    if !child.wait()?.success() {
        totals.failed_suites.push(name);
    }
    Ok(())
}

/// Adds the totals a runner prints about itself.
fn count(line: &str, totals: &mut Totals) {
    if let Some(rest) = line.strip_prefix("test result: ") {
        // "ok. 8 passed; 0 failed; 0 ignored; ..."
        for part in rest.split(';') {
            let mut words = part.split_whitespace().rev();
            let (Some(kind), Some(n)) = (words.next(), words.next()) else { continue };
            let n: u64 = n.parse().unwrap_or(0);
            match kind {
                "passed" => totals.passed += n,
                "failed" => totals.failed += n,
                _ => {}
            }
        }
    } else if let Some(n) = line.strip_prefix("# pass ") {
        totals.passed += n.trim().parse().unwrap_or(0);
    } else if let Some(n) = line.strip_prefix("# fail ") {
        totals.failed += n.trim().parse().unwrap_or(0);
    }
}
