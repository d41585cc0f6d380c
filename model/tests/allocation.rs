//! Decoding bytes from the network must cost memory in proportion to those bytes.
//!
//! yrs reserves room from counts it reads (`try_reserve(n)` for clients, blocks, state vector and
//! awareness entries, `Any` arrays and maps …), so a few bytes that declare four billion entries
//! would make it ask for gigabytes. Every test here counts what the global allocator is asked for
//! (asked, not granted: a refused request counts too) while `quire_model::protocol` decodes, and
//! holds it to [`FACTOR`] times the input plus [`SLACK`]. Honest messages (real editing traces
//! from `../shared/traces/`, documents with every kind of content) must still decode.

use std::alloc::System;
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Mutex, MutexGuard};

use quire_model::protocol::{self, Inbound, ProtocolError};
use quire_model::schema::{doc_with_client_id, CONTENT};
use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};
use yrs::sync::awareness::{AwarenessUpdate, AwarenessUpdateEntry};
use yrs::sync::{Message, SyncMessage};
use yrs::types::Attrs;
use yrs::updates::encoder::Encode;
use yrs::{
    Any, Array, ClientID, Doc, GetString, Map, MapPrelim, ReadTxn, StateVector, Text, Transact,
    Xml, XmlElementPrelim, XmlFragment, XmlTextPrelim,
};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// How many bytes decoding may ask for per input byte. Decoded structures are larger than their
/// encoding, by up to ~80 times in yrs 0.28.1: a 5-byte nested-type item becomes a `Branch`
/// (~400 bytes), a 2-byte GC block a 24-byte `Block` (`dense_honest_updates_stay_within_the_bound`
/// measures each kind; subdocuments, 123 times, are refused outright). What the bound must
/// catch is a count that asks for gigabytes.
const FACTOR: usize = 128;
/// Fixed costs independent of the input: the first hash map's table, error strings.
const SLACK: usize = 16 * 1024;

/// The allocator's counters are global: tests in this binary take turns.
static TURN: Mutex<()> = Mutex::new(());

fn turn() -> MutexGuard<'static, ()> {
    TURN.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// What `f` asked the allocator for, in bytes (growth of reallocations included).
fn asked<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let region = Region::new(GLOBAL);
    let out = f();
    let asked = region.change().bytes_allocated;
    (out, asked)
}

/// yrs still panics on some hostile input (`catch_unwind` in `protocol` stops it), and the
/// default hook would capture a backtrace, whose allocations would count as decoding's. Only
/// this file's own panics (its failed assertions) are reported.
fn quiet_panics_outside_this_file() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let report = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if info
                .location()
                .is_some_and(|at| at.file().ends_with(file!()))
            {
                report(info);
            }
        }));
    });
}

/// Decodes `bytes` every way the server and the browser do, and fails if any of them asked for
/// more than the bound. Returns whether each decode succeeded, for the caller to check.
fn within_bound(what: &str, bytes: &[u8]) -> [bool; 3] {
    quiet_panics_outside_this_file();
    let bound = FACTOR * bytes.len() + SLACK;
    let (frame, frame_bytes) = asked(|| protocol::decode_frame(bytes).is_ok());
    let (inbound, inbound_bytes) = asked(|| protocol::decode_inbound(bytes).is_ok());
    let (update, update_bytes) = asked(|| protocol::decode_update(bytes).is_ok());
    for (how, used) in [
        ("decode_frame", frame_bytes),
        ("decode_inbound", inbound_bytes),
        ("decode_update", update_bytes),
    ] {
        assert!(
            used <= bound,
            "{what}: {how} of {} bytes asked for {used} bytes (bound {bound}): {:02x?}",
            bytes.len(),
            &bytes[..bytes.len().min(32)]
        );
    }
    [frame, inbound, update]
}

// ---- lib0 encoding, written out by hand so the bombs say exactly what they hold ----

