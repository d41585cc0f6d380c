//! Import bombs: `PUT /api/docs/bomb/content` of adversarial HTML and Markdown as big as the
//! body limit allows, one after the other (each is seconds of the server's work: the point is
//! that it is done off the runtime, on a bounded pool, within a budget). The bodies are shapes
//! that once took quadratic time or memory in the converters (`model/tests/convert_limits.rs`).

use std::sync::Arc;

use super::{AttackStats, Target};
use crate::http;

const DOC: &str = "bomb";

pub async fn run(target: Arc<Target>, stats: Arc<AttackStats>) {
    let auth = target.authorization.as_str();
    let create = http::request(
        target.addr,
        "POST",
        "/api/docs",
        &[("Authorization", auth), ("Content-Type", "application/json")],
        format!(r#"{{"id":"{DOC}"}}"#).as_bytes(),
    )
    .await;
    stats.outcome("import bomb", format!("create: {}", http::outcome(create)));
    let bodies = bodies(target.body_limit);
    let path = format!("/api/docs/{DOC}/content");
    for i in 0usize.. {
        let (name, mime, body) = &bodies[i % bodies.len()];
        stats.attempt("import bomb", body.len());
        let headers = [("Authorization", auth), ("Content-Type", *mime)];
        let answer = http::request(target.addr, "PUT", &path, &headers, body).await;
        stats.outcome("import bomb", format!("{name}: {}", http::outcome(answer)));
    }
}

/// (name, media type, body), each body just under `limit` bytes.
fn bodies(limit: usize) -> Vec<(&'static str, &'static str, Vec<u8>)> {
    let room = limit - 1024;
    let fill = |unit: &str, bytes: usize| unit.repeat(bytes / unit.len());
    let half = room / 2;
    vec![
        (
            "html long href around short lines",
            "text/html",
            format!("<a href=\"https://e.com/{}\">{}</a>", "u".repeat(half), fill("w<br>", half)).into_bytes(),
        ),
        ("html nested lists", "text/html", (fill("<ul><li>", half) + &fill("</blockquote>", half)).into_bytes()),
        (
            "markdown nested lists",
            "text/markdown",
            (0..).map(|depth: usize| format!("{}- x\n", "  ".repeat(depth % 2000))).scan(0, |len, line| {
                *len += line.len();
                (*len <= room).then_some(line)
            }).collect::<String>().into_bytes(),
        ),
        (
            "markdown link around short lines",
            "text/markdown",
            format!("[{}](https://e.com/{})", fill("w\n", half), "u".repeat(half - 64)).into_bytes(),
        ),
    ]
}
