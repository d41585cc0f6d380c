use yrs::types::text::YChange;
use yrs::types::Attrs;
use yrs::{Any, Doc, Map, ReadTxn, Text, Transact};

use super::*;
use crate::revert;
use crate::schema::{doc_with_client_id, CONTENT, META, TITLE};

/// Brings `to` up to `from`'s state.
fn sync(from: &Doc, to: &Doc) {
    let sv = to.transact().state_vector();
    let update = from.transact().encode_state_as_update_v1(&sv);
    to.transact_mut().apply_update(Update::decode_v1(&update).unwrap()).unwrap();
}

/// A copy of `doc` as it is now (a version).
fn copy(doc: &Doc) -> Doc {
    let copy = doc_with_client_id(999);
    sync(doc, &copy);
    copy
}

fn insert(doc: &Doc, index: u32, s: &str) {
    let text = doc.get_or_insert_text(CONTENT);
    text.insert(&mut doc.transact_mut(), index, s);
}

/// The body as runs of text with their formatting: attributes sorted, neighbours with equal
/// formatting merged (yrs may cut a run where a marker was), so that equal bodies print alike.
fn delta(doc: &Doc) -> String {
    let text = doc.get_or_insert_text(CONTENT);
    let mut runs: Vec<(String, std::collections::BTreeMap<String, String>)> = Vec::new();
    for chunk in text.diff(&doc.transact(), YChange::identity) {
        let attrs = chunk
            .attributes
            .iter()
            .flat_map(|a| a.iter())
            .filter(|(_, v)| **v != Any::Null)
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let insert = match chunk.insert {
            yrs::Out::Any(Any::String(s)) => s.to_string(),
            other => format!("{other:?}"),
        };
        match runs.last_mut() {
            Some((last, last_attrs)) if *last_attrs == attrs => last.push_str(&insert),
            _ => runs.push((insert, attrs)),
        }
    }
    format!("{runs:?}")
}

fn bold() -> Attrs {
    Attrs::from([("bold".into(), Any::Bool(true))])
}

/// The text of the spans with `change`, and for inserted ones, by whose client.
fn texts(comparison: &Comparison, change: Change, client: Option<u64>) -> String {
    comparison
        .spans
        .iter()
        .filter(|s| s.change == change)
        .filter(|s| client.is_none_or(|c| s.item.map(|i| i.client.get()) == Some(c)))
        .map(|s| match &s.insert {
            Any::String(s) => s.to_string(),
            other => format!("{other:?}"),
        })
        .collect()
}

#[test]
fn interleaved_insertions_are_told_apart_by_client() {
    let (ada, bob) = (doc_with_client_id(1), doc_with_client_id(2));
    insert(&ada, 0, "Hello world\n");
    sync(&ada, &bob);
    let before = copy(&ada);
    // Keystroke by keystroke, each seeing the other's: Ada types at the end of "Hello", Bob
    // after "world", then each again.
    for (who, at, s) in [(&ada, 5, ","), (&bob, 12, "!"), (&ada, 6, " dear"), (&bob, 18, " Hi")] {
        insert(who, at, s);
        sync(who, if std::ptr::eq(who, &ada) { &bob } else { &ada });
    }
    assert_eq!(plain_text(&ada), "Hello, dear world! Hi\n");
    let comparison = compare(&before, &ada).unwrap();
    assert_eq!(texts(&comparison, Change::Inserted, Some(1)), ", dear");
    assert_eq!(texts(&comparison, Change::Inserted, Some(2)), "! Hi");
    assert_eq!(texts(&comparison, Change::Kept, None), "Hello world\n");
    assert_eq!(texts(&comparison, Change::Deleted, None), "");
    // In document order, each run where it is.
    let order: Vec<(Change, String)> = comparison.spans.iter().map(|s| (s.change, format!("{:?}", s.insert))).collect();
    assert_eq!(order.len(), 5, "{order:?}");
}

