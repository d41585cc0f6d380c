//! HTML: export writes a fragment of semantic elements; import reads real-world HTML.
//!
//! Import tokenizes with html5gum, a WHATWG-compliant tokenizer (entities, comments, attribute
//! quoting, raw-text `<script>`/`<style>` — the hard part of reading tag soup) that has no
//! dependencies and no unsafe code. html5ever would add a full tree builder at the cost of some
//! twenty crates (string_cache, phf, tendril …); scraper adds CSS selectors on top of that;
//! tl trades spec compliance for speed. A tree builder mostly fixes mis-nested tags,
//! which matters little here: Quill's model is flat (one block format per line, a set of inline
//! marks), so the importer keeps a small [`Context`] of open containers and mark counts instead
//! of a DOM, and closes `<p>` and `<li>` implicitly the way a browser would.
//!
//! Export escapes every text and attribute value. A link whose URL is not safe never reaches it
//! (see `attrs::Link`): the text stays, without the link.
//!
//! Not mapped on import: images and other embeds, tables (each row becomes a line, cells are
//! separated by a space), `<hr>`, nested list levels (flattened), inline styles and classes, and
//! anything inside `<script>`, `<style>`, `<template>`, `<title>` and similar elements (skipped).

use std::sync::Arc;

use html5gum::{DefaultEmitter, StartTag, Token, Tokenizer};

use super::attrs::{Block, ListKind, Mark, Marks};
use super::budget::Budget;
use super::lines::{groups, walk_inline, Context, Counted, InlineSink, Line, LineBuilder};
use super::ConvertError;

/// The HTML fragment for `lines`, one block element per line of output. What is written is
/// spent from `budget` line by line: a link over many lines is written on each of them.
pub(crate) fn render(lines: &[Line], budget: &Budget) -> Result<String, ConvertError> {
    let mut out = String::new();
    let mut spent = 0;
    let mut spend = |out: &String| {
        let written = out.len() - spent;
        spent = out.len();
        budget.spend(written)
    };
    for group in groups(lines) {
        match &group[0].block {
            Block::Paragraph => element(&mut out, "p", &group[0]),
            Block::Header(level) => element(&mut out, &format!("h{level}"), &group[0]),
            Block::List(kind) => {
                let list = if *kind == ListKind::Ordered {
                    "ol"
                } else {
                    "ul"
                };
                out.push_str(&format!("<{list}>\n"));
                for line in group {
                    element(&mut out, "li", line);
                    spend(&out)?;
                }
                out.push_str(&format!("</{list}>\n"));
            }
            Block::Blockquote => {
                out.push_str("<blockquote>\n");
                for line in group {
                    element(&mut out, "p", line);
                    spend(&out)?;
                }
                out.push_str("</blockquote>\n");
            }
            Block::Code(language) => {
                out.push_str("<pre><code");
                if let Some(language) = language {
                    // The class highlight.js and Prism look for.
                    out.push_str(" class=\"language-");
                    escape_into(&mut out, &language.0);
                    out.push('"');
                }
                out.push('>');
                // Every line ends in "\n", so an empty last line survives the trip back.
                for line in group {
                    for span in &line.spans {
                        escape_into(&mut out, &span.text);
                    }
                    out.push('\n');
                    spend(&out)?;
                }
                out.push_str("</code></pre>\n");
            }
        }
        spend(&out)?;
    }
    Ok(out)
}

/// `<tag>text</tag>`; an empty line is `<tag><br></tag>`, as Quill renders it (an empty element
/// would have no height, and import would not see a line).
fn element(out: &mut String, tag: &str, line: &Line) {
    out.push_str(&format!("<{tag}>"));
    if line.is_empty() {
        out.push_str("<br>");
    }
    let mut sink = HtmlSink(out);
    walk_inline(&line.spans, &mut sink);
    out.push_str(&format!("</{tag}>\n"));
}

struct HtmlSink<'a>(&'a mut String);

impl InlineSink for HtmlSink<'_> {
    fn open(&mut self, mark: &Mark) {
        match mark {
            Mark::Link(link) => {
                self.0.push_str("<a href=\"");
                escape_into(self.0, link.url());
                self.0.push_str("\">");
            }
            other => self.0.push_str(&format!("<{}>", tag(other))),
        }
    }

    fn close(&mut self, mark: &Mark) {
        self.0.push_str(&format!("</{}>", tag(mark)));
    }

    fn text(&mut self, text: &str, _: &Marks) {
        escape_into(self.0, text);
    }
}

fn tag(mark: &Mark) -> &'static str {
    match mark {
        Mark::Link(_) => "a",
        Mark::Bold => "strong",
        Mark::Italic => "em",
        Mark::Underline => "u",
        Mark::Strike => "s",
        Mark::Code => "code",
    }
}

