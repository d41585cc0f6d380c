//! Quill's formatting attributes as quire stores them: the names, the values quire accepts, and
//! the policy for link URLs.
//!
//! A run's attributes split in two: inline [`Marks`] on text, and one [`Block`] format on the
//! `"\n"` that ends a line. Quill (and so y-quill) never puts one kind where the other belongs, and
//! the importers normalise to that shape.
//!
//! String values (a link's URL, a code block's language) are [`Shared`], never copied: a link
//! covers every line and span it is on, and a copy for each would cost lines × URL length.
//! Cloning a `Marks` or a `Block` is therefore cheap, and comparing two that share a value is a
//! pointer comparison.

use std::sync::Arc;

#[cfg(feature = "convert")]
use yrs::types::Attrs;
use yrs::Any;

const BOLD: &str = "bold";
const ITALIC: &str = "italic";
const UNDERLINE: &str = "underline";
const STRIKE: &str = "strike";
const CODE: &str = "code";
const LINK: &str = "link";
const HEADER: &str = "header";
const LIST: &str = "list";
const BLOCKQUOTE: &str = "blockquote";
const CODE_BLOCK: &str = "code-block";

/// Inline formatting of a run of text.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Marks {
    pub bold: bool,
    pub italic: bool,
    pub underline: bool,
    pub strike: bool,
    pub code: bool,
    pub link: Option<Link>,
}

/// A string attribute value, shared by every span and line that holds it. Equality compares the
/// pointer first: `Arc<str>`'s own `==` reads both strings whole, and marks and blocks are
/// compared for every word and line (spans merge when their marks are equal), which would cost
/// words × URL length.
#[derive(Clone, Debug, Eq)]
pub(crate) struct Shared(pub Arc<str>);

impl PartialEq for Shared {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || self.0 == other.0
    }
}

/// A link URL that [`is_safe_url`] accepts: the only way to make one is [`Link::new`], so no
/// span, run or export can hold any other.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Link(Shared);

impl Link {
    /// `None` for a URL that must not be a link. Reads the URL up to its first `/`, `?` or `#`:
    /// callers check each URL once, where it enters (an anchor, a Delta op, a run of the
    /// document), not on every span it covers.
    pub fn new(url: Arc<str>) -> Option<Link> {
        is_safe_url(&url).then_some(Link(Shared(url)))
    }

    pub fn url(&self) -> &Arc<str> {
        &self.0 .0
    }
}

/// One inline mark, for writers that open and close them ([`super::lines::walk_inline`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Mark {
    Link(Link),
    Bold,
    Italic,
    Strike,
    Underline,
    Code,
}

