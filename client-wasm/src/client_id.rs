//! Taking a new client id when another client writes under ours, as a Yjs `Doc` does.
//!
//! Every item a client makes is named by its client id and a clock that counts up. The server
//! accepts items under any id, so a client writing under ours (one that copied it from the
//! presence list, or a buggy one) takes the clocks we would use next: our next edits then carry
//! ids the server already holds, and it drops them as known while our screen says "All changes
//! synced". Yjs guards the victim's side: when a remote transaction moved our own clock in the
//! state vector, someone else writes under our id, and the `Doc` takes a new one
//! (`cleanupTransactions` in yjs's `src/utils/Transaction.js`). A yrs `Doc` keeps the id it was
//! built with, so here the replica moves to a new `Doc` with the same state and a new id.
//!
//! What no client can repair, Yjs included: edits of ours that the other client's items beat to
//! the server under the same clocks (typed between its write reaching the server and reaching
//! us) are dropped there as known. The switch keeps every edit after it safe.

use quire_model::{protocol, schema};
use yrs::sync::Message;
use yrs::{Doc, ReadTxn, Transact};

use crate::replica::Replica;

impl Replica {
    /// How far our own client id's clock has got in this document: what Yjs compares before
    /// and after a remote transaction.
    pub(crate) fn own_clock(&self) -> u32 {
        let doc = self.doc();
        doc.transact().state_vector().get(&doc.client_id())
    }

    /// Moves the replica to a new `Doc` under a new random client id, holding everything the
    /// old one held. The awareness message to send, if we have a presence: our state under the
    /// new id, and the old id marked gone (a `null` one clock higher, as y-protocols says
    /// goodbye), so the others see us once, not twice until the old state times out.
    pub(crate) fn take_new_client_id(&mut self) -> Option<Vec<u8>> {
        let doc = self.fresh_doc();
        // The whole state, pending updates included (`replica_state` carries them),
        // so our edits the server has not confirmed come along like everything else. Items keep
        // their ids, so relative positions (carets, in our presence and in JavaScript) still
        // resolve.
        if protocol::apply_bytes(&doc, &self.encode_state()).is_err() {
            // yrs refusing its own encoding is not expected. Staying on the old `Doc` keeps
            // every edit; only this guard is lost.
            return None;
        }
        let old = self.awareness.client_id();
        let state = self.awareness.local_state_raw();
        self.replace_doc(doc);
        let state = state?;
        self.awareness.remove_state(old);
        self.awareness.set_local_state_raw(state);
        let update = self
            .awareness
            .update_with_clients([old, self.awareness.client_id()])
            .ok()?;
        Some(protocol::encode(&Message::Awareness(update)))
    }

    /// An empty `Doc` (`schema::new_doc`: UTF-16 offsets) under an id nobody has written under
    /// in this document. 53 random bits hardly ever hit one, but a hit would be the same trap.
    fn fresh_doc(&self) -> Doc {
        let known = self.doc().transact().state_vector();
        loop {
            let doc = schema::new_doc();
            if !known.contains_client(&doc.client_id()) {
                return doc;
            }
        }
    }
}