/// Escapes the five characters with a meaning in HTML text or a quoted attribute value. Written
/// straight into the output: a link's URL goes out once per line it covers, and a copy of it
/// each time would double what an export allocates.
fn escape_into(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
}

/// Reads HTML (a fragment or a whole page) into lines.
pub(crate) fn parse(input: &str, budget: &Budget) -> Result<Vec<Line>, ConvertError> {
    let mut emitter = DefaultEmitter::default();
    // Switch to raw-text states after <script>, <style>, <textarea> …, as a tree builder would,
    // so that their content is one text token and never read as markup.
    emitter.naively_switch_states(true);
    let mut reader = Reader {
        out: LineBuilder::new(budget),
        at: Context::new(budget),
        hidden: 0,
        space: None,
        pre_start: false,
    };
    for token in Tokenizer::new_with_emitter(input, emitter) {
        let Ok(token) = token;
        reader.token(token)?;
    }
    Ok(reader.out.finish())
}

struct Reader<'b> {
    out: LineBuilder<'b>,
    at: Context<'b>,
    /// Depth inside elements whose content is not document text.
    hidden: u32,
    /// Whitespace was seen, and becomes one space (with the marks it had) if more text follows
    /// on the line.
    space: Option<Marks>,
    /// Just after `<pre>`, where one newline is dropped (the HTML spec says so).
    pre_start: bool,
}

/// Elements whose content is not shown as text.
const HIDDEN: &[&str] = &[
    "script", "style", "template", "title", "noscript", "iframe", "object", "textarea", "select",
    "svg", "math", "canvas",
];

/// Elements that break lines (HTML's block-level ones), beyond those with their own format.
#[rustfmt::skip]
const BREAKING: &[&str] = &[
    "p", "div", "section", "article", "header", "footer", "nav", "aside", "main", "figure",
    "figcaption", "address", "details", "summary", "dl", "dt", "dd", "table", "tr", "form",
    "fieldset", "legend", "center", "body", "html", "hr",
];

