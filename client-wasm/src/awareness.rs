//! Presence: y-protocols' awareness, with y-quill's conventions so stock Yjs clients and quire
//! browsers see each other: a state is JSON like `{user: {name, color}, cursor: {anchor, head}}`
//! where `anchor` and `head` are Yjs relative positions in their JSON form, exactly as
//! `Y.relativePositionToJSON` writes them: `{tname: "content", item: {client, clock}, assoc}`,
//! or `{tname: "content", assoc}` where there is no character to point at (an empty body, the end).

use std::collections::HashMap;
use std::sync::Arc;

use yrs::branch::{Branch, BranchPtr};
use yrs::sync::{AwarenessUpdate, Message};
use yrs::{Any, Assoc, ClientID, IndexScope, Number, StickyIndex, Text, Transact, ID};

use crate::error::ClientError;
use crate::replica::Replica;

/// y-protocols' `outdatedTimeout`: a remote state not renewed for this long is dropped, and a
/// client renews its own after half of it (y-protocols awareness.js uses the same 30 s).
pub const OUTDATED_MS: u64 = 30_000;

/// Yjs client ids are JavaScript numbers: at most 2^53 - 1 (yrs asserts this in debug builds).
const MAX_CLIENT_ID: u64 = (1 << 53) - 1;

impl Replica {
    /// Sets (or with `None` clears) our presence, a JSON text (JavaScript's `JSON.stringify`
    /// writes it: presence crosses as the JSON y-protocols carries anyway, so the module holds
    /// no JSON parser of its own); the awareness message to send.
    pub fn set_local_state(&mut self, state: Option<String>) -> Vec<u8> {
        match state {
            Some(json) => self.awareness.set_local_state_raw(json),
            None => self.awareness.clean_local_state(),
        }
        self.own_awareness_message()
    }

    /// Our presence as JSON text, if we have one.
    pub fn local_state(&self) -> Option<Arc<str>> {
        self.awareness.local_state_raw()
    }

    /// Every client with a presence, ours included, with its state as JSON text (the caller
    /// parses it and leaves out states that are not JSON), in client id order.
    pub fn awareness_states(&self) -> Vec<(u64, Arc<str>)> {
        let mut states: Vec<(u64, Arc<str>)> = self
            .awareness
            .iter()
            .filter_map(|(client, state)| Some((client.get(), state.data?)))
            .collect();
        states.sort_unstable_by_key(|(client, _)| *client);
        states
    }

    /// Housekeeping, to call every few seconds (y-protocols checks every 3 s): renews our
    /// presence when half the timeout has passed and drops remote presences older than the
    /// timeout. The messages to send, and whether presence changed.
    pub fn tick(&mut self) -> (Vec<Vec<u8>>, bool) {
        let now = self.clock.now();
        let me = self.awareness.client_id();
        let mut messages = Vec::new();
        if let (Some(state), Some((_, updated))) =
            (self.awareness.local_state_raw(), self.awareness.meta(me))
        {
            if now.saturating_sub(updated) >= OUTDATED_MS / 2 {
                self.awareness.set_local_state_raw(state);
                messages.push(self.own_awareness_message());
            }
        }
        let stale: Vec<ClientID> = self
            .awareness
            .iter()
            .filter(|(client, state)| {
                *client != me
                    && state.data.is_some()
                    && now.saturating_sub(state.last_updated) >= OUTDATED_MS
            })
            .map(|(client, _)| client)
            .collect();
        for &client in &stale {
            self.awareness.remove_state(client);
        }
        (messages, !stale.is_empty())
    }

    /// A Yjs relative position for a UTF-16 index into the body. `assoc` as in Yjs: `>= 0`
    /// sticks to the character after the index, `< 0` to the one before. `js.rs` writes it in
    /// `Y.relativePositionToJSON` form.
    pub fn relative_position(&self, index: u32, assoc: i32) -> StickyIndex {
        let assoc = if assoc < 0 {
            Assoc::Before
        } else {
            Assoc::After
        };
        let txn = self.doc().transact();
        let index = index.min(self.text.len(&txn));
        let branch = self.branch();
        // At the very end yrs has no item to point at; Yjs then points at the type itself
        // (`{tname: "content"}`), which resolves to its end: the same here.
        StickyIndex::at(&txn, branch, index, assoc)
            .unwrap_or_else(|| StickyIndex::from_type(&txn, &self.text, assoc))
    }

    /// The UTF-16 index a relative position points at now, or `None` if it points somewhere
    /// this replica does not know (yet) or outside the body.
    pub fn index_of(&self, position: &StickyIndex) -> Option<u32> {
        let txn = self.doc().transact();
        let offset = position.get_offset(&txn)?;
        (offset.branch == self.branch()).then_some(offset.index)
    }

    fn branch(&self) -> BranchPtr {
        BranchPtr::from(AsRef::<Branch>::as_ref(&self.text))
    }

    /// Our presence as an awareness message (a `null` state if we have none).
    pub(crate) fn own_awareness_message(&self) -> Vec<u8> {
        let me = self.awareness.client_id();
        match self.awareness.update_with_clients([me]) {
            Ok(update) => quire_model::protocol::encode(&Message::Awareness(update)),
            // We have never had a state: say "none" the way y-protocols does (clock 0, null).
            Err(_) => {
                let mut update = AwarenessUpdate {
                    clients: Default::default(),
                };
                update.clients.insert(
                    me,
                    yrs::sync::awareness::AwarenessUpdateEntry {
                        clock: 0,
                        json: "null".into(),
                    },
                );
                quire_model::protocol::encode(&Message::Awareness(update))
            }
        }
    }

