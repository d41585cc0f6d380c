//! Real editing traces (`../shared/traces/`, see its README), read where they lie: never
//! copied into the repository.

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

/// One keystroke of a sequential trace: at `pos`, delete `delete` characters, insert `insert`.
#[derive(Debug, Clone)]
pub struct Patch {
    pub pos: u32,
    pub delete: u32,
    pub insert: String,
}

/// The traces' folder: `$QUIRE_TRACES`, else `shared/traces` beside the checkout (where the
/// workplace and CI lay it).
pub fn dir() -> PathBuf {
    match std::env::var_os("QUIRE_TRACES") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/traces"),
    }
}

/// The first `limit` keystrokes of the sequential trace `name` (e.g. `automerge-paper`).
/// Read with `gzip -dc`, as the replay benchmark does: no decompression crate for test data.
pub fn load(name: &str, limit: usize) -> Result<Vec<Patch>, String> {
    let path = dir().join(format!("{name}.json.gz"));
    let out = Command::new("gzip")
        .arg("-dc")
        .arg(&path)
        .output()
        .map_err(|e| format!("running gzip: {e}"))?;
    if !out.status.success() {
        return Err(format!("gzip -dc {}: {}", path.display(), out.status));
    }
    let json: Value = serde_json::from_slice(&out.stdout).map_err(|e| format!("{}: {e}", path.display()))?;
    if json["startContent"] != "" || json.get("endContent").is_none() {
        return Err(format!("{name}: only sequential traces that start empty are supported"));
    }
    let mut patches = Vec::new();
    'txns: for txn in json["txns"].as_array().ok_or("no txns")? {
        for patch in txn["patches"].as_array().ok_or("no patches")? {
            if patches.len() == limit {
                break 'txns;
            }
            let number = |v: &Value| v.as_u64().and_then(|n| u32::try_from(n).ok());
            match (number(&patch[0]), number(&patch[1]), patch[2].as_str()) {
                // Positions count code points, replicas UTF-16 units: they agree on ASCII, which
                // the sequential traces are.
                (Some(pos), Some(delete), Some(insert)) if insert.is_ascii() => {
                    patches.push(Patch { pos, delete, insert: insert.to_owned() })
                }
                _ => return Err(format!("not a [pos, deleted, inserted] patch: {patch}")),
            }
        }
    }
    Ok(patches)
}

/// Applies `patch` to a text of `len` UTF-16 units, clamped to it: replicas typing the same
/// trace concurrently hold texts of different lengths. Returns (position, characters to delete).
pub fn clamp(patch: &Patch, len: u32) -> (u32, u32) {
    let pos = patch.pos.min(len);
    (pos, patch.delete.min(len - pos))
}

/// `limit` keystrokes made up here, for a checkout without the traces beside it: a paragraph
/// typed at a cursor that now and then jumps, with backspaces, the same every time.
pub fn made_up(limit: usize) -> Vec<Patch> {
    const TEXT: &[u8] = b"The quick brown fox jumps over the lazy dog; then it sleeps. ";
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let (mut len, mut cursor) = (0u32, 0u32);
    let mut patches = Vec::with_capacity(limit);
    for i in 0..limit {
        let roll = next();
        if roll % 40 == 0 {
            cursor = ((roll >> 16) % u64::from(len + 1)) as u32;
        }
        if roll % 9 == 1 && cursor > 0 {
            cursor -= 1;
            len -= 1;
            patches.push(Patch { pos: cursor, delete: 1, insert: String::new() });
        } else {
            patches.push(Patch { pos: cursor, delete: 0, insert: char::from(TEXT[i % TEXT.len()]).to_string() });
            cursor += 1;
            len += 1;
        }
    }
    patches
}
