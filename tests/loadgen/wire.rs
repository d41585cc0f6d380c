//! The y-sync framing, read by hand: a few varints and length prefixes per frame.
//!
//! Clients are not replicas (see `stamp`), so they never decode an update: a frame is split
//! into its messages and each sync payload is handed over as a slice of the frame. yrs's own
//! `MessageReader` would do the same job but copies every payload into a `Vec` and decodes
//! awareness updates as JSON; at 36,000 frames a second that is most of the work left.
//!
//! Layout (y-protocols, as `yrs::sync::protocol` encodes it): a frame is one or more messages,
//! each a varint type, then per type:
//! - sync (0): varint subtype (step 1 / step 2 / update), then a length-prefixed payload;
//! - awareness (1): a length-prefixed payload;
//! - auth (2): varint subtype; "permission denied" is followed by a length-prefixed reason;
//! - query awareness (3): nothing;
//! - anything else: a length-prefixed payload (what yrs reads as `Message::Custom`).

use quire_model::protocol;
use quire_model::schema::new_doc;
use yrs::sync::protocol::{
    MSG_AUTH, MSG_AWARENESS, MSG_QUERY_AWARENESS, MSG_SYNC, MSG_SYNC_STEP_1, MSG_SYNC_STEP_2, MSG_SYNC_UPDATE,
    PERMISSION_DENIED,
};
use yrs::StateVector;

/// One message of a frame, borrowing its payload from the frame.
#[derive(Debug, PartialEq, Eq)]
pub enum Message<'a> {
    /// Sync step 1; the payload is the sender's state vector (v1).
    Step1(&'a [u8]),
    /// Sync step 2; the payload is a v1 update.
    Step2(&'a [u8]),
    /// A live update; the payload is a v1 update.
    Update(&'a [u8]),
    /// Awareness, awareness queries, granted auth and unknown types: nothing a client here needs.
    Ignored,
    /// The server refused us, with its reason.
    Denied(String),
}

/// The messages of one frame, in order. After the first error the iterator ends.
pub fn messages(frame: &[u8]) -> Messages<'_> {
    Messages { rest: frame, failed: false }
}

pub struct Messages<'a> {
    rest: &'a [u8],
    failed: bool,
}

impl<'a> Iterator for Messages<'a> {
    type Item = Result<Message<'a>, String>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() || self.failed {
            return None;
        }
        let message = self.message();
        self.failed = message.is_err();
        Some(message)
    }
}

impl<'a> Messages<'a> {
    fn message(&mut self) -> Result<Message<'a>, String> {
        let tag = self.varint()?;
        match u8::try_from(tag) {
            Ok(MSG_SYNC) => {
                let subtype = self.varint()?;
                let payload = self.buf()?;
                match u8::try_from(subtype) {
                    Ok(MSG_SYNC_STEP_1) => Ok(Message::Step1(payload)),
                    Ok(MSG_SYNC_STEP_2) => Ok(Message::Step2(payload)),
                    Ok(MSG_SYNC_UPDATE) => Ok(Message::Update(payload)),
                    _ => Err(format!("unknown sync message type {subtype}")),
                }
            }
            Ok(MSG_AWARENESS) => self.buf().map(|_| Message::Ignored),
            Ok(MSG_AUTH) => {
                if self.varint()? == u64::from(PERMISSION_DENIED) {
                    Ok(Message::Denied(String::from_utf8_lossy(self.buf()?).into_owned()))
                } else {
                    Ok(Message::Ignored)
                }
            }
            Ok(MSG_QUERY_AWARENESS) => Ok(Message::Ignored),
            _ => self.buf().map(|_| Message::Ignored),
        }
    }

    /// An unsigned LEB128 varint, as lib0 writes it.
    fn varint(&mut self) -> Result<u64, String> {
        let mut value = 0u64;
        for (i, &byte) in self.rest.iter().enumerate().take(10) {
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                self.rest = &self.rest[i + 1..];
                return Ok(value);
            }
        }
        Err("truncated or oversized varint".to_owned())
    }

    /// A varint length, then that many bytes.
    fn buf(&mut self) -> Result<&'a [u8], String> {
        let len = self.varint()?;
        let len = usize::try_from(len).ok().filter(|&n| n <= self.rest.len());
        let left = self.rest.len();
        let len = len.ok_or_else(|| format!("payload runs past the end of the frame ({left} bytes left)"))?;
        let (payload, rest) = self.rest.split_at(len);
        self.rest = rest;
        Ok(payload)
    }
}

/// The handshake frames of a client without content, encoded once by yrs from an empty
/// document so they are the exact bytes a stock client would send.
pub struct Handshake {
    /// Our sync step 1 (an empty state vector), sent on connect.
    pub step1: bytes::Bytes,
    /// Our answer to the server's sync step 1: an empty document has nothing the server lacks,
    /// whatever its state vector says, so one answer fits every server and every watcher.
    pub empty_step2: bytes::Bytes,
}

impl Handshake {
    pub fn new() -> Self {
        let empty = new_doc();
        Handshake {
            step1: protocol::encode(&protocol::sync_step1(&empty)).into(),
            empty_step2: protocol::encode(&protocol::sync_step2(&empty, &StateVector::default())).into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quire_model::protocol::{encode, update_message};
    use yrs::sync::{Message as YMessage, SyncMessage};

    #[test]
    fn reads_what_yrs_writes() {
        let mut frame = encode(&YMessage::Sync(SyncMessage::SyncStep1(StateVector::default())));
        frame.extend(encode(&YMessage::Auth(None)));
        frame.extend(encode(&YMessage::AwarenessQuery));
        frame.extend(encode(&YMessage::Custom(9, vec![1, 2, 3])));
        frame.extend(encode(&YMessage::Sync(SyncMessage::SyncStep2(vec![7; 200]))));
        frame.extend(encode(&update_message(vec![0, 0])));
        frame.extend(encode(&YMessage::Auth(Some("no".into()))));
        let read: Vec<_> = messages(&frame).collect::<Result<_, _>>().unwrap();
        assert_eq!(
            read,
            [
                Message::Step1(&[0][..]),
                Message::Ignored,
                Message::Ignored,
                Message::Ignored,
                Message::Step2(&[7; 200][..]),
                Message::Update(&[0, 0][..]),
                Message::Denied("no".into()),
            ]
        );
    }

    #[test]
    fn truncated_frames_are_errors_not_panics() {
        let frame = encode(&update_message(vec![5; 300]));
        for cut in 1..frame.len() {
            let read: Vec<_> = messages(&frame[..cut]).collect();
            assert!(read.last().unwrap().is_err(), "cut at {cut}");
        }
        assert!(messages(&[0x80; 11]).next().unwrap().is_err());
        assert!(messages(&[0, 7, 0]).next().unwrap().is_err(), "unknown sync subtype");
    }

    #[test]
    fn the_handshake_is_what_an_empty_yrs_client_sends() {
        let h = Handshake::new();
        assert_eq!(&h.step1[..], [MSG_SYNC, MSG_SYNC_STEP_1, 1, 0]);
        assert_eq!(&h.empty_step2[..], [MSG_SYNC, MSG_SYNC_STEP_2, 2, 0, 0]);
    }
}