impl Reader<'_> {
    fn token(&mut self, token: Token) -> Result<(), ConvertError> {
        let pre_start = std::mem::take(&mut self.pre_start);
        match token {
            Token::StartTag(tag) => self.start(&tag),
            Token::EndTag(tag) => self.end(&String::from_utf8_lossy(&tag.name)),
            Token::String(text) if self.hidden == 0 => {
                let text = String::from_utf8_lossy(&text.value);
                if self.at.code_block > 0 {
                    let text = if pre_start {
                        text.strip_prefix('\n').unwrap_or(&text)
                    } else {
                        &text
                    };
                    self.preformatted(text)
                } else {
                    self.collapsing(&text)
                }
            }
            // Comments, doctypes, hidden text; parse errors are recovered from by the tokenizer.
            _ => Ok(()),
        }
    }

    fn start(&mut self, tag: &StartTag<()>) -> Result<(), ConvertError> {
        let name = String::from_utf8_lossy(&tag.name);
        let name = name.as_ref();
        if HIDDEN.contains(&name) {
            // `<svg/>` is complete in itself (foreign elements honour the slash; `<script/>`
            // still opens a script, as in a browser).
            if !(tag.self_closing && matches!(name, "svg" | "math")) {
                self.hidden += 1;
            }
            return Ok(());
        }
        let attribute = |key: &str| {
            let value = tag.attributes.get(key.as_bytes())?;
            Some(String::from_utf8_lossy(&value.value))
        };
        match name {
            "b" | "strong" => self.at.open(Counted::Bold),
            "i" | "em" => self.at.open(Counted::Italic),
            "u" | "ins" => self.at.open(Counted::Underline),
            "s" | "strike" | "del" => self.at.open(Counted::Strike),
            "code" | "kbd" | "samp" | "tt" => self.at.open(Counted::Code),
            "a" => self.at.open_link(
                attribute("href")
                    .filter(|url| !url.is_empty())
                    .map(|url| Arc::from(url.as_ref())),
            ),
            "br" => self.end_line(),
            "td" | "th" => {
                self.space.get_or_insert_with(|| self.at.marks());
            }
            "h1" | "h2" | "h3" | "h4" | "h5" | "h6" | "ul" | "ol" | "li" | "blockquote" | "pre" => {
                self.break_line();
                match name {
                    "ul" => self.at.open_list(ListKind::Bullet),
                    "ol" => self.at.open_list(ListKind::Ordered),
                    // Quill's own HTML writes every list as <ol> and says which kind on the item.
                    "li" => {
                        self.at.item = match attribute("data-list").as_deref() {
                            Some("bullet") => Some(ListKind::Bullet),
                            Some("ordered") => Some(ListKind::Ordered),
                            _ => None,
                        }
                    }
                    "blockquote" => self.at.open_quote(),
                    "pre" => {
                        self.at.code_block += 1;
                        self.pre_start = true;
                    }
                    _ => self.at.header = Some(name.as_bytes()[1] - b'0'),
                }
            }
            _ if BREAKING.contains(&name) => self.break_line(),
            _ => {}
        }
        Ok(())
    }

    fn end(&mut self, name: &str) -> Result<(), ConvertError> {
        if HIDDEN.contains(&name) {
            self.hidden = self.hidden.saturating_sub(1);
            return Ok(());
        }
        match name {
            "b" | "strong" => self.at.close(Counted::Bold),
            "i" | "em" => self.at.close(Counted::Italic),
            "u" | "ins" => self.at.close(Counted::Underline),
            "s" | "strike" | "del" => self.at.close(Counted::Strike),
            "code" | "kbd" | "samp" | "tt" => self.at.close(Counted::Code),
            "a" => self.at.close_link(),
            // A browser reads </br> as <br>.
            "br" => self.end_line(),
            "h1" | "h2" | "h3" | "h4" | "h5" | "h6" | "ul" | "ol" | "li" | "blockquote" | "pre" => {
                self.break_line();
                match name {
                    "ul" | "ol" => self.at.close_list()?,
                    "li" => self.at.item = None,
                    "blockquote" => self.at.close_quote()?,
                    "pre" => self.at.code_block = self.at.code_block.saturating_sub(1),
                    _ => self.at.header = None,
                }
            }
            _ if BREAKING.contains(&name) => self.break_line(),
            _ => {}
        }
        Ok(())
    }

    /// Text outside `<pre>`: runs of whitespace collapse to one space, dropped at line edges.
    fn collapsing(&mut self, text: &str) -> Result<(), ConvertError> {
        let marks = self.at.marks();
        for (i, word) in text.split(|c: char| c.is_ascii_whitespace()).enumerate() {
            // Every piece after the first had whitespace before it.
            if i > 0 && self.space.is_none() {
                self.space = Some(marks.clone());
            }
            if word.is_empty() {
                continue;
            }
            if let Some(space_marks) = self.space.take() {
                if self.out.has_text() && !self.out.ends_with_space() {
                    self.out.push(" ", &space_marks)?;
                }
            }
            self.out.push(word, &marks)?;
        }
        Ok(())
    }

    /// Text inside `<pre>`: kept as it is, each newline ending a code line.
    fn preformatted(&mut self, text: &str) -> Result<(), ConvertError> {
        for (i, part) in text.split('\n').enumerate() {
            if i > 0 {
                self.end_line();
            }
            self.out.push(part, &Marks::default())?;
        }
        Ok(())
    }

    /// Before or after a block: ends the line in progress, if it has text.
    fn break_line(&mut self) {
        if self.out.has_text() {
            self.end_line();
        }
        self.space = None;
    }

    fn end_line(&mut self) {
        self.out.end_line(self.at.block());
        self.space = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(html: &str) -> Vec<Line> {
        parse(html, &Budget::for_input(html.len())).unwrap()
    }

    fn lines(html: &str) -> Vec<(String, Block)> {
        let lines = parsed(html);
        lines
            .iter()
            .map(|line| (line.text(), line.block.clone()))
            .collect()
    }

    #[test]
    fn hidden_content_is_skipped() {
        assert_eq!(
            lines("<p>a<svg/>b<svg><text>no</text></svg></p><p>c<script/>x()</script>d</p>"),
            [
                ("ab".into(), Block::Paragraph),
                ("cd".into(), Block::Paragraph)
            ]
        );
    }

    #[test]
    fn whitespace_collapses_as_in_a_browser() {
        let parsed = parsed("<p>\n  a \n b  <b> c </b> d </p>");
        assert_eq!(parsed.len(), 1);
        let spans: Vec<_> = parsed[0]
            .spans
            .iter()
            .map(|s| (s.text.as_str(), s.marks.bold))
            .collect();
        assert_eq!(spans, [("a b ", false), ("c ", true), ("d", false)]);
    }

    #[test]
    fn links_are_decoded_before_the_safety_check() {
        let parsed = parsed("<a href=\"javascript&colon;alert(1)\">x</a> <a href=\"/ok\">y</a>");
        let links: Vec<_> = parsed[0]
            .spans
            .iter()
            .map(|s| s.marks.link.as_ref().map(|link| &**link.url()))
            .collect();
        assert_eq!(links, [None, Some("/ok")]);
    }
}
