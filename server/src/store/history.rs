//! What the store keeps of a document's history: versions (a record and the whole state at a
//! moment) and who wrote under which Yjs client id.
//!
//! A version's state is independent of the document's log: compacting the log never touches
//! it, and a version outlives any number of compactions. It is kept as the Yjs v2 encoding
//! compressed with zstd (level [`ZSTD_LEVEL`]), behind a one-byte codec tag so that another
//! encoding can be read later. Measured on the real editing traces (whole states, bytes):
//!
//! | trace | text | v1 | v2 | v2 + zstd 3 |
//! |---|---|---|---|---|
//! | automerge-paper | 104,852 | 311,041 | 159,932 | 72,594 |
//! | rustcode | 65,218 | 247,866 | 109,127 | 53,894 |
//! | sveltecomponent | 18,451 | 98,066 | 36,852 | 21,507 |
//!
//! (v2 halves v1; zstd halves v2 again: lz4 took only a third off, gzip 6 about as much as zstd
//! at several times the time, zstd 19 another tenth at twenty times the time.) What a month of
//! versions costs: `tests/bench` (`history-month`).

use serde::{Deserialize, Serialize};

use super::StoreError;

/// zstd's default level: most of what zstd can take off a Yjs state, at a few hundred MB/s.
pub const ZSTD_LEVEL: i32 = 3;
/// The codec tags a stored state starts with.
const V2_ZSTD: u8 = 1;

/// How a version came to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VersionKind {
    /// Taken when a burst of editing settled, or during a long one.
    Auto,
    /// Asked for (named when taken).
    Manual,
    /// Taken right after a restore: the state it restored.
    Restore,
}

/// A version's record; its state is stored beside it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionRecord {
    /// Unique within the document, and increasing: milliseconds since the epoch when taken,
    /// moved on by one if an earlier version has it.
    pub id: u64,
    /// When the state was taken (ms since the epoch).
    pub created_ms: u64,
    /// A named version is kept until it is deleted; automatic ones are thinned as they age.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub kind: VersionKind,
    /// For [`VersionKind::Restore`]: the version that was restored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restored_from: Option<u64>,
    /// The Yjs client ids whose changes are in this version and not in the one before it
    /// (insertions and formatting carry their client id; deletions only when the server saw
    /// who sent them, see [`Deletions`]).
    #[serde(default)]
    pub editors: Vec<u64>,
    /// Deletions since the version before, by who sent them, where the server saw it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deletions: Vec<Deletions>,
    /// Bytes the stored state takes.
    pub size_bytes: u64,
    /// Where in the document's log the state is (its last entry), so that a version of
    /// exactly the stored state is recognised; `Seq` in decimal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pos: Option<String>,
}

impl VersionRecord {
    pub fn is_named(&self) -> bool {
        self.name.is_some()
    }
}

/// What one client deleted: Yjs ids (a delete set, v1, base64).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deletions {
    pub client: u64,
    pub ids: String,
}

/// One page of a document's versions, newest first, and how many there are.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct VersionPage {
    pub versions: Vec<VersionRecord>,
    pub total: u64,
}

/// Who wrote under a Yjs client id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Author {
    /// Someone editing live, with the name and colour their presence announced.
    Person {
        name: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        color: Option<String>,
    },
    /// Content that came in through the API (an import, a posted update).
    Imported,
    /// A restore: the text it wrote again.
    Restored {
        version: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        by: Option<Box<Author>>,
    },
    /// Nobody the server knows.
    Unknown,
}

/// A state (a Yjs v2 update) as stored. Run off the runtime: it costs in proportion.
pub fn pack(v2: &[u8]) -> Result<Vec<u8>, StoreError> {
    let mut packed = vec![V2_ZSTD];
    let compressed = zstd::bulk::compress(v2, ZSTD_LEVEL).map_err(|e| StoreError::Backend(Box::new(e)))?;
    packed.extend_from_slice(&compressed);
    Ok(packed)
}

/// A stored state back as a Yjs v2 update. `limit` bounds what it may expand to.
pub fn unpack(packed: &[u8], limit: usize) -> Result<Vec<u8>, StoreError> {
    match packed.split_first() {
        Some((&V2_ZSTD, compressed)) => {
            zstd::bulk::decompress(compressed, limit).map_err(|source| StoreError::Undecodable {
                what: "a version's state does not decompress",
                source: Box::new(source),
            })
        }
        _ => Err(StoreError::Corrupt("a version's state has an unknown encoding".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_round_trip_and_an_unknown_codec_is_refused() {
        let state = b"a yjs state, repeated, repeated, repeated, repeated".repeat(20);
        let packed = pack(&state).unwrap();
        assert!(packed.len() < state.len() / 4, "{} of {}", packed.len(), state.len());
        assert_eq!(unpack(&packed, 1 << 20).unwrap(), state);
        assert!(unpack(&[9, 1, 2], 1 << 20).is_err());
        assert!(unpack(&packed, 10).is_err(), "the limit holds");
    }

    #[test]
    fn authors_are_stored_as_tagged_json() {
        let by = Author::Person { name: "Ada".into(), color: Some("#d93025".into()) };
        let restored = Author::Restored { version: 7, by: Some(Box::new(by.clone())) };
        let json = serde_json::to_string(&restored).unwrap();
        assert_eq!(json, r##"{"kind":"restored","version":7,"by":{"kind":"person","name":"Ada","color":"#d93025"}}"##);
        assert_eq!(serde_json::from_str::<Author>(&json).unwrap(), restored);
        assert_eq!(serde_json::to_string(&Author::Imported).unwrap(), r#"{"kind":"imported"}"#);
    }
}
