//! The y-websocket message framing and the v1 encodings of updates, state vectors and awareness
//! updates, walked without allocating before yrs sees the bytes.
//!
//! yrs 0.28 reserves memory from counts it reads: `try_reserve(n)` for an update's clients and
//! each client's blocks, state vector and awareness entries, an item's `Any` values and JSON
//! strings, `Any` arrays and maps. A few bytes can declare four billion entries, and the request
//! for gigabytes either succeeds (touching memory the input never paid for) or is refused only
//! where the system refuses it. Its `Any` decoder also recurses once per nesting level, so
//! `[117, 1]` repeated overflows the stack, which aborts the process: `catch_unwind` cannot help.
//!
//! Every counted element takes at least one byte (most take more, see each `fits` call), so a
//! count larger than the bytes left can only be hostile: the walk refuses it, and refuses values
//! nested deeper than [`MAX_DEPTH`]. It mirrors yrs 0.28.1's decoders read for read
//! (`Message`, `SyncMessage`, `StateVector`, `AwarenessUpdate`, `Update`, `Update::decode_block`,
//! `ItemContent`, `TypeRef`, `Options`, `IdSet`, `Any`) and reads varints with yrs's own `Cursor`,
//! so every count means here exactly what it will mean to yrs. Bytes that pass therefore make yrs
//! reserve at most a fixed multiple of their length.
//!
//! What the walk does not check is left to yrs: UTF-8, the JSON inside embeds and formats
//! (serde_json, which allocates as it reads and stops at 128 levels), whether blocks make sense.

use yrs::block::{
    BLOCK_GC_REF_NUMBER, BLOCK_ITEM_ANY_REF_NUMBER, BLOCK_ITEM_BINARY_REF_NUMBER,
    BLOCK_ITEM_DELETED_REF_NUMBER, BLOCK_ITEM_DOC_REF_NUMBER, BLOCK_ITEM_EMBED_REF_NUMBER,
    BLOCK_ITEM_FORMAT_REF_NUMBER, BLOCK_ITEM_JSON_REF_NUMBER, BLOCK_ITEM_STRING_REF_NUMBER,
    BLOCK_ITEM_TYPE_REF_NUMBER, BLOCK_SKIP_REF_NUMBER, HAS_ORIGIN, HAS_PARENT_SUB,
    HAS_RIGHT_ORIGIN,
};
use yrs::encoding::read::{Cursor, Error as ReadError, Read};
use yrs::sync::protocol::{
    MSG_AUTH, MSG_AWARENESS, MSG_QUERY_AWARENESS, MSG_SYNC, MSG_SYNC_STEP_1, MSG_SYNC_STEP_2,
    MSG_SYNC_UPDATE, PERMISSION_DENIED,
};
use yrs::types::{
    TYPE_REFS_ARRAY, TYPE_REFS_DOC, TYPE_REFS_MAP, TYPE_REFS_TEXT, TYPE_REFS_UNDEFINED,
    TYPE_REFS_XML_ELEMENT, TYPE_REFS_XML_FRAGMENT, TYPE_REFS_XML_HOOK, TYPE_REFS_XML_TEXT,
};

use super::ProtocolError;

/// The deepest nesting of `Any` values accepted: serde_json's default recursion limit, so a
/// value that passes here can also be read back from the JSON that yrs writes for it.
pub const MAX_DEPTH: usize = 128;
/// Bits of a Yjs client id: a JavaScript safe integer.
pub const CLIENT_ID_BITS: u32 = 53;

/// Why a walk stopped.
#[derive(Debug)]
pub(super) enum Refusal {
    /// The bytes end early, or hold a value yrs would refuse too.
    Read(ReadError),
    /// A count the bytes after it cannot hold.
    Oversized {
        what: &'static str,
        count: u64,
        room: usize,
    },
    TooDeep,
    /// A client id past 53 bits.
    ClientId(u64),
    /// A subdocument: quire's documents have none, and a few bytes of one decode into a whole
    /// `Doc` (about a hundred times their size).
    Subdocument,
}

impl Refusal {
    /// The error for this refusal; `read` says what a read error means where the walk ran.
    pub(super) fn into_error(self, read: fn(ReadError) -> ProtocolError) -> ProtocolError {
        match self {
            Refusal::Read(e) => read(e),
            Refusal::Oversized { what, count, room } => {
                ProtocolError::Oversized { what, count, room }
            }
            Refusal::TooDeep => ProtocolError::TooDeep,
            Refusal::ClientId(client) => ProtocolError::ClientId(client),
            Refusal::Subdocument => ProtocolError::Subdocument,
        }
    }
}

impl From<ReadError> for Refusal {
    fn from(e: ReadError) -> Self {
        Refusal::Read(e)
    }
}

type Walked = Result<(), Refusal>;

/// One WebSocket frame: messages back to back until the bytes end. (yrs's `MessageReader` stops
/// quietly at a truncated message; the walk refuses it, so a frame is read whole or not at all.)
pub(super) fn frame(bytes: &[u8]) -> Walked {
    let mut walk = Walk::new(bytes);
    while walk.cursor.has_content() {
        walk.message()?;
    }
    Ok(())
}

