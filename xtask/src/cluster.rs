//! `cargo xtask cluster`: a whole cluster on this machine, to see edits cross processes.
//!
//! PostgreSQL, Redis, three quire processes (release build) on them, and HAProxy in front on
//! one port with `deploy/haproxy.cfg`; prints the URL to open, runs until Ctrl-C, then stops
//! everything (the services' directories are temporary).

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};

use anyhow::{bail, Context, Result};

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
        let (child, addr) = start_quire(n, &redis.url(), &database, &owner_key, &secret, &public_url)?;
        processes.push(Guard(child));
        addrs.push(addr);
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
    for mut guard in processes {
        let _ = guard.0.wait();
    }
    drop(haproxy);
    drop(redis);
    drop(postgres);
    Ok(())
}

/// Starts quire process `n`; its address, read from the line it prints.
fn start_quire(n: usize, redis: &str, database: &str, owner_key: &str, secret: &str, public_url: &str) -> Result<(Child, SocketAddr)> {
    let data = std::env::temp_dir().join(format!("quire-cluster-{n}-{}", std::process::id()));
    let mut child = Command::new(root().join("target/release/quire"))
        .args(["serve", "--addr", "127.0.0.1:0", "--trusted-proxy", "127.0.0.1"])
        .arg("--data")
        .arg(&data)
        .args(["--redis", redis, "--database", database, "--owner-key", owner_key, "--secret", secret])
        .args(["--public-url", public_url])
        .arg("--web-dir")
        .arg(root().join("web/dist"))
        .stdout(Stdio::piped())
        .spawn()
        .context("cannot start quire")?;
    let stdout = child.stdout.take().expect("piped");
    let mut lines = BufReader::new(stdout).lines();
    let addr = loop {
        let Some(line) = lines.next() else { bail!("quire process {n} exited before listening") };
        if let Some(url) = line?.strip_prefix("quire listening on http://") {
            break url.parse().context("quire printed an unreadable address")?;
        }
    };
    // Keep draining its stdout so it never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Ok((child, addr))
}

struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn random_hex() -> Result<String> {
    let out = crate::output(Command::new("od").args(["-An", "-N16", "-tx1", "/dev/urandom"]))?;
    Ok(out.split_whitespace().collect())
}