#[test]
fn deleted_text_keeps_its_content_formatting_and_item() {
    let ada = doc_with_client_id(1);
    let text = ada.get_or_insert_text(CONTENT);
    text.insert_with_attributes(&mut ada.transact_mut(), 0, "Budget", bold());
    insert(&ada, 6, " table 😀 here\n");
    let before = copy(&ada);
    // Bob deletes "Budget" and the emoji (a surrogate pair: two units).
    let bob = doc_with_client_id(2);
    sync(&ada, &bob);
    let text = bob.get_or_insert_text(CONTENT);
    text.remove_range(&mut bob.transact_mut(), 13, 3);
    text.remove_range(&mut bob.transact_mut(), 0, 6);
    let comparison = compare(&before, &bob).unwrap();
    let deleted: Vec<&Span> = comparison.spans.iter().filter(|s| s.change == Change::Deleted).collect();
    assert_eq!(deleted.len(), 2, "{:?}", comparison.spans);
    assert_eq!(deleted[0].insert, Any::from("Budget"));
    assert_eq!(deleted[0].attributes.as_deref(), Some(&bold()), "deleted text keeps its formatting");
    assert_eq!(deleted[0].item, Some(ID::new(yrs::ClientID::new(1), 1)), "and names the item it was (after the bold marker)");
    assert_eq!(deleted[1].insert, Any::from("😀 "));
    assert_eq!(texts(&comparison, Change::Kept, None), " table here\n");
}

#[test]
fn formatting_changes_are_noted_with_both_formattings() {
    let ada = doc_with_client_id(1);
    insert(&ada, 0, "plain words here\n");
    let before = copy(&ada);
    let text = ada.get_or_insert_text(CONTENT);
    text.format(&mut ada.transact_mut(), 6, 5, bold());
    let comparison = compare(&before, &ada).unwrap();
    let formatted: Vec<&Span> = comparison.spans.iter().filter(|s| s.change == Change::Formatted).collect();
    assert_eq!(formatted.len(), 1, "{:?}", comparison.spans);
    assert_eq!(formatted[0].insert, Any::from("words"));
    assert_eq!(formatted[0].attributes.as_deref(), Some(&bold()));
    assert!(formatted[0].old_attributes.as_ref().is_none_or(|a| a.is_empty()));
    assert_eq!(texts(&comparison, Change::Kept, None), "plain  here\n");
}

#[test]
fn reverting_turns_the_newer_state_back_into_the_older_one_in_one_transaction() {
    let ada = doc_with_client_id(1);
    let text = ada.get_or_insert_text(CONTENT);
    text.insert(&mut ada.transact_mut(), 0, "Title line\nSecond line is here\n");
    text.format(&mut ada.transact_mut(), 10, 1, Attrs::from([("header".into(), Any::from(1.0))]));
    text.format(&mut ada.transact_mut(), 11, 6, bold());
    ada.get_or_insert_map(META).insert(&mut ada.transact_mut(), TITLE, "Old");
    let version = copy(&ada);
    // Everything changes: text in the middle, formatting off and on, a deletion, the title.
    text.remove_range(&mut ada.transact_mut(), 0, 6);
    text.insert(&mut ada.transact_mut(), 10, "NEW ");
    text.format(&mut ada.transact_mut(), 5, 6, Attrs::from([("bold".into(), Any::Null), ("italic".into(), Any::Bool(true))]));
    ada.get_or_insert_map(META).insert(&mut ada.transact_mut(), TITLE, "New");
    assert_ne!(delta(&ada), delta(&version));

    // An offline replica holds the state before the restore and types into kept text.
    let offline = doc_with_client_id(3);
    sync(&ada, &offline);
    let far = plain_text(&offline).find("is").unwrap() as u32;
    insert(&offline, far, "(offline) ");

    let server = doc_with_client_id(7);
    sync(&ada, &server);
    let before = server.transact().state_vector();
    assert!(revert::revert(&server, &version).unwrap());
    assert_eq!(delta(&server), delta(&version), "the body is the version's again");
    let title = server.get_or_insert_map(META).get(&server.transact(), TITLE).map(|v| v.to_string(&server.transact()));
    assert_eq!(title.as_deref(), Some("Old"));

    // Restoring changed no kept item: the offline edit lands where it was typed.
    let restore = server.transact().encode_state_as_update_v1(&before);
    offline.transact_mut().apply_update(Update::decode_v1(&restore).unwrap()).unwrap();
    sync(&offline, &server);
    assert_eq!(plain_text(&server), "Title line\nSecond line (offline) is here\n");
    assert_eq!(delta(&server), delta(&offline));
}

