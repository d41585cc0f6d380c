//! The material hostile frames are made of: real updates, taken from a trace replayed by
//! several Yjs clients that see each other's edits, so the updates reference each other's items
//! (origins, deletions) as a collaborative session's do.

use quire_model::protocol;
use quire_model::schema::{doc_with_client_id, CONTENT, META, TITLE};
use yrs::sync::{Awareness, Message, SyncMessage};
use yrs::types::Attrs;
use yrs::updates::encoder::Encode;
use yrs::{Any, Doc, GetString, Map, ReadTxn, StateVector, Text, Transact};

use super::trace::{clamp, Patch};

/// Client ids of the corpus's writers: far from the honest clients' (1, 2, …) and from the
/// random ids of stock clients' small range, so a report can tell whose items are whose.
pub const FIRST_CLIENT: u64 = 1_000_001;
/// Writers taking turns over the trace.
const WRITERS: u64 = 3;
/// Every so many keystrokes: a format (an attribute pair in the text), a title (a map entry),
/// an embed (an `Any` value), and a merged update spanning the keystrokes since the last one.
const FORMAT_EVERY: usize = 37;
const TITLE_EVERY: usize = 101;
const EMBED_EVERY: usize = 211;
const MERGE_EVERY: usize = 64;

pub struct Corpus {
    /// One v1 update per keystroke, in the order made (later ones depend on earlier ones).
    pub updates: Vec<Vec<u8>>,
    /// v1 updates spanning many keystrokes of all writers, and the whole final state.
    pub merged: Vec<Vec<u8>>,
    /// v1 state vectors met on the way.
    pub state_vectors: Vec<StateVector>,
    /// Awareness messages (whole frames) of the writers, as stock clients send them.
    pub presence: Vec<Vec<u8>>,
    /// Every one of the above as a whole, valid frame.
    pub frames: Vec<Vec<u8>>,
}

impl Corpus {
    /// Replays `patches` over [`WRITERS`] documents, each keystroke by the next writer in turn
    /// and delivered to the others at once.
    pub fn build(patches: &[Patch]) -> Corpus {
        let docs: Vec<Doc> = (0..WRITERS).map(|i| doc_with_client_id(FIRST_CLIENT + i)).collect();
        let mut corpus = Corpus {
            updates: Vec::new(),
            merged: Vec::new(),
            state_vectors: Vec::new(),
            presence: Vec::new(),
            frames: Vec::new(),
        };
        let mut since = StateVector::default();
        for (i, patch) in patches.iter().enumerate() {
            let doc = &docs[i % docs.len()];
            let (text, meta) = (doc.get_or_insert_text(CONTENT), doc.get_or_insert_map(META));
            let update = {
                let mut txn = doc.transact_mut();
                let (pos, delete) = clamp(patch, text.len(&txn));
                if delete > 0 {
                    text.remove_range(&mut txn, pos, delete);
                }
                if !patch.insert.is_empty() {
                    text.insert(&mut txn, pos, &patch.insert);
                }
                let len = text.len(&txn);
                if i % FORMAT_EVERY == 0 && len > 0 {
                    let at = (i as u32 * 7) % len;
                    let attrs = Attrs::from([("bold".into(), Any::Bool(true))]);
                    text.format(&mut txn, at, (len - at).min(12), attrs);
                }
                if i % TITLE_EVERY == 0 {
                    meta.insert(&mut txn, TITLE, format!("Draft {i}"));
                }
                if i % EMBED_EVERY == 0 {
                    let embed = Any::from(std::collections::HashMap::from([(
                        "image".to_owned(),
                        Any::from(format!("https://example.com/{i}.png")),
                    )]));
                    text.insert_embed(&mut txn, len, embed);
                }
                txn.encode_update_v1()
            };
            for other in &docs {
                if !std::ptr::eq(other, doc) {
                    protocol::apply_bytes(other, &update).expect("a writer's update applies to its peers");
                }
            }
            corpus.updates.push(update);
            if i % MERGE_EVERY == MERGE_EVERY - 1 {
                let txn = docs[0].transact();
                corpus.merged.push(txn.encode_state_as_update_v1(&since));
                corpus.state_vectors.push(since);
                since = txn.state_vector();
            }
        }
        corpus.merged.push(protocol::full_state(&docs[0]));
        corpus.state_vectors.push(since);
        debug_assert!(docs.windows(2).all(|w| text_of(&w[0]) == text_of(&w[1])));

        for (i, doc) in docs.iter().enumerate() {
            let mut awareness = Awareness::new(doc.clone());
            let state = format!(
                r##"{{"user":{{"name":"Writer {i}","color":"#{:06x}"}},"cursor":{{"anchor":{i},"head":{}}}}}"##,
                0x30a0c0 + i * 0x1111,
                i * 3
            );
            awareness.set_local_state_raw(state);
            if let Ok(update) = awareness.update() {
                corpus.presence.push(protocol::encode(&Message::Awareness(update)));
            }
        }

        let sync = |m: SyncMessage| protocol::encode(&Message::Sync(m));
        let mut frames: Vec<Vec<u8>> = Vec::new();
        frames.extend(corpus.updates.iter().map(|u| sync(SyncMessage::Update(u.clone()))));
        frames.extend(corpus.merged.iter().map(|u| sync(SyncMessage::SyncStep2(u.clone()))));
        frames.extend(corpus.state_vectors.iter().map(|sv| sync(SyncMessage::SyncStep1(sv.clone()))));
        frames.extend(corpus.presence.iter().cloned());
        frames.push(protocol::encode(&Message::AwarenessQuery));
        frames.push(protocol::encode(&Message::Auth(None)));
        corpus.frames = frames;
        corpus
    }
}

fn text_of(doc: &Doc) -> String {
    doc.get_or_insert_text(CONTENT).get_string(&doc.transact())
}

/// `sv` in its v1 encoding.
pub fn encode_sv(sv: &StateVector) -> Vec<u8> {
    sv.encode_v1()
}
