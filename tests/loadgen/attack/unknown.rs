//! `GET /api/docs/{random id}`: documents that do not exist, asked for as fast as `rate` allows.
//! Each must be a 404 that loads and creates nothing.

use std::sync::Arc;

use super::{pace, AttackStats, Target};
use crate::http;

pub async fn run(target: Arc<Target>, stats: Arc<AttackStats>) {
    let mut rng = fastrand::Rng::with_seed(7);
    let mut ticks = pace(target.rate);
    let auth = [("Authorization", target.authorization.as_str())];
    loop {
        ticks.tick().await;
        let id: String = (0..16).map(|_| rng.alphanumeric()).collect();
        stats.attempt("unknown ids", 0);
        let answer = http::request(target.addr, "GET", &format!("/api/docs/{id}"), &auth, b"").await;
        stats.outcome("unknown ids", http::outcome(answer));
    }
}
