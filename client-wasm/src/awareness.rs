//! Presence: y-protocols' awareness, with y-quill's conventions so stock Yjs clients and quire
//! browsers see each other: a state is JSON like `{user: {name, color}, cursor: {anchor, head}}`
//! where `anchor` and `head` are Yjs relative positions in their JSON form, exactly as
//! `Y.relativePositionToJSON` writes them: `{tname: "content", item: {client, clock}, assoc}`,
//! or `{tname: "content", assoc}` where there is no character to point at (an empty body, the end).

use std::collections::HashMap;
use std::sync::Arc;

use quire_model::schema;
use serde_json::{Map, Value};
use yrs::branch::{Branch, BranchPtr};
use yrs::sync::{AwarenessUpdate, Message};
use yrs::{Assoc, ClientID, StickyIndex, Text, Transact};

use crate::error::ClientError;
use crate::replica::Replica;

/// y-protocols' `outdatedTimeout`: a remote state not renewed for this long is dropped, and a
/// client renews its own after half of it (y-protocols awareness.js uses the same 30 s).
pub const OUTDATED_MS: u64 = 30_000;

/// Yjs client ids are JavaScript numbers: at most 2^53 - 1 (yrs asserts this in debug builds).
const MAX_CLIENT_ID: u64 = (1 << 53) - 1;

impl Replica {
    /// Sets (or with `null` clears) our presence; the awareness message to send.
    pub fn set_local_state(&mut self, state: &Value) -> Result<Vec<u8>, ClientError> {
        if state.is_null() {
            self.awareness.clean_local_state();
        } else {
            self.awareness
                .set_local_state_raw(serde_json::to_string(state)?);
        }
        Ok(self.own_awareness_message())
    }

    pub fn local_state(&self) -> Option<Value> {
        let raw = self.awareness.local_state_raw()?;
        serde_json::from_str(&raw).ok()
    }

    /// Every client with a presence, ours included, keyed by client id (as a decimal string, the
    /// way a JavaScript object holds a numeric key). States that are not JSON are left out.
    pub fn awareness_states(&self) -> Map<String, Value> {
        self.awareness
            .iter()
            .filter_map(|(client, state)| {
                let state = serde_json::from_str(state.data.as_deref()?).ok()?;
                Some((client.get().to_string(), state))
            })
            .collect()
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

    /// A Yjs relative position (JSON) for a UTF-16 index into the body. `assoc` as in Yjs:
    /// `>= 0` sticks to the character after the index, `< 0` to the one before.
    pub fn relative_position(&self, index: u32, assoc: i32) -> Value {
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
        let position = StickyIndex::at(&txn, branch, index, assoc)
            .unwrap_or_else(|| StickyIndex::from_type(&txn, &self.text, assoc));
        let mut json = serde_json::to_value(&position).unwrap_or(Value::Null);
        // yrs writes one of `item` / `tname`; Yjs also names the root type next to an item.
        // Both read either form, but equal JSON lets a UI compare cursors without decoding.
        if let Value::Object(fields) = &mut json {
            if fields.contains_key("item") {
                fields.insert("tname".into(), schema::CONTENT.into());
            }
        }
        json
    }

    /// The UTF-16 index a Yjs relative position (JSON) points at now, or `None` if it points
    /// somewhere this replica does not know (yet) or outside the body.
    pub fn index_of(&self, position: &Value) -> Result<Option<u32>, ClientError> {
        for scope in ["item", "type"] {
            if let Some(client) = position.get(scope).and_then(|id| id.get("client")) {
                if client.as_u64().is_none_or(|c| c > MAX_CLIENT_ID) {
                    return Err(ClientError::BadJson(format!(
                        "{scope}.client is not a Yjs client id"
                    )));
                }
            }
        }
        let position: StickyIndex = serde_json::from_value(position.clone())?;
        let txn = self.doc().transact();
        let Some(offset) = position.get_offset(&txn) else {
            return Ok(None);
        };
        let ours = self.branch();
        Ok((offset.branch == ours).then_some(offset.index))
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
