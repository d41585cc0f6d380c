//! The owner's browser session: opening the sign-in URL (`/?key=…`) sets an HttpOnly,
//! SameSite=Strict cookie holding a signed claim "this is the owner", valid for 30 days and
//! only while the owner key it was made with is current.

use axum::http::{header, HeaderMap};
use serde::{Deserialize, Serialize};

use super::token::Signer;

pub const COOKIE: &str = "quire_session";
/// How long a sign-in lasts.
pub const MAX_AGE_SECS: u64 = 30 * 24 * 3600;

#[derive(Debug, Serialize, Deserialize)]
struct SessionClaims {
    /// Always "owner".
    sub: String,
    exp: u64,
    /// A digest of the owner key it was made with: a new key ends every session.
    key: String,
}

/// A session cookie's value for the owner of `owner_key`.
pub fn issue(signer: &Signer, owner_key: &str, now_secs: u64) -> String {
    signer.sign(&SessionClaims {
        sub: "owner".into(),
        exp: now_secs + MAX_AGE_SECS,
        key: key_digest(owner_key),
    })
}

/// The `Set-Cookie` value that signs the browser in.
pub fn set_cookie(value: &str) -> String {
    format!("{COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={MAX_AGE_SECS}")
}

/// The `Set-Cookie` value that signs it out.
pub fn clear_cookie() -> String {
    format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0")
}

/// Whether the request carries a valid owner session.
pub fn is_owner(signer: &Signer, owner_key: &str, headers: &HeaderMap) -> bool {
    cookie(headers).is_some_and(|value| {
        signer
            .verify::<SessionClaims>(value)
            .is_ok_and(|claims| claims.sub == "owner" && claims.key == key_digest(owner_key))
    })
}

/// Whether the request carries a session cookie at all (valid or not).
pub fn has_cookie(headers: &HeaderMap) -> bool {
    cookie(headers).is_some()
}

fn cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| pair.trim().strip_prefix(COOKIE)?.strip_prefix('='))
}

fn key_digest(owner_key: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, owner_key.as_bytes());
    digest.as_ref()[..12].iter().map(|b| format!("{b:02x}")).collect()
}
