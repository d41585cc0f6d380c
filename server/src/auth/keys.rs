//! The server secret (signs tokens and sessions) and the owner key (the owner's password), kept
//! in the data directory with mode 0600, created on first start unless given.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The two files, beside the store.
pub const SECRET_FILE: &str = "secret.key";
pub const OWNER_KEY_FILE: &str = "owner.key";
/// Random bytes in a generated secret, and characters in a generated owner key (base32-ish
/// lower case: ~160 bits, and still easy to paste).
const SECRET_BYTES: usize = 32;
const KEY_CHARS: usize = 32;
const KEY_ALPHABET: &[u8; 32] = b"abcdefghijkmnpqrstuvwxyz23456789";

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot {what} {}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} is readable by others (mode {mode:o}): make it 0600", path.display())]
    TooOpen { path: PathBuf, mode: u32 },
    #[error("{} is empty", path.display())]
    Empty { path: PathBuf },
    #[error("the system's random source failed")]
    Random(#[source] getrandom::Error),
}

/// The secret and the owner key of this server.
pub struct Keys {
    pub secret: Vec<u8>,
    pub owner_key: String,
}

/// Reads the keys from `dir`, creating what is missing; `owner_key` and `secret`, when given,
/// are used as they are (and not written).
pub fn load_or_create(dir: &Path, owner_key: Option<&str>, secret: Option<&str>) -> Result<Keys, KeyError> {
    let secret = match secret {
        Some(secret) => secret.as_bytes().to_vec(),
        None => read_or_create(&dir.join(SECRET_FILE), || {
            let mut bytes = [0u8; SECRET_BYTES];
            getrandom::fill(&mut bytes).map_err(KeyError::Random)?;
            Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
        })?
        .into_bytes(),
    };
    let owner_key = match owner_key {
        Some(key) => key.to_owned(),
        None => read_or_create(&dir.join(OWNER_KEY_FILE), random_key)?,
    };
    Ok(Keys { secret, owner_key })
}

/// The owner key as it is stored in `dir`, for `quire owner-url`.
pub fn read_owner_key(dir: &Path) -> Result<String, KeyError> {
    read(&dir.join(OWNER_KEY_FILE))
}

fn random_key() -> Result<String, KeyError> {
    let mut key = String::with_capacity(KEY_CHARS);
    let mut bytes = [0u8; KEY_CHARS];
    getrandom::fill(&mut bytes).map_err(KeyError::Random)?;
    // 256 is a multiple of 32: every character is equally likely.
    for byte in bytes {
        key.push(char::from(KEY_ALPHABET[usize::from(byte) % KEY_ALPHABET.len()]));
    }
    Ok(key)
}

fn read_or_create(path: &Path, make: impl FnOnce() -> Result<String, KeyError>) -> Result<String, KeyError> {
    if path.exists() {
        return read(path);
    }
    let value = make()?;
    let io = |what| move |source| KeyError::Io { what, path: path.to_path_buf(), source };
    // Created with 0600 from the start: there is no moment when others could read it.
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(io("create"))?;
    file.write_all(value.as_bytes()).map_err(io("write"))?;
    file.sync_all().map_err(io("write"))?;
    Ok(value)
}

fn read(path: &Path) -> Result<String, KeyError> {
    let io = |source| KeyError::Io { what: "read", path: path.to_path_buf(), source };
    let mode = std::fs::metadata(path).map_err(io)?.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(KeyError::TooOpen { path: path.to_path_buf(), mode });
    }
    let value = std::fs::read_to_string(path).map_err(io)?.trim().to_owned();
    if value.is_empty() {
        return Err(KeyError::Empty { path: path.to_path_buf() });
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_created_once_private_and_then_read_back() {
        let dir = std::env::temp_dir().join(format!("quire-keys-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let first = load_or_create(&dir, None, None).unwrap();
        assert_eq!(first.owner_key.len(), KEY_CHARS);
        for file in [SECRET_FILE, OWNER_KEY_FILE] {
            let mode = std::fs::metadata(dir.join(file)).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{file}");
        }
        let again = load_or_create(&dir, None, None).unwrap();
        assert_eq!((again.secret, again.owner_key.clone()), (first.secret, first.owner_key));
        assert_eq!(load_or_create(&dir, Some("given"), None).unwrap().owner_key, "given");
        std::fs::set_permissions(dir.join(OWNER_KEY_FILE), std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(read_owner_key(&dir), Err(KeyError::TooOpen { .. })));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
