//! Hostile frames, made from the corpus: byte-level mutations of real frames (bit flips,
//! truncation, splicing, tampered varints and lengths, wrong message types, nesting) and attacks
//! built on purpose (writes under a live client's id at the server's own clock, updates whose
//! dependencies the server lacks, oversized and spoofed presence, deep values, subdocuments,
//! client ids past 53 bits, frames over the size limit).
//!
//! Deterministic: one seeded `fastrand::Rng` per worker, so a seed replays the same frames (the
//! server's interleaving of workers is not replayed; a frame that matters is reported whole).

use fastrand::Rng;
use quire_model::protocol;
use quire_model::schema::CONTENT;
use yrs::sync::{Message, SyncMessage};
use yrs::StateVector;

use super::corpus::Corpus;

/// One hostile frame: `kind` names how it was made.
pub struct Mutant {
    pub kind: &'static str,
    pub bytes: Vec<u8>,
    /// Sent as a WebSocket text frame (the protocol is binary).
    pub text: bool,
}

/// Frames over the size limit are costly to send: one in this many.
const OVERSIZE_ONE_IN: u32 = 20_000;
/// Yjs client ids are JavaScript safe integers.
const CLIENT_ID_BITS: u32 = 53;

/// (weight per thousand, kind). `replay` sends a corpus frame as it is: known updates are
/// no-ops, unknown ones may lack dependencies.
const KINDS: [(u32, &str); 24] = [
    (100, "replay"),
    (120, "bitflip"),
    (80, "bytes"),
    (60, "truncate"),
    (40, "extend"),
    (60, "splice"),
    (100, "varint"),
    (40, "length"),
    (40, "type"),
    (50, "concat"),
    (30, "nested"),
    (30, "impostor"),
    (30, "gap"),
    (20, "presence-big"),
    (20, "presence-many"),
    (30, "presence-bad"),
    (20, "presence-spoof"),
    (15, "deep"),
    (10, "subdoc"),
    (40, "random"),
    (10, "text"),
    (20, "queries"),
    (20, "step1"),
    (15, "wide-id"),
];

/// Values that break counts and lengths: zero, one-byte edges, signed edges, and past them.
const HOSTILE_VALUES: [u64; 13] = [
    0,
    1,
    0x7f,
    0x80,
    0xff,
    0xffff,
    (1 << 31) - 1,
    1 << 31,
    (1 << 32) - 1,
    1 << 32,
    1 << 53,
    1 << 63,
    u64::MAX,
];
const INTERESTING_BYTES: [u8; 9] = [0x00, 0x01, 0x7f, 0x80, 0xff, 0x7e, 0x75, 0x76, 0x77];

pub struct Mutator<'a> {
    corpus: &'a Corpus,
    rng: Rng,
    max_message_bytes: usize,
}

impl<'a> Mutator<'a> {
    pub fn new(corpus: &'a Corpus, seed: u64, max_message_bytes: usize) -> Self {
        debug_assert_eq!(KINDS.iter().map(|(w, _)| w).sum::<u32>(), 1000);
        Mutator { corpus, rng: Rng::with_seed(seed), max_message_bytes }
    }

    /// The next hostile frame for a connection that joined a document whose state vector was
    /// `server` (the server's sync step 1).
    pub fn next(&mut self, server: &StateVector) -> Mutant {
        if self.rng.u32(..OVERSIZE_ONE_IN) == 0 {
            let bytes = self.oversize();
            return self.binary("oversize", bytes);
        }
        let mut roll = self.rng.u32(..1000);
        let kind = KINDS
            .iter()
            .find(|(weight, _)| {
                let hit = roll < *weight;
                roll = roll.saturating_sub(*weight);
                hit
            })
            .map_or("replay", |(_, kind)| kind);
        let bytes = match kind {
            "replay" => self.base(),
            "bitflip" | "bytes" | "truncate" | "extend" | "splice" => {
                let base = self.base();
                self.byte_level(kind, base)
            }
            "varint" => self.varint(),
            "length" => self.length(),
            "type" => self.message_type(),
            "concat" => self.concat(),
            "nested" => self.nested(),
            "impostor" => self.impostor(server),
            "gap" => self.gap(server),
            "presence-big" => self.presence_big(),
            "presence-many" => self.presence_many(),
            "presence-bad" => self.presence_bad(),
            "presence-spoof" => self.presence_spoof(server),
            "deep" => self.deep(),
            "subdoc" => self.subdoc(),
            "random" => self.random_bytes(),
            "text" => {
                let text: String = (0..self.rng.usize(1..200)).map(|_| self.rng.alphanumeric()).collect();
                return Mutant { kind, bytes: text.into_bytes(), text: true };
            }
            "queries" => vec![3; self.rng.usize(2..2000)],
            "step1" => self.step1(),
            _ => self.wide_id(server),
        };
        self.binary(kind, bytes)
    }

