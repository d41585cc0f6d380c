//! The shape every format converts through: the document as Quill sees it, a list of lines, each
//! with one block format and holding spans of text with inline marks.
//!
//! - Importers fill a [`LineBuilder`], tracking where they are in the source with a [`Context`].
//! - [`to_runs`] turns lines into the (text, attributes) runs written into the YText;
//!   [`from_diff`] reads them back from `TextRef::diff`.
//! - Exporters walk [`groups`] of lines (a list, a quote, a code block) and open and close inline
//!   marks with [`walk_inline`].
//!
//! Each spends from the conversion's [`Budget`] what it copies (see `budget`), so that a link
//! repeated on every line of a long document ends the conversion instead of the server.

use std::sync::Arc;

use yrs::types::text::{Diff, YChange};
#[cfg(feature = "convert")]
use yrs::types::Attrs;
use yrs::{Any, Out};

#[cfg(feature = "convert")]
use super::attrs::same_attrs;
use super::attrs::{self, Block, Link, LinkCheck, ListKind, Mark, Marks, Strictness};
use super::budget::Budget;
use super::ConvertError;

/// Text with one set of inline marks. Never contains `"\n"`: that ends a [`Line`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Span {
    pub text: String,
    pub marks: Marks,
}

/// One Quill line: the spans before a `"\n"` and the block format set on that `"\n"`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Line {
    pub spans: Vec<Span>,
    pub block: Block,
}

impl Line {
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    pub fn text(&self) -> String {
        self.spans.iter().map(|span| span.text.as_str()).collect()
    }

    /// What writing this line out reads: its text, and the URL of each link it opens (a link
    /// over several lines is written again on each).
    pub fn written_size(&self) -> usize {
        let mut size = 0;
        let mut link = None;
        for span in &self.spans {
            size += span.text.len();
            if span.marks.link.is_some() && span.marks.link.as_ref() != link {
                size += span.marks.link.as_ref().map_or(0, |link| link.url().len());
            }
            link = span.marks.link.as_ref();
        }
        size
    }
}

/// Collects spans into lines, normalised the way Quill keeps them: adjacent spans with equal
/// marks merged, no empty spans, no inline marks in code blocks (Quill allows none there). (No
/// unsafe link either, but a [`Link`] cannot hold one.)
#[derive(Debug)]
pub(crate) struct LineBuilder<'b> {
    lines: Vec<Line>,
    spans: Vec<Span>,
    budget: &'b Budget,
}

impl<'b> LineBuilder<'b> {
    pub fn new(budget: &'b Budget) -> Self {
        LineBuilder {
            lines: Vec::new(),
            spans: Vec::new(),
            budget,
        }
    }

    /// Appends text to the current line, spending its length. `text` must not contain `"\n"`.
    pub fn push(&mut self, text: &str, marks: &Marks) -> Result<(), ConvertError> {
        debug_assert!(!text.contains('\n'), "a newline ends a line: use end_line");
        if text.is_empty() {
            return Ok(());
        }
        self.budget.spend(text.len())?;
        match self.spans.last_mut() {
            Some(last) if last.marks == *marks => {
                last.text.push_str(text);
                // Equal marks may hold equal URLs in two `Arc`s (two anchors with one href):
                // keep the newer, which the next pushes bring, so that comparing stays a
                // pointer comparison instead of reading the URL again for every word.
                last.marks.clone_from(marks);
            }
            _ => {
                // Most lines hold one span: start with room for one, not a default of four.
                self.spans.reserve_exact(1);
                self.spans.push(Span {
                    text: text.to_owned(),
                    marks: marks.clone(),
                });
            }
        }
        Ok(())
    }

    /// Ends the current line (even an empty one) with `block`.
    pub fn end_line(&mut self, block: Block) {
        let mut spans = std::mem::take(&mut self.spans);
        if matches!(block, Block::Code(_)) {
            if spans.len() > 1 {
                let text: String = spans.iter().map(|span| span.text.as_str()).collect();
                spans.truncate(1);
                spans[0].text = text;
            }
            if let Some(only) = spans.first_mut() {
                only.marks = Marks::default();
            }
        }
        self.lines.push(Line { spans, block });
    }

    /// Whether the current line has any text yet.
    pub fn has_text(&self) -> bool {
        !self.spans.is_empty()
    }

    #[cfg(feature = "convert")]
    pub fn ends_with_space(&self) -> bool {
        self.spans
            .last()
            .is_some_and(|span| span.text.ends_with(' '))
    }

    /// The lines, the last one ended as a paragraph if it is still open. A document is never
    /// empty: Quill's always has at least the final `"\n"`.
    pub fn finish(mut self) -> Vec<Line> {
        if self.has_text() || self.lines.is_empty() {
            self.end_line(Block::Paragraph);
        }
        self.lines
    }
}