    /// Our presence, if we have one: what a new connection announces.
    pub(crate) fn local_awareness_message(&self) -> Option<Vec<u8>> {
        self.awareness
            .local_state_raw()
            .map(|_| self.own_awareness_message())
    }

    /// Every presence we know (the answer to an awareness query), if there is any.
    pub(crate) fn all_awareness_message(&self) -> Option<Vec<u8>> {
        let update = self
            .awareness
            .update()
            .ok()
            .filter(|u| !u.clients.is_empty())?;
        Some(quire_model::protocol::encode(&Message::Awareness(update)))
    }

    /// Drops every presence but ours; whether there was any.
    pub(crate) fn forget_remote_presence(&mut self) -> bool {
        let me = self.awareness.client_id();
        let others: Vec<ClientID> = self
            .awareness
            .iter()
            .filter(|(client, state)| *client != me && state.data.is_some())
            .map(|(client, _)| client)
            .collect();
        for &client in &others {
            self.awareness.remove_state(client);
        }
        !others.is_empty()
    }

    /// Applies a remote awareness update: whether any state visibly changed (a renewal of an
    /// unchanged state is not a change), and a message to send if a peer declared us gone
    /// while we are here (y-protocols answers that with our state at a higher clock).
    pub(crate) fn apply_presence(&mut self, update: AwarenessUpdate) -> (bool, Option<Vec<u8>>) {
        let me = self.awareness.client_id();
        let declared_gone = update.clients.get(&me).is_some_and(|e| &*e.json == "null");
        let states = |awareness: &yrs::sync::Awareness| -> HashMap<ClientID, Option<Arc<str>>> {
            awareness
                .iter()
                .map(|(client, state)| (client, state.data))
                .collect()
        };
        let before = states(&self.awareness);
        let clients: Vec<ClientID> = update.clients.keys().copied().collect();
        // Only `ClientNotFound` and serialisation errors exist, neither possible when applying.
        let _ = self.awareness.apply_update(update);
        let after = states(&self.awareness);
        let data =
            |map: &HashMap<ClientID, Option<Arc<str>>>, c: &ClientID| map.get(c).cloned().flatten();
        let changed = clients.iter().any(|c| data(&before, c) != data(&after, c));
        let reply = (declared_gone && self.awareness.local_state_raw().is_some())
            .then(|| self.own_awareness_message());
        (changed, reply)
    }

    /// Makes our next presence message newer than what the server holds for us. When a
    /// connection ends, the server marks our state gone one clock tick later than the last it
    /// saw, and a state at an equal clock loses to "gone"; two ticks win.
    pub(crate) fn outrun_departure(&mut self) {
        if let Some(state) = self.awareness.local_state_raw() {
            self.awareness.set_local_state_raw(state.clone());
            self.awareness.set_local_state_raw(state);
        }
    }
}

/// A Yjs relative position in `Y.relativePositionToJSON` form, as JSON-like data from
/// JavaScript: `{item: {client, clock}}`, `{type: {client, clock}}` or `{tname}`, each with an
/// optional `assoc` (`0` after, `-1` before; Yjs's values). Anything else is refused.
pub fn sticky_index(position: &Any) -> Result<StickyIndex, ClientError> {
    let Any::Map(fields) = position else {
        return Err(bad_position("a relative position is an object"));
    };
    if let Some(key) = fields
        .keys()
        .find(|k| !matches!(k.as_str(), "item" | "type" | "tname" | "assoc"))
    {
        return Err(ClientError::BadJson(format!("unknown field \"{key}\"")));
    }
    let id = |scope: &str| {
        fields
            .get(scope)
            .filter(|id| !matches!(id, Any::Null | Any::Undefined))
            .map(|id| yjs_id(scope, id))
            .transpose()
    };
    // Yjs writes `tname` next to `item`; the item decides, as in yrs's own decoding.
    let scope = if let Some(id) = id("item")? {
        IndexScope::Relative(id)
    } else if let Some(name) = fields
        .get("tname")
        .filter(|name| !matches!(name, Any::Null | Any::Undefined))
    {
        match name {
            Any::String(name) => IndexScope::Root(name.clone()),
            _ => return Err(bad_position("tname is a string")),
        }
    } else if let Some(id) = id("type")? {
        IndexScope::Nested(id)
    } else {
        return Err(bad_position("expected item, type or tname"));
    };
    let assoc = match fields.get("assoc") {
        None | Some(Any::Null | Any::Undefined) | Some(Any::Number(Number::Int(0))) => Assoc::After,
        Some(Any::Number(Number::Int(-1))) => Assoc::Before,
        Some(_) => return Err(bad_position("assoc is 0 or -1")),
    };
    Ok(StickyIndex::new(scope, assoc))
}

/// `{client, clock}`, with a client id Yjs can hold (a JavaScript number below 2^53).
fn yjs_id(scope: &str, id: &Any) -> Result<ID, ClientError> {
    let int = |field: &str| match id {
        Any::Map(id) => match id.get(field) {
            Some(Any::Number(Number::Int(n))) => u64::try_from(*n).ok(),
            _ => None,
        },
        _ => None,
    };
    match (
        int("client"),
        int("clock").and_then(|c| u32::try_from(c).ok()),
    ) {
        (Some(client), Some(clock)) if client <= MAX_CLIENT_ID => {
            Ok(ID::new(ClientID::new(client), clock))
        }
        _ => Err(ClientError::BadJson(format!(
            "{scope} is not {{client, clock}} with a Yjs client id"
        ))),
    }
}

fn bad_position(why: &str) -> ClientError {
    ClientError::BadJson(why.to_owned())
}
