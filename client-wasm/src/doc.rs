//! `QuireDoc`, the JavaScript class: one document replica with its presence and its side of the
//! y-websocket protocol. JavaScript moves bytes between it and a WebSocket and renders what it
//! reports; it never decodes a message itself.
//!
//! ```js
//! const doc = new QuireDoc();
//! ws.onopen = () => doc.start().forEach((m) => ws.send(m));
//! ws.onmessage = (e) => {
//!   const c = doc.receive(new Uint8Array(e.data));
//!   c.replies.forEach((m) => ws.send(m));
//!   if (c.contentChange) quill.updateContents(c.contentChange, "api");
//! };
//! ws.onclose = () => doc.disconnected();
//! quill.on("text-change", (delta, _old, source) => {
//!   if (source !== "user") return;
//!   const m = doc.applyQuillDelta(delta);
//!   if (m && ws.readyState === WebSocket.OPEN) ws.send(m);
//! });
//! ```
//!
//! Every method takes `&self` and borrows the replica through a `RefCell`: a call that arrives
//! while another is running (it cannot today: the module calls no JavaScript callbacks) is
//! refused with an `Error` instead of aliasing the document. Every failure is a thrown `Error`.

use std::cell::RefCell;

use quire_model::schema;
use wasm_bindgen::prelude::*;

use crate::error::ClientError;
use crate::js;
use crate::replica::Replica;

#[wasm_bindgen]
pub struct QuireDoc {
    replica: RefCell<Replica>,
}

impl QuireDoc {
    fn with<T>(
        &self,
        f: impl FnOnce(&mut Replica) -> Result<T, ClientError>,
    ) -> Result<T, JsError> {
        let mut replica = self
            .replica
            .try_borrow_mut()
            .map_err(|_| js::error(ClientError::Busy))?;
        f(&mut replica).map_err(js::error)
    }
}

#[wasm_bindgen]
impl QuireDoc {
    /// An empty replica with a fresh random client id (`crypto.getRandomValues`).
    #[wasm_bindgen(constructor)]
    #[allow(clippy::new_without_default)] // a JS constructor; Default means nothing to JS
    pub fn new() -> QuireDoc {
        QuireDoc {
            replica: RefCell::new(Replica::new(schema::new_doc(), js::now)),
        }
    }

    /// This replica's Yjs client id (a number below 2^53). It changes when another client is
    /// found writing under it (as a Yjs `Doc`'s does): read it when needed, never keep it.
    #[wasm_bindgen(getter, js_name = clientId)]
    pub fn client_id(&self) -> Result<f64, JsError> {
        self.with(|r| Ok(r.client_id() as f64))
    }

    /// Messages to send when a connection opens (also after a reconnect): sync step 1, then our
    /// presence if we have one.
    #[wasm_bindgen(unchecked_return_type = "Uint8Array[]")]
    pub fn start(&self) -> Result<js_sys::Array, JsError> {
        self.with(|r| Ok(js::byte_arrays(r.start())))
    }

    /// A sync step 1 on its own, for a heartbeat: the server always answers it, after
    /// everything sent before it (`Changes.syncAnswers` counts the answers).
    pub fn heartbeat(&self) -> Result<Vec<u8>, JsError> {
        self.with(|r| Ok(r.heartbeat()))
    }

    /// Handles one binary WebSocket frame. Throws on bytes quire's protocol refuses (the frame
    /// then changed nothing); after any throw the safest course is to reconnect.
    #[wasm_bindgen(unchecked_return_type = "Changes")]
    pub fn receive(&self, frame: &[u8]) -> Result<JsValue, JsError> {
        self.with(|r| r.receive(frame).map(js::changes))
    }

    /// The socket closed: clears `synced` and the other clients' presence. Whether presence
    /// changed (re-render the cursors).
    pub fn disconnected(&self) -> Result<bool, JsError> {
        self.with(|r| Ok(r.disconnected()))
    }

    /// Applies a local Quill change (`text-change` with source "user"; a `Delta` or an op
    /// array) as one transaction. The update message to send, or `undefined` if it changed
    /// nothing.
    #[wasm_bindgen(js_name = applyQuillDelta)]
    pub fn apply_quill_delta(
        &self,
        #[wasm_bindgen(unchecked_param_type = "QuillOp[] | { ops: QuillOp[] }")] delta: JsValue,
    ) -> Result<Option<Vec<u8>>, JsError> {
        self.with(|r| r.apply_quill_delta(&js::to_any(&delta)?))
    }