/// A line's block format. Quill gives each line exactly one (its block blot), so this is an enum,
/// not a set.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) enum Block {
    #[default]
    Paragraph,
    Header(u8),
    List(ListKind),
    Blockquote,
    /// `Some(language)` when Quill's syntax module wrote a language name instead of `true`.
    Code(Option<Shared>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ListKind {
    Bullet,
    Ordered,
}

impl Marks {
    /// The marks to open, outermost first. Links go outside emphasis so that a link inside bold
    /// text and bold text inside a link both nest; code goes innermost because Markdown parses
    /// nothing inside a code span.
    pub fn ordered(&self) -> Vec<Mark> {
        let mut marks = Vec::new();
        if let Some(link) = &self.link {
            marks.push(Mark::Link(link.clone()));
        }
        for (on, mark) in [
            (self.bold, Mark::Bold),
            (self.italic, Mark::Italic),
            (self.strike, Mark::Strike),
            (self.underline, Mark::Underline),
            (self.code, Mark::Code),
        ] {
            if on {
                marks.push(mark);
            }
        }
        marks
    }

    #[cfg(feature = "convert")]
    pub fn add_to(&self, attrs: &mut Attrs) {
        for (on, name) in [
            (self.bold, BOLD),
            (self.italic, ITALIC),
            (self.underline, UNDERLINE),
            (self.strike, STRIKE),
            (self.code, CODE),
        ] {
            if on {
                attrs.insert(name.into(), Any::Bool(true));
            }
        }
        if let Some(link) = &self.link {
            attrs.insert(LINK.into(), Any::String(link.url().clone()));
        }
    }
}

/// `Attrs` equality, comparing string values as [`Shared`] does (yrs's `Any` compares them with
/// `Arc<str>`'s `==`, reading both whole).
#[cfg(feature = "convert")]
pub(crate) fn same_attrs(a: &Attrs, b: &Attrs) -> bool {
    let same = |a: &Any, b: &Any| match (a, b) {
        (Any::String(a), Any::String(b)) => Arc::ptr_eq(a, b) || a == b,
        _ => a == b,
    };
    a.len() == b.len()
        && a.iter()
            .all(|(name, value)| b.get(name).is_some_and(|other| same(value, other)))
}

impl Block {
    #[cfg(feature = "convert")]
    pub fn add_to(&self, attrs: &mut Attrs) {
        let (name, value) = match self {
            Block::Paragraph => return,
            // An integer, as Quill writes it: lib0 encodes it as a varint, like y-quill's.
            Block::Header(level) => (HEADER, Any::from(i64::from(*level))),
            Block::List(ListKind::Bullet) => (LIST, Any::from("bullet")),
            Block::List(ListKind::Ordered) => (LIST, Any::from("ordered")),
            Block::Blockquote => (BLOCKQUOTE, Any::Bool(true)),
            Block::Code(None) => (CODE_BLOCK, Any::Bool(true)),
            Block::Code(Some(language)) => (CODE_BLOCK, Any::String(language.0.clone())),
        };
        attrs.insert(name.into(), value);
    }
}

/// How to treat an attribute quire does not accept.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Strictness {
    /// Import: refuse it, naming it ([`parse`] returns the problem).
    Refuse,
    /// Export: skip it. Whatever a client wrote into the document, export must still work.
    Skip,
}

/// Remembers the last link URL [`parse`] checked. Consecutive chunks of a document share one
/// format's URL (one `Arc`) when other formats cut them, so checking it again for each would
/// cost chunks × URL length; a pointer comparison answers instead.
#[derive(Debug, Default)]
pub(crate) struct LinkCheck {
    last: Option<(Arc<str>, Option<Link>)>,
}

impl LinkCheck {
    fn check(&mut self, url: &Arc<str>) -> Option<Link> {
        match &self.last {
            Some((seen, link)) if Arc::ptr_eq(seen, url) => link.clone(),
            _ => {
                let link = Link::new(url.clone());
                self.last = Some((url.clone(), link.clone()));
                link
            }
        }
    }
}

/// Splits a run's attributes into its inline marks and its block format.
///
/// With [`Strictness::Refuse`], an unknown name, a value of the wrong kind, a link that is not
/// [`is_safe_url`] or two block formats on one line is an error describing the problem. `null`
/// and `false` mean "not set", as in a Quill Delta.
pub(crate) fn parse<'a>(
    attrs: impl IntoIterator<Item = (&'a str, &'a Any)>,
    strictness: Strictness,
    links: &mut LinkCheck,
) -> Result<(Marks, Block), String> {
    let mut marks = Marks::default();
    let mut block = Block::Paragraph;
    for (name, value) in attrs {
        let parsed = parse_one(name, value, &mut marks, links);
        let found = match (parsed, strictness) {
            (Ok(found), _) => found,
            (Err(problem), Strictness::Refuse) => return Err(problem),
            (Err(_), Strictness::Skip) => None,
        };
        let Some(found) = found else { continue };
        if block != Block::Paragraph {
            if strictness == Strictness::Refuse {
                return Err(format!(
                    "a line cannot be both `{}` and `{name}`",
                    block_name(&block)
                ));
            }
            if rank(&found) <= rank(&block) {
                continue;
            }
        }
        block = found;
    }
    Ok((marks, block))
}

