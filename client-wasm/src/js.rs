//! Every conversion between Rust values and JavaScript values, and the TypeScript types the
//! generated `quire_client.d.ts` exports for them. Structured values are read and written
//! field by field (`Reflect`), into and out of typed Rust values: yrs's JSON-like [`Any`] for
//! what JavaScript hands over (validated by `quill` and `awareness`), [`Op`]s and
//! [`StickyIndex`]es for what goes back. Presence states are JSON text on the Rust side (as
//! y-protocols carries them), so they cross with one `JSON.stringify` / `JSON.parse`. None of
//! this uses serde: serde_json's `Value` and its printer are some 18 KB of gzipped module
//! (`cargo xtask wasm`), and serde-wasm-bindgen would cost as much. Bytes cross as `Uint8Array`.

use std::collections::HashMap;

use js_sys::{Array, Object, Reflect, Uint8Array, JSON};
use wasm_bindgen::prelude::*;
use yrs::types::Attrs;
use yrs::{Any, IndexScope, Number, StickyIndex, ID};

use crate::error::ClientError;
use crate::quill::Op;
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
  /** Answers (sync step 2) to our sync step 1s in this frame: `start()`'s and `heartbeat()`'s,
   * in the order they were sent. */
  syncAnswers: number;
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

/// How deep [`to_any`] follows nested arrays and objects. A Quill delta or a relative position
/// is four levels deep; the bound turns a cyclic object (which `JSON.stringify` refuses) into
/// an error instead of a stack overflow, which would trap and take the module down.
const MAX_DEPTH: u32 = 64;

/// A JavaScript value as yrs's JSON-like [`Any`], with `JSON.stringify`'s rules (so Quill's
/// `Delta` objects work as they are): own enumerable properties, `undefined` and functions left
/// out of objects and `null` in arrays, non-finite numbers `null`. A whole number is an integer,
/// as serde_json reads it from JSON text, so formats compare and encode as before.
pub fn to_any(value: &JsValue) -> Result<Any, ClientError> {
    to_any_at(value, 0)?.ok_or_else(not_json)
}

/// `None` for what `JSON.stringify` leaves out (`undefined`, functions, symbols).
fn to_any_at(value: &JsValue, depth: u32) -> Result<Option<Any>, ClientError> {
    if value.is_undefined() || value.is_function() || value.is_symbol() {
        return Ok(None);
    }
    if depth > MAX_DEPTH {
        return Err(ClientError::BadJson("nested too deeply".into()));
    }
    let any = if value.is_null() {
        Any::Null
    } else if let Some(b) = value.as_bool() {
        Any::Bool(b)
    } else if let Some(n) = value.as_f64() {
        number(n)
    } else if let Some(s) = value.as_string() {
        Any::String(s.into())
    } else if Array::is_array(value) {
        let items = Array::from(value)
            .iter()
            .map(|item| Ok(to_any_at(&item, depth + 1)?.unwrap_or(Any::Null)))
            .collect::<Result<Vec<_>, ClientError>>()?;
        Any::Array(items.into())
    } else if value.is_object() {
        let object = Object::from(value.clone());
        let mut map = HashMap::new();
        for key in Object::keys(&object).iter() {
            let field = Reflect::get(&object, &key).map_err(|_| not_json())?;
            if let (Some(key), Some(field)) = (key.as_string(), to_any_at(&field, depth + 1)?) {
                map.insert(key, field);
            }
        }
        Any::Map(map.into())
    } else {
        // A BigInt: `JSON.stringify` throws on those too.
        return Err(not_json());
    };
    Ok(Some(any))
}

/// Integers where JSON text would hold one (below 1e21 `JSON.stringify` writes no exponent);
/// other numbers stay floats.
fn number(n: f64) -> Any {
    const I64_RANGE: f64 = 9_223_372_036_854_775_808.0; // 2^63
    if !n.is_finite() {
        Any::Null
    } else if n.fract() == 0.0 && n.abs() < I64_RANGE {
        Any::Number(Number::Int(n as i64))
    } else {
        Any::Number(Number::Float(n))
    }
}

fn not_json() -> ClientError {
    ClientError::BadJson("not representable as JSON".into())
}