    /// The whole body as Quill ops, for `quill.setContents`.
    #[wasm_bindgen(js_name = contentDelta, unchecked_return_type = "QuillOp[]")]
    pub fn content_delta(&self) -> Result<JsValue, JsError> {
        self.with(|r| Ok(js::ops(&r.content_delta())))
    }

    /// The document's title, `undefined` if it has none.
    pub fn title(&self) -> Result<Option<String>, JsError> {
        self.with(|r| Ok(r.title()))
    }

    /// Sets the title. The update message to send, or `undefined` if it was already that.
    #[wasm_bindgen(js_name = setTitle)]
    pub fn set_title(&self, title: &str) -> Result<Option<Vec<u8>>, JsError> {
        self.with(|r| Ok(r.set_title(title)))
    }

    /// Sets our presence (`null` clears it). The awareness message to send.
    #[wasm_bindgen(js_name = setLocalState)]
    pub fn set_local_state(
        &self,
        #[wasm_bindgen(unchecked_param_type = "Presence | null")] state: JsValue,
    ) -> Result<Vec<u8>, JsError> {
        self.with(|r| Ok(r.set_local_state(js::presence(&state)?)))
    }

    /// Our presence, or `null`.
    #[wasm_bindgen(js_name = localState, unchecked_return_type = "Presence | null")]
    pub fn local_state(&self) -> Result<JsValue, JsError> {
        self.with(|r| {
            Ok(r.local_state()
                .and_then(|s| js::parse(&s))
                .unwrap_or(JsValue::NULL))
        })
    }

    /// Every client's presence, ours included, keyed by client id.
    #[wasm_bindgen(js_name = awarenessStates, unchecked_return_type = "Record<string, Presence>")]
    pub fn awareness_states(&self) -> Result<JsValue, JsError> {
        self.with(|r| Ok(js::presences(r.awareness_states())))
    }

    /// Presence housekeeping; call every few seconds. `replies` (our renewed presence) are to
    /// be sent if connected; `awarenessChanged` when timed-out clients were dropped.
    #[wasm_bindgen(unchecked_return_type = "Changes")]
    pub fn tick(&self) -> Result<JsValue, JsError> {
        self.with(|r| {
            let (replies, awareness_changed) = r.tick();
            let synced = r.synced;
            Ok(js::changes(crate::replica::Changes {
                replies,
                synced,
                awareness_changed,
                ..Default::default()
            }))
        })
    }

    /// A Yjs relative position for a UTF-16 index into the body (for `cursor.anchor/head`).
    /// `assoc` as in Yjs: omitted or `>= 0` sticks to the next character, `< 0` to the previous.
    #[wasm_bindgen(js_name = relativePositionFromIndex, unchecked_return_type = "RelativePosition")]
    pub fn relative_position_from_index(
        &self,
        index: u32,
        assoc: Option<i32>,
    ) -> Result<JsValue, JsError> {
        self.with(|r| {
            let position = r.relative_position(index, assoc.unwrap_or(0));
            Ok(js::relative_position(&position, schema::CONTENT))
        })
    }

    /// The UTF-16 index a relative position points at now, or `undefined` if this replica
    /// cannot place it (yet).
    #[wasm_bindgen(js_name = indexFromRelativePosition)]
    pub fn index_from_relative_position(
        &self,
        #[wasm_bindgen(unchecked_param_type = "RelativePosition")] position: JsValue,
    ) -> Result<Option<u32>, JsError> {
        self.with(|r| {
            let position = crate::awareness::sticky_index(&js::to_any(&position)?)?;
            Ok(r.index_of(&position))
        })
    }

    /// The whole document as one update, for a local store (IndexedDB).
    #[wasm_bindgen(js_name = encodeState)]
    pub fn encode_state(&self) -> Result<Vec<u8>, JsError> {
        self.with(|r| Ok(r.encode_state()))
    }

    /// Applies a stored state (from `encodeState`, or any Yjs v1 update). `replies` carries
    /// what it added, for the server if connected.
    #[wasm_bindgen(js_name = applyState, unchecked_return_type = "Changes")]
    pub fn apply_state(&self, state: &[u8]) -> Result<JsValue, JsError> {
        self.with(|r| r.apply_state(state).map(js::changes))
    }
}
