//! The documents' states as the server holds them, read through the API, and kept on disk when
//! replicas disagree with them.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use crate::http::Api;

/// The stored state of `doc` (a v1 update), or None if there is no such document; an error if
/// the server cannot be reached.
pub(super) async fn state(addr: SocketAddr, doc: &str) -> Result<Option<Vec<u8>>, String> {
    drop(tokio::net::TcpStream::connect(addr).await.map_err(|e| format!("connect to {addr}: {e}"))?);
    let reply = Api(addr).get(&format!("/api/docs/{doc}/content?format=yjs")).await;
    Ok((reply.status == 200).then_some(reply.body))
}

pub(super) async fn states(addr: SocketAddr, docs: &[String]) -> Result<BTreeMap<String, Option<Vec<u8>>>, String> {
    let mut states = BTreeMap::new();
    for doc in docs {
        states.insert(doc.clone(), state(addr, doc).await?);
    }
    Ok(states)
}

/// Writes the server's state of `doc` and the replicas' (named v1 updates) where a failure to
/// converge can be taken apart after the run; says where.
pub(super) fn keep_states(doc: &str, server: &[u8], replicas: impl IntoIterator<Item = (String, Vec<u8>)>) -> String {
    let dir = std::env::temp_dir().join(format!("quire-fuzz-{}-{doc}", std::process::id()));
    let write = || -> std::io::Result<()> {
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join("server.v1"), server)?;
        for (name, state) in replicas {
            std::fs::write(dir.join(format!("{name}.v1")), state)?;
        }
        Ok(())
    };
    match write() {
        Ok(()) => format!("the states are in {}", dir.display()),
        Err(error) => format!("the states could not be kept in {}: {error}", dir.display()),
    }
}
