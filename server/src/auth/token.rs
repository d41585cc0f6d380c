//! Tokens: JWTs signed with the server secret (HS256), so that an application with its own
//! login can mint them for its users with any standard JWT library and embed quire.
//!
//! Claims: `doc` (the one document it opens), `role` (`view` or `edit`), and optionally `link`
//! (the share link it stands for: removing the link revokes it), `exp` (seconds since the
//! epoch) and `name` (the user's name). A share link's token carries no issue time, so the
//! same link always gives the same token and the owner can copy it again.

use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use super::Role;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub doc: String,
    pub role: Role,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    /// Seconds since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exp: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// Signs and checks tokens with one secret.
pub struct Signer {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

/// A token that does not verify: tampered, signed with another secret, expired, or not a
/// token at all.
#[derive(Debug, thiserror::Error)]
#[error("the token is not valid")]
pub struct BadToken(#[source] jsonwebtoken::errors::Error);

impl Signer {
    pub fn new(secret: &[u8]) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        // `exp` is checked when present; a token without one lasts until its link is removed.
        validation.required_spec_claims.clear();
        validation.leeway = 0;
        Signer {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
        }
    }

    pub fn sign<C: Serialize>(&self, claims: &C) -> String {
        encode(&Header::new(Algorithm::HS256), claims, &self.encoding).expect("HS256 signing does not fail")
    }

    pub fn verify<C: for<'de> Deserialize<'de>>(&self, token: &str) -> Result<C, BadToken> {
        decode::<C>(token, &self.decoding, &self.validation).map(|data| data.claims).map_err(BadToken)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp: Option<u64>) -> Claims {
        Claims { doc: "a".into(), role: Role::Edit, link: Some("l1".into()), exp, name: None }
    }

    #[test]
    fn a_signed_token_verifies_and_a_tampered_or_foreign_one_does_not() {
        let signer = Signer::new(b"secret one");
        let token = signer.sign(&claims(None));
        assert_eq!(signer.verify::<Claims>(&token).unwrap(), claims(None));
        assert_eq!(token, signer.sign(&claims(None)), "the same link gives the same token");
        let mut tampered = token.clone().into_bytes();
        let middle = token.find('.').unwrap() + 3;
        tampered[middle] = if tampered[middle] == b'A' { b'B' } else { b'A' };
        assert!(signer.verify::<Claims>(std::str::from_utf8(&tampered).unwrap()).is_err());
        assert!(Signer::new(b"secret two").verify::<Claims>(&token).is_err());
        assert!(signer.verify::<Claims>("not a token").is_err());
    }

    #[test]
    fn an_expired_token_is_refused() {
        let signer = Signer::new(b"s");
        assert!(signer.verify::<Claims>(&signer.sign(&claims(Some(1)))).is_err());
        assert!(signer.verify::<Claims>(&signer.sign(&claims(Some(u64::MAX / 2)))).is_ok());
    }
}
