//! The real `quire` binary as a child process: for tests that kill it with SIGKILL.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// The `quire` binary: `$QUIRE_BIN`, else `target/debug/quire` of this workspace, built on
/// demand (cargo's lock is free while tests run) so `cargo test` alone works too.
pub fn quire_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("QUIRE_BIN") {
        return PathBuf::from(bin);
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf();
    let status = std::process::Command::new(env!("CARGO"))
        .args(["build", "--quiet", "-p", "quire", "--bin", "quire"])
        .current_dir(&root)
        .status()
        .expect("run cargo build");
    assert!(status.success(), "cargo build -p quire failed");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    target.join("debug").join("quire")
}

/// `--auth none` for the tests that are not about access, unless `extra` sets up access itself
/// (an owner key, or `--auth`).
fn open_unless_keyed(extra: &[&str]) -> &'static [&'static str] {
    if extra.iter().any(|a| a.starts_with("--auth") || a.starts_with("--owner-key")) {
        &[]
    } else {
        &["--auth", "none"]
    }
}

/// A running `quire serve`. Killed (SIGKILL) when dropped.
pub struct QuireProcess {
    pub addr: SocketAddr,
    child: Child,
}

impl QuireProcess {
    /// Starts `quire serve` on a free port with `data_dir` and extra flags; waits for the
    /// "listening" line. Panics, with what the process printed, if it does not come.
    pub async fn start(bin: &Path, data_dir: &Path, extra: &[&str]) -> QuireProcess {
        let mut child = Command::new(bin)
            .arg("serve")
            .args(["--addr", "127.0.0.1:0", "--data"])
            .arg(data_dir)
            .args(open_unless_keyed(extra))
            .args(extra)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn quire");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("quire did not print its address within 30 s")
            .expect("read quire's stdout")
            .expect("quire exited before listening");
        let addr = line
            .strip_prefix("quire listening on http://")
            .unwrap_or_else(|| panic!("unexpected first line: {line}"))
            .parse()
            .expect("address");
        // Keep draining stdout so the child never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        QuireProcess { addr, child }
    }

    /// Runs `quire serve` where it is expected to refuse to start; returns its exit status and
    /// what it printed on stderr.
    pub async fn start_refused(bin: &Path, data_dir: &Path, extra: &[&str]) -> (std::process::ExitStatus, String) {
        let output = Command::new(bin)
            .arg("serve")
            .args(["--addr", "127.0.0.1:0", "--data"])
            .arg(data_dir)
            .args(open_unless_keyed(extra))
            .args(extra)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output();
        let output = tokio::time::timeout(Duration::from_secs(30), output)
            .await
            .expect("quire neither started nor exited within 30 s")
            .expect("run quire");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(!stdout.contains("listening"), "quire started: {stdout}");
        (output.status, String::from_utf8_lossy(&output.stderr).into_owned())
    }

    pub fn ws_url(&self, doc: &str) -> String {
        format!("ws://{}/ws/{doc}", self.addr)
    }

    /// SIGKILL: no shutdown code runs, as in a crash or an OOM kill.
    pub async fn kill9(mut self) {
        self.child.start_kill().expect("kill quire");
        self.child.wait().await.expect("reap quire");
    }

    /// SIGTERM, then waits for a clean exit.
    pub async fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().expect("running") as i32;
        std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .expect("send SIGTERM");
        tokio::time::timeout(Duration::from_secs(20), self.child.wait())
            .await
            .expect("quire did not exit within 20 s of SIGTERM")
            .expect("reap quire")
    }
}