/// Where an importer is in its source's nesting, from which each line's block format and each
/// span's marks follow. Markdown and HTML nest the same way, so both importers use this.
#[derive(Debug)]
pub(crate) struct Context<'b> {
    containers: Vec<Container>,
    /// A list item's own kind, overriding its list's (Quill's HTML: `<li data-list="bullet">`).
    pub item: Option<ListKind>,
    pub header: Option<u8>,
    /// Inside a code block (`<pre>` nests, hence a depth).
    pub code_block: u32,
    counts: [u32; 5],
    links: Vec<Option<Link>>,
    /// How many lists and quotes `containers` holds: a closing tag with nothing to close (tag
    /// soup has any number of them) is then ignored without searching the stack.
    open_lists: usize,
    open_quotes: usize,
    budget: &'b Budget,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Container {
    List(ListKind),
    Quote,
}

/// Inline marks that nest by counting (`<b><b>x</b>y</b>` is still bold at `y`).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Counted {
    Bold,
    Italic,
    Underline,
    Strike,
    Code,
}

impl<'b> Context<'b> {
    pub fn new(budget: &'b Budget) -> Self {
        Context {
            containers: Vec::new(),
            item: None,
            header: None,
            code_block: 0,
            counts: [0; 5],
            links: Vec::new(),
            open_lists: 0,
            open_quotes: 0,
            budget,
        }
    }

    /// The block format of the line being built. Quill has one per line, so the innermost
    /// wins: a code block or header over a list item, a list item over the quote around it.
    pub fn block(&self) -> Block {
        if self.code_block > 0 {
            return Block::Code(None);
        }
        if let Some(level) = self.header {
            return Block::Header(level);
        }
        match self.containers.last() {
            Some(Container::List(kind)) => Block::List(self.item.unwrap_or(*kind)),
            Some(Container::Quote) => Block::Blockquote,
            None => Block::Paragraph,
        }
    }

    pub fn marks(&self) -> Marks {
        let on = |mark: Counted| self.counts[mark as usize] > 0;
        Marks {
            bold: on(Counted::Bold),
            italic: on(Counted::Italic),
            underline: on(Counted::Underline),
            strike: on(Counted::Strike),
            code: on(Counted::Code),
            link: self.links.last().cloned().flatten(),
        }
    }

    pub fn open(&mut self, mark: Counted) {
        self.counts[mark as usize] += 1;
    }

    /// Saturating: a stray closing tag is ignored, as a browser ignores it.
    pub fn close(&mut self, mark: Counted) {
        let count = &mut self.counts[mark as usize];
        *count = count.saturating_sub(1);
    }

    /// An anchor's URL, checked here once for all the text it covers. `None` for an anchor
    /// without a usable `href`: it still has to be closed.
    pub fn open_link(&mut self, url: Option<Arc<str>>) {
        self.links.push(url.and_then(Link::new));
    }

    pub fn close_link(&mut self) {
        self.links.pop();
    }

    pub fn open_list(&mut self, kind: ListKind) {
        self.containers.push(Container::List(kind));
        self.open_lists += 1;
    }

    pub fn open_quote(&mut self) {
        self.containers.push(Container::Quote);
        self.open_quotes += 1;
    }

    /// Closes the innermost list and whatever was left open inside it (`</li>` is optional).
    pub fn close_list(&mut self) -> Result<(), ConvertError> {
        if self.open_lists > 0 {
            self.close_container(|c| matches!(c, Container::List(_)))?;
        }
        self.item = None;
        Ok(())
    }

    pub fn close_quote(&mut self) -> Result<(), ConvertError> {
        if self.open_quotes > 0 {
            self.close_container(|c| c == Container::Quote)?;
        }
        Ok(())
    }

    /// Pops containers down to the innermost one `is_it` picks; callers make sure one is open.
    /// Each container searched is also removed, so all searches together cost one step per
    /// container ever opened; the budget counts the steps, so that a search that removes nothing
    /// (as once for every stray closing tag) runs out of it instead of taking quadratic time.
    fn close_container(&mut self, is_it: impl Fn(Container) -> bool) -> Result<(), ConvertError> {
        let Some(at) = self.containers.iter().rposition(|c| is_it(*c)) else {
            return Ok(());
        };
        self.budget.spend(self.containers.len() - at)?;
        for closed in self.containers.drain(at..) {
            match closed {
                Container::List(_) => self.open_lists -= 1,
                Container::Quote => self.open_quotes -= 1,
            }
        }
        Ok(())
    }
}

