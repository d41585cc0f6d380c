//! loadgen: benchmarks y-websocket servers side by side under one load.
//!
//! Every client speaks the unchanged y-websocket protocol, so the stock npm server and quire are
//! driven by exactly the same bytes; but only writers hold a yrs document, and nobody applies
//! what they receive: deliveries are counted by scanning update bytes for the writers'
//! timestamps. That keeps loadgen to a small part of one core at 36,000 deliveries a second, so
//! it does not take the CPU the server under test needs. For each server in turn: start it
//! fresh, connect every client (bounded concurrency), wait until all are synced, let the
//! writers type, wait a grace period, read the server's CPU and peak memory from /proc, kill
//! it. Then one table.
//!
//! # Layout
//! - `args`: the command line and the `Load` it describes.
//! - `server`: starting, addressing and killing a server under test.
//! - `external`: `--connect-to`, servers someone else started: clients spread over them, each
//!   process measured, quire's cluster metrics, every replica compared at the end.
//! - `histogram`: a Prometheus histogram from `/metrics`, between two readings.
//! - `http`: one HTTP/1.1 request on a fresh connection (attacks, metrics, replicas).
//! - `usage`: CPU seconds and peak RSS from /proc.
//! - `run`: one run against one server, phase by phase.
//! - `client`: one simulated client: connect, handshake, type or watch, count deliveries.
//! - `halfopen`: `--half-open`, sockets that never finish their request head.
//! - `attack`: `--attack`, attackers beside the clients (floods, presence, import bombs, unknown
//!   ids), each outcome counted by how the server refused it.
//! - `socket`: the client side of WebSocket, parsed in place (no per-frame allocation).
//! - `wire`: the y-sync framing, read by hand; the handshake frames, encoded once.
//! - `stamp`: the timestamp a keystroke inserts, and the scanner that finds it in update bytes.
//! - `writer`: a writer's own yrs document, which makes its updates.
//! - `stats`: the counters and the latency histogram the clients share.
//! - `report`: the table and the JSON file.

mod args;
mod attack;
mod client;
mod external;
mod halfopen;
mod histogram;
mod http;
mod report;
mod run;
mod server;
mod socket;
mod stamp;
mod stats;
mod usage;
mod wire;
mod writer;

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Parser;

use crate::args::{Args, Load};
use crate::external::External;
use crate::report::Outcome;
use crate::server::ServerProcess;

/// File descriptors loadgen needs besides one per client: std streams, the runtime's epoll and
/// wakers, server pipes, /proc reads. 64 is several times what that adds up to.
const SPARE_FDS: u64 = 64;
/// The attackers' sockets: a few each, one at a time.
const ATTACK_FDS: u64 = 16;

