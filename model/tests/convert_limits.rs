//! Conversions on hostile input, sized at the server's body limit (16 MiB): each must finish in
//! work and memory proportional to its input, or refuse with `ConvertError::TooLarge`.
//!
//! No test here measures time. A superlinear path either spends the conversion's budget (the
//! loops that are not constant per input byte spend from it, see `convert::budget`) and fails
//! with `TooLarge` where success is expected, or allocates out of proportion, which the counting
//! allocator below catches. Run with `cargo test -p quire-model --features convert --release
//! --test convert_limits` for speed; the debug build runs them too, more slowly.
#![cfg(feature = "convert")]

use std::alloc::System;
use std::sync::{Mutex, MutexGuard};

use quire_model::convert::{export, import, ConvertError, Format};
use quire_model::schema::{doc_with_client_id, CONTENT};
use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};
use yrs::types::{Attrs, Delta};
use yrs::{Any, Doc, In, Text, Transact};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// The server's request body limit, and so the largest import it hands to `convert`.
const BODY_LIMIT: usize = 16 << 20;

/// Bytes a conversion may ask the allocator for, per byte of its input, everything included:
/// the parsers, the lines and runs, yrs's document (for an import), growth of every buffer
/// counted each time it grows. What it must catch is a conversion that grows with lines × URL
/// length or with the square of its input; the largest honest ratio here is about 48, a line
/// record (48 bytes) for each byte of a text of empty lines.
const FACTOR: usize = 128;
/// Fixed costs, whatever the input: first tables, small buffers.
const SLACK: usize = 1 << 20;

/// The allocator's counters are global: tests in this binary take turns.
static TURN: Mutex<()> = Mutex::new(());

fn turn() -> MutexGuard<'static, ()> {
    TURN.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// What `f` asked the allocator for, in bytes (growth of reallocations included).
fn asked<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let region = Region::new(GLOBAL);
    let out = f();
    (out, region.change().bytes_allocated)
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Expect {
    Imports,
    TooLarge,
}

/// Repeats `unit` until `bytes` are filled (whole units only).
fn fill(unit: &str, bytes: usize) -> String {
    unit.repeat(bytes / unit.len())
}

/// Inputs of (about) `BODY_LIMIT` bytes that once took the square of their size in time or
/// lines × URL length in memory, or that stress nesting and repetition in the parsers.
fn hostile_imports() -> Vec<(&'static str, Format, String, Expect)> {
    let half = BODY_LIMIT / 2;
    let long_url = |len: usize| format!("https://e.com/{}", "u".repeat(len));
    vec![
        (
            "html: nested lists, then unmatched </blockquote> (scanned the whole stack each)",
            Format::Html,
            fill("<ul>", half) + &fill("</blockquote>", half),
            Expect::Imports,
        ),
        (
            "html: a long href without '/', then many words (URL checked for each word)",
            Format::Html,
            format!("<a href=\"{}\">{}", "a".repeat(half), fill("w ", half)),
            Expect::Imports,
        ),
        (
            "html: two anchors with one long href, then many words (URLs compared per word)",
            Format::Html,
            format!(
                "<a href=\"{u}\">x</a><a href=\"{u}\">{}",
                fill("w ", half),
                u = long_url(BODY_LIMIT / 4)
            ),
            Expect::Imports,
        ),
        (
            "html: a link around many short lines (its URL copied onto each)",
            Format::Html,
            format!(
                "<a href=\"{}\">{}",
                long_url(64 << 10),
                fill("x<br>", BODY_LIMIT)
            ),
            Expect::TooLarge,
        ),
        (
            "html: deep inline and block nesting",
            Format::Html,
            fill("<b><i><pre><li><blockquote><ol><a href=x>y", BODY_LIMIT),
            Expect::Imports,
        ),
        (
            "markdown: deep quotes",
            Format::Markdown,
            fill(">", BODY_LIMIT - 2) + " x",
            Expect::Imports,
        ),
        (
            "markdown: deeply nested lists",
            Format::Markdown,
            fill("- ", BODY_LIMIT - 2) + "x",
            Expect::Imports,
        ),
        (
            "markdown: unmatched emphasis delimiters",
            Format::Markdown,
            fill("*a _b **c __d ~~e ", BODY_LIMIT),
            Expect::Imports,
        ),
        (
            "markdown: backtick runs of growing length",
            Format::Markdown,
            {
                let mut input = String::new();
                let mut run = 1;
                while input.len() + run + 1 < BODY_LIMIT {
                    input.push_str(&"`".repeat(run % 4096 + 1));
                    input.push('x');
                    run += 1;
                }
                input
            },
            Expect::Imports,
        ),
        (
            "markdown: unclosed brackets and links",
            Format::Markdown,
            fill("[a](", half) + &fill("[", half),
            Expect::Imports,
        ),
        (
            "markdown: a link around many hard breaks (its URL copied onto each line)",
            Format::Markdown,
            format!(
                "[{}](</{}>)",
                fill("x\\\n", BODY_LIMIT - (64 << 10)),
                "u".repeat(60 << 10)
            ),
            Expect::TooLarge,
        ),
        (
            "markdown: one reference definition used many times",
            Format::Markdown,
            format!(
                "[r]: /{}\n\n{}",
                "u".repeat(64 << 10),
                fill("[a][r] ", BODY_LIMIT)
            ),
            Expect::Imports,
        ),
        (
            "delta: a link on text of many lines (its URL copied onto each)",
            Format::Delta,
            format!(
                r#"[{{"insert":"{}","attributes":{{"link":"{}"}}}}]"#,
                fill("x\\n", BODY_LIMIT),
                long_url(64 << 10)
            ),
            Expect::TooLarge,
        ),
        (
            "delta: a long code language on many lines",
            Format::Delta,
            format!(
                r#"[{{"insert":"{}","attributes":{{"code-block":"{}"}}}}]"#,
                fill("\\n", half),
                "l".repeat(half)
            ),
            Expect::Imports,
        ),
        (
            "text: empty lines",
            Format::Text,
            fill("\n", BODY_LIMIT),
            Expect::Imports,
        ),
    ]
}

