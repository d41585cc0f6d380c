//! The services a cluster runs on, started on this machine for the tests and for
//! `cargo xtask cluster`: PostgreSQL, Redis and HAProxy (Debian's packages), each in a
//! temporary directory, on a free port of 127.0.0.1, stopped when dropped.
//!
//! PostgreSQL refuses to run as root: when we are root, its directory belongs to the
//! `postgres` user the Debian package creates, and it runs as that user.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::setup;

const PG_BIN: &str = "/usr/lib/postgresql/15/bin";
pub const REDIS_SERVER: &str = "/usr/bin/redis-server";
pub const HAPROXY: &str = "/usr/sbin/haproxy";

/// Installs Redis, PostgreSQL and HAProxy where they are missing.
pub fn install() -> Result<()> {
    let mut packages = Vec::new();
    if !Path::new(REDIS_SERVER).exists() {
        packages.push("redis-server");
    }
    if !Path::new(PG_BIN).join("postgres").exists() {
        packages.push("postgresql");
    }
    if !Path::new(HAPROXY).exists() {
        packages.push("haproxy");
    }
    setup::apt_install(&packages)?;
    // The packages start system-wide services; ours run in temporary directories instead.
    Ok(())
}

/// A free TCP port on 127.0.0.1 (free a moment ago: the service binds it right after).
pub fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A fresh, empty directory under the system's temporary directory.
fn temp_dir(tag: &str) -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("quire-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    Ok(dir)
}

fn is_root() -> bool {
    crate::output(Command::new("id").arg("-u")).is_ok_and(|uid| uid.trim() == "0")
}

/// A PostgreSQL cluster of its own: `url()` reaches it as its superuser, without a password.
pub struct Postgres {
    dir: PathBuf,
    port: u16,
    as_postgres: bool,
}

impl Postgres {
    pub fn start() -> Result<Postgres> {
        let dir = temp_dir("postgres")?;
        let as_postgres = is_root();
        if as_postgres {
            crate::status(Command::new("chown").args(["-R", "postgres:postgres"]).arg(&dir))?;
        }
        let port = free_port()?;
        let pg = Postgres { dir, port, as_postgres };
        let data = pg.dir.join("data");
        pg.status(pg.command("initdb").args(["-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-instructions", "-D"]).arg(&data))
            .context("initdb failed")?;
        let options = format!("-c listen_addresses=127.0.0.1 -p {port} -k {}", pg.dir.display());
        pg.status(
            pg.command("pg_ctl")
                .arg("-D")
                .arg(&data)
                .arg("-l")
                .arg(pg.dir.join("log"))
                .args(["-o", &options, "-w", "start"]),
        )
        .with_context(|| format!("PostgreSQL did not start; see {}", pg.dir.join("log").display()))?;
        println!("xtask: PostgreSQL on 127.0.0.1:{port} ({})", pg.dir.display());
        Ok(pg)
    }

    /// The superuser's URL to the `postgres` database.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// The postmaster's process id (its backends, one per connection, run below it).
    pub fn pid(&self) -> Result<u32> {
        let file = self.dir.join("data/postmaster.pid");
        let text = std::fs::read_to_string(&file).with_context(|| format!("cannot read {}", file.display()))?;
        text.lines().next().and_then(|l| l.trim().parse().ok()).context("postmaster.pid holds no process id")
    }

    /// Creates database `name` and returns its URL.
    pub fn create_database(&self, name: &str) -> Result<String> {
        crate::status(Command::new("psql").args([&self.url(), "-q", "-c", &format!("CREATE DATABASE {name}")]))?;
        Ok(format!("postgres://postgres@127.0.0.1:{}/{name}", self.port))
    }

    fn command(&self, program: &str) -> Command {
        let path = Path::new(PG_BIN).join(program);
        if self.as_postgres {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(path);
            command
        } else {
            Command::new(path)
        }
    }

    fn status(&self, command: &mut Command) -> Result<()> {
        crate::status(command.stdout(Stdio::null()))
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = self.command("pg_ctl").arg("-D").arg(self.dir.join("data")).args(["-m", "fast", "-w", "stop"]).stdout(Stdio::null()).status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A Redis server that writes every change to its append-only file before answering
/// (`appendfsync always`), as a cluster that must not lose an edit runs it.
pub struct Redis {
    child: Child,
    dir: PathBuf,
    port: u16,
}

impl Redis {
    pub fn start() -> Result<Redis> {
        let dir = temp_dir("redis")?;
        let port = free_port()?;
        let child = Command::new(REDIS_SERVER)
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "yes"])
            .args(["--appendfsync", "always", "--dir"])
            .arg(&dir)
            .stdout(Stdio::null())
            .spawn()
            .context("cannot start redis-server")?;
        wait_for_port(port, "redis-server")?;
        println!("xtask: Redis on 127.0.0.1:{port}");
        Ok(Redis { child, dir, port })
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// HAProxy in front of `backends` on one port: a document's connections go to one process
/// (the path is hashed: most documents' traffic stays on one process), health-checked on
/// `/healthz`, and elsewhere while theirs is down.
pub struct Haproxy {
    child: Child,
    dir: PathBuf,
}

impl Haproxy {
    /// On `port` of 127.0.0.1.
    pub fn start(port: u16, backends: &[SocketAddr]) -> Result<Haproxy> {
        let dir = temp_dir("haproxy")?;
        let template = std::fs::read_to_string(crate::root().join("deploy/haproxy.cfg"))
            .context("cannot read deploy/haproxy.cfg")?;
        // The deployed configuration, with this machine's ports in place of the example's.
        let mut config = String::new();
        for line in template.lines() {
            let trimmed = line.trim_start();
            if trimmed.starts_with("bind ") {
                config.push_str(&format!("    bind 127.0.0.1:{port}\n"));
            } else if trimmed.starts_with("server ") {
                if !config.contains("    server quire") {
                    for (i, addr) in backends.iter().enumerate() {
                        config.push_str(&format!("    server quire{} {addr} check inter 1s fall 2 rise 1\n", i + 1));
                    }
                }
            } else {
                config.push_str(line);
                config.push('\n');
            }
        }
        let path = dir.join("haproxy.cfg");
        std::fs::write(&path, config)?;
        let child = Command::new(HAPROXY)
            .args(["-db", "-f"])
            .arg(&path)
            .stdout(Stdio::null())
            .spawn()
            .context("cannot start haproxy")?;
        wait_for_port(port, "haproxy")?;
        Ok(Haproxy { child, dir })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn wait_for_port(port: u16, what: &str) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    bail!("{what} did not listen on 127.0.0.1:{port} within 20 s")
}
