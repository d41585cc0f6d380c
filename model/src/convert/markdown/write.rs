//! Writing lines as Markdown, in the canonical form that reading gives back.

use crate::convert::attrs::{Block, ListKind, Mark, Marks};
use crate::convert::budget::Budget;
use crate::convert::lines::{groups, walk_inline, InlineSink, Line, LineBuilder, Span};
use crate::convert::ConvertError;

/// The Markdown for `lines`, in the canonical form described in the module docs. What is
/// written is spent from `budget`, block by block: a link over many lines is written on each.
pub(crate) fn render(lines: &[Line], budget: &Budget) -> Result<String, ConvertError> {
    // Each line is spent before it is written (one group, a list or a quote, can hold a whole
    // document's lines): [`WRITING_PASSES`] times what it reads, then what it wrote.
    let inline = |line: &Line, header: bool| {
        budget.spend(WRITING_PASSES * line.written_size())?;
        let markdown = inline(line, header);
        budget.spend(markdown.len()).map(|()| markdown)
    };
    let mut blocks: Vec<String> = Vec::new();
    for group in groups(lines) {
        let block = match &group[0].block {
            Block::Paragraph if group[0].is_empty() => continue,
            Block::Paragraph => inline(&group[0], false)?,
            Block::Header(level) => {
                let marker = "#".repeat(usize::from(*level));
                match inline(&group[0], true)? {
                    text if text.is_empty() => marker,
                    text => format!("{marker} {text}"),
                }
            }
            Block::List(kind) => {
                let items = group.iter().enumerate().map(|(i, line)| {
                    let marker = match kind {
                        ListKind::Bullet => "-".to_owned(),
                        ListKind::Ordered => format!("{}.", i + 1),
                    };
                    Ok(match inline(line, false)? {
                        text if text.is_empty() => marker,
                        text => format!("{marker} {text}"),
                    })
                });
                items.collect::<Result<Vec<_>, ConvertError>>()?.join("\n")
            }
            Block::Blockquote => {
                let paragraphs = group.iter().filter(|line| !line.is_empty());
                let quoted = paragraphs.map(|line| Ok(format!("> {}", inline(line, false)?)));
                quoted
                    .collect::<Result<Vec<_>, ConvertError>>()?
                    .join("\n>\n")
            }
            Block::Code(language) => {
                let code = group.iter().map(Line::text).collect::<Vec<_>>().join("\n");
                // The fence must be longer than any run of backticks inside, or it would close early.
                let fence = "`".repeat(longest_run(&code, '`').max(2) + 1);
                let info = language
                    .as_ref()
                    .map(|name| &*name.0)
                    .filter(|name| is_plain_language(name));
                format!("{fence}{}\n{code}\n{fence}", info.unwrap_or_default())
            }
        };
        if !block.is_empty() {
            blocks.push(block);
        }
    }
    if blocks.is_empty() {
        return Ok(String::new());
    }
    Ok(blocks.join("\n\n") + "\n")
}

/// About how many times writing a line copies it: `inline_with` writes it (then trims and
/// formats it: three copies), `reads_back` parses it and compares both sides (three more), and a
/// line whose delimiters would not read back is written again with tags.
const WRITING_PASSES: usize = 8;

/// Whether a code block's language can be written as the fence's info string as it is. Any
/// client can set any string there, and a backtick or a line break in it would end the fence
/// line early, letting what follows through as Markdown (and raw HTML); backslash escapes and
/// entities in it would be decoded. Language names (highlight.js's and Prism's: `rust`, `c++`,
/// `c#`, `objective-c`, `x86asm`) are letters, digits and `+#-._`; anything else is left out,
/// the code kept.
fn is_plain_language(name: &str) -> bool {
    name.chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '#' | '-' | '.' | '_'))
}

/// A line's text with its marks, escaped, and made safe at its edges: Markdown strips leading
/// and trailing whitespace and reads some characters at the start of a line (and `#`s at the end
/// of a heading) as syntax.
fn inline(line: &Line, header: bool) -> String {
    let markdown = inline_with(line, header, Emphasis::Delimiters);
    if reads_back(&markdown, line) {
        return markdown;
    }
    inline_with(line, header, Emphasis::Tags)
}

