//! Markdown: CommonMark with GitHub's `~~strikethrough~~`, read with pulldown-cmark.
//!
//! A Quill line is a Markdown block: a paragraph, a heading, one list item, one paragraph of a
//! quote, one line of a fenced code block. Export writes the canonical form that import reads
//! back to the same document (and so to the same Markdown): blocks separated by a blank line,
//! tight lists, `**bold**`, `*italic*`, `~~strike~~`, `<u>underline</u>`, and every character
//! that Markdown would read as syntax escaped. Where CommonMark would not read a delimiter back
//! (`x**bold.**next`: a delimiter between punctuation and a letter does not count), that line's
//! emphasis is written as inline HTML instead (`x<strong>bold.</strong>next`).
//!
//! Not mapped (Quill has no such format, or embeds, which are out of scope): images (their alt
//! text is kept), thematic breaks, tables, footnotes, nested list levels (items are flattened
//! into one list), empty paragraphs and empty quote lines (Markdown has none), HTML blocks (kept
//! as literal text) and inline HTML tags other than `<strong>`/`<b>`, `<em>`/`<i>`,
//! `<s>`/`<del>`, `<u>` and `<br>` (dropped, their text kept).

mod read;
mod write;

pub(crate) use read::parse;
pub(crate) use write::render;
