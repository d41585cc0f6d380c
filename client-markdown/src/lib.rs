//! The browser's Markdown writer, a WebAssembly module of its own.
//!
//! When the server will not take a device's changes any more (its access was removed, the
//! document was deleted, or this copy belongs to a deleted document of the same id), the app
//! offers them for download as Markdown, written here by quire-model's writer: the same code
//! as the server's `GET /api/docs/{id}/content?format=markdown`, so both give the same file for
//! the same document.
//!
//! Why not a method of client-wasm's `QuireDoc`: the writer checks each line by reading it back
//! with pulldown-cmark, and the two cost 87 KB of gzipped module (measured: 137.7 KB → 224.9 KB
//! with `cargo xtask wasm`), which every page would download for a rare moment. As a module of
//! its own it is fetched only then (`web/src/markdown.ts`).
//!
//! ```js
//! await init({ module_or_path: "/assets/quire_markdown_bg.wasm" });
//! const text = markdown(doc.encodeState());
//! ```

use quire_model::{convert, protocol, schema};
use wasm_bindgen::prelude::*;

/// The body of the document in `state` (a v1 update holding the whole document, as
/// `QuireDoc.encodeState()` gives it) as Markdown. Throws on bytes that are not such a state,
/// or a document whose Markdown would be out of proportion to it.
#[wasm_bindgen]
pub fn markdown(state: &[u8]) -> Result<String, JsError> {
    write(state).map_err(|e| JsError::new(&e))
}

/// [`markdown`] with its error as text (`JsError` exists only on wasm32, and tests run natively).
pub fn write(state: &[u8]) -> Result<String, String> {
    let doc = schema::new_doc();
    protocol::apply_bytes(&doc, state).map_err(|e| format!("not a document state: {e}"))?;
    convert::export_markdown(&doc).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use quire_model::convert::{export, import, Format};
    use quire_model::{protocol, schema};

    use super::write;

    /// A document in every format quire has, with text that Markdown would misread unescaped
    /// and emphasis whose delimiters would not read back (so the writer falls back to tags).
    const MARKDOWN: &str = "# Title *with* `code`\n\nA **bold** and *italic* and ~~gone~~ and <u>under</u>, \
        [a link](https://example.com/a_b) 文字 😀\n\n- one\n- two\n\n1. first\n2. second\n\n> quoted\n\n\
        ```\nfn main() {}\n```\n\n\\# not a heading, 1. not a list, \\*not emphasis\\*\n\n\
        x<strong>bold.</strong>next\n";

    #[test]
    fn writes_what_the_servers_export_writes() {
        let doc = schema::new_doc();
        import(&doc, Format::Markdown, MARKDOWN).unwrap();
        let server = export(&doc, Format::Markdown).unwrap();
        assert_eq!(
            server, MARKDOWN,
            "the fixture is in the writer's canonical form"
        );
        assert_eq!(write(&protocol::full_state(&doc)).unwrap(), server);
    }

    #[test]
    fn an_empty_document_is_empty_markdown() {
        let doc = schema::new_doc();
        assert_eq!(write(&protocol::full_state(&doc)).unwrap(), "");
    }

    #[test]
    fn refuses_what_is_not_a_state() {
        assert!(write(&[0xff, 0xff, 0xff])
            .unwrap_err()
            .starts_with("not a document state"));
    }
}