/// Whether `markdown` reads back as `line`'s text and marks. Emphasis on whitespace at its edges
/// does not count: writing moves it outside the delimiters, which must touch text.
///
/// The reading has a budget of its own, for `markdown`: this line's Markdown is spent from the
/// export's budget when it is written.
fn reads_back(markdown: &str, line: &Line) -> bool {
    let budget = Budget::for_input(markdown.len());
    let read = super::parse(markdown, &budget);
    let Ok([read]) = read.as_deref() else {
        return false;
    };
    match (
        comparable(&read.spans, &budget),
        comparable(&line.spans, &budget),
    ) {
        (Some(read), Some(written)) => read == written,
        _ => false,
    }
}

fn comparable(spans: &[Span], budget: &Budget) -> Option<Vec<Span>> {
    let mut out = LineBuilder::new(budget);
    for span in spans {
        let mut rest = span.text.as_str();
        while let Some(c) = rest.chars().next() {
            let space = c.is_whitespace();
            let len = rest
                .find(|c: char| c.is_whitespace() != space)
                .unwrap_or(rest.len());
            let mut marks = span.marks.clone();
            if space {
                (marks.bold, marks.italic, marks.strike) = (false, false, false);
            }
            out.push(&rest[..len], &marks).ok()?;
            rest = &rest[len..];
        }
    }
    Some(out.finish().swap_remove(0).spans)
}

fn inline_with(line: &Line, header: bool, emphasis: Emphasis) -> String {
    let mut sink = MarkdownSink {
        emphasis,
        out: String::new(),
        pending: Vec::new(),
    };
    walk_inline(&line.spans, &mut sink);
    let text = sink.out;

    let body = text.trim_matches([' ', '\t']);
    let lead = entities(&text[..text.len() - text.trim_start_matches([' ', '\t']).len()]);
    // A line of only whitespace is all `lead`.
    let trail = if body.is_empty() {
        String::new()
    } else {
        entities(&text[text.trim_end_matches([' ', '\t']).len()..])
    };
    let mut body = body.to_owned();
    if lead.is_empty() {
        let digits = body.len() - body.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        if body.starts_with(['#', '-', '+', '=', '>']) {
            body.insert(0, '\\');
        } else if (1..=9).contains(&digits) && body[digits..].starts_with(['.', ')']) {
            body.insert(digits, '\\');
        }
    }
    if header && trail.is_empty() {
        // "# Title #" would lose its "#": a closing sequence is a run of #s after a space.
        let hashes = body.len() - body.trim_end_matches('#').len();
        let before = body[..body.len() - hashes].chars().last();
        if hashes > 0 && before.is_none_or(|c| c == ' ' || c == '\t') && hashes < body.len() {
            body.insert(body.len() - hashes, '\\');
        }
    }
    format!("{lead}{body}{trail}")
}

fn entities(whitespace: &str) -> String {
    whitespace
        .chars()
        .map(|c| if c == '\t' { "&#9;" } else { "&#32;" })
        .collect()
}

fn longest_run(text: &str, of: char) -> usize {
    let mut longest = 0;
    let mut run = 0;
    for c in text.chars() {
        run = if c == of { run + 1 } else { 0 };
        longest = longest.max(run);
    }
    longest
}

/// How bold, italic and strike are written.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Emphasis {
    /// `**`, `*`, `~~`: the Markdown way, tried first.
    Delimiters,
    /// `<strong>`, `<em>`, `<s>`: for a line whose delimiters would not be read back.
    Tags,
}

/// Writes one line's spans. Emphasis delimiters must touch text to count ("** x**" is not bold),
/// so an opening delimiter waits in `pending` for the first non-space text after it, and a
/// closing one goes before any whitespace the text ended with.
struct MarkdownSink {
    emphasis: Emphasis,
    out: String,
    pending: Vec<&'static str>,
}

impl MarkdownSink {
    fn flush_pending(&mut self) {
        for delimiter in self.pending.drain(..) {
            self.out.push_str(delimiter);
        }
    }
}

