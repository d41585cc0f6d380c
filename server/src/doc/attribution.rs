//! Who wrote what, as the document task sees it happen.
//!
//! Every Yjs item carries the client id of the replica that wrote it, and every y-websocket
//! client announces a presence under that same id (`user: {name, color}`, y-quill's
//! convention): the task records that mapping in the store when a connection that may edit
//! announces it, for ids the connection owns (a view-only connection, or one claiming another's
//! id, cannot put its name on someone else's text). Content that comes through the API is
//! recorded as imported; a restore, as restored.
//!
//! Deletions carry no client id in Yjs (a delete set is only ids): the task notes who sent each
//! one, by the client id its connection announced, and the next version keeps that with its
//! record. What the task never saw (another process's clients in a cluster, edits lost with a
//! crash before the next version) stays unattributed, and a comparison says who it may be.

use std::collections::HashMap;

use base64::Engine;
use serde::Deserialize;
use yrs::updates::decoder::Decode;
use yrs::updates::encoder::Encode;
use yrs::{ClientID, IdSet, Update};

use crate::store::history::{Author, Deletions};

/// Longest name or colour kept from a presence (a name is a few words; a colour, `#rrggbb`).
const MAX_LABEL_BYTES: usize = 200;

/// The part of a presence state attribution reads.
#[derive(Deserialize)]
pub struct Presence {
    user: Option<User>,
}

#[derive(Deserialize)]
struct User {
    name: Option<String>,
    color: Option<String>,
}

impl Presence {
    /// The author a presence names, if it names one.
    pub fn author(self) -> Option<Author> {
        let user = self.user?;
        let name = user.name.filter(|n| !n.trim().is_empty())?;
        Some(Author::Person {
            name: cut(name),
            color: user.color.map(cut),
        })
    }
}

fn cut(mut label: String) -> String {
    if label.len() > MAX_LABEL_BYTES {
        let mut end = MAX_LABEL_BYTES;
        while !label.is_char_boundary(end) {
            end -= 1;
        }
        label.truncate(end);
    }
    label
}

#[derive(Default)]
pub struct Attribution {
    /// What this task recorded (or found recorded) for each client id, so that each is written
    /// once unless it changes.
    recorded: HashMap<ClientID, Author>,
    /// Deletions since the last version, by the client id of whoever sent them.
    deletions: HashMap<ClientID, IdSet>,
}

impl Attribution {
    /// `client` is `author` from now on: what to write, if that is news.
    pub fn note(&mut self, client: ClientID, author: Author) -> Option<(u64, Author)> {
        if self.recorded.get(&client) == Some(&author) {
            return None;
        }
        self.recorded.insert(client, author.clone());
        Some((client.get(), author))
    }

    /// Whether anything is recorded for `client` (by this task).
    pub fn knows(&self, client: ClientID) -> bool {
        self.recorded.contains_key(&client)
    }

    /// `client`'s connection sent an update deleting `ids`.
    pub fn deleted(&mut self, client: ClientID, ids: &IdSet) {
        if !ids.is_empty() {
            self.deletions.entry(client).or_default().merge_with(ids.clone());
        }
    }

    /// Notes what `delta` (a transaction's own update, as applied) deleted as `client`'s.
    pub fn deleted_by(&mut self, client: ClientID, delta: &[u8]) {
        if let Ok(delta) = Update::decode_v1(delta) {
            self.deleted(client, delta.delete_set());
        }
    }

    /// The deletions noted since the last version, for the next one's record.
    pub fn take_deletions(&mut self) -> Vec<Deletions> {
        let mut taken: Vec<Deletions> = self
            .deletions
            .drain()
            .map(|(client, ids)| Deletions {
                client: client.get(),
                ids: base64::engine::general_purpose::STANDARD.encode(ids.encode_v1()),
            })
            .collect();
        taken.sort_by_key(|d| d.client);
        taken
    }

    /// Deletions taken for a version that was not written after all.
    pub fn put_back(&mut self, deletions: Vec<Deletions>) {
        for (client, ids) in decode_deletions(&deletions) {
            self.deleted(client, &ids);
        }
    }
}

/// A version record's deletions, decoded (unreadable entries are skipped: they only cost an
/// attribution).
pub fn decode_deletions(deletions: &[Deletions]) -> Vec<(ClientID, IdSet)> {
    use yrs::updates::decoder::Decode;
    deletions
        .iter()
        .filter_map(|d| {
            let bytes = base64::engine::general_purpose::STANDARD.decode(&d.ids).ok()?;
            Some((ClientID::new(d.client), IdSet::decode_v1(&bytes).ok()?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use yrs::ID;

    #[test]
    fn a_presence_names_its_author_within_bounds() {
        let read = |json: &str| serde_json::from_str::<Presence>(json).unwrap().author();
        assert_eq!(
            read(r##"{"user":{"name":"Ada","color":"#d93025"},"cursor":null}"##),
            Some(Author::Person { name: "Ada".into(), color: Some("#d93025".into()) })
        );
        assert_eq!(read(r#"{"user":{"name":"  "}}"#), None);
        assert_eq!(read(r#"{"cursor":1}"#), None);
        let long = format!(r#"{{"user":{{"name":"{}"}}}}"#, "é".repeat(300));
        let Some(Author::Person { name, .. }) = read(&long) else { panic!() };
        assert_eq!(name.len(), 200);
    }

    #[test]
    fn deletions_are_kept_by_sender_and_survive_a_round_trip() {
        let mut attribution = Attribution::default();
        let (ada, bob) = (ClientID::new(1), ClientID::new(2));
        let mut ids = IdSet::new();
        ids.insert(ID::new(ClientID::new(9), 3), 4);
        attribution.deleted(ada, &ids);
        let mut more = IdSet::new();
        more.insert(ID::new(ClientID::new(9), 7), 2);
        attribution.deleted(ada, &more);
        attribution.deleted(bob, &IdSet::new());
        let taken = attribution.take_deletions();
        assert_eq!(taken.len(), 1, "nobody for an empty set");
        let decoded = decode_deletions(&taken);
        assert!(decoded[0].1.contains(&ID::new(ClientID::new(9), 8)));
        assert!(!decoded[0].1.contains(&ID::new(ClientID::new(9), 9)));
        assert!(attribution.take_deletions().is_empty());
        attribution.put_back(taken.clone());
        assert_eq!(attribution.take_deletions(), taken);
        assert_eq!(attribution.note(ada, Author::Imported), Some((1, Author::Imported)));
        assert_eq!(attribution.note(ada, Author::Imported), None, "written once");
    }
}
