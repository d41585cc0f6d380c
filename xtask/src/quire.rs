//! A quire process that xtask starts (the release build), on a free port of 127.0.0.1, with a
//! data directory of its own; killed, and its directory removed, when dropped.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use anyhow::{bail, Context, Result};

use crate::release;

/// What quire prints on stdout once it listens.
const READY: &str = "quire listening on http://";

pub struct Quire {
    child: Child,
    data: PathBuf,
    pub addr: SocketAddr,
}

impl Quire {
    /// Process `n` (it names the data directory): `quire serve --addr 127.0.0.1:0 --data DIR`,
    /// then `args`. Its log goes to `log`, or to our stderr.
    pub fn start(n: usize, args: &[String], log: Option<&std::path::Path>) -> Result<Quire> {
        let data = std::env::temp_dir().join(format!("quire-process-{n}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&data);
        let stderr = match log {
            Some(path) => Stdio::from(File::create(path).with_context(|| format!("cannot create {}", path.display()))?),
            None => Stdio::inherit(),
        };
        let mut child = Command::new(release("quire"))
            .args(["serve", "--addr", "127.0.0.1:0", "--data"])
            .arg(&data)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .context("cannot start quire")?;
        let stdout = child.stdout.take().expect("piped");
        let mut lines = BufReader::new(stdout).lines();
        let addr = loop {
            let Some(line) = lines.next() else { bail!("quire process {n} exited before listening") };
            if let Some(url) = line?.strip_prefix(READY) {
                break url.trim_end_matches('/').parse().context("quire printed an unreadable address")?;
            }
        };
        // Keep draining its stdout so it never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Ok(Quire { child, data, addr })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits until it exits (Ctrl-C reaches it with the rest of the process group).
    pub fn wait(&mut self) {
        let _ = self.child.wait();
    }
}

impl Drop for Quire {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.data);
    }
}