/// The runs to write into the YText: each line's spans, then its `"\n"` carrying the block
/// format. Adjacent runs with equal attributes are merged, as in a canonical Delta.
///
/// A run's attribute values are shared with the lines', but the document stores (and sends to
/// every client) each run's formats with their own copy: each new run spends its string values.
/// This is where a link around many short lines runs out of budget.
#[cfg(feature = "convert")]
pub(crate) fn to_runs(
    lines: &[Line],
    budget: &Budget,
) -> Result<Vec<(String, Attrs)>, ConvertError> {
    let mut runs: Vec<(String, Attrs)> = Vec::new();
    let mut push = |text: &str, attrs: Attrs| {
        match runs.last_mut() {
            Some((last, last_attrs)) if same_attrs(last_attrs, &attrs) => {
                last.push_str(text);
                // As in `LineBuilder::push`: the newer `Arc`s keep later comparisons cheap.
                *last_attrs = attrs;
            }
            _ => {
                budget.spend(attrs.values().map(string_len).sum())?;
                runs.push((text.to_owned(), attrs));
            }
        }
        Ok::<_, ConvertError>(())
    };
    for line in lines {
        for span in &line.spans {
            let mut attrs = Attrs::new();
            span.marks.add_to(&mut attrs);
            push(&span.text, attrs)?;
        }
        let mut attrs = Attrs::new();
        line.block.add_to(&mut attrs);
        push("\n", attrs)?;
    }
    Ok(runs)
}

#[cfg(feature = "convert")]
fn string_len(value: &Any) -> usize {
    match value {
        Any::String(s) => s.len(),
        _ => 0,
    }
}

/// Reads lines back from `TextRef::diff`. Attributes quire does not know are skipped and embeds
/// are left out (out of scope for the text formats); text after the last `"\n"` (which a client
/// other than Quill could leave) becomes a last paragraph. An empty YText has no lines.
pub(crate) fn from_diff(
    diff: &[Diff<YChange>],
    budget: &Budget,
) -> Result<Vec<Line>, ConvertError> {
    if diff.is_empty() {
        return Ok(Vec::new());
    }
    let mut out = LineBuilder::new(budget);
    let mut links = LinkCheck::default();
    for chunk in diff {
        let Out::Any(Any::String(text)) = &chunk.insert else {
            continue;
        };
        let attrs = chunk.attributes.as_deref();
        let pairs = attrs.into_iter().flatten().map(|(k, v)| (k.as_ref(), v));
        // Skip never fails; the default is only there to avoid an unwrap.
        let (marks, block) = attrs::parse(pairs, Strictness::Skip, &mut links).unwrap_or_default();
        for (i, part) in text.split('\n').enumerate() {
            if i > 0 {
                out.end_line(block.clone());
            }
            out.push(part, &marks)?;
        }
    }
    Ok(out.finish())
}

/// Consecutive lines an exporter writes as one element: the items of one list, the lines of one
/// quote or one code block. Every other line is a group of its own.
pub(crate) fn groups(lines: &[Line]) -> impl Iterator<Item = &[Line]> {
    let joins = |a: &Line, b: &Line| {
        a.block == b.block && matches!(a.block, Block::List(_) | Block::Blockquote | Block::Code(_))
    };
    let mut rest = lines;
    std::iter::from_fn(move || {
        let first = rest.first()?;
        let len = 1 + rest[1..]
            .iter()
            .take_while(|line| joins(first, line))
            .count();
        let (group, tail) = rest.split_at(len);
        rest = tail;
        Some(group)
    })
}

/// What an exporter does as [`walk_inline`] goes along a line.
pub(crate) trait InlineSink {
    fn open(&mut self, mark: &Mark);
    fn close(&mut self, mark: &Mark);
    fn text(&mut self, text: &str, marks: &Marks);
}

/// Turns a line's spans into properly nested open/close calls: at each span, marks that end are
/// closed (with every mark opened after them, which is then reopened), and new marks opened in
/// [`Marks::ordered`] order. Markdown and HTML both need proper nesting.
pub(crate) fn walk_inline(spans: &[Span], sink: &mut impl InlineSink) {
    let mut open: Vec<Mark> = Vec::new();
    for span in spans {
        let wanted = span.marks.ordered();
        let keep = open.iter().take_while(|mark| wanted.contains(mark)).count();
        while open.len() > keep {
            if let Some(mark) = open.pop() {
                sink.close(&mark);
            }
        }
        for mark in wanted {
            if !open.contains(&mark) {
                sink.open(&mark);
                open.push(mark);
            }
        }
        sink.text(&span.text, &span.marks);
    }
    while let Some(mark) = open.pop() {
        sink.close(&mark);
    }
}