fn delimiter(mark: &Mark) -> Option<&'static str> {
    match mark {
        Mark::Bold => Some("**"),
        Mark::Italic => Some("*"),
        Mark::Strike => Some("~~"),
        _ => None,
    }
}

/// The inline HTML element for marks Markdown has no syntax for, or whose delimiters failed.
fn tag(mark: &Mark) -> &'static str {
    match mark {
        Mark::Bold => "strong",
        Mark::Italic => "em",
        Mark::Strike => "s",
        _ => "u",
    }
}

impl InlineSink for MarkdownSink {
    fn open(&mut self, mark: &Mark) {
        if let (Some(delimiter), Emphasis::Delimiters) = (delimiter(mark), self.emphasis) {
            self.pending.push(delimiter);
            return;
        }
        match mark {
            // Written with its text: the backticks depend on it.
            Mark::Code => {}
            Mark::Link(_) => {
                self.flush_pending();
                self.out.push('[');
            }
            other => {
                self.flush_pending();
                self.out.push_str(&format!("<{}>", tag(other)));
            }
        }
    }

    fn close(&mut self, mark: &Mark) {
        if let (Some(delimiter), Emphasis::Delimiters) = (delimiter(mark), self.emphasis) {
            // Marks close innermost first, so a pending delimiter is this mark's: it enclosed
            // only whitespace, and is dropped.
            if self.pending.pop().is_none() {
                let trailing = self.out.len() - self.out.trim_end().len();
                let whitespace = self.out.split_off(self.out.len() - trailing);
                self.out.push_str(delimiter);
                self.out.push_str(&whitespace);
            }
            return;
        }
        match mark {
            Mark::Code => {}
            Mark::Link(link) => {
                self.out.push_str("](");
                self.out.push_str(&destination(link.url()));
                self.out.push(')');
            }
            other => self.out.push_str(&format!("</{}>", tag(other))),
        }
    }

    fn text(&mut self, text: &str, marks: &Marks) {
        if marks.code {
            self.flush_pending();
            self.out.push_str(&code_span(text));
            return;
        }
        let rest = text.trim_start();
        self.out.push_str(&text[..text.len() - rest.len()]);
        if !rest.is_empty() {
            self.flush_pending();
            escape_into(&mut self.out, rest);
        }
    }
}

/// Backslash-escapes what Markdown could read as inline syntax (`&` only where it could start an
/// entity). Line-start syntax is handled per line, in `inline`.
fn escape_into(out: &mut String, text: &str) {
    for (at, c) in text.char_indices() {
        if matches!(c, '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '~') || starts_entity(&text[at..])
        {
            out.push('\\');
        }
        out.push(c);
    }
}

/// Whether `text` starts with something a renderer could decode as an entity: `&`, then letters,
/// digits or `#`, then `;` (looser than the real grammar, so it errs on the side of escaping).
fn starts_entity(text: &str) -> bool {
    let Some(rest) = text.strip_prefix('&') else {
        return false;
    };
    let name = rest.len()
        - rest
            .trim_start_matches(|c: char| c.is_ascii_alphanumeric() || c == '#')
            .len();
    name > 0 && rest[name..].starts_with(';')
}

/// A code span: more backticks than the longest run inside, and a space of padding where the
/// content starts or ends with a backtick or would lose one of its edge spaces.
fn code_span(text: &str) -> String {
    let fence = "`".repeat(longest_run(text, '`') + 1);
    let pad = text.starts_with('`')
        || text.ends_with('`')
        || (text.starts_with(' ') && text.ends_with(' ') && !text.trim().is_empty());
    let pad = if pad { " " } else { "" };
    format!("{fence}{pad}{text}{pad}{fence}")
}

/// A link destination. Backslash escapes keep parentheses and entities (which a renderer would
/// decode, turning `javascript&colon;` into a scheme) literal; `<…>` allows spaces.
fn destination(url: &str) -> String {
    let mut out = String::new();
    for (at, c) in url.char_indices() {
        if matches!(c, '\\' | '(' | ')' | '<' | '>') || starts_entity(&url[at..]) {
            out.push('\\');
        }
        out.push(c);
    }
    if url.is_empty() || url.contains(|c: char| c.is_whitespace() || c.is_control()) {
        out = format!("<{out}>");
    }
    out
}
