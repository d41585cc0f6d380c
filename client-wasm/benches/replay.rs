//! Replays a real editing trace one keystroke at a time, natively: through `Replica` exactly as
//! the browser drives it (one Quill delta per keystroke, one update message out), and through
//! bare yrs for scale. The WASM and npm Yjs sides are `tests/bench/replay/`.
//!
//! ```sh
//! cargo bench -p quire-client --bench replay                      # automerge-paper
//! cargo bench -p quire-client --bench replay -- rustcode yrs      # another trace, one side
//! ```
//!
//! Arguments (after `--`, any order): a trace name from `../shared/traces/` (sequential format,
//! see its README) and the sides to run (`replica`, `yrs`, `yrs-observe`; default all). Every
//! side must end with the trace's `endContent`, and the replica's update messages, applied to
//! a fresh document, must too; otherwise the bench exits with an error.

use std::path::PathBuf;
use std::process::{Command, ExitCode};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use quire_client::{Op, Replica};
use quire_model::protocol;
use quire_model::schema::{doc_with_client_id, CONTENT};
use serde_json::{json, Value};
use yrs::sync::{Message, SyncMessage};
use yrs::{Any, GetString, Text, Transact};

/// One keystroke: at `pos`, delete `delete` units, then insert `insert`.
struct Patch {
    pos: u32,
    delete: u32,
    insert: String,
}

struct Trace {
    name: String,
    patches: Vec<Patch>,
    end: String,
}

const SIDES: [&str; 3] = ["replica", "yrs", "yrs-observe"];

fn main() -> ExitCode {
    // `cargo bench` passes `--bench` to a harness-less bench; it is not ours.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let (sides, names): (Vec<String>, Vec<String>) =
        args.into_iter().partition(|a| SIDES.contains(&a.as_str()));
    let name = names.first().map_or("automerge-paper", String::as_str);
    let trace = match load(name) {
        Ok(trace) => trace,
        Err(e) => {
            eprintln!("replay: {e}");
            return ExitCode::FAILURE;
        }
    };
    let sides = if sides.is_empty() {
        SIDES.map(String::from).to_vec()
    } else {
        sides
    };
    let mut ok = true;
    for side in &sides {
        let result = match side.as_str() {
            "replica" => replica(&trace),
            "yrs" => yrs_bare(&trace),
            _ => yrs_observe(&trace),
        };
        if let Err(e) = result {
            eprintln!("replay {}: {side}: FAILED: {e}", trace.name);
            ok = false;
        }
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Reads `../shared/traces/<name>.json.gz` (next to the repository, never copied into it).
/// gzip does the unzipping: it is on every machine quire builds on, and no gzip crate is in
/// the lock file.
fn load(name: &str) -> Result<Trace, String> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/traces")
        .join(format!("{name}.json.gz"));
    let out = Command::new("gzip")
        .arg("-dc")
        .arg(&path)
        .output()
        .map_err(|e| format!("running gzip: {e}"))?;
    if !out.status.success() {
        return Err(format!("gzip -dc {}: {}", path.display(), out.status));
    }
    let json: Value = serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())?;
    if json["startContent"] != "" {
        return Err("only traces starting from an empty document are supported".into());
    }
    let mut patches = Vec::new();
    for txn in json["txns"].as_array().ok_or("no txns")? {
        for patch in txn["patches"].as_array().ok_or("no patches")? {
            let number = |v: &Value| v.as_u64().and_then(|n| u32::try_from(n).ok());
            match (number(&patch[0]), number(&patch[1]), patch[2].as_str()) {
                (Some(pos), Some(delete), Some(insert)) => patches.push(Patch {
                    pos,
                    delete,
                    insert: insert.to_owned(),
                }),
                _ => return Err(format!("not a [pos, deleted, inserted] patch: {patch}")),
            }
        }
    }
    let end = json["endContent"]
        .as_str()
        .ok_or("no endContent")?
        .to_owned();
    // Positions in the trace count code points; Quill and quire count UTF-16 units. They agree
    // on ASCII, which the sequential traces are.
    if !end.is_ascii() || patches.iter().any(|p| !p.insert.is_ascii()) {
        return Err(format!(
            "{name} is not ASCII: its positions would need converting"
        ));
    }
    Ok(Trace {
        name: name.to_owned(),
        patches,
        end,
    })
}

/// The delta Quill's `text-change` reports for one keystroke, as `QuireDoc.applyQuillDelta`
/// hands it to the replica (`js.rs` reads the JavaScript value into the same JSON-like `Any`).
fn quill_delta(patch: &Patch) -> Result<Any, String> {
    let mut ops = Vec::with_capacity(3);
    if patch.pos > 0 {
        ops.push(json!({ "retain": patch.pos }));
    }
    if patch.delete > 0 {
        ops.push(json!({ "delete": patch.delete }));
    }
    if !patch.insert.is_empty() {
        ops.push(json!({ "insert": patch.insert }));
    }
    serde_json::from_value(Value::Array(ops)).map_err(|e| e.to_string())
}

