//! What a cluster runs on, for the tests: a Redis of the test's own (Debian's `redis-server`,
//! `appendfsync always`) and a fresh database of the PostgreSQL that `cargo xtask test` starts
//! (`QUIRE_TEST_POSTGRES`, a superuser URL).

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

use crate::TempDir;

/// A redis-server on a free port, killed when dropped.
pub struct Redis {
    child: Child,
    port: u16,
    _dir: TempDir,
}

impl Redis {
    pub async fn start() -> Redis {
        let dir = TempDir::new("redis");
        std::fs::create_dir_all(dir.path()).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = spawn(port, dir.path());
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
                return Redis { child, port, _dir: dir };
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("redis-server did not listen on 127.0.0.1:{port} within 10 s");
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

fn spawn(port: u16, dir: &Path) -> Child {
    Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "yes"])
        .args(["--appendfsync", "always", "--dir"])
        .arg(dir)
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start redis-server (installed by `cargo xtask test`)")
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

/// A fresh database; its URL.
pub async fn database() -> String {
    let admin = std::env::var("QUIRE_TEST_POSTGRES").expect(
        "the cluster tests need PostgreSQL: run them through `cargo xtask test` (it starts one), \
         or set QUIRE_TEST_POSTGRES to a superuser URL such as postgres://postgres@127.0.0.1:5432/postgres",
    );
    let (client, connection) = tokio_postgres::connect(&admin, tokio_postgres::NoTls).await.expect("connect to QUIRE_TEST_POSTGRES");
    let connection = tokio::spawn(connection);
    let mut random = [0u8; 6];
    for byte in &mut random {
        *byte = fastrand::u8(..);
    }
    let name = format!("quire_{}", random.iter().map(|b| format!("{b:02x}")).collect::<String>());
    client.batch_execute(&format!("CREATE DATABASE {name}")).await.expect("create a database");
    drop(client);
    let _ = connection.await;
    let (base, _) = admin.rsplit_once('/').expect("a URL ending in /database");
    format!("{base}/{name}")
}