/// [`Any`] as a JavaScript value, the way JSON would carry it (`undefined` becomes `null`, a
/// buffer an array of numbers).
pub fn from_any(any: &Any) -> JsValue {
    match any {
        Any::Null | Any::Undefined => JsValue::NULL,
        Any::Bool(b) => JsValue::from_bool(*b),
        Any::Number(Number::Int(n)) => JsValue::from_f64(*n as f64),
        Any::Number(Number::Float(n)) => JsValue::from_f64(*n),
        Any::String(s) => JsValue::from_str(s),
        Any::Buffer(bytes) => bytes
            .iter()
            .map(|&b| JsValue::from(b))
            .collect::<Array>()
            .into(),
        Any::Array(items) => items.iter().map(from_any).collect::<Array>().into(),
        Any::Map(map) => object(map.iter().map(|(k, v)| (k.as_str(), from_any(v)))),
    }
}

/// A plain object with these fields, in this order.
fn object<'a>(fields: impl IntoIterator<Item = (&'a str, JsValue)>) -> JsValue {
    let object = Object::new();
    for (key, value) in fields {
        // Setting a data property on a fresh plain object cannot fail.
        let _ = Reflect::set(&object, &JsValue::from_str(key), &value);
    }
    object.into()
}

/// Quill ops as the `QuillOp[]` above.
pub fn ops(ops: &[Op]) -> JsValue {
    ops.iter().map(op).collect::<Array>().into()
}

fn op(op: &Op) -> JsValue {
    let (kind, value, attrs) = match op {
        Op::Insert(value, attrs) => ("insert", from_any(value), Some(attrs)),
        Op::Retain(n, attrs) => ("retain", JsValue::from(*n), Some(attrs)),
        Op::Delete(n) => ("delete", JsValue::from(*n), None),
    };
    let attributes = attrs.filter(|a| !a.is_empty()).map(|a: &Attrs| {
        (
            "attributes",
            object(a.iter().map(|(k, v)| (&**k, from_any(v)))),
        )
    });
    object([(kind, value)].into_iter().chain(attributes))
}

/// A relative position in `Y.relativePositionToJSON` form: `{type?, tname?, item?, assoc}`,
/// Yjs's field order. yrs keeps one of `item` / `tname`; Yjs also names the root type next to
/// an item, so `tname` is written then too: both read either form, and equal JSON lets a UI
/// compare cursors without decoding them.
pub fn relative_position(position: &StickyIndex, root: &str) -> JsValue {
    let id = |id: &ID| {
        object([
            ("client", JsValue::from_f64(id.client.get() as f64)),
            ("clock", JsValue::from(id.clock)),
        ])
    };
    let scope = match position.scope() {
        IndexScope::Relative(item) => vec![("tname", JsValue::from_str(root)), ("item", id(item))],
        IndexScope::Nested(ty) => vec![("type", id(ty))],
        IndexScope::Root(name) => vec![("tname", JsValue::from_str(name))],
    };
    let assoc = JsValue::from_f64(f64::from(position.assoc as i8));
    object(scope.into_iter().chain([("assoc", assoc)]))
}

/// A presence state (any JavaScript value) as JSON text; `None` for `null`, which clears it.
pub fn presence(state: &JsValue) -> Result<Option<String>, ClientError> {
    if state.is_null() {
        return Ok(None);
    }
    JSON::stringify(state)
        .ok()
        .and_then(|s| s.as_string())
        .map(Some)
        .ok_or_else(not_json)
}

/// A presence state's JSON text as a JavaScript value; `None` if it is not JSON.
pub fn parse(json: &str) -> Option<JsValue> {
    JSON::parse(json).ok()
}

/// Every client's presence (`awarenessStates`), keyed by client id as a decimal string (how a
/// JavaScript object holds a numeric key); states that are not JSON are left out.
pub fn presences(states: Vec<(u64, std::sync::Arc<str>)>) -> JsValue {
    let object = Object::new();
    for (client, json) in states {
        if let Some(state) = parse(&json) {
            let _ = Reflect::set(&object, &JsValue::from_f64(client as f64), &state);
        }
    }
    object.into()
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
    let content = changes.content.map_or(JsValue::NULL, |c| ops(&c));
    object([
        ("replies", byte_arrays(changes.replies).into()),
        ("synced", changes.synced.into()),
        ("syncAnswers", changes.sync_answers.into()),
        ("contentChange", content),
        ("titleChanged", changes.title_changed.into()),
        ("awarenessChanged", changes.awareness_changed.into()),
    ])
}
