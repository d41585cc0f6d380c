//! Every conversion between Rust values and JavaScript values, and the TypeScript types the
//! generated `quire_client.d.ts` exports for them. Structured values cross as JSON (one
//! `JSON.parse` / `JSON.stringify`), which keeps serde-wasm-bindgen and its code size out of the
//! module; bytes cross as `Uint8Array`.

use js_sys::{Array, Object, Reflect, Uint8Array, JSON};
use serde_json::Value;
use wasm_bindgen::prelude::*;

use crate::error::ClientError;
use crate::replica::Changes;

#[wasm_bindgen(typescript_custom_section)]
const TYPES: &'static str = r#"
/** One Quill Delta op; positions and lengths count UTF-16 code units. */
export type QuillOp =
  | { insert: string | Record<string, unknown>; attributes?: Record<string, unknown> }
  | { retain: number; attributes?: Record<string, unknown> }
  | { delete: number };

/** What a frame from the server (or a stored state) did. */
export interface Changes {
  /** Messages to send on the socket now, in order. */
  replies: Uint8Array[];
  /** The initial sync of this connection has completed. */
  synced: boolean;
  /** The remote change to the body as Quill ops (`quill.updateContents(ops, "api")`), or null. */
  contentChange: QuillOp[] | null;
  titleChanged: boolean;
  awarenessChanged: boolean;
}

/** A Yjs relative position in `Y.relativePositionToJSON` form. */
export interface RelativePosition {
  item?: { client: number; clock: number };
  type?: { client: number; clock: number };
  tname?: string;
  assoc?: number;
}

/** A presence state as y-quill shares it; other fields pass through untouched. */
export interface Presence {
  user?: { name: string; color: string };
  cursor?: { anchor: RelativePosition; head: RelativePosition } | null;
  [field: string]: unknown;
}
"#;

/// The browser's wall clock for presence timestamps (yrs has no clock on wasm32-unknown-unknown).
pub fn now() -> u64 {
    js_sys::Date::now() as u64
}

/// A JavaScript `Error` carrying the message; a `Result` error, never a panic.
pub fn error(e: ClientError) -> JsError {
    JsError::new(&e.to_string())
}

/// A JavaScript value as JSON (via `JSON.stringify`, so Quill's `Delta` objects work as is).
pub fn to_json(value: &JsValue) -> Result<Value, ClientError> {
    let text = JSON::stringify(value)
        .ok()
        .and_then(|s| s.as_string())
        .ok_or_else(|| ClientError::BadJson("not representable as JSON".into()))?;
    Ok(serde_json::from_str(&text)?)
}

/// JSON as a JavaScript value (via `JSON.parse`; serde_json only writes valid JSON).
pub fn from_json(value: &Value) -> JsValue {
    JSON::parse(&value.to_string()).unwrap_or(JsValue::NULL)
}

/// A list of messages as an array of `Uint8Array`s.
pub fn byte_arrays(messages: Vec<Vec<u8>>) -> Array {
    messages
        .iter()
        .map(|m| JsValue::from(Uint8Array::from(m.as_slice())))
        .collect()
}

/// [`Changes`] as the `Changes` interface above.
pub fn changes(changes: Changes) -> JsValue {
    let object = Object::new();
    let content = changes
        .content
        .map_or(JsValue::NULL, |ops| from_json(&Value::Array(ops)));
    let fields: [(&str, JsValue); 5] = [
        ("replies", byte_arrays(changes.replies).into()),
        ("synced", changes.synced.into()),
        ("contentChange", content),
        ("titleChanged", changes.title_changed.into()),
        ("awarenessChanged", changes.awareness_changed.into()),
    ];
    for (key, value) in fields {
        // Setting a data property on a fresh plain object cannot fail.
        let _ = Reflect::set(&object, &key.into(), &value);
    }
    object.into()
}
