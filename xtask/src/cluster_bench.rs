//! `cargo xtask bench cluster [loadgen flags]`: the load benchmark against a cluster on this
//! machine, four ways, one after the other with the same load and seed:
//!
//! - three quire processes on one Redis and one PostgreSQL, each document's clients spread
//!   over all three (every update crosses processes: the worst case);
//! - the same three behind HAProxy with `deploy/haproxy.cfg` (a document's clients on one
//!   process: little crosses);
//! - one process on the same Redis and PostgreSQL;
//! - one process on sled, for reference.
//!
//! Each run gets fresh processes, a fresh Redis and a fresh database (one PostgreSQL for all);
//! loadgen (`--connect-to`, `--process`) measures every process, reads the cluster's metrics
//! and compares every document on every process at the end (see tests/bench/README.md).

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result};

use crate::cluster::random_hex;
use crate::quire::Quire;
use crate::services::{self, free_port, Haproxy, Postgres, Redis};
use crate::{cargo, release, status};

/// 1,000 editors (100 documents, 2 writers and 8 watchers each) at the load benchmark's rate:
/// what three processes, Redis, PostgreSQL, HAProxy and loadgen can carry on 2 shared cores.
const DEFAULT_DOCS: &str = "100";
/// A document's log is folded after this many updates (quire's default is 1,000): its two
/// writers type 120 in the 30 s of typing, so at the default nothing would be folded while
/// the benchmark measures, and the cost of a fold is one of the things it is for.
const COMPACT_AFTER_UPDATES: &str = "50";

struct Scenario {
    label: &'static str,
    processes: usize,
    cluster: bool,
    haproxy: bool,
}

const SCENARIOS: [Scenario; 4] = [
    Scenario { label: "3 processes, spread", processes: 3, cluster: true, haproxy: false },
    Scenario { label: "3 processes, HAProxy", processes: 3, cluster: true, haproxy: true },
    Scenario { label: "1 process, cluster store", processes: 1, cluster: true, haproxy: false },
    Scenario { label: "1 process, sled", processes: 1, cluster: false, haproxy: false },
];

pub fn run(args: &[String]) -> Result<()> {
    services::install()?;
    status(cargo().args([
        "build", "--release", "-p", "quire", "-p", "quire-tests", "--bin", "quire", "--bin", "loadgen",
    ]))?;
    let given = |flag: &str| args.iter().any(|a| a == flag || a.starts_with(&format!("{flag}=")));
    let mut defaults: Vec<String> = Vec::new();
    if !given("--docs") {
        defaults.extend(["--docs".into(), DEFAULT_DOCS.into()]);
    }
    // One seed for the four runs: the same phases and edits everywhere.
    if !given("--seed") {
        defaults.extend(["--seed".into(), (u64::from_str_radix(&random_hex()?[..12], 16)?).to_string()]);
    }
    let logs = std::env::temp_dir().join(format!("quire-cluster-bench-{}", std::process::id()));
    std::fs::create_dir_all(&logs)?;
    println!("xtask: quire logs in {}", logs.display());
    let postgres = Postgres::start()?;
    let (owner_key, secret) = (random_hex()?, random_hex()?);
    let mut failed = Vec::new();
    for (n, scenario) in SCENARIOS.iter().enumerate() {
        println!("\nxtask: {}", scenario.label);
        let outcome = run_one(n, scenario, &postgres, &owner_key, &secret, &logs, &defaults, args);
        if let Err(error) = outcome {
            eprintln!("xtask: {} failed: {error:#}", scenario.label);
            failed.push(scenario.label);
        }
    }
    anyhow::ensure!(failed.is_empty(), "runs that failed: {}", failed.join(", "));
    Ok(())
}

#[allow(clippy::too_many_arguments)] // one run's settings, each used once
fn run_one(
    n: usize,
    scenario: &Scenario,
    postgres: &Postgres,
    owner_key: &str,
    secret: &str,
    logs: &Path,
    defaults: &[String],
    args: &[String],
) -> Result<()> {
    let redis = if scenario.cluster { Some(Redis::start()?) } else { None };
    let mut serve: Vec<String> = vec!["--owner-key".into(), owner_key.into(), "--secret".into(), secret.into()];
    // loadgen's clients stand for a thousand people but all come from 127.0.0.1.
    serve.extend(["--max-per-address".into(), "0".into(), "--trusted-proxy".into(), "127.0.0.1".into()]);
    serve.extend(["--compact-after-updates".into(), COMPACT_AFTER_UPDATES.into()]);
    if let Some(redis) = &redis {
        let database = postgres.create_database(&format!("bench{n}"))?;
        serve.extend(["--redis".into(), redis.url(), "--database".into(), database]);
    }
    let mut processes = Vec::new();
    for p in 1..=scenario.processes {
        let log = logs.join(format!("run{}-quire{p}.log", n + 1));
        processes.push(Quire::start(p, &serve, Some(&log))?);
    }
    let addrs: Vec<SocketAddr> = processes.iter().map(|q| q.addr).collect();
    let haproxy = if scenario.haproxy { Some((free_port()?, addrs.as_slice())) } else { None };
    let haproxy = haproxy.map(|(port, addrs)| Haproxy::start(port, addrs).map(|h| (h, port))).transpose()?;
    let connect_to = match &haproxy {
        Some((_, port)) => format!("127.0.0.1:{port}"),
        None => addrs.iter().map(SocketAddr::to_string).collect::<Vec<_>>().join(","),
    };
    let mut measured: Vec<String> =
        processes.iter().enumerate().map(|(i, q)| format!("quire{}={}@{}", i + 1, q.pid(), q.addr)).collect();
    if let Some(redis) = &redis {
        measured.push(format!("redis={}", redis.pid()));
        measured.push(format!("postgres={}", postgres.pid()?));
    }
    if let Some((haproxy, _)) = &haproxy {
        measured.push(format!("haproxy={}", haproxy.pid()));
    }
    status(
        Command::new(release("loadgen"))
            .args(["--connect-to", &connect_to, "--label", scenario.label, "--owner-key", owner_key])
            .args(["--process", &measured.join(",")])
            .args(defaults)
            .args(args),
    )
    .with_context(|| format!("loadgen against {}", scenario.label))
}