// One thread: loadgen never takes more than one core from the server it measures, and the
// shared counters and histogram are never contended. Its work per frame is a few varints and a
// byte scan, so one thread carries the target load with room to spare (the report shows how
// late writers were against their schedule, which is where a starved loadgen would show).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let args = Args::parse();
    let load = Load::from_args(&args)?;

    let nofile = rlimit::increase_nofile_limit(u64::MAX).context("raising RLIMIT_NOFILE")?;
    let needed = (load.connections() + load.half_open) as u64 + SPARE_FDS + ATTACK_FDS;
    if nofile < needed {
        bail!(
            "{} connections and {} half-open sockets need {needed} file descriptors; the limit is {nofile}",
            load.connections(),
            load.half_open
        );
    }

    let work_dir = match &args.work_dir {
        Some(dir) => dir.clone(),
        None => std::env::temp_dir().join(format!("loadgen-{}", std::process::id())),
    };
    std::fs::create_dir_all(&work_dir).with_context(|| format!("creating {}", work_dir.display()))?;

    eprintln!(
        "loadgen: {} connections over {} documents ({} writers at {:.2}/s + {} watchers each), \
         {:?} typing + {:?} grace, seed {}",
        load.connections(),
        load.docs,
        load.writers,
        1.0 / load.period.as_secs_f64(),
        load.watchers,
        load.duration,
        load.grace,
        load.seed
    );
    if load.half_open > 0 {
        eprintln!("loadgen: and {} half-open sockets (request heads never finished)", load.half_open);
    }
    if !load.attacks.is_empty() {
        eprintln!(
            "loadgen: attacks {:?}{}",
            load.attacks,
            if load.baseline { ", after a run without them" } else { "" }
        );
    }
    if !args.quire_args.is_empty() {
        eprintln!("loadgen: quire serve gets {:?}", args.quire_args);
    }
    eprintln!("loadgen: server logs in {}", work_dir.display());

    // Ctrl-C or SIGTERM drops the benchmark future, and with it the server (kill_on_drop) and
    // every client task: nothing outlives loadgen.
    let outcomes = {
        let bench = bench(&args, &load, &work_dir);
        tokio::pin!(bench);
        tokio::select! {
            outcomes = &mut bench => Ok(outcomes),
            signal = shutdown_signal() => Err(signal),
        }
    };
    let outcomes = match outcomes {
        Ok(outcomes) => outcomes,
        Err(signal) => {
            eprintln!("loadgen: interrupted by {signal}; the server under test was killed");
            // 128 + SIGINT, the shell's convention for "stopped by a signal".
            std::process::exit(130);
        }
    };

    print!("seed {}: {} connections, {} docs", load.seed, load.connections(), load.docs);
    if load.half_open > 0 && load.attacks.is_empty() {
        print!(", {} half-open sockets", load.half_open);
    }
    if !load.attacks.is_empty() {
        print!(", attacks {:?}", load.attacks);
    }
    if args.quire_args.is_empty() {
        println!();
    } else {
        println!("; quire serve {}", args.quire_args.join(" "));
    }
    report::print_table(&outcomes);
    if let Some(path) = &args.json {
        report::write_json(path, &load, &args.quire_args, &outcomes)?;
        eprintln!("loadgen: figures written to {}", path.display());
    }
    Ok(())
}

async fn bench(args: &Args, load: &Load, work_dir: &std::path::Path) -> Vec<Outcome> {
    if !args.connect_to.is_empty() {
        // Someone else started them, and stops them: with `--attack --baseline` both runs go to
        // the same servers, one after the other.
        // The table's names are 'static (the started servers' are constants): one per run.
        let label: &'static str = Box::leak(args.label.clone().into_boxed_str());
        let mut servers = External::new(args.connect_to.clone(), args.processes.clone(), &args.owner_key, load.docs, load.seed);
        let mut outcomes = Vec::new();
        for attacked in load.runs() {
            let figures = run::run(&mut servers, label, load, attacked).await;
            outcomes.push(Outcome::Measured(Box::new(figures)));
        }
        return outcomes;
    }
    let mut outcomes = Vec::new();
    for (kind, attacked) in args.servers.iter().flat_map(|kind| load.runs().into_iter().map(move |a| (kind, a))) {
        let name = kind.name();
        // The attacks use quire's API and limits: the reference server runs without them.
        if attacked && *kind != crate::args::ServerKind::Quire {
            continue;
        }
        eprintln!("loadgen: starting {name}{}", if attacked { " (under attack)" } else { "" });
        let mut server = match ServerProcess::start(*kind, args, work_dir).await {
            Ok(server) => server,
            Err(e) => {
                eprintln!("loadgen: {name} did not start: {e:#}");
                outcomes.push(Outcome::Failed { server: name, error: format!("{e:#}") });
                continue;
            }
        };
        let figures = run::run(&mut server, name, load, attacked).await;
        let log: PathBuf = server.log().to_owned();
        if let Err(e) = server.stop().await {
            eprintln!("loadgen: stopping {name}: {e:#}");
        }
        eprintln!("loadgen: {name} done; its log is {}", log.display());
        outcomes.push(Outcome::Measured(Box::new(figures)));
    }
    outcomes
}

async fn shutdown_signal() -> &'static str {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(term) => term,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return "Ctrl-C";
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => "Ctrl-C",
        _ = term.recv() => "SIGTERM",
    }
}