fn var(mut n: u64, out: &mut Vec<u8>) {
    while n >= 0x80 {
        out.push((n as u8 & 0x7f) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn buf(bytes: &[u8], out: &mut Vec<u8>) {
    var(bytes.len() as u64, out);
    out.extend_from_slice(bytes);
}

fn sync_frame(kind: u8, payload: &[u8]) -> Vec<u8> {
    let mut frame = vec![0, kind];
    buf(payload, &mut frame);
    frame
}

fn awareness_frame(payload: &[u8]) -> Vec<u8> {
    let mut frame = vec![1];
    buf(payload, &mut frame);
    frame
}

/// A v1 update of one client (id 1, clock 0) holding one block whose parent is the root type
/// `content` and whose content is `content` (ref number in `info`), then an empty delete set.
fn one_block_update(info: u8, content: &[u8]) -> Vec<u8> {
    let mut update = vec![1, 1, 1, 0, info, 1];
    buf(b"content", &mut update);
    update.extend_from_slice(content);
    update.extend_from_slice(&[0]);
    update
}

const INFO_JSON: u8 = 2;
const INFO_ANY: u8 = 8;
const INFO_DOC: u8 = 9;
const ANY_MAP: u8 = 118;
const ANY_ARRAY: u8 = 117;
const ANY_UNDEFINED: u8 = 127;

/// Counts that no honest input of a few bytes can hold: the largest a u32 count can say, and
/// smaller ones that an allocator would grant (so the request is not simply refused by the OS).
const HUGE: [u64; 3] = [u32::MAX as u64, 1 << 28, 1 << 22];

/// Which decoders must refuse a bomb: a frame's (`decode_frame`, `decode_inbound`), or an
/// update's (`decode_update`, and `decode_inbound` once it is framed).
#[derive(Clone, Copy, PartialEq, Debug)]
enum Target {
    Frame,
    Update,
    FramedUpdate,
}

/// Every place yrs 0.28 reserves from a count, each with a count the bytes cannot hold.
fn bombs() -> Vec<(String, Target, Vec<u8>)> {
    let mut bombs = Vec::new();
    for count in HUGE {
        let mut n = Vec::new();
        var(count, &mut n);
        // State vector (sync step 1): `HashMap::try_reserve(len)`.
        bombs.push((
            format!("state vector of {count}"),
            Target::Frame,
            sync_frame(0, &n),
        ));
        // Awareness update: `HashMap::try_reserve(len)`.
        bombs.push((
            format!("awareness of {count}"),
            Target::Frame,
            awareness_frame(&n),
        ));
        // Update: clients, `HashMap::try_reserve(clients_len)`.
        bombs.push((format!("update clients {count}"), Target::Update, n.clone()));
        // Update: blocks of one client, `VecDeque::try_reserve(blocks_len)`.
        let mut blocks = vec![1];
        var(count, &mut blocks);
        blocks.extend_from_slice(&[1, 0]);
        bombs.push((format!("update blocks {count}"), Target::Update, blocks));
        // Item content: `Vec<Any>::try_reserve(len)`.
        bombs.push((
            format!("any content {count}"),
            Target::Update,
            one_block_update(INFO_ANY, &n),
        ));
        // Item content: JSON strings, `Vec<String>::try_reserve(len)`.
        bombs.push((
            format!("json content {count}"),
            Target::Update,
            one_block_update(INFO_JSON, &n),
        ));
        // An `Any` array and map inside an item: `try_reserve(len)`.
        for tag in [ANY_ARRAY, ANY_MAP] {
            let mut any = vec![1, tag];
            var(count, &mut any);
            bombs.push((
                format!("any {tag} of {count}"),
                Target::Update,
                one_block_update(INFO_ANY, &any),
            ));
        }
        // A subdocument's options are an `Any` map.
        let mut doc = Vec::new();
        buf(b"guid", &mut doc);
        doc.push(ANY_MAP);
        var(count, &mut doc);
        bombs.push((
            format!("subdoc options of {count}"),
            Target::Update,
            one_block_update(INFO_DOC, &doc),
        ));
        // Delete set: clients and ranges.
        let mut deletes = vec![0];
        var(count, &mut deletes);
        bombs.push((
            format!("delete set clients {count}"),
            Target::Update,
            deletes,
        ));
        let mut ranges = vec![0, 1, 1];
        var(count, &mut ranges);
        bombs.push((format!("delete set ranges {count}"), Target::Update, ranges));
    }
    // Every update bomb also arrives inside a frame, as a client sends it.
    let framed: Vec<_> = bombs
        .iter()
        .filter(|(_, target, _)| *target == Target::Update)
        .flat_map(|(what, _, update)| {
            [1, 2].map(|kind| {
                let what = format!("{what} in sync message {kind}");
                (what, Target::FramedUpdate, sync_frame(kind, update))
            })
        })
        .collect();
    bombs.extend(framed);
    bombs
}

#[test]
fn counts_larger_than_the_input_are_refused_before_allocating() {
    let _turn = turn();
    for (what, target, bytes) in bombs() {
        let [frame, inbound, update] = within_bound(&what, &bytes);
        let refused = match target {
            Target::Frame => !frame && !inbound,
            Target::Update => !update,
            // The frame itself is sound: its update is walked when it is decoded.
            Target::FramedUpdate => frame && !inbound,
        };
        assert!(
            refused,
            "{what} must be refused by its decoder: {:?}",
            [frame, inbound, update]
        );
    }
}

#[test]
fn a_refused_count_names_the_problem() {
    let _turn = turn();
    let mut frame = Vec::new();
    var(1 << 28, &mut frame);
    let frame = sync_frame(0, &frame);
    let err = protocol::decode_frame(&frame).unwrap_err();
    assert!(matches!(err, ProtocolError::Oversized { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "state vector declares 268435456 entries, more than the 0 bytes after it can hold"
    );
}

/// `[117, 1]` nested: yrs's `Any` decoder recurses once per level, so unbounded nesting is a
/// stack overflow (an abort, not a panic that `catch_unwind` could stop).
#[test]
fn deeply_nested_values_are_refused() {
    let _turn = turn();
    let mut any = vec![1];
    for _ in 0..1_000_000 {
        any.extend_from_slice(&[ANY_ARRAY, 1]);
    }
    any.push(ANY_UNDEFINED);
    let update = one_block_update(INFO_ANY, &any);
    let err = protocol::decode_update(&update).unwrap_err();
    assert!(matches!(err, ProtocolError::TooDeep), "{err:?}");
    assert!(!within_bound("deep any", &update)[2]);
    assert!(!within_bound("deep any, framed", &sync_frame(2, &update))[1]);
}

/// xorshift64*: a fixed seed, so a failure names a frame that can be replayed.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[test]
fn random_short_frames_stay_within_the_bound() {
    let _turn = turn();
    let mut random = Random(0x05ee_d0fa_110c);
    // Prefixes that reach each decoder, so the random tail lands where counts are read.
    let prefixes: [&[u8]; 8] = [
        &[],
        &[0, 0],
        &[0, 1],
        &[0, 2],
        &[1],
        &[1, 1],
        &[2, 0],
        &[0, 2, 20, 1, 1, 1, 0, 8, 1, 1, b'x', 1],
    ];
    for round in 0..200_000 {
        let mut frame = prefixes[random.below(prefixes.len() as u64) as usize].to_vec();
        let len = 1 + random.below(24);
        for _ in 0..len {
            // Bytes with the high bit set make long varints, hence large counts.
            let byte = random.next() as u8;
            frame.push(if random.below(3) == 0 {
                byte | 0x80
            } else {
                byte
            });
        }
        within_bound(&format!("random frame {round}"), &frame);
    }
}

/// An update of `n` copies of one block, of client 1 from clock 0.
fn repeated_block(block: &[u8], n: u64) -> Vec<u8> {
    let mut update = vec![1];
    var(n, &mut update);
    update.extend_from_slice(&[1, 0]);
    for _ in 0..n {
        update.extend_from_slice(block);
    }
    update.push(0);
    update
}

/// The densest honest shapes: many of the smallest block of each kind (parent given by an id,
/// `[0, 1, 0]`). These are what bounds [`FACTOR`] from below.
#[test]
fn dense_honest_updates_stay_within_the_bound() {
    let _turn = turn();
    let blocks: [(&str, &[u8]); 11] = [
        ("gc", &[0, 1]),
        ("skip", &[10, 1]),
        ("deleted", &[1, 0, 1, 0, 1]),
        ("string", &[4, 0, 1, 0, 1, b'x']),
        ("json", &[2, 0, 1, 0, 0, 1, b'1']),
        ("embed", &[5, 0, 1, 0, 2, b'[', b']']),
        ("format", &[6, 0, 1, 0, 1, b'k', 1, b'1']),
        ("nested type", &[7, 0, 1, 0, 2]),
        ("any", &[8, 0, 1, 0, 1, ANY_UNDEFINED]),
        (
            "nested arrays",
            &[8, 0, 1, 0, 1, ANY_ARRAY, 1, ANY_ARRAY, 1, ANY_ARRAY, 0],
        ),
        (
            "nested maps",
            &[8, 0, 1, 0, 1, ANY_MAP, 1, 0, ANY_MAP, 1, 0, ANY_UNDEFINED],
        ),
    ];
    for (what, block) in blocks {
        let update = repeated_block(block, 10_000);
        let decoded = within_bound(what, &update);
        assert!(decoded[2], "{what}: an honest update must decode");
    }
    // Subdocuments are not part of quire's documents: a 6-byte one would decode into a whole
    // `Doc`, so they are refused before yrs sees them.
    let subdocuments = repeated_block(&[9, 0, 1, 0, 0, ANY_UNDEFINED], 10_000);
    assert!(matches!(protocol::decode_update(&subdocuments), Err(protocol::ProtocolError::Subdocument)));
}

// ---- honest messages ----

/// The sequential traces of `../shared/traces/` (see its README), read in place.
fn trace(name: &str) -> serde_json::Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/traces")
        .join(format!("{name}.json.gz"));
    // gzip is on every machine quire builds on; no gzip crate is in the lock file.
    let out = Command::new("gzip")
        .arg("-dc")
        .arg(&path)
        .output()
        .unwrap_or_else(|e| panic!("running gzip on {}: {e}", path.display()));
    assert!(out.status.success(), "gzip -dc {}", path.display());
    serde_json::from_slice(&out.stdout).expect("trace JSON")
}

/// Replays a sequential trace keystroke by keystroke; returns every update it made and the
/// final document.
fn replay(name: &str) -> (Vec<Vec<u8>>, Doc) {
    let trace = trace(name);
    let doc = doc_with_client_id(7);
    let text = doc.get_or_insert_text(CONTENT);
    let updates = std::sync::Arc::new(Mutex::new(Vec::new()));
    let sink = updates.clone();
    doc.observe_update_v1("replay", move |_, event: &yrs::UpdateEvent| {
        sink.lock().unwrap().push(event.update.clone())
    })
    .unwrap();
    for txn in trace["txns"].as_array().expect("txns") {
        let mut t = doc.transact_mut();
        for patch in txn["patches"].as_array().expect("patches") {
            let pos = patch[0].as_u64().unwrap() as u32;
            let delete = patch[1].as_u64().unwrap() as u32;
            let insert = patch[2].as_str().unwrap();
            if delete > 0 {
                text.remove_range(&mut t, pos, delete);
            }
            if !insert.is_empty() {
                text.insert(&mut t, pos, insert);
            }
        }
    }
    assert_eq!(
        text.get_string(&doc.transact()),
        trace["endContent"].as_str().unwrap(),
        "{name} replays to its endContent"
    );
    doc.unobserve_update_v1("replay").unwrap();
    let updates = std::mem::take(&mut *updates.lock().unwrap());
    (updates, doc)
}

/// A document with every kind of content a client could send: formatted text, embeds, maps of
/// nested values, arrays, XML, deletions (no subdocument: quire refuses those).
fn rich_doc() -> Doc {
    let doc = doc_with_client_id(3);
    let text = doc.get_or_insert_text(CONTENT);
    let meta = doc.get_or_insert_map("meta");
    let list = doc.get_or_insert_array("list");
    let xml = doc.get_or_insert_xml_fragment("xml");
    let mut t = doc.transact_mut();
    let bold = Attrs::from([("bold".into(), Any::Bool(true))]);
    let link = Attrs::from([("link".into(), Any::from("https://example.com/a"))]);
    text.insert(&mut t, 0, "Hello, 世界 😀\n");
    text.insert_with_attributes(&mut t, 0, "bold ", bold);
    text.insert_with_attributes(&mut t, 5, "link", link);
    text.insert_embed(
        &mut t,
        2,
        Any::from(
            vec![("image", Any::from("x.png"))]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect::<std::collections::HashMap<_, _>>(),
        ),
    );
    text.remove_range(&mut t, 1, 2);
    meta.insert(&mut t, "title", "A title");
    meta.insert(
        &mut t,
        "numbers",
        Any::from(vec![Any::from(1.5), Any::from(-7_i64), Any::from(i64::MAX)]),
    );
    meta.insert(
        &mut t,
        "nested",
        MapPrelim::from([("a", Any::Null), ("b", Any::Undefined)]),
    );
    meta.insert(&mut t, "bytes", Any::from(vec![0u8, 1, 2, 255]));
    list.insert_range(&mut t, 0, [Any::from(true), Any::from("x"), Any::Null]);
    list.remove(&mut t, 1);
    let element = xml.insert(&mut t, 0, XmlElementPrelim::empty("p"));
    element.insert_attribute(&mut t, "class", "c");
    element.insert(&mut t, 0, XmlTextPrelim::new("xml text"));
    drop(t);
    doc
}

fn awareness_update(clients: u64) -> AwarenessUpdate {
    AwarenessUpdate {
        clients: (1..=clients)
            .map(|id| {
                let json = format!(r##"{{"user":{{"name":"Person {id}","color":"#30bced"}}}}"##);
                (
                    ClientID::new(id),
                    AwarenessUpdateEntry {
                        clock: id as u32,
                        json: json.into(),
                    },
                )
            })
            .collect(),
    }
}

fn assert_decodes(what: &str, bytes: &[u8]) {
    if let Err(e) = protocol::decode_update(bytes) {
        panic!("{what}: honest update refused: {e}");
    }
    for kind in [1, 2] {
        let frame = sync_frame(kind, bytes);
        match protocol::decode_inbound(&frame) {
            Ok(messages) => assert!(matches!(messages[..], [Inbound::Update(_) | Inbound::Answer(_)]), "{what}"),
            Err(e) => panic!("{what}: honest sync message {kind} refused: {e}"),
        }
    }
}

#[test]
fn honest_messages_still_decode() {
    let _turn = turn();
    // The largest share of the bound an honest update used, and which update.
    let mut worst = (0.0_f64, String::new());
    let mut note = |what: &str, bytes: &[u8]| {
        let ((), used) = asked(|| assert_decodes(what, bytes));
        // Three decodes of the update (once bare, twice framed).
        let share = used as f64 / 3.0 / (FACTOR * bytes.len() + SLACK) as f64;
        if share > worst.0 {
            worst = (share, what.to_owned());
        }
    };
    for name in ["automerge-paper", "rustcode", "sveltecomponent"] {
        let (updates, doc) = replay(name);
        for (i, update) in updates.iter().enumerate() {
            note(&format!("{name} update {i}"), update);
        }
        let state = protocol::full_state(&doc);
        note(&format!("{name} full state"), &state);
        let step1 = protocol::encode(&protocol::sync_step1(&doc));
        assert!(matches!(
            protocol::decode_inbound(&step1).unwrap()[..],
            [Inbound::StateVector(_)]
        ));
        let empty = StateVector::default();
        let step2 = protocol::encode(&protocol::sync_step2(&doc, &empty));
        assert!(matches!(
            protocol::decode_inbound(&step2).unwrap()[..],
            [Inbound::Answer(_)]
        ));
    }
    let rich = rich_doc();
    note("rich document", &protocol::full_state(&rich));
    let sv = rich.transact().state_vector().encode_v1();
    assert!(protocol::decode_frame(&sync_frame(0, &sv)).is_ok());
    for clients in [0, 1, 50] {
        let frame = protocol::encode(&Message::Awareness(awareness_update(clients)));
        match &protocol::decode_inbound(&frame).unwrap()[..] {
            [Inbound::Awareness(update)] => assert_eq!(update.clients.len() as u64, clients),
            other => panic!("awareness of {clients} decoded as {other:?}"),
        }
    }
    // A frame holding several messages, as a server may batch them.
    let mut frame = protocol::encode(&Message::AwarenessQuery);
    frame.extend(protocol::encode(&protocol::sync_step1(&rich)));
    frame.extend(protocol::encode(&Message::Sync(SyncMessage::Update(
        protocol::full_state(&rich),
    ))));
    assert_eq!(protocol::decode_inbound(&frame).unwrap().len(), 3);
    eprintln!(
        "honest updates use at most {:.0}% of the bound ({})",
        worst.0 * 100.0,
        worst.1
    );
    assert!(
        worst.0 <= 1.0,
        "honest decoding exceeds the bound the bombs are held to"
    );
}
