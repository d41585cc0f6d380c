//! Import/export through real `Doc`s: every assertion is on the exported string or the Delta the
//! YText holds. Run with `cargo test -p quire-model --features convert`.
#![cfg(feature = "convert")]

use std::sync::{Arc, Mutex};

use quire_model::convert::{self, import, ConvertError, Format};
use quire_model::schema::{doc_with_client_id, CONTENT};
use yrs::types::Attrs;
use yrs::{Any, Doc, GetString, Text, Transact};

fn doc_from(format: Format, input: &str) -> Doc {
    let doc = doc_with_client_id(1);
    import(&doc, format, input).unwrap_or_else(|e| panic!("import {format} failed: {e}\n{input}"));
    doc
}

fn export(doc: &Doc, format: Format) -> String {
    convert::export(doc, format).unwrap_or_else(|e| panic!("export {format} failed: {e}"))
}

fn delta(doc: &Doc) -> String {
    export(doc, Format::Delta)
}

/// Markdown in the exporter's canonical form: importing and exporting gives it back unchanged.
const MARKDOWN_ROUND_TRIPS: &[&str] = &[
    "# Title\n\nSome text.\n",
    "# One\n\n## Two\n\n### Three\n\n#### Four\n\n##### Five\n\n###### Six\n",
    "**bold** and *italic* and ~~strike~~ and <u>underline</u>\n",
    "**bold *both* bold** then *italic **both***\n",
    "***all three*** and **~~struck bold~~**\n",
    "Use `let x = 1;` and ``a`b`` and `` `tick` ``\n",
    "[quire](https://example.com/a_b?c=1&d=2) and [**bold link**](https://x.y/\\(z\\))\n",
    "**a [link](https://e.com) inside** and [link *with* emphasis](mailto:a@b.c)\n",
    "- one\n- **two**\n- three\n",
    "1. first\n2. second\n3. third\n\nafter the list\n",
    "- bullet\n\n1. ordered\n\n- bullet again\n",
    "> quoted\n>\n> second *line*\n\nnot quoted\n",
    "```\nfn main() { println!(\"<*>\"); }\n# not a heading\n\n- not a list\n```\n",
    "````\nthree ``` inside\n````\n",
    "\\*not bold\\* \\_not italic\\_ \\[not a link\\](x) \\<b> a\\\\b \\~\\~x\\~\\~ \\&amp;\n",
    "\\# not a heading\n\n\\- not a list\n\n1\\. not a list\n\n\\> not a quote\n",
    "&#32;&#32;leading spaces and trailing&#32;\n",
    "# 标题 😀\n\n中文 **加粗😀** 😀 *斜体*\n\n- 列表 🎉\n",
    "# Mixed\n\nIntro with `code`.\n\n- a\n- b\n\n> quote\n\n```\nx < y && y > z\n```\n\nEnd.\n",
    // Delimiters between punctuation and a letter would not be read back: inline HTML instead.
    "中文<strong>加粗。</strong>中文 and x<em>(y)</em>z\n",
];

