//! Documents whose text depends on the order their updates arrive in, made on purpose: three
//! writers type while items with forged neighbours are written among their edits (see
//! `rust/neighbours.rs` for what that does, and why the server cannot refuse them).

use std::collections::HashMap;

use quire_model::protocol;
use quire_model::schema::{doc_with_client_id, CONTENT};
use yrs::{ClientID, Doc, GetString, ReadTxn, Text, Transact};

/// What is written among the writers' edits, every seventh edit.
#[derive(Debug, Clone, Copy)]
pub enum Extra {
    Nothing,
    /// An item after a writer's last item, naming no right origin, under an id of its own.
    AtTheEnd,
    /// The same under the writer's own id, at its next clock (the fuzzer's `impostor`).
    UnderTheWritersId,
    /// An item under an id of its own whose neighbours are any two items of the writers'.
    ForgedNeighbours,
}

/// A document as the server took it.
pub struct Written {
    /// The server's copy.
    pub server: Doc,
    /// Every update the server applied, in order.
    pub updates: Vec<Vec<u8>>,
    /// How many of them came before any extra item: the document then is an earlier version.
    pub version_at: usize,
}

impl Written {
    /// The earlier version, as a document.
    pub fn version(&self) -> Doc {
        let version = doc_with_client_id(8);
        for update in &self.updates[..self.version_at] {
            protocol::apply_bytes(&version, update).unwrap();
        }
        version
    }
}

/// How many of `trials` documents a fresh copy reads differently from the server.
pub fn disagreements(trials: u32, extra: Extra) -> usize {
    documents(trials, extra).iter().filter(|doc| read(&doc.server) != read(&fresh_copy(&doc.server))).count()
}

/// The body's text.
pub fn read(doc: &Doc) -> String {
    doc.get_or_insert_text(CONTENT).get_string(&doc.transact())
}

/// A newcomer's copy: the whole state at once.
pub fn fresh_copy(doc: &Doc) -> Doc {
    let fresh = doc_with_client_id(7);
    protocol::apply_bytes(&fresh, &protocol::full_state(doc)).unwrap();
    fresh
}

/// Three writers type at random places, each catching up with the server now and then, so
/// that many edits are concurrent; the server takes each edit as it comes, and `extra` items
/// among them (from the fourth edit on).
pub fn documents(trials: u32, extra: Extra) -> Vec<Written> {
    let mut seed = 987_654_321u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut documents = Vec::new();
    for _ in 0..trials {
        let server = doc_with_client_id(1_000_000_000);
        let writers: Vec<Doc> = (1..=3).map(|i| doc_with_client_id(1_000_000 + i)).collect();
        let mut own_clocks: HashMap<u64, u32> = HashMap::new();
        let mut updates = Vec::new();
        let mut version_at = 0;
        for step in 0..120 {
            if step == 3 {
                version_at = updates.len();
            }
            let writer = &writers[(next() % 3) as usize];
            if next() % 2 == 0 {
                let behind = server.transact().encode_diff_v1(&writer.transact().state_vector());
                protocol::apply_bytes(writer, &behind).unwrap();
            }
            let text = writer.get_or_insert_text(CONTENT);
            let before = writer.transact().state_vector();
            let len = text.len(&writer.transact());
            let at = (next() % (u64::from(len) + 1)) as u32;
            text.insert(&mut writer.transact_mut(), at, ["x", "yy", "zzz"][(next() % 3) as usize]);
            take(&server, &mut updates, writer.transact().encode_state_as_update_v1(&before));
            if step % 7 != 3 {
                continue;
            }
            let victim = 1_000_001 + next() % 3;
            let last = server.transact().state_vector().get(&ClientID::new(victim));
            if last == 0 {
                continue;
            }
            let (client, clock) = match extra {
                Extra::Nothing => continue,
                Extra::AtTheEnd => {
                    let own = own_clocks.entry(victim).or_default();
                    *own += 3;
                    (2_000_000 + victim, *own - 3)
                }
                Extra::UnderTheWritersId => (victim, last),
                Extra::ForgedNeighbours => {
                    let known = server.transact().state_vector();
                    let mut any_item = || {
                        let writer = 1_000_001 + next() % 3;
                        let clock = known.get(&ClientID::new(writer));
                        (clock > 0).then(|| (writer, (next() % u64::from(clock)) as u32))
                    };
                    if let (Some(origin), Some(right)) = (any_item(), any_item()) {
                        let own = own_clocks.entry(victim).or_default();
                        take(&server, &mut updates, between(2_000_000 + victim, *own, origin, right, "IMP"));
                        *own += 3;
                    }
                    continue;
                }
            };
            take(&server, &mut updates, after(client, clock, (victim, last - 1), "IMP"));
        }
        documents.push(Written { server, updates, version_at });
    }
    documents
}

/// The server applies `update`, and it is kept.
fn take(server: &Doc, updates: &mut Vec<Vec<u8>>, update: Vec<u8>) {
    protocol::apply_bytes(server, &update).unwrap();
    updates.push(update);
}

/// A v1 update with one string item of `client` at `clock`, after item `origin`, naming no
/// right origin.
fn after(client: u64, clock: u32, origin: (u64, u32), text: &str) -> Vec<u8> {
    use yrs::encoding::write::Write;
    let mut update = Vec::new();
    update.write_var(1u32); // clients
    update.write_var(1u32); // blocks
    update.write_var(client);
    update.write_var(clock);
    update.push(0x80 | 4); // an origin, a string
    update.write_var(origin.0);
    update.write_var(origin.1);
    update.write_string(text);
    update.write_var(0u32); // no deletions
    update
}

/// The same with a right origin too.
fn between(client: u64, clock: u32, origin: (u64, u32), right: (u64, u32), text: &str) -> Vec<u8> {
    use yrs::encoding::write::Write;
    let mut update = Vec::new();
    update.write_var(1u32); // clients
    update.write_var(1u32); // blocks
    update.write_var(client);
    update.write_var(clock);
    update.push(0x80 | 0x40 | 4); // an origin, a right origin, a string
    update.write_var(origin.0);
    update.write_var(origin.1);
    update.write_var(right.0);
    update.write_var(right.1);
    update.write_string(text);
    update.write_var(0u32); // no deletions
    update
}
