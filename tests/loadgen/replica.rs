//! One client's Yjs replica: makes timestamped keystrokes and recognises other writers' ones.
//!
//! Every keystroke inserts `"<µs since Stats::base>;"`. Writers and watchers share one process
//! and one clock, so a receiver reads the send time straight out of the text: no shared map of
//! in-flight edits. A text observer sees what each remote transaction inserted; its delta may
//! merge neighbouring inserts into one chunk (an update that unblocks queued ones), which is why
//! chunks are split on ';' rather than taken whole.

use std::sync::Arc;

use quire_model::protocol::{self, ProtocolError};
use quire_model::schema::{doc_with_client_id, CONTENT};
use yrs::sync::{Message, SyncMessage};
use yrs::types::text::TextEvent;
use yrs::types::Delta;
use yrs::{Any, Doc, Observable, Out, StateVector, Text, TextRef, Transact, TransactionMut};

use crate::stats::Stats;

/// Marks our own transactions so the observer skips them: only remote edits are deliveries.
const LOCAL: &str = "loadgen-local";
/// The observer's key; one per replica.
const OBSERVER: &str = "loadgen-deliveries";

pub struct Replica {
    doc: Doc,
    text: TextRef,
}

impl Replica {
    /// `client_id` must be unique per document; loadgen uses the global client index + 1
    /// (Yjs reserves no ids, but 0 reads like "unset" in dumps).
    pub fn new(client_id: u64, stats: Arc<Stats>) -> Self {
        let doc = doc_with_client_id(client_id);
        let text = doc.get_or_insert_text(CONTENT);
        text.observe(OBSERVER, move |txn: &TransactionMut, event: &TextEvent| {
            if txn.origin().is_some() {
                return;
            }
            for delta in event.delta(txn) {
                if let Delta::Inserted(Out::Any(Any::String(chunk)), _) = delta {
                    for stamp in chunk.split(';').filter(|s| !s.is_empty()) {
                        match stamp.parse::<u64>() {
                            Ok(sent_us) => stats.record_delivery(sent_us),
                            Err(_) => {
                                stats.foreign.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            }
                        }
                    }
                }
            }
        });
        Replica { doc, text }
    }

    /// Inserts one timestamp at a random position and returns the y-sync Update frame for it.
    pub fn keystroke(&self, sent_us: u64, rng: &mut fastrand::Rng) -> Vec<u8> {
        let mut txn = self.doc.transact_mut_with(LOCAL);
        let len = self.text.len(&txn);
        let at = rng.u32(0..=len);
        self.text.insert(&mut txn, at, &format!("{sent_us};"));
        let update = txn.encode_update_v1();
        drop(txn);
        protocol::encode(&Message::Sync(SyncMessage::Update(update)))
    }

    /// Our sync step 1, sent on connect as a stock y-websocket client does.
    pub fn step1(&self) -> Vec<u8> {
        protocol::encode(&protocol::sync_step1(&self.doc))
    }

    /// Handles one frame from the server. Returns the replies to send, and whether the frame held
    /// sync step 2 (the moment a y-websocket client calls itself synced).
    pub fn receive(&self, frame: &[u8]) -> Result<Received, ProtocolError> {
        let mut received = Received::default();
        for message in protocol::decode_frame(frame)? {
            match message {
                Message::Sync(SyncMessage::SyncStep1(sv)) => received.replies.push(self.step2(&sv)),
                Message::Sync(SyncMessage::SyncStep2(update)) => {
                    protocol::apply_bytes(&self.doc, &update)?;
                    received.synced = true;
                }
                Message::Sync(SyncMessage::Update(update)) => {
                    protocol::apply_bytes(&self.doc, &update)?;
                }
                // Awareness and auth carry no document content; loadgen sends no presence, so
                // there is nothing to answer (a stock client without awareness state does the same).
                Message::Auth(Some(reason)) => {
                    return Err(ProtocolError::Malformed(format!("permission denied: {reason}")))
                }
                Message::Auth(None) | Message::Awareness(_) | Message::AwarenessQuery | Message::Custom(..) => {}
            }
        }
        Ok(received)
    }

    fn step2(&self, remote: &StateVector) -> Vec<u8> {
        protocol::encode(&protocol::sync_step2(&self.doc, remote))
    }
}

#[derive(Default)]
pub struct Received {
    pub replies: Vec<Vec<u8>>,
    pub synced: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering::Relaxed;

    #[test]
    fn a_keystroke_is_one_delivery_at_each_peer_and_none_at_its_writer() {
        let stats = Arc::new(Stats::new());
        let (a, b) = (Replica::new(1, stats.clone()), Replica::new(2, stats.clone()));
        let mut rng = fastrand::Rng::with_seed(7);
        for stamp in [10, 20, 30] {
            let frame = a.keystroke(stamp, &mut rng);
            assert!(!b.receive(&frame).unwrap().synced);
        }
        assert_eq!(stats.delivered.load(Relaxed), 3);
        assert_eq!(stats.foreign.load(Relaxed), 0);
        // Replaying a known update is a no-op, not a second delivery.
        let again = a.keystroke(40, &mut rng);
        b.receive(&again).unwrap();
        b.receive(&again).unwrap();
        assert_eq!(stats.delivered.load(Relaxed), 4);
    }
}