/// Sets an inline mark in `marks`, or returns the block format `name` stands for.
fn parse_one(
    name: &str,
    value: &Any,
    marks: &mut Marks,
    links: &mut LinkCheck,
) -> Result<Option<Block>, String> {
    let unset = matches!(value, Any::Null | Any::Undefined | Any::Bool(false));
    let wrong = |expected: &str| format!("`{name}` must be {expected}, not {}", show(value));
    let flag = match name {
        BOLD => &mut marks.bold,
        ITALIC => &mut marks.italic,
        UNDERLINE => &mut marks.underline,
        STRIKE => &mut marks.strike,
        CODE => &mut marks.code,
        LINK => {
            match value {
                Any::String(url) if !url.is_empty() => match links.check(url) {
                    Some(link) => marks.link = Some(link),
                    None => return Err(UNSAFE_LINK.into()),
                },
                _ if unset => {}
                _ => return Err(wrong("a URL string")),
            }
            return Ok(None);
        }
        _ => return parse_block(name, value, unset).map_err(|()| wrong_block(name, value)),
    };
    match value {
        Any::Bool(true) => *flag = true,
        _ if unset => {}
        _ => return Err(wrong("true")),
    }
    Ok(None)
}

fn parse_block(name: &str, value: &Any, unset: bool) -> Result<Option<Block>, ()> {
    let block = match (name, value) {
        (_, _) if unset && is_block_name(name) => return Ok(None),
        (HEADER, Any::Number(n)) => match n.as_i64() {
            Some(level @ 1..=6) => Block::Header(level as u8),
            _ => return Err(()),
        },
        (LIST, Any::String(kind)) if &**kind == "bullet" => Block::List(ListKind::Bullet),
        (LIST, Any::String(kind)) if &**kind == "ordered" => Block::List(ListKind::Ordered),
        (BLOCKQUOTE, Any::Bool(true)) => Block::Blockquote,
        (CODE_BLOCK, Any::Bool(true)) => Block::Code(None),
        (CODE_BLOCK, Any::String(language)) if !language.is_empty() => {
            Block::Code(Some(Shared(language.clone())))
        }
        _ => return Err(()),
    };
    Ok(Some(block))
}

fn is_block_name(name: &str) -> bool {
    [HEADER, LIST, BLOCKQUOTE, CODE_BLOCK].contains(&name)
}

fn wrong_block(name: &str, value: &Any) -> String {
    let expected = match name {
        HEADER => "a number from 1 to 6",
        LIST => "\"bullet\" or \"ordered\"",
        BLOCKQUOTE => "true",
        CODE_BLOCK => "true or a language name",
        _ => return format!("unsupported attribute `{name}`"),
    };
    format!("`{name}` must be {expected}, not {}", show(value))
}

/// A value as it would look in JSON, for error messages (`Any`'s `Display` drops the quotes).
fn show(value: &Any) -> String {
    match value {
        Any::String(s) => format!("{s:?}"),
        other => other.to_string(),
    }
}

fn block_name(block: &Block) -> &'static str {
    match block {
        Block::Paragraph => "paragraph",
        Block::Header(_) => HEADER,
        Block::List(_) => LIST,
        Block::Blockquote => BLOCKQUOTE,
        Block::Code(_) => CODE_BLOCK,
    }
}

/// Which block format wins when a document written by some other client has several on one
/// line (only when skipping: an import refuses such a line). Attribute maps iterate in no fixed
/// order, so a fixed rank keeps exports deterministic.
fn rank(block: &Block) -> u8 {
    match block {
        Block::Paragraph => 0,
        Block::Blockquote => 1,
        Block::List(_) => 2,
        Block::Header(_) => 3,
        Block::Code(_) => 4,
    }
}