    fn binary(&self, kind: &'static str, bytes: Vec<u8>) -> Mutant {
        Mutant { kind, bytes, text: false }
    }

    /// A valid frame of the corpus.
    fn base(&mut self) -> Vec<u8> {
        self.corpus.frames[self.rng.usize(..self.corpus.frames.len())].clone()
    }

    fn byte_level(&mut self, kind: &str, mut frame: Vec<u8>) -> Vec<u8> {
        if frame.is_empty() {
            return frame;
        }
        match kind {
            "bitflip" => {
                for _ in 0..self.rng.usize(1..=8) {
                    let at = self.rng.usize(..frame.len());
                    frame[at] ^= 1 << self.rng.u32(..8);
                }
            }
            "bytes" => {
                for _ in 0..self.rng.usize(1..=4) {
                    let at = self.rng.usize(..frame.len());
                    frame[at] = INTERESTING_BYTES[self.rng.usize(..INTERESTING_BYTES.len())];
                }
            }
            "truncate" => frame.truncate(self.rng.usize(..frame.len())),
            "extend" => {
                if self.rng.bool() {
                    frame.extend((0..self.rng.usize(1..32)).map(|_| self.rng.u8(..)));
                } else {
                    let other = self.base();
                    let from = self.rng.usize(..other.len());
                    frame.extend_from_slice(&other[from..]);
                }
            }
            _ => {
                let other = self.base();
                let (cut, from) = (self.rng.usize(..=frame.len()), self.rng.usize(..=other.len()));
                frame.truncate(cut);
                frame.extend_from_slice(&other[from..]);
            }
        }
        frame
    }

    /// A count, length, client id or clock inside the message replaced by a hostile value.
    fn varint(&mut self) -> Vec<u8> {
        let frame = self.base();
        let Some(payload) = payload_start(&frame) else { return frame };
        // The payload's leading varints are its counts, ids, clocks and first lengths.
        let mut fields = Vec::new();
        let mut at = payload;
        while fields.len() < 8 {
            let Some((_, len)) = read_var(&frame, at) else { break };
            fields.push((at, len));
            at += len;
        }
        let Some(&(at, len)) = fields.get(self.rng.usize(..fields.len().max(1))) else { return frame };
        let (old, _) = read_var(&frame, at).expect("read above");
        let new = match self.rng.u32(..4) {
            0 => old.wrapping_add(1),
            1 => old.wrapping_sub(1),
            2 => old.wrapping_mul(2).max(1) << self.rng.u32(..20),
            _ => HOSTILE_VALUES[self.rng.usize(..HOSTILE_VALUES.len())],
        };
        let mut out = frame[..at].to_vec();
        if self.rng.u32(..10) == 0 {
            // Overlong: more continuation bytes than any varint has.
            out.extend(std::iter::repeat_n(0x80, self.rng.usize(10..20)));
            out.push(1);
        } else {
            write_var(&mut out, new);
        }
        out.extend_from_slice(&frame[at + len..]);
        out
    }