#[test]
fn nothing_to_revert_changes_nothing() {
    let ada = doc_with_client_id(1);
    insert(&ada, 0, "same\n");
    let comparison = compare(&copy(&ada), &ada).unwrap();
    assert!(comparison.spans.iter().all(|s| s.change == Change::Kept));
    assert!(!revert::revert(&ada, &copy(&ada)).unwrap());
}

#[test]
fn reverting_to_a_version_restored_already_changes_nothing() {
    let ada = doc_with_client_id(1);
    insert(&ada, 0, "alpha beta gamma\n");
    let version = copy(&ada);
    let text = ada.get_or_insert_text(CONTENT);
    text.remove_range(&mut ada.transact_mut(), 6, 5);
    assert!(revert::revert(&ada, &version).unwrap());
    assert_eq!(plain_text(&ada), "alpha beta gamma\n");
    // "beta " is new text now, not the version's items; the body reads alike all the same.
    let comparison = compare(&version, &ada).unwrap();
    assert!(comparison.spans.iter().any(|s| s.change == Change::Inserted));
    let before = ada.transact().state_vector();
    assert!(!revert::revert(&ada, &version).unwrap());
    assert_eq!(ada.transact().state_vector(), before, "nothing written");
}

/// A small deterministic generator (xorshift), so that a failing seed replays.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u32) -> u32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % u64::from(n.max(1))) as u32
    }
}

/// Random typing, deleting and formatting by two people; comparing any earlier state with the
/// last one and reverting to it gives that state back exactly, formatting included.
#[test]
fn reverting_to_any_earlier_state_of_random_edits_gives_it_back() {
    for seed in 1..=200u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let people = [doc_with_client_id(1), doc_with_client_id(2)];
        let mut versions = Vec::new();
        for step in 0..60 {
            let who = &people[rng.below(2) as usize];
            let text = who.get_or_insert_text(CONTENT);
            let len = text.len(&who.transact());
            match rng.below(5) {
                0 | 1 => {
                    // No surrogate pairs: a random deletion could cut one in half, which an editor
                    // never does (and yrs would keep half a character).
                    let words = ["a", "bc ", "déf", "文", "\n", "ghij "];
                    let word = words[rng.below(words.len() as u32) as usize];
                    let at = rng.below(len + 1);
                    text.insert(&mut who.transact_mut(), at, word);
                }
                2 if len > 0 => {
                    let at = rng.below(len);
                    let n = 1 + rng.below((len - at).min(4));
                    text.remove_range(&mut who.transact_mut(), at, n);
                }
                _ if len > 0 => {
                    let at = rng.below(len);
                    let n = 1 + rng.below((len - at).min(6));
                    let value = if rng.below(3) == 0 { Any::Null } else { Any::Bool(true) };
                    let key = ["bold", "italic", "underline"][rng.below(3) as usize];
                    text.format(&mut who.transact_mut(), at, n, Attrs::from([(key.into(), value)]));
                }
                _ => {}
            }
            let (a, b) = (&people[0], &people[1]);
            sync(a, b);
            sync(b, a);
            if step % 7 == 0 {
                versions.push(copy(a));
            }
        }
        let now = &people[0];
        for (n, version) in versions.iter().enumerate() {
            let restored = copy(now);
            revert::revert(&restored, version).unwrap_or_else(|e| panic!("seed {seed} version {n}: {e}"));
            assert_eq!(plain_text(&restored), plain_text(version), "seed {seed} version {n}: text");
            assert_eq!(delta(&restored), delta(version), "seed {seed} version {n}: formatting");
        }
    }
}
