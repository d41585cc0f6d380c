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
//! Yjs 13.6 does the same. Given the updates of these tests' documents in the same order, it
//! read 5 of 300 (absent writer's id; yrs 9) and 54 of 300 (forged neighbours; yrs 54, every
//! document's two readings the same as yrs's) differently in a fresh copy.
//!
//! An item says what its writer knew only through the items it names, so a server cannot ask
//! that its neighbours be adjacent: a concurrent edit's are not. The one check yrs's public API
//! allows refuses too little and too much (see the comment on
//! `items_with_forged_neighbours_read_the_same_however_they_arrive`). A sound check would
//! place each item against what its writer provably knew, as Kleppmann's "Making CRDTs
//! Byzantine fault tolerant" (PaPoC 2022) does with updates linked by hashes; the Yjs protocol
//! does not link updates, and yrs keeps items' neighbours and order to itself. Both cases are
//! therefore ignored tests: they say what does not hold, and they pass once it does. What does
//! repair such a document is restoring an earlier version (the last test here, and
//! `history::restoring_a_version_repairs_a_document_whose_copies_read_differently`).
//!
//! The documents are made by [`quire_tests::neighbours`].

use quire_model::protocol;
use quire_model::revert::revert;
use quire_tests::neighbours::{disagreements, documents, fresh_copy, read, Extra};
use yrs::{ReadTxn, Transact};

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
/// for.) Tried here over 1,000 documents each, that check refused 8,367 forged items and 8
/// honest edits, and 21 documents still read differently (161 without it); after impostors it
/// refused 1,372 honest edits (their neighbours are the impostor's text), and 66 differed (32
/// without it). Without extra items it refused nothing.
#[test]
#[ignore = "an item that names two items of the text as its neighbours makes yrs order text by arrival (54 of 300 differ)"]
fn items_with_forged_neighbours_read_the_same_however_they_arrive() {
    assert_eq!(disagreements(300, Extra::ForgedNeighbours), 0);
}

/// What repairs such a document: restoring a version from before the extra items. As the
/// server restores, the edit is made on a fresh copy of the server's state; the server's copy
/// and a newcomer's then take it, and every copy must read the version.
#[test]
fn restoring_an_earlier_version_makes_every_copy_read_it() {
    let mut differed = 0;
    for extra in [Extra::UnderTheWritersId, Extra::ForgedNeighbours] {
        for doc in documents(300, extra) {
            let newcomer = fresh_copy(&doc.server);
            if read(&doc.server) == read(&newcomer) {
                continue;
            }
            differed += 1;
            let version = doc.version();
            let scratch = fresh_copy(&doc.server);
            let before = scratch.transact().state_vector();
            assert!(revert(&scratch, &version).unwrap(), "the restore changes something");
            let restore = scratch.transact().encode_diff_v1(&before);
            protocol::apply_bytes(&doc.server, &restore).unwrap();
            protocol::apply_bytes(&newcomer, &restore).unwrap();
            for copy in [&doc.server, &newcomer, &fresh_copy(&doc.server)] {
                assert_eq!(read(copy), read(&version));
            }
        }
    }
    assert!(differed > 50, "the documents read differently before the restore ({differed})");
}
