//! The order of text must not depend on the order updates arrive in: a server that took them
//! one by one and a newcomer that loads the whole document at once must read the same text.
//!
//! That holds for items as Yjs makes them: an item's left and right neighbours (origin and
//! right origin) were next to each other in its creator's copy. An item that names an origin
//! but no right origin ("at the end") after an origin that had a right neighbour breaks that:
//! yrs 0.28 (like Yjs) then orders it by arrival. The fuzzer's `impostor` frames are such
//! items (an item after a writer's last one, with no right origin), and they made a fresh
//! client read other text than the server in one round of ten million frames (and an honest
//! replica in one of six million). A stock client never sends one; quire does not refuse
//! them yet (see the ignored test).

use quire_model::protocol;
use quire_model::schema::{doc_with_client_id, CONTENT};
use yrs::{ClientID, Doc, GetString, ReadTxn, Text, Transact};

/// Three writers type at random places, each catching up with the server now and then, so
/// that many edits are concurrent; the server takes each edit as it comes. With `impostors`,
/// every seventh edit is followed by an item under one of the writers' ids after its last
/// item, naming no right origin. Returns how many of `trials` documents a fresh copy reads
/// differently from the server.
fn disagreements(trials: u32, impostors: bool) -> u32 {
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
            if impostors && step % 7 == 3 {
                let client = 1_000_001 + next() % 3;
                let clock = server.transact().state_vector().get(&ClientID::new(client));
                if clock > 0 {
                    protocol::apply_bytes(&server, &after_last_item(client, clock, "IMP")).unwrap();
                }
            }
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

/// A v1 update with one string item of `client` at `clock`, after its item `clock - 1`, and
/// no right origin.
fn after_last_item(client: u64, clock: u32, text: &str) -> Vec<u8> {
    use yrs::encoding::write::Write;
    let mut update = Vec::new();
    update.write_var(1u32); // clients
    update.write_var(1u32); // blocks
    update.write_var(client);
    update.write_var(clock);
    update.push(0x80 | 4); // an origin, a string
    update.write_var(client);
    update.write_var(clock - 1);
    update.write_string(text);
    update.write_var(0u32); // no deletions
    update
}

#[test]
fn items_as_yjs_makes_them_read_the_same_however_they_arrive() {
    assert_eq!(disagreements(300, false), 0);
}

#[test]
#[ignore = "yrs orders items whose neighbours were never adjacent by arrival; quire does not refuse them yet"]
fn items_whose_neighbours_were_never_adjacent_read_the_same_however_they_arrive() {
    assert_eq!(disagreements(300, true), 0);
}
