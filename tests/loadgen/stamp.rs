//! The timestamp every keystroke inserts, and the scanner that finds it again in raw update bytes.
//!
//! A keystroke inserts `"\u{1}<slot>:<µs>\u{2}"`: the writer's slot within its document, then the
//! send time as exactly [`DIGITS`] digits of microseconds since `Stats::base` (writers and
//! readers share one process and one clock). In a v1 Yjs update, inserted string content is
//! stored verbatim as UTF-8 behind a length prefix, so a reader finds the stamps by scanning the
//! update's bytes, without decoding it or keeping a replica.
//!
//! Why a match cannot be anything but a stamp: the pattern needs at least 14 bytes in
//! `b'0'..=b':'` (0x30–0x3A) in a row between 0x01 and 0x02. Outside string content a v1 update
//! is varints and info bytes. A multi-byte varint has at most one byte below 0x80, and no info
//! byte falls in 0x30–0x3A (that needs content ref 16–26, which do not exist), so such a run is
//! at most the varints between two info bytes or before the first (struct count, client,
//! clock; origin, right origin, length): five. The delete set is empty (nobody deletes), the
//! only other string is the root name `content` (letters), and our own strings hold digits only
//! inside stamps.
//!
//! Why no stamp is ever cut in two: a Yjs item is split only where another insert refers to a
//! position inside it. Writers only append to their own text (see `writer`), so every insert
//! refers to the last character of its writer's previous insert, the closing 0x02: no item is
//! split, on the writer, the server or any peer, and a stamp always travels whole. Merged
//! updates may put several stamps in one string; the scanner finds each.

/// Digits of the microsecond field: 10^12 µs is eleven days, far beyond any run.
pub const DIGITS: usize = 12;
const START: u8 = 0x01;
const END: u8 = 0x02;
const SEPARATOR: u8 = b':';
/// At most this many digits of slot; `Load` refuses more writers per document than fit.
pub const SLOT_DIGITS: usize = 4;

/// One keystroke as it was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    /// The writer's index among its document's writers.
    pub slot: usize,
    /// When it was sent, in µs since `Stats::base`.
    pub sent_us: u64,
}

impl Stamp {
    /// The string a writer inserts.
    pub fn text(self) -> String {
        debug_assert!(self.sent_us < 10u64.pow(DIGITS as u32), "a stamp must fit {DIGITS} digits");
        format!("\u{1}{}:{:0width$}\u{2}", self.slot, self.sent_us, width = DIGITS)
    }
}

/// Every stamp in `update`, in byte order.
pub fn scan(update: &[u8]) -> Scan<'_> {
    Scan { rest: update }
}

pub struct Scan<'a> {
    rest: &'a [u8],
}

impl Iterator for Scan<'_> {
    type Item = Stamp;

    fn next(&mut self) -> Option<Stamp> {
        loop {
            let at = self.rest.iter().position(|&b| b == START)?;
            self.rest = &self.rest[at + 1..];
            if let Some((stamp, len)) = parse(self.rest) {
                self.rest = &self.rest[len..];
                return Some(stamp);
            }
            // A 0x01 that is part of the update's structure: look further.
        }
    }
}

/// A stamp at the start of `bytes` (just after its 0x01), and how many bytes it takes.
fn parse(bytes: &[u8]) -> Option<(Stamp, usize)> {
    let slot_len = bytes.iter().take(SLOT_DIGITS + 1).take_while(|b| b.is_ascii_digit()).count();
    if slot_len == 0 || slot_len > SLOT_DIGITS || bytes.get(slot_len) != Some(&SEPARATOR) {
        return None;
    }
    let digits = bytes.get(slot_len + 1..slot_len + 1 + DIGITS)?;
    if !digits.iter().all(u8::is_ascii_digit) || bytes.get(slot_len + 1 + DIGITS) != Some(&END) {
        return None;
    }
    let slot = decimal(&bytes[..slot_len]) as usize;
    Some((Stamp { slot, sent_us: decimal(digits) }, slot_len + DIGITS + 2))
}

/// ASCII digits (checked by the caller) as a number; at most 12 digits, so no overflow.
fn decimal(digits: &[u8]) -> u64 {
    digits.iter().fold(0, |n, d| n * 10 + u64::from(d - b'0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stamp_reads_back() {
        let stamp = Stamp { slot: 3, sent_us: 1_234_567 };
        assert_eq!(stamp.text(), "\u{1}3:000001234567\u{2}");
        let found: Vec<_> = scan(stamp.text().as_bytes()).collect();
        assert_eq!(found, [stamp]);
    }

    #[test]
    fn near_misses_are_skipped_and_neighbours_found() {
        let a = Stamp { slot: 0, sent_us: 42 }.text();
        let b = Stamp { slot: 1, sent_us: 999_999_999_999 }.text();
        let mut bytes = vec![1, 0x35, 2, 1, 1, b'7', b':', b'1', 2, 1]; // structural-looking noise
        bytes.extend(b"\x011:12345\x02"); // too few digits
        bytes.extend(b"\x0112345:000000000001\x02"); // slot too long
        bytes.extend(b"\x011:0000000000011"); // no terminator
        bytes.extend(a.as_bytes());
        bytes.extend(b.as_bytes()); // merged strings: back to back
        bytes.push(1);
        let found: Vec<_> = scan(&bytes).collect();
        assert_eq!(found, [Stamp { slot: 0, sent_us: 42 }, Stamp { slot: 1, sent_us: 999_999_999_999 }]);
    }
}