/// A v1 update.
pub(super) fn update(bytes: &[u8]) -> Walked {
    Walk::new(bytes).update()
}

struct Walk<'a> {
    cursor: Cursor<'a>,
}

impl<'a> Walk<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Walk {
            cursor: Cursor::new(bytes),
        }
    }

    fn room(&self) -> usize {
        self.cursor.buf.len() - self.cursor.next
    }

    /// Refuses `count` elements of at least `min_size` bytes each if the bytes left cannot hold
    /// them. Called right after reading a count, before the loop yrs would reserve for.
    fn fits(&self, what: &'static str, count: u64, min_size: u64) -> Walked {
        let room = self.room();
        if count.saturating_mul(min_size) > room as u64 {
            return Err(Refusal::Oversized { what, count, room });
        }
        Ok(())
    }

    /// A length-prefixed byte string (`read_buf`, `read_string`). The length is checked here
    /// rather than by `Cursor::read_exact`, whose `next + len` can overflow on 32-bit targets.
    fn buf(&mut self) -> Result<&'a [u8], Refusal> {
        let len: u32 = self.cursor.read_var()?;
        let len = len as usize;
        if len > self.room() {
            return Err(ReadError::EndOfBuffer(len).into());
        }
        let start = self.cursor.next;
        self.cursor.next += len;
        Ok(&self.cursor.buf[start..start + len])
    }

    fn skip(&mut self, len: usize) -> Walked {
        self.cursor.read_exact(len)?;
        Ok(())
    }

    /// `Message::decode` and `SyncMessage::decode`.
    fn message(&mut self) -> Walked {
        let tag: u8 = self.cursor.read_var()?;
        match tag {
            MSG_SYNC => {
                let kind: u8 = self.cursor.read_var()?;
                match kind {
                    MSG_SYNC_STEP_1 => Walk::new(self.buf()?).state_vector(),
                    // Update payloads are copied whole here and walked by `update` when the
                    // caller decodes them (`decode_update`).
                    MSG_SYNC_STEP_2 | MSG_SYNC_UPDATE => self.buf().map(drop),
                    _ => Err(ReadError::UnexpectedValue.into()),
                }
            }
            MSG_AWARENESS => Walk::new(self.buf()?).awareness(),
            MSG_AUTH => {
                let permission: u8 = self.cursor.read_var()?;
                if permission == PERMISSION_DENIED {
                    self.buf()?;
                }
                Ok(())
            }
            MSG_QUERY_AWARENESS => Ok(()),
            _ => self.buf().map(drop),
        }
    }

    /// `StateVector::decode`: a count, then (client, clock) pairs of at least two bytes.
    fn state_vector(&mut self) -> Walked {
        let len: u32 = self.cursor.read_var()?;
        self.fits("state vector", len.into(), 2)?;
        for _ in 0..len {
            self.client()?;
            let _clock: u32 = self.cursor.read_var()?;
        }
        Ok(())
    }

    /// `AwarenessUpdate::decode`: a count, then (client, clock, JSON) of at least three bytes.
    fn awareness(&mut self) -> Walked {
        let len: usize = self.cursor.read_var()?;
        self.fits("awareness update", len as u64, 3)?;
        for _ in 0..len {
            self.client()?;
            let _clock: u32 = self.cursor.read_var()?;
            self.buf()?;
        }
        Ok(())
    }

    /// `Update::decode`: blocks grouped by client, then the delete set.
    fn update(&mut self) -> Walked {
        let clients: u32 = self.cursor.read_var()?;
        // Each client: its block count, its id and its first clock.
        self.fits("update", clients.into(), 3)?;
        for _ in 0..clients {
            let blocks: u32 = self.cursor.read_var()?;
            self.client()?;
            let _clock: u32 = self.cursor.read_var()?;
            // The smallest block, GC or skip, is an info byte and a length.
            self.fits("client's block list", blocks.into(), 2)?;
            for _ in 0..blocks {
                self.block()?;
            }
        }
        self.delete_set()
    }

    /// `Update::decode_block`.
    fn block(&mut self) -> Walked {
        let info = self.cursor.read_u8()?;
        if info == BLOCK_SKIP_REF_NUMBER || info == BLOCK_GC_REF_NUMBER {
            let _len: u32 = self.cursor.read_var()?;
            return Ok(());
        }
        if info & HAS_ORIGIN != 0 {
            self.id()?;
        }
        if info & HAS_RIGHT_ORIGIN != 0 {
            self.id()?;
        }
        if info & (HAS_ORIGIN | HAS_RIGHT_ORIGIN) == 0 {
            // The parent: a root type's name, or the id of the item holding it.
            let named: u32 = self.cursor.read_var()?;
            if named == 1 {
                self.buf()?;
            } else {
                self.id()?;
            }
            if info & HAS_PARENT_SUB != 0 {
                self.buf()?;
            }
        }
        self.content(info & 0b1111)
    }

    /// A client id. Yjs's are JavaScript safe integers (53 bits); yrs keeps only those bits of a
    /// longer one (its debug builds assert), so two ids on the wire would name one client.
    fn client(&mut self) -> Walked {
        let client: u64 = self.cursor.read_var()?;
        if client >> CLIENT_ID_BITS != 0 {
            return Err(Refusal::ClientId(client));
        }
        Ok(())
    }

    fn id(&mut self) -> Walked {
        self.client()?;
        let _clock: u32 = self.cursor.read_var()?;
        Ok(())
    }

    /// `ItemContent::decode`.
    fn content(&mut self, kind: u8) -> Walked {
        match kind {
            BLOCK_ITEM_DELETED_REF_NUMBER => {
                let _len: u32 = self.cursor.read_var()?;
            }
            BLOCK_ITEM_JSON_REF_NUMBER => {
                // yrs reads the count as an i32, then one string more than it says (`while
                // remaining >= 0`); the walk follows it read for read. A count that is negative
                // as an i32 is refused whatever it would mean: no honest item holds 2^31 strings.
                let len: u32 = self.cursor.read_var()?;
                if len > i32::MAX as u32 {
                    let room = self.room();
                    let (what, count) = ("JSON content", len.into());
                    return Err(Refusal::Oversized { what, count, room });
                }
                self.fits("JSON content", u64::from(len) + 1, 1)?;
                for _ in 0..=len {
                    self.buf()?;
                }
            }
            BLOCK_ITEM_BINARY_REF_NUMBER
            | BLOCK_ITEM_STRING_REF_NUMBER
            | BLOCK_ITEM_EMBED_REF_NUMBER => {
                self.buf()?;
            }
            BLOCK_ITEM_FORMAT_REF_NUMBER => {
                self.buf()?;
                self.buf()?;
            }
            BLOCK_ITEM_TYPE_REF_NUMBER => self.type_ref()?,
            BLOCK_ITEM_ANY_REF_NUMBER => {
                let len: u32 = self.cursor.read_var()?;
                self.fits("item's values", len.into(), 1)?;
                for _ in 0..len {
                    self.any(1)?;
                }
            }
            BLOCK_ITEM_DOC_REF_NUMBER => return Err(Refusal::Subdocument),
            _ => return Err(ReadError::UnexpectedValue.into()),
        }
        Ok(())
    }

    /// `TypeRef::decode` as yrs is built here (without its `weak` feature, whose links have
    /// fields of their own and which the walk therefore refuses).
    fn type_ref(&mut self) -> Walked {
        match self.cursor.read_u8()? {
            TYPE_REFS_XML_ELEMENT => self.buf().map(drop),
            TYPE_REFS_ARRAY
            | TYPE_REFS_MAP
            | TYPE_REFS_TEXT
            | TYPE_REFS_XML_FRAGMENT
            | TYPE_REFS_XML_HOOK
            | TYPE_REFS_XML_TEXT
            | TYPE_REFS_DOC
            | TYPE_REFS_UNDEFINED => Ok(()),
            _ => Err(ReadError::UnexpectedValue.into()),
        }
    }

    /// `IdSet::decode`: per client, ranges of (clock, length).
    fn delete_set(&mut self) -> Walked {
        let clients: u32 = self.cursor.read_var()?;
        self.fits("delete set", clients.into(), 2)?;
        for _ in 0..clients {
            self.client()?;
            let ranges: u32 = self.cursor.read_var()?;
            self.fits("client's deleted ranges", ranges.into(), 2)?;
            for _ in 0..ranges {
                let _clock: u32 = self.cursor.read_var()?;
                let _len: u32 = self.cursor.read_var()?;
            }
        }
        Ok(())
    }

    /// `Any::decode`, one tag byte then its value. `depth` counts this value's level.
    fn any(&mut self, depth: usize) -> Walked {
        if depth > MAX_DEPTH {
            return Err(Refusal::TooDeep);
        }
        match self.cursor.read_u8()? {
            // undefined, null, false, true
            127 | 126 | 121 | 120 => {}
            // integer
            125 => {
                let _n: i64 = self.cursor.read_var()?;
            }
            // float32, float64, bigint
            124 => self.skip(4)?,
            123 | 122 => self.skip(8)?,
            // string, buffer
            119 | 116 => {
                self.buf()?;
            }
            // map: (key, value) pairs, a key being at least its length byte
            118 => {
                let len: usize = self.cursor.read_var()?;
                self.fits("value map", len as u64, 2)?;
                for _ in 0..len {
                    self.buf()?;
                    self.any(depth + 1)?;
                }
            }
            // array
            117 => {
                let len: usize = self.cursor.read_var()?;
                self.fits("value array", len as u64, 1)?;
                for _ in 0..len {
                    self.any(depth + 1)?;
                }
            }
            _ => return Err(ReadError::UnexpectedValue.into()),
        }
        Ok(())
    }
}