#[test]
fn markdown_round_trips_through_the_document() {
    let mut failures = Vec::new();
    for markdown in MARKDOWN_ROUND_TRIPS {
        let doc = doc_from(Format::Markdown, markdown);
        let exported = export(&doc, Format::Markdown);
        if exported != *markdown {
            failures.push(format!(
                "in:  {markdown:?}\nout: {exported:?}\ndelta: {}",
                delta(&doc)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// Documents (as Deltas) whose formatting Markdown and HTML both carry exactly.
const DOCUMENTS: &[&str] = &[
    r#"[{"insert":"a","attributes":{"bold":true}},{"insert":"b","attributes":{"italic":true}},{"insert":"\n"}]"#,
    r#"[{"insert":"x"},{"insert":"bold.","attributes":{"bold":true}},{"insert":"next\n"}]"#,
    r#"[{"insert":"code","attributes":{"code":true}},{"insert":"bold","attributes":{"bold":true}},{"insert":"\n"}]"#,
    r#"[{"insert":"a","attributes":{"strike":true}},{"insert":"b","attributes":{"strike":true,"italic":true}},{"insert":"\n"}]"#,
    r#"[{"insert":"u","attributes":{"underline":true,"bold":true}},{"insert":"v","attributes":{"underline":true}},{"insert":"\n"}]"#,
    r#"[{"insert":"a b","attributes":{"link":"https://e.com/a b"}},{"insert":" C# #\nTitle #"},{"insert":"\n","attributes":{"header":2}}]"#,
    r#"[{"insert":"snake_case 2*3 a|b !x &amp; & ; * <tag>\n"}]"#,
    r#"[{"insert":"\n","attributes":{"header":1}},{"insert":"\n","attributes":{"list":"bullet"}},{"insert":"\n","attributes":{"code-block":true}},{"insert":"x\n"}]"#,
];

#[test]
fn documents_survive_markdown_and_html() {
    for input in DOCUMENTS {
        let doc = doc_from(Format::Delta, input);
        for format in [Format::Markdown, Format::Html] {
            let exported = export(&doc, format);
            let back = doc_from(format, &exported);
            assert_eq!(delta(&back), delta(&doc), "through {format}: {exported:?}");
        }
    }
}

#[test]
fn markdown_maps_to_quill_attributes() {
    let doc = doc_from(
        Format::Markdown,
        "# Title\n\nSome **bold *both*** [link](https://e.com) `code` ~~gone~~\n\n- a\n\n1. b\n\n> q\n\n```\nc\n```\n",
    );
    assert_eq!(
        delta(&doc),
        concat!(
            r#"{"ops":[{"insert":"Title"},{"insert":"\n","attributes":{"header":1}},"#,
            r#"{"insert":"Some "},{"insert":"bold ","attributes":{"bold":true}},"#,
            r#"{"insert":"both","attributes":{"bold":true,"italic":true}},{"insert":" "},"#,
            r#"{"insert":"link","attributes":{"link":"https://e.com"}},{"insert":" "},"#,
            r#"{"insert":"code","attributes":{"code":true}},{"insert":" "},"#,
            r#"{"insert":"gone","attributes":{"strike":true}},{"insert":"\na"},"#,
            r#"{"insert":"\n","attributes":{"list":"bullet"}},{"insert":"b"},"#,
            r#"{"insert":"\n","attributes":{"list":"ordered"}},{"insert":"q"},"#,
            r#"{"insert":"\n","attributes":{"blockquote":true}},{"insert":"c"},"#,
            r#"{"insert":"\n","attributes":{"code-block":true}}]}"#,
        )
    );
}

#[test]
fn foreign_markdown_is_read_into_the_canonical_form() {
    let doc = doc_from(
        Format::Markdown,
        "Setext\n======\n\nA paragraph\nwrapped over lines, _under_ and __strong__.\n\n\
         * outer\n  * nested\n\n![alt text](x.png) <span>tag</span>\n\n---\n\n    indented code\n",
    );
    assert_eq!(
        export(&doc, Format::Markdown),
        "# Setext\n\nA paragraph wrapped over lines, *under* and **strong**.\n\n\
         - outer\n- nested\n\nalt text tag\n\n```\nindented code\n```\n"
    );
}

#[test]
fn markdown_export_escapes_text_that_looks_like_markdown() {
    let doc = doc_from(Format::Text, "*not bold* # [x](y) 1. <b>\n# heading?\n");
    let markdown = export(&doc, Format::Markdown);
    assert_eq!(
        markdown,
        "\\*not bold\\* # \\[x\\](y) 1. \\<b>\n\n\\# heading?\n"
    );
    let back = doc_from(Format::Markdown, &markdown);
    assert_eq!(
        export(&back, Format::Text),
        "*not bold* # [x](y) 1. <b>\n# heading?\n"
    );
}

#[test]
fn html_export_of_script_text_is_inert() {
    let doc = doc_from(
        Format::Delta,
        r#"[{"insert":"<script>alert(1)</script> & \"q\" 'a'"},{"insert":"\n","attributes":{"header":2}}]"#,
    );
    assert_eq!(
        export(&doc, Format::Html),
        "<h2>&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;q&quot; &#39;a&#39;</h2>\n"
    );
}

#[test]
fn javascript_links_are_neutralised_on_export() {
    // Written the way any client could write it, bypassing import's checks.
    let doc = doc_with_client_id(1);
    let content = doc.get_or_insert_text(CONTENT);
    {
        let mut txn = doc.transact_mut();
        let link = |url: &str| Attrs::from([("link".into(), Any::from(url))]);
        content.insert_with_attributes(&mut txn, 0, "evil", link("javascript:alert(1)"));
        content.insert_with_attributes(&mut txn, 4, " ok", link("https://e.com/?a=\"b\""));
        content.insert_with_attributes(&mut txn, 7, "\n", Attrs::new());
    }
    let html = export(&doc, Format::Html);
    assert_eq!(
        html,
        "<p>evil<a href=\"https://e.com/?a=&quot;b&quot;\"> ok</a></p>\n"
    );
    let markdown = export(&doc, Format::Markdown);
    assert_eq!(markdown, "evil[ ok](https://e.com/?a=\"b\")\n");
    // The Delta is the document as stored, so that nothing is hidden from a backup.
    assert!(delta(&doc).contains("javascript:alert(1)"));
}

#[test]
fn html_export_writes_semantic_elements() {
    let doc = doc_from(
        Format::Markdown,
        "# T\n\n**b** *i* <u>u</u> ~~s~~ `c` [l](https://e.com)\n\n- x\n- y\n\n1. z\n\n> q\n>\n> r\n\n```\na < b\n\n```\n",
    );
    let html = export(&doc, Format::Html);
    assert_eq!(
        html,
        "<h1>T</h1>\n\
         <p><strong>b</strong> <em>i</em> <u>u</u> <s>s</s> <code>c</code> <a href=\"https://e.com\">l</a></p>\n\
         <ul>\n<li>x</li>\n<li>y</li>\n</ul>\n\
         <ol>\n<li>z</li>\n</ol>\n\
         <blockquote>\n<p>q</p>\n<p>r</p>\n</blockquote>\n\
         <pre><code>a &lt; b\n\n</code></pre>\n"
    );
    // And reading it back gives the same document.
    assert_eq!(delta(&doc_from(Format::Html, &html)), delta(&doc));
}

#[test]
fn html_import_reads_real_world_markup() {
    let doc = doc_from(
        Format::Html,
        "<!DOCTYPE html><html><head><title>Page</title><style>p { color: red }</style>\
         <script>document.write('<p>x</p>')</script></head><body>\n\
         <h2 class=x>Heading &amp; more</h2>\n\
         <p>One   <b>bold\n <i>both</i></b>&nbsp;end<p>Implicitly closed\
         <ul><li>item one<li>item <a href=\"javascript:alert(1)\">two</a></ul>\
         <ol><li data-list=\"bullet\">Quill-style bullet</ol>\
         <p><br></p><pre>\n  keep   spacing\n</pre><!-- a comment -->\
         <div>a<br>b</div></body></html>",
    );
    assert_eq!(
        delta(&doc),
        concat!(
            r#"{"ops":[{"insert":"Heading & more"},{"insert":"\n","attributes":{"header":2}},"#,
            r#"{"insert":"One "},{"insert":"bold ","attributes":{"bold":true}},"#,
            r#"{"insert":"both","attributes":{"bold":true,"italic":true}},"#,
            "{\"insert\":\"\u{a0}end\\nImplicitly closed\\nitem one\"},",
            r#"{"insert":"\n","attributes":{"list":"bullet"}},{"insert":"item two"},"#,
            r#"{"insert":"\n","attributes":{"list":"bullet"}},{"insert":"Quill-style bullet"},"#,
            r#"{"insert":"\n","attributes":{"list":"bullet"}},{"insert":"\n  keep   spacing"},"#,
            r#"{"insert":"\n","attributes":{"code-block":true}},{"insert":"a\nb\n"}]}"#,
        )
    );
}

#[test]
fn delta_import_export_round_trips() {
    let input = concat!(
        r#"{"ops":[{"insert":"Title"},{"insert":"\n","attributes":{"header":1}},"#,
        r#"{"insert":"plain "},{"insert":"bold link","attributes":{"bold":true,"link":"https://e.com"}},"#,
        r#"{"insert":"\nitem"},{"insert":"\n","attributes":{"list":"ordered"}},"#,
        r#"{"insert":"let x;"},{"insert":"\n","attributes":{"code-block":"rust"}}]}"#,
    );
    let doc = doc_from(Format::Delta, input);
    assert_eq!(delta(&doc), input);
    // A bare array and a missing final newline are accepted; Quill's final "\n" is added.
    let doc = doc_from(
        Format::Delta,
        r#"[{"insert":"a"},{"insert":"b","attributes":{"italic":true}}]"#,
    );
    assert_eq!(
        delta(&doc),
        r#"{"ops":[{"insert":"a"},{"insert":"b","attributes":{"italic":true}},{"insert":"\n"}]}"#
    );
}

#[test]
fn invalid_delta_is_refused_and_changes_nothing() {
    let doc = doc_from(Format::Markdown, "# Keep me\n\n**intact**\n");
    let before = delta(&doc);
    let updates = Arc::new(Mutex::new(0));
    let counter = updates.clone();
    doc.observe_update_v1("count", move |_, _| *counter.lock().unwrap() += 1)
        .unwrap();

    for (input, expected) in [
        (
            "not json",
            "invalid JSON: expected ident at line 1 column 2",
        ),
        (
            r#"{"ops": {"insert": "x"}}"#,
            "not a Quill Delta: expected an array of ops or an object with an `ops` array",
        ),
        (
            r#"[{"insert": "x"}, {"insert": "y", "attributes": {"color": "red"}}]"#,
            "delta op 1: unsupported attribute `color`",
        ),
        (
            r#"[{"insert": "\n", "attributes": {"list": "checked"}}]"#,
            "delta op 0: `list` must be \"bullet\" or \"ordered\", not \"checked\"",
        ),
        (
            r#"[{"delete": 3}]"#,
            "delta op 0: `delete` cannot describe a whole document: use inserts only",
        ),
    ] {
        let err = import(&doc, Format::Delta, input).unwrap_err();
        assert_eq!(err.to_string(), expected);
        assert!(matches!(
            err,
            ConvertError::Json(_) | ConvertError::NotDelta | ConvertError::DeltaOp { .. }
        ));
    }
    assert_eq!(delta(&doc), before);
    assert_eq!(
        *updates.lock().unwrap(),
        0,
        "a refused import must not write"
    );

    import(&doc, Format::Text, "new\n").unwrap();
    assert_eq!(
        *updates.lock().unwrap(),
        1,
        "an import is one transaction, one update"
    );
}

#[test]
fn import_replaces_content_and_formatting() {
    let doc = doc_from(Format::Markdown, "# 😀 heading\n\n**all bold 中文**\n");
    import(&doc, Format::Text, "plain 😀\nagain\n").unwrap();
    assert_eq!(delta(&doc), r#"{"ops":[{"insert":"plain 😀\nagain\n"}]}"#);
    import(&doc, Format::Text, "").unwrap();
    assert_eq!(export(&doc, Format::Text), "\n");
}

#[test]
fn formatting_ranges_count_utf16_with_emoji_and_chinese() {
    let doc = doc_from(Format::Markdown, "😀中**文😀** x *🎉*\n");
    assert_eq!(
        delta(&doc),
        concat!(
            r#"{"ops":[{"insert":"😀中"},{"insert":"文😀","attributes":{"bold":true}},"#,
            r#"{"insert":" x "},{"insert":"🎉","attributes":{"italic":true}},{"insert":"\n"}]}"#,
        )
    );
    // Positions as Quill counts them: 😀 is two UTF-16 units, so "文" starts at 3, and the bold
    // run is 3 units long ("文" 1 + "😀" 2). Inserting at 6 lands right after the bold run.
    let content = doc.get_or_insert_text(CONTENT);
    {
        let mut txn = doc.transact_mut();
        assert_eq!(content.len(&txn), 12);
        content.insert_with_attributes(&mut txn, 6, "|", Attrs::new());
        content.format(
            &mut txn,
            3,
            1,
            Attrs::from([("underline".into(), Any::Bool(true))]),
        );
    }
    assert_eq!(content.get_string(&doc.transact()), "😀中文😀| x 🎉\n");
    assert_eq!(
        delta(&doc),
        concat!(
            r#"{"ops":[{"insert":"😀中"},{"insert":"文","attributes":{"bold":true,"underline":true}},"#,
            r#"{"insert":"😀","attributes":{"bold":true}},{"insert":"| x "},"#,
            r#"{"insert":"🎉","attributes":{"italic":true}},{"insert":"\n"}]}"#,
        )
    );
}

#[test]
fn text_export_is_the_plain_text() {
    let doc = doc_from(Format::Markdown, "# Title\n\n- **a**\n- b\n");
    assert_eq!(export(&doc, Format::Text), "Title\na\nb\n");
    assert_eq!(export(&doc_with_client_id(1), Format::Text), "");
    assert_eq!(
        export(&doc_with_client_id(1), Format::Delta),
        r#"{"ops":[]}"#
    );
}

#[test]
fn a_code_language_cannot_break_out_of_its_fence() {
    // Any client can write any language name (Quill's syntax module writes it as the value of
    // `code-block`), so export must not trust it.
    for language in [
        "x```\n<img src=x onerror=alert(1)>\n```",
        "js\n<script>alert(1)</script>",
        "a`b",
        "c\r<b>x</b>",
        "rust &#96;&#96;&#96;",
    ] {
        let doc = doc_with_client_id(1);
        let content = doc.get_or_insert_text(CONTENT);
        {
            let mut txn = doc.transact_mut();
            content.insert(&mut txn, 0, "let x = 1;");
            let block = Attrs::from([("code-block".into(), Any::from(language))]);
            content.insert_with_attributes(&mut txn, 10, "\n", block);
        }
        let markdown = export(&doc, Format::Markdown);
        let fence_line = markdown.lines().next().unwrap_or_default();
        assert!(
            fence_line.starts_with("```") && !fence_line[3..].contains(['`', '<', '&']),
            "{language:?} gave {markdown:?}"
        );
        // Read back, it is one code line holding the code and nothing else.
        let back = doc_from(Format::Markdown, &markdown);
        assert_eq!(
            delta(&back),
            r#"{"ops":[{"insert":"let x = 1;"},{"insert":"\n","attributes":{"code-block":true}}]}"#,
            "{language:?} gave {markdown:?}"
        );
    }
    // A plain language name is kept.
    let doc = doc_from(
        Format::Delta,
        r#"[{"insert":"x"},{"insert":"\n","attributes":{"code-block":"c++"}}]"#,
    );
    assert_eq!(export(&doc, Format::Markdown), "```c++\nx\n```\n");
}
