//! A document's stream in Redis: its keys, its entries, and stream ids as [`Seq`]s.
//!
//! Every key of a document carries the document id as its hash tag (`quire:{id}:…`), so on a
//! Redis Cluster all of them live in one slot and every command and script here touches one
//! slot only.

use std::collections::HashMap;

use quire_model::DocId;
use redis::Value;

use crate::store::{Seq, StoreError};

/// The keys and the channel of one document.
pub struct Keys {
    /// The stream: every accepted update, deletion and link removal, in order.
    pub log: String,
    /// Pub/sub: "the stream grew" doorbells and presence. A hint and a courtesy, never the
    /// carrier of an edit.
    pub channel: String,
    /// The fold lease: which process may write the snapshot now.
    pub lease: String,
    /// The fencing counter: every lease and every deletion takes the next value.
    pub fence: String,
    /// The last stream id removed from the stream (everything up to it is in the database).
    pub trimmed: String,
    /// Which process takes the document's automatic version now (see `claim_version`).
    pub version: String,
}

impl Keys {
    pub fn of(doc: &DocId) -> Keys {
        let tag = format!("quire:{{{doc}}}");
        Keys {
            log: format!("{tag}:log"),
            channel: format!("{tag}:ch"),
            lease: format!("{tag}:lease"),
            fence: format!("{tag}:fence"),
            trimmed: format!("{tag}:trimmed"),
            version: format!("{tag}:version"),
        }
    }
}

/// The document id of a channel name, if it is one of ours.
pub fn doc_of_channel(channel: &str) -> Option<DocId> {
    let inner = channel.strip_prefix("quire:{")?.strip_suffix("}:ch")?;
    DocId::parse(inner).ok()
}

/// A stream id ("ms-seq") as a [`Seq`]: the milliseconds in the high 64 bits, so that ids and
/// `Seq`s order alike.
pub fn parse_id(id: &str) -> Result<Seq, StoreError> {
    let bad = || StoreError::Corrupt(format!("not a stream id: {id:?}"));
    let (ms, seq) = id.split_once('-').ok_or_else(bad)?;
    let ms: u64 = ms.parse().map_err(|_| bad())?;
    let seq: u64 = seq.parse().map_err(|_| bad())?;
    Ok(Seq((u128::from(ms) << 64) | u128::from(seq)))
}

/// The stream id of a [`Seq`].
pub fn id(seq: Seq) -> String {
    format!("{}-{}", (seq.0 >> 64) as u64, seq.0 as u64)
}

/// When the entry at `seq` was appended, in milliseconds since the epoch.
pub fn millis(seq: Seq) -> u64 {
    (seq.0 >> 64) as u64
}

/// What a stream entry says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// An update (v1) accepted by process `origin`.
    Update { origin: String, update: Vec<u8> },
    /// The document was deleted: what came before belongs to the deleted document.
    Deleted,
    /// Share link `link` was removed.
    Revoked(String),
}

/// Field names: short, they are stored with every entry.
pub const ORIGIN: &str = "o";
pub const KIND: &str = "t";
pub const DATA: &str = "d";

/// The fields of `entry` as XADD takes them.
pub fn fields(process: &str, entry: &Entry) -> Vec<(&'static str, Vec<u8>)> {
    let origin = (ORIGIN, process.as_bytes().to_vec());
    match entry {
        Entry::Update { update, .. } => vec![origin, (KIND, b"u".to_vec()), (DATA, update.clone())],
        Entry::Deleted => vec![origin, (KIND, b"x".to_vec())],
        Entry::Revoked(link) => vec![origin, (KIND, b"r".to_vec()), (DATA, link.as_bytes().to_vec())],
    }
}

/// Reads one entry of an XRANGE reply.
pub fn read(id: &str, map: &HashMap<String, Value>) -> Result<(Seq, Entry), StoreError> {
    let seq = parse_id(id)?;
    let bytes = |field: &str| match map.get(field) {
        Some(Value::BulkString(bytes)) => Ok(bytes.clone()),
        _ => Err(StoreError::Corrupt(format!("stream entry {id} lacks field {field}"))),
    };
    let text = |field: &str| {
        String::from_utf8(bytes(field)?).map_err(|_| StoreError::Corrupt(format!("stream entry {id}: field {field} is not text")))
    };
    let entry = match bytes(KIND)?.as_slice() {
        b"u" => Entry::Update { origin: text(ORIGIN)?, update: bytes(DATA)? },
        b"x" => Entry::Deleted,
        b"r" => Entry::Revoked(text(DATA)?),
        other => return Err(StoreError::Corrupt(format!("stream entry {id} has unknown kind {other:?}"))),
    };
    Ok((seq, entry))
}

/// Reads an XRANGE reply.
pub fn read_range(reply: redis::streams::StreamRangeReply) -> Result<Vec<(Seq, Entry)>, StoreError> {
    reply.ids.iter().map(|entry| read(&entry.id, &entry.map)).collect()
}

/// The `trimmed` key's value as a position (none: nothing was ever trimmed).
pub fn read_trimmed(value: Option<String>) -> Result<Option<Seq>, StoreError> {
    value.as_deref().map(parse_id).transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_seqs_order_alike() {
        let ids = ["0-0", "0-1", "1-0", "1700000000000-5", "1700000000001-0", "18446744073709551615-18446744073709551615"];
        let seqs: Vec<Seq> = ids.iter().map(|i| parse_id(i).unwrap()).collect();
        assert!(seqs.windows(2).all(|w| w[0] < w[1]));
        for (i, s) in ids.iter().zip(&seqs) {
            assert_eq!(&id(*s), i);
        }
        assert!(parse_id("12").is_err() && parse_id("a-1").is_err());
    }

    #[test]
    fn channels_name_their_document() {
        let doc = DocId::parse("notes-1").unwrap();
        assert_eq!(doc_of_channel(&Keys::of(&doc).channel), Some(doc));
        assert_eq!(doc_of_channel("quire:{x}:log"), None);
    }
}
