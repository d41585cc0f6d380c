//! A server under test: started fresh by loadgen, measured through /proc, killed at the end.
//!
//! A server must never outlive loadgen. Three layers see to that: `kill_on_drop` covers every
//! return and unwind, main.rs turns Ctrl-C/SIGTERM into an ordinary return, and where
//! util-linux's `setpriv` exists the child is started with `--pdeathsig KILL`, which covers
//! even a SIGKILL of loadgen (no `unsafe` `pre_exec` needed for that).

use std::fs::File;
use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::args::{Args, ServerKind};
use crate::run::Target;
use crate::usage::Usage;

/// How long a server may take to start listening. A release quire opens sled in well under a
/// second and node starts in about one; ten is generous for a loaded 2-core machine.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(10);
const SETPRIV: &str = "/usr/bin/setpriv";
/// What quire prints on stdout once its listener is bound.
const QUIRE_READY: &str = "quire listening on http://";

pub struct ServerProcess {
    kind: ServerKind,
    child: Child,
    pid: u32,
    port: u16,
    log: PathBuf,
    data_dir: Option<PathBuf>,
    /// The owner key quire is started with, which the clients bring.
    owner_key: String,
}

impl ServerProcess {
    pub async fn start(kind: ServerKind, args: &Args, work_dir: &Path) -> Result<Self> {
        let log = work_dir.join(format!("{}.log", kind.name()));
        let log_file = File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let (mut command, data_dir) = match kind {
            ServerKind::Quire => {
                let data = work_dir.join("quire-data");
                // A fresh store every run: a leftover one would change what sync step 2 carries.
                if data.exists() {
                    std::fs::remove_dir_all(&data).with_context(|| format!("clearing {}", data.display()))?;
                }
                let mut c = guarded(&args.quire_bin);
                c.arg("serve").arg("--addr").arg("127.0.0.1:0").arg("--data").arg(&data);
                // loadgen's thousands of clients stand for thousands of people, but they all
                // come from 127.0.0.1: no cap per address (an environment variable, so that a
                // `--quire-arg=--max-per-address=N` still sets one).
                c.env("QUIRE_MAX_PER_ADDRESS", "0");
                // Access control stays on, as deployed: every client brings the owner key, so
                // the figures include checking it.
                c.env("QUIRE_OWNER_KEY", &args.owner_key);
                c.args(&args.quire_args);
                (c, Some(data))
            }
            ServerKind::YWebsocket => {
                let mut c = guarded(&args.node);
                c.arg(&args.y_websocket_server);
                c.env("HOST", "127.0.0.1").env("PORT", free_port()?.to_string());
                (c, None)
            }
        };
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log_file))
            .kill_on_drop(true);
        let mut child = command
            .spawn()
            .with_context(|| format!("starting {} ({:?})", kind.name(), command.as_std()))?;
        let pid = child.id().context("server exited at once")?;
        let stdout = child.stdout.take().context("server stdout")?;
        let mut lines = BufReader::new(stdout).lines();

        let port = match kind {
            ServerKind::Quire => {
                let first = tokio::time::timeout(STARTUP_TIMEOUT, async {
                    while let Some(line) = lines.next_line().await? {
                        // Found anywhere in the line, in case it arrives as a log line.
                        if let Some(at) = line.find(QUIRE_READY) {
                            let rest = &line[at + QUIRE_READY.len()..];
                            return Ok(Some(rest.split_whitespace().next().unwrap_or("").to_owned()));
                        }
                    }
                    Ok::<_, std::io::Error>(None)
                })
                .await;
                match first {
                    Ok(Ok(Some(addr))) => addr
                        .rsplit(':')
                        .next()
                        .and_then(|p| p.trim_end_matches('/').parse::<u16>().ok())
                        .with_context(|| format!("no port in quire's ready line: {addr}"))?,
                    Ok(Ok(None)) => bail!("quire exited before listening: {}", tail(&log)),
                    Ok(Err(e)) => bail!("reading quire's stdout: {e}"),
                    Err(_) => bail!("quire did not print {QUIRE_READY:?} within {STARTUP_TIMEOUT:?}"),
                }
            }
            ServerKind::YWebsocket => {
                let port = command
                    .as_std()
                    .get_envs()
                    .find(|(k, _)| *k == "PORT")
                    .and_then(|(_, v)| v?.to_str()?.parse().ok())
                    .context("PORT")?;
                wait_for_port(&mut child, port, &log).await?;
                port
            }
        };
        // Keep draining stdout into the log: a full pipe would block the server mid-run. A std
        // write of a rare stdout line does not block the runtime long enough to matter.
        let mut sink = std::fs::OpenOptions::new().append(true).open(&log)?;
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                let _ = writeln!(sink, "{line}");
            }
        });
        Ok(ServerProcess { kind, child, pid, port, log, data_dir, owner_key: args.owner_key.clone() })
    }

    pub fn log(&self) -> &Path {
        &self.log
    }

    /// Kills the server, waits for it, and removes its data directory.
    pub async fn stop(mut self) -> Result<()> {
        // SIGKILL, not a graceful shutdown: the figures are taken already, and a server that
        // hangs in shutdown must not hang the benchmark.
        let _ = self.child.start_kill();
        let _ = tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await;
        if let Some(data) = &self.data_dir {
            std::fs::remove_dir_all(data).with_context(|| format!("removing {}", data.display()))?;
        }
        Ok(())
    }
}

impl Target for ServerProcess {
    /// Every client connects to the one server, on 127.0.0.1:`port`.
    fn addr(&self, _doc: usize, _slot: usize) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }

    fn path(&self, doc: &str) -> String {
        match self.kind {
            ServerKind::Quire => format!("/ws/{doc}?token={}", self.owner_key),
            ServerKind::YWebsocket => format!("/{doc}"),
        }
    }

    /// quire's credentials that loadgen holds.
    fn authorization(&self) -> String {
        format!("Bearer {}", self.owner_key)
    }

    /// None once the process is gone.
    fn usage(&self) -> Option<Usage> {
        Usage::of(self.pid)
    }

    fn exited(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(Some(status)) => Some(status.to_string()),
            Ok(None) => None,
            Err(e) => Some(format!("unknown ({e})")),
        }
    }
}

/// A command for `program` that dies with loadgen, through `setpriv --pdeathsig` where it exists.
/// The death signal is tied to the spawning thread: main.rs starts servers from its top-level
/// future, which runs on the main thread for as long as loadgen does.
fn guarded(program: &Path) -> Command {
    if Path::new(SETPRIV).exists() {
        let mut c = Command::new(SETPRIV);
        c.arg("--pdeathsig").arg("KILL").arg("--").arg(program);
        c
    } else {
        Command::new(program)
    }
}

/// The last lines of a server log, for an error message.
fn tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let last = lines[lines.len().saturating_sub(5)..].join(" / ");
    format!("{last} (log: {})", log.display())
}

/// A port that was free a moment ago, for servers that cannot report the one they bound.
fn free_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(listener.local_addr()?.port())
}

async fn wait_for_port(child: &mut Child, port: u16, log: &Path) -> Result<()> {
    let deadline = tokio::time::Instant::now() + STARTUP_TIMEOUT;
    loop {
        if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            return Ok(());
        }
        if let Some(status) = child.try_wait()? {
            bail!("server exited before listening ({status}): {}", tail(log));
        }
        if tokio::time::Instant::now() > deadline {
            bail!("server did not listen on port {port} within {STARTUP_TIMEOUT:?}; see {}", log.display());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
