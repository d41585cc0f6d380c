//! The y-websocket sync protocol, as quire applies it on both ends.
//!
//! Message encoding is yrs's own (`yrs::sync`); this module adds what a server facing the
//! network needs on top: bytes are walked by [`wire`] before yrs decodes them, so that no count
//! in them makes yrs reserve more than the bytes can hold and no value nests deep enough to
//! overflow the stack; every decode and apply is isolated with `catch_unwind`, because yrs can
//! still panic on hostile input; and a failed message never half-applies. Both the server and
//! the browser replica go through these functions so the two ends treat bytes the same way.

mod wire;

use std::panic::{catch_unwind, AssertUnwindSafe};

use yrs::encoding::read::{Cursor, Error as ReadError};
use yrs::error::UpdateError;
use yrs::sync::protocol::MessageReader;
use yrs::sync::{AwarenessUpdate, Message, SyncMessage};
use yrs::updates::decoder::{Decode, DecoderV1};
use yrs::updates::encoder::Encode;
use yrs::{Doc, ReadTxn, StateVector, Transact, Update};

pub use wire::{CLIENT_ID_BITS, MAX_DEPTH};

/// Why a frame or update was refused. Nothing was applied when one of these is returned.
#[derive(Debug, thiserror::Error)]
pub enum ProtocolError {
    #[error("malformed message: {0}")]
    Malformed(#[source] ReadError),
    #[error("frame holds no message")]
    Empty,
    #[error("update does not decode: {0}")]
    BadUpdate(#[source] ReadError),
    #[error("update does not apply: {0}")]
    Rejected(#[source] UpdateError),
    /// A count that the bytes after it cannot hold: each element takes at least one byte, so
    /// only hostile input says this, to make the decoder reserve memory the input never paid for.
    #[error("{what} declares {count} entries, more than the {room} bytes after it can hold")]
    Oversized {
        what: &'static str,
        count: u64,
        room: usize,
    },
    /// Values nested deeper than [`MAX_DEPTH`]: decoding recurses once per level.
    #[error("value nested deeper than {MAX_DEPTH} levels")]
    TooDeep,
    #[error("client id {0} is longer than 53 bits")]
    ClientId(u64),
    #[error("subdocuments are not part of quire's documents")]
    Subdocument,
    #[error("unsupported message type {0}")]
    Unsupported(u8),
    /// Items of `client` from `clock` on, when the receiver holds that client's items only up
    /// to `known`: see [`continues`].
    #[error("update skips over changes the receiver does not have (client {client} from clock {clock}, known up to {known})")]
    Gap { client: u64, clock: u32, known: u32 },
    /// yrs panicked. The caller must assume the `Doc` it passed may be inconsistent.
    #[error("internal error while handling {0}")]
    Panicked(&'static str),
}

/// Decodes every message in one WebSocket frame. All or nothing: if any message is malformed
/// the whole frame is refused, so a half-read frame never changes anything.
pub fn decode_frame(frame: &[u8]) -> Result<Vec<Message>, ProtocolError> {
    wire::frame(frame).map_err(|refusal| refusal.into_error(ProtocolError::Malformed))?;
    let messages = catch_unwind(|| {
        let mut decoder = DecoderV1::new(Cursor::new(frame));
        MessageReader::new(&mut decoder).collect::<Result<Vec<_>, _>>()
    })
    .map_err(|_| ProtocolError::Panicked("message decoding"))?
    .map_err(ProtocolError::Malformed)?;
    if messages.is_empty() {
        return Err(ProtocolError::Empty);
    }
    Ok(messages)
}

/// A message from a peer, classified by what it asks of the receiving replica. Updates arrive
/// already decoded, so a replica never sees bytes that were not validated.
#[derive(Debug)]
pub enum Inbound {
    /// Sync step 1: the peer's state vector; answer with [`sync_step2`].
    StateVector(StateVector),
    /// A live update: changes to apply.
    Update(Update),
    /// Sync step 2: changes to apply, in answer to our step 1 (what the peer has that we lack,
    /// as of its answer). Applied like an update; telling it apart says when a peer that just
    /// connected has caught us up.
    Answer(Update),
    /// Presence: the peer's awareness states.
    Awareness(AwarenessUpdate),
    /// The peer asks for every awareness state we know.
    AwarenessQuery,
    /// An auth message; quire decides access when a connection opens, so it is ignored.
    Auth,
}

/// Decodes and classifies every message in one frame, all or nothing (see [`decode_frame`]).
/// Message types the y-websocket protocol does not define are refused.
pub fn decode_inbound(frame: &[u8]) -> Result<Vec<Inbound>, ProtocolError> {
    decode_frame(frame)?
        .into_iter()
        .map(|message| {
            Ok(match message {
                Message::Sync(SyncMessage::SyncStep1(sv)) => Inbound::StateVector(sv),
                Message::Sync(SyncMessage::SyncStep2(u)) => Inbound::Answer(decode_update(&u)?),
                Message::Sync(SyncMessage::Update(u)) => Inbound::Update(decode_update(&u)?),
                Message::Awareness(update) => Inbound::Awareness(update),
                Message::AwarenessQuery => Inbound::AwarenessQuery,
                Message::Auth(_) => Inbound::Auth,
                Message::Custom(tag, _) => return Err(ProtocolError::Unsupported(tag)),
            })
        })
        .collect()
}

/// Encodes one message as one frame.
pub fn encode(message: &Message) -> Vec<u8> {
    message.encode_v1()
}

/// Decodes a v1 update without touching any document.
pub fn decode_update(update: &[u8]) -> Result<Update, ProtocolError> {
    wire::update(update).map_err(|refusal| refusal.into_error(ProtocolError::BadUpdate))?;
    catch_unwind(|| Update::decode_v1(update))
        .map_err(|_| ProtocolError::Panicked("update decoding"))?
        .map_err(ProtocolError::BadUpdate)
}

/// Applies a decoded update and returns what it changed, as a v1 update (empty if the update
/// was already known or is waiting for missing dependencies). That delta is what peers need
/// and what the store must keep.
pub fn apply_update(doc: &Doc, update: Update) -> Result<Option<Vec<u8>>, ProtocolError> {
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        let mut txn = doc.transact_mut();
        txn.apply_update(update)?;
        Ok::<_, UpdateError>(txn.encode_update_v1())
    }))
    .map_err(|_| ProtocolError::Panicked("update"))?
    .map_err(ProtocolError::Rejected)?;
    Ok(if is_empty_update(&outcome) {
        None
    } else {
        Some(outcome)
    })
}

/// Refuses an update that skips over changes `known` lacks: items of a client that start past
/// the last of that client's items `known` holds. yrs 0.28 integrates such an item "out of
/// order", behind a skip, whenever its neighbours are known; a server must not take it, because
/// the delta it stores and sends on (`TransactionMut::encode_update_v1` starts each client at its
/// state vector, and a skip holds that back) cannot carry it: the server would hold text that no
/// peer and no reload ever sees, and send on deletions of it that its peers keep pending for
/// ever. (Items whose neighbours are missing are another matter: yrs keeps those pending.)
pub fn continues(known: &StateVector, update: &Update) -> Result<(), ProtocolError> {
    for (client, ranges) in update.insertions(true).iter() {
        let mut end = known.get(client);
        let mut ranges: Vec<_> = ranges.iter().cloned().collect();
        ranges.sort_unstable_by_key(|range| range.start);
        for range in ranges {
            if range.start > end {
                return Err(ProtocolError::Gap { client: client.get(), clock: range.start, known: end });
            }
            end = end.max(range.end);
        }
    }
    Ok(())
}

/// Decodes and applies a v1 update: [`decode_update`] then [`apply_update`].
pub fn apply_bytes(doc: &Doc, update: &[u8]) -> Result<Option<Vec<u8>>, ProtocolError> {
    apply_update(doc, decode_update(update)?)
}

/// The encoding of an update with no blocks and no deletions (`[0, 0]` in v1).
fn is_empty_update(update: &[u8]) -> bool {
    update == [0, 0]
}

/// A live update message carrying `update` (v1).
pub fn update_message(update: Vec<u8>) -> Message {
    Message::Sync(SyncMessage::Update(update))
}

/// Sync step 1: our state vector, asking the peer for what we lack.
pub fn sync_step1(doc: &Doc) -> Message {
    Message::Sync(SyncMessage::SyncStep1(doc.transact().state_vector()))
}

/// Sync step 2: everything we have that the peer's state vector lacks.
///
/// "Have" means integrated: yrs's `encode_state_as_update` also carries what waits for changes
/// we lack (its pending structs and deletions), which the peer cannot integrate either. A
/// server that sent that on would give its clients updates it may drop (a newcomer's that
/// never gets its dependencies), and they would keep them pending for ever and send them back
/// in every later step 2 (the fuzzer saw honest editors closed and left apart for it).
pub fn sync_step2(doc: &Doc, remote: &StateVector) -> Message {
    Message::Sync(SyncMessage::SyncStep2(doc.transact().encode_diff_v1(remote)))
}

/// The whole document as one v1 update (snapshots, exports, versions): what it has integrated,
/// without what waits (see [`sync_step2`]).
pub fn full_state(doc: &Doc) -> Vec<u8> {
    doc.transact().encode_diff_v1(&StateVector::default())
}

/// The whole replica as one v1 update, what waits for missing changes included: for a client's
/// own copy of itself (on disk, or on a new client id), which must keep everything it received.
pub fn replica_state(doc: &Doc) -> Vec<u8> {
    doc.transact().encode_state_as_update_v1(&StateVector::default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{doc_with_client_id, CONTENT};
    use yrs::{GetString, Text};

    fn typed(client: u64, s: &str) -> (Doc, Vec<u8>) {
        let doc = doc_with_client_id(client);
        let text = doc.get_or_insert_text(CONTENT);
        text.insert(&mut doc.transact_mut(), 0, s);
        let update = full_state(&doc);
        (doc, update)
    }

    #[test]
    fn apply_returns_the_delta_and_nothing_when_known() {
        let (_, update) = typed(1, "你好 👋");
        let doc = doc_with_client_id(2);
        let delta = apply_bytes(&doc, &update).unwrap().expect("first apply changes the doc");
        assert!(!delta.is_empty());
        assert_eq!(
            doc.get_or_insert_text(CONTENT).get_string(&doc.transact()),
            "你好 👋"
        );
        assert_eq!(apply_bytes(&doc, &update).unwrap(), None, "a known update is a no-op");
    }

    #[test]
    fn garbage_is_refused_and_changes_nothing() {
        let (doc, _) = typed(1, "keep");
        let before = full_state(&doc);
        for garbage in [&[0xff, 0xff, 0xff][..], &[1, 2, 3, 4, 5], &[0x80; 20]] {
            assert!(apply_bytes(&doc, garbage).is_err());
        }
        assert_eq!(full_state(&doc), before);
    }

    #[test]
    fn frames_decode_all_or_nothing() {
        let (doc, _) = typed(1, "x");
        let mut frame = encode(&sync_step1(&doc));
        assert_eq!(decode_frame(&frame).unwrap().len(), 1);
        frame.extend_from_slice(&[0, 7]); // a sync message with an unknown sub-type
        assert!(decode_frame(&frame).is_err());
        assert!(matches!(decode_frame(&[]), Err(ProtocolError::Empty)));
    }

    #[test]
    fn a_truncated_last_message_refuses_the_frame() {
        // yrs's reader stops quietly at a message cut short; quire refuses the frame instead.
        let (doc, update) = typed(1, "x");
        let mut frame = encode(&sync_step1(&doc));
        let whole = encode(&update_message(update));
        frame.extend_from_slice(&whole[..whole.len() - 1]);
        assert!(matches!(decode_frame(&frame), Err(ProtocolError::Malformed(_))));
        // And an awareness message whose entries end early.
        assert!(matches!(decode_frame(&[1, 4, 1, 5, 0, 9]), Err(ProtocolError::Malformed(_))));
    }

    #[test]
    fn inbound_classifies_and_refuses_unknown_types() {
        let (doc, update) = typed(1, "x");
        let frame = encode(&update_message(update));
        assert!(matches!(decode_inbound(&frame).unwrap()[..], [Inbound::Update(_)]));
        let frame = encode(&sync_step1(&doc));
        assert!(matches!(decode_inbound(&frame).unwrap()[..], [Inbound::StateVector(_)]));
        assert!(matches!(decode_inbound(&[9, 1, 0]), Err(ProtocolError::Unsupported(9))));
        // A sync update whose payload is not an update.
        assert!(matches!(
            decode_inbound(&encode(&update_message(vec![0xff; 8]))),
            Err(ProtocolError::BadUpdate(_))
        ));
    }

    #[test]
    fn an_update_must_continue_each_clients_history() {
        let (doc, _) = typed(1, "abc");
        let known = doc.transact().state_vector();
        let next = {
            let peer = doc_with_client_id(2);
            apply_bytes(&peer, &full_state(&doc)).unwrap();
            let before = peer.transact().state_vector();
            peer.get_or_insert_text(CONTENT).insert(&mut peer.transact_mut(), 3, "d");
            let update = peer.transact().encode_state_as_update_v1(&before);
            decode_update(&update).unwrap()
        };
        assert!(continues(&known, &next).is_ok(), "a new client from clock 0");
        assert!(continues(&known, &decode_update(&full_state(&doc)).unwrap()).is_ok(), "what it has");
        // Client 2's item at clock 5 after client 1's last: known neighbours, a missing past.
        let skipping = [1, 1, 2, 5, 0x84, 1, 2, 1, b'x', 0];
        let error = continues(&known, &decode_update(&skipping).unwrap()).unwrap_err();
        assert!(matches!(error, ProtocolError::Gap { client: 2, clock: 5, known: 0 }), "{error}");
    }

    #[test]
    fn client_ids_past_53_bits_are_refused_everywhere() {
        // yrs would keep the low 53 bits (and assert in debug builds): two ids, one client.
        let wide = [0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01]; // 2^56
        let mut update = vec![1, 1];
        update.extend(wide);
        update.extend([0, 4, 1, 1, b'c', 1, b'x', 0]);
        assert!(matches!(decode_update(&update), Err(ProtocolError::ClientId(_))));
        let mut sv = vec![0, 0, 11, 1];
        sv.extend(wide);
        sv.push(0);
        assert!(matches!(decode_frame(&sv), Err(ProtocolError::ClientId(_))));
        let mut presence = vec![1, 14, 1];
        presence.extend(wide);
        presence.extend([1, 2, b'{', b'}']);
        assert!(matches!(decode_frame(&presence), Err(ProtocolError::ClientId(_))));
    }

    #[test]
    fn step2_brings_a_peer_up_to_date() {
        let (a, _) = typed(1, "hello");
        let b = doc_with_client_id(2);
        let Message::Sync(SyncMessage::SyncStep1(sv)) = sync_step1(&b) else { unreachable!() };
        let Message::Sync(SyncMessage::SyncStep2(update)) = sync_step2(&a, &sv) else {
            unreachable!()
        };
        apply_bytes(&b, &update).unwrap();
        assert_eq!(b.get_or_insert_text(CONTENT).get_string(&b.transact()), "hello");
    }
}
