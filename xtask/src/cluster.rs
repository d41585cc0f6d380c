//! `cargo xtask cluster`: a whole cluster on this machine, to see edits cross processes.
//!
//! PostgreSQL, Redis, three quire processes (release build) on them, and HAProxy in front on
//! one port with `deploy/haproxy.cfg`; prints the URL to open, runs until Ctrl-C, then stops
//! everything (the services' directories are temporary).

use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::quire::Quire;
use crate::services::{self, Haproxy, Postgres, Redis};
use crate::{cargo, root, status, web};

/// The quire processes.
const PROCESSES: usize = 3;

pub fn run(args: &[String]) -> Result<()> {
    let port: u16 = match args {
        [] => 8080,
        [flag, port] if flag == "--port" => port.parse().context("--port takes a number")?,
        _ => bail!("usage: cargo xtask cluster [--port PORT]"),
    };
    services::install()?;
    web::build()?;
    status(cargo().args(["build", "--release", "-p", "quire", "--bin", "quire"]))?;
    let postgres = Postgres::start()?;
    let database = postgres.create_database("quire")?;
    let redis = Redis::start()?;
    let owner_key = random_hex()?;
    let secret = random_hex()?;
    let public_url = format!("http://127.0.0.1:{port}");
    let mut processes = Vec::new();
    let mut addrs = Vec::new();
    for n in 1..=PROCESSES {
        let args = [
            "--trusted-proxy", "127.0.0.1", "--redis", &redis.url(), "--database", &database, "--owner-key", &owner_key,
            "--secret", &secret, "--public-url", &public_url, "--web-dir",
        ];
        let mut args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        args.push(root().join("web/dist").display().to_string());
        let quire = Quire::start(n, &args, None)?;
        addrs.push(quire.addr);
        processes.push(quire);
    }
    let haproxy = Haproxy::start(port, &addrs)?;
    println!();
    println!("quire cluster: {} processes on one Redis and one PostgreSQL, behind HAProxy", PROCESSES);
    for (n, addr) in addrs.iter().enumerate() {
        println!("  process {}: http://{addr}", n + 1);
    }
    println!("open {public_url}/?key={owner_key}");
    println!("(Ctrl-C stops everything)");
    // Ctrl-C reaches the whole process group: the quire processes stop by themselves, the
    // guards stop the rest when this returns.
    for mut quire in processes {
        quire.wait();
    }
    drop(haproxy);
    drop(redis);
    drop(postgres);
    Ok(())
}

pub fn random_hex() -> Result<String> {
    let out = crate::output(Command::new("od").args(["-An", "-N16", "-tx1", "/dev/urandom"]))?;
    Ok(out.split_whitespace().collect())
}
