//! The order of text must not depend on the order updates arrive in: a server that took them
//! one by one and a newcomer that loads the whole document at once must read the same text.
//!
//! It does, for items as Yjs writes them: an item names the neighbours it had when it was
//! written (its origin on the left, its right origin), and every item that lies between them
//! anywhere else was written without knowledge of it. yrs 0.28 (like Yjs) trusts that. An
//! item that names other neighbours is placed by arrival:
//!
//! - Under an absent writer's id, at its next clock (the fuzzer's `impostor` frame). When the
//!   writer's own items come later (in the fuzzer, replays of its frames), the server takes
//!   those ids as known and keeps the impostor's item under them, then places the writer's
//!   later items by origins that now name the impostor's text. That made a fresh client read
//!   other text than the server in one round of ten million frames (and an honest replica in
//!   one of six million).
//! - Under an id of its own, naming any two items of the text as its neighbours. No id is
//!   shared, and the order still depends on arrival.
//!
//! Yjs 13.6 does the same: given the updates of these tests' documents in the same order, it
//! read 5 of 300 (absent writer's id) and 47 of 300 (forged neighbours) differently in a fresh
//! copy.
//!
//! An item says what its writer knew only through the items it names, so a server cannot ask
//! that its neighbours be adjacent: a concurrent edit's are not. The one check yrs's public API
//! allows refuses too little and too much (see the last test's comment). A sound check would
//! place each item against what its writer provably knew, as Kleppmann's "Making CRDTs
//! Byzantine fault tolerant" (PaPoC 2022) does with updates linked by hashes; the Yjs protocol
//! does not link updates, and yrs keeps items' neighbours and order to itself. Both cases are
//! therefore ignored tests: they say what does not hold, and they pass once it does.

use std::collections::HashMap;

use quire_model::protocol;
use quire_model::schema::{doc_with_client_id, CONTENT};
use yrs::{ClientID, Doc, GetString, ReadTxn, Text, Transact};

/// What is written among the writers' edits, every seventh edit.
#[derive(Clone, Copy)]
enum Extra {
    Nothing,
    /// An item after a writer's last item, naming no right origin, under an id of its own.
    AtTheEnd,
    /// The same under the writer's own id, at its next clock (the fuzzer's `impostor`).
    UnderTheWritersId,
    /// An item under an id of its own whose neighbours are any two items of the writers'.
    ForgedNeighbours,
}

/// Three writers type at random places, each catching up with the server now and then, so
/// that many edits are concurrent; the server takes each edit as it comes, and `extra` items
/// among them. Returns how many of `trials` documents a fresh copy reads differently from the
/// server.
fn disagreements(trials: u32, extra: Extra) -> u32 {
    let mut seed = 987_654_321u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut differ = 0;
    for _ in 0..trials {
        let server = doc_with_client_id(1_000_000_000);
        let writers: Vec<Doc> = (1..=3).map(|i| doc_with_client_id(1_000_000 + i)).collect();
        let mut own_clocks: HashMap<u64, u32> = HashMap::new();
        for step in 0..120 {
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
            protocol::apply_bytes(&server, &writer.transact().encode_state_as_update_v1(&before)).unwrap();
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
                    let own = own_clocks.entry(victim).or_default();
                    *own += 3;
                    let known = server.transact().state_vector();
                    let mut any_item = || {
                        let writer = 1_000_001 + next() % 3;
                        let clock = known.get(&ClientID::new(writer));
                        (clock > 0).then(|| (writer, (next() % u64::from(clock)) as u32))
                    };
                    if let (Some(origin), Some(right)) = (any_item(), any_item()) {
                        let forged = between(2_000_000 + victim, *own - 3, origin, right, "IMP");
                        protocol::apply_bytes(&server, &forged).unwrap();
                    }
                    continue;
                }
            };
            protocol::apply_bytes(&server, &after(client, clock, (victim, last - 1), "IMP")).unwrap();
        }
        let fresh = doc_with_client_id(7);
        protocol::apply_bytes(&fresh, &protocol::full_state(&server)).unwrap();
        let read = |doc: &Doc| doc.get_or_insert_text(CONTENT).get_string(&doc.transact());
        if read(&server) != read(&fresh) {
            differ += 1;
        }
    }
    differ
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

#[test]
fn concurrent_edits_read_the_same_however_they_arrive() {
    assert_eq!(disagreements(300, Extra::Nothing), 0);
}

#[test]
fn items_placed_at_the_end_after_any_item_read_the_same_however_they_arrive() {
    assert_eq!(disagreements(300, Extra::AtTheEnd), 0);
}

#[test]
#[ignore = "an item under an absent writer's next id makes yrs order text by arrival (9 of 300 differ)"]
fn items_under_an_absent_writers_next_ids_read_the_same_however_they_arrive() {
    assert_eq!(disagreements(300, Extra::UnderTheWritersId), 0);
}

/// The only check a server can make of a pair of neighbours is against its own copy: the right
/// origin must not stand before the origin. (An item written concurrently with others names
/// neighbours that have other items between them on the server, so adjacency cannot be asked
/// for.) Tried in this model over 1,000 documents each, that check refused 8,348 forged items
/// and 7 honest edits, and 23 documents still read differently (159 without it); after
/// impostors it refused 1,353 honest edits (their neighbours are the impostor's text), and 55
/// differed (32 without it).
#[test]
#[ignore = "an item that names two items of the text as its neighbours makes yrs order text by arrival (55 of 300 differ)"]
fn items_with_forged_neighbours_read_the_same_however_they_arrive() {
    assert_eq!(disagreements(300, Extra::ForgedNeighbours), 0);
}