const UNSAFE_LINK: &str = "`link` must be an http, https, mailto, tel or sms URL";

/// Whether a link URL may be written into exported HTML or Markdown, or imported.
///
/// Quill's own whitelist (its `Link.PROTOCOL_WHITELIST`): http, https, mailto, tel, sms, plus
/// URLs without a scheme (relative ones). Everything else — `javascript:`, `data:`, `vbscript:` —
/// is refused. Browsers ignore ASCII tabs, newlines and leading control characters and spaces
/// when they read a scheme (`java\tscript:` runs), so those are dropped before looking.
fn is_safe_url(url: &str) -> bool {
    let seen: String = url
        .chars()
        .filter(|c| !c.is_ascii_control() && *c != ' ')
        .take_while(|c| !matches!(c, '/' | '?' | '#'))
        .collect();
    let Some((scheme, _)) = seen.split_once(':') else {
        return true;
    };
    ["http", "https", "mailto", "tel", "sms"]
        .iter()
        .any(|allowed| scheme.eq_ignore_ascii_case(allowed))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_refusing(attrs: &[(&str, Any)]) -> Result<(Marks, Block), String> {
        let pairs = attrs.iter().map(|(k, v)| (*k, v));
        parse(pairs, Strictness::Refuse, &mut LinkCheck::default())
    }

    #[test]
    fn splits_marks_from_the_block_format() {
        let (marks, block) = parse_refusing(&[
            ("bold", Any::Bool(true)),
            ("link", Any::from("https://example.com")),
            ("header", Any::from(2_i64)),
            ("italic", Any::Null),
        ])
        .unwrap();
        assert!(marks.bold && !marks.italic);
        assert_eq!(
            marks.link.as_ref().map(|link| &**link.url()),
            Some("https://example.com")
        );
        assert_eq!(block, Block::Header(2));
    }

    #[test]
    fn refusing_names_the_problem() {
        let err = |attrs: &[(&str, Any)]| parse_refusing(attrs).unwrap_err();
        assert_eq!(
            err(&[("color", Any::from("red"))]),
            "unsupported attribute `color`"
        );
        assert_eq!(
            err(&[("header", Any::from(7_i64))]),
            "`header` must be a number from 1 to 6, not 7"
        );
        assert_eq!(
            err(&[("bold", Any::from("yes"))]),
            "`bold` must be true, not \"yes\""
        );
        assert_eq!(
            err(&[("list", Any::from("checked"))]),
            "`list` must be \"bullet\" or \"ordered\", not \"checked\""
        );
        assert!(err(&[
            ("header", Any::from(1_i64)),
            ("blockquote", Any::Bool(true))
        ])
        .starts_with("a line cannot be both"));
    }

    #[test]
    fn skipping_keeps_what_it_understands() {
        let attrs = [
            ("color", Any::from("red")),
            ("header", Any::from(1_i64)),
            ("blockquote", Any::Bool(true)),
            ("bold", Any::Bool(true)),
        ];
        let pairs = attrs.iter().map(|(k, v)| (*k, v));
        let (marks, block) = parse(pairs, Strictness::Skip, &mut LinkCheck::default()).unwrap();
        assert!(marks.bold);
        assert_eq!(block, Block::Header(1));
    }

    #[test]
    fn only_quills_link_protocols_are_safe() {
        for safe in [
            "https://a.b/c?d#e",
            "http://x",
            "mailto:a@b",
            "/relative:x",
            "page#a:b",
            "x",
        ] {
            assert!(is_safe_url(safe), "{safe}");
        }
        for unsafe_url in [
            "javascript:alert(1)",
            " JavaScript:alert(1)",
            "java\tscript:alert(1)",
            "\u{1}javascript:x",
            "data:text/html,<script>",
            "vbscript:x",
        ] {
            assert!(!is_safe_url(unsafe_url), "{unsafe_url:?}");
        }
    }
}