/// `Replica::apply_quill_delta`, one call per keystroke, as `QuireDoc.applyQuillDelta` makes it.
fn replica(trace: &Trace) -> Result<(), String> {
    let mut replica = Replica::new(doc_with_client_id(1), || 0);
    let mut messages = Messages::default();
    let mut times = Vec::with_capacity(trace.patches.len());
    let start = Instant::now();
    for patch in &trace.patches {
        let delta = quill_delta(patch)?;
        let t = Instant::now();
        let message = replica
            .apply_quill_delta(&delta)
            .map_err(|e| e.to_string())?;
        times.push(t.elapsed());
        messages.push(&message.ok_or("a keystroke produced no update")?);
    }
    let total = start.elapsed();
    let text: String = replica
        .content_delta()
        .iter()
        .filter_map(|op| match op {
            Op::Insert(Any::String(s), _) => Some(&**s),
            _ => None,
        })
        .collect();
    check(trace, "replica", &text)?;
    // The messages are what the server gets: on their own they must rebuild the document.
    let peer = doc_with_client_id(2);
    for message in messages.iter() {
        let update = match protocol::decode_frame(message).map_err(|e| e.to_string())?[..] {
            [Message::Sync(SyncMessage::Update(ref update))] => update.clone(),
            _ => return Err("a keystroke's message is not one sync update".into()),
        };
        protocol::apply_bytes(&peer, &update).map_err(|e| e.to_string())?;
    }
    let rebuilt = peer
        .get_or_insert_text(CONTENT)
        .get_string(&peer.transact());
    check(trace, "replica's updates applied to a fresh doc", &rebuilt)?;
    report(
        trace,
        "native Replica::apply_quill_delta",
        total,
        times,
        &format!(", {} bytes of messages", messages.bytes.len()),
    );
    Ok(())
}

/// Every keystroke's message, kept in one buffer. Keeping each in its own `Vec` interleaves a
/// small allocation with every yrs item, and walking the items then misses the cache so much
/// more that it triples the replay time: a cost of the bench, not of the replica (in the
/// browser each message leaves the module at once).
#[derive(Default)]
struct Messages {
    bytes: Vec<u8>,
    ends: Vec<usize>,
}

impl Messages {
    fn push(&mut self, message: &[u8]) {
        self.bytes.extend_from_slice(message);
        self.ends.push(self.bytes.len());
    }

    fn iter(&self) -> impl Iterator<Item = &[u8]> {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        starts
            .zip(&self.ends)
            .map(|(start, &end)| &self.bytes[start..end])
    }
}

/// Bare yrs: one transaction per keystroke, no update encoded.
fn yrs_bare(trace: &Trace) -> Result<(), String> {
    let doc = doc_with_client_id(1);
    let (total, times) = edit(&doc, trace);
    check(
        trace,
        "yrs",
        &doc.get_or_insert_text(CONTENT).get_string(&doc.transact()),
    )?;
    report(trace, "native yrs, bare", total, times, "");
    Ok(())
}

/// yrs with an `observe_update_v1` subscription collecting every transaction's update.
fn yrs_observe(trace: &Trace) -> Result<(), String> {
    let doc = doc_with_client_id(1);
    let updates = Arc::new(Mutex::new(Messages::default()));
    let sink = Arc::clone(&updates);
    doc.observe_update_v1("replay", move |_, event| {
        sink.lock().expect("not poisoned").push(&event.update);
    })
    .map_err(|e| e.to_string())?;
    let (total, times) = edit(&doc, trace);
    check(
        trace,
        "yrs-observe",
        &doc.get_or_insert_text(CONTENT).get_string(&doc.transact()),
    )?;
    let updates = updates.lock().expect("not poisoned");
    if updates.ends.len() != trace.patches.len() {
        return Err(format!(
            "{} updates for {} keystrokes",
            updates.ends.len(),
            trace.patches.len()
        ));
    }
    report(
        trace,
        "native yrs + observe_update_v1",
        total,
        times,
        &format!(", {} bytes of updates", updates.bytes.len()),
    );
    Ok(())
}

/// Each keystroke as `remove_range` / `insert` in a transaction of its own.
fn edit(doc: &yrs::Doc, trace: &Trace) -> (Duration, Vec<Duration>) {
    let text = doc.get_or_insert_text(CONTENT);
    let mut times = Vec::with_capacity(trace.patches.len());
    let start = Instant::now();
    for patch in &trace.patches {
        let t = Instant::now();
        let mut txn = doc.transact_mut();
        if patch.delete > 0 {
            text.remove_range(&mut txn, patch.pos, patch.delete);
        }
        if !patch.insert.is_empty() {
            text.insert(&mut txn, patch.pos, &patch.insert);
        }
        drop(txn);
        times.push(t.elapsed());
    }
    (start.elapsed(), times)
}

fn check(trace: &Trace, what: &str, text: &str) -> Result<(), String> {
    if text == trace.end {
        return Ok(());
    }
    let at = text
        .chars()
        .zip(trace.end.chars())
        .take_while(|(a, b)| a == b)
        .count();
    Err(format!(
        "{what}: the final text differs from endContent (length {} vs {}, first difference at {at})",
        text.len(),
        trace.end.len()
    ))
}

fn report(trace: &Trace, what: &str, total: Duration, mut times: Vec<Duration>, extra: &str) {
    times.sort_unstable();
    let at = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize];
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    println!(
        "replay {}: {what}: {} keystrokes in {:.2} s, p50 {:.1} µs, p99 {:.1} µs, max {:.1} µs; final text ok ({} units){extra}",
        trace.name,
        times.len(),
        total.as_secs_f64(),
        us(at(0.5)),
        us(at(0.99)),
        us(at(1.0)),
        trace.end.len(),
    );
}