    /// The message's own length prefix: short, long, or absurd.
    fn length(&mut self) -> Vec<u8> {
        let frame = self.base();
        let Some(payload) = payload_start(&frame) else { return frame };
        let len_at = length_at(&frame).expect("a payload has a length");
        let real = (frame.len() - payload) as u64;
        let new = match self.rng.u32(..3) {
            0 => real + self.rng.u64(1..16),
            1 => real.saturating_sub(self.rng.u64(1..16)),
            _ => HOSTILE_VALUES[self.rng.usize(..HOSTILE_VALUES.len())],
        };
        let mut out = frame[..len_at].to_vec();
        write_var(&mut out, new);
        out.extend_from_slice(&frame[payload..]);
        out
    }

    /// Another message type or sync step on the same payload.
    fn message_type(&mut self) -> Vec<u8> {
        let mut frame = self.base();
        let types = [0u64, 1, 2, 3, 4, 5, 9, 100, 127, 128, 255, 1 << 32];
        let new = types[self.rng.usize(..types.len())];
        let at = if frame.first() == Some(&0) && frame.len() > 1 && self.rng.bool() { 1 } else { 0 };
        let Some((_, len)) = read_var(&frame, at) else { return frame };
        let mut out = frame[..at].to_vec();
        write_var(&mut out, new);
        out.extend_from_slice(&frame[at + len..]);
        frame = out;
        frame
    }

    /// Several messages in one frame, one of them perhaps broken.
    fn concat(&mut self) -> Vec<u8> {
        let mut frame = Vec::new();
        let n = self.rng.usize(2..=5);
        let broken = self.rng.usize(..n + 1); // n: none broken
        for i in 0..n {
            let mut part = self.base();
            if i == broken {
                let kind = ["bitflip", "truncate", "bytes"][self.rng.usize(..3)];
                part = self.byte_level(kind, part);
            }
            frame.extend(part);
        }
        frame
    }

    /// A whole frame where a payload belongs.
    fn nested(&mut self) -> Vec<u8> {
        let mut inner = self.base();
        for _ in 0..self.rng.usize(0..3) {
            inner = protocol::encode(&Message::Sync(SyncMessage::Update(inner)));
        }
        match self.rng.u32(..3) {
            0 => protocol::encode(&Message::Sync(SyncMessage::Update(inner))),
            1 => {
                let mut frame = vec![0, 0]; // a sync step 1 whose state vector is a frame
                write_buf(&mut frame, &inner);
                frame
            }
            _ => {
                let mut frame = vec![1];
                write_buf(&mut frame, &inner);
                frame
            }
        }
    }

    /// The next item under a client id the server knows (a live editor's, perhaps), at exactly
    /// the server's clock for it: valid, and it would take the clock the owner uses next.
    fn impostor(&mut self, server: &StateVector) -> Vec<u8> {
        let known: Vec<(u64, u32)> = server.iter().map(|(c, &k)| (c.get(), k)).filter(|&(_, k)| k > 0).collect();
        let Some(&(client, clock)) = known.get(self.rng.usize(..known.len().max(1))) else {
            return self.gap(server);
        };
        update_frame(string_item(client, clock, Some((client, clock - 1)), "IMPOSTOR"))
    }

    /// An item whose left neighbour the server does not have.
    fn gap(&mut self, server: &StateVector) -> Vec<u8> {
        let known: Vec<(u64, u32)> = server.iter().map(|(c, &k)| (c.get(), k)).collect();
        let (client, clock) = match known.get(self.rng.usize(..known.len() + 1)) {
            Some(&(client, clock)) => (client, clock + self.rng.u32(1..100)),
            None => (self.rng.u64(1..1 << CLIENT_ID_BITS), self.rng.u32(1..1000)),
        };
        update_frame(string_item(client, clock, Some((client, clock - 1)), "GAP"))
    }

