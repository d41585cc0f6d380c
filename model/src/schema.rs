//! The document schema: what lives where inside a quire `Doc`.
//!
//! - [`CONTENT`] — YText with the document body. Formatting uses Quill 2's attribute names so a
//!   stock `y-quill` binding edits the same document: inline `bold`, `italic`, `underline`,
//!   `strike`, `code`, `link` (URL string); line attributes (set on the `\n` ending a line)
//!   `header` (1–6), `list` (`"bullet"` | `"ordered"`), `blockquote` (true), `code-block` (true).
//! - [`META`] — YMap of document metadata; [`TITLE`] holds the title as a string.
//!
//! Offsets are UTF-16 code units everywhere (Quill, Delta and Yjs count that way; yrs's default
//! is UTF-8 bytes), which is why every `Doc` must come from [`new_doc`] or [`doc_with_client_id`].

use yrs::{ClientID, Doc, OffsetKind, Options};

/// Name of the root YText holding the document body.
pub const CONTENT: &str = "content";
/// Name of the root YMap holding document metadata.
pub const META: &str = "meta";
/// Key in [`META`] holding the title.
pub const TITLE: &str = "title";

/// Options every quire `Doc` is built with.
pub fn doc_options() -> Options {
    Options {
        offset_kind: OffsetKind::Utf16,
        ..Options::default()
    }
}

/// A new, empty document with a random client id.
pub fn new_doc() -> Doc {
    Doc::with_options(doc_options())
}

/// A new, empty document with a fixed client id (tests, replay).
pub fn doc_with_client_id(client_id: u64) -> Doc {
    Doc::with_options(Options {
        client_id: ClientID::new(client_id),
        ..doc_options()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use yrs::{GetString, Text, Transact};

    #[test]
    fn offsets_count_utf16_code_units() {
        let doc = doc_with_client_id(1);
        let text = doc.get_or_insert_text(CONTENT);
        let mut txn = doc.transact_mut();
        text.insert(&mut txn, 0, "文档😀!");
        // "文档" is 2 units, the emoji a surrogate pair (2 units): index 4 is before '!'.
        text.insert(&mut txn, 4, "x");
        assert_eq!(text.get_string(&txn), "文档😀x!");
        assert_eq!(text.len(&txn), 6);
    }
}
