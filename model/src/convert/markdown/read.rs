//! Reading Markdown into lines, with pulldown-cmark.

use std::sync::Arc;

use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};

use crate::convert::attrs::{Block, ListKind, Marks};
use crate::convert::budget::Budget;
use crate::convert::lines::{Context, Counted, Line, LineBuilder};
use crate::convert::ConvertError;

/// Reads Markdown into lines. pulldown-cmark bounds what link reference definitions expand to
/// (`[a][ref]` used many times) by the input's length, so a URL is only repeated as often as the
/// input pays for it.
pub(crate) fn parse(input: &str, budget: &Budget) -> Result<Vec<Line>, ConvertError> {
    let mut reader = Reader {
        out: LineBuilder::new(budget),
        at: Context::new(budget),
        open_line: false,
        code: None,
    };
    for event in Parser::new_ext(input, Options::ENABLE_STRIKETHROUGH) {
        reader.event(event)?;
    }
    Ok(reader.out.finish())
}

struct Reader<'b> {
    out: LineBuilder<'b>,
    at: Context<'b>,
    /// A heading or list item has begun and not yet ended a line: it makes one even if empty.
    open_line: bool,
    /// The text of the fenced or indented code block being read.
    code: Option<String>,
}

impl Reader<'_> {
    fn event(&mut self, event: Event<'_>) -> Result<(), ConvertError> {
        match event {
            Event::Start(tag) => self.start(tag),
            Event::End(tag) => return self.end(tag),
            Event::Text(text) => match &mut self.code {
                Some(code) => code.push_str(&text),
                // Only HTML blocks' text can hold newlines, and those are Html events.
                None => self.out.push(&text.replace('\n', " "), &self.at.marks())?,
            },
            Event::Code(text) => {
                let mut marks = self.at.marks();
                marks.code = true;
                self.out.push(&text, &marks)?;
            }
            // A soft break is a space in rendered Markdown; a Quill line is a whole paragraph.
            Event::SoftBreak => self.out.push(" ", &self.at.marks())?,
            Event::HardBreak => self.end_line(),
            Event::InlineHtml(html) => self.inline_html(&html),
            // Kept as literal text, so that nothing written in an HTML block is lost.
            Event::Html(html) => {
                for line in html.lines() {
                    self.out.push(line, &Marks::default())?;
                    self.out.end_line(Block::Paragraph);
                }
                self.open_line = false;
            }
            Event::Rule => self.break_line(),
            _ => {}
        }
        Ok(())
    }

    fn start(&mut self, tag: Tag<'_>) {
        match tag {
            Tag::Paragraph | Tag::HtmlBlock => self.break_line(),
            Tag::Heading { level, .. } => {
                self.break_line();
                self.at.header = Some(level as u8);
                self.open_line = true;
            }
            Tag::BlockQuote(_) => {
                self.break_line();
                self.at.open_quote();
            }
            Tag::CodeBlock(_) => {
                self.break_line();
                self.code = Some(String::new());
            }
            Tag::List(start) => {
                self.break_line();
                self.at.open_list(if start.is_some() {
                    ListKind::Ordered
                } else {
                    ListKind::Bullet
                });
            }
            Tag::Item => {
                self.break_line();
                self.open_line = true;
            }
            Tag::Emphasis => self.at.open(Counted::Italic),
            Tag::Strong => self.at.open(Counted::Bold),
            Tag::Strikethrough => self.at.open(Counted::Strike),
            Tag::Link { dest_url, .. } => self.at.open_link(Some(Arc::from(&*dest_url))),
            _ => {}
        }
    }

    fn end(&mut self, tag: TagEnd) -> Result<(), ConvertError> {
        match tag {
            TagEnd::Paragraph | TagEnd::HtmlBlock => self.flush(),
            TagEnd::Heading(_) => {
                self.flush();
                self.at.header = None;
            }
            TagEnd::BlockQuote(_) => {
                self.flush();
                self.at.close_quote()?;
            }
            TagEnd::CodeBlock => {
                let code = self.code.take().unwrap_or_default();
                let code = code.strip_suffix('\n').unwrap_or(&code);
                for line in code.split('\n') {
                    self.out.push(line, &Marks::default())?;
                    self.out.end_line(Block::Code(None));
                }
                self.open_line = false;
            }
            TagEnd::List(_) => {
                self.flush();
                self.at.close_list()?;
            }
            TagEnd::Item => self.flush(),
            TagEnd::Emphasis => self.at.close(Counted::Italic),
            TagEnd::Strong => self.at.close(Counted::Bold),
            TagEnd::Strikethrough => self.at.close(Counted::Strike),
            TagEnd::Link => self.at.close_link(),
            _ => {}
        }
        Ok(())
    }

    /// Inline tags export writes where Markdown has no syntax (`<u>`) or where its delimiters
    /// would not be read back (see `write`), and `<br>`, which breaks the line as a hard break
    /// does. Other tags are dropped: their text arrives as Text events of its own.
    fn inline_html(&mut self, html: &str) {
        let tag = html.trim().to_ascii_lowercase();
        let (name, closing) = match tag.strip_prefix("</") {
            Some(rest) => (rest, true),
            None => (tag.strip_prefix('<').unwrap_or_default(), false),
        };
        let name = name.trim_end_matches('>').trim_end_matches('/').trim();
        let mark = match name {
            "strong" | "b" => Counted::Bold,
            "em" | "i" => Counted::Italic,
            "s" | "del" => Counted::Strike,
            "u" => Counted::Underline,
            "br" => return self.end_line(),
            _ => return,
        };
        if closing {
            self.at.close(mark);
        } else {
            self.at.open(mark);
        }
    }

    /// Before a block starts: ends the line in progress, if it has text.
    fn break_line(&mut self) {
        if self.out.has_text() {
            self.end_line();
        }
    }

    /// When a block ends: ends its line if it has text or is a heading or item, which make a
    /// line even when empty.
    fn flush(&mut self) {
        if self.out.has_text() || self.open_line {
            self.end_line();
        }
    }

    fn end_line(&mut self) {
        self.out.end_line(self.at.block());
        self.open_line = false;
    }
}