    fn presence_big(&mut self) -> Vec<u8> {
        let name = "n".repeat(self.rng.usize(8 * 1024..64 * 1024));
        let json = format!(r#"{{"user":{{"name":"{name}"}}}}"#);
        let client = self.rng.u64(1..1 << CLIENT_ID_BITS);
        presence(&[(client, 1, json.as_bytes())])
    }

    fn presence_many(&mut self) -> Vec<u8> {
        let json = br#"{"user":{"name":"many"}}"#;
        let entries: Vec<(u64, u64, &[u8])> =
            (0..self.rng.usize(9..200)).map(|_| (self.rng.u64(1..1 << CLIENT_ID_BITS), 1, &json[..])).collect();
        presence(&entries)
    }

    fn presence_bad(&mut self) -> Vec<u8> {
        let client = self.rng.u64(1..1 << CLIENT_ID_BITS);
        let deep = "[".repeat(self.rng.usize(100..2000));
        let json: Vec<u8> = match self.rng.u32(..6) {
            0 => b"{".to_vec(),
            1 => b"null".to_vec(),
            2 => deep.into_bytes(),
            3 => vec![0xff, 0xfe, b'{', b'}'],
            4 => b"{\"user\":1}".to_vec(),
            _ => Vec::new(),
        };
        let clock = if self.rng.bool() { 1 } else { HOSTILE_VALUES[self.rng.usize(..HOSTILE_VALUES.len())] };
        presence(&[(client, clock, &json)])
    }

    /// A valid presence under an id the document knows (an editor's).
    fn presence_spoof(&mut self, server: &StateVector) -> Vec<u8> {
        let known: Vec<u64> = server.iter().map(|(c, _)| c.get()).collect();
        let client = known.get(self.rng.usize(..known.len().max(1))).copied().unwrap_or(1);
        let json = br##"{"user":{"name":"spoof","color":"#000"}}"##;
        presence(&[(client, self.rng.u64(0..100), json)])
    }

    /// An `Any` value nested around serde_json's limit and the walk's (128), and past both.
    fn deep(&mut self) -> Vec<u8> {
        let depth = self.rng.usize(1..400);
        let mut any = Vec::new();
        for _ in 0..depth {
            if self.rng.bool() {
                any.extend([117, 1]); // an array of one
            } else {
                any.extend([118, 1, 1, b'k']); // a map of one, key "k"
            }
        }
        any.extend([125, 0]); // the integer 0
        let mut block = vec![8]; // ItemContent::Any, parent given by name
        write_var(&mut block, 1);
        write_buf(&mut block, CONTENT.as_bytes());
        write_var(&mut block, 1);
        block.extend(any);
        update_frame(one_block(self.rng.u64(1..1 << CLIENT_ID_BITS), 0, &block))
    }

    fn subdoc(&mut self) -> Vec<u8> {
        let mut block = vec![9]; // ItemContent::Doc
        write_var(&mut block, 1);
        write_buf(&mut block, CONTENT.as_bytes());
        write_buf(&mut block, b"guid");
        block.extend([118, 0]); // options: an empty map
        update_frame(one_block(self.rng.u64(1..1 << CLIENT_ID_BITS), 0, &block))
    }

    fn random_bytes(&mut self) -> Vec<u8> {
        let len = if self.rng.u32(..10) == 0 { self.rng.usize(..4096) } else { self.rng.usize(..64) };
        (0..len).map(|_| self.rng.u8(..)).collect()
    }

    /// A state vector of random clients and clocks, some absurd.
    fn step1(&mut self) -> Vec<u8> {
        let mut sv = Vec::new();
        let n = self.rng.usize(..50);
        write_var(&mut sv, n as u64);
        for _ in 0..n {
            write_var(&mut sv, self.rng.u64(1..1 << CLIENT_ID_BITS));
            write_var(&mut sv, if self.rng.bool() { self.rng.u64(..1000) } else { u64::from(u32::MAX) });
        }
        let mut frame = vec![0, 0];
        write_buf(&mut frame, &sv);
        frame
    }

    /// Client ids past 53 bits, where yrs keeps only the low bits: in an update, a presence
    /// entry, a state vector.
    fn wide_id(&mut self, server: &StateVector) -> Vec<u8> {
        let low = server.iter().map(|(c, _)| c.get()).next().unwrap_or(1);
        let wide = (self.rng.u64(1..1 << 10) << CLIENT_ID_BITS) | low;
        match self.rng.u32(..3) {
            0 => update_frame(string_item(wide, 0, None, "WIDE")),
            1 => presence(&[(wide, 1, br#"{"user":{"name":"wide"}}"#)]),
            _ => {
                let mut sv = Vec::new();
                write_var(&mut sv, 1);
                write_var(&mut sv, wide);
                write_var(&mut sv, 0);
                let mut frame = vec![0, 0];
                write_buf(&mut frame, &sv);
                frame
            }
        }
    }

    /// One byte over the server's message limit.
    fn oversize(&mut self) -> Vec<u8> {
        let mut frame = vec![0, 2];
        write_buf(&mut frame, &vec![0; self.max_message_bytes + 1]);
        frame
    }
}

/// A v1 update holding one string item of `client` at `clock`, after `origin` if given, else at
/// the start of the `content` text.
fn string_item(client: u64, clock: u32, origin: Option<(u64, u32)>, text: &str) -> Vec<u8> {
    let mut block = Vec::new();
    match origin {
        Some((origin_client, origin_clock)) => {
            block.push(0x80 | 4); // has origin; ItemContent::String
            write_var(&mut block, origin_client);
            write_var(&mut block, origin_clock.into());
        }
        None => {
            block.push(4);
            write_var(&mut block, 1);
            write_buf(&mut block, CONTENT.as_bytes());
        }
    }
    write_buf(&mut block, text.as_bytes());
    one_block(client, clock, &block)
}

/// A v1 update of one client with one block (already encoded), and no deletions.
fn one_block(client: u64, clock: u32, block: &[u8]) -> Vec<u8> {
    let mut update = Vec::new();
    write_var(&mut update, 1);
    write_var(&mut update, 1);
    write_var(&mut update, client);
    write_var(&mut update, clock.into());
    update.extend_from_slice(block);
    update.push(0); // empty delete set
    update
}

fn update_frame(update: Vec<u8>) -> Vec<u8> {
    protocol::encode(&protocol::update_message(update))
}

/// An awareness message of (client, clock, JSON) entries, written by hand: yrs would not
/// write some of them (a clock past 32 bits, JSON that is not UTF-8).
fn presence(entries: &[(u64, u64, &[u8])]) -> Vec<u8> {
    let mut payload = Vec::new();
    write_var(&mut payload, entries.len() as u64);
    for (client, clock, json) in entries {
        write_var(&mut payload, *client);
        write_var(&mut payload, *clock);
        write_buf(&mut payload, json);
    }
    let mut frame = vec![1];
    write_buf(&mut frame, &payload);
    frame
}

/// lib0's unsigned varint.
pub fn write_var(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push(n as u8 | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn write_buf(out: &mut Vec<u8>, bytes: &[u8]) {
    write_var(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// The varint at `at`: its value and how many bytes it takes.
fn read_var(bytes: &[u8], at: usize) -> Option<(u64, usize)> {
    let mut value = 0u64;
    for (i, &byte) in bytes.get(at..)?.iter().enumerate().take(10) {
        value |= u64::from(byte & 0x7f).checked_shl(7 * i as u32).unwrap_or(0);
        if byte & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    None
}

/// Where the first message's length prefix is: after the type, and a sync message's step.
fn length_at(frame: &[u8]) -> Option<usize> {
    let (tag, len) = read_var(frame, 0)?;
    match tag {
        0 => Some(len + read_var(frame, len)?.1),
        1 => Some(len),
        _ => None,
    }
}

/// Where the first message's payload starts.
fn payload_start(frame: &[u8]) -> Option<usize> {
    let at = length_at(frame)?;
    Some(at + read_var(frame, at)?.1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_made_updates_are_what_yrs_reads() {
        let doc = quire_model::schema::doc_with_client_id(9);
        let first = string_item(7, 0, None, "ab");
        protocol::apply_bytes(&doc, &first).unwrap().expect("it applies");
        let next = string_item(7, 2, Some((7, 1)), "cd");
        protocol::apply_bytes(&doc, &next).unwrap().expect("it applies");
        let text = yrs::GetString::get_string(&doc.get_or_insert_text(CONTENT), &yrs::Transact::transact(&doc));
        assert_eq!(text, "abcd");
    }
}