fn outcome(result: &Result<(), ConvertError>) -> Option<Expect> {
    match result {
        Ok(()) => Some(Expect::Imports),
        Err(ConvertError::TooLarge { .. }) => Some(Expect::TooLarge),
        Err(_) => None,
    }
}

#[test]
fn hostile_imports_at_the_body_limit_stay_in_proportion() {
    let _turn = turn();
    for (what, format, input, expect) in hostile_imports() {
        let doc = doc_with_client_id(1);
        let (result, used) = asked(|| import(&doc, format, &input));
        eprintln!(
            "{what}: {} bytes, asked for {used} ({:.1} per byte): {:?}",
            input.len(),
            used as f64 / input.len() as f64,
            result.as_ref().map_err(ToString::to_string)
        );
        assert_eq!(outcome(&result), Some(expect), "{what}: {result:?}");
        let bound = FACTOR * input.len() + SLACK;
        assert!(
            used <= bound,
            "{what}: asked for {used} bytes, bound {bound}"
        );
    }
}

/// A document as any client can write it through the socket: `text` with `attrs`, in one
/// insert, so that the document holds each attribute once.
fn planted(text: &str, attrs: Attrs) -> Doc {
    let doc = doc_with_client_id(1);
    let content = doc.get_or_insert_text(CONTENT);
    content.insert_with_attributes(&mut doc.transact_mut(), 0, text, attrs);
    doc
}

fn link(url: &str) -> Attrs {
    Attrs::from([("link".into(), Any::from(url))])
}

/// The document's size as its update, for the allocation bound.
fn size(doc: &Doc) -> usize {
    quire_model::protocol::full_state(doc).len()
}

fn export_within_bound(what: &str, doc: &Doc, format: Format) -> Result<String, ConvertError> {
    let (result, used) = asked(|| export(doc, format));
    let input = size(doc);
    eprintln!(
        "{what} as {format}: document of {input} bytes, asked for {used} ({:.1} per byte): {:?}",
        used as f64 / input as f64,
        result
            .as_ref()
            .map(String::len)
            .map_err(ToString::to_string)
    );
    let bound = FACTOR * input + SLACK;
    assert!(
        used <= bound,
        "{what} as {format}: asked for {used} bytes, bound {bound}"
    );
    result
}

#[test]
fn a_link_over_many_lines_is_refused_by_exports_that_repeat_it() {
    let _turn = turn();
    // Planted through the socket, this document used to crash the server at every export.
    let url = format!("https://e.com/{}", "u".repeat(256 << 10));
    let doc = planted(&fill("x\n", 4 << 20), link(&url));
    for format in [Format::Markdown, Format::Html] {
        let err = export_within_bound("link over 2Mi lines", &doc, format).unwrap_err();
        assert!(matches!(err, ConvertError::TooLarge { .. }), "{err}");
    }
    // The Delta holds the link once, as the document does; the text has no link at all.
    for format in [Format::Delta, Format::Text] {
        export_within_bound("link over 2Mi lines", &doc, format).unwrap();
    }
}

#[test]
fn a_link_cut_by_many_formats_exports_in_proportion() {
    let _turn = turn();
    // One link format (a 1 MiB URL) around text that bold cuts into 32Ki chunks, each of which
    // holds the link. (Retains in one delta: yrs formats them in one pass.)
    const CUTS: usize = 1 << 14;
    let url = format!("https://e.com/{}", "u".repeat(1 << 20));
    let doc = planted(&fill("ab", 2 * CUTS), link(&url));
    let bold = Attrs::from([("bold".into(), Any::Bool(true))]);
    let cuts = (0..CUTS).flat_map(|_| {
        [
            Delta::<In>::Retain(1, Some(Box::new(bold.clone()))),
            Delta::Retain(1, None),
        ]
    });
    let content = doc.get_or_insert_text(CONTENT);
    content.apply_delta(&mut doc.transact_mut(), cuts);
    // One line: Markdown and HTML write the link once.
    for format in [Format::Markdown, Format::Html, Format::Text] {
        let out = export_within_bound("link cut by bold", &doc, format).unwrap();
        assert!(out.len() < 2 << 20, "{format}: {} bytes", out.len());
    }
    // A Delta op repeats its attributes: 32Ki copies of the URL are refused.
    let err = export_within_bound("link cut by bold", &doc, Format::Delta).unwrap_err();
    assert!(matches!(err, ConvertError::TooLarge { .. }), "{err}");
}

#[test]
fn a_long_code_language_on_many_lines_exports_in_proportion() {
    let _turn = turn();
    let language = "l".repeat(4 << 20);
    let block = Attrs::from([("code-block".into(), Any::from(language.as_str()))]);
    let doc = planted(&fill("x\n", 4 << 20), block);
    for format in [Format::Markdown, Format::Html, Format::Delta, Format::Text] {
        export_within_bound("code language on 2Mi lines", &doc, format).unwrap();
    }
}
