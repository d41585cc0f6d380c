//! A writer's own yrs document: it makes the updates, and nothing else.
//!
//! A writer never integrates the other writers' edits: it appends stamps to its own text and
//! sends each transaction's v1 update. Updates from the writers of one document are still
//! concurrent edits of one Y.Text, valid for any server, which integrates them like any other.
//! Appending (not inserting at random positions) keeps every stamp in one piece (see `stamp`)
//! and costs the writer nothing as its text grows.

use quire_model::protocol::{self, update_message};
use quire_model::schema::{doc_with_client_id, CONTENT};
use yrs::updates::decoder::Decode;
use yrs::{Doc, StateVector, Text, TextRef, Transact};

use crate::stamp::Stamp;

pub struct Writer {
    doc: Doc,
    text: TextRef,
    slot: usize,
    /// The last stamp sent: stamps of one writer strictly increase, so readers can tell a
    /// repeated or reordered delivery from a new one.
    last_us: Option<u64>,
}

impl Writer {
    /// `client_id` must be unique per document; loadgen uses the global client index + 1
    /// (fixed, so a seed replays the same bytes; 0 reads like "unset" in dumps).
    pub fn new(client_id: u64, slot: usize) -> Self {
        let doc = doc_with_client_id(client_id);
        let text = doc.get_or_insert_text(CONTENT);
        Writer { doc, text, slot, last_us: None }
    }

    /// Appends one stamp and returns the y-sync Update frame that carries it.
    pub fn keystroke(&mut self, now_us: u64) -> Vec<u8> {
        let sent_us = self.last_us.map_or(now_us, |last| now_us.max(last + 1));
        self.last_us = Some(sent_us);
        let mut txn = self.doc.transact_mut();
        self.text.push(&mut txn, &Stamp { slot: self.slot, sent_us }.text());
        let update = txn.encode_update_v1();
        drop(txn);
        protocol::encode(&update_message(update))
    }

    /// Our answer to a server's sync step 1 (its state vector, v1). Servers ask once, on
    /// connect, before anyone types; this covers one that asks again later.
    pub fn step2(&self, state_vector: &[u8]) -> Result<Vec<u8>, String> {
        let remote = StateVector::decode_v1(state_vector).map_err(|e| format!("bad state vector: {e}"))?;
        Ok(protocol::encode(&protocol::sync_step2(&self.doc, &remote)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stamp::scan;
    use crate::wire::{messages, Message};
    use yrs::{GetString, ReadTxn};

    fn payload(frame: &[u8]) -> Vec<u8> {
        match messages(frame).next() {
            Some(Ok(Message::Update(update))) => update.to_vec(),
            other => panic!("not an update: {other:?}"),
        }
    }

    #[test]
    fn the_updates_of_two_writers_merge_and_every_stamp_is_found_in_the_bytes() {
        let (mut a, mut b) = (Writer::new(1, 0), Writer::new(2, 1));
        let server = doc_with_client_id(99);
        let mut relayed = Vec::new();
        for _ in 0..20 {
            for w in [&mut a, &mut b] {
                // The same clock reading every time: stamps must still increase.
                let update = payload(&w.keystroke(0));
                // What a server relays: the delta of applying the update to its document.
                relayed.push(protocol::apply_bytes(&server, &update).unwrap().unwrap());
            }
        }
        let stamps: Vec<_> = relayed.iter().flat_map(|u| scan(u)).collect();
        assert_eq!(stamps.len(), 40);
        assert!(stamps.iter().filter(|s| s.slot == 0).map(|s| s.sent_us).eq(0..20));
        // And the server's whole state, re-encoded, still holds every stamp whole.
        let text = server.get_or_insert_text(CONTENT);
        assert_eq!(text.get_string(&server.transact()).matches('\u{1}').count(), 40);
        let state = server.transact().encode_state_as_update_v1(&StateVector::default());
        assert_eq!(scan(&state).count(), 40);
    }

    #[test]
    fn a_late_step1_is_answered_with_what_the_server_lacks() {
        let mut a = Writer::new(1, 0);
        a.keystroke(5);
        let frame = a.step2(&[0]).unwrap();
        let Some(Ok(Message::Step2(update))) = messages(&frame).next() else { panic!("not step 2") };
        assert_eq!(scan(update).count(), 1);
    }
}
