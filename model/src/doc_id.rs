//! Document identifiers: 1–128 characters of `[A-Za-z0-9._-]`.
//!
//! The id appears in URLs (`/ws/{doc}`, `/d/{doc}`) and in storage keys, so the alphabet is kept
//! to characters that need no escaping anywhere and never contain the storage key separator (NUL).

use std::fmt;
use std::str::FromStr;

/// Longest accepted id, in bytes (all accepted characters are ASCII).
pub const MAX_LEN: usize = 128;

/// A validated document id. Construct it with [`DocId::parse`] or `str::parse`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DocId(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DocIdError {
    #[error("document id must not be empty")]
    Empty,
    #[error("document id is longer than {MAX_LEN} characters")]
    TooLong,
    #[error("document id may only contain A-Z, a-z, 0-9, '.', '_' and '-'")]
    BadCharacter,
}

impl DocId {
    pub fn parse(s: &str) -> Result<Self, DocIdError> {
        if s.is_empty() {
            return Err(DocIdError::Empty);
        }
        if s.len() > MAX_LEN {
            return Err(DocIdError::TooLong);
        }
        if !s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')) {
            return Err(DocIdError::BadCharacter);
        }
        Ok(DocId(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for DocId {
    type Err = DocIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        DocId::parse(s)
    }
}

impl fmt::Display for DocId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for DocId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_documented_alphabet() {
        for ok in ["a", "Doc-1", "notes_2026.11", &"x".repeat(MAX_LEN)] {
            assert_eq!(DocId::parse(ok).unwrap().as_str(), ok);
        }
    }

    #[test]
    fn rejects_everything_else() {
        assert_eq!(DocId::parse(""), Err(DocIdError::Empty));
        assert_eq!(DocId::parse(&"x".repeat(MAX_LEN + 1)), Err(DocIdError::TooLong));
        for bad in ["a/b", "a b", "..%2f", "文档", "a\0b", "a?b"] {
            assert_eq!(DocId::parse(bad), Err(DocIdError::BadCharacter), "{bad:?}");
        }
    }
}
